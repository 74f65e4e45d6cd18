// The compiler's prefetch hint, which Swift does not expose.
#ifndef IPVSTOP_CPREFETCH_H
#define IPVSTOP_CPREFETCH_H

/// Asks for the cache line at `p` ahead of a store to it. A hint: it never faults, so `p`
/// may lie past the end of a buffer.
static inline void ipvstop_prefetch_for_write(const void *p) { __builtin_prefetch(p, 1, 3); }

#endif
