import Foundation

/// A throwaway /proc tree for one test, laid out as under /proc. Shared by the test
/// targets that read synthetic directors.
public final class ProcTree {
    public let root: String

    public init(_ files: [String: String] = [:]) throws {
        root = NSTemporaryDirectory() + "ipvstop-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for (path, text) in files { try write(path, text) }
    }

    public func write(_ rel: String, _ text: String) throws {
        let full = root + "/" + rel
        try FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: true, encoding: .utf8)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}

/// Text as the kernel prints it, built with its own printf formats so the tests speak the
/// kernel's layout rather than a hand-typed approximation.
public enum KernelText {
    public static let ipvsHeader = """
        IP Virtual Server version 1.2.1 (size=4096)
        Prot LocalAddress:Port Scheduler Flags
          -> RemoteAddress:Port Forward Weight ActiveConn InActConn

        """

    /// `"%s  %08X:%04X %s %s "` then `persistent %d %08X` or nothing.
    public static func service(_ proto: String, _ addr: UInt32, _ port: UInt16, _ sched: String, ops: Bool = false, persistent: (Int, UInt32)? = nil) -> String {
        var s = String(format: "%@  %08X:%04X %@ %@", proto, addr, port, sched, ops ? "ops " : "")
        if let (j, m) = persistent { s += String(format: "persistent %d %08X", j, m) }
        return s + "\n"
    }

    public static func service6(_ proto: String, _ full: String, _ port: UInt16, _ sched: String, persistent: (Int, UInt32)? = nil) -> String {
        var s = String(format: "%@  [%@]:%04X %@ ", proto, full, port, sched)
        if let (j, m) = persistent { s += String(format: "persistent %d %08X", j, m) }
        return s + "\n"
    }

    public static func fwmark(_ mark: UInt32, _ sched: String, persistent: (Int, UInt32)? = nil) -> String {
        var s = String(format: "FWM  %08X %@ ", mark, sched)
        if let (j, m) = persistent { s += String(format: "persistent %d %08X", j, m) }
        return s + "\n"
    }

    /// `"  -> %08X:%04X      %-7s %-6d %-10d %-10d"`
    public static func dest(_ addr: UInt32, _ port: UInt16, _ fwd: String, _ w: Int, _ a: Int, _ i: Int) -> String {
        String(format: "  -> %08X:%04X      ", addr, port) + fwd.padding(toLength: 7, withPad: " ", startingAt: 0)
            + " " + String(format: "%-6d %-10d %-10d\n", w, a, i)
    }

    public static func dest6(_ full: String, _ port: UInt16, _ fwd: String, _ w: Int, _ a: Int, _ i: Int) -> String {
        "  -> [\(full)]:" + String(format: "%04X", port) + "      " + fwd.padding(toLength: 7, withPad: " ", startingAt: 0)
            + " " + String(format: "%-6d %-10d %-10d\n", w, a, i)
    }

    public static let connHeader = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n"

    /// `"%-3s %08X %04X %08X %04X %s %04X %-11s %7u%s"` with the destination `%08x`.
    public static func conn(_ proto: String, _ c: UInt32, _ cp: UInt16, _ v: UInt32, _ vp: UInt16, _ d: UInt32, _ dp: UInt16, _ state: String, _ exp: UInt64, pe: String = "") -> String {
        proto.padding(toLength: max(3, proto.count), withPad: " ", startingAt: 0)
            + String(format: " %08X %04X %08X %04X %08x %04X ", c, cp, v, vp, d, dp)
            + state.padding(toLength: max(11, state.count), withPad: " ", startingAt: 0)
            + String(format: " %7llu", exp) + pe + "\n"
    }

    public static func conn6(_ proto: String, _ c: String, _ cp: UInt16, _ v: String, _ vp: UInt16, _ d: String, _ dp: UInt16, _ state: String, _ exp: UInt64) -> String {
        proto.padding(toLength: max(3, proto.count), withPad: " ", startingAt: 0)
            + " \(c) " + String(format: "%04X", cp) + " \(v) " + String(format: "%04X", vp) + " \(d) " + String(format: "%04X", dp) + " "
            + state.padding(toLength: max(11, state.count), withPad: " ", startingAt: 0)
            + String(format: " %7llu", exp) + "\n"
    }
}
