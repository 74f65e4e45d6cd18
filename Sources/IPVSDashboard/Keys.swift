/// A key press, as the dashboard understands it (the backend translates ncurses' codes).
public enum Key: Hashable, Sendable {
    case char(Character)
    case up, down, left, right
    case pageUp, pageDown, home, end
    case enter, escape, tab, backTab, backspace, delete
    case function(Int)
    /// The terminal changed size.
    case resize
    /// Ctrl-L: redraw everything.
    case redraw
    /// Ctrl-U: clear the line being typed.
    case clearLine

    /// Parses a key name for tests and scripts: `q`, `Down`, `PgDn`, `Enter`, `F1`, `Esc`.
    public init?(name: String) {
        switch name.lowercased() {
        case "up": self = .up
        case "down": self = .down
        case "left": self = .left
        case "right": self = .right
        case "pgup", "pageup", "ppage": self = .pageUp
        case "pgdn", "pagedown", "npage": self = .pageDown
        case "home": self = .home
        case "end": self = .end
        case "enter", "return": self = .enter
        case "esc", "escape": self = .escape
        case "tab": self = .tab
        case "btab", "backtab": self = .backTab
        case "bspace", "backspace": self = .backspace
        case "space": self = .char(" ")
        default:
            if name.count == 1 { self = .char(name.first!); return }
            if name.lowercased().hasPrefix("f"), let n = Int(name.dropFirst()), (1...12).contains(n) { self = .function(n); return }
            return nil
        }
    }
}
