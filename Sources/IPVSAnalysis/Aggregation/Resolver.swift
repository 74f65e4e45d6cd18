import Foundation
import IPVSModel


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
/// by (service, masked address): hundreds of thousands of lookups a pass, so each must cost
/// nanoseconds, not a SipHash and a Dictionary's bookkeeping.
final class PairIndex {
    struct Slot {
        var high: UInt64
        var low: UInt64
        var tag: Int32
        /// -1: empty.
        var value: Int32
    }
    private var block: BufferPool.Block
    private var slots: UnsafeMutablePointer<Slot>
    private var bits: Int
    private(set) var count = 0

    init(expected: Int) {
        var b = 6
        while 1 << b < expected * 2 { b += 1 }
        bits = b
        (block, slots) = Self.allocate(1 << b)
    }

    deinit { block.release() }

    /// Large indexes (megabytes at 10^5 templates or groups) in huge pages.
    private static func allocate(_ n: Int) -> (BufferPool.Block, UnsafeMutablePointer<Slot>) {
        let block = BufferPool.Block.allocate(n * MemoryLayout<Slot>.stride)
        let p = block.typed(Slot.self)
        p.initialize(repeating: Slot(high: 0, low: 0, tag: 0, value: -1), count: n)
        return (block, p)
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
        let old = slots, oldBlock = block, n = 1 << bits
        bits += 1
        (block, slots) = Self.allocate(1 << bits)
        let mask = (1 << bits) - 1
        for j in 0..<n where old[j].value >= 0 {
            let s = old[j]
            var i = Self.home(s.tag, IPAddress(ipv6High: s.high, low: s.low), bits)
            while slots[i].value >= 0 { i = (i + 1) & mask }
            slots[i] = s
        }
        oldBlock.release()
    }
}

/// Routes already resolved, in front of the resolver: the routes of a table are few
/// (services × real servers × ports), its entries many. Open addressing over slots that
/// hold key and destination together, at most a quarter full: a director's few dozen routes
/// fit in the L1 cache, and an entry costs a hash and one slot read.
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
    /// Every route met, in the order met: a template's route and client are its identity.
    private(set) var routes: [RouteKey] = []

    init() { slots = Self.allocate(1 << bits) }

    private static func allocate(_ n: Int) -> UnsafeMutablePointer<Slot> {
        let p = UnsafeMutablePointer<Slot>.allocate(capacity: n)
        p.initialize(repeating: Slot(key: RouteKey(virtual: .zeroIPv4, destination: .zeroIPv4, ports: 0), destination: -1, route: -1), count: n)
        return p
    }

    /// Frees the slots; the cache is not used after.
    func free() { slots.deallocate() }

    /// The destination and route of a route met before; destination -1 when it is new.
    @inline(__always)
    func find(_ virtual: IPAddress, _ destination: IPAddress, _ ports: UInt64) -> (destination: Int32, route: Int32) {
        let mask = (1 << bits) - 1
        var i = Self.home(virtual, destination, ports, bits)
        while true {
            let s = slots[i]
            if s.destination < 0 || s.key.ports == ports && s.key.virtual == virtual && s.key.destination == destination {
                return (s.destination, s.route)
            }
            i = (i + 1) & mask
        }
    }

    /// Resolves and remembers `e`'s route, which `find` did not know (`ports` as it took them).
    @inline(never)
    mutating func insert(_ e: ConnectionEntry, _ ports: UInt64, _ resolver: inout Resolver) -> (destination: Int32, route: Int32) {
        let mask = (1 << bits) - 1
        var i = Self.home(e.virtual, e.destination, ports, bits)
        while slots[i].destination >= 0 { i = (i + 1) & mask }
        let d = resolver.destination(of: e)
        let key = RouteKey(virtual: e.virtual, destination: e.destination, ports: ports)
        let r = Int32(routes.count)
        routes.append(key)
        slots[i] = Slot(key: key, destination: d, route: r)
        if routes.count * 4 > 1 << bits { grow() }
        return (d, r)
    }

    @inline(__always)
    mutating func destination(of e: ConnectionEntry, _ resolver: inout Resolver) -> Int32 {
        route(of: e, &resolver).destination
    }

    /// The entry's destination and route.
    @inline(__always)
    mutating func route(of e: ConnectionEntry, _ resolver: inout Resolver) -> (destination: Int32, route: Int32) {
        let ports = UInt64(e.proto.rawValue) << 32 | UInt64(e.virtualPort) << 16 | UInt64(e.destinationPort)
        let found = find(e.virtual, e.destination, ports)
        return found.destination >= 0 ? found : insert(e, ports, &resolver)
    }

    /// A route's first slot: one multiply-shift over its words. The table is at most a
    /// quarter full, so a weak spread costs a probe now and then; a stronger mix cost its
    /// latency on every one of 10^6 entries.
    @inline(__always)
    private static func home(_ v: IPAddress, _ d: IPAddress, _ ports: UInt64, _ bits: Int) -> Int {
        let x = (v.low ^ v.high &* 31) &* 0x9E37_79B9_7F4A_7C15 ^ (d.low ^ d.high &* 31) &* 0xC2B2_AE3D_27D4_EB4F
            ^ ports &* 0x1656_67B1_9E37_79F9
        return Int(truncatingIfNeeded: x &>> UInt64(64 - bits))
    }

    private mutating func grow() {
        let old = slots, n = 1 << bits
        bits += 1
        slots = Self.allocate(1 << bits)
        let mask = (1 << bits) - 1
        for j in 0..<n where old[j].destination >= 0 {
            let k = old[j].key
            var i = Self.home(k.virtual, k.destination, k.ports, bits)
            while slots[i].destination >= 0 { i = (i + 1) & mask }
            slots[i] = old[j]
        }
        old.deallocate()
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
