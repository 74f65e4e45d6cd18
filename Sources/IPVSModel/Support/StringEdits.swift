/// The few string edits the faces need that Foundation's NSString gave (`trimmingCharacters`,
/// `replacingOccurrences`), on Unicode scalars as NSString did, without Foundation.
extension StringProtocol {
    /// Without leading and trailing blanks (tab and Unicode's space separators, Zs):
    /// `trimmingCharacters(in: .whitespaces)`.
    public func trimmingWhitespace() -> String { trimming(newlines: false) }

    /// Without leading and trailing blanks and line breaks (LF, VT, FF, CR, NEL, U+2028,
    /// U+2029): `trimmingCharacters(in: .whitespacesAndNewlines)`.
    public func trimmingWhitespaceAndNewlines() -> String { trimming(newlines: true) }

    private func trimming(newlines: Bool) -> String {
        func blank(_ c: Unicode.Scalar) -> Bool {
            if c == "\t" || c.properties.generalCategory == .spaceSeparator { return true }
            return newlines && ((0x0A...0x0D).contains(c.value) || c.value == 0x85 || c.value == 0x2028 || c.value == 0x2029)
        }
        let s = unicodeScalars
        guard let first = s.firstIndex(where: { !blank($0) }) else { return "" }
        let last = s.lastIndex(where: { !blank($0) })!
        return String(String.UnicodeScalarView(s[first...last]))
    }

    /// Every `target` scalar replaced by `replacement`, whatever follows it: a combining
    /// mark after `|` does not hide it, as it did from Foundation's `replacingOccurrences`
    /// on Linux (which compares Characters), so `check` never lets a `|` through.
    public func replacingEvery(_ target: Unicode.Scalar, with replacement: String) -> String {
        var out = String.UnicodeScalarView()
        for c in unicodeScalars {
            if c == target { out.append(contentsOf: replacement.unicodeScalars) } else { out.append(c) }
        }
        return String(out)
    }

    /// The last part of a path, as NSString's `lastPathComponent`: trailing slashes ignored,
    /// "/" for "/" (but "" for "//"), "" for "".
    public var lastPathPart: String {
        var s = Substring(self)
        while s.count > 1 && s.last == "/" { s.removeLast() }
        if s == "/" { return self == "/" ? "/" : "" }
        if let slash = s.lastIndex(of: "/") { return String(s[s.index(after: slash)...]) }
        return String(s)
    }
}
