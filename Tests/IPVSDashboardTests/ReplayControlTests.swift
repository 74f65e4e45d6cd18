import Foundation
import IPVSDemo
import IPVSFeed
import IPVSModel
import Testing
@testable import IPVSDashboard

// Issue 22, section 4: replay controls. The feed moves (ReplayControl on ReplaySource);
// the dashboard asks with [ ] + - J and shows the position.

func replayDashboard(frames: Int = 6) throws -> (Dashboard, [Snapshot], String) {
    let path = tempPath("replay-\(UUID().uuidString).rec")
    let d = DemoDirector(seed: 5)
    let w = try Recording.Writer(path: path, source: "demo seed 5", interval: 1)
    var written: [Snapshot] = []
    for k in 0..<frames {
        let s = d.snapshot(at: DemoDirector.warmTime + Double(k))
        written.append(s)
        try w.append(s)
    }
    try w.close()
    let source = try ReplaySource(path: path, start: -1, paused: true)
    let dash = Dashboard(source: source, worker: AnalysisWorker(), glyphs: .unicode)
    dash.pump()
    return (dash, written, path)
}

func typeSeek(_ d: Dashboard, _ text: String) {
    d.handle(.char("J"))
    for c in text { d.handle(.char(c)) }
    d.handle(.enter)
}

@Test func replayStepsBackAndForthAndSeeks() throws {
    let (d, frames, path) = try replayDashboard()
    defer { try? FileManager.default.removeItem(atPath: path) }
    #expect(d.snapshot?.takenAt == frames[5].takenAt)
    #expect(d.render(width: 120, height: 40).line(1).contains("frame 6/6 (end)"))
    d.handle(.char("["))
    #expect(d.snapshot?.takenAt == frames[4].takenAt)
    // The analysis started afresh and was fed frames 1..5 again: it is of frame 5.
    #expect(d.worker.latest?.takenAt == frames[4].takenAt)
    #expect(d.render(width: 120, height: 40).line(1).contains("frame 5/6"))
    d.handle(.char("["))
    d.handle(.char("["))
    #expect(d.snapshot?.takenAt == frames[2].takenAt)
    d.handle(.char("]"))
    #expect(d.snapshot?.takenAt == frames[3].takenAt)
    #expect(d.source.isPaused)
    typeSeek(d, "#1")
    #expect(d.snapshot?.takenAt == frames[0].takenAt)
    typeSeek(d, "+3")
    #expect(d.snapshot?.takenAt == frames[3].takenAt)
    typeSeek(d, "-2")
    #expect(d.snapshot?.takenAt == frames[1].takenAt)
    // A time of day as the status line writes it.
    let clock = Format.localTime(frames[4].takenAt)
    typeSeek(d, String(clock.split(separator: " ")[1]))
    #expect(d.snapshot?.takenAt == frames[4].takenAt)
    typeSeek(d, clock)
    #expect(d.snapshot?.takenAt == frames[4].takenAt)
    typeSeek(d, "soon")
    #expect(d.render(width: 120, height: 40).line(39).contains("go to: give"))
    #expect(d.snapshot?.takenAt == frames[4].takenAt)
    // Faster and slower, shown on the status line.
    d.handle(.char("+"))
    d.handle(.char("+"))
    let r = d.source as! ReplaySource
    #expect(r.speed == 4)
    #expect(d.render(width: 120, height: 40).line(1).contains("x4"))
    for _ in 0..<10 { d.handle(.char("-")) }
    #expect(r.speed == 0.25)
    for _ in 0..<10 { d.handle(.char("+")) }
    #expect(r.speed == 64)
}

@Test func replayKeysOnALiveSourceSaySo() {
    let d = demoDashboard()
    d.handle(.char("["))
    #expect(d.render(width: 120, height: 40).line(39).contains("move through a recording"))
}

@Test func dayNumbersAreGregorian() {
    #expect(Dashboard.dayNumber(1970, 1, 1) == 0)
    #expect(Dashboard.dayNumber(2000, 3, 1) == 11_017)
    #expect(Dashboard.dayNumber(2026, 1, 1) == 20_454)
}

@Test func historyShowsActiveConnRatesAndTheLastWeightChange() throws {
    let path = tempPath("history-\(UUID().uuidString).rec")
    defer { try? FileManager.default.removeItem(atPath: path) }
    let demo = DemoDirector(seed: 5)
    let w = try Recording.Writer(path: path, source: "demo seed 5", interval: 1)
    var frames: [Snapshot] = []
    for k in 0..<8 {
        var s = demo.snapshot(at: DemoDirector.warmTime + Double(k))
        // The operator sets 192.168.1.2:80's weight to 7 at the fifth poll.
        if k >= 4 { s.services[0].realServers[0].weight = 7 }
        frames.append(s)
        try w.append(s)
    }
    try w.close()
    let d = Dashboard(source: try ReplaySource(path: path, start: -1, paused: true), worker: AnalysisWorker(), glyphs: .unicode)
    d.pump()
    let svc = frames[0].services[0], rs = svc.realServers[0]
    let track = try #require(d.history.track(service: svc.id, realServer: rs.id))
    #expect(track.samples.count == 8)
    #expect(track.samples.map(\.activeConns) == frames.map { $0.services[0].realServers[0].activeConns })
    #expect(track.lastWeightChange == RealServerHistory.WeightChange(time: frames[4].takenAt, from: rs.weight, to: 7))
    d.handle(.down)  // the first real server
    d.handle(.char("H"))
    let text = d.render(width: 120, height: 40).text
    #expect(text.contains("\(rs.id) of \(svc.id)  last 7.0s, 8 polls"))
    #expect(text.contains("ActiveConn"))
    #expect(text.contains("changed \(rs.weight) to 7 at " + Format.localTime(frames[4].takenAt)))
    #expect(text.contains("now \(frames[7].services[0].realServers[0].activeConns)"))
    // A step back re-reads the history from the first frame: the change is in the future.
    typeSeek(d, "#3")
    let back = try #require(d.history.track(service: svc.id, realServer: rs.id))
    #expect(back.samples.count == 3)
    #expect(back.lastWeightChange == nil)
    #expect(d.render(width: 120, height: 40).text.contains("unchanged since first seen"))
}

@Test func historyRingKeepsTheLastSamples() {
    var h = RealServerHistory(capacity: 3)
    let demo = DemoDirector()
    for k in 0..<5 { h.record(demo.snapshot(at: DemoDirector.warmTime + Double(k))) }
    let s = demo.snapshot(at: DemoDirector.warmTime + 4)
    let t = h.track(service: s.services[0].id, realServer: s.services[0].realServers[0].id)!
    #expect(t.samples.count == 3)
    #expect(t.samples.last?.time == s.takenAt)
    #expect(zip(t.samples, t.samples.dropFirst()).allSatisfy { $0.time < $1.time })
    #expect(RealServerHistory.sparkline([0, 1, 2, nil, 7], glyphs: .unicode) == "▁▂▃ █")
}
