/// Working arrays of one analysis carved from one pooled block. Each alone is smaller than
/// what gets huge pages, and in a one-poll analysis every fresh 4 KiB page costs a fault and
/// a clearing; together they fill a few huge pages, or come back from the pool warm.
///
/// Invariants: `used <= block.bytes`; each `take` is 16-byte aligned and disjoint from the
/// others; nothing taken is used after `free(to:)`. `take` checks the room it gives.
@usableFromInline
package struct Arena {
    @usableFromInline let block: BufferPool.Block
    @usableFromInline var used = 0

    /// Room for `bytes`, as `Arena.bytes(_:_:)` counts them.
    package init(bytes: Int, pool: BufferPool?) { block = pool.take(bytes: max(16, bytes)) }

    /// What `take(n, T.self)` uses of an arena, alignment included.
    @inlinable
    package static func bytes<T>(_ n: Int, _: T.Type) -> Int { max(1, n) * MemoryLayout<T>.stride + 16 }

    /// `n` uninitialized values of `T`, valid until the arena is freed.
    @inlinable
    package mutating func take<T>(_ n: Int, _: T.Type) -> UnsafeMutablePointer<T> {
        let start = (used + 15) / 16 * 16
        let size = max(1, n) * MemoryLayout<T>.stride
        precondition(MemoryLayout<T>.alignment <= 16 && start + size <= block.bytes, "arena too small")
        used = start + size
        return (block.base + start).bindMemory(to: T.self, capacity: max(1, n))
    }

    /// Room for a radix sort of `n` keys with their 32-bit payload (`takeKeyedSort`).
    package static func keyedSortBytes(_ n: Int) -> Int { 2 * bytes(n, UInt64.self) + 2 * bytes(n, Int32.self) }

    /// Keys, their scratch, payload and its scratch, `n` of each, for `RadixSort.sort`.
    package mutating func takeKeyedSort(_ n: Int) -> (keys: UnsafeMutablePointer<UInt64>, keyScratch: UnsafeMutablePointer<UInt64>,
                                                      payload: UnsafeMutablePointer<Int32>, payloadScratch: UnsafeMutablePointer<Int32>) {
        (take(n, UInt64.self), take(n, UInt64.self), take(n, Int32.self), take(n, Int32.self))
    }

    package func free(to pool: BufferPool?) { pool.give(block) }
}
