import ArgumentParser
import Dispatch
import FoundationEssentials
import Glibc
import IPVSAgent
import IPVSAnalysis
import IPVSFeed
import IPVSModel

/// `ipvstop agent`: the AgentX SNMP subagent serving IPVSTOP-MIB (MIBs/IPVSTOP-MIB.txt).
struct AgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Serve the director over SNMP as an AgentX subagent of snmpd (IPVSTOP-MIB, read-only).",
        discussion: """
            Add to /etc/snmp/snmpd.conf:  master agentx  (and, for the traps, a trap2sink or trapsess line).
            Every request is answered from the latest snapshot; polling runs on its own threads.
            The subagent reconnects by itself when snmpd restarts; SIGTERM or SIGINT stop it cleanly.
            SIGHUP also stops it cleanly (AgentX session closed, exit 0), saying so in the log: it has \
            no configuration file to reload (every setting is an option, read at start), so a restart \
            applies new options.
            """)

    @OptionGroup var source: SourceOptions

    @Option(name: .customLong("agentx-socket"), help: ArgumentHelp(
        "The AgentX master's socket: a path, or tcp:HOST:PORT.", valueName: "ADDR"))
    var agentxSocket: String = "/var/agentx/master"

    @Option(help: ArgumentHelp("Seconds between polls of services and real servers (the connection table is read as often as its cost allows).", valueName: "S"))
    var interval: Double = 1

    @Option(help: ArgumentHelp("Rows of the client and template tables at most; 0 for all.", valueName: "N"))
    var top: Int = 100

    @Option(name: .customLong("base-oid"), help: ArgumentHelp(
        "Where IPVSTOP-MIB is rooted (its MODULE-IDENTITY); change it together with the MIB file to relocate it.",
        valueName: "OID"))
    var baseOID: String = IPVSTopMIB.defaultBase.description

    @Option(name: .customLong("agentx-ping"), help: ArgumentHelp(
        "Seconds between AgentX pings; a lost master is tried again as often.", valueName: "S"))
    var agentxPing: Int = 2

    @Flag(name: .customLong("netsnmp-log"), help: "Let net-snmp log its own messages to stderr.")
    var netsnmpLog = false

    func validate() throws {
        if !(0.05...3600).contains(interval) { throw ValidationError("--interval must be between 0.05 and 3600 seconds") }
        if top < 0 { throw ValidationError("--top must be 0 (all) or more") }
        if !(1...3600).contains(agentxPing) { throw ValidationError("--agentx-ping must be between 1 and 3600 seconds") }
        guard let b = OID(baseOID), b.arcs.count >= 2, b.arcs.count <= 100 else {
            throw ValidationError("--base-oid \(baseOID): not an OID (dotted numbers, e.g. 1.3.6.1.4.1.32473.1)")
        }
        if agentxSocket.isEmpty { throw ValidationError("--agentx-socket must not be empty") }
    }

    func run() throws {
        let log: @Sendable (String) -> Void = { msg in
            writeStandardError("ipvstop agent: " + TerminalText.escaped(msg, keepLineBreaks: false) + "\n")
        }
        // Said first, so that a start-up that takes long (a slow netlink answer) says why.
        log("starting: reading \(source.spec.label)")
        let feed: FeedLoop
        do {
            // Fails at once, with the reader's message, when there is no IPVS to serve.
            feed = try FeedLoop(spec: source.spec, interval: interval)
        } catch {
            fail(error.description)
        }
        // A poll a second, each freeing what the next needs again.
        if case .director = source.spec { WorkingMemory.keepBetweenPolls() }
        log("opening an AgentX session with the master at \(agentxSocket)")
        let runner = AgentRunner(options: .init(
            subagent: .init(socket: agentxSocket, base: OID(baseOID)!, pingInterval: agentxPing, netsnmpLog: netsnmpLog),
            view: .init(top: top, interval: interval)), feed: feed, log: log)

        // SIGTERM (systemd's stop), SIGINT and SIGHUP: finish the current request, close the
        // session, exit 0. SIGHUP's default action killed the subagent without a word and
        // without closing its session; there is nothing to reload (see the discussion).
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                switch sig {
                case SIGHUP: log("SIGHUP: no configuration to reload (options are read at start); closing the AgentX session and stopping — restart the subagent to apply new options")
                case SIGTERM: log("SIGTERM: closing the AgentX session and stopping")
                default: log("signal \(sig): closing the AgentX session and stopping")
                }
                runner.stop()
            }
            s.resume()
            sources.append(s)
        }
        // SIGPIPE: a master that goes away mid-write must not kill the subagent.
        signal(SIGPIPE, SIG_IGN)
        if !runner.run() { fail("the subagent could not start (see above)") }
        log("stopped: AgentX session closed")
        _ = sources
    }
}
