// The connection-table reader: /proc/net/ip_vs_conn and ip_vs_conn_sync rows.
//
// Three checks on every input, each a trap when it fails:
//  1. every row on its own, copied into a buffer of its exact size (so AddressSanitizer sees
//     a read past the row, not just past the input), through the fixed-offset path and the
//     general path: where the fast path accepts a row, the general one must read the same
//     entry (and no persistence-engine data) from it;
//  2. the whole input through `consume`, as the reader streams it: its entries must be, in
//     order, what the row-by-row reading made (the fast path's, else the general path's);
//  3. the input cut at an arbitrary point, as a truncated read hands it over (the complete
//     lines, then the rest as `unterminated`, which is counted and never used): its entries
//     must be a prefix of the whole read's.
import IPVSModel
import IPVSReader

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)

    var expected: [ConnectionEntry] = []
    var start = 0
    while start < size {
        var end = start
        while end < size && input[end] != 0x0A { end += 1 }
        if end > start {
            let row = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: end - start)
            _ = row.initialize(from: input[start..<end])
            let r = FuzzEntryPoints.connectionRow(UnsafeBufferPointer(row))
            if let fast = r.fast {
                guard let general = r.general, general == fast, !r.generalAttachedPEData else {
                    fatalError("fast and general paths disagree on \(Array(row)): fast \(fast), general \(String(describing: r.general)), PE data \(r.generalAttachedPEData)")
                }
            }
            if let e = r.fast ?? r.general, end < size { expected.append(e) }
            row.deallocate()
        }
        start = end + 1
    }

    // consume() takes complete lines; a last line without a newline goes as `unterminated`.
    var lastNewline = size
    while lastNewline > 0 && input[lastNewline - 1] != 0x0A { lastNewline -= 1 }
    var whole = ConnectionTableParser(expectedEntries: size / 64)
    whole.consume(UnsafeBufferPointer(rebasing: input[0..<lastNewline]))
    if lastNewline < size {
        whole.consume(UnsafeBufferPointer(rebasing: input[lastNewline..<size]), unterminated: true)
    }
    precondition(whole.entries == expected, "consume() read \(whole.entries.count) entries, row by row \(expected.count)")
    precondition(whole.persistenceEngineData.keys.allSatisfy { $0 < whole.entries.count }, "PE data for no entry")

    // A read cut short at byte `cut` (taken from the input's first byte).
    if size > 1 {
        let cut = Int(data[0]) * size / 256
        var nl = cut
        while nl > 0 && input[nl - 1] != 0x0A { nl -= 1 }
        var part = ConnectionTableParser()
        part.consume(UnsafeBufferPointer(rebasing: input[0..<nl]))
        if nl < cut { part.consume(UnsafeBufferPointer(rebasing: input[nl..<cut]), unterminated: true) }
        precondition(part.entries[...] == whole.entries.prefix(part.entries.count), "a read cut short is not a prefix of the whole read")
    }
    return 0
}
