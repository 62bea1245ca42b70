#!/usr/bin/env bash
# Interop smoke test: focld and GoBGP (Debian's gobgpd) on loopback, focld active and then
# passive: Established; each side receives the other's IPv4 and IPv6 prefixes with the right
# next hop and AS path; focl peer refresh makes GoBGP resend (counted); stopping gobgpd brings
# the session down and restarting it brings it back, focld untouched.
# GoBGP 3.10 cannot send a ROUTE-REFRESH itself (its softresetin re-applies its own
# Adj-RIB-In), so the peer-to-focld direction of route refresh is shown with BIRD at the end.
# Loopback only (127.0.0.1 focld, 127.0.0.2 GoBGP, 127.0.0.3 BIRD). Exits non-zero on failure.
set -uo pipefail
# shellcheck source=scripts/interop/lib.sh
. "$(dirname "$0")/lib.sh"
interop_setup gobgpd gobgp bird birdc

gobgpd_pid=""
focld_pid=""
bird_pid=""
cleanup() {
    [ -n "$gobgpd_pid" ] && kill "$gobgpd_pid" 2>/dev/null
    [ -n "$bird_pid" ] && kill "$bird_pid" 2>/dev/null
    interop_cleanup
}
trap cleanup EXIT

api_port=$(free_port 127.0.0.1)
G=(gobgp -u 127.0.0.1 -p "$api_port")
F=()

focl_json() { "$FOCL" "${F[@]}" -j "$@"; }

focld_state() { focl_json peer show 127.0.0.2 | jget 'd["state"]'; }
focld_established() { [ "$(focld_state)" = Established ]; }
focld_not_established() { [ "$(focld_state)" != Established ]; }
gobgp_established() { [ "$("${G[@]}" neighbor 127.0.0.1 -j | jget 'd["state"]["session_state"]')" = 6 ]; }
focld_counter() { focl_json peer show 127.0.0.2 | jget "d[\"messages_received\"][\"$1\"]"; }
gobgp_counter() { "${G[@]}" neighbor 127.0.0.1 -j | jget "d['state']['messages']['received'].get('$1', 0)"; }
focld_rib_count() { focl_json rib in 127.0.0.2 | jget 'len(d["routes"])'; }

start_gobgpd() {
    gobgpd -f "$tmp/gobgpd.toml" -t toml --api-hosts "127.0.0.1:$api_port" --pprof-disable >>"$tmp/gobgpd.log" 2>&1 &
    gobgpd_pid=$!
    if ! wait_until 20 "${G[@]}" global; then fail "gobgpd did not start"; return 1; fi
    "${G[@]}" global rib add -a ipv4 198.51.100.0/24 nexthop 127.0.0.2 origin igp
    "${G[@]}" global rib add -a ipv6 2001:db8:2000::/48 nexthop 2001:db8::2 origin igp
}

stop_gobgpd() {
    kill "$gobgpd_pid" 2>/dev/null
    wait "$gobgpd_pid" 2>/dev/null
    gobgpd_pid=""
}

# check_routes LABEL: both directions, both families.
check_routes() {
    local label=$1
    if wait_until 20 output_is 2 focld_rib_count; then
        local r
        r=$(focl_json rib in 127.0.0.2)
        if echo "$r" | jget 'sorted((x["prefix"], x["next_hop"], x["as_path"]) for x in d["routes"]) == [("198.51.100.0/24","127.0.0.2","65002"), ("2001:db8:2000::/48","2001:db8::2","65002")]' | grep -q True; then
            ok "$label: focld holds GoBGP's IPv4 and IPv6 prefixes with next hop and AS path"
        else
            fail "$label: focld's rib in is wrong: $r"
        fi
    else
        fail "$label: focld did not receive GoBGP's two prefixes"
    fi
    local v4 v6
    v4=$("${G[@]}" neighbor 127.0.0.1 adj-in -a ipv4 -j)
    v6=$("${G[@]}" neighbor 127.0.0.1 adj-in -a ipv6 -j)
    local check='[(p, [a.get("nexthop") for a in x[0]["attrs"] if a["type"] in (3, 14)][0], [s["asns"] for a in x[0]["attrs"] if a["type"] == 2 for s in a["as_paths"]]) for p, x in d.items() if x]'
    if [ "$(echo "$v4" | jget "$check")" = "[('203.0.113.0/24', '192.0.2.1', [[65001]])]" ]; then
        ok "$label: GoBGP holds focld's IPv4 prefix, next hop 192.0.2.1, AS path 65001"
    else
        fail "$label: GoBGP's IPv4 adj-in is wrong: $v4"
    fi
    if [ "$(echo "$v6" | jget "$check")" = "[('2001:db8:1000::/48', '2001:db8::1', [[65001]])]" ]; then
        ok "$label: GoBGP holds focld's IPv6 prefix, next hop 2001:db8::1, AS path 65001"
    else
        fail "$label: GoBGP's IPv6 adj-in is wrong: $v6"
    fi
}

run_case() {
    local mode=$1 # focld-active or focld-passive
    local fport gport
    fport=$(free_port 127.0.0.1)
    gport=$(free_port 127.0.0.1)
    local passive_f=false passive_g=true
    if [ "$mode" = focld-passive ]; then passive_f=true; passive_g=false; fi
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
remote_port = $gport
hold_time_secs = 30
connect_retry_secs = 2
passive = $passive_f

# GoBGP refuses a loopback NEXT_HOP, so the IPv4 prefix names one.
[[prefixes]]
network = "203.0.113.0/24"
next_hop = "192.0.2.1"

[[prefixes]]
network = "2001:db8:1000::/48"
next_hop = "2001:db8::1"
EOT
    gobgpd_conf "$gport" "$fport" "$passive_g" ipv4-unicast ipv6-unicast >"$tmp/gobgpd.toml"
    F=(-s "$tmp/focld.sock")
    start_gobgpd || return
    "$FOCLD" --config "$tmp/focl.toml" 2>>"$tmp/focld-$mode.log" &
    focld_pid=$!
    if wait_until 60 focld_established && wait_until 10 gobgp_established; then
        ok "$mode: Established on both sides"
    else
        fail "$mode: not Established (focld: $(focld_state)); focld log tail:"
        tail -5 "$tmp/focld-$mode.log"
        return
    fi
    check_routes "$mode"

    # Route refresh from focld: GoBGP counts it and resends.
    local before_f before_g
    before_f=$(focld_counter update)
    before_g=$(gobgp_counter refresh)
    "$FOCL" "${F[@]}" peer refresh 127.0.0.2 >/dev/null
    if wait_until 10 output_above "$before_g" gobgp_counter refresh && wait_until 10 output_above "$before_f" focld_counter update; then
        ok "$mode: focl peer refresh reached GoBGP ($(gobgp_counter refresh) received) and GoBGP resent"
    else
        fail "$mode: route refresh from focld: GoBGP refresh count $(gobgp_counter refresh), focld updates $before_f -> $(focld_counter update)"
    fi
    # gobgpd goes away: focld notices; it comes back: the session returns, focld untouched.
    stop_gobgpd
    if wait_until 40 focld_not_established && wait_until 10 output_is 0 focld_rib_count; then
        ok "$mode: stopping gobgpd brings the session down and empties focld's rib in"
    else
        fail "$mode: focld still $(focld_state) with $(focld_rib_count) routes after gobgpd stopped"
    fi
    start_gobgpd || return
    if wait_until 90 focld_established && kill -0 "$focld_pid" 2>/dev/null; then
        ok "$mode: restarted gobgpd is Established again with the same focld (pid $focld_pid)"
        check_routes "$mode after restart"
    else
        fail "$mode: no session after restarting gobgpd (focld: $(focld_state))"
    fi

    kill -TERM "$focld_pid"
    local rc=0
    wait "$focld_pid" || rc=$?
    focld_pid=""
    if [ "$rc" = 0 ]; then ok "$mode: focld exits 0 on SIGTERM"; else fail "$mode: focld exit status $rc"; fi
    stop_gobgpd
}

# ROUTE-REFRESH from a peer: BIRD's "reload in" sends one; focld counts it and resends.
refresh_from_bird() {
    local fport bport
    fport=$(free_port 127.0.0.1)
    bport=$(free_port 127.0.0.1)
    cat >"$tmp/focl-bird.toml" <<EOT
[global]
asn = 65001
router_id = "192.0.2.1"
listen_addr = "127.0.0.1:$fport"
control_socket = "$tmp/focld-bird.sock"

[[peers]]
address = "127.0.0.3"
remote_as = 65003
remote_port = $bport
passive = true

[[prefixes]]
network = "203.0.113.0/24"
next_hop = "192.0.2.1"
EOT
    cat >"$tmp/bird.conf" <<EOT
router id 192.0.2.3;
protocol device {}
protocol static s4 { ipv4; route 198.51.101.0/24 blackhole; }
protocol bgp focld {
    local 127.0.0.3 port $bport as 65003;
    neighbor 127.0.0.1 port $fport as 65001;
    multihop;
    connect retry time 2;
    ipv4 { import all; export all; };
}
EOT
    F=(-s "$tmp/focld-bird.sock")
    "$FOCLD" --config "$tmp/focl-bird.toml" 2>>"$tmp/focld-bird.log" &
    focld_pid=$!
    bird -f -c "$tmp/bird.conf" -s "$tmp/bird.ctl" -P "$tmp/bird.pid" >>"$tmp/bird.log" 2>&1 &
    bird_pid=$!
    bird_established() { [ "$(focl_json peer show 127.0.0.3 | jget 'd["state"]')" = Established ]; }
    if ! wait_until 60 bird_established; then
        fail "BIRD: no session with focld"
        return
    fi
    local rr_before upd_before
    rr_before=$(focl_json peer show 127.0.0.3 | jget 'd["messages_received"]["route_refresh"]')
    upd_before=$(focl_json peer show 127.0.0.3 | jget 'd["messages_sent"]["update"]')
    birdc -s "$tmp/bird.ctl" reload in focld >/dev/null
    rr_now() { focl_json peer show 127.0.0.3 | jget 'd["messages_received"]["route_refresh"]'; }
    upd_now() { focl_json peer show 127.0.0.3 | jget 'd["messages_sent"]["update"]'; }
    if wait_until 10 output_above "$rr_before" rr_now && wait_until 10 output_above "$upd_before" upd_now; then
        ok "BIRD's ROUTE-REFRESH counted by focld ($(rr_now)) and focld resent ($upd_before -> $(upd_now) UPDATEs)"
    else
        fail "route refresh from BIRD: focld counted $(rr_now), sent UPDATEs $upd_before -> $(upd_now)"
    fi
    kill -TERM "$focld_pid"
    wait "$focld_pid"
    focld_pid=""
}

run_case focld-active
run_case focld-passive
refresh_from_bird

interop_summary "gobgp smoke"
