import IPVSModel

/// Judges whether a read of the connection table holds the whole table.
///
/// **Why a read can miss entries.** The file is many `read()` calls; between them the kernel
/// keeps a position and the table changes under it:
/// - up to 6.13 the position is an entry number, found again by walking from bucket 0: an
///   entry removed before it makes the walk skip one entry, an entry added before it shows
///   one twice;
/// - from 6.14 it is a bucket and a count within it: the same, within that bucket;
/// - from 7.1 the table is resized by its load: the reader stops at the next 32-bucket check
///   after a resize and reports the end of the file, so the text ends early with no error,
///   and a read that resumes in a new table resumes at a bucket number of the old one.
///
/// **The bound used.** Let `N` be the count before the read, `D` the entries removed and
/// `C` those created while it ran. An entry present throughout is missed only when a removal
/// shifted the position past it (an addition at a bucket's head repeats one instead), so a
/// whole read sees at least `N − 2D` entries; and `D = N + C − N_after`. New entries are one
/// per new connection, two where persistent services add a template, so
/// `C ≤ k × cps × T` over the read's `T` seconds with the kernel's connection rate
/// (`ip_vs_stats`, a 2-second average), and `D ≤ max(0, N − N_after + C)`. The tolerance is
/// twice that, plus a slack of 16 + 0.2% of `N`: for the one-packet entries `Conns` counts but
/// the table never holds, and for the estimator's smoothing. Below that the read is partial;
/// above `N_max + C` plus the slack it repeated entries (a read across a resize) and is not
/// the table either. (Lab, 7.3.4: a read during a fill from 8,000 to 16,000 entries, which
/// resized the table, ended at 7,843 lines: 157 short, found here; the growth itself is not
/// mistaken for removals.)
///
/// **Its limits.** Without `ip_vs_status` (kernels before 7.1, or not root) the count is the
/// real servers' counters from the services poll before the read: they count only entries
/// bound to a listed server (not those of deleted servers or unbound synced entries), so
/// they bound the read from below only, and only the kinds they count (ActiveConn +
/// InActConn for connections; PersistConn, which needs netlink, for templates). A loss
/// smaller than the tolerance is not seen; a busy director's tolerance is wide.
public enum TableCheck {
    /// What a check compares a read with.
    public struct Counts: Sendable {
        /// `Conns:` before and after the read, when `ip_vs_status` was readable.
        public var kernelBefore: Int?
        public var kernelAfter: Int?
        /// Σ ActiveConn + InActConn, and Σ PersistConn when netlink gave it.
        public var serverConnections: Int?
        public var serverTemplates: Int?
        /// New connections per second (the kernel's estimate), when known.
        public var connectionsPerSecond: Double?
        /// Entries a new connection may add: 2 where a persistent service adds a template.
        public var entriesPerConnection: Double = 2
        /// Seconds between the counts and the end of the read (the read's own time, plus the
        /// counters' age for the servers' counters).
        public var seconds: Double

        public init(kernelBefore: Int? = nil, kernelAfter: Int? = nil, serverConnections: Int? = nil, serverTemplates: Int? = nil,
                    connectionsPerSecond: Double? = nil, seconds: Double = 0) {
            self.kernelBefore = kernelBefore
            self.kernelAfter = kernelAfter
            self.serverConnections = serverConnections
            self.serverTemplates = serverTemplates
            self.connectionsPerSecond = connectionsPerSecond
            self.seconds = seconds
        }
    }

    /// Entries that may be created during `seconds` at `cps` new connections a second.
    static func created(_ cps: Double?, _ seconds: Double, perConnection: Double = 2) -> Int {
        guard let cps, cps.isFinite, cps > 0, seconds.isFinite, seconds > 0 else { return 0 }
        let c = max(1, perConnection) * cps * seconds
        return c >= Double(Int.max / 8) ? Int.max / 8 : Int(c.rounded(.up))
    }

    static func slack(_ n: Int) -> Int { 16 + n / 500 }

    /// The verdict for a read of `connections` non-template entries and `templates`
    /// templates; `truncatedText` when the file's last line had no newline.
    public static func judge(connections: Int, templates: Int, truncatedText: Bool, counts: Counts, attempts: Int = 1) -> TableCompleteness {
        let read = connections + templates
        if truncatedText {
            return TableCompleteness(verdict: .partial, basis: .truncatedText, entriesRead: read, expected: nil, tolerance: nil, attempts: attempts,
                                     detail: "the table's text ends in the middle of a line: the read ended early")
        }
        let created = created(counts.connectionsPerSecond, counts.seconds, perConnection: counts.entriesPerConnection)
        if let before = counts.kernelBefore {
            let after = counts.kernelAfter ?? before
            let low = min(before, after), high = max(before, after)
            let removed = max(0, before - after + created)
            let tolerance = 2 * removed + slack(high)
            if read + tolerance < low {
                return TableCompleteness(verdict: .partial, basis: .kernelCount, entriesRead: read, expected: low, tolerance: tolerance, attempts: attempts,
                                         detail: "\(read) of the kernel's \(low) entries read (ip_vs_status Conns; \(tolerance) allowed for churn): the read ended early")
            }
            if read > high + created + slack(high) {
                return TableCompleteness(verdict: .partial, basis: .kernelCount, entriesRead: read, expected: high, tolerance: created + slack(high), attempts: attempts,
                                         detail: "\(read) entries read, more than the kernel's \(high) (ip_vs_status Conns): entries were read twice (a read across a table resize)")
            }
            return TableCompleteness(verdict: .whole, basis: .kernelCount, entriesRead: read, expected: low, tolerance: tolerance, attempts: attempts,
                                     detail: "\(read) entries read, the kernel counts \(low == high ? "\(low)" : "\(low)-\(high)") (ip_vs_status Conns)")
        }
        if let conns = counts.serverConnections {
            // Lower bounds only: entries of deleted servers are counted by no listed server.
            var expected = conns, got = connections
            var what = "connections"
            if let t = counts.serverTemplates {
                expected += t
                got += templates
                what = "entries"
            }
            let tolerance = 2 * created + slack(expected)
            if got + tolerance < expected {
                return TableCompleteness(verdict: .partial, basis: .serverCounters, entriesRead: got, expected: expected, tolerance: tolerance, attempts: attempts,
                                         detail: "\(got) \(what) read, the real servers count \(expected) (\(tolerance) allowed for churn): the read ended early")
            }
            return TableCompleteness(verdict: .whole, basis: .serverCounters, entriesRead: got, expected: expected, tolerance: tolerance, attempts: attempts,
                                     detail: "\(got) \(what) read, at least the real servers' \(expected) less \(tolerance) for churn")
        }
        return TableCompleteness(verdict: .unchecked, basis: .none, entriesRead: read, expected: nil, tolerance: nil, attempts: attempts,
                                 detail: "no count to compare the read with")
    }

    /// Repeats one read may hold while whole: two distinct entries print alike only
    /// fleetingly (a client port reused while the old entry is being expired).
    public static let repeatsAllowed = 16

    /// `c` marked partial when the read repeated more entries than `repeatsAllowed`.
    public static func withRepeats(_ c: TableCompleteness?, repeats: Int, entries: Int) -> TableCompleteness? {
        guard repeats > repeatsAllowed, !(c?.isPartial ?? false) else { return c }
        return TableCompleteness(verdict: .partial, basis: .repeatedEntries, entriesRead: entries, expected: entries - repeats,
                                 tolerance: repeatsAllowed, attempts: c?.attempts ?? 1,
                                 detail: "\(repeats) of the \(entries) entries read were listed twice: the read's position moved back under it (a resize between reads)")
    }

    /// The real servers' counters of a services poll: Σ ActiveConn + InActConn, and
    /// Σ PersistConn when every real server has it (netlink).
    public static func serverCounts(_ s: Snapshot) -> (connections: Int, templates: Int?)? {
        guard !s.services.isEmpty else { return nil }
        var conns = 0, templates = 0
        var allPersist = true
        for svc in s.services {
            for rs in svc.realServers {
                conns = conns.addingReportingOverflow(Int(rs.activeConns) + Int(rs.inactiveConns)).overflow ? Int.max / 4 : conns + Int(rs.activeConns) + Int(rs.inactiveConns)
                if let p = rs.persistentConns { templates += Int(p) } else { allPersist = false }
            }
        }
        return (min(conns, Int.max / 4), allPersist ? min(templates, Int.max / 4) : nil)
    }
}
