/// An IPv4 or IPv6 address in 16 bytes, with no heap storage.
///
/// IPv4 addresses are held as IPv4-mapped IPv6 (`::ffff:a.b.c.d`) so that a connection
/// entry holding three addresses stays a small, fixed-size value: a director's table has
/// millions of them, and a `String` per address would multiply the snapshot's memory.
public struct IPAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The first 64 bits, network order (most significant first).
    public let high: UInt64
    /// The last 64 bits, network order.
    public let low: UInt64

    // The small accessors below are @inlinable: the analysis calls them once or more per
    // connection entry, from another module.

    /// An IPv4 address from its 32-bit value in host order (`0x0A000001` is 10.0.0.1),
    /// the way `/proc/net/ip_vs*` prints it in hex.
    @inlinable
    public init(ipv4 value: UInt32) {
        high = 0
        low = 0x0000_FFFF_0000_0000 | UInt64(value)
    }

    /// An IPv6 address from its two 64-bit halves in network order.
    @inlinable
    public init(ipv6High high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// An address from its network-order bytes: 4 for IPv4, 16 for IPv6.
    public init?<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        switch bytes.count {
        case 4:
            self.init(ipv4: bytes.reduce(0) { $0 << 8 | UInt32($1) })
        case 16:
            let all = Array(bytes)
            let h = all[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let l = all[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            self.init(ipv6High: h, low: l)
        default:
            return nil
        }
    }

    public static let zeroIPv4 = IPAddress(ipv4: 0)

    @inlinable
    public var isIPv4: Bool { high == 0 && low & 0xFFFF_FFFF_0000_0000 == 0x0000_FFFF_0000_0000 }

    @inlinable
    public var family: AddressFamily { isIPv4 ? .ipv4 : .ipv6 }

    /// The IPv4 value in host order; meaningful only when `isIPv4`.
    @inlinable
    public var ipv4Value: UInt32 { UInt32(truncatingIfNeeded: low) }

    @inlinable
    public static func == (a: IPAddress, b: IPAddress) -> Bool { a.high == b.high && a.low == b.low }

    @inlinable
    public func hash(into h: inout Hasher) {
        h.combine(high)
        h.combine(low)
    }

    /// The address with only its first `bits` bits kept (the kernel's persistence netmask
    /// for IPv6 is a prefix length).
    @inlinable
    public func masked(prefixLength bits: Int) -> IPAddress {
        if isIPv4 {
            let b = max(0, min(32, bits))
            let mask: UInt32 = b == 0 ? 0 : ~UInt32(0) << UInt32(32 - b)
            return IPAddress(ipv4: ipv4Value & mask)
        }
        let b = max(0, min(128, bits))
        let hm: UInt64 = b >= 64 ? ~0 : (b == 0 ? 0 : ~UInt64(0) << UInt64(64 - b))
        let lm: UInt64 = b <= 64 ? 0 : (b == 128 ? ~0 : ~UInt64(0) << UInt64(128 - b))
        return IPAddress(ipv6High: high & hm, low: low & lm)
    }

    /// The IPv4 address ANDed with an IPv4 netmask value (host order).
    @inlinable
    public func masked(ipv4Mask mask: UInt32) -> IPAddress {
        IPAddress(ipv4: ipv4Value & mask)
    }

    @inlinable
    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        (a.high, a.low) < (b.high, b.low)
    }

    /// Dotted quad for IPv4; RFC 5952 text for IPv6 (lower case, longest zero run as `::`).
    public var description: String {
        if isIPv4 {
            let v = ipv4Value
            return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)"
        }
        var groups = [UInt16](repeating: 0, count: 8)
        for i in 0..<4 {
            groups[i] = UInt16(truncatingIfNeeded: high >> UInt64(48 - 16 * i))
            groups[4 + i] = UInt16(truncatingIfNeeded: low >> UInt64(48 - 16 * i))
        }
        // Longest run of two or more zero groups, the first one on a tie (RFC 5952 4.2).
        var bestStart = -1, bestLen = 0, i = 0
        while i < 8 {
            if groups[i] == 0 {
                var j = i
                while j < 8 && groups[j] == 0 { j += 1 }
                if j - i > bestLen && j - i >= 2 { bestStart = i; bestLen = j - i }
                i = j
            } else {
                i += 1
            }
        }
        var out = ""
        i = 0
        while i < 8 {
            if i == bestStart {
                out += "::"
                i += bestLen
                continue
            }
            if !out.isEmpty && !out.hasSuffix(":") { out += ":" }
            out += String(groups[i], radix: 16)
            i += 1
        }
        return out
    }

    /// `10.0.0.1:80` or `[2001:db8::1]:80`, as ipvsadm writes an endpoint.
    public func endpoint(port: UInt16) -> String {
        isIPv4 ? "\(self):\(port)" : "[\(self)]:\(port)"
    }

    /// Parses dotted-quad IPv4 or IPv6 text (with `::`, and an embedded IPv4 tail).
    public init?(_ text: Substring) {
        if !text.contains(":") {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var v: UInt32 = 0
            for p in parts {
                guard !p.isEmpty, p.count <= 3, let n = UInt32(p), n <= 255 else { return nil }
                v = v << 8 | n
            }
            self.init(ipv4: v)
            return
        }
        var head: [UInt16] = [], tail: [UInt16] = []
        var sawGap = false
        let pieces = text.split(separator: ":", omittingEmptySubsequences: false)
        var idx = 0
        if text.hasPrefix("::") { idx = 1 }
        while idx < pieces.count {
            let p = pieces[idx]
            if p.isEmpty {
                if sawGap {
                    // "::" at the end gives a trailing empty piece.
                    if idx == pieces.count - 1 { break }
                    return nil
                }
                sawGap = true
                idx += 1
                continue
            }
            if p.contains(".") {
                guard idx == pieces.count - 1, let v4 = IPAddress(p), v4.isIPv4 else { return nil }
                let v = v4.ipv4Value
                if sawGap { tail += [UInt16(v >> 16), UInt16(v & 0xFFFF)] } else { head += [UInt16(v >> 16), UInt16(v & 0xFFFF)] }
                idx += 1
                continue
            }
            guard p.count <= 4, let g = UInt16(p, radix: 16) else { return nil }
            if sawGap { tail.append(g) } else { head.append(g) }
            idx += 1
        }
        let total = head.count + tail.count
        guard sawGap ? total < 8 : total == 8 else { return nil }
        let groups = head + [UInt16](repeating: 0, count: 8 - total) + tail
        var h: UInt64 = 0, l: UInt64 = 0
        for g in groups[0..<4] { h = h << 16 | UInt64(g) }
        for g in groups[4..<8] { l = l << 16 | UInt64(g) }
        self.init(ipv6High: h, low: l)
    }

    public init?(_ text: String) { self.init(Substring(text)) }
}

/// The address family of a service, a real server or an address.
public enum AddressFamily: String, Sendable, Hashable, Codable {
    case ipv4
    case ipv6
}
