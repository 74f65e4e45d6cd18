#!/bin/bash
# Lab scenario (runs as root inside the lab VM): the SNMP subagent against the real kernel,
# side by side with keepalived's own SNMP subagent, on services keepalived itself created.
#
#   IPVSTOP=/path/to/ipvstop Tests/Lab/vm run Tests/Lab/scenarios/agent.sh OUTDIR
#   (or Tests/Lab/agent [IPVSTOP], which does that under the lab lock and judges the capture)
#
# What it does
#   - the director's network as director.sh builds it (dummy lvs0 with the VIPs, client and
#     real-server namespaces over veth), a subset of its addresses;
#   - snmpd as AgentX master on a unix socket in a temp dir, plus a UDP listener on
#     127.0.0.1:$SNMP_PORT for the walks;
#   - keepalived (-C, --snmp, snmp_socket = the same master) whose virtual_server blocks
#     create the services in the kernel: TCP with and without persistence (one with a /24
#     granularity), UDP, fwmark, IPv6, different weights and one real server of weight 0; no
#     health checkers, so every real server stays in;
#   - behind keepalived's back, as an operator would: one real server added and one weight
#     changed with ipvsadm (ipvstop must follow the kernel; keepalived's MIB may not);
#   - real traffic with stable counts: held-open TCP connections (ESTABLISHED), half-closed
#     ones (FIN_WAIT, whose timeout `ipvsadm --set` raises to 600 s), UDP entries (900 s),
#     and closed ones last (TIME_WAIT: 120 s on Linux whatever --set says);
#   - `ipvstop agent --agentx-socket ...` ($IPVSTOP), waited for until it serves the services;
#   - the capture, as close together as it can be:
#       ipvsadm -Ln and -Ln --persistent-conn          ($CAP/ipvsadm-before/)
#       snmpbulkwalk of IPVSTOP-MIB::ipvsRealServerTable, KEEPALIVED-MIB::realServerTable,
#       then of ipvsServiceTable and virtualServerTable (numeric OIDs: *.walk)
#       ipvsadm again                                  ($CAP/ipvsadm-after/)
#     then, for people, the same walks by name when the MIBs load (named/).
# Everything lands in $OUT/agent (or $1/agent); Tests/Lab/agent_compare.py judges it.
set -euo pipefail

OUT=${1:-${OUT:-}}
[ -n "$OUT" ] || { echo "usage: $0 OUTDIR (or set OUT)" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
LIB=$HERE/lib
CAP=$OUT/agent
RUN=$(mktemp -d /tmp/ipvstop-agent-lab.XXXXXX)
mkdir -p "$CAP"
LAB_NAME=agent LAB_LOGDIR=$CAP
. "$LIB/common.sh"
stamp() { printf '%s %s\n' "$EPOCHREALTIME" "$*" >> "$CAP/timing.txt"; }
: > "$CAP/timing.txt"

[ -n "${IPVSTOP:-}" ] && [ -x "$IPVSTOP" ] || { echo "agent: IPVSTOP=${IPVSTOP:-} is not an executable file" >&2; exit 2; }
for t in keepalived snmpd snmpbulkwalk snmpget ipvsadm iptables python3; do
  command -v "$t" > /dev/null || { echo "agent: $t is not installed (run Tests/Lab/setup on the host)" >&2; exit 2; }
done

pids=()
cleanup() {
  for p in "${pids[@]}" "${LAB_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

VIP=10.0.0.100 VIP2=10.0.0.101 VIP3=10.0.0.102 VIP6=fd00:100::100
RS4=(192.168.1.2 192.168.2.2 192.168.3.2)
RS6=(fd00:1::2 fd00:2::2 fd00:3::2)

# ---- network (as director.sh) --------------------------------------------------------------
log "network"
for m in ip_vs ip_vs_rr ip_vs_wrr ip_vs_wlc ip_vs_sh veth dummy; do modprobe "$m"; done
sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
NSES="c1 c2 r1 r2 r3"
declare -A N4=([c1]=172.16.1 [c2]=172.16.2 [r1]=192.168.1 [r2]=192.168.2 [r3]=192.168.3)
declare -A N6=([c1]=fd00:c1 [c2]=fd00:c2 [r1]=fd00:1 [r2]=fd00:2 [r3]=fd00:3)
lab_ns_extra() {  # more client addresses
  case $1 in
    c1) for i in $(seq 10 19); do echo "addr add 172.16.1.$i/24 dev eth0"; done
        for i in $(seq 10 14); do echo "addr add fd00:c1::$i/64 dev eth0 nodad"; done ;;
    c2) for i in $(seq 10 29); do echo "addr add 172.16.2.$i/24 dev eth0"; done ;;
  esac
}
LVS_ADDRS="$VIP/32 $VIP2/32 $VIP3/32 $VIP6/128"
. "$LIB/net.sh"
lab_network
iptables -t mangle -A PREROUTING -d $VIP3/32 -p tcp -m multiport --dports 8000,8001 -j MARK --set-mark 1

log "servers"
for k in 1 2 3; do
  LAB_NAME=r$k ip netns exec r$k python3 "$LIB/server.py" --tcp 80,443,8080,8000,8001 \
    --udp 53 --ready "$RUN/r$k.ready" > "$CAP/server-r$k.log" 2>&1 &
  pids+=($!)
done

waitfor() {  # waitfor SECONDS WHAT COMMAND...: poll COMMAND every 0.3 s
  local until=$(( ${EPOCHREALTIME%.*} + $1 )) what=$2; shift 2
  while ! "$@" > /dev/null 2>&1; do
    if [ "${EPOCHREALTIME%.*}" -ge "$until" ]; then echo "agent: timeout waiting for $what" >&2; return 1; fi
    sleep 0.3
  done
}

# ---- snmpd: the AgentX master ------------------------------------------------------------
log "snmpd"
SOCK=$RUN/agentx/master
SNMP_PORT=1161
mkdir -p "$RUN/agentx" "$RUN/persist"
export SNMP_PERSISTENT_DIR=$RUN/persist
cat > "$CAP/snmpd.conf" <<EOF
master agentx
agentXSocket $SOCK
agentXTimeout 10
agentXRetries 2
agentaddress udp:127.0.0.1:$SNMP_PORT
rocommunity public 127.0.0.1
dontLogTCPWrappersConnects yes
EOF
MIBS= snmpd -f -Lo -C -c "$CAP/snmpd.conf" > "$CAP/snmpd.log" 2>&1 &
pids+=($!)
export MIBS=        # the walks are numeric; no MIB file is needed for them
Q=(-v2c -c public -t 10 -r 1 127.0.0.1:$SNMP_PORT)
waitfor 60 "snmpd" snmpget "${Q[@]}" .1.3.6.1.2.1.1.3.0

# ---- keepalived: creates the services, serves KEEPALIVED-MIB -------------------------------
log "keepalived"
cat > "$CAP/keepalived.conf" <<EOF
global_defs {
    router_id ipvstop-lab
    enable_snmp_checker
    snmp_socket $SOCK
}
# TCP, no persistence, three weights, one of them 0 (quiescent)
virtual_server $VIP 80 {
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    delay_loop 3600
    real_server ${RS4[0]} 80 {
        weight 3
    }
    real_server ${RS4[1]} 80 {
        weight 2
    }
    real_server ${RS4[2]} 80 {
        weight 0
    }
}
# TCP, persistent 300 s (one template per client address)
virtual_server $VIP 443 {
    lvs_sched wlc
    lvs_method NAT
    protocol TCP
    persistence_timeout 300
    delay_loop 3600
    real_server ${RS4[0]} 443 {
        weight 1
    }
    real_server ${RS4[1]} 443 {
        weight 2
    }
}
# TCP, persistent 120 s with a /24 granularity (one template for the whole client net)
virtual_server $VIP2 8080 {
    lvs_sched sh
    lvs_method NAT
    protocol TCP
    persistence_timeout 120
    persistence_granularity 255.255.255.0
    delay_loop 3600
    real_server ${RS4[0]} 8080 {
        weight 1
    }
    real_server ${RS4[1]} 8080 {
        weight 1
    }
}
# UDP
virtual_server $VIP 53 {
    lvs_sched rr
    lvs_method NAT
    protocol UDP
    delay_loop 3600
    real_server ${RS4[0]} 53 {
        weight 1
    }
    real_server ${RS4[1]} 53 {
        weight 1
    }
}
# fwmark 1 (VIP3 TCP 8000 and 8001), persistent 60 s
virtual_server fwmark 1 {
    lvs_sched rr
    lvs_method NAT
    persistence_timeout 60
    delay_loop 3600
    real_server ${RS4[1]} 0 {
        weight 1
    }
    real_server ${RS4[2]} 0 {
        weight 4
    }
}
# IPv6 TCP, weighted round robin
virtual_server $VIP6 80 {
    lvs_sched wrr
    lvs_method NAT
    protocol TCP
    delay_loop 3600
    real_server ${RS6[0]} 80 {
        weight 1
    }
    real_server ${RS6[2]} 80 {
        weight 2
    }
}
EOF
NSERVICES=6 NREALS=13
keepalived --config-test="$CAP/keepalived-config-test.log" -f "$CAP/keepalived.conf" \
  || { echo "agent: keepalived rejects its configuration:" >&2; cat "$CAP/keepalived-config-test.log" >&2; exit 1; }
keepalived -C -n -l -D -G -x -f "$CAP/keepalived.conf" -p "$RUN/keepalived.pid" \
  -c "$RUN/keepalived-checkers.pid" > "$CAP/keepalived.log" 2>&1 &
pids+=($!)
kernel_services() { [ "$(ipvsadm -Ln | grep -cE '^(TCP|UDP|FWM) ')" = "$NSERVICES" ] && [ "$(ipvsadm -Ln | grep -c '^  -> [0-9[]')" = "$NREALS" ]; }
waitfor 90 "keepalived's services in the kernel" kernel_services \
  || { ipvsadm -Ln >&2; tail -n 30 "$CAP/keepalived.log" >&2; exit 1; }
# keepalived's checker process registers KEEPALIVED-MIB's check subtree with snmpd
KA=.1.3.6.1.4.1.9586.100.5
keepalived_snmp() { snmpget "${Q[@]}" $KA.3.3.1.2.1 | grep -q INTEGER; }
waitfor 90 "keepalived's SNMP subagent" keepalived_snmp \
  || { snmpget "${Q[@]}" $KA.3.3.1.2.1 >&2; tail -n 30 "$CAP/keepalived.log" >&2; exit 1; }
ipvsadm --set 900 600 900     # ESTABLISHED 900 s, FIN_WAIT 600 s, UDP 900 s: stable counts

# ---- ipvstop's subagent --------------------------------------------------------------------
log "ipvstop agent"
"$IPVSTOP" agent --agentx-socket "$SOCK" --interval 1 --agentx-ping 2 > "$CAP/ipvstop-agent.log" 2>&1 &
agent_pid=$!
pids+=($agent_pid)
IV=.1.3.6.1.4.1.32473.1.1
ipvstop_snmp() { snmpget "${Q[@]}" $IV.1.3.0 | grep -q "Gauge32: $NSERVICES\$"; }
waitfor 90 "ipvstop's subagent" ipvstop_snmp \
  || { snmpget "${Q[@]}" $IV.1.3.0 >&2; cat "$CAP/ipvstop-agent.log" >&2; exit 1; }

# ---- behind keepalived's back ---------------------------------------------------------------
# An operator adds a real server by hand: the kernel (and ipvstop) have it, keepalived does not.
ipvsadm -a -u $VIP:53 -r ${RS4[2]}:53 -m -w 2

# ---- traffic -------------------------------------------------------------------------------
for k in 1 2 3; do waitfor 60 "server r$k" test -s "$RUN/r$k.ready" || { cat "$CAP/server-r$k.log" >&2; exit 1; }; done
C1=172.16.1.10+10 C16=fd00:c1::10+5 C2=172.16.2.10+20
client hold c1 \
  --job tcp-hold $VIP 80 30 $C1 \
  --job tcp-half $VIP 80 6 $C1 \
  --job tcp-hold $VIP 443 20 $C1 \
  --job udp $VIP 53 20 $C1 \
  --job tcp-hold $VIP3 8000 6 $C1 \
  --job tcp-hold $VIP3 8001 6 $C1 \
  --job tcp-hold $VIP6 80 9 $C16
client hold2 c2 --job tcp-hold $VIP2 8080 20 $C2 --job tcp-hold $VIP 443 4 $C2
# closed last: TIME_WAIT lasts 120 s
client close c1 --job tcp-close $VIP 80 10 $C1 --job tcp-close $VIP6 80 4 $C16
stamp "traffic done"
# An operator changes a weight by hand (keepalived configured 1)
ipvsadm -e -t $VIP2:8080 -r ${RS4[1]}:8080 -m -w 3
# two polls of ipvstop (1 s apart) after the last connection; keepalived's statistics are read
# from the kernel when asked, at most once every 5 s (nothing asked it for them yet)
sleep 3

# ---- capture -------------------------------------------------------------------------------
ipvsadm_all() {  # ipvsadm_all DIR
  mkdir -p "$1"
  ipvsadm -Ln --persistent-conn > "$1/Ln-persistent-conn.txt"
  ipvsadm -Ln > "$1/Ln.txt"
}
walk() {  # walk NAME OID: numeric walk into NAME.walk
  stamp "walk $1 start"
  snmpbulkwalk "${Q[@]}" -Cr50 -On "$2" > "$CAP/$1.walk" 2> "$CAP/$1.walk.stderr" || echo "walk $1 failed: $?" >> "$CAP/$1.walk.stderr"
  stamp "walk $1 end"
}
log "capture"
stamp "ipvsadm before start"
ipvsadm_all "$CAP/ipvsadm-before"
stamp "ipvsadm before end"
walk ipvstop-realservers $IV.5
walk keepalived-realservers $KA.3.4
walk ipvstop-services $IV.4
walk keepalived-virtualservers $KA.3.3
stamp "ipvsadm after start"
ipvsadm_all "$CAP/ipvsadm-after"
stamp "ipvsadm after end"
log "capture done"

# ---- for people: the same, by name, and the rest of the story -----------------------------
ipvsadm -Lcn > "$CAP/Lcn-after.txt"
ipvsadm -L --timeout > "$CAP/L-timeout.txt"
"$IPVSTOP" snapshot --json --top 0 > "$CAP/ipvstop-snapshot.json" 2> "$CAP/ipvstop-snapshot.stderr" || true
MIBDIRS=""
for d in "$ROOT/MIBs" "${IPVSTOP_BASE_MIBS:-}" "$ROOT/../shared/mibs" /usr/share/snmp/mibs/ietf /var/lib/mibs/ietf /usr/share/snmp/mibs; do
  [ -n "$d" ] && [ -d "$d" ] && MIBDIRS=${MIBDIRS:+$MIBDIRS:}$d
done
mkdir -p "$CAP/named"
if MIBDIRS=$MIBDIRS MIBS=IPVSTOP-MIB:KEEPALIVED-MIB snmptranslate -On KEEPALIVED-MIB::realServerTable > /dev/null 2>&1 &&
   MIBDIRS=$MIBDIRS MIBS=IPVSTOP-MIB:KEEPALIVED-MIB snmptranslate -On IPVSTOP-MIB::ipvsRealServerTable > /dev/null 2>&1; then
  for t in IPVSTOP-MIB::ipvsServiceTable IPVSTOP-MIB::ipvsRealServerTable KEEPALIVED-MIB::virtualServerTable KEEPALIVED-MIB::realServerTable; do
    MIBDIRS=$MIBDIRS MIBS=IPVSTOP-MIB:KEEPALIVED-MIB snmpbulkwalk "${Q[@]}" -Cr50 "$t" > "$CAP/named/${t#*::}.txt" 2>&1 || true
  done
else
  echo "the MIBs do not load here (MIBDIRS=$MIBDIRS): numeric walks only" > "$CAP/named/README"
fi
{
  echo "keepalived: $(keepalived --version 2>&1 | head -n1)"
  echo "snmpd: $(snmpd -v 2>&1 | grep -m1 -i version)"
  echo "ipvsadm: $(ipvsadm --version 2>&1 | head -n1)"
  echo "kernel: $(uname -r)"
  echo "ipvstop: $IPVSTOP"
} > "$CAP/versions.txt"
kill -TERM "$agent_pid" 2>/dev/null || true
log "done"
