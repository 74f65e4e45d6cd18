#!/bin/bash
# Lab scenario (runs as root inside the lab VM): the director scenario (director.sh), then
# `ipvstop capture` of that live director as root and as nobody, each between two live
# snapshots of the same user, and each capture read back inside the VM. The host side
# (Tests/Lab/capture_compare.py) reads the captures back outside and compares them field by
# field with the reading inside and with the live snapshots around them.
#
#   IPVSTOP=/path/to/ipvstop Tests/Lab/vm run Tests/Lab/scenarios/capture.sh OUTDIR
#
# Writes into OUTDIR/capture (beside director.sh's files):
#   ipvstop-capture-root/            the capture taken as root (netlink answers kept)
#   ipvstop-capture-nobody/          the capture taken as nobody (no netlink)
#   capture-USER-live-before.json    ipvstop snapshot --json --top 0, live, just before
#   capture-USER-live-after.json     the same just after
#   capture-USER-inside.json         the capture read back inside the VM
#   capture-USER.stdout/.stderr/.exitcode, capture-timing.txt
set -euo pipefail
OUT=${1:-${OUT:-}}
[ -n "$OUT" ] || { echo "usage: $0 OUTDIR (or set OUT)" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
[ -n "${IPVSTOP:-}" ] && [ -x "$IPVSTOP" ] || { echo "capture: IPVSTOP=${IPVSTOP:-} is not an executable" >&2; exit 2; }

"$HERE/director.sh" "$OUT"
CAP=$OUT/capture
: > "$CAP/capture-timing.txt"

step() {  # step USER AS...: live before, capture, live after, read back inside
  local user=$1; shift
  local dir=$CAP/ipvstop-capture-$user t rc
  # nobody must be able to write its capture: a scratch folder it owns, moved into /out after
  # (the 9p export is root's).
  local scratch; scratch=$(mktemp -d /tmp/capture-$user.XXXXXX)
  chmod 0777 "$scratch"
  "$@" "$IPVSTOP" snapshot --json --top 0 > "$CAP/capture-$user-live-before.json"
  t=$(date +%s.%N)
  rc=0
  "$@" "$IPVSTOP" capture "$scratch/c" > "$CAP/capture-$user.stdout" 2> "$CAP/capture-$user.stderr" || rc=$?
  echo "$rc" > "$CAP/capture-$user.exitcode"
  echo "capture as $user: exit $rc, $(awk "BEGIN{printf \"%.2f\", $(date +%s.%N) - $t}") s" >> "$CAP/capture-timing.txt"
  "$@" "$IPVSTOP" snapshot --json --top 0 > "$CAP/capture-$user-live-after.json"
  [ "$rc" = 0 ] || return 0
  "$@" "$IPVSTOP" snapshot --json --top 0 --proc-root "$scratch/c" > "$CAP/capture-$user-inside.json" \
    2> "$CAP/capture-$user-inside.stderr" || true
  rm -rf "$dir"; cp -r "$scratch/c" "$dir"
  du -sk "$dir" | awk -v u="$user" '{print "capture as " u ": " $1 " KiB"}' >> "$CAP/capture-timing.txt"
}
step root env
step nobody setpriv --reuid=65534 --regid=65534 --clear-groups
echo "capture: done"
