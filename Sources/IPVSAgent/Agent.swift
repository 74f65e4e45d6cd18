import FoundationEssentials
import IPVSAnalysis
import IPVSFeed
import IPVSModel
import Synchronization

/// `ipvstop agent`: the feed's loop analyses every new snapshot on its own thread, the
/// runner builds a new view of the MIB from each there, and answers the AgentX master from
/// the latest view on the agent thread. A request never waits for a poll, and a poll never
/// waits for a request.
public final class AgentRunner: Sendable {
    public struct Options: Sendable {
        public var subagent: SubAgent.Options
        public var view: ViewSettings

        public init(subagent: SubAgent.Options = .init(), view: ViewSettings = .init()) {
            self.subagent = subagent
            self.view = view
        }
    }

    public let options: Options
    /// Analysed snapshots (its analysis settings are the findings' thresholds).
    public let feed: FeedLoop
    let store = ViewStore()
    let log: @Sendable (String) -> Void

    public init(options: Options, feed: FeedLoop, log: @escaping @Sendable (String) -> Void) {
        self.options = options
        self.feed = feed
        self.log = log
    }

    public func stop() { feed.stop() }

    public var isStopping: Bool { feed.isStopping }

    /// Runs the agent on the calling thread until `stop()`; returns false when net-snmp
    /// could not be set up.
    public func run() -> Bool {
        // The feed's thread is the builder's: one view per analysed snapshot (the lock is
        // never contended; it hands the builder's state to that thread).
        let builder = Mutex(ViewBuilder(settings: options.view))
        feed.start(name: "ipvstop-agent-views", log: log) { [store, feed] s, result in
            // Ages on the source's clock: the demo's and a recording's are not wall time.
            let offset = feed.now().timeIntervalSinceNow
            let view = builder.withLock { $0.build(s, analysis: result, clockOffset: offset) }
            store.publish(view, events: result.events)
        }
        let agent = SubAgent(options: options.subagent, store: store, log: log)
        let ok = agent.run { isStopping }
        stop()
        return ok
    }
}
