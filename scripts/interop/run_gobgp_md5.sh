#!/usr/bin/env bash
# TCP-MD5 (RFC 2385) between focld and GoBGP (Debian's gobgpd), Linux only, loopback only.
#  - same password, IPv4 (focld connects) and IPv6 (GoBGP connects): Established, routes flow;
#  - tcpdump on lo shows TCP option 19 (MD5 signature) in the SYNs of both directions;
#  - different passwords, or a password on one side only: never Established within three
#    hold times, and focld says a TCP-MD5 mismatch is the likely cause (without log flooding).
# Exits non-zero on any failure.
set -uo pipefail
# shellcheck source=scripts/interop/lib.sh
. "$(dirname "$0")/lib.sh"

if [ "$(uname -s)" != Linux ]; then
    echo "gobgp md5: TCP-MD5 needs Linux; skipped on $(uname -s)"
    exit 0
fi
interop_setup gobgpd gobgp tcpdump

# start_pair NAME FOCLD_IP GOBGP_IP FOCLD_PW GOBGP_PW FOCLD_PASSIVE
# Writes configs, starts gobgpd and focld; sets FPORT_<NAME> etc. through files in $tmp/NAME.
start_pair() {
    local name=$1 fip=$2 gip=$3 fpw=$4 gpw=$5 fpassive=$6
    local d="$tmp/$name"
    mkdir -p "$d"
    local fport gport api
    fport=$(free_port "$fip")
    gport=$(free_port "$gip")
    api=$(free_port 127.0.0.1)
    local gpassive=true
    [ "$fpassive" = true ] && gpassive=false
    local fpw_line="" gpw_line=""
    [ -n "$fpw" ] && fpw_line="password = \"$fpw\""
    [ -n "$gpw" ] && gpw_line="auth-password = \"$gpw\""
    local fl="$fip:$fport"
    [[ $fip == *:* ]] && fl="[$fip]:$fport"
    local family=ipv4
    [[ $fip == *:* ]] && family=ipv6
    local prefix="203.0.113.0/24" nh="192.0.2.1" gprefix="198.51.100.0/24" gnh="$gip"
    if [ "$family" = ipv6 ]; then prefix="2001:db8:1000::/48"; nh="2001:db8::1"; gprefix="2001:db8:2000::/48"; gnh="2001:db8::2"; fi
    cat >"$d/focl.toml" <<EOT
[global]
asn = 65001
router_id = "192.0.2.1"
listen_addr = "$fl"
control_socket = "$d/focld.sock"
log_level = "info"

[[peers]]
address = "$gip"
remote_as = 65002
remote_port = $gport
hold_time_secs = 9
connect_retry_secs = 2
passive = $fpassive
$fpw_line

[[prefixes]]
network = "$prefix"
next_hop = "$nh"
EOT
    cat >"$d/gobgpd.toml" <<EOT
[global.config]
  as = 65002
  router-id = "192.0.2.2"
  port = $gport
  local-address-list = ["$gip"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "$fip"
    peer-as = 65001
    $gpw_line
  [neighbors.transport.config]
    passive-mode = $gpassive
    local-address = "$gip"
    remote-port = $fport
  [neighbors.timers.config]
    hold-time = 9
    connect-retry = 2
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "$family-unicast"
EOT
    echo "$fport" >"$d/fport"
    echo "$gport" >"$d/gport"
    echo "$api" >"$d/api"
    gobgpd -f "$d/gobgpd.toml" -t toml --api-hosts "127.0.0.1:$api" --pprof-disable >"$d/gobgpd.log" 2>&1 &
    pids+=($!)
    wait_until 20 gobgp -u 127.0.0.1 -p "$api" global || fail "$name: gobgpd did not start"
    gobgp -u 127.0.0.1 -p "$api" global rib add -a "$family" "$gprefix" nexthop "$gnh" origin igp
    "$FOCLD" --config "$d/focl.toml" 2>"$d/focld.log" &
    pids+=($!)
    echo "$!" >"$d/focld.pid"
}

focld_show() { "$FOCL" -s "$tmp/$1/focld.sock" -j peer show "$2"; }
state_of() { focld_show "$1" "$2" | jget 'd["state"]'; }
is_established() { [ "$(state_of "$1" "$2")" = Established ]; }

# Capture the SYNs of the two matching-key sessions.
tcpdump -i lo -nn -vv -l 'tcp[tcpflags] & tcp-syn != 0 or (ip6 and ip6[13+40] & 0x02 != 0)' >"$tmp/syn.txt" 2>"$tmp/tcpdump.err" &
tcpdump_pid=$!
pids+=("$tcpdump_pid")
sleep 1

# 1. Same password: IPv4 with focld connecting, IPv6 with GoBGP connecting.
start_pair v4 127.0.0.41 127.0.0.42 "md5-Secret!" "md5-Secret!" false
start_pair v6 ::1 ::1 "md5-Secret!" "md5-Secret!" true
# 2. and 3. Mismatch and one-sided, run side by side.
start_pair diff 127.0.0.43 127.0.0.44 "key-one" "key-two" false
start_pair focldonly 127.0.0.45 127.0.0.46 "key-one" "" false
start_pair gobgponly 127.0.0.47 127.0.0.48 "" "key-two" false

for s in "v4 127.0.0.42" "v6 ::1"; do
    read -r -a args <<<"$s"
    set -- "${args[@]}"
    if wait_until 60 is_established "$1" "$2"; then
        ok "$1: same password on both sides: Established"
        rib=$("$FOCL" -s "$tmp/$1/focld.sock" -j rib in "$2" | jget 'len(d["routes"])')
        api=$(cat "$tmp/$1/api")
        fam=ipv4
        [ "$1" = v6 ] && fam=ipv6
        gin=$(gobgp -u 127.0.0.1 -p "$api" neighbor "$( [ "$1" = v6 ] && echo ::1 || echo 127.0.0.41)" adj-in -a "$fam" -j | jget 'len([p for p, x in d.items() if x])')
        if [ "$rib" = 1 ] && [ "$gin" = 1 ]; then ok "$1: routes exchanged over the signed session"; else fail "$1: routes: focld has $rib, GoBGP has $gin"; fi
    else
        fail "$1: same password but state $(state_of "$1" "$2")"
        tail -5 "$tmp/$1/focld.log"
    fi
done

# Three hold times (9 s) for the bad cases, checked all along.
bad_ok=1
end=$((SECONDS + 27))
while [ "$SECONDS" -lt "$end" ]; do
    for s in "diff 127.0.0.44" "focldonly 127.0.0.46" "gobgponly 127.0.0.48"; do
        read -r -a args <<<"$s"
        set -- "${args[@]}"
        if is_established "$1" "$2"; then bad_ok=0; fail "$1: Established despite the key mismatch"; fi
    done
    sleep 1
done
[ "$bad_ok" = 1 ] && ok "different password, password on focld only, password on GoBGP only: none Established in 3 hold times"
for s in "diff 127.0.0.44" "focldonly 127.0.0.46"; do
    read -r -a args <<<"$s"
    set -- "${args[@]}"
    hint=$(focld_show "$1" "$2" | jget 'd["hint"] or ""')
    lines=$(grep -c "password mismatch" "$tmp/$1/focld.log")
    attempts=$(focld_show "$1" "$2" | jget 'd["connect_attempts"]')
    if [[ $hint == *TCP-MD5* ]] && [ "$lines" -ge 1 ] && [ "$lines" -le 3 ]; then
        ok "$1: focl peer show hints at TCP-MD5 ($attempts attempts), log says so in $lines line(s)"
    else
        fail "$1: hint '$hint', $lines log line(s)"
    fi
done

kill "$tcpdump_pid" 2>/dev/null
wait "$tcpdump_pid" 2>/dev/null
# A SYN whose options include the MD5 signature, towards GoBGP (IPv4) and towards focld (IPv6).
gport_v4=$(cat "$tmp/v4/gport")
fport_v6=$(cat "$tmp/v6/fport")
# tcpdump prints one packet over two lines with -vv; join them first.
awk '/^[0-9]/{if (l) print l; l=$0; next} {l=l" "$0} END{print l}' "$tmp/syn.txt" >"$tmp/syn1.txt"
if grep -E "127\.0\.0\.41\.[0-9]+ > 127\.0\.0\.42\.$gport_v4: Flags \[S\]," "$tmp/syn1.txt" | grep -q md5; then
    ok "SYN focld -> GoBGP (IPv4) carries TCP option 19 (md5)"
else
    fail "no MD5 option seen in focld's SYN to GoBGP"
fi
if grep -E "::1\.[0-9]+ > ::1\.$fport_v6: Flags \[S\]," "$tmp/syn1.txt" | grep -q md5; then
    ok "SYN GoBGP -> focld (IPv6) carries TCP option 19 (md5)"
else
    fail "no MD5 option seen in GoBGP's SYN to focld"
fi

interop_summary "gobgp md5"
