import FoundationEssentials
import IPVSAnalysis
import IPVSFeed
import IPVSModel

/// Screen 5: the analysis layer's findings, most severe first, with the selected one's
/// explanation, evidence and advice; Enter jumps to its subject.
public final class FindingsScreen: Screen {
    public let id = ScreenID.findings
    public var filter: String? = ""
    public var filterHelp: String { "svc:10.0.0.100:443 rs:192.168.1.6 client:198.51. or text in the kind, subject or key" }
    public var filterFields: [FilterTerms.Field] { [.client, .service, .realServer] }
    var cursor = ListCursor()
    var visibleRows = 10

    public init() {}

    static let columns: [Column] = [
        Column("Severity", width: 8, maxWidth: 9),
        Column("Kind", width: 16, maxWidth: 18),
        Column("Subject", width: 30, flex: true),
        Column("Since", .right, width: 8, priority: 50),
    ]

    /// The raised findings, worst first, then those still being confirmed (the analysis's
    /// `pending`: seen, not yet raised), each group in the same order.
    /// The key of the finding under the cursor.
    var selectedKey: String?

    func list(_ a: Analysed) -> [Finding] {
        func order(_ x: Finding, _ y: Finding) -> Bool {
            if x.severity != y.severity { return x.severity > y.severity }
            if x.kind != y.kind { return x.kind < y.kind }
            return x.key < y.key
        }
        let all = (a.findings ?? []).sorted(by: order) + a.pending.sorted(by: order)
        let terms = FilterTerms(filter ?? "")
        guard !terms.isEmpty else { return all }
        let texts = terms.values(.text).map { $0.lowercased() }
        let svcs = terms.values(.service).map { $0.lowercased() }
        let rss = terms.values(.realServer).map { $0.lowercased() }
        let clients = terms.values(.client).map { $0.lowercased() }
        // A finding's key is kind/service/real server/client.
        return all.filter { f in
            let parts = f.key.lowercased().split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
            func part(_ i: Int) -> String { i < parts.count ? parts[i] : "" }
            let hay = (f.kind.rawValue + " " + f.subject + " " + f.key).lowercased()
            return texts.allSatisfy { hay.contains($0) } && svcs.allSatisfy { part(1).contains($0) }
                && rss.allSatisfy { part(2).contains($0) } && clients.allSatisfy { part(3).hasPrefix($0) }
        }
    }

    /// True for a finding the analysis has seen but not raised yet (its id is 0).
    static func isPending(_ f: Finding, _ a: Analysed) -> Bool {
        a.pending.contains { $0.key == f.key && $0.kind == f.kind }
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
        let raised = fs.count - fs.filter { Self.isPending($0, a) }.count
        title = [Span(" \(raised) findings", bold: true)]
        if !a.pending.isEmpty { title.append(Span(", \(a.pending.count) being confirmed (listed last, as severity?)", .dim)) }
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
        // The cursor follows its finding when the list changes under it (a finding raised
        // or cleared while a drill-down was open): Esc comes back to the same one.
        if let k = selectedKey, !(cursor.selected < fs.count && fs[cursor.selected].key == k), let i = fs.firstIndex(where: { $0.key == k }) {
            cursor.selected = i
        }
        cursor.clamp(count: fs.count, visible: visibleRows)
        selectedKey = fs[cursor.selected].key
        let rows = fs.map { f in
            // A finding still being confirmed: dim, its severity with a question mark.
            Self.isPending(f, a)
                ? TableRow([.text(f.severity.description.uppercased() + "?"), .text(f.kind.rawValue), .text(f.subject),
                            .text(Format.age(ctx.now.timeIntervalSince(f.since)))], role: .dim)
                : TableRow([
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
        drawDetail(fs[cursor.selected], pending: Self.isPending(fs[cursor.selected], a), into: &g, rect: detail, ctx)
    }

    func drawDetail(_ f: Finding, pending: Bool = false, into g: inout Grid, rect: Rect, _ ctx: ViewContext) {
        guard rect.height > 1 else { return }
        g.put(String(repeating: ctx.glyphs.hline, count: rect.width), x: rect.x, y: rect.y, role: .dim)
        var lines: [[Span]] = []
        let w = rect.width - 2
        // The subject wraps: an address or number at the edge is never cut.
        let sev = f.severity.description.uppercased() + (pending ? " (being confirmed) " : " ")
        let head = wrap(f.kind.rawValue + ": " + f.subject, w - sev.columns)
        for (i, l) in head.enumerated() {
            lines.append([Span(i == 0 ? sev : String(repeating: " ", count: sev.columns), Self.role(f.severity), bold: true), Span(l, bold: i == 0)])
        }
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
        let svc = f.about.service ?? ""
        let rs = f.about.realServer, client = f.about.client
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
        if moveCursor(&cursor, key, count: fs.count, visible: visibleRows) {
            selectedKey = cursor.selected < fs.count ? fs[cursor.selected].key : nil
            return .handled
        }
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
            // A word longer than the line (an IPv6 endpoint, a long key) breaks between
            // its numbers, never inside one (see `String.cutPoint`).
            while line.columns > width {
                let scalars = Array(line.unicodeScalars)
                let n = String.cutPoint(scalars, width)
                // A number wider than the line: whole on its own line, which the drawing
                // then cuts to an ellipsis (shown whole or not at all).
                if n == 0 { break }
                out.append(String(String.UnicodeScalarView(scalars.prefix(n))))
                line = String(String.UnicodeScalarView(scalars.dropFirst(n)))
            }
        }
        out.append(line)
    }
    return out
}
