/// Numbers written as C's printf writes them (`%.3f`, `%.4g`), without Foundation's
/// `String(format:)` (which needs the whole of Foundation, and its ICU data, in the binary).
///
/// What must hold: the text is the one glibc's printf gives in the C locale, for every
/// double: the exact binary value rounded half to even (printf's default rounding), `inf`,
/// `-inf`, `nan`, `-nan`, and `-` on a negative value that rounds to zero (`-0.000`).
/// `PrintfNumberTests` compares both with `String(format:)` on many values.
public enum PrintfNumber {
    /// `%.<decimals>f`.
    public static func fixed(_ v: Double, decimals: Int) -> String {
        let n = max(0, decimals)
        if let special = nonFinite(v) { return special }
        let sign = v.sign == .minus ? "-" : ""
        // Fast path: v = m * 2^e with the product m * 10^n held exactly in 128 bits.
        let (m, e) = parts(abs(v))
        if n <= 19 {
            if m == 0 { return sign + pointed(0, decimals: n) }
            if e >= 0 && e <= 64 { return sign + pointed(UInt128(m) << e, decimals: 0) + zeros(n, point: true) }
            if e < 0 {
                let k = -e
                // Past 120 bits of fraction, v * 10^n < 2^53 * 10^19 / 2^121 < 1/2: zero.
                if k > 120 { return sign + pointed(0, decimals: n) }
                let scaled = UInt128(m) * pow10(n)
                var q = scaled >> k
                let r = scaled - (q << k)
                let half = UInt128(1) << (k - 1)
                if r > half || (r == half && q & 1 == 1) { q += 1 }
                return sign + pointed(q, decimals: n)
            }
        }
        // The rest (values past 2^117, or more than 19 decimals): the exact digits.
        let d = ExactDecimal(abs(v)).rounded(keeping: ExactDecimal(abs(v)).point + n)
        return sign + d.fixedText(decimals: n)
    }

    /// `%.<significant>g`: `significant` digits (at least 1), as `%f` when the decimal
    /// exponent X is in -4 ..< significant, as `%e` otherwise; trailing zeros dropped.
    public static func general(_ v: Double, significant: Int) -> String {
        let p = max(1, significant)
        if let special = nonFinite(v) { return special }
        let sign = v.sign == .minus ? "-" : ""
        if v == 0 { return sign + "0" }
        let exact = ExactDecimal(abs(v))
        let r = exact.rounded(keeping: p)
        let x = r.point - 1
        var text: String
        if x >= -4 && x < p {
            text = exact.rounded(keeping: exact.point + (p - 1 - x)).fixedText(decimals: p - 1 - x)
            if text.contains(".") { text = trimmedFraction(text) }
            return sign + text
        }
        var mantissa = String(r.digit(0))
        if p > 1 {
            var frac = ""
            for i in 1..<p { frac.append(String(r.digit(i))) }
            mantissa = trimmedFraction(mantissa + "." + frac)
        }
        let ax = abs(x)
        return sign + mantissa + (x < 0 ? "e-" : "e+") + (ax < 10 ? "0" : "") + String(ax)
    }

    static func nonFinite(_ v: Double) -> String? {
        if v.isNaN { return v.sign == .minus ? "-nan" : "nan" }
        if v.isInfinite { return v.sign == .minus ? "-inf" : "inf" }
        return nil
    }

    /// `v` = m * 2^e exactly (v finite and not negative).
    static func parts(_ v: Double) -> (m: UInt64, e: Int) {
        let bits = v.bitPattern
        let biased = Int((bits >> 52) & 0x7FF)
        let fraction = bits & ((1 << 52) - 1)
        return biased == 0 ? (fraction, -1074) : (fraction | (1 << 52), biased - 1075)
    }

    static func pow10(_ n: Int) -> UInt128 {
        var p: UInt128 = 1
        for _ in 0..<n { p *= 10 }
        return p
    }

    static func zeros(_ n: Int, point: Bool) -> String {
        n == 0 ? "" : (point ? "." : "") + String(repeating: "0", count: n)
    }

    /// `q` / 10^decimals written with that many decimals.
    static func pointed(_ q: UInt128, decimals: Int) -> String {
        var digits = String(q)
        guard decimals > 0 else { return digits }
        if digits.count <= decimals { digits = String(repeating: "0", count: decimals + 1 - digits.count) + digits }
        let cut = digits.index(digits.endIndex, offsetBy: -decimals)
        return digits[..<cut] + "." + digits[cut...]
    }

    /// `1.2300` -> `1.23`, `5.000` -> `5` (%g without `#`).
    static func trimmedFraction(_ s: String) -> String {
        var t = Substring(s)
        while t.last == "0" { t.removeLast() }
        if t.last == "." { t.removeLast() }
        return String(t)
    }
}

/// The exact decimal expansion of a finite, non-negative double (every double is a finite
/// decimal: m * 2^-k = m * 5^k / 10^k): `digits` most significant first, `point` of them
/// before the decimal point (may be <= 0 or past the end: the missing ones are zeros).
struct ExactDecimal {
    var digits: [UInt8]
    var point: Int

    init(digits: [UInt8], point: Int) {
        self.digits = digits
        self.point = point
    }

    init(_ v: Double) {
        precondition(v.isFinite && v >= 0)
        let (m, e) = PrintfNumber.parts(v)
        guard m != 0 else { self.init(digits: [0], point: 1); return }
        // Limbs of 10^9, least significant first.
        var limbs: [UInt64] = [m % 1_000_000_000, m / 1_000_000_000 % 1_000_000_000, m / 1_000_000_000_000_000_000]
        func multiply(by f: UInt64) {  // f < 2^32: limb * f + carry < 2^62
            var carry: UInt64 = 0
            for i in limbs.indices {
                let t = limbs[i] * f + carry
                limbs[i] = t % 1_000_000_000
                carry = t / 1_000_000_000
            }
            while carry > 0 { limbs.append(carry % 1_000_000_000); carry /= 1_000_000_000 }
        }
        var left = abs(e)
        let (chunk, chunkPower): (UInt64, Int) = e > 0 ? (1 << 31, 31) : (1_220_703_125, 13)  // 2^31, 5^13
        while left >= chunkPower { multiply(by: chunk); left -= chunkPower }
        if left > 0 { multiply(by: e > 0 ? 1 << UInt64(left) : (0..<left).reduce(1) { r, _ in r * 5 }) }
        var text = ""
        for (i, limb) in limbs.reversed().enumerated() {
            let s = String(limb)
            text += i == 0 ? s : String(repeating: "0", count: 9 - s.count) + s
        }
        var d = text.utf8.map { $0 - UInt8(ascii: "0") }
        while d.count > 1 && d.first == 0 { d.removeFirst() }
        self.init(digits: d, point: d.count - max(0, -e))
    }

    /// The digit at `i` (0 past either end).
    func digit(_ i: Int) -> UInt8 { i >= 0 && i < digits.count ? digits[i] : 0 }

    /// Rounded half to even to the first `keep` digits (`keep` may be <= 0: then to zero
    /// or to one unit at position `keep - 1`).
    func rounded(keeping keep: Int) -> ExactDecimal {
        guard keep < digits.count else { return self }
        let first = digit(keep)
        var up = false
        if first > 5 { up = true }
        else if first == 5 {
            let rest = keep + 1 < digits.count ? digits[(keep + 1)...].contains { $0 != 0 } : false
            up = rest || digit(keep - 1) % 2 == 1
        }
        if keep <= 0 {
            // Only zeros kept: one unit at the last place kept when rounding up.
            return up ? ExactDecimal(digits: [1], point: point - keep + 1) : ExactDecimal(digits: [0], point: point - keep + 1)
        }
        var kept = Array(digits[..<keep])
        var p = point
        if up {
            var i = kept.count - 1
            while i >= 0 && kept[i] == 9 { kept[i] = 0; i -= 1 }
            if i >= 0 { kept[i] += 1 } else { kept.insert(1, at: 0); p += 1 }
        }
        return ExactDecimal(digits: kept, point: p)
    }

    /// `%f` text of this value with `decimals` decimals (already rounded to them).
    func fixedText(decimals: Int) -> String {
        var whole = ""
        if point <= 0 { whole = "0" } else { for i in 0..<point { whole.append(String(digit(i))) } }
        if whole.count > 1, whole.first == "0" { whole = String(whole.drop { $0 == "0" }); if whole.isEmpty { whole = "0" } }
        guard decimals > 0 else { return whole }
        var frac = ""
        for i in point..<(point + decimals) { frac.append(String(digit(i))) }
        return whole + "." + frac
    }
}
