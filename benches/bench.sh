#!/usr/bin/env bash
# bench.sh: the benchmark behind `make bench` (issue 7).
#
# 1. Throughput: ISC perfdhcp offers full DORA exchanges at a sweep of rates
#    to in.dhcpd + in.aasd (with sync = always, then sync = never, the
#    database on a tmpfs; then sync = always on a slow disk, benches/slowfs,
#    whose fsync takes 5 ms and 20 ms more), to a stateless reflector (the
#    ceiling of this machine), and to Kea, ISC dhcpd and dnsmasq, all in one
#    run. Each rate is repeated and the median kept.
# 2. Cold start: inetd starts a fresh in.dhcpd for one DHCPDISCOVER.
# 3. in.aasd start-up with a /8 pool and many leases in its log.
# 4. The targets of issue 20, each a ratio (or a time) from this run's
#    figures against its limit, PASS or MISS.
#
# Two namespaces joined by a veth; perfdhcp acts as a relay agent:
#
#   ib_cli  ib_c0 10.86.0.2/24 + 10.80.0.1/32  <-->  ib_s0 10.86.0.1/24  ib_srv
#   perfdhcp -l 10.80.0.1 (giaddr)                   server; 10.80.0.0/16 via 10.86.0.2
#
# Run as root from the top of the tree; see DEVELOPING.md, "Performance".
set -u -o pipefail

usage() {
    cat <<'EOF'
usage: benches/bench.sh [--quick] [-p SECONDS] [-n REPEATS] [-S PCT] [-s SERVERS]
                        [-r SERVER=RATES] [-c COUNT] [-a LEASES] [-o DIR]
                        [--debug-build] [--no-install] [--skip-throughput] [-L N]
  --quick         CI mode: ours (sync = always, on tmpfs and on the 5 ms disk)
                  and the reflector at one rate, one 3 s repeat, 3 cold starts,
                  in.aasd start-up with 2,000 leases; fails if ours answers
                  nothing. Same as BENCH_QUICK=1.
  -p SECONDS      perfdhcp test period per repeat (default 10)
  -n REPEATS      repeats of each rate; the median is kept (default 3)
  -S PCT          stop a server's sweep after a rate whose median loses more
                  than PCT % of the exchanges (default 10)
  -s SERVERS      comma list out of ours-always, ours-never, ours-always-5ms,
                  ours-always-20ms, reflector, kea, iscdhcpd, dnsmasq, ours-pg,
                  kea-pg, kea-pg-mt (default: all)
  -r SERVER=RATES offered DORA/s for one server, comma list; may be repeated
                  ("ours" sets both ours-always and ours-never)
  -c COUNT        cold starts per variant (default 20)
  -a LEASES       leases in in.aasd's log for the start-up test (default 100000)
  -o DIR          results and work files (default target/bench)
  --debug-build   use target/debug instead of target/release
  --no-install    do not call apt-get; servers that are missing are skipped
  --skip-throughput  only the cold start and in.aasd start-up tests
  -L N            contention: N busy loops (one shell each, nice 0) run
                  beside every throughput sweep, as other work on the
                  machine would; 0 (default) for none
EOF
}

die() { echo "bench.sh: $*" >&2; exit 1; }
say() { echo "$*" | tee -a "$LOG"; }

# ---- settings

# BENCH_PREFIX names the namespaces, links and lock, so that two copies of
# the tree can each run the benchmark (the figures then share the cores).
P=${BENCH_PREFIX:-ib}
NS_SRV=${P}_srv NS_CLI=${P}_cli VETH_SRV=${P}_s0 VETH_CLI=${P}_c0
SRV_IP=10.86.0.1 CLI_IP=10.86.0.2 RELAY_IP=10.80.0.1
SUBNET=10.80.0.0/16 POOL_START=10.80.0.10 POOL_END=10.80.255.254
CLIENTS=60000          # below the pool's 65,525 addresses
SUSTAIN_PCT=2.5        # a rate is sustained when its median loses at most this
CPU_RATE=8000          # the issue's CPU comparison with Kea is at this rate
LOCK=/tmp/${P}_bench.lock

QUICK=${BENCH_QUICK:-0} PERIOD=10 REPEATS=3 STOP_PCT=10 COLD_COUNT=20
AASD_LEASES=100000 AASD_STARTS=5 OUT=target/bench PROFILE=release INSTALL=1 THROUGHPUT=1
HOGS=0 HOG_PIDS=()
SERVERS=ours-always,ours-never,ours-always-5ms,ours-always-20ms,reflector,kea,iscdhcpd,dnsmasq,ours-pg,kea-pg,kea-pg-mt
declare -A RATES=(
    [ours-always]=250,500,1000,2000,4000,6000,8000,10000,12000,16000,24000,32000
    [ours-always-5ms]=500,1000,2000,3000,4000,5000,6000,8000,10000,12000,16000
    [ours-always-20ms]=250,500,750,1000,1500,2000,3000,4000,6000,8000
    [ours-never]=1000,2000,4000,6000,8000,10000,12000,16000,24000,32000
    [reflector]=2000,4000,8000,12000,16000,24000,32000,40000
    [kea]=1000,2000,4000,6000,8000,10000,12000,14000,16000
    [iscdhcpd]=250,500,750,1000,1500
    [dnsmasq]=50,100,150,200,250,300
    [ours-pg]=250,500,1000,2000,4000,6000,8000,10000,12000,16000
    [kea-pg]=250,500,1000,1500,2000,3000,4000,6000,8000
    [kea-pg-mt]=250,500,1000,1500,2000,3000,4000,6000,8000
)
declare -A RATES_SET=()
BENCH_COMMAND="benches/bench.sh $*"

while (( $# )); do
    case $1 in
        --quick) QUICK=1 ;;
        -p) PERIOD=$2; shift ;;
        -n) REPEATS=$2; shift ;;
        -S) STOP_PCT=$2; shift ;;
        -s) SERVERS=$2; shift ;;
        -r) [[ $2 == *=* ]] || die "-r wants SERVER=RATES"
            name=${2%%=*}
            if [[ $name == ours ]]; then
                RATES_SET[ours-always]=${2#*=} RATES_SET[ours-never]=${2#*=}
            else
                RATES_SET[$name]=${2#*=}
            fi
            shift ;;
        -c) COLD_COUNT=$2; shift ;;
        -a) AASD_LEASES=$2; shift ;;
        -o) OUT=$2; shift ;;
        --debug-build) PROFILE=debug ;;
        --no-install) INSTALL=0 ;;
        --skip-throughput) THROUGHPUT=0 ;;
        -L) HOGS=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done
if [[ $QUICK == 1 ]]; then
    PERIOD=3 REPEATS=1 COLD_COUNT=3 AASD_LEASES=2000 AASD_STARTS=3
    SERVERS=ours-always,ours-always-5ms,reflector
    RATES[ours-always]=1000 RATES[ours-always-5ms]=1000 RATES[reflector]=1000
fi
for name in "${!RATES_SET[@]}"; do
    [[ -n ${RATES[$name]:-} ]] || die "-r: unknown server $name"
    RATES[$name]=${RATES_SET[$name]}
done
for name in ${SERVERS//,/ }; do
    [[ -n ${RATES[$name]:-} ]] || die "-s: unknown server $name"
done

(( EUID == 0 )) || die "needs root: it creates network namespaces"
[[ -f Cargo.toml && -d benches ]] || die "run it from the top of the source tree"

exec 9> "$LOCK"
flock -n 9 || die "another bench.sh run holds $LOCK"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$OUT/work
LOG=$OUT/bench.log
SAMPLES=$OUT/samples.tsv       # one line per perfdhcp run
PER_RATE=$OUT/rates.tsv        # medians per server and rate
RESULTS=$OUT/results.md
TARGETS=$OUT/targets.tsv       # one line per target: the ratio lines
TMPFS=$WORK/tmpfs              # our databases, but those on the slow disk
# What a run killed with -9 left mounted under WORK goes first.
findmnt -rno TARGET | grep "^$WORK/" | sort -r | while read -r m; do umount -l "$m"; done
rm -rf "$WORK"
mkdir -p "$WORK"
: > "$LOG"
BIN=$PWD/target/$PROFILE
SLOWFS=$PWD/target/slowfs/$PROFILE/slowfs
PROBE=$PWD/benches/probe.py

# ---- processes we started, stopped by PID only

SRV_PIDS=()     # the server under test: one PID, or in.dhcpd and in.aasd
SRV_NAMES=()
RATE_NAMES=()   # SRV_NAMES of the last repeat, for the medians

stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

stop_server() {
    local i
    # The reverse of the start order: in.dhcpd before its in.aasd.
    for (( i = ${#SRV_PIDS[@]} - 1; i >= 0; i-- )); do stop_pid "${SRV_PIDS[i]}"; done
    SRV_PIDS=() SRV_NAMES=()
}

ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

ns_down() {
    local ns pid
    for ns in $NS_SRV $NS_CLI; do
        ns_exists $ns || continue
        # Only our own processes live in our namespaces (inetd's children too).
        for pid in $(ip netns pids $ns); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del $ns
    done
}

# N busy loops outside the namespaces, stopped by the PIDs kept.
hogs_start() {
    local i
    for (( i = 0; i < HOGS; i++ )); do
        bash -c 'while :; do :; done' &
        HOG_PIDS+=($!)
    done
}
hogs_stop() {
    local pid
    for pid in "${HOG_PIDS[@]}"; do stop_pid "$pid"; done
    HOG_PIDS=()
}

cleanup() {
    hogs_stop
    stop_server
    [[ -n ${INETD_PID:-} ]] && stop_pid "$INETD_PID"
    stop_slowfs
    mountpoint -q "$TMPFS" && umount -l "$TMPFS"
    ns_down
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ns_up() {
    ns_down
    ip netns add $NS_SRV && ip netns add $NS_CLI || die "cannot create namespaces"
    ip link add $VETH_SRV netns $NS_SRV type veth peer name $VETH_CLI netns $NS_CLI ||
        die "cannot create the veth pair"
    ip -n $NS_SRV addr add $SRV_IP/24 dev $VETH_SRV
    ip -n $NS_CLI addr add $CLI_IP/24 dev $VETH_CLI
    ip -n $NS_CLI addr add $RELAY_IP/32 dev $VETH_CLI
    local ns
    for ns in $NS_SRV $NS_CLI; do ip -n $ns link set lo up; done
    ip -n $NS_SRV link set $VETH_SRV up
    ip -n $NS_CLI link set $VETH_CLI up
    # Replies go to giaddr, which lives in the client namespace.
    ip -n $NS_SRV route add $SUBNET via $CLI_IP
    ip netns exec $NS_CLI ping -c1 -W2 -I $RELAY_IP $SRV_IP >/dev/null || die "the veth link does not work"
}

# ---- the slow disk: benches/slowfs, a FUSE passthrough of a directory on
# the bench's tmpfs whose fsync and fdatasync take SLOW_MS ms more

SLOWFS_PID="" SLOWFS_MNT=""

start_slowfs() {   # MS: mount it on $WORK/slowfs-MSms; 1 if it does not come up
    local ms=$1 i
    SLOWFS_MNT=$WORK/slowfs-${ms}ms
    mkdir -p "$SLOWFS_MNT" "$TMPFS/slowfs-${ms}ms"
    echo "slowfs: $SLOWFS -d $ms $TMPFS/slowfs-${ms}ms $SLOWFS_MNT" >> "$WORK/commands.txt"
    "$SLOWFS" -d "$ms" "$TMPFS/slowfs-${ms}ms" "$SLOWFS_MNT" 2> "$WORK/slowfs-${ms}ms.log" &
    SLOWFS_PID=$!
    # It prints its line once the mount answers, or exits saying why.
    for i in $(seq 100); do
        grep -q "mounted on" "$WORK/slowfs-${ms}ms.log" && return 0
        kill -0 "$SLOWFS_PID" 2>/dev/null || break
        sleep 0.1
    done
    say "  slowfs did not mount: $(cat "$WORK/slowfs-${ms}ms.log")"
    stop_slowfs
    return 1
}

stop_slowfs() {
    [[ -n $SLOWFS_PID ]] && stop_pid "$SLOWFS_PID"   # SIGTERM: it unmounts
    [[ -n $SLOWFS_MNT ]] && mountpoint -q "$SLOWFS_MNT" && umount -l "$SLOWFS_MNT"
    SLOWFS_PID="" SLOWFS_MNT=""
}

# ---- packages

# Binary -> Debian package, installed only when the binary is missing.
declare -A PACKAGE_OF=(
    [perfdhcp]=kea-admin [kea-dhcp4]=kea-dhcp4-server [dhcpd]=isc-dhcp-server
    [dnsmasq]=dnsmasq [inetd]=openbsd-inetd [python3]=python3
)

# PIDs of processes whose name is exactly one of the peers' daemons. Not
# pgrep: its pattern is a regular expression matched against names cut to 15
# characters, so a list of alternatives longer than that matches nothing.
server_pids() {
    local p
    for p in /proc/[0-9]*; do
        case "$(cat "$p/comm" 2>/dev/null)" in
            kea-dhcp4 | dhcpd | dnsmasq | inetd) echo "${p#/proc/}" ;;
        esac
    done | sort
}

install_missing() {
    local want=(perfdhcp inetd python3) missing=() b
    [[ $QUICK == 1 ]] || want+=(kea-dhcp4 dhcpd dnsmasq)
    for b in "${want[@]}"; do
        PATH=$PATH:/usr/sbin command -v "$b" >/dev/null || missing+=("${PACKAGE_OF[$b]}")
    done
    (( ${#missing[@]} )) || return 0
    if [[ $INSTALL == 0 ]]; then
        say "not installing (--no-install): ${missing[*]}"
        return 0
    fi
    say "installing: ${missing[*]}"
    # Debian starts a packaged service on install unless policy-rc.d says
    # no; say no for the time of the install, and afterwards stop any
    # daemon that started anyway (by PID: only those that were not there).
    local made_policy=0 before after pid
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    before=$(server_pids)
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >> "$LOG" 2>&1 || {
        apt-get update >> "$LOG" 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >> "$LOG" 2>&1 ||
            say "apt-get install failed (see $LOG); servers still missing are skipped"
    }
    after=$(server_pids)
    for pid in $(comm -13 <(echo "$before") <(echo "$after")); do
        say "stopping $(cat /proc/"$pid"/comm 2>/dev/null) (PID $pid), started by the install"
        kill "$pid" 2>/dev/null
    done
    (( made_policy )) && rm -f /usr/sbin/policy-rc.d
    return 0
}

# ---- the servers

wait_for_socket() {   # PATH: until in.aasd creates it, 10 s at most
    local i
    for i in $(seq 100); do [[ -S $1 ]] && return 0; sleep 0.1; done
    return 1
}

write_aasd_conf() {   # FILE DIR SYNC RANGE [DATABASE_TOP]
    # checkpoint_dir is left to its default, database_dir/checkpoints.
    cat > "$1" <<EOF
database_dir = ${5:-$2}/db
socket = $2/aasd.sock
sync = $3

[pool Bench]
range = $4
EOF
}

# Start one process in the server namespace; its PID joins SRV_PIDS.
# `ip netns exec` execs the command, so $! is the server itself.
spawn() {   # NAME LOGFILE CMD...
    local name=$1 logfile=$2
    shift 2
    echo "$name: $*" >> "$WORK/commands.txt"
    ip netns exec $NS_SRV "$@" > "$logfile" 2>&1 &
    SRV_PIDS+=($!) SRV_NAMES+=("$name")
}

# in.dhcpd's file for ours: the bench subnet from the pool Bench of the
# in.aasd whose socket is in DIR.
write_dhcpd_conf() {   # DIR
    cat > "$1/dhcpd.conf" <<EOF
[server]
aas_socket = $1/aasd.sock

[global]
lease_time = 1h

[subnet $SUBNET]
pool = Bench
routers = $RELAY_IP
EOF
}

start_ours() {   # SYNC DATABASE_TOP (the tmpfs or the slow disk)
    local dir=$WORK/ours
    mkdir -p "$dir"
    rm -rf "${2:?}/db"
    write_aasd_conf "$dir/aasd.conf" "$dir" "$1" $POOL_START-$POOL_END "$2"
    write_dhcpd_conf "$dir"
    spawn in.aasd "$dir/aasd.log" "$BIN/in-aasd" -f -c "$dir/aasd.conf"
    wait_for_socket "$dir/aasd.sock" || return 1
    # Default debug level (errors only); -u root: no socket permissions to
    # arrange in a private work directory.
    spawn in.dhcpd "$dir/dhcpd.log" "$BIN/in-dhcpd" -s -f -u root -c "$dir/dhcpd.conf"
}

# Kea on the bench subnet, its files in DIR: MT true or false for its
# multi-threading, LEASE_DB the value of its "lease-database".
run_kea() {   # DIR MT LEASE_DB
    local dir=$1
    cat > "$dir/kea-dhcp4.json" <<EOF
{ "Dhcp4": {
    "interfaces-config": { "interfaces": [ "$VETH_SRV" ], "dhcp-socket-type": "udp" },
    "lease-database": $3,
    "multi-threading": { "enable-multi-threading": $2 },
    "valid-lifetime": 3600,
    "authoritative": true,
    "subnet4": [ { "id": 1, "subnet": "$SUBNET",
                   "pools": [ { "pool": "$POOL_START - $POOL_END" } ],
                   "option-data": [ { "name": "routers", "data": "$RELAY_IP" } ] } ],
    "loggers": [ { "name": "kea-dhcp4", "severity": "WARN",
                   "output_options": [ { "output": "$dir/kea.log" } ] } ]
} }
EOF
    KEA_PIDFILE_DIR=$dir KEA_LOCKFILE_DIR=$dir spawn kea-dhcp4 "$dir/out.log" kea-dhcp4 -c "$dir/kea-dhcp4.json"
}

start_kea() {
    local dir=$WORK/kea
    mkdir -p "$dir"
    # memfile leases persisted to a CSV (appended, never fsynced), no lease
    # file cleanup during the run, one thread (Kea 2.2's default).
    run_kea "$dir" false "$(printf '{ "type": "memfile", "persist": true, "name": "%s", "lfc-interval": 0 }' \
        "$dir/leases4.csv")"
}

start_iscdhcpd() {
    local dir=$WORK/iscdhcpd
    mkdir -p "$dir"
    # No ICMP probe before an offer; dhcpd needs a declaration for the
    # link it listens on as well as for the relayed subnet.
    cat > "$dir/dhcpd.conf" <<EOF
authoritative;
ddns-update-style none;
ping-check false;
default-lease-time 3600;
max-lease-time 7200;
subnet 10.86.0.0 netmask 255.255.255.0 { }
subnet 10.80.0.0 netmask 255.255.0.0 {
  range $POOL_START $POOL_END;
  option routers $RELAY_IP;
}
EOF
    : > "$dir/dhcpd.leases"
    spawn dhcpd "$dir/out.log" dhcpd -4 -f -q -cf "$dir/dhcpd.conf" -lf "$dir/dhcpd.leases" \
        -pf "$dir/dhcpd.pid" $VETH_SRV
}

start_dnsmasq() {
    local dir=$WORK/dnsmasq
    mkdir -p "$dir"
    # DHCP only (--port=0), no ICMP probe before an offer, no per-packet
    # log lines, room for every address of the pool.
    spawn dnsmasq "$dir/out.log" dnsmasq -k --conf-file=/dev/null --port=0 \
        --interface=$VETH_SRV --bind-interfaces --user=root --group=root --pid-file= \
        --log-facility="$dir/dnsmasq.log" --quiet-dhcp --no-ping --dhcp-authoritative \
        --dhcp-lease-max=70000 --dhcp-leasefile="$dir/dnsmasq.leases" \
        --dhcp-range=$POOL_START,$POOL_END,255.255.0.0,1h --dhcp-option=option:router,$RELAY_IP
}

start_reflector() {
    spawn dhcp_reflector "$WORK/reflector.log" "$BIN/examples/dhcp_reflector" $SRV_IP
}

# ---- PostgreSQL (issue 21): ours and Kea each on a fresh cluster of the
# same settings, started by the bench in the server's work directory (the
# same disk as the other stores), as nobody (PostgreSQL refuses root),
# reachable only by its Unix socket. Its postmaster joins SRV_PIDS first,
# so that it is stopped last and its CPU (with every backend's, see
# cluster_ticks) is counted as the server's.

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
# Durable commits as a production store would run: every commit's WAL
# flushed before the answer. The rest is PostgreSQL 15's defaults.
PG_SETTINGS=(-c fsync=on -c synchronous_commit=on -c full_page_writes=on
             -c wal_sync_method=fdatasync -c shared_buffers=128MB -c max_connections=40)
PG_POSTMASTER=""

# "PostgreSQL 15.18 (fsync=on, ...)": the version and PG_SETTINGS.
pg_version() {
    local a set=""
    for a in "${PG_SETTINGS[@]}"; do [[ $a == -c ]] || set+="${set:+, }$a"; done
    echo "PostgreSQL $("$PG_BIN/postgres" -V | awk '{ print $3 }') ($set)"
}

as_nobody() { setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- "$@"; }

pg_sql() {   # DIR DB SQL|-f FILE: psql as the superuser over DIR's socket
    local dir=$1 db=$2
    shift 2
    [[ $1 == -f ]] || set -- -c "$1"
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -U postgres -d "$db" "$@" >> "$dir/psql.log" 2>&1
}

# A new cluster in DIR, accepting connections; its PID joins SRV_PIDS.
pg_up() {   # DIR
    local dir=$1 i
    [[ -x $PG_BIN/initdb ]] || { say "  no PostgreSQL under /usr/lib/postgresql (Debian package postgresql)"; return 1; }
    mkdir -p "$dir"
    chown nobody "$dir"
    chmod 700 "$dir"
    as_nobody "$PG_BIN/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C --auth=trust --no-sync \
        > "$dir/initdb.log" 2>&1 || return 1
    spawn postgresql "$dir/server.log" setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- \
        "$PG_BIN/postgres" -D "$dir/data" -c listen_addresses= -c unix_socket_directories="$dir" \
        -c port=5432 "${PG_SETTINGS[@]}"
    PG_POSTMASTER=${SRV_PIDS[-1]}
    for i in $(seq 300); do
        "$PG_BIN/pg_isready" -q -h "$dir" -p 5432 -t 1 && return 0
        kill -0 "$PG_POSTMASTER" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# CPU ticks of a cluster: the postmaster's own and those of its children
# that ended (cutime, cstime), plus every live child's (the backends, the
# WAL writer, the checkpointer ...), by their parent PID in /proc.
cluster_ticks() {   # POSTMASTER
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v pm="$1" '
        { pid = $1; sub(/^.*\) /, "")
          if (pid == pm) t += $12 + $13 + $14 + $15; else if ($2 == pm) t += $12 + $13 }
        END { print t + 0 }'
}

start_ours_pg() {
    local dir=$WORK/ours-pg
    mkdir -p "$dir"
    pg_up "$dir/pg" && pg_sql "$dir/pg" postgres "CREATE DATABASE leases" || return 1
    cat > "$dir/aasd.conf" <<EOF
database_dir = $dir/db
socket = $dir/aasd.sock
store = postgresql
postgresql = host=$dir/pg port=5432 user=postgres dbname=leases

[pool Bench]
range = $POOL_START-$POOL_END
EOF
    write_dhcpd_conf "$dir"
    spawn in.aasd "$dir/aasd.log" "$BIN/in-aasd" -f -c "$dir/aasd.conf"
    wait_for_socket "$dir/aasd.sock" || return 1
    spawn in.dhcpd "$dir/dhcpd.log" "$BIN/in-dhcpd" -s -f -u root -c "$dir/dhcpd.conf"
}

start_kea_pg() {   # MT: true for Kea's multi-threaded mode, its defaults
    local dir=$WORK/kea-pg
    mkdir -p "$dir"
    pg_up "$dir/pg" && pg_sql "$dir/pg" postgres "CREATE DATABASE kea" &&
        pg_sql "$dir/pg" kea -f /usr/share/kea/scripts/pgsql/dhcpdb_create.pgsql || return 1
    # As start_kea, with the leases in PostgreSQL; thread-pool-size 0 and
    # packet-queue-size 64 are Kea's multi-threading defaults.
    run_kea "$dir" "$1" "$(printf '{ "type": "postgresql", "name": "kea", "user": "postgres", "host": "%s", "port": 5432 }' \
        "$dir/pg")"
}

# The sustained offered rate of SERVER from PER_RATE, as summary_table
# counts it (at most SUSTAIN_PCT % lost, and perfdhcp sent the rate).
sustained_rate() {   # SERVER
    awk -F'\t' -v s="$1" -v sustain=$SUSTAIN_PCT '
        $1 == s && $4 != "-" && $4 + 0 <= sustain && $13 >= $2 * (1 - sustain / 100) && $2 + 0 > best { best = $2 + 0 }
        END { print best + 0 }' "$PER_RATE"
}

# Issue 21's line: ours on PostgreSQL against Kea on PostgreSQL, target 3x.
pg_ratio_lines() {
    local ours kea s
    ours=$(sustained_rate ours-pg)
    grep -q '^ours-pg	' "$PER_RATE" && echo
    for s in kea-pg kea-pg-mt; do
        kea=$(sustained_rate $s)
        (( ours > 0 && kea > 0 )) || continue
        awk -v o="$ours" -v k="$kea" -v s="$s" 'BEGIN {
            r = o / k
            printf "- PostgreSQL: ours-pg sustained %d/s, %s %d/s: %.2f x (target >= 3 x: %s)\n", o, s, k, r, (r >= 3 ? "PASS" : "MISS") }'
    done
}

# Start SERVER with an empty lease store; 0 once it listens on UDP 67.
start_server() {
    local i
    rm -rf "${WORK:?}/${1%-*}" "$WORK/$1"
    case $1 in
        ours-always) start_ours always "$TMPFS/ours" ;;
        ours-never) start_ours never "$TMPFS/ours" ;;
        ours-always-*ms) start_ours always "$SLOWFS_MNT" ;;
        ours-pg) start_ours_pg ;;
        kea-pg) start_kea_pg false ;;
        kea-pg-mt) start_kea_pg true ;;
        *) "start_$1" ;;
    esac || return 1
    for i in $(seq 100); do
        for pid in "${SRV_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || return 1; done
        if ip netns exec $NS_SRV ss -Hlun 'sport = :67' | grep -q .; then
            sleep 1   # let it finish starting after the bind
            check_not_forked
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# CPU is read from the PIDs we started: warn if the socket on UDP 67
# belongs to another process, as it would after a fork.
check_not_forked() {
    local owner
    owner=$(ip netns exec $NS_SRV ss -Hlunp 'sport = :67' | grep -o 'pid=[0-9]*' | head -1)
    [[ " ${SRV_PIDS[*]} " == *" ${owner#pid=} "* ]] ||
        say "  warning: UDP 67 is held by $owner, not by a PID we started (${SRV_PIDS[*]}): its CPU is not counted"
}

server_version() {
    case $1 in
        ours-pg) echo "in.dhcpd $(git describe --always --dirty 2>/dev/null) ($PROFILE build), $(pg_version)" ;;
        ours-*) echo "in.dhcpd $(git describe --always --dirty 2>/dev/null) ($PROFILE build)" ;;
        reflector) echo "examples/dhcp_reflector.rs" ;;
        kea) echo "kea-dhcp4 $(kea-dhcp4 -v 2>/dev/null)" ;;
        kea-pg*) echo "kea-dhcp4 $(kea-dhcp4 -v 2>/dev/null), $(pg_version)" ;;
        iscdhcpd) dhcpd --version 2>&1 | head -1 ;;
        dnsmasq) dnsmasq --version | awk 'NR == 1 { print "dnsmasq", $3 }' ;;
    esac
}

server_binary() {
    case $1 in
        ours-*) echo "$BIN/in-dhcpd" ;;
        reflector) echo "$BIN/examples/dhcp_reflector" ;;
        iscdhcpd) echo dhcpd ;;
        kea-pg*) echo kea-dhcp4 ;;
        *) echo "$1" | sed 's/^kea$/kea-dhcp4/' ;;
    esac
}

# ---- measuring

cpu_ticks() {
    [[ $1 == "$PG_POSTMASTER" ]] && { cluster_ticks "$1"; return; }
    awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# UDP datagrams dropped in a namespace because a receive buffer was full.
rcvbuf_errors() {
    ip netns exec "$1" awk '/^Udp:/ && !seen { for (i = 1; i <= NF; i++) col[$i] = i; seen = 1; next }
                            /^Udp:/ { print $col["RcvbufErrors"] }' /proc/net/snmp
}

load_average() { cut -d' ' -f1-3 /proc/loadavg; }

median() {   # numbers on stdin, "-" ignored
    grep -v '^-$' | sort -g | awk '{ v[NR] = $1 }
        END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2];
              else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# One perfdhcp run against the running server; appends a line to SAMPLES:
# server rate repeat dora/s drops% mean_ms cpu%_total us/dora client_cpu% rcvbuf_drops alive
# cpu%_per_process rejected (perfdhcp's "rejected leases": NAKs and bad answers)
# sent/s (DISCOVERs perfdhcp sent per second: below the rate, perfdhcp was the limit)
run_perfdhcp() {   # SERVER RATE REPEAT
    local server=$1 rate=$2 rep=$3 out=$WORK/perfdhcp.$1.$2.$3.txt i
    # -W: after the period, half a second more to take the answers still
    # on their way; without it every exchange in flight at the end counts
    # as lost, which charges a slow disk's latency as loss (20 ms of mean
    # delay was 0.4 % of a 5 s run).
    local cmd=(perfdhcp -4 -g single -r "$rate" -p "$PERIOD" -W 500000 -R $CLIENTS -l $RELAY_IP $SRV_IP)
    (( rep == 1 )) && echo "perfdhcp ($server, $rate/s): ${cmd[*]}" >> "$WORK/commands.txt"
    local -a before=() after=()
    for i in "${!SRV_PIDS[@]}"; do before[i]=$(cpu_ticks "${SRV_PIDS[i]}"); done
    local drops0 drops1
    drops0=$(rcvbuf_errors $NS_SRV)
    TIMEFORMAT='%U %S'
    { time timeout $(( PERIOD + 60 )) ip netns exec $NS_CLI "${cmd[@]}" > "$out" 2>&1; } 2> "$out.time"
    for i in "${!SRV_PIDS[@]}"; do after[i]=$(cpu_ticks "${SRV_PIDS[i]}"); done
    drops1=$(rcvbuf_errors $NS_SRV)
    local alive=yes per_proc="" total=0 pct
    for i in "${!SRV_PIDS[@]}"; do
        kill -0 "${SRV_PIDS[i]}" 2>/dev/null || alive=no
        pct=$(awk -v t=$(( after[i] - before[i] )) -v hz="$(getconf CLK_TCK)" -v p="$PERIOD" \
            'BEGIN { printf "%.1f", 100 * t / hz / p }')
        per_proc+="${per_proc:+,}${SRV_NAMES[i]}=$pct"
        total=$(awk -v a="$total" -v b="$pct" 'BEGIN { print a + b }')
    done
    # perfdhcp prints a block per exchange, DISCOVER-OFFER then REQUEST-ACK.
    awk -v server="$server" -v rate="$rate" -v rep="$rep" -v period="$PERIOD" -v cpu="$total" \
        -v rcvbuf=$(( drops1 - drops0 )) -v alive=$alive -v per_proc="$per_proc" -v time_file="$out.time" '
        /Statistics for: DISCOVER-OFFER/ { ex = "do" }
        /Statistics for: REQUEST-ACK/ { ex = "ra" }
        /^sent packets:/ { sent[ex] = $3 }
        /^received packets:/ { got[ex] = $3 }
        /^avg delay:/ && $3 ~ /^[0-9.]+$/ { avg[ex] = $3 }
        /^rejected leases:/ { rejected += $3 }
        END {
            getline times < time_file
            split(times, t, " ")
            acks = got["ra"] + 0
            lost = sent["do"] > 0 ? 100 * (1 - acks / sent["do"]) : 100
            us = acks > 0 ? cpu / 100 * period * 1e6 / acks : "-"
            mean = acks > 0 ? sprintf("%.3f", avg["do"] + avg["ra"]) : "-"
            printf "%s\t%s\t%s\t%.0f\t%.2f\t%s\t%.1f\t%s\t%.0f\t%d\t%s\t%s\t%d\t%.0f\n", server, rate, rep,
                acks / period, lost, mean, cpu, us == "-" ? "-" : sprintf("%.1f", us),
                100 * (t[1] + t[2]) / period, rcvbuf, alive, per_proc, rejected, sent["do"] / period
        }' "$out" >> "$SAMPLES"
}

# The medians of one server's repeats at one rate, as a line of PER_RATE:
# server rate dora/s drops% mean_ms cpu%_total us/dora client_cpu% rcvbuf alive cpu%_per_process rejected sent/s
summarise_rate() {   # SERVER RATE
    local rows col m line="$1	$2" name per_proc=""
    rows=$(awk -F'\t' -v s="$1" -v r="$2" '$1 == s && $2 == r' "$SAMPLES")
    for col in 4 5 6 7 8 9 10; do
        m=$(cut -f$col <<< "$rows" | median)
        line+="	$m"
    done
    grep -q '	no	' <<< "$rows" && line+="	no" || line+="	yes"
    for name in "${RATE_NAMES[@]}"; do
        m=$(cut -f12 <<< "$rows" | tr ',' '\n' | sed -n "s/^$name=//p" | median)
        per_proc+="${per_proc:+,}$name=$m"
    done
    line+="	$per_proc	$(cut -f13 <<< "$rows" | median)	$(cut -f14 <<< "$rows" | median)"
    echo "$line" >> "$PER_RATE"
    awk -F'\t' '{ printf "  %-11s %6s/s  sent %6s/s  DORA/s %6s  lost %6s %%  mean %7s ms  CPU %s (%s %%) = %s us/DORA  perfdhcp %s %%  rcvbuf drops %s  rejected %s  alive %s\n",
        $1, $2, $13, $3, $4, $5, $11, $6, $7, $8, $9, $12, $10 }' <<< "$line" | tee -a "$LOG"
}

# A slow-disk server sweeps with its slowfs mounted; the others as they are.
sweep() {   # SERVER
    local server=$1 ms
    if [[ $server != ours-always-*ms ]]; then
        sweep_rates "$server"
        return
    fi
    ms=${server#ours-always-} ms=${ms%ms}
    if [[ ! -x $SLOWFS ]]; then
        say "== $server: skipped, benches/slowfs was not built (see $LOG)"
        return 0
    fi
    start_slowfs "$ms" || { say "== $server: skipped"; return 0; }
    sweep_rates "$server"
    stop_slowfs
}

sweep_rates() {   # SERVER
    local server=$1 rate rep lost
    if ! command -v "$(server_binary "$server")" > /dev/null; then
        say "== $server: skipped, $(server_binary "$server") is not installed"
        return 0
    fi
    say "== $server ($(server_version "$server")): rates ${RATES[$server]}, $REPEATS x ${PERIOD}s; load average $(load_average)"
    for rate in ${RATES[$server]//,/ }; do
        for (( rep = 1; rep <= REPEATS; rep++ )); do
            if ! start_server "$server"; then
                say "  $server did not start; its log:"
                tail -5 "$WORK"/*/*.log "$WORK"/*.log 2>/dev/null | tee -a "$LOG"
                stop_server
                return 0
            fi
            run_perfdhcp "$server" "$rate" "$rep"
            RATE_NAMES=("${SRV_NAMES[@]}")
            stop_server
        done
        summarise_rate "$server" "$rate"
        lost=$(awk -F'\t' -v s="$server" -v r="$rate" '$1 == s && $2 == r { print $4 }' "$PER_RATE")
        if awk -v a="$lost" -v b="$STOP_PCT" 'BEGIN { exit !(a > b) }'; then
            say "  stopping $server's sweep: $lost % lost > $STOP_PCT %"
            break
        fi
    done
    if [[ $server == ours-* ]]; then
        # Anything in.dhcpd or in.aasd logged at the error level, last run.
        local errors
        errors=$(cat "$WORK/ours/dhcpd.log" "$WORK/ours/aasd.log" 2>/dev/null | sort | uniq -c | sort -rn | head -5)
        [[ -z $errors ]] || say "  $server logged (last run, count and line):"$'\n'"$errors"
    fi
}

# ---- cold start: inetd starts a fresh in.dhcpd for each DHCPDISCOVER

COLD_FIXED_MAC=02:00:00:00:03:de   # client entry 990: subnet 10.80, 10.80.200.100

# 1,000 client entries with fixed addresses, 100 in each of 10 subnets;
# only 10.80.0.0/16 (the relayed one) has a pool. With "small": that subnet
# and the measured client only, to tell the cost of reading the big file.
write_cold_conf() {   # FILE AAS_SOCKET [small]
    local i k net subnets=9 clients
    clients=$(seq 0 999)
    [[ ${3:-} == small ]] && subnets=0 clients=990
    {
        printf '[server]\naas_socket = %s\n\n[global]\nlease_time = 1h\n' "$2"
        for k in $(seq 0 $subnets); do
            net=$(( k == 0 ? 80 : 89 + k ))
            printf '\n[subnet 10.%d.0.0/16]\nrouters = 10.%d.0.1\n' $net $net
            (( k == 0 )) && printf 'pool = Bench\n'
        done
        for i in $clients; do
            k=$(( i % 10 ))
            net=$(( k == 0 ? 80 : 89 + k ))
            printf '\n[client 02:00:00:00:%02x:%02x]\nip_address = 10.%d.200.%d\n' \
                $(( i >> 8 )) $(( i & 255 )) $net $(( i / 10 + 1 ))
        done
    } > "$1"
}

# The in.dhcpd that inetd started, if one runs now.
inetd_child() {
    local pid
    for pid in $(ip netns pids $NS_SRV); do
        [[ $(cat "/proc/$pid/comm" 2>/dev/null) == in-dhcpd ]] && { echo "$pid"; return; }
    done
}

cold_start() {   # VARIANT: fixed, dynamic, or fixed-small (a 1-client file)
    local variant=$1 dir=$WORK/cold i mac pid line
    rm -rf "$dir"
    mkdir -p "$dir"
    write_aasd_conf "$dir/aasd.conf" "$dir" always 10.80.0.10-10.80.199.254
    write_cold_conf "$dir/dhcpd.conf" "$dir/aasd.sock" "${variant#fixed-}"
    "$BIN/in-dhcpd" -C -c "$dir/dhcpd.conf" > /dev/null || die "cold start: bad dhcpd.conf"
    # A file written in the last second is not taken yet (in.dhcpd(8)):
    # date it back, as a configuration in place for a while.
    touch -d '-2 seconds' "$dir/dhcpd.conf"
    if [[ $variant == dynamic ]]; then
        spawn in.aasd "$dir/aasd.log" "$BIN/in-aasd" -f -c "$dir/aasd.conf"
        wait_for_socket "$dir/aasd.sock" || { say "  in.aasd did not start"; return 1; }
    fi
    # udp4: with udp inetd would also open [::]:67 (harness README).
    printf 'bootps\tdgram\tudp4\twait\troot\t%s\tin.dhcpd -t 1s -u root -c %s\n' \
        "$BIN/in-dhcpd" "$dir/dhcpd.conf" > "$dir/inetd.conf"
    echo "inetd ($variant): $(cat "$dir/inetd.conf")" >> "$WORK/commands.txt"
    # nsrun.sh gives inetd a private /run for its PID file.
    tests/tools/nsrun.sh $NS_SRV inetd -d -E "$dir/inetd.conf" > "$dir/inetd.log" 2>&1 &
    INETD_PID=$!
    for i in $(seq 50); do grep -q "ADD: bootps" "$dir/inetd.log" && break; sleep 0.1; done
    for i in $(seq "$COLD_COUNT"); do
        mac=$COLD_FIXED_MAC
        [[ $variant == dynamic ]] && mac=$(printf '02:cd:00:00:%02x:%02x' $(( i >> 8 )) $(( i & 255 )))
        line=$(ip netns exec $NS_CLI python3 "$PROBE" discover $SRV_IP $RELAY_IP "$mac" 5)
        echo "$variant	$i	$line" | tr ' ' '\t' >> "$OUT/coldstart.tsv"
        # Wait for the idle exit (-t 1s), so that the next sample starts a
        # new process; kill it if it lingers.
        pid=$(inetd_child)
        for _ in $(seq 50); do
            [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && { say "  in.dhcpd $pid did not exit after -t 1s"; kill "$pid"; }
    done
    stop_pid "$INETD_PID"
    INETD_PID=""
    stop_server
    local cold warm answered
    cold=$(awk -F'\t' -v v="$variant" '$1 == v { sub("cold_us=", "", $3); print $3 }' "$OUT/coldstart.tsv" | median)
    warm=$(awk -F'\t' -v v="$variant" '$1 == v { sub("warm_us=", "", $4); print $4 }' "$OUT/coldstart.tsv" | median)
    answered=$(awk -F'\t' -v v="$variant" '$1 == v && $3 != "cold_us=-"' "$OUT/coldstart.tsv" | wc -l)
    echo "$variant	$COLD_COUNT	$answered	$cold	$warm" >> "$OUT/coldstart.summary"
    say "  $variant: $answered of $COLD_COUNT answered; DISCOVER to OFFER median $cold us from a fresh process, $warm us from the running one"
}

# ---- in.aasd start-up with a /8 pool

aasd_startup() {
    local dir=$WORK/aasd rss0 line
    rm -rf "$dir"
    mkdir -p "$dir"
    # The pool spans 16 million addresses; only leases in use should cost memory.
    write_aasd_conf "$dir/aasd.conf" "$dir" never 10.0.0.1-10.255.255.254
    say "  empty log: $AASD_STARTS starts"
    ip netns exec $NS_SRV python3 "$PROBE" aasd-start "$BIN/in-aasd" "$dir/aasd.conf" "$dir/aasd.sock" \
        "$AASD_STARTS" | sed 's/^/empty\t/' | tr ' ' '\t' >> "$OUT/aasd.tsv"
    spawn in.aasd "$dir/fill.log" "$BIN/in-aasd" -f -c "$dir/aasd.conf"
    wait_for_socket "$dir/aasd.sock" || { say "  in.aasd did not start"; return 1; }
    line=$(ip netns exec $NS_SRV python3 "$PROBE" aasd-fill "$dir/aasd.sock" Bench 10.0.0.0 "$AASD_LEASES")
    say "  filled with $AASD_LEASES ALLOCs: $line"
    [[ $line == "ok=$AASD_LEASES refused=0" ]] || AASD_FILL_FAILED=1
    stop_server
    say "  database after SIGTERM: $(du -sh "$dir/db" | cut -f1) ($(ls "$dir/db" | tr '\n' ' '))"
    ip netns exec $NS_SRV python3 "$PROBE" aasd-start "$BIN/in-aasd" "$dir/aasd.conf" "$dir/aasd.sock" \
        "$AASD_STARTS" | sed "s/^/$AASD_LEASES\t/" | tr ' ' '\t' >> "$OUT/aasd.tsv"
    local leases start rss n
    for leases in empty "$AASD_LEASES"; do
        start=$(awk -F'\t' -v l="$leases" '$1 == l { sub("start_ms=", "", $2); print $2 }' "$OUT/aasd.tsv" | median)
        rss=$(awk -F'\t' -v l="$leases" '$1 == l { sub("rss_kb=", "", $3); print $3 }' "$OUT/aasd.tsv" | median)
        n=$(awk -F'\t' -v l="$leases" '$1 == l && $2 != "start_ms=-"' "$OUT/aasd.tsv" | wc -l)
        echo "$leases	$n	$start	$rss" >> "$OUT/aasd.summary"
        say "  $leases leases: $n of $AASD_STARTS starts answered PING; median $start ms to PING, VmRSS $rss kB"
    done
}

# ---- the results

# Per server, from the medians per rate: the highest offered rate lost at
# most SUSTAIN_PCT %, the peak DORA/s, and at the sustained rate its mean
# delay, CPU per process and CPU per DORA; CPU per DORA at CPU_RATE; the
# sustained rate as a multiple of Kea's and of the reflector's.
summary_table() {
    awk -F'\t' -v sustain=$SUSTAIN_PCT -v at=$CPU_RATE -v order="${SERVERS//,/ }" '
        {
            s = $1; seen[s] = 1
            if ($3 != "-" && $3 + 0 > peak[s]) peak[s] = $3 + 0
            # A rate perfdhcp could not send measures perfdhcp, not the server.
            if ($4 != "-" && $4 + 0 <= sustain && $13 >= $2 * (1 - sustain / 100) && $2 + 0 > best[s]) {
                best[s] = $2 + 0; mean[s] = $5; cpu[s] = $11; us[s] = $7
            }
            # At CPU_RATE only where sustained; else the figure with its loss.
            if ($2 + 0 == at && $4 != "-") us_at[s] = $4 + 0 <= sustain ? $7 : "(" $7 ", " $4 " % lost)"
        }
        function ratio(s, ref) { return (best[s] && best[ref]) ? sprintf("%.3g", best[s] / best[ref]) : "-" }
        END {
            print "| server | sustained offered/s (≤ " sustain " % lost) | peak DORA/s | mean DORA ms | CPU % per process | CPU µs/DORA | CPU µs/DORA at " at "/s | × Kea | × reflector |"
            print "|---|---|---|---|---|---|---|---|---|"
            n = split(order, names, " ")
            for (i = 1; i <= n; i++) {
                s = names[i]
                if (!seen[s]) continue
                gsub(",", ", ", cpu[s]); gsub("=", " ", cpu[s])
                printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s, best[s] ? best[s] : "none",
                    peak[s] + 0, best[s] ? mean[s] : "-", best[s] ? cpu[s] : "-", best[s] ? us[s] : "-",
                    (s in us_at) ? us_at[s] : "-", ratio(s, "kea"), ratio(s, "reflector")
            }
        }' "$PER_RATE"
}

# ---- the targets of issue 20, from this run's figures

# The highest offered rate SERVER sustained, as in the summary table; 0 if
# it sustained none, nothing if it did not run.
sustained() {   # SERVER
    awk -F'\t' -v s="$1" -v sustain=$SUSTAIN_PCT '
        $1 == s && $4 != "-" && $4 + 0 <= sustain && $13 >= $2 * (1 - sustain / 100) && $2 + 0 > best { best = $2 + 0 }
        $1 == s { seen = 1 }
        END { if (seen) print best + 0 }' "$PER_RATE" 2>/dev/null
}

# CPU µs per DORA (all of the server's processes) at RATE, and the loss.
cpu_at() {   # SERVER RATE: "US LOST" or nothing
    awk -F'\t' -v s="$1" -v r="$2" '$1 == s && $2 == r && $7 != "-" { print $7, $4 }' "$PER_RATE" 2>/dev/null
}

# The median of one column of coldstart.summary or aasd.summary.
field() {   # FILE KEY COLUMN
    awk -F'\t' -v k="$2" -v c="$3" '$1 == k && $c != "-" { print $c }' "$1" 2>/dev/null
}

quotient() {   # A B [SCALE]: A / B * SCALE, or nothing if either is missing
    [[ -n $1 && -n $2 ]] && awk -v a="$1" -v b="$2" -v k="${3:-1}" 'BEGIN { if (b > 0) printf "%.4g", a / b * k }'
}

# One target line in TARGETS: the value is a ratio (or a time) of this
# run; an empty value was not measured in this run; an empty limit is
# for information only.
target() {   # N WHAT FIGURES VALUE OP LIMIT
    local verdict=n/a
    if [[ -z $6 ]]; then
        verdict=info
    elif [[ -n $4 ]]; then
        awk -v v="$4" -v op="$5" -v l="$6" 'BEGIN { exit !(op == "<=" ? v <= l : v >= l) }' &&
            verdict=PASS || verdict=MISS
    fi
    local limit=-
    [[ -n $6 ]] && limit="$(sed 's/<=/≤/; s/>=/≥/' <<< "$5") $6"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:--}" "$limit" "$verdict" >> "$TARGETS"
}

# "X / Y", a missing one as "-", with the loss where it was above SUSTAIN_PCT.
cpu_figure() {   # "US LOST"
    local us=${1% *} lost=${1#* }
    [[ -n $1 ]] || { echo -; return; }
    # (The parentheses: a bare > after printf's arguments redirects it.)
    awk -v u="$us" -v l="$lost" -v s=$SUSTAIN_PCT 'BEGIN { printf "%s µs%s", u, (l + 0 > s + 0) ? " (" l " % lost)" : "" }'
}

targets() {
    : > "$TARGETS"
    local tmpfs slow5 slow20 kea never refl r ours other
    tmpfs=$(sustained ours-always) slow5=$(sustained ours-always-5ms) slow20=$(sustained ours-always-20ms)
    kea=$(sustained kea) never=$(sustained ours-never) refl=$(sustained reflector)
    target 1 "sync = always, 5 ms fsync disk / tmpfs (sustained offered/s)" "${slow5:--} / ${tmpfs:--}" \
        "$(quotient "$slow5" "$tmpfs")" ">=" 0.8
    target 1 "sync = always, 5 ms fsync disk / Kea memfile" "${slow5:--} / ${kea:--}" \
        "$(quotient "$slow5" "$kea")" ">=" 1
    target 1 "sync = always, 20 ms fsync disk / tmpfs" "${slow20:--} / ${tmpfs:--}" \
        "$(quotient "$slow20" "$tmpfs")" "" ""
    for r in 2000 4000 6000; do
        ours=$(cpu_at ours-never $r) other=$(cpu_at kea $r)
        target 2 "CPU per DORA at $r/s, in.dhcpd + in.aasd (sync = never) / Kea" \
            "$(cpu_figure "$ours") / $(cpu_figure "$other")" "$(quotient "${ours% *}" "${other% *}")" "<=" 0.3333
    done
    ours=$(cpu_at ours-never 8000) other=$(cpu_at reflector 8000)
    target 2 "CPU per DORA at 8000/s, in.dhcpd + in.aasd (sync = never) / reflector" \
        "$(cpu_figure "$ours") / $(cpu_figure "$other")" "$(quotient "${ours% *}" "${other% *}")" "<=" 2
    local cs=$OUT/coldstart.summary fixed small dynamic
    fixed=$(field "$cs" fixed 4) small=$(field "$cs" fixed-small 4) dynamic=$(field "$cs" dynamic 4)
    target 3 "cold start, 10 subnets and 1,000 clients, median ms" "${fixed:--} µs" \
        "$(quotient "$fixed" 1000)" "<=" 5
    target 3 "cold start, 1,000 clients / one client" "${fixed:--} / ${small:--} µs" \
        "$(quotient "$fixed" "$small")" "<=" 1.5
    target 3 "cold start, pool address / fixed address" "${dynamic:--} / ${fixed:--} µs" \
        "$(quotient "$dynamic" "$fixed")" "<=" 1.5
    local as=$OUT/aasd.summary start empty_ms empty_kb full_kb grown
    start=$(field "$as" "$AASD_LEASES" 3) full_kb=$(field "$as" "$AASD_LEASES" 4)
    empty_ms=$(field "$as" empty 3) empty_kb=$(field "$as" empty 4)
    # The 50 ms is for 100,000 leases; another count is shown, not judged.
    if [[ $AASD_LEASES == 100000 ]]; then
        target 4 "in.aasd start-up, 100,000 leases, ms to the first PING" "${start:--} ms" "$start" "<=" 50
    else
        target 4 "in.aasd start-up, $AASD_LEASES leases (the target is for 100,000), ms" "${start:--} ms" "$start" "" ""
    fi
    [[ -n $full_kb && -n $empty_kb ]] && grown=$(( full_kb - empty_kb ))
    target 4 "in.aasd RSS per lease held, bytes: (VmRSS with $AASD_LEASES - empty) / $AASD_LEASES" \
        "(${full_kb:--} - ${empty_kb:--}) kB" "$(quotient "${grown:-}" "$AASD_LEASES" 1024)" "<=" 120
    target 4 "in.aasd start-up, empty log, /8 pool, ms" "${empty_ms:--} ms" "$empty_ms" "<=" 2
    target 5 "sustained offered/s, sync = never / Kea memfile" "${never:--} / ${kea:--}" \
        "$(quotient "$never" "$kea")" ">=" 2
    target 5 "sustained offered/s, sync = never / reflector" "${never:--} / ${refl:--}" \
        "$(quotient "$never" "$refl")" ">=" 0.8
}

write_results() {
    {
        echo "# in.dhcpd benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo
        echo "- machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r)"
        echo "- load average at start: $START_LOAD; at the end: $(load_average)"
        (( HOGS > 0 )) && echo "- contention (-L): $HOGS busy loops ran beside every throughput sweep"
        echo "- databases: ours-always and ours-never on a tmpfs; ours-always-5ms and -20ms on benches/slowfs over that tmpfs, fsync and fdatasync + 5 or 20 ms"
        echo "- mode: $([[ $QUICK == 1 ]] && echo "quick (CI)" || echo full); perfdhcp $(perfdhcp -v 2>&1 | awk '{ print $NF; exit }'), $PERIOD s per repeat, $REPEATS repeats per rate (median), $CLIENTS clients, pool $POOL_START-$POOL_END; a sweep stops after a median loss above $STOP_PCT %"
        local s
        for s in ${SERVERS//,/ }; do
            command -v "$(server_binary "$s")" > /dev/null && echo "- $s: $(server_version "$s")"
        done
        echo
        echo "## Targets (issue 20), from the figures of this run"
        echo
        echo "| target | what | figures | ratio or value | limit | holds |"
        echo "|---|---|---|---|---|---|"
        awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' "$TARGETS"
        echo
        echo "PASS or MISS against the limit; n/a: a figure was not measured in this run; info: no limit."
        echo "Sustained rates are those of the throughput table below; CPU per DORA is at that offered rate"
        echo "whatever its loss (given where it was above $SUSTAIN_PCT %); cold start and start-up are medians."
        if [[ -s $PER_RATE ]]; then
            echo
            echo "## Throughput (full DORA exchanges, perfdhcp in relay mode)"
            echo
            summary_table
            pg_ratio_lines
            echo
            echo "Sustained: the highest offered rate that perfdhcp managed to send and whose median over the"
            echo "repeats lost at most $SUSTAIN_PCT % of the exchanges (no ACK). Peak: the highest median DORA/s at any"
            echo "rate. Mean delay, CPU % (100 = one core, user + system from /proc/PID/stat of each server"
            echo "process) and CPU per DORA are at the sustained rate; CPU per DORA at $CPU_RATE/s is in parentheses"
            echo "where that rate lost more than $SUSTAIN_PCT %."
            echo
            echo "### Medians per rate"
            echo
            echo "| server | offered/s | sent/s | DORA/s | lost % | mean ms | CPU % per process | CPU µs/DORA | perfdhcp CPU % | rcvbuf drops | rejected | alive |"
            echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
            awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $13, $3, $4, $5, $11, $7, $8, $9, $12, $10 }' "$PER_RATE"
            echo
            echo "Each row is the median of the repeats. sent/s: DISCOVERs perfdhcp managed to send; below the"
            echo "offered rate perfdhcp was the limit, and the rate does not count as sustained. DORA/s: ACKs per"
            echo "second of the sending period. lost %: DISCOVERs sent that got no ACK, perfdhcp waiting 0.5 s after"
            echo "the period (-W) for the answers still on their way. rcvbuf drops: datagrams the server namespace's kernel dropped for a full"
            echo "socket buffer (ISC dhcpd reads with a packet socket, so its overflow does not show). rejected:"
            echo "perfdhcp's rejected leases (NAKs). Raw perfdhcp outputs: work/ beside this file."
        fi
        if [[ -s $OUT/coldstart.summary ]]; then
            echo
            echo "## Cold start: DISCOVER to OFFER, in.dhcpd started by inetd"
            echo
            echo "dhcpd.conf with 10 subnets and 1,000 client entries; a new in.dhcpd for every sample (\`-t 1s\`)."
            echo "fixed: a client entry with ip_address (no AAS asked); dynamic: a new client, address from in.aasd (sync = always);"
            echo "fixed-small: as fixed, with a dhcpd.conf of one subnet and that one client."
            echo "Warm: a second DISCOVER right after, answered by the process already running."
            echo
            echo "| variant | samples | answered | median ms, fresh process | median ms, warm |"
            echo "|---|---|---|---|---|"
            awk -F'\t' 'function ms(us) { return us == "-" ? "-" : sprintf("%.2f", us / 1000) }
                { printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, ms($4), ms($5) }' "$OUT/coldstart.summary"
        fi
        if [[ -s $OUT/aasd.summary ]]; then
            echo
            echo "## in.aasd start-up, pool 10.0.0.1-10.255.255.254"
            echo
            echo "Time from exec to the first PING answered on its socket, and VmRSS then; median of $AASD_STARTS starts."
            echo
            echo "| leases in the log | starts answered | median ms to PING | VmRSS kB |"
            echo "|---|---|---|---|"
            awk -F'\t' '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$OUT/aasd.summary"
        fi
        echo
        echo "## Commands"
        echo
        echo '```'
        echo "$BENCH_COMMAND"
        sort -u "$WORK/commands.txt" | sed "s|$OUT|\$OUT|g; s|$PWD/||g"
        echo '```'
    } > "$RESULTS"
}

# ---- main

START_LOAD=$(load_average)
: > "$WORK/commands.txt"
rm -f "$SAMPLES" "$PER_RATE" "$TARGETS" "$OUT"/coldstart.* "$OUT"/aasd.*
install_missing
say "building ($PROFILE)"
build=(cargo build --bins --example dhcp_reflector)
[[ $PROFILE == release ]] && build+=(--release)
"${build[@]}" >> "$LOG" 2>&1 || die "${build[*]} failed; see $LOG"
if [[ ,$SERVERS, == *,ours-always-*ms,* ]]; then
    build=(cargo build --manifest-path benches/slowfs/Cargo.toml --target-dir target/slowfs)
    [[ $PROFILE == release ]] && build+=(--release)
    say "building benches/slowfs ($PROFILE)"
    "${build[@]}" >> "$LOG" 2>&1 || { say "${build[*]} failed (see $LOG): no slow disk rows"; SLOWFS=""; }
fi
command -v perfdhcp > /dev/null || die "perfdhcp is missing (Debian package kea-admin)"
ns_up
mkdir -p "$TMPFS"
mount -t tmpfs -o size=4g,mode=0755 "${P}_bench" "$TMPFS" || die "cannot mount a tmpfs on $TMPFS"
say "bench: $(nproc) CPUs, load average $START_LOAD, results in $RESULTS"

if [[ $THROUGHPUT == 1 ]]; then
    (( HOGS > 0 )) && say "contention: $HOGS busy loops beside every sweep"
    hogs_start
    for server in ${SERVERS//,/ }; do sweep "$server"; done
    hogs_stop
fi
say "== cold start, $COLD_COUNT samples per variant; load average $(load_average)"
for variant in fixed dynamic fixed-small; do cold_start $variant; done
say "== in.aasd start-up, $AASD_LEASES leases; load average $(load_average)"
aasd_startup
targets
write_results
echo
cat "$RESULTS"

if [[ $QUICK == 1 ]]; then
    # CI asserts only that every part ran and ours answered, never a time.
    acks=$(awk -F'\t' '$1 == "ours-always" && $4 > 0' "$SAMPLES" | wc -l)
    (( THROUGHPUT == 0 || acks > 0 )) || die "quick: in.dhcpd + in.aasd completed no exchange under perfdhcp"
    acks=$(awk -F'\t' '$1 == "ours-always-5ms" && $4 > 0' "$SAMPLES" | wc -l)
    [[ $THROUGHPUT == 0 || ,$SERVERS, != *,ours-always-5ms,* || $acks -gt 0 ]] ||
        die "quick: in.dhcpd + in.aasd on the 5 ms slow disk completed no exchange under perfdhcp"
    grep -q $'^5\t' "$TARGETS" || die "quick: the target lines were not written"
    grep -q $'^fixed\t[0-9]*\t[1-9]' "$OUT/coldstart.summary" || die "quick: no OFFER from an inetd-started in.dhcpd"
    grep -q $'^dynamic\t[0-9]*\t[1-9]' "$OUT/coldstart.summary" || die "quick: no dynamic OFFER from an inetd-started in.dhcpd"
    [[ -z ${AASD_FILL_FAILED:-} ]] || die "quick: in.aasd refused some of the ALLOCs that fill its log"
    grep -q $'^'"$AASD_LEASES"$'\t[1-9]' "$OUT/aasd.summary" || die "quick: in.aasd did not start with its leases"
    echo "bench.sh: quick run OK"
fi
