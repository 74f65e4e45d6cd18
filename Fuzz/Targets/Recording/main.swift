// The recording reader: a whole `ipvstop record` file, as `--replay FILE` reads it.
import Foundation
import IPVSDemo
import IPVSModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let c = try? Recording.read(data: bytes, name: "fuzz") else { return 0 }
    precondition(!c.frames.isEmpty, "a recording read with no frame")
    precondition(c.frames.count == c.truncatedEntries.count)
    precondition(c.trailingBytes >= 0 && c.trailingBytes <= size)
    // What a replay touches of each frame: its services and real servers, its table.
    for f in c.frames {
        for s in f.services {
            _ = s.id
            for rs in s.realServers { _ = rs.id }
        }
        if let t = f.connections, let ch = f.connectionChanges {
            precondition(ch.newEntryIndices.allSatisfy { $0 >= 0 && $0 < t.entries.count }, "a new-entry index outside its table")
        }
    }
    return 0
}
