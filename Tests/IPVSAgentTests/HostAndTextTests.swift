import Foundation
import IPVSAgent
import IPVSDemo
import IPVSModel
import Testing

// Issue 22's SNMP details: ages on the source's clock, texts cut at a word, addresses as
// text beside the InetAddress columns, the host scalars.
@Suite struct HostAndTextTests {
    static func text(_ v: SNMPValue) -> String? {
        if case .octets(let b) = v { return String(decoding: b, as: UTF8.self) }
        return nil
    }

    @Test func aLongTextIsCutAtAWordWithAnEllipsis() throws {
        let words = (1...80).map { "word\($0)" }.joined(separator: " ")  // ~550 bytes
        let cut = try #require(Self.text(.text(words)))
        #expect(cut.utf8.count <= 255)
        #expect(cut.hasSuffix("..."))
        let kept = String(cut.dropLast(3))
        #expect(words.hasPrefix(kept))
        // The cut falls between words: the next character of the original is a space.
        let next = words[words.index(words.startIndex, offsetBy: kept.count)]
        #expect(next == " ")
        // Short texts are untouched; 255 bytes exactly are not cut.
        #expect(Self.text(.text("short text")) == "short text")
        let exact = String(repeating: "a", count: 255)
        #expect(Self.text(.text(exact)) == exact)
    }

    @Test func aCutNeverSplitsAUTF8Sequence() throws {
        // One long word of two-byte characters: no space to cut at, so it is cut at a
        // character, still with the mark.
        let s = String(repeating: "é", count: 200)
        let cut = try #require(Self.text(.text(s)))
        #expect(cut.utf8.count <= 255 && cut.hasSuffix("..."))
        #expect(cut.dropLast(3).allSatisfy { $0 == "é" })
    }

    @Test func demoAgesAreMeasuredOnTheDemosClock() throws {
        let source = DemoDirector(seed: 1)
        let s = source.snapshot(at: DemoDirector.warmTime)
        // The demo's clock stands at the snapshot (its epoch is months from wall time).
        let offset = s.takenAt.timeIntervalSinceNow
        let view = ViewBuilder(settings: ViewSettings()).build(s, analysis: nil, clockOffset: offset)
        let g = IPVSTopMIB.Source.group
        for n in [IPVSTopMIB.Source.age, IPVSTopMIB.Source.tableAge] {
            guard case .value(.gauge32(let ms)) = view.get([g, n, 0], now: Date().addingTimeInterval(2)) else {
                Issue.record("no age \(n)")
                continue
            }
            #expect(ms >= 1500 && ms < 5000, "age \(n): \(ms) ms")
        }
        // Without the offset it is the saturated figure the issue saw.
        let wall = ViewBuilder(settings: ViewSettings()).build(s, analysis: nil)
        #expect(wall.get([g, IPVSTopMIB.Source.age, 0]) == .value(.gauge32(UInt32.max)))
        // The one-shot view measures from the snapshot too.
        guard case .value(.gauge32(let ms)) = AgentViews.oneShot(s, settings: ViewSettings()).get([g, IPVSTopMIB.Source.age, 0]) else {
            Issue.record("no one-shot age")
            return
        }
        #expect(ms < 5000)
    }

    @Test func hostScalarsAndAddressTextColumns() throws {
        let s = DemoDirector(seed: 1).snapshot(at: DemoDirector.warmTime)
        let view = AgentViews.oneShot(s, settings: ViewSettings(top: 0))
        let g = IPVSTopMIB.Source.group
        #expect(view.get([g, IPVSTopMIB.Source.hostName, 0]) == .value(.string("demo-director")))
        #expect(view.get([g, IPVSTopMIB.Source.kernelRelease, 0]) == .value(.string(DemoDirector.host.kernelRelease!)))

        let rsTable = try #require(view.table(IPVSTopMIB.realServerTable.entry))
        let svcTable = try #require(view.table(IPVSTopMIB.serviceTable.entry))
        let rsCols = IPVSTopMIB.realServerTable.columns
        let svcKeys = Dictionary(uniqueKeysWithValues: svcTable.rows.map { ($0.index[0], $0.values[0].flatMap(Self.text)) })
        #expect(rsTable.rows.count == s.services.reduce(0) { $0 + $1.realServers.count })
        for row in rsTable.rows {
            func col(_ c: UInt32) -> String? { row.values[rsCols.firstIndex(of: c)!].flatMap(Self.text) }
            // Column 25 names the row's service as the service table's key does.
            #expect(col(25) == svcKeys[row.index[0]] ?? nil)
            // Column 26 is column 3's address as text.
            let key = try #require(col(24))
            let address = try #require(col(26))
            #expect(key == address + ":" + key.split(separator: ":").last! || key.hasPrefix("[" + address + "]:"))
        }
        let svcCols = IPVSTopMIB.serviceTable.columns
        for (row, svc) in zip(svcTable.rows.sorted { $0.index[0] < $1.index[0] }, s.services) {
            let textCol = row.values[svcCols.firstIndex(of: 30)!].flatMap(Self.text)
            if case .address(_, let a, _) = svc.key { #expect(textCol == a.description) } else { #expect(textCol == "") }
        }
    }
}
