#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import IPVSModel

/// What the IPVS netlink family says about the director.
public struct NetlinkReading: Sendable {
    /// GET_INFO: version (`1.2.1`) and connection hash table size.
    public var info: IPVSInfo
    /// GET_SERVICE dump, each with its GET_DEST dump, in the kernel's (ipvsadm's) order.
    public var services: [VirtualService]
    /// GET_CONFIG.
    public var timeouts: Timeouts
    /// GET_DAEMON dump (empty when no sync daemon runs).
    public var syncDaemons: [SyncDaemon]
    /// Wall and CPU seconds (of the calling thread: the kernel's dump work runs in our
    /// recvmsg and counts as its system time), bytes received, recv calls.
    public var cost: ReadCost

    public init(info: IPVSInfo, services: [VirtualService], timeouts: Timeouts, syncDaemons: [SyncDaemon], cost: ReadCost) {
        self.info = info
        self.services = services
        self.timeouts = timeouts
        self.syncDaemons = syncDaemons
        self.cost = cost
    }
}

/// Why the IPVS netlink family could not be read, in words an operator can act on.
public enum NetlinkError: Error, Equatable, CustomStringConvertible {
    /// The kernel refused with EPERM/EACCES: every IPVS netlink command, reads included,
    /// needs CAP_NET_ADMIN in the network namespace.
    case permissionDenied(command: String)
    /// No generic-netlink family `IPVS`: the ip_vs module is not loaded.
    case familyNotFound
    /// A socket call failed (`socket`, `bind`, `sendto`, `recvfrom`...).
    case socket(call: String, errno: Int32)
    /// The kernel answered a command with another error.
    case kernel(command: String, errno: Int32)
    /// No answer within the receive timeout.
    case timeout(command: String, seconds: Double)
    /// The table kept changing during the dumps (NLM_F_DUMP_INTR on every attempt).
    case dumpInterrupted(attempts: Int)
    /// A reply shorter than its own lengths say.
    case truncated(String)
    /// A reply that does not follow the format.
    case malformed(String)

    static func fromKernel(errno e: Int32, command: String) -> NetlinkError {
        switch e {
        case EPERM, EACCES: .permissionDenied(command: command)
        default: .kernel(command: command, errno: e)
        }
    }

    public var description: String {
        switch self {
        case .permissionDenied(let c):
            "IPVS netlink refused \(c): reading IPVS over netlink needs CAP_NET_ADMIN (run as root). "
                + "Without it only /proc is readable: no stats, rates, PersistConn or thresholds."
        case .familyNotFound:
            "no IPVS generic netlink family: the ip_vs kernel module is not loaded "
                + "(load it with `modprobe ip_vs`, or check this is the director)"
        case .socket(let call, let e):
            "netlink \(call) failed: \(errnoText(e))"
        case .kernel(let c, let e):
            "IPVS netlink \(c) failed: \(errnoText(e))"
        case .timeout(let c, let s):
            "IPVS netlink \(c): no answer from the kernel within \(s) s"
        case .dumpInterrupted(let n):
            "IPVS tables changed during every one of \(n) netlink dumps; try again"
        case .truncated(let what):
            "truncated IPVS netlink reply: \(what)"
        case .malformed(let what):
            "malformed IPVS netlink reply: \(what)"
        }
    }
}

func errnoText(_ e: Int32) -> String {
    "\(String(cString: strerror(e))) (errno \(e))"
}

/// Reads the IPVS generic-netlink family: services, real servers, timeouts, sync daemons.
///
/// It speaks generic netlink itself over an `AF_NETLINK`/`NETLINK_GENERIC` socket rather
/// than through libnl (what ipvsadm and keepalived use): no C library to build against or
/// ship, the protocol subset needed (one family lookup, three dumps, two requests) is
/// small, and we choose the receive buffer size and check every length ourselves.
///
/// One client owns one socket; it is not safe to call `read()` from two threads at once.
/// Reading needs CAP_NET_ADMIN (the kernel's GENL_ADMIN_PERM), even for GET commands.
public struct IPVSNetlinkClient {
    private let conversation: NetlinkConversation
    /// The IPVS family's generic-netlink id, resolved once.
    public let familyID: UInt16

    /// Opens and binds the socket and resolves the `IPVS` family.
    /// - Parameters:
    ///   - receiveTimeout: seconds to wait for each datagram before giving up.
    ///   - allowModuleAutoload: when false (the default) and `/sys/module` shows no
    ///     `ip_vs`, fail with `.familyNotFound` without asking the kernel: as root, a
    ///     CTRL_CMD_GETFAMILY for `IPVS` makes the kernel load ip_vs on its own
    ///     (`net-pf-16-proto-16-family-IPVS`), and a monitoring tool must not turn a
    ///     machine into a director as a side effect.
    public init(receiveTimeout: Double = 5, allowModuleAutoload: Bool = false) throws {
        if !allowModuleAutoload && access("/sys/module", F_OK) == 0 && access("/sys/module/ip_vs", F_OK) != 0 {
            throw NetlinkError.familyNotFound
        }
        let socket = try NetlinkSocket(receiveTimeout: receiveTimeout)
        try self.init(transport: socket)
    }

    init(transport: any NetlinkTransport) throws {
        conversation = NetlinkConversation(transport: transport)
        familyID = try conversation.resolveFamily(IPVSNL.familyName)
    }

    /// Reads everything once. A dump that reports NLM_F_DUMP_INTR restarts the whole read
    /// (up to three attempts in all).
    public func read() throws -> NetlinkReading {
        try conversation.readIPVS(family: familyID, maxAttempts: 3)
    }
}

// MARK: - Transport

/// Sends requests and receives datagrams from the kernel; a fake stands in for tests.
protocol NetlinkTransport: AnyObject {
    /// The port id the kernel gave our socket (0 when unknown).
    var portID: UInt32 { get }
    func send(_ message: [UInt8], label: String) throws
    /// One datagram from the kernel.
    func receive(label: String) throws -> [UInt8]
}

/// An `AF_NETLINK`/`NETLINK_GENERIC` socket bound to a kernel-chosen port.
final class NetlinkSocket: NetlinkTransport {
    private let fd: Int32
    let portID: UInt32
    private let timeout: Double
    /// Large enough for any datagram the kernel builds for a dump (it caps them at 32 KiB);
    /// a bigger one is detected with MSG_TRUNC and reported, never silently cut.
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)

    private static let afNetlink: Int32 = 16  // AF_NETLINK
    private static let netlinkGeneric: Int32 = 16  // NETLINK_GENERIC

    init(receiveTimeout: Double) throws {
        timeout = receiveTimeout
        #if canImport(Glibc)
        let type = Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        #else
        let type = SOCK_RAW | SOCK_CLOEXEC
        #endif
        let s = socket(Self.afNetlink, type, Self.netlinkGeneric)
        guard s >= 0 else { throw NetlinkError.socket(call: "socket(AF_NETLINK, NETLINK_GENERIC)", errno: errno) }
        do {
            portID = try Self.setUp(s, receiveTimeout: receiveTimeout)
        } catch {
            close(s)
            throw error
        }
        fd = s
    }

    /// Sets the receive timeout, binds to a kernel-chosen port, returns that port id.
    private static func setUp(_ s: Int32, receiveTimeout: Double) throws -> UInt32 {
        let whole = receiveTimeout.rounded(.down)
        var tv = timeval(tv_sec: Int(whole), tv_usec: Int((receiveTimeout - whole) * 1e6))
        guard setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
            throw NetlinkError.socket(call: "setsockopt(SO_RCVTIMEO)", errno: errno)
        }
        var addr = netlinkAddress(pid: 0)
        let rc = addr.withUnsafeBytes { p in
            bind(s, p.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(addressLength))
        }
        guard rc == 0 else { throw NetlinkError.socket(call: "bind", errno: errno) }
        var len = socklen_t(addr.count)
        let gr = addr.withUnsafeMutableBytes { p in
            getsockname(s, p.baseAddress!.assumingMemoryBound(to: sockaddr.self), &len)
        }
        guard gr == 0 else { throw NetlinkError.socket(call: "getsockname", errno: errno) }
        return hostU32(addr[...], 4)
    }

    deinit { close(fd) }

    /// sockaddr_nl { u16 family; u16 pad; u32 pid; u32 groups }.
    private static let addressLength = 12
    private static func netlinkAddress(pid: UInt32) -> [UInt8] {
        hostBytes(UInt16(afNetlink)) + [0, 0] + hostBytes(pid) + hostBytes(UInt32(0))
    }

    func send(_ message: [UInt8], label: String) throws {
        let kernel = Self.netlinkAddress(pid: 0)
        while true {
            let n = message.withUnsafeBytes { m in
                kernel.withUnsafeBytes { a in
                    sendto(fd, m.baseAddress, m.count, 0, a.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(Self.addressLength))
                }
            }
            if n == message.count { return }
            if n < 0 && errno == EINTR { continue }
            throw NetlinkError.socket(call: "sendto (\(label))", errno: n < 0 ? errno : EMSGSIZE)
        }
    }

    func receive(label: String) throws -> [UInt8] {
        while true {
            var from = [UInt8](repeating: 0, count: 16)
            var fromLen = socklen_t(from.count)
            let cap = buffer.count
            let n = buffer.withUnsafeMutableBytes { b in
                from.withUnsafeMutableBytes { f in
                    recvfrom(fd, b.baseAddress, cap, Int32(MSG_TRUNC), f.baseAddress!.assumingMemoryBound(to: sockaddr.self), &fromLen)
                }
            }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK { throw NetlinkError.timeout(command: label, seconds: timeout) }
                if e == ENOBUFS { throw NetlinkError.truncated("\(label): the socket's receive queue overflowed (ENOBUFS)") }
                throw NetlinkError.socket(call: "recvfrom (\(label))", errno: e)
            }
            // Only the kernel (port 0) may talk to us.
            if fromLen >= 8 && hostU32(from[...], 4) != 0 { continue }
            guard n <= cap else {
                throw NetlinkError.truncated("\(label): a \(n)-byte datagram exceeds the \(cap)-byte receive buffer")
            }
            return Array(buffer[0..<n])
        }
    }
}

// MARK: - Conversation

/// Sequence numbers, reply collection and cost counting over a transport.
final class NetlinkConversation {
    let transport: any NetlinkTransport
    private var nextSeq: UInt32
    private(set) var bytesReceived = 0
    private(set) var receiveCalls = 0

    init(transport: any NetlinkTransport) {
        self.transport = transport
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        nextSeq = UInt32(truncatingIfNeeded: ts.tv_sec) &* 1000 &+ UInt32(truncatingIfNeeded: ts.tv_nsec / 1_000_000)
        if nextSeq == 0 { nextSeq = 1 }
    }

    struct Reply {
        var messages: [GenericMessage]
        var interrupted: Bool
    }

    private func takeSeq() -> UInt32 {
        let s = nextSeq
        nextSeq = nextSeq &+ 1
        if nextSeq == 0 { nextSeq = 1 }
        return s
    }

    /// Sends one request built for a fresh sequence number and collects its answer.
    func exchange(label: String, expecting type: UInt16, _ build: (_ seq: UInt32, _ pid: UInt32) -> [UInt8]) throws -> Reply {
        let seq = takeSeq()
        try transport.send(build(seq, transport.portID), label: label)
        var collector = ReplyCollector(seq: seq, portID: transport.portID, familyType: type, label: label)
        while !collector.finished {
            let d = try transport.receive(label: label)
            receiveCalls += 1
            bytesReceived += d.count
            try collector.consume(d)
        }
        return Reply(messages: collector.messages, interrupted: collector.interrupted)
    }

    func resolveFamily(_ name: String) throws -> UInt16 {
        do {
            let r = try exchange(label: "CTRL_CMD_GETFAMILY \(name)", expecting: NL.genlIDCtrl) { seq, pid in
                buildGetFamilyRequest(name: name, seq: seq, pid: pid)
            }
            return try IPVSDecode.familyID(r.messages)
        } catch NetlinkError.kernel(_, let e) where e == ENOENT {
            throw NetlinkError.familyNotFound
        }
    }

    private struct Interrupted: Error {}

    func readIPVS(family: UInt16, maxAttempts: Int) throws -> NetlinkReading {
        let wall0 = Self.clock(CLOCK_MONOTONIC)
        let cpu0 = Self.clock(CLOCK_THREAD_CPUTIME_ID)
        let bytes0 = bytesReceived, calls0 = receiveCalls
        for _ in 0..<maxAttempts {
            do {
                let (info, services, timeouts, daemons) = try readOnce(family: family)
                let cost = ReadCost(
                    seconds: Self.clock(CLOCK_MONOTONIC) - wall0,
                    cpuSeconds: Self.clock(CLOCK_THREAD_CPUTIME_ID) - cpu0,
                    bytes: bytesReceived - bytes0, readCalls: receiveCalls - calls0)
                return NetlinkReading(info: info, services: services, timeouts: timeouts, syncDaemons: daemons, cost: cost)
            } catch is Interrupted {
                continue
            }
        }
        throw NetlinkError.dumpInterrupted(attempts: maxAttempts)
    }

    private func readOnce(family: UInt16) throws -> (IPVSInfo, [VirtualService], Timeouts, [SyncDaemon]) {
        func ask(_ label: String, _ command: UInt8, dump: Bool) throws -> Reply {
            let r = try exchange(label: label, expecting: family) { seq, pid in
                buildIPVSRequest(family: family, command: command, dump: dump, seq: seq, pid: pid)
            }
            if r.interrupted { throw Interrupted() }
            return r
        }

        let info = try IPVSDecode.info(ask("GET_INFO", IPVSNL.cmdGetInfo, dump: false).messages)

        var services: [VirtualService] = []
        var seen = Set<ServiceIdentity>()
        for m in try ask("GET_SERVICE", IPVSNL.cmdGetService, dump: true).messages {
            var (svc, id) = try IPVSDecode.service(m)
            // The kernel resumes a multi-datagram dump by index: a service added or removed
            // meanwhile can shift one into view twice. Keep the first.
            guard seen.insert(id).inserted else { continue }
            let label = "GET_DEST \(svc.key)"
            let r = try exchange(label: label, expecting: family) { seq, pid in
                buildGetDestRequest(family: family, service: id, seq: seq, pid: pid)
            }
            if r.interrupted { throw Interrupted() }
            // A service deleted since the service dump answers with an empty dump.
            svc.realServers = try r.messages.map { try IPVSDecode.destination($0, serviceAF: id.af) }
            services.append(svc)
        }

        let timeouts = try IPVSDecode.timeouts(ask("GET_CONFIG", IPVSNL.cmdGetConfig, dump: false).messages)
        let daemons = try ask("GET_DAEMON", IPVSNL.cmdGetDaemon, dump: true).messages.map(IPVSDecode.daemon)
        return (info, services, timeouts, daemons)
    }

    private static func clock(_ id: clockid_t) -> Double {
        var ts = timespec()
        clock_gettime(id, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
