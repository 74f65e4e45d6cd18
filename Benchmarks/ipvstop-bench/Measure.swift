import Foundation
#if canImport(Glibc)
import Glibc
#endif

enum BenchError: Error, CustomStringConvertible {
    case harness(String)
    var description: String {
        switch self { case .harness(let s): s }
    }
}

enum Clock {
    static func now(_ id: clockid_t) -> Double {
        var ts = timespec()
        clock_gettime(id, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
    static var wall: Double { now(CLOCK_MONOTONIC) }
    /// User + system CPU of this process (the bench is single-threaded while measuring).
    static var cpu: Double { now(CLOCK_PROCESS_CPUTIME_ID) }
}

/// One timed run: wall seconds and CPU seconds (user + system).
struct Timing {
    var wall: Double
    var cpu: Double
}

extension Array where Element == Timing {
    /// The best run by wall time, and the least CPU of any run: the machine is shared, so
    /// the minimum is the figure least disturbed by other work.
    var best: Timing { Timing(wall: map(\.wall).min() ?? .nan, cpu: map(\.cpu).min() ?? .nan) }
}

/// What a child process did: its exit status, times, peak RSS and what it printed.
struct ChildResult {
    var status: Int32
    var timing: Timing
    var maxRSSKiB: Int
    var output: String
}

enum Spawn {
    /// Runs `argv` (argv[0] an absolute path) with `env`, stdout to a pipe (read after it
    /// exits; callers print little) or to /dev/null, stderr to /dev/null.
    static func run(_ argv: [String], env: [String] = ["PATH=/usr/bin:/bin", "LC_ALL=C"], captureOutput: Bool = true) throws -> ChildResult {
        var fds: [Int32] = [-1, -1]
        if captureOutput {
            guard pipe(&fds) == 0 else { throw BenchError.harness("pipe: \(String(cString: strerror(errno)))") }
        }
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        if captureOutput {
            posix_spawn_file_actions_adddup2(&fa, fds[1], 1)
            posix_spawn_file_actions_addclose(&fa, fds[0])
            posix_spawn_file_actions_addclose(&fa, fds[1])
        } else {
            posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0)

        let cargv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cenv: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer { for p in cargv + cenv { free(p) } }

        var pid: pid_t = 0
        let wall0 = Clock.wall
        let rc = posix_spawn(&pid, argv[0], &fa, nil, cargv, cenv)
        if captureOutput { close(fds[1]) }
        guard rc == 0 else {
            if captureOutput { close(fds[0]) }
            throw BenchError.harness("cannot run \(argv[0]): \(String(cString: strerror(rc)))")
        }
        var output = [UInt8]()
        if captureOutput {
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buf.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, 65536) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                output += buf[0..<n]
            }
            close(fds[0])
        }
        var status: Int32 = 0
        var ru = rusage()
        while wait4(pid, &status, 0, &ru) < 0 {
            guard errno == EINTR else { throw BenchError.harness("wait4: \(String(cString: strerror(errno)))") }
        }
        let wall = Clock.wall - wall0
        let cpu = Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) / 1e6
            + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) / 1e6
        // WIFEXITED / WEXITSTATUS by hand: the macros do not reach Swift.
        let exit: Int32 = status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return ChildResult(status: exit, timing: Timing(wall: wall, cpu: cpu), maxRSSKiB: Int(ru.ru_maxrss),
                           output: String(decoding: output, as: UTF8.self))
    }

    /// Starts `argv` with stdout and stderr to /dev/null and does not wait; the caller
    /// reaps the returned pid.
    static func start(_ argv: [String]) throws -> pid_t {
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0)
        let cargv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let env: [String] = ["PATH=/usr/bin:/bin", "LC_ALL=C"]
        let cenv: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer { for p in cargv + cenv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &fa, nil, cargv, cenv)
        guard rc == 0 else { throw BenchError.harness("cannot run \(argv[0]): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// `/bin/sh -c SCRIPT sh ARGS...`, best of `runs`; fails if any run fails.
    static func shell(_ script: String, _ args: [String], runs: Int) throws -> (best: Timing, output: String) {
        var timings: [Timing] = []
        var output = ""
        for _ in 0..<runs {
            let r = try run(["/bin/sh", "-c", script, "sh"] + args)
            guard r.status == 0 else { throw BenchError.harness("sh -c '\(script)' exited \(r.status)") }
            timings.append(r.timing)
            output = r.output
        }
        return (timings.best, output)
    }
}

/// Memory figures from /proc/self/status, in KiB.
enum ProcStatus {
    static func kib(_ field: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            let digits = line.dropFirst(field.count + 1).filter(\.isNumber)
            return Int(digits) ?? -1
        }
        return -1
    }
}

/// Resolves a program name on PATH, following links (to say which awk ran).
func resolveOnPath(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let p = "\(dir)/\(name)"
        if access(p, X_OK) == 0 {
            guard let r = realpath(p, nil) else { return p }
            defer { free(r) }
            return String(cString: r)
        }
    }
    return nil
}

func selfExecutable() -> String {
    guard let r = realpath("/proc/self/exe", nil) else { return CommandLine.arguments[0] }
    defer { free(r) }
    return String(cString: r)
}
