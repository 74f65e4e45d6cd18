// The built-in simulated director for --demo (issue: the dashboard).
import FoundationEssentials
import Glibc
import IPVSModel
import IPVSRawMemory

/// A simulated IPVS director whose services, clients, templates and counters evolve over
/// time: the `--demo` source, and the source the dashboard's and subagent's tests run on.
///
/// A snapshot is a pure function of the seed and the time: `snapshot(at: t)` gives the
/// same director for the same `t` on every machine, so tests and reference screens are
/// reproducible, and any moment can be visited without simulating the ones before it.
///
/// The director shows each problem operators hunt:
/// - rogue clients: two thin clients holding hundreds of connections on one real server of
///   a source-hashed web service (one of them pushing it over its upper threshold);
/// - a pinned proxy farm: a /24 of clients behind a persistence netmask, all on one server;
/// - a quiescent server still fed: weight 0, but its persistence templates keep bringing
///   their clients back (`expire_quiescent_template = 0`);
/// - a deleted server: gone from its service, its connections still in the table
///   (`expire_nodest_conn = 0`);
/// plus UDP with one-packet scheduling, a fwmark service with templates and IPv6.
public struct DemoDirector: Sendable {
    public let seed: UInt64
    /// How many times the ordinary client population is multiplied (1 gives ~2,000
    /// entries; the rogue clients and the deleted server's connections do not scale).
    public let scale: Int
    /// The wall-clock date of simulated time 0.
    public let epoch: Date

    /// A fixed moment (2026-01-01 00:00:00 UTC), so dates in snapshots are reproducible.
    public static let defaultEpoch = Date(timeIntervalSince1970: 1_767_225_600)
    /// A simulated time at which every client population has reached its steady state.
    public static let warmTime: Double = 3_600
    /// The simulated director's host name and kernel: marked as the demo's.
    public static let host = HostInfo(hostname: "demo-director", kernelRelease: "6.1.0-demo-amd64")

    let services: [ServiceSpec]
    let slots: [ClientSlot]

    public init(seed: UInt64 = 1, scale: Int = 1, epoch: Date = DemoDirector.defaultEpoch) {
        self.seed = seed
        self.scale = max(1, scale)
        self.epoch = epoch
        let s = Self.makeServices()
        self.services = s
        self.slots = Self.makeSlots(seed: seed, scale: max(1, scale), services: s)
    }

    // MARK: - Configuration

    struct RealServerSpec: Sendable {
        var address: IPAddress
        var port: UInt16
        var forward: ForwardMethod
        var weight: Int32
        /// The weight the server had when its clients' templates were made: the scheduler's
        /// choice for a persistence group uses it, so a server drained to weight 0 keeps the
        /// groups it already had.
        var historicWeight: Int32
        var upperThreshold: UInt32 = 0
        /// Removed from the service: not listed, but its connections remain.
        var deleted = false
    }

    struct ServiceSpec: Sendable {
        var key: ServiceKey
        var scheduler: String
        var flags: ServiceFlags
        var persistence: Persistence?
        var realServers: [RealServerSpec]
        /// For fwmark services: the addresses and ports the mark is set on.
        var markedPorts: [UInt16] = []
        var markedAddress: IPAddress = .zeroIPv4

        var proto: IPProtocolNumber {
            if case .address(let p, _, _) = key { return p }
            return .tcp
        }
    }

    enum Kind: Sendable { case ordinary, rogue, proxyFarm, deletedServer }

    struct ClientSlot: Sendable {
        var address: IPAddress
        var service: Int
        var kind: Kind
        /// Mean seconds between the starts of two sessions.
        var period: Double
        var minDuration: Double
        var maxDuration: Double
        var phase: Double
        /// Forced real server index (rogue clients, the deleted server).
        var pinned: Int?
    }

    static func v4(_ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: UInt32) -> IPAddress {
        IPAddress(ipv4: a << 24 | b << 16 | c << 8 | d)
    }

    static func makeServices() -> [ServiceSpec] {
        let vip = v4(10, 0, 0, 100), vip2 = v4(10, 0, 0, 101)
        func rs(_ c: UInt32, _ d: UInt32, _ port: UInt16, _ w: Int32, historic: Int32? = nil, fwd: ForwardMethod = .masq, uthr: UInt32 = 0, deleted: Bool = false) -> RealServerSpec {
            RealServerSpec(address: v4(192, 168, c, d), port: port, forward: fwd, weight: w, historicWeight: historic ?? w, upperThreshold: uthr, deleted: deleted)
        }
        let v6 = IPAddress("fd00:100::100")!
        return [
            // Web, source-hashed: a client always lands on the same server.
            ServiceSpec(key: .address(.tcp, vip, 80), scheduler: "sh", flags: [.hashed, .sched1], persistence: nil,
                        realServers: [rs(1, 2, 80, 3), rs(1, 3, 80, 2, uthr: 800), rs(1, 4, 80, 2), rs(1, 5, 80, 1, fwd: .route)]),
            // TLS, persistent: 192.168.1.6 was drained to weight 0 but keeps its clients.
            ServiceSpec(key: .address(.tcp, vip, 443), scheduler: "wlc", flags: [.hashed, .persistent],
                        persistence: Persistence(timeoutSeconds: 300, timeoutJiffies: nil, netmask: .ipv4(0xFFFF_FFFF)),
                        realServers: [rs(1, 2, 443, 1), rs(1, 3, 443, 1), rs(1, 6, 443, 0, historic: 1)]),
            // An application behind a /24 persistence netmask: a proxy farm pins to one server.
            ServiceSpec(key: .address(.tcp, vip2, 8080), scheduler: "rr", flags: [.hashed, .persistent],
                        persistence: Persistence(timeoutSeconds: 600, timeoutJiffies: nil, netmask: .ipv4(0xFFFF_FF00)),
                        realServers: [rs(2, 2, 8080, 1), rs(2, 3, 8080, 1), rs(2, 4, 8080, 1)]),
            // Admin: 192.168.1.8 was deleted, its connections stay.
            ServiceSpec(key: .address(.tcp, vip, 8443), scheduler: "rr", flags: [.hashed], persistence: nil,
                        realServers: [rs(1, 7, 8443, 1), rs(1, 8, 8443, 1, deleted: true)]),
            // DNS.
            ServiceSpec(key: .address(.udp, vip, 53), scheduler: "rr", flags: [.hashed], persistence: nil,
                        realServers: [rs(3, 2, 53, 1), rs(3, 3, 53, 1)]),
            // A fwmark service for 10.0.0.102:80 and :443, persistent.
            ServiceSpec(key: .fwmark(1, .ipv4), scheduler: "rr", flags: [.hashed, .persistent],
                        persistence: Persistence(timeoutSeconds: 120, timeoutJiffies: nil, netmask: .ipv4(0xFFFF_FFFF)),
                        realServers: [rs(3, 4, 0, 1), rs(3, 5, 0, 1)],
                        markedPorts: [80, 443], markedAddress: v4(10, 0, 0, 102)),
            // IPv6 web.
            ServiceSpec(key: .address(.tcp, v6, 443), scheduler: "wlc", flags: [.hashed], persistence: nil,
                        realServers: [
                            RealServerSpec(address: IPAddress("fd00:1::2")!, port: 443, forward: .masq, weight: 1, historicWeight: 1),
                            RealServerSpec(address: IPAddress("fd00:2::2")!, port: 443, forward: .masq, weight: 2, historicWeight: 2),
                        ]),
            // Syslog with one-packet scheduling: counted, never kept in the table.
            ServiceSpec(key: .address(.udp, vip, 514), scheduler: "rr", flags: [.hashed, .onePacket], persistence: nil,
                        realServers: [rs(3, 2, 514, 1), rs(3, 3, 514, 1)]),
        ]
    }

    static func makeSlots(seed: UInt64, scale: Int, services: [ServiceSpec]) -> [ClientSlot] {
        var out: [ClientSlot] = []
        var k: UInt64 = 0
        func r() -> Double { k += 1; return unit(seed, 0xC11E, k) }
        func ordinary(_ service: Int, _ address: IPAddress, period: ClosedRange<Double>, duration: ClosedRange<Double>) {
            let p = period.lowerBound + (period.upperBound - period.lowerBound) * r()
            out.append(ClientSlot(address: address, service: service, kind: .ordinary, period: p,
                                  minDuration: duration.lowerBound, maxDuration: duration.upperBound, phase: r() * p, pinned: nil))
        }
        for n in 0..<(70 * scale) {
            let a = v4(203, UInt32(n / 250 % 256), 113, UInt32(1 + n % 250))
            ordinary(0, a, period: 20...90, duration: 3...60)
        }
        for n in 0..<(40 * scale) {
            ordinary(1, v4(198, 51, UInt32(100 + n / 250 % 100), UInt32(1 + n % 250)), period: 30...120, duration: 5...90)
        }
        // Ordinary clients of the /24 service, each in its own /24.
        for n in 0..<(16 * scale) {
            ordinary(2, v4(100, 64, UInt32(n % 256), UInt32(10 + n / 256 % 200)), period: 40...120, duration: 10...100)
        }
        // The proxy farm: 48 addresses of one /24, one persistence group.
        for n in 0..<48 {
            var s = ClientSlot(address: v4(172, 16, 5, UInt32(10 + n)), service: 2, kind: .proxyFarm, period: 15 + 30 * r(),
                               minDuration: 20, maxDuration: 120, phase: 0, pinned: nil)
            s.phase = r() * s.period
            out.append(s)
        }
        for n in 0..<(10 * scale) {
            ordinary(3, v4(10, 20, UInt32(n / 250 % 256), UInt32(1 + n % 250)), period: 60...200, duration: 30...300)
        }
        for n in 0..<(20 * scale) {
            ordinary(4, v4(10, 30, UInt32(n / 250 % 256), UInt32(1 + n % 250)), period: 10...40, duration: 0...0.2)
        }
        for n in 0..<(12 * scale) {
            ordinary(7, v4(10, 40, UInt32(n / 250 % 256), UInt32(1 + n % 250)), period: 0.5...2, duration: 0...0.01)
        }
        for n in 0..<(20 * scale) {
            ordinary(5, v4(192, 0, UInt32(2 + n / 250 % 200), UInt32(1 + n % 250)), period: 20...80, duration: 5...60)
        }
        for n in 0..<(24 * scale) {
            ordinary(6, IPAddress(ipv6High: 0x2001_0db8_0000_0000 | UInt64(n / 200 % 0x1_0000) << 16, low: UInt64(0x100 + n % 200)),
                     period: 30...100, duration: 5...60)
        }
        // The rogue clients: thin clients opening a connection every fraction of a second and
        // holding each for minutes, all on 192.168.1.3 (source hashing).
        out.append(ClientSlot(address: v4(198, 51, 100, 66), service: 0, kind: .rogue, period: 0.5,
                              minDuration: 150, maxDuration: 200, phase: 0.1, pinned: 1))
        out.append(ClientSlot(address: v4(198, 51, 100, 77), service: 0, kind: .rogue, period: 1.0,
                              minDuration: 150, maxDuration: 200, phase: 0.2, pinned: 1))
        // Sessions opened to 192.168.1.8 before it was deleted: long-lived, never renewed.
        out.append(ClientSlot(address: v4(10, 20, 9, 9), service: 3, kind: .deletedServer, period: 1,
                              minDuration: 1e9, maxDuration: 1e9, phase: 0, pinned: 1))
        return out
    }

    // MARK: - Randomness (a pure function of its arguments)

    /// SplitMix64 of `x`: the kit's mixer, one step from `x`.
    static func mix(_ x: UInt64) -> UInt64 {
        var state = x
        return Mixer.splitMix(&state)
    }

    static func hash(_ a: UInt64, _ b: UInt64, _ c: UInt64, _ d: UInt64 = 0) -> UInt64 {
        mix(mix(mix(mix(a) ^ b) ^ c) ^ d)
    }

    /// Uniform in [0, 1).
    static func unit(_ a: UInt64, _ b: UInt64, _ c: UInt64, _ d: UInt64 = 0) -> Double {
        Double(hash(a, b, c, d) >> 11) / Double(1 << 53)
    }

    func unit(_ slot: Int, _ n: Int, _ what: UInt64) -> Double {
        Self.unit(seed, UInt64(slot), UInt64(bitPattern: Int64(n)), what)
    }

    // MARK: - Sessions

    /// TCP timeouts the kernel applies (seconds): established, FIN_WAIT, TIME_WAIT; UDP.
    static let tcpEstablished: Double = 900, tcpFinWait: Double = 120, tcpTimeWait: Double = 120, udpTimeout: Double = 300

    struct Session {
        var slot: Int
        var n: Int
        var start: Double
        var end: Double
    }

    /// Seconds an entry stays in the table after its session ends.
    func linger(_ proto: IPProtocolNumber) -> Double {
        proto == .udp ? Self.udpTimeout : 2 + Self.tcpTimeWait
    }

    /// The sessions of a slot whose entries are in the table at `t` (started and not yet
    /// expired).
    func sessions(of j: Int, at t: Double, into out: inout [Session]) {
        let c = slots[j]
        let svc = services[c.service]
        // Sessions whose entries are gone still count while their template lives.
        let life = max(c.maxDuration + linger(svc.proto), Double(svc.persistence?.timeoutSeconds ?? 0))
        if c.kind == .deletedServer {
            // A fixed set of connections opened long ago.
            for n in 0..<12 { out.append(Session(slot: j, n: n, start: -86_400 + Double(n) * 7, end: .infinity)) }
            return
        }
        let first = Int(((t - life - c.phase) / c.period).rounded(.down)) - 1
        let last = Int(((t - c.phase) / c.period).rounded(.down))
        guard last >= first else { return }
        for n in max(first, -1_000_000)...last {
            let start = c.phase + (Double(n) + 0.8 * unit(j, n, 1)) * c.period
            if start > t { continue }
            let end = start + c.minDuration + (c.maxDuration - c.minDuration) * unit(j, n, 2)
            if t >= end + linger(svc.proto) && (svc.persistence == nil || t >= start + life) { continue }
            out.append(Session(slot: j, n: n, start: start, end: end))
        }
    }

    /// The real server index a session of slot `j` goes to.
    func realServer(slot j: Int, session n: Int) -> Int {
        let c = slots[j]
        if let p = c.pinned { return p }
        let svc = services[c.service]
        let live = svc.realServers.indices.filter { !svc.realServers[$0].deleted }
        switch svc.scheduler {
        case "sh" where svc.persistence == nil:
            // Source hashing: the client's address decides.
            return weightedPick(live.map { ($0, svc.realServers[$0].weight) }, Self.unit(seed, c.address.low, c.address.high, 0x5))
        default:
            if let p = svc.persistence {
                // The persistence group's template decides; it was made when the servers had
                // their historic weights.
                let g = p.netmask.apply(to: c.address)
                return weightedPick(live.map { ($0, svc.realServers[$0].historicWeight) }, Self.unit(seed, g.low, g.high, 0x7))
            }
            return weightedPick(live.map { ($0, svc.realServers[$0].weight) }, unit(j, n, 3))
        }
    }

    func weightedPick(_ choices: [(Int, Int32)], _ r: Double) -> Int {
        let total = choices.reduce(0) { $0 + Int($1.1) }
        guard total > 0 else { return choices.first?.0 ?? 0 }
        var x = r * Double(total)
        for (i, w) in choices where w > 0 {
            x -= Double(w)
            if x < 0 { return i }
        }
        return choices.last { $0.1 > 0 }?.0 ?? 0
    }

    // MARK: - Snapshot

    /// The director at simulated time `t` (seconds since `epoch`). `interval` is the time
    /// since the previous poll, used to tell which entries are new.
    public func snapshot(at t: Double, interval: Double = 1) -> Snapshot {
        let takenAt = epoch.addingTimeInterval(t)
        var entries: [ConnectionEntry] = []
        entries.reserveCapacity(2_500 * scale)
        var newIndices: [Int] = []
        // Per service, per real server: active, inactive, templates.
        var active = services.map { [Int](repeating: 0, count: $0.realServers.count) }
        var inactive = active, persist = active

        struct GroupKey: Hashable { var service: Int; var group: IPAddress; var rs: Int; var port: UInt16 }
        struct Group { var lastStart: Double; var live: Bool; var virtual: IPAddress; var vport: UInt16 }
        var groups: [GroupKey: Group] = [:]

        var sessions: [Session] = []
        for j in slots.indices {
            sessions.removeAll(keepingCapacity: true)
            self.sessions(of: j, at: t, into: &sessions)
            let c = slots[j]
            let svc = services[c.service]
            for s in sessions {
                // One-packet scheduling releases the entry at once.
                let inTable = !svc.flags.contains(.onePacket) && t < s.end + linger(svc.proto)
                let rsIndex = realServer(slot: j, session: s.n)
                let rs = svc.realServers[rsIndex]
                var virtual: IPAddress, vport: UInt16
                switch svc.key {
                case .address(_, let a, let p): virtual = a; vport = p
                case .fwmark:
                    virtual = svc.markedAddress
                    vport = svc.markedPorts[Int(Self.hash(seed, UInt64(j), UInt64(bitPattern: Int64(s.n)), 9) % UInt64(svc.markedPorts.count))]
                }
                let dport = rs.port == 0 ? vport : rs.port
                var state: ConnectionState
                var expires: Double
                if svc.proto == .udp {
                    state = .udp
                    expires = t < s.end ? Self.udpTimeout - (t - s.start).truncatingRemainder(dividingBy: 7) : Self.udpTimeout - (t - s.end)
                } else if t < s.start + 1 {
                    state = .synRecv; expires = 60 - (t - s.start)
                } else if t < s.end {
                    let u = unit(j, s.n, 4)
                    if u < 0.02 {
                        state = .closeWait; expires = 60 - (t - s.start).truncatingRemainder(dividingBy: 60)
                    } else {
                        state = .established; expires = Self.tcpEstablished - (t - s.start).truncatingRemainder(dividingBy: 45)
                    }
                } else if t < s.end + 2 {
                    state = .finWait; expires = Self.tcpFinWait - (t - s.end)
                } else {
                    state = .timeWait; expires = Self.tcpTimeWait - (t - s.end - 2)
                }
                if let p = svc.persistence {
                    let key = GroupKey(service: c.service, group: p.netmask.apply(to: c.address), rs: rsIndex, port: svc.key.isFwmark ? 0 : dport)
                    var g = groups[key] ?? Group(lastStart: s.start, live: false, virtual: virtual, vport: vport)
                    g.lastStart = max(g.lastStart, s.start)
                    g.live = g.live || inTable
                    groups[key] = g
                }
                guard inTable else { continue }
                let cport = UInt16(32_768 + Self.hash(seed, UInt64(j), UInt64(bitPattern: Int64(s.n)), 11) % 28_000)
                if s.start > t - interval { newIndices.append(entries.count) }
                entries.append(ConnectionEntry(
                    proto: svc.proto, client: c.address, clientPort: cport, virtual: virtual, virtualPort: vport,
                    destination: rs.address, destinationPort: dport, state: state, expires: UInt32(max(0, expires.rounded(.up)))))
                if !rs.deleted {
                    if state == .established { active[c.service][rsIndex] += 1 } else { inactive[c.service][rsIndex] += 1 }
                }
            }
        }
        // Templates: one per persistence group and real server.
        for (key, g) in groups.sorted(by: { ($0.key.service, $0.key.group, $0.key.rs) < ($1.key.service, $1.key.group, $1.key.rs) }) {
            let svc = services[key.service]
            guard let p = svc.persistence, let timeout = p.timeoutSeconds.map(Double.init) else { continue }
            let expiry = g.lastStart + timeout
            var left = expiry - t
            if left <= 0 {
                guard g.live else { continue }
                // The kernel re-arms a template that runs out while it still controls
                // connections, for 60 s at a time.
                left = 60 - (t - expiry).truncatingRemainder(dividingBy: 60)
            }
            let rs = svc.realServers[key.rs]
            var proto = svc.proto, virtual = g.virtual, vport = g.vport, dport = key.port
            if case .fwmark(let mark, _) = svc.key {
                proto = .ip; virtual = IPAddress(ipv4: mark); vport = 0; dport = 0
            }
            if g.lastStart > t - interval && g.lastStart <= t { newIndices.append(entries.count) }
            entries.append(ConnectionEntry(
                proto: proto, client: key.group, clientPort: 0, virtual: virtual, virtualPort: vport,
                destination: rs.address, destinationPort: dport, state: g.live ? .assured : .none,
                expires: UInt32(max(0, left.rounded(.up)))))
            if !rs.deleted { persist[key.service][key.rs] += 1 }
        }
        // The kernel lists entries in the order of its hash table: by a hash of each entry's
        // identity, so that an entry keeps its place from one read to the next.
        let keys = entries.map { e in
            Self.hash(seed ^ 0x0DE5, e.client.low ^ e.client.high &* 31, e.virtual.low ^ e.destination.low &* 7,
                      UInt64(e.clientPort) | UInt64(e.virtualPort) << 16 | UInt64(e.destinationPort) << 32 | UInt64(e.proto.rawValue) << 48)
        }
        let order = entries.indices.sorted { keys[$0] != keys[$1] ? keys[$0] < keys[$1] : $0 < $1 }
        var position = [Int](repeating: 0, count: entries.count)
        for (newPos, old) in order.enumerated() { position[old] = newPos }
        entries = order.map { entries[$0] }
        newIndices = newIndices.map { position[$0] }.sorted()

        // Services with their counters: closed-form so that any moment is cheap to visit.
        var vs: [VirtualService] = []
        var globalStats = TrafficStats(conns: 0, inPackets: 0, outPackets: 0, inBytes: 0, outBytes: 0)
        var globalRates = TrafficRates(cps: 0, inPPS: 0, outPPS: 0, inBPS: 0, outBPS: 0)
        for (si, svc) in services.enumerated() {
            var sstats = TrafficStats(conns: 0, inPackets: 0, outPackets: 0, inBytes: 0, outBytes: 0)
            var srates = TrafficRates(cps: 0, inPPS: 0, outPPS: 0, inBPS: 0, outBPS: 0)
            var list: [RealServer] = []
            for (ri, r) in svc.realServers.enumerated() {
                let (st, rt) = counters(service: si, realServer: ri, at: t)
                add(&sstats, st); add(&srates, rt)
                guard !r.deleted else { continue }
                list.append(RealServer(
                    address: r.address, port: r.port, forward: r.forward, weight: r.weight,
                    activeConns: UInt32(active[si][ri]), inactiveConns: UInt32(inactive[si][ri]),
                    persistentConns: UInt32(persist[si][ri]), upperThreshold: r.upperThreshold, lowerThreshold: 0,
                    stats: st, rates: rt))
            }
            add(&globalStats, sstats); add(&globalRates, srates)
            list.sort { ($0.address, $0.port) < ($1.address, $1.port) }
            vs.append(VirtualService(key: svc.key, scheduler: svc.scheduler, flags: svc.flags, persistence: svc.persistence,
                                     stats: sstats, rates: srates, realServers: list))
        }
        vs.sort { $0.key < $1.key }

        let tableCost = ReadCost(seconds: 0.000_9 + Double(entries.count) * 2.1e-6, cpuSeconds: 0.000_8 + Double(entries.count) * 1.9e-6,
                                 bytes: entries.count * 67, readCalls: 1 + entries.count * 67 / 4_194_304)
        let table = ConnectionTable(entries: entries, file: "ip_vs_conn", readAt: takenAt, cost: tableCost)
        let files = [
            FileRead(name: "net/ip_vs", readAt: takenAt, cost: ReadCost(seconds: 0.000_21, cpuSeconds: 0.000_18, bytes: 1_870, readCalls: 2)),
            FileRead(name: "net/ip_vs_stats", readAt: takenAt, cost: ReadCost(seconds: 0.000_05, cpuSeconds: 0.000_04, bytes: 315, readCalls: 2)),
        ]
        var snap = Snapshot(
            takenAt: takenAt, info: IPVSInfo(version: "1.2.1", tableSize: 4096), services: vs, connections: table,
            global: GlobalStats(totals: globalStats, rates: globalRates), sysctls: Self.sysctls,
            timeouts: Timeouts(tcp: 900, tcpFin: 120, udp: 300),
            syncDaemons: [SyncDaemon(role: .master, multicastInterface: "eth1", syncID: 1, maxLength: 1472,
                                     multicastGroup: Self.v4(224, 0, 0, 81), multicastPort: 8848, multicastTTL: 1)],
            slab: SlabInfo(objectSize: 320, activeObjects: entries.count, totalObjects: (entries.count / 12 + 1) * 12),
            tickRate: TickRate(hz: 250, origin: .netlink),
            source: SourceReport(procRoot: "demo", netlink: .used(readAt: takenAt, cost: ReadCost(seconds: 0.000_64, cpuSeconds: 0.000_31, bytes: 9_412, readCalls: 6)),
                                 files: files))
        snap.connectionChanges = ConnectionChanges(previousReadAt: takenAt.addingTimeInterval(-interval), newEntryIndices: newIndices, interval: interval)
        // A name no machine has, so that the demo is never taken for this one.
        snap.host = Self.host
        return snap
    }

    /// Cumulative counters and the current rates of one real server: a base rate (the
    /// sessions its clients open) that breathes with a ten-minute cycle.
    func counters(service si: Int, realServer ri: Int, at t: Double) -> (TrafficStats, TrafficRates) {
        let key = UInt64(si * 64 + ri)
        var lambda = 0.0
        for (j, c) in slots.enumerated() where c.service == si {
            if c.kind == .deletedServer { continue }
            // The share of this slot's sessions the server gets.
            if c.pinned == ri || (c.pinned == nil && realServer(slot: j, session: 0) == ri && (services[si].scheduler == "sh" || services[si].persistence != nil)) {
                lambda += 1 / c.period
            } else if c.pinned == nil && services[si].persistence == nil && services[si].scheduler != "sh" {
                let live = services[si].realServers.filter { !$0.deleted }
                let total = live.reduce(0) { $0 + Int($1.weight) }
                if total > 0 && !services[si].realServers[ri].deleted {
                    lambda += Double(services[si].realServers[ri].weight) / Double(total) / c.period
                }
            }
        }
        let spec = services[si].realServers[ri]
        if spec.deleted { lambda = 0 }
        let phase = Self.unit(seed, key, 0xFA5E) * 2 * .pi
        let w = 2 * Double.pi / 600, amp = 0.3
        // ∫ λ(1 + a·sin(ωs + φ)) ds from 0 to t, plus a history before time 0.
        let history = 86_400 * 3 * (lambda + 0.05) + (spec.deleted ? 50_000 : 0)
        let integral = history + lambda * t - lambda * amp / w * (cos(w * t + phase) - cos(phase))
        let rate = lambda * (1 + amp * sin(w * t + phase))
        let pktsPerConn = services[si].proto == .udp ? 2.0 : 14 + 10 * Self.unit(seed, key, 0x9C)
        let outFactor = services[si].proto == .udp ? 1.0 : 1.3
        let inSize = services[si].proto == .udp ? 72.0 : 95.0, outSize = services[si].proto == .udp ? 180.0 : 1_150.0
        let conns = max(0, integral)
        let stats = TrafficStats(
            conns: UInt64(conns), inPackets: UInt64(conns * pktsPerConn), outPackets: UInt64(conns * pktsPerConn * outFactor),
            inBytes: UInt64(conns * pktsPerConn * inSize), outBytes: UInt64(conns * pktsPerConn * outFactor * outSize))
        // The kernel's estimator gives integers.
        let rates = TrafficRates(
            cps: rate.rounded(), inPPS: (rate * pktsPerConn).rounded(), outPPS: (rate * pktsPerConn * outFactor).rounded(),
            inBPS: (rate * pktsPerConn * inSize).rounded(), outBPS: (rate * pktsPerConn * outFactor * outSize).rounded())
        return (stats, rates)
    }

    func add(_ a: inout TrafficStats, _ b: TrafficStats) {
        a.conns += b.conns; a.inPackets += b.inPackets; a.outPackets += b.outPackets; a.inBytes += b.inBytes; a.outBytes += b.outBytes
    }

    func add(_ a: inout TrafficRates, _ b: TrafficRates) {
        a.cps += b.cps; a.inPPS += b.inPPS; a.outPPS += b.outPPS; a.inBPS += b.inBPS; a.outBPS += b.outBPS
    }

    /// A Debian director's /proc/sys/net/ipv4/vs, with the two settings that make the
    /// quiescent and deleted servers' problems visible left at their defaults.
    static let sysctls: [Sysctl] = [
        ("am_droprate", "10"), ("amemthresh", "1024"), ("backup_only", "0"), ("cache_bypass", "0"),
        ("conn_reuse_mode", "1"), ("conntrack", "0"), ("drop_entry", "0"), ("drop_packet", "0"),
        ("expire_nodest_conn", "0"), ("expire_quiescent_template", "0"), ("ignore_tunneled", "0"),
        ("nat_icmp_send", "0"), ("pmtu_disc", "1"), ("run_estimation", "1"), ("schedule_icmp", "0"),
        ("secure_tcp", "0"), ("sloppy_sctp", "0"), ("sloppy_tcp", "0"), ("snat_reroute", "1"),
        ("sync_persist_mode", "0"), ("sync_ports", "1"), ("sync_qlen_max", "61004"), ("sync_refresh_period", "0"),
        ("sync_retries", "0"), ("sync_sock_size", "0"), ("sync_threshold", "3 50"), ("sync_version", "1"),
    ].map { Sysctl(name: $0.0, value: $0.1) }
}

extension ServiceKey {
    var isFwmark: Bool { if case .fwmark = self { true } else { false } }
}
