import Foundation
import IPVSTestSupport
import Testing
@testable import IPVSModel
@testable import IPVSReader

/// A small director: one persistent service with a /24 netmask, one plain one.
func sampleTree(extra: [String: String] = [:]) throws -> ProcTree {
    var files: [String: String] = [
        "net/ip_vs": KernelText.ipvsHeader
            + KernelText.service("TCP", 0x0A00_0001, 443, "wlc", persistent: (75000, 0xFFFF_FF00))
            + KernelText.dest(0x0A00_0102, 443, "Masq", 1, 3, 1)
            + KernelText.dest(0x0A00_0103, 443, "Masq", 0, 1, 0)
            + KernelText.service("TCP", 0x0A00_0001, 80, "rr")
            + KernelText.dest(0x0A00_0102, 80, "Masq", 1, 1, 1),
        "net/ip_vs_conn": KernelText.connHeader
            // Three clients of 192.168.7.0/24 share one template to 10.0.1.2.
            + KernelText.conn("TCP", 0xC0A8_0000, 0, 0x0A00_0001, 443, 0x0A00_0102, 443, "ASSURED", 280)
            + KernelText.conn("TCP", 0xC0A8_0705, 0x8001, 0x0A00_0001, 443, 0x0A00_0102, 443, "ESTABLISHED", 899)
            + KernelText.conn("TCP", 0xC0A8_0706, 0x8002, 0x0A00_0001, 443, 0x0A00_0102, 443, "ESTABLISHED", 899)
            + KernelText.conn("TCP", 0xC0A8_07FE, 0x8003, 0x0A00_0001, 443, 0x0A00_0102, 443, "FIN_WAIT", 100)
            + KernelText.conn("TCP", 0xC0A8_0700, 0, 0x0A00_0001, 443, 0x0A00_0102, 443, "ASSURED", 290)
            // A template on the quiescent server, controlling one connection.
            + KernelText.conn("TCP", 0xAC10_0100, 0, 0x0A00_0001, 443, 0x0A00_0103, 443, "ASSURED", 120)
            + KernelText.conn("TCP", 0xAC10_0109, 0x9000, 0x0A00_0001, 443, 0x0A00_0103, 443, "ESTABLISHED", 800)
            // Plain service: no template.
            + KernelText.conn("TCP", 0xC0A8_0705, 0x8004, 0x0A00_0001, 80, 0x0A00_0102, 80, "ESTABLISHED", 899)
            + KernelText.conn("TCP", 0xC0A8_0705, 0x8005, 0x0A00_0001, 80, 0x0A00_0102, 80, "TIME_WAIT", 30),
        "net/ip_vs_stats": SmallFileParserTests.stats,
        "sys/net/ipv4/vs/expire_nodest_conn": "0\n",
        "sys/net/ipv4/vs/expire_quiescent_template": "0\n",
        "sys/net/ipv4/vs/amemthresh": "1024\n",
        "sys/net/ipv4/vs/sync_ports": "1\n",
        "sys/net/ipv4/vs/sync_qlen_max": "4096\n",
        "sys/net/ipv4/vs/sync_threshold": "3\t50\n",
        "sys/kernel/osrelease": "6.1.0-test-amd64\n",
        "slabinfo": "slabinfo - version: 2.1\nip_vs_conn            10     26    304   26    2 : tunables    0    0    0 : slabdata      1      1      0\n",
    ]
    for (k, v) in extra { files[k] = v }
    return try ProcTree(files)
}

@Suite struct SnapshotReaderTests {
    @Test func capturedTreeGivesTheWholeSnapshot() throws {
        let tree = try sampleTree()
        let configDir = try ProcTree(["config-6.1.0-test-amd64": "CONFIG_HZ_250=y\nCONFIG_HZ=250\n"])
        let reader = SnapshotReader(options: ReaderOptions(procRoot: tree.root, kernelConfigDirs: [configDir.root]))
        #expect(!reader.options.useNetlink)
        let s = try reader.snapshot()
        #expect(s.services.map(\.id) == ["tcp:10.0.0.1:80", "tcp:10.0.0.1:443"])
        #expect(s.services[1].realServers.map(\.id) == ["10.0.1.2:443", "10.0.1.3:443"])
        #expect(s.tickRate == TickRate(hz: 250, origin: .kernelConfig))
        #expect(s.services.first { $0.id == "tcp:10.0.0.1:443" }?.persistence?.timeoutSeconds == 300)
        #expect(s.connections?.counts.connections == 6)
        #expect(s.connections?.counts.templates == 3)
        #expect(s.global?.totals.conns == 31)
        #expect(s.sysctl("sync_threshold")?.value == "3 50")
        #expect(s.sysctl("amemthresh")?.integerValue == 1024)
        #expect(s.sysctls.map(\.name) == ["amemthresh", "expire_nodest_conn", "expire_quiescent_template", "sync_ports", "sync_qlen_max", "sync_threshold"])
        #expect(s.slab?.objectSize == 304)
        #expect(s.connectionMemoryBytes == 9 * 304)
        if case .off = s.source.netlink {} else { Issue.record("netlink must be off for a captured tree") }
        #expect(s.source.unavailable.contains("real_servers.persistent_conns"))
        #expect(s.source.files.map(\.name).contains("ip_vs"))
    }


    @Test func missingModuleSaysHowToLoadIt() throws {
        let tree = try ProcTree(["net/dev": "x\n"])
        #expect(throws: SnapshotError.self) { try SnapshotReader(options: ReaderOptions(procRoot: tree.root)).snapshot() }
        do {
            _ = try SnapshotReader(options: ReaderOptions(procRoot: tree.root)).snapshot()
        } catch let e as SnapshotError {
            #expect(e.description.contains("net/ip_vs does not exist"))
        }
        #expect(SnapshotError.ipvsNotLoaded(procRoot: "/proc").description.contains("modprobe ip_vs"))
    }

    @Test func unknownHZIsSaidNotGuessed() throws {
        let tree = try sampleTree()
        let s = try SnapshotReader(options: ReaderOptions(procRoot: tree.root, kernelConfigDirs: ["/nonexistent"])).snapshot()
        #expect(s.tickRate == nil)
        #expect(s.services.first { $0.id == "tcp:10.0.0.1:443" }?.persistence?.timeoutSeconds == nil)
        #expect(s.services.first { $0.id == "tcp:10.0.0.1:443" }?.persistence?.timeoutJiffies == 75000)
        #expect(s.source.warnings.contains { $0.contains("HZ unknown") })
    }

    @Test func brokenSmallFilesDegradeWithWarnings() throws {
        let tree = try sampleTree(extra: ["net/ip_vs_stats": "   Total Incoming\n   1F\n"])
        // A directory where a file should be: read() fails with EISDIR.
        try FileManager.default.removeItem(atPath: tree.root + "/slabinfo")
        try FileManager.default.createDirectory(atPath: tree.root + "/slabinfo", withIntermediateDirectories: true)
        let s = try SnapshotReader(options: ReaderOptions(procRoot: tree.root, hz: 250)).snapshot()
        #expect(s.global == nil)
        #expect(s.slab == nil)
        #expect(s.source.warnings.contains { $0.hasPrefix("net/ip_vs_stats") })
        #expect(s.source.unavailable.contains("global.stats"))
        #expect(s.source.unavailable.contains { $0.hasPrefix("global.entry_bytes") })
    }

    @Test func truncatedConnectionTableIsCountedInWarnings() throws {
        let tree = try sampleTree(extra: ["net/ip_vs_conn": KernelText.connHeader
            + KernelText.conn("TCP", 0xC0A8_0705, 0x8004, 0x0A00_0001, 80, 0x0A00_0102, 80, "ESTABLISHED", 899)
            + "TCP C0A80705 8005 0A000001 0050 0a00"])
        let s = try SnapshotReader(options: ReaderOptions(procRoot: tree.root, hz: 250)).snapshot()
        #expect(s.connections?.entries.count == 1)
        #expect(s.connections?.skipped.malformed == 1)
        #expect(s.source.warnings.contains { $0.contains("ip_vs_conn: skipped 1 line(s)") })
    }

    @Test func missingConnectionTableLeavesServices() throws {
        let tree = try sampleTree()
        try FileManager.default.removeItem(atPath: tree.root + "/net/ip_vs_conn")
        let s = try SnapshotReader(options: ReaderOptions(procRoot: tree.root, hz: 250)).snapshot()
        #expect(s.connections == nil)
        #expect(s.services.count == 2)
        #expect(s.source.unavailable.contains("connections"))
    }

    @Test func hzFromNetlinkNeedsEveryPairToAgree() {
        let key = ServiceKey.address(.tcp, IPAddress("10.0.0.1")!, 443)
        let proc = VirtualService(key: key, scheduler: "wlc", flags: .persistent,
                                  persistence: Persistence(timeoutSeconds: nil, timeoutJiffies: 75000, netmask: .ipv4(~0)), realServers: [])
        let nl = VirtualService(key: key, scheduler: "wlc", flags: .persistent,
                                persistence: Persistence(timeoutSeconds: 300, timeoutJiffies: nil, netmask: .ipv4(~0)), realServers: [])
        #expect(SnapshotReader.hzFromNetlink(proc: [proc], netlink: [nl]) == 250)
        var other = nl
        other.persistence?.timeoutSeconds = 301
        #expect(SnapshotReader.hzFromNetlink(proc: [proc], netlink: [other]) == nil)
    }
}
