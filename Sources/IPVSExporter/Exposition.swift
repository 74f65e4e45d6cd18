// The Prometheus text exposition format (0.0.4) and OpenMetrics 1.0.0, written from one
// list of metric families.
import FoundationEssentials

/// Which exposition format a scrape gets: OpenMetrics when the scraper's Accept header asks
/// for it (Prometheus does, first, since 2.5), the classic text format otherwise.
public enum ExpositionFormat: Sendable, Hashable {
    case text
    case openMetrics

    public var contentType: String {
        switch self {
        case .text: "text/plain; version=0.0.4; charset=utf-8"
        case .openMetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8"
        }
    }

    /// Reads an Accept header the way content negotiation does: OpenMetrics when it is
    /// listed with a non-zero q and at least the q of text/plain (a missing q is 1).
    public static func negotiate(accept: String?) -> ExpositionFormat {
        guard let accept else { return .text }
        var om = -1.0, text = -1.0
        for part in accept.split(separator: ",") {
            let fields = part.split(separator: ";").map { $0.trimmingWhitespace() }
            guard let type = fields.first?.lowercased() else { continue }
            var q = 1.0
            var version: String?
            for p in fields.dropFirst() {
                let kv = p.split(separator: "=", maxSplits: 1).map { $0.trimmingWhitespace() }
                guard kv.count == 2 else { continue }
                if kv[0].lowercased() == "q" { q = Double(kv[1]) ?? 0 }
                if kv[0].lowercased() == "version" { version = kv[1] }
            }
            if type == "application/openmetrics-text", version == nil || version!.hasPrefix("1.0") || version!.hasPrefix("0.0.1") {
                om = max(om, q)
            } else if type == "text/plain" || type == "*/*" || type == "text/*" {
                text = max(text, q)
            }
        }
        return om > 0 && om >= text ? .openMetrics : .text
    }
}

/// One metric family: a name, its help, its type, and its samples.
public struct MetricFamily: Sendable {
    public enum Kind: Sendable {
        /// Samples are named `name_total`; `name` is the family.
        case counter
        case gauge
        /// An info metric: samples named `name_info`, value 1, the facts in the labels.
        case info
    }

    public struct Sample: Sendable {
        public var labels: [(String, String)]
        public var value: Double
        /// Exact digits for integer values (a 64-bit counter is written whole, not as a
        /// double's 17 significant digits).
        public var exact: UInt64?
    }

    public let name: String
    public let help: String
    public let kind: Kind
    public var samples: [Sample] = []

    public init(_ name: String, _ kind: Kind, _ help: String) {
        self.name = name
        self.kind = kind
        self.help = help
    }

    public mutating func add(_ labels: [(String, String)], _ value: Double) {
        samples.append(Sample(labels: labels, value: value, exact: nil))
    }

    public mutating func add(_ labels: [(String, String)], _ value: some BinaryInteger) {
        if value >= 0, let u = UInt64(exactly: value) {
            samples.append(Sample(labels: labels, value: Double(u), exact: u))
        } else {
            samples.append(Sample(labels: labels, value: Double(value), exact: nil))
        }
    }

    /// The name the samples carry.
    public var sampleName: String {
        switch kind {
        case .counter: name + "_total"
        case .gauge: name
        case .info: name + "_info"
        }
    }
}

public enum Exposition {
    /// Writes the families (HELP and TYPE for each, even with no sample) in `format`,
    /// without OpenMetrics' closing `# EOF` (the caller appends it after the scrape's own
    /// lines).
    public static func write(_ families: [MetricFamily], _ format: ExpositionFormat, into out: inout String) {
        for f in families {
            let familyName: String
            let type: String
            switch (format, f.kind) {
            case (.text, .counter): familyName = f.sampleName; type = "counter"
            case (.text, .gauge): familyName = f.name; type = "gauge"
            case (.text, .info): familyName = f.sampleName; type = "gauge"
            case (.openMetrics, .counter): familyName = f.name; type = "counter"
            case (.openMetrics, .gauge): familyName = f.name; type = "gauge"
            case (.openMetrics, .info): familyName = f.name; type = "info"
            }
            out += "# HELP \(familyName) \(escapeHelp(f.help, format))\n"
            out += "# TYPE \(familyName) \(type)\n"
            let sampleName = f.sampleName
            for s in f.samples {
                out += sampleName
                if !s.labels.isEmpty {
                    out += "{"
                    for (i, (k, v)) in s.labels.enumerated() {
                        if i > 0 { out += "," }
                        out += k + "=\"" + escapeLabel(v) + "\""
                    }
                    out += "}"
                }
                out += " " + number(s) + "\n"
            }
        }
    }

    static func number(_ s: MetricFamily.Sample) -> String {
        if let e = s.exact { return String(e) }
        let v = s.value
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    /// Label values: backslash, double quote and newline escaped (both formats).
    static func escapeLabel(_ s: String) -> String {
        guard s.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return s }
        var out = ""
        for c in s {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    /// HELP text: backslash and newline escaped (and double quote in OpenMetrics).
    static func escapeHelp(_ s: String, _ format: ExpositionFormat) -> String {
        var out = ""
        for c in s {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\"" where format == .openMetrics: out += "\\\""
            default: out.append(c)
            }
        }
        return out
    }
}
