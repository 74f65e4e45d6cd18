import Foundation
import IPVSModel
import Testing
@testable import IPVSDashboard
@testable import IPVSDemo

/// Plays `path` the way `ipvstop --replay` does, unpaused from its last frame and paused
/// at its first, and draws every screen of every frame at two sizes; returns the error
/// text when the recording is refused (which must then be a clear message).
@discardableResult
func replayEveryScreen(_ path: String) -> String? {
    for start in [0, -1] {
        let source: ReplaySource
        do {
            source = try ReplaySource(path: path, start: start, paused: start == 0)
        } catch {
            return "\(error)"
        }
        let d = Dashboard(source: source, worker: AnalysisWorker(), glyphs: .unicode)
        var rounds = 0
        repeat {
            d.pump()
            for screen in ScreenID.allCases {
                d.handle(.char(Character(String(screen.rawValue))))
                _ = d.render(width: 120, height: 40)
                _ = d.render(width: 80, height: 24)
                d.handle(.char("x"))
                _ = d.render(width: 120, height: 40)
                d.handle(.char("x"))
            }
            d.handle(.char("p"))
            rounds += 1
        } while rounds < 3
        for _ in 0..<250 where d.worker.isRunning { usleep(20_000); d.pump() }
        d.pump()
        _ = d.render(width: 120, height: 40)
    }
    return nil
}

/// Every recording in `$IPVSTOP_BAD_RECORDINGS` (e.g. ../shared/bad-inputs/recordings):
/// each plays on every screen or is refused with a message. Off unless the
/// variable is set: CI does not depend on files outside the repository.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["IPVSTOP_BAD_RECORDINGS"] != nil))
struct SharedBadRecordingTests {
    @Test func everySharedRecording() throws {
        let dir = try #require(ProcessInfo.processInfo.environment["IPVSTOP_BAD_RECORDINGS"])
        for name in try FileManager.default.contentsOfDirectory(atPath: dir).sorted() {
            let msg = replayEveryScreen(dir + "/" + name)
            print("REPLAY \(name): \(msg ?? "played")")
            // `--replay FILE` puts the file's name before the message.
            if let msg { #expect(msg.count > 20, "\(name): \(msg)") }
        }
    }
}

/// The damage of each file in ../shared/bad-inputs/recordings, made here on a small
/// recording of the demo director (3 frames, tables of 20 entries, ~10 KB) instead of kept
/// as 88 KB files: the same field, the same value.
enum Forge {
    static let director = DemoDirector(seed: 1)
    static let snaps = (0..<3).map { director.snapshot(at: DemoDirector.warmTime + Double($0)) }

    static func record(_ type: UInt8, _ payload: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.u32(UInt32(payload.count + 1))
        w.u8(type)
        return w.bytes + payload
    }

    static func header(interval: String = "1") -> [UInt8] {
        record(1, Array(#"{"created":"2026-11-21T02:30:00Z","interval":\#(interval),"max_entries":20,"source":"forge"}"#.utf8))
    }

    static func frame(_ s: Snapshot, table: Int) -> [UInt8] {
        var w = ByteWriter()
        w.frame(s, tableSeq: table, limit: 20)
        return w.bytes
    }

    /// Table payloads for the three snapshots, each after the first written against the
    /// one before (entries they share as references).
    static func tables() -> [[UInt8]] {
        var previous: [EntryIdentity: (Int, UInt32)] = [:]
        return snaps.enumerated().map { k, s in
            var w = ByteWriter()
            previous = w.table(s.connections!, seq: k + 1, limit: 20, previous: previous)
            return w.bytes
        }
    }

    /// A recording: header, then for each snapshot its table and its frame.
    static func file(header: [UInt8] = Forge.header(), tables: [[UInt8]] = Forge.tables(), frames: [[UInt8]]? = nil) -> [UInt8] {
        let frames = frames ?? snaps.enumerated().map { frame($1, table: $0 + 1) }
        var out = Array("ipvstop-recording 1\n".utf8) + header
        for k in frames.indices {
            if k < tables.count { out += record(3, tables[k]) }
            out += record(2, frames[k])
        }
        return out
    }

    static func varint(_ v: UInt64) -> [UInt8] { var w = ByteWriter(); w.varint(v); return w.bytes }
    static func double(_ d: Double) -> [UInt8] { var w = ByteWriter(); w.f64(d); return w.bytes }

    /// The first byte where two encodings differ: where the field that tells them apart is.
    static func firstDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
        (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
    }

    /// `bytes` with `count` bytes at `at` replaced by `with`.
    static func splice(_ bytes: [UInt8], at: Int, count: Int, with: [UInt8]) -> [UInt8] {
        Array(bytes[..<at]) + with + Array(bytes[(at + count)...])
    }

    /// Frame 0 with its service 0's rates (or the director's) set to `v`.
    static func frameWithRate(_ v: Double, global: Bool) -> [UInt8] {
        var a = snaps[0], b = snaps[0]
        if global {
            a.global?.rates.cps = 1.5
            b.global?.rates.cps = 1.5.nextUp
        } else {
            a.services[0].rates = TrafficRates(cps: 1.5, inPPS: 0, outPPS: 0, inBPS: 0, outBPS: 0)
            b.services[0].rates = TrafficRates(cps: 1.5.nextUp, inPPS: 0, outPPS: 0, inBPS: 0, outBPS: 0)
        }
        let fa = frame(a, table: 1), fb = frame(b, table: 1)
        // 1.5 and the next double differ in their lowest byte, written first.
        let at = firstDifference(fa, fb)
        #expect(Array(fa[at..<(at + 8)]) == double(1.5))
        return splice(fa, at: at, count: 8, with: double(v))
    }

    /// Frame 0 with the sysctl count replaced by `count` (varint), the sysctls kept.
    static func frameWithSysctlCount(_ count: UInt64) -> [UInt8] {
        var a = snaps[0], b = snaps[0]
        b.sysctls.removeLast()
        let fa = frame(a, table: 1), fb = frame(b, table: 1)
        let at = firstDifference(fa, fb)
        a.sysctls = []
        #expect(fa[at] == UInt8(snaps[0].sysctls.count))
        return splice(fa, at: at, count: 1, with: varint(count))
    }
}

@Suite struct BadRecordingTests {
    static func read(_ bytes: [UInt8]) throws -> Recording.Contents { try Recording.read(data: bytes, name: "forged.ipvsrec") }

    /// Writes the bytes to a file and plays it through the dashboard on every screen.
    static func plays(_ bytes: [UInt8]) -> String? {
        let path = tempPath("forged-\(UUID().uuidString).ipvsrec")
        defer { try? FileManager.default.removeItem(atPath: path) }
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return replayEveryScreen(path)
    }

    @Test func theForgedBaseIsSound() throws {
        let bytes = Forge.file()
        #expect(bytes.count < 12_000)
        let c = try Self.read(bytes)
        #expect(c.frames.count == 3)
        #expect(c.rejected.isEmpty)
        #expect(c.frames.allSatisfy { $0.connections?.entries.count == 20 })
        #expect(Self.plays(bytes) == nil)
    }

    // frame0-takenAt-{nan,inf,1e300,neg1e300,1e19}: the dashboard trapped on the time.
    @Test(arguments: [Double.nan, .infinity, 1e300, -1e300, 1e19])
    func impossibleFrameTimeIsLeftOut(_ t: Double) throws {
        var frames = Forge.snaps.enumerated().map { Forge.frame($1, table: $0 + 1) }
        frames[0] = Forge.splice(frames[0], at: 0, count: 8, with: Forge.double(t))
        let bytes = Forge.file(frames: frames)
        let c = try Self.read(bytes)
        #expect(c.frames.count == 2)
        #expect(c.rejected.first?.hasPrefix("frame 1: time") == true)
        #expect(c.frames.allSatisfy { $0.source.warnings.contains { $0.hasPrefix("recording: 1 impossible record") } })
        #expect(Self.plays(bytes) == nil)
    }

    /// A frame two days after the one before would stall the replay: left out. A clock
    /// stepping back ten seconds (NTP) is no damage: kept.
    @Test func frameTimeJumpsAreJudgedByTheirSize() throws {
        var frames = Forge.snaps.enumerated().map { Forge.frame($1, table: $0 + 1) }
        let t1 = Forge.snaps[1].takenAt.timeIntervalSince1970
        frames[1] = Forge.splice(frames[1], at: 0, count: 8, with: Forge.double(t1 + 2 * 86_400))
        var c = try Self.read(Forge.file(frames: frames))
        #expect(c.frames.count == 2)
        #expect(c.rejected.first?.contains("a day away from the frame before") == true)
        frames[1] = Forge.splice(frames[1], at: 0, count: 8, with: Forge.double(Forge.snaps[0].takenAt.timeIntervalSince1970 - 10))
        c = try Self.read(Forge.file(frames: frames))
        #expect(c.frames.count == 3)
        #expect(c.rejected.isEmpty)
        #expect(Self.plays(Forge.file(frames: frames)) == nil)
    }

    // allframes-takenAt-1e300: nothing left to play, said so.
    @Test func everyFrameTimeImpossibleIsRefused() throws {
        let frames = Forge.snaps.enumerated().map { Forge.splice(Forge.frame($1, table: $0 + 1), at: 0, count: 8, with: Forge.double(1e300)) }
        let bytes = Forge.file(frames: frames)
        #expect(throws: Recording.ReadError.self) { try Self.read(bytes) }
        let msg = try #require(Self.plays(bytes))
        #expect(msg.contains("holds no usable snapshot: frame 1: time 1e+300 is impossible"))
    }

    // rates-{nan,neg,1e300,2^64,1.9e19}: the dashboard trapped formatting them.
    @Test(arguments: [Double.nan, -5, 1e300, 18_446_744_073_709_551_616.0, 1.9e19])
    func impossibleRatesAreUnavailable(_ v: Double) throws {
        for global in [false, true] {
            var frames = Forge.snaps.enumerated().map { Forge.frame($1, table: $0 + 1) }
            frames[0] = Forge.frameWithRate(v, global: global)
            let bytes = Forge.file(frames: frames)
            let c = try Self.read(bytes)
            #expect(c.frames.count == 3)
            if global {
                #expect(c.frames[0].global?.rates.cps.isNaN == true)
            } else {
                #expect(c.frames[0].services[0].rates == nil)
            }
            #expect(c.rejected == ["frame 1: impossible rates made unavailable"])
            #expect(Self.plays(bytes) == nil)
        }
    }

    // header-interval-1e308 (and 0): replayed at a second.
    @Test(arguments: ["1e308", "0", "-1"])
    func impossibleHeaderIntervalIsReplacedAndSaid(_ interval: String) throws {
        let bytes = Forge.file(header: Forge.header(interval: interval))
        let c = try Self.read(bytes)
        #expect(c.header?.interval == 1)
        #expect(c.rejected.first?.hasPrefix("header interval") == true)
        #expect(Self.plays(bytes) == nil)
    }

    // sysctl-count-2^64-1, heap-sysctl-2^64-*, sysctl-count-2^40: a heap overflow and an
    // allocation abort. Now a damaged record: the frames before it play, flagged.
    @Test(arguments: [UInt64.max, 1 << 63, 1 << 40, 1 << 20])
    func hugeListCountIsDamage(_ count: UInt64) throws {
        var frames = Forge.snaps.enumerated().map { Forge.frame($1, table: $0 + 1) }
        frames[1] = Forge.frameWithSysctlCount(count)
        let bytes = Forge.file(frames: frames)
        let c = try Self.read(bytes)
        #expect(c.frames.count == 1)
        #expect(c.rejected.last?.contains("is damaged (a count or length past its end): the frames after it are left out") == true)
        #expect(Self.plays(bytes) == nil)
        // Damaged at the first frame: a clear refusal.
        frames[0] = Forge.frameWithSysctlCount(count)
        let first = Forge.file(frames: frames)
        #expect(Self.plays(first)?.contains("holds no usable snapshot: the record ending at byte") == true)
    }

    // rec-heap-overflow-examples-count-2^64: the table's examples count.
    @Test func hugeExamplesCountIsDamage() throws {
        var tables = Forge.tables()
        var skipped = Forge.snaps[0].connections!
        // seq, file, readAt, cost, three counts, then the examples count (0 here).
        var w = ByteWriter()
        w.int(1); w.string(skipped.file); w.date(skipped.readAt); w.cost(skipped.cost); w.int(0); w.int(0); w.int(0)
        let at = w.bytes.count
        #expect(tables[0][at] == 0)
        tables[0] = Forge.splice(tables[0], at: at, count: 1, with: Forge.varint(.max))
        skipped = Forge.snaps[1].connections!
        _ = skipped
        #expect(Self.plays(Forge.file(tables: tables))?.contains("holds no usable snapshot") == true)
    }

    // table-file-strlen-2^64-1 and 2^62: an overflow trap computing where the string ends.
    @Test(arguments: [UInt64.max, 1 << 62, UInt64(Int.max)])
    func hugeStringLengthIsDamage(_ length: UInt64) throws {
        var tables = Forge.tables()
        // The table's file name follows its sequence number (one byte).
        #expect(Int(tables[0][1]) == "ip_vs_conn".utf8.count)
        tables[0] = Forge.splice(tables[0], at: 1, count: 1, with: Forge.varint(length))
        let msg = try #require(Self.plays(Forge.file(tables: tables)))
        #expect(msg.contains("holds no usable snapshot: the record ending at byte"))
    }

    // table-readAt-{nan,neg1e300,1e300}: the dashboard trapped on the table's age.
    @Test(arguments: [Double.nan, -1e300, 1e300])
    func impossibleTableTimeDropsTheTable(_ t: Double) throws {
        var tables = Forge.tables()
        let at = 2 + "ip_vs_conn".utf8.count
        tables[0] = Forge.splice(tables[0], at: at, count: 8, with: Forge.double(t))
        let bytes = Forge.file(tables: tables)
        let c = try Self.read(bytes)
        #expect(c.frames.count == 3)
        #expect(c.frames[0].connections == nil)
        #expect(c.frames[1].connections?.entries.count == 20)
        #expect(c.rejected.first?.hasPrefix("connection table 1: read time") == true)
        #expect(Self.plays(bytes) == nil)
    }

    // table-ref-index-int64max and table-ref-expires-int64max: overflow traps.
    @Test func hugeReferenceDistanceAndTimeDoNotTrap() throws {
        let tables = Forge.tables()
        // The second table's first entry: a reference [0xFF, index distance, state, time delta].
        var w = ByteWriter()
        let t = Forge.snaps[1].connections!
        w.int(2); w.string(t.file); w.date(t.readAt); w.cost(t.cost)
        w.int(t.skipped.malformed); w.int(t.skipped.unknownProtocol); w.int(t.skipped.unknownState); w.strings(t.skipped.examples)
        w.int(t.entries.count); w.int(20)
        let at = w.bytes.count
        #expect(tables[1][at] == 0xFF)
        var big = ByteWriter()
        big.sint(Int64.max)
        // Index distance Int64.max: damage, the frames before it play.
        var index = tables
        index[1] = Forge.splice(tables[1], at: at + 1, count: 1, with: big.bytes)
        let ci = try Self.read(Forge.file(tables: index))
        #expect(ci.frames.count == 1)
        #expect(Self.plays(Forge.file(tables: index)) == nil)
        // Time delta Int64.max (and Int64.min): the entry's time saturates.
        for v in [Int64.max, Int64.min] {
            var delta = ByteWriter()
            delta.sint(v)
            var expires = tables
            let distance = tables[1][at + 1]
            #expect(distance < 0x80)
            expires[1] = Forge.splice(tables[1], at: at + 3, count: tables[1][at + 3] < 0x80 ? 1 : 2, with: delta.bytes)
            let ce = try Self.read(Forge.file(tables: expires))
            #expect(ce.frames.count >= 1)
            #expect(Self.plays(Forge.file(tables: expires)) == nil)
        }
    }

    // huge-length, truncated-40, truncated-half, magic-only, empty, newer-format,
    // format-huge: clear refusals, kept so.
    @Test func cutAndForeignFilesAreRefusedClearly() throws {
        let bytes = Forge.file()
        #expect(Self.plays(Array(bytes.prefix(40)))?.contains("holds no usable snapshot: the file ends inside the record") == true)
        #expect(Self.plays(Array(bytes.prefix(20)))?.contains("holds no snapshot") == true)
        #expect(Self.plays([])?.contains("is not an ipvstop recording") == true)
        #expect(Self.plays(Array("ipvstop-recording 2\n".utf8) + bytes.dropFirst(20))?.contains("format 2") == true)
        #expect(Self.plays(Array("ipvstop-recording 99999999999999999999999\n".utf8))?.contains("is not an ipvstop recording") == true)
        var huge = Array(bytes.prefix(20))
        huge += [0xFF, 0xFF, 0xFF, 0xFF, 1, 0, 0, 0]
        #expect(Self.plays(huge)?.contains("the file ends inside the record at byte 20") == true)
    }
}

/// `record FILE` writes only regular files it owns (issue 25): it once renamed its temp file
/// over whatever FILE was, /dev/null included, and the mode followed the umask.
@Suite(.serialized) struct RecordFileTests {
    static func dir() throws -> String {
        let d = tempPath("record-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    static func write(_ path: String) throws {
        let w = try Recording.Writer(path: path, source: "test", interval: 1)
        try w.append(Forge.snaps[0])
        try w.close()
    }

    @Test func specialFilesAreRefusedAndLeftAlone() throws {
        let d = try Self.dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        #expect(mkfifo(d + "/fifo", 0o644) == 0)
        try FileManager.default.createDirectory(atPath: d + "/dir", withIntermediateDirectories: false)
        FileManager.default.createFile(atPath: d + "/target", contents: Data("keep".utf8))
        try FileManager.default.createSymbolicLink(atPath: d + "/link", withDestinationPath: d + "/target")
        for (name, kind) in [("fifo", "FIFO"), ("dir", "directory"), ("link", "symbolic link")] {
            #expect {
                try Self.write(d + "/" + name)
            } throws: { e in
                "\(e)".contains("is a \(kind): ipvstop records only into a regular file")
            }
        }
        #expect {
            try Self.write("/dev/null")
        } throws: { e in
            "\(e)" == "/dev/null is a character device: ipvstop records only into a regular file (a new one, or one of its own)"
        }
        var st = stat()
        #expect(stat("/dev/null", &st) == 0 && st.st_mode & S_IFMT == S_IFCHR)
        #expect(lstat(d + "/fifo", &st) == 0 && st.st_mode & S_IFMT == S_IFIFO)
        #expect(try String(contentsOfFile: d + "/target", encoding: .utf8) == "keep")
    }

    @Test func anotherUsersFileIsRefused() throws {
        guard geteuid() == 0 else { return }   // only root can give a file away
        let d = try Self.dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        FileManager.default.createFile(atPath: d + "/theirs", contents: Data("theirs".utf8))
        #expect(chown(d + "/theirs", 65534, 65534) == 0)
        #expect {
            try Self.write(d + "/theirs")
        } throws: { e in
            "\(e)".contains("belongs to another user (uid 65534): not replaced")
        }
        #expect(try String(contentsOfFile: d + "/theirs", encoding: .utf8) == "theirs")
    }

    @Test func ownFileIsReplacedWithMode0600WhateverTheUmask() throws {
        let d = try Self.dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        FileManager.default.createFile(atPath: d + "/mine", contents: Data("old".utf8), attributes: [.posixPermissions: 0o666])
        // 0277 would leave 0400 without the writer's fchmod. The umask is the process's:
        // other tests' files made meanwhile lose bits too, harmless to root (CI), so an
        // unprivileged run takes the milder 0077.
        let old = umask(geteuid() == 0 ? 0o277 : 0o077)
        defer { umask(old) }
        try Self.write(d + "/mine")
        try Self.write(d + "/new")
        for name in ["mine", "new"] {
            var st = stat()
            #expect(lstat(d + "/" + name, &st) == 0)
            #expect(st.st_mode & 0o7777 == 0o600, "\(name): \(String(st.st_mode & 0o7777, radix: 8))")
            #expect(st.st_mode & S_IFMT == S_IFREG)
            #expect(try Recording.read(path: d + "/" + name).frames.count == 1)
        }
    }
}

/// One snapshot, handed out once: the dashboard on figures a live read can give.
final class FixedSource: SnapshotSource {
    let snapshot: Snapshot
    var taken = false
    init(_ s: Snapshot) { snapshot = s }
    var label: String { "fixed" }
    func now() -> Date { snapshot.takenAt }
    func take() -> [Snapshot] { defer { taken = true }; return taken ? [] : [snapshot] }
    var isPaused: Bool { true }
    func setPaused(_ paused: Bool) {}
    var interval: Double { 1 }
    func setInterval(_ seconds: Double) -> String? { nil }
    var note: String? { nil }
    func stop() {}
}

@Suite struct DashboardOutsideValueTests {
    static func renderAll(_ s: Snapshot) -> [String] {
        let d = Dashboard(source: FixedSource(s), worker: AnalysisWorker(), glyphs: .unicode)
        d.pump()
        for _ in 0..<250 where d.worker.isRunning { usleep(20_000); d.pump() }
        var out: [String] = []
        for screen in ScreenID.allCases {
            d.handle(.char(Character(String(screen.rawValue))))
            for exact in [false, true] {
                if exact { d.handle(.char("x")) }
                out.append(d.render(width: 120, height: 40).text)
                if exact { d.handle(.char("x")) }
            }
        }
        return out
    }

    /// dashboard-ip_vs_stats-rate-2^64: /proc/net/ip_vs_stats with a rate of
    /// FFFFFFFFFFFFFFFF trapped the summary line; it saturates (the kernel's rates are u64).
    @Test func globalRateOf2To64Saturates() {
        var s = Forge.snaps[0]
        let max = Double(UInt64.max)   // what the reader makes of FFFFFFFFFFFFFFFF: 2^64
        s.global?.rates = TrafficRates(cps: max, inPPS: max, outPPS: 0, inBPS: max, outBPS: 1e300)
        s.services[0].rates = TrafficRates(cps: max, inPPS: .infinity, outPPS: .nan, inBPS: -1, outBPS: 1e300)
        let screens = Self.renderAll(s)
        #expect(screens[0].contains("CPS 18E"))
        #expect(Format.rate(max, exact: true) == String(UInt64.max))
        #expect(Format.rate(1e300, exact: false) == "18E")
        #expect(Format.rate(.nan, exact: false) == "?")
        #expect(Format.fixed(1e300, 1) == String(format: "%.0f", 1e300))
        #expect(Format.age(.infinity).hasSuffix("m"))
        #expect(Format.age(.nan) == "?")
        #expect(Format.percent(1e300) == "\(Int.max)%")
        #expect(Format.int(.nan) == 0 && Format.int(-1e300) == Int.min && Format.int(1e19) == Int.max)
    }

    /// proc-terminal-escapes: the scheduler name and a warning with ESC sequences reach
    /// no cell raw: the warnings line escapes them readably, any other cell shows "?".
    @Test func controlCharactersNeverReachACell() {
        var s = Forge.snaps[0]
        s.services[0].scheduler = "\u{1B}[5mrr\u{1B}[0m"
        s.source.warnings = ["ip_vs_conn: skipped 1 line(s): TCP \u{1B}]0;owned-title\u{07}\u{1B}[2J\u{9B}31m AAAA", "second"]
        let screens = Self.renderAll(s)
        for text in screens {
            #expect(!text.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" || (0x7F...0x9F).contains($0.value) })
        }
        #expect(screens[0].contains("2 warnings"))
        #expect(screens[0].contains("TCP \\x1B]0;owned-title\\x07"))
        #expect(screens.joined().contains("?[5mrr?"))
        var g = Grid(width: 8, height: 1)
        g.put("a\u{1B}b\u{85}c\td", x: 0, y: 0)
        #expect(g.line(0) == "a?b?c?d")
    }
}
