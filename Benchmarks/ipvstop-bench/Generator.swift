import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// SplitMix64: small, fast, and the same sequence on every machine, so a size always
/// gives the same file.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<n.
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

/// Bytes of kernel-formatted text, written with the kernel's printf widths by hand
/// (String(format:) would make generating 10^6 rows slower than parsing them).
struct RowWriter {
    var bytes: [UInt8] = []
    static let upper = Array("0123456789ABCDEF".utf8)
    static let lower = Array("0123456789abcdef".utf8)

    mutating func hex(_ v: UInt64, width: Int, upperCase: Bool) {
        let digits = upperCase ? Self.upper : Self.lower
        var shift = (width - 1) * 4
        while shift >= 0 {
            bytes.append(digits[Int((v >> UInt64(shift)) & 0xF)])
            shift -= 4
        }
    }

    /// `%-Ns`
    mutating func left(_ s: String, width: Int) {
        bytes.append(contentsOf: s.utf8)
        for _ in s.utf8.count..<max(width, s.utf8.count) { bytes.append(0x20) }
    }

    /// `%Nu`
    mutating func right(_ v: UInt32, width: Int) {
        var digits: [UInt8] = []
        var x = v
        repeat { digits.append(UInt8(0x30 + x % 10)); x /= 10 } while x > 0
        for _ in digits.count..<max(width, digits.count) { bytes.append(0x20) }
        bytes.append(contentsOf: digits.reversed())
    }

    /// `%pI6`: eight groups of four lower-case hex digits.
    mutating func ipv6(_ high: UInt64, _ low: UInt64) {
        for g in 0..<8 {
            if g > 0 { bytes.append(UInt8(ascii: ":")) }
            let word = g < 4 ? high >> UInt64(48 - 16 * g) : low >> UInt64(48 - 16 * (g - 4))
            hex(word & 0xFFFF, width: 4, upperCase: false)
        }
    }

    mutating func space() { bytes.append(0x20) }
    mutating func newline() { bytes.append(0x0A) }
    mutating func text(_ s: String) { bytes.append(contentsOf: s.utf8) }
}

/// One address as the generator picks it: IPv4 value or IPv6 halves.
enum GenAddress {
    case v4(UInt32)
    case v6(UInt64, UInt64)
}

/// What the generator produced, to check the parser against and to write `net/ip_vs`.
struct GeneratedTable {
    var entries = 0
    var templates = 0
    var ipv6Rows = 0
    /// ActiveConn / InActConn per (service, real server), for a consistent `net/ip_vs`.
    var active: [[Int]]
    var inactive: [[Int]]
}

/// Writes `/proc/net/ip_vs_conn` files the way `ip_vs_conn_seq_show` prints them, with the
/// mix a busy director shows: mostly ESTABLISHED TCP, the TCP closing states, UDP, a few
/// SCTP associations, ~5% persistence templates (TCP and fwmark), ~5% IPv6 rows, many
/// distinct clients and a handful of heavy hitters (NAT gateways, rogue clients).
enum TableGenerator {
    static let version = "ipvstop-bench generator v3"

    struct Service {
        let name: String       // its net/ip_vs line, as the kernel prints it
        let proto: String      // as ip_vs_conn prints it
        let vaddr: GenAddress
        let vport: UInt16
        let fwmark: UInt32?
        let persistent: Bool
        let realServers: [GenAddress]
        let rport: UInt16
    }

    static let v6Prefix: UInt64 = 0x2001_0DB8_0000_0000

    static let realServers4: [GenAddress] = (1...12).map { .v4(0x0A00_0100 + UInt32($0)) }
    static let realServers6: [GenAddress] = (1...4).map { .v6(v6Prefix, 0x0001_0000 + UInt64($0)) }

    /// The director's services; indices are used below.
    static let services: [Service] = [
        // 0: plain HTTP
        Service(name: "TCP  0A000001:0050 wlc  ", proto: "TCP", vaddr: .v4(0x0A00_0001), vport: 80, fwmark: nil, persistent: false, realServers: Array(realServers4[0..<8]), rport: 80),
        // 1: HTTPS with persistence (/32): TCP templates
        Service(name: "TCP  0A000001:01BB wlc  persistent 75000 FFFFFFFF", proto: "TCP", vaddr: .v4(0x0A00_0001), vport: 443, fwmark: nil, persistent: true, realServers: Array(realServers4[0..<8]), rport: 443),
        // 2: an app port
        Service(name: "TCP  0A000002:1F90 rr  ", proto: "TCP", vaddr: .v4(0x0A00_0002), vport: 8080, fwmark: nil, persistent: false, realServers: Array(realServers4[8..<12]), rport: 8080),
        // 3: DNS
        Service(name: "UDP  0A000002:0035 rr  ", proto: "UDP", vaddr: .v4(0x0A00_0002), vport: 53, fwmark: nil, persistent: false, realServers: Array(realServers4[8..<12]), rport: 53),
        // 4: Diameter over SCTP
        Service(name: "SCTP  0A000003:0F1C rr  ", proto: "SCTP", vaddr: .v4(0x0A00_0003), vport: 3868, fwmark: nil, persistent: false, realServers: Array(realServers4[8..<10]), rport: 3868),
        // 5: fwmark 1, persistent /24 (mail ports marked by iptables): templates print `IP`
        Service(name: "FWM  00000001 sh persistent 75000 FFFFFF00", proto: "TCP", vaddr: .v4(0x0A00_0004), vport: 25, fwmark: 1, persistent: true, realServers: Array(realServers4[4..<8]), rport: 25),
        // 6: IPv6 HTTP; one real server is IPv4 behind a tunnel (destination printed %08X)
        Service(name: "TCP  [2001:0db8:0000:0000:0000:0000:0000:0001]:0050 wlc ", proto: "TCP", vaddr: .v6(v6Prefix, 1), vport: 80, fwmark: nil, persistent: false, realServers: realServers6 + [realServers4[0]], rport: 80),
    ]

    /// Client number k: a spread of public-looking IPv4 addresses (first octet 11...223).
    static func client4(_ k: Int) -> UInt32 {
        let h = SplitMix64.mix(UInt64(k) &+ 0x1234_5678)
        let first = UInt32(11 + h % 213)
        return first << 24 | UInt32(truncatingIfNeeded: h >> 16) & 0x00FF_FFFF
    }

    static func client6(_ k: Int) -> (UInt64, UInt64) {
        let h = SplitMix64.mix(UInt64(k) &+ 0x9876_5432)
        return (0x2001_0DB8_1000_0000 | (h >> 40), SplitMix64.mix(h))
    }

    /// TCP states of a busy web director and how long each one lives (seconds).
    static let tcpStates: [(name: String, weight: Double, maxExpires: Int)] = [
        ("ESTABLISHED", 0.70, 900), ("TIME_WAIT", 0.14, 120), ("FIN_WAIT", 0.06, 120),
        ("SYN_RECV", 0.04, 60), ("CLOSE_WAIT", 0.03, 60), ("CLOSE", 0.015, 10), ("LAST_ACK", 0.015, 30),
    ]
    static let sctpStates: [(name: String, weight: Double, maxExpires: Int)] = [
        ("ESTABLISHED", 0.85, 900), ("COOKIE_ECHOED", 0.05, 5), ("SHUTDOWN_SENT", 0.05, 10), ("CLOSED", 0.05, 10),
    ]

    static func pick(_ table: [(name: String, weight: Double, maxExpires: Int)], _ r: Double) -> (String, Int) {
        var acc = 0.0
        for s in table {
            acc += s.weight
            if r < acc { return (s.name, s.maxExpires) }
        }
        return (table[0].name, table[0].maxExpires)
    }

    /// Writes `root/net/ip_vs_conn` (and a matching `net/ip_vs`) with `count` entries.
    static func write(count: Int, root: String, seed: UInt64 = 0x1F5_70B) throws -> GeneratedTable {
        try FileManager.default.createDirectory(atPath: root + "/net", withIntermediateDirectories: true)
        var rng = SplitMix64(seed: seed ^ UInt64(count))
        var gen = GeneratedTable(
            active: services.map { [Int](repeating: 0, count: $0.realServers.count) },
            inactive: services.map { [Int](repeating: 0, count: $0.realServers.count) })

        // ~1 distinct client per 5 entries, at least 500; 8 heavy hitters take ~8% of rows.
        let pool = max(500, count / 5)
        let heavy = 8
        var templateKeys = Set<UInt64>()

        let path = root + "/net/ip_vs_conn"
        guard let f = fopen(path + ".tmp", "w") else { throw BenchError.harness("cannot write \(path)") }
        var w = RowWriter()
        w.bytes.reserveCapacity(1 << 20)
        w.text("Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n")

        func flush() {
            _ = w.bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
            w.bytes.removeAll(keepingCapacity: true)
        }

        for _ in 0..<count {
            // The client: a heavy hitter or one of the many.
            let k = rng.unit() < 0.08 ? rng.below(heavy) : heavy + rng.below(pool)
            let ipv6 = rng.unit() < 0.05
            let isTemplate = !ipv6 && rng.unit() < 0.053
            var si: Int
            if ipv6 {
                si = 6
            } else if isTemplate {
                si = rng.unit() < 0.7 ? 1 : 5
            } else {
                let r = rng.unit()
                si = r < 0.10 ? 3 : r < 0.105 ? 4 : r < 0.45 ? 0 : r < 0.80 ? 1 : r < 0.93 ? 2 : 5
            }
            let svc = services[si]
            // Persistence and source hashing keep a client on one real server.
            let ri = Int(SplitMix64.mix(UInt64(k) &* 31 &+ UInt64(si)) % UInt64(svc.realServers.count))
            let client: GenAddress
            if ipv6 {
                let (h, l) = client6(k)
                client = .v6(h, l)
            } else if isTemplate {
                // One template per (service, client & netmask), as in the kernel: a client
                // that already has one gives its turn to the next client without.
                var kk = k, c: UInt32
                repeat {
                    c = client4(kk)
                    if svc.fwmark != nil { c &= 0xFFFF_FF00 }   // persistence netmask /24
                    kk = kk + 1 < heavy + pool ? kk + 1 : 0
                } while !templateKeys.insert(UInt64(si) << 32 | UInt64(c)).inserted
                client = .v4(c)
            } else {
                client = .v4(client4(k))
            }

            var proto = svc.proto
            var cport = UInt16(1024 + rng.below(64512))
            var vaddr = svc.vaddr
            var vport = svc.vport
            var dport = svc.rport
            let state: String
            var expires: Int
            if isTemplate {
                cport = 0
                if let mark = svc.fwmark {
                    // fwmark template: protocol IP, the mark in the ToIP column, ports 0.
                    proto = "IP"
                    vaddr = .v4(mark)
                    vport = 0
                    dport = 0
                }
                state = rng.unit() < 0.75 ? "ASSURED" : "NONE"
                expires = rng.below(301)
                gen.templates += 1
            } else {
                switch svc.proto {
                case "UDP": (state, expires) = ("UDP", 300)
                case "SCTP": (state, expires) = pick(sctpStates, rng.unit())
                default: (state, expires) = pick(tcpStates, rng.unit())
                }
                expires = rng.below(expires + 1)
                if state == "ESTABLISHED" { gen.active[si][ri] += 1 } else { gen.inactive[si][ri] += 1 }
            }

            // "%-3s %08X %04X %08X %04X %s %04X %-11s %7u\n", IPv6 addresses as %pI6.
            w.left(proto, width: 3); w.space()
            addr(&w, client); w.space()
            w.hex(UInt64(cport), width: 4, upperCase: true); w.space()
            addr(&w, vaddr); w.space()
            w.hex(UInt64(vport), width: 4, upperCase: true); w.space()
            switch svc.realServers[ri] {
            // `%08X`, upper case like the other columns: so Debian's 6.1 prints it
            // (Tests/Fixtures/proc-vm-6.1); the parser takes either case.
            case .v4(let d): w.hex(UInt64(d), width: 8, upperCase: true)
            case .v6(let h, let l): w.ipv6(h, l)
            }
            w.space()
            w.hex(UInt64(dport), width: 4, upperCase: true); w.space()
            w.left(state, width: 11); w.space()
            w.right(UInt32(expires), width: 7)
            w.newline()
            gen.entries += 1
            if ipv6 { gen.ipv6Rows += 1 }
            if w.bytes.count > (1 << 20) - 256 { flush() }
        }
        flush()
        guard fclose(f) == 0 else { throw BenchError.harness("cannot write \(path)") }
        try writeServices(gen, root: root)
        guard rename(path + ".tmp", path) == 0 else { throw BenchError.harness("cannot rename \(path)") }
        try "\(version) seed \(seed) entries \(count) templates \(gen.templates) ipv6 \(gen.ipv6Rows)\n"
            .write(toFile: root + "/generator", atomically: true, encoding: .utf8)
        return gen
    }

    static func addr(_ w: inout RowWriter, _ a: GenAddress) {
        switch a {
        case .v4(let v): w.hex(UInt64(v), width: 8, upperCase: true)
        case .v6(let h, let l): w.ipv6(h, l)
        }
    }

    /// `net/ip_vs` for the same director, so `ipvstop snapshot --proc-root` accepts the tree.
    static func writeServices(_ gen: GeneratedTable, root: String) throws {
        var w = RowWriter()
        w.text("IP Virtual Server version 1.2.1 (size=4096)\n")
        w.text("Prot LocalAddress:Port Scheduler Flags\n")
        w.text("  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n")
        for (si, s) in services.enumerated() {
            w.text(s.name + "\n")
            for (ri, rs) in s.realServers.enumerated() {
                // "  -> %08X:%04X      %-7s %-6d %-10d %-10d\n", IPv6 as [%pI6]:%04X.
                w.text("  -> ")
                switch rs {
                case .v4(let v): w.hex(UInt64(v), width: 8, upperCase: true)
                case .v6(let h, let l): w.text("["); w.ipv6(h, l); w.text("]")
                }
                w.text(":"); w.hex(UInt64(s.rport), width: 4, upperCase: true)
                w.text("      ")
                let fwd = if case .v4 = rs, case .v6 = s.vaddr { "Tunnel" } else { "Masq" }
                w.left(fwd, width: 7); w.space()
                w.left("1", width: 6); w.space()
                w.left(String(gen.active[si][ri]), width: 10); w.space()
                w.left(String(gen.inactive[si][ri]), width: 10)
                w.newline()
            }
        }
        try Data(w.bytes).write(to: URL(fileURLWithPath: root + "/net/ip_vs"))
    }

    /// The tree for `count` entries under `dir`, generated unless an identical one is there.
    static func tree(count: Int, dir: String) throws -> (root: String, reused: Bool) {
        let root = dir + "/n\(count)"
        let marker = root + "/generator"
        if let m = try? String(contentsOfFile: marker, encoding: .utf8),
           m.hasPrefix("\(version) seed"), m.contains(" entries \(count) "),
           FileManager.default.fileExists(atPath: root + "/net/ip_vs_conn"),
           FileManager.default.fileExists(atPath: root + "/net/ip_vs") {
            return (root, true)
        }
        try? FileManager.default.removeItem(atPath: marker)
        _ = try write(count: count, root: root)
        return (root, false)
    }
}
