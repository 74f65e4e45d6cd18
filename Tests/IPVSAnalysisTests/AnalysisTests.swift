import Foundation
import Testing
import IPVSAnalysis
import IPVSModel
import IPVSReader

/// The real director captured from Debian's 6.1 kernel (Tests/Fixtures/proc-vm-6.1).
func fixtureSnapshot() throws -> Snapshot {
    let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    let root = here.appendingPathComponent("Fixtures/proc-vm-6.1").path
    return try SnapshotReader(options: ReaderOptions(procRoot: root, hz: 250)).snapshot()
}

@Suite struct FixtureTests {
    @Test func theRealDirectorSaysWhatItShowsAndNothingMore() throws {
        let r = Analysis.analyze(try fixtureSnapshot())
        #expect(r.keys == [
            "dead_destination/tcp:10.0.0.100:8443/192.168.3.2:8443",
            // the scenario's rogue client: 100 connections, 50 on each real server (rr)
            "rogue_client/tcp:10.0.0.100:80/192.168.1.2:80/172.16.3.66",
            "rogue_client/tcp:10.0.0.100:80/192.168.2.2:80/172.16.3.66",
            // the /24 "proxy farm" pinned to one of two equal servers
            "imbalance/tcp:10.0.0.101:8080/192.168.1.2:8080",
        ])
        let dead = try #require(r.finding("dead_destination/tcp:10.0.0.100:8443/192.168.3.2:8443"))
        #expect(dead.evidence("connections")?.int == 3)
        #expect(dead.evidence("expire_nodest_conn")?.int == 0)
        #expect(dead.severity == .warning)
        let farm = try #require(r.finding("imbalance/tcp:10.0.0.101:8080/192.168.1.2:8080"))
        #expect(farm.explanation.contains("Persistence group 172.16.2.0/24 (50 clients) holds 50 of the 50 connections"))
        // One read: the weight-0 server on VIP:443 has templates, but new connections
        // through them cannot be seen, so no quiescent_fed; nothing overstays; no daemon
        // is known without netlink.
        #expect(r.of(.quiescentFed).isEmpty && r.of(.templateOverstay).isEmpty && r.of(.sync).isEmpty && r.of(.tablePressure).isEmpty)
        #expect(r.limitations.contains { $0.contains("quiescent_fed is not judged") })
        #expect(r.exitStatus == 1)
    }

    @Test func itsAggregates() throws {
        let s = try fixtureSnapshot()
        let a = Aggregates(s)
        let rogue = try #require(a.clients.first { $0.address == ip("172.16.3.66") })
        #expect(rogue.connections.total == 100)
        #expect(a.loads(of: rogue).count == 2)
        for l in a.loads(of: rogue) { #expect(l.connections.active == 50 && l.shareOfActive.map { abs($0 - 50.0 / 65) < 1e-6 } == true) }
        let farm = try #require(a.groups.first { $0.name == "172.16.2.0/24" })
        #expect(farm.clients == 50 && farm.connections.total == 50 && farm.templates == 1)
        #expect(s.services[farm.service].id == "tcp:10.0.0.101:8080")
        #expect(a.groups.filter { $0.name == "fd00:c1::/64" }.count == 2) // IPv6 /64 and IPv6 fwmark /64
        let dead = a.destinations.filter { !$0.isLive }
        #expect(dead.map { a.realServerName($0, in: s) } == ["192.168.3.2:8443"])
        // Every connection lands somewhere: fwmark (VIP3:8000/8001), all-ports (VIP2:9000).
        #expect(a.destinations.reduce(0) { $0 + $1.connections.total } == s.connections!.counts.connections)
        #expect(a.destinations.allSatisfy { $0.service != nil })
        // Templates: the model's summaries, with time left and timeout.
        #expect(a.templates.count == 37)
        let q = a.templates.filter { a.destinations[$0.destination].address == ip("192.168.2.2") && $0.timeout == 300 }
        #expect(q.count == 10 && q.allSatisfy { $0.keptAlive && $0.pastTimeout == nil })
    }
}

@Suite struct HealthyDirectorTests {
    @Test func noFindingOneShotOrOverTime() {
        let d = healthyDirector()
        let r = Analysis.analyze(d.snapshot())
        #expect(r.findings.isEmpty)
        #expect(r.exitStatus == 0)
        let a = Analyzer()
        for t in 0..<100 {
            let res = a.update(with: d.snapshot(at: t0 + Double(t), previous: d.entries, previousReadAt: t0 + Double(t) - 1))
            #expect(res.findings.isEmpty && res.pending.isEmpty)
        }
        let agg = r.aggregates
        #expect(agg.clients.count == 120 + 60)
        #expect(agg.groups.count == 30 && agg.groups.allSatisfy { $0.clients == 2 && $0.templates == 1 && $0.prefixLength == 24 })
        #expect(agg.topClients(3).map(\.connections.total) == [3, 3, 3])
    }
}

@Suite struct HysteresisTests {
    /// One client whose connections on a real server waver around the threshold (20).
    func wavering(_ n: Int) -> Director {
        var d = Director()
        d.service("10.0.0.1", 80, "rr", [("10.1.0.1", 1), ("10.1.0.2", 1)])
        d.conns("10.9.9.1", n, "10.0.0.1", 80, "10.1.0.1")
        for i in 1...40 { d.conns("192.168.0.\(i)", 1, "10.0.0.1", 80, i % 2 == 0 ? "10.1.0.1" : "10.1.0.2") }
        return d
    }

    @Test func aNoisyMeasureRaisesOnceAndDoesNotFlap() {
        let a = Analyzer()
        let noise = [21, 22, 24, 19, 18, 21, 23, 17, 20, 19, 22, 18, 25, 17, 19, 21, 18, 20, 22, 17, 19, 23, 18, 21]
        var events: [FindingEvent] = []
        var ids: Set<Int> = []
        for (t, n) in noise.enumerated() {
            let r = a.update(with: wavering(n).snapshot(at: t0 + Double(t)))
            events += r.events
            ids.formUnion(r.findings.map(\.id))
        }
        #expect(events.count == 1)
        if case .raised(let f)? = events.first { #expect(f.key == "rogue_client/tcp:10.0.0.1:80/10.1.0.1:80/10.9.9.1") }
        #expect(ids.count == 1)
    }

    @Test func raisesAfterConsecutiveHitsAndClearsAfterConsecutiveMisses() {
        let a = Analyzer()
        let key = "rogue_client/tcp:10.0.0.1:80/10.1.0.1:80/10.9.9.1"
        // Seen once in three: never raised.
        for (t, n) in [30, 5, 5, 30, 5, 30, 5].enumerated() {
            let r = a.update(with: wavering(n).snapshot(at: t0 + Double(t)))
            #expect(r.findings.isEmpty)
            if n == 30 { #expect(r.pending.map(\.key) == [key]) }
        }
        var r = a.update(with: wavering(30).snapshot(at: t0 + 10))
        r = a.update(with: wavering(30).snapshot(at: t0 + 11))
        #expect(r.findings.isEmpty)
        r = a.update(with: wavering(30).snapshot(at: t0 + 12))
        #expect(r.keys == [key])
        #expect(r.events.map(\.finding.key) == [key])
        let first = r.findings[0]
        #expect(first.since == t0 + 10)
        // Four misses keep it (with its last evidence), the fifth clears it.
        for t in 13...16 {
            r = a.update(with: wavering(2).snapshot(at: t0 + Double(t)))
            #expect(r.findings.map(\.id) == [first.id])
        }
        r = a.update(with: wavering(2).snapshot(at: t0 + 17))
        #expect(r.findings.isEmpty)
        #expect(r.events == [.cleared(r.events[0].finding)] && r.events[0].finding.id == first.id)
        // Raised again later: a new id, never the old one.
        for t in 20...22 { r = a.update(with: wavering(30).snapshot(at: t0 + Double(t))) }
        #expect(r.findings.count == 1 && r.findings[0].id > first.id)
    }

    @Test func aSlowTableIsNotCountedTwice() {
        let a = Analyzer()
        // Services polled every second, the table read once: one sample, not five.
        for t in 0..<5 {
            let r = a.update(with: wavering(30).snapshot(at: t0 + Double(t), readAt: t0))
            #expect(r.findings.isEmpty)
        }
        _ = a.update(with: wavering(30).snapshot(at: t0 + 5, readAt: t0 + 5))
        let r = a.update(with: wavering(30).snapshot(at: t0 + 6, readAt: t0 + 6))
        #expect(r.findings.count == 1)
    }

    @Test func identityIsStableAcrossUpdates() {
        let a = Analyzer()
        var seen: [String: Int] = [:]
        for t in 0..<20 {
            // The table changes (other clients come and go) but the finding is the same.
            var d = seedDirector()
            d.conns("172.31.0.\(t + 1)", 1, "10.0.0.1", 3389, "10.1.0.2")
            let r = a.update(with: d.snapshot(at: t0 + Double(t)))
            for f in r.findings {
                if let id = seen[f.key] { #expect(id == f.id) } else { seen[f.key] = f.id }
                #expect(f.since == t0 + (f.kind == .imbalance ? 0 : 0))
            }
        }
        #expect(seen.count == 3) // the rogues; imbalance waits for its 60 s
        #expect(Set(seen.values).count == 3)
        #expect(a.raised == seen)
    }
}

@Suite struct SettingsTests {
    @Test func overridesByName() throws {
        var s = AnalysisSettings()
        try s.apply(override: "rogue_min_conns=450")
        try s.apply(override: "imbalance-hold=2m")
        try s.apply(override: "table_memory_warn=1GiB")
        try s.apply(override: "rogue_min_share=15%")
        #expect(s.rogueMinConnections == 450 && s.imbalanceHoldSeconds == 120 && s.tableMemoryWarningBytes == 1 << 30)
        #expect(s.rogueMinShare == 0.15)
        #expect(throws: AnalysisSettings.OverrideError.unknownName("rogue_min")) { try s.apply(override: "rogue_min=3") }
        #expect(throws: AnalysisSettings.OverrideError.syntax("rogue_min_conns")) { try s.apply(override: "rogue_min_conns") }
        #expect(throws: AnalysisSettings.OverrideError.badValue(name: "rogue_min_conns", value: "2.5")) { try s.apply(override: "rogue_min_conns=2.5") }
        #expect(throws: AnalysisSettings.OverrideError.outOfRange(name: "rogue_min_share", value: "3", range: 0...1)) { try s.apply(override: "rogue_min_share=3") }
        #expect(throws: AnalysisSettings.OverrideError.outOfRange(name: "raise_after", value: "0", range: 1...1_000_000)) { try s.apply(override: "raise_after=0") }
        // Issue 25: any integer threshold of 2^63 or more trapped turned into an Int.
        for big in ["1e30", "9223372036854775808", "1e19", "1000000001"] {
            #expect(throws: AnalysisSettings.OverrideError.outOfRange(name: "rogue_min_conns", value: big, range: 0...1_000_000_000)) {
                try s.apply(override: "rogue_min_conns=\(big)")
            }
        }
        #expect(throws: AnalysisSettings.OverrideError.self) { try s.apply(override: "table_memory_warn=1e300") }
        #expect(throws: AnalysisSettings.OverrideError.self) { try s.apply(override: "imbalance_hold=1e300") }
        #expect(throws: AnalysisSettings.OverrideError.self) { try s.apply(override: "imbalance_hold=inf") }
        #expect(throws: AnalysisSettings.OverrideError.self) { try s.apply(override: "rogue_median_factor=nan") }
        for p in AnalysisSettings.parameters {
            var t = AnalysisSettings()
            try t.apply(override: "\(p.name)=\(Int64(p.range.upperBound))")
            #expect(p.value(in: t) == p.range.upperBound)
        }
        #expect(AnalysisSettings.OverrideError.outOfRange(name: "rogue_min_conns", value: "1e30", range: 0...1_000_000_000).description
                == "threshold rogue_min_conns: '1e30' is out of range (0 to 1000000000)")

        // Only the 500 and 600 clients hold 450 or more.
        let r = Analysis.analyze(seedDirector().snapshot(), settings: s)
        #expect(Set(r.of(.rogueClient).compactMap { $0.evidence("client")?.text }) == ["10.9.9.1", "10.9.9.3"])
    }

    @Test func everyThresholdIsListedWithItsDefault() {
        let names = AnalysisSettings.parameters.map(\.name)
        #expect(Set(names).count == names.count)
        let d = AnalysisSettings()
        let text = Dictionary(uniqueKeysWithValues: AnalysisSettings.parameters.map { ($0.name, $0.text(in: d)) })
        #expect(text["rogue_min_conns"] == "20" && text["imbalance_hold"] == "60s" && text["clear_factor"] == "0.8")
        #expect(text["service_min_servers"] == "0" && text["service_min_share"] == "0.5")
        #expect(names.count == 19)
    }
}
