import Foundation
import IPVSModel
import IPVSReader
import IPVSTestSupport
import Testing

@testable import IPVSAnalysis

/// An fwmark service over the same VIP:port as a TCP service (the issue's /24 proxy farm
/// marked by iptables): its connections read `TCP VIP:80 -> RIP:80` in /proc.
@Suite struct AttributionTests {
    static let vip: UInt32 = 0x0A00_0064, rip: UInt32 = 0xC0A8_0A01, other: UInt32 = 0xC0A8_0A02

    /// tcp:VIP:80 rr over RIP:80 and OTHER:80; FWM 1 rr -p 300 -M /24 over RIP:0. `tcpCounts`
    /// and `fwCounts`: the kernel's ActiveConn/InActConn of RIP in each. The farm
    /// 172.16.2.10-29 (20 ESTABLISHED, marked) and 5 unmarked clients on OTHER.
    static func snapshot(tcpCounts: (Int, Int), fwCounts: (Int, Int), unmarkedOnRIP: Int = 0, ripInTCP: Bool = true,
                         deletedServiceToRIP: Int = 0) throws -> Snapshot {
        var services = KernelText.service("TCP", vip, 80, "rr")
        if ripInTCP { services += KernelText.dest(rip, 80, "Masq", 1, tcpCounts.0, tcpCounts.1) }
        services += KernelText.dest(other, 80, "Masq", 1, 5, 0)
        services += KernelText.fwmark(1, "rr", persistent: (75000, 0xFFFF_FF00))
        services += KernelText.dest(rip, 0, "Masq", 1, fwCounts.0, fwCounts.1)
        var conns = KernelText.conn("IP", 0xAC10_0200, 0, 1, 0, rip, 0, "NONE", 280)   // the /24's fwmark template
        for i in 0..<20 { conns += KernelText.conn("TCP", 0xAC10_020A + UInt32(i), UInt16(40000 + i), vip, 80, rip, 80, "ESTABLISHED", 890) }
        for i in 0..<5 { conns += KernelText.conn("TCP", 0xAC10_010A + UInt32(i), UInt16(41000 + i), vip, 80, other, 80, "ESTABLISHED", 890) }
        for i in 0..<deletedServiceToRIP { conns += KernelText.conn("TCP", 0xAC10_0120 + UInt32(i), UInt16(43000 + i), vip, 99, rip, 99, "ESTABLISHED", 890) }
        for i in 0..<unmarkedOnRIP { conns += KernelText.conn("TCP", 0xAC10_0110 + UInt32(i), UInt16(42000 + i), vip, 80, rip, 80, "ESTABLISHED", 890) }
        let tree = try ProcTree(["net/ip_vs": KernelText.ipvsHeader + services, "net/ip_vs_conn": KernelText.connHeader + conns])
        return try SnapshotReader(options: ReaderOptions(procRoot: tree.root, hz: 250)).snapshot()
    }

    func how(_ a: Aggregates, _ s: Snapshot, _ id: String) -> ServiceAttribution.How? {
        a.attribution.first { s.services[$0.service].id == id }?.how
    }

    @Test func theKernelsCountersGiveTheFarmToTheFwmarkService() throws {
        // The kernel: RIP holds nothing through tcp:VIP:80, 20 through FWM 1.
        let s = try Self.snapshot(tcpCounts: (0, 0), fwCounts: (20, 0))
        let a = Aggregates(s)
        #expect(how(a, s, "tcp:10.0.0.100:80") == .kernelCounts && how(a, s, "fwmark:1") == .kernelCounts)
        // Per destination, the table now agrees with the kernel.
        for (si, svc) in s.services.enumerated() {
            for (ri, rs) in svc.realServers.enumerated() {
                let t = a.liveDestination[si][ri].map { a.destinations[$0].connections } ?? StateCounts()
                #expect(t.active == Int(rs.activeConns) && t.inactive == Int(rs.inactiveConns), "\(svc.id) -> \(rs.id)")
            }
        }
        // The /24 group has its 20 connections, the fwmark template controls them.
        let g = try #require(a.groups.first { s.services[$0.service].id == "fwmark:1" })
        #expect(g.connections.active == 20 && g.clients == 20)
        #expect(a.templates.first?.summary.controlledConns == 20)
        // No dead destination, no imbalance on tcp:VIP:80 from the farm.
        let r = Analysis.analyze(s)
        #expect(r.of(.deadDestination).isEmpty && r.of(.imbalance).isEmpty)
        #expect(!r.limitations.contains { $0.contains("cannot tell which scheduled") })
    }

    /// The farm's real server is the fwmark service's only: its entries read like a deleted
    /// real server's of tcp:VIP:80, but the fwmark service's counters hold them.
    @Test func aRealServerOnlyTheFwmarkServiceHasIsNotADeadOne() throws {
        let s = try Self.snapshot(tcpCounts: (0, 0), fwCounts: (20, 0), ripInTCP: false)
        let a = Aggregates(s)
        #expect(how(a, s, "fwmark:1") == .kernelCounts)
        #expect(a.destinations.allSatisfy { $0.isLive })
        #expect(a.templates.first?.summary.controlledConns == 20)
        #expect(Analysis.analyze(s).of(.deadDestination).isEmpty)
        // Near miss: the fwmark service counts fewer than the table holds: a deleted real
        // server's, said undecided.
        let m = try Self.snapshot(tcpCounts: (0, 0), fwCounts: (5, 0), ripInTCP: false)
        let b = Aggregates(m)
        #expect(how(b, m, "tcp:10.0.0.100:80") == .undecided)
        #expect(Analysis.analyze(m).of(.deadDestination).map(\.key) == ["dead_destination/tcp:10.0.0.100:80/192.168.10.1:80"])
    }

    /// Entries of a service that is gone, to the fwmark service's real server: the fallback
    /// gives them to it; its counters show they are not all its own, and that is said.
    @Test func entriesOfAGoneServiceBesideTheFwmarkOnesAreSaidUndecided() throws {
        // Only the gone service's 3 (the farm's 20 are the TCP service's by the counters).
        let s = try Self.snapshot(tcpCounts: (20, 0), fwCounts: (0, 0), deletedServiceToRIP: 3)
        let a = Aggregates(s)
        #expect(how(a, s, "fwmark:1") == .undecided)
        #expect(Analysis.analyze(s).limitations.contains { $0.contains("the table gives fwmark:1 -> 192.168.10.1:0 3 connections, its kernel counters 0") })
        // Near miss: the fwmark counters hold them: nothing to say about fwmark:1's own.
        let t = try Self.snapshot(tcpCounts: (20, 0), fwCounts: (3, 0), deletedServiceToRIP: 3)
        #expect(!Analysis.analyze(t).limitations.contains { $0.contains("the table gives fwmark:1") })
    }

    @Test func countsThatMatchTheTableKeepTheEntriesWhereTheyAre() throws {
        // Near miss: the kernel counts the 20 under tcp:VIP:80 (nothing marked).
        let s = try Self.snapshot(tcpCounts: (20, 0), fwCounts: (0, 0))
        let a = Aggregates(s)
        #expect(how(a, s, "tcp:10.0.0.100:80") == .kernelCounts)
        let d = try #require(a.liveDestination[0][0])
        #expect(a.destinations[d].connections.active == 20)
        #expect(a.templates.first?.summary.controlledConns == 0)
    }

    @Test func aMixTheCountersCannotSplitIsSaidUndecided() throws {
        // 20 marked and 3 unmarked to RIP: the kernel says 3 and 20, the table cannot tell
        // which entries are which.
        let s = try Self.snapshot(tcpCounts: (3, 0), fwCounts: (20, 0), unmarkedOnRIP: 3)
        let a = Aggregates(s)
        #expect(how(a, s, "tcp:10.0.0.100:80") == .undecided && how(a, s, "fwmark:1") == .undecided)
        let r = Analysis.analyze(s)
        #expect(r.limitations.contains { $0.contains("the table cannot tell which scheduled its 23 connections") })
        // No overlap at all: plain attribution.
        #expect(how(a, s, "tcp:10.0.0.100:80") != .address)
    }
}
