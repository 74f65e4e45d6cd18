import FoundationEssentials
import IPVSAnalysis
import IPVSModel

/// `ipvstop snapshot` without `--json`: the snapshot as plain text, laid out like
/// `ipvsadm -Ln --persistent-conn` so that an operator reads it at a glance, with the
/// connection counts and the busiest templates under it.
enum SnapshotText {
    static func render(_ s: Snapshot, top: Int) -> String {
        var out = ""
        if let i = s.info { out += "IP Virtual Server version \(i.version) (size=\(i.tableSize))\n" }
        out += "Prot LocalAddress:Port            Scheduler Flags\n"
        out += "  -> RemoteAddress:Port          Forward Weight ActiveConn InActConn PersistConn\n"
        for svc in s.services {
            var line: String
            switch svc.key {
            case .address(let p, let a, let port): line = pad(p.kernelName, 4) + " " + pad(a.endpoint(port: port), 28)
            case .fwmark(let m, let f): line = "FWM  " + pad("\(m)" + (f == .ipv6 ? " IPv6" : ""), 28)
            }
            line += " " + svc.scheduler
            let flags = svc.flags.names(scheduler: svc.scheduler).filter { $0 != "persistent" && $0 != "hashed" }
            if !flags.isEmpty { line += " (" + flags.joined(separator: ",") + ")" }
            if let p = svc.persistence {
                line += " persistent " + (p.timeoutSeconds.map(String.init) ?? "\(p.timeoutJiffies ?? 0) jiffies")
                if p.netmask.groupsClients { line += " mask \(p.netmask)" }
            }
            out += line + "\n"
            for rs in svc.realServers {
                out += "  -> " + pad(rs.id, 27) + " " + pad(rs.forward.rawValue.capitalized, 7) + " "
                out += lpad("\(rs.weight)", 6) + " " + lpad("\(rs.activeConns)", 10) + " " + lpad("\(rs.inactiveConns)", 9)
                out += " " + lpad(rs.persistentConns.map(String.init) ?? "-", 11) + "\n"
            }
        }
        if let t = s.connections {
            out += "\nConnections: \(t.counts.connections)  templates: \(t.counts.templates)"
            out += "  (read \(PrintfNumber.fixed(t.cost.seconds, decimals: 3)) s, \(t.cost.bytes) bytes)\n"
            if let c = t.completeness, c.isPartial {
                // Never shown as the whole table: the counts below are of the entries read.
                out += "PARTIAL table: \(c.detail)\n"
            }
            for (state, n) in t.counts.byState.sorted(by: { $0.value > $1.value }) {
                out += "  " + pad(state.name, 12) + lpad("\(n)", 10) + "\n"
            }
            let templates = Aggregates(s).templates.map(\.summary)
            if !templates.isEmpty {
                out += "\nTemplates (most connections first)\n"
                out += pad("Client", 40) + " " + pad("Service", 30) + " " + pad("Real server", 28) + " Expires  Conns\n"
                for ts in (top > 0 ? templates.prefix(top) : templates[...]) {
                    let e = t.entries[ts.entryIndex]
                    out += pad(e.client.description, 40) + " " + pad(ts.service?.description ?? "(deleted)", 30) + " "
                    out += pad(ts.realServer, 28) + " " + lpad("\(e.expires)", 7) + " " + lpad("\(ts.controlledConns)", 6) + "\n"
                }
            }
        }
        if !s.source.netlink.isUsed {
            out += "\n(no netlink: stats, rates, PersistConn and thresholds unavailable — run as root)\n"
        }
        return out
    }

    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
    static func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
}
