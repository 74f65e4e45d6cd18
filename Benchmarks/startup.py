#!/usr/bin/env python3
"""Benchmarks/startup.py OLD NEW TREE [PAIRS]: start-up of `ipvstop check --proc-root EMPTY` for two binaries, alternated in pairs.

cold: the binary's pages are dropped from the page cache first (posix_fadvise DONTNEED on
the file: only that file, the machine's other caches untouched), so the run reads the
binary from disk as a first run after install or reboot would; warm: run again as is.
Prints medians (and quartiles) of N pairs; each pair's order alternates."""
import os, statistics, subprocess, sys, time
old, new, tree = sys.argv[1], sys.argv[2], sys.argv[3]
n = int(sys.argv[4]) if len(sys.argv) > 4 else 20

def evict(path):
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)

def run(path, cold):
    if cold:
        evict(path)
    t = time.perf_counter()
    p = subprocess.Popen([path, "check", "--proc-root", tree], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t
    assert os.waitstatus_to_exitcode(status) == 0, (path, status)
    cpu[(name_of[path], "cold" if cold else "warm")].append((ru.ru_utime + ru.ru_stime) * 1000)
    return dt * 1000

res = {(b, c): [] for b in ("old", "new") for c in ("cold", "warm")}
cpu = {(b, c): [] for b in ("old", "new") for c in ("cold", "warm")}
name_of = {old: "old", new: "new"}
for i in range(n):
    order = [("old", old), ("new", new)] if i % 2 == 0 else [("new", new), ("old", old)]
    for name, path in order:
        res[(name, "cold")].append(run(path, True))
    for name, path in order:
        res[(name, "warm")].append(run(path, False))
for c in ("cold", "warm"):
    for b in ("old", "new"):
        v = sorted(res[(b, c)])
        q = statistics.quantiles(v, n=4)
        cm = statistics.median(cpu[(b, c)])
        print(f"{c} {b}: CPU median {cm:.1f} ms; wall median {statistics.median(v):.1f} ms (quartiles {q[0]:.1f}-{q[2]:.1f}, min {v[0]:.1f}, max {v[-1]:.1f}, n={len(v)})")
