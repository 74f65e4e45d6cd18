import Foundation
import IPVSModel

extension Aggregates {
    /// The templates with their controlled connections, most first (then least time left,
    /// then client).
    mutating func buildTemplates(services: [VirtualService], entries: [ConnectionEntry], templateEntry: [Int32],
                                         templateDestination: [Int32], controlled: [Int]) {
        struct Order {
            /// (UInt32.max - controlled) << 32 | expires: one comparison for the usual case.
            var primary: UInt64
            var client: IPAddress
            var ordinal: Int32
        }
        var order: [Order] = []
        order.reserveCapacity(templateEntry.count)
        entries.withUnsafeBufferPointer { e in
            for (o, i) in templateEntry.enumerated() {
                order.append(Order(primary: UInt64(UInt32.max - UInt32(clamping: controlled[o])) << 32 | UInt64(e[Int(i)].expires),
                                   client: e[Int(i)].client, ordinal: Int32(o)))
            }
        }
        order.sort {
            if $0.primary != $1.primary { return $0.primary < $1.primary }
            if $0.client != $1.client { return $0.client < $1.client }
            return $0.ordinal < $1.ordinal
        }
        // Per destination, shared by its templates: the real server's name, the service and
        // its persistence timeout.
        let name: [String?] = destinations.map { d in
            guard let s = d.service, let r = d.realServer else { return nil }
            return services[s].realServers[r].id
        }
        let key: [ServiceKey?] = destinations.map { d in d.service.map { services[$0].key } }
        let timeout: [UInt32?] = destinations.map { d in d.service.flatMap { services[$0].persistence?.timeoutSeconds } }
        templates.reserveCapacity(order.count)
        entries.withUnsafeBufferPointer { entries in
            for x in order {
                let o = Int(x.ordinal)
                let index = Int(templateEntry[o])
                let e = entries[index]
                let d = Int(templateDestination[o])
                var past: Bool?
                // The kernel arms a template with the timeout and prints whole seconds left:
                // more than the timeout can only be its 60 s re-arm of a template past its time.
                if let t = timeout[d], controlled[o] > 0, e.expires > t { past = true }
                let summary = TemplateSummary(entryIndex: index, service: key[d],
                                              realServer: name[d] ?? e.destination.endpoint(port: e.destinationPort),
                                              controlledConns: controlled[o])
                templates.append(TemplateAggregate(summary: summary, destination: d, expires: e.expires, timeout: timeout[d], pastTimeout: past))
            }
        }
    }

}
