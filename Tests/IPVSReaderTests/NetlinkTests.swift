import Foundation
import Testing
@testable import IPVSModel
@testable import IPVSReader

#if canImport(Glibc)
import Glibc
#endif

// Crafted generic-netlink byte buffers, fed to the pure parsing functions and to the
// client through a scripted transport. Layouts follow include/uapi/linux/ip_vs.h and what
// ip_vs_ctl.c's ip_vs_genl_fill_* put on the wire.

private let ipvsFamily: UInt16 = 0x21

// MARK: - Helpers building kernel replies

private func nlmsg(type: UInt16, flags: UInt16 = 0, seq: UInt32, pid: UInt32 = 4242, payload: [UInt8]) -> [UInt8] {
    var out = hostBytes(UInt32(16 + payload.count)) + hostBytes(type) + hostBytes(flags) + hostBytes(seq) + hostBytes(pid)
    out += payload
    while out.count % 4 != 0 { out.append(0) }
    return out
}

private func genl(_ cmd: UInt8, _ build: (inout AttributeWriter) -> Void) -> [UInt8] {
    var w = AttributeWriter()
    build(&w)
    return [cmd, 1, 0, 0] + w.bytes
}

private func errorMessage(_ errno: Int32, seq: UInt32) -> [UInt8] {
    // nlmsgerr: int error; then the request's header.
    nlmsg(type: NL.error, seq: seq, payload: hostBytes(errno) + [UInt8](repeating: 0, count: 16))
}

private func doneMessage(seq: UInt32, flags: UInt16 = NL.multi) -> [UInt8] {
    nlmsg(type: NL.done, flags: flags, seq: seq, payload: hostBytes(Int32(0)))
}

private func v4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> [UInt8] {
    [a, b, c, d] + [UInt8](repeating: 0, count: 12)
}

private let v6DocPrefix: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]

private func putStats(_ w: inout AttributeWriter, _ type: UInt16, wide: Bool, base: UInt64) {
    w.putNested(type) { s in
        func put32or64(_ t: UInt16, _ v: UInt64) {
            if wide { s.putU64(t, v) } else { s.putU32(t, UInt32(truncatingIfNeeded: v)) }
        }
        put32or64(IPVSNL.statsConns, base + 1)
        put32or64(IPVSNL.statsInPkts, base + 2)
        put32or64(IPVSNL.statsOutPkts, base + 3)
        s.putU64(IPVSNL.statsInBytes, base + 4)  // 64-bit even in STATS
        s.putU64(IPVSNL.statsOutBytes, base + 5)
        put32or64(IPVSNL.statsCPS, 6)
        put32or64(IPVSNL.statsInPPS, 7)
        put32or64(IPVSNL.statsOutPPS, 8)
        put32or64(IPVSNL.statsInBPS, 9)
        put32or64(IPVSNL.statsOutBPS, 10)
    }
}

/// IPv4 TCP 10.0.0.1:80 wlc, persistent 300 s, netmask 255.255.255.0, STATS + STATS64.
private func serviceTCPPersistent() -> [UInt8] {
    genl(IPVSNL.cmdNewService) { w in
        w.putNested(IPVSNL.cmdAttrService) { s in
            s.putU16(IPVSNL.svcAF, NL.afInet)
            s.putU16(IPVSNL.svcProtocol, 6)
            s.put(IPVSNL.svcAddr, v4(10, 0, 0, 1))
            s.putBE16(IPVSNL.svcPort, 80)
            s.putString(IPVSNL.svcSchedName, "wlc")
            s.put(IPVSNL.svcFlags, hostBytes(UInt32(0x3)) + hostBytes(UInt32.max))
            s.putU32(IPVSNL.svcTimeout, 300)
            s.put(IPVSNL.svcNetmask, [255, 255, 255, 0])
            putStats(&s, IPVSNL.svcStats, wide: false, base: 5_000_000_000)
            putStats(&s, IPVSNL.svcStats64, wide: true, base: 5_000_000_000)
        }
    }
}

/// IPv6 UDP [2001:db8::1]:53 rr, persistent 600 s with a /64 prefix (or `prefix`); STATS only.
private func serviceUDP6(prefix: UInt32 = 64) -> [UInt8] {
    genl(IPVSNL.cmdNewService) { w in
        w.putNested(IPVSNL.cmdAttrService) { s in
            s.putU16(IPVSNL.svcAF, NL.afInet6)
            s.putU16(IPVSNL.svcProtocol, 17)
            s.put(IPVSNL.svcAddr, v6DocPrefix + [1])
            s.putBE16(IPVSNL.svcPort, 53)
            s.putString(IPVSNL.svcSchedName, "rr")
            s.putString(IPVSNL.svcPEName, "sip")
            s.put(IPVSNL.svcFlags, hostBytes(UInt32(0x3)) + hostBytes(UInt32.max))
            s.putU32(IPVSNL.svcTimeout, 600)
            s.putU32(IPVSNL.svcNetmask, prefix)  // a prefix length, host order
            putStats(&s, IPVSNL.svcStats, wide: false, base: 100)
        }
    }
}

/// IPv6 fwmark 7, sh with sh-fallback, not persistent (netmask still sent, as the kernel does).
private func serviceFwmark6() -> [UInt8] {
    genl(IPVSNL.cmdNewService) { w in
        w.putNested(IPVSNL.cmdAttrService) { s in
            s.putU16(IPVSNL.svcAF, NL.afInet6)
            s.putU32(IPVSNL.svcFwmark, 7)
            s.putString(IPVSNL.svcSchedName, "sh")
            s.put(IPVSNL.svcFlags, hostBytes(UInt32(0x2 | 0x8)) + hostBytes(UInt32.max))
            s.putU32(IPVSNL.svcTimeout, 0)
            s.putU32(IPVSNL.svcNetmask, 128)
            s.putU32(99, 0xDEAD)  // an attribute from a future kernel
        }
    }
}

/// A masq destination with thresholds and PersistConn, weight 0.
private func destThresholds() -> [UInt8] {
    genl(IPVSNL.cmdNewDest) { w in
        w.putNested(IPVSNL.cmdAttrDest) { d in
            d.put(IPVSNL.destAddr, v4(192, 168, 1, 10))
            d.putBE16(IPVSNL.destPort, 8080)
            d.putU32(IPVSNL.destFwdMethod, 0)
            d.putU32(IPVSNL.destWeight, 0)
            d.putU8(IPVSNL.destTunType, 0)  // sent for every destination since 5.2
            d.putBE16(IPVSNL.destTunPort, 0)
            d.putU16(IPVSNL.destTunFlags, 0)
            d.putU32(IPVSNL.destUThresh, 100)
            d.putU32(IPVSNL.destLThresh, 10)
            d.putU32(IPVSNL.destActiveConns, 912)
            d.putU32(IPVSNL.destInactConns, 20)
            d.putU32(IPVSNL.destPersistConns, 3)
            d.putU16(IPVSNL.destAddrFamily, NL.afInet)
            putStats(&d, IPVSNL.destStats, wide: false, base: 10)
            putStats(&d, IPVSNL.destStats64, wide: true, base: 10)
            d.putU32(77, 1)  // unknown: ignored
        }
    }
}

/// An IPv4 real server under an IPv6 service, through a GUE tunnel.
private func destTunnelMixed() -> [UInt8] {
    genl(IPVSNL.cmdNewDest) { w in
        w.putNested(IPVSNL.cmdAttrDest) { d in
            d.put(IPVSNL.destAddr, v4(10, 1, 2, 3))
            d.putBE16(IPVSNL.destPort, 53)
            d.putU32(IPVSNL.destFwdMethod, 2)
            d.putU32(IPVSNL.destWeight, 5)
            d.putU8(IPVSNL.destTunType, 1)
            d.putBE16(IPVSNL.destTunPort, 6080)
            d.putU16(IPVSNL.destTunFlags, 1)
            d.putU32(IPVSNL.destUThresh, 0)
            d.putU32(IPVSNL.destLThresh, 0)
            d.putU32(IPVSNL.destActiveConns, 0)
            d.putU32(IPVSNL.destInactConns, 1)
            d.putU32(IPVSNL.destPersistConns, 0)
            d.putU16(IPVSNL.destAddrFamily, NL.afInet)
        }
    }
}

private func dump(_ payloads: [[UInt8]], seq: UInt32, type: UInt16 = ipvsFamily, flags: UInt16 = NL.multi) -> [UInt8] {
    payloads.flatMap { nlmsg(type: type, flags: flags, seq: seq, payload: $0) } + doneMessage(seq: seq)
}

private func collect(_ datagrams: [[UInt8]], seq: UInt32, type: UInt16 = ipvsFamily) throws -> ReplyCollector {
    var c = ReplyCollector(seq: seq, portID: 4242, familyType: type, label: "TEST")
    for d in datagrams { try c.consume(d) }
    return c
}

private func decodeServices(_ payloads: [[UInt8]]) throws -> [(VirtualService, ServiceIdentity)] {
    let c = try collect([dump(payloads, seq: 9)], seq: 9)
    #expect(c.finished)
    return try c.messages.map(IPVSDecode.service)
}

// MARK: - Requests

@Suite("Netlink requests")
struct NetlinkRequestTests {
    @Test func getFamilyRequestBytes() throws {
        let bytes = buildGetFamilyRequest(name: "IPVS", seq: 1, pid: 0x1234)
        #if _endian(little)
        #expect(bytes == [
            0x20, 0, 0, 0,  // nlmsg_len 32
            0x10, 0,  // GENL_ID_CTRL
            0x05, 0,  // NLM_F_REQUEST | NLM_F_ACK
            1, 0, 0, 0,  // seq
            0x34, 0x12, 0, 0,  // pid
            3, 1, 0, 0,  // CTRL_CMD_GETFAMILY, version 1
            9, 0, 2, 0,  // nla_len 9, CTRL_ATTR_FAMILY_NAME
            0x49, 0x50, 0x56, 0x53, 0,  // "IPVS\0"
            0, 0, 0,  // padding
        ])
        #endif
        #expect(bytes.count == 32)
    }

    @Test func dumpRequestFlags() throws {
        let m = try parseNetlinkMessages(buildIPVSRequest(family: ipvsFamily, command: IPVSNL.cmdGetService, dump: true, seq: 7, pid: 1))
        #expect(m.count == 1)
        #expect(m[0].type == ipvsFamily)
        #expect(m[0].flags == 0x301)  // REQUEST | DUMP
        #expect(m[0].seq == 7)
        #expect(Array(m[0].payload) == [4, 1, 0, 0])
    }

    @Test func getDestCarriesTheServiceIdentity() throws {
        let id = ServiceIdentity(af: NL.afInet, fwmark: 0, proto: 6, addr: v4(10, 0, 0, 1), port: 80)
        let m = try parseNetlinkMessages(buildGetDestRequest(family: ipvsFamily, service: id, seq: 3, pid: 1))
        let g = try GenericMessage(payload: m[0].payload)
        #expect(g.command == IPVSNL.cmdGetDest)
        let outer = try parseAttributes(g.attributes)
        #expect(outer.count == 1)
        #expect(outer[0].type == IPVSNL.cmdAttrService)  // NLA_F_NESTED masked off
        let s = try AttributeTable(outer[0].payload)
        #expect(try s.u16(IPVSNL.svcAF, "") == 2)
        #expect(try s.u16(IPVSNL.svcProtocol, "") == 6)
        #expect(s[IPVSNL.svcAddr].map(Array.init) == v4(10, 0, 0, 1))
        #expect(s[IPVSNL.svcPort].map(Array.init) == [0, 80])  // network order
        #expect(!s.has(IPVSNL.svcFwmark))

        let fw = ServiceIdentity(af: NL.afInet6, fwmark: 7, proto: 0, addr: [UInt8](repeating: 0, count: 16), port: 0)
        let m2 = try parseNetlinkMessages(buildGetDestRequest(family: ipvsFamily, service: fw, seq: 4, pid: 1))
        let s2 = try GenericMessage(payload: m2[0].payload).table().nested(IPVSNL.cmdAttrService)!
        #expect(try s2.u16(IPVSNL.svcAF, "") == 10)
        #expect(try s2.u32(IPVSNL.svcFwmark, "") == 7)
        #expect(!s2.has(IPVSNL.svcAddr))
    }
}

// MARK: - Replies

@Suite("Netlink replies")
struct NetlinkReplyTests {
    @Test func familyReplyAndAck() throws {
        // CTRL_CMD_NEWFAMILY with FAMILY_ID 0x21 and FAMILY_NAME, then the ACK, one datagram.
        var w = AttributeWriter()
        w.putU16(NL.ctrlAttrFamilyID, 0x21)
        w.putString(NL.ctrlAttrFamilyName, "IPVS")
        w.putU32(3, 1)  // CTRL_ATTR_VERSION
        let d = nlmsg(type: NL.genlIDCtrl, seq: 5, payload: [NL.ctrlCmdNewFamily, 2, 0, 0] + w.bytes) + errorMessage(0, seq: 5)
        let c = try collect([d], seq: 5, type: NL.genlIDCtrl)
        #expect(c.finished)
        #expect(try IPVSDecode.familyID(c.messages) == 0x21)
    }

    @Test func infoVersionDecoding() throws {
        #if _endian(little)
        // GET_INFO reply as the kernel sends it: IPVS_CMD_SET_INFO, VERSION 0x010201, CONN_TAB_SIZE 4096.
        let payload: [UInt8] = [
            14, 1, 0, 0,
            8, 0, 1, 0, 0x01, 0x02, 0x01, 0x00,
            8, 0, 2, 0, 0x00, 0x10, 0x00, 0x00,
        ]
        let c = try collect([nlmsg(type: ipvsFamily, seq: 2, payload: payload), errorMessage(0, seq: 2)], seq: 2)
        let info = try IPVSDecode.info(c.messages)
        #expect(info.version == "1.2.1")
        #expect(info.tableSize == 4096)
        #endif
        #expect(IPVSDecode.versionString(0x010201) == "1.2.1")
        #expect(IPVSDecode.versionString(0x020A0F) == "2.10.15")
    }

    @Test func configTimeouts() throws {
        let p = genl(IPVSNL.cmdSetConfig) { w in
            w.putU32(IPVSNL.cmdAttrTimeoutTCP, 900)
            w.putU32(IPVSNL.cmdAttrTimeoutTCPFin, 120)
            w.putU32(IPVSNL.cmdAttrTimeoutUDP, 300)
        }
        let c = try collect([nlmsg(type: ipvsFamily, seq: 1, payload: p) + errorMessage(0, seq: 1)], seq: 1)
        #expect(try IPVSDecode.timeouts(c.messages) == Timeouts(tcp: 900, tcpFin: 120, udp: 300))
    }

    @Test func persistentIPv4ServiceWithNetmaskPrefersStats64() throws {
        let (svc, id) = try decodeServices([serviceTCPPersistent()])[0]
        #expect(svc.key == .address(.tcp, IPAddress(ipv4: 0x0A00_0001), 80))
        #expect(svc.key.description == "tcp:10.0.0.1:80")
        #expect(svc.scheduler == "wlc")
        #expect(svc.flags == [.persistent, .hashed])
        #expect(svc.persistence == Persistence(timeoutSeconds: 300, timeoutJiffies: nil, netmask: .ipv4(0xFFFF_FF00)))
        #expect(svc.persistence?.netmask.description == "255.255.255.0")
        #expect(svc.persistenceEngine == nil)
        // STATS64: past 2^32, where STATS would have wrapped.
        #expect(svc.stats == TrafficStats(conns: 5_000_000_001, inPackets: 5_000_000_002, outPackets: 5_000_000_003,
                                          inBytes: 5_000_000_004, outBytes: 5_000_000_005))
        #expect(svc.rates == TrafficRates(cps: 6, inPPS: 7, outPPS: 8, inBPS: 9, outBPS: 10))
        #expect(id == ServiceIdentity(af: 2, fwmark: 0, proto: 6, addr: v4(10, 0, 0, 1), port: 80))
    }

    @Test func ipv6ServiceWithPrefixAndStats32() throws {
        let (svc, _) = try decodeServices([serviceUDP6()])[0]
        let addr = IPAddress("2001:db8::1")!
        #expect(svc.key == .address(.udp, addr, 53))
        #expect(svc.key.description == "udp:[2001:db8::1]:53")
        #expect(svc.persistence == Persistence(timeoutSeconds: 600, timeoutJiffies: nil, netmask: .prefix(64)))
        #expect(svc.persistenceEngine == "sip")
        #expect(svc.stats == TrafficStats(conns: 101, inPackets: 102, outPackets: 103, inBytes: 104, outBytes: 105))
    }

    @Test func fwmarkServiceIsNotPersistent() throws {
        let (svc, id) = try decodeServices([serviceFwmark6()])[0]
        #expect(svc.key == .fwmark(7, .ipv6))
        #expect(svc.key.description == "fwmark6:7")
        #expect(svc.flags == [.hashed, .sched1])
        #expect(svc.flags.names(scheduler: svc.scheduler) == ["hashed", "sh-fallback"])
        #expect(svc.persistence == nil)
        #expect(svc.stats == nil)
        #expect(id.fwmark == 7 && id.af == 10)
    }

    @Test func servicesKeepKernelOrder() throws {
        let all = try decodeServices([serviceFwmark6(), serviceTCPPersistent(), serviceUDP6()])
        #expect(all.map { $0.0.key.description } == ["fwmark6:7", "tcp:10.0.0.1:80", "udp:[2001:db8::1]:53"])
    }

    @Test func destinationWithThresholdsAndPersistConn() throws {
        let c = try collect([dump([destThresholds()], seq: 3)], seq: 3)
        let rs = try IPVSDecode.destination(c.messages[0], serviceAF: NL.afInet)
        #expect(rs.address == IPAddress(ipv4: 0xC0A8_010A))
        #expect(rs.port == 8080)
        #expect(rs.forward == .masq)
        #expect(rs.weight == 0 && rs.isQuiescent)
        #expect(rs.upperThreshold == 100)
        #expect(rs.lowerThreshold == 10)
        #expect(rs.activeConns == 912)
        #expect(rs.inactiveConns == 20)
        #expect(rs.persistentConns == 3)
        #expect(rs.tunnel == nil)  // tunnel attributes are sent for every destination
        #expect(rs.stats?.conns == 11 && rs.stats?.inBytes == 14)
        #expect(rs.rates?.outBPS == 10)
    }

    @Test func mixedFamilyTunnelDestination() throws {
        let c = try collect([dump([destTunnelMixed()], seq: 3)], seq: 3)
        let rs = try IPVSDecode.destination(c.messages[0], serviceAF: NL.afInet6)
        #expect(rs.address == IPAddress(ipv4: 0x0A01_0203))
        #expect(rs.address.family == .ipv4)
        #expect(rs.id == "10.1.2.3:53")
        #expect(rs.forward == .tunnel)
        #expect(rs.weight == 5)
        #expect(rs.tunnel == TunnelInfo(type: "gue", port: 6080, flags: 1))
        #expect(rs.stats == nil && rs.rates == nil)
        #expect(IPVSDecode.tunnelTypeName(0) == "ipip" && IPVSDecode.tunnelTypeName(2) == "gre")
    }

    @Test func destinationWithoutFamilyUsesTheService() throws {
        let p = genl(IPVSNL.cmdNewDest) { w in
            w.putNested(IPVSNL.cmdAttrDest) { d in
                d.put(IPVSNL.destAddr, v6DocPrefix + [2])
                d.putBE16(IPVSNL.destPort, 443)
                d.putU32(IPVSNL.destFwdMethod, 3)
                d.putU32(IPVSNL.destWeight, UInt32(bitPattern: 1))
            }
        }
        let rs = try IPVSDecode.destination(try GenericMessage(payload: p[...]), serviceAF: NL.afInet6)
        #expect(rs.id == "[2001:db8::2]:443")
        #expect(rs.forward == .route)
        #expect(rs.persistentConns == nil && rs.upperThreshold == nil)
    }

    @Test func syncDaemons() throws {
        let master = genl(IPVSNL.cmdNewDaemon) { w in
            w.putNested(IPVSNL.cmdAttrDaemon) { d in
                d.putU32(IPVSNL.daemonState, 1)
                d.putString(IPVSNL.daemonMcastIfn, "eth0")
                d.putU32(IPVSNL.daemonSyncID, 7)
                d.putU16(IPVSNL.daemonSyncMaxLen, 1472)
                d.putU16(IPVSNL.daemonMcastPort, 8848)
                d.putU8(IPVSNL.daemonMcastTTL, 1)
                d.put(IPVSNL.daemonMcastGroup, [224, 0, 0, 81])
            }
        }
        let backup = genl(IPVSNL.cmdNewDaemon) { w in
            w.putNested(IPVSNL.cmdAttrDaemon) { d in
                d.putU32(IPVSNL.daemonState, 2)
                d.putString(IPVSNL.daemonMcastIfn, "eth1")
                d.putU32(IPVSNL.daemonSyncID, 0)
                d.put(IPVSNL.daemonMcastGroup6, [0xff, 0x02] + [UInt8](repeating: 0, count: 13) + [0x51])
            }
        }
        let c = try collect([dump([master, backup], seq: 8)], seq: 8)
        let ds = try c.messages.map(IPVSDecode.daemon)
        #expect(ds == [
            SyncDaemon(role: .master, multicastInterface: "eth0", syncID: 7, maxLength: 1472,
                       multicastGroup: IPAddress(ipv4: 0xE000_0051), multicastPort: 8848, multicastTTL: 1),
            SyncDaemon(role: .backup, multicastInterface: "eth1", syncID: 0,
                       multicastGroup: IPAddress("ff02::51")),
        ])
        #expect(try collect([doneMessage(seq: 8)], seq: 8).messages.isEmpty)
    }

    @Test func dumpAcrossDatagramsAndStaleMessages() throws {
        // A stale reply (other seq) first, then the dump split over two datagrams.
        let stale = nlmsg(type: ipvsFamily, flags: NL.multi, seq: 99, payload: serviceUDP6())
        let first = stale + nlmsg(type: ipvsFamily, flags: NL.multi, seq: 10, payload: serviceTCPPersistent())
        var c = ReplyCollector(seq: 10, portID: 4242, familyType: ipvsFamily, label: "GET_SERVICE")
        try c.consume(first)
        #expect(!c.finished)
        try c.consume(dump([serviceFwmark6()], seq: 10))
        #expect(c.finished)
        #expect(c.messages.count == 2)
        #expect(c.skipped == 1)
        #expect(!c.interrupted)
    }

    @Test func dumpInterruptedFlagIsSeen() throws {
        let d = dump([serviceTCPPersistent()], seq: 4, flags: NL.multi | NL.dumpInterrupted)
        let c = try collect([d], seq: 4)
        #expect(c.interrupted)
        #expect(c.finished)
    }
}

// MARK: - Errors

@Suite("Netlink errors")
struct NetlinkErrorTests {
    @Test func epermMeansCapNetAdmin() throws {
        #expect(throws: NetlinkError.permissionDenied(command: "TEST")) {
            try collect([errorMessage(-EPERM, seq: 1)], seq: 1)
        }
        let text = NetlinkError.permissionDenied(command: "GET_INFO").description
        #expect(text.contains("needs CAP_NET_ADMIN (run as root)"))
    }

    @Test func otherKernelErrorsKeepTheirErrno() throws {
        #expect(throws: NetlinkError.kernel(command: "TEST", errno: ESRCH)) {
            try collect([errorMessage(-ESRCH, seq: 1)], seq: 1)
        }
        // A dump can end with an error in NLMSG_DONE.
        let done = nlmsg(type: NL.done, flags: NL.multi, seq: 1, payload: hostBytes(Int32(-EMSGSIZE)))
        #expect(throws: NetlinkError.kernel(command: "TEST", errno: EMSGSIZE)) {
            try collect([done], seq: 1)
        }
        #expect(NetlinkError.kernel(command: "GET_DEST", errno: EINVAL).description.contains("errno 22"))
    }

    @Test func truncatedAttributeThrows() throws {
        // nla_len 12 but only 8 bytes of attribute present.
        let attrs: [UInt8] = [12, 0, 1, 0, 1, 2, 3, 4]
        #expect(throws: NetlinkError.self) { try parseAttributes(attrs[...]) }
        do {
            _ = try parseAttributes(attrs[...])
        } catch NetlinkError.truncated(let what) {
            #expect(what.contains("12"))
        }
    }

    @Test func attributeShorterThanItsHeader() throws {
        #expect(throws: NetlinkError.malformed("attribute 1 has length 2, shorter than its header")) {
            try parseAttributes([2, 0, 1, 0, 0, 0, 0, 0][...])
        }
    }

    @Test func badMessageLengths() throws {
        var short = nlmsg(type: ipvsFamily, seq: 1, payload: [4, 1, 0, 0])
        short[0] = 8; short[1] = 0; short[2] = 0; short[3] = 0
        #expect(throws: NetlinkError.malformed("netlink message length 8 is shorter than its header")) {
            try parseNetlinkMessages(short)
        }
        var long = nlmsg(type: ipvsFamily, seq: 1, payload: [4, 1, 0, 0])
        long[0] = 200
        #expect(throws: NetlinkError.truncated("netlink message of 200 bytes, only 20 received")) {
            try parseNetlinkMessages(long)
        }
        // A genl message without its 4-byte header.
        let bare = nlmsg(type: ipvsFamily, seq: 1, payload: [])
        #expect(throws: NetlinkError.truncated("generic netlink header: 0 bytes, expected 4")) {
            try collect([bare], seq: 1)
        }
        // An error message too short for its errno.
        #expect(throws: NetlinkError.truncated("TEST: error message of 0 bytes")) {
            try collect([nlmsg(type: NL.error, seq: 1, payload: [])], seq: 1)
        }
    }

    @Test func wrongAttributeWidthsAndMissingKeys() throws {
        let shortAF = genl(IPVSNL.cmdNewService) { w in
            w.putNested(IPVSNL.cmdAttrService) { s in s.put(IPVSNL.svcAF, [2]) }
        }
        #expect(throws: NetlinkError.malformed("SVC_ATTR_AF: 1 bytes, expected 2")) {
            try IPVSDecode.service(GenericMessage(payload: shortAF[...]))
        }
        let noKey = genl(IPVSNL.cmdNewService) { w in
            w.putNested(IPVSNL.cmdAttrService) { s in s.putU16(IPVSNL.svcAF, 2); s.putString(IPVSNL.svcSchedName, "rr") }
        }
        #expect(throws: NetlinkError.malformed("service without fwmark nor protocol, address and port")) {
            try IPVSDecode.service(GenericMessage(payload: noKey[...]))
        }
        let shortAddr = genl(IPVSNL.cmdNewService) { w in
            w.putNested(IPVSNL.cmdAttrService) { s in
                s.putU16(IPVSNL.svcAF, 10); s.putU16(IPVSNL.svcProtocol, 6)
                s.put(IPVSNL.svcAddr, [1, 2, 3, 4]); s.putBE16(IPVSNL.svcPort, 80)
            }
        }
        #expect(throws: NetlinkError.malformed("service address: 4 address bytes for IPv6")) {
            try IPVSDecode.service(GenericMessage(payload: shortAddr[...]))
        }
        let badStats = genl(IPVSNL.cmdNewDest) { w in
            w.putNested(IPVSNL.cmdAttrDest) { d in
                d.put(IPVSNL.destAddr, v4(1, 2, 3, 4)); d.putBE16(IPVSNL.destPort, 1)
                d.putNested(IPVSNL.destStats64) { s in s.put(IPVSNL.statsConns, [1, 2]) }
            }
        }
        #expect(throws: NetlinkError.malformed("STATS_CONNS: 2 bytes, expected 4 or 8")) {
            try IPVSDecode.destination(GenericMessage(payload: badStats[...]), serviceAF: 2)
        }
        let badFwd = genl(IPVSNL.cmdNewDest) { w in
            w.putNested(IPVSNL.cmdAttrDest) { d in
                d.put(IPVSNL.destAddr, v4(1, 2, 3, 4)); d.putBE16(IPVSNL.destPort, 1); d.putU32(IPVSNL.destFwdMethod, 6)
            }
        }
        #expect(throws: NetlinkError.malformed("destination 1.2.3.4:1: unknown forwarding method 6")) {
            try IPVSDecode.destination(GenericMessage(payload: badFwd[...]), serviceAF: 2)
        }
    }

    /// Every prefix of a valid dump, with the outer lengths patched to claim exactly what
    /// is there, must decode or throw a NetlinkError: never trap.
    @Test func everyTruncationThrowsOrDecodes() throws {
        let payload = serviceTCPPersistent()
        var thrown = 0, decoded = 0
        for cut in 0...payload.count {
            var msg = nlmsg(type: ipvsFamily, seq: 1, payload: Array(payload.prefix(cut)))
            let len = hostBytes(UInt32(16 + cut))
            for i in 0..<4 { msg[i] = len[i] }
            do {
                let c = try collect([msg], seq: 1)
                for m in c.messages { _ = try IPVSDecode.service(m) }
                decoded += 1
            } catch is NetlinkError {
                thrown += 1
            }
        }
        #expect(thrown > 0)
        #expect(thrown + decoded == payload.count + 1)
        // And byte flips anywhere in the attributes.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var p = payload
            for _ in 0..<3 { p[Int.random(in: 4..<p.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            do { _ = try IPVSDecode.service(GenericMessage(payload: p[...])) } catch is NetlinkError {}
        }
    }
}

// MARK: - The whole read, over a scripted transport

/// Answers requests the way the kernel does, from a table of services and destinations.
final class FakeKernel: NetlinkTransport {  // also CaptureTests' kernel
    let portID: UInt32 = 4242
    var queue: [[UInt8]] = []
    var requests: [(command: UInt8, attributes: [UInt8])] = []
    var familyError: Int32?
    var ipvsError: Int32?
    /// How many GET_SERVICE dumps report NLM_F_DUMP_INTR before a clean one.
    var interruptions = 0
    var services: [[UInt8]] = [serviceTCPPersistent(), serviceUDP6()]
    /// Destinations by the requested service's port.
    var dests: [UInt16: [[UInt8]]] = [80: [destThresholds()], 53: [destTunnelMixed(), destThresholds()]]

    func send(_ message: [UInt8], label: String) throws {
        let m = try parseNetlinkMessages(message)[0]
        let g = try GenericMessage(payload: m.payload)
        requests.append((g.command, Array(g.attributes)))
        let seq = m.seq
        if m.type == NL.genlIDCtrl {
            if let e = familyError { queue.append(errorMessage(-e, seq: seq)); return }
            var w = AttributeWriter()
            w.putU16(NL.ctrlAttrFamilyID, ipvsFamily)
            queue.append(nlmsg(type: NL.genlIDCtrl, seq: seq, payload: [1, 2, 0, 0] + w.bytes))
            queue.append(errorMessage(0, seq: seq))
            return
        }
        if let e = ipvsError { queue.append(errorMessage(-e, seq: seq)); return }
        switch g.command {
        case IPVSNL.cmdGetInfo:
            let p = genl(IPVSNL.cmdSetInfo) { w in w.putU32(1, 0x010201); w.putU32(2, 4096) }
            queue.append(nlmsg(type: ipvsFamily, seq: seq, payload: p) + errorMessage(0, seq: seq))
        case IPVSNL.cmdGetService:
            let flags = interruptions > 0 ? NL.multi | NL.dumpInterrupted : NL.multi
            interruptions -= 1
            // One datagram per service, as a small receive buffer would get them.
            for s in services { queue.append(nlmsg(type: ipvsFamily, flags: flags, seq: seq, payload: s)) }
            queue.append(doneMessage(seq: seq))
        case IPVSNL.cmdGetDest:
            let svc = try g.table().nested(IPVSNL.cmdAttrService)!
            let port = try svc.be16(IPVSNL.svcPort, "") ?? 0
            queue.append(dump(dests[port] ?? [], seq: seq))
        case IPVSNL.cmdGetConfig:
            let p = genl(IPVSNL.cmdSetConfig) { w in w.putU32(4, 900); w.putU32(5, 120); w.putU32(6, 300) }
            queue.append(nlmsg(type: ipvsFamily, seq: seq, payload: p) + errorMessage(0, seq: seq))
        case IPVSNL.cmdGetDaemon:
            queue.append(doneMessage(seq: seq))
        default:
            queue.append(errorMessage(-EINVAL, seq: seq))
        }
    }

    func receive(label: String) throws -> [UInt8] {
        guard !queue.isEmpty else { throw NetlinkError.timeout(command: label, seconds: 0) }
        return queue.removeFirst()
    }
}

@Suite("Netlink client")
struct NetlinkClientTests {
    @Test func fullRead() throws {
        let k = FakeKernel()
        let client = try IPVSNetlinkClient(transport: k)
        #expect(client.familyID == ipvsFamily)
        let r = try client.read()
        #expect(r.info == IPVSInfo(version: "1.2.1", tableSize: 4096))
        #expect(r.timeouts == Timeouts(tcp: 900, tcpFin: 120, udp: 300))
        #expect(r.syncDaemons.isEmpty)
        #expect(r.services.map(\.id) == ["tcp:10.0.0.1:80", "udp:[2001:db8::1]:53"])
        #expect(r.services[0].realServers.map(\.id) == ["192.168.1.10:8080"])
        #expect(r.services[1].realServers.map(\.id) == ["10.1.2.3:53", "192.168.1.10:8080"])
        #expect(r.services[1].realServers[0].tunnel?.type == "gue")
        // family + info + service dump (3 datagrams) + 2 dest dumps + config + daemon
        #expect(r.cost.readCalls == 1 + 3 + 2 + 1 + 1)
        #expect(r.cost.bytes > 0)
        #expect(r.cost.seconds >= 0 && r.cost.cpuSeconds >= 0)
        // The GET_DEST requests named their services.
        let destRequests = k.requests.filter { $0.command == IPVSNL.cmdGetDest }
        #expect(destRequests.count == 2)
    }

    @Test func dumpInterruptedRetriesThenSucceeds() throws {
        let k = FakeKernel()
        k.interruptions = 2
        let r = try IPVSNetlinkClient(transport: k).read()
        #expect(r.services.count == 2)
        #expect(k.requests.filter { $0.command == IPVSNL.cmdGetService }.count == 3)
    }

    @Test func dumpInterruptedEveryTimeIsReported() throws {
        let k = FakeKernel()
        k.interruptions = 10
        #expect(throws: NetlinkError.dumpInterrupted(attempts: 3)) { try IPVSNetlinkClient(transport: k).read() }
    }

    @Test func unprivilegedRead() throws {
        let k = FakeKernel()
        k.ipvsError = EPERM
        let client = try IPVSNetlinkClient(transport: k)  // the family lookup needs no privilege
        #expect(throws: NetlinkError.permissionDenied(command: "GET_INFO")) { try client.read() }
    }

    @Test func missingFamily() throws {
        let k = FakeKernel()
        k.familyError = ENOENT
        #expect(throws: NetlinkError.familyNotFound) { try IPVSNetlinkClient(transport: k) }
        #expect(NetlinkError.familyNotFound.description.contains("modprobe ip_vs"))
    }

    @Test func duplicateServiceInADumpIsDropped() throws {
        let k = FakeKernel()
        k.services = [serviceTCPPersistent(), serviceTCPPersistent(), serviceFwmark6()]
        let r = try IPVSNetlinkClient(transport: k).read()
        #expect(r.services.map(\.id) == ["tcp:10.0.0.1:80", "fwmark6:7"])
        #expect(r.services[1].realServers.isEmpty)
    }

    /// A real socket against the running kernel: the controller family itself (`nlctrl`,
    /// always there) resolves to GENL_ID_CTRL, exercising send, receive and the ACK.
    @Test func realSocketTalksToTheKernel() throws {
        let socket = try NetlinkSocket(receiveTimeout: 2)
        #expect(socket.portID != 0)
        let conversation = NetlinkConversation(transport: socket)
        #expect(try conversation.resolveFamily("nlctrl") == NL.genlIDCtrl)
        #expect(conversation.receiveCalls == 2)  // the reply, then the ACK
        #expect(throws: NetlinkError.familyNotFound) { try conversation.resolveFamily("no-such-family") }
    }

    /// Without ip_vs loaded the client says so without asking the kernel (which would load
    /// the module as a side effect, even for an unprivileged user).
    @Test func noModuleNoAutoload() throws {
        guard access("/sys/module", F_OK) == 0, access("/sys/module/ip_vs", F_OK) != 0 else { return }
        #expect(throws: NetlinkError.familyNotFound) { try IPVSNetlinkClient() }
    }
}

// MARK: - Issue 25: replies carrying INT32_MIN (Tests/Fixtures/bad-inputs/netlink)

/// Replays a recorded conversation: each `receive` gives the next datagram, its messages'
/// sequence numbers set to the request just sent (the recording's were the fuzzer's).
private final class RecordedKernel: NetlinkTransport {
    let portID: UInt32 = 4242
    var datagrams: [[UInt8]]
    var seq: UInt32 = 0

    init(_ datagrams: [[UInt8]]) { self.datagrams = datagrams }

    func send(_ message: [UInt8], label: String) throws {
        seq = try parseNetlinkMessages(message)[0].seq
    }

    func receive(label: String) throws -> [UInt8] {
        guard !datagrams.isEmpty else { throw NetlinkError.timeout(command: label, seconds: 0) }
        var d = datagrams.removeFirst()
        var i = 0
        while i + 16 <= d.count {
            let len = Int(hostU32(d[...], i))
            for (k, b) in hostBytes(seq).enumerated() { d[i + 8 + k] = b }
            guard len >= 16 else { break }
            i += (len + 3) & ~3
        }
        return d
    }
}

@Suite struct NetlinkBadInputTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/bad-inputs/netlink").path

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
    }

    /// `netlink-…`: the sequence number (u32) the reply answers, then one datagram whose
    /// NLMSG_DONE carries INT32_MIN. Negating it trapped; now it is a malformed reply.
    @Test func doneWithInt32MinIsMalformedNotATrap() throws {
        let b = try Self.bytes("netlink-nlmsg-done-code-INT32_MIN.bin")
        let seq = hostU32(b[...], 0)
        var c = ReplyCollector(seq: seq, portID: 4242, familyType: ipvsFamily, label: "GET_DAEMON")
        #expect(throws: NetlinkError.malformed("GET_DAEMON: error code -2147483648 is not an errno")) {
            try c.consume(Array(b[4...]))
        }
    }

    /// `netconv-…`: a whole conversation (u16 length, then a datagram, repeated) whose
    /// replies end in an NLMSG_DONE with INT32_MIN: the client ends with an error.
    @Test func conversationWithInt32MinEndsInAnError() throws {
        let b = try Self.bytes("netconv-nlmsg-done-code-INT32_MIN.bin")
        var datagrams: [[UInt8]] = []
        var i = 0
        while i + 2 <= b.count {
            let n = Int(b[i]) | Int(b[i + 1]) << 8
            guard i + 2 + n <= b.count else { break }
            datagrams.append(Array(b[(i + 2)..<(i + 2 + n)]))
            i += 2 + n
        }
        #expect(datagrams.count > 2)
        let client = try IPVSNetlinkClient(transport: RecordedKernel(datagrams))
        do {
            _ = try client.read()
            Issue.record("the conversation was accepted")
        } catch let e as NetlinkError {
            #expect("\(e)".contains("error code -2147483648 is not an errno"), "\(e)")
        }
    }

    @Test func everyErrorCodeIsHandled() throws {
        for code: Int32 in [Int32.min, Int32.min + 1, -4096, -4095, -1, 1, 4095, 4096, Int32.max] {
            var c = ReplyCollector(seq: 1, portID: 4242, familyType: ipvsFamily, label: "X")
            let msg = nlmsg(type: NL.error, seq: 1, payload: hostBytes(UInt32(bitPattern: code)) + [UInt8](repeating: 0, count: 16))
            do {
                try c.consume(msg)
                Issue.record("code \(code) accepted")
            } catch let e as NetlinkError {
                if (1...4095).contains(code.magnitude) {
                    #expect(e != NetlinkError.malformed("X: error code \(code) is not an errno"))
                } else {
                    #expect(e == NetlinkError.malformed("X: error code \(code) is not an errno"))
                }
            }
        }
    }
}

extension NetlinkBadInputTests {
    /// A persistent IPv6 service whose prefix the kernel would never give: malformed.
    @Test(arguments: [UInt32(0), 129, UInt32.max])
    func ipv6PrefixOutside1To128IsMalformed(_ prefix: UInt32) throws {
        let p = serviceUDP6(prefix: prefix)
        #expect(throws: NetlinkError.malformed("SVC_ATTR_NETMASK: IPv6 prefix \(prefix) is not 1-128")) {
            _ = try IPVSDecode.service(GenericMessage(payload: p[...]))
        }
    }
}
