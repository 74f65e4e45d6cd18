import FoundationEssentials
import IPVSAnalysis
import IPVSFeed
import IPVSModel

/// Screen 2: persistence templates, their time left ticking down between polls, the
/// real server each pins its client (or group) to, and the connections each controls.
public final class TemplatesScreen: Screen {
    public let id = ScreenID.templates
    public var filter: String? = ""
    public var filterHelp: String { "svc:tcp:10.0.0.100:443 rs:192.168.1.6 client:198.51. (or a client prefix)" }
    var cursor = ListCursor()
    var visibleRows = 10
    var sort = SortState(keys: ["time left", "connections", "client", "service", "real server"],
                         defaultDescending: [false, true, false, false, false])

    /// One template, whichever layer gave it.
    struct Item {
        var entry: Int
        var service: ServiceKey?
        var realServer: String
        var controlled: Int
        var timeout: UInt32?
        var pastTimeout: Bool?
    }

    struct CacheKey: Equatable {
        var tableReadAt: Date?
        var entries: Int
        var analysed: Date?
        var filter: String
        var sort: SortState
    }
    var cacheKey: CacheKey?
    var cache: [Item] = []
    var total = 0

    public init() {}

    static let columns: [Column] = [
        Column("Client / group", width: 15, maxWidth: 39, flex: true, flexMax: 8, whole: true),
        Column("Service", width: 21, maxWidth: 44, priority: 80),
        Column("Real server", width: 18, maxWidth: 44),
        Column("Left", .right, width: 5, maxWidth: 8),
        Column("Timeout", .right, width: 7, maxWidth: 8, priority: 50),
        Column("Conns", .right, width: 5, maxWidth: 10),
        Column("State", width: 7, priority: 40),
        Column("Notes", width: 10, flex: true, priority: 60),
    ]

    /// The snapshot the list comes from: the analysed one when the analysis has a table
    /// (its templates carry the analysis' verdicts), else the one shown.
    func source(_ ctx: ViewContext) -> Snapshot? {
        if let a = ctx.currentAnalysis, a.aggregates.hasTable { return a.snapshot }
        return ctx.snapshot?.connections != nil ? ctx.snapshot : nil
    }

    func items(_ ctx: ViewContext) -> [Item] {
        guard let s = source(ctx), let table = s.connections else { return [] }
        let a = ctx.currentAnalysis.flatMap { $0.aggregates.hasTable ? $0 : nil }
        let key = CacheKey(tableReadAt: table.readAt, entries: table.entries.count, analysed: a?.takenAt, filter: filter ?? "", sort: sort)
        if key == cacheKey { return cache }
        var all: [Item]
        if let a {
            all = a.aggregates.templates.map {
                Item(entry: $0.summary.entryIndex, service: $0.summary.service, realServer: $0.summary.realServer,
                     controlled: $0.summary.controlledConns, timeout: $0.timeout, pastTimeout: $0.pastTimeout)
            }
        } else {
            // Not analysed yet: the same aggregation, without the analysis' memory of ages.
            all = Aggregates(s).templates.map {
                Item(entry: $0.summary.entryIndex, service: $0.summary.service, realServer: $0.summary.realServer,
                     controlled: $0.summary.controlledConns, timeout: $0.timeout, pastTimeout: nil)
            }
        }
        total = all.count
        let terms = FilterTerms(filter ?? "")
        if !terms.isEmpty {
            let clients = (terms.values(.client) + terms.values(.text)).map(AddressMatcher.init)
            let svcs = terms.values(.service).map { $0.lowercased() }
            let rss = terms.values(.realServer)
            let states = terms.values(.state).map { $0.uppercased() }
            let protos = terms.values(.proto).map { $0.lowercased() }
            all = all.filter { it in
                let e = table.entries[it.entry]
                let sid = it.service?.description ?? "(deleted)"
                return clients.allSatisfy { $0.matches(e.client) }
                    && svcs.allSatisfy { v in sid.lowercased().contains(v) || (it.service.map { Format.service($0).lowercased().contains(v) } ?? false) }
                    && rss.allSatisfy { it.realServer.contains($0) }
                    && states.allSatisfy { e.state.name.hasPrefix($0) }
                    && protos.allSatisfy { $0 == e.proto.name || ($0 == "fwm" && e.fwmark != nil) }
            }
        }
        let entries = table.entries
        let desc = sort.descending
        func ordered(_ a: Item, _ b: Item, _ primary: (Item, Item) -> Bool?) -> Bool {
            if let r = primary(a, b) { return desc ? !r : r }
            // Ties: most connections, then least time left, then client.
            if a.controlled != b.controlled { return a.controlled > b.controlled }
            let x = entries[a.entry], y = entries[b.entry]
            if x.expires != y.expires { return x.expires < y.expires }
            return x.client < y.client
        }
        switch sort.index {
        case 0: all.sort { ordered($0, $1) { a, b in entries[a.entry].expires == entries[b.entry].expires ? nil : entries[a.entry].expires < entries[b.entry].expires } }
        case 1: all.sort { ordered($0, $1) { a, b in a.controlled == b.controlled ? nil : a.controlled < b.controlled } }
        case 2: all.sort { ordered($0, $1) { a, b in entries[a.entry].client == entries[b.entry].client ? nil : entries[a.entry].client < entries[b.entry].client } }
        case 3: all.sort { ordered($0, $1) { a, b in a.service == b.service ? nil : Self.less(a.service, b.service) } }
        default: all.sort { ordered($0, $1) { a, b in a.realServer == b.realServer ? nil : a.realServer < b.realServer } }
        }
        cacheKey = key
        cache = all
        return all
    }

    static func less(_ a: ServiceKey?, _ b: ServiceKey?) -> Bool {
        switch (a, b) {
        case (nil, _): return false
        case (_, nil): return true
        case (let x?, let y?): return x < y
        }
    }

    public func draw(_ ctx: ViewContext, into g: inout Grid, rect: Rect) {
        guard ctx.snapshot != nil else { return drawEmpty(&g, rect, ["Waiting for the first snapshot..."]) }
        guard let s = source(ctx), let table = s.connections else {
            return drawEmpty(&g, rect, ["The connection table has not been read yet: templates live there."])
        }
        let items = items(ctx)
        var title = [Span(" \(Format.count(items.count, exact: true)) persistence templates", bold: true)]
        if let f = filter, !f.isEmpty { title.append(Span(" of \(total)  filter: \(f)", .warn)) }
        title.append(Span("  sort: \(sort.name) (s)", .dim))
        drawTitle(&g, rect, title)
        let body = rect.dropTop(1)
        visibleRows = max(1, body.height - 1)
        cursor.clamp(count: items.count, visible: visibleRows)
        let columnOfSort = [3, 5, 0, 1, 2][sort.index]
        let t = Table(Self.columns, sortColumn: columnOfSort, ascending: !sort.descending)
        let visible = Array(items[min(cursor.top, items.count)..<min(items.count, cursor.top + visibleRows)])
        let rows = visible.map { row($0, table, ctx) }
        let widths = t.layout(width: body.width - 1, measuring: rows)
        g.fill(body.row(0), role: .header)
        t.render(into: &g, rect: Rect(x: body.x + 1, y: body.y, width: body.width - 1, height: body.height), count: items.count,
                 first: cursor.top, selected: cursor.selected, glyphs: ctx.glyphs, widths: widths) { rows[$0 - self.cursor.top] }
        if items.isEmpty {
            drawEmpty(&g, body.dropTop(1), [total == 0 ? "No persistence templates in the table." : "No template matches the filter (Esc clears it)."])
        }
    }

    func row(_ it: Item, _ table: ConnectionTable, _ ctx: ViewContext) -> TableRow {
        let e = table.entries[it.entry]
        let left = ctx.left(e, readAt: table.readAt)
        var notes: [Span] = []
        if it.pastTimeout == true {
            notes.append(Span("past its timeout", .warn))
        } else if it.controlled > 0 && left <= 0 {
            notes.append(Span("kept by its conns", .info))
        }
        if it.service == nil { notes.append(Span("service gone", .crit)) }
        return TableRow([
            .text(e.client.description),
            .text(it.service.map(Format.service) ?? "(deleted)"),
            .text(it.realServer),
            .styled(Format.clock(left), left <= 10 ? .warn : .normal),
            .styled(it.timeout.map { Format.clock(Int($0)) } ?? "-", .dim),
            .text(Format.count(it.controlled, exact: ctx.exact)),
            .styled(e.state.name, .dim),
            .spans(notes),
        ])
    }

    public func handle(_ key: Key, _ ctx: ViewContext) -> KeyResult {
        let items = items(ctx)
        if moveCursor(&cursor, key, count: items.count, visible: visibleRows) { return .handled }
        if sort.handle(key) { cursor.selected = 0; return .handled }
        if key == .enter, cursor.selected < items.count, let table = source(ctx)?.connections {
            let it = items[cursor.selected]
            let e = table.entries[it.entry]
            // The connections this template controls: its service, its real server, and
            // its client (the group's network when the service has a netmask).
            var f = "rs:\(it.realServer)"
            if let s = it.service { f = "svc:\(s.description) " + f }
            if let svc = source(ctx)?.services.first(where: { $0.key == it.service }), let p = svc.persistence, p.netmask.groupsClients {
                let bits: Int
                switch p.netmask {
                case .ipv4(let m): bits = m.nonzeroBitCount
                case .prefix(let n): bits = n
                }
                f += " client:\(e.client)/\(bits)"
            } else {
                f += " client:\(e.client)"
            }
            return .jump(.filtered(.connections, f))
        }
        return .ignored
    }
}
