import FoundationEssentials
import IPVSAnalysis
import IPVSFeed
import IPVSModel

/// Screen 1: the virtual services and their real servers, like `ipvsadm -Ln` but live,
/// with rates, each real server's share of the connections against its share of the
/// weight, and badges for what needs a look.
public final class ServicesScreen: Screen {
    public let id = ScreenID.services
    public var filter: String? = ""
    public var filterHelp: String { "text in a service or real server (e.g. 10.0.0.100:80, 192.168.1.3, udp)" }
    var cursor = ListCursor()
    var visibleRows = 10
    /// The row to put the cursor on at the next draw (a jump from another screen).
    var focus: (service: String, realServer: String?)?

    enum RowKind: Equatable {
        case service(Int)
        case realServer(Int, Int)
        /// A destination the table still sends to, gone from the service (index into
        /// the aggregates' destinations).
        case gone(Int, Int)
    }

    public init() {}

    static let columns: [Column] = [
        Column("Service / real server", width: 21, maxWidth: 44, flex: true, flexMax: 10),
        Column("Sched", width: 5, maxWidth: 8, priority: 60),
        Column("Wt", .right, width: 3, maxWidth: 6, priority: 90),
        Column("ActConn", .right, width: 5, maxWidth: 12),
        Column("InAct", .right, width: 5, maxWidth: 12, priority: 95),
        Column("Persist", .right, width: 5, maxWidth: 12, priority: 70),
        Column("CPS", .right, width: 4, maxWidth: 12, priority: 80),
        Column("InPPS", .right, width: 5, maxWidth: 12, priority: 40),
        Column("OutPPS", .right, width: 5, maxWidth: 12, priority: 39),
        Column("InBPS", .right, width: 5, maxWidth: 14, priority: 38),
        Column("OutBPS", .right, width: 5, maxWidth: 14, priority: 37),
        Column("Share", width: 10, maxWidth: 12, priority: 85),
        Column("Notes", width: 14, maxWidth: 40, flex: true),
    ]

    func rows(_ ctx: ViewContext) -> [(RowKind, TableRow)] {
        guard let s = ctx.snapshot else { return [] }
        let a = ctx.currentAnalysis
        let g = ctx.glyphs
        let f = (filter ?? "").lowercased()
        var out: [(RowKind, TableRow)] = []
        func num(_ v: UInt32?) -> Content {
            guard let v else { return .styled("-", .dim) }
            return .text(Format.count(v, exact: ctx.exact))
        }
        func rate(_ r: TrafficRates?, _ k: KeyPath<TrafficRates, Double>) -> Content {
            guard let r else { return .styled("-", .dim) }
            return .text(Format.rate(r[keyPath: k], exact: ctx.exact))
        }
        for (si, svc) in s.services.enumerated() {
            let name = Format.service(svc.key)
            let gone = goneDestinations(svc.id, a)
            if !f.isEmpty {
                let hay = ([name, svc.id, svc.scheduler] + svc.realServers.map(\.id)).joined(separator: " ").lowercased()
                if !hay.contains(f) { continue }
            }
            let act = svc.activeConns
            let inact = svc.inactiveConns
            let pers: UInt32? = svc.persistentConns.map { UInt32(clamping: $0) }
            var serviceCells: [Content] = [
                .spans([Span(name, .group, bold: true)]), .styled(svc.scheduler, .group), .text(""),
                num(UInt32(clamping: act)), num(UInt32(clamping: inact)), num(pers),
                rate(svc.rates, \.cps), rate(svc.rates, \.inPPS), rate(svc.rates, \.outPPS), rate(svc.rates, \.inBPS), rate(svc.rates, \.outBPS),
            ]
            var notes = [Span(Format.serviceFlags(svc), .info)]
            let svcFindings = findings(a, service: svc.id, realServer: nil)
            if !svcFindings.isEmpty { notes += badges(svcFindings, g) }
            serviceCells.append(.spans(notes))
            out.append((.service(si), TableRow(serviceCells, spanFrom: 11)))

            let total = Double(act + inact)
            let totalWeight = Double(svc.totalWeight)
            let n = svc.realServers.count + gone.count
            for (ri, rs) in svc.realServers.enumerated() {
                let last = ri == n - 1
                let conns = Double(rs.activeConns) + Double(rs.inactiveConns)
                let share = total > 0 ? conns / total : 0
                let wshare = totalWeight > 0 ? Double(max(0, rs.weight)) / totalWeight : 0
                var cells: [Content] = [
                    .spans([Span((last ? g.lastBranch : g.branch), .dim), Span(rs.id)]),
                    .text(Format.forward(rs.forward)),
                    .styled("\(rs.weight)", rs.weight == 0 ? .warn : .normal),
                    num(rs.activeConns), num(rs.inactiveConns), num(rs.persistentConns),
                    rate(rs.rates, \.cps), rate(rs.rates, \.inPPS), rate(rs.rates, \.outPPS), rate(rs.rates, \.inBPS), rate(rs.rates, \.outBPS),
                ]
                let over = (rs.upperThreshold ?? 0) > 0 && conns >= Double(rs.upperThreshold!)
                cells.append(.meter(Meter(fraction: share, mark: totalWeight > 0 ? wshare : nil, label: Format.percent(share).padded(4, right: true),
                                          role: over ? .crit : .meter)))
                let fs = findings(a, service: svc.id, realServer: rs.id)
                var b = badges(fs, g)
                if over { b.append(Span(g.isUnicode ? "≥uthr" : ">=uthr", .crit)) }
                if rs.weight == 0 && !fs.contains(where: { $0.kind == .quiescentFed }) { b.append(Span("quiescent", .warn)) }
                cells.append(.spans(spaced(b)))
                out.append((.realServer(si, ri), TableRow(cells)))
            }
            for (k, d) in gone.enumerated() {
                let dest = a!.aggregates.destinations[d]
                let last = svc.realServers.count + k == n - 1
                var cells: [Content] = [
                    .spans([Span((last ? g.lastBranch : g.branch), .dim), Span(dest.address.endpoint(port: dest.port), .crit)]),
                    .styled("gone", .crit), .text(""),
                    .text(Format.count(dest.connections.active, exact: ctx.exact)),
                    .text(Format.count(dest.connections.inactive, exact: ctx.exact)),
                    .text(Format.count(dest.templates, exact: ctx.exact)),
                ]
                cells += Array(repeating: Content.styled("-", .dim), count: 5)
                cells.append(.empty)
                var b = badges(findings(a, service: svc.id, realServer: dest.address.endpoint(port: dest.port)), g)
                if b.isEmpty { b = [Span("deleted", .crit)] }
                cells.append(.spans(spaced(b)))
                out.append((.gone(si, d), TableRow(cells)))
            }
        }
        return out
    }

    func spaced(_ spans: [Span]) -> [Span] {
        var out: [Span] = []
        for (i, s) in spans.enumerated() {
            if i > 0 { out.append(Span(" ")) }
            out.append(s)
        }
        return out
    }

    /// Destinations of service `si` that are no longer among its real servers but still
    /// have entries in the table.
    func goneDestinations(_ service: String, _ a: Analysed?) -> [Int] {
        guard let a else { return [] }
        return a.aggregates.destinations.indices.filter {
            let d = a.aggregates.destinations[$0]
            guard let si = d.service, d.realServer == nil, si < a.snapshot.services.count else { return false }
            return a.snapshot.services[si].id == service
        }
    }

    func badges(_ fs: [Finding], _ g: Glyphs) -> [Span] {
        fs.map { Span(g.flag + Self.badge($0.kind), $0.severity == .critical ? .crit : ($0.severity == .warning ? .warn : .info)) }
    }

    /// A finding's kind in a few letters, for the narrow Notes column.
    static func badge(_ k: FindingKind) -> String {
        switch k {
        case .rogueClient: "rogue"
        case .imbalance: "imbalance"
        case .quiescentFed: "quiescent fed"
        case .deadDestination: "dead"
        case .templateOverstay: "overstay"
        case .tablePressure: "pressure"
        case .sync: "sync"
        case .serviceDown: "down"
        }
    }

    /// Findings about a service (realServer nil: about the service itself) or one of its
    /// real servers, from their keys (`kind/service/real server/client`).
    func findings(_ a: Analysed?, service: String, realServer: String?) -> [Finding] {
        guard let fs = a?.findings else { return [] }
        var seen = Set<FindingKind>()
        return fs.filter { f in
            let parts = f.key.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
            guard parts.count >= 2, parts[1] == service else { return false }
            let rs = parts.count >= 3 && !parts[2].isEmpty ? parts[2] : nil
            guard rs == realServer else { return false }
            return seen.insert(f.kind).inserted
        }
    }

    public func draw(_ ctx: ViewContext, into g: inout Grid, rect: Rect) {
        guard let s = ctx.snapshot else {
            drawEmpty(&g, rect, ["Waiting for the first snapshot..."])
            return
        }
        let rows = rows(ctx)
        let realServers = s.services.reduce(0) { $0 + $1.realServers.count }
        var title = [Span(" \(s.services.count) virtual services, \(realServers) real servers", bold: true)]
        if let f = filter, !f.isEmpty { title.append(Span("  filter: \(f) (\(rows.filter { if case .service = $0.0 { true } else { false } }.count) shown)", .warn)) }
        drawTitle(&g, rect, title)
        let body = rect.dropTop(1)
        visibleRows = max(1, body.height - 1)
        if let fo = focus {
            focus = nil
            if let i = rows.firstIndex(where: { row in
                switch row.0 {
                case .service(let si): return fo.realServer == nil && s.services[si].id == fo.service
                case .realServer(let si, let ri): return s.services[si].id == fo.service && s.services[si].realServers[ri].id == fo.realServer
                case .gone(let si, let d): return s.services[si].id == fo.service
                    && ctx.currentAnalysis.map { $0.aggregates.destinations[d].address.endpoint(port: $0.aggregates.destinations[d].port) } == fo.realServer
                }
            }) { cursor.selected = i }
        }
        cursor.clamp(count: rows.count, visible: visibleRows)
        if s.services.isEmpty {
            drawEmpty(&g, body, ["IPVS is loaded but has no virtual services (ipvsadm -A to add one)."])
            return
        }
        let table = Table(Self.columns)
        let widths = table.layout(width: body.width - 1, measuring: rows.map(\.1))
        let inner = Rect(x: body.x + 1, y: body.y, width: body.width - 1, height: body.height)
        g.fill(body.row(0), role: .header)
        table.render(into: &g, rect: inner, count: rows.count, first: cursor.top, selected: cursor.selected, glyphs: ctx.glyphs, widths: widths) { rows[$0].1 }
        if rows.isEmpty { drawEmpty(&g, body.dropTop(1), ["No service matches the filter (Esc clears it)."]) }
    }

    public func handle(_ key: Key, _ ctx: ViewContext) -> KeyResult {
        let rows = rows(ctx)
        if moveCursor(&cursor, key, count: rows.count, visible: visibleRows) { return .handled }
        switch key {
        case .enter:
            guard let s = ctx.snapshot, cursor.selected < rows.count else { return .handled }
            switch rows[cursor.selected].0 {
            case .service(let si):
                let svc = s.services[si]
                return .jump(.filtered(svc.persistence != nil ? .templates : .connections, "svc:\(svc.id)"))
            case .realServer(let si, let ri):
                return .jump(.filtered(.connections, "svc:\(s.services[si].id) rs:\(s.services[si].realServers[ri].id)"))
            case .gone(let si, let d):
                guard let dest = ctx.currentAnalysis?.aggregates.destinations[d] else { return .handled }
                return .jump(.filtered(.connections, "svc:\(s.services[si].id) rs:\(dest.address.endpoint(port: dest.port))"))
            }
        case .char("t"):
            guard let s = ctx.snapshot, cursor.selected < rows.count else { return .handled }
            switch rows[cursor.selected].0 {
            case .service(let si): return .jump(.filtered(.templates, "svc:\(s.services[si].id)"))
            case .realServer(let si, let ri): return .jump(.filtered(.templates, "svc:\(s.services[si].id) rs:\(s.services[si].realServers[ri].id)"))
            case .gone: return .handled
            }
        case .char("s"), .char("<"), .char(">"):
            return .message("services are listed in ipvsadm's order; sort on the other screens")
        default:
            return .ignored
        }
    }
}
