import FoundationEssentials
import IPVSAnalysis
import IPVSModel

/// `ipvstop snapshot --json`: the snapshot in the schema documented in the README.
///
/// The schema is a public interface: fields are added, never renamed or retyped; a field
/// the source cannot give is `null`, never 0.
public enum SnapshotJSON {
    public static let schemaVersion = 1

    /// - Parameter top: how many templates to list, largest first; 0 for all.
    public static func encode(_ s: Snapshot, top: Int = 100, pretty: Bool = true, settings: AnalysisSettings = AnalysisSettings()) -> String {
        var w = JSONWriter(pretty: pretty)
        w.object { w in
            w.int("schema", schemaVersion)
            w.string("taken_at", timestamp(s.takenAt))
            // The director's `uname -n` and `uname -r` (a capture's, as it stored them).
            w.object("host") { w in
                w.string("hostname", s.host?.hostname)
                w.string("kernel_release", s.host?.kernelRelease)
            }
            w.object("ipvs") { w in
                w.string("version", s.info?.version)
                w.int("table_size", s.info.flatMap { $0.tableSize > 0 ? $0.tableSize : nil })
                status(&w, s.kernelStatus)
            }
            w.array("services") { w in
                for svc in s.services { service(&w, svc, s.tickRate) }
            }
            connections(&w, s)
            // templates[], clients[], groups[], findings[] (one-shot: a single snapshot has
            // no history).
            let analysis = Analysis.analyze(s, settings: settings)
            templates(&w, s, analysis.aggregates, top: top)
            AnalysisJSON.write(&w, analysis, s, top: top)
            w.object("sysctls") { w in
                for c in s.sysctls {
                    if let v = c.integerValue { w.int(c.name, v) } else { w.string(c.name, c.value) }
                }
            }
            global(&w, s)
            source(&w, s)
        }
        return w.output
    }

    static func timestamp(_ d: Date) -> String {
        ISO8601Text.string(from: d, milliseconds: true)
    }

    static func service(_ w: inout JSONWriter, _ svc: VirtualService, _ tick: TickRate?) {
        w.object { w in
            w.string("id", svc.id)
            switch svc.key {
            case .address(let proto, let addr, let port):
                w.string("protocol", proto.name)
                w.string("family", addr.family.rawValue)
                w.string("address", addr.description)
                w.int("port", port)
                w.null("fwmark")
            case .fwmark(let mark, let family):
                w.string("protocol", "fwmark")
                w.string("family", family.rawValue)
                w.null("address")
                w.null("port")
                w.int("fwmark", mark)
            }
            w.string("scheduler", svc.scheduler)
            w.array("flags") { w in
                for f in svc.flags.names(scheduler: svc.scheduler) { w.string(nil, f) }
            }
            if let p = svc.persistence {
                w.object("persistence") { w in
                    w.int("timeout_s", p.timeoutSeconds)
                    w.int("timeout_jiffies", p.timeoutJiffies)
                    switch p.netmask {
                    case .ipv4: w.string("netmask", p.netmask.description)
                    case .prefix(let n): w.int("netmask", n)
                    }
                }
            } else {
                w.null("persistence")
            }
            w.string("pe_name", svc.persistenceEngine)
            w.int("active_conns", svc.activeConns)
            w.int("inactive_conns", svc.inactiveConns)
            w.int("persistent_conns", svc.persistentConns)
            stats(&w, "stats", svc.stats)
            rates(&w, "rates", svc.rates)
            w.array("real_servers") { w in
                for rs in svc.realServers { realServer(&w, rs) }
            }
        }
    }

    static func realServer(_ w: inout JSONWriter, _ rs: RealServer) {
        w.object { w in
            w.string("id", rs.id)
            w.string("address", rs.address.description)
            w.int("port", rs.port)
            w.string("family", rs.address.family.rawValue)
            w.string("forward", rs.forward.rawValue)
            w.int("weight", rs.weight)
            w.int("active_conns", rs.activeConns)
            w.int("inactive_conns", rs.inactiveConns)
            w.int("persistent_conns", rs.persistentConns)
            w.int("upper_threshold", rs.upperThreshold)
            w.int("lower_threshold", rs.lowerThreshold)
            stats(&w, "stats", rs.stats)
            rates(&w, "rates", rs.rates)
            if let t = rs.tunnel {
                w.object("tunnel") { w in
                    w.string("type", t.type)
                    w.int("port", t.port)
                    w.int("flags", t.flags)
                }
            } else {
                w.null("tunnel")
            }
        }
    }

    static func stats(_ w: inout JSONWriter, _ k: String, _ s: TrafficStats?) {
        guard let s else { w.null(k); return }
        w.object(k) { w in
            w.int("conns", s.conns)
            w.int("in_packets", s.inPackets)
            w.int("out_packets", s.outPackets)
            w.int("in_bytes", s.inBytes)
            w.int("out_bytes", s.outBytes)
        }
    }

    static func rates(_ w: inout JSONWriter, _ k: String, _ r: TrafficRates?) {
        guard let r else { w.null(k); return }
        w.object(k) { w in
            w.number("cps", r.cps)
            w.number("in_pps", r.inPPS)
            w.number("out_pps", r.outPPS)
            w.number("in_bps", r.inBPS)
            w.number("out_bps", r.outBPS)
        }
    }

    static func connections(_ w: inout JSONWriter, _ s: Snapshot) {
        guard let t = s.connections else { w.null("connections"); return }
        w.object("connections") { w in
            w.int("total", t.counts.connections)
            w.int("templates", t.counts.templates)
            w.object("by_state") { w in
                for (state, n) in t.counts.byState.sorted(by: { $0.key < $1.key }) { w.int(state.name, n) }
            }
            w.object("by_protocol") { w in
                for (p, n) in t.counts.byProtocol.sorted(by: { $0.key < $1.key }) { w.int(p.name, n) }
            }
            w.object("templates_by_state") { w in
                for (state, n) in t.counts.templatesByState.sorted(by: { $0.key < $1.key }) { w.int(state.name, n) }
            }
            w.string("file", t.file)
            w.string("read_at", timestamp(t.readAt))
            w.number("age_s", s.connectionAge.map { ($0 * 1000).rounded() / 1000 })
            cost(&w, "cost", t.cost)
            w.int("skipped_lines", t.skipped.total)
            // Whether the read holds the whole table: "whole", "partial" or "unchecked".
            if let c = t.completeness {
                w.object("completeness") { w in
                    w.string("verdict", c.verdict.rawValue)
                    w.bool("partial", c.isPartial)
                    w.string("basis", c.basis.rawValue)
                    w.int("entries_read", c.entriesRead)
                    w.int("expected", c.expected)
                    w.int("tolerance", c.tolerance)
                    w.int("attempts", c.attempts)
                    w.string("detail", c.detail)
                }
            } else {
                w.null("completeness")
            }
            if let p = s.tablePacing {
                w.object("pacing") { w in
                    w.string("mode", p.mode.rawValue)
                    w.string("reason", p.reason)
                    w.number("last_cost_s", (p.lastCost * 1e6).rounded() / 1e6)
                    w.number("delay_s", (p.delay * 1000).rounded() / 1000)
                    w.number("share", p.share)
                }
            } else {
                w.null("pacing")
            }
        }
    }

    /// `ipvs.status`: /proc/net/ip_vs_status (7.1+, root only), or why not.
    static func status(_ w: inout JSONWriter, _ r: IPVSStatusReading) {
        w.object("status") { w in
            switch r {
            case .read(let st):
                w.bool("available", true)
                w.null("reason")
                w.int("conns", st.conns)
                table(&w, "conn_buckets", st.connTable)
                w.int("services", st.services)
                table(&w, "service_buckets", st.serviceTable)
                w.int("stats_thread_slots", st.statsThreadSlots)
                w.int("stats_thread_slots_max", st.statsThreadSlotsMax)
                w.int("stats_chain_max_len", st.statsChainMaxLength)
                w.int("stats_thread_ests", st.statsThreadEstimators)
                w.array("unknown_lines") { w in for l in st.unknownLines { w.string(nil, l) } }
            case .unavailable(let why):
                w.bool("available", false)
                w.string("reason", why)
            case .absent:
                w.bool("available", false)
                w.string("reason", "no net/ip_vs_status (kernels before 7.1)")
            }
        }
    }

    static func table(_ w: inout JSONWriter, _ k: String, _ t: HashTableStatus?) {
        guard let t else { w.null(k); return }
        w.object(k) { w in
            w.int("buckets", t.buckets)
            w.int("bits", t.bits)
            w.int("lfactor", t.loadFactor)
            w.int("empty", t.emptyBuckets)
            // "7" is the kernel's "7 or more".
            w.object("by_length") { w in
                for (len, n) in t.bucketsByLength.sorted(by: { $0.key < $1.key }) { w.int(String(len), n) }
            }
        }
    }

    static func templates(_ w: inout JSONWriter, _ s: Snapshot, _ agg: Aggregates, top: Int) {
        guard let t = s.connections else { w.null("templates"); return }
        let all = agg.templates
        let shown = top > 0 ? all.prefix(top) : all[...]
        w.array("templates") { w in
            for ts in shown.lazy.map(\.summary) {
                let e = t.entries[ts.entryIndex]
                w.object { w in
                    w.string("client", e.client.description)
                    w.string("protocol", e.fwmark != nil ? "fwmark" : e.proto.name)
                    w.string("service", ts.service?.description ?? (e.fwmark.map { "fwmark:\($0)" } ?? ServiceKey.address(e.proto, e.virtual, e.virtualPort).description))
                    w.bool("service_exists", ts.service != nil)
                    w.string("real_server", ts.realServer)
                    w.int("expires_s", e.expires)
                    w.string("state", e.state.name)
                    w.int("controlled_conns", ts.controlledConns)
                }
            }
        }
    }

    static func global(_ w: inout JSONWriter, _ s: Snapshot) {
        w.object("global") { w in
            stats(&w, "stats", s.global?.totals)
            rates(&w, "rates", s.global?.rates)
            w.int("table_size", s.info.flatMap { $0.tableSize > 0 ? $0.tableSize : nil })
            w.int("entry_bytes", s.slab?.objectSize)
            w.string("entry_bytes_from", s.slab?.origin)
            w.int("entry_memory_bytes", s.connectionMemoryBytes)
            if let t = s.timeouts {
                w.object("timeouts") { w in
                    w.int("tcp", t.tcp)
                    w.int("tcp_fin", t.tcpFin)
                    w.int("udp", t.udp)
                }
            } else {
                w.null("timeouts")
            }
            if let daemons = s.syncDaemons {
                w.array("sync_daemons") { w in
                    for d in daemons {
                        w.object { w in
                            w.string("state", d.role.rawValue)
                            w.string("mcast_interface", d.multicastInterface)
                            w.int("syncid", d.syncID)
                            w.int("max_length", d.maxLength)
                            w.string("mcast_group", d.multicastGroup?.description)
                            w.int("mcast_port", d.multicastPort)
                            w.int("mcast_ttl", d.multicastTTL)
                        }
                    }
                }
            } else {
                w.null("sync_daemons")
            }
        }
    }

    static func cost(_ w: inout JSONWriter, _ k: String, _ c: ReadCost) {
        w.object(k) { w in
            w.number("seconds", (c.seconds * 1e6).rounded() / 1e6)
            w.number("cpu_seconds", (c.cpuSeconds * 1e6).rounded() / 1e6)
            w.int("bytes", c.bytes)
            w.int("read_calls", c.readCalls)
        }
    }

    static func source(_ w: inout JSONWriter, _ s: Snapshot) {
        w.object("source") { w in
            w.string("proc_root", s.source.procRoot)
            w.object("netlink") { w in
                switch s.source.netlink {
                case .used(let at, let c):
                    w.bool("used", true)
                    w.string("read_at", timestamp(at))
                    cost(&w, "cost", c)
                case .off(let why):
                    w.bool("used", false)
                    w.string("reason", why)
                case .unavailable(let why):
                    w.bool("used", false)
                    w.string("reason", why)
                }
            }
            w.array("proc_files") { w in
                for f in s.source.files {
                    w.object { w in
                        w.string("name", f.name)
                        w.string("read_at", timestamp(f.readAt))
                        cost(&w, "cost", f.cost)
                    }
                }
            }
            if let t = s.tickRate {
                w.object("hz") { w in
                    w.int("value", t.hz)
                    w.string("from", t.origin.rawValue)
                }
            } else {
                w.null("hz")
            }
            w.array("warnings") { w in
                for m in s.source.warnings { w.string(nil, m) }
            }
            w.array("unavailable") { w in
                for m in s.source.unavailable { w.string(nil, m) }
            }
        }
    }
}
