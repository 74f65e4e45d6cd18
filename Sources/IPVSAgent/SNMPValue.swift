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

    /// A DisplayString or SnmpAdminString within its 255-byte limit. A longer text is cut
    /// at the last word that fits with `...` after it (ASCII: a DisplayString's manager
    /// prints it as text), never in a word or a UTF-8 sequence; a text with no space in its
    /// last `wordSearch` bytes is cut at a character instead.
    public static func text(_ s: String, limit: Int = 255) -> SNMPValue {
        let b = Array(s.utf8)
        guard b.count > limit else { return .octets(b) }
        let mark = Array("...".utf8)
        let room = max(0, limit - mark.count)
        // Back up to the start of a character: continuation bytes are 10xxxxxx.
        var n = room
        while n > 0 && b[n] & 0xC0 == 0x80 { n -= 1 }
        // Then to the end of the last whole word: the space before the word that was cut
        // (b[n] is the first byte left out: when it is a space, the word before it is whole).
        var w = n
        while w > 0 && b[w] != 0x20 && n - w < wordSearch { w -= 1 }
        if w > 0 && b[w] == 0x20 { n = w }
        // No trailing spaces or separators before the mark.
        while n > 0 && [0x20, 0x2C, 0x3B, 0x3A].contains(b[n - 1]) { n -= 1 }
        return .octets(Array(b[0..<n]) + mark)
    }

    /// How far back a cut looks for a space: a word longer than this (an address list)
    /// is cut inside rather than losing most of the text.
    static let wordSearch = 64

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
