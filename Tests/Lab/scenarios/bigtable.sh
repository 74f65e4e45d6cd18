#!/bin/bash
# Lab scenario (runs as root inside the lab VM): a large live IPVS connection table, and what
# reading it costs: cat, ipvsadm -Lcn, ipvstop's whole poll, ipvstop's services-only poll,
# ipvsadm -Ln. Results in $OUT/bigtable.txt (table) and $OUT/bigtable.tsv (for scripts).
#
#   IPVSTOP=/path/to/ipvstop Tests/Lab/vm run Tests/Lab/scenarios/bigtable.sh OUTDIR [N...]
#   (or Tests/Lab/bigtable, which does that and prints ratios)
#
# How the table is filled: a UDP virtual service 10.0.0.100:53 (rr, LVS-NAT to r1 and r2 in
# their own namespaces). IPVS creates one connection entry for every new (client address, client
# port) that sends a datagram to the VIP, and keeps it for the UDP timeout (set to 3000 s here).
# A raw socket in the client namespace sends one datagram from each of ADDR x PORT spoofed
# sources (172.16.0.0/16, routed back to the client namespace), so no sockets are bound. Sending
# the same set again creates nothing new, so passes repeat until the count reaches N.
# Each N is measured in RUNS (default 3) rounds of all the tools; the best wall time of each
# counts, with user+sys of that run. strace (if installed) counts the read() calls on the table.
# Environment: RUNS, PORTS_PER_ADDR (default 400), STRACE=first (default: count read() calls at
# the first N only; the count is bytes / 4 KiB whatever N), all, or 0.
set -uo pipefail

OUT=${OUT:?OUT not set (run this through Tests/Lab/vm)}
NS_LIST=("$@")
[ ${#NS_LIST[@]} -gt 0 ] || NS_LIST=(20000 40000)
RUNS=${RUNS:-3}
PPA=${PORTS_PER_ADDR:-400}
IPVSTOP=${IPVSTOP:-}
RUN=/run/bigtable
mkdir -p "$RUN"
T0=$(date +%s.%N)
log() { printf '[%7.1fs] %s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$*"; }
die() { log "FAILED: $*"; echo "bigtable: $*" >&2; exit 1; }

if [ -z "$IPVSTOP" ] || [ ! -x "$IPVSTOP" ]; then
  die "IPVSTOP=${IPVSTOP:-unset} is not an executable"
fi
VIP=10.0.0.100

# ---- network and IPVS ---------------------------------------------------------------------
log "kernel $(uname -r), $(nproc) CPUs, N: ${NS_LIST[*]}, runs: $RUNS"
for m in ip_vs ip_vs_rr veth dummy; do modprobe "$m" || die "modprobe $m"; done
sysctl -qw net.ipv4.ip_forward=1 net.core.netdev_max_backlog=100000 \
  net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
{
  echo "link add lvs0 type dummy"
  echo "link set lvs0 up"
  echo "addr add $VIP/32 dev lvs0"
  echo "netns add c1"
  echo "link add v-c1 type veth peer name eth0 netns c1"
  echo "link set v-c1 up"
  echo "addr add 10.9.0.1/24 dev v-c1"
  echo "route add 172.16.0.0/16 via 10.9.0.2"
  for k in 1 2; do
    echo "netns add r$k"
    echo "link add v-r$k type veth peer name eth0 netns r$k"
    echo "link set v-r$k up"
    echo "addr add 192.168.$k.1/24 dev v-r$k"
  done
} > "$RUN/ip-root.batch"
ip -batch "$RUN/ip-root.batch" || die "ip -batch (root)"
printf '%s\n' "link set lo up" "link set eth0 up" "addr add 10.9.0.2/24 dev eth0" \
  "route add default via 10.9.0.1" "route add local 172.16.0.0/16 dev lo" > "$RUN/ip-c1.batch"
ip -n c1 -batch "$RUN/ip-c1.batch" || die "ip -batch (c1)"
ip netns exec c1 sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
for k in 1 2; do
  printf '%s\n' "link set lo up" "link set eth0 up" "addr add 192.168.$k.2/24 dev eth0" \
    "route add default via 192.168.$k.1" > "$RUN/ip-r$k.batch"
  ip -n r$k -batch "$RUN/ip-r$k.batch" || die "ip -batch (r$k)"
done

ipvsadm --set 900 120 3000 || die "ipvsadm --set"
ipvsadm -R <<RULES || die "ipvsadm -R"
-A -u $VIP:53 -s rr
-a -u $VIP:53 -r 192.168.1.2:53 -m -w 1
-a -u $VIP:53 -r 192.168.2.2:53 -m -w 1
-A -t $VIP:80 -s rr
-a -t $VIP:80 -r 192.168.1.2:80 -m -w 1
-a -t $VIP:80 -r 192.168.2.2:80 -m -w 1
RULES
ipvsadm -Ln > "$OUT/ipvsadm-Ln.txt"
ipvsadm -L --timeout > "$OUT/ipvsadm-timeout.txt"

cat > "$RUN/flood.py" <<'PY'
# flood.py VIP PORT FIRST COUNT PORTS_PER_ADDR: one UDP datagram from each source index in
# [FIRST, FIRST+COUNT); index i is 172.16.(1 + a // 200).(10 + a % 200):(1024 + i % PPA), a = i // PPA
import socket, struct, sys, time
vip, vport, first, count, ppa = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
dst = socket.inet_aton(vip)
payload = b"bigtable"
ulen = 8 + len(payload)
tlen = 20 + ulen
t0 = time.time()
errs = 0
for i in range(first, first + count):
    a, p = divmod(i, ppa)
    src = bytes((172, 16, 1 + a // 200, 10 + a % 200))
    # IP header: the kernel fills in the checksum and the id (IP_HDRINCL); UDP checksum 0 (none)
    pkt = struct.pack("!BBHHHBBH4s4sHHHH", 0x45, 0, tlen, 0, 0, 64, 17, 0, src, dst,
                      1024 + p, vport, ulen, 0) + payload
    try:
        s.sendto(pkt, (vip, 0))
    except OSError:
        errs += 1
        time.sleep(0.001)
print(f"sent {count - errs} datagrams ({errs} errors) in {time.time() - t0:.1f} s")
PY

conn_count() {  # entries the services report (netlink: cheap, unlike reading the table)
  ipvsadm -Ln | awk '$1 == "->" && $2 ~ /:/ && $2 !~ /RemoteAddress/ { n += $5 + $6 } END { print n + 0 }'
}

fill() {  # fill N: make the table hold at least N entries
  local want=$1 pass have
  for pass in 1 2 3 4; do
    have=$(conn_count)
    [ "$have" -ge "$want" ] && break
    # send only what is missing past the current count first, then whole-set passes
    if [ "$pass" = 1 ]; then
      ip netns exec c1 python3 "$RUN/flood.py" $VIP 53 "$have" $((want - have)) "$PPA" 2>&1 | sed 's/^/  /'
    else
      ip netns exec c1 python3 "$RUN/flood.py" $VIP 53 0 "$want" "$PPA" 2>&1 | sed 's/^/  /'
    fi
    log "fill pass $pass: $(conn_count) entries (want $want)"
  done
}

# ---- measuring ----------------------------------------------------------------------------
TSV=$OUT/bigtable.tsv
printf 'n\tentries\ttool\twall\tuser\tsys\truns\tall_walls\n' > "$TSV"
# The tools, measured in rounds (each round runs every tool once, in turn) so that load on the
# host, which slows the emulated machine, hits them alike; the best of RUNS rounds counts.
NAMES=("cat" "ipvsadm -Lcn" "ipvstop whole poll" "ipvstop services only" "ipvsadm -Ln"
       "dd bs=4k" "dd bs=64M")
CMDS=("cat /proc/net/ip_vs_conn" "ipvsadm -Lcn" "$IPVSTOP snapshot --json --top 0"
      "$IPVSTOP snapshot --no-connections --json" "ipvsadm -Ln"
      "dd if=/proc/net/ip_vs_conn of=/dev/null bs=4k status=none"
      "dd if=/proc/net/ip_vs_conn of=/dev/null bs=64M status=none")
measure() {  # measure N ENTRIES: RUNS rounds over all tools; best wall time per tool
  local n=$1 entries=$2 r i name w u s
  local -a cmd
  local -A best=() bu=() bs=() walls=() failed=()
  for ((r = 1; r <= RUNS; r++)); do
    for i in "${!NAMES[@]}"; do
      name=${NAMES[$i]}
      [ -n "${failed[$name]:-}" ] && continue
      read -r -a cmd <<< "${CMDS[$i]}"
      if ! /usr/bin/time -f '%e %U %S' -o "$RUN/time" "${cmd[@]}" > /dev/null 2> "$RUN/err"; then
        log "  $name run $r failed: $(tail -n 3 "$RUN/err" | tr '\n' ' ')"
        failed[$name]=1
        continue
      fi
      read -r w u s <<< "$(tail -n 1 "$RUN/time")"
      walls[$name]="${walls[$name]:-}${walls[$name]:+,}$w"
      if [ -z "${best[$name]:-}" ] || [ "$(echo "$w < ${best[$name]}" | bc)" = 1 ]; then
        best[$name]=$w bu[$name]=$u bs[$name]=$s
      fi
    done
    log "  round $r done"
  done
  for name in "${NAMES[@]}"; do
    if [ -n "${failed[$name]:-}" ]; then
      printf '%s\t%s\t%s\tfail\t-\t-\t%s\t%s\n' "$n" "$entries" "$name" "$RUNS" "${walls[$name]:--}" >> "$TSV"
      continue
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$entries" "$name" "${best[$name]}" "${bu[$name]}" \
      "${bs[$name]}" "$RUNS" "${walls[$name]}" >> "$TSV"
    log "  $name: best ${best[$name]}s (user ${bu[$name]} sys ${bs[$name]}) of ${walls[$name]}"
  done
}

STR=$OUT/strace.txt
: > "$STR"
have_strace=0
STRACE=${STRACE:-first}
[ "$STRACE" != 0 ] && command -v strace > /dev/null && have_strace=1
read_calls() {  # read_calls N LABEL CMD...: read() calls on ip_vs_conn and their sizes
  local n=$1 label=$2; shift 2
  [ $have_strace = 1 ] || return 0
  strace -f -e trace=openat,open,read,close,dup,dup2,dup3 -e signal=none -s 0 -o "$RUN/strace.raw" "$@" > /dev/null 2>&1
  python3 - "$RUN/strace.raw" "$n" "$label" >> "$STR" <<'PY'
import re, sys
path, n, label = sys.argv[1], sys.argv[2], sys.argv[3]
# follow which fd is /proc/net/ip_vs_conn: openat(...ip_vs_conn"...) = FD ... close(FD)
ro = re.compile(r'^(?:\d+\s+)?open(?:at)?\(.*"([^"]*)".*\)\s+=\s+(\d+)')
rr = re.compile(r'^(?:\d+\s+)?read\((\d+), .*, (\d+)\)\s+=\s+(-?\d+)')
rc = re.compile(r'^(?:\d+\s+)?close\((\d+)\)')
rd = re.compile(r'^(?:\d+\s+)?dup[23]?\((\d+)[,)].*=\s+(\d+)')
table_fds, sizes, results = set(), set(), []
for line in open(path, errors="replace"):
    m = ro.match(line)
    if m:
        if m.group(1).endswith("/ip_vs_conn"):
            table_fds.add(int(m.group(2)))
        continue
    m = rr.match(line)
    if m and int(m.group(1)) in table_fds:
        sizes.add(int(m.group(2))); results.append(int(m.group(3)))
        continue
    m = rd.match(line)
    if m:
        if int(m.group(1)) in table_fds:
            table_fds.add(int(m.group(2)))
        continue
    m = rc.match(line)
    if m:
        table_fds.discard(int(m.group(1)))
pos = [r for r in results if r > 0]
if not results:
    print(f"{n}\t{label}\tno read() of ip_vs_conn traced"); sys.exit()
print(f"{n}\t{label}\tbuffer {'/'.join(str(x) for x in sorted(sizes))} B: {len(results)} read() calls, "
      f"{sum(pos)} bytes, per call min {min(pos) if pos else 0} max {max(pos) if pos else 0} "
      f"mean {sum(pos) // max(1, len(pos))}")
PY
}

costs() {  # costs N: ipvstop's own account of its reads, from one JSON snapshot
  local n=$1
  "$IPVSTOP" snapshot --json --top 0 > "$OUT/ipvstop-$n.json" 2> "$OUT/ipvstop-$n.stderr" || return 0
  python3 - "$OUT/ipvstop-$n.json" "$n" >> "$OUT/ipvstop-costs.txt" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
out = []
def walk(o, path):
    if isinstance(o, dict):
        if "read_calls" in o and "seconds" in o:
            out.append(f"{sys.argv[2]}\t{path}\t{o['seconds']} s wall, {o.get('cpu_seconds')} s cpu, "
                       f"{o.get('bytes')} B, {o['read_calls']} read calls")
        for k, v in o.items():
            walk(v, f"{path}.{k}" if path else k)
    elif isinstance(o, list):
        for i, v in enumerate(o):
            walk(v, f"{path}[{i}]")
walk(doc, "")
print("\n".join(out))
PY
}

: > "$OUT/ipvstop-costs.txt"
for n in "${NS_LIST[@]}"; do
  log "N=$n: filling"
  fill "$n"
  t=$(date +%s.%N)
  lines=$(wc -l < /proc/net/ip_vs_conn)
  entries=$((lines - 1))
  log "N=$n: $entries entries in /proc/net/ip_vs_conn (wc -l took $(echo "$(date +%s.%N) - $t" | bc) s)"
  if [ "$entries" -lt $((n * 99 / 100)) ]; then
    log "N=$n: only $entries entries (want $n); measuring anyway"
  fi
  measure "$n" "$entries"
  costs "$n"
  if [ $have_strace = 1 ] && { [ "$STRACE" = all ] || [ "$n" = "${NS_LIST[0]}" ]; }; then
    log "N=$n: strace read counts"
    read_calls "$n" "cat" cat /proc/net/ip_vs_conn
    read_calls "$n" "ipvsadm -Lcn" ipvsadm -Lcn
    read_calls "$n" "ipvstop" "$IPVSTOP" snapshot --json --top 0
    read_calls "$n" "dd bs=4k" dd if=/proc/net/ip_vs_conn of=/dev/null bs=4k
    read_calls "$n" "dd bs=64M" dd if=/proc/net/ip_vs_conn of=/dev/null bs=64M
  fi
done
{ head -n 2 /proc/slabinfo; grep -E '^ip_vs_conn ' /proc/slabinfo || true; } > "$OUT/slabinfo.txt" 2>/dev/null

# ---- the table ----------------------------------------------------------------------------
{
  echo "IPVS connection table read cost, kernel $(uname -r), qemu TCG, $(nproc) vCPUs; best of $RUNS (wall s; user+sys s of that run)"
  awk -F'\t' 'NR > 1 {
      printf "%7s %7s  %-22s %8s s   user %6s  sys %6s   (runs: %s)\n", $1, $2, $3, $4, $5, $6, $8 }' "$TSV"
  if [ -s "$STR" ]; then echo; echo "read() calls on the table (strace):"; sed 's/^/  /' "$STR"; fi
  if [ -s "$OUT/ipvstop-costs.txt" ]; then echo; echo "ipvstop's own cost report (one extra run):"; sed 's/^/  /' "$OUT/ipvstop-costs.txt"; fi
  [ -s "$OUT/slabinfo.txt" ] && { echo; echo "slabinfo:"; sed 's/^/  /' "$OUT/slabinfo.txt"; }
} > "$OUT/bigtable.txt"
cat "$OUT/bigtable.txt"
log "done"
