# Sourced by the lab scenarios that need a big connection table (status.sh, bigtable.sh).
# Needs RUN (scratch dir), LIB, log (lib/common.sh).
#
# filler_network VIP: the VIP on dummy lvs0; namespace c1 behind veth v-c1 (10.9.0.0/24) owns
# 172.16.0.0/16 as local addresses (lib/fill.py's spoofed sources; replies route back there);
# the real servers 192.168.1.2 and 192.168.2.2 are blackholed on the director (nothing answers,
# nothing resets an entry).
# fill_count: entries the services report (netlink, cheap: not a read of the table).
# fill PROTO PORT N: the filler until the services count at least N entries.
# The filler: lib/fill.c built here (cc, else clang; sendmmsg batches, several times the Python
# filler's rate under emulation), else lib/fill.py (FILLER=py forces it).
filler_network() {
  local vip=$1
  modprobe veth && modprobe dummy || return 1
  sysctl -qw net.ipv4.ip_forward=1 net.core.netdev_max_backlog=100000 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  printf '%s\n' "link add lvs0 type dummy" "link set lvs0 up" "addr add $vip/32 dev lvs0" \
    "netns add c1" "link add v-c1 type veth peer name eth0 netns c1" "link set v-c1 up" \
    "addr add 10.9.0.1/24 dev v-c1" "route add 172.16.0.0/16 via 10.9.0.2" \
    "route add blackhole 192.168.0.0/16" > "$RUN/ip-root.batch"
  ip -batch "$RUN/ip-root.batch" || return 1
  printf '%s\n' "link set lo up" "link set eth0 up" "addr add 10.9.0.2/24 dev eth0" \
    "route add default via 10.9.0.1" "route add local 172.16.0.0/16 dev lo" > "$RUN/ip-c1.batch"
  ip -n c1 -batch "$RUN/ip-c1.batch" || return 1
  ip netns exec c1 sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
  FILL_VIP=$vip
  FILL_CMD=(python3 "$LIB/fill.py")
  local cc
  if [ "${FILLER:-c}" != py ]; then
    for cc in cc gcc clang; do
      command -v "$cc" > /dev/null || continue
      if "$cc" -O2 -o "$RUN/fill" "$LIB/fill.c" 2> "$RUN/fill-build.log"; then FILL_CMD=("$RUN/fill"); break; fi
    done
  fi
  log "filler: ${FILL_CMD[*]}"
}

fill_count() {
  ipvsadm -Ln | awk '$1 == "->" && $2 ~ /:/ && $2 !~ /RemoteAddress/ { n += $5 + $6 } END { print n + 0 }'
}

fill() {  # fill PROTO PORT N [PORTS_PER_ADDR]: at least N entries (passes resend the whole set)
  local proto=$1 port=$2 want=$3 ppa=${4:-${PORTS_PER_ADDR:-400}} pass have
  for pass in 1 2 3 4; do
    have=$(fill_count)
    [ "$have" -ge "$want" ] && return 0
    if [ "$pass" = 1 ]; then   # only what is missing past the current count first
      ip netns exec c1 "${FILL_CMD[@]}" "$proto" "$FILL_VIP" "$port" "$have" $((want - have)) "$ppa" 2>&1 | sed 's/^/  /'
    else
      ip netns exec c1 "${FILL_CMD[@]}" "$proto" "$FILL_VIP" "$port" 0 "$want" "$ppa" 2>&1 | sed 's/^/  /'
    fi
    log "fill pass $pass: $(fill_count) entries (want $want)"
  done
  [ "$(fill_count)" -ge "$want" ]
}
