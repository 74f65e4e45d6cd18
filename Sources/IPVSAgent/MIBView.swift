import FoundationEssentials

/// A scalar's value: fixed when the view is built, or worked out at request time (the
/// age of the snapshot).
public enum ScalarValue: Sendable, Hashable {
    case value(SNMPValue)
    /// Gauge32 of milliseconds elapsed since the date, at the time of the request.
    case millisecondsSince(Date)

    func resolve(now: Date) -> SNMPValue {
        switch self {
        case .value(let v): v
        case .millisecondsSince(let d): .gauge(max(0, Int64((now.timeIntervalSince(d) * 1000).rounded())))
        }
    }
}

/// A conceptual row: its index arcs and one value per column of its table (nil where the
/// column has no value for this row: the column is skipped by a walk).
public struct MIBRow: Sendable {
    public var index: [UInt32]
    public var values: [SNMPValue?]
    public init(index: [UInt32], values: [SNMPValue?]) {
        self.index = index
        self.values = values
    }
}

/// A table: its entry's OID, its accessible columns (ascending) and its rows, sorted by
/// index, so that a GET is a binary search and a GETNEXT a binary search plus a step:
/// a walk of n rows costs n log n, never n².
public struct MIBTable: Sendable {
    public let entry: OID
    public let columns: [UInt32]
    public let rows: [MIBRow]

    /// `rows` in any order; they are sorted here. Rows with the same index keep the first.
    public init(entry: OID, columns: [UInt32], rows: [MIBRow]) {
        self.entry = entry
        self.columns = columns
        var sorted = rows
        sorted.sort { OID.compare($0.index[...], $1.index[...]) < 0 }
        var unique: [MIBRow] = []
        unique.reserveCapacity(sorted.count)
        for r in sorted where unique.last.map({ OID.compare($0.index[...], r.index[...]) != 0 }) ?? true {
            unique.append(r)
        }
        self.rows = unique
    }

    /// The first row whose index is greater than `suffix` (or equal, when `inclusive`).
    func firstRow(after suffix: ArraySlice<UInt32>, inclusive: Bool) -> Int {
        var lo = 0, hi = rows.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            let c = OID.compare(rows[mid].index[...], suffix)
            if c < 0 || (c == 0 && !inclusive) { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    func row(_ suffix: ArraySlice<UInt32>) -> MIBRow? {
        let i = firstRow(after: suffix, inclusive: true)
        guard i < rows.count, OID.compare(rows[i].index[...], suffix) == 0 else { return nil }
        return rows[i]
    }
}

/// One object of the view: a scalar (instance `.0`) or a table.
public enum MIBRegion: Sendable {
    case scalar(OID, ScalarValue?)
    case table(MIBTable)

    public var oid: OID {
        switch self {
        case .scalar(let o, _): o
        case .table(let t): t.entry
        }
    }
}

/// What a GET finds.
public enum GetResult: Equatable, Sendable {
    case value(SNMPValue)
    case noSuchObject
    case noSuchInstance
}

/// Everything the subagent answers, built from one snapshot and never changed after:
/// requests read one view from start to end while the next is built on another thread.
/// OIDs here are relative to the registered subtree.
public final class MIBView: Sendable {
    public let regions: [MIBRegion]
    public let builtAt: Date
    /// The source's clock minus wall time when the view was built: ages are measured on the
    /// clock the snapshot was taken by (the demo's simulated time, a recording's recorded
    /// time), not against wall time, which is months away from either.
    public let clockOffset: Double

    public init(regions: [MIBRegion], builtAt: Date = Date(), clockOffset: Double = 0) {
        self.regions = regions.sorted { $0.oid < $1.oid }
        self.builtAt = builtAt
        self.clockOffset = clockOffset.isFinite ? clockOffset : 0
    }

    public static let empty = MIBView(regions: [])

    /// The region whose subtree holds `oid`, if any.
    func region(containing oid: ArraySlice<UInt32>) -> Int? {
        // Regions are disjoint subtrees in ascending order: the candidate is the last one
        // not after `oid`.
        var lo = 0, hi = regions.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if OID.compare(regions[mid].oid.arcs[...], oid) <= 0 { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0, OID.hasPrefix(oid, regions[lo - 1].oid.arcs[...]) else { return nil }
        return lo - 1
    }

    /// `now` is wall time; ages are resolved on the source's clock (`clockOffset`).
    public func get(_ oid: [UInt32], now: Date = Date()) -> GetResult {
        let now = now.addingTimeInterval(clockOffset)
        let o = oid[...]
        guard let r = region(containing: o) else { return .noSuchObject }
        switch regions[r] {
        case .scalar(let s, let v):
            guard oid.count == s.arcs.count + 1, oid.last == 0 else {
                return oid.count == s.arcs.count + 1 ? .noSuchInstance : .noSuchObject
            }
            return v.map { .value($0.resolve(now: now)) } ?? .noSuchInstance
        case .table(let t):
            let n = t.entry.arcs.count
            guard oid.count > n, let ci = t.columns.firstIndex(of: oid[n]) else { return .noSuchObject }
            guard let row = t.row(o[(n + 1)...]), let v = row.values[ci] else { return .noSuchInstance }
            return .value(v)
        }
    }

    /// The first instance after `oid` (at `oid` itself too when `inclusive`), with its
    /// value; nil past the end of the view.
    public func next(after oid: [UInt32], inclusive: Bool = false, now: Date = Date()) -> (OID, SNMPValue)? {
        let o = oid[...]
        if inclusive, case .value(let v) = get(oid, now: now) { return (OID(oid), v) }
        let now = now.addingTimeInterval(clockOffset)
        // Start at the region holding `oid`, or the first one after it.
        var start = region(containing: o) ?? regions.count
        if start == regions.count {
            var lo = 0, hi = regions.count
            while lo < hi {
                let mid = (lo + hi) >> 1
                if OID.compare(regions[mid].oid.arcs[...], o) < 0 { lo = mid + 1 } else { hi = mid }
            }
            start = lo
        }
        var i = start
        while i < regions.count {
            if let hit = Self.next(in: regions[i], after: o, now: now) { return hit }
            i += 1
        }
        return nil
    }

    static func next(in region: MIBRegion, after o: ArraySlice<UInt32>, now: Date) -> (OID, SNMPValue)? {
        switch region {
        case .scalar(let s, let v):
            guard let v else { return nil }
            let inst = s + [0]
            return OID.compare(o, inst.arcs[...]) < 0 ? (inst, v.resolve(now: now)) : nil
        case .table(let t):
            for (ci, c) in t.columns.enumerated() {
                let col = t.entry + [c]
                var r: Int
                if OID.hasPrefix(o, col.arcs[...]) {
                    r = t.firstRow(after: o[(o.startIndex + col.arcs.count)...], inclusive: false)
                } else if OID.compare(o, col.arcs[...]) < 0 {
                    r = 0
                } else {
                    continue
                }
                while r < t.rows.count {
                    if let v = t.rows[r].values[ci] { return (col + t.rows[r].index, v) }
                    r += 1
                }
            }
            return nil
        }
    }

    /// Rows of the table at `entry`, for tests and counts.
    public func table(_ entry: OID) -> MIBTable? {
        for r in regions { if case .table(let t) = r, t.entry == entry { return t } }
        return nil
    }
}
