#!/usr/bin/env bash
# failover.sh: the failover gap of issue 21, run by `make bench` after
# bench.sh. Two server hosts and the clients on one link, a bridge:
#
#   fo_a  fo_a0 10.87.0.1/16 --+
#                              +-- fo_br 10.87.0.3/16 in fo_cli: the clients
#   fo_b  fo_b0 10.87.0.2/16 --+   (local route for the pool 10.87.128.0/17)
#
# ours: in.dhcpd + in.aasd on each host, both active, the leases in one
# PostgreSQL cluster (its own namespace fo_db, Unix socket only). Kea: two
# kea-dhcp4 with the HA hook in hot-standby (its default timers), each with
# memfile leases, partners talking over the HA hook's own HTTP listener.
# benches/failover_clients.py runs the clients, SIGKILLs host A's daemons
# mid-run by PID and reports the longest time a client went unanswered.
#
# Run as root from the top of the tree; see DEVELOPING.md, "Performance".
set -u -o pipefail

usage() {
    cat <<'EOF'
usage: benches/failover.sh [-s SERVERS] [-k SECONDS] [-t SECONDS] [-C CLIENTS]
                           [-r TURNS] [-o DIR] [--debug-build]
  -s SERVERS   comma list out of ours, kea (default: both)
  -k SECONDS   kill host A this long after the clients start (default 20)
  -t SECONDS   how long the clients run after the kill (default: 30 for
               ours, 200 for kea: its standby waits for its timers, and
               the clients back off to 64 s meanwhile)
  -C CLIENTS   clients (default 300)
  -r TURNS     client turns per second, DORAs and renewals (default 100)
  -o DIR       results and work files (default target/failover)
  --debug-build  use target/debug instead of target/release
EOF
}

die() { echo "failover.sh: $*" >&2; exit 1; }
say() { echo "$*" | tee -a "$LOG"; }

NS_A=fo_a NS_B=fo_b NS_CLI=fo_cli NS_DB=fo_db BRIDGE=fo_br
IP_A=10.87.0.1 IP_B=10.87.0.2 IP_CLI=10.87.0.3
SUBNET=10.87.0.0/16 POOL_START=10.87.128.10 POOL_END=10.87.255.250 POOL_NET=10.87.128.0/17
LOCK=/tmp/ib_failover.lock
SERVERS=ours,kea KILL_AFTER=20 AFTER="" CLIENTS=300 TURNS=100 OUT=target/failover PROFILE=release
COMMAND="benches/failover.sh $*"

while (( $# )); do
    case $1 in
        -s) SERVERS=$2; shift ;;
        -k) KILL_AFTER=$2; shift ;;
        -t) AFTER=$2; shift ;;
        -C) CLIENTS=$2; shift ;;
        -r) TURNS=$2; shift ;;
        -o) OUT=$2; shift ;;
        --debug-build) PROFILE=debug ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done

(( EUID == 0 )) || die "needs root: it creates network namespaces"
[[ -f Cargo.toml && -d benches ]] || die "run it from the top of the source tree"
exec 8> "$LOCK"
flock -n 8 || die "another failover.sh run holds $LOCK"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$OUT/work LOG=$OUT/failover.log RESULTS=$OUT/results.md
rm -rf "$WORK"
mkdir -p "$WORK"
: > "$LOG"
: > "$WORK/commands.txt"
BIN=$PWD/target/$PROFILE
CLIENT_TOOL=$PWD/benches/failover_clients.py
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
HOOKS=$(dirname "$(ls /usr/lib/*/kea/hooks/libdhcp_ha.so 2>/dev/null | head -1)")

# ---- processes we started, stopped by PID only

PIDS=()

spawn() {   # NS LOGFILE CMD...: one process in NS; its PID joins PIDS and is in $SPAWNED
    local ns=$1 logfile=$2
    shift 2
    echo "$ns: $*" >> "$WORK/commands.txt"
    ip netns exec "$ns" "$@" > "$logfile" 2>&1 &
    SPAWNED=$!
    PIDS+=("$SPAWNED")
}

stop_all() {
    local i pid
    for (( i = ${#PIDS[@]} - 1; i >= 0; i-- )); do
        pid=${PIDS[i]}
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    PIDS=()
}

ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

ns_down() {
    local ns pid
    for ns in $NS_A $NS_B $NS_CLI $NS_DB; do
        ns_exists $ns || continue
        for pid in $(ip netns pids $ns); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del $ns
    done
}

cleanup() { stop_all; ns_down; }
trap cleanup EXIT
trap 'exit 130' INT TERM

ns_up() {
    ns_down
    local ns
    for ns in $NS_A $NS_B $NS_CLI $NS_DB; do
        ip netns add $ns || die "cannot create namespace $ns"
        ip -n $ns link set lo up
    done
    ip -n $NS_CLI link add $BRIDGE type bridge
    ip -n $NS_CLI link set $BRIDGE type bridge stp_state 0 forward_delay 0
    ip -n $NS_CLI addr add $IP_CLI/16 dev $BRIDGE
    # The clients' leased addresses are this namespace's, so that an ACK
    # unicast to ciaddr (a renewal's) comes in.
    ip -n $NS_CLI route add local $POOL_NET dev lo table local
    ip -n $NS_CLI link set $BRIDGE up
    local host ip
    for host in a b; do
        ns=fo_$host ip=$([[ $host == a ]] && echo $IP_A || echo $IP_B)
        ip link add fo_${host}0 netns $ns type veth peer name fo_p$host netns $NS_CLI ||
            die "cannot create a veth pair"
        ip -n $NS_CLI link set fo_p$host master $BRIDGE up
        ip -n $ns addr add $ip/16 dev fo_${host}0
        ip -n $ns link set fo_${host}0 up
    done
    ip netns exec $NS_CLI ping -c1 -W2 $IP_A > /dev/null && ip netns exec $NS_CLI ping -c1 -W2 $IP_B > /dev/null ||
        die "the bridge does not work"
}

wait_for() {   # SECONDS COMMAND...: until it succeeds, bounded
    local i
    for i in $(seq $(( $1 * 10 ))); do "${@:2}" && return 0; sleep 0.1; done
    return 1
}

# ---- ours: two active hosts on one PostgreSQL cluster

as_nobody() { setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- "$@"; }

start_pg() {   # DIR
    local dir=$1
    mkdir -p "$dir"
    chown nobody "$dir"
    chmod 700 "$dir"
    as_nobody "$PG_BIN/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C --auth=trust --no-sync \
        > "$dir/initdb.log" 2>&1 || return 1
    # The settings of bench.sh's PostgreSQL rows.
    spawn $NS_DB "$dir/server.log" setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- \
        "$PG_BIN/postgres" -D "$dir/data" -c listen_addresses= -c unix_socket_directories="$dir" \
        -c port=5432 -c fsync=on -c synchronous_commit=on -c shared_buffers=128MB -c max_connections=40
    wait_for 30 "$PG_BIN/pg_isready" -q -h "$dir" -p 5432 -t 1 || return 1
    "$PG_BIN/psql" -X -q -h "$dir" -U postgres -d postgres -c "CREATE DATABASE leases" >> "$dir/psql.log" 2>&1
}

start_ours_host() {   # HOST (a or b): in.aasd, then in.dhcpd; their PIDs in HOST_PIDS
    local host=$1 dir=$WORK/ours/$1 ns=fo_$1
    mkdir -p "$dir"
    cat > "$dir/aasd.conf" <<EOF
database_dir = $dir/db
socket = $dir/aasd.sock
store = postgresql
postgresql = host=$WORK/ours/pg port=5432 user=postgres dbname=leases

[pool Failover]
range = $POOL_START-$POOL_END
EOF
    cat > "$dir/dhcpd.conf" <<EOF
[server]
aas_socket = $dir/aasd.sock

[global]
lease_time = 1h

[subnet $SUBNET]
pool = Failover
EOF
    spawn $ns "$dir/aasd.log" "$BIN/in-aasd" -f -c "$dir/aasd.conf"
    HOST_PIDS=$SPAWNED
    wait_for 10 test -S "$dir/aasd.sock" || return 1
    spawn $ns "$dir/dhcpd.log" "$BIN/in-dhcpd" -s -f -u root -D "${DHCPD_DEBUG:-0}" -c "$dir/dhcpd.conf"
    HOST_PIDS+=,$SPAWNED
    wait_for 10 listening $ns
}

listening() { ip netns exec "$1" ss -Hlun 'sport = :67' | grep -q .; }

run_ours() {
    say "== ours: in.dhcpd + in.aasd on $NS_A and $NS_B, both active, one PostgreSQL cluster"
    start_pg "$WORK/ours/pg" || { say "  PostgreSQL did not start: $(tail -3 "$WORK/ours/pg/"*.log)"; return 1; }
    start_ours_host a || { say "  host a did not start"; return 1; }
    local kill_a=$HOST_PIDS
    start_ours_host b || { say "  host b did not start"; return 1; }
    run_clients ours "$kill_a" "${AFTER:-30}"
    stop_all
}

# ---- Kea: HA hot-standby, default timers

write_kea_conf() {   # FILE NAME ADDRESS IFACE DIR
    cat > "$1" <<EOF
{ "Dhcp4": {
    "interfaces-config": { "interfaces": [ "$4" ] },
    "lease-database": { "type": "memfile", "persist": true, "name": "$5/leases4.csv", "lfc-interval": 0 },
    "multi-threading": { "enable-multi-threading": true },
    "valid-lifetime": 3600,
    "authoritative": true,
    "hooks-libraries": [
        { "library": "$HOOKS/libdhcp_lease_cmds.so" },
        { "library": "$HOOKS/libdhcp_ha.so", "parameters": { "high-availability": [ {
            "this-server-name": "$2",
            "mode": "hot-standby",
            "multi-threading": { "enable-multi-threading": true, "http-dedicated-listener": true },
            "peers": [
                { "name": "server1", "url": "http://$IP_A:8000/", "role": "primary" },
                { "name": "server2", "url": "http://$IP_B:8000/", "role": "standby" } ]
        } ] } } ],
    "subnet4": [ { "id": 1, "subnet": "$SUBNET",
                   "pools": [ { "pool": "$POOL_START - $POOL_END" } ] } ],
    "loggers": [ { "name": "kea-dhcp4", "severity": "INFO",
                   "output_options": [ { "output": "$5/kea.log" } ] } ]
} }
EOF
}

start_kea_host() {   # HOST NAME ADDRESS
    local host=$1 dir=$WORK/kea/$1
    mkdir -p "$dir"
    write_kea_conf "$dir/kea-dhcp4.json" "$2" "$3" fo_${host}0 "$dir"
    KEA_PIDFILE_DIR=$dir KEA_LOCKFILE_DIR=$dir spawn fo_$host "$dir/out.log" kea-dhcp4 -c "$dir/kea-dhcp4.json"
    HOST_PIDS=$SPAWNED
}

in_hot_standby() { grep -qs 'HA_STATE_TRANSITION.*to HOT-STANDBY state' "$1"; }

run_kea() {
    say "== kea: kea-dhcp4 $(kea-dhcp4 -v) with libdhcp_ha.so, hot-standby, server1 on $NS_A primary, server2 on $NS_B standby"
    [[ -f $HOOKS/libdhcp_ha.so ]] || { say "  skipped: no libdhcp_ha.so (Debian package kea-dhcp4-server)"; return 1; }
    start_kea_host a server1 $IP_A
    local kill_a=$HOST_PIDS
    start_kea_host b server2 $IP_B
    # Both partners must have synchronised and reached hot-standby.
    if ! wait_for 60 in_hot_standby "$WORK/kea/a/kea.log" || ! wait_for 60 in_hot_standby "$WORK/kea/b/kea.log"; then
        say "  the partners did not reach hot-standby in 60 s:"
        grep -h -E 'ERROR|WARN|HA_' "$WORK"/kea/*/kea.log "$WORK"/kea/*/out.log | tail -8 | tee -a "$LOG"
        return 1
    fi
    run_clients kea "$kill_a" "${AFTER:-200}"
    grep -h 'HA_STATE_TRANSITION' "$WORK/kea/b/kea.log" | sed 's/^/  server2: /' | tee -a "$LOG"
    # When the standby took over, by its log's clock (local time, as date's).
    local down killed
    down=$(grep -m1 'HA_STATE_TRANSITION.*to PARTNER-DOWN state' "$WORK/kea/b/kea.log" | cut -d' ' -f1,2)
    killed=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["killed_at_unix"])' "$WORK/kea.json")
    if [[ -n $down ]]; then
        awk -v d="$(date -d "$down" +%s.%N)" -v k="$killed" 'BEGIN { printf "%.1f\n", d - k }' > "$OUT/kea-takeover"
        say "  server2 moved to PARTNER-DOWN $(cat "$OUT/kea-takeover") s after the kill"
    fi
    stop_all
}

# ---- the clients

run_clients() {   # SERVER KILL_PIDS SECONDS_AFTER_THE_KILL
    local cmd=(python3 "$CLIENT_TOOL" $BRIDGE --clients "$CLIENTS" --rate "$TURNS"
               --seconds $(( KILL_AFTER + $3 )) --kill-after "$KILL_AFTER" --kill "$2")
    echo "clients ($1): ${cmd[*]}" >> "$WORK/commands.txt"
    say "  load average $(cut -d' ' -f1-3 /proc/loadavg); clients run $(( KILL_AFTER + $3 )) s, host A's PIDs $2 killed at $KILL_AFTER s"
    ip netns exec $NS_CLI "${cmd[@]}" > "$WORK/$1.json" 2> "$WORK/$1.err" || say "  the clients failed: $(tail -3 "$WORK/$1.err")"
    echo "$1	$(cat "$WORK/$1.json")" >> "$OUT/failover.tsv"
    python3 - "$WORK/$1.json" <<'EOF' | tee -a "$LOG"
import json, sys
r = json.load(open(sys.argv[1]))
print("  %(turns)d exchanges begun, %(acks)d ACKs, %(naks)d NAKs; %(clients_with_gaps)d clients had an unanswered send; "
      "longest gap %(longest_gap).2f s (began at %(longest_gap_began).1f s, %(longest_gap_retransmissions)d retransmissions, "
      "still open at the end: %(longest_gap_open)s); %(gaps_over_first_retry)d gaps took more than one retransmission; "
      "longest time with no answer to anyone %(longest_silence).2f s" % r)
for k, n in sorted(r["naks_by"].items()):
    print("  NAKs to a %s: %d" % (k, n))
EOF
}

# ---- the results

write_results() {
    {
        echo "# failover gap, $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo
        echo "- machine: $(nproc) CPUs, kernel $(uname -r); load average at start: $START_LOAD, at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "- in.dhcpd $(git describe --always --dirty 2>/dev/null) ($PROFILE build); kea-dhcp4 $(kea-dhcp4 -v 2>/dev/null); PostgreSQL $("$PG_BIN/postgres" -V | awk '{ print $3 }')"
        echo "- $CLIENTS clients, $TURNS turns/s (a DORA, or a renewal unicast to the server that ACKed); host A's daemons SIGKILLed at $KILL_AFTER s"
        echo "- client retry: RFC 2131's 4 s, doubled up to 64 s; an unanswered REQUEST of a DORA starts again with a DISCOVER, an unanswered renewal is broadcast (rebinding)"
        echo
        echo "| servers | exchanges | NAKs | longest gap s | its retransmissions | clients with a gap | gaps over one retry | longest silence s | first retry s | within one retry |"
        echo "|---|---|---|---|---|---|---|---|---|---|"
        awk -F'\t' '{ print $1 "\t" $2 }' "$OUT/failover.tsv" | python3 -c '
import json, sys
names = {"ours": "in.dhcpd + in.aasd x 2, both active, PostgreSQL", "kea": "Kea HA hot-standby, default timers"}
for line in sys.stdin:
    name, js = line.rstrip("\n").split("\t", 1)
    r = json.loads(js)
    ok = r["longest_gap_retransmissions"] <= 1 and not r["longest_gap_open"]
    print("| %s | %d | %d | %.2f%s | %d | %d | %d | %.2f | %.0f | %s |" % (names.get(name, name), r["turns"], r["naks"], r["longest_gap"],
          " (open at the end)" if r["longest_gap_open"] else "", r["longest_gap_retransmissions"],
          r["clients_with_gaps"], r["gaps_over_first_retry"], r["longest_silence"], r["first_retry"],
          "PASS" if ok else "MISS"))'
        if [[ $(cut -f1 "$OUT/failover.tsv" | sort -u | wc -l) == 2 ]]; then
            python3 - "$OUT/failover.tsv" <<'EOF'
import json, sys
r = {l.split("\t", 1)[0]: json.loads(l.split("\t", 1)[1]) for l in open(sys.argv[1])}
o, k = r["ours"]["longest_gap"], r["kea"]["longest_gap"]
print("\n- failover: longest gap ours %.2f s, Kea HA %.2f s: Kea's is %.1f x ours" % (o, k, k / o if o else float("inf")))
EOF
        fi
        [[ -s $OUT/kea-takeover ]] &&
            printf '\n%s\n' "- Kea's standby moved to PARTNER-DOWN (began to answer) $(cat "$OUT/kea-takeover") s after the kill; clients backed off by then are answered at their next retransmission"
        echo
        echo "A gap: from a client's send that got no answer within its retry interval to the next answer it"
        echo "got. Within one retry (the target for ours): no client needed a second retransmission."
        echo "Longest silence: the longest time in which no client got any answer."
        echo
        echo '```'
        echo "$COMMAND"
        sed "s|$OUT|\$OUT|g; s|$PWD/||g" "$WORK/commands.txt"
        echo '```'
    } > "$RESULTS"
}

START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
rm -f "$OUT/failover.tsv" "$OUT/kea-takeover"
[[ ,$SERVERS, != *,ours,* || ( -x $BIN/in-dhcpd && -x $BIN/in-aasd ) ]] || die "build first: cargo build --release --bins"
ns_up
for server in ${SERVERS//,/ }; do
    case $server in
        ours) run_ours ;;
        kea) run_kea ;;
        *) die "-s: unknown server $server" ;;
    esac
    stop_all
done
[[ -s $OUT/failover.tsv ]] || die "no run completed; see $LOG"
write_results
echo
cat "$RESULTS"
