/// A growable run of plain values in raw memory, for the client pass's inner loop, where
/// an Array's uniqueness and bounds checks showed in the profile. Its memory comes from a
/// pool (large runs then live in huge pages, and come back next poll); `free()` gives it
/// back, `handOver()` gives it to the store that keeps the values. Only for plain values
/// (no references): they are never deinitialized.
///
/// Invariants (checked in debug builds): `0 <= count <= capacity`; `base[0..<count]` are
/// initialized, the rest is not; `base` lies in `block`; after `free()` or a hand-over the
/// vector is not used again.
struct RawVector<T> {
    private var block: BufferPool.Block
    private(set) var base: UnsafeMutablePointer<T>
    private(set) var count = 0
    private var capacity: Int
    private let pool: BufferPool?

    /// `capacity`: as many as there can be, when that is known (no growing, no copy).
    init(capacity: Int, pool: BufferPool? = nil) {
        self.pool = pool
        block = pool.take(bytes: max(16, capacity) * MemoryLayout<T>.stride)
        self.capacity = block.bytes / MemoryLayout<T>.stride
        base = block.typed(T.self)
    }

    @inline(__always)
    mutating func append(_ x: T) {
        assert(count <= capacity && capacity * MemoryLayout<T>.stride <= block.bytes, "a vector past its block")
        if count == capacity { grow() }
        (base + count).initialize(to: x)
        count += 1
    }

    @inline(never)
    private mutating func grow() {
        let bigger = pool.take(bytes: capacity * 2 * MemoryLayout<T>.stride)
        let moved = bigger.typed(T.self)
        moved.moveInitialize(from: base, count: count)
        pool.give(block)
        block = bigger
        base = moved
        capacity = bigger.bytes / MemoryLayout<T>.stride
    }

    @inline(__always)
    subscript(i: Int) -> T {
        get {
            assert(i >= 0 && i < count, "vector index \(i) out of 0..<\(count)")
            return base[i]
        }
        nonmutating set {
            assert(i >= 0 && i < count, "vector index \(i) out of 0..<\(count)")
            base[i] = newValue
        }
    }

    var buffer: UnsafeBufferPointer<T> { UnsafeBufferPointer(start: base, count: count) }

    /// Gives the memory back; the vector is not used after.
    func free() { pool.give(block) }

    /// The values, for a `PooledList` to keep; the vector is not used after.
    func handOver() -> PooledList<T> { PooledList(store: handOverValues()) }

    /// The values, for a store to keep; the vector is not used after.
    func handOverValues() -> PooledValues<T> { PooledValues(block: block, count: count, pool: pool) }
}

/// Plain values in a pooled block, immutable once built; the block goes back to its pool
/// with the last reference.
///
/// Invariants: `count` values of `T` fit `block` and are initialized; no one writes them
/// after the hand-over except the builder that made them (`TemplateTable.markPastTimeout`,
/// before the aggregates are shared). Checked in debug builds at creation.
final class PooledValues<T>: @unchecked Sendable {
    let block: BufferPool.Block
    let count: Int
    let pool: BufferPool?

    init(block: BufferPool.Block, count: Int, pool: BufferPool?) {
        assert(count >= 0 && count * MemoryLayout<T>.stride <= block.bytes, "\(count) values past their block")
        self.block = block
        self.count = count
        self.pool = pool
    }

    deinit { pool.give(block) }

    var base: UnsafeMutablePointer<T> { block.typed(T.self) }
}

/// A read-only array of plain values kept in pooled memory: persistence groups and their
/// loads, 10^5 of them on a busy director, which a Swift array would have copied once more
/// into memory fresh from the kernel.
public struct PooledList<Element>: RandomAccessCollection {
    let store: PooledValues<Element>?

    init(store: PooledValues<Element>? = nil) { self.store = store }

    public var startIndex: Int { 0 }
    public var endIndex: Int { store?.count ?? 0 }

    public subscript(i: Int) -> Element {
        precondition(i >= 0 && i < endIndex, "index out of range")
        return store!.base[i]
    }
}

extension PooledList: Sendable where Element: Sendable {}

