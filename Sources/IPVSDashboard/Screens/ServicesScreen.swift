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
    public var filterHelp: String { "svc:tcp:10.0.0.100:80 rs:192.168.1.3 proto:udp, or text in a service or real server" }
    public var filterFields: [FilterTerms.Field] { [.service, .realServer, .proto] }
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

    /// The columns, and the order they leave a narrow terminal in (the `priority`, lowest
    /// first): bytes/s, packets/s, scheduler and forwarding method, PersistConn, CPS, Share.
    /// The name (address), weight, ActiveConn, InActConn and Notes never leave. The name
    /// column is as wide as its widest name, whatever the Notes hold, so that it does not
    /// move when a badge appears. Number columns are wide enough for every digit of the
    /// largest value (`x`): a number is shown whole or its column left out.
    static let columns: [Column] = [
        Column("Service / real server", width: 21, maxWidth: 60, flex: true, flexMax: 0, whole: true),
        Column("Sched", width: 5, maxWidth: 8, priority: 60),
        Column("Wt", .right, width: 2, maxWidth: 6),
        Column("ActConn", .right, width: 5, maxWidth: 20),
        Column("InAct", .right, width: 5, maxWidth: 20),
        Column("Persist", .right, width: 5, maxWidth: 20, priority: 70),
        Column("CPS", .right, width: 4, maxWidth: 20, priority: 80),
        Column("InPPS", .right, width: 5, maxWidth: 20, priority: 40),
        Column("OutPPS", .right, width: 5, maxWidth: 20, priority: 39),
        Column("InBPS", .right, width: 5, maxWidth: 20, priority: 38),
        Column("OutBPS", .right, width: 5, maxWidth: 20, priority: 37),
        Column("Share", width: 10, maxWidth: 12, priority: 85),
        Column("Notes", width: 12, maxWidth: 40, flex: true),
    ]

    /// With `c`: the cumulative counters of `ipvsadm -L --stats` (since the service or real
    /// server was added, or the counters zeroed) in place of the rates, and a real server's
    /// thresholds (`ipvsadm -x` upper, `-y` lower; 0 is none) in place of the share.
    static let statsColumns: [Column] = {
        var c = columns
        c[6] = Column("Conns", .right, width: 5, maxWidth: 20, priority: 80)
        c[7] = Column("InPkts", .right, width: 6, maxWidth: 20, priority: 40)
        c[8] = Column("OutPkts", .right, width: 7, maxWidth: 20, priority: 39)
        c[9] = Column("InBytes", .right, width: 7, maxWidth: 20, priority: 38)
        c[10] = Column("OutBytes", .right, width: 8, maxWidth: 20, priority: 37)
        c[11] = Column("-x/-y", .right, width: 5, maxWidth: 21, priority: 85)
        return c
    }()

    /// Cumulative counters and thresholds instead of rates and shares (`c`).
    var showStats = false
    /// The selected real server's last minutes under the table (`H`).
    var showHistory = false

    func rows(_ ctx: ViewContext) -> [(RowKind, TableRow)] {
        guard let s = ctx.snapshot else { return [] }
        let a = ctx.currentAnalysis
        let g = ctx.glyphs
        let terms = FilterTerms(filter ?? "")
        let texts = terms.values(.text).map { $0.lowercased() }
        let svcTerms = terms.values(.service).map { $0.lowercased() }
        let rsTerms = terms.values(.realServer).map { $0.lowercased() }
        let protoTerms = terms.values(.proto).map { $0.lowercased() }
        var out: [(RowKind, TableRow)] = []
        func num<I: BinaryInteger>(_ v: I?) -> Content {
            guard let v else { return .styled("-", .dim) }
            return .text(Format.count(v, exact: ctx.exact))
        }
        func rate(_ r: TrafficRates?, _ k: KeyPath<TrafficRates, Double>) -> Content {
            guard let r else { return .styled("-", .dim) }
            return .text(Format.rate(r[keyPath: k], exact: ctx.exact))
        }
        // The five traffic cells: rates, or with `c` the cumulative counters.
        func traffic(_ r: TrafficRates?, _ st: TrafficStats?) -> [Content] {
            guard showStats else {
                return [rate(r, \.cps), rate(r, \.inPPS), rate(r, \.outPPS), rate(r, \.inBPS), rate(r, \.outBPS)]
            }
            return [num(st?.conns), num(st?.inPackets), num(st?.outPackets), num(st?.inBytes), num(st?.outBytes)]
        }
        for (si, svc) in s.services.enumerated() {
            let name = Format.service(svc.key)
            let allGone = goneDestinations(svc.id, a)
            // svc: a service's id or name, proto: its protocol (fwm for a mark), rs: one of
            // its real servers (only those are listed), plain text anywhere in it.
            let proto: String
            switch svc.key {
            case .address(let p, _, _): proto = p.name
            case .fwmark: proto = "fwm"
            }
            if !svcTerms.allSatisfy({ svc.id.lowercased().contains($0) || name.lowercased().contains($0) }) { continue }
            if !protoTerms.allSatisfy({ $0 == proto || ($0 == "fwmark" && proto == "fwm") }) { continue }
            if !texts.isEmpty {
                let hay = ([name, svc.id, svc.scheduler] + svc.realServers.map(\.id)).joined(separator: " ").lowercased()
                if !texts.allSatisfy({ hay.contains($0) }) { continue }
            }
            func rsMatches(_ id: String) -> Bool { rsTerms.allSatisfy { id.lowercased().contains($0) } }
            let gone = allGone.filter { d in
                let dest = a!.aggregates.destinations[d]
                return rsMatches(dest.address.endpoint(port: dest.port))
            }
            if !rsTerms.isEmpty && !svc.realServers.contains(where: { rsMatches($0.id) }) && gone.isEmpty { continue }
            let act = svc.activeConns
            let inact = svc.inactiveConns
            let pers = svc.persistentConns
            var serviceCells: [Content] = [
                .spans([Span(name, .group, bold: true)]), .styled(svc.scheduler, .group), .text(""),
                num(act), num(inact), num(pers),
            ] + traffic(svc.rates, svc.stats)
            var notes = [Span(Format.serviceFlags(svc), .info)]
            let svcFindings = findings(a, service: svc.id, realServer: nil)
            if !svcFindings.isEmpty { notes += badges(svcFindings, g) }
            serviceCells.append(.spans(notes))
            out.append((.service(si), TableRow(serviceCells, spanFrom: 11)))

            let total = Double(act + inact)
            let totalWeight = Double(svc.totalWeight)
            let listed = svc.realServers.indices.filter { rsMatches(svc.realServers[$0].id) }
            let n = listed.count + gone.count
            for (k, ri) in listed.enumerated() {
                let rs = svc.realServers[ri]
                let last = k == n - 1
                let conns = Double(rs.activeConns) + Double(rs.inactiveConns)
                let share = total > 0 ? conns / total : 0
                let wshare = totalWeight > 0 ? Double(max(0, rs.weight)) / totalWeight : 0
                var cells: [Content] = [
                    .spans([Span((last ? g.lastBranch : g.branch), .dim), Span(rs.id)]),
                    .text(Format.forward(rs.forward)),
                    .styled("\(rs.weight)", rs.weight == 0 ? .warn : .normal),
                    num(rs.activeConns), num(rs.inactiveConns), num(rs.persistentConns),
                ] + traffic(rs.rates, rs.stats)
                let over = (rs.upperThreshold ?? 0) > 0 && conns >= Double(rs.upperThreshold!)
                if showStats {
                    if let u = rs.upperThreshold, let l = rs.lowerThreshold {
                        cells.append(.styled("\(u)/\(l)", over ? .crit : .normal))
                    } else {
                        cells.append(.styled("-", .dim))
                    }
                } else {
                    cells.append(.meter(Meter(fraction: share, mark: totalWeight > 0 ? wshare : nil, label: Format.percent(share).padded(4, right: true),
                                              role: over ? .crit : .meter)))
                }
                let fs = findings(a, service: svc.id, realServer: rs.id)
                var b = badges(fs, g)
                if over { b.append(Span(g.isUnicode ? "≥uthr" : ">=uthr", .crit)) }
                if rs.weight == 0 && !fs.contains(where: { $0.kind == .quiescentFed }) { b.append(Span("quiescent", .warn)) }
                cells.append(.spans(spaced(b)))
                out.append((.realServer(si, ri), TableRow(cells)))
            }
            for (k, d) in gone.enumerated() {
                let dest = a!.aggregates.destinations[d]
                let last = listed.count + k == n - 1
                var cells: [Content] = [
                    // "gone" beside the address: the Sched column may have left.
                    .spans([Span((last ? g.lastBranch : g.branch), .dim), Span(dest.address.endpoint(port: dest.port) + " gone", .crit)]),
                    .text(""), .text(""),
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
    /// real servers.
    func findings(_ a: Analysed?, service: String, realServer: String?) -> [Finding] {
        guard let fs = a?.findings else { return [] }
        var seen = Set<FindingKind>()
        return fs.filter { f in
            guard f.about.service == service, f.about.realServer == realServer else { return false }
            return seen.insert(f.kind).inserted
        }
    }

    public func draw(_ ctx: ViewContext, into g: inout Grid, rect: Rect) {
        guard let s = ctx.snapshot else {
            drawEmpty(&g, rect, ["Waiting for the first snapshot..."])
            return
        }
        let rows = rows(ctx)
        var title = [Span(" \(s.services.count) virtual services, \(s.realServerCount) real servers", bold: true)]
        if let f = filter, !f.isEmpty { title.append(Span("  filter: \(f) (\(rows.filter { if case .service = $0.0 { true } else { false } }.count) shown)", .warn)) }
        title.append(Span(showStats ? "  cumulative counters (ipvsadm --stats) and thresholds -x/-y; c: rates" : "  c: counters  H: history", .dim))
        drawTitle(&g, rect, title)
        var body = rect.dropTop(1)
        // H: five rows under the table for the selected real server's last minutes.
        var panel: Rect?
        if showHistory, body.height > 10 {
            panel = Rect(x: body.x, y: body.maxY - 5, width: body.width, height: 5)
            body = Rect(x: body.x, y: body.y, width: body.width, height: body.height - 5)
        }
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
        let table = Table(showStats ? Self.statsColumns : Self.columns)
        let widths = table.layout(width: body.width - 1, measuring: rows.map(\.1))
        if let panel { drawHistory(ctx, rows.isEmpty ? nil : rows[cursor.selected].0, into: &g, rect: panel) }
        let inner = Rect(x: body.x + 1, y: body.y, width: body.width - 1, height: body.height)
        g.fill(body.row(0), role: .header)
        table.render(into: &g, rect: inner, count: rows.count, first: cursor.top, selected: cursor.selected, glyphs: ctx.glyphs, widths: widths) { rows[$0].1 }
        if rows.isEmpty { drawEmpty(&g, body.dropTop(1), ["No service matches the filter (Esc clears it)."]) }
    }

    /// The selected real server's last minutes: ActiveConn and new connections/s as
    /// sparklines (oldest left), the weight and when it last changed.
    func drawHistory(_ ctx: ViewContext, _ kind: RowKind?, into g: inout Grid, rect: Rect) {
        g.put(String(repeating: ctx.glyphs.hline, count: rect.width), x: rect.x, y: rect.y, role: .dim)
        guard let s = ctx.snapshot, case .realServer(let si, let ri)? = kind else {
            g.put([Span(" History (H): select a real server", .dim)], x: rect.x, y: rect.y + 1, limit: rect.width)
            return
        }
        let svc = s.services[si], rs = svc.realServers[ri]
        guard let t = ctx.history?.track(service: svc.id, realServer: rs.id) else { return }
        let samples = t.samples
        let x = ctx.exact
        let span = samples.count > 1 ? Format.age(samples.last!.time.timeIntervalSince(samples.first!.time)) : "one poll"
        let label = 14
        let room = max(10, rect.width - 2 - label - 32)
        let shown = Array(samples.suffix(room))
        func line(_ y: Int, _ name: String, _ values: [Double?], _ tail: String) {
            g.put([Span(name.padded(label), .dim), Span(RealServerHistory.sparkline(values, glyphs: ctx.glyphs), .meter), Span("  " + tail)],
                  x: rect.x + 1, y: rect.y + y, limit: rect.width - 2)
        }
        g.put([Span(" \(rs.id) of \(svc.id)", bold: true), Span("  last \(span), \(samples.count) polls, oldest left", .dim)],
              x: rect.x, y: rect.y, limit: rect.width)
        let act = shown.map { Double($0.activeConns) }
        line(1, "ActiveConn", act, "now \(Format.count(rs.activeConns, exact: x))  min \(Format.count(UInt64(act.min() ?? 0), exact: x))  max \(Format.count(UInt64(act.max() ?? 0), exact: x))")
        let cps = shown.map(\.cps)
        if cps.allSatisfy({ $0 == nil }) {
            g.put([Span("new conns/s".padded(label), .dim), Span("- (rates need netlink: run as root)", .dim)], x: rect.x + 1, y: rect.y + 2, limit: rect.width - 2)
        } else {
            line(2, "new conns/s", cps, "now " + (rs.rates.map { Format.rate($0.cps, exact: x) } ?? "-")
                 + "  max " + Format.rate(cps.compactMap { $0 }.max() ?? 0, exact: x))
        }
        var w = [Span("weight".padded(label), .dim), Span("\(rs.weight)", bold: true)]
        if let c = t.lastWeightChange {
            w.append(Span("  changed \(c.from) to \(c.to) at " + Format.localTime(c.time) + ", " + Format.age(ctx.now.timeIntervalSince(c.time)) + " ago", .warn))
        } else {
            w.append(Span("  unchanged since first seen at " + Format.localTime(t.firstSeen), .dim))
        }
        g.put(w, x: rect.x + 1, y: rect.y + 3, limit: rect.width - 2)
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
        case .char("H"):
            showHistory.toggle()
            return .message(showHistory ? "the selected real server's last minutes (H hides)" : "history hidden")
        case .char("c"):
            showStats.toggle()
            return .message(showStats ? "cumulative counters (as ipvsadm -L --stats) and thresholds (-x upper / -y lower)" : "rates per second and shares")
        case .char("s"), .char("<"), .char(">"):
            return .message("services are listed in ipvsadm's order; sort on the other screens")
        default:
            return .ignored
        }
    }
}
