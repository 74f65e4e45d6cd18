import FoundationEssentials
import IPVSAnalysis
import IPVSFeed
import IPVSModel

public enum ScreenID: Int, CaseIterable, Sendable {
    case services = 1, templates, clients, connections, findings, kernel, help

    public var title: String {
        switch self {
        case .services: "Services"
        case .templates: "Templates"
        case .clients: "Clients"
        case .connections: "Connections"
        case .findings: "Findings"
        case .kernel: "Kernel"
        case .help: "Help"
        }
    }

    var shortTitle: String {
        switch self {
        case .connections: "Conns"
        case .templates: "Tmpl"
        case .services: "Svcs"
        default: title
        }
    }
}

/// What a screen draws from: the shared snapshot and its analysis, and the view options.
public struct ViewContext {
    public var snapshot: Snapshot?
    public var analysis: Analysed?
    /// The source's clock: templates and ages tick against it.
    public var now: Date
    public var exact: Bool
    public var glyphs: Glyphs
    /// True when the analysis lags the snapshot shown.
    public var analysing: Bool
    /// The last minutes of each real server (the dashboard's memory of the snapshots).
    public var history: RealServerHistory? = nil

    /// The latest analysis (of this snapshot's table, or of an earlier one while the
    /// analysis of a big table catches up: screens draw it from its own snapshot).
    public var currentAnalysis: Analysed? { analysis }

    /// True when the analysis is of the connection table shown.
    public var analysisIsCurrent: Bool {
        guard let a = analysis, let s = snapshot else { return false }
        return a.takenAt == s.takenAt || (a.tableReadAt != nil && a.tableReadAt == s.connections?.readAt)
    }

    /// Seconds since the connection table was read.
    public var tableAge: Double? {
        snapshot?.connections.map { max(0, now.timeIntervalSince($0.readAt)) }
    }

    /// A table entry's seconds left, now: ticks down between reads.
    public func left(_ e: ConnectionEntry) -> Int {
        Int(e.expires) &- Format.int((tableAge ?? 0).rounded(.down))
    }

    /// The same for an entry of a table read at `readAt`.
    public func left(_ e: ConnectionEntry, readAt: Date) -> Int {
        Int(e.expires) &- Format.int(max(0, now.timeIntervalSince(readAt)).rounded(.down))
    }
}

/// Where a key sends the dashboard.
public enum Jump: Equatable, Sendable {
    /// A screen with a filter (drill-down: Esc comes back).
    case filtered(ScreenID, String)
    /// The Services screen with the cursor on a service (and real server).
    case service(String, realServer: String?)
}

public enum KeyResult: Equatable, Sendable {
    case handled
    case ignored
    case jump(Jump)
    case message(String)
}

/// One screen: panels drawn over the shared snapshot. Screens keep their own cursor,
/// sort and filter.
public protocol Screen: AnyObject {
    var id: ScreenID { get }
    /// The filter as typed (`/`); screens without one return nil.
    var filter: String? { get set }
    /// Words shown in the filter prompt.
    var filterHelp: String { get }
    /// The `key:` words this screen's filter understands (besides plain text).
    var filterFields: [FilterTerms.Field] { get }
    func draw(_ ctx: ViewContext, into g: inout Grid, rect: Rect)
    func handle(_ key: Key, _ ctx: ViewContext) -> KeyResult
}

extension Screen {
    public var filterHelp: String { "" }
    public var filterFields: [FilterTerms.Field] { [.client, .service, .realServer, .state, .proto] }
}

/// Sorting shared by the list screens: `s` goes to the next key, `<` `>` to the previous
/// and next, `I` inverts.
public struct SortState: Sendable, Hashable {
    public var keys: [String]
    public var index: Int
    public var descending: Bool
    /// The direction each key starts in.
    public var defaultDescending: [Bool]

    public init(keys: [String], index: Int = 0, defaultDescending: [Bool]) {
        self.keys = keys
        self.index = index
        self.defaultDescending = defaultDescending
        descending = defaultDescending[index]
    }

    public var name: String { keys[index] }

    /// Handles s, <, >, I; returns true when the key was one of them.
    public mutating func handle(_ key: Key) -> Bool {
        switch key {
        case .char("s"), .char(">"), .char("."), .function(6):
            index = (index + 1) % keys.count
            descending = defaultDescending[index]
        case .char("<"), .char(","):
            index = (index + keys.count - 1) % keys.count
            descending = defaultDescending[index]
        case .char("I"), .char("r"):
            descending.toggle()
        default:
            return false
        }
        return true
    }
}

/// Moves a cursor with the usual keys; returns true when the key was a movement.
func moveCursor(_ c: inout ListCursor, _ key: Key, count: Int, visible: Int) -> Bool {
    let page = max(1, visible - 1)
    switch key {
    case .up, .char("k"): c.move(-1, count: count, visible: visible)
    case .down, .char("j"): c.move(1, count: count, visible: visible)
    case .pageUp: c.move(-page, count: count, visible: visible)
    case .pageDown: c.move(page, count: count, visible: visible)
    case .home, .char("g"): c.selected = 0; c.clamp(count: count, visible: visible)
    case .end, .char("G"): c.selected = max(0, count - 1); c.clamp(count: count, visible: visible)
    default: return false
    }
    return true
}

/// A one-line title over a panel: bold text, then dim details; `reserve` columns at the
/// right end are left for a scroll position (cut text ends with an ellipsis).
func drawTitle(_ g: inout Grid, _ r: Rect, _ spans: [Span], reserve: Int = 0) {
    g.fill(r.row(0))
    g.put(spans, x: r.x, y: r.y, limit: r.width - reserve)
}

/// A message in the middle of an empty panel.
func drawEmpty(_ g: inout Grid, _ r: Rect, _ lines: [String], role: Role = .dim) {
    for (i, l) in lines.enumerated() where i < r.height {
        g.put(" " + l, x: r.x, y: r.y + i, role: role, limit: r.width)
    }
}
