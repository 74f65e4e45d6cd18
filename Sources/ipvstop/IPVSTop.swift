import ArgumentParser
import FoundationEssentials
import Glibc
import IPVSFeed
import IPVSJSON
import IPVSModel
import IPVSReader

@main
struct IPVSTop: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ipvstop",
        abstract: "Live view of a Linux IPVS (LVS) director: services, real servers, connections, templates.",
        discussion: """
            Reads /proc/net/ip_vs*, /proc/sys/net/ipv4/vs and the IPVS netlink family (as root).
            Without root, stats, rates, PersistConn and thresholds are unavailable and shown as such.
            """,
        version: "0.1.0",
        subcommands: [DashboardCommand.self, SnapshotCommand.self, CheckCommand.self, AgentCommand.self, ExporterCommand.self, RecordCommand.self, CaptureCommand.self],
        defaultSubcommand: DashboardCommand.self
    )

    /// As ArgumentParser's own, but `check` is a monitoring plugin: a bad option (the
    /// parser's usage errors and validation failures included) is UNKNOWN (3) with a status
    /// line on standard output, never another exit status a monitoring system would misread.
    static func main() {
        let args = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try parseAsRoot(args)
            try command.run()
        } catch {
            if args.first == CheckCommand.configuration.commandName, !(error is ExitCode), exitCode(for: error) != .success {
                let message = fullMessage(for: error)
                let first = message.split(separator: "\n").first.map(String.init) ?? "bad option"
                print("IPVS UNKNOWN - " + (first.hasPrefix("Error: ") ? String(first.dropFirst(7)) : first))
                writeStandardError(message + "\n")
                Glibc.exit(3)
            }
            exit(withError: error)
        }
    }
}

/// Options every subcommand shares: where the director's data comes from, chosen here
/// once and handed to the face as a `FeedSpec`.
struct SourceOptions: ParsableArguments {
    @Option(name: .customLong("proc-root"), help: ArgumentHelp(
        "Read a capture made by 'ipvstop capture DIR' (with its netlink answers, when taken as root), or a copied /proc tree (DIR/net/ip_vs, DIR/net/ip_vs_conn, DIR/sys/net/ipv4/vs/...).",
        valueName: "DIR"))
    var procRoot: String = "/proc"

    @Flag(name: .customLong("no-netlink"), help: "Read /proc only, as an unprivileged user would.")
    var noNetlink = false

    @Option(name: .customLong("hz"), help: ArgumentHelp(
        "The kernel's HZ, to turn /proc's persistence timeouts (jiffies) into seconds when neither netlink nor the kernel config tells.",
        valueName: "N"))
    var hz: Int?

    @Option(name: .customLong("table-share"), help: ArgumentHelp(
        "The most of one CPU core the connection-table reads may take, in percent (1-100; default 5). A read that cost c seconds is followed by the next no sooner than c/share later; the services are polled every interval regardless.",
        valueName: "PERCENT"))
    var tableShare: Double = ConnectionTablePacer.defaultShare * 100

    @Flag(help: "Use the built-in simulated director instead of this machine's (no IPVS needed).")
    var demo = false

    @Option(help: ArgumentHelp("The simulated director's seed (with --demo).", valueName: "N"))
    var seed: UInt64 = 1

    @Option(help: ArgumentHelp("Use a recording made with 'ipvstop record' instead of this machine's director.", valueName: "FILE"))
    var replay: String?

    @Option(name: .customLong("start-frame"), parsing: .unconditional, help: ArgumentHelp(
        "With --replay: the frame to start at, or to show (1 is the first, -1 the last); earlier frames are analysed at once. Default: the first for the dashboard and the services, the last for snapshot and check.",
        valueName: "N"))
    var startFrame: Int?

    func validate() throws {
        if let hz, !(10...10_000).contains(hz) { throw ValidationError("--hz must be between 10 and 10000") }
        if !(1...100).contains(tableShare) { throw ValidationError("--table-share is a percentage of one core, 1 to 100") }
        var isDir = false
        if procRoot != "/proc" && !(FileManager.default.fileExists(atPath: procRoot, isDirectory: &isDir) && isDir) {
            throw ValidationError("--proc-root \(procRoot): no such directory")
        }
        if demo && replay != nil { throw ValidationError("--demo and --replay: choose one source") }
        if (demo || replay != nil) && (procRoot != "/proc" || noNetlink) {
            throw ValidationError("--proc-root and --no-netlink read a director; they do not go with --demo or --replay")
        }
        if startFrame != nil && replay == nil { throw ValidationError("--start-frame goes with --replay") }
        if startFrame == 0 { throw ValidationError("--start-frame counts from 1 (or from the end with -1)") }
    }

    var readerOptions: ReaderOptions {
        ReaderOptions(procRoot: procRoot, useNetlink: noNetlink ? false : nil, hz: hz, tableShare: tableShare / 100)
    }

    /// The feed these options name.
    var spec: FeedSpec {
        if demo { return .demo(seed: seed) }
        if let replay { return .replay(path: replay, frame: startFrame.map { $0 > 0 ? $0 - 1 : $0 }) }
        return .director(readerOptions)
    }
}

/// Fails with the reader's message and exit status 2, the way ipvsadm reports a missing
/// module: one clear line, no stack trace.
func fail(_ message: String) -> Never {
    writeStandardError("ipvstop: " + TerminalText.escaped(message) + "\n")
    Glibc.exit(2)
}

/// Writes `text` to standard error at once, unbuffered (as FileHandle.standardError did:
/// a message must be out before an exit).
func writeStandardError(_ text: String) {
    _ = Array(text.utf8).withUnsafeBytes { FileDescriptorWrite.all(2, $0) }
}

/// The snapshot's warnings on stderr, one a line, their outside text escaped (a quoted
/// line from a file may hold terminal controls).
func warn(_ warnings: [String]) {
    for w in warnings {
        writeStandardError("ipvstop: warning: " + TerminalText.escaped(w, keepLineBreaks: false) + "\n")
    }
}

struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Take one snapshot of the director and print it (JSON for scripts, text for people).")

    @OptionGroup var source: SourceOptions
    @OptionGroup var analysis: AnalysisOptions

    @Flag(help: "Print the snapshot as JSON (schema in the README).")
    var json = false

    @Option(help: ArgumentHelp("How many persistence templates to list, most connections first; 0 for all.", valueName: "N"))
    var top: Int = 100

    @Flag(name: .customLong("no-connections"), help: "Skip the connection table (its read costs the kernel most).")
    var noConnections = false

    @Flag(help: "Compact JSON on one line.")
    var compact = false

    func validate() throws {
        if top < 0 { throw ValidationError("--top must be 0 (all) or more") }
    }

    func run() throws {
        if analysis.listThresholds {
            print(try analysis.thresholdTable(), terminator: "")
            return
        }
        let snap: Snapshot
        do {
            snap = try source.spec.snapshot(connections: !noConnections)
        } catch {
            fail(error.description)
        }
        if json {
            print(SnapshotJSON.encode(snap, top: top, pretty: !compact, settings: try analysis.settings()))
        } else {
            // Scheduler names, PE data and the like come from the files: escaped.
            print(TerminalText.escaped(SnapshotText.render(snap, top: top)), terminator: "")
            warn(snap.source.warnings)
        }
    }
}
