#!/bin/bash
# Lab scenario (runs as root inside the lab VM): what /proc/net/ip_vs_status (7.x: per-namespace
# resizable tables) says at a few table sizes, and whether a read of /proc/net/ip_vs_conn ends
# early when the table is resized during it. Writes $OUT/status/:
#   status-STEP.txt, ip_vs-head-STEP.txt, lfactor-STEP.txt   idle (module loaded, no service),
#       services (two services, no entry), then after filling to each size in STATUS_SIZES
#   nobody.txt          what user nobody gets reading ip_vs_status
#   resize-K.txt        attempt K: Conns and buckets before, lines a slow reader got, Conns and
#                       buckets after (the reader reads 4 KiB at a time and sleeps STATUS_PAUSE
#                       s, default 0.05, between reads while a filler doubles the table, which
#                       makes the kernel resize it)
#   summary.txt
# On a kernel without ip_vs_status (before 7.1) it says so and still records the sizes.
#
#   LAB_KERNEL_NAME=7 flock /tmp/ipvstop-lab.lock Tests/Lab/vm run Tests/Lab/scenarios/status.sh OUTDIR
#
# Environment: STATUS_SIZES (default "100 1000 4000"), STATUS_ATTEMPTS (default 4),
# STATUS_TAB_BITS (ip_vs's conn_tab_bits, default 20), STATUS_PAUSE (default 0.05).
set -uo pipefail
OUT=${1:-${OUT:-}}
[ -n "$OUT" ] || { echo "usage: $0 OUTDIR (or set OUT)" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
LIB=$HERE/lib
RES=$OUT/status
RUN=/run/lab
mkdir -p "$RES" "$RUN"
LAB_NAME=status LAB_LOGDIR=$RES
. "$LIB/common.sh"
. "$LIB/filler.sh"
VIP=10.0.0.100
SIZES=${STATUS_SIZES:-100 1000 4000}

snap() {  # snap STEP
  if [ -e /proc/net/ip_vs_status ]; then cat /proc/net/ip_vs_status > "$RES/status-$1.txt"; else echo "(no /proc/net/ip_vs_status on $(uname -r))" > "$RES/status-$1.txt"; fi
  head -n 1 /proc/net/ip_vs > "$RES/ip_vs-head-$1.txt"
  for f in conn_lfactor svc_lfactor conn_max; do
    [ -e /proc/sys/net/ipv4/vs/$f ] && echo "$f $(cat /proc/sys/net/ipv4/vs/$f)"
  done > "$RES/lfactor-$1.txt"
  log "$1: $(tr '\n' ' ' < "$RES/ip_vs-head-$1.txt")| $(grep -E '^(Conns|Conn buckets):' "$RES/status-$1.txt" | tr '\t\n' '  ')"
}

log "kernel $(uname -r)"
# conn_tab_bits bounds the resizable table (2^8 .. 2^conn_tab_bits buckets; Debian's default 12
# stops it at 4096 buckets from ~256 connections on): a larger one lets it grow with the fill
# (directors with big tables set it), so the resizes come where the reads are
modprobe ip_vs conn_tab_bits="${STATUS_TAB_BITS:-20}" && modprobe ip_vs_rr || exit 1
echo "conn_tab_bits $(cat /sys/module/ip_vs/parameters/conn_tab_bits 2>/dev/null)" > "$RES/module.txt"
snap idle
setpriv --reuid=65534 --regid=65534 --clear-groups cat /proc/net/ip_vs_status > "$RES/nobody.txt" 2>&1
echo "exit status $?" >> "$RES/nobody.txt"
ls -l /proc/net/ip_vs_status >> "$RES/nobody.txt" 2>&1
filler_network $VIP || { echo "status: network setup failed" >&2; exit 1; }
ipvsadm --set 3000 120 3000
ipvsadm -R <<RULES || exit 1
-A -t $VIP:80 -s rr
-a -t $VIP:80 -r 192.168.1.2:80 -m -w 1
-a -t $VIP:80 -r 192.168.2.2:80 -m -w 1
-A -u $VIP:53 -s rr
-a -u $VIP:53 -r 192.168.1.2:53 -m -w 1
RULES
snap services
for n in $SIZES; do
  fill tcp 80 "$n" || log "fill to $n fell short: $(fill_count)"
  snap "$n"
done

# ---- a read while the table is resized --------------------------------------------------
cat > "$RUN/slowread.py" <<'PY'
# slowread.py OUT PAUSE: read /proc/net/ip_vs_conn 4 KiB at a time, PAUSE s apart; print lines, reads, seconds
import sys, time
pause = float(sys.argv[2])
t0 = time.time(); n = reads = 0; tail = b""
with open("/proc/net/ip_vs_conn", "rb", buffering=0) as f:
    open(sys.argv[1], "w").write("started\n")
    while True:
        b = f.read(4096)
        if not b:
            break
        reads += 1
        n += b.count(b"\n")
        time.sleep(pause)
print(f"lines {n} entries {n - 1} reads {reads} seconds {time.time() - t0:.2f}")
PY
conns() { sed -n 's/^Conns:[[:space:]]*//p' /proc/net/ip_vs_status 2>/dev/null || echo "?"; }
buckets() { sed -n 's/^Conn buckets:[[:space:]]*//p' /proc/net/ip_vs_status 2>/dev/null || echo "?"; }
truncated=0
for k in $(seq 1 "${STATUS_ATTEMPTS:-4}"); do
  have=$(fill_count)
  {
    echo "attempt $k"
    echo "before: Conns $(conns), buckets $(buckets), services count $have"
    rm -f "$RUN/started"
    python3 "$RUN/slowread.py" "$RUN/started" "${STATUS_PAUSE:-0.05}" > "$RUN/read.txt" 2>&1 &
    rp=$!
    while [ ! -s "$RUN/started" ] && kill -0 $rp 2>/dev/null; do sleep 0.05; done
    ip netns exec c1 "${FILL_CMD[@]}" tcp $VIP 80 "$have" "$have" 400 2>&1
    echo "filled: Conns $(conns), buckets $(buckets), reader still running: $(kill -0 $rp 2>/dev/null && echo yes || echo no)"
    wait $rp
    echo "reader: $(cat "$RUN/read.txt")"
    echo "after: Conns $(conns), buckets $(buckets), services count $(fill_count)"
  } > "$RES/resize-$k.txt"
  got=$(sed -n 's/^reader: lines [0-9]* entries \([0-9]*\).*/\1/p' "$RES/resize-$k.txt")
  # no entry expires during the read (timeouts 3000 s): a whole read has at least the entries
  # there before it began
  if [ -n "$got" ] && [ "$got" -lt "$have" ]; then
    echo "verdict: ENDED EARLY ($got of at least $have entries)" >> "$RES/resize-$k.txt"; truncated=$((truncated + 1))
  else
    echo "verdict: whole (${got:-?} entries, at least $have were there)" >> "$RES/resize-$k.txt"
  fi
  log "$(tr '\n' ' ' < "$RES/resize-$k.txt")"
  [ "$(fill_count)" -gt 100000 ] && break
done
snap final
{
  echo "kernel $(uname -r)"
  for f in "$RES"/status-*.txt; do echo "== ${f##*/}"; cat "${f%/*}/ip_vs-head-$(basename "$f" .txt | sed 's/^status-//').txt"; cat "$f"; done
  echo "== nobody"; cat "$RES/nobody.txt"
  for f in "$RES"/resize-*.txt; do echo "== ${f##*/}"; cat "$f"; done
  echo "reads that ended early: $truncated"
} > "$RES/summary.txt"
log "done: $truncated read(s) ended early"
