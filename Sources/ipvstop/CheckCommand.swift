import ArgumentParser
import FoundationEssentials
import Glibc
import IPVSAnalysis
import IPVSFeed
import IPVSJSON
import IPVSModel

/// Threshold overrides, for every command that shows findings (`--threshold NAME=VALUE`).
struct AnalysisOptions: ParsableArguments {
    @Option(name: .customLong("threshold"), help: ArgumentHelp(
        "Override a finding threshold, e.g. rogue_min_conns=50 or imbalance_hold=2m (repeatable; see --list-thresholds).",
        valueName: "NAME=VALUE"))
    var thresholds: [String] = []

    @Flag(name: .customLong("list-thresholds"), help: "List every threshold with its default and meaning, then exit.")
    var listThresholds = false

    func validate() throws {
        do { _ = try settings() } catch let e as AnalysisSettings.OverrideError { throw ValidationError(e.description) }
    }

    func settings() throws -> AnalysisSettings {
        var s = AnalysisSettings()
        for t in thresholds { try s.apply(override: t) }
        return s
    }

    /// The table `--list-thresholds` prints: name, value (default unless overridden), unit,
    /// meaning.
    func thresholdTable() throws -> String {
        let s = try settings(), d = AnalysisSettings()
        let ps = AnalysisSettings.parameters
        let w = ps.map(\.name.count).max() ?? 0
        var out = Self.padded("threshold", w) + "  value        default      meaning\n"
        for p in ps {
            out += Self.padded(p.name, w) + "  "
            out += Self.padded(p.text(in: s), 12) + " "
            out += Self.padded(p.text(in: d), 12) + " " + p.help + "\n"
        }
        return out
    }

    /// `s` cut or padded with spaces to `n` UTF-16 units (NSString's `padding(toLength:)`).
    static func padded(_ s: String, _ n: Int) -> String {
        let u = s.utf16.count
        return u >= n ? String(decoding: Array(s.utf16.prefix(n)), as: UTF16.self) : s + String(repeating: " ", count: n - u)
    }
}

/// `ipvstop check`: judge the director and exit by the worst finding, as a monitoring plugin
/// (the Monitoring Plugins guidelines, as Nagios and Icinga run them): 0 OK (no finding, or
/// info only), 1 WARNING, 2 CRITICAL, 3 UNKNOWN when it cannot judge (no IPVS, an unreadable
/// or empty tree, a bad option), never CRITICAL for its own trouble. The first line names the
/// worst finding and carries the performance data after `|`.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Judge the director once (or over a while): a monitoring plugin, exit 0/1/2/3 (OK/WARNING/CRITICAL/UNKNOWN).",
        discussion: """
            Findings: service_down, rogue_client, imbalance, quiescent_fed, dead_destination, template_overstay, \
            table_pressure, sync. One poll reports every condition the snapshot shows at once; it cannot \
            see new connections (quiescent_fed) nor hold a condition for its hold time. --for DURATION polls \
            for that long with the analyzer's hysteresis (hold times capped at half the duration); with \
            --replay, the recording's frames up to --start-frame are analysed in order instead.
            Output: 'IPVS STATUS - worst finding; counts | perfdata' on the first line, the findings below. \
            Perfdata: active and inactive connections per virtual service, connection table entries, \
            templates and the table's age, findings by severity. Exit 3 (UNKNOWN) when the director \
            cannot be judged: no IPVS, an unreadable or empty tree, a bad option.
            """)

    @OptionGroup var source: SourceOptions
    @OptionGroup var analysis: AnalysisOptions

    @Option(name: .customLong("for"), help: ArgumentHelp(
        "Watch for this long (10s, 2m) with hysteresis instead of one poll.", valueName: "DURATION"))
    var duration: String?

    @Option(help: ArgumentHelp("Seconds between polls with --for.", valueName: "SECONDS"))
    var interval: Double = 1

    @Flag(help: "Print the findings as JSON.")
    var json = false

    @Flag(name: .shortAndLong, help: "Also print each finding's evidence and what could not be judged.")
    var verbose = false

    func validate() throws {
        if let duration, AnalysisSettings.seconds(duration) == nil {
            throw ValidationError("--for \(duration): expected a duration such as 10s or 2m")
        }
        if !(interval > 0 && interval <= 3600) { throw ValidationError("--interval must be between 0 and 3600 seconds") }
    }

    func run() throws {
        if analysis.listThresholds {
            print(try analysis.thresholdTable(), terminator: "")
            return
        }
        var settings = try analysis.settings()
        let result: AnalysisResult
        let snap: Snapshot
        if let duration, let seconds = AnalysisSettings.seconds(duration), seconds > 0 {
            settings.imbalanceHoldSeconds = min(settings.imbalanceHoldSeconds, seconds / 2)
            (snap, result) = try watch(source.spec, seconds: seconds, settings: settings)
        } else {
            do {
                snap = try source.spec.snapshot()
            } catch {
                Self.unknown(error.description)
            }
            result = Analysis.analyze(snap, settings: settings)
        }
        // A tree whose net/ip_vs holds nothing (not even the kernel's header) is no director.
        if snap.info == nil && snap.services.isEmpty {
            Self.unknown("\(snap.source.procRoot)/net/ip_vs holds no IPVS table (not even its header): nothing to judge")
        }
        if json {
            print(AnalysisJSON.check(result, tablePartial: snap.connections?.completeness?.isPartial ?? false))
        } else {
            // Subjects and explanations quote names from the files: escaped.
            print(TerminalText.escaped(Self.render(result, snapshot: snap, verbose: verbose)), terminator: "")
            // What the findings rest on was degraded: said beside them, as `snapshot` does.
            warn(snap.source.warnings)
        }
        if let code = Self.exitStatus(result, snap), code != 0 { throw ExitCode(code) }
    }

    /// The plugin's exit status: the findings' worst, but UNKNOWN (3) instead of OK when
    /// the connection table read was partial: "no finding" from part of the table is no
    /// proof that the director is fine.
    static func exitStatus(_ r: AnalysisResult, _ s: Snapshot) -> Int32? {
        r.exitStatus(tablePartial: s.connections?.completeness?.isPartial ?? false)
    }

    /// UNKNOWN (3): the check cannot judge the director. The reason goes on standard
    /// output, where a monitoring system reads a plugin's status line.
    static func unknown(_ message: String) -> Never {
        let lines = message.split(separator: "\n", omittingEmptySubsequences: false)
        print("IPVS UNKNOWN - " + (lines.first.map(String.init) ?? ""))
        for l in lines.dropFirst() { print(l) }
        Glibc.exit(3)
    }

    /// Watches the feed for `seconds` (a director: services every `interval`, the table as
    /// its cost allows) and feeds every new snapshot to one analyzer. A recording's frames
    /// up to the one judged are analysed at once: their recorded time stands for the wait.
    func watch(_ spec: FeedSpec, seconds: Double, settings: AnalysisSettings) throws -> (Snapshot, AnalysisResult) {
        let analyzer = Analyzer(settings: settings)
        if case .replay = spec {
            let frames: [Snapshot]
            do { frames = try spec.replayFrames() } catch { Self.unknown(error.description) }
            var last: AnalysisResult?
            for f in frames { last = analyzer.update(with: f) }
            return (frames[frames.count - 1], last!)
        }
        // Fails fast and clearly when there is no IPVS to watch.
        let feed: any SnapshotSource
        do { feed = try spec.open(interval: interval) } catch { Self.unknown(error.description) }
        defer { feed.stop() }
        let deadline = Date().addingTimeInterval(seconds)
        var last: (Snapshot, AnalysisResult)?
        repeat {
            for s in feed.take() { last = (s, analyzer.update(with: s)) }
            DetachedThread.sleep(seconds: min(interval, max(0.05, deadline.timeIntervalSinceNow)))
        } while Date() < deadline
        for s in feed.take() { last = (s, analyzer.update(with: s)) }
        guard let last else {
            Self.unknown(feed.lastError ?? "no snapshot within \(seconds) s")
        }
        return last
    }

    static func render(_ r: AnalysisResult, snapshot: Snapshot, verbose: Bool) -> String {
        var out = plain(statusLine(r, snapshot)) + " | " + perfdata(r, snapshot) + "\n"
        var long = ""
        for f in r.findings {
            long += "\n\(f.severity.description.uppercased()) \(f.kind.rawValue) #\(f.id): \(f.subject)\n"
            long += "  \(f.explanation)\n"
            long += "  advice: \(f.advice)\n"
            if verbose {
                long += "  key: \(f.key)\n"
                long += "  evidence: " + f.evidence.map { "\($0.name)=\(text($0.value))" }.joined(separator: " ") + "\n"
            }
        }
        if !r.pending.isEmpty {
            long += "\nNot yet raised (hysteresis still counting): " + r.pending.map(\.key).joined(separator: ", ") + "\n"
        }
        if verbose && !r.limitations.isEmpty {
            long += "\nNot judged:\n" + r.limitations.map { "  - \($0)\n" }.joined()
        }
        out += plain(long)
        return out
    }

    /// A monitoring system reads every `|` of a plugin's output as the start of performance
    /// data, in the long output too: the findings' texts (an advice's `ipvsadm -Lcn | grep`)
    /// write it as a broken bar.
    static func plain(_ text: String) -> String { text.replacingEvery("|", with: "¦") }

    /// The plugin's status line: the status, the worst finding by kind and subject, and how
    /// many there are by severity ("IPVS OK - no findings; 8 services, 19 real servers").
    static func statusLine(_ r: AnalysisResult, _ s: Snapshot) -> String {
        let worst = r.worstSeverity
        var status = worst.map { $0 == .info ? "OK" : $0.description.uppercased() } ?? "OK"
        let partial = s.connections?.completeness.flatMap { $0.isPartial ? $0 : nil }
        if partial != nil && status == "OK" { status = "UNKNOWN" }
        var line = "IPVS \(status) - "
        let servers = s.realServerCount
        let size = "\(s.services.count) service\(s.services.count == 1 ? "" : "s"), \(servers) real server\(servers == 1 ? "" : "s")"
        // Findings drawn from degraded input say so where a monitoring system looks; the
        // warnings themselves go to stderr.
        let n = s.source.warnings.count
        var degraded = n > 0 ? "; \(n) input warning\(n == 1 ? "" : "s") (on stderr)" : ""
        if let p = partial {
            degraded = "; connection table PARTIAL (\(p.entriesRead)" + (p.expected.map { " of \($0)" } ?? "") + " entries read)" + degraded
        }
        guard let first = r.findings.first else { return line + "no findings; " + size + degraded }
        line += "\(first.kind.rawValue): \(first.subject)"
        let bySeverity = Severity.allCases.reversed().compactMap { sev -> String? in
            let n = r.findings.filter { $0.severity == sev }.count
            return n > 0 ? "\(n) \(sev)" : nil
        }
        line += "; \(r.findings.count) finding\(r.findings.count == 1 ? "" : "s") (\(bySeverity.joined(separator: ", "))); " + size + degraded
        return line
    }

    /// Performance data, as the Monitoring Plugins guidelines write it
    /// ('label'=value[UOM];warn;crit;min;max): active and inactive connections per virtual
    /// service, the connection table's entries, templates and age, findings by severity. A
    /// figure the snapshot lacks (no table read) is left out, never written as 0.
    static func perfdata(_ r: AnalysisResult, _ s: Snapshot) -> String {
        var items: [String] = []
        func add(_ label: String, _ value: String, _ uom: String = "") {
            items.append("'" + label.replacingEvery("'", with: "''") + "'=" + value + uom + ";;;0")
        }
        for svc in s.services {
            add(svc.id + " active", "\(svc.activeConns)")
            add(svc.id + " inactive", "\(svc.inactiveConns)")
        }
        if let t = s.connections {
            add("entries", "\(t.counts.connections)")
            add("templates", "\(t.counts.templates)")
            add("table age", PrintfNumber.fixed(s.connectionAge ?? 0, decimals: 3), "s")
            if let c = t.completeness, c.verdict != .unchecked { add("table partial", c.isPartial ? "1" : "0") }
        }
        for sev in Severity.allCases.reversed() {
            add("findings \(sev)", "\(r.findings.filter { $0.severity == sev }.count)")
        }
        return items.joined(separator: " ")
    }

    static func text(_ v: Evidence.Value) -> String {
        switch v {
        case .int(let i): "\(i)"
        case .number(let d): PrintfNumber.general(d, significant: 4)
        case .text(let s): s.contains(" ") ? "\"\(s)\"" : s
        case .texts(let a): "[" + a.joined(separator: ", ") + "]"
        case .unknown: "unknown"
        }
    }
}
