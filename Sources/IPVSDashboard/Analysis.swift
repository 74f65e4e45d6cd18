import Foundation
import IPVSAnalysis
import IPVSModel
import Synchronization

/// What the analysis layer said about one snapshot: the aggregations the Clients and
/// Templates screens show and the findings. The dashboard computes none of it itself.
public struct Analysed: Sendable {
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
public final class AnalysisWorker: Sendable {
    struct State {
        var pending: Snapshot?
        var busy = false
        var latest: Analysed?
        var generation = 0
    }

    private let state = Mutex(State())
    private let engine: Mutex<Engine>
    /// Tables with fewer entries are analysed on the caller's thread.
    public let inlineLimit: Int
    let wake: @Sendable () -> Void

    public init(inlineLimit: Int = 20_000, wake: @escaping @Sendable () -> Void = {}) {
        self.inlineLimit = inlineLimit
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
            let busy = state.withLock { $0.busy }
            if !busy {
                let r = engine.withLock { $0.analyse(s) }
                state.withLock { $0.latest = r; $0.generation += 1 }
                return
            }
        }
        let start = state.withLock { st -> Bool in
            st.pending = s
            if st.busy { return false }
            st.busy = true
            return true
        }
        guard start else { return }
        let t = Thread { [self] in
            while let next = state.withLock({ st -> Snapshot? in
                let p = st.pending
                st.pending = nil
                if p == nil { st.busy = false }
                return p
            }) {
                let r = engine.withLock { $0.analyse(next) }
                state.withLock { $0.latest = r; $0.generation += 1 }
                wake()
            }
        }
        t.name = "ipvstop-analysis"
        t.start()
    }

    public var latest: Analysed? { state.withLock { $0.latest } }
    /// Changes each time a result lands.
    public var generation: Int { state.withLock { $0.generation } }
    /// True while a snapshot waits for (or is in) the analysis.
    public var isBusy: Bool { state.withLock { $0.busy } }
}

/// The analysis layer, stateful across snapshots (hysteresis, quiescent servers' history,
/// template ages): one `Analyzer` fed every snapshot in order.
struct Engine: ~Copyable {
    let analyzer = Analyzer()

    func analyse(_ s: Snapshot) -> Analysed {
        let started = ProcessInfo.processInfo.systemUptime
        let r = analyzer.update(with: s)
        return Analysed(takenAt: s.takenAt, tableReadAt: s.connections?.readAt, aggregates: r.aggregates, findings: r.findings,
                        pending: r.pending, limitations: r.limitations,
                        seconds: ProcessInfo.processInfo.systemUptime - started)
    }
}
