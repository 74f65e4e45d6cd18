import Foundation
import Testing
@testable import IPVSModel
@testable import IPVSReader

#if canImport(Glibc)
import Glibc
#endif

// `ipvstop capture`: a fixture tree captured and read back equals the tree read directly,
// field by field; the netlink answers a capture keeps go through the live decoder again;
// empty, truncated or damaged captures are refused, never read as a smaller director.
@Suite struct CaptureTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/proc-vm-6.1").path

    /// A new scratch directory (removed by the caller's `defer`).
    static func scratch() -> String {
        var template = Array("/tmp/ipvstop-capture-test.XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        return String(cString: p!)
    }

    static func remove(_ dir: String) { try? FileManager.default.removeItem(atPath: dir) }

    /// Every field of the two snapshots that a capture must keep, compared one by one.
    static func expectSame(_ a: Snapshot, _ b: Snapshot) {
        #expect(a.info == b.info)
        #expect(a.services.count == b.services.count)
        for (x, y) in zip(a.services, b.services) { #expect(x == y, "service \(x.id)") }
        #expect(a.global == b.global)
        #expect(a.sysctls == b.sysctls)
        #expect(a.timeouts == b.timeouts)
        #expect(a.syncDaemons == b.syncDaemons)
        #expect(a.slab == b.slab)
        #expect(a.tickRate == b.tickRate)
        #expect(a.host == b.host)
        #expect(a.source.unavailable == b.source.unavailable)
        #expect(a.source.servicesIncomplete == b.source.servicesIncomplete)
        #expect(a.source.files.map(\.name) == b.source.files.map(\.name))
        #expect(a.source.files.map(\.cost.bytes) == b.source.files.map(\.cost.bytes))
        let t = a.connections, u = b.connections
        #expect(t != nil && u != nil)
        if let t, let u {
            #expect(t.file == u.file)
            #expect(t.entries.count == u.entries.count)
            #expect(t.entries == u.entries)
            #expect(t.counts == u.counts)
            #expect(t.skipped == u.skipped)
            #expect(t.cost.bytes == u.cost.bytes)
        }
    }

    @Test func aCapturedTreeReadsBackEqualFieldByField() throws {
        let dir = Self.scratch() + "/capture"
        defer { Self.remove((dir as NSString).deletingLastPathComponent) }
        let options = ReaderOptions(procRoot: Self.fixture, hz: 250)
        let written = try CaptureWriter(options: options).write(to: dir)
        let direct = try SnapshotReader(options: options).snapshot()
        let back = try SnapshotReader(options: ReaderOptions(procRoot: dir)).snapshot()
        Self.expectSame(direct, back)
        Self.expectSame(direct, written)
        #expect(direct.services.count == 14 && direct.connections?.entries.count == 385)
        #expect(back.host?.kernelRelease == "6.1.0-56-amd64")

        // The capture's own times, not the time it was read back.
        let m = try #require(try CaptureManifest.load(root: dir))
        #expect(back.takenAt == m.servicesReadAt)
        #expect(back.connections?.readAt == m.tableReadAt)
        #expect(m.tickRate == TickRate(hz: 250, origin: .option))
        #expect(m.uid == getuid())
        if case .off = m.netlink {} else { Issue.record("a copied tree has no netlink answers: \(m.netlink)") }

        // Every file byte for byte.
        for f in m.files {
            let original = try Data(contentsOf: URL(fileURLWithPath: Self.fixture + "/" + f.path))
            let copy = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f.path))
            #expect(original == copy, "\(f.path)")
            #expect(copy.count == f.bytes)
        }
        #expect(m.files.contains { $0.path == "net/ip_vs_conn" } && m.files.contains { $0.path == "sys/net/ipv4/vs/expire_nodest_conn" })
        // The manifest's text reads back to the same manifest.
        #expect(try CaptureManifest.parse(m.formatted()) == m)
    }

    /// A capture taken by a user who may not read 7.x's ip_vs_status reads back as the live
    /// reading did for that user ("permission denied: root only"), not as a kernel without
    /// the file (the lab's 7.3 round trip as nobody caught it).
    @Test func anUnreadableStatusStaysUnavailableNotAbsent() throws {
        let seven = URL(fileURLWithPath: Self.fixture).deletingLastPathComponent().appendingPathComponent("proc-vm-7").path
        let dir = Self.scratch() + "/capture"
        defer { Self.remove((dir as NSString).deletingLastPathComponent) }
        _ = try CaptureWriter(options: ReaderOptions(procRoot: seven, hz: 250)).write(to: dir)
        let full = try SnapshotReader(options: ReaderOptions(procRoot: dir)).snapshot()
        #expect(full.kernelStatus.status != nil)

        // What a capture by nobody holds: no ip_vs_status, and the manifest saying why.
        var m = try #require(try CaptureManifest.load(root: dir))
        m.files.removeAll { $0.path == "net/ip_vs_status" }
        m.notCopied.append("net/ip_vs_status: /proc/net/ip_vs_status: permission denied")
        try FileManager.default.removeItem(atPath: dir + "/net/ip_vs_status")
        try m.formatted().write(toFile: dir + "/" + CaptureManifest.fileName, atomically: true, encoding: .utf8)
        let back = try SnapshotReader(options: ReaderOptions(procRoot: dir)).snapshot()
        #expect(back.kernelStatus == .unavailable(reason: "permission denied: root only"))
        #expect(back.source.unavailable.contains("ipvs_status (permission denied: root only)"))

        // A capture of a kernel without the file says nothing of it.
        m.notCopied.removeAll { $0.hasPrefix("net/ip_vs_status:") }
        try m.formatted().write(toFile: dir + "/" + CaptureManifest.fileName, atomically: true, encoding: .utf8)
        #expect(try SnapshotReader(options: ReaderOptions(procRoot: dir)).snapshot().kernelStatus == .absent)
    }

    @Test func netlinkAnswersReplayThroughTheLiveDecoder() throws {
        let recorder = RecordingNetlinkTransport(FakeKernel())
        let live = try IPVSNetlinkClient(transport: recorder).read()
        let text = NetlinkExchangeText.format(recorder.exchanges)
        let exchanges = try NetlinkExchangeText.parse(text)
        #expect(exchanges == recorder.exchanges)
        let replayed = try IPVSNetlinkClient(transport: ReplayNetlinkTransport(exchanges)).read()
        #expect(replayed.info == live.info)
        #expect(replayed.services == live.services)
        #expect(replayed.timeouts == live.timeouts)
        #expect(replayed.syncDaemons == live.syncDaemons)
        #expect(live.services.contains { $0.stats != nil } && live.services.flatMap(\.realServers).contains { $0.persistentConns != nil })
    }

    /// The fixture captured, then given the fake kernel's netlink answers as a capture taken
    /// as root would hold them.
    static func captureWithNetlink() throws -> (dir: String, live: NetlinkReading) {
        let dir = scratch() + "/capture"
        try CaptureWriter(options: ReaderOptions(procRoot: fixture)).write(to: dir)
        let recorder = RecordingNetlinkTransport(FakeKernel())
        let live = try IPVSNetlinkClient(transport: recorder).read()
        let text = NetlinkExchangeText.format(recorder.exchanges)
        try text.write(toFile: dir + "/netlink", atomically: false, encoding: .utf8)
        var m = try #require(try CaptureManifest.load(root: dir))
        m.netlink = .recorded(cost: ReadCost(seconds: 0.002, cpuSeconds: 0.001, bytes: 9000, readCalls: 7))
        m.files.append(("netlink", text.utf8.count))
        try m.formatted().write(toFile: dir + "/" + CaptureManifest.fileName, atomically: false, encoding: .utf8)
        return (dir, live)
    }

    @Test func aCaptureWithNetlinkKeepsStatsRatesAndPersistConn() throws {
        let (dir, live) = try Self.captureWithNetlink()
        defer { Self.remove((dir as NSString).deletingLastPathComponent) }
        let s = try SnapshotReader(options: ReaderOptions(procRoot: dir)).snapshot()
        guard case .used(let at, let cost) = s.source.netlink else { Issue.record("netlink not used: \(s.source.netlink)"); return }
        let m = try #require(try CaptureManifest.load(root: dir))
        #expect(at == m.servicesReadAt)
        #expect(cost.bytes == 9000)  // the capture's read, not the replay's
        var want = live.services
        want.sort { $0.key < $1.key }
        #expect(s.services.map(\.key) == want.map(\.key))
        #expect(s.services.flatMap(\.realServers).map(\.persistentConns) == want.flatMap { $0.realServers.sorted { ($0.address, $0.port) < ($1.address, $1.port) } }.map(\.persistentConns))
        #expect(s.timeouts == live.timeouts)
        #expect(!s.source.unavailable.contains("real_servers.stats"))
    }

    @Test func aDamagedNetlinkFileIsAnErrorNotASmallerDirector() throws {
        let (dir, _) = try Self.captureWithNetlink()
        defer { Self.remove((dir as NSString).deletingLastPathComponent) }
        let path = dir + "/netlink"
        var text = try String(contentsOfFile: path, encoding: .utf8)
        // Same size, other bytes: the first reply's first message claims more bytes than it has.
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let i = try #require(lines.firstIndex { $0.hasPrefix("< ") })
        var l = Array(lines[i])
        l[2] = "f"; l[3] = "f"
        var edited = lines
        edited[i] = String(l)
        text = edited.joined(separator: "\n")
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        #expect(throws: SnapshotError.self) { try SnapshotReader(options: ReaderOptions(procRoot: dir)).snapshot() }

        // Answers that do not follow the requests (another request recorded first).
        var swapped = edited
        let first = try #require(swapped.firstIndex { $0.hasPrefix("> ") })
        swapped[first] = "> " + NetlinkExchangeText.hex(Array(repeating: 0, count: 20)) + " bogus"
        try swapped.joined(separator: "\n").write(toFile: path, atomically: false, encoding: .utf8)
        do {
            _ = try SnapshotReader(options: ReaderOptions(procRoot: dir)).readServices()
            Issue.record("a capture with the wrong request read")
        } catch let e as SnapshotError {
            #expect(e.description.contains("netlink"))
        }
    }

    @Test func aTruncatedCaptureIsAnError() throws {
        let dir = Self.scratch() + "/capture"
        defer { Self.remove((dir as NSString).deletingLastPathComponent) }
        try CaptureWriter(options: ReaderOptions(procRoot: Self.fixture)).write(to: dir)
        #expect(truncate(dir + "/net/ip_vs_conn", 1000) == 0)
        do {
            _ = try SnapshotReader(options: ReaderOptions(procRoot: dir)).snapshot()
            Issue.record("a truncated capture read")
        } catch let e as SnapshotError {
            #expect(e.description.contains("net/ip_vs_conn holds 1000 bytes"))
        }
        // A manifest naming a file outside the capture is damaged, not followed.
        let bad = try String(contentsOfFile: dir + "/" + CaptureManifest.fileName, encoding: .utf8) + "file: 10 ../../etc/passwd\n"
        #expect(throws: CaptureError.self) { try CaptureManifest.parse(bad) }
    }

    @Test func tarsEmptyCopyOfProcIsRefused() throws {
        let root = Self.scratch()
        defer { Self.remove(root) }
        for d in ["net", "sys/net/ipv4/vs", "sys/kernel"] {
            try FileManager.default.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true)
        }
        for f in ["net/ip_vs", "net/ip_vs_conn", "net/ip_vs_stats", "sys/net/ipv4/vs/amemthresh", "sys/kernel/osrelease"] {
            #expect(FileManager.default.createFile(atPath: root + "/" + f, contents: Data()))
        }
        do {
            _ = try SnapshotReader(options: ReaderOptions(procRoot: root)).snapshot()
            Issue.record("an empty tree read as a director")
        } catch let e as SnapshotError {
            #expect(e.description.contains("net/ip_vs, net/ip_vs_conn, net/ip_vs_stats"))
            #expect(e.description.contains("ipvstop capture"))
        }
        // And capturing it is refused too, before anything is written.
        #expect(throws: (any Error).self) { try CaptureWriter(options: ReaderOptions(procRoot: root)).write(to: root + "/out") }
        #expect(!FileManager.default.fileExists(atPath: root + "/out"))
    }

    @Test func aCaptureIsNeverWrittenOverAnother() throws {
        let dir = Self.scratch() + "/capture"
        defer { Self.remove((dir as NSString).deletingLastPathComponent) }
        try CaptureWriter(options: ReaderOptions(procRoot: Self.fixture)).write(to: dir)
        #expect(throws: CaptureError.self) { try CaptureWriter(options: ReaderOptions(procRoot: Self.fixture)).write(to: dir) }
    }

    @Test func thisMachinesHostIsUnamesAndTheTreesIsItsFiles() throws {
        // uname(2) and /proc/sys/kernel agree on a live machine: both are the UTS namespace's.
        let live = try #require(Uname.host())
        #expect(live == Uname.host(root: "/proc"))
        #expect(live.hostname?.isEmpty == false && live.kernelRelease?.isEmpty == false)
        let tree = try #require(Uname.host(root: Self.fixture))
        #expect(tree == HostInfo(hostname: nil, kernelRelease: "6.1.0-56-amd64"))
    }

    @Test func sequenceNumbersArePatchedInEveryMessageAndDamageIsLeftToTheDecoder() {
        // Two 16-byte messages, then a length of 3 (cannot be a message): patched up to it.
        var d = [UInt8](repeating: 0, count: 40)
        d[0] = 16; d[16] = 16; d[32] = 3
        let p = ReplayNetlinkTransport.withSequence(d, 0x0102_0304)
        #expect(Array(p[8..<12]) == hostBytes(UInt32(0x0102_0304)))
        #expect(Array(p[24..<28]) == hostBytes(UInt32(0x0102_0304)))
        #expect(p.count == 40)
        #expect(ReplayNetlinkTransport.withSequence([1, 2, 3], 7) == [1, 2, 3])
    }
}
