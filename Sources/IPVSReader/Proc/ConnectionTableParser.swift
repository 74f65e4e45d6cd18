import Foundation
import IPVSModel

/// Parses `/proc/net/ip_vs_conn` and `/proc/net/ip_vs_conn_sync` rows into entries.
///
/// Rows (from the kernel's `ip_vs_conn_seq_show`):
/// `"%-3s %08X %04X %08X %04X %s %04X %-11s %7u%s"`: protocol, client, virtual and
/// destination address and port in hex (the destination in lower case, or as IPv6 text
/// when its family differs), state name, seconds left, then ` PEName PEData` when a
/// persistence engine is in use. IPv6 rows print addresses as full colon-separated text.
/// The sync variant has an Origin column (`LOCAL`/`SYNC`) before the expiry.
///
/// This runs over millions of rows, so it works on raw bytes: no `String` per row, no
/// allocation per entry; a row it cannot read is skipped and counted, never guessed.
public struct ConnectionTableParser {
    public private(set) var entries: [ConnectionEntry] = []
    public private(set) var persistenceEngineData: [Int: PersistenceEngineData] = [:]
    public private(set) var skipped = SkippedLines()

    public init(expectedEntries: Int = 0) {
        if expectedEntries > 0 { entries.reserveCapacity(expectedEntries) }
    }

    /// Parses a run of complete lines. With `unterminated`, the buffer is a last line that
    /// has no newline: a truncated read, whose last field may be cut short, so it is
    /// counted and not used.
    public mutating func consume(_ buf: UnsafeBufferPointer<UInt8>, unterminated: Bool = false) {
        guard let base = buf.baseAddress else { return }
        if unterminated {
            skipped.malformed += 1
            skipped.note(Substring(Self.text(base, min(buf.count, 160))))
            return
        }
        let n = buf.count
        var i = 0
        while i < n {
            var j = i
            while j < n && base[j] != 0x0A { j += 1 }
            if j > i { parseLine(base + i, j - i) }
            i = j + 1
        }
    }

    /// Hands the finished table over.
    public func table(file: String, readAt: Date, cost: ReadCost) -> ConnectionTable {
        ConnectionTable(
            entries: entries, persistenceEngineData: persistenceEngineData, file: file,
            readAt: readAt, cost: cost, skipped: skipped)
    }

    // MARK: - One row

    private mutating func parseLine(_ p: UnsafePointer<UInt8>, _ len: Int) {
        var t = Tokenizer(p, len)
        guard let protoTok = t.next() else { return }
        // The header row.
        if protoTok.len == 3 && protoTok.p[0] == UInt8(ascii: "P") && protoTok.p[1] == UInt8(ascii: "r") { return }
        guard let proto = Self.protocolNumber(protoTok) else {
            skipped.unknownProtocol += 1
            skipped.note(Substring(Self.text(p, min(len, 160))))
            return
        }
        guard let caddrT = t.next(), let cportT = t.next(), let vaddrT = t.next(), let vportT = t.next(),
              let daddrT = t.next(), let dportT = t.next(), let stateT = t.next(), var expT = t.next(),
              let caddr = Self.address(caddrT), let cport = Self.hex16(cportT),
              let vaddr = Self.address(vaddrT), let vport = Self.hex16(vportT),
              let daddr = Self.address(daddrT), let dport = Self.hex16(dportT)
        else {
            skipped.malformed += 1
            skipped.note(Substring(Self.text(p, min(len, 160))))
            return
        }
        guard let state = Self.state(stateT) else {
            skipped.unknownState += 1
            skipped.note(Substring(Self.text(p, min(len, 160))))
            return
        }
        var flags: UInt8 = 0
        // ip_vs_conn_sync: Origin before Expires.
        if expT.len == 4 && expT.equals("SYNC") || expT.len == 5 && expT.equals("LOCAL") {
            if expT.len == 4 { flags |= ConnectionEntry.fromSync }
            guard let e = t.next() else {
                skipped.malformed += 1
                skipped.note(Substring(Self.text(p, min(len, 160))))
                return
            }
            expT = e
        }
        guard let rawExpires = Self.decimal(expT) else {
            skipped.malformed += 1
            skipped.note(Substring(Self.text(p, min(len, 160))))
            return
        }
        // Kernels before 4.19 printed an entry past its time as a huge unsigned number.
        // No timer can legitimately exceed 2^31 jiffies at HZ=100.
        var expires = UInt32(truncatingIfNeeded: rawExpires)
        if rawExpires > 21_474_836 {
            expires = 0
            flags |= ConnectionEntry.unclampedExpiry
        }
        let entry = ConnectionEntry(
            proto: proto, client: caddr, clientPort: cport, virtual: vaddr, virtualPort: vport,
            destination: daddr, destinationPort: dport, state: state, expires: expires, flags: flags)
        if let peName = t.next() {
            let data = t.rest()
            persistenceEngineData[entries.count] = PersistenceEngineData(
                name: Self.text(peName.p, peName.len), data: data.map { Self.text($0.p, $0.len) } ?? "")
        }
        entries.append(entry)
    }

    // MARK: - Fields

    static func text(_ p: UnsafePointer<UInt8>, _ n: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }

    @inline(__always)
    static func hexDigit(_ c: UInt8) -> UInt32? {
        switch c {
        case 0x30...0x39: UInt32(c - 0x30)
        case 0x41...0x46: UInt32(c - 0x41 + 10)
        case 0x61...0x66: UInt32(c - 0x61 + 10)
        default: nil
        }
    }

    @inline(__always)
    static func hex32(_ t: Token) -> UInt32? {
        guard t.len >= 1 && t.len <= 8 else { return nil }
        var v: UInt32 = 0
        for k in 0..<t.len {
            guard let d = hexDigit(t.p[k]) else { return nil }
            v = v << 4 | d
        }
        return v
    }

    @inline(__always)
    static func hex16(_ t: Token) -> UInt16? {
        guard t.len <= 4, let v = hex32(t) else { return nil }
        return UInt16(v)
    }

    @inline(__always)
    static func decimal(_ t: Token) -> UInt64? {
        guard t.len >= 1 && t.len <= 19 else { return nil }
        var v: UInt64 = 0
        for k in 0..<t.len {
            let c = t.p[k]
            guard c >= 0x30 && c <= 0x39 else { return nil }
            v = v * 10 + UInt64(c - 0x30)
        }
        return v
    }

    /// An IPv4 hex word, or IPv6 text (the kernel's full form fast, any form otherwise).
    @inline(__always)
    static func address(_ t: Token) -> IPAddress? {
        if t.len == 8, let v = hex32(t) { return IPAddress(ipv4: v) }
        if t.len == 39 {
            var h: UInt64 = 0, l: UInt64 = 0
            var ok = true
            for g in 0..<8 {
                let off = g * 5
                if g < 7 && t.p[off + 4] != UInt8(ascii: ":") { ok = false; break }
                var v: UInt64 = 0
                for k in 0..<4 {
                    guard let d = hexDigit(t.p[off + k]) else { ok = false; break }
                    v = v << 4 | UInt64(d)
                }
                if !ok { break }
                if g < 4 { h = h << 16 | v } else { l = l << 16 | v }
            }
            if ok { return IPAddress(ipv6High: h, low: l) }
        }
        guard t.len <= 45 else { return nil }
        let s = text(t.p, t.len)
        guard s.contains(":") else { return nil }
        return IPAddress(Substring(s))
    }

    @inline(__always)
    static func protocolNumber(_ t: Token) -> IPProtocolNumber? {
        let c0 = t.p[0]
        if t.len == 3 {
            if c0 == UInt8(ascii: "T") && t.p[1] == UInt8(ascii: "C") && t.p[2] == UInt8(ascii: "P") { return .tcp }
            if c0 == UInt8(ascii: "U") && t.p[1] == UInt8(ascii: "D") && t.p[2] == UInt8(ascii: "P") { return .udp }
        }
        if t.len == 2 && c0 == UInt8(ascii: "I") && t.p[1] == UInt8(ascii: "P") { return .ip }
        return IPProtocolNumber(kernelName: Substring(text(t.p, t.len)))
    }

    /// State names as byte arrays, grouped by length for a quick match.
    private static let statesByLength: [[(bytes: [UInt8], state: ConnectionState)]] = {
        var table = [[(bytes: [UInt8], state: ConnectionState)]](repeating: [], count: 32)
        // Most common first within a length: ESTABLISHED, TIME_WAIT, FIN_WAIT...
        let order = [1, 5, 4, 3, 0, 12, 11] + Array(0..<ConnectionState.allNames.count)
        var seen = Set<Int>()
        for i in order where seen.insert(i).inserted {
            let name = ConnectionState.allNames[i]
            table[name.utf8.count].append((Array(name.utf8), ConnectionState(rawValue: UInt8(i))))
        }
        return table
    }()

    @inline(__always)
    static func state(_ t: Token) -> ConnectionState? {
        guard t.len < 32 else { return nil }
        for cand in statesByLength[t.len] {
            var k = 0
            while k < t.len && cand.bytes[k] == t.p[k] { k += 1 }
            if k == t.len { return cand.state }
        }
        return nil
    }
}

/// A run of non-space bytes within a line.
struct Token {
    let p: UnsafePointer<UInt8>
    let len: Int

    func equals(_ s: StaticString) -> Bool {
        guard s.utf8CodeUnitCount == len else { return false }
        let q = s.utf8Start
        for k in 0..<len where q[k] != p[k] { return false }
        return true
    }
}

/// Splits a line on spaces without allocating.
struct Tokenizer {
    let base: UnsafePointer<UInt8>
    let end: Int
    var pos = 0

    init(_ p: UnsafePointer<UInt8>, _ len: Int) {
        base = p
        // A trailing carriage return from a capture edited elsewhere is not part of a field.
        var e = len
        while e > 0 && (p[e - 1] == 0x0D || p[e - 1] == 0x20) { e -= 1 }
        end = e
    }

    @inline(__always)
    mutating func next() -> Token? {
        while pos < end && (base[pos] == 0x20 || base[pos] == 0x09) { pos += 1 }
        guard pos < end else { return nil }
        let start = pos
        while pos < end && base[pos] != 0x20 && base[pos] != 0x09 { pos += 1 }
        return Token(p: base + start, len: pos - start)
    }

    /// Everything after the current position, trimmed (PE data may contain spaces).
    mutating func rest() -> Token? {
        while pos < end && base[pos] == 0x20 { pos += 1 }
        guard pos < end else { return nil }
        let t = Token(p: base + pos, len: end - pos)
        pos = end
        return t
    }
}
