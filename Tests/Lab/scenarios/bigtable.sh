#!/bin/bash
# Lab scenario (runs as root inside the lab VM): a large live IPVS connection table, and what
# reading it costs: cat, ipvsadm -Lcn, ipvstop's whole poll, ipvstop's services-only poll,
# ipvsadm -Ln. Results in $OUT/bigtable.txt (table) and $OUT/bigtable.tsv (for scripts).
#
#   IPVSTOP=/path/to/ipvstop Tests/Lab/vm run Tests/Lab/scenarios/bigtable.sh OUTDIR [N...]
#   (or Tests/Lab/bigtable, which does that and prints ratios)
#
# How the table is filled (lib/filler.sh, lib/fill.c or lib/fill.py): a raw socket in namespace c1 sends from
# spoofed sources (172.16.0.0/16 x PORTS_PER_ADDR ports, routed back to c1) to the VIP:
# FILL_PROTO=tcp (default) a SYN then an ACK per source to 10.0.0.100:80, whose real servers are
# blackholed on the director (nothing answers or resets: each entry is ESTABLISHED for the tcp
# timeout, 3000 s here); FILL_PROTO=udp one datagram per source to :53 (udp timeout 3000 s).
# Sending the same set again creates nothing new, so passes repeat until the count reaches N.
# Each N is measured in RUNS (default 3) rounds of all the tools (fresh processes); the best
# wall time of each counts, with user+sys of that run. Then the live poll: a running `ipvstop
# exporter`'s own reads against `cat`, alternating, PAIRS (default 5) pairs, medians, and its
# resident memory per entry, whole and above its RSS with an empty table (live.tsv): right after
# the read (the analysis' working memory just given back) and after the cat (seconds later:
# what it holds between reads), and its peak (VmHWM). The harness looks for the end of a read
# every LIVE_POLL seconds (default 2: each look is a scrape and a few processes, which under
# emulation take the second vCPU from the exporter's parsing). The live exporter runs with
# --table-share LIVE_SHARE (default 33%: the next read starts twice a read's time after the
# last, so the cat, started up to LIVE_POLL s late, ends before it): a read costs the same
# whatever the share, and at the default 5% a 2M-entry table is read every ~20 read-times,
# too rarely for pairs. TAB_BITS (default: the module's, 12) loads ip_vs with that
# conn_tab_bits: the most buckets the table may have (a director with millions of entries
# raises it; with 4096 buckets each packet of the filler walks a chain of hundreds).
# KEYS_SECONDS (default 0: skipped) runs the dashboard on a pty and times its answer to keys
# during its table reads (lib/keys.py). SHARE_PCT (default 0: skipped) runs the exporter
# at --table-share SHARE_PCT for one whole pacing cycle (from the end of a read to the end of
# the next) and reports the CPU share it took, read from /proc/PID/stat (share.tsv).
# STEPS (default "measure live"; also "keys", "share") picks the parts to run.
# strace (if installed) counts the read() calls.
# Environment: RUNS, PAIRS, FILL_PROTO, LIVE_TIMEOUT (s, default 1800), PORTS_PER_ADDR (default
# 400), STRACE=first (default: count read() calls at the first N only; the count is bytes /
# 4 KiB whatever N), all, or 0.
set -uo pipefail

OUT=${OUT:?OUT not set (run this through Tests/Lab/vm)}
NS_LIST=("$@")
[ ${#NS_LIST[@]} -gt 0 ] || NS_LIST=(20000 40000)
RUNS=${RUNS:-3}
PPA=${PORTS_PER_ADDR:-400}
IPVSTOP=${IPVSTOP:-}
RUN=/run/bigtable
mkdir -p "$RUN"
LIB=$(cd "$(dirname "$0")" && pwd)/lib
LAB_NAME=bigtable LAB_LOGDIR=$OUT
. "$LIB/common.sh"
. "$LIB/filler.sh"
die() { log "FAILED: $*"; echo "bigtable: $*" >&2; exit 1; }
FILL_PROTO=${FILL_PROTO:-tcp}
PAIRS=${PAIRS:-5}
LIVE_SHARE=${LIVE_SHARE:-33}
LIVE_POLL=${LIVE_POLL:-2}
TAB_BITS=${TAB_BITS:-}
KEYS_SECONDS=${KEYS_SECONDS:-0}
SHARE_PCT=${SHARE_PCT:-0}
STEPS=" ${STEPS:-measure live} "
[ "$KEYS_SECONDS" != 0 ] && STEPS+="keys "
[ "$SHARE_PCT" != 0 ] && STEPS+="share "
step() { [[ $STEPS == *" $1 "* ]]; }

if [ -z "$IPVSTOP" ] || [ ! -x "$IPVSTOP" ]; then
  die "IPVSTOP=${IPVSTOP:-unset} is not an executable"
fi
VIP=10.0.0.100

# ---- network and IPVS ---------------------------------------------------------------------
log "kernel $(uname -r), $(nproc) CPUs, N: ${NS_LIST[*]}, runs: $RUNS, filler: $FILL_PROTO"
modprobe ip_vs ${TAB_BITS:+conn_tab_bits=$TAB_BITS} || die "modprobe ip_vs"
modprobe ip_vs_rr || die "modprobe ip_vs_rr"
log "ip_vs conn_tab_bits $(cat /sys/module/ip_vs/parameters/conn_tab_bits 2>/dev/null || echo unknown)"
filler_network $VIP || die "network setup"
ipvsadm --set 3000 120 3000 || die "ipvsadm --set"
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
FILL_PORT=80
[ "$FILL_PROTO" = udp ] && FILL_PORT=53

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

# The live poll: a running `ipvstop exporter` reads the table as often as its pacer allows and
# reports each read's wall and CPU time (ipvstop_connection_table_read_duration_seconds,
# _read_cpu_seconds, _read_timestamp_seconds): PAIRS times, the next read of the running
# process, then one `cat /proc/net/ip_vs_conn` at once, alternating; medians of the pairs.
# Its resident memory (VmRSS) once the table is held, per entry. Rows in live.tsv.
LIVE=$OUT/live.tsv
printf 'n\tentries\tpair\tlive_wall\tlive_cpu\tcat_wall\trss_kib\trss_between_kib\thwm_kib\n' > "$LIVE"
metric() { awk -v m="$1" '$1 == m { print $2; exit }' "$RUN/metrics"; }
scrape() { curl -s --max-time 60 -o "$RUN/metrics" http://127.0.0.1:18610/metrics; }
BASE_RSS=
baseline_rss() {  # the exporter's VmRSS at its first read of the empty table: what is not per entry
  local xp ts
  "$IPVSTOP" exporter --listen 127.0.0.1:18610 --interval 1 > "$OUT/exporter-empty.log" 2>&1 &
  xp=$!
  for _ in $(seq 1 240); do
    sleep 0.5
    kill -0 $xp 2>/dev/null || break
    scrape || continue
    ts=$(metric ipvstop_connection_table_read_timestamp_seconds)
    if [ -n "$ts" ] && [ "$ts" != 0 ]; then BASE_RSS=$(awk '/^VmRSS:/ { print $2 }' /proc/$xp/status); break; fi
  done
  kill $xp 2>/dev/null; wait $xp 2>/dev/null
  log "exporter's RSS with an empty table: ${BASE_RSS:-not measured} KiB"
  echo "${BASE_RSS:-}" > "$OUT/exporter-empty-rss-kib.txt"
}
live() {  # live N ENTRIES
  local n=$1 entries=$2 xp last=0 ts k w c cw rss rss2 hwm deadline
  "$IPVSTOP" exporter --listen 127.0.0.1:18610 --interval 1 --table-share "$LIVE_SHARE" > "$OUT/exporter-$n.log" 2>&1 &
  xp=$!
  deadline=$((SECONDS + ${LIVE_TIMEOUT:-1800}))
  for ((k = 0; k <= PAIRS; k++)); do   # read 0 is the first (start-up) read: not counted
    while :; do
      kill -0 $xp 2>/dev/null || { log "  live: the exporter died: $(tail -n 3 "$OUT/exporter-$n.log")"; return 0; }
      [ $SECONDS -lt $deadline ] || { log "  live: no new read within ${LIVE_TIMEOUT:-1800} s"; kill $xp; wait $xp 2>/dev/null; return 0; }
      sleep "$LIVE_POLL"
      scrape || continue
      ts=$(metric ipvstop_connection_table_read_timestamp_seconds)
      [ -n "$ts" ] && [ "$ts" != 0 ] && [ "$ts" != "$last" ] && break
    done
    last=$ts
    [ $k = 0 ] && continue
    w=$(metric ipvstop_connection_table_read_duration_seconds)
    c=$(metric ipvstop_connection_table_read_cpu_seconds)
    rss=$(awk '/^VmRSS:/ { print $2 }' /proc/$xp/status)
    /usr/bin/time -f '%e' -o "$RUN/time" cat /proc/net/ip_vs_conn > /dev/null
    cw=$(tail -n 1 "$RUN/time")
    rss2=$(awk '/^VmRSS:/ { print $2 }' /proc/$xp/status)
    hwm=$(awk '/^VmHWM:/ { print $2 }' /proc/$xp/status)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$entries" "$k" "$w" "$c" "$cw" "$rss" "$rss2" "$hwm" >> "$LIVE"
    log "  live pair $k: exporter's read ${w}s (cpu ${c}s), cat ${cw}s, RSS ${rss} KiB after the read, ${rss2} KiB after the cat, peak ${hwm} KiB"
  done
  scrape && grep -E '^ipvstop_connection_table_(entries|skipped_lines|age_seconds) ' "$RUN/metrics" > "$OUT/exporter-$n.table.txt"
  kill $xp; wait $xp 2>/dev/null
}

# The dashboard's answer to keys while it reads the table (lib/keys.py): its own poll, at
# --table-share LIVE_SHARE so that reads come often enough to press keys during them.
keys() {  # keys N ENTRIES
  local n=$1
  log "N=$n: the dashboard's key response for ${KEYS_SECONDS} s"
  python3 "$LIB/keys.py" "$IPVSTOP" "$OUT/keys-$n" "$KEYS_SECONDS" --table-share "$LIVE_SHARE" > "$OUT/keys-$n.log" 2>&1 \
    || log "  keys: the harness failed: $(tail -n 3 "$OUT/keys-$n.log" | tr '\n' ' ')"
  [ -s "$OUT/keys-$n/keys.txt" ] && { sed "s/^/  N=$n /" "$OUT/keys-$n/keys.txt" | while read -r l; do log "$l"; done; }
  return 0
}

# The pacer's promise: the exporter at --table-share SHARE_PCT, its CPU time (utime + stime of
# the whole process: table reads, services polls every second, analysis) over one pacing cycle,
# from the end of one table read to the end of the next, against the cycle's wall time.
SHARE=$OUT/share.tsv
printf 'n\tentries\tshare_pct\tcycle_s\tcpu_s\tcpu_share_pct\tread_wall_s\tread_cpu_s\tread_share_pct\n' > "$SHARE"
proc_cpu() { awk -v t="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat"; }
share() {  # share N ENTRIES
  local n=$1 entries=$2 xp ts last=0 k=0 t0 c0 t1 c1 w c deadline
  log "N=$n: the pacer's share at --table-share $SHARE_PCT, one cycle"
  "$IPVSTOP" exporter --listen 127.0.0.1:18610 --interval 1 --table-share "$SHARE_PCT" > "$OUT/exporter-share-$n.log" 2>&1 &
  xp=$!
  deadline=$((SECONDS + ${LIVE_TIMEOUT:-1800}))
  while [ $k -lt 2 ]; do   # the end of the first read, then of the next
    kill -0 $xp 2>/dev/null || { log "  share: the exporter died: $(tail -n 3 "$OUT/exporter-share-$n.log")"; return 0; }
    [ $SECONDS -lt $deadline ] || { log "  share: no second read within ${LIVE_TIMEOUT:-1800} s"; kill $xp; wait $xp 2>/dev/null; return 0; }
    sleep 2
    scrape || continue
    ts=$(metric ipvstop_connection_table_read_timestamp_seconds)
    [ -n "$ts" ] && [ "$ts" != 0 ] && [ "$ts" != "$last" ] || continue
    last=$ts k=$((k + 1))
    if [ $k = 1 ]; then
      t0=$EPOCHREALTIME c0=$(proc_cpu $xp)
      log "  share: first read done ($(metric ipvstop_connection_table_read_duration_seconds) s), the cycle starts"
    else
      t1=$EPOCHREALTIME c1=$(proc_cpu $xp)
    fi
  done
  w=$(metric ipvstop_connection_table_read_duration_seconds)
  c=$(metric ipvstop_connection_table_read_cpu_seconds)
  python3 - "$n" "$entries" "$SHARE_PCT" "$t0" "$c0" "$t1" "$c1" "$w" "$c" >> "$SHARE" <<'PY'
import sys
n, e, pct, t0, c0, t1, c1, w, c = sys.argv[1:]
cycle = float(t1) - float(t0); cpu = float(c1) - float(c0)
print(f"{n}\t{e}\t{pct}\t{cycle:.1f}\t{cpu:.2f}\t{100 * cpu / cycle:.2f}\t{float(w):.2f}\t{float(c):.2f}\t{100 * float(c) / cycle:.2f}")
PY
  log "  share: $(tail -n 1 "$SHARE")"
  kill $xp; wait $xp 2>/dev/null
}

: > "$OUT/ipvstop-costs.txt"
step live && baseline_rss
for n in "${NS_LIST[@]}"; do
  log "N=$n: filling"
  t=$EPOCHREALTIME
  fill "$FILL_PROTO" "$FILL_PORT" "$n" "$PPA" || log "N=$n: the filler fell short: $(fill_count) entries"
  log "N=$n: filled in $(since "$t") s"
  t=$(date +%s.%N)
  lines=$(wc -l < /proc/net/ip_vs_conn)
  entries=$((lines - 1))
  log "N=$n: $entries entries in /proc/net/ip_vs_conn (wc -l took $(echo "$(date +%s.%N) - $t" | bc) s)"
  if [ "$entries" -lt $((n * 99 / 100)) ]; then
    log "N=$n: only $entries entries (want $n); measuring anyway"
  fi
  if step measure; then measure "$n" "$entries"; costs "$n"; fi
  step live && live "$n" "$entries"
  step keys && keys "$n" "$entries"
  step share && share "$n" "$entries"
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
  if [ "$(wc -l < "$LIVE")" -gt 1 ]; then
    echo; echo "live poll (a running ipvstop exporter's own reads) vs cat, alternating, medians of the pairs:"
    awk -F'\t' 'NR > 1 { n = $1; e[n] = $2; k[n]++; lw[n, k[n]] = $4; lc[n, k[n]] = $5; cw[n, k[n]] = $6; rss[n] = $7; between[n] = $8; hwm[n] = $9
                         if (!(n in seen)) { seen[n] = 1; order[++m] = n } }
      function med(a, n, cnt,   i, j, t, v) { for (i = 1; i <= cnt; i++) v[i] = a[n, i]
        for (i = 1; i <= cnt; i++) for (j = i + 1; j <= cnt; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
        return cnt % 2 ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2 }
      END { for (i = 1; i <= m; i++) { n = order[i]; a = med(lw, n, k[n]); b = med(cw, n, k[n])
              printf "  N=%s (%s entries), %d pairs: live read %.2f s (cpu %.2f s), cat %.2f s, live/cat %.2f; RSS %d KiB = %.0f B/entry",
                n, e[n], k[n], a, med(lc, n, k[n]), b, (b > 0 ? a / b : 0), rss[n], (e[n] > 0 ? rss[n] * 1024 / e[n] : 0)
              if (base != "" && e[n] > 0) printf ", %.0f B/entry above the empty table'"'"'s %d KiB", (rss[n] - base) * 1024 / e[n], base
              if (between[n] != "" && e[n] > 0) printf "; between reads %d KiB = %.0f B/entry; peak %d KiB = %.0f B/entry", between[n], between[n] * 1024 / e[n], hwm[n], hwm[n] * 1024 / e[n]
              printf "\n" } }' base="${BASE_RSS:-}" "$LIVE"
  fi
  for f in "$OUT"/keys-*/keys.txt; do [ -s "$f" ] && { echo; cat "$f"; }; done
  if [ "$(wc -l < "$SHARE")" -gt 1 ]; then
    echo; echo "the pacer's share (the exporter's whole CPU over one cycle, end of a read to the end of the next):"
    awk -F'\t' 'NR > 1 { printf "  N=%s (%s entries) at --table-share %s%%: cycle %s s, CPU %s s = %s%% of a core; its table read %s s wall, %s s CPU = %s%%\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$SHARE"
  fi
  [ -s "$OUT/slabinfo.txt" ] && { echo; echo "slabinfo:"; sed 's/^/  /' "$OUT/slabinfo.txt"; }
} > "$OUT/bigtable.txt"
cat "$OUT/bigtable.txt"
log "done"
