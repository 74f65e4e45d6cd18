import FoundationEssentials
import IPVSModel

/// Screen 4: the connection table, filtered and sorted, drawn a page at a time so that
/// 10^6 entries stay responsive: only the rows on screen are formatted.
public final class ConnectionsScreen: Screen {
    public let id = ScreenID.connections
    public var filter: String? = ""
    public var filterHelp: String { "client:10.1. rs:192.168.1.3:80 svc:tcp:10.0.0.100:80 state:est proto:udp" }
    var cursor = ListCursor()
    var visibleRows = 10
    var sort = SortState(keys: ["table order", "client", "time left", "state", "real server", "service"],
                         defaultDescending: [false, false, false, false, false, false])

    struct CacheKey: Equatable {
        var tableReadAt: Date
        var entries: Int
        var filter: String
        var sort: SortState
    }
    var cacheKey: CacheKey?
    /// Entry indices in display order; nil means every entry in table order.
    var view: [Int32]?
    var viewCount = 0
    /// What building the view cost, for the title.
    var viewSeconds = 0.0

    public init() {}

    static let columns: [Column] = [
        Column("", width: 1, maxWidth: 1),
        Column("Pro", width: 4, maxWidth: 6),
        Column("Client", width: 15, maxWidth: 47, flex: true, flexMax: 10, whole: true),
        Column("Virtual", width: 15, maxWidth: 47, priority: 60, whole: true),
        Column("Real server", width: 15, maxWidth: 47, whole: true),
        Column("State", width: 11, maxWidth: 17),
        Column("Left", .right, width: 5, maxWidth: 8),
    ]

    func buildView(_ s: Snapshot, _ table: ConnectionTable) {
        let key = CacheKey(tableReadAt: table.readAt, entries: table.entries.count, filter: filter ?? "", sort: sort)
        if key == cacheKey { return }
        let started = ProcessInfo.processInfo.systemUptime
        cacheKey = key
        let entries = table.entries
        let terms = FilterTerms(filter ?? "")
        if terms.isEmpty && sort.index == 0 && !sort.descending {
            view = nil
            viewCount = entries.count
            viewSeconds = ProcessInfo.processInfo.systemUptime - started
            return
        }
        var idx: [Int32] = []
        if terms.isEmpty {
            idx = (0..<Int32(entries.count)).map { $0 }
        } else {
            idx = filterIndices(s, entries, terms)
        }
        sortIndices(&idx, s, entries)
        view = idx
        viewCount = idx.count
        viewSeconds = ProcessInfo.processInfo.systemUptime - started
    }

    func filterIndices(_ s: Snapshot, _ entries: [ConnectionEntry], _ terms: FilterTerms) -> [Int32] {
        let clientTerms = terms.values(.client).map(AddressMatcher.init)
        let textTerms = terms.values(.text).map(AddressMatcher.init)
        let rsTerms = terms.values(.realServer)
        let svcTerms = terms.values(.service).map { $0.lowercased() }
        let stateTerms = terms.values(.state).map { $0.uppercased() }
        let protoTerms = terms.values(.proto).map { $0.lowercased() }
        let lookup = ServiceLookup(s.services)
        // Per distinct value, once: a table of 10^6 entries has far fewer addresses.
        var clientMemo: [IPAddress: Bool] = [:]
        struct Endpoint: Hashable { var a: IPAddress; var p: UInt16 }
        var rsMemo: [Endpoint: Bool] = [:]
        struct Route: Hashable { var v: IPAddress; var p: UInt16; var proto: UInt8; var d: IPAddress }
        var svcMemo: [Route: Bool] = [:]
        let svcMatch = s.services.map { svc in
            svcTerms.allSatisfy { svc.id.lowercased().contains($0) || Format.service(svc.key).lowercased().contains($0) }
        }
        var stateMatch = [Bool](repeating: true, count: 256)
        if !stateTerms.isEmpty {
            for i in 0..<256 { stateMatch[i] = stateTerms.allSatisfy { ConnectionState(rawValue: UInt8(i)).name.hasPrefix($0) } }
        }
        var protoMatch = [Bool](repeating: true, count: 256)
        if !protoTerms.isEmpty {
            for i in 0..<256 { protoMatch[i] = protoTerms.allSatisfy { $0 == IPProtocolNumber(rawValue: UInt8(i)).name } }
        }
        var out: [Int32] = []
        entries.withUnsafeBufferPointer { buf in
            for i in buf.indices {
                let e = buf[i]
                guard stateMatch[Int(e.state.rawValue)], protoMatch[Int(e.proto.rawValue)] else { continue }
                if !clientTerms.isEmpty || !textTerms.isEmpty {
                    let ok: Bool
                    if let m = clientMemo[e.client] {
                        ok = m
                    } else {
                        ok = clientTerms.allSatisfy { $0.matches(e.client) } && textTerms.allSatisfy { $0.matches(e.client) }
                        clientMemo[e.client] = ok
                    }
                    if !ok { continue }
                }
                if !rsTerms.isEmpty {
                    let k = Endpoint(a: e.destination, p: e.destinationPort)
                    let ok: Bool
                    if let m = rsMemo[k] {
                        ok = m
                    } else {
                        let text = e.destination.endpoint(port: e.destinationPort)
                        let bare = e.destination.description
                        // A port-0 real server (fwmark, all ports) matches any port.
                        ok = rsTerms.allSatisfy { t in
                            text.contains(t) || t == bare || (t.hasSuffix(":0") && (t.dropLast(2) == bare || t.dropLast(2) == "[\(bare)]"))
                        }
                        rsMemo[k] = ok
                    }
                    if !ok { continue }
                }
                if !svcTerms.isEmpty {
                    let k = Route(v: e.virtual, p: e.virtualPort, proto: e.proto.rawValue, d: e.destination)
                    let ok: Bool
                    if let m = svcMemo[k] {
                        ok = m
                    } else {
                        ok = lookup.service(of: e).map { svcMatch[$0] } ?? false
                        svcMemo[k] = ok
                    }
                    if !ok { continue }
                }
                out.append(Int32(i))
            }
        }
        return out
    }

    func sortIndices(_ idx: inout [Int32], _ s: Snapshot, _ entries: [ConnectionEntry]) {
        let desc = sort.descending
        entries.withUnsafeBufferPointer { e in
            switch sort.index {
            case 1:
                idx.sort { a, b in
                    let x = e[Int(a)], y = e[Int(b)]
                    if x.client != y.client { return (x.client < y.client) != desc }
                    return x.clientPort < y.clientPort
                }
            case 2:
                idx.sort { a, b in
                    let x = e[Int(a)].expires, y = e[Int(b)].expires
                    return x != y ? (x < y) != desc : a < b
                }
            case 3:
                idx.sort { a, b in
                    let x = e[Int(a)].state, y = e[Int(b)].state
                    return x != y ? (x.name < y.name) != desc : a < b
                }
            case 4:
                idx.sort { a, b in
                    let x = e[Int(a)], y = e[Int(b)]
                    if x.destination != y.destination { return (x.destination < y.destination) != desc }
                    if x.destinationPort != y.destinationPort { return (x.destinationPort < y.destinationPort) != desc }
                    return a < b
                }
            case 5:
                idx.sort { a, b in
                    let x = e[Int(a)], y = e[Int(b)]
                    if x.virtual != y.virtual { return (x.virtual < y.virtual) != desc }
                    if x.virtualPort != y.virtualPort { return (x.virtualPort < y.virtualPort) != desc }
                    return a < b
                }
            default:
                if desc { idx.reverse() }
            }
        }
    }

    func entryIndex(_ i: Int) -> Int { view.map { Int($0[i]) } ?? i }

    public func draw(_ ctx: ViewContext, into g: inout Grid, rect: Rect) {
        guard let s = ctx.snapshot else { return drawEmpty(&g, rect, ["Waiting for the first snapshot..."]) }
        guard let table = s.connections else {
            return drawEmpty(&g, rect, ["The connection table has not been read yet (it is read in the background, paced by its cost)."])
        }
        buildView(s, table)
        let c = table.counts
        var title = [Span(" \(Format.count(viewCount, exact: true))", bold: true)]
        if viewCount != table.entries.count || !(filter ?? "").isEmpty {
            title.append(Span(" of \(Format.count(table.entries.count, exact: true)) entries", bold: true))
            title.append(Span("  filter: \(filter ?? "")", .warn))
        } else {
            title.append(Span(" entries (\(Format.count(c.connections, exact: true)) connections, \(Format.count(c.templates, exact: true)) templates)", bold: true))
        }
        title.append(Span("  sort: \(sort.name) (s)", .dim))
        if viewCount > 0 {
            title.append(Span("  \(cursor.selected + 1)/\(viewCount)", .dim))
        }
        drawTitle(&g, rect, title)
        let body = rect.dropTop(1)
        visibleRows = max(1, body.height - 1)
        cursor.clamp(count: viewCount, visible: visibleRows)
        let newSet = s.connectionChanges?.newEntryIndices ?? []
        let first = cursor.top, last = min(viewCount, cursor.top + visibleRows)
        let rows: [TableRow] = (first..<max(first, last)).map { i in
            let ei = entryIndex(i)
            return row(table.entries[ei], isNew: Self.contains(newSet, ei), ctx)
        }
        let t = Table(Self.columns, sortColumn: [nil, 2, 6, 5, 4, 3][sort.index], ascending: !sort.descending)
        let widths = t.layout(width: body.width - 1, measuring: rows)
        g.fill(body.row(0), role: .header)
        t.render(into: &g, rect: Rect(x: body.x + 1, y: body.y, width: body.width - 1, height: body.height), count: viewCount,
                 first: first, selected: cursor.selected, glyphs: ctx.glyphs, widths: widths) { rows[$0 - first] }
        if viewCount == 0 {
            drawEmpty(&g, body.dropTop(1), [table.entries.isEmpty ? "The connection table is empty." : "No entry matches the filter (Esc clears it)."])
        }
    }

    static func contains(_ sorted: [Int], _ v: Int) -> Bool {
        var lo = 0, hi = sorted.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sorted[mid] < v { lo = mid + 1 } else { hi = mid }
        }
        return lo < sorted.count && sorted[lo] == v
    }

    func row(_ e: ConnectionEntry, isNew: Bool, _ ctx: ViewContext) -> TableRow {
        let left = ctx.left(e)
        let virtual: String
        if let mark = e.fwmark {
            virtual = "FWM \(mark)"
        } else {
            virtual = e.virtual.endpoint(port: e.virtualPort)
        }
        let stateRole: Role
        switch e.state {
        case .established: stateRole = .normal
        case .synRecv, .synSent, .closeWait, .lastAck: stateRole = .warn
        default: stateRole = .dim
        }
        return TableRow([
            isNew ? .styled("+", .ok) : (e.isTemplate ? .styled("T", .info) : .empty),
            .text(e.proto.kernelName),
            .text(e.isTemplate ? e.client.description : e.client.endpoint(port: e.clientPort)),
            .text(virtual),
            .text(e.destination.endpoint(port: e.destinationPort)),
            .styled(e.state.name, stateRole),
            .text(Format.clock(left)),
        ])
    }

    public func handle(_ key: Key, _ ctx: ViewContext) -> KeyResult {
        if moveCursor(&cursor, key, count: viewCount, visible: visibleRows) { return .handled }
        if sort.handle(key) { cursor = ListCursor(); return .handled }
        if key == .enter, let table = ctx.snapshot?.connections, cursor.selected < viewCount {
            let e = table.entries[entryIndex(cursor.selected)]
            return .jump(.filtered(.clients, "client:\(e.client)"))
        }
        return .ignored
    }
}
