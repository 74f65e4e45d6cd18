import Foundation
import IPVSAnalysis
import IPVSModel
import IPVSReader
import IPVSTestSupport
import Testing

/// The analysis on the bad inputs of issue 25 (Tests/Fixtures/bad-inputs/proc): none
/// traps, and none gives a finding the input cannot support.
@Suite struct BadInputAnalysisTests {
    static func analyze(_ name: String) throws -> (Snapshot, AnalysisResult) {
        let (root, remove) = try BadInputs.tree(name)
        defer { remove() }
        let s = try SnapshotReader(options: ReaderOptions(procRoot: root, hz: 250)).snapshot()
        return (s, Analysis.analyze(s))
    }

    /// amemthresh = 2^63-1 with drop_entry = 2 trapped computing its KiB. The value is no
    /// number (not a C int), so the finding says "?" and raises all the same on drop_entry.
    @Test func amemthreshOverflowDoesNotTrap() throws {
        let (_, r) = try Self.analyze("sysctl-amemthresh-overflow")
        let f = try #require(r.finding("table_pressure/connection_table"))
        #expect(f.severity == .critical)
        #expect(f.explanation.contains("below amemthresh (?)"))
        guard case .unknown? = f.evidence("amemthresh_pages") else {
            Issue.record("amemthresh_pages should be unknown")
            return
        }
    }

    /// The largest amemthresh the kernel takes still gives an exact KiB figure.
    @Test func amemthreshAtIntMaxIsExact() throws {
        var s = try fixtureSnapshot()
        s.sysctls = s.sysctls.map { c in
            switch c.name {
            case "amemthresh": Sysctl(name: c.name, value: "2147483647")
            case "drop_entry": Sysctl(name: c.name, value: "2")
            default: c
            }
        }
        let f = try #require(Analysis.analyze(s).finding("table_pressure/connection_table"))
        #expect(f.explanation.contains("2147483647 pages, 8589934588 KiB"))
    }

    @Test func slabOverflowLeavesMemoryUnknown() throws {
        let (s, r) = try Self.analyze("slabinfo-objsize-overflow")
        #expect(s.connectionMemoryBytes == nil)
        #expect(r.finding("table_pressure/connection_table") == nil)
    }

    /// The CRLF service table once read as no services, and check reported every real
    /// server as deleted (20 false dead_destination findings): now it gives the same
    /// findings as the clean capture.
    @Test func crlfGivesTheCleanFindings() throws {
        let (_, clean) = try Self.analyze("proc-inactconn-400000000")   // same services but one count
        let (_, r) = try Self.analyze("proc-ip_vs-crlf-silently-empty")
        #expect(r.keys.filter { $0.hasPrefix("dead_destination") } == clean.keys.filter { $0.hasPrefix("dead_destination") })
        #expect(r.keys.count == clean.keys.count || r.keys.count + 1 == clean.keys.count)
        #expect(r.keys.filter { $0.hasPrefix("dead_destination") }.count == 1)
    }

    /// A service skipped as impossible (IPv6 prefix 4294967295): its connections are not
    /// reported as pointing at a deleted one; the limitation says why.
    @Test func skippedServiceIsNoDeadDestination() throws {
        let (s, r) = try Self.analyze("proc-ipv6-prefix-4294967295")
        #expect(s.source.servicesIncomplete)
        #expect(!r.keys.contains { $0.hasPrefix("dead_destination") })
        #expect(r.limitations.contains { $0.contains("dead_destination is not judged") })
    }

    @Test(arguments: ["dashboard-ip_vs_stats-rate-2^64", "proc-inactconn-400000000", "proc-inactconn-4294967295",
                      "proc-terminal-escapes", "slabinfo-objsize-overflow", "sysctl-amemthresh-overflow"])
    func everyTreeIsAnalysed(_ name: String) throws {
        let (s, r) = try Self.analyze(name)
        #expect(!s.services.isEmpty)
        #expect(r.takenAt == s.takenAt)
    }
}
