#!/bin/bash
# Lab scenario (runs as root inside the lab VM) for issue 21, "findings that tell the whole
# truth": each case made with real traffic on a real IPVS, then judged by `ipvstop check`.
#
#   IPVSTOP=/path/to/ipvstop Tests/Lab/vm run Tests/Lab/scenarios/truths.sh OUTDIR
#   (or Tests/Lab/truths [IPVSTOP], which does that and prints the verdict)
#
# Layout as in findings.sh: director in the root namespace, VIP 10.0.0.100 on dummy lvs0;
# clients c1 172.16.1.10-39, c3 172.16.3.66-67 (two rogues); real servers r1 192.168.1.2,
# r2 192.168.2.2.
#
# Phases, each checked:
#   healthy       VIP:80 rr, two servers, 20 clients: `check` raises nothing (root and nobody)
#   service_down  VIP:81 no real server; VIP:82 both servers at weight 0 (after traffic);
#                 VIP:83 both servers -x 3, filled with 3 connections each: a new connection
#                 to each is refused, and `check` raises service_down critical on each, with
#                 its reason; unprivileged, :83 cannot be judged (thresholds are netlink's)
#                 and the analysis says so; persistent_conns of :81 is null unprivileged
#   two rogues    VIP:84 rr -p 300: two rogues (c3 .66 with 90, .67 with 60 connections)
#                 pinned to r1 while r2 is at weight 0, then r2 to weight 1 and 20 ordinary
#                 clients: imbalance on r1 names both rogues (culprits_sufficient yes)
#   fwmark        iptables marks c3's traffic to :85 :86 :87 for FWM 1 2 3 (r2, r1, r3) while c1's
#                 goes to the TCP services: every per-destination aggregate of ipvstop's
#                 clients equals ipvsadm -Ln's ActiveConn/InActConn where the kernel's
#                 counters decide (:85, whose TCP service lacks r2; :87, whose r2 is at weight
#                 0), the FWM 1 /24 group and template hold the marked connections, and :86
#                 (r1 reached both ways) is said undecided; run right after healthy, before any service
#                 is deleted (entries of a deleted service to a real server an fwmark service
#                 has are still counted under that fwmark service: not judged by counters)
#   quiescent N   VIP:443 wlc -p 300, 10 clients with templates on both servers, r2 to weight
#                 0; 10 runs of `check --for 14s` while the same clients open k connections
#                 each: quiescent_fed's count must equal r2's Conns delta (ipvsadm --stats
#                 --exact before and after) in every run
#
# Writes OUT/truths/* and verdict.txt; exits 0 when every check passes.
set -euo pipefail

OUT=${1:-${OUT:-}}
[ -n "$OUT" ] || { echo "usage: $0 OUTDIR (or set OUT)" >&2; exit 2; }
[ -n "${IPVSTOP:-}" ] && [ -x "$IPVSTOP" ] || { echo "truths: set IPVSTOP to an ipvstop with 'check'" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
LIB=$HERE/lib
RES=$OUT/truths
RUN=/run/lab
mkdir -p "$RES" "$RUN"
LAB_NAME=truths LAB_LOGDIR=$RES
. "$LIB/common.sh"
RUNS=${TRUTHS_RUNS:-10}

VIP=10.0.0.100
R1=192.168.1.2 R2=192.168.2.2 R3=192.168.3.2

log "network"
for m in ip_vs ip_vs_rr ip_vs_wlc veth dummy; do modprobe "$m"; done
sysctl -qw net.ipv4.ip_forward=1
NSES="c1 c3 r1 r2 r3"
declare -A N4=([c1]=172.16.1 [c3]=172.16.3 [r1]=192.168.1 [r2]=192.168.2 [r3]=192.168.3)
lab_ns_extra() {
  case $1 in
    c1) for i in $(seq 10 39); do echo "addr add 172.16.1.$i/24 dev eth0"; done ;;
    c3) echo "addr add 172.16.3.66/24 dev eth0"; echo "addr add 172.16.3.67/24 dev eth0" ;;
  esac
}
LVS_ADDRS="$VIP/32"
. "$LIB/net.sh"
lab_network

log "servers"
for k in 1 2 3; do
  LAB_NAME=r$k ip netns exec r$k python3 "$LIB/server.py" --tcp 80,82,83,84,85,86,87,443 \
    --ready "$RUN/r$k.ready" > "$RES/server-r$k.log" 2>&1 &
done
for k in 1 2 3; do
  n=600; while [ ! -s "$RUN/r$k.ready" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n-1)); done
  [ -s "$RUN/r$k.ready" ] || { echo "truths: server r$k did not start" >&2; cat "$RES/server-r$k.log" >&2; exit 1; }
done

CLIENT_TIMEOUT=180   # client plans here run to their end before they signal
attempt() {  # attempt NS SRC PORT: one new TCP connection to VIP:PORT; prints its fate
  ip netns exec "$1" python3 -c '
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); s.settimeout(3)
try:
    s.connect((sys.argv[2], int(sys.argv[3]))); print("connected")
except ConnectionRefusedError: print("refused")
except OSError as e: print("failed: %s" % e)' "$2" $VIP "$3"
}
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
check() {  # check NAME [nobody] ARGS...: ipvstop check --json, exit status kept
  local name=$1 rc=0; shift
  if [ "${1:-}" = nobody ]; then shift; nobody "$IPVSTOP" check --json "$@" > "$RES/$name.json" 2> "$RES/$name.stderr" || rc=$?
  else "$IPVSTOP" check --json "$@" > "$RES/$name.json" 2> "$RES/$name.stderr" || rc=$?; fi
  echo $rc > "$RES/$name.exitcode"
}

# ---- healthy ------------------------------------------------------------------------------
log "healthy"
ipvsadm -A -t $VIP:80 -s rr
ipvsadm -a -t $VIP:80 -r $R1:80 -m -w 1
ipvsadm -a -t $VIP:80 -r $R2:80 -m -w 1
client healthy c1 --job tcp-hold $VIP 80 20 172.16.1.10+20
ipvsadm -Ln > "$RES/healthy-ipvsadm-Ln.txt"
check healthy-root
check healthy-nobody nobody

# ---- fwmark over TCP services -------------------------------------------------------------
# iptables marks c3's (172.16.3.0/24) traffic: to :85 with mark 1 (FWM 1 over r2, which tcp:85
# lacks), to :86 with mark 2 (FWM 2 over r1, which tcp:86 has too: unmarked c1 clients also
# reach it, so the table cannot tell), to :87 with mark 3 (FWM 3 over r3, which tcp:87 has at
# weight 0: the kernel counts nothing there, so its entries are FWM 3's).
log "fwmark"
for m in 1 2 3; do
  iptables -t mangle -A PREROUTING -d $VIP/32 -s 172.16.3.0/24 -p tcp --dport $((84 + m)) -j MARK --set-mark $m
done
ipvsadm -R <<RULES
-A -t $VIP:85 -s rr
-a -t $VIP:85 -r $R1:85 -m -w 1
-A -f 1 -s rr -p 300 -M 255.255.255.0
-a -f 1 -r $R2:0 -m -w 1
-A -t $VIP:86 -s rr
-a -t $VIP:86 -r $R1:86 -m -w 1
-a -t $VIP:86 -r $R2:86 -m -w 1
-A -f 2 -s rr -p 300 -M 255.255.255.0
-a -f 2 -r $R1:0 -m -w 1
-A -t $VIP:87 -s rr
-a -t $VIP:87 -r $R1:87 -m -w 1
-a -t $VIP:87 -r $R3:87 -m -w 0
-A -f 3 -s rr -p 300 -M 255.255.255.0
-a -f 3 -r $R3:0 -m -w 1
RULES
client fw-marked c3 --job tcp-hold $VIP 85 20 172.16.3.66,172.16.3.67 --job tcp-hold $VIP 86 12 172.16.3.66,172.16.3.67 \
  --job tcp-hold $VIP 87 16 172.16.3.66,172.16.3.67
client fw-plain c1 --job tcp-hold $VIP 85 10 172.16.1.10+10 --job tcp-hold $VIP 86 10 172.16.1.10+10 \
  --job tcp-hold $VIP 87 8 172.16.1.10+8
ipvsadm -Ln > "$RES/fwmark-ipvsadm-before.txt"
ipvsadm -Lcn > "$RES/fwmark-ipvsadm-Lcn.txt"
"$IPVSTOP" snapshot --json --top 0 > "$RES/fwmark-root.json"
nobody "$IPVSTOP" snapshot --json --top 0 > "$RES/fwmark-nobody.json"
ipvsadm -Ln > "$RES/fwmark-ipvsadm-after.txt"
for p in 85 86 87; do ipvsadm -D -t $VIP:$p; done
for m in 1 2 3; do ipvsadm -D -f $m; done

# ---- service_down -------------------------------------------------------------------------
log "service_down"
ipvsadm -A -t $VIP:81 -s rr
ipvsadm -A -t $VIP:82 -s rr
ipvsadm -a -t $VIP:82 -r $R1:82 -m -w 1
ipvsadm -a -t $VIP:82 -r $R2:82 -m -w 1
ipvsadm -A -t $VIP:83 -s rr
ipvsadm -a -t $VIP:83 -r $R1:83 -m -w 1 -x 3
ipvsadm -a -t $VIP:83 -r $R2:83 -m -w 1 -x 3
client down c1 --job tcp-hold $VIP 82 4 172.16.1.30+4 --job tcp-hold $VIP 83 6 172.16.1.30+6
ipvsadm -e -t $VIP:82 -r $R1:82 -m -w 0
ipvsadm -e -t $VIP:82 -r $R2:82 -m -w 0
for p in 81 82 83; do echo "$p $(attempt c1 172.16.1.36 $p)"; done > "$RES/down-attempts.txt"
ipvsadm -Ln > "$RES/down-ipvsadm-Ln.txt"
ipvsadm -Ln --thresholds > "$RES/down-ipvsadm-thresholds.txt"
check down-root
check down-nobody nobody
"$IPVSTOP" snapshot --json --no-connections > "$RES/down-snapshot-root.json"
nobody "$IPVSTOP" snapshot --json --no-connections > "$RES/down-snapshot-nobody.json"
ls /sys/kernel/slab/ip_vs_conn/slab_size > "$RES/sysfs-slab.txt" 2>&1 || true
# The service_down services go, so that the later phases judge only their own.
for p in 81 82 83; do ipvsadm -D -t $VIP:$p; done

# ---- two rogues ---------------------------------------------------------------------------
log "two rogues"
ipvsadm -A -t $VIP:84 -s rr -p 300
ipvsadm -a -t $VIP:84 -r $R1:84 -m -w 1
ipvsadm -a -t $VIP:84 -r $R2:84 -m -w 0
client rogues c3 --job tcp-hold $VIP 84 90 172.16.3.66 --job tcp-hold $VIP 84 60 172.16.3.67
ipvsadm -e -t $VIP:84 -r $R2:84 -m -w 1
client ordinary c1 --job tcp-hold $VIP 84 20 172.16.1.10+20
ipvsadm -Ln > "$RES/rogues-ipvsadm-Ln.txt"
check rogues-root
ipvsadm -D -t $VIP:84

# ---- quiescent fed N, check --for ---------------------------------------------------------
log "quiescent"
ipvsadm -A -t $VIP:443 -s wlc -p 300
ipvsadm -a -t $VIP:443 -r $R1:443 -m -w 1
ipvsadm -a -t $VIP:443 -r $R2:443 -m -w 1
client q0 c1 --job tcp-close $VIP 443 10 172.16.1.10+10
kill "$CLIENT_PID" 2>/dev/null || true
ipvsadm -e -t $VIP:443 -r $R2:443 -m -w 0
sleep 3   # the kernel's estimator folds the per-CPU counters into Conns every 2 s
conns_r2() { ipvsadm -Ln --stats --exact -t $VIP:443 | awk -v rs="$R2:443" '$1 == "->" && $2 == rs { print $3 }'; }
for run in $(seq 1 "$RUNS"); do
  k=$(( 1 + run % 3 ))
  before=$(conns_r2)
  "$IPVSTOP" check --json --for 30s > "$RES/q$run.json" 2> "$RES/q$run.stderr" &
  checker=$!
  sleep 3
  client "q$run" c1 --job tcp-close $VIP 443 $((10 * k)) 172.16.1.10+10
  kill "$CLIENT_PID" 2>/dev/null || true
  rc=0; wait $checker || rc=$?
  echo $rc > "$RES/q$run.exitcode"
  sleep 3   # the kernel's estimator folds the per-CPU counters into Conns every 2 s
  after=$(conns_r2)
  echo "$run $k $before $after" >> "$RES/quiescent-conns.txt"
  log "run $run: r2 Conns $before -> $after"
done
ipvsadm -Ln --stats --exact > "$RES/quiescent-ipvsadm-stats.txt"

# ---- verdict ------------------------------------------------------------------------------
log "verdict"
python3 "$HERE/../truths_verdict.py" "$RES" "$VIP" "$R1" "$R2" "$RUNS" | tee "$RES/verdict.txt"
exit "${PIPESTATUS[0]}"
