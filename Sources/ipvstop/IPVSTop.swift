import ArgumentParser
import Foundation
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
        subcommands: [DashboardCommand.self, SnapshotCommand.self, CheckCommand.self, AgentCommand.self, RecordCommand.self],
        defaultSubcommand: DashboardCommand.self
    )
}

/// Options every subcommand shares: where the director's data comes from.
struct SourceOptions: ParsableArguments {
    @Option(name: .customLong("proc-root"), help: ArgumentHelp(
        "Read a captured /proc tree (DIR/net/ip_vs, DIR/net/ip_vs_conn, DIR/sys/net/ipv4/vs/...); netlink off.",
        valueName: "DIR"))
    var procRoot: String = "/proc"

    @Flag(name: .customLong("no-netlink"), help: "Read /proc only, as an unprivileged user would.")
    var noNetlink = false

    @Option(name: .customLong("hz"), help: ArgumentHelp(
        "The kernel's HZ, to turn /proc's persistence timeouts (jiffies) into seconds when neither netlink nor the kernel config tells.",
        valueName: "N"))
    var hz: Int?

    func validate() throws {
        if let hz, !(10...10_000).contains(hz) { throw ValidationError("--hz must be between 10 and 10000") }
        var isDir: ObjCBool = false
        if procRoot != "/proc" && !(FileManager.default.fileExists(atPath: procRoot, isDirectory: &isDir) && isDir.boolValue) {
            throw ValidationError("--proc-root \(procRoot): no such directory")
        }
    }

    var readerOptions: ReaderOptions {
        ReaderOptions(procRoot: procRoot, useNetlink: noNetlink ? false : nil, hz: hz)
    }
}

/// Fails with the reader's message and exit status 2, the way ipvsadm reports a missing
/// module: one clear line, no stack trace.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data(("ipvstop: " + TerminalText.escaped(message) + "\n").utf8))
    Foundation.exit(2)
}

/// The snapshot's warnings on stderr, one a line, their outside text escaped (a quoted
/// line from a file may hold terminal controls).
func warn(_ warnings: [String]) {
    for w in warnings {
        FileHandle.standardError.write(Data(("ipvstop: warning: " + TerminalText.escaped(w, keepLineBreaks: false) + "\n").utf8))
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
        let reader = SnapshotReader(options: source.readerOptions)
        let snap: Snapshot
        do {
            snap = try reader.snapshot(connections: !noConnections)
        } catch let e as SnapshotError {
            fail(e.description)
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
