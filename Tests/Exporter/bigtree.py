#!/usr/bin/env python3
"""Makes a /proc tree with N connection entries from Tests/Fixtures/proc-vm-6.1: the capture's
services, sysctls and templates, and its non-template entries repeated with a new client
address every 4 entries (N/4 clients), in the kernel's ip_vs_conn format.

    bigtree.py N OUTDIR
"""
import os
import shutil
import sys

n, out = int(sys.argv[1]), sys.argv[2]
src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fixtures", "proc-vm-6.1")
shutil.rmtree(out, ignore_errors=True)
shutil.copytree(src, out)
lines = open(os.path.join(src, "net", "ip_vs_conn")).read().splitlines()
header, rows = lines[0], [l for l in lines[1:] if l.strip()]
templates = [r for r in rows if r.split()[2] == "0000"]
conns = [r for r in rows if r.split()[2] != "0000" and len(r.split()[1]) == 8]   # IPv4 clients
with open(os.path.join(out, "net", "ip_vs_conn"), "w") as f:
    f.write(header + "\n")
    for t in templates:
        f.write(t + "\n")
    for i in range(max(0, n - len(templates))):
        r = conns[i % len(conns)].split()
        r[1] = "%08X" % (0x0A800000 + i // 4)      # client 10.128.x.y, 4 entries each
        r[2] = "%04X" % (1024 + i % 4)
        f.write(" ".join(r) + "\n")
