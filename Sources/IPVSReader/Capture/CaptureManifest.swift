import FoundationEssentials
import IPVSModel
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why a capture (or a copied /proc tree) cannot be read as a director.
public enum CaptureError: Error, CustomStringConvertible, Equatable {
    /// The manifest or the netlink answers do not follow their format.
    case damaged(String)
    /// A file is not the size the manifest says it was written with.
    case truncated(String)
    /// Files the kernel never leaves empty are empty: a copy made with tar or cp.
    case emptyFiles(root: String, files: [String])
    /// Where a capture is to be written is not usable.
    case destination(String)

    public var description: String {
        switch self {
        case .damaged(let why): "damaged capture: \(why)"
        case .truncated(let why): "truncated capture: \(why)"
        case .emptyFiles(let root, let files):
            "\(root): \(files.joined(separator: ", ")) \(files.count == 1 ? "is" : "are") empty (0 bytes), which the kernel never writes: "
                + "a copy of /proc made with tar or cp stores its files as 0 bytes. "
                + "Take a capture on the director with 'ipvstop capture DIR' instead."
        case .destination(let why): why
        }
    }
}

/// What a capture holds beside the copied files (`DIR/ipvstop-capture`): what a tree of
/// /proc files cannot tell itself. Plain `key: value` lines, so that an operator can read
/// it before sending it.
public struct CaptureManifest: Hashable, Sendable {
    public static let fileName = "ipvstop-capture"
    public static let netlinkFileName = "netlink"
    public static let format = 1

    /// When the services (and the small files) were read.
    public var servicesReadAt: Date
    /// When the connection table was read; nil when it could not be.
    public var tableReadAt: Date?
    public var host: HostInfo
    /// The kernel's tick rate as known when the capture was taken.
    public var tickRate: TickRate?
    /// The capturing user's id (0: root, netlink answers possible).
    public var uid: UInt32
    /// How the netlink side went: `recorded` with the live read's cost, or why not.
    public var netlink: NetlinkState
    /// Every copied file (relative path) and its size in bytes.
    public var files: [(path: String, bytes: Int)]
    /// Files the tree had that could not be copied, and why (`slabinfo: permission denied`).
    public var notCopied: [String]

    /// Whether `path` (relative, e.g. `slabinfo`) was there but its user could not read it:
    /// a root-only file, which the capture's reader says is unavailable, not absent.
    func deniedToItsUser(_ path: String) -> Bool {
        notCopied.contains { $0.hasPrefix(path + ":") && $0.contains("permission denied") }
    }

    public enum NetlinkState: Hashable, Sendable {
        case recorded(cost: ReadCost)
        case unavailable(String)
        case off(String)
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.servicesReadAt == b.servicesReadAt && a.tableReadAt == b.tableReadAt && a.host == b.host && a.tickRate == b.tickRate
            && a.uid == b.uid && a.netlink == b.netlink && a.notCopied == b.notCopied
            && a.files.map(\.path) == b.files.map(\.path) && a.files.map(\.bytes) == b.files.map(\.bytes)
    }

    public func hash(into h: inout Hasher) { h.combine(servicesReadAt) }

    // MARK: Text

    public func formatted() -> String {
        var out = """
            # ipvstop capture: the director's /proc files as ipvstop read them (same paths as under /proc),
            # and what they cannot tell themselves. Read it with: ipvstop --proc-root DIR ...

            """
        func line(_ k: String, _ v: String) { out += k + ": " + v.filter { $0 != "\n" && $0 != "\r" } + "\n" }
        line("format", "\(Self.format)")
        line("services-read-at", Self.time(servicesReadAt))
        if let t = tableReadAt { line("table-read-at", Self.time(t)) }
        if let h = host.hostname { line("hostname", h) }
        if let r = host.kernelRelease { line("kernel-release", r) }
        if let t = tickRate { line("hz", "\(t.hz) \(t.origin.rawValue)") }
        line("uid", "\(uid)")
        switch netlink {
        case .recorded(let c): line("netlink", "recorded \(c.seconds) \(c.cpuSeconds) \(c.bytes) \(c.readCalls)")
        case .unavailable(let why): line("netlink", "unavailable " + why)
        case .off(let why): line("netlink", "off " + why)
        }
        for f in files { line("file", "\(f.bytes) \(f.path)") }
        for n in notCopied { line("not-copied", n) }
        return out
    }

    /// Unix seconds (exact) and the UTC time (for people): `1765130000.25 2026-12-07T17:53:20Z`.
    static func time(_ d: Date) -> String {
        let t = d.timeIntervalSince1970
        var secs = time_t(t.rounded(.down))
        var tm = tm()
        gmtime_r(&secs, &tm)
        func p(_ v: Int32, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(t) \(p(tm.tm_year + 1900, 4))-\(p(tm.tm_mon + 1, 2))-\(p(tm.tm_mday, 2))T\(p(tm.tm_hour, 2)):\(p(tm.tm_min, 2)):\(p(tm.tm_sec, 2))Z"
    }

    static func parseTime(_ v: String, _ key: String) throws -> Date {
        guard let first = v.split(separator: " ").first, let t = Double(first), t.isFinite, t >= 0, t < 1e11 else {
            throw CaptureError.damaged("\(key): '\(v.prefix(40))' is not a time")
        }
        return Date(timeIntervalSince1970: t)
    }

    public static func parse(_ text: String) throws -> CaptureManifest {
        var fields: [(String, String)] = []
        for raw in text.split(separator: "\n") {
            if raw.hasPrefix("#") || raw.allSatisfy(\.isWhitespace) { continue }
            guard let colon = raw.firstIndex(of: ":") else { throw CaptureError.damaged("manifest line '\(raw.prefix(60))' has no 'key:'") }
            let v = raw[raw.index(after: colon)...]
            fields.append((String(raw[..<colon]), String(v.hasPrefix(" ") ? v.dropFirst() : v)))
        }
        func one(_ k: String) -> String? { fields.last { $0.0 == k }?.1 }
        guard one("format") == "\(format)" else {
            throw CaptureError.damaged("\(fileName) is not format \(format) (format: \(one("format") ?? "missing"))")
        }
        guard let services = one("services-read-at") else { throw CaptureError.damaged("\(fileName) has no services-read-at") }
        var m = CaptureManifest(
            servicesReadAt: try parseTime(services, "services-read-at"),
            tableReadAt: try one("table-read-at").map { try parseTime($0, "table-read-at") },
            host: HostInfo(hostname: one("hostname"), kernelRelease: one("kernel-release")),
            tickRate: nil, uid: 0, netlink: .off("not recorded"), files: [], notCopied: [])
        if let hz = one("hz") {
            let p = hz.split(separator: " ")
            guard p.count == 2, let n = Int(p[0]), KernelConfigParser.plausible.contains(n), let o = TickRate.Origin(rawValue: String(p[1])) else {
                throw CaptureError.damaged("hz: '\(hz.prefix(40))' is not 'N origin' with a plausible N")
            }
            m.tickRate = TickRate(hz: n, origin: o)
        }
        guard let uid = one("uid").flatMap({ UInt32($0) }) else { throw CaptureError.damaged("\(fileName) has no uid") }
        m.uid = uid
        guard let nl = one("netlink") else { throw CaptureError.damaged("\(fileName) has no netlink line") }
        let np = nl.split(separator: " ", maxSplits: 1)
        switch np.first {
        case "recorded":
            let c = np.count > 1 ? np[1].split(separator: " ") : []
            guard c.count == 4, let s = Double(c[0]), let cpu = Double(c[1]), let b = Int(c[2]), let calls = Int(c[3]),
                  s.isFinite, cpu.isFinite, s >= 0, cpu >= 0, b >= 0, calls >= 0 else {
                throw CaptureError.damaged("netlink: 'recorded' needs seconds, CPU seconds, bytes and calls")
            }
            m.netlink = .recorded(cost: ReadCost(seconds: s, cpuSeconds: cpu, bytes: b, readCalls: calls))
        case "unavailable": m.netlink = .unavailable(np.count > 1 ? String(np[1]) : "")
        case "off": m.netlink = .off(np.count > 1 ? String(np[1]) : "")
        default: throw CaptureError.damaged("netlink: '\(nl.prefix(40))' is not recorded, unavailable or off")
        }
        for (k, v) in fields {
            switch k {
            case "file":
                let p = v.split(separator: " ", maxSplits: 1)
                guard p.count == 2, let n = Int(p[0]), n >= 0, Self.isSafePath(String(p[1])) else {
                    throw CaptureError.damaged("file: '\(v.prefix(60))' is not 'BYTES PATH' inside the capture")
                }
                m.files.append((String(p[1]), n))
            case "not-copied": m.notCopied.append(v)
            default: continue
            }
        }
        return m
    }

    /// A relative path that stays inside the capture: no `..`, not absolute.
    static func isSafePath(_ p: String) -> Bool {
        !p.isEmpty && !p.hasPrefix("/") && !p.split(separator: "/", omittingEmptySubsequences: false).contains { $0 == ".." || $0.isEmpty }
    }

    // MARK: Reading a capture

    /// The manifest of the capture at `root`, checked against the files there: nil when
    /// `root` holds no manifest (a plain copied tree). A file shorter or longer than the
    /// capture wrote it is an error, never a smaller director.
    public static func load(root: String) throws -> CaptureManifest? {
        let path = root + "/" + fileName
        let text: String
        do {
            text = try ProcFile.readText(path, limit: ProcFile.Limit.text).text
        } catch ProcReadError.missing {
            return nil
        }
        let m = try parse(text)
        for f in m.files {
            let full = root + "/" + f.path
            var st = stat()
            guard lstat(full, &st) == 0 else { throw CaptureError.truncated("\(f.path) is missing (the manifest lists \(f.bytes) bytes)") }
            guard st.st_mode & S_IFMT == S_IFREG else { throw CaptureError.damaged("\(f.path) is not a regular file") }
            guard Int(st.st_size) == f.bytes else {
                throw CaptureError.truncated("\(f.path) holds \(st.st_size) bytes, the capture wrote \(f.bytes)")
            }
        }
        return m
    }

    /// The captured netlink answers, decoded by the live reader's own code.
    func replayNetlink(root: String) throws -> NetlinkReading {
        let text = try ProcFile.readText(root + "/" + Self.netlinkFileName, limit: ProcFile.Limit.table).text
        let client = try IPVSNetlinkClient(transport: ReplayNetlinkTransport(try NetlinkExchangeText.parse(text)))
        var r = try client.read()
        if case .recorded(let cost) = netlink { r.cost = cost }
        return r
    }
}

/// Checks that a copied tree is not the 0-byte files `tar` or `cp` make of /proc.
enum TreeCheck {
    /// Files the kernel always writes something to (a header at least), when they exist.
    static let neverEmpty = [
        "net/ip_vs", "net/ip_vs_conn", "net/ip_vs_conn_sync", "net/ip_vs_stats", "net/ip_vs_stats_percpu",
        "sys/kernel/osrelease", "sys/kernel/hostname",
    ]

    /// Throws when a file that is never empty is empty, or every sysctl is.
    static func verify(root: String) throws {
        var empty: [String] = []
        for f in neverEmpty where isEmptyRegular(root + "/" + f) { empty.append(f) }
        let dir = root + "/sys/net/ipv4/vs"
        if let names = CaptureFiles.list(dir), !names.isEmpty,
           names.allSatisfy({ isEmptyRegular(dir + "/" + $0) }) {
            empty.append("sys/net/ipv4/vs/* (all \(names.count))")
        }
        if !empty.isEmpty { throw CaptureError.emptyFiles(root: root, files: empty) }
    }

    static func isEmptyRegular(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFREG && st.st_size == 0
    }
}

/// This machine's host name and kernel release (`uname -n`, `uname -r`).
enum Uname {
    static func host() -> HostInfo? {
        var u = utsname()
        guard uname(&u) == 0 else { return nil }
        func text<T>(_ field: inout T) -> String? {
            withUnsafeBytes(of: &field) { b in
                let s = String(decoding: b.prefix { $0 != 0 }, as: UTF8.self)
                return s.isEmpty ? nil : s
            }
        }
        return HostInfo(hostname: text(&u.nodename), kernelRelease: text(&u.release))
    }

    /// A tree's `sys/kernel/hostname` and `sys/kernel/osrelease`.
    static func host(root: String) -> HostInfo? {
        func read(_ f: String) -> String? {
            guard let t = try? ProcFile.readText(root + "/sys/kernel/" + f, limit: ProcFile.Limit.small).text else { return nil }
            let s = String(t.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
            return s.isEmpty || s.contains("\n") ? nil : s
        }
        let h = HostInfo(hostname: read("hostname"), kernelRelease: read("osrelease"))
        return h.hostname == nil && h.kernelRelease == nil ? nil : h
    }
}
