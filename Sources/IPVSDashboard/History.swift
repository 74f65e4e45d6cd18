import FoundationEssentials
import IPVSModel

/// The last minutes of each real server as the snapshots handed to the dashboard showed it
/// (issue 22: "since when?" without another tool): ActiveConn, new connections per second
/// (the kernel's CPS, with netlink) and weight, and when the weight last changed.
///
/// Only what the snapshots already hold is kept, nothing is recomputed: a presentation
/// memory, like a terminal's scrollback. At most `capacity` samples per real server (300:
/// five minutes at one poll a second; about 10 KB each), real servers gone from the
/// director for `capacity` polls are forgotten.
public struct RealServerHistory: Sendable {
    public struct Sample: Sendable, Hashable {
        public var time: Date
        public var activeConns: UInt32
        /// nil without netlink (no rates).
        public var cps: Double?
        public var weight: Int32
    }

    public struct WeightChange: Sendable, Hashable {
        public var time: Date
        public var from: Int32
        public var to: Int32
    }

    /// One real server's samples, oldest first, in a ring.
    public struct Track: Sendable {
        var ring: [Sample] = []
        var head = 0
        public internal(set) var firstSeen: Date
        public internal(set) var lastWeightChange: WeightChange?
        var lastPoll = 0

        init(firstSeen: Date) { self.firstSeen = firstSeen }

        /// The samples, oldest first.
        public var samples: [Sample] { Array(ring[head...] + ring[..<head]) }

        mutating func append(_ s: Sample, capacity: Int) {
            if let last = ring.isEmpty ? nil : ring[(head + ring.count - 1) % ring.count], last.weight != s.weight {
                lastWeightChange = WeightChange(time: s.time, from: last.weight, to: s.weight)
            }
            if ring.count < capacity {
                ring.append(s)
            } else {
                ring[head] = s
                head = (head + 1) % ring.count
            }
        }
    }

    public let capacity: Int
    var tracks: [String: Track] = [:]
    var polls = 0
    var lastTaken: Date?

    public init(capacity: Int = 300) { self.capacity = max(2, capacity) }

    /// The key of a real server of a service, as findings name them.
    public static func key(service: String, realServer: String) -> String { service + "/" + realServer }

    public func track(service: String, realServer: String) -> Track? { tracks[Self.key(service: service, realServer: realServer)] }

    /// Adds a snapshot's figures (snapshots come in order; one taken again is ignored).
    public mutating func record(_ s: Snapshot) {
        if let t = lastTaken, s.takenAt <= t { return }
        lastTaken = s.takenAt
        polls += 1
        for svc in s.services {
            for rs in svc.realServers {
                let k = Self.key(service: svc.id, realServer: rs.id)
                var t = tracks[k] ?? Track(firstSeen: s.takenAt)
                t.append(Sample(time: s.takenAt, activeConns: rs.activeConns, cps: rs.rates?.cps, weight: rs.weight), capacity: capacity)
                t.lastPoll = polls
                tracks[k] = t
            }
        }
        if polls % capacity == 0 {
            let p = polls
            tracks = tracks.filter { p - $0.value.lastPoll < capacity }
        }
    }

    public mutating func reset() {
        tracks = [:]
        polls = 0
        lastTaken = nil
    }

    /// `values` as one cell a value, scaled from 0 to their largest (eighths of a cell
    /// under UTF-8, eight ASCII steps otherwise); a missing value is a blank.
    public static func sparkline(_ values: [Double?], glyphs: Glyphs) -> String {
        let steps: [String] = glyphs.isUnicode ? ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"] : ["_", ".", ",", "-", "~", "=", "*", "#"]
        let top = values.compactMap { $0 }.filter(\.isFinite).max() ?? 0
        return values.map { v in
            guard let v, v.isFinite else { return " " }
            guard top > 0 else { return steps[0] }
            return steps[max(0, min(7, Int((v / top * 7).rounded())))]
        }.joined()
    }
}
