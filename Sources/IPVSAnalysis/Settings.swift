import FoundationEssentials

/// Every threshold of the analysis, with its default. Each has a command-line override
/// (`--threshold NAME=VALUE`, names in `AnalysisSettings.parameters`).
///
/// Thresholds are both absolute and relative so that a small table (ten connections, a
/// lab) does not raise findings on noise, and a big one (10^6 entries) does not hide a
/// client behind a percentage.
public struct AnalysisSettings: Hashable, Sendable {
    // MARK: rogue_client

    /// A client (or persistence group) must hold at least this many connections on one real
    /// server. Default 20: the seed's rogue thin clients held 912 and 624 against ~20.
    public var rogueMinConnections = 20
    /// ... and at least this share of that real server's connections in the table.
    /// Default 0.10.
    public var rogueMinShare = 0.10
    /// ... and at least this many times the median client of the service. Default 10.
    public var rogueMedianFactor = 10.0

    // MARK: imbalance

    /// A real server is out of balance when its share of the service's connections is more
    /// than (1 + tolerance) times its share of the weight, or less than (1 - tolerance)
    /// times (symmetric: with two equal servers, 75/25 either way). Default 0.5.
    public var imbalanceTolerance = 0.5
    /// ... and the two shares differ by at least this much (absolute). Default 0.05, so that
    /// a 2% server at 4% is not called out of balance.
    public var imbalanceMinDifference = 0.05
    /// Services with fewer connections than this are never judged. Default 20.
    public var imbalanceMinConnections = 20
    /// An imbalance must last this long before it is raised: schedulers even out over
    /// time, persistence on the scale of its timeout. Default 60 s. `ipvstop check` with one
    /// poll cannot wait, and says so.
    public var imbalanceHoldSeconds = 60.0
    /// Among the top clients (or groups) on a server out of balance, how many may be named
    /// as its cause ("2 clients hold 880 of the 912"). Default 3.
    public var imbalanceMaxCulprits = 3

    // MARK: service_down

    /// A service is down (critical) when none of its real servers can take a new connection:
    /// none at all, every weight 0, or every one over its upper threshold. It is weakened
    /// (warning) when fewer than this many can, like keepalived's quorum. Default 0 (off:
    /// only the share below judges).
    public var serviceMinServers = 0
    /// ... or when the real servers that can take a new connection are fewer than this share
    /// of its real servers. Default 0.5: one of two drained is not raised, two of three is.
    public var serviceMinShare = 0.5

    // MARK: quiescent_fed

    /// A weight-0 real server is "fed" after this many new connections reached it since it
    /// went to weight 0. Default 1: the scheduler never sends it any; each one came through
    /// a template.
    public var quiescentMinNewConnections = 1
    /// The finding stays while a new connection arrived within this window. Default 120 s.
    public var quiescentWindowSeconds = 120.0

    // MARK: template_overstay

    /// Seconds of slack on a template's timeout before it is said to have outlived it
    /// (poll jitter, rounding of the kernel's seconds). Default 5 s.
    public var overstaySlackSeconds = 5.0

    // MARK: table_pressure

    /// Kernel memory held by the connection table (entries × the slab's object size) that
    /// raises a warning. Default 1 GiB (about 3.3 million entries of 320 bytes).
    public var tableMemoryWarningBytes = 1 << 30
    /// Average entries per bucket of the connection hash table (entries / table size) that
    /// raises a warning: every packet's lookup walks a chain this long. Default 16.
    public var tableChainWarning = 16.0

    // MARK: sync

    /// A sync daemon whose side of the table has not moved (no new entry from sync on a
    /// backup, no new local entry on a master) for this long. Default 120 s.
    public var syncStallSeconds = 120.0

    // MARK: hysteresis

    /// A finding is raised after this many consecutive samples that show it (a sample is a
    /// new read of the data the finding rests on: the connection table for most kinds, the
    /// service table for imbalance and table pressure). Default 3.
    public var raiseAfter = 3
    /// A raised finding clears after this many consecutive samples that do not show it.
    /// Default 5.
    public var clearAfter = 5
    /// While a finding is raised, its thresholds are relaxed by this factor (a share must
    /// fall below 0.8 × the threshold to count as a miss), so that a measure wavering
    /// around a threshold does not flap. Default 0.8.
    public var clearFactor = 0.8

    public init() {}

    /// The fewest connections a rogue client or group may hold on a real server, its
    /// threshold relaxed for a raised finding: `rogueMinConnections × clearFactor` (a factor
    /// over 1 relaxes nothing), rounded up. The aggregation keeps every client's load from
    /// there on one by one.
    var rogueFloor: Int {
        let floor = Double(rogueMinConnections) * min(1, clearFactor)
        return floor <= 0 ? 0 : floor >= Double(Int.max) ? Int.max : Int(floor.rounded(.up))
    }
}

extension AnalysisSettings {
    /// One tunable threshold: its command-line name, meaning and default.
    public struct Parameter: Sendable {
        public enum Unit: String, Sendable { case count, fraction, factor, seconds, bytes }
        public let name: String
        public let unit: Unit
        public let help: String
        let get: @Sendable (AnalysisSettings) -> Double
        let set: @Sendable (inout AnalysisSettings, Double) -> Void

        public func value(in s: AnalysisSettings) -> Double { get(s) }

        /// The values `--threshold` accepts: wide enough for any director, narrow enough that
        /// every value converts to the setting's type and every product made of it stays
        /// finite (a count of 1e30 would trap turned into an Int).
        public var range: ClosedRange<Double> {
            switch (name, unit) {
            case ("raise_after", _), ("clear_after", _): 1...1_000_000
            case ("clear_factor", _): 0...1
            case (_, .count): 0...1_000_000_000
            case (_, .fraction): 0...1
            case (_, .factor): 0...1_000_000
            case (_, .seconds): 0...31_536_000          // a year
            case (_, .bytes): 0...Double(1 << 50)      // a PiB
            }
        }

        /// The value as text in its unit (`20`, `0.1`, `60s`, `1073741824`).
        public func text(in s: AnalysisSettings) -> String {
            let v = get(s)
            let n = v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
            return unit == .seconds ? n + "s" : n
        }
    }

    /// Every threshold, by the name `--threshold NAME=VALUE` takes.
    public static var parameters: [Parameter] {
        func int(_ name: String, _ unit: Parameter.Unit, _ help: String, _ kp: WritableKeyPath<AnalysisSettings, Int> & Sendable) -> Parameter {
            Parameter(name: name, unit: unit, help: help, get: { Double($0[keyPath: kp]) }, set: { $0[keyPath: kp] = Int($1) })
        }
        func dbl(_ name: String, _ unit: Parameter.Unit, _ help: String, _ kp: WritableKeyPath<AnalysisSettings, Double> & Sendable) -> Parameter {
            Parameter(name: name, unit: unit, help: help, get: { $0[keyPath: kp] }, set: { $0[keyPath: kp] = $1 })
        }
        return [
            int("rogue_min_conns", .count, "rogue_client: connections a client (or group) must hold on one real server", \.rogueMinConnections),
            dbl("rogue_min_share", .fraction, "rogue_client: share of the real server's connections it must hold", \.rogueMinShare),
            dbl("rogue_median_factor", .factor, "rogue_client: times the service's median client it must hold", \.rogueMedianFactor),
            dbl("imbalance_tolerance", .factor, "imbalance: a connection share above (1+t)x or below (1-t)x the weight share", \.imbalanceTolerance),
            dbl("imbalance_min_diff", .fraction, "imbalance: least absolute difference between connection and weight shares", \.imbalanceMinDifference),
            int("imbalance_min_conns", .count, "imbalance: services with fewer connections are not judged", \.imbalanceMinConnections),
            dbl("imbalance_hold", .seconds, "imbalance: how long it must last before it is raised", \.imbalanceHoldSeconds),
            int("imbalance_max_culprits", .count, "imbalance: most clients or groups named as the cause", \.imbalanceMaxCulprits),
            int("service_min_servers", .count, "service_down: warn when fewer real servers than this can take new connections (0: off)", \.serviceMinServers),
            dbl("service_min_share", .fraction, "service_down: warn when fewer than this share of its real servers can take new connections", \.serviceMinShare),
            int("quiescent_min_new", .count, "quiescent_fed: new connections to a weight-0 server since it went to 0", \.quiescentMinNewConnections),
            dbl("quiescent_window", .seconds, "quiescent_fed: stays raised while a new connection arrived within this time", \.quiescentWindowSeconds),
            dbl("overstay_slack", .seconds, "template_overstay: slack on a template's timeout", \.overstaySlackSeconds),
            int("table_memory_warn", .bytes, "table_pressure: kernel memory of the connection table (entries x entry size)", \.tableMemoryWarningBytes),
            dbl("table_chain_warn", .factor, "table_pressure: entries per hash bucket (entries / table size)", \.tableChainWarning),
            dbl("sync_stall", .seconds, "sync: how long a daemon's side of the table may stand still", \.syncStallSeconds),
            int("raise_after", .count, "hysteresis: consecutive samples showing a finding before it is raised", \.raiseAfter),
            int("clear_after", .count, "hysteresis: consecutive samples without it before it clears", \.clearAfter),
            dbl("clear_factor", .factor, "hysteresis: thresholds of a raised finding are relaxed by this factor", \.clearFactor),
        ]
    }

    public enum OverrideError: Error, CustomStringConvertible, Equatable {
        case syntax(String)
        case unknownName(String)
        case badValue(name: String, value: String)
        case outOfRange(name: String, value: String, range: ClosedRange<Double>)

        public var description: String {
            switch self {
            case .syntax(let s): "'\(s)': expected NAME=VALUE (see --list-thresholds)"
            case .unknownName(let n): "unknown threshold '\(n)' (see --list-thresholds)"
            case .badValue(let n, let v): "threshold \(n): '\(v)' is not a valid value"
            case .outOfRange(let n, let v, let r):
                "threshold \(n): '\(v)' is out of range (\(Self.text(r.lowerBound)) to \(Self.text(r.upperBound)))"
            }
        }

        static func text(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e18 ? String(Int64(v)) : String(v) }
    }

    /// Applies `NAME=VALUE`. Values take units: seconds as `90`, `90s`, `5m`, `2h`; bytes as
    /// `1073741824`, `512MiB`, `1GiB`, `1G` (powers of 1024); counts and factors as numbers.
    public mutating func apply(override text: String) throws {
        guard let eq = text.firstIndex(of: "=") else { throw OverrideError.syntax(text) }
        let name = text[..<eq].trimmingWhitespace().replacingEvery("-", with: "_")
        let raw = text[text.index(after: eq)...].trimmingWhitespace()
        guard let p = Self.parameters.first(where: { $0.name == name }) else { throw OverrideError.unknownName(name) }
        guard let v = Self.parse(raw, unit: p.unit), v.isFinite, v >= 0 else {
            throw OverrideError.badValue(name: name, value: raw)
        }
        if p.unit == .count || p.unit == .bytes, v != v.rounded() { throw OverrideError.badValue(name: name, value: raw) }
        // Rejected with a message, not clamped: a threshold the operator did not mean is
        // worse than none. Inside the range every set converts exactly (Int(v) cannot trap).
        guard p.range.contains(v) else { throw OverrideError.outOfRange(name: name, value: raw, range: p.range) }
        p.set(&self, v)
    }

    /// Seconds from `90`, `90s`, `5m`, `2h`, `1d`, `500ms` (what `--threshold` and
    /// `ipvstop check --for` take); nil when it is not a duration.
    public static func seconds(_ text: String) -> Double? {
        parse(text.trimmingWhitespace(), unit: .seconds).flatMap { $0.isFinite && $0 >= 0 ? $0 : nil }
    }

    static func parse(_ s: String, unit: Parameter.Unit) -> Double? {
        let lower = s.lowercased()
        func split(_ suffixes: [(String, Double)]) -> Double? {
            for (suf, mul) in suffixes where lower.hasSuffix(suf) {
                return Double(lower.dropLast(suf.count)).map { $0 * mul }
            }
            return Double(lower)
        }
        switch unit {
        case .seconds: return split([("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)])
        case .bytes:
            let k = 1024.0
            return split([("kib", k), ("mib", k * k), ("gib", k * k * k), ("tib", k * k * k * k),
                          ("k", k), ("m", k * k), ("g", k * k * k), ("t", k * k * k * k), ("b", 1)])
        default:
            if lower.hasSuffix("%"), let v = Double(lower.dropLast()) { return v / 100 }
            return Double(lower)
        }
    }
}
