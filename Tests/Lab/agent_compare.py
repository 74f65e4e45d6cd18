#!/usr/bin/env python3
"""Judge the agent lab's capture: ipvstop's SNMP subagent against ipvsadm and keepalived's own
SNMP subagent, on the same kernel services (Tests/Lab/scenarios/agent.sh makes the capture).

    agent_compare.py CAPTURE_DIR [--base-oid OID]
    agent_compare.py --selftest [SAMPLE_DIR]      (default: Tests/Fixtures/agent-lab-6.1)

CAPTURE_DIR holds, taken in this order within a few seconds:
    ipvsadm-before/Ln.txt, ipvsadm-before/Ln-persistent-conn.txt
    ipvstop-realservers.walk     snmpbulkwalk -On of IPVSTOP-MIB::ipvsRealServerTable
    keepalived-realservers.walk  snmpbulkwalk -On of KEEPALIVED-MIB::realServerTable
    ipvstop-services.walk        snmpbulkwalk -On of IPVSTOP-MIB::ipvsServiceTable
    keepalived-virtualservers.walk  snmpbulkwalk -On of KEEPALIVED-MIB::virtualServerTable
    ipvsadm-after/ (as before), timing.txt (optional: "EPOCH what" lines)

For every real server of every service ipvsadm lists, ipvstop must have a row (and no row that
ipvsadm lacks), with Weight, ActiveConn, InActConn and PersistConn equal to
`ipvsadm -Ln --persistent-conn` and to keepalived's realServerWeight,
realServerStatsActiveConns, realServerStatsInactiveConns, realServerStatsPersistentConns. A
figure that ipvsadm shows differently before and after the walks may lie anywhere between the
two readings. Where keepalived and ipvsadm themselves disagree, that is reported as a finding
about keepalived (`finding - ...`), not as a failure of ipvstop, and the figure is judged
against ipvsadm (the kernel) only; so is a real server the kernel has and keepalived does not
(one added with ipvsadm behind keepalived's back). ipvstop's service rows are checked too: one per service,
with the scheduler, the persistence timeout and netmask (absent when not persistent), the
real-server count, the total weight and the sums of ActiveConn/InActConn/PersistConn.

Prints `ok - ...` per group of checks, `FAIL - ...` per mismatch, `finding - ...` per
keepalived/ipvsadm disagreement, then one verdict line. Exit status: 0 every figure agrees,
1 a mismatch, 2 missing or unusable data. Only the standard library (and Tests/Lab/compare.py's
ipvsadm parsers).
"""
import ipaddress
import os
import re
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from compare import PCONN, _service_head, addr_id, parse_columns, parse_ln, service_id  # noqa: E402

IPVSTOP_BASE = "1.3.6.1.4.1.32473.1"
# KEEPALIVED-MIB (keepalived 2.2.7, /usr/share/snmp/mibs/KEEPALIVED-MIB.txt): check = .3
KEEPALIVED_CHECK = "1.3.6.1.4.1.9586.100.5.3"

# IPVSTOP-MIB columns (MIBs/IPVSTOP-MIB.txt)
SVC_KEY, SVC_SCHED, SVC_PTIMEOUT, SVC_PMASK = 2, 10, 12, 13
SVC_REALS, SVC_WEIGHT, SVC_ACTIVE, SVC_INACTIVE, SVC_PERSIST = 15, 16, 17, 18, 19
RS_ADDRTYPE, RS_ADDR, RS_PORT, RS_WEIGHT, RS_ACTIVE, RS_INACTIVE, RS_PERSIST, RS_KEY = 2, 3, 4, 6, 7, 8, 9, 24
# KEEPALIVED-MIB columns
KVS_TYPE, KVS_FWMARK, KVS_ADDRTYPE, KVS_ADDR, KVS_PORT, KVS_PROTO = 2, 4, 5, 6, 7, 8
KRS_TYPE, KRS_ADDRTYPE, KRS_ADDR, KRS_PORT, KRS_STATUS, KRS_WEIGHT = 2, 3, 4, 5, 6, 7
KRS_ACTIVE, KRS_INACTIVE, KRS_PERSIST = 15, 16, 17

FIELDS = [  # (name, ipvsadm --persistent-conn column, IPVSTOP-MIB column, KEEPALIVED-MIB column)
    ("Weight", "weight", RS_WEIGHT, KRS_WEIGHT),
    ("ActiveConn", "active_conns", RS_ACTIVE, KRS_ACTIVE),
    ("InActConn", "inactive_conns", RS_INACTIVE, KRS_INACTIVE),
    ("PersistConn", "persistent_conns", RS_PERSIST, KRS_PERSIST),
]


class Unusable(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# snmpwalk -On output
# ---------------------------------------------------------------------------------------------

def _value(text):
    """'Gauge32: 5' / 'INTEGER: ipv4(1)' / 'STRING: "x"' / 'Hex-STRING: C0 A8 01 02' -> value."""
    typ, sep, v = text.partition(": ")
    if not sep:
        return text.strip()
    v = v.strip()
    if typ == "Hex-STRING":
        return bytes(int(x, 16) for x in v.split())
    if typ == "STRING":
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = v[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        return v
    if typ in ("INTEGER", "Gauge32", "Counter32", "Counter64", "Unsigned32", "Integer32"):
        m = re.fullmatch(r"(?:[A-Za-z][\w-]*\()?(-?\d+)\)?(?: .*)?", v)
        if m:
            return int(m.group(1))
    return v


def parse_walk(path):
    """{oid tuple: value}; a value wrapped onto more lines (long Hex-STRINGs) is joined."""
    if not os.path.exists(path):
        raise Unusable("missing %s" % path)
    out = {}
    last = None
    raw = {}
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        m = re.match(r"^\.?((?:\d+\.)+\d+) = (.*)$", line)
        if m:
            last = tuple(int(x) for x in m.group(1).split("."))
            raw[last] = m.group(2)
        elif last is not None and line.strip():
            raw[last] += " " + line.strip()
    for k, v in raw.items():
        if v.startswith("No Such") or v.startswith("No more variables"):
            continue
        out[k] = _value(v)
    return out


def columns(walk, base):
    """{column: {index tuple: value}} of the table entry at BASE (an OID text of the entry)."""
    prefix = tuple(int(x) for x in base.split("."))
    out = {}
    for oid, v in walk.items():
        if oid[:len(prefix)] == prefix and len(oid) > len(prefix) + 1:
            out.setdefault(oid[len(prefix)], {})[oid[len(prefix) + 1:]] = v
    return out


def as_bytes(v):
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("latin-1", errors="replace")
    return b""


def inet_text(v):
    b = as_bytes(v)
    return str(ipaddress.ip_address(b)) if len(b) in (4, 16) else None


# ---------------------------------------------------------------------------------------------
# The judgement
# ---------------------------------------------------------------------------------------------

class Judge:
    def __init__(self):
        self.fails = []
        self.findings = []
        self.oks = []
        self.figures = {"ipvsadm": 0, "keepalived": 0, "services": 0, "identity": 0}

    def fail(self, msg):
        self.fails.append(msg)

    def finding(self, msg):
        self.findings.append(msg)


def span(values):
    lo, hi = min(values), max(values)
    return str(lo) if lo == hi else "%d..%d" % (lo, hi)


def load(capdir, base_oid):
    ipvsadm = {}
    for when in ("before", "after"):
        d = os.path.join(capdir, "ipvsadm-" + when)
        try:
            ln = parse_ln(open(os.path.join(d, "Ln.txt")).read())
            pc = parse_columns(open(os.path.join(d, "Ln-persistent-conn.txt")).read(), PCONN)
        except (OSError, ValueError) as e:
            raise Unusable("ipvsadm-%s: %s" % (when, e))
        ipvsadm[when] = (ln, pc)
    walks = {}
    for name in ("ipvstop-realservers", "ipvstop-services", "keepalived-realservers",
                 "keepalived-virtualservers"):
        walks[name] = parse_walk(os.path.join(capdir, name + ".walk"))
        if not walks[name]:
            raise Unusable("%s.walk is empty (see %s.walk.stderr)" % (name, name))
    ivs = columns(walks["ipvstop-services"], base_oid + ".1.4.1")
    irs = columns(walks["ipvstop-realservers"], base_oid + ".1.5.1")
    kvs = columns(walks["keepalived-virtualservers"], KEEPALIVED_CHECK + ".3.1")
    krs = columns(walks["keepalived-realservers"], KEEPALIVED_CHECK + ".4.1")
    for name, t, col in (("ipvsServiceKey", ivs, SVC_KEY), ("ipvsRealServerKey", irs, RS_KEY),
                         ("virtualServerType", kvs, KVS_TYPE), ("realServerAddress", krs, KRS_ADDR)):
        if not t.get(col):
            raise Unusable("no %s column in the walk" % name)
    return ipvsadm, ivs, irs, kvs, krs


def keepalived_services(kvs, krs, j):
    """{service id: {"index": vs index, "reals": {rs id: rs index tuple}}} from KEEPALIVED-MIB."""
    protos = {1: "tcp", 2: "udp", 3: "sctp"}
    out = {}
    for (vi,), typ in sorted(kvs[KVS_TYPE].items()):
        reals = {}
        fams = set()
        for idx, addr in sorted(krs.get(KRS_ADDR, {}).items()):
            if idx[0] != vi:
                continue
            if krs.get(KRS_TYPE, {}).get(idx) == 2:      # a sorry server: not in the kernel
                continue
            a = inet_text(addr)
            fam = "ipv6" if ":" in (a or "") else "ipv4"
            fams.add(fam)
            reals[addr_id(a, krs.get(KRS_PORT, {}).get(idx, 0), fam)] = idx
        if typ == 1:
            sid = service_id("fwmark", fwmark=kvs[KVS_FWMARK].get((vi,)),
                             family="ipv6" if fams == {"ipv6"} else "ipv4")
        elif typ == 2:
            a = inet_text(kvs[KVS_ADDR].get((vi,)))
            proto = protos.get(kvs[KVS_PROTO].get((vi,)), "?")
            sid = service_id(proto, a, kvs[KVS_PORT].get((vi,)), "ipv6" if ":" in (a or "") else "ipv4")
        else:
            j.finding("keepalived virtual server %d is a group: not compared" % vi)
            continue
        out[sid] = {"index": vi, "reals": reals}
    return out


def judge(capdir, base_oid=IPVSTOP_BASE):
    j = Judge()
    ipvsadm, ivs, irs, kvs, krs = load(capdir, base_oid)
    (ln_b, pc_b), (ln_a, pc_a) = ipvsadm["before"], ipvsadm["after"]

    services = [s["id"] for s in ln_b["services"]]
    if services != [s["id"] for s in ln_a["services"]]:
        j.fail("ipvsadm lists different services before (%s) and after (%s) the walks"
               % (services, [s["id"] for s in ln_a["services"]]))
    if not services:
        raise Unusable("ipvsadm lists no service")

    # ipvstop's rows, by their keys
    isvc = {v: i[0] for i, v in ivs[SVC_KEY].items()}
    if len(isvc) != len(ivs[SVC_KEY]):
        j.fail("ipvstop: two service rows with the same key: %s" % sorted(ivs[SVC_KEY].values()))
    extra = sorted(set(isvc) - set(services))
    missing = sorted(set(services) - set(isvc))
    j.figures["services"] += 1
    if extra or missing:
        j.fail("ipvstop's service rows differ from ipvsadm: missing %s, extra %s" % (missing, extra))
    irows = {}
    for idx, key in irs[RS_KEY].items():
        irows.setdefault(idx[0], {})[key] = idx
    kserv = keepalived_services(kvs, krs, j)

    nreal = 0
    for sid in services:
        reals_b = pc_b.get(sid, {}).get("real_servers", {})
        reals_a = pc_a.get(sid, {}).get("real_servers", {})
        if not reals_b:
            j.finding("%s: ipvsadm lists no real server" % sid)
        if sorted(reals_b) != sorted(reals_a):
            j.fail("%s: ipvsadm's real servers changed between before and after: %s / %s"
                   % (sid, sorted(reals_b), sorted(reals_a)))
        si = isvc.get(sid)
        mine = irows.get(si, {}) if si is not None else {}
        j.figures["services"] += 1
        if si is not None and sorted(mine) != sorted(reals_b):
            j.fail("%s: ipvstop's real-server rows %s, ipvsadm lists %s" % (sid, sorted(mine), sorted(reals_b)))
        k = kserv.get(sid)
        if k is None:
            j.fail("%s: keepalived's virtualServerTable has no such service (its services: %s)"
                   % (sid, sorted(kserv)))
        elif sorted(k["reals"]) != sorted(reals_b):
            j.finding("%s: keepalived's real servers %s, the kernel's %s" % (sid, sorted(k["reals"]), sorted(reals_b)))

        for rid in reals_b:
            nreal += 1
            b, a = reals_b[rid], reals_a.get(rid, reals_b[rid])
            iidx = mine.get(rid)
            kidx = k["reals"].get(rid) if k else None
            if iidx is None:
                j.fail("%s %s: no ipvstop row" % (sid, rid))
            else:
                # the row's own address columns say the same as its key
                j.figures["identity"] += 1
                got = addr_id(inet_text(irs.get(RS_ADDR, {}).get(iidx)), irs.get(RS_PORT, {}).get(iidx),
                              "ipv6" if irs.get(RS_ADDRTYPE, {}).get(iidx) == 2 else "ipv4")
                if got != rid:
                    j.fail("%s %s: ipvstop row %s has address columns %s" % (sid, rid, iidx, got))
            for name, col, icol, kcol in FIELDS:
                kernel = (b[col], a[col])
                lo, hi = min(kernel), max(kernel)
                where = "%s %s %s" % (sid, rid, name)
                iv = irs.get(icol, {}).get(iidx) if iidx is not None else None
                kv = krs.get(kcol, {}).get(kidx) if kidx is not None else None
                if iidx is not None:
                    j.figures["ipvsadm"] += 1
                    if not isinstance(iv, int) or not lo <= iv <= hi:
                        j.fail("%s: ipvstop %s, ipvsadm %s" % (where, iv, span(kernel)))
                if kidx is None:
                    continue
                if not isinstance(kv, int):
                    j.fail("%s: keepalived gives no value (%r)" % (where, kv))
                    continue
                if not lo <= kv <= hi:
                    j.finding("%s: keepalived says %d, ipvsadm (the kernel) %s" % (where, kv, span(kernel)))
                    continue
                if iidx is None:
                    continue
                j.figures["keepalived"] += 1
                if lo == hi and iv != kv:
                    j.fail("%s: ipvstop %s, keepalived %d" % (where, iv, kv))
                elif lo != hi and not (isinstance(iv, int) and lo <= iv <= hi):
                    j.fail("%s: ipvstop %s, keepalived %d (ipvsadm %s)" % (where, iv, kv, span(kernel)))
            if kidx is not None and krs.get(KRS_STATUS, {}).get(kidx) not in (None, 1):
                j.finding("%s %s: keepalived calls it dead (realServerStatus %s)"
                          % (sid, rid, krs[KRS_STATUS][kidx]))

        # ipvstop's service row: scheduler and persistence as ipvsadm -Ln prints them...
        if si is not None:
            svc = next(x for x in ln_b["services"] if x["id"] == sid)
            mask = svc["netmask"]
            if isinstance(mask, str):
                mask = ipaddress.ip_network("0.0.0.0/" + mask).prefixlen
            for name, c, want in (("Scheduler", SVC_SCHED, svc["scheduler"]),
                                  ("PersistTimeout", SVC_PTIMEOUT, svc["timeout_s"]),
                                  ("PersistNetmask", SVC_PMASK, mask if svc["persistent"] else None)):
                j.figures["services"] += 1
                v = ivs.get(c, {}).get((si,))
                if v != want:
                    j.fail("%s ipvsService%s: ipvstop %s, ipvsadm %s" % (sid, name, v, want))
        # ...and the sums over its real servers
        if si is not None:
            sums = {
                SVC_REALS: ("RealServers", [len(reals_b), len(reals_a)]),
                SVC_WEIGHT: ("TotalWeight", [sum(max(0, r["weight"]) for r in x.values()) for x in (reals_b, reals_a)]),
                SVC_ACTIVE: ("ActiveConns", [sum(r["active_conns"] for r in x.values()) for x in (reals_b, reals_a)]),
                SVC_INACTIVE: ("InactiveConns", [sum(r["inactive_conns"] for r in x.values()) for x in (reals_b, reals_a)]),
                SVC_PERSIST: ("PersistConns", [sum(r["persistent_conns"] for r in x.values()) for x in (reals_b, reals_a)]),
            }
            for c, (name, kernel) in sums.items():
                j.figures["services"] += 1
                v = ivs.get(c, {}).get((si,))
                if not isinstance(v, int) or not min(kernel) <= v <= max(kernel):
                    j.fail("%s ipvsService%s: ipvstop %s, ipvsadm %s" % (sid, name, v, span(kernel)))

    extra_rows = sorted("%s %s" % (s, r) for s, rows in irows.items() if s not in isvc.values() for r in rows)
    if extra_rows:
        j.fail("ipvstop real-server rows of no service row: %s" % extra_rows)
    if j.figures["keepalived"] == 0:
        raise Unusable("not one real server of keepalived's realServerTable matches the kernel's")
    j.services = len(services)
    j.reals = nreal
    return j


def timing(capdir):
    """Seconds from the start of the first ipvsadm to the end of the last one, or None."""
    try:
        marks = {}
        for line in open(os.path.join(capdir, "timing.txt")):
            t, _, what = line.strip().partition(" ")
            marks[what] = float(t)
        return marks["ipvsadm after end"] - marks["ipvsadm before start"]
    except (OSError, KeyError, ValueError):
        return None


def report(capdir, base_oid=IPVSTOP_BASE, out=sys.stdout):
    try:
        j = judge(capdir, base_oid)
    except Unusable as e:
        print("FAIL - unusable capture: %s" % e, file=out)
        print("agent lab: FAILED (missing data: %s)" % e, file=out)
        return 2
    f = j.figures
    total = f["ipvsadm"] + f["keepalived"] + f["services"] + f["identity"]
    if not j.fails:
        print("ok - ipvstop has a row for each of the %d real servers of the %d services, and no other"
              % (j.reals, j.services), file=out)
        print("ok - %d real-server figures equal ipvsadm -Ln --persistent-conn (Weight, ActiveConn, InActConn, PersistConn)"
              % f["ipvsadm"], file=out)
        print("ok - %d real-server figures equal keepalived's realServerTable" % f["keepalived"], file=out)
        print("ok - %d service figures (rows, scheduler, persistence, real servers, total weight, sums) equal ipvsadm's"
              % f["services"], file=out)
    for m in j.fails:
        print("FAIL - %s" % m, file=out)
    for m in j.findings:
        print("finding - keepalived vs ipvsadm: %s" % m, file=out)
    t = timing(capdir)
    print("agent lab: %s: %d services, %d real servers, %d figures compared (%d against ipvsadm, "
          "%d against keepalived, %d service, %d identity), %d mismatches, %d keepalived findings%s"
          % ("PASS" if not j.fails else "FAIL", j.services, j.reals, total, f["ipvsadm"], f["keepalived"],
             f["services"], f["identity"], len(j.fails), len(j.findings),
             "" if t is None else ", ipvsadm before to after %.1f s" % t), file=out)
    return 0 if not j.fails else 1


# ---------------------------------------------------------------------------------------------
# Self-test on a committed capture and doctored copies of it
# ---------------------------------------------------------------------------------------------

def _edit(path, oid, new_value):
    """Replace the value of OID (text, no leading dot) in a walk file; return the old line."""
    lines = open(path).read().split("\n")
    for i, line in enumerate(lines):
        if line.startswith("." + oid + " = "):
            old = lines[i]
            lines[i] = "." + oid + " = " + new_value
            open(path, "w").write("\n".join(lines))
            return old
    raise AssertionError("no %s in %s" % (oid, path))


def _drop(path, suffix):
    """Remove every line of a walk whose OID ends with SUFFIX (a row's index)."""
    lines = open(path).read().split("\n")
    kept = [l for l in lines if not re.match(r"^\.[\d.]+\.%s = " % re.escape(suffix), l)]
    assert len(kept) < len(lines), "no row %s in %s" % (suffix, path)
    open(path, "w").write("\n".join(kept))


def selftest(sample):
    import io
    ok = True

    def run(name, d, want_rc, want_text=None, forbid_text=None):
        nonlocal ok
        buf = io.StringIO()
        rc = report(d, out=buf)
        text = buf.getvalue()
        good = rc == want_rc and (want_text is None or want_text in text) and (forbid_text is None or forbid_text not in text)
        print("%s - selftest: %s (exit %d)" % ("ok" if good else "FAIL", name, rc))
        if good and want_text is not None and want_rc != 0 or "keepalived off" in name:
            said = [l for l in text.splitlines() if want_text in l]
            if said:
                print("    | " + said[0])
        if not good:
            ok = False
            print("    wanted exit %d%s" % (want_rc, "" if want_text is None else " and %r" % want_text))
            for line in text.splitlines():
                print("    | " + line)
        return text

    text = run("the sample as captured agrees", sample, 0, "agent lab: PASS")
    m = re.search(r"(\d+) figures compared", text)
    if not m or int(m.group(1)) < 100:
        print("FAIL - selftest: the sample compares only %s figures" % (m.group(1) if m else "no"))
        ok = False
    for line in text.splitlines():
        if line.startswith("agent lab:") or line.startswith("finding"):
            print("    | " + line)

    # one row of each table, the first real server of the first service
    irs_walk = parse_walk(os.path.join(sample, "ipvstop-realservers.walk"))
    keys = columns(irs_walk, IPVSTOP_BASE + ".1.5.1")[RS_KEY]
    idx = sorted(keys)[0]
    sfx = ".".join(map(str, idx))
    rs = IPVSTOP_BASE + ".1.5.1.%d." + sfx
    kkeys = columns(parse_walk(os.path.join(sample, "keepalived-realservers.walk")), KEEPALIVED_CHECK + ".4.1")[KRS_ADDR]
    kidx = sorted(kkeys)[0]
    krs = KEEPALIVED_CHECK + ".4.1.%d." + ".".join(map(str, kidx))

    def doctored(name, want_rc, want_text, change, forbid=None):
        tmp = tempfile.mkdtemp(prefix="agent-compare-selftest.")
        try:
            d = os.path.join(tmp, "cap")
            shutil.copytree(sample, d)
            change(d)
            run(name, d, want_rc, want_text, forbid)
        finally:
            shutil.rmtree(tmp)

    def bump(path, oid, delta=1):
        def change(d):
            p = os.path.join(d, path)
            line = [l for l in open(p).read().split("\n") if l.startswith("." + oid + " = ")][0]
            m = re.match(r"^\S+ = ([\w-]+): (?:[A-Za-z][\w-]*\()?(-?\d+)", line)
            _edit(p, oid, "%s: %d" % (m.group(1), int(m.group(2)) + delta))
        return change

    doctored("ipvstop's weight off by one is a mismatch", 1, "Weight: ipvstop",
             bump("ipvstop-realservers.walk", rs % RS_WEIGHT))
    doctored("ipvstop's ActiveConn off by one is a mismatch", 1, "ActiveConn: ipvstop",
             bump("ipvstop-realservers.walk", rs % RS_ACTIVE))
    doctored("ipvstop's InActConn off by one is a mismatch", 1, "InActConn: ipvstop",
             bump("ipvstop-realservers.walk", rs % RS_INACTIVE))
    doctored("ipvstop's PersistConn off by one is a mismatch", 1, "PersistConn: ipvstop",
             bump("ipvstop-realservers.walk", rs % RS_PERSIST))
    doctored("ipvstop's scheduler wrong is a mismatch", 1, "ipvsServiceScheduler: ipvstop",
             lambda d: _edit(os.path.join(d, "ipvstop-services.walk"),
                             IPVSTOP_BASE + ".1.4.1.%d.%d" % (SVC_SCHED, idx[0]), 'STRING: "lblcr"'))
    doctored("a missing ipvstop row is a mismatch", 1, "no ipvstop row",
             lambda d: _drop(os.path.join(d, "ipvstop-realservers.walk"), sfx))
    doctored("keepalived off by one is a finding about keepalived, not a failure", 0,
             "finding - keepalived vs ipvsadm", bump("keepalived-realservers.walk", krs % KRS_INACTIVE))

    skey = columns(parse_walk(os.path.join(sample, "ipvstop-services.walk")), IPVSTOP_BASE + ".1.4.1")[SVC_KEY][(idx[0],)]

    def moved(up):
        """ipvsadm's after reading of that real server's ActiveConn is 2 higher; ipvstop's value
        is the before one (up=False: between the readings) or 3 above it (outside)."""
        def change(d):
            p = os.path.join(d, "ipvsadm-after", "Ln-persistent-conn.txt")
            lines = open(p).read().split("\n")
            sid = None
            for i, l in enumerate(lines):
                t = l.split()
                if t and t[0] in ("TCP", "UDP", "SCTP", "FWM"):
                    sid = _service_head(t)[0]["id"]
                elif t and t[0] == "->" and t[1] == keys[idx] and sid == skey:
                    t[4] = str(int(t[4]) + 2)
                    lines[i] = "  -> %-28s %-9s %-11s %-10s %-9s " % tuple(t[1:6])
                    break
            else:
                raise AssertionError("no %s %s in %s" % (skey, keys[idx], p))
            open(p, "w").write("\n".join(lines))
            if up:
                bump("ipvstop-realservers.walk", rs % RS_ACTIVE, 3)(d)
        return change

    doctored("a figure that moves between the ipvsadm readings may be anything between them", 0,
             "agent lab: PASS", moved(False))
    doctored("but not outside them", 1, "ActiveConn: ipvstop", moved(True))
    doctored("an empty keepalived walk is missing data", 2, "missing data",
             lambda d: open(os.path.join(d, "keepalived-realservers.walk"), "w").close())
    print("selftest: %s" % ("passed" if ok else "FAILED"))
    return ok


def main(argv):
    if argv and argv[0] == "--selftest":
        sample = argv[1] if len(argv) > 1 else os.path.normpath(os.path.join(HERE, "..", "Fixtures", "agent-lab-6.1"))
        return 0 if selftest(sample) else 1
    base = IPVSTOP_BASE
    if "--base-oid" in argv:
        i = argv.index("--base-oid")
        base = argv[i + 1].lstrip(".")
        argv = argv[:i] + argv[i + 2:]
    if len(argv) != 1:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    return report(argv[0], base)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
