import IPVSModel
import IPVSRawMemory

// The aggregation's fast core: its one entrance (`Workspace`), what it computes, in which
// passes. Nothing else in the package calls into the passes; the faces read the
// `Aggregates` value.
//
// **Entering it.** `Aggregates(snapshot)` (a one-shot analysis) or
// `Aggregates(snapshot, buffers: pool)` (an `Analyzer`, which keeps its `BufferPool` between
// polls so that the working memory is not faulted in again every second) are thin calls to
// `Workspace(pool:identities:heavyFrom:).run(snapshot)`.
//
// **Its meaning.** `ReferenceAggregates` (`Reference.swift`) computes every aggregate the
// plain way and states each rule once; the differential tests (`ReferenceTests`) and
// `ipvstop-bench --verify` hold the fast core to it. Change the rule there first.
//
// **The entry word** (`EntryWord`, `AggregationPass.swift`), one `UInt64` per entry, high
// bits first:
//
//     63 ........ 31 | 30 ...... 10 | 9              | 8        | 7 .. 0
//     client (33)    | destination  | group template | template | state
//                    | (21)         |                |          |
//
// - client: an IPv4 address, or `1 << 32 | ordinal` of an IPv6 address (ordinals in the order
//   the table first names them): sorting words by their high bits puts IPv4 clients by
//   address, then IPv6 clients by first appearance, each client's words together.
// - destination: index into `Aggregates.destinations`, below `EntryWord.destinationLimit`
//   (entries past it are counted in their destination but get no word: `unattributedEntries`).
// - group template: a template of a service that groups clients; its client is the group's
//   masked address, not a client's (`ClientStore.forEachWord` skips it).
// - state: `ConnectionState.rawValue`.
//
// The other packed values have names of their own: what a destination's loads ask of the
// load loop (`ClientPass.Asks`), where a load ends (`ClientPass.LoadEnd`), a load's figures
// (`LoadTotal`), a group and its loads (`GroupAggregate`, `GroupLoad`).
//
// **The passes**, in the order `Workspace.passes` runs them (`Aggregates.Pass` names them
// in the reference's reports):
//
// 1. `firstPass` (`FirstPass.swift`, `Resolver.swift`): each entry's destination through the
//    route cache in front of `Resolver`, the per-destination counts (`DestinationTally`),
//    the template records, and the entry words with the sort's top-digit counts; then the
//    templates with a word in the order the sort will leave their words
//    (`templatesByClient`). After the passes, `Aggregates.attribution` decides which routes
//    belong to an fwmark service; when it moves any, the passes run again with them moved.
// 2. `clientPass` (`AggregationPass.swift`'s `ClientOrder`, `ClientPass.swift`): the words
//    in client order, a bucket of the top 8 bits at a time, each bucket handed to the client
//    pass while in the cache: clients, their loads (a run of one client's words on one
//    destination), the load histogram, the heavy loads, and each load's credit to its own
//    template.
// 3. `groups` (`Groups.swift`'s `GroupBuilder`): the loads of services that group clients
//    folded into persistence groups and their loads, and the groups' credits to their
//    templates, histogram and heavy loads.
// 4. `templates` (`TemplateList.swift`): every template with the connections it controls,
//    in the documented order.
// 5. New entries (part of the first pass's figures): new connections per destination since
//    the previous read, when the snapshot says which entries are new.
//
// **Its memory.** Every buffer of a run comes from the workspace's pool and goes back to it
// (or, without a pool, is allocated and freed): the blocks the aggregates keep (the sorted
// words, the groups, the templates) when the last face lets go of them, the others when
// `passes` returns. Raw memory (pools, arenas, vectors, the index, the radix sort) is the
// kit in the module `IPVSRawMemory`; each of its buffers states what must hold and checks
// it in debug builds.

extension Aggregates {
    /// The fast core's passes, in the order they run (see `FastCore.swift`): what a
    /// difference from the reference is laid to.
    package enum Pass: String, CaseIterable, Sendable {
        case firstPass = "first pass (destinations, their counts, new entries)"
        case clientPass = "client order and client pass (clients, loads, heavy loads, load histogram)"
        case groups = "groups (persistence groups, their loads, histogram and heavy loads)"
        case templates = "templates (what each controls, their order)"
    }

    /// Computes every aggregation of `snapshot` (`Workspace.run`). No dictionary is touched
    /// per entry, and nothing is written per client: at 10^6 entries the analysis must cost
    /// a fraction of reading the table. The sorted words are kept (`clients` reads them when
    /// asked).
    ///
    /// `buffers`: where the working memory comes from and goes back to (an `Analyzer` keeps
    /// one between polls); without, it is allocated and freed.
    public init(_ snapshot: Snapshot, buffers: BufferPool? = nil) {
        self.init(snapshot, buffers: buffers, identities: false, heavyFrom: AnalysisSettings().rogueFloor)
    }

    /// `identities`: also each template's identity across table reads, for an `Analyzer`
    /// to follow them by (a one-poll analysis has no use for them). `heavyFrom`: the
    /// connections from which a client's load on a destination is kept in `heavyLoads`
    /// (the settings' `rogueFloor`; at least 1, and at most the histogram's last bucket,
    /// whose loads the medians need one by one).
    init(_ snapshot: Snapshot, buffers: BufferPool?, identities: Bool, heavyFrom floor: Int) {
        self = Workspace(pool: buffers, identities: identities, heavyFrom: floor).run(snapshot)
    }
}

/// The fast core's one entrance: what a run of the passes draws its working memory from, and
/// what it is asked for. `run` reads as the passes, in order (`FastCore.swift` describes
/// them and the entry word).
struct Workspace {
    /// Where every buffer of a run comes from and goes back to; nil: allocated and freed.
    let pool: BufferPool?
    /// Also each template's identity across table reads (`Aggregates.templateIdentities`).
    let identities: Bool
    /// The connections from which a client's load is kept one by one (`Aggregates.heavyFrom`),
    /// as asked; the passes keep it within 1...`LoadHistogram.buckets - 1`.
    let heavyFrom: Int

    /// Every aggregate of `snapshot`: the passes, then the fwmark attribution of shared real
    /// servers, and the passes again when it moves routes.
    func run(_ snapshot: Snapshot) -> Aggregates {
        var agg = passes(snapshot, moves: [:])
        guard agg.hasTable else {
            agg.attribution = Aggregates.attribution(snapshot, [], agg.liveDestination, moved: [:]).attribution
            return agg
        }
        // Routes the kernel's counters give to an fwmark service: aggregate again with them
        // moved (only where an address and an fwmark service share a real server).
        let (moves, attribution) = Aggregates.attribution(snapshot, agg.destinations, agg.liveDestination, moved: [:])
        if moves.isEmpty {
            agg.attribution = attribution
        } else {
            agg = passes(snapshot, moves: moves)
            agg.routeMoves = moves
            agg.attribution = Aggregates.attribution(snapshot, agg.destinations, agg.liveDestination, moved: moves).attribution
        }
        return agg
    }

    /// The passes over `snapshot`'s table, with the routes `moves` gives to fwmark services.
    private func passes(_ snapshot: Snapshot, moves: [RouteMove: Int]) -> Aggregates {
        var agg = Aggregates()
        agg.liveDestination = snapshot.services.map { [Int?](repeating: nil, count: $0.realServers.count) }
        guard let table = snapshot.connections else { return agg }
        agg.hasTable = true
        agg.knowsOrigin = table.file.hasSuffix("_sync")
        var resolver = Resolver(services: snapshot.services, moves: moves)
        var cache = RouteCache()
        defer { cache.free() }

        // 1. The first pass, and the templates in the order the sort will leave their words.
        let words = pool.take(bytes: max(1, table.entries.count) * 8)
        let first = firstPass(table.entries, words: words, &cache, &resolver, into: &agg)
        defer { first.free() }
        let records = first.records.buffer
        var arena = Arena(bytes: Arena.keyedSortBytes(records.count) + Arena.bytes(records.count + 1, Int.self)
                              + Arena.bytes(records.count, Int.self), pool: pool)
        defer { arena.free(to: pool) }
        let byClient = Aggregates.templatesByClient(records, destinationCount: agg.destinations.count, arena: &arena)
        // Connections per template ordinal, credited by the client pass and the groups (in
        // the arena: a one-shot analysis' arrays of their own were memory fresh from the
        // kernel in small pages).
        let controlled = arena.take(records.count, Int.self)
        controlled.initialize(repeating: 0, count: records.count)

        // 2. The client pass, over the words in client order (`words` goes back to the pool
        // once sorted).
        let groups = clientPass(first, words: words, byClient: byClient, controlled: controlled, arena: &arena,
                                services: snapshot.services, grouping: resolver.grouping, into: &agg)

        // 3. The persistence groups.
        groupsPass(groups, controlled: controlled, grouping: resolver.grouping, into: &agg)

        // 4. The templates, each with the connections it controls.
        agg.buildTemplates(services: snapshot.services, records: records, byClient: byClient, v6Clients: first.v6Clients,
                           routes: cache.routes, controlled: UnsafeBufferPointer(start: controlled, count: records.count),
                           identities: identities, pool: pool)

        // 5. What is new since the previous read.
        if let changes = snapshot.connectionChanges {
            let entries = table.entries
            (agg.newConnections, agg.newFromSync, agg.newLocal) =
                Aggregates.newEntries(changes, entries, destinationCount: agg.destinations.count, knowsOrigin: agg.knowsOrigin) {
                    Int(cache.destination(of: entries[$0], &resolver))
                }
        }
        return agg
    }

    /// Pass 1 (`FirstPass`): each entry's destination, the per-destination counts, the
    /// template records, and the entry's word in `words`, with the digit counts the sort
    /// needs. Sets the destinations, `liveDestination` and `unattributedEntries`.
    private func firstPass(_ entries: [ConnectionEntry], words: BufferPool.Block, _ cache: inout RouteCache,
                           _ resolver: inout Resolver, into agg: inout Aggregates) -> FirstPass {
        let first = entries.withUnsafeBufferPointer {
            FirstPass($0, words: words.typed(UInt64.self), cache: &cache, resolver: &resolver, pool: pool)
        }
        agg.destinations = resolver.destinations.indices.map { first.tally.destination($0, resolver.destinations[$0]) }
        first.tally.free()
        agg.unattributedEntries = first.unattributed
        for (i, d) in agg.destinations.enumerated() {
            if let s = d.service, let r = d.realServer, agg.liveDestination[s][r] == nil { agg.liveDestination[s][r] = i }
        }
        return first
    }

    /// Pass 2 (`ClientOrder`, `ClientPass`): the words in client order, a bucket at a time,
    /// each bucket taken by the client pass while it is in the cache: each client's
    /// connections per destination, to the load histogram and the heavy loads, the
    /// persistence groups' loads, and the template that controls them (`controlled`, by
    /// template ordinal). Sets the clients, the heavy loads and the load histogram; gives
    /// `words` back; returns the groups as the pass left them.
    private func clientPass(_ first: FirstPass, words: BufferPool.Block, byClient: UnsafeBufferPointer<Int32>,
                            controlled: UnsafeMutablePointer<Int>, arena: inout Arena, services: [VirtualService],
                            grouping: [Bool], into agg: inout Aggregates) -> GroupBuilder {
        let destinations = agg.destinations, dcount = destinations.count
        let netmask: [PersistenceNetmask?] = destinations.map { $0.service.flatMap { services[$0].persistence?.netmask } }
        let alternates = Aggregates.fwmarkAlternates(destinations, services)
        let hasAlternates = alternates.map { !$0.isEmpty }
        // At most a client and a load per word: the capacity is address space until used.
        let sortedBlock = pool.take(bytes: max(1, first.wordCount) * 8)
        // Slot 0 is the client pass's spare (`ClientPass.init`); client c starts at slot c + 1.
        let startsBlock = pool.take(bytes: (first.wordCount + 2) * 4)
        // The histogram's rows: the live real servers of services that do not group clients
        // (their clients are the rogue-client finding's units), from row 1.
        var rowOf = [Int32](repeating: 0, count: dcount)
        var rowCount = 1
        for d in 0..<dcount where destinations[d].isLive && !grouping[d] {
            rowOf[d] = Int32(rowCount)
            rowCount += 1
        }
        let loadCounts = UnsafeMutablePointer<UInt32>.allocate(capacity: rowCount * LoadHistogram.buckets)
        loadCounts.initialize(repeating: 0, count: rowCount * LoadHistogram.buckets)
        defer { loadCounts.deallocate() }
        // Per destination, what its loads ask of the load loop.
        let heavyFrom = max(1, min(self.heavyFrom, LoadHistogram.buckets - 1))
        agg.heavyFrom = heavyFrom
        let asks = UnsafeMutablePointer<ClientPass.Asks>.allocate(capacity: max(1, dcount))
        defer { asks.deallocate() }
        for d in 0..<dcount {
            let bits = (grouping[d] ? ClientPass.groupsBit : 0) | (!grouping[d] && netmask[d] != nil ? ClientPass.ownTemplateBit : 0)
                | (hasAlternates[d] ? ClientPass.alternatesBit : 0)
            (asks + d).initialize(to: ClientPass.Asks(bits: bits, row: Int(rowOf[d]),
                                                      slowFrom: grouping[d] ? 0 : hasAlternates[d] ? 1 : heavyFrom))
        }
        // Connections a template controls, by its place in the sorted run (`byClient`):
        // written in the order the pass meets them, not all over the table.
        // Slot 0 takes the zero credits of loads without a template (`ClientPass.init`).
        let creditSlots = arena.take(byClient.count + 1, Int.self)
        creditSlots.initialize(repeating: 0, count: byClient.count + 1)
        let controlledInRun = creditSlots + 1
        var bound = 0
        for (d, dest) in destinations.enumerated() where grouping[d] { bound += dest.connections.total + dest.templates }
        let lookup = TemplateLookup(records: first.records.buffer, v6Clients: first.v6Clients)
        var pass = ClientPass(words: sortedBlock.typed(UInt64.self), v6Clients: first.v6Clients, asks: asks, netmask: netmask,
                              alternates: alternates, lookup: lookup, byClient: byClient, controlledInRun: controlledInRun,
                              controlled: controlled,
                              groups: GroupBuilder(destinations: destinations, netmask: netmask, grouping: grouping, bound: bound,
                                                   pool: pool),
                              starts: startsBlock.typed(Int32.self) + 1, histogram: loadCounts, heavyFrom: heavyFrom, pool: pool)
        _ = ClientOrder.sort(words.typed(UInt64.self), scratch: sortedBlock.typed(UInt64.self), count: first.wordCount,
                             destinationCount: dcount, histogram: first.histogram) { pass.take($0) }
        pass.finish(count: first.wordCount)
        pool.give(words)
        for j in 0..<byClient.count { controlled[Int(byClient[j])] += controlledInRun[j] }
        agg.clients = ClientTable(store: ClientStore(words: sortedBlock, wordCount: first.wordCount, starts: startsBlock,
                                                     clientCount: pass.clientCount, v6Clients: first.v6Clients, pool: pool))
        agg.heavyLoads = pass.heavy.handOver()
        agg.loadHistogram = LoadHistogram(rows: rowOf, counts: Array(UnsafeBufferPointer(start: loadCounts,
                                                                                         count: rowCount * LoadHistogram.buckets)))
        return pass.groups
    }

    /// Pass 3 (`GroupBuilder.finish`): the persistence groups and their loads, their credits
    /// to their templates (`controlled`), their histogram (rows: the live real servers of
    /// services that group clients) and heavy loads.
    private func groupsPass(_ builder: GroupBuilder, controlled: UnsafeMutablePointer<Int>, grouping: [Bool],
                            into agg: inout Aggregates) {
        let destinations = agg.destinations, dcount = destinations.count
        var groupRowOf = [Int32](repeating: 0, count: dcount)
        var groupRows = 1
        for d in 0..<dcount where destinations[d].isLive && grouping[d] {
            groupRowOf[d] = Int32(groupRows)
            groupRows += 1
        }
        var groupSizes = [UInt32](repeating: 0, count: groupRows * LoadHistogram.buckets)
        var heavy: [HeavyGroupLoad] = []
        let heavyFrom = agg.heavyFrom
        (agg.groups, agg.groupLoads) = groupSizes.withUnsafeMutableBufferPointer { sizes in
            groupRowOf.withUnsafeBufferPointer { rows in
                builder.finish(destinations: destinations, controlled: controlled, rows: rows.baseAddress!, sizes: sizes.baseAddress!,
                               heavyFrom: heavyFrom, heavy: &heavy)
            }
        }
        agg.heavyGroupLoads = heavy
        agg.groupLoadHistogram = LoadHistogram(rows: groupRowOf, counts: groupSizes)
    }
}

extension PairIndex {
    /// The kit's index keyed by an address (its two halves): templates by (destination,
    /// client as the template holds it), groups by (service, masked address).
    @inline(__always)
    func value(_ tag: Int32, _ a: IPAddress) -> Int32 { value(tag, high: a.high, low: a.low) }

    @inline(__always)
    func value(_ tag: Int32, _ a: IPAddress, orInsert next: Int32) -> Int32 { value(tag, high: a.high, low: a.low, orInsert: next) }

    @inline(__always)
    func set(_ tag: Int32, _ a: IPAddress, _ v: Int32) { set(tag, high: a.high, low: a.low, v) }
}
