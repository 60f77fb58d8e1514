#!/bin/sh
# demo.sh BINDIR: a private two-host network in namespaces; in.aasd holding a
# pool, in.dhcpd started by openbsd-inetd on the server, a real DHCP client
# (ISC dhclient) on the other getting a dynamic address, and aasadmin listing
# the lease. Everything is removed at the end, even on failure.
set -eu
bindir=$(readlink -f "${1:-target/release}")
bin=$bindir/in-dhcpd
here=$(cd "$(dirname "$0")" && pwd)
srv=indemo-srv cli=indemo-cli
work=$(mktemp -d /tmp/indemo.XXXXXX)
cleanup() {
  [ -n "${aaspid:-}" ] && kill "$aaspid" 2>/dev/null || true
  for ns in $srv $cli; do
    for p in $(ip netns pids $ns 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  done
  sleep 0.2
  for ns in $srv $cli; do ip netns del $ns 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
cleanup_quiet() { for ns in $srv $cli; do ip netns del $ns 2>/dev/null || true; done; }
cleanup_quiet

echo "demo: making namespaces $srv (10.99.0.1/24) and $cli, joined by a veth pair"
ip netns add $srv
ip netns add $cli
ip -n $srv link add srv0 type veth peer name cli0 netns $cli
ip -n $cli link set cli0 address 02:99:00:00:00:10
ip -n $srv addr add 10.99.0.1/24 brd + dev srv0
for ns in $srv $cli; do ip -n $ns link set lo up; done
ip -n $srv link set srv0 up
ip -n $cli link set cli0 up
ip netns exec $srv ethtool -K srv0 tx off >/dev/null 2>&1 || true

# in.dhcpd gives up root for nobody, keeping the socket's group (never
# root's): the socket's directory must let it through, and the socket has
# a group of its own (the package's is aasd; any but root's will do here).
chmod 755 "$work"
cat > "$work/aasd.conf" <<CONF
database_dir = $work/aasd
socket = $work/aasd.sock
socket_group = daemon
[pool DemoPool]
range = 10.99.0.100-10.99.0.150
CONF
"$bindir/in-aasd" -C -c "$work/aasd.conf"
echo "demo: starting in.aasd (pool DemoPool 10.99.0.100-10.99.0.150), log in $work/aasd.log"
"$bindir/in-aasd" -D 3 -c "$work/aasd.conf" > "$work/aasd.log" 2>&1 &
aaspid=$!
for _ in $(seq 50); do [ -S "$work/aasd.sock" ] && break; sleep 0.1; done

cat > "$work/dhcpd.conf" <<CONF
[server]
aas_socket = $work/aasd.sock

[global]
lease_time = 1h
domain_name = demo.test
domain_name_servers = 10.99.0.1

[subnet 10.99.0.0/24]
pool = DemoPool
routers = 10.99.0.1
CONF
"$bin" -C -c "$work/dhcpd.conf"
printf 'bootps\tdgram\tudp4\twait\troot\t%s\tin.dhcpd -t 1 -D 2 -L %s -c %s\n' "$bin" "$work/dhcpd.log" "$work/dhcpd.conf" > "$work/inetd.conf"
echo "demo: starting openbsd-inetd in $srv with: $(cat "$work/inetd.conf")"
"$here/tools/nsrun.sh" $srv inetd -d -E "$work/inetd.conf" > "$work/inetd.log" 2>&1 &
for _ in $(seq 50); do grep -q "ADD: bootps" "$work/inetd.log" && break; sleep 0.1; done

echo "demo: running ISC dhclient on cli0 in $cli"
"$here/tools/nsrun.sh" $cli dhclient -4 -1 -d -v -lf "$work/leases" -pf "$work/dhclient.pid" \
  -sf "$here/tools/hook.sh" -e HOOK_LOG="$work/hook.log" cli0 > "$work/dhclient.log" 2>&1 &
client=$!
for _ in $(seq 150); do grep -q "event=BOUND" "$work/hook.log" 2>/dev/null && break; sleep 0.1; done
kill $client 2>/dev/null || true
# What each part logged, for a failure.
show_logs() {
  for f in dhcpd aasd inetd dhclient; do
    echo "demo: --- $f log ($work/$f.log) ---" >&2
    cat "$work/$f.log" >&2 2>/dev/null || echo "(none)" >&2
  done
}
if ! grep -q "event=BOUND" "$work/hook.log" 2>/dev/null; then
  echo "demo: FAILED: the client got no lease" >&2
  show_logs
  exit 1
fi
ip=$(grep -o 'ip=[0-9.]*' "$work/hook.log" | tail -1 | cut -d= -f2)
server=$(grep -o 'server=[0-9.]*' "$work/hook.log" | tail -1 | cut -d= -f2)
pid=$(grep -o '^[0-9]* execv' "$work/inetd.log" | head -1 | cut -d' ' -f1)
grep -E "DHCP(DISCOVER|OFFER|REQUEST|ACK)" "$work/dhclient.log" | sed 's/^/  dhclient: /'
echo "demo: client 02:99:00:00:00:10 got $ip from in.dhcpd at $server (started by inetd, pid $pid)"
echo "demo: what in.dhcpd logged (-L $work/dhcpd.log):"
sed 's/^/  /' "$work/dhcpd.log"
echo "demo: the lease as in.aasd holds it (aasadmin -s $work/aasd.sock list):"
"$bindir/aasadmin" -s "$work/aasd.sock" list | sed 's/^/  /'
"$bindir/aasadmin" -s "$work/aasd.sock" list | grep -q "^$ip .*leased .*10.99.0.0/1/02:99:00:00:00:10" || {
  echo "demo: FAILED: aasadmin does not list $ip as leased" >&2
  show_logs
  exit 1
}
