import IPVSModel

/// An object identifier as its arcs. Compared the way SNMP orders them: arc by arc, a
/// prefix before everything under it.
public struct OID: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByArrayLiteral {
    public var arcs: [UInt32]

    public init(_ arcs: [UInt32]) { self.arcs = arcs }
    public init(arrayLiteral elements: UInt32...) { arcs = elements }

    /// Parses dotted text (`1.3.6.1.4.1.32473.1`, a leading dot allowed).
    public init?(_ text: String) {
        let t = text.hasPrefix(".") ? text.dropFirst() : Substring(text)
        let parts = t.split(separator: ".", omittingEmptySubsequences: false)
        guard !parts.isEmpty else { return nil }
        var arcs: [UInt32] = []
        for p in parts {
            guard let v = UInt32(p) else { return nil }
            arcs.append(v)
        }
        guard arcs.count >= 2, arcs.count <= 128 else { return nil }
        self.arcs = arcs
    }

    public var description: String { arcs.map(String.init).joined(separator: ".") }

    public static func < (a: OID, b: OID) -> Bool { OID.compare(a.arcs[...], b.arcs[...]) < 0 }

    public static func + (a: OID, b: [UInt32]) -> OID { OID(a.arcs + b) }

    public func hasPrefix(_ p: OID) -> Bool { OID.hasPrefix(arcs[...], p.arcs[...]) }

    /// -1, 0, 1: lexicographic by arc, a proper prefix first.
    @inlinable
    public static func compare(_ a: ArraySlice<UInt32>, _ b: ArraySlice<UInt32>) -> Int {
        var i = a.startIndex, j = b.startIndex
        while i < a.endIndex && j < b.endIndex {
            if a[i] != b[j] { return a[i] < b[j] ? -1 : 1 }
            i += 1
            j += 1
        }
        let ra = a.endIndex - i, rb = b.endIndex - j
        return ra == rb ? 0 : (ra < rb ? -1 : 1)
    }

    @inlinable
    public static func hasPrefix(_ a: ArraySlice<UInt32>, _ p: ArraySlice<UInt32>) -> Bool {
        guard a.count >= p.count else { return false }
        var i = a.startIndex
        for x in p {
            if a[i] != x { return false }
            i += 1
        }
        return true
    }
}

/// How table indexes are written as OID arcs (RFC 2578 7.7, RFC 4001).
public enum IndexEncoding {
    /// `InetAddressType` then `InetAddress` (not IMPLIED): ipv4 is `1.4.a.b.c.d`, ipv6 is
    /// `2.16.` and its 16 bytes.
    public static func inetAddress(_ a: IPAddress) -> [UInt32] {
        let bytes = InetAddress.bytes(a)
        return [UInt32(InetAddress.type(a)), UInt32(bytes.count)] + bytes.map(UInt32.init)
    }

    /// An OCTET STRING index of variable length: its length, then its bytes; IMPLIED
    /// (the last index of a row) leaves the length out.
    public static func string(_ s: String, implied: Bool) -> [UInt32] {
        let b = Array(s.utf8).map(UInt32.init)
        return implied ? b : [UInt32(b.count)] + b
    }

    /// Reads back an `InetAddressType, InetAddress` pair from the start of `arcs`; nil
    /// when they do not form one. Returns the address and the arcs it used.
    public static func decodeInetAddress(_ arcs: ArraySlice<UInt32>) -> (IPAddress, Int)? {
        guard arcs.count >= 2 else { return nil }
        let type = arcs[arcs.startIndex], len = Int(arcs[arcs.startIndex + 1])
        guard (type == 1 && len == 4) || (type == 2 && len == 16), arcs.count >= 2 + len else { return nil }
        let body = arcs[(arcs.startIndex + 2)..<(arcs.startIndex + 2 + len)]
        guard body.allSatisfy({ $0 <= 255 }), let a = IPAddress(bytes: body.map { UInt8($0) }) else { return nil }
        return (a, 2 + len)
    }
}

/// INET-ADDRESS-MIB's values for an address.
public enum InetAddress {
    /// `InetAddressType`: ipv4(1), ipv6(2).
    public static func type(_ a: IPAddress) -> Int32 { a.isIPv4 ? 1 : 2 }

    /// The address in network order: 4 bytes for IPv4, 16 for IPv6.
    public static func bytes(_ a: IPAddress) -> [UInt8] {
        if a.isIPv4 {
            let v = a.ipv4Value
            return [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
        }
        var out: [UInt8] = []
        out.reserveCapacity(16)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: a.high >> UInt64(56 - 8 * i))) }
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: a.low >> UInt64(56 - 8 * i))) }
        return out
    }
}
