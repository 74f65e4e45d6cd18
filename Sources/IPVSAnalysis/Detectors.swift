import FoundationEssentials
import IPVSModel

/// Everything a detector reads. Detectors are pure: the same context gives the same
/// candidates; hysteresis is the `Analyzer`'s business.
struct Context {
    let snapshot: Snapshot
    let agg: Aggregates
    let settings: AnalysisSettings
    let history: History
    /// Keys of findings raised now: their thresholds are relaxed by `clearFactor` so that
    /// a measure wavering around a threshold does not flap.
    let raised: Set<String>

    var now: Date { snapshot.takenAt }
    var tableTime: Date { snapshot.connections?.readAt ?? snapshot.takenAt }

    func relax(_ key: String) -> Double { raised.contains(key) ? settings.clearFactor : 1 }

    func sysctl(_ name: String) -> Int64? { snapshot.sysctl(name)?.integerValue }

    /// A finding about `about`, its key `kind/service/real server/client`.
    func finding(_ kind: FindingKind, about: FindingSubject, _ severity: Severity, subject: String, explanation: String,
                 evidence: [Evidence], advice: String) -> Finding {
        Finding(key: kind.rawValue + "/" + about.keyPath, kind: kind, severity: severity, subject: subject,
                since: kind.source == .table ? tableTime : now, explanation: explanation, evidence: evidence, advice: advice,
                about: about)
    }

    func rsName(_ d: Destination) -> String { agg.realServerName(d, in: snapshot) }
    func svcName(_ d: Destination) -> String { agg.serviceName(d, in: snapshot) }

    func persistenceText(_ s: VirtualService) -> String? {
        guard let p = s.persistence else { return nil }
        if let t = p.timeoutSeconds { return "\(t) s" }
        if let j = p.timeoutJiffies { return "\(j) jiffies" }
        return nil
    }
}

func pct(_ x: Double) -> String { "\(wholeNumber((x * 100).rounded()))%" }

/// A figure derived from outside data (a share, seconds between two recorded times) as an
/// Int for a sentence or evidence: saturates at Int's ends, NaN as 0, never traps.
func wholeNumber(_ d: Double) -> Int { d.saturatedInt }
func plural(_ n: Int, _ one: String, _ many: String? = nil) -> String { "\(n) " + (n == 1 ? one : (many ?? one + "s")) }

/// Lower medians of counts per service in linear time: a histogram of the usual small
/// counts, the rare large ones kept aside.
final class MedianCounter {
    /// 256 buckets per service, in one raw block: a unit is one increment (the findings
    /// count every client × real server of the table, 10^5 and more).
    private let small: UnsafeMutablePointer<Int32>
    private let counts: UnsafeMutablePointer<Int>
    private var big: [[Int]]
    private let services: Int

    init(services: Int) {
        self.services = services
        small = .allocate(capacity: max(1, services) * 256)
        small.initialize(repeating: 0, count: max(1, services) * 256)
        counts = .allocate(capacity: max(1, services))
        counts.initialize(repeating: 0, count: max(1, services))
        big = [[Int]](repeating: [], count: services)
    }

    deinit {
        small.deallocate()
        counts.deallocate()
    }

    @inline(__always)
    func add(_ v: Int, service s: Int) { add(v, count: 1, service: s) }

    /// `k` units of `v`.
    func add(_ v: Int, count k: Int, service s: Int) {
        guard k > 0 else { return }
        counts[s] &+= k
        if v < 256 {
            small[s &* 256 &+ v] &+= Int32(truncatingIfNeeded: k)
        } else {
            big[s].append(contentsOf: repeatElement(v, count: k))
        }
    }

    func count(service s: Int) -> Int { counts[s] }

    func median(service s: Int) -> Int {
        guard counts[s] > 0 else { return 0 }
        let target = (counts[s] - 1) / 2
        var seen = 0
        for v in 0..<256 {
            seen += Int(small[s * 256 + v])
            if seen > target { return v }
        }
        return big[s].sorted()[target - seen]
    }
}

enum Detectors {
    static func all(_ c: Context) -> [Finding] {
        serviceDown(c) + rogueClients(c) + imbalance(c) + quiescentFed(c) + deadDestinations(c) + templateOverstay(c) + tablePressure(c) + sync(c)
    }

    // MARK: - rogue_client

    static func rogueClients(_ c: Context) -> [Finding] {
        let agg = c.agg, s = c.snapshot
        guard agg.hasTable else { return [] }
        // Units per service: a client on a real server, or for services with a netmask a
        // persistence group on a real server (the kernel pins the group as one). First the
        // median of each service's units, from histograms (no array of 10^6 units): the
        // clients' from the aggregation's, but for the heaviest, which it keeps one by one.
        let st = c.settings
        let floorCount = st.rogueFloor
        let medians = MedianCounter(services: s.services.count)
        var candidates: [(count: Int, destination: Int, client: Int?, group: Int?)] = []
        // The live service of each destination, -1 for none; for client loads, -1 also where
        // the service groups clients (its groups are the units): the destinations the
        // aggregation gave a histogram row. One lookup per load.
        let liveService = agg.destinations.map { $0.isLive ? ($0.service ?? -1) : -1 }
        let unitService = liveService.indices.map { agg.loadHistogram.hasRow($0) ? liveService[$0] : -1 }
        let last = LoadHistogram.buckets - 1
        precondition(agg.heavyFrom <= last, "loads of the histogram's last bucket not kept")
        /// The units a histogram counts by size, below its last bucket (those are kept one by one).
        func addSizes(_ h: LoadHistogram) {
            for (d, si) in liveService.enumerated() where si >= 0 && h.hasRow(d) {
                for n in 1..<last { medians.add(n, count: h.clients(destination: d, connections: n), service: si) }
            }
        }
        addSizes(agg.loadHistogram)
        for l in agg.heavyLoads where l.connections >= last {
            let si = unitService[l.destination]
            if si >= 0 { medians.add(l.connections, service: si) }
        }
        // The candidates: among the heavy loads, unless the aggregation kept fewer than
        // these settings ask for (made with other settings): then among all. (A load has a
        // connection at least: a floor of 0 asks for no more than one of 1.)
        let keptEnough = agg.heavyFrom <= max(1, floorCount)
        let heavy = keptEnough ? Array(agg.heavyLoads) : agg.loadTotals()
        for l in heavy where l.connections >= floorCount && unitService[l.destination] >= 0 {
            candidates.append((l.connections, l.destination, l.client, nil))
        }
        // The groups: counted by size and the heavy ones kept as the aggregation laid their
        // loads out.
        addSizes(agg.groupLoadHistogram)
        for l in agg.heavyGroupLoads where l.connections >= last { medians.add(l.connections, service: liveService[l.destination]) }
        if keptEnough {
            for l in agg.heavyGroupLoads where l.connections >= floorCount { candidates.append((l.connections, l.destination, nil, l.group)) }
        } else {
            for l in agg.groupLoads where liveService[l.destination] >= 0 && l.connections.total >= max(1, floorCount) {
                candidates.append((l.connections.total, l.destination, nil, l.group))
            }
        }
        var out: [Finding] = []
        for u in candidates {
            let si = agg.destinations[u.destination].service!
            let median = medians.median(service: si)
            let unitCount = medians.count(service: si)
            let svc = s.services[si]
            do { // one candidate
                let d = agg.destinations[u.destination]
                let rs = c.rsName(d)
                let who: String, whoKey: String
                var extra: [Evidence] = []
                if let g = u.group {
                    let grp = agg.groups[g]
                    who = "persistence group \(grp.name) (\(plural(grp.clients, "client")))"
                    whoKey = grp.name
                    extra = [Evidence("group", .text(grp.name)), Evidence("group_clients", .int(grp.clients))]
                } else {
                    let address = agg.clients.address(u.client!)
                    who = "client \(address)"
                    whoKey = address.description
                    extra = [Evidence("client", .text(address.description))]
                }
                let about = FindingSubject(service: svc.id, realServer: rs, client: whoKey)
                let r = c.relax(FindingKind.rogueClient.rawValue + "/" + about.keyPath)
                let total = d.connections.total
                let share = total > 0 ? Double(u.count) / Double(total) : 0
                guard Double(u.count) >= Double(st.rogueMinConnections) * r,
                      share >= st.rogueMinShare * r,
                      Double(u.count) >= st.rogueMedianFactor * r * Double(max(median, 1)) else { continue }
                var text = "\(who.prefix(1).uppercased() + who.dropFirst()) holds \(u.count) of the \(total) connections (\(pct(share))) on real server \(rs) of \(svc.id); the median client of the service holds \(median)."
                let p = c.persistenceText(svc)
                if let p { text += " Persistence (timeout \(p)) keeps sending it to this real server." }
                let advice: String
                if u.group != nil, let p = svc.persistence {
                    advice = "The \(p.netmask) persistence netmask makes these clients one: narrow it (ipvsadm -E ... -M) or shorten the persistence timeout so that they spread."
                } else {
                    advice = "Find out what \(whoKey) is doing (ipvsadm -Lcn | grep \(whoKey)): a broken or looping client, or a NAT or proxy hiding many users; fix or block it\(p != nil ? ", or shorten the persistence timeout" : "")."
                }
                let ev = extra + [
                    Evidence("service", .text(svc.id)), Evidence("real_server", .text(rs)),
                    Evidence("connections", .int(u.count)), Evidence("real_server_connections", .int(total)),
                    Evidence("share", .number(share)), Evidence("median_client_connections", .int(median)),
                    Evidence("units_in_service", .int(unitCount)),
                ] + (svc.persistence.map { [Evidence("persistence_timeout_s", $0.timeoutSeconds.map { .int(Int($0)) } ?? .unknown)] } ?? [])
                out.append(c.finding(.rogueClient, about: about, .warning, subject: "\(who) on \(rs) of \(svc.id)",
                                     explanation: text, evidence: ev, advice: advice))
            }
        }
        return out
    }

    // MARK: - imbalance

    /// How a scheduler means the weights: shares proportional to weight, equal among the
    /// servers with weight > 0, or no share at all (fail-over, overflow, locality).
    enum ShareModel { case weighted, equal, none }

    static func shareModel(_ scheduler: String) -> ShareModel {
        switch scheduler {
        case "rr", "lc": .equal
        case "fo", "ovf", "dh", "lblc", "lblcr": .none
        default: .weighted // wrr wlc sed nq sh mh twos, and unknown ones
        }
    }

    static func imbalance(_ c: Context) -> [Finding] {
        var out: [Finding] = []
        let st = c.settings
        for (si, svc) in c.snapshot.services.enumerated() {
            let model = shareModel(svc.scheduler)
            guard model != .none else { continue }
            let live = svc.realServers.indices.filter { svc.realServers[$0].weight > 0 }
            guard live.count >= 2 else { continue }
            // ActiveConn, what the least-connection schedulers balance; with too few
            // (UDP has none) ActiveConn + InActConn.
            let active = live.reduce(0) { $0 + Int(svc.realServers[$1].activeConns) }
            let useActive = active >= st.imbalanceMinConnections
            func conns(_ r: Int) -> Int {
                let rs = svc.realServers[r]
                return useActive ? Int(rs.activeConns) : Int(rs.activeConns) + Int(rs.inactiveConns)
            }
            let total = live.reduce(0) { $0 + conns($1) }
            guard total >= st.imbalanceMinConnections else { continue }
            let weightTotal = live.reduce(0) { $0 + Int(svc.realServers[$1].weight) }
            struct Off { var r: Int; var connShare: Double; var weightShare: Double; var over: Bool }
            var offs: [Off] = []
            for r in live {
                let rs = svc.realServers[r]
                let ws = model == .weighted ? Double(rs.weight) / Double(weightTotal) : 1 / Double(live.count)
                let cs = Double(conns(r)) / Double(total)
                let k = c.relax("imbalance/\(svc.id)/\(rs.id)")
                let tol = st.imbalanceTolerance * k, diff = st.imbalanceMinDifference * k
                if cs > ws * (1 + tol) && cs - ws >= diff { offs.append(Off(r: r, connShare: cs, weightShare: ws, over: true)) }
                else if cs < ws * (1 - tol) && ws - cs >= diff { offs.append(Off(r: r, connShare: cs, weightShare: ws, over: false)) }
            }
            // An overloaded server's mirror image (the others underloaded) is one story,
            // told once: under-loads only when nothing is over.
            let anyOver = offs.contains { $0.over }
            let measure = useActive ? "ActiveConn" : "connections (ActiveConn + InActConn)"
            for o in offs where o.over == anyOver {
                let rs = svc.realServers[o.r]
                let n = conns(o.r)
                var text = "Real server \(rs.id) holds \(pct(o.connShare)) of \(svc.id)'s \(measure) (\(n) of \(total)) against \(pct(o.weightShare)) of its weight"
                text += model == .weighted ? " (\(rs.weight) of \(weightTotal))." : " (\(svc.scheduler) shares equally among \(live.count) servers)."
                var ev: [Evidence] = [
                    Evidence("service", .text(svc.id)), Evidence("real_server", .text(rs.id)),
                    Evidence("scheduler", .text(svc.scheduler)), Evidence("measure", .text(useActive ? "active_conns" : "active_conns+inactive_conns")),
                    Evidence("connections", .int(n)), Evidence("service_connections", .int(total)),
                    Evidence("connection_share", .number(o.connShare)), Evidence("weight", .int(Int(rs.weight))),
                    Evidence("weight_share", .number(o.weightShare)),
                ]
                let (cause, causeText, culprits, sufficient, advice) = o.over
                    ? attribute(c, si, o.r, expectedShare: o.weightShare)
                    : ("none", "No single cause shows in the data.", [String](), nil,
                       "Check that \(rs.id) accepts and keeps connections (health check, application errors): it gets fewer than its weight says.")
                text += " " + causeText
                ev.append(Evidence("cause", .text(cause)))
                ev.append(Evidence("culprits", .texts(culprits)))
                // yes: without the culprits the server is within tolerance (the fewest that
                // do); no: the top imbalance_max_culprits are named and do not suffice.
                ev.append(Evidence("culprits_sufficient", sufficient.map { .text($0 ? "yes" : "no") } ?? .unknown))
                out.append(c.finding(.imbalance, about: FindingSubject(service: svc.id, realServer: rs.id), .warning,
                                     subject: "\(rs.id) of \(svc.id) (\(o.over ? "over" : "under") its weight)",
                                     explanation: text, evidence: ev, advice: advice))
            }
        }
        return out
    }

    /// Why an overloaded server is overloaded, when the table shows it: a few clients or
    /// groups holding its excess, or templates outliving their connections.
    ///
    /// The culprits are the fewest of its heaviest clients (or groups), at most
    /// `imbalanceMaxCulprits`, whose connections taken out of both the server's and the
    /// service's count in the table bring the server back within the imbalance thresholds
    /// (taking the heaviest first gives the smallest such set). When no set that small does,
    /// all of the top ones are named and the evidence says so (`culprits_sufficient`: no).
    /// Returns the cause, its text, the culprits (`address: count`), whether they suffice
    /// (nil when none is named), and the advice.
    static func attribute(_ c: Context, _ si: Int, _ r: Int, expectedShare: Double)
        -> (cause: String, text: String, culprits: [String], sufficient: Bool?, advice: String) {
        let agg = c.agg, svc = c.snapshot.services[si]
        let p = c.persistenceText(svc)
        guard agg.hasTable, let d = agg.liveDestination[si][r] else {
            return (agg.hasTable ? "none" : "no_table",
                    agg.hasTable ? "The connection table has no entry for it." : "The connection table was not read, so the cause cannot be told.",
                    [], nil, "Read the connection table (drop --no-connections) to see who holds its connections.")
        }
        let dest = agg.destinations[d]
        let onRS = dest.connections.total
        // The service's connections in the table, to compare like with like.
        var serviceTotal = 0
        for x in agg.liveDestination[si] { if let x { serviceTotal += agg.destinations[x].connections.total } }
        let grouping = svc.persistence?.netmask.groupsClients ?? false
        let maxK = max(1, c.settings.imbalanceMaxCulprits)
        var top: [(String, Int)] = []
        if grouping {
            top = agg.groupLoads.filter { $0.destination == d }.map { (agg.groups[$0.group].name, $0.connections.total) }
        } else {
            // Its `maxK` heaviest clients are among the heavy loads when it has that many
            // there (every other load is lighter); else every load is looked at.
            var loads = agg.heavyLoads.filter { $0.destination == d }
            if loads.count < maxK { loads = agg.loadTotals().filter { $0.destination == d } }
            top = loads.map { (agg.clients.address($0.client).description, $0.connections) }
        }
        top.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        let st = c.settings
        let k0 = c.relax("imbalance/\(svc.id)/\(svc.realServers[r].id)")
        /// Still over its weight with `removed` connections taken out: the detector's test.
        func over(removed: Int) -> Bool {
            let rest = serviceTotal - removed
            guard rest > 0 else { return false }
            let cs = Double(onRS - removed) / Double(rest)
            return cs > expectedShare * (1 + st.imbalanceTolerance * k0) && cs - expectedShare >= st.imbalanceMinDifference * k0
        }
        /// `x: n` for each named one.
        let shown = Array(top.prefix(maxK))
        var sum = 0
        var found: Int?
        for k in 0..<shown.count {
            sum += shown[k].1
            if !over(removed: sum) { found = k + 1; break }
        }
        let named = (found.map { Array(shown.prefix($0)) } ?? shown)
        let namedText = named.map { "\($0.0): \($0.1)" }
        let held = named.reduce(0) { $0 + $1.1 }
        if let n = found, over(removed: 0) {
            let noun = grouping ? "persistence group" : "client"
            let who: String
            if grouping {
                who = n == 1 ? "Persistence group \(named[0].0) (\(plural(agg.groups.first { $0.service == si && $0.name == named[0].0 }?.clients ?? 0, "client")))"
                             : "\(n) persistence groups (\(named.map(\.0).joined(separator: ", ")))"
            } else {
                who = n == 1 ? "Client \(named[0].0)" : "\(n) clients"
            }
            let verb = n == 1 ? "holds" : "hold"
            let without = "without \(n == 1 ? "it" : "them") the server would be within tolerance (the fewest of its top \(noun)s that do)"
            if grouping {
                return ("pinned_group",
                        "\(who) \(verb) \(held) of the \(onRS) connections in the table there\(n > 1 ? " (\(namedText.joined(separator: ", ")))" : ""), pinned by persistence (netmask \(svc.persistence!.netmask)\(p.map { ", timeout \($0)" } ?? "")); \(without).",
                        namedText, true, "The scheduler cannot move a pinned group: narrow the persistence netmask or shorten its timeout (ipvsadm -E), or deal with the group (see rogue_client).")
            }
            let pinned = p.map { ", pinned by persistence (timeout \($0))" } ?? ""
            return ("pinned_clients",
                    "\(who) \(verb) \(held) of the \(onRS) connections in the table there (\(namedText.joined(separator: ", ")))\(pinned); \(without).",
                    namedText, true, p != nil ? "The scheduler cannot move pinned clients: deal with them (see rogue_client) or shorten the persistence timeout."
                                              : "Deal with those clients (see rogue_client): the scheduler spreads connections, not clients.")
        }
        // No set of up to maxK suffices: name them all, and say how far they go.
        var partial = ""
        if !named.isEmpty {
            let rest = serviceTotal - held
            let share = rest > 0 ? Double(onRS - held) / Double(rest) : 0
            partial = " Its top \(plural(named.count, grouping ? "group" : "client")) (\(namedText.joined(separator: ", "))) hold \(held) of its \(onRS) connections; without them it would still hold \(onRS - held) (\(pct(share)) of the service's, against \(pct(expectedShare)) of the weight): no set of up to \(maxK) explains it (imbalance_max_culprits)."
        }
        // Templates outliving their connections: the persistence timeout, not the clients.
        if svc.persistence != nil {
            var templates = 0, idle = 0
            agg.templates.forEachCell { _, destination, _, controlled, _ in
                guard destination == d else { return }
                templates += 1
                if controlled == 0 { idle += 1 }
            }
            if templates >= 10 && idle * 2 >= templates {
                return ("long_persistence",
                        "\(idle) of its \(templates) templates control no connection: the persistence timeout (\(p ?? "?")) keeps clients pinned here long after their connections end." + partial,
                        namedText, named.isEmpty ? nil : false, "Shorten the persistence timeout (ipvsadm -E ... -p N) towards the connections' lifetime.")
            }
        }
        return ("none",
                named.isEmpty ? "No single cause shows in the table." : "No single cause shows in the table." + partial,
                namedText, named.isEmpty ? nil : false, "Check the real server's capacity against its weight and the scheduler (\(svc.scheduler)); deal with its top clients if they are not ordinary (see rogue_client).")
    }

    // MARK: - quiescent_fed

    static func quiescentFed(_ c: Context) -> [Finding] {
        let eqt = c.sysctl("expire_quiescent_template")
        guard eqt != 1 else { return [] }
        var out: [Finding] = []
        let s = c.snapshot
        for (si, svc) in s.services.enumerated() {
            guard svc.persistence != nil else { continue }
            for (ri, rs) in svc.realServers.enumerated() where rs.weight == 0 {
                let id = History.RealServerID(service: svc.key, address: rs.address, port: rs.port)
                guard let q = c.history.quiescent[id] else { continue }
                // The table's count, or the kernel's Conns counter where netlink gives it:
                // either shows new connections reaching it.
                let window = c.settings.quiescentWindowSeconds, least = c.settings.quiescentMinNewConnections
                let byTable = q.lastNewAt.map { q.newConnections >= least && c.tableTime.timeIntervalSince($0) <= window } ?? false
                let byCounter = q.counterRoseAt.map { (q.connsDelta ?? 0) >= max(1, least) && c.now.timeIntervalSince($0) <= window } ?? false
                guard byTable || byCounter, let last = [q.lastNewAt, q.counterRoseAt].compactMap({ $0 }).max() else { continue }
                var templates = 0, maxLeft: UInt32 = 0, controlled = 0
                if let d = c.agg.liveDestination[si][ri] {
                    c.agg.templates.forEachCell { _, destination, expires, conns, _ in
                        guard destination == d else { return }
                        templates += 1
                        maxLeft = max(maxLeft, expires)
                        controlled += conns
                    }
                }
                let sinceText = q.sawTransition ? "since \(timeText(q.since))" : "(already when first seen, \(timeText(q.since)))"
                let delta = q.connsDelta
                let n = byTable ? q.newConnections : max(q.newConnections, delta ?? 0)
                var text = "Real server \(rs.id) of \(svc.id) has weight 0 \(sinceText) yet received \(plural(n, "new connection")) since"
                text += templates > 0 ? ", through \(plural(templates, "persistence template")) still pointing at it (up to \(maxLeft) s left)." : " through persistence templates."
                if let delta {
                    text += delta == q.newConnections ? " The kernel's Conns counter for it agrees (+\(delta))."
                        : " The kernel's Conns counter for it rose by \(delta) in that time, the table's reads showed \(q.newConnections) (connections that came and went between two reads, or reads not taken in, count only in the kernel's)."
                }
                text += eqt == 0 ? " expire_quiescent_template is 0, so clients holding a template keep coming back."
                                 : " expire_quiescent_template could not be read."
                let ev: [Evidence] = [
                    Evidence("service", .text(svc.id)), Evidence("real_server", .text(rs.id)),
                    Evidence("quiescent_since", .text(timeText(q.since))), Evidence("quiescent_since_observed", .text(q.sawTransition ? "transition" : "first_seen")),
                    Evidence("new_conns_since_quiescent", .int(q.newConnections)),
                    Evidence("conns_counter_delta", delta.map { .int($0) } ?? .unknown),
                    Evidence("table_reads_not_counted", .int(c.history.uncountedReads)),
                    Evidence("last_new_conn", .text(timeText(last))),
                    Evidence("templates", .int(templates)), Evidence("template_max_expires_s", .int(Int(maxLeft))),
                    Evidence("controlled_conns", .int(controlled)),
                    Evidence("expire_quiescent_template", eqt.map { .int(Int($0)) } ?? .unknown),
                ]
                out.append(c.finding(.quiescentFed, about: FindingSubject(service: svc.id, realServer: rs.id), .warning, subject: "\(rs.id) of \(svc.id) (weight 0)",
                                     explanation: text, evidence: ev,
                                     advice: "sysctl -w net.ipv4.vs.expire_quiescent_template=1 to send those clients elsewhere at their next connection, or remove the real server (ipvsadm -d) once its connections end."))
            }
        }
        return out
    }

    static func timeText(_ d: Date) -> String {
        ISO8601Text.string(from: d)
    }

    // MARK: - dead_destination

    static func deadDestinations(_ c: Context) -> [Finding] {
        // With lines of the service table skipped, a destination missing from it may be one
        // that was not read: not judged (the analysis' limitations say so).
        guard c.agg.hasTable, !c.snapshot.source.servicesIncomplete else { return [] }
        let nodest = c.sysctl("expire_nodest_conn")
        var out: [Finding] = []
        for d in c.agg.destinations where !d.isLive {
            // Entries a backup holds from its master are the master's business.
            let conns = d.connections.total - d.fromSync
            guard conns > 0 || d.templates > 0 else { continue }
            let svc = c.svcName(d), rs = c.rsName(d)
            let what = d.service != nil ? "\(rs), which is no longer a real server of \(svc)" : "\(rs) through \(svc), which is no longer a service"
            var parts: [String] = []
            if conns > 0 { parts.append("\(plural(conns, "connection")) (\(d.connections.active) ESTABLISHED)") }
            if d.templates > 0 { parts.append(plural(d.templates, "template")) }
            var text = "\(parts.joined(separator: " and ")) still \(conns + d.templates == 1 ? "points" : "point") at \(what)."
            switch nodest {
            case 0?:
                if conns > 0 { text += " With expire_nodest_conn=0 the kernel keeps the connections until they time out (up to \(d.maxExpires) s) and drops their packets: those clients hang." }
            case .some:
                if conns > 0 { text += " With expire_nodest_conn=\(nodest!) the kernel expires each connection at its next packet (newer kernels also flush them in the background)." }
            case nil:
                if conns > 0 { text += " expire_nodest_conn could not be read: the connections are either dropped at their next packet (1) or kept, their packets dropped, for up to \(d.maxExpires) s (0)." }
            }
            if d.templates > 0 { text += " Its templates are discarded when their clients return (the kernel checks a template's real server before using it)." }
            let severity: Severity = conns > 0 && nodest != 1 ? .warning : .info
            let advice = conns > 0 && nodest != 1
                ? "sysctl -w net.ipv4.vs.expire_nodest_conn=1 so that these clients are reset and reconnect elsewhere, or re-add the real server if it was removed by mistake; otherwise they go within \(d.maxExpires) s."
                : "Nothing to do: these entries go by themselves within \(d.maxExpires) s."
            let ev: [Evidence] = [
                Evidence("service", .text(svc)), Evidence("service_exists", .text(d.service != nil ? "yes" : "no")),
                Evidence("destination", .text(rs)), Evidence("connections", .int(conns)),
                Evidence("active", .int(d.connections.active)), Evidence("inactive", .int(d.connections.inactive - d.fromSync)),
                Evidence("templates", .int(d.templates)), Evidence("max_expires_s", .int(Int(d.maxExpires))),
                Evidence("expire_nodest_conn", nodest.map { .int(Int($0)) } ?? .unknown),
            ]
            out.append(c.finding(.deadDestination, about: FindingSubject(service: svc, realServer: rs), severity, subject: "\(rs) of \(svc) (\(d.service != nil ? "real server deleted" : "service deleted"))",
                                 explanation: text, evidence: ev, advice: advice))
        }
        return out
    }

    // MARK: - template_overstay

    static func templateOverstay(_ c: Context) -> [Finding] {
        struct Acc { var templates = 0; var conns = 0; var longest: Double?; var timeout: UInt32 = 0; var maxLeft: UInt32 = 0 }
        var byDest: [Int: Acc] = [:]
        // The few past their timeout and kept alive, found in the cells: each template
        // made (a string each) cost more than the rest of the finding.
        var past: [Int] = []
        c.agg.templates.forEachCell { i, _, _, controlled, pastTimeout in
            if pastTimeout && controlled > 0 { past.append(i) }
        }
        for i in past {
            let t = c.agg.templates[i]
            var a = byDest[t.destination] ?? Acc()
            a.templates += 1
            a.conns += t.summary.controlledConns
            a.timeout = t.timeout ?? 0
            a.maxLeft = max(a.maxLeft, t.expires)
            if let since = t.pastTimeoutSince {
                let past = c.tableTime.timeIntervalSince(since)
                a.longest = max(a.longest ?? 0, past)
            }
            byDest[t.destination] = a
        }
        var out: [Finding] = []
        for (d, a) in byDest.sorted(by: { $0.key < $1.key }) {
            let dest = c.agg.destinations[d]
            let svc = c.svcName(dest), rs = c.rsName(dest)
            var quiescent = false
            if let si = dest.service, let ri = dest.realServer { quiescent = c.snapshot.services[si].realServers[ri].weight == 0 }
            var text = "\(plural(a.templates, "template")) pinning clients to \(rs) of \(svc) \(a.templates == 1 ? "has" : "have") outlived the persistence timeout (\(a.timeout) s) because \(plural(a.conns, "connection")) still hang from \(a.templates == 1 ? "it" : "them"); the kernel re-arms such a template for 60 s each time it runs out, so its clients stay pinned here."
            if let l = a.longest, l >= 1 { text += " Longest so far: \(wholeNumber(l)) s past its timeout." }
            if quiescent { text += " The real server has weight 0: these clients keep it from draining." }
            let ev: [Evidence] = [
                Evidence("service", .text(svc)), Evidence("real_server", .text(rs)),
                Evidence("templates", .int(a.templates)), Evidence("controlled_conns", .int(a.conns)),
                Evidence("persistence_timeout_s", .int(Int(a.timeout))), Evidence("max_expires_s", .int(Int(a.maxLeft))),
                Evidence("longest_past_timeout_s", a.longest.map { .int(wholeNumber($0)) } ?? .unknown),
                Evidence("real_server_weight_zero", .text(quiescent ? "yes" : "no")),
            ]
            out.append(c.finding(.templateOverstay, about: FindingSubject(service: svc, realServer: rs), quiescent ? .warning : .info,
                                 subject: "templates on \(rs) of \(svc)", explanation: text, evidence: ev,
                                 advice: quiescent ? "To drain now: sysctl -w net.ipv4.vs.expire_quiescent_template=1 (clients move at their next connection), or wait for their connections to close."
                                                   : "Nothing to do if intended; the clients are released when their connections close (shorter TCP timeouts, ipvsadm --set, release them sooner)."))
        }
        return out
    }

    // MARK: - table_pressure

    static func tablePressure(_ c: Context) -> [Finding] {
        let s = c.snapshot, st = c.settings
        let key = "table_pressure/connection_table"
        let k = c.relax(key)
        // The kernel's own count (ip_vs_status, 7.1+) when the table read is partial or
        // missing; else the entries read, or the slab's objects in use.
        let status = s.kernelStatus.status
        let readWhole = s.connections.map { !($0.completeness?.isPartial ?? false) } ?? false
        let entries = (readWhole ? s.connections?.entries.count : nil) ?? status?.conns ?? s.connections?.entries.count ?? s.slab?.activeObjects
        // The buckets the lookups really use: on 7.1+ the resizable table's current size
        // (ip_vs_status), not the header's size=, which there is only the table's limit.
        let liveTable = status?.connTable.flatMap { $0.buckets > 0 ? $0 : nil }
        let buckets = liveTable?.buckets ?? s.info.flatMap { $0.tableSize > 0 ? $0.tableSize : nil }
        let memory = s.connectionMemoryBytes
        let amem = c.sysctl("amemthresh")
        let defenses = ["drop_entry", "drop_packet", "secure_tcp"].map { ($0, c.sysctl($0)) }
        let active = defenses.filter { $0.1 == 2 }.map(\.0)
        let forced = defenses.filter { $0.1 == 3 }.map(\.0)
        var reasons: [String] = []
        var severity: Severity = .info
        if !active.isEmpty {
            severity = .critical
            // amemthresh is a C int (larger values are not given as numbers, see
            // Sysctl.integerValue); the KiB figure saturates all the same.
            let kib = amem.map { $0.multipliedReportingOverflow(by: 4).overflow ? Int64.max : $0 * 4 }
            reasons.append("the kernel found available memory below amemthresh (\(amem.map { "\($0) pages, \(kib!) KiB at 4 KiB pages" } ?? "?")) and switched on \(active.joined(separator: ", ")) (value 2)")
        }
        if !forced.isEmpty {
            severity = max(severity, .warning)
            reasons.append("\(forced.joined(separator: ", ")) \(forced.count == 1 ? "is" : "are") set to 3 (always on, whatever the memory)")
        }
        if let memory, Double(memory) >= Double(st.tableMemoryWarningBytes) * k {
            severity = max(severity, .warning)
            reasons.append("the table holds \(mib(memory)) of kernel memory (\(entries ?? 0) entries × \(s.slab!.objectSize) bytes), over the \(mib(st.tableMemoryWarningBytes)) threshold")
        }
        var chain: Double?
        if let entries, let size = buckets {
            chain = Double(entries) / Double(size)
            if chain! >= st.tableChainWarning * k {
                severity = max(severity, .warning)
                var why = "\(entries) entries in a hash table of \(size) buckets: \(PrintfNumber.fixed(chain!, decimals: 1)) entries per bucket for every packet's lookup"
                if let t = liveTable {
                    // The kernel grows the table past 2^lfactor nodes a bucket: this far
                    // above it, it is at its limit (2^conn_tab_bits) or cannot allocate.
                    why += " (the kernel grows it past \(Self.load(t.growthLoad)) a bucket, conn_lfactor \(t.loadFactor): it is at its size limit)"
                }
                reasons.append(why)
            }
        }
        guard !reasons.isEmpty else { return [] }
        var text = "Connection table: " + reasons.joined(separator: "; ") + "."
        text += " Free memory is not known here (/proc/meminfo is not part of the snapshot)"
        if memory == nil { text += ", nor the per-entry size (no ip_vs_conn slab figures)" }
        text += "."
        var advice: String
        if !active.isEmpty {
            advice = "The director is short of memory and dropping entries or packets: add memory, shorten timeouts (ipvsadm --set), or find the flood (see rogue_client)."
        } else if !forced.isEmpty && reasons.count == 1 {
            advice = "\(forced.joined(separator: ", ")) = 3 is a manual setting that drops or changes traffic whatever the memory: set it to 1 (automatic) or 0 unless that is meant."
        } else if chain.map({ $0 >= st.tableChainWarning * k }) ?? false {
            advice = liveTable != nil
                ? "The table resizes itself up to 2^conn_tab_bits buckets: load ip_vs with a larger limit (modprobe ip_vs conn_tab_bits=N, about log2 of the entries) and shorten timeouts (ipvsadm --set)."
                : "Load ip_vs with a larger table (modprobe ip_vs conn_tab_bits=N, about log2 of the entries) and shorten timeouts (ipvsadm --set)."
        } else {
            advice = "Check free memory against the table's (free -m), and shorten timeouts (ipvsadm --set) if the table keeps growing."
        }
        let ev: [Evidence] = [
            Evidence("entries", entries.map { .int($0) } ?? .unknown),
            Evidence("entry_bytes", s.slab.map { .int($0.objectSize) } ?? .unknown),
            Evidence("entry_memory_bytes", memory.map { .int($0) } ?? .unknown),
            Evidence("table_size", buckets.map { .int($0) } ?? .unknown),
            Evidence("table_size_from", .text(liveTable != nil ? "ip_vs_status" : "ip_vs header")),
            Evidence("conn_lfactor", liveTable.map { .int($0.loadFactor) } ?? .unknown),
            Evidence("entries_per_bucket", chain.map { .number($0) } ?? .unknown),
            Evidence("amemthresh_pages", amem.map { .int(Int($0)) } ?? .unknown),
            Evidence("drop_entry", defenses[0].1.map { .int(Int($0)) } ?? .unknown),
            Evidence("drop_packet", defenses[1].1.map { .int(Int($0)) } ?? .unknown),
            Evidence("secure_tcp", defenses[2].1.map { .int(Int($0)) } ?? .unknown),
            Evidence("mem_available_bytes", .unknown),
        ]
        return [Finding(key: key, kind: .tablePressure, severity: severity, subject: "connection table", since: c.now,
                        explanation: text, evidence: ev, advice: advice)]
    }

    /// 2^lfactor as a load: "1/16", "4".
    static func load(_ l: Double) -> String {
        l >= 1 ? "\(Int(l)) nodes" : "1/\(Int((1 / l).rounded())) node"
    }

    static func mib(_ b: Int) -> String {
        b >= 1 << 30 ? PrintfNumber.fixed(Double(b) / Double(1 << 30), decimals: 1) + " GiB" : PrintfNumber.fixed(Double(b) / Double(1 << 20), decimals: 1) + " MiB"
    }

    // MARK: - sync

    static func sync(_ c: Context) -> [Finding] {
        guard let daemons = c.snapshot.syncDaemons, !daemons.isEmpty, let table = c.snapshot.connections else { return [] }
        var out: [Finding] = []
        let h = c.history
        let synced = c.agg.destinations.reduce(0) { $0 + $1.fromSync }
        for d in daemons {
            let name = "\(d.role.rawValue)/\(d.multicastInterface)/\(d.syncID)"
            let key = "sync/" + name
            let stallLimit = c.raised.contains(key) ? c.settings.syncStallSeconds * c.settings.clearFactor : c.settings.syncStallSeconds
            let subject = "\(d.role.rawValue) sync daemon (syncid \(d.syncID) on \(d.multicastInterface))"
            var ev: [Evidence] = [Evidence("role", .text(d.role.rawValue)), Evidence("syncid", .int(Int(d.syncID))),
                                  Evidence("mcast_interface", .text(d.multicastInterface))]
            switch d.role {
            case .backup:
                guard c.agg.knowsOrigin else { continue }
                ev.append(Evidence("synced_entries", .int(synced)))
                if synced == 0 {
                    out.append(Finding(key: key, kind: .sync, severity: .warning, subject: subject, since: table.readAt,
                                       explanation: "The \(subject) is running, but no entry in the connection table came from a master.",
                                       evidence: ev, advice: "Check the master's daemon (ipvsadm -L --daemon there), the syncid, the multicast interface and group, and the firewall (UDP 8848)."))
                    continue
                }
                let last = h.lastNewFromSync ?? h.watchingSince ?? table.readAt
                let quiet = table.readAt.timeIntervalSince(last)
                ev.append(Evidence("seconds_since_new_synced_entry", .int(wholeNumber(quiet))))
                if quiet >= stallLimit, h.watchingSince.map({ table.readAt.timeIntervalSince($0) >= stallLimit }) ?? false {
                    out.append(Finding(key: key, kind: .sync, severity: .warning, subject: subject, since: table.readAt,
                                       explanation: "No new entry has arrived from the master for \(wholeNumber(quiet)) s, while \(plural(synced, "synced entry", "synced entries")) remain in the table: the backup's view is ageing (or the master is idle).",
                                       evidence: ev, advice: "Check that the master's daemon still runs and sends (ipvsadm -L --daemon, tcpdump -i \(d.multicastInterface) udp port 8848)."))
                }
            case .master:
                let last = h.lastNewLocal ?? h.watchingSince ?? table.readAt
                let quiet = table.readAt.timeIntervalSince(last)
                ev.append(Evidence("seconds_since_new_local_entry", .int(wholeNumber(quiet))))
                if c.snapshot.connectionChanges != nil || h.lastNewLocal != nil,
                   quiet >= stallLimit, h.watchingSince.map({ table.readAt.timeIntervalSince($0) >= stallLimit }) ?? false {
                    out.append(Finding(key: key, kind: .sync, severity: .info, subject: subject, since: table.readAt,
                                       explanation: "This director runs a master sync daemon but no new local connection entry has appeared for \(wholeNumber(quiet)) s: nothing to send (the director is idle, or no longer the active one).",
                                       evidence: ev, advice: "If another director took over, make this one the backup (ipvsadm --stop-daemon master; --start-daemon backup)."))
                }
            }
        }
        return out
    }
}
