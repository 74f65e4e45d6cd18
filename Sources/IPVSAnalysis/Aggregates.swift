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
    fileprivate var _templates: UInt32
    private var _shareOfActive: Float = .nan
    private var _shareOfInactive: Float = .nan

    init(client: Int, destination: Int) {
        _client = Int32(client)
        _destination = Int32(destination)
        connections = StateCounts()
        _templates = 0
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

/// A persistence template (the model's `TemplateSummary`), its destination and its time.
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

/// Keys with one cheap hash each: the table's 10^6 entries must not pay SipHash over
/// 40-byte keys, nor a String.
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

struct PairKey: Hashable {
    var client: IPAddress
    var destination: Int32

    @inline(__always)
    func hash(into h: inout Hasher) {
        h.combine(client.low &* 0x9E37_79B9_7F4A_7C15 ^ client.high ^ UInt64(UInt32(bitPattern: destination)) &* 0xC2B2_AE3D_27D4_EB4F)
    }
}

/// Client address → client index: open addressing with linear probing and a multiplicative
/// hash in raw memory. IPv4 addresses (most clients) live in a table of 8-byte slots (key
/// and value side by side: one cache line per lookup); IPv6 in one of 24-byte slots. A
/// 10^6-entry pass does one lookup here per entry, so it must cost nanoseconds, not a
/// SipHash and a Dictionary's bookkeeping.
final class AddressIndex {
    /// IPv4: address << 32 | (index + 1); 0 is empty.
    private var v4: UnsafeMutablePointer<UInt64>
    private var v4Bits: Int
    private var v4Count = 0
    struct Slot {
        var high: UInt64
        var low: UInt64
        var value: Int32
    }
    private var v6: UnsafeMutablePointer<Slot>
    private var v6Bits = 6
    private var v6Count = 0

    init(expected: Int) {
        v4Bits = 10
        while 1 << v4Bits < expected * 2 { v4Bits += 1 }
        v4 = .allocate(capacity: 1 << v4Bits)
        v4.initialize(repeating: 0, count: 1 << v4Bits)
        v6 = Self.allocate6(1 << v6Bits)
    }

    deinit {
        v4.deallocate()
        v6.deallocate()
    }

    private static func allocate6(_ n: Int) -> UnsafeMutablePointer<Slot> {
        let p = UnsafeMutablePointer<Slot>.allocate(capacity: n)
        p.initialize(repeating: Slot(high: 0, low: 0, value: -1), count: n)
        return p
    }

    @inline(__always)
    private static func slot4(_ a: UInt32, _ bits: Int) -> Int {
        Int(truncatingIfNeeded: (UInt64(a) &* 0x9E37_79B9_7F4A_7C15) >> UInt64(64 - bits))
    }

    @inline(__always)
    private static func slot6(_ h: UInt64, _ l: UInt64, _ bits: Int) -> Int {
        Int(truncatingIfNeeded: ((l ^ h &* 0xC2B2_AE3D_27D4_EB4F) &* 0x9E37_79B9_7F4A_7C15) >> UInt64(64 - bits))
    }

    /// The index of `a`, or `next` after inserting it (then `inserted` is true).
    @inline(__always)
    func index(of a: IPAddress, inserting next: Int32) -> (Int32, inserted: Bool) {
        if a.isIPv4 {
            let key = a.ipv4Value
            let mask = (1 << v4Bits) - 1
            var i = Self.slot4(key, v4Bits)
            while true {
                let s = v4[i]
                if s == 0 {
                    v4[i] = UInt64(key) << 32 | UInt64(UInt32(next) &+ 1)
                    v4Count += 1
                    if v4Count * 2 > 1 << v4Bits { grow4() }
                    return (next, true)
                }
                if UInt32(truncatingIfNeeded: s >> 32) == key { return (Int32(truncatingIfNeeded: s) &- 1, false) }
                i = (i + 1) & mask
            }
        }
        let mask = (1 << v6Bits) - 1
        var i = Self.slot6(a.high, a.low, v6Bits)
        while true {
            let s = v6[i]
            if s.value < 0 {
                v6[i] = Slot(high: a.high, low: a.low, value: next)
                v6Count += 1
                if v6Count * 2 > 1 << v6Bits { grow6() }
                return (next, true)
            }
            if s.low == a.low && s.high == a.high { return (s.value, false) }
            i = (i + 1) & mask
        }
    }

    private func grow4() {
        let old = v4, n = 1 << v4Bits
        v4Bits += 1
        v4 = .allocate(capacity: 1 << v4Bits)
        v4.initialize(repeating: 0, count: 1 << v4Bits)
        let mask = (1 << v4Bits) - 1
        for j in 0..<n where old[j] != 0 {
            var i = Self.slot4(UInt32(truncatingIfNeeded: old[j] >> 32), v4Bits)
            while v4[i] != 0 { i = (i + 1) & mask }
            v4[i] = old[j]
        }
        old.deallocate()
    }

    private func grow6() {
        let old = v6, n = 1 << v6Bits
        v6Bits += 1
        v6 = Self.allocate6(1 << v6Bits)
        let mask = (1 << v6Bits) - 1
        for j in 0..<n where old[j].value >= 0 {
            var i = Self.slot6(old[j].high, old[j].low, v6Bits)
            while v6[i].value >= 0 { i = (i + 1) & mask }
            v6[i] = old[j]
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

extension Aggregates {
    /// Computes every aggregation of `snapshot` in one pass over its connection table, then
    /// a counting sort of the entries by client (no dictionary of client × real server
    /// pairs: at 10^6 entries that would cost more than reading the table).
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

        // Pass 1: destination and client of every entry; per-destination counts.
        let clientIndex = AddressIndex(expected: max(1024, n / 4))
        var clientAddress: [IPAddress] = []
        // Per entry: its client (-1: a group's template) and dest << 9 | template << 8 | state.
        let clientOf = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, n))
        let item = UnsafeMutablePointer<UInt32>.allocate(capacity: max(1, n))
        defer {
            clientOf.deallocate()
            item.deallocate()
        }
        // Templates of services with a netmask belong to the group, not to a client.
        var groupTemplates: [PairKey: Int32] = [:]
        var stats: [Destination] = []
        var perClient = UnsafeMutablePointer<Int32>.allocate(capacity: 1024)
        var perClientCapacity = 1024
        defer { perClient.deallocate() }
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
                } else {
                    s[d].connections.add(e.state)
                    if e.flags & ConnectionEntry.fromSync != 0 { s[d].fromSync += 1 }
                }
                if e.isTemplate && resolver.grouping[d] {
                    groupTemplates[PairKey(client: e.client, destination: Int32(d)), default: 0] += 1
                    clientOf[i] = -1
                    continue
                }
                let (c, inserted) = clientIndex.index(of: e.client, inserting: Int32(clientAddress.count))
                if inserted {
                    clientAddress.append(e.client)
                    if clientAddress.count > perClientCapacity {
                        let bigger = UnsafeMutablePointer<Int32>.allocate(capacity: perClientCapacity * 2)
                        bigger.moveInitialize(from: perClient, count: perClientCapacity)
                        perClient.deallocate()
                        perClient = bigger
                        perClientCapacity *= 2
                    }
                    perClient[Int(c)] = 0
                }
                perClient[Int(c)] &+= 1
                clientOf[i] = c
                item[i] = UInt32(d) << 9 | (e.isTemplate ? 1 << 8 : 0) | UInt32(e.state.rawValue)
            }
        }
        destinations = stats
        for (i, d) in destinations.enumerated() {
            if let s = d.service, let r = d.realServer, liveDestination[s][r] == nil { liveDestination[s][r] = i }
        }

        // Pass 2: counting sort of the entries' items by client.
        let clientCount = clientAddress.count
        var start = [Int](repeating: 0, count: clientCount + 1)
        for c in 0..<clientCount { start[c + 1] = start[c] + Int(perClient[c]) }
        let sorted = UnsafeMutablePointer<UInt32>.allocate(capacity: max(1, start[clientCount]))
        defer { sorted.deallocate() }
        // perClient becomes each client's fill position.
        for c in 0..<clientCount { perClient[c] = Int32(start[c]) }
        for i in 0..<n {
            let c = Int(clientOf[i])
            if c < 0 { continue }
            sorted[Int(perClient[c])] = item[i]
            perClient[c] &+= 1
        }

        // Pass 3: each client's loads, with a scratch slot per destination.
        var slotOf = [Int32](repeating: -1, count: destinations.count)
        var out: [ClientAggregate] = []
        out.reserveCapacity(clientCount)
        var loads: [ClientLoad] = []
        loads.reserveCapacity(min(start[clientCount], clientCount * 3))
        for c in 0..<clientCount {
            let first = loads.count
            var total = StateCounts()
            var templates = 0
            for k in start[c]..<start[c + 1] {
                let it = sorted[k]
                let d = Int(it >> 9)
                var s = Int(slotOf[d])
                if s < 0 {
                    s = loads.count
                    slotOf[d] = Int32(s)
                    loads.append(ClientLoad(client: c, destination: d))
                }
                if it & (1 << 8) != 0 {
                    loads[s]._templates += 1
                    templates += 1
                } else {
                    let st = ConnectionState(rawValue: UInt8(truncatingIfNeeded: it))
                    loads[s].connections.add(st)
                    total.add(st)
                }
            }
            for s in first..<loads.count {
                let d = loads[s].destination
                slotOf[d] = -1
                let a = destinations[d].connections.active, ina = destinations[d].connections.inactive
                loads[s].shareOfActive = a > 0 ? Double(loads[s].connections.active) / Double(a) : nil
                loads[s].shareOfInactive = ina > 0 ? Double(loads[s].connections.inactive) / Double(ina) : nil
            }
            out.append(ClientAggregate(address: clientAddress[c], connections: total, templates: templates, loadRange: first..<loads.count))
        }
        clients = out
        clientLoads = loads
        buildGroups(groupTemplates, services: services, grouping: resolver.grouping)

        // Templates: the model's summaries (the controlled connections), with their
        // destination and time.
        let summaries = snapshot.templateSummaries()
        templates.reserveCapacity(summaries.count)
        for t in summaries {
            let e = entries[t.entryIndex]
            let d = Int(cache.destination(of: e, &resolver))
            var timeout: UInt32?
            if let s = destinations[d].service { timeout = services[s].persistence?.timeoutSeconds }
            var past: Bool?
            // The kernel arms a template with the timeout and prints whole seconds left: more
            // than the timeout can only be its 60 s re-arm of a template past its time.
            if let timeout, t.controlledConns > 0, e.expires > timeout { past = true }
            templates.append(TemplateAggregate(summary: t, destination: d, expires: e.expires, timeout: timeout, pastTimeout: past))
        }

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

    private mutating func buildGroups(_ groupTemplates: [PairKey: Int32], services: [VirtualService], grouping: [Bool]) {
        struct GroupKey: Hashable { var service: Int; var address: IPAddress }
        struct LoadKey: Hashable { var group: Int; var destination: Int }
        var groupIndex: [GroupKey: Int] = [:]
        var loadIndex: [LoadKey: Int] = [:]
        var gs: [GroupAggregate] = []
        var loads: [GroupLoad] = []
        var lastMember: [Int] = []

        let serviceOf = destinations.map { $0.service ?? -1 }
        func group(_ d: Int, _ client: IPAddress) -> (Int, Int)? {
            let s = serviceOf[d]
            guard grouping[d], s >= 0, let p = services[s].persistence else { return nil }
            let masked = p.netmask.apply(to: client)
            let gk = GroupKey(service: s, address: masked)
            let g: Int
            if let i = groupIndex[gk] {
                g = i
            } else {
                g = gs.count
                groupIndex[gk] = g
                gs.append(GroupAggregate(service: s, address: masked, prefixLength: Self.prefixLength(p.netmask, client),
                                         clients: 0, connections: StateCounts(), templates: 0, loadRange: 0..<0))
                lastMember.append(-1)
            }
            let lk = LoadKey(group: g, destination: d)
            if let i = loadIndex[lk] { return (g, i) }
            loadIndex[lk] = loads.count
            loads.append(GroupLoad(group: g, destination: d, connections: StateCounts(), templates: 0))
            return (g, loads.count - 1)
        }
        for l in clientLoads where l.connections.total > 0 && grouping[l.destination] {
            guard let (g, i) = group(l.destination, clients[l.client].address) else { continue }
            gs[g].connections.add(l.connections)
            loads[i].connections.add(l.connections)
            if lastMember[g] != l.client {
                lastMember[g] = l.client
                gs[g].clients += 1
            }
        }
        for (k, n) in groupTemplates {
            guard let (g, i) = group(Int(k.destination), k.client) else { continue }
            gs[g].templates += Int(n)
            loads[i].templates += Int(n)
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

    static func prefixLength(_ m: PersistenceNetmask, _ a: IPAddress) -> Int {
        switch m {
        case .ipv4(let v): a.isIPv4 ? v.nonzeroBitCount : 128
        case .prefix(let p): p
        }
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
    func groups(_ d: Int32) -> Bool { grouping[Int(d)] }

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
