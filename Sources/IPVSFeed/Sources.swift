import FoundationEssentials
import IPVSDemo
import IPVSModel
import IPVSReader
import Synchronization

/// Where a face's snapshots come from: a live director or a captured tree (through
/// `DirectorPoller`, which reads off the face's thread), the simulated director, or a
/// recording. `FeedSpec.open` makes one.
public protocol SnapshotSource: AnyObject {
    /// Words for the top bar: `/proc`, `demo seed 1`, `replay FILE`.
    var label: String { get }
    /// The source's clock: wall time for a director, simulated or recorded time otherwise
    /// (it stops while paused, so a paused screen does not change).
    func now() -> Date
    /// Snapshots taken since the last call, oldest first.
    func take() -> [Snapshot]
    var isPaused: Bool { get }
    func setPaused(_ paused: Bool)
    /// Seconds between polls.
    var interval: Double { get }
    /// Changes the interval; returns why not, when it cannot.
    func setInterval(_ seconds: Double) -> String?
    /// A word for the status line: the last poll's error, the replay's position.
    var note: String? { get }
    /// The last poll's error, when it failed (a live director only).
    var lastError: String? { get }
    func stop()
}

extension SnapshotSource {
    public var lastError: String? { nil }
}

/// A clock that runs with wall time from a starting point and stops while paused.
struct VirtualClock {
    var base: Date
    var anchor: Date
    var paused: Bool
    /// Seconds of the source's time per second of wall time (a replay played faster).
    var speed = 1.0

    init(start: Date, paused: Bool) {
        base = start
        anchor = Date()
        self.paused = paused
    }

    func now() -> Date { paused ? base : base.addingTimeInterval(Date().timeIntervalSince(anchor) * speed) }

    mutating func setSpeed(_ s: Double) {
        base = now()
        anchor = Date()
        speed = s
    }

    mutating func setPaused(_ p: Bool) {
        guard p != paused else { return }
        base = now()
        anchor = Date()
        paused = p
    }

    mutating func set(_ d: Date) {
        base = d
        anchor = Date()
    }
}

// MARK: - A live director

public final class LiveSource: SnapshotSource {
    let reader: SnapshotReader
    var poller: DirectorPoller
    var lastTaken: Date?
    var lastTable: Date?
    public private(set) var isPaused = false
    let wake: @Sendable () -> Void
    /// Counts the poller's updates, so that `take()` builds a snapshot only after one.
    final class Updates: Sendable {
        let count = Atomic<Int>(0)
    }
    let updates = Updates()
    var seen = -1

    /// `wake` is called from the poller's threads when a poll ends.
    public init(reader: SnapshotReader, interval: Double, paused: Bool = false, wake: @escaping @Sendable () -> Void = {}) {
        self.reader = reader
        self.wake = wake
        poller = DirectorPoller(reader: reader, interval: interval, onUpdate: Self.notifier(updates, wake))
        isPaused = paused
        if !paused { poller.start() }
    }

    static func notifier(_ u: Updates, _ wake: @escaping @Sendable () -> Void) -> @Sendable () -> Void {
        { u.count.add(1, ordering: .releasing); wake() }
    }

    /// Whether the last snapshot taken came with netlink's data: the label says what was
    /// used, not what was asked for (an unprivileged user asks and is refused).
    var netlinkUsed: Bool?

    public var label: String {
        guard reader.options.isLive else { return reader.options.procRoot }
        return reader.options.useNetlink && netlinkUsed != false ? "/proc + netlink" : "/proc"
    }
    /// Wall time for this machine's director; for a tree, the time of its last snapshot:
    /// a capture is one moment (its templates do not tick down to zero while it is read
    /// days later), and a copied tree has no time of its own.
    public func now() -> Date { reader.options.isLive ? Date() : (lastTaken ?? Date()) }
    public var interval: Double { poller.interval }

    public func take() -> [Snapshot] {
        let n = updates.count.load(ordering: .acquiring)
        if n == seen { return [] }
        seen = n
        guard let s = poller.latest() else { return [] }
        if s.takenAt == lastTaken && s.connections?.readAt == lastTable { return [] }
        lastTaken = s.takenAt
        lastTable = s.connections?.readAt
        netlinkUsed = s.source.netlink.isUsed
        return [s]
    }

    public func setPaused(_ p: Bool) {
        guard p != isPaused else { return }
        isPaused = p
        if p { poller.stop() } else { poller.start() }
    }

    public func setInterval(_ seconds: Double) -> String? {
        poller.stop()
        poller = DirectorPoller(reader: reader, interval: seconds, onUpdate: Self.notifier(updates, wake))
        if !isPaused { poller.start() }
        return nil
    }

    public var note: String? { poller.lastError }
    public var lastError: String? { poller.lastError }
    public func stop() { poller.stop() }
}

// MARK: - The simulated director

public final class DemoSource: SnapshotSource {
    public let director: DemoDirector
    var clock: VirtualClock
    public private(set) var interval: Double
    /// Simulated time of the next poll.
    var nextPoll: Double
    var lastPoll: Double?

    /// Starts at simulated time `start` (the director warmed up by default); the first
    /// `take()` gives a few polls before it, so that findings that need several samples
    /// are already there.
    public init(director: DemoDirector, interval: Double = 1, start: Double = DemoDirector.warmTime, paused: Bool = false, history: Int = 5) {
        self.director = director
        self.interval = max(0.1, interval)
        clock = VirtualClock(start: director.epoch.addingTimeInterval(start), paused: paused)
        nextPoll = start - Double(history) * self.interval
    }

    public var label: String { "demo seed \(director.seed)" }
    public func now() -> Date { clock.now() }
    public var isPaused: Bool { clock.paused }
    public func setPaused(_ p: Bool) { clock.setPaused(p) }

    public func take() -> [Snapshot] {
        let t = now().timeIntervalSince(director.epoch)
        var out: [Snapshot] = []
        // After a long stall only the last few polls matter.
        if t - nextPoll > 8 * interval { nextPoll = t - 8 * interval }
        while nextPoll <= t + 1e-9 {
            out.append(director.snapshot(at: nextPoll, interval: lastPoll.map { nextPoll - $0 } ?? interval))
            lastPoll = nextPoll
            nextPoll += interval
        }
        return out
    }

    public func setInterval(_ seconds: Double) -> String? {
        interval = max(0.1, seconds)
        if let l = lastPoll { nextPoll = l + interval }
        return nil
    }

    public var note: String? { nil }
    public func stop() {}
}

// MARK: - A recording

/// What a face may do with a recording besides pausing it: step a frame back or forth,
/// go to a time, play faster. A step or a seek pauses; going back starts the analysis
/// afresh from the first frame (it keeps history across snapshots), which the face learns
/// from `takeRewind()`.
public protocol ReplayControl: AnyObject {
    var frameCount: Int { get }
    /// The frame shown, from 0 (-1 before the first is handed out).
    var frameIndex: Int { get }
    var speed: Double { get }
    /// 1/4 to 64 times the recorded pace.
    func setSpeed(_ s: Double)
    /// Shows frame `i` (clamped to the recording), paused.
    func seek(frame i: Int)
    /// The last frame taken at or before `time` (the first when none is), or nil when
    /// the recording holds no frame.
    func frame(at time: Date) -> Int?
    /// The time of frame `i`.
    func time(ofFrame i: Int) -> Date
    /// True once after a seek backwards: the frames handed out next start from the first,
    /// and an analysis fed the earlier ones must start afresh.
    func takeRewind() -> Bool
}

public final class ReplaySource: SnapshotSource, ReplayControl {
    public let path: String
    public let contents: Recording.Contents
    var clock: VirtualClock
    /// Frames handed out so far.
    var delivered = 0
    /// Every frame handed out: the clock holds the last one's time.
    var ended = false

    /// Plays `path` at its recorded pace from frame `start` (negative counts from the end:
    /// -1 is the last); frames before it are handed out at once, so the analysis has seen
    /// them.
    public init(path: String, start: Int = 0, paused: Bool = false) throws {
        self.path = path
        contents = try Recording.read(path: path)
        let n = contents.frames.count
        guard n > 0 else { throw FeedError(message: "--replay \(path): the recording holds no snapshot", kind: .unreadable) }
        let first = max(0, min(n - 1, start < 0 ? n + start : start))
        clock = VirtualClock(start: contents.frames[first].takenAt, paused: paused)
    }

    public var label: String { "replay " + path.lastPathPart }
    public func now() -> Date { ended ? contents.frames[contents.frames.count - 1].takenAt : clock.now() }
    public var isPaused: Bool { clock.paused }
    public func setPaused(_ p: Bool) { clock.setPaused(p) }
    public var interval: Double { contents.header?.interval ?? 1 }

    public func take() -> [Snapshot] {
        let t = now()
        var out: [Snapshot] = []
        while delivered < contents.frames.count && contents.frames[delivered].takenAt <= t {
            out.append(contents.frames[delivered])
            delivered += 1
        }
        if delivered == contents.frames.count { ended = true }
        return out
    }

    public func setInterval(_ seconds: Double) -> String? { "a replay plays at its recorded pace" }

    // MARK: Replay control

    /// Set by a seek backwards, cleared by `takeRewind()`.
    var rewound = false

    public var frameCount: Int { contents.frames.count }
    public var frameIndex: Int { delivered - 1 }
    public var speed: Double { clock.speed }

    public func setSpeed(_ s: Double) { clock.setSpeed(min(64, max(0.25, s))) }

    public func seek(frame i: Int) {
        let n = contents.frames.count
        let target = max(0, min(n - 1, i))
        if target < delivered - 1 {
            // Back: every frame again from the first, handed out at once by take(), so the
            // analysis that starts afresh has seen the history before the target.
            delivered = 0
            rewound = true
        }
        clock.setPaused(true)
        clock.set(contents.frames[target].takenAt)
        ended = false
    }

    public func frame(at time: Date) -> Int? {
        guard !contents.frames.isEmpty else { return nil }
        return max(0, (contents.frames.lastIndex { $0.takenAt <= time }) ?? 0)
    }

    public func time(ofFrame i: Int) -> Date { contents.frames[max(0, min(contents.frames.count - 1, i))].takenAt }

    public func takeRewind() -> Bool {
        defer { rewound = false }
        return rewound
    }

    public var note: String? {
        let n = contents.frames.count
        var s = "frame \(max(1, delivered))/\(n)"
        if ended { s += " (end)" }
        if clock.speed != 1 { s += " x" + (clock.speed < 1 ? "1/\(Int((1 / clock.speed).rounded()))" : "\(Int(clock.speed))") }
        if let d = contents.truncatedEntries[safe: delivered - 1], d > 0 { s += ", \(d) entries not recorded" }
        return s
    }

    public func stop() {}
}

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
