/* The lab's table filler in C: what lib/fill.py does, with the packets sent in batches by
 * sendmmsg(2). Under emulation the Python filler spends more time building and sending each
 * packet than the kernel spends on it; this one leaves the kernel's work alone.
 *
 *   fill tcp|udp VIP PORT FIRST COUNT PORTS_PER_ADDR [--rate PPS]
 *
 * Same sources, same packets, same output line as fill.py (see there): source index i is
 * 172.16.(1 + a / 200).(10 + a % 200) port 1024 + i % PORTS_PER_ADDR, a = i / PORTS_PER_ADDR.
 * tcp: a SYN, then an ACK, from each source; udp: one datagram. A batch holds the SYNs of
 * BATCH sources and then their ACKs, in one sendmmsg call: the packets go out in order on one
 * socket, and each is handled by the director's stack before the call returns (the veth peer's
 * backlog runs as the sender's bottom half), so a source's SYN is seen before its ACK.
 * Built by lib/filler.sh inside the VM (cc or clang); fill.py stays the fallback. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { BATCH = 128, PKT = 40 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* The Internet checksum of a pseudo-header sum plus len bytes (len even). */
static uint16_t csum(uint32_t sum, const uint8_t *p, size_t len) {
    for (size_t k = 0; k + 1 < len; k += 2) sum += (uint32_t)p[k] << 8 | p[k + 1];
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v & 0xffff); }

/* An IPv4 header (the kernel fills in the checksum and the id: IPPROTO_RAW) and its
 * payload's pseudo-header sum. */
static uint32_t ip_header(uint8_t *p, uint16_t total, uint8_t proto, uint32_t src, uint32_t dst) {
    memset(p, 0, 20);
    p[0] = 0x45; p[8] = 64; p[9] = proto;
    put16(p + 2, total);
    put32(p + 12, src); put32(p + 16, dst);
    return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + (uint32_t)(total - 20);
}

static void tcp_packet(uint8_t *p, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
                       uint8_t flags, uint32_t seq, uint32_t ack) {
    uint32_t pseudo = ip_header(p, 40, 6, src, dst);
    uint8_t *t = p + 20;
    memset(t, 0, 20);
    put16(t, sport); put16(t + 2, dport);
    put32(t + 4, seq); put32(t + 8, ack);
    t[12] = 5 << 4; t[13] = flags;
    put16(t + 14, 64240);
    put16(t + 16, csum(pseudo, t, 20));
}

static void udp_packet(uint8_t *p, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport) {
    ip_header(p, 32, 17, src, dst);
    uint8_t *u = p + 20;
    put16(u, sport); put16(u + 2, dport); put16(u + 4, 12); put16(u + 6, 0);  /* checksum 0: none */
    memcpy(u + 8, "fill", 4);
}

int main(int argc, char **argv) {
    double rate = 0;
    char *args[8];
    int n = 0;
    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--rate") == 0 && k + 1 < argc) { rate = atof(argv[++k]); continue; }
        if (n < 8) args[n] = argv[k];
        n++;
    }
    if (n != 6 || (strcmp(args[0], "tcp") != 0 && strcmp(args[0], "udp") != 0)) {
        fprintf(stderr, "usage: fill tcp|udp VIP PORT FIRST COUNT PORTS_PER_ADDR [--rate PPS]\n");
        return 2;
    }
    int tcp = strcmp(args[0], "tcp") == 0;
    struct in_addr vip;
    if (inet_pton(AF_INET, args[1], &vip) != 1) { fprintf(stderr, "fill: bad VIP %s\n", args[1]); return 2; }
    uint16_t vport = (uint16_t)atoi(args[2]);
    long first = atol(args[3]), count = atol(args[4]), ppa = atol(args[5]);
    if (first < 0 || count < 0 || ppa <= 0 || ppa > 64511) { fprintf(stderr, "fill: bad FIRST, COUNT or PORTS_PER_ADDR\n"); return 2; }

    int s = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
    if (s < 0) { perror("fill: socket"); return 1; }
    int buf = 4 << 20;
    setsockopt(s, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr = vip };
    uint32_t dst = ntohl(vip.s_addr);

    static uint8_t pkts[2 * BATCH][PKT];
    static struct iovec iov[2 * BATCH];
    static struct mmsghdr msgs[2 * BATCH];
    long sent = 0, errs = 0;
    double t0 = now();
    for (long base = first; base < first + count; base += BATCH) {
        long m = first + count - base < BATCH ? first + count - base : BATCH;
        int np = 0;
        for (int pass = 0; pass < (tcp ? 2 : 1); pass++) {   /* the SYNs, then the ACKs */
            for (long j = 0; j < m; j++) {
                long i = base + j, a = i / ppa;
                uint32_t src = 172u << 24 | 16u << 16 | (uint32_t)(1 + a / 200) << 8 | (uint32_t)(10 + a % 200);
                uint16_t sport = (uint16_t)(1024 + i % ppa);
                uint32_t seq = (uint32_t)((uint64_t)i * 2654435761u);
                if (!tcp) udp_packet(pkts[np], src, dst, sport, vport);
                else if (pass == 0) tcp_packet(pkts[np], src, dst, sport, vport, 0x02, seq, 0);
                else tcp_packet(pkts[np], src, dst, sport, vport, 0x10, seq + 1, 1);
                iov[np] = (struct iovec){ .iov_base = pkts[np], .iov_len = tcp ? 40 : 32 };
                msgs[np] = (struct mmsghdr){ .msg_hdr = { .msg_name = &to, .msg_namelen = sizeof to,
                                                          .msg_iov = &iov[np], .msg_iovlen = 1 } };
                np++;
            }
        }
        for (int done = 0; done < np;) {   /* what a full queue refused goes again, in order */
            int r = sendmmsg(s, msgs + done, (unsigned)(np - done), 0);
            if (r > 0) { done += r; sent += r; continue; }
            if (r < 0 && errno != ENOBUFS && errno != EAGAIN && errno != EINTR) { errs += np - done; break; }
            errs++;
            usleep(1000);
        }
        if (rate > 0) {
            double ahead = (double)(base + m - first) / rate - (now() - t0);
            if (ahead > 0) usleep((useconds_t)(ahead * 1e6));
        }
    }
    printf("fill: %s %ld sources, %ld packets (%ld errors) in %.1f s\n", args[0], count, sent, errs, now() - t0);
    close(s);
    return 0;
}
