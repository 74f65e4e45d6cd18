import Foundation
import IPVSModel

/// A growable run of plain values in raw memory, for the client pass's inner loop, where
/// an Array's uniqueness and bounds checks showed in the profile. Freed by `free()`.
struct RawVector<T> {
    private(set) var base: UnsafeMutablePointer<T>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int) {
        self.capacity = max(16, capacity)
        base = .allocate(capacity: self.capacity)
    }

    @inline(__always)
    mutating func append(_ x: T) {
        if count == capacity {
            let bigger = UnsafeMutablePointer<T>.allocate(capacity: capacity * 2)
            bigger.moveInitialize(from: base, count: count)
            base.deallocate()
            base = bigger
            capacity *= 2
        }
        (base + count).initialize(to: x)
        count += 1
    }

    @inline(__always)
    subscript(i: Int) -> T {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }

    var array: [T] { Array(buffer) }
    var buffer: UnsafeBufferPointer<T> { UnsafeBufferPointer(start: base, count: count) }

    func free() {
        base.deinitialize(count: count)
        base.deallocate()
    }
}

/// Persistence groups and their loads as the client pass folds clients in: groups by
/// (service, masked address), loads by (destination, masked address).
///
/// IPv4 clients arrive sorted by address, and a prefix netmask keeps that order, so a
/// group's members come one after another, and a masked address once left never comes
/// back: a destination's (or service's) new masked address is a new load (or group), with
/// no lookup. IPv6 clients (in the order first seen) and netmasks with holes go through
/// the indexes.
struct GroupBuilder {
    /// Per destination: its service (-1: none), whether it groups clients, its IPv4
    /// netmask (all ones when it has none: the general path then), its netmask.
    let serviceOf: UnsafeMutablePointer<Int32>
    let grouping: UnsafeMutablePointer<Bool>
    let v4Mask: UnsafeMutablePointer<UInt32>
    let hasV4Mask: UnsafeMutablePointer<Bool>
    /// The netmask is IPv4 and a prefix: the sorted order holds.
    let ordered: UnsafeMutablePointer<Bool>
    /// Per service: the last group made in order, and its address.
    let lastGroup: UnsafeMutablePointer<Int32>
    let lastGroupMasked: UnsafeMutablePointer<IPAddress>
    let netmask: [PersistenceNetmask?]
    /// Made when first needed: IPv4 prefix netmasks, the usual case, never look up.
    var groupIndex: PairIndex?
    var loadIndex: PairIndex?
    let expected: Int
    var groups: RawVector<GroupAggregate>
    var loads: RawVector<GroupLoad>
    /// Index of the last client counted in each group.
    var lastMember: RawVector<Int32>
    /// Connections of each load already credited to a template by the client pass.
    var attributed: RawVector<Int>
    /// Each load's template (its group's, on its destination), -1 when it has none.
    var template: RawVector<Int32>
    let lastMasked: UnsafeMutablePointer<IPAddress>
    let lastLoad: UnsafeMutablePointer<Int32>

    /// `expected`: about how many groups there will be (each usually holds a template).
    init(destinations: [Destination], netmask: [PersistenceNetmask?], grouping: [Bool], expected: Int) {
        let count = destinations.count
        let n = max(1, count)
        serviceOf = .allocate(capacity: n)
        self.grouping = .allocate(capacity: n)
        v4Mask = .allocate(capacity: n)
        hasV4Mask = .allocate(capacity: n)
        lastMasked = .allocate(capacity: n)
        lastLoad = .allocate(capacity: n)
        ordered = .allocate(capacity: n)
        let services = max(1, (destinations.compactMap(\.service).max() ?? -1) + 1)
        lastGroup = .allocate(capacity: services)
        lastGroup.initialize(repeating: -1, count: services)
        lastGroupMasked = .allocate(capacity: services)
        lastGroupMasked.initialize(repeating: .zeroIPv4, count: services)
        for d in 0..<count {
            serviceOf[d] = Int32(destinations[d].service ?? -1)
            self.grouping[d] = grouping[d] && destinations[d].service != nil && netmask[d] != nil
            if case .ipv4(let m) = netmask[d] { v4Mask[d] = m; hasV4Mask[d] = true } else { v4Mask[d] = ~0; hasV4Mask[d] = false }
            lastMasked[d] = .zeroIPv4
            lastLoad[d] = -1
            // A prefix: ones, then zeros.
            ordered[d] = hasV4Mask[d] && (~v4Mask[d]) & (~v4Mask[d] &+ 1) == 0
        }
        self.netmask = netmask
        let guess = grouping.contains(true) ? max(256, expected) : 16
        self.expected = guess
        groups = RawVector(capacity: guess)
        loads = RawVector(capacity: guess)
        lastMember = RawVector(capacity: guess)
        attributed = RawVector(capacity: guess)
        template = RawVector(capacity: guess)
    }

    func free() {
        serviceOf.deallocate()
        v4Mask.deallocate()
        grouping.deallocate()
        hasV4Mask.deallocate()
        lastMasked.deallocate()
        lastLoad.deallocate()
        ordered.deallocate()
        lastGroup.deallocate()
        lastGroupMasked.deallocate()
        groups.free()
        loads.free()
        lastMember.free()
        attributed.free()
        template.free()
    }

    /// The group load of `client` on destination `d`, made when new; -1 when `d`'s
    /// service does not group clients.
    @inline(__always)
    mutating func load(_ d: Int, _ client: IPAddress) -> Int {
        guard grouping[d] else { return -1 }
        let masked = hasV4Mask[d] && client.isIPv4 ? IPAddress(ipv4: client.ipv4Value & v4Mask[d]) : netmask[d]!.apply(to: client)
        if lastLoad[d] >= 0 && lastMasked[d] == masked { return Int(lastLoad[d]) }
        return ordered[d] && client.isIPv4 ? newLoadInOrder(d, client, masked) : newLoad(d, client, masked)
    }

    private mutating func newLoadInOrder(_ d: Int, _ client: IPAddress, _ masked: IPAddress) -> Int {
        let s = Int(serviceOf[d])
        var g = Int(lastGroup[s])
        if g < 0 || lastGroupMasked[s] != masked {
            g = groups.count
            groups.append(GroupAggregate(service: s, address: masked, prefixLength: Aggregates.prefixLength(netmask[d]!, client),
                                         clients: 0, connections: StateCounts(), templates: 0, loadRange: 0..<0))
            lastMember.append(-1)
            lastGroup[s] = Int32(g)
            lastGroupMasked[s] = masked
        }
        let i = loads.count
        loads.append(GroupLoad(group: g, destination: d, connections: StateCounts(), templates: 0))
        attributed.append(0)
        template.append(-1)
        lastMasked[d] = masked
        lastLoad[d] = Int32(i)
        return i
    }

    private mutating func newLoad(_ d: Int, _ client: IPAddress, _ masked: IPAddress) -> Int {
        let s = Int(serviceOf[d])
        if groupIndex == nil {
            groupIndex = PairIndex(expected: expected)
            loadIndex = PairIndex(expected: expected)
        }
        let g = Int(groupIndex!.value(Int32(s), masked, orInsert: Int32(groups.count)))
        if g == groups.count {
            groups.append(GroupAggregate(service: s, address: masked, prefixLength: Aggregates.prefixLength(netmask[d]!, client),
                                         clients: 0, connections: StateCounts(), templates: 0, loadRange: 0..<0))
            lastMember.append(-1)
        }
        let i = Int(loadIndex!.value(Int32(d), masked, orInsert: Int32(loads.count)))
        if i == loads.count {
            loads.append(GroupLoad(group: g, destination: d, connections: StateCounts(), templates: 0))
            attributed.append(0)
            template.append(-1)
        }
        lastMasked[d] = masked
        lastLoad[d] = Int32(i)
        return i
    }

    /// Adds a client's connections on `d` to its group load `i`; `credited` of them were
    /// already credited to a template.
    @inline(__always)
    func add(_ l: StateCounts, load i: Int, client c: Int, credited: Int) {
        let g = loads[i].group
        groups.base[g].connections.add(l)
        loads.base[i].connections.add(l)
        attributed.base[i] += credited
        if lastMember[g] != Int32(truncatingIfNeeded: c) {
            lastMember[g] = Int32(truncatingIfNeeded: c)
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
        if groups.base[g].address == client { template[i] = ordinal }
    }

    /// Credits each group's template with the connections of its loads that the client
    /// pass did not credit, and lays the loads out per group (by destination within one).
    func finish(destinations: [Destination], controlled: inout [Int]) -> ([GroupAggregate], [GroupLoad]) {
        var gs = groups.array
        for i in 0..<loads.count where template[i] >= 0 {
            let rest = loads[i].connections.total - attributed[i]
            if rest > 0 { controlled[Int(template[i])] += rest }
        }
        // A counting sort by group; a group has a few loads, put in order by insertion.
        var next = [Int](repeating: 0, count: gs.count + 1)
        for i in 0..<loads.count { next[loads[i].group + 1] += 1 }
        for g in gs.indices { next[g + 1] += next[g] }
        for g in gs.indices { gs[g].loadRange = next[g]..<next[g + 1] }
        var out = [GroupLoad](repeating: GroupLoad(group: 0, destination: 0, connections: StateCounts(), templates: 0), count: loads.count)
        for i in 0..<loads.count {
            var l = loads[i]
            let total = destinations[l.destination].connections.total
            l.share = total > 0 ? Double(l.connections.total) / Double(total) : nil
            var j = next[l.group]
            next[l.group] += 1
            while j > gs[l.group].loadRange.lowerBound && out[j - 1].destination > l.destination {
                out[j] = out[j - 1]
                j -= 1
            }
            out[j] = l
        }
        return (gs, out)
    }
}
