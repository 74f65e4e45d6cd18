import Foundation
import IPVSTestSupport
import Testing
import IPVSAnalysis
import IPVSModel
import IPVSReader

@Suite struct RogueClientTests {
    @Test func theSeedsThinClientsAreFoundAndNamed() {
        let r = Analysis.analyze(seedDirector().snapshot())
        let rogues = r.of(.rogueClient)
        #expect(Set(rogues.map(\.key)) == [
            "rogue_client/tcp:10.0.0.1:3389/10.1.0.1:3389/10.9.9.1",
            "rogue_client/tcp:10.0.0.1:3389/10.1.0.1:3389/10.9.9.2",
            "rogue_client/tcp:10.0.0.1:3389/10.1.0.7:3389/10.9.9.3",
        ])
        let a = try! #require(r.finding("rogue_client/tcp:10.0.0.1:3389/10.1.0.1:3389/10.9.9.1"))
        #expect(a.subject == "client 10.9.9.1 on 10.1.0.1:3389 of tcp:10.0.0.1:3389")
        #expect(a.explanation.hasPrefix("Client 10.9.9.1 holds 500 of the 912 connections (55%) on real server 10.1.0.1:3389"))
        #expect(a.explanation.contains("Persistence (timeout 43200 s)"))
        #expect(a.evidence("connections")?.int == 500)
        #expect(a.evidence("real_server_connections")?.int == 912)
        #expect(a.evidence("median_client_connections")?.int == 1)
        #expect(a.severity == .warning)
        #expect(a.advice.contains("ipvsadm -Lcn | grep 10.9.9.1"))
    }

    @Test func theSeedsImbalanceIsExplainedByItsClients() {
        let r = Analysis.analyze(seedDirector().snapshot())
        #expect(Set(r.of(.imbalance).map(\.key)) == [
            "imbalance/tcp:10.0.0.1:3389/10.1.0.1:3389", "imbalance/tcp:10.0.0.1:3389/10.1.0.7:3389",
        ])
        let rs1 = try! #require(r.finding("imbalance/tcp:10.0.0.1:3389/10.1.0.1:3389"))
        #expect(rs1.explanation.contains("holds 56% of tcp:10.0.0.1:3389's ActiveConn (912 of 1642) against 14% of its weight (1 of 7)"))
        #expect(rs1.explanation.contains("2 clients hold 880 of the 912 connections in the table there (10.9.9.1: 500, 10.9.9.2: 380), pinned by persistence (timeout 43200 s); without them the server would be within tolerance"))
        #expect(rs1.evidence("cause")?.text == "pinned_clients")
        #expect(rs1.evidence("culprits") == .texts(["10.9.9.1: 500", "10.9.9.2: 380"]))
        #expect(rs1.evidence("culprits_sufficient")?.text == "yes")
        let rs7 = try! #require(r.finding("imbalance/tcp:10.0.0.1:3389/10.1.0.7:3389"))
        #expect(rs7.explanation.contains("Client 10.9.9.3 holds 600 of the 624 connections"))
        // The five servers at ~20 are the mirror image, not five more findings.
        #expect(r.findings.count == 5)
    }

    /// The case: two rogues (900 and 600) on one of two servers whose peer holds ~10.
    /// Removing the first leaves 608 against 10: both are needed.
    func twoRogues(second: Int = 600) -> Director {
        var d = Director()
        d.service("10.0.0.1", 80, "rr", [("10.1.0.1", 1), ("10.1.0.2", 1)])
        d.conns("10.9.9.1", 900, "10.0.0.1", 80, "10.1.0.1")
        if second > 0 { d.conns("10.9.9.2", second, "10.0.0.1", 80, "10.1.0.1") }
        for i in 1...8 { d.conns("192.168.0.\(i)", 1, "10.0.0.1", 80, "10.1.0.1") }
        for i in 11...20 { d.conns("192.168.0.\(i)", 1, "10.0.0.1", 80, "10.1.0.2") }
        return d
    }

    @Test func imbalanceNamesEveryCulpritNeeded() throws {
        let f = try #require(Analysis.analyze(twoRogues().snapshot()).finding("imbalance/tcp:10.0.0.1:80/10.1.0.1:80"))
        #expect(f.evidence("culprits") == .texts(["10.9.9.1: 900", "10.9.9.2: 600"]))
        #expect(f.evidence("culprits_sufficient")?.text == "yes")
        #expect(f.evidence("cause")?.text == "pinned_clients")
        #expect(f.explanation.contains("2 clients hold 1500 of the 1508 connections in the table there (10.9.9.1: 900, 10.9.9.2: 600); without them the server would be within tolerance"))
        // Near miss: a second "rogue" of 5 is an ordinary client: the first alone suffices
        // (913 - 900 = 13 against 10 is within tolerance).
        let one = try #require(Analysis.analyze(twoRogues(second: 5).snapshot()).finding("imbalance/tcp:10.0.0.1:80/10.1.0.1:80"))
        #expect(one.evidence("culprits") == .texts(["10.9.9.1: 900"]))
        #expect(one.explanation.contains("Client 10.9.9.1 holds 900 of the 913 connections"))
        // At most one culprit allowed: the top one is named, and said not to suffice.
        var s = AnalysisSettings()
        s.imbalanceMaxCulprits = 1
        let capped = try #require(Analysis.analyze(twoRogues().snapshot(), settings: s).finding("imbalance/tcp:10.0.0.1:80/10.1.0.1:80"))
        #expect(capped.evidence("culprits") == .texts(["10.9.9.1: 900"]))
        #expect(capped.evidence("culprits_sufficient")?.text == "no")
        #expect(capped.evidence("cause")?.text == "none")
        #expect(capped.explanation.contains("without them it would still hold 608 (98% of the service's, against 50% of the weight): no set of up to 1 explains it"))
    }

    @Test func nearMissesDoNotTrigger() {
        // 19 connections: under the absolute floor, whatever the share.
        var d = Director()
        d.service("10.0.0.1", 80, "rr", [("10.1.0.1", 1), ("10.1.0.2", 1)])
        d.conns("10.9.9.1", 19, "10.0.0.1", 80, "10.1.0.1")
        for i in 1...19 { d.conns("192.168.0.\(i)", 1, "10.0.0.1", 80, "10.1.0.2") }
        #expect(Analysis.analyze(d.snapshot()).of(.rogueClient).isEmpty)
        d.conns("10.9.9.1", 1, "10.0.0.1", 80, "10.1.0.1")
        #expect(Analysis.analyze(d.snapshot()).of(.rogueClient).map(\.key) == ["rogue_client/tcp:10.0.0.1:80/10.1.0.1:80/10.9.9.1"])

        // 30 connections where the median client has 5: only 6 times the median.
        var e = Director()
        e.service("10.0.0.1", 80, "rr", [("10.1.0.1", 1), ("10.1.0.2", 1)])
        e.conns("10.9.9.1", 30, "10.0.0.1", 80, "10.1.0.1")
        for i in 1...20 { e.conns("192.168.0.\(i)", 5, "10.0.0.1", 80, i % 2 == 0 ? "10.1.0.1" : "10.1.0.2") }
        #expect(Analysis.analyze(e.snapshot()).of(.rogueClient).isEmpty)

        // A small table: three clients, nothing to say.
        var f = Director()
        f.service("10.0.0.1", 80, "rr", [("10.1.0.1", 1)])
        f.conns("10.9.9.1", 3, "10.0.0.1", 80, "10.1.0.1")
        f.conns("10.9.9.2", 1, "10.0.0.1", 80, "10.1.0.1")
        #expect(Analysis.analyze(f.snapshot()).findings.isEmpty)

        // Two equally heavy clients alone: neither is beyond "the others".
        var g = Director()
        g.service("10.0.0.1", 80, "rr", [("10.1.0.1", 1), ("10.1.0.2", 1)])
        g.conns("10.9.9.1", 200, "10.0.0.1", 80, "10.1.0.1")
        g.conns("10.9.9.2", 200, "10.0.0.1", 80, "10.1.0.2")
        #expect(Analysis.analyze(g.snapshot()).findings.isEmpty)
    }

    @Test func aProxyFarmBehindANetmaskIsOneRogueGroup() {
        var d = Director()
        d.service("10.0.0.1", 443, "wlc", persistent: 300, netmask: "255.255.255.0", [("10.1.0.1", 1), ("10.1.0.2", 1)])
        // AOL: 150 proxies of one /24, each with 2 connections, all pinned to RS1.
        for h in 1...150 { d.conns("152.163.7.\(h)", 2, "10.0.0.1", 443, "10.1.0.1") }
        d.template("152.163.7.0", "10.0.0.1", 443, "10.1.0.1", expires: 290)
        for g in 0..<40 {
            d.conns("10.\(g).1.5", 1, "10.0.0.1", 443, g % 2 == 0 ? "10.1.0.1" : "10.1.0.2")
            d.template("10.\(g).1.0", "10.0.0.1", 443, g % 2 == 0 ? "10.1.0.1" : "10.1.0.2", expires: 200)
        }
        let r = Analysis.analyze(d.snapshot())
        let f = try! #require(r.finding("rogue_client/tcp:10.0.0.1:443/10.1.0.1:443/152.163.7.0/24"))
        #expect(f.subject == "persistence group 152.163.7.0/24 (150 clients) on 10.1.0.1:443 of tcp:10.0.0.1:443")
        #expect(f.evidence("group_clients")?.int == 150)
        #expect(f.advice.contains("255.255.255.0 persistence netmask"))
        let imb = try! #require(r.finding("imbalance/tcp:10.0.0.1:443/10.1.0.1:443"))
        #expect(imb.explanation.contains("Persistence group 152.163.7.0/24 (150 clients) holds 300 of the 320 connections in the table there"))
        #expect(imb.evidence("cause")?.text == "pinned_group")
        // No client of the farm is a rogue on its own.
        #expect(r.of(.rogueClient).count == 1)
    }
}

@Suite struct ImbalanceTests {
    func twoServers(_ sched: String, _ w1: Int32, _ w2: Int32, _ c1: Int, _ c2: Int) -> Snapshot {
        var d = Director()
        d.service("10.0.0.1", 80, sched, [("10.1.0.1", w1), ("10.1.0.2", w2)])
        for i in 0..<c1 { d.conns("172.16.\(i / 200).\(i % 200 + 1)", 1, "10.0.0.1", 80, "10.1.0.1") }
        for i in 0..<c2 { d.conns("172.17.\(i / 200).\(i % 200 + 1)", 1, "10.0.0.1", 80, "10.1.0.2") }
        return d.snapshot()
    }

    @Test func shareAgainstWeightWithTheSchedulersMeaning() {
        // wrr 1:1 — 70/30 is within 1.5×, 80/20 is not.
        #expect(Analysis.analyze(twoServers("wrr", 1, 1, 70, 30)).findings.isEmpty)
        let r = Analysis.analyze(twoServers("wrr", 1, 1, 80, 20))
        #expect(r.keys == ["imbalance/tcp:10.0.0.1:80/10.1.0.1:80"])
        let f = r.findings[0]
        #expect(f.subject == "10.1.0.1:80 of tcp:10.0.0.1:80 (over its weight)")
        #expect(f.explanation.contains("No single cause shows in the table. Its top 3 clients (172.16.0.1: 1, 172.16.0.10: 1, 172.16.0.11: 1) hold 3 of its 80 connections; without them it would still hold 77 (79% of the service's, against 50% of the weight): no set of up to 3 explains it"))
        #expect(f.evidence("cause")?.text == "none")
        #expect(f.evidence("culprits_sufficient")?.text == "no")
        // wrr 3:1 at 75/25 is what the weights ask for.
        #expect(Analysis.analyze(twoServers("wrr", 3, 1, 75, 25)).findings.isEmpty)
        // rr ignores weights beyond zero: 50/50 with weights 3:1 is balanced.
        #expect(Analysis.analyze(twoServers("rr", 3, 1, 50, 50)).findings.isEmpty)
        // Fail-over gives everything to the heaviest server by design.
        #expect(Analysis.analyze(twoServers("fo", 3, 1, 100, 0)).findings.isEmpty)
        // Too few connections to judge.
        #expect(Analysis.analyze(twoServers("wrr", 1, 1, 15, 1)).findings.isEmpty)
    }

    @Test func anUnderloadedServerIsToldWhenNothingIsOver() {
        var d = Director()
        d.service("10.0.0.1", 80, "wrr", [("10.1.0.1", 1), ("10.1.0.2", 1), ("10.1.0.3", 1), ("10.1.0.4", 1)])
        for (k, rs) in ["10.1.0.1", "10.1.0.2", "10.1.0.3"].enumerated() {
            for i in 0..<40 { d.conns("172.16.\(k).\(i + 1)", 1, "10.0.0.1", 80, rs) }
        }
        d.conns("172.16.9.1", 5, "10.0.0.1", 80, "10.1.0.4")
        let r = Analysis.analyze(d.snapshot())
        #expect(r.keys == ["imbalance/tcp:10.0.0.1:80/10.1.0.4:80"])
        #expect(r.findings[0].subject.hasSuffix("(under its weight)"))
        #expect(r.findings[0].advice.contains("accepts and keeps connections"))
    }

    @Test func aPersistenceTimeoutLongerThanTheConnectionsIsNamed() {
        var d = Director()
        d.service("10.0.0.1", 443, "wlc", persistent: 3600, [("10.1.0.1", 1), ("10.1.0.2", 1)])
        for i in 0..<60 {
            d.conns("172.16.0.\(i + 1)", 1, "10.0.0.1", 443, "10.1.0.1")
            d.template("172.16.0.\(i + 1)", "10.0.0.1", 443, "10.1.0.1", expires: 3000)
        }
        // 70 clients whose connections ended long ago, still pinned.
        for i in 0..<70 { d.template("172.16.1.\(i + 1)", "10.0.0.1", 443, "10.1.0.1", expires: 1200) }
        for i in 0..<15 {
            d.conns("172.17.0.\(i + 1)", 1, "10.0.0.1", 443, "10.1.0.2")
            d.template("172.17.0.\(i + 1)", "10.0.0.1", 443, "10.1.0.2", expires: 3000)
        }
        let f = try! #require(Analysis.analyze(d.snapshot()).finding("imbalance/tcp:10.0.0.1:443/10.1.0.1:443"))
        #expect(f.evidence("cause")?.text == "long_persistence")
        #expect(f.explanation.contains("70 of its 130 templates control no connection: the persistence timeout (3600 s) keeps clients pinned here"))
    }

    @Test func withoutTheTableTheCauseIsSaidUnknown() {
        var d = Director()
        d.service("10.0.0.1", 80, "wrr", [("10.1.0.1", 1), ("10.1.0.2", 1)])
        d.conns("10.9.9.1", 90, "10.0.0.1", 80, "10.1.0.1")
        d.conns("10.9.9.2", 10, "10.0.0.1", 80, "10.1.0.2")
        let r = Analysis.analyze(d.snapshot(withTable: false))
        #expect(r.keys == ["imbalance/tcp:10.0.0.1:80/10.1.0.1:80"])
        #expect(r.findings[0].explanation.hasSuffix("The connection table was not read, so the cause cannot be told."))
        #expect(r.limitations.first?.hasPrefix("connection table not read") == true)
    }

    @Test func heldForItsHoldTimeInAnAnalyzer() {
        let a = Analyzer()
        let snap = twoServers("wrr", 1, 1, 80, 20)
        var raisedAt: Double?
        for t in stride(from: 0.0, through: 90, by: 1) {
            var s = snap
            s.takenAt = t0.addingTimeInterval(t)
            let r = a.update(with: s)
            if raisedAt == nil, !r.findings.isEmpty { raisedAt = t }
            if t < 60 { #expect(r.findings.isEmpty) }
        }
        #expect(raisedAt == 60)
        let f = a.update(with: { var s = snap; s.takenAt = t0.addingTimeInterval(91); return s }()).findings[0]
        #expect(f.since == t0)
    }
}

@Suite struct QuiescentFedTests {
    /// VIP:443 wlc persistent 300; RS2 at weight 0 with ten clients' templates, and two of
    /// those clients open new connections between two reads.
    func director(weight2: Int32 = 0) -> Director {
        var d = Director()
        d.service("10.0.0.100", 443, "wlc", persistent: 300, [("192.168.1.2", 1), ("192.168.2.2", weight2)])
        for i in 0..<10 {
            let c = "172.16.1.\(10 + i)", rs = i % 2 == 0 ? "192.168.1.2" : "192.168.2.2"
            d.conns(c, 2, "10.0.0.100", 443, rs)
            d.template(c, "10.0.0.100", 443, rs, expires: 280)
        }
        return d
    }

    @Test func newConnectionsThroughTemplatesToAWeightZeroServer() {
        let before = director()
        var after = before
        after.conns("172.16.1.11", 1, "10.0.0.100", 443, "192.168.2.2", state: .synRecv, expires: 30)
        after.conns("172.16.1.13", 1, "10.0.0.100", 443, "192.168.2.2")
        after.conns("172.16.1.10", 1, "10.0.0.100", 443, "192.168.1.2") // to the live one: not counted
        let r = Analysis.analyze(after.snapshot(at: t0, previous: before.entries))
        #expect(r.keys == ["quiescent_fed/tcp:10.0.0.100:443/192.168.2.2:443"])
        let f = r.findings[0]
        #expect(f.subject == "192.168.2.2:443 of tcp:10.0.0.100:443 (weight 0)")
        #expect(f.evidence("new_conns_since_quiescent")?.int == 2)
        #expect(f.evidence("templates")?.int == 5)
        #expect(f.evidence("template_max_expires_s")?.int == 280)
        #expect(f.evidence("expire_quiescent_template")?.int == 0)
        #expect(f.explanation.contains("through 5 persistence templates still pointing at it (up to 280 s left)"))
        #expect(f.advice.hasPrefix("sysctl -w net.ipv4.vs.expire_quiescent_template=1"))
    }

    @Test func nearMisses() {
        let before = director()
        var after = before
        after.conns("172.16.1.11", 1, "10.0.0.100", 443, "192.168.2.2")
        // One read only: new connections cannot be told.
        let one = Analysis.analyze(after.snapshot())
        #expect(one.findings.isEmpty)
        #expect(one.limitations.contains { $0.contains("quiescent_fed is not judged") })
        // Templates but nothing new.
        #expect(Analysis.analyze(before.snapshot(previous: before.entries)).findings.isEmpty)
        // expire_quiescent_template=1: the kernel drops those templates at use.
        var eqt = after
        eqt.sysctls["expire_quiescent_template"] = "1"
        #expect(Analysis.analyze(eqt.snapshot(previous: before.entries)).findings.isEmpty)
        // Weight 1: new connections are the scheduler's.
        var live = director(weight2: 1)
        let liveBefore = live.entries
        live.conns("172.16.1.11", 1, "10.0.0.100", 443, "192.168.2.2")
        #expect(Analysis.analyze(live.snapshot(previous: liveBefore)).findings.isEmpty)
    }

    @Test func countsOnlyWhatCameAfterTheWeightWentToZero() {
        let a = Analyzer(settings: { var s = AnalysisSettings(); s.raiseAfter = 1; return s }())
        var d = director(weight2: 1)
        _ = a.update(with: d.snapshot(at: t0, readAt: t0))
        // Weight to 0 at t0+1; the read at t0+1 has a connection that the scheduler may
        // have sent before the change: not counted.
        var prev = d.entries
        d.setWeight("10.0.0.100", 443, "192.168.2.2", 0)
        d.conns("172.16.1.11", 1, "10.0.0.100", 443, "192.168.2.2")
        var r = a.update(with: d.snapshot(at: t0 + 1, readAt: t0 + 1, previous: prev, previousReadAt: t0))
        #expect(r.findings.isEmpty)
        prev = d.entries
        d.conns("172.16.1.13", 1, "10.0.0.100", 443, "192.168.2.2")
        r = a.update(with: d.snapshot(at: t0 + 2, readAt: t0 + 2, previous: prev, previousReadAt: t0 + 1))
        let f = try! #require(r.findings.first)
        #expect(f.kind == .quiescentFed)
        #expect(f.evidence("new_conns_since_quiescent")?.int == 1)
        #expect(f.evidence("quiescent_since_observed")?.text == "transition")
    }

    @Test func throughThePollerFromAProcTree() throws {
        // The kernel's own text, read by the real reader and poller.
        var ipvs = KernelText.ipvsHeader
        ipvs += KernelText.service("TCP", 0x0A00_0064, 443, "wlc", persistent: (75000, 0xFFFF_FFFF))
        ipvs += KernelText.dest(0xC0A8_0102, 443, "Masq", 1, 1, 0)
        ipvs += KernelText.dest(0xC0A8_0202, 443, "Masq", 0, 1, 0)
        var conn = KernelText.connHeader
        conn += KernelText.conn("TCP", 0xAC10_010A, 0, 0x0A00_0064, 443, 0xC0A8_0202, 443, "ASSURED", 290)
        conn += KernelText.conn("TCP", 0xAC10_010A, 0x89F5, 0x0A00_0064, 443, 0xC0A8_0202, 443, "ESTABLISHED", 884)
        conn += KernelText.conn("TCP", 0xAC10_010B, 0, 0x0A00_0064, 443, 0xC0A8_0102, 443, "ASSURED", 290)
        conn += KernelText.conn("TCP", 0xAC10_010B, 0x8135, 0x0A00_0064, 443, 0xC0A8_0102, 443, "ESTABLISHED", 884)
        let tree = try ProcTree([
            "net/ip_vs": ipvs, "net/ip_vs_conn": conn,
            "sys/net/ipv4/vs/expire_quiescent_template": "0\n", "sys/net/ipv4/vs/expire_nodest_conn": "0\n",
        ])
        let poller = DirectorPoller(reader: SnapshotReader(options: ReaderOptions(procRoot: tree.root, hz: 250)))
        poller.pollServices()
        poller.pollConnections()
        #expect(Analysis.analyze(try #require(poller.latest())).findings.isEmpty)
        try tree.write("net/ip_vs_conn", conn + KernelText.conn("TCP", 0xAC10_010A, 0x9001, 0x0A00_0064, 443, 0xC0A8_0202, 443, "SYN_RECV", 59))
        poller.pollConnections()
        let r = Analysis.analyze(try #require(poller.latest()))
        #expect(r.keys == ["quiescent_fed/tcp:10.0.0.100:443/192.168.2.2:443"])
        #expect(r.findings[0].evidence("templates")?.int == 1)
    }
}

@Suite struct DeadDestinationTests {
    func director() -> Director {
        var d = Director()
        d.service("10.0.0.100", 8443, "rr", [("192.168.1.2", 1)])
        d.conns("172.16.1.11", 3, "10.0.0.100", 8443, "192.168.1.2")
        return d
    }

    @Test func connectionsToADeletedRealServer() {
        var d = director()
        d.conns("172.16.1.12", 2, "10.0.0.100", 8443, "192.168.3.2", expires: 700)
        d.conns("172.16.1.13", 1, "10.0.0.100", 8443, "192.168.3.2", state: .timeWait, expires: 100)
        let r = Analysis.analyze(d.snapshot())
        #expect(r.keys == ["dead_destination/tcp:10.0.0.100:8443/192.168.3.2:8443"])
        let f = r.findings[0]
        #expect(f.subject == "192.168.3.2:8443 of tcp:10.0.0.100:8443 (real server deleted)")
        #expect(f.severity == .warning)
        #expect(f.explanation.hasPrefix("3 connections (2 ESTABLISHED) still point at 192.168.3.2:8443, which is no longer a real server of tcp:10.0.0.100:8443."))
        #expect(f.explanation.contains("With expire_nodest_conn=0 the kernel keeps the connections until they time out (up to 700 s)"))
        #expect(f.evidence("expire_nodest_conn")?.int == 0)
        #expect(f.advice.hasPrefix("sysctl -w net.ipv4.vs.expire_nodest_conn=1"))

        d.sysctls["expire_nodest_conn"] = "1"
        let g = Analysis.analyze(d.snapshot()).findings[0]
        #expect(g.severity == .info)
        #expect(g.explanation.contains("expires each connection at its next packet"))
        d.sysctls["expire_nodest_conn"] = nil
        #expect(Analysis.analyze(d.snapshot()).findings[0].evidence("expire_nodest_conn") == .unknown)
    }

    @Test func templatesOnlyAndDeletedServices() {
        var d = director()
        d.template("172.16.1.14", "10.0.0.100", 8443, "192.168.3.2", expires: 50)
        d.conns("172.16.1.15", 2, "10.0.0.200", 80, "192.168.3.2")
        let r = Analysis.analyze(d.snapshot())
        #expect(r.keys == ["dead_destination/tcp:10.0.0.100:8443/192.168.3.2:8443", "dead_destination/tcp:10.0.0.200:80/192.168.3.2:80"])
        let t = try! #require(r.finding("dead_destination/tcp:10.0.0.100:8443/192.168.3.2:8443"))
        #expect(t.severity == .info)
        #expect(t.explanation.contains("discarded when their clients return"))
        let s = try! #require(r.finding("dead_destination/tcp:10.0.0.200:80/192.168.3.2:80"))
        #expect(s.subject == "192.168.3.2:80 of tcp:10.0.0.200:80 (service deleted)")
        #expect(s.explanation.contains("which is no longer a service"))
    }

    @Test func nearMisses() {
        // Everything present.
        #expect(Analysis.analyze(director().snapshot()).findings.isEmpty)
        // A backup's entries from its master are not this director's dead ends.
        var b = director()
        b.file = "ip_vs_conn_sync"
        b.conns("172.16.1.12", 2, "10.0.0.100", 8443, "192.168.3.2", flags: ConnectionEntry.fromSync)
        #expect(Analysis.analyze(b.snapshot()).of(.deadDestination).isEmpty)
    }
}

@Suite struct TemplateOverstayTests {
    @Test func moreTimeLeftThanTheTimeoutIsTheKernelsRearm() {
        var d = Director()
        d.service("10.0.0.1", 80, "rr", persistent: 30, [("10.1.0.1", 1)])
        d.template("172.16.0.1", "10.0.0.1", 80, "10.1.0.1", expires: 55)
        d.conns("172.16.0.1", 2, "10.0.0.1", 80, "10.1.0.1")
        let r = Analysis.analyze(d.snapshot())
        #expect(r.keys == ["template_overstay/tcp:10.0.0.1:80/10.1.0.1:80"])
        let f = r.findings[0]
        #expect(f.severity == .info)
        #expect(f.explanation.hasPrefix("1 template pinning clients to 10.1.0.1:80 of tcp:10.0.0.1:80 has outlived the persistence timeout (30 s) because 2 connections still hang from it"))
        #expect(r.aggregates.templates[0].pastTimeout == true)
        #expect(r.aggregates.templates[0].keptAlive)
    }

    @Test func nearMisses() {
        var d = Director()
        d.service("10.0.0.1", 80, "rr", persistent: 30, [("10.1.0.1", 1)])
        d.template("172.16.0.1", "10.0.0.1", 80, "10.1.0.1", expires: 25)
        d.conns("172.16.0.1", 2, "10.0.0.1", 80, "10.1.0.1")
        d.template("172.16.0.2", "10.0.0.1", 80, "10.1.0.1", expires: 55) // no connection: goes by itself
        d.template("172.16.0.3", "10.0.0.1", 80, "10.1.0.1", expires: 30) // armed this second: the timeout left
        d.conns("172.16.0.3", 1, "10.0.0.1", 80, "10.1.0.1")
        let r = Analysis.analyze(d.snapshot())
        #expect(r.findings.isEmpty)
        #expect(r.aggregates.templates.count == 3 && r.aggregates.templates.allSatisfy { $0.pastTimeout != true })
    }

    @Test func anAnalyzerSeesATemplatePastItsDeadline() {
        let a = Analyzer(settings: { var s = AnalysisSettings(); s.raiseAfter = 1; return s }())
        var d = Director()
        d.service("10.0.0.1", 443, "wlc", persistent: 300, [("10.1.0.1", 1), ("10.1.0.2", 0)])
        d.conns("172.16.0.1", 1, "10.0.0.1", 443, "10.1.0.2")
        d.conns("172.16.0.2", 1, "10.0.0.1", 443, "10.1.0.1")
        func at(_ t: Double, _ left1: UInt32, _ left2: UInt32) -> AnalysisResult {
            var x = d
            x.template("172.16.0.1", "10.0.0.1", 443, "10.1.0.2", expires: left1)
            x.template("172.16.0.2", "10.0.0.1", 443, "10.1.0.1", expires: left2)
            return a.update(with: x.snapshot(at: t0 + t))
        }
        #expect(at(0, 290, 290).findings.isEmpty)
        #expect(at(200, 90, 299).findings.isEmpty) // the second was renewed by a new connection
        #expect(at(290, 1, 209).findings.isEmpty)
        // 10 s past the first one's deadline it is still there, re-armed with 60 s.
        let r = at(305, 55, 194)
        #expect(r.keys == ["template_overstay/tcp:10.0.0.1:443/10.1.0.2:443"])
        let f = r.findings[0]
        #expect(f.severity == .warning) // its real server has weight 0: it keeps it from draining
        #expect(f.evidence("longest_past_timeout_s")?.int == 15)
        #expect(f.advice.contains("expire_quiescent_template=1"))
    }
    @Test func anAnalyzerFollowsThousandsOfTemplatesAtOnce() {
        // The story above for 1,500 clients at once, in three kinds: templates that outlive
        // their deadline (re-armed with 60 s), templates renewed by new connections, and
        // templates that go and come back new. Only the first kind is past its timeout.
        let a = Analyzer(settings: { var s = AnalysisSettings(); s.raiseAfter = 1; return s }())
        var d = Director()
        d.service("10.0.0.1", 443, "wlc", persistent: 300, [("10.1.0.1", 1), ("10.1.0.2", 1)])
        let clients = (0..<1500).map { "172.16.\($0 / 250).\($0 % 250 + 1)" }
        func server(_ k: Int) -> String { k % 2 == 0 ? "10.1.0.1" : "10.1.0.2" }
        for (k, c) in clients.enumerated() { d.conns(c, 1, "10.0.0.1", 443, server(k)) }
        let lefts: [[UInt32?]] = [[290, 90, 1, 55], [290, 299, 209, 194], [290, 90, nil, 295]]
        func at(_ poll: Int, _ t: Double) -> (AnalysisResult, Snapshot) {
            var x = d
            for (k, c) in clients.enumerated() {
                if let left = lefts[k % 3][poll] { x.template(c, "10.0.0.1", 443, server(k), expires: left) }
            }
            let s = x.snapshot(at: t0 + t)
            return (a.update(with: s), s)
        }
        _ = at(0, 0)
        _ = at(1, 200)
        _ = at(2, 290)
        let (r, s) = at(3, 305)
        let entries = s.connections!.entries
        var past = 0, wrong = 0
        for t in r.aggregates.templates {
            let k = clients.firstIndex(of: entries[t.summary.entryIndex].client.description)!
            if k % 3 == 0 {
                if t.pastTimeout == true && t.pastTimeoutSince == t0.addingTimeInterval(290) { past += 1 } else { wrong += 1 }
            } else if t.pastTimeout == true || t.pastTimeoutSince != nil {
                wrong += 1
            }
        }
        #expect(past == 500 && wrong == 0)
        let findings = r.of(.templateOverstay)
        #expect(findings.count == 2)
        #expect(findings.map { $0.evidence("templates")?.int ?? 0 }.reduce(0, +) == 500)
        #expect(findings.allSatisfy { $0.evidence("longest_past_timeout_s")?.int == 15 })
    }
}

@Suite struct TablePressureTests {
    @Test func theKernelsDefensesAndTheTablesSize() {
        var d = healthyDirector()
        d.sysctls["drop_entry"] = "2"
        let r = Analysis.analyze(d.snapshot())
        #expect(r.keys == ["table_pressure/connection_table"])
        let f = r.findings[0]
        #expect(f.severity == .critical)
        #expect(r.exitStatus == 2)
        #expect(f.explanation.contains("available memory below amemthresh (1024 pages"))
        #expect(f.explanation.contains("/proc/meminfo is not part of the snapshot"))
        #expect(f.evidence("mem_available_bytes") == .unknown)

        var forced = healthyDirector()
        forced.sysctls["secure_tcp"] = "3"
        let fs = Analysis.analyze(forced.snapshot()).findings
        #expect(fs.map(\.severity) == [.warning])
        #expect(fs.first?.advice.hasPrefix("secure_tcp = 3 is a manual setting") == true)

        var chains = healthyDirector()
        chains.tableSize = 16
        let c = Analysis.analyze(chains.snapshot()).findings[0]
        #expect(c.severity == .warning)
        #expect(c.explanation.contains("entries in a hash table of 16 buckets"))
        #expect(c.advice.contains("conn_tab_bits"))
    }

    /// 7.1+: the table is resizable and ip_vs_status gives the buckets the lookups really
    /// use; those are judged, not the header's size=. Without ip_vs_status (6.1) the
    /// header's size is the table, as before.
    @Test func theLiveBucketsOfAResizableTable() throws {
        var d = healthyDirector()
        d.tableSize = 4096
        let entries = d.entries.count
        #expect(entries >= 16 * 4, "the healthy director has entries enough for 4 buckets to be crowded")
        var s = d.snapshot()
        var st = IPVSStatus()
        st.conns = entries
        st.connTable = HashTableStatus(buckets: 4, bits: 2, loadFactor: -4)
        s.kernelStatus = .read(st)
        let f = try #require(Analysis.analyze(s).finding("table_pressure/connection_table"))
        #expect(f.severity == .warning)
        #expect(f.explanation.contains("entries in a hash table of 4 buckets"))
        #expect(f.explanation.contains("the kernel grows it past 1/16 node a bucket, conn_lfactor -4"))
        #expect(f.evidence("table_size")?.int == 4)
        #expect(f.evidence("table_size_from") == .text("ip_vs_status"))
        #expect(f.evidence("conn_lfactor")?.int == -4)
        #expect(f.advice.contains("resizes itself up to 2^conn_tab_bits"))

        // A small size= in the header, but the live table is large: no pressure.
        var small = healthyDirector()
        small.tableSize = 4
        var roomy = small.snapshot()
        st.connTable = HashTableStatus(buckets: 65536, bits: 16, loadFactor: -4)
        roomy.kernelStatus = .read(st)
        #expect(Analysis.analyze(roomy).finding("table_pressure/connection_table") == nil)
        // ... which without ip_vs_status (6.1) is judged as before.
        #expect(Analysis.analyze(small.snapshot()).finding("table_pressure/connection_table")?.evidence("table_size_from") == .text("ip_vs header"))
    }

    @Test func memoryThresholdIsAnOverride() throws {
        let d = healthyDirector()
        #expect(Analysis.analyze(d.snapshot()).findings.isEmpty)
        var s = AnalysisSettings()
        try s.apply(override: "table_memory_warn=100KiB")
        let f = try #require(Analysis.analyze(d.snapshot(), settings: s).findings.first)
        #expect(f.kind == .tablePressure)
        #expect(f.evidence("entry_memory_bytes")?.int == d.entries.count * 320)
    }
}

@Suite struct SyncTests {
    @Test func aBackupThatReceivesNothing() {
        var d = healthyDirector()
        d.file = "ip_vs_conn_sync"
        d.syncDaemons = [SyncDaemon(role: .backup, multicastInterface: "eth1", syncID: 7)]
        let r = Analysis.analyze(d.snapshot())
        #expect(r.keys == ["sync/backup/eth1/7"])
        #expect(r.findings[0].explanation == "The backup sync daemon (syncid 7 on eth1) is running, but no entry in the connection table came from a master.")
        // With entries from the master: nothing to say from one snapshot.
        d.conns("172.30.0.1", 5, "10.0.0.1", 80, "10.1.0.1", flags: ConnectionEntry.fromSync)
        #expect(Analysis.analyze(d.snapshot()).findings.isEmpty)
        // Read from ip_vs_conn (no Origin column): cannot be told.
        var plain = healthyDirector()
        plain.syncDaemons = d.syncDaemons
        let p = Analysis.analyze(plain.snapshot())
        #expect(p.findings.isEmpty)
        #expect(p.limitations.contains { $0.contains("Origin column") })
        // No netlink: daemons unknown.
        var unknown = healthyDirector()
        unknown.syncDaemons = nil
        #expect(Analysis.analyze(unknown.snapshot()).limitations.contains { $0.contains("sync daemons unknown") })
    }

    @Test func aBackupWhoseEntriesStopMoving() {
        let a = Analyzer(settings: { var s = AnalysisSettings(); s.raiseAfter = 2; return s }())
        var d = healthyDirector()
        d.file = "ip_vs_conn_sync"
        d.syncDaemons = [SyncDaemon(role: .backup, multicastInterface: "eth1", syncID: 7)]
        d.conns("172.30.0.1", 5, "10.0.0.1", 80, "10.1.0.1", flags: ConnectionEntry.fromSync)
        var prev = d.entries
        var raisedAt: Double?
        for t in stride(from: 0.0, through: 200, by: 10) {
            if t <= 40 { d.conns("172.30.0.\(Int(t) + 2)", 1, "10.0.0.1", 80, "10.1.0.1", flags: ConnectionEntry.fromSync) }
            let r = a.update(with: d.snapshot(at: t0 + t, previous: prev, previousReadAt: t0 + t - 10))
            prev = d.entries
            if raisedAt == nil, let f = r.findings.first {
                raisedAt = t
                #expect(f.key == "sync/backup/eth1/7")
                #expect(f.explanation.hasPrefix("No new entry has arrived from the master for"))
            }
        }
        // Last new entry at 40 s; 120 s of silence at 160, a second sample at 170.
        #expect(raisedAt == 170)
    }

    @Test func aMasterWithNothingToSend() {
        let a = Analyzer(settings: { var s = AnalysisSettings(); s.raiseAfter = 1; s.syncStallSeconds = 30; return s }())
        var d = healthyDirector()
        d.file = "ip_vs_conn_sync"
        d.syncDaemons = [SyncDaemon(role: .master, multicastInterface: "eth1", syncID: 7)]
        var prev = d.entries
        var raised: [Double] = []
        for t in stride(from: 0.0, through: 60, by: 5) {
            if t <= 10 { d.conns("172.30.1.\(Int(t) + 1)", 1, "10.0.0.1", 80, "10.1.0.1") }
            let r = a.update(with: d.snapshot(at: t0 + t, previous: prev, previousReadAt: t0 + t - 5))
            prev = d.entries
            if let f = r.findings.first {
                raised.append(t)
                #expect(f.key == "sync/master/eth1/7" && f.severity == .info)
            }
        }
        // The last new local entry at 10 s, 30 s of quiet at 40 s.
        #expect(raised.first == 40)
    }
}
