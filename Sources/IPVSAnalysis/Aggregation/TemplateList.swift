import FoundationEssentials
import IPVSModel
import IPVSRawMemory

/// A template as the first pass saw it: enough to index, order and list it without going
/// back to its entry, which lies somewhere in tens of megabytes of table (a cache miss per
/// template per use, 10^5 templates).
struct TemplateRecord {
    var entry: Int32
    var destination: Int32
    /// Index into the route cache's routes.
    var route: Int32
    /// Seconds left, as the kernel printed it.
    var expires: UInt32
    /// It has an `EntryWord` (its destination fits one: always, on a real director).
    var hasWord: Bool
    /// Its client as its word holds it (`EntryWord.address` gives the address).
    var clientBits: UInt64
}

/// A template's identity, stable from one table read to the next (its index is not): the
/// client and the route (protocol, virtual address and port, real server and port), a
/// template's client port being always 0; held as two independent 64-bit digests of them.
/// Two templates of a table share both with a probability of ~n²/2^129 (10^-29 at 10^5
/// templates): far below a memory error's, where a single digest (~10^-10 a read at 1 Hz)
/// would not be.
struct TemplateIdentity: Hashable {
    /// Also the order an `Analyzer` keeps templates in.
    var digest: UInt64
    var check: UInt64

    /// What the digests owe to the route: made once a route, not once a template (a table's
    /// templates share a few routes).
    struct RoutePart {
        let mix: UInt64
        let check: UInt64

        init(_ r: RouteKey) {
            mix = RouteKey.mix(r.virtual, r.destination, r.ports)
            var h = Mixer.fnvBasis
            for v in [r.virtual.high, r.virtual.low, r.destination.high, r.destination.low, r.ports] { h = TemplateIdentity.fold(h, v) }
            check = h
        }
    }

    /// FNV-1a style, unrelated to the mix of `digest`.
    @inline(__always)
    static func fold(_ h: UInt64, _ v: UInt64) -> UInt64 {
        let x = (h ^ v) &* Mixer.fnvPrime
        return x ^ x >> 31
    }

    init(client: IPAddress, route: RoutePart) {
        var x = route.mix ^ client.low &* Mixer.digest ^ client.high
        x ^= x >> 32
        x = x &* Mixer.digest
        digest = x ^ x >> 29
        check = Self.fold(Self.fold(route.check, client.high), client.low)
    }

    init(_ e: ConnectionEntry) {
        self.init(client: e.client, route: RoutePart(RouteKey(virtual: e.virtual, destination: e.destination,
                                                              ports: UInt64(e.proto.rawValue) << 32 | UInt64(e.virtualPort) << 16
                                                                  | UInt64(e.destinationPort))))
    }
}

/// Templates by (destination, client as the template holds it), for the lookups the sorted
/// table cannot answer in place (a fwmark connection's template under another service):
/// made the first time one is asked. Of two templates with one key, the later wins.
final class TemplateLookup {
    private let records: UnsafeBufferPointer<TemplateRecord>
    private let v6Clients: PooledList<IPAddress>
    private var made: PairIndex?

    /// `records` must outlive it.
    init(records: UnsafeBufferPointer<TemplateRecord>, v6Clients: PooledList<IPAddress>) {
        self.records = records
        self.v6Clients = v6Clients
    }

    var index: PairIndex {
        if let m = made { return m }
        let index = PairIndex(expected: max(64, records.count))
        for (o, r) in records.enumerated() {
            index.set(r.destination, EntryWord.address(clientBits: r.clientBits, v6Clients: v6Clients), Int32(o))
        }
        made = index
        return index
    }
}

/// A template as the aggregation keeps it: 32 bytes, where a `TemplateAggregate` is a
/// hundred with a string to retain. 10^5 of them were 5 MB of fresh memory in every
/// one-poll analysis.
struct TemplateCell {
    var entry: Int32
    var destination: Int32
    var controlled: Int32
    var expires: UInt32
    /// The template's own port: the name of a real server that is gone.
    var port: UInt16
    var pastTimeout: Bool
    /// `pastTimeoutSince` as seconds since 2001 (`Date`'s own), NaN when none.
    var pastSince: Double
}

/// What the templates of one destination share.
struct TemplateDestination: Sendable {
    var service: ServiceKey?
    /// The live real server's identity; nil when it is gone.
    var realServer: String?
    var address: IPAddress
    var timeout: UInt32?
}

final class TemplateStore: @unchecked Sendable {
    let cells: PooledValues<TemplateCell>
    let destinations: [TemplateDestination]

    init(cells: PooledValues<TemplateCell>, destinations: [TemplateDestination]) {
        self.cells = cells
        self.destinations = destinations
    }
}

/// The templates of a table, most controlled connections first. Each element is made
/// when asked for, from a compact record: keep what you look at more than once.
public struct TemplateTable: RandomAccessCollection, Sendable {
    let store: TemplateStore?

    init(store: TemplateStore? = nil) { self.store = store }

    public var startIndex: Int { 0 }
    public var endIndex: Int { store?.cells.count ?? 0 }

    public subscript(i: Int) -> TemplateAggregate {
        precondition(i >= 0 && i < endIndex, "template index out of range")
        let s = store!
        let c = s.cells.base[i]
        let d = s.destinations[Int(c.destination)]
        let summary = TemplateSummary(entryIndex: Int(c.entry), service: d.service,
                                      realServer: d.realServer ?? d.address.endpoint(port: c.port),
                                      controlledConns: Int(c.controlled))
        return TemplateAggregate(summary: summary, destination: Int(c.destination), expires: c.expires, timeout: d.timeout,
                                 pastTimeout: c.pastTimeout ? true : nil,
                                 pastTimeoutSince: c.pastSince.isNaN ? nil : Date(timeIntervalSinceReferenceDate: c.pastSince))
    }

    /// What the findings read of every template, in list order, without making it (a
    /// `TemplateAggregate` has a string): its destination, time left, controlled
    /// connections, and whether it is past its timeout.
    func forEachCell(_ body: (_ i: Int, _ destination: Int, _ expires: UInt32, _ controlled: Int, _ pastTimeout: Bool) -> Void) {
        guard let s = store else { return }
        let cells = s.cells.base
        for i in 0..<s.cells.count {
            let c = cells[i]
            body(i, Int(c.destination), c.expires, Int(c.controlled), c.pastTimeout)
        }
    }

    /// Each template's time left, its service's timeout and its controlled connections, in
    /// list order, without making it (an `Analyzer` reads them for every template, every
    /// poll): the timeouts read once per destination (a `TemplateDestination` read whole
    /// retained its strings).
    func forEachTiming(_ body: (_ i: Int, _ expires: UInt32, _ timeout: UInt32?, _ controlled: Int) -> Void) {
        guard let timeouts = store?.destinations.map(\.timeout) else { return }
        forEachCell { i, destination, expires, controlled, _ in body(i, expires, timeouts[destination], controlled) }
    }

    /// Records that template `i` outlived its timeout, since `since` (an `Analyzer`'s
    /// verdict). The storage is shared by copies: only while the aggregates are being made.
    mutating func markPastTimeout(_ i: Int, since: Date) {
        precondition(i >= 0 && i < endIndex, "template index out of range")
        store!.cells.base[i].pastTimeout = true
        store!.cells.base[i].pastSince = since.timeIntervalSinceReferenceDate
    }
}

extension Aggregates {
    /// The ordinals of the templates that have a word, stably sorted by client bits and
    /// destination: the order their words come in once the table is sorted by client (the
    /// same stable sort on the same keys, over the same templates in entry order). In
    /// `arena` (`Arena.keyedSortBytes(records.count)`).
    /// (`packing`: false takes the keyed sort even when one key would hold it all, for tests.)
    static func templatesByClient(_ records: UnsafeBufferPointer<TemplateRecord>, destinationCount: Int,
                                  arena: inout Arena, packing: Bool = true) -> UnsafeBufferPointer<Int32> {
        let m = records.count
        let (keys, keyScratch, ords, ordScratch) = arena.takeKeyedSort(m)
        // Client, destination and ordinal in one key when they fit (the ordinal below: the
        // order of equal clients and destinations is the records' already): one array
        // moved a pass instead of keys and ordinals.
        let ordinalBits = Self.bitWidth(m), destinationBits = Self.bitWidth(destinationCount)
        if packing && 33 + destinationBits + ordinalBits <= 64 {
            var j = 0
            for (o, r) in records.enumerated() where r.hasWord {
                keys[j] = (r.clientBits << UInt64(destinationBits) | UInt64(UInt32(bitPattern: r.destination))) << UInt64(ordinalBits)
                    | UInt64(o)
                j += 1
            }
            let sorted = RadixSort.sort(keys, scratch: keyScratch, count: j, lowestBit: ordinalBits).keys
            let mask = (UInt64(1) << UInt64(ordinalBits)) - 1
            for k in 0..<j { ords[k] = Int32(truncatingIfNeeded: sorted[k] & mask) }
            return UnsafeBufferPointer(start: ords, count: j)
        }
        var j = 0
        for (o, r) in records.enumerated() where r.hasWord {
            keys[j] = r.clientBits << EntryWord.clientShift | UInt64(UInt32(bitPattern: r.destination)) << EntryWord.destinationShift
            ords[j] = Int32(o)
            j += 1
        }
        let sorted = RadixSort.sort(keys, scratch: keyScratch, payload: ords, payloadScratch: ordScratch, count: j,
                                    lowestBit: Int(EntryWord.destinationShift)).payload!
        return UnsafeBufferPointer(start: sorted, count: j)
    }

    /// The templates with their controlled connections, most first (then least time left,
    /// then client).
    mutating func buildTemplates(services: [VirtualService], records: UnsafeBufferPointer<TemplateRecord>, byClient: UnsafeBufferPointer<Int32>,
                                 v6Clients: PooledList<IPAddress>, routes: [RouteKey], controlled: UnsafeBufferPointer<Int>, identities: Bool,
                                 pool: BufferPool?) {
        var arena = Arena(bytes: Self.templateOrderBytes(records.count), pool: pool)
        defer { arena.free(to: pool) }
        let order = Self.templateOrder(records: records, byClient: byClient, v6Clients: v6Clients, controlled: controlled, arena: &arena)
        // Per destination, shared by its templates: the real server's name, the service and
        // its persistence timeout.
        let shared: [TemplateDestination] = destinations.map { d in
            TemplateDestination(service: d.service.map { services[$0].key },
                                realServer: d.service.flatMap { s in d.realServer.map { services[s].realServers[$0].id } },
                                address: d.address,
                                timeout: d.service.flatMap { services[$0].persistence?.timeoutSeconds })
        }
        var cells = RawVector<TemplateCell>(capacity: order.count, pool: pool)
        let routeParts = identities ? routes.map(TemplateIdentity.RoutePart.init) : []
        if identities { templateIdentities.reserveCapacity(order.count) }
        // Per destination, the timeout alone (above any time left where there is none), and
        // per route the real server's port: read for every template, in the order of the
        // list (records at random), where a `TemplateDestination` read whole retained its
        // strings.
        let timeouts = shared.map { $0.timeout.map(UInt64.init) ?? UInt64.max }
        let ports = routes.map { UInt16(truncatingIfNeeded: $0.ports) }
        timeouts.withUnsafeBufferPointer { timeouts in
            ports.withUnsafeBufferPointer { ports in
                for o32 in order {
                    let o = Int(o32)
                    let r = records[o]
                    let timeout = timeouts[Int(r.destination)]
                    // The kernel arms a template with the timeout and prints whole seconds
                    // left: more than the timeout can only be its 60 s re-arm of a template
                    // past its time.
                    let past = controlled[o] > 0 && UInt64(r.expires) > timeout
                    // The route holds the real server's port (not the 64 MB table, at random).
                    cells.append(TemplateCell(entry: r.entry, destination: r.destination,
                                              controlled: Int32(clamping: controlled[o]), expires: r.expires,
                                              port: ports[Int(r.route)], pastTimeout: past, pastSince: .nan))
                    if identities {
                        templateIdentities.append(TemplateIdentity(client: EntryWord.address(clientBits: r.clientBits, v6Clients: v6Clients),
                                                                   route: routeParts[Int(r.route)]))
                    }
                }
            }
        }
        templates = TemplateTable(store: TemplateStore(cells: cells.handOverValues(), destinations: shared))
    }

    /// What `templateOrder` takes of an arena for `m` templates.
    static func templateOrderBytes(_ m: Int) -> Int { Arena.keyedSortBytes(m) + Arena.bytes(m, Int32.self) }

    /// Template ordinals by controlled connections (most first), then time left, then
    /// client, then destination, then ordinal, in `arena` (`templateOrderBytes`). With IPv4
    /// clients only, a stable radix sort by controlled and time left of `byClient` (already
    /// in client order) instead of a comparison sort of 10^5 records.
    static func templateOrder(records: UnsafeBufferPointer<TemplateRecord>, byClient: UnsafeBufferPointer<Int32>,
                              v6Clients: PooledList<IPAddress>, controlled: UnsafeBufferPointer<Int>, arena: inout Arena,
                              packing: Bool = true) -> UnsafeBufferPointer<Int32> {
        let m = records.count
        guard m > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
        let result = arena.take(m, Int32.self)
        @inline(__always)
        func primary(_ o: Int) -> UInt64 {
            UInt64(UInt32.max - UInt32(clamping: controlled[o])) << 32 | UInt64(records[o].expires)
        }
        guard byClient.count == m, records.allSatisfy({ $0.clientBits >> 32 == 0 }) else {
            struct Order {
                var primary: UInt64
                var client: IPAddress
                var destination: Int32
                var ordinal: Int32
            }
            var order = (0..<m).map {
                Order(primary: primary($0), client: EntryWord.address(clientBits: records[$0].clientBits, v6Clients: v6Clients),
                      destination: records[$0].destination, ordinal: Int32($0))
            }
            order.sort {
                if $0.primary != $1.primary { return $0.primary < $1.primary }
                if $0.client != $1.client { return $0.client < $1.client }
                if $0.destination != $1.destination { return $0.destination < $1.destination }
                return $0.ordinal < $1.ordinal
            }
            for (p, o) in order.enumerated() { result[p] = o.ordinal }
            return UnsafeBufferPointer(start: result, count: m)
        }
        let (keys, keyScratch, ords, ordScratch) = arena.takeKeyedSort(m)
        // Stable: equal primaries keep the order of `byClient` (client, destination, ordinal).
        // The primary's two parts in as many bits as their largest values take, above the
        // place in `byClient`, when they fit one key: one array moved a pass.
        // Controlled connections as `primary` clamps them.
        @inline(__always) func clamped(_ o: Int) -> Int { Int(UInt32(clamping: controlled[o])) }
        var mostControlled = 0, longest: UInt32 = 0
        for o in 0..<m {
            mostControlled = max(mostControlled, clamped(o))
            longest = max(longest, records[o].expires)
        }
        let placeBits = Self.bitWidth(m), controlledBits = Self.bitWidth(mostControlled + 1),
            expiresBits = Self.bitWidth(Int(longest) + 1)
        if packing && placeBits + controlledBits + expiresBits <= 64 {
            for j in 0..<m {
                let o = Int(byClient[j])
                let fewer = UInt64(mostControlled - clamped(o))
                keys[j] = (fewer << UInt64(expiresBits) | UInt64(records[o].expires)) << UInt64(placeBits) | UInt64(j)
            }
            let sorted = RadixSort.sort(keys, scratch: keyScratch, count: m, lowestBit: placeBits).keys
            let mask = (UInt64(1) << UInt64(placeBits)) - 1
            for p in 0..<m { result[p] = byClient[Int(truncatingIfNeeded: sorted[p] & mask)] }
            return UnsafeBufferPointer(start: result, count: m)
        }
        for j in 0..<m {
            let o = Int(byClient[j])
            keys[j] = primary(o)
            ords[j] = Int32(o)
        }
        let sorted = RadixSort.sort(keys, scratch: keyScratch, payload: ords, payloadScratch: ordScratch, count: m, lowestBit: 0)
        return UnsafeBufferPointer(start: sorted.payload!, count: m)
    }

    /// Bits that hold the values below `n` (0 for none or one).
    static func bitWidth(_ n: Int) -> Int { n > 1 ? Int.bitWidth - (n - 1).leadingZeroBitCount : 0 }
}
