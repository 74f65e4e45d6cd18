import Foundation
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
