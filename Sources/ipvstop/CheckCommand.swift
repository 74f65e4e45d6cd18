import ArgumentParser
import Foundation
import IPVSAnalysis
import IPVSJSON
import IPVSModel
import IPVSReader

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
        var out = "threshold".padding(toLength: w, withPad: " ", startingAt: 0) + "  value        default      meaning\n"
        for p in ps {
            out += p.name.padding(toLength: w, withPad: " ", startingAt: 0) + "  "
            out += p.text(in: s).padding(toLength: 12, withPad: " ", startingAt: 0) + " "
            out += p.text(in: d).padding(toLength: 12, withPad: " ", startingAt: 0) + " " + p.help + "\n"
        }
        return out
    }
}

/// `ipvstop check`: judge the director and exit by the worst finding, for cron jobs and
/// monitoring plugins (0 ok or info only, 1 warning, 2 critical; 2 also when the director
/// cannot be read).
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Judge the director once (or over a while) and exit 0/1/2 by the worst finding (ok/warning/critical).",
        discussion: """
            Findings: rogue_client, imbalance, quiescent_fed, dead_destination, template_overstay, \
            table_pressure, sync. One poll reports every condition the snapshot shows at once; it cannot \
            see new connections (quiescent_fed) nor hold a condition for its hold time. --for DURATION polls \
            for that long with the analyzer's hysteresis (hold times capped at half the duration).
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
        let reader = SnapshotReader(options: source.readerOptions)
        let result: AnalysisResult
        let warnings: [String]
        if let duration, let seconds = AnalysisSettings.seconds(duration), seconds > 0 {
            settings.imbalanceHoldSeconds = min(settings.imbalanceHoldSeconds, seconds / 2)
            (result, warnings) = try watch(reader, seconds: seconds, settings: settings)
        } else {
            let snap: Snapshot
            do {
                snap = try reader.snapshot()
            } catch let e as SnapshotError {
                fail(e.description)
            }
            result = Analysis.analyze(snap, settings: settings)
            warnings = snap.source.warnings
        }
        if json {
            print(AnalysisJSON.check(result))
        } else {
            // Subjects and explanations quote names from the files: escaped.
            print(TerminalText.escaped(Self.render(result, verbose: verbose, inputWarnings: warnings.count)), terminator: "")
            // What the findings rest on was degraded: said beside them, as `snapshot` does.
            warn(warnings)
        }
        if result.exitStatus != 0 { throw ExitCode(result.exitStatus) }
    }

    /// Polls for `seconds` (services every `interval`, the table as its cost allows) and
    /// feeds every new snapshot to one analyzer.
    func watch(_ reader: SnapshotReader, seconds: Double, settings: AnalysisSettings) throws -> (AnalysisResult, [String]) {
        // Fail fast and clearly when there is no IPVS to watch.
        do { _ = try reader.readServices() } catch let e as SnapshotError { fail(e.description) }
        let poller = DirectorPoller(reader: reader, interval: interval)
        let analyzer = Analyzer(settings: settings)
        let deadline = Date().addingTimeInterval(seconds)
        var last: AnalysisResult?
        var lastWarnings: [String] = []
        var lastTaken: Date?
        var lastRead: Date?
        poller.start()
        defer { poller.stop() }
        repeat {
            Thread.sleep(forTimeInterval: min(interval, max(0.05, deadline.timeIntervalSinceNow)))
            guard let s = poller.latest(), s.takenAt != lastTaken || s.connections?.readAt != lastRead else { continue }
            lastTaken = s.takenAt
            lastRead = s.connections?.readAt
            last = analyzer.update(with: s)
            lastWarnings = s.source.warnings
        } while Date() < deadline
        guard let last else {
            fail(poller.lastError ?? "no snapshot within \(seconds) s")
        }
        return (last, lastWarnings)
    }

    /// The findings as text; the first line is the status line. `inputWarnings` (the
    /// snapshot's warnings, printed on stderr) are counted on it: findings drawn from
    /// degraded input are said to be so where a monitoring system looks.
    static func render(_ r: AnalysisResult, verbose: Bool, inputWarnings: Int = 0) -> String {
        let worst = r.worstSeverity
        let status = worst.map { $0 == .info ? "OK" : $0.description.uppercased() } ?? "OK"
        var out = "IPVS \(status) - "
        if r.findings.isEmpty {
            out += "no findings"
        } else {
            let bySeverity = Severity.allCases.reversed().compactMap { sev -> String? in
                let n = r.findings.filter { $0.severity == sev }.count
                return n > 0 ? "\(n) \(sev)" : nil
            }
            out += "\(r.findings.count) finding\(r.findings.count == 1 ? "" : "s") (\(bySeverity.joined(separator: ", ")))"
        }
        if inputWarnings > 0 { out += "; \(inputWarnings) input warning\(inputWarnings == 1 ? "" : "s") (on stderr)" }
        out += "\n"
        for f in r.findings {
            out += "\n\(f.severity.description.uppercased()) \(f.kind.rawValue) #\(f.id): \(f.subject)\n"
            out += "  \(f.explanation)\n"
            out += "  advice: \(f.advice)\n"
            if verbose {
                out += "  key: \(f.key)\n"
                out += "  evidence: " + f.evidence.map { "\($0.name)=\(text($0.value))" }.joined(separator: " ") + "\n"
            }
        }
        if !r.pending.isEmpty {
            out += "\nNot yet raised (hysteresis still counting): " + r.pending.map(\.key).joined(separator: ", ") + "\n"
        }
        if verbose && !r.limitations.isEmpty {
            out += "\nNot judged:\n" + r.limitations.map { "  - \($0)\n" }.joined()
        }
        return out
    }

    static func text(_ v: Evidence.Value) -> String {
        switch v {
        case .int(let i): "\(i)"
        case .number(let d): String(format: "%.4g", d)
        case .text(let s): s.contains(" ") ? "\"\(s)\"" : s
        case .texts(let a): "[" + a.joined(separator: ", ") + "]"
        case .unknown: "unknown"
        }
    }
}
