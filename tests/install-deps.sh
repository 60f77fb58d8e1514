#!/bin/sh
# install-deps.sh: install the Debian packages the tests and the demo use,
# and cargo-deb for `make deb`. Does nothing when all are present. While
# installing, a temporary policy-rc.d stops package scripts from starting
# daemons on this host.
set -eu
[ "$(id -u)" = 0 ] || { echo "install-deps.sh: run as root" >&2; exit 1; }
pkgs="iproute2 procps ethtool isc-dhcp-client udhcpc busybox dhcpcd-base isc-dhcp-relay
      openbsd-inetd systemd python3 python3-scapy bootp mandoc netbase
      dpkg-dev lintian debootstrap"
# cargo-deb builds the package (make deb); pinned so CI builds the same .deb.
cargo_deb_version=3.8.0
missing=""
for p in $pkgs; do
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
  apt-get install -y --no-install-recommends $missing || {
    apt-get update
    apt-get install -y --no-install-recommends $missing
  }
fi
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $cargo_deb_version" ]; then
  cargo install cargo-deb --locked --version "$cargo_deb_version"
fi
