import Foundation
import IPVSTestSupport
import Testing
@testable import IPVSModel
@testable import IPVSReader

extension BadInputs {
    static func snapshot(_ name: String?, configDirs: [String] = []) throws -> Snapshot {
        let (root, remove) = try tree(name)
        defer { remove() }
        return try SnapshotReader(options: ReaderOptions(procRoot: root, kernelConfigDirs: configDirs)).snapshot()
    }
}

@Suite struct BadInputTests {
    // MARK: proc-inactconn-400000000, proc-inactconn-4294967295

    /// One real server claiming 4294967295 inactive connections once made the reader reserve
    /// room for them all (32-343 GB) and abort. The reservation is capped and the table is
    /// read whole all the same.
    @Test(arguments: ["proc-inactconn-400000000", "proc-inactconn-4294967295"])
    func hugeInActConnReservesWhatTheFileHolds(_ name: String) throws {
        let good = try BadInputs.snapshot(nil)
        let s = try BadInputs.snapshot(name)
        let t = try #require(s.connections)
        #expect(t.entries.count == good.connections?.entries.count)
        #expect(t.entries.count > 300)
        // The file is ~26 KB: nothing near the claimed count was reserved.
        #expect(t.entries.capacity < 10_000)
        let claimed = s.services.flatMap(\.realServers).map(\.inactiveConns).max()
        #expect(claimed == (name.hasSuffix("4294967295") ? 4_294_967_295 : 400_000_000))
    }

    @Test func reservationIsCapped() {
        #expect(SnapshotReader.reservation(expectedEntries: Int.max, fileSize: nil) == SnapshotReader.maxCountedReservation)
        #expect(SnapshotReader.reservation(expectedEntries: -5, fileSize: nil) == 0)
        #expect(SnapshotReader.reservation(expectedEntries: 4_294_967_295, fileSize: 26_000) <= 26_000 / 48 + 1)
        #expect(SnapshotReader.reservation(expectedEntries: 10, fileSize: 6_400_000) == 100_000)
        // A snapshot whose counters sum past Int.max saturates instead of trapping.
        let rs = RealServer(address: IPAddress(ipv4: 1), port: 1, forward: .masq, weight: 1,
                            activeConns: .max, inactiveConns: .max, persistentConns: .max)
        let svc = VirtualService(key: .fwmark(1, .ipv4), scheduler: "rr", flags: [], persistence: nil,
                                 realServers: Array(repeating: rs, count: 1000))
        var s = Snapshot(takenAt: Date(), info: nil, services: [], connections: nil, global: nil, sysctls: [], timeouts: nil,
                         syncDaemons: nil, slab: nil, tickRate: nil, source: SourceReport(procRoot: "/x", netlink: .off(reason: "")))
        s.services = Array(repeating: svc, count: 1000)
        #expect(SnapshotReader.expectedEntries(s) > 0)
    }

    // MARK: slabinfo-objsize-overflow

    @Test func impossibleSlabObjectSizeIsRejected() throws {
        let s = try BadInputs.snapshot("slabinfo-objsize-overflow")
        #expect(s.slab == nil)
        #expect(s.connectionMemoryBytes == nil)
        #expect(s.source.warnings.contains { $0.contains("object size 9223372036854775807") })
    }

    @Test func entryMemoryOverflowIsUnavailable() {
        var s = Snapshot(takenAt: Date(), info: nil, services: [], connections: nil, global: nil, sysctls: [], timeouts: nil,
                         syncDaemons: nil, slab: SlabInfo(objectSize: Int.max, activeObjects: 3, totalObjects: 3), tickRate: nil,
                         source: SourceReport(procRoot: "/x", netlink: .off(reason: "")))
        #expect(s.connectionMemoryBytes == nil)
        s.slab = SlabInfo(objectSize: 320, activeObjects: -1, totalObjects: 3)
        #expect(s.connectionMemoryBytes == nil)
        s.slab = SlabInfo(objectSize: 320, activeObjects: 10, totalObjects: 12)
        #expect(s.connectionMemoryBytes == 3200)
    }

    // MARK: sysctl-amemthresh-overflow

    @Test func sysctlOutsideIntRangeIsNoNumber() throws {
        let s = try BadInputs.snapshot("sysctl-amemthresh-overflow")
        #expect(s.sysctl("amemthresh")?.value == "9223372036854775807")
        #expect(s.sysctl("amemthresh")?.integerValue == nil)
        #expect(s.sysctl("drop_entry")?.integerValue == 2)
        #expect(s.source.warnings.contains { $0.contains("amemthresh=9223372036854775807") })
        #expect(Sysctl(name: "x", value: "2147483647").integerValue == 2_147_483_647)
        #expect(Sysctl(name: "x", value: "-2147483648").integerValue == -2_147_483_648)
        #expect(Sysctl(name: "x", value: "2147483648").integerValue == nil)
    }

    // MARK: proc-ip_vs-crlf-silently-empty

    @Test func crlfServiceTableIsReadAndSaidSo() throws {
        let good = try BadInputs.snapshot(nil)
        let s = try BadInputs.snapshot("proc-ip_vs-crlf-silently-empty")
        #expect(s.services.count == good.services.count)
        #expect(s.services == good.services)
        #expect(s.info == good.info)
        #expect(!s.source.servicesIncomplete)
        #expect(s.source.warnings.contains { $0.contains("CR LF") })
    }

    @Test func serviceTableWithoutHeaderIsFlagged() throws {
        let t = ServiceTableParser.parse("garbage\nmore garbage\n", hz: 100)
        #expect(t.info == nil)
        #expect(t.services.isEmpty)
        #expect(t.skipped.total == 2)
        let tree = try ProcTree(["net/ip_vs": "garbage\n", "net/ip_vs_conn": "garbage\n"])
        let s = try SnapshotReader(options: ReaderOptions(procRoot: tree.root, kernelConfigDirs: [])).snapshot()
        #expect(s.source.servicesIncomplete)
        #expect(s.source.warnings.contains { $0.contains("no 'IP Virtual Server version' header") })
        // Empty files (what tar makes of /proc) are no director at all (issue 22).
        let empty = try ProcTree(["net/ip_vs": "", "net/ip_vs_conn": ""])
        #expect(throws: SnapshotError.self) { try SnapshotReader(options: ReaderOptions(procRoot: empty.root, kernelConfigDirs: [])).snapshot() }
    }

    // MARK: proc-ipv6-prefix-4294967295 (and the other impossible values of its row)

    @Test func ipv6PrefixOver128IsSkippedAndCounted() throws {
        let good = try BadInputs.snapshot(nil)
        let s = try BadInputs.snapshot("proc-ipv6-prefix-4294967295")
        #expect(s.services.count == good.services.count - 1)
        #expect(!s.services.contains { if case .prefix(let p)? = $0.persistence?.netmask { p > 128 } else { false } })
        #expect(s.source.servicesIncomplete)
        #expect(s.source.warnings.contains { $0.contains("IPv6 persistence prefix 4294967295 is not 1-128") })
    }

    @Test func negativeWeightAndImpossibleTableSizeAreFlagged() {
        let text = """
            IP Virtual Server version 1.2.1 (size=-4096)
            Prot LocalAddress:Port Scheduler Flags
              -> RemoteAddress:Port Forward Weight ActiveConn InActConn
            TCP  0A000001:0050 rr
              -> 0A000002:0050      Masq    -5     0          0
              -> 0A000003:0050      Masq    1      0          0
            TCP  [fd00:0000:0000:0000:0000:0000:0000:0001]:0050 rr persistent 3000 00000000

            """
        let t = ServiceTableParser.parse(text, hz: 100)
        #expect(t.info?.tableSize == 0)
        #expect(t.impossibleValues.count == 1)
        #expect(t.impossibleValues.first?.contains("-4096") == true)
        #expect(t.services.count == 1)
        #expect(t.services.first?.realServers.map(\.weight) == [1])
        #expect(t.skipped.malformed == 2)
        #expect(t.skipped.examples.contains { $0.contains("negative weight -5") })
        #expect(t.skipped.examples.contains { $0.contains("prefix 0 is not 1-128") })
        // 3000 is not a power of two either.
        #expect(ServiceTableParser.parse("IP Virtual Server version 1.2.1 (size=3000)\n", hz: nil).impossibleValues.count == 1)
        #expect(ServiceTableParser.parse("IP Virtual Server version 1.2.1 (size=4096)\n", hz: nil).impossibleValues.isEmpty)
    }

    @Test func anyHZDividesWithoutTrapping() {
        let line = "IP Virtual Server version 1.2.1 (size=4096)\nTCP  0A000001:0050 rr persistent 4294967295 FFFFFFFF\n"
        for hz in [Int.min, -1, 0, 1, 250, Int(UInt32.max) + 1, Int.max] {
            let t = ServiceTableParser.parse(line, hz: hz)
            #expect(t.services.count == 1)
            let secs = t.services.first?.persistence?.timeoutSeconds
            #expect(hz > 0 ? secs != nil : secs == nil)
        }
    }

    // MARK: boot-config-CONFIG_HZ-7777777777

    @Test func implausibleConfigHZIsRejected() throws {
        let boot = BadInputs.fixtures + "/bad-inputs/boot/boot-config-CONFIG_HZ-7777777777"
        let s = try BadInputs.snapshot(nil, configDirs: [boot])
        #expect(s.tickRate == nil)
        #expect(s.source.warnings.contains { $0.contains("CONFIG_HZ=7777777777 is not a plausible tick rate") })
        #expect(s.services.contains { $0.persistence?.timeoutJiffies != nil && $0.persistence?.timeoutSeconds == nil })
        #expect(KernelConfigParser.hz("CONFIG_HZ=250\n") == 250)
        #expect(KernelConfigParser.hz("CONFIG_HZ=99999999999999999999999\n") == nil)
        #expect(KernelConfigParser.hz("CONFIG_HZ=-250\n") == nil)
    }

    // MARK: FIFOs, devices and endless files in a --proc-root tree

    static func withTree(_ body: (String) throws -> Void) throws {
        let (root, remove) = try BadInputs.tree(nil)
        defer { remove() }
        try body(root)
    }

    /// Runs `body` on another thread and fails (instead of hanging the suite) if it does
    /// not return within `seconds`.
    static func finishes(within seconds: Double, _ body: @escaping @Sendable () -> Void) -> Bool {
        let done = DispatchSemaphore(value: 0)
        Thread { body(); done.signal() }.start()
        return done.wait(timeout: .now() + seconds) == .success
    }

    @Test(arguments: ["net/ip_vs_conn", "net/ip_vs_stats", "slabinfo", "sys/net/ipv4/vs/amemthresh", "sys/kernel/osrelease"])
    func fifoIsRefusedNotWaitedOn(_ rel: String) throws {
        try Self.withTree { root in
            try FileManager.default.removeItem(atPath: root + "/" + rel)
            #expect(mkfifo(root + "/" + rel, 0o644) == 0)
            let box = Box()
            let finished = Self.finishes(within: 10) {
                box.set(try? SnapshotReader(options: ReaderOptions(procRoot: root, kernelConfigDirs: [])).snapshot())
            }
            #expect(finished, "reading a tree with a FIFO at \(rel) hung")
            let s = try #require(box.get())
            #expect(!s.services.isEmpty)
            if rel != "sys/kernel/osrelease" {
                #expect(s.source.warnings.contains { $0.contains("FIFO") }, "\(s.source.warnings)")
            }
        }
    }

    @Test func fifoServiceTableIsAClearError() throws {
        try Self.withTree { root in
            try FileManager.default.removeItem(atPath: root + "/net/ip_vs")
            #expect(mkfifo(root + "/net/ip_vs", 0o644) == 0)
            let box = Box()
            let finished = Self.finishes(within: 10) {
                do {
                    _ = try SnapshotReader(options: ReaderOptions(procRoot: root, kernelConfigDirs: [])).snapshot()
                } catch {
                    box.setError("\(error)")
                }
            }
            #expect(finished)
            #expect(box.error?.contains("is a FIFO, not a regular file") == true)
        }
    }

    @Test(arguments: ["net/ip_vs_conn", "net/ip_vs_stats", "sys/net/ipv4/vs/amemthresh"])
    func endlessDeviceIsRefused(_ rel: String) throws {
        try Self.withTree { root in
            try FileManager.default.removeItem(atPath: root + "/" + rel)
            try FileManager.default.createSymbolicLink(atPath: root + "/" + rel, withDestinationPath: "/dev/zero")
            let s = try SnapshotReader(options: ReaderOptions(procRoot: root, kernelConfigDirs: [])).snapshot()
            #expect(s.source.warnings.contains { $0.contains("character device") }, "\(s.source.warnings)")
        }
    }

    @Test func readsStopAtTheirSizeCap() throws {
        let tree = try ProcTree(["big": String(repeating: "0123456789abcdef\n", count: 10_000)])
        #expect(throws: ProcReadError.tooLarge(tree.root + "/big", limit: 1000)) {
            _ = try ProcFile.readText(tree.root + "/big", limit: 1000)
        }
        #expect(throws: ProcReadError.tooLarge(tree.root + "/big", limit: 100_000)) {
            _ = try ProcFile.streamLines(tree.root + "/big", limit: 100_000) { _, _ in }
        }
        #expect(try ProcFile.readText(tree.root + "/big").text.count == 170_000)
    }
}

/// A result handed from a watched thread.
final class Box: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Snapshot?
    private(set) var error: String?
    func set(_ v: Snapshot?) { lock.lock(); value = v; lock.unlock() }
    func get() -> Snapshot? { lock.lock(); defer { lock.unlock() }; return value }
    func setError(_ e: String) { lock.lock(); error = e; lock.unlock() }
}
