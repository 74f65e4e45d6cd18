#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials

/// A date as RFC 3339 / ISO 8601 text in UTC: `2026-01-01T00:00:00Z`, or with milliseconds
/// `2026-01-01T00:00:00.123Z`; without Foundation's `ISO8601DateFormatter` (ICU).
///
/// What must hold: the text is the one `ISO8601DateFormatter` gave (options
/// `.withInternetDateTime`, plus `.withFractionalSeconds` for `milliseconds`), which the JSON
/// schema and recordings promise: the time rounded to the nearest millisecond (half away
/// from zero) first, then cut into fields, so 12:00:00.9996 is `12:00:01Z` and `.001Z`.
/// `ISO8601TextTests` compares the two on many dates.
public enum ISO8601Text {
    public static func string(from d: Date, milliseconds: Bool = false) -> String {
        let ms = ((d.timeIntervalSinceReferenceDate + 978_307_200) * 1000).rounded()
        // Past what a clock gives (and time_t's reach), no fields: say so rather than trap.
        guard ms.isFinite, abs(ms) < 1e17 else { return "invalid date" }
        let total = Int64(ms)
        let seconds = total >= 0 ? total / 1000 : (total - 999) / 1000
        var t = time_t(seconds)
        var tm = tm()
        gmtime_r(&t, &tm)
        var s = pad(Int(tm.tm_year) + 1900, 4) + "-" + pad(Int(tm.tm_mon) + 1, 2) + "-" + pad(Int(tm.tm_mday), 2)
            + "T" + pad(Int(tm.tm_hour), 2) + ":" + pad(Int(tm.tm_min), 2) + ":" + pad(Int(tm.tm_sec), 2)
        if milliseconds { s += "." + pad(Int(total - seconds * 1000), 3) }
        return s + "Z"
    }

    /// Parses what `string(from:)` writes without milliseconds (`Z` or an offset), as
    /// `ISO8601DateFormatter().date(from:)` did; nil otherwise.
    public static func date(from s: String) -> Date? {
        // The formatter wanted the `T` (the style also takes a space) and no fraction.
        let u = Array(s.utf8)
        guard u.count > 19, u[10] == UInt8(ascii: "T"), u[19] != UInt8(ascii: ".") else { return nil }
        return try? Date.ISO8601FormatStyle().parse(s)
    }

    static func pad(_ n: Int, _ width: Int) -> String {
        let s = String(n)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}
