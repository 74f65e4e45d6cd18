import Foundation
import IPVSTestSupport
import Testing
@testable import IPVSModel
@testable import IPVSReader

/// Parses `text` the way the reader does, in one buffer.
func parseConnections(_ text: String, unterminatedTail: Bool = true) -> ConnectionTableParser {
    var p = ConnectionTableParser()
    var bytes = Array(text.utf8)
    // Split off a last line without a newline, as ProcFile.streamLines hands it over.
    var tail: [UInt8] = []
    if unterminatedTail, let lastNL = bytes.lastIndex(of: 0x0A), lastNL < bytes.count - 1 {
        tail = Array(bytes[(lastNL + 1)...])
        bytes.removeSubrange((lastNL + 1)...)
    }
    bytes.withUnsafeBufferPointer { p.consume($0) }
    if !tail.isEmpty { tail.withUnsafeBufferPointer { p.consume($0, unterminated: true) } }
    return p
}

@Suite struct ConnectionTableParserTests {
    @Test func ipv4RowsAndTemplates() {
        let text = KernelText.connHeader
            + KernelText.conn("TCP", 0xC0A8_0105, 0xD431, 0x0A00_0001, 80, 0x0A00_0102, 80, "ESTABLISHED", 899)
            + KernelText.conn("TCP", 0xC0A8_0105, 0xD432, 0x0A00_0001, 80, 0x0A00_0102, 80, "TIME_WAIT", 58)
            + KernelText.conn("TCP", 0xC0A8_0105, 0, 0x0A00_0001, 443, 0x0A00_0102, 443, "ASSURED", 287)
            + KernelText.conn("UDP", 0xC0A8_0106, 0x9C40, 0x0A00_0001, 53, 0x0A00_0103, 53, "UDP", 299)
        let p = parseConnections(text)
        #expect(p.skipped.total == 0)
        #expect(p.entries.count == 4)
        let e = p.entries[0]
        #expect(e.proto == .tcp)
        #expect(e.client.description == "192.168.1.5")
        #expect(e.clientPort == 0xD431)
        #expect(e.virtual.description == "10.0.0.1")
        #expect(e.virtualPort == 80)
        #expect(e.destination.description == "10.0.1.2")
        #expect(e.state == .established)
        #expect(e.expires == 899)
        #expect(!e.isTemplate)
        #expect(p.entries[2].isTemplate)
        #expect(p.entries[2].state == .assured)
        #expect(p.entries[3].state == .udp)

        let t = p.table(file: "ip_vs_conn", readAt: Date(), cost: ReadCost(seconds: 0, cpuSeconds: 0, bytes: 0, readCalls: 0))
        #expect(t.counts.connections == 3)
        #expect(t.counts.templates == 1)
        #expect(t.counts.byState[.established] == 1)
        #expect(t.counts.byState[.timeWait] == 1)
        #expect(t.counts.byState[.udp] == 1)
        #expect(t.counts.byProtocol[.tcp] == 2)
        #expect(t.counts.byProtocol[.udp] == 1)
        #expect(t.counts.templatesByState[.assured] == 1)
    }

    @Test func fwmarkTemplateHasProtocolIPAndMarkInToIP() {
        let text = KernelText.conn("IP", 0xC0A8_0105, 0, 0x0000_0001, 0, 0x0A00_0102, 0, "NONE", 59)
        let p = parseConnections(text)
        #expect(p.entries.count == 1)
        #expect(p.entries[0].proto == .ip)
        #expect(p.entries[0].fwmark == 1)
        #expect(p.entries[0].isTemplate)
    }

    @Test func ipv6RowsAndMixedFamilyDestination() {
        let c = "2001:0db8:0000:0000:0000:0000:0000:0099"
        let v = "2001:0db8:0000:0000:0000:0000:0000:0001"
        let d = "2001:0db8:0000:0000:0000:0000:0001:0002"
        var text = KernelText.conn6("TCP", c, 0xC001, v, 80, d, 80, "SYN_RECV", 30)
        // An IPv6 service with an IPv4 real server behind a tunnel: the destination is
        // printed as `%08x` in an otherwise IPv6 row.
        text += "TCP \(c) C002 \(v) 0050 0a000102 0050 ESTABLISHED     900\n"
        let p = parseConnections(text)
        #expect(p.skipped.total == 0)
        #expect(p.entries.count == 2)
        #expect(p.entries[0].client.description == "2001:db8::99")
        #expect(p.entries[0].destination.description == "2001:db8::1:2")
        #expect(p.entries[0].state == .synRecv)
        #expect(p.entries[1].destination.description == "10.0.1.2")
        #expect(p.entries[1].virtual.description == "2001:db8::1")
    }

    @Test func sctpStates() {
        let text = KernelText.conn("SCTP", 0xC0A8_0105, 0x1000, 0x0A00_0001, 0x0B59, 0x0A00_0102, 0x0B59, "ESTABLISHED", 899)
            + KernelText.conn("SCTP", 0xC0A8_0105, 0x1001, 0x0A00_0001, 0x0B59, 0x0A00_0102, 0x0B59, "COOKIE_ECHOED", 5)
        let p = parseConnections(text)
        #expect(p.entries.map(\.proto) == [.sctp, .sctp])
        #expect(p.entries[1].state.name == "COOKIE_ECHOED")
    }

    @Test func persistenceEngineDataIsKeptBesideTheEntry() {
        let text = KernelText.conn("UDP", 0xC0A8_0105, 5060, 0x0A00_0001, 5060, 0x0A00_0102, 5060, "UDP", 120, pe: " sip a84b4c76e66710@pc33.example.com")
        let p = parseConnections(text)
        #expect(p.entries.count == 1)
        #expect(p.persistenceEngineData[0] == PersistenceEngineData(name: "sip", data: "a84b4c76e66710@pc33.example.com"))
    }

    @Test func syncFileOriginColumn() {
        let text = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires\n"
            + "TCP C0A80105 D431 0A000001 0050 0a000102 0050 ESTABLISHED SYNC       899\n"
            + "TCP C0A80105 D432 0A000001 0050 0a000102 0050 ESTABLISHED LOCAL      898\n"
        let p = parseConnections(text)
        #expect(p.entries.count == 2)
        #expect(p.entries[0].isFromSync)
        #expect(!p.entries[1].isFromSync)
        #expect(p.entries[1].expires == 898)
    }

    @Test func oldKernelsUnclampedExpiryIsNotTakenAsTime() {
        // Before 4.19 an entry past its time printed (expires - jiffies) / HZ unsigned.
        let text = KernelText.conn("TCP", 0xC0A8_0105, 0xD431, 0x0A00_0001, 80, 0x0A00_0102, 80, "TIME_WAIT", 73_786_976_294_838_206)
        let p = parseConnections(text)
        #expect(p.entries.count == 1)
        #expect(p.entries[0].expires == 0)
        #expect(p.entries[0].flags & ConnectionEntry.unclampedExpiry != 0)
    }

    @Test func badLinesAreSkippedAndCounted() {
        let good = KernelText.conn("TCP", 0xC0A8_0105, 0xD431, 0x0A00_0001, 80, 0x0A00_0102, 80, "ESTABLISHED", 899)
        let text = good
            + "XYZ C0A80105 D431 0A000001 0050 0a000102 0050 ESTABLISHED     899\n"   // unknown protocol
            + "TCP C0A80105 D431 0A000001 0050 0a000102 0050 DANCING         899\n"   // unknown state
            + "TCP C0A8010Z D431 0A000001 0050 0a000102 0050 ESTABLISHED     899\n"   // bad hex
            + "TCP C0A80105 D431 0A000001\n"                                          // cut short
            + "TCP C0A80105 D431 0A000001 0050 0a000102 0050 ESTABLISHED     8x9\n"   // bad number
            + good
            + "TCP C0A80105 D431 0A000001 0050 0a000102 0050 ESTABLISHED     89"       // truncated read
        let p = parseConnections(text)
        #expect(p.entries.count == 2)
        #expect(p.skipped.unknownProtocol == 1)
        #expect(p.skipped.unknownState == 1)
        #expect(p.skipped.malformed == 4)
        #expect(p.skipped.examples.count == 3)
    }

    @Test func streamedThroughSmallChunksGivesTheSameTable() throws {
        var text = KernelText.connHeader
        for i in 0..<5000 {
            text += KernelText.conn(i % 7 == 0 ? "UDP" : "TCP", 0xC0A8_0000 + UInt32(i % 300), UInt16(1024 + i % 60000),
                                    0x0A00_0001, 80, 0x0A00_0100 + UInt32(i % 5), 80, i % 3 == 0 ? "TIME_WAIT" : "ESTABLISHED", UInt64(i % 900))
        }
        let tree = try ProcTree(["net/ip_vs_conn": text])
        var p = ConnectionTableParser()
        let cost = try ProcFile.streamLines(tree.root + "/net/ip_vs_conn", chunkSize: 4096) { lines, u in p.consume(lines, unterminated: u) }
        #expect(p.skipped.total == 0)
        #expect(p.entries.count == 5000)
        #expect(cost.bytes == text.utf8.count)
        #expect(cost.readCalls > 10)
        #expect(p.entries == parseConnections(text).entries)
    }

    @Test func newEntriesSincePreviousPoll() {
        let a = KernelText.conn("TCP", 0xC0A8_0105, 1000, 0x0A00_0001, 80, 0x0A00_0102, 80, "ESTABLISHED", 899)
        let b = KernelText.conn("TCP", 0xC0A8_0105, 1001, 0x0A00_0001, 80, 0x0A00_0102, 80, "ESTABLISHED", 899)
        let c = KernelText.conn("TCP", 0xC0A8_0106, 1000, 0x0A00_0001, 80, 0x0A00_0102, 80, "SYN_RECV", 30)
        let cost = ReadCost(seconds: 0, cpuSeconds: 0, bytes: 0, readCalls: 0)
        let first = parseConnections(a + b).table(file: "ip_vs_conn", readAt: Date(), cost: cost)
        // b changed state only (same identity), c is new.
        let second = parseConnections(a + b.replacingOccurrences(of: "ESTABLISHED", with: "FIN_WAIT   ") + c)
            .table(file: "ip_vs_conn", readAt: Date(), cost: cost)
        #expect(second.identities().newEntryIndices(since: first.identities()) == [2])
    }

    @Test func newEntriesOfABigTableAreWhatASetSays() {
        // Many entries, so the identities' radix sort and its insertion pass both have work.
        var x: UInt64 = 7
        func next() -> UInt64 { x = x &* 6364136223846793005 &+ 1442695040888963407; return x >> 20 }
        func entry(_ k: UInt64) -> ConnectionEntry {
            ConnectionEntry(proto: .tcp, client: IPAddress(ipv4: 0xC000_0000 | UInt32(truncatingIfNeeded: k >> 16)), clientPort: UInt16(truncatingIfNeeded: k) | 1,
                            virtual: IPAddress(ipv4: 0x0A00_0001), virtualPort: 80,
                            destination: IPAddress(ipv4: 0x0A00_0102), destinationPort: 80, state: .established, expires: 100)
        }
        let cost = ReadCost(seconds: 0, cpuSeconds: 0, bytes: 0, readCalls: 0)
        let keys = (0..<20_000).map { _ in next() }
        let old = keys[0..<15_000].map(entry)
        // The next read: most old entries (shuffled order), some gone, 5,000 new.
        var now = Array(keys[2_000..<20_000].map(entry))
        for i in stride(from: now.count - 1, to: 0, by: -1) { now.swapAt(i, Int(next() % UInt64(i + 1))) }
        let first = ConnectionTable(entries: old, file: "ip_vs_conn", readAt: Date(), cost: cost)
        let second = ConnectionTable(entries: now, file: "ip_vs_conn", readAt: Date(), cost: cost)
        let oldSet = Set(old)
        let expected = now.indices.filter { !oldSet.contains(now[$0]) }
        #expect(expected.count == 5_000)
        #expect(second.identities().newEntryIndices(since: first.identities()) == expected)
        // What the poller keeps of a read between reads, its digests alone, tells the same.
        let kept = first.identities().forNextComparison
        #expect(kept.digests == first.identities().digests)
        #expect(second.identities().newEntryIndices(since: kept) == expected)
        #expect(second.identities().digests == second.identities().digests.sorted())
    }
}

@Suite struct EntryStorageTests {
    /// The mapping of `/proc/self/smaps` that holds `address`, by its VmFlags.
    static func vmFlags(at address: UInt) throws -> [String]? {
        // /proc files report no size: read until the end.
        guard let file = FileHandle(forReadingAtPath: "/proc/self/smaps") else { return nil }
        defer { try? file.close() }
        let smaps = String(decoding: try file.readToEnd() ?? Data(), as: UTF8.self)
        var inside = false
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if let range = fields.first, range.contains("-"), !range.hasSuffix(":") {
                let bounds = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
                inside = bounds.count == 2 && bounds[0] <= address && address < bounds[1]
            } else if inside, fields.first == "VmFlags:" {
                return fields.dropFirst().map(String.init)
            }
        }
        return nil
    }

    @Test func aLargeTableIsReservedInMemoryAdvisedForHugePages() throws {
        // 10^5 entries reserved: the 2 MiB-aligned inside of their storage carries the
        // kernel's huge-page advice (VmFlags "hg"), so that filling it costs a few faults,
        // not one per 4 KiB page.
        let parser = ConnectionTableParser(expectedEntries: 100_000)
        let base = parser.entries.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        #expect(parser.entries.capacity >= 100_000 && base != 0)
        let inside = (base + (4 << 20)) / (2 << 20) * (2 << 20)
        let flags = try #require(try Self.vmFlags(at: inside))
        #expect(flags.contains("hg"), "\(flags)")
        // A small table is left alone (no huge page would fill its inside).
        let small = ConnectionTableParser(expectedEntries: 1000)
        let smallBase = small.entries.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        #expect(try Self.vmFlags(at: smallBase)?.contains("hg") != true)
    }
}

/// The fixed-offset path (`kernelRow`) against the general one (`parseLine`), row by row, on
/// every row the kernel printed in the captured fixture and in the fuzz target's committed
/// corpus (Fuzz/Corpus/connection-table: the fixture's rows, plus PE data, wide expiries,
/// lower-case hex, CR LF, a cut row). Where the fast path takes a row, the general path reads
/// the same entry from it; the fuzz target checks the same on every input it makes.
@Suite struct ConnectionTableFastPathTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func rows(_ path: String) throws -> [[UInt8]] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        return bytes.split(separator: 0x0A, omittingEmptySubsequences: true).map(Array.init)
    }

    @Test func fastPathAgreesWithTheGeneralPath() throws {
        var files = ["Tests/Fixtures/proc-vm-6.1/net/ip_vs_conn", "Tests/Fixtures/proc-vm-6.1/net/ip_vs_conn_sync"]
        let corpus = Self.root.appendingPathComponent("Fuzz/Corpus/connection-table").path
        files += try FileManager.default.contentsOfDirectory(atPath: corpus).sorted().map { "Fuzz/Corpus/connection-table/" + $0 }
        var fast = 0, general = 0, fastInTheKernelsFile = 0
        for f in files {
            for row in try Self.rows(Self.root.appendingPathComponent(f).path) {
                let r = row.withUnsafeBufferPointer { FuzzEntryPoints.connectionRow($0) }
                if let e = r.fast {
                    fast += 1
                    if f == files[0] { fastInTheKernelsFile += 1 }
                    #expect(r.general == e, "\(f): \(String(decoding: row, as: UTF8.self))")
                    #expect(!r.generalAttachedPEData)
                } else if r.general != nil {
                    general += 1
                }
            }
        }
        // Every row the kernel printed in ip_vs_conn (all but its header) takes the fast
        // path; the sync file's Origin column, PE data and CR LF rows the general one.
        let kernelRows = try Self.rows(Self.root.appendingPathComponent(files[0]).path).count - 1
        #expect(fastInTheKernelsFile == kernelRows)
        #expect(fast > kernelRows && general > 0)
    }

    @Test func fastPathDeclinesWhatItCannotReadWhole() throws {
        let row = Array("TCP C0A80105 D431 0A000001 0050 0A000102 0050 ESTABLISHED 899".utf8)
        let ok = row.withUnsafeBufferPointer { FuzzEntryPoints.connectionRow($0) }
        #expect(ok.fast != nil && ok.fast == ok.general)
        for bad in [row + Array(" sip x".utf8), row + [0x0D], Array(row.dropLast()) + Array("A".utf8),
                    Array("TCP C0A80105  D431 0A000001 0050 0A000102 0050 ESTABLISHED 899".utf8)] {
            let r = bad.withUnsafeBufferPointer { FuzzEntryPoints.connectionRow($0) }
            #expect(r.fast == nil, "\(String(decoding: bad, as: UTF8.self))")
        }
    }
}
