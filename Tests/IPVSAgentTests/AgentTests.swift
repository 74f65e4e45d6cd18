import Foundation
import IPVSAgent
import IPVSDemo
import IPVSModel
import Testing

@Suite struct IndexAllocatorTests {
    @Test func keysKeepTheirIndexWhilePresent() {
        var a = IndexAllocator<String>()
        a.update(["a", "b", "c"])
        #expect(a.index(of: "a") == 1 && a.index(of: "b") == 2 && a.index(of: "c") == 3)
        // b goes, d comes: a and c keep theirs, d gets a fresh one (not b's).
        a.update(["c", "d", "a"])
        #expect(a.index(of: "a") == 1)
        #expect(a.index(of: "c") == 3)
        #expect(a.index(of: "d") == 4)
        #expect(a.index(of: "b") == nil)
        // b comes back: a new identity, a new index.
        a.update(["a", "b", "c", "d"])
        #expect(a.index(of: "b") == 5)
    }

    @Test func freedIndexesAreReusedOnlyAfterWrapping() {
        var a = IndexAllocator<Int>(maximum: 4)
        a.update([10, 11, 12])            // 1, 2, 3
        a.update([12])                    // 1 and 2 freed
        a.update([12, 13])                // 13 gets 4, the next never used
        #expect(a.index(of: 13) == 4)
        a.update([12, 13, 14, 15])        // wraps: 1, 2
        #expect(a.index(of: 14) == 1)
        #expect(a.index(of: 15) == 2)
        #expect(a.index(of: 12) == 3)
        a.update([12, 13, 14, 15, 16])    // full: 16 gets none
        #expect(a.index(of: 16) == nil)
        #expect(Set(a.indexes.values).count == a.indexes.count)
    }

    @Test func duplicatesInOneUpdateGetOneIndex() {
        var a = IndexAllocator<String>()
        a.update(["x", "x", "y"])
        #expect(a.indexes.count == 2)
        #expect(a.index(of: "x") == 1 && a.index(of: "y") == 2)
    }
}

@Suite struct OIDEncodingTests {
    @Test func ipv4AddressIndex() {
        let a = IPAddress("192.168.1.2")!
        #expect(IndexEncoding.inetAddress(a) == [1, 4, 192, 168, 1, 2])
        let (back, used) = IndexEncoding.decodeInetAddress(IndexEncoding.inetAddress(a)[...])!
        #expect(back == a && used == 6)
    }

    @Test func ipv6AddressIndex() {
        let a = IPAddress("fd00:c1::1")!
        let arcs = IndexEncoding.inetAddress(a)
        #expect(arcs.count == 18)
        #expect(Array(arcs[0..<4]) == [2, 16, 0xFD, 0x00])
        #expect(Array(arcs[4..<6]) == [0x00, 0xC1])
        #expect(arcs.last == 1)
        #expect(IndexEncoding.decodeInetAddress(arcs[...])?.0 == a)
        // Not an address: wrong length for the type, or a byte over 255.
        #expect(IndexEncoding.decodeInetAddress([1, 16, 1, 2, 3, 4][...]) == nil)
        #expect(IndexEncoding.decodeInetAddress([1, 4, 300, 2, 3, 4][...]) == nil)
    }

    @Test func inetAddressValues() {
        #expect(InetAddress.type(IPAddress("10.0.0.1")!) == 1)
        #expect(InetAddress.bytes(IPAddress("10.0.0.1")!) == [10, 0, 0, 1])
        #expect(InetAddress.type(IPAddress("::1")!) == 2)
        #expect(InetAddress.bytes(IPAddress("::1")!) == [UInt8](repeating: 0, count: 15) + [1])
    }

    @Test func stringIndexes() {
        #expect(IndexEncoding.string("ab", implied: false) == [2, 97, 98])
        #expect(IndexEncoding.string("ab", implied: true) == [97, 98])
    }

    @Test func ordering() {
        #expect(OID([1, 3, 6]) < OID([1, 3, 6, 1]))
        #expect(OID([1, 3, 6, 1]) < OID([1, 3, 7]))
        #expect(OID([1, 2, 300]) > OID([1, 2, 4, 5]))
        #expect(OID("1.3.6.1.4.1.32473.1") == IPVSTopMIB.defaultBase)
        #expect(OID(".1.3.6") == OID([1, 3, 6]))
        #expect(OID("1.3.x") == nil)
        #expect(OID("") == nil)
        // The client table's rows sort the way SNMP orders them: IPv4 (type 1) first, by
        // length then bytes.
        let v4 = IndexEncoding.inetAddress(IPAddress("255.255.255.255")!)
        let v6 = IndexEncoding.inetAddress(IPAddress("::")!)
        #expect(OID(v4) < OID(v6))
    }
}

@Suite struct ValueMappingTests {
    @Test func forwardMethods() {
        #expect(ValueMapping.forward(.masq) == 1)
        #expect(ValueMapping.forward(.local) == 2)
        #expect(ValueMapping.forward(.tunnel) == 3)
        #expect(ValueMapping.forward(.route) == 4)
        #expect(ValueMapping.forward(.bypass) == 5)
    }

    @Test func findingKindsAndSeverities() {
        let kinds = ["rogue_client", "imbalance", "quiescent_fed", "dead_destination", "template_overstay", "table_pressure", "sync", "service_down"]
        #expect(kinds.map { ValueMapping.kindCode($0) } == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(ValueMapping.kindCode("nonsense") == nil)
        #expect(["info", "warning", "critical"].map { ValueMapping.severityCode($0) } == [1, 2, 3])
    }

    @Test func serviceFlagsAsBits() {
        // persistent(0) is the top bit of the first octet; ops(2) the third.
        #expect(ValueMapping.serviceFlags([.persistent]) == .octets([0x80]))
        #expect(ValueMapping.serviceFlags([.persistent, .hashed, .onePacket]) == .octets([0xE0]))
        #expect(ValueMapping.serviceFlags([.sched1, .sched2]) == .octets([0x18]))
        #expect(ValueMapping.serviceFlags([]) == .octets([0x00]))
    }

    @Test func prefixLengths() {
        #expect(ValueMapping.prefixLength(.ipv4(0xFFFF_FF00)) == 24)
        #expect(ValueMapping.prefixLength(.ipv4(0xFFFF_FFFF)) == 32)
        #expect(ValueMapping.prefixLength(.ipv4(0)) == 0)
        #expect(ValueMapping.prefixLength(.ipv4(0xFF00_FF00)) == nil)
        #expect(ValueMapping.prefixLength(.prefix(64)) == 64)
    }

    @Test func sharesAndGauges() {
        #expect(ValueMapping.perMille(1, of: 3) == 333)
        #expect(ValueMapping.perMille(2, of: 3) == 667)
        #expect(ValueMapping.perMille(5, of: 0) == 0)
        #expect(ValueMapping.perMille(5, of: 5) == 1000)
        #expect(SNMPValue.gauge(Int64(5_000_000_000)) == .gauge32(UInt32.max))
        #expect(SNMPValue.gauge(-3) == .gauge32(0))
        #expect(SNMPValue.gauge64(1616.6) == .counter64(1617))
        #expect(SNMPValue.gauge64(-1) == .counter64(0))
        #expect(SNMPValue.gauge64(.nan) == .counter64(0))
        #expect(ValueMapping.microseconds(0.0021) == .gauge32(2100))
    }

    @Test func textIsCutAtACharacterBoundary() {
        let s = String(repeating: "a", count: 254) + "é"   // é is 2 bytes: 256 in all
        guard case .octets(let b) = SNMPValue.text(s) else { Issue.record("not octets"); return }
        // No space to cut at: cut at a character, with the mark (issue 22).
        #expect(b.count == 255)
        #expect(String(decoding: b, as: UTF8.self) == String(repeating: "a", count: 252) + "...")
    }

    @Test func dateAndTime() {
        // 2026-01-01 00:00:01.5 UTC
        let d = Date(timeIntervalSince1970: 1_767_225_601.5)
        #expect(SNMPValue.dateAndTime(d) == .octets([0x07, 0xEA, 1, 1, 0, 0, 1, 5, UInt8(ascii: "+"), 0, 0]))
    }
}

@Suite struct MIBViewTests {
    let view = MIBView(regions: [
        .scalar([1, 1], .value(.string("1.2.1"))),
        .scalar([1, 2], nil),
        .scalar([1, 3], .value(.gauge32(7))),
        .table(MIBTable(entry: [4, 1], columns: [2, 3], rows: [
            MIBRow(index: [2], values: [.string("b"), nil]),
            MIBRow(index: [1], values: [.string("a"), .integer(10)]),
        ])),
        .table(MIBTable(entry: [5, 1], columns: [2], rows: [])),
    ])

    @Test func get() {
        #expect(view.get([1, 1, 0]) == .value(.string("1.2.1")))
        #expect(view.get([1, 2, 0]) == .noSuchInstance)
        #expect(view.get([1, 1, 1]) == .noSuchInstance)
        #expect(view.get([1, 9, 0]) == .noSuchObject)
        #expect(view.get([4, 1, 2, 2]) == .value(.string("b")))
        #expect(view.get([4, 1, 3, 2]) == .noSuchInstance)
        #expect(view.get([4, 1, 3, 3]) == .noSuchInstance)
        #expect(view.get([4, 1, 9, 1]) == .noSuchObject)
    }

    @Test func walkVisitsEveryValueOnceInOrder() {
        var seen: [OID] = []
        var at: [UInt32] = []
        while let (oid, _) = view.next(after: at) {
            seen.append(oid)
            at = oid.arcs
        }
        #expect(seen == [[1, 1, 0], [1, 3, 0], [4, 1, 2, 1], [4, 1, 2, 2], [4, 1, 3, 1]])
        #expect(seen == seen.sorted())
    }

    @Test func nextFromAnywhere() {
        #expect(view.next(after: [1, 2])?.0 == [1, 3, 0])
        #expect(view.next(after: [4])?.0 == [4, 1, 2, 1])
        #expect(view.next(after: [4, 1, 2, 1, 5])?.0 == [4, 1, 2, 2])
        #expect(view.next(after: [4, 1, 2, 2])?.0 == [4, 1, 3, 1])
        #expect(view.next(after: [4, 1, 3, 1]) == nil)
        #expect(view.next(after: [4, 1, 2, 1], inclusive: true)?.0 == [4, 1, 2, 1])
        #expect(view.next(after: [1, 1, 0], inclusive: true)?.0 == [1, 1, 0])
    }

    @Test func bigTablesWalkInLinearishTime() {
        let n = 50_000
        let rows = (0..<n).map { i in
            MIBRow(index: IndexEncoding.inetAddress(IPAddress(ipv4: UInt32(0x0A00_0000 + i))), values: [.gauge32(UInt32(i))])
        }
        let v = MIBView(regions: [.table(MIBTable(entry: [7, 1], columns: [4], rows: rows.shuffled()))])
        let t0 = Date()
        var at: [UInt32] = [7]
        var count = 0
        while let (oid, _) = v.next(after: at) {
            at = oid.arcs
            count += 1
        }
        #expect(count == n)
        // n GETNEXTs at log n each: well under a second even in a debug build.
        #expect(Date().timeIntervalSince(t0) < 5)
    }
}

@Suite struct ViewBuilderTests {
    let demo = DemoDirector()

    @Test func demoSnapshotFillsEveryTable() {
        let s = demo.snapshot(at: DemoDirector.warmTime)
        let view = AgentViews.oneShot(s, settings: ViewSettings(top: 20, interval: 1))
        let services = view.table(IPVSTopMIB.serviceTable.entry)!
        #expect(services.rows.count == s.services.count)
        let rs = view.table(IPVSTopMIB.realServerTable.entry)!
        #expect(rs.rows.count == s.services.reduce(0) { $0 + $1.realServers.count })
        #expect(view.table(IPVSTopMIB.clientTable.entry)!.rows.count == 20)
        #expect(view.table(IPVSTopMIB.templateTable.entry)!.rows.count == min(20, s.connections!.counts.templates))
        #expect(!view.table(IPVSTopMIB.findingTable.entry)!.rows.isEmpty)
        #expect(view.get([1, IPVSTopMIB.Global.services, 0]) == .value(.gauge32(UInt32(s.services.count))))
    }

    @Test func countersAreTheSnapshotsExactly() {
        let s = demo.snapshot(at: DemoDirector.warmTime)
        let view = AgentViews.oneShot(s, settings: ViewSettings())
        let t = IPVSTopMIB.realServerTable
        for (si, svc) in s.services.enumerated() {
            for (ri, r) in svc.realServers.enumerated() {
                let idx: [UInt32] = [UInt32(si + 1), UInt32(ri + 1)]
                func col(_ c: UInt32) -> GetResult { view.get(t.entry.arcs + [c] + idx) }
                #expect(col(6) == .value(.integer(r.weight)))
                #expect(col(7) == .value(.gauge32(r.activeConns)))
                if let st = r.stats {
                    #expect(col(12) == .value(.counter64(st.conns)))
                    #expect(col(15) == .value(.counter64(st.inBytes)))
                    #expect(col(16) == .value(.counter64(st.outBytes)))
                } else {
                    #expect(col(12) == .noSuchInstance)
                }
                if let p = r.persistentConns { #expect(col(9) == .value(.gauge32(p))) }
                #expect(col(24) == .value(.string(r.id)))
            }
        }
    }

    @Test func indexesSurviveServicesComingAndGoing() {
        let builder = ViewBuilder(settings: ViewSettings())
        var s = demo.snapshot(at: DemoDirector.warmTime)
        _ = builder.build(s, analysis: nil)
        let keys = s.services.map(\.key)
        let before = keys.map { builder.serviceIndex($0)! }
        // The first service goes; its second real server too.
        let gone = s.services.removeFirst()
        let rsGone = s.services[0].realServers.remove(at: 0)
        let kept = s.services[0].realServers.map { RealServerKey(address: $0.address, port: $0.port) }
        let rsBefore = kept.map { builder.realServerIndex(s.services[0].key, $0)! }
        _ = builder.build(s, analysis: nil)
        #expect(builder.serviceIndex(gone.key) == nil)
        #expect(s.services.map { builder.serviceIndex($0.key)! } == Array(before.dropFirst()))
        #expect(builder.realServerIndex(s.services[0].key, RealServerKey(address: rsGone.address, port: rsGone.port)) == nil)
        #expect(kept.map { builder.realServerIndex(s.services[0].key, $0)! } == rsBefore)
        // It comes back: a new index, past every one given so far.
        s.services.append(gone)
        _ = builder.build(s, analysis: nil)
        #expect(builder.serviceIndex(gone.key)! > before.max()!)
    }
}

/// Issue 25: values from damaged input map to SNMP without trapping.
@Test func outsideValuesSaturateInTheMIB() {
    #expect(ValueMapping.microseconds(.nan) == .gauge32(0))
    #expect(ValueMapping.microseconds(.infinity) == .gauge32(UInt32.max))
    #expect(ValueMapping.microseconds(1e300) == .gauge32(UInt32.max))
    #expect(ValueMapping.microseconds(-1) == .gauge32(0))
    #expect(ValueMapping.microseconds(0.5) == .gauge32(500_000))
    #expect(ValueMapping.perMille(Int64.max, of: Int64.max) == 1000)
    #expect(ValueMapping.perMille(Int64.max / 2, of: Int64.max) == 500)
    let r = ValueMapping.rates(TrafficRates(cps: .nan, inPPS: 1e300, outPPS: -3, inBPS: 2, outBPS: 0))
    #expect(r[0] == nil)
    #expect(r[1] == .counter64(UInt64.max))
    #expect(r[2] == .counter64(0))
}
