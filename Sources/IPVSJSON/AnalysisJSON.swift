import FoundationEssentials
import IPVSAnalysis
import IPVSModel

/// The analysis in `snapshot --json` (`clients`, `groups`, `findings`, `analysis`) and in
/// `check --json`. Same rules as the rest of the schema: fields are added, never renamed;
/// what the data cannot give is `null`.
///
/// ```jsonc
/// "clients": [{                        // null without the table; busiest first, --top N
///   "address": "172.16.3.66", "family": "ipv4",
///   "connections": 100, "active_conns": 100, "inactive_conns": 0,
///   "by_state": { "ESTABLISHED": 100 },  // also SYN_RECV FIN_WAIT TIME_WAIT CLOSE_WAIT UDP OTHER
///   "templates": 0,                      // templates of its own address (not a netmask group's)
///   "services": ["tcp:10.0.0.100:80"],
///   "real_servers": [{ "service": "tcp:10.0.0.100:80", "real_server": "192.168.1.2:80",
///                      "exists": true,   // false: deleted real server or service
///                      "active_conns": 50, "inactive_conns": 0, "templates": 0,
///                      "share_of_active": 0.7692, "share_of_inactive": 0 }]  // of that server's, in the table
/// }],
/// "groups": [{                         // services with a persistence netmask: clients as the kernel groups them
///   "service": "tcp:10.0.0.101:8080", "group": "172.16.2.0/24", "address": "172.16.2.0",
///   "prefix_length": 24, "clients": 50, "connections": 50, "active_conns": 50,
///   "inactive_conns": 0, "by_state": { ... }, "templates": 1,
///   "real_servers": [{ "real_server": "192.168.1.2:8080", "exists": true,
///                      "connections": 50, "templates": 1, "share": 1 }]
/// }],
/// "findings": [{                       // worst first
///   "id": 3,                             // given at raise, never reused in the process
///   "key": "imbalance/tcp:10.0.0.101:8080/192.168.1.2:8080",   // stable while it lasts
///   "kind": "imbalance",                 // service_down rogue_client imbalance quiescent_fed
///                                        // dead_destination template_overstay table_pressure sync
///   "severity": "warning",               // info | warning | critical
///   "subject": "192.168.1.2:8080 of tcp:10.0.0.101:8080 (over its weight)",
///   "since": "...", "last_seen": "...",
///   "explanation": "Real server 192.168.1.2:8080 holds 100% of ...",
///   "evidence": { "connections": 50, "weight_share": 0.5, "cause": "pinned_group", ... },  // per kind
///   "advice": "The scheduler cannot move a pinned group: ..."
/// }],
/// "analysis": { "pending": 0, "worst_severity": "warning",
///               "limitations": ["one read of the connection table: ..."],   // what was not judged
///               "attribution": [{ "service": "tcp:10.0.0.1:80", "entries": "address",
///                                 "shares_real_servers_with": [], "notes": [] }] }
///               // entries: address | real_server (fwmark: by real server) | kernel_counts
///               // (a real server shared with an fwmark service, decided by the kernel's
///               // per-destination counters) | undecided (the table cannot tell)
/// ```
public enum AnalysisJSON {
    /// Writes `clients`, `groups`, `findings` and `analysis` into the object being written,
    /// analysing `s` once (no hysteresis: a one-shot analysis with default thresholds).
    /// - Parameter top: how many clients and groups to list, busiest first; 0 for all.
    public static func analysis(_ w: inout JSONWriter, _ s: Snapshot, top: Int, settings: AnalysisSettings = AnalysisSettings()) {
        write(&w, Analysis.analyze(s, settings: settings), s, top: top)
    }

    /// The same from a result already computed (an `Analyzer`'s, with its hysteresis).
    public static func write(_ w: inout JSONWriter, _ r: AnalysisResult, _ s: Snapshot, top: Int) {
        clients(&w, r.aggregates, s, top: top)
        groups(&w, r.aggregates, s, top: top)
        findings(&w, "findings", r.findings)
        w.object("analysis") { w in
            w.int("pending", r.pending.count)
            w.string("worst_severity", r.worstSeverity?.description)
            w.array("limitations") { w in for l in r.limitations { w.string(nil, l) } }
            attribution(&w, r.aggregates, s)
        }
    }

    /// How each service's entries in the table were attributed (`ServiceAttribution`):
    /// `address`, `real_server` (fwmark), `kernel_counts` or `undecided`, with what it shares.
    static func attribution(_ w: inout JSONWriter, _ a: Aggregates, _ s: Snapshot) {
        guard a.hasTable else { w.null("attribution"); return }
        w.array("attribution") { w in
            for x in a.attribution where x.service < s.services.count {
                w.object { w in
                    w.string("service", s.services[x.service].id)
                    w.string("entries", x.how.rawValue)
                    w.array("shares_real_servers_with") { w in for o in x.sharedWith { w.string(nil, s.services[o].id) } }
                    w.array("notes") { w in for n in x.notes { w.string(nil, n) } }
                }
            }
        }
    }

    /// `check --json`: the findings alone, with what could not be judged.
    /// - Parameter tablePartial: the connection table read was partial (`TableCompleteness`).
    public static func check(_ r: AnalysisResult, tablePartial: Bool = false, pretty: Bool = true) -> String {
        var w = JSONWriter(pretty: pretty)
        w.object { w in
            w.int("schema", SnapshotJSON.schemaVersion)
            w.string("taken_at", SnapshotJSON.timestamp(r.takenAt))
            let status = r.exitStatus(tablePartial: tablePartial)
            w.string("status", status == 3 ? "unknown" : (r.worstSeverity.map { $0 == .info ? "ok" : $0.description } ?? "ok"))
            w.int("exit_status", status)
            w.bool("table_partial", tablePartial)
            findings(&w, "findings", r.findings)
            findings(&w, "pending", r.pending)
            w.array("limitations") { w in for l in r.limitations { w.string(nil, l) } }
        }
        return w.output
    }

    static func counts(_ w: inout JSONWriter, _ c: StateCounts) {
        w.int("connections", c.total)
        w.int("active_conns", c.active)
        w.int("inactive_conns", c.inactive)
        w.object("by_state") { w in for (name, n) in c.byName { w.int(name, n) } }
    }

    public static func clients(_ w: inout JSONWriter, _ a: Aggregates, _ s: Snapshot, top: Int) {
        guard a.hasTable else { w.null("clients"); return }
        w.array("clients") { w in
            for c in a.topClients(top) {
                w.object { w in
                    w.string("address", c.address.description)
                    w.string("family", c.address.family.rawValue)
                    counts(&w, c.connections)
                    w.int("templates", c.templates)
                    let loads = a.loads(of: c)
                    var services: [String] = []
                    for l in loads {
                        let name = a.serviceName(a.destinations[l.destination], in: s)
                        if !services.contains(name) { services.append(name) }
                    }
                    w.array("services") { w in for n in services { w.string(nil, n) } }
                    w.array("real_servers") { w in
                        for l in loads {
                            let d = a.destinations[l.destination]
                            w.object { w in
                                w.string("service", a.serviceName(d, in: s))
                                w.string("real_server", a.realServerName(d, in: s))
                                w.bool("exists", d.isLive)
                                w.int("active_conns", l.connections.active)
                                w.int("inactive_conns", l.connections.inactive)
                                w.int("templates", l.templates)
                                w.number("share_of_active", l.shareOfActive.map(round4))
                                w.number("share_of_inactive", l.shareOfInactive.map(round4))
                            }
                        }
                    }
                }
            }
        }
    }

    public static func groups(_ w: inout JSONWriter, _ a: Aggregates, _ s: Snapshot, top: Int) {
        guard a.hasTable else { w.null("groups"); return }
        w.array("groups") { w in
            for g in a.topGroups(top) {
                w.object { w in
                    w.string("service", s.services[g.service].id)
                    w.string("group", g.name)
                    w.string("address", g.address.description)
                    w.int("prefix_length", g.prefixLength)
                    w.int("clients", g.clients)
                    counts(&w, g.connections)
                    w.int("templates", g.templates)
                    w.array("real_servers") { w in
                        for l in a.loads(of: g) {
                            let d = a.destinations[l.destination]
                            w.object { w in
                                w.string("real_server", a.realServerName(d, in: s))
                                w.bool("exists", d.isLive)
                                w.int("connections", l.connections.total)
                                w.int("templates", l.templates)
                                w.number("share", l.share.map(round4))
                            }
                        }
                    }
                }
            }
        }
    }

    public static func findings(_ w: inout JSONWriter, _ k: String, _ fs: [Finding]) {
        w.array(k) { w in
            for f in fs { finding(&w, f) }
        }
    }

    public static func finding(_ w: inout JSONWriter, _ f: Finding) {
        w.object { w in
            w.int("id", f.id)
            w.string("key", f.key)
            w.string("kind", f.kind.rawValue)
            w.string("severity", f.severity.description)
            w.string("subject", f.subject)
            w.string("since", SnapshotJSON.timestamp(f.since))
            w.string("last_seen", SnapshotJSON.timestamp(f.lastSeen))
            w.string("explanation", f.explanation)
            w.object("evidence") { w in
                for e in f.evidence {
                    switch e.value {
                    case .int(let v): w.int(e.name, v)
                    case .number(let v): w.number(e.name, round4(v))
                    case .text(let v): w.string(e.name, v)
                    case .texts(let v): w.array(e.name) { w in for x in v { w.string(nil, x) } }
                    case .unknown: w.null(e.name)
                    }
                }
            }
            w.string("advice", f.advice)
        }
    }

    static func round4(_ v: Double) -> Double { (v * 10_000).rounded() / 10_000 }
}
