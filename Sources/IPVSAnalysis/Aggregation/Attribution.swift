import FoundationEssentials
import IPVSModel

/// How the entries of a service were told from those of another.
///
/// A connection scheduled by an fwmark service reads in `/proc/net/ip_vs_conn` like any
/// other (`TCP VIP:80 -> RIP:80`: the mark is not shown), and the kernel prefers the fwmark
/// service when a packet is marked. So where an address service and an fwmark service share
/// a real server, the table alone cannot tell which one scheduled a connection to it. The
/// kernel's own per-destination counters (ActiveConn, InActConn, PersistConn) can, in the
/// clear cases: the address service's real server holds none, so every such entry is the
/// fwmark service's (its route is moved there); or the table's count for it equals the
/// kernel's, so the entries are its own. Otherwise the analysis says it cannot decide.
public struct ServiceAttribution: Hashable, Sendable {
    public enum How: String, Hashable, Sendable {
        /// An address service: its entries by protocol, virtual address and port.
        case address
        /// An fwmark service: the entries that no address service's VIP:port holds, by real
        /// server address.
        case realServer = "real_server"
        /// A real server shared with another service: decided by the kernel's
        /// per-destination counters.
        case kernelCounts = "kernel_counts"
        /// A real server shared with another service, and the counters do not decide: its
        /// entries are counted under the address service, which may be wrong.
        case undecided
    }

    /// Index into `Snapshot.services`.
    public var service: Int
    public var how: How
    /// The services it shares real servers with (indices), and what was decided, in words.
    public var sharedWith: [Int] = []
    public var notes: [String] = []
}

/// A route to move: the entries of address service `service` to real server `address` are
/// the fwmark service's.
struct RouteMove: Hashable {
    var service: Int
    var address: IPAddress
}

extension Aggregates {
    /// The attribution of every service, and the routes to move, from a first aggregation's
    /// destinations and the kernel's counters (see `ServiceAttribution`). `moved`: the
    /// routes this aggregation already moved.
    static func attribution(_ s: Snapshot, _ destinations: [Destination], _ live: [[Int?]],
                            moved: [RouteMove: Int]) -> (moves: [RouteMove: Int], attribution: [ServiceAttribution]) {
        var out = s.services.indices.map { i -> ServiceAttribution in
            if case .fwmark = s.services[i].key { return ServiceAttribution(service: i, how: .realServer) }
            return ServiceAttribution(service: i, how: .address)
        }
        let fwmarks = s.services.indices.filter { if case .fwmark = s.services[$0].key { true } else { false } }
        guard !fwmarks.isEmpty else { return ([:], out) }
        var moves: [RouteMove: Int] = [:]
        /// The entries the table already gives fwmark service `f`'s real server at `address`:
        /// its kernel counters must hold those and the ones to move.
        func ownEntries(_ f: Int, _ address: IPAddress) -> Int {
            guard let fi = s.services[f].realServers.firstIndex(where: { $0.address == address }), f < live.count,
                  let d = live[f][fi] else { return 0 }
            return destinations[d].connections.total
        }
        /// A service's how, never weakened: undecided over kernel_counts over the rest.
        func rank(_ h: ServiceAttribution.How) -> Int { h == .undecided ? 2 : h == .kernelCounts ? 1 : 0 }
        func mark(_ i: Int, _ how: ServiceAttribution.How, with other: Int, _ note: String) {
            if rank(how) > rank(out[i].how) { out[i].how = how }
            if !out[i].sharedWith.contains(other) { out[i].sharedWith.append(other) }
            out[i].notes.append(note)
        }
        // Entries through an address service to an address that is not among its real
        // servers (they read as a deleted real server's) while an fwmark service has it:
        // the fwmark service's when its counters hold at least as many.
        for d in destinations where !d.isLive {
            guard let si = d.service, case .address = s.services[si].key else { continue }
            let key = RouteMove(service: si, address: d.address)
            let svc = s.services[si]
            let sharing = fwmarks.filter { m in
                s.services[m].key.family == svc.key.family && s.services[m].realServers.contains { $0.address == d.address }
            }
            guard sharing.count == 1, let fws = s.services[sharing[0]].realServers.first(where: { $0.address == d.address }) else {
                if !sharing.isEmpty {
                    let text = "entries through \(svc.id) to \(d.address.endpoint(port: d.port)), not one of its real servers, may be those of \(sharing.map { s.services[$0].id }.joined(separator: " or ")): the table cannot tell"
                    mark(si, .undecided, with: sharing[0], text)
                    for m in sharing { mark(m, .undecided, with: si, text) }
                }
                continue
            }
            let fwTotal = Int(fws.activeConns) + Int(fws.inactiveConns), own = ownEntries(sharing[0], d.address)
            if fwTotal >= d.connections.total + own && d.templates == 0 {
                moves[key] = sharing[0]
            } else if fwTotal <= own {
                // The fwmark service's counters hold only its own entries: these are not its.
                let text = "\(d.connections.total) entries through \(svc.id) to \(d.address.endpoint(port: d.port)), not one of its real servers, are not \(s.services[sharing[0]].id)'s (its counters hold only its own \(own)): a deleted real server's"
                mark(si, .kernelCounts, with: sharing[0], text)
                mark(sharing[0], .kernelCounts, with: si, text)
            } else {
                let text = "\(d.connections.total) entries through \(svc.id) to \(d.address.endpoint(port: d.port)), not one of its real servers, are more than \(s.services[sharing[0]].id) -> \(fws.id) counts beside its own \(ownEntries(sharing[0], d.address)) (\(fws.activeConns) active, \(fws.inactiveConns) inactive): counted as a deleted real server's, which they may not be"
                mark(si, .undecided, with: sharing[0], text)
                mark(sharing[0], .undecided, with: si, text)
            }
        }
        for (key, m) in moved where s.services[key.service].realServers.allSatisfy({ $0.address != key.address }) {
            let text = "entries through \(s.services[key.service].id) to \(key.address), not one of its real servers, counted under \(s.services[m].id), whose counters hold them"
            mark(key.service, .kernelCounts, with: m, text)
            mark(m, .kernelCounts, with: key.service, text)
            moves[key] = m
        }
        for (si, svc) in s.services.enumerated() {
            guard case .address = svc.key else { continue }
            for (ri, rs) in svc.realServers.enumerated() {
                let sharing = fwmarks.filter { m in
                    s.services[m].key.family == svc.key.family
                        && s.services[m].realServers.contains { $0.address == rs.address && ($0.port == 0 || $0.port == rs.port) }
                }
                guard !sharing.isEmpty else { continue }
                // What the table attributed to it (before any move), and what the kernel counts.
                let key = RouteMove(service: si, address: rs.address)
                let table = live[si][ri].map { destinations[$0].connections } ?? StateCounts()
                let movedTo = moved[key]
                let kernelTotal = Int(rs.activeConns) + Int(rs.inactiveConns)
                let f = sharing[0]
                let fid = s.services[f].id
                let fws = s.services[f].realServers.first { $0.address == rs.address && ($0.port == 0 || $0.port == rs.port) }!
                let fwTotal = Int(fws.activeConns) + Int(fws.inactiveConns)
                if let m = movedTo {
                    // Moved by the first aggregation's verdict: say so on both.
                    let text = "entries to \(rs.id) through \(svc.id) counted under \(s.services[m].id): the kernel counts none on \(svc.id) -> \(rs.id)"
                    mark(si, .kernelCounts, with: m, text)
                    mark(m, .kernelCounts, with: si, text)
                    moves[key] = m
                    continue
                }
                if table.total == 0 { continue }
                // No template of its own either: a persistent service's PersistConn is netlink's.
                let noTemplates = svc.persistence == nil || rs.persistentConns == 0
                if kernelTotal == 0 && sharing.count == 1 && noTemplates && fwTotal >= table.total + ownEntries(f, rs.address) {
                    moves[key] = f
                    continue
                }
                if table.active == Int(rs.activeConns) && table.inactive == Int(rs.inactiveConns) {
                    let text = "\(rs.id) is also a real server of \(sharing.map { s.services[$0].id }.joined(separator: ", ")): its \(table.total) entries through \(svc.id) match the kernel's ActiveConn/InActConn for \(svc.id) -> \(rs.id), so they are \(svc.id)'s"
                    mark(si, .kernelCounts, with: f, text)
                    mark(f, .kernelCounts, with: si, text)
                    continue
                }
                let text = "\(rs.id) is a real server of both \(svc.id) and \(sharing.map { s.services[$0].id }.joined(separator: ", ")); the table cannot tell which scheduled its \(table.total) connections through \(svc.id)'s address and port (the fwmark is not shown); counted under \(svc.id), whose kernel counters say \(rs.activeConns) active and \(rs.inactiveConns) inactive against the table's \(table.active) and \(table.inactive) (\(fid) -> \(fws.id): \(fws.activeConns) and \(fws.inactiveConns))"
                mark(si, .undecided, with: f, text)
                for m in sharing { mark(m, .undecided, with: si, text) }
            }
        }
        // An fwmark service's real server given more entries than its counters hold: some
        // are another's (the fallback gives it the entries of services that are gone, to an
        // address it has), and the table cannot tell which.
        for f in fwmarks {
            for (fi, rs) in s.services[f].realServers.enumerated() {
                guard f < live.count, let d = live[f][fi] else { continue }
                let t = destinations[d].connections.total, k = Int(rs.activeConns) + Int(rs.inactiveConns)
                guard t > k else { continue }
                let text = "the table gives \(s.services[f].id) -> \(rs.id) \(t) connections, its kernel counters \(k): \(t - k) are another service's (one deleted, or one that shares the real server), which the table cannot tell apart"
                mark(f, .undecided, with: f, text)
                out[f].sharedWith.removeAll { $0 == f }
            }
        }
        return (moves, out)
    }
}
