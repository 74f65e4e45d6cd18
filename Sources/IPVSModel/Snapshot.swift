import FoundationEssentials

/// Version and connection hash table size (header of /proc/net/ip_vs, or GET_INFO).
public struct IPVSInfo: Hashable, Sendable {
    public var version: String
    public var tableSize: Int
    public init(version: String, tableSize: Int) {
        self.version = version
        self.tableSize = tableSize
    }
}

/// Director-wide totals and rates (`/proc/net/ip_vs_stats`).
public struct GlobalStats: Hashable, Sendable {
    public var totals: TrafficStats
    public var rates: TrafficRates
    /// Per-CPU totals from `ip_vs_stats_percpu`, when read.
    public var perCPU: [TrafficStats]?
    public init(totals: TrafficStats, rates: TrafficRates, perCPU: [TrafficStats]? = nil) {
        self.totals = totals
        self.rates = rates
        self.perCPU = perCPU
    }
}

/// Connection timeouts (`ipvsadm -L --timeout`), netlink GET_CONFIG.
public struct Timeouts: Hashable, Sendable {
    public var tcp: UInt32
    public var tcpFin: UInt32
    public var udp: UInt32
    public init(tcp: UInt32, tcpFin: UInt32, udp: UInt32) {
        self.tcp = tcp
        self.tcpFin = tcpFin
        self.udp = udp
    }
}

/// A connection synchronisation daemon (`ipvsadm -L --daemon`), netlink GET_DAEMON.
public struct SyncDaemon: Hashable, Sendable {
    public enum Role: String, Sendable { case master, backup }
    public var role: Role
    public var multicastInterface: String
    public var syncID: UInt32
    public var maxLength: UInt16?
    public var multicastGroup: IPAddress?
    public var multicastPort: UInt16?
    public var multicastTTL: UInt8?

    public init(
        role: Role, multicastInterface: String, syncID: UInt32, maxLength: UInt16? = nil,
        multicastGroup: IPAddress? = nil, multicastPort: UInt16? = nil, multicastTTL: UInt8? = nil
    ) {
        self.role = role
        self.multicastInterface = multicastInterface
        self.syncID = syncID
        self.maxLength = maxLength
        self.multicastGroup = multicastGroup
        self.multicastPort = multicastPort
        self.multicastTTL = multicastTTL
    }
}

/// One `/proc/sys/net/ipv4/vs/*` setting, as its file holds it.
public struct Sysctl: Hashable, Sendable {
    public var name: String
    /// The file's text, trimmed.
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    /// The value when the file holds exactly one integer that a C int can hold: every
    /// IPVS sysctl is one (proc_dointvec), so a larger value did not come from the kernel
    /// and is not given as a number (the reader warns about it).
    public var integerValue: Int64? { Int64(value).flatMap { Int32(exactly: $0) != nil ? $0 : nil } }
}

/// The `ip_vs_conn` slab cache: what a connection entry really costs in kernel memory.
public struct SlabInfo: Hashable, Sendable {
    /// Bytes per object as the allocator lays them out (slabinfo's `objsize`, sysfs's
    /// `slab_size`): more than the structure itself.
    public var objectSize: Int
    /// Objects in use, when the cache is not merged with others (slabinfo only).
    public var activeObjects: Int?
    public var totalObjects: Int?
    /// `slabinfo`, or `sysfs` when the cache is merged into another and slabinfo has no
    /// line of its own (the default on most kernels).
    public var origin: String

    public init(objectSize: Int, activeObjects: Int?, totalObjects: Int?, origin: String = "slabinfo") {
        self.objectSize = objectSize
        self.activeObjects = activeObjects
        self.totalObjects = totalObjects
        self.origin = origin
    }
}

/// The kernel's tick rate, needed to turn /proc's persistence timeouts (jiffies) into
/// seconds, and where the figure came from.
public struct TickRate: Hashable, Sendable {
    public enum Origin: String, Sendable {
        /// Netlink's timeout in seconds against /proc's jiffies for the same service.
        case netlink
        /// `CONFIG_HZ` from the running kernel's config (/boot/config-*, /proc/config.gz).
        case kernelConfig = "kernel_config"
        /// Given on the command line (`--hz`).
        case option
    }
    public var hz: Int
    public var origin: Origin
    public init(hz: Int, origin: Origin) {
        self.hz = hz
        self.origin = origin
    }
}

/// The director's name and kernel, as `uname -n` and `uname -r` say (for a captured tree,
/// its `sys/kernel/hostname` and `sys/kernel/osrelease`, or the capture's manifest).
public struct HostInfo: Hashable, Sendable {
    /// The UTS node name (the network namespace's host name, as the kernel keeps it).
    public var hostname: String?
    /// The kernel release (`6.1.0-28-amd64`).
    public var kernelRelease: String?
    public init(hostname: String?, kernelRelease: String?) {
        self.hostname = hostname
        self.kernelRelease = kernelRelease
    }
}

/// How the netlink side of a snapshot went.
public enum NetlinkStatus: Hashable, Sendable {
    case used(readAt: Date, cost: ReadCost)
    /// Not attempted: `--proc-root` or `--no-netlink`.
    case off(reason: String)
    /// Attempted and refused (no CAP_NET_ADMIN, no IPVS family in this namespace...).
    case unavailable(reason: String)

    public var isUsed: Bool { if case .used = self { true } else { false } }
}

/// One /proc file's read.
public struct FileRead: Hashable, Sendable {
    public var name: String
    public var readAt: Date
    public var cost: ReadCost
    public init(name: String, readAt: Date, cost: ReadCost) {
        self.name = name
        self.readAt = readAt
        self.cost = cost
    }
}

/// Where a snapshot's data came from, what it cost, and what it lacks.
public struct SourceReport: Hashable, Sendable {
    /// The /proc tree read (`/proc`, or the `--proc-root` directory).
    public var procRoot: String
    public var netlink: NetlinkStatus
    public var files: [FileRead]
    /// Degradations and skipped input, in words an operator can act on.
    public var warnings: [String]
    /// Fields this snapshot cannot give (e.g. `real_servers.stats` without netlink).
    public var unavailable: [String]
    /// Lines of the service table could not be read (or it had no header): services or
    /// real servers may be missing, so an entry pointing at none is no proof of a deletion.
    public var servicesIncomplete = false

    public init(procRoot: String, netlink: NetlinkStatus, files: [FileRead] = [], warnings: [String] = [], unavailable: [String] = []) {
        self.procRoot = procRoot
        self.netlink = netlink
        self.files = files
        self.warnings = warnings
        self.unavailable = unavailable
    }
}

/// Everything ipvstop knows about the director at one moment: the single model every
/// face (dashboard, SNMP subagent, JSON) presents.
///
/// Services and real servers are read every poll; the connection table may be older (it
/// is read in the background at a pace set by its cost), and says when it was read.
public struct Snapshot: Sendable {
    public var takenAt: Date
    public var info: IPVSInfo?
    public var services: [VirtualService]
    public var connections: ConnectionTable?
    public var global: GlobalStats?
    public var sysctls: [Sysctl]
    public var timeouts: Timeouts?
    public var syncDaemons: [SyncDaemon]?
    public var slab: SlabInfo?
    public var tickRate: TickRate?
    /// The director's host name and kernel release, when known.
    public var host: HostInfo?
    public var source: SourceReport
    /// Which connection entries are new since the previous table read, when the snapshot
    /// comes from a poller that has read the table twice.
    public var connectionChanges: ConnectionChanges?
    /// `/proc/net/ip_vs_status` (7.1 and later; root only), or why it is not there.
    public var kernelStatus: IPVSStatusReading = .absent
    /// When the connection table is read next and why, from a poller (nil for one read).
    public var tablePacing: TablePacing?

    public init(
        takenAt: Date, info: IPVSInfo?, services: [VirtualService], connections: ConnectionTable?,
        global: GlobalStats?, sysctls: [Sysctl], timeouts: Timeouts?, syncDaemons: [SyncDaemon]?,
        slab: SlabInfo?, tickRate: TickRate?, source: SourceReport
    ) {
        self.takenAt = takenAt
        self.info = info
        self.services = services
        self.connections = connections
        self.global = global
        self.sysctls = sysctls
        self.timeouts = timeouts
        self.syncDaemons = syncDaemons
        self.slab = slab
        self.tickRate = tickRate
        self.source = source
    }

    public func sysctl(_ name: String) -> Sysctl? { sysctls.first { $0.name == name } }

    /// Real servers of every virtual service.
    public var realServerCount: Int { services.reduce(0) { $0 + $1.realServers.count } }
    /// ActiveConn over the whole director (every service's, `VirtualService.activeConns`).
    public var activeConns: Int { services.reduce(0) { $0 + $1.activeConns } }
    /// InActConn over the whole director.
    public var inactiveConns: Int { services.reduce(0) { $0 + $1.inactiveConns } }

    /// Seconds between the connection table's read and the snapshot.
    public var connectionAge: Double? {
        connections.map { max(0, takenAt.timeIntervalSince($0.readAt)) }
    }

    /// Kernel memory held by the connection table: entries × the slab's object size.
    /// Unavailable (nil), not wrapped or trapped, when the product overflows or a factor is
    /// negative (a slab figure the reader should have rejected, or a recording's).
    public var connectionMemoryBytes: Int? {
        guard let slab, slab.objectSize >= 0 else { return nil }
        guard let n = connections?.entries.count ?? slab.activeObjects, n >= 0 else { return nil }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: slab.objectSize)
        return overflow ? nil : bytes
    }
}
