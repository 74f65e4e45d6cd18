/// One hash table as `/proc/net/ip_vs_status` describes it (kernels 7.1 and later, where the
/// connection and service tables are per network namespace and resized by their load):
///
/// ```
/// Conn buckets:	524288 (19 bits, lfactor -5)
/// Conn buckets empty:	505633 (96%)
/// Conn buckets len-1:	18322 (98%)
/// ```
public struct HashTableStatus: Hashable, Sendable {
    /// Buckets of the table in use now (not the most it may grow to).
    public var buckets: Int
    public var bits: Int
    /// The load factor the table is sized by: it grows when its nodes pass
    /// `buckets × 2^lfactor` and shrinks when they fall well below (sysctl `conn_lfactor`,
    /// `svc_lfactor`; the table keeps the value it was built with until it is resized).
    public var loadFactor: Int
    /// Buckets with no entry, when the kernel counted them (it does not when the table is
    /// empty, or when the table kept changing while it counted).
    public var emptyBuckets: Int?
    /// Buckets by chain length, 1...7; the kernel's 7 stands for "7 or more". Lengths with
    /// no bucket are not printed, hence absent here.
    public var bucketsByLength: [Int: Int]

    public init(buckets: Int, bits: Int, loadFactor: Int, emptyBuckets: Int? = nil, bucketsByLength: [Int: Int] = [:]) {
        self.buckets = buckets
        self.bits = bits
        self.loadFactor = loadFactor
        self.emptyBuckets = emptyBuckets
        self.bucketsByLength = bucketsByLength
    }

    /// Nodes per bucket at which the kernel grows the table: 2^lfactor (1/16 at -4).
    public var growthLoad: Double { Double(sign: .plus, exponent: loadFactor, significand: 1) }

    /// The longest chain the kernel reported (7 means 7 or more), nil when it printed none.
    public var longestChain: Int? { bucketsByLength.filter { $0.value > 0 }.keys.max() }
}

/// `/proc/net/ip_vs_status`: the kernel's own account of its IPVS tables (7.1 and later).
public struct IPVSStatus: Hashable, Sendable {
    /// `Conns:` the namespace's entry count (connections and templates; also the one-packet
    /// entries of `ops` services, which are never in the table and live for one packet).
    public var conns: Int?
    public var connTable: HashTableStatus?
    /// `Services:` virtual services in this namespace.
    public var services: Int?
    public var serviceTable: HashTableStatus?
    /// `Stats thread slots: N (max M)`: rate estimator kthreads in use and allowed.
    public var statsThreadSlots: Int?
    public var statsThreadSlotsMax: Int?
    /// `Stats chain max len:` estimators per chain.
    public var statsChainMaxLength: Int?
    /// `Stats thread ests:` estimators one kthread can serve.
    public var statsThreadEstimators: Int?
    /// Lines this version does not know (a newer kernel's), counted, not guessed at.
    public var unknownLines: [String] = []
    /// Known lines whose numbers could not be read: not used, said in a warning.
    public var malformedLines: [String] = []

    public init() {}
}

/// Whether the snapshot has the kernel's status file, and why not.
public enum IPVSStatusReading: Hashable, Sendable {
    case read(IPVSStatus)
    /// The file is there but could not be read: it is root's only (mode 0440).
    case unavailable(reason: String)
    /// No `ip_vs_status`: a kernel before 7.1, or a capture without it.
    case absent

    public var status: IPVSStatus? { if case .read(let s) = self { s } else { nil } }
}

/// Whether a read of the connection table holds the whole table, judged against the
/// kernel's own count where it gives one.
///
/// A read of `/proc/net/ip_vs_conn` is many `read()` calls, each resuming the kernel's walk
/// of the hash table from a saved position; entries removed meanwhile, and on 7.x a resize
/// of the table (the walk stops at the next 32-bucket check and reports the end of file),
/// can make it miss entries. The check compares what was read with the count.
public struct TableCompleteness: Hashable, Sendable {
    public enum Verdict: String, Sendable {
        /// Within the tolerance of the kernel's count.
        case whole
        /// Fewer (or more) entries than the kernel's count allows: not the whole table.
        case partial
        /// Nothing to compare with (no count the reader could see).
        case unchecked
    }

    /// What the read was compared with.
    public enum Basis: String, Sendable {
        /// `Conns:` of `/proc/net/ip_vs_status`, read before and after the table.
        case kernelCount = "ip_vs_status"
        /// The real servers' ActiveConn + InActConn (and PersistConn when known) of the
        /// services poll before the read: counts of the entries bound to a listed server.
        case serverCounters = "real_server_counters"
        /// The file's last line has no newline: the text itself ends early.
        case truncatedText = "truncated_text"
        /// The read listed the same entry more than once: its position moved back under it
        /// (an entry added before it, a resize between reads on 7.x).
        case repeatedEntries = "repeated_entries"
        case none
    }

    public var verdict: Verdict
    public var basis: Basis
    /// Entries compared (all entries for the kernel's count; for the servers' counters,
    /// the entries of the kinds they count).
    public var entriesRead: Int
    /// The count compared with (the smaller of the counts before and after the read for
    /// `kernelCount`).
    public var expected: Int?
    /// How far below the count a whole read may fall (see `TableCheck`).
    public var tolerance: Int?
    /// Reads of the table this result took (1, or more when a partial read was retried).
    public var attempts: Int
    /// The verdict in words, for warnings and the dashboard.
    public var detail: String

    public init(verdict: Verdict, basis: Basis, entriesRead: Int, expected: Int?, tolerance: Int?, attempts: Int = 1, detail: String) {
        self.verdict = verdict
        self.basis = basis
        self.entriesRead = entriesRead
        self.expected = expected
        self.tolerance = tolerance
        self.attempts = attempts
        self.detail = detail
    }

    public var isPartial: Bool { verdict == .partial }
}

/// When the connection table is read next and why: every services interval while a full
/// read is cheap, paced by its measured cost when it is not.
public struct TablePacing: Hashable, Sendable {
    public enum Mode: String, Sendable {
        /// The last read cost at most `share` of the interval: read every interval.
        case everyInterval = "every_interval"
        /// The last read cost more: wait `cost / share` so reads take at most `share` of a core.
        case paced
    }
    public var mode: Mode
    /// The last read's cost in seconds (the larger of wall time and CPU time).
    public var lastCost: Double
    /// Seconds from that read to the next.
    public var delay: Double
    /// The most of a core the reads may take.
    public var share: Double

    public init(mode: Mode, lastCost: Double, delay: Double, share: Double) {
        self.mode = mode
        self.lastCost = lastCost
        self.delay = delay
        self.share = share
    }

    /// "paced: last read cost 2.41 s" / "every interval: last read cost 0.012 s".
    public var reason: String {
        (mode == .paced ? "paced" : "every interval") + ": last read cost " + Self.seconds(lastCost) + " s"
    }

    static func seconds(_ s: Double) -> String {
        // Three significant digits at most, without Foundation's String(format:).
        let ms = (s * 1000).rounded()
        if ms >= 10_000 { return "\(Int((s).rounded()))" }
        if ms >= 1000 { return "\(Double(Int((s * 100).rounded())) / 100)" }
        return "\(Double(Int(ms)) / 1000)"
    }
}
