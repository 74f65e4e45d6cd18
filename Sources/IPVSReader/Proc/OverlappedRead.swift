#if canImport(Glibc)
import Glibc
#endif
import IPVSModel

extension ProcFile {
    /// `streamLines` with the kernel's work and the parsing side by side: a thread of its own
    /// makes the `read()` calls into a ring of `depth` chunks while the calling thread hands
    /// the lines of the chunks already read to `consume`.
    ///
    /// Why: a live `/proc/net/ip_vs_conn` costs the kernel far more than the parse (it formats
    /// every row, and before 6.14 walks the hash from bucket 0 on every call), and
    /// `streamLines` waits for each. Overlapped, a whole read takes about what the kernel
    /// takes (what `cat` takes) on a machine with a second core, instead of the sum.
    ///
    /// What must hold, as with `streamLines`: `consume` sees every byte of the file once, in
    /// order, as complete lines (`unterminated` false), then at most one last line without
    /// its newline (`unterminated` true); a line longer than `chunkSize` is passed on in
    /// pieces marked unterminated. The cost is the whole read's wall time and the CPU time
    /// of both threads. `streamLines` stays the plain reference (and the reader of captured
    /// files, where there is no kernel work to hide); `OverlappedReadTests` compares them.
    static func streamLinesOverlapped(
        _ path: String, chunkSize: Int = 256 << 10, depth: Int = 4, limit: Int = Limit.table,
        _ consume: (_ lines: UnsafeBufferPointer<UInt8>, _ unterminated: Bool) -> Void
    ) throws -> ReadCost {
        precondition(chunkSize > 0 && depth >= 2, "a ring of at least two chunks")
        let clock = CostClock()
        let fd = try open(path)
        defer { close(fd) }
        let ring = ChunkRing(chunkSize: chunkSize, depth: depth)
        DetachedThread.start(name: "ipvstop-read") { [ring] in
            ring.fill(fd: fd, limit: limit)
        }
        var carry: [UInt8] = []
        // The piece of a line that ends in a later chunk, or passed on alone once it is a
        // chunk long (no kernel row is).
        func keep(_ bytes: UnsafeBufferPointer<UInt8>) {
            carry.append(contentsOf: bytes)
            if carry.count >= chunkSize {
                carry.withUnsafeBufferPointer { consume($0, true) }
                carry.removeAll(keepingCapacity: true)
            }
        }
        while let (index, count) = ring.nextFull() {
            let chunk = UnsafeBufferPointer(start: ring.chunk(index), count: count)
            var start = 0
            if !carry.isEmpty {
                if let nl = chunk.firstIndex(of: 0x0A) {
                    carry.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[0...nl]))
                    carry.withUnsafeBufferPointer { consume($0, false) }
                    carry.removeAll(keepingCapacity: true)
                    start = nl + 1
                } else {
                    keep(chunk)
                    start = count
                }
            }
            var end = count
            while end > start && chunk[end - 1] != 0x0A { end -= 1 }
            if end > start { consume(UnsafeBufferPointer(rebasing: chunk[start..<end]), false) }
            if end < count && start < count { keep(UnsafeBufferPointer(rebasing: chunk[max(start, end)..<count])) }
            ring.release(index)
        }
        let outcome = ring.outcome()
        switch outcome.failure {
        case .none: break
        case .tooLarge: throw ProcReadError.tooLarge(path, limit: limit)
        case .errno(let e): throw ProcReadError.ofRead(path, errno: e)
        }
        if !carry.isEmpty { carry.withUnsafeBufferPointer { consume($0, true) } }
        var cost = clock.cost(bytes: outcome.bytes, readCalls: outcome.calls)
        cost.cpuSeconds += outcome.readerCPU
        return cost
    }
}

/// The chunks an overlapped read passes between its reading thread and the parsing one.
///
/// Invariant (checked in debug builds at every hand-over): each of the `depth` chunks is in
/// exactly one place: free, full (in read order), or held by one side, which holds at most
/// one at a time. The reader sets `finished` last, after its CPU time is taken, and never
/// touches a chunk after that; the parser returns once `finished` is set and nothing is
/// full, so the file descriptor and the ring outlive every read into them.
final class ChunkRing: @unchecked Sendable {
    enum Failure { case tooLarge, errno(Int32) }
    struct Outcome {
        var bytes = 0
        var calls = 0
        var readerCPU = 0.0
        var failure: Failure?
    }

    let chunkSize: Int
    let depth: Int
    private let memory: UnsafeMutableRawPointer
    private let cond = WakeCondition()
    // Guarded by `cond`'s lock.
    private var free: [Int]
    private var full: [(index: Int, count: Int)] = []
    private var finished = false
    private var result = Outcome()
    private var readerHolds = false
    private var parserHolds = false

    init(chunkSize: Int, depth: Int) {
        self.chunkSize = chunkSize
        self.depth = depth
        memory = UnsafeMutableRawPointer.allocate(byteCount: chunkSize * depth, alignment: 16)
        free = Array(0..<depth)
    }

    deinit { memory.deallocate() }

    func chunk(_ index: Int) -> UnsafeMutablePointer<UInt8> {
        assert(index >= 0 && index < depth)
        return (memory + index * chunkSize).assumingMemoryBound(to: UInt8.self)
    }

    /// Debug builds: every chunk is free, full or held by one side (call with the lock held).
    private func checkInvariant() {
        assert(free.count + full.count + (readerHolds ? 1 : 0) + (parserHolds ? 1 : 0) == depth
               && Set(free + full.map(\.index)).count == free.count + full.count, "a chunk lost or in two places")
    }

    /// The reading thread: fills free chunks in order until the end of the file, an error or
    /// `limit` bytes, then says it is finished.
    func fill(fd: Int32, limit: Int) {
        let cpu0 = CostClock.now(CLOCK_THREAD_CPUTIME_ID)
        var total = 0, calls = 0
        var failure: Failure?
        var atEnd = false
        while !atEnd && failure == nil {
            cond.lock()
            while free.isEmpty { cond.wait(seconds: 60) }
            let index = free.removeFirst()
            readerHolds = true
            checkInvariant()
            cond.unlock()
            let base = chunk(index)
            var filled = 0
            while filled < chunkSize {
                let n = read(fd, base + filled, chunkSize - filled)
                calls += 1
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = .errno(errno)
                    break
                }
                if n == 0 { atEnd = true; break }
                filled += n
                total += n
                if total > limit { failure = .tooLarge; break }
            }
            cond.lock()
            if filled > 0 && failure == nil { full.append((index, filled)) } else { free.append(index) }
            readerHolds = false
            checkInvariant()
            cond.broadcast()
            cond.unlock()
        }
        let cpu = CostClock.now(CLOCK_THREAD_CPUTIME_ID) - cpu0
        cond.lock()
        result = Outcome(bytes: total, calls: calls, readerCPU: cpu, failure: failure)
        finished = true
        cond.broadcast()
        cond.unlock()
    }

    /// The parsing thread: the next full chunk in read order, or nil once the reader has
    /// finished and every chunk it filled was taken (after a failure: at once).
    func nextFull() -> (Int, Int)? {
        cond.lock()
        defer { cond.unlock() }
        while full.isEmpty && !finished { cond.wait(seconds: 60) }
        if result.failure != nil || full.isEmpty {
            // The reader has finished: wait for nothing more.
            return nil
        }
        let next = full.removeFirst()
        parserHolds = true
        checkInvariant()
        return (next.index, next.count)
    }

    /// The parsing thread gives a chunk back once its lines were consumed.
    func release(_ index: Int) {
        cond.lock()
        free.append(index)
        parserHolds = false
        checkInvariant()
        cond.broadcast()
        cond.unlock()
    }

    /// What the reader did; call after `nextFull()` returned nil.
    func outcome() -> Outcome {
        cond.lock()
        defer { cond.unlock() }
        while !finished { cond.wait(seconds: 60) }
        return result
    }
}
