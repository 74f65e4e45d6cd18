import FoundationEssentials
import IPVSRawMemory

/// One row of the kernel's connection table (`/proc/net/ip_vs_conn`): a connection or a
/// persistence template.
///
/// A fixed-size value of 64 bytes with no references, so that 10^6 entries cost 64 MB and
/// no allocations beyond the array that holds them.
public struct ConnectionEntry: Hashable, Sendable {
    public var client: IPAddress
    /// The virtual address; for a fwmark template (protocol `IP`) the kernel prints the
    /// mark in this column, held here as an IPv4 value (see `fwmark`).
    public var virtual: IPAddress
    public var destination: IPAddress
    public var clientPort: UInt16
    public var virtualPort: UInt16
    public var destinationPort: UInt16
    public var proto: IPProtocolNumber
    public var state: ConnectionState
    /// Seconds until the entry expires, as the kernel printed it (0 once past due).
    public var expires: UInt32
    /// `ConnectionEntry.fromSync` when `ip_vs_conn_sync` says the entry came from a sync
    /// master (Origin `SYNC`).
    public var flags: UInt8

    public static let fromSync: UInt8 = 1
    /// The kernel printed an expiry past due as a huge number (kernels before 4.19);
    /// `expires` is then 0.
    public static let unclampedExpiry: UInt8 = 2

    @inlinable
    public init(
        proto: IPProtocolNumber, client: IPAddress, clientPort: UInt16,
        virtual: IPAddress, virtualPort: UInt16, destination: IPAddress, destinationPort: UInt16,
        state: ConnectionState, expires: UInt32, flags: UInt8 = 0
    ) {
        self.proto = proto
        self.client = client
        self.clientPort = clientPort
        self.virtual = virtual
        self.virtualPort = virtualPort
        self.destination = destination
        self.destinationPort = destinationPort
        self.state = state
        self.expires = expires
        self.flags = flags
    }

    /// Persistence templates are the entries with client port 0 (their state is `NONE` or
    /// `ASSURED` depending on the kernel, so the port is the test).
    @inlinable public var isTemplate: Bool { clientPort == 0 }

    /// The firewall mark of a fwmark service's template (protocol `IP`). The kernel puts
    /// the mark in the first 32 bits of the virtual address: the whole IPv4 address, or
    /// `0000:0002:0000:...` for an IPv6 template.
    public var fwmark: UInt32? {
        guard isTemplate && proto == .ip else { return nil }
        return virtual.isIPv4 ? virtual.ipv4Value : UInt32(truncatingIfNeeded: virtual.high >> 32)
    }

    public var isFromSync: Bool { flags & Self.fromSync != 0 }
}

/// A persistence engine's name and data, appended to a row only when one (e.g. `sip`) is
/// in use; kept beside the table so that ordinary entries stay small.
public struct PersistenceEngineData: Hashable, Sendable {
    public var name: String
    public var data: String
    public init(name: String, data: String) { self.name = name; self.data = data }
}

/// What reading one kernel source cost: the figures an operator needs to trust that
/// ipvstop is not becoming the director's load.
public struct ReadCost: Hashable, Sendable {
    /// Wall-clock seconds from open to close.
    public var seconds: Double
    /// CPU seconds of this process (user + system: the kernel's seq_file walk shows as
    /// system time) spent reading and parsing.
    public var cpuSeconds: Double
    public var bytes: Int
    /// Number of read() calls: each one restarts the kernel's hash walk on older kernels.
    public var readCalls: Int

    public init(seconds: Double, cpuSeconds: Double, bytes: Int, readCalls: Int) {
        self.seconds = seconds
        self.cpuSeconds = cpuSeconds
        self.bytes = bytes
        self.readCalls = readCalls
    }
}

/// Lines a reader passed over, by reason, so a snapshot says what it could not use.
public struct SkippedLines: Hashable, Sendable {
    public var malformed = 0
    public var unknownProtocol = 0
    public var unknownState = 0
    /// A sample of the first few offending lines, for the warning text.
    public var examples: [String] = []
    /// The text ended without a newline: its last line is cut (a truncated file).
    public var unterminated = false

    public init() {}

    public var total: Int { malformed + unknownProtocol + unknownState }

    public mutating func note(_ line: Substring) {
        if examples.count < 3 { examples.append(String(line.prefix(160))) }
    }
}

/// The kernel's connection table at one moment, with its counts.
public struct ConnectionTable: Sendable {
    public let entries: [ConnectionEntry]
    /// Persistence-engine data by entry index, for the rare rows that carry it.
    public let persistenceEngineData: [Int: PersistenceEngineData]
    /// Which file the rows came from (`ip_vs_conn` or `ip_vs_conn_sync`).
    public let file: String
    public let readAt: Date
    public let cost: ReadCost
    public let skipped: SkippedLines
    public let counts: ConnectionCounts
    /// Whether the read holds the whole table (set by the reader; nil when not checked,
    /// e.g. a demo's or a recording's table).
    public var completeness: TableCompleteness?

    public init(
        entries: [ConnectionEntry], persistenceEngineData: [Int: PersistenceEngineData] = [:],
        file: String, readAt: Date, cost: ReadCost, skipped: SkippedLines = SkippedLines()
    ) {
        self.entries = entries
        self.persistenceEngineData = persistenceEngineData
        self.file = file
        self.readAt = readAt
        self.cost = cost
        self.skipped = skipped
        self.counts = ConnectionCounts(entries)
    }
}

/// Entry counts by kind, state and protocol, computed once per table.
public struct ConnectionCounts: Hashable, Sendable {
    /// Entries that are not templates.
    public private(set) var connections = 0
    public private(set) var templates = 0
    /// Non-template entries by state.
    public private(set) var byState: [ConnectionState: Int] = [:]
    /// Non-template entries by protocol.
    public private(set) var byProtocol: [IPProtocolNumber: Int] = [:]
    /// Templates by state (`NONE`, `ASSURED`).
    public private(set) var templatesByState: [ConnectionState: Int] = [:]

    public init(_ entries: [ConnectionEntry]) {
        // Flat arrays indexed by the one-byte codes: a dictionary update per entry would
        // dominate the cost at 10^6 entries.
        var states = [Int](repeating: 0, count: 256)
        var tstates = [Int](repeating: 0, count: 256)
        var protos = [Int](repeating: 0, count: 256)
        for e in entries {
            if e.isTemplate {
                tstates[Int(e.state.rawValue)] += 1
            } else {
                states[Int(e.state.rawValue)] += 1
                protos[Int(e.proto.rawValue)] += 1
            }
        }
        for i in 0..<256 {
            if states[i] > 0 { byState[ConnectionState(rawValue: UInt8(i))] = states[i]; connections += states[i] }
            if tstates[i] > 0 { templatesByState[ConnectionState(rawValue: UInt8(i))] = tstates[i]; templates += tstates[i] }
            if protos[i] > 0 { byProtocol[IPProtocolNumber(rawValue: UInt8(i))] = protos[i] }
        }
    }
}

/// Which connection entries appeared between two reads of the table.
public struct ConnectionChanges: Sendable {
    public init(previousReadAt: Date, newEntryIndices: [Int], interval: Double, earlier: [ReadChanges] = []) {
        self.previousReadAt = previousReadAt
        self.newEntryIndices = newEntryIndices
        self.interval = interval
        self.earlier = earlier
    }

    /// The new entries of the reads before this one, oldest first, as far back as the
    /// poller keeps them: a face that took in only every other snapshot (its loop slower
    /// than the table's reads) still counts every new entry from here. Empty where nobody
    /// kept them (a single comparison).
    public var earlier: [ReadChanges]

    /// When the table compared against was read.
    public var previousReadAt: Date
    /// Indices into the current table's entries of those that were not in the previous.
    public var newEntryIndices: [Int]
    /// Seconds between the two reads.
    public var interval: Double
}

/// The new entries of one earlier read of the table, kept by value (that table is gone).
public struct ReadChanges: Sendable {
    public var readAt: Date
    /// The read it was compared with.
    public var previousReadAt: Date
    /// Its new entries; empty when there were more than the keeper holds (`complete`).
    public var newEntries: [ConnectionEntry]
    /// How many entries were new.
    public var newCount: Int
    public var complete: Bool { newEntries.count == newCount }

    public init(readAt: Date, previousReadAt: Date, newEntries: [ConnectionEntry], newCount: Int) {
        self.readAt = readAt
        self.previousReadAt = previousReadAt
        self.newEntries = newEntries
        self.newCount = newCount
    }
}

/// The identities (protocol and the three endpoints) of one table read as 64-bit digests,
/// ascending, each with the index of its entry: what the poller keeps of one read (12 bytes
/// an entry) to tell which entries of the next are new. A digest collision hides an entry's
/// newness with probability ~n/2^64.
public struct EntryIdentities: Sendable {
    public let digests: [UInt64]
    let indices: [Int32]

    /// Entries whose identity an earlier entry of the same read already had. A consistent
    /// table never lists one entry twice: repeats mean the read's position moved back (an
    /// entry added before it, or a read resumed in a resized 7.x table). The digests are
    /// sorted, so a repeat is an equal neighbour.
    public var repeatedCount: Int {
        digests.withUnsafeBufferPointer { d in
            var n = 0
            if d.count > 1 { for i in 1..<d.count where d[i] == d[i - 1] { n += 1 } }
            return n
        }
    }

    /// The digests alone (8 bytes an entry, not 12): all that a read is needed for once it is
    /// the `previous` of the next comparison, which reads only its digests. Not for
    /// `newEntryIndices` as the current read (its indices are gone).
    public var forNextComparison: EntryIdentities { EntryIdentities(digests: digests, indices: []) }

    /// Indices (ascending) of this read's entries whose identity `previous` does not hold:
    /// one merge of two sorted lists.
    public func newEntryIndices(since previous: EntryIdentities) -> [Int] {
        let n = digests.count
        precondition(indices.count == n, "newEntryIndices on identities kept only for the next comparison")
        var isNew = [Bool](repeating: false, count: n)
        var newCount = 0
        previous.digests.withUnsafeBufferPointer { old in
            digests.withUnsafeBufferPointer { cur in
                var j = 0
                for i in 0..<n {
                    let d = cur[i]
                    while j < old.count && old[j] < d { j += 1 }
                    if j == old.count || old[j] != d {
                        isNew[Int(indices[i])] = true
                        newCount += 1
                    }
                }
            }
        }
        var out: [Int] = []
        out.reserveCapacity(newCount)
        for i in 0..<n where isNew[i] { out.append(i) }
        return out
    }
}

extension ConnectionTable {
    /// The entries' identities, sorted (see `EntryIdentities`).
    public func identities() -> EntryIdentities {
        let n = entries.count
        let keys = UnsafeMutablePointer<UInt64>.allocate(capacity: max(1, n))
        let payload = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, n))
        defer {
            keys.deallocate()
            payload.deallocate()
        }
        entries.withUnsafeBufferPointer { e in
            for i in 0..<n {
                keys[i] = Self.digest(e[i])
                payload[i] = Int32(truncatingIfNeeded: i)
            }
        }
        // The sort's other buffers are the result's own storage: the sorted keys usually
        // end there (an odd number of passes), and are not copied again (12 MB at 10^6).
        var indices: [Int32] = []
        let digests = [UInt64](unsafeUninitializedCapacity: max(1, n)) { digestBuffer, digestCount in
            indices = [Int32](unsafeUninitializedCapacity: max(1, n)) { indexBuffer, indexCount in
                let ks = digestBuffer.baseAddress!, vs = indexBuffer.baseAddress!
                let (k, v) = RadixSort.sortDigests(keys, scratch: ks, payload: payload, payloadScratch: vs, count: n)
                if k != ks { ks.update(from: k, count: n) }
                if v != vs { vs.update(from: v, count: n) }
                indexCount = n
            }
            digestCount = n
        }
        return EntryIdentities(digests: digests, indices: indices)
    }

    @inlinable
    static func digest(_ e: ConnectionEntry) -> UInt64 {
        // FNV-1a style mixing over the identity words.
        var h = Mixer.fnvBasis
        @inline(__always) func mix(_ v: UInt64) { h = (h ^ v) &* Mixer.fnvPrime; h ^= h >> 29 }
        mix(e.client.high); mix(e.client.low)
        mix(e.virtual.high); mix(e.virtual.low)
        mix(e.destination.high); mix(e.destination.low)
        mix(UInt64(e.clientPort) | UInt64(e.virtualPort) << 16 | UInt64(e.destinationPort) << 32 | UInt64(e.proto.rawValue) << 48)
        return h
    }
}
