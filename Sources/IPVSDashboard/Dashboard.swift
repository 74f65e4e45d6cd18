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
    /// Each real server's last minutes, from the snapshots taken (H on Services).
    public private(set) var history = RealServerHistory()
    public private(set) var current: ScreenID = .services
    public var exact = false
    public var glyphs: Glyphs
    public private(set) var quit = false
    /// The smallest terminal the dashboard draws in.
    public static let minimumWidth = 80, minimumHeight = 24

    let screenList: [Screen]
    var prompt: Prompt?
    /// A filter refused (an unknown key): offered again by the next `/`.
    var rejectedFilter: String?
    var message: Span?
    /// Drill-downs to come back from with Esc.
    var back: [(from: ScreenID, to: ScreenID, filter: String?)] = []
    var analysisGeneration = -1
    /// Whether the last tab bar drawn showed the director's name (else the status line does).
    var hostInTabs = false
    /// The screen before the current one (Esc on Help goes back to it).
    var previous: ScreenID = .services

    struct Prompt {
        enum Kind { case filter(ScreenID), delay, seek }
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
        // A replay went back: its frames come again from the first, to an analysis that
        // starts afresh.
        if let r = source as? ReplayControl, r.takeRewind() {
            worker.reset()
            history.reset()
            changed = true
        }
        for s in source.take() {
            worker.submit(s)
            history.record(s)
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

    /// True when what is shown is the simulated director (live, or a recording of it):
    /// every screen says DEMO.
    public var isDemo: Bool {
        if source is DemoSource { return true }
        if let r = source as? ReplaySource, r.contents.header?.source.hasPrefix("demo seed ") == true { return true }
        return false
    }

    public var context: ViewContext {
        ViewContext(snapshot: snapshot, analysis: worker.latest, now: source.now(), exact: exact, glyphs: glyphs, analysing: worker.isRunning,
                    history: history)
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
        case .char("["), .char("]"), .char("+"), .char("-"), .char("J"):
            replayKey(key)
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
            prompt = Prompt(kind: .filter(current), text: rejectedFilter ?? f, help: s.filterHelp)
            rejectedFilter = nil
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
            // A screen without a filter (Kernel) keeps none.
            if screen(id).filter != nil { screen(id).filter = f }
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
                let text = p.text.trimmingWhitespace()
                if let why = FilterTerms.problem(text, screen: id.title, fields: screen(id).filterFields) {
                    // The filter stays as it was; / brings the text back to correct.
                    message = Span(why, .warn)
                    rejectedFilter = text
                    return
                }
                rejectedFilter = nil
                screen(id).filter = text
            case .seek:
                seek(p.text.trimmingWhitespace())
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

    // MARK: - Replay control

    /// `[` `]` a frame back or forth (paused), `+` `-` twice or half the pace, `J` go to a
    /// time or frame. The feed does the moving (`ReplayControl`); the dashboard only asks.
    func replayKey(_ key: Key) {
        guard let r = source as? ReplayControl else {
            message = Span("[ ] + - J move through a recording (ipvstop --replay FILE)", .warn)
            return
        }
        switch key {
        case .char("["): r.seek(frame: r.frameIndex - 1)
        case .char("]"): r.seek(frame: r.frameIndex + 1)
        case .char("+"): r.setSpeed(r.speed * 2)
        case .char("-"): r.setSpeed(r.speed / 2)
        default:
            prompt = Prompt(kind: .seek, text: "", help: "HH:MM:SS, YYYY-MM-DD HH:MM:SS, #frame, or +/-seconds; Enter goes, Esc cancels")
            return
        }
        pump()
        message = Span(replayPosition(r), .info)
    }

    func replayPosition(_ r: ReplayControl) -> String {
        let i = max(0, r.frameIndex)
        var s = "frame \(i + 1)/\(r.frameCount) at " + Format.localTime(r.time(ofFrame: i))
        if source.isPaused { s += ", paused" }
        s += ", speed " + (r.speed < 1 ? "1/\(Int((1 / r.speed).rounded()))" : "\(Int(r.speed))") + "x"
        return s
    }

    /// Goes to what was typed after `J`: a time of day of the frame shown (`01:00:02`), a
    /// date and time, a frame (`#3`), or seconds from the frame shown (`+30`, `-5`).
    func seek(_ text: String) {
        guard let r = source as? ReplayControl, r.frameCount > 0 else { return }
        let here = r.time(ofFrame: max(0, r.frameIndex))
        var target: Int?
        if text.hasPrefix("#"), let n = Int(text.dropFirst()) {
            target = n - 1
        } else if let first = text.first, first == "+" || first == "-", let v = Double(text.dropFirst()), v.isFinite {
            target = r.frame(at: here.addingTimeInterval(first == "-" ? -v : v))
        } else if let t = Self.timeOfDay(text, near: here) {
            target = r.frame(at: t)
        }
        guard let t = target else {
            message = Span("go to: give HH:MM:SS, YYYY-MM-DD HH:MM:SS, #frame or +/-seconds", .warn)
            return
        }
        r.seek(frame: t)
        pump()
        message = Span(replayPosition(r), .info)
    }

    /// `HH:MM[:SS]` on the day of `near` (local time, as the status line shows it), or
    /// `YYYY-MM-DD HH:MM:SS` (the status line's own form).
    static func timeOfDay(_ text: String, near: Date) -> Date? {
        let words = text.split(separator: " ")
        guard let clock = words.last, words.count <= 2 else { return nil }
        let hms = clock.split(separator: ":").map { Int($0) }
        guard (2...3).contains(hms.count), hms.allSatisfy({ $0 != nil }) else { return nil }
        let (h, m, sec) = (hms[0]!, hms[1]!, hms.count == 3 ? hms[2]! : 0)
        guard (0..<24).contains(h), (0..<60).contains(m), (0..<61).contains(sec) else { return nil }
        // Seconds from the shown time of day to the one typed, on the same day.
        let shown = Format.localTime(near)  // YYYY-MM-DD HH:MM:SS
        let parts = shown.split(separator: " ")
        guard parts.count == 2 else { return nil }
        if words.count == 2, words[0] != parts[0] {
            // Another day: whole days from the date shown.
            let a = words[0].split(separator: "-").compactMap { Int($0) }, b = parts[0].split(separator: "-").compactMap { Int($0) }
            guard a.count == 3, b.count == 3 else { return nil }
            let days = Self.dayNumber(a[0], a[1], a[2]) - Self.dayNumber(b[0], b[1], b[2])
            return timeOfDay(String(clock), near: near)?.addingTimeInterval(Double(days) * 86_400)
        }
        let now = parts[1].split(separator: ":").compactMap { Int($0) }
        guard now.count == 3 else { return nil }
        let delta = (h * 3600 + m * 60 + sec) - (now[0] * 3600 + now[1] * 60 + now[2])
        return near.addingTimeInterval(Double(delta))
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    static func dayNumber(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func seconds(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : Format.fixed(v, 1)
    }

    // MARK: - Drawing

    public func render(width: Int, height: Int) -> Grid {
        var g = Grid(width: width, height: height)
        g.ellipsis = glyphs.ellipsis
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
        ] + (isDemo ? ["DEMO: a simulated director, not this machine"] : [])
        let top = max(0, (g.height - lines.count) / 2)
        for (i, l) in lines.enumerated() {
            let t = l.clipped(g.width, glyphs)
            g.put(t, x: max(0, (g.width - t.columns) / 2), y: top + i, role: i == 0 ? .warn : .normal, bold: i == 0)
        }
    }

    func drawTabs(_ g: inout Grid, _ ctx: ViewContext) {
        g.fill(Rect(x: 0, y: 0, width: g.width, height: 1), role: .bar)
        // The director's name must show: short titles make room for it beside the tabs and,
        // where even they leave none (80 columns), it takes the program's name's place.
        let host = ctx.snapshot?.host
        let name = TerminalText.escaped(host?.hostname ?? host?.kernelRelease ?? "", keepLineBreaks: false)
        let tabs = { (short: Bool) in ScreenID.allCases.reduce(0) { $0 + (short ? $1.shortTitle : $1.title).count + 4 } }
        let room = name.isEmpty ? 0 : name.columns + 2
        let brand = !name.isEmpty && 9 + tabs(true) + room > g.width && name.columns + 2 + tabs(true) <= g.width ? " \(name) " : " ipvstop "
        var x = g.put(brand, x: 0, y: 0, role: .barKey, bold: true)
        let full = tabs(false) + x
        let short = full + (brand == " ipvstop " ? room : 0) > g.width
        for id in ScreenID.allCases {
            let label = " \(id.rawValue) \(short ? id.shortTitle : id.title) "
            x += g.put(label, x: x, y: 0, role: id == current ? .tabActive : .tab, bold: id == current)
            x += 1
        }
        // The director's name and kernel beside the source, as long as they fit whole:
        // the kernel goes first, then the source, then the name.
        let dot = " \(glyphs.dot) "
        let shown = brand == " ipvstop " ? host?.hostname : nil
        let choices = [[shown, host?.kernelRelease, source.label], [shown, source.label],
                       [shown ?? host?.kernelRelease], [source.label]]
        hostInTabs = brand != " ipvstop "
        for parts in choices {
            let right = TerminalText.escaped(parts.compactMap { $0 }.joined(separator: dot), keepLineBreaks: false)
            if x + right.columns + 2 <= g.width {
                g.put(right, x: g.width - right.columns - 1, y: 0, role: .bar)
                hostInTabs = hostInTabs || (shown != nil && parts.first == shown)
                return
            }
        }
    }

    func drawStatus(_ g: inout Grid, _ ctx: ViewContext) {
        let y = 1
        g.fill(Rect(x: 0, y: y, width: g.width, height: 1))
        // The director's name before the clock when the tab bar had no room for it.
        let host = hostInTabs ? nil : ctx.snapshot?.host?.hostname.map { TerminalText.escaped($0, keepLineBreaks: false) }
        let clock = ctx.snapshot.map { Format.localTime($0.takenAt) } ?? ""
        // Narrower: the name with the time of day only, then the name alone (the age is
        // on the left), then the clock alone for a name too long to fit.
        var rights = [clock]
        if let host {
            let time = clock.split(separator: " ").last.map(String.init) ?? clock
            rights = [host + "  " + clock, host + "  " + time, host, clock]
        }
        // The long form when it fits beside the clock, else the short one.
        for long in [true, false] {
            var spans = statusSpans(ctx, long: long)
            // Still too wide (DEMO, PAUSED and a replay's position): without the interval.
            if !long && spans.width > g.width - 2 { spans = statusSpans(ctx, long: false, interval: false) }
            if !long || spans.width + rights[0].count + 4 <= g.width {
                let w = g.put(spans, x: 1, y: y, limit: g.width - 2)
                if let right = rights.first(where: { 1 + w + $0.count + 2 <= g.width }) {
                    g.put(right, x: g.width - right.count - 1, y: y, role: .dim)
                }
                return
            }
        }
    }

    func statusSpans(_ ctx: ViewContext, long: Bool, interval: Bool = true) -> [Span] {
        var spans: [Span] = []
        let dot = Span(" \(glyphs.dot) ", .dim)
        // First on the line, so that no width hides it: a simulation is never taken for
        // the machine.
        if isDemo { spans += [Span("DEMO", .crit, bold: true), dot] }
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
            if let p = s.tablePacing {
                // The table's age and why it is that old: read every interval, or paced by
                // what its last read cost.
                spans += [dot, Span(long ? "table \(tableAge) old, \(p.reason)" : "table \(tableAge) " + (p.mode == .paced ? "paced" : "live") + " " + Format.cost(p.lastCost))]
            } else {
                spans += [dot, Span(long ? "table \(tableAge) old, read " + Format.cost(t.cost.seconds) : "table \(tableAge)/" + Format.cost(t.cost.seconds))]
            }
            if let c = t.completeness, c.isPartial {
                // Never shown as the whole table: every screen built on it counts only this.
                let of = c.expected.map { " of \(Format.count($0, exact: true))" } ?? ""
                spans += [dot, Span(long ? "PARTIAL table: \(Format.count(c.entriesRead, exact: true))\(of) entries read" : "PARTIAL", .crit, bold: true)]
            }
        } else {
            spans += [dot, Span(long ? "table not read yet" : "no table yet", .warn)]
        }
        if interval { spans += [dot, Span((long ? "every " : "") + "\(Self.seconds(source.interval))s", .dim)] }
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
        items.append((10, "Active", Format.count(s.activeConns, exact: x), .normal))
        items.append((9, "InAct", Format.count(s.inactiveConns, exact: x), .normal))
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
            case .seek: label = "Go to: "
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
        // (key, label, priority): when the bar is too narrow the lowest priority leaves
        // first; Help and Quit never do.
        var keys: [(String, String, Int)] = [
            ("1-7", "Screen", 80), ("/", "Filter", 70), ("s", "Sort", 40), ("Enter", "Drill", 60), ("Esc", "Back", 50),
            ("p", source.isPaused ? "Resume" : "Pause", 30), ("d", "Delay", 10), ("x", exact ? "Scaled" : "Exact", 20),
            ("h", "Help", 100), ("q", "Quit", 100),
        ]
        // A replay's own keys (step, jump, speed) before Help, stepping and pausing kept
        // longest; the delay is the recording's.
        if source is ReplayControl {
            keys.removeAll { $0.0 == "d" }
            for i in keys.indices where keys[i].0 == "p" { keys[i].2 = 45 }
            keys.insert(contentsOf: [("[ ]", "Step", 48), ("J", "Jump", 25), ("+ -", "Speed", 15)], at: keys.count - 2)
        }
        func need(_ ks: [(String, String, Int)]) -> Int { ks.reduce(0) { $0 + $1.0.count + $1.1.count + 2 } }
        while need(keys) > g.width, let least = keys.filter({ $0.2 < 100 }).map(\.2).min() {
            keys.removeAll { $0.2 == least }
        }
        var x = 0
        for (k, label, _) in keys {
            x += g.put(k, x: x, y: y, role: .barKey, bold: true)
            x += g.put(label + " ", x: x, y: y, role: .bar)
            x += 1
        }
    }
}
