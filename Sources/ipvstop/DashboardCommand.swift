import ArgumentParser
import Dispatch
import FoundationEssentials
import IPVSAnalysis
import IPVSDashboard
import IPVSDemo
import IPVSFeed
import IPVSModel
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

    @Option(name: [.customShort("d"), .long], help: ArgumentHelp("Seconds between polls.", valueName: "SECONDS"))
    var delay: Double = 1

    @Flag(help: "Start paused (p or space resumes).")
    var paused = false

    @Flag(help: "ASCII line drawing even under a UTF-8 locale.")
    var ascii = false

    func validate() throws {
        if !(0.1...3600).contains(delay) { throw ValidationError("-d/--delay must be between 0.1 and 3600 seconds") }
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
        var snapshotSource: any SnapshotSource
        var offered: Terminal?
        do {
            snapshotSource = try source.spec.open(interval: delay, paused: paused)
        } catch {
            // No IPVS, and someone at the keyboard: a screen that says so, how to load it,
            // and the demo one key away. Without a terminal on stdin, the plain error.
            guard error.kind == .noIPVS, isatty(STDIN_FILENO) == 1 else {
                if error.kind == .noIPVS, source.procRoot == "/proc" {
                    fail(error.description + "\nTo see the dashboard on a simulated director: ipvstop --demo")
                }
                fail(error.description)
            }
            let t = Terminal()
            offered = t
            var offer = NoIPVSScreen(reason: error.description, procRoot: source.procRoot, glyphs: t.utf8 && !ascii ? .unicode : .ascii)
            while true {
                switch offer.run(terminal: t) {
                case .quit:
                    t.end()
                    return
                case .demo:
                    // The one source the feed builds without reading anything: it cannot fail.
                    snapshotSource = try! FeedSpec.demo(seed: source.seed).open(interval: delay, paused: paused)
                case .retry:
                    do {
                        snapshotSource = try source.spec.open(interval: delay, paused: paused)
                    } catch let again {
                        offer.reason = again.description
                        offer.note = "still no IPVS (looked again)"
                        continue
                    }
                }
                break
            }
        }
        let terminal = offered ?? Terminal()
        let dashboard = Dashboard(source: snapshotSource, glyphs: terminal.utf8 && !ascii ? .unicode : .ascii)
        let end = DashboardRunner.run(dashboard, terminal: terminal)
        terminal.end()
        snapshotSource.stop()
        if end == .inputEnded {
            writeStandardError("ipvstop: standard input ended or was closed: no more keys can come, dashboard stopped\n")
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
        if source.demo && count == 0 && duration == 0 { throw ValidationError("--demo records at once: give --count or --duration") }
        if source.replay != nil { throw ValidationError("record reads a director or the demo; a recording is copied with cp") }
    }

    func run() throws {
        let label = source.spec.label
        let writer: Recording.Writer
        do {
            writer = try Recording.Writer(path: file, source: label, interval: delay, maxEntries: maxEntries, maxBytes: maxBytes)
        } catch {
            fail("cannot record: \(error)")
        }
        var stopReason = "done"
        if source.demo {
            // The demo's clock is simulated: its frames are written at once.
            let director = DemoDirector(seed: source.seed)
            let frames = count > 0 ? count : Int((duration / delay).rounded(.up))
            for k in 0..<frames {
                let t = demoStart + Double(k) * delay
                if try !writer.append(director.snapshot(at: t, interval: delay)) { stopReason = "--max-bytes reached"; break }
            }
        } else {
            let live: any SnapshotSource
            do { live = try source.spec.open(interval: delay) } catch { fail(error.description) }
            let interrupted = Interrupt()
            let started = Date()
            loop: while true {
                for s in live.take() {
                    if try !writer.append(s) { stopReason = "--max-bytes reached"; break loop }
                    if count > 0 && writer.frames >= count { break loop }
                }
                if duration > 0 && Date().timeIntervalSince(started) >= duration { break }
                if interrupted.fired { stopReason = "interrupted"; break }
                DetachedThread.sleep(seconds: 0.05)
            }
            live.stop()
        }
        try writer.close()
        writeStandardError(
            "ipvstop: recorded \(writer.frames) snapshots (\(writer.tables) connection tables, \(writer.bytesWritten) bytes) to \(file): \(stopReason)\n")
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
