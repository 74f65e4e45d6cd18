/// What identifies a virtual service: protocol, address and port, or a firewall mark.
public enum ServiceKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    case address(IPProtocolNumber, IPAddress, UInt16)
    /// fwmark services are per family: `ipvsadm -A -f 1` and `ipvsadm -A -f 1 -6` differ.
    case fwmark(UInt32, AddressFamily)

    public var family: AddressFamily {
        switch self {
        case .address(_, let a, _): a.family
        case .fwmark(_, let f): f
        }
    }

    /// A stable text identity: `tcp:10.0.0.1:80`, `udp:[2001:db8::1]:53`, `fwmark:1`
    /// (`fwmark6:1` for an IPv6 fwmark service). Used in JSON and as the SNMP row key.
    public var description: String {
        switch self {
        case .address(let p, let a, let port): "\(p.name):\(a.endpoint(port: port))"
        case .fwmark(let m, .ipv4): "fwmark:\(m)"
        case .fwmark(let m, .ipv6): "fwmark6:\(m)"
        }
    }

    public static func < (a: ServiceKey, b: ServiceKey) -> Bool {
        switch (a, b) {
        case (.address(let p1, let a1, let o1), .address(let p2, let a2, let o2)):
            // ipvsadm's listing order: family, protocol, address, port.
            let f1 = a1.isIPv4 ? 0 : 1, f2 = a2.isIPv4 ? 0 : 1
            return (f1, p1.rawValue, a1, o1) < (f2, p2.rawValue, a2, o2)
        case (.address, .fwmark): return true
        case (.fwmark, .address): return false
        case (.fwmark(let m1, let f1), .fwmark(let m2, let f2)):
            return (m1, f1 == .ipv4 ? 0 : 1) < (m2, f2 == .ipv4 ? 0 : 1)
        }
    }
}

/// The kernel's service flags (`IP_VS_SVC_F_*`), as netlink gives them.
public struct ServiceFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let persistent = ServiceFlags(rawValue: 0x1)
    public static let hashed = ServiceFlags(rawValue: 0x2)
    /// One-packet scheduling (`--ops`).
    public static let onePacket = ServiceFlags(rawValue: 0x4)
    public static let sched1 = ServiceFlags(rawValue: 0x8)
    public static let sched2 = ServiceFlags(rawValue: 0x10)
    public static let sched3 = ServiceFlags(rawValue: 0x20)

    /// ipvsadm's names. The scheduler flags mean something only to some schedulers
    /// (sh: flag-1 is sh-fallback, flag-2 sh-port; mh: mh-fallback, mh-port).
    public func names(scheduler: String) -> [String] {
        var out: [String] = []
        if contains(.persistent) { out.append("persistent") }
        if contains(.hashed) { out.append("hashed") }
        if contains(.onePacket) { out.append("ops") }
        let prefix = (scheduler == "sh" || scheduler == "mh") ? scheduler : nil
        if contains(.sched1) { out.append(prefix.map { "\($0)-fallback" } ?? "flag-1") }
        if contains(.sched2) { out.append(prefix.map { "\($0)-port" } ?? "flag-2") }
        if contains(.sched3) { out.append("flag-3") }
        return out
    }
}

/// Cumulative traffic counters of a service, a real server, or the whole director.
public struct TrafficStats: Hashable, Sendable {
    public var conns: UInt64
    public var inPackets: UInt64
    public var outPackets: UInt64
    public var inBytes: UInt64
    public var outBytes: UInt64

    public init(conns: UInt64, inPackets: UInt64, outPackets: UInt64, inBytes: UInt64, outBytes: UInt64) {
        self.conns = conns
        self.inPackets = inPackets
        self.outPackets = outPackets
        self.inBytes = inBytes
        self.outBytes = outBytes
    }
}

/// Per-second rates. The kernel's own are integers from its 2-second estimator; rates
/// computed here from two snapshots' counters may be fractional.
public struct TrafficRates: Hashable, Sendable {
    public var cps: Double
    public var inPPS: Double
    public var outPPS: Double
    public var inBPS: Double
    public var outBPS: Double

    public init(cps: Double, inPPS: Double, outPPS: Double, inBPS: Double, outBPS: Double) {
        self.cps = cps
        self.inPPS = inPPS
        self.outPPS = outPPS
        self.inBPS = inBPS
        self.outBPS = outBPS
    }

    /// Rates from two readings of the same counters `seconds` apart; nil when a counter
    /// went backwards (the object was recreated or the counters reset).
    public init?(from old: TrafficStats, to new: TrafficStats, seconds: Double) {
        guard seconds > 0,
              new.conns >= old.conns, new.inPackets >= old.inPackets, new.outPackets >= old.outPackets,
              new.inBytes >= old.inBytes, new.outBytes >= old.outBytes
        else { return nil }
        self.init(
            cps: Double(new.conns - old.conns) / seconds,
            inPPS: Double(new.inPackets - old.inPackets) / seconds,
            outPPS: Double(new.outPackets - old.outPackets) / seconds,
            inBPS: Double(new.inBytes - old.inBytes) / seconds,
            outBPS: Double(new.outBytes - old.outBytes) / seconds)
    }
}

/// How a real server is reached (ipvsadm's forwarding method).
public enum ForwardMethod: String, Hashable, Sendable, CaseIterable {
    case masq, local, tunnel, route, bypass

    /// From the kernel's `IP_VS_CONN_F_FWD_MASK` value.
    public init?(kernelValue v: UInt32) {
        switch v & 0x7 {
        case 0: self = .masq
        case 1: self = .local
        case 2: self = .tunnel
        case 3: self = .route
        case 4: self = .bypass
        default: return nil
        }
    }

    /// From `/proc/net/ip_vs`'s column (`Masq`, `Local`, `Tunnel`, `Route`).
    public init?(procName: Substring) {
        switch procName {
        case "Masq": self = .masq
        case "Local": self = .local
        case "Tunnel": self = .tunnel
        case "Route": self = .route
        case "Bypass": self = .bypass
        default: return nil
        }
    }
}

/// The persistence netmask: an IPv4 mask, or a prefix length for IPv6 services (that is
/// how the kernel keeps it).
public enum PersistenceNetmask: Hashable, Sendable, CustomStringConvertible {
    case ipv4(UInt32)
    case prefix(Int)

    @inlinable
    public func apply(to a: IPAddress) -> IPAddress {
        switch self {
        case .ipv4(let m): a.isIPv4 ? a.masked(ipv4Mask: m) : a
        case .prefix(let p): a.masked(prefixLength: p)
        }
    }

    /// True when the mask groups more than one client together.
    public var groupsClients: Bool {
        switch self {
        case .ipv4(let m): m != 0xFFFF_FFFF
        case .prefix(let p): p < 128
        }
    }

    public var description: String {
        switch self {
        case .ipv4(let m): IPAddress(ipv4: m).description
        case .prefix(let p): "\(p)"
        }
    }
}

/// Persistence settings of a service (`ipvsadm -p TIMEOUT -M NETMASK`).
public struct Persistence: Hashable, Sendable {
    /// Seconds, when known: from netlink, or from /proc's jiffies with a known HZ.
    public var timeoutSeconds: UInt32?
    /// The raw value of /proc/net/ip_vs, in jiffies; nil when read over netlink.
    public var timeoutJiffies: UInt32?
    public var netmask: PersistenceNetmask

    public init(timeoutSeconds: UInt32?, timeoutJiffies: UInt32?, netmask: PersistenceNetmask) {
        self.timeoutSeconds = timeoutSeconds
        self.timeoutJiffies = timeoutJiffies
        self.netmask = netmask
    }
}

/// Tunnel encapsulation of a real server (`--tun-type`), netlink only.
public struct TunnelInfo: Hashable, Sendable {
    public var type: String
    public var port: UInt16
    public var flags: UInt16
    public init(type: String, port: UInt16, flags: UInt16) {
        self.type = type
        self.port = port
        self.flags = flags
    }
}

/// A real server (destination) of a virtual service.
///
/// Fields that only netlink gives are optional: nil means "not available from this
/// source", never zero.
public struct RealServer: Hashable, Sendable {
    public var address: IPAddress
    public var port: UInt16
    public var forward: ForwardMethod
    public var weight: Int32
    public var activeConns: UInt32
    public var inactiveConns: UInt32
    public var persistentConns: UInt32?
    public var upperThreshold: UInt32?
    public var lowerThreshold: UInt32?
    public var stats: TrafficStats?
    public var rates: TrafficRates?
    public var tunnel: TunnelInfo?

    public init(
        address: IPAddress, port: UInt16, forward: ForwardMethod, weight: Int32,
        activeConns: UInt32, inactiveConns: UInt32, persistentConns: UInt32? = nil,
        upperThreshold: UInt32? = nil, lowerThreshold: UInt32? = nil,
        stats: TrafficStats? = nil, rates: TrafficRates? = nil, tunnel: TunnelInfo? = nil
    ) {
        self.address = address
        self.port = port
        self.forward = forward
        self.weight = weight
        self.activeConns = activeConns
        self.inactiveConns = inactiveConns
        self.persistentConns = persistentConns
        self.upperThreshold = upperThreshold
        self.lowerThreshold = lowerThreshold
        self.stats = stats
        self.rates = rates
        self.tunnel = tunnel
    }

    /// `10.0.0.2:80` or `[2001:db8::2]:80`: the real server's identity within its service.
    public var id: String { address.endpoint(port: port) }

    /// Weight 0: the scheduler sends it no new connections (but templates still may).
    public var isQuiescent: Bool { weight == 0 }
}

/// A virtual service and its real servers.
public struct VirtualService: Hashable, Sendable {
    public var key: ServiceKey
    public var scheduler: String
    public var flags: ServiceFlags
    public var persistence: Persistence?
    /// The persistence engine (`sip`), netlink only.
    public var persistenceEngine: String?
    public var stats: TrafficStats?
    public var rates: TrafficRates?
    public var realServers: [RealServer]

    public init(
        key: ServiceKey, scheduler: String, flags: ServiceFlags, persistence: Persistence?,
        persistenceEngine: String? = nil, stats: TrafficStats? = nil, rates: TrafficRates? = nil,
        realServers: [RealServer]
    ) {
        self.key = key
        self.scheduler = scheduler
        self.flags = flags
        self.persistence = persistence
        self.persistenceEngine = persistenceEngine
        self.stats = stats
        self.rates = rates
        self.realServers = realServers
    }

    public var id: String { key.description }
    public var totalWeight: Int64 { realServers.reduce(0) { $0 + Int64(max(0, $1.weight)) } }

    /// ActiveConn summed over the real servers, as ipvsadm's faces show a service's (UInt32
    /// counters summed in Int: no real count overflows it).
    public var activeConns: Int { realServers.reduce(0) { $0 + Int($1.activeConns) } }
    /// InActConn summed over the real servers.
    public var inactiveConns: Int { realServers.reduce(0) { $0 + Int($1.inactiveConns) } }

    /// PersistConn summed over the real servers: netlink only, so nil when any real server
    /// lacks it, and for a service without real servers nil unless its own netlink-only
    /// figures (stats) are there: a sum over nothing is 0 only where the source gives it.
    public var persistentConns: Int? {
        if realServers.isEmpty { return stats != nil ? 0 : nil }
        var sum = 0
        for rs in realServers {
            guard let p = rs.persistentConns else { return nil }
            sum += Int(p)
        }
        return sum
    }
}
