import FoundationEssentials
import IPVSAnalysis
import IPVSModel
import Synchronization

/// The exposition of the last analysed snapshot, built once per snapshot on the feed's
/// thread; a scrape copies it and adds how old it is. A scrape never reads the kernel nor
/// waits for a poll.
public final class ExporterState: Sendable {
    struct Rendered: Sendable {
        var text: String
        var openMetrics: String
        var takenAt: Date
        var tableReadAt: Date?
        var renderSeconds: Double
        var series: Int
    }

    public let settings: MetricsSettings
    public let source: String
    /// The feed's clock: wall time for a director, simulated or recorded time for the demo
    /// and a replay (so that their ages are the ones a live director would show).
    let clock: @Sendable () -> Date
    private let latest = Mutex<Rendered?>(nil)
    /// The table's families and the read they were made from (the feed's thread only).
    private let tableCache = Mutex<TableCache?>(nil)

    struct TableCache {
        var readAt: Date?
        var families: [MetricFamily]
        /// Not made again before this, however often the table is read: their cost paces
        /// them, as the pacer paces the table's reads (`tableShare` of a core at most).
        var notBefore: Double
    }

    /// The most of one core that making the table's families may take.
    public static let tableShare = 0.02
    /// The last snapshot published while its table's families waited for their pace: made
    /// by `refresh()` once the pace allows, if no newer snapshot came first.
    private let waiting = Mutex<(Snapshot, AnalysisResult)?>(nil)
    private let scrapes = Atomic<Int>(0)
    private let openMetricsScrapes = Atomic<Int>(0)
    private let refused = Atomic<Int>(0)
    private let rejected = Atomic<Int>(0)

    public init(settings: MetricsSettings = MetricsSettings(), source: String, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.settings = settings
        self.source = source
        self.clock = clock
    }

    /// Builds the exposition of a new snapshot (the feed's thread calls this).
    public func publish(_ s: Snapshot, _ r: AnalysisResult) {
        let started = ProcessInfo.processInfo.systemUptime
        // The table's families are made again only when the table was read again (a services
        // poll brings a new snapshot every --interval; the table comes as its cost allows).
        let readAt = s.connections?.readAt
        let cached = tableCache.withLock { c -> TableCache? in
            guard let c, readAt != nil, c.readAt != nil, c.readAt == readAt || started < c.notBefore else { return nil }
            return c
        }
        let table: TableCache
        if let cached {
            table = cached
            waiting.withLock { $0 = cached.readAt == readAt ? nil : (s, r) }
        } else {
            waiting.withLock { $0 = nil }
            let families = Metrics.tableFamilies(s, r, settings: settings)
            let cost = ProcessInfo.processInfo.systemUptime - started
            table = TableCache(readAt: readAt, families: families, notBefore: started + cost / Self.tableShare)
            tableCache.withLock { $0 = table }
        }
        let families = Metrics.families(s, r, settings: settings, source: source, table: table.families)
        var text = "", om = ""
        text.reserveCapacity(64 << 10)
        Exposition.write(families, .text, into: &text)
        Exposition.write(families, .openMetrics, into: &om)
        // The table served is the one its families were made of (ages included).
        let rendered = Rendered(text: text, openMetrics: om, takenAt: s.takenAt, tableReadAt: table.readAt,
                                renderSeconds: ProcessInfo.processInfo.systemUptime - started,
                                series: families.reduce(0) { $0 + $1.samples.count })
        latest.withLock { $0 = rendered }
    }

    /// Publishes the snapshot whose table's families waited, once their pace allows (the
    /// feed's thread calls this when no new snapshot came: a recording that ended, a
    /// director whose services poll failed).
    public func refresh() {
        let now = ProcessInfo.processInfo.systemUptime
        guard let due = tableCache.withLock({ $0.map { now >= $0.notBefore } }), due,
              let (s, r) = waiting.withLock({ $0 }) else { return }
        publish(s, r)
    }

    /// True once a snapshot has been published.
    public var hasSnapshot: Bool { latest.withLock { $0 != nil } }

    /// Counts a connection closed to make room under the limit.
    func countEvicted() { refused.add(1, ordering: .relaxed) }
    /// Counts a request answered with a 4xx.
    func countRejected() { rejected.add(1, ordering: .relaxed) }

    /// The body of one scrape: the last snapshot's exposition, then the scrape's own
    /// figures (how old the data is), then OpenMetrics' `# EOF`.
    public func scrape(_ format: ExpositionFormat, now: Date? = nil) -> String {
        let now = now ?? clock()
        if format == .text { scrapes.add(1, ordering: .relaxed) } else { openMetricsScrapes.add(1, ordering: .relaxed) }
        let r = latest.withLock { $0 }
        var body = r.map { format == .text ? $0.text : $0.openMetrics } ?? ""
        var up = MetricFamily("ipvstop_up", .gauge, "1 when the exporter has a snapshot of the director to serve, 0 before the first poll succeeded.")
        up.add([], r == nil ? 0 : 1)
        var age = MetricFamily("ipvstop_snapshot_age_seconds", .gauge, "Seconds between the snapshot served (services and real servers) and this scrape: it grows when polls fail.")
        var tableAge = MetricFamily("ipvstop_connection_table_age_seconds", .gauge, "Seconds between the connection table served and this scrape (the table is read as often as its cost allows, so it is older than the services).")
        var render = MetricFamily("ipvstop_exporter_render_duration_seconds", .gauge, "Seconds spent building the exposition of the snapshot served (once per snapshot, not per scrape).")
        var series = MetricFamily("ipvstop_exporter_series", .gauge, "Samples in the exposition of the snapshot served (bounded by --top-clients and --top-groups, not by the number of clients).")
        if let r {
            age.add([], max(0, now.timeIntervalSince(r.takenAt)))
            if let t = r.tableReadAt { tableAge.add([], max(0, now.timeIntervalSince(t))) }
            render.add([], r.renderSeconds)
            series.add([], r.series)
        }
        var count = MetricFamily("ipvstop_exporter_scrapes", .counter, "Scrapes of /metrics served since the exporter started, by exposition format (text or openmetrics, as the scraper's Accept header chose).")
        count.add([("format", "text")], scrapes.load(ordering: .relaxed))
        count.add([("format", "openmetrics")], openMetricsScrapes.load(ordering: .relaxed))
        var ref = MetricFamily("ipvstop_exporter_connections_evicted", .counter, "Connections closed to make room for a new one when --max-connections were open (the oldest not yet answered first).")
        ref.add([], refused.load(ordering: .relaxed))
        var rej = MetricFamily("ipvstop_exporter_requests_rejected", .counter, "Requests answered with a 4xx: malformed (400), unknown path (404), wrong method (405), body too big (413).")
        rej.add([], rejected.load(ordering: .relaxed))
        Exposition.write([up, age, tableAge, render, series, count, ref, rej], format, into: &body)
        if format == .openMetrics { body += "# EOF\n" }
        return body
    }
}
