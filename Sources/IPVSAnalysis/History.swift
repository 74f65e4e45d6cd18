import FoundationEssentials
import IPVSModel
import IPVSRawMemory

/// What the analysis remembers between table reads: when real servers went to weight 0
/// and what reached them since, when each template was last armed, when sync last moved.
/// A one-shot analysis starts from an empty history and observes its one snapshot.
struct History {
    /// A real server by identity, stable across snapshots (indices are not).
    struct RealServerID: Hashable {
        var service: ServiceKey
        var address: IPAddress
        var port: UInt16
    }

    struct Quiescence {
        /// When it was first seen at weight 0.
        var since: Date
        /// False when it was already at weight 0 when first seen: `since` is "at least".
        var sawTransition: Bool
        /// New connections to it since `since`, as the table's reads showed them.
        var newConnections = 0
        var lastNewAt: Date?
        /// Its Conns counter (netlink) when first seen at weight 0, and now: the kernel's
        /// own count of the connections bound to it, to check the table's count against.
        var connsAtStart: UInt64?
        var connsNow: UInt64?
        /// When that counter last rose.
        var counterRoseAt: Date?

        /// The rise of the Conns counter since `since`; nil without netlink.
        var connsDelta: Int? {
            guard let a = connsAtStart, let b = connsNow, b >= a else { return nil }
            return Int(clamping: b - a)
        }
    }

    struct TemplateTrack {
        /// When the kernel last armed it with the service's persistence timeout.
        var armedAt: Date
        var lastExpires: UInt32
        var lastSeen: Date
        /// When it went past its timeout, if it did.
        var overstaySince: Date?
    }

    struct TrackedTemplate {
        var identity: TemplateIdentity
        var track: TemplateTrack
    }

    var lastTableRead: Date?
    /// Table reads whose new entries could not be counted (a face skipped more reads than
    /// the poller keeps, or one read had too many new entries to keep).
    var uncountedReads = 0
    var seenRealServers: Set<RealServerID> = []
    var quiescent: [RealServerID: Quiescence] = [:]
    /// The templates followed, by identity digest: what the next read is merged with, in
    /// one pass over both, instead of a hash lookup per template all over memory.
    var tracked: [TrackedTemplate] = []
    /// When the analysis started watching sync (the first table read).
    var watchingSince: Date?
    var lastNewFromSync: Date?
    var lastNewLocal: Date?

    /// The kernel re-arms a template that expires while it controls connections for this
    /// long (`ip_vs_conn_expire`: `cp->timeout = 60*HZ`; 2 minutes on 2.4 kernels).
    static let rearmSeconds = 60.0

    /// Takes in one snapshot. Table-derived memory moves only when the table was read anew;
    /// `aggregates.templates[].pastTimeout` is filled in from what is remembered.
    /// - Parameter remember: false for a one-shot analysis, which has no later snapshot to
    ///   compare templates with (their first sight proves only what `Aggregates` does).
    mutating func observe(_ s: Snapshot, _ agg: inout Aggregates, _ settings: AnalysisSettings, remember: Bool = true) {
        let now = s.takenAt
        // Weight-0 real servers of persistent services: the only ones templates can feed.
        var current: Set<RealServerID> = []
        var zero: Set<RealServerID> = []
        for svc in s.services {
            for rs in svc.realServers {
                let id = RealServerID(service: svc.key, address: rs.address, port: rs.port)
                current.insert(id)
                if rs.weight == 0 && svc.persistence != nil {
                    zero.insert(id)
                    if quiescent[id] == nil {
                        quiescent[id] = Quiescence(since: now, sawTransition: seenRealServers.contains(id), connsAtStart: rs.stats?.conns)
                    }
                    let c = rs.stats?.conns
                    if let c, let a = quiescent[id]!.connsAtStart, c < a {
                        // Counters reset (the real server was re-added): count from here.
                        quiescent[id]!.connsAtStart = c
                    }
                    if let c, let old = quiescent[id]!.connsNow, c > old { quiescent[id]!.counterRoseAt = now }
                    if quiescent[id]!.connsAtStart == nil { quiescent[id]!.connsAtStart = c }
                    quiescent[id]!.connsNow = c
                }
            }
        }
        for id in quiescent.keys where !zero.contains(id) { quiescent[id] = nil }

        if let table = s.connections, table.readAt != lastTableRead {
            let previousConsumed = lastTableRead
            lastTableRead = table.readAt
            let readAt = table.readAt
            if watchingSince == nil { watchingSince = readAt }

            if let perDest = agg.newConnections, let changes = s.connectionChanges {
                for (si, svc) in s.services.enumerated() {
                    for (ri, rs) in svc.realServers.enumerated() {
                        let id = RealServerID(service: svc.key, address: rs.address, port: rs.port)
                        guard var q = quiescent[id], let d = agg.liveDestination[si][ri] else { continue }
                        // Count an interval only when the server was at weight 0 all through
                        // it (or was never seen otherwise).
                        guard !q.sawTransition || changes.previousReadAt >= q.since else { continue }
                        let n = perDest[d]
                        if n > 0 {
                            q.newConnections += n
                            q.lastNewAt = readAt
                            quiescent[id] = q
                        }
                    }
                }
                if let previousConsumed, changes.previousReadAt > previousConsumed {
                    countSkippedReads(changes, since: previousConsumed, before: readAt, s, moves: agg.routeMoves)
                }
                if let n = agg.newFromSync, n > 0 { lastNewFromSync = readAt }
                if let n = agg.newLocal, n > 0 { lastNewLocal = readAt }
            }
            if remember { trackTemplates(table, &agg, readAt: readAt, slack: settings.overstaySlackSeconds) }
        } else if s.connections != nil {
            // Same table as before: only carry the remembered verdicts over.
            applyTemplateVerdicts(s.connections!, &agg)
        }
        seenRealServers = current
    }

    /// The new connections of table reads this history never took in (the face took in a
    /// later snapshot only), from the poller's record of them: counted like the current
    /// read's, resolved to real servers the way the aggregation does. A gap the record does
    /// not cover is counted in `uncountedReads`.
    private mutating func countSkippedReads(_ changes: ConnectionChanges, since last: Date, before readAt: Date, _ s: Snapshot,
                                            moves: [RouteMove: Int]) {
        let skipped = changes.earlier.filter { $0.readAt > last && $0.readAt < readAt }.sorted { $0.readAt < $1.readAt }
        // The chain must start at the last read taken in and end at this one's previous.
        if skipped.first.map({ $0.previousReadAt > last }) ?? true { uncountedReads += 1 }
        guard !quiescent.isEmpty else {
            uncountedReads += skipped.filter { !$0.complete }.count
            return
        }
        var resolver = Resolver(services: s.services, moves: moves)
        for r in skipped {
            if !r.complete { uncountedReads += 1 }
            for e in r.newEntries where !e.isTemplate && !e.isFromSync {
                let d = resolver.destinations[Int(resolver.destination(of: e))]
                guard let si = d.service, let ri = d.realServer else { continue }
                let svc = s.services[si], rs = svc.realServers[ri]
                let id = RealServerID(service: svc.key, address: rs.address, port: rs.port)
                guard var q = quiescent[id], !q.sawTransition || r.previousReadAt >= q.since else { continue }
                q.newConnections += 1
                q.lastNewAt = max(q.lastNewAt ?? r.readAt, r.readAt)
                quiescent[id] = q
            }
        }
    }

    /// The identities of `agg`'s templates; computed from the table when `agg` does not
    /// carry them.
    private static func identities(_ table: ConnectionTable, _ agg: Aggregates) -> [TemplateIdentity] {
        agg.templateIdentities.count == agg.templates.count ? agg.templateIdentities
            : agg.templates.map { TemplateIdentity(table.entries[$0.summary.entryIndex]) }
    }

    /// What the merge needs of a template, gathered in template order: a few bytes each,
    /// read in identity order.
    struct TemplateFacts {
        var expires: UInt32
        var timeout: UInt32
        var keptAlive: Bool
    }

    /// The templates of `agg` with a known timeout, in identity order, each with its facts
    /// and the tracked template of the same identity (nil when there is none): a merge of
    /// two sorted lists, each match handed to `body` as it is made.
    private func forEachMatch(_ table: ConnectionTable, _ agg: Aggregates,
                              _ body: (_ template: Int, _ identity: TemplateIdentity, _ facts: TemplateFacts, _ old: Int?) -> Void) {
        let ids = Self.identities(table, agg)
        // A template's identity and facts side by side: the merge reads them in identity
        // order, at random, one cache line each instead of two.
        struct Item {
            var identity: TemplateIdentity
            var facts: TemplateFacts
        }
        var items: [Item] = []
        items.reserveCapacity(agg.templates.count)
        var wanted: [Int32] = []
        wanted.reserveCapacity(agg.templates.count)
        agg.templates.forEachTiming { i, expires, timeout, controlled in
            items.append(Item(identity: ids[i], facts: TemplateFacts(expires: expires, timeout: timeout ?? 0, keptAlive: controlled > 0)))
            if timeout != nil { wanted.append(Int32(i)) }
        }
        let m = wanted.count
        guard m > 0 else { return }
        let digests = UnsafeMutablePointer<UInt64>.allocate(capacity: m), digestScratch = UnsafeMutablePointer<UInt64>.allocate(capacity: m)
        let payloadScratch = UnsafeMutablePointer<Int32>.allocate(capacity: m)
        defer {
            digests.deallocate()
            digestScratch.deallocate()
            payloadScratch.deallocate()
        }
        for j in 0..<m { digests[j] = items[Int(wanted[j])].identity.digest }
        wanted.withUnsafeMutableBufferPointer { w in
            let (d, p) = RadixSort.sortDigests(digests, scratch: digestScratch, payload: w.baseAddress!, payloadScratch: payloadScratch, count: m)
            tracked.withUnsafeBufferPointer { old in
                var o = 0
                for j in 0..<m {
                    let digest = d[j], i = Int(p[j])
                    let item = items[i]
                    let id = item.identity
                    while o < old.count && old[o].identity.digest < digest { o += 1 }
                    var match: Int?
                    var q = o
                    while q < old.count && old[q].identity.digest == digest {
                        if old[q].identity.check == id.check { match = q; break }
                        q += 1
                    }
                    body(i, id, item.facts, match)
                }
            }
        }
    }

    private mutating func trackTemplates(_ table: ConnectionTable, _ agg: inout Aggregates, readAt: Date, slack: Double) {
        var next: [TrackedTemplate] = []
        next.reserveCapacity(agg.templates.count)
        var verdicts: [(Int, Date)] = []
        forEachMatch(table, agg) { i, identity, facts, oldIndex in
            let T = Double(facts.timeout)
            let left = Double(facts.expires)
            var track: TemplateTrack
            if let oldIndex {
                var old = tracked[oldIndex].track
                let expected = Double(old.lastExpires) - readAt.timeIntervalSince(old.lastSeen)
                if left > expected + slack {
                    // Re-armed since the last read: with the timeout (a new connection
                    // through it), or with the kernel's 60 s (it ran out while it still
                    // controlled connections).
                    if left > T + slack || (T > Self.rearmSeconds + slack && left <= Self.rearmSeconds + slack) {
                        let deadline = old.armedAt.addingTimeInterval(T)
                        old.overstaySince = old.overstaySince
                            ?? (deadline <= readAt ? deadline : readAt.addingTimeInterval(-(Self.rearmSeconds - left)))
                    } else {
                        old.armedAt = readAt.addingTimeInterval(-(T - left))
                        old.overstaySince = nil
                    }
                } else if old.overstaySince == nil, readAt.timeIntervalSince(old.armedAt) > T + slack {
                    old.overstaySince = old.armedAt.addingTimeInterval(T)
                }
                old.lastExpires = facts.expires
                old.lastSeen = readAt
                track = old
            } else {
                track = TemplateTrack(armedAt: readAt.addingTimeInterval(-(T - min(left, T))), lastExpires: facts.expires,
                                      lastSeen: readAt,
                                      overstaySince: left > T + slack ? readAt.addingTimeInterval(-(Self.rearmSeconds - min(left, Self.rearmSeconds))) : nil)
            }
            // Two entries with one key (a table read while it changed): the later one is kept.
            if let last = next.last, last.identity == identity { next.removeLast() }
            next.append(TrackedTemplate(identity: identity, track: track))
            if let since = track.overstaySince, facts.keptAlive { verdicts.append((i, since)) }
        }
        tracked = next
        for (i, since) in verdicts { agg.templates.markPastTimeout(i, since: since) }
    }

    private func applyTemplateVerdicts(_ table: ConnectionTable, _ agg: inout Aggregates) {
        var verdicts: [(Int, Date)] = []
        forEachMatch(table, agg) { i, _, facts, old in
            if facts.keptAlive, let old, let since = tracked[old].track.overstaySince { verdicts.append((i, since)) }
        }
        for (i, since) in verdicts { agg.templates.markPastTimeout(i, since: since) }
    }
}
