/// A growable run of plain values in raw memory, for the client pass's inner loop, where
/// an Array's uniqueness and bounds checks showed in the profile. Its memory comes from a
/// pool (large runs then live in huge pages, and come back next poll); `free()` gives it
/// back, `handOver()` gives it to the store that keeps the values. Only for plain values
/// (no references): they are never deinitialized.
///
/// Invariants (checked in debug builds): `0 <= count <= capacity`; `base[0..<count]` are
/// initialized, the rest is not; `base` lies in `block`; after `free()` or a hand-over the
/// vector is not used again.
@usableFromInline
package struct RawVector<T> {
    @usableFromInline var block: BufferPool.Block
    @usableFromInline var _base: UnsafeMutablePointer<T>
    @usableFromInline var _count = 0
    @usableFromInline var capacity: Int
    @usableFromInline let pool: BufferPool?

    @inlinable package var base: UnsafeMutablePointer<T> { _base }
    @inlinable package var count: Int { _count }

    /// `capacity`: as many as there can be, when that is known (no growing, no copy).
    @inlinable
    package init(capacity: Int, pool: BufferPool? = nil) {
        self.pool = pool
        block = pool.take(bytes: max(16, capacity) * MemoryLayout<T>.stride)
        self.capacity = block.bytes / MemoryLayout<T>.stride
        _base = block.typed(T.self)
    }

    @inlinable @inline(__always)
    package mutating func append(_ x: T) {
        assert(_count <= capacity && capacity * MemoryLayout<T>.stride <= block.bytes, "a vector past its block")
        if _count == capacity { grow() }
        (_base + _count).initialize(to: x)
        _count += 1
    }

    @inlinable @inline(never)
    mutating func grow() {
        let bigger = pool.take(bytes: capacity * 2 * MemoryLayout<T>.stride)
        let moved = bigger.typed(T.self)
        moved.moveInitialize(from: _base, count: _count)
        pool.give(block)
        block = bigger
        _base = moved
        capacity = bigger.bytes / MemoryLayout<T>.stride
    }

    @inlinable @inline(__always)
    package subscript(i: Int) -> T {
        get {
            assert(i >= 0 && i < _count, "vector index \(i) out of 0..<\(_count)")
            return _base[i]
        }
        nonmutating set {
            assert(i >= 0 && i < _count, "vector index \(i) out of 0..<\(_count)")
            _base[i] = newValue
        }
    }

    @inlinable
    package var buffer: UnsafeBufferPointer<T> { UnsafeBufferPointer(start: _base, count: _count) }

    /// Gives the memory back; the vector is not used after.
    @inlinable
    package func free() { pool.give(block) }

    /// The values, for a `PooledList` to keep; the vector is not used after.
    @inlinable
    package func handOver() -> PooledList<T> { PooledList(store: handOverValues()) }

    /// The values, for a store to keep; the vector is not used after.
    @inlinable
    package func handOverValues() -> PooledValues<T> { PooledValues(block: block, count: _count, pool: pool) }
}

/// Plain values in a pooled block, immutable once built; the block goes back to its pool
/// with the last reference.
///
/// Invariants: `count` values of `T` fit `block` and are initialized; no one writes them
/// after the hand-over except the builder that made them (`TemplateTable.markPastTimeout`,
/// before the aggregates are shared). Checked in debug builds at creation.
@usableFromInline
package final class PooledValues<T>: @unchecked Sendable {
    @usableFromInline package let block: BufferPool.Block
    @usableFromInline package let count: Int
    @usableFromInline package let pool: BufferPool?

    @inlinable
    package init(block: BufferPool.Block, count: Int, pool: BufferPool?) {
        assert(count >= 0 && count * MemoryLayout<T>.stride <= block.bytes, "\(count) values past their block")
        self.block = block
        self.count = count
        self.pool = pool
    }

    deinit { pool.give(block) }

    @inlinable
    package var base: UnsafeMutablePointer<T> { block.typed(T.self) }
}

/// A read-only array of plain values kept in pooled memory: persistence groups and their
/// loads, 10^5 of them on a busy director, which a Swift array would have copied once more
/// into memory fresh from the kernel.
public struct PooledList<Element>: RandomAccessCollection {
    @usableFromInline let store: PooledValues<Element>?

    @inlinable
    package init(store: PooledValues<Element>? = nil) { self.store = store }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { store?.count ?? 0 }

    @inlinable
    public subscript(i: Int) -> Element {
        precondition(i >= 0 && i < endIndex, "index out of range")
        return store!.base[i]
    }
}

extension PooledList: Sendable where Element: Sendable {}

