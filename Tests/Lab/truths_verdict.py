#!/usr/bin/env python3
"""The verdict of the issue-21 lab scenario (Tests/Lab/scenarios/truths.sh), from what it left
in its result folder; runs in the VM at the end of the scenario, and on the host to judge a
result folder again:

    python3 Tests/Lab/truths_verdict.py RESDIR VIP R1 R2 RUNS
"""
import json, sys, os
res, vip, r1, r2, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
fails = 0
def ok(cond, msg):
    global fails
    print(("PASS " if cond else "FAIL ") + msg)
    if not cond: fails += 1
def load(name):
    with open(os.path.join(res, name + ".json")) as f: return json.load(f)
def rc(name): return int(open(os.path.join(res, name + ".exitcode")).read())
def findings(j): return {f["key"]: f for f in j["findings"]}

for who in ("root", "nobody"):
    j = load("healthy-" + who)
    ok(j["findings"] == [] and rc("healthy-" + who) == 0, "healthy (%s): no finding, exit 0 (got %d: %s)" % (who, rc("healthy-" + who), sorted(findings(j))))

attempts = dict(l.split(" ", 1) for l in open(os.path.join(res, "down-attempts.txt")).read().splitlines())
for p in ("81", "82", "83"):
    ok(attempts.get(p, "").strip() != "connected", "VIP:%s takes no new connection (%s)" % (p, attempts.get(p, "?").strip()))
want = {"81": "no_real_servers", "82": "all_weight_zero", "83": "all_over_threshold"}
j = findings(load("down-root"))
for p, reason in want.items():
    f = j.get("service_down/tcp:%s:%s" % (vip, p))
    ok(f is not None and f["severity"] == "critical" and f["evidence"]["reason"] == reason,
       "root: service_down/tcp:%s:%s critical, reason %s (got %s)" % (vip, p, reason, f and (f["severity"], f["evidence"]["reason"])))
    if f: ok("no flag that tells a drain on purpose" in f["explanation"], "root: :%s says the kernel cannot tell a drain on purpose" % p)
ok(sorted(k for k in j if k.startswith("service_down/")) == sorted("service_down/tcp:%s:%s" % (vip, p) for p in want),
   "root: service_down on exactly :81 :82 :83 (healthy :80 not)")
ok(rc("down-root") == 2, "root: exit 2 (critical), got %d" % rc("down-root"))
jn = load("down-nobody"); n = findings(jn)
for p in ("81", "82"):
    f = n.get("service_down/tcp:%s:%s" % (vip, p))
    ok(f is not None and f["severity"] == "critical" and f["evidence"]["reason"] == want[p], "nobody: service_down on :%s (%s)" % (p, want[p]))
ok("service_down/tcp:%s:83" % vip not in n, "nobody: :83 not judged (its thresholds are netlink's)")
ok(any("upper thresholds unknown" in l for l in jn["limitations"]), "nobody: the limitations say thresholds are unknown")
ok(not any("upper thresholds unknown" in l for l in load("down-root")["limitations"]), "root: no such limitation")
def svc(name, sid):
    return [s for s in load(name)["services"] if s["id"] == sid][0]
ok(svc("down-snapshot-nobody", "tcp:%s:81" % vip)["persistent_conns"] is None, "nobody: persistent_conns of :81 (no real server) is null")
ok(svc("down-snapshot-root", "tcp:%s:81" % vip)["persistent_conns"] == 0, "root: persistent_conns of :81 is 0")
sn = load("down-snapshot-nobody")
eb = sn["global"]["entry_bytes"]
una = [u for u in sn["source"]["unavailable"] if u.startswith("global.entry_bytes")]
ok((eb is not None and not una) or (eb is None and una and "permission denied (root only)" in una[0]),
   "nobody: entry_bytes %s, %s" % (eb, una))

j = findings(load("rogues-root"))
f = j.get("imbalance/tcp:%s:84/%s:84" % (vip, r1))
ok(f is not None, "rogues: imbalance on r1 (%s)" % sorted(j))
if f:
    c = f["evidence"]["culprits"]
    ok([x.split(":")[0] for x in c] == ["172.16.3.66", "172.16.3.67"] and f["evidence"]["culprits_sufficient"] == "yes",
       "rogues: culprits %s, sufficient %s" % (c, f["evidence"]["culprits_sufficient"]))
    ok("2 clients hold" in f["explanation"], "rogues: the text names two clients: " + f["explanation"][:200])
for ip in ("172.16.3.66", "172.16.3.67"):
    ok("rogue_client/tcp:%s:84/%s:84/%s" % (vip, r1, ip) in j, "rogues: rogue_client %s" % ip)

def ipvsadm_ln(path):
    """{service id: {real server: (ActiveConn, InActConn)}} from ipvsadm -Ln."""
    out, cur = {}, None
    for line in open(path):
        f = line.split()
        if not f: continue
        if f[0] in ("TCP", "UDP", "SCTP"):
            cur = "%s:%s" % (f[0].lower(), f[1]); out[cur] = {}
        elif f[0] == "FWM":
            cur = "fwmark:%s" % f[1]; out[cur] = {}
        elif f[0] == "->" and cur and f[1] != "RemoteAddress:Port":
            out[cur][f[1]] = (int(f[4]), int(f[5]))
    return out

if os.path.exists(os.path.join(res, "fwmark-root.json")):
    before = ipvsadm_ln(os.path.join(res, "fwmark-ipvsadm-before.txt"))
    after = ipvsadm_ln(os.path.join(res, "fwmark-ipvsadm-after.txt"))
    ok(before == after, "fwmark: ipvsadm -Ln the same before and after the snapshot")
    for who in ("root", "nobody"):
        j = load("fwmark-" + who)
        agg = {}
        for c in j["clients"]:
            for r in c["real_servers"]:
                a = agg.setdefault((r["service"], r["real_server"]), [0, 0])
                a[0] += r["active_conns"]; a[1] += r["inactive_conns"]
        how = {x["service"]: x["entries"] for x in j["analysis"]["attribution"]}
        decided = ["tcp:%s:85" % vip, "fwmark:1", "tcp:%s:87" % vip, "fwmark:3"]
        for sid in decided:
            for rs, k in before.get(sid, {}).items():
                got = tuple(agg.get((sid, rs), [0, 0]))
                ok(got == k, "fwmark (%s): %s -> %s: clients' aggregate %s, ipvsadm -Ln %s" % (who, sid, rs, got, k))
        ok(how.get("fwmark:1") == "kernel_counts" and how.get("fwmark:3") == "kernel_counts" and how.get("tcp:%s:87" % vip) == "kernel_counts",
           "fwmark (%s): attribution %s" % (who, {k: v for k, v in how.items() if k.startswith("fwmark") or k.endswith((":85", ":86", ":87"))}))
        ok(how.get("tcp:%s:86" % vip) == "undecided" and how.get("fwmark:2") == "undecided", "fwmark (%s): :86 / FWM 2 said undecided" % who)
        ok(any("cannot tell which scheduled" in l for l in j["analysis"]["limitations"]), "fwmark (%s): a limitation says what the table cannot tell" % who)
        g = [x for x in j["groups"] if x["service"] == "fwmark:1" and x["group"] == "172.16.3.0/24"]
        ok(len(g) == 1 and g[0]["active_conns"] == before["fwmark:1"]["%s:0" % r2][0],
           "fwmark (%s): FWM 1's /24 group holds %s active, ipvsadm %s" % (who, g and g[0]["active_conns"], before["fwmark:1"]["%s:0" % r2][0]))
        t = [x for x in j["templates"] if x["service"] == "fwmark:1" and x["client"] == "172.16.3.0"]
        ok(len(t) == 1 and t[0]["controlled_conns"] == before["fwmark:1"]["%s:0" % r2][0],
           "fwmark (%s): FWM 1's template controls %s, ipvsadm %s" % (who, t and t[0]["controlled_conns"], before["fwmark:1"]["%s:0" % r2][0]))
        dead = [f["key"] for f in load("fwmark-" + who)["findings"] if f["kind"] == "dead_destination" and ":85/" in f["key"]]
        ok(dead == [], "fwmark (%s): no dead destination on :85 (%s)" % (who, dead))

good = 0
for line in open(os.path.join(res, "quiescent-conns.txt")):
    run, k, before, after = line.split()
    delta = int(after) - int(before)
    q = findings(load("q" + run)).get("quiescent_fed/tcp:%s:443/%s:443" % (vip, r2))
    got = q and q["evidence"]["new_conns_since_quiescent"]
    counter = q and q["evidence"]["conns_counter_delta"]
    same = q is not None and got == delta and counter == delta and delta > 0
    good += same
    ok(same, "quiescent run %s: kernel Conns delta %d, table count %s, counter %s, unseen reads %s" % (run, delta, got, counter, q and q["evidence"]["table_reads_not_counted"]))
ok(good == runs, "quiescent: %d of %d runs exact" % (good, runs))
sys.exit(1 if fails else 0)
