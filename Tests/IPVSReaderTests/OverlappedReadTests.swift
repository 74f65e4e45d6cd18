import Foundation
import IPVSModel
import IPVSTestSupport
import Testing
@testable import IPVSReader

/// The overlapped read (a reading thread, the lines parsed beside it) against its plain
/// reference, `ProcFile.streamLines`: the same bytes, the same lines, the same table.
@Suite struct OverlappedReadTests {
    /// What `consume` was handed: every call's bytes and mark, in order.
    typealias Calls = [(bytes: [UInt8], unterminated: Bool)]

    static func calls(_ read: (String, (UnsafeBufferPointer<UInt8>, Bool) -> Void) throws -> ReadCost, _ path: String) throws -> (Calls, ReadCost) {
        var out: Calls = []
        let cost = try read(path) { lines, u in out.append((Array(lines), u)) }
        return (out, cost)
    }

    /// The complete lines and the last unterminated piece, whatever the chunking.
    static func lines(_ c: Calls) -> (whole: [ArraySlice<UInt8>], rest: [UInt8]) {
        let terminated = c.filter { !$0.unterminated }.flatMap(\.bytes)
        return (terminated.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast().map { $0 }, c.last?.unterminated == true ? c.last!.bytes : [])
    }

    static func tableText(_ n: Int) -> String {
        var text = KernelText.connHeader
        for i in 0..<n {
            if i % 11 == 0 {
                text += KernelText.conn6("TCP", "2001:0db8:0000:0000:0000:0000:0000:\(String(i % 65536, radix: 16))", UInt16(1024 + i % 60000),
                                         "2001:0db8:0000:0000:0000:0000:0000:0001", 443, "2001:0db8:0000:0000:0000:0000:0001:0002", 443, "ESTABLISHED", 899)
            } else {
                text += KernelText.conn(i % 7 == 0 ? "UDP" : "TCP", 0xC0A8_0000 + UInt32(i % 300), UInt16(1024 + i % 60000),
                                        0x0A00_0001, 80, 0x0A00_0100 + UInt32(i % 5), 80, i % 3 == 0 ? "TIME_WAIT" : "ESTABLISHED", UInt64(i % 900))
            }
        }
        return text
    }

    @Test(arguments: [(7, 2), (64, 2), (1000, 3), (4096, 4), (256 << 10, 4)])
    func sameLinesAsThePlainRead(chunk: Int, depth: Int) throws {
        // Whole, cut inside its last line, and a line longer than a chunk in the middle.
        let text = Self.tableText(3000)
        let long = String(repeating: "x", count: 3 * chunk + 5) + "\n"
        for body in [text, String(text.dropLast(17)), KernelText.connHeader + long + text.split(separator: "\n").dropFirst().joined(separator: "\n") + "\n", ""] {
            let tree = try ProcTree(["net/ip_vs_conn": body])
            let path = tree.root + "/net/ip_vs_conn"
            let (plain, plainCost) = try Self.calls({ try ProcFile.streamLines($0, chunkSize: chunk, $1) }, path)
            let (over, overCost) = try Self.calls({ try ProcFile.streamLinesOverlapped($0, chunkSize: chunk, depth: depth, $1) }, path)
            // Every byte once, in order.
            #expect(over.flatMap(\.bytes) == Array(body.utf8))
            #expect(plain.flatMap(\.bytes) == Array(body.utf8))
            #expect(overCost.bytes == body.utf8.count && plainCost.bytes == body.utf8.count)
            #expect(overCost.readCalls >= 1 && overCost.cpuSeconds >= 0)
            // Complete lines are handed whole; a piece is marked only where no newline follows
            // within a chunk (a line no kernel writes) or at the end.
            let longest = body.split(separator: "\n").map(\.utf8.count).max() ?? 0
            if longest + 1 < chunk {
                let (a, b) = (Self.lines(plain), Self.lines(over))
                let same = a.whole.map(Array.init) == b.whole.map(Array.init) && a.rest == b.rest
                #expect(same, "chunk \(chunk): \(a.whole.count) and \(b.whole.count) lines")
            }
            for c in over where !c.unterminated { #expect(c.bytes.last == 0x0A) }
        }
    }

    @Test func sameTableAsThePlainRead() throws {
        let text = Self.tableText(20_000)
        let tree = try ProcTree(["net/ip_vs_conn": text])
        let path = tree.root + "/net/ip_vs_conn"
        var a = ConnectionTableParser(), b = ConnectionTableParser()
        _ = try ProcFile.streamLines(path, chunkSize: 4096) { a.consume($0, unterminated: $1) }
        _ = try ProcFile.streamLinesOverlapped(path, chunkSize: 4096) { b.consume($0, unterminated: $1) }
        #expect(a.entries.count == 20_000)
        #expect(a.entries == b.entries)
        #expect(a.skipped.total == 0 && b.skipped.total == 0)
    }

    @Test func refusesWhatThePlainReadRefuses() throws {
        let tree = try ProcTree(["big": String(repeating: "0123456789\n", count: 20_000)])
        #expect(throws: ProcReadError.self) { try ProcFile.streamLinesOverlapped(tree.root + "/big", chunkSize: 4096, limit: 100_000) { _, _ in } }
        #expect(throws: ProcReadError.self) { try ProcFile.streamLinesOverlapped(tree.root + "/missing") { _, _ in } }
        #expect(throws: ProcReadError.self) { try ProcFile.streamLinesOverlapped(tree.root) { _, _ in } }
        // Many reads in a row leave no thread or chunk behind (each read's ring is freed).
        for _ in 0..<200 { _ = try ProcFile.streamLinesOverlapped(tree.root + "/big", chunkSize: 1 << 16) { _, _ in } }
    }
}
