#!/usr/bin/env python3
"""Host side of the lab's capture round trip (Tests/Lab/scenarios/capture.sh): reads each
capture taken inside the VM (as root, as nobody) back here, outside, with this machine's
ipvstop, and checks it field by field

  1. against the same capture read back inside the VM: equal, every field (only the path
     read, read costs, the files' read times and the table check's churn allowance, which
     is worked out from the read's own duration, may differ; the verdict may not);
  2. against the live snapshots taken just before and just after it, as the same user:
     what does not move (host, kernel, services and their settings, real servers, weights,
     thresholds, sysctls, timeouts, sync daemons, HZ, netlink used or not) equal; counters
     between before and after; connection counts between the two.

    capture_compare.py CAPDIR IPVSTOP

Prints one `ok - ...` or `FAIL - ...` line per check and `capture: N passed, M failed`;
exits non-zero on a failure.
"""
import json
import subprocess
import sys

results = []


def check(name, cond, detail=""):
    results.append((bool(cond), name, detail))


def normalized(s):
    """The snapshot without what a reading may change: the path read, read costs and the
    files' read times (the capture's own times are kept: they come from its manifest)."""
    s = json.loads(json.dumps(s))
    s["source"].pop("proc_root", None)
    for f in s["source"].get("proc_files", []):
        f.pop("read_at", None)
        f.pop("cost", None)
    if s.get("connections"):
        s["connections"].pop("cost", None)
        # The churn allowance is the rates times this read's own duration (TableCheck), so
        # it differs between two reads of the same files; whole or partial must not.
        c = s["connections"].get("completeness")
        if isinstance(c, dict):
            c.pop("tolerance", None)
            c.pop("detail", None)
    return s


def diff(a, b, path="", out=None):
    out = [] if out is None else out
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only on one side")
            else:
                diff(a[k], b[k], f"{path}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} vs {len(b)} items")
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, f"{path}[{i}]", out)
    elif a != b:
        out.append(f"{path}: {a!r} vs {b!r}")
    return out


def between(v, a, b):
    if v is None or a is None or b is None:
        return v is None and a is None and b is None
    return min(a, b) <= v <= max(a, b)


SETTINGS_SVC = ["protocol", "family", "address", "port", "fwmark", "scheduler", "flags", "persistence", "pe_name"]
SETTINGS_RS = ["address", "port", "family", "forward", "weight", "upper_threshold", "lower_threshold", "tunnel"]
COUNTS = ["active_conns", "inactive_conns", "persistent_conns"]
STATS = ["conns", "in_packets", "out_packets", "in_bytes", "out_bytes"]


def entity_errors(name, settings, c, a, b, rates):
    """A service's or real server's fields in the capture (c) against the live snapshots just
    before (a) and after (b): settings as live, counts and stats between the two; whether stats
    (and, for a service, rates) are given at all, as live."""
    errors = []
    for k in settings:
        if c[k] != a[k]:
            errors.append(f"{name} {k}: {c[k]!r} vs {a[k]!r}")
    for k in COUNTS:
        if not between(c[k], a[k], b[k]):
            errors.append(f"{name} {k}: {c[k]} not within {a[k]}..{b[k]}")
    given = lambda x: (x["stats"] is not None, x["rates"] is not None) if rates else (x["stats"] is not None,)
    if given(c) != given(a):
        errors.append(f"{name}: stats{'/rates' if rates else ''} present {c['stats'] is not None} vs live {a['stats'] is not None}")
    elif c["stats"] is not None:
        for k in STATS:
            if not between(c["stats"][k], a["stats"][k], b["stats"][k]):
                errors.append(f"{name} stats.{k}: {c['stats'][k]} not within {a['stats'][k]}..{b['stats'][k]}")
    return errors


def against_live(user, c, a, b):
    check(f"{user}: host name and kernel release as live ({c.get('host')})",
          c.get("host") == a.get("host") and (c.get("host") or {}).get("kernel_release"))
    check(f"{user}: IPVS version and table size as live", c["ipvs"] == a["ipvs"])
    check(f"{user}: netlink used as live ({c['source']['netlink']['used']})",
          c["source"]["netlink"]["used"] == a["source"]["netlink"]["used"] == b["source"]["netlink"]["used"])
    check(f"{user}: HZ as live ({c['source']['hz']})", c["source"]["hz"] == a["source"]["hz"])
    check(f"{user}: sysctls as live", c["sysctls"] == a["sysctls"], diff(c["sysctls"], a["sysctls"])[:3])
    for k in ["timeouts", "sync_daemons", "table_size", "entry_bytes"]:
        check(f"{user}: global.{k} as live", c["global"].get(k) == a["global"].get(k), f"{c['global'].get(k)} vs {a['global'].get(k)}")
    check(f"{user}: unavailable fields as live", sorted(c["source"]["unavailable"]) == sorted(a["source"]["unavailable"]),
          f"{c['source']['unavailable']} vs {a['source']['unavailable']}")
    ids = [s["id"] for s in c["services"]]
    check(f"{user}: the same services in the same order ({len(ids)})",
          ids == [s["id"] for s in a["services"]] == [s["id"] for s in b["services"]] and ids)
    errors, nrs = [], 0
    for sc, sa, sb in zip(c["services"], a["services"], b["services"]):
        errors += entity_errors(sc["id"], SETTINGS_SVC, sc, sa, sb, rates=True)
        rids = [r["id"] for r in sc["real_servers"]]
        if rids != [r["id"] for r in sa["real_servers"]] or rids != [r["id"] for r in sb["real_servers"]]:
            errors.append(f"{sc['id']}: real servers {rids}")
            continue
        for rc, ra, rb in zip(sc["real_servers"], sa["real_servers"], sb["real_servers"]):
            nrs += 1
            errors += entity_errors(f"{sc['id']} {rc['id']}", SETTINGS_RS, rc, ra, rb, rates=False)
    check(f"{user}: every service and real server field as live ({len(ids)} services, {nrs} real servers)", not errors, errors[:6])
    gc, ga, gb = c["global"]["stats"], a["global"]["stats"], b["global"]["stats"]
    bad = [k for k in STATS if gc and not between(gc[k], ga[k], gb[k])]
    check(f"{user}: global counters between the live snapshots around the capture", gc and not bad, bad)
    cc, ca, cb = c["connections"], a["connections"], b["connections"]
    check(f"{user}: connection entries between the live snapshots ({cc and cc['total']} in {ca['total']}..{cb['total']})",
          cc and between(cc["total"], ca["total"], cb["total"]) and between(cc["templates"], ca["templates"], cb["templates"]))


def main():
    cap, ipvstop = sys.argv[1], sys.argv[2]
    for user, netlink in [("root", True), ("nobody", False)]:
        rc = open(f"{cap}/capture-{user}.exitcode").read().strip() if _exists(f"{cap}/capture-{user}.exitcode") else "missing"
        check(f"{user}: ipvstop capture in the VM exits 0 ({rc})", rc == "0", _head(f"{cap}/capture-{user}.stderr"))
        if rc != "0":
            continue
        d = f"{cap}/ipvstop-capture-{user}"
        manifest = open(f"{d}/ipvstop-capture").read()
        check(f"{user}: the manifest says netlink {'recorded' if netlink else 'unavailable'}",
              ("netlink: recorded" in manifest) == netlink and (netlink or "netlink: unavailable" in manifest))
        r = subprocess.run([ipvstop, "snapshot", "--json", "--top", "0", "--proc-root", d], capture_output=True, text=True)
        check(f"{user}: the capture reads back outside the VM (exit {r.returncode})", r.returncode == 0, r.stderr[:300])
        if r.returncode != 0:
            continue
        outside = json.loads(r.stdout)
        inside = json.load(open(f"{cap}/capture-{user}-inside.json"))
        d2 = diff(normalized(outside), normalized(inside))
        check(f"{user}: read outside equals read inside, every field", not d2, d2[:6])
        check(f"{user}: stats {'kept' if netlink else 'unavailable'} ({outside['source']['netlink']})",
              outside["source"]["netlink"]["used"] == netlink
              and any(s["stats"] is not None for s in outside["services"]) == netlink)
        against_live(user, outside, json.load(open(f"{cap}/capture-{user}-live-before.json")),
                     json.load(open(f"{cap}/capture-{user}-live-after.json")))
    passed = sum(1 for ok, _, _ in results if ok)
    for ok, name, detail in results:
        print(("ok - " if ok else "FAIL - ") + name + ("" if ok or not detail else f": {detail}"))
    print(f"capture: {passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


def _exists(p):
    try:
        open(p).close()
        return True
    except OSError:
        return False


def _head(p):
    try:
        return open(p).read()[:300]
    except OSError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
