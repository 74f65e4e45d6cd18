import IPVSModel
import IPVSRawMemory

/// The pass over the words in client order (and by destination within a client): each
/// client's connections per destination (a load), which go to the load histogram (and,
/// from `heavyFrom` connections on, to the heavy loads), to the persistence groups, and to
/// the template that controls them.
///
/// A load is a run of words with the same client bits and destination. A flat loop over a
/// chunk of words notes, per load, its key and where it ends: the word after it, and the
/// template words up to it (a running count). Its connections are then the difference of
/// two ends, with nothing counted per state: the load histogram and the templates' credits
/// need totals only, and the few loads whose service groups clients count their states from
/// their words. A second flat loop over the chunk's loads does the common work and leaves
/// what only some services ask (groups, a fwmark service's templates) to a branch taken by
/// those loads alone. The chunk's loads stay in the L2 cache between the loops.
///
/// (Counting each load's states in the word loop, in a SIMD register per load, was no
/// faster: the word loop is kept light, the load loop has the clients to open. Figures in
/// `Benchmarks/ANALYSIS.md`.)
struct ClientPass {
    /// Per destination, what its loads ask, a bit each, in the byte at `bitsShift` of its
    /// `asks`.
    static let groupsBit: UInt8 = 1, ownTemplateBit: UInt8 = 2, alternatesBit: UInt8 = 4
    /// What a destination's loads ask of the load loop, in one word: the loop reads one
    /// value a load. Bits 0-31: where the destination's row of the load histogram starts (0
    /// for none); 32-39: the bits it asks (`groupsBit`...); 40 up: from how many connections
    /// its loads take the branch out of line (`slowFrom`).
    struct Asks {
        private let raw: UInt64
        private static let bitsShift: UInt64 = 32, slowShift: UInt64 = 40

        /// `slowFrom`: 0 where every load goes out of line (its service groups clients: even
        /// a load of templates alone), 1 where those with connections do (a fwmark service's
        /// templates may be another's), else the heavy loads' floor. One compare a load then
        /// decides it, where the three conditions took a dozen instructions and a register
        /// in the load loop.
        init(bits: UInt8, row: Int, slowFrom: Int) {
            precondition(slowFrom >= 0 && slowFrom < 1 << 24 && row >= 0 && row * LoadHistogram.buckets < 1 << 32,
                         "a destination's asks do not fit")
            raw = UInt64(slowFrom) << Self.slowShift | UInt64(bits) << Self.bitsShift | UInt64(row * LoadHistogram.buckets)
        }

        /// The first of the destination's `LoadHistogram.buckets` counters.
        @inline(__always) var histogramStart: Int { Int(truncatingIfNeeded: UInt32(truncatingIfNeeded: raw)) }
        /// What it asks: `groupsBit`, `ownTemplateBit`, `alternatesBit`.
        @inline(__always) var bits: Int { Int(truncatingIfNeeded: raw >> Self.bitsShift) & 0xFF }
        /// From how many connections a load goes out of line.
        @inline(__always) var slowFrom: Int { Int(truncatingIfNeeded: raw >> Self.slowShift) }
    }

    /// Where a load ends, in one word: the index of the word after it (high 32 bits) and
    /// the template words of the sorted run up to its end (low 32 bits). A load's words and
    /// templates are then the differences of two ends.
    struct LoadEnd {
        fileprivate let raw: UInt64

        @inline(__always) init(word: Int, templates: UInt64) {
            assert(word >= 0 && word < 1 << 32 && templates < 1 << 32, "a load's end does not fit")
            raw = UInt64(truncatingIfNeeded: word) << 32 | templates
        }
        static let start = LoadEnd(word: 0, templates: 0)

        /// The index of the word after the load.
        @inline(__always) var word: Int { Int(truncatingIfNeeded: raw >> 32) }
        /// Template words of the sorted run up to the load's end.
        @inline(__always) var templates: Int { Int(truncatingIfNeeded: raw & 0xFFFF_FFFF) }
    }

    /// Words a chunk; its loads (at most as many) fit the L2 cache.
    static let chunkWords = 4096

    private(set) var clientCount = 0

    /// A chunk's loads, in the order of their words: each one's key (its words' bits above
    /// `EntryWord.destinationShift`: client bits and destination) and its end (`LoadEnd`).
    ///
    /// Invariants: `capacity` slots each, all initialized; the word loop writes slot
    /// `run.load` only, which stays below `capacity` (a chunk's words make at most a load
    /// each, and one load is carried over: `take` checks it).
    private struct Loads {
        var key: UnsafeMutablePointer<UInt64>
        var end: UnsafeMutablePointer<LoadEnd>
        let capacity: Int

        init(capacity: Int) {
            self.capacity = capacity
            key = .allocate(capacity: capacity)
            key.initialize(repeating: 0, count: capacity)
            end = .allocate(capacity: capacity)
            end.initialize(repeating: .start, count: capacity)
        }

        func free() {
            key.deallocate()
            end.deallocate()
        }
    }

    /// What the word loop carries from word to word and chunk to chunk: the current load
    /// (its place in the chunk) and key, and the template words met. No word's key is all
    /// ones (keys are 54 bits), so the first word opens a load.
    private struct Run {
        var load = -1
        var key = UInt64.max
        var templates: UInt64 = 0
    }

    /// What the load loop carries from load to load and chunk to chunk.
    private struct Settled {
        /// The end of the last load settled.
        var end = LoadEnd.start
        /// The current client's index and client bits.
        var client = -1
        var clientBits = UInt64.max
    }

    /// What only some loads ask (a persistence group's, a fwmark service's, a heavy one),
    /// apart from the load loop: out of line, its values do not compete for the loop's
    /// registers.
    struct Rare {
        let words: UnsafePointer<UInt64>
        let v6Clients: PooledList<IPAddress>
        let netmask: [PersistenceNetmask?]
        let alternates: [[(Int, AddressFamily)]]
        let lookup: TemplateLookup
        let byClient: UnsafeBufferPointer<Int32>
        /// Connections per template ordinal, credited through groups and fwmark services.
        let controlled: UnsafeMutablePointer<Int>
        var groups: GroupBuilder
        let heavyFrom: Int
        /// The loads of `heavyFrom` connections or more.
        var heavy: RawVector<LoadTotal>

        /// A load of destination `d` (asks `a`) whose service groups clients, or whose
        /// connections may belong to another fwmark service's template, or of `heavyFrom`
        /// connections or more: words
        /// `startWord..<endWord`, template words `startTemplate..<endTemplate` of the sorted
        /// run; `own`: 1 when its own template was credited.
        @inline(never)
        mutating func take(d: Int, asks a: Int, clientBits bits: UInt64, client: Int, total: Int, own: Int,
                           startWord: Int, endWord: Int, startTemplate: Int, endTemplate: Int) {
            if total >= heavyFrom { heavy.append(LoadTotal(client: client, destination: d, connections: total)) }
            let address = EntryWord.address(clientBits: bits, v6Clients: v6Clients)
            var t: Int32 = -1
            var attributed = false
            if total > 0 && own == 0 && UInt8(a) & ClientPass.alternatesBit != 0 {
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
            if UInt8(a) & ClientPass.groupsBit != 0 {
                let i = groups.load(d, address)
                if i >= 0 {
                    // The group's templates in this run (the kernel writes them under the
                    // group's address, which may be a member's own).
                    for j in startTemplate..<endTemplate { groups.addTemplate(load: i, ordinal: byClient[j], client: address) }
                    if total > 0 {
                        groups.add(words: words, startWord..<endWord, load: i, client: client, credited: attributed ? total : 0)
                    }
                }
            }
        }
    }

    private let words: UnsafePointer<UInt64>
    private let asks: UnsafePointer<Asks>
    private let controlledInRun: UnsafeMutablePointer<Int>
    private let starts: UnsafeMutablePointer<Int32>
    private let histogram: UnsafeMutablePointer<UInt32>
    private var rare: Rare
    var groups: GroupBuilder { rare.groups }
    /// The loads of `heavyFrom` connections or more, by client then destination.
    var heavy: RawVector<LoadTotal> { rare.heavy }
    /// A chunk's words make at most a load each, and one load is carried over.
    private let loads = Loads(capacity: ClientPass.chunkWords + 1)
    private var run = Run()
    private var settled = Settled()

    /// A pass over `words` (sorted by client then destination), taken a range at a time.
    /// - `asks`: per destination, what its loads ask (`Asks`).
    /// - `byClient`: template ordinals in the order the sorted words meet them.
    /// - `controlledInRun`: per template word met, the connections of its own loads; slot
    ///   -1 takes the (zero) credits of loads without one.
    /// - `starts`: each client's first word (room for one per word); `starts[-1]` takes the
    ///   writes of loads that open no client.
    /// - `histogram`: `LoadHistogram.buckets` counters per row, zeroed; a load counts in
    ///   its destination's row (row 0 takes those of destinations without one).
    /// - `heavyFrom`: from how many connections (at least 1) a load is kept one by one.
    ///
    /// (Spare slots at -1 instead of selects between a slot and a spare: every load writes
    /// both, and the load loop has more live values than registers.)
    init(words: UnsafePointer<UInt64>, v6Clients: PooledList<IPAddress>,
         asks: UnsafePointer<Asks>, netmask: [PersistenceNetmask?], alternates: [[(Int, AddressFamily)]],
         lookup: TemplateLookup, byClient: UnsafeBufferPointer<Int32>,
         controlledInRun: UnsafeMutablePointer<Int>, controlled: UnsafeMutablePointer<Int>, groups: GroupBuilder,
         starts: UnsafeMutablePointer<Int32>, histogram: UnsafeMutablePointer<UInt32>, heavyFrom: Int, pool: BufferPool?) {
        precondition(heavyFrom >= 1, "a load of no connection kept")
        self.words = words
        self.asks = asks
        self.controlledInRun = controlledInRun
        self.starts = starts
        self.histogram = histogram
        rare = Rare(words: words, v6Clients: v6Clients, netmask: netmask, alternates: alternates, lookup: lookup,
                    byClient: byClient, controlled: controlled, groups: groups, heavyFrom: heavyFrom,
                    heavy: RawVector(capacity: 1024, pool: pool))
    }

    /// The words of `range`, which follows the ranges taken before.
    mutating func take(_ range: Range<Int>) {
        precondition(range.upperBound < 1 << 31, "a word index would not fit a load's end")
        var k0 = range.lowerBound
        while k0 < range.upperBound {
            let k1 = min(range.upperBound, k0 + Self.chunkWords)
            precondition(run.load + 1 + (k1 - k0) <= loads.capacity, "more loads than words")
            Self.noteLoads(words, k0..<k1, &run, loads)
            // The current load may go on in the next words: it waits for them.
            settle(keepingOpen: true)
            k0 = k1
        }
    }

    /// After the last range: the loads left. `count`: the words taken.
    mutating func finish(count n: Int) {
        settle(keepingOpen: false)
        starts[settled.client + 1] = Int32(truncatingIfNeeded: n)
        clientCount = settled.client + 1
        loads.free()
    }

    private mutating func settle(keepingOpen: Bool) {
        let done = keepingOpen ? run.load : run.load + 1
        guard done > 0 else { return }
        Self.settle(loads, 0..<done, &settled, asks: asks, controlledInRun: controlledInRun, starts: starts,
                    histogram: histogram, rare: &rare)
        if keepingOpen {
            loads.key[0] = loads.key[run.load]
            loads.end[0] = loads.end[run.load]
        }
        run.load -= done
    }

    /// The word loop: each word's load (a new one where its key changes), the load's end.
    /// Every store goes to the current load's place, so a word costs no branch.
    private static func noteLoads(_ words: UnsafePointer<UInt64>, _ range: Range<Int>, _ run: inout Run, _ loads: Loads) {
        var r = run
        defer { run = r }
        let templateShift = UInt64(EntryWord.template.trailingZeroBitCount)
        for k in range {
            let w = words[k]
            let key = w >> EntryWord.destinationShift
            let diff = key ^ r.key
            r.key = key
            r.load &+= Int(truncatingIfNeeded: (diff | (0 &- diff)) >> 63)
            r.templates &+= w >> templateShift & 1
            loads.key[r.load] = key
            loads.end[r.load] = LoadEnd(word: k &+ 1, templates: r.templates)
        }
    }

    /// The load loop: each complete load's client, its count in the histogram, its own
    /// template's credit, and (a branch taken by their loads alone) the groups, a fwmark
    /// service's templates and the heavy loads.
    @inline(never)
    private static func settle(_ loads: Loads, _ range: Range<Int>, _ settled: inout Settled,
                               asks: UnsafePointer<Asks>, controlledInRun: UnsafeMutablePointer<Int>,
                               starts: UnsafeMutablePointer<Int32>, histogram: UnsafeMutablePointer<UInt32>,
                               rare: inout Rare) {
        var st = settled
        defer { settled = st }
        for s in range {
            let key = loads.key[s], end = loads.end[s]
            let startWord = st.end.word
            let startTemplate = st.end.templates
            let endTemplate = end.templates
            let templates = endTemplate &- startTemplate
            let total = end.word &- startWord &- templates
            st.end = end
            let d = Int(truncatingIfNeeded: key) & (EntryWord.destinationLimit - 1)
            let bits = key >> (EntryWord.clientShift - EntryWord.destinationShift)
            let info = asks[d]
            let a = info.bits
            // A load opens a client where its client bits are not the current client's.
            // Selects by masks, not `?:`: a new client is a coin toss a load, and the
            // compiler made branches of those. The client starts at the load that opens it.
            // (A load of a persistence group's templates alone opens none: its client bits
            // are the group's address, not a client's. Such loads take the branch below,
            // which takes the opening back.)
            let previous = st.clientBits
            let opens = Int(truncatingIfNeeded: ((bits ^ previous) | (0 &- (bits ^ previous))) >> 63)
            st.client &+= opens
            st.clientBits = bits
            starts[st.client | (opens &- 1)] = Int32(truncatingIfNeeded: startWord)
            // A load of no connection (a template's alone) counts in bucket 0, which no one
            // reads: an add, not a branch.
            histogram[info.histogramStart &+ min(total, LoadHistogram.buckets &- 1)] &+= 1
            // Its own template (a netmask that does not group), met in this run: of two,
            // the later entry (the kernel keeps one template per key).
            // (A load of no connection may count as crediting it: it adds 0.)
            let own = ((templates | (0 &- templates)) >> 63 & 1) & (a >> ownTemplateBit.trailingZeroBitCount) & 1
            controlledInRun[(endTemplate &- 1) | (own &- 1)] &+= total & (0 &- own)
            guard total >= info.slowFrom else { continue }
            if total == 0 && UInt8(truncatingIfNeeded: a) & groupsBit != 0 {
                // A group's templates alone: the client they opened was none (the next
                // client's start overwrites the one written). The group's templates in the
                // same run come before its members' words (`forEachWord` skips them).
                st.client &-= opens
                st.clientBits = previous
            }
            rare.take(d: d, asks: a, clientBits: bits, client: st.client, total: total, own: own, startWord: startWord,
                      endWord: end.word, startTemplate: startTemplate, endTemplate: endTemplate)
        }
    }
}
