import ArgumentParser
import Dispatch
import FoundationEssentials
import Glibc
import IPVSExporter
import IPVSFeed
import IPVSAnalysis

/// `ipvstop exporter`: the director for Prometheus (METRICS.md lists every metric).
struct ExporterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exporter",
        abstract: "Serve the director to Prometheus: /metrics in the text format (OpenMetrics when asked), findings included.",
        discussion: """
            A scrape serves the last analysed snapshot and says how old it is (ipvstop_snapshot_age_seconds); it never \
            reads the kernel: services are polled every --interval, the connection table as often as its cost allows. \
            The default listens on loopback only: the metrics name clients, and a director's public addresses are its \
            virtual services; give the management address to let Prometheus in (--listen 10.1.2.3:\(ExporterServer.defaultPort)).
            Every metric: METRICS.md. Alerting rules: Packaging/prometheus/.
            """)

    @OptionGroup var source: SourceOptions
    @OptionGroup var analysis: AnalysisOptions

    @Option(help: ArgumentHelp("Address and port to listen on: HOST:PORT, [V6]:PORT, or :PORT for every address.", valueName: "ADDR"))
    var listen: String = "127.0.0.1:\(ExporterServer.defaultPort)"

    @Option(help: ArgumentHelp("Seconds between polls of services and real servers (the connection table is read as often as its cost allows).", valueName: "S"))
    var interval: Double = 1

    @Option(name: .customLong("top-clients"), help: ArgumentHelp("Busiest clients exported per real server (0: none): the series count never grows with the clients beyond this.", valueName: "N"))
    var topClients: Int = 5

    @Option(name: .customLong("top-groups"), help: ArgumentHelp("Busiest persistence groups exported per real server (0: none).", valueName: "N"))
    var topGroups: Int = 5

    @Option(name: .customLong("max-connections"), help: ArgumentHelp("HTTP connections open at once at most; more are closed as they arrive.", valueName: "N"))
    var maxConnections: Int = 64

    func validate() throws {
        if ServerSettings.parse(listen: listen) == nil { throw ValidationError("--listen \(listen): expected HOST:PORT, [V6]:PORT or :PORT") }
        if !(0.05...3600).contains(interval) { throw ValidationError("--interval must be between 0.05 and 3600 seconds") }
        if !(0...1000).contains(topClients) || !(0...1000).contains(topGroups) { throw ValidationError("--top-clients and --top-groups must be between 0 and 1000") }
        if !(1...10_000).contains(maxConnections) { throw ValidationError("--max-connections must be between 1 and 10000") }
    }

    func run() throws {
        if analysis.listThresholds {
            print(try analysis.thresholdTable(), terminator: "")
            return
        }
        let log: @Sendable (String) -> Void = { msg in
            writeStandardError("ipvstop exporter: " + msg + "\n")
        }
        let feed: FeedLoop
        do {
            // Fails at once, with the reader's message, when there is no IPVS to serve.
            feed = try FeedLoop(spec: source.spec, interval: interval, settings: try analysis.settings())
        } catch let e as FeedError {
            fail(e.description)
        }
        if case .director = source.spec { WorkingMemory.keepBetweenPolls() }
        let state = ExporterState(settings: MetricsSettings(topClients: topClients, topGroups: topGroups), source: source.spec.label, clock: { feed.now() })
        let (host, port) = ServerSettings.parse(listen: listen)!
        let server = ExporterServer(settings: ServerSettings(host: host, port: port, maxConnections: maxConnections), state: state)
        let bound: String
        do { bound = try server.start() } catch { fail("cannot listen on \(listen): \(error)") }
        feed.start(name: "ipvstop-exporter-feed", log: log, idle: { state.refresh() }) { s, r in state.publish(s, r) }
        log("serving \(feed.label) on http://\(bound)/metrics")

        // SIGTERM (systemd's stop) and SIGINT: stop serving, exit 0. SIGPIPE: a scraper that
        // goes away mid-answer must not kill the exporter.
        signal(SIGPIPE, SIG_IGN)
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                log("signal \(sig): stopping")
                feed.stop()
                server.stop()
            }
            s.resume()
            sources.append(s)
        }
        server.wait()
        log("stopped")
        _ = sources
    }
}
