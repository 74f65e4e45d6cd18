import IPVSModel
import IPVSRawMemory

// The aggregation's fast core: where it is entered, what it computes, in which passes.
//
// **Entering it.** `Aggregates(snapshot)` (a one-shot analysis) or
// `Aggregates(snapshot, buffers: pool)` (an `Analyzer`, which keeps its `BufferPool` between
// polls so that the working memory is not faulted in again every second). Nothing else in
// the package calls into the passes below; the faces read the `Aggregates` value.
//
// **Its meaning.** `ReferenceAggregates` (`Reference.swift`) computes every aggregate the
// plain way and states each rule once; the differential tests (`ReferenceTests`) and
// `ipvstop-bench --verify` hold the fast core to it. Change the rule there first.
//
// **The entry word** (`EntryWord`), one `UInt64` per entry, high bits first:
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
// **The passes**, in order (`Aggregates.Pass` names them in the reference's reports):
//
// 1. `firstPass` (`FirstPass.swift`, `Resolver.swift`): each entry's destination through the
//    route cache in front of `Resolver`, the per-destination counts (`DestinationTally`),
//    the template records, and the entry words with the sort's top-digit counts.
//    `Aggregates.attribution` then decides which routes belong to an fwmark service; when
//    it moves any, the whole aggregation runs again with them moved.
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
//
// Raw memory (pools, arenas, vectors, the index, the radix sort) is the kit in the module
// `IPVSRawMemory`; each of its buffers states
// what must hold and checks it in debug builds.

extension Aggregates {
    /// The fast core's passes, in the order they run (see `FastCore.swift`): what a
    /// difference from the reference is laid to.
    package enum Pass: String, CaseIterable, Sendable {
        case firstPass = "first pass (destinations, their counts, new entries)"
        case clientPass = "client order and client pass (clients, loads, heavy loads, load histogram)"
        case groups = "groups (persistence groups, their loads, histogram and heavy loads)"
        case templates = "templates (what each controls, their order)"
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
