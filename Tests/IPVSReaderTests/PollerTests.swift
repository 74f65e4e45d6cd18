import Foundation
import Synchronization
import IPVSTestSupport
import Testing
@testable import IPVSModel
@testable import IPVSReader

@Suite struct PollerTests {
    @Test func pacerKeepsTableReadsWithinTheirShareOfACore() {
        let p = ConnectionTablePacer(share: 0.05, minimumInterval: 1)
        #expect(p.delay(after: ReadCost(seconds: 0.01, cpuSeconds: 0.01, bytes: 0, readCalls: 1)) == 1)
        // A 0.5 s read may happen at most every 10 s at 5%.
        #expect(p.delay(after: ReadCost(seconds: 0.5, cpuSeconds: 0.4, bytes: 0, readCalls: 1)) == 10)
        #expect(ConnectionTablePacer(share: 0.5, minimumInterval: 0).delay(after: ReadCost(seconds: 2, cpuSeconds: 0, bytes: 0, readCalls: 1)) == 4)
    }

    @Test func theReaderOptionsSetThePollersShare() {
        let reader = SnapshotReader(options: ReaderOptions(procRoot: "/nonexistent", tableShare: 0.25))
        let poller = DirectorPoller(reader: reader, interval: 2)
        #expect(poller.pacer.share == 0.25)
        #expect(poller.pacer.minimumInterval == 2)
        // A 10 s read at 25%: the next no sooner than 40 s later.
        #expect(poller.pacer.delay(after: ReadCost(seconds: 10, cpuSeconds: 9, bytes: 0, readCalls: 1)) == 40)
        #expect(DirectorPoller(reader: SnapshotReader(), interval: 1).pacer.share == ConnectionTablePacer.defaultShare)
    }

    @Test func pollerTellsWhichEntriesAreNew() throws {
        let tree = try sampleTree()
        let poller = DirectorPoller(reader: SnapshotReader(options: ReaderOptions(procRoot: tree.root, hz: 250)), interval: 1)
        #expect(poller.latest() == nil)
        poller.pollServices()
        #expect(poller.latest()?.connections == nil)
        #expect(poller.latest()?.source.unavailable.contains("connections (not read yet)") == true)
        poller.pollConnections()
        let first = try #require(poller.latest())
        #expect(first.connections?.entries.count == 9)
        #expect(first.connectionChanges == nil)

        let old = try String(contentsOfFile: tree.root + "/net/ip_vs_conn", encoding: .utf8)
        let added = KernelText.conn("TCP", 0xC0A8_0709, 0x8009, 0x0A00_0001, 443, 0x0A00_0102, 443, "SYN_RECV", 30)
        try tree.write("net/ip_vs_conn", old + added)
        poller.pollConnections()
        let second = try #require(poller.latest())
        let changes = try #require(second.connectionChanges)
        #expect(changes.newEntryIndices == [9])
        #expect(second.connections!.entries[9].client.description == "192.168.7.9")
        #expect(poller.nextConnectionRead > Date())
    }

    @Test func pollerReportsAModuleThatWentAway() throws {
        let tree = try sampleTree()
        let poller = DirectorPoller(reader: SnapshotReader(options: ReaderOptions(procRoot: tree.root, hz: 250)))
        poller.pollServices()
        try FileManager.default.removeItem(atPath: tree.root + "/net/ip_vs")
        poller.pollServices()
        #expect(poller.lastError?.contains("net/ip_vs does not exist") == true)
        // The last good services stay on show, with the error said.
        #expect(poller.latest()?.services.count == 2)
        #expect(poller.latest()?.source.warnings.contains { $0.contains("does not exist") } == true)
    }

    /// A table read that keeps failing stays said after a services poll that succeeds
    /// (the services poll once cleared it, so faces and logs saw it only by luck).
    @Test func aFailingTableReadOutlivesAGoodServicesPoll() throws {
        let tree = try sampleTree()
        try FileManager.default.removeItem(atPath: tree.root + "/net/ip_vs_conn")
        #expect(mkfifo(tree.root + "/net/ip_vs_conn", 0o644) == 0)
        let poller = DirectorPoller(reader: SnapshotReader(options: ReaderOptions(procRoot: tree.root, hz: 250)))
        poller.pollServices()
        poller.pollConnections()
        poller.pollServices()
        #expect(poller.lastError?.contains("is a FIFO, not a regular file") == true)
        let snap = try #require(poller.latest())
        #expect(snap.services.count == 2)
        #expect(snap.source.warnings.contains { $0.hasPrefix("connection table:") && $0.contains("FIFO") })

        // Once the table reads again, its error goes; the services' own error is apart.
        try FileManager.default.removeItem(atPath: tree.root + "/net/ip_vs_conn")
        try tree.write("net/ip_vs_conn", KernelText.conn("TCP", 0xC0A8_0709, 0x8009, 0x0A00_0001, 443, 0x0A00_0102, 443, "SYN_RECV", 30))
        poller.pollConnections()
        #expect(poller.lastError == nil)
        #expect(poller.latest()?.connections?.entries.count == 1)
    }

    @Test func ratesFromCountersWhereTheKernelGaveNone() {
        let key = ServiceKey.address(.tcp, IPAddress("10.0.0.1")!, 80)
        func svc(_ conns: UInt64, _ bytes: UInt64) -> VirtualService {
            let st = TrafficStats(conns: conns, inPackets: 0, outPackets: 0, inBytes: bytes, outBytes: 0)
            return VirtualService(key: key, scheduler: "rr", flags: [], persistence: nil, stats: st, realServers: [
                RealServer(address: IPAddress("10.0.1.2")!, port: 80, forward: .masq, weight: 1, activeConns: 0, inactiveConns: 0, stats: st),
            ])
        }
        var now = [svc(120, 4000)]
        DirectorPoller.fillMissingRates(&now, previous: [svc(100, 2000)], seconds: 2)
        #expect(now[0].rates?.cps == 10)
        #expect(now[0].rates?.inBPS == 1000)
        #expect(now[0].realServers[0].rates?.cps == 10)
        // Counters that went backwards (server re-added) give no rate rather than a wrong one.
        var reset = [svc(5, 10)]
        DirectorPoller.fillMissingRates(&reset, previous: [svc(100, 2000)], seconds: 2)
        #expect(reset[0].rates == nil)
    }

    @Test func backgroundLoopsRunAndStop() throws {
        let tree = try sampleTree()
        let updates = Mutex(0)
        let poller = DirectorPoller(reader: SnapshotReader(options: ReaderOptions(procRoot: tree.root, hz: 250)), interval: 0.05,
                                    pacer: ConnectionTablePacer(share: 1, minimumInterval: 0.05)) { updates.withLock { $0 += 1 } }
        poller.start()
        let deadline = Date().addingTimeInterval(5)
        while (poller.latest()?.connections == nil || updates.withLock { $0 } < 4) && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
        }
        poller.stop()
        #expect(poller.latest()?.connections?.entries.count == 9)
        #expect(updates.withLock { $0 } >= 4)
    }
}
