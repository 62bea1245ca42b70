# Shared by the interop scripts (sourced, not run): the repo's binaries, a temporary
# directory and background processes cleaned up on exit, check counting and polling helpers.
# Everything here talks to loopback only.
# shellcheck shell=bash

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
repo=$(pwd)

# Build focld/focl unless FOCLD/FOCL name binaries; install missing test dependencies.
# $@: commands or Python modules (prefixed "py:") the script needs.
interop_setup() {
    local need missing=0
    for need in "$@"; do
        case $need in
        py:*) python3 -c "import ${need#py:}" 2>/dev/null || missing=1 ;;
        *) command -v "$need" >/dev/null 2>&1 || missing=1 ;;
        esac
    done
    if [ "$missing" = 1 ]; then
        scripts/install-test-deps || exit 1
    fi
    if [ -z "${FOCLD:-}" ]; then
        cargo build --bins --quiet || exit 1
    fi
    FOCLD=${FOCLD:-$repo/target/debug/focld}
    FOCL=${FOCL:-$repo/target/debug/focl}
    tmp=$(mktemp -d "/tmp/focl-interop.XXXXXX")
    trap interop_cleanup EXIT
}

pids=()
passed=0
failed=0

# Kill what the script started; KEEP=1 keeps the temporary directory for a post-mortem.
interop_cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    if [ -n "${KEEP:-}" ]; then echo "files kept in $tmp"; else rm -rf "$tmp"; fi
}

ok() {
    echo "ok: $*"
    passed=$((passed + 1))
}

fail() {
    echo "FAIL: $*"
    failed=$((failed + 1))
}

# The closing line ("NAME: N passed, M failed") and the exit status.
interop_summary() {
    echo "$1: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# A free TCP port on the given loopback address (127.0.0.1 by default, or ::1).
free_port() {
    python3 -c 'import socket,sys
a = sys.argv[1]
s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET)
s.bind((a, 0))
print(s.getsockname()[1])' "${1:-127.0.0.1}"
}

# jget EXPR: print the Python expression EXPR over the JSON document `d` on stdin.
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# wait_until SECONDS COMMAND...: run COMMAND every 0.5 s until it succeeds or time is up.
# output_is WANT CMD...: CMD prints WANT. For wait_until, which runs its arguments again at every
# try (a `test "$(cmd)"` there would be read once, before the first try).
output_is() {
    local want=$1
    shift
    [ "$("$@" 2>/dev/null)" = "$want" ]
}

# output_above LIMIT CMD...: CMD prints a number above LIMIT (for wait_until, as output_is).
output_above() {
    local limit=$1 v
    shift
    v=$("$@" 2>/dev/null) || return 1
    [ -n "$v" ] && [ "$v" -gt "$limit" ] 2>/dev/null
}

wait_until() {
    local tries=$(($1 * 2))
    shift
    while [ "$tries" -gt 0 ]; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
        tries=$((tries - 1))
    done
    return 1
}

# gobgpd_conf PORT FOCLD_PORT PASSIVE FAMILY...: on stdout, the GoBGP configuration the scripts
# share: AS65002, router id 192.0.2.2, on 127.0.0.2:PORT, one neighbor, focld (AS65001) at
# 127.0.0.1:FOCLD_PORT, passive-mode PASSIVE, hold time 30 s, connect retry 2 s, and the
# FAMILY afi-safis ("ipv4-unicast", "ipv6-unicast").
gobgpd_conf() {
    local port=$1 fport=$2 passive=$3 f
    shift 3
    cat <<EOT
[global.config]
  as = 65002
  router-id = "192.0.2.2"
  port = $port
  local-address-list = ["127.0.0.2"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.1"
    peer-as = 65001
  [neighbors.transport.config]
    passive-mode = $passive
    local-address = "127.0.0.2"
    remote-port = $fport
  [neighbors.timers.config]
    hold-time = 30
    connect-retry = 2
EOT
    for f in "$@"; do
        printf '  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = "%s"\n' "$f"
    done
}
