import FoundationEssentials
import IPVSAnalysis
import IPVSFeed
import IPVSModel

/// Screen 3: clients and persistence groups ranked by connections (the analysis layer's
/// aggregations), with their templates and the real servers they are pinned to; rogue
/// clients carry the analysis' finding.
public final class ClientsScreen: Screen {
    public let id = ScreenID.clients
    public var filter: String? = ""
    public var filterHelp: String { "client:198.51.100. or 172.16.5.0/24, rs:192.168.1.3, svc:8080" }
    public var filterFields: [FilterTerms.Field] { [.client, .service, .realServer] }
    var cursor = ListCursor()
    var visibleRows = 10
    var sort = SortState(keys: ["connections", "templates", "client", "real servers"], defaultDescending: [true, true, false, true])

    enum Item: Equatable {
        case client(Int)
        case group(Int)
    }

    struct CacheKey: Equatable {
        var analysed: Date
        var filter: String
        var sort: SortState
    }
    var cacheKey: CacheKey?
    var cache: [Item] = []
    var total = 0
    /// The analysis' clients, written out once per analysis: `Aggregates.clients` computes
    /// each one when asked, and a sort asks many times.
    var clientsOf: (analysed: Date, clients: [ClientAggregate])?

    public init() {}

    static let columns: [Column] = [
        Column("Client / persistence group", width: 18, maxWidth: 44, flex: true, flexMax: 6, whole: true),
        Column("Conns", .right, width: 5, maxWidth: 10),
        Column("Active", .right, width: 6, maxWidth: 10, priority: 70),
        Column("InAct", .right, width: 5, maxWidth: 10, priority: 60),
        Column("Tmpl", .right, width: 4, maxWidth: 10, priority: 80),
        Column("Real servers (conns)", width: 20, flex: true),
        Column("Notes", width: 12, maxWidth: 30, priority: 90),
    ]

    /// Client `i` of the analysis being shown.
    func client(_ i: Int, _ agg: Aggregates) -> ClientAggregate {
        if let c = clientsOf?.clients, i < c.count, c[i].index == i { return c[i] }
        return agg.clients[i]
    }

    func name(_ it: Item, _ agg: Aggregates) -> String {
        switch it {
        case .client(let i): client(i, agg).address.description
        case .group(let i): agg.groups[i].name
        }
    }

    func conns(_ it: Item, _ agg: Aggregates) -> StateCounts {
        switch it {
        case .client(let i): client(i, agg).connections
        case .group(let i): agg.groups[i].connections
        }
    }

    func templates(_ it: Item, _ agg: Aggregates) -> Int {
        switch it {
        case .client(let i): client(i, agg).templates
        case .group(let i): agg.groups[i].templates
        }
    }

    /// (destination, connections, templates) of an item, busiest first.
    func loads(_ it: Item, _ agg: Aggregates) -> [(Int, Int, Int)] {
        var out: [(Int, Int, Int)]
        switch it {
        case .client(let i): out = agg.loads(of: client(i, agg)).map { ($0.destination, $0.connections.total, $0.templates) }
        case .group(let i): out = agg.loads(of: agg.groups[i]).map { ($0.destination, $0.connections.total, $0.templates) }
        }
        return out.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
    }

    func items(_ ctx: ViewContext, _ a: Analysed, _ s: Snapshot) -> [Item] {
        let key = CacheKey(analysed: a.takenAt, filter: filter ?? "", sort: sort)
        if key == cacheKey { return cache }
        let agg = a.aggregates
        if clientsOf?.analysed != a.takenAt { clientsOf = (a.takenAt, Array(agg.clients)) }
        let clientRows = clientsOf!.clients
        var all: [Item] = agg.groups.indices.map { .group($0) } + agg.clients.indices.map { .client($0) }
        total = all.count
        let terms = FilterTerms(filter ?? "")
        if !terms.isEmpty {
            let clients = (terms.values(.client) + terms.values(.text)).map(AddressMatcher.init)
            let rss = terms.values(.realServer), svcs = terms.values(.service).map { $0.lowercased() }
            all = all.filter { it in
                let address: IPAddress
                switch it {
                case .client(let i): address = clientRows[i].address
                case .group(let i): address = agg.groups[i].address
                }
                guard clients.allSatisfy({ $0.matches(address) }) else { return false }
                let ls = loads(it, agg)
                return rss.allSatisfy { r in ls.contains { agg.realServerName(agg.destinations[$0.0], in: s).contains(r) } }
                    && svcs.allSatisfy { v in ls.contains { agg.serviceName(agg.destinations[$0.0], in: s).lowercased().contains(v) } }
            }
        }
        let desc = sort.descending
        func addr(_ it: Item) -> IPAddress {
            switch it {
            case .client(let i): clientRows[i].address
            case .group(let i): agg.groups[i].address
            }
        }
        func tie(_ x: Item, _ y: Item) -> Bool {
            let a = conns(x, agg).total, b = conns(y, agg).total
            if a != b { return a > b }
            if addr(x) != addr(y) { return addr(x) < addr(y) }
            if case .group = x, case .client = y { return true }
            return false
        }
        // Each item's key once, not once per comparison.
        func by<T: Comparable>(_ f: (Item) -> T) {
            let keyed = all.map { ($0, f($0)) }
            all = keyed.sorted { x, y in
                if x.1 != y.1 { return desc ? x.1 > y.1 : x.1 < y.1 }
                return tie(x.0, y.0)
            }.map(\.0)
        }
        switch sort.index {
        case 0: by { conns($0, agg).total }
        case 1: by { templates($0, agg) }
        case 2: by { addr($0) }
        default: by { loads($0, agg).count }
        }
        cacheKey = key
        cache = all
        return all
    }

    /// Findings about a client or group.
    func findings(_ a: Analysed, _ name: String) -> [Finding] {
        (a.findings ?? []).filter { $0.about.client == name }
    }

    public func draw(_ ctx: ViewContext, into g: inout Grid, rect: Rect) {
        guard let shown = ctx.snapshot else { return drawEmpty(&g, rect, ["Waiting for the first snapshot..."]) }
        guard shown.connections != nil else { return drawEmpty(&g, rect, ["The connection table has not been read yet: clients live there."]) }
        guard let a = ctx.currentAnalysis, a.aggregates.hasTable else {
            return drawEmpty(&g, rect, ["Analysing the connection table" + ctx.glyphs.ellipsis])
        }
        let s = a.snapshot
        let agg = a.aggregates
        let items = items(ctx, a, s)
        var title = [Span(" \(Format.count(agg.clients.count, exact: true)) clients, \(agg.groups.count) persistence groups", bold: true)]
        if let f = filter, !f.isEmpty { title.append(Span("  filter: \(f) (\(items.count) of \(total))", .warn)) }
        title.append(Span("  sort: \(sort.name) (s)", .dim))
        drawTitle(&g, rect, title)
        let body = rect.dropTop(1)
        visibleRows = max(1, body.height - 1)
        cursor.clamp(count: items.count, visible: visibleRows)
        let t = Table(Self.columns, sortColumn: [1, 4, 0, 5][sort.index], ascending: !sort.descending)
        let visible = Array(items[min(cursor.top, items.count)..<min(items.count, cursor.top + visibleRows)])
        let rows = visible.map { row($0, a, s, ctx) }
        let widths = t.layout(width: body.width - 1, measuring: rows)
        g.fill(body.row(0), role: .header)
        t.render(into: &g, rect: Rect(x: body.x + 1, y: body.y, width: body.width - 1, height: body.height), count: items.count,
                 first: cursor.top, selected: cursor.selected, glyphs: ctx.glyphs, widths: widths) { rows[$0 - self.cursor.top] }
        if items.isEmpty { drawEmpty(&g, body.dropTop(1), [total == 0 ? "No client in the table." : "No client matches the filter (Esc clears it)."]) }
    }

    func row(_ it: Item, _ a: Analysed, _ s: Snapshot, _ ctx: ViewContext) -> TableRow {
        let agg = a.aggregates
        let c = conns(it, agg)
        var label = [Span(name(it, agg))]
        if case .group(let i) = it {
            let gr = agg.groups[i]
            label.append(Span(" group of \(gr.clients)", .info))
        }
        var servers: [Span] = []
        for (k, l) in loads(it, agg).prefix(4).enumerated() {
            let d = agg.destinations[l.0]
            if k > 0 { servers.append(Span(", ", .dim)) }
            servers.append(Span(agg.realServerName(d, in: s), d.isLive ? .normal : .crit))
            servers.append(Span(" \(Format.count(l.1, exact: ctx.exact))", .dim))
        }
        let fs = findings(a, name(it, agg))
        let notes = fs.map { Span(ctx.glyphs.flag + $0.kind.rawValue, $0.severity == .critical ? .crit : .warn) }
        return TableRow([
            .spans(label),
            .text(Format.count(c.total, exact: ctx.exact)),
            .text(Format.count(c.active, exact: ctx.exact)),
            .text(Format.count(c.inactive, exact: ctx.exact)),
            .text(Format.count(templates(it, agg), exact: ctx.exact)),
            .spans(servers),
            .spans(notes),
        ])
    }

    public func handle(_ key: Key, _ ctx: ViewContext) -> KeyResult {
        guard let a = ctx.currentAnalysis, a.aggregates.hasTable else { return .ignored }
        let s = a.snapshot
        let items = items(ctx, a, s)
        if moveCursor(&cursor, key, count: items.count, visible: visibleRows) { return .handled }
        if sort.handle(key) { cursor.selected = 0; return .handled }
        if key == .enter, cursor.selected < items.count {
            switch items[cursor.selected] {
            case .client(let i):
                return .jump(.filtered(.connections, "client:\(a.aggregates.clients[i].address)"))
            case .group(let i):
                let gr = a.aggregates.groups[i]
                return .jump(.filtered(.connections, "svc:\(s.services[gr.service].id) client:\(gr.name)"))
            }
        }
        return .ignored
    }
}
