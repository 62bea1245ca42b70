#!/usr/bin/env bash
# eBGP multihop and GTSM (RFC 5082) between focld, GoBGP (Debian's gobgpd) and BIRD (bird2),
# in three network namespaces A - R - B (veth pairs, forwarding on in R, A and B route to
# each other through R). focld runs in A; GoBGP and BIRD in B (two hops from focld) and in
# R (one hop). Linux only, as root; the namespaces and their addresses (198.51.100.0/24,
# 2001:db8:a::/64, 2001:db8:b::/64) exist only while the script runs.
#  - multihop: with the peer two hops away, focld's default (multihop 1: TTL 1) never reaches
#    Established, multihop = 2 does; with GoBGP and BIRD over IPv4, with BIRD over IPv6.
#    The peers allow two hops on their side, so focld's TTL is what decides.
#  - GTSM: ttl_security on both ends comes up one hop away (GoBGP ttl-security ttl-min 255,
#    BIRD `ttl security on`, IPv4 and IPv6) and two hops away with multihop = 2 on both ends;
#    it does not come up when the peer is two hops away and focld allows one (even though
#    the peer accepts two), and focl peer show says GTSM is the likely cause.
#  - tcpdump in A: focld's SYN and SYN-ACK leave with TTL (hop limit) 255 under GTSM, and its
#    packets carry the configured TTL otherwise.
# Exits non-zero on any failure.
set -euo pipefail
# shellcheck source=scripts/interop/lib.sh
. "$(dirname "$0")/lib.sh"

if [ "$(uname -s)" != Linux ]; then
    echo "multihop gtsm: network namespaces and IP_MINTTL need Linux; skipped on $(uname -s)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "multihop gtsm: needs root (network namespaces); skipped"
    exit 0
fi
interop_setup gobgpd gobgp bird birdc tcpdump ip
started=$SECONDS

# Namespace names carry the PID, so two runs never share one.
NA="focl-mh-a-$$"
NR="focl-mh-r-$$"
NB="focl-mh-b-$$"
cleanup() {
    set +e
    interop_cleanup
    local ns
    for ns in "$NA" "$NR" "$NB"; do
        ip netns del "$ns" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 143' TERM INT

in_a() { ip netns exec "$NA" "$@"; }
in_r() { ip netns exec "$NR" "$@"; }
elapsed() { echo "$((SECONDS - started)) s"; }

# --- The network: A (a0) -- (r0) R (r1) -- (b0) B ----------------------------------------
A4=198.51.100.1
A6=2001:db8:a::1
for ns in "$NA" "$NR" "$NB"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
ip link add a0 netns "$NA" type veth peer name r0 netns "$NR"
ip link add r1 netns "$NR" type veth peer name b0 netns "$NB"
ip -n "$NA" addr add "$A4/26" dev a0
ip -n "$NA" addr add "$A6/64" dev a0 nodad
# BIRD holds one lock per neighbor address: a BIRD with several sessions to focld needs a
# focld address for each (focld's local_address).
for a in 5 6 7; do ip -n "$NA" addr add "198.51.100.$a/26" dev a0; done
for a in 5 6; do ip -n "$NA" addr add "2001:db8:a::$a/64" dev a0 nodad; done
# R: its own address towards A, and one per peer that runs in R (one hop from focld).
ip -n "$NR" addr add 198.51.100.2/26 dev r0
for a in 3 4; do ip -n "$NR" addr add "198.51.100.$a/26" dev r0; done
ip -n "$NR" addr add 2001:db8:a::2/64 dev r0 nodad
ip -n "$NR" addr add 2001:db8:a::3/64 dev r0 nodad
ip -n "$NR" addr add 198.51.100.65/26 dev r1
ip -n "$NR" addr add 2001:db8:b::1/64 dev r1 nodad
# B: one address per peer (two hops from focld).
for a in 66 67 68 69 70 71 72; do ip -n "$NB" addr add "198.51.100.$a/26" dev b0; done
for a in 2 3 4 5; do ip -n "$NB" addr add "2001:db8:b::$a/64" dev b0 nodad; done
for pair in "$NA a0" "$NR r0" "$NR r1" "$NB b0"; do
    read -r ns dev <<<"$pair"
    ip -n "$ns" link set "$dev" up
done
in_r sysctl -qw net.ipv4.ip_forward=1
in_r sysctl -qw net.ipv6.conf.all.forwarding=1
ip -n "$NA" route add 198.51.100.64/26 via 198.51.100.2
ip -n "$NA" -6 route add 2001:db8:b::/64 via 2001:db8:a::2
ip -n "$NB" route add 198.51.100.0/26 via 198.51.100.65
ip -n "$NB" -6 route add 2001:db8:a::/64 via 2001:db8:b::1
# reaches ADDRESS: from A, a TCP connection to a closed port of ADDRESS is refused (no ping here).
reaches() {
    in_a python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.settimeout(1)
try:
    s.connect((sys.argv[1], 9))
except ConnectionRefusedError:
    sys.exit(0)
except OSError:
    sys.exit(1)' "$1"
}
if wait_until 10 reaches 198.51.100.66 && wait_until 10 reaches 2001:db8:b::2; then
    ok "A reaches B through the router, IPv4 and IPv6 ($(elapsed))"
else
    fail "A does not reach B through the router"
    exit 1
fi

# Background processes are started with `ip netns exec` itself (it becomes the process),
# never through a shell function, so the PIDs kept for the cleanup are the daemons'.

# --- Capture what focld sends: every TCP packet of port 179 leaving A ---------------------
ip netns exec "$NA" tcpdump -i a0 -Q out -nn -v -l -s 160 "tcp port 179" \
    >"$tmp/a0.txt" 2>"$tmp/tcpdump.err" &
tcpdump_pid=$!
pids+=("$tcpdump_pid")
wait_until 10 grep -q "listening on" "$tmp/tcpdump.err" || fail "tcpdump did not start"

# --- focld in A: one peer per case ----------------------------------------------------------
# peer ADDRESS AS LOCAL_ADDRESS EXTRA...: a [[peers]] entry.
peer() {
    local addr=$1 as=$2 local=$3
    shift 3
    printf '\n[[peers]]\naddress = "%s"\nremote_as = %s\nlocal_address = "%s"\n' "$addr" "$as" "$local"
    printf 'hold_time_secs = 9\nconnect_retry_secs = 2\n'
    local line
    for line in "$@"; do echo "$line"; done
}
{
    cat <<EOT
[global]
asn = 65001
router_id = "$A4"
listen_addr = "[::]:179"
control_socket = "$tmp/focld.sock"
log_level = "info"
EOT
    # multihop, peers in B that allow two hops on their side
    peer 198.51.100.66 65002 "$A4"                      # GoBGP, focld's default TTL 1
    peer 198.51.100.67 65002 "$A4" "multihop = 2"       # GoBGP
    peer 198.51.100.68 65002 "$A4"                      # BIRD, TTL 1
    peer 198.51.100.69 65002 198.51.100.5 "multihop = 2" # BIRD
    peer 2001:db8:b::2 65002 "$A6" "multihop = 2"       # BIRD over IPv6
    peer 2001:db8:b::3 65002 2001:db8:a::5              # BIRD over IPv6, TTL 1
    # GTSM one hop away, peers in R
    peer 198.51.100.3 65003 "$A4" "ttl_security = true" "passive = true" # GoBGP connects: SYN-ACK
    peer 198.51.100.4 65003 "$A4" "ttl_security = true"                  # BIRD
    peer 2001:db8:a::3 65003 "$A6" "ttl_security = true"                 # BIRD over IPv6
    # GTSM two hops away, peers in B
    peer 198.51.100.70 65002 198.51.100.6 "ttl_security = true"                # BIRD allows 2 hops, focld 1
    peer 198.51.100.71 65002 "$A4" "ttl_security = true"                        # GoBGP allows 2 hops, focld 1
    peer 198.51.100.72 65002 198.51.100.7 "ttl_security = true" "multihop = 2" # BIRD, both allow 2 hops
    peer 2001:db8:b::4 65002 2001:db8:a::6 "ttl_security = true"               # BIRD over IPv6, focld 1
} >"$tmp/focl.toml"
ip netns exec "$NA" "$FOCLD" --config "$tmp/focl.toml" 2>"$tmp/focld.log" &
pids+=($!)
F=("$FOCL" -s "$tmp/focld.sock")
wait_until 10 "${F[@]}" -j peer list || fail "focld did not start"

# --- GoBGP: one gobgpd per address (GoBGP keys neighbors by address) ------------------------
# gobgp_start NS ADDRESS AS API_PORT NEIGHBOR_EXTRA
gobgp_start() {
    local ns=$1 addr=$2 as=$3 api=$4 extra=$5
    local d="$tmp/gobgp-$addr"
    mkdir -p "$d"
    cat >"$d/gobgpd.toml" <<EOT
[global.config]
  as = $as
  router-id = "$addr"
  port = 179
  local-address-list = ["$addr"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "$A4"
    peer-as = 65001
  [neighbors.transport.config]
    local-address = "$addr"
  [neighbors.timers.config]
    hold-time = 9
    connect-retry = 2
$extra
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
EOT
    ip netns exec "$ns" gobgpd -f "$d/gobgpd.toml" -t toml --api-hosts "127.0.0.1:$api" --pprof-disable \
        >"$d/gobgpd.log" 2>&1 &
    pids+=($!)
}
MULTIHOP2='  [neighbors.ebgp-multihop.config]
    enabled = true
    multihop-ttl = 2'
gobgp_start "$NB" 198.51.100.66 65002 50051 "$MULTIHOP2"
gobgp_start "$NB" 198.51.100.67 65002 50052 "$MULTIHOP2"
gobgp_start "$NR" 198.51.100.3 65003 50051 '  [neighbors.ttl-security.config]
    enabled = true
    ttl-min = 255'
gobgp_start "$NB" 198.51.100.71 65002 50053 '  [neighbors.ttl-security.config]
    enabled = true
    ttl-min = 254'

# --- BIRD: one per namespace, one protocol per case --------------------------------------
# bird_proto NAME LOCAL NEIGHBOR AS OPTIONS
bird_proto() {
    local fam=ipv4
    [[ $2 == *:* ]] && fam=ipv6
    # strict bind: GoBGP listens on some addresses of the namespace, so no wildcard listener.
    cat <<EOT
protocol bgp $1 {
    local $2 as $4;
    strict bind yes;
    neighbor $3 as 65001;
    $5
    hold time 9; keepalive time 3;
    connect delay time 1; connect retry time 2; error wait time 1, 4;
    $fam { import all; export none; };
}
EOT
}
cat >"$tmp/bird-b.conf" <<EOT
log stderr all;
router id 198.51.100.66;
protocol device { }
$(bird_proto mh_ttl1 198.51.100.68 "$A4" 65002 "multihop 2;")
$(bird_proto mh_ttl2 198.51.100.69 198.51.100.5 65002 "multihop 2;")
$(bird_proto mh6_ttl2 2001:db8:b::2 "$A6" 65002 "multihop 2;")
$(bird_proto mh6_ttl1 2001:db8:b::3 2001:db8:a::5 65002 "multihop 2;")
$(bird_proto gtsm_far 198.51.100.70 198.51.100.6 65002 "multihop 2; ttl security on;")
$(bird_proto gtsm_far_ok 198.51.100.72 198.51.100.7 65002 "multihop 2; ttl security on;")
$(bird_proto gtsm6_far 2001:db8:b::4 2001:db8:a::6 65002 "multihop 2; ttl security on;")
EOT
cat >"$tmp/bird-r.conf" <<EOT
log stderr all;
router id 198.51.100.2;
protocol device { }
$(bird_proto gtsm_near 198.51.100.4 "$A4" 65003 "ttl security on;")
$(bird_proto gtsm6_near 2001:db8:a::3 "$A6" 65003 "ttl security on;")
EOT
ip netns exec "$NB" bird -f -c "$tmp/bird-b.conf" -s "$tmp/bird-b.ctl" -P "$tmp/bird-b.pid" >"$tmp/bird-b.log" 2>&1 &
pids+=($!)
ip netns exec "$NR" bird -f -c "$tmp/bird-r.conf" -s "$tmp/bird-r.ctl" -P "$tmp/bird-r.pid" >"$tmp/bird-r.log" 2>&1 &
pids+=($!)

state_of() { "${F[@]}" -j peer show "$1" | jget 'd["state"]' 2>/dev/null || echo unknown; }
is_established() { [ "$(state_of "$1")" = Established ]; }

# --- Sessions that must come up ----------------------------------------------------------
up_cases=(
    "198.51.100.67 multihop = 2, GoBGP two hops away"
    "198.51.100.69 multihop = 2, BIRD two hops away"
    "2001:db8:b::2 multihop = 2, BIRD two hops away over IPv6"
    "198.51.100.3 GTSM, GoBGP one hop away (GoBGP connects)"
    "198.51.100.4 GTSM, BIRD one hop away"
    "2001:db8:a::3 GTSM, BIRD one hop away over IPv6"
    "198.51.100.72 GTSM with multihop = 2 on both ends, BIRD two hops away"
)
down_cases=(
    "198.51.100.66 default multihop (TTL 1), GoBGP two hops away"
    "198.51.100.68 default multihop (TTL 1), BIRD two hops away"
    "2001:db8:b::3 default multihop (hop limit 1), BIRD two hops away over IPv6"
    "198.51.100.70 GTSM, BIRD two hops away"
    "198.51.100.71 GTSM, GoBGP two hops away"
    "2001:db8:b::4 GTSM, BIRD two hops away over IPv6"
)
for c in "${up_cases[@]}"; do
    addr=${c%% *}
    if wait_until 45 is_established "$addr"; then
        ok "${c#* }: Established ($(elapsed))"
    else
        fail "${c#* }: state $(state_of "$addr") ($(elapsed))"
    fi
done

# --- Sessions that must not: watched for three hold times --------------------------------
end=$((SECONDS + 27))
declare -A came_up=()
while [ "$SECONDS" -lt "$end" ]; do
    for c in "${down_cases[@]}"; do
        addr=${c%% *}
        if is_established "$addr"; then came_up[$addr]=1; fi
    done
    sleep 1
done
for c in "${down_cases[@]}"; do
    addr=${c%% *}
    if [ -n "${came_up[$addr]:-}" ]; then
        fail "${c#* }: reached Established"
    else
        ok "${c#* }: never Established in 27 s, now $(state_of "$addr") ($(elapsed))"
    fi
done
for addr in 198.51.100.70 198.51.100.71 2001:db8:b::4; do
    show=$("${F[@]}" -j peer show "$addr")
    likely=$(echo "$show" | jget 'd.get("gtsm_likely_cause")')
    hint=$(echo "$show" | jget 'd["hint"] or ""')
    if [ "$likely" = True ] && [[ $hint == *GTSM* ]]; then
        ok "$addr: focl peer show says GTSM is the likely cause"
    else
        fail "$addr: gtsm_likely_cause $likely, hint '$hint'"
    fi
done
for addr in 198.51.100.70 2001:db8:b::4; do
    lines=$(grep -c "neighbor $addr: connection from $addr refused: its SYN arrived with TTL 254" "$tmp/focld.log" || true)
    if [ "$lines" -ge 1 ] && [ "$lines" -le 2 ]; then
        ok "$addr: focld logs the SYNs that came with TTL 254 in $lines line(s), not once per attempt"
    else
        fail "$addr: $lines log lines about the low TTL of its SYNs"
    fi
done
if "${F[@]}" peer show 198.51.100.70 | grep -q "Hint: .*GTSM"; then
    ok "the text of focl peer show has the GTSM hint"
else
    fail "no GTSM hint in the text of focl peer show"
fi
show=$("${F[@]}" -j peer show 198.51.100.4)
if [ "$(echo "$show" | jget 'd["gtsm_likely_cause"]')" = False ]; then
    ok "no GTSM hint for an Established GTSM session"
else
    fail "GTSM hint on an Established session: $show"
fi

# --- The packets focld sent ------------------------------------------------------------------
kill "$tcpdump_pid" 2>/dev/null || true
wait "$tcpdump_pid" 2>/dev/null || true
# With -v tcpdump prints an IPv4 packet over two lines; join them. Segments with data
# (Flags [P.]) are BGP messages; bare ACKs and RSTs of closed connections (TIME_WAIT) leave
# from the kernel's own socket with the system's TTL and are not looked at.
awk '/^[0-9]/{if (l) print l; l=$0; next} {l=l" "$0} END{print l}' "$tmp/a0.txt" >"$tmp/a0-1.txt"
# sent PATTERN: the packets whose line matches PATTERN (an ERE).
sent() { grep -E "$1" "$tmp/a0-1.txt" || true; }
# all_with TTL_WORD VALUE LINES: every line has it, and there is at least one.
all_with() {
    [ -n "$3" ] && ! echo "$3" | grep -qvE "$1 $2[,)]"
}
check_ttl() {
    local what=$1 word=$2 value=$3 pattern=$4 lines
    lines=$(sent "$pattern")
    if all_with "$word" "$value" "$lines"; then
        ok "$what: $(echo "$lines" | wc -l) packet(s), all with $word $value"
    else
        fail "$what: expected $word $value, got: $(echo "$lines" | grep -oE "$word [0-9]+" | sort | uniq -c | tr '\n' ' ')"
    fi
}
check_ttl "GTSM: focld's SYN to BIRD one hop away" ttl 255 "> 198\.51\.100\.4\.179: Flags \[S\],"
check_ttl "GTSM: focld's SYN-ACK to GoBGP one hop away" ttl 255 "198\.51\.100\.1\.179 > 198\.51\.100\.3\.[0-9]+: Flags \[S\.\],"
check_ttl "GTSM: focld's BGP messages to GoBGP one hop away" ttl 255 "> 198\.51\.100\.3\.[0-9]+: Flags \[P\.\],"
check_ttl "GTSM over IPv6: focld's SYN and SYN-ACK to BIRD one hop away" hlim 255 \
    "2001:db8:a::1\.[0-9]+ > 2001:db8:a::3\.[0-9]+: Flags \[S\.?\],"
check_ttl "multihop = 2: focld's SYN to GoBGP" ttl 2 "> 198\.51\.100\.67\.179: Flags \[S\],"
check_ttl "multihop = 2: focld's BGP messages to BIRD" ttl 2 \
    "198\.51\.100\.5\.[0-9]+ > 198\.51\.100\.69\.[0-9]+: Flags \[P\.\],"
check_ttl "multihop = 2 over IPv6: focld's BGP messages to BIRD" hlim 2 \
    "2001:db8:a::1\.[0-9]+ > 2001:db8:b::2\.[0-9]+: Flags \[P\.\],"
check_ttl "default multihop: focld's SYN to GoBGP two hops away" ttl 1 "> 198\.51\.100\.66\.179: Flags \[S\],"
check_ttl "default multihop: focld's BGP messages (OPEN) to BIRD two hops away" ttl 1 \
    "198\.51\.100\.1\.[0-9]+ > 198\.51\.100\.68\.[0-9]+: Flags \[P\.\],"

if grep -qiE "panicked|cannot set" "$tmp/focld.log"; then
    fail "focld logged a panic or a socket option it could not set"
    grep -iE "panicked|cannot set" "$tmp/focld.log" | head -5
fi
echo "multihop gtsm: took $(elapsed)"
interop_summary "multihop gtsm"
