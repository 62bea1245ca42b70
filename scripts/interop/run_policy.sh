#!/usr/bin/env bash
# Import policy against GoBGP (Debian's gobgpd), issue 17: GoBGP announces a bogon, a route
# with community 65002:100 and a plain route to focld, whose import chain rejects the bogon
# set and gives the community LOCAL_PREF 200. Rejected routes stay in focld's Adj-RIB-In
# (`focl rib in --rejected`) and are never best; `focl policy explain` names the deciding
# term; a reload that rejects one more prefix changes the Loc-RIB at once without a session
# reset (GoBGP's session and focld's flap count unchanged) and says so; a file naming an
# undefined set is refused by `focld -n` and by a reload, which then changes nothing.
# A second GoBGP gets the learned routes through focld's export chain (our AS prepended, the
# next hop the chain sets) and loses them when the Loc-RIB does. Blackhole (RFC 7999): GoBGP's
# /32 with 65535:666 is accepted only when its /24 covers it; `focl blackhole add` makes GoBGP
# receive the route with 65535:666 and NO_EXPORT at the discard next hop.
# (GoBGP refuses a loopback next hop, so next hop self and the route-server case are shown
# between focld processes in tests/policy.rs.)
# Loopback only (127.0.0.1 focld, 127.0.0.2 and 127.0.0.3 GoBGP). Exits non-zero on failure.
set -uo pipefail
# shellcheck source=scripts/interop/lib.sh
. "$(dirname "$0")/lib.sh"
interop_setup gobgpd gobgp

gobgpd_pid=""
gobgpd2_pid=""
cleanup() {
    [ -n "$gobgpd_pid" ] && kill "$gobgpd_pid" 2>/dev/null
    [ -n "$gobgpd2_pid" ] && kill "$gobgpd2_pid" 2>/dev/null
    interop_cleanup
}
trap cleanup EXIT

api_port=$(free_port 127.0.0.1)
api_port2=$(free_port 127.0.0.1)
fport=$(free_port 127.0.0.1)
gport=$(free_port 127.0.0.2)
gport2=$(free_port 127.0.0.3)
G=(gobgp -u 127.0.0.1 -p "$api_port")
G2=(gobgp -u 127.0.0.1 -p "$api_port2")
F=(-s "$tmp/focld.sock")
focl_json() { "$FOCL" "${F[@]}" -j "$@"; }

# focl_config EXTRA_BOGON: focld's file; EXTRA_BOGON is one more entry of the bogon set.
focl_config() {
    cat >"$tmp/focl.toml" <<EOT
[global]
asn = 65001
router_id = "192.0.2.1"
listen_addr = "127.0.0.1:$fport"
control_socket = "$tmp/focld.sock"
log_level = "debug"

[[peers]]
name = "gobgp"
address = "127.0.0.2"
remote_as = 65002
remote_port = $gport
hold_time_secs = 30
connect_retry_secs = 2
import = ["import_std"]

[[peers]]
name = "gobgp2"
address = "127.0.0.3"
remote_as = 65003
remote_port = $gport2
hold_time_secs = 30
connect_retry_secs = 2
export = ["out"]

[blackhole]
accept_from = ["gobgp"]

[[policy.out.term]]
set = { next_hop = "192.0.2.1" }
action = "accept"

[sets.prefix]
bogons = ["198.18.0.0/15 orlonger", "10.0.0.0/8 le 32"$1]
[sets.community]
preferred = ["65002:100"]

[[policy.import_std.term]]
match = { prefix_in = "bogons" }
action = "reject"
[[policy.import_std.term]]
match = { community_any = "preferred" }
set = { local_pref = 200 }
action = "accept"
EOT
}

gobgpd_conf "$gport" "$fport" true ipv4-unicast >"$tmp/gobgpd.toml"

sed -e "s/65002/65003/; s/192.0.2.2/192.0.2.3/; s/127.0.0.2/127.0.0.3/g; s/port = $gport/port = $gport2/" \
    "$tmp/gobgpd.toml" >"$tmp/gobgpd2.toml"
gobgpd -f "$tmp/gobgpd2.toml" -t toml --api-hosts "127.0.0.1:$api_port2" --pprof-disable >>"$tmp/gobgpd2.log" 2>&1 &
gobgpd2_pid=$!
gobgpd -f "$tmp/gobgpd.toml" -t toml --api-hosts "127.0.0.1:$api_port" --pprof-disable >>"$tmp/gobgpd.log" 2>&1 &
gobgpd_pid=$!
wait_until 20 "${G[@]}" global || { fail "gobgpd did not start"; exit 1; }
"${G[@]}" global rib add -a ipv4 198.18.5.0/24 nexthop 192.0.2.2 origin igp
"${G[@]}" global rib add -a ipv4 203.0.113.0/24 nexthop 192.0.2.2 origin igp community 65002:100
"${G[@]}" global rib add -a ipv4 192.0.2.0/24 nexthop 192.0.2.2 origin igp

focl_config ""
if "$FOCLD" -n -c "$tmp/focl.toml" >/dev/null 2>&1; then ok "focld -n accepts the policy file"; else fail "focld -n refuses the policy file"; fi
"$FOCLD" --config "$tmp/focl.toml" 2>>"$tmp/focld.log" &
focld_pid=$!
pids+=("$focld_pid")

focld_state() { focl_json peer show gobgp | jget 'd["state"]'; }
rib_count() { focl_json rib in gobgp --count | jget 'd["count"]'; }
rejected_count() { focl_json rib in gobgp --rejected --count | jget 'd["count"]'; }
best_count() { focl_json rib in gobgp --best --count | jget 'd["count"]'; }
gobgp_uptime() { "${G[@]}" neighbor 127.0.0.1 -j | jget 'd["timers"]["state"]["uptime"]'; }

if wait_until 60 output_is Established focld_state && wait_until 20 output_is 3 rib_count; then
    ok "Established; focld holds GoBGP's 3 routes in its Adj-RIB-In"
else
    fail "not Established or routes missing (focld: $(focld_state), $(rib_count) routes)"
    tail -5 "$tmp/focld.log"
    exit 1
fi

# Import: the bogon rejected but kept; the community's route gets LOCAL_PREF 200.
if [ "$(rejected_count)" = 1 ] && [ "$(best_count)" = 2 ] &&
    [ "$(focl_json rib in gobgp --rejected | jget '[r["prefix"] for r in d["routes"]]')" = "['198.18.5.0/24']" ]; then
    ok "the bogon 198.18.5.0/24 is rejected, kept in the Adj-RIB-In, not best; 2 routes best"
else
    fail "rejected $(rejected_count), best $(best_count): $(focl_json rib in gobgp)"
fi
lp=$(focl_json rib lookup 203.0.113.0/24 | jget 'd["routes"][0]["local_pref"]')
lp_in=$(focl_json rib in gobgp 203.0.113.0/24 | jget 'd["routes"][0]["local_pref"]')
if [ "$lp" = 200 ] && [ "$lp_in" = None ]; then
    ok "203.0.113.0/24 with 65002:100: LOCAL_PREF 200 after import (rib lookup), none as received (rib in)"
else
    fail "LOCAL_PREF after import $lp, as received $lp_in"
fi

# Explain names the deciding term.
ex=$(focl_json policy explain gobgp 198.18.5.0/24 | jget 'd["routes"][0]["decision"] + " / " + d["routes"][0]["decided_by"]')
t1=$(grep -n '^\[\[policy.import_std.term\]\]' "$tmp/focl.toml" | sed -n 1p | cut -d: -f1)
t2=$(grep -n '^\[\[policy.import_std.term\]\]' "$tmp/focl.toml" | sed -n 2p | cut -d: -f1)
if [ "$ex" = "reject / policy import_std term 1 (line $t1)" ]; then
    ok "focl policy explain: 198.18.5.0/24 $ex"
else
    fail "explain of the bogon: $ex"
fi
ex=$("$FOCL" "${F[@]}" policy explain gobgp 203.0.113.0/24)
if echo "$ex" | grep -q "import_std term 1 (line $t1): no match (prefix_in does not hold)" &&
    echo "$ex" | grep -q "=> ACCEPT by policy import_std term 2 (line $t2) (best path)"; then
    ok "focl policy explain: 203.0.113.0/24 skips term 1 on prefix_in and is accepted by term 2"
else
    fail "explain of the community route: $ex"
fi

# Reload: 192.0.2.0/24 joins the bogons; the Loc-RIB changes, the session stays.
flaps=$(focl_json peer show gobgp | jget 'd["flaps"]')
uptime0=$(gobgp_uptime)
focl_config ', "192.0.2.0/24"'
report=$(focl_json reload)
# The import of gobgp rejects one more route; the export to gobgp2, which had it, withdraws it.
if [ "$(echo "$report" | jget '[(c["peer"], c["direction"], c["now_rejected"], c["now_accepted"]) for c in d["policy_changed"]]')" = \
    "[('127.0.0.2 (gobgp)', 'import', 1, 0), ('127.0.0.3 (gobgp2)', 'export', 1, 0)]" ] &&
    [ "$(echo "$report" | jget 'd["reset"]')" = "[]" ]; then
    ok "focl reload: 127.0.0.2 (gobgp) import changed, 1 route now rejected; 127.0.0.3 (gobgp2) export: 1 withdrawn; no reset"
else
    fail "reload report: $report"
fi
if [ "$(rejected_count)" = 2 ] && [ "$(best_count)" = 1 ] && [ "$(focld_state)" = Established ] &&
    [ "$(focl_json peer show gobgp | jget 'd["flaps"]')" = "$flaps" ] && [ "$(gobgp_uptime)" = "$uptime0" ]; then
    ok "after the reload 192.0.2.0/24 is rejected too; the session was not reset (flaps $flaps, GoBGP uptime unchanged)"
else
    fail "after reload: rejected $(rejected_count), best $(best_count), state $(focld_state), flaps $(focl_json peer show gobgp | jget 'd["flaps"]') (was $flaps)"
fi
# And back: the text of focl reload says 1 route is accepted again.
focl_config ""
text=$("$FOCL" "${F[@]}" reload 2>&1)
if echo "$text" | grep -q "Policy: 127.0.0.2 (gobgp) import changed: 3 routes evaluated again, 1 now accepted, 0 now rejected" &&
    [ "$(rejected_count)" = 1 ] && [ "$(best_count)" = 2 ]; then
    ok "focl reload's text names the peer whose import changed and the counts; 192.0.2.0/24 is best again"
else
    fail "focl reload text: $text; rejected $(rejected_count), best $(best_count)"
fi

# A file naming an undefined set is refused whole; the running policy stays.
sed -i 's/prefix_in = "bogons"/prefix_in = "martians"/' "$tmp/focl.toml"
err=$("$FOCLD" -n -c "$tmp/focl.toml" 2>&1)
mline=$(grep -n 'prefix_in = "martians"' "$tmp/focl.toml" | cut -d: -f1)
if echo "$err" | grep -q "focl.toml:$mline: policy.import_std.term\[0\].match.prefix_in: no prefix set is called 'martians'; defined: bogons"; then
    ok "focld -n names the file, line and key of an undefined set"
else
    fail "focld -n: $err"
fi
if ! "$FOCL" "${F[@]}" reload >/dev/null 2>&1 && [ "$(rejected_count)" = 1 ]; then
    ok "focl reload refuses it and the running policy stays"
else
    fail "reload of a broken file: rejected $(rejected_count)"
fi

# Export: GoBGP 2 holds the routes focld accepted, our AS prepended and the chain's next hop.
g2_routes() {
    "${G2[@]}" neighbor 127.0.0.1 adj-in -a ipv4 -j | jget 'sorted((p, [a.get("nexthop") for a in x[0]["attrs"] if a["type"] == 3][0], [s["asns"] for a in x[0]["attrs"] if a["type"] == 2 for s in a["as_paths"]]) for p, x in d.items() if x)'
}
want2="[('192.0.2.0/24', '192.0.2.1', [[65001, 65002]]), ('203.0.113.0/24', '192.0.2.1', [[65001, 65002]])]"
if wait_until 20 output_is "$want2" g2_routes; then
    ok "GoBGP 2 gets the learned routes through the export chain: AS path 65001 65002, next hop 192.0.2.1; not the rejected bogon"
else
    fail "GoBGP 2 adj-in: $(g2_routes)"
fi

# Blackhole: a covered /32 with 65535:666 is accepted (NO_EXPORT added), an uncovered one not.
"${G[@]}" global rib add -a ipv4 203.0.113.9/32 nexthop 192.0.2.2 origin igp community 65535:666
"${G[@]}" global rib add -a ipv4 198.51.100.5/32 nexthop 192.0.2.2 origin igp community 65535:666
bh_count() { focl_json rib summary | jget 'd["peers"][0]["blackholes"]'; }
if wait_until 20 output_is 5 rib_count && [ "$(bh_count)" = 1 ] &&
    [ "$(focl_json rib in gobgp --rejected | jget 'sorted(r["prefix"] for r in d["routes"])')" = "['198.18.5.0/24', '198.51.100.5/32']" ] &&
    [ "$(focl_json rib lookup 203.0.113.9/32 | jget 'd["routes"][0]["communities"]')" = "['65535:666', 'no-export']" ]; then
    ok "blackhole: 203.0.113.9/32 (covered) accepted with NO_EXPORT added, 198.51.100.5/32 (not covered) rejected"
else
    fail "blackhole: $(rib_count) routes, $(bh_count) blackholes, rejected $(focl_json rib in gobgp --rejected | jget '[r["prefix"] for r in d["routes"]]')"
fi
if focl_json policy explain gobgp 198.51.100.5/32 | jget 'd["routes"][0]["decided_by"]' | grep -q require_covering; then
    ok "focl policy explain says the uncovered blackhole route failed require_covering"
else
    fail "explain of 198.51.100.5/32: $(focl_json policy explain gobgp 198.51.100.5/32)"
fi
# ... and it never reached GoBGP 2 (NO_EXPORT: not to eBGP).
if ! g2_routes | grep -q 203.0.113.9; then ok "the accepted blackhole route is not exported (NO_EXPORT)"; else fail "GoBGP 2 got the blackhole route: $(g2_routes)"; fi

# focl blackhole add: GoBGP receives 65535:666 and NO_EXPORT at the discard next hop.
"$FOCL" "${F[@]}" blackhole add 192.0.2.77/32 --peer gobgp >/dev/null
g_bh() {
    "${G[@]}" neighbor 127.0.0.1 adj-in 192.0.2.77/32 -a ipv4 -j | jget '[([a.get("nexthop") for a in x[0]["attrs"] if a["type"] == 3][0], sorted(c for a in x[0]["attrs"] if a["type"] == 8 for c in a["communities"])) for p, x in d.items() if x]'
}
if wait_until 20 output_is "[('192.0.2.1', [4294902426, 4294967041])]" g_bh; then
    ok "focl blackhole add: GoBGP holds 192.0.2.77/32 with 65535:666 and NO_EXPORT, next hop 192.0.2.1"
else
    fail "GoBGP's view of the blackhole route: $(g_bh)"
fi
"$FOCL" "${F[@]}" blackhole del 192.0.2.77/32 --peer gobgp >/dev/null
if wait_until 20 output_is "[]" g_bh; then ok "focl blackhole del withdraws it"; else fail "after del: $(g_bh)"; fi

interop_summary run_policy
