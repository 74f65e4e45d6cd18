import Foundation
import Testing

/// Runs the built `ipvstop` binary, as a user or a script would.
struct CLI {
    static var binary: String {
        // SwiftPM puts the test bundle and the executables side by side.
        // (Bundle.main is the build folder itself, or the .xctest bundle inside it.)
        let main = Bundle.main.bundlePath
        let candidates = [main + "/ipvstop", (main as NSString).deletingLastPathComponent + "/ipvstop"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    /// `args` starting with "--setpriv-as-nobody" run the binary as user and group nobody
    /// (65534), through util-linux's setpriv (the caller must be root).
    static func run(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        if args.first == "--setpriv-as-nobody" {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            p.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", binary] + args.dropFirst()
        } else {
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = args
        }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    static func tree(_ files: [String: String]) throws -> String {
        let root = NSTemporaryDirectory() + "ipvstop-cli-" + UUID().uuidString
        for (rel, text) in files {
            let full = root + "/" + rel
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: true, encoding: .utf8)
        }
        return root
    }
}

@Suite(.serialized) struct CLITests {
    static let ipvs = """
        IP Virtual Server version 1.2.1 (size=4096)
        Prot LocalAddress:Port Scheduler Flags
          -> RemoteAddress:Port Forward Weight ActiveConn InActConn
        UDP  0A000001:0035 rr
          -> 0A000102:0035      Masq    1      0          7
        FWM  00000002 rr persistent 15000 FFFFFFFF
          -> 0A000103:0000      Route   1      2          0

        """
    static let conn = """
        Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
        UDP C0A80105 9C40 0A000001 0035 0a000102 0035 UDP             299
        IP  C0A80105 0000 00000002 0000 0a000103 0000 NONE             59
        TCP C0A80105 9C41 0A000002 0016 0a000103 0016 ESTABLISHED     899

        """

    @Test func jsonFromACapturedTree() throws {
        let root = try CLI.tree(["net/ip_vs": Self.ipvs, "net/ip_vs_conn": Self.conn])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let r = try CLI.run(["snapshot", "--json", "--proc-root", root, "--hz", "250"])
        #expect(r.status == 0, "\(r.err)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        let services = try #require(j["services"] as? [[String: Any]])
        #expect(services.map { $0["id"] as? String } == ["udp:10.0.0.1:53", "fwmark:2"])
        #expect((services[1]["persistence"] as? [String: Any])?["timeout_s"] as? Int == 60)
        let templates = try #require(j["templates"] as? [[String: Any]])
        #expect(templates.count == 1)
        #expect(templates[0]["service"] as? String == "fwmark:2")
        #expect(templates[0]["protocol"] as? String == "fwmark")
        // The TCP connection to 10.0.0.2:22 belongs to no address service: the fwmark
        // template controls it.
        #expect(templates[0]["controlled_conns"] as? Int == 1)
        let c = try #require(j["connections"] as? [String: Any])
        #expect(c["total"] as? Int == 2)
        #expect(((j["source"] as? [String: Any])?["hz"] as? [String: Any])?["from"] as? String == "option")
    }

    @Test func textOutputLooksLikeIpvsadm() throws {
        let root = try CLI.tree(["net/ip_vs": Self.ipvs, "net/ip_vs_conn": Self.conn])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let r = try CLI.run(["snapshot", "--proc-root", root, "--hz", "250"])
        #expect(r.status == 0)
        #expect(r.out.contains("UDP  10.0.0.1:53"))
        #expect(r.out.contains("FWM  2"))
        #expect(r.out.contains("persistent 60"))
        #expect(r.out.contains("-> 10.0.1.3:0"))
        #expect(r.out.contains("no netlink"))
    }

    @Test func missingModuleIsAClearError() throws {
        let root = try CLI.tree(["net/dev": "\n"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let r = try CLI.run(["snapshot", "--json", "--proc-root", root])
        #expect(r.status == 2)
        #expect(r.out.isEmpty)
        #expect(r.err.contains("net/ip_vs does not exist"))
    }

    @Test func badOptionsAreRefused() throws {
        let r = try CLI.run(["snapshot", "--proc-root", "/nonexistent-ipvstop"])
        #expect(r.status != 0)
        #expect(r.err.contains("no such directory"))
        let h = try CLI.run(["snapshot", "--hz", "0"])
        #expect(h.status != 0)
        #expect(h.err.contains("--hz"))
        let t = try CLI.run(["snapshot", "--top", "-1"])
        #expect(t.status != 0)
    }

    // MARK: - check as a monitoring plugin

    /// Parses Monitoring Plugins performance data ('label'=value[UOM];warn;crit;min;max,
    /// space-separated, labels quoted with doubled quotes inside).
    static func perfdata(_ text: String) throws -> [String: (value: Double, uom: String)] {
        var out: [String: (Double, String)] = [:]
        var rest = Substring(text)
        while !rest.isEmpty {
            rest = rest.drop { $0 == " " }
            if rest.isEmpty { break }
            var label = ""
            if rest.first == "'" {
                rest = rest.dropFirst()
                while true {
                    let q = try #require(rest.firstIndex(of: "'"))
                    label += rest[..<q]
                    rest = rest[rest.index(after: q)...]
                    if rest.first == "'" { label += "'"; rest = rest.dropFirst() } else { break }
                }
            } else {
                let e = try #require(rest.firstIndex(of: "="))
                label = String(rest[..<e])
                rest = rest[e...]
            }
            #expect(rest.first == "=", "no = after \(label)")
            rest = rest.dropFirst()
            let end = rest.firstIndex(of: " ") ?? rest.endIndex
            let fields = rest[..<end].split(separator: ";", omittingEmptySubsequences: false)
            rest = rest[end...]
            // value[UOM];warn;crit;min;max, trailing fields optional; ipvstop gives min 0.
            #expect((1...5).contains(fields.count), "\(label): value;warn;crit;min;max")
            #expect(fields.count >= 4 && fields[3] == "0", "\(label): min 0")
            let v = fields[0]
            let num = v.prefix { $0.isNumber || $0 == "." || $0 == "-" }
            let uom = String(v.dropFirst(num.count))
            #expect(["", "s", "%", "B", "KB", "MB", "TB", "c"].contains(uom), "UOM \(uom)")
            out[label] = (try #require(Double(num)), uom)
        }
        return out
    }

    @Test func checkIsAMonitoringPlugin() throws {
        let root = try CLI.tree(["net/ip_vs": Self.ipvs, "net/ip_vs_conn": Self.conn])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let r = try CLI.run(["check", "--proc-root", root, "--hz", "250"])
        // One UDP service with 7 inactive connections and a fwmark one: no finding.
        #expect(r.status == 0, "\(r.out)")
        let first = try #require(r.out.split(separator: "\n").first)
        // The tree lacks ip_vs_stats and the sysctls: the two warnings are counted.
        #expect(first.hasPrefix("IPVS OK - no findings; 2 services, 2 real servers; 2 input warnings (on stderr) | "))
        let parts = first.split(separator: "|", maxSplits: 1)
        #expect(parts.count == 2)
        let perf = try Self.perfdata(String(parts[1]))
        #expect(perf["udp:10.0.0.1:53 active"]?.value == 0)
        #expect(perf["udp:10.0.0.1:53 inactive"]?.value == 7)
        #expect(perf["fwmark:2 active"]?.value == 2)
        #expect(perf["entries"]?.value == 2)
        #expect(perf["templates"]?.value == 1)
        #expect(perf["table age"]?.uom == "s")
        #expect(perf["findings warning"]?.value == 0)
        // Nothing after the first line may start performance data.
        #expect(!r.out.split(separator: "\n").dropFirst().contains { $0.contains("|") })
    }

    @Test func checkNamesTheWorstFindingFirstAndExitsByIt() throws {
        let r = try CLI.run(["check", "--demo"])
        #expect(r.status == 1, "\(r.out)")
        let first = try #require(r.out.split(separator: "\n").first)
        #expect(first.hasPrefix("IPVS WARNING - rogue_client: client 198.51.100.66 on 192.168.1.3:80 of tcp:10.0.0.100:80; 7 findings (7 warning)"))
        let perf = try Self.perfdata(String(first.split(separator: "|", maxSplits: 1)[1]))
        #expect(perf["findings warning"]?.value == 7)
        #expect(perf["tcp:[fd00:100::100]:443 active"] != nil)
        // The long output keeps every finding, and no '|' (the advice's pipes are broken bars).
        #expect(r.out.contains("advice: Find out what 198.51.100.66 is doing (ipvsadm -Lcn ¦ grep 198.51.100.66)"))
        #expect(!r.out.split(separator: "\n").dropFirst().contains { $0.contains("|") })
        let v = try CLI.run(["check", "--demo", "--verbose"])
        #expect(v.out.contains("  key: rogue_client/"))
        #expect(v.out.contains("Not judged:"))
    }

    @Test func checkIsUnknownWhenItCannotJudge() throws {
        let noIPVS = try CLI.tree(["net/dev": "\n"])
        let empty = try CLI.tree(["net/ip_vs": ""])
        let unreadable = try CLI.tree(["net/ip_vs": Self.ipvs])
        defer { for d in [noIPVS, empty, unreadable] { try? FileManager.default.removeItem(atPath: d) } }
        try FileManager.default.setAttributes([.posixPermissions: 0], ofItemAtPath: unreadable + "/net/ip_vs")
        let cases: [(String, [String])] = [
            ("no IPVS", ["check", "--proc-root", noIPVS]),
            ("empty tree", ["check", "--proc-root", empty]),
            ("no such tree", ["check", "--proc-root", "/nonexistent-ipvstop"]),
            ("unknown option", ["check", "--bogus"]),
            ("bad value", ["check", "--for", "soon"]),
            ("bad threshold", ["check", "--threshold", "nonsense=1"]),
            ("two sources", ["check", "--demo", "--replay", "x.rec"]),
            ("missing recording", ["check", "--replay", "/nonexistent-ipvstop.rec"]),
            ("no IPVS, watching", ["check", "--proc-root", noIPVS, "--for", "1s"]),
        ] + (getuid() == 0 ? [] : [("unreadable tree", ["check", "--proc-root", unreadable])])
        for (name, args) in cases {
            let r = try CLI.run(args)
            #expect(r.status == 3, "\(name): exit \(r.status), \(r.out) \(r.err)")
            #expect(r.out.hasPrefix("IPVS UNKNOWN - "), "\(name): \(r.out)")
        }
        // Help is not trouble.
        #expect(try CLI.run(["check", "--help"]).status == 0)
    }

    /// The 7.x capture (Tests/Fixtures/proc-vm-7) with ip_vs_status root's only (0440), as
    /// the kernel makes it: read by root, said unavailable to nobody (run as nobody when the
    /// tests run as root).
    @Test func ipvsStatusAsRootAndAsNobody() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/proc-vm-7").path
        let root = NSTemporaryDirectory() + "ipvstop-cli-seven-" + UUID().uuidString
        try FileManager.default.copyItem(atPath: fixture, toPath: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        // Every other file readable by anyone, as in /proc.
        let walk = FileManager.default.enumerator(atPath: root)
        while let rel = walk?.nextObject() as? String {
            var dir: ObjCBool = false
            FileManager.default.fileExists(atPath: root + "/" + rel, isDirectory: &dir)
            try FileManager.default.setAttributes([.posixPermissions: dir.boolValue ? 0o755 : 0o644], ofItemAtPath: root + "/" + rel)
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root)
        try FileManager.default.setAttributes([.posixPermissions: getuid() == 0 ? 0o440 : 0], ofItemAtPath: root + "/net/ip_vs_status")

        func json(_ r: (status: Int32, out: String, err: String)) throws -> [String: Any] {
            #expect(r.status == 0, "\(r.err)")
            return try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        }
        if getuid() == 0 {
            let j = try json(try CLI.run(["snapshot", "--json", "--hz", "250", "--proc-root", root]))
            let status = try #require((j["ipvs"] as? [String: Any])?["status"] as? [String: Any])
            #expect(status["available"] as? Bool == true)
            #expect(status["conns"] as? Int == 380)
            #expect((status["conn_buckets"] as? [String: Any])?["lfactor"] as? Int == -4)
            let c = try #require((j["connections"] as? [String: Any])?["completeness"] as? [String: Any])
            #expect(c["verdict"] as? String == "whole" && c["basis"] as? String == "ip_vs_status" && c["expected"] as? Int == 380)
        }
        // As nobody: via setpriv when root, as is otherwise (the file is then mode 0).
        let args = ["snapshot", "--json", "--hz", "250", "--proc-root", root]
        let r: (status: Int32, out: String, err: String)
        if getuid() == 0 {
            r = try CLI.run(["--setpriv-as-nobody"] + args)
        } else {
            r = try CLI.run(args)
        }
        let j = try json(r)
        let status = try #require((j["ipvs"] as? [String: Any])?["status"] as? [String: Any])
        #expect(status["available"] as? Bool == false)
        #expect(status["reason"] as? String == "permission denied: root only")
        #expect(((j["source"] as? [String: Any])?["unavailable"] as? [String])?.contains { $0.hasPrefix("ipvs_status") } == true)
        let c = try #require((j["connections"] as? [String: Any])?["completeness"] as? [String: Any])
        #expect(c["verdict"] as? String == "whole" && c["basis"] as? String == "real_server_counters", "\(c)")
    }

    /// A table read that ended early (the 7.x capture cut at a line boundary, as a read
    /// ends when the table is resized under it): check says so on its status line and in
    /// its perfdata and JSON, never as a whole table.
    @Test func checkSaysAPartialTable() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/proc-vm-7").path
        let root = NSTemporaryDirectory() + "ipvstop-cli-cut-" + UUID().uuidString
        try FileManager.default.copyItem(atPath: fixture, toPath: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let conn = try String(contentsOfFile: root + "/net/ip_vs_conn", encoding: .utf8)
        try (conn.split(separator: "\n").prefix(151).joined(separator: "\n") + "\n").write(toFile: root + "/net/ip_vs_conn", atomically: true, encoding: .utf8)
        let r = try CLI.run(["check", "--hz", "250", "--proc-root", root])
        let first = r.out.split(separator: "\n").first.map(String.init) ?? ""
        #expect(first.contains("connection table PARTIAL (150 of 380 entries read)"), "\(first)")
        #expect(first.contains("'table partial'=1"), "\(first)")
        #expect(r.status != 0)
        #expect(r.err.contains("PARTIAL table after 3 read(s)"), "\(r.err)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(try CLI.run(["check", "--json", "--hz", "250", "--proc-root", root]).out.utf8)) as? [String: Any])
        #expect(j["table_partial"] as? Bool == true)
        #expect((j["exit_status"] as? Int).map { $0 != 0 } == true)
        // The whole capture is whole.
        let whole = try CLI.run(["check", "--hz", "250", "--proc-root", fixture])
        #expect(whole.out.contains("'table partial'=0"), "\(whole.out)")
        #expect(!whole.out.contains("PARTIAL"))
    }

    @Test func everyFaceTakesEveryFeed() throws {
        let rec = NSTemporaryDirectory() + "ipvstop-cli-\(UUID().uuidString).rec"
        defer { try? FileManager.default.removeItem(atPath: rec) }
        let made = try CLI.run(["record", rec, "--demo", "--count", "3"])
        #expect(made.status == 0, "\(made.err)")
        let snap = try CLI.run(["snapshot", "--json", "--replay", rec, "--start-frame", "2"])
        #expect(snap.status == 0, "\(snap.err)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(snap.out.utf8)) as? [String: Any])
        #expect(j["taken_at"] as? String == "2026-01-01T01:00:01.000Z")
        let demo = try CLI.run(["snapshot", "--demo", "--no-connections"])
        #expect(demo.status == 0 && demo.out.contains("TCP  10.0.0.100:80"))
        let check = try CLI.run(["check", "--replay", rec, "--for", "10s"])
        #expect(check.status == 1, "\(check.out)")
        #expect(check.out.hasPrefix("IPVS WARNING - "))
        #expect(try CLI.run(["snapshot", "--start-frame", "2"]).status != 0)
    }
}

/// The binary on the bad inputs of issue 25 (Tests/Fixtures/bad-inputs/proc, laid over the
/// real-kernel capture): every command ends with a normal exit status, valid JSON, no raw
/// control character on a terminal stream, and the warnings that say what was wrong.
@Suite(.serialized) struct BadInputCLITests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path

    static func tree(_ name: String) throws -> String {
        let root = NSTemporaryDirectory() + "ipvstop-cli-bad-" + UUID().uuidString
        let fm = FileManager.default
        try fm.copyItem(atPath: fixtures + "/proc-vm-6.1", toPath: root)
        let overlay = fixtures + "/bad-inputs/proc/" + name
        for rel in (fm.enumerator(atPath: overlay)?.compactMap { $0 as? String } ?? []) {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: overlay + "/" + rel, isDirectory: &isDir), !isDir.boolValue else { continue }
            try fm.removeItem(atPath: root + "/" + rel)
            try fm.copyItem(atPath: overlay + "/" + rel, toPath: root + "/" + rel)
        }
        return root
    }

    static let names = [
        "dashboard-ip_vs_stats-rate-2^64", "proc-inactconn-400000000", "proc-inactconn-4294967295",
        "proc-ip_vs-crlf-silently-empty", "proc-ipv6-prefix-4294967295", "proc-terminal-escapes",
        "slabinfo-objsize-overflow", "sysctl-amemthresh-overflow",
    ]

    /// Control characters a terminal would obey (C0 but LF and TAB, DEL, C1).
    static func hasControl(_ s: String) -> Bool {
        s.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\n" && $0 != "\t") || $0.value == 0x7F || (0x80...0x9F).contains($0.value) }
    }

    @Test(arguments: names)
    func everyCommandEndsCleanly(_ name: String) throws {
        let root = try Self.tree(name)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let json = try CLI.run(["snapshot", "--json", "--proc-root", root])
        #expect(json.status == 0, "\(json.err)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any])
        #expect((obj["services"] as? [Any])?.isEmpty == false)
        let text = try CLI.run(["snapshot", "--proc-root", root])
        #expect(text.status == 0, "\(text.err)")
        #expect(!Self.hasControl(text.out) && !Self.hasControl(text.err))
        let check = try CLI.run(["check", "--proc-root", root])
        #expect([0, 1, 2].contains(check.status), "\(check.err)")
        #expect(check.out.hasPrefix("IPVS "))
        #expect(!Self.hasControl(check.out) && !Self.hasControl(check.err))
        let checkJSON = try CLI.run(["check", "--json", "--proc-root", root])
        #expect(try JSONSerialization.jsonObject(with: Data(checkJSON.out.utf8)) is [String: Any])
    }

    @Test func terminalEscapesAreEscaped() throws {
        let root = try Self.tree("proc-terminal-escapes")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let text = try CLI.run(["snapshot", "--proc-root", root])
        #expect(text.out.contains("\\x1B[5mrr\\x1B[0m"))
        #expect(text.err.contains("TCP \\x1B]0;owned-title\\x07\\x1B[2J\\x1B[31m AAAA"))
        // JSON carries the text exactly, escaped by JSON's own rules.
        let json = try CLI.run(["snapshot", "--json", "--proc-root", root])
        #expect(json.out.contains("\\u001b[5mrr\\u001b[0m"))
    }

    @Test func crlfIsNoLongerAnEmptyDirector() throws {
        let root = try Self.tree("proc-ip_vs-crlf-silently-empty")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let check = try CLI.run(["check", "--proc-root", root])
        // One finding, listed once below the status line (which may name it too).
        let listed = check.out.split(separator: "\n").dropFirst().joined(separator: "\n")
        #expect(listed.components(separatedBy: "dead_destination").count - 1 == 1)
        #expect(check.err.contains("CR LF"))
        // Counted on the status line, where a monitoring system looks.
        #expect(check.out.split(separator: "\n").first?.split(separator: " | ").first?.hasSuffix("; 2 input warnings (on stderr)") == true, "\(check.out.prefix(200))")
    }

    @Test func impossibleValuesAreWarned() throws {
        for (name, words) in [("proc-ipv6-prefix-4294967295", "IPv6 persistence prefix 4294967295 is not 1-128"),
                              ("slabinfo-objsize-overflow", "object size 9223372036854775807 is not 1-65536 bytes"),
                              ("sysctl-amemthresh-overflow", "amemthresh=9223372036854775807")] {
            let root = try Self.tree(name)
            defer { try? FileManager.default.removeItem(atPath: root) }
            let json = try CLI.run(["snapshot", "--json", "--proc-root", root])
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any])
            let warnings = ((obj["source"] as? [String: Any])?["warnings"] as? [String]) ?? []
            #expect(warnings.contains { $0.contains(words) }, "\(name): \(warnings)")
        }
    }

    @Test func outOfRangeThresholdIsRefused() throws {
        let r = try CLI.run(["check", "--proc-root", Self.fixtures + "/proc-vm-6.1", "--threshold", "rogue_min_conns=1e30"])
        // check is a monitoring plugin: a bad option is UNKNOWN (3), never a usage code.
        #expect(r.status == 3)
        #expect(r.err.contains("threshold rogue_min_conns: '1e30' is out of range (0 to 1000000000)"))
    }

    /// `record --demo --demo-start 1e300` (or NaN) trapped in the simulated director, and
    /// `--duration 1e300` turning into a frame count: refused with the range.
    @Test func recordOptionsOutOfRangeAreRefused() throws {
        for (args, words) in [(["--demo-start", "1e300"], "--demo-start must be between"), (["--demo-start", "nan"], "--demo-start must be between"),
                              (["--duration", "1e300"], "--duration must be at most a year")] {
            let r = try CLI.run(["record", "--demo", "-n", "1", NSTemporaryDirectory() + "/never-\(UUID().uuidString).rec"] + args)
            #expect(r.status == 64)
            #expect(r.err.contains(words), "\(r.err)")
        }
    }

    @Test func fifoInTheTreeEndsWithAMessage() throws {
        let root = try Self.tree("proc-inactconn-400000000")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.removeItem(atPath: root + "/net/ip_vs_conn")
        #expect(mkfifo(root + "/net/ip_vs_conn", 0o644) == 0)
        let r = try CLI.run(["check", "--proc-root", root])
        #expect([0, 1, 2].contains(r.status))
        #expect(r.err.contains("is a FIFO, not a regular file"))
    }
}

/// The dashboard's exits that need no key (issue 25), on a pseudo-terminal made by python3
/// (the dashboard refuses a pipe): input at its end or closed, and TERM=dumb.
@Suite(.serialized) struct DashboardExitTests {
    /// Runs `ipvstop ARGS` with stdout and stderr on a pty, stdin as `stdin` ("null" or
    /// "closed"), TERM as given; prints the exit status (or HANG) then what it wrote.
    static let driver = """
        import os, pty, select, subprocess, sys, time
        binary, stdin, term = sys.argv[1], sys.argv[2], sys.argv[3]
        m, s = pty.openpty()
        env = dict(os.environ, TERM=term, LANG="C.UTF-8")
        kw = dict(stdin=subprocess.DEVNULL) if stdin == "null" else dict(preexec_fn=lambda: os.close(0))
        p = subprocess.Popen([binary] + sys.argv[4:], stdout=s, stderr=s, env=env, **kw)
        os.close(s)
        out, deadline = b"", time.time() + 15
        while time.time() < deadline:
            r, _, _ = select.select([m], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(m, 65536)
                except OSError:
                    chunk = b""
                out += chunk
                if not chunk and p.poll() is not None:
                    break
            elif p.poll() is not None:
                break
        if p.poll() is None:
            p.kill()
            print("HANG")
        else:
            print(p.returncode)
        sys.stdout.write(out.decode("utf-8", "replace"))
        """

    static func run(stdin: String, term: String, _ args: [String]) throws -> (status: String, output: String) {
        let r = try CLI.runPython(Self.driver, [CLI.binary, stdin, term] + args)
        let lines = r.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
        return (String(lines.first ?? ""), lines.count > 1 ? String(lines[1]) : "")
    }

    @Test(arguments: ["null", "closed"])
    func endOfInputStopsTheDashboard(_ stdin: String) throws {
        let r = try Self.run(stdin: stdin, term: "xterm", ["--demo"])
        #expect(r.status == "0", "\(r.output.suffix(300))")
        #expect(r.output.contains("standard input ended or was closed"))
    }

    @Test func dumbTerminalIsToldSo() throws {
        let r = try Self.run(stdin: "null", term: "dumb", ["--demo"])
        #expect(r.status == "2")
        #expect(r.output.contains("needs a terminal that can move its cursor, and TERM is 'dumb'"))
    }
}

extension CLI {
    /// Runs a python3 program with arguments; its standard output.
    static func runPython(_ program: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", program] + args
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: o, as: UTF8.self)
    }
}
