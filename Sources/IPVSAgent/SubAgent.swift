import CNetSNMP
import FoundationEssentials
import IPVSAnalysis
import Synchronization

/// The view being served and the notifications waiting to be sent: written by the
/// builder thread, read by the agent thread between requests. A request sees one view
/// from start to end; the swap is a pointer under a lock.
public final class ViewStore: Sendable {
    private struct State {
        var view: MIBView = .empty
        var events: [FindingEvent] = []
        var generation = 0
    }
    private let state = Mutex(State())
    /// Notifications kept while the master is away, at most.
    public let maxPendingEvents: Int

    public init(maxPendingEvents: Int = 1000) {
        self.maxPendingEvents = maxPendingEvents
    }

    public func publish(_ view: MIBView, events: [FindingEvent] = []) {
        state.withLock {
            $0.view = view
            $0.events += events
            if $0.events.count > maxPendingEvents { $0.events.removeFirst($0.events.count - maxPendingEvents) }
            $0.generation += 1
        }
    }

    public var current: MIBView { state.withLock { $0.view } }
    public var generation: Int { state.withLock { $0.generation } }

    public func takeEvents() -> [FindingEvent] {
        state.withLock {
            let e = $0.events
            $0.events = []
            return e
        }
    }
}

/// Answers GET and GETNEXT (GETBULK arrives as GETNEXTs) for the registered subtree from
/// the store's current view. Runs on the agent thread only.
final class RequestHandler {
    let root: [UInt32]
    let store: ViewStore

    init(root: OID, store: ViewStore) {
        self.root = root.arcs
        self.store = store
    }

    /// The request's OID relative to the root: nil when it is past the subtree; empty when
    /// it is before it.
    func relative(_ name: [UInt32]) -> [UInt32]? {
        if OID.hasPrefix(name[...], root[...]) { return Array(name[root.count...]) }
        return OID.compare(name[...], root[...]) < 0 ? [] : nil
    }

    func handle(_ reqinfo: UnsafeMutablePointer<netsnmp_agent_request_info>,
                _ first: UnsafeMutablePointer<netsnmp_request_info>?) -> Int32 {
        let mode = Int(ipvstop_request_mode(reqinfo))
        let view = store.current
        let now = Date()
        var next = first
        while let req = next {
            next = req.pointee.next
            guard req.pointee.processed == 0, let vb = req.pointee.requestvb else { continue }
            let name = (0..<Int(vb.pointee.name_length)).map { UInt32(truncatingIfNeeded: vb.pointee.name[$0]) }
            switch mode {
            case IPVSTOP_MODE_GET:
                guard let rel = relative(name), OID.hasPrefix(name[...], root[...]) else {
                    ipvstop_set_exception(reqinfo, req, Int32(IPVSTOP_NOSUCHOBJECT))
                    continue
                }
                switch view.get(rel, now: now) {
                case .value(let v): NetSNMPValue.set(vb, v)
                case .noSuchObject: ipvstop_set_exception(reqinfo, req, Int32(IPVSTOP_NOSUCHOBJECT))
                case .noSuchInstance: ipvstop_set_exception(reqinfo, req, Int32(IPVSTOP_NOSUCHINSTANCE))
                }
            case IPVSTOP_MODE_GETNEXT:
                // Nothing after it in this subtree: leave the varbind alone and the agent
                // goes on to the next registration.
                guard let rel = relative(name),
                      let (oid, v) = view.next(after: rel, inclusive: req.pointee.inclusive != 0 && rel.count == name.count - root.count, now: now)
                else { continue }
                NetSNMPValue.setName(vb, OID(root) + oid.arcs)
                NetSNMPValue.set(vb, v)
            default:
                // Read-only: the registration refuses SETs before they get here.
                ipvstop_set_exception(reqinfo, req, Int32(SNMP_ERR_NOTWRITABLE))
            }
        }
        return Int32(SNMP_ERR_NOERROR)
    }
}

/// Writing values into net-snmp's varbinds.
enum NetSNMPValue {
    static func set(_ vb: UnsafeMutablePointer<netsnmp_variable_list>, _ v: SNMPValue) {
        switch v {
        case .integer(let i): ipvstop_set_integer(vb, Int(i))
        case .unsigned32(let u): ipvstop_set_unsigned(vb, u_char(IPVSTOP_ASN_UNSIGNED), UInt(u))
        case .gauge32(let u): ipvstop_set_unsigned(vb, u_char(IPVSTOP_ASN_GAUGE), UInt(u))
        case .counter32(let u): ipvstop_set_unsigned(vb, u_char(IPVSTOP_ASN_COUNTER), UInt(u))
        case .timeticks(let u): ipvstop_set_unsigned(vb, u_char(IPVSTOP_ASN_TIMETICKS), UInt(u))
        case .counter64(let c): ipvstop_set_counter64(vb, c)
        case .octets(let b): b.withUnsafeBufferPointer { ipvstop_set_octets(vb, $0.baseAddress, $0.count) }
        case .objectID(let o):
            let arcs = o.arcs.map { oid($0) }
            arcs.withUnsafeBufferPointer { ipvstop_set_oid_value(vb, $0.baseAddress, $0.count) }
        }
    }

    static func setName(_ vb: UnsafeMutablePointer<netsnmp_variable_list>, _ name: OID) {
        let arcs = name.arcs.map { oid($0) }
        arcs.withUnsafeBufferPointer { ipvstop_set_name(vb, $0.baseAddress, $0.count) }
    }

    /// Appends a varbind to a notification's list.
    static func append(_ list: inout UnsafeMutablePointer<netsnmp_variable_list>?, _ name: OID, _ v: SNMPValue) {
        let arcs = name.arcs.map { oid($0) }
        let vb = arcs.withUnsafeBufferPointer { ipvstop_varlist_append(&list, $0.baseAddress, $0.count) }
        if let vb { set(vb, v) }
    }
}

/// net-snmp calls handlers through a C function pointer; the handler object comes back
/// through the registration's `myvoid`.
private let ipvstopNodeHandler: @convention(c) (
    UnsafeMutablePointer<netsnmp_mib_handler>?, UnsafeMutablePointer<netsnmp_handler_registration>?,
    UnsafeMutablePointer<netsnmp_agent_request_info>?, UnsafeMutablePointer<netsnmp_request_info>?
) -> Int32 = { handler, _, reqinfo, requests in
    guard let ctx = ipvstop_handler_context(handler), let reqinfo else { return Int32(SNMP_ERR_GENERR) }
    return Unmanaged<RequestHandler>.fromOpaque(ctx).takeUnretainedValue().handle(reqinfo, requests)
}

/// The AgentX side: net-snmp set up as a subagent, the subtree registered, the loop that
/// answers requests and sends notifications. Everything here runs on one thread (net-snmp
/// is not thread-safe); it never reads the kernel.
public final class SubAgent {
    public struct Options: Sendable {
        /// The master's socket: a path, or `tcp:host:port`.
        public var socket: String
        /// The module's base (ipvstopMIB): objects are registered at base.1, notifications
        /// sent as base.0.N.
        public var base: OID
        /// Seconds between AgentX pings; also how often a lost master is tried again.
        public var pingInterval: Int
        /// Let net-snmp log to stderr itself (its own connection messages and errors).
        public var netsnmpLog: Bool

        public init(socket: String = "/var/agentx/master", base: OID = IPVSTopMIB.defaultBase, pingInterval: Int = 2, netsnmpLog: Bool = false) {
            self.socket = socket
            self.base = base
            self.pingInterval = pingInterval
            self.netsnmpLog = netsnmpLog
        }
    }

    public let options: Options
    let store: ViewStore
    let log: @Sendable (String) -> Void
    let handler: RequestHandler

    public init(options: Options, store: ViewStore, log: @escaping @Sendable (String) -> Void) {
        self.options = options
        self.store = store
        self.log = log
        self.handler = RequestHandler(root: options.base + [IPVSTopMIB.objects], store: store)
    }

    /// Runs until `shouldStop` says so (checked at least every 100 ms), then closes the
    /// session. Returns false when net-snmp could not be set up at all.
    public func run(shouldStop: () -> Bool) -> Bool {
        guard ipvstop_agent_init("ipvstop", options.socket, Int32(options.pingInterval), options.netsnmpLog ? 1 : 0) == 0 else {
            log("could not initialise net-snmp's agent library")
            return false
        }
        let root = (options.base + [IPVSTopMIB.objects]).arcs.map { oid($0) }
        let ctx = Unmanaged.passUnretained(handler).toOpaque()
        let rc = root.withUnsafeBufferPointer {
            ipvstop_register_subtree("ipvstop", $0.baseAddress, $0.count, ipvstopNodeHandler, ctx)
        }
        guard rc == 0 else {
            log("could not register \(options.base).1 (net-snmp error \(rc))")
            ipvstop_agent_shutdown("ipvstop")
            return false
        }
        var connected = ipvstop_agentx_connected() != 0
        if connected {
            log("connected to the AgentX master at \(options.socket); serving \(options.base)")
        } else {
            log("no AgentX master at \(options.socket) yet (is snmpd installed and running, with master agentx in snmpd.conf?); trying again every \(options.pingInterval) s")
        }
        var held: [FindingEvent] = []
        while !shouldStop() {
            _ = ipvstop_agent_process(100)
            let now = ipvstop_agentx_connected() != 0
            if now != connected {
                connected = now
                log(now ? "connected to the AgentX master at \(options.socket); serving \(options.base)"
                        : "lost the AgentX master at \(options.socket); trying again every \(options.pingInterval) s")
            }
            held += store.takeEvents()
            if held.count > store.maxPendingEvents { held.removeFirst(held.count - store.maxPendingEvents) }
            if connected && !held.isEmpty {
                for e in held { send(e) }
                held = []
            }
        }
        ipvstop_agent_shutdown("ipvstop")
        return true
    }

    /// ipvsFindingRaised / ipvsFindingCleared with the finding's columns, instance = its id.
    func send(_ event: FindingEvent) {
        let f = event.finding
        let which: UInt32
        switch event {
        case .raised: which = IPVSTopMIB.Finding.raised
        case .cleared: which = IPVSTopMIB.Finding.cleared
        }
        var list: UnsafeMutablePointer<netsnmp_variable_list>?
        NetSNMPValue.append(&list, IPVSTopMIB.snmpTrapOID, .objectID(options.base + [IPVSTopMIB.notifications, which]))
        let entry = options.base + [IPVSTopMIB.objects] + IPVSTopMIB.findingTable.entry.arcs
        for (i, v) in ValueMapping.findingColumns(f).enumerated() {
            guard let v else { continue }
            NetSNMPValue.append(&list, entry + [IPVSTopMIB.findingTable.firstColumn + UInt32(i), UInt32(truncatingIfNeeded: f.id)], v)
        }
        if let list { ipvstop_send_notification(list) }
    }
}
