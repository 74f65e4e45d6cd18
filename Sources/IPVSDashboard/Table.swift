// Tables: columns that size themselves to their content and drop out, least important
// first, when the terminal is too narrow; rows drawn only where they are visible.

public enum Align: Sendable { case left, right }

public struct Column: Sendable {
    public var title: String
    public var align: Align
    /// The least width (and the width when the content is narrower).
    public var width: Int
    /// The content may widen the column up to this (exact numbers, long addresses).
    public var maxWidth: Int
    /// Takes the room left over (at most `flexMax` columns more than its width).
    public var flex: Bool
    public var flexMax: Int
    /// When the terminal is too narrow the lowest priority goes first; 100 never goes.
    public var priority: Int
    /// The content is shown whole or the column left out: numbers, addresses. A flexible
    /// column that is `whole` counts its content's width, not its least, when the table
    /// decides which columns fit. (Right-aligned columns, numbers, are whole.)
    public var whole: Bool

    public init(_ title: String, _ align: Align = .left, width: Int, maxWidth: Int? = nil, flex: Bool = false, flexMax: Int = 1_000, priority: Int = 100, whole: Bool? = nil) {
        self.whole = whole ?? (align == .right)
        self.title = title
        self.align = align
        self.width = max(width, 1)
        self.maxWidth = max(maxWidth ?? width, width)
        self.flex = flex
        self.flexMax = flexMax
        self.priority = priority
    }
}

/// A share bar: `fraction` filled, a mark at `mark` (the weight's share), a label after.
public struct Meter: Sendable, Hashable {
    public var fraction: Double
    public var mark: Double?
    public var label: String
    public var role: Role
    public init(fraction: Double, mark: Double?, label: String, role: Role = .meter) {
        self.fraction = fraction
        self.mark = mark
        self.label = label
        self.role = role
    }
}

public enum Content: Sendable {
    case text(String)
    case styled(String, Role)
    case spans([Span])
    case meter(Meter)
    case empty

    var naturalWidth: Int {
        switch self {
        case .text(let s), .styled(let s, _): s.columns
        case .spans(let s): s.width
        case .meter(let m): m.label.columns + 6
        case .empty: 0
        }
    }
}

public struct TableRow: Sendable {
    public var cells: [Content]
    /// The role of the whole row (nil: normal).
    public var role: Role?
    /// The last cell, from this column on, spans to the end of the row.
    public var spanFrom: Int?

    public init(_ cells: [Content], role: Role? = nil, spanFrom: Int? = nil) {
        self.cells = cells
        self.role = role
        self.spanFrom = spanFrom
    }
}

/// The scroll position and selection of a list.
public struct ListCursor: Sendable, Hashable {
    public var selected = 0
    public var top = 0

    public init() {}

    /// Keeps the selection in `0..<count` and visible in a window of `visible` rows.
    public mutating func clamp(count: Int, visible: Int) {
        let v = max(1, visible)
        selected = count == 0 ? 0 : min(max(0, selected), count - 1)
        if selected < top { top = selected }
        if selected >= top + v { top = selected - v + 1 }
        top = max(0, min(top, max(0, count - v)))
    }

    public mutating func move(_ delta: Int, count: Int, visible: Int) {
        selected += delta
        clamp(count: count, visible: visible)
    }
}

public struct Table: Sendable {
    public var columns: [Column]
    public var sortColumn: Int?
    public var ascending = true

    public init(_ columns: [Column], sortColumn: Int? = nil, ascending: Bool = true) {
        self.columns = columns
        self.sortColumn = sortColumn
        self.ascending = ascending
    }

    /// Column widths for `width` columns of terminal, nil for a column left out.
    ///
    /// Columns first take their content's width (up to their `maxWidth`); flexible ones
    /// count only their least width when deciding which columns fit, least important left
    /// out first; then flexible columns grow to their content, and share what is left.
    public func layout(width: Int, measuring rows: [TableRow]) -> [Int?] {
        var natural = columns.enumerated().map { i, c in
            max(c.width, c.title.columns + (sortColumn == i ? 1 : 0))
        }
        for r in rows {
            for (i, c) in r.cells.enumerated() where i < natural.count && (r.spanFrom == nil || i < r.spanFrom!) {
                natural[i] = max(natural[i], min(columns[i].maxWidth, c.naturalWidth))
            }
        }
        var w = columns.indices.map { columns[$0].flex && !columns[$0].whole ? max(columns[$0].width, columns[$0].title.columns + (sortColumn == $0 ? 1 : 0)) : natural[$0] }
        var shown = Array(repeating: true, count: columns.count)
        func total() -> Int {
            let n = shown.filter { $0 }.count
            return zip(w, shown).reduce(0) { $0 + ($1.1 ? $1.0 : 0) } + max(0, n - 1)
        }
        while total() > width {
            // The least important column still shown (the rightmost among equals).
            var drop: Int?
            for i in columns.indices where shown[i] && columns[i].priority < 100 {
                if drop == nil || columns[i].priority <= columns[drop!].priority { drop = i }
            }
            guard let d = drop else { break }
            shown[d] = false
        }
        var extra = width - total()
        // Flexible columns: up to their content first, then up to flexMax more.
        for i in columns.indices where shown[i] && columns[i].flex && extra > 0 {
            let add = min(extra, natural[i] - w[i])
            if add > 0 { w[i] += add; extra -= add }
        }
        for i in columns.indices where shown[i] && columns[i].flex && extra > 0 {
            let add = min(extra, columns[i].flexMax)
            w[i] += add
            extra -= add
        }
        return columns.indices.map { shown[$0] ? w[$0] : nil }
    }

    /// Draws the header in the first row of `rect` and rows `first...` under it; `selected`
    /// is the index of the selected row, if any. `row(i)` gives row `i` of `count`.
    public func render(into g: inout Grid, rect: Rect, count: Int, first: Int, selected: Int?, glyphs: Glyphs,
                       widths: [Int?], row: (Int) -> TableRow) {
        guard rect.height > 0 else { return }
        // Header.
        g.fill(rect.row(0), role: .header)
        var x = rect.x
        for (i, c) in columns.enumerated() {
            guard let cw = widths[i] else { continue }
            var title = c.title
            let sorted = sortColumn == i
            if sorted { title += ascending ? glyphs.up : glyphs.down }
            let text = c.align == .right ? title.clipped(cw, glyphs).padded(cw, right: true) : title.clipped(cw, glyphs)
            g.put(text, x: x, y: rect.y, role: sorted ? .headerSorted : .header, limit: min(cw, rect.maxX - x))
            x += cw + 1
            if x >= rect.maxX { break }
        }
        // Rows.
        for line in 1..<rect.height {
            let i = first + line - 1
            guard i < count else { break }
            let r = row(i)
            let y = rect.y + line
            drawRow(r, into: &g, x: rect.x, y: y, maxX: rect.maxX, widths: widths, glyphs: glyphs)
            if i == selected { g.paint(Rect(x: rect.x, y: y, width: rect.width, height: 1), role: .selected) }
        }
    }

    func drawRow(_ r: TableRow, into g: inout Grid, x x0: Int, y: Int, maxX: Int, widths: [Int?], glyphs: Glyphs) {
        var x = x0
        let base = r.role ?? .normal
        if base != .normal { g.fill(Rect(x: x0, y: y, width: maxX - x0, height: 1), role: base) }
        for (i, cwOpt) in widths.enumerated() {
            guard let cw0 = cwOpt, x < maxX else { continue }
            var cw = min(cw0, maxX - x)
            if let s = r.spanFrom, i >= s {
                guard i == s else { continue }
                cw = maxX - x
            }
            let content = i < r.cells.count ? r.cells[i] : .empty
            switch content {
            case .empty: break
            case .text(let s):
                put(s, role: base, into: &g, x: x, y: y, width: cw, align: columns[i].align, glyphs: glyphs)
            case .styled(let s, let role):
                put(s, role: role, into: &g, x: x, y: y, width: cw, align: columns[i].align, glyphs: glyphs)
            case .spans(let spans):
                // Cut to the width, with an ellipsis in the role of the last span kept.
                let sp = spans.clipped(cw, ellipsis: glyphs.ellipsis)
                let start = columns[i].align == .right ? x + max(0, cw - sp.width) : x
                g.put(sp, x: start, y: y, limit: cw - (start - x))
            case .meter(let m):
                drawMeter(m, into: &g, x: x, y: y, width: cw, glyphs: glyphs)
            }
            x += cw + 1
            if r.spanFrom == i { break }
        }
    }

    func put(_ s: String, role: Role, into g: inout Grid, x: Int, y: Int, width: Int, align: Align, glyphs: Glyphs) {
        let t = s.clipped(width, glyphs)
        let start = align == .right ? x + width - t.columns : x
        g.put(t, x: start, y: y, role: role, limit: width)
    }

    func drawMeter(_ m: Meter, into g: inout Grid, x: Int, y: Int, width: Int, glyphs: Glyphs) {
        let label = m.label.isEmpty ? "" : " " + m.label
        let barWidth = max(0, width - label.columns)
        guard barWidth > 0 else {
            g.put(m.label.clipped(width, glyphs), x: x, y: y, role: .normal, limit: width)
            return
        }
        let f = max(0, min(1, m.fraction.isFinite ? m.fraction : 0))
        let eighths = Int((f * Double(barWidth * 8)).rounded())
        var bar = ""
        let fullCells = eighths / 8
        bar += String(repeating: glyphs.full, count: fullCells)
        var used = fullCells
        if used < barWidth {
            let rest = eighths % 8
            if rest > 0 && !glyphs.partial.isEmpty {
                bar += glyphs.partial[rest - 1]
                used += 1
            } else if rest >= 4 && glyphs.partial.isEmpty {
                bar += glyphs.full
                used += 1
            }
        }
        g.put(bar, x: x, y: y, role: m.role, limit: barWidth)
        if used < barWidth {
            g.put(String(repeating: glyphs.empty, count: barWidth - used), x: x + used, y: y, role: .dim, limit: barWidth - used)
        }
        if let mark = m.mark, mark.isFinite {
            let mx = x + min(barWidth - 1, max(0, Int((max(0, min(1, mark)) * Double(barWidth)).rounded(.down))))
            g.put(glyphs.mark, x: mx, y: y, role: .meterMark, limit: 1)
        }
        g.put(label, x: x + barWidth, y: y, role: .normal, limit: label.columns)
    }
}
