/// The constants ipvstop mixes hashes with, in one place: the analysis' open-addressing
/// tables (`PairIndex`, the IPv6 client index), the route cache's multipliers, the templates'
/// and the connection entries' identities, the demo's randomness and the recordings' entry
/// hash. Each is a published constant chosen for how well it spreads bits; none is tuned to a
/// table. Changing one changes no figure, only the order of hash slots, except
/// `TemplateIdentity`'s (an `Analyzer` orders templates by their digest) and `splitMix`'s
/// (the demo director's randomness: its screens in `Screens/` would change).
///
/// Computed and inlinable, so that another module's hot loop sees a constant, not an
/// accessor call.
@usableFromInline
package enum Mixer {
    /// 2^64 / φ, odd: Fibonacci hashing's multiplier and SplitMix64's increment.
    @inlinable package static var golden: UInt64 { 0x9E37_79B9_7F4A_7C15 }
    /// xxHash64's second prime.
    @inlinable package static var prime2: UInt64 { 0xC2B2_AE3D_27D4_EB4F }
    /// xxHash64's third prime.
    @inlinable package static var prime3: UInt64 { 0x27D4_EB2F_1656_67C5 }
    /// xxHash64's fifth prime.
    @inlinable package static var prime5: UInt64 { 0x1656_67B1_9E37_79F9 }
    /// SplitMix64's finalizer multipliers.
    @inlinable package static var finalizer1: UInt64 { 0xBF58_476D_1CE4_E5B9 }
    @inlinable package static var finalizer2: UInt64 { 0x94D0_49BB_1331_11EB }
    /// The templates' digest multiplier (odd, well spread).
    @inlinable package static var digest: UInt64 { 0xD6E8_FEB8_6659_FD93 }
    /// FNV-1a's 64-bit offset basis and prime: the templates' second, independent digest.
    @inlinable package static var fnvBasis: UInt64 { 0xcbf2_9ce4_8422_2325 }
    @inlinable package static var fnvPrime: UInt64 { 0x0000_0100_0000_01B3 }

    /// SplitMix64's step: the next well-spread odd-or-even value from `state`.
    @inlinable @inline(__always)
    package static func splitMix(_ state: inout UInt64) -> UInt64 {
        state = state &+ golden
        var z = state
        z = (z ^ z >> 30) &* finalizer1
        z = (z ^ z >> 27) &* finalizer2
        return z ^ z >> 31
    }
}
