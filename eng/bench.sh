#!/usr/bin/env bash
# Builds and runs every Vigil benchmark on this machine and prints a summary (see docs/benchmarks.md).
#   bash eng/bench.sh
# Knobs (environment): IPERF_SECONDS=5 IPERF_REPS=3 TC_REPEAT=1000000 TC_RUNS=5 RING_ALTERNATIONS=5
#                      QUIET_IDLE=90 QUIET_WAIT=120 QUIET_BUDGET=900  OUT=<results directory>  SKIP_RING=1 SKIP_TC=1 SKIP_NET=1
# Needs root (BPF, network namespaces), clang-19, cc + libbpf-dev, dotnet, iperf3, tcpdump, jq;
# ethtool for the "no offload" throughput scenario (skipped without it).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IPERF_SECONDS=${IPERF_SECONDS:-5}
IPERF_REPS=${IPERF_REPS:-3}
TC_REPEAT=${TC_REPEAT:-1000000}
TC_RUNS=${TC_RUNS:-5}
RING_ALTERNATIONS=${RING_ALTERNATIONS:-5}
OUT=${OUT:-/tmp/vigil-bench-$(date +%Y%m%d-%H%M%S)}
# Each measurement waits (at most QUIET_WAIT s) until the CPUs were QUIET_IDLE % idle for a second:
# on a shared 2-vCPU machine a concurrent build halves any number. What was seen is recorded.
# QUIET_BUDGET bounds the waiting of the whole run.
QUIET_IDLE=${QUIET_IDLE:-90}
QUIET_WAIT=${QUIET_WAIT:-120}
QUIET_BUDGET=${QUIET_BUDGET:-900}

# Unique names: two concurrent runs (or a test suite) never share a namespace or an interface.
TAG=$$
SRV_NS=vigil-bench-srv-$TAG
CLI_NS=vigil-bench-cli-$TAG
SRV_IF=vbs$TAG   # interface names are at most 15 characters
CLI_IF=vbc$TAG
SRV_V4=10.213.0.1 CLI_V4=10.213.0.2
SRV_V6=fd00:213::1 CLI_V6=fd00:213::2

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

[[ $(id -u) -eq 0 ]] || die "needs root (BPF programs, network namespaces): bash eng/bench.sh"
for tool in clang-19 cc dotnet iperf3 tcpdump jq ip; do
    command -v "$tool" >/dev/null || die "$tool is missing"
done
[[ -e /usr/include/bpf/libbpf.h ]] || die "libbpf-dev is missing (apt-get install libbpf-dev)"

mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/vigil-bench-work.XXXXXX)

# Every background process this script starts is recorded here and killed by PID on exit.
PIDS=()
forget_pid() { # a reaped PID may be reused: never signal it again
    local keep=() p
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    ip netns del "$SRV_NS" 2>/dev/null || true
    ip netns del "$CLI_NS" 2>/dev/null || true
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Idle percentage of all CPUs over one second, from /proc/stat.
cpu_idle_percent() {
    local u n s i w q sq st u2 n2 s2 i2 w2 q2 sq2 st2 total
    read -r _ u n s i w q sq st _ </proc/stat
    sleep 1
    read -r _ u2 n2 s2 i2 w2 q2 sq2 st2 _ </proc/stat
    total=$(((u2 + n2 + s2 + i2 + w2 + q2 + sq2 + st2) - (u + n + s + i + w + q + sq + st)))
    echo $((total > 0 ? 100 * ((i2 + w2) - (i + w)) / total : 100))
}
# Sets IDLE to the idle percentage seen right before a measurement.
IDLE=100
QUIET_SPENT=0
wait_quiet() {
    local start=$SECONDS
    while :; do
        IDLE=$(cpu_idle_percent)
        ((IDLE >= QUIET_IDLE || SECONDS - start >= QUIET_WAIT || QUIET_SPENT + SECONDS - start >= QUIET_BUDGET)) && break
    done
    QUIET_SPENT=$((QUIET_SPENT + SECONDS - start))
    ((IDLE >= QUIET_IDLE)) || log "machine busy (${IDLE}% idle): measuring anyway, recorded"
}

# ---------------------------------------------------------------- build
log "building (Release)"
dotnet build -c Release --disable-build-servers "$ROOT/bench/Vigil.Bench/Vigil.Bench.csproj" -v q -nologo >"$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log"; die "build failed"; }
BIN=$ROOT/bench/Vigil.Bench/bin/Release/net10.0
BENCH=$BIN/Vigil.Bench
PRODUCER=$BIN/bpf/ring_producer.bpf.o
cc -O2 -Wall -Werror -o "$WORK/ring_consumer" "$ROOT/bench/c/ring_consumer.c" -lbpf -lpthread

{
    echo "RESULT kind=machine kernel=$(uname -r) cpus=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\"" \
         "mem_gib=$(awk '/MemTotal/ {printf "%.0f", $2/1048576}' /proc/meminfo)" \
         "dotnet=$(dotnet --version) libbpf=$(dpkg-query -W -f='${Version}' libbpf1 2>/dev/null || echo unknown)" \
         "srso=\"$(cat /sys/devices/system/cpu/vulnerabilities/spec_rstack_overflow 2>/dev/null || echo unknown)\"" \
         "spectre_v2=\"$(cut -d';' -f1 /sys/devices/system/cpu/vulnerabilities/spectre_v2 2>/dev/null || echo unknown)\""
} >"$OUT/machine.txt"

# ---------------------------------------------------------------- 1. ring-buffer reader
# Regimes: name:records per round:rounds:ring bytes.
#   burst  - 1M records pre-filled into a 256 MiB ring, then drained (bigger than the caches)
#   cache  - 16 Ki records in the sensor's default 8 MiB ring (cache resident: reader overhead only)
#   stream - producer thread and consumer at once, 1M records per round through the 8 MiB ring
if [[ -z ${SKIP_RING:-} ]]; then
    : >"$OUT/ring.txt"
    run_ring() { # impl regime mode size count rounds ring
        local impl=$1 regime=$2 mode=$3 size=$4 count=$5 rounds=$6 ring=$7 line
        wait_quiet
        if [[ $impl == c ]]; then
            line=$(timeout 120 "$WORK/ring_consumer" "$PRODUCER" "$mode" "$size" "$count" "$rounds" "$ring")
        else
            line=$(timeout 120 "$BENCH" ring --mode "$mode" --size "$size" --count "$count" --rounds "$rounds" --ring-bytes "$ring")
        fi
        echo "$line regime=$regime idle_before=$IDLE" >>"$OUT/ring.txt"
    }
    for spec in burst:drain:1000000:20:268435456 cache:drain:16384:2000:8388608 stream:stream:1000000:5:8388608; do
        IFS=: read -r regime mode count rounds ring <<<"$spec"
        for size in 64 160; do
            log "ring: $regime, $size-byte records, C and C# alternating x$RING_ALTERNATIONS"
            for ((i = 0; i < RING_ALTERNATIONS; i++)); do
                # Alternate which goes first, so drift in the VM does not favour one side.
                if ((i % 2 == 0)); then order="c cs"; else order="cs c"; fi
                for impl in $order; do run_ring "$impl" "$regime" "$mode" "$size" "$count" "$rounds" "$ring"; done
            done
        done
    done
fi

# ---------------------------------------------------------------- 2. per-packet BPF cost
if [[ -z ${SKIP_TC:-} ]]; then
    log "tc-cost: BPF_PROG_TEST_RUN, repeat=$TC_REPEAT x $TC_RUNS runs per path"
    wait_quiet
    timeout 600 "$BENCH" tc-cost --repeat "$TC_REPEAT" --runs "$TC_RUNS" | sed "s/\$/ idle_before=$IDLE/" >"$OUT/tc.txt"
fi

# ---------------------------------------------------------------- 3. throughput between namespaces
if [[ -z ${SKIP_NET:-} ]]; then
    log "network: namespaces $SRV_NS / $CLI_NS, veth $SRV_IF <-> $CLI_IF"
    ip netns add "$SRV_NS"
    ip netns add "$CLI_NS"
    ip link add "$SRV_IF" netns "$SRV_NS" type veth peer name "$CLI_IF" netns "$CLI_NS"
    ip -n "$SRV_NS" addr add "$SRV_V4/24" dev "$SRV_IF"
    ip -n "$CLI_NS" addr add "$CLI_V4/24" dev "$CLI_IF"
    ip -n "$SRV_NS" addr add "$SRV_V6/64" dev "$SRV_IF" nodad
    ip -n "$CLI_NS" addr add "$CLI_V6/64" dev "$CLI_IF" nodad
    for ns in "$SRV_NS" "$CLI_NS"; do ip -n "$ns" link set lo up; done
    ip -n "$SRV_NS" link set "$SRV_IF" up
    ip -n "$CLI_NS" link set "$CLI_IF" up

    # Client pinned to CPU 0, server to the last CPU: without pinning, where the scheduler puts the
    # two moves a single veth stream by 2x between runs. Vigil and tcpdump are not pinned.
    LAST_CPU=$(($(nproc) - 1))
    ip netns exec "$SRV_NS" taskset -c "$LAST_CPU" iperf3 -s >"$WORK/iperf-server.log" 2>&1 &
    PIDS+=($!)
    sleep 1

    : >"$OUT/net.txt"
    # Waits (bounded) until FILE contains PATTERN.
    wait_for() {
        local file=$1 pattern=$2 seconds=$3
        for ((t = 0; t < seconds * 10; t++)); do
            grep -q "$pattern" "$file" 2>/dev/null && return 0
            sleep 0.1
        done
        return 1
    }
    # Sends SIGTERM/SIGINT to PID and waits at most 20 s before SIGKILL.
    stop_pid() {
        local pid=$1 sig=$2
        kill "-$sig" "$pid" 2>/dev/null || true
        for ((t = 0; t < 200; t++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        forget_pid "$pid"
    }
    run_iperf() { # scenario family mode rep
        local scenario=$1 family=$2 mode=$3 rep=$4 addr pid=""
        wait_quiet
        local tags="scenario=$scenario family=$family mode=$mode rep=$rep idle_before=$IDLE"
        addr=$([[ $family == 4 ]] && echo "$SRV_V4" || echo "$SRV_V6")
        case $mode in
            vigil | vigil_flows | vigil_nosink)
                local extra=()
                [[ $mode == vigil_flows ]] && extra=(--flows-only)
                [[ $mode == vigil_nosink ]] && extra=(--no-sink)
                "$BENCH" sensor --netns "$SRV_NS" --iface "$SRV_IF" --max-seconds $((IPERF_SECONDS + 60)) "${extra[@]}" >"$WORK/sensor.log" 2>&1 &
                pid=$!
                PIDS+=("$pid")
                wait_for "$WORK/sensor.log" '^READY' 30 || { cat "$WORK/sensor.log"; die "sensor did not start"; }
                ;;
            tcpdump)
                ip netns exec "$SRV_NS" tcpdump -n -i "$SRV_IF" -w /dev/null >"$WORK/tcpdump.log" 2>&1 &
                pid=$!
                PIDS+=("$pid")
                wait_for "$WORK/tcpdump.log" 'listening on' 30 || { cat "$WORK/tcpdump.log"; die "tcpdump did not start"; }
                ;;
        esac
        ip netns exec "$CLI_NS" timeout $((IPERF_SECONDS + 30)) iperf3 -c "$addr" -A 0 -t "$IPERF_SECONDS" -J >"$WORK/iperf.json" \
            || { cat "$WORK/iperf.json"; die "iperf3 failed"; }
        jq -r --arg tags "$tags" '"RESULT kind=iperf \($tags) bps=\(.end.sum_received.bits_per_second) retransmits=\(.end.sum_sent.retransmits) sender_cpu=\(.end.cpu_utilization_percent.host_total) receiver_cpu=\(.end.cpu_utilization_percent.remote_total)"' \
            "$WORK/iperf.json" >>"$OUT/net.txt"
        case $mode in
            vigil | vigil_flows | vigil_nosink)
                stop_pid "$pid" TERM
                grep '^RESULT' "$WORK/sensor.log" | sed "s/\$/ $tags/" >>"$OUT/net.txt" || { cat "$WORK/sensor.log"; die "sensor printed no result"; }
                ;;
            tcpdump)
                stop_pid "$pid" INT
                echo "RESULT kind=tcpdump $tags" \
                     "captured=$(awk '/packets captured/ {print $1}' "$WORK/tcpdump.log")" \
                     "received_by_filter=$(awk '/received by filter/ {print $1}' "$WORK/tcpdump.log")" \
                     "dropped_by_kernel=$(awk '/dropped by kernel/ {print $1}' "$WORK/tcpdump.log")" >>"$OUT/net.txt"
                ;;
        esac
    }

    scenarios=(offload)
    if command -v ethtool >/dev/null; then scenarios+=(no_offload); else log "ethtool missing: skipping the no_offload scenario"; fi
    for scenario in "${scenarios[@]}"; do
        if [[ $scenario == no_offload ]]; then
            # One packet per MTU-sized segment instead of 64 KiB GSO/GRO aggregates: ~40x the packet rate.
            ip netns exec "$CLI_NS" ethtool -K "$CLI_IF" tso off gso off >/dev/null
            ip netns exec "$SRV_NS" ethtool -K "$SRV_IF" gro off >/dev/null
        fi
        for ((rep = 1; rep <= IPERF_REPS; rep++)); do
            for family in 4 6; do
                for mode in none vigil vigil_nosink vigil_flows tcpdump; do
                    log "net: $scenario IPv$family $mode (rep $rep/$IPERF_REPS, ${IPERF_SECONDS}s)"
                    run_iperf "$scenario" "$family" "$mode" "$rep"
                done
            done
        done
    done
fi

# ---------------------------------------------------------------- summary
/usr/bin/python3 "$ROOT/bench/summarize.py" "$OUT" | tee "$OUT/summary.md"
log "raw results and summary: $OUT"
