import Foundation
import IPVSModel
import IPVSRawMemory
import IPVSReader
import IPVSTestSupport
import Testing
@testable import IPVSAnalysis

/// The fast core (`Aggregates.init`) against its plain reference (`ReferenceAggregates`) on
/// random tables: every aggregate, figure for figure (`ReferenceAggregates.differences`).
/// The 10^6-entry comparison is `ipvstop-bench --verify` (release build; the quick bench in
/// `Tests/run` verifies its 10^5 table).
@Suite struct ReferenceTests {
    /// The tables of `TemplateTests.randomDirector`: /32, /24 and holed netmasks, IPv6, fwmark
    /// (and an fwmark service sharing an address service's real server), deleted real servers
    /// and services, templates left on a service no longer persistent.
    @Test(arguments: [(UInt64(11), 500, UInt32(0xFFFF_FF00), false), (12, 4000, 0xFFFF_00FF, false), (13, 4000, 0xFFFF_FF00, true),
                      (14, 6000, 0xFFFF_00FF, true)])
    func randomDirectorsAgree(seed: UInt64, n: Int, mask: UInt32, overlap: Bool) throws {
        let s = try TemplateTests.randomDirector(seed: seed, entries: n, groupMask: mask, overlap: overlap)
        try Self.agree(s, heavyFrom: 16)
        try Self.agree(s, heavyFrom: 2)
    }

    /// Tables with what the other generator leaves out: IPv6 persistence groups (/64), a
    /// port-0 persistent service, two fwmark services (one grouping /24) sharing real-server
    /// addresses, stray templates (a group's template under an unmasked client, duplicate
    /// templates, templates of deleted real servers and services), a deleted fwmark real
    /// server, and the poller's list of new entries.
    @Test(arguments: [(UInt64(21), 300, UInt32(0xFFFF_FF00)), (22, 3000, 0xFF00_FFFF), (23, 8000, 0xFFFF_FF00)])
    func variedDirectorsAgree(seed: UInt64, n: Int, mask: UInt32) throws {
        var s = try Self.variedDirector(seed: seed, entries: n, groupMask: mask)
        s.connectionChanges = ConnectionChanges(previousReadAt: Date(), newEntryIndices: Array(stride(from: 0, to: n, by: 7)), interval: 1)
        try Self.agree(s, heavyFrom: 16)
        try Self.agree(s, heavyFrom: 3)
    }

    /// Fast and reference agree on `s`, and the table exercised what it was made for.
    /// (Both ways the core is run: one-shot, and as an `Analyzer` runs it, with the templates'
    /// identities and a pool that already holds a run's buffers.)
    static func agree(_ s: Snapshot, heavyFrom: Int) throws {
        let reference = ReferenceAggregates(s, heavyFrom: heavyFrom)
        let pool = BufferPool()
        var fast = Aggregates(s, buffers: pool, identities: false, heavyFrom: heavyFrom)
        for identities in [false, true] {
            fast = Aggregates(s, buffers: pool, identities: identities, heavyFrom: heavyFrom)
            let differences = reference.differences(from: fast)
            #expect(differences.isEmpty, "\(identities ? "with identities: " : "")\(differences.joined(separator: "\n"))")
        }
        // Not a vacuous agreement: the table has what each pass makes.
        #expect(fast.clients.count > 10 && !fast.groups.isEmpty)
        if heavyFrom <= 3 { #expect(!fast.heavyLoads.isEmpty && !reference.heavyGroupLoads.isEmpty) }
        #expect(fast.templates.contains { $0.summary.controlledConns > 0 } && fast.destinations.contains { !$0.isLive })
        #expect(reference.loadHistogram.values.contains { !$0.isEmpty } && reference.groupLoadHistogram.values.contains { !$0.isEmpty })
    }

    static func hex(_ v: UInt64, _ width: Int) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }

    /// `2001:0db8:00aa:00bb:0000:0000:0000:xxxx`, the kernel's full form.
    static func v6(_ a: UInt16, _ b: UInt16, _ last: UInt16) -> String {
        "2001:0db8:\(hex(UInt64(a), 4)):\(hex(UInt64(b), 4)):0000:0000:0000:\(hex(UInt64(last), 4))"
    }

    static func variedDirector(seed: UInt64, entries n: Int, groupMask: UInt32) throws -> Snapshot {
        var x = seed
        func next(_ m: Int) -> Int {
            x = x &* 6364136223846793005 &+ 1442695040888963407
            return Int((x >> 33) % UInt64(m))
        }
        let vip6 = v6(0, 0, 1)
        var services = ""
        services += KernelText.service("TCP", 0x0A00_0001, 443, "wlc", persistent: (75000, 0xFFFF_FFFF))
        for r in 0..<3 { services += KernelText.dest(0x0A00_0102 + UInt32(r), 443, "Masq", 1, 0, 0) }
        services += KernelText.service("TCP", 0x0A00_0001, 8080, "wlc", persistent: (150_000, groupMask))
        for r in 0..<3 { services += KernelText.dest(0x0A00_0102 + UInt32(r), 8080, "Masq", 1, 0, 0) }
        services += KernelText.service("TCP", 0x0A00_0001, 80, "rr")
        for r in 0..<3 { services += KernelText.dest(0x0A00_0102 + UInt32(r), 80, "Masq", 1, 0, 0) }
        // All ports, persistent /32: real servers on port 0.
        services += KernelText.service("TCP", 0x0A00_0005, 0, "rr", persistent: (75000, 0xFFFF_FFFF))
        for r in 0..<2 { services += KernelText.dest(0x0A00_0302 + UInt32(r), 0, "Route", 1, 0, 0) }
        // IPv6 groups: /64 (the kernel prints ntohl(plen)).
        services += KernelText.service6("TCP", vip6, 443, "rr", persistent: (75000, UInt32(64).byteSwapped))
        for r in 0..<3 { services += KernelText.dest6(v6(0, 1, UInt16(r + 1)), 443, "Masq", 1, 0, 0) }
        // fwmark 7 groups /24; fwmark 8 (/32) shares 10.0.2.3 with it.
        services += KernelText.fwmark(7, "sh", persistent: (225_000, 0xFFFF_FF00))
        for r in 0..<2 { services += KernelText.dest(0x0A00_0202 + UInt32(r), 0, "Route", 1, 0, 0) }
        services += KernelText.fwmark(8, "rr", persistent: (75000, 0xFFFF_FFFF))
        services += KernelText.dest(0x0A00_0203, 0, "Route", 1, 0, 0)

        let states = ["ESTABLISHED", "ESTABLISHED", "ESTABLISHED", "TIME_WAIT", "FIN_WAIT", "SYN_RECV", "CLOSE_WAIT", "CLOSE", "LAST_ACK"]
        var conns = ""
        var port = 1024
        for _ in 0..<n {
            port = port == 65535 ? 1024 : port + 1
            // A few busy clients (heavy loads), many light ones.
            let client: UInt32 = next(8) == 0 ? 0xAC10_0040 + UInt32(next(3)) : 0xC0A8_0000 + UInt32(next(900))
            let state = states[next(states.count)]
            let expires = UInt64(next(1000))
            switch next(14) {
            case 0, 1:   // /32: templates now and then, some to a deleted real server, some twice
                let d = 0x0A00_0102 + UInt32(next(4))
                if next(5) == 0 {
                    conns += KernelText.conn("TCP", client, 0, 0x0A00_0001, 443, d, 443, "ASSURED", expires)
                } else {
                    conns += KernelText.conn("TCP", client, UInt16(port), 0x0A00_0001, 443, d, 443, state, expires)
                }
            case 2, 3:   // groups: templates hold the masked client; now and then a stray one that does not
                let d = 0x0A00_0102 + UInt32(next(3))
                switch next(8) {
                case 0: conns += KernelText.conn("TCP", client & groupMask, 0, 0x0A00_0001, 8080, d, 8080, "NONE", expires)
                case 1: conns += KernelText.conn("TCP", client, 0, 0x0A00_0001, 8080, d, 8080, "NONE", expires)
                default: conns += KernelText.conn("TCP", client, UInt16(port), 0x0A00_0001, 8080, d, 8080, state, expires)
                }
            case 4:
                conns += KernelText.conn("TCP", client, UInt16(port), 0x0A00_0001, 80, 0x0A00_0102 + UInt32(next(3)), 80, state, expires)
            case 5:      // all ports: any port, real servers on port 0 (a third, deleted)
                let d = 0x0A00_0302 + UInt32(next(3)), p = UInt16(20 + next(5))
                if next(4) == 0 {
                    conns += KernelText.conn("TCP", client, 0, 0x0A00_0005, 0, d, 0, "NONE", expires)
                } else {
                    conns += KernelText.conn("TCP", client, UInt16(port), 0x0A00_0005, p, d, p, state, expires)
                }
            case 6, 7:   // IPv6 groups of /64: clients in a few /64s
                let c = v6(0x00ff, UInt16(next(6)), UInt16(next(50))), d = v6(0, 1, UInt16(next(4) + 1))
                if next(5) == 0 {
                    conns += KernelText.conn6("TCP", v6(0x00ff, UInt16(next(6)), 0), 0, vip6, 443, d, 443, "NONE", expires)
                } else {
                    conns += KernelText.conn6("TCP", c, UInt16(port), vip6, 443, d, 443, state, expires)
                }
            case 8, 9:   // fwmark 7 and 8: templates print the mark; connections their own address and port
                let d = 0x0A00_0202 + UInt32(next(3))
                if next(5) == 0 {
                    let mark: UInt32 = d == 0x0A00_0204 || next(2) == 0 ? 8 : 7
                    conns += KernelText.conn("IP", mark == 7 ? client & 0xFFFF_FF00 : client, 0, mark, 0, d, 0, "ASSURED", expires)
                } else {
                    conns += KernelText.conn("TCP", client, UInt16(port), 0x0A00_0064, 25, d, 25, state, expires)
                }
            case 10:     // a deleted service, with a template of its own
                conns += KernelText.conn("TCP", client, next(6) == 0 ? 0 : UInt16(port), 0x0A00_0009, 443, 0x0A00_0109, 443, state, expires)
            case 11:     // UDP to the plain service's address (no UDP service: deleted)
                conns += KernelText.conn("UDP", client, UInt16(port), 0x0A00_0001, 53, 0x0A00_0102, 53, "UDP", expires)
            case 12:     // an IPv6 client of a deleted IPv6 service
                conns += KernelText.conn6("TCP", v6(0x00ee, 0, UInt16(next(20))), UInt16(port), v6(0, 0, 9), 80, v6(0, 1, 9), 80, state, expires)
            default:     // a template left on a service that is no longer persistent
                conns += KernelText.conn("TCP", client, next(8) == 0 ? 0 : UInt16(port), 0x0A00_0001, 80, 0x0A00_0103, 80,
                                         "ESTABLISHED", expires)
            }
        }
        return try TemplateTests.snapshot(services: services, conns: conns)
    }
}
