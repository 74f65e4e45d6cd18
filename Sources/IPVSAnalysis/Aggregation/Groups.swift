import FoundationEssentials
import IPVSModel
import IPVSRawMemory

/// Persistence groups and their loads as the client pass folds clients in: groups by
/// (service, masked address), loads by (destination, masked address).
///
/// IPv4 clients arrive sorted by address, and a prefix netmask keeps that order, so a
/// group's members come one after another, and a masked address once left never comes
/// back: a destination's (or service's) new masked address is a new load (or group), with
/// no lookup. IPv6 clients (in the order first seen) and netmasks with holes go through
/// the indexes.
struct GroupBuilder {
    /// What a load of a destination needs to find its group, in one record (a group load
    /// read seven arrays): its service (-1: none), its IPv4 netmask and the prefix length of
    /// an IPv4 client's group, whether it groups clients, whether the netmask is IPv4
    /// (all ones when it is not: the general path then) and a prefix (the sorted order of
    /// IPv4 clients then holds), and the last load made on it with its masked address.
    struct DestinationState {
        var lastMasked: IPAddress
        var lastLoad: Int32
        var service: Int32
        var v4Mask: UInt32
        var v4PrefixLength: UInt8
        var grouping: Bool
        var hasV4Mask: Bool
        var ordered: Bool
    }
    let state: UnsafeMutablePointer<DestinationState>
    /// Per service: the last group made in order, and its address.
    let lastGroup: UnsafeMutablePointer<Int32>
    let lastGroupMasked: UnsafeMutablePointer<IPAddress>
    let netmask: [PersistenceNetmask?]
    /// Made when first needed: IPv4 prefix netmasks, the usual case, never look up.
    var groupIndex: PairIndex?
    var loadIndex: PairIndex?
    /// What the indexes are first sized for.
    let expected: Int
    let pool: BufferPool?
    var groups: RawVector<GroupAggregate>
    var loads: RawVector<GroupLoad>

    /// `bound`: how many groups (and loads) there can be at most: the entries on destinations
    /// that group clients (each group and load is made by one). `pool`: where the memory
    /// comes from.
    init(destinations: [Destination], netmask: [PersistenceNetmask?], grouping: [Bool], bound: Int, pool: BufferPool?) {
        let count = destinations.count
        state = .allocate(capacity: max(1, count))
        let services = max(1, (destinations.compactMap(\.service).max() ?? -1) + 1)
        lastGroup = .allocate(capacity: services)
        lastGroup.initialize(repeating: -1, count: services)
        lastGroupMasked = .allocate(capacity: services)
        lastGroupMasked.initialize(repeating: .zeroIPv4, count: services)
        for d in 0..<count {
            var mask: UInt32 = ~0, hasV4Mask = false
            if case .ipv4(let m) = netmask[d] { mask = m; hasV4Mask = true }
            (state + d).initialize(to: DestinationState(
                lastMasked: .zeroIPv4, lastLoad: -1, service: Int32(destinations[d].service ?? -1), v4Mask: mask,
                v4PrefixLength: UInt8(mask.nonzeroBitCount),
                grouping: grouping[d] && destinations[d].service != nil && netmask[d] != nil, hasV4Mask: hasV4Mask,
                // A prefix: ones, then zeros.
                ordered: hasV4Mask && (~mask) & (~mask &+ 1) == 0))
        }
        self.netmask = netmask
        let capacity = max(16, bound)
        expected = min(capacity, 1 << 16)
        self.pool = pool
        groups = RawVector(capacity: capacity, pool: pool)
        loads = RawVector(capacity: capacity, pool: pool)
    }

    /// Frees what `finish` does not hand over (`loads` too, unless `keepingLoads`).
    private func free(keepingLoads: Bool) {
        state.deallocate()
        lastGroup.deallocate()
        lastGroupMasked.deallocate()
        if !keepingLoads { loads.free() }
    }

    /// The group load of `client` on destination `d`, made when new; -1 when `d`'s
    /// service does not group clients.
    @inline(__always)
    mutating func load(_ d: Int, _ client: IPAddress) -> Int {
        let st = state[d]
        guard st.grouping else { return -1 }
        let v4 = client.isIPv4
        let masked = st.hasV4Mask && v4 ? IPAddress(ipv4: client.ipv4Value & st.v4Mask) : netmask[d]!.apply(to: client)
        if st.lastLoad >= 0 && st.lastMasked == masked { return Int(st.lastLoad) }
        return st.ordered && v4 ? newLoadInOrder(d, client, masked) : newLoad(d, client, masked)
    }

    private mutating func newLoadInOrder(_ d: Int, _ client: IPAddress, _ masked: IPAddress) -> Int {
        let s = Int(state[d].service)
        var g = Int(lastGroup[s])
        if g < 0 || lastGroupMasked[s] != masked {
            // An IPv4 client under an IPv4 netmask: the prefix length is the mask's.
            g = appendGroup(s, masked, prefixLength: Int(state[d].v4PrefixLength))
            lastGroup[s] = Int32(g)
            lastGroupMasked[s] = masked
        }
        let i = appendLoad(group: g, d)
        state[d].lastMasked = masked
        state[d].lastLoad = Int32(i)
        return i
    }

    private mutating func newLoad(_ d: Int, _ client: IPAddress, _ masked: IPAddress) -> Int {
        let s = Int(state[d].service)
        if groupIndex == nil {
            groupIndex = PairIndex(expected: expected)
            loadIndex = PairIndex(expected: expected)
        }
        let g = Int(groupIndex!.value(Int32(s), masked, orInsert: Int32(groups.count)))
        if g == groups.count { _ = appendGroup(s, masked, prefixLength: Aggregates.prefixLength(netmask[d]!, client)) }
        let i = Int(loadIndex!.value(Int32(d), masked, orInsert: Int32(loads.count)))
        if i == loads.count { _ = appendLoad(group: g, d) }
        state[d].lastMasked = masked
        state[d].lastLoad = Int32(i)
        return i
    }

    /// A new group of service `s` under `masked`; its index.
    private mutating func appendGroup(_ s: Int, _ masked: IPAddress, prefixLength: Int) -> Int {
        groups.append(GroupAggregate(service: s, address: masked, prefixLength: prefixLength))
        return groups.count - 1
    }

    /// A new load of group `g` on destination `d`; its index.
    private mutating func appendLoad(group g: Int, _ d: Int) -> Int {
        loads.append(GroupLoad(group: g, destination: d))
        return loads.count - 1
    }

    /// Adds a client's connections on `d` to its group load `i`: the connection words of
    /// `words[range]` (its run of the sorted table), each state counted straight into the
    /// group and the load (a load is a word or two: counted first into a `StateCounts` of its
    /// own, then added, the sums waited on the stores); `credited` of them were already
    /// credited to a template.
    @inline(__always)
    func add(words: UnsafePointer<UInt64>, _ range: Range<Int>, load i: Int, client c: Int, credited: Int) {
        let g = loads[i].group
        for k in range where words[k] & EntryWord.template == 0 {
            let s = EntryWord.state(words[k])
            groups.base[g].connections.add(s)
            loads.base[i].connections.add(s)
        }
        loads.base[i].attributed &+= Int32(truncatingIfNeeded: credited)
        if groups.base[g].lastMember != Int32(truncatingIfNeeded: c) {
            groups.base[g].lastMember = Int32(truncatingIfNeeded: c)
            groups.base[g].clients += 1
        }
    }

    /// Counts a group's template on its load `i`: template `ordinal`, whose client is
    /// `client`. The load's template is the one under the group's own address (the kernel
    /// writes templates with the masked client); of two, the later.
    @inline(__always)
    func addTemplate(load i: Int, ordinal: Int32, client: IPAddress) {
        let g = loads[i].group
        groups.base[g].templates += 1
        loads.base[i].templates += 1
        if groups.base[g].address == client { loads.base[i].template = ordinal }
    }

    /// Credits each group's template with the connections of its loads that the client
    /// pass did not credit, lays the loads out per group (by destination within one), and
    /// hands the groups and loads over; the builder is not used after.
    ///
    /// IPv4 clients under prefix netmasks (the usual case) make a group's loads one after
    /// another, groups in order: the loads are then put in order where they are (a group's
    /// few loads by insertion), not copied out through a counting sort.
    ///
    /// In the same read, the rogue-client finding's units among the groups: each load with
    /// connections on a destination with a row in `sizes` (`LoadHistogram.buckets` counters
    /// a row, row 0 for none) is counted by its size, and kept in `heavy` from `heavyFrom`
    /// connections on (the finding read every load again, from memory).
    func finish(destinations: [Destination], controlled: UnsafeMutablePointer<Int>, rows: UnsafePointer<Int32>,
                sizes: UnsafeMutablePointer<UInt32>, heavyFrom: Int,
                heavy: inout [HeavyGroupLoad]) -> (PooledList<GroupAggregate>, PooledList<GroupLoad>) {
        let n = loads.count, gs = groups.base, ls = loads.base
        let totals = destinations.map { $0.connections.total }
        let last = LoadHistogram.buckets - 1
        // One read of the loads (megabytes at 10^5 groups: a second read came from memory
        // again): the credits, and the layout while the groups come in order. A group met
        // out of order leaves the rest to the general path below, which lays out every load
        // again (the loads a group has are on distinct destinations: the order this loop
        // made is no matter to it).
        var inOrder = true, current = -1, first = 0
        for i in 0..<n {
            // Positions from i on are as made: the insertions below move earlier ones.
            var l = ls[i]
            let total = l.connections.total
            if l.template >= 0 {
                let rest = total - Int(l.attributed)
                if rest > 0 { controlled[Int(l.template)] += rest }
            }
            if total > 0 {
                // Row 0 (no unit) takes the counts no one reads: an add, not a branch.
                let row = Int(rows[l.destination])
                sizes[row &* LoadHistogram.buckets &+ min(total, last)] &+= 1
                if total >= heavyFrom && row > 0 {
                    heavy.append(HeavyGroupLoad(group: l.group, destination: l.destination, connections: total))
                }
            }
            // The builder's records done with: the loads handed over compare by what they say.
            l.attributed = 0
            l.template = -1
            guard inOrder else {
                ls[i] = l
                continue
            }
            if l.group != current {
                if l.group < current {
                    inOrder = false
                    ls[i] = l
                    continue
                }
                if current >= 0 {
                    gs[current].loadRange = first..<i
                    gs[current].lastMember = -1
                }
                current = l.group
                first = i
            }
            l.setDestinationConnections(totals[l.destination])
            var j = i
            while j > first && ls[j - 1].destination > l.destination {
                ls[j] = ls[j - 1]
                j -= 1
            }
            ls[j] = l
        }
        defer { free(keepingLoads: inOrder) }
        if inOrder {
            if current >= 0 {
                gs[current].loadRange = first..<n
                gs[current].lastMember = -1
            }
            return (groups.handOver(), loads.handOver())
        }
        // A counting sort by group; a group has a few loads, put in order by insertion.
        var next = [Int](repeating: 0, count: groups.count + 1)
        for i in 0..<n { next[ls[i].group + 1] += 1 }
        for g in 0..<groups.count { next[g + 1] += next[g] }
        for g in 0..<groups.count {
            gs[g].loadRange = next[g]..<next[g + 1]
            gs[g].lastMember = -1
        }
        let outBlock = pool.take(bytes: max(1, n) * MemoryLayout<GroupLoad>.stride)
        let out = outBlock.typed(GroupLoad.self)
        for i in 0..<n {
            var l = ls[i]
            l.setDestinationConnections(totals[l.destination])
            var j = next[l.group]
            next[l.group] += 1
            while j > gs[l.group].loadRange.lowerBound && out[j - 1].destination > l.destination {
                out[j] = out[j - 1]
                j -= 1
            }
            (out + j).initialize(to: l)
        }
        return (groups.handOver(), PooledList(store: PooledValues(block: outBlock, count: n, pool: pool)))
    }
}
