/// A persistence template and the connections that hang from it.
public struct TemplateSummary: Hashable, Sendable {
    /// Index of the template in `ConnectionTable.entries`.
    public var entryIndex: Int
    /// The service it belongs to; nil when no current service matches (deleted).
    public var service: ServiceKey?
    /// The real server's identity (`10.0.0.2:80`); for a port-zero template whose real
    /// server is gone, the address with the template's port.
    public var realServer: String
    /// Non-template entries of the same service, real server and masked client.
    public var controlledConns: Int
}

extension Snapshot {
    /// Every persistence template with the connections it controls, most connections
    /// first (then least time left, then client).
    ///
    /// The kernel does not print which template controls a connection, so it is derived
    /// the way the kernel matches them: same service, same real server, and the client
    /// masked with the service's persistence netmask. A connection through a fwmark service
    /// carries no mark in /proc; it is matched to a fwmark template only when its own
    /// address and port belong to no address service.
    public func templateSummaries() -> [TemplateSummary] {
        guard let table = connections else { return [] }
        let entries = table.entries

        var byAddress: [ServiceKey: Int] = [:]
        var fwmarkIndices: [Int] = []
        for (i, s) in services.enumerated() {
            switch s.key {
            case .address: byAddress[s.key] = i
            case .fwmark: fwmarkIndices.append(i)
            }
        }

        struct Key: Hashable {
            var service: Int
            var client: IPAddress
            var destination: IPAddress
            var port: UInt16
        }
        var templateAt: [Key: Int] = [:]
        var summaries: [TemplateSummary] = []
        for (i, e) in entries.enumerated() where e.isTemplate {
            var svcIndex: Int?
            if let mark = e.fwmark {
                svcIndex = fwmarkIndices.first { services[$0].key == .fwmark(mark, e.client.family) }
            } else {
                svcIndex = byAddress[.address(e.proto, e.virtual, e.virtualPort)] ?? byAddress[.address(e.proto, e.virtual, 0)]
            }
            var rsID = e.destination.endpoint(port: e.destinationPort)
            if let s = svcIndex {
                let rs = services[s].realServers.first {
                    $0.address == e.destination && (e.destinationPort == 0 || $0.port == e.destinationPort)
                }
                if let rs { rsID = rs.id }
                templateAt[Key(service: s, client: e.client, destination: e.destination, port: e.destinationPort)] = summaries.count
            }
            summaries.append(TemplateSummary(
                entryIndex: i, service: svcIndex.map { services[$0].key }, realServer: rsID, controlledConns: 0))
        }
        guard !templateAt.isEmpty else { return summaries }

        func lookup(_ s: Int, _ e: ConnectionEntry) -> Int? {
            guard let p = services[s].persistence else { return nil }
            let client = p.netmask.apply(to: e.client)
            return templateAt[Key(service: s, client: client, destination: e.destination, port: e.destinationPort)]
                ?? templateAt[Key(service: s, client: client, destination: e.destination, port: 0)]
        }
        for e in entries where !e.isTemplate {
            var hit: Int?
            if let s = byAddress[.address(e.proto, e.virtual, e.virtualPort)] {
                hit = lookup(s, e)
            } else if let s = byAddress[.address(e.proto, e.virtual, 0)] {
                hit = lookup(s, e)
            } else {
                for s in fwmarkIndices where services[s].key.family == e.client.family {
                    if let h = lookup(s, e) { hit = h; break }
                }
            }
            if let h = hit { summaries[h].controlledConns += 1 }
        }
        summaries.sort {
            if $0.controlledConns != $1.controlledConns { return $0.controlledConns > $1.controlledConns }
            let a = entries[$0.entryIndex], b = entries[$1.entryIndex]
            if a.expires != b.expires { return a.expires < b.expires }
            return a.client < b.client
        }
        return summaries
    }
}
