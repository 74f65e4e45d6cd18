#!/usr/bin/env python3
"""Fill a live IPVS connection table from one namespace with spoofed sources (a raw socket, no
sockets bound, no replies needed).

    fill.py tcp|udp VIP PORT FIRST COUNT PORTS_PER_ADDR [--rate PPS]

Source index i (FIRST <= i < FIRST+COUNT) is 172.16.(1 + a // 200).(10 + a % 200) port
1024 + i % PORTS_PER_ADDR, a = i // PORTS_PER_ADDR: up to 200 x 200 x PORTS_PER_ADDR distinct
sources (172.16.0.0/16 must be routed back to this namespace, its addresses local here).

tcp: a SYN, then an ACK, from each source. IPVS makes an entry on the SYN (SYN_RECV) and, on
the client's ACK, moves it to ESTABLISHED (the input-only state table), which lives for the
tcp timeout (ipvsadm --set). Point the service at blackholed real servers: nothing answers, so
nothing resets the entry. udp: one datagram per source (the udp timeout).
Sending the same set again creates nothing new. Prints what it sent."""
import socket
import struct
import sys
import time


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def main(argv):
    rate = 0
    if "--rate" in argv:
        i = argv.index("--rate")
        rate = float(argv[i + 1])
        del argv[i:i + 2]
    proto, vip, vport, first, count, ppa = argv[0], argv[1], int(argv[2]), int(argv[3]), int(argv[4]), int(argv[5])
    if proto not in ("tcp", "udp"):
        sys.exit("fill.py: protocol must be tcp or udp")
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    dst = socket.inet_aton(vip)
    t0 = time.time()
    errs = sent = 0

    def send(pkt):
        nonlocal errs, sent
        try:
            s.sendto(pkt, (vip, 0))
            sent += 1
        except OSError:
            errs += 1
            time.sleep(0.001)

    for i in range(first, first + count):
        a, p = divmod(i, ppa)
        src = bytes((172, 16, 1 + a // 200, 10 + a % 200))
        sport = 1024 + p
        if proto == "udp":
            payload = b"fill"
            ulen = 8 + len(payload)
            # IP header: the kernel fills in the checksum and the id (IP_HDRINCL); UDP checksum 0
            send(struct.pack("!BBHHHBBH4s4sHHHH", 0x45, 0, 20 + ulen, 0, 0, 64, 17, 0, src, dst,
                             sport, vport, ulen, 0) + payload)
        else:
            seq = (i * 2654435761) & 0xFFFFFFFF
            for flags, sq, ack in ((0x02, seq, 0), (0x10, seq + 1, 1)):   # SYN, then ACK
                tcp = struct.pack("!HHIIBBHHH", sport, vport, sq & 0xFFFFFFFF, ack, 5 << 4, flags, 64240, 0, 0)
                pseudo = struct.pack("!4s4sBBH", src, dst, 0, 6, len(tcp))
                tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
                send(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, src, dst) + tcp)
        if rate and (i - first) % 100 == 99:
            ahead = (i - first + 1) / rate - (time.time() - t0)
            if ahead > 0:
                time.sleep(ahead)
    print(f"fill: {proto} {count} sources, {sent} packets ({errs} errors) in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
