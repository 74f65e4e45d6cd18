import FoundationEssentials
import IPVSModel
#if canImport(Glibc)
import Glibc
#endif

/// How numbers, durations and costs are written on screen.
public enum Format {
    /// A counter, ipvsadm's way: exact below 100,000; otherwise divided by 1000 until it
    /// has at most four digits, with K, M, G, T, P or E (never wider than five columns).
    /// `exact` writes every digit (the `x` key, ipvsadm's `--exact`).
    public static func count<I: BinaryInteger>(_ n: I, exact: Bool) -> String {
        let v = UInt64(clamping: n)
        if exact || v < 100_000 { return String(v) }
        var q = v
        var unit = 0
        while q >= 10_000 && unit < 6 {
            q /= 1_000
            unit += 1
        }
        return String(q) + ["", "K", "M", "G", "T", "P", "E"][unit]
    }

    /// `d` as an Int, saturating: NaN is 0, anything past Int's range its nearest end.
    /// Figures on screen come from files and recordings; converting one must never trap.
    public static func int(_ d: Double) -> Int { d.saturatedInt }

    /// A rate: rounded to an integer, then as `count`; saturates at 2^64-1 (the kernel's
    /// rates are u64); "?" when it is not a number.
    public static func rate(_ r: Double, exact: Bool) -> String {
        guard r.isFinite else { return "?" }
        let v = r.rounded()
        return count(v >= 18_446_744_073_709_551_615.0 ? UInt64.max : UInt64(max(0, v)), exact: exact)
    }

    /// `v` with `digits` decimals (rounded half up), without Foundation's formatter; beyond
    /// 10^15 without decimals (`%.0f`), "?" when it is not finite.
    public static func fixed(_ v: Double, _ digits: Int) -> String {
        guard v.isFinite else { return "?" }
        var scale = 1.0
        for _ in 0..<max(0, digits) { scale *= 10 }
        guard abs(v) * scale < 9e15 else { return PrintfNumber.fixed(v, decimals: 0) }
        let n = Int64((abs(v) * scale).rounded())
        let sign = v < 0 && n != 0 ? "-" : ""
        guard digits > 0 else { return sign + String(n) }
        var frac = String(n % Int64(scale))
        while frac.count < digits { frac = "0" + frac }
        return sign + String(n / Int64(scale)) + "." + frac
    }

    /// `2026-01-01 01:00:03` in the local time zone (TZ), without ICU.
    public static func localTime(_ d: Date) -> String {
        #if canImport(Glibc)
        var t = time_t(int(d.timeIntervalSince1970.rounded(.down)))
        var tm = tm()
        localtime_r(&t, &tm)
        return "\(tm.tm_year + 1900)-" + two(Int(tm.tm_mon) + 1) + "-" + two(Int(tm.tm_mday)) + " "
            + two(Int(tm.tm_hour)) + ":" + two(Int(tm.tm_min)) + ":" + two(Int(tm.tm_sec))
        #else
        return d.description
        #endif
    }

    /// Seconds left: `47`, `4:47`, `1:02:03`.
    public static func clock(_ seconds: Int) -> String {
        let s = max(0, seconds)
        if s < 60 { return String(s) }
        if s < 3600 { return "\(s / 60):" + two(s % 60) }
        return "\(s / 3600):" + two(s / 60 % 60) + ":" + two(s % 60)
    }

    static func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// An age: `0.4s`, `12s`, `3m10s`, `2h05m`.
    public static func age(_ seconds: Double) -> String {
        guard !seconds.isNaN else { return "?" }
        let s = max(0, seconds)
        if s < 10 { return fixed(s, 1) + "s" }
        let n = int(s)
        if s < 60 { return "\(n)s" }
        if s < 3600 { return "\(n / 60)m" + two(n % 60) + "s" }
        return "\(n / 3600)h" + two(n / 60 % 60) + "m"
    }

    /// A cost in time: `0.21ms`, `12ms`, `1.3s`.
    public static func cost(_ seconds: Double) -> String {
        if seconds < 0.001 { return fixed(seconds * 1000, 2) + "ms" }
        if seconds < 0.01 { return fixed(seconds * 1000, 1) + "ms" }
        if seconds < 1 { return fixed(seconds * 1000, 0) + "ms" }
        return fixed(seconds, 1) + "s"
    }

    /// Bytes in powers of 1024: `512B`, `12.3KiB`, `1.2GiB`.
    public static func bytes(_ n: Int, exact: Bool) -> String {
        if exact || n < 1024 { return "\(n)B" }
        var v = Double(n)
        var unit = 0
        while v >= 1024 && unit < 5 {
            v /= 1024
            unit += 1
        }
        let u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"][unit]
        return fixed(v, v < 10 ? 1 : 0) + u
    }

    /// Bytes the way counters are written (`count`: K, M, G are powers of 1000, as on the
    /// rest of the screen): `512B`, `661KB`, `4657MB`; every digit with `exact`.
    public static func byteCount<I: BinaryInteger>(_ n: I, exact: Bool) -> String {
        count(n, exact: exact) + "B"
    }

    /// `42%`, `<1%` for a small non-zero share.
    public static func percent(_ f: Double) -> String {
        guard f.isFinite else { return "-" }
        if f > 0 && f < 0.005 { return "<1%" }
        return "\(int((f * 100).rounded()))%"
    }

    /// ipvsadm's names of the forwarding methods.
    public static func forward(_ f: ForwardMethod) -> String {
        switch f {
        case .masq: "Masq"
        case .local: "Local"
        case .tunnel: "Tunnel"
        case .route: "Route"
        case .bypass: "Bypass"
        }
    }

    /// The persistence netmask as operators write it: `/24` or `/64`.
    public static func netmask(_ m: PersistenceNetmask) -> String {
        switch m {
        case .ipv4(let v): "/\(v.nonzeroBitCount)"
        case .prefix(let p): "/\(p)"
        }
    }

    /// A service as ipvsadm lists it: `TCP  10.0.0.1:80`, `FWM  1`.
    public static func service(_ k: ServiceKey) -> String {
        switch k {
        case .address(let p, let a, let port): "\(p.kernelName) \(a.endpoint(port: port))"
        case .fwmark(let m, .ipv4): "FWM \(m)"
        case .fwmark(let m, .ipv6): "FWM \(m) IPv6"
        }
    }

    /// Flags and persistence of a service in a few words: `persistent 300s mask /24 ops`.
    public static func serviceFlags(_ s: VirtualService) -> String {
        var parts: [String] = []
        if let p = s.persistence {
            var t = "persistent"
            if let secs = p.timeoutSeconds { t += " \(secs)s" } else if let j = p.timeoutJiffies { t += " \(j) jiffies" }
            parts.append(t)
            if p.netmask.groupsClients { parts.append("mask " + netmask(p.netmask)) }
        }
        parts += s.flags.names(scheduler: s.scheduler).filter { $0 != "persistent" && $0 != "hashed" }
        if let pe = s.persistenceEngine { parts.append("pe \(pe)") }
        return parts.joined(separator: " ")
    }
}
