// What `ipvstop exporter` exports, from one analysed snapshot (every metric is documented
// in METRICS.md). Label names follow node_exporter's ipvs collector where the meaning is
// the same (local_address, local_port, remote_address, remote_port, proto, local_mark), so
// that a query ports by renaming the metric.
import FoundationEssentials
import IPVSAnalysis
import IPVSModel

/// How many series the per-client figures may add: the series count never grows with the
/// number of clients beyond these.
public struct MetricsSettings: Sendable, Hashable {
    /// Clients exported per real server, busiest first (0: none).
    public var topClients: Int
    /// Persistence groups exported per real server, busiest first (0: none).
    public var topGroups: Int

    public init(topClients: Int = 5, topGroups: Int = 5) {
        self.topClients = max(0, topClients)
        self.topGroups = max(0, topGroups)
    }
}

public enum Metrics {
    /// The labels that name a virtual service, as node_exporter names them: an address
    /// service has local_address, local_port, proto (TCP, UDP, SCTP) and an empty
    /// local_mark; a fwmark service has local_mark, proto "FWM", an empty local_address
    /// and local_port "0". `family` (ipv4, ipv6) tells apart the two fwmark services a
    /// mark can have, which node_exporter cannot.
    static func serviceLabels(_ svc: VirtualService) -> [(String, String)] {
        switch svc.key {
        case .address(let p, let a, let port):
            [("local_address", a.description), ("local_port", "\(port)"), ("proto", p.kernelName), ("local_mark", ""), ("family", a.family == .ipv6 ? "ipv6" : "ipv4")]
        case .fwmark(let m, let f):
            [("local_address", ""), ("local_port", "0"), ("proto", "FWM"), ("local_mark", "\(m)"), ("family", f == .ipv6 ? "ipv6" : "ipv4")]
        }
    }

    static func backendLabels(_ svc: [(String, String)], _ rs: RealServer) -> [(String, String)] {
        // node_exporter's order: local_address, local_port, remote_address, remote_port, proto, local_mark.
        var l = Array(svc.prefix(2))
        l += [("remote_address", rs.address.description), ("remote_port", "\(rs.port)")]
        l += svc.dropFirst(2)
        return l
    }

    /// Every family, from one snapshot and its analysis. The snapshot's own age and the
    /// scrape's facts are added at scrape time (`ExporterState`).
    /// `table`: the families `tableFamilies` made of this snapshot's table, when the caller
    /// kept them (made here otherwise).
    public static func families(_ s: Snapshot, _ r: AnalysisResult, settings: MetricsSettings, source: String,
                                table: [MetricFamily]? = nil) -> [MetricFamily] {
        var out: [MetricFamily] = []

        var feed = MetricFamily("ipvstop_feed", .info, "Where the exporter's snapshots come from (/proc, a captured tree, demo, replay) and whether netlink was used.")
        feed.add([("source", source), ("proc_root", s.source.procRoot), ("netlink", s.source.netlink.isUsed ? "used" : "unused")], 1)
        out.append(feed)
        var taken = MetricFamily("ipvstop_snapshot_timestamp_seconds", .gauge, "When the snapshot served was taken (services and real servers), Unix time.")
        taken.add([], s.takenAt.timeIntervalSince1970)
        out.append(taken)
        var warnings = MetricFamily("ipvstop_snapshot_warnings", .gauge, "Degradations the snapshot reports (skipped lines, a failed poll), in words in the logs and snapshot --json.")
        warnings.add([], s.source.warnings.count)
        out.append(warnings)

        var ipvs = MetricFamily("ipvstop_ipvs", .info, "The kernel's IPVS version.")
        var tableSize = MetricFamily("ipvstop_ipvs_table_size", .gauge, "Buckets of the kernel's connection hash table (the header's size=: ip_vs_conn_tab_bits up to 6.x; on 7.1+ see ipvstop_ipvs_hash_buckets).")
        if let i = s.info {
            ipvs.add([("version", i.version)], 1)
            tableSize.add([], i.tableSize)
        }
        out += [ipvs, tableSize]
        // node_exporter's node_uname_info label names, so that the two join on a dashboard.
        var host = MetricFamily("ipvstop_host", .info, "The director's host name and kernel release (uname -n, uname -r; a capture's as it stored them).")
        if let h = s.host, h.hostname != nil || h.kernelRelease != nil {
            host.add([("nodename", h.hostname ?? ""), ("release", h.kernelRelease ?? "")], 1)
        }
        out.append(host)

        servicesAndBackends(s, r, &out)
        out += table ?? tableFamilies(s, r, settings: settings)
        findings(r, &out)
        kernel(s, &out)
        return out
    }

    /// The families that change only when the connection table is read again (its counts,
    /// the top clients and groups): `ExporterState` keeps them from one snapshot to the next
    /// while the table's read time is the same, since at 10^6 entries they are most of the
    /// cost of an exposition.
    public static func tableFamilies(_ s: Snapshot, _ r: AnalysisResult, settings: MetricsSettings) -> [MetricFamily] {
        var out: [MetricFamily] = []
        connectionTable(s, &out)
        clientsAndGroups(s, r, settings, &out)
        return out
    }

    // MARK: - Services and real servers

    static func servicesAndBackends(_ s: Snapshot, _ r: AnalysisResult, _ out: inout [MetricFamily]) {
        var svcInfo = MetricFamily("ipvstop_service", .info, "A virtual service: its scheduler, flags and persistence engine.")
        var svcTimeout = MetricFamily("ipvstop_service_persistence_timeout_seconds", .gauge, "A persistent service's persistence timeout (absent when not persistent, or when the kernel's HZ is unknown).")
        var svcActive = MetricFamily("ipvstop_service_connections_active", .gauge, "ActiveConn summed over the service's real servers.")
        var svcInactive = MetricFamily("ipvstop_service_connections_inactive", .gauge, "InActConn summed over the service's real servers.")
        var svcPersistent = MetricFamily("ipvstop_service_connections_persistent", .gauge, "PersistConn (templates) summed over the service's real servers (netlink only).")
        var svcBackends = MetricFamily("ipvstop_service_backends", .gauge, "Real servers of the service, and those with a weight above 0 (state=\"up\").")
        var svcStats = StatsFamilies("ipvstop_service", "the virtual service")

        var beInfo = MetricFamily("ipvstop_backend", .info, "A real server: its forwarding method (masq, route, tunnel, local, bypass).")
        var beWeight = MetricFamily("ipvstop_backend_weight", .gauge, "The real server's weight (0: quiescent).")
        var beActive = MetricFamily("ipvstop_backend_connections_active", .gauge, "ActiveConn: the real server's connections in ESTABLISHED (TCP) or the protocol's active states.")
        var beInactive = MetricFamily("ipvstop_backend_connections_inactive", .gauge, "InActConn: the real server's other connections.")
        var bePersistent = MetricFamily("ipvstop_backend_connections_persistent", .gauge, "PersistConn: persistence templates pointing at the real server, as the kernel counts them (netlink only).")
        var beUpper = MetricFamily("ipvstop_backend_threshold_upper", .gauge, "The real server's upper connection threshold (0: none; netlink only).")
        var beLower = MetricFamily("ipvstop_backend_threshold_lower", .gauge, "The real server's lower connection threshold (0: none; netlink only).")
        var beTemplates = MetricFamily("ipvstop_backend_templates", .gauge, "Persistence templates in the connection table pointing at the real server.")
        var beStats = StatsFamilies("ipvstop_backend", "the real server")

        let agg = r.aggregates
        for (si, svc) in s.services.enumerated() {
            let sl = serviceLabels(svc)
            var info = sl + [("scheduler", svc.scheduler), ("flags", svc.flags.names(scheduler: svc.scheduler).joined(separator: ","))]
            info.append(("pe_name", svc.persistenceEngine ?? ""))
            svcInfo.add(info, 1)
            if let t = svc.persistence?.timeoutSeconds { svcTimeout.add(sl, t) }
            svcActive.add(sl, UInt64(svc.activeConns))
            svcInactive.add(sl, UInt64(svc.inactiveConns))
            if let p = svc.persistentConns { svcPersistent.add(sl, UInt64(p)) }
            svcBackends.add(sl + [("state", "all")], svc.realServers.count)
            svcBackends.add(sl + [("state", "up")], svc.realServers.filter { $0.weight > 0 }.count)
            svcStats.add(sl, svc.stats, svc.rates)
            for (ri, rs) in svc.realServers.enumerated() {
                let bl = backendLabels(sl, rs)
                beInfo.add(bl + [("forward", rs.forward.rawValue)], 1)
                beWeight.add(bl, rs.weight)
                beActive.add(bl, rs.activeConns)
                beInactive.add(bl, rs.inactiveConns)
                if let p = rs.persistentConns { bePersistent.add(bl, p) }
                if let u = rs.upperThreshold { beUpper.add(bl, u) }
                if let l = rs.lowerThreshold { beLower.add(bl, l) }
                if agg.hasTable {
                    let d = agg.liveDestination[safe: si]?[safe: ri] ?? nil
                    beTemplates.add(bl, d.map { agg.destinations[$0].templates } ?? 0)
                }
                beStats.add(bl, rs.stats, rs.rates)
            }
        }
        out += [svcInfo, svcTimeout, svcActive, svcInactive, svcPersistent, svcBackends]
        out += svcStats.families
        out += [beInfo, beWeight, beActive, beInactive, bePersistent, beUpper, beLower, beTemplates]
        out += beStats.families
    }

    /// The kernel's 64-bit counters and its rate estimates, for services, real servers or
    /// the whole director.
    struct StatsFamilies {
        var conns, inPackets, outPackets, inBytes, outBytes: MetricFamily
        var cps, inPPS, outPPS, inBPS, outBPS: MetricFamily

        init(_ prefix: String, _ what: String) {
            conns = MetricFamily(prefix + "_connections", .counter, "Connections scheduled to \(what): the kernel's 64-bit counter, from when it was added (or IPVS loaded); netlink, or ip_vs_stats for the whole director.")
            inPackets = MetricFamily(prefix + "_incoming_packets", .counter, "Packets from clients to \(what) (64-bit counter).")
            outPackets = MetricFamily(prefix + "_outgoing_packets", .counter, "Packets from \(what) to clients (64-bit counter; 0 with direct routing and tunnelling, which the director never sees).")
            inBytes = MetricFamily(prefix + "_incoming_bytes", .counter, "Bytes from clients to \(what) (64-bit counter).")
            outBytes = MetricFamily(prefix + "_outgoing_bytes", .counter, "Bytes from \(what) to clients (64-bit counter).")
            cps = MetricFamily(prefix + "_connection_rate", .gauge, "The kernel's estimate of new connections per second to \(what) (2-second estimator, smoothed).")
            inPPS = MetricFamily(prefix + "_incoming_packet_rate", .gauge, "The kernel's estimate of incoming packets per second for \(what).")
            outPPS = MetricFamily(prefix + "_outgoing_packet_rate", .gauge, "The kernel's estimate of outgoing packets per second for \(what).")
            inBPS = MetricFamily(prefix + "_incoming_byte_rate", .gauge, "The kernel's estimate of incoming bytes per second for \(what).")
            outBPS = MetricFamily(prefix + "_outgoing_byte_rate", .gauge, "The kernel's estimate of outgoing bytes per second for \(what).")
        }

        mutating func add(_ labels: [(String, String)], _ stats: TrafficStats?, _ rates: TrafficRates?) {
            if let st = stats {
                conns.add(labels, st.conns)
                inPackets.add(labels, st.inPackets)
                outPackets.add(labels, st.outPackets)
                inBytes.add(labels, st.inBytes)
                outBytes.add(labels, st.outBytes)
            }
            if let r = rates {
                cps.add(labels, r.cps)
                inPPS.add(labels, r.inPPS)
                outPPS.add(labels, r.outPPS)
                inBPS.add(labels, r.inBPS)
                outBPS.add(labels, r.outBPS)
            }
        }

        var families: [MetricFamily] { [conns, inPackets, outPackets, inBytes, outBytes, cps, inPPS, outPPS, inBPS, outBPS] }
    }

    // MARK: - The connection table

    static func connectionTable(_ s: Snapshot, _ out: inout [MetricFamily]) {
        var read = MetricFamily("ipvstop_connection_table_read_timestamp_seconds", .gauge, "When the connection table served was read, Unix time (the pacer reads it as often as its cost allows; a scrape never reads it).")
        var entries = MetricFamily("ipvstop_connection_table_entries", .gauge, "Connection entries in the table that are not persistence templates.")
        var templates = MetricFamily("ipvstop_connection_table_templates", .gauge, "Persistence templates in the table.")
        var byState = MetricFamily("ipvstop_connection_table_entries_by_state", .gauge, "Connection entries (not templates) by the kernel's state name and protocol.")
        var byProto = MetricFamily("ipvstop_connection_table_entries_by_protocol", .gauge, "Connection entries (not templates) by protocol.")
        var tplState = MetricFamily("ipvstop_connection_table_templates_by_state", .gauge, "Persistence templates by state (NONE, ASSURED...).")
        var cost = MetricFamily("ipvstop_connection_table_read_duration_seconds", .gauge, "Wall time of the last read of the connection table (the kernel's walk included).")
        var cpu = MetricFamily("ipvstop_connection_table_read_cpu_seconds", .gauge, "CPU time (user and system) of the last read of the connection table.")
        var bytes = MetricFamily("ipvstop_connection_table_read_bytes", .gauge, "Bytes of text read in the last read of the connection table.")
        var skipped = MetricFamily("ipvstop_connection_table_skipped_lines", .gauge, "Lines of the last read that could not be parsed (a number shown whole or not at all).")
        var memory = MetricFamily("ipvstop_connection_table_memory_bytes", .gauge, "Kernel memory held by the entries: entries times slabinfo's ip_vs_conn object size (root only).")
        if let t = s.connections {
            read.add([], t.readAt.timeIntervalSince1970)
            entries.add([], t.counts.connections)
            templates.add([], t.counts.templates)
            // By the one-byte codes (a dictionary update per entry costs ~0.5 s at 10^6).
            var counts = [Int](repeating: 0, count: 256 * 256)
            for e in t.entries where !e.isTemplate { counts[Int(e.state.rawValue) << 8 | Int(e.proto.rawValue)] += 1 }
            var rows: [(state: String, proto: String, n: Int)] = []
            for (i, n) in counts.enumerated() where n > 0 {
                rows.append((ConnectionState(rawValue: UInt8(i >> 8)).name, IPProtocolNumber(rawValue: UInt8(i & 0xFF)).kernelName, n))
            }
            for row in rows.sorted(by: { ($0.state, $0.proto) < ($1.state, $1.proto) }) { byState.add([("state", row.state), ("proto", row.proto)], row.n) }
            for (p, n) in t.counts.byProtocol.sorted(by: { $0.key < $1.key }) { byProto.add([("proto", p.kernelName)], n) }
            for (st, n) in t.counts.templatesByState.sorted(by: { $0.key.name < $1.key.name }) { tplState.add([("state", st.name)], n) }
            cost.add([], t.cost.seconds)
            cpu.add([], t.cost.cpuSeconds)
            bytes.add([], t.cost.bytes)
            skipped.add([], t.skipped.total)
        }
        if let m = s.connectionMemoryBytes { memory.add([], m) }
        out += [read, entries, templates, byState, byProto, tplState, cost, cpu, bytes, skipped, memory]

        // Whether the read is the whole table, and how the reads are paced.
        var partial = MetricFamily("ipvstop_connection_table_partial", .gauge, "1 when the connection table served is partial (the read ended early, or repeated entries, and a retry within the read budget did not give a whole one): every figure from the table then counts only the entries read; 0 when checked whole against the kernel's count (ip_vs_status Conns, else the real servers' counters). Absent when nothing could be compared.")
        var expected = MetricFamily("ipvstop_connection_table_expected_entries", .gauge, "The count the table read was checked against (ip_vs_status Conns, or the real servers' counters).")
        var attempts = MetricFamily("ipvstop_connection_table_read_attempts", .gauge, "Reads of the table the last result took (more than 1 when a partial read was retried).")
        var paced = MetricFamily("ipvstop_connection_table_paced", .gauge, "1 when the table's reads are paced by their measured cost, 0 when the table is read every poll interval (its last read was cheap).")
        var delay = MetricFamily("ipvstop_connection_table_read_interval_seconds", .gauge, "Seconds from the last read of the table to the next, as the pacer decided from the read's cost.")
        if let c = s.connections?.completeness {
            if c.verdict != .unchecked { partial.add([], c.isPartial ? 1 : 0) }
            if let e = c.expected { expected.add([], e) }
            attempts.add([], c.attempts)
        }
        if let p = s.tablePacing {
            paced.add([], p.mode == .paced ? 1 : 0)
            delay.add([], p.delay)
        }
        out += [partial, expected, attempts, paced, delay]
    }

    // MARK: - Clients and persistence groups, bounded

    static func clientsAndGroups(_ s: Snapshot, _ r: AnalysisResult, _ settings: MetricsSettings, _ out: inout [MetricFamily]) {
        var clients = MetricFamily("ipvstop_backend_top_client_connections", .gauge, "Connections (not templates) of the busiest clients of each real server, at most --top-clients per real server; rank 1 is the busiest.")
        var groups = MetricFamily("ipvstop_backend_top_group_connections", .gauge, "Connections of the busiest persistence groups (clients under the service's persistence netmask) of each real server, at most --top-groups per real server.")
        let agg = r.aggregates
        if agg.hasTable {
            // destination -> (service, real server) for live destinations.
            var labels: [Int: [(String, String)]] = [:]
            for (si, svc) in s.services.enumerated() {
                let sl = serviceLabels(svc)
                for (ri, rs) in svc.realServers.enumerated() {
                    if let d = agg.liveDestination[safe: si]?[safe: ri] ?? nil { labels[d] = backendLabels(sl, rs) }
                }
            }
            if settings.topClients > 0 {
                var best: [Int: [(client: Int, n: Int)]] = [:]
                for l in agg.loadTotals() where labels[l.destination] != nil {
                    Self.keepTop(&best[l.destination, default: []], (l.client, l.connections), settings.topClients) {
                        $0.n != $1.n ? $0.n > $1.n : agg.clients.address($0.client) < agg.clients.address($1.client)
                    }
                }
                for d in best.keys.sorted() {
                    for (rank, c) in best[d]!.enumerated() {
                        clients.add(labels[d]! + [("client", agg.clients.address(c.client).description), ("rank", "\(rank + 1)")], c.n)
                    }
                }
            }
            if settings.topGroups > 0 {
                var best: [Int: [(group: Int, n: Int)]] = [:]
                for (gi, g) in agg.groups.enumerated() {
                    for l in agg.loads(of: g) where labels[l.destination] != nil {
                        Self.keepTop(&best[l.destination, default: []], (gi, l.connections.total), settings.topGroups) {
                            $0.n != $1.n ? $0.n > $1.n : agg.groups[$0.group].address < agg.groups[$1.group].address
                        }
                    }
                }
                for d in best.keys.sorted() {
                    for (rank, g) in best[d]!.enumerated() {
                        groups.add(labels[d]! + [("group", agg.groups[g.group].name), ("rank", "\(rank + 1)")], g.n)
                    }
                }
            }
        }
        out += [clients, groups]
    }

    /// Keeps the `n` first of `list` by `before` (sorted), adding `x`.
    static func keepTop<T>(_ list: inout [T], _ x: T, _ n: Int, by before: (T, T) -> Bool) {
        if list.count == n, let last = list.last, !before(x, last) { return }
        let i = list.firstIndex { before(x, $0) } ?? list.count
        list.insert(x, at: i)
        if list.count > n { list.removeLast() }
    }

    // MARK: - Findings

    static func findings(_ r: AnalysisResult, _ out: inout [MetricFamily]) {
        var finding = MetricFamily("ipvstop_finding", .gauge, "A raised finding (value 1) with its kind, severity, subject and stable key; it disappears when the finding clears.")
        var raised = MetricFamily("ipvstop_finding_raised_timestamp_seconds", .gauge, "When the finding's condition was first seen (it was raised after its hold time), Unix time.")
        var bySeverity = MetricFamily("ipvstop_findings", .gauge, "Raised findings by severity (0 when none), and those still counting their hysteresis (severity=\"pending\").")
        for f in r.findings {
            let l = [("kind", f.kind.rawValue), ("severity", f.severity.description), ("subject", f.subject), ("key", f.key)]
            finding.add(l, 1)
            raised.add(l, f.since.timeIntervalSince1970)
        }
        for sev in Severity.allCases { bySeverity.add([("severity", sev.description)], r.findings.filter { $0.severity == sev }.count) }
        bySeverity.add([("severity", "pending")], r.pending.count)
        out += [finding, raised, bySeverity]
    }

    // MARK: - The kernel: global counters, timeouts, sysctls, sync daemons

    static func kernel(_ s: Snapshot, _ out: inout [MetricFamily]) {
        var global = StatsFamilies("ipvstop_ipvs", "the whole director")
        if let g = s.global { global.add([], g.totals, g.rates) }
        out += global.families
        var timeouts = MetricFamily("ipvstop_ipvs_timeout_seconds", .gauge, "The kernel's connection timeouts (ipvsadm --timeout: tcp, tcp_fin, udp; netlink only).")
        if let t = s.timeouts {
            timeouts.add([("timeout", "tcp")], t.tcp)
            timeouts.add([("timeout", "tcp_fin")], t.tcpFin)
            timeouts.add([("timeout", "udp")], t.udp)
        }
        out.append(timeouts)
        var sysctl = MetricFamily("ipvstop_sysctl", .gauge, "The integer IPVS sysctls (/proc/sys/net/ipv4/vs/NAME), e.g. expire_nodest_conn, expire_quiescent_template, amemthresh, drop_entry, conn_reuse_mode; on 7.1+ conn_lfactor and svc_lfactor, the load factors the resizable tables grow by.")
        for c in s.sysctls.sorted(by: { $0.name < $1.name }) {
            if let v = c.integerValue { sysctl.add([("name", c.name)], Double(v)) }
        }
        out.append(sysctl)
        var sync = MetricFamily("ipvstop_sync_daemon", .info, "A running connection-sync daemon (ipvsadm --list --daemon): its state, interface and sync id.")
        for d in s.syncDaemons ?? [] {
            sync.add([("state", d.role.rawValue), ("mcast_interface", d.multicastInterface), ("syncid", "\(d.syncID)")], 1)
        }
        out.append(sync)
        kernelStatus(s, &out)
    }

    /// /proc/net/ip_vs_status (7.1 and later, root only).
    static func kernelStatus(_ s: Snapshot, _ out: inout [MetricFamily]) {
        var available = MetricFamily("ipvstop_ipvs_status_available", .gauge, "1 when /proc/net/ip_vs_status (kernels 7.1 and later) was read, 0 when the kernel has it but it could not be read (it is root's only). Absent on earlier kernels.")
        var conns = MetricFamily("ipvstop_ipvs_connection_entries", .gauge, "The kernel's count of connection entries, templates included (ip_vs_status Conns).")
        var buckets = MetricFamily("ipvstop_ipvs_hash_buckets", .gauge, "Buckets of the kernel's resizable hash tables in use now (table=connection|service; ip_vs_status). On these kernels ipvstop_ipvs_table_size is the header's size=, not the table the lookups use.")
        var lfactor = MetricFamily("ipvstop_ipvs_hash_load_factor_exponent", .gauge, "The load factor a table was sized with, as the kernel's shift count: it grows past 2^value entries a bucket (conn_lfactor, svc_lfactor).")
        var empty = MetricFamily("ipvstop_ipvs_hash_empty_buckets", .gauge, "Empty buckets of a table, as the kernel counted them.")
        var chains = MetricFamily("ipvstop_ipvs_hash_buckets_by_chain_length", .gauge, "Buckets of a table by the length of their chain (length=\"7\" is 7 or more); lengths the kernel did not print have no series.")
        var threads = MetricFamily("ipvstop_ipvs_estimator_threads", .gauge, "Rate estimator kernel threads in use (Stats thread slots).")
        var threadsMax = MetricFamily("ipvstop_ipvs_estimator_threads_max", .gauge, "The most rate estimator kernel threads allowed.")
        switch s.kernelStatus {
        case .read(let st):
            available.add([], 1)
            if let n = st.conns { conns.add([], n) }
            for (name, t) in [("connection", st.connTable), ("service", st.serviceTable)] {
                guard let t else { continue }
                buckets.add([("table", name)], t.buckets)
                lfactor.add([("table", name)], t.loadFactor)
                if let e = t.emptyBuckets { empty.add([("table", name)], e) }
                for (len, n) in t.bucketsByLength.sorted(by: { $0.key < $1.key }) { chains.add([("table", name), ("length", "\(len)")], n) }
            }
            if let n = st.statsThreadSlots { threads.add([], n) }
            if let n = st.statsThreadSlotsMax { threadsMax.add([], n) }
        case .unavailable:
            available.add([], 0)
        case .absent:
            break
        }
        out += [available, conns, buckets, lfactor, empty, chains, threads, threadsMax]
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
