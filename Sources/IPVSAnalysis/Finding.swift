import FoundationEssentials
import IPVSModel
import Synchronization

/// What a finding is about. The raw values are the public names (JSON `kind`, the SNMP
/// alert table, `ipvstop check`).
public enum FindingKind: String, Sendable, Hashable, CaseIterable, Comparable {
    /// No real server of a virtual service can take a new connection (none, every weight 0,
    /// every one over its upper threshold), or fewer than a quorum can.
    case serviceDown = "service_down"
    /// One client (or persistence group) holds a share of a real server's connections far
    /// beyond the others (the HOWTO's thin clients: 912 and 624 ActiveConn against ~20).
    case rogueClient = "rogue_client"
    /// A real server's share of its service's connections is far from its share of the
    /// weight, for longer than a hold time.
    case imbalance
    /// A weight-0 (quiescent) real server keeps receiving new connections through
    /// persistence templates while `expire_quiescent_template` is 0.
    case quiescentFed = "quiescent_fed"
    /// Connections or templates whose real server (or service) is gone.
    case deadDestination = "dead_destination"
    /// Templates kept past their persistence timeout by the connections they control.
    case templateOverstay = "template_overstay"
    /// The connection table's size, memory and the kernel's memory defenses.
    case tablePressure = "table_pressure"
    /// A sync daemon whose side of the table does not move.
    case sync

    public static func < (a: Self, b: Self) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// The data the finding rests on: it is re-judged only when that data is read anew.
    var source: SampleSource {
        switch self {
        case .imbalance, .tablePressure, .serviceDown: .services
        default: .table
        }
    }
}

enum SampleSource { case services, table }

/// How bad. `ipvstop check` exits with 0 (nothing above info), 1 (warning) or 2 (critical),
/// the monitoring-plugin convention.
public enum Severity: Int, Sendable, Hashable, Comparable, CaseIterable, CustomStringConvertible {
    /// Worth knowing, nothing to do now (a template kept alive by its connections).
    case info = 0
    case warning = 1
    case critical = 2

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String {
        switch self {
        case .info: "info"
        case .warning: "warning"
        case .critical: "critical"
        }
    }
    /// The exit status of `ipvstop check` for this worst severity.
    public var exitStatus: Int32 { self == .info ? 0 : Int32(rawValue) }
}

/// One piece of evidence: a name and a value, kept in the order written so that a face
/// shows them in a sensible order.
public struct Evidence: Hashable, Sendable {
    public enum Value: Hashable, Sendable {
        case int(Int)
        case number(Double)
        case text(String)
        case texts([String])
        /// Not known from this snapshot (JSON null), never a made-up zero.
        case unknown
    }
    public var name: String
    public var value: Value
    public init(_ name: String, _ value: Value) {
        self.name = name
        self.value = value
    }
}

/// What a finding is about, in ipvsadm's words: the service, the real server and the client
/// (an address, or a persistence group such as `172.16.2.0/24`), each nil where the finding
/// is not about one. The parts of a finding's key, typed: a face that needs the service or
/// the client of a finding reads them here, never by splitting the key.
public struct FindingSubject: Hashable, Sendable {
    /// The service's identity as `VirtualService.id` gives it (`tcp:10.0.0.1:80`,
    /// `fwmark:3`), or as the entries of a deleted one name it.
    public var service: String?
    /// The real server's identity (`10.0.1.2:80`, `[fd00::2]:443`).
    public var realServer: String?
    /// A client address, or a persistence group's `address/prefix`.
    public var client: String?

    public init(service: String? = nil, realServer: String? = nil, client: String? = nil) {
        self.service = service
        self.realServer = realServer
        self.client = client
    }

    /// The key's path after the kind: `service/real server/client`, as far as there are parts
    /// (a missing real server before a client is an empty part).
    var keyPath: String {
        var parts = [service ?? "", realServer ?? "", client ?? ""]
        while let last = parts.last, last.isEmpty { parts.removeLast() }
        return parts.joined(separator: "/")
    }
}

/// A finding: what, about whom, since when, the evidence, and what to do.
public struct Finding: Hashable, Sendable, Identifiable {
    /// A small integer given when the finding is raised and never reused in this process:
    /// the SNMP alert table's index.
    public var id: Int
    /// Stable while the finding lasts, the same for the same thing across restarts:
    /// `kind/service/real server/client`, e.g.
    /// `rogue_client/tcp:10.0.0.1:80/10.0.1.2:80/192.168.1.5`.
    public var key: String
    public var kind: FindingKind
    public var severity: Severity
    /// Who or what, in words: `client 192.168.1.5 on 10.0.1.2:80 of tcp:10.0.0.1:80`.
    public var subject: String
    /// Who or what, typed: the service, real server and client the key names.
    public var about: FindingSubject
    /// When the condition was first seen in the run that raised it.
    public var since: Date
    /// When it was last seen (equal to `since` on a one-shot analysis).
    public var lastSeen: Date
    /// What the data shows, in plain language, with its figures.
    public var explanation: String
    /// The same figures, structured.
    public var evidence: [Evidence]
    /// One line: what to do about it.
    public var advice: String

    public init(id: Int = 0, key: String, kind: FindingKind, severity: Severity, subject: String, since: Date,
                lastSeen: Date? = nil, explanation: String, evidence: [Evidence], advice: String,
                about: FindingSubject = FindingSubject()) {
        self.id = id
        self.key = key
        self.kind = kind
        self.severity = severity
        self.subject = subject
        self.about = about
        self.since = since
        self.lastSeen = lastSeen ?? since
        self.explanation = explanation
        self.evidence = evidence
        self.advice = advice
    }

    public func evidence(_ name: String) -> Evidence.Value? { evidence.first { $0.name == name }?.value }
}

/// A finding raised or cleared by an `Analyzer.update`: what the SNMP traps send.
public enum FindingEvent: Hashable, Sendable {
    case raised(Finding)
    case cleared(Finding)

    public var finding: Finding {
        switch self {
        case .raised(let f), .cleared(let f): f
        }
    }
}

/// What one analysis of a snapshot gives every face.
public struct AnalysisResult: Sendable {
    public var takenAt: Date
    public var aggregates: Aggregates
    /// Raised findings, worst first (then by kind and key).
    public var findings: [Finding]
    /// Conditions seen but not yet raised (hysteresis still counting), for a dashboard
    /// that wants to show them dimmed. Their `id` is 0.
    public var pending: [Finding]
    /// Raised and cleared in this update, in that order.
    public var events: [FindingEvent]
    /// What the analysis could not judge from this snapshot, in words.
    public var limitations: [String]

    public var worstSeverity: Severity? { findings.map(\.severity).max() }
    public var exitStatus: Int32 { worstSeverity?.exitStatus ?? 0 }

    /// The check's exit status when the connection table read was `tablePartial`: UNKNOWN
    /// (3) instead of OK, since no finding from part of the table is no proof that the
    /// director is fine; a finding's own status stands.
    public func exitStatus(tablePartial: Bool) -> Int32 { tablePartial && exitStatus == 0 ? 3 : exitStatus }
}

/// Process-wide finding ids: never reused while the process runs, whichever analyzer
/// raised them.
enum FindingIDs {
    private static let counter = LockedCounter()
    static func next() -> Int { counter.next() }
}

final class LockedCounter: @unchecked Sendable {
    private let value = Mutex(0)
    func next() -> Int {
        value.withLock { v in
            v += 1
            return v
        }
    }
}
