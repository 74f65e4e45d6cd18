import Foundation
import IPVSAnalysis
import IPVSModel
import IPVSReader

/// What the analysis layer costs on top of a poll, for one generated tree.
struct AnalysisCost {
    var size: Int
    /// `Analysis.analyze`: one snapshot, no history (`ipvstop check`, `snapshot --json`).
    var oneShot: Timing
    /// `Analyzer.update` in steady state, with the poller's new-entry list (the dashboard
    /// and the subagent, every table read), under their memory policy
    /// (`WorkingMemory.keepBetweenPolls`).
    var stateful: Timing
    /// The aggregation alone (clients, groups, templates), for whoever has to make it faster.
    var aggregates: Timing
    /// The poller's new-entry detection (the table's sorted identities, merged with the
    /// previous read's): part of the poll, not of the analysis, reported beside it.
    var newEntries: Timing
    var findings: Int
    var clients: Int
    var templates: Int
    /// Each one-shot run and each steady-state update against a read of the table timed just
    /// before it (a round): the ratios the target is judged on.
    var oneShotRounds: [PairedRound]
    var statefulRounds: [PairedRound]

    var worst: Double { max(oneShot.cpu, stateful.cpu) }

    /// The target's figure: for each case, its best run against the best read of its own
    /// rounds, and the worse of the two. Reads and analyses alternate, so each gets its turn
    /// at the host's quiet moments (a case's rounds give its reads and its runs as many
    /// chances); best-of figures taken apart compared a read and an analysis under different
    /// loads of a shared host (one build measured +32% with a busy host's read, +53% on a
    /// quiet one). A busy host slows the read more than the analysis, so a round's own ratio
    /// flatters the analysis when the host is busy: the median round is reported beside it.
    var interleavedRatio: Double {
        [oneShotRounds, statefulRounds].map { rounds in
            (rounds.map(\.analysis).min() ?? .nan) / (rounds.map(\.read).min() ?? .nan)
        }.max() ?? .nan
    }
    /// The best read of the rounds.
    var bestRoundRead: Double { (oneShotRounds + statefulRounds).map(\.read).min() ?? .nan }
    /// Each case's median round (its analysis against the read just before it), the worse.
    var medianRoundRatio: Double { max(oneShotRounds.map(\.ratio).median, statefulRounds.map(\.ratio).median) }
}

/// One round of the paired measurement: CPU seconds of a read of the table (read, parse,
/// `ConnectionTable`: the poll), then of an analysis.
struct PairedRound {
    var read: Double
    var analysis: Double
    var ratio: Double { analysis / read }
}

extension Array where Element == Double {
    /// The middle value (the mean of the two middle ones for an even count); NaN when empty.
    var median: Double {
        guard !isEmpty else { return .nan }
        let s = sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

enum AnalysisBench {
    /// Updates an `Analyzer` gets before its steady-state updates are timed.
    static let warmUpdates = 3

    /// `s` as a poller would see it `seconds` later: the same entries in a table read
    /// anew, and the poller's list of new entries (1% of them in a second).
    static func poll(_ s: Snapshot, secondsLater seconds: Double) -> Snapshot {
        guard let t = s.connections else { return s }
        var next = s
        next.takenAt = s.takenAt.addingTimeInterval(seconds)
        next.connections = ConnectionTable(entries: t.entries, persistenceEngineData: t.persistenceEngineData, file: t.file,
                                           readAt: t.readAt.addingTimeInterval(seconds), cost: t.cost, skipped: t.skipped)
        next.connectionChanges = ConnectionChanges(
            previousReadAt: t.readAt.addingTimeInterval(seconds - 1),
            newEntryIndices: Array(stride(from: 0, to: t.entries.count, by: 100)), interval: 1)
        return next
    }

    /// Times the analysis of `root`'s snapshot, best of `runs` (the aggregation and the
    /// new-entry detection) or of `rounds`, each paired with a read of the table (the
    /// one-shot analysis and the steady-state update).
    static func measure(root: String, size: Int, runs: Int, rounds: Int) throws -> AnalysisCost {
        // HZ as Debian's kernels have it: the services' persistence timeouts (jiffies in
        // /proc) are then known, as netlink gives them on a director, and the analysis
        // tracks every template's timeout.
        let reader = SnapshotReader(options: ReaderOptions(procRoot: root, useNetlink: false, hz: 250))
        let snapshot = try reader.snapshot()
        guard let table = snapshot.connections, table.entries.count == size else {
            throw BenchError.harness("analysis: the snapshot of \(root) has \(snapshot.connections?.entries.count ?? 0) entries, not \(size)")
        }

        func time(_ body: () -> Void) -> Timing {
            var ts: [Timing] = []
            for _ in 0..<runs {
                let w0 = Clock.wall, c0 = Clock.cpu
                body()
                ts.append(Timing(wall: Clock.wall - w0, cpu: Clock.cpu - c0))
            }
            return ts.best
        }
        /// `body` in `rounds` rounds, each right after a timed read of the table (the
        /// read's table dropped before `body` runs): the best run, and every round.
        func paired(fresh: Bool, _ body: () -> Void) throws -> (best: Timing, rounds: [PairedRound]) {
            var ts: [Timing] = []
            var out: [PairedRound] = []
            // One round more than kept: the first read of a series took twice the others
            // here (126-154 ms against 68-80 at 10^6), whatever came before it.
            for round in 0...rounds {
                // A one-shot run is a process of its own: it must not find the previous
                // run's (nor the read's) freed memory at hand.
                if fresh { WorkingMemory.returnFreed() }
                let r0 = Clock.cpu
                do {
                    let t = try reader.readConnections()
                    withExtendedLifetime(t) {}
                }
                let read = Clock.cpu - r0
                if fresh { WorkingMemory.returnFreed() }
                let w0 = Clock.wall, c0 = Clock.cpu
                body()
                guard round > 0 else { continue }
                ts.append(Timing(wall: Clock.wall - w0, cpu: Clock.cpu - c0))
                out.append(PairedRound(read: read, analysis: ts.last!.cpu))
            }
            return (ts.best, out)
        }

        var findings = 0, clients = 0, templates = 0
        let (oneShot, oneShotRounds) = try paired(fresh: true) {
            let r = Analysis.analyze(snapshot)
            findings = r.findings.count
            clients = r.aggregates.clients.count
            templates = r.aggregates.templates.count
        }

        // The poller's view of a busy second: 1% of the entries are new since the last read.
        var identities = table.identities()
        let newEntries = time {
            let current = table.identities()
            _ = current.newEntryIndices(since: identities)
            identities = current
        }
        // What the dashboard and the subagent set before their first poll; from here on the
        // process keeps freed memory (the one-shot figure above was taken without).
        WorkingMemory.keepBetweenPolls()
        let analyzer = Analyzer()
        // Each update gets a table read anew, a second after the last, as a poller's would:
        // the analyzer then tracks every template, where a table it has seen is only looked up.
        // Steady state comes after a few updates: the first ones after the first took 44, 35
        // and 30 ms here, the rest 25-26 (the heap and the pool settling; a poller runs for
        // hours).
        _ = analyzer.update(with: snapshot)
        for s in 1...Self.warmUpdates { _ = analyzer.update(with: Self.poll(snapshot, secondsLater: Double(s))) }
        var polls = (0...rounds).map { Self.poll(snapshot, secondsLater: Double(Self.warmUpdates + $0)) }.makeIterator()
        let (stateful, statefulRounds) = try paired(fresh: false) { _ = analyzer.update(with: polls.next()!) }

        let aggregates = time { _ = Aggregates(snapshot) }
        withExtendedLifetime(identities) {}
        return AnalysisCost(size: size, oneShot: oneShot, stateful: stateful, aggregates: aggregates, newEntries: newEntries,
                            findings: findings, clients: clients, templates: templates,
                            oneShotRounds: oneShotRounds, statefulRounds: statefulRounds)
    }
}
