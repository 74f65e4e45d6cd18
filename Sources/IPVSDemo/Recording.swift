import FoundationEssentials
import IPVSModel
import IPVSRawMemory
#if canImport(Glibc)
import Glibc
#endif

/// Recorded snapshots: `ipvstop record FILE` writes them, `ipvstop --replay FILE` plays
/// them back.
///
/// Format 1, little-endian, compact and append-only (a recording cut short by Ctrl-C or a
/// full disk reads up to its last whole record):
///
///     "ipvstop-recording 1\n"            the first line says what the file is, and its format
///     record*                            u32 length (of what follows), u8 type, payload
///
/// Record types: 1 header (UTF-8 JSON: created, source, interval, max_entries), 2 frame
/// (everything a snapshot holds but its connection table, and the number of the table it
/// goes with), 3 connection table (written only when the table was read anew; at most
/// `maxEntries` entries: an entry also in the previous table is written as its index there,
/// its state and time left, in about 5 bytes; a new one in full, 25 bytes for IPv4).
/// 4 table completeness (after its table: the table's number, whether the read was whole,
/// partial or unchecked and against what, so a replay never shows a partial table as whole),
/// 5 ip_vs_status and 6 the table's pacing (each before the frame it belongs to), 7 the
/// director's host name and kernel release (before the first frame, and again before any
/// frame where they changed; they hold for the frames after it).
/// Unknown record types are skipped, so a newer writer may add some; a newer format number
/// is refused.
public enum Recording {
    public static let magic = "ipvstop-recording"
    public static let format = 1

    enum RecordType: UInt8 { case header = 1, frame = 2, table = 3, completeness = 4, kernelStatus = 5, pacing = 6, host = 7 }

    public enum ReadError: Error, CustomStringConvertible {
        case notARecording(String)
        case newerFormat(Int)
        case empty(String)
        /// Frames there were, but every one held an impossible figure.
        case unusable(String, String)

        public var description: String {
            switch self {
            case .unusable(let p, let why): "\(p) holds no usable snapshot: \(why)"
            case .notARecording(let p): "\(p) is not an ipvstop recording (made with 'ipvstop record FILE')"
            case .newerFormat(let n): "the recording is in format \(n); this ipvstop reads format \(Recording.format) — replay it with a newer ipvstop"
            case .empty(let p): "\(p) holds no snapshot"
            }
        }
    }

    /// What the header record says.
    public struct Header: Sendable, Hashable {
        public var created: Date
        public var source: String
        public var interval: Double
        public var maxEntries: Int
        public init(created: Date, source: String, interval: Double, maxEntries: Int) {
            self.created = created
            self.source = source
            self.interval = interval
            self.maxEntries = maxEntries
        }
    }

    /// A whole recording, read.
    public struct Contents: Sendable {
        public var header: Header?
        public var frames: [Snapshot]
        /// Entries the recorder left out of each frame's table (0 when it kept them all).
        public var truncatedEntries: [Int]
        /// Bytes at the end that did not make a whole record (a recording cut short).
        public var trailingBytes: Int
        /// Records left out because a figure in them cannot be true (a time that is NaN or
        /// centuries away, a negative rate), each with why; the frames kept carry a warning
        /// that says so, so a face shows it.
        public var rejected: [String] = []
    }

    /// The times a recording may hold: 1970 to 2200. Anything else (NaN, infinite, 1e300,
    /// negative) did not come from a clock and would trap or stall whatever computes with it.
    static let plausibleTimes: ClosedRange<Double> = 0...7_258_118_400
    /// The longest gap between two frames kept: a frame further on would stall a replay
    /// waiting for its time to come (`record -d` takes an hour at most).
    static let maxFrameGap: Double = 86_400

    // MARK: - Writing

    /// Writes snapshots to a file as they come. Not thread-safe: one writer, one thread.
    public final class Writer {
        /// The file, written with write(2) (no buffer: each record is out when `append`
        /// returns); -1 once closed.
        var fd: Int32
        let path: String
        public let maxEntries: Int
        public let maxBytes: Int
        public private(set) var bytesWritten = 0
        public private(set) var frames = 0
        public private(set) var tables = 0
        var lastTableReadAt: Date?
        var lastTableCount = -1
        /// The entries of the last table written, by identity: the next table names the
        /// ones it shares with it instead of writing them out.
        var previous: [EntryIdentity: (Int, UInt32)] = [:]
        /// The host last written: a host record is written only when it changes.
        var lastHost: HostInfo?

        /// Creates `path` (see `create` for what it refuses to replace); `maxEntries` caps
        /// each table written, `maxBytes` the file (a frame that would pass it is not written).
        public init(path: String, source: String, interval: Double, maxEntries: Int = 100_000, maxBytes: Int = 256 << 20, created: Date = Date()) throws {
            fd = try Recording.create(path)
            self.path = path
            self.maxEntries = max(0, maxEntries)
            self.maxBytes = maxBytes
            try write(Data("\(Recording.magic) \(Recording.format)\n".utf8))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let json = try encoder.encode(HeaderJSON(created: ISO8601Text.string(from: created), source: source,
                                                     interval: interval, maxEntries: maxEntries))
            try writeRecord(.header, [UInt8](json))
        }

        /// Appends a snapshot (and its table, when it was read since the last one written).
        /// Returns false, writing nothing, when the file would pass `maxBytes`.
        @discardableResult
        public func append(_ s: Snapshot) throws -> Bool {
            var tableRecord: [UInt8]?
            var completenessRecord: [UInt8]?
            if let t = s.connections, t.readAt != lastTableReadAt || t.entries.count != lastTableCount {
                var w = ByteWriter()
                previous = w.table(t, seq: tables + 1, limit: maxEntries, previous: previous)
                tableRecord = w.bytes
                if let c = t.completeness {
                    var cw = ByteWriter()
                    cw.completeness(c, seq: tables + 1)
                    completenessRecord = cw.bytes
                }
            }
            var f = ByteWriter()
            f.frame(s, tableSeq: s.connections == nil ? 0 : (tableRecord == nil ? tables : tables + 1),
                    limit: tableRecord == nil ? nil : maxEntries)
            let size = (tableRecord?.count ?? 0) + (completenessRecord?.count ?? 0) + f.bytes.count + 15
            if bytesWritten + size > maxBytes { return false }
            var k = ByteWriter()
            k.kernelStatus(s.kernelStatus)
            var pacing: ByteWriter?
            if let p = s.tablePacing {
                var w = ByteWriter()
                w.string(p.mode.rawValue); w.f64(p.lastCost); w.f64(p.delay); w.f64(p.share)
                pacing = w
            }
            var host: ByteWriter?
            if let h = s.host, h != lastHost {
                var w = ByteWriter()
                w.opt(h.hostname) { $0.string($1) }; w.opt(h.kernelRelease) { $0.string($1) }
                host = w
            }
            if bytesWritten + size + k.bytes.count + (pacing?.bytes.count ?? 0) + (host?.bytes.count ?? 0) + 15 > maxBytes { return false }
            if let tr = tableRecord {
                try writeRecord(.table, tr)
                if let cr = completenessRecord { try writeRecord(.completeness, cr) }
                tables += 1
                lastTableReadAt = s.connections?.readAt
                lastTableCount = s.connections?.entries.count ?? -1
            }
            if let host {
                try writeRecord(.host, host.bytes)
                lastHost = s.host
            }
            try writeRecord(.kernelStatus, k.bytes)
            if let pacing { try writeRecord(.pacing, pacing.bytes) }
            try writeRecord(.frame, f.bytes)
            frames += 1
            return true
        }

        deinit { if fd >= 0 { _ = Glibc.close(fd) } }

        public func close() throws {
            guard fd >= 0 else { return }
            let rc = Glibc.close(fd)
            fd = -1
            if rc != 0 { throw CreateError.system(path, String(cString: strerror(errno))) }
        }

        func writeRecord(_ type: RecordType, _ payload: [UInt8]) throws {
            var head = ByteWriter()
            head.u32(UInt32(payload.count + 1))
            head.u8(type.rawValue)
            try write(Data(head.bytes + payload))
        }

        func write(_ d: Data) throws {
            if let err = d.withUnsafeBytes({ FileDescriptorWrite.all(fd, $0) }) {
                throw CreateError.system(path, "cannot write: " + String(cString: strerror(err)))
            }
            bytesWritten += d.count
        }
    }

    // MARK: - Creating the file

    /// The mode of a new recording: the owner's only. A recording holds every client's
    /// address and what it connected to; share it on purpose (chmod), not by default.
    public static let fileMode: mode_t = 0o600

    /// The header record's JSON object (keys sorted when written). Read leniently, as a
    /// JSON object of any values: a field missing or of the wrong type is nil, and the
    /// reader takes its default.
    struct HeaderJSON: Codable {
        var created: String?
        var source: String?
        var interval: Double?
        var maxEntries: Int?

        enum CodingKeys: String, CodingKey {
            case created, source, interval
            case maxEntries = "max_entries"
        }

        init(created: String, source: String, interval: Double, maxEntries: Int) {
            self.created = created
            self.source = source
            self.interval = interval
            self.maxEntries = maxEntries
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            created = try? c.decode(String.self, forKey: .created)
            source = try? c.decode(String.self, forKey: .source)
            interval = try? c.decode(Double.self, forKey: .interval)
            maxEntries = try? c.decode(Int.self, forKey: .maxEntries)
        }
    }

    /// Why `record` would not write a file.
    public enum CreateError: Error, CustomStringConvertible {
        case notRegular(String, kind: String)
        case notOwned(String, owner: UInt32)
        case system(String, String)

        public var description: String {
            switch self {
            case .notRegular(let p, let kind): "\(p) is a \(kind): ipvstop records only into a regular file (a new one, or one of its own)"
            case .notOwned(let p, let owner): "\(p) belongs to another user (uid \(owner)): not replaced"
            case .system(let p, let why): "\(p): \(why)"
            }
        }
    }

    /// Opens `path` for a new recording, writing only regular files this user owns:
    ///
    /// - a device node, FIFO, socket, directory or symbolic link at `path` is refused (as
    ///   root, `record /dev/null` once replaced /dev/null);
    /// - a regular file of another user is refused;
    /// - a regular file of this user is removed, then the recording is created in its place
    ///   with `O_CREAT|O_EXCL|O_NOFOLLOW`: whatever appears at `path` in between (a link
    ///   planted in a shared folder) makes the create fail instead of being followed;
    /// - the file gets `fileMode` (0600) whatever the umask.
    ///
    /// No temporary file and no rename: the recording is written in place, readable up to
    /// its last whole record if it is cut short.
    static func create(_ path: String) throws -> Int32 {
        func why() -> String { String(cString: strerror(errno)) }
        var st = stat()
        if lstat(path, &st) == 0 {
            let kind: String? = switch st.st_mode & S_IFMT {
            case S_IFREG: nil
            case S_IFLNK: "symbolic link"
            case S_IFDIR: "directory"
            case S_IFIFO: "FIFO"
            case S_IFCHR: "character device"
            case S_IFBLK: "block device"
            case S_IFSOCK: "socket"
            default: "special file"
            }
            if let kind { throw CreateError.notRegular(path, kind: kind) }
            if st.st_uid != geteuid() { throw CreateError.notOwned(path, owner: st.st_uid) }
            guard unlink(path) == 0 else { throw CreateError.system(path, "cannot replace it: " + why()) }
        } else if errno != ENOENT {
            throw CreateError.system(path, why())
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, fileMode)
        guard fd >= 0 else {
            if errno == EEXIST || errno == ELOOP { throw CreateError.system(path, "it reappeared while being replaced: not written") }
            throw CreateError.system(path, why())
        }
        // The umask may have taken bits away (or a restrictive one all of them): set it.
        _ = fchmod(fd, fileMode)
        return fd
    }

    // MARK: - Reading

    public static func read(path: String) throws -> Contents {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try read(data: [UInt8](data), name: path)
    }

    public static func read(data: [UInt8], name: String = "recording") throws -> Contents {
        guard let nl = data.prefix(64).firstIndex(of: 0x0A),
              let line = String(bytes: data[..<nl], encoding: .utf8), line.hasPrefix(magic + " ")
        else { throw ReadError.notARecording(name) }
        guard let version = Int(line.dropFirst(magic.count + 1)) else { throw ReadError.notARecording(name) }
        if version > format { throw ReadError.newerFormat(version) }

        var header: Header?
        var frames: [Snapshot] = []
        var truncated: [Int] = []
        var tables: [Int: (ConnectionTable, Int)] = [:]
        var lastTable: (seq: Int, table: ConnectionTable, dropped: Int)?
        var rejected: [String] = []
        var frameNumber = 0
        var pos = nl + 1
        var stoppedAt: (offset: Int, why: String)?
        // The next frame's ip_vs_status and pacing, from the records before it.
        var pendingStatus = IPVSStatusReading.absent
        var pendingPacing: TablePacing?
        /// The host of the frames from here on (a host record holds until the next).
        var currentHost: HostInfo?
        while pos + 5 <= data.count {
            var r = ByteReader(data, at: pos)
            guard let length = try? Int(r.u32()), length >= 1, pos + 4 + length <= data.count else {
                stoppedAt = (pos, "the file ends inside the record at byte \(pos) (cut short?)")
                break
            }
            let type = data[pos + 4]
            let body = ByteReader(data, at: pos + 5, end: pos + 4 + length)
            pos += 4 + length
            do {
                switch RecordType(rawValue: type) {
                case .header:
                    if let obj = try? JSONDecoder().decode(HeaderJSON.self, from: Data(data[body.pos..<body.end])) {
                        // The pace of a replay: a second when the header's is not a
                        // plausible interval (the one `record -d` takes, 0.1 to 3600 s).
                        var interval = obj.interval ?? 1
                        if !(interval.isFinite && (0.01...86_400).contains(interval)) {
                            rejected.append("header interval \(interval) s is not 0.01-86400: replayed at 1 s")
                            interval = 1
                        }
                        header = Header(
                            created: obj.created.flatMap { ISO8601Text.date(from: $0) } ?? Date(timeIntervalSince1970: 0),
                            source: obj.source ?? "?", interval: interval,
                            maxEntries: obj.maxEntries ?? 0)
                    }
                case .table:
                    var b = body
                    let (seq, table, dropped) = try b.table(previous: lastTable?.table.entries ?? [])
                    // Kept for the next table's references either way; frames use it only
                    // when its time is one a clock could give.
                    lastTable = (seq, table, dropped)
                    let readAt = table.readAt.timeIntervalSince1970
                    if plausibleTimes.contains(readAt) && table.cost.isPlausible {
                        // Only the latest table is kept in full; frames refer to it.
                        tables = [seq: (table, dropped)]
                    } else {
                        tables = [:]
                        lastTable = (-1, table, dropped)
                        rejected.append("connection table \(seq): read time \(readAt) or its cost is impossible; its frames shown without it")
                    }
                case .completeness:
                    var b = body
                    let (seq, c) = try b.completeness()
                    if var t = tables[seq] {
                        t.0.completeness = c
                        tables[seq] = t
                    }
                    if let l = lastTable, l.seq == seq {
                        var t = l.table
                        t.completeness = c
                        lastTable = (seq, t, l.dropped)
                    }
                case .kernelStatus:
                    var b = body
                    pendingStatus = try b.kernelStatus()
                case .pacing:
                    var b = body
                    let mode = TablePacing.Mode(rawValue: try b.string()) ?? .paced
                    let (cost, delay, share) = (try b.f64(), try b.f64(), try b.f64())
                    if [cost, delay, share].allSatisfy({ $0.isFinite && $0 >= 0 && $0 < 1e9 }) {
                        pendingPacing = TablePacing(mode: mode, lastCost: cost, delay: delay, share: share)
                    }
                case .host:
                    var b = body
                    // A kernel keeps at most 64 bytes of each (__NEW_UTS_LEN): longer is damage.
                    let name = try b.opt { try $0.string() }, release = try b.opt { try $0.string() }
                    if (name?.utf8.count ?? 0) <= 64 && (release?.utf8.count ?? 0) <= 64 {
                        currentHost = HostInfo(hostname: name, kernelRelease: release)
                    } else {
                        rejected.append("a host record with a name or release longer than 64 bytes; left out")
                    }
                case .frame:
                    var b = body
                    var (snap, seq) = try b.frame()
                    snap.host = currentHost
                    snap.kernelStatus = pendingStatus
                    snap.tablePacing = pendingPacing
                    pendingStatus = .absent
                    pendingPacing = nil
                    frameNumber += 1
                    let at = snap.takenAt.timeIntervalSince1970
                    let previous = frames.last?.takenAt.timeIntervalSince1970
                    // A clock may step back a little (NTP): only a jump of more than a day
                    // either way is taken for damage.
                    guard plausibleTimes.contains(at), previous.map({ abs(at - $0) <= maxFrameGap }) ?? true else {
                        rejected.append("frame \(frameNumber): time \(at) is impossible or a day away from the frame before; left out")
                        continue
                    }
                    let unsound = snap.sanitize()
                    if !unsound.isEmpty { rejected.append("frame \(frameNumber): " + unsound.joined(separator: ", ")) }
                    var dropped = 0
                    if seq > 0, let t = tables[seq] ?? (lastTable?.seq == seq ? (lastTable!.table, lastTable!.dropped) : nil) {
                        snap.connections = t.0
                        dropped = t.1
                        if var c = snap.connectionChanges {
                            c.newEntryIndices = c.newEntryIndices.filter { $0 < t.0.entries.count }
                            snap.connectionChanges = c
                        }
                    } else {
                        snap.connectionChanges = nil
                    }
                    frames.append(snap)
                    truncated.append(dropped)
                case nil:
                    continue
                }
            } catch {
                // A damaged record (a count or length past its end, an unknown address
                // family...): stop at the last good one.
                stoppedAt = (pos, "the record ending at byte \(pos) is damaged (a count or length past its end)")
                pos = data.count + 1
                break
            }
        }
        if frames.isEmpty {
            if !rejected.isEmpty { throw ReadError.unusable(name, rejected.prefix(3).joined(separator: "; ")) }
            if let stoppedAt { throw ReadError.unusable(name, stoppedAt.why) }
            throw ReadError.empty(name)
        }
        if let stoppedAt, pos > data.count {
            // Frames before the damage are played; the damage is said on each.
            rejected.append(stoppedAt.why + ": the frames after it are left out")
        }
        if !rejected.isEmpty {
            // Said on every frame, so every face (the status line, JSON, the subagent's
            // warning count) shows that the recording was not taken as it is.
            let note = "recording: \(rejected.count) impossible record(s) left out or corrected: " + rejected.prefix(3).joined(separator: "; ")
            for i in frames.indices { frames[i].source.warnings.append(note) }
        }
        let trailing = pos > data.count ? 0 : data.count - pos
        var contents = Contents(header: header, frames: frames, truncatedEntries: truncated, trailingBytes: trailing)
        contents.rejected = rejected
        return contents
    }
}

// MARK: - Bytes

struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { bytes.append(UInt8(v & 0xFF)); bytes.append(UInt8(v >> 8)) }
    mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
    mutating func u64(_ v: UInt64) { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
    mutating func varint(_ v: UInt64) {
        var x = v
        while x >= 0x80 { bytes.append(UInt8(x & 0x7F) | 0x80); x >>= 7 }
        bytes.append(UInt8(x))
    }
    mutating func int(_ v: Int) { varint(UInt64(max(0, v))) }
    /// Zig-zag: small negative numbers stay small.
    mutating func sint(_ v: Int64) { varint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }
    mutating func f64(_ v: Double) { u64(v.bitPattern) }
    mutating func bool(_ v: Bool) { u8(v ? 1 : 0) }
    mutating func date(_ d: Date) { f64(d.timeIntervalSince1970) }
    mutating func string(_ s: String) { let u = Array(s.utf8); int(u.count); bytes += u }
    mutating func strings(_ a: [String]) { int(a.count); for s in a { string(s) } }
    mutating func opt<T>(_ v: T?, _ f: (inout ByteWriter, T) -> Void) {
        if let v { u8(1); f(&self, v) } else { u8(0) }
    }
    mutating func address(_ a: IPAddress) {
        if a.isIPv4 { u8(4); u32(a.ipv4Value) } else { u8(6); u64(a.high); u64(a.low) }
    }

    mutating func cost(_ c: ReadCost) { f64(c.seconds); f64(c.cpuSeconds); int(c.bytes); int(c.readCalls) }

    mutating func kernelStatus(_ r: IPVSStatusReading) {
        switch r {
        case .absent: u8(0)
        case .unavailable(let why): u8(1); string(why)
        case .read(let st):
            u8(2)
            func table(_ w: inout ByteWriter, _ t: HashTableStatus) {
                w.int(t.buckets); w.int(t.bits); w.sint(Int64(t.loadFactor)); w.opt(t.emptyBuckets) { $0.int($1) }
                w.int(t.bucketsByLength.count)
                for (l, n) in t.bucketsByLength.sorted(by: { $0.key < $1.key }) { w.int(l); w.int(n) }
            }
            opt(st.conns) { $0.int($1) }; opt(st.connTable, table)
            opt(st.services) { $0.int($1) }; opt(st.serviceTable, table)
            opt(st.statsThreadSlots) { $0.int($1) }; opt(st.statsThreadSlotsMax) { $0.int($1) }
            opt(st.statsChainMaxLength) { $0.int($1) }; opt(st.statsThreadEstimators) { $0.int($1) }
            strings(st.unknownLines)
        }
    }

    mutating func completeness(_ c: TableCompleteness, seq: Int) {
        int(seq)
        string(c.verdict.rawValue); string(c.basis.rawValue)
        int(c.entriesRead); opt(c.expected) { $0.int($1) }; opt(c.tolerance) { $0.int($1) }
        int(c.attempts); string(c.detail)
    }
    mutating func stats(_ s: TrafficStats) { varint(s.conns); varint(s.inPackets); varint(s.outPackets); varint(s.inBytes); varint(s.outBytes) }
    mutating func rates(_ r: TrafficRates) { f64(r.cps); f64(r.inPPS); f64(r.outPPS); f64(r.inBPS); f64(r.outBPS) }

    mutating func frame(_ s: Snapshot, tableSeq: Int, limit: Int?) {
        date(s.takenAt)
        opt(s.info) { w, i in w.string(i.version); w.int(i.tableSize) }
        int(s.services.count)
        for svc in s.services {
            switch svc.key {
            case .address(let p, let a, let port): u8(0); u8(p.rawValue); address(a); u16(port)
            case .fwmark(let m, let f): u8(1); u32(m); u8(f == .ipv4 ? 4 : 6)
            }
            string(svc.scheduler)
            u32(svc.flags.rawValue)
            opt(svc.persistence) { w, p in
                w.opt(p.timeoutSeconds) { $0.u32($1) }
                w.opt(p.timeoutJiffies) { $0.u32($1) }
                switch p.netmask {
                case .ipv4(let m): w.u8(4); w.u32(m)
                case .prefix(let n): w.u8(6); w.int(n)
                }
            }
            opt(svc.persistenceEngine) { $0.string($1) }
            opt(svc.stats) { $0.stats($1) }
            opt(svc.rates) { $0.rates($1) }
            int(svc.realServers.count)
            for rs in svc.realServers {
                address(rs.address); u16(rs.port)
                u8(UInt8(ForwardMethod.allCases.firstIndex(of: rs.forward) ?? 0))
                sint(Int64(rs.weight))
                varint(UInt64(rs.activeConns)); varint(UInt64(rs.inactiveConns))
                opt(rs.persistentConns) { $0.varint(UInt64($1)) }
                opt(rs.upperThreshold) { $0.varint(UInt64($1)) }
                opt(rs.lowerThreshold) { $0.varint(UInt64($1)) }
                opt(rs.stats) { $0.stats($1) }
                opt(rs.rates) { $0.rates($1) }
                opt(rs.tunnel) { w, t in w.string(t.type); w.u16(t.port); w.u16(t.flags) }
            }
        }
        opt(s.global) { w, g in
            w.stats(g.totals); w.rates(g.rates)
            w.opt(g.perCPU) { w, p in w.int(p.count); for c in p { w.stats(c) } }
        }
        int(s.sysctls.count)
        for c in s.sysctls { string(c.name); string(c.value) }
        opt(s.timeouts) { w, t in w.varint(UInt64(t.tcp)); w.varint(UInt64(t.tcpFin)); w.varint(UInt64(t.udp)) }
        opt(s.syncDaemons) { w, ds in
            w.int(ds.count)
            for d in ds {
                w.u8(d.role == .master ? 0 : 1); w.string(d.multicastInterface); w.varint(UInt64(d.syncID))
                w.opt(d.maxLength) { $0.u16($1) }
                w.opt(d.multicastGroup) { $0.address($1) }
                w.opt(d.multicastPort) { $0.u16($1) }
                w.opt(d.multicastTTL) { $0.u8($1) }
            }
        }
        opt(s.slab) { w, sl in
            w.int(sl.objectSize); w.opt(sl.activeObjects) { $0.int($1) }; w.opt(sl.totalObjects) { $0.int($1) }; w.string(sl.origin)
        }
        opt(s.tickRate) { w, t in w.int(t.hz); w.string(t.origin.rawValue) }
        let src = s.source
        string(src.procRoot)
        switch src.netlink {
        case .used(let at, let c): u8(0); date(at); cost(c)
        case .off(let r): u8(1); string(r)
        case .unavailable(let r): u8(2); string(r)
        }
        int(src.files.count)
        for f in src.files { string(f.name); date(f.readAt); cost(f.cost) }
        strings(src.warnings)
        strings(src.unavailable)
        int(tableSeq)
        opt(s.connectionChanges) { w, c in
            w.date(c.previousReadAt); w.f64(c.interval)
            let kept = limit.map { l in c.newEntryIndices.filter { $0 < l } } ?? c.newEntryIndices
            w.int(kept.count)
            var last = 0
            for i in kept { w.int(i - last); last = i }
        }
    }

    /// Writes a table; entries also in `previous` (identity to index in the previous
    /// table) are written as references. Returns this table's identities.
    mutating func table(_ t: ConnectionTable, seq: Int, limit: Int, previous: [EntryIdentity: (Int, UInt32)]) -> [EntryIdentity: (Int, UInt32)] {
        int(seq)
        string(t.file)
        date(t.readAt)
        cost(t.cost)
        int(t.skipped.malformed); int(t.skipped.unknownProtocol); int(t.skipped.unknownState); strings(t.skipped.examples)
        let n = min(limit, t.entries.count)
        int(t.entries.count)
        int(n)
        bytes.reserveCapacity(bytes.count + n * 8)
        var ids: [EntryIdentity: (Int, UInt32)] = [:]
        ids.reserveCapacity(n)
        // The kernel lists a table in hash order, stable from one read to the next: the
        // index in the previous table is written as its distance from the one expected.
        var expected = 0
        for (i, e) in t.entries.prefix(n).enumerated() {
            let id = EntryIdentity(e)
            ids[id] = (i, e.expires)
            if let (j, old) = previous[id], e.state.rawValue < 32 {
                u8(0xFF)
                sint(Int64(j - expected))
                u8(e.state.rawValue | (e.flags & 0x7) << 5)
                sint(Int64(e.expires) - Int64(old))
                expected = j + 1
                continue
            }
            let fam = (e.client.isIPv4 ? 0 : 1) | (e.virtual.isIPv4 ? 0 : 2) | (e.destination.isIPv4 ? 0 : 4)
            u8(UInt8(fam) | (e.flags & 0x1F) << 3)
            u8(e.proto.rawValue)
            u8(e.state.rawValue)
            for a in [e.client, e.virtual, e.destination] {
                if a.isIPv4 { u32(a.ipv4Value) } else { u64(a.high); u64(a.low) }
            }
            u16(e.clientPort); u16(e.virtualPort); u16(e.destinationPort)
            varint(UInt64(e.expires))
        }
        let pe = t.persistenceEngineData.filter { $0.key < n }.sorted { $0.key < $1.key }
        int(pe.count)
        for (i, d) in pe { int(i); string(d.name); string(d.data) }
        return ids
    }
}

/// What identifies a connection entry from one table read to the next: its protocol and
/// its three endpoints.
struct EntryIdentity: Hashable {
    var client: IPAddress
    var virtual: IPAddress
    var destination: IPAddress
    var ports: UInt64

    init(_ e: ConnectionEntry) {
        client = e.client
        virtual = e.virtual
        destination = e.destination
        ports = UInt64(e.clientPort) | UInt64(e.virtualPort) << 16 | UInt64(e.destinationPort) << 32 | UInt64(e.proto.rawValue) << 48
    }

    func hash(into h: inout Hasher) {
        h.combine(client.low &* Mixer.golden ^ client.high ^ virtual.low &* Mixer.prime2
                  ^ destination.low &* Mixer.prime5 ^ destination.high ^ ports &* Mixer.prime3)
    }
}

struct ByteReader {
    struct Overrun: Error {}
    let data: [UInt8]
    var pos: Int
    let end: Int

    init(_ data: [UInt8], at pos: Int, end: Int? = nil) {
        self.data = data
        self.pos = pos
        self.end = end ?? data.count
    }

    mutating func u8() throws -> UInt8 {
        guard pos < end else { throw Overrun() }
        defer { pos += 1 }
        return data[pos]
    }
    mutating func u16() throws -> UInt16 { UInt16(try u8()) | UInt16(try u8()) << 8 }
    mutating func u32() throws -> UInt32 {
        guard pos + 4 <= end else { throw Overrun() }
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(data[pos + i]) << (8 * UInt32(i)) }
        pos += 4
        return v
    }
    mutating func u64() throws -> UInt64 {
        guard pos + 8 <= end else { throw Overrun() }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(data[pos + i]) << (8 * UInt64(i)) }
        pos += 8
        return v
    }
    mutating func varint() throws -> UInt64 {
        var v: UInt64 = 0, shift: UInt64 = 0
        while true {
            let b = try u8()
            v |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return v }
            shift += 7
            if shift > 63 { throw Overrun() }
        }
    }
    mutating func int() throws -> Int { Int(clamping: try varint()) }
    mutating func sint() throws -> Int64 { let u = try varint(); return Int64(bitPattern: u >> 1) ^ -Int64(bitPattern: u & 1) }
    mutating func f64() throws -> Double { Double(bitPattern: try u64()) }
    mutating func date() throws -> Date { Date(timeIntervalSince1970: try f64()) }
    mutating func string() throws -> String {
        let n = try int()
        // `n` may be anything up to Int.max: compared with what is left, never added to pos.
        guard n >= 0, n <= end - pos else { throw Overrun() }
        defer { pos += n }
        return String(decoding: data[pos..<(pos + n)], as: UTF8.self)
    }
    mutating func strings() throws -> [String] { try list { try $0.string() } }

    /// A list written as its count and its elements. The count is only believed as far as
    /// the bytes left could hold it (every element takes at least one byte), and the list
    /// grows as elements are read: a count of 2^64-1 once wrapped an allocation's size (a
    /// heap overflow) or asked for terabytes (an abort).
    mutating func list<T>(_ element: (inout ByteReader) throws -> T) throws -> [T] {
        let n = try int()
        guard n >= 0, n <= end - pos else { throw Overrun() }
        var out: [T] = []
        for _ in 0..<n { out.append(try element(&self)) }
        return out
    }

    /// A count for a loop, checked the way `list` checks it.
    mutating func count() throws -> Int {
        let n = try int()
        guard n >= 0, n <= end - pos else { throw Overrun() }
        return n
    }
    mutating func opt<T>(_ f: (inout ByteReader) throws -> T) throws -> T? {
        try u8() == 0 ? nil : f(&self)
    }
    mutating func address() throws -> IPAddress {
        switch try u8() {
        case 4: return IPAddress(ipv4: try u32())
        case 6: return IPAddress(ipv6High: try u64(), low: try u64())
        default: throw Overrun()
        }
    }
    mutating func cost() throws -> ReadCost { ReadCost(seconds: try f64(), cpuSeconds: try f64(), bytes: try int(), readCalls: try int()) }
    /// ip_vs_status as written; figures outside what the kernel prints (ints) are dropped.
    mutating func kernelStatus() throws -> IPVSStatusReading {
        switch try u8() {
        case 1: return .unavailable(reason: String(try string().prefix(400)))
        case 2:
            func small(_ v: Int) -> Int? { v <= Int(Int32.max) ? v : nil }
            func table(_ r: inout ByteReader) throws -> HashTableStatus? {
                let buckets = try r.int(), bits = try r.int(), lf = try r.sint()
                let empty = try r.opt { try $0.int() }
                var lengths: [Int: Int] = [:]
                for _ in 0..<(try r.count()) { let l = try r.int(); lengths[l] = try r.int() }
                guard let b = small(buckets), bits <= 31, (-32...32).contains(lf) else { return nil }
                return HashTableStatus(buckets: b, bits: bits, loadFactor: Int(lf), emptyBuckets: empty.flatMap(small), bucketsByLength: lengths)
            }
            var st = IPVSStatus()
            st.conns = try opt { try $0.int() }.flatMap(small)
            st.connTable = try opt { try table(&$0) } ?? nil
            st.services = try opt { try $0.int() }.flatMap(small)
            st.serviceTable = try opt { try table(&$0) } ?? nil
            st.statsThreadSlots = try opt { try $0.int() }.flatMap(small)
            st.statsThreadSlotsMax = try opt { try $0.int() }.flatMap(small)
            st.statsChainMaxLength = try opt { try $0.int() }.flatMap(small)
            st.statsThreadEstimators = try opt { try $0.int() }.flatMap(small)
            st.unknownLines = try strings().prefix(64).map { String($0.prefix(80)) }
            return .read(st)
        default: return .absent
        }
    }

    /// A table's completeness; an unknown verdict (a newer writer's) reads as partial, so
    /// a table is never taken for whole on a guess.
    mutating func completeness() throws -> (Int, TableCompleteness) {
        let seq = try int()
        let verdict = TableCompleteness.Verdict(rawValue: try string()) ?? .partial
        let basis = TableCompleteness.Basis(rawValue: try string()) ?? .none
        let read = try int()
        let expected = try opt { try $0.int() }
        let tolerance = try opt { try $0.int() }
        let attempts = try int()
        let detail = try string()
        return (seq, TableCompleteness(verdict: verdict, basis: basis, entriesRead: read, expected: expected, tolerance: tolerance,
                                       attempts: max(1, attempts), detail: String(detail.prefix(400))))
    }

    mutating func stats() throws -> TrafficStats {
        TrafficStats(conns: try varint(), inPackets: try varint(), outPackets: try varint(), inBytes: try varint(), outBytes: try varint())
    }
    mutating func rates() throws -> TrafficRates {
        TrafficRates(cps: try f64(), inPPS: try f64(), outPPS: try f64(), inBPS: try f64(), outBPS: try f64())
    }

    mutating func frame() throws -> (Snapshot, Int) {
        let takenAt = try date()
        let info = try opt { IPVSInfo(version: try $0.string(), tableSize: try $0.int()) }
        var services: [VirtualService] = []
        for _ in 0..<(try count()) {
            let key: ServiceKey
            switch try u8() {
            case 0: key = .address(IPProtocolNumber(rawValue: try u8()), try address(), try u16())
            default: key = .fwmark(try u32(), try u8() == 6 ? .ipv6 : .ipv4)
            }
            let scheduler = try string()
            let flags = ServiceFlags(rawValue: try u32())
            let persistence = try opt { r -> Persistence in
                let secs = try r.opt { try $0.u32() }
                let jif = try r.opt { try $0.u32() }
                let mask: PersistenceNetmask = try r.u8() == 4 ? .ipv4(try r.u32()) : .prefix(try r.int())
                return Persistence(timeoutSeconds: secs, timeoutJiffies: jif, netmask: mask)
            }
            let pe = try opt { try $0.string() }
            let stats = try opt { try $0.stats() }
            let rates = try opt { try $0.rates() }
            var rss: [RealServer] = []
            for _ in 0..<(try count()) {
                let a = try address(), port = try u16()
                let fi = Int(try u8())
                let fwd = fi < ForwardMethod.allCases.count ? ForwardMethod.allCases[fi] : .masq
                let weight = Int32(clamping: try sint())
                let act = UInt32(clamping: try varint()), inact = UInt32(clamping: try varint())
                let pers = try opt { UInt32(clamping: try $0.varint()) }
                let u = try opt { UInt32(clamping: try $0.varint()) }
                let l = try opt { UInt32(clamping: try $0.varint()) }
                let st = try opt { try $0.stats() }
                let rt = try opt { try $0.rates() }
                let tun = try opt { TunnelInfo(type: try $0.string(), port: try $0.u16(), flags: try $0.u16()) }
                rss.append(RealServer(address: a, port: port, forward: fwd, weight: weight, activeConns: act, inactiveConns: inact,
                                      persistentConns: pers, upperThreshold: u, lowerThreshold: l, stats: st, rates: rt, tunnel: tun))
            }
            services.append(VirtualService(key: key, scheduler: scheduler, flags: flags, persistence: persistence,
                                           persistenceEngine: pe, stats: stats, rates: rates, realServers: rss))
        }
        let global = try opt { r -> GlobalStats in
            let totals = try r.stats(), rates = try r.rates()
            let per = try r.opt { r in try r.list { try $0.stats() } }
            return GlobalStats(totals: totals, rates: rates, perCPU: per)
        }
        let sysctls = try list { Sysctl(name: try $0.string(), value: try $0.string()) }
        let timeouts = try opt { Timeouts(tcp: UInt32(clamping: try $0.varint()), tcpFin: UInt32(clamping: try $0.varint()), udp: UInt32(clamping: try $0.varint())) }
        let sync = try opt { r in
            try r.list { r in
                SyncDaemon(role: try r.u8() == 0 ? .master : .backup, multicastInterface: try r.string(), syncID: UInt32(clamping: try r.varint()),
                           maxLength: try r.opt { try $0.u16() }, multicastGroup: try r.opt { try $0.address() },
                           multicastPort: try r.opt { try $0.u16() }, multicastTTL: try r.opt { try $0.u8() })
            }
        }
        let slab = try opt { SlabInfo(objectSize: try $0.int(), activeObjects: try $0.opt { try $0.int() }, totalObjects: try $0.opt { try $0.int() }, origin: try $0.string()) }
        let tick = try opt { TickRate(hz: try $0.int(), origin: TickRate.Origin(rawValue: try $0.string()) ?? .option) }
        let procRoot = try string()
        let netlink: NetlinkStatus
        switch try u8() {
        case 0: netlink = .used(readAt: try date(), cost: try cost())
        case 1: netlink = .off(reason: try string())
        default: netlink = .unavailable(reason: try string())
        }
        let files = try list { FileRead(name: try $0.string(), readAt: try $0.date(), cost: try $0.cost()) }
        let warnings = try strings(), unavailable = try strings()
        let seq = try int()
        let changes = try opt { r -> ConnectionChanges in
            let prev = try r.date(), interval = try r.f64()
            var idx: [Int] = []
            var last = 0
            for _ in 0..<(try r.count()) {
                // Indices only grow, each by a varint: a sum past Int.max is damage.
                let (sum, overflow) = last.addingReportingOverflow(try r.int())
                if overflow { throw Overrun() }
                last = sum
                idx.append(last)
            }
            return ConnectionChanges(previousReadAt: prev, newEntryIndices: idx, interval: interval)
        }
        var snap = Snapshot(takenAt: takenAt, info: info, services: services, connections: nil, global: global, sysctls: sysctls,
                            timeouts: timeouts, syncDaemons: sync, slab: slab, tickRate: tick,
                            source: SourceReport(procRoot: procRoot, netlink: netlink, files: files, warnings: warnings, unavailable: unavailable))
        snap.connectionChanges = changes
        return (snap, seq)
    }

    mutating func table(previous: [ConnectionEntry]) throws -> (Int, ConnectionTable, Int) {
        let seq = try int()
        let file = try string()
        let readAt = try date()
        let cost = try self.cost()
        var skipped = SkippedLines()
        skipped.malformed = try int(); skipped.unknownProtocol = try int(); skipped.unknownState = try int()
        skipped.examples = try strings()
        let original = try int()
        let n = try int()
        guard n <= (end - pos) / 4 + 1 else { throw Overrun() }
        var entries: [ConnectionEntry] = []
        entries.reserveCapacity(n)
        var expected = 0
        for _ in 0..<n {
            let fam = try u8()
            if fam == 0xFF {
                // The same entry as in the previous table, with its new state and time.
                // Distances and time deltas are zig-zag varints of any size: added with
                // overflow checked (Int64.max trapped), the index then checked against
                // the previous table, the time clamped to what an entry holds.
                let (j, jOverflow) = expected.addingReportingOverflow(Int(try sint()))
                guard !jOverflow, j >= 0 && j < previous.count else { throw Overrun() }
                var e = previous[j]
                let sf = try u8()
                e.state = ConnectionState(rawValue: sf & 0x1F)
                e.flags = sf >> 5
                let (t, tOverflow) = Int64(e.expires).addingReportingOverflow(try sint())
                e.expires = tOverflow ? (t < 0 ? UInt32.max : 0) : UInt32(clamping: max(0, t))
                entries.append(e)
                expected = j + 1
                continue
            }
            let proto = try u8(), state = try u8()
            func addr(_ v6: Bool) throws -> IPAddress {
                v6 ? IPAddress(ipv6High: try u64(), low: try u64()) : IPAddress(ipv4: try u32())
            }
            let c = try addr(fam & 1 != 0), v = try addr(fam & 2 != 0), d = try addr(fam & 4 != 0)
            let cp = try u16(), vp = try u16(), dp = try u16()
            let exp = UInt32(clamping: try varint())
            entries.append(ConnectionEntry(proto: IPProtocolNumber(rawValue: proto), client: c, clientPort: cp, virtual: v, virtualPort: vp,
                                           destination: d, destinationPort: dp, state: ConnectionState(rawValue: state), expires: exp, flags: fam >> 3))
        }
        var pe: [Int: PersistenceEngineData] = [:]
        for _ in 0..<(try count()) {
            let i = try int()
            let d = PersistenceEngineData(name: try string(), data: try string())
            if i < n { pe[i] = d }
        }
        // Entries the recorder left out: never negative (`original` is the table's size).
        return (seq, ConnectionTable(entries: entries, persistenceEngineData: pe, file: file, readAt: readAt, cost: cost, skipped: skipped), max(0, original - n))
    }
}

// MARK: - Figures a recording cannot hold

extension ReadCost {
    /// Seconds that are finite, not negative and under a day; counts not negative.
    var isPlausible: Bool {
        seconds.isFinite && cpuSeconds.isFinite && (0..<86_400).contains(seconds) && (0..<86_400).contains(cpuSeconds)
            && bytes >= 0 && readCalls >= 0
    }
}

extension TrafficRates {
    /// Every rate finite, not negative and below 2^64 (the kernel's rates are u64).
    var isPlausible: Bool {
        [cps, inPPS, outPPS, inBPS, outBPS].allSatisfy { $0.isFinite && $0 >= 0 && $0 < 18_446_744_073_709_551_616.0 }
    }

    /// The same rates with each impossible one as NaN: "unavailable" to every face (JSON
    /// null, the dashboard's "?", no SNMP value), never a made-up number.
    var withImpossibleAsNaN: TrafficRates {
        func ok(_ v: Double) -> Double { v.isFinite && v >= 0 && v < 18_446_744_073_709_551_616.0 ? v : .nan }
        return TrafficRates(cps: ok(cps), inPPS: ok(inPPS), outPPS: ok(outPPS), inBPS: ok(inBPS), outBPS: ok(outBPS))
    }
}

extension Snapshot {
    /// Puts right what a recording may hold but no reader could have produced, and says
    /// what: rates that are NaN, infinite, negative or past 2^64 become unavailable (nil,
    /// or NaN in the director's totals); read times that are not plausible become the
    /// frame's own time; an HZ outside 10-10000 and a table size that is not a power of two
    /// become unknown; a `connectionChanges` with an impossible interval is dropped.
    /// Returns one phrase per kind of figure corrected (empty when none was).
    mutating func sanitize() -> [String] {
        var fixed: Set<String> = []
        for i in services.indices {
            if let r = services[i].rates, !r.isPlausible { services[i].rates = nil; fixed.insert("impossible rates made unavailable") }
            for j in services[i].realServers.indices {
                if let r = services[i].realServers[j].rates, !r.isPlausible {
                    services[i].realServers[j].rates = nil
                    fixed.insert("impossible rates made unavailable")
                }
                if services[i].realServers[j].weight < 0 { fixed.insert("negative weight (kept, not the kernel's)") }
            }
        }
        if let g = global, !g.rates.isPlausible {
            global?.rates = g.rates.withImpossibleAsNaN
            fixed.insert("impossible rates made unavailable")
        }
        if let t = tickRate, !(10...10_000).contains(t.hz) { tickRate = nil; fixed.insert("HZ \(t.hz) made unknown") }
        if let i = info, i.tableSize < 0 || (i.tableSize > 0 && i.tableSize & (i.tableSize - 1) != 0) {
            info?.tableSize = 0
            fixed.insert("table size \(i.tableSize) made unknown")
        }
        if let s = slab, !(1...(64 << 10)).contains(s.objectSize) { slab = nil; fixed.insert("slab object size \(s.objectSize) made unknown") }
        let plausible = Recording.plausibleTimes
        if case .used(let at, let cost) = source.netlink, !plausible.contains(at.timeIntervalSince1970) || !cost.isPlausible {
            source.netlink = .used(readAt: takenAt, cost: cost.isPlausible ? cost : ReadCost(seconds: 0, cpuSeconds: 0, bytes: 0, readCalls: 0))
            fixed.insert("netlink read time or cost corrected")
        }
        for i in source.files.indices where !plausible.contains(source.files[i].readAt.timeIntervalSince1970) || !source.files[i].cost.isPlausible {
            source.files[i].readAt = takenAt
            if !source.files[i].cost.isPlausible { source.files[i].cost = ReadCost(seconds: 0, cpuSeconds: 0, bytes: 0, readCalls: 0) }
            fixed.insert("file read times or costs corrected")
        }
        if let c = connectionChanges,
           !(c.interval.isFinite && c.interval >= 0 && c.interval < 86_400 && plausible.contains(c.previousReadAt.timeIntervalSince1970)) {
            connectionChanges = nil
            fixed.insert("impossible table interval: new connections not told")
        }
        return fixed.sorted()
    }
}
