#!/usr/bin/env python3
"""Judges Tests/Lab/scenarios/exporter.sh's capture: `ipvstop exporter` on a real kernel
against `ipvsadm -Ln --persistent-conn --stats --exact` taken around its scrape.

    exporter_compare.py CAPDIR

Every real server of every service (ipvsadm's) must have its series, with Weight, ActiveConn,
InActConn and PersistConn between the values before and after, and its 64-bit counters
(Conns, InPkts, OutPkts, InBytes, OutBytes) between before's and after's (they only grow);
the same for services' counters; the snapshot served must have been taken between the two
captures; promtool must find the exposition clean. Prints ok/FAIL lines and a count; exits 1
on any failure.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import PCONN, STATS, parse_columns, parse_ln  # noqa: E402

cap = sys.argv[1]
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok - " + name)
    else:
        failed += 1
        print("FAIL - %s %s" % (name, detail))


def read(*p):
    with open(os.path.join(cap, *p)) as f:
        return f.read()


labels_re = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
samples = {}
for line in read("metrics.prom").splitlines():
    if line.startswith("#") or not line.strip():
        continue
    m = re.match(r"(\w+)(?:\{(.*)\})? (\S+)$", line)
    name, labels, value = m.group(1), dict(labels_re.findall(m.group(2) or "")), float(m.group(3))
    samples.setdefault(name, {})[frozenset(labels.items())] = value


def svc_labels(s):
    if s["protocol"] == "fwmark":
        return {"local_address": "", "local_port": "0", "proto": "FWM", "local_mark": str(s["fwmark"]), "family": s["family"]}
    return {"local_address": s["address"], "local_port": str(s["port"]), "proto": s["protocol"].upper(),
            "local_mark": "", "family": s["family"]}


def get(name, labels):
    return samples.get(name, {}).get(frozenset(labels.items()))


before = {k: read("before", f) for k, f in [("ln", "Ln.txt"), ("pc", "Ln-persistent-conn.txt"), ("st", "Ln-stats-exact.txt")]}
after = {k: read("after", f) for k, f in [("ln", "Ln.txt"), ("pc", "Ln-persistent-conn.txt"), ("st", "Ln-stats-exact.txt")]}
ln = parse_ln(before["ln"])
pc = [parse_columns(before["pc"], PCONN), parse_columns(after["pc"], PCONN)]
st = [parse_columns(before["st"], STATS), parse_columns(after["st"], STATS)]
t0, t1 = float(read("before", "at")), float(read("after", "done"))
taken = list(samples.get("ipvstop_snapshot_timestamp_seconds", {}).values())
check("the snapshot served was taken between the two ipvsadm captures",
      taken and t0 <= taken[0] <= t1, "%s not in [%s, %s]" % (taken, t0, t1))
lint = read("promtool.txt").strip() if os.path.exists(os.path.join(cap, "promtool.txt")) else "promtool missing"
check("promtool check metrics: clean", lint == "", lint[:300])
check("OpenMetrics scrape ends with # EOF", read("metrics.om").endswith("# EOF\n"))

n_rs = n_fig = 0
bad = []
for s in ln["services"]:
    sl = svc_labels(s)
    for rs in s["real_servers"]:
        n_rs += 1
        bl = dict(sl, remote_address=rs["address"], remote_port=str(rs["port"]))
        for metric, col, tables in [("ipvstop_backend_weight", "weight", pc), ("ipvstop_backend_connections_active", "active_conns", pc),
                                    ("ipvstop_backend_connections_inactive", "inactive_conns", pc),
                                    ("ipvstop_backend_connections_persistent", "persistent_conns", pc)] + \
                                   [("ipvstop_backend_%s_total" % m, c, st) for m, c in
                                    [("connections", "conns"), ("incoming_packets", "in_packets"), ("outgoing_packets", "out_packets"),
                                     ("incoming_bytes", "in_bytes"), ("outgoing_bytes", "out_bytes")]]:
            vals = [t[s["id"]]["real_servers"][rs["id"]][col] for t in tables if rs["id"] in t.get(s["id"], {}).get("real_servers", {})]
            v = get(metric, bl)
            n_fig += 1
            if v is None or not vals or not (min(vals) <= v <= max(vals)):
                bad.append("%s %s %s: %s vs ipvsadm %s" % (s["id"], rs["id"], metric, v, vals))
    for metric, col in [("connections", "conns"), ("incoming_packets", "in_packets"), ("outgoing_packets", "out_packets"),
                        ("incoming_bytes", "in_bytes"), ("outgoing_bytes", "out_bytes")]:
        vals = [t[s["id"]]["values"][col] for t in st if t.get(s["id"], {}).get("values")]
        v = get("ipvstop_service_%s_total" % metric, sl)
        n_fig += 1
        if v is None or not vals or not (min(vals) <= v <= max(vals)):
            bad.append("%s %s: %s vs ipvsadm %s" % (s["id"], metric, v, vals))
check("every real server's Weight, ActiveConn, InActConn, PersistConn and 64-bit counters, and every service's counters, "
      "within ipvsadm's before/after (%d real servers, %d figures)" % (n_rs, n_fig), not bad, "; ".join(bad[:5]))
exported = {(dict(k).get("local_address", ""), dict(k).get("local_mark", ""), dict(k)["remote_address"], dict(k)["remote_port"])
            for k in samples.get("ipvstop_backend_weight", {})}
check("no real server exported that ipvsadm does not list (%d exported, %d listed)" % (len(exported), n_rs), len(exported) == n_rs)
check("the connection table is served (%s entries)" % list(samples.get("ipvstop_connection_table_entries", {}).values()),
      samples.get("ipvstop_connection_table_entries"))
print("exporter lab: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
