#!/bin/bash
# Run the fuzz targets one after another: `fuzz/run.sh [seconds] [runs] [target...]`.
# Each target stops at whichever comes first, the time or the number of
# executions (defaults: 30 minutes, 10 million). Findings land in
# fuzz/artifacts/<target>/; minimize one with `cargo fuzz tmin` and copy it to
# tests/corpus/<target>/ so that `cargo test` replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-1800}
runs=${2:-10000000}
shift $(( $# > 2 ? 2 : $# ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(dhcp_handle packet_validate dhcpd_conf aasd_conf aas_protocol journal_replay)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1 # cargo fuzz wants nightly flags; stable accepts them so
cargo fuzz build -s none
for t in "${targets[@]}"; do
    case $t in
        dhcp_handle | packet_validate) max_len=1500 ;;
        aas_protocol) max_len=4096 ;;
        *) max_len=65536 ;;
    esac
    mkdir -p "fuzz/corpus/$t"
    echo "== $t: up to $seconds s or $runs executions"
    start=$(date +%s)
    cargo fuzz run -s none "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -dict=fuzz/dhcp.dict -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
        -max_total_time="$seconds" -runs="$runs" -print_final_stats=1 2>&1 |
        tee "fuzz/$t.log" | grep -E "^(#[0-9]+.*(pulse|DONE)|stat::number_of_executed_units|==[0-9]+== ERROR|SUMMARY)" || true
    echo "== $t: $(( $(date +%s) - start )) s, $(grep -o 'stat::number_of_executed_units: [0-9]*' "fuzz/$t.log" | grep -o '[0-9]*$') executions"
    if grep -q "Test unit written to" "fuzz/$t.log"; then
        grep "Test unit written to" "fuzz/$t.log"
        exit 1
    fi
done
