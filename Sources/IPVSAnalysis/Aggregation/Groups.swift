import Foundation
import IPVSModel

/// Persistence groups and their loads as the client pass folds clients in: groups by
/// (service, masked address), loads by (destination, masked address). Clients arrive sorted
/// by address, so a group's members come one after another: each destination remembers
/// its last group load and skips the lookup while the masked address stays the same.
struct GroupBuilder {
    /// Per destination: its service (-1: none), and its connections in the table.
    let serviceOf: [Int]
    let destinationTotal: [Int]
    let netmask: [PersistenceNetmask?]
    let grouping: [Bool]
    let groupIndex: PairIndex
    let loadIndex: PairIndex
    var groups: [GroupAggregate] = []
    var loads: [GroupLoad] = []
    var lastMember: [Int] = []
    /// Connections of each load already credited to a template by the client pass.
    var attributed: [Int] = []
    var lastMasked: [IPAddress]
    var lastLoad: [Int]

    /// `expected`: about how many groups there will be (each usually holds a template).
    init(destinations: [Destination], netmask: [PersistenceNetmask?], grouping: [Bool], expected: Int) {
        serviceOf = destinations.map { $0.service ?? -1 }
        destinationTotal = destinations.map { $0.connections.total }
        self.netmask = netmask
        self.grouping = grouping
        let guess = grouping.contains(true) ? max(256, expected) : 16
        groupIndex = PairIndex(expected: guess)
        loadIndex = PairIndex(expected: guess)
        groups.reserveCapacity(guess)
        loads.reserveCapacity(guess)
        lastMember.reserveCapacity(guess)
        attributed.reserveCapacity(guess)
        lastMasked = [IPAddress](repeating: .zeroIPv4, count: destinations.count)
        lastLoad = [Int](repeating: -1, count: destinations.count)
    }

    /// The group load of `client` on destination `d`, made when new; -1 when `d`'s
    /// service does not group clients.
    @inline(__always)
    mutating func load(_ d: Int, _ client: IPAddress) -> Int {
        let s = serviceOf[d]
        guard grouping[d], s >= 0, let m = netmask[d] else { return -1 }
        let masked = m.apply(to: client)
        if lastLoad[d] >= 0 && lastMasked[d] == masked { return lastLoad[d] }
        let g = Int(groupIndex.value(Int32(s), masked, orInsert: Int32(groups.count)))
        if g == groups.count {
            groups.append(GroupAggregate(service: s, address: masked, prefixLength: Aggregates.prefixLength(m, client),
                                         clients: 0, connections: StateCounts(), templates: 0, loadRange: 0..<0))
            lastMember.append(-1)
        }
        let i = Int(loadIndex.value(Int32(d), masked, orInsert: Int32(loads.count)))
        if i == loads.count {
            loads.append(GroupLoad(group: g, destination: d, connections: StateCounts(), templates: 0))
            attributed.append(0)
        }
        lastMasked[d] = masked
        lastLoad[d] = i
        return i
    }

    /// Credits each group's template with the connections of its loads that the client
    /// pass did not credit, and lays the loads out per group (by destination within one).
    func finish(templateIndex: PairIndex, controlled: inout [Int]) -> ([GroupAggregate], [GroupLoad]) {
        var gs = groups
        for (i, l) in loads.enumerated() where l.templates > 0 {
            let rest = l.connections.total - attributed[i]
            guard rest > 0 else { continue }
            let t = templateIndex.value(Int32(l.destination), gs[l.group].address)
            if t >= 0 { controlled[Int(t)] += rest }
        }
        // A counting sort by group; a group has a few loads, put in order by insertion.
        var next = [Int](repeating: 0, count: gs.count + 1)
        for l in loads { next[l.group + 1] += 1 }
        for g in gs.indices { next[g + 1] += next[g] }
        for g in gs.indices { gs[g].loadRange = next[g]..<next[g + 1] }
        var out = [GroupLoad](repeating: GroupLoad(group: 0, destination: 0, connections: StateCounts(), templates: 0), count: loads.count)
        for var l in loads {
            let total = destinationTotal[l.destination]
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
