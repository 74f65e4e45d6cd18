#!/usr/bin/env python3
"""Compares what the subagent serves (an snmpwalk of IPVSTOP-MIB, names and -OqbeU
output) with `ipvstop snapshot --json --top 0` of the same /proc tree, and with the tree's
own ip_vs_conn for the client table. Prints one `ok - ...` or `FAIL - ...` line per check.

    check.py compare WALK JSON PROC_TREE
    check.py indexes WALK_BEFORE WALK_AFTER      (row identities kept across polls)
    check.py demo WALK                           (the demo source: netlink-only columns)
"""
import ipaddress
import json
import sys

results = []


def check(name, cond, detail=""):
    results.append((bool(cond), name, detail))


def parse_walk(path):
    """{object: {index tuple: value text}} from `snmpwalk -OqbeU` lines."""
    out = {}
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if not line.startswith("IPVSTOP-MIB::"):
            continue
        name, _, value = line[len("IPVSTOP-MIB::"):].partition(" ")
        obj, _, idx = name.partition(".")
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
        index = tuple(int(x) for x in idx.split(".")) if idx else ()
        out.setdefault(obj, {})[index] = value
    return out


def hexbytes(v):
    return bytes(int(x, 16) for x in v.split())


def inet(v):
    b = hexbytes(v)
    if len(b) == 0:
        return None
    return str(ipaddress.ip_address(b))


def addr_index(index):
    """(type, len, bytes...) at the start of an index -> (address text, rest)."""
    t, n = index[0], index[1]
    b = bytes(index[2:2 + n])
    return str(ipaddress.ip_address(b)), index[2 + n:]


def split_endpoint(ep):
    if ep.startswith("["):
        a, _, p = ep[1:].partition("]:")
    else:
        a, _, p = ep.rpartition(":")
    return str(ipaddress.ip_address(a)), int(p)


def scalar(w, name):
    return w.get(name, {}).get((0,))


def compare(walk_path, json_path, tree):
    w = parse_walk(walk_path)
    s = json.load(open(json_path))

    # Scalars.
    check("ipvsVersion", scalar(w, "ipvsVersion") == s["ipvs"]["version"], scalar(w, "ipvsVersion"))
    check("ipvsTableSize", scalar(w, "ipvsTableSize") == str(s["ipvs"]["table_size"]))
    check("ipvsServices", scalar(w, "ipvsServices") == str(len(s["services"])))
    nrs = sum(len(x["real_servers"]) for x in s["services"])
    check("ipvsRealServers", scalar(w, "ipvsRealServers") == str(nrs))
    check("ipvsConnections", scalar(w, "ipvsConnections") == str(s["connections"]["total"]))
    check("ipvsTemplates", scalar(w, "ipvsTemplates") == str(s["connections"]["templates"]))
    g = s["global"]
    for col, key in [("Conns", "conns"), ("InPkts", "in_packets"), ("OutPkts", "out_packets"),
                     ("InBytes", "in_bytes"), ("OutBytes", "out_bytes")]:
        check("ipvsStats" + col, scalar(w, "ipvsStats" + col) == str(g["stats"][key]),
              f'{scalar(w, "ipvsStats" + col)} vs {g["stats"][key]}')
    for col, key in [("Cps", "cps"), ("InPps", "in_pps"), ("OutPps", "out_pps"), ("InBps", "in_bps"), ("OutBps", "out_bps")]:
        check("ipvsRate" + col, scalar(w, "ipvsRate" + col) == str(round(g["rates"][key])))
    check("ipvsEntryBytes", scalar(w, "ipvsEntryBytes") == str(g["entry_bytes"]))
    check("ipvsEntryMemory", scalar(w, "ipvsEntryMemory") == str(g["entry_memory_bytes"]))
    check("ipvsTimeoutTcp absent without netlink", (g["timeouts"] is None) == (scalar(w, "ipvsTimeoutTcp") is None))
    check("ipvsNetlinkUsed", scalar(w, "ipvsNetlinkUsed") == ("1" if s["source"]["netlink"]["used"] else "2"))
    check("ipvsProcRoot", scalar(w, "ipvsProcRoot") == s["source"]["proc_root"])
    host = s.get("host") or {}
    check("ipvsHostName", scalar(w, "ipvsHostName") == host.get("hostname"), f'{scalar(w, "ipvsHostName")!r} vs {host.get("hostname")!r}')
    check("ipvsKernelRelease", scalar(w, "ipvsKernelRelease") == host.get("kernel_release") and host.get("kernel_release"),
          f'{scalar(w, "ipvsKernelRelease")!r} vs {host.get("kernel_release")!r}')
    check("ipvsSnapshotAge", scalar(w, "ipvsSnapshotAge") is not None and int(scalar(w, "ipvsSnapshotAge")) < 60000)
    check("ipvsConnTableReadCalls", int(scalar(w, "ipvsConnTableReadCalls") or 0) >= 1)
    check("ipvsSnapshotTakenAt is a DateAndTime", (scalar(w, "ipvsSnapshotTakenAt") or "").count(",") == 2,
          scalar(w, "ipvsSnapshotTakenAt"))
    # ip_vs_status (7.1+, root only), the table read's completeness and pacing.
    st = s["ipvs"]["status"]
    want = "1" if st["available"] else ("3" if st["reason"].startswith("no net/ip_vs_status") else "2")
    check("ipvsKernelStatusState", scalar(w, "ipvsKernelStatusState") == want, f'{scalar(w, "ipvsKernelStatusState")} vs {want}')
    if st["available"]:
        check("ipvsKernelConns", scalar(w, "ipvsKernelConns") == str(st["conns"]))
        cb = st["conn_buckets"]
        check("ipvsKernelConnBuckets", scalar(w, "ipvsKernelConnBuckets") == str(cb["buckets"]))
        check("ipvsKernelConnLoadFactor", scalar(w, "ipvsKernelConnLoadFactor") == str(cb["lfactor"]))
    else:
        check("ip_vs_status objects absent without it", scalar(w, "ipvsKernelConns") is None and scalar(w, "ipvsKernelConnBuckets") is None)
    comp = s["connections"]["completeness"]
    verdicts = {"whole": "1", "partial": "2", "unchecked": "3"}
    check("ipvsConnTableCompleteness", scalar(w, "ipvsConnTableCompleteness") == verdicts[comp["verdict"]],
          f'{scalar(w, "ipvsConnTableCompleteness")} vs {comp["verdict"]}')
    check("ipvsConnTablePacing", scalar(w, "ipvsConnTablePacing") in ("1", "2"), scalar(w, "ipvsConnTablePacing"))
    sysmap = {"expire_nodest_conn": "ipvsSysExpireNodestConn", "expire_quiescent_template": "ipvsSysExpireQuiescentTemplate",
              "amemthresh": "ipvsSysAmemthresh", "drop_entry": "ipvsSysDropEntry", "drop_packet": "ipvsSysDropPacket",
              "conn_reuse_mode": "ipvsSysConnReuseMode", "secure_tcp": "ipvsSysSecureTcp", "conntrack": "ipvsSysConntrack",
              "sloppy_tcp": "ipvsSysSloppyTcp", "sloppy_sctp": "ipvsSysSloppySctp", "am_droprate": "ipvsSysAmDroprate",
              "cache_bypass": "ipvsSysCacheBypass", "backup_only": "ipvsSysBackupOnly", "sync_version": "ipvsSysSyncVersion",
              "sync_persist_mode": "ipvsSysSyncPersistMode", "schedule_icmp": "ipvsSysScheduleIcmp",
              "ignore_tunneled": "ipvsSysIgnoreTunneled", "run_estimation": "ipvsSysRunEstimation",
              "conn_lfactor": "ipvsSysConnLfactor", "svc_lfactor": "ipvsSysSvcLfactor"}
    bad = [k for k, o in sysmap.items() if k in s["sysctls"] and scalar(w, o) != str(s["sysctls"][k])]
    check("sysctl scalars", not bad, bad)
    table = w.get("ipvsSysctlValue", {})
    names = {bytes(i).decode(): v for i, v in table.items()}
    bad = [k for k, v in s["sysctls"].items() if names.get(k) != str(v)]
    check(f"ipvsSysctlTable ({len(names)} rows)", not bad and len(names) == len(s["sysctls"]), bad)

    # Services.
    keys = w.get("ipvsServiceKey", {})
    by_key = {v: i[0] for i, v in keys.items()}
    check("one service row per service", sorted(by_key) == sorted(x["id"] for x in s["services"]),
          f"{sorted(by_key)} vs {sorted(x['id'] for x in s['services'])}")
    proto = {"tcp": "6", "udp": "17", "sctp": "132"}
    errors = []
    for svc in s["services"]:
        i = by_key.get(svc["id"])
        if i is None:
            continue
        col = lambda name: w.get(name, {}).get((i,))
        want = {
            "ipvsServiceType": "2" if svc["protocol"] == "fwmark" else "1",
            "ipvsServiceFamily": "1" if svc["family"] == "ipv4" else "2",
            "ipvsServiceProtocol": proto.get(svc["protocol"]),
            "ipvsServiceAddressType": "0" if svc["address"] is None else ("1" if svc["family"] == "ipv4" else "2"),
            "ipvsServicePort": str(svc["port"] or 0),
            "ipvsServiceFwMark": str(svc["fwmark"] or 0),
            "ipvsServiceScheduler": svc["scheduler"],
            "ipvsServiceRealServers": str(len(svc["real_servers"])),
            "ipvsServiceTotalWeight": str(sum(max(0, r["weight"]) for r in svc["real_servers"])),
            "ipvsServiceActiveConns": str(svc["active_conns"]),
            "ipvsServiceInactiveConns": str(svc["inactive_conns"]),
            "ipvsServicePersistConns": None if svc["persistent_conns"] is None else str(svc["persistent_conns"]),
            "ipvsServicePEName": svc["pe_name"],
            "ipvsServiceStatsConns": None if svc["stats"] is None else str(svc["stats"]["conns"]),
            "ipvsServiceRateCps": None if svc["rates"] is None else str(round(svc["rates"]["cps"])),
        }
        p = svc["persistence"]
        want["ipvsServicePersistTimeout"] = None if p is None or p["timeout_s"] is None else str(p["timeout_s"])
        if p is None:
            want["ipvsServicePersistNetmask"] = None
        elif isinstance(p["netmask"], int):
            want["ipvsServicePersistNetmask"] = str(p["netmask"])
        else:
            want["ipvsServicePersistNetmask"] = str(ipaddress.ip_network("0.0.0.0/" + p["netmask"]).prefixlen)
        for k, v in want.items():
            if col(k) != v:
                errors.append(f"{svc['id']} {k}: {col(k)!r} != {v!r}")
        a = col("ipvsServiceAddress")
        if (inet(a) if a is not None else None) != (str(ipaddress.ip_address(svc["address"])) if svc["address"] else None):
            errors.append(f"{svc['id']} address {a!r}")
        if col("ipvsServiceAddressText") != (svc["address"] or ""):
            errors.append(f"{svc['id']} address text {col('ipvsServiceAddressText')!r}")
        flags = int((col("ipvsServiceFlags") or "00").split()[0], 16)
        if bool(flags & 0x80) != ("persistent" in svc["flags"]) or bool(flags & 0x20) != ("ops" in svc["flags"]):
            errors.append(f"{svc['id']} flags {col('ipvsServiceFlags')} vs {svc['flags']}")
    check(f"ipvsServiceTable ({len(keys)} rows, every column)", not errors, errors[:5])

    # Real servers.
    rs_keys = w.get("ipvsRealServerKey", {})
    fwd = {"masq": "1", "local": "2", "tunnel": "3", "route": "4", "bypass": "5"}
    errors = []
    count = 0
    for svc in s["services"]:
        si = by_key.get(svc["id"])
        rows = {v: i for i, v in rs_keys.items() if i[0] == si}
        if sorted(rows) != sorted(r["id"] for r in svc["real_servers"]):
            errors.append(f"{svc['id']}: rows {sorted(rows)}")
            continue
        conns = sum(r["active_conns"] + r["inactive_conns"] for r in svc["real_servers"])
        weight = sum(max(0, r["weight"]) for r in svc["real_servers"])
        for r in svc["real_servers"]:
            idx = rows[r["id"]]
            count += 1
            col = lambda name: w.get(name, {}).get(idx)
            share = lambda part, total: 0 if total <= 0 or part <= 0 else min(1000, (part * 1000 + total // 2) // total)
            want = {
                "ipvsRealServerAddressType": "1" if r["family"] == "ipv4" else "2",
                "ipvsRealServerPort": str(r["port"]),
                "ipvsRealServerForward": fwd[r["forward"]],
                "ipvsRealServerWeight": str(r["weight"]),
                "ipvsRealServerActiveConns": str(r["active_conns"]),
                "ipvsRealServerInactiveConns": str(r["inactive_conns"]),
                "ipvsRealServerPersistConns": None if r["persistent_conns"] is None else str(r["persistent_conns"]),
                "ipvsRealServerUpperThreshold": None if r["upper_threshold"] is None else str(r["upper_threshold"]),
                "ipvsRealServerLowerThreshold": None if r["lower_threshold"] is None else str(r["lower_threshold"]),
                "ipvsRealServerStatsInBytes": None if r["stats"] is None else str(r["stats"]["in_bytes"]),
                "ipvsRealServerRateOutBps": None if r["rates"] is None else str(round(r["rates"]["out_bps"])),
                "ipvsRealServerConnShare": str(share(r["active_conns"] + r["inactive_conns"], conns)),
                "ipvsRealServerWeightShare": str(share(max(0, r["weight"]), weight)),
            }
            for k, v in want.items():
                got = col(k)
                if k.endswith("Share") and got is not None:
                    got = str(int(got.replace(".", "") or 0))  # DISPLAY-HINT "d-1": 14.3 is 143
                if got != v:
                    errors.append(f"{svc['id']} {r['id']} {k}: {got!r} != {v!r}")
            if inet(col("ipvsRealServerAddress") or "") != str(ipaddress.ip_address(r["address"])):
                errors.append(f"{r['id']} address")
            if col("ipvsRealServerAddressText") != r["address"]:
                errors.append(f"{r['id']} address text {col('ipvsRealServerAddressText')!r}")
            if col("ipvsRealServerServiceKey") != svc["id"]:
                errors.append(f"{r['id']} service key {col('ipvsRealServerServiceKey')!r} != {svc['id']!r}")
    check(f"ipvsRealServerTable ({count} rows, every column)", not errors and count == len(rs_keys), errors[:5])

    # Templates (the agent runs with --top 0: all of them).
    t_rank = w.get("ipvsTemplateRank", {})
    errors = []
    rows = {}
    for idx, rank in t_rank.items():
        client, _ = addr_index(idx[1:])
        rows[int(rank)] = (idx, client)
    tpls = s["templates"]
    check(f"ipvsTemplateTable has every template ({len(t_rank)} rows)", len(t_rank) == len(tpls), f"{len(t_rank)} vs {len(tpls)}")
    for n, t in enumerate(tpls, 1):
        if n not in rows:
            errors.append(f"rank {n} missing")
            continue
        idx, client = rows[n]
        col = lambda name: w.get(name, {}).get(idx)
        if client != str(ipaddress.ip_address(t["client"])):
            errors.append(f"rank {n}: client {client} != {t['client']}")
        if col("ipvsTemplateServiceKey") != t["service"]:
            errors.append(f"rank {n}: service {col('ipvsTemplateServiceKey')} != {t['service']}")
        si = idx[0]
        if t["service_exists"] and si != by_key.get(t["service"]):
            errors.append(f"rank {n}: service index {si}")
        a, p = split_endpoint(t["real_server"])
        if inet(col("ipvsTemplateDestAddress") or "") != a:
            errors.append(f"rank {n}: dest {col('ipvsTemplateDestAddress')} != {a}")
        if col("ipvsTemplateDestAddressText") != a or col("ipvsTemplateClientAddressText") != client:
            errors.append(f"rank {n}: address texts {col('ipvsTemplateClientAddressText')!r} {col('ipvsTemplateDestAddressText')!r}")
        ri = int(col("ipvsTemplateRealServerIndex") or -1)
        if ri and rs_keys.get((si, ri)) is None:
            errors.append(f"rank {n}: real server index {ri} not a row")
        for k, v in [("ipvsTemplateExpires", str(t["expires_s"])), ("ipvsTemplateState", t["state"]),
                     ("ipvsTemplateControlledConns", str(t["controlled_conns"]))]:
            if col(k) != v:
                errors.append(f"rank {n}: {k} {col(k)!r} != {v!r}")
    check("ipvsTemplateTable values and order match snapshot --json", not errors, errors[:5])

    # Clients: counted from the tree's ip_vs_conn directly.
    per = {}
    for line in open(f"{tree}/net/ip_vs_conn"):
        f = line.split()
        if len(f) < 9 or f[0] == "Pro":
            continue
        if f[2] == "0000":
            continue  # template
        c = f[1]
        client = str(ipaddress.ip_address(int(c, 16))) if ":" not in c else str(ipaddress.ip_address(c))
        tot, est = per.get(client, (0, 0))
        per[client] = (tot + 1, est + (1 if f[7] == "ESTABLISHED" else 0))
    c_conns = w.get("ipvsClientConns", {})
    served = {}
    for idx, v in c_conns.items():
        a, _ = addr_index(idx)
        served[a] = (idx, int(v))
    errors = []
    for a, (tot, est) in per.items():
        if a not in served:
            errors.append(f"{a} missing")
            continue
        idx, v = served[a]
        if v != tot or w["ipvsClientActiveConns"][idx] != str(est) or w["ipvsClientInactiveConns"][idx] != str(tot - est):
            errors.append(f"{a}: {v} {w['ipvsClientActiveConns'][idx]} vs {tot} {est}")
        if w.get("ipvsClientAddressText", {}).get(idx) != a:
            errors.append(f"{a}: address text {w.get('ipvsClientAddressText', {}).get(idx)!r}")
    ranks = sorted((int(w["ipvsClientRank"][i]), n) for _, (i, n) in served.items())
    if [n for _, n in ranks] != sorted((n for _, n in ranks), reverse=True):
        errors.append("ranks not by connections")
    bad_ptr = [i for i, v in w.get("ipvsClientTopServiceIndex", {}).items() if v != "0" and (int(v),) not in keys]
    check(f"ipvsClientTable: every client's counts from ip_vs_conn ({len(per)} clients)",
          not errors and not bad_ptr and len(served) == len(per), errors[:5] + bad_ptr[:3])

    # Findings.
    fkeys = set(w.get("ipvsFindingKey", {}).values())
    check("ipvsFindings counts the rows", scalar(w, "ipvsFindings") == str(len(fkeys)))
    if "findings" in s:
        # snapshot --json analyses one snapshot on its own; the agent's analyzer raises a
        # finding only after its samples and, for imbalance, its hold time (60 s by
        # default): it may not have raised those yet, and must have raised nothing else.
        want = {f["key"] for f in s["findings"]}
        held = {f["key"] for f in s["findings"] if f["kind"] == "imbalance"}
        check("ipvsFindingTable keys match snapshot --json findings (imbalance may still be held)",
              fkeys <= want and want - fkeys <= held, f"{fkeys} vs {want}")
    return w


def indexes(before_path, after_path):
    """Services and real servers present in both walks keep their index."""
    b, a = parse_walk(before_path), parse_walk(after_path)
    bk = {v: i for i, v in b.get("ipvsServiceKey", {}).items()}
    ak = {v: i for i, v in a.get("ipvsServiceKey", {}).items()}
    common = set(bk) & set(ak)
    moved = [k for k in common if bk[k] != ak[k]]
    check(f"services keep their index across polls ({len(common)} kept)", common and not moved, moved)
    gone = set(bk) - set(ak)
    new = set(ak) - set(bk)
    reused = [k for k in new if ak[k] in bk.values()]
    check(f"a new service gets a fresh index ({sorted(new)})", new and not reused, reused)
    check(f"a deleted service's row goes ({sorted(gone)})", gone and all(bk[k] not in ak.values() for k in gone))
    brs = {(i[0], v): i for i, v in b.get("ipvsRealServerKey", {}).items()}
    ars = {(i[0], v): i for i, v in a.get("ipvsRealServerKey", {}).items()}
    common = set(brs) & set(ars)
    moved = [k for k in common if brs[k] != ars[k]]
    check(f"real servers keep their index ({len(common)} kept)", common and not moved, moved)
    newrs = set(ars) - set(brs)
    reused = [k for k in newrs if ars[k] in brs.values()]
    check(f"a new real server gets a fresh index ({sorted(v for _, v in newrs)})", newrs and not reused, reused)


def demo(walk_path):
    w = parse_walk(walk_path)
    n = len(w.get("ipvsServiceKey", {}))
    check(f"demo: services served ({n})", n > 0)
    for obj in ["ipvsRealServerStatsConns", "ipvsRealServerRateInBps", "ipvsRealServerPersistConns", "ipvsServiceStatsInBytes"]:
        check(f"demo: {obj} present", len(w.get(obj, {})) > 0)
    check("demo: templates served", len(w.get("ipvsTemplateRank", {})) > 0)
    # Ages on the demo's own clock: a few seconds, never wall time against its 2026-01-01
    # epoch (which saturated at 4294967295).
    for obj in ["ipvsSnapshotAge", "ipvsConnTableAge"]:
        v = scalar(w, obj)
        check(f"demo: {obj} is a sane age ({v} ms)", v is not None and int(v) < 60000)
    check("demo: ipvsHostName names the demo", scalar(w, "ipvsHostName") == "demo-director", scalar(w, "ipvsHostName"))
    texts = list(w.get("ipvsFindingText", {}).values()) + list(w.get("ipvsFindingAdvice", {}).values())
    # (Where a text is cut, at a word with '...', is the unit tests' to show.)
    long = [t for t in texts if len(t.encode()) > 255]
    check(f"demo: finding texts within 255 bytes ({len(texts)} texts)", texts and not long, long[:2])
    check("demo: clients served", len(w.get("ipvsClientRank", {})) > 0)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "compare":
        compare(*sys.argv[2:5])
    elif cmd == "indexes":
        indexes(*sys.argv[2:4])
    elif cmd == "demo":
        demo(sys.argv[2])
    for ok, name, detail in results:
        print(("ok - " if ok else "FAIL - ") + name + ("" if ok or not detail else f": {detail}"))
