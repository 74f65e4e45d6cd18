import FoundationEssentials
import IPVSModel
import IPVSRawMemory

/// The connection table as the client pass leaves it: one `EntryWord` per entry, sorted by
/// client, and where each client's words start. 12 bytes an entry instead of a client and
/// a load record each: the clients are written out only for the face that shows them.
///
/// Immutable once built; its buffers go back to the pool they came from.
final class ClientStore: @unchecked Sendable {
    let words: BufferPool.Block
    let wordCount: Int
    let starts: BufferPool.Block
    let clientCount: Int
    /// IPv6 client addresses, by the ordinal their words carry.
    let v6Clients: PooledList<IPAddress>
    let pool: BufferPool?

    init(words: BufferPool.Block, wordCount: Int, starts: BufferPool.Block, clientCount: Int, v6Clients: PooledList<IPAddress>,
         pool: BufferPool?) {
        self.words = words
        self.wordCount = wordCount
        self.starts = starts
        self.clientCount = clientCount
        self.v6Clients = v6Clients
        self.pool = pool
    }

    deinit {
        pool.give(words)
        pool.give(starts)
    }

    @inline(__always)
    func word(_ k: Int) -> UInt64 { words.typed(UInt64.self)[k] }

    @inline(__always)
    func address(clientBits: UInt64) -> IPAddress { EntryWord.address(clientBits: clientBits, v6Clients: v6Clients) }

    /// (The client pass keeps `starts`' slot 0 for itself: client c starts at slot c + 1.)
    func firstWord(ofClient c: Int) -> Int { Int(starts.typed(Int32.self)[c + 1]) }

    /// The client's words: from its start while the client bits stay the same (a
    /// persistence group's templates, under the group's address, may share them).
    func forEachWord(ofClient c: Int, _ body: (UInt64) -> Void) {
        let w = words.typed(UInt64.self)
        var k = firstWord(ofClient: c)
        let bits = w[k] >> EntryWord.clientShift
        while k < wordCount && w[k] >> EntryWord.clientShift == bits {
            if w[k] & EntryWord.groupTemplate == 0 { body(w[k]) }
            k += 1
        }
    }

    /// Every client's connections per destination, client by client, each client's by
    /// destination (its words' order): a pass over the whole table.
    func forEachLoad(_ body: (LoadTotal) -> Void) {
        for c in 0..<clientCount {
            var destination = -1, connections = 0
            forEachWord(ofClient: c) { w in
                let d = EntryWord.destination(w)
                if d != destination {
                    if connections > 0 { body(LoadTotal(client: c, destination: destination, connections: connections)) }
                    destination = d
                    connections = 0
                }
                if w & EntryWord.template == 0 { connections += 1 }
            }
            if connections > 0 { body(LoadTotal(client: c, destination: destination, connections: connections)) }
        }
    }

    func client(_ c: Int) -> ClientAggregate {
        let first = firstWord(ofClient: c)
        var counts = StateCounts()
        var templates = 0
        forEachWord(ofClient: c) { w in
            if w & EntryWord.template != 0 { templates += 1 } else { counts.add(EntryWord.state(w)) }
        }
        return ClientAggregate(index: c, address: address(clientBits: word(first) >> EntryWord.clientShift),
                               connections: counts, templates: templates, firstWord: first)
    }
}

/// Every client of the table, by address (IPv4, then IPv6 in the order first seen). Each
/// element is computed when asked for: keep what you look at more than once.
public struct ClientTable: RandomAccessCollection, Sendable {
    let store: ClientStore?

    init(store: ClientStore? = nil) { self.store = store }

    public var startIndex: Int { 0 }
    public var endIndex: Int { store?.clientCount ?? 0 }

    public subscript(i: Int) -> ClientAggregate {
        precondition(i >= 0 && i < endIndex, "client index out of range")
        return store!.client(i)
    }

    /// The address of client `i`, without counting its entries.
    public func address(_ i: Int) -> IPAddress {
        precondition(i >= 0 && i < endIndex, "client index out of range")
        let s = store!
        return s.address(clientBits: s.word(s.firstWord(ofClient: i)) >> EntryWord.clientShift)
    }

    /// `c`'s loads, by destination (the order of `Aggregates.destinations`).
    func loads(of c: ClientAggregate, _ destinations: [Destination]) -> [ClientLoad] {
        guard let s = store, c.index < s.clientCount else { return [] }
        var out: [ClientLoad] = []
        s.forEachWord(ofClient: c.index) { w in
            let d = EntryWord.destination(w)
            var i = out.firstIndex { $0.destination == d } ?? -1
            if i < 0 {
                out.append(ClientLoad(client: c.index, destination: d))
                i = out.count - 1
            }
            if w & EntryWord.template != 0 { out[i].templates += 1 } else { out[i].connections.add(EntryWord.state(w)) }
        }
        for i in out.indices {
            let dc = destinations[out[i].destination].connections, l = out[i].connections
            out[i].shareOfActive = dc.active > 0 ? Double(l.active) / Double(dc.active) : nil
            out[i].shareOfInactive = dc.inactive > 0 ? Double(l.inactive) / Double(dc.inactive) : nil
        }
        return out
    }
}
