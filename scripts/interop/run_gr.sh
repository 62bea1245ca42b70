#!/usr/bin/env bash
# Graceful restart (RFC 4724, RFC 8538 N bit) against GoBGP 3.10 and BIRD 2 (Debian packages).
# focld as helper: gobgpd killed with -9 and started again with -r, BIRD's `birdc graceful
# restart` and `bird -R`: during the restart focld's rib in keeps every route of the peer
# (stale) and rib summary never counts fewer; after the peer's End-of-RIB what it did not
# announce again is gone; a peer that never comes back is swept at its restart time; a hold
# timer expiry (the namespace's veth taken down) starts a restart too; GoBGP's reset (Cease /
# Administrative Reset with the N bit) is a restart under RFC 8538 (GoBGP 3.10 sends no Hard
# Reset; tests/graceful.rs shows one flushing); with Long-Lived GR (RFC 9494) GoBGP's routes
# outlive its restart time as LLGR_STALE. focld restarting (SIGUSR2, then focld -R): GoBGP and
# BIRD keep focld's prefix throughout; after a plain stop (SIGTERM) they drop it.
# Loopback (127.0.0.1 focld, 127.0.0.2 GoBGP, 127.0.0.3 BIRD) and two network namespaces this
# script creates and removes (198.51.100.1 focld, 198.51.100.2 BIRD). Needs root for the
# namespaces. Short timers keep it near three minutes (GoBGP takes ~6 s to connect after each
# start). Exits non-zero on failure.
set -uo pipefail
# shellcheck source=scripts/interop/lib.sh
. "$(dirname "$0")/lib.sh"
interop_setup gobgpd gobgp bird birdc ip

[ "$(id -u)" -eq 0 ] || { echo "run_gr: needs root (network namespaces)"; exit 1; }
nsa=focl-gr-a-$$
nsb=focl-gr-b-$$
gobgpd_pid=""
focld_pid=""
bird_pid=""
watch_pid=""
low=""
cleanup() {
    [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null
    [ -n "$gobgpd_pid" ] && kill -9 "$gobgpd_pid" 2>/dev/null
    [ -n "$bird_pid" ] && kill "$bird_pid" 2>/dev/null
    [ -n "$focld_pid" ] && kill "$focld_pid" 2>/dev/null
    ip netns del "$nsa" 2>/dev/null
    ip netns del "$nsb" 2>/dev/null
    interop_cleanup
}
trap cleanup EXIT

F=()
focl_json() { "$FOCL" "${F[@]}" -j "$@" 2>/dev/null; }
# jget, quiet while a daemon is down (no JSON to read).
jq_() { jget "$@" 2>/dev/null; }
state_of() { focl_json peer show "$1" | jq_ 'd["state"]'; }
established() { [ "$(state_of "$1")" = Established ]; }
not_established() { [ "$(state_of "$1")" != Established ]; }
rib_count() { focl_json rib in "$1" | jq_ 'len(d["routes"])'; }
stale_count() { focl_json rib in "$1" | jq_ 'sum(1 for r in d["routes"] if r["stale"])'; }
prefixes() { focl_json rib in "$1" | jq_ '" ".join(sorted(r["prefix"] for r in d["routes"]))'; }
summary_count() { focl_json rib summary | jq_ "[p for p in d['peers'] if p['address'] == '$1'][0]['routes']['ipv4_unicast']"; }

# watch_summary PEER: sample rib summary's count for PEER every 0.2 s into $tmp/watch until
# stop_watch; the lowest sample says whether it ever dropped.
watch_summary() {
    : >"$tmp/watch"
    (while [ ! -e "$tmp/watch.stop" ]; do
        summary_count "$1" >>"$tmp/watch" 2>/dev/null
        sleep 0.2
    done) &
    watch_pid=$!
}
# stop_watch: end the sampling (not in a subshell: it waits for its own child); the lowest
# sample goes to $low.
stop_watch() {
    touch "$tmp/watch.stop"
    wait "$watch_pid" 2>/dev/null
    watch_pid=""
    rm -f "$tmp/watch.stop"
    low=$(sort -n "$tmp/watch" | head -1)
}

start_focld() { # CONFIG LOG [-R] [netns]
    local conf=$1 log=$2 flag=${3:-} ns=${4:-}
    if [ -n "$ns" ]; then
        # shellcheck disable=SC2086
        ip netns exec "$ns" "$FOCLD" --config "$conf" $flag 2>>"$log" &
    else
        # shellcheck disable=SC2086
        "$FOCLD" --config "$conf" $flag 2>>"$log" &
    fi
    focld_pid=$!
}

stop_focld() { # SIGNAL
    kill "-$1" "$focld_pid" 2>/dev/null
    wait "$focld_pid" 2>/dev/null
    focld_pid=""
}

# ---------------------------------------------------------------------------------------------
# GoBGP on loopback

api_port=$(free_port 127.0.0.1)
G=(gobgp -u 127.0.0.1 -p "$api_port")
fport=$(free_port 127.0.0.1)
gport=$(free_port 127.0.0.1)

gobgp_conf() { # RESTART_TIME [LLGR_STALE_TIME]
    local llgr=${2:-}
    cat <<EOT
[global.config]
  as = 65002
  router-id = "192.0.2.2"
  port = $gport
  local-address-list = ["127.0.0.2"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.1"
    peer-as = 65001
  [neighbors.transport.config]
    local-address = "127.0.0.2"
    remote-port = $fport
  [neighbors.timers.config]
    hold-time = 30
    connect-retry = 1
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = $1
    notification-enabled = true
EOT
    [ -n "$llgr" ] && echo "    long-lived-enabled = true"
    cat <<EOT
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
EOT
    [ -n "$llgr" ] && printf '    [neighbors.afi-safis.long-lived-graceful-restart.config]\n      enabled = true\n      restart-time = %s\n' "$llgr"
    return 0
}
gobgp_conf 30 >"$tmp/gobgpd.toml"
gobgp_conf 4 >"$tmp/gobgpd-short.toml"
gobgp_conf 3 30 >"$tmp/gobgpd-llgr.toml"

start_gobgpd() { # CONFIG [-r] PREFIX...: start it, add the prefixes before any session
    local conf=$1 flag=$2
    shift 2
    # shellcheck disable=SC2086
    gobgpd -f "$conf" -t toml --api-hosts "127.0.0.1:$api_port" --pprof-disable $flag >>"$tmp/gobgpd.log" 2>&1 &
    gobgpd_pid=$!
    if ! wait_until 20 "${G[@]}" global; then fail "gobgpd did not start"; return 1; fi
    local p
    for p in "$@"; do "${G[@]}" global rib add -a ipv4 "$p" nexthop 127.0.0.2 origin igp; done
}
kill9_gobgpd() {
    kill -9 "$gobgpd_pid" 2>/dev/null
    wait "$gobgpd_pid" 2>/dev/null
    gobgpd_pid=""
}
# GoBGP's view of focld's prefix (in its RIB, stale or not).
gobgp_has_ours() { "${G[@]}" global rib -a ipv4 -j | jq_ '"203.0.113.0/24" in d'; }

cat >"$tmp/focl.toml" <<EOT
[global]
asn = 65001
router_id = "192.0.2.1"
listen_addr = "127.0.0.1:$fport"
control_socket = "$tmp/focld.sock"
log_level = "debug"

[[peers]]
address = "127.0.0.2"
remote_as = 65002
passive = true
hold_time_secs = 30
graceful_restart = "on"
restart_time_secs = 20
long_lived_stale_secs = 60

[[peers]]
address = "127.0.0.3"
remote_as = 65003
passive = true
hold_time_secs = 30
graceful_restart = "on"
restart_time_secs = 20

# GoBGP refuses a loopback NEXT_HOP, so the prefix names one.
[[prefixes]]
network = "203.0.113.0/24"
next_hop = "192.0.2.1"
EOT
F=(-s "$tmp/focld.sock")
start_focld "$tmp/focl.toml" "$tmp/focld.log"
three="198.51.100.0/24 198.51.101.0/24 198.51.102.0/24"
# shellcheck disable=SC2086
start_gobgpd "$tmp/gobgpd.toml" "" $three
if wait_until 40 established 127.0.0.2 && wait_until 10 output_is 3 rib_count 127.0.0.2; then
    ok "GoBGP: Established with graceful restart, focld holds its 3 prefixes"
else
    fail "GoBGP: no session or routes (state $(state_of 127.0.0.2)); focld log tail:"
    tail -5 "$tmp/focld.log"
fi
neg=$(focl_json peer show 127.0.0.2 | jq_ '[c["name"] for c in d["capabilities"] if c["negotiated"]]')
if echo "$neg" | grep -q "'graceful_restart(ipv4_unicast)'" && echo "$neg" | grep -q "'graceful_notification'"; then
    ok "GoBGP: focl peer show says graceful restart and the N bit are negotiated for ipv4_unicast"
else
    fail "GoBGP: negotiated capabilities $neg"
fi

# 1. kill -9 gobgpd, gobgpd -r: the routes stay (stale), End-of-RIB sweeps the one not re-sent.
watch_summary 127.0.0.2
kill9_gobgpd
if wait_until 10 not_established 127.0.0.2 && wait_until 5 output_is 3 stale_count 127.0.0.2; then
    ok "GoBGP killed: focld keeps its 3 routes, all stale ($(focl_json peer show 127.0.0.2 | jq_ 'd["graceful_restart"]["families"][0]["phase"]'))"
else
    fail "GoBGP killed: state $(state_of 127.0.0.2), $(rib_count 127.0.0.2) routes, $(stale_count 127.0.0.2) stale"
fi
sleep 2
start_gobgpd "$tmp/gobgpd.toml" -r 198.51.100.0/24 198.51.101.0/24
if wait_until 40 established 127.0.0.2 &&
    wait_until 20 output_is "198.51.100.0/24 198.51.101.0/24" prefixes 127.0.0.2 &&
    wait_until 5 output_is 0 stale_count 127.0.0.2; then
    ok "gobgpd -r: after its End-of-RIB focld holds the 2 prefixes it sent again, none stale; 198.51.102.0/24 swept"
else
    fail "gobgpd -r: focld holds '$(prefixes 127.0.0.2)', $(stale_count 127.0.0.2) stale"
fi
stop_watch
if [ "$low" -ge 2 ] 2>/dev/null && [ "$(grep -c . "$tmp/watch")" -gt 10 ]; then
    ok "GoBGP restart: rib summary never counted fewer than 2 routes for it ($(grep -c . "$tmp/watch") samples, lowest $low)"
else
    fail "GoBGP restart: rib summary dropped to '$low'"
fi

# graceful_focld_restart NAME ADDRESS HAS WANT: focld stops with SIGUSR2 and starts again with
# -R; the peer NAME at ADDRESS must keep focld's prefix (HAS prints WANT) the whole time.
graceful_focld_restart() {
    local name=$1 addr=$2 has=$3 want=$4 kept=1
    stop_focld USR2
    for _ in 1 2 3 4 5 6; do
        [ "$("$has")" = "$want" ] || kept=0
        sleep 0.5
    done
    start_focld "$tmp/focl.toml" "$tmp/focld.log" -R
    for _ in $(seq 1 40); do
        [ "$("$has")" = "$want" ] || kept=0
        established "$addr" && break
        sleep 0.5
    done
    if [ "$kept" = 1 ] && wait_until 30 established "$addr" && [ "$("$has")" = "$want" ]; then
        ok "focld SIGUSR2 then focld -R: $name kept focld's prefix the whole time"
    else
        fail "focld graceful restart: $name kept=$kept, state $(state_of "$addr"), has prefix $("$has")"
    fi
}

# 2. focld restarts gracefully: GoBGP keeps focld's prefix throughout.
if wait_until 10 output_is True gobgp_has_ours; then ok "GoBGP holds focld's prefix"; else fail "GoBGP lacks focld's prefix"; fi
graceful_focld_restart GoBGP 127.0.0.2 gobgp_has_ours True
if focl_json peer show 127.0.0.2 | jq_ 'd["capabilities_sent"]' | grep -q "graceful_restart(20s, N, ipv4_unicast, ipv6_unicast)"; then
    ok "focld's later OPENs no longer claim a restart"
else
    fail "focld's OPEN after the restart still claims one: $(focl_json peer show 127.0.0.2 | jq_ 'd["capabilities_sent"]')"
fi

# 3. gobgp neighbor reset: GoBGP 3.10 sends Cease / Administrative Reset, not Hard Reset, even
# with the N bit negotiated; RFC 8538 §4 makes that a restart: focld keeps the routes stale
# until GoBGP is back. (A Hard Reset flushing at once is shown by tests/graceful.rs.)
wait_until 20 output_is 2 rib_count 127.0.0.2
"${G[@]}" neighbor 127.0.0.1 reset >/dev/null
last_error() { focl_json peer show 127.0.0.2 | jq_ 'd["last_error"]["direction"] + " " + str(d["last_error"]["code"]) + "/" + str(d["last_error"]["subcode"])'; }
if wait_until 10 output_is "received 6/4" last_error && [ "$(rib_count 127.0.0.2)" = 2 ]; then
    ok "gobgp neighbor reset: Cease / Administrative Reset with N negotiated: focld keeps GoBGP's 2 routes (RFC 8538 §4)"
elif [ "$(last_error)" = "received 6/9" ] && wait_until 5 output_is 0 stale_count 127.0.0.2; then
    ok "gobgp neighbor reset: Cease / Hard Reset received, no route kept stale"
else
    fail "gobgp neighbor reset: last error '$(last_error)', $(stale_count 127.0.0.2) stale of $(rib_count 127.0.0.2)"
fi
if wait_until 30 established 127.0.0.2 && wait_until 10 output_is 0 stale_count 127.0.0.2 && [ "$(rib_count 127.0.0.2)" = 2 ]; then
    ok "after the reset GoBGP is back and its End-of-RIB leaves its 2 routes fresh"
else
    fail "after the reset: state $(state_of 127.0.0.2), $(rib_count 127.0.0.2) routes, $(stale_count 127.0.0.2) stale"
fi

# 4. focld stops plainly: GoBGP drops its prefix.
wait_until 30 established 127.0.0.2
wait_until 10 output_is True gobgp_has_ours
stop_focld TERM
if wait_until 10 output_is False gobgp_has_ours; then
    ok "focld SIGTERM: GoBGP dropped focld's prefix"
else
    fail "focld SIGTERM: GoBGP still holds focld's prefix"
fi

# 5. A peer that never comes back: swept at its restart time (4 s), not before.
start_focld "$tmp/focl.toml" "$tmp/focld.log"
kill9_gobgpd
start_gobgpd "$tmp/gobgpd-short.toml" "" 198.51.100.0/24 198.51.101.0/24
wait_until 40 established 127.0.0.2
wait_until 10 output_is 2 rib_count 127.0.0.2
kill9_gobgpd
wait_until 10 not_established 127.0.0.2
t0=$(date +%s)
sleep 2
still=$(rib_count 127.0.0.2)
if [ "$still" = 2 ] && wait_until 10 output_is 0 rib_count 127.0.0.2; then
    ok "GoBGP gone for good: its 2 routes kept 2 s, swept at the 4 s restart timer ($(($(date +%s) - t0)) s)"
else
    fail "GoBGP gone for good: $still routes at 2 s, $(rib_count 127.0.0.2) now"
fi

# 6. Long-Lived GR (RFC 9494): past GoBGP's 3 s restart time its routes stay, long-lived stale.
start_gobgpd "$tmp/gobgpd-llgr.toml" "" 198.51.100.0/24 198.51.101.0/24
if wait_until 40 established 127.0.0.2 && wait_until 10 output_is 2 rib_count 127.0.0.2 &&
    focl_json peer show 127.0.0.2 | jq_ '[c["name"] for c in d["capabilities"] if c["negotiated"]]' | grep -q "long_lived_graceful_restart(ipv4_unicast)"; then
    ok "GoBGP with LLGR: long_lived_graceful_restart(ipv4_unicast) negotiated"
else
    fail "GoBGP with LLGR: $(focl_json peer show 127.0.0.2 | jq_ 'd["capabilities"]')"
fi
kill9_gobgpd
llgr_count() { focl_json rib in 127.0.0.2 | jq_ 'sum(1 for r in d["routes"] if r.get("llgr_stale") and "llgr-stale" in " ".join(r["communities"]).lower().replace("65535:6", "llgr-stale"))'; }
phase() { focl_json peer show 127.0.0.2 | jq_ 'd["graceful_restart"]["families"][0]["phase"]'; }
if wait_until 10 output_is long_lived phase && wait_until 5 output_is 2 llgr_count; then
    ok "GoBGP gone past its restart time: its 2 routes kept as long-lived stale, shown with LLGR_STALE"
else
    fail "LLGR: phase '$(phase)', $(llgr_count) long-lived stale of $(rib_count 127.0.0.2)"
fi
start_gobgpd "$tmp/gobgpd-llgr.toml" -r 198.51.100.0/24 198.51.101.0/24
if wait_until 40 established 127.0.0.2 && wait_until 10 output_is 0 stale_count 127.0.0.2 && [ "$(rib_count 127.0.0.2)" = 2 ]; then
    ok "gobgpd -r during the long-lived phase: its End-of-RIB leaves both routes fresh"
else
    fail "after LLGR: $(rib_count 127.0.0.2) routes, $(stale_count 127.0.0.2) stale"
fi
kill9_gobgpd

# ---------------------------------------------------------------------------------------------
# BIRD on loopback: birdc graceful restart, bird -R; and BIRD as focld's helper.

bport=$(free_port 127.0.0.1)
bird_conf() { # ROUTE...
    echo "router id 192.0.2.3;"
    echo "protocol device {}"
    echo "protocol static s4 { ipv4;"
    local r
    for r in "$@"; do echo "    route $r blackhole;"; done
    echo "}"
    cat <<EOT
protocol bgp focld {
    local 127.0.0.3 port $bport as 65003;
    neighbor 127.0.0.1 port $fport as 65001;
    multihop;
    connect retry time 1;
    graceful restart on;
    graceful restart time 20;
    ipv4 { import all; export where source = RTS_STATIC; };
}
EOT
}
bird_conf 192.0.2.0/25 192.0.2.128/25 198.18.0.0/15 >"$tmp/bird.conf"
bird_conf 192.0.2.0/25 192.0.2.128/25 >"$tmp/bird2.conf"
start_bird() { # CONFIG [-R]
    # shellcheck disable=SC2086
    bird -f -c "$1" -s "$tmp/bird.ctl" -P "$tmp/bird.pid" ${2:-} >>"$tmp/bird.log" 2>&1 &
    bird_pid=$!
}
bird_has_ours() { birdc -s "$tmp/bird.ctl" show route 203.0.113.0/24 2>/dev/null | grep -q "203.0.113.0/24" && echo yes || echo no; }

start_bird "$tmp/bird.conf"
if wait_until 30 established 127.0.0.3 && wait_until 10 output_is 3 rib_count 127.0.0.3; then
    ok "BIRD: Established, focld holds its 3 routes"
else
    fail "BIRD: state $(state_of 127.0.0.3), $(rib_count 127.0.0.3) routes"
fi
watch_summary 127.0.0.3
birdc -s "$tmp/bird.ctl" graceful restart >/dev/null
wait "$bird_pid" 2>/dev/null
bird_pid=""
if wait_until 10 not_established 127.0.0.3 && wait_until 5 output_is 3 stale_count 127.0.0.3; then
    ok "birdc graceful restart: focld keeps BIRD's 3 routes, stale"
else
    fail "birdc graceful restart: $(rib_count 127.0.0.3) routes, $(stale_count 127.0.0.3) stale"
fi
start_bird "$tmp/bird2.conf" -R
if wait_until 30 established 127.0.0.3 &&
    wait_until 20 output_is "192.0.2.0/25 192.0.2.128/25" prefixes 127.0.0.3 &&
    wait_until 5 output_is 0 stale_count 127.0.0.3; then
    ok "bird -R: after its End-of-RIB focld holds the 2 routes it sent again; 198.18.0.0/15 swept"
else
    fail "bird -R: focld holds '$(prefixes 127.0.0.3)', $(stale_count 127.0.0.3) stale"
fi
stop_watch
if [ "$low" -ge 2 ] 2>/dev/null; then
    ok "BIRD restart: rib summary never counted fewer than 2 routes for it (lowest $low)"
else
    fail "BIRD restart: rib summary dropped to '$low'"
fi

# focld restarts gracefully: BIRD keeps focld's prefix; a plain stop: BIRD drops it.
if wait_until 10 output_is yes bird_has_ours; then ok "BIRD holds focld's prefix"; else fail "BIRD lacks focld's prefix"; fi
graceful_focld_restart BIRD 127.0.0.3 bird_has_ours yes
stop_focld TERM
if wait_until 10 output_is no bird_has_ours; then
    ok "focld SIGTERM: BIRD dropped focld's prefix"
else
    fail "focld SIGTERM: BIRD still holds focld's prefix"
fi
kill "$bird_pid" 2>/dev/null
wait "$bird_pid" 2>/dev/null
bird_pid=""

# ---------------------------------------------------------------------------------------------
# Hold timer expiry: focld in namespace A, BIRD in B; B's end of the veth goes down.

ip netns add "$nsa"
ip netns add "$nsb"
ip link add vgr-a netns "$nsa" type veth peer name vgr-b netns "$nsb"
ip -n "$nsa" addr add 198.51.100.1/24 dev vgr-a
ip -n "$nsb" addr add 198.51.100.2/24 dev vgr-b
for ns in "$nsa" "$nsb"; do ip -n "$ns" link set lo up; done
ip -n "$nsa" link set vgr-a up
ip -n "$nsb" link set vgr-b up
cat >"$tmp/focl-ns.toml" <<EOT
[global]
asn = 65001
router_id = "192.0.2.1"
listen_addr = "198.51.100.1:179"
control_socket = "$tmp/focld-ns.sock"
log_level = "debug"

[[peers]]
address = "198.51.100.2"
remote_as = 65003
passive = true
hold_time_secs = 6
EOT
cat >"$tmp/bird-ns.conf" <<EOT
router id 192.0.2.3;
protocol device {}
protocol static s4 { ipv4; route 192.0.2.0/25 blackhole; route 192.0.2.128/25 blackhole; }
protocol bgp focld {
    local 198.51.100.2 as 65003;
    neighbor 198.51.100.1 as 65001;
    hold time 6;
    connect retry time 1;
    error wait time 1, 2;
    graceful restart on;
    graceful restart time 30;
    ipv4 { import all; export where source = RTS_STATIC; };
}
EOT
F=(-s "$tmp/focld-ns.sock")
start_focld "$tmp/focl-ns.toml" "$tmp/focld-ns.log" "" "$nsa"
ip netns exec "$nsb" bird -f -c "$tmp/bird-ns.conf" -s "$tmp/bird-ns.ctl" -P "$tmp/bird-ns.pid" >>"$tmp/bird-ns.log" 2>&1 &
bird_pid=$!
if wait_until 30 established 198.51.100.2 && wait_until 10 output_is 2 rib_count 198.51.100.2; then
    ok "namespaces: focld and BIRD Established over the veth, 2 routes"
else
    fail "namespaces: state $(state_of 198.51.100.2)"
fi
ip -n "$nsb" link set vgr-b down
hold_expired() { focl_json peer show 198.51.100.2 | jq_ 'd["last_error"]["code"]'; }
if wait_until 15 output_is 4 hold_expired && wait_until 3 output_is 2 stale_count 198.51.100.2; then
    ok "veth down: focld's hold timer expired and BIRD's 2 routes are kept, stale"
else
    fail "veth down: last error $(hold_expired), $(rib_count 198.51.100.2) routes, $(stale_count 198.51.100.2) stale"
fi
ip -n "$nsb" link set vgr-b up
if wait_until 30 established 198.51.100.2 && wait_until 10 output_is 0 stale_count 198.51.100.2 &&
    [ "$(rib_count 198.51.100.2)" = 2 ]; then
    ok "veth up: BIRD is back, its End-of-RIB refreshed both routes"
else
    fail "veth up: state $(state_of 198.51.100.2), $(rib_count 198.51.100.2) routes, $(stale_count 198.51.100.2) stale"
fi

interop_summary "graceful restart"
