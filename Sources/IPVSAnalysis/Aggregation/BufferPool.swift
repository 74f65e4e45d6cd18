import Foundation

/// Large buffers kept between analyses.
///
/// An analysis of 10^6 entries needs tens of megabytes of working memory; fresh from the
/// kernel, every 4 KiB page of it costs a fault and a clearing, which at 1 Hz is a third of
/// the analysis. An `Analyzer` keeps one pool: the aggregates of the previous poll give
/// their buffers back when the last face lets go of them, and the next poll takes them.
///
/// Thread-safe: aggregates are released on whichever thread drops them last.
public final class BufferPool: @unchecked Sendable {
    /// Raw memory, 16-byte aligned.
    struct Block: @unchecked Sendable {
        let base: UnsafeMutableRawPointer
        let bytes: Int

        static func allocate(_ bytes: Int) -> Block {
            Block(base: .allocate(byteCount: max(16, bytes), alignment: 16), bytes: max(16, bytes))
        }

        func typed<T>(_: T.Type) -> UnsafeMutablePointer<T> {
            base.bindMemory(to: T.self, capacity: bytes / MemoryLayout<T>.stride)
        }
    }

    private let lock = NSLock()
    /// Guarded by `lock`.
    private var free: [Block] = []
    /// More than a poll's worth is memory held for nothing.
    private let keep: Int

    public init(keep: Int = 6) { self.keep = keep }

    deinit { for b in free { b.base.deallocate() } }

    /// A block of at least `bytes`: the smallest free one that fits, or a new one.
    func take(bytes: Int) -> Block {
        lock.lock()
        var best = -1
        for (i, b) in free.enumerated() where b.bytes >= bytes && (best < 0 || b.bytes < free[best].bytes) { best = i }
        let found = best >= 0 ? free.remove(at: best) : nil
        lock.unlock()
        // Somewhat more than asked, so that a table that grows a little still fits next time.
        return found ?? .allocate(bytes + bytes / 8)
    }

    /// Takes `b` back; the smallest blocks go when more than `keep` are held.
    func give(_ b: Block) {
        lock.lock()
        free.append(b)
        var drop: [Block] = []
        if free.count > keep {
            free.sort { $0.bytes > $1.bytes }
            drop = Array(free[keep...])
            free.removeLast(free.count - keep)
        }
        lock.unlock()
        for d in drop { d.base.deallocate() }
    }

    /// Bytes held for reuse.
    public var heldBytes: Int {
        lock.lock()
        defer { lock.unlock() }
        return free.reduce(0) { $0 + $1.bytes }
    }
}

extension Optional where Wrapped == BufferPool {
    func take(bytes: Int) -> BufferPool.Block { self?.take(bytes: bytes) ?? .allocate(bytes) }

    func give(_ b: BufferPool.Block) {
        if let p = self { p.give(b) } else { b.base.deallocate() }
    }
}
