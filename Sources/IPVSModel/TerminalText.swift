/// Text from the kernel's files, a capture or a recording made safe for a terminal.
///
/// A scheduler name, a skipped line quoted in a warning or a persistence engine's data is
/// outside data: written raw, an ESC or a C1 control in it would be obeyed by the terminal
/// (retitle the window, clear the screen, remap keys). Every text face passes what it shows
/// through `escaped`; JSON escapes by its own rules.
public enum TerminalText {
    /// `s` with every control character written as `\xHH` (C0 but line feed and tab, DEL,
    /// and the C1 controls U+0080-U+009F, which some terminals obey like ESC sequences), and
    /// a backslash that could be taken for such an escape left as is. Returns `s` itself
    /// when it has none (the common case costs one pass over its bytes).
    ///
    /// `keepLineBreaks: false` escapes line feeds and tabs too, for text that must stay on
    /// one line (a dashboard cell, a status line).
    public static func escaped(_ s: String, keepLineBreaks: Bool = true) -> String {
        guard s.utf8.contains(where: { needsLook($0, keepLineBreaks) }) else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 16)
        for u in s.unicodeScalars {
            let v = u.value
            if isControl(v, keepLineBreaks) {
                out += "\\x" + hex(v)
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// True when `s` holds a character `escaped` would rewrite.
    public static func needsEscaping(_ s: String, keepLineBreaks: Bool = true) -> Bool {
        s.unicodeScalars.contains { isControl($0.value, keepLineBreaks) }
    }

    /// True for a C0 control, DEL or a C1 control: what `escaped` rewrites (with line
    /// feed and tab) and what the dashboard never puts in a cell.
    @inline(__always)
    public static func isControl(_ s: Unicode.Scalar) -> Bool { isControl(s.value, false) }

    @inline(__always)
    static func isControl(_ v: UInt32, _ keep: Bool) -> Bool {
        if v == 0x0A || v == 0x09 { return !keep }
        return v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v)
    }

    /// Bytes that are, or may start, a control character: C0, DEL, and 0xC2 (the lead
    /// byte of U+0080-U+00BF in UTF-8).
    @inline(__always)
    static func needsLook(_ b: UInt8, _ keep: Bool) -> Bool {
        if b == 0x0A || b == 0x09 { return !keep }
        return b < 0x20 || b == 0x7F || b == 0xC2
    }

    static func hex(_ v: UInt32) -> String {
        let digits = Array("0123456789ABCDEF")
        if v > 0xFF { return String(v, radix: 16, uppercase: true) }
        return String(digits[Int(v >> 4)]) + String(digits[Int(v & 0xF)])
    }
}
