#!/usr/bin/env bash
# RFC 2545 §3 against BIRD 2 (Debian's bird2): on an IPv6 session with a neighbor on a directly
# connected subnet, focld announces its IPv6 prefix with the global next hop and the link-local
# address of its interface (a 32-byte MP_REACH_NLRI next hop); BIRD shows both.
# Two network namespaces this script creates and removes, joined by a veth pair: focld in A
# (2001:db8:1::1/64), BIRD in B (2001:db8:1::2/64). No other address is used. Needs root.
# Exits non-zero on failure.
set -uo pipefail
# shellcheck source=scripts/interop/lib.sh
. "$(dirname "$0")/lib.sh"
interop_setup bird birdc ip

[ "$(id -u)" -eq 0 ] || { echo "run_bird_link_local: needs root (network namespaces)"; exit 1; }
nsa=focl-ll-a-$$
nsb=focl-ll-b-$$
focld_pid=""
bird_pid=""
cleanup() {
    [ -n "$focld_pid" ] && kill "$focld_pid" 2>/dev/null
    [ -n "$bird_pid" ] && kill "$bird_pid" 2>/dev/null
    ip netns del "$nsa" 2>/dev/null
    ip netns del "$nsb" 2>/dev/null
    interop_cleanup
}
trap cleanup EXIT

ip netns add "$nsa"
ip netns add "$nsb"
ip link add vll-a netns "$nsa" type veth peer name vll-b netns "$nsb"
for ns in "$nsa" "$nsb"; do
    # No duplicate address detection: addresses are usable at once, link-local ones too.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    ip -n "$ns" link set lo up
done
ip -n "$nsa" addr add 2001:db8:1::1/64 dev vll-a nodad
ip -n "$nsb" addr add 2001:db8:1::2/64 dev vll-b nodad
ip -n "$nsa" link set vll-a up
ip -n "$nsb" link set vll-b up
ll_of() { ip -n "$1" -6 addr show dev "$2" scope link | awk '/inet6/ {print $2}' | cut -d/ -f1; }
has_ll() { [ -n "$(ll_of "$nsa" vll-a)" ]; }
if ! wait_until 10 has_ll; then
    fail "no link-local address on focld's interface"
    interop_summary "bird link-local next hop"
    exit 1
fi
ll=$(ll_of "$nsa" vll-a)

cat >"$tmp/focl.toml" <<EOT
[global]
asn = 65001
router_id = "192.0.2.1"
listen_addr = "[2001:db8:1::1]:179"
control_socket = "$tmp/focld.sock"
log_level = "debug"

[[peers]]
address = "2001:db8:1::2"
remote_as = 65002
connect_retry_secs = 2

[[prefixes]]
network = "2001:db8:1000::/48"
EOT
cat >"$tmp/bird.conf" <<EOT
router id 192.0.2.2;
protocol device {}
protocol bgp focld {
    local 2001:db8:1::2 as 65002;
    neighbor 2001:db8:1::1 as 65001;
    connect retry time 2;
    ipv6 { import all; export none; };
}
EOT
ip netns exec "$nsa" "$FOCLD" --config "$tmp/focl.toml" 2>>"$tmp/focld.log" &
focld_pid=$!
ip netns exec "$nsb" bird -f -c "$tmp/bird.conf" -s "$tmp/bird.ctl" -P "$tmp/bird.pid" >>"$tmp/bird.log" 2>&1 &
bird_pid=$!

established() { [ "$("$FOCL" -s "$tmp/focld.sock" -j peer show 2001:db8:1::2 | jget 'd["state"]')" = Established ]; }
if wait_until 60 established; then
    ok "focld and BIRD are Established over 2001:db8:1::/64"
else
    fail "no session; focld log tail:"
    tail -5 "$tmp/focld.log"
fi
route() { birdc -s "$tmp/bird.ctl" show route all 2001:db8:1000::/48 2>/dev/null; }
have_route() { route | grep -q 'BGP.next_hop'; }
if wait_until 20 have_route; then
    nh=$(route | awk '/BGP.next_hop/ {$1=""; print}' | sed 's/^ *//')
    if [ "$nh" = "2001:db8:1::1 $ll" ]; then
        ok "BIRD holds 2001:db8:1000::/48 with next hops 2001:db8:1::1 and focld's link-local $ll"
    else
        fail "BIRD's next hop is '$nh', expected '2001:db8:1::1 $ll'"
    fi
else
    fail "BIRD has no route for 2001:db8:1000::/48: $(route | tr '\n' ' ')"
fi

kill -TERM "$focld_pid"
wait "$focld_pid"
focld_pid=""
interop_summary "bird link-local next hop"
