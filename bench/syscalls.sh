#!/usr/bin/env bash
# bench/syscalls.sh: system calls per message, readiness against completion
# (`make bench-syscalls`).  For each select_server backend given (default:
# epoll uring) it starts a server on CPU 0, runs echo_bench on CPU 1 with
# CONNS connections of 64-byte messages for SECONDS, and counts the
# server's system calls over SECONDS - 1 inside the load with
#   perf stat -e raw_syscalls:sys_enter -p PID
# Prints one line per backend: messages, system calls, calls per message,
# msgs/s and the server's CPU per message.  Needs perf and permission to
# read tracepoints (root, or kernel.perf_event_paranoid <= -1); says so
# and exits 0 otherwise.
#   usage: bench/syscalls.sh [-c CONNS] [-d SECONDS] [BACKEND...]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CONNS=500 SECS=4
while getopts c:d:h opt; do
    case $opt in
        c) CONNS=$OPTARG ;; d) SECS=$OPTARG ;;
        *) sed -n '2,13s/^# \{0,1\}//p' "$0"; [[ $opt == h ]] && exit 0; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[[ $CONNS =~ ^[1-9][0-9]*$ && $SECS =~ ^[0-9]+$ ]] && (( SECS >= 2 )) || { echo "bench/syscalls.sh: -c takes a count, -d whole seconds >= 2" >&2; exit 2; }
(( $# > 0 )) || set -- epoll uring
if ! command -v perf > /dev/null; then echo "bench/syscalls.sh: perf is not installed: not run"; exit 0; fi
if ! perf stat -e raw_syscalls:sys_enter true > /dev/null 2>&1; then
    echo "bench/syscalls.sh: perf cannot read raw_syscalls:sys_enter here (perf_event_paranoid?): not run"
    exit 0
fi
ncpu=$(nproc); bcpu=$(( ncpu > 1 ? 1 : 0 ))
TMP=$(mktemp -d "${TMPDIR:-/tmp}/echo-syscalls.XXXXXX")
SPID=''
cleanup() {
    [[ -z $SPID ]] || kill -TERM "$SPID" 2> /dev/null || :
    wait 2> /dev/null || :
    rm -rf "$TMP"
}
trap cleanup EXIT
printf '%-8s %10s %10s %10s %10s %8s\n' backend messages syscalls per_msg msgs/s cpu_us
for be in "$@"; do
    coproc SRV { exec taskset -c 0 bin/select_server --backend "$be" -q -p 0 -c $((CONNS + 64)) 2> "$TMP/err"; }
    SPID=$SRV_PID line=''
    read -r -t 10 -u "${SRV[0]}" line || :
    if [[ ! $line =~ listening\ on\ .*:([0-9]+)\  ]]; then
        echo "$be: server did not start: $(head -n 1 "$TMP/err")"; SPID=''; continue
    fi
    port=${BASH_REMATCH[1]}
    # perf counts over a window inside echo_bench's: from 0.5 s after its
    # start (the connections are open by then) for SECONDS - 1; messages
    # in it = msgs/s x that time (the load is steady)
    bin/echo_bench --cpu "$bcpu" -t 1 -c "$CONNS" -s 64 -d "$SECS" --csv --server-pid "$SPID" \
        127.0.0.1 "$port" > "$TMP/csv" 2> "$TMP/bench.err" &
    bpid=$!
    sleep 0.5
    perf stat -x, -e raw_syscalls:sys_enter -p "$SPID" -o "$TMP/perf" -- sleep "$((SECS - 1))" || :
    wait "$bpid" || echo "$be: echo_bench failed: $(grep -v '^echo_bench: [0-9]* conns' "$TMP/bench.err" | head -n 1)"
    kill -TERM "$SPID"; wait "$SPID" 2> /dev/null || :; SPID=''
    calls=$(awk -F, '/raw_syscalls/ { print $1 }' "$TMP/perf")
    awk -F, -v be="$be" -v calls="${calls:-0}" -v secs="$((SECS - 1))" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        NR == 2 { n = $col["msgs_per_s"] * secs
                  printf "%-8s %10d %10d %10.3f %10d %8.2f\n", be, n, calls, (n > 0 ? calls / n : 0),
                         $col["msgs_per_s"], $col["server_cpu_us_per_msg"] }' "$TMP/csv"
done
