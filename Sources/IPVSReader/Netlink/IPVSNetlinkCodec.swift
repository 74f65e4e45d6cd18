import IPVSModel

// The IPVS generic-netlink family (include/uapi/linux/ip_vs.h): requests and the decoding
// of its replies into the model. Pure functions over bytes; the socket is elsewhere.

/// IPVS netlink numbers (only those read here).
enum IPVSNL {
    static let familyName = "IPVS"
    static let genlVersion: UInt8 = 1

    // commands
    static let cmdNewService: UInt8 = 1
    static let cmdGetService: UInt8 = 4
    static let cmdNewDest: UInt8 = 5
    static let cmdGetDest: UInt8 = 8
    static let cmdNewDaemon: UInt8 = 9
    static let cmdGetDaemon: UInt8 = 11
    static let cmdSetConfig: UInt8 = 12
    static let cmdGetConfig: UInt8 = 13
    static let cmdSetInfo: UInt8 = 14
    static let cmdGetInfo: UInt8 = 15

    // IPVS_CMD_ATTR_*
    static let cmdAttrService: UInt16 = 1
    static let cmdAttrDest: UInt16 = 2
    static let cmdAttrDaemon: UInt16 = 3
    static let cmdAttrTimeoutTCP: UInt16 = 4
    static let cmdAttrTimeoutTCPFin: UInt16 = 5
    static let cmdAttrTimeoutUDP: UInt16 = 6

    // IPVS_SVC_ATTR_*
    static let svcAF: UInt16 = 1
    static let svcProtocol: UInt16 = 2
    static let svcAddr: UInt16 = 3
    static let svcPort: UInt16 = 4
    static let svcFwmark: UInt16 = 5
    static let svcSchedName: UInt16 = 6
    static let svcFlags: UInt16 = 7
    static let svcTimeout: UInt16 = 8
    static let svcNetmask: UInt16 = 9
    static let svcStats: UInt16 = 10
    static let svcPEName: UInt16 = 11
    static let svcStats64: UInt16 = 12

    // IPVS_DEST_ATTR_*
    static let destAddr: UInt16 = 1
    static let destPort: UInt16 = 2
    static let destFwdMethod: UInt16 = 3
    static let destWeight: UInt16 = 4
    static let destUThresh: UInt16 = 5
    static let destLThresh: UInt16 = 6
    static let destActiveConns: UInt16 = 7
    static let destInactConns: UInt16 = 8
    static let destPersistConns: UInt16 = 9
    static let destStats: UInt16 = 10
    static let destAddrFamily: UInt16 = 11
    static let destStats64: UInt16 = 12
    static let destTunType: UInt16 = 13
    static let destTunPort: UInt16 = 14
    static let destTunFlags: UInt16 = 15

    // IPVS_DAEMON_ATTR_*
    static let daemonState: UInt16 = 1
    static let daemonMcastIfn: UInt16 = 2
    static let daemonSyncID: UInt16 = 3
    static let daemonSyncMaxLen: UInt16 = 4
    static let daemonMcastGroup: UInt16 = 5
    static let daemonMcastGroup6: UInt16 = 6
    static let daemonMcastPort: UInt16 = 7
    static let daemonMcastTTL: UInt16 = 8

    // IPVS_STATS_ATTR_*
    static let statsConns: UInt16 = 1
    static let statsInPkts: UInt16 = 2
    static let statsOutPkts: UInt16 = 3
    static let statsInBytes: UInt16 = 4
    static let statsOutBytes: UInt16 = 5
    static let statsCPS: UInt16 = 6
    static let statsInPPS: UInt16 = 7
    static let statsOutPPS: UInt16 = 8
    static let statsInBPS: UInt16 = 9
    static let statsOutBPS: UInt16 = 10

    // IPVS_INFO_ATTR_*
    static let infoVersion: UInt16 = 1
    static let infoConnTabSize: UInt16 = 2

    static let daemonStateMaster: UInt32 = 1
    static let daemonStateBackup: UInt32 = 2
}

/// What identifies a service to the kernel, exactly as the dump gave it: echoed back in
/// GET_DEST. Kept raw because the model folds IPv4-mapped IPv6 addresses into IPv4.
struct ServiceIdentity: Hashable, Sendable {
    var af: UInt16
    var fwmark: UInt32
    var proto: UInt16
    /// The 16-byte `nf_inet_addr` (IPv4 in the first 4 bytes).
    var addr: [UInt8]
    /// The port in host order.
    var port: UInt16
}

// MARK: - Requests

func buildIPVSRequest(
    family: UInt16, command: UInt8, dump: Bool, seq: UInt32, pid: UInt32, attributes: [UInt8] = []
) -> [UInt8] {
    buildGenericMessage(
        type: family, flags: NL.request | (dump ? NL.dump : NL.ack), seq: seq, pid: pid,
        command: command, version: IPVSNL.genlVersion, attributes: attributes)
}

/// GET_DEST dump for one service: a nested IPVS_CMD_ATTR_SERVICE with AF and either the
/// fwmark or protocol, address and port.
func buildGetDestRequest(family: UInt16, service id: ServiceIdentity, seq: UInt32, pid: UInt32) -> [UInt8] {
    var w = AttributeWriter()
    w.putNested(IPVSNL.cmdAttrService) { s in
        s.putU16(IPVSNL.svcAF, id.af)
        if id.fwmark != 0 {
            s.putU32(IPVSNL.svcFwmark, id.fwmark)
        } else {
            s.putU16(IPVSNL.svcProtocol, id.proto)
            s.put(IPVSNL.svcAddr, id.addr)
            s.putBE16(IPVSNL.svcPort, id.port)
        }
    }
    return buildIPVSRequest(family: family, command: IPVSNL.cmdGetDest, dump: true, seq: seq, pid: pid, attributes: w.bytes)
}

// MARK: - Decoding

enum IPVSDecode {
    /// `0x010201` → `"1.2.1"`.
    static func versionString(_ v: UInt32) -> String {
        "\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)"
    }

    /// The family id from a CTRL_CMD_NEWFAMILY reply.
    static func familyID(_ replies: [GenericMessage]) throws -> UInt16 {
        for m in replies {
            if let id = try m.table().u16(NL.ctrlAttrFamilyID, "CTRL_ATTR_FAMILY_ID") { return id }
        }
        throw NetlinkError.malformed("GETFAMILY reply without a family id")
    }

    static func info(_ replies: [GenericMessage]) throws -> IPVSInfo {
        guard let m = replies.first else { throw NetlinkError.malformed("GET_INFO: empty reply") }
        let t = try m.table()
        guard let v = try t.u32(IPVSNL.infoVersion, "INFO_ATTR_VERSION") else {
            throw NetlinkError.malformed("GET_INFO: no version attribute")
        }
        let size = try t.u32(IPVSNL.infoConnTabSize, "INFO_ATTR_CONN_TAB_SIZE") ?? 0
        return IPVSInfo(version: versionString(v), tableSize: Int(size))
    }

    static func timeouts(_ replies: [GenericMessage]) throws -> Timeouts {
        guard let m = replies.first else { throw NetlinkError.malformed("GET_CONFIG: empty reply") }
        let t = try m.table()
        // An attribute is missing when the kernel lacks that protocol (CONFIG_IP_VS_PROTO_*).
        return Timeouts(
            tcp: try t.u32(IPVSNL.cmdAttrTimeoutTCP, "TIMEOUT_TCP") ?? 0,
            tcpFin: try t.u32(IPVSNL.cmdAttrTimeoutTCPFin, "TIMEOUT_TCP_FIN") ?? 0,
            udp: try t.u32(IPVSNL.cmdAttrTimeoutUDP, "TIMEOUT_UDP") ?? 0)
    }

    /// Counters and rates from a STATS (32-bit counts) or STATS64 nest.
    static func stats(_ t: AttributeTable) throws -> (TrafficStats, TrafficRates) {
        func c(_ type: UInt16, _ name: String) throws -> UInt64 { try t.counter(type, name) ?? 0 }
        let s = TrafficStats(
            conns: try c(IPVSNL.statsConns, "STATS_CONNS"),
            inPackets: try c(IPVSNL.statsInPkts, "STATS_INPKTS"),
            outPackets: try c(IPVSNL.statsOutPkts, "STATS_OUTPKTS"),
            inBytes: try c(IPVSNL.statsInBytes, "STATS_INBYTES"),
            outBytes: try c(IPVSNL.statsOutBytes, "STATS_OUTBYTES"))
        let r = TrafficRates(
            cps: Double(try c(IPVSNL.statsCPS, "STATS_CPS")),
            inPPS: Double(try c(IPVSNL.statsInPPS, "STATS_INPPS")),
            outPPS: Double(try c(IPVSNL.statsOutPPS, "STATS_OUTPPS")),
            inBPS: Double(try c(IPVSNL.statsInBPS, "STATS_INBPS")),
            outBPS: Double(try c(IPVSNL.statsOutBPS, "STATS_OUTBPS")))
        return (s, r)
    }

    /// STATS64 when present, else STATS; nil when neither is.
    static func preferredStats(_ t: AttributeTable, stats32: UInt16, stats64: UInt16) throws -> (TrafficStats, TrafficRates)? {
        if let n = try t.nested(stats64) { return try stats(n) }
        if let n = try t.nested(stats32) { return try stats(n) }
        return nil
    }

    static func address(_ payload: ArraySlice<UInt8>, af: UInt16, _ what: String) throws -> IPAddress {
        switch af {
        case NL.afInet:
            guard payload.count >= 4 else { throw NetlinkError.malformed("\(what): \(payload.count) address bytes for IPv4") }
            return IPAddress(bytes: payload.prefix(4))!
        case NL.afInet6:
            guard payload.count >= 16 else { throw NetlinkError.malformed("\(what): \(payload.count) address bytes for IPv6") }
            return IPAddress(bytes: payload.prefix(16))!
        default:
            throw NetlinkError.malformed("\(what): unknown address family \(af)")
        }
    }

    /// One GET_SERVICE dump message → the service (without real servers) and its identity.
    static func service(_ m: GenericMessage) throws -> (VirtualService, ServiceIdentity) {
        guard let t = try m.table().nested(IPVSNL.cmdAttrService) else {
            throw NetlinkError.malformed("service message without IPVS_CMD_ATTR_SERVICE")
        }
        guard let af = try t.u16(IPVSNL.svcAF, "SVC_ATTR_AF") else {
            throw NetlinkError.malformed("service without an address family")
        }
        guard af == NL.afInet || af == NL.afInet6 else {
            throw NetlinkError.malformed("service with unknown address family \(af)")
        }
        let family: AddressFamily = af == NL.afInet ? .ipv4 : .ipv6
        let fwmark = try t.u32(IPVSNL.svcFwmark, "SVC_ATTR_FWMARK") ?? 0

        let key: ServiceKey
        var id = ServiceIdentity(af: af, fwmark: fwmark, proto: 0, addr: [UInt8](repeating: 0, count: 16), port: 0)
        if fwmark != 0 {
            key = .fwmark(fwmark, family)
        } else {
            guard let proto = try t.u16(IPVSNL.svcProtocol, "SVC_ATTR_PROTOCOL"),
                  let rawAddr = t[IPVSNL.svcAddr],
                  let port = try t.be16(IPVSNL.svcPort, "SVC_ATTR_PORT")
            else { throw NetlinkError.malformed("service without fwmark nor protocol, address and port") }
            let addr = try address(rawAddr, af: af, "service address")
            key = .address(IPProtocolNumber(rawValue: UInt8(truncatingIfNeeded: proto)), addr, port)
            id.proto = proto
            id.addr = Array(rawAddr.prefix(16)) + [UInt8](repeating: 0, count: max(0, 16 - rawAddr.count))
            id.port = port
        }

        var flags = ServiceFlags()
        if let f = t[IPVSNL.svcFlags] {
            guard f.count >= 8 else { throw NetlinkError.malformed("SVC_ATTR_FLAGS: \(f.count) bytes, expected 8") }
            flags = ServiceFlags(rawValue: hostU32(f, 0) & hostU32(f, 4))
        }

        var persistence: Persistence?
        if flags.contains(.persistent) {
            let timeout = try t.u32(IPVSNL.svcTimeout, "SVC_ATTR_TIMEOUT") ?? 0
            let netmask: PersistenceNetmask
            if let nm = t[IPVSNL.svcNetmask] {
                guard nm.count >= 4 else { throw NetlinkError.malformed("SVC_ATTR_NETMASK: \(nm.count) bytes, expected 4") }
                // IPv4: the mask itself, network order (a __be32). IPv6: the prefix length,
                // a plain host-order integer in the same 4 bytes.
                netmask = af == NL.afInet ? .ipv4(networkU32(nm, 0)) : .prefix(Int(hostU32(nm, 0)))
                // The kernel takes an IPv6 prefix of 1 to 128 only: anything else is a
                // malformed reply, not a fact (it would group clients by no real mask).
                if case .prefix(let p) = netmask, !(1...128).contains(p) {
                    throw NetlinkError.malformed("SVC_ATTR_NETMASK: IPv6 prefix \(p) is not 1-128")
                }
            } else {
                netmask = af == NL.afInet ? .ipv4(0xFFFF_FFFF) : .prefix(128)
            }
            persistence = Persistence(timeoutSeconds: timeout, timeoutJiffies: nil, netmask: netmask)
        }

        let st = try preferredStats(t, stats32: IPVSNL.svcStats, stats64: IPVSNL.svcStats64)
        let svc = VirtualService(
            key: key, scheduler: t.string(IPVSNL.svcSchedName) ?? "", flags: flags,
            persistence: persistence, persistenceEngine: t.string(IPVSNL.svcPEName),
            stats: st?.0, rates: st?.1, realServers: [])
        return (svc, id)
    }

    static func tunnelTypeName(_ v: UInt8) -> String {
        switch v {
        case 0: "ipip"
        case 1: "gue"
        case 2: "gre"
        default: "type-\(v)"
        }
    }

    /// One GET_DEST dump message → a real server. `serviceAF` applies when the kernel does
    /// not say the destination's own family (kernels before 4.x's mixed-family support).
    static func destination(_ m: GenericMessage, serviceAF: UInt16) throws -> RealServer {
        guard let t = try m.table().nested(IPVSNL.cmdAttrDest) else {
            throw NetlinkError.malformed("destination message without IPVS_CMD_ATTR_DEST")
        }
        let af = try t.u16(IPVSNL.destAddrFamily, "DEST_ATTR_ADDR_FAMILY") ?? serviceAF
        guard let rawAddr = t[IPVSNL.destAddr], let port = try t.be16(IPVSNL.destPort, "DEST_ATTR_PORT") else {
            throw NetlinkError.malformed("destination without address or port")
        }
        let addr = try address(rawAddr, af: af, "destination address")
        let fwd = try t.u32(IPVSNL.destFwdMethod, "DEST_ATTR_FWD_METHOD") ?? 0
        guard let forward = ForwardMethod(kernelValue: fwd) else {
            throw NetlinkError.malformed("destination \(addr.endpoint(port: port)): unknown forwarding method \(fwd & 7)")
        }
        var tunnel: TunnelInfo?
        if forward == .tunnel, let type = try t.u8(IPVSNL.destTunType, "DEST_ATTR_TUN_TYPE") {
            tunnel = TunnelInfo(
                type: tunnelTypeName(type),
                port: try t.be16(IPVSNL.destTunPort, "DEST_ATTR_TUN_PORT") ?? 0,
                flags: try t.u16(IPVSNL.destTunFlags, "DEST_ATTR_TUN_FLAGS") ?? 0)
        }
        let st = try preferredStats(t, stats32: IPVSNL.destStats, stats64: IPVSNL.destStats64)
        return RealServer(
            address: addr, port: port, forward: forward,
            weight: Int32(bitPattern: try t.u32(IPVSNL.destWeight, "DEST_ATTR_WEIGHT") ?? 0),
            activeConns: try t.u32(IPVSNL.destActiveConns, "DEST_ATTR_ACTIVE_CONNS") ?? 0,
            inactiveConns: try t.u32(IPVSNL.destInactConns, "DEST_ATTR_INACT_CONNS") ?? 0,
            persistentConns: try t.u32(IPVSNL.destPersistConns, "DEST_ATTR_PERSIST_CONNS"),
            upperThreshold: try t.u32(IPVSNL.destUThresh, "DEST_ATTR_U_THRESH"),
            lowerThreshold: try t.u32(IPVSNL.destLThresh, "DEST_ATTR_L_THRESH"),
            stats: st?.0, rates: st?.1, tunnel: tunnel)
    }

    /// One GET_DAEMON dump message → a sync daemon.
    static func daemon(_ m: GenericMessage) throws -> SyncDaemon {
        guard let t = try m.table().nested(IPVSNL.cmdAttrDaemon) else {
            throw NetlinkError.malformed("daemon message without IPVS_CMD_ATTR_DAEMON")
        }
        guard let state = try t.u32(IPVSNL.daemonState, "DAEMON_ATTR_STATE") else {
            throw NetlinkError.malformed("sync daemon without a state")
        }
        let role: SyncDaemon.Role
        switch state {
        case IPVSNL.daemonStateMaster: role = .master
        case IPVSNL.daemonStateBackup: role = .backup
        default: throw NetlinkError.malformed("sync daemon with unknown state \(state)")
        }
        var group: IPAddress?
        if let g6 = t[IPVSNL.daemonMcastGroup6] {
            group = try address(g6, af: NL.afInet6, "sync multicast group")
        } else if let g4 = t[IPVSNL.daemonMcastGroup] {
            group = try address(g4, af: NL.afInet, "sync multicast group")
        }
        return SyncDaemon(
            role: role,
            multicastInterface: t.string(IPVSNL.daemonMcastIfn) ?? "",
            syncID: try t.u32(IPVSNL.daemonSyncID, "DAEMON_ATTR_SYNC_ID") ?? 0,
            maxLength: try t.u16(IPVSNL.daemonSyncMaxLen, "DAEMON_ATTR_SYNC_MAXLEN"),
            multicastGroup: group,
            multicastPort: try t.u16(IPVSNL.daemonMcastPort, "DAEMON_ATTR_MCAST_PORT"),
            multicastTTL: try t.u8(IPVSNL.daemonMcastTTL, "DAEMON_ATTR_MCAST_TTL"))
    }
}
