import Foundation
import IPVSAnalysis
import IPVSDemo
import IPVSModel
import Synchronization
import Testing
@testable import IPVSFeed

func tempPath(_ name: String) -> String {
    NSTemporaryDirectory() + "/ipvstop-feed-test-\(getpid())-\(name)"
}

@Test func replaySourcePlaysFramesInOrder() throws {
    let path = tempPath("replay.rec")
    defer { try? FileManager.default.removeItem(atPath: path) }
    let d = DemoDirector()
    let w = try Recording.Writer(path: path, source: "demo", interval: 1)
    for k in 0..<4 { try w.append(d.snapshot(at: 3_600 + Double(k))) }
    try w.close()
    let paused = try ReplaySource(path: path, start: -1, paused: true)
    let frames = paused.take()
    #expect(frames.count == 4)
    #expect(paused.now() == frames.last!.takenAt)
    #expect(paused.note == "frame 4/4 (end)")
    let first = try ReplaySource(path: path, start: 0, paused: true)
    #expect(first.take().count == 1)
    #expect(first.take().isEmpty)
}

@Test func oneSpecForEverySource() throws {
    // The demo: one snapshot at the warm time, with its table unless asked without.
    let demo = try FeedSpec.demo(seed: 1).snapshot()
    #expect(demo.takenAt == DemoDirector().epoch.addingTimeInterval(DemoDirector.warmTime))
    #expect(demo.connections != nil)
    #expect(try FeedSpec.demo(seed: 1).snapshot(connections: false).connections == nil)
    #expect(FeedSpec.demo(seed: 7).label == "demo seed 7")

    // A recording: the last frame by default, the named one otherwise; the frames up to it.
    let path = tempPath("spec.rec")
    defer { try? FileManager.default.removeItem(atPath: path) }
    let d = DemoDirector()
    let w = try Recording.Writer(path: path, source: "demo", interval: 1)
    for k in 0..<3 { _ = try w.append(d.snapshot(at: 3_600 + Double(k))) }
    try w.close()
    let last = try FeedSpec.replay(path: path, frame: nil).snapshot()
    #expect(last.takenAt == d.epoch.addingTimeInterval(3_602))
    #expect(try FeedSpec.replay(path: path, frame: 0).snapshot().takenAt == d.epoch.addingTimeInterval(3_600))
    #expect(try FeedSpec.replay(path: path, frame: 1).replayFrames().count == 2)
    #expect(try FeedSpec.replay(path: path, frame: -1).replayFrames().count == 3)
    let playing = try FeedSpec.replay(path: path, frame: nil).open(interval: 1, paused: true)
    #expect(playing.take().count == 1)

    // Nothing to read: the error says which, for the faces that word it differently.
    let empty = NSTemporaryDirectory() + "ipvstop-feed-empty-\(getpid())"
    try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: empty) }
    #expect(throws: FeedError.self) { try FeedSpec.director(.init(procRoot: empty)).snapshot() }
    do {
        _ = try FeedSpec.director(.init(procRoot: empty)).open(interval: 1)
        Issue.record("opened a tree without net/ip_vs")
    } catch {
        #expect(error.kind == .noIPVS)
        #expect(error.description.contains("net/ip_vs does not exist"))
    }
    do {
        _ = try FeedSpec.replay(path: empty + "/none.rec", frame: nil).snapshot()
        Issue.record("read a missing recording")
    } catch {
        #expect(error.kind == .unreadable)
        #expect(error.description.hasPrefix("--replay "))
    }
}

@Test func loopAnalysesEverySnapshotInOrder() throws {
    let loop = try FeedLoop(spec: .demo(seed: 1), interval: 0.1)
    let seen = Mutex<[Date]>([])
    let findings = Mutex(0)
    loop.start { s, r in
        seen.withLock { $0.append(s.takenAt) }
        findings.withLock { $0 = r.findings.count }
    }
    let deadline = Date().addingTimeInterval(10)
    while seen.withLock({ $0.count }) < 8 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
    loop.stop()
    let dates = seen.withLock { $0 }
    // The demo's history first (findings that need several samples), then one per interval.
    #expect(dates.count >= 8)
    #expect(dates == dates.sorted())
    #expect(Set(dates).count == dates.count)
    #expect(findings.withLock { $0 } > 0)
}

@Test func recordingsKeepTheHost() throws {
    // A host record before the first frame and again only where the host changed; each frame
    // reads back with the host of its time.
    let path = tempPath("host.rec")
    defer { try? FileManager.default.removeItem(atPath: path) }
    let d = DemoDirector()
    let other = HostInfo(hostname: "lvs-b", kernelRelease: "7.3.4+deb13-amd64")
    let w = try Recording.Writer(path: path, source: "demo", interval: 1)
    for k in 0..<4 {
        var s = d.snapshot(at: 3_600 + Double(k))
        if k == 3 { s.host = other }
        try w.append(s)
    }
    try w.close()
    let r = try Recording.read(path: path)
    #expect(r.frames.map(\.host) == [DemoDirector.host, DemoDirector.host, DemoDirector.host, other])
    #expect(r.rejected.isEmpty)
    // Two host records, not four: a frame whose host did not change writes none.
    let bytes = [UInt8](try #require(FileManager.default.contents(atPath: path)))
    var types: [UInt8] = []
    var at = try #require(bytes.firstIndex(of: UInt8(ascii: "\n"))) + 1
    while at + 5 <= bytes.count {
        let length = Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
        types.append(bytes[at + 4])
        at += 4 + length
    }
    #expect(types.filter { $0 == 7 }.count == 2)
    #expect(types.filter { $0 == 2 }.count == 4)

    // A host longer than a kernel keeps (64 bytes) is damage: left out, said so.
    let bad = tempPath("host-bad.rec")
    defer { try? FileManager.default.removeItem(atPath: bad) }
    let wb = try Recording.Writer(path: bad, source: "demo", interval: 1)
    var s = d.snapshot(at: 3_600)
    s.host = HostInfo(hostname: String(repeating: "x", count: 65), kernelRelease: "6.1")
    try wb.append(s)
    try wb.close()
    let rb = try Recording.read(path: bad)
    #expect(rb.frames.first?.host == nil)
    #expect(rb.rejected.contains { $0.contains("longer than 64 bytes") })
}

@Test func aBigTableIsNotAnalysedAgainForEveryServicesPoll() throws {
    // The demo's snapshot with its table grown past the line (entries repeated).
    let d = DemoDirector()
    var s = d.snapshot(at: 3_600)
    let t = try #require(s.connections)
    var entries = t.entries
    while entries.count < FeedLoop.bigTable { entries += t.entries }
    s.connections = ConnectionTable(entries: entries, file: t.file, readAt: t.readAt, cost: t.cost)
    let result = Analyzer().update(with: s)
    let reuse = FeedLoop.Reuse(after: s, seconds: 0.5, result: result)
    func later(_ seconds: Double, newTable: Bool = false) -> Snapshot {
        var n = s
        n.takenAt = s.takenAt.addingTimeInterval(seconds)
        if newTable { n.connections = ConnectionTable(entries: entries, file: t.file, readAt: t.readAt.addingTimeInterval(seconds), cost: t.cost) }
        return n
    }
    // The same table, polled services: the last analysis again, until its cost allows
    // another (0.5 s at 1%: 50 s; never less than 10 s).
    #expect(reuse.covers(later(1)))
    #expect(reuse.covers(later(49)))
    #expect(!reuse.covers(later(51)))
    #expect(!FeedLoop.Reuse(after: s, seconds: 0.01, result: result).covers(later(11)))
    #expect(FeedLoop.Reuse(after: s, seconds: 0.01, result: result).covers(later(9)))
    // A new table is analysed at once; a small table every time.
    #expect(!reuse.covers(later(1, newTable: true)))
    let small = d.snapshot(at: 3_600)
    #expect(!FeedLoop.Reuse(after: small, seconds: 0.5, result: Analyzer().update(with: small)).covers(small))
    // Handed again without its events: a trap is sent once.
    #expect(reuse.result.events.isEmpty)
    #expect(reuse.result.findings.count == result.findings.count)
}
