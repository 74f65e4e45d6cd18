import ArgumentParser
import Foundation
import IPVSAnalysis
import IPVSDashboard
import IPVSDemo
import IPVSModel
import IPVSReader
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `ipvstop` (the default): the live ncurses dashboard.
struct DashboardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "The live dashboard (the default): services, templates, clients, connections, findings, kernel.",
        discussion: """
            Keys: 1-7 screens, arrows and PgUp/PgDn move, / filters, s sorts, Enter drills down, Esc goes back, \
            p or space pauses, d sets the delay, x exact numbers, h help, q quits.
            Needs a terminal: for scripts use 'ipvstop snapshot --json'.
            """)

    @OptionGroup var source: SourceOptions

    @Flag(help: "Run on the built-in simulated director (no IPVS needed).")
    var demo = false

    @Option(help: ArgumentHelp("The simulated director's seed (with --demo).", valueName: "N"))
    var seed: UInt64 = 1

    @Option(help: ArgumentHelp("Play back a recording made with 'ipvstop record'.", valueName: "FILE"))
    var replay: String?

    @Option(name: [.customShort("d"), .long], help: ArgumentHelp("Seconds between polls.", valueName: "SECONDS"))
    var delay: Double = 1

    @Flag(help: "Start paused (p or space resumes).")
    var paused = false

    @Option(name: .customLong("start-frame"), parsing: .unconditional, help: ArgumentHelp(
        "With --replay: the frame to start at (1 is the first, -1 the last); earlier frames are analysed at once.",
        valueName: "N"))
    var startFrame: Int = 1

    @Flag(help: "ASCII line drawing even under a UTF-8 locale.")
    var ascii = false

    func validate() throws {
        if demo && replay != nil { throw ValidationError("--demo and --replay: choose one source") }
        if (demo || replay != nil) && (source.procRoot != "/proc" || source.noNetlink) {
            throw ValidationError("--proc-root and --no-netlink read a director; they do not go with --demo or --replay")
        }
        if !(0.1...3600).contains(delay) { throw ValidationError("-d/--delay must be between 0.1 and 3600 seconds") }
        if startFrame == 0 { throw ValidationError("--start-frame counts from 1 (or from the end with -1)") }
    }

    func run() throws {
        guard isatty(STDOUT_FILENO) == 1 else {
            fail("""
                the dashboard needs a terminal, and standard output is not one.
                For scripts: 'ipvstop snapshot --json' (or 'ipvstop snapshot' for text); for monitoring: 'ipvstop check'.
                """)
        }
        // A terminal that cannot move its cursor (TERM=dumb, an editor's shell buffer)
        // showed only the key line: say so instead.
        let term = ProcessInfo.processInfo.environment["TERM"] ?? ""
        if term.isEmpty || term == "dumb" || term == "unknown" {
            fail("""
                the dashboard needs a terminal that can move its cursor, and TERM is \(term.isEmpty ? "not set" : "'\(term)'").
                Run it in a terminal emulator, tmux or screen (or set TERM, e.g. TERM=xterm-256color); \
                for plain text: 'ipvstop snapshot'.
                """)
        }
        // A poll a second, each freeing what the next needs again.
        WorkingMemory.keepBetweenPolls()
        let snapshotSource: SnapshotSource
        if demo {
            snapshotSource = DemoSource(director: DemoDirector(seed: seed), interval: delay, paused: paused)
        } else if let replay {
            do {
                snapshotSource = try ReplaySource(path: replay, start: startFrame > 0 ? startFrame - 1 : startFrame, paused: paused)
            } catch {
                fail("--replay \(replay): \(error)")
            }
        } else {
            let reader = SnapshotReader(options: source.readerOptions)
            do {
                _ = try reader.readServices()
            } catch let e as SnapshotError {
                if case .ipvsNotLoaded(let root) = e, root == "/proc" {
                    fail(e.description + "\nTo see the dashboard on a simulated director: ipvstop --demo")
                }
                fail(e.description)
            }
            snapshotSource = LiveSource(reader: reader, interval: delay, paused: paused)
        }
        ProcessMemory.tune()
        let terminal = Terminal()
        let dashboard = Dashboard(source: snapshotSource, glyphs: terminal.utf8 && !ascii ? .unicode : .ascii)
        let end = DashboardRunner.run(dashboard, terminal: terminal)
        terminal.end()
        snapshotSource.stop()
        if end == .inputEnded {
            FileHandle.standardError.write(Data("ipvstop: standard input ended or was closed: no more keys can come, dashboard stopped\n".utf8))
        }
    }
}

/// `ipvstop record FILE`: saves successive snapshots for `--replay`.
struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Record successive snapshots of the director to a file, for 'ipvstop --replay FILE'.",
        discussion: """
            The file is compact and bounded: each connection table is written only when it was read anew, \
            at most --max-entries entries of it, and recording stops at --count frames, --duration seconds, \
            --max-bytes, or Ctrl-C (the file stays readable). Format: see Recording in Sources/IPVSDemo.
            FILE is created with mode 0600 (it holds every client's address); an existing FILE is replaced \
            only when it is a regular file of this user: a device, FIFO, directory, symbolic link or \
            another user's file is refused.
            """)

    @OptionGroup var source: SourceOptions

    @Argument(help: ArgumentHelp("The file to write, mode 0600 (replaced if it is a regular file of this user).", valueName: "FILE"))
    var file: String

    @Option(name: [.customShort("d"), .long], help: ArgumentHelp("Seconds between snapshots.", valueName: "SECONDS"))
    var delay: Double = 1

    @Option(name: [.customShort("n"), .long], help: ArgumentHelp("Stop after this many snapshots (0: no limit).", valueName: "N"))
    var count: Int = 60

    @Option(help: ArgumentHelp("Stop after this many seconds (0: no limit).", valueName: "SECONDS"))
    var duration: Double = 0

    @Option(name: .customLong("max-entries"), help: ArgumentHelp("Most connection entries kept of each table.", valueName: "N"))
    var maxEntries: Int = 100_000

    @Option(name: .customLong("max-bytes"), help: ArgumentHelp("Stop before the file grows past this size.", valueName: "BYTES"))
    var maxBytes: Int = 256 << 20

    @Flag(help: "Record the simulated director instead (at once: its clock is simulated).")
    var demo = false

    @Option(help: ArgumentHelp("The simulated director's seed (with --demo).", valueName: "N"))
    var seed: UInt64 = 1

    @Option(name: .customLong("demo-start"), help: ArgumentHelp("With --demo: simulated second of the first snapshot.", valueName: "SECONDS"))
    var demoStart: Double = DemoDirector.warmTime

    func validate() throws {
        if !(0.1...3600).contains(delay) { throw ValidationError("-d/--delay must be between 0.1 and 3600 seconds") }
        if count < 0 || duration < 0 || maxEntries < 0 || maxBytes < 1024 { throw ValidationError("limits must be positive") }
        // The simulated clock starts within a century: its seconds become the demo's Ints.
        if !(demoStart.isFinite && (0...3_153_600_000).contains(demoStart)) {
            throw ValidationError("--demo-start must be between 0 and 3153600000 seconds (a century)")
        }
        // A year at most: --demo turns the duration into a frame count (an Int).
        if !(duration.isFinite && duration <= 31_536_000) { throw ValidationError("--duration must be at most a year (31536000 s)") }
        if demo && count == 0 && duration == 0 { throw ValidationError("--demo records at once: give --count or --duration") }
    }

    func run() throws {
        let label = demo ? "demo seed \(seed)" : source.procRoot
        let writer: Recording.Writer
        do {
            writer = try Recording.Writer(path: file, source: label, interval: delay, maxEntries: maxEntries, maxBytes: maxBytes)
        } catch {
            fail("cannot record: \(error)")
        }
        var stopReason = "done"
        if demo {
            let director = DemoDirector(seed: seed)
            let frames = count > 0 ? count : Int((duration / delay).rounded(.up))
            for k in 0..<frames {
                let t = demoStart + Double(k) * delay
                if try !writer.append(director.snapshot(at: t, interval: delay)) { stopReason = "--max-bytes reached"; break }
            }
        } else {
            let reader = SnapshotReader(options: source.readerOptions)
            do { _ = try reader.readServices() } catch let e as SnapshotError { fail(e.description) }
            let live = LiveSource(reader: reader, interval: delay)
            let interrupted = Interrupt()
            let started = Date()
            loop: while true {
                for s in live.take() {
                    if try !writer.append(s) { stopReason = "--max-bytes reached"; break loop }
                    if count > 0 && writer.frames >= count { break loop }
                }
                if duration > 0 && Date().timeIntervalSince(started) >= duration { break }
                if interrupted.fired { stopReason = "interrupted"; break }
                Thread.sleep(forTimeInterval: 0.05)
            }
            live.stop()
        }
        try writer.close()
        FileHandle.standardError.write(Data(
            "ipvstop: recorded \(writer.frames) snapshots (\(writer.tables) connection tables, \(writer.bytesWritten) bytes) to \(file): \(stopReason)\n".utf8))
    }
}

/// Ctrl-C (or SIGTERM) ends a recording cleanly.
final class Interrupt {
    final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }
    private let flag = Flag()
    private let sources: [DispatchSourceSignal]

    init() {
        var list: [DispatchSourceSignal] = []
        let flag = self.flag
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { flag.value.store(true, ordering: .relaxed) }
            s.resume()
            list.append(s)
        }
        sources = list
    }

    var fired: Bool { flag.value.load(ordering: .relaxed) }
}
