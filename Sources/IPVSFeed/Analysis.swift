import FoundationEssentials
import IPVSAnalysis
import IPVSModel
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What the analysis layer said about one snapshot: the aggregations the Clients and
/// Templates screens show and the findings. The dashboard computes none of it itself.
public struct Analysed: Sendable {
    /// The snapshot analysed: the aggregates' indices (services, table entries) refer to it.
    public var snapshot: Snapshot
    public var takenAt: Date
    public var tableReadAt: Date?
    public var aggregates: Aggregates
    /// Raised findings, worst first; nil when the analysis layer gave none (no analyzer).
    public var findings: [Finding]?
    public var pending: [Finding]
    public var limitations: [String]
    /// What the analysis cost, in seconds of this process.
    public var seconds: Double
}

/// Runs the analysis of each new snapshot in order, off the UI thread when the table is
/// big (a 10^6-entry table takes a while), inline when it is small so that a small
/// director's screen is complete at once.
///
/// A big table's analysis is paced like the poller paces the table's read: after one that
/// took `c` seconds the next starts no sooner than `c / budget` later (the newest snapshot
/// waiting is the one analysed), so the analysis never takes more than `budget` of a core.
/// Screens meanwhile draw the last analysis from the snapshot it was made of.
public final class AnalysisWorker: Sendable {
    struct State {
        var pending: Snapshot?
        var busy = false
        var latest: Analysed?
        var generation = 0
        var notBefore = Date.distantPast
    }

    private let state = Mutex(State())
    private let engine: Mutex<Engine>
    /// Tables with fewer entries are analysed on the caller's thread, every one.
    public let inlineLimit: Int
    /// The most of one core the analysis of big tables may take.
    public let budget: Double
    let wake: @Sendable () -> Void

    public init(inlineLimit: Int = 20_000, budget: Double = 0.01, wake: @escaping @Sendable () -> Void = {}) {
        self.inlineLimit = inlineLimit
        self.budget = max(0.001, budget)
        self.wake = wake
        engine = Mutex(Engine())
    }

    /// Hands a snapshot to the analysis (snapshots must come in order).
    ///
    /// A snapshot whose connection table is the one already analysed (only the services
    /// were polled again) is analysed only when the last analysis was cheap or is 10 s
    /// old: with a big table every analysis walks it all again.
    public func submit(_ s: Snapshot) {
        let skip = state.withLock { st -> Bool in
            guard let last = st.latest, let t = s.connections, t.readAt == last.tableReadAt else { return false }
            return last.seconds > 0.005 && s.takenAt.timeIntervalSince(last.takenAt) < 10
        }
        if skip { return }
        if (s.connections?.entries.count ?? 0) < inlineLimit {
            let busy = state.withLock { $0.busy || $0.pending != nil }
            if !busy {
                let r = engine.withLock { $0.analyse(s) }
                state.withLock { $0.latest = r; $0.generation += 1 }
                return
            }
        }
        state.withLock { $0.pending = s }
        startIfDue()
    }

    /// Starts the analysis of the snapshot waiting, when its time has come (the UI loop
    /// calls this on each turn), and returns the analysis' idle working memory to the
    /// kernel (`Analyzer.releaseIdleMemory`) unless an analysis is running.
    public func tick() {
        startIfDue()
        _ = engine.withLockIfAvailable { $0.analyzer.releaseIdleMemory() }
    }

    func startIfDue() {
        let start = state.withLock { st -> Bool in
            guard !st.busy, st.pending != nil, Date() >= st.notBefore else { return false }
            st.busy = true
            return true
        }
        guard start else { return }
        DetachedThread.start(name: "ipvstop-analysis") { [self] in
            while let next = state.withLock({ st -> Snapshot? in
                let p = st.pending
                st.pending = nil
                if p == nil { st.busy = false }
                return p
            }) {
                let r = engine.withLock { $0.analyse(next) }
                let big = (next.connections?.entries.count ?? 0) >= inlineLimit
                let more = state.withLock { st -> Bool in
                    st.latest = r
                    st.generation += 1
                    if big { st.notBefore = Date().addingTimeInterval(r.seconds / budget) }
                    if st.pending != nil && Date() >= st.notBefore { return true }
                    st.busy = false
                    return false
                }
                wake()
                if !more { break }
            }
        }
    }

    /// Forgets every snapshot analysed (a replay went back: the history the analysis keeps
    /// would be from the future). An analysis running now lands, then the next snapshot
    /// submitted is analysed from a fresh start.
    public func reset() {
        engine.withLock { $0 = Engine() }
        state.withLock {
            $0.latest = nil
            $0.pending = nil
            $0.generation += 1
        }
    }

    public var latest: Analysed? { state.withLock { $0.latest } }
    /// Changes each time a result lands.
    public var generation: Int { state.withLock { $0.generation } }
    /// True while a snapshot waits for (or is in) the analysis.
    public var isBusy: Bool { state.withLock { $0.busy || $0.pending != nil } }
    /// True while an analysis runs.
    public var isRunning: Bool { state.withLock { $0.busy } }
}

/// The analysis layer, stateful across snapshots (hysteresis, quiescent servers' history,
/// template ages): one `Analyzer` fed every snapshot in order.
struct Engine: ~Copyable {
    let analyzer = Analyzer()

    func analyse(_ s: Snapshot) -> Analysed {
        let started = ProcessInfo.processInfo.systemUptime
        let r = analyzer.update(with: s)
        return Analysed(snapshot: s, takenAt: s.takenAt, tableReadAt: s.connections?.readAt, aggregates: r.aggregates, findings: r.findings,
                        pending: r.pending, limitations: r.limitations,
                        seconds: ProcessInfo.processInfo.systemUptime - started)
    }
}
