import FoundationEssentials
import IPVSModel

/// A small streaming JSON writer: keys in the order written (the schema's order, which
/// `JSONEncoder` does not keep), no intermediate dictionaries for tables of 10^6 rows.
public struct JSONWriter {
    public private(set) var output = ""
    private var needsComma: [Bool] = [false]
    private let pretty: Bool
    private var depth: Int { needsComma.count - 1 }

    public init(pretty: Bool = true) {
        self.pretty = pretty
    }

    private mutating func separator() {
        if needsComma[needsComma.count - 1] { output += "," }
        needsComma[needsComma.count - 1] = true
        if pretty && depth > 0 {
            output += "\n"
            output += String(repeating: "  ", count: depth)
        }
    }

    private mutating func open(_ c: String) {
        output += c
        needsComma.append(false)
    }

    private mutating func close(_ c: String) {
        let hadItems = needsComma.removeLast()
        if pretty && hadItems {
            output += "\n"
            output += String(repeating: "  ", count: depth)
        }
        output += c
    }

    private mutating func key(_ k: String?) {
        separator()
        if let k {
            Self.escape(k, into: &output)
            output += pretty ? ": " : ":"
        }
    }

    // MARK: - Containers

    public mutating func object(_ k: String? = nil, _ body: (inout JSONWriter) -> Void) {
        key(k)
        open("{")
        body(&self)
        close("}")
    }

    public mutating func array(_ k: String? = nil, _ body: (inout JSONWriter) -> Void) {
        key(k)
        open("[")
        body(&self)
        close("]")
    }

    // MARK: - Values

    public mutating func string(_ k: String?, _ v: String?) {
        key(k)
        if let v { Self.escape(v, into: &output) } else { output += "null" }
    }

    public mutating func int<I: BinaryInteger>(_ k: String?, _ v: I?) {
        key(k)
        output += v.map { "\($0)" } ?? "null"
    }

    /// Whole numbers print without a fraction; others with up to three decimals.
    public mutating func number(_ k: String?, _ v: Double?) {
        key(k)
        guard let v, v.isFinite else { output += "null"; return }
        if v == v.rounded() && abs(v) < 1e15 {
            output += String(Int64(v))
        } else {
            output += PrintfNumber.fixed(v, decimals: 3)
        }
    }

    public mutating func bool(_ k: String?, _ v: Bool?) {
        key(k)
        output += v.map { $0 ? "true" : "false" } ?? "null"
    }

    public mutating func null(_ k: String?) {
        key(k)
        output += "null"
    }

    static func escape(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}
