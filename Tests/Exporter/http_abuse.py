#!/usr/bin/env python3
"""Bad HTTP input against `ipvstop exporter`: every case must end in a 4xx or a closed
connection, never a crash, and never stall a well-behaved scrape running beside it.

    http_abuse.py HOST PORT EXPORTER_PID

Prints `ok -`/`FAIL -` lines; exits 1 when any check failed.
"""
import os
import socket
import sys
import threading
import time
import urllib.request

host, port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok - http: {name}")
    else:
        failed += 1
        print(f"FAIL - http: {name} {detail}")


def alive():
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def scrape(timeout=5):
    """A well-behaved scrape: (status, seconds, body length)."""
    t = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout) as r:
            body = r.read()
            return r.status, time.monotonic() - t, len(body)
    except Exception as e:  # noqa: BLE001 - any failure is the answer
        return str(e), time.monotonic() - t, 0


def raw(data, wait=3.0, chunks=None):
    """Sends raw bytes; returns (status line or '', closed by the server)."""
    s = socket.create_connection((host, port), timeout=wait)
    try:
        if chunks:
            for c in chunks:
                s.sendall(c)
        else:
            s.sendall(data)
        got = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                return got.split(b"\r\n")[0].decode(errors="replace"), True
            if not b:
                return got.split(b"\r\n")[0].decode(errors="replace"), True
            got += b
            if b"\r\n\r\n" in got and b"Content-Length" in got:
                head, _, body = got.partition(b"\r\n\r\n")
                n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
                if len(body) >= n:
                    break
        return got.split(b"\r\n")[0].decode(errors="replace"), False
    finally:
        s.close()


def client_error(status):
    return status.startswith("HTTP/1.1 4") or status.startswith("HTTP/1.0 4")


base = scrape()
check(f"a plain scrape answers 200 ({base[2]} bytes, {base[1] * 1000:.1f} ms)", base[0] == 200, f"{base}")

# Garbage and malformed requests.
for name, data in [
    ("binary garbage", b"\x00\x01\x02\xff\xfe garbage\r\n\r\n"),
    ("no HTTP version", b"GET /metrics\r\n\r\n"),
    ("bad method token", b"G(T /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("header without colon", b"GET /metrics HTTP/1.1\r\nHost x\r\nbroken\r\n\r\n"),
    ("bad chunked body", b"POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
    ("HTTP/2 preface on HTTP/1", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
]:
    status, closed = raw(data)
    check(f"{name}: {status or 'closed'}", client_error(status) or (closed and not status), f"{status!r} closed={closed}")

status, _ = raw(b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
check(f"unknown path: {status}", status.startswith("HTTP/1.1 404"))
status, _ = raw(b"DELETE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
check(f"DELETE: {status}", status.startswith("HTTP/1.1 405"))
status, _ = raw(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000)
check(f"a 100 kB request body: {status or 'closed'}", client_error(status) or not status)
status, _ = raw(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
check(f"HEAD: {status}", status.startswith("HTTP/1.1 200"))

# Huge headers: one 1 MB header, and 1000 small ones.
status, closed = raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n", wait=5)
check(f"a 1 MB header: {status or 'closed'}", client_error(status) or (closed and not status), f"{status!r}")
status, closed = raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(1000)) + b"\r\n", wait=5)
check(f"1000 headers: {status or 'closed'}", client_error(status) or (closed and not status), f"{status!r}")
check("the exporter is still running", alive())

# Slow clients: one trickles its headers a byte a second (slowloris); others send a request
# and never read the answer. Meanwhile scrapes go on, fast.
stop = threading.Event()
slow_closed_after = []


def slowloris():
    s = socket.create_connection((host, port))
    s.settimeout(1)
    t = time.monotonic()
    s.sendall(b"GET /metrics HTTP/1.1\r\n")
    try:
        while not stop.is_set() and time.monotonic() - t < 30:
            s.sendall(b"X")
            try:
                if s.recv(1) == b"":
                    break
            except socket.timeout:
                pass
    except OSError:
        pass
    slow_closed_after.append(time.monotonic() - t)
    s.close()


non_readers = []
for _ in range(20):
    s = socket.create_connection((host, port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 5)
    non_readers.append(s)
slow = [threading.Thread(target=slowloris) for _ in range(5)]
for t in slow:
    t.start()
times = []
statuses = []
t0 = time.monotonic()
while any(t.is_alive() for t in slow) and time.monotonic() - t0 < 25:
    st, secs, _ = scrape()
    statuses.append(st)
    times.append(secs)
    time.sleep(0.2)
stop.set()
for t in slow:
    t.join()
for s in non_readers:
    s.close()
times.sort()
check(f"scrapes beside 5 slow senders and 20 non-readers: {len(statuses)} scrapes all 200, slowest {times[-1] * 1000:.0f} ms",
      statuses and all(s == 200 for s in statuses) and times[-1] < 2, f"{set(statuses)}")
check(f"slow senders closed by the server ({', '.join(f'{x:.1f}' for x in slow_closed_after)} s; limit 10 s)",
      len(slow_closed_after) == 5 and all(x < 15 for x in slow_closed_after))

# Many connections at once: 300 silent sockets (over the 64 limit), then 20 scrapers
# in parallel: the silent ones are evicted first, every scrape answers.
silent = []
for _ in range(300):
    try:
        silent.append(socket.create_connection((host, port), timeout=2))
    except OSError:
        break
results = []


def scraper():
    for _ in range(5):
        results.append(scrape()[0])


threads = [threading.Thread(target=scraper) for _ in range(20)]
t0 = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - t0
ok200 = sum(1 for r in results if r == 200)
check(f"{len(silent)} silent connections, then 20 scrapers x 5: {ok200}/{len(results)} answered 200 in {elapsed:.1f} s",
      ok200 == len(results) and elapsed < 20, f"{set(map(str, results))}")
for s in silent:
    s.close()
with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as r:
    body = r.read().decode()
ev = [l for l in body.splitlines() if l.startswith("ipvstop_exporter_connections_evicted_total")]
rej = [l for l in body.splitlines() if l.startswith("ipvstop_exporter_requests_rejected_total")]
check(f"the exporter counts what it turned away ({ev[0] if ev else '?'}; {rej[0] if rej else '?'})",
      ev and float(ev[0].split()[-1]) > 0 and rej and float(rej[0].split()[-1]) > 0)
check("the exporter is still running, and answers", alive() and scrape()[0] == 200)
print(f"http_abuse: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
