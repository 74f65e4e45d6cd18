import FoundationEssentials
import IPVSModel
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Directory listing and file copying for captures, with the reader's hardening: only
/// regular files are read (`ProcFile.open`), each under its size cap.
enum CaptureFiles {
    /// Names in `dir` (no `.`/`..`), sorted; nil when it cannot be opened.
    static func list(_ dir: String) -> [String]? {
        guard let d = opendir(dir) else { return nil }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: &e.pointee.d_name) { b in String(decoding: b.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Copies `from` (a /proc file, or any regular file) to the new file `to`, byte for
    /// byte, in large reads; returns the bytes copied.
    static func copy(from: String, to: String, limit: Int) throws -> Int {
        let src = try ProcFile.open(from)
        defer { close(src) }
        let dst = Glibc.open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard dst >= 0 else { throw CaptureError.destination("\(to): \(String(cString: strerror(errno)))") }
        defer { close(dst) }
        let size = 256 << 10
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { buf.deallocate() }
        var total = 0
        while true {
            let n = read(src, buf.baseAddress, size)
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                if e == EACCES || e == EPERM { throw ProcReadError.permissionDenied(from) }
                throw ProcReadError.io(from, e)
            }
            if n == 0 { break }
            total += n
            if total > limit { throw ProcReadError.tooLarge(from, limit: limit) }
            try write(dst, UnsafeRawBufferPointer(rebasing: buf[0..<n]), path: to)
        }
        return total
    }

    static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var off = 0
        while off < bytes.count {
            let w = Glibc.write(fd, bytes.baseAddress! + off, bytes.count - off)
            if w < 0 {
                if errno == EINTR { continue }
                throw CaptureError.destination("\(path): \(String(cString: strerror(errno)))")
            }
            off += w
        }
    }

    /// Writes `text` to the new file `path` (`O_EXCL`: nothing is overwritten).
    static func create(_ path: String, _ text: String) throws {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw CaptureError.destination("\(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var t = text
        try t.withUTF8 { try write(fd, UnsafeRawBufferPointer($0), path: path) }
    }

    static func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw CaptureError.destination("\(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// `ipvstop capture DIR`: everything the reader reads from a /proc tree, copied byte for
/// byte with the reader's own hardened reading (not tar, which stores /proc files as 0
/// bytes), plus what a tree cannot tell: the host name, the kernel release, HZ, when it was
/// read, and (as root) the IPVS netlink answers, so that stats, rates, PersistConn and
/// timeouts in seconds survive. The result is a directory laid out like /proc with a
/// manifest (`ipvstop-capture`) and the netlink answers (`netlink`), both text; every
/// command reads it with `--proc-root DIR`.
public struct CaptureWriter: Sendable {
    public let options: ReaderOptions

    public init(options: ReaderOptions) { self.options = options }

    /// The small files, in the order they are read (services first, like the reader).
    static let smallFiles = [
        "net/ip_vs", "net/ip_vs_stats", "net/ip_vs_stats_percpu", "net/ip_vs_status", "slabinfo",
        "sys/kernel/osrelease", "sys/kernel/hostname",
    ]
    static let tableFiles = ["net/ip_vs_conn", "net/ip_vs_conn_sync"]
    /// Where a capture keeps `/sys/kernel/slab/ip_vs_conn/slab_size` (the entry size anyone
    /// may read when slabinfo is root's only): not under /proc, so beside it.
    static let sysfsSlabDir = "sysfs/kernel/slab/ip_vs_conn"

    /// Writes the capture to `dir` (a new or empty directory), then reads it back as every
    /// command would and returns that snapshot: a capture that cannot be read is an error
    /// here, on the director, not later at the support desk.
    @discardableResult
    public func write(to dir: String) throws -> Snapshot {
        let root = options.procRoot
        if let names = CaptureFiles.list(dir), !names.isEmpty {
            throw CaptureError.destination("\(dir) exists and is not empty: give a new directory")
        }
        // The director must be there before anything is written.
        let reader = SnapshotReader(options: options)
        guard access(root + "/net/ip_vs", F_OK) == 0 else { throw SnapshotError.ipvsNotLoaded(procRoot: root) }
        if !options.isLive { try TreeCheck.verify(root: root) }
        try CaptureFiles.makeDirectory(dir)
        for sub in ["net", "sys", "sys/kernel", "sys/net", "sys/net/ipv4", "sys/net/ipv4/vs"] {
            try CaptureFiles.makeDirectory(dir + "/" + sub)
        }

        var files: [(path: String, bytes: Int)] = []
        var notCopied: [String] = []
        func copy(_ rel: String, limit: Int) throws {
            do {
                files.append((rel, try CaptureFiles.copy(from: root + "/" + rel, to: dir + "/" + rel, limit: limit)))
            } catch ProcReadError.missing {
                return
            } catch let e as ProcReadError {
                // Root-only files (slabinfo, ip_vs_status) and refused ones: said, not fatal.
                _ = unlink(dir + "/" + rel)
                notCopied.append("\(rel): \(e)")
                if rel == "net/ip_vs" { throw e }
            }
        }

        let servicesReadAt = Date()
        for f in Self.smallFiles { try copy(f, limit: f.hasPrefix("sys/") ? ProcFile.Limit.small : ProcFile.Limit.text) }
        for name in CaptureFiles.list(root + "/sys/net/ipv4/vs") ?? [] where CaptureManifest.isSafePath(name) {
            try copy("sys/net/ipv4/vs/" + name, limit: ProcFile.Limit.small)
        }

        if options.isLive {
            var d = dir
            for part in Self.sysfsSlabDir.split(separator: "/") {
                d += "/" + part
                try CaptureFiles.makeDirectory(d)
            }
            let rel = Self.sysfsSlabDir + "/slab_size"
            if let n = try? CaptureFiles.copy(from: "/sys/kernel/slab/ip_vs_conn/slab_size", to: dir + "/" + rel, limit: ProcFile.Limit.small) {
                files.append((rel, n))
            } else {
                _ = unlink(dir + "/" + rel)
            }
        }

        // Netlink, recorded as it is read: only from this machine's own kernel.
        var netlink: CaptureManifest.NetlinkState = .off(options.isLive ? "disabled (--no-netlink)" : "captured from a copied tree (\(root))")
        var exchanges: [NetlinkExchange] = []
        if options.isLive && options.useNetlink {
            do {
                let recorder = RecordingNetlinkTransport(try NetlinkSocket(receiveTimeout: 5))
                let reading = try IPVSNetlinkClient(transport: recorder).read()
                exchanges = recorder.exchanges
                netlink = .recorded(cost: reading.cost)
            } catch {
                netlink = .unavailable("\(error)")
            }
        }

        var tableReadAt: Date?
        for f in Self.tableFiles {
            let at = Date()
            let before = files.count
            try copy(f, limit: ProcFile.Limit.table)
            if f == "net/ip_vs_conn" && files.count > before { tableReadAt = at }
        }

        let (configHZ, _) = reader.kernelConfigHZ()
        let tick = options.hz.map { TickRate(hz: $0, origin: .option) } ?? configHZ
        let host = (options.isLive ? Uname.host() : nil) ?? Uname.host(root: root) ?? HostInfo(hostname: nil, kernelRelease: nil)
        if case .recorded = netlink {
            let text = NetlinkExchangeText.format(exchanges)
            try CaptureFiles.create(dir + "/" + CaptureManifest.netlinkFileName, text)
            files.append((CaptureManifest.netlinkFileName, text.utf8.count))
        }
        let manifest = CaptureManifest(
            servicesReadAt: servicesReadAt, tableReadAt: tableReadAt, host: host, tickRate: tick,
            uid: getuid(), netlink: netlink, files: files, notCopied: notCopied)
        // The manifest last: a capture cut short by an error has none, and reads as a
        // plain (and likely incomplete) tree, whose empty files are refused.
        try CaptureFiles.create(dir + "/" + CaptureManifest.fileName, manifest.formatted())
        return try SnapshotReader(options: ReaderOptions(procRoot: dir, hz: options.hz)).snapshot()
    }
}
