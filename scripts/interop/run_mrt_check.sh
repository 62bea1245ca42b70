#!/usr/bin/env bash
# MRT archive checked by the readers of the ecosystem: GoBGP announces a known set of IPv4 and
# IPv6 routes with varied attributes (communities, large communities, long and 4-octet AS
# paths, MED), then withdraws some. focld archives the session; afterwards bgpdump -m and
# bgpkit-parser (its Python binding, pybgpkit-parser) read from the update file exactly those
# announcements, withdrawals and state changes, and from a RIB snapshot exactly the surviving
# routes. Both layouts/compressions: routeviews + bzip2 and ris + gzip, each checked with the
# system's bzip2 -t / gzip -t. Loopback only. Exits non-zero on any failure.
set -uo pipefail
# shellcheck source=scripts/interop/lib.sh
. "$(dirname "$0")/lib.sh"
interop_setup gobgpd gobgp bgpdump py:pybgpkit_parser

# What GoBGP announces (prefix|next hop|extra gobgp arguments) and what it withdraws.
ROUTES4=(
    "198.51.100.0/24|origin igp aspath 65010,65011,65012 med 50 community 65002:100 large-community 65002:1:2"
    "198.51.101.0/24|origin igp aspath 65010,65010,65010,65010,65010,65010,65010,65010,65010,65010,65010,65010,65010,65010,65010,65010,65020 community 65002:101"
    "198.51.102.0/25|origin egp aspath 4200000001 med 0"
    "198.51.102.128/25|origin incomplete aspath 65030 large-community 65002:7:8,65002:9:10"
    "203.0.113.0/24|origin igp aspath 65040,65041 med 4294967295 community 65002:1,65002:2,65002:3"
)
ROUTES6=(
    "2001:db8:2000::/48|origin igp aspath 65020,4200000001 med 7 community 65002:200,65002:201 large-community 65002:3:4"
    "2001:db8:2001::/48|origin igp aspath 65021"
    "2001:db8:3000::/36|origin egp aspath 65022,65023 community 65002:300"
)
WITHDRAW4=("198.51.101.0/24" "203.0.113.0/24")
WITHDRAW6=("2001:db8:2001::/48")

run_case() {
    local layout=$1 compression=$2
    local d="$tmp/$layout"
    mkdir -p "$d"
    local fport gport api
    fport=$(free_port 127.0.0.1)
    gport=$(free_port 127.0.0.1)
    api=$(free_port 127.0.0.1)
    local G=(gobgp -u 127.0.0.1 -p "$api")
    cat >"$d/focl.toml" <<EOT
[global]
asn = 65001
router_id = "192.0.2.1"
listen_addr = "127.0.0.1:$fport"
control_socket = "$d/focld.sock"

[[peers]]
address = "127.0.0.2"
remote_as = 65002
passive = true

[archive]
enabled = true
dir = "$d/archive"
layout = "$layout"
compression = "$compression"
EOT
    cat >"$d/gobgpd.toml" <<EOT
[global.config]
  as = 65002
  router-id = "192.0.2.2"
  port = $gport
  local-address-list = ["127.0.0.2"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.1"
    peer-as = 65001
  [neighbors.transport.config]
    local-address = "127.0.0.2"
    remote-port = $fport
  [neighbors.timers.config]
    connect-retry = 2
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
EOT
    "$FOCLD" --config "$d/focl.toml" 2>"$d/focld.log" &
    local focld_pid=$!
    pids+=("$focld_pid")
    gobgpd -f "$d/gobgpd.toml" -t toml --api-hosts "127.0.0.1:$api" --pprof-disable >"$d/gobgpd.log" 2>&1 &
    pids+=($!)
    local F=(-s "$d/focld.sock" -j)
    established() { [ "$("$FOCL" "${F[@]}" peer show 127.0.0.2 | jget 'd["state"]')" = Established ]; }
    if ! wait_until 60 established; then
        fail "$layout: no session with GoBGP"
        return
    fi
    local r p args
    for r in "${ROUTES4[@]}"; do
        p=${r%%|*}
        read -r -a args <<<"${r#*|}"
        "${G[@]}" global rib add -a ipv4 "$p" nexthop 127.0.0.2 "${args[@]}"
    done
    for r in "${ROUTES6[@]}"; do
        p=${r%%|*}
        read -r -a args <<<"${r#*|}"
        "${G[@]}" global rib add -a ipv6 "$p" nexthop 2001:db8::2 "${args[@]}"
    done
    count() { "$FOCL" "${F[@]}" rib in 127.0.0.2 | jget 'len(d["routes"])'; }
    wait_until 20 output_is 8 count || fail "$layout: focld holds $(count) of 8 routes"
    for p in "${WITHDRAW4[@]}"; do "${G[@]}" global rib del -a ipv4 "$p"; done
    for p in "${WITHDRAW6[@]}"; do "${G[@]}" global rib del -a ipv6 "$p"; done
    wait_until 20 output_is 5 count || fail "$layout: focld holds $(count) routes after the withdrawals, want 5"
    sleep 1

    local upd rib kind
    upd=$("$FOCL" "${F[@]}" archive rotate | jget 'd["finished"]')
    "$FOCL" "${F[@]}" archive snapshot >/dev/null
    snap_done() { [ "$("$FOCL" "${F[@]}" archive status | jget 'd["last_snapshot"] or ""')" != "" ]; }
    wait_until 20 snap_done || fail "$layout: no RIB snapshot"
    rib=$("$FOCL" "${F[@]}" archive status | jget 'd["last_snapshot"]')
    kind=$([ "$layout" = ris ] && echo bview || echo rib)
    [[ $rib == *"$kind."* ]] || fail "$layout: snapshot name $rib"
    bgpdump -m "$d/archive/$upd" >"$d/updates.txt" 2>/dev/null
    bgpdump -m "$d/archive/$rib" >"$d/rib.txt" 2>/dev/null
    python3 - "$d/archive/$upd" "$d/archive/$rib" >"$d/bgpkit.txt" <<'PY'
import json, sys
import pybgpkit_parser
for tag, path in (("U", sys.argv[1]), ("R", sys.argv[2])):
    for e in pybgpkit_parser.Parser(url=path):
        d = json.loads(str(e))
        print(tag, d["elem_type"], d["prefix"], d["as_path"] or "", d["next_hop"] or "", d["med"], ",".join(d["communities"] or []))
PY
    # The expectation, from the route table above: AS path gets GoBGP's 65002 in front.
    python3 - "$d" "$layout" "${ROUTES4[@]}" -- "${ROUTES6[@]}" -- "${WITHDRAW4[@]}" "${WITHDRAW6[@]}" <<'PY'
import sys
d, layout = sys.argv[1], sys.argv[2]
rest = sys.argv[3:]
i = rest.index("--"); r4 = rest[:i]; rest = rest[i + 1:]
i = rest.index("--"); r6 = rest[:i]; withdrawn = set(rest[i + 1:])
want = {}
for r in r4 + r6:
    prefix, args = r.split("|", 1)
    a = args.split()
    kv = dict(zip(a[::2], a[1::2]))
    path = "65002 " + kv["aspath"].replace(",", " ")
    comm = sorted(kv.get("community", "").split(",")) if "community" in kv else []
    large = sorted(kv.get("large-community", "").split(",")) if "large-community" in kv else []
    nh = "127.0.0.2" if ":" not in prefix else "2001:db8::2"
    want[prefix] = (path, nh, kv.get("med", "0" if False else None), comm, large, kv["origin"])
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)

# bgpdump on the update file.
ann, wd, states = {}, set(), []
for line in open(f"{d}/updates.txt"):
    f = line.rstrip("\n").split("|")
    if f[2] == "A":
        ann[f[5]] = f
    elif f[2] == "W":
        wd.add(f[5])
    elif f[2] == "STATE":
        states.append((f[5], f[6]))
check(set(ann) == set(want), f"bgpdump announcements {sorted(ann)}")
check(wd == withdrawn, f"bgpdump withdrawals {sorted(wd)}")
check(("5", "6") in states, f"bgpdump state changes {states}")
for p, (path, nh, med, comm, large, origin) in want.items():
    f = ann.get(p)
    if not f:
        continue
    check(f[6] == path, f"{p}: AS path {f[6]!r}, want {path!r}")
    check(f[7] == origin.upper(), f"{p}: origin {f[7]}")
    check(f[8] == nh, f"{p}: next hop {f[8]}")
    check(f[10] == (med or "0"), f"{p}: MED {f[10]}")
    check(sorted(f[11].split()) == comm, f"{p}: communities {f[11]!r}")
# bgpdump on the RIB snapshot.
rib = {}
for line in open(f"{d}/rib.txt"):
    f = line.rstrip("\n").split("|")
    if f[0] == "TABLE_DUMP2":
        rib[f[5]] = f
survive = {p for p in want if p not in withdrawn}
check(set(rib) == survive, f"bgpdump RIB {sorted(rib)}, want {sorted(survive)}")
for p in survive & set(rib):
    f = rib[p]
    check(f[6] == want[p][0] and f[8] == want[p][1], f"RIB {p}: {f[6]} via {f[8]}")
    check(sorted(f[11].split()) == want[p][3], f"RIB {p}: communities {f[11]!r}")
# bgpkit-parser on both files.
u_ann, u_wd, r_pfx = {}, set(), {}
for line in open(f"{d}/bgpkit.txt"):
    tag, typ, prefix, rest = line.split(" ", 3)
    if tag == "U":
        (u_ann if typ == "A" else {}).__setitem__(prefix, rest) if typ == "A" else u_wd.add(prefix)
    else:
        r_pfx[prefix] = rest
check(set(u_ann) == set(want), f"bgpkit announcements {sorted(u_ann)}")
check(u_wd == withdrawn, f"bgpkit withdrawals {sorted(u_wd)}")
check(set(r_pfx) == survive, f"bgpkit RIB {sorted(r_pfx)}")
for p in survive & set(r_pfx):
    check(r_pfx[p].startswith(want[p][0] + " " + want[p][1]), f"bgpkit RIB {p}: {r_pfx[p]!r}")
for e in errors:
    print("  mismatch:", e)
sys.exit(1 if errors else 0)
PY
    local rc=$?
    if [ "$rc" = 0 ]; then
        ok "$layout/$compression: bgpdump and bgpkit-parser see exactly the 8 announcements, 3 withdrawals, the state changes and the 5 surviving routes"
    else
        fail "$layout/$compression: readers disagree with what GoBGP sent (KEEP=1 keeps the files)"
    fi
    local tool=bzip2
    [ "$compression" = gzip ] && tool=gzip
    if "$tool" -t "$d/archive/$upd" && "$tool" -t "$d/archive/$rib"; then
        ok "$layout/$compression: $tool -t accepts the update file and the snapshot"
    else
        fail "$layout/$compression: $tool -t rejects a file"
    fi
    local dropped
    dropped=$("$FOCL" "${F[@]}" archive status | jget 'd["dropped"]')
    if [ "$dropped" = 0 ]; then ok "$layout/$compression: 0 records dropped"; else fail "$layout: $dropped records dropped"; fi
    kill -TERM "$focld_pid"
    wait "$focld_pid" 2>/dev/null
}

run_case routeviews bzip2
run_case ris gzip

interop_summary "mrt check"
