import IPVSModel
import IPVSRawMemory

/// Per destination, what the first pass counts, in raw memory: 32 lanes of UInt32 (two
/// cache lines). A connection adds one to the lane of its kernel state (the state's raw
/// value, 0...25), a template to `templates`: an entry costs an increment at an address,
/// not a switch on its state nor a 128-byte `Destination` read and written back.
struct DestinationTally {
    static let lanes = 32
    /// Lanes 0..<26: the states the kernel prints, by raw value.
    static let states = ConnectionState.allNames.count
    /// Lane of a state the reader does not make (it skips unknown ones): counted as OTHER.
    static let otherState = 29
    /// The most seconds any entry of the destination has left, kept for destinations that
    /// are gone alone (`gone`): the dead-destination finding's one figure of them. Kept for
    /// every entry it would be a load, a compare, a select and a store; this way it is a test
    /// of `gone`, which the common entry passes by.
    static let maxExpires = 26
    /// 1 when the destination's service groups clients under a netmask (set once).
    static let grouping = 27
    /// 1 when the destination is not a live real server's (set once).
    static let gone = 28
    static let fromSync = 30
    static let templates = 31

    private(set) var lanes: UnsafeMutablePointer<UInt32>
    private(set) var count = 0
    private var capacity = 16

    init() {
        precondition(Self.states <= Self.maxExpires, "a state's lane would be another counter's")
        precondition(Set([Self.maxExpires, Self.grouping, Self.gone, Self.otherState, Self.fromSync, Self.templates]).count == 6,
                     "two counters in one lane")
        lanes = .allocate(capacity: capacity * Self.lanes)
    }

    /// Adds the resolver's destinations from `count` on (rare: once per destination).
    mutating func add(_ all: [Destination], grouping: [Bool]) {
        if all.count > capacity {
            let bigger = UnsafeMutablePointer<UInt32>.allocate(capacity: all.count * 2 * Self.lanes)
            bigger.moveInitialize(from: lanes, count: count * Self.lanes)
            lanes.deallocate()
            lanes = bigger
            capacity = all.count * 2
        }
        (lanes + count * Self.lanes).initialize(repeating: 0, count: (all.count - count) * Self.lanes)
        for d in count..<all.count {
            if grouping[d] { lanes[d * Self.lanes + Self.grouping] = 1 }
            if !all[d].isLive { lanes[d * Self.lanes + Self.gone] = 1 }
        }
        count = all.count
    }

    /// `d` as the resolver made it, with the counts.
    func destination(_ d: Int, _ base: Destination) -> Destination {
        assert(d >= 0 && d < count, "destination \(d) has no lanes")
        var out = base
        let t = lanes + d * Self.lanes
        for raw in Array(0..<Self.states) + [Self.otherState] where t[raw] > 0 {
            out.connections.add(ConnectionState(rawValue: UInt8(raw)), count: t[raw])
        }
        out.templates = Int(t[Self.templates])
        out.fromSync = Int(t[Self.fromSync])
        out.maxExpires = t[Self.maxExpires]
        return out
    }

    func free() { lanes.deallocate() }
}

/// The first pass over the connection table: each entry's destination (through the route
/// cache), its destination's counts, its template record, and its `EntryWord`, with the
/// digit counts the sort needs.
///
/// Looking an IPv6 client up in the IPv6 index within this loop would wait on memory each
/// time (the stream of entries evicts the index from the caches). Their words wait aside with the
/// client blank, and a loop over those rows alone fills it in after, where the lookups
/// overlap, and appends them. The order of words with equal client bits is the entries'
/// order either way, which is all the stable sort by client keeps.
///
/// The pass is bound by its instruction count more than by the stream of entries: the
/// common entry (an IPv4 client's connection) takes a path of its own that makes its word
/// and goes on, the route cache's and the tally's pointers live in locals, and the sort's
/// digit is counted at an index computed with a constant shift. The other entries' work is
/// a function out of line (`Uncommon`): inline, its values took registers the common path
/// then reloaded from the stack every entry.
struct FirstPass {
    let wordCount: Int
    /// The words' digit counts (owned: the caller deallocates it).
    let histogram: RadixSort.Histogram
    /// The templates in entry order (the caller frees them).
    let records: RawVector<TemplateRecord>
    /// IPv6 client addresses, by the ordinal their words carry (in the order first seen).
    let v6Clients: PooledList<IPAddress>
    /// The counts per destination (the caller frees them).
    let tally: DestinationTally
    /// Entries without a word: their destination does not fit one.
    let unattributed: Int

    /// An IPv6 row waiting for its client's ordinal.
    private struct V6Row {
        var address: IPAddress
        /// Its word without the client; 0 when it has none.
        var word: UInt64
        /// Index of its template record, -1 when it is not a template.
        var record: Int32
    }

    /// The entries the common path does not take (templates, IPv6 clients, destinations
    /// past a word's).
    private struct Uncommon {
        var records: RawVector<TemplateRecord>
        var v6: RawVector<V6Row>
        var unattributed = 0

        init(records: RawVector<TemplateRecord>, v6: RawVector<V6Row>) {
            self.records = records
            self.v6 = v6
        }

        /// `e` (the `index`-th entry) on `found`, whose counts are at `tally`: its template
        /// record and its IPv6 row as they apply; the word to keep now, or 0 for none (no
        /// word kept here is 0: it is an IPv4 template's, with its template bit).
        @inline(never)
        mutating func take(_ e: UnsafePointer<ConnectionEntry>, index i: Int, found: (destination: Int32, route: Int32),
                           tally t: UnsafeMutablePointer<UInt32>) -> UInt64 {
            let d = Int(found.destination)
            let client = e.pointee.client
            let v4 = client.isIPv4
            let fits = d < EntryWord.destinationLimit
            let isTemplate = e.pointee.isTemplate
            let clientBits = v4 ? UInt64(client.ipv4Value) : 1 << 32
            var record: Int32 = -1
            if isTemplate {
                t[DestinationTally.templates] &+= 1
                record = Int32(truncatingIfNeeded: records.count)
                records.append(TemplateRecord(entry: Int32(truncatingIfNeeded: i), destination: found.destination,
                                              route: found.route, expires: e.pointee.expires, hasWord: fits, clientBits: clientBits))
            }
            guard fits else {
                if !v4 { v6.append(V6Row(address: client, word: 0, record: record)) }
                unattributed += 1
                return 0
            }
            let w = EntryWord.make(client: clientBits, destination: d, template: isTemplate,
                                   groupTemplate: isTemplate && t[DestinationTally.grouping] != 0, state: e.pointee.state)
            if v4 { return w }
            v6.append(V6Row(address: client, word: w, record: record))
            return 0
        }
    }

    /// Reads `entries`, writing their words to `words` (room for one per entry).
    /// Gives back what the first pass's results hold (the histogram, the template records)
    /// once the passes that read them are done.
    func free() {
        histogram.deallocate()
        records.free()
    }

    init(_ entries: UnsafeBufferPointer<ConnectionEntry>, words: UnsafeMutablePointer<UInt64>,
         cache: inout RouteCache, resolver: inout Resolver, pool: BufferPool?) {
        let n = entries.count
        // Templates are a few percent of a table; growing past this is a copy or two.
        var records = RawVector<TemplateRecord>(capacity: max(64, n / 8), pool: pool)
        var v6 = RawVector<V6Row>(capacity: max(64, n / 8), pool: pool)
        defer { v6.free() }
        var tally = DestinationTally()
        var wordCount = 0
        var unattributed = 0
        let histogram = RadixSort.Histogram(lowestBit: Int(ClientOrder.bucketShift), digitBits: ClientOrder.bucketBits)
        // The one digit: a word's top `bucketBits` bits index it.
        let buckets = histogram.counts(ofPass: 0)
        /// Writes a word and counts its digit.
        @inline(__always) func keep(_ w: UInt64) {
            words[wordCount] = w
            buckets[Int(truncatingIfNeeded: w &>> ClientOrder.bucketShift)] &+= 1
            wordCount &+= 1
        }
        if let base = entries.baseAddress {
            // The cache's and the tally's pointers in locals: they change only on a new route.
            var look = cache.lookup
            var lanes = tally.lanes
            var rest = Uncommon(records: records, v6: v6)
            for i in 0..<n {
                let e = base + i
                let ports = RouteCache.ports(e.pointee)
                var found = look.home(e.pointee.virtual, e.pointee.destination, ports)
                if found.destination < 0 {
                    found = cache.awayOrNew(e.pointee, ports, &resolver)
                    look = cache.lookup
                    if resolver.destinations.count > tally.count {
                        tally.add(resolver.destinations, grouping: resolver.grouping)
                        lanes = tally.lanes
                    }
                }
                let d = Int(truncatingIfNeeded: UInt32(bitPattern: found.destination))
                let t = lanes + d &* DestinationTally.lanes
                if t[DestinationTally.gone] != 0 {
                    t[DestinationTally.maxExpires] = max(t[DestinationTally.maxExpires], e.pointee.expires)
                }
                let client = e.pointee.client
                let state = e.pointee.state
                if !e.pointee.isTemplate {
                    t[min(Int(state.rawValue), DestinationTally.otherState)] &+= 1
                    if e.pointee.flags & ConnectionEntry.fromSync != 0 { t[DestinationTally.fromSync] &+= 1 }
                    if client.isIPv4 && d < EntryWord.destinationLimit {
                        // Most entries: an IPv4 client's connection. Its word, and no more.
                        keep(EntryWord.make(client: UInt64(client.ipv4Value), destination: d, template: false,
                                            groupTemplate: false, state: state))
                        continue
                    }
                }
                // A template, an IPv6 client (the ordinal comes after the loop), or a
                // destination past a word's: out of line, so that its values do not take
                // the common entry's registers.
                let w = rest.take(e, index: i, found: found, tally: t)
                if w != 0 { keep(w) }
            }
            records = rest.records
            v6 = rest.v6
            unattributed = rest.unattributed
        }
        // The IPv6 clients' ordinals, in the order first seen: open addressing over 4-byte
        // slots (ordinal + 1), the address compared in the ordinals' own list. The index is
        // a quarter of the size of one that holds the addresses, small enough for the L2
        // cache, where the rows' lookups missed it each time.
        var bits = 6
        while 1 << bits < 2 * v6.count { bits += 1 }
        let mask = (1 << bits) - 1
        // The addresses, which the aggregates keep, and the index after them, in one pooled
        // block: a megabyte or so at 10^6 entries, fresh small pages in a one-shot analysis
        // as an array and an allocation of their own (~320 page faults).
        let addressBytes = (max(1, v6.count) * MemoryLayout<IPAddress>.stride + 15) / 16 * 16
        let block = pool.take(bytes: addressBytes + (1 << bits) * MemoryLayout<Int32>.stride)
        let addresses = block.typed(IPAddress.self)
        let slots = (block.base + addressBytes).bindMemory(to: Int32.self, capacity: 1 << bits)
        slots.initialize(repeating: 0, count: 1 << bits)
        var v6Count = 0
        for k in 0..<v6.count {
            let r = v6[k]
            let a = r.address
            var x = (a.high &* Mixer.golden) ^ (a.low &* Mixer.prime2)
            x ^= x >> 29
            var i = Int(truncatingIfNeeded: (x &* Mixer.finalizer1) >> UInt64(64 - bits))
            var o = -1
            while true {
                let slot = Int(slots[i])
                if slot == 0 {
                    o = v6Count
                    slots[i] = Int32(truncatingIfNeeded: o + 1)
                    (addresses + o).initialize(to: a)
                    v6Count += 1
                    break
                }
                if addresses[slot - 1] == a {
                    o = slot - 1
                    break
                }
                i = (i + 1) & mask
            }
            if r.word != 0 {
                keep(r.word | UInt64(o) << EntryWord.clientShift)
            }
            if r.record >= 0 { records[Int(r.record)].clientBits = 1 << 32 | UInt64(o) }
        }
        self.histogram = histogram
        self.records = records
        self.v6Clients = PooledList(store: PooledValues(block: block, count: v6Count, pool: pool))
        self.tally = tally
        self.wordCount = wordCount
        self.unattributed = unattributed
    }
}
