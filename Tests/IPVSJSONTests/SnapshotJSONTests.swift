import Foundation
import Testing
@testable import IPVSJSON
@testable import IPVSModel

/// Builds snapshots by hand: the JSON face must present exactly what the model holds.
func makeSnapshot(netlink: Bool) -> Snapshot {
    let vip = IPAddress("10.0.0.1")!
    let rs1 = RealServer(
        address: IPAddress("10.0.1.2")!, port: 443, forward: .masq, weight: 2, activeConns: 3, inactiveConns: 1,
        persistentConns: netlink ? 2 : nil, upperThreshold: netlink ? 100 : nil, lowerThreshold: netlink ? 10 : nil,
        stats: netlink ? TrafficStats(conns: 5_000_000_000, inPackets: 2, outPackets: 3, inBytes: 4, outBytes: 5) : nil,
        rates: netlink ? TrafficRates(cps: 1, inPPS: 2.5, outPPS: 3, inBPS: 4, outBPS: 5) : nil)
    let rs6 = RealServer(address: IPAddress("2001:db8::2")!, port: 80, forward: .route, weight: 0, activeConns: 0, inactiveConns: 0)
    let services = [
        VirtualService(key: .address(.tcp, vip, 443), scheduler: "sh", flags: netlink ? [.persistent, .sched1, .hashed] : [.persistent],
                       persistence: Persistence(timeoutSeconds: 300, timeoutJiffies: netlink ? nil : 75000, netmask: .ipv4(0xFFFF_FF00)),
                       realServers: [rs1]),
        VirtualService(key: .fwmark(3, .ipv6), scheduler: "rr", flags: [], persistence: nil, realServers: [rs6]),
    ]
    let entries = [
        ConnectionEntry(proto: .tcp, client: IPAddress("192.168.7.0")!, clientPort: 0, virtual: vip, virtualPort: 443,
                        destination: rs1.address, destinationPort: 443, state: .assured, expires: 250),
        ConnectionEntry(proto: .tcp, client: IPAddress("192.168.7.9")!, clientPort: 40000, virtual: vip, virtualPort: 443,
                        destination: rs1.address, destinationPort: 443, state: .established, expires: 899),
        ConnectionEntry(proto: .udp, client: IPAddress("192.168.7.9")!, clientPort: 40001, virtual: vip, virtualPort: 53,
                        destination: rs1.address, destinationPort: 53, state: .udp, expires: 100),
    ]
    let at = Date(timeIntervalSince1970: 1_800_000_000)
    let table = ConnectionTable(entries: entries, file: "ip_vs_conn", readAt: at.addingTimeInterval(-0.5),
                                cost: ReadCost(seconds: 0.01, cpuSeconds: 0.008, bytes: 200, readCalls: 2))
    return Snapshot(
        takenAt: at, info: IPVSInfo(version: "1.2.1", tableSize: 4096), services: services, connections: table,
        global: GlobalStats(totals: TrafficStats(conns: 31, inPackets: 1, outPackets: 2, inBytes: 3, outBytes: 4),
                            rates: TrafficRates(cps: 0, inPPS: 0, outPPS: 0, inBPS: 0, outBPS: 0)),
        sysctls: [Sysctl(name: "amemthresh", value: "1024"), Sysctl(name: "sync_threshold", value: "3 50")],
        timeouts: netlink ? Timeouts(tcp: 900, tcpFin: 120, udp: 300) : nil,
        syncDaemons: netlink ? [SyncDaemon(role: .master, multicastInterface: "eth0", syncID: 7)] : nil,
        slab: SlabInfo(objectSize: 304, activeObjects: 3, totalObjects: 26), tickRate: TickRate(hz: 250, origin: .kernelConfig),
        source: SourceReport(procRoot: "/proc", netlink: netlink ? .used(readAt: at, cost: ReadCost(seconds: 0.001, cpuSeconds: 0.001, bytes: 900, readCalls: 4)) : .unavailable(reason: "needs CAP_NET_ADMIN"),
                             warnings: netlink ? [] : ["no netlink"], unavailable: netlink ? [] : ["real_servers.stats"]))
}

func decode(_ s: Snapshot, top: Int = 100) throws -> [String: Any] {
    let text = SnapshotJSON.encode(s, top: top)
    return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
}

@Suite struct SnapshotJSONTests {
    @Test func schemaFieldsWithNetlink() throws {
        let j = try decode(makeSnapshot(netlink: true))
        #expect(j["schema"] as? Int == 1)
        #expect(j["taken_at"] as? String == "2027-01-15T08:00:00.000Z")
        let ipvs = try #require(j["ipvs"] as? [String: Any])
        #expect(ipvs["version"] as? String == "1.2.1")
        let services = try #require(j["services"] as? [[String: Any]])
        #expect(services.count == 2)
        let s0 = services[0]
        #expect(s0["id"] as? String == "tcp:10.0.0.1:443")
        #expect(s0["protocol"] as? String == "tcp")
        #expect(s0["address"] as? String == "10.0.0.1")
        #expect(s0["port"] as? Int == 443)
        #expect(s0["fwmark"] is NSNull)
        #expect(s0["flags"] as? [String] == ["persistent", "hashed", "sh-fallback"])
        let p = try #require(s0["persistence"] as? [String: Any])
        #expect(p["timeout_s"] as? Int == 300)
        #expect(p["netmask"] as? String == "255.255.255.0")
        let rs = try #require((s0["real_servers"] as? [[String: Any]])?.first)
        #expect(rs["id"] as? String == "10.0.1.2:443")
        #expect(rs["forward"] as? String == "masq")
        #expect(rs["weight"] as? Int == 2)
        #expect(rs["active_conns"] as? Int == 3)
        #expect(rs["persistent_conns"] as? Int == 2)
        #expect(rs["upper_threshold"] as? Int == 100)
        let st = try #require(rs["stats"] as? [String: Any])
        // Past 2^32: 64-bit counters must survive.
        #expect((st["conns"] as? NSNumber)?.int64Value == 5_000_000_000)
        let rt = try #require(rs["rates"] as? [String: Any])
        #expect(rt["in_pps"] as? Double == 2.5)

        let s1 = services[1]
        #expect(s1["id"] as? String == "fwmark6:3")
        #expect(s1["protocol"] as? String == "fwmark")
        #expect(s1["family"] as? String == "ipv6")
        #expect(s1["fwmark"] as? Int == 3)
        #expect(s1["address"] is NSNull)
        #expect(s1["persistence"] is NSNull)
        #expect(((s1["real_servers"] as? [[String: Any]])?.first?["id"]) as? String == "[2001:db8::2]:80")

        let c = try #require(j["connections"] as? [String: Any])
        #expect(c["total"] as? Int == 2)
        #expect(c["templates"] as? Int == 1)
        #expect(c["by_state"] as? [String: Int] == ["ESTABLISHED": 1, "UDP": 1])
        #expect(c["by_protocol"] as? [String: Int] == ["tcp": 1, "udp": 1])
        #expect(c["age_s"] as? Double == 0.5)

        let t = try #require(j["templates"] as? [[String: Any]])
        #expect(t.count == 1)
        #expect(t[0]["client"] as? String == "192.168.7.0")
        #expect(t[0]["service"] as? String == "tcp:10.0.0.1:443")
        #expect(t[0]["real_server"] as? String == "10.0.1.2:443")
        #expect(t[0]["expires_s"] as? Int == 250)
        #expect(t[0]["controlled_conns"] as? Int == 1)

        let sysctls = try #require(j["sysctls"] as? [String: Any])
        #expect(sysctls.count == 2)
        #expect(sysctls["amemthresh"] as? Int == 1024)
        #expect(sysctls["sync_threshold"] as? String == "3 50")
        let g = try #require(j["global"] as? [String: Any])
        #expect(g["entry_bytes"] as? Int == 304)
        #expect(g["entry_memory_bytes"] as? Int == 3 * 304)
        #expect((g["timeouts"] as? [String: Int]) == ["tcp": 900, "tcp_fin": 120, "udp": 300])
        #expect(((g["sync_daemons"] as? [[String: Any]])?.first?["mcast_interface"]) as? String == "eth0")
        let src = try #require(j["source"] as? [String: Any])
        #expect((src["netlink"] as? [String: Any])?["used"] as? Bool == true)
        #expect((src["hz"] as? [String: Any])?["from"] as? String == "kernel_config")
    }

    /// A service without real servers: PersistConn is a sum over nothing, 0 only where the
    /// source gives netlink's figures (its stats), null otherwise like every netlink-only one.
    @Test func persistentConnsOfAServiceWithoutRealServers() throws {
        for netlink in [false, true] {
            var snap = makeSnapshot(netlink: netlink)
            snap.services[0].realServers = []
            snap.services[0].stats = netlink ? TrafficStats(conns: 0, inPackets: 0, outPackets: 0, inBytes: 0, outBytes: 0) : nil
            let s0 = try #require((try decode(snap)["services"] as? [[String: Any]])?.first)
            if netlink {
                #expect(s0["persistent_conns"] as? Int == 0)
            } else {
                #expect(s0["persistent_conns"] is NSNull)
            }
        }
    }

    @Test func netlinkOnlyFieldsAreNullNotZero() throws {
        let j = try decode(makeSnapshot(netlink: false))
        let rs = try #require(((j["services"] as? [[String: Any]])?.first?["real_servers"] as? [[String: Any]])?.first)
        for k in ["persistent_conns", "upper_threshold", "lower_threshold", "stats", "rates"] {
            #expect(rs[k] is NSNull, "\(k)")
        }
        let s0 = try #require((j["services"] as? [[String: Any]])?.first)
        #expect(s0["persistent_conns"] is NSNull)
        #expect((s0["persistence"] as? [String: Any])?["timeout_jiffies"] as? Int == 75000)
        let g = try #require(j["global"] as? [String: Any])
        #expect(g["timeouts"] is NSNull)
        #expect(g["sync_daemons"] is NSNull)
        let nl = try #require((j["source"] as? [String: Any])?["netlink"] as? [String: Any])
        #expect(nl["used"] as? Bool == false)
        #expect(nl["reason"] as? String == "needs CAP_NET_ADMIN")
    }

    @Test func topLimitsTemplates() throws {
        var s = makeSnapshot(netlink: true)
        let base = s.connections!.entries
        var more = base
        for i in 0..<5 {
            var e = base[0]
            e.client = IPAddress(ipv4: 0xC0A8_0800 + UInt32(i) * 256)
            more.append(e)
        }
        s.connections = ConnectionTable(entries: more, file: "ip_vs_conn", readAt: s.takenAt, cost: s.connections!.cost)
        #expect(try (decode(s, top: 2)["templates"] as? [Any])?.count == 2)
        #expect(try (decode(s, top: 0)["templates"] as? [Any])?.count == 6)
    }

    @Test func stringsAreEscaped() {
        var w = JSONWriter(pretty: false)
        w.object { w in w.string("k", "a\"b\\c\nd\u{01}") }
        #expect(w.output == #"{"k":"a\"b\\c\nd\u0001"}"#)
    }
}
