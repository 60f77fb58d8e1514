#!/bin/sh
# install-deps.sh: install the Debian packages that any target of the
# Makefile uses (demo, test, deb, deb-test, bench, fuzz), and cargo-deb for
# `make deb`; then check that every command those targets run is there, and
# fail loudly, naming it, when one is not. Does no apt call when all are
# present. While installing, a temporary policy-rc.d stops package scripts
# from starting daemons on this host.
#
# Assumed already present (README "Before you start"): the Rust toolchain
# from rustup, and a C compiler and make (Debian's build-essential).
set -eu
[ "$(id -u)" = 0 ] || { echo "install-deps.sh: run as root (sudo tests/install-deps.sh)" >&2; exit 1; }

# Each command the scripts and tests run, and the package that has it.
commands="
ip:iproute2 ping:iputils-ping pgrep:procps sysctl:procps kill:procps ethtool:ethtool
dhclient:isc-dhcp-client udhcpc:udhcpc busybox:busybox dhcpcd:dhcpcd-base
dhcrelay:isc-dhcp-relay inetd:openbsd-inetd systemd-socket-activate:systemd
python3:python3 bootpd:bootp mandoc:mandoc dpkg-deb:dpkg lintian:lintian
dpkg-shlibdeps:dpkg-dev debootstrap:debootstrap git:git flock:util-linux
setpriv:util-linux unshare:util-linux findmnt:util-linux timeout:coreutils
perfdhcp:kea-admin kea-dhcp4:kea-dhcp4-server dhcpd:isc-dhcp-server dnsmasq:dnsmasq
curl:curl fusermount3:fuse3
"
# Packages that bring no command of their own but are needed.
libraries="python3-scapy netbase"
# PostgreSQL, whose initdb and postgres the tests of in.aasd's PostgreSQL store run.
libraries="$libraries postgresql"
# cargo-deb builds the package (make deb); pinned so CI builds the same .deb.
cargo_deb_version=3.8.0

pkgs=$libraries
for pair in $commands; do
  pkgs="$pkgs ${pair#*:}"
done
missing=""
for p in $(echo "$pkgs" | tr ' ' '\n' | sort -u); do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  trap '[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  export DEBIAN_FRONTEND=noninteractive
  echo "install-deps.sh: installing$missing"
  apt-get install -y --no-install-recommends $missing || {
    apt-get update
    apt-get install -y --no-install-recommends $missing
  }
fi

if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $cargo_deb_version" ]; then
  command -v cargo >/dev/null || {
    echo "install-deps.sh: cargo is not on PATH ($PATH); with rustup installed for your user, run: sudo env PATH=\"\$PATH\" tests/install-deps.sh" >&2
    exit 1
  }
  cargo install cargo-deb --locked --version "$cargo_deb_version"
  # Under sudo -E, cargo wrote root's files into the user's cargo home.
  "$(dirname "$0")/give-back.sh"
fi

absent=""
for pair in $commands cargo-deb:cargo-deb cc:build-essential make:build-essential; do
  PATH=$PATH:/usr/sbin:/sbin command -v "${pair%%:*}" >/dev/null || absent="$absent ${pair%%:*} (${pair#*:})"
done
[ -z "$absent" ] || { echo "install-deps.sh: FAILED: still missing:$absent" >&2; exit 1; }
# The PostgreSQL tests find the server under /usr/lib/postgresql/VERSION/bin.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "install-deps.sh: FAILED: no /usr/lib/postgresql/*/bin/initdb (postgresql)" >&2; exit 1; }
# The tests run Debian's python3 by path (a pyenv or venv python3 on PATH lacks its scapy).
/usr/bin/python3 -c 'import scapy.all' 2>/dev/null || { echo "install-deps.sh: FAILED: /usr/bin/python3 cannot import scapy (python3-scapy)" >&2; exit 1; }
