// The recording's header record, written with JSONEncoder since issue 19 (JSONSerialization
// needs the whole of Foundation): the same bytes as before, read back the same way.
import Foundation
import Testing
@testable import IPVSDemo

@Suite struct RecordingHeaderTests {
    static let cases: [(String, Double, Int)] = [
        ("demo seed 1", 1, 100_000), ("demo seed 1", 0.5, 0), ("replay /tmp/a b/x.rec", 0.1, 5),
        ("director /proc", 3600, Int.max), ("ünïcødé \u{1F600} \"quoted\" back\\slash", 0.25, -1),
        ("tab\tand\ncontrol\u{1}", 1e-3, 1), ("", 1.0 / 3, 7), ("x", 86_400, 100_000), ("x", 123.456, 42),
    ]

    @Test func sameBytesAsJSONSerialization() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for (source, interval, max) in Self.cases {
            let created = "2026-01-01T00:00:00Z"
            let old = try JSONSerialization.data(withJSONObject: [
                "created": created, "source": source, "interval": interval, "max_entries": max,
            ] as [String: Any], options: [.sortedKeys])
            let new = try encoder.encode(Recording.HeaderJSON(created: created, source: source, interval: interval, maxEntries: max))
            #expect(String(decoding: new, as: UTF8.self) == String(decoding: old, as: UTF8.self))
        }
    }

    /// Read as leniently as `JSONSerialization.jsonObject` + `as?` casts read it: a field
    /// missing or of another type is nil, the others still count.
    @Test func readsFieldByField() throws {
        let d = JSONDecoder()
        let h = try d.decode(Recording.HeaderJSON.self, from: Data(#"{"created":5,"interval":"x","max_entries":1.5,"source":"s"}"#.utf8))
        #expect(h.created == nil && h.interval == nil && h.maxEntries == nil && h.source == "s")
        let i = try d.decode(Recording.HeaderJSON.self, from: Data(#"{"interval":2,"max_entries":7}"#.utf8))
        #expect(i.interval == 2 && i.maxEntries == 7 && i.source == nil)
        #expect((try? d.decode(Recording.HeaderJSON.self, from: Data("[1]".utf8))) == nil)
    }
}
