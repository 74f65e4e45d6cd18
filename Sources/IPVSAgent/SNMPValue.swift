import FoundationEssentials

/// A value as the subagent hands it to net-snmp: the SMI base type and its content.
public enum SNMPValue: Hashable, Sendable {
    /// INTEGER, Integer32, enumerations, TruthValue.
    case integer(Int32)
    /// Unsigned32 (same tag as Gauge32 on the wire).
    case unsigned32(UInt32)
    case gauge32(UInt32)
    case counter32(UInt32)
    /// Counter64, and CounterBasedGauge64 (a Counter64 with gauge semantics).
    case counter64(UInt64)
    case timeticks(UInt32)
    /// OCTET STRING and everything built on it: DisplayString, InetAddress, DateAndTime,
    /// BITS.
    case octets([UInt8])
    case objectID(OID)

    public static func string(_ s: String) -> SNMPValue { .octets(Array(s.utf8)) }

    /// A DisplayString or SnmpAdminString, cut to its 255-byte limit without splitting a
    /// UTF-8 sequence.
    public static func text(_ s: String, limit: Int = 255) -> SNMPValue {
        var b = Array(s.utf8)
        if b.count > limit {
            var n = limit
            // Back up to the start of a character: continuation bytes are 10xxxxxx.
            while n > 0 && b[n] & 0xC0 == 0x80 { n -= 1 }
            b = Array(b[0..<n])
        }
        return .octets(b)
    }

    /// TruthValue: true(1), false(2).
    public static func truth(_ v: Bool) -> SNMPValue { .integer(v ? 1 : 2) }

    /// A gauge from a count, saturating at 2^32-1 (RFC 2578: a Gauge32 latches at its
    /// maximum).
    public static func gauge<T: BinaryInteger>(_ v: T) -> SNMPValue { .gauge32(saturating32(v)) }
    public static func unsigned<T: BinaryInteger>(_ v: T) -> SNMPValue { .unsigned32(saturating32(v)) }

    /// A CounterBasedGauge64 from a rate, rounded, negative as 0.
    public static func gauge64(_ v: Double) -> SNMPValue {
        guard v.isFinite, v > 0 else { return .counter64(0) }
        return .counter64(v >= 1.8e19 ? UInt64.max : UInt64(v.rounded()))
    }

    static func saturating32<T: BinaryInteger>(_ v: T) -> UInt32 {
        if v < 0 { return 0 }
        if let m = T(exactly: UInt32.max), v > m { return UInt32.max }
        return UInt32(v)
    }

    /// SNMPv2-TC DateAndTime in UTC: 11 octets, year (2), month, day, hour, minutes,
    /// seconds, deci-seconds, '+', 0, 0.
    public static func dateAndTime(_ d: Date) -> SNMPValue {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = .gmt
        let c = cal.dateComponents([.year, .month, .day, .hour, .minute, .second, .nanosecond], from: d)
        let year = c.year ?? 1970
        let deci = min(9, (c.nanosecond ?? 0) / 100_000_000)
        return .octets([
            UInt8(year >> 8 & 0xFF), UInt8(year & 0xFF), UInt8(c.month ?? 1), UInt8(c.day ?? 1),
            UInt8(c.hour ?? 0), UInt8(c.minute ?? 0), UInt8(c.second ?? 0), UInt8(deci),
            UInt8(ascii: "+"), 0, 0,
        ])
    }

    /// BITS: bit 0 is the most significant bit of the first octet; trailing zero octets
    /// are left out, but at least one octet is sent.
    public static func bits(_ set: [Int]) -> SNMPValue {
        let top = set.max() ?? 0
        var out = [UInt8](repeating: 0, count: max(1, top / 8 + 1))
        for b in set where b >= 0 { out[b / 8] |= 0x80 >> UInt8(b % 8) }
        while out.count > 1 && out.last == 0 { out.removeLast() }
        return .octets(out)
    }
}
