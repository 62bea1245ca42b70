#!/usr/bin/env bash
# Graceful restart's Hard Reset (RFC 8538 §3) from a real peer: FRR 8.4 (Debian's frr) with
# graceful restart and the N bit negotiated with focld sends Cease / Hard Reset (6/9) on
# `clear bgp`, and focld flushes its routes at once instead of keeping them stale; a plain
# session loss (bgpd killed) keeps them stale instead, for the restart time.
# (GoBGP 3.10 sends Cease / Administrative Reset even with the N bit, which is a restart:
# scripts/interop/run_gr.sh.)
# Loopback only: focld on 127.0.0.1, FRR's bgpd on 127.0.0.4 (zebra for it, no FIB).
# Exits non-zero on failure.
set -uo pipefail
# shellcheck source=scripts/interop/lib.sh
. "$(dirname "$0")/lib.sh"
interop_setup vtysh

[ -x /usr/lib/frr/bgpd ] || { echo "run_gr_frr: FRR's bgpd (Debian frr) is not installed"; exit 1; }
frr_pids=()
cleanup() {
    [ ${#frr_pids[@]} -gt 0 ] && kill -9 "${frr_pids[@]}" 2>/dev/null
    interop_cleanup
}
trap cleanup EXIT

fport=$(free_port 127.0.0.1)
bport=$(free_port 127.0.0.4)
F=(-s "$tmp/focld.sock")
d=$tmp/frr
mkdir -p "$d"
chown frr:frr "$d"

cat >"$tmp/focl.toml" <<EOT
[global]
asn = 65001
router_id = "192.0.2.1"
listen_addr = "127.0.0.1:$fport"
control_socket = "$tmp/focld.sock"

[[peers]]
address = "127.0.0.4"
remote_as = 65004
remote_port = $bport
connect_retry_secs = 1
graceful_restart = "aware"
restart_time_secs = 60
EOT
cat >"$d/bgpd.conf" <<EOT
frr defaults traditional
hostname frr-gr
!
router bgp 65004
 bgp router-id 192.0.2.4
 no bgp ebgp-requires-policy
 no bgp network import-check
 no bgp default ipv4-unicast
 bgp graceful-restart
 bgp graceful-restart notification
 bgp graceful-restart restart-time 60
 neighbor 127.0.0.1 remote-as 65001
 neighbor 127.0.0.1 port $fport
 neighbor 127.0.0.1 passive
 address-family ipv4 unicast
  network 198.51.100.0/24
  network 203.0.113.0/24
  neighbor 127.0.0.1 activate
 exit-address-family
!
EOT
printf 'hostname frr-gr\n' >"$d/zebra.conf"
chown frr:frr "$d"/*.conf

start_frr() {
    /usr/lib/frr/zebra -d -u frr -g frr -z "$d/zserv.api" --vty_socket "$d" -i "$d/zebra.pid" -f "$d/zebra.conf" \
        >>"$tmp/zebra.log" 2>&1
    wait_until 10 test -S "$d/zserv.api" || fail "zebra did not start"
    rm -f "$d/bgpd.pid"
    /usr/lib/frr/bgpd -d -u frr -g frr -p "$bport" -l 127.0.0.4 -z "$d/zserv.api" --vty_socket "$d" \
        -i "$d/bgpd.pid" -f "$d/bgpd.conf" >>"$tmp/frr-bgpd.log" 2>&1
    wait_until 10 test -s "$d/bgpd.pid" || fail "bgpd did not start"
    frr_pids=("$(cat "$d/bgpd.pid")" "$(cat "$d/zebra.pid")")
}
start_frr
"$FOCLD" --config "$tmp/focl.toml" >"$tmp/focld.log" 2>&1 &
pids+=($!)

peer() { "$FOCL" "${F[@]}" -j peer show 127.0.0.4; }
state() { peer | jget 'd["state"]'; }
routes() { "$FOCL" "${F[@]}" -j rib in 127.0.0.4 | jget 'len(d["routes"])'; }
stale() { "$FOCL" "${F[@]}" -j rib in 127.0.0.4 | jget 'sum(1 for r in d["routes"] if r["stale"])'; }
caps() { peer | jget '" ".join(c["name"] for c in d["capabilities"] if c["negotiated"])'; }

if wait_until 60 output_is 2 routes; then
    ok "FRR's two routes in focld"
else
    fail "focld has $(routes) of FRR's routes; state $(state)"
fi
negotiated=$(caps)
case " $negotiated " in
*" graceful_notification "*) ok "graceful restart with the N bit negotiated ($negotiated)" ;;
*) fail "the N bit is not negotiated: $negotiated" ;;
esac

# clear bgp: FRR sends Cease / Hard Reset; focld flushes at once, nothing kept stale.
vtysh --vty_socket "$d" -d bgpd -c "clear bgp 127.0.0.1" >/dev/null 2>&1
if wait_until 10 grep -q 'Hard Reset' "$tmp/focld.log"; then
    ok "FRR's clear bgp arrives as $(grep -o 'Cease / Hard Reset[^"]*' "$tmp/focld.log" | head -1)"
else
    fail "no Hard Reset in focld's log: $(grep -i 'notification' "$tmp/focld.log" | tail -2)"
fi
# Right after the reset the routes are gone or already back fresh, never stale.
if [ "$(stale 2>/dev/null || echo 0)" = 0 ]; then
    ok "after the Hard Reset no route is kept stale"
else
    fail "$(stale) routes stale after a Hard Reset"
fi
if wait_until 60 output_is 2 routes; then
    ok "the session comes back with both routes"
else
    fail "after the reset: $(routes) routes"
fi

# bgpd killed: no NOTIFICATION, the session ends with the TCP connection: a restart, the
# routes stay, stale.
kill -9 "${frr_pids[0]}"
if wait_until 20 output_is 2 stale; then
    ok "bgpd killed: both routes kept stale for the restart time"
else
    fail "after bgpd died: $(routes) routes, $(stale) stale"
fi

interop_summary gr_frr
