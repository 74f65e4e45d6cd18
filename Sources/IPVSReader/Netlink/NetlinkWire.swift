// The netlink wire format, as pure functions over bytes: message headers, generic-netlink
// headers and attributes (TLVs). No socket here, so unit tests can feed crafted buffers.
//
// Layout (include/uapi/linux/netlink.h, genetlink.h), all integers in host byte order:
//   nlmsghdr  { u32 len; u16 type; u16 flags; u32 seq; u32 pid }      16 bytes
//   genlmsghdr{ u8 cmd; u8 version; u16 reserved }                      4 bytes
//   nlattr    { u16 len; u16 type } + payload, padded to 4 bytes
// Every length is checked against the bytes actually present: a malformed reply throws
// `NetlinkError.truncated` or `.malformed`, it never traps or reads out of bounds.

/// Constants from the kernel's netlink, genetlink and ip_vs headers (only those used).
enum NL {
    static let headerLength = 16
    static let genlHeaderLength = 4
    static let attributeHeaderLength = 4

    // nlmsg types
    static let noop: UInt16 = 1
    static let error: UInt16 = 2
    static let done: UInt16 = 3
    static let overrun: UInt16 = 4

    // nlmsg flags
    static let request: UInt16 = 0x1
    static let multi: UInt16 = 0x2
    static let ack: UInt16 = 0x4
    static let dumpInterrupted: UInt16 = 0x10
    static let dump: UInt16 = 0x300  // NLM_F_ROOT | NLM_F_MATCH

    // nlattr type bits
    static let attrNested: UInt16 = 0x8000
    static let attrNetByteOrder: UInt16 = 0x4000
    static let attrTypeMask: UInt16 = 0x3FFF

    // generic netlink controller
    static let genlIDCtrl: UInt16 = 0x10
    static let ctrlCmdNewFamily: UInt8 = 1
    static let ctrlCmdGetFamily: UInt8 = 3
    static let ctrlAttrFamilyID: UInt16 = 1
    static let ctrlAttrFamilyName: UInt16 = 2

    static let afInet: UInt16 = 2
    static let afInet6: UInt16 = 10

    static func align(_ n: Int) -> Int { (n + 3) & ~3 }
}

// MARK: - Reading integers

/// Bounds are the caller's business; these are only called after a length check.
@inline(__always)
func hostU16(_ b: ArraySlice<UInt8>, _ offset: Int) -> UInt16 {
    let i = b.startIndex + offset
    return UInt16(littleEndian: UInt16(b[i]) | UInt16(b[i + 1]) << 8)
}

@inline(__always)
func hostU32(_ b: ArraySlice<UInt8>, _ offset: Int) -> UInt32 {
    let i = b.startIndex + offset
    let le = UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    return UInt32(littleEndian: le)
}

@inline(__always)
func hostU64(_ b: ArraySlice<UInt8>, _ offset: Int) -> UInt64 {
    let i = b.startIndex + offset
    var le: UInt64 = 0
    for k in (0..<8).reversed() { le = le << 8 | UInt64(b[i + k]) }
    return UInt64(littleEndian: le)
}

@inline(__always)
func networkU16(_ b: ArraySlice<UInt8>, _ offset: Int) -> UInt16 {
    let i = b.startIndex + offset
    return UInt16(b[i]) << 8 | UInt16(b[i + 1])
}

@inline(__always)
func networkU32(_ b: ArraySlice<UInt8>, _ offset: Int) -> UInt32 {
    let i = b.startIndex + offset
    return UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
}

// MARK: - Messages

/// One netlink message of a datagram; `payload` follows the 16-byte header.
struct NetlinkMessage {
    var type: UInt16
    var flags: UInt16
    var seq: UInt32
    var pid: UInt32
    var payload: ArraySlice<UInt8>
}

/// Splits a received datagram into its netlink messages.
func parseNetlinkMessages(_ datagram: [UInt8]) throws -> [NetlinkMessage] {
    try parseNetlinkMessages(datagram[...])
}

func parseNetlinkMessages(_ bytes: ArraySlice<UInt8>) throws -> [NetlinkMessage] {
    var out: [NetlinkMessage] = []
    var off = 0
    let total = bytes.count
    while total - off >= NL.headerLength {
        let rest = bytes[(bytes.startIndex + off)...]
        let len = Int(hostU32(rest, 0))
        guard len >= NL.headerLength else {
            throw NetlinkError.malformed("netlink message length \(len) is shorter than its header")
        }
        guard len <= total - off else {
            throw NetlinkError.truncated("netlink message of \(len) bytes, only \(total - off) received")
        }
        let start = rest.startIndex
        out.append(NetlinkMessage(
            type: hostU16(rest, 4), flags: hostU16(rest, 6),
            seq: hostU32(rest, 8), pid: hostU32(rest, 12),
            payload: bytes[(start + NL.headerLength)..<(start + len)]))
        off += min(NL.align(len), total - off)
    }
    guard off == total else {
        throw NetlinkError.truncated("\(total - off) stray bytes after the last netlink message")
    }
    return out
}

// MARK: - Attributes

struct NetlinkAttribute {
    /// The type with the NESTED and NET_BYTEORDER bits cleared.
    var type: UInt16
    var payload: ArraySlice<UInt8>
}

/// Parses a run of attributes. Unknown types are kept (callers ignore what they do not
/// know); a length that runs past the end throws.
func parseAttributes(_ bytes: ArraySlice<UInt8>) throws -> [NetlinkAttribute] {
    var out: [NetlinkAttribute] = []
    var off = 0
    let total = bytes.count
    while total - off >= NL.attributeHeaderLength {
        let rest = bytes[(bytes.startIndex + off)...]
        let len = Int(hostU16(rest, 0))
        let type = hostU16(rest, 2) & NL.attrTypeMask
        guard len >= NL.attributeHeaderLength else {
            throw NetlinkError.malformed("attribute \(type) has length \(len), shorter than its header")
        }
        guard len <= total - off else {
            throw NetlinkError.truncated("attribute \(type) claims \(len) bytes, only \(total - off) left")
        }
        let start = rest.startIndex
        out.append(NetlinkAttribute(type: type, payload: bytes[(start + NL.attributeHeaderLength)..<(start + len)]))
        off += min(NL.align(len), total - off)
    }
    // Fewer than 4 bytes left over: the kernel's own nla_parse only warns about these.
    return out
}

/// Attributes by type (the last one wins, as in the kernel's nla_parse).
struct AttributeTable {
    private var slots: [UInt16: ArraySlice<UInt8>] = [:]

    init(_ bytes: ArraySlice<UInt8>) throws {
        for a in try parseAttributes(bytes) { slots[a.type] = a.payload }
    }

    init(_ attributes: [NetlinkAttribute]) {
        for a in attributes { slots[a.type] = a.payload }
    }

    subscript(_ type: UInt16) -> ArraySlice<UInt8>? { slots[type] }

    func has(_ type: UInt16) -> Bool { slots[type] != nil }

    func u8(_ type: UInt16, _ name: String) throws -> UInt8? {
        guard let p = slots[type] else { return nil }
        guard p.count >= 1 else { throw NetlinkError.malformed("\(name): \(p.count) bytes, expected 1") }
        return p[p.startIndex]
    }

    func u16(_ type: UInt16, _ name: String) throws -> UInt16? {
        guard let p = slots[type] else { return nil }
        guard p.count >= 2 else { throw NetlinkError.malformed("\(name): \(p.count) bytes, expected 2") }
        return hostU16(p, 0)
    }

    func be16(_ type: UInt16, _ name: String) throws -> UInt16? {
        guard let p = slots[type] else { return nil }
        guard p.count >= 2 else { throw NetlinkError.malformed("\(name): \(p.count) bytes, expected 2") }
        return networkU16(p, 0)
    }

    func u32(_ type: UInt16, _ name: String) throws -> UInt32? {
        guard let p = slots[type] else { return nil }
        guard p.count >= 4 else { throw NetlinkError.malformed("\(name): \(p.count) bytes, expected 4") }
        return hostU32(p, 0)
    }

    /// A counter sent as u32 (STATS) or u64 (STATS64): the width comes from the length.
    func counter(_ type: UInt16, _ name: String) throws -> UInt64? {
        guard let p = slots[type] else { return nil }
        switch p.count {
        case 8...: return hostU64(p, 0)
        case 4..<8: return UInt64(hostU32(p, 0))
        default: throw NetlinkError.malformed("\(name): \(p.count) bytes, expected 4 or 8")
        }
    }

    /// A NUL-terminated string (the terminator and anything after it are dropped).
    func string(_ type: UInt16) -> String? {
        guard let p = slots[type] else { return nil }
        let end = p.firstIndex(of: 0) ?? p.endIndex
        return String(decoding: p[p.startIndex..<end], as: UTF8.self)
    }

    func nested(_ type: UInt16) throws -> AttributeTable? {
        guard let p = slots[type] else { return nil }
        return try AttributeTable(p)
    }
}

// MARK: - Generic netlink

/// A generic-netlink message: command, version and its top-level attributes.
struct GenericMessage {
    var command: UInt8
    var version: UInt8
    var attributes: ArraySlice<UInt8>

    init(command: UInt8, version: UInt8, attributes: ArraySlice<UInt8>) {
        self.command = command
        self.version = version
        self.attributes = attributes
    }

    init(payload: ArraySlice<UInt8>) throws {
        guard payload.count >= NL.genlHeaderLength else {
            throw NetlinkError.truncated("generic netlink header: \(payload.count) bytes, expected 4")
        }
        command = payload[payload.startIndex]
        version = payload[payload.startIndex + 1]
        attributes = payload[(payload.startIndex + NL.genlHeaderLength)...]
    }

    func table() throws -> AttributeTable { try AttributeTable(attributes) }
}

// MARK: - Building requests

/// Appends attributes in host byte order, each padded to 4 bytes.
struct AttributeWriter {
    var bytes: [UInt8] = []

    mutating func put(_ type: UInt16, _ payload: [UInt8]) {
        let len = NL.attributeHeaderLength + payload.count
        appendHost(UInt16(len))
        appendHost(type)
        bytes += payload
        pad()
    }

    mutating func putU8(_ type: UInt16, _ v: UInt8) { put(type, [v]) }
    mutating func putU16(_ type: UInt16, _ v: UInt16) { put(type, hostBytes(v)) }
    mutating func putU32(_ type: UInt16, _ v: UInt32) { put(type, hostBytes(v)) }
    mutating func putU64(_ type: UInt16, _ v: UInt64) { put(type, hostBytes(v)) }
    mutating func putBE16(_ type: UInt16, _ v: UInt16) { put(type, [UInt8(v >> 8), UInt8(v & 0xFF)]) }
    mutating func putString(_ type: UInt16, _ s: String) { put(type, Array(s.utf8) + [0]) }

    mutating func putNested(_ type: UInt16, _ build: (inout AttributeWriter) -> Void) {
        var inner = AttributeWriter()
        build(&inner)
        put(type | NL.attrNested, inner.bytes)
    }

    private mutating func appendHost<T: FixedWidthInteger>(_ v: T) { bytes += hostBytes(v) }
    private mutating func pad() { while bytes.count % 4 != 0 { bytes.append(0) } }
}

func hostBytes<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
    withUnsafeBytes(of: v) { Array($0) }
}

/// A complete netlink message: header, generic-netlink header, attributes.
func buildGenericMessage(
    type: UInt16, flags: UInt16, seq: UInt32, pid: UInt32,
    command: UInt8, version: UInt8, attributes: [UInt8]
) -> [UInt8] {
    let len = NL.headerLength + NL.genlHeaderLength + attributes.count
    var out: [UInt8] = []
    out.reserveCapacity(len)
    out += hostBytes(UInt32(len))
    out += hostBytes(type)
    out += hostBytes(flags)
    out += hostBytes(seq)
    out += hostBytes(pid)
    out += [command, version, 0, 0]
    out += attributes
    return out
}

/// CTRL_CMD_GETFAMILY for `name`, asking for an ACK after the reply.
func buildGetFamilyRequest(name: String, seq: UInt32, pid: UInt32) -> [UInt8] {
    var w = AttributeWriter()
    w.putString(NL.ctrlAttrFamilyName, name)
    return buildGenericMessage(
        type: NL.genlIDCtrl, flags: NL.request | NL.ack, seq: seq, pid: pid,
        command: NL.ctrlCmdGetFamily, version: 1, attributes: w.bytes)
}

// MARK: - Collecting a reply

/// Gathers the messages that answer one request, across as many datagrams as it takes:
/// a dump ends with NLMSG_DONE, a plain request (sent with NLM_F_ACK) with an ACK.
/// Messages for another sequence number or port (a stale reply) are skipped.
struct ReplyCollector {
    let seq: UInt32
    /// Our socket's port id; 0 skips the check.
    let portID: UInt32
    /// The message type replies must carry (the family id).
    let familyType: UInt16
    /// What was asked, for error messages (`GET_SERVICE`...).
    let label: String

    private(set) var messages: [GenericMessage] = []
    private(set) var finished = false
    /// Some message carried NLM_F_DUMP_INTR: the table changed during the dump.
    private(set) var interrupted = false
    private(set) var skipped = 0

    init(seq: UInt32, portID: UInt32, familyType: UInt16, label: String) {
        self.seq = seq
        self.portID = portID
        self.familyType = familyType
        self.label = label
    }

    /// The error an NLMSG_ERROR or NLMSG_DONE code stands for. The kernel sends -errno
    /// (1 to 4095, MAX_ERRNO); any other code (INT32_MIN has no positive counterpart and
    /// trapped on negation) is a malformed reply, said as such, never negated.
    static func kernelError(_ code: Int32, _ label: String) throws -> NetlinkError {
        let magnitude = code.magnitude
        guard (1...4095).contains(magnitude) else {
            throw NetlinkError.malformed("\(label): error code \(code) is not an errno")
        }
        return NetlinkError.fromKernel(errno: Int32(magnitude), command: label)
    }

    mutating func consume(_ datagram: [UInt8]) throws {
        for m in try parseNetlinkMessages(datagram) {
            if finished || m.seq != seq || (portID != 0 && m.pid != 0 && m.pid != portID) {
                skipped += 1
                continue
            }
            if m.flags & NL.dumpInterrupted != 0 { interrupted = true }
            switch m.type {
            case NL.noop:
                continue
            case NL.error:
                guard m.payload.count >= 4 else {
                    throw NetlinkError.truncated("\(label): error message of \(m.payload.count) bytes")
                }
                let code = Int32(bitPattern: hostU32(m.payload, 0))
                if code == 0 {
                    finished = true  // the ACK
                } else {
                    throw try Self.kernelError(code, label)
                }
            case NL.done:
                if m.payload.count >= 4 {
                    let code = Int32(bitPattern: hostU32(m.payload, 0))
                    if code < 0 { throw try Self.kernelError(code, label) }
                }
                finished = true
            case NL.overrun:
                throw NetlinkError.truncated("\(label): the kernel reported a receive overrun")
            case familyType:
                messages.append(try GenericMessage(payload: m.payload))
            default:
                skipped += 1
            }
        }
    }
}
