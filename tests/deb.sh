#!/bin/sh
# deb.sh [PACKAGE.deb]: test the Debian package as an administrator meets it.
#
#  1. its file list, modes, conffiles and dependencies (dpkg-deb -c / -I);
#  2. lintian: no error;
#  3. installed with apt into a fresh Debian root made by debootstrap
#     (minbase and the client; apt fetches the dependencies) that already
#     has isc-dhcp-server and kea-dhcp4-server, as a machine moving from
#     them has (no file may clash with theirs): the user
#     aasd, /var/lib/aasd, /etc/aasd.conf root:aasd 0640, nothing enabled or
#     running, in.dhcpd -C and in.aasd -C pass on the shipped files;
#  4. the shipped files with only the subnet changed; in namespaces of its
#     own, in.aasd started with the ExecStart of the installed in.aasd.service
#     and in.dhcpd with that of in.dhcpd.service, behind a socket made as
#     in.dhcpd.socket says (systemd-socket-activate: there is no systemd
#     inside the root); the root's own ISC dhclient gets an address, its
#     dhclient-script puts it on the interface, and the installed aasadmin
#     lists it as leased;
#  5. apt-get remove keeps the leases, the user and the configuration;
#     apt-get purge removes them.
#
# When the root cannot be made (no mirror, a nodev file system), the test
# fails. DEB_TEST_HOST=1 runs steps 3 to 5 on this machine instead, tests
# less (the install meets this machine's packages, not a fresh root's) and
# says so; the purge must then leave the machine as it was. Everything made
# (namespaces indeb-*, mounts, target/deb-test.*) is removed on exit.
# debootstrap keeps the packages it fetched in target/debootstrap-cache.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
deb=${1:-$(ls -t "$top"/target/debian/in-dhcpd_*.deb 2>/dev/null | head -1)}
[ -f "$deb" ] || { echo "deb.sh: no package; run make deb first" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "deb.sh: run as root (debootstrap, namespaces)" >&2; exit 1; }
deb=$(readlink -f "$deb")
mirror=${DEB_TEST_MIRROR:-http://deb.debian.org/debian}
srv=indeb-srv cli=indeb-cli
net=10.88.0
passed=0
# On the project's disk: debootstrap makes device nodes, which a nodev
# tmpfs /tmp (systemd's and Debian 13's default) refuses.
mkdir -p "$top/target"
work=$(mktemp -d "$top/target/deb-test.XXXXXX")
root=$work/root
pids=""

cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for ns in $srv $cli; do
    for p in $(ip netns pids $ns 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  done
  sleep 0.3
  for ns in $srv $cli; do ip netns del $ns 2>/dev/null || true; done
  [ "$root" = / ] || umount "$root/proc" 2>/dev/null || true
  if [ -n "$(findmnt -rn -o TARGET | grep "^$work" || true)" ]; then
    echo "deb.sh: still mounted under $work, left in place" >&2
  else
    rm -rf "$work"
  fi
  # On this machine (no debootstrap), whatever an interrupted run installed.
  if [ "$root" = / ] && dpkg-query -W in-dhcpd >/dev/null 2>&1; then
    dpkg -P in-dhcpd >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
  echo "deb.sh: FAILED: $*" >&2
  echo "deb: $passed passed, 1 failed"
  exit 1
}
ok() { passed=$((passed + 1)); echo "deb.sh: ok: $*"; }
# What a package may leave on this machine (dpkg's own records excepted).
snapshot() {
  find /etc /var/lib /var/cache /usr /run -xdev \( -path /var/lib/dpkg -o -path /run/netns \) -prune -o -print 2>/dev/null | sort
}
# A command inside the installed root.
inroot() { if [ "$root" = / ]; then "$@"; else chroot "$root" "$@"; fi; }

# --- 1. Contents -----------------------------------------------------------
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $1, $2, $6 }' | sort -k3 > "$work/files"
{
  for f in /usr/sbin/in.dhcpd /usr/sbin/in.aasd /usr/sbin/aasadmin; do echo "-rwxr-xr-x root/root $f"; done
  for m in "$top"/man/*.[58]; do
    n=$(basename "$m")
    echo "-rw-r--r-- root/root /usr/share/man/man${n##*.}/$n.gz"
  done
  for f in /etc/dhcpd.conf /etc/aasd.conf \
    /usr/lib/systemd/system/in.dhcpd.socket /usr/lib/systemd/system/in.dhcpd.service \
    /usr/lib/systemd/system/in.aasd.service \
    /usr/share/doc/in-dhcpd/README.md /usr/share/doc/in-dhcpd/README.Debian \
    /usr/share/doc/in-dhcpd/copyright /usr/share/doc/in-dhcpd/changelog.Debian.gz \
    /usr/share/doc/in-dhcpd/examples/inetd.conf /usr/share/doc/in-dhcpd/examples/services \
    /usr/share/doc/in-dhcpd/examples/xinetd.d/in.dhcpd; do
    echo "-rw-r--r-- root/root $f"
  done
} | sort -k3 > "$work/expected"
# dpkg-deb -c prints owners as 0/0 or root/root, depending on the builder.
sed -i 's# 0/0 # root/root #' "$work/files"
diff -u "$work/expected" "$work/files" || fail "dpkg-deb -c: the file list is not the one expected (- expected, + found)"
ok "dpkg-deb -c: $(wc -l < "$work/files") files, each where and as it should be"

conffiles=$(dpkg-deb -I "$deb" conffiles | sort | tr '\n' ' ')
[ "$conffiles" = "/etc/aasd.conf /etc/dhcpd.conf " ] || fail "conffiles are: $conffiles"
ok "dpkg-deb -I: the conffiles are /etc/aasd.conf and /etc/dhcpd.conf"
depends=$(dpkg-deb -f "$deb" Depends)
for d in adduser libc6 procps; do
  case "$depends" in *"$d"*) ;; *) fail "Depends: $depends: no $d" ;; esac
done
ok "dpkg-deb -f: Depends: $depends"
for s in postinst postrm; do
  dpkg-deb -I "$deb" $s | sh -n || fail "$s: not valid sh"
done
ok "dpkg-deb -I: postinst and postrm are valid sh"

# --- 2. lintian --------------------------------------------------------------
lintian --fail-on error -I "$deb" > "$work/lintian" 2>&1 || {
  cat "$work/lintian" >&2
  fail "lintian found errors"
}
grep -v 'running with root privileges' "$work/lintian" | sed 's/^/  lintian: /' || true
ok "lintian: no error ($(grep -c '^W:' "$work/lintian" || true) warnings, listed above)"

# --- 3. Install into a fresh root --------------------------------------------
mkdir -p "$top/target/debootstrap-cache"
start=$(date +%s)
if [ "${DEB_TEST_HOST:-0}" != 1 ] &&
  debootstrap --variant=minbase --include=isc-dhcp-client,iproute2 \
    --cache-dir="$top/target/debootstrap-cache" bookworm "$root" "$mirror" > "$work/debootstrap.log" 2>&1; then
  ok "debootstrap: a minbase bookworm root in $(($(date +%s) - start)) s"
  mount -t proc proc "$root/proc"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  chroot "$root" apt-get update -qq > "$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "apt-get update in the root"; }
  # The peers' packages first; their daemons must not start (policy-rc.d).
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y --no-install-recommends \
    isc-dhcp-server kea-dhcp4-server > "$work/apt.log" 2>&1 ||
    { cat "$work/apt.log" >&2; fail "apt-get install isc-dhcp-server kea-dhcp4-server in the root"; }
  ok "isc-dhcp-server and kea-dhcp4-server installed in the root first"
  cp "$deb" "$root/tmp/in-dhcpd.deb"
  pkg=/tmp/in-dhcpd.deb
else
  if [ "${DEB_TEST_HOST:-0}" != 1 ]; then
    tail -5 "$work/debootstrap.log" | sed 's/^/  debootstrap: /' >&2
    fail "debootstrap could not make a root in $root (log above); DEB_TEST_HOST=1 tests on this machine instead, which tests less"
  fi
  echo "deb.sh: WARNING: DEB_TEST_HOST=1: installing on this machine, not in a fresh root; this tests less (the machine's own packages meet the install); purged at the end"
  dpkg-query -W in-dhcpd >/dev/null 2>&1 && fail "in-dhcpd is already installed on this machine"
  getent passwd aasd >/dev/null && fail "this machine already has a user aasd"
  [ -e /var/lib/aasd ] && fail "this machine already has /var/lib/aasd"
  root=/
  pkg=$deb
  snapshot > "$work/before"
fi
r=${root%/}

DEBIAN_FRONTEND=noninteractive inroot apt-get install -y --no-install-recommends "$pkg" > "$work/dpkg.log" 2>&1 ||
  { cat "$work/dpkg.log" >&2; fail "apt-get install $pkg"; }
aasd_uid=$(inroot id -u aasd) || fail "no user aasd after install"
[ "$aasd_uid" -lt 1000 ] || fail "aasd is uid $aasd_uid, not a system user"
[ "$(inroot id -gn aasd)" = aasd ] || fail "aasd's group is not aasd"
aasd_gid=$(inroot id -g aasd)
# Numbers: this machine's /etc/passwd knows nothing of the root's users.
[ "$(stat -c '%u:%g %a' "$r/var/lib/aasd")" = "$aasd_uid:$aasd_gid 750" ] ||
  fail "/var/lib/aasd is $(stat -c '%u:%g %a' "$r/var/lib/aasd"), not aasd:aasd 0750"
[ "$(stat -c '%u:%g %a' "$r/etc/aasd.conf")" = "0:$aasd_gid 640" ] ||
  fail "/etc/aasd.conf is $(stat -c '%u:%g %a' "$r/etc/aasd.conf"), not root:aasd 0640"
ok "apt-get install: system user aasd (uid $aasd_uid), /var/lib/aasd aasd:aasd 0750, /etc/aasd.conf root:aasd 0640"

enabled=$(find "$r/etc/systemd/system" -name 'in.*' 2>/dev/null || true)
[ -z "$enabled" ] || fail "units enabled by the package: $enabled"
for p in /proc/[0-9]*; do
  [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] || continue
  case "$(cat "$p/comm" 2>/dev/null)" in in.aasd | in.dhcpd | dhcpd | kea-dhcp4) fail "$(cat "$p/comm") runs after install" ;; esac
done
ok "nothing enabled in /etc/systemd/system, no in.aasd or in.dhcpd running"
for peer in isc-dhcp-server kea-dhcp4-server; do
  inroot dpkg-query -W -f='${Status}' $peer 2>/dev/null | grep -q "install ok installed" ||
    fail "$peer is not installed beside in-dhcpd"
done
[ "$(inroot dpkg-query -S /usr/share/man/man5/dhcpd.conf.5.gz 2>/dev/null | cut -d: -f1)" = isc-dhcp-server ] ||
  fail "dhcpd.conf(5) is not isc-dhcp-server's"
ok "installed beside isc-dhcp-server and kea-dhcp4-server; dhcpd.conf(5) stays ISC's, ours is in.dhcpd.conf(5)"

# Every command the units run is there (ExecReload's /bin/kill is procps').
for cmd in $(sed -n 's/^Exec[A-Za-z]*=[-@!+:]*\([^ ]*\).*/\1/p' "$r"/usr/lib/systemd/system/in.*); do
  [ -x "$r$cmd" ] || fail "the units run $cmd, which is not installed"
done
ok "every ExecStart and ExecReload command of the units is installed"

inroot /usr/sbin/in.dhcpd -C || fail "in.dhcpd -C on the shipped /etc/dhcpd.conf"
inroot /usr/sbin/in.aasd -C || fail "in.aasd -C on the shipped /etc/aasd.conf"
ok "in.dhcpd -C and in.aasd -C pass on the shipped configuration"

# --- 4. A lease from the installed programs ----------------------------------
# Only the subnet changes: 192.0.2.x becomes $net.x in both files.
for f in dhcpd.conf aasd.conf; do
  cp "$r/etc/$f" "$work/$f.orig"
  sed -i "s/192\.0\.2\./$net./g" "$r/etc/$f"
  diff "$work/$f.orig" "$r/etc/$f" | grep '^>' | sed "s/^/  $f: /" || true
done
inroot /usr/sbin/in.dhcpd -C && inroot /usr/sbin/in.aasd -C || fail "-C on the edited files"

for ns in $srv $cli; do ip netns del $ns 2>/dev/null || true; done
ip netns add $srv
ip netns add $cli
ip -n $srv link add srv0 type veth peer name cli0 netns $cli
ip -n $cli link set cli0 address 02:88:00:00:00:10
ip -n $srv addr add $net.1/24 brd + dev srv0
for ns in $srv $cli; do ip -n $ns link set lo up; done
ip -n $srv link set srv0 up
ip -n $cli link set cli0 up
ip netns exec $srv ethtool -K srv0 tx off >/dev/null 2>&1 || true

unitdir=$r/usr/lib/systemd/system
aasd_cmd=$(sed -n 's/^ExecStart=//p' "$unitdir/in.aasd.service")
dhcpd_cmd=$(sed -n 's/^ExecStart=//p' "$unitdir/in.dhcpd.service")
listen=$(sed -n 's/^ListenDatagram=//p' "$unitdir/in.dhcpd.socket")
# No syslog in the root: both fall back to stderr, kept for a failure.
# shellcheck disable=SC2086 # the unit's command line, split as systemd does
if [ "$root" = / ]; then
  ip netns exec $srv $aasd_cmd > "$work/aasd.log" 2>&1 &
else
  ip netns exec $srv chroot "$root" $aasd_cmd > "$work/aasd.log" 2>&1 &
fi
aaspid=$!
pids="$pids $aaspid"
for _ in $(seq 50); do [ -S "$r/run/aasd.sock" ] && break; sleep 0.1; done
[ -S "$r/run/aasd.sock" ] || { cat "$work/aasd.log" >&2; fail "in.aasd ($aasd_cmd) made no /run/aasd.sock"; }
[ "$(awk '/^Uid:/ { print $2 }' /proc/$aaspid/status)" = "$aasd_uid" ] || fail "in.aasd does not run as aasd"
ok "in.aasd from in.aasd.service ($aasd_cmd) runs as aasd, socket /run/aasd.sock"

# shellcheck disable=SC2086
if [ "$root" = / ]; then
  ip netns exec $srv systemd-socket-activate --datagram -l "$listen" $dhcpd_cmd > "$work/dhcpd.log" 2>&1 &
else
  ip netns exec $srv systemd-socket-activate --datagram -l "$listen" chroot "$root" $dhcpd_cmd > "$work/dhcpd.log" 2>&1 &
fi
pids="$pids $!"

if [ "$root" = / ]; then
  ip netns exec $cli unshare --uts dhclient -4 -1 -d -v -lf "$work/dhclient.leases" -pf "$work/dhclient.pid" cli0 > "$work/dhclient.log" 2>&1 &
else
  ip netns exec $cli unshare --uts chroot "$root" /sbin/dhclient -4 -1 -d -v cli0 > "$work/dhclient.log" 2>&1 &
fi
client=$!
pids="$pids $client"
for _ in $(seq 300); do grep -q "^bound to" "$work/dhclient.log" && break; sleep 0.1; done
grep -q "^bound to" "$work/dhclient.log" ||
  { cat "$work/dhclient.log" "$work/dhcpd.log" "$work/aasd.log" >&2; fail "dhclient got no lease"; }
# dhclient-script has put the address on the interface.
addr=$(ip -n $cli -4 -o addr show dev cli0 | awk '{ print $4 }')
case "$addr" in $net.1[0-9][0-9]/24) ;; *) fail "cli0 has \"$addr\", not an address of the pool" ;; esac
grep -q "^bound to ${addr%/*} " "$work/dhclient.log" || fail "dhclient is not bound to $addr, the address of cli0"
grep -q "DHCPACK of ${addr%/*} from $net.1" "$work/dhclient.log" || fail "the ACK did not come from $net.1"
ok "dhclient in $cli: $addr from in.dhcpd at $net.1 (socket $listen, then $dhcpd_cmd), on cli0"
kill "$client"

inroot /usr/sbin/aasadmin list > "$work/list" || fail "aasadmin list"
sed 's/^/  aasadmin list: /' "$work/list"
grep -q "^${addr%/*} .*leased .*$net.0/1/02:88:00:00:00:10" "$work/list" || fail "aasadmin does not list ${addr%/*} as leased"
[ "$(stat -c %u "$r/var/lib/aasd/aasd.log")" = "$aasd_uid" ] || fail "/var/lib/aasd/aasd.log is not aasd's"
ok "aasadmin list: ${addr%/*} leased to 02:88:00:00:00:10; /var/lib/aasd/aasd.log is aasd's"

for p in $pids; do kill "$p" 2>/dev/null || true; done
for p in $pids; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
pids=""
# in.aasd, by then the user aasd, cannot unlink its socket in root's /run;
# the next start replaces it. Gone here so the host is left as it was.
rm -f "$r/run/aasd.sock"

# --- 5. Remove, then purge -----------------------------------------------------
inroot apt-get remove -y in-dhcpd > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "apt-get remove"; }
[ ! -e "$r/usr/sbin/in.dhcpd" ] || fail "apt-get remove left /usr/sbin/in.dhcpd"
[ -s "$r/var/lib/aasd/aasd.log" ] || fail "apt-get remove removed the leases"
inroot id aasd > /dev/null || fail "apt-get remove removed the user aasd"
[ -f "$r/etc/aasd.conf" ] && [ -f "$r/etc/dhcpd.conf" ] || fail "apt-get remove removed the configuration"
ok "apt-get remove: programs gone; leases, user aasd and configuration kept"

inroot apt-get purge -y in-dhcpd > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "apt-get purge"; }
[ ! -e "$r/var/lib/aasd" ] || fail "apt-get purge left /var/lib/aasd"
! inroot getent passwd aasd > /dev/null || fail "apt-get purge left the user aasd"
! inroot getent group aasd > /dev/null || fail "apt-get purge left the group aasd"
[ ! -e "$r/etc/aasd.conf" ] && [ ! -e "$r/etc/dhcpd.conf" ] || fail "apt-get purge left the configuration"
! inroot dpkg-statoverride --list /etc/aasd.conf > /dev/null || fail "apt-get purge left the statoverride"
ok "apt-get purge: /var/lib/aasd, user and group aasd, configuration and statoverride gone"
if [ "$root" = / ]; then
  snapshot > "$work/after"
  diff -u "$work/before" "$work/after" || fail "apt-get purge left this machine changed (- before, + after)"
  ok "apt-get purge: this machine is as it was before the install"
fi

echo "deb: $passed passed, 0 failed"
