import FoundationEssentials
import IPVSModel
import Synchronization

/// Decides when the connection table may be read again, from what the last read cost.
///
/// A full read of `/proc/net/ip_vs_conn` costs the kernel time that grows with the table:
/// quadratically before 6.14, linearly since (the seq_file keeps its bucket between reads).
/// The decision is made from the measured cost, never from a kernel version: after a read
/// that took `c` seconds the next may start `c / share` seconds later, so reading never
/// takes more than `share` of a core. Where that is within the services' interval (a
/// linear kernel, a small table) the table is read every interval; where not, it is paced.
public struct ConnectionTablePacer: Sendable, Hashable {
    /// The most of one core the table reads may take (0.05 = 5%).
    public var share: Double
    /// Never sooner than this, however cheap the read (the services' poll interval).
    public var minimumInterval: Double
    /// The most a read round may spend re-reading a partial table at once (seconds): a
    /// retry starts only if, with another read as costly as the last, the round stays
    /// within it. Past it the table is kept marked partial until the next paced read.
    public var retryBudget: Double

    /// 5% of a core: the next read waits twenty times the last one's cost, so the kernel's
    /// walk of a big table (quadratic before 6.14) stays a small load on the director.
    public static let defaultShare = 0.05

    public init(share: Double = ConnectionTablePacer.defaultShare, minimumInterval: Double = 1, retryBudget: Double? = nil) {
        self.share = max(0.001, min(1, share))
        self.minimumInterval = max(0, minimumInterval)
        self.retryBudget = max(0, retryBudget ?? max(1, 2 * minimumInterval))
    }

    /// Seconds to wait after a read that cost `cost`.
    public func delay(after cost: ReadCost) -> Double { decision(after: cost).delay }

    /// Every interval or paced, the delay, and the reason for the status line.
    public func decision(after cost: ReadCost) -> TablePacing {
        // Wall time includes the kernel's walk (system time on our thread) and any wait
        // for the table's lock: both are load on the director.
        let c = max(0, max(cost.seconds, cost.cpuSeconds))
        let paced = c / share
        let mode: TablePacing.Mode = paced > minimumInterval ? .paced : .everyInterval
        return TablePacing(mode: mode, lastCost: c, delay: max(minimumInterval, paced), share: share)
    }
}

/// Polls the director: services, real servers and small files every `interval`, the
/// connection table in the background at the pace its cost allows. The latest state is
/// one `Snapshot` away (`latest()`); faces never wait for a read.
public final class DirectorPoller: Sendable {
    public let reader: SnapshotReader
    public let interval: Double
    public let pacer: ConnectionTablePacer

    private struct State {
        /// The latest services read (a snapshot without its table) and the one before.
        var services: Snapshot?
        var previousServices: Snapshot?
        var table: ConnectionTable?
        /// The last table's entry identities, to tell the next read's new entries.
        var identities: EntryIdentities?
        var changes: ConnectionChanges?
        /// The new entries of the last reads (the current one last), handed with every
        /// snapshot so that a face that skipped a read still counts its new entries.
        var recent: [ReadChanges] = []
        /// The last services poll's error and the last table read's error, apart: a services
        /// poll that succeeds must not clear a table read that keeps failing (a FIFO, a
        /// table over its cap), or the table's error would flicker out of every face.
        var servicesError: String?
        var tableError: String?
        var lastError: String? {
            switch (servicesError, tableError) {
            case let (s?, t?): "\(s); \(t)"
            case let (s, t): s ?? t
            }
        }
        /// The pacer's decision after the last table read, and that read's warnings.
        var pacing: TablePacing?
        var tableWarnings: [String] = []
        var running = false
        var nextTableRead: Date = .distantPast
        var generation = 0
    }

    private let state = Mutex(State())
    private let onUpdate: @Sendable () -> Void

    public init(reader: SnapshotReader, interval: Double = 1, pacer: ConnectionTablePacer? = nil, onUpdate: @escaping @Sendable () -> Void = {}) {
        self.reader = reader
        self.interval = max(0.05, interval)
        self.pacer = pacer ?? ConnectionTablePacer(share: reader.options.tableShare, minimumInterval: interval)
        self.onUpdate = onUpdate
    }

    /// One poll of the services (and, when the pacer allows, the table), on the caller's
    /// thread. The background loops call this; tests call it directly.
    public func pollServices() {
        do {
            let part = try reader.readServices()
            state.withLock {
                $0.previousServices = $0.services
                $0.services = part
                $0.servicesError = nil
            }
        } catch {
            state.withLock { $0.servicesError = "\(error)" }
        }
        onUpdate()
    }

    /// Reads the connection table now, and works out which entries are new.
    public func pollConnections() {
        let (previous, previousIdentities, services) = state.withLock { ($0.table, $0.identities, $0.services) }
        do {
            var table = try reader.readConnectionsChecked(services: services, budget: pacer.retryBudget)
            // The identities also tell a read that listed entries twice (its position moved
            // back): not the table either.
            let read = table.identities()
            table.completeness = TableCheck.withRepeats(table.completeness, repeats: read.repeatedCount, entries: table.entries.count)
            // A partial read's missing entries would show as new in the next one: no changes
            // are worked out from or against it.
            let identities: EntryIdentities? = (table.completeness?.isPartial ?? false) ? nil : read
            var changes: ConnectionChanges?
            var record: ReadChanges?
            if let identities, let previous, let previousIdentities {
                let new = identities.newEntryIndices(since: previousIdentities)
                changes = ConnectionChanges(
                    previousReadAt: previous.readAt,
                    newEntryIndices: new,
                    interval: table.readAt.timeIntervalSince(previous.readAt))
                let kept = new.count <= Self.keptNewEntries ? new.map { table.entries[$0] } : []
                record = ReadChanges(readAt: table.readAt, previousReadAt: previous.readAt, newEntries: kept, newCount: new.count)
            }
            // The round's cost: every read it made, so retries count against the share.
            var roundCost = table.cost
            let attempts = table.completeness?.attempts ?? 1
            roundCost.seconds *= Double(attempts)
            roundCost.cpuSeconds *= Double(attempts)
            let pacing = pacer.decision(after: roundCost)
            let next = Date().addingTimeInterval(pacing.delay)
            state.withLock {
                $0.table = table
                // The next read is compared with this one's digests only.
                $0.identities = identities?.forNextComparison
                $0.changes = changes
                $0.pacing = pacing
                $0.tableWarnings = SnapshotReader.tableWarnings(table)
                if let record {
                    $0.recent.append(record)
                    if $0.recent.count > Self.keptReads { $0.recent.removeFirst($0.recent.count - Self.keptReads) }
                } else {
                    $0.recent = []
                }
                $0.nextTableRead = next
                $0.tableError = nil
            }
        } catch {
            state.withLock {
                $0.tableError = "connection table: \(error)"
                $0.nextTableRead = Date().addingTimeInterval(pacer.minimumInterval)
            }
        }
        onUpdate()
    }

    /// How many reads' new entries are kept for faces that skip snapshots, and how many new
    /// entries a read may have for them to be kept (64 bytes each: 4 MiB a read at most).
    static let keptReads = 8
    static let keptNewEntries = 1 << 16

    /// When the pacer lets the table be read next.
    public var nextConnectionRead: Date { state.withLock { $0.nextTableRead } }

    /// The newest snapshot: the latest services with the latest table, and rates the
    /// kernel did not give worked out from the last two service polls' counters.
    public func latest() -> Snapshot? {
        let s = state.withLock { $0 }
        guard var snap = s.services else { return nil }
        if let prev = s.previousServices {
            Self.fillMissingRates(&snap.services, previous: prev.services, seconds: snap.takenAt.timeIntervalSince(prev.takenAt))
        }
        if let e = s.servicesError { snap.source.warnings.append(e) }
        if let e = s.tableError { snap.source.warnings.append(e) }
        if s.table != nil { snap.source.warnings += s.tableWarnings }
        if s.table == nil { snap.source.unavailable.append("connections (not read yet)") }
        snap.connections = s.table
        snap.tablePacing = s.pacing
        snap.connectionChanges = s.changes
        // The reads before the current one (its own new entries are its indices).
        if snap.connectionChanges != nil, s.recent.count > 1 { snap.connectionChanges!.earlier = Array(s.recent.dropLast()) }
        return snap
    }

    /// The last error, if the last poll failed (e.g. the module was unloaded).
    public var lastError: String? { state.withLock { $0.lastError } }

    /// Where the kernel gave counters but no rates, rates from two polls' counters.
    static func fillMissingRates(_ services: inout [VirtualService], previous: [VirtualService], seconds: Double) {
        let old = Dictionary(previous.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        for i in services.indices {
            guard let p = old[services[i].key] else { continue }
            if services[i].rates == nil, let a = p.stats, let b = services[i].stats {
                services[i].rates = TrafficRates(from: a, to: b, seconds: seconds)
            }
            for j in services[i].realServers.indices {
                let rs = services[i].realServers[j]
                guard rs.rates == nil, let b = rs.stats,
                      let a = p.realServers.first(where: { $0.address == rs.address && $0.port == rs.port })?.stats else { continue }
                services[i].realServers[j].rates = TrafficRates(from: a, to: b, seconds: seconds)
            }
        }
    }

    // MARK: - Background loops

    /// Starts the two loops on their own threads: services every `interval`, the table
    /// when the pacer allows. A slow table read never delays the services.
    public func start() {
        let gen = state.withLock { s -> Int? in
            if s.running { return nil }
            s.running = true
            s.generation += 1
            return s.generation
        }
        guard let gen else { return }
        DetachedThread.start(name: "ipvstop-services") { [self] in
            while isRunning(gen) {
                let started = Date()
                pollServices()
                sleep(until: started.addingTimeInterval(interval), gen: gen)
            }
        }
        DetachedThread.start(name: "ipvstop-connections") { [self] in
            while isRunning(gen) {
                sleep(until: nextConnectionRead, gen: gen)
                guard isRunning(gen) else { break }
                pollConnections()
            }
        }
    }

    public func stop() {
        state.withLock { $0.running = false }
    }

    private func isRunning(_ gen: Int) -> Bool {
        state.withLock { $0.running && $0.generation == gen }
    }

    /// Sleeps in short steps so `stop()` takes effect quickly.
    private func sleep(until date: Date, gen: Int) {
        while isRunning(gen) {
            let left = date.timeIntervalSinceNow
            if left <= 0 { return }
            DetachedThread.sleep(seconds: min(left, 0.1))
        }
    }
}
