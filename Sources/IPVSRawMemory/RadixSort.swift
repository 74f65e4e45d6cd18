/// Least-significant-digit radix sort of 64-bit keys by their high bits, `digitBits` a
/// pass (11 unless asked), with an optional 32-bit payload moved alongside.
///
/// The connection table's keys are sorted by it (identities by digest, templates by client
/// and by weight; the analysis' sort of entries by client has passes of its own, a bucket at
/// a time): sequential reads and a write stream per digit value cost a few milliseconds at
/// 10^6 keys, where a comparison sort or a hash lookup per key waits on memory each time.
/// Fewer bits a pass can pay for an extra pass: 256 write streams stay in the L1 cache where
/// 2,048 do not (three 8-bit passes cost less than two 11-bit ones).
@usableFromInline
package enum RadixSort {
    package static let digitBits = 11

    /// The digit counts of every pass, gathered while the keys are being written (saves
    /// the sort's own read of them). Owns its memory: `deallocate()` when done.
    @usableFromInline
    package struct Histogram {
        package let lowestBit: Int
        package let digitBits: Int
        @usableFromInline let passes: Int
        @usableFromInline let counts: UnsafeMutablePointer<UInt32>
        /// `lowestBit` and `digitBits` as `add` shifts by them, and a digit's mask: made once
        /// here, not per key (converted per key, with the checks of a shift by a variable,
        /// they were a dozen instructions of the first pass's every entry).
        @usableFromInline let lowestShift: UInt64
        @usableFromInline let digitShift: UInt64
        @usableFromInline let mask: Int

        package init(lowestBit: Int, digitBits: Int = RadixSort.digitBits) {
            precondition(digitBits > 0 && digitBits < 32, "a digit of \(digitBits) bits")
            self.lowestBit = max(0, min(63, lowestBit))
            self.digitBits = digitBits
            passes = (64 - self.lowestBit + digitBits - 1) / digitBits
            counts = .allocate(capacity: passes << digitBits)
            counts.initialize(repeating: 0, count: passes << digitBits)
            lowestShift = UInt64(self.lowestBit)
            digitShift = UInt64(digitBits)
            mask = (1 << digitBits) - 1
        }

        @inlinable @inline(__always)
        package func add(_ k: UInt64) {
            var digits = k &>> lowestShift
            if passes == 1 {
                // One digit: without the loop.
                counts[Int(truncatingIfNeeded: digits) & mask] &+= 1
                return
            }
            var c = counts
            for _ in 0..<passes {
                c[Int(truncatingIfNeeded: digits) & mask] &+= 1
                digits &>>= digitShift
                c += mask &+ 1
            }
        }

        /// The counts of pass `pass` (`1 << digitBits` of them), for a caller that counts a
        /// single digit itself in a hot loop: an increment at an index it computes with a
        /// constant shift, where `add` loads the shift, the mask and the pass count.
        package func counts(ofPass pass: Int) -> UnsafeMutablePointer<UInt32> {
            precondition(pass >= 0 && pass < passes, "no such pass")
            return counts + (pass << digitBits)
        }

        /// Keys counted with `digit` in pass `pass` (0: the lowest digit).
        package func count(pass: Int, digit: Int) -> Int {
            precondition(pass >= 0 && pass < passes && digit >= 0 && digit < 1 << digitBits, "no such digit")
            return Int(counts[pass << digitBits | digit])
        }

        package func deallocate() { counts.deallocate() }
    }

    /// Sorts `count` keys by bits `lowestBit...63` (stable), using `scratch` (and
    /// `payloadScratch` when there is a payload) of the same size. Returns which buffers
    /// hold the result: the originals, or the scratch ones. `histogram`: the keys' digit
    /// counts from the same `lowestBit` and `digitBits`, when the caller gathered them.
    package static func sort(
        _ keys: UnsafeMutablePointer<UInt64>, scratch: UnsafeMutablePointer<UInt64>,
        payload: UnsafeMutablePointer<Int32>? = nil, payloadScratch: UnsafeMutablePointer<Int32>? = nil,
        count n: Int, lowestBit: Int, histogram: Histogram? = nil, digitBits: Int = RadixSort.digitBits
    ) -> (keys: UnsafeMutablePointer<UInt64>, payload: UnsafeMutablePointer<Int32>?) {
        let radix = 1 << digitBits, digit = UInt64(radix - 1)
        var shifts: [UInt64] = []
        var b = max(0, min(63, lowestBit))
        while b < 64 {
            shifts.append(UInt64(b))
            b += digitBits
        }
        precondition(histogram == nil || histogram!.digitBits == digitBits, "a histogram of other digits")
        if histogram == nil {
            // Only the digits in which some keys differ: the templates' keys (weight and time
            // left, client and destination) have whole digits that are the same in all.
            var any: UInt64 = 0, all = UInt64.max
            for i in 0..<n {
                any |= keys[i]
                all &= keys[i]
            }
            shifts.removeAll { (any ^ all) >> $0 & digit == 0 }
        }
        let passes = shifts.count
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: max(1, passes * radix))
        defer { counts.deallocate() }
        if let h = histogram {
            precondition(h.lowestBit == max(0, min(63, lowestBit)), "a histogram of other digits")
            for i in 0..<(passes * radix) { counts[i] = Int(h.counts[i]) }
        } else {
            counts.initialize(repeating: 0, count: passes * radix)
            // Every pass's histogram in one read of the keys.
            shifts.withUnsafeBufferPointer { shifts in
                for i in 0..<n {
                    let k = keys[i]
                    for p in 0..<passes { counts[p &* radix &+ Int(truncatingIfNeeded: k &>> shifts[p] & digit)] &+= 1 }
                }
            }
        }
        var src = keys, dst = scratch
        var psrc = payload, pdst = payloadScratch
        for p in 0..<passes {
            let c = counts + p * radix
            var sum = 0, single = false
            for b in 0..<radix {
                let v = c[b]
                if v == n { single = true }
                c[b] = sum
                sum += v
            }
            // Every key has the same digit here: the order is already right for it.
            if single { continue }
            // Masking shifts (the shifts are below 64: `>>` by a variable checked that on
            // every key), and one load of the place for the store and the increment.
            let shift = shifts[p]
            if let ps = psrc, let pd = pdst {
                for i in 0..<n {
                    let k = src[i]
                    let j = Int(truncatingIfNeeded: k &>> shift & digit)
                    let at = c[j]
                    c[j] = at &+ 1
                    dst[at] = k
                    pd[at] = ps[i]
                }
                swap(&psrc, &pdst)
            } else {
                for i in 0..<n {
                    let k = src[i]
                    let j = Int(truncatingIfNeeded: k &>> shift & digit)
                    let at = c[j]
                    c[j] = at &+ 1
                    dst[at] = k
                }
            }
            swap(&src, &dst)
        }
        return (src, psrc)
    }

    /// Sorts uniformly spread keys (digests) with their payload, ascending. Sorting their top
    /// 24 bits (three 8-bit passes: the poller's new-entry detection at 10^6 entries took 15 ms
    /// with them, 21 with two 11-bit ones, here) leaves less than one key per prefix, and an
    /// insertion pass finishes the order in about linear time.
    package static func sortDigests(
        _ keys: UnsafeMutablePointer<UInt64>, scratch: UnsafeMutablePointer<UInt64>,
        payload: UnsafeMutablePointer<Int32>, payloadScratch: UnsafeMutablePointer<Int32>, count n: Int
    ) -> (keys: UnsafeMutablePointer<UInt64>, payload: UnsafeMutablePointer<Int32>) {
        let (k, p) = sort(keys, scratch: scratch, payload: payload, payloadScratch: payloadScratch, count: n, lowestBit: 40,
                          digitBits: 8)
        let v = p!
        if n > 1 {
            for i in 1..<n where k[i] < k[i - 1] {
                let key = k[i], value = v[i]
                var j = i
                while j > 0 && k[j - 1] > key {
                    k[j] = k[j - 1]
                    v[j] = v[j - 1]
                    j -= 1
                }
                k[j] = key
                v[j] = value
            }
        }
        return (k, v)
    }
}
