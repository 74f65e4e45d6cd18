import CZlib
import FoundationEssentials
import IPVSModel
#if canImport(Glibc)
import Glibc
#endif

/// Why a /proc file could not be read, in words an operator can act on.
public enum ProcReadError: Error, Equatable, CustomStringConvertible {
    /// What a failed read(2) of `path` with `errno` means: a permission refused (a root-only
    /// file) or any other I/O error.
    static func ofRead(_ path: String, errno e: Int32) -> ProcReadError {
        e == EACCES || e == EPERM ? .permissionDenied(path) : .io(path, e)
    }

    case missing(String)
    case permissionDenied(String)
    case io(String, Int32)
    /// A FIFO, device, socket or directory where a file was expected: reading it could
    /// block forever (a FIFO) or never end (`/dev/zero`), so it is refused before any read.
    case notRegular(String, kind: String)
    /// The file passed the size cap for its kind: no kernel file of that kind is so large,
    /// so what was read is not used.
    case tooLarge(String, limit: Int)

    public var description: String {
        switch self {
        case .missing(let p): "\(p) does not exist"
        case .permissionDenied(let p): "\(p): permission denied"
        case .io(let p, let e): "\(p): \(String(cString: strerror(e)))"
        case .notRegular(let p, let kind): "\(p) is a \(kind), not a regular file: not read"
        case .tooLarge(let p, let limit): "\(p) is larger than \(limit) bytes, more than the kernel writes there: not read"
        }
    }
}

/// Clocks for a read's cost: wall time and this thread's CPU time (the kernel's seq_file
/// walk runs in our thread's system time, so it is counted too).
struct CostClock {
    let wall0: Double
    let cpu0: Double

    init() {
        wall0 = Self.now(CLOCK_MONOTONIC)
        cpu0 = Self.now(CLOCK_THREAD_CPUTIME_ID)
    }

    static func now(_ clock: clockid_t) -> Double {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    func cost(bytes: Int, readCalls: Int) -> ReadCost {
        ReadCost(
            seconds: Self.now(CLOCK_MONOTONIC) - wall0,
            cpuSeconds: Self.now(CLOCK_THREAD_CPUTIME_ID) - cpu0,
            bytes: bytes, readCalls: readCalls)
    }
}

/// Reads /proc files with plain read(2).
///
/// Each read() of `ip_vs_conn` makes older kernels walk the connection hash from bucket 0
/// again, so the number of calls sets the kernel's cost. A larger buffer does not lower it:
/// a seq_file read() returns at most about one page (~40 rows) whatever the buffer size
/// (checked on /proc/kallsyms here: 4071, 4092, 4063 bytes for 1 MB asked).
enum ProcFile {
    /// Size caps, far above anything the kernel writes, so that a file that never ends
    /// (`/dev/zero` copied or linked into a capture) costs a bounded read and a message.
    enum Limit {
        /// `net/ip_vs`, the stats files, slabinfo: 10^5 real servers print ~7 MB.
        static let text = 64 << 20
        /// One sysctl, `osrelease`, a sysfs attribute: a line.
        static let small = 64 << 10
        /// The connection table: ~67 bytes an IPv4 row, so 4 GiB is ~6.4 × 10^7 entries,
        /// more than any director's memory holds (each entry is ~320 bytes of kernel slab).
        static let table = 4 << 30
    }

    /// Opens `path` for reading, refusing anything but a regular file (every /proc, /sys
    /// and captured file is one): a FIFO would block the open or the read forever and a
    /// device may never end. The open itself does not block (`O_NONBLOCK`), the type is
    /// checked on the opened descriptor (no race with a rename), then reads block as usual.
    static func open(_ path: String) throws -> Int32 {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        if fd < 0 {
            let e = errno
            switch e {
            case ENOENT, ENOTDIR: throw ProcReadError.missing(path)
            case EACCES, EPERM: throw ProcReadError.permissionDenied(path)
            default: throw ProcReadError.io(path, e)
            }
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw ProcReadError.io(path, e)
        }
        let kind: String? = switch st.st_mode & S_IFMT {
        case S_IFREG: nil
        case S_IFIFO: "FIFO"
        case S_IFCHR: "character device"
        case S_IFBLK: "block device"
        case S_IFSOCK: "socket"
        case S_IFDIR: "directory"
        default: "special file"
        }
        if let kind {
            close(fd)
            throw ProcReadError.notRegular(path, kind: kind)
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return fd
    }

    /// The whole file as text, for the small files (services, stats, sysctls); throws
    /// `tooLarge` past `limit` bytes.
    static func readText(_ path: String, limit: Int = Limit.text) throws -> (text: String, read: FileRead) {
        let at = Date()
        let clock = CostClock()
        let fd = try open(path)
        defer { close(fd) }
        var data = [UInt8]()
        var calls = 0
        // Uninitialised (read(2) fills what it returns): zero-filling 256 KB for each of the
        // thirty-odd small files a poll reads was a fifth of a short command's start-up.
        // What must hold: only `buf[0..<n]` after a read that returned n is ever looked at.
        let chunk = min(256 * 1024, limit + 1)
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n = read(fd, buf.baseAddress, chunk)
            calls += 1
            if n < 0 {
                if errno == EINTR { continue }
                throw ProcReadError.ofRead(path, errno: errno)
            }
            if n == 0 { break }
            if data.count + n > limit { throw ProcReadError.tooLarge(path, limit: limit) }
            assert(n <= chunk, "read(2) returned more than it was asked")
            data.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[0..<n]))
        }
        let text = String(decoding: data, as: UTF8.self)
        let name = path.lastPathPart
        return (text, FileRead(name: name, readAt: at, cost: clock.cost(bytes: data.count, readCalls: calls)))
    }

    /// Streams the file through `consume` in chunks that end on a line boundary, so that a
    /// million-entry table is never held as text in memory. `consume` gets complete lines,
    /// and last, with `unterminated` true, a final line with no newline (a truncated file).
    ///
    /// 256 KB: /proc fills a page per call anyway (see above); for a captured file it is
    /// few calls, and a chunk that stays in the cache while it is parsed. 4 MB parsed no
    /// faster and added 40 bytes an entry to a 10^5-entry read's peak (`ipvstop-bench`).
    static func streamLines(
        _ path: String, chunkSize: Int = 256 << 10, limit: Int = Limit.table,
        _ consume: (_ lines: UnsafeBufferPointer<UInt8>, _ unterminated: Bool) -> Void
    ) throws -> ReadCost {
        let clock = CostClock()
        let fd = try open(path)
        defer { close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        let base = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var filled = 0, total = 0, calls = 0
        while true {
            if filled == chunkSize {
                // A single line longer than the buffer: no kernel row is; pass it on as is
                // and let the parser count it as malformed.
                consume(UnsafeBufferPointer(start: base, count: filled), true)
                filled = 0
            }
            let n = read(fd, base + filled, chunkSize - filled)
            calls += 1
            if n < 0 {
                if errno == EINTR { continue }
                throw ProcReadError.ofRead(path, errno: errno)
            }
            if n == 0 { break }
            total += n
            if total > limit { throw ProcReadError.tooLarge(path, limit: limit) }
            filled += n
            // Hand over everything up to the last newline; keep the rest for the next read.
            var end = filled
            while end > 0 && base[end - 1] != 0x0A { end -= 1 }
            if end > 0 {
                consume(UnsafeBufferPointer(start: base, count: end), false)
                if end < filled { memmove(base, base + end, filled - end) }
                filled -= end
            }
        }
        if filled > 0 { consume(UnsafeBufferPointer(start: base, count: filled), true) }
        return clock.cost(bytes: total, readCalls: calls)
    }

    /// A gzip-compressed file's text (`/proc/config.gz`), through zlib; the file is refused
    /// as `open` refuses any, and what it inflates to is capped at `limit` bytes (a gzip
    /// bomb costs a bounded read and a message). Throws `io` with EINVAL for data that is
    /// not gzip (zlib then passes it through as is: that is accepted, a plain config).
    static func readGzipText(_ path: String, limit: Int) throws -> String {
        let fd = try open(path)
        guard let gz = gzdopen(fd, "rb") else {
            close(fd)
            throw ProcReadError.io(path, ENOMEM)
        }
        defer { gzclose(gz) }
        var data = [UInt8]()
        let chunk = 64 * 1024
        var buf = [UInt8](repeating: 0, count: chunk)
        while true {
            let n = buf.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32(chunk)) }
            if n < 0 { throw ProcReadError.io(path, EINVAL) }
            if n == 0 { break }
            if data.count + Int(n) > limit { throw ProcReadError.tooLarge(path, limit: limit) }
            data.append(contentsOf: buf[0..<Int(n)])
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Size of a regular file, or nil for /proc files (which report 0) and anything that
    /// is not a regular file.
    static func sizeHint(_ path: String) -> Int? {
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_size > 0 else { return nil }
        return Int(st.st_size)
    }
}
