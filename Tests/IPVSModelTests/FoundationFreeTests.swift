// The helpers that replace Foundation-only API in the shipped binary (issue 19), against the
// Foundation API they replace: the tests may link Foundation, the binary does not.
import Foundation
import Testing
@testable import IPVSModel

@Suite struct PrintfNumberTests {
    /// Doubles of every kind: the figures the faces print (costs, ages, rates, sizes),
    /// halves and near-halves at each decimal place (printf rounds the exact binary value,
    /// half to even), huge and tiny ones, subnormals, negative zero, and random bit patterns.
    static func values() -> [Double] {
        var v: [Double] = [0, -0.0, 1, -1, 0.5, 1.5, 2.5, -2.5, 0.125, 0.375, 2.675, 1.005, 0.0005, 0.0015, 0.00049999,
                           9.9995, 99.95, 999.5, 0.05, 0.15, 0.25, 0.35, 1e-5, 1e-4, 9.99949e-5, 123456.789, 1e15, 9e15,
                           1e16, 1e17, 2e19, 1.8446744073709552e19, 3.4e38, 1e300, -1e300, .greatestFiniteMagnitude,
                           -.greatestFiniteMagnitude, .leastNonzeroMagnitude, .leastNormalMagnitude, 5e-324, 2.2250738585072014e-308,
                           Double(Int64.max), Double(UInt64.max), 4503599627370496.5, 9007199254740993, 0.1 + 0.2,
                           12345, 1234.5, 123.45, 0.00012345, 99999, 100000, 999999, 0.0001, 0.00001, 1e-300,
                           .infinity, -.infinity, .nan, -Double.nan]
        for k in -12...20 {
            let p = pow(10.0, Double(k))
            v += [p, 5 * p, 0.5 * p, 9.5 * p, 9.995 * p, p.nextUp, p.nextDown, -p]
        }
        var rng = SplitMix(seed: 19)
        for _ in 0..<3000 {
            v.append(Double(bitPattern: rng.next()))  // any double, NaN payloads included
            v.append(Double(rng.next() % 10_000_000) / 1000)  // figures with three decimals
            v.append(Double(rng.next() % 1_000_000) / 1000 + 0.0005)  // near a %.3f half
            v.append(Double(rng.next() >> 11) * 0x1p-53 * pow(10, Double(Int(rng.next() % 20) - 6)))
        }
        return v
    }

    @Test func fixedIsPrintfs() {
        var bad: [String] = []
        for v in Self.values() {
            for n in [0, 1, 2, 3, 6] {
                let want = String(format: "%.\(n)f", v)
                let got = PrintfNumber.fixed(v, decimals: n)
                if got != want { bad.append("%.\(n)f of \(v) (\(v.bitPattern)): \(got), printf \(want)") }
            }
        }
        #expect(bad.isEmpty, "\(bad.count) differ: \(bad.prefix(10))")
    }

    @Test func generalIsPrintfs() {
        var bad: [String] = []
        for v in Self.values() {
            for p in [1, 3, 4, 6] {
                let want = String(format: "%.\(p)g", v)
                let got = PrintfNumber.general(v, significant: p)
                if got != want { bad.append("%.\(p)g of \(v) (\(v.bitPattern)): \(got), printf \(want)") }
            }
        }
        #expect(bad.isEmpty, "\(bad.count) differ: \(bad.prefix(10))")
    }

    @Test func knownTexts() {
        #expect(PrintfNumber.fixed(0.0005, decimals: 3) == "0.001")  // above the half in binary
        #expect(PrintfNumber.fixed(0.125, decimals: 2) == "0.12")  // an exact half: to even
        #expect(PrintfNumber.fixed(-0.0001, decimals: 3) == "-0.000")
        #expect(PrintfNumber.fixed(1e300, decimals: 0).count == 301)
        #expect(PrintfNumber.general(12345, significant: 4) == "1.234e+04")
        #expect(PrintfNumber.general(0.0001, significant: 4) == "0.0001")
        #expect(PrintfNumber.general(2.5, significant: 4) == "2.5")
    }
}

@Suite struct ISO8601TextTests {
    /// Dates a director's clock gives, with the millisecond halves and the instants just
    /// before a second where rounding decides the second itself.
    @Test func sameTextAsISO8601DateFormatter() {
        let plain = ISO8601DateFormatter()
        let withMS = ISO8601DateFormatter()
        withMS.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var rng = SplitMix(seed: 8601)
        var times: [Double] = [0, 0.0005, 0.0015, 1e-9, 978_307_200, 1_767_225_600, 1_767_225_599.9995, 4_102_444_800, 2_147_483_647.9999]
        for _ in 0..<20_000 {
            let second = Double(1_600_000_000 + Int(rng.next() % 300_000_000))
            times.append(second + Double(rng.next() % 1_000_000_000) / 1e9)
            times.append(second + (Double(rng.next() % 1000) + 0.5) / 1000)
            times.append(second + 0.999 + Double(rng.next() % 1000) / 1e6)
            times.append(Double(rng.next() % 4_000_000_000) + Double(rng.next() % 1000) / 1000)
        }
        var bad: [String] = []
        for t in times {
            let d = Date(timeIntervalSince1970: t)
            if ISO8601Text.string(from: d) != plain.string(from: d) { bad.append("\(t): \(ISO8601Text.string(from: d)), \(plain.string(from: d))") }
            if ISO8601Text.string(from: d, milliseconds: true) != withMS.string(from: d) {
                bad.append("\(t): \(ISO8601Text.string(from: d, milliseconds: true)), \(withMS.string(from: d))")
            }
        }
        #expect(bad.isEmpty, "\(bad.count) differ: \(bad.prefix(10))")
    }

    @Test func parsesWhatItWritesAsTheFormatterDid() {
        let f = ISO8601DateFormatter()
        for text in ["2026-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "2026-06-30T23:59:59+02:00", "2026-01-01T00:00:00.5Z",
                     "2026-01-01 00:00:00", "yesterday", ""] {
            #expect(ISO8601Text.date(from: text) == f.date(from: text), "\(text)")
        }
    }
}

@Suite struct StringEditsTests {
    static let samples = ["", " ", "\t", " a ", "\t a b \t", "\u{00A0}x\u{2003}", "x\n", "\n x \r\n", "\u{2028}y\u{85}",
                          "\u{0B}\u{0C}z", "a-b-c", "'quoted'", "a|b||c", "|\u{301}", "-\u{301}", "é-e\u{301}", "no change",
                          "/", "//", "", "a", "a/", "/a/b/", "dir/file.rec", "/tmp/x//", "file", "\u{1F600}-\t-"]

    @Test func trimsAsCharacterSetDid() {
        for s in Self.samples {
            #expect(s.trimmingWhitespace() == s.trimmingCharacters(in: .whitespaces), "\(s.debugDescription)")
            #expect(s.trimmingWhitespaceAndNewlines() == s.trimmingCharacters(in: .whitespacesAndNewlines), "\(s.debugDescription)")
            #expect(s.dropFirst().trimmingWhitespace() == s.dropFirst().trimmingCharacters(in: .whitespaces))
        }
    }

    @Test func replacesAsNSStringDid() {
        for s in Self.samples {
            for (target, with) in [("-", "_"), ("|", "¦"), ("'", "''"), ("\t", " ")] {
                let got = s.replacingEvery(Unicode.Scalar(target)!, with: with)
                if !with.contains(target) { #expect(!got.unicodeScalars.contains(Unicode.Scalar(target)!), "\(s.debugDescription)") }
                // Foundation on Linux compares Characters: a target with a combining mark
                // after it stayed (a `|` in check's output); elsewhere the same text.
                if !s.contains(target + "\u{301}") {
                    #expect(got == s.replacingOccurrences(of: target, with: with), "\(s.debugDescription)")
                }
            }
        }
        #expect("a|\u{301}b".replacingEvery("|", with: "¦") == "a¦\u{301}b")
    }

    @Test func lastPathPartAsNSStringDid() {
        for s in Self.samples {
            #expect(s.lastPathPart == (s as NSString).lastPathComponent, "\(s.debugDescription)")
        }
    }
}

@Suite struct ThreadHelperTests {
    @Test func detachedThreadRunsAndWakeConditionWakesIt() {
        let cond = WakeCondition()
        let done = LockedFlag()
        cond.lock()
        DetachedThread.start(name: "ipvstop-test-thread-long-name") {
            cond.lock()
            done.set()
            cond.signal()
            cond.unlock()
        }
        var waited = 0
        while !done.value && waited < 50 {
            cond.wait(seconds: 0.1)
            waited += 1
        }
        cond.unlock()
        #expect(done.value)
        // A timed wait with nobody to wake it times out after about its time.
        let t0 = ProcessInfo.processInfo.systemUptime
        cond.lock()
        let woken = cond.wait(seconds: 0.05)
        cond.unlock()
        let took = ProcessInfo.processInfo.systemUptime - t0
        #expect(!woken)
        #expect(took >= 0.04 && took < 5)
        let s0 = ProcessInfo.processInfo.systemUptime
        DetachedThread.sleep(seconds: 0.02)
        #expect(ProcessInfo.processInfo.systemUptime - s0 >= 0.015)
    }

    final class LockedFlag: @unchecked Sendable {
        private let lock = NSLock()
        private var flag = false
        func set() { lock.lock(); flag = true; lock.unlock() }
        var value: Bool { lock.lock(); defer { lock.unlock() }; return flag }
    }
}

/// A small deterministic generator (splitmix64), so a failure names values that come back.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
