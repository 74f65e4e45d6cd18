import Foundation
import IPVSAnalysis
import IPVSDemo
import IPVSModel
import Testing
@testable import IPVSExporter

@Suite struct ExpositionTests {
    @Test func negotiationPrefersOpenMetricsOnlyWhenAsked() {
        #expect(ExpositionFormat.negotiate(accept: nil) == .text)
        #expect(ExpositionFormat.negotiate(accept: "*/*") == .text)
        #expect(ExpositionFormat.negotiate(accept: "text/plain;version=0.0.4") == .text)
        // Prometheus 2.x's own Accept header.
        #expect(ExpositionFormat.negotiate(accept: "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1") == .openMetrics)
        #expect(ExpositionFormat.negotiate(accept: "application/openmetrics-text; version=1.0.0") == .openMetrics)
        #expect(ExpositionFormat.negotiate(accept: "application/openmetrics-text;q=0, text/plain") == .text)
        #expect(ExpositionFormat.negotiate(accept: "application/openmetrics-text;version=2.0.0") == .text)
        #expect(ExpositionFormat.negotiate(accept: "text/plain;q=1, application/openmetrics-text;q=0.5") == .text)
    }

    @Test func familiesInBothFormats() {
        var c = MetricFamily("x_bytes", .counter, "Bytes.\nSecond \\ line \"q\".")
        c.add([("a", "v\"1\\\n")], UInt64.max)
        var i = MetricFamily("x_build", .info, "Build.")
        i.add([("version", "1")], 1)
        var g = MetricFamily("x_ratio", .gauge, "Ratio.")
        g.add([], 0.25)
        g.add([("k", "inf")], Double.infinity)
        var text = ""
        Exposition.write([c, i, g], .text, into: &text)
        #expect(text == """
            # HELP x_bytes_total Bytes.\\nSecond \\\\ line "q".
            # TYPE x_bytes_total counter
            x_bytes_total{a="v\\"1\\\\\\n"} 18446744073709551615
            # HELP x_build_info Build.
            # TYPE x_build_info gauge
            x_build_info{version="1"} 1
            # HELP x_ratio Ratio.
            # TYPE x_ratio gauge
            x_ratio 0.25
            x_ratio{k="inf"} +Inf

            """)
        var om = ""
        Exposition.write([c, i], .openMetrics, into: &om)
        #expect(om == """
            # HELP x_bytes Bytes.\\nSecond \\\\ line \\"q\\".
            # TYPE x_bytes counter
            x_bytes_total{a="v\\"1\\\\\\n"} 18446744073709551615
            # HELP x_build Build.
            # TYPE x_build info
            x_build_info{version="1"} 1

            """)
    }

    @Test func everyFamilyHasHelpAndTheScrapeSaysHowOld() throws {
        let d = DemoDirector()
        let analyzer = Analyzer()
        var snap = d.snapshot(at: DemoDirector.warmTime)
        for k in 1...4 { snap = d.snapshot(at: DemoDirector.warmTime + Double(k)); _ = analyzer.update(with: snap) }
        let result = analyzer.update(with: snap)
        let state = ExporterState(source: "demo seed 1")
        #expect(state.scrape(.text).contains("ipvstop_up 0"))
        state.publish(snap, result)
        let body = state.scrape(.text, now: snap.takenAt.addingTimeInterval(2.5))
        #expect(body.contains("ipvstop_up 1\n"))
        #expect(body.contains("ipvstop_snapshot_age_seconds 2.5\n"))
        let helps = body.split(separator: "\n").filter { $0.hasPrefix("# HELP ") }.count
        let types = body.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.count
        #expect(helps == types && helps > 60)
        // Every finding as a series with kind, severity, subject and key.
        for f in result.findings {
            #expect(body.contains("ipvstop_finding{kind=\"\(f.kind.rawValue)\",severity=\"\(f.severity)\""))
        }
        #expect(!result.findings.isEmpty)
        // fwmark and IPv6 services get node_exporter's labels, told apart by family.
        #expect(body.contains("ipvstop_backend_weight{local_address=\"\",local_port=\"0\",remote_address="))
        #expect(body.contains("proto=\"FWM\",local_mark=\"1\",family=\"ipv4\""))
        #expect(body.contains("local_address=\"fd00:100::100\""))
        let om = state.scrape(.openMetrics)
        #expect(om.hasSuffix("# EOF\n"))
        #expect(om.components(separatedBy: "# EOF").count == 2)
    }

    /// A service's PersistConn is the model's sum (`VirtualService.persistentConns`), as the
    /// JSON and the subagent give it: none for a service without real servers whose source
    /// gave no netlink figures (a sum over nothing is not a 0 the kernel said).
    @Test func servicePersistConnIsTheModels() {
        let d = DemoDirector()
        var snap = d.snapshot(at: DemoDirector.warmTime)
        var empty = snap.services[0]
        empty.key = .fwmark(999, .ipv4)
        empty.realServers = []
        empty.stats = nil
        snap.services.append(empty)
        var out: [MetricFamily] = []
        Metrics.servicesAndBackends(snap, Analysis.analyze(snap), &out)
        let persistent = out.first { $0.name == "ipvstop_service_connections_persistent" }
        let want = snap.services.compactMap { $0.persistentConns.map(Double.init) }
        #expect(persistent?.samples.map(\.value) == want)
        #expect(want.count == snap.services.count - 1 && want.contains { $0 > 0 })
    }

    /// ip_vs_status (7.1+), the table read's completeness and its pacing, as gauges.
    @Test func kernelTablesCompletenessAndPacing() {
        let d = DemoDirector()
        var snap = d.snapshot(at: DemoDirector.warmTime)
        var st = IPVSStatus()
        st.conns = 380
        st.connTable = HashTableStatus(buckets: 4096, bits: 12, loadFactor: -4, emptyBuckets: 3428, bucketsByLength: [1: 614, 2: 53, 3: 1])
        st.serviceTable = HashTableStatus(buckets: 128, bits: 7, loadFactor: -3)
        st.statsThreadSlots = 1
        st.statsThreadSlotsMax = 8
        snap.kernelStatus = .read(st)
        snap.connections!.completeness = TableCompleteness(verdict: .partial, basis: .kernelCount, entriesRead: 150, expected: 380, tolerance: 19, attempts: 3, detail: "cut")
        snap.tablePacing = TablePacing(mode: .paced, lastCost: 2.41, delay: 48.2, share: 0.05)
        let result = Analyzer().update(with: snap)
        let state = ExporterState(source: "test")
        state.publish(snap, result)
        let body = state.scrape(.text, now: snap.takenAt)
        for line in [
            "ipvstop_ipvs_status_available 1", "ipvstop_ipvs_connection_entries 380",
            "ipvstop_ipvs_hash_buckets{table=\"connection\"} 4096", "ipvstop_ipvs_hash_buckets{table=\"service\"} 128",
            "ipvstop_ipvs_hash_load_factor_exponent{table=\"connection\"} -4", "ipvstop_ipvs_hash_empty_buckets{table=\"connection\"} 3428",
            "ipvstop_ipvs_hash_buckets_by_chain_length{table=\"connection\",length=\"2\"} 53",
            "ipvstop_ipvs_estimator_threads 1", "ipvstop_ipvs_estimator_threads_max 8",
            "ipvstop_connection_table_partial 1", "ipvstop_connection_table_expected_entries 380",
            "ipvstop_connection_table_read_attempts 3", "ipvstop_connection_table_paced 1",
            "ipvstop_connection_table_read_interval_seconds 48.2",
        ] {
            #expect(body.contains(line + "\n"), "\(line)")
        }
        // Not readable (not root): said with 0, its figures absent; before 7.1: no series.
        snap.kernelStatus = .unavailable(reason: "permission denied: root only")
        snap.takenAt += 1
        state.publish(snap, result)
        let nobody = state.scrape(.text, now: snap.takenAt)
        #expect(nobody.contains("ipvstop_ipvs_status_available 0\n"))
        #expect(!nobody.contains("\nipvstop_ipvs_connection_entries "))
        snap.kernelStatus = .absent
        snap.takenAt += 1
        state.publish(snap, result)
        #expect(!state.scrape(.text, now: snap.takenAt).contains("\nipvstop_ipvs_status_available "))
    }

    /// The series count does not grow with the number of clients beyond the flags.
    @Test func seriesBoundedByTheTopFlags() {
        func count(scale: Int, clients: Int, groups: Int) -> (total: Int, clients: Int) {
            let s = DemoDirector(scale: scale).snapshot(at: DemoDirector.warmTime)
            let r = Analysis.analyze(s)
            let fams = Metrics.families(s, r, settings: MetricsSettings(topClients: clients, topGroups: groups), source: "t")
            let top = fams.first { $0.name == "ipvstop_backend_top_client_connections" }!.samples.count
            return (fams.reduce(0) { $0 + $1.samples.count }, top)
        }
        let small = count(scale: 1, clients: 5, groups: 5)
        let big = count(scale: 20, clients: 5, groups: 5)
        let realServers = DemoDirector().snapshot(at: DemoDirector.warmTime).services.reduce(0) { $0 + $1.realServers.count }
        #expect(big.clients <= 5 * realServers)
        // 20 times the clients: the same number of series, give or take a state that
        // appears (by_state) or a real server that gains its fifth client.
        #expect(abs(big.total - small.total) <= realServers)
        #expect(count(scale: 1, clients: 0, groups: 0).clients == 0)
        #expect(count(scale: 1, clients: 1, groups: 0).clients <= realServers)
    }

    /// The table's families are made again at their own pace: a table read again at once
    /// is served when the pace allows, by the next snapshot or by `refresh()`, and the
    /// table's read time served is always the one its figures were made of.
    @Test func tableFamiliesArePacedByTheirCost() throws {
        let d = DemoDirector()
        let a = d.snapshot(at: DemoDirector.warmTime), b = d.snapshot(at: DemoDirector.warmTime + 1)
        let readA = try #require(a.connections?.readAt), readB = try #require(b.connections?.readAt)
        #expect(readA != readB)
        let state = ExporterState(source: "t")
        func servedRead() -> String? {
            state.scrape(.text).split(separator: "\n").first { $0.hasPrefix("ipvstop_connection_table_read_timestamp_seconds ") }.map(String.init)
        }
        state.publish(a, Analysis.analyze(a))
        let first = servedRead()
        #expect(first == "ipvstop_connection_table_read_timestamp_seconds \(Exposition.number(.init(labels: [], value: readA.timeIntervalSince1970, exact: nil)))")
        state.publish(b, Analysis.analyze(b))
        // Within the pace (the first cost some ms, so the next may come ~50 times later).
        let second = servedRead()
        let deadline = Date().addingTimeInterval(60)
        let wantB = "ipvstop_connection_table_read_timestamp_seconds \(Exposition.number(.init(labels: [], value: readB.timeIntervalSince1970, exact: nil)))"
        while servedRead() != wantB && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
            state.refresh()
        }
        #expect(servedRead() == "ipvstop_connection_table_read_timestamp_seconds \(Exposition.number(.init(labels: [], value: readB.timeIntervalSince1970, exact: nil)))")
        #expect(second == first || second == servedRead())
    }

    @Test func listenAddresses() {
        #expect(ServerSettings.parse(listen: "127.0.0.1:18440")! == ("127.0.0.1", 18440))
        #expect(ServerSettings.parse(listen: ":9999")! == ("::", 9999))
        #expect(ServerSettings.parse(listen: "[::1]:80")! == ("::1", 80))
        #expect(ServerSettings.parse(listen: "::1:80") == nil)
        #expect(ServerSettings.parse(listen: "host:0") == nil)
        #expect(ServerSettings.parse(listen: "host:65536") == nil)
        #expect(ServerSettings.parse(listen: "nohost") == nil)
    }
}
