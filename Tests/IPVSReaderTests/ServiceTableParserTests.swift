import Foundation
import IPVSTestSupport
import Testing
@testable import IPVSModel
@testable import IPVSReader

@Suite struct ServiceTableParserTests {
    static let v6vip = "2001:0db8:0000:0000:0000:0000:0000:0001"
    static let v6rs = "2001:0db8:0000:0000:0000:0000:0001:0002"

    static var director: String {
        KernelText.ipvsHeader
            + KernelText.service("TCP", 0x0A00_0001, 80, "rr")
            + KernelText.dest(0x0A00_0102, 80, "Masq", 3, 912, 40)
            + KernelText.dest(0x0A00_0103, 80, "Route", 0, 20, 7)
            + KernelText.service("TCP", 0x0A00_0001, 443, "wlc", persistent: (75000, 0xFFFF_FF00))
            + KernelText.dest(0x0A00_0102, 443, "Tunnel", 1, 5, 1)
            + KernelText.service("UDP", 0x0A00_0001, 53, "rr", ops: true)
            + KernelText.dest(0x0A00_0102, 53, "Local", 1, 0, 12)
            + KernelText.service("SCTP", 0x0A00_0001, 2905, "sh")
            + KernelText.dest(0x0A00_0104, 2905, "Masq", 1, 1, 0)
            + KernelText.fwmark(1, "rr", persistent: (15000, 0xFFFF_FFFF))
            + KernelText.dest(0x0A00_0102, 0, "Route", 1, 2, 0)
            + KernelText.service6("TCP", v6vip, 80, "rr", persistent: (30000, UInt32(64).byteSwapped))
            + KernelText.dest6(v6rs, 80, "Masq", 2, 3, 4)
    }

    @Test func everyKindOfService() {
        let t = ServiceTableParser.parse(Self.director, hz: 250)
        #expect(t.skipped.total == 0)
        #expect(t.info == IPVSInfo(version: "1.2.1", tableSize: 4096))
        #expect(t.services.map(\.id) == [
            "tcp:10.0.0.1:80", "tcp:10.0.0.1:443", "udp:10.0.0.1:53", "sctp:10.0.0.1:2905", "fwmark:1", "tcp:[2001:db8::1]:80",
        ])
        let web = t.services[0]
        #expect(web.scheduler == "rr")
        #expect(web.persistence == nil)
        #expect(web.realServers.count == 2)
        #expect(web.realServers[0].id == "10.0.1.2:80")
        #expect(web.realServers[0].forward == .masq)
        #expect(web.realServers[0].weight == 3)
        #expect(web.realServers[0].activeConns == 912)
        #expect(web.realServers[0].inactiveConns == 40)
        #expect(web.realServers[0].persistentConns == nil)
        #expect(web.realServers[0].stats == nil)
        #expect(web.realServers[1].forward == .route)
        #expect(web.realServers[1].isQuiescent)

        let tls = t.services[1]
        #expect(tls.flags.contains(.persistent))
        #expect(tls.persistence == Persistence(timeoutSeconds: 300, timeoutJiffies: 75000, netmask: .ipv4(0xFFFF_FF00)))
        #expect(tls.realServers[0].forward == .tunnel)

        #expect(t.services[2].flags.contains(.onePacket))
        #expect(t.services[2].realServers[0].forward == .local)
        #expect(t.services[3].key == .address(.sctp, IPAddress("10.0.0.1")!, 2905))

        let fwm = t.services[4]
        #expect(fwm.key == .fwmark(1, .ipv4))
        #expect(fwm.persistence?.timeoutSeconds == 60)
        #expect(fwm.realServers[0].port == 0)

        let v6 = t.services[5]
        #expect(v6.key.family == .ipv6)
        #expect(v6.persistence?.netmask == .prefix(64))
        #expect(v6.persistence?.timeoutSeconds == 120)
        #expect(v6.realServers[0].id == "[2001:db8::1:2]:80")
        #expect(v6.realServers[0].activeConns == 3)
    }

    @Test func withoutHZTheTimeoutStaysInJiffies() {
        let t = ServiceTableParser.parse(Self.director, hz: nil)
        #expect(t.services[1].persistence?.timeoutSeconds == nil)
        #expect(t.services[1].persistence?.timeoutJiffies == 75000)
    }

    @Test func fwmarkFamilyComesFromItsRealServers() {
        let text = KernelText.ipvsHeader + KernelText.fwmark(7, "wrr", persistent: (15000, UInt32(128).byteSwapped))
            + KernelText.dest6(Self.v6rs, 0, "Route", 1, 0, 0)
            + KernelText.fwmark(8, "rr")
        let t = ServiceTableParser.parse(text, hz: 250)
        #expect(t.services[0].key == .fwmark(7, .ipv6))
        #expect(t.services[0].persistence?.netmask == .prefix(128))
        // No real servers: family unknown, taken as IPv4 and reported.
        #expect(t.services[1].key == .fwmark(8, .ipv4))
        #expect(t.fwmarkFamilyGuessed == [8])
    }

    @Test func badLinesAreSkippedNotAttachedElsewhere() {
        let text = KernelText.ipvsHeader
            + "TCP  0A00000G:0050 rr \n"                     // bad hex: service and its destinations skipped
            + KernelText.dest(0x0A00_0102, 80, "Masq", 1, 5, 0)
            + "XYZ  0A000001:0050 rr \n"                     // unknown protocol
            + KernelText.service("TCP", 0x0A00_0001, 81, "rr")
            + "  -> 0A000102:0051      Warp    1      0          0         \n"  // unknown forward
            + "  -> 0A000103:0051      Masq    1      0\n"                      // truncated
            + KernelText.dest(0x0A00_0104, 81, "Masq", 1, 2, 3)
            + "TCP  0A000001:0052 rr persistent 75000\n"      // persistence cut short
        let t = ServiceTableParser.parse(text, hz: 250)
        #expect(t.services.map(\.id) == ["tcp:10.0.0.1:81"])
        #expect(t.services[0].realServers.map(\.id) == ["10.0.1.4:81"])
        #expect(t.skipped.unknownProtocol == 1)
        #expect(t.skipped.malformed == 5)
    }
}

@Suite struct SmallFileParserTests {
    static let stats = """
           Total Incoming Outgoing         Incoming         Outgoing
           Conns  Packets  Packets            Bytes            Bytes
              1F       A0       9C             3B60             5A1E

         Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s
               1        2        3               A0               F0

        """

    @Test func globalStatsAreHex() throws {
        let g = try StatsParser.parse(Self.stats)
        #expect(g.totals == TrafficStats(conns: 31, inPackets: 160, outPackets: 156, inBytes: 0x3B60, outBytes: 0x5A1E))
        #expect(g.rates == TrafficRates(cps: 1, inPPS: 2, outPPS: 3, inBPS: 160, outBPS: 240))
    }

    @Test func perCPUStats() throws {
        let text = """
                   Total Incoming Outgoing         Incoming         Outgoing
            CPU    Conns  Packets  Packets            Bytes            Bytes
              0       10       50       4C             2000             3000
              1        F       50       50             1B60             2A1E
              ~       1F       A0       9C             3B60             5A1E

                 Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s
                           1        2        3               A0               F0

            """
        let g = try StatsParser.parsePerCPU(text)
        #expect(g.perCPU?.count == 2)
        #expect(g.perCPU?[1].conns == 15)
        #expect(g.totals.conns == 31)
        #expect(g.rates.outBPS == 240)
    }

    @Test func truncatedStatsThrow() {
        #expect(throws: StatsParser.Failure.self) { try StatsParser.parse(String(Self.stats.prefix(200))) }
        #expect(throws: StatsParser.Failure.self) { try StatsParser.parse("") }
    }

    @Test func slabAndKernelConfig() {
        let slab = """
            slabinfo - version: 2.1
            # name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
            ip_vs_conn          1234   1300    304   26    2 : tunables    0    0    0 : slabdata     50     50      0
            """
        #expect(SlabInfoParser.parse(slab) == SlabInfo(objectSize: 304, activeObjects: 1234, totalObjects: 1300))
        #expect(SlabInfoParser.parse("slabinfo - version: 2.1\n") == nil)
        #expect(KernelConfigParser.hz("CONFIG_HZ_250=y\nCONFIG_HZ=250\n") == 250)
        #expect(KernelConfigParser.hz("# CONFIG_HZ is not set\n") == nil)
    }
}
