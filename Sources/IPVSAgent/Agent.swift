import Foundation
import IPVSAnalysis
import IPVSDemo
import IPVSModel
import IPVSReader
import Synchronization

/// Where the subagent's snapshots come from.
public enum AgentSource: Sendable {
    /// The director itself (or a captured tree), polled by a `DirectorPoller`.
    case reader(ReaderOptions)
    /// The simulated director of `--demo`, from its warm state onwards.
    case demo(DemoDirector)
}

/// `ipvstop agent`: polls the director on its own threads, builds a new view of the MIB
/// from every new snapshot on a builder thread, and answers the AgentX master from the
/// latest view on the agent thread. A request never waits for a poll, and a poll never
/// waits for a request.
public final class AgentRunner: Sendable {
    public struct Options: Sendable {
        public var source: AgentSource
        public var subagent: SubAgent.Options
        public var view: ViewSettings
        public var analysis: AnalysisSettings

        public init(source: AgentSource, subagent: SubAgent.Options = .init(), view: ViewSettings = .init(),
                    analysis: AnalysisSettings = AnalysisSettings()) {
            self.source = source
            self.subagent = subagent
            self.view = view
            self.analysis = analysis
        }
    }

    public let options: Options
    let store = ViewStore()
    let stopping = Atomic<Bool>(false)
    /// Set by the poller when it has something new; the builder waits on it.
    let wake = NSCondition()
    let log: @Sendable (String) -> Void

    public init(options: Options, log: @escaping @Sendable (String) -> Void) {
        self.options = options
        self.log = log
    }

    public func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        wake.lock()
        wake.broadcast()
        wake.unlock()
    }

    public var isStopping: Bool { stopping.load(ordering: .sequentiallyConsistent) }

    /// Runs the agent on the calling thread until `stop()`; returns false when net-snmp
    /// could not be set up.
    public func run() -> Bool {
        let poller: DirectorPoller?
        switch options.source {
        case .reader(let r):
            let p = DirectorPoller(reader: SnapshotReader(options: r), interval: options.view.interval) { [self] in
                wake.lock()
                wake.signal()
                wake.unlock()
            }
            p.start()
            poller = p
        case .demo:
            poller = nil
        }
        let builder = Thread { [self] in buildLoop(poller) }
        builder.name = "ipvstop-agent-views"
        builder.start()

        let agent = SubAgent(options: options.subagent, store: store, log: log)
        let ok = agent.run { isStopping }
        stop()
        poller?.stop()
        return ok
    }

    /// Builds a view from every new snapshot, with the analysis's findings and events.
    func buildLoop(_ poller: DirectorPoller?) {
        let builder = ViewBuilder(settings: options.view)
        let analyzer = Analyzer(settings: options.analysis)
        var lastServices: Date?
        var lastTable: Date?
        var lastError: String?
        let started = Date()
        while !isStopping {
            let snap: Snapshot?
            switch options.source {
            case .reader:
                snap = poller?.latest()
                if let e = poller?.lastError, e != lastError { log("poll: \(e)") }
                lastError = poller?.lastError
            case .demo(let d):
                let t = DemoDirector.warmTime + Date().timeIntervalSince(started)
                snap = d.snapshot(at: t, interval: options.view.interval)
            }
            if let s = snap, s.takenAt != lastServices || s.connections?.readAt != lastTable {
                lastServices = s.takenAt
                lastTable = s.connections?.readAt
                let result = analyzer.update(with: s)
                let view = builder.build(s, analysis: result)
                store.publish(view, events: result.events)
            }
            if isStopping { break }
            wake.lock()
            _ = wake.wait(until: Date().addingTimeInterval(options.view.interval))
            wake.unlock()
        }
    }
}
