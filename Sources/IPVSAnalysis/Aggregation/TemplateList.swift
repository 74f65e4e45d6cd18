import Foundation
import IPVSModel

extension Aggregates {
    /// The templates with their controlled connections, most first (then least time left,
    /// then client).
    mutating func buildTemplates(services: [VirtualService], entries: [ConnectionEntry], templateEntry: [Int32],
                                         templateDestination: [Int32], controlled: [Int]) {
        let order = Self.templateOrder(entries: entries, templateEntry: templateEntry, controlled: controlled)
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
            for o32 in order {
                let o = Int(o32)
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


    /// Template ordinals by controlled connections (most first), then time left, then
    /// client, then ordinal. With IPv4 clients only, two stable radix sorts (by client, then
    /// by controlled and time left) instead of a comparison sort of 10^5 records.
    static func templateOrder(entries: [ConnectionEntry], templateEntry: [Int32], controlled: [Int]) -> [Int32] {
        let m = templateEntry.count
        guard m > 0 else { return [] }
        @inline(__always)
        func primary(_ o: Int, _ e: UnsafeBufferPointer<ConnectionEntry>) -> UInt64 {
            UInt64(UInt32.max - UInt32(clamping: controlled[o])) << 32 | UInt64(e[Int(templateEntry[o])].expires)
        }
        return entries.withUnsafeBufferPointer { e in
            guard templateEntry.allSatisfy({ e[Int($0)].client.isIPv4 }) else {
                struct Order {
                    var primary: UInt64
                    var client: IPAddress
                    var ordinal: Int32
                }
                var order = (0..<m).map { Order(primary: primary($0, e), client: e[Int(templateEntry[$0])].client, ordinal: Int32($0)) }
                order.sort {
                    if $0.primary != $1.primary { return $0.primary < $1.primary }
                    if $0.client != $1.client { return $0.client < $1.client }
                    return $0.ordinal < $1.ordinal
                }
                return order.map(\.ordinal)
            }
            let keys = UnsafeMutablePointer<UInt64>.allocate(capacity: m), keyScratch = UnsafeMutablePointer<UInt64>.allocate(capacity: m)
            let ords = UnsafeMutablePointer<Int32>.allocate(capacity: m), ordScratch = UnsafeMutablePointer<Int32>.allocate(capacity: m)
            defer {
                keys.deallocate()
                keyScratch.deallocate()
                ords.deallocate()
                ordScratch.deallocate()
            }
            for o in 0..<m {
                keys[o] = UInt64(e[Int(templateEntry[o])].client.ipv4Value) << 32
                ords[o] = Int32(o)
            }
            // Stable: equal clients keep the ordinal order, then equal primaries the client order.
            let byClient = RadixSort.sort(keys, scratch: keyScratch, payload: ords, payloadScratch: ordScratch, count: m, lowestBit: 32)
            let (k1, p1) = (byClient.keys, byClient.payload!)
            for j in 0..<m { k1[j] = primary(Int(p1[j]), e) }
            let (k2, p2) = k1 == keys ? (keyScratch, ordScratch) : (keys, ords)
            let result = RadixSort.sort(k1, scratch: k2, payload: p1, payloadScratch: p2, count: m, lowestBit: 0)
            return Array(UnsafeBufferPointer(start: result.payload!, count: m))
        }
    }
}
