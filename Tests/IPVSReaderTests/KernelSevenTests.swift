import Foundation
import Testing
@testable import IPVSModel
@testable import IPVSReader

/// Kernels after 6.1: `ip_vs_status` (7.1+), the table read's completeness check, HZ from
/// where Debian's 7.x keeps its config, and the pacer's decision. The 7.x figures are those
/// of Tests/Fixtures/proc-vm-7, captured from trixie-backports' 7.3.4 in the lab.
@Suite struct KernelSevenTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path
    static let seven = fixtures + "/proc-vm-7"
    static let sixOne = fixtures + "/proc-vm-6.1"

    /// A writable copy of a captured tree.
    static func copy(_ tree: String) throws -> String {
        let dir = NSTemporaryDirectory() + "ipvstop-seven-" + UUID().uuidString
        try FileManager.default.copyItem(atPath: tree, toPath: dir)
        return dir
    }

    static func snapshot(_ root: String) throws -> Snapshot {
        try SnapshotReader(options: ReaderOptions(procRoot: root, hz: 250, kernelConfigDirs: [], moduleDirs: [])).snapshot()
    }

    /// Keeps the header and the first `lines` rows of the table: a read that ended early at
    /// a line boundary, as 7.x's reader ends when the table is resized under it.
    static func cut(_ root: String, file: String = "net/ip_vs_conn", keep lines: Int) throws {
        let text = try String(contentsOfFile: root + "/" + file, encoding: .utf8)
        let kept = text.split(separator: "\n", omittingEmptySubsequences: false).prefix(lines + 1)
        try (kept.joined(separator: "\n") + "\n").write(toFile: root + "/" + file, atomically: true, encoding: .utf8)
    }

    // MARK: ip_vs_status

    @Test func statusOfTheRealCapture() throws {
        let text = try String(contentsOfFile: Self.seven + "/net/ip_vs_status", encoding: .utf8)
        let s = IPVSStatusParser.parse(text)
        #expect(s.conns == 380)
        #expect(s.connTable == HashTableStatus(buckets: 4096, bits: 12, loadFactor: -4, emptyBuckets: 3428, bucketsByLength: [1: 614, 2: 53, 3: 1]))
        #expect(s.services == 14)
        #expect(s.serviceTable == HashTableStatus(buckets: 128, bits: 7, loadFactor: -3, emptyBuckets: 115, bucketsByLength: [1: 12, 2: 1]))
        #expect(s.statsThreadSlots == 1 && s.statsThreadSlotsMax == 8)
        #expect(s.statsChainMaxLength == 94 && s.statsThreadEstimators == 225600)
        #expect(s.unknownLines.isEmpty && s.malformedLines.isEmpty)
        #expect(s.connTable?.growthLoad == 1.0 / 16)
        #expect(s.connTable?.longestChain == 3)
        // The buckets the kernel counted add up to its table.
        let t = try #require(s.connTable)
        #expect(t.emptyBuckets! + t.bucketsByLength.values.reduce(0, +) == t.buckets)
    }

    @Test func statusKeepsUnknownLinesAndRefusesMalformedOnes() throws {
        var text = try String(contentsOfFile: Self.seven + "/net/ip_vs_status", encoding: .utf8)
        text += "Conn resizes:\t3\nsomething new\n"
        text = text.replacingOccurrences(of: "Service buckets:\t128 (7 bits, lfactor -3)", with: "Service buckets:\t128 (seven bits)")
        text = text.replacingOccurrences(of: "Conns:\t380", with: "Conns:\t99999999999999999999")
        let s = IPVSStatusParser.parse(text)
        #expect(s.unknownLines == ["Conn resizes:\t3", "something new"])
        // Conns, Service buckets, and the three service bucket counts that then have no
        // table to belong to.
        #expect(s.malformedLines.count == 5, "\(s.malformedLines)")
        #expect(s.conns == nil)
        #expect(s.serviceTable == nil)
        #expect(s.connTable?.buckets == 4096)
        #expect(IPVSStatusParser.parse("").conns == nil)
    }

    @Test func snapshotOfTheRealCaptureAsRoot() throws {
        let s = try Self.snapshot(Self.seven)
        let st = try #require(s.kernelStatus.status)
        #expect(st.conns == 380)
        let c = try #require(s.connections?.completeness)
        #expect(c.verdict == .whole && c.basis == .kernelCount)
        #expect(c.entriesRead == 380 && c.expected == 380 && c.attempts == 1)
        #expect(!s.source.warnings.contains { $0.contains("PARTIAL") })
        #expect(s.source.files.contains { $0.name == "ip_vs_status" })
        // The new sysctls are read like the others.
        #expect(s.sysctl("conn_lfactor")?.integerValue == -4)
        #expect(s.sysctl("svc_lfactor")?.integerValue == -3)
    }

    /// As a user who may not read ip_vs_status (mode 0440, root's): said unavailable, and the
    /// table is checked against the real servers' counters instead. (Root reads any file,
    /// so as root the CLI test runs the binary as nobody.)
    @Test(.enabled(if: getuid() != 0)) func snapshotWithoutStatusPermission() throws {
        let root = try Self.copy(Self.seven)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.setAttributes([.posixPermissions: 0], ofItemAtPath: root + "/net/ip_vs_status")
        let s = try Self.snapshot(root)
        #expect(s.kernelStatus == .unavailable(reason: "permission denied: root only"))
        #expect(s.source.unavailable.contains { $0.hasPrefix("ipvs_status") })
        #expect(s.connections?.completeness?.basis == .serverCounters)
    }

    @Test func sixOneHasNoStatus() throws {
        let s = try Self.snapshot(Self.sixOne)
        #expect(s.kernelStatus == .absent)
        #expect(!s.source.unavailable.contains { $0.hasPrefix("ipvs_status") })
        let c = try #require(s.connections?.completeness)
        #expect(c.verdict == .whole && c.basis == .serverCounters, "\(c)")
    }

    // MARK: partial reads

    /// The truncated-read fixture: the real 7.x table cut in the middle of a line.
    @Test func aTableCutMidLineIsPartial() throws {
        let root = try Self.copy(Self.seven)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let data = try Data(contentsOf: URL(fileURLWithPath: root + "/net/ip_vs_conn"))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: root + "/net/ip_vs_conn"))
        let s = try Self.snapshot(root)
        let c = try #require(s.connections?.completeness)
        #expect(c.verdict == .partial && c.basis == .truncatedText)
        #expect(s.source.warnings.contains { $0.contains("PARTIAL") })
    }

    /// A read that ended early at a line boundary (no sign in the text itself): found by
    /// the kernel's count, retried (three reads within the one-shot budget), then marked.
    @Test func aTableThatEndsEarlyIsPartialAgainstTheKernelsCount() throws {
        let root = try Self.copy(Self.seven)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.cut(root, keep: 150)
        let s = try Self.snapshot(root)
        let c = try #require(s.connections?.completeness)
        #expect(c.verdict == .partial && c.basis == .kernelCount)
        #expect(c.entriesRead == 150 && c.expected == 380)
        #expect(c.attempts == 3)
        #expect(s.source.warnings.contains { $0.contains("PARTIAL table after 3 read(s)") })
    }

    /// 6.1 has no ip_vs_status: the real servers' counters find the same early end.
    @Test func aSixOneTableThatEndsEarlyIsPartialAgainstTheCounters() throws {
        let root = try Self.copy(Self.sixOne)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.cut(root, keep: 100)
        let c = try #require(try Self.snapshot(root).connections?.completeness)
        #expect(c.verdict == .partial && c.basis == .serverCounters, "\(c)")
    }

    @Test func toleranceFollowsTheChurn() {
        typealias C = TableCheck.Counts
        // A still table: 16 + 0.2% of the count.
        #expect(TableCheck.judge(connections: 985, templates: 0, truncatedText: false, counts: C(kernelBefore: 1000, kernelAfter: 1000)).verdict == .whole)
        #expect(TableCheck.judge(connections: 980, templates: 0, truncatedText: false, counts: C(kernelBefore: 1000, kernelAfter: 1000)).verdict == .partial)
        // 100 new connections a second over 2 s with templates: up to 400 new entries; a
        // steady count means as many left, and each may have shifted the position.
        let busy = C(kernelBefore: 1000, kernelAfter: 1000, connectionsPerSecond: 100, seconds: 2)
        #expect(TableCheck.judge(connections: 200, templates: 0, truncatedText: false, counts: busy).verdict == .whole)
        #expect(TableCheck.judge(connections: 150, templates: 0, truncatedText: false, counts: busy).tolerance == 818)
        #expect(TableCheck.judge(connections: 150, templates: 0, truncatedText: false, counts: busy).verdict == .partial)
        // A shrinking table: what left it may have shifted the position too.
        let shrinking = C(kernelBefore: 1000, kernelAfter: 800)
        #expect(TableCheck.judge(connections: 500, templates: 0, truncatedText: false, counts: shrinking).verdict == .whole)
        #expect(TableCheck.judge(connections: 300, templates: 0, truncatedText: false, counts: shrinking).verdict == .partial)
        // A growing table is no removal: the lab's read during a fill from 8,000 entries
        // (584 new connections a second, no persistence, 7.13 s; the table resized) ended
        // 157 entries short, and is found so.
        var growing = C(kernelBefore: 8000, kernelAfter: 12164, connectionsPerSecond: 584, seconds: 7.13)
        growing.entriesPerConnection = 1
        let lab = TableCheck.judge(connections: 7843, templates: 0, truncatedText: false, counts: growing)
        #expect(lab.verdict == .partial, "\(lab)")
        #expect(TableCheck.judge(connections: 8000, templates: 0, truncatedText: false, counts: growing).verdict == .whole)
        // More than the kernel holds: read twice across a resize.
        #expect(TableCheck.judge(connections: 1100, templates: 0, truncatedText: false, counts: C(kernelBefore: 1000, kernelAfter: 1000)).verdict == .partial)
        // Counters bound from below only (entries of deleted servers are nobody's).
        let counters = C(serverConnections: 1000, serverTemplates: nil)
        #expect(TableCheck.judge(connections: 5000, templates: 7, truncatedText: false, counts: counters).verdict == .whole)
        #expect(TableCheck.judge(connections: 900, templates: 7, truncatedText: false, counts: counters).verdict == .partial)
        #expect(TableCheck.judge(connections: 9, templates: 0, truncatedText: false, counts: C()).verdict == .unchecked)
    }

    /// A read whose position moved back lists entries twice: the poller finds the repeats
    /// in the identities it works out anyway, and marks the table partial.
    @Test func repeatedEntriesMakeAPartialTable() throws {
        let root = try Self.copy(Self.seven)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let text = try String(contentsOfFile: root + "/net/ip_vs_conn", encoding: .utf8)
        let rows = text.split(separator: "\n")
        // 40 rows again at the end, as a read resumed too early would list them; and the
        // kernel's count raised to match, so that only the repeats tell.
        try ((rows + rows[1...40]).joined(separator: "\n") + "\n").write(toFile: root + "/net/ip_vs_conn", atomically: true, encoding: .utf8)
        let status = try String(contentsOfFile: root + "/net/ip_vs_status", encoding: .utf8)
        try status.replacingOccurrences(of: "Conns:\t380", with: "Conns:\t420").write(toFile: root + "/net/ip_vs_status", atomically: true, encoding: .utf8)
        let poller = DirectorPoller(reader: SnapshotReader(options: ReaderOptions(procRoot: root, hz: 250)), interval: 1)
        poller.pollServices()
        poller.pollConnections()
        let c = try #require(poller.latest()?.connections?.completeness)
        #expect(c.verdict == .partial && c.basis == .repeatedEntries, "\(c)")
        #expect(c.detail.hasPrefix("40 of the 420 entries read were listed twice"))
        #expect(TableCheck.withRepeats(nil, repeats: 16, entries: 100) == nil)
    }

    // MARK: HZ

    /// Debian's 7.x keeps its config at /usr/lib/modules/<release>/config, none in /boot;
    /// other kernels have /proc/config.gz.
    @Test func hzFromTheModulesFolderAndFromConfigGz() throws {
        let release = try String(contentsOfFile: Self.seven + "/sys/kernel/osrelease", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let modules = NSTemporaryDirectory() + "ipvstop-modules-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: modules) }
        try FileManager.default.createDirectory(atPath: modules + "/" + release, withIntermediateDirectories: true)
        try "# CONFIG_HZ_100 is not set\nCONFIG_HZ_250=y\nCONFIG_HZ=250\n".write(toFile: modules + "/\(release)/config", atomically: true, encoding: .utf8)
        let fromModules = SnapshotReader(options: ReaderOptions(procRoot: Self.seven, kernelConfigDirs: ["/nonexistent"], moduleDirs: [modules])).kernelConfigHZ()
        #expect(fromModules.0 == TickRate(hz: 250, origin: .kernelConfig))

        let root = try Self.copy(Self.seven)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try "CONFIG_HZ=300\n".write(toFile: root + "/config", atomically: true, encoding: .utf8)
        let gz = Process()
        gz.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gz.arguments = ["-n", root + "/config"]
        try gz.run()
        gz.waitUntilExit()
        #expect(gz.terminationStatus == 0)
        let fromGz = SnapshotReader(options: ReaderOptions(procRoot: root, kernelConfigDirs: [], moduleDirs: [])).kernelConfigHZ()
        #expect(fromGz.0 == TickRate(hz: 300, origin: .kernelConfig))
        // A config.gz that is no gzip at all is read as the text it is; a broken one is not used.
        try Data([0x1f, 0x8b, 0x08, 0x00, 0x00]).write(to: URL(fileURLWithPath: root + "/config.gz"))
        #expect(SnapshotReader(options: ReaderOptions(procRoot: root, kernelConfigDirs: [], moduleDirs: [])).kernelConfigHZ().0 == nil)
    }

    // MARK: pacing

    @Test func pacerReadsCheapTablesEveryIntervalAndPacesCostlyOnes() {
        let p = ConnectionTablePacer(share: 0.05, minimumInterval: 1)
        func cost(_ s: Double) -> ReadCost { ReadCost(seconds: s, cpuSeconds: s / 2, bytes: 0, readCalls: 1) }
        let cheap = p.decision(after: cost(0.012))
        #expect(cheap.mode == .everyInterval && cheap.delay == 1)
        #expect(cheap.reason == "every interval: last read cost 0.012 s")
        // Exactly the share of the interval is still every interval.
        #expect(p.decision(after: cost(0.05)).mode == .everyInterval)
        let costly = p.decision(after: cost(2.41))
        #expect(costly.mode == .paced)
        #expect(abs(costly.delay - 48.2) < 1e-9)
        #expect(costly.reason == "paced: last read cost 2.41 s")
        // CPU time counts when it is the larger (a read that waited on nothing but burnt CPU).
        #expect(p.decision(after: ReadCost(seconds: 0.01, cpuSeconds: 0.2, bytes: 0, readCalls: 1)).mode == .paced)
        #expect(ConnectionTablePacer(share: 0.05, minimumInterval: 1).retryBudget == 2)
    }

    /// The poller's snapshot carries the decision and the read's completeness.
    @Test func pollerHandsOnThePacingAndCompleteness() throws {
        let poller = DirectorPoller(reader: SnapshotReader(options: ReaderOptions(procRoot: Self.seven, hz: 250)), interval: 1)
        poller.pollServices()
        poller.pollConnections()
        let s = try #require(poller.latest())
        let p = try #require(s.tablePacing)
        #expect(p.mode == .everyInterval, "a 380-entry capture reads in well under 50 ms")
        #expect(p.reason.hasPrefix("every interval: last read cost "))
        #expect(s.connections?.completeness?.verdict == .whole)
        #expect(s.connectionChanges == nil)
    }
}
