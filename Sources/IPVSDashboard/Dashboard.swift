// The ncurses dashboard (issue: the dashboard): the state shared by the screens, the keys
// every screen answers, and the frame around them (tabs, status, summary, key bar).
import FoundationEssentials
import IPVSAnalysis
import IPVSFeed
import IPVSModel

/// The dashboard without a terminal: snapshots in, keys in, a grid out. The ncurses
/// backend (`Terminal`) only shows the grid and reads keys; tests drive this directly.
public final class Dashboard {
    public let source: SnapshotSource
    public let worker: AnalysisWorker
    public private(set) var snapshot: Snapshot?
    public private(set) var current: ScreenID = .services
    public var exact = false
    public var glyphs: Glyphs
    public private(set) var quit = false
    /// The smallest terminal the dashboard draws in.
    public static let minimumWidth = 80, minimumHeight = 24

    let screenList: [Screen]
    var prompt: Prompt?
    var message: Span?
    /// Drill-downs to come back from with Esc.
    var back: [(from: ScreenID, to: ScreenID, filter: String?)] = []
    var analysisGeneration = -1
    /// The screen before the current one (Esc on Help goes back to it).
    var previous: ScreenID = .services

    struct Prompt {
        enum Kind { case filter(ScreenID), delay }
        var kind: Kind
        var text: String
        var help: String
    }

    public init(source: SnapshotSource, worker: AnalysisWorker = AnalysisWorker(), glyphs: Glyphs = .unicode) {
        self.source = source
        self.worker = worker
        self.glyphs = glyphs
        screenList = [
            ServicesScreen(), TemplatesScreen(), ClientsScreen(), ConnectionsScreen(), FindingsScreen(), KernelScreen(), HelpScreen(),
        ]
    }

    public func screen(_ id: ScreenID) -> Screen { screenList[id.rawValue - 1] }

    /// Takes the source's new snapshots (each goes to the analysis, in order); true when
    /// the screen has something new to show.
    @discardableResult
    public func pump() -> Bool {
        var changed = false
        for s in source.take() {
            worker.submit(s)
            snapshot = s
            changed = true
        }
        worker.tick()
        let gen = worker.generation
        if gen != analysisGeneration {
            analysisGeneration = gen
            changed = true
        }
        return changed
    }

    public var context: ViewContext {
        ViewContext(snapshot: snapshot, analysis: worker.latest, now: source.now(), exact: exact, glyphs: glyphs, analysing: worker.isRunning)
    }

    // MARK: - Keys

    public func handle(_ key: Key) {
        if prompt != nil { return handlePrompt(key) }
        message = nil
        let ctx = context
        switch key {
        case .char("q"), .function(10):
            quit = true
            return
        case .char(let c) where c.isNumber && ("1"..."7").contains(c):
            switchTo(ScreenID(rawValue: Int(String(c))!)!)
            return
        case .tab:
            switchTo(ScreenID(rawValue: current.rawValue % ScreenID.allCases.count + 1)!)
            return
        case .backTab:
            switchTo(ScreenID(rawValue: (current.rawValue + ScreenID.allCases.count - 2) % ScreenID.allCases.count + 1)!)
            return
        case .char("h"), .char("?"), .function(1):
            switchTo(.help)
            return
        case .char("p"), .char(" "):
            source.setPaused(!source.isPaused)
            message = Span(source.isPaused ? "paused: the screen holds this snapshot (p or space resumes)" : "resumed", .info)
            return
        case .char("d"):
            prompt = Prompt(kind: .delay, text: Self.seconds(source.interval), help: "seconds between polls, Enter sets, Esc cancels")
            return
        case .char("x"):
            exact.toggle()
            message = Span(exact ? "exact numbers" : "numbers scaled with K, M, G (x for exact)", .info)
            return
        case .char("/"), .function(3), .function(4):
            let s = screen(current)
            guard let f = s.filter else {
                message = Span("no filter on this screen", .warn)
                return
            }
            prompt = Prompt(kind: .filter(current), text: f, help: s.filterHelp)
            return
        case .escape:
            if let b = back.popLast() {
                screen(b.to).filter = b.filter
                current = b.from
                return
            }
            let s = screen(current)
            if let f = s.filter, !f.isEmpty {
                s.filter = ""
                return
            }
            if current == .help { current = previous }
            return
        default:
            break
        }
        switch screen(current).handle(key, ctx) {
        case .handled, .ignored:
            break
        case .message(let m):
            message = Span(m, .info)
        case .jump(let j):
            jump(j)
        }
    }

    func switchTo(_ id: ScreenID) {
        if id != current {
            back.removeAll()
            previous = current
        }
        current = id
    }

    public func jump(_ j: Jump) {
        switch j {
        case .filtered(let id, let f):
            back.append((current, id, screen(id).filter))
            screen(id).filter = f
            current = id
        case .service(let svc, let rs):
            let s = screen(.services) as! ServicesScreen
            back.append((current, .services, s.filter))
            s.filter = ""
            s.focus = (svc, rs)
            current = .services
        }
    }

    func handlePrompt(_ key: Key) {
        guard var p = prompt else { return }
        switch key {
        case .escape:
            prompt = nil
            return
        case .enter:
            prompt = nil
            switch p.kind {
            case .filter(let id):
                screen(id).filter = p.text.trimmingWhitespace()
            case .delay:
                guard let v = Double(p.text.trimmingWhitespace()), v >= 0.1, v <= 3600 else {
                    message = Span("delay: give seconds between 0.1 and 3600", .warn)
                    return
                }
                if let why = source.setInterval(v) {
                    message = Span(why, .warn)
                } else {
                    message = Span("polling every \(Self.seconds(v))s", .info)
                }
            }
            return
        case .backspace, .delete:
            if !p.text.isEmpty { p.text.removeLast() }
        case .clearLine:
            p.text = ""
        case .char(let c) where !c.isNewline:
            if p.text.count < 200 { p.text.append(c) }
        default:
            break
        }
        prompt = p
    }

    static func seconds(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : Format.fixed(v, 1)
    }

    // MARK: - Drawing

    public func render(width: Int, height: Int) -> Grid {
        var g = Grid(width: width, height: height)
        if width < Self.minimumWidth || height < Self.minimumHeight {
            drawTooSmall(&g)
            return g
        }
        let ctx = context
        drawTabs(&g, ctx)
        drawStatus(&g, ctx)
        drawSummary(&g, ctx)
        let warnings = degradations(ctx)
        let bottom = warnings.isEmpty ? 1 : 2
        let body = Rect(x: 0, y: 3, width: width, height: height - 3 - bottom)
        screen(current).draw(ctx, into: &g, rect: body)
        if !warnings.isEmpty {
            g.fill(Rect(x: 0, y: height - 2, width: width, height: 1))
            g.put(" " + warnings.joined(separator: " \(glyphs.dot) ").clipped(width - 1, glyphs), x: 0, y: height - 2, role: .warn)
        }
        drawKeyBar(&g, y: height - 1)
        return g
    }

    func drawTooSmall(_ g: inout Grid) {
        let lines = [
            "ipvstop needs at least \(Self.minimumWidth)x\(Self.minimumHeight)",
            "this terminal is \(g.width)x\(g.height)",
            "enlarge it, or q to quit",
        ]
        let top = max(0, (g.height - lines.count) / 2)
        for (i, l) in lines.enumerated() {
            let t = l.clipped(g.width, glyphs)
            g.put(t, x: max(0, (g.width - t.columns) / 2), y: top + i, role: i == 0 ? .warn : .normal, bold: i == 0)
        }
    }

    func drawTabs(_ g: inout Grid, _ ctx: ViewContext) {
        g.fill(Rect(x: 0, y: 0, width: g.width, height: 1), role: .bar)
        var x = g.put(" ipvstop ", x: 0, y: 0, role: .barKey, bold: true)
        let full = ScreenID.allCases.reduce(0) { $0 + $1.title.count + 4 } + x
        let short = full > g.width
        for id in ScreenID.allCases {
            let label = " \(id.rawValue) \(short ? id.shortTitle : id.title) "
            x += g.put(label, x: x, y: 0, role: id == current ? .tabActive : .tab, bold: id == current)
            x += 1
        }
        let right = source.label
        if x + right.columns + 2 <= g.width {
            g.put(right, x: g.width - right.columns - 1, y: 0, role: .bar)
        }
    }

    func drawStatus(_ g: inout Grid, _ ctx: ViewContext) {
        let y = 1
        g.fill(Rect(x: 0, y: y, width: g.width, height: 1))
        let clock = ctx.snapshot.map { Format.localTime($0.takenAt) } ?? ""
        // The long form when it fits beside the clock, else the short one.
        for long in [true, false] {
            let spans = statusSpans(ctx, long: long)
            if !long || spans.width + clock.count + 4 <= g.width {
                let w = g.put(spans, x: 1, y: y, limit: g.width - 2)
                if 1 + w + clock.count + 2 <= g.width {
                    g.put(clock, x: g.width - clock.count - 1, y: y, role: .dim)
                }
                return
            }
        }
    }

    func statusSpans(_ ctx: ViewContext, long: Bool) -> [Span] {
        var spans: [Span] = []
        let dot = Span(" \(glyphs.dot) ", .dim)
        if source.isPaused { spans += [Span("PAUSED", .crit, bold: true), dot] }
        guard let s = ctx.snapshot else {
            spans.append(Span("waiting for the first poll", .dim))
            if let n = source.note { spans += [dot, Span(n, .warn)] }
            return spans
        }
        let age = Format.age(ctx.now.timeIntervalSince(s.takenAt))
        spans.append(Span(long ? "snapshot \(age) old" : "age \(age)"))
        var pollCost = s.source.files.reduce(0) { $0 + $1.cost.seconds }
        if case .used(_, let c) = s.source.netlink { pollCost += c.seconds }
        spans += [dot, Span("poll " + Format.cost(pollCost))]
        if let t = s.connections {
            let tableAge = Format.age(ctx.tableAge ?? 0)
            spans += [dot, Span(long ? "table \(tableAge) old, read " + Format.cost(t.cost.seconds) : "table \(tableAge)/" + Format.cost(t.cost.seconds))]
        } else {
            spans += [dot, Span(long ? "table not read yet" : "no table yet", .warn)]
        }
        spans += [dot, Span((long ? "every " : "") + "\(Self.seconds(source.interval))s", .dim)]
        if let n = source.note { spans += [dot, Span(n, .info)] }
        if ctx.analysing {
            spans += [dot, Span("analysing" + glyphs.ellipsis, .dim)]
        } else if s.connections != nil, !ctx.analysisIsCurrent, let a = ctx.analysis {
            // A big table's analysis is paced by its cost: say how old it is.
            spans += [dot, Span("analysis " + Format.age(ctx.now.timeIntervalSince(a.tableReadAt ?? a.takenAt)) + " old", .dim)]
        }
        return spans
    }

    func drawSummary(_ g: inout Grid, _ ctx: ViewContext) {
        let y = 2
        g.fill(Rect(x: 0, y: y, width: g.width, height: 1))
        guard let s = ctx.snapshot else { return }
        let x = ctx.exact
        // (priority, label, value, role): shown in this order, the least important left out
        // first when the line is full.
        var items: [(Int, String, String, Role)] = []
        let act = s.services.reduce(0) { $0 + $1.activeConns }
        let inact = s.services.reduce(0) { $0 + $1.inactiveConns }
        items.append((10, "Active", Format.count(act, exact: x), .normal))
        items.append((9, "InAct", Format.count(inact, exact: x), .normal))
        if let t = s.connections {
            items.append((7, "Entries", Format.count(t.entries.count, exact: x), .normal))
            items.append((6, "Tmpl", Format.count(t.counts.templates, exact: x), .normal))
        }
        if let r = s.global?.rates {
            items.append((8, "CPS", Format.rate(r.cps, exact: x), .normal))
            items.append((4, "In", Format.rate(r.inPPS, exact: x) + "pps", .normal))
            items.append((2, "", Format.rate(r.inBPS, exact: x) + "B/s", .normal))
            items.append((3, "Out", Format.rate(r.outPPS, exact: x) + "pps", .normal))
            items.append((1, "", Format.rate(r.outBPS, exact: x) + "B/s", .normal))
        }
        if let a = ctx.currentAnalysis, let fs = a.findings {
            let crit = fs.filter { $0.severity == .critical }.count, warn = fs.filter { $0.severity == .warning }.count
            items.append((11, "Findings", "\(fs.count)", crit > 0 ? .crit : (warn > 0 ? .warn : .ok)))
        }
        func spans(_ list: [(Int, String, String, Role)]) -> [Span] {
            var out: [Span] = []
            for (_, label, value, role) in list {
                if !out.isEmpty { out.append(Span(label.isEmpty ? " " : "  ")) }
                if !label.isEmpty { out.append(Span(label + " ", .dim)) }
                out.append(Span(value, role, bold: true))
            }
            return out
        }
        var shown = items
        while spans(shown).width > g.width - 2, let least = shown.map(\.0).min() {
            shown.removeAll { $0.0 == least }
        }
        g.put(spans(shown), x: 1, y: y, limit: g.width - 2)
    }

    /// What this snapshot lacks, in words an operator can act on.
    func degradations(_ ctx: ViewContext) -> [String] {
        guard let s = ctx.snapshot else { return source.note.map { [$0] } ?? [] }
        var out: [String] = []
        switch s.source.netlink {
        case .used: break
        case .unavailable:
            out.append("no netlink: stats, rates and PersistConn unavailable \(glyphs.isUnicode ? "—" : "-") run as root")
        case .off(let why):
            out.append("no netlink (\(why)): stats, rates and PersistConn unavailable")
        }
        let warnings = s.source.warnings.filter { !$0.hasPrefix("no netlink") }
        // Counted, so that one line clipped at the screen's edge still says how many.
        if warnings.count > 1 { out.append("\(warnings.count) warnings (6 Kernel lists them)") }
        for w in warnings {
            out.append(TerminalText.escaped(w, keepLineBreaks: false))
        }
        return out
    }

    func drawKeyBar(_ g: inout Grid, y: Int) {
        g.fill(Rect(x: 0, y: y, width: g.width, height: 1), role: .bar)
        if let p = prompt {
            let label: String
            switch p.kind {
            case .filter(let id): label = "Filter \(id.title.lowercased()): "
            case .delay: label = "Delay: "
            }
            g.fill(Rect(x: 0, y: y, width: g.width, height: 1), role: .prompt)
            var x = g.put(" " + label, x: 0, y: y, role: .prompt, bold: true)
            x += g.put(p.text, x: x, y: y, role: .prompt)
            x += g.put("_", x: x, y: y, role: .prompt, bold: true)
            if !p.help.isEmpty, x + 4 < g.width {
                g.put("  (" + p.help + ")", x: x, y: y, role: .prompt, limit: g.width - x)
            }
            return
        }
        if let m = message {
            g.fill(Rect(x: 0, y: y, width: g.width, height: 1))
            g.put(" " + m.text, x: 0, y: y, role: m.role, limit: g.width)
            return
        }
        let keys: [(String, String)] = [
            ("1-7", "Screen"), ("/", "Filter"), ("s", "Sort"), ("Enter", "Drill"), ("Esc", "Back"),
            ("p", source.isPaused ? "Resume" : "Pause"), ("d", "Delay"), ("x", exact ? "Scaled" : "Exact"), ("h", "Help"), ("q", "Quit"),
        ]
        var x = 0
        for (k, label) in keys {
            let need = k.count + label.count + 2
            if x + need > g.width { break }
            x += g.put(k, x: x, y: y, role: .barKey, bold: true)
            x += g.put(label + " ", x: x, y: y, role: .bar)
            x += 1
        }
    }
}
