import ArgumentParser
import IPVSFeed
import IPVSModel

/// `ipvstop capture DIR`: the director's state in a directory every command reads back
/// with `--proc-root DIR`, to look at later or to send.
struct CaptureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Copy the director's IPVS state to a directory that every command reads back with --proc-root DIR.",
        discussion: """
            Copies every /proc file ipvstop reads (net/ip_vs*, sys/net/ipv4/vs/*, slabinfo, \
            sys/kernel/osrelease and hostname) byte for byte, and writes beside them a manifest \
            (DIR/ipvstop-capture: host name, kernel release, HZ, when each part was read, each \
            file's size) and, as root, the IPVS netlink answers (DIR/netlink, in hex), so that stats, \
            rates, PersistConn, thresholds and timeouts in seconds are kept. Take it as root for \
            all of them. Unlike tar of /proc (which stores its files as 0 bytes), the result reads \
            back whole: the capture is read back before this command ends.
            To send it: tar czf director.tgz -C DIR .   To read it: ipvstop --proc-root DIR
            """)

    @OptionGroup var source: SourceOptions

    @Argument(help: ArgumentHelp("A new (or empty) directory to write the capture to.", valueName: "DIR"))
    var directory: String

    func validate() throws {
        if source.demo || source.replay != nil {
            throw ValidationError("capture copies a director (this machine's, or --proc-root DIR); not --demo or --replay")
        }
    }

    func run() throws {
        let snap: Snapshot
        do {
            snap = try source.spec.capture(to: directory)
        } catch {
            fail(error.description)
        }
        let realServers = snap.realServerCount
        let host = [snap.host?.hostname, snap.host?.kernelRelease.map { "kernel " + $0 }].compactMap { $0 }.joined(separator: ", ")
        var lines = ["captured \(host.isEmpty ? "the director" : host) to \(directory):",
                     "  \(snap.services.count) service(s), \(realServers) real server(s), "
                        + (snap.connections.map { "\($0.entries.count) connection entries" } ?? "no connection table")]
        switch snap.source.netlink {
        case .used: lines.append("  netlink answers kept: stats, rates, PersistConn and thresholds included")
        case .off(let why), .unavailable(let why): lines.append("  no netlink answers: \(why)")
        }
        lines.append("read it with: ipvstop --proc-root \(directory)    send it with: tar czf director.tgz -C \(directory) .")
        print(TerminalText.escaped(lines.joined(separator: "\n")))
        warn(snap.source.warnings)
    }
}
