import FoundationEssentials
import Glibc
import IPVSModel

/// Parses `/proc/net/ip_vs_conn` and `/proc/net/ip_vs_conn_sync` rows into entries.
///
/// Rows (from the kernel's `ip_vs_conn_seq_show`):
/// `"%-3s %08X %04X %08X %04X %s %04X %-11s %7u%s"`: protocol, client, virtual and
/// destination address and port in hex (the destination upper case on Debian's 6.1, read in
/// either case; IPv6 text when its family differs), state name, seconds left, then
/// ` PEName PEData` when a persistence engine is in use. IPv6 rows print addresses as full
/// colon-separated text.
/// The sync variant has an Origin column (`LOCAL`/`SYNC`) before the expiry.
///
/// This runs over millions of rows, so it works on raw bytes: no `String` per row, no
/// allocation per entry; a row it cannot read is skipped and counted, never guessed.
public struct ConnectionTableParser {
    public private(set) var entries: [ConnectionEntry] = []
    public private(set) var persistenceEngineData: [Int: PersistenceEngineData] = [:]
    public private(set) var skipped = SkippedLines()

    public init(expectedEntries: Int = 0) {
        if expectedEntries > 0 {
            entries.reserveCapacity(expectedEntries)
            Self.adviseHugePages(&entries)
        }
    }

    /// Asks for transparent huge pages under the entries' reserved storage. 10^6 entries are
    /// 64 MB written once, front to back: in 4 KiB pages that is 16,000 faults, each clearing
    /// its page (~0.37 ms a MiB here, a third of the read); in 2 MiB pages, 32. THP is in
    /// `madvise` mode on Debian: only advised memory gets them. Only the 2 MiB-aligned inside
    /// of the storage is advised; where no huge page is free the kernel uses small ones.
    static func adviseHugePages(_ entries: inout [ConnectionEntry]) {
        #if canImport(Glibc)
        let bytes = entries.capacity * MemoryLayout<ConnectionEntry>.stride
        let huge = 2 << 20
        guard bytes >= 2 * huge else { return }
        entries.withUnsafeMutableBufferPointer { b in
            guard let base = b.baseAddress else { return }
            let start = (UInt(bitPattern: base) + UInt(huge) - 1) / UInt(huge) * UInt(huge)
            let end = (UInt(bitPattern: base) + UInt(bytes)) / UInt(huge) * UInt(huge)
            guard end > start, let p = UnsafeMutableRawPointer(bitPattern: start) else { return }
            _ = madvise(p, Int(end - start), Int32(MADV_HUGEPAGE))
        }
        #endif
    }

    /// Parses a run of complete lines. With `unterminated`, the buffer is a last line that
    /// has no newline: a truncated read, whose last field may be cut short, so it is
    /// counted and not used.
    public mutating func consume(_ buf: UnsafeBufferPointer<UInt8>, unterminated: Bool = false) {
        guard let base = buf.baseAddress else { return }
        if unterminated {
            skipped.unterminated = true
            skipped.malformed += 1
            skipped.note(Substring(Self.text(base, min(buf.count, 160))))
            return
        }
        let end = base + buf.count
        var line = base
        while line < end {
            // memchr is vectorised in libc; a byte loop here cost a tenth of the parse.
            let nl = memchr(line, 0x0A, end - line).map { UnsafePointer($0.assumingMemoryBound(to: UInt8.self)) } ?? end
            let len = nl - line
            if len > 0 {
                // Nearly every row is in the kernel's exact layout and takes the fixed-offset
                // path; anything else (the header, sync Origin, PE data, damage) the general one.
                if let entry = Self.kernelRow(line, len) {
                    entries.append(entry)
                } else {
                    parseLine(line, len)
                }
            }
            line = nl + 1
        }
    }

    /// Hands the finished table over.
    public func table(file: String, readAt: Date, cost: ReadCost) -> ConnectionTable {
        ConnectionTable(
            entries: entries, persistenceEngineData: persistenceEngineData, file: file,
            readAt: readAt, cost: cost, skipped: skipped)
    }

    // MARK: - One row, the kernel's layout

    /// A row exactly as `ip_vs_conn_seq_show` prints it: protocol (`"%-3s "`), then client,
    /// virtual and destination each as address, one space, 4 hex digits, one space (IPv4 as
    /// 8 hex digits, IPv6 as the full 39-character text), then a state name, spaces and the
    /// seconds left to the end of the line. Fields are read where they must be, without
    /// tokenising the line first: this is the loop that runs 10^6 times.
    ///
    /// Returns nil for anything else; the general path (`parseLine`) then reads the row or
    /// counts it, so this only has to be right for what it accepts, never complete.
    @inline(__always)
    static func kernelRow(_ p: UnsafePointer<UInt8>, _ len: Int) -> ConnectionEntry? {
        guard len >= 8 else { return nil }
        let end = p + len
        var q: UnsafePointer<UInt8>
        let proto: IPProtocolNumber
        switch load32(p) {
        case 0x2050_4354: proto = .tcp; q = p + 4                  // "TCP "
        case 0x2050_4455: proto = .udp; q = p + 4                  // "UDP "
        case 0x2020_5049: proto = .ip; q = p + 4                   // "IP  "
        case 0x5054_4353 where p[4] == 0x20: proto = .sctp; q = p + 5   // "SCTP "
        default: return nil
        }
        guard let caddr = fixedAddress(&q, end), let cport = fixedPort(&q, end),
              let vaddr = fixedAddress(&q, end), let vport = fixedPort(&q, end),
              let daddr = fixedAddress(&q, end), let dport = fixedPort(&q, end)
        else { return nil }

        let state: ConnectionState
        var raw: UInt64
        if end - q == 19, let (s, seconds) = paddedStateAndSeconds(q) {
            // "%-11s %7u" as printed for the usual names and times: read in place.
            (state, raw) = (s, seconds)
        } else {
            // A longer name (SCTP's), 8 digits or more, or odd spacing: scan for them.
            let stateStart = q
            while q < end && q.pointee != 0x20 { q += 1 }
            guard let s = Self.state(Token(p: stateStart, len: q - stateStart)) else { return nil }
            state = s
            while q < end && q.pointee == 0x20 { q += 1 }
            // Digits to the very end (a sync Origin or PE data after them, or a trailing
            // CR, goes to the general path).
            let digits = q
            raw = 0
            while q < end {
                let d = q.pointee &- 0x30
                guard d < 10 else { return nil }
                raw = raw &* 10 &+ UInt64(d)
                q += 1
            }
            guard q - digits >= 1 && q - digits <= 19 else { return nil }
        }
        var expires = UInt32(truncatingIfNeeded: raw)
        var flags: UInt8 = 0
        if raw > 21_474_836 {   // see parseLine
            expires = 0
            flags = ConnectionEntry.unclampedExpiry
        }
        return ConnectionEntry(
            proto: proto, client: caddr, clientPort: cport, virtual: vaddr, virtualPort: vport,
            destination: daddr, destinationPort: dport, state: state, expires: expires, flags: flags)
    }

    /// An address and the one space after it: `%08X`/`%08x` or `%pI6` (full form).
    @inline(__always)
    static func fixedAddress(_ q: inout UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> IPAddress? {
        let left = end - q
        if left > 8 && q[8] == 0x20, let v = hex8(q) {
            q += 9
            return IPAddress(ipv4: v)
        }
        if left > 39 && q[39] == 0x20, let a = ipv6Full(q) {
            q += 40
            return a
        }
        return nil
    }

    /// A port (`%04X`) and the one space after it.
    @inline(__always)
    static func fixedPort(_ q: inout UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> UInt16? {
        guard end - q > 4 && q[4] == 0x20, let v = hex4(q) else { return nil }
        q += 5
        return UInt16(truncatingIfNeeded: v)
    }

    /// The 19 bytes `"%-11s %7u"` print for the names that make up nearly all of a busy
    /// table and fewer than 10^7 seconds: the name space-padded to 11, a space, the seconds
    /// right-aligned in 7. The name is matched as two 8-byte words (bytes 0-7 and 3-10, the
    /// padding included) and the seconds are read as one word, with no loop whose length
    /// changes from row to row (such loops cost a mispredicted branch a row each). The
    /// constants are the padded names' bytes read little-endian; any other name, or a
    /// mistake here, goes to the scanning path, which looks names up in `state(_:)`.
    @inline(__always)
    static func paddedStateAndSeconds(_ p: UnsafePointer<UInt8>) -> (ConnectionState, UInt64)? {
        let state: ConnectionState
        switch (load64(p), load64(p + 3)) {
        case (0x5349_4C42_4154_5345, 0x4445_4853_494C_4241): state = .established           // "ESTABLISHED"
        case (0x4941_575F_454D_4954, 0x2020_5449_4157_5F45): state = .timeWait              // "TIME_WAIT  "
        case (0x5449_4157_5F4E_4946, 0x2020_2054_4941_575F): state = .finWait               // "FIN_WAIT   "
        case (0x5643_4552_5F4E_5953, 0x2020_2056_4345_525F): state = .synRecv               // "SYN_RECV   "
        case (0x4157_5F45_534F_4C43, 0x2054_4941_575F_4553): state = .closeWait             // "CLOSE_WAIT "
        case (0x4B43_415F_5453_414C, 0x2020_204B_4341_5F54): state = .lastAck               // "LAST_ACK   "
        case (0x2020_2045_534F_4C43, 0x2020_2020_2020_4553): state = .close                 // "CLOSE      "
        case (0x544E_4553_5F4E_5953, 0x2020_2054_4E45_535F): state = .synSent               // "SYN_SENT   "
        case (0x2020_2020_454E_4F4E, 0x2020_2020_2020_2045): state = ConnectionState.none   // "NONE       "
        case (0x2044_4552_5553_5341, 0x2020_2020_4445_5255): state = .assured               // "ASSURED    "
        case (0x2020_2020_2050_4455, 0x2020_2020_2020_2020): state = .udp                   // "UDP        "
        default: return nil
        }
        // Byte 11 and the 7 after it: a space, then spaces, then at least one digit, to the end.
        let w = load64(p + 11)
        let digits = inRange(w, 0x30, 0x39)
        let spaces = inRange(w, 0x20, 0x20)
        guard w & 0x8080_8080_8080_8080 == 0, digits | spaces == 0x8080_8080_8080_8080,
              w & 0xFF == 0x20, digits >> 63 != 0,
              spaces & ~((digits & (~digits &+ 1)) &- 1) == 0   // no space after the first digit
        else { return nil }
        // A space's low four bits are 0, a digit's its value: eight decimal digits, the
        // first in the lowest byte, combined in pairs, fours, then eight.
        var v = w & 0x0F0F_0F0F_0F0F_0F0F
        v = (v &* 10 &+ (v >> 8)) & 0x00FF_00FF_00FF_00FF
        v = (v &* 100 &+ (v >> 16)) & 0x0000_FFFF_0000_FFFF
        v = (v &* 10_000 &+ (v >> 32)) & 0xFFFF_FFFF
        return (state, v)
    }

    // MARK: - One row, any layout

    /// The general path: any layout the kernels print, a row it cannot read counted. Internal
    /// (not private) so `FuzzEntryPoints` can check `kernelRow` against it.
    mutating func parseLine(_ p: UnsafePointer<UInt8>, _ len: Int) {
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
        if t.len == 39, let a = ipv6Full(t.p) { return a }
        guard t.len <= 45 else { return nil }
        let s = text(t.p, t.len)
        guard s.contains(":") else { return nil }
        return IPAddress(Substring(s))
    }

    /// `%pI6`: eight groups of four hex digits joined by colons, 39 bytes at `p`.
    @inline(__always)
    static func ipv6Full(_ p: UnsafePointer<UInt8>) -> IPAddress? {
        var h: UInt64 = 0, l: UInt64 = 0
        for g in 0..<8 {
            let off = g * 5
            if g < 7 && p[off + 4] != UInt8(ascii: ":") { return nil }
            guard let v = hex4(p + off) else { return nil }
            if g < 4 { h = h << 16 | UInt64(v) } else { l = l << 16 | UInt64(v) }
        }
        return IPAddress(ipv6High: h, low: l)
    }

    // MARK: - Hex digits eight (or four) at a time
    //
    // The addresses and ports are most of a row's bytes. Instead of a digit at a time with
    // a branch each, the digits are loaded as one word and checked and converted in all its
    // bytes at once ("SWAR"); every byte stays below 0x100 throughout, so no carry crosses
    // from one digit into the next.

    @inline(__always)
    static func load64(_ p: UnsafePointer<UInt8>) -> UInt64 {
        UInt64(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt64.self))
    }

    @inline(__always)
    static func load32(_ p: UnsafePointer<UInt8>) -> UInt32 {
        UInt32(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt32.self))
    }

    /// Per byte of `x` (each below 0x80): 0x80 where `lo <= byte <= hi`, else 0.
    @inline(__always)
    static func inRange(_ x: UInt64, _ lo: UInt8, _ hi: UInt8) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let atLeastLo = x &+ ones &* UInt64(0x80 - lo)   // high bit set iff byte >= lo
        let aboveHi = x &+ ones &* UInt64(0x7F - hi)     // high bit set iff byte > hi
        return atLeastLo & ~aboveHi & 0x8080_8080_8080_8080
    }

    /// The value of the hex digits in `w`'s bytes, the first digit in the lowest byte;
    /// nil unless every byte is 0-9, A-F or a-f. `w` holds 8 digits, or 4 in its low half
    /// with `digits: 4`.
    @inline(__always)
    static func hexWord(_ w: UInt64, digits: Int) -> UInt64? {
        let high: UInt64 = digits == 8 ? 0x8080_8080_8080_8080 : 0x8080_8080
        // Setting 0x20 folds A-F onto a-f and brings no other byte into a-f.
        let letters = inRange(w | 0x2020_2020_2020_2020, 0x61, 0x66)
        let decimals = inRange(w, 0x30, 0x39)
        guard w & 0x8080_8080_8080_8080 == 0, (letters | decimals) & high == high else { return nil }
        // A nibble per byte: the low four bits, plus 9 for a letter ('A' is 0x41: 1 + 9).
        var v = (w & 0x0F0F_0F0F_0F0F_0F0F) &+ (letters >> 7) &* 9
        // Pairs of nibbles into bytes, pairs of bytes into 16 bits, then into 32.
        v = (v << 4 | v >> 8) & 0x00FF_00FF_00FF_00FF
        v = (v << 8 | v >> 16) & 0x0000_FFFF_0000_FFFF
        if digits == 4 { return v & 0xFFFF }
        return (v << 16 | v >> 32) & 0xFFFF_FFFF
    }

    /// Eight hex digits at `p` (`%08X` or `%08x`).
    @inline(__always)
    static func hex8(_ p: UnsafePointer<UInt8>) -> UInt32? {
        hexWord(load64(p), digits: 8).map { UInt32(truncatingIfNeeded: $0) }
    }

    /// Four hex digits at `p`.
    @inline(__always)
    static func hex4(_ p: UnsafePointer<UInt8>) -> UInt32? {
        hexWord(UInt64(load32(p)), digits: 4).map { UInt32(truncatingIfNeeded: $0) }
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
