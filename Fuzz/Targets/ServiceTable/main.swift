// The service-table reader: /proc/net/ip_vs, with and without a known HZ.
import IPVSModel
import IPVSReader

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    for hz in [nil, 250] as [Int?] {
        let t = ServiceTableParser.parse(text, hz: hz)
        // What every face does with a service next: its name, its real servers' names.
        for s in t.services {
            _ = s.id
            for rs in s.realServers { _ = rs.id }
        }
        // Every line is a service, a real server, a header or counted: never more services
        // than lines.
        precondition(t.services.count <= text.utf8.count, "more services than bytes")
    }
    return 0
}
