#!/usr/bin/env python3
"""Compare ipvstop's `snapshot --json` output with what ipvsadm printed at the same moment.

    compare.py CAPTURE_DIR JSON_FILE [--no-netlink] [--proc-copy]
    compare.py --selftest [FIXTURE_PROC_DIR FIXTURE_IPVSADM_DIR]

CAPTURE_DIR is the scenario's capture directory: ipvsadm-before/ and ipvsadm-after/ (or a single
ipvsadm/), proc/ (the copy of /proc used for sysctls and slabinfo) and config-hz.txt.
Counters, rates and connection counts may lie anywhere between the before and after captures.
With --no-netlink the netlink-only fields (stats, rates, persistent_conns, thresholds of services
and real servers; timeouts and sync daemons) must be null, and everything else must still match.
--proc-copy: JSON_FILE was made from CAPTURE_DIR/proc (--proc-root): its global rates may also
be the copy's own.
Exit status: 0 all checks passed, 1 mismatches, 2 unusable input.

Only the standard library; the parsers (parse_ln, parse_columns, parse_lcn, parse_timeout,
parse_daemon, parse_proc_ip_vs, parse_proc_conn) are importable for unit tests.
"""
import ipaddress
import json
import os
import re
import sys

# ---------------------------------------------------------------------------------------------
# ipvsadm text parsers
# ---------------------------------------------------------------------------------------------

PROTOS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp", "FWM": "fwmark"}
FORWARDS = {"Masq": "masq", "Route": "route", "Tunnel": "tunnel", "Local": "local", "Bypass": "bypass"}


def split_addr(text):
    """'10.0.0.1:80' / '[fd00::1]:80' -> (address, port, family), address normalised."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)", text)
    if m:
        return str(ipaddress.IPv6Address(m.group(1))), int(m.group(2)), "ipv6"
    m = re.fullmatch(r"([0-9.]+):(\d+)", text)
    if m:
        return str(ipaddress.IPv4Address(m.group(1))), int(m.group(2)), "ipv4"
    raise ValueError("not an address:port: %r" % text)


def addr_id(address, port, family):
    return "[%s]:%d" % (address, port) if family == "ipv6" else "%s:%d" % (address, port)


def service_id(protocol, address=None, port=None, family="ipv4", fwmark=None):
    if protocol == "fwmark":
        # an IPv4 and an IPv6 service may use the same mark: IPv6 ones are "fwmark6:N"
        return ("fwmark6:%d" if family == "ipv6" else "fwmark:%d") % fwmark
    return "%s:%s" % (protocol, addr_id(address, port, family))


def _header(lines):
    m = re.match(r"IP Virtual Server version (\S+) \(size=(\d+)\)", lines[0]) if lines else None
    if not m:
        raise ValueError("no 'IP Virtual Server version' header")
    return m.group(1), int(m.group(2))


def _service_head(tokens):
    """Tokens of a service line -> (service dict, remaining tokens)."""
    proto = PROTOS[tokens[0]]
    if proto == "fwmark":
        svc = {"protocol": "fwmark", "fwmark": int(tokens[1]), "address": None, "port": None,
               "family": "ipv4"}
        rest = tokens[2:]
        if rest and rest[0] == "IPv6":
            svc["family"] = "ipv6"
            rest = rest[1:]
    else:
        a, p, fam = split_addr(tokens[1])
        svc = {"protocol": proto, "address": a, "port": p, "family": fam, "fwmark": None}
        rest = tokens[2:]
    svc["id"] = service_id(svc["protocol"], svc["address"], svc["port"], svc["family"], svc["fwmark"])
    return svc, rest


def parse_ln(text):
    """`ipvsadm -Ln` -> {"version", "table_size", "services": [...]} (services in print order).

    service: id, protocol, address, port, fwmark, family, scheduler, sched_flags (list),
             persistent (bool), timeout_s, netmask (IPv4 dotted / IPv6 prefix int), pe_name,
             ops (bool), real_servers: [id, address, port, family, forward, weight,
             active_conns, inactive_conns]
    """
    lines = text.splitlines()
    version, size = _header(lines)
    services = []
    for line in lines[1:]:
        if not line.strip() or line.startswith("Prot "):
            continue
        tokens = line.split()
        if tokens[0] == "->":
            if tokens[1] == "RemoteAddress:Port":
                continue
            a, p, fam = split_addr(tokens[1])
            services[-1]["real_servers"].append({
                "id": addr_id(a, p, fam), "address": a, "port": p, "family": fam,
                "forward": FORWARDS.get(tokens[2], tokens[2].lower()), "weight": int(tokens[3]),
                "active_conns": int(tokens[4]), "inactive_conns": int(tokens[5])})
            continue
        svc, rest = _service_head(tokens)
        svc.update({"scheduler": rest[0], "sched_flags": [], "persistent": False, "timeout_s": None,
                    "netmask": None, "pe_name": None, "ops": False, "real_servers": []})
        i = 1
        while i < len(rest):
            t = rest[i]
            if t.startswith("(") and t.endswith(")"):
                svc["sched_flags"] = [f for f in t[1:-1].split(",") if f]
            elif t == "persistent":
                svc["persistent"] = True
                svc["timeout_s"] = int(rest[i + 1])
                i += 1
            elif t == "mask":
                v = rest[i + 1]
                svc["netmask"] = int(v) if v.isdigit() else v
                i += 1
            elif t == "pe":
                svc["pe_name"] = rest[i + 1]
                i += 1
            elif t == "ops":
                svc["ops"] = True
            else:
                raise ValueError("unknown service token %r in %r" % (t, line))
            i += 1
        if svc["persistent"] and svc["netmask"] is None:
            svc["netmask"] = 128 if svc["family"] == "ipv6" else "255.255.255.255"
        services.append(svc)
    return {"version": version, "table_size": size, "services": services}


def parse_columns(text, names):
    """Listings with numeric columns (--stats/--rate --exact, --persistent-conn, --thresholds).

    Returns {service_id: {"values": {...} or None, "real_servers": {rs_id: {...}}}}. Service lines
    of --stats/--rate carry values; those of --persistent-conn/--thresholds carry the scheduler
    instead (values None). Real-server lines carry len(names) numbers, after the Forward column
    of nothing (stats/rate) or the Weight (persistent-conn: Weight PersistConn Active InAct;
    thresholds: Uthreshold Lthreshold Active InAct) -- callers pass the column names.
    """
    lines = text.splitlines()
    _header(lines)
    out = {}
    cur = None
    for line in lines[1:]:
        if not line.strip() or line.startswith("Prot "):
            continue
        tokens = line.split()
        if tokens[0] == "->":
            if tokens[1] == "RemoteAddress:Port":
                continue
            a, p, fam = split_addr(tokens[1])
            nums = [int(x) for x in tokens[2:]]
            if len(nums) != len(names):
                raise ValueError("expected %d numbers in %r" % (len(names), line))
            out[cur]["real_servers"][addr_id(a, p, fam)] = dict(zip(names, nums))
            continue
        svc, rest = _service_head(tokens)
        cur = svc["id"]
        values = None
        if rest and all(re.fullmatch(r"\d+", x) for x in rest) and len(rest) == len(names):
            values = dict(zip(names, [int(x) for x in rest]))
        out[cur] = {"values": values, "real_servers": {}}
    return out


STATS = ["conns", "in_packets", "out_packets", "in_bytes", "out_bytes"]
RATES = ["cps", "in_pps", "out_pps", "in_bps", "out_bps"]
PCONN = ["weight", "persistent_conns", "active_conns", "inactive_conns"]
THRESH = ["upper_threshold", "lower_threshold", "active_conns", "inactive_conns"]


def parse_expire(text):
    m = re.fullmatch(r"(\d+):(\d\d)", text)
    if not m:
        raise ValueError("bad expire %r" % text)
    return int(m.group(1)) * 60 + int(m.group(2))


def parse_lcn(text):
    """`ipvsadm -Lcn` -> list of entries: protocol (lower case; 'ip' for fwmark templates),
    expires_s, state, client, cport, vaddr, vport, daddr, dport, template (client port 0)."""
    rows = []
    for line in text.splitlines():
        tokens = line.split()
        if not tokens or tokens[0] in ("IPVS", "pro"):
            continue
        ca, cp, _ = split_addr(tokens[3])
        va, vp, _ = split_addr(tokens[4])
        da, dp, dfam = split_addr(tokens[5])
        rows.append({"protocol": tokens[0].lower(), "expires_s": parse_expire(tokens[1]),
                     "state": tokens[2], "client": ca, "cport": cp, "vaddr": va, "vport": vp,
                     "daddr": da, "dport": dp, "dfamily": dfam, "template": cp == 0,
                     "extra": tokens[6:]})
    return rows


def conn_summary(rows):
    s = {"total": 0, "templates": 0, "by_state": {}, "by_protocol": {}}
    for r in rows:
        if r["template"]:
            s["templates"] += 1
            continue
        s["total"] += 1
        s["by_state"][r["state"]] = s["by_state"].get(r["state"], 0) + 1
        s["by_protocol"][r["protocol"]] = s["by_protocol"].get(r["protocol"], 0) + 1
    return s


def template_key(r, fwmark_services):
    """(client, service id, real server id) of a template row of -Lcn or /proc/net/ip_vs_conn."""
    fam = "ipv6" if ":" in r["vaddr"] else "ipv4"
    if r["protocol"] == "ip":
        # the kernel puts htonl(mark) in the first 32 bits of the virtual address
        mark = int(ipaddress.ip_address(r["vaddr"]))
        if fam == "ipv6":
            mark >>= 96
        sid = service_id("fwmark", family=fam, fwmark=mark)
    else:
        sid = service_id(r["protocol"], r["vaddr"], r["vport"], fam)
    return (r["client"], sid, addr_id(r["daddr"], r["dport"], r["dfamily"]))


def parse_timeout(text):
    m = re.search(r"Timeout \(tcp tcpfin udp\): (\d+) (\d+) (\d+)", text)
    if not m:
        raise ValueError("no timeout line")
    return {"tcp": int(m.group(1)), "tcp_fin": int(m.group(2)), "udp": int(m.group(3))}


def parse_daemon(text):
    out = []
    for line in text.splitlines():
        m = re.match(r"(master|backup) sync daemon \((.*)\)", line.strip())
        if not m:
            continue
        d = {"state": m.group(1)}
        for kv in m.group(2).split(","):
            k, _, v = kv.strip().partition("=")
            d[k] = int(v) if v.isdigit() else v
        out.append(d)
    return out


# ---------------------------------------------------------------------------------------------
# /proc parsers (used by the self-test to check the fixtures against the ipvsadm text)
# ---------------------------------------------------------------------------------------------

def _hexaddr(text):
    if text.startswith("["):
        return str(ipaddress.IPv6Address(text.strip("[]"))), "ipv6"
    if ":" in text:
        return str(ipaddress.IPv6Address(text)), "ipv6"
    return str(ipaddress.IPv4Address(int(text, 16))), "ipv4"


def _hexaddrport(text):
    a, _, p = text.rpartition(":")
    addr, fam = _hexaddr(a)
    return addr, int(p, 16), fam


def parse_proc_ip_vs(text, hz):
    lines = text.splitlines()
    version, size = _header(lines)
    services = []
    for line in lines[3:]:
        tokens = line.split()
        if not tokens:
            continue
        if tokens[0] == "->":
            a, p, fam = _hexaddrport(tokens[1])
            services[-1]["real_servers"].append({
                "id": addr_id(a, p, fam), "address": a, "port": p, "family": fam,
                "forward": FORWARDS.get(tokens[2], tokens[2].lower()), "weight": int(tokens[3]),
                "active_conns": int(tokens[4]), "inactive_conns": int(tokens[5])})
            continue
        proto = PROTOS[tokens[0]]
        if proto == "fwmark":
            svc = {"protocol": proto, "fwmark": int(tokens[1], 16), "address": None, "port": None,
                   "family": None}
        else:
            a, p, fam = _hexaddrport(tokens[1])
            svc = {"protocol": proto, "address": a, "port": p, "family": fam, "fwmark": None}
        rest = tokens[2:]
        svc.update({"scheduler": rest[0], "ops": "ops" in rest, "persistent": False,
                    "timeout_s": None, "netmask_raw": None, "real_servers": []})
        if "persistent" in rest:
            i = rest.index("persistent")
            svc["persistent"] = True
            svc["timeout_s"] = int(rest[i + 1]) // hz
            svc["netmask_raw"] = int(rest[i + 2], 16)
        services.append(svc)
    for svc in services:
        if svc["family"] is None:   # fwmark: /proc does not say; the real servers do
            fams = {rs["family"] for rs in svc["real_servers"]}
            svc["family"] = fams.pop() if len(fams) == 1 else "ipv4"
        svc["id"] = service_id(svc["protocol"], svc["address"], svc["port"], svc["family"],
                               svc["fwmark"])
        if svc["persistent"]:
            raw = svc["netmask_raw"]
            if svc["family"] == "ipv6":
                # the kernel prints the prefix length through ntohl(): 128 shows as 80000000
                svc["netmask"] = int.from_bytes(raw.to_bytes(4, "big"), "little")
            else:
                svc["netmask"] = str(ipaddress.IPv4Address(raw))
        else:
            svc["netmask"] = None
    return {"version": version, "table_size": size, "services": services}


def parse_proc_conn(text):
    rows = []
    for line in text.splitlines()[1:]:
        t = line.split()
        if len(t) < 9:
            continue
        ca, cfam = _hexaddr(t[1])
        va, _ = _hexaddr(t[3])
        da, dfam = _hexaddr(t[5])
        rows.append({"protocol": t[0].lower(), "client": ca, "cport": int(t[2], 16), "vaddr": va,
                     "vport": int(t[4], 16), "daddr": da, "dport": int(t[6], 16),
                     "dfamily": dfam, "state": t[7], "expires_s": int(t[8]),
                     "template": int(t[2], 16) == 0, "extra": t[9:]})
    return rows


def parse_proc_stats(text):
    blocks = [l.split() for l in text.splitlines() if re.fullmatch(r"[\s0-9A-F]+", l) and l.strip()]
    return dict(zip(STATS, [int(x, 16) for x in blocks[0]])), dict(zip(RATES, [int(x, 16) for x in blocks[1]]))


def read_sysctls(d):
    out = {}
    if not os.path.isdir(d):
        return out
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name)) as f:
            v = f.read().strip()
        out[name] = int(v) if re.fullmatch(r"-?\d+", v) else v
    return out


# ---------------------------------------------------------------------------------------------
# the comparison
# ---------------------------------------------------------------------------------------------

def read(path):
    with open(path) as f:
        return f.read()


def parse_taken_at(path):
    """Seconds since the epoch from a `date -u +%Y-%m-%dT%H:%M:%S.%NZ` file, or None."""
    if not os.path.exists(path):
        return None
    import datetime
    text = read(path).strip()
    try:
        whole, frac = text.rstrip("Z").split(".")
        t = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
        return t.timestamp() + float("0." + frac)
    except ValueError:
        return None


# The ipvsadm listings of one capture run over several seconds before its taken_at is written.
CAPTURE_SPAN_S = 10


class Capture:
    """One set of ipvsadm outputs (a directory of Ln.txt, Ln-stats-exact.txt, ...)."""

    def __init__(self, d):
        self.dir = d
        self.ln = parse_ln(read(os.path.join(d, "Ln.txt")))
        self.stats = parse_columns(read(os.path.join(d, "Ln-stats-exact.txt")), STATS)
        self.rates = parse_columns(read(os.path.join(d, "Ln-rate-exact.txt")), RATES)
        self.pconn = parse_columns(read(os.path.join(d, "Ln-persistent-conn.txt")), PCONN)
        self.thresh = parse_columns(read(os.path.join(d, "Ln-thresholds.txt")), THRESH)
        self.lcn = parse_lcn(read(os.path.join(d, "Lcn.txt")))
        self.conns = conn_summary(self.lcn)
        self.timeouts = parse_timeout(read(os.path.join(d, "L-timeout.txt")))
        self.daemons = parse_daemon(read(os.path.join(d, "L-daemon.txt")))
        p = os.path.join(d, "ip_vs_stats")
        self.global_stats = parse_proc_stats(read(p)) if os.path.exists(p) else None
        self.services = {s["id"]: s for s in self.ln["services"]}
        self.taken_at = parse_taken_at(os.path.join(d, "taken_at"))


class Checker:
    def __init__(self):
        self.checks = 0
        self.mismatches = []

    def fail(self, path, msg):
        self.checks += 1
        self.mismatches.append("%s: %s" % (path, msg))

    def eq(self, path, got, want):
        self.checks += 1
        if got != want:
            self.mismatches.append("%s: got %s, ipvsadm says %s" % (path, json.dumps(got), json.dumps(want)))

    def within(self, path, got, values):
        """got must be an integer between min(values) and max(values)."""
        self.checks += 1
        lo, hi = min(values), max(values)
        if not isinstance(got, int) or isinstance(got, bool) or not lo <= got <= hi:
            want = str(lo) if lo == hi else "%d..%d" % (lo, hi)
            self.mismatches.append("%s: got %s, ipvsadm says %s" % (path, json.dumps(got), want))

    def null(self, path, got):
        self.checks += 1
        if got is not None:
            self.mismatches.append("%s: got %s, want null (netlink-only field without netlink)"
                                   % (path, json.dumps(got)))

    def has(self, path, obj, key):
        if not isinstance(obj, dict) or key not in obj:
            self.fail(path, "missing key %r" % key)
            return False
        return True


def norm_addr(a):
    try:
        return str(ipaddress.ip_address(a))
    except (ValueError, TypeError):
        return a


def json_service_key(s):
    proto = s.get("protocol")
    if proto == "fwmark":
        return "%s:%s" % ("fwmark6" if s.get("family") == "ipv6" else "fwmark", s.get("fwmark"))
    fam = s.get("family")
    return service_id(proto, norm_addr(s.get("address")), s.get("port"), fam)


def compare(doc, caps, capdir, no_netlink, ck, proc_copy=False):
    """caps: list of Capture (before, after); doc: the parsed JSON. proc_copy: the document was
    made from the capture's copy of /proc (--proc-root), whose ip_vs_stats is then one more
    reading of the global rates (the one ipvstop read, taken between the ipvsadm captures)."""
    first = caps[0]
    samples = load_rate_samples(capdir)

    def sources(table):
        # Rates also from the samples taken while ipvstop ran; counters only grow, so the
        # readings before and after bound them.
        return caps + samples if table == "rates" else caps
    ck.eq("schema", doc.get("schema"), 1)
    ck.checks += 1
    if not isinstance(doc.get("taken_at"), str):
        ck.mismatches.append("taken_at: missing or not a string")
    if ck.has("", doc, "ipvs"):
        ck.eq("ipvs.version", doc["ipvs"].get("version"), first.ln["version"])
        ck.eq("ipvs.table_size", doc["ipvs"].get("table_size"), first.ln["table_size"])

    # ---- services -------------------------------------------------------------------------
    jsvcs = {}
    for s in doc.get("services") or []:
        jsvcs[json_service_key(s)] = s
    if not ck.has("", doc, "services"):
        pass
    want_ids = set(first.services)
    for c in caps[1:]:
        if set(c.services) != want_ids:
            print("compare: warning: the service list changed between before and after", file=sys.stderr)
    ck.eq("services (ids)", sorted(jsvcs), sorted(want_ids))
    for sid, want in first.services.items():
        got = jsvcs.get(sid)
        if got is None:
            continue
        p = "services[%s]" % sid
        ck.eq(p + ".id", got.get("id"), sid)
        for k in ("protocol", "family", "port", "fwmark", "scheduler"):
            if ck.has(p, got, k):
                ck.eq("%s.%s" % (p, k), got[k], want[k])
        if ck.has(p, got, "address"):
            ck.eq(p + ".address", norm_addr(got["address"]), want["address"])
        flags = got.get("flags")
        if not isinstance(flags, list):
            ck.fail(p + ".flags", "missing or not a list")
            flags = []
        ck.eq(p + ".flags has persistent", "persistent" in flags, want["persistent"])
        ck.eq(p + ".flags has ops", "ops" in flags, want["ops"])
        if not no_netlink:
            for f in ("sh-fallback", "sh-port", "mh-fallback", "mh-port"):
                if f in want["sched_flags"] or f in flags:
                    ck.eq("%s.flags has %s" % (p, f), f in flags, f in want["sched_flags"])
        if ck.has(p, got, "persistence"):
            per = got["persistence"]
            if not want["persistent"]:
                ck.eq(p + ".persistence", per, None)
            elif not isinstance(per, dict):
                ck.fail(p + ".persistence", "got %s, want an object" % json.dumps(per))
            else:
                ck.eq(p + ".persistence.timeout_s", per.get("timeout_s"), want["timeout_s"])
                ck.eq(p + ".persistence.netmask", per.get("netmask"), want["netmask"])
        if ck.has(p, got, "pe_name"):
            if no_netlink and got["pe_name"] is None:
                ck.checks += 1     # /proc/net/ip_vs does not show the PE: null is honest
            else:
                ck.eq(p + ".pe_name", got["pe_name"], want["pe_name"])
        for key, table, names in (("stats", "stats", STATS), ("rates", "rates", RATES)):
            if not ck.has(p, got, key):
                continue
            if no_netlink:
                ck.null("%s.%s" % (p, key), got[key])
                continue
            if not isinstance(got[key], dict):
                ck.fail("%s.%s" % (p, key), "got %s, want an object" % json.dumps(got[key]))
                continue
            for n in names:
                vals = [getattr(c, table)[sid]["values"][n] for c in sources(table) if sid in getattr(c, table)]
                ck.within("%s.%s.%s" % (p, key, n), got[key].get(n), vals)

        # ---- real servers ---------------------------------------------------------------
        jrs = {}
        for r in got.get("real_servers") or []:
            fam = r.get("family")
            jrs[addr_id(norm_addr(r.get("address")), r.get("port"), fam)] = r
        if not ck.has(p, got, "real_servers"):
            continue
        want_rs = {r["id"]: r for r in want["real_servers"]}
        ck.eq(p + ".real_servers (ids)", sorted(jrs), sorted(want_rs))
        for rid, wr in want_rs.items():
            gr = jrs.get(rid)
            if gr is None:
                continue
            q = "%s.real_servers[%s]" % (p, rid)
            ck.eq(q + ".id", gr.get("id"), rid)
            for k in ("port", "family", "forward", "weight"):
                if ck.has(q, gr, k):
                    ck.eq("%s.%s" % (q, k), gr[k], wr[k])
            for k in ("active_conns", "inactive_conns"):
                if ck.has(q, gr, k):
                    vals = [c.services[sid]["real_servers"][i][k] for c in caps if sid in c.services
                            for i, x in enumerate(c.services[sid]["real_servers"]) if x["id"] == rid]
                    ck.within("%s.%s" % (q, k), gr[k], vals)
            for k, table in (("persistent_conns", "pconn"), ("upper_threshold", "thresh"),
                             ("lower_threshold", "thresh")):
                if not ck.has(q, gr, k):
                    continue
                if no_netlink:
                    ck.null("%s.%s" % (q, k), gr[k])
                    continue
                vals = [getattr(c, table)[sid]["real_servers"][rid][k] for c in caps
                        if rid in getattr(c, table).get(sid, {}).get("real_servers", {})]
                ck.within("%s.%s" % (q, k), gr[k], vals)
            for key, table, names in (("stats", "stats", STATS), ("rates", "rates", RATES)):
                if not ck.has(q, gr, key):
                    continue
                if no_netlink:
                    ck.null("%s.%s" % (q, key), gr[key])
                    continue
                if not isinstance(gr[key], dict):
                    ck.fail("%s.%s" % (q, key), "got %s, want an object" % json.dumps(gr[key]))
                    continue
                for n in names:
                    vals = [getattr(c, table)[sid]["real_servers"][rid][n] for c in sources(table)
                            if rid in getattr(c, table).get(sid, {}).get("real_servers", {})]
                    ck.within("%s.%s.%s" % (q, key, n), gr[key].get(n), vals)

    # ---- connections ----------------------------------------------------------------------
    if ck.has("", doc, "connections"):
        jc = doc["connections"] or {}
        for k in ("total", "templates"):
            if ck.has("connections", jc, k):
                ck.within("connections.%s" % k, jc[k], [c.conns[k] for c in caps])
        for k in ("by_state", "by_protocol"):
            if not ck.has("connections", jc, k):
                continue
            got = jc[k] if isinstance(jc[k], dict) else {}
            names = set(got)
            for c in caps:
                names |= set(c.conns[k])
            for n in sorted(names):
                ck.within("connections.%s.%s" % (k, n), got.get(n, 0), [c.conns[k].get(n, 0) for c in caps])
        for k in ("read_at", "age_s"):
            ck.has("connections", jc, k)
        # 7.x (issue 23): the lab's quiet table is read whole, checked against the kernel's
        # count (ip_vs_status, root) or the real servers' counters; never a partial one.
        comp = jc.get("completeness")
        if isinstance(comp, dict):
            ck.eq("connections.completeness.partial", comp.get("partial"), False)
    st = (doc.get("ipvs") or {}).get("status")
    if isinstance(st, dict) and st.get("available"):
        # ip_vs_status's Conns counts every entry, templates included, as ipvsadm -Lcn lists them.
        ck.within("ipvs.status.conns", st.get("conns"), [c.conns["total"] + c.conns["templates"] for c in caps])

    # ---- templates ------------------------------------------------------------------------
    if ck.has("", doc, "templates"):
        fw = {s for s in first.services if s.startswith("fwmark")}
        stamps = [c.taken_at for c in caps if c.taken_at is not None]
        elapsed = (max(stamps) - min(stamps) if len(stamps) > 1 else 0) + CAPTURE_SPAN_S
        sets = []
        expires = {}
        for c in caps:
            keys = set()
            for r in c.lcn:
                if r["template"]:
                    key = template_key(r, fw)
                    keys.add(key)
                    expires.setdefault(key, []).append(r["expires_s"])
            sets.append(keys)
        must = set.intersection(*sets)
        may = set.union(*sets)
        got = {}
        for t in doc["templates"] or []:
            key = (norm_addr(t.get("client")), t.get("service"), t.get("real_server"))
            if key in got:
                ck.fail("templates", "duplicate template %s" % (key,))
            got[key] = t
        ck.checks += 1
        missing = sorted(must - set(got))
        extra = sorted(set(got) - may)
        if missing or extra:
            ck.mismatches.append("templates: %d missing %s, %d unexpected %s" % (
                len(missing), missing[:5], len(extra), extra[:5]))
        for key, t in sorted(got.items()):
            if key not in may:
                continue
            q = "templates[%s %s -> %s]" % key
            proto = t.get("protocol")
            want_proto = "fwmark" if key[1].startswith("fwmark") else key[1].split(":")[0]
            ck.checks += 1
            if proto != want_proto and not (want_proto == "fwmark" and proto == "ip"):
                ck.mismatches.append("%s.protocol: got %s, want %s" % (q, json.dumps(proto), want_proto))
            # A template's timer counts down and is re-armed to the full timeout when it runs
            # out while it still controls connections, or a new one arrives: ipvstop's reading
            # lies between the earlier reading minus the time that passed and the later
            # reading (whole seconds: one either side).
            # Re-armed and counted down again between two slow readings, it can also sit
            # anywhere up to what it is re-armed with: the service's persistence timeout on a
            # new connection, or 60 s when it runs out while connections still hang from it
            # (ip_vs_conn_expire's `cp->timeout = 60*HZ` on 6.1).
            ex = expires[key]
            timeout = max((first.services.get(key[1]) or {}).get("timeout_s") or 0, 60)
            if max(ex) - min(ex) <= elapsed and min(ex) > 0:
                lo = max(0, min(ex) - elapsed) - 1
            else:
                lo = -1
            ck.within(q + ".expires_s", t.get("expires_s"), [lo, max(max(ex), timeout) + 1])
            ck.has(q, t, "controlled_conns")
        if isinstance(doc.get("connections"), dict):
            ck.eq("templates (count) == connections.templates", len(doc["templates"] or []),
                  doc["connections"].get("templates"))

    # ---- sysctls --------------------------------------------------------------------------
    want_sys = read_sysctls(os.path.join(capdir, "proc", "sys", "net", "ipv4", "vs"))
    if want_sys and ck.has("", doc, "sysctls"):
        got = doc["sysctls"] or {}
        ck.eq("sysctls (names)", sorted(got), sorted(want_sys))
        for k, v in want_sys.items():
            if k in got:
                g = got[k]
                if isinstance(v, str) and isinstance(g, str):   # "3\t50" and "3 50" are the same
                    v, g = " ".join(v.split()), " ".join(g.split())
                ck.eq("sysctls.%s" % k, g, v)

    # ---- global ---------------------------------------------------------------------------
    if ck.has("", doc, "global"):
        g = doc["global"] or {}
        if ck.has("global", g, "table_size"):
            ck.eq("global.table_size", g["table_size"], first.ln["table_size"])
        gs = [c.global_stats for c in caps + samples if c.global_stats]
        copied = os.path.join(capdir, "proc", "net", "ip_vs_stats")
        if proc_copy and os.path.exists(copied):
            gs.append(parse_proc_stats(read(copied)))
        for key, idx, names in (("stats", 0, STATS), ("rates", 1, RATES)):
            if not ck.has("global", g, key):
                continue
            if not gs:
                continue
            if not isinstance(g[key], dict):
                ck.fail("global." + key, "got %s, want an object (from /proc/net/ip_vs_stats)" % json.dumps(g[key]))
                continue
            for n in names:
                ck.within("global.%s.%s" % (key, n), g[key].get(n), [x[idx][n] for x in gs])
        if ck.has("global", g, "entry_bytes"):
            slab = os.path.join(capdir, "proc", "slabinfo")
            objsize = None
            if os.path.exists(slab):
                for line in read(slab).splitlines():
                    if line.startswith("ip_vs_conn "):
                        objsize = int(line.split()[3])
            if objsize is not None and g["entry_bytes"] is not None:
                # /proc/slabinfo is root-only (0400): null is fine, a wrong size is not
                ck.eq("global.entry_bytes", g["entry_bytes"], objsize)
            else:
                ck.checks += 1
                v = g["entry_bytes"]
                if v is not None and not (isinstance(v, int) and v > 0):
                    ck.mismatches.append("global.entry_bytes: got %s, want null or a size" % json.dumps(v))
        if ck.has("global", g, "timeouts"):
            if no_netlink:
                ck.null("global.timeouts", g["timeouts"])
            else:
                ck.eq("global.timeouts", g["timeouts"], first.timeouts)
        if ck.has("global", g, "sync_daemons"):
            if no_netlink:
                ck.null("global.sync_daemons", g["sync_daemons"])
            else:
                got = g["sync_daemons"]
                if not isinstance(got, list):
                    ck.fail("global.sync_daemons", "got %s, want a list" % json.dumps(got))
                else:
                    want = sorted((d["state"], d.get("mcast"), d.get("syncid")) for d in first.daemons)
                    have = sorted((d.get("state"), d.get("mcast_interface"), d.get("syncid")) for d in got)
                    ck.eq("global.sync_daemons", [list(x) for x in have], [list(x) for x in want])

    # ---- source ---------------------------------------------------------------------------
    src = doc.get("source")
    used = src.get("netlink", {}).get("used") if isinstance(src, dict) and isinstance(src.get("netlink"), dict) else None
    ck.eq("source.netlink.used", used, not no_netlink)


class RateSample:
    """One `ipvsadm -Ln --rate --exact` and /proc/net/ip_vs_stats taken while ipvstop ran.

    The kernel's rate estimator moves up and down every 2 s, so two readings around
    ipvstop's do not bound it; readings taken more often than the estimator changes do:
    ipvstop's value must be one the samples saw."""

    def __init__(self, rate_path, stats_path):
        self.rates = parse_columns(read(rate_path), RATES)
        self.global_stats = parse_proc_stats(read(stats_path)) if os.path.exists(stats_path) else None


def load_rate_samples(capdir):
    d = os.path.join(capdir, "rate-samples")
    if not os.path.isdir(d):
        return []
    out = []
    for name in sorted(os.listdir(d)):
        if name.endswith(".rate"):
            try:
                out.append(RateSample(os.path.join(d, name), os.path.join(d, name[:-5] + ".stats")))
            except (ValueError, IndexError, KeyError):
                pass  # a sample cut short when the sampler was stopped
    return out


def load_caps(capdir):
    dirs = [os.path.join(capdir, d) for d in ("ipvsadm-before", "ipvsadm-after")]
    dirs = [d for d in dirs if os.path.isdir(d)]
    if not dirs:
        dirs = [os.path.join(capdir, "ipvsadm")]
    return [Capture(d) for d in dirs]


# ---------------------------------------------------------------------------------------------
# self-test: parsers against the fixtures, and the comparator against a JSON built from them
# ---------------------------------------------------------------------------------------------

def json_from_ipvsadm(cap, capdir, no_netlink=False):
    """The JSON a perfect ipvstop would print for this capture (used by the self-test)."""
    services = []
    for s in cap.ln["services"]:
        sid = s["id"]
        flags = (["persistent"] if s["persistent"] else []) + (["ops"] if s["ops"] else []) + ["hashed"]
        if not no_netlink:
            flags += s["sched_flags"]
        rss = []
        for r in s["real_servers"]:
            rid = r["id"]
            rss.append({
                "id": rid, "address": r["address"], "port": r["port"], "family": r["family"],
                "forward": r["forward"], "weight": r["weight"], "active_conns": r["active_conns"],
                "inactive_conns": r["inactive_conns"],
                "persistent_conns": None if no_netlink else cap.pconn[sid]["real_servers"][rid]["persistent_conns"],
                "upper_threshold": None if no_netlink else cap.thresh[sid]["real_servers"][rid]["upper_threshold"],
                "lower_threshold": None if no_netlink else cap.thresh[sid]["real_servers"][rid]["lower_threshold"],
                "stats": None if no_netlink else cap.stats[sid]["real_servers"][rid],
                "rates": None if no_netlink else cap.rates[sid]["real_servers"][rid]})
        services.append({
            "id": sid, "protocol": s["protocol"], "family": s["family"], "address": s["address"],
            "port": s["port"], "fwmark": s["fwmark"], "scheduler": s["scheduler"], "flags": flags,
            "persistence": {"timeout_s": s["timeout_s"], "netmask": s["netmask"]} if s["persistent"] else None,
            "pe_name": None if no_netlink else s["pe_name"],
            "stats": None if no_netlink else cap.stats[sid]["values"],
            "rates": None if no_netlink else cap.rates[sid]["values"],
            "real_servers": rss})
    fw = {s for s in cap.services if s.startswith("fwmark")}
    templates = []
    for r in cap.lcn:
        if r["template"]:
            c, sid, rid = template_key(r, fw)
            templates.append({"client": c, "protocol": "fwmark" if sid.startswith("fwmark") else r["protocol"],
                              "service": sid, "real_server": rid, "expires_s": r["expires_s"],
                              "controlled_conns": 0})
    conns = dict(cap.conns, read_at="2000-01-01T00:00:00Z", age_s=0.0)
    gstats, grates = cap.global_stats if cap.global_stats else (None, None)
    entry_bytes = None
    slab = os.path.join(capdir, "proc", "slabinfo")
    if os.path.exists(slab):
        for line in read(slab).splitlines():
            if line.startswith("ip_vs_conn "):
                entry_bytes = int(line.split()[3])
    return {
        "schema": 1, "taken_at": "2000-01-01T00:00:00Z",
        "ipvs": {"version": cap.ln["version"], "table_size": cap.ln["table_size"]},
        "services": services, "connections": conns, "templates": templates,
        "sysctls": read_sysctls(os.path.join(capdir, "proc", "sys", "net", "ipv4", "vs")),
        "global": {"stats": gstats, "rates": grates, "table_size": cap.ln["table_size"],
                   "entry_bytes": entry_bytes,
                   "timeouts": None if no_netlink else cap.timeouts,
                   "sync_daemons": None if no_netlink else [
                       {"state": d["state"], "mcast_interface": d.get("mcast"), "syncid": d.get("syncid")}
                       for d in cap.daemons]},
        "source": {"netlink": {"used": not no_netlink}}}


def selftest(proc_dir, ipvsadm_dir):
    ok = True

    def check(cond, msg):
        nonlocal ok
        print("selftest: %s %s" % ("ok  " if cond else "FAIL", msg))
        ok = ok and cond

    cap = Capture(ipvsadm_dir)
    hz = 250
    hzf = os.path.join(ipvsadm_dir, "config-hz.txt")
    if os.path.exists(hzf):
        hz = int(read(hzf).strip())
    ln = cap.ln
    check(ln["version"] == "1.2.1" and ln["table_size"] > 0, "-Ln header: version %s size %d" % (ln["version"], ln["table_size"]))
    check(len(ln["services"]) > 0, "-Ln: %d services, %d real servers" % (
        len(ln["services"]), sum(len(s["real_servers"]) for s in ln["services"])))
    for name, table in (("--stats", cap.stats), ("--rate", cap.rates), ("--persistent-conn", cap.pconn),
                        ("--thresholds", cap.thresh)):
        same = set(table) == set(cap.services) and all(
            set(table[s]["real_servers"]) == {r["id"] for r in cap.services[s]["real_servers"]} for s in table)
        check(same, "%s lists the same services and real servers as -Ln" % name)
    check(all(cap.stats[s]["values"] is not None for s in cap.stats), "--stats: every service line has 5 counters")
    check(all(cap.pconn[s]["values"] is None for s in cap.pconn), "--persistent-conn: service lines carry no counters")
    same_counts = all(
        cap.pconn[s]["real_servers"][r["id"]]["weight"] == r["weight"]
        and cap.thresh[s]["real_servers"][r["id"]]["active_conns"] == r["active_conns"]
        for s in cap.services for r in cap.services[s]["real_servers"])
    check(same_counts, "--persistent-conn weights and --thresholds ActiveConn agree with -Ln")
    fams = {s["family"] for s in ln["services"]}
    protos = {s["protocol"] for s in ln["services"]}
    check({"ipv4", "ipv6"} <= fams and {"tcp", "udp", "fwmark"} <= protos,
          "-Ln covers families %s, protocols %s" % (sorted(fams), sorted(protos)))
    check(any(s["persistent"] and s["netmask"] == "255.255.255.0" for s in ln["services"]), "-Ln: a /24 persistence mask")
    check(any(s["ops"] for s in ln["services"]), "-Ln: an ops service")

    # /proc/net/ip_vs against -Ln
    proc = parse_proc_ip_vs(read(os.path.join(proc_dir, "net", "ip_vs")), hz)
    pmap = {s["id"]: s for s in proc["services"]}
    check(set(pmap) == set(cap.services), "/proc/net/ip_vs has the same service ids as -Ln")
    bad = []
    for sid, want in cap.services.items():
        got = pmap.get(sid)
        if not got:
            continue
        for k in ("scheduler", "persistent", "timeout_s", "netmask"):
            if got[k] != want[k]:
                bad.append("%s.%s proc %r ipvsadm %r" % (sid, k, got[k], want[k]))
        if got["ops"] != want["ops"] and want["family"] == "ipv4":
            bad.append("%s.ops" % sid)
        g = sorted((r["id"], r["forward"], r["weight"], r["active_conns"], r["inactive_conns"]) for r in got["real_servers"])
        w = sorted((r["id"], r["forward"], r["weight"], r["active_conns"], r["inactive_conns"]) for r in want["real_servers"])
        if g != w:
            bad.append("%s real servers proc %s ipvsadm %s" % (sid, g, w))
    check(not bad, "/proc/net/ip_vs matches -Ln (scheduler, persistence in jiffies/HZ=%d, netmask, real servers)%s"
          % (hz, "" if not bad else ": " + "; ".join(bad[:4])))

    # /proc/net/ip_vs_conn against -Lcn
    prows = parse_proc_conn(read(os.path.join(proc_dir, "net", "ip_vs_conn")))
    ps, ls = conn_summary(prows), cap.conns
    check(ps == ls, "/proc/net/ip_vs_conn and -Lcn: %d entries, %d templates, states %s%s" % (
        ls["total"], ls["templates"], ls["by_state"], "" if ps == ls else " (proc: %s)" % ps))
    fw = {s for s in cap.services if s.startswith("fwmark")}
    pk = sorted(template_key(r, fw) for r in prows if r["template"])
    lk = sorted(template_key(r, fw) for r in cap.lcn if r["template"])
    check(pk == lk, "template keys agree between /proc and -Lcn (%d templates, %d fwmark)" % (
        len(lk), sum(1 for k in lk if k[1].startswith("fwmark"))))
    tstates = sorted({r["state"] for r in cap.lcn if r["template"]})
    check(bool(tstates), "template states seen: %s" % tstates)
    check(set(prows[0].keys()) >= {"protocol", "state"} and any(r["dfamily"] == "ipv6" for r in prows),
          "/proc/net/ip_vs_conn has IPv6 rows")

    # the comparator: a perfect JSON passes, a broken one fails, nulls are enforced
    # compare() reads sysctls and slabinfo from <capdir>/proc: lay the fixture out that way
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(os.path.abspath(proc_dir), os.path.join(tmp, "proc"))
        for nn in (False, True):
            doc = json_from_ipvsadm(cap, tmp, no_netlink=nn)
            ck = Checker()
            compare(doc, [cap], tmp, nn, ck)
            check(not ck.mismatches, "comparator accepts a perfect %s JSON (%d checks)%s" % (
                "--no-netlink" if nn else "full", ck.checks, "" if not ck.mismatches else ": " + "; ".join(ck.mismatches[:5])))
        doc = json_from_ipvsadm(cap, tmp)
        doc["services"][0]["real_servers"][0]["weight"] += 1
        doc["services"][1]["stats"] = {k: 0 for k in STATS}
        del doc["services"][2]["scheduler"]
        doc["connections"]["by_state"]["ESTABLISHED"] = doc["connections"]["by_state"].get("ESTABLISHED", 0) + 7
        if doc["global"]["entry_bytes"]:
            doc["global"]["entry_bytes"] += 8
        ck = Checker()
        compare(doc, [cap], tmp, False, ck)
        check(len(ck.mismatches) >= 4, "comparator catches a wrong weight, zeroed stats, a missing key, a wrong state count (%d mismatches)" % len(ck.mismatches))
        doc = json_from_ipvsadm(cap, tmp, no_netlink=False)
        ck = Checker()
        compare(doc, [cap], tmp, True, ck)
        check(len(ck.mismatches) > 0, "comparator in --no-netlink mode rejects zeros/values where null is due (%d mismatches)" % len(ck.mismatches))
    return ok


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    if len(argv) >= 1 and argv[0] == "--selftest":
        fixtures = os.path.normpath(os.path.join(here, "..", "Fixtures"))
        proc_dir = argv[1] if len(argv) > 1 else os.path.join(fixtures, "proc-vm-6.1")
        ipvsadm_dir = argv[2] if len(argv) > 2 else os.path.join(fixtures, "proc-vm-6.1.ipvsadm")
        ok = selftest(proc_dir, ipvsadm_dir)
        print("selftest: %s" % ("passed" if ok else "FAILED"))
        return 0 if ok else 1
    args = [a for a in argv if not a.startswith("--")]
    opts = [a for a in argv if a.startswith("--")]
    unknown = [o for o in opts if o not in ("--no-netlink", "--proc-copy")]
    if len(args) != 2 or unknown:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    capdir, jpath = args
    no_netlink = "--no-netlink" in opts
    try:
        caps = load_caps(capdir)
    except (OSError, ValueError) as e:
        print("compare: cannot read the ipvsadm captures in %s: %s" % (capdir, e), file=sys.stderr)
        return 2
    try:
        with open(jpath) as f:
            doc = json.load(f)
        if not isinstance(doc, dict):
            raise ValueError("top level is not an object")
    except (OSError, ValueError) as e:
        print("compare: %s: not usable JSON: %s" % (jpath, e), file=sys.stderr)
        print("compare: 1 checks, 1 mismatches (%s)" % os.path.basename(jpath))
        return 1
    ck = Checker()
    try:
        compare(doc, caps, capdir, no_netlink, ck, proc_copy="--proc-copy" in opts)
    except Exception as e:  # a malformed document must fail the comparison, not crash it
        ck.fail("document", "comparison aborted: %s: %s" % (type(e).__name__, e))
    for m in ck.mismatches:
        print("MISMATCH " + m)
    print("compare: %d checks, %d mismatches (%s%s)" % (ck.checks, len(ck.mismatches), os.path.basename(jpath),
                                                        ", --no-netlink" if no_netlink else ""))
    return 1 if ck.mismatches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
