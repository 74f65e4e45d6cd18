#!/usr/bin/env python3
"""Check the dashboard's Services screen (a `tmux capture-pane -p` text) against ipvsadm.

    dashboard_compare.py [--no-persist] [--scaled] [--doctor] ROUND_DIR SCREEN_FILE
    dashboard_compare.py --selftest

ROUND_DIR holds ipvsadm-before/ and ipvsadm-after/, each with Ln.txt (`ipvsadm -Ln`) and
Ln-persistent-conn.txt (`ipvsadm -Ln --persistent-conn`), taken just before and just after the
screen was captured (Tests/Lab/scenarios/dashboard.sh writes them).

The screen is a tree: a service row (`TCP 10.0.0.100:80`, `FWM 1`, `FWM 2 IPv6`, ...), then its
real servers (`├─192.168.1.2:80`, ASCII `|-`/`` `- ``). Columns are found by their titles in the
header row (`Service / real server  Sched  Wt ActConn InAct Persist ...`): numbers are
right-aligned under their title, so a cell is the word that ends where its title ends.

Checked, for every service and every real server of ipvsadm and of the screen:
  present on both, in ipvsadm's order; scheduler / forwarding method (when the Sched column is
  shown); real server: Wt, ActConn, InAct, Persist; service row: ActConn, InAct, Persist (the
  sums over its real servers; its Wt cell must be empty); the title's "N virtual services,
  M real servers"; the summary line's Active and InAct totals.
A figure is compared strictly when every ipvsadm reading of it (before and after, -Ln and
--persistent-conn) agrees; otherwise the screen must show one of the readings (counted apart as
"loose"). With --no-persist (an unprivileged dashboard: no netlink), every Persist cell must be
"-" (unavailable, never 0). --scaled: the screen was captured before `x`, so counts past
100,000 must read as the dashboard scales them (ipvsadm's rule: 100500 -> 100K); without it
every number must be exact. --doctor adds 1 to the first real server's ActConn on the screen
before comparing (the result must be a mismatch: proves the check can fail).

Exit status: 0 everything matched, 1 mismatches, 2 unusable input. Standard library only; the
ipvsadm parsers come from compare.py beside this file.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import PCONN, PROTOS, addr_id, parse_columns, parse_ln, service_id, split_addr  # noqa: E402

BRANCHES = ("├─", "└─", "|-", "`-")


class Unusable(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# the screen
# ---------------------------------------------------------------------------------------------

def header_columns(line):
    """Header row -> {title: (start, end)} (end inclusive) for the titles we read."""
    cols = {}
    for m in re.finditer(r"\S+", line):
        cols.setdefault(m.group(0), (m.start(), m.end() - 1))
    return cols


def right_cell(line, end):
    """The word that ends at column `end` (a right-aligned cell); "" when the cell is empty."""
    if end >= len(line) or line[end] == " ":
        return ""
    if end + 1 < len(line) and line[end + 1] != " ":
        raise ValueError("cell at column %d runs past its title: %r" % (end, line))
    start = end
    while start > 0 and line[start - 1] != " ":
        start -= 1
    return line[start:end + 1]


def parse_service_name(tokens):
    """Leading tokens of a service row -> (service id, text)."""
    proto = PROTOS.get(tokens[0])
    if proto is None:
        raise ValueError("not a service row")
    if proto == "fwmark":
        fam = "ipv6" if len(tokens) > 2 and tokens[2] == "IPv6" else "ipv4"
        return service_id("fwmark", family=fam, fwmark=int(tokens[1]))
    a, p, fam = split_addr(tokens[1])
    return service_id(proto, a, p, fam)


def parse_screen(text):
    """capture-pane text -> dict: title counts, summary totals, columns, services (in order).

    service: {id, line, index, sched, wt, act, inact, persist, real_servers: [{id, line, index,
    forward, wt, act, inact, persist}]}; cells are the text shown ("" empty, "-" unavailable);
    index is the row's line number in the capture.
    """
    lines = text.splitlines()
    out = {"title": None, "summary": None, "services": [], "columns": [], "rows": 0, "source": None}
    # the top bar ends with the director's name and kernel when they fit, then the data
    # source's label ("lvs1 · 6.1.0-28-amd64 · /proc + netlink", "/proc", "replay demo...")
    if lines and "Help" in lines[0]:
        out["source"] = lines[0].rsplit("Help", 1)[1].strip().split(" · ")[-1]
    for line in lines:
        m = re.match(r"\s*(\d+) virtual services?, (\d+) real servers?", line)
        if m and out["title"] is None:
            out["title"] = (int(m.group(1)), int(m.group(2)))
        m = re.match(r"\s*Active (\S+)\s+InAct (\S+)", line)
        if m and out["summary"] is None:
            out["summary"] = (m.group(1), m.group(2))
    hdr = next((i for i, l in enumerate(lines) if "Service / real server" in l), None)
    if hdr is None:
        raise Unusable("no Services table header ('Service / real server') on the screen")
    cols = header_columns(lines[hdr])
    for need in ("Wt", "ActConn", "InAct"):
        if need not in cols:
            raise Unusable("the header has no %s column: %r" % (need, lines[hdr]))
    out["columns"] = [c for c in ("Sched", "Wt", "ActConn", "InAct", "Persist") if c in cols]

    def cells(line):
        r = {}
        for key, title in (("wt", "Wt"), ("act", "ActConn"), ("inact", "InAct"), ("persist", "Persist")):
            if title in cols:
                r[key] = right_cell(line, cols[title][1])
        if "Sched" in cols:
            s = cols["Sched"][0]
            r["sched"] = line[s:].split()[0] if line[s:].strip() else ""
        return r

    for index in range(hdr + 1, len(lines)):
        line = lines[index]
        body = line.strip()
        if not body:
            break
        tokens = body.split()
        if body.startswith(BRANCHES):
            if not out["services"]:
                raise Unusable("a real server row before any service: %r" % line)
            name = tokens[0][2:]
            try:
                a, p, fam = split_addr(name)
            except ValueError:
                raise Unusable("unreadable real server %r (cut short?) in %r" % (name, line))
            rs = {"id": addr_id(a, p, fam), "line": line, "index": index}
            rs.update(cells(line))
            rs["forward"] = rs.pop("sched", None)
            # a deleted real server says `gone` beside its address (the Sched cell is empty)
            if len(tokens) > 1 and tokens[1] == "gone":
                rs["forward"] = "gone"
            out["services"][-1]["real_servers"].append(rs)
            out["rows"] += 1
        elif tokens[0] in PROTOS:
            try:
                sid = parse_service_name(tokens)
            except (ValueError, IndexError):
                raise Unusable("unreadable service row (cut short?): %r" % line)
            svc = {"id": sid, "line": line, "index": index, "real_servers": []}
            svc.update(cells(line))
            out["services"].append(svc)
            out["rows"] += 1
        else:
            break   # the end of the table: a warning line or the key bar
    return out


def doctor(text):
    """The screen with the first real server's ActConn one higher (alignment kept)."""
    lines = text.splitlines()
    hdr = next(i for i, l in enumerate(lines) if "Service / real server" in l)
    end = header_columns(lines[hdr])["ActConn"][1]
    for i in range(hdr + 1, len(lines)):
        if lines[i].strip().startswith(BRANCHES):
            old = right_cell(lines[i], end)
            new = str(int(old) + 1)
            start = end + 1 - len(new)
            line = lines[i]
            if line[start:end + 1 - len(old)].strip():
                raise ValueError("no room to doctor %r" % line)
            lines[i] = line[:start] + new + line[end + 1:]
            return "\n".join(lines) + "\n", "%s ActConn %s -> %s" % (lines[i].strip().split()[0], old, new)
    raise ValueError("no real server row to doctor")


# ---------------------------------------------------------------------------------------------
# ipvsadm around the capture
# ---------------------------------------------------------------------------------------------

def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise Unusable("cannot read %s: %s" % (path, e.strerror))


def readings(round_dir):
    """[(name, {service_id: {"sched", "order", "real_servers": {rs_id: {...}}}})] of the four
    listings, in the order they were taken."""
    out = []
    for when in ("before", "after"):
        d = os.path.join(round_dir, "ipvsadm-" + when)
        ln = parse_ln(read(os.path.join(d, "Ln.txt")))
        pc = parse_columns(read(os.path.join(d, "Ln-persistent-conn.txt")), PCONN)
        a = {}
        for s in ln["services"]:
            a[s["id"]] = {"sched": s["scheduler"], "real_servers": {
                r["id"]: {"forward": {"masq": "Masq", "route": "Route", "tunnel": "Tunnel", "local": "Local",
                                      "bypass": "Bypass"}.get(r["forward"], r["forward"]),
                          "wt": r["weight"], "act": r["active_conns"], "inact": r["inactive_conns"]}
                for r in s["real_servers"]}, "rs_order": [r["id"] for r in s["real_servers"]]}
        b = {}
        for sid, v in pc.items():
            b[sid] = {"sched": None, "real_servers": {
                rid: {"wt": r["weight"], "persist": r["persistent_conns"], "act": r["active_conns"],
                      "inact": r["inactive_conns"]} for rid, r in v["real_servers"].items()},
                "rs_order": list(v["real_servers"])}
        listing = [(when + " -Ln", a, [s["id"] for s in ln["services"]]),
                   (when + " --persistent-conn", b, list(pc))]
        out += listing if when == "before" else listing[::-1]
    return out


# ---------------------------------------------------------------------------------------------
# the comparison
# ---------------------------------------------------------------------------------------------

def scaled(n):
    """A count as the dashboard writes it before `x` (Format.count, ipvsadm's rule): exact below
    100,000, else divided by 1000 until at most four digits are left, with K, M, G, T, P or E."""
    if n < 100000:
        return str(n)
    unit = 0
    while n >= 10000 and unit < 6:
        n //= 1000
        unit += 1
    return str(n) + "KMGTPE"[unit - 1]


class Result:
    def __init__(self, scale=False):
        self.scale = scale
        self.scaled_figures = 0
        self.strict = 0
        self.loose = 0
        self.labels = 0
        self.unavailable = 0
        self.problems = []

    def bad(self, msg):
        self.problems.append(msg)

    def figure(self, where, shown, values, never_scaled=False):
        """A number on screen against its ipvsadm readings (a list, one per listing). Weights
        are never_scaled (the dashboard writes them whole, and ipvsadm caps them at 65535)."""
        if not values:
            self.bad("%s: no ipvsadm reading" % where)
            return
        shown = shown if shown else "(empty)"
        # what the screen should show of each reading: the number, or scaled before `x`
        scale = self.scale and not never_scaled
        want = [scaled(x) if scale else str(x) for x in values]
        if scale and any(x >= 100000 for x in values):
            self.scaled_figures += 1
        if len(set(values)) == 1:
            self.strict += 1
            if shown != want[0]:
                self.bad("%s: screen %s, ipvsadm %d%s (before and after)"
                         % (where, shown, values[0], " = " + want[0] if want[0] != str(values[0]) else ""))
        else:
            self.loose += 1
            if shown not in want:
                self.bad("%s: screen %s, ipvsadm readings %s (changed during the capture)"
                         % (where, shown, "/".join(map(str, values))))

    def label(self, where, shown, values):
        values = [x for x in values if x is not None]
        if shown is None or not values:
            return
        self.labels += 1
        if shown not in values:
            self.bad("%s: screen %r, ipvsadm %r" % (where, shown, values[0]))


def compare(screen, listings, no_persist, scale=False):
    r = Result(scale)
    # the top bar says what the data came from: netlink only when it was used
    want = "/proc" if no_persist else "/proc + netlink"
    if screen["source"] != want:
        r.bad("top bar says the source is %r, expected %r" % (screen["source"], want))
    # the set of services and real servers: on the screen and in each listing
    shown = [s["id"] for s in screen["services"]]
    shown_set = set(shown)
    all_ids = []
    for name, data, order in listings:
        for sid in order:
            if sid not in all_ids:
                all_ids.append(sid)
        if [s for s in shown if s in data] != [s for s in order if s in shown_set]:
            r.bad("services not in ipvsadm's order (%s): screen %s, ipvsadm %s" % (name, shown, order))
    for sid in all_ids:
        if sid not in shown_set:
            r.bad("service %s: in ipvsadm, not on the screen" % sid)
    for sid in shown:
        if not any(sid in data for _, data, _ in listings):
            r.bad("service %s: on the screen, not in ipvsadm" % sid)
    if len(shown) != len(shown_set):
        r.bad("a service shown twice: %s" % shown)

    want_services = {len(order) for _, _, order in listings}
    want_rs = {sum(len(d["real_servers"]) for d in data.values()) for _, data, _ in listings}
    if screen["title"] is None:
        r.bad("no 'N virtual services, M real servers' title")
    else:
        r.figure("title: virtual services", str(screen["title"][0]), sorted(want_services))
        r.figure("title: real servers", str(screen["title"][1]), sorted(want_rs))
    total_rows = len(screen["services"]) + sum(len(s["real_servers"]) for s in screen["services"])
    if screen["title"] and total_rows != sum(screen["title"]):
        r.bad("the table shows %d rows, the title counts %d (rows hidden or extra?)" % (total_rows, sum(screen["title"])))

    tot_act = [sum(x["act"] for d in data.values() for x in d["real_servers"].values()) for _, data, _ in listings]
    tot_inact = [sum(x["inact"] for d in data.values() for x in d["real_servers"].values()) for _, data, _ in listings]
    if screen["summary"] is None:
        r.bad("no 'Active N  InAct M' summary line")
    else:
        r.figure("summary: Active", screen["summary"][0], tot_act)
        r.figure("summary: InAct", screen["summary"][1], tot_inact)

    have_persist = "Persist" in screen["columns"]
    for svc in screen["services"]:
        sid = svc["id"]
        here = [(name, data[sid]) for name, data, _ in listings if sid in data]
        if not here:
            continue
        r.label("%s scheduler" % sid, svc.get("sched"), [d["sched"] for _, d in here])
        if svc.get("wt", ""):
            r.bad("%s: the service row shows a weight %r" % (sid, svc["wt"]))
        for key, title in (("act", "ActConn"), ("inact", "InAct")):
            r.figure("%s %s (sum)" % (sid, title), svc[key],
                     [sum(x[key] for x in d["real_servers"].values()) for _, d in here])
        if have_persist:
            pcs = [d for name, d in here if "persistent-conn" in name]
            if no_persist:
                r.unavailable += 1
                if svc["persist"] != "-":
                    r.bad("%s Persist (sum): screen %r, expected '-' (no netlink)" % (sid, svc["persist"]))
            else:
                r.figure("%s Persist (sum)" % sid, svc["persist"],
                         [sum(x["persist"] for x in d["real_servers"].values()) for d in pcs])
        # real servers
        rs_shown = [x["id"] for x in svc["real_servers"]]
        for name, d in here:
            order = [x for x in d["rs_order"] if x in rs_shown]
            if [x for x in rs_shown if x in d["real_servers"]] != order:
                r.bad("%s: real servers not in ipvsadm's order (%s): screen %s, ipvsadm %s"
                      % (sid, name, rs_shown, d["rs_order"]))
        every = []
        for _, d in here:
            every += [x for x in d["rs_order"] if x not in every]
        for rid in every:
            if rid not in rs_shown:
                r.bad("%s -> %s: in ipvsadm, not on the screen" % (sid, rid))
        for rs in svc["real_servers"]:
            rid = rs["id"]
            where = "%s -> %s" % (sid, rid)
            got = [(name, d["real_servers"][rid]) for name, d in here if rid in d["real_servers"]]
            if not got:
                r.bad("%s: on the screen (%s), not in ipvsadm" % (where, rs.get("forward") or "?"))
                continue
            r.label(where + " forwarding", rs.get("forward"), [x.get("forward") for _, x in got])
            r.figure(where + " Wt", rs["wt"], [x["wt"] for _, x in got], never_scaled=True)
            r.figure(where + " ActConn", rs["act"], [x["act"] for _, x in got])
            r.figure(where + " InAct", rs["inact"], [x["inact"] for _, x in got])
            if have_persist:
                if no_persist:
                    r.unavailable += 1
                    if rs["persist"] != "-":
                        r.bad("%s Persist: screen %r, expected '-' (no netlink)" % (where, rs["persist"]))
                else:
                    r.figure(where + " Persist", rs["persist"], [x["persist"] for n, x in got if "persistent-conn" in n])
    if not have_persist and not no_persist:
        r.bad("no Persist column on the screen (PersistConn not compared)")
    return r


def run(round_dir, screen_path, no_persist=False, doctored=False, quiet=False, scale=False):
    """Compare; returns (exit status, Result or None, summary line)."""
    try:
        text = read(screen_path)
        note = ""
        if doctored:
            text, what = doctor(text)
            note = " [doctored: %s]" % what
        screen = parse_screen(text)
        listings = readings(round_dir)
    except (Unusable, ValueError, KeyError) as e:
        msg = "dashboard_compare: unusable input: %s" % e
        if not quiet:
            print(msg)
        return 2, None, msg
    r = compare(screen, listings, no_persist, scale)
    nsvc = len(screen["services"])
    nrs = sum(len(s["real_servers"]) for s in screen["services"])
    changed = r.loose
    summary = ("%s: %d services, %d real servers, %d figures compared (%d strict, %d loose: ipvsadm moved), "
               "%d labels, %d Persist cells '-'%s, %s, %d mismatches%s"
               % (os.path.basename(screen_path), nsvc, nrs, r.strict + r.loose, r.strict, changed,
                  r.labels, r.unavailable, " (no netlink)" if no_persist else "",
                  ("scaled numbers: %d past 100,000" % r.scaled_figures) if scale else "exact numbers",
                  len(r.problems), note))
    if not quiet:
        for p in r.problems:
            print("MISMATCH " + p)
        print(("PASS " if not r.problems else "FAIL ") + summary)
    return (0 if not r.problems else 1), r, summary


# ---------------------------------------------------------------------------------------------
# self-test
# ---------------------------------------------------------------------------------------------

def selftest():
    import shutil
    import tempfile
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    fix = os.path.join(root, "Tests", "Fixtures", "dashboard-lab")
    fails = []

    def check(cond, msg):
        print(("ok - " if cond else "not ok - ") + msg)
        if not cond:
            fails.append(msg)

    # 1. the parser on the reference captures of the demo (Screens/): tree, gone row, ASCII;
    #    at 80x24 the table is cut by the screen's height (the title still counts everything)
    for name, full in (("services-120x40.txt", True), ("services-80x24.txt", False), ("services-ascii-80x24.txt", False)):
        s = parse_screen(read(os.path.join(root, "Screens", name)))
        rows = {(svc["id"], rs["id"]): rs for svc in s["services"] for rs in svc["real_servers"]}
        ok = (s["title"] == (8, 19) and s["summary"] == ("764", "1271")
              and rows[("tcp:10.0.0.100:80", "192.168.1.3:80")]["act"] == "533"
              and rows[("tcp:10.0.0.100:80", "192.168.1.3:80")]["wt"] == "2"
              and rows[("tcp:10.0.0.100:80", "192.168.1.5:80")]["inact"] == "15"
              and rows[("tcp:10.0.0.100:443", "192.168.1.6:443")]["persist"] == "17"
              and rows[("tcp:10.0.0.100:443", "192.168.1.6:443")]["wt"] == "0"
              and s["services"][0]["wt"] == "" and s["services"][0]["act"] == "566")
        if full:
            ok = ok and len(s["services"]) == 8 and s["rows"] == 8 + 19 + 1 \
                and rows[("fwmark:1", "192.168.3.5:0")]["inact"] == "33" \
                and rows[("tcp:[fd00:100::100]:443", "[fd00:2::2]:443")]["act"] == "7" \
                and rows[("tcp:10.0.0.100:8443", "192.168.1.8:8443")]["forward"] == "gone" \
                and rows[("tcp:10.0.0.100:80", "192.168.1.5:80")]["forward"] == "Route" \
                and s["services"][0]["sched"] == "sh"
        else:
            ok = ok and s["rows"] < 8 + 19 and "Sched" not in s["columns"]
        check(ok, "parses Screens/%s (%s)" % (name, "8 services, 19 real servers + 1 gone" if full
                                             else "the rows that fit; no Sched column"))

    # 2. the committed lab sample (Tests/Fixtures/dashboard-lab): root and nobody, each captured
    #    before `x` (scaled), after it (exact) and paused
    root_dir, user_dir = os.path.join(fix, "root"), os.path.join(fix, "user")
    for d, no_persist in ((root_dir, False), (user_dir, True)):
        who = "root" if d == root_dir else "nobody"
        for name, scale in (("screen-scaled.txt", True), ("screen-live.txt", False), ("screen-paused.txt", False)):
            st, r, line = run(d, os.path.join(d, name), no_persist=no_persist, scale=scale, quiet=True)
            check(st == 0 and r.strict >= 100 and (r.unavailable > 0) == no_persist
                  and (r.scaled_figures >= 3 if scale else True), "lab sample (%s) matches: %s" % (who, line))
    st, r, _ = run(root_dir, os.path.join(root_dir, "screen-scaled.txt"), quiet=True)
    check(st == 1 and any("screen 100K" in p for p in r.problems), "a scaled capture fails as exact (100K is not 100500)")
    st, r, _ = run(root_dir, os.path.join(root_dir, "screen-paused.txt"), scale=True, quiet=True)
    check(st == 1 and any("= 100K" in p for p in r.problems), "an exact capture fails as scaled (100500 is not 100K)")
    st, r, _ = run(user_dir, os.path.join(user_dir, "screen-paused.txt"), quiet=True)
    check(st == 1 and any("Persist" in p for p in r.problems), "nobody's '-' Persist cells fail without --no-persist")
    st, r, _ = run(root_dir, os.path.join(root_dir, "screen-paused.txt"), no_persist=True, quiet=True)
    check(st == 1 and any("expected '-'" in p for p in r.problems), "root's numbers fail where '-' is expected")
    st, r, _ = run(root_dir, os.path.join(root_dir, "screen-paused.txt"), no_persist=True, quiet=True)
    check(st == 1 and any("top bar" in p for p in r.problems), "a top bar claiming netlink fails for nobody")

    # 3. doctored captures must fail
    tmp = tempfile.mkdtemp(prefix="dashcmp-")
    try:
        base = read(os.path.join(root_dir, "screen-paused.txt"))
        parsed = parse_screen(base)
        cell = {(svc["id"], rs["id"]): rs for svc in parsed["services"] for rs in svc["real_servers"]}

        def with_screen(text, name):
            p = os.path.join(tmp, name)
            with open(p, "w", encoding="utf-8") as f:
                f.write(text)
            return run(root_dir, p, quiet=True)

        st, r, line = run(root_dir, os.path.join(root_dir, "screen-paused.txt"), doctored=True, quiet=True)
        check(st == 1 and len(r.problems) >= 1 and any("ActConn: screen" in p for p in r.problems),
              "--doctor (first real server's ActConn + 1) is a mismatch: " + "; ".join(r.problems))

        def edit(text, sid, rid, col, new):
            """Replace one real server's cell (by column title) keeping the alignment."""
            lines = text.splitlines()
            hdr = next(i for i, l in enumerate(lines) if "Service / real server" in l)
            end = header_columns(lines[hdr])[col][1]
            rs = next(x for svc in parse_screen(text)["services"] if svc["id"] == sid
                      for x in svc["real_servers"] if x["id"] == rid)
            l = lines[rs["index"]]
            old = right_cell(l, end)
            w = max(len(old), len(new))
            lines[rs["index"]] = l[:end + 1 - w] + new.rjust(w) + l[end + 1:]
            return "\n".join(lines) + "\n"

        for (sid, rid), col, key, what in ((("fwmark:1", "192.168.3.2:0"), "Wt", "wt", "weight"),
                                            (("tcp:10.0.0.100:443", "192.168.2.2:443"), "Persist", "persist", "PersistConn"),
                                            (("tcp:[fd00:100::100]:80", "[fd00:3::2]:80"), "InAct", "inact", "InActConn (IPv6)"),
                                            (("fwmark6:1", "[fd00:3::2]:0"), "ActConn", "act", "ActiveConn (FWM 1 IPv6, not FWM 1)"),
                                            (("udp:10.0.0.100:5353", "192.168.3.2:5353"), "InAct", "inact", "InActConn past 100,000")):
            old = int(cell[(sid, rid)][key])
            st, r, _ = with_screen(edit(base, sid, rid, col, str(old + 1)), "doctored.txt")
            want = "%s -> %s %s: screen %d, ipvsadm %d" % (sid, rid, col, old + 1, old)
            check(st == 1 and any(want in p for p in r.problems), "a doctored %s is a mismatch (%s)" % (what, want))
        lines = base.splitlines()
        st, r, _ = with_screen("\n".join(l for l in lines if "192.168.2.2:53 " not in l) + "\n", "missing.txt")
        check(st == 1 and any("192.168.2.2:53: in ipvsadm, not on the screen" in p for p in r.problems),
              "a real server missing from the screen is reported")
        i = next(i for i, l in enumerate(lines) if l.startswith(" UDP 10.0.0.100:53 "))
        swapped = list(lines)
        swapped[i + 1], swapped[i + 2] = swapped[i + 2], swapped[i + 1]
        st, r, _ = with_screen("\n".join(swapped) + "\n", "order.txt")
        check(st == 1 and any("not in ipvsadm's order" in p for p in r.problems), "real servers out of order are reported")
        active = parsed["summary"][0]
        st, r, _ = with_screen(base.replace("Active %s " % active, "Active %d " % (int(active) + 1), 1), "summary.txt")
        check(st == 1 and any("summary: Active" in p for p in r.problems), "a wrong summary total is reported")
        j = next(i for i, l in enumerate(lines) if "Service / real server" in l)
        st, r, _ = with_screen("\n".join(lines[:j + 10]) + "\n", "cut.txt")
        check(st == 1 and any("rows hidden" in p for p in r.problems), "a table cut short (rows hidden) is reported")
        st, r, _ = with_screen("nothing here\n", "empty.txt")
        check(st == 2, "a capture without the Services table is unusable (exit 2)")

        # 4. ipvsadm moving between before and after: the screen must equal one reading
        moved = os.path.join(tmp, "moved")
        shutil.copytree(root_dir, moved)
        after = os.path.join(moved, "ipvsadm-after")
        for f in ("Ln.txt", "Ln-persistent-conn.txt"):
            t = read(os.path.join(after, f))
            t2 = re.sub(r"(-> 192\.168\.1\.2:80 .*?)(\d+)(\s*)$",
                        lambda m: m.group(1) + str(int(m.group(2)) + 2) + m.group(3), t, count=1, flags=re.M)
            assert t2 != t, f
            with open(os.path.join(after, f), "w", encoding="utf-8") as fh:
                fh.write(t2)
        st, r, line = run(moved, os.path.join(moved, "screen-paused.txt"), quiet=True)
        check(st == 0 and r.loose >= 3, "screen equal to the 'before' reading of a moving figure passes loosely: " + line)
        old = int(cell[("tcp:10.0.0.100:80", "192.168.1.2:80")]["inact"])
        t = edit(read(os.path.join(moved, "screen-paused.txt")), "tcp:10.0.0.100:80", "192.168.1.2:80", "InAct", str(old + 1))
        with open(os.path.join(moved, "between.txt"), "w", encoding="utf-8") as fh:
            fh.write(t)
        st, r, _ = run(moved, os.path.join(moved, "between.txt"), quiet=True)
        check(st == 1 and any("changed during the capture" in p for p in r.problems),
              "a moving figure shown as neither reading (%d, between %d and %d) is a mismatch" % (old + 1, old, old + 2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("selftest: %d failed" % len(fails))
    return 1 if fails else 0


def main(argv):
    if argv[1:2] == ["--selftest"]:
        return selftest()
    args = [a for a in argv[1:] if not a.startswith("--")]
    opts = {a for a in argv[1:] if a.startswith("--")}
    unknown = opts - {"--no-persist", "--doctor", "--scaled"}
    if len(args) != 2 or unknown:
        print("usage: dashboard_compare.py [--no-persist] [--scaled] [--doctor] ROUND_DIR SCREEN_FILE | --selftest",
              file=sys.stderr)
        return 2
    st, _, _ = run(args[0], args[1], no_persist="--no-persist" in opts, doctored="--doctor" in opts,
                   scale="--scaled" in opts)
    return st


if __name__ == "__main__":
    sys.exit(main(sys.argv))
