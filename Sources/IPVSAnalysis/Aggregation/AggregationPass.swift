import Foundation
import IPVSModel

/// An entry as the by-client sort sees it, in one word: the client in the high 33 bits (an
/// IPv4 address, or 1 << 32 | the ordinal of an IPv6 address), its destination in the next
/// 21, whether it is a persistence group's template (its client is then the group's masked
/// address), whether it is a template, and its state (8 bits). Sorting words by their
/// high bits groups each client's entries without a client × real-server dictionary.
enum EntryWord {
    static let clientShift: UInt64 = 31
    /// Words whose clients share their top 24 bits form a block: the radix sort orders
    /// blocks, three 8-bit digits, and `ClientOrder.finishBlocks` puts each block that
    /// holds more than one client in client order (most hold one).
    static let blockShift: UInt64 = clientShift + 9
    static let sortDigitBits = 8
    /// The client bits below the block's: what `ClientOrder.finish` sorts on.
    static let inBlockMask = (1 << Int(blockShift - clientShift)) - 1
    static let destinationShift: UInt64 = 10
    static let destinationLimit = 1 << 21
    static let groupTemplate: UInt64 = 1 << 9
    static let template: UInt64 = 1 << 8

    @inline(__always)
    static func make(client: UInt64, destination: Int, template: Bool, groupTemplate: Bool, state: ConnectionState) -> UInt64 {
        client << clientShift | UInt64(destination) << destinationShift
            | (template ? Self.template : 0) | (groupTemplate ? Self.groupTemplate : 0) | UInt64(state.rawValue)
    }

    @inline(__always)
    static func destination(_ w: UInt64) -> Int {
        Int(truncatingIfNeeded: w >> destinationShift) & (destinationLimit - 1)
    }

    @inline(__always)
    static func state(_ w: UInt64) -> ConnectionState { ConnectionState(rawValue: UInt8(truncatingIfNeeded: w)) }

    /// The address a word's client bits stand for: IPv4 itself, IPv6 by its ordinal.
    @inline(__always)
    static func address(clientBits: UInt64, v6Clients: [IPAddress]) -> IPAddress {
        clientBits >> 32 == 0 ? IPAddress(ipv4: UInt32(truncatingIfNeeded: clientBits)) : v6Clients[Int(clientBits & 0xFFFF_FFFF)]
    }
}

/// The words in client order, and each client's words by destination: a counting pass by
/// destination, then a stable sort on the client bits, in two steps. Three 8-bit radix
/// passes order the words by the top 24 bits of their client (blocks); then each block is
/// put in order by the rest, in cache. Clients are sparse in the address space, so most
/// blocks hold a single client and need nothing, where a fourth radix pass would move
/// every word once more.
///
/// The destination pass costs a pass over the words; it makes each of a client's loads a
/// run of words, which the client pass then counts in registers. Finding a word's load
/// among its client's (a slot per destination, written and read back word after word)
/// had cost more than the pass.
enum ClientOrder {
    /// Moves the words from `words` to `scratch` in destination order (stable). `counts`:
    /// the words per destination, all of them.
    static func sortByDestination(_ words: UnsafeMutablePointer<UInt64>, scratch: UnsafeMutablePointer<UInt64>, count n: Int,
                                  counts: [Int]) {
        var next = [Int](repeating: 0, count: counts.count)
        var sum = 0
        for d in counts.indices {
            next[d] = sum
            sum += counts[d]
        }
        precondition(sum == n, "destination counts of other words")
        next.withUnsafeMutableBufferPointer { next in
            for i in 0..<n {
                let w = words[i]
                let d = EntryWord.destination(w)
                scratch[next[d]] = w
                next[d] &+= 1
            }
        }
    }

    /// Orders the blocks; returns the buffer that holds the words (`words` or `scratch`).
    /// `histogram`: the words' digit counts from `EntryWord.blockShift`.
    static func sortBlocks(_ words: UnsafeMutablePointer<UInt64>, scratch: UnsafeMutablePointer<UInt64>, count: Int,
                           histogram: RadixSort.Histogram? = nil) -> UnsafeMutablePointer<UInt64> {
        RadixSort.sort(words, scratch: scratch, count: count, lowestBit: Int(EntryWord.blockShift), histogram: histogram,
                       digitBits: EntryWord.sortDigitBits).keys
    }

    /// Puts every block that holds more than one client in client order, in one read of the
    /// words: without a branch on where a block ends (a block is usually one client's few
    /// words, and scanning each for its end mispredicted once a block).
    static func finishBlocks(_ w: UnsafeMutablePointer<UInt64>, count n: Int, scratch: UnsafeMutablePointer<UInt64>) {
        guard n > 1 else { return }
        var blockStart = 0
        var previous = w[0]
        var k = 1
        while k < n {
            let word = w[k]
            let newBlock = (word ^ previous) >> EntryWord.blockShift != 0
            blockStart = newBlock ? k : blockStart
            if !newBlock && (word ^ previous) >> EntryWord.clientShift != 0 {
                // A second client in the block (rare): its end, then its order.
                let top = word >> EntryWord.blockShift
                var end = k + 1
                while end < n && w[end] >> EntryWord.blockShift == top { end += 1 }
                finish(w + blockStart, count: end - blockStart, scratch: scratch)
                k = end
                previous = w[end - 1]
                continue
            }
            previous = word
            k += 1
        }
    }

    /// Puts a block's `m` words in client order, stably: insertion for a few words, else a
    /// counting sort on the client bits below the block's through `scratch` (at least `m`
    /// words).
    static func finish(_ p: UnsafeMutablePointer<UInt64>, count m: Int, scratch: UnsafeMutablePointer<UInt64>) {
        if m <= 64 {
            for i in 1..<max(1, m) {
                let w = p[i], key = w >> EntryWord.clientShift
                var j = i
                while j > 0 && p[j - 1] >> EntryWord.clientShift > key {
                    p[j] = p[j - 1]
                    j -= 1
                }
                p[j] = w
            }
            return
        }
        @inline(__always) func digit(_ w: UInt64) -> Int { Int(truncatingIfNeeded: w >> EntryWord.clientShift) & EntryWord.inBlockMask }
        var low = EntryWord.inBlockMask, high = 0
        for i in 0..<m {
            low = min(low, digit(p[i]))
            high = max(high, digit(p[i]))
        }
        let buckets = high - low + 1
        let start = UnsafeMutablePointer<Int>.allocate(capacity: buckets + 1)
        defer { start.deallocate() }
        start.initialize(repeating: 0, count: buckets + 1)
        for i in 0..<m { start[digit(p[i]) - low + 1] += 1 }
        for b in 0..<buckets { start[b + 1] += start[b] }
        for i in 0..<m {
            let b = digit(p[i]) - low
            scratch[start[b]] = p[i]
            start[b] += 1
        }
        p.update(from: scratch, count: m)
    }

    /// The whole sort: destinations, blocks, then the blocks that need it put in order.
    /// `destinationCounts`: the words per destination (`sortByDestination`).
    static func sort(_ words: UnsafeMutablePointer<UInt64>, scratch: UnsafeMutablePointer<UInt64>, count: Int,
                     destinationCounts: [Int], histogram: RadixSort.Histogram? = nil) -> UnsafeMutablePointer<UInt64> {
        sortByDestination(words, scratch: scratch, count: count, counts: destinationCounts)
        let sorted = sortBlocks(scratch, scratch: words, count: count, histogram: histogram)
        finishBlocks(sorted, count: count, scratch: sorted == words ? scratch : words)
        return sorted
    }
}

extension Aggregates {
    /// Computes every aggregation of `snapshot`: one pass over its connection table that
    /// resolves each entry's destination and writes it as an `EntryWord`, a radix sort of
    /// those words by client, and one pass over the sorted words that counts each client's
    /// connections per destination, folds them into the persistence groups, and credits the
    /// template controlling them. No dictionary is touched per entry, and nothing is written
    /// per client: at 10^6 entries the analysis must cost a fraction of reading the table.
    /// The sorted words are kept (`clients` reads them when asked).
    ///
    /// `buffers`: where the working memory comes from and goes back to (an `Analyzer` keeps
    /// one between polls); without, it is allocated and freed.
    public init(_ snapshot: Snapshot, buffers: BufferPool? = nil) {
        self.init(snapshot, buffers: buffers, identities: false)
    }

    /// `identities`: also each template's identity across table reads, for an `Analyzer`
    /// to follow them by (a one-poll analysis has no use for them).
    init(_ snapshot: Snapshot, buffers: BufferPool?, identities: Bool) {
        self.init()
        let services = snapshot.services
        liveDestination = services.map { [Int?](repeating: nil, count: $0.realServers.count) }
        guard let table = snapshot.connections else { return }
        hasTable = true
        knowsOrigin = table.file.hasSuffix("_sync")
        var resolver = Resolver(services: services)
        var cache = RouteCache()
        defer { cache.free() }
        let entries = table.entries
        let n = entries.count

        // Pass 1: each entry's destination, the per-destination counts, the templates, and
        // the entry's word, with the digit counts the sort needs.
        let wordBlock = buffers.take(bytes: max(1, n) * 8)
        let words = wordBlock.typed(UInt64.self)
        let first = entries.withUnsafeBufferPointer { FirstPass($0, words: words, cache: &cache, resolver: &resolver, pool: buffers) }
        let wordCount = first.wordCount
        let histogram = first.histogram
        let records = first.records
        let v6Clients = first.v6Clients
        defer {
            histogram.deallocate()
            records.free()
        }
        destinations = resolver.destinations.indices.map { first.tally.destination($0, resolver.destinations[$0]) }
        // Every entry of a destination that fits a word has one.
        let wordsPerDestination = destinations.indices.map { $0 < EntryWord.destinationLimit ? destinations[$0].connections.total + destinations[$0].templates : 0 }
        first.tally.free()
        unattributedEntries = first.unattributed
        for (i, d) in destinations.enumerated() {
            if let s = d.service, let r = d.realServer, liveDestination[s][r] == nil { liveDestination[s][r] = i }
        }
        // The templates with a word, in the order the sort below leaves their words: the
        // k-th template word of the sorted table is template `byClient[k]`. Both sorts are
        // stable on the same client bits, over the same templates in entry order.
        var arena = Arena(bytes: Arena.keyedSortBytes(records.count) + Arena.bytes(records.count + 1, Int.self), pool: buffers)
        defer { arena.free(to: buffers) }
        let byClient = Self.templatesByClient(records.buffer, arena: &arena)
        let lookup = TemplateLookup(records: records.buffer, v6Clients: v6Clients)





        // Per destination, what the passes below ask of its service.
        let dcount = destinations.count
        let netmask: [PersistenceNetmask?] = destinations.map { $0.service.flatMap { services[$0].persistence?.netmask } }
        let grouping = resolver.grouping
        let alternates = Self.fwmarkAlternates(destinations, services)
        let hasAlternates = alternates.map { !$0.isEmpty }
        var controlled = [Int](repeating: 0, count: records.count)

        // Pass 2: the words in client order (by block, their client's top 24 bits, then the
        // blocks that hold more than one client). The other buffer is free from here on.
        let scratchBlock = buffers.take(bytes: max(1, wordCount) * 8)
        let sorted = ClientOrder.sort(words, scratch: scratchBlock.typed(UInt64.self), count: wordCount,
                                      destinationCounts: wordsPerDestination, histogram: histogram)
        let (sortedBlock, spareBlock) = sorted == words ? (wordBlock, scratchBlock) : (scratchBlock, wordBlock)
        buffers.give(spareBlock)





        // Pass 3: each client's connections per destination, to the load totals, the
        // persistence groups, and the template that controls them. At most a client and a
        // load per word: the capacity is address space until used.
        let startsBlock = buffers.take(bytes: (wordCount + 1) * 4)
        let starts = startsBlock.typed(Int32.self)
        let totalsBlock = buffers.take(bytes: max(1, wordCount) * MemoryLayout<LoadTotal>.stride)
        let totals = totalsBlock.typed(LoadTotal.self)
        let asks = (0..<dcount).map { d in
            (grouping[d] ? ClientPass.groupsBit : 0) | (!grouping[d] && netmask[d] != nil ? ClientPass.ownTemplateBit : 0)
                | (hasAlternates[d] ? ClientPass.alternatesBit : 0)
        }
        // Connections a template controls, by its place in the sorted run (`byClient`):
        // written in the order the pass meets them, not all over the table.
        let controlledInRun = arena.take(byClient.count + 1, Int.self)
        controlledInRun.initialize(repeating: 0, count: byClient.count + 1)
        var bound = 0
        for (d, dest) in destinations.enumerated() where grouping[d] { bound += dest.connections.total + dest.templates }
        var b = GroupBuilder(destinations: destinations, netmask: netmask, grouping: grouping, bound: bound, pool: buffers)
        let pass = asks.withUnsafeBufferPointer { asks in
            ClientPass(words: sorted, count: wordCount, v6Clients: v6Clients, asks: asks.baseAddress!,
                       netmask: netmask, alternates: alternates, lookup: lookup, byClient: byClient,
                       controlledInRun: controlledInRun, controlled: &controlled, groups: &b, starts: starts, totals: totals)
        }
        let c = pass.clientCount
        let totalCount = pass.loadTotalCount





        for j in 0..<byClient.count { controlled[Int(byClient[j])] += controlledInRun[j] }
        let store = ClientStore(words: sortedBlock, wordCount: wordCount, starts: startsBlock, clientCount: c,
                                loadTotals: totalsBlock, loadTotalCount: totalCount, v6Clients: v6Clients, pool: buffers)
        clients = ClientTable(store: store)
        loadTotals = LoadTotals(store: store)
        (groups, groupLoads) = b.finish(destinations: destinations, controlled: &controlled)





        buildTemplates(services: services, records: records.buffer, byClient: byClient,
                       v6Clients: v6Clients, routes: cache.routes, controlled: controlled, identities: identities, pool: buffers)

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

    static func prefixLength(_ m: PersistenceNetmask, _ a: IPAddress) -> Int {
        switch m {
        case .ipv4(let v): a.isIPv4 ? v.nonzeroBitCount : 128
        case .prefix(let p): p
        }
    }
}
