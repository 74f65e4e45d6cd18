#if canImport(Glibc)
import CMalloc
import Glibc
#endif

/// The process' one memory policy: how a long-running poller (the dashboard, the subagent,
/// the exporter) treats the memory each poll frees. Nothing else in ipvstop calls `mallopt`.
public enum WorkingMemory {
    /// Asks glibc's malloc to keep the memory one poll frees for the next, instead of
    /// returning it to the kernel and faulting it back in a second later: allocations up
    /// to 32 MiB come from the heap, up to 256 MiB freed at its top stay there, and at most
    /// two arenas hold them (the pollers' threads would otherwise each pile up freed tables
    /// in an arena of their own). At 10^6 entries the analysis' working memory is tens of
    /// megabytes, and a fresh page costs a fault and a clearing: a quarter of the analysis.
    ///
    /// The price is that the process keeps its peak footprint, which a poller reaches
    /// again every poll anyway. Call once, early; `ipvstop check` and `snapshot` (one poll)
    /// do not need it. Returns false where there is no glibc.
    @discardableResult
    public static func keepBetweenPolls() -> Bool {
        #if canImport(Glibc)
        return mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 256 << 20) == 1
            && mallopt(M_ARENA_MAX, 2) == 1
        #else
        return false
        #endif
    }

    /// Returns the memory freed so far to the kernel (glibc's `malloc_trim`), as a process
    /// that starts now would find it: for a benchmark that times one-poll runs in a row.
    public static func returnFreed() {
        #if canImport(Glibc)
        _ = malloc_trim(0)
        #endif
    }
}
