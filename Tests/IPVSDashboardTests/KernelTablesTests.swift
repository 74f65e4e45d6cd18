import Foundation
import IPVSDemo
import IPVSFeed
import IPVSModel
import Testing
@testable import IPVSDashboard

/// The status line says how old the table is and why (read every interval, or paced by
/// its cost), and never shows a partial table as the whole one; the Kernel screen shows
/// ip_vs_status (7.1+) or why it is unavailable.
@Suite struct KernelTablesTests {
    static func snapshot(partial: Bool, pacing: TablePacing, status: IPVSStatusReading) -> Snapshot {
        var s = DemoDirector().snapshot(at: DemoDirector.warmTime)
        let n = s.connections!.entries.count
        s.connections!.completeness = partial
            ? TableCompleteness(verdict: .partial, basis: .kernelCount, entriesRead: n, expected: n * 2, tolerance: 40, attempts: 3,
                                detail: "\(n) of the kernel's \(n * 2) entries read (ip_vs_status Conns; 40 allowed for churn): the read ended early")
            : TableCompleteness(verdict: .whole, basis: .kernelCount, entriesRead: n, expected: n, tolerance: 40, detail: "whole")
        s.tablePacing = pacing
        s.kernelStatus = status
        return s
    }

    static func render(_ s: Snapshot, screen: Character, width: Int = 200) -> Grid {
        let d = Dashboard(source: FixedSource(s), worker: AnalysisWorker(), glyphs: .unicode)
        d.pump()
        for _ in 0..<250 where d.worker.isRunning { usleep(20_000); d.pump() }
        d.handle(.char(screen))
        return d.render(width: width, height: 50)
    }

    static var status: IPVSStatus {
        var st = IPVSStatus()
        st.conns = 380
        st.connTable = HashTableStatus(buckets: 4096, bits: 12, loadFactor: -4, emptyBuckets: 3428, bucketsByLength: [1: 614, 2: 53, 3: 1])
        st.services = 14
        st.serviceTable = HashTableStatus(buckets: 128, bits: 7, loadFactor: -3, emptyBuckets: 115, bucketsByLength: [1: 12, 2: 1])
        st.statsThreadSlots = 1
        st.statsThreadSlotsMax = 8
        st.statsThreadEstimators = 225600
        return st
    }

    @Test func statusLineSaysPacedAndPartial() {
        let paced = TablePacing(mode: .paced, lastCost: 2.41, delay: 48.2, share: 0.05)
        let g = Self.render(Self.snapshot(partial: true, pacing: paced, status: .read(Self.status)), screen: "1")
        let line = g.line(1)
        #expect(line.contains("paced: last read cost 2.41 s"), "\(line)")
        #expect(line.contains("PARTIAL table:"), "\(line)")
        // The short form keeps both.
        let narrow = Self.render(Self.snapshot(partial: true, pacing: paced, status: .read(Self.status)), screen: "1", width: 80).line(1)
        #expect(narrow.contains("paced 2.4s") && narrow.contains("PARTIAL"), "\(narrow)")
    }

    @Test func statusLineOfACheapWholeTable() {
        let cheap = TablePacing(mode: .everyInterval, lastCost: 0.004, delay: 1, share: 0.05)
        let line = Self.render(Self.snapshot(partial: false, pacing: cheap, status: .absent), screen: "1").line(1)
        #expect(line.contains("every interval: last read cost 0.004 s"), "\(line)")
        #expect(!line.contains("PARTIAL"))
    }

    /// A recording keeps a table's completeness: a replayed partial table is still partial.
    @Test func recordingKeepsThePartialMark() throws {
        let path = NSTemporaryDirectory() + "ipvstop-partial-\(UUID().uuidString).rec"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let paced = TablePacing(mode: .paced, lastCost: 2.41, delay: 48.2, share: 0.05)
        let s = Self.snapshot(partial: true, pacing: paced, status: .read(Self.status))
        let w = try Recording.Writer(path: path, source: "test", interval: 1, maxEntries: 1 << 20, maxBytes: 1 << 26)
        #expect(try w.append(s))
        try w.close()
        let r = try Recording.read(path: path)
        let c = try #require(r.frames.first?.connections?.completeness)
        #expect(c == s.connections!.completeness!)
        #expect(r.frames.first?.kernelStatus == .read(Self.status))
        #expect(r.frames.first?.tablePacing == paced)
    }

    @Test func kernelScreenShowsIpvsStatus() {
        let cheap = TablePacing(mode: .everyInterval, lastCost: 0.004, delay: 1, share: 0.05)
        let text = Self.render(Self.snapshot(partial: true, pacing: cheap, status: .read(Self.status)), screen: "6").text
        #expect(text.contains("kernel entries"))
        #expect(text.contains("conn buckets"))
        #expect(text.contains("12 bits, lfactor -4: grows past 1/16 a bucket"))
        #expect(text.contains("empty 83%, 1: 614, 2: 53, 3: 1"))
        #expect(text.contains("service buckets"))
        #expect(text.contains("1 of 8"))
        #expect(text.contains("PARTIAL"))
        #expect(text.contains("of the buckets in use (ip_vs_status)"))
        let nobody = Self.render(Self.snapshot(partial: false, pacing: cheap, status: .unavailable(reason: "permission denied: root only")), screen: "6").text
        #expect(nobody.contains("ip_vs_status"))
        #expect(nobody.contains("unavailable"))
        #expect(nobody.contains("permission denied: root only"))
    }
}
