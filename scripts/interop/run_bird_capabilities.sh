#!/usr/bin/env bash
# Session capabilities against BIRD 2 (Debian's bird2) on loopback:
# - extended messages (RFC 8654): BIRD packs 1,500 routes that share attributes into UPDATEs
#   over 4096 bytes; focld takes them all and archives them byte for byte (bgpdump reads them);
# - ADD-PATH (RFC 7911, BIRD "add paths tx"): two paths for one prefix, both in focl rib
#   lookup with their path ids, the archive's UPDATEs as MESSAGE_AS4_ADDPATH and the snapshot's
#   as RIB_IPV4_UNICAST_ADDPATH (RFC 8050), read back by bgpdump and bgpkit-parser (the path
#   ids themselves are checked against bgpkit-parser's Rust crate in tests/capabilities.rs);
# - enhanced route refresh (RFC 7313): focl peer refresh gets BoRR, the routes, EoRR from BIRD,
#   and nothing is swept; a route BIRD no longer exports after a soft reconfiguration is gone
#   after the next refresh (BIRD 2.0.12 withdraws it explicitly between BoRR and EoRR, so the
#   sweep of routes not sent again is shown with a raw speaker in tests/capabilities.rs);
# - BGP Role (RFC 9234): customer against customer is refused with Role Mismatch (2/11) by both
#   sides; customer against provider comes up and BIRD's routes carry OTC = BIRD's AS.
# Loopback only: BIRD 127.0.0.3 (capabilities), 127.0.0.4 (role mismatch), 127.0.0.5
# (provider), to focld on 127.0.0.1, .6 and .7 (BIRD keeps a second protocol to a neighbor
# address it already has a session with idle). Exits non-zero on failure.
set -uo pipefail
# shellcheck source=scripts/interop/lib.sh
. "$(dirname "$0")/lib.sh"
interop_setup bird birdc bgpdump py:pybgpkit_parser

focld_pid=""
bird_pid=""
cleanup() {
    [ -n "$focld_pid" ] && kill "$focld_pid" 2>/dev/null
    [ -n "$bird_pid" ] && kill "$bird_pid" 2>/dev/null
    interop_cleanup
}
trap cleanup EXIT

fport=$(free_port 127.0.0.1)
F=(-s "$tmp/focld.sock")
focl_json() { "$FOCL" "${F[@]}" -j "$@"; }
B=(birdc -s "$tmp/bird.ctl")

cat >"$tmp/focl.toml" <<EOT
[global]
asn = 65001
router_id = "192.0.2.1"
listen_addr = ["127.0.0.1:$fport", "127.0.0.6:$fport", "127.0.0.7:$fport"]
control_socket = "$tmp/focld.sock"
log_level = "debug"

[[peers]]
address = "127.0.0.3"
remote_as = 65003
passive = true
add_path = "receive"

[[peers]]
address = "127.0.0.4"
remote_as = 65004
passive = true
role = "customer"

[[peers]]
address = "127.0.0.5"
remote_as = 65005
passive = true
role = "customer"

[[prefixes]]
network = "203.0.113.0/24"
next_hop = "192.0.2.1"

[archive]
enabled = true
dir = "$tmp/archive"
compression = "none"
EOT

# 1,500 /26s inside 198.18.0.0/15 with one attribute set: more than 4096 bytes of NLRI.
communities=$(python3 -c 'print("\n".join(f"    bgp_large_community.add((65003, 1, {i}));" for i in range(400)))')
statics=$(python3 -c 'print("\n".join(f"    route 198.{18 + i // 1024}.{(i % 1024) // 4}.{(i % 4) * 64}/26 blackhole;" for i in range(1500)))')
cat >"$tmp/bird.conf" <<EOT
router id 192.0.2.3;
protocol device {}
protocol static bulk { ipv4;
$statics
}
# Two routes for one prefix: ADD-PATH sends both.
protocol static path1 { ipv4; route 198.51.100.0/24 blackhole { bgp_path.prepend(65010); }; }
protocol static path2 { ipv4; route 198.51.100.0/24 blackhole { bgp_path.prepend(65020); bgp_path.prepend(65021); }; }
# 400 large communities on one route: an UPDATE of about 5 kB (BIRD puts at most about 250
# prefixes in one UPDATE, so a long attribute is what makes it large).
protocol static big { ipv4; route 198.51.102.0/24 blackhole {
$communities
}; }
# Exported until the filter below is changed to drop it (enhanced route refresh).
protocol static going { ipv4; route 198.51.101.0/24 blackhole; }
define EXPORT_GOING = 1;
filter to_focld {
    if source = RTS_BGP then reject;
    if net = 198.51.101.0/24 && EXPORT_GOING = 0 then reject;
    accept;
}
protocol bgp caps {
    local 127.0.0.3 as 65003;
    neighbor 127.0.0.1 port $fport as 65001;
    multihop;
    connect retry time 2;
    enable extended messages on;
    enable route refresh on;
    ipv4 { import all; export filter to_focld; add paths tx; };
}
protocol bgp mismatch {
    local 127.0.0.4 as 65004;
    neighbor 127.0.0.6 port $fport as 65001;
    multihop;
    connect retry time 2;
    local role customer;
    ipv4 { import all; export all; };
}
protocol bgp upstream {
    local 127.0.0.5 as 65005;
    neighbor 127.0.0.7 port $fport as 65001;
    multihop;
    connect retry time 2;
    local role provider;
    ipv4 { import all; export where net = 198.51.100.0/24; };
}
EOT

"$FOCLD" --config "$tmp/focl.toml" 2>>"$tmp/focld.log" &
focld_pid=$!
bird -f -c "$tmp/bird.conf" -s "$tmp/bird.ctl" -P "$tmp/bird.pid" >>"$tmp/bird.log" 2>&1 &
bird_pid=$!

state() { focl_json peer show "$1" | jget 'd["state"]'; }
established() { [ "$(state "$1")" = Established ]; }
v4_count() { focl_json peer show 127.0.0.3 | jget 'd["prefixes_received"]["ipv4_unicast"]'; }

if wait_until 60 established 127.0.0.3 && wait_until 30 established 127.0.0.5; then
    ok "sessions with BIRD's caps and upstream protocols are Established"
else
    fail "no sessions (caps: $(state 127.0.0.3), upstream: $(state 127.0.0.5)); focld log tail:"
    tail -20 "$tmp/focld.log"
    interop_summary "bird capabilities"
    exit 1
fi

# --- extended messages and ADD-PATH: 1,500 + 2 + 1 + 1 routes (two paths count twice).
all_routes() { [ "$(v4_count)" = 1504 ]; }
if wait_until 30 all_routes; then
    ok "focld holds BIRD's 1504 routes (1500 bulk, two paths of 198.51.100.0/24, two more)"
else
    fail "focld holds $(v4_count) routes from BIRD, expected 1504"
fi
caps=$(focl_json peer show 127.0.0.3)
for c in extended_message 'add_path(ipv4_unicast)' enhanced_route_refresh; do
    if echo "$caps" | jget "[x['negotiated'] for x in d['capabilities'] if x['name'] == '$c'] == [True]" | grep -q True; then
        ok "$c negotiated with BIRD"
    else
        fail "$c not negotiated: $(echo "$caps" | jget 'd["capabilities"]')"
    fi
done
paths=$(focl_json rib lookup 198.51.100.0/24 --all)
if echo "$paths" | jget 'sorted((r["as_path"], r["path_id"] is not None) for r in d["routes"] if r["peer"]["address"] == "127.0.0.3")' |
    grep -qF "[('65003 65010', True), ('65003 65021 65020', True)]"; then
    ok "focl rib lookup shows BIRD's two paths for 198.51.100.0/24, each with a path id"
else
    fail "the two paths are not both there: $paths"
fi

finished=$(focl_json archive rotate | jget 'd["finished"]')
file="$tmp/archive/$finished"
python3 - "$file" >"$tmp/records.txt" <<'EOP'
import struct, sys
data = open(sys.argv[1], "rb").read()
at = 0
while at + 12 <= len(data):
    ts, ty, sub, ln = struct.unpack(">IHHI", data[at:at + 12])
    body = data[at + 12 + (4 if ty == 17 else 0):at + 12 + ln]
    if ty in (16, 17) and sub in (4, 9):
        afi = struct.unpack(">H", body[10:12])[0]
        msg = body[12 + (8 if afi == 1 else 32):]
        if len(msg) > 18 and msg[18] == 2:
            print(sub, len(msg))
    at += 12 + ln
EOP
big=$(awk '$2 > 4096' "$tmp/records.txt" | wc -l)
if [ "$big" -ge 1 ]; then
    ok "the archive holds $big UPDATE(s) from BIRD over 4096 bytes (largest $(sort -k2 -n "$tmp/records.txt" | tail -1 | cut -d' ' -f2) bytes)"
else
    fail "no UPDATE over 4096 bytes in the archive: $(sort -k2 -n "$tmp/records.txt" | tail -3 | tr '\n' ' ')"
fi
if awk '$1 == 9' "$tmp/records.txt" | grep -q .; then
    ok "BIRD's UPDATEs are archived as BGP4MP MESSAGE_AS4_ADDPATH (RFC 8050 subtype 9)"
else
    fail "no MESSAGE_AS4_ADDPATH record: $(cut -d' ' -f1 "$tmp/records.txt" | sort | uniq -c | tr '\n' ' ')"
fi
announced=$(bgpdump -m "$file" 2>/dev/null | grep -c '|A|.*|198\.1[89]\.')
if [ "$announced" = 1500 ]; then
    ok "bgpdump reads the 1500 bulk announcements back from the archive"
else
    fail "bgpdump reads $announced of 1500 bulk announcements"
fi
# bgpdump prints an ADD-PATH record's path id after the prefix (BGP4MP_ET_AP).
if [ "$(bgpdump -m "$file" 2>/dev/null | grep -c '^BGP4MP_ET_AP|.*|A|127.0.0.3|65003|198.51.100.0/24|[0-9]*|')" = 2 ]; then
    ok "bgpdump reads both ADD-PATH announcements of 198.51.100.0/24 with their path ids"
else
    fail "bgpdump: $(bgpdump -m "$file" 2>/dev/null | grep '|198.51.100.0/24|' | tr '\n' ' ')"
fi
# bgpdump 1.6.2 does not print large communities; bgpkit-parser does.
large=$(python3 - "$file" <<'EOP'
import json, sys
import pybgpkit_parser
for e in pybgpkit_parser.Parser(url=sys.argv[1]):
    d = json.loads(str(e))
    if d["prefix"] == "198.51.102.0/24":
        print(len(d["communities"] or []))
EOP
)
if [ "$large" = 400 ]; then
    ok "bgpkit-parser reads 198.51.102.0/24 with its 400 large communities from the long UPDATE"
else
    fail "bgpkit-parser reads '$large' communities on 198.51.102.0/24"
fi

focl_json archive snapshot >/dev/null
# The finished snapshot file (its manifest ends in .json).
snapshot_file() { find "$tmp/archive" -type f -name '*rib.*' ! -name '*.json' ! -name '.*' | head -1; }
snapshot_done() { [ -n "$(snapshot_file)" ]; }
if wait_until 30 snapshot_done; then
    rib=$(snapshot_file)
    paths=$(python3 - "$rib" <<'EOP'
import json, sys
import pybgpkit_parser
elems = [json.loads(str(e)) for e in pybgpkit_parser.Parser(url=sys.argv[1])]
print(sorted(d["as_path"] for d in elems if d["prefix"] == "198.51.100.0/24" and d["peer_ip"] == "127.0.0.3"))
EOP
)
    if [ "$paths" = "['65003 65010', '65003 65021 65020']" ]; then
        ok "bgpkit-parser reads both paths of 198.51.100.0/24 from the snapshot's RIB_IPV4_UNICAST_ADDPATH record"
    else
        fail "bgpkit-parser reads $paths for 198.51.100.0/24 from the snapshot"
    fi
    if [ "$(bgpdump -m "$rib" 2>/dev/null | grep -c '|127.0.0.3|65003|198.51.100.0/24|[0-9]*|')" = 2 ]; then
        ok "bgpdump reads both paths of 198.51.100.0/24 with their path ids from the snapshot"
    else
        fail "bgpdump, snapshot: $(bgpdump -m "$rib" 2>/dev/null | grep '|198.51.100.0/24|' | tr '\n' ' ')"
    fi
else
    fail "no snapshot file"
fi

# --- enhanced route refresh: BoRR, routes, EoRR from BIRD; then a route BIRD stopped
# exporting (soft reconfiguration: no UPDATE for it) is swept at the next EoRR.
rr_before=$(focl_json peer show 127.0.0.3 | jget 'd["messages_received"]["route_refresh"]')
"$FOCL" "${F[@]}" peer refresh 127.0.0.3 ipv4 >/dev/null
rr_now() { focl_json peer show 127.0.0.3 | jget 'd["messages_received"]["route_refresh"]'; }
bracketed() { [ "$(rr_now)" -ge $((rr_before + 2)) ]; }
if wait_until 15 bracketed && wait_until 10 grep -q "EoRR for ipv4_unicast: 0 stale routes removed, 1504 kept" "$tmp/focld.log"; then
    ok "BIRD answered focl peer refresh with BoRR and EoRR; nothing swept, 1504 kept"
else
    fail "refresh: route-refresh messages $rr_before -> $(rr_now); log: $(grep -E 'BoRR|EoRR' "$tmp/focld.log" | tail -3)"
fi
sed -i 's/^define EXPORT_GOING = 1;/define EXPORT_GOING = 0;/' "$tmp/bird.conf"
"${B[@]}" configure soft >/dev/null
sleep 1
"$FOCL" "${F[@]}" peer refresh 127.0.0.3 ipv4 >/dev/null
gone() { [ "$(focl_json rib lookup 198.51.101.0/24 --all | jget 'len([r for r in d["routes"] if r["peer"]["address"] == "127.0.0.3"])')" = 0 ]; }
if wait_until 15 gone; then
    if grep -q "EoRR for ipv4_unicast: 1 stale routes removed, 1503 kept" "$tmp/focld.log"; then
        ok "198.51.101.0/24, no longer exported by BIRD, was swept at EoRR (RFC 7313)"
    else
        ok "198.51.101.0/24 is gone after the refresh (BIRD withdrew it itself)"
    fi
else
    fail "198.51.101.0/24 is still held after BIRD stopped exporting it and refreshed"
fi

# --- BGP Role: customer with customer: 2/11 from both sides; customer with provider: OTC.
if wait_until 20 grep -q "role mismatch: we are customer, the peer says customer, expected provider" "$tmp/focld.log"; then
    ok "focld refused BIRD's customer role with Role Mismatch"
else
    fail "focld did not log a role mismatch with 127.0.0.4"
fi
if wait_until 20 sh -c "'${B[0]}' '${B[1]}' '${B[2]}' show protocols all mismatch | grep -qi 'role mismatch'"; then
    ok "BIRD reports Role Mismatch on its side: $("${B[@]}" show protocols all mismatch | grep -i 'role mismatch' | head -1 | sed 's/^ *//')"
else
    fail "BIRD shows no role mismatch: $("${B[@]}" show protocols all mismatch | grep -iE 'error|state' | head -3 | tr '\n' ' ')"
fi
if [ "$(state 127.0.0.4)" != Established ]; then
    ok "the mismatched session stays down ($(state 127.0.0.4))"
else
    fail "the mismatched session is Established"
fi
otc=$(focl_json rib lookup 198.51.100.0/24 --all | jget '[(r["otc"], r["otc_leak"]) for r in d["routes"] if r["peer"]["address"] == "127.0.0.5"]')
if [ "$otc" = "[(65005, False)]" ]; then
    ok "the provider's route carries OTC 65005 and is no leak (RFC 9234 §5)"
else
    fail "the provider's route: (otc, leak) = $otc"
fi
if "${B[@]}" show route 203.0.113.0/24 protocol upstream 2>/dev/null | grep -q 203.0.113.0/24; then
    ok "BIRD, our provider, took focld's prefix"
else
    fail "BIRD did not take focld's prefix from its customer"
fi

kill -TERM "$focld_pid"
wait "$focld_pid"
focld_pid=""
interop_summary "bird capabilities"
