import IPVSModel

/// Splits a file's text into lines the way the kernel writes them (LF), also taking CR LF
/// (a capture copied through another system), and counts the CR LF ends so the snapshot
/// can say so. A Swift `String` holds CR LF as one `Character`, so splitting on "\n"
/// alone would leave such a file as one line (and read as empty).
enum Lines {
    static func split(_ text: String) -> (lines: [Substring], crlf: Int) {
        var crlf = 0
        let lines = text.split(omittingEmptySubsequences: true) { c in
            if c == "\r\n" { crlf += 1; return true }
            return c == "\n"
        }
        return (lines, crlf)
    }
}

/// Parses `/proc/net/ip_vs_stats` and `/proc/net/ip_vs_stats_percpu`: every number in them
/// is hex.
///
/// ```
///    Total Incoming Outgoing         Incoming         Outgoing
///    Conns  Packets  Packets            Bytes            Bytes
///       1F       A0       9C             3B60             5A1E
///
///  Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s
///        0        2        2               A0               F0
/// ```
/// The per-CPU file has a CPU column (hex index, `~` for the total) before the totals and
/// its rate row is indented under it.
public enum StatsParser {
    public enum Failure: Error, Equatable { case malformed(String) }

    public static func parse(_ text: String) throws -> GlobalStats {
        let rows = numericRows(text)
        guard rows.count == 2, rows.allSatisfy({ $0.count == 5 }) else {
            throw Failure.malformed("expected a totals row and a rates row of five hex numbers")
        }
        return GlobalStats(totals: stats(rows[0]), rates: rates(rows[1]))
    }

    /// The per-CPU file: per-CPU totals, the `~` total row and the rates.
    public static func parsePerCPU(_ text: String) throws -> GlobalStats {
        var perCPU: [TrafficStats] = []
        var total: TrafficStats?
        var rateRow: [UInt64]?
        for line in Lines.split(text).lines {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if f.count == 6 {
                let nums = f[1...].compactMap { UInt64($0, radix: 16) }
                guard nums.count == 5 else { continue }
                if f[0] == "~" {
                    total = stats(nums)
                } else if UInt32(f[0], radix: 16) != nil {
                    perCPU.append(stats(nums))
                }
            } else if f.count == 5 {
                let nums = f.compactMap { UInt64($0, radix: 16) }
                if nums.count == 5 { rateRow = nums }
            }
        }
        guard let total, let rateRow else {
            throw Failure.malformed("no total (~) row or no rates row")
        }
        return GlobalStats(totals: total, rates: rates(rateRow), perCPU: perCPU)
    }

    /// Rows made only of hex numbers (header rows have words that are not hex, e.g.
    /// "Total", "Conns/s"; "Bytes" is not hex because of the 'y').
    static func numericRows(_ text: String) -> [[UInt64]] {
        Lines.split(text).lines.compactMap { line in
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard !f.isEmpty else { return nil }
            let nums = f.compactMap { UInt64($0, radix: 16) }
            return nums.count == f.count ? nums : nil
        }
    }

    static func stats(_ n: [UInt64]) -> TrafficStats {
        TrafficStats(conns: n[0], inPackets: n[1], outPackets: n[2], inBytes: n[3], outBytes: n[4])
    }

    static func rates(_ n: [UInt64]) -> TrafficRates {
        TrafficRates(cps: Double(n[0]), inPPS: Double(n[1]), outPPS: Double(n[2]), inBPS: Double(n[3]), outBPS: Double(n[4]))
    }
}

/// Finds the `ip_vs_conn` cache in `/proc/slabinfo`:
/// `name <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : ...`.
public enum SlabInfoParser {
    /// The largest object a slab cache holds (KMALLOC_MAX_CACHE_SIZE is two pages; 64 KiB
    /// leaves room for large page sizes). `ip_vs_conn` is ~300 bytes.
    public static let maxObjectSize = 64 << 10
    /// More objects than 2^40 would need petabytes of slab: not a count the kernel printed.
    public static let maxObjects = 1 << 40

    public static func parse(_ text: String, cache: String = "ip_vs_conn") -> SlabInfo? {
        try? checked(text, cache: cache)
    }

    public enum Failure: Error, CustomStringConvertible {
        case impossible(String)
        public var description: String { switch self { case .impossible(let s): s } }
    }

    /// As `parse`, but an `ip_vs_conn` line whose figures the kernel cannot have printed
    /// (an object size outside 1...64 KiB, negative or absurd object counts) throws, so the
    /// reader rejects it with a warning instead of multiplying it into the table's memory.
    public static func checked(_ text: String, cache: String = "ip_vs_conn") throws -> SlabInfo? {
        for line in Lines.split(text).lines where line.hasPrefix(cache + " ") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 4, let active = Int(f[1]), let total = Int(f[2]), let size = Int(f[3]) else { return nil }
            guard (1...maxObjectSize).contains(size) else {
                throw Failure.impossible("slabinfo: ip_vs_conn object size \(f[3]) is not 1-\(maxObjectSize) bytes; entry size unavailable")
            }
            guard (0...maxObjects).contains(active), (0...maxObjects).contains(total) else {
                throw Failure.impossible("slabinfo: ip_vs_conn object counts \(f[1]) / \(f[2]) are not plausible; entry size unavailable")
            }
            return SlabInfo(objectSize: size, activeObjects: active, totalObjects: total)
        }
        return nil
    }
}

/// `CONFIG_HZ=250` from a kernel config.
public enum KernelConfigParser {
    /// The tick rates a kernel can be built with are 100 to 1000; anything outside
    /// 10...10000 (the range `--hz` takes) is not a real CONFIG_HZ.
    public static let plausible = 10...10_000

    /// CONFIG_HZ when it is a plausible tick rate; nil otherwise (see `raw`).
    public static func hz(_ text: String) -> Int? {
        raw(text).flatMap { plausible.contains($0) ? $0 : nil }
    }

    /// CONFIG_HZ as written, when it is an integer (any size that fits an Int), so the
    /// reader can name an implausible one in a warning.
    public static func raw(_ text: String) -> Int? {
        for line in Lines.split(text).lines where line.hasPrefix("CONFIG_HZ=") {
            if let v = Int(line.dropFirst("CONFIG_HZ=".count)) { return v }
        }
        return nil
    }
}

/// Parses `/proc/net/ip_vs_status` (kernels 7.1 and later): `Name:<TAB>value` lines.
///
/// ```
/// Conns:	9401
/// Conn buckets:	524288 (19 bits, lfactor -5)
/// Conn buckets empty:	505633 (96%)
/// Conn buckets len-1:	18322 (98%)
/// Services:	12
/// Service buckets:	128 (7 bits, lfactor -3)
/// Service buckets empty:	116 (90%)
/// Service buckets len-1:	12 (100%)
/// Stats thread slots:	1 (max 16)
/// Stats chain max len:	16
/// Stats thread ests:	38400
/// ```
/// Every known line is read for what it holds; a line this version does not know (a later
/// kernel's) is kept by name in `unknownLines`, and a known line whose numbers cannot be
/// read goes to `malformedLines`: neither is guessed at.
public enum IPVSStatusParser {
    /// No table has more than 2^31 buckets (the kernel's sizes are ints): larger is not
    /// the kernel's figure.
    static let maxCount = Int(Int32.max)

    public static func parse(_ text: String) -> IPVSStatus {
        var s = IPVSStatus()
        for line in Lines.split(text).lines {
            guard let colon = line.firstIndex(of: ":") else {
                if !line.allSatisfy(\.isWhitespace) { s.unknownLines.append(String(line.prefix(80))) }
                continue
            }
            let name = String(trimmed(line[..<colon]))
            let value = trimmed(line[line.index(after: colon)...])
            let words = value.split(whereSeparator: { $0 == " " || $0 == "(" || $0 == ")" || $0 == "," || $0 == "%" || $0 == "\t" })
            func int(_ i: Int) -> Int? {
                guard i < words.count, let v = Int(words[i]), abs(v) <= maxCount else { return nil }
                return v
            }
            var ok = true
            switch name {
            case "Conns":
                if let v = int(0), v >= 0 { s.conns = v } else { ok = false }
            case "Services":
                if let v = int(0), v >= 0 { s.services = v } else { ok = false }
            case "Conn buckets", "Service buckets":
                // "N (B bits, lfactor L)"
                if let n = int(0), n >= 0, let b = int(1), words.count > 4, words[2] == "bits", words[3] == "lfactor", let l = int(4),
                   (0...31).contains(b), (-32...32).contains(l) {
                    var t = (name == "Conn buckets" ? s.connTable : s.serviceTable) ?? HashTableStatus(buckets: n, bits: b, loadFactor: l)
                    t.buckets = n
                    t.bits = b
                    t.loadFactor = l
                    if name == "Conn buckets" { s.connTable = t } else { s.serviceTable = t }
                } else { ok = false }
            case "Conn buckets empty", "Service buckets empty":
                let conn = name.hasPrefix("Conn")
                if let n = int(0), n >= 0, var t = conn ? s.connTable : s.serviceTable {
                    t.emptyBuckets = n
                    if conn { s.connTable = t } else { s.serviceTable = t }
                } else { ok = false }
            case _ where (name.hasPrefix("Conn buckets len-") || name.hasPrefix("Service buckets len-")):
                let conn = name.hasPrefix("Conn")
                if let len = Int(name[name.index(after: name.lastIndex(of: "-")!)...]), (1...64).contains(len),
                   let n = int(0), n >= 0, var t = conn ? s.connTable : s.serviceTable {
                    t.bucketsByLength[len] = n
                    if conn { s.connTable = t } else { s.serviceTable = t }
                } else { ok = false }
            case "Stats thread slots":
                // "N (max M)"
                if let n = int(0), n >= 0, words.count > 2, words[1] == "max", let m = int(2), m >= 0 {
                    s.statsThreadSlots = n
                    s.statsThreadSlotsMax = m
                } else { ok = false }
            case "Stats chain max len":
                if let v = int(0), v >= 0 { s.statsChainMaxLength = v } else { ok = false }
            case "Stats thread ests":
                if let v = int(0), v >= 0 { s.statsThreadEstimators = v } else { ok = false }
            default:
                s.unknownLines.append(String(line.prefix(80)))
                continue
            }
            if !ok { s.malformedLines.append(String(line.prefix(80))) }
        }
        return s
    }

    static func trimmed(_ s: Substring) -> Substring {
        var t = s
        while let c = t.first, c == " " || c == "\t" { t.removeFirst() }
        while let c = t.last, c == " " || c == "\t" { t.removeLast() }
        return t
    }
}
