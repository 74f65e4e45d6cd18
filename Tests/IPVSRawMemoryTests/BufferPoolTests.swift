import Testing
@testable import IPVSRawMemory

@Suite struct BufferPoolTests {
    /// A block given back is taken again; one left idle past the limit goes back to the
    /// kernel, and one given back recently stays.
    @Test func idleBlocksAreReleasedAndRecentOnesKept() {
        let pool = BufferPool()
        let big = BufferPool.Block.allocate(4 << 20)      // its own mapping
        let small = BufferPool.Block.allocate(64 << 10)   // from malloc
        pool.give(big, at: 100)
        pool.give(small, at: 108)
        #expect(pool.heldBytes == big.bytes + small.bytes)

        // At 109: the big block has waited 9 s, the small one 1 s.
        #expect(pool.releaseIdle(olderThan: 5, now: 109) == big.bytes)
        #expect(pool.heldBytes == small.bytes)
        // Nothing more is idle long enough yet.
        #expect(pool.releaseIdle(olderThan: 5, now: 112) == 0)
        // The one kept is the one taken next.
        let again = pool.take(bytes: 1 << 10)
        #expect(again.base == small.base)
        #expect(pool.heldBytes == 0)
        pool.give(again, at: 200)
        #expect(pool.releaseIdle(olderThan: 5, now: 206) == small.bytes)
        #expect(pool.heldBytes == 0)
    }

    /// Taking a block and giving it back restarts its wait: a block reused every poll is
    /// never released, however long the poller runs.
    @Test func aBlockReusedEveryPollStays() {
        let pool = BufferPool()
        var now = 0.0
        pool.give(BufferPool.Block.allocate(2 << 20), at: now)
        let held = pool.heldBytes
        for _ in 0..<20 {
            now += 1
            let b = pool.take(bytes: 1 << 20)
            pool.give(b, at: now)
            #expect(pool.releaseIdle(olderThan: 5, now: now + 0.5) == 0)
        }
        #expect(pool.heldBytes == held)
        #expect(pool.releaseIdle(olderThan: 5, now: now + 6) == held)
    }
}
