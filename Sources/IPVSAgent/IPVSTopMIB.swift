/// The layout of IPVSTOP-MIB (MIBs/IPVSTOP-MIB.txt), relative to its module identity.
/// Keep in step with the MIB file: Tests/Agent/run checks every object by name.
public enum IPVSTopMIB {
    /// IANA's enterprise number for documentation (RFC 5612), arc 1: a placeholder until
    /// the operator relocates the module (`--base-oid`, and the MIB's MODULE-IDENTITY).
    public static let defaultBase: OID = [1, 3, 6, 1, 4, 1, 32473, 1]

    /// Under the base: notifications (0), objects (1), conformance (2).
    public static let notifications: UInt32 = 0
    public static let objects: UInt32 = 1

    /// SNMPv2-MIB::snmpTrapOID.0
    public static let snmpTrapOID: OID = [1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0]

    // Everything below is relative to ipvstopObjects (base.1).

    public enum Global {
        public static let group: UInt32 = 1
        public static let version: UInt32 = 1
        public static let tableSize: UInt32 = 2
        public static let services: UInt32 = 3
        public static let realServers: UInt32 = 4
        public static let connections: UInt32 = 5
        public static let templates: UInt32 = 6
        /// Stats 7...11 (conns, in packets, out packets, in bytes, out bytes).
        public static let statsFirst: UInt32 = 7
        /// Rates 12...16 (cps, in pps, out pps, in bps, out bps).
        public static let ratesFirst: UInt32 = 12
        public static let entryBytes: UInt32 = 17
        public static let entryMemory: UInt32 = 18
        public static let timeoutTCP: UInt32 = 19
        public static let timeoutTCPFin: UInt32 = 20
        public static let timeoutUDP: UInt32 = 21
        public static let findings: UInt32 = 22
    }

    public enum Sysctls {
        public static let group: UInt32 = 2
        /// The sysctl scalars in their MIB order (ipvsSysctls.1...).
        public static let names: [String] = [
            "expire_nodest_conn", "expire_quiescent_template", "amemthresh", "drop_entry", "drop_packet",
            "conn_reuse_mode", "secure_tcp", "conntrack", "sloppy_tcp", "sloppy_sctp", "am_droprate",
            "cache_bypass", "backup_only", "sync_version", "sync_persist_mode", "schedule_icmp",
            "ignore_tunneled", "run_estimation",
            // 7.1 and later: the load factors the resizable tables are sized by.
            "conn_lfactor", "svc_lfactor",
        ]
    }

    /// ipvsKernel (objects.10): the kernel's own account of its tables (ip_vs_status, 7.1
    /// and later, root only), and whether the connection table read is whole and how it is
    /// paced.
    public enum Kernel {
        public static let group: UInt32 = 10
        public static let statusState: UInt32 = 1
        public static let conns: UInt32 = 2
        public static let connBuckets: UInt32 = 3
        public static let connBits: UInt32 = 4
        public static let connLoadFactor: UInt32 = 5
        public static let connEmptyBuckets: UInt32 = 6
        public static let serviceBuckets: UInt32 = 7
        public static let serviceLoadFactor: UInt32 = 8
        public static let statsThreads: UInt32 = 9
        public static let statsThreadsMax: UInt32 = 10
        public static let tableCompleteness: UInt32 = 11
        public static let tableEntriesRead: UInt32 = 12
        public static let tableExpected: UInt32 = 13
        public static let tablePacing: UInt32 = 14
        public static let tableReadDelay: UInt32 = 15
    }

    public enum Source {
        public static let group: UInt32 = 3
        public static let takenAt: UInt32 = 1
        public static let age: UInt32 = 2
        public static let pollWallTime: UInt32 = 3
        public static let pollCPUTime: UInt32 = 4
        public static let tableReadAt: UInt32 = 5
        public static let tableAge: UInt32 = 6
        public static let tableWallTime: UInt32 = 7
        public static let tableCPUTime: UInt32 = 8
        public static let tableBytes: UInt32 = 9
        public static let tableReadCalls: UInt32 = 10
        public static let netlinkUsed: UInt32 = 11
        public static let procRoot: UInt32 = 12
        public static let warnings: UInt32 = 13
        public static let pollInterval: UInt32 = 14
        public static let topN: UInt32 = 15
        public static let hostName: UInt32 = 16
        public static let kernelRelease: UInt32 = 17
    }

    /// Tables: entry OID and the first and last accessible column (all columns in between
    /// are accessible).
    public struct TableLayout: Sendable {
        public let entry: OID
        public let firstColumn: UInt32
        public let lastColumn: UInt32
        public var columns: [UInt32] { Array(firstColumn...lastColumn) }
    }

    public static let serviceTable = TableLayout(entry: [4, 1], firstColumn: 2, lastColumn: 30)
    public static let realServerTable = TableLayout(entry: [5, 1], firstColumn: 2, lastColumn: 26)
    public static let clientTable = TableLayout(entry: [6, 1], firstColumn: 3, lastColumn: 12)
    public static let templateTable = TableLayout(entry: [7, 1], firstColumn: 4, lastColumn: 14)
    public static let findingTable = TableLayout(entry: [8, 1], firstColumn: 2, lastColumn: 8)
    public static let sysctlTable = TableLayout(entry: [9, 1], firstColumn: 2, lastColumn: 2)

    public enum Finding {
        public static let kind: UInt32 = 2
        public static let severity: UInt32 = 3
        public static let subject: UInt32 = 4
        public static let text: UInt32 = 5
        public static let since: UInt32 = 6
        public static let key: UInt32 = 7
        public static let advice: UInt32 = 8
        /// ipvsFindingRaised and ipvsFindingCleared, under the notifications arc.
        public static let raised: UInt32 = 1
        public static let cleared: UInt32 = 2
    }
}
