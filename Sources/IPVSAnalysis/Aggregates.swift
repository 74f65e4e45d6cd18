import Foundation
import IPVSModel

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

    @inline(__always)
    mutating func add(_ s: ConnectionState) {
        switch s {
        case .established: established &+= 1
        case .synRecv: synRecv &+= 1
        case .finWait: finWait &+= 1
        case .timeWait: timeWait &+= 1
        case .closeWait: closeWait &+= 1
        case .udp: udp &+= 1
        default: other &+= 1
        }
    }

    mutating func add(_ o: StateCounts) {
        established &+= o.established
        synRecv &+= o.synRecv
        finWait &+= o.finWait
        timeWait &+= o.timeWait
        closeWait &+= o.closeWait
        udp &+= o.udp
        other &+= o.other
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
    /// The most seconds any of its entries has left.
    public var maxExpires: UInt32 = 0

    public var isLive: Bool { realServer != nil }
}

/// One client's entries on one destination. Kept small (48 bytes): a table of 10^6
/// entries can hold as many client × real-server pairs.
public struct ClientLoad: Hashable, Sendable {
    private var _client: Int32
    private var _destination: Int32
    public var connections: StateCounts
    /// Templates (low 31 bits), and in the top bit whether its connections were credited
    /// to a template by the client pass (a fwmark alternate), so buildGroups does not.
    private var _templatesAndFlag: UInt32
    private var _shareOfActive: Float = .nan
    private var _shareOfInactive: Float = .nan

    init(client: Int, destination: Int) {
        _client = Int32(client)
        _destination = Int32(destination)
        connections = StateCounts()
        _templatesAndFlag = 0
    }

    fileprivate var _templates: UInt32 {
        get { _templatesAndFlag & 0x7FFF_FFFF }
        set { _templatesAndFlag = _templatesAndFlag & 0x8000_0000 | newValue & 0x7FFF_FFFF }
    }

    fileprivate var _attributed: Bool {
        get { _templatesAndFlag & 0x8000_0000 != 0 }
        set { _templatesAndFlag = _templatesAndFlag & 0x7FFF_FFFF | (newValue ? 0x8000_0000 : 0) }
    }

    /// Index into `Aggregates.clients`.
    public var client: Int { Int(_client) }
    /// Index into `Aggregates.destinations`.
    public var destination: Int { Int(_destination) }
    /// Templates for this client's own address (services without a netmask; with one, the
    /// template belongs to the group).
    public var templates: Int {
        get { Int(_templates) }
        set { _templates = UInt32(newValue) }
    }
    /// Its share of the destination's ESTABLISHED / other connections in the table (nil
    /// when the destination has none).
    public var shareOfActive: Double? {
        get { _shareOfActive.isNaN ? nil : Double(_shareOfActive) }
        set { _shareOfActive = newValue.map(Float.init) ?? .nan }
    }
    public var shareOfInactive: Double? {
        get { _shareOfInactive.isNaN ? nil : Double(_shareOfInactive) }
        set { _shareOfInactive = newValue.map(Float.init) ?? .nan }
    }
}

/// A client address: its connections by state, templates, the services and real servers
/// it touches (its `loads`).
public struct ClientAggregate: Hashable, Sendable {
    public var address: IPAddress
    public var connections: StateCounts
    public var templates: Int
    /// Range into `Aggregates.clientLoads`.
    public var loadRange: Range<Int>
}

/// A persistence group: a service's clients under `address & netmask`, grouped the way the
/// kernel groups them in its templates.
public struct GroupAggregate: Hashable, Sendable {
    public var service: Int
    /// The masked address, as the kernel writes it in the group's templates.
    public var address: IPAddress
    public var prefixLength: Int
    /// Distinct client addresses with connections in the group.
    public var clients: Int
    public var connections: StateCounts
    public var templates: Int
    /// Range into `Aggregates.groupLoads`.
    public var loadRange: Range<Int>

    /// `172.16.2.0/24`, `fd00:c1::/64`.
    public var name: String { "\(address)/\(prefixLength)" }
}

public struct GroupLoad: Hashable, Sendable {
    /// Index into `Aggregates.groups`.
    public var group: Int
    /// Index into `Aggregates.destinations`.
    public var destination: Int
    public var connections: StateCounts
    public var templates: Int
    public var share: Double?
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
}

/// Per client, per persistence group and per template, computed in one pass over the
/// connection table.
public struct Aggregates: Sendable {
    public var destinations: [Destination] = []
    /// Unsorted; `topClients(_:)` gives the busiest.
    public var clients: [ClientAggregate] = []
    public var clientLoads: [ClientLoad] = []
    public var groups: [GroupAggregate] = []
    public var groupLoads: [GroupLoad] = []
    /// Most controlled connections first (the model's order).
    public var templates: [TemplateAggregate] = []
    /// Destination index per service and real server: `liveDestination[s][r]`, nil when
    /// the table has no entry for it.
    public var liveDestination: [[Int?]] = []
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

    public func loads(of c: ClientAggregate) -> ArraySlice<ClientLoad> { clientLoads[c.loadRange] }
    public func loads(of g: GroupAggregate) -> ArraySlice<GroupLoad> { groupLoads[g.loadRange] }

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
    static func top<T>(_ all: [T], _ n: Int, by before: (T, T) -> Bool) -> [T] {
        if n <= 0 || n >= all.count { return all.sorted(by: before) }
        var best: [T] = []
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

// MARK: - The pass

/// A route's identity, one cheap hash each: the table's 10^6 entries must not pay SipHash
/// over 40-byte keys, nor a String.
struct RouteKey: Hashable {
    var virtual: IPAddress
    var destination: IPAddress
    /// proto << 32 | vport << 16 | dport
    var ports: UInt64

    @inline(__always)
    func hash(into h: inout Hasher) { h.combine(Self.mix(virtual, destination, ports)) }

    @inline(__always)
    static func mix(_ v: IPAddress, _ d: IPAddress, _ ports: UInt64) -> UInt64 {
        var x = v.low &* 0x9E37_79B9_7F4A_7C15 ^ d.low &* 0xC2B2_AE3D_27D4_EB4F ^ v.high ^ d.high >> 7 ^ ports &* 0x1656_67B1_9E37_79F9
        x ^= x >> 29
        return x &* 0xBF58_476D_1CE4_E5B9
    }
}

/// (tag, address) → a non-negative Int32: open addressing with linear probing in raw
/// memory. Templates by (destination, client as the template holds it), persistence groups
/// by (service, masked address), IPv6 clients by address: hundreds of thousands of lookups a
/// pass, so each must cost nanoseconds, not a SipHash and a Dictionary's bookkeeping.
final class PairIndex {
    struct Slot {
        var high: UInt64
        var low: UInt64
        var tag: Int32
        /// -1: empty.
        var value: Int32
    }
    private var slots: UnsafeMutablePointer<Slot>
    private var bits: Int
    private(set) var count = 0

    init(expected: Int) {
        var b = 6
        while 1 << b < expected * 2 { b += 1 }
        bits = b
        slots = Self.allocate(1 << b)
    }

    deinit { slots.deallocate() }

    private static func allocate(_ n: Int) -> UnsafeMutablePointer<Slot> {
        let p = UnsafeMutablePointer<Slot>.allocate(capacity: n)
        p.initialize(repeating: Slot(high: 0, low: 0, tag: 0, value: -1), count: n)
        return p
    }

    @inline(__always)
    private static func home(_ tag: Int32, _ a: IPAddress, _ bits: Int) -> Int {
        var x = a.low &* 0x9E37_79B9_7F4A_7C15 ^ a.high &* 0xC2B2_AE3D_27D4_EB4F ^ UInt64(UInt32(bitPattern: tag)) &* 0x1656_67B1_9E37_79F9
        x ^= x >> 32
        return Int(truncatingIfNeeded: (x &* 0xBF58_476D_1CE4_E5B9) >> UInt64(64 - bits))
    }

    /// The slot holding (tag, a), or the empty slot where it would go.
    @inline(__always)
    private func find(_ tag: Int32, _ a: IPAddress) -> Int {
        let mask = (1 << bits) - 1
        var i = Self.home(tag, a, bits)
        while true {
            let s = slots[i]
            if s.value < 0 || (s.low == a.low && s.high == a.high && s.tag == tag) { return i }
            i = (i + 1) & mask
        }
    }

    /// The value stored for (tag, a), or -1.
    @inline(__always)
    func value(_ tag: Int32, _ a: IPAddress) -> Int32 { slots[find(tag, a)].value }

    /// The value of (tag, a); when there is none, `next` after storing it.
    @inline(__always)
    func value(_ tag: Int32, _ a: IPAddress, orInsert next: Int32) -> Int32 {
        let i = find(tag, a)
        if slots[i].value >= 0 { return slots[i].value }
        store(i, tag, a, next)
        return next
    }

    /// Stores `v` (≥ 0) for (tag, a), replacing what was there.
    @inline(__always)
    func set(_ tag: Int32, _ a: IPAddress, _ v: Int32) {
        let i = find(tag, a)
        if slots[i].value >= 0 { slots[i].value = v } else { store(i, tag, a, v) }
    }

    @inline(__always)
    private func store(_ i: Int, _ tag: Int32, _ a: IPAddress, _ v: Int32) {
        slots[i] = Slot(high: a.high, low: a.low, tag: tag, value: v)
        count += 1
        if count * 2 > 1 << bits { grow() }
    }

    private func grow() {
        let old = slots, n = 1 << bits
        bits += 1
        slots = Self.allocate(1 << bits)
        let mask = (1 << bits) - 1
        for j in 0..<n where old[j].value >= 0 {
            let s = old[j]
            var i = Self.home(s.tag, IPAddress(ipv6High: s.high, low: s.low), bits)
            while slots[i].value >= 0 { i = (i + 1) & mask }
            slots[i] = s
        }
        old.deallocate()
    }
}

/// A direct-mapped cache in front of the resolver: the routes of a table are few
/// (services × real servers × ports), its entries many.
struct RouteCache {
    static let bits = 12
    var keys = [RouteKey](repeating: RouteKey(virtual: .zeroIPv4, destination: .zeroIPv4, ports: .max), count: 1 << bits)
    var values = [Int32](repeating: -1, count: 1 << bits)

    @inline(__always)
    mutating func destination(of e: ConnectionEntry, _ resolver: inout Resolver) -> Int32 {
        let ports = UInt64(e.proto.rawValue) << 32 | UInt64(e.virtualPort) << 16 | UInt64(e.destinationPort)
        let i = Int(truncatingIfNeeded: RouteKey.mix(e.virtual, e.destination, ports) >> UInt64(64 - Self.bits))
        let k = keys[i]
        if values[i] >= 0 && k.ports == ports && k.virtual == e.virtual && k.destination == e.destination { return values[i] }
        let d = resolver.destination(of: e)
        keys[i] = RouteKey(virtual: e.virtual, destination: e.destination, ports: ports)
        values[i] = d
        return d
    }
}

/// An entry as the by-client sort sees it, in one word: the client in the high 33 bits (an
/// IPv4 address, or 1 << 32 | the ordinal of an IPv6 address), its destination in the next
/// 22, then whether it is a template (1 bit) and its state (8 bits). Sorting words by their
/// high bits groups each client's entries without a client × real-server dictionary.
enum EntryWord {
    static let clientShift: UInt64 = 31
    static let destinationShift: UInt64 = 9
    static let destinationLimit = 1 << 22
    static let template: UInt64 = 1 << 8

    @inline(__always)
    static func make(client: UInt64, destination: Int, template: Bool, state: ConnectionState) -> UInt64 {
        client << clientShift | UInt64(destination) << destinationShift | (template ? Self.template : 0) | UInt64(state.rawValue)
    }

    /// Sorts `n` words by their client bits (31...63), stable. Returns the buffer that
    /// holds the result.
    static func sortByClient(_ words: UnsafeMutablePointer<UInt64>, _ scratch: UnsafeMutablePointer<UInt64>, count n: Int) -> UnsafeMutablePointer<UInt64> {
        RadixSort.sort(words, scratch: scratch, count: n, lowestBit: Int(clientShift)).keys
    }
}

extension Aggregates {
    /// Computes every aggregation of `snapshot`: one pass over its connection table that
    /// resolves each entry's destination and writes it as an `EntryWord`, a radix sort of
    /// those words by client, and one pass over the sorted words that builds each client's
    /// loads and credits the template controlling them. No dictionary is touched per entry:
    /// at 10^6 entries the analysis must cost a fraction of reading the table.
    public init(_ snapshot: Snapshot) {
        self.init()
        let services = snapshot.services
        liveDestination = services.map { [Int?](repeating: nil, count: $0.realServers.count) }
        guard let table = snapshot.connections else { return }
        hasTable = true
        knowsOrigin = table.file.hasSuffix("_sync")
        var resolver = Resolver(services: services)
        var cache = RouteCache()
        let entries = table.entries
        let n = entries.count

        // Pass 1: each entry's destination, the per-destination counts, the templates, and
        // the entry's word (a persistence group's templates belong to the group, not to a
        // client: they have no word).
        let words = UnsafeMutablePointer<UInt64>.allocate(capacity: max(1, n))
        let scratch = UnsafeMutablePointer<UInt64>.allocate(capacity: max(1, n))
        defer {
            words.deallocate()
            scratch.deallocate()
        }
        var wordCount = 0
        let v6Index = PairIndex(expected: 64)
        var v6Clients: [IPAddress] = []
        // Templates by ordinal: their entry and destination; and (destination, client as the
        // template holds it) → ordinal. Of two templates with one key the later wins.
        var templateEntry: [Int32] = []
        var templateDestination: [Int32] = []
        let templateIndex = PairIndex(expected: max(64, n / 32))
        var stats: [Destination] = []
        var tooManyDestinations = 0
        entries.withUnsafeBufferPointer { buf in
            var s = UnsafeMutablePointer<Destination>.allocate(capacity: 16)
            var capacity = 16
            var known = 0
            defer {
                stats = Array(UnsafeBufferPointer(start: s, count: known))
                s.deinitialize(count: known)
                s.deallocate()
            }
            for i in 0..<n {
                let e = buf[i]
                let d = Int(cache.destination(of: e, &resolver))
                if d >= known {
                    // A new destination (rare): grow the raw per-destination counters.
                    let all = resolver.destinations
                    if all.count > capacity {
                        let bigger = UnsafeMutablePointer<Destination>.allocate(capacity: all.count * 2)
                        bigger.moveInitialize(from: s, count: known)
                        s.deallocate()
                        s = bigger
                        capacity = all.count * 2
                    }
                    (s + known).initialize(from: Array(all[known...]), count: all.count - known)
                    known = all.count
                }
                if e.expires > s[d].maxExpires { s[d].maxExpires = e.expires }
                if e.isTemplate {
                    s[d].templates += 1
                    templateIndex.set(Int32(d), e.client, Int32(templateEntry.count))
                    templateEntry.append(Int32(i))
                    templateDestination.append(Int32(d))
                    if resolver.grouping[d] { continue }
                } else {
                    s[d].connections.add(e.state)
                    if e.flags & ConnectionEntry.fromSync != 0 { s[d].fromSync += 1 }
                }
                guard d < EntryWord.destinationLimit else {
                    tooManyDestinations += 1
                    continue
                }
                let client: UInt64
                if e.client.isIPv4 {
                    client = UInt64(e.client.ipv4Value)
                } else {
                    let o = v6Index.value(0, e.client, orInsert: Int32(v6Clients.count))
                    if Int(o) == v6Clients.count { v6Clients.append(e.client) }
                    client = 1 << 32 | UInt64(o)
                }
                words[wordCount] = EntryWord.make(client: client, destination: d, template: e.isTemplate, state: e.state)
                wordCount += 1
            }
        }
        destinations = stats
        unattributedEntries = tooManyDestinations
        for (i, d) in destinations.enumerated() {
            if let s = d.service, let r = d.realServer, liveDestination[s][r] == nil { liveDestination[s][r] = i }
        }

        // Per destination, what the passes below ask of its service.
        let dcount = destinations.count
        let netmask: [PersistenceNetmask?] = destinations.map { $0.service.flatMap { services[$0].persistence?.netmask } }
        let grouping = resolver.grouping
        let alternates = Self.fwmarkAlternates(destinations, services)
        var controlled = [Int](repeating: 0, count: templateEntry.count)

        // Pass 2: the words by client.
        let sorted = EntryWord.sortByClient(words, scratch, count: wordCount)
        var clientCount = 0
        var k = 0
        while k < wordCount {
            let c = sorted[k] >> EntryWord.clientShift
            clientCount += 1
            k += 1
            while k < wordCount && sorted[k] >> EntryWord.clientShift == c { k += 1 }
        }

        // Pass 3: each client's run of words gives its loads, with a scratch slot per
        // destination; each load is credited to the template that controls it. A load that
        // holds a template of its own (no netmask) finds it under its own client; a
        // persistence group's template is credited per group load (buildGroups); a
        // connection that came through a fwmark service (no mark in /proc) may belong to
        // another fwmark service with the same real server.
        let active = destinations.map { Double($0.connections.active) }
        let inactive = destinations.map { Double($0.connections.inactive) }
        let slotOf = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, dcount))
        slotOf.initialize(repeating: -1, count: max(1, dcount))
        defer { slotOf.deallocate() }
        var loadCount = 0
        // At most one load per word: the capacity is address space, not memory, until used.
        let loads = [ClientLoad](unsafeUninitializedCapacity: max(1, wordCount)) { loadBuf, loadsInitialized in
            let load = loadBuf.baseAddress!
            clients = [ClientAggregate](unsafeUninitializedCapacity: clientCount) { clientBuf, clientsInitialized in
                var k = 0, c = 0
                while k < wordCount {
                    let clientBits = sorted[k] >> EntryWord.clientShift
                    let first = loadCount
                    var total = StateCounts()
                    var templates = 0
                    while k < wordCount && sorted[k] >> EntryWord.clientShift == clientBits {
                        let w = sorted[k]
                        k += 1
                        let d = Int(truncatingIfNeeded: w >> EntryWord.destinationShift) & (EntryWord.destinationLimit - 1)
                        var s = Int(slotOf[d])
                        if s < 0 {
                            s = loadCount
                            slotOf[d] = Int32(s)
                            (load + s).initialize(to: ClientLoad(client: c, destination: d))
                            loadCount += 1
                        }
                        if w & EntryWord.template != 0 {
                            load[s]._templates += 1
                            templates += 1
                        } else {
                            let st = ConnectionState(rawValue: UInt8(truncatingIfNeeded: w))
                            load[s].connections.add(st)
                            total.add(st)
                        }
                    }
                    let address = clientBits >> 32 == 0
                        ? IPAddress(ipv4: UInt32(truncatingIfNeeded: clientBits)) : v6Clients[Int(clientBits & 0xFFFF_FFFF)]
                    for s in first..<loadCount {
                        let d = load[s].destination
                        slotOf[d] = -1
                        let l = load[s].connections
                        load[s].shareOfActive = active[d] > 0 ? Double(l.active) / active[d] : nil
                        load[s].shareOfInactive = inactive[d] > 0 ? Double(l.inactive) / inactive[d] : nil
                        guard l.total > 0 else { continue }
                        var t: Int32 = -1
                        if load[s]._templates > 0 && !grouping[d] && netmask[d] != nil {
                            t = templateIndex.value(Int32(d), address)
                        }
                        if t < 0 && !alternates[d].isEmpty {
                            if let m = netmask[d] { t = templateIndex.value(Int32(d), m.apply(to: address)) }
                            for (a, family) in alternates[d] where t < 0 && family == address.family {
                                if let m = netmask[a] { t = templateIndex.value(Int32(a), m.apply(to: address)) }
                            }
                            // Credited here: buildGroups must not credit it again.
                            if t >= 0 { load[s]._attributed = true }
                        }
                        if t >= 0 { controlled[Int(t)] += l.total }
                    }
                    (clientBuf.baseAddress! + c).initialize(to: ClientAggregate(
                        address: address, connections: total, templates: templates, loadRange: first..<loadCount))
                    c += 1
                }
                clientsInitialized = c
            }
            loadsInitialized = loadCount
        }
        clientLoads = loads
        buildGroups(netmask: netmask, grouping: grouping, entries: entries,
                    templateEntry: templateEntry, templateDestination: templateDestination,
                    templateIndex: templateIndex, controlled: &controlled)
        buildTemplates(services: services, entries: entries, templateEntry: templateEntry,
                       templateDestination: templateDestination, controlled: controlled)

        if let changes = snapshot.connectionChanges {
            var perDest = [Int](repeating: 0, count: destinations.count)
            var sync = 0, local = 0
            for i in changes.newEntryIndices where i < entries.count {
                let e = entries[i]
                if e.isFromSync { sync += 1 } else { local += 1 }
                guard !e.isTemplate, !e.isFromSync else { continue }
                let d = Int(cache.destination(of: e, &resolver))
                if d < perDest.count { perDest[d] += 1 }
            }
            newConnections = perDest
            newFromSync = knowsOrigin ? sync : nil
            newLocal = knowsOrigin ? local : (sync + local)
        }
    }

    /// For each destination that is not an address service's (a fwmark service's, or
    /// none): the destinations of fwmark services with the same real-server address, in
    /// service order, with their family.
    static func fwmarkAlternates(_ destinations: [Destination], _ services: [VirtualService]) -> [[(Int, AddressFamily)]] {
        var out = [[(Int, AddressFamily)]](repeating: [], count: destinations.count)
        var fwmarkDestinations: [(service: Int, index: Int)] = []
        for (i, d) in destinations.enumerated() {
            if let s = d.service, case .fwmark = services[s].key { fwmarkDestinations.append((s, i)) }
        }
        guard !fwmarkDestinations.isEmpty else { return out }
        fwmarkDestinations.sort { $0.service != $1.service ? $0.service < $1.service : $0.index < $1.index }
        for (i, d) in destinations.enumerated() {
            if let s = d.service, case .address = services[s].key { continue }
            for f in fwmarkDestinations where f.index != i && destinations[f.index].address == d.address {
                out[i].append((f.index, services[f.service].key.family))
            }
        }
        return out
    }

    private mutating func buildGroups(netmask: [PersistenceNetmask?], grouping: [Bool],
                                      entries: [ConnectionEntry], templateEntry: [Int32], templateDestination: [Int32],
                                      templateIndex: PairIndex, controlled: inout [Int]) {
        var b = GroupBuilder(destinations: destinations, netmask: netmask, grouping: grouping)
        clientLoads.withUnsafeBufferPointer { cl in
            clients.withUnsafeBufferPointer { clients in
                for l in cl where l.connections.total > 0 && grouping[l.destination] {
                    let d = l.destination
                    let i = b.load(d, clients[l.client].address)
                    guard i >= 0 else { continue }
                    let g = b.loads[i].group
                    b.groups[g].connections.add(l.connections)
                    b.loads[i].connections.add(l.connections)
                    if l._attributed { b.attributed[i] += l.connections.total }
                    if b.lastMember[g] != l.client {
                        b.lastMember[g] = l.client
                        b.groups[g].clients += 1
                    }
                }
            }
        }
        for (o, d) in templateDestination.enumerated() where grouping[Int(d)] {
            let i = b.load(Int(d), entries[Int(templateEntry[o])].client)
            guard i >= 0 else { continue }
            b.groups[b.loads[i].group].templates += 1
            b.loads[i].templates += 1
        }
        var gs = b.groups, loads = b.loads
        // The group's template controls its connections to the destination.
        for i in loads.indices {
            let rest = loads[i].connections.total - b.attributed[i]
            guard rest > 0 else { continue }
            let t = templateIndex.value(Int32(loads[i].destination), gs[loads[i].group].address)
            if t >= 0 { controlled[Int(t)] += rest }
        }
        // Lay the loads out per group.
        loads.sort { $0.group != $1.group ? $0.group < $1.group : $0.destination < $1.destination }
        var i = 0
        while i < loads.count {
            let g = loads[i].group
            let first = i
            while i < loads.count && loads[i].group == g {
                let total = destinations[loads[i].destination].connections.total
                loads[i].share = total > 0 ? Double(loads[i].connections.total) / Double(total) : nil
                i += 1
            }
            gs[g].loadRange = first..<i
        }
        groups = gs
        groupLoads = loads
    }

    /// The templates with their controlled connections, most first (then least time left,
    /// then client).
    private mutating func buildTemplates(services: [VirtualService], entries: [ConnectionEntry], templateEntry: [Int32],
                                         templateDestination: [Int32], controlled: [Int]) {
        struct Order {
            /// (UInt32.max - controlled) << 32 | expires: one comparison for the usual case.
            var primary: UInt64
            var client: IPAddress
            var ordinal: Int32
        }
        var order: [Order] = []
        order.reserveCapacity(templateEntry.count)
        entries.withUnsafeBufferPointer { e in
            for (o, i) in templateEntry.enumerated() {
                order.append(Order(primary: UInt64(UInt32.max - UInt32(clamping: controlled[o])) << 32 | UInt64(e[Int(i)].expires),
                                   client: e[Int(i)].client, ordinal: Int32(o)))
            }
        }
        order.sort {
            if $0.primary != $1.primary { return $0.primary < $1.primary }
            if $0.client != $1.client { return $0.client < $1.client }
            return $0.ordinal < $1.ordinal
        }
        // Per destination, shared by its templates: the real server's name, the service and
        // its persistence timeout.
        let name: [String?] = destinations.map { d in
            guard let s = d.service, let r = d.realServer else { return nil }
            return services[s].realServers[r].id
        }
        let key: [ServiceKey?] = destinations.map { d in d.service.map { services[$0].key } }
        let timeout: [UInt32?] = destinations.map { d in d.service.flatMap { services[$0].persistence?.timeoutSeconds } }
        templates.reserveCapacity(order.count)
        entries.withUnsafeBufferPointer { entries in
            for x in order {
                let o = Int(x.ordinal)
                let index = Int(templateEntry[o])
                let e = entries[index]
                let d = Int(templateDestination[o])
                var past: Bool?
                // The kernel arms a template with the timeout and prints whole seconds left:
                // more than the timeout can only be its 60 s re-arm of a template past its time.
                if let t = timeout[d], controlled[o] > 0, e.expires > t { past = true }
                let summary = TemplateSummary(entryIndex: index, service: key[d],
                                              realServer: name[d] ?? e.destination.endpoint(port: e.destinationPort),
                                              controlledConns: controlled[o])
                templates.append(TemplateAggregate(summary: summary, destination: d, expires: e.expires, timeout: timeout[d], pastTimeout: past))
            }
        }
    }

    static func prefixLength(_ m: PersistenceNetmask, _ a: IPAddress) -> Int {
        switch m {
        case .ipv4(let v): a.isIPv4 ? v.nonzeroBitCount : 128
        case .prefix(let p): p
        }
    }
}

/// Persistence groups and their loads as the client loads are folded in: groups by
/// (service, masked address), loads by (destination, masked address). Clients arrive sorted
/// by address, so a group's members come one after another: each destination remembers
/// its last group load and skips the lookup while the masked address stays the same.
struct GroupBuilder {
    let destinations: [Destination]
    let netmask: [PersistenceNetmask?]
    let grouping: [Bool]
    let groupIndex = PairIndex(expected: 256)
    let loadIndex = PairIndex(expected: 256)
    var groups: [GroupAggregate] = []
    var loads: [GroupLoad] = []
    var lastMember: [Int] = []
    /// Connections of each load already credited to a template by the client pass.
    var attributed: [Int] = []
    var lastMasked: [IPAddress]
    var lastLoad: [Int]

    init(destinations: [Destination], netmask: [PersistenceNetmask?], grouping: [Bool]) {
        self.destinations = destinations
        self.netmask = netmask
        self.grouping = grouping
        lastMasked = [IPAddress](repeating: .zeroIPv4, count: destinations.count)
        lastLoad = [Int](repeating: -1, count: destinations.count)
    }

    /// The group load of `client` on destination `d`, made when new; -1 when `d`'s
    /// service does not group clients.
    @inline(__always)
    mutating func load(_ d: Int, _ client: IPAddress) -> Int {
        guard grouping[d], let s = destinations[d].service, let m = netmask[d] else { return -1 }
        let masked = m.apply(to: client)
        if lastLoad[d] >= 0 && lastMasked[d] == masked { return lastLoad[d] }
        let g = Int(groupIndex.value(Int32(s), masked, orInsert: Int32(groups.count)))
        if g == groups.count {
            groups.append(GroupAggregate(service: s, address: masked, prefixLength: Aggregates.prefixLength(m, client),
                                         clients: 0, connections: StateCounts(), templates: 0, loadRange: 0..<0))
            lastMember.append(-1)
        }
        let i = Int(loadIndex.value(Int32(d), masked, orInsert: Int32(loads.count)))
        if i == loads.count {
            loads.append(GroupLoad(group: g, destination: d, connections: StateCounts(), templates: 0))
            attributed.append(0)
        }
        lastMasked[d] = masked
        lastLoad[d] = i
        return i
    }
}

/// Maps an entry to its destination: service by (protocol, address, port), then the
/// port-0 service, then fwmark services; real server by address and port (or a port-0
/// real server). Memoised by route, so the slow path runs once per distinct route.
struct Resolver {
    let services: [VirtualService]
    var byAddress: [ServiceKey: Int] = [:]
    var fwmark: [Int] = []
    var cache: [RouteKey: Int32] = [:]
    var destinations: [Destination] = []
    var destIndex: [DestKey: Int32] = [:]
    /// Whether a destination's service groups clients with a netmask.
    var grouping: [Bool] = []

    struct DestKey: Hashable {
        var service: Int
        var realServer: Int
        var address: IPAddress
        var port: UInt16
        var named: String?
    }

    init(services: [VirtualService]) {
        self.services = services
        for (i, s) in services.enumerated() {
            switch s.key {
            case .address: byAddress[s.key] = i
            case .fwmark: fwmark.append(i)
            }
        }
    }

    @inline(__always)
    mutating func destination(of e: ConnectionEntry) -> Int32 {
        let key = RouteKey(virtual: e.virtual, destination: e.destination,
                           ports: UInt64(e.proto.rawValue) << 32 | UInt64(e.virtualPort) << 16 | UInt64(e.destinationPort))
        if let d = cache[key] { return d }
        let d = slowPath(e)
        cache[key] = d
        return d
    }

    private mutating func slowPath(_ e: ConnectionEntry) -> Int32 {
        var svc: Int?
        if let mark = e.fwmark {
            svc = fwmark.first { services[$0].key == .fwmark(mark, e.client.family) }
        } else {
            svc = byAddress[.address(e.proto, e.virtual, e.virtualPort)] ?? byAddress[.address(e.proto, e.virtual, 0)]
            if svc == nil {
                // A connection through a fwmark service carries no mark in /proc: the
                // service whose real servers include its destination.
                svc = fwmark.first { i in
                    services[i].key.family == e.client.family && services[i].realServers.contains { $0.address == e.destination }
                }
            }
        }
        guard let s = svc else {
            let named = e.fwmark.map { "fwmark:\($0)" } ?? ServiceKey.address(e.proto, e.virtual, e.virtualPort).description
            return intern(DestKey(service: -1, realServer: -1, address: e.destination, port: e.destinationPort, named: named),
                          service: nil, realServer: nil)
        }
        let rss = services[s].realServers
        let r = rss.firstIndex { $0.address == e.destination && $0.port == e.destinationPort }
            ?? rss.firstIndex { $0.address == e.destination && ($0.port == 0 || e.destinationPort == 0) }
        if let r {
            return intern(DestKey(service: s, realServer: r, address: rss[r].address, port: rss[r].port, named: nil), service: s, realServer: r)
        }
        // A deleted real server of a fwmark or all-ports service: one destination per
        // address, as its real servers were (port 0).
        var port = e.destinationPort
        if case .fwmark = services[s].key { port = 0 }
        if case .address(_, _, 0) = services[s].key { port = 0 }
        return intern(DestKey(service: s, realServer: -1, address: e.destination, port: port, named: nil), service: s, realServer: nil)
    }

    private mutating func intern(_ k: DestKey, service: Int?, realServer: Int?) -> Int32 {
        if let d = destIndex[k] { return d }
        let d = Int32(destinations.count)
        destIndex[k] = d
        destinations.append(Destination(service: service, realServer: realServer, address: k.address, port: k.port, namedService: k.named))
        grouping.append(service.flatMap { services[$0].persistence?.netmask.groupsClients } ?? false)
        return d
    }
}
