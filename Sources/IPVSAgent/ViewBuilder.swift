import FoundationEssentials
import IPVSAnalysis
import IPVSModel

/// The subagent's settings that show in the MIB.
public struct ViewSettings: Sendable, Hashable {
    /// Rows of the client and template tables at most; 0 for all.
    public var top: Int
    /// The services' poll interval, in seconds.
    public var interval: Double

    public init(top: Int = 100, interval: Double = 1) {
        self.top = top
        self.interval = interval
    }
}

/// A real server's identity within its service.
public struct RealServerKey: Hashable, Sendable {
    public var address: IPAddress
    public var port: UInt16
    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }
}

/// Turns snapshots (and their analysis) into `MIBView`s, keeping the row indexes of
/// services and real servers from one snapshot to the next.
///
/// Not thread-safe: one builder thread owns it; the views it returns are immutable.
public final class ViewBuilder {
    public let settings: ViewSettings
    var services = IndexAllocator<ServiceKey>()
    var realServers: [ServiceKey: IndexAllocator<RealServerKey>] = [:]

    public init(settings: ViewSettings) {
        self.settings = settings
    }

    /// The service's index in the last view built.
    public func serviceIndex(_ key: ServiceKey) -> UInt32? { services.index(of: key) }

    public func realServerIndex(_ service: ServiceKey, _ rs: RealServerKey) -> UInt32? {
        realServers[service]?.index(of: rs)
    }

    /// Updates the indexes for the snapshot's services and real servers, then builds the
    /// view. `analysis` gives the clients, templates and findings; without it those tables
    /// are empty. `clockOffset`: the source's clock minus wall time (0 for a live
    /// director), so that the snapshot's age is measured on the clock that took it.
    public func build(_ s: Snapshot, analysis: AnalysisResult?, clockOffset: Double = 0) -> MIBView {
        assignIndexes(s)
        var regions: [MIBRegion] = []
        regions += globalScalars(s, analysis)
        regions += sysctlScalars(s)
        regions += sourceScalars(s)
        regions += kernelScalars(s)
        regions.append(.table(serviceTable(s)))
        regions.append(.table(realServerTable(s)))
        regions.append(.table(clientTable(s, analysis?.aggregates)))
        regions.append(.table(templateTable(s, analysis?.aggregates)))
        regions.append(.table(findingTable(analysis?.findings ?? [])))
        regions.append(.table(sysctlTable(s)))
        return MIBView(regions: regions, clockOffset: clockOffset)
    }

    func assignIndexes(_ s: Snapshot) {
        services.update(s.services.map(\.key))
        var next: [ServiceKey: IndexAllocator<RealServerKey>] = [:]
        for svc in s.services {
            var a = realServers[svc.key] ?? IndexAllocator<RealServerKey>()
            a.update(svc.realServers.map { RealServerKey(address: $0.address, port: $0.port) })
            next[svc.key] = a
        }
        realServers = next
    }

    // MARK: - Scalars

    static func scalar(_ group: UInt32, _ n: UInt32, _ v: SNMPValue?) -> MIBRegion {
        .scalar([group, n], v.map { .value($0) })
    }

    func globalScalars(_ s: Snapshot, _ analysis: AnalysisResult?) -> [MIBRegion] {
        typealias G = IPVSTopMIB.Global
        let g = G.group
        var out: [MIBRegion] = [
            Self.scalar(g, G.version, s.info.map { .text($0.version) }),
            Self.scalar(g, G.tableSize, s.info.map { .unsigned($0.tableSize) }),
            Self.scalar(g, G.services, .gauge(s.services.count)),
            Self.scalar(g, G.realServers, .gauge(s.realServerCount)),
            Self.scalar(g, G.connections, s.connections.map { .gauge($0.counts.connections) }),
            Self.scalar(g, G.templates, s.connections.map { .gauge($0.counts.templates) }),
            Self.scalar(g, G.entryBytes, s.slab.map { .unsigned($0.objectSize) }),
            Self.scalar(g, G.entryMemory, s.connectionMemoryBytes.map { .counter64(UInt64(max(0, $0))) }),
            Self.scalar(g, G.timeoutTCP, s.timeouts.map { .unsigned($0.tcp) }),
            Self.scalar(g, G.timeoutTCPFin, s.timeouts.map { .unsigned($0.tcpFin) }),
            Self.scalar(g, G.timeoutUDP, s.timeouts.map { .unsigned($0.udp) }),
            Self.scalar(g, G.findings, analysis.map { .gauge($0.findings.count) }),
        ]
        let stats = ValueMapping.stats(s.global?.totals), rates = ValueMapping.rates(s.global?.rates)
        for i in 0..<5 {
            out.append(Self.scalar(g, G.statsFirst + UInt32(i), stats[i]))
            out.append(Self.scalar(g, G.ratesFirst + UInt32(i), rates[i]))
        }
        return out
    }

    func sysctlScalars(_ s: Snapshot) -> [MIBRegion] {
        IPVSTopMIB.Sysctls.names.enumerated().map { i, name in
            let v = s.sysctl(name)?.integerValue.flatMap { Int32(exactly: $0) }
            return Self.scalar(IPVSTopMIB.Sysctls.group, UInt32(i + 1), v.map { .integer($0) })
        }
    }

    func sourceScalars(_ s: Snapshot) -> [MIBRegion] {
        typealias S = IPVSTopMIB.Source
        let g = S.group
        var wall = s.source.files.reduce(0) { $0 + $1.cost.seconds }
        var cpu = s.source.files.reduce(0) { $0 + $1.cost.cpuSeconds }
        if case .used(_, let c) = s.source.netlink {
            wall += c.seconds
            cpu += c.cpuSeconds
        }
        let t = s.connections
        return [
            Self.scalar(g, S.takenAt, .dateAndTime(s.takenAt)),
            .scalar([g, S.age], .millisecondsSince(s.takenAt)),
            Self.scalar(g, S.pollWallTime, ValueMapping.microseconds(wall)),
            Self.scalar(g, S.pollCPUTime, ValueMapping.microseconds(cpu)),
            Self.scalar(g, S.tableReadAt, t.map { .dateAndTime($0.readAt) }),
            .scalar([g, S.tableAge], t.map { .millisecondsSince($0.readAt) }),
            Self.scalar(g, S.tableWallTime, t.map { ValueMapping.microseconds($0.cost.seconds) }),
            Self.scalar(g, S.tableCPUTime, t.map { ValueMapping.microseconds($0.cost.cpuSeconds) }),
            Self.scalar(g, S.tableBytes, t.map { .counter64(UInt64(max(0, $0.cost.bytes))) }),
            Self.scalar(g, S.tableReadCalls, t.map { .gauge($0.cost.readCalls) }),
            Self.scalar(g, S.netlinkUsed, .truth(s.source.netlink.isUsed)),
            Self.scalar(g, S.procRoot, .text(s.source.procRoot)),
            Self.scalar(g, S.warnings, .gauge(s.source.warnings.count)),
            Self.scalar(g, S.pollInterval, .unsigned(Int64((settings.interval * 1000).rounded()))),
            Self.scalar(g, S.topN, .unsigned(settings.top)),
            Self.scalar(g, S.hostName, s.host?.hostname.map { .text($0) }),
            Self.scalar(g, S.kernelRelease, s.host?.kernelRelease.map { .text($0) }),
        ]
    }

    /// ipvsKernel: ip_vs_status's figures (absent where the kernel or the user cannot give
    /// them), the table read's completeness and its pacing.
    func kernelScalars(_ s: Snapshot) -> [MIBRegion] {
        typealias K = IPVSTopMIB.Kernel
        let g = K.group
        let st = s.kernelStatus.status
        let state: Int32 = switch s.kernelStatus { case .read: 1; case .unavailable: 2; case .absent: 3 }
        let c = s.connections?.completeness
        return [
            Self.scalar(g, K.statusState, .integer(state)),
            Self.scalar(g, K.conns, st?.conns.map { .gauge($0) }),
            Self.scalar(g, K.connBuckets, st?.connTable.map { .unsigned($0.buckets) }),
            Self.scalar(g, K.connBits, st?.connTable.map { .unsigned($0.bits) }),
            Self.scalar(g, K.connLoadFactor, st?.connTable.map { .integer(Int32(clamping: $0.loadFactor)) }),
            Self.scalar(g, K.connEmptyBuckets, st?.connTable?.emptyBuckets.map { .unsigned($0) }),
            Self.scalar(g, K.serviceBuckets, st?.serviceTable.map { .unsigned($0.buckets) }),
            Self.scalar(g, K.serviceLoadFactor, st?.serviceTable.map { .integer(Int32(clamping: $0.loadFactor)) }),
            Self.scalar(g, K.statsThreads, st?.statsThreadSlots.map { .unsigned($0) }),
            Self.scalar(g, K.statsThreadsMax, st?.statsThreadSlotsMax.map { .unsigned($0) }),
            Self.scalar(g, K.tableCompleteness, c.map { .integer($0.verdict == .whole ? 1 : $0.verdict == .partial ? 2 : 3) }),
            Self.scalar(g, K.tableEntriesRead, c.map { .gauge($0.entriesRead) }),
            Self.scalar(g, K.tableExpected, c?.expected.map { .gauge($0) }),
            Self.scalar(g, K.tablePacing, s.tablePacing.map { .integer($0.mode == .everyInterval ? 1 : 2) }),
            Self.scalar(g, K.tableReadDelay, s.tablePacing.map { .unsigned(Int64(($0.delay * 1000).rounded())) }),
        ]
    }

    // MARK: - Tables

    /// Collects a row's values by column number.
    struct RowValues {
        let first: UInt32
        var values: [SNMPValue?]
        init(_ layout: IPVSTopMIB.TableLayout) {
            first = layout.firstColumn
            values = [SNMPValue?](repeating: nil, count: Int(layout.lastColumn - layout.firstColumn + 1))
        }
        subscript(_ column: UInt32) -> SNMPValue? {
            get { values[Int(column - first)] }
            set { values[Int(column - first)] = newValue }
        }
    }

    func serviceTable(_ s: Snapshot) -> MIBTable {
        let layout = IPVSTopMIB.serviceTable
        var rows: [MIBRow] = []
        rows.reserveCapacity(s.services.count)
        for svc in s.services {
            guard let idx = services.index(of: svc.key) else { continue }
            var v = RowValues(layout)
            v[2] = .text(svc.id)
            switch svc.key {
            case .address(let proto, let addr, let port):
                v[3] = .integer(1)
                v[5] = .integer(Int32(proto.rawValue))
                v[6] = .integer(InetAddress.type(addr))
                v[7] = .octets(InetAddress.bytes(addr))
                v[8] = .unsigned32(UInt32(port))
                v[9] = .unsigned32(0)
                v[30] = .text(addr.description)
            case .fwmark(let mark, _):
                v[3] = .integer(2)
                v[6] = .integer(0)
                v[7] = .octets([])
                v[8] = .unsigned32(0)
                v[9] = .unsigned32(mark)
                v[30] = .text("")
            }
            v[4] = .integer(svc.key.family == .ipv4 ? 1 : 2)
            v[10] = .text(svc.scheduler)
            v[11] = ValueMapping.serviceFlags(svc.flags)
            if let p = svc.persistence {
                v[12] = p.timeoutSeconds.map { .unsigned32($0) }
                v[13] = ValueMapping.prefixLength(p.netmask).map { .unsigned32(UInt32($0)) }
            }
            v[14] = svc.persistenceEngine.map { .text($0) }
            v[15] = .gauge(svc.realServers.count)
            v[16] = .gauge(svc.totalWeight)
            v[17] = .gauge(Int64(svc.activeConns))
            v[18] = .gauge(Int64(svc.inactiveConns))
            v[19] = svc.persistentConns.map { .gauge($0) }
            let stats = ValueMapping.stats(svc.stats), rates = ValueMapping.rates(svc.rates)
            for i in 0..<5 {
                v[20 + UInt32(i)] = stats[i]
                v[25 + UInt32(i)] = rates[i]
            }
            rows.append(MIBRow(index: [idx], values: v.values))
        }
        return MIBTable(entry: layout.entry, columns: layout.columns, rows: rows)
    }

    func realServerTable(_ s: Snapshot) -> MIBTable {
        let layout = IPVSTopMIB.realServerTable
        var rows: [MIBRow] = []
        for svc in s.services {
            guard let sIdx = services.index(of: svc.key), let alloc = realServers[svc.key] else { continue }
            let conns = Int64(svc.activeConns + svc.inactiveConns)
            let weight = svc.totalWeight
            for rs in svc.realServers {
                guard let rIdx = alloc.index(of: RealServerKey(address: rs.address, port: rs.port)) else { continue }
                var v = RowValues(layout)
                v[2] = .integer(InetAddress.type(rs.address))
                v[3] = .octets(InetAddress.bytes(rs.address))
                v[4] = .unsigned32(UInt32(rs.port))
                v[5] = .integer(ValueMapping.forward(rs.forward))
                v[6] = .integer(rs.weight)
                v[7] = .gauge(rs.activeConns)
                v[8] = .gauge(rs.inactiveConns)
                v[9] = rs.persistentConns.map { .gauge($0) }
                v[10] = rs.upperThreshold.map { .unsigned32($0) }
                v[11] = rs.lowerThreshold.map { .unsigned32($0) }
                let stats = ValueMapping.stats(rs.stats), rates = ValueMapping.rates(rs.rates)
                for i in 0..<5 {
                    v[12 + UInt32(i)] = stats[i]
                    v[17 + UInt32(i)] = rates[i]
                }
                v[22] = .unsigned32(ValueMapping.perMille(Int64(rs.activeConns) + Int64(rs.inactiveConns), of: conns))
                v[23] = .unsigned32(ValueMapping.perMille(Int64(max(0, rs.weight)), of: weight))
                v[24] = .text(rs.id)
                v[25] = .text(svc.id)
                v[26] = .text(rs.address.description)
                rows.append(MIBRow(index: [sIdx, rIdx], values: v.values))
            }
        }
        return MIBTable(entry: layout.entry, columns: layout.columns, rows: rows)
    }

    /// The service and real-server indexes of an aggregate's destination (0 when gone).
    func indexes(_ d: Destination, _ s: Snapshot) -> (UInt32, UInt32) {
        guard let si = d.service, si < s.services.count else { return (0, 0) }
        let svc = s.services[si]
        let sIdx = services.index(of: svc.key) ?? 0
        guard let ri = d.realServer, ri < svc.realServers.count else { return (sIdx, 0) }
        let rs = svc.realServers[ri]
        return (sIdx, realServerIndex(svc.key, RealServerKey(address: rs.address, port: rs.port)) ?? 0)
    }

    func clientTable(_ s: Snapshot, _ agg: Aggregates?) -> MIBTable {
        let layout = IPVSTopMIB.clientTable
        guard let agg, agg.hasTable else { return MIBTable(entry: layout.entry, columns: layout.columns, rows: []) }
        var rows: [MIBRow] = []
        for (rank, c) in agg.topClients(settings.top).enumerated() {
            var v = RowValues(layout)
            v[3] = .unsigned32(UInt32(rank + 1))
            v[4] = .gauge(c.connections.total)
            v[5] = .gauge(c.connections.active)
            v[6] = .gauge(c.connections.inactive)
            v[7] = .gauge(c.templates)
            let loads = agg.loads(of: c).filter { $0.connections.total > 0 }
            v[8] = .gauge(loads.count)
            if let top = loads.max(by: { a, b in
                a.connections.total != b.connections.total ? a.connections.total < b.connections.total : a.destination > b.destination
            }) {
                let (sIdx, rIdx) = indexes(agg.destinations[top.destination], s)
                v[9] = .unsigned32(sIdx)
                v[10] = .unsigned32(rIdx)
                v[11] = .gauge(top.connections.total)
            } else {
                v[9] = .unsigned32(0)
                v[10] = .unsigned32(0)
                v[11] = .gauge(0)
            }
            v[12] = .text(c.address.description)
            rows.append(MIBRow(index: IndexEncoding.inetAddress(c.address), values: v.values))
        }
        return MIBTable(entry: layout.entry, columns: layout.columns, rows: rows)
    }

    func templateTable(_ s: Snapshot, _ agg: Aggregates?) -> MIBTable {
        let layout = IPVSTopMIB.templateTable
        guard let agg, let table = s.connections else {
            return MIBTable(entry: layout.entry, columns: layout.columns, rows: [])
        }
        let limit = settings.top > 0 ? settings.top : Int.max
        var rows: [MIBRow] = []
        rows.reserveCapacity(min(limit, agg.templates.count))
        var seen = Set<[UInt32]>()
        for t in agg.templates {
            if rows.count >= limit { break }
            let e = table.entries[t.summary.entryIndex]
            let d = agg.destinations[t.destination]
            var (sIdx, rIdx) = indexes(d, s)
            if let key = t.summary.service, let i = services.index(of: key), i != sIdx {
                // The model matched the template to a service the destination did not.
                sIdx = i
                rIdx = 0
            }
            let index: [UInt32] = [sIdx] + IndexEncoding.inetAddress(e.client)
            guard seen.insert(index).inserted else { continue }
            var v = RowValues(layout)
            v[4] = .unsigned32(UInt32(rows.count + 1))
            v[5] = .text(t.summary.service?.description
                ?? (e.fwmark.map { "fwmark:\($0)" } ?? ServiceKey.address(e.proto, e.virtual, e.virtualPort).description))
            v[6] = .unsigned32(rIdx)
            v[7] = .integer(InetAddress.type(e.destination))
            v[8] = .octets(InetAddress.bytes(e.destination))
            v[9] = .unsigned32(UInt32(e.destinationPort))
            v[10] = .unsigned32(e.expires)
            v[11] = .text(e.state.name)
            v[12] = .gauge(t.summary.controlledConns)
            v[13] = .text(e.client.description)
            v[14] = .text(e.destination.description)
            rows.append(MIBRow(index: index, values: v.values))
        }
        return MIBTable(entry: layout.entry, columns: layout.columns, rows: rows)
    }

    func findingTable(_ findings: [Finding]) -> MIBTable {
        let layout = IPVSTopMIB.findingTable
        let rows = findings.filter { $0.id > 0 }.map { f in
            MIBRow(index: [UInt32(truncatingIfNeeded: f.id)], values: ValueMapping.findingColumns(f))
        }
        return MIBTable(entry: layout.entry, columns: layout.columns, rows: rows)
    }

    func sysctlTable(_ s: Snapshot) -> MIBTable {
        let layout = IPVSTopMIB.sysctlTable
        let rows = s.sysctls.filter { !$0.name.isEmpty && $0.name.utf8.count <= 64 }.map {
            MIBRow(index: IndexEncoding.string($0.name, implied: true), values: [.text($0.value)])
        }
        return MIBTable(entry: layout.entry, columns: layout.columns, rows: rows)
    }
}

/// How the model's values become the MIB's.
public enum ValueMapping {
    /// IpvsForwardMethod.
    public static func forward(_ f: ForwardMethod) -> Int32 {
        switch f {
        case .masq: 1
        case .local: 2
        case .tunnel: 3
        case .route: 4
        case .bypass: 5
        }
    }

    /// IpvsKindOfFinding.
    public static func kind(_ k: FindingKind) -> Int32 {
        switch k {
        case .rogueClient: 1
        case .imbalance: 2
        case .quiescentFed: 3
        case .deadDestination: 4
        case .templateOverstay: 5
        case .tablePressure: 6
        case .sync: 7
        case .serviceDown: 8
        }
    }

    /// IpvsKindOfFinding by the kind's public name (`rogue_client`...).
    public static func kindCode(_ name: String) -> Int32? { FindingKind(rawValue: name).map(kind) }

    /// IpvsSeverity by name (`info`, `warning`, `critical`).
    public static func severityCode(_ name: String) -> Int32? {
        Severity.allCases.first { $0.description == name }.map(severity)
    }

    /// IpvsSeverity.
    public static func severity(_ s: Severity) -> Int32 {
        switch s {
        case .info: 1
        case .warning: 2
        case .critical: 3
        }
    }

    /// ipvsServiceFlags: the kernel's flag bits 0...5 are the BITS' positions.
    public static func serviceFlags(_ f: ServiceFlags) -> SNMPValue {
        .bits((0..<6).filter { f.rawValue & (1 << UInt32($0)) != 0 })
    }

    /// A persistence netmask as a prefix length; nil for a non-contiguous IPv4 mask.
    public static func prefixLength(_ m: PersistenceNetmask) -> Int? {
        switch m {
        case .prefix(let p): return p
        case .ipv4(let mask):
            let n = mask.leadingZeroBitCount == 0 ? (~mask).leadingZeroBitCount : 0
            let expected: UInt32 = n == 0 ? 0 : ~UInt32(0) << UInt32(32 - n)
            return mask == expected ? n : nil
        }
    }

    /// Thousandths of `total`, rounded; 0 when the total is 0.
    public static func perMille(_ part: Int64, of total: Int64) -> UInt32 {
        guard total > 0, part > 0 else { return 0 }
        // In Double past 2^53 (counts that large only come from damaged input): no trap.
        if part > Int64.max / 1000 { return UInt32(min(1000, (Double(part) * 1000 / Double(total)).rounded())) }
        return UInt32(min(1000, (part * 1000 + total / 2) / total))
    }

    /// Counters in the MIB's column order; nils when unknown.
    public static func stats(_ s: TrafficStats?) -> [SNMPValue?] {
        guard let s else { return [nil, nil, nil, nil, nil] }
        return [s.conns, s.inPackets, s.outPackets, s.inBytes, s.outBytes].map { .counter64($0) }
    }

    public static func rates(_ r: TrafficRates?) -> [SNMPValue?] {
        guard let r else { return [nil, nil, nil, nil, nil] }
        // A rate that is not a number (marked unavailable upstream) has no value, not 0.
        return [r.cps, r.inPPS, r.outPPS, r.inBPS, r.outBPS].map { $0.isNaN ? nil : .gauge64($0) }
    }

    /// Saturates: NaN and negative as 0, past 2^32-1 µs as the Gauge32's maximum.
    public static func microseconds(_ seconds: Double) -> SNMPValue {
        let us = seconds * 1_000_000
        guard us.isFinite else { return .gauge(us > 0 ? Int64(UInt32.max) : 0) }
        return .gauge(Int64(max(0, min(Double(UInt32.max), us.rounded()))))
    }

    /// A finding's columns 2...8 (kind, severity, subject, text, since, key, advice).
    public static func findingColumns(_ f: Finding) -> [SNMPValue?] {
        [.integer(kind(f.kind)), .integer(severity(f.severity)), .text(f.subject), .text(f.explanation),
         .dateAndTime(f.since), .text(f.key), .text(f.advice)]
    }
}

/// Views without a running agent: one snapshot, analysed once.
public enum AgentViews {
    /// The view the agent would serve for `snapshot` alone (findings from a one-shot
    /// analysis, fresh indexes).
    public static func oneShot(_ snapshot: Snapshot, settings: ViewSettings) -> MIBView {
        // The source's clock stands at the snapshot: its age counts from the view's making.
        ViewBuilder(settings: settings).build(snapshot, analysis: Analysis.analyze(snapshot), clockOffset: snapshot.takenAt.timeIntervalSinceNow)
    }
}
