import FoundationEssentials
import IPVSModel

/// Lines of text that scroll: the Kernel and Help screens.
struct ScrollText {
    var top = 0
    var visible = 10
    /// Lines at the last draw.
    var count = 0

    mutating func handle(_ key: Key) -> Bool {
        let maxTop = max(0, count - visible)
        switch key {
        case .up, .char("k"): top -= 1
        case .down, .char("j"): top += 1
        case .pageUp: top -= max(1, visible - 1)
        case .pageDown: top += max(1, visible - 1)
        case .home, .char("g"): top = 0
        case .end, .char("G"): top = maxTop
        default: return false
        }
        top = max(0, min(top, maxTop))
        return true
    }

    /// Draws columns of lines from the scroll position: side by side at the given widths,
    /// or (widths nil) one after the other.
    mutating func draw(_ columns: [[[Span]]], widths: [Int]?, into g: inout Grid, rect: Rect) {
        visible = rect.height
        let lists: [[[Span]]] = widths == nil ? [columns.enumerated().flatMap { $0.offset == 0 ? $0.element : [[]] + $0.element }] : columns
        let ws = widths ?? [rect.width]
        count = lists.map(\.count).max() ?? 0
        top = max(0, min(top, max(0, count - visible)))
        var x = rect.x
        for (c, lines) in lists.enumerated() {
            let w = c < ws.count ? ws[c] : rect.maxX - x
            for row in 0..<rect.height {
                let i = top + row
                guard i < lines.count else { break }
                g.put(lines[i], x: x + 1, y: rect.y + row, limit: min(w - 1, rect.maxX - x - 1))
            }
            x += w
        }
        if count > visible {
            let more = " \(top + 1)-\(min(count, top + visible))/\(count) "
            g.put(more, x: rect.maxX - more.count - 1, y: rect.y - 1, role: .dim)
        }
    }
}

/// Screen 6: the kernel's side: version, table size and memory, timeouts, global counters
/// and rates, sync daemons, every /proc/sys/net/ipv4/vs setting with its meaning, and what
/// the last poll read.
public final class KernelScreen: Screen {
    public let id = ScreenID.kernel
    public var filter: String? = nil
    var scroll = ScrollText()

    public init() {}

    /// One line per setting of /proc/sys/net/ipv4/vs.
    static let meanings: [String: String] = [
        "am_droprate": "drop_packet drops 1 packet in N",
        "amemthresh": "free pages under which defenses start",
        "backup_only": "1: a backup only, never schedules",
        "cache_bypass": "1: to the origin when no server is free",
        "conn_lfactor": "7.1+: conn table grows past 2^N a bucket",
        "conn_max": "7.x: most connections in this netns",
        "conn_reuse_mode": "reused client port: 1 reschedules, 0 keeps",
        "conntrack": "1: keep netfilter conntrack entries",
        "debug_level": "debug messages (IP_VS_DEBUG kernels)",
        "drop_entry": "defense: drop entries at random (0..3)",
        "drop_packet": "defense: drop packets at am_droprate",
        "est_cpulist": "CPUs of the rate estimator threads",
        "est_nice": "nice of the rate estimator threads",
        "expire_nodest_conn": "1: drop deleted servers' conns; 0: they hang",
        "expire_quiescent_template": "1: weight-0 templates expire; 0: they stay",
        "ignore_tunneled": "1: do not schedule tunneled packets",
        "lblc_expiration": "lblc: seconds before an idle entry expires",
        "lblcr_expiration": "lblcr: seconds before an idle entry expires",
        "nat_icmp_send": "1: ICMP errors for NAT conns without server",
        "pmtu_disc": "1: path MTU discovery in tunnel mode",
        "run_estimation": "1: compute rates; 0 turns all rates off",
        "schedule_icmp": "1: schedule ICMP to real servers",
        "secure_tcp": "defense: stricter TCP timeouts (0..3)",
        "sloppy_sctp": "1: SCTP conns from any packet (failover)",
        "sloppy_tcp": "1: TCP conns from any packet, not only SYN",
        "snat_reroute": "1: route NAT replies by their source",
        "sync_persist_mode": "1: sync only persistent services' templates",
        "sync_ports": "sync threads and sockets",
        "sync_qlen_max": "most sync messages queued",
        "sync_refresh_period": "re-sync an unchanged entry every N s (0 off)",
        "sync_retries": "re-sends of a sync message (0..3)",
        "sync_sock_size": "sync socket buffer size (0: default)",
        "sync_threshold": "sync at the Nth packet, then every Mth",
        "svc_lfactor": "7.1+: service table grows past 2^N a bucket",
        "sync_version": "sync protocol version (0: before 2.6.39)",
    ]

    /// "8 bits, lfactor -4: grows past 1/16 a bucket".
    static func tableNote(_ t: HashTableStatus) -> String {
        // An idle 7.x (no service) has no table at all: "0 (0 bits, lfactor 0)".
        if t.buckets == 0 { return "no table (no service yet)" }
        let load = t.growthLoad >= 1 ? "\(Int(t.growthLoad))" : "1/\(Int((1 / t.growthLoad).rounded()))"
        return "\(t.bits) bits, lfactor \(t.loadFactor): grows past \(load) a bucket"
    }

    /// "empty 96%, 1: 18322, 2: 329, 7+: 1" from the kernel's bucket counts.
    static func chains(_ t: HashTableStatus) -> String? {
        guard t.emptyBuckets != nil || !t.bucketsByLength.isEmpty else { return nil }
        var parts: [String] = []
        if let e = t.emptyBuckets, t.buckets > 0 { parts.append("empty \(e * 100 / t.buckets)%") }
        for (len, n) in t.bucketsByLength.sorted(by: { $0.key < $1.key }) { parts.append("\(len)\(len >= 7 ? "+" : ""): \(n)") }
        return parts.joined(separator: ", ")
    }

    /// The sysctl column: name, value and meaning in 78 columns.
    static let sysctlWidth = 78

    func lines(_ ctx: ViewContext, width: Int) -> [[[Span]]] {
        guard let s = ctx.snapshot else { return [[[Span("Waiting for the first snapshot...", .dim)]]] }
        let x = ctx.exact
        func head(_ t: String) -> [Span] { [Span(t, .group, bold: true)] }
        var left: [[Span]] = [head("IPVS")]
        // A name, its value, and a note wrapped under the value when the line is full.
        func kv(_ k: String, _ v: String, _ note: String = "", _ role: Role = .normal) -> [Span] {
            let key = 20
            var first = [Span(k.padded(key), .dim), Span(v, role, bold: true)]
            guard !note.isEmpty else { return first }
            let room = width - 2 - key - v.columns - 2
            if note.columns <= room {
                first.append(Span("  " + note, .dim))
                return first
            }
            left.append(first)
            // Under the value; nearer the left edge when a word of the note (a number with
            // x) would not fit there whole.
            let longest = note.split(separator: " ").map { $0.unicodeScalars.count }.max() ?? 0
            let indent = longest <= width - 2 - key - 2 ? key + 2 : 4
            let more = wrap(note, max(10, width - 2 - indent))
            for l in more.dropLast() { left.append([Span(String(repeating: " ", count: indent)), Span(l, .dim)]) }
            return [Span(String(repeating: " ", count: indent)), Span(more.last ?? "", .dim)]
        }
        if let i = s.info {
            left.append(kv("version", i.version))
            left.append(kv("hash table size", Format.count(i.tableSize, exact: true), "buckets"))
        } else {
            left.append(kv("version", "?", "", .dim))
        }
        if let t = s.tickRate { left.append(kv("kernel HZ", "\(t.hz)", "from \(t.origin.rawValue)")) }
        // The kernel's own account of its tables (ip_vs_status, 7.1+; root only).
        let live = s.kernelStatus.status?.connTable.flatMap { $0.buckets > 0 ? $0 : nil }
        switch s.kernelStatus {
        case .read(let st):
            if let n = st.conns { left.append(kv("kernel entries", Format.count(n, exact: x), "ip_vs_status Conns")) }
            if let t = st.connTable { left.append(kv("conn buckets", Format.count(t.buckets, exact: true), Self.tableNote(t))) }
            if let t = st.connTable, let dist = Self.chains(t) { left.append(kv("conn chains", dist)) }
            if let n = st.services { left.append(kv("services", "\(n)")) }
            if let t = st.serviceTable { left.append(kv("service buckets", Format.count(t.buckets, exact: true), Self.tableNote(t))) }
            if let n = st.statsThreadSlots {
                left.append(kv("stats threads", "\(n)" + (st.statsThreadSlotsMax.map { " of \($0)" } ?? ""),
                               st.statsThreadEstimators.map { "\($0) estimators a thread" } ?? ""))
            }
            if !st.unknownLines.isEmpty { left.append(kv("status lines", "\(st.unknownLines.count) more", "not known to this version", .dim)) }
        case .unavailable(let why):
            left.append(kv("ip_vs_status", "unavailable", why, .warn))
        case .absent:
            break
        }
        if let t = s.connections {
            left.append(kv("entries", Format.count(t.entries.count, exact: x), "\(Format.count(t.counts.connections, exact: x)) connections, \(Format.count(t.counts.templates, exact: x)) templates"))
            if let c = t.completeness, c.isPartial {
                left.append(kv("table read", "PARTIAL", c.detail, .crit))
            }
            if let size = live?.buckets ?? s.info.flatMap({ $0.tableSize > 0 ? $0.tableSize : nil }) {
                left.append(kv("entries per bucket", Format.fixed(Double(t.entries.count) / Double(size), 1), live != nil ? "of the buckets in use (ip_vs_status)" : ""))
            }
            // Every state, as many to a line as fit: a state is never cut off the edge.
            let states = t.counts.byState.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.name < $1.key.name }.map { "\($0.key.name) \(Format.count($0.value, exact: x))" }
            for (i, l) in wrap(states.joined(separator: ", "), max(10, width - 2 - 20)).enumerated() {
                left.append(kv(i == 0 ? "by state" : "", l))
            }
            left.append(kv("table read", Format.cost(t.cost.seconds), "\(Format.byteCount(t.cost.bytes, exact: x)) in \(t.cost.readCalls) read(s), cpu \(Format.cost(t.cost.cpuSeconds)), \(t.file)"))
        }
        if let slab = s.slab {
            left.append(kv("entry size", "\(slab.objectSize) B", "slab ip_vs_conn (\(slab.origin))"))
            if let m = s.connectionMemoryBytes { left.append(kv("table memory", Format.byteCount(m, exact: x), "entries x entry size")) }
        } else {
            left.append(kv("table memory", "?", "slabinfo is root's only", .dim))
        }
        left.append([])
        left.append(head("Timeouts"))
        if let t = s.timeouts {
            left.append(kv("tcp / tcpfin / udp", "\(t.tcp) / \(t.tcpFin) / \(t.udp) s"))
        } else {
            left.append(kv("tcp / tcpfin / udp", "?", "netlink only", .dim))
        }
        left.append([])
        // One unit system on this screen: K, M, G are powers of 1000, for bytes too.
        left.append(head("Totals and rates") + [Span(x ? "  every digit" : "  K M G = 10^3 10^6 10^9", .dim)])
        if let gs = s.global {
            let a = gs.totals, r = gs.rates
            left.append(kv("connections", Format.count(a.conns, exact: x), Format.rate(r.cps, exact: x) + "/s"))
            // One figure a line: 20 digits each with x, and never cut by the column's edge.
            left.append(kv("packets in", Format.count(a.inPackets, exact: x), Format.rate(r.inPPS, exact: x) + " pps"))
            left.append(kv("packets out", Format.count(a.outPackets, exact: x), Format.rate(r.outPPS, exact: x) + " pps"))
            left.append(kv("bytes in", Format.byteCount(a.inBytes, exact: x), Format.rate(r.inBPS, exact: x) + "B/s"))
            left.append(kv("bytes out", Format.byteCount(a.outBytes, exact: x), Format.rate(r.outBPS, exact: x) + "B/s"))
            if let per = gs.perCPU { left.append(kv("CPUs counting", "\(per.count)")) }
        } else {
            left.append(kv("global stats", "?", "net/ip_vs_stats unreadable", .dim))
        }
        left.append([])
        left.append(head("Sync daemons"))
        if let ds = s.syncDaemons {
            if ds.isEmpty { left.append([Span("none running", .dim)]) }
            for d in ds {
                var t = "\(d.role.rawValue) on \(d.multicastInterface), syncid \(d.syncID)"
                if let gr = d.multicastGroup { t += ", group \(gr)" + (d.multicastPort.map { ":\($0)" } ?? "") }
                if let m = d.maxLength { t += ", maxlen \(m)" }
                left.append([Span(t)])
            }
        } else {
            left.append([Span("unknown without netlink", .dim)])
        }
        left.append([])
        left.append(head("This poll"))
        switch s.source.netlink {
        case .used(_, let c): left.append(kv("netlink", "used", Format.cost(c.seconds)))
        case .off(let why): left.append(kv("netlink", "off", why, .warn))
        case .unavailable(let why): left.append(kv("netlink", "unavailable", why, .warn))
        }
        left.append(kv("read from", s.source.procRoot))
        if let a = ctx.analysis {
            left.append(kv("analysis", Format.cost(a.seconds), "this process, last table"))
        }
        for f in s.source.files {
            left.append(kv("  " + f.name, Format.cost(f.cost.seconds), Format.byteCount(f.cost.bytes, exact: x)))
        }
        if !s.source.unavailable.isEmpty {
            for l in wrap("not available: " + s.source.unavailable.joined(separator: ", "), width - 2) { left.append([Span(l, .warn)]) }
        }
        for w in s.source.warnings {
            for l in wrap(TerminalText.escaped(w, keepLineBreaks: false), width - 2) { left.append([Span(l, .warn)]) }
        }

        var right: [[Span]] = [head("/proc/sys/net/ipv4/vs")]
        if s.sysctls.isEmpty { right.append([Span("not readable", .dim)]) }
        for c in s.sysctls {
            let v = c.value.replacingEvery("\t", with: " ")
            right.append([Span(c.name.padded(26), .dim), Span(v.padded(6), bold: true), Span(" " + (Self.meanings[c.name] ?? ""), .normal)])
        }
        return [left, right]
    }

    public func draw(_ ctx: ViewContext, into g: inout Grid, rect: Rect) {
        drawTitle(&g, rect, [Span(" The kernel's IPVS", bold: true), Span("  settings, counters, and what reading them cost", .dim)], reserve: 14)
        // Side by side when the settings and their meanings fit beside 40 columns.
        if rect.width >= Self.sysctlWidth + 41 {
            let leftWidth = rect.width - Self.sysctlWidth
            scroll.draw(lines(ctx, width: leftWidth), widths: [leftWidth, Self.sysctlWidth], into: &g, rect: rect.dropTop(1))
        } else {
            scroll.draw(lines(ctx, width: rect.width), widths: nil, into: &g, rect: rect.dropTop(1))
        }
    }

    public func handle(_ key: Key, _ ctx: ViewContext) -> KeyResult {
        scroll.handle(key) ? .handled : .ignored
    }
}

/// Screen 7: every key, and how to read the screens.
public final class HelpScreen: Screen {
    public let id = ScreenID.help
    public var filter: String? = nil
    var scroll = ScrollText()

    public init() {}

    static let keys: [(String, String)] = [
        ("1 .. 7", "Services, Templates, Clients, Connections, Findings, Kernel, Help"),
        ("Tab / S-Tab", "next / previous screen"),
        ("Up Down j k", "move the cursor"),
        ("PgUp PgDn", "a page up or down"),
        ("Home End g G", "first, last"),
        ("Enter", "drill down: a service or real server to its templates or connections, a template to its connections, a client to its connections, a finding to its subject"),
        ("Esc", "back from a drill-down; else clear the filter"),
        ("/  F3 F4", "filter this screen (Enter applies, Esc cancels, Ctrl-U clears)"),
        ("s  > <  F6", "sort by the next / previous column"),
        ("I  r", "reverse the sort"),
        ("t", "on Services: the templates of a service or real server"),
        ("H", "on Services: the selected real server's last minutes: ActiveConn and new connections/s as sparklines, its weight and when it last changed"),
        ("c", "on Services: cumulative counters (conns, packets, bytes in/out, as ipvsadm -L --stats) and each real server's thresholds -x/-y, instead of rates and shares"),
        ("p  space", "pause polling: the screen holds its snapshot"),
        ("d", "set the delay between polls (also -d SECONDS)"),
        ("[  ]", "replay: a frame back / forth (pauses); the status line shows frame N/M"),
        ("+  -", "replay: twice / half the pace (1/4x to 64x)"),
        ("J", "replay: go to a time (HH:MM:SS, YYYY-MM-DD HH:MM:SS), a frame (#N) or +/-seconds"),
        ("x", "every digit, or numbers scaled with K, M, G (see Numbers)"),
        ("Ctrl-L", "redraw the terminal"),
        ("h ?  F1", "this help"),
        ("q  F10", "quit"),
    ]

    func lines(_ ctx: ViewContext, width: Int) -> [[[Span]]] {
        var k: [[Span]] = [[Span("Keys", .group, bold: true)]]
        for (key, what) in Self.keys {
            let w = wrap(what, width - 17)
            for (i, l) in w.enumerated() { k.append([Span((i == 0 ? key : "").padded(14), .ok, bold: true), Span(l)]) }
        }
        let g = ctx.glyphs
        var r: [[Span]] = [[Span("Reading the screens", .group, bold: true)]]
        let notes = [
            "Share: the bar is a real server's share of its service's connections (ActiveConn + InActConn); the mark \(g.mark) is its share of the weight. A bar far from its mark is an imbalance.",
            "Badges: quiescent (weight 0), \(g.isUnicode ? "≥" : ">=")uthr (connections at the upper threshold), \(g.flag) and a finding of the analysis (rogue client, imbalance, quiescent fed, dead destination, template overstay...; the Findings screen explains each).",
            "Numbers: a counter or rate below 100000 is written whole; from 100000 on it is scaled to at most four digits, rounded down, with K, M, G, T, P, E = 10^3, 10^6, 10^9, 10^12, 10^15, 10^18 (123456 is 123K; bytes too: 661KB is 661000 to 661999 bytes). ipvsadm -L scales only from 10^8 and pads to nine columns; ipvstop scales earlier to fit a terminal. x shows every digit (ipvsadm --exact). '-' is a figure the source cannot give (no netlink), never a zero.",
            "Nothing is cut in the middle of a number: a column too narrow for its figures leaves the screen, text that does not fit ends with \(g.ellipsis) before the number it would cut. On Services the columns leave in this order: bytes/s, packets/s, Sched (scheduler; Forward for a real server), Persist, CPS, Share; the address, Wt, ActConn, InAct and Notes always stay. On Connections the Virtual column leaves first.",
            "Connections: + marks an entry new since the previous read of the table, T a persistence template (its client is the persistence group, without a port; Left is the time the template has left).",
            "Templates: time left counts down between polls; a template that controls connections does not expire (the kernel re-arms it).",
            "Filters (/): words that must all match: client:10.1. or client:172.16.5.0/24, svc:tcp:10.0.0.100:80, rs:192.168.1.3:80, state:est, proto:udp. Templates and Connections know all five; Services svc: rs: proto:; Clients and Findings svc: rs: client:. A bare word is a client prefix on the table screens, text on the others. An unknown key (foo:bar) is refused with a message.",
            "Status line: how old the snapshot is, what the poll cost, and how old the connection table is (it is read in the background, no more often than its own cost allows).",
        ]
        for n in notes {
            for l in wrap(n, width - 3) { r.append([Span(l)]) }
            r.append([])
        }
        return [k, r]
    }

    public func draw(_ ctx: ViewContext, into g: inout Grid, rect: Rect) {
        drawTitle(&g, rect, [Span(" Help", bold: true), Span("  ipvstop: a live view of an IPVS director", .dim)], reserve: 14)
        if rect.width >= 110 {
            let half = rect.width / 2
            scroll.draw(lines(ctx, width: half), widths: [half, rect.width - half], into: &g, rect: rect.dropTop(1))
        } else {
            scroll.draw(lines(ctx, width: rect.width), widths: nil, into: &g, rect: rect.dropTop(1))
        }
    }

    public func handle(_ key: Key, _ ctx: ViewContext) -> KeyResult {
        scroll.handle(key) ? .handled : .ignored
    }
}
