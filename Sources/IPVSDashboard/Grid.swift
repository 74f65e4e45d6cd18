import IPVSModel

// The in-memory screen: a grid of cells that screens draw into and tests read back.
// The ncurses backend only copies it to the terminal (Terminal.swift).

/// What a cell means; the backend turns it into a colour pair (or, without colour, into
/// bold, reverse, underline or dim), so screens never name colours.
public enum Role: UInt8, Sendable, CaseIterable {
    case normal
    /// The top bar and the key bar.
    case bar
    case barKey
    case tab
    case tabActive
    /// A table's column titles.
    case header
    case headerSorted
    case selected
    case dim
    case ok
    case warn
    case crit
    case info
    /// A service row in the Services tree.
    case group
    /// Share bars: the connections' share, and the weight's mark.
    case meter
    case meterMark
    case prompt
}

public struct Cell: Hashable, Sendable {
    public var scalar: Unicode.Scalar
    public var role: Role
    public var bold: Bool

    public init(_ scalar: Unicode.Scalar = " ", role: Role = .normal, bold: Bool = false) {
        self.scalar = scalar
        self.role = role
        self.bold = bold
    }

    public static let blank = Cell()
}

public struct Rect: Hashable, Sendable {
    public var x: Int, y: Int, width: Int, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x; self.y = y; self.width = max(0, width); self.height = max(0, height)
    }
    public var maxY: Int { y + height }
    public var maxX: Int { x + width }

    /// The rectangle without its first `n` rows.
    public func dropTop(_ n: Int) -> Rect { Rect(x: x, y: y + n, width: width, height: height - n) }
    public func row(_ i: Int) -> Rect { Rect(x: x, y: y + i, width: width, height: 1) }
}

/// A screen's worth of cells. Every character drawn is one column wide: the dashboard
/// writes ASCII, its own line-drawing glyphs, and addresses.
public struct Grid: Sendable, Equatable {
    public private(set) var width: Int
    public private(set) var height: Int
    public private(set) var cells: [Cell]
    /// What marks cut text (`Glyphs.ellipsis` of the screen drawn).
    public var ellipsis = Glyphs.unicode.ellipsis

    public init(width: Int, height: Int) {
        self.width = max(0, width)
        self.height = max(0, height)
        cells = [Cell](repeating: .blank, count: self.width * self.height)
    }

    public var bounds: Rect { Rect(x: 0, y: 0, width: width, height: height) }

    public subscript(x: Int, y: Int) -> Cell {
        get { cells[y * width + x] }
        set { cells[y * width + x] = newValue }
    }

    public mutating func fill(_ r: Rect, role: Role = .normal, scalar: Unicode.Scalar = " ") {
        let x0 = max(0, r.x), x1 = min(width, r.maxX)
        guard x0 < x1 else { return }
        for y in max(0, r.y)..<max(max(0, r.y), min(height, r.maxY)) {
            for x in x0..<x1 { cells[y * width + x] = Cell(scalar, role: role) }
        }
    }

    /// Sets the role of every cell of a rectangle, keeping the characters.
    public mutating func paint(_ r: Rect, role: Role) {
        let x0 = max(0, r.x), x1 = min(width, r.maxX)
        guard x0 < x1 else { return }
        for y in max(0, r.y)..<max(max(0, r.y), min(height, r.maxY)) {
            for x in x0..<x1 { cells[y * width + x].role = role }
        }
    }

    /// Writes `text` from (x, y), clipped to `limit` columns (and the grid); returns the
    /// columns written. `role` nil keeps each cell's current role.
    @discardableResult
    public mutating func put(_ text: String, x: Int, y: Int, role: Role? = .normal, bold: Bool = false, limit: Int? = nil) -> Int {
        guard y >= 0 && y < height else { return 0 }
        let end = min(width, limit.map { x + max(0, $0) } ?? width)
        var cx = x
        for s in text.unicodeScalars {
            if cx >= end { break }
            if cx >= 0 {
                let i = y * width + cx
                // Text from the kernel's files or a recording may hold control characters
                // (ESC, C1): never handed to the terminal, one "?" cell each so the layout
                // measured in scalars holds. Warnings are escaped readably before this.
                cells[i].scalar = TerminalText.isControl(s) ? "?" : s
                if let role { cells[i].role = role }
                cells[i].bold = bold
            }
            cx += 1
        }
        return max(0, cx - x)
    }

    /// Writes spans one after another; returns the columns written. Spans wider than
    /// `limit` (or the grid's edge) are cut as `String.clipped` cuts text: at a word or
    /// number boundary, ending with `ellipsis`, never in the middle of a number.
    @discardableResult
    public mutating func put(_ spans: [Span], x: Int, y: Int, limit: Int) -> Int {
        let room = min(limit, width - x)
        let all = spans.width > room ? spans.clipped(room, ellipsis: ellipsis) : spans
        var cx = x
        for s in all {
            let left = x + limit - cx
            if left <= 0 { break }
            cx += put(s.text, x: cx, y: y, role: s.role, bold: s.bold, limit: left)
        }
        return cx - x
    }

    /// A row of the grid as text, without trailing blanks.
    public func line(_ y: Int) -> String {
        var s = String.UnicodeScalarView()
        for x in 0..<width { s.append(cells[y * width + x].scalar) }
        var out = String(s)
        while out.last == " " { out.removeLast() }
        return out
    }

    /// The whole grid as text, one line per row, trailing blanks removed (what `tmux
    /// capture-pane -p` prints).
    public var text: String { (0..<height).map(line).joined(separator: "\n") }
}

/// A piece of text with its role.
public struct Span: Hashable, Sendable {
    public var text: String
    public var role: Role
    public var bold: Bool
    public init(_ text: String, _ role: Role = .normal, bold: Bool = false) {
        self.text = text
        self.role = role
        self.bold = bold
    }
    public var width: Int { text.unicodeScalars.count }
}

extension Array where Element == Span {
    var width: Int { reduce(0) { $0 + $1.width } }

    /// Cut to `n` columns as `String.clipped` cuts: the ellipsis in the role of the last
    /// span kept.
    func clipped(_ n: Int, ellipsis: String) -> [Span] {
        guard width > n else { return self }
        guard n > 0 else { return [] }
        var scalars: [Unicode.Scalar] = []
        for s in self { scalars.append(contentsOf: s.text.unicodeScalars) }
        let keep = String.cutPoint(scalars, n - ellipsis.unicodeScalars.count)
        var left = keep
        var out: [Span] = []
        for var s in self {
            if left <= 0 { break }
            if s.width > left { s.text = String(String.UnicodeScalarView(s.text.unicodeScalars.prefix(left))) }
            left -= s.width
            out.append(s)
        }
        out.append(Span(ellipsis, out.last?.role ?? .normal, bold: out.last?.bold ?? false))
        return out
    }
}

/// Line drawing and bar glyphs: box-drawing characters under a UTF-8 locale, ASCII under
/// any other.
public struct Glyphs: Sendable, Hashable {
    public var hline: String
    public var vline: String
    public var branch: String
    public var lastBranch: String
    public var full: String
    /// Eighths of a cell, from one eighth to seven.
    public var partial: [String]
    public var empty: String
    public var mark: String
    public var ellipsis: String
    public var up: String
    public var down: String
    public var dot: String
    public var flag: String

    public static let unicode = Glyphs(
        hline: "─", vline: "│", branch: "├─", lastBranch: "└─", full: "█",
        partial: ["▏", "▎", "▍", "▌", "▋", "▊", "▉"], empty: " ", mark: "┃", ellipsis: "…",
        up: "▲", down: "▼", dot: "·", flag: "⚑")

    public static let ascii = Glyphs(
        hline: "-", vline: "|", branch: "|-", lastBranch: "`-", full: "#",
        partial: [], empty: ".", mark: "|", ellipsis: "~", up: "^", down: "v", dot: "-", flag: "!")

    public var isUnicode: Bool { self == .unicode }
}

extension String {
    /// Clipped to `n` columns, with an ellipsis when something was cut. A number is never
    /// cut: a cut that would fall inside one (a run of letters, digits and `.:[]/_` holding
    /// a digit: a count, an address, an endpoint, a CIDR) moves back to before it, so
    /// `TIME_WAIT 962, 10.0.0.1:8080` becomes `TIME_WAIT 962, …`, never `… 10.0.0.1:80…`,
    /// and `4657151641` in 5 columns `…`.
    func clipped(_ n: Int, _ g: Glyphs) -> String {
        let c = unicodeScalars.count
        if c <= n { return self }
        if n <= 0 { return "" }
        let scalars = Array(unicodeScalars)
        var v = String.UnicodeScalarView(scalars.prefix(Self.cutPoint(scalars, n - g.ellipsis.unicodeScalars.count)))
        v.append(contentsOf: g.ellipsis.unicodeScalars)
        return String(v)
    }

    /// How many of `s` to keep when at most `n` fit and the rest is cut: `n`, or less so
    /// that no number is cut (see `clipped`).
    static func cutPoint(_ s: [Unicode.Scalar], _ n: Int) -> Int {
        guard n > 0 else { return 0 }
        guard n < s.count else { return s.count }
        // An address, an endpoint, a CIDR or a decimal is one number here: `[`, `]`, `.`,
        // `:` and `/` join its parts.
        func word(_ c: Unicode.Scalar) -> Bool { c.properties.isAlphabetic || ("0"..."9").contains(c) || "_.:[]/".unicodeScalars.contains(c) }
        // Not inside a word: the cut is clean.
        guard word(s[n - 1]) && word(s[n]) else { return n }
        var start = n - 1
        while start > 0 && word(s[start - 1]) { start -= 1 }
        var end = n
        while end < s.count && word(s[end]) { end += 1 }
        let run = s[start..<end]
        let hasDigit = run.contains { ("0"..."9").contains($0) }
        let hex = run.contains { $0 == ":" } && run.allSatisfy { $0.properties.isASCIIHexDigit || "[]:/".unicodeScalars.contains($0) }
        return hasDigit || hex ? start : n
    }

    var columns: Int { unicodeScalars.count }

    func padded(_ n: Int, right: Bool = false) -> String {
        let c = columns
        if c >= n { return self }
        let pad = String(repeating: " ", count: n - c)
        return right ? pad + self : self + pad
    }
}
