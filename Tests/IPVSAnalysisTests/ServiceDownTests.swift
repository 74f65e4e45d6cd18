import Foundation
import IPVSModel
import Testing

@testable import IPVSAnalysis

/// service_down: critical when no real server can take a new connection, a warning below
/// the quorum; near misses on each side.
@Suite struct ServiceDownTests {
    /// A service whose real servers carry netlink's thresholds (as root).
    func director(_ rs: [(String, Int32)], upper: UInt32? = 0, lower: UInt32? = 0, sched: String = "wlc") -> Director {
        var d = Director()
        d.service("10.0.0.1", 80, sched, rs)
        for j in d.services[0].realServers.indices {
            d.services[0].realServers[j].upperThreshold = upper
            d.services[0].realServers[j].lowerThreshold = lower
        }
        return d
    }

    func down(_ d: Director, _ settings: AnalysisSettings = AnalysisSettings()) -> [Finding] {
        Analysis.analyze(d.snapshot(), settings: settings).of(.serviceDown)
    }

    @Test func noRealServer() throws {
        var d = Director()
        d.service("10.0.0.1", 80, "rr", [])
        let f = try #require(down(d).first)
        #expect(f.key == "service_down/tcp:10.0.0.1:80")
        #expect(f.severity == .critical)
        #expect(f.evidence("reason")?.text == "no_real_servers")
        #expect(f.evidence("real_servers")?.int == 0 && f.evidence("available")?.int == 0)
        #expect(f.explanation.contains("no flag that tells a drain on purpose"))
        #expect(f.advice.contains("ipvsadm -a -t 10.0.0.1:80"))
        #expect(Analysis.analyze(d.snapshot()).exitStatus == 2)
    }

    @Test func everyWeightZero() throws {
        let d = director([("10.0.1.1", 0), ("10.0.1.2", 0)])
        let f = try #require(down(d).first)
        #expect(f.severity == .critical)
        #expect(f.evidence("reason")?.text == "all_weight_zero")
        #expect(f.evidence("weight_zero") == .texts(["10.0.1.1:80", "10.0.1.2:80"]))
        // Near miss: one server at weight 1 out of two is half, not below the share.
        #expect(down(director([("10.0.1.1", 0), ("10.0.1.2", 1)])).isEmpty)
    }

    @Test func everyOverUpperThreshold() throws {
        var d = director([("10.0.1.1", 1), ("10.0.1.2", 1)], upper: 10)
        d.conns("192.168.0.1", 10, "10.0.0.1", 80, "10.0.1.1")
        d.conns("192.168.0.2", 6, "10.0.0.1", 80, "10.0.1.2")
        d.conns("192.168.0.3", 4, "10.0.0.1", 80, "10.0.1.2", state: .timeWait)   // InActConn counts too
        let f = try #require(down(d).first)
        #expect(f.severity == .critical)
        #expect(f.evidence("reason")?.text == "all_over_threshold")
        #expect(f.evidence("over_threshold") == .texts(["10.0.1.1:80", "10.0.1.2:80"]))
        // Near miss: one connection under the threshold on one of them, and no lower
        // threshold: 9 × 4 ≥ 10 × 3, so the kernel may still hold it overloaded (it clears
        // below 3/4 of the upper one): a warning, not critical.
        var m = director([("10.0.1.1", 1), ("10.0.1.2", 1)], upper: 10)
        m.conns("192.168.0.1", 10, "10.0.0.1", 80, "10.0.1.1")
        m.conns("192.168.0.2", 9, "10.0.0.1", 80, "10.0.1.2")
        let g = try #require(down(m).first)
        #expect(g.severity == .warning && g.evidence("reason")?.text == "maybe_over_threshold")
        #expect(g.evidence("maybe_over_threshold") == .texts(["10.0.1.2:80"]))
        // Under 3/4 of it: surely able; one of two able is not below the share.
        var n = director([("10.0.1.1", 1), ("10.0.1.2", 1)], upper: 10)
        n.conns("192.168.0.1", 10, "10.0.0.1", 80, "10.0.1.1")
        n.conns("192.168.0.2", 7, "10.0.0.1", 80, "10.0.1.2")
        #expect(down(n).isEmpty)
        // With a lower threshold, that is the bound: 7 ≥ 5 may still be overloaded.
        var l = director([("10.0.1.1", 1), ("10.0.1.2", 1)], upper: 10, lower: 5)
        l.conns("192.168.0.1", 10, "10.0.0.1", 80, "10.0.1.1")
        l.conns("192.168.0.2", 7, "10.0.0.1", 80, "10.0.1.2")
        #expect(down(l).first?.evidence("reason")?.text == "maybe_over_threshold")
    }

    @Test func weightZeroAndOverThresholdTogether() throws {
        var d = director([("10.0.1.1", 0), ("10.0.1.2", 1)], upper: 5)
        d.conns("192.168.0.2", 5, "10.0.0.1", 80, "10.0.1.2")
        let f = try #require(down(d).first)
        #expect(f.severity == .critical && f.evidence("reason")?.text == "weight_zero_or_over_threshold")
    }

    @Test func quorumShareAndCount() throws {
        // Two of three drained: one third can, under the default half.
        let d = director([("10.0.1.1", 0), ("10.0.1.2", 0), ("10.0.1.3", 1)])
        let f = try #require(down(d).first)
        #expect(f.severity == .warning && f.evidence("reason")?.text == "below_min_share")
        #expect(f.evidence("available")?.int == 1 && f.evidence("real_servers")?.int == 3)
        #expect(f.subject.contains("1 of 3 real servers"))
        // Near miss: two of four is half: not raised.
        #expect(down(director([("10.0.1.1", 0), ("10.0.1.2", 0), ("10.0.1.3", 1), ("10.0.1.4", 1)])).isEmpty)
        // A count, like keepalived's quorum: three of four able, but three required... is
        // met; four required is not.
        var s = AnalysisSettings()
        s.serviceMinShare = 0
        s.serviceMinServers = 3
        let four = director([("10.0.1.1", 0), ("10.0.1.2", 1), ("10.0.1.3", 1), ("10.0.1.4", 1)])
        #expect(down(four, s).isEmpty)
        s.serviceMinServers = 4
        #expect(down(four, s).first?.evidence("reason")?.text == "below_min_servers")
        // Both off: only the critical case is raised.
        s.serviceMinServers = 0
        #expect(down(d, s).isEmpty)
        #expect(down(director([("10.0.1.1", 0)]), s).first?.severity == .critical)
    }

    @Test func unprivilegedCannotJudgeThresholds() throws {
        // Without netlink the thresholds are unknown: a server of weight > 0 counts as able,
        // and the analysis says what it could not judge.
        var d = director([("10.0.1.1", 1), ("10.0.1.2", 1)], upper: nil, lower: nil)
        d.conns("192.168.0.1", 50, "10.0.0.1", 80, "10.0.1.1")
        let r = Analysis.analyze(d.snapshot())
        #expect(r.of(.serviceDown).isEmpty)
        #expect(r.limitations.contains { $0.contains("upper thresholds unknown") })
        // Weight 0 is known without netlink: still critical, and it says what was assumed.
        var z = director([("10.0.1.1", 0), ("10.0.1.2", 0), ("10.0.1.3", 1)], upper: nil, lower: nil)
        z.conns("192.168.0.1", 5, "10.0.0.1", 80, "10.0.1.3")
        let f = try #require(Analysis.analyze(z.snapshot()).of(.serviceDown).first)
        #expect(f.severity == .warning && f.evidence("thresholds_unknown")?.int == 1)
        #expect(f.explanation.contains("not known without netlink"))
        // As root (thresholds known) the limitation is not said.
        #expect(!Analysis.analyze(director([("10.0.1.1", 1)]).snapshot()).limitations.contains { $0.contains("upper thresholds unknown") })
    }

    @Test func healthyServiceRaisesNothing() {
        var d = director([("10.0.1.1", 1), ("10.0.1.2", 3)], upper: 100)
        d.conns("192.168.0.1", 10, "10.0.0.1", 80, "10.0.1.1")
        d.conns("192.168.0.2", 30, "10.0.0.1", 80, "10.0.1.2")
        #expect(Analysis.analyze(d.snapshot()).findings.isEmpty)
    }

    @Test func hysteresisRaisesAndClears() throws {
        var s = AnalysisSettings()
        s.raiseAfter = 2
        s.clearAfter = 2
        let a = Analyzer(settings: s)
        let bad = director([("10.0.1.1", 0)]), good = director([("10.0.1.1", 1)])
        #expect(a.update(with: bad.snapshot(at: t0)).findings.isEmpty)
        let r = a.update(with: bad.snapshot(at: t0 + 1))
        #expect(r.events.map(\.finding.key) == ["service_down/tcp:10.0.0.1:80"])
        #expect(a.update(with: good.snapshot(at: t0 + 2)).events.isEmpty)
        let c = a.update(with: good.snapshot(at: t0 + 3))
        guard case .cleared(let f)? = c.events.first else { Issue.record("not cleared"); return }
        #expect(f.kind == .serviceDown)
    }
}
