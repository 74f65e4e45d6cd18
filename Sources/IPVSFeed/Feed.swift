// One feed for every face (issue 20): where the snapshots come from is chosen once, by the
// executable, as a `FeedSpec`; every face (dashboard, subagent, exporter, snapshot, check)
// takes its snapshots, analysed, from here and only presents them.
import FoundationEssentials
import IPVSAnalysis
import IPVSDemo
import IPVSModel
import IPVSReader
import Synchronization

/// Where a face's snapshots come from.
public enum FeedSpec: Sendable {
    /// A director: this machine's (`/proc` and netlink) or a captured tree (`--proc-root`).
    case director(ReaderOptions)
    /// The built-in simulated director (`--demo`).
    case demo(seed: UInt64)
    /// A recording made by `ipvstop record` (`--replay FILE`). `frame` is the frame a
    /// one-shot face shows and the frame a playing face starts at: 0 is the first, -1 the
    /// last; nil leaves it to the face (playing faces start at the first, one-shot faces
    /// show the last).
    case replay(path: String, frame: Int?)

    /// Words for a face's title or log: `/proc`, `DIR`, `demo seed 1`, `replay FILE`.
    public var label: String {
        switch self {
        case .director(let o): o.procRoot
        case .demo(let seed): "demo seed \(seed)"
        case .replay(let path, _): "replay " + path.lastPathPart
        }
    }

    /// A source that keeps delivering snapshots: a live director is polled on the poller's
    /// threads (services every `interval`, the table as its cost allows), the demo runs on
    /// a clock, a recording plays at its recorded pace. Fails at once, with the reader's
    /// words, when there is nothing to read (no IPVS, no such tree, not a recording).
    ///
    /// `wake` is called (from the poller's threads) when a live poll ends.
    public func open(interval: Double, paused: Bool = false, wake: @escaping @Sendable () -> Void = {}) throws(FeedError) -> any SnapshotSource {
        switch self {
        case .director(let o):
            let reader = SnapshotReader(options: o)
            do { _ = try reader.readServices() } catch { throw FeedError(error, spec: self) }
            return LiveSource(reader: reader, interval: interval, paused: paused, wake: wake)
        case .demo(let seed):
            return DemoSource(director: DemoDirector(seed: seed), interval: interval, paused: paused)
        case .replay(let path, let frame):
            do { return try ReplaySource(path: path, start: frame ?? 0, paused: paused) } catch { throw FeedError(error, spec: self) }
        }
    }

    /// One snapshot, for the one-shot faces (`snapshot`, `check`): a director read once
    /// (with its table unless `connections` is false), the demo at its warm time, a
    /// recording's frame (the last unless the spec names one).
    public func snapshot(connections: Bool = true) throws(FeedError) -> Snapshot {
        var s: Snapshot
        switch self {
        case .director(let o):
            do { return try SnapshotReader(options: o).snapshot(connections: connections) } catch { throw FeedError(error, spec: self) }
        case .demo(let seed):
            s = DemoDirector(seed: seed).snapshot(at: DemoDirector.warmTime)
        case .replay:
            let frames = try replayFrames()
            s = frames[frames.count - 1]
        }
        if !connections {
            s.connections = nil
            s.connectionChanges = nil
        }
        return s
    }

    /// `ipvstop capture DIR`: the director this spec names (this machine's, or a copied
    /// tree) written to `dir` by `CaptureWriter`, and the capture read back as every command
    /// will read it (`--proc-root DIR`).
    public func capture(to dir: String) throws(FeedError) -> Snapshot {
        guard case .director(let o) = self else {
            throw FeedError(message: "capture copies a director (this machine's, or a tree given with --proc-root), not the \(label)", kind: .unreadable)
        }
        do { return try CaptureWriter(options: o).write(to: dir) } catch { throw FeedError(error, spec: self) }
    }

    /// A recording's frames from the first to the one the spec names (the last by
    /// default), for a face that analyses them in order at once (`check --replay --for`).
    public func replayFrames() throws(FeedError) -> [Snapshot] {
        guard case .replay(let path, let frame) = self else { return [] }
        let contents: Recording.Contents
        do { contents = try Recording.read(path: path) } catch { throw FeedError(error, spec: self) }
        let n = contents.frames.count
        guard n > 0 else { throw FeedError(message: "--replay \(path): the recording holds no snapshot", kind: .unreadable) }
        let f = frame ?? -1
        let last = max(0, min(n - 1, f < 0 ? n + f : f))
        return Array(contents.frames[...last])
    }
}

/// Why a feed could not start, in words for the operator, and whether the director or the
/// file was at fault (the check's UNKNOWN covers both; the dashboard offers `--demo` for
/// the first).
public struct FeedError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable { case noIPVS, unreadable }
    public var message: String
    public var kind: Kind

    public init(message: String, kind: Kind) {
        self.message = message
        self.kind = kind
    }

    init(_ error: any Error, spec: FeedSpec) {
        switch (error, spec) {
        case (let e as SnapshotError, _):
            if case .ipvsNotLoaded = e { self.init(message: e.description, kind: .noIPVS) } else { self.init(message: e.description, kind: .unreadable) }
        case (let e as FeedError, _):
            self = e
        case (_, .replay(let path, _)):
            self.init(message: "--replay \(path): \(error)", kind: .unreadable)
        default:
            self.init(message: "\(error)", kind: .unreadable)
        }
    }

    public var description: String { message }
}

/// Analysed snapshots on a thread of their own, for the faces that answer requests (the
/// subagent, the exporter): every new snapshot of the source goes through one `Analyzer`,
/// in order (hysteresis and events need every one), and then to the face's `deliver`. A
/// request never waits for a poll, and a poll never waits for a request.
public final class FeedLoop: Sendable {
    public let label: String
    public let interval: Double
    public let settings: AnalysisSettings
    /// The source, used by the loop's thread only once it runs; the lock makes that
    /// handover explicit (and `stop()` from another thread safe).
    private let source: Mutex<any SnapshotSource>
    private let wake: WakeCondition
    private let stopping = Atomic<Bool>(false)
    /// The source's clock minus wall time, as of the loop's last turn.
    private let clockOffset: Mutex<Double>

    /// Opens the spec's source (fails as `FeedSpec.open` does).
    public init(spec: FeedSpec, interval: Double, settings: AnalysisSettings = AnalysisSettings()) throws(FeedError) {
        let cond = WakeCondition()
        let src = try spec.open(interval: interval, wake: { cond.lock(); cond.signal(); cond.unlock() })
        label = src.label
        self.interval = interval
        self.settings = settings
        wake = cond
        clockOffset = Mutex(src.now().timeIntervalSinceNow)
        source = Mutex(src)
    }

    public var isStopping: Bool { stopping.load(ordering: .sequentiallyConsistent) }

    /// The source's clock: wall time for a director, simulated or recorded time otherwise.
    /// Read from the offset the loop last saw, never through the source's lock: a request
    /// must not wait while the loop is in `take()` (the demo builds its snapshots there).
    public func now() -> Date { Date().addingTimeInterval(clockOffset.withLock { $0 }) }

    /// Stops the loop (its thread ends after the snapshot in hand) and the source's polls.
    public func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        wake.lock()
        wake.broadcast()
        wake.unlock()
    }

    /// Starts the loop on a thread named `name`; `log` hears each new poll error once;
    /// `idle` is called on a turn that brought no new snapshot.
    public func start(name: String = "ipvstop-feed", log: @escaping @Sendable (String) -> Void = { _ in },
                      idle: @escaping @Sendable () -> Void = {},
                      deliver: @escaping @Sendable (Snapshot, AnalysisResult) -> Void) {
        DetachedThread.start(name: name) { [self] in run(log: log, idle: idle, deliver: deliver) }
    }

    /// A table this big is not analysed again for every services poll (see `Reuse`): the
    /// dashboard's `AnalysisWorker` draws the same line.
    static let bigTable = 20_000
    /// The most of one core the analysis of a big table may take, again and again, for
    /// snapshots that bring no new table.
    static let analysisBudget = 0.01

    /// The last analysis of a big table, handed again with the snapshots that follow it
    /// with the same table (only the services polled anew) until it is `maxAge` old or its
    /// cost allows another: re-aggregating a 10^6-entry table every second cost a core's
    /// 3.5% natively and, in the lab's emulation, half a core at 200k entries. A new table
    /// is always analysed; its reads are paced by their own cost.
    struct Reuse {
        var tableReadAt: Date
        var takenAt: Date
        var seconds: Double
        /// Handed again without its events: a finding raised or cleared is told once (the
        /// subagent sends a trap for each).
        var result: AnalysisResult
        static let maxAge = 10.0

        init(after s: Snapshot, seconds: Double, result: AnalysisResult) {
            tableReadAt = s.connections?.readAt ?? .distantPast
            takenAt = s.takenAt
            self.seconds = seconds
            self.result = result
            self.result.events = []
        }

        func covers(_ s: Snapshot) -> Bool {
            guard let t = s.connections, t.readAt == tableReadAt, t.entries.count >= FeedLoop.bigTable else { return false }
            return s.takenAt.timeIntervalSince(takenAt) < max(Self.maxAge, seconds / FeedLoop.analysisBudget)
        }
    }

    func run(log: @Sendable (String) -> Void, idle: @Sendable () -> Void, deliver: @Sendable (Snapshot, AnalysisResult) -> Void) {
        let analyzer = Analyzer(settings: settings)
        var lastError: String?
        var reuse: Reuse?
        while !isStopping {
            let (snaps, error, offset) = source.withLock { s in (s.take(), s.lastError, s.now().timeIntervalSinceNow) }
            clockOffset.withLock { $0 = offset }
            if let error, error != lastError { log("poll: \(error)") }
            lastError = error
            for s in snaps where !isStopping {
                if let r = reuse, r.covers(s) {
                    deliver(s, r.result)
                    continue
                }
                let started = ContinuousClock.now
                let result = analyzer.update(with: s)
                let took = started.duration(to: .now)
                let seconds = Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18
                reuse = s.connections == nil ? nil : Reuse(after: s, seconds: seconds, result: result)
                deliver(s, result)
            }
            if snaps.isEmpty { idle() }
            analyzer.releaseIdleMemory()
            if isStopping { break }
            wake.lock()
            wake.wait(seconds: interval)
            wake.unlock()
        }
        source.withLock { $0.stop() }
    }
}
