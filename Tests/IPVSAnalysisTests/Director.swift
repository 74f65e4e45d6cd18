import Foundation
import IPVSAnalysis
import IPVSModel

func ip(_ s: String) -> IPAddress { IPAddress(Substring(s))! }

let t0 = Date(timeIntervalSince1970: 1_800_000_000)

/// A synthetic director built in the model's own values: services, real servers and a
/// connection table, with ActiveConn/InActConn worked out from the table the way the
/// kernel counts them (ESTABLISHED active, the rest inactive).
struct Director {
    var services: [VirtualService] = []
    var entries: [ConnectionEntry] = []
    var sysctls: [String: String] = [
        "amemthresh": "1024", "drop_entry": "0", "drop_packet": "0", "secure_tcp": "0",
        "expire_nodest_conn": "0", "expire_quiescent_template": "0",
    ]
    var syncDaemons: [SyncDaemon]? = []
    var slab: SlabInfo? = SlabInfo(objectSize: 320, activeObjects: nil, totalObjects: nil)
    var tableSize = 4096
    var file = "ip_vs_conn"
    /// Real servers whose counts are set by hand (not from the table).
    var fixedCounts: Set<String> = []
    private var nextPort: UInt16 = 1024

    init() {}

    @discardableResult
    mutating func service(_ vip: String, _ port: UInt16, _ sched: String = "wlc", proto: IPProtocolNumber = .tcp,
                          persistent: UInt32? = nil, netmask: String = "255.255.255.255",
                          _ rs: [(String, Int32)]) -> Int {
        let key = ServiceKey.address(proto, ip(vip), port)
        let p = persistent.map {
            Persistence(timeoutSeconds: $0, timeoutJiffies: $0 * 250, netmask: .ipv4(ip(netmask).ipv4Value))
        }
        services.append(VirtualService(
            key: key, scheduler: sched, flags: p != nil ? [.persistent] : [], persistence: p,
            realServers: rs.map { RealServer(address: ip($0.0), port: port, forward: .masq, weight: $0.1, activeConns: 0, inactiveConns: 0) }))
        return services.count - 1
    }

    mutating func setWeight(_ vip: String, _ port: UInt16, _ rs: String, _ w: Int32) {
        for i in services.indices where services[i].key == .address(.tcp, ip(vip), port) {
            for j in services[i].realServers.indices where services[i].realServers[j].address == ip(rs) {
                services[i].realServers[j].weight = w
            }
        }
    }

    /// `n` connections from `client` to `rs` through `vip:port`.
    mutating func conns(_ client: String, _ n: Int, _ vip: String, _ port: UInt16, _ rs: String, rport: UInt16? = nil,
                        state: ConnectionState = .established, expires: UInt32 = 890, proto: IPProtocolNumber = .tcp, flags: UInt8 = 0) {
        for _ in 0..<n {
            nextPort = nextPort == 65535 ? 1024 : nextPort + 1
            entries.append(ConnectionEntry(proto: proto, client: ip(client), clientPort: nextPort, virtual: ip(vip), virtualPort: port,
                                           destination: ip(rs), destinationPort: rport ?? port, state: state, expires: expires, flags: flags))
        }
    }

    /// A persistence template (client port 0), its client already masked as the kernel does.
    mutating func template(_ client: String, _ vip: String, _ port: UInt16, _ rs: String, expires: UInt32, proto: IPProtocolNumber = .tcp) {
        entries.append(ConnectionEntry(proto: proto, client: ip(client), clientPort: 0, virtual: ip(vip), virtualPort: port,
                                       destination: ip(rs), destinationPort: port, state: .assured, expires: expires))
    }

    /// Sets every real server's ActiveConn/InActConn from the table.
    mutating func countFromTable() {
        for i in services.indices {
            guard case .address(let proto, let vip, let port) = services[i].key else { continue }
            for j in services[i].realServers.indices {
                let rs = services[i].realServers[j]
                if fixedCounts.contains("\(services[i].id)/\(rs.id)") { continue }
                var a: UInt32 = 0, n: UInt32 = 0
                for e in entries where !e.isTemplate && e.proto == proto && e.virtual == vip && e.virtualPort == port && e.destination == rs.address {
                    if e.state == .established { a += 1 } else { n += 1 }
                }
                services[i].realServers[j].activeConns = a
                services[i].realServers[j].inactiveConns = n
            }
        }
    }

    /// The snapshot at `at`, its table read at `readAt`; `previous` (the table of the read
    /// before, at `previousReadAt`) gives `connectionChanges`.
    func snapshot(at: Date = t0, readAt: Date? = nil, previous: [ConnectionEntry]? = nil, previousReadAt: Date? = nil,
                  withTable: Bool = true) -> Snapshot {
        var d = self
        d.countFromTable()
        let read = readAt ?? at
        let table = ConnectionTable(entries: d.entries, file: file, readAt: read,
                                    cost: ReadCost(seconds: 0.001, cpuSeconds: 0.001, bytes: d.entries.count * 67, readCalls: 1))
        var s = Snapshot(
            takenAt: at, info: IPVSInfo(version: "1.2.1", tableSize: tableSize), services: d.services,
            connections: withTable ? table : nil, global: nil,
            sysctls: sysctls.map { Sysctl(name: $0.key, value: $0.value) }.sorted { $0.name < $1.name },
            timeouts: nil, syncDaemons: syncDaemons, slab: slab, tickRate: TickRate(hz: 250, origin: .option),
            source: SourceReport(procRoot: "/proc", netlink: .off(reason: "test")))
        if let previous {
            struct ID: Hashable { var c: IPAddress; var cp: UInt16; var v: IPAddress; var vp: UInt16; var d: IPAddress; var dp: UInt16; var p: UInt8 }
            func id(_ e: ConnectionEntry) -> ID { ID(c: e.client, cp: e.clientPort, v: e.virtual, vp: e.virtualPort, d: e.destination, dp: e.destinationPort, p: e.proto.rawValue) }
            let old = Set(previous.map(id))
            let new = d.entries.indices.filter { !old.contains(id(d.entries[$0])) }
            let prevAt = previousReadAt ?? read.addingTimeInterval(-1)
            s.connectionChanges = ConnectionChanges(previousReadAt: prevAt, newEntryIndices: new, interval: read.timeIntervalSince(prevAt))
        }
        return s
    }
}

extension AnalysisResult {
    var keys: Set<String> { Set(findings.map(\.key)) }
    func finding(_ key: String) -> Finding? { findings.first { $0.key == key } }
    func of(_ kind: FindingKind) -> [Finding] { findings.filter { $0.kind == kind } }
}

extension Evidence.Value {
    var int: Int? { if case .int(let v) = self { v } else { nil } }
    var text: String? { if case .text(let v) = self { v } else { nil } }
}

/// The seed (LVS HOWTO 28.22, "Rogue clients hidden by persistence"): seven RDP real
/// servers, wlc persistent 43200, two rogue thin clients: 912 and 624 ActiveConn against
/// ~20 elsewhere. Here RS1's 912 are two thin clients (500 + 380) and 32 ordinary ones,
/// RS7's 624 one thin client (600) and 24 ordinary ones.
func seedDirector() -> Director {
    var d = Director()
    let rs = (1...7).map { "10.1.0.\($0)" }
    d.service("10.0.0.1", 3389, "wlc", persistent: 43200, rs.map { ($0, 1) })
    var n = 0
    func ordinary(_ count: Int, _ server: String, _ d: inout Director) {
        for _ in 0..<count {
            n += 1
            let c = "192.168.\(n / 200).\(n % 200 + 1)"
            d.conns(c, 1, "10.0.0.1", 3389, server)
            d.template(c, "10.0.0.1", 3389, server, expires: 43100)
        }
    }
    d.conns("10.9.9.1", 500, "10.0.0.1", 3389, rs[0])
    d.template("10.9.9.1", "10.0.0.1", 3389, rs[0], expires: 43190)
    d.conns("10.9.9.2", 380, "10.0.0.1", 3389, rs[0])
    d.template("10.9.9.2", "10.0.0.1", 3389, rs[0], expires: 43190)
    ordinary(32, rs[0], &d)
    for (i, k) in [22, 22, 21, 20, 21].enumerated() { ordinary(k, rs[i + 1], &d) }
    d.conns("192.168.50.1", 1, "10.0.0.1", 3389, rs[4], state: .timeWait) // the seed's "20 1"
    d.conns("10.9.9.3", 600, "10.0.0.1", 3389, rs[6])
    d.template("10.9.9.3", "10.0.0.1", 3389, rs[6], expires: 43190)
    ordinary(24, rs[6], &d)
    return d
}

/// A healthy director: three services, balanced, many ordinary clients, templates within
/// their timeout, every destination present.
func healthyDirector() -> Director {
    var d = Director()
    d.service("10.0.0.1", 80, "wrr", [("10.1.0.1", 2), ("10.1.0.2", 1)])
    d.service("10.0.0.1", 443, "wlc", persistent: 300, [("10.1.0.1", 1), ("10.1.0.2", 1)])
    d.service("10.0.0.2", 8080, "rr", persistent: 120, netmask: "255.255.255.0", [("10.1.0.1", 1), ("10.1.0.2", 1), ("10.1.0.3", 1)])
    for i in 0..<120 {
        let c = "172.16.\(i / 50).\(i % 50 + 10)"
        d.conns(c, 1, "10.0.0.1", 80, i % 3 == 2 ? "10.1.0.2" : "10.1.0.1")
        d.conns(c, 1, "10.0.0.1", 80, "10.1.0.1", state: .timeWait, expires: 60)
        let rs443 = i % 2 == 0 ? "10.1.0.1" : "10.1.0.2"
        d.conns(c, 1, "10.0.0.1", 443, rs443)
        d.template(c, "10.0.0.1", 443, rs443, expires: 250)
    }
    for g in 0..<30 {
        let rs = ["10.1.0.1", "10.1.0.2", "10.1.0.3"][g % 3]
        for h in 1...2 { d.conns("172.20.\(g).\(h)", 1, "10.0.0.2", 8080, rs) }
        d.template("172.20.\(g).0", "10.0.0.2", 8080, rs, expires: 100)
    }
    return d
}
