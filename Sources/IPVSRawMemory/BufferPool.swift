#if canImport(Glibc)
import Glibc
import Synchronization
#endif

/// Large buffers kept between analyses.
///
/// An analysis of 10^6 entries needs tens of megabytes of working memory; fresh from the
/// kernel, every 4 KiB page of it costs a fault and a clearing, a large share of the
/// analysis when it runs every second. An `Analyzer` keeps one pool: the aggregates of the previous poll give
/// their buffers back when the last face lets go of them, and the next poll takes them.
///
/// Thread-safe: aggregates are released on whichever thread drops them last.
public final class BufferPool: @unchecked Sendable {
    /// Raw memory, 16-byte aligned; a large block is its own mapping, in huge pages where
    /// the kernel has them.
    ///
    /// Invariants: `base` is 16-byte aligned and `bytes` long; a block is owned by one
    /// holder at a time (the pool's free list, or one buffer) and released once. `typed`
    /// checks alignment and size in debug builds.
    @usableFromInline
    package struct Block: @unchecked Sendable {
        @usableFromInline package let base: UnsafeMutableRawPointer
        @usableFromInline package let bytes: Int
        /// The mapping to unmap (nil: from malloc).
        private let mapping: (start: UnsafeMutableRawPointer, length: Int)?

        /// From here on a block is mapped on its own, aligned to and advised for huge pages.
        /// The analysis' large buffers are written once across and read once along: in 4 KiB
        /// pages, a fresh buffer costs a fault per page (a third of a one-poll analysis at
        /// 10^6 entries) and the radix sort's scattered writes miss the TLB; in 2 MiB pages,
        /// a few faults, and a TLB entry covers a sort bucket's whole stretch. A fresh huge
        /// page costs about a quarter of the small pages it replaces, so from 1 MiB on a whole
        /// huge page costs less than the small pages of the block.
        package static let mappedFrom = 1 << 20
        package static let hugePage = 2 << 20

        @usableFromInline
        package static func allocate(_ bytes: Int) -> Block {
            let size = max(16, bytes)
            #if canImport(Glibc)
            if size >= mappedFrom, let b = mapped(size) { return b }
            #endif
            return Block(base: .allocate(byteCount: size, alignment: 16), bytes: size, mapping: nil)
        }

        #if canImport(Glibc)
        /// An anonymous mapping of `size` bytes rounded up to huge pages, starting on a huge
        /// page boundary (mapped a huge page larger and trimmed), with MADV_HUGEPAGE: with
        /// transparent huge pages in `madvise` mode (Debian's default) only advised memory
        /// gets them. Where they are off or none is free, the kernel uses small pages: slower,
        /// same contents. Nil when the mapping fails (malloc is then asked).
        private static func mapped(_ size: Int) -> Block? {
            let length = (size + hugePage - 1) / hugePage * hugePage
            guard let raw = mmap(nil, length + hugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                  raw != MAP_FAILED else { return nil }
            let address = UInt(bitPattern: raw)
            let aligned = (address + UInt(hugePage) - 1) / UInt(hugePage) * UInt(hugePage)
            let head = Int(aligned - address)
            if head > 0 { munmap(raw, head) }
            let start = raw + head
            let tail = hugePage - head
            if tail > 0 { munmap(start + length, tail) }
            _ = madvise(start, length, Int32(MADV_HUGEPAGE))
            return Block(base: start, bytes: length, mapping: (start, length))
        }
        #endif

        @usableFromInline
        package func release() {
            #if canImport(Glibc)
            if let m = mapping {
                munmap(m.start, m.length)
                return
            }
            #endif
            base.deallocate()
        }

        @inlinable
        package func typed<T>(_: T.Type) -> UnsafeMutablePointer<T> {
            assert(MemoryLayout<T>.alignment <= 16 && Int(bitPattern: base) % 16 == 0, "a block's alignment")
            return base.bindMemory(to: T.self, capacity: bytes / MemoryLayout<T>.stride)
        }
    }

    /// A block held for reuse, and when it was given back (`BufferPool.now()`).
    private struct Held {
        var block: Block
        var since: Double
    }

    /// The blocks held for reuse.
    private let free = Mutex<[Held]>([])
    /// More than a poll's worth is memory held for nothing.
    private let keep: Int

    public init(keep: Int = 12) { self.keep = keep }

    deinit { free.withLock { for h in $0 { h.block.release() } } }

    /// A block of at least `bytes`: the smallest free one that fits, or a new one.
    @usableFromInline
    package func take(bytes: Int) -> Block {
        let found = free.withLock { free -> Block? in
            var best = -1
            for (i, h) in free.enumerated() where h.block.bytes >= bytes && (best < 0 || h.block.bytes < free[best].block.bytes) { best = i }
            return best >= 0 ? free.remove(at: best).block : nil
        }
        // Somewhat more than asked, so that a table that grows a little still fits next time.
        return found ?? .allocate(bytes + bytes / 8)
    }

    /// Takes `b` back; the smallest blocks go when more than `keep` are held.
    @usableFromInline
    package func give(_ b: Block, at time: Double = BufferPool.now()) {
        let drop = free.withLock { free -> [Block] in
            free.append(Held(block: b, since: time))
            var drop: [Block] = []
            if free.count > keep {
                free.sort { $0.block.bytes > $1.block.bytes }
                drop = free[keep...].map(\.block)
                free.removeLast(free.count - keep)
            }
            return drop
        }
        for d in drop { d.release() }
    }

    /// Returns to the kernel the blocks held for longer than `seconds`: the next analysis
    /// is not coming soon, so the memory is not worth holding.
    ///
    /// Why: the pool pays where an analysis follows another within a poll or two (a table
    /// read every interval); there it holds what one analysis needs. A big table is read
    /// and analysed seconds or minutes apart (the pacer, the feed's reuse of its last
    /// analysis), and what the pool held between those analyses was the largest part of
    /// a poller's memory beyond the tables themselves: ~80 MB at 10^6 entries, saving a
    /// few milliseconds of page faults once in a long while. A poller calls this once a
    /// poll. Returns the bytes released.
    @discardableResult
    public func releaseIdle(olderThan seconds: Double, now: Double = BufferPool.now()) -> Int {
        let drop = free.withLock { free -> [Block] in
            // One pass: the idle blocks end up after `kept`.
            let kept = free.partition { now - $0.since > seconds }
            defer { free.removeSubrange(kept...) }
            return free[kept...].map(\.block)
        }
        for d in drop { d.release() }
        return drop.reduce(0) { $0 + $1.bytes }
    }

    /// Bytes held for reuse.
    public var heldBytes: Int {
        free.withLock { $0.reduce(0) { $0 + $1.block.bytes } }
    }

    /// Seconds on a monotonic clock (the pool's time for `give` and `releaseIdle`).
    public static func now() -> Double {
        #if canImport(Glibc)
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        #else
        return 0
        #endif
    }
}

extension Optional where Wrapped == BufferPool {
    @usableFromInline
    package func take(bytes: Int) -> BufferPool.Block { self?.take(bytes: bytes) ?? .allocate(bytes) }

    @usableFromInline
    package func give(_ b: BufferPool.Block) {
        if let p = self { p.give(b) } else { b.release() }
    }
}

