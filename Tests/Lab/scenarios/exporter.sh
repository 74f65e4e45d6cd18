#!/bin/bash
# Lab scenario (runs as root inside the lab VM): `ipvstop exporter` on the real kernel.
#
#   IPVSTOP=/path/to/ipvstop Tests/Lab/vm run Tests/Lab/scenarios/exporter.sh OUTDIR
#   (or Tests/Lab/exporter [IPVSTOP], which does that under the lab lock and judges it)
#
# director.sh builds the director (services of every kind, real traffic) and leaves its
# clients running; then `ipvstop exporter` serves it on 127.0.0.1:19920 and one scrape is
# taken between two captures of ipvsadm (-Ln, --persistent-conn, --stats --exact), with the
# times of each, into $OUT/exporter. Tests/Lab/exporter_compare.py judges it.
set -euo pipefail

OUT=${1:-${OUT:-}}
[ -n "$OUT" ] || { echo "usage: $0 OUTDIR (or set OUT)" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
CAP=$OUT/exporter
mkdir -p "$CAP"
[ -n "${IPVSTOP:-}" ] && [ -x "$IPVSTOP" ] || { echo "exporter: IPVSTOP=${IPVSTOP:-} is not an executable file" >&2; exit 2; }
for t in ipvsadm curl python3; do
  command -v "$t" > /dev/null || { echo "exporter: $t is not installed" >&2; exit 2; }
done
bin=$IPVSTOP
# the director, without director.sh's own ipvstop runs
env -u IPVSTOP "$HERE/director.sh" "$OUT" > "$CAP/director.log" 2>&1

"$bin" exporter --listen 127.0.0.1:19920 --interval 1 --top-clients 5 > "$CAP/exporter.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
# until it serves a connection table (the first read waits for the pacer)
for _ in $(seq 1 120); do
  if curl -sf http://127.0.0.1:19920/metrics 2>/dev/null | grep -q '^ipvstop_connection_table_entries '; then break; fi
  sleep 0.5
done
capture() {  # capture DIR
  mkdir -p "$1"
  date +%s.%N > "$1/at"
  ipvsadm -Ln > "$1/Ln.txt"
  ipvsadm -Ln --persistent-conn > "$1/Ln-persistent-conn.txt"
  ipvsadm -Ln --stats --exact > "$1/Ln-stats-exact.txt"
  date +%s.%N > "$1/done"
}
capture "$CAP/before"
sleep 2   # a poll after the capture began: the scrape serves a snapshot taken since
date +%s.%N > "$CAP/scrape-at"
curl -sf -o "$CAP/metrics.prom" http://127.0.0.1:19920/metrics
curl -sf -o "$CAP/metrics.om" -H 'Accept: application/openmetrics-text; version=1.0.0' http://127.0.0.1:19920/metrics
capture "$CAP/after"
if command -v promtool > /dev/null; then promtool check metrics < "$CAP/metrics.prom" > "$CAP/promtool.txt" 2>&1 || true; fi
"$bin" check --proc-root "$OUT/capture/proc" > "$CAP/check.txt" 2>&1 || echo "exit $?" >> "$CAP/check.txt"
uname -r > "$CAP/uname-r.txt"
echo "exporter: scraped $(grep -vc '^#' "$CAP/metrics.prom") samples"
