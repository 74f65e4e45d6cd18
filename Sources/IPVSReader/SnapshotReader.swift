import FoundationEssentials
import IPVSModel
#if canImport(Glibc)
import Glibc
#endif

/// Where and how to read the director.
public struct ReaderOptions: Sendable {
    /// The /proc tree: `/proc`, or a captured copy laid out the same way.
    public var procRoot: String
    /// Ask the IPVS netlink family (needs CAP_NET_ADMIN). Off for a captured tree: the
    /// netlink answer would describe this machine, not the capture.
    public var useNetlink: Bool
    /// The kernel's HZ when the operator knows it better (`--hz`).
    public var hz: Int?
    /// Folders searched for `config-<release>` to find CONFIG_HZ (Debian's kernels up to 6.x).
    public var kernelConfigDirs: [String]
    /// Folders searched for `<release>/config`: Debian's 7.x packages (linux-base-<release>)
    /// put the config there and none in /boot.
    public var moduleDirs: [String]
    /// The most of one core a live poller's connection-table reads may take (0.05 = 5%,
    /// `--table-share`): see `ConnectionTablePacer`.
    public var tableShare: Double

    public static let defaultModuleDirs = ["/usr/lib/modules", "/lib/modules"]

    public init(procRoot: String = "/proc", useNetlink: Bool? = nil, hz: Int? = nil, kernelConfigDirs: [String] = ["/boot"],
                moduleDirs: [String] = ReaderOptions.defaultModuleDirs, tableShare: Double = ConnectionTablePacer.defaultShare) {
        let root = procRoot.count > 1 && procRoot.hasSuffix("/") ? String(procRoot.dropLast()) : procRoot
        self.procRoot = root
        self.useNetlink = useNetlink ?? (root == "/proc")
        self.hz = hz
        self.kernelConfigDirs = kernelConfigDirs
        self.moduleDirs = moduleDirs
        self.tableShare = tableShare
    }

    public var isLive: Bool { procRoot == "/proc" }
}

/// The director has no IPVS, or it cannot be read at all.
public enum SnapshotError: Error, CustomStringConvertible {
    case ipvsNotLoaded(procRoot: String)
    case unreadable(String)

    public var description: String {
        switch self {
        case .ipvsNotLoaded(let root) where root == "/proc":
            """
            IPVS is not loaded on this machine: /proc/net/ip_vs does not exist.
            Load it with 'modprobe ip_vs' (as root) on a director, or examine a captured /proc \
            tree with --proc-root DIR.
            """
        case .ipvsNotLoaded(let root):
            "\(root)/net/ip_vs does not exist: --proc-root must name a copy of /proc (with net/ip_vs in it)."
        case .unreadable(let why):
            why
        }
    }
}

/// The single reader layer: turns the kernel's /proc files and netlink replies into one
/// immutable `Snapshot`. Faces never read the kernel themselves.
///
/// Services and real servers are cheap to read and can be polled every second; the
/// connection table is not (see `ConnectionTableReader`), so `readServices` and
/// `readConnections` are separate and `snapshot` combines their latest results.
public struct SnapshotReader: Sendable {
    public let options: ReaderOptions

    public init(options: ReaderOptions = ReaderOptions()) {
        self.options = options
    }

    func path(_ rel: String) -> String { options.procRoot + "/" + rel }

    /// Everything but the connection table (`connections` is nil): the part that is
    /// cheap to read every interval.
    public func readServices() throws -> Snapshot {
        var takenAt = Date()
        var files: [FileRead] = []
        var warnings: [String] = []
        var unavailable: [String] = []

        // /proc/net/ip_vs is the test for IPVS being there at all, and the source of
        // services when netlink is not available.
        let ipvsText: String
        do {
            let r = try ProcFile.readText(path("net/ip_vs"))
            ipvsText = r.text
            files.append(r.read)
        } catch ProcReadError.missing {
            throw SnapshotError.ipvsNotLoaded(procRoot: options.procRoot)
        } catch {
            throw SnapshotError.unreadable("\(error)")
        }

        // A copied tree: refused when its files are the empty ones tar makes of /proc;
        // a capture: its manifest checked against its files (none cut short).
        let capture = try options.isLive ? nil : Self.loadCapture(options.procRoot)
        if let capture { takenAt = capture.servicesReadAt }

        var netlink: NetlinkStatus
        var reading: NetlinkReading?
        if let capture, case .recorded = capture.netlink {
            // The capture's netlink answers, through the live path's own decoder.
            do {
                let r = try capture.replayNetlink(root: options.procRoot)
                reading = r
                netlink = .used(readAt: capture.servicesReadAt, cost: r.cost)
            } catch {
                throw SnapshotError.unreadable("\(options.procRoot): the capture's netlink answers cannot be read: \(error)")
            }
        } else if let capture {
            switch capture.netlink {
            case .unavailable(let why):
                netlink = .off(reason: "the capture was taken without netlink (\(why))")
                warnings.append("the capture was taken without netlink (\(why)): stats, rates, PersistConn and thresholds unavailable — capture as root")
            case .off(let why):
                netlink = .off(reason: "the capture holds no netlink answers (\(why))")
            case .recorded:
                netlink = .off(reason: "the capture holds no netlink answers")  // replayed above
            }
        } else if options.useNetlink {
            do {
                let client = try IPVSNetlinkClient()
                let r = try client.read()
                reading = r
                netlink = .used(readAt: takenAt, cost: r.cost)
            } catch {
                netlink = .unavailable(reason: "\(error)")
                warnings.append("no netlink (\(error)): stats, rates, PersistConn and thresholds unavailable — run as root")
            }
        } else {
            netlink = .off(reason: options.isLive ? "disabled (--no-netlink)" : "reading a captured tree (--proc-root)")
        }

        // HZ: first from the kernel config, so /proc's jiffies can be turned into seconds
        // when netlink is missing; netlink's seconds, when there, settle it exactly.
        var tick = options.hz.map { TickRate(hz: $0, origin: .option) } ?? capture?.tickRate
        if tick == nil {
            let (configured, why) = kernelConfigHZ()
            tick = configured
            if let why { warnings.append(why) }
        }
        let procTable = ServiceTableParser.parse(ipvsText, hz: tick?.hz)
        // What is wrong with the file itself is said whichever source gives the services.
        if procTable.crlfLines > 0 {
            warnings.append("net/ip_vs: \(procTable.crlfLines) line(s) end in CR LF, which the kernel never writes (a copied file?); read with the CR dropped")
        }
        if procTable.info == nil {
            warnings.append("net/ip_vs has no 'IP Virtual Server version' header: not the kernel's file, or damaged; its services may be incomplete")
        }
        if !procTable.impossibleValues.isEmpty {
            warnings.append("net/ip_vs: \(procTable.impossibleValues.count) impossible value(s) not used: \(procTable.impossibleValues.joined(separator: " | "))")
        }
        if let r = reading, options.hz == nil, let measured = Self.hzFromNetlink(proc: procTable.services, netlink: r.services) {
            tick = TickRate(hz: measured, origin: .netlink)
        }

        var services: [VirtualService]
        var servicesIncomplete = false
        var info = procTable.info
        if let r = reading {
            services = r.services
            info = r.info
        } else {
            services = procTable.services
            if procTable.skipped.total > 0 {
                warnings.append("net/ip_vs: skipped \(procTable.skipped.total) unreadable line(s): \(procTable.skipped.examples.joined(separator: " | "))")
            }
            // Services or real servers may be missing: connections to them are not proof
            // that they were deleted.
            servicesIncomplete = procTable.skipped.total > 0 || procTable.info == nil
            if !procTable.fwmarkFamilyGuessed.isEmpty {
                warnings.append("net/ip_vs does not print the family of fwmark services; taken as IPv4 for fwmark \(procTable.fwmarkFamilyGuessed.map(String.init).joined(separator: ", "))")
            }
            if tick == nil && services.contains(where: { $0.persistence != nil }) {
                warnings.append("kernel HZ unknown: persistence timeouts only in jiffies (pass --hz, or run as root for netlink)")
            }
            unavailable += ["services.stats", "services.rates", "real_servers.stats", "real_servers.rates",
                            "real_servers.persistent_conns", "real_servers.thresholds", "global.timeouts",
                            "global.sync_daemons", "services.flags (only persistent and ops)"]
        }

        // Both sources list in hash-table order (real servers newest first); present them
        // in ipvsadm's order so that a listing reads the same as the operator's own.
        services.sort { $0.key < $1.key }
        for i in services.indices {
            services[i].realServers.sort { ($0.address, $0.port) < ($1.address, $1.port) }
        }

        var global: GlobalStats?
        do {
            let r = try ProcFile.readText(path("net/ip_vs_stats"))
            files.append(r.read)
            global = try StatsParser.parse(r.text)
            if let p = try? ProcFile.readText(path("net/ip_vs_stats_percpu")) {
                files.append(p.read)
                if let per = try? StatsParser.parsePerCPU(p.text) { global?.perCPU = per.perCPU }
            }
        } catch {
            warnings.append("net/ip_vs_stats: \(error)")
            unavailable.append("global.stats")
        }

        let (sysctls, sysWarnings) = readSysctls()
        warnings += sysWarnings

        var slab: SlabInfo?
        var slabDenied = false
        do {
            let r = try ProcFile.readText(path("slabinfo"))
            files.append(r.read)
            slab = try SlabInfoParser.checked(r.text)
        } catch ProcReadError.permissionDenied {
            // slabinfo is root's only; sysfs says the same size to anyone.
            slabDenied = true
        } catch ProcReadError.missing {
        } catch {
            warnings.append("\(error)")
        }
        // A capture taken by a user who could not read slabinfo says so in its manifest.
        if let capture, capture.deniedToItsUser("slabinfo") {
            slabDenied = true
        }
        if slab == nil && options.isLive, let size = Self.sysfsSlabSize() {
            slab = SlabInfo(objectSize: size, activeObjects: nil, totalObjects: nil, origin: "sysfs")
        } else if slab == nil, capture != nil, let size = Self.sysfsSlabSize(path(CaptureWriter.sysfsSlabDir)) {
            // What sysfs said when the capture was taken (slabinfo is root's only).
            slab = SlabInfo(objectSize: size, activeObjects: nil, totalObjects: nil, origin: "sysfs")
        }
        if slab == nil {
            // Say why: the cache exists but may not be read, or it is not there to read.
            unavailable.append(slabDenied ? "global.entry_bytes (slabinfo: permission denied (root only); no ip_vs_conn cache in sysfs)"
                                          : "global.entry_bytes (no ip_vs_conn cache in slabinfo or sysfs)")
        }

        var status = readStatus()
        // A capture taken by a user who could not read ip_vs_status (root's only on 7.1+)
        // says so in its manifest: the file was there, unreadable, not absent (pre-7.1).
        if case .absent = status.reading, let capture, capture.deniedToItsUser("net/ip_vs_status") {
            status.reading = .unavailable(reason: "permission denied: root only")
        }
        if let r = status.read { files.append(r) }
        warnings += status.warnings
        if case .unavailable(let why) = status.reading { unavailable.append("ipvs_status (\(why))") }

        var report = SourceReport(procRoot: options.procRoot, netlink: netlink, files: files, warnings: warnings, unavailable: unavailable)
        report.servicesIncomplete = servicesIncomplete
        var snap = Snapshot(
            takenAt: takenAt, info: info, services: services, connections: nil, global: global, sysctls: sysctls,
            timeouts: reading?.timeouts, syncDaemons: reading?.syncDaemons, slab: slab, tickRate: tick,
            source: report)
        snap.host = options.isLive ? Uname.host() : (capture?.host ?? Uname.host(root: options.procRoot))
        snap.kernelStatus = status.reading
        return snap
    }

    /// A tree's capture manifest (nil for a plain copied tree), after checking that the
    /// tree is not tar's empty copy of /proc and that no captured file was cut short.
    static func loadCapture(_ root: String) throws -> CaptureManifest? {
        do {
            try TreeCheck.verify(root: root)
            return try CaptureManifest.load(root: root)
        } catch let e as CaptureError {
            throw SnapshotError.unreadable(e.description)
        } catch {
            throw SnapshotError.unreadable("\(root)/\(CaptureManifest.fileName): \(error)")
        }
    }

    /// `net/ip_vs_status` (7.1 and later): the kernel's entry count, its tables' buckets and
    /// load factors. Root's only (mode 0440): for anyone else it is `unavailable`, said as
    /// such; on earlier kernels it is `absent`.
    func readStatus() -> (reading: IPVSStatusReading, read: FileRead?, warnings: [String]) {
        do {
            let r = try ProcFile.readText(path("net/ip_vs_status"), limit: ProcFile.Limit.small)
            let status = IPVSStatusParser.parse(r.text)
            var warnings: [String] = []
            if !status.malformedLines.isEmpty {
                warnings.append("net/ip_vs_status: \(status.malformedLines.count) line(s) not understood, not used: \(status.malformedLines.prefix(3).joined(separator: " | "))")
            }
            return (.read(status), r.read, warnings)
        } catch ProcReadError.missing {
            return (.absent, nil, [])
        } catch ProcReadError.permissionDenied {
            return (.unavailable(reason: "permission denied: root only"), nil, [])
        } catch {
            return (.unavailable(reason: "\(error)"), nil, ["\(error)"])
        }
    }

    /// Only `Conns:` of `ip_vs_status`, for the check around a table read; nil when the file
    /// cannot be read (before 7.1, not root).
    func kernelEntryCount() -> Int? {
        guard let r = try? ProcFile.readText(path("net/ip_vs_status"), limit: ProcFile.Limit.small) else { return nil }
        return IPVSStatusParser.parse(r.text).conns
    }

    /// `/sys/kernel/slab/ip_vs_conn/slab_size`: the cache's object size even when it is
    /// merged into another cache (then slabinfo has no `ip_vs_conn` line).
    static func sysfsSlabSize(_ dir: String = "/sys/kernel/slab/ip_vs_conn") -> Int? {
        guard let text = try? ProcFile.readText(dir + "/slab_size", limit: ProcFile.Limit.small).text,
              let n = Int(text.trimmingWhitespaceAndNewlines()),
              (1...SlabInfoParser.maxObjectSize).contains(n) else { return nil }
        return n
    }

    /// Every file under `sys/net/ipv4/vs`, by name.
    func readSysctls() -> ([Sysctl], [String]) {
        let dir = path("sys/net/ipv4/vs")
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else {
            return ([], ["\(dir): not readable; no sysctls"])
        }
        var out: [Sysctl] = []
        var unreadable: [String] = []
        var refused: [String] = []
        var outOfRange: [String] = []
        for name in names.sorted() {
            // Some entries are write-only (e.g. on some kernels), others need root; a FIFO,
            // a device or an endless file is refused (ProcFile), and said apart.
            let r: (text: String, read: FileRead)
            do {
                r = try ProcFile.readText(dir + "/" + name, limit: ProcFile.Limit.small)
            } catch let e as ProcReadError {
                switch e {
                case .notRegular, .tooLarge: refused.append("\(e)")
                default: unreadable.append(name)
                }
                continue
            } catch {
                unreadable.append(name)
                continue
            }
            let value = r.text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            let sysctl = Sysctl(name: name, value: value)
            // Every IPVS sysctl is a C int: a larger integer is not the kernel's, and
            // `integerValue` gives none for it (it stays text, named here).
            let digits = value.hasPrefix("-") ? value.dropFirst() : Substring(value)
            if sysctl.integerValue == nil, !digits.isEmpty, digits.allSatisfy({ ("0"..."9").contains($0) }) {
                outOfRange.append("\(name)=\(value.prefix(24))")
            }
            out.append(sysctl)
        }
        var warnings: [String] = []
        if !unreadable.isEmpty { warnings.append("sysctls not readable: \(unreadable.joined(separator: ", "))") }
        warnings += refused
        if !outOfRange.isEmpty {
            warnings.append("\(outOfRange.count) sysctl value(s) outside the kernel's int range, not used as numbers: \(outOfRange.joined(separator: ", "))")
        }
        return (out, warnings)
    }

    /// CONFIG_HZ of the kernel that wrote the tree: the running kernel's for /proc; for a
    /// capture, the kernel named by its `sys/kernel/osrelease`, when this machine has that
    /// kernel's config. Searched in order: `/boot/config-<release>` (Debian up to 6.x),
    /// `/usr/lib/modules/<release>/config` (Debian's 7.x packages), then the tree's own
    /// `config.gz` (kernels built with CONFIG_IKCONFIG_PROC; gzip, read through zlib).
    ///
    /// A CONFIG_HZ outside `KernelConfigParser.plausible` is rejected with a warning (the
    /// second value): it would turn every persistence timeout into a wrong number of
    /// seconds. The config file is read like a /proc file: regular files only, capped.
    func kernelConfigHZ() -> (TickRate?, String?) {
        let release = (try? ProcFile.readText(path("sys/kernel/osrelease"), limit: ProcFile.Limit.small))?.text
            .trimmingWhitespaceAndNewlines()
        var candidates: [(file: String, gzip: Bool)] = []
        if let release, !release.isEmpty, !release.contains("/"), release != ".", release != ".." {
            candidates += options.kernelConfigDirs.map { ("\($0)/config-\(release)", false) }
            candidates += options.moduleDirs.map { ("\($0)/\(release)/config", false) }
        }
        candidates.append((path("config.gz"), true))
        var why: String?
        for (file, gzip) in candidates {
            let text: String?
            if gzip {
                text = try? ProcFile.readGzipText(file, limit: Self.configLimit)
            } else {
                text = (try? ProcFile.readText(file, limit: Self.configLimit))?.text
            }
            guard let text, let raw = KernelConfigParser.raw(text) else { continue }
            if KernelConfigParser.plausible.contains(raw) {
                return (TickRate(hz: raw, origin: .kernelConfig), nil)
            }
            why = "\(file): CONFIG_HZ=\(raw) is not a plausible tick rate (\(KernelConfigParser.plausible.lowerBound)-\(KernelConfigParser.plausible.upperBound)); ignored (pass --hz)"
        }
        return (nil, why)
    }

    /// A kernel config is ~300 KB; 16 MiB is far past any.
    static let configLimit = 16 << 20

    /// HZ as /proc's jiffies over netlink's seconds for the same persistent service; only
    /// when every such pair agrees.
    static func hzFromNetlink(proc: [VirtualService], netlink: [VirtualService]) -> Int? {
        var found: Int?
        for p in proc {
            guard let j = p.persistence?.timeoutJiffies, j > 0,
                  let n = netlink.first(where: { $0.key == p.key || Self.sameFwmark($0.key, p.key) }),
                  let s = n.persistence?.timeoutSeconds, s > 0, j % s == 0 else { continue }
            let hz = Int(j / s)
            if let f = found, f != hz { return nil }
            found = hz
        }
        return found
    }

    static func sameFwmark(_ a: ServiceKey, _ b: ServiceKey) -> Bool {
        if case .fwmark(let m1, _) = a, case .fwmark(let m2, _) = b { return m1 == m2 }
        return false
    }

    /// Reads the whole connection table. Costs the kernel time that grows with the table
    /// (quadratically on kernels before the bucket cursor): call it no more often than
    /// `ConnectionTablePacer` allows.
    public func readConnections(expectedEntries: Int = 0, preferSync: Bool = false) throws -> ConnectionTable {
        var file = "net/ip_vs_conn"
        if preferSync && FileManager.default.fileExists(atPath: path("net/ip_vs_conn_sync")) {
            file = "net/ip_vs_conn_sync"
        }
        let full = path(file)
        var parser = ConnectionTableParser(expectedEntries: Self.reservation(expectedEntries: expectedEntries, fileSize: ProcFile.sizeHint(full)))
        // A capture's table was read when the capture says.
        let readAt = (options.isLive ? nil : try Self.loadCapture(options.procRoot)?.tableReadAt) ?? Date()
        // The live table overlapped: the kernel formats rows on one thread while this one
        // parses (see `streamLinesOverlapped`); a captured file has no kernel work to hide.
        let consume = { (lines: UnsafeBufferPointer<UInt8>, unterminated: Bool) in parser.consume(lines, unterminated: unterminated) }
        let cost = try options.isLive ? ProcFile.streamLinesOverlapped(full, consume) : ProcFile.streamLines(full, consume)
        return parser.table(file: String(file.dropFirst(4)), readAt: readAt, cost: cost)
    }

    /// Reads the table and checks it is whole (`TableCheck`): against `ip_vs_status`'s
    /// `Conns` read before and after it where readable, else against the real servers'
    /// counters of `services`. A partial read is read again at once while the round's time,
    /// with another read as costly as the last, stays within `budget` seconds and fewer
    /// than `maxAttempts` reads were made; the last read is returned, its completeness set.
    public func readConnectionsChecked(services: Snapshot?, budget: Double, maxAttempts: Int = 3) throws -> ConnectionTable {
        let expected = services.map(Self.expectedEntries) ?? 0
        let preferSync = !(services?.syncDaemons ?? []).isEmpty
        let counters = services.flatMap(TableCheck.serverCounts)
        let cps = services?.global?.rates.cps
        var spent = 0.0
        var attempt = 0
        while true {
            attempt += 1
            let before = kernelEntryCount()
            var table = try readConnections(expectedEntries: expected, preferSync: preferSync)
            let after = before == nil ? nil : kernelEntryCount()
            let end = Date()
            let cost = max(table.cost.seconds, table.cost.cpuSeconds)
            spent += cost
            var counts = TableCheck.Counts(kernelBefore: before, kernelAfter: after, connectionsPerSecond: cps, seconds: cost)
            counts.entriesPerConnection = (services?.services ?? []).contains { $0.persistence != nil } ? 2 : 1
            if before == nil, let counters, let taken = services?.takenAt {
                counts.serverConnections = counters.connections
                counts.serverTemplates = counters.templates
                counts.seconds = max(cost, end.timeIntervalSince(taken))
            }
            let verdict = TableCheck.judge(connections: table.counts.connections, templates: table.counts.templates,
                                           truncatedText: table.skipped.unterminated, counts: counts, attempts: attempt)
            table.completeness = verdict
            if !verdict.isPartial || attempt >= maxAttempts || spent + cost > budget { return table }
        }
    }

    /// Warnings for a table read: skipped lines, a partial read.
    public static func tableWarnings(_ t: ConnectionTable) -> [String] {
        var out: [String] = []
        if t.skipped.total > 0 {
            out.append(
                "\(t.file): skipped \(t.skipped.total) line(s) (\(t.skipped.malformed) malformed or truncated, \(t.skipped.unknownProtocol) unknown protocol, \(t.skipped.unknownState) unknown state): \(t.skipped.examples.joined(separator: " | "))")
        }
        if let c = t.completeness, c.isPartial {
            out.append("\(t.file): PARTIAL table after \(c.attempts) read(s): \(c.detail); every figure from it counts only the entries read")
        }
        return out
    }

    /// Services and the connection table, read now.
    public func snapshot(connections: Bool = true) throws -> Snapshot {
        var snap = try readServices()
        guard connections else { return snap }
        do {
            // One-shot: a partial read is retried while the round stays within 2 s.
            let t = try readConnectionsChecked(services: snap, budget: 2)
            snap.source.warnings += Self.tableWarnings(t)
            snap.connections = t
        } catch {
            snap.source.warnings.append("connection table: \(error)")
            snap.source.unavailable.append("connections")
        }
        return snap
    }

    /// Roughly how many entries the table holds, from the real servers' counters, so the
    /// entry array is allocated once instead of doubling (which would double the peak).
    /// Counters are UInt32 and summed in Int (64-bit): no overflow for any real count;
    /// the sum saturates all the same, and `reservation` caps what is reserved from it.
    static func expectedEntries(_ s: Snapshot) -> Int {
        var n = 0
        for svc in s.services {
            for rs in svc.realServers {
                let c = Int(rs.activeConns) + Int(rs.inactiveConns) + Int(rs.persistentConns ?? 0)
                n = n.addingReportingOverflow(c).overflow ? Int.max : n + c
            }
        }
        return n > Int.max / 2 ? Int.max : n + n / 4
    }

    /// Entries the largest reservation made from counters alone may hold: 2^22 entries are
    /// 256 MiB of address space (pages are only touched as rows are read). A larger table
    /// grows past it by doubling, as it is read; a count the kernel never reached (one
    /// forged InActConn of 4294967295) costs nothing more.
    static let maxCountedReservation = 1 << 22

    /// What to reserve for the table: the counters' estimate capped at
    /// `maxCountedReservation`, and for a regular file (a capture) at what its size can
    /// hold (a row is at least 48 bytes), with its size's ~64 bytes a row as the floor.
    static func reservation(expectedEntries: Int, fileSize: Int?) -> Int {
        let counted = min(max(0, expectedEntries), maxCountedReservation)
        guard let size = fileSize else { return counted }
        return min(max(counted, size / 64), size / 48 + 1)
    }
}
