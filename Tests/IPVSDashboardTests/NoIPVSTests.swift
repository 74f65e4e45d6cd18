import IPVSDemo
import IPVSFeed
import IPVSModel
import Testing
@testable import IPVSDashboard

// Issue 22, section 3: without IPVS, a terminal opens on a screen that says so, how to load
// it, and offers the demo; the demo says DEMO on every screen.

@Test func noIPVSScreenSaysHowToLoadItAndOffersTheDemo() {
    let s = NoIPVSScreen(reason: "IPVS is not loaded on this machine: /proc/net/ip_vs does not exist.", procRoot: "/proc")
    for (w, h) in [(80, 24), (120, 40)] {
        let text = s.render(width: w, height: h).text
        #expect(text.contains("modprobe ip_vs"))
        #expect(text.contains("/proc/net/ip_vs does not exist."))
        #expect(text.contains("open the built-in demo director"))
        #expect(text.split(separator: "\n").allSatisfy { $0.unicodeScalars.count <= w })
    }
    #expect(s.handle(.char("d")) == .demo)
    #expect(s.handle(.enter) == .demo)
    #expect(s.handle(.char("r")) == .retry)
    #expect(s.handle(.char("q")) == .quit)
    #expect(s.handle(.char("x")) == nil)
    // A captured tree: no modprobe advice for this machine, the tree named.
    let tree = NoIPVSScreen(reason: "no net/ip_vs", procRoot: "/tmp/tree").render(width: 80, height: 24).text
    #expect(tree.contains("in /tmp/tree"))
    #expect(!tree.contains("    modprobe ip_vs"))
}

@Test func theDemoSaysDEMOOnEveryScreen() {
    let d = demoDashboard()
    #expect(d.isDemo)
    for id in ScreenID.allCases {
        d.handle(.char(Character(String(id.rawValue))))
        for (w, h) in [(80, 24), (200, 60)] {
            #expect(d.render(width: w, height: h).line(1).hasPrefix(" DEMO"), "\(id.title) \(w)x\(h)")
        }
    }
    #expect(d.render(width: 60, height: 20).text.contains("DEMO"))
    // A director read from a tree is not marked.
    let live = Dashboard(source: FixedSource(DemoDirector().snapshot(at: DemoDirector.warmTime)), worker: AnalysisWorker(), glyphs: .unicode)
    live.pump()
    #expect(!live.isDemo)
    #expect(!live.render(width: 80, height: 24).text.contains("DEMO"))
}
