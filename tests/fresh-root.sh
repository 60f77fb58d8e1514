#!/bin/sh
# fresh-root.sh CMD [ARG...]: run CMD as root on a fresh Debian 12 machine
# that has only the Rust toolchain, with a clone of this repository's
# committed HEAD as its working directory. CI runs README's commands this
# way, so that a green CI means a new machine works, not only this one.
#
# The machine:
#  - a Debian bookworm root made by `debootstrap --variant=minbase`, with
#    ca-certificates (rustup could not have been installed without it).
#    The pristine root is kept as a tarball in $FRESH_ROOT_CACHE (default
#    /var/cache/in-dhcpd-fresh-root) and a new copy unpacked for each run
#    under $FRESH_ROOT_WORK (default /var/tmp): on the disk, as Debian 12
#    has /tmp, never on a nodev tmpfs where device nodes cannot be made;
#  - the host's Rust toolchain: its rustup home bound read-only and a new
#    cargo home holding only rustup's proxies (cargo, rustc, ...), so
#    nothing this host installed with `cargo install` is there; the cargo
#    registry cache is shared to save downloads;
#  - what a booted machine has mounted: /proc, /sys, /dev, /dev/pts, a tmpfs
#    /run (with /run/lock); /etc/resolv.conf, a host name in /etc/hostname
#    and /etc/hosts as the installer writes them, and the host's extra CA
#    certificates (/usr/local/share/ca-certificates) so that package
#    registries are reached as from this host;
#  - the repository at /root/in-dhcpd, a `git clone` of HEAD (uncommitted
#    changes are not in it); debootstrap's package cache for the package
#    test (tests/deb.sh) at its target/debootstrap-cache, shared between
#    runs like the cargo registry.
# CMD runs there as root in a clean environment (PATH, HOME, LANG, TERM),
# in mount, PID, UTS and IPC namespaces of its own: when it ends, every
# process it started is killed and everything mounted inside, network
# namespaces included, is gone with the namespaces; the unpacked root is
# then removed. Nothing else on the host is touched. The exit status is
# CMD's.
set -eu
[ "$(id -u)" = 0 ] || { echo "fresh-root.sh: run as root (debootstrap, chroot, namespaces)" >&2; exit 1; }
[ $# -gt 0 ] || { echo "usage: fresh-root.sh CMD [ARG...]" >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${FRESH_ROOT_CACHE:-/var/cache/in-dhcpd-fresh-root}
workbase=${FRESH_ROOT_WORK:-/var/tmp}
mirror=${FRESH_ROOT_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
include=ca-certificates
tarball=$cache/$suite-minbase-$include.tar
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
cargo_home=${CARGO_HOME:-$HOME/.cargo}

say() { echo "fresh-root: $*"; }
die() { echo "fresh-root: $*" >&2; exit 1; }
for c in debootstrap unshare chroot git tar findmnt; do
  command -v $c >/dev/null || die "$c is missing on this host (apt-get install debootstrap util-linux git tar)"
done
[ -x "$cargo_home/bin/rustup" ] || die "no rustup in $cargo_home/bin: the host needs the Rust toolchain from rustup"
[ -d "$rustup_home/toolchains" ] || die "no toolchains in $rustup_home"
mkdir -p "$cache/debs" "$workbase"
case ",$(findmnt -no OPTIONS -T "$workbase")," in
  *,nodev,* | *,noexec,*) die "$workbase is mounted nodev or noexec; set FRESH_ROOT_WORK to a directory on a real disk" ;;
esac

# --- the pristine root, made once -------------------------------------------
if [ ! -s "$tarball" ]; then
  t0=$(date +%s)
  build=$(mktemp -d "$workbase/fresh-root-build.XXXXXX")
  say "making the pristine $suite minbase root (once; kept as $tarball)"
  if ! debootstrap --variant=minbase --include=$include --cache-dir="$cache/debs" \
    $suite "$build/root" "$mirror" > "$build/debootstrap.log" 2>&1; then
    tail -20 "$build/debootstrap.log" >&2
    umount -R "$build/root/proc" "$build/root/sys" 2>/dev/null || true
    [ -z "$(findmnt -rn -o TARGET | grep "^$build" || true)" ] && rm -rf "$build"
    die "debootstrap of $suite from $mirror failed"
  fi
  mkdir -p "$cache/debs"
  tar -C "$build/root" --numeric-owner -cf "$tarball.new" .
  mv "$tarball.new" "$tarball"
  rm -rf "$build"
  say "pristine root made in $(($(date +%s) - t0)) s"
fi

# --- a fresh copy of it, with this machine's toolchain and the clone ----------
work=$(mktemp -d "$workbase/fresh-root.XXXXXX")
root=$work/root
cleanup() {
  # The namespaces are gone when unshare has returned, and their mounts with
  # them; a mount still seen here under $work would mean otherwise.
  if [ -n "$(findmnt -rn -o TARGET | grep "^$work" || true)" ]; then
    echo "fresh-root: still mounted under $work, left in place:" >&2
    findmnt -rn -o TARGET | grep "^$work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$(date +%s)
mkdir "$root"
tar -C "$root" --numeric-owner -xpf "$tarball"
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates > "$work/ca.log" 2>&1 || { cat "$work/ca.log" >&2; die "update-ca-certificates in the root"; }
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
# A machine's own name resolves, as the Debian installer writes it (CMU
# bootpd, for one, will not start otherwise).
echo fresh-root > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tfresh-root\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n' > "$root/etc/hosts"
mkdir -p "$root/root/.rustup" "$root/root/.cargo/bin" "$root/root/.cargo/registry" "$cache/debs"
cp "$cargo_home/bin/rustup" "$root/root/.cargo/bin/rustup"
for proxy in "$cargo_home"/bin/*; do
  [ "$(readlink "$proxy")" = rustup ] && ln -s rustup "$root/root/.cargo/bin/$(basename "$proxy")"
done
cp "$cargo_home/env" "$root/root/.cargo/env" 2>/dev/null || true
git clone -q --no-hardlinks "$top" "$root/root/in-dhcpd"
git -C "$root/root/in-dhcpd" checkout -q --detach "$(git -C "$top" rev-parse HEAD)"
mkdir -p "$root/root/in-dhcpd/target/debootstrap-cache"
say "root unpacked in $work with $(git -C "$top" rev-parse --short HEAD) in /root/in-dhcpd ($(($(date +%s) - t0)) s)"

# --- CMD inside, in namespaces of its own --------------------------------------
# The inner script runs as PID 1 of a new PID namespace: its mounts are
# private to the new mount namespace, so they vanish with it.
inner='
set -eu
r=$1 rustup_home=$2 cargo_home=$3 debs=$4; shift 4
# The root is a mount point, as on a machine (ip netns makes / a slave).
mount --bind "$r" "$r"
mount -t proc proc "$r/proc"
mount -t sysfs sysfs "$r/sys"
mount --rbind /dev "$r/dev"
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$r/run"
mkdir -m 1777 "$r/run/lock"
mount --bind -o ro "$rustup_home" "$r/root/.rustup"
mount -o remount,bind,ro "$r/root/.rustup"
mount --bind "$cargo_home/registry" "$r/root/.cargo/registry"
mount --bind "$debs" "$r/root/in-dhcpd/target/debootstrap-cache"
hostname fresh-root
exec chroot "$r" /usr/bin/env -i \
  PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root USER=root LOGNAME=root SHELL=/bin/sh LANG=C.UTF-8 TERM="${TERM:-dumb}" \
  /bin/sh -c "cd /root/in-dhcpd && exec \"\$@\"" sh "$@"
'
t0=$(date +%s)
say "running as root in the fresh root: $*"
TERM=${TERM:-dumb} unshare --mount --propagation private --uts --ipc --pid --fork --kill-child \
  sh -c "$inner" sh "$root" "$rustup_home" "$cargo_home" "$cache/debs" "$@" &
upid=$!
# unshare itself ignores SIGINT and SIGTERM while it waits; killing its
# child, PID 1 inside, kills every process of the PID namespace with it.
stop_inside() {
  for c in $(cat /proc/$upid/task/*/children 2>/dev/null); do kill -KILL "$c" 2>/dev/null || true; done
  wait $upid 2>/dev/null || true
}
trap 'stop_inside; exit 130' INT TERM
rc=0
wait $upid || rc=$?
trap 'exit 130' INT TERM
say "$* exited with $rc after $(($(date +%s) - t0)) s"
exit $rc
