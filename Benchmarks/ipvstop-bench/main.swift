// ipvstop-bench: how fast and how lean ipvstop reads a connection table, against cat and awk.
//
//   swift run -c release ipvstop-bench [--sizes 10000,100000,1000000] [--dir DIR] [--quick]
//                                      [--runs N] [--ipvstop PATH] [--show-rounds] [--verify]
//
// Generates kernel-format /proc/net/ip_vs_conn files (seeded, reused when present), times
// SnapshotReader.readConnections() in this process, `cat FILE > /dev/null` and an awk
// per-client count in child processes, measures the table's peak memory in a child of its
// own, times the analysis of the largest table in rounds each paired with a read of it,
// and prints the figures and a pass/fail line per target. Exit status 0 even when a
// target fails (this is a report); 1 when the harness itself broke, or when `--verify`
// found the fast aggregation and its plain reference apart (a wrong figure, not a slow one).

import Foundation
import IPVSAnalysis
import IPVSModel
import IPVSReader
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Child modes (run by the bench itself, for an honest memory figure)

let args = Array(CommandLine.arguments.dropFirst())

/// `--child-mem ROOT`: read only the connection table and report VmHWM before (after
/// start-up) and after, in KiB: `hwm0 rss0 hwm1 rss1 entries`.
if args.first == "--child-mem", args.count == 2 {
    let hwm0 = ProcStatus.kib("VmHWM"), rss0 = ProcStatus.kib("VmRSS")
    do {
        let t = try SnapshotReader(options: ReaderOptions(procRoot: args[1], useNetlink: false)).readConnections()
        let hwm1 = ProcStatus.kib("VmHWM"), rss1 = ProcStatus.kib("VmRSS")
        print("\(hwm0) \(rss0) \(hwm1) \(rss1) \(t.entries.count)")
        withExtendedLifetime(t) {}
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("\(error)\n".utf8))
        exit(1)
    }
}
/// `--child-mem-pipe FILE`: the same, with the table arriving through a pipe, so the parser
/// has no file size to reserve from (as for /proc when the services give no count). The
/// reader itself refuses a FIFO in a tree (hardening: a FIFO hangs a reader), so the child
/// reads the pipe and feeds the reader's parser as `ProcFile.streamLines` does: whole lines,
/// the partial last line carried to the next read.
if args.first == "--child-mem-pipe", args.count == 2 {
    let cat = Process()
    cat.executableURL = URL(fileURLWithPath: "/bin/cat")
    cat.arguments = [args[1]]
    let pipe = Pipe()
    cat.standardOutput = pipe
    do { try cat.run() } catch {
        FileHandle.standardError.write(Data("cat: \(error)\n".utf8))
        exit(1)
    }
    let fd = pipe.fileHandleForReading.fileDescriptor
    let hwm0 = ProcStatus.kib("VmHWM"), rss0 = ProcStatus.kib("VmRSS")
    var parser = ConnectionTableParser(expectedEntries: 0)
    let chunk = 1 << 16
    var buf = [UInt8](repeating: 0, count: chunk * 2)
    var held = 0   // bytes of a partial line kept at the start of buf
    while true {
        if held == buf.count { buf.append(contentsOf: [UInt8](repeating: 0, count: buf.count)) }
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress! + held, $0.count - held) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        let filled = held + n
        let lastNL = buf[..<filled].lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
        buf.withUnsafeBufferPointer { parser.consume(UnsafeBufferPointer(rebasing: $0[..<lastNL])) }
        held = filled - lastNL
        if held > 0 { buf.withUnsafeMutableBufferPointer { b in for i in 0..<held { b[i] = b[lastNL + i] } } }
    }
    if held > 0 { buf.withUnsafeBufferPointer { parser.consume(UnsafeBufferPointer(rebasing: $0[..<held]), unterminated: true) } }
    cat.waitUntilExit()
    let t = parser.table(file: "ip_vs_conn", readAt: Date(), cost: ReadCost(seconds: 0, cpuSeconds: 0, bytes: 0, readCalls: 0))
    let hwm1 = ProcStatus.kib("VmHWM"), rss1 = ProcStatus.kib("VmRSS")
    print("\(hwm0) \(rss0) \(hwm1) \(rss1) \(t.entries.count)")
    withExtendedLifetime(t) {}
    exit(0)
}

/// `--profile-analysis ROOT RUNS [steady]`: only the analysis of ROOT's snapshot, RUNS
/// times, one-shot (or an `Analyzer`'s update), for a profiler (`perf record`) to look at
/// without the rest.
if args.first == "--profile-analysis", args.count == 3 || args.count == 4, let runs = Int(args[2]) {
    do {
        let snapshot = try SnapshotReader(options: ReaderOptions(procRoot: args[1], useNetlink: false, hz: 250)).snapshot()
        let analyzer = args.count == 4 && args[3] == "steady" ? Analyzer() : nil
        if analyzer != nil { WorkingMemory.keepBetweenPolls() }
        if let analyzer {
            _ = analyzer.update(with: snapshot)
            for s in 1...AnalysisBench.warmUpdates { _ = analyzer.update(with: AnalysisBench.poll(snapshot, secondsLater: Double(s))) }
        }
        // Steady: every update a table read anew, as the dashboard's and the agent's are.
        let polls = analyzer == nil ? [] : (1...max(1, runs)).map {
            AnalysisBench.poll(snapshot, secondsLater: Double(AnalysisBench.warmUpdates + $0))
        }
        var each: [Double] = []
        var ru0 = rusage(); getrusage(RUSAGE_SELF.rawValue, &ru0)
        for r in 0..<runs {
            if analyzer == nil { WorkingMemory.returnFreed() }
            let c0 = Clock.cpu
            if let analyzer {
                _ = analyzer.update(with: polls[r])
            } else {
                _ = Analysis.analyze(snapshot)
            }
            each.append(Clock.cpu - c0)
        }
        // The best run for A/B comparisons of builds (a shared host's bursts land in the
        // mean), the median and the mean beside it; the page faults tell fresh memory.
        var ru1 = rusage(); getrusage(RUSAGE_SELF.rawValue, &ru1)
        print("ms CPU per analysis: best \(ms(each.min() ?? .nan)), median \(ms(each.median)), mean \(ms(each.reduce(0, +) / Double(max(1, runs))))"
              + "; minor page faults a run: \((ru1.ru_minflt - ru0.ru_minflt) / max(1, runs))")
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("\(error)\n".utf8))
        exit(1)
    }
}

/// `--verify ROOT`: the fast aggregation of ROOT's snapshot (with a poller's list of new
/// entries) against its plain reference (`ReferenceAggregates`), every aggregate; prints each
/// difference, exits 1 when there is one.
if args.first == "--verify", args.count == 2 {
    do {
        let read = try SnapshotReader(options: ReaderOptions(procRoot: args[1], useNetlink: false, hz: 250)).snapshot()
        let snapshot = AnalysisBench.poll(read, secondsLater: 1)
        let c0 = Clock.cpu
        let fast = Aggregates(snapshot)
        let c1 = Clock.cpu
        let reference = ReferenceAggregates(snapshot)
        let c2 = Clock.cpu
        let differences = reference.differences(from: fast)
        let n = snapshot.connections?.entries.count ?? 0
        print("verify \(sizeLabel(n)) entries: fast \(ms(c1 - c0)) ms, reference \(ms(c2 - c1)) ms; \(fast.destinations.count) destinations, "
              + "\(fast.clients.count) clients, \(fast.heavyLoads.count) heavy loads, \(fast.groups.count) groups, "
              + "\(fast.templates.count) templates: \(differences.isEmpty ? "every aggregate agrees" : "\(differences.count) differences")")
        for d in differences { print("  " + d) }
        exit(differences.isEmpty ? 0 : 1)
    } catch {
        FileHandle.standardError.write(Data("\(error)\n".utf8))
        exit(1)
    }
}

// MARK: - Options

struct Options {
    var sizes = [10_000, 100_000, 1_000_000]
    var dir = NSTemporaryDirectory() + "ipvstop-bench"
    var quick = false
    var runs: Int?
    var ipvstop: String?
    var showRounds = false
    var verify = false
}

func usage() -> Never {
    print("""
        usage: ipvstop-bench [--sizes N,N,...] [--dir DIR] [--quick] [--runs N] [--ipvstop PATH] [--show-rounds] [--verify]
          --sizes    entries per generated table (default 10000,100000,1000000)
          --dir      where the generated proc trees live, reused between runs (default \(Options().dir))
          --quick    10^4 and 10^5 only (CI)
          --runs     timed runs per size for ipvstop (default: more for small tables)
          --ipvstop  the ipvstop binary, to time `snapshot --json` end to end (default: next to this one)
          --show-rounds  every round of the analysis target (a read, then an analysis), not only its figure
          --verify   also compare the fast aggregation of the largest table with its plain reference (exit 1 when they differ)
        """)
    exit(0)
}

func parseOptions(_ args: [String]) -> Options {
    var o = Options()
    var i = 0
    func value() -> String {
        i += 1
        guard i < args.count else {
            FileHandle.standardError.write(Data("ipvstop-bench: \(args[i - 1]) needs a value\n".utf8))
            exit(1)
        }
        return args[i]
    }
    while i < args.count {
        switch args[i] {
        case "--sizes":
            let list = value().split(separator: ",").map { Int($0.replacingOccurrences(of: "_", with: "")) }
            guard !list.isEmpty, list.allSatisfy({ ($0 ?? 0) > 0 }) else {
                FileHandle.standardError.write(Data("ipvstop-bench: --sizes wants positive integers, e.g. 10000,100000\n".utf8))
                exit(1)
            }
            o.sizes = list.map { $0! }.sorted()
        case "--dir": o.dir = value()
        case "--quick": o.quick = true
        case "--runs":
            guard let n = Int(value()), n > 0 else { FileHandle.standardError.write(Data("ipvstop-bench: --runs wants a number\n".utf8)); exit(1) }
            o.runs = n
        case "--ipvstop": o.ipvstop = value()
        case "--show-rounds": o.showRounds = true
        case "--verify": o.verify = true
        case "-h", "--help": usage()
        default:
            FileHandle.standardError.write(Data("ipvstop-bench: unknown argument \(args[i]) (try --help)\n".utf8))
            exit(1)
        }
        i += 1
    }
    if o.quick { o.sizes = [10_000, 100_000] }
    if o.dir.count > 1 && o.dir.hasSuffix("/") { o.dir.removeLast() }
    return o
}

let opts = parseOptions(args)

// MARK: - Measuring

struct SizeResult {
    var size: Int
    var bytes: Int
    var ipvstop: Timing
    var cat: Timing
    var awk: Timing
    var check: [String]   // what did not match; empty when the table is right
    var capacityRatio: Double

    var nsPerEntry: Double { ipvstop.cpu / Double(size) * 1e9 }
    var entriesPerSecond: Double { Double(size) / ipvstop.cpu }
}

func f(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }
func ms(_ s: Double) -> String { s < 0.01 ? f(s * 1000, 2) : s < 1 ? f(s * 1000, 1) : f(s * 1000, 0) }
func sizeLabel(_ n: Int) -> String {
    var e = 0, m = n
    while m >= 10 && m % 10 == 0 { m /= 10; e += 1 }
    return m == 1 && e >= 3 ? "10^\(e)" : String(n)
}

/// The generator's own counts, from its marker file.
func generatedCounts(_ root: String) -> [String: Int] {
    guard let m = try? String(contentsOfFile: root + "/generator", encoding: .utf8) else { return [:] }
    let words = m.split(whereSeparator: \.isWhitespace).map(String.init)
    var out: [String: Int] = [:]
    for k in 0..<max(0, words.count - 1) { if let v = Int(words[k + 1]) { out[words[k]] = v } }
    return out
}

func out(_ s: String) { print(s); fflush(nil) }

let awkPath = resolveOnPath("awk") ?? "awk"
let awkName = (awkPath as NSString).lastPathComponent
let awkScript = "NR>1 {c[$2]++} END {print length(c)}"
let me = selfExecutable()
let ipvstopBinary: String? = {
    if let p = opts.ipvstop { return p }
    let sibling = (me as NSString).deletingLastPathComponent + "/ipvstop"
    return access(sibling, X_OK) == 0 ? sibling : nil
}()

var results: [SizeResult] = []
var harnessBroke = false
/// `--verify` found the fast aggregation and its reference apart.
var verifyFailed = false

struct MemoryResult {
    var size: Int
    var hwm0: Int, rss0: Int, hwm1: Int, rss1: Int
    var bytesPerEntry: Double { Double(hwm1 - hwm0) * 1024 / Double(size) }
    var retainedPerEntry: Double { Double(rss1 - rss0) * 1024 / Double(size) }
}
var memory: MemoryResult?
var memoryNoHint: MemoryResult?
var e2e: ChildResult?
var analysis: AnalysisCost?

out("ipvstop-bench: sizes \(opts.sizes.map(sizeLabel).joined(separator: ", ")); trees in \(opts.dir)")
out("machine: \(sysconf(Int32(_SC_NPROCESSORS_ONLN))) CPUs, load \((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"); awk is \(awkPath) (LC_ALL=C)")

do {
    // 1. The trees.
    var roots: [String] = []
    for size in opts.sizes {
        let g0 = Clock.wall
        let (root, reused) = try TableGenerator.tree(count: size, dir: opts.dir)
        roots.append(root)
        let bytes = Int((try? FileManager.default.attributesOfItem(atPath: root + "/net/ip_vs_conn")[.size] as? Int) ?? 0)
        out("\(sizeLabel(size)): \(root)/net/ip_vs_conn, \(f(Double(bytes) / 1e6)) MB, \(reused ? "reused" : "generated in \(f(Clock.wall - g0, 2)) s")")
    }

    // 2. Memory and the JSON face, in child processes, while this process is still small:
    // a spawned child's getrusage maxrss starts from its parent's high-water mark (the
    // exec replaces the parent's mm, and the kernel keeps that mm's peak), so the figures
    // that depend on it are taken before the timings below grow this process.
    let largest = opts.sizes.last!, largestRoot = roots.last!
    if opts.verify {
        // In a child: the reference's dictionaries would weigh on this process' figures.
        let v = try Spawn.run([me, "--verify", largestRoot])
        out(v.output.trimmingCharacters(in: .whitespacesAndNewlines))
        if v.status != 0 { verifyFailed = true }
    }
    let child = try Spawn.run([me, "--child-mem", largestRoot])
    let v = child.output.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    guard child.status == 0, v.count == 5, v[4] == largest else {
        throw BenchError.harness("memory child failed (status \(child.status)): \(child.output)")
    }
    memory = MemoryResult(size: largest, hwm0: v[0], rss0: v[1], hwm1: v[2], rss1: v[3])
    let piped = try Spawn.run([me, "--child-mem-pipe", largestRoot + "/net/ip_vs_conn"])
    let pv = piped.output.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    guard piped.status == 0, pv.count == 5, pv[4] == largest else {
        throw BenchError.harness("memory child (pipe) failed (status \(piped.status)): \(piped.output)")
    }
    memoryNoHint = MemoryResult(size: largest, hwm0: pv[0], rss0: pv[1], hwm1: pv[2], rss1: pv[3])
    if let bin = ipvstopBinary {
        for _ in 0..<3 {
            let r = try Spawn.run([bin, "snapshot", "--json", "--proc-root", largestRoot], captureOutput: false)
            guard r.status == 0 else { throw BenchError.harness("\(bin) snapshot --json exited \(r.status)") }
            if e2e == nil || r.timing.wall < e2e!.timing.wall { e2e = r }
        }
    }

    // Process start-up through /bin/sh, to read the cat and awk figures against.
    let spawnCost = try Spawn.shell("exec /bin/true", [], runs: 10).best
    out("spawn baseline (sh -c 'exec /bin/true'): \(ms(spawnCost.wall)) ms wall, \(ms(spawnCost.cpu)) ms CPU, included in the cat and \(awkName) figures")

    // 3. Timings.
    for (size, root) in zip(opts.sizes, roots) {
        let file = root + "/net/ip_vs_conn"
        let bytes = Int((try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0)

        // (a) ipvstop: read + parse + ConnectionTable, in this process.
        let reader = SnapshotReader(options: ReaderOptions(procRoot: root, useNetlink: false))
        let runs = opts.runs ?? max(5, min(30, 5_000_000 / size))
        var timings: [Timing] = []
        var check: [String] = []
        var capacityRatio = 0.0
        var distinctClients = -1
        for run in 0..<runs {
            let w0 = Clock.wall, c0 = Clock.cpu
            let t = try reader.readConnections()
            timings.append(Timing(wall: Clock.wall - w0, cpu: Clock.cpu - c0))
            if run == 0 {
                // Checked once, outside the timing: the table must be the file.
                let gen = generatedCounts(root)
                if t.entries.count != size { check.append("\(t.entries.count) entries, generated \(size)") }
                if t.skipped.total != 0 { check.append("\(t.skipped.total) lines skipped: \(t.skipped.examples)") }
                if let tc = gen["templates"], t.counts.templates != tc { check.append("\(t.counts.templates) templates, generated \(tc)") }
                if let v6 = gen["ipv6"], t.entries.lazy.filter({ !$0.client.isIPv4 }).count != v6 { check.append("IPv6 rows differ from the generator's \(v6)") }
                distinctClients = Set(t.entries.lazy.map(\.client)).count
                capacityRatio = Double(t.entries.capacity) / Double(max(1, t.entries.count))
            }
        }
        let best = timings.best

        // (b) cat and (c) awk, through /bin/sh like a user would.
        let extRuns = max(3, min(10, 2_000_000 / size))
        let cat = try Spawn.shell("exec cat \"$1\" > /dev/null", [file], runs: extRuns)
        let awk = try Spawn.shell("exec awk '\(awkScript)' \"$1\"", [file], runs: extRuns)
        let awkClients = Int(awk.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        if awkClients != distinctClients { check.append("\(distinctClients) distinct clients, \(awkName) counts \(awkClients)") }

        let r = SizeResult(size: size, bytes: bytes, ipvstop: best, cat: cat.best, awk: awk.best, check: check, capacityRatio: capacityRatio)
        results.append(r)
        out("  \(sizeLabel(size)): ipvstop \(ms(best.cpu)) ms CPU, \(ms(best.wall)) ms wall (best of \(runs)); "
            + "cat \(ms(cat.best.cpu)) / \(ms(cat.best.wall)) ms; \(awkName) \(ms(awk.best.cpu)) / \(ms(awk.best.wall)) ms (CPU / wall, best of \(extRuns)); "
            + "\(distinctClients) clients; array reserved \(f(capacityRatio, 2))× entries" + (check.isEmpty ? "" : "; MISMATCH: " + check.joined(separator: "; ")))
    }

    // 4. The analysis of the largest table, against that table's poll.
    if let size = opts.sizes.last, let root = roots.last {
        // Best of five at 10^6, as the poll it is judged against: best of three swung by
        // several milliseconds on a shared host.
        // The target's rounds (an odd count: the median round printed beside it is one round); 21, since fewer (9)
        // often left one case without a run at a quiet moment of this shared host.
        analysis = try AnalysisBench.measure(root: root, size: size, runs: max(5, min(10, 3_000_000 / size)), rounds: 21)
    }
} catch {
    out("ipvstop-bench: harness broke: \(error)")
    harnessBroke = true
}

// MARK: - Report

out("")
out("entries  file MB  ipvstop ms CPU (wall)   M ent/s  ns/ent  cat ms CPU  ipvstop/cat  \(awkName) ms CPU  \(awkName)/ipvstop")
for r in results {
    let cols = [
        sizeLabel(r.size).padding(toLength: 7, withPad: " ", startingAt: 0),
        f(Double(r.bytes) / 1e6).leftPad(8),
        (ms(r.ipvstop.cpu) + " (" + ms(r.ipvstop.wall) + ")").leftPad(22),
        f(r.entriesPerSecond / 1e6, 2).leftPad(8),
        f(r.nsPerEntry, 0).leftPad(7),
        ms(r.cat.cpu).leftPad(11),
        (f(r.ipvstop.cpu / r.cat.cpu, 1) + "×").leftPad(12),
        ms(r.awk.cpu).leftPad(12),
        (f(r.awk.cpu / r.ipvstop.cpu, 1) + "×").leftPad(13),
    ]
    out(cols.joined(separator: " "))
}
out("(best of several runs; ratios on CPU time (user + system), which other work on the machine disturbs least; cat and \(awkName) include process start-up)")
if let m = memory {
    out("memory, \(sizeLabel(m.size)) entries, in a child reading only the table: VmHWM \(f(Double(m.hwm0) / 1024)) → \(f(Double(m.hwm1) / 1024)) MiB = "
        + "\(f(m.bytesPerEntry)) B/entry peak above start-up (\(f(m.retainedPerEntry)) B/entry still resident with the table held)")
}
if let m = memoryNoHint {
    out("  the same through a FIFO (no file size to reserve from, like /proc when the services give no count): "
        + "\(f(m.bytesPerEntry)) B/entry peak, \(f(m.retainedPerEntry)) B/entry retained (the array grows as it fills)")
}
if let e = e2e, let largest = opts.sizes.last {
    out("ipvstop snapshot --json --proc-root, \(sizeLabel(largest)) entries: \(ms(e.timing.wall)) ms wall, \(ms(e.timing.cpu)) ms CPU, maxrss \(e.maxRSSKiB / 1024) MiB (best of 3)")
} else if !harnessBroke {
    out("ipvstop snapshot --json: not timed (no ipvstop binary next to the bench: `swift build -c release`, or pass --ipvstop PATH)")
}

if let a = analysis, let poll = results.last {
    out("analysis, \(sizeLabel(a.size)) entries (\(a.clients) clients, \(a.templates) templates, \(a.findings) findings): "
        + "one-shot \(ms(a.oneShot.cpu)) ms CPU, steady-state update \(ms(a.stateful.cpu)) ms CPU (keeping freed memory, as the dashboard and agent do), against the poll's \(ms(poll.ipvstop.cpu)) ms "
        + "(the best read among the analyses' rounds \(ms(a.bestRoundRead)) ms); "
        + "of which the aggregation \(ms(a.aggregates.cpu)) ms; "
        + "the poller's new-entry detection \(ms(a.newEntries.cpu)) ms (best of several runs)")
}

// MARK: - Targets

var passed = 0, failed = 0
@MainActor func target(_ ok: Bool, _ what: String) {
    if ok { passed += 1 } else { failed += 1 }
    out("  [\(ok ? "pass" : "FAIL")] \(what)")
}
out("targets:")
if let largest = results.last {
    let at = sizeLabel(largest.size) + (largest.size < 1_000_000 ? " (not 10^6: quick run)" : "")
    target(largest.entriesPerSecond >= 4e6,
           "throughput ≥ 4 M entries/s on one core at \(at): \(f(largest.entriesPerSecond / 1e6, 2)) M/s (\(ms(largest.ipvstop.cpu)) ms CPU)")
    let vsAwk = largest.awk.cpu / largest.ipvstop.cpu
    if largest.size >= 1_000_000 {
        target(vsAwk >= 10, "≥ 10× faster than \(awkName) (CPU) at \(at): \(f(vsAwk))×")
    } else {
        // awk's cost an entry grows with the number of distinct clients (its hash table
        // leaves the cache): the 10× is a 10^6 target, so a quick run only reports it.
        out("  [info] \(f(vsAwk))× faster than \(awkName) (CPU) at \(sizeLabel(largest.size)); the ≥ 10× target is judged at 10^6 only")
    }
    if let m = memory {
        target(m.bytesPerEntry < 150, "peak memory < 150 B/entry at \(sizeLabel(m.size)): \(f(m.bytesPerEntry)) B/entry")
    }
    if let smallest = results.first, results.count > 1 {
        let lin = largest.nsPerEntry / smallest.nsPerEntry
        target(lin <= 1.5, "linear: ns/entry at \(sizeLabel(largest.size)) ÷ at \(sizeLabel(smallest.size)) ≤ 1.5: "
               + results.map { "\(sizeLabel($0.size)) \(f($0.nsPerEntry, 0)) ns" }.joined(separator: ", ") + " → \(f(lin, 2))")
    }
    if let a = analysis {
        if opts.showRounds {
            for r in a.oneShotRounds { out("    one-shot round: read \(ms(r.read)) ms, analysis \(ms(r.analysis)) ms: +\(f(r.ratio * 100, 0))%") }
            for r in a.statefulRounds { out("    steady round: read \(ms(r.read)) ms, analysis \(ms(r.analysis)) ms: +\(f(r.ratio * 100, 0))%") }
        }
        let ratio = a.interleavedRatio
        target(ratio <= 0.5, "analysis adds ≤ 50% to the poll at \(at): +\(f(ratio * 100, 1))% (the worse case's best run against the best "
               + "read of its rounds, reads and analyses alternating; the median round's +\(f(a.medianRoundRatio * 100, 0))%)")
        // Each case against its own poll, for who runs which: a dashboard's or agent's poll
        // also finds the new entries, a one-shot's does not.
        let steadyPoll = largest.ipvstop.cpu + a.newEntries.cpu
        out("  [info] best of each, not paired: \(ms(a.worst)) ms CPU on \(ms(largest.ipvstop.cpu)) ms = +\(f(a.worst / largest.ipvstop.cpu * 100, 0))%; "
            + "each against its own poll at \(at) (figures, not targets): a dashboard's or agent's "
            + "(read + parse + new-entry detection, \(ms(steadyPoll)) ms) grows by \(f(a.stateful.cpu / steadyPoll * 100, 0))% "
            + "with its steady-state update; a one-shot's (\(ms(largest.ipvstop.cpu)) ms) by \(f(a.oneShot.cpu / largest.ipvstop.cpu * 100, 0))%")
    }
    let bad = results.filter { !$0.check.isEmpty }
    target(bad.isEmpty, "table matches the generated file (entries, templates, IPv6 rows, no skipped lines, distinct clients = \(awkName)'s)"
           + (bad.isEmpty ? "" : ": " + bad.map { "\(sizeLabel($0.size)): \($0.check.joined(separator: "; "))" }.joined(separator: " | ")))
    out("  [info] vs cat at \(sizeLabel(largest.size)): ipvstop takes \(f(largest.ipvstop.cpu / largest.cat.cpu, 1))× cat's CPU time (a figure, not a target)")
}
out("bench: \(passed) passed, \(failed) failed")
if verifyFailed { out("bench: the fast aggregation and its reference disagree (--verify)") }
exit(harnessBroke || verifyFailed ? 1 : 0)

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
