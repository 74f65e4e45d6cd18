import IPVSModel

// What `ipvstop` opens on, in a terminal, when the machine has no IPVS (issue 22, section 3):
// why, how to load it, and the built-in demo director one key away. Scripts (no terminal)
// keep the plain error.

/// The screen shown instead of the dashboard when the director cannot be read because IPVS
/// is not loaded. Like `Dashboard`, a grid out and keys in, without a terminal.
public struct NoIPVSScreen: Sendable {
    /// What the operator chose.
    public enum Choice: Sendable, Equatable {
        /// Open the dashboard on the simulated director (marked DEMO on every screen).
        case demo
        /// Look again (after `modprobe ip_vs` in another terminal).
        case retry
        case quit
    }

    /// The reader's own words: what is missing, where.
    public var reason: String
    /// The tree read (`/proc`, or a `--proc-root`).
    public var procRoot: String
    /// Said after a retry that still found no IPVS.
    public var note: String?
    public var glyphs: Glyphs

    public init(reason: String, procRoot: String, glyphs: Glyphs = .unicode, note: String? = nil) {
        self.reason = reason
        self.procRoot = procRoot
        self.glyphs = glyphs
        self.note = note
    }

    public func handle(_ key: Key) -> Choice? {
        switch key {
        case .char("d"), .char("D"), .enter: .demo
        case .char("r"), .char("R"), .function(5): .retry
        case .char("q"), .char("Q"), .escape, .function(10): .quit
        default: nil
        }
    }

    var lines: [(String, Role, Bool)] {
        let live = procRoot == "/proc"
        var out: [(String, Role, Bool)] = [
            ("No IPVS director to show" + (live ? " on this machine" : " in \(procRoot)"), .warn, true),
            ("", .normal, false),
        ]
        // The reader's words, line by line (it may already say how to load the module).
        for l in reason.split(separator: "\n") { out.append((TerminalText.escaped(String(l), keepLineBreaks: false), .dim, false)) }
        out.append(("", .normal, false))
        if live {
            out += [
                ("To load it (as root):", .normal, true),
                ("    modprobe ip_vs", .ok, true),
                ("then add a virtual service, e.g. ipvsadm -A -t 10.0.0.1:80 -s wlc, and press r.", .normal, false),
            ]
        } else {
            out += [
                ("The tree given with --proc-root holds no net/ip_vs: capture it on a director", .normal, false),
                ("where 'modprobe ip_vs' was done ('ipvstop capture'), or point at another one.", .normal, false),
            ]
        }
        out += [
            ("", .normal, false),
            ("d or Enter: open the built-in demo director (a simulation, marked DEMO on every screen)", .normal, false),
            ("r: look again", .normal, false),
            ("q: quit", .normal, false),
        ]
        if let n = note { out += [("", .normal, false), (n, .warn, false)] }
        return out
    }

    public func render(width: Int, height: Int) -> Grid {
        var g = Grid(width: width, height: height)
        g.ellipsis = glyphs.ellipsis
        guard width > 0, height > 0 else { return g }
        g.fill(Rect(x: 0, y: 0, width: width, height: 1), role: .bar)
        g.put([Span(" ipvstop ", .barKey, bold: true), Span(" no IPVS", .bar)], x: 0, y: 0, limit: width)
        // Long lines wrap at words: a command or an address is never cut.
        var rows: [(String, Role, Bool)] = []
        for (text, role, bold) in lines {
            if text.isEmpty { rows.append((text, role, bold)); continue }
            let indent = String(text.prefix { $0 == " " })
            for l in wrap(String(text.dropFirst(indent.count)), max(10, width - 2 - indent.count)) { rows.append((indent + l, role, bold)) }
        }
        let top = 2
        for (i, r) in rows.enumerated() where top + i < height - 1 {
            g.put([Span(r.0, r.1, bold: r.2)], x: 1, y: top + i, limit: width - 2)
        }
        g.fill(Rect(x: 0, y: height - 1, width: width, height: 1), role: .bar)
        g.put([Span("d", .barKey, bold: true), Span("Demo  ", .bar), Span("r", .barKey, bold: true), Span("Retry  ", .bar),
               Span("q", .barKey, bold: true), Span("Quit", .bar)], x: 0, y: height - 1, limit: width)
        return g
    }

    /// Shows the screen until a choice is made (or input ends: `.quit`).
    public func run(terminal: Terminal) -> Choice {
        terminal.draw(render(width: terminal.width, height: terminal.height))
        while true {
            if terminal.inputEnded { return .quit }
            guard let key = terminal.readKey(milliseconds: 200) else { continue }
            switch key {
            case .resize: terminal.invalidate(clear: false)
            case .redraw: terminal.invalidate(clear: true)
            default: if let c = handle(key) { return c }
            }
            terminal.draw(render(width: terminal.width, height: terminal.height))
        }
    }
}
