import IPVSModel

/// What `/proc/net/ip_vs` says: the version header, services and their real servers.
public struct ServiceTable: Sendable {
    public var info: IPVSInfo?
    public var services: [VirtualService]
    public var skipped: SkippedLines
    /// fwmark services whose family /proc does not print; guessed from their real servers
    /// and named here so the snapshot can say so.
    public var fwmarkFamilyGuessed: [UInt32]
    /// Lines that ended in CR LF: the kernel writes LF only, so the file was copied
    /// through another system. They are read (the CR dropped) and the snapshot says so.
    public var crlfLines = 0
    /// Values the kernel cannot have written (a table size that is not a power of two...),
    /// in words: dropped from the table, and named in the snapshot's warnings.
    public var impossibleValues: [String] = []
}

/// Parses `/proc/net/ip_vs` (the kernel's `ip_vs_info_seq_show`).
///
/// ```
/// IP Virtual Server version 1.2.1 (size=4096)
/// Prot LocalAddress:Port Scheduler Flags
///   -> RemoteAddress:Port Forward Weight ActiveConn InActConn
/// TCP  0A000001:0050 rr
///   -> 0A000002:0050      Masq    1      0          0
/// TCP  0A000001:01BB wlc persistent 75000 FFFFFF00
/// FWM  00000001 rr ops persistent 15000 FFFFFFFF
/// TCP  [2001:0db8:0000:0000:0000:0000:0000:0001]:0050 rr
/// ```
/// The persistence timeout here is in jiffies; `hz` turns it into seconds when known.
/// For IPv6 services the kernel keeps the netmask as a prefix length in a network-order
/// field and prints it through `ntohl`, so it reads back byte-swapped on little-endian
/// hosts; the parser undoes that.
public enum ServiceTableParser {
    public static func parse(_ text: String, hz: Int?) -> ServiceTable {
        var info: IPVSInfo?
        var services: [VirtualService] = []
        var skipped = SkippedLines()
        var guessed: [UInt32] = []
        // A destination line belongs to the service above it; after a bad service line its
        // destinations are skipped too rather than attached to the wrong service.
        var currentValid = false
        var impossible: [String] = []

        let (lines, crlf) = Lines.split(text)
        for line in lines {
            if line.hasPrefix("IP Virtual Server version ") {
                info = parseHeader(line)
                if let bad = impossibleTableSize(line) { impossible.append("table size \(bad) (not a power of two; shown as unknown)") }
                continue
            }
            if line.hasPrefix("Prot ") || line.hasPrefix("  -> RemoteAddress") { continue }
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard !fields.isEmpty else { continue }
            if fields[0] == "->" {
                guard currentValid, let rs = parseDestination(fields) else {
                    skipped.malformed += 1
                    skipped.note(line)
                    continue
                }
                // The kernel refuses a negative weight (ip_vs_edit_dest: -ERANGE), so such a
                // line is not the kernel's: counted, not shown as a real server.
                guard rs.weight >= 0 else {
                    skipped.malformed += 1
                    skipped.note(Substring(line + " (negative weight \(rs.weight))"))
                    continue
                }
                services[services.count - 1].realServers.append(rs)
                continue
            }
            switch parseService(fields, hz: hz) {
            case .success(let svc):
                services.append(svc)
                currentValid = true
            case .failure(let why):
                currentValid = false
                if why == .unknownProtocol { skipped.unknownProtocol += 1 } else { skipped.malformed += 1 }
                if case .impossible(let what) = why { skipped.note(Substring(line + " (\(what))")) } else { skipped.note(line) }
            }
        }
        // /proc prints no family for fwmark services: take the real servers' (all of one
        // family) and say it was inferred; with none, IPv4 as ipvsadm's default.
        for i in services.indices {
            guard case .fwmark(let mark, _) = services[i].key else { continue }
            let families = Set(services[i].realServers.map(\.address.family))
            if families == [.ipv6] {
                services[i].key = .fwmark(mark, .ipv6)
                if case .ipv4(let m)? = services[i].persistence?.netmask {
                    services[i].persistence?.netmask = .prefix(Int(m.byteSwapped))
                }
            }
            if families.count != 1 { guessed.append(mark) }
        }
        // An IPv6 fwmark service is known to be one only now: its prefix is checked here.
        services.removeAll { svc in
            guard case .prefix(let p)? = svc.persistence?.netmask, !(1...128).contains(p) else { return false }
            skipped.malformed += 1
            skipped.note(Substring("\(svc.id) (IPv6 persistence prefix \(p) is not 1-128)"))
            return true
        }
        var table = ServiceTable(info: info, services: services, skipped: skipped, fwmarkFamilyGuessed: guessed)
        table.crlfLines = crlf
        table.impossibleValues = impossible
        return table
    }

    static func parseHeader(_ line: Substring) -> IPVSInfo? {
        // "IP Virtual Server version 1.2.1 (size=4096)"
        let rest = line.dropFirst("IP Virtual Server version ".count)
        let parts = rest.split(separator: " ")
        guard let version = parts.first else { return nil }
        // 0 stands for "not known"; a size that is not a positive power of two is not the
        // kernel's (it is 1 << conn_tab_bits) and is dropped to 0 rather than shown.
        var size = 0
        if parts.count > 1, parts[1].hasPrefix("(size="), let n = Int(parts[1].dropFirst(6).dropLast()), n > 0, n & (n - 1) == 0 { size = n }
        return IPVSInfo(version: String(version), tableSize: size)
    }

    /// The raw table size the header claims, when it is one the kernel cannot have (for the
    /// snapshot's warnings); nil when it is plausible or absent.
    static func impossibleTableSize(_ line: Substring) -> String? {
        guard let r = line.firstRange(of: "(size=") else { return nil }
        let raw = line[r.upperBound...].prefix { $0 != ")" }
        if let n = Int(raw), n > 0, n & (n - 1) == 0 { return nil }
        return String(raw.prefix(40))
    }

    enum Failure: Error, Equatable { case malformed, unknownProtocol, impossible(String) }

    static func parseService(_ f: [Substring], hz: Int?) -> Result<VirtualService, Failure> {
        guard f.count >= 3 else { return .failure(.malformed) }
        let key: ServiceKey
        if f[0] == "FWM" {
            guard let mark = UInt32(f[1], radix: 16) else { return .failure(.malformed) }
            key = .fwmark(mark, .ipv4)
        } else {
            guard let proto = IPProtocolNumber(kernelName: f[0]), proto != .ip else { return .failure(.unknownProtocol) }
            guard let (addr, port) = parseEndpoint(f[1]) else { return .failure(.malformed) }
            key = .address(proto, addr, port)
        }
        let scheduler = String(f[2])
        var flags: ServiceFlags = []
        var persistence: Persistence?
        var k = 3
        while k < f.count {
            switch f[k] {
            case "ops":
                flags.insert(.onePacket)
                k += 1
            case "persistent":
                guard k + 2 < f.count, let jiffies = UInt32(f[k + 1]), let mask = UInt32(f[k + 2], radix: 16) else {
                    return .failure(.malformed)
                }
                flags.insert(.persistent)
                let netmask: PersistenceNetmask = key.family == .ipv6 ? .prefix(Int(mask.byteSwapped)) : .ipv4(mask)
                // The kernel accepts an IPv6 persistence prefix of 1 to 128 only.
                if case .prefix(let p) = netmask, !(1...128).contains(p) {
                    return .failure(.impossible("IPv6 persistence prefix \(p) is not 1-128"))
                }
                // A non-positive HZ gives no seconds (the caller checks HZ's range; this
                // division must not trap whatever it is given).
                persistence = Persistence(
                    timeoutSeconds: hz.flatMap { $0 > 0 ? UInt32(clamping: Int(jiffies) / $0) : nil },
                    timeoutJiffies: jiffies, netmask: netmask)
                k += 3
            default:
                return .failure(.malformed)
            }
        }
        return .success(VirtualService(key: key, scheduler: scheduler, flags: flags, persistence: persistence, realServers: []))
    }

    static func parseDestination(_ f: [Substring]) -> RealServer? {
        // ["->", addr:port, Forward, Weight, ActiveConn, InActConn]
        guard f.count == 6, let (addr, port) = parseEndpoint(f[1]), let fwd = ForwardMethod(procName: f[2]),
              let weight = Int32(f[3]), let active = UInt32(f[4]), let inactive = UInt32(f[5])
        else { return nil }
        return RealServer(address: addr, port: port, forward: fwd, weight: weight, activeConns: active, inactiveConns: inactive)
    }

    /// `0A000001:0050` or `[2001:0db8:...:0001]:0050`.
    static func parseEndpoint(_ s: Substring) -> (IPAddress, UInt16)? {
        guard let colon = s.lastIndex(of: ":"), let port = UInt16(s[s.index(after: colon)...], radix: 16) else { return nil }
        let a = s[..<colon]
        if a.hasPrefix("[") && a.hasSuffix("]") {
            guard let addr = IPAddress(a.dropFirst().dropLast()), !addr.isIPv4 else { return nil }
            return (addr, port)
        }
        guard a.count == 8, let v = UInt32(a, radix: 16) else { return nil }
        return (IPAddress(ipv4: v), port)
    }
}
