import FoundationEssentials
import IPVSModel
import IPVSRawMemory

/// Connection entries by the states an operator reads: ActiveConn is ESTABLISHED (TCP and
/// SCTP), InActConn everything else, as the kernel counts them for a real server.
public struct StateCounts: Hashable, Sendable {
    public private(set) var established: UInt32 = 0
    public private(set) var synRecv: UInt32 = 0
    public private(set) var finWait: UInt32 = 0
    public private(set) var timeWait: UInt32 = 0
    public private(set) var closeWait: UInt32 = 0
    public private(set) var udp: UInt32 = 0
    /// SYN_SENT, CLOSE, LAST_ACK, SCTP's other states...
    public private(set) var other: UInt32 = 0

    public init() {}

    /// Which counter a state goes to, as a lane: a nibble per raw state below 16 (1
    /// ESTABLISHED → 0, 3 SYN_RECV → 1, 4 FIN_WAIT → 2, 5 TIME_WAIT → 3, 7 CLOSE_WAIT → 4,
    /// 11 UDP → 5), `other` (6) for the rest. The table's 10^6 entries come in no order of
    /// state: a switch would mispredict on most of them.
    @inline(__always)
    static func lane(_ s: ConnectionState) -> Int {
        let r = Int(s.rawValue)
        return r < 16 ? Int(truncatingIfNeeded: 0x6666_5666_4632_1606 as UInt64 >> UInt64(r * 4)) & 0xF : 6
    }

    @inline(__always)
    mutating func add(_ s: ConnectionState) { add(s, count: 1) }

    /// `count` entries in state `s`.
    @inline(__always)
    mutating func add(_ s: ConnectionState, count: UInt32) {
        // The counters are seven UInt32s in lane order (a test holds the layout to it).
        let offset = Self.lane(s) &* 4
        withUnsafeMutableBytes(of: &self) { b in
            b.storeBytes(of: b.load(fromByteOffset: offset, as: UInt32.self) &+ count, toByteOffset: offset, as: UInt32.self)
        }
    }

    /// ESTABLISHED: what the kernel counts in ActiveConn.
    public var active: Int { Int(established) }
    /// Everything else: InActConn.
    public var inactive: Int { total - active }
    public var total: Int {
        Int(established) + Int(synRecv) + Int(finWait) + Int(timeWait) + Int(closeWait) + Int(udp) + Int(other)
    }

    /// Non-zero counts by the kernel's state names (`other` as "OTHER").
    public var byName: [(String, Int)] {
        [("ESTABLISHED", established), ("SYN_RECV", synRecv), ("FIN_WAIT", finWait), ("TIME_WAIT", timeWait),
         ("CLOSE_WAIT", closeWait), ("UDP", udp), ("OTHER", other)]
            .filter { $0.1 > 0 }.map { ($0.0, Int($0.1)) }
    }
}

/// Where a group of entries goes: a real server of a service, or a destination that is no
/// longer one (deleted real server, deleted service).
public struct Destination: Hashable, Sendable {
    /// Index into `Snapshot.services`; nil when no current service matches the entries.
    public var service: Int?
    /// Index into that service's `realServers`; nil when the real server is gone.
    public var realServer: Int?
    public var address: IPAddress
    /// The entries' destination port (the real server's, or for a port-0 real server the
    /// first port seen).
    public var port: UInt16
    /// The service the entries name, when no current service matches
    /// (`tcp:10.0.0.9:80`, `fwmark:3`).
    public var namedService: String?
    /// Connections to it in the table, by state (templates excluded).
    public var connections = StateCounts()
    public var templates = 0
    /// Entries that came from a sync master (only known when the table was read from
    /// `ip_vs_conn_sync`).
    public var fromSync = 0
    /// For a destination that is gone (`isLive` false): the most seconds any of its entries
    /// has left, when the last of them goes. 0 for a live real server: not gathered (the
    /// first pass would pay for it on every entry, and no one reads it).
    public var maxExpires: UInt32 = 0

    public var isLive: Bool { realServer != nil }
}

/// One client's entries on one destination, as a face shows it (`Aggregates.loads(of:)`).
public struct ClientLoad: Hashable, Sendable {
    /// Index into `Aggregates.clients`.
    public var client: Int
    /// Index into `Aggregates.destinations`.
    public var destination: Int
    public var connections = StateCounts()
    /// Templates for this client's own address (services without a netmask; with one, the
    /// template belongs to the group).
    public var templates = 0
    /// Its share of the destination's ESTABLISHED / other connections in the table (nil
    /// when the destination has none).
    public var shareOfActive: Double?
    public var shareOfInactive: Double?
}

/// A client's connections on one destination: what the findings weigh (rogue clients, the
/// culprits of an imbalance). 12 bytes; the aggregation keeps the heavy ones
/// (`Aggregates.heavyLoads`), `Aggregates.loadTotals()` makes every one.
public struct LoadTotal: Hashable, Sendable {
    private var _client: Int32
    private var _destination: Int32
    private var _connections: UInt32

    init(client: Int, destination: Int, connections: Int) {
        _client = Int32(truncatingIfNeeded: client)
        _destination = Int32(truncatingIfNeeded: destination)
        _connections = UInt32(truncatingIfNeeded: connections)
    }

    /// Index into `Aggregates.clients`.
    public var client: Int { Int(_client) }
    /// Index into `Aggregates.destinations`.
    public var destination: Int { Int(_destination) }
    /// Connections (templates excluded), by any state.
    public var connections: Int { Int(_connections) }
}

/// How many clients hold each number of connections on one destination (1 to 62, and 63 or
/// more in the last bucket), for the live real servers of services that do not group
/// clients: the rogue-client finding's medians, without a record per client × real server
/// (10^5 and more of them, of which the finding names a handful).
struct LoadHistogram: Sendable {
    static let buckets = 64
    /// Per destination, its row (0: none).
    let rows: [Int32]
    /// `buckets` a row; row 0 takes the counts of destinations without one.
    let counts: [UInt32]

    init(rows: [Int32] = [], counts: [UInt32] = []) {
        self.rows = rows
        self.counts = counts
    }

    /// Whether `d`'s units are counted here: a live real server (of a service that does not
    /// group clients, for the clients' histogram; of one that does, for the groups').
    func hasRow(_ d: Int) -> Bool { d < rows.count && rows[d] > 0 }

    /// Units (clients, or groups) of `d` with `n` connections (`n` in 1..<buckets - 1), or
    /// with `buckets - 1` and more (`n == buckets - 1`); 0 for a destination without a row.
    func clients(destination d: Int, connections n: Int) -> Int {
        precondition(n >= 1 && n < Self.buckets, "no bucket for \(n) connections")
        guard hasRow(d) else { return 0 }
        return Int(counts[Int(rows[d]) * Self.buckets + n])
    }
}

/// A persistence group's load kept for the rogue-client finding.
struct HeavyGroupLoad: Equatable, Sendable {
    var group: Int
    var destination: Int
    var connections: Int
}

/// A client address: its connections by state, templates, the services and real servers
/// it touches (`Aggregates.loads(of:)`).
public struct ClientAggregate: Hashable, Sendable {
    /// Index into `Aggregates.clients`.
    public var index: Int
    public var address: IPAddress
    public var connections: StateCounts
    public var templates: Int
    /// Where its entries start in the sorted words.
    var firstWord: Int
}

/// A persistence group: a service's clients under `address & netmask`, grouped the way the
/// kernel groups them in its templates.
///
/// 72 bytes (counts in 32 bits): a busy director has 10^5 groups, built in every poll.
/// The builder's own record of a group (`lastMember`) sits in what was padding.
public struct GroupAggregate: Hashable, Sendable {
    /// The masked address, as the kernel writes it in the group's templates.
    public var address: IPAddress
    public internal(set) var connections: StateCounts
    private var _service: Int32
    private var _clients: UInt32
    private var _templates: UInt32
    private var _loadStart: Int32
    private var _loadEnd: Int32
    private var _prefixLength: UInt8
    /// While the groups are built: the last client counted in the group (-1 after).
    var lastMember: Int32 = -1

    init(service: Int, address: IPAddress, prefixLength: Int) {
        self.address = address
        connections = StateCounts()
        _service = Int32(truncatingIfNeeded: service)
        _clients = 0
        _templates = 0
        _loadStart = 0
        _loadEnd = 0
        _prefixLength = UInt8(truncatingIfNeeded: prefixLength)
    }

    public var service: Int { Int(_service) }
    public var prefixLength: Int { Int(_prefixLength) }
    /// Distinct client addresses with connections in the group.
    public internal(set) var clients: Int {
        get { Int(_clients) }
        set { _clients = UInt32(truncatingIfNeeded: newValue) }
    }
    public internal(set) var templates: Int {
        get { Int(_templates) }
        set { _templates = UInt32(truncatingIfNeeded: newValue) }
    }
    /// Range into `Aggregates.groupLoads`.
    public internal(set) var loadRange: Range<Int> {
        get { Int(_loadStart)..<Int(_loadEnd) }
        set {
            _loadStart = Int32(truncatingIfNeeded: newValue.lowerBound)
            _loadEnd = Int32(truncatingIfNeeded: newValue.upperBound)
        }
    }

    /// `172.16.2.0/24`, `fd00:c1::/64`.
    public var name: String { "\(address)/\(prefixLength)" }
}

/// A persistence group's connections on one destination. 52 bytes, for the same reason,
/// with the builder's own two records of a load (a vector apart each, they were memory
/// fresh from the kernel in small pages in every one-shot analysis).
public struct GroupLoad: Hashable, Sendable {
    public internal(set) var connections: StateCounts
    private var _group: Int32
    private var _destination: Int32
    private var _templates: UInt32
    /// The destination's connections in the table: `share`'s denominator.
    private var _destinationConnections: UInt32
    /// While the groups are built: its connections already credited to a template by the
    /// client pass, and its template (its group's, on its destination; -1: none). 0 and -1
    /// after.
    var attributed: Int32 = 0
    var template: Int32 = -1

    init(group: Int, destination: Int) {
        connections = StateCounts()
        _group = Int32(truncatingIfNeeded: group)
        _destination = Int32(truncatingIfNeeded: destination)
        _templates = 0
        _destinationConnections = 0
    }

    /// Index into `Aggregates.groups`.
    public var group: Int { Int(_group) }
    /// Index into `Aggregates.destinations`.
    public var destination: Int { Int(_destination) }
    public internal(set) var templates: Int {
        get { Int(_templates) }
        set { _templates = UInt32(truncatingIfNeeded: newValue) }
    }
    /// Its share of the destination's connections in the table; nil when it has none.
    public var share: Double? {
        _destinationConnections > 0 ? Double(connections.total) / Double(_destinationConnections) : nil
    }

    mutating func setDestinationConnections(_ n: Int) { _destinationConnections = UInt32(truncatingIfNeeded: n) }
}

/// A persistence template and the connections that hang from it.
///
/// The kernel does not print which template controls a connection, so it is derived the
/// way the kernel matches them: same service, same real server, and the client masked with
/// the service's persistence netmask. A connection through a fwmark service carries no mark
/// in /proc; it is matched to a fwmark template only when its own address and port belong
/// to no address service.
public struct TemplateSummary: Hashable, Sendable {
    /// Index of the template in `ConnectionTable.entries`.
    public var entryIndex: Int
    /// The service it belongs to; nil when no current service matches (deleted).
    public var service: ServiceKey?
    /// The real server's identity (`10.0.0.2:80`); for a template whose real server is
    /// gone, the address with the template's port.
    public var realServer: String
    /// Non-template entries of the same service, real server and masked client.
    public var controlledConns: Int
}

/// A persistence template (its `TemplateSummary`), its destination and its time.
public struct TemplateAggregate: Hashable, Sendable {
    public var summary: TemplateSummary
    public var destination: Int
    /// Seconds left, as the kernel printed it.
    public var expires: UInt32
    /// The service's persistence timeout in seconds, when known.
    public var timeout: UInt32?
    /// True when it controls connections: the kernel will not let it expire, and re-arms it
    /// for 60 s each time its timer runs out.
    public var keptAlive: Bool { summary.controlledConns > 0 }
    /// True when the data proves it outlived its timeout (more time left than the timeout:
    /// the kernel's 60 s re-arm; or, in an `Analyzer`, seen past its deadline); nil when it
    /// cannot be told.
    public var pastTimeout: Bool?
    /// When it went past its timeout, as an `Analyzer` following it saw it; nil when not
    /// seen past it, or in a one-shot analysis.
    public var pastTimeoutSince: Date?
}

/// Per client, per persistence group and per template, computed by the fast core's passes
/// over the connection table (`Workspace.run`, `FastCore.swift`).
public struct Aggregates: Sendable {
    public var destinations: [Destination] = []
    /// By address (IPv4, then IPv6); each computed when asked for, from the sorted table.
    /// `topClients(_:)` gives the busiest.
    public var clients = ClientTable()
    /// The loads (a client's connections on a destination) of `heavyFrom` connections or
    /// more, by client then destination: the rogue-client candidates, and the usual culprits
    /// of an overloaded real server.
    public var heavyLoads = PooledList<LoadTotal>()
    public var heavyFrom = 1
    /// The other loads, counted by size (the rogue-client medians).
    var loadHistogram = LoadHistogram()
    /// The persistence groups' loads on live real servers, counted by size, and those of
    /// `heavyFrom` connections or more one by one: the rogue-client finding's units where a
    /// service groups clients.
    var groupLoadHistogram = LoadHistogram()
    var heavyGroupLoads: [HeavyGroupLoad] = []
    public var groups = PooledList<GroupAggregate>()
    /// Each group's loads (`GroupAggregate.loadRange`), by destination within a group.
    public var groupLoads = PooledList<GroupLoad>()
    /// Most controlled connections first (the model's order); each made when asked.
    public var templates = TemplateTable()
    /// Each template's identity across table reads, in the order of `templates` (an
    /// `Analyzer` follows templates by it); empty unless the `Analyzer` asked for them.
    var templateIdentities: [TemplateIdentity] = []
    /// Destination index per service and real server: `liveDestination[s][r]`, nil when
    /// the table has no entry for it.
    public var liveDestination: [[Int?]] = []
    /// How each service's entries were told apart (by `Snapshot.services` index): where an
    /// fwmark service shares a real server with an address service, decided by the kernel's
    /// counters or said undecided (`ServiceAttribution`).
    public var attribution: [ServiceAttribution] = []
    /// The routes moved to an fwmark service (what `attribution` decided), for resolving
    /// entries of other reads the same way.
    var routeMoves: [RouteMove: Int] = [:]
    /// New connections (not templates) per destination since the previous table read,
    /// when the snapshot says which entries are new; nil otherwise.
    public var newConnections: [Int]?
    /// New entries that came from sync, and new local entries, since the previous read.
    public var newFromSync: Int?
    public var newLocal: Int?
    /// Whether the table says which entries came from sync (read from `ip_vs_conn_sync`).
    public var knowsOrigin = false
    public var hasTable = false
    /// Entries left out of the per-client figures because the table names more
    /// destinations than an `EntryWord` holds (4,194,304); still counted in their
    /// destination. 0 on any real director.
    public var unattributedEntries = 0

    public init() {}

    public func loads(of c: ClientAggregate) -> [ClientLoad] { clients.loads(of: c, destinations) }

    /// Every client's connections per destination (every load with connections), by client
    /// then destination: made from the sorted table, a pass over it each call.
    public func loadTotals() -> [LoadTotal] {
        var out: [LoadTotal] = []
        clients.store?.forEachLoad { out.append($0) }
        return out
    }
    public func loads(of g: GroupAggregate) -> Slice<PooledList<GroupLoad>> { groupLoads[g.loadRange] }

    /// The `n` clients with most connections (then most templates, then address).
    public func topClients(_ n: Int) -> [ClientAggregate] {
        Self.top(clients, n) { a, b in
            let x = a.connections.total, y = b.connections.total
            if x != y { return x > y }
            if a.templates != b.templates { return a.templates > b.templates }
            return a.address < b.address
        }
    }

    /// The `n` groups with most connections.
    public func topGroups(_ n: Int) -> [GroupAggregate] {
        Self.top(groups, n) { a, b in
            let x = a.connections.total, y = b.connections.total
            if x != y { return x > y }
            if a.service != b.service { return a.service < b.service }
            return a.address < b.address
        }
    }

    /// Partial selection: sorts only what is shown (10^6 clients, 100 shown).
    static func top<C: Collection>(_ all: C, _ n: Int, by before: (C.Element, C.Element) -> Bool) -> [C.Element] {
        if n <= 0 || n >= all.count { return all.sorted(by: before) }
        var best: [C.Element] = []
        best.reserveCapacity(n + 1)
        for x in all {
            if best.count == n, !before(x, best[n - 1]) { continue }
            var lo = 0, hi = best.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if before(best[mid], x) { lo = mid + 1 } else { hi = mid }
            }
            best.insert(x, at: lo)
            if best.count > n { best.removeLast() }
        }
        return best
    }

    /// Service text of a destination: the service's id, or what the entries named.
    public func serviceName(_ d: Destination, in s: Snapshot) -> String {
        if let i = d.service { return s.services[i].id }
        return d.namedService ?? "?"
    }

    /// Real-server text of a destination: `10.0.1.2:80`, `[fd00::2]:443`.
    public func realServerName(_ d: Destination, in s: Snapshot) -> String {
        if let i = d.service, let r = d.realServer { return s.services[i].realServers[r].id }
        return d.address.endpoint(port: d.port)
    }
}
