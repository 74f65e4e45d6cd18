#!/bin/bash
# Lab scenario (runs as root inside the lab VM): a small real director with real traffic that
# leaves a known, stable set of connection counts, then the real dashboard (`$IPVSTOP`, no
# arguments) in tmux at 160x50: its Services screen captured with `tmux capture-pane -p`,
# bracketed by `ipvsadm -Ln` and `ipvsadm -Ln --persistent-conn` taken just before and just after.
#
#   IPVSTOP=/path/to/ipvstop Tests/Lab/vm run Tests/Lab/scenarios/dashboard.sh OUTDIR
#   (or Tests/Lab/dashboard [IPVSTOP], which does that and runs Tests/Lab/dashboard_compare.py)
#
# Layout (as in director.sh): director in the root namespace, VIP 10.0.0.100, VIP2 10.0.0.101,
# VIP3 10.0.0.102 (fwmark 1) and VIP6 fd00:100::100 (IPv6 fwmark 1 for tcp 8000) on dummy lvs0;
# clients c1 172.16.1.10-19 + fd00:c1::10-14, c2 172.16.2.10-59 (a /24 farm); real servers
# r1 192.168.1.2 fd00:1::2, r2 192.168.2.2 fd00:2::2, r3 192.168.3.2 fd00:3::2.
# Services (see the rules below): TCP wrr with a quiescent weight-0 server, TCP wlc -p 300 whose
# server goes to weight 0 while it holds connections, TCP sh -p 120 -M /24, TCP port 0 -p 100
# (weight 65535), TCP lc with Route/Tunnel servers, UDP wrr, UDP ops, UDP with a flood of
# 100,500 entries (a figure the dashboard scales to 100K until `x`), SCTP (optional), IPv6 TCP,
# fwmark 1 -p 60 and IPv6 fwmark 1 -p 30 -M 64 (the same mark: two services).
#
# Why the counts stay put while the screen is read (timeouts raised with ipvsadm --set first):
#   ActiveConn  connections held open by client.py (ESTABLISHED, tcp timeout 900 s)
#   InActConn   http-hold: the server closes, the client never does (FIN_WAIT, tcpfin 600 s);
#               UDP exchanges and the flood (udp 600 s); tcp-close and http made last
#               (TIME_WAIT, 120 s fixed by the kernel: the captures come well within that)
#   PersistConn templates of the persistent services; they control held connections, so the
#               kernel re-arms them instead of letting them go
#
# Rounds, each in OUT/dashboard/ROUND/: root (netlink), then user (the same binary as nobody:
# /proc only, PersistConn shown as "-"). While the root round's dashboard runs, real servers
# are edited, added and deleted (live-edits.txt): the screen must follow. Each round writes
#   screen-first.txt    the first Services screen (before the edits)
#   ipvsadm-before/{Ln,Ln-persistent-conn}.txt, taken_at
#   screen-scaled.txt   the first capture whose snapshot clock (status line) is past the end of
#                       the "before" reading: numbers as the dashboard starts (scaled)
#   screen-live.txt     after `x`: exact numbers
#   screen-paused.txt   after `p`: the snapshot the dashboard then holds
#   ipvsadm-after/{Ln,Ln-persistent-conn}.txt, taken_at
#   exitcode (ipvstop's, after `q`), stderr.txt, command.txt, timing.txt
# Exits non-zero when a step did not happen (no screen, no poll after "before", no pause...);
# the figures themselves are compared on the host (Tests/Lab/dashboard_compare.py).
set -euo pipefail

OUT=${1:-${OUT:-}}
[ -n "$OUT" ] || { echo "usage: $0 OUTDIR (or set OUT)" >&2; exit 2; }
[ -n "${IPVSTOP:-}" ] && [ -x "$IPVSTOP" ] || { echo "dashboard: set IPVSTOP to an ipvstop binary" >&2; exit 2; }
command -v tmux > /dev/null || { echo "dashboard: tmux is not installed (on the host: the VM shares its root)" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
LIB=$HERE/lib
RES=$OUT/dashboard
RUN=/run/lab
rm -rf "$RES"
mkdir -p "$RES" "$RUN"
LAB_NAME=dashboard LAB_LOGDIR=$RES
. "$LIB/common.sh"

VIP=10.0.0.100 VIP2=10.0.0.101 VIP3=10.0.0.102 VIP6=fd00:100::100
RS4=(192.168.1.2 192.168.2.2 192.168.3.2)
RS6=(fd00:1::2 fd00:2::2 fd00:3::2)
# UDP VIP:5353 gets one datagram from each of FLOOD_N spoofed sources: a figure past 100,000,
# which the dashboard scales (100K) until `x` makes it exact
FLOOD_N=100500 FLOOD_NET=10.200.0.0/16

# ---- network ------------------------------------------------------------------------------
log "network"
for m in ip_vs ip_vs_rr ip_vs_wrr ip_vs_wlc ip_vs_sh ip_vs_lc veth dummy; do modprobe "$m"; done
modprobe sctp 2>/dev/null || true
sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
  net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
NSES="c1 c2 r1 r2 r3"
declare -A N4=([c1]=172.16.1 [c2]=172.16.2 [r1]=192.168.1 [r2]=192.168.2 [r3]=192.168.3)
declare -A N6=([c1]=fd00:c1 [c2]=fd00:c2 [r1]=fd00:1 [r2]=fd00:2 [r3]=fd00:3)
lab_ns_extra() {  # more client addresses
  case $1 in
    c1) for i in $(seq 10 19); do echo "addr add 172.16.1.$i/24 dev eth0"; done
        for i in $(seq 10 14); do echo "addr add fd00:c1::$i/64 dev eth0 nodad"; done ;;
    c2) for i in $(seq 10 59); do echo "addr add 172.16.2.$i/24 dev eth0"; done ;;
  esac
}
LVS_ADDRS="$VIP/32 $VIP2/32 $VIP3/32 $VIP6/128"
. "$LIB/net.sh"
lab_network
# the flood's spoofed sources (see below) live behind c1, which drops what comes back to them
ip route add $FLOOD_NET via 172.16.1.2
ip -n c1 route add blackhole $FLOOD_NET

# ---- real servers -------------------------------------------------------------------------
log "servers"
for k in 1 2 3; do
  LAB_NAME=r$k ip netns exec r$k python3 "$LIB/server.py" --tcp 80,443,8080,8000,9000 --udp 53,514 --sctp 3868 \
    --ready "$RUN/r$k.ready" > "$RES/server-r$k.log" 2>&1 &
done

# ---- IPVS ---------------------------------------------------------------------------------
log "ipvs"
# ESTABLISHED 900 s, FIN_WAIT 600 s, UDP 600 s: nothing the scenario makes runs out before the
# capture (TIME_WAIT stays at the kernel's fixed 120 s)
ipvsadm --set 900 600 600
cat > "$RES/ipvsadm-rules.txt" <<RULES
# TCP VIP:80 wrr, weights 3/2, r3 quiescent (weight 0)
-A -t $VIP:80 -s wrr
-a -t $VIP:80 -r ${RS4[0]}:80 -m -w 3
-a -t $VIP:80 -r ${RS4[1]}:80 -m -w 2
-a -t $VIP:80 -r ${RS4[2]}:80 -m -w 0
# TCP VIP:443 wlc persistent 300 (r2 goes to weight 0 once it holds connections)
-A -t $VIP:443 -s wlc -p 300
-a -t $VIP:443 -r ${RS4[0]}:443 -m -w 1
-a -t $VIP:443 -r ${RS4[1]}:443 -m -w 2
# TCP VIP2:8080 sh persistent 120, netmask /24 (the c2 farm lands on one server)
-A -t $VIP2:8080 -s sh -p 120 -M 255.255.255.0
-a -t $VIP2:8080 -r ${RS4[0]}:8080 -m -w 1
-a -t $VIP2:8080 -r ${RS4[1]}:8080 -m -w 1
# TCP VIP:25 lc, no traffic: thresholds and the other forwarding methods
-A -t $VIP:25 -s lc
-a -t $VIP:25 -r ${RS4[0]}:25 -m -w 1 -x 100 -y 50
-a -t $VIP:25 -r ${RS4[1]}:25 -g -w 2
-a -t $VIP:25 -r ${RS4[2]}:25 -i -w 3
# UDP VIP:53 wrr 1/2/1
-A -u $VIP:53 -s wrr
-a -u $VIP:53 -r ${RS4[0]}:53 -m -w 1
-a -u $VIP:53 -r ${RS4[1]}:53 -m -w 2
-a -u $VIP:53 -r ${RS4[2]}:53 -m -w 1
# UDP VIP:514 rr, one-packet scheduling (entries go at once: zeros)
-A -u $VIP:514 -s rr -o
-a -u $VIP:514 -r ${RS4[1]}:514 -m -w 1
-a -u $VIP:514 -r ${RS4[2]}:514 -m -w 1
# fwmark 1 (VIP3 tcp 8000) wrr persistent 60, weights 1/4
-A -f 1 -s wrr -p 60
-a -f 1 -r ${RS4[1]}:0 -m -w 1
-a -f 1 -r ${RS4[2]}:0 -m -w 4
# IPv6 TCP [VIP6]:80 wrr 1/3
-A -t [$VIP6]:80 -s wrr
-a -t [$VIP6]:80 -r [${RS6[0]}]:80 -m -w 1
-a -t [$VIP6]:80 -r [${RS6[2]}]:80 -m -w 3
# IPv6 fwmark 1 ([VIP6] tcp 8000) sh persistent 30, /64: the same mark as the IPv4 service
# above, yet its own service (FWM 1 IPv6)
-A -f 1 -6 -s sh -p 30 -M 64
-a -f 1 -6 -r [${RS6[0]}]:0 -m -w 1
-a -f 1 -6 -r [${RS6[2]}]:0 -m -w 2
# TCP VIP2:0 (all ports) rr persistent 100, a large weight
-A -t $VIP2:0 -s rr -p 100
-a -t $VIP2:0 -r ${RS4[2]}:0 -m -w 65535
# UDP VIP:5353 rr, one real server (nothing listens there: the entries are made all the same)
-A -u $VIP:5353 -s rr
-a -u $VIP:5353 -r ${RS4[2]}:5353 -m -w 1
RULES
grep -v '^#' "$RES/ipvsadm-rules.txt" | ipvsadm -R
iptables -t mangle -A PREROUTING -d $VIP3/32 -p tcp --dport 8000 -j MARK --set-mark 1
ip6tables -t mangle -A PREROUTING -d $VIP6/128 -p tcp --dport 8000 -j MARK --set-mark 1
# SCTP VIP:3868 rr (optional: kernel and ipvsadm permitting)
SCTP=0
if ipvsadm -A --sctp-service $VIP:3868 -s rr 2>> "$RES/ipvsadm-optional.log"; then
  ipvsadm -a --sctp-service $VIP:3868 -r ${RS4[0]}:3868 -m -w 1
  ipvsadm -a --sctp-service $VIP:3868 -r ${RS4[1]}:3868 -m -w 2
  SCTP=1
fi

for k in 1 2 3; do wait_ready "$RUN/r$k.ready" 60 "$RES/server-r$k.log" || exit 1; done

# ---- traffic ------------------------------------------------------------------------------
C1=172.16.1.10+10 C16=fd00:c1::10+5 C2=172.16.2.10+12
client c1 c1 \
  --job tcp-hold $VIP 80 10 $C1 \
  --job http-hold $VIP 80 5 $C1 \
  --job tcp-hold $VIP 443 8 $C1 \
  --job udp $VIP 53 12 $C1 \
  --job udp $VIP 514 4 $C1 \
  --job tcp-hold $VIP3 8000 6 $C1 \
  --job tcp-hold $VIP6 80 8 $C16 \
  --job http-hold $VIP6 80 2 $C16 \
  --job tcp-hold $VIP6 8000 4 $C16 \
  --job tcp-hold $VIP2 9000 3 $C1
client c2 c2 --job tcp-hold $VIP2 8080 12 $C2
if [ "$SCTP" = 1 ]; then
  client sctp c1 --job sctp-hold $VIP 3868 4 $C1 || echo "dashboard: SCTP traffic failed (optional)" >&2
fi
# the flood: raw IPv4/UDP datagrams from FLOOD_N (address, port) pairs in FLOOD_NET
cat > "$RUN/flood.py" <<'PY'
import socket, struct, sys, time
vip, vport, count, ppa = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), 400
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
dst, payload, errs, t0 = socket.inet_aton(vip), b"flood", 0, time.time()
for i in range(count):
    a, p = divmod(i, ppa)
    src = bytes((10, 200, a // 250, 1 + a % 250))
    pkt = struct.pack("!BBHHHBBH4s4sHHHH", 0x45, 0, 33, 0, 0, 64, 17, 0, src, dst, 1024 + p, vport, 13, 0) + payload
    try:
        s.sendto(pkt, (vip, 0))
    except OSError:
        errs += 1
        time.sleep(0.001)
print("sent %d datagrams (%d errors) in %.1f s" % (count - errs, errs, time.time() - t0))
PY
flood_count() { ipvsadm -Ln | awk -v s="UDP  $VIP:5353" '$1 != "->" { on = ($1 "  " $2 == s) } on && $1 == "->" && $2 ~ /:/ { n += $6 } END { print n + 0 }'; }
log "flood: $FLOOD_N UDP sources"
for pass in 1 2 3; do
  ip netns exec c1 python3 "$RUN/flood.py" $VIP 5353 $FLOOD_N >> "$RES/flood.log" 2>&1
  [ "$(flood_count)" -ge $FLOOD_N ] && break
done
have=$(flood_count)
echo "UDP $VIP:5353 InActConn after $pass passes: $have" >> "$RES/flood.log"
[ "$have" -ge 100000 ] || { echo "dashboard: the flood made only $have entries" >&2; exit 1; }
log "flood: $have entries"
# a quiescent server that still holds connections and templates
ipvsadm -e -t $VIP:443 -r ${RS4[1]}:443 -m -w 0
# last: the connections that end in TIME_WAIT (120 s, not settable)
client late c1 --job tcp-close $VIP 80 4 $C1 --job http $VIP6 80 3 $C16
log "traffic done"

# ---- the dashboard in tmux ----------------------------------------------------------------
W=160 H=50
tm() { tmux -u -L ipvstop-lab "$@"; }
tm new-session -d -s keep -x $W -y $H "sleep 86400"
capture() { tm capture-pane -p -t main 2>/dev/null; }
keys() { tm send-keys -t main "$@" 2>/dev/null; }
# wait_for TEXT SECONDS: until the screen shows TEXT (the last capture is left in $RUN/last)
wait_for() {
  local want=$1 limit=$2 deadline=$((SECONDS + $2)) a
  while :; do
    a=$(capture) || a=
    printf '%s\n' "$a" > "$RUN/last"
    [[ $a == *"$want"* ]] && return 0
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}
# the snapshot's clock on the status line (right end of line 2): "YYYY-MM-DD HH:MM:SS"
screen_clock() { sed -n '2s/.*\([0-9]\{4\}-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]\) *$/\1/p' "$RUN/last"; }
ipvsadm_now() {  # ipvsadm_now DIR
  mkdir -p "$1"
  ipvsadm -Ln > "$1/Ln.txt"
  ipvsadm -Ln --persistent-conn > "$1/Ln-persistent-conn.txt"
  date -u +%Y-%m-%dT%H:%M:%S.%NZ > "$1/taken_at"
}

# Made while the first dashboard runs (after its first screen): it must follow them.
live_edits() {  # live_edits DIR
  {
    echo "-e -f 1 -r ${RS4[2]}:0 -m -w 2"              # a weight changes (4 -> 2)
    echo "-e -u $VIP:53 -r ${RS4[1]}:53 -m -w 7"       # 2 -> 7, with its UDP entries
    echo "-d -u $VIP:514 -r ${RS4[2]}:514"            # a real server without entries goes
    echo "-a -t $VIP:25 -r ${RS4[0]}:2525 -m -w 9"    # and one comes
  } > "$1/live-edits.txt"
  ipvsadm -R < "$1/live-edits.txt"
  # an IPv6 real server behind an IPv4 service (tunnel): optional, kernel and ipvsadm permitting
  if ipvsadm -a -t $VIP:25 -r [${RS6[1]}]:25 -i -w 4 2>> "$RES/ipvsadm-optional.log"; then
    echo "-a -t $VIP:25 -r [${RS6[1]}]:25 -i -w 4" >> "$1/live-edits.txt"
  fi
  log "live edits: $(grep -c . "$1/live-edits.txt") made while the dashboard runs"
}

fail=0
round() {  # round NAME [PREFIX...]: one dashboard session, run as PREFIX... ipvstop
  local name=$1; shift
  local d=$RES/$name t=$(date +%s.%N)
  mkdir -p "$d"
  echo "$name" > "$d/mode"
  : > "$d/timing.txt"
  tm kill-session -t main 2>/dev/null || true
  local cmd="" a
  for a in "$@"; do cmd+="$(printf '%q' "$a") "; done
  cmd+="env TERM=tmux-256color LANG=C.UTF-8 LC_ALL= TZ=UTC $(printf '%q' "$IPVSTOP") 2> $(printf '%q' "$d/stderr.txt"); echo \"[exited \$?]\"; sleep 3600"
  echo "$cmd" > "$d/command.txt"
  tm new-session -d -s main -x $W -y $H "$cmd"
  log "$name: ipvstop started in tmux ${W}x${H}"
  if ! wait_for "virtual services" 90; then
    echo "dashboard: $name: the Services screen never showed" >&2; cp "$RUN/last" "$d/screen-timeout.txt"; fail=1; return 0
  fi
  echo "first screen: $(since "$t") s" >> "$d/timing.txt"
  cp "$RUN/last" "$d/screen-first.txt"
  if [ "$name" = root ]; then live_edits "$d"; fi
  ipvsadm_now "$d/ipvsadm-before"
  local before_end; before_end=$(date -u -d "@$(( $(date +%s) + 1 ))" '+%F %T')
  # wait for a poll taken after the "before" reading: its clock (whole seconds) is later
  local deadline=$((SECONDS + 60)) clock=""
  while :; do
    wait_for "virtual services" 5 || true
    clock=$(screen_clock)
    [ -n "$clock" ] && [[ ! $clock < $before_end ]] && break
    if [ $SECONDS -ge $deadline ]; then
      echo "dashboard: $name: no poll after $before_end (screen clock '$clock')" >&2; fail=1; break
    fi
    sleep 0.2
  done
  cp "$RUN/last" "$d/screen-scaled.txt"
  echo "scaled capture: snapshot clock $clock, ipvsadm before ended by $before_end ($(since "$t") s)" >> "$d/timing.txt"
  keys x
  if ! wait_for "exact numbers" 20; then
    echo "dashboard: $name: x did not switch to exact numbers" >&2; fail=1
  fi
  cp "$RUN/last" "$d/screen-live.txt"
  echo "live capture (exact): snapshot clock $(screen_clock)" >> "$d/timing.txt"
  keys p
  wait_for "PAUSED" 20 || { echo "dashboard: $name: p did not pause" >&2; fail=1; }
  sleep 0.5
  wait_for "PAUSED" 5 || true
  cp "$RUN/last" "$d/screen-paused.txt"
  echo "paused capture (exact): snapshot clock $(screen_clock) ($(since "$t") s)" >> "$d/timing.txt"
  ipvsadm_now "$d/ipvsadm-after"
  keys q
  if wait_for "[exited" 30; then
    sed -n 's/.*\[exited \([0-9]*\)\].*/\1/p' "$RUN/last" | head -n1 > "$d/exitcode"
  else
    echo "timeout" > "$d/exitcode"; cp "$RUN/last" "$d/screen-quit-timeout.txt"
  fi
  echo "round: $(since "$t") s, ipvstop exit $(cat "$d/exitcode")" >> "$d/timing.txt"
  log "$name: done ($(since "$t") s, exit $(cat "$d/exitcode"))"
}

round root
round user setpriv --reuid=65534 --regid=65534 --clear-groups
tm kill-server 2>/dev/null || true
uname -r > "$RES/uname-r.txt"
ipvsadm -L --timeout > "$RES/L-timeout.txt"
log "done"
exit $fail
