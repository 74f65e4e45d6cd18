/// An IP protocol number, as the kernel keeps it in a connection entry.
///
/// Held as the raw number so that an entry stays one byte here; the names are the ones
/// `/proc/net/ip_vs_conn` prints (`ip_vs_proto_name()`), ipvsadm's vocabulary.
public struct IPProtocolNumber: RawRepresentable, Hashable, Sendable, Comparable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Printed as `IP`: the protocol of fwmark persistence templates.
    public static let ip = IPProtocolNumber(rawValue: 0)
    public static let icmp = IPProtocolNumber(rawValue: 1)
    public static let tcp = IPProtocolNumber(rawValue: 6)
    public static let udp = IPProtocolNumber(rawValue: 17)
    public static let esp = IPProtocolNumber(rawValue: 50)
    public static let ah = IPProtocolNumber(rawValue: 51)
    public static let icmpv6 = IPProtocolNumber(rawValue: 58)
    public static let sctp = IPProtocolNumber(rawValue: 132)

    /// The kernel's name, upper case (`TCP`, `IP`, ...); unknown numbers as `IP_<n>`
    /// like the kernel's own fallback.
    public var kernelName: String {
        switch self {
        case .ip: "IP"
        case .icmp: "ICMP"
        case .tcp: "TCP"
        case .udp: "UDP"
        case .esp: "ESP"
        case .ah: "AH"
        case .icmpv6: "ICMPv6"
        case .sctp: "SCTP"
        default: "IP_\(rawValue)"
        }
    }

    /// The lower-case name used in JSON (`tcp`, `udp`, `sctp`, `ip`, ...).
    public var name: String { kernelName.lowercased() }

    /// Parses a kernel protocol name (`TCP`, `UDP`, `SCTP`, `IP`, `IP_<n>`...).
    public init?(kernelName s: Substring) {
        switch s {
        case "TCP": self = .tcp
        case "UDP": self = .udp
        case "SCTP": self = .sctp
        case "IP": self = .ip
        case "ICMP": self = .icmp
        case "ICMPv6": self = .icmpv6
        case "ESP": self = .esp
        case "AH": self = .ah
        default:
            guard s.hasPrefix("IP_"), let n = UInt8(s.dropFirst(3)) else { return nil }
            self.init(rawValue: n)
        }
    }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// The state of a connection entry, one byte, named as the kernel prints it.
///
/// The kernel keeps per-protocol state numbers and prints names; the names are the stable
/// interface (ipvsadm -Lcn shows them), so the model interns every name the kernel can print
/// into one small table. A name not in the table is an unknown state: the reader skips the
/// entry and counts it rather than inventing one.
public struct ConnectionState: RawRepresentable, Hashable, Sendable, Comparable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Every name `ip_vs_state_name()` can return: TCP, UDP, SCTP, templates, errors.
    public static let allNames: [String] = [
        "NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT", "CLOSE",
        "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK", "UDP", "ASSURED",
        "INIT1", "INIT", "COOKIE_SENT", "COOKIE_REPLIED", "COOKIE_WAIT", "COOKIE_ECHOED",
        "SHUTDOWN_SENT", "SHUTDOWN_RECEIVED", "SHUTDOWN_ACK_SENT", "REJECTED", "CLOSED",
        "ERR!", "BUG!",
    ]

    public static let none = ConnectionState(rawValue: 0)
    public static let established = ConnectionState(rawValue: 1)
    public static let synSent = ConnectionState(rawValue: 2)
    public static let synRecv = ConnectionState(rawValue: 3)
    public static let finWait = ConnectionState(rawValue: 4)
    public static let timeWait = ConnectionState(rawValue: 5)
    public static let close = ConnectionState(rawValue: 6)
    public static let closeWait = ConnectionState(rawValue: 7)
    public static let lastAck = ConnectionState(rawValue: 8)
    public static let listen = ConnectionState(rawValue: 9)
    public static let synAck = ConnectionState(rawValue: 10)
    public static let udp = ConnectionState(rawValue: 11)
    public static let assured = ConnectionState(rawValue: 12)

    public var name: String {
        Int(rawValue) < Self.allNames.count ? Self.allNames[Int(rawValue)] : "?"
    }

    /// Looks a kernel state name up; nil for a name the kernel does not print.
    public init?(name: Substring) {
        guard let i = Self.allNames.firstIndex(where: { $0 == name }) else { return nil }
        self.init(rawValue: UInt8(i))
    }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}
