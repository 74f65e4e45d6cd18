import FoundationEssentials
import IPVSModel
import IPVSRawMemory

/// A route's identity: protocol, virtual address and port, real server and port. `mix`
/// digests it for a template's identity.
struct RouteKey: Equatable {
    var virtual: IPAddress
    var destination: IPAddress
    /// proto << 32 | vport << 16 | dport
    var ports: UInt64

    @inline(__always)
    static func mix(_ v: IPAddress, _ d: IPAddress, _ ports: UInt64) -> UInt64 {
        var x = v.low &* Mixer.golden ^ d.low &* Mixer.prime2 ^ v.high ^ d.high >> 7 ^ ports &* Mixer.prime5
        x ^= x >> 29
        return x &* Mixer.finalizer1
    }
}

/// Routes already resolved, in front of the resolver: the routes of a table are few
/// (services × real servers × ports), its entries many. Each route has a slot of its own,
/// found with no probing: when a new route would share a slot, another multiplier of the
/// home hash is sought under which none does (`rebuild`). An entry then costs a fold of its
/// route's fields, one multiply and one slot read, compared with a single branch. (A
/// stronger hash with a probing loop, comparing a field at a time, made the first pass
/// slower.)
struct RouteCache {
    struct Slot {
        var key: RouteKey
        /// -1: empty.
        var destination: Int32
        /// Index into `routes`.
        var route: Int32
    }
    private var slots: UnsafeMutablePointer<Slot>
    private var bits = 8
    private var multiplier = Mixer.golden
    /// Routes placed after their home slot, where no multiplier gave every route its own
    /// (routes whose folds are equal, or too many routes): `awayOrNew` probes for them.
    private var displaced = 0
    /// Every route met, in the order met: a template's route and client are its identity.
    private(set) var routes: [RouteKey] = []
    private var destinations: [Int32] = []

    init() { slots = Self.allocate(1 << bits) }

    private static let empty = Slot(key: RouteKey(virtual: .zeroIPv4, destination: .zeroIPv4, ports: 0), destination: -1, route: -1)

    private static func allocate(_ n: Int) -> UnsafeMutablePointer<Slot> {
        let p = UnsafeMutablePointer<Slot>.allocate(capacity: n)
        p.initialize(repeating: empty, count: n)
        return p
    }

    /// Frees the slots; the cache is not used after.
    func free() { slots.deallocate() }

    /// The route's five words in one, without a multiply: rotations keep an IPv4 address's
    /// bits apart from the other fields' (the multiply that follows spreads them).
    @inline(__always)
    fileprivate static func fold(_ v: IPAddress, _ d: IPAddress, _ ports: UInt64) -> UInt64 {
        v.low ^ (d.low << 23 | d.low >> 41) ^ (ports << 47 | ports >> 17) ^ v.high ^ (d.high << 11 | d.high >> 53)
    }

    /// A fold's slot in a table of `1 << bits`, under `multiplier`.
    @inline(__always)
    private static func home(_ fold: UInt64, _ multiplier: UInt64, _ bits: Int) -> Int {
        home(fold, multiplier, shift: UInt64(64 - bits))
    }

    @inline(__always)
    fileprivate static func home(_ fold: UInt64, _ multiplier: UInt64, shift: UInt64) -> Int {
        Int(truncatingIfNeeded: (fold &* multiplier) &>> shift)
    }

    /// What a look at a route's home slot reads, copied out of the cache for a loop over
    /// entries: valid until the next `insert`. (Read through the cache inside the first
    /// pass, these were loads from memory every entry: the pass's stores might have
    /// changed them, as far as the compiler knew.)
    struct Lookup {
        let slots: UnsafePointer<Slot>
        let multiplier: UInt64
        let shift: UInt64

        /// The destination and route in the route's home slot; destination -1 when the slot
        /// holds another route or none (the route is new, or away from its home).
        @inline(__always)
        func home(_ virtual: IPAddress, _ destination: IPAddress, _ ports: UInt64) -> (destination: Int32, route: Int32) {
            let s = slots[RouteCache.home(RouteCache.fold(virtual, destination, ports), multiplier, shift: shift)]
            let differs = (s.key.virtual.high ^ virtual.high) | (s.key.virtual.low ^ virtual.low)
                | (s.key.destination.high ^ destination.high) | (s.key.destination.low ^ destination.low) | (s.key.ports ^ ports)
            // All ones where a word differs: one branch for the five words, the caller's.
            let other = Int32(truncatingIfNeeded: Int64(bitPattern: differs | (0 &- differs)) >> 63)
            return (s.destination | other, s.route)
        }
    }

    var lookup: Lookup { Lookup(slots: slots, multiplier: multiplier, shift: UInt64(64 - bits)) }

    /// The route of an entry whose home slot did not hold it (`Lookup.home`): found by
    /// probing, or resolved and remembered. `lookup` may change.
    @inline(never)
    mutating func awayOrNew(_ e: ConnectionEntry, _ ports: UInt64, _ resolver: inout Resolver) -> (destination: Int32, route: Int32) {
        if displaced > 0 {
            let found = probe(e.virtual, e.destination, ports)
            if found.destination >= 0 { return found }
        }
        return insert(e, ports, &resolver)
    }

    @inline(__always)
    static func ports(_ e: ConnectionEntry) -> UInt64 {
        UInt64(e.proto.rawValue) << 32 | UInt64(e.virtualPort) << 16 | UInt64(e.destinationPort)
    }

    /// A route away from its home slot.
    @inline(never)
    private func probe(_ virtual: IPAddress, _ destination: IPAddress, _ ports: UInt64) -> (destination: Int32, route: Int32) {
        let mask = (1 << bits) - 1
        var i = Self.home(Self.fold(virtual, destination, ports), multiplier, bits)
        while slots[i].destination >= 0 {
            let k = slots[i].key
            if k.ports == ports && k.virtual == virtual && k.destination == destination { return (slots[i].destination, slots[i].route) }
            i = (i + 1) & mask
        }
        return (-1, -1)
    }

    /// Resolves and remembers `e`'s route, which neither its home slot nor a probe held
    /// (`ports` as `RouteCache.ports` made them).
    @inline(never)
    mutating func insert(_ e: ConnectionEntry, _ ports: UInt64, _ resolver: inout Resolver) -> (destination: Int32, route: Int32) {
        let d = resolver.destination(of: e)
        let r = Int32(routes.count)
        routes.append(RouteKey(virtual: e.virtual, destination: e.destination, ports: ports))
        destinations.append(d)
        if routes.count * 4 > 1 << bits {
            rebuild()
        } else if !place(r) {
            // While every route has its own slot, look for a multiplier that keeps it so;
            // once some probe, one more does until the table grows.
            if displaced == 0 { rebuild() } else { placeAway(Int(r), Self.fold(e.virtual, e.destination, ports)) }
        }
        return (d, r)
    }

    /// Puts route `r` in the first free slot after its home.
    private mutating func placeAway(_ r: Int, _ fold: UInt64) {
        let mask = (1 << bits) - 1
        var i = Self.home(fold, multiplier, bits)
        while slots[i].destination >= 0 { i = (i + 1) & mask }
        slots[i] = Slot(key: routes[r], destination: destinations[r], route: Int32(r))
        displaced += 1
    }

    /// Puts route `r` in its home slot; false when another route has it.
    private mutating func place(_ r: Int32) -> Bool {
        let k = routes[Int(r)]
        let i = Self.home(Self.fold(k.virtual, k.destination, k.ports), multiplier, bits)
        guard slots[i].destination < 0 else { return false }
        slots[i] = Slot(key: k, destination: destinations[Int(r)], route: r)
        return true
    }

    /// Every route in a slot of its own where a multiplier allows it: up to 16 tries at
    /// each size from 4 to 16 slots a route. A few dozen routes (a director's usual) find
    /// one; hundreds, or routes whose folds are equal, may not: then the table of 4 slots a
    /// route (small enough for the cache) with the multiplier that left fewest routes away
    /// from their home slot, which `awayOrNew` probes for.
    private mutating func rebuild() {
        var smallest = 8
        while 1 << smallest < routes.count * 4 { smallest += 1 }
        let folds = routes.map { Self.fold($0.virtual, $0.destination, $0.ports) }
        var taken = [Bool](repeating: false, count: 1 << (smallest + 2))
        var seed = multiplier
        var chosen: (multiplier: UInt64, bits: Int)?
        var fallback = (misses: Int.max, multiplier: multiplier)
        search: for b in smallest...(smallest + 2) {
            for _ in 0..<16 {
                // Odd multipliers, well spread.
                let m = Mixer.splitMix(&seed) | 1
                taken.withUnsafeMutableBufferPointer { $0.update(repeating: false) }
                var misses = 0
                for f in folds {
                    let i = Self.home(f, m, b)
                    if taken[i] { misses += 1 } else { taken[i] = true }
                }
                if misses == 0 {
                    chosen = (m, b)
                    break search
                }
                if b == smallest && misses < fallback.misses { fallback = (misses, m) }
            }
        }
        let (m, b) = chosen ?? (fallback.multiplier, smallest)
        multiplier = m
        if b != bits {
            slots.deallocate()
            bits = b
            slots = Self.allocate(1 << b)
        } else {
            slots.update(repeating: Self.empty, count: 1 << b)
        }
        displaced = 0
        for r in routes.indices where !place(Int32(r)) { placeAway(r, folds[r]) }
    }

    @inline(__always)
    mutating func destination(of e: ConnectionEntry, _ resolver: inout Resolver) -> Int32 {
        route(of: e, &resolver).destination
    }

    /// The entry's destination and route.
    @inline(__always)
    mutating func route(of e: ConnectionEntry, _ resolver: inout Resolver) -> (destination: Int32, route: Int32) {
        let ports = Self.ports(e)
        let found = lookup.home(e.virtual, e.destination, ports)
        return found.destination >= 0 ? found : awayOrNew(e, ports, &resolver)
    }
}

/// Maps an entry to its destination: service by (protocol, address, port), then the
/// port-0 service, then fwmark services; real server by address and port (or a port-0
/// real server). `RouteCache` asks it once per distinct route.
struct Resolver {
    let services: [VirtualService]
    var byAddress: [ServiceKey: Int] = [:]
    var fwmark: [Int] = []
    var destinations: [Destination] = []
    var destIndex: [DestKey: Int32] = [:]
    /// Whether a destination's service groups clients with a netmask.
    var grouping: [Bool] = []
    /// Routes of an address service to a real server that are an fwmark service's, as the
    /// kernel's counters decided (`Aggregates.attribution`).
    var moves: [RouteMove: Int] = [:]

    struct DestKey: Hashable {
        var service: Int
        var realServer: Int
        var address: IPAddress
        var port: UInt16
        var named: String?
    }

    init(services: [VirtualService], moves: [RouteMove: Int] = [:]) {
        self.services = services
        self.moves = moves
        for (i, s) in services.enumerated() {
            switch s.key {
            case .address: byAddress[s.key] = i
            case .fwmark: fwmark.append(i)
            }
        }
    }

    mutating func destination(of e: ConnectionEntry) -> Int32 {
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
            } else if !moves.isEmpty, let m = moves[RouteMove(service: svc!, address: e.destination)] {
                svc = m
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
