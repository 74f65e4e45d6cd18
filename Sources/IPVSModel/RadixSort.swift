/// Least-significant-digit radix sort of 64-bit keys by their high bits, 11 bits a pass,
/// with an optional 32-bit payload moved alongside.
///
/// The connection table's passes sort 10^6 keys (entries by client, identities by digest):
/// sequential reads and 2,048 write streams cost a few milliseconds, where a comparison sort
/// or a hash lookup per entry waits on memory each time.
public enum RadixSort {
    @usableFromInline static let digitBits = 11
    @usableFromInline static let radix = 1 << digitBits

    /// The digit counts of every pass, gathered while the keys are being written (saves
    /// the sort's own read of them). Owns its memory: `deallocate()` when done.
    public struct Histogram {
        public let lowestBit: Int
        @usableFromInline let passes: Int
        @usableFromInline let counts: UnsafeMutablePointer<UInt32>

        public init(lowestBit: Int) {
            self.lowestBit = max(0, min(63, lowestBit))
            passes = (64 - self.lowestBit + RadixSort.digitBits - 1) / RadixSort.digitBits
            counts = .allocate(capacity: passes * RadixSort.radix)
            counts.initialize(repeating: 0, count: passes * RadixSort.radix)
        }

        @inlinable @inline(__always)
        public func add(_ k: UInt64) {
            var digits = k &>> UInt64(lowestBit)
            if passes == 2 {
                // The client sort's case (22 bits), unrolled: the loop's own count showed.
                counts[Int(truncatingIfNeeded: digits) & (RadixSort.radix - 1)] &+= 1
                counts[RadixSort.radix + Int(truncatingIfNeeded: digits &>> UInt64(RadixSort.digitBits)) & (RadixSort.radix - 1)] &+= 1
                return
            }
            var c = counts
            for _ in 0..<passes {
                c[Int(truncatingIfNeeded: digits) & (RadixSort.radix - 1)] &+= 1
                digits &>>= UInt64(RadixSort.digitBits)
                c += RadixSort.radix
            }
        }

        public func deallocate() { counts.deallocate() }
    }

    /// Sorts `count` keys by bits `lowestBit...63` (stable), using `scratch` (and
    /// `payloadScratch` when there is a payload) of the same size. Returns which buffers
    /// hold the result: the originals, or the scratch ones. `histogram`: the keys' digit
    /// counts from the same `lowestBit`, when the caller gathered them.
    public static func sort(
        _ keys: UnsafeMutablePointer<UInt64>, scratch: UnsafeMutablePointer<UInt64>,
        payload: UnsafeMutablePointer<Int32>? = nil, payloadScratch: UnsafeMutablePointer<Int32>? = nil,
        count n: Int, lowestBit: Int, histogram: Histogram? = nil
    ) -> (keys: UnsafeMutablePointer<UInt64>, payload: UnsafeMutablePointer<Int32>?) {
        let radix = Self.radix, digit = UInt64(radix - 1)
        var shifts: [UInt64] = []
        var b = max(0, min(63, lowestBit))
        while b < 64 {
            shifts.append(UInt64(b))
            b += digitBits
        }
        let passes = shifts.count
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: passes * radix)
        defer { counts.deallocate() }
        if let h = histogram {
            precondition(h.lowestBit == max(0, min(63, lowestBit)), "a histogram of other digits")
            for i in 0..<(passes * radix) { counts[i] = Int(h.counts[i]) }
        } else {
            counts.initialize(repeating: 0, count: passes * radix)
            // Every pass's histogram in one read of the keys.
            for i in 0..<n {
                let k = keys[i]
                for p in 0..<passes { counts[p * radix + Int(k >> shifts[p] & digit)] += 1 }
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
            let shift = shifts[p]
            if let ps = psrc, let pd = pdst {
                for i in 0..<n {
                    let k = src[i]
                    let j = Int(k >> shift & digit)
                    dst[c[j]] = k
                    pd[c[j]] = ps[i]
                    c[j] += 1
                }
                swap(&psrc, &pdst)
            } else {
                for i in 0..<n {
                    let k = src[i]
                    let j = Int(k >> shift & digit)
                    dst[c[j]] = k
                    c[j] += 1
                }
            }
            swap(&src, &dst)
        }
        return (src, psrc)
    }

    /// Sorts uniformly spread keys (digests) with their payload, ascending. Sorting their top
    /// 22 bits leaves about one key per prefix, and an insertion pass finishes the order in
    /// about linear time.
    public static func sortDigests(
        _ keys: UnsafeMutablePointer<UInt64>, scratch: UnsafeMutablePointer<UInt64>,
        payload: UnsafeMutablePointer<Int32>, payloadScratch: UnsafeMutablePointer<Int32>, count n: Int
    ) -> (keys: UnsafeMutablePointer<UInt64>, payload: UnsafeMutablePointer<Int32>) {
        let (k, p) = sort(keys, scratch: scratch, payload: payload, payloadScratch: payloadScratch, count: n, lowestBit: 42)
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
