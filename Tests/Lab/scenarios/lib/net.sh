# Sourced by the lab scenarios: the director's network, one `ip -batch` per namespace
# (process start-up is slow under software emulation).
#
# Set before calling lab_network:
#   RUN             a scratch directory for the batch files
#   NSES            the namespaces (c* clients, r* real servers), each behind a veth v-NS
#   N4[ns]          its IPv4 /24: the director is .1, the namespace .2 (default route via .1)
#   N6[ns]          its IPv6 /64 (optional: a namespace without one gets no IPv6)
#   LVS_ADDRS       the VIPs, with their prefix, for the dummy lvs0 ("10.0.0.100/32 fd00::1/128")
#   SYNC0           unset: no sync0; "up": a multicast dummy sync0; an address: sync0 with it
#   lab_ns_extra NS (optional function) prints more batch lines for namespace NS
lab_network() {
  local ns a
  # A scenario without IPv6 need not declare N6 (an undeclared array's subscript would be
  # evaluated as a variable name, which `set -u` refuses).
  if ! declare -p N6 > /dev/null 2>&1; then declare -gA N6=(); fi
  {
    echo "link add lvs0 type dummy"
    echo "link set lvs0 up"
    for a in $LVS_ADDRS; do
      case $a in
        *:*) echo "addr add $a dev lvs0 nodad" ;;
        *) echo "addr add $a dev lvs0" ;;
      esac
    done
    if [ -n "${SYNC0:-}" ]; then
      echo "link add sync0 type dummy"
      echo "link set sync0 multicast on up"
      if [ "$SYNC0" != up ]; then echo "addr add $SYNC0 dev sync0"; fi
    fi
    for ns in $NSES; do
      echo "netns add $ns"
      echo "link add v-$ns type veth peer name eth0 netns $ns"
      echo "link set v-$ns up"
      echo "addr add ${N4[$ns]}.1/24 dev v-$ns"
      if [ -n "${N6[$ns]:-}" ]; then echo "addr add ${N6[$ns]}::1/64 dev v-$ns nodad"; fi
    done
  } > "$RUN/ip-root.batch"
  ip -batch "$RUN/ip-root.batch"
  for ns in $NSES; do
    {
      echo "link set lo up"
      echo "link set eth0 up"
      echo "addr add ${N4[$ns]}.2/24 dev eth0"
      echo "route add default via ${N4[$ns]}.1"
      if [ -n "${N6[$ns]:-}" ]; then
        echo "addr add ${N6[$ns]}::2/64 dev eth0 nodad"
        echo "route add ::/0 via ${N6[$ns]}::1"
      fi
      if declare -F lab_ns_extra > /dev/null; then lab_ns_extra "$ns"; fi
    } > "$RUN/ip-$ns.batch"
    ip -n "$ns" -batch "$RUN/ip-$ns.batch"
  done
}
