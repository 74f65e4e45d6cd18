/// (tag, 128-bit key) → a non-negative Int32: open addressing with linear probing in raw
/// memory. The analysis keys templates by (destination, client as the template holds it) and
/// persistence groups by (service, masked address), an address as its two 64-bit halves:
/// hundreds of thousands of lookups a pass, so each must cost nanoseconds, not a SipHash and a
/// Dictionary's bookkeeping.
///
/// Invariants (checked in debug builds): the table has `1 << bits` slots and at most half
/// are taken (`count * 2 <= 1 << bits`), so a probe always meets an empty slot; an empty
/// slot's value is -1 and a taken one's is not negative.
@usableFromInline
package final class PairIndex {
    @usableFromInline
    struct Slot {
        @usableFromInline var high: UInt64
        @usableFromInline var low: UInt64
        @usableFromInline var tag: Int32
        /// -1: empty.
        @usableFromInline var value: Int32

        @inlinable
        init(high: UInt64, low: UInt64, tag: Int32, value: Int32) {
            self.high = high
            self.low = low
            self.tag = tag
            self.value = value
        }
    }
    @usableFromInline var block: BufferPool.Block
    @usableFromInline var slots: UnsafeMutablePointer<Slot>
    @usableFromInline var bits: Int
    @usableFromInline var _count = 0
    package var count: Int { _count }

    package init(expected: Int) {
        var b = 6
        while 1 << b < expected * 2 { b += 1 }
        bits = b
        (block, slots) = Self.allocate(1 << b)
    }

    deinit { block.release() }

    /// Large indexes (megabytes at 10^5 templates or groups) in huge pages.
    private static func allocate(_ n: Int) -> (BufferPool.Block, UnsafeMutablePointer<Slot>) {
        let block = BufferPool.Block.allocate(n * MemoryLayout<Slot>.stride)
        let p = block.typed(Slot.self)
        p.initialize(repeating: Slot(high: 0, low: 0, tag: 0, value: -1), count: n)
        return (block, p)
    }

    @inlinable @inline(__always)
    static func home(_ tag: Int32, _ high: UInt64, _ low: UInt64, _ bits: Int) -> Int {
        var x = low &* Mixer.golden ^ high &* Mixer.prime2 ^ UInt64(UInt32(bitPattern: tag)) &* Mixer.prime5
        x ^= x >> 32
        return Int(truncatingIfNeeded: (x &* Mixer.finalizer1) >> UInt64(64 - bits))
    }

    /// The slot holding (tag, high, low), or the empty slot where it would go.
    @inlinable @inline(__always)
    func find(_ tag: Int32, _ high: UInt64, _ low: UInt64) -> Int {
        assert(_count * 2 <= 1 << bits, "an index more than half full: a probe may not end")
        let mask = (1 << bits) - 1
        var i = Self.home(tag, high, low, bits)
        while true {
            let s = slots[i]
            if s.value < 0 || (s.low == low && s.high == high && s.tag == tag) { return i }
            i = (i + 1) & mask
        }
    }

    /// The value stored for (tag, high, low), or -1.
    @inlinable @inline(__always)
    package func value(_ tag: Int32, high: UInt64, low: UInt64) -> Int32 { slots[find(tag, high, low)].value }

    /// The value of (tag, high, low); when there is none, `next` after storing it.
    @inlinable @inline(__always)
    package func value(_ tag: Int32, high: UInt64, low: UInt64, orInsert next: Int32) -> Int32 {
        let i = find(tag, high, low)
        if slots[i].value >= 0 { return slots[i].value }
        store(i, tag, high, low, next)
        return next
    }

    /// Stores `v` (≥ 0) for (tag, high, low), replacing what was there.
    @inlinable @inline(__always)
    package func set(_ tag: Int32, high: UInt64, low: UInt64, _ v: Int32) {
        assert(v >= 0, "a negative value would read as an empty slot")
        let i = find(tag, high, low)
        if slots[i].value >= 0 { slots[i].value = v } else { store(i, tag, high, low, v) }
    }

    @inlinable @inline(__always)
    func store(_ i: Int, _ tag: Int32, _ high: UInt64, _ low: UInt64, _ v: Int32) {
        slots[i] = Slot(high: high, low: low, tag: tag, value: v)
        _count += 1
        if _count * 2 > 1 << bits { grow() }
    }

    @usableFromInline
    func grow() {
        let old = slots, oldBlock = block, n = 1 << bits
        bits += 1
        (block, slots) = Self.allocate(1 << bits)
        let mask = (1 << bits) - 1
        for j in 0..<n where old[j].value >= 0 {
            let s = old[j]
            var i = Self.home(s.tag, s.high, s.low, bits)
            while slots[i].value >= 0 { i = (i + 1) & mask }
            slots[i] = s
        }
        oldBlock.release()
    }
}
