/// An IP protocol number, as the kernel keeps it in a connection entry.
///
/// Held as the raw number so that an entry stays one byte here; the names are the ones
/// `/proc/net/ip_vs_conn` prints (`ip_vs_proto_name()`), ipvsadm's vocabulary.
public struct IPProtocolNumber: RawRepresentable, Hashable, Sendable, Comparable {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    // The named numbers are inlinable computed constants, not `static let`s: a global
    // `let` is read through a lazy-initialisation accessor in other modules, which showed
    // in the profile of loops over 10^6 entries.

    /// Printed as `IP`: the protocol of fwmark persistence templates.
    @inlinable public static var ip: IPProtocolNumber { IPProtocolNumber(rawValue: 0) }
    @inlinable public static var icmp: IPProtocolNumber { IPProtocolNumber(rawValue: 1) }
    @inlinable public static var tcp: IPProtocolNumber { IPProtocolNumber(rawValue: 6) }
    @inlinable public static var udp: IPProtocolNumber { IPProtocolNumber(rawValue: 17) }
    @inlinable public static var esp: IPProtocolNumber { IPProtocolNumber(rawValue: 50) }
    @inlinable public static var ah: IPProtocolNumber { IPProtocolNumber(rawValue: 51) }
    @inlinable public static var icmpv6: IPProtocolNumber { IPProtocolNumber(rawValue: 58) }
    @inlinable public static var sctp: IPProtocolNumber { IPProtocolNumber(rawValue: 132) }

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
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Every name `ip_vs_state_name()` can return: TCP, UDP, SCTP, templates, errors.
    public static let allNames: [String] = [
        "NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT", "CLOSE",
        "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK", "UDP", "ASSURED",
        "INIT1", "INIT", "COOKIE_SENT", "COOKIE_REPLIED", "COOKIE_WAIT", "COOKIE_ECHOED",
        "SHUTDOWN_SENT", "SHUTDOWN_RECEIVED", "SHUTDOWN_ACK_SENT", "REJECTED", "CLOSED",
        "ERR!", "BUG!",
    ]

    @inlinable public static var none: ConnectionState { ConnectionState(rawValue: 0) }
    @inlinable public static var established: ConnectionState { ConnectionState(rawValue: 1) }
    @inlinable public static var synSent: ConnectionState { ConnectionState(rawValue: 2) }
    @inlinable public static var synRecv: ConnectionState { ConnectionState(rawValue: 3) }
    @inlinable public static var finWait: ConnectionState { ConnectionState(rawValue: 4) }
    @inlinable public static var timeWait: ConnectionState { ConnectionState(rawValue: 5) }
    @inlinable public static var close: ConnectionState { ConnectionState(rawValue: 6) }
    @inlinable public static var closeWait: ConnectionState { ConnectionState(rawValue: 7) }
    @inlinable public static var lastAck: ConnectionState { ConnectionState(rawValue: 8) }
    @inlinable public static var listen: ConnectionState { ConnectionState(rawValue: 9) }
    @inlinable public static var synAck: ConnectionState { ConnectionState(rawValue: 10) }
    @inlinable public static var udp: ConnectionState { ConnectionState(rawValue: 11) }
    @inlinable public static var assured: ConnectionState { ConnectionState(rawValue: 12) }

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
