import IPVSModel

/// Entry points for the fuzz targets in `Fuzz/`, which build as a package of their own and so
/// see only public API. Each runs the reader's internal code on bytes from outside exactly as
/// a read does, without a file or a socket; ipvstop itself never calls them.
public enum FuzzEntryPoints {
    /// One connection-table row (without its newline) through both of the parser's paths:
    /// `fast` is what the fixed-offset path (`kernelRow`) made of it, nil when it declined;
    /// `general` what the general path (`parseLine`) appended, nil when it skipped or counted
    /// the row; `generalAttachedPEData` whether the general path kept persistence-engine data.
    /// Where the fast path accepts a row the general path must read the same entry from it,
    /// without PE data: the fuzzer traps on any difference.
    public static func connectionRow(_ row: UnsafeBufferPointer<UInt8>)
        -> (fast: ConnectionEntry?, general: ConnectionEntry?, generalAttachedPEData: Bool)
    {
        guard let p = row.baseAddress, row.count > 0 else { return (nil, nil, false) }
        let fast = ConnectionTableParser.kernelRow(p, row.count)
        var general = ConnectionTableParser()
        general.parseLine(p, row.count)
        return (fast, general.entries.first, !general.persistenceEngineData.isEmpty)
    }

    /// One received datagram as the answer to request `seq` from our port `portID`, through
    /// `ReplyCollector` (for messages of type `familyType`) and then every decoder
    /// (`IPVSDecode`) on every message it kept, each decoder's error caught, as the client
    /// would meet it. Returns the errors' descriptions (as an operator would read them) and
    /// a mark for each decoded value, so that none of the work is optimised away.
    public static func netlinkReply(_ datagram: [UInt8], seq: UInt32, portID: UInt32, familyType: UInt16) -> [String] {
        var out: [String] = []
        func note<T>(_ work: () throws -> T) {
            do { _ = try work(); out.append("ok") } catch { out.append("\(error)") }
        }
        var collector = ReplyCollector(seq: seq, portID: portID, familyType: familyType, label: "REPLY")
        note { try collector.consume(datagram) }
        let messages = collector.messages
        note { try IPVSDecode.familyID(messages) }
        note { try IPVSDecode.info(messages) }
        note { try IPVSDecode.timeouts(messages) }
        for m in messages {
            note { try IPVSDecode.service(m) }
            note { try IPVSDecode.destination(m, serviceAF: NL.afInet) }
            note { try IPVSDecode.destination(m, serviceAF: NL.afInet6) }
            note { try IPVSDecode.daemon(m) }
        }
        return out
    }
}
