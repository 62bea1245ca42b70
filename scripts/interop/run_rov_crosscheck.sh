#!/usr/bin/env bash
# Route origin validation (RFC 6811) cross-checked against BIRD 2 (Debian's bird2) on real full
# tables: the same VRPs and the same routes give the same valid / invalid / not-found counts in
# focld (`focl rib summary`'s rov) and in BIRD (`roa_check` over its roa4/roa6 tables).
# - Routes: scripts/bench/sender sends the largest peer's IPv4 table of
#   tests/data/mrt/routeviews.route-views.jinx.ribs.1401487200.bz2 (RouteViews, 2014) and one
#   peer's IPv6 table of tests/data/mrt/hask-mrt.rib.v6.20150922.1200.bz2 to each receiver.
# - VRPs: made from every prefix and origin of both files (seeded, so every run is the same):
#   of 60 % of the prefixes, most get a VRP for their own origin at their length, some one
#   for another AS, some a covering VRP whose maxLength is too short, and a few AS 0; a route
#   whose path ends in an AS_SET has no origin (never valid) in both implementations. The same
#   VRPs go to focld as a [[rpki.files]] JSON file and to BIRD as static roa4/roa6 routes.
# Loopback only: focld on 127.0.0.1, BIRD on 127.0.0.2, the sender from 127.0.1.1 (IPv4
# table) and 127.0.1.2 (IPv6 table). Exits non-zero on failure.
set -uo pipefail
# shellcheck source=scripts/interop/lib.sh
. "$(dirname "$0")/lib.sh"
interop_setup bird birdc bgpdump

cleanup() {
    interop_cleanup
}
trap cleanup EXIT

rib4=tests/data/mrt/routeviews.route-views.jinx.ribs.1401487200.bz2
rib6=tests/data/mrt/hask-mrt.rib.v6.20150922.1200.bz2
(cd scripts/bench/sender && cargo build --release --quiet) || exit 1
sender=$repo/scripts/bench/sender/target/release/bench-sender

# The VRPs, in both forms.
{ bgpdump -m "$rib4"; bgpdump -m "$rib6"; } 2>/dev/null | awk -F'|' '{print $6, $7}' >"$tmp/routes.txt"
python3 - "$tmp/routes.txt" "$tmp/vrps.json" "$tmp/roas4.conf" "$tmp/roas6.conf" <<'PY'
import ipaddress, json, random, sys
src, out_json, out4, out6 = sys.argv[1:]
random.seed(18)
origin = {}
for line in open(src):
    parts = line.split()
    if len(parts) < 2 or parts[-1].startswith("{"):
        continue
    origin.setdefault(parts[0], int(parts[-1]))
vrps = set()
for prefix in sorted(origin):
    net = ipaddress.ip_network(prefix, strict=False)
    r = random.random()
    if r >= 0.6:
        continue
    r = random.random()
    if r < 0.65:
        vrps.add((str(net), net.prefixlen, origin[prefix]))
    elif r < 0.9:
        vrps.add((str(net), net.prefixlen, 64496 + random.randrange(500)))
    elif r < 0.97 and net.prefixlen > 8:
        # A covering VRP of the right origin whose maxLength stops short of this prefix.
        cover = net.supernet(new_prefix=max(8, net.prefixlen - 4))
        vrps.add((str(cover), net.prefixlen - 1, origin[prefix]))
    else:
        vrps.add((str(net), net.prefixlen, 0))
vrps = sorted(vrps)
json.dump({"roas": [{"prefix": p, "maxLength": m, "asn": a} for p, m, a in vrps]}, open(out_json, "w"))
with open(out4, "w") as f4, open(out6, "w") as f6:
    for p, m, a in vrps:
        (f6 if ":" in p else f4).write("  route %s max %d as %d;\n" % (p, m, a))
print("VRPs: %d from %d prefixes" % (len(vrps), len(origin)))
PY
[ -s "$tmp/vrps.json" ] || { fail "no VRPs written"; interop_summary rov_crosscheck; exit; }

fport=$(free_port 127.0.0.1)
bport=$(free_port 127.0.0.2)
F=(-s "$tmp/focld.sock")
focl_json() { "$FOCL" "${F[@]}" -j "$@"; }
B=(birdc -s "$tmp/bird.ctl")

cat >"$tmp/focl.toml" <<EOT
[global]
asn = 65000
router_id = "192.0.2.1"
listen_addr = "127.0.0.1:$fport"
control_socket = "$tmp/focld.sock"

[[peers]]
address = "127.0.1.1"
remote_as = 64512
passive = true

[[peers]]
address = "127.0.1.2"
remote_as = 64512
passive = true

[[rpki.files]]
path = "$tmp/vrps.json"
EOT
{
    printf 'router id 192.0.2.2;\nprotocol device {}\nroa4 table r4;\nroa6 table r6;\n'
    printf 'protocol static roas4 { roa4 { table r4; };\n'
    cat "$tmp/roas4.conf"
    printf '}\nprotocol static roas6 { roa6 { table r6; };\n'
    cat "$tmp/roas6.conf"
    printf '}\ntemplate bgp feed {\n  local 127.0.0.2 port %s as 65000;\n  multihop;\n  passive;\n' "$bport"
    printf '  ipv4 { import all; export none; };\n  ipv6 { import all; export none; };\n}\n'
    printf 'protocol bgp v4 from feed { neighbor 127.0.1.1 as 64512; }\n'
    printf 'protocol bgp v6 from feed { neighbor 127.0.1.2 as 64512; }\n'
} >"$tmp/bird.conf"

"$FOCLD" --config "$tmp/focl.toml" >"$tmp/focld.log" 2>&1 &
pids+=($!)
bird -f -c "$tmp/bird.conf" -s "$tmp/bird.ctl" -P "$tmp/bird.pid" >"$tmp/bird.log" 2>&1 &
pids+=($!)
wait_until 20 test -S "$tmp/focld.sock" || fail "focld did not start"
wait_until 60 test -S "$tmp/bird.ctl" || fail "BIRD did not start: $(tail -3 "$tmp/bird.log")"
# BIRD loads its static ROAs before it answers anything else: the senders wait for it.
roas=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["roas"]))' "$tmp/vrps.json")
bird_routes() { "${B[@]}" show protocols all 2>/dev/null | awk '$1 == "Routes:" {t += $2} END {print t + 0}'; }
wait_until 120 output_is "$roas" bird_routes || fail "BIRD loaded $(bird_routes) of $roas ROAs"
echo "ROAs loaded in BIRD after $SECONDS s"

# Both tables to both receivers (the sender's sessions come from 127.0.1.1 and .2).
for target in "127.0.0.1:$fport" "127.0.0.2:$bport"; do
    tag=${target%%:*}
    "$sender" "$rib4" "$target" 1 1 90 >"$tmp/sender4-$tag.out" 2>&1 &
    pids+=($!)
done
wait_until 120 grep -q '^dropped:' "$tmp/sender4-127.0.0.1.out" || fail "the IPv4 sender did not start"
want4=$(awk '/^workload:/ {print $2}' "$tmp/sender4-127.0.0.1.out")
for target in "127.0.0.1:$fport" "127.0.0.2:$bport"; do
    tag=${target%%:*}
    # The IPv6 table's session comes from 127.0.1.2.
    SENDER_V6=1 SENDER_FIRST=2 "$sender" "$rib6" "$target" 1 1 90 >"$tmp/sender6-$tag.out" 2>&1 &
    pids+=($!)
done
wait_until 120 grep -q '^dropped:' "$tmp/sender6-127.0.0.1.out" || fail "the IPv6 sender did not start"
want6=$(awk '/^workload:/ {print $2}' "$tmp/sender6-127.0.0.1.out")
echo "workload: $want4 IPv4 and $want6 IPv6 routes to each receiver"

focld_routes() { focl_json rib summary | jget 'd["routes"]["ipv4_unicast"] + d["routes"]["ipv6_unicast"]'; }
total=$((want4 + want6))
if wait_until 300 output_is "$total" focld_routes; then
    ok "focld holds all $total routes"
else
    fail "focld holds $(focld_routes) of $total routes"
fi
# BIRD's static ROA protocols count their routes too.
if wait_until 120 output_is "$((total + roas))" bird_routes; then
    ok "BIRD holds all $total routes and $roas ROAs"
else
    fail "BIRD holds $(bird_routes) of $((total + roas)) routes and ROAs"
fi
echo "all routes in both after $SECONDS s"

# focld's counts, once every route is validated (the VRPs were read before the routes came).
read -r fv fin fn < <(focl_json rib summary | jget '"%d %d %d" % (d["rov"]["valid"], d["rov"]["invalid"], d["rov"]["not_found"])')
bird_count() {
    "${B[@]}" show route table "$1" where "roa_check($2, net, bgp_path.last) = $3" count |
        awk '/routes for/ {print $1}'
}
bv=$(($(bird_count master4 r4 ROA_VALID) + $(bird_count master6 r6 ROA_VALID)))
bi=$(($(bird_count master4 r4 ROA_INVALID) + $(bird_count master6 r6 ROA_INVALID)))
bn=$(($(bird_count master4 r4 ROA_UNKNOWN) + $(bird_count master6 r6 ROA_UNKNOWN)))
echo "focld: valid $fv, invalid $fin, not-found $fn"
echo "BIRD:  valid $bv, invalid $bi, not-found $bn"
if [ "$fv" -gt 0 ] && [ "$fin" -gt 0 ] && [ "$fn" -gt 0 ]; then
    ok "every state occurs"
else
    fail "a state never occurs"
fi
if [ "$((fv + fin + fn))" = "$total" ]; then
    ok "focld validated every route"
else
    fail "focld's counts add up to $((fv + fin + fn)), not $total"
fi
if [ "$fv $fin $fn" = "$bv $bi $bn" ]; then
    ok "focld and BIRD agree on every count"
else
    fail "the counts differ"
fi

interop_summary rov_crosscheck
