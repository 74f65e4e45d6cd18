#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One request ipvstop sent to the IPVS netlink family and the datagrams the kernel
/// answered it with, as a capture keeps them.
struct NetlinkExchange: Hashable, Sendable {
    /// What was asked (`GET_SERVICE`, `GET_DEST tcp:10.0.0.1:80`...): for people and errors.
    var label: String
    var request: [UInt8]
    var replies: [[UInt8]]
}

/// A transport that passes everything to the kernel's socket and keeps a copy: what a
/// capture taken as root stores, so that its stats, rates, PersistConn and timeouts in
/// seconds can be read back later.
final class RecordingNetlinkTransport: NetlinkTransport {
    let inner: any NetlinkTransport
    private(set) var exchanges: [NetlinkExchange] = []

    init(_ inner: any NetlinkTransport) { self.inner = inner }

    var portID: UInt32 { inner.portID }

    func send(_ message: [UInt8], label: String) throws {
        exchanges.append(NetlinkExchange(label: label, request: message, replies: []))
        try inner.send(message, label: label)
    }

    func receive(label: String) throws -> [UInt8] {
        let d = try inner.receive(label: label)
        exchanges[exchanges.count - 1].replies.append(d)
        return d
    }
}

/// A transport that answers from a capture's exchanges, in order, so that the captured
/// answers go through the same conversation, reply collector and decoder as the live ones
/// (no second parser). Each request must be the one the capture recorded at that point
/// (sequence number and port aside); the recorded replies get the new request's sequence
/// number. Captured bytes are untrusted: everything past the sequence patch is the live
/// decoder's checking.
final class ReplayNetlinkTransport: NetlinkTransport {
    private let exchanges: [NetlinkExchange]
    private var next = 0
    private var pending: [[UInt8]] = []
    /// 0: the reply collector does not check the port (the recorded one was another socket's).
    let portID: UInt32 = 0

    init(_ exchanges: [NetlinkExchange]) { self.exchanges = exchanges }

    /// A request without its sequence number and port id (bytes 8..<16 of its header).
    static func masked(_ m: [UInt8]) -> [UInt8] {
        var m = m
        if m.count >= NL.headerLength { for i in 8..<16 { m[i] = 0 } }
        return m
    }

    func send(_ message: [UInt8], label: String) throws {
        guard next < exchanges.count else {
            throw NetlinkError.truncated("the capture's netlink answers end before \(label)")
        }
        let e = exchanges[next]
        next += 1
        guard Self.masked(e.request) == Self.masked(message) else {
            throw NetlinkError.malformed("the capture's netlink answers do not follow the requests: \(label) asked, \(e.label) recorded")
        }
        let seq = message.count >= NL.headerLength ? hostU32(message[...], 8) : 0
        pending = e.replies.map { Self.withSequence($0, seq) }
    }

    func receive(label: String) throws -> [UInt8] {
        guard !pending.isEmpty else {
            throw NetlinkError.truncated("the capture's answer to \(label) ends before its last message")
        }
        return pending.removeFirst()
    }

    /// The datagram with every message's sequence number set to `seq`. Stops at the first
    /// length that cannot be a message; the decoder then reports the damage.
    static func withSequence(_ datagram: [UInt8], _ seq: UInt32) -> [UInt8] {
        var d = datagram
        let s = hostBytes(seq)
        var i = 0
        while i + NL.headerLength <= d.count {
            let len = Int(hostU32(d[...], i))
            for k in 0..<4 { d[i + 8 + k] = s[k] }
            guard len >= NL.headerLength else { break }
            i += NL.align(len)
        }
        return d
    }
}

/// The text form of a capture's netlink answers (`DIR/netlink`): one `> HEX LABEL` line per
/// request, then one `< HEX` line per datagram answering it. Text so that an operator can
/// see what is sent; hex so that it is byte for byte what the kernel said.
enum NetlinkExchangeText {
    static let header = "# ipvstop capture: IPVS generic-netlink requests (>) and the kernel's datagrams (<), in hex"

    static func format(_ exchanges: [NetlinkExchange]) -> String {
        var out = header + "\n"
        for e in exchanges {
            out += "> " + hex(e.request) + " " + e.label.filter { $0 != "\n" && $0 != "\r" } + "\n"
            for r in e.replies { out += "< " + hex(r) + "\n" }
        }
        return out
    }

    static func parse(_ text: String) throws -> [NetlinkExchange] {
        var out: [NetlinkExchange] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            if line.hasPrefix("#") { continue }
            let parts = line.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, let bytes = unhex(parts[1]) else {
                throw CaptureError.damaged("netlink line \(n + 1) is not '> HEX LABEL' or '< HEX'")
            }
            switch parts[0] {
            case ">":
                out.append(NetlinkExchange(label: parts.count > 2 ? String(parts[2]) : "request", request: bytes, replies: []))
            case "<":
                guard !out.isEmpty else { throw CaptureError.damaged("netlink line \(n + 1): an answer before any request") }
                out[out.count - 1].replies.append(bytes)
            default:
                throw CaptureError.damaged("netlink line \(n + 1) starts with neither '>' nor '<'")
            }
        }
        return out
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func unhex(_ s: Substring) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count % 2 == 0 else { return nil }
        func v(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            case 0x41...0x46: c - 0x41 + 10
            default: nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let hi = v(u[i]), let lo = v(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}
