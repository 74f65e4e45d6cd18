#!/usr/bin/env python3
"""Lab client: drives a fixed plan of connections, then holds the open ones.

    client.py --job KIND DST PORT COUNT SRCS [--job ...] --ready FILE

KIND: tcp-hold     open COUNT connections, exchange one line, keep them open
      tcp-close    open, exchange one line, close (client closes first)
      tcp-half     send "HOLD", then shutdown(SHUT_WR); the server keeps its side open
      http         "GET / HTTP/1.0", read the answer (the server closes first)
      http-hold    like http, but the client never closes its side (FIN_WAIT on the director)
      udp          COUNT datagrams, each from its own socket (own source port)
      sctp-hold    like tcp-hold over SCTP
SRCS: comma list of source addresses; "BASE+N" means N consecutive addresses from BASE.
Connections cycle through the source addresses in order. Jobs run one after another.
Exits non-zero if any exchange fails (after writing what failed); otherwise writes FILE
("ready") and sleeps forever holding the sockets.
"""
import argparse
import ipaddress
import socket
import sys
import time

held = []


def expand(srcs):
    out = []
    for part in srcs.split(","):
        if "+" in part:
            base, n = part.split("+")
            b = ipaddress.ip_address(base)
            out.extend(str(b + i) for i in range(int(n)))
        elif part:
            out.append(part)
    return out


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def exchange(s, msg):
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        d = s.recv(65536)
        if not d:
            raise OSError("connection closed early")
        got += d
    return got


def run(kind, dst, port, count, srcs):
    fails = 0
    for i in range(count):
        src = srcs[i % len(srcs)]
        fam = family(dst)
        try:
            if kind == "udp":
                s = socket.socket(fam, socket.SOCK_DGRAM)
                s.bind((src, 0))
                s.settimeout(5)
                s.sendto(b"ping %d\n" % i, (dst, port))
                s.recvfrom(65536)
                s.close()
                continue
            proto = socket.IPPROTO_SCTP if kind.startswith("sctp") else 0
            s = socket.socket(fam, socket.SOCK_STREAM, proto)
            s.bind((src, 0))
            s.settimeout(15)
            s.connect((dst, port))
            if kind in ("tcp-hold", "sctp-hold"):
                exchange(s, b"hello %d\n" % i)
                held.append(s)
            elif kind == "tcp-close":
                exchange(s, b"bye %d\n" % i)
                s.close()
            elif kind == "tcp-half":
                exchange(s, b"HOLD %d\n" % i)
                s.shutdown(socket.SHUT_WR)
                held.append(s)
            elif kind in ("http", "http-hold"):
                s.sendall(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n")
                data = b""
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    data += d
                if not data.startswith(b"HTTP/1.0 200"):
                    raise OSError("bad HTTP answer %r" % data[:40])
                if kind == "http-hold":
                    held.append(s)
                else:
                    s.close()
            else:
                raise SystemExit("unknown kind " + kind)
        except (OSError, socket.timeout) as e:
            fails += 1
            print("client: %s %s -> %s:%d #%d failed: %s" % (kind, src, dst, port, i, e), file=sys.stderr)
    return fails


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--job", nargs=5, action="append", default=[],
                    metavar=("KIND", "DST", "PORT", "COUNT", "SRCS"))
    ap.add_argument("--ready")
    a = ap.parse_args()
    fails = 0
    for kind, dst, port, count, srcs in a.job:
        fails += run(kind, dst, int(port), int(count), expand(srcs))
    if fails:
        print("client: %d failures" % fails, file=sys.stderr)
        sys.exit(1)
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("ready %d held\n" % len(held))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
