#!/bin/sh
# Install focld, focl, their man pages, the example configuration and the init scripts.
#
# usage: scripts/install.sh [PREFIX]      (default /usr/local; DESTDIR is honoured)
#
#   PREFIX/sbin/focld, PREFIX/bin/focl
#   PREFIX/share/man/man8/focld.8, focl.8 and man5/focl.toml.5 (PREFIX/man on the BSDs)
#   PREFIX/share/examples/focl/: focl.example.toml and the init scripts for each system
#
# Builds the release binaries with cargo first, unless FOCL_BIN_DIR names a directory that
# already holds focld and focl. `cargo install --path .` works too (binaries only).
set -eu

prefix=${1:-/usr/local}
dest=${DESTDIR:-}
cd "$(dirname "$0")/.."

if [ -n "${FOCL_BIN_DIR:-}" ]; then
    bin=$FOCL_BIN_DIR
else
    cargo build --release --locked
    bin=target/release
fi
for b in focld focl; do
    [ -x "$bin/$b" ] || { echo "install.sh: $bin/$b not found" >&2; exit 1; }
done

case "$(uname -s)" in
FreeBSD | OpenBSD | NetBSD | DragonFly) mandir=$prefix/man ;;
*) mandir=$prefix/share/man ;;
esac
examples=$prefix/share/examples/focl

install -d "$dest$prefix/sbin" "$dest$prefix/bin" "$dest$mandir/man5" "$dest$mandir/man8" "$dest$examples"
install -m 0755 "$bin/focld" "$dest$prefix/sbin/focld"
install -m 0755 "$bin/focl" "$dest$prefix/bin/focl"
install -m 0644 man/focld.8 man/focl.8 "$dest$mandir/man8/"
install -m 0644 man/focl.toml.5 "$dest$mandir/man5/"
install -m 0644 etc/focl.example.toml "$dest$examples/"
install -m 0755 etc/init.d/focld "$dest$examples/focld.init.d"
install -m 0755 etc/rc.d/focld "$dest$examples/focld.rc.freebsd"
install -m 0755 etc/rc.d/focld.openbsd "$dest$examples/focld.rc.openbsd"
install -m 0644 etc/systemd/focld.service "$dest$examples/focld.service"

echo "installed focld and focl under $dest$prefix"
echo "next: copy $examples/focl.example.toml to your configuration file and install the init"
echo "script for your system from $examples (see focld(8))"
