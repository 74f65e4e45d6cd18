// The small /proc files: net/ip_vs_stats, net/ip_vs_stats_percpu, slabinfo and a sysctl's
// value. The first byte picks the file; the rest is its text.
import IPVSModel
import IPVSReader

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    switch data[0] % 4 {
    case 0:
        if let g = try? StatsParser.parse(text) {
            precondition(g.rates.cps >= 0 && g.rates.inBPS >= 0, "negative rate from hex")
        }
    case 1:
        if let g = try? StatsParser.parsePerCPU(text) {
            precondition(g.rates.cps >= 0, "negative rate from hex")
        }
    case 2:
        // The reader's call: an impossible line throws (a warning), a plausible one may be
        // multiplied into the table's memory.
        if let slab = try? SlabInfoParser.checked(text) {
            precondition((1...SlabInfoParser.maxObjectSize).contains(slab.objectSize), "object size \(slab.objectSize) passed")
        }
    default:
        // A sysctl: the reader keeps its words joined by one space; the analysis and the
        // subagent read it as an integer.
        let value = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        _ = Sysctl(name: "amemthresh", value: value).integerValue
    }
    return 0
}
