import IPVSModel

/// A filter as typed after `/`: words, each either `field:value` or plain text, all of
/// which must match. Fields: `client:` (an address, a text prefix like `10.1.` or a
/// CIDR like `172.16.5.0/24`), `svc:` (`tcp:10.0.0.100:80`, `fwmark:1`, or part of one),
/// `rs:` (`192.168.1.3:80` or part), `state:` (a prefix: `est`, `time`), `proto:`.
public struct FilterTerms: Sendable, Hashable {
    public enum Field: String, Sendable, Hashable, CaseIterable {
        case client, service = "svc", realServer = "rs", state, proto, text
    }

    public struct Term: Sendable, Hashable {
        public var field: Field
        public var value: String
    }

    public var terms: [Term]
    /// Words that look like `key:value` with a key the filter does not know (`foo:bar`):
    /// rejected with a message rather than matching nothing in silence. A protocol's
    /// name (`tcp:10.0.0.1:80`, a service as written) and a hex group (`fd00:1`) are text.
    public var unknownKeys: [String] = []

    public init(_ text: String) {
        terms = []
        for word in text.split(whereSeparator: \.isWhitespace) {
            var field = Field.text
            var value = String(word)
            if let colon = word.firstIndex(of: ":") {
                let name = word[..<colon].lowercased()
                let aliases: [String: Field] = [
                    "client": .client, "c": .client, "src": .client,
                    "svc": .service, "service": .service, "vs": .service,
                    "rs": .realServer, "real": .realServer, "dest": .realServer, "dst": .realServer,
                    "state": .state, "st": .state, "proto": .proto, "p": .proto,
                ]
                if let f = aliases[name] {
                    field = f
                    value = String(word[word.index(after: colon)...])
                } else if !name.isEmpty, name.allSatisfy(\.isLetter), !name.allSatisfy(\.isHexDigit),
                          !["tcp", "udp", "sctp", "fwm", "fwmark"].contains(name) {
                    unknownKeys.append(name + ":")
                }
            }
            if !value.isEmpty { terms.append(Term(field: field, value: value)) }
        }
    }

    public var isEmpty: Bool { terms.isEmpty }

    /// Why `text` cannot filter a screen that understands `fields` (and bare text), or nil.
    public static func problem(_ text: String, screen: String, fields: [Field]) -> String? {
        let t = FilterTerms(text)
        let keys = fields.filter { $0 != .text }.map { $0.rawValue + ":" }.joined(separator: " ")
        if let u = t.unknownKeys.first {
            return "unknown filter key \(u) (\(screen) knows \(keys) and plain text)"
        }
        if let bad = t.terms.first(where: { $0.field != .text && !fields.contains($0.field) }) {
            return "\(bad.field.rawValue): does not apply on \(screen) (it knows \(keys) and plain text)"
        }
        return nil
    }

    public func values(_ f: Field) -> [String] { terms.filter { $0.field == f }.map(\.value) }
}

/// An address test for `client:` terms: exact address, CIDR, or text prefix.
public struct AddressMatcher: Sendable {
    enum Kind: Sendable {
        case exact(IPAddress)
        case cidr(IPAddress, Int)
        case prefix(String)
    }
    let kind: Kind

    public init(_ text: String) {
        if let slash = text.firstIndex(of: "/"), let a = IPAddress(text[..<slash]), let n = Int(text[text.index(after: slash)...]) {
            // An IPv4 CIDR's length counts from the start of the IPv4 address.
            kind = .cidr(a.masked(prefixLength: n), n)
        } else if let a = IPAddress(Substring(text)) {
            kind = .exact(a)
        } else {
            kind = .prefix(text.lowercased())
        }
    }

    public func matches(_ a: IPAddress) -> Bool {
        switch kind {
        case .exact(let x): return a == x
        case .cidr(let net, let n): return a.family == net.family && a.masked(prefixLength: n) == net
        case .prefix(let p): return a.description.hasPrefix(p)
        }
    }
}

/// Which service an entry belongs to, by its protocol, virtual address and port (or mark):
/// the same matching the kernel does, for the filter's `svc:` only.
struct ServiceLookup {
    var byAddress: [ServiceKey: Int] = [:]
    var fwmark: [(Int, UInt32, AddressFamily, Set<IPAddress>)] = []

    init(_ services: [VirtualService]) {
        for (i, s) in services.enumerated() {
            switch s.key {
            case .address: byAddress[s.key] = i
            case .fwmark(let m, let f): fwmark.append((i, m, f, Set(s.realServers.map(\.address))))
            }
        }
    }

    func service(of e: ConnectionEntry) -> Int? {
        if let m = e.fwmark {
            return fwmark.first { $0.1 == m && $0.2 == e.client.family }?.0
        }
        if let i = byAddress[.address(e.proto, e.virtual, e.virtualPort)] ?? byAddress[.address(e.proto, e.virtual, 0)] { return i }
        return fwmark.first { $0.2 == e.client.family && $0.3.contains(e.destination) }?.0
    }
}
