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

    /// Writes spans one after another; returns the columns written.
    @discardableResult
    public mutating func put(_ spans: [Span], x: Int, y: Int, limit: Int) -> Int {
        var cx = x
        for s in spans {
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
    /// Clipped to `n` columns, with an ellipsis when something was cut.
    func clipped(_ n: Int, _ g: Glyphs) -> String {
        let c = unicodeScalars.count
        if c <= n { return self }
        if n <= 0 { return "" }
        var v = String.UnicodeScalarView(unicodeScalars.prefix(n - 1))
        v.append(contentsOf: g.ellipsis.unicodeScalars)
        return String(v)
    }

    var columns: Int { unicodeScalars.count }

    func padded(_ n: Int, right: Bool = false) -> String {
        let c = columns
        if c >= n { return self }
        let pad = String(repeating: " ", count: n - c)
        return right ? pad + self : self + pad
    }
}
