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

    struct TemplateID: Hashable {
        var client: IPAddress
        var virtual: IPAddress
        var destination: IPAddress
        var ports: UInt64

        init(_ e: ConnectionEntry) {
            client = e.client
            virtual = e.virtual
            destination = e.destination
            ports = UInt64(e.proto.rawValue) << 32 | UInt64(e.virtualPort) << 16 | UInt64(e.destinationPort)
        }

        func hash(into h: inout Hasher) {
            h.combine(client.low &* 0x9E37_79B9_7F4A_7C15 ^ client.high ^ virtual.low &* 0xC2B2_AE3D_27D4_EB4F
                      ^ destination.low &* 0x1656_67B1_9E37_79F9 ^ destination.high ^ ports)
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

    var lastTableRead: Date?
    var seenRealServers: Set<RealServerID> = []
    var quiescent: [RealServerID: Quiescence] = [:]
    var templates: [TemplateID: TemplateTrack] = [:]
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

    private mutating func trackTemplates(_ table: ConnectionTable, _ agg: inout Aggregates, readAt: Date, slack: Double) {
        var next: [TemplateID: TemplateTrack] = [:]
        next.reserveCapacity(agg.templates.count)
        for i in agg.templates.indices {
            let t = agg.templates[i]
            guard let timeout = t.timeout else { continue }
            let e = table.entries[t.summary.entryIndex]
            let id = TemplateID(e)
            let T = Double(timeout)
            let left = Double(e.expires)
            var track: TemplateTrack
            if var old = templates[id] {
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
                old.lastExpires = e.expires
                old.lastSeen = readAt
                track = old
            } else {
                track = TemplateTrack(armedAt: readAt.addingTimeInterval(-(T - min(left, T))), lastExpires: e.expires,
                                      lastSeen: readAt,
                                      overstaySince: left > T + slack ? readAt.addingTimeInterval(-(Self.rearmSeconds - min(left, Self.rearmSeconds))) : nil)
            }
            next[id] = track
            if track.overstaySince != nil && t.keptAlive { agg.templates[i].pastTimeout = true }
        }
        templates = next
    }

    private func applyTemplateVerdicts(_ table: ConnectionTable, _ agg: inout Aggregates) {
        for i in agg.templates.indices where agg.templates[i].keptAlive {
            let id = TemplateID(table.entries[agg.templates[i].summary.entryIndex])
            if templates[id]?.overstaySince != nil { agg.templates[i].pastTimeout = true }
        }
    }

    func overstaySince(_ e: ConnectionEntry) -> Date? { templates[TemplateID(e)]?.overstaySince }
}
