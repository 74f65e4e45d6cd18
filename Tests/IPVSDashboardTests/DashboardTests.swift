import Foundation
import IPVSDemo
import IPVSFeed
import IPVSModel
import Testing
@testable import IPVSDashboard

// MARK: - Numbers

@Test func countsScaleLikeIpvsadm() {
    #expect(Format.count(0, exact: false) == "0")
    #expect(Format.count(99_999, exact: false) == "99999")
    #expect(Format.count(100_000, exact: false) == "100K")
    #expect(Format.count(9_999_999, exact: false) == "9999K")
    #expect(Format.count(12_345_678, exact: false) == "12M")
    #expect(Format.count(4_655_000_000, exact: false) == "4655M")
    #expect(Format.count(66_000_000_000, exact: false) == "66G")
    #expect(Format.count(UInt64.max, exact: false).count <= 5)
    #expect(Format.count(12_345_678, exact: true) == "12345678")
    #expect(Format.rate(177_321.6, exact: false) == "177K")
    #expect(Format.rate(177_321.6, exact: true) == "177322")
}

@Test func durationsAndCosts() {
    #expect(Format.clock(47) == "47")
    #expect(Format.clock(287) == "4:47")
    #expect(Format.clock(3723) == "1:02:03")
    #expect(Format.clock(-5) == "0")
    #expect(Format.age(0.42) == "0.4s")
    #expect(Format.age(190) == "3m10s")
    #expect(Format.cost(0.00021) == "0.21ms")
    #expect(Format.cost(1.3) == "1.3s")
    #expect(Format.bytes(676_864, exact: false) == "661KiB")
}

// MARK: - Grid and table

@Test func gridClipsAndReadsBack() {
    var g = Grid(width: 10, height: 2)
    g.put("hello world", x: 2, y: 0)
    g.put("ab", x: 0, y: 1, limit: 1)
    #expect(g.line(0) == "  hello wo")
    #expect(g.line(1) == "a")
    #expect("abcdef".clipped(4, .ascii) == "abc~")
    #expect("abcdef".clipped(4, .unicode) == "abc…")
}

@Test func tableDropsTheLeastImportantColumnsFirst() {
    let t = Table([
        Column("Name", width: 10, flex: true),
        Column("A", .right, width: 5),
        Column("B", .right, width: 5, priority: 10),
        Column("C", .right, width: 5, priority: 50),
    ])
    let rows = [TableRow([.text("x"), .text("1"), .text("2"), .text("3")])]
    #expect(t.layout(width: 40, measuring: rows).map { $0 != nil } == [true, true, true, true])
    // 10 + 5 + 5 + 5 + 3 gaps = 28: at 25 the lowest priority (B) goes.
    #expect(t.layout(width: 25, measuring: rows).map { $0 != nil } == [true, true, false, true])
    #expect(t.layout(width: 17, measuring: rows).map { $0 != nil } == [true, true, false, false])
    // The flexible column takes what is left.
    #expect(t.layout(width: 40, measuring: rows)[0] == 40 - 15 - 3)
}

@Test func meterShowsShareAndWeightMark() {
    var g = Grid(width: 12, height: 1)
    let t = Table([Column("m", width: 12)])
    t.drawMeter(Meter(fraction: 0.5, mark: 0.25, label: "50%"), into: &g, x: 0, y: 0, width: 12, glyphs: .ascii)
    // 8 cells of bar: 4 filled, the weight mark at cell 2.
    #expect(g.line(0) == "##|#.... 50%")
}

// MARK: - The simulated director

@Test func demoIsDeterministic() {
    let a = DemoDirector(seed: 7).snapshot(at: 4000)
    let b = DemoDirector(seed: 7).snapshot(at: 4000)
    let c = DemoDirector(seed: 8).snapshot(at: 4000)
    #expect(a.connections!.entries == b.connections!.entries)
    #expect(a.services == b.services)
    #expect(a.connections!.entries != c.connections!.entries)
}

@Test func demoCountsMatchItsTable() {
    let s = DemoDirector().snapshot(at: DemoDirector.warmTime)
    let entries = s.connections!.entries
    for svc in s.services {
        for rs in svc.realServers {
            let mine = entries.filter { e in
                guard !e.isTemplate, e.destination == rs.address, rs.port == 0 || e.destinationPort == rs.port else { return false }
                if case .address(let p, let a, let port) = svc.key { return e.proto == p && e.virtual == a && e.virtualPort == port }
                return true
            }
            #expect(Int(rs.activeConns) == mine.filter { $0.state == .established }.count, "\(svc.id) \(rs.id)")
            #expect(Int(rs.inactiveConns) == mine.filter { $0.state != .established }.count, "\(svc.id) \(rs.id)")
        }
    }
}

@Test func demoShowsEachProblem() throws {
    let s = DemoDirector().snapshot(at: DemoDirector.warmTime)
    let entries = s.connections!.entries
    let rs3 = IPAddress("192.168.1.3")!
    // Rogue clients: hundreds of connections on one real server.
    let rogue = entries.filter { $0.client == IPAddress("198.51.100.66")! && !$0.isTemplate }
    #expect(rogue.count > 300)
    #expect(rogue.allSatisfy { $0.destination == rs3 })
    // A quiescent server still fed through its templates.
    let tls = try #require(s.services.first { $0.id == "tcp:10.0.0.100:443" })
    let quiet = try #require(tls.realServers.first { $0.weight == 0 })
    #expect(quiet.activeConns + quiet.inactiveConns > 0)
    #expect((quiet.persistentConns ?? 0) > 0)
    let newToQuiet = s.connectionChanges!.newEntryIndices.filter { entries[$0].destination == quiet.address && !entries[$0].isTemplate }
    _ = newToQuiet
    // A deleted server whose connections remain.
    let gone = IPAddress("192.168.1.8")!
    #expect(entries.contains { $0.destination == gone })
    #expect(!s.services.contains { $0.realServers.contains { $0.address == gone } })
    // The proxy farm: one persistence group on one server.
    let farm = entries.filter { $0.isTemplate && $0.client == IPAddress("172.16.5.0")! }
    #expect(farm.count == 1)
    let farmConns = entries.filter { !$0.isTemplate && $0.client.masked(ipv4Mask: 0xFFFF_FF00) == IPAddress("172.16.5.0")! }
    #expect(Set(farmConns.map(\.destination)).count == 1)
    #expect(farmConns.count > 100)
}

@Test func demoQuiescentServerGetsNewConnections() {
    let d = DemoDirector()
    var fed = 0
    for k in 0..<30 {
        let s = d.snapshot(at: DemoDirector.warmTime + Double(k))
        let e = s.connections!.entries
        fed += s.connectionChanges!.newEntryIndices.filter { !e[$0].isTemplate && e[$0].destination == IPAddress("192.168.1.6")! }.count
    }
    #expect(fed > 0)
}

// MARK: - Recording

func tempPath(_ name: String) -> String {
    NSTemporaryDirectory() + "/ipvstop-test-\(getpid())-\(name)"
}

@Test func recordingRoundTrips() throws {
    let path = tempPath("rt.rec")
    defer { try? FileManager.default.removeItem(atPath: path) }
    let d = DemoDirector(seed: 3)
    let w = try Recording.Writer(path: path, source: "demo", interval: 1)
    var written: [Snapshot] = []
    for k in 0..<4 {
        let s = d.snapshot(at: 3_600 + Double(k))
        written.append(s)
        #expect(try w.append(s))
    }
    // A snapshot with the same table is written without it.
    #expect(try w.append(written[3]))
    try w.close()
    #expect(w.tables == 4)
    let r = try Recording.read(path: path)
    #expect(r.frames.count == 5)
    #expect(r.header?.source == "demo")
    for (a, b) in zip(written + [written[3]], r.frames) {
        #expect(a.takenAt == b.takenAt)
        #expect(a.services == b.services)
        #expect(a.connections!.entries == b.connections!.entries)
        #expect(a.connections!.readAt == b.connections!.readAt)
        #expect(a.connectionChanges!.newEntryIndices == b.connectionChanges!.newEntryIndices)
        #expect(a.sysctls == b.sysctls)
        #expect(a.global == b.global)
        #expect(a.syncDaemons == b.syncDaemons)
        #expect(a.source == b.source)
    }
}

@Test func recordingBoundsAndDamage() throws {
    let path = tempPath("cap.rec")
    defer { try? FileManager.default.removeItem(atPath: path) }
    let d = DemoDirector()
    let w = try Recording.Writer(path: path, source: "demo", interval: 1, maxEntries: 100, maxBytes: 1 << 20)
    for k in 0..<3 { try w.append(d.snapshot(at: 3_600 + Double(k))) }
    try w.close()
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let r = try Recording.read(data: bytes)
    #expect(r.frames.allSatisfy { $0.connections!.entries.count == 100 })
    #expect(r.truncatedEntries.allSatisfy { $0 > 1_000 })
    // Cut short (Ctrl-C, full disk): the whole records before the cut still read.
    bytes.removeLast(10)
    let cut = try Recording.read(data: bytes)
    #expect(cut.frames.count == 2)
    #expect(cut.trailingBytes > 0)
    // Not a recording; a newer format.
    #expect(throws: Recording.ReadError.self) { try Recording.read(data: Array("hello\n".utf8)) }
    #expect(throws: Recording.ReadError.self) { try Recording.read(data: Array("ipvstop-recording 9\n".utf8)) }
}

// MARK: - The dashboard without a terminal

func demoDashboard() -> Dashboard {
    let d = Dashboard(source: DemoSource(director: DemoDirector(), paused: true), worker: AnalysisWorker(), glyphs: .unicode)
    d.pump()
    return d
}

func keys(_ d: Dashboard, _ text: String) {
    for c in text { d.handle(.char(c)) }
}

@Test func servicesScreenAt80x24() {
    let d = demoDashboard()
    let g = d.render(width: 80, height: 24)
    let text = g.text
    #expect(g.line(0).contains("1 Svcs"))
    #expect(g.line(1).hasPrefix(" DEMO · PAUSED"))
    #expect(text.contains("TCP 10.0.0.100:80"))
    #expect(text.contains("└─192.168.1.5:80"))
    #expect(text.contains("⚑rogue"))
    #expect(text.contains("⚑quiescent fed"))
    #expect(text.contains("⚑dead"))
    #expect(g.line(23).contains("qQuit") || g.line(23).contains("hHelp"))
    // Every line fits.
    #expect(text.split(separator: "\n").allSatisfy { $0.unicodeScalars.count <= 80 })
}

@Test func tooSmallTerminalSaysSo() {
    let d = demoDashboard()
    let g = d.render(width: 60, height: 20)
    #expect(g.text.contains("needs at least 80x24"))
    #expect(g.text.contains("60x20"))
    d.handle(.char("q"))
    #expect(d.quit)
}

@Test func numberKeysAndTabSwitchScreens() {
    let d = demoDashboard()
    for id in ScreenID.allCases {
        keys(d, "\(id.rawValue)")
        #expect(d.current == id)
        _ = d.render(width: 120, height: 40)
    }
    d.handle(.tab)
    #expect(d.current == .services)
    d.handle(.backTab)
    #expect(d.current == .help)
}

@Test func templatesSortAndFilter() throws {
    let d = demoDashboard()
    keys(d, "2")
    var text = d.render(width: 120, height: 40).text
    #expect(text.contains("sort: time left"))
    let screen = d.screen(.templates) as! TemplatesScreen
    let table = d.snapshot!.connections!
    let lefts = screen.items(d.context).map { table.entries[$0.entry].expires }
    #expect(lefts == lefts.sorted())
    keys(d, "s")
    text = d.render(width: 120, height: 40).text
    #expect(text.contains("sort: connections"))
    let conns = screen.items(d.context).map(\.controlled)
    #expect(conns == conns.sorted(by: >))
    // Filter by service.
    keys(d, "/")
    keys(d, "svc:8080")
    d.handle(.enter)
    let items = screen.items(d.context)
    #expect(!items.isEmpty)
    #expect(items.allSatisfy { $0.service?.description == "tcp:10.0.0.101:8080" })
    text = d.render(width: 120, height: 40).text
    #expect(text.contains("filter: svc:8080"))
    // Client prefix.
    screen.filter = "client:198.51."
    #expect(screen.items(d.context).allSatisfy { table.entries[$0.entry].client.description.hasPrefix("198.51.") })
    d.handle(.escape)
    #expect(screen.filter == "")
}

@Test func templatesTickBetweenPolls() throws {
    let source = DemoSource(director: DemoDirector(), paused: false)
    let d = Dashboard(source: source)
    d.pump()
    let table = try #require(d.snapshot?.connections)
    var ctx = d.context
    ctx.now = table.readAt.addingTimeInterval(5.5)
    let e = try #require(table.entries.first { $0.isTemplate && $0.expires > 10 })
    #expect(ctx.left(e) == Int(e.expires) - 5)
}

@Test func drillDownAndBack() throws {
    let d = demoDashboard()
    _ = d.render(width: 120, height: 40)
    // Down to the first real server of the first service, Enter: its connections.
    d.handle(.down)
    d.handle(.enter)
    #expect(d.current == .connections)
    let conns = d.screen(.connections) as! ConnectionsScreen
    #expect(conns.filter == "svc:tcp:10.0.0.100:80 rs:192.168.1.2:80")
    let text = d.render(width: 120, height: 40).text
    #expect(text.contains("filter: svc:tcp:10.0.0.100:80 rs:192.168.1.2:80"))
    let table = try #require(d.snapshot?.connections)
    #expect(conns.viewCount == table.entries.filter { $0.destination == IPAddress("192.168.1.2")! && $0.destinationPort == 80 && !$0.isTemplate }.count)
    d.handle(.escape)
    #expect(d.current == .services)
    #expect(conns.filter == "")
}

@Test func connectionsFilterAndSort() throws {
    let d = demoDashboard()
    keys(d, "4")
    let conns = d.screen(.connections) as! ConnectionsScreen
    let table = try #require(d.snapshot?.connections)
    _ = d.render(width: 80, height: 24)
    #expect(conns.viewCount == table.entries.count)
    conns.filter = "client:198.51.100.66 state:est"
    _ = d.render(width: 80, height: 24)
    #expect(conns.viewCount == table.entries.filter { $0.client == IPAddress("198.51.100.66")! && $0.state == .established }.count)
    conns.filter = "proto:udp"
    _ = d.render(width: 80, height: 24)
    #expect(conns.viewCount == table.entries.filter { $0.proto == .udp }.count)
    conns.filter = "client:172.16.5.0/24"
    _ = d.render(width: 80, height: 24)
    #expect(conns.viewCount == table.entries.filter { $0.client.masked(ipv4Mask: 0xFFFF_FF00) == IPAddress("172.16.5.0")! }.count)
    conns.filter = ""
    keys(d, "ss")  // time left
    _ = d.render(width: 80, height: 24)
    let order = (0..<conns.viewCount).map { table.entries[conns.entryIndex($0)].expires }
    #expect(order == order.sorted())
}

@Test func pauseDelayAndExact() {
    let source = DemoSource(director: DemoDirector(), paused: false)
    let d = Dashboard(source: source)
    d.pump()
    d.handle(.char("p"))
    #expect(source.isPaused)
    d.handle(.char(" "))
    #expect(!source.isPaused)
    d.handle(.char("d"))
    d.handle(.backspace)
    keys(d, "2.5")
    d.handle(.enter)
    #expect(source.interval == 2.5)
    d.handle(.char("x"))
    #expect(d.exact)
    let text = d.render(width: 120, height: 40).text
    #expect(text.contains("every 2.5s"))
}

@Test func asciiFallback() {
    let d = Dashboard(source: DemoSource(director: DemoDirector(), paused: true), glyphs: .ascii)
    d.pump()
    let text = d.render(width: 120, height: 40).text
    #expect(text.contains("|-192.168.1.2:80"))
    #expect(text.contains("`-192.168.1.5:80"))
    #expect(!text.unicodeScalars.contains { $0.value > 127 })
}

@Test func clientsRankedByConnections() {
    let d = demoDashboard()
    keys(d, "3")
    let text = d.render(width: 120, height: 40).text
    let lines = text.split(separator: "\n")
    // The rogue client first, then the proxy farm's group.
    #expect(lines[5].contains("198.51.100.66"))
    #expect(lines[6].contains("172.16.5.0/24"))
}

@Test func findingsFromTheAnalysisLayer() throws {
    let d = demoDashboard()
    keys(d, "5")
    let text = d.render(width: 120, height: 40).text
    for kind in ["rogue_client", "quiescent_fed", "dead_destination"] {
        #expect(text.contains(kind), "\(kind)")
    }
    #expect(text.contains("advice"))
    // Badges on the Services screen and the Clients screen.
    keys(d, "1")
    let services = d.render(width: 120, height: 40).text
    #expect(services.contains("⚑rogue"))
    #expect(services.contains("⚑quiescent fed"))
    #expect(services.contains("⚑dead"))
    keys(d, "3")
    #expect(d.render(width: 120, height: 40).text.contains("⚑rogue_client"))
    // Enter on the first finding (a rogue client) goes to that client.
    keys(d, "5")
    _ = d.render(width: 120, height: 40)
    d.handle(.enter)
    #expect(d.current == .clients)
    #expect(d.screen(.clients).filter?.hasPrefix("client:198.51.100.") == true)
    d.handle(.escape)
    #expect(d.current == .findings)
    // A quiescent_fed finding goes to its real server on the Services screen.
    let f = d.screen(.findings) as! FindingsScreen
    let list = f.list(try #require(d.context.currentAnalysis))
    let i = try #require(list.firstIndex { $0.kind == .quiescentFed })
    f.cursor.selected = i
    d.handle(.enter)
    #expect(d.current == .services)
    let s = d.screen(.services) as! ServicesScreen
    let rows = s.rows(d.context)
    _ = d.render(width: 120, height: 40)
    if case .realServer(let si, let ri) = rows[s.cursor.selected].0 {
        #expect(d.snapshot!.services[si].realServers[ri].id == "192.168.1.6:443")
    } else {
        Issue.record("cursor not on a real server")
    }
}
