import IPVSDashboard
import IPVSDemo
import IPVSModel
import Testing

// Issue 22: the director's host name (and, where it fits, its kernel) in the top bar at
// every size, without losing a tab; at 80 columns it goes before the time on the status line.
@Test(arguments: [(80, 24), (100, 30), (120, 40), (200, 60)])
func hostNameIsShownAtEverySize(_ size: (Int, Int)) {
    let d = demoDashboard()
    let g = d.render(width: size.0, height: size.1)
    let name = DemoDirector.host.hostname!
    let top = g.line(0) + "\n" + g.line(1)
    #expect(top.contains(name), "\(size): \(top)")
    #expect(g.line(0).contains("7 Help"), "\(size): a tab lost: \(g.line(0))")
    if size.0 >= 200 {
        #expect(g.line(0).contains(DemoDirector.host.kernelRelease!))
        #expect(g.line(0).contains("demo seed 1"))
    }
    // Whole or not at all: the name is never cut.
    for line in [g.line(0), g.line(1)] where line.contains(String(name.prefix(6))) {
        #expect(line.contains(name))
    }
}
