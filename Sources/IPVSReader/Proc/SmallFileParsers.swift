import IPVSModel

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
        for line in text.split(separator: "\n") {
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
        text.split(separator: "\n").compactMap { line in
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
    public static func parse(_ text: String, cache: String = "ip_vs_conn") -> SlabInfo? {
        for line in text.split(separator: "\n") where line.hasPrefix(cache + " ") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 4, let active = Int(f[1]), let total = Int(f[2]), let size = Int(f[3]) else { return nil }
            return SlabInfo(objectSize: size, activeObjects: active, totalObjects: total)
        }
        return nil
    }
}

/// `CONFIG_HZ=250` from a kernel config.
public enum KernelConfigParser {
    public static func hz(_ text: String) -> Int? {
        for line in text.split(separator: "\n") where line.hasPrefix("CONFIG_HZ=") {
            if let v = Int(line.dropFirst("CONFIG_HZ=".count)), v > 0 { return v }
        }
        return nil
    }
}
