import FoundationEssentials
import IPVSAnalysis
import IPVSFeed
import IPVSModel

/// Screen 5: the analysis layer's findings, most severe first, with the selected one's
/// explanation, evidence and advice; Enter jumps to its subject.
public final class FindingsScreen: Screen {
    public let id = ScreenID.findings
    public var filter: String? = ""
    public var filterHelp: String { "text in the kind, subject or key (rogue, 192.168.1.6, quiescent)" }
    var cursor = ListCursor()
    var visibleRows = 10

    public init() {}

    static let columns: [Column] = [
        Column("Severity", width: 8),
        Column("Kind", width: 16, maxWidth: 18),
        Column("Subject", width: 30, flex: true),
        Column("Since", .right, width: 8, priority: 50),
    ]

    func list(_ a: Analysed) -> [Finding] {
        let all = (a.findings ?? []).sorted {
            if $0.severity != $1.severity { return $0.severity > $1.severity }
            if $0.kind != $1.kind { return $0.kind < $1.kind }
            return $0.key < $1.key
        }
        let f = (filter ?? "").lowercased()
        guard !f.isEmpty else { return all }
        return all.filter { ($0.kind.rawValue + " " + $0.subject + " " + $0.key).lowercased().contains(f) }
    }

    static func role(_ s: Severity) -> Role {
        switch s {
        case .critical: .crit
        case .warning: .warn
        case .info: .info
        }
    }

    public func draw(_ ctx: ViewContext, into g: inout Grid, rect: Rect) {
        guard ctx.snapshot != nil else { return drawEmpty(&g, rect, ["Waiting for the first snapshot..."]) }
        guard let a = ctx.currentAnalysis else { return drawEmpty(&g, rect, ["Analysing" + ctx.glyphs.ellipsis]) }
        guard a.findings != nil else {
            return drawEmpty(&g, rect, ["No findings: the analysis layer gives none yet."] + a.limitations)
        }
        let fs = list(a)
        var title = [Span(" \(fs.count) findings", bold: true)]
        if !a.pending.isEmpty { title.append(Span(", \(a.pending.count) being confirmed", .dim)) }
        if let f = filter, !f.isEmpty { title.append(Span("  filter: \(f)", .warn)) }
        title.append(Span("  most severe first; Enter goes to the subject", .dim))
        drawTitle(&g, rect, title)
        if fs.isEmpty {
            var lines = [filter?.isEmpty == false ? "No finding matches the filter (Esc clears it)." : "Nothing to report: no finding is raised."]
            lines += a.limitations.map { "note: " + $0 }
            return drawEmpty(&g, rect.dropTop(2), lines, role: .ok)
        }
        // The list on top, the selected finding's details under it.
        let body = rect.dropTop(1)
        let listHeight = min(fs.count + 1, max(4, body.height / 2 - 1))
        let listRect = Rect(x: body.x, y: body.y, width: body.width, height: listHeight)
        visibleRows = max(1, listHeight - 1)
        cursor.clamp(count: fs.count, visible: visibleRows)
        let rows = fs.map { f in
            TableRow([
                .styled(f.severity.description.uppercased(), Self.role(f.severity)),
                .text(f.kind.rawValue),
                .text(f.subject),
                .styled(Format.age(ctx.now.timeIntervalSince(f.since)), .dim),
            ])
        }
        let t = Table(Self.columns)
        let widths = t.layout(width: body.width - 1, measuring: rows)
        g.fill(listRect.row(0), role: .header)
        t.render(into: &g, rect: Rect(x: listRect.x + 1, y: listRect.y, width: listRect.width - 1, height: listRect.height), count: rows.count,
                 first: cursor.top, selected: cursor.selected, glyphs: ctx.glyphs, widths: widths) { rows[$0] }
        let detail = Rect(x: body.x, y: listRect.maxY, width: body.width, height: body.maxY - listRect.maxY)
        drawDetail(fs[cursor.selected], into: &g, rect: detail, ctx)
    }

    func drawDetail(_ f: Finding, into g: inout Grid, rect: Rect, _ ctx: ViewContext) {
        guard rect.height > 1 else { return }
        g.put(String(repeating: ctx.glyphs.hline, count: rect.width), x: rect.x, y: rect.y, role: .dim)
        var lines: [[Span]] = []
        let w = rect.width - 2
        lines.append([Span(f.severity.description.uppercased() + " ", Self.role(f.severity), bold: true), Span(f.kind.rawValue + ": ", bold: true), Span(f.subject)])
        for l in wrap(f.explanation, w) { lines.append([Span(l)]) }
        if !f.evidence.isEmpty {
            var ev: [String] = []
            for e in f.evidence { ev.append("\(e.name)=\(Self.text(e.value))") }
            let wrapped = wrap(ev.joined(separator: "  "), w - 10)
            for (i, l) in wrapped.enumerated() { lines.append([Span(i == 0 ? "evidence  " : "          ", .dim), Span(l, .info)]) }
        }
        let adv = wrap(f.advice, w - 10)
        for (i, l) in adv.enumerated() { lines.append([Span(i == 0 ? "advice    " : "          ", .dim), Span(l, .ok)]) }
        lines.append([Span("key       ", .dim), Span(f.key, .dim)])
        for (i, l) in lines.enumerated() where i + 1 < rect.height {
            g.put(l, x: rect.x + 1, y: rect.y + 1 + i, limit: rect.width - 1)
        }
    }

    static func text(_ v: Evidence.Value) -> String {
        switch v {
        case .int(let n): String(n)
        case .number(let d): d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : Self.trimmed(Format.fixed(d, abs(d) < 10 ? 3 : 1))
        case .text(let s): s
        case .texts(let a): a.joined(separator: ",")
        case .unknown: "?"
        }
    }

    /// `0.500` as `0.5`, `2.000` as `2`.
    static func trimmed(_ s: String) -> String {
        guard s.contains(".") else { return s }
        var t = s
        while t.hasSuffix("0") { t.removeLast() }
        if t.hasSuffix(".") { t.removeLast() }
        return t
    }

    /// Where Enter takes a finding: its client, its real server or service, the kernel.
    func target(_ f: Finding, _ s: Snapshot?) -> Jump {
        let parts = f.key.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        let svc = parts.count > 1 ? parts[1] : ""
        let rs = parts.count > 2 && !parts[2].isEmpty ? parts[2] : nil
        let client = parts.count > 3 && !parts[3].isEmpty ? parts[3] : nil
        switch f.kind {
        case .tablePressure, .sync:
            return .filtered(.kernel, "")
        case .templateOverstay:
            var flt = "svc:\(svc)"
            if let rs { flt += " rs:\(rs)" }
            if let client { flt += " client:\(client)" }
            return .filtered(.templates, flt)
        case .rogueClient where client != nil:
            var flt = "client:\(client!)"
            if let rs { flt += " rs:\(rs)" }
            return .filtered(.clients, flt)
        default:
            if let services = s?.services, services.contains(where: { $0.id == svc }) {
                return .service(svc, realServer: rs)
            }
            return .filtered(.connections, rs.map { "rs:\($0)" } ?? "")
        }
    }

    public func handle(_ key: Key, _ ctx: ViewContext) -> KeyResult {
        guard let a = ctx.currentAnalysis else { return .ignored }
        let fs = list(a)
        if moveCursor(&cursor, key, count: fs.count, visible: visibleRows) { return .handled }
        if key == .enter, cursor.selected < fs.count {
            return .jump(target(fs[cursor.selected], ctx.snapshot))
        }
        return .ignored
    }
}

/// Splits text into lines of at most `width` columns at spaces.
func wrap(_ text: String, _ width: Int) -> [String] {
    guard width > 4 else { return [text] }
    var out: [String] = []
    for para in text.split(separator: "\n", omittingEmptySubsequences: false) {
        var line = ""
        for word in para.split(separator: " ") {
            if line.isEmpty {
                line = String(word)
            } else if line.columns + 1 + word.unicodeScalars.count <= width {
                line += " " + word
            } else {
                out.append(line)
                line = String(word)
            }
            while line.columns > width {
                out.append(String(String.UnicodeScalarView(line.unicodeScalars.prefix(width))))
                line = String(String.UnicodeScalarView(line.unicodeScalars.dropFirst(width)))
            }
        }
        out.append(line)
    }
    return out
}
