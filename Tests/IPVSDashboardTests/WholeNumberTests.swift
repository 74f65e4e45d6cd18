import Foundation
import IPVSAnalysis
import IPVSDemo
import IPVSFeed
import IPVSModel
import IPVSReader
import IPVSTestSupport
import Testing
@testable import IPVSDashboard

// Issue 22, section 1: a number is shown whole or not at all. Every screen is drawn at four
// terminal sizes, scaled and exact, from the demo director and from a tree whose counters
// are near 2^64 and whose addresses are long IPv6; every number on the screen is parsed and
// checked against what the snapshot (and its analysis) hold.

/// Every figure a screen may show: each integer and (rounded) fraction the snapshot and its
/// analysis hold, the digit runs of their texts, and the sums the summary line shows.
struct Truth {
    var exact: Set<String> = []
    var scaled: Set<String> = []

    mutating func add(_ v: UInt64) {
        exact.insert(String(v))
        scaled.insert(Format.count(v, exact: false))
    }

    mutating func add(_ d: Double) {
        guard d.isFinite else { return }
        let r = d.rounded()
        if r >= 0 {
            let v = r >= 18_446_744_073_709_551_615.0 ? UInt64.max : UInt64(r)
            add(v)
            scaled.insert(Format.rate(d, exact: false))
        } else if r > -9e18 {
            exact.insert(String(Int64(r)))
        }
    }

    mutating func addDigits(_ s: String) {
        var run = ""
        for c in s.unicodeScalars {
            if ("0"..."9").contains(c) { run.unicodeScalars.append(c) } else if !run.isEmpty { addRun(run); run = "" }
        }
        if !run.isEmpty { addRun(run) }
    }

    mutating func addRun(_ r: String) {
        if let v = UInt64(r) { add(v) } else { exact.insert(r) }
    }

    /// Walks any value with Mirror, collecting its numbers.
    mutating func collect(_ x: Any, depth: Int = 0) {
        guard depth < 30 else { return }
        switch x {
        case let v as any BinaryInteger:
            exact.insert(String(describing: v))
            if let u = UInt64(exactly: v) { add(u) }
        case let d as Double: add(d)
        case let s as String: addDigits(s)
        case is Date: return
        default:
            for c in Mirror(reflecting: x).children { collect(c.value, depth: depth + 1) }
        }
    }

    init(_ s: Snapshot, _ a: Analysed?) {
        collect(s)
        if let a { collect(a) }
        add(UInt64(s.services.reduce(0) { $0 + $1.activeConns }))
        add(UInt64(s.services.reduce(0) { $0 + $1.inactiveConns }))
        if let m = s.connectionMemoryBytes { add(UInt64(m)) }
        for svc in s.services {
            if let p = svc.persistentConns { add(UInt64(p)) }
            add(UInt64(svc.activeConns))
            add(UInt64(svc.inactiveConns))
            add(UInt64(svc.realServers.count))
        }
    }
}

/// The problems with the numbers on one screen (empty: every number is whole and true).
func numberProblems(_ text: String, _ truth: Truth, ellipsis: Character = "…") -> [String] {
    var problems: [String] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        let c = Array(line.unicodeScalars)
        func digit(_ i: Int) -> Bool { i >= 0 && i < c.count && ("0"..."9").contains(c[i]) }
        func letter(_ i: Int) -> Bool { i >= 0 && i < c.count && c[i].properties.isAlphabetic }
        var i = 0
        while i < c.count {
            // A number cut at the edge of its column: digits and then the ellipsis.
            // (An address cut after a dot or a colon is a cut number too.)
            var j = i - 1
            while j >= 0 && ".:/[]".unicodeScalars.contains(c[j]) { j -= 1 }
            if Character(c[i]) == ellipsis, digit(j) {
                problems.append("a number cut short: \(line)")
            }
            // A path (the tree read, a file): names, not figures.
            if c[i] == "/" && (i == 0 || c[i - 1] == " ") {
                while i < c.count && c[i] != " " { i += 1 }
                continue
            }
            guard digit(i) else { i += 1; continue }
            let start = i
            while digit(i) { i += 1 }
            let run = String(String.UnicodeScalarView(c[start..<i]))
            // Part of a word (a hex group, `3m10s`, `0.4s`), a fraction or a time of day:
            // only the long integers and the scaled ones are checked.
            let unit = i < c.count && "KMGTPE".unicodeScalars.contains(c[i])
                && ((!letter(i + 1) && !digit(i + 1)) || (i + 1 < c.count && c[i + 1] == "B" && !letter(i + 2) && !digit(i + 2)))
            let inWord = letter(start - 1) || (letter(i) && !unit)
            let fraction = start > 0 && c[start - 1] == "." && digit(start - 2)
            if inWord || fraction { continue }
            if i < c.count && c[i] == "." && digit(i + 1) { i += 1; while digit(i) { i += 1 }; continue }
            if unit {
                let shown = run + String(Character(c[i]))
                if !truth.scaled.contains(shown) { problems.append("\(shown) is no figure of the snapshot: \(line)") }
                i += 1
            } else if run.count >= 5 && !truth.exact.contains(run) {
                problems.append("\(run) is no figure of the snapshot: \(line)")
            }
        }
    }
    return problems
}

/// Draws every screen (scrolled through, and each finding's details) at each size, scaled
/// and exact; returns the problems found.
func checkEveryScreen(_ d: Dashboard, _ truth: Truth) -> [String] {
    var problems: [String] = []
    let sizes = [(80, 24), (100, 30), (120, 40), (200, 60)]
    for exact in [false, true] {
        d.exact = exact
        for id in ScreenID.allCases {
            d.handle(.char(Character(String(id.rawValue))))
            for (w, h) in sizes {
                var frames = [d.render(width: w, height: h).text]
                // Scroll or step through what the screen holds, a page at a time.
                for _ in 0..<6 {
                    d.handle(.pageDown)
                    frames.append(d.render(width: w, height: h).text)
                }
                d.handle(.home)
                if id == .services {
                    // The cumulative counters and thresholds (c).
                    d.handle(.char("c"))
                    frames.append(d.render(width: w, height: h).text)
                    d.handle(.char("c"))
                    // The history panel of the first real servers (H).
                    d.handle(.char("H"))
                    for _ in 0..<3 {
                        d.handle(.down)
                        frames.append(d.render(width: w, height: h).text)
                    }
                    d.handle(.char("H"))
                    d.handle(.home)
                }
                if id == .findings {
                    for _ in 0..<8 {
                        d.handle(.down)
                        frames.append(d.render(width: w, height: h).text)
                    }
                    d.handle(.home)
                }
                for f in frames {
                    // Help's figures are examples: only the cut check applies there.
                    for p in numberProblems(f, truth) where id != .help || p.hasPrefix("a number cut") { problems.append("\(id.title) \(w)x\(h)\(exact ? " exact" : ""): \(p)") }
                }
            }
        }
    }
    return problems
}

/// A director at the limits: counters near 2^64, connection counts near 2^31, the longest
/// IPv6 endpoints, read from a tree as `--proc-root` reads one; then (what only netlink
/// gives) stats, rates and PersistConn near their limits on every service and real server.
func hugeSnapshot() throws -> Snapshot {
    let v6 = "2001:0db8:85a3:1234:5678:9abc:def0:"
    var services = KernelText.ipvsHeader
    services += KernelText.service6("TCP", v6 + "1234", 65535, "wlc")
    services += KernelText.dest6("fd00:0000:0000:ffff:0000:0000:ffff:0001", 65534, "Masq", 65535, 2_147_483_647, 2_147_483_646)
    services += KernelText.dest6("fd00:0000:0000:ffff:0000:0000:ffff:0002", 65533, "Route", 1, 1_234_567_890, 999_999_999)
    services += KernelText.service6("UDP", v6 + "0053", 53, "sh", persistent: (30000, UInt32(128).byteSwapped))
    services += KernelText.dest6("fd00:0000:0000:ffff:0000:0000:ffff:0003", 53, "Tunnel", 0, 2_000_000_000, 2_100_000_000)
    services += KernelText.fwmark(4_294_967_295, "rr")
    services += KernelText.dest6("fd00:0000:0000:ffff:0000:0000:ffff:0004", 0, "Masq", 7, 98_765, 123_456)
    var conns = KernelText.connHeader
    for k in 0..<30 {
        let hex = String(k, radix: 16)
        let client = "2a02:0db8:ffff:eeee:dddd:cccc:bbbb:" + String(repeating: "0", count: 4 - hex.count) + hex
        conns += KernelText.conn6("TCP", client, 65000 + UInt16(k), v6 + "1234", 65535, "fd00:0000:0000:ffff:0000:0000:ffff:0001", 65534,
                                  k % 2 == 0 ? "ESTABLISHED" : "TIME_WAIT", 899_999 + UInt64(k))
    }
    let stats = """
           Total Incoming Outgoing         Incoming         Outgoing
           Conns  Packets  Packets            Bytes            Bytes
        FFFFFFFFFFFFFF01 FFFFFFFFFFFFFE02 FFFFFFFFFFFFFD03 FFFFFFFFFFFFFC04 FFFFFFFFFFFFFB05

         Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s
        7FFFFFFFFFFF0001 7FFFFFFFFFFF0002 7FFFFFFFFFFF0003 7FFFFFFFFFFF0004 7FFFFFFFFFFF0005

        """
    let tree = try ProcTree([
        "net/ip_vs": services,
        "net/ip_vs_conn": conns,
        "net/ip_vs_stats": stats,
        "sys/net/ipv4/vs/amemthresh": "2147483647\n",
        "sys/net/ipv4/vs/sync_threshold": "3\t50\n",
        "sys/kernel/osrelease": "6.12.0-1-cloud-amd64-with-a-rather-long-release-string\n",
    ])
    var s = try SnapshotReader(options: ReaderOptions(procRoot: tree.root, useNetlink: false, kernelConfigDirs: [])).snapshot()
    var n: UInt64 = 0
    func hugeStats() -> TrafficStats {
        n += 1
        return TrafficStats(conns: UInt64.max - n, inPackets: UInt64.max - 1_000 * n, outPackets: 18_000_000_000_000_000_000 + n,
                            inBytes: 12_345_678_901_234_567_890 + n, outBytes: 66_429_831_123_456_789 + n)
    }
    func rates() -> TrafficRates {
        TrafficRates(cps: 4_294_967_296, inPPS: 123_456_789_012, outPPS: 9_876_543_210_987, inBPS: 1.25e17, outBPS: 4.6e18)
    }
    for i in s.services.indices {
        s.services[i].stats = hugeStats()
        s.services[i].rates = rates()
        for j in s.services[i].realServers.indices {
            s.services[i].realServers[j].stats = hugeStats()
            s.services[i].realServers[j].rates = rates()
            s.services[i].realServers[j].persistentConns = UInt32.max - UInt32(j)
        }
    }
    return s
}

@Test func theCheckFindsACutNumber() {
    var t = Truth(DemoDirector().snapshot(at: DemoDirector.warmTime), nil)
    t.add(UInt64(66_429_831_123))
    #expect(numberProblems("bytes out  66429831123", t).isEmpty)
    #expect(!numberProblems("bytes out  66429831", t).isEmpty)
    #expect(!numberProblems("client 198.51.100.77:59…", t).isEmpty)
    #expect(!numberProblems("client 198.51…", t).isEmpty)
    #expect(!numberProblems("client 198.51.…", t).isEmpty)
    #expect(numberProblems("client …", t).isEmpty)
    #expect(!numberProblems("rate 66430M", t).isEmpty)
    #expect(numberProblems("rate 66G", t).isEmpty)
    #expect(numberProblems("bytes 66GB", t).isEmpty)
    #expect(numberProblems("read from  /tmp/ipvstop-test-8EB446F2-544A-41EB-8BED", t).isEmpty)
}

@Test func clippingNeverCutsANumber() {
    #expect("client 198.51.100.77:59626".clipped(24, .unicode) == "client …")
    #expect("TIME_WAIT 962, ESTABLISHED 12".clipped(21, .unicode) == "TIME_WAIT 962, ESTAB…")
    #expect("192.168.3.3:53 15, 192.168.3.2:53 13".clipped(26, .unicode) == "192.168.3.3:53 15, …")
    #expect("4657151641".clipped(5, .unicode) == "…")
    #expect("via [2001:db8::dead:beef]:80".clipped(15, .unicode) == "via …")
    #expect("a:dead:beef".clipped(6, .unicode) == "…")
    #expect("hello world".clipped(8, .unicode) == "hello w…")
}

@Test func everyScreenShowsNumbersWholeFromTheDemo() {
    let d = demoDashboard()
    let s = d.snapshot!
    let truth = Truth(s, d.worker.latest)
    let problems = checkEveryScreen(d, truth)
    #expect(problems.isEmpty, "\(problems.count) problems, first: \(problems.prefix(10).joined(separator: "\n"))")
}

@Test func everyScreenShowsNumbersWholeAtTheLimits() throws {
    let s = try hugeSnapshot()
    let d = Dashboard(source: FixedSource(s), worker: AnalysisWorker(), glyphs: .unicode)
    d.pump()
    for _ in 0..<250 where d.worker.isRunning { usleep(20_000); d.pump() }
    let truth = Truth(s, d.worker.latest)
    let problems = checkEveryScreen(d, truth)
    #expect(problems.isEmpty, "\(problems.count) problems, first: \(problems.prefix(10).joined(separator: "\n"))")
    // The largest figures are on the screen, whole, in exact mode.
    d.exact = true
    d.handle(.char("6"))
    let kernel = d.render(width: 200, height: 60).text
    #expect(kernel.contains(String(UInt64(0xFFFF_FFFF_FFFF_FB05))))
    d.handle(.char("1"))
    let services = d.render(width: 200, height: 60).text
    #expect(services.contains("2147483647"))
    #expect(services.contains("[fd00:0000:0000:ffff:0000:0000:ffff:0001]:65534") || services.contains("[fd00::ffff:0:0:ffff:1]:65534"))
    // At 80 columns the address, weight, ActiveConn and InActConn of a real server stay.
    d.exact = false
    let narrow = d.render(width: 80, height: 24)
    let header = (0..<24).map { narrow.line($0) }.first { $0.contains("ActConn") } ?? ""
    for col in ["Service / real server", "Wt", "ActConn", "InAct"] { #expect(header.contains(col), "\(col) missing at 80x24: \(header)") }
    // The longest client addresses stay whole at 80 columns: other columns leave first.
    for key in ["3", "4"] {
        d.handle(.char(Character(key)))
        #expect(d.render(width: 80, height: 24).text.contains("2a02:db8:ffff:eeee:dddd:cccc:bbbb:0"), "screen \(key)")
    }
}

@Test func keyBarKeepsHelpAndQuit() {
    let d = demoDashboard()
    for w in [80, 100, 120] {
        let g = d.render(width: w, height: 24)
        #expect(g.line(23).contains("qQuit"), "\(w): \(g.line(23))")
        #expect(g.line(23).contains("hHelp"), "\(w): \(g.line(23))")
    }
}

@Test func servicesNameColumnHoldsStillWhenABadgeAppears() {
    let d = demoDashboard()
    let before = d.render(width: 120, height: 40)
    let header = (0..<40).map { before.line($0) }.first { $0.contains("Service / real server") }!
    let at = header.range(of: "Sched")?.lowerBound
    #expect(at != nil)
    // Another badge on a row: the Notes grow, the name column does not move.
    let screen = d.screen(.services) as! ServicesScreen
    let table = Table(ServicesScreen.columns)
    let rows = screen.rows(d.context).map(\.1)
    var more = rows
    more[1].cells[12] = .spans([Span("⚑rogue ⚑imbalance ⚑overstay ⚑pressure", .warn)])
    let w0 = table.layout(width: 119, measuring: rows)[0]
    let w1 = table.layout(width: 119, measuring: more)[0]
    #expect(w0 == w1)
}
