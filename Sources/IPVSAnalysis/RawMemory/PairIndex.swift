import IPVSModel

/// (tag, address) → a non-negative Int32: open addressing with linear probing in raw
/// memory. Templates by (destination, client as the template holds it), persistence groups
/// by (service, masked address): hundreds of thousands of lookups a pass, so each must cost
/// nanoseconds, not a SipHash and a Dictionary's bookkeeping.
///
/// Invariants (checked in debug builds): the table has `1 << bits` slots and at most half
/// are taken (`count * 2 <= 1 << bits`), so a probe always meets an empty slot; an empty
/// slot's value is -1 and a taken one's is not negative.
final class PairIndex {
    struct Slot {
        var high: UInt64
        var low: UInt64
        var tag: Int32
        /// -1: empty.
        var value: Int32
    }
    private var block: BufferPool.Block
    private var slots: UnsafeMutablePointer<Slot>
    private var bits: Int
    private(set) var count = 0

    init(expected: Int) {
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

    @inline(__always)
    private static func home(_ tag: Int32, _ a: IPAddress, _ bits: Int) -> Int {
        var x = a.low &* Mixer.golden ^ a.high &* Mixer.prime2 ^ UInt64(UInt32(bitPattern: tag)) &* Mixer.prime5
        x ^= x >> 32
        return Int(truncatingIfNeeded: (x &* Mixer.finalizer1) >> UInt64(64 - bits))
    }

    /// The slot holding (tag, a), or the empty slot where it would go.
    @inline(__always)
    private func find(_ tag: Int32, _ a: IPAddress) -> Int {
        assert(count * 2 <= 1 << bits, "an index more than half full: a probe may not end")
        let mask = (1 << bits) - 1
        var i = Self.home(tag, a, bits)
        while true {
            let s = slots[i]
            if s.value < 0 || (s.low == a.low && s.high == a.high && s.tag == tag) { return i }
            i = (i + 1) & mask
        }
    }

    /// The value stored for (tag, a), or -1.
    @inline(__always)
    func value(_ tag: Int32, _ a: IPAddress) -> Int32 { slots[find(tag, a)].value }

    /// The value of (tag, a); when there is none, `next` after storing it.
    @inline(__always)
    func value(_ tag: Int32, _ a: IPAddress, orInsert next: Int32) -> Int32 {
        let i = find(tag, a)
        if slots[i].value >= 0 { return slots[i].value }
        store(i, tag, a, next)
        return next
    }

    /// Stores `v` (≥ 0) for (tag, a), replacing what was there.
    @inline(__always)
    func set(_ tag: Int32, _ a: IPAddress, _ v: Int32) {
        assert(v >= 0, "a negative value would read as an empty slot")
        let i = find(tag, a)
        if slots[i].value >= 0 { slots[i].value = v } else { store(i, tag, a, v) }
    }

    @inline(__always)
    private func store(_ i: Int, _ tag: Int32, _ a: IPAddress, _ v: Int32) {
        slots[i] = Slot(high: a.high, low: a.low, tag: tag, value: v)
        count += 1
        if count * 2 > 1 << bits { grow() }
    }

    private func grow() {
        let old = slots, oldBlock = block, n = 1 << bits
        bits += 1
        (block, slots) = Self.allocate(1 << bits)
        let mask = (1 << bits) - 1
        for j in 0..<n where old[j].value >= 0 {
            let s = old[j]
            var i = Self.home(s.tag, IPAddress(ipv6High: s.high, low: s.low), bits)
            while slots[i].value >= 0 { i = (i + 1) & mask }
            slots[i] = s
        }
        oldBlock.release()
    }
}

