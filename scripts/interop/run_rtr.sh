#!/usr/bin/env bash
# The RTR client (RFC 8210 / 6810) against Debian's stayrtr, with routes from a second focld:
# - stayrtr serves a JSON file in RTR version 1: focld synchronises and its routes are valid,
#   invalid and not found as the VRPs say (`focl rib in`, `focl rib summary`'s rov);
# - the file is edited: stayrtr re-reads it and notifies, and one route's state changes live;
# - two caches of different preference: the preferred one is used; when it dies the other
#   takes over, and when it returns it is used again;
# - every cache gone past its expire time: the data is dropped and the routes are not found;
#   a cache back brings them back (stayrtr sends expire 4 s; the debug focld these scripts run
#   accepts it with FOCLD_TEST_RTR_EXPIRE_MIN, where RFC 8210 §6 would floor it at 600 s);
# - a cache that speaks only version 0 (stayrtr -protocol 0): focld downgrades (RFC 8210 §7).
# Loopback only: focld A (the validator) on 127.0.0.1, focld B (AS65002, the routes) on
# 127.0.0.2, stayrtr on 127.0.0.1. Exits non-zero on failure.
set -uo pipefail
# shellcheck source=scripts/interop/lib.sh
. "$(dirname "$0")/lib.sh"
interop_setup stayrtr

cleanup() {
    interop_cleanup
}
trap cleanup EXIT

aport=$(free_port 127.0.0.1)
bport=$(free_port 127.0.0.2)
c1=$(free_port 127.0.0.1)
c2=$(free_port 127.0.0.1)
A=(-s "$tmp/a.sock")

one_pid=""
two_pid=""
# stayrtr NAME PORT FILE PROTOCOL: a cache, re-reading FILE every second; its PID in $NAME_pid.
stayrtr_start() {
    local m
    m=$(free_port 127.0.0.1)
    stayrtr -bind "127.0.0.1:$2" -cache "$3" -checktime=false -refresh 1 -protocol "$4" \
        -rtr.refresh 1 -rtr.retry 1 -rtr.expire 4 -metrics.addr "127.0.0.1:$m" >>"$tmp/$1.log" 2>&1 &
    pids+=($!)
    printf -v "$1_pid" '%s' "$!"
    wait_until 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$2" || fail "stayrtr $1 did not listen on $2"
}
# vrps FILE PREFIX/MAX/AS...: write the rpki-client JSON file atomically.
vrps() {
    local f=$1 r out=""
    shift
    for r in "$@"; do
        IFS=/ read -r a l m s <<<"$r"
        out+="${out:+,}{\"prefix\":\"$a/$l\",\"maxLength\":$m,\"asn\":$s}"
    done
    echo "{\"roas\":[$out]}" >"$f.new" && mv "$f.new" "$f"
}

# 203.0.113.0/24 from AS65002: valid; 198.51.100.0/24: another AS, invalid; 192.0.2.0/24: none.
vrps "$tmp/one.json" 203.0.113.0/24/24/65002 198.51.100.0/24/24/64999
# The second cache knows only 192.0.2.0/24 (for AS65002).
vrps "$tmp/two.json" 192.0.2.0/24/24/65002
stayrtr_start one "$c1" "$tmp/one.json" 1
stayrtr_start two "$c2" "$tmp/two.json" 1

cat >"$tmp/a.toml" <<EOT
[global]
asn = 65001
router_id = "192.0.2.1"
listen_addr = "127.0.0.1:$aport"
control_socket = "$tmp/a.sock"

[[peers]]
address = "127.0.0.2"
remote_as = 65002
remote_port = $bport
connect_retry_secs = 1

[[rpki.caches]]
address = "127.0.0.1"
port = $c1
preference = 10
retry_secs = 1

[[rpki.caches]]
address = "127.0.0.1"
port = $c2
preference = 20
retry_secs = 1
EOT
cat >"$tmp/b.toml" <<EOT
[global]
asn = 65002
router_id = "192.0.2.2"
listen_addr = "127.0.0.2:$bport"
control_socket = "$tmp/b.sock"

[[peers]]
address = "127.0.0.1"
remote_as = 65001
passive = true

[[prefixes]]
network = "203.0.113.0/24"

[[prefixes]]
network = "198.51.100.0/24"

[[prefixes]]
network = "192.0.2.0/24"
EOT
FOCLD_TEST_RTR_EXPIRE_MIN=2 "$FOCLD" --config "$tmp/a.toml" >"$tmp/a.log" 2>&1 &
pids+=($!)
"$FOCLD" --config "$tmp/b.toml" >"$tmp/b.log" 2>&1 &
pids+=($!)

state() { "$FOCL" "${A[@]}" -j rib lookup "$1" | jget 'd["routes"][0].get("rpki", "-")'; }
states() { echo "$(state 203.0.113.0/24) $(state 198.51.100.0/24) $(state 192.0.2.0/24)"; }
cache() { "$FOCL" "${A[@]}" -j rpki status | jget "d['caches'][$1]['$2']"; }

wait_until 30 output_is "3" bash -c "\"$FOCL\" ${A[*]} -j rib summary | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"routes\"][\"ipv4_unicast\"])'" || fail "focld A did not get B's three routes"
if wait_until 20 output_is "valid invalid not-found" states; then
    ok "synchronised in RTR version $(cache 0 version) (serial $(cache 0 serial)): valid, invalid, not found"
else
    fail "states $(states); cache $(cache 0 state)"
fi
if [ "$(cache 1 in_use)" = "False" ]; then
    ok "the less preferred cache is synchronised but not used"
else
    fail "cache 2 in use: $(cache 1 in_use)"
fi
rov=$("$FOCL" "${A[@]}" -j rib summary | jget '"%d %d %d" % (d["rov"]["valid"], d["rov"]["invalid"], d["rov"]["not_found"])')
if [ "$rov" = "1 1 1" ]; then
    ok "rib summary counts 1 valid, 1 invalid, 1 not found"
else
    fail "rib summary rov $rov"
fi

# The file changes: 198.51.100.0/24 now from AS65002. stayrtr notifies; focld asks for it.
serial=$(cache 0 serial)
vrps "$tmp/one.json" 203.0.113.0/24/24/65002 198.51.100.0/24/24/65002
if wait_until 20 output_is "valid valid not-found" states; then
    ok "an edit of the file turns 198.51.100.0/24 valid live (serial $serial -> $(cache 0 serial))"
else
    fail "after the edit: $(states)"
fi

# The preferred cache dies: the other one takes over.
kill "$one_pid"
if wait_until 20 output_is "not-found not-found valid" states; then
    ok "cache 1 gone: cache 2's VRPs in use"
else
    fail "after cache 1 died: $(states), cache 2 in use $(cache 1 in_use)"
fi
stayrtr_start one "$c1" "$tmp/one.json" 1
if wait_until 20 output_is "valid valid not-found" states; then
    ok "cache 1 back: preferred again"
else
    fail "after cache 1 came back: $(states)"
fi

# Every cache gone: the data stays until it expires (4 s), then every route is not found.
kill "$one_pid" "$two_pid"
t0=$SECONDS
if wait_until 20 output_is "not-found not-found not-found" states; then
    ok "both caches gone: the data expired after $((SECONDS - t0)) s, every route not found"
else
    fail "after both caches died: $(states)"
fi
# A cache that speaks only version 0 comes up on cache 1's port: focld downgrades.
stayrtr_start one "$c1" "$tmp/one.json" 0
if wait_until 20 output_is "valid valid not-found" states; then
    ok "a version 0 cache: focld speaks RTR version $(cache 0 version) with it and validates again"
else
    fail "with a version 0 cache: $(states), version $(cache 0 version), $(cache 0 last_error)"
fi

interop_summary rtr
