#!/bin/bash
# Lab scenario (runs as root inside the lab VM): an LVS director in the root network namespace,
# clients and real servers in their own namespaces, real traffic, then one capture of what the
# kernel shows into $OUT/capture (or $1/capture).
#
#   Tests/Lab/vm run Tests/Lab/scenarios/director.sh OUTDIR
#   IPVSTOP=/path/to/ipvstop Tests/Lab/vm run Tests/Lab/scenarios/director.sh OUTDIR
#
# Layout
#   director (root ns): VIP 10.0.0.100, VIP2 10.0.0.101, VIP3 10.0.0.102 (fwmark 1),
#                       VIP6 fd00:100::100, all on dummy lvs0; routes between the nets below.
#   clients  c1: 172.16.1.10-19 + fd00:c1::10-14     (ordinary clients, IPv4 + IPv6)
#            c2: 172.16.2.10-59                      (a /24 "proxy farm" for the -M /24 service)
#            c3: 172.16.3.66                         (the rogue client: 100 open connections)
#   servers  r1 192.168.1.2 fd00:1::2, r2 192.168.2.2 fd00:2::2, r3 192.168.3.2 fd00:3::2
#            (python echo/HTTP servers on TCP 80 443 8080 8000 8001 25, UDP 53 514, SCTP 3868)
# Services: see the ipvsadm lines below (rr, wlc -p 300, sh -p 120 -M /24, UDP, UDP -o,
# fwmark -p 60, IPv6, thresholds, route/tunnel/local forwarding, SCTP), plus a sync daemon.
set -euo pipefail

OUT=${1:-${OUT:-}}
[ -n "$OUT" ] || { echo "usage: $0 OUTDIR (or set OUT)" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
LIB=$HERE/lib
CAP=$OUT/capture
RUN=/run/lab
mkdir -p "$CAP" "$RUN"
LAB_NAME=director LAB_LOGDIR=$OUT
. "$LIB/common.sh"

VIP=10.0.0.100 VIP2=10.0.0.101 VIP3=10.0.0.102 VIP6=fd00:100::100
RS4=(192.168.1.2 192.168.2.2 192.168.3.2)
RS6=(fd00:1::2 fd00:2::2 fd00:3::2)

# ---- network ------------------------------------------------------------------------------
log "network"
for m in ip_vs ip_vs_rr ip_vs_wlc ip_vs_sh ip_vs_lc ip_vs_pe_sip veth dummy; do modprobe "$m"; done
sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
NSES="c1 c2 c3 r1 r2 r3"
declare -A N4=([c1]=172.16.1 [c2]=172.16.2 [c3]=172.16.3 [r1]=192.168.1 [r2]=192.168.2 [r3]=192.168.3)
declare -A N6=([c1]=fd00:c1 [c2]=fd00:c2 [c3]=fd00:c3 [r1]=fd00:1 [r2]=fd00:2 [r3]=fd00:3)
lab_ns_extra() {  # more client addresses
  case $1 in
    c1) for i in $(seq 10 19); do echo "addr add 172.16.1.$i/24 dev eth0"; done
        for i in $(seq 10 14); do echo "addr add fd00:c1::$i/64 dev eth0 nodad"; done ;;
    c2) for i in $(seq 10 59); do echo "addr add 172.16.2.$i/24 dev eth0"; done ;;
    c3) echo "addr add 172.16.3.66/24 dev eth0" ;;
  esac
}
LVS_ADDRS="$VIP/32 $VIP2/32 $VIP3/32 $VIP6/128"
SYNC0=up
. "$LIB/net.sh"
lab_network

# ---- real servers -------------------------------------------------------------------------
log "servers"
for k in 1 2 3; do
  LAB_NAME=r$k ip netns exec r$k python3 "$LIB/server.py" --tcp 80,443,8080,8000,8001,8443,9000,25 \
    --udp 53,514 --sctp 3868 --ready "$RUN/r$k.ready" > "$OUT/server-r$k.log" 2>&1 &
done

# ---- IPVS ---------------------------------------------------------------------------------
log "ipvs"
cat > "$OUT/ipvsadm-rules.txt" <<RULES
# TCP VIP:80 rr, different weights, r3 quiescent (weight 0)
-A -t $VIP:80 -s rr
-a -t $VIP:80 -r ${RS4[0]}:80 -m -w 3
-a -t $VIP:80 -r ${RS4[1]}:80 -m -w 2
-a -t $VIP:80 -r ${RS4[2]}:80 -m -w 0
# TCP VIP:443 wlc persistent 300 (r2 goes to weight 0 later: the quiescent-template trap)
-A -t $VIP:443 -s wlc -p 300
-a -t $VIP:443 -r ${RS4[0]}:443 -m -w 1
-a -t $VIP:443 -r ${RS4[1]}:443 -m -w 1
# TCP VIP2:8080 sh persistent 120, netmask /24
-A -t $VIP2:8080 -s sh -p 120 -M 255.255.255.0
-a -t $VIP2:8080 -r ${RS4[0]}:8080 -m -w 1
-a -t $VIP2:8080 -r ${RS4[1]}:8080 -m -w 1
# TCP VIP:8443 rr (r3 is deleted later while it holds connections: orphaned entries)
-A -t $VIP:8443 -s rr
-a -t $VIP:8443 -r ${RS4[0]}:8443 -m -w 1
-a -t $VIP:8443 -r ${RS4[2]}:8443 -m -w 1
# UDP VIP:53 rr
-A -u $VIP:53 -s rr
-a -u $VIP:53 -r ${RS4[0]}:53 -m -w 1
-a -u $VIP:53 -r ${RS4[1]}:53 -m -w 1
# UDP VIP:514 rr, one-packet scheduling
-A -u $VIP:514 -s rr -o
-a -u $VIP:514 -r ${RS4[1]}:514 -m -w 1
-a -u $VIP:514 -r ${RS4[2]}:514 -m -w 1
# fwmark 1 (VIP3 tcp 8000,8001) rr persistent 60
-A -f 1 -s rr -p 60
-a -f 1 -r ${RS4[1]}:0 -m -w 1
-a -f 1 -r ${RS4[2]}:0 -m -w 1
# IPv6 TCP [VIP6]:80 rr
-A -t [$VIP6]:80 -s rr
-a -t [$VIP6]:80 -r [${RS6[0]}]:80 -m -w 1
-a -t [$VIP6]:80 -r [${RS6[2]}]:80 -m -w 2
# TCP VIP:25 lc: thresholds and the other forwarding methods (no traffic); the director's own
# address as a real server (6.1 shows it as Route: the kernel no longer reports Local)
-A -t $VIP:25 -s lc
-a -t $VIP:25 -r ${RS4[0]}:25 -m -w 1 -x 100 -y 50
-a -t $VIP:25 -r ${RS4[1]}:25 -g -w 2
-a -t $VIP:25 -r ${RS4[2]}:25 -i -w 3 -x 1000
-a -t $VIP:25 -r $VIP:25 -g -w 1
# IPv6 TCP [VIP6]:443 wlc persistent 300 with a /64 mask (IPv6 templates)
-A -t [$VIP6]:443 -s wlc -p 300 -M 64
-a -t [$VIP6]:443 -r [${RS6[0]}]:443 -m -w 1
-a -t [$VIP6]:443 -r [${RS6[1]}]:443 -m -w 1
# TCP VIP2:0 (all ports) rr persistent 100: templates with virtual port 0
-A -t $VIP2:0 -s rr -p 100
-a -t $VIP2:0 -r ${RS4[2]}:0 -m -w 1
# IPv6 fwmark 2 ([VIP6] tcp 8000), sh with scheduler flags, /64
-A -f 2 -6 -s sh -b sh-fallback,sh-port -p 30 -M 64
-a -f 2 -6 -r [${RS6[0]}]:0 -m -w 1
# UDP VIP:5060 with the SIP persistence engine (no traffic)
-A -u $VIP:5060 -s rr -p 60 --pe sip
-a -u $VIP:5060 -r ${RS4[0]}:5060 -m -w 1
RULES
grep -v '^#' "$OUT/ipvsadm-rules.txt" | ipvsadm -R
# SCTP VIP:3868 rr (optional: kernel and ipvsadm permitting)
SCTP=0
if ipvsadm -A --sctp-service $VIP:3868 -s rr 2>> "$OUT/ipvsadm-sctp.log"; then
  ipvsadm -a --sctp-service $VIP:3868 -r ${RS4[0]}:3868 -m -w 1
  ipvsadm -a --sctp-service $VIP:3868 -r ${RS4[1]}:3868 -m -w 1
  SCTP=1
fi
iptables -t mangle -A PREROUTING -d $VIP3/32 -p tcp -m multiport --dports 8000,8001 -j MARK --set-mark 1
ip6tables -t mangle -A PREROUTING -d $VIP6/128 -p tcp --dport 8000 -j MARK --set-mark 2
# sync daemon (master) on a dummy multicast interface
ipvsadm --start-daemon master --mcast-interface sync0 --syncid 7 || echo "director: no sync daemon" >&2

for k in 1 2 3; do wait_ready "$RUN/r$k.ready" 60 "$OUT/server-r$k.log" || exit 1; done

# ---- traffic ------------------------------------------------------------------------------
C1=172.16.1.10+10 C16=fd00:c1::10+5 C2=172.16.2.10+50 C3=172.16.3.66
client rogue c3 --job tcp-hold $VIP 80 100 $C3
client c1 c1 \
  --job tcp-hold $VIP 80 30 $C1 \
  --job http $VIP 80 20 $C1 \
  --job tcp-close $VIP 80 10 $C1 \
  --job tcp-half $VIP 80 5 $C1 \
  --job http-hold $VIP 80 4 $C1 \
  --job tcp-hold $VIP 8443 6 $C1 \
  --job tcp-hold $VIP 443 20 $C1 \
  --job udp $VIP 53 20 $C1 \
  --job udp $VIP 514 6 $C1 \
  --job tcp-hold $VIP3 8000 10 $C1 \
  --job tcp-hold $VIP3 8001 10 $C1 \
  --job tcp-hold $VIP6 80 10 $C16 \
  --job tcp-close $VIP6 80 5 $C16 \
  --job tcp-hold $VIP6 443 6 $C16 \
  --job tcp-hold $VIP6 8000 3 $C16 \
  --job tcp-hold $VIP2 9000 4 $C1
client c2 c2 \
  --job tcp-hold $VIP2 8080 50 $C2 \
  --job tcp-hold $VIP 443 10 $C2 \
  --job http $VIP 80 10 $C2
# the quiescent-template trap: r2 leaves VIP:443 (weight 0), yet c1's templates keep sending
# its clients there
ipvsadm -e -t $VIP:443 -r ${RS4[1]}:443 -m -w 0
client c1-late c1 --job tcp-hold $VIP 443 10 $C1
# a real server deleted while it holds connections (expire_nodest_conn=0: they stay)
ipvsadm -d -t $VIP:8443 -r ${RS4[2]}:8443
if [ "$SCTP" = 1 ]; then
  client sctp c1 --job sctp-hold $VIP 3868 4 $C1 || echo "director: SCTP traffic failed (optional)" >&2
fi
curl -sS --max-time 10 http://$VIP/ > "$OUT/curl-from-director.txt" 2>&1 || true

# let the estimator (2 s period) catch up with the counters
sleep 4
log "capture"

# ---- capture ------------------------------------------------------------------------------
ipvsadm_all() {  # ipvsadm_all DIR
  mkdir -p "$1"
  ipvsadm -Ln                    > "$1/Ln.txt"
  ipvsadm -Ln --stats --exact    > "$1/Ln-stats-exact.txt"
  ipvsadm -Ln --rate --exact     > "$1/Ln-rate-exact.txt"
  ipvsadm -Ln --persistent-conn  > "$1/Ln-persistent-conn.txt"
  ipvsadm -Ln --thresholds       > "$1/Ln-thresholds.txt"
  ipvsadm -Lcn                   > "$1/Lcn.txt"
  ipvsadm -L --timeout           > "$1/L-timeout.txt"
  ipvsadm -L --daemon            > "$1/L-daemon.txt"
  ipvsadm -Sn                    > "$1/Sn.txt"
  dd if=/proc/net/ip_vs_stats of="$1/ip_vs_stats" bs=64k status=none
  date -u +%Y-%m-%dT%H:%M:%S.%NZ > "$1/taken_at"
}
copy_proc() {  # copy_proc DIR
  local d=$1 f
  mkdir -p "$d/net" "$d/sys/net/ipv4/vs"
  for f in ip_vs ip_vs_conn ip_vs_conn_sync ip_vs_stats ip_vs_stats_percpu; do
    dd if=/proc/net/$f of="$d/net/$f" bs=1M status=none
  done
  # 7.x (per-namespace resizable tables): the tables' sizes, root only (mode 0440)
  if [ -e /proc/net/ip_vs_status ]; then
    dd if=/proc/net/ip_vs_status of="$d/net/ip_vs_status" bs=1M status=none
    ls -l /proc/net/ip_vs_status > "$d/../ip_vs_status.ls"
  fi
  local line
  for f in /proc/sys/net/ipv4/vs/*; do   # bash builtins only: forks are slow under TCG
    { while IFS= read -r line; do printf '%s\n' "$line"; done < "$f"; } > "$d/sys/net/ipv4/vs/${f##*/}" 2>/dev/null \
      || rm -f "$d/sys/net/ipv4/vs/${f##*/}"
  done
  { head -n 2 /proc/slabinfo; grep -E '^ip_vs_conn ' /proc/slabinfo || true; } > "$d/slabinfo"
  # which kernel wrote the tree: lets ipvstop find its CONFIG_HZ for --proc-root
  mkdir -p "$d/sys/kernel"
  { read -r line < /proc/sys/kernel/osrelease; printf '%s\n' "$line"; } > "$d/sys/kernel/osrelease"
  date -u +%Y-%m-%dT%H:%M:%S.%NZ > "$d/../proc-taken_at"
}
runtop() {  # runtop NAME CMD...: ipvstop output to NAME.json, stderr/exit code beside it
  local name=$1; shift
  local t=$(date +%s.%N) rc=0
  "$@" > "$CAP/$name.json" 2> "$CAP/$name.stderr" || rc=$?
  echo "$rc" > "$CAP/$name.exitcode"
  echo "$name: exit $rc, $(since "$t") s" >> "$CAP/timing.txt"
}

: > "$CAP/timing.txt"
ipvsadm_all "$CAP/ipvsadm-before"
log "capture: ipvsadm before"
copy_proc "$CAP/proc"
log "capture: proc copied"
# Sample the kernel's rates while ipvstop runs: its estimator changes every 2 s, up and
# down, so only readings taken more often than that bound the value ipvstop saw.
rate_sampler() {
  local n=0
  mkdir -p "$CAP/rate-samples"
  while [ ! -e "$CAP/rate-samples/stop" ]; do
    n=$((n + 1))
    ipvsadm -Ln --rate --exact > "$CAP/rate-samples/$(printf %04d $n).rate.tmp"
    dd if=/proc/net/ip_vs_stats of="$CAP/rate-samples/$(printf %04d $n).stats" bs=64k status=none
    mv "$CAP/rate-samples/$(printf %04d $n).rate.tmp" "$CAP/rate-samples/$(printf %04d $n).rate"
  done
}
# made here, not only in the sampler: without ipvstop runs (exporter.sh) the stop file below
# comes at once, before the background sampler may have made it
mkdir -p "$CAP/rate-samples"
rate_sampler &
sampler=$!
if [ -n "${IPVSTOP:-}" ] && [ -x "$IPVSTOP" ]; then
  runtop ipvstop-root "$IPVSTOP" snapshot --json --top 0
  runtop ipvstop-user setpriv --reuid=65534 --regid=65534 --clear-groups "$IPVSTOP" snapshot --json --top 0
  runtop ipvstop-procroot "$IPVSTOP" snapshot --json --top 0 --proc-root "$CAP/proc"
elif [ -n "${IPVSTOP:-}" ]; then
  echo "director: IPVSTOP=$IPVSTOP is not an executable file; skipping ipvstop" >&2
  echo "ipvstop: missing ($IPVSTOP)" >> "$CAP/timing.txt"
fi
touch "$CAP/rate-samples/stop"; wait "$sampler" || true
log "capture: ipvstop done ($(ls "$CAP/rate-samples" | grep -c '\.rate$') rate samples)"
ipvsadm_all "$CAP/ipvsadm-after"
log "capture: ipvsadm after"
rm -rf "$CAP/ipvsadm"; cp -r "$CAP/ipvsadm-before" "$CAP/ipvsadm"

uname -r > "$CAP/uname-r.txt"
# slab caches are merged by default: then /proc/slabinfo has no ip_vs_conn line, but sysfs
# still names the cache it was merged into
{ echo "link: $(readlink /sys/kernel/slab/ip_vs_conn 2>/dev/null || echo none)"
  for f in object_size slab_size objects; do
    echo "$f: $(cat /sys/kernel/slab/ip_vs_conn/$f 2>/dev/null || echo none)"; done
  echo "cmdline: $(cat /proc/cmdline)"; } > "$CAP/slab-ip_vs_conn.txt"
# the kernel's config: /boot/config-REL (6.1, 6.12), /usr/lib/modules/REL/config (Debian's 7.x)
for c in "/boot/config-$(uname -r)" "/usr/lib/modules/$(uname -r)/config"; do
  if [ -f "$c" ]; then sed -n 's/^CONFIG_HZ=//p' "$c" > "$CAP/config-hz.txt"; echo "$c" > "$CAP/config-path.txt"; break; fi
done
# what an unprivileged user can read
{
  for f in /proc/net/ip_vs /proc/net/ip_vs_conn /proc/net/ip_vs_conn_sync /proc/net/ip_vs_stats \
           /proc/net/ip_vs_stats_percpu /proc/net/ip_vs_status /proc/sys/net/ipv4/vs/amemthresh \
           /proc/sys/net/ipv4/vs/conn_lfactor /proc/slabinfo; do
    [ -e "$f" ] || { echo "absent     $f"; continue; }
    if err=$(setpriv --reuid=65534 --regid=65534 --clear-groups head -c1 "$f" 2>&1 >/dev/null); then
      echo "readable   $f"; else echo "unreadable $f: $err"; fi
  done
  if setpriv --reuid=65534 --regid=65534 --clear-groups ipvsadm -Ln >/dev/null 2>&1; then
    echo "ipvsadm -Ln works unprivileged"; else echo "ipvsadm -Ln fails unprivileged: $(setpriv --reuid=65534 --regid=65534 --clear-groups ipvsadm -Ln 2>&1 | head -n1)"; fi
} > "$CAP/unprivileged.txt"
log "done: $(grep -c . "$CAP/proc/net/ip_vs_conn") lines in ip_vs_conn"
