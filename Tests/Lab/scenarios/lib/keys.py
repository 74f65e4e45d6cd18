#!/usr/bin/env python3
"""How fast the dashboard answers keys while it reads a big connection table.

    keys.py IPVSTOP OUTDIR SECONDS [DASHBOARD ARGS...]

Runs the dashboard (IPVSTOP, with the given arguments) on a pseudo-terminal of its own at
160x50 and, for SECONDS, presses keys that switch screens ('h' to Help, '1' back to Services):
each key is written to the terminal and timed until the terminal's output holds the screen it
asked for (the Help screen's title, the Services screen's column header). The harness reads
the terminal directly, with no tmux or process started per key, so under emulation what is
timed is the dashboard, not the harness. Before and after each key it looks at the dashboard's
open files: a key counts as "during a read" only when /proc/net/ip_vs_conn was open both times
(the poller holds the file open for the whole read), "idle" when it was open neither time; the
rest are "edge" (a read began or ended meanwhile). A key not answered within 5 s counts as
unanswered.

Writes OUTDIR/keys.tsv (one row a key) and OUTDIR/keys.txt (the summary per class and the
dashboard's resident memory at the end). Exit status 0 when the harness worked (whatever the
figures), 1 when it broke (the dashboard did not start, no key measured).
"""
import fcntl
import os
import pty
import random
import re
import select
import signal
import statistics
import struct
import sys
import termios
import time

ipvstop, outdir, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
extra = sys.argv[4:]
TIMEOUT = 5.0
# Escape sequences out, so that markers match whatever cursor moves ncurses chose.
ESCAPES = re.compile(rb"\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[=>78DEHMNOPZc])")
HELP = re.compile(rb"a\s*live\s*view\s*of\s*an\s*IPVS")
SERVICES = re.compile(rb"Sched\s*Wt\s*ActConn")


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


def wait_for(fd, marker, timeout):
    """Reads the terminal until `marker` shows in what was written since; seconds or None."""
    t0 = time.monotonic()
    seen = b""
    while True:
        left = timeout - (time.monotonic() - t0)
        if left <= 0:
            return None
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:
            return None
        if not data:
            return None
        seen += data
        if marker.search(ESCAPES.sub(b"", seen)):
            return time.monotonic() - t0


def drain(fd, quiet=0.3, limit=5.0):
    """Reads until the terminal has been quiet for `quiet` seconds (or `limit` passed)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        r, _, _ = select.select([fd], [], [], quiet)
        if not r:
            return
        try:
            if not os.read(fd, 65536):
                return
        except OSError:
            return


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
    env = dict(os.environ, TERM="xterm-256color", LANG="C.UTF-8", TZ="UTC", COLUMNS="160", LINES="50")
    err = os.open(os.path.join(outdir, "keys-dashboard.stderr"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        os.dup2(err, 2)
        os.execve(ipvstop, [ipvstop, *extra], env)
    os.close(err)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    if wait_for(fd, SERVICES, 600) is None:
        print("keys: the dashboard did not show its Services screen within 600 s", file=sys.stderr)
        os.kill(pid, signal.SIGKILL)
        return 1
    drain(fd)
    rows = []
    on_help = False
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end:
        before = reading(pid)
        t0 = time.monotonic()
        os.write(fd, b"1" if on_help else b"h")
        took = wait_for(fd, SERVICES if on_help else HELP, TIMEOUT)
        after = reading(pid)
        cls = "read" if before and after else ("idle" if not before and not after else "edge")
        rows.append((round(t0 - start, 3), cls, None if took is None else took * 1000))
        if took is not None:
            on_help = not on_help
        else:
            # Unanswered: back to a known screen before the next key.
            os.write(fd, b"1")
            wait_for(fd, SERVICES, TIMEOUT)
            on_help = False
        drain(fd, quiet=random.uniform(0.1, 0.3))
    rss = rss_kib(pid)
    os.write(fd, b"q")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        drain(fd, quiet=0.1, limit=0.5)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    with open(os.path.join(outdir, "keys.tsv"), "w") as f:
        f.write("t\tclass\tlatency_ms\n")
        for t, cls, lat in rows:
            f.write(f"{t}\t{cls}\t{'' if lat is None else f'{lat:.1f}'}\n")
    text = [f"dashboard key response over {seconds:.0f} s ({ipvstop} {' '.join(extra)}), on its own pseudo-terminal:"]
    text += ["  " + summary(rows, c) for c in ("read", "idle", "edge")]
    text.append(f"  the dashboard's resident memory at the end: {rss} KiB" if rss else "  resident memory not read")
    open(os.path.join(outdir, "keys.txt"), "w").write("\n".join(text) + "\n")
    print("\n".join(text))
    return 0 if rows else 1


sys.exit(main())
