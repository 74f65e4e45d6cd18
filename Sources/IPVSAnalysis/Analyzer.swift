import FoundationEssentials
import IPVSModel
import IPVSRawMemory

/// The analysis layer's entry points: one snapshot in, aggregations and findings out.
public enum Analysis {
    /// One snapshot, no memory: every condition the snapshot shows is a finding at once
    /// (no hysteresis, no hold time), each with a fresh id. What `ipvstop check` does with
    /// one poll and what `snapshot --json` shows.
    ///
    /// A single table read cannot show new connections (quiescent_fed needs the poller's
    /// `connectionChanges`) nor a template's age beyond the kernel's own countdown; the
    /// result's `limitations` say so.
    public static func analyze(_ snapshot: Snapshot, settings: AnalysisSettings = AnalysisSettings()) -> AnalysisResult {
        // A pool of its own: a block one step gives back (the sort's spare buffer, the IPv6
        // rows) serves the next instead of fresh pages; it goes with the result.
        var agg = Aggregates(snapshot, buffers: BufferPool(), identities: false, heavyFrom: settings.rogueFloor)
        var history = History()
        history.observe(snapshot, &agg, settings, remember: false)
        let ctx = Context(snapshot: snapshot, agg: agg, settings: settings, history: history, raised: [])
        var findings = Detectors.all(ctx)
        for i in findings.indices { findings[i].id = FindingIDs.next() }
        findings.sort(by: Analyzer.order)
        return AnalysisResult(takenAt: snapshot.takenAt, aggregates: agg, findings: findings, pending: [],
                              events: findings.map { .raised($0) },
                              limitations: limitations(snapshot, agg, oneShot: true))
    }

    static func limitations(_ s: Snapshot, _ agg: Aggregates, oneShot: Bool, uncountedReads: Int = 0) -> [String] {
        var out: [String] = []
        if !agg.hasTable {
            out.append("connection table not read: no clients, groups or templates; rogue_client, quiescent_fed, dead_destination and template_overstay not judged, imbalance without its cause")
        } else if agg.unattributedEntries > 0 {
            out.append("\(agg.unattributedEntries) entries name more destinations than the per-client sort holds: they count for their real server but are missing from clients, groups and template attribution")
        }
        if agg.hasTable && s.source.servicesIncomplete {
            out.append("the service table was not read whole (see the warnings): entries whose service or real server is not listed may point at one that was skipped, so dead_destination is not judged")
        }
        var said = Set<String>()
        for a in agg.attribution where a.how == .undecided {
            for n in a.notes where said.insert(n).inserted { out.append(n) }
        }
        if agg.hasTable && s.connectionChanges == nil {
            out.append("one read of the connection table: new connections cannot be told, so quiescent_fed is not judged (poll twice: ipvstop check --for 10s)")
        }
        if !oneShot && agg.hasTable {
            if uncountedReads > 0 {
                out.append("\(plural(uncountedReads, "table read")) not counted for new connections (more skipped than the poller keeps, or too many new entries to keep): quiescent_fed may undercount; the Conns counter (netlink) does not")
            }
        }
        if oneShot {
            out.append("one snapshot: findings are not held for their hold time (imbalance: a moment, not a trend), and template ages show only when the kernel's countdown proves them")
        }
        if s.services.contains(where: { $0.realServers.contains { $0.weight > 0 && $0.upperThreshold == nil } }) {
            out.append("upper thresholds unknown (netlink unavailable): service_down counts a real server of weight above 0 as able to take new connections; one over its upper threshold (ipvsadm -x) cannot be told")
        }
        if s.syncDaemons == nil {
            out.append("sync daemons unknown (netlink unavailable): sync not judged")
        } else if !(s.syncDaemons ?? []).isEmpty && !agg.knowsOrigin && agg.hasTable {
            out.append("table read without its Origin column (ip_vs_conn, not ip_vs_conn_sync): a backup's synced entries cannot be told")
        }
        out.append("free memory unknown (/proc/meminfo is not in the snapshot): table_pressure judges entries, entry memory and the kernel's own defenses only")
        return out
    }
}

/// Findings over time: raised after `raiseAfter` consecutive samples that show them (and
/// their kind's hold time), cleared after `clearAfter` samples that don't, with thresholds
/// relaxed while raised, so a 1 Hz poll does not flap. Each finding keeps its key and id
/// while it lasts.
///
/// A sample is a new read of the data the finding rests on: a finding about the connection
/// table is judged again only when the table was read again (the poller reads it less
/// often than the services), so a slow table does not count one read three times.
///
/// Not thread-safe: feed it from one thread (the poller's update), read its results.
public final class Analyzer {
    public var settings: AnalysisSettings
    var history = History()

    struct Track {
        var firstHit: Date
        var hits: Int
        var misses: Int
        var id: Int?
        var finding: Finding
    }
    var tracks: [String: Track] = [:]
    var lastSample: [SampleSource: Date] = [:]
    /// The aggregation's working memory, kept from one poll to the next (and let go by
    /// `releaseIdleMemory` when the analyses pause).
    let buffers = BufferPool()

    /// Working memory no analysis took again for this long goes back to the kernel
    /// (`BufferPool.releaseIdle`): a table analysed every poll keeps its buffers, a big one
    /// analysed once in a while does not hold them in between.
    public static let idleMemorySeconds = 5.0

    /// Releases the working memory held for longer than `idleMemorySeconds`; a poller
    /// calls it once a poll, after the analyses of that poll. When it released some, the
    /// analyses have paused (a big table, read and analysed far apart), and what malloc
    /// kept of the last ones (`WorkingMemory.keepBetweenPolls`) goes back too
    /// (`WorkingMemory.returnFreed`): once per pause, as the pool is empty after it.
    @discardableResult
    public func releaseIdleMemory() -> Int {
        let released = buffers.releaseIdle(olderThan: Self.idleMemorySeconds)
        if released > 0 { WorkingMemory.returnFreed() }
        return released
    }

    public init(settings: AnalysisSettings = AnalysisSettings()) {
        self.settings = settings
    }

    /// Keys and ids of the findings raised now.
    public var raised: [String: Int] {
        var out: [String: Int] = [:]
        for (k, t) in tracks { if let id = t.id { out[k] = id } }
        return out
    }

    public func update(with snapshot: Snapshot) -> AnalysisResult {
        var agg = Aggregates(snapshot, buffers: buffers, identities: true, heavyFrom: settings.rogueFloor)
        history.observe(snapshot, &agg, settings)
        let raisedKeys = Set(tracks.compactMap { $0.value.id != nil ? $0.key : nil })
        let ctx = Context(snapshot: snapshot, agg: agg, settings: settings, history: history, raised: raisedKeys)
        let candidates = Detectors.all(ctx)

        // Which data is new in this snapshot.
        var sampled: [SampleSource: Date] = [:]
        if lastSample[.services] != snapshot.takenAt { sampled[.services] = snapshot.takenAt }
        if let t = snapshot.connections?.readAt, lastSample[.table] != t { sampled[.table] = t }
        for (k, v) in sampled { lastSample[k] = v }

        var events: [FindingEvent] = []
        var hit: Set<String> = []
        for f in candidates {
            guard let at = sampled[f.kind.source] else {
                // Same data as before: refresh the text of what is already tracked only.
                if tracks[f.key] != nil { tracks[f.key]!.finding = merged(f, tracks[f.key]!) }
                hit.insert(f.key)
                continue
            }
            hit.insert(f.key)
            var t = tracks[f.key] ?? Track(firstHit: at, hits: 0, misses: 0, id: nil, finding: f)
            t.hits += 1
            t.misses = 0
            t.finding = merged(f, t)
            t.finding.since = t.firstHit
            t.finding.lastSeen = at
            if t.id == nil, t.hits >= max(1, settings.raiseAfter), at.timeIntervalSince(t.firstHit) >= hold(f.kind) {
                let id = FindingIDs.next()
                t.id = id
                t.finding.id = id
                events.append(.raised(t.finding))
            }
            tracks[f.key] = t
        }
        for (key, var t) in tracks where !hit.contains(key) {
            guard sampled[t.finding.kind.source] != nil else { continue }
            if t.id == nil {
                // Hits must be consecutive.
                tracks[key] = nil
                continue
            }
            t.misses += 1
            if t.misses >= max(1, settings.clearAfter) {
                events.append(.cleared(t.finding))
                tracks[key] = nil
            } else {
                tracks[key] = t
            }
        }
        // Findings about a service or real server that vanished from the snapshot
        // entirely stay until their misses clear them: the same rule for everything.
        var findings: [Finding] = []
        var pending: [Finding] = []
        for t in tracks.values {
            if t.id != nil { findings.append(t.finding) } else { pending.append(t.finding) }
        }
        findings.sort(by: Self.order)
        pending.sort(by: Self.order)
        return AnalysisResult(takenAt: snapshot.takenAt, aggregates: agg, findings: findings, pending: pending,
                              events: events, limitations: Analysis.limitations(snapshot, agg, oneShot: false, uncountedReads: history.uncountedReads))
    }

    /// The new text and evidence with the tracked identity.
    private func merged(_ f: Finding, _ t: Track) -> Finding {
        var g = f
        g.id = t.id ?? 0
        g.since = t.firstHit
        g.lastSeen = max(f.lastSeen, t.finding.lastSeen)
        return g
    }

    func hold(_ kind: FindingKind) -> Double {
        kind == .imbalance ? settings.imbalanceHoldSeconds : 0
    }

    /// Worst first, then by kind, then key: a stable order for every face.
    static func order(_ a: Finding, _ b: Finding) -> Bool {
        if a.severity != b.severity { return a.severity > b.severity }
        if a.kind != b.kind { return a.kind < b.kind }
        return a.key < b.key
    }
}
