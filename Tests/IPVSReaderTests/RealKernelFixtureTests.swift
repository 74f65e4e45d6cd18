import Foundation
import Testing
@testable import IPVSModel
@testable import IPVSReader

/// A director captured from Debian's 6.1 kernel in the lab (Tests/Fixtures/proc-vm-6.1, with
/// the ipvsadm listings taken at the same moment beside it): the /proc readers must give
/// what ipvsadm printed.
@Suite struct RealKernelFixtureTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path
    static let procRoot = fixtures + "/proc-vm-6.1"

    static func ipvsadm(_ name: String) throws -> String {
        try String(contentsOfFile: fixtures + "/proc-vm-6.1.ipvsadm/" + name, encoding: .utf8)
    }

    /// One service as `ipvsadm -Ln` lists it.
    struct Listed: Equatable {
        var header: String          // e.g. "TCP  10.0.0.101:8080 sh persistent 120 mask 255.255.255.0"
        var realServers: [String]   // e.g. "192.168.1.2:8080 Masq 1 50 0"
    }

    static func parseListing(_ text: String) -> [Listed] {
        var out: [Listed] = []
        for line in text.split(separator: "\n").dropFirst(3) {
            let words = line.split(separator: " ")
            if line.hasPrefix("  -> ") {
                out[out.count - 1].realServers.append(words.dropFirst().joined(separator: " "))
            } else {
                out.append(Listed(header: words.joined(separator: " "), realServers: []))
            }
        }
        return out
    }

    /// The same listing made from ipvstop's snapshot, in ipvsadm's words.
    static func listing(_ s: Snapshot) -> [Listed] {
        s.services.map { svc in
            var h: String
            switch svc.key {
            case .address(let p, let a, let port): h = "\(p.kernelName) \(a.endpoint(port: port)) \(svc.scheduler)"
            case .fwmark(let m, let f): h = "FWM \(m)\(f == .ipv6 ? " IPv6" : "") \(svc.scheduler)"
            }
            if svc.flags.contains(.onePacket) { h += " ops" }
            if let p = svc.persistence {
                h += " persistent \(p.timeoutSeconds.map(String.init) ?? "?")"
                if p.netmask.groupsClients { h += " mask \(p.netmask)" }
            }
            return Listed(header: h, realServers: svc.realServers.map {
                "\($0.id) \($0.forward.rawValue.capitalized) \($0.weight) \($0.activeConns) \($0.inactiveConns)"
            })
        }
    }

    @Test func servicesMatchIpvsadmListing() throws {
        let s = try SnapshotReader(options: ReaderOptions(procRoot: Self.procRoot, hz: 250)).snapshot()
        #expect(s.source.warnings.filter { !$0.contains("fwmark") }.isEmpty, "\(s.source.warnings)")
        var expected = Self.parseListing(try Self.ipvsadm("Ln.txt"))
        var ours = Self.listing(s)
        #expect(ours.count == 14)
        // /proc does not show what netlink adds to a header (pe sip, sh flags): compare the
        // part /proc can give.
        for i in expected.indices {
            expected[i].header = expected[i].header
                .replacingOccurrences(of: " pe sip", with: "")
                .replacingOccurrences(of: " (sh-fallback,sh-port)", with: "")
            expected[i].realServers.sort()
        }
        for i in ours.indices { ours[i].realServers.sort() }
        #expect(Set(ours.map(\.header)) == Set(expected.map(\.header)))
        for e in expected {
            let mine = ours.first { $0.header == e.header }
            #expect(mine?.realServers == e.realServers, "\(e.header)")
        }
    }

    @Test func connectionTableMatchesIpvsadmLcn() throws {
        let s = try SnapshotReader(options: ReaderOptions(procRoot: Self.procRoot, hz: 250)).snapshot()
        let t = try #require(s.connections)
        #expect(t.skipped.total == 0)
        // ipvsadm -Lcn: "pro expire state source virtual destination".
        var states: [String: Int] = [:]
        var templates = 0
        for line in try Self.ipvsadm("Lcn.txt").split(separator: "\n").dropFirst(2) {
            let f = line.split(separator: " ")
            if f[3].hasSuffix(":0") { templates += 1 } else { states[String(f[2]), default: 0] += 1 }
        }
        #expect(t.counts.templates == templates)
        #expect(Dictionary(uniqueKeysWithValues: t.counts.byState.map { ($0.key.name, $0.value) }) == states)
        #expect(t.counts.byProtocol[.sctp] != nil)
        #expect(t.entries.contains { !$0.client.isIPv4 })
        #expect(t.entries.contains { $0.fwmark == 1 })
    }

    @Test func everyRealServersConnectionsAreInTheTable() throws {
        // ActiveConn/InActConn count the entries bound to each real server. The capture has
        // a real server deleted under load (VIP:8443): its 3 connections stay in the table
        // but are counted by no real server.
        let s = try SnapshotReader(options: ReaderOptions(procRoot: Self.procRoot, hz: 250)).snapshot()
        let entries = try #require(s.connections?.entries).filter { !$0.isTemplate }
        let orphans = entries.filter { e in
            guard let svc = s.services.first(where: { $0.key == .address(e.proto, e.virtual, e.virtualPort) }) else { return false }
            return !svc.realServers.contains { $0.address == e.destination && $0.port == e.destinationPort }
        }
        #expect(orphans.count == 3)
        #expect(orphans.allSatisfy { $0.virtualPort == 8443 })
        let counted = s.services.flatMap(\.realServers).reduce(0) { $0 + Int($1.activeConns) + Int($1.inactiveConns) }
        #expect(counted == entries.count - orphans.count)
    }

    @Test func statsSysctlsAndSlab() throws {
        let s = try SnapshotReader(options: ReaderOptions(procRoot: Self.procRoot, hz: 250)).snapshot()
        #expect(s.global != nil)
        #expect(s.global?.perCPU?.isEmpty == false)
        #expect(s.sysctl("expire_quiescent_template") != nil)
        #expect(s.sysctls.count == 27)
        // Booted with slab_nomerge, so slabinfo has the cache's own line.
        #expect(s.slab?.objectSize == 320)
        #expect(s.slab?.origin == "slabinfo")
    }
}
