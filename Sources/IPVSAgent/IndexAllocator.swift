/// Row indexes that keep their identity: a key (a service, a real server) gets an index
/// when it first appears and keeps it while it is present; when it goes, its index is
/// freed but not handed out again until the index space wraps, so a manager never sees a
/// new row take the identity of one it saw a moment ago.
public struct IndexAllocator<Key: Hashable>: Sendable where Key: Sendable {
    public private(set) var indexes: [Key: UInt32] = [:]
    private var used: Set<UInt32> = []
    private var nextIndex: UInt32 = 1
    public let maximum: UInt32

    /// Indexes run from 1 to `maximum` (IpvsRowIndex: 2^31-1).
    public init(maximum: UInt32 = 2_147_483_647) {
        self.maximum = max(1, maximum)
    }

    /// Makes `present` the keys that exist now: they keep their index or get a fresh one;
    /// keys not in `present` lose theirs. New keys are numbered in the order given.
    public mutating func update<S: Sequence>(_ present: S) where S.Element == Key {
        var keep: [Key: UInt32] = [:]
        var fresh: [Key] = []
        var seen: Set<Key> = []
        for k in present where keep[k] == nil {
            if let i = indexes[k] { keep[k] = i } else if seen.insert(k).inserted { fresh.append(k) }
        }
        used = Set(keep.values)
        indexes = keep
        for k in fresh {
            guard let i = allocate() else { break }
            indexes[k] = i
        }
    }

    public func index(of key: Key) -> UInt32? { indexes[key] }

    /// The next index not in use, after the last one given; nil when all are in use.
    private mutating func allocate() -> UInt32? {
        guard used.count < Int(maximum) else { return nil }
        while used.contains(nextIndex) {
            nextIndex = nextIndex >= maximum ? 1 : nextIndex + 1
        }
        let i = nextIndex
        used.insert(i)
        nextIndex = nextIndex >= maximum ? 1 : nextIndex + 1
        return i
    }
}
