#!/bin/sh
# nsrun.sh NS CMD...: run CMD in network namespace NS with private copies of
# the host state DHCP clients and inetd write (/run, lease directories,
# resolv.conf, hostname), so a test never touches the host's files.
# NSRUN_BIND="src:dst ..." bind-mounts extra files (a private /etc/services).
set -e
ns=$1; shift
exec ip netns exec "$ns" unshare --uts /bin/sh -c '
  set -e
  for d in /run /var/lib/dhcp /var/lib/dhcpcd /var/lib/misc; do
    [ -d "$d" ] && mount -t tmpfs -o size=8m,mode=0755 idt_private "$d"
  done
  mkdir -p /run/dhcpcd /run/lock
  r=$(mktemp /tmp/idt_resolv.XXXXXX); mount --bind "$r" /etc/resolv.conf; rm -f "$r"
  for b in ${NSRUN_BIND:-}; do mount --bind "${b%%:*}" "${b#*:}"; done
  exec "$@"' nsrun "$@"
