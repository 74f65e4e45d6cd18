import IPVSModel

/// Every aggregate of a snapshot, computed the plain way: dictionaries keyed by what an
/// operator would name (client, destination, persistence group, template), one entry at a
/// time, no packed words, no raw memory. It is slow on purpose and written to be read: it is
/// what `Aggregates.init` (the fast core, entered through `Workspace.run`: `FastCore.swift`)
/// must agree with, figure for figure, and the differential tests and `ipvstop-bench
/// --verify` compare the two.
///
/// The rules, each stated once:
/// - **Destination**: `Resolver` maps an entry to its service and real server (the
///   dictionary lookups ipvsadm's vocabulary describes; the fast core puts a route cache in
///   front of the same resolver). Routes the kernel's counters give to an fwmark service are
///   moved as `Aggregates.attribution` decides from this reading's own destinations.
/// - **Client**: an entry's client address. A template of a service that groups clients
///   (netmask wider than one address) belongs to its group, not to a client.
/// - **Load**: a client's entries on one destination.
/// - **Group**: a service's clients under `client & netmask`.
/// - **Template control**: a connection belongs to the last template (in table order) of its
///   destination whose client is the connection's client under the service's netmask. A
///   connection whose destination is not an address service's (no mark in /proc) and that
///   finds none there belongs to the first fwmark service sharing the real server's address
///   (same family) that has one.
///
/// Entries whose destination index does not fit an entry word (`EntryWord.destinationLimit`;
/// never on a real director) are left out of the per-client figures, as the fast core does.
package struct ReferenceAggregates {
    /// Connections by state and templates: what is counted of a client, a group and a load.
    package struct Figures: Equatable {
        package var connections = StateCounts()
        package var templates = 0

        mutating func count(_ e: ConnectionEntry) {
            if e.isTemplate { templates += 1 } else { connections.add(e.state) }
        }
    }

    package struct Client: Equatable {
        package var address: IPAddress
        /// Its templates are those under its own address (not a group's).
        package var all = Figures()
        /// By destination index.
        package var loads: [Int: Figures] = [:]
    }

    package struct GroupKey: Hashable {
        package var service: Int
        package var address: IPAddress
    }

    package struct Group: Equatable {
        package var key: GroupKey
        package var prefixLength: Int
        package var all = Figures()
        /// Client addresses with connections in the group.
        package var members = Set<IPAddress>()
        /// By destination index.
        package var loads: [Int: Figures] = [:]
    }

    package struct Template: Equatable {
        package var entryIndex: Int
        package var destination: Int
        package var service: ServiceKey?
        package var realServer: String
        package var controlled = 0
        package var expires: UInt32
        package var timeout: UInt32?
        package var pastTimeout: Bool
    }

    package var destinations: [Destination] = []
    package var liveDestination: [[Int?]] = []
    /// Per destination: whether its service groups clients under a netmask.
    package var grouping: [Bool] = []
    /// Routes moved to an fwmark service, as `Aggregates.attribution` decided from this reading.
    var moves: [RouteMove: Int] = [:]
    /// IPv4 clients by address, then IPv6 clients in the order the table first names them.
    package var clients: [Client] = []
    /// Groups in the order the fast core meets them is an implementation detail; by key here.
    package var groups: [GroupKey: Group] = [:]
    package var heavyFrom: Int
    /// (client index, destination, connections) of `heavyFrom` connections or more, by client
    /// then destination.
    package var heavyLoads: [LoadTotal] = []
    /// Per live destination of a service that does not group clients: clients by their
    /// connections there (bucket `min(n, 63)`).
    package var loadHistogram: [Int: [Int: Int]] = [:]
    /// The same for persistence groups on live destinations of services that group them.
    package var groupLoadHistogram: [Int: [Int: Int]] = [:]
    /// (group key, destination, connections) of `heavyFrom` connections or more.
    package var heavyGroupLoads: [(GroupKey, Int, Int)] = []
    /// In the documented order: most controlled first, then least time left, then client,
    /// destination and table order.
    package var templates: [Template] = []
    package var newConnections: [Int]?
    package var newFromSync: Int?
    package var newLocal: Int?
    package var unattributedEntries = 0

    package init(_ snapshot: Snapshot, heavyFrom floor: Int = AnalysisSettings().rogueFloor) {
        heavyFrom = max(1, min(floor, LoadHistogram.buckets - 1))
        let services = snapshot.services
        // First a reading without moves, for the attribution to decide from.
        let unmoved = Self.destinations(snapshot, moves: [:])
        if snapshot.connections != nil {
            moves = Aggregates.attribution(snapshot, unmoved.destinations, unmoved.live, moved: [:]).moves
        }
        let resolved = moves.isEmpty ? unmoved : Self.destinations(snapshot, moves: moves)
        destinations = resolved.destinations
        liveDestination = resolved.live
        guard let table = snapshot.connections else { return }
        let entries = table.entries
        let of = resolved.of
        let netmask: [PersistenceNetmask?] = destinations.map { $0.service.flatMap { services[$0].persistence?.netmask } }
        grouping = destinations.map { d in d.service.flatMap { services[$0].persistence?.netmask.groupsClients } ?? false }
        let alternates = Aggregates.fwmarkAlternates(destinations, services)

        // Clients and their loads.
        var firstSeen: [IPAddress: Int] = [:]
        for (i, e) in entries.enumerated() where !e.client.isIPv4 && firstSeen[e.client] == nil { firstSeen[e.client] = i }
        var byAddress: [IPAddress: Client] = [:]
        for (i, e) in entries.enumerated() {
            let d = of[i]
            guard d < EntryWord.destinationLimit else {
                unattributedEntries += 1
                continue
            }
            if e.isTemplate && grouping[d] { continue }
            byAddress[e.client, default: Client(address: e.client)].all.count(e)
            byAddress[e.client]!.loads[d, default: Figures()].count(e)
        }
        clients = byAddress.values.sorted { a, b in
            switch (a.address.isIPv4, b.address.isIPv4) {
            case (true, true): return a.address.ipv4Value < b.address.ipv4Value
            case (false, false): return firstSeen[a.address]! < firstSeen[b.address]!
            case (let x, _): return x
            }
        }

        // Heavy loads and the load histogram.
        for (k, c) in clients.enumerated() {
            for d in c.loads.keys.sorted() {
                let n = c.loads[d]!.connections.total
                if n >= heavyFrom { heavyLoads.append(LoadTotal(client: k, destination: d, connections: n)) }
                if n > 0 && destinations[d].isLive && !grouping[d] {
                    loadHistogram[d, default: [:]][min(n, LoadHistogram.buckets - 1), default: 0] += 1
                }
            }
        }

        // Persistence groups.
        for (i, e) in entries.enumerated() {
            let d = of[i]
            guard d < EntryWord.destinationLimit, grouping[d], let s = destinations[d].service, let m = netmask[d] else { continue }
            let key = GroupKey(service: s, address: m.apply(to: e.client))
            groups[key, default: Group(key: key, prefixLength: Aggregates.prefixLength(m, e.client))].all.count(e)
            groups[key]!.loads[d, default: Figures()].count(e)
            if !e.isTemplate { groups[key]!.members.insert(e.client) }
        }
        for g in groups.values {
            for (d, l) in g.loads where l.connections.total > 0 && destinations[d].isLive {
                let n = l.connections.total
                groupLoadHistogram[d, default: [:]][min(n, LoadHistogram.buckets - 1), default: 0] += 1
                if n >= heavyFrom { heavyGroupLoads.append((g.key, d, n)) }
            }
        }

        // Templates and the connections they control.
        struct TemplateKey: Hashable {
            var destination: Int
            var client: IPAddress
        }
        var lastTemplate: [TemplateKey: Int] = [:]
        var controlled: [Int: Int] = [:]
        for (i, e) in entries.enumerated() where e.isTemplate && of[i] < EntryWord.destinationLimit {
            lastTemplate[TemplateKey(destination: of[i], client: e.client)] = i
        }
        for (i, e) in entries.enumerated() where !e.isTemplate && of[i] < EntryWord.destinationLimit {
            let d = of[i]
            var owner = netmask[d].flatMap { lastTemplate[TemplateKey(destination: d, client: $0.apply(to: e.client))] }
            for (a, family) in alternates[d] where owner == nil && family == e.client.family {
                owner = netmask[a].flatMap { lastTemplate[TemplateKey(destination: a, client: $0.apply(to: e.client))] }
            }
            if let t = owner { controlled[t, default: 0] += 1 }
        }
        for (i, e) in entries.enumerated() where e.isTemplate && of[i] < EntryWord.destinationLimit {
            let d = destinations[of[i]]
            let service = d.service.map { services[$0] }
            let timeout = service?.persistence?.timeoutSeconds
            let n = controlled[i] ?? 0
            templates.append(Template(
                entryIndex: i, destination: of[i], service: service?.key,
                realServer: d.realServer.map { service!.realServers[$0].id } ?? d.address.endpoint(port: e.destinationPort),
                controlled: n, expires: e.expires, timeout: timeout,
                pastTimeout: n > 0 && timeout.map { e.expires > $0 } == true))
        }
        templates.sort { a, b in
            let ca = min(a.controlled, Int(UInt32.max)), cb = min(b.controlled, Int(UInt32.max))
            if ca != cb { return ca > cb }
            if a.expires != b.expires { return a.expires < b.expires }
            let x = entries[a.entryIndex].client, y = entries[b.entryIndex].client
            if x != y { return x < y }
            if a.destination != b.destination { return a.destination < b.destination }
            return a.entryIndex < b.entryIndex
        }

        // What is new since the previous read.
        if let changes = snapshot.connectionChanges {
            (newConnections, newFromSync, newLocal) = Aggregates.newEntries(changes, entries, destinationCount: destinations.count,
                                                                            knowsOrigin: table.file.hasSuffix("_sync")) { of[$0] }
        }
    }

    /// Each entry's destination (`of`, by entry index), and the destinations with their
    /// counts: connections by state, templates, entries from sync, and for a destination
    /// that is gone the most time left.
    static func destinations(_ snapshot: Snapshot, moves: [RouteMove: Int])
        -> (destinations: [Destination], live: [[Int?]], of: [Int]) {
        var live = snapshot.services.map { [Int?](repeating: nil, count: $0.realServers.count) }
        guard let entries = snapshot.connections?.entries else { return ([], live, []) }
        var resolver = Resolver(services: snapshot.services, moves: moves)
        let of = entries.map { Int(resolver.destination(of: $0)) }
        var out = resolver.destinations
        for (i, e) in entries.enumerated() {
            let d = of[i]
            if e.isTemplate {
                out[d].templates += 1
            } else {
                out[d].connections.add(e.state)
                if e.isFromSync { out[d].fromSync += 1 }
            }
            if !out[d].isLive { out[d].maxExpires = max(out[d].maxExpires, e.expires) }
        }
        for (i, d) in out.enumerated() {
            if let s = d.service, let r = d.realServer, live[s][r] == nil { live[s][r] = i }
        }
        return (out, live, of)
    }
}

extension ReferenceAggregates {
    /// Where `fast` disagrees with this reading, one line each, named by the fast core's pass
    /// that makes the figure (`Aggregates.Pass`); empty when they agree on every aggregate.
    /// `fast` must be the one-shot aggregation of the same snapshot with the same `heavyFrom`
    /// (an `Analyzer` adds what it followed across reads).
    package func differences(from fast: Aggregates, limit: Int = 20) -> [String] {
        var out: [String] = []
        func differ(_ pass: Aggregates.Pass, _ what: @autoclosure () -> String) {
            if out.count < limit { out.append("\(pass.rawValue): \(what())") }
        }

        // The first pass: destinations and what it counts per destination.
        if fast.destinations != destinations {
            let at = zip(fast.destinations, destinations).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                ?? min(fast.destinations.count, destinations.count)
            differ(.firstPass, "destinations differ from #\(at) (\(fast.destinations.count) against \(destinations.count))")
        }
        if fast.liveDestination != liveDestination { differ(.firstPass, "liveDestination differs") }
        if fast.routeMoves != moves { differ(.firstPass, "route moves differ") }
        if fast.unattributedEntries != unattributedEntries {
            differ(.firstPass, "unattributed entries \(fast.unattributedEntries), reference \(unattributedEntries)")
        }
        if fast.newConnections != newConnections || fast.newFromSync != newFromSync || fast.newLocal != newLocal {
            differ(.firstPass, "new entries differ")
        }
        guard fast.destinations.count == destinations.count else { return out }

        // The sort and the client pass: clients, their loads, the heavy ones, the histogram.
        if fast.clients.count != clients.count {
            differ(.clientPass, "\(fast.clients.count) clients, reference \(clients.count)")
        } else {
            for (k, r) in clients.enumerated() {
                let c = fast.clients[k]
                guard c.address == r.address, c.connections == r.all.connections, c.templates == r.all.templates else {
                    differ(.clientPass, "client #\(k) \(c.address): \(c.connections.total) connections, \(c.templates) templates; "
                           + "reference \(r.address): \(r.all.connections.total), \(r.all.templates)")
                    continue
                }
                let loads = fast.loads(of: c)
                let byDestination = Dictionary(loads.map { ($0.destination, Figures(connections: $0.connections, templates: $0.templates)) },
                                               uniquingKeysWith: { a, _ in a })
                if loads.count != byDestination.count || byDestination != r.loads || loads.map(\.destination) != r.loads.keys.sorted() {
                    differ(.clientPass, "client \(r.address): loads differ")
                }
            }
        }
        let allLoads = clients.enumerated().flatMap { k, c in
            c.loads.keys.sorted().compactMap { d in
                c.loads[d]!.connections.total > 0 ? LoadTotal(client: k, destination: d, connections: c.loads[d]!.connections.total) : nil
            }
        }
        if fast.loadTotals() != allLoads { differ(.clientPass, "load totals differ") }
        if fast.heavyFrom != heavyFrom || Array(fast.heavyLoads) != heavyLoads {
            differ(.clientPass, "\(fast.heavyLoads.count) heavy loads from \(fast.heavyFrom), reference \(heavyLoads.count) from \(heavyFrom)")
        }
        for d in destinations.indices {
            if fast.loadHistogram.hasRow(d) != (destinations[d].isLive && !grouping[d]) {
                differ(.clientPass, "destination #\(d): a load-histogram row where there should \(fast.loadHistogram.hasRow(d) ? "be none" : "be one")")
            }
            if fast.groupLoadHistogram.hasRow(d) != (destinations[d].isLive && grouping[d]) {
                differ(.groups, "destination #\(d): a group-histogram row where there should \(fast.groupLoadHistogram.hasRow(d) ? "be none" : "be one")")
            }
            for n in 1..<LoadHistogram.buckets {
                let got = fast.loadHistogram.clients(destination: d, connections: n), want = loadHistogram[d]?[n] ?? 0
                if got != want { differ(.clientPass, "destination #\(d): \(got) clients of \(n) connections, reference \(want)") }
                let gotG = fast.groupLoadHistogram.clients(destination: d, connections: n), wantG = groupLoadHistogram[d]?[n] ?? 0
                if gotG != wantG { differ(.groups, "destination #\(d): \(gotG) groups of \(n) connections, reference \(wantG)") }
            }
        }

        // The persistence groups.
        if fast.groups.count != groups.count { differ(.groups, "\(fast.groups.count) groups, reference \(groups.count)") }
        var keys: [GroupKey] = []
        for g in fast.groups {
            let key = GroupKey(service: g.service, address: g.address)
            keys.append(key)
            guard let r = groups[key] else {
                differ(.groups, "group \(g.name) of service #\(g.service) not in the reference")
                continue
            }
            if g.prefixLength != r.prefixLength || g.connections != r.all.connections || g.clients != r.members.count || g.templates != r.all.templates {
                differ(.groups, "group \(g.name): \(g.connections.total) connections, \(g.clients) clients, \(g.templates) templates; "
                       + "reference \(r.all.connections.total), \(r.members.count), \(r.all.templates)")
            }
            let loads = fast.loads(of: g)
            let byDestination = Dictionary(loads.map { ($0.destination, Figures(connections: $0.connections, templates: $0.templates)) },
                                           uniquingKeysWith: { a, _ in a })
            let shares = loads.allSatisfy { l in
                let total = destinations[l.destination].connections.total
                return l.group < fast.groups.count && fast.groups[l.group].address == g.address
                    && l.share == (total > 0 ? Double(l.connections.total) / Double(total) : nil)
            }
            if byDestination != r.loads || loads.map(\.destination) != r.loads.keys.sorted() || !shares {
                differ(.groups, "group \(g.name): loads differ")
            }
        }
        if Set(keys).count != keys.count { differ(.groups, "a group made twice") }
        func ordered(_ l: [(GroupKey, Int, Int)]) -> [String] {
            l.map { "\($0.0.service)/\($0.0.address)@\($0.1)=\($0.2)" }.sorted()
        }
        let fastHeavy = fast.heavyGroupLoads.map { h in (h.group < keys.count ? keys[h.group] : GroupKey(service: -1, address: .zeroIPv4), h.destination, h.connections) }
        if ordered(fastHeavy) != ordered(heavyGroupLoads) {
            differ(.groups, "\(fast.heavyGroupLoads.count) heavy group loads, reference \(heavyGroupLoads.count)")
        }

        // The templates, in the documented order, with what they control.
        if fast.templates.count != templates.count { differ(.templates, "\(fast.templates.count) templates, reference \(templates.count)") }
        for (i, (t, r)) in zip(fast.templates, templates).enumerated() {
            let s = t.summary
            if s.entryIndex != r.entryIndex || s.controlledConns != r.controlled || s.service != r.service || s.realServer != r.realServer
                || t.destination != r.destination || t.expires != r.expires || t.timeout != r.timeout || (t.pastTimeout == true) != r.pastTimeout {
                differ(.templates, "template #\(i): entry \(s.entryIndex) controlling \(s.controlledConns) on \(s.realServer); "
                       + "reference entry \(r.entryIndex) controlling \(r.controlled) on \(r.realServer)")
            }
        }
        return out
    }
}
