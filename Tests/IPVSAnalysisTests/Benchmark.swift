import Foundation
import IPVSTestSupport
import Testing
import IPVSAnalysis
import IPVSModel
import IPVSReader
#if canImport(Glibc)
import Glibc
#endif

/// What the analysis adds to a poll of a 10^6-entry table (the budget: at most 50%).
/// Run by hand, in release:
///
///     IPVSTOP_BENCH=1000000 swift test -c release --filter AnalysisBenchmark
///
/// It writes a /proc tree in the kernel's formats (8 services × 8 real servers, 200,000
/// clients, persistence on half the services, 10% templates, a few rogue clients), then
/// times the poll (`SnapshotReader.snapshot()`: every file read and parsed) against
/// `Analysis.analyze` and `Analyzer.update` (with `connectionChanges` of 1% new entries).
@Suite struct AnalysisBenchmark {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["IPVSTOP_BENCH"] != nil))
    func tenToTheSixEntries() throws {
        let n = Int(ProcessInfo.processInfo.environment["IPVSTOP_BENCH"] ?? "") ?? 1_000_000
        let sticky = !(ProcessInfo.processInfo.environment["IPVSTOP_BENCH_STICKY"] ?? "").isEmpty
        let tree = try ProcTree()
        var ipvs = KernelText.ipvsHeader
        for s in 0..<8 {
            let persistent: (Int, UInt32)? = s % 2 == 0 ? (75000, s == 4 ? 0xFFFF_FF00 : 0xFFFF_FFFF) : nil
            ipvs += KernelText.service("TCP", 0x0A00_0001 + UInt32(s), 443, "wlc", persistent: persistent)
            for r in 0..<8 { ipvs += KernelText.dest(0xC0A8_0000 + UInt32(s) << 8 + UInt32(r + 2), 443, "Masq", 1, 0, 0) }
        }
        try tree.write("net/ip_vs", ipvs)
        try tree.write("sys/net/ipv4/vs/expire_nodest_conn", "0\n")
        try tree.write("sys/net/ipv4/vs/expire_quiescent_template", "0\n")
        try tree.write("sys/net/ipv4/vs/amemthresh", "1024\n")
        try tree.write("slabinfo", "slabinfo - version: 2.1\nip_vs_conn        1000000 1000000    320   12    1 : tunables    0    0    0 : slabdata  0 0 0\n")

        func table(_ count: Int, seed: UInt64) -> String {
            var rows = [UInt8]()
            rows.reserveCapacity(count * 70)
            rows.append(contentsOf: Array(KernelText.connHeader.utf8))
            var x = seed
            func next() -> UInt64 { x = x &* 6364136223846793005 &+ 1442695040888963407; return x >> 17 }
            let hex = Array("0123456789ABCDEF".utf8)
            func put(_ v: UInt64, _ w: Int) { for i in stride(from: w - 1, through: 0, by: -1) { rows.append(hex[Int(v >> UInt64(4 * i) & 0xF)]) } }
            for i in 0..<count {
                let r = next()
                let rogue = i % 50 == 0
                let client: UInt64 = rogue ? 0xAC10_0042 : 0x6400_0000 + (r >> 6) % 200_000
                // Each client's connections spread over every service and real server (the
                // worst case: ~5 client × real-server pairs per client), or with
                // IPVSTOP_BENCH_STICKY one service and one real server per client, as
                // persistence makes it.
                let svc = sticky && !rogue ? client % 8 : UInt64(r % 8)
                let rs = sticky && !rogue ? (client / 8) % 8 : UInt64((r >> 3) % 8)
                let template = svc % 2 == 0 && i % 10 == 0
                rows.append(contentsOf: Array("TCP ".utf8))
                put(client, 8); rows.append(0x20)
                put(template ? 0 : 1024 + UInt64(i) % 60000, 4); rows.append(0x20)
                put(0x0A00_0001 + svc, 8); rows.append(0x20)
                put(443, 4); rows.append(0x20)
                put(0xC0A8_0000 + svc << 8 + rs + 2, 8); rows.append(0x20)
                put(443, 4); rows.append(0x20)
                rows.append(contentsOf: Array((template ? "ASSURED    " : (i % 4 == 0 ? "TIME_WAIT  " : "ESTABLISHED")).utf8))
                rows.append(contentsOf: Array(String(format: " %7u\n", template ? 10 + i % 280 : 100 + i % 800).utf8))
            }
            return String(decoding: rows, as: UTF8.self)
        }
        try tree.write("net/ip_vs_conn", table(n, seed: 1))
        let reader = SnapshotReader(options: ReaderOptions(procRoot: tree.root, hz: 250))

        // CPU seconds of this thread (user + system): the build machine is shared, and wall
        // time would measure the neighbours.
        func cpu() -> Double {
            var ts = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        }
        func time(_ body: () throws -> Void) rethrows -> Double {
            let t = cpu()
            try body()
            return cpu() - t
        }
        var snap: Snapshot!
        var polls: [Double] = []
        for _ in 0..<5 { polls.append(try time { snap = try reader.snapshot() }) }
        #expect(snap.connections?.entries.count == n)
        var oneShot: [Double] = []
        var result: AnalysisResult!
        for _ in 0..<5 { oneShot.append(time { result = Analysis.analyze(snap) }) }
        var aggOnly: [Double] = []
        for _ in 0..<5 { aggOnly.append(time { _ = Aggregates(snap) }) }
        var summaries: [Double] = []
        for _ in 0..<5 { summaries.append(time { _ = snap.templateSummaries() }) }

        // The poller's second read: 1% of the entries new.
        let previous = snap.connections!.identityDigests()
        try tree.write("net/ip_vs_conn", table(n, seed: 1) + table(n / 100, seed: 2).split(separator: "\n", maxSplits: 1).last!)
        var second = try reader.snapshot()
        second.connectionChanges = ConnectionChanges(previousReadAt: snap.connections!.readAt,
                                                     newEntryIndices: second.connections!.newEntryIndices(since: previous), interval: 1)
        let analyzer = Analyzer()
        _ = analyzer.update(with: snap)
        let update = time { _ = analyzer.update(with: second) }

        let poll = polls.min()!, a = oneShot.min()!
        print(String(format: "BENCH \(sticky ? "sticky" : "spread") entries=%d poll=%.3fs analyze=%.3fs (%.0f%% of poll) aggregates=%.3fs templateSummaries=%.3fs analyzer.update=%.3fs clients=%d findings=%d",
                     n, poll, a, 100 * a / poll, aggOnly.min()!, summaries.min()!, update, result.aggregates.clients.count, result.findings.count))
        for f in result.findings { print("BENCH finding", f.key) }
        // A report, not a gate: the figure depends on the machine (see the doc comment).
        if a > 0.5 * poll { print("BENCH over budget: analysis \(Int(100 * a / poll))% of the poll") }
    }
}
