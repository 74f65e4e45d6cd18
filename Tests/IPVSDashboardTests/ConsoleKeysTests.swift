import IPVSDemo
import IPVSFeed
import IPVSModel
import Testing
@testable import IPVSDashboard

// Issue 22, section 4: filters that work on every screen and refuse unknown keys; Esc back
// to the same place; findings being confirmed listed.

func applyFilter(_ d: Dashboard, _ text: String) {
    d.handle(.char("/"))
    d.handle(.clearLine)
    for c in text { d.handle(.char(c)) }
    d.handle(.enter)
}

@Test func servicesFilterKnowsSvcRsAndProto() {
    let d = demoDashboard()
    applyFilter(d, "svc:tcp:10.0.0.100:80")
    var text = d.render(width: 120, height: 40).text
    #expect(text.contains("TCP 10.0.0.100:80 "))
    #expect(!text.contains("UDP 10.0.0.100:53"))
    #expect(text.contains("(1 shown)"))
    applyFilter(d, "rs:192.168.1.6")
    text = d.render(width: 120, height: 40).text
    #expect(text.contains("TCP 10.0.0.100:443"))
    #expect(text.contains("192.168.1.6:443"))
    // Only the matching real servers of the service are listed.
    #expect(!text.contains("192.168.1.2:443"))
    #expect(!text.contains("TCP 10.0.0.100:80 "))
    applyFilter(d, "proto:udp")
    text = d.render(width: 120, height: 40).text
    #expect(text.contains("UDP 10.0.0.100:53"))
    #expect(!text.contains("TCP 10.0.0.100:80"))
}

@Test func unknownFilterKeysAreRefused() {
    let d = demoDashboard()
    applyFilter(d, "svc:tcp:10.0.0.100:80")
    applyFilter(d, "foo:bar")
    let bar = d.render(width: 120, height: 40).line(39)
    #expect(bar.contains("unknown filter key foo:"), "\(bar)")
    // The filter stays as it was; / offers the refused text again to correct.
    #expect(d.screen(.services).filter == "svc:tcp:10.0.0.100:80")
    d.handle(.char("/"))
    #expect(d.render(width: 120, height: 40).line(39).contains("foo:bar"))
    d.handle(.escape)
    // A known key that does not apply here is said so, not silently ignored.
    applyFilter(d, "state:est")
    #expect(d.render(width: 120, height: 40).line(39).contains("state: does not apply on Services"))
    // A service written as ipvstop writes it and an IPv6 group are text, not keys.
    #expect(FilterTerms("tcp:10.0.0.1:80").unknownKeys.isEmpty)
    #expect(FilterTerms("dead:beef::1").unknownKeys.isEmpty)
    #expect(FilterTerms("foo:bar").unknownKeys == ["foo:"])
    // On every screen with a filter, the documented keys work.
    for (key, text) in [("3", "rs:192.168.1.3"), ("4", "svc:tcp:10.0.0.100:80 rs:192.168.1.3 state:est proto:tcp"), ("2", "svc:10.0.0.100:443"),
                        ("5", "rs:192.168.1.6")] {
        d.handle(.char(Character(key)))
        applyFilter(d, text)
        #expect(d.screen(d.current).filter == text, "\(d.current.title)")
        let shown = d.render(width: 120, height: 40).text
        #expect(!shown.contains("matches the filter"), "\(d.current.title): \(text) matched nothing")
    }
}

@Test func escFromAFindingsDrillDownReturnsToTheSamePlace() throws {
    let d = demoDashboard()
    d.handle(.char("5"))
    _ = d.render(width: 120, height: 40)
    let screen = d.screen(.findings) as! FindingsScreen
    let a = try #require(d.worker.latest)
    let list = screen.list(a)
    #expect(list.count >= 4)
    for i in 0..<min(list.count, 6) {
        d.handle(.home)
        for _ in 0..<i { d.handle(.down) }
        _ = d.render(width: 120, height: 40)
        let before = screen.cursor
        d.handle(.enter)
        _ = d.render(width: 120, height: 40)
        #expect(d.current != .findings || list[i].kind == .tablePressure)
        d.handle(.escape)
        _ = d.render(width: 120, height: 40)
        #expect(d.current == .findings)
        #expect(screen.cursor == before, "finding \(i): \(screen.cursor) after Esc, was \(before)")
    }
}

@Test func findingsBeingConfirmedAreListedMarked() throws {
    let d = demoDashboard()
    d.handle(.char("5"))
    let a = try #require(d.worker.latest)
    let text = d.render(width: 120, height: 40).text
    if a.pending.isEmpty {
        #expect(!text.contains("being confirmed"))
    } else {
        #expect(text.contains("\(a.pending.count) being confirmed"))
        for p in a.pending {
            #expect(text.contains(p.severity.description.uppercased() + "?"), "\(p.key)")
        }
        #expect((d.screen(.findings) as! FindingsScreen).list(a).count == (a.findings?.count ?? 0) + a.pending.count)
    }
}

@Test func findingsCursorFollowsItsFindingWhenTheListChanges() throws {
    let d = demoDashboard()
    d.handle(.char("5"))
    _ = d.render(width: 120, height: 40)
    let screen = d.screen(.findings) as! FindingsScreen
    let list = screen.list(try #require(d.worker.latest))
    // As if the list had changed under the cursor while a drill-down was open.
    screen.selectedKey = list[3].key
    screen.cursor.selected = 0
    _ = d.render(width: 120, height: 40)
    #expect(screen.cursor.selected == 3)
}

@Test func servicesShowCumulativeCountersAndThresholdsWithC() throws {
    let d = demoDashboard()
    let s = try #require(d.snapshot)
    d.exact = true
    d.handle(.char("c"))
    let text = d.render(width: 200, height: 60).text
    #expect(text.contains("InPkts"))
    #expect(text.contains("-x/-y"))
    #expect(text.contains("ipvsadm --stats"))
    for svc in s.services {
        if let st = svc.stats { #expect(text.contains(String(st.inBytes)), "\(svc.id)") }
        for rs in svc.realServers {
            if let st = rs.stats { #expect(text.contains(String(st.conns)), "\(rs.id)") }
        }
    }
    if let rs = s.services.flatMap(\.realServers).first(where: { ($0.upperThreshold ?? 0) > 0 }) {
        #expect(text.contains("\(rs.upperThreshold!)/\(rs.lowerThreshold ?? 0)"))
    }
    d.handle(.char("c"))
    #expect(d.render(width: 200, height: 60).text.contains("Share"))
}
