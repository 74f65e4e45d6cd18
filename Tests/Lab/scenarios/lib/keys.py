#!/usr/bin/env python3
"""How fast the dashboard answers keys while it reads a big connection table.

    keys.py IPVSTOP OUTDIR SECONDS [DASHBOARD ARGS...]

Runs the dashboard (IPVSTOP, with the given arguments) in its own tmux server at 160x50 and,
for SECONDS, presses keys that switch screens ('h' to Help, '1' back to Services) and times
each from the key sent to the first captured pane that shows the screen it asked for. Before
and after each key it looks at the dashboard's open files: a key counts as "during a read"
only when /proc/net/ip_vs_conn was open both times (the poller holds the file open for the
whole read), "idle" when it was open neither time; the rest are "edge" (a read began or ended
meanwhile). A key not answered within 5 s counts as unanswered.

Writes OUTDIR/keys.tsv (one row a key) and OUTDIR/keys.txt (the summary per class, the
dashboard's resident memory at the end). Exit status 0 when the harness worked (whatever the
figures), 1 when it broke (the dashboard did not start, no key measured).
"""
import os
import random
import statistics
import subprocess
import sys
import time

ipvstop, outdir, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
extra = sys.argv[4:]
SOCKET = "ipvstop-keys"
TIMEOUT = 5.0


def tm(*args, check=True):
    return subprocess.run(["tmux", "-u", "-L", SOCKET, *args], check=check, capture_output=True, text=True).stdout


def pane_line(n):
    lines = tm("capture-pane", "-p", "-t", "keys").split("\n")
    return lines[n] if n < len(lines) else ""


def on_help():
    # The fourth line is the screen's title line: " Help  ipvstop: ..." on the Help screen.
    return pane_line(3).startswith(" Help ")


def reading(pid):
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").endswith("/net/ip_vs_conn"):
                    return True
            except OSError:
                pass
    except OSError:
        pass
    return False


def rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def summary(rows, cls):
    lat = sorted(r[2] for r in rows if r[1] == cls and r[2] is not None)
    missed = sum(1 for r in rows if r[1] == cls and r[2] is None)
    if not lat:
        return f"{cls}: no keys measured" + (f" ({missed} unanswered within {TIMEOUT:.0f} s)" if missed else "")
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
    within = sum(1 for x in lat if x <= 100)
    return (f"{cls}: {len(lat)} keys, median {statistics.median(lat):.0f} ms, p95 {p95:.0f} ms, max {lat[-1]:.0f} ms, "
            f"{within} of {len(lat) + missed} within 100 ms" + (f", {missed} unanswered within {TIMEOUT:.0f} s" if missed else ""))


def main():
    os.makedirs(outdir, exist_ok=True)
    tm("kill-server", check=False)
    cmd = " ".join(["exec", "env", "TERM=tmux-256color", "LANG=C.UTF-8", "TZ=UTC", ipvstop, *extra,
                    "2>", os.path.join(outdir, "keys-dashboard.stderr")])
    tm("new-session", "-d", "-s", "keys", "-x", "160", "-y", "50", cmd)
    pid = int(tm("display", "-p", "-t", "keys", "#{pane_pid}").strip())
    deadline = time.monotonic() + 600
    while not (pane_line(0).startswith(" ipvstop ") and pane_line(3).strip()):
        if time.monotonic() > deadline:
            print(f"keys: the dashboard did not show its first screen within 600 s:\n{tm('capture-pane', '-p', '-t', 'keys', check=False)}", file=sys.stderr)
            return 1
        time.sleep(0.2)
    rows = []
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end:
        want_help = not on_help()
        before = reading(pid)
        t0 = time.monotonic()
        tm("send-keys", "-t", "keys", "h" if want_help else "1")
        latency = None
        while time.monotonic() - t0 < TIMEOUT:
            if on_help() == want_help:
                latency = (time.monotonic() - t0) * 1000
                break
            time.sleep(0.005)
        after = reading(pid)
        cls = "read" if before and after else ("idle" if not before and not after else "edge")
        rows.append((round(t0 - start, 3), cls, latency))
        time.sleep(random.uniform(0.1, 0.4))
    rss = rss_kib(pid)
    tm("send-keys", "-t", "keys", "q", check=False)
    time.sleep(1)
    tm("kill-server", check=False)
    with open(os.path.join(outdir, "keys.tsv"), "w") as f:
        f.write("t\tclass\tlatency_ms\n")
        for t, cls, lat in rows:
            f.write(f"{t}\t{cls}\t{'' if lat is None else f'{lat:.1f}'}\n")
    text = [f"dashboard key response over {seconds:.0f} s ({ipvstop} {' '.join(extra)}), pane captured every 5 ms:"]
    text += ["  " + summary(rows, c) for c in ("read", "idle", "edge")]
    text.append(f"  the dashboard's resident memory at the end: {rss} KiB" if rss else "  resident memory not read")
    open(os.path.join(outdir, "keys.txt"), "w").write("\n".join(text) + "\n")
    print("\n".join(text))
    return 0 if rows else 1


sys.exit(main())
