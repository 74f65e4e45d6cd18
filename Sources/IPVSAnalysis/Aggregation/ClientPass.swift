import IPVSModel

/// The pass over the words in client order (and by destination within a client): each
/// client's connections per destination (a load), which go to the load totals, to the
/// persistence groups, and to the template that controls them.
///
/// A load is a run of words. A flat loop over a chunk of words counts each run in a
/// register (a new client, a new load or a template is a coin toss a word, so there is no
/// branch on them); a second flat loop over the chunk's loads does the common work and
/// leaves what only some services ask (groups, a fwmark service's templates) to a branch
/// taken by those loads alone. The chunk's loads stay in the L2 cache between the loops.
struct ClientPass {
    /// Per destination, what its loads ask, a bit each.
    static let groupsBit: UInt8 = 1, ownTemplateBit: UInt8 = 2, alternatesBit: UInt8 = 4

    /// Words a chunk; its loads (at most as many) fit the L2 cache.
    static let chunkWords = 4096
    /// A load's counters: the seven `StateCounts` lanes, then its templates.
    static let templateLane = 7
    /// The destination half of `owner` for a persistence group's template word, which is a
    /// load of its own (its client half is then the word's index).
    static let groupTemplateMark: UInt64 = 0xFFFF_FFFF

    /// Set in `Run.key` when no load is open (no word's key has it: keys are 54 bits).
    static let closed: UInt64 = 1 << 60

    private(set) var clientCount = 0
    private(set) var loadTotalCount = 0

    /// A chunk's loads, in the order of their words.
    private struct Loads {
        /// Client << 32 | destination.
        var owner: UnsafeMutablePointer<UInt64>
        /// The template word (its place among the sorted template words) that the load's
        /// connections hang from: the last of the load's templates.
        var template: UnsafeMutablePointer<Int32>
        var counters: UnsafeMutablePointer<SIMD8<UInt32>>
        let capacity: Int

        init(capacity: Int) {
            self.capacity = capacity
            owner = .allocate(capacity: capacity)
            owner.initialize(repeating: 0, count: capacity)
            template = .allocate(capacity: capacity)
            template.initialize(repeating: 0, count: capacity)
            counters = .allocate(capacity: capacity)
            counters.initialize(repeating: .zero, count: capacity)
        }

        /// Load `from` to `to` (a place that is done with).
        func move(_ from: Int, to: Int) {
            owner[to] = owner[from]
            template[to] = template[from]
            counters[to] = counters[from]
        }

        func free() {
            owner.deallocate()
            template.deallocate()
            counters.deallocate()
        }
    }

    /// What the word loop carries from word to word and chunk to chunk.
    private struct Run {
        /// The current client's index, and where its words start (the first of the run
        /// of its client bits, which a group's template under the same address may open).
        var client = -1
        var firstWord = 0
        /// The current load (its place in the chunk), its client bits and destination
        /// (the word's bits above `EntryWord.destinationShift`), its counts so far, and its
        /// last template word.
        var load = -1
        var key = UInt64.max | ClientPass.closed
        var runBits = UInt64.max
        var count = SIMD8<UInt32>.zero
        var held: Int32 = 0
        /// Template words met.
        var templates = 0
    }

    /// A word's counter increment, by its low bits: `state | template << 5` (the state's
    /// raw value is below 32), a one in the state's `StateCounts` lane or in the templates'.
    private static let units: [SIMD8<UInt32>] = (0..<64).map { i in
        let lane = i >= 32 ? templateLane : StateCounts.lane(ConnectionState(rawValue: UInt8(i)))
        return SIMD8<UInt32>((0..<8).map { $0 == lane ? 1 : 0 })
    }

    private let words: UnsafePointer<UInt64>
    private let v6Clients: [IPAddress]
    private let asks: UnsafePointer<UInt8>
    private let netmask: [PersistenceNetmask?]
    private let alternates: [[(Int, AddressFamily)]]
    private let lookup: TemplateLookup
    private let byClient: UnsafeBufferPointer<Int32>
    private let controlledInRun: UnsafeMutablePointer<Int>
    private let starts: UnsafeMutablePointer<Int32>
    private let totals: UnsafeMutablePointer<LoadTotal>
    /// Connections per template ordinal, credited through groups and fwmark services.
    var controlled: [Int]
    var groups: GroupBuilder
    /// A chunk's words make at most a load each, and one load is carried over.
    private let loads = Loads(capacity: ClientPass.chunkWords + 1)
    private let unitTable: UnsafeMutablePointer<SIMD8<UInt32>>
    private var run = Run()
    private var totalCount = 0

    /// A pass over `words` (sorted by client then destination), taken a range at a time.
    /// - `asks`: per destination, `groupsBit | ownTemplateBit | alternatesBit` as they apply.
    /// - `byClient`: template ordinals in the order the sorted words meet them.
    /// - `controlledInRun`: per template word met, the connections of its own loads
    ///   (`byClient.count + 1` of them: the last takes the credits of loads without one).
    /// - `starts`, `totals`: each client's first word, each load's total (room for one per word).
    init(words: UnsafePointer<UInt64>, v6Clients: [IPAddress],
         asks: UnsafePointer<UInt8>, netmask: [PersistenceNetmask?], alternates: [[(Int, AddressFamily)]],
         lookup: TemplateLookup, byClient: UnsafeBufferPointer<Int32>,
         controlledInRun: UnsafeMutablePointer<Int>, controlled: [Int], groups: GroupBuilder,
         starts: UnsafeMutablePointer<Int32>, totals: UnsafeMutablePointer<LoadTotal>) {
        precondition(ConnectionState.allNames.count <= 32, "a state's raw value would reach the template bit of `units`")
        self.words = words
        self.v6Clients = v6Clients
        self.asks = asks
        self.netmask = netmask
        self.alternates = alternates
        self.lookup = lookup
        self.byClient = byClient
        self.controlledInRun = controlledInRun
        self.starts = starts
        self.totals = totals
        self.controlled = controlled
        self.groups = groups
        unitTable = .allocate(capacity: Self.units.count)
        unitTable.initialize(from: Self.units, count: Self.units.count)
    }

    /// The words of `range`, which follows the ranges taken before.
    mutating func take(_ range: Range<Int>) {
        var k0 = range.lowerBound
        while k0 < range.upperBound {
            let k1 = min(range.upperBound, k0 + Self.chunkWords)
            precondition(run.load + 1 + (k1 - k0) <= loads.capacity, "more loads than words")
            Self.countRuns(words, k0..<k1, &run, loads, unitTable, byClient, starts)
            // The current load may go on in the next words: it waits for them.
            settle(keepingOpen: true)
            k0 = k1
        }
    }

    /// After the last range: the loads left. `count`: the words taken.
    mutating func finish(count n: Int) {
        settle(keepingOpen: false)
        starts[run.client + 1] = Int32(truncatingIfNeeded: n)
        clientCount = run.client + 1
        loadTotalCount = totalCount
        loads.free()
        unitTable.deallocate()
    }

    private mutating func settle(keepingOpen: Bool) {
        let open = keepingOpen && run.key & Self.closed == 0
        let done = open ? run.load : run.load + 1
        Self.settle(loads, 0..<done, words: words, v6Clients: v6Clients, asks: asks, netmask: netmask,
                    alternates: alternates, lookup: lookup, controlledInRun: controlledInRun, spareCredit: byClient.count,
                    controlled: &controlled, groups: &groups, starts: starts, totals: totals, totalCount: &totalCount)
        if open { loads.move(run.load, to: 0) }
        run.load -= done
    }

    /// The word loop: each word's counts added to its load (a new one where its client or
    /// destination changes), each client's first word.
    private static func countRuns(_ words: UnsafePointer<UInt64>, _ range: Range<Int>, _ run: inout Run, _ loads: Loads,
                                  _ units: UnsafePointer<SIMD8<UInt32>>, _ byClient: UnsafeBufferPointer<Int32>,
                                  _ starts: UnsafeMutablePointer<Int32>) {
        var r = run
        defer { run = r }
        for k in range {
            let w = words[k]
            let bits = w >> EntryWord.clientShift
            let key = w >> EntryWord.destinationShift
            // Selects by masks, not `?:`: the compiler made branches of those.
            let newRun = Int(truncatingIfNeeded: ((bits ^ r.runBits) | (0 &- (bits ^ r.runBits))) >> 63)
            r.runBits = bits
            r.firstWord ^= (r.firstWord ^ k) & (0 &- newRun)
            if w & EntryWord.groupTemplate != 0 {
                // A group's template is a load of its own. It goes after the current load,
                // or before it when it falls within that load's run (its client is the
                // group's address): that load goes on after it.
                r.load &+= 1
                var p = r.load
                if key == r.key {
                    p = r.load - 1
                    loads.move(p, to: r.load)
                } else {
                    // The next word's load is a new one, its client perhaps not.
                    r.key |= Self.closed
                }
                loads.owner[p] = UInt64(k) << 32 | Self.groupTemplateMark
                loads.template[p] = byClient[r.templates]
                r.templates &+= 1
                continue
            }
            let otherClient = (key ^ r.key) >> 21 & 0x1_FFFF_FFFF
            let newClient = Int(truncatingIfNeeded: (otherClient | (0 &- otherClient)) >> 63)
            let newLoad = Int(truncatingIfNeeded: ((key ^ r.key) | (0 &- (key ^ r.key))) >> 63)
            r.key = key
            r.client &+= newClient
            r.load &+= newLoad
            starts[r.client] = Int32(truncatingIfNeeded: r.firstWord)
            let isTemplate = Int(truncatingIfNeeded: w >> UInt64(EntryWord.template.trailingZeroBitCount)) & 1
            r.count = (r.count & SIMD8(repeating: UInt32(truncatingIfNeeded: newLoad &- 1)))
                &+ units[Int(truncatingIfNeeded: w & 31) | isTemplate << 5]
            loads.counters[r.load] = r.count
            loads.owner[r.load] = UInt64(UInt32(truncatingIfNeeded: r.client)) << 32 | (key & 0x1F_FFFF)
            // The kernel keeps one template per key; of two, the later entry is taken.
            r.held ^= (r.held ^ Int32(truncatingIfNeeded: r.templates)) & Int32(truncatingIfNeeded: 0 &- isTemplate)
            loads.template[r.load] = r.held
            r.templates &+= isTemplate
        }
    }
    /// The load loop: each complete load to the totals, its own template's credit, and
    /// (a branch taken by their loads alone) the groups and a fwmark service's templates.
    private static func settle(_ loads: Loads, _ range: Range<Int>, words: UnsafePointer<UInt64>, v6Clients: [IPAddress],
                               asks: UnsafePointer<UInt8>, netmask: [PersistenceNetmask?], alternates: [[(Int, AddressFamily)]],
                               lookup: TemplateLookup, controlledInRun: UnsafeMutablePointer<Int>, spareCredit: Int,
                               controlled: inout [Int], groups b: inout GroupBuilder, starts: UnsafeMutablePointer<Int32>,
                               totals: UnsafeMutablePointer<LoadTotal>, totalCount: inout Int) {
        var totalCount_ = totalCount
        defer { totalCount = totalCount_ }
        for s in range {
            let owner = loads.owner[s]
            let client = Int(truncatingIfNeeded: owner >> 32)
            if owner & groupTemplateMark == groupTemplateMark {
                // A group's template: its client is the group's address.
                let w = words[client]
                let address = EntryWord.address(clientBits: w >> EntryWord.clientShift, v6Clients: v6Clients)
                let i = b.load(EntryWord.destination(w), address)
                if i >= 0 { b.addTemplate(load: i, ordinal: loads.template[s], client: address) }
                continue
            }
            let d = Int(truncatingIfNeeded: owner & 0xFFFF_FFFF)
            let lanes = loads.counters[s]
            let total = Int(lanes[0]) &+ Int(lanes[1]) &+ Int(lanes[2]) &+ Int(lanes[3]) &+ Int(lanes[4])
                &+ Int(lanes[5]) &+ Int(lanes[6])
            totals[totalCount_] = LoadTotal(client: client, destination: d, connections: total)
            let some = (total | (0 &- total)) >> 63 & 1
            totalCount_ &+= some
            let a = Int(asks[d])
            // Its own template (a netmask that does not group), met in this run.
            let own = some & Int(truncatingIfNeeded: (lanes[templateLane] | (0 &- lanes[templateLane])) >> 31)
                & Int(a >> ownTemplateBit.trailingZeroBitCount) & 1
            let credited = Int(loads.template[s]) ^ ((Int(loads.template[s]) ^ spareCredit) & (own &- 1))
            controlledInRun[credited] &+= total & (0 &- own)
            guard some & (own ^ 1) & ((a & Int(groupsBit | alternatesBit)) | (0 &- (a & Int(groupsBit | alternatesBit)))) >> 63 != 0
            else { continue }
            let address = EntryWord.address(clientBits: words[Int(starts[client])] >> EntryWord.clientShift, v6Clients: v6Clients)
            var t: Int32 = -1
            var attributed = false
            if UInt8(a) & alternatesBit != 0 {
                // A connection that came through a fwmark service (no mark in /proc) may
                // belong to another fwmark service with the same real server.
                let index = lookup.index
                if let m = netmask[d] { t = index.value(Int32(d), m.apply(to: address)) }
                for (a, family) in alternates[d] where t < 0 && family == address.family {
                    if let m = netmask[a] { t = index.value(Int32(a), m.apply(to: address)) }
                }
                // Credited here: not again through the group.
                attributed = t >= 0
            }
            if t >= 0 { controlled[Int(t)] += total }
            if UInt8(a) & groupsBit != 0 {
                let i = b.load(d, address)
                if i >= 0 {
                    let l = UnsafeRawPointer(loads.counters + s).loadUnaligned(as: StateCounts.self)
                    b.add(l, load: i, client: client, credited: attributed ? total : 0)
                }
            }
        }
    }
}
