import Foundation
import IPVSModel

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
        /// New connections to it since `since`.
        var newConnections = 0
        var lastNewAt: Date?
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
        var digest: UInt64
        var key: TemplateKey
        var track: TemplateTrack
    }

    var lastTableRead: Date?
    var seenRealServers: Set<RealServerID> = []
    var quiescent: [RealServerID: Quiescence] = [:]
    /// The templates followed, by key digest (then as met): what the next read is merged
    /// with, in one pass over both, instead of a hash lookup per template all over memory.
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
                        quiescent[id] = Quiescence(since: now, sawTransition: seenRealServers.contains(id))
                    }
                }
            }
        }
        for id in quiescent.keys where !zero.contains(id) { quiescent[id] = nil }

        if let table = s.connections, table.readAt != lastTableRead {
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

    /// The keys of `agg`'s templates; computed from the table when `agg` does not carry them.
    private static func keys(_ table: ConnectionTable, _ agg: Aggregates) -> [TemplateKey] {
        agg.templateKeys.count == agg.templates.count ? agg.templateKeys
            : agg.templates.map { TemplateKey(table.entries[$0.summary.entryIndex]) }
    }

    /// The templates of `agg` with a known timeout, in digest order, each with the tracked
    /// template of the same key (nil when there is none): a merge of two sorted lists.
    private func matched(_ keys: [TemplateKey], _ agg: Aggregates) -> [(template: Int, digest: UInt64, old: Int?)] {
        var wanted: [Int32] = []
        wanted.reserveCapacity(agg.templates.count)
        for (i, t) in agg.templates.enumerated() where t.timeout != nil { wanted.append(Int32(i)) }
        let m = wanted.count
        guard m > 0 else { return [] }
        let digests = UnsafeMutablePointer<UInt64>.allocate(capacity: m), digestScratch = UnsafeMutablePointer<UInt64>.allocate(capacity: m)
        let payloadScratch = UnsafeMutablePointer<Int32>.allocate(capacity: m)
        defer {
            digests.deallocate()
            digestScratch.deallocate()
            payloadScratch.deallocate()
        }
        for j in 0..<m { digests[j] = keys[Int(wanted[j])].digest }
        var out: [(template: Int, digest: UInt64, old: Int?)] = []
        out.reserveCapacity(m)
        wanted.withUnsafeMutableBufferPointer { w in
            let (d, p) = RadixSort.sortDigests(digests, scratch: digestScratch, payload: w.baseAddress!, payloadScratch: payloadScratch, count: m)
            tracked.withUnsafeBufferPointer { old in
                var o = 0
                for j in 0..<m {
                    let digest = d[j], i = Int(p[j])
                    while o < old.count && old[o].digest < digest { o += 1 }
                    var match: Int?
                    var q = o
                    while q < old.count && old[q].digest == digest {
                        if old[q].key == keys[i] { match = q; break }
                        q += 1
                    }
                    out.append((i, digest, match))
                }
            }
        }
        return out
    }

    private mutating func trackTemplates(_ table: ConnectionTable, _ agg: inout Aggregates, readAt: Date, slack: Double) {
        let keys = Self.keys(table, agg)
        var next: [TrackedTemplate] = []
        var verdicts: [(Int, Date)] = []
        for (i, digest, oldIndex) in matched(keys, agg) {
            let t = agg.templates[i]
            guard let timeout = t.timeout else { continue }
            let T = Double(timeout)
            let left = Double(t.expires)
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
                old.lastExpires = t.expires
                old.lastSeen = readAt
                track = old
            } else {
                track = TemplateTrack(armedAt: readAt.addingTimeInterval(-(T - min(left, T))), lastExpires: t.expires,
                                      lastSeen: readAt,
                                      overstaySince: left > T + slack ? readAt.addingTimeInterval(-(Self.rearmSeconds - min(left, Self.rearmSeconds))) : nil)
            }
            // Two entries with one key (a table read while it changed): the later one is kept.
            if let last = next.last, last.digest == digest, last.key == keys[i] { next.removeLast() }
            next.append(TrackedTemplate(digest: digest, key: keys[i], track: track))
            if let since = track.overstaySince, t.keptAlive { verdicts.append((i, since)) }
        }
        tracked = next
        for (i, since) in verdicts {
            agg.templates[i].pastTimeout = true
            agg.templates[i].pastTimeoutSince = since
        }
    }

    private func applyTemplateVerdicts(_ table: ConnectionTable, _ agg: inout Aggregates) {
        for (i, _, old) in matched(Self.keys(table, agg), agg) where agg.templates[i].keptAlive {
            guard let old, let since = tracked[old].track.overstaySince else { continue }
            agg.templates[i].pastTimeout = true
            agg.templates[i].pastTimeoutSince = since
        }
    }
}
