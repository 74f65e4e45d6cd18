import FoundationEssentials
import IPVSModel

/// Whether a real server can take a new connection from the scheduler, as far as the
/// snapshot tells.
///
/// Every scheduler of the kernel skips a destination whose weight is 0 or that carries
/// `IP_VS_DEST_F_OVERLOAD`. The kernel sets that flag when a connection is bound and
/// ActiveConn + InActConn reaches the upper threshold (`ipvsadm -x`), and clears it when a
/// connection is unbound and the sum falls below the lower threshold (`-y`), or below 3/4
/// of the upper one when there is no lower one (`ip_vs_bind_dest`/`ip_vs_unbind_dest`). The
/// flag itself is shown neither in /proc nor over netlink: between the two bounds a server
/// may be either, and only the thresholds (netlink only) tell that much.
enum Availability: Equatable {
    /// Weight above 0 and under its upper threshold (or none set).
    case able
    /// Weight 0: the scheduler sends it nothing (templates still may).
    case weightZero
    /// ActiveConn + InActConn at or over its upper threshold: overloaded.
    case overThreshold
    /// Between the bound that clears the flag and the upper threshold: overloaded if it
    /// reached the upper threshold since it last fell under that bound, which the kernel
    /// does not show.
    case maybeOverThreshold
    /// Weight above 0, thresholds unknown (no netlink): assumed able.
    case thresholdUnknown

    init(_ rs: RealServer) {
        guard rs.weight > 0 else { self = .weightZero; return }
        guard let upper = rs.upperThreshold else { self = .thresholdUnknown; return }
        guard upper > 0 else { self = .able; return }
        let total = UInt64(rs.activeConns) + UInt64(rs.inactiveConns)
        if total >= UInt64(upper) { self = .overThreshold; return }
        let lower = UInt64(rs.lowerThreshold ?? 0)
        let overloadedBelow = lower != 0 ? total >= lower : total * 4 >= UInt64(upper) * 3
        self = overloadedBelow ? .maybeOverThreshold : .able
    }

    /// Counts for the quorum: certainly able, or possibly (the benefit of the doubt).
    var mayTakeNew: Bool { self == .able || self == .thresholdUnknown || self == .maybeOverThreshold }
}

extension Detectors {
    // MARK: - service_down

    static func serviceDown(_ c: Context) -> [Finding] {
        var out: [Finding] = []
        let st = c.settings
        for svc in c.snapshot.services {
            let states = svc.realServers.map(Availability.init)
            let n = states.count
            let able = states.filter { $0 == .able || $0 == .thresholdUnknown }.count
            let maybe = states.filter { $0 == .maybeOverThreshold }.count
            let zero = svc.realServers.indices.filter { states[$0] == .weightZero }.map { svc.realServers[$0].id }
            let over = svc.realServers.indices.filter { states[$0] == .overThreshold }.map { svc.realServers[$0].id }
            let maybeOver = svc.realServers.indices.filter { states[$0] == .maybeOverThreshold }.map { svc.realServers[$0].id }
            let unknown = states.filter { $0 == .thresholdUnknown }.count
            let available = able + maybe
            let key = svc.id
            let k = c.relax(FindingKind.serviceDown.rawValue + "/" + key)
            let share = n > 0 ? Double(available) / Double(n) : 0

            let severity: Severity
            let reason: String
            if n == 0 {
                (severity, reason) = (.critical, "no_real_servers")
            } else if available == 0 {
                let r = zero.count == n ? "all_weight_zero" : over.count == n ? "all_over_threshold" : "weight_zero_or_over_threshold"
                (severity, reason) = (.critical, r)
            } else if able == 0 {
                (severity, reason) = (.warning, "maybe_over_threshold")
            } else if available < st.serviceMinServers {
                (severity, reason) = (.warning, "below_min_servers")
            } else if share < st.serviceMinShare * k {
                (severity, reason) = (.warning, "below_min_share")
            } else {
                continue
            }

            var text: String
            switch reason {
            case "no_real_servers":
                text = "Virtual service \(svc.id) has no real server: every new connection to it finds no destination (the kernel logs \"no destination available\" and the packet is not balanced)."
            case "all_weight_zero":
                text = "Every real server of \(svc.id) (\(n)) has weight 0: the scheduler sends no new connection anywhere."
            case "all_over_threshold":
                text = "Every real server of \(svc.id) (\(n)) is at or over its upper connection threshold (ipvsadm -x): the kernel marks them overloaded and schedules no new connection."
            case "weight_zero_or_over_threshold":
                text = "No real server of \(svc.id) can take a new connection: \(plural(zero.count, "has", "have")) weight 0 (\(zero.joined(separator: ", "))), \(over.count) \(over.count == 1 ? "is" : "are") at or over the upper threshold (\(over.joined(separator: ", ")))."
            case "maybe_over_threshold":
                text = "No real server of \(svc.id) is surely able to take a new connection: \(maybeOver.joined(separator: ", ")) \(maybeOver.count == 1 ? "is" : "are") between the lower and upper thresholds, where the kernel keeps a server overloaded once it reached the upper one (its overload flag is not shown)."
            default:
                text = "Only \(available) of the \(n) real servers of \(svc.id) can take a new connection"
                text += reason == "below_min_servers" ? " (fewer than service_min_servers, \(st.serviceMinServers))." : " (\(pct(share)), under service_min_share, \(pct(st.serviceMinShare)))."
            }
            if n > 0, reason != "all_weight_zero", reason != "all_over_threshold" {
                var parts: [String] = []
                if !zero.isEmpty, reason != "weight_zero_or_over_threshold" { parts.append("weight 0: \(zero.joined(separator: ", "))") }
                if !over.isEmpty, reason != "weight_zero_or_over_threshold" { parts.append("over the upper threshold: \(over.joined(separator: ", "))") }
                if !maybeOver.isEmpty, reason != "maybe_over_threshold" { parts.append("possibly still overloaded: \(maybeOver.joined(separator: ", "))") }
                if !parts.isEmpty { text += " Not taking new connections: " + parts.joined(separator: "; ") + "." }
            }
            if n > 0 && !zero.isEmpty && svc.persistence != nil {
                text += " Clients holding a persistence template still reach their weight-0 server until it expires."
            }
            if unknown > 0 {
                text += " Upper thresholds are not known without netlink: \(plural(unknown, "real server")) of weight above 0 \(unknown == 1 ? "is" : "are") counted as able."
            }
            text += " The kernel shows no flag that tells a drain on purpose from a failure."

            let advice: String
            switch reason {
            case "no_real_servers":
                advice = "Add a real server (ipvsadm -a \(svc.key.ipvsadmOption) -r SERVER -w 1), or check the health checker (keepalived, ldirectord) that removed them; if the service is retired, delete it (ipvsadm -D). The kernel cannot tell a deliberate drain: only you can."
            case "all_over_threshold", "maybe_over_threshold":
                advice = "Raise or remove the upper thresholds (ipvsadm -e ... -x N), add real servers, or find who holds the connections (see rogue_client). The kernel cannot tell a deliberate limit from an outage."
            default:
                advice = "If this is not a planned drain (the kernel shows no way to tell), restore the weights (ipvsadm -e \(svc.key.ipvsadmOption) -r SERVER -w N) or check the health checker that set them to 0; add real servers if the rest cannot carry the load."
            }
            let ev: [Evidence] = [
                Evidence("service", .text(svc.id)), Evidence("reason", .text(reason)),
                Evidence("real_servers", .int(n)), Evidence("available", .int(available)),
                Evidence("available_share", n > 0 ? .number(share) : .unknown),
                Evidence("weight_zero", .texts(zero)), Evidence("over_threshold", .texts(over)),
                Evidence("maybe_over_threshold", .texts(maybeOver)),
                Evidence("thresholds_unknown", .int(unknown)),
                Evidence("min_servers", .int(st.serviceMinServers)), Evidence("min_share", .number(st.serviceMinShare)),
                Evidence("active_conns", .int(svc.activeConns)),
                Evidence("drain_intent", .unknown),
            ]
            let what = severity == .critical ? "no real server can take a new connection" : "\(available) of \(n) real servers can take new connections"
            out.append(c.finding(.serviceDown, about: FindingSubject(service: key), severity, subject: "\(svc.id) (\(what))",
                                 explanation: text, evidence: ev, advice: advice))
        }
        return out
    }
}

extension ServiceKey {
    /// How ipvsadm names this service on its command line: `-t 10.0.0.1:80`, `-f 1 -6`.
    var ipvsadmOption: String {
        switch self {
        case .address(let p, let a, let port):
            let flag = p == .udp ? "-u" : p == .sctp ? "--sctp-service" : "-t"
            return "\(flag) \(a.endpoint(port: port))"
        case .fwmark(let m, let f): return f == .ipv6 ? "-f \(m) -6" : "-f \(m)"
        }
    }
}
