import Testing
@testable import IPVSRawMemory

@Suite struct RadixSortTests {
    /// Keys whose high bits repeat (so stability shows) and spread: a few hot prefixes, many
    /// rare ones, and low bits that must not take part in the order.
    static func keys(_ n: Int, seed: UInt64) -> [UInt64] {
        var x = seed
        func next() -> UInt64 {
            x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return x ^ x >> 29
        }
        return (0..<n).map { i in
            let high = next() % 4 == 0 ? next() % 8 : next()
            return high << 40 | UInt64(i) & 0xFF_FFFF_FFFF
        }
    }

    @Test(arguments: [(8, 40), (11, 42), (11, 0), (8, 37)])
    func sortsStablyByTheHighBits(digitBits: Int, lowestBit: Int) {
        let input = Self.keys(20_000, seed: UInt64(digitBits * 100 + lowestBit))
        // What the sort must give: the keys in order of their bits from `lowestBit` up, and
        // equal ones in input order (Swift's sort is stable).
        let expected = input.enumerated().sorted { a, b in
            let x = a.element >> UInt64(lowestBit), y = b.element >> UInt64(lowestBit)
            return x != y ? x < y : a.offset < b.offset
        }
        for withHistogram in [false, true] {
            let n = input.count
            let keys = UnsafeMutablePointer<UInt64>.allocate(capacity: n), scratch = UnsafeMutablePointer<UInt64>.allocate(capacity: n)
            let payload = UnsafeMutablePointer<Int32>.allocate(capacity: n), payloadScratch = UnsafeMutablePointer<Int32>.allocate(capacity: n)
            defer {
                keys.deallocate(); scratch.deallocate(); payload.deallocate(); payloadScratch.deallocate()
            }
            let histogram = withHistogram ? RadixSort.Histogram(lowestBit: lowestBit, digitBits: digitBits) : nil
            defer { histogram?.deallocate() }
            for (i, k) in input.enumerated() {
                keys[i] = k
                payload[i] = Int32(i)
                histogram?.add(k)
            }
            let (k, p) = RadixSort.sort(keys, scratch: scratch, payload: payload, payloadScratch: payloadScratch, count: n,
                                        lowestBit: lowestBit, histogram: histogram, digitBits: digitBits)
            var misplaced = 0
            for (j, e) in expected.enumerated() where k[j] != e.element || p![j] != Int32(e.offset) { misplaced += 1 }
            #expect(misplaced == 0, "digitBits \(digitBits) lowestBit \(lowestBit) histogram \(withHistogram)")
        }
    }
}
