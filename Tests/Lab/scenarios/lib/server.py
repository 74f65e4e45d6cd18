#!/usr/bin/env python3
"""Tiny real server for the lab: TCP/SCTP echo + minimal HTTP, UDP echo, IPv4 and IPv6.

    server.py --tcp 80,443 --udp 53 --sctp 3868 --ready FILE

TCP/SCTP: a request starting with "GET " gets an HTTP/1.0 answer and the server closes;
anything else is echoed. "HOLD" anywhere in the data makes the server keep the socket open
after the client's FIN (so the director sees FIN_WAIT / CLOSE_WAIT style half-closed entries).
"""
import argparse
import os
import socket
import sys
import threading
import time

HOSTNAME = os.environ.get("LAB_NAME", socket.gethostname())


def handle(conn):
    hold = False
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                if hold:
                    time.sleep(100000)
                return
            if data.startswith(b"GET "):
                body = ("hello from %s\n" % HOSTNAME).encode()
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
                return
            if b"HOLD" in data:
                hold = True
            conn.sendall(data)
    except OSError:
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def serve_stream(sock):
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            time.sleep(0.1)
            continue
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def serve_udp(sock):
    while True:
        try:
            data, addr = sock.recvfrom(65536)
            sock.sendto(data, addr)
        except OSError:
            time.sleep(0.01)


def listen(fam, typ, proto, port):
    s = socket.socket(fam, typ, proto)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::", port))
    else:
        s.bind(("0.0.0.0", port))
    if typ == socket.SOCK_STREAM:
        s.listen(1024)
    return s


def ports(text):
    return [int(p) for p in text.split(",") if p] if text else []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcp", default="")
    ap.add_argument("--udp", default="")
    ap.add_argument("--sctp", default="")
    ap.add_argument("--ready")
    a = ap.parse_args()
    threads = []
    for fam in (socket.AF_INET, socket.AF_INET6):
        for p in ports(a.tcp):
            threads.append((serve_stream, listen(fam, socket.SOCK_STREAM, 0, p)))
        for p in ports(a.udp):
            threads.append((serve_udp, listen(fam, socket.SOCK_DGRAM, 0, p)))
        for p in ports(a.sctp):
            try:
                threads.append((serve_stream, listen(fam, socket.SOCK_STREAM, socket.IPPROTO_SCTP, p)))
            except OSError as e:
                print("server: no SCTP on port %d: %s" % (p, e), file=sys.stderr)
    for fn, s in threads:
        threading.Thread(target=fn, args=(s,), daemon=True).start()
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("ready\n")
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
