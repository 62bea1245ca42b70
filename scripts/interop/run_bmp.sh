#!/usr/bin/env bash
# Interop: focld exports BMP (RFC 7854) to pmacct's pmbmpd (Debian's pmacct) on loopback while
# GoBGP (127.0.0.2) announces routes to focld: pmbmpd's JSON log shows the Initiation, a Peer
# Up with GoBGP's AS and BGP id, every announced route with the prefix, AS path and next hop
# focl rib in shows, a withdrawal, Statistics; the Loc-RIB (RFC 9069: a Peer Up of peer type
# 3 with focld's AS, router id and table name, the best paths as pmbmpd's is_loc lines, a
# withdrawal) and the Adj-RIB-Out (RFC 8671: focld's [[prefixes]] route as sent, pmbmpd's
# is_out lines); a restarted pmbmpd gets the initial dump of each view; a Peer Down with its
# reason once gobgpd stops, and the Termination when focld stops. pmbmpd ignores SIGTERM: it is stopped by its PID with
# SIGKILL. Loopback only. Exits non-zero on failure.
set -uo pipefail
# shellcheck source=scripts/interop/lib.sh
. "$(dirname "$0")/lib.sh"
interop_setup gobgpd gobgp pmbmpd

gobgpd_pid=""
focld_pid=""
pmbmpd_pid=""
cleanup() {
    [ -n "$gobgpd_pid" ] && kill "$gobgpd_pid" 2>/dev/null
    [ -n "$focld_pid" ] && kill "$focld_pid" 2>/dev/null
    [ -n "$pmbmpd_pid" ] && kill -KILL "$pmbmpd_pid" 2>/dev/null
    interop_cleanup
}
trap cleanup EXIT

api_port=$(free_port 127.0.0.1)
fport=$(free_port 127.0.0.1)
gport=$(free_port 127.0.0.1)
bport=$(free_port 127.0.0.1)
G=(gobgp -u 127.0.0.1 -p "$api_port")
F=(-s "$tmp/focld.sock")
log="$tmp/bmp.json"

# count_msgs TYPE: how many pmbmpd log lines have this bmp_msg_type.
count_msgs() {
    [ -f "$log" ] || { echo 0; return; }
    python3 - "$log" "$1" <<'EOP'
import json, sys
n = 0
for line in open(sys.argv[1]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if d.get("bmp_msg_type") == sys.argv[2]:
        n += 1
print(n)
EOP
}

# first_msg TYPE [PEER_TYPE]: the first log line of that type (and BMP peer type, 0 unless
# given: 3 is the Loc-RIB), as JSON.
first_msg() {
    python3 - "$log" "$1" "${2:-0}" <<'EOP'
import json, sys
for line in open(sys.argv[1]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if d.get("bmp_msg_type") == sys.argv[2] and int(d.get("peer_type", 0)) == int(sys.argv[3]):
        print(json.dumps(d))
        break
EOP
}

cat >"$tmp/pmbmpd.conf" <<EOT
bmp_daemon_ip: 127.0.0.1
bmp_daemon_port: $bport
bmp_daemon_msglog_file: $log
bmp_daemon_msglog_output: json
EOT
pmbmpd -f "$tmp/pmbmpd.conf" >"$tmp/pmbmpd.out" 2>&1 &
pmbmpd_pid=$!

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
passive = true

[[prefixes]]
network = "192.0.2.0/24"

[[bmp.stations]]
address = "127.0.0.1"
port = $bport
connect_retry_secs = 1
stats_interval_secs = 2
monitor = ["pre-policy", "adj-rib-out", "loc-rib"]
EOT
gobgpd_conf "$gport" "$fport" false ipv4-unicast ipv6-unicast >"$tmp/gobgpd.toml"

"$FOCLD" --config "$tmp/focl.toml" 2>>"$tmp/focld.log" &
focld_pid=$!
bmp_up() { "$FOCL" "${F[@]}" -j bmp status | jget 'd[0]["state"]'; }
if wait_until 20 output_is up bmp_up && wait_until 10 output_above 0 count_msgs init; then
    ok "pmbmpd logs focld's Initiation"
else
    fail "no Initiation at pmbmpd (station $(bmp_up)); pmbmpd said: $(tail -3 "$tmp/pmbmpd.out")"
fi

gobgpd -f "$tmp/gobgpd.toml" -t toml --api-hosts "127.0.0.1:$api_port" --pprof-disable >>"$tmp/gobgpd.log" 2>&1 &
gobgpd_pid=$!
wait_until 20 "${G[@]}" global || fail "gobgpd did not start"
"${G[@]}" global rib add -a ipv4 198.51.100.0/24 nexthop 192.0.2.2 origin igp aspath 65020
"${G[@]}" global rib add -a ipv4 203.0.113.0/24 nexthop 192.0.2.2 origin igp
"${G[@]}" global rib add -a ipv6 2001:db8:2000::/48 nexthop 2001:db8::2 origin igp

focld_state() { "$FOCL" "${F[@]}" -j peer show 127.0.0.2 | jget 'd["state"]'; }
focld_rib_count() { "$FOCL" "${F[@]}" -j rib in 127.0.0.2 | jget 'len(d["routes"])'; }
if wait_until 60 output_is Established focld_state && wait_until 20 output_is 3 focld_rib_count; then
    ok "focld and GoBGP Established, 3 routes in focl rib in"
else
    fail "session $(focld_state), $(focld_rib_count) routes"
fi

# RFC 9069: the Loc-RIB pseudo-peer is up as soon as the station is; the table name TLV
# (type 3) says "global", which pmbmpd logs as hex.
if first_msg peer_up 3 | jget 'd["is_loc"] == 1 and int(d["peer_asn"]) == 65001 and d["bgp_id"] == "192.0.2.1" and d["bmp_peer_up_info_3"] == "67-6C-6F-62-61-6C"' | grep -q True; then
    ok "Loc-RIB Peer Up: peer type 3, AS 65001, BGP id 192.0.2.1, table name global"
else
    fail "no Loc-RIB Peer Up as expected: $(first_msg peer_up 3)"
fi

if wait_until 10 output_above 1 count_msgs peer_up; then
    if first_msg peer_up | jget 'd["peer_ip"] == "127.0.0.2" and int(d["peer_asn"]) == 65002 and d["bgp_id"] == "192.0.2.2"' | grep -q True; then
        ok "Peer Up: peer 127.0.0.2, AS 65002, BGP id 192.0.2.2"
    else
        fail "Peer Up has the wrong peer: $(first_msg peer_up)"
    fi
else
    fail "no Peer Up at pmbmpd"
fi

# routes_match VIEW N [WHAT]: pmbmpd's routes of one view (its is_in, is_loc or is_out lines)
# equal the N routes of focl rib in 127.0.0.2 (WHAT: "in", the default) or of focl rib out
# 127.0.0.2 ("out", whose AS path is focld's AS, prepended on the wire): prefix, AS path and
# next hop; withdrawn ones gone.
routes_match() {
    "$FOCL" "${F[@]}" -j rib "${3:-in}" 127.0.0.2 >"$tmp/rib.json" || return 1
    python3 - "$log" "$tmp/rib.json" "$1" "$2" "${3:-in}" <<'EOP'
import json, sys
seen = {}
for line in open(sys.argv[1]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if d.get("bmp_msg_type") != "route_monitor" or d.get(sys.argv[3]) != 1:
        continue
    if d.get("log_type") == "update":
        seen[d["ip_prefix"]] = (d.get("as_path", ""), d.get("bgp_nexthop", ""))
    elif d.get("log_type") == "withdraw":
        seen.pop(d["ip_prefix"], None)
rib = json.load(open(sys.argv[2]))["routes"]
if sys.argv[5] == "out":
    want = {r["prefix"]: ("65001", r["next_hop"]) for r in rib}
else:
    want = {r["prefix"]: (r["as_path"], r["next_hop"]) for r in rib}
ok = len(want) == int(sys.argv[4]) and seen == want
if not ok:
    print(sys.argv[3], "want", want, "seen", seen, file=sys.stderr)
sys.exit(0 if ok else 1)
EOP
}
if wait_until 10 routes_match is_in 3; then
    ok "pmbmpd saw every route of focl rib in with its prefix, AS path and next hop"
else
    fail "routes differ: $(routes_match is_in 3 2>&1)"
fi
if wait_until 10 routes_match is_loc 3; then
    ok "Loc-RIB: pmbmpd's is_loc routes are the best paths, those of focl rib in"
else
    fail "Loc-RIB routes differ: $(routes_match is_loc 3 2>&1)"
fi
if wait_until 10 routes_match is_out 1 out; then
    ok "Adj-RIB-Out: pmbmpd's is_out route is focl rib out's 192.0.2.0/24 as sent (AS path 65001)"
else
    fail "Adj-RIB-Out routes differ: $(routes_match is_out 1 out 2>&1)"
fi

withdrawn() {
    python3 - "$log" "$1" <<'EOP'
import json, sys
for line in open(sys.argv[1]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if d.get("bmp_msg_type") == "route_monitor" and d.get("log_type") == "withdraw" and d.get("ip_prefix") == "203.0.113.0/24" and d.get(sys.argv[2]) == 1:
        sys.exit(0)
sys.exit(1)
EOP
}
"${G[@]}" global rib del -a ipv4 203.0.113.0/24
if wait_until 10 withdrawn is_in && wait_until 10 withdrawn is_loc; then
    ok "pmbmpd saw the withdrawal of 203.0.113.0/24, from the peer and from the Loc-RIB"
else
    fail "no withdrawal of 203.0.113.0/24 at pmbmpd (is_in and is_loc)"
fi

if wait_until 10 output_above 0 count_msgs stats; then
    ok "pmbmpd logs Statistics Reports ($(count_msgs stats))"
else
    fail "no Statistics Report at pmbmpd"
fi

# pmbmpd restarts with an empty log: focld connects again and sends the initial dump, the
# routes focl rib in holds now (the withdrawn one not among them).
kill -KILL "$pmbmpd_pid" 2>/dev/null
wait "$pmbmpd_pid" 2>/dev/null
mv "$log" "$tmp/bmp-first.json"
pmbmpd -f "$tmp/pmbmpd.conf" >>"$tmp/pmbmpd.out" 2>&1 &
pmbmpd_pid=$!
if wait_until 30 output_above 1 count_msgs peer_up && wait_until 10 routes_match is_in 2 && wait_until 10 routes_match is_loc 2 && wait_until 10 routes_match is_out 1 out; then
    ok "after pmbmpd restarted: Initiation, Peer Ups and the initial dump of the $(focld_rib_count) routes of focl rib in, the Loc-RIB and the Adj-RIB-Out"
else
    fail "no initial dump after pmbmpd restarted: $(routes_match is_in 2 2>&1) $(routes_match is_loc 2 2>&1) $(routes_match is_out 1 out 2>&1)"
fi

kill "$gobgpd_pid" 2>/dev/null
wait "$gobgpd_pid" 2>/dev/null
gobgpd_pid=""
if wait_until 20 output_above 0 count_msgs peer_down; then
    reason=$(first_msg peer_down | jget 'd.get("reason_type")')
    if [ "$reason" = 3 ] || [ "$reason" = 4 ]; then
        ok "Peer Down after gobgpd stopped, reason $reason (the remote system closed the session)"
    else
        fail "Peer Down with reason $reason: $(first_msg peer_down)"
    fi
else
    fail "no Peer Down at pmbmpd after gobgpd stopped"
fi

kill -TERM "$focld_pid"
rc=0
wait "$focld_pid" || rc=$?
focld_pid=""
[ "$rc" = 0 ] || fail "focld exit status $rc"
if wait_until 10 output_above 0 count_msgs term; then
    ok "pmbmpd logs the Termination when focld stops"
else
    fail "no Termination at pmbmpd"
fi
kill -KILL "$pmbmpd_pid" 2>/dev/null
wait "$pmbmpd_pid" 2>/dev/null
pmbmpd_pid=""

interop_summary run_bmp
