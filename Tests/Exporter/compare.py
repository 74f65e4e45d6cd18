#!/usr/bin/env python3
"""Checks what a real Prometheus server scraped from `ipvstop exporter` against
`ipvstop snapshot --json --top 0` of the same feed.

    compare.py PROM_URL JOB SNAPSHOT.json MODE [TOP_CLIENTS]

MODE is `exact` (a captured tree or the last frame of a recording: every figure must match)
or `shape` (the running demo, whose figures move with its clock: the services, real servers,
weights, schedulers, forwarding methods and persistence timeouts must match, and the finding
kinds must be ones snapshot --json raises). Prints one `ok -`/`FAIL -` line per check and
`compare: N passed, M failed`; exits 1 when any check failed.
"""
import json
import sys
import urllib.parse
import urllib.request

prom, job, snap_path, mode = sys.argv[1:5]
top_clients = int(sys.argv[5]) if len(sys.argv) > 5 else 5
snap = json.load(open(snap_path))
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok - {job}: {name}")
    else:
        failed += 1
        print(f"FAIL - {job}: {name} {detail}")


def query(q):
    url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


def series(name):
    """{frozenset(labels without __name__, job, instance): value} of the latest sample."""
    out = {}
    for r in query(f'{name}{{job="{job}"}}'):
        labels = {k: v for k, v in r["metric"].items() if k not in ("__name__", "job", "instance")}
        out[frozenset(labels.items())] = float(r["value"][1])
    return out


def svc_labels(s):
    if s["protocol"] == "fwmark":
        return {"local_address": "", "local_port": "0", "proto": "FWM", "local_mark": str(s["fwmark"]), "family": s["family"]}
    return {"local_address": s["address"], "local_port": str(s["port"]), "proto": s["protocol"].upper(),
            "local_mark": "", "family": s["family"]}


def be_labels(s, rs):
    l = svc_labels(s)
    l.update({"remote_address": rs["address"], "remote_port": str(rs["port"])})
    return l


def key(d):
    # Prometheus stores no label with an empty value (local_mark="" of an address service).
    return frozenset((k, v) for k, v in d.items() if v != "")


def same(metric, expected, label_filter=None):
    """The metric's series equal `expected` ({labels: value}); absent values are None."""
    got = series(metric)
    want = {key(l): v for l, v in expected if v is not None}
    bad = []
    for k in set(got) | set(want):
        g, w = got.get(k), want.get(k)
        if g is None or w is None or abs(g - w) > 1e-6 * max(1, abs(w)):
            bad.append((dict(k), g, w))
    check(f"{metric} ({len(want)} series)", not bad, f"{bad[:3]}")


services = snap["services"]
# Everyone's up and recent.
up = series("up")
check("Prometheus scraped the target (up == 1)", up and all(v == 1 for v in up.values()), f"{up}")
age = series("ipvstop_snapshot_age_seconds")
check("the snapshot's age is served and small", age and all(0 <= v < 30 for v in age.values()), f"{age}")
om = series("ipvstop_exporter_scrapes_total")
om_count = sum(v for k, v in om.items() if ("format", "openmetrics") in k)
check("Prometheus negotiated OpenMetrics (its default Accept)", om_count > 0, f"{om}")

# Services and real servers: what does not move, in both modes.
same("ipvstop_backend_weight", [(be_labels(s, rs), rs["weight"]) for s in services for rs in s["real_servers"]])
same("ipvstop_service_persistence_timeout_seconds",
     [(svc_labels(s), (s["persistence"] or {}).get("timeout_s")) for s in services])
same("ipvstop_service_info", [(dict(svc_labels(s), scheduler=s["scheduler"], flags=",".join(s["flags"]), pe_name=s["pe_name"] or ""), 1)
                              for s in services])
same("ipvstop_backend_info", [(dict(be_labels(s, rs), forward=rs["forward"]), 1) for s in services for rs in s["real_servers"]])
same("ipvstop_service_backends", [(dict(svc_labels(s), state="all"), len(s["real_servers"])) for s in services]
     + [(dict(svc_labels(s), state="up"), sum(1 for rs in s["real_servers"] if rs["weight"] > 0)) for s in services])
same("ipvstop_ipvs_table_size", [({}, snap["ipvs"]["table_size"])])
host = snap.get("host") or {}
same("ipvstop_host_info", [({"nodename": host.get("hostname") or "", "release": host.get("kernel_release") or ""}, 1)]
     if host.get("hostname") or host.get("kernel_release") else [])

want_kinds = {f["kind"] for f in snap["findings"]}

if mode == "exact":
    same("ipvstop_backend_connections_active", [(be_labels(s, rs), rs["active_conns"]) for s in services for rs in s["real_servers"]])
    same("ipvstop_backend_connections_inactive", [(be_labels(s, rs), rs["inactive_conns"]) for s in services for rs in s["real_servers"]])
    same("ipvstop_backend_connections_persistent", [(be_labels(s, rs), rs["persistent_conns"]) for s in services for rs in s["real_servers"]])
    same("ipvstop_backend_threshold_upper", [(be_labels(s, rs), rs["upper_threshold"]) for s in services for rs in s["real_servers"]])
    same("ipvstop_backend_threshold_lower", [(be_labels(s, rs), rs["lower_threshold"]) for s in services for rs in s["real_servers"]])
    same("ipvstop_service_connections_active", [(svc_labels(s), s["active_conns"]) for s in services])
    same("ipvstop_service_connections_inactive", [(svc_labels(s), s["inactive_conns"]) for s in services])
    same("ipvstop_service_connections_persistent", [(svc_labels(s), s["persistent_conns"]) for s in services])
    for name, field in [("connections", "conns"), ("incoming_packets", "in_packets"), ("outgoing_packets", "out_packets"),
                        ("incoming_bytes", "in_bytes"), ("outgoing_bytes", "out_bytes")]:
        same(f"ipvstop_backend_{name}_total",
             [(be_labels(s, rs), (rs["stats"] or {}).get(field)) for s in services for rs in s["real_servers"]])
        same(f"ipvstop_service_{name}_total", [(svc_labels(s), (s["stats"] or {}).get(field)) for s in services])
        same(f"ipvstop_ipvs_{name}_total", [({}, ((snap["global"] or {}).get("stats") or {}).get(field))])
    c = snap["connections"]
    same("ipvstop_connection_table_entries", [({}, c["total"])])
    same("ipvstop_connection_table_templates", [({}, c["templates"])])
    same("ipvstop_connection_table_entries_by_protocol", [({"proto": p.upper()}, n) for p, n in c["by_protocol"].items()])
    same("ipvstop_connection_table_templates_by_state", [({"state": st}, n) for st, n in c["templates_by_state"].items()])
    by_state = {}
    for k, v in series("ipvstop_connection_table_entries_by_state").items():
        st = dict(k)["state"]
        by_state[st] = by_state.get(st, 0) + v
    check("ipvstop_connection_table_entries_by_state summed over proto = by_state", by_state == {k: float(v) for k, v in c["by_state"].items()},
          f"{by_state} vs {c['by_state']}")
    same("ipvstop_connection_table_memory_bytes", [({}, snap["global"].get("entry_memory_bytes"))])
    # Templates per real server, from the template list (--top 0: every one).
    tpl = {}
    for t in snap["templates"]:
        tpl[(t["service"], t["real_server"])] = tpl.get((t["service"], t["real_server"]), 0) + 1
    same("ipvstop_backend_templates", [(be_labels(s, rs), tpl.get((s["id"], rs["id"]), 0)) for s in services for rs in s["real_servers"]])
    # Top clients per real server: the n exported are the n busiest of snapshot --json's.
    per_rs = {}
    for cl in snap["clients"] or []:
        for l in cl["real_servers"]:
            if l["exists"]:
                per_rs.setdefault((l["service"], l["real_server"]), []).append((cl["address"], l["active_conns"] + l["inactive_conns"]))
    got = {}
    for k, v in series("ipvstop_backend_top_client_connections").items():
        d = dict(k)
        k = tuple(d.get(n, "") for n in ("local_address", "local_port", "proto", "local_mark", "family", "remote_address", "remote_port"))
        got.setdefault(k, []).append((int(d["rank"]), d["client"], v))
    bad = []
    n_series = 0
    for s in services:
        sl = svc_labels(s)
        for rs in s["real_servers"]:
            want = sorted((n for _, n in per_rs.get((s["id"], rs["id"]), []) if n > 0), reverse=True)[:top_clients]
            k = (sl["local_address"], sl["local_port"], sl["proto"], sl["local_mark"], sl["family"], rs["address"], str(rs["port"]))
            g = sorted(got.get(k, []))
            n_series += len(g)
            counts = dict(per_rs.get((s["id"], rs["id"]), []))
            if [v for _, _, v in g] != want or any(counts.get(c) != v for _, c, v in g):
                bad.append((s["id"], rs["id"], g[:3], want[:3]))
    check(f"ipvstop_backend_top_client_connections: the {top_clients} busiest clients of each real server ({n_series} series)", not bad, f"{bad[:3]}")
    sysctls = snap.get("sysctls") or {}
    same("ipvstop_sysctl", [({"name": k}, v) for k, v in sysctls.items() if isinstance(v, int)])
    # Findings: the exporter's analyzer holds findings for their hysteresis; every raised
    # one must be one the one-shot analysis sees (imbalance may still be held).
    fkeys = {dict(k)["key"] for k in series("ipvstop_finding")}
    want_keys = {f["key"] for f in snap["findings"]}
    # quiescent_fed rests on history (a real server quiescent since first seen, fed since):
    # one snapshot cannot show it, the exporter's running analysis of every frame can.
    unjudged = {"quiescent_fed"}
    extra = {k for k in fkeys - want_keys if k.split("/")[0] not in unjudged}
    missing = {k for k in want_keys - fkeys if not k.startswith("imbalance/")}
    check(f"ipvstop_finding keys are snapshot --json's ({len(fkeys)} raised, {len(want_keys)} one-shot; imbalance may be held, {sorted(unjudged)} not judged one-shot)",
          not extra and not missing, f"extra {sorted(extra)} missing {sorted(missing)}")
else:
    fkeys = {dict(k)["kind"] for k in series("ipvstop_finding")}
    check(f"ipvstop_finding kinds ({sorted(fkeys)}) are ones snapshot --json raises", fkeys and fkeys <= want_kinds,
          f"{sorted(fkeys)} vs {sorted(want_kinds)}")
    n = len(series("ipvstop_backend_top_client_connections"))
    nrs = sum(len(s["real_servers"]) for s in services)
    check(f"top clients bounded: {n} series <= {top_clients} x {nrs} real servers", 0 < n <= top_clients * nrs)

print(f"compare {job}: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
