// The ncurses backend: the only file that talks to ncurses. It copies the dashboard's
// grid to the terminal (only the cells that changed) and turns key codes into `Key`s.
import CNcurses
import FoundationEssentials
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public final class Terminal {
    public let hasColour: Bool
    /// The locale is UTF-8: line drawing with box characters, else ASCII.
    public let utf8: Bool
    var shown: Grid?
    var attrs: [Role: (attr: attr_t, pair: Int16)] = [:]

    /// Sets the locale, starts ncurses and sets the terminal up (no echo, keys, no cursor,
    /// short Esc delay).
    public init() {
        utf8 = ipvstop_setlocale_utf8() != 0
        initscr()
        cbreak()
        noecho()
        nonl()
        keypad(ipvstop_stdscr(), true)
        intrflush(ipvstop_stdscr(), false)
        curs_set(0)
        set_escdelay(25)
        hasColour = has_colors()
        if hasColour {
            start_color()
            use_default_colors()
        }
        setUpRoles()
    }

    public func end() {
        endwin()
    }

    public var width: Int { Int(ipvstop_cols()) }
    public var height: Int { Int(ipvstop_lines()) }

    func setUpRoles() {
        let bold = ipvstop_a_bold(), rev = ipvstop_a_reverse(), dim = ipvstop_a_dim(), under = ipvstop_a_underline()
        let normal = ipvstop_a_normal()
        guard hasColour else {
            // Readable without colour: reverse for bars and the selection, bold for what
            // needs a look.
            attrs = [
                .normal: (normal, 0), .bar: (rev, 0), .barKey: (normal | bold, 0), .tab: (rev, 0), .tabActive: (bold | under, 0),
                .header: (bold | under, 0), .headerSorted: (bold | under | rev, 0), .selected: (rev, 0), .dim: (dim, 0),
                .ok: (normal, 0), .warn: (bold, 0), .crit: (bold | under, 0), .info: (normal, 0), .group: (bold, 0),
                .meter: (normal, 0), .meterMark: (bold, 0), .prompt: (rev | bold, 0),
            ]
            return
        }
        let gray: Int16 = ipvstop_colors() >= 16 ? 8 : Int16(COLOR_BLACK)
        let pairs: [(Role, Int16, Int16, attr_t)] = [
            (.bar, Int16(COLOR_BLACK), Int16(COLOR_CYAN), normal),
            (.barKey, Int16(COLOR_WHITE), Int16(COLOR_BLACK), bold),
            (.tab, Int16(COLOR_BLACK), Int16(COLOR_CYAN), normal),
            (.tabActive, Int16(COLOR_BLACK), Int16(COLOR_GREEN), bold),
            (.header, Int16(COLOR_BLACK), Int16(COLOR_GREEN), normal),
            (.headerSorted, Int16(COLOR_BLACK), Int16(COLOR_CYAN), bold),
            (.selected, Int16(COLOR_BLACK), Int16(COLOR_CYAN), normal),
            (.dim, gray, -1, gray == Int16(COLOR_BLACK) ? bold : normal),
            (.ok, Int16(COLOR_GREEN), -1, normal),
            (.warn, Int16(COLOR_YELLOW), -1, bold),
            (.crit, Int16(COLOR_RED), -1, bold),
            (.info, Int16(COLOR_CYAN), -1, normal),
            (.group, Int16(COLOR_BLUE), -1, bold),
            (.meter, Int16(COLOR_GREEN), -1, normal),
            (.meterMark, Int16(COLOR_YELLOW), -1, bold),
            (.prompt, Int16(COLOR_BLACK), Int16(COLOR_YELLOW), normal),
        ]
        attrs[.normal] = (normal, 0)
        for (i, p) in pairs.enumerated() {
            let n = Int16(i + 1)
            init_pair(n, p.1, p.2)
            attrs[p.0] = (p.3, n)
        }
    }

    /// Shows a grid: writes the cells that differ from what is on screen, then one
    /// refresh (no clear, so no flicker).
    public func draw(_ g: Grid) {
        let full = shown == nil || shown!.width != g.width || shown!.height != g.height
        let bold = ipvstop_a_bold()
        for y in 0..<g.height {
            for x in 0..<g.width {
                let c = g[x, y]
                if !full, shown![x, y] == c { continue }
                var a = attrs[c.role] ?? (ipvstop_a_normal(), 0)
                if c.bold { a.attr |= bold }
                _ = ipvstop_put(Int32(y), Int32(x), wchar_t(bitPattern: c.scalar.value), a.attr, a.pair)
            }
        }
        shown = g
        wrefresh(ipvstop_stdscr())
    }

    /// Forgets what is on screen and repaints it all at the next draw (Ctrl-L, resize).
    public func invalidate(clear: Bool) {
        shown = nil
        if clear { clearok(ipvstop_curscr(), true) }
    }

    /// Standard input is gone: at its end (a file, /dev/null), closed, or hung up. Set by
    /// `readKey`; the loop then ends instead of asking for keys that never come (it spun
    /// at 100% of a core: at end of input every wait returns at once).
    public private(set) var inputEnded = false
    /// Waits in a row that ended early with no key and input that polls as ended.
    var earlyEmptyWaits = 0

    /// Waits up to `milliseconds` for a key (0: only what is already there).
    public func readKey(milliseconds: Int) -> Key? {
        wtimeout(ipvstop_stdscr(), Int32(milliseconds))
        let started = MonotonicClock.now()
        var ch: wint_t = 0
        let r = ipvstop_get(&ch)
        if r == ERR {
            // A wait that should have lasted `milliseconds` came back at once: at the end of
            // input, or on a signal (a resize). Three in a row with input polling as ended
            // are the end, not a signal.
            if milliseconds >= 50, MonotonicClock.now() - started < Double(milliseconds) / 4000, Self.standardInputEnded() {
                earlyEmptyWaits += 1
                if earlyEmptyWaits >= 3 { inputEnded = true }
            } else {
                earlyEmptyWaits = 0
            }
            return nil
        }
        earlyEmptyWaits = 0
        if r == ipvstop_key_code_yes() {
            let k = Int32(ch)
            switch k {
            case KEY_UP: return .up
            case KEY_DOWN: return .down
            case KEY_LEFT: return .left
            case KEY_RIGHT: return .right
            case KEY_PPAGE: return .pageUp
            case KEY_NPAGE: return .pageDown
            case KEY_HOME: return .home
            case KEY_END: return .end
            case KEY_ENTER: return .enter
            case KEY_BACKSPACE: return .backspace
            case KEY_DC: return .delete
            case KEY_BTAB: return .backTab
            case KEY_RESIZE: return .resize
            default:
                for n in 1...12 where k == ipvstop_key_f(Int32(n)) { return .function(n) }
                return nil
            }
        }
        switch ch {
        case 10, 13: return .enter
        case 27: return .escape
        case 9: return .tab
        case 8, 127: return .backspace
        case 12: return .redraw
        case 21: return .clearLine
        default:
            guard let s = Unicode.Scalar(UInt32(ch)), ch >= 32 else { return nil }
            return .char(Character(s))
        }
    }
}

extension Terminal {
    /// Standard input polls as closed or hung up, or (not a terminal) readable with nothing
    /// that ncurses could read: its end.
    static func standardInputEnded() -> Bool {
        var p = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 0) >= 0 else { return errno == EBADF }
        if p.revents & Int16(POLLNVAL | POLLERR | POLLHUP) != 0 { return true }
        return p.revents & Int16(POLLIN) != 0 && isatty(STDIN_FILENO) == 0
    }
}

/// A monotonic clock in seconds, for telling a wait that returned at once.
enum MonotonicClock {
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// The dashboard's loop: take new snapshots, draw when something changed (a snapshot, an
/// analysis, a key, a second of the clock for the countdowns), wait for keys.
public enum DashboardRunner {
    /// Why the loop ended.
    public enum End: Sendable { case quit, inputEnded }

    @discardableResult
    public static func run(_ dashboard: Dashboard, terminal: Terminal) -> End {
        var dirty = true
        var lastSecond = Int.min
        while !dashboard.quit {
            if terminal.inputEnded { return .inputEnded }
            if dashboard.pump() { dirty = true }
            let second = Format.int(dashboard.source.now().timeIntervalSince1970.rounded(.down))
            if second != lastSecond {
                lastSecond = second
                dirty = true
            }
            if dirty {
                terminal.draw(dashboard.render(width: terminal.width, height: terminal.height))
                dirty = false
            }
            // Wake at least every 200 ms: new snapshots and the ticking clock are noticed
            // without a thread of their own.
            guard let key = terminal.readKey(milliseconds: 200) else { continue }
            var k: Key? = key
            // Handle every key already typed before drawing again.
            while let current = k {
                switch current {
                case .resize: terminal.invalidate(clear: false)
                case .redraw: terminal.invalidate(clear: true)
                default: dashboard.handle(current)
                }
                if dashboard.quit { break }
                k = terminal.readKey(milliseconds: 0)
            }
            dirty = true
        }
        return .quit
    }
}
