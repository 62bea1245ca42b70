#!/usr/bin/env bash
# A [[sources]] MRT source (issue 20) feeding GoBGP (Debian's gobgpd) a real table: AS30844's
# RIB in tests/data/mrt/routeviews.route-views.jinx.ribs.1401487200.bz2 (TABLE_DUMP_V2,
# RouteViews jinx, 2014-05-31), announced by focld over eBGP.
#  - GoBGP's RIB count equals the number of that peer's prefixes in the file, counted apart
#    with bgpdump -m;
#  - a few routes spot-checked in GoBGP: AS_PATH = our AS + the dumped path, NEXT_HOP = focld's
#    session address, MED and communities as dumped;
#  - focl source status says loaded, with the peer's AS and the routes sent.
# GoBGP takes no loopback next hop (127/8), so focld and GoBGP run in two network namespaces
# joined by a veth pair (198.51.100.1 and .2/24) that exist only while the script runs.
# About 30 s in all: focld reads the dump in 3 to 10 s (debug build) and hands the table
# over in 1 to 3 s; GoBGP holds it all some 15 s later. Linux, as root. Exits non-zero on
# any failure.
set -uo pipefail
# shellcheck source=scripts/interop/lib.sh
. "$(dirname "$0")/lib.sh"

if [ "$(uname -s)" != Linux ]; then
    echo "mrt source: network namespaces need Linux; skipped on $(uname -s)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "mrt source: needs root (network namespaces); skipped"
    exit 0
fi
interop_setup gobgpd gobgp bgpdump ip
started=$SECONDS

DUMP=$repo/tests/data/mrt/routeviews.route-views.jinx.ribs.1401487200.bz2
RIB_PEER=196.223.14.55 # AS30844 in the dump's PEER_INDEX_TABLE
F4=198.51.100.1
G4=198.51.100.2
NF="focl-src-f-$$"
NG="focl-src-g-$$"
gobgpd_pid=""
focld_pid=""
cleanup() {
    set +e
    [ -n "$focld_pid" ] && kill "$focld_pid" 2>/dev/null
    [ -n "$gobgpd_pid" ] && kill "$gobgpd_pid" 2>/dev/null
    interop_cleanup
    ip netns del "$NF" 2>/dev/null
    ip netns del "$NG" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 143' TERM INT
elapsed() { echo "$((SECONDS - started)) s"; }

for ns in "$NF" "$NG"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
ip link add f0 netns "$NF" type veth peer name g0 netns "$NG"
ip -n "$NF" addr add "$F4/24" dev f0
ip -n "$NG" addr add "$G4/24" dev g0
ip -n "$NF" link set f0 up
ip -n "$NG" link set g0 up

# The dump's prefixes of the RIB peer, counted without focld (bgpdump runs meanwhile).
bgpdump -m "$DUMP" 2>/dev/null | awk -F'|' -v p="$RIB_PEER" '$4 == p' >"$tmp/peer.txt" &
bgpdump_pid=$!
pids+=("$bgpdump_pid")

api_port=$(free_port 127.0.0.1)
G=(ip netns exec "$NG" gobgp -u 127.0.0.1 -p "$api_port")
cat >"$tmp/gobgpd.toml" <<EOT
[global.config]
  as = 4200000002
  router-id = "192.0.2.2"
  local-address-list = ["$G4"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "$F4"
    peer-as = 4200000001
  [neighbors.transport.config]
    passive-mode = true
    local-address = "$G4"
  [neighbors.timers.config]
    hold-time = 90
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
EOT
ip netns exec "$NG" gobgpd -f "$tmp/gobgpd.toml" -t toml --api-hosts "127.0.0.1:$api_port" --pprof-disable \
    >"$tmp/gobgpd.log" 2>&1 &
gobgpd_pid=$!
pids+=("$gobgpd_pid")
wait_until 20 "${G[@]}" global || fail "gobgpd did not start"

cat >"$tmp/focl.toml" <<EOT
[global]
asn = 4200000001
router_id = "192.0.2.1"
listen = false
control_socket = "$tmp/focld.sock"
log_level = "info"

[[peers]]
name = "gobgp"
address = "$G4"
remote_as = 4200000002
local_address = "$F4"
hold_time_secs = 90
connect_retry_secs = 1

[[sources]]
name = "jinx"
type = "mrt"
file = "$DUMP"
peer = "$RIB_PEER"
to = ["gobgp"]
EOT
ip netns exec "$NF" "$FOCLD" --config "$tmp/focl.toml" 2>"$tmp/focld.log" &
focld_pid=$!
pids+=("$focld_pid")
F=(-s "$tmp/focld.sock")

wait "$bgpdump_pid"
want=$(cut -d'|' -f6 "$tmp/peer.txt" | sort -u | wc -l)
echo "the dump has $want prefixes of $RIB_PEER ($(elapsed))"
[ "$want" -gt 400000 ] || fail "bgpdump found only $want prefixes of $RIB_PEER"

source_state() { "$FOCL" "${F[@]}" -j source status jinx | jget 'd[0]["state"] + " " + d[0]["peers"][0]["state"]'; }
source_sent() { [ "$(source_state)" = "loaded sent" ]; }
if wait_until 60 source_sent; then
    ok "focld read the dump and sent the table ($(elapsed))"
else
    fail "source status: $(source_state 2>&1); log: $(tail -5 "$tmp/focld.log")"
fi
st=$("$FOCL" "${F[@]}" -j source status jinx)
if echo "$st" | jget 'd[0]["routes"]["ipv4_unicast"] + d[0]["routes"]["ipv6_unicast"] == '"$want"' and d[0]["peer_as"] == 30844 and d[0]["peers"][0]["sent"] == '"$want" | grep -q True; then
    ok "focl source status: $want routes of AS30844 loaded and sent"
else
    fail "focl source status: $st"
fi

gobgp_count() { "${G[@]}" global rib summary -a ipv4 | sed -n 's/.*Destination: \([0-9]*\).*/\1/p'; }
gobgp_has_all() { [ "$(gobgp_count)" = "$want" ]; }
if wait_until 180 gobgp_has_all; then
    ok "GoBGP's RIB holds all $want prefixes ($(elapsed))"
else
    fail "GoBGP's RIB holds $(gobgp_count) prefixes, the dump $want"
fi

# Spot checks: the first, the middle and the last route of the peer in the dump.
n=$(wc -l <"$tmp/peer.txt")
for i in 1 $((n / 2)) "$n"; do
    line=$(sed -n "${i}p" "$tmp/peer.txt")
    IFS='|' read -r _ _ _ _ _ prefix path _ _ _ med comm _ <<<"$line"
    r=$("${G[@]}" global rib -a ipv4 "$prefix" -j 2>&1)
    got=$(echo "$r" | python3 -c '
import json, sys
d = json.load(sys.stdin)
p = next(iter(d.values()))[0]
path, nh, med, comm = [], None, "", []
for a in p["attrs"]:
    t = a["type"]
    if t == 2:
        for s in a["as_paths"]:
            path += [str(x) for x in s["asns"]]
    elif t == 3:
        nh = a["nexthop"]
    elif t == 4:
        med = str(a["metric"])
    elif t == 8:
        comm = ["%d:%d" % (c >> 16, c & 0xffff) for c in a["communities"]]
print(" ".join(path) + "|" + str(nh) + "|" + med + "|" + " ".join(comm))' 2>&1)
    [ "$med" = 0 ] && ! echo "$r" | grep -q '"metric"' && med=""
    expect="4200000001 $path|$F4|$med|$comm"
    if [ "$got" = "$expect" ]; then
        ok "$prefix: AS_PATH 4200000001 $path, NEXT_HOP $F4, MED '$med', communities '$comm'"
    else
        fail "$prefix: got '$got', want '$expect'"
    fi
done

echo "done in $(elapsed)"
interop_summary "mrt source"
