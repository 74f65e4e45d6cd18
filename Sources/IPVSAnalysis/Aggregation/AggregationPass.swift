import CPrefetch
import FoundationEssentials
import IPVSModel
import IPVSRawMemory

/// An entry as the by-client sort sees it, in one word: the client in the high 33 bits (an
/// IPv4 address, or 1 << 32 | the ordinal of an IPv6 address), its destination in the next
/// 21, whether it is a persistence group's template (its client is then the group's masked
/// address), whether it is a template, and its state (8 bits). Sorting words by their
/// high bits groups each client's entries without a client × real-server dictionary.
enum EntryWord {
    static let clientShift: UInt64 = 31
    /// Words whose clients share their top 24 bits form a block: the radix passes order
    /// blocks, and `ClientOrder.finishBlocks` puts each block that holds more than one
    /// client in client order (most hold one).
    static let blockShift: UInt64 = clientShift + 9
    /// The client bits below the block's: what `ClientOrder.finish` sorts on.
    static let inBlockMask = (1 << Int(blockShift - clientShift)) - 1
    static let destinationShift: UInt64 = 10
    static let destinationLimit = 1 << 21
    static let groupTemplate: UInt64 = 1 << 9
    static let template: UInt64 = 1 << 8

    @inline(__always)
    static func make(client: UInt64, destination: Int, template: Bool, groupTemplate: Bool, state: ConnectionState) -> UInt64 {
        assert(client >> 33 == 0 && destination >= 0 && destination < destinationLimit, "an entry word's fields overflow")
        return client << clientShift | UInt64(truncatingIfNeeded: destination) << destinationShift
            | (template ? Self.template : 0) | (groupTemplate ? Self.groupTemplate : 0) | UInt64(state.rawValue)
    }

    @inline(__always)
    static func destination(_ w: UInt64) -> Int {
        Int(truncatingIfNeeded: w >> destinationShift) & (destinationLimit - 1)
    }

    @inline(__always)
    static func state(_ w: UInt64) -> ConnectionState { ConnectionState(rawValue: UInt8(truncatingIfNeeded: w)) }

    /// The address a word's client bits stand for: IPv4 itself, IPv6 by its ordinal.
    @inline(__always)
    static func address(clientBits: UInt64, v6Clients: PooledList<IPAddress>) -> IPAddress {
        clientBits >> 32 == 0 ? IPAddress(ipv4: UInt32(truncatingIfNeeded: clientBits)) : v6Clients[Int(clientBits & 0xFFFF_FFFF)]
    }
}

/// The words in client order, and each client's words by destination, a bucket at a time:
/// one radix pass over all the words puts them in 256 buckets by their top 8 bits
/// (`bucketShift`); each bucket is then sorted while it is in the L2 cache (on the
/// destination and the client's next 16 bits, in radix passes, then the blocks that hold
/// more than one client) and handed to the client pass while it is still there.
///
/// A bucket of thousands of words takes 11-bit digits (two passes where there are up to 64
/// destinations): one pass fewer than 8-bit digits. A smaller bucket keeps 8-bit digits:
/// there 2,048 counters a digit, zeroed and summed, cost more than the pass they save.
/// Sorting all the client bits in radix passes, with no blocks left to put in order, costs
/// as much as two passes and the blocks.
///
/// Against radix passes over all the words (each reading and writing all of them), the
/// first pass counts one digit per entry instead of three, and each bucket's passes run in
/// the cache. (The measurements behind these choices: `Benchmarks/ANALYSIS.md`.)
///
/// The destination order makes each of a client's loads a run of words, which the client
/// pass counts in registers; finding a word's load among its client's (a slot per
/// destination, written and read back word after word) had cost more than a pass.
///
/// Clients are sparse in the address space, so most blocks (words whose clients share
/// their top 24 bits) hold a single client and need no more than the radix passes.
enum ClientOrder {
    /// The bucket's digit: the word's top 8 bits. (Buckets of the top 10 bits, in the L1
    /// cache, cost more: their per-bucket counts and the first pass's 1,024 write streams.)
    static let bucketShift: UInt64 = 56
    static let bucketBits = 64 - Int(bucketShift)

    /// A radix digit of a bucket's sort. The bucket sorts its words on a key made of the
    /// client bits from `EntryWord.blockShift` up to the bucket's, above as many bits of the
    /// destination as `destinationCount` needs; a digit is a run of that key's bits, which
    /// may take destination bits and client bits at once (two shifts and masks: the key's
    /// two parts are apart in the word, the destination's unused bits between them).
    struct Digit {
        let destinationShift: UInt64, destinationMask: UInt64
        let clientShift: UInt64, clientMask: UInt64
        let bits: Int

        /// The digit's value in `w` (`destinationMask` 0: its client part alone). Masking
        /// shifts: the shifts are below 64, and `>>` by a variable checked that every time.
        @inline(__always)
        func of(_ w: UInt64) -> Int {
            Int(truncatingIfNeeded: (w &>> destinationShift) & destinationMask | (w &>> clientShift) & clientMask)
        }

        /// The value of a digit of client bits alone.
        @inline(__always)
        func ofClient(_ w: UInt64) -> Int { Int(truncatingIfNeeded: (w &>> clientShift) & clientMask) }
    }

    /// A bucket's radix digits, least significant first: the key's bits (destination, then
    /// client bits from `blockShift` up to the bucket's) in as few digits of at most `widest`
    /// bits as cover them, of even widths.
    static func bucketDigits(destinationCount: Int, widest: Int) -> [Digit] {
        let db = Aggregates.bitWidth(destinationCount)
        let width = db + Int(bucketShift - EntryWord.blockShift)
        let passes = (width + widest - 1) / widest
        var digits: [Digit] = []
        var a = 0
        for p in 0..<passes {
            let b = a + (width - a + passes - p - 1) / (passes - p)
            let mask: UInt64 = (1 << UInt64(b - a)) - 1
            // Key bit k is the word's bit destinationShift + k below db, blockShift + k - db
            // from db up.
            let destinationMask: UInt64 = a < db ? (1 << UInt64(min(b, db) - a)) - 1 : 0
            digits.append(Digit(destinationShift: EntryWord.destinationShift + UInt64(min(a, db)), destinationMask: destinationMask,
                                clientShift: EntryWord.blockShift + UInt64(a) - UInt64(db), clientMask: mask & ~destinationMask,
                                bits: b - a))
            a = b
        }
        return digits
    }

    /// The digits of a bucket's sort: `wide` (11-bit digits: two passes where there are up to
    /// 64 destinations) for a bucket of `wideFrom` words or more, where it saves a pass;
    /// `narrow` (8-bit) below, where 2,048 counters a digit would cost more than a pass.
    struct Plan {
        let narrow: [Digit]
        let wide: [Digit]
        static let wideFrom = 4096
        static let wideBits = 11

        init(destinationCount: Int) {
            narrow = ClientOrder.bucketDigits(destinationCount: destinationCount, widest: 8)
            wide = ClientOrder.bucketDigits(destinationCount: destinationCount, widest: Self.wideBits)
        }

        func digits(count m: Int) -> [Digit] { m >= Self.wideFrom ? wide : narrow }
    }

    /// Sorts `count` words (stable by client bits, then destination), into `scratch`, which
    /// it returns; `words` is scratch space. `histogram`: the words' bucket counts
    /// (`bucketShift`, `bucketBits`), when the caller gathered them. `eachBucket` is given each
    /// bucket's range of the result as soon as it is sorted, in order.
    static func sort(_ words: UnsafeMutablePointer<UInt64>, scratch: UnsafeMutablePointer<UInt64>, count n: Int,
                     destinationCount: Int, histogram: RadixSort.Histogram? = nil,
                     eachBucket: (Range<Int>) -> Void = { _ in }) -> UnsafeMutablePointer<UInt64> {
        let buckets = 1 << bucketBits
        var start = [Int](repeating: 0, count: buckets + 1)
        if let h = histogram {
            precondition(h.lowestBit == Int(bucketShift) && h.digitBits == bucketBits, "a histogram of other digits")
            for b in 0..<buckets { start[b + 1] = h.count(pass: 0, digit: b) }
        } else {
            for i in 0..<n { start[Int(truncatingIfNeeded: words[i] >> bucketShift) + 1] += 1 }
        }
        for b in 0..<buckets { start[b + 1] += start[b] }
        precondition(start[buckets] == n, "bucket counts of other words")
        var next = start
        next.withUnsafeMutableBufferPointer { next in
            let next = next.baseAddress!
            for i in 0..<n {
                let w = words[i]
                let b = Int(truncatingIfNeeded: w &>> bucketShift)
                // One load of the place, not one for the store and another for `+= 1`.
                let at = next[b]
                next[b] = at &+ 1
                scratch[at] = w
                // The bucket's line after next, asked for now: 256 streams of stores are
                // more than the hardware prefetcher follows, and each new line's store
                // would wait on memory. A hint: past the buffer's end it does nothing.
                ipvstop_prefetch_for_write(scratch + (at &+ 16))
            }
        }
        let plan = Plan(destinationCount: destinationCount)
        let most = max(plan.narrow.count, plan.wide.count)
        let counts = UnsafeMutablePointer<UInt32>.allocate(capacity: most << Plan.wideBits)
        defer { counts.deallocate() }
        // Every bucket's spare is the start of `words`, free once the pass above has moved
        // them: the same stretch bucket after bucket, so it stays in the L2 cache (a
        // bucket's own stretch of `words` was last written by the first pass, long out of
        // the cache, and its scatter stores would wait on memory).
        for b in 0..<buckets where start[b + 1] > start[b] {
            let range = start[b]..<start[b + 1]
            sortBucket(scratch + range.lowerBound, spare: words, count: range.count,
                       digits: plan.digits(count: range.count), counts: counts)
            finishBlocks(scratch + range.lowerBound, count: range.count, scratch: words)
            eachBucket(range)
        }
        return scratch
    }

    /// A bucket's radix passes, between `p` and `spare`; the result in `p`. `counts`:
    /// `1 << Plan.wideBits` per digit.
    static func sortBucket(_ p: UnsafeMutablePointer<UInt64>, spare: UnsafeMutablePointer<UInt64>, count m: Int,
                           digits: [Digit], counts: UnsafeMutablePointer<UInt32>) {
        guard m > 1 else { return }
        if m <= 32 {
            // A few words (a sparse bucket) are not worth a count per digit.
            insertionSort(p, count: m, above: EntryWord.destinationShift)
            return
        }
        let passes = digits.count
        let stride = 1 << Plan.wideBits
        for d in 0..<passes { (counts + d * stride).initialize(repeating: 0, count: 1 << digits[d].bits) }
        // Unrolled where every digit after the first is client bits alone (the destination
        // fits the first digit): the digits' loop and its bounds checks showed.
        if (passes == 2 || passes == 3) && digits.dropFirst().allSatisfy({ $0.destinationMask == 0 }) {
            let d0 = digits[0], d1 = digits[1], d2 = digits[passes - 1]
            let c1 = counts + stride, c2 = counts + (passes - 1) * stride
            if passes == 2 {
                for i in 0..<m {
                    let w = p[i]
                    counts[d0.of(w)] &+= 1
                    c1[d1.ofClient(w)] &+= 1
                }
            } else {
                for i in 0..<m {
                    let w = p[i]
                    counts[d0.of(w)] &+= 1
                    c1[d1.ofClient(w)] &+= 1
                    c2[d2.ofClient(w)] &+= 1
                }
            }
        } else {
            for i in 0..<m {
                let w = p[i]
                for d in 0..<passes { counts[d * stride + digits[d].of(w)] &+= 1 }
            }
        }
        var src = p, dst = spare
        for d in 0..<passes {
            let c = counts + d * stride
            var sum: UInt32 = 0, single = false
            for v in 0..<(1 << digits[d].bits) {
                let k = c[v]
                if k == UInt32(truncatingIfNeeded: m) { single = true }
                c[v] = sum
                sum &+= k
            }
            // Every word has the same digit here: the order is already right for it.
            if single { continue }
            let digit = digits[d], from = src, to = dst
            @inline(__always) func scatter(_ value: (UInt64) -> Int) {
                for i in 0..<m {
                    let w = from[i]
                    // One load of the place, not one for the store and another for `+= 1`.
                    let v = value(w)
                    let at = c[v]
                    c[v] = at &+ 1
                    to[Int(truncatingIfNeeded: at)] = w
                }
            }
            // A digit of client bits alone takes one shift and mask, not two.
            if digit.destinationMask == 0 { scatter(digit.ofClient) } else { scatter(digit.of) }
            swap(&src, &dst)
        }
        if src != p { p.update(from: src, count: m) }
    }

    /// Sorts `m` words by their bits from `shift` up, stably, by insertion (for a few).
    static func insertionSort(_ p: UnsafeMutablePointer<UInt64>, count m: Int, above shift: UInt64) {
        for i in 1..<max(1, m) {
            let w = p[i], key = w >> shift
            var j = i
            while j > 0 && p[j - 1] >> shift > key {
                p[j] = p[j - 1]
                j -= 1
            }
            p[j] = w
        }
    }

    /// Puts every block that holds more than one client in client order, in one read of the
    /// words. The radix passes leave a block in destination order; it is also in (client,
    /// destination) order unless a word's key (client bits and destination) is below the
    /// one before it. Such a step is rare (most blocks hold one client), so the loop is a
    /// compare and a branch that is seldom taken; the block around a step is then sorted.
    /// (Tracking each block's start word by word, with selects, cost more than this loop and
    /// the mixed blocks' sorting together.)
    static func finishBlocks(_ w: UnsafeMutablePointer<UInt64>, count n: Int, scratch: UnsafeMutablePointer<UInt64>) {
        guard n > 1 else { return }
        var previous = w[0] >> EntryWord.destinationShift
        var k = 1
        while k < n {
            let key = w[k] >> EntryWord.destinationShift
            if key < previous {
                // Blocks ascend, so the step is inside one: from its first word to its last.
                let top = w[k] >> EntryWord.blockShift
                var start = k - 1
                while start > 0 && w[start - 1] >> EntryWord.blockShift == top { start -= 1 }
                var end = k + 1
                while end < n && w[end] >> EntryWord.blockShift == top { end += 1 }
                finish(w + start, count: end - start, scratch: scratch)
                previous = w[end - 1] >> EntryWord.destinationShift
                k = end
                continue
            }
            previous = key
            k += 1
        }
    }

    /// Puts a block's `m` words in client order, stably: insertion for a few words, else a
    /// counting sort on the client bits below the block's through `scratch` (at least `m`
    /// words).
    static func finish(_ p: UnsafeMutablePointer<UInt64>, count m: Int, scratch: UnsafeMutablePointer<UInt64>) {
        if m <= 64 {
            insertionSort(p, count: m, above: EntryWord.clientShift)
            return
        }
        @inline(__always) func digit(_ w: UInt64) -> Int { Int(truncatingIfNeeded: w >> EntryWord.clientShift) & EntryWord.inBlockMask }
        var low = EntryWord.inBlockMask, high = 0
        for i in 0..<m {
            low = min(low, digit(p[i]))
            high = max(high, digit(p[i]))
        }
        let buckets = high - low + 1
        let start = UnsafeMutablePointer<Int>.allocate(capacity: buckets + 1)
        defer { start.deallocate() }
        start.initialize(repeating: 0, count: buckets + 1)
        for i in 0..<m { start[digit(p[i]) - low + 1] += 1 }
        for b in 0..<buckets { start[b + 1] += start[b] }
        for i in 0..<m {
            let b = digit(p[i]) - low
            scratch[start[b]] = p[i]
            start[b] += 1
        }
        p.update(from: scratch, count: m)
    }
}

extension Aggregates {
    /// What is new since the previous read: new connections (not templates, not from sync)
    /// per destination (`destination` gives an entry's, by index), new entries from sync
    /// (when the table tells) and local ones.
    static func newEntries(_ changes: ConnectionChanges, _ entries: [ConnectionEntry], destinationCount: Int, knowsOrigin: Bool,
                           destination: (Int) -> Int) -> (perDestination: [Int], fromSync: Int?, local: Int) {
        var perDestination = [Int](repeating: 0, count: destinationCount)
        var sync = 0, local = 0
        for i in changes.newEntryIndices where i < entries.count {
            let e = entries[i]
            if e.isFromSync { sync += 1 } else { local += 1 }
            guard !e.isTemplate, !e.isFromSync else { continue }
            let d = destination(i)
            if d < perDestination.count { perDestination[d] += 1 }
        }
        return (perDestination, knowsOrigin ? sync : nil, knowsOrigin ? local : sync + local)
    }

    /// For each destination that is not an address service's (a fwmark service's, or
    /// none): the destinations of fwmark services with the same real-server address, in
    /// service order, with their family.
    static func fwmarkAlternates(_ destinations: [Destination], _ services: [VirtualService]) -> [[(Int, AddressFamily)]] {
        var out = [[(Int, AddressFamily)]](repeating: [], count: destinations.count)
        var fwmarkDestinations: [(service: Int, index: Int)] = []
        for (i, d) in destinations.enumerated() {
            if let s = d.service, case .fwmark = services[s].key { fwmarkDestinations.append((s, i)) }
        }
        guard !fwmarkDestinations.isEmpty else { return out }
        fwmarkDestinations.sort { $0.service != $1.service ? $0.service < $1.service : $0.index < $1.index }
        for (i, d) in destinations.enumerated() {
            if let s = d.service, case .address = services[s].key { continue }
            for f in fwmarkDestinations where f.index != i && destinations[f.index].address == d.address {
                out[i].append((f.index, services[f.service].key.family))
            }
        }
        return out
    }

    static func prefixLength(_ m: PersistenceNetmask, _ a: IPAddress) -> Int {
        switch m {
        case .ipv4(let v): a.isIPv4 ? v.nonzeroBitCount : 128
        case .prefix(let p): p
        }
    }
}
