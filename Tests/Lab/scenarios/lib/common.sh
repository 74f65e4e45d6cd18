# Sourced by the lab scenarios (inside the VM): the helpers every scenario had a copy of.
#
# Set before sourcing:
#   LAB_NAME      the scenario's name, for messages ("director", "findings", ...)
#   RUN           a scratch directory (ready files of servers and clients)
#   LAB_LOGDIR    where client-NAME.log goes (the scenario's result folder)
# Gives: T0, since T, log MSG, waitfile FILE PID SECONDS, wait_ready FILE SECONDS LOG,
# client NAME NS JOBARGS... (CLIENT_PID, and LAB_PIDS collects every client's pid).
T0=$EPOCHREALTIME
since() { awk "BEGIN{printf \"%.1f\", $EPOCHREALTIME - $1}"; }   # seconds since T (bash: no fork for the clock)
log() { printf '[%6ss] %s\n' "$(since "$T0")" "$*"; }

waitfile() {   # waitfile FILE PID SECONDS: until FILE is non-empty, while PID lives
  local f=$1 pid=$2 n=$(( $3 * 10 ))
  while [ ! -s "$f" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then echo "$LAB_NAME: process for $f died" >&2; return 1; fi
    n=$((n - 1)); [ $n -gt 0 ] || { echo "$LAB_NAME: timeout waiting for $f" >&2; return 1; }
    sleep 0.1
  done
}

wait_ready() {  # wait_ready FILE SECONDS LOG: a server's ready file; LOG is shown when it never comes
  local n=$(( $2 * 10 ))
  while [ ! -s "$1" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
  [ -s "$1" ] && return 0
  echo "$LAB_NAME: $1 did not appear within $2 s" >&2
  cat "$3" >&2 2>/dev/null
  return 1
}

LAB_PIDS=()
CLIENT_PID=
client() {  # client NAME NS JOBARGS...: run one client plan (lib/client.py) in namespace NS and
            # wait (CLIENT_TIMEOUT s, default 120) until it signals ready: its sockets are held
            # (or, for plans that end, it is done)
  local name=$1 ns=$2; shift 2
  log "client $name"
  rm -f "$RUN/$name.ready"
  ip netns exec "$ns" python3 "$LIB/client.py" "$@" --ready "$RUN/$name.ready" > "$LAB_LOGDIR/client-$name.log" 2>&1 &
  CLIENT_PID=$!
  LAB_PIDS+=("$CLIENT_PID")
  if ! waitfile "$RUN/$name.ready" "$CLIENT_PID" "${CLIENT_TIMEOUT:-120}"; then cat "$LAB_LOGDIR/client-$name.log" >&2; return 1; fi
}
