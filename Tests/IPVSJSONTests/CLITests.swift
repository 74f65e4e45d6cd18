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

    static func run(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
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
}
