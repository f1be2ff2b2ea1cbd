#!/usr/bin/env bash
# bench/run.sh: every echo server model through the same load scenarios
# (`make bench`; options through BENCH_ARGS='...', see --help).
#
# For each scenario and server it starts a fresh server on a free port, runs
# bin/echo_bench --rounds times while a sampler (bash builtins reading /proc,
# ~10 samples/s) records the server's peak memory and process/thread count,
# then stops the server with SIGTERM: it must exit 0 within 5 s.  echo_bench
# gets --server-pid: it reads the server's CPU time (threads and children,
# exited ones too) from /proc at the exact start and end of its measured
# window, so start-up, connecting and teardown are not in the figure.
#
#   scenario   load (echo_bench)                           key figure
#   1x64       1 connection, 64-byte messages (-c 1)       msgs/s
#   1x64-1cpu  the same, server and echo_bench on one CPU  msgs/s
#   50x64      50 connections, 64 B                        msgs/s
#   500x64     500 connections, 64 B                       msgs/s
#   500x64-1cpu  the same, server and echo_bench on one CPU  msgs/s
#   50x4k      50 connections, 4 KiB                       MB/s
#   stream     one connection, --stream-bytes (or --seconds) MB/s
#   churn      a new connection per message, 4 at once    connections/s
#
# Reading the results: a cell is the median round by its key figure.  msgs/s
# are verified round trips per second; MB/s is echoed payload (10^6 B, one
# way); p99 is round-trip latency in us; CPU is the server's user+system
# time in the window divided by the messages (churn: connections; stream:
# MB) completed in it.  peak RSS is the server's VmHWM, or for process
# models the peak of PSS summed over parent and children (shared pages
# counted once); procs/threads is the peak of the parent's threads plus its
# children.  --pin split (default) gives server and echo_bench a CPU each.
#
# Output: progress on stderr; the table on stdout and in OUT/latest.md;
# OUT/latest.csv (a row per cell, failures and skips with a note),
# latest-rounds.csv (every round), throughput.svg, cpu.svg, memory.svg,
# latency.svg (bench/chart.awk).  OUT is build/bench unless --out says
# otherwise; `make bench-reference` writes the reference run to
# bench/results/ and its table into README.md.  Exit 0 if every cell ran
# and verified (skipped cells are fine), 1 if one failed, 2 on usage errors.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The servers: one line per variant.  MEMORY: rss (VmHWM) or pss (summed
# over the process tree); FDMAX: the most descriptors it can watch (-: no
# limit); POOL: "pool" if COMMAND's POOL is the scenario's pool size;
# ROUNDS: "all" (--rounds), or "less": one round fewer (at least one), so
# that the variant rows keep the default run under 4 minutes.  A
# variant whose binary rejects its option (exit 2 at start) or that cannot
# start for want of io_uring shows as skipped, with the reason.
SERVER_TABLE='
# NAME    MEMORY FDMAX POOL ROUNDS LABEL                  | COMMAND
fork      pss    -     -    all    fork_server            | fork_server
prefork   pss    -     pool less   fork_server --prefork  | fork_server --prefork POOL
thread    rss    -     -    all    thread_server          | thread_server
pool      rss    -     pool less   thread_server --pool   | thread_server --pool POOL
poll      rss    -     -    all    select_server poll     | select_server --backend poll
select    rss    1024  -    all    select_server select   | select_server --backend select
epoll     rss    -     -    all    select_server epoll    | select_server --backend epoll
uring     rss    -     -    less   select_server uring    | select_server --backend uring
epoll2    pss    -     -    less   select_server epoll x2 | select_server --backend epoll --workers 2
'
DEFAULT_SERVERS=fork,prefork,thread,pool,poll,select,epoll,uring
ALL_SERVERS=() ; declare -A LABEL COMMAND MEMORY FD_LIMIT POOLED FEWER
while read -r name mem fdmax pool rounds rest; do
    [[ -n $name && $name != \#* ]] || continue
    ALL_SERVERS+=("$name") MEMORY[$name]=$mem POOLED[$name]=$pool FEWER[$name]=0
    [[ $rounds == all ]] || FEWER[$name]=1
    [[ $fdmax == - ]] || FD_LIMIT[$name]=$fdmax
    label=${rest%%|*}; label=${label%"${label##*[! ]}"}; LABEL[$name]=$label
    COMMAND[$name]=${rest#*| }
done <<< "$SERVER_TABLE"

ALL_SCENARIOS=(1x64 1x64-1cpu 50x64 500x64 500x64-1cpu 50x4k stream churn)
declare -A CONNS=([1x64]=1 [1x64-1cpu]=1 [50x64]=50 [500x64]=500 [500x64-1cpu]=500 [50x4k]=50 [stream]=1 [churn]=4)
declare -A SIZE=([1x64]=64 [1x64-1cpu]=64 [50x64]=64 [500x64]=64 [500x64-1cpu]=64 [50x4k]=4096 [churn]=64)
# pool sizes (prefork, pool): a pool smaller than the connections would
# leave some in the backlog, never served, so such cells are not run
declare -A POOL=([1x64]=8 [1x64-1cpu]=8 [stream]=8 [churn]=8 [50x64]=64 [50x4k]=64 [500x64]=64 [500x64-1cpu]=64)
declare -A KEY=([50x4k]=mb [stream]=mb)          # the median's figure, else rate

usage() {
    cat <<EOF
usage: bench/run.sh [options]        (make bench BENCH_ARGS='options')

Runs each server model through the same echo_bench scenarios, measures the
server's CPU time in each measured window and samples its memory and
process/thread count, prints a markdown table and writes latest.csv,
latest-rounds.csv, latest.md and SVG charts to the --out directory.

  --servers LIST      comma-separated from ${ALL_SERVERS[*]}
                      (default $DEFAULT_SERVERS; prefork and pool run
                      fork_server --prefork N and thread_server --pool N, with
                      N = 8 for 1x64, stream and churn, 64 for 50x64 and
                      50x4k, not run at 500x64; epoll2 is select_server
                      --backend epoll --workers 2)
  --scenarios LIST    comma-separated from ${ALL_SCENARIOS[*]}
                      (default: all)
  --rounds N          rounds per cell, the median is shown (default 3; the
                      variant rows prefork, pool, uring, epoll2 run one fewer)
  --seconds S         seconds per round, decimals allowed (default 1)
  --stream-bytes B    bytes for the stream scenario, K/M/G suffixes (default 1G;
                      the stream stops after --seconds if that comes first)
  --pin MODE          split: server on one CPU, echo_bench on another (default);
                      same: both on one CPU; none: no pinning (the -1cpu
                      scenarios always put both on one CPU)
  --out DIR           where the results go (default build/bench; the
                      reference run in bench/results/ is make bench-reference)
  -h, --help          show this help and exit

BENCH_QUICK=1 makes the defaults 1 round of 0.2 s and a 256M stream.
Exit status: 0 if every cell ran and verified, 1 if one failed, 2 on usage.
EOF
}
usage_error() { echo "bench/run.sh: $1" >&2; echo "Try 'bench/run.sh --help'." >&2; exit 2; }
say() { echo "$*" >&2; }

# --- options ------------------------------------------------------------------
SERVERS=$DEFAULT_SERVERS SCENARIOS=$(IFS=,; echo "${ALL_SCENARIOS[*]}")
ROUNDS=3 SECS=1 STREAM=1G PIN=split OUT=$ROOT/build/bench
if [[ ${BENCH_QUICK:-0} != 0 ]]; then ROUNDS=1 SECS=0.2 STREAM=256M; fi
while (( $# )); do
    case $1 in
        --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;;
        -h|--help) usage; exit 0 ;;
        --servers|--scenarios|--rounds|--seconds|--stream-bytes|--pin|--out)
            (( $# >= 2 )) || usage_error "option '$1' needs a value"
            case $1 in
                --servers) SERVERS=$2 ;;     --scenarios) SCENARIOS=$2 ;;
                --rounds) ROUNDS=$2 ;;       --seconds) SECS=$2 ;;
                --stream-bytes) STREAM=$2 ;; --pin) PIN=$2 ;;  --out) OUT=$2 ;;
            esac
            shift 2 ;;
        *) usage_error "unknown option '$1'" ;;
    esac
done
check_list() {   # OPTION LIST KNOWN...: a comma-separated list of known names
    local opt=$1 list=$2 item; shift 2
    [[ $list =~ ^[^,]+(,[^,]+)*$ ]] || usage_error "--$opt needs names separated by commas, not '$list'"
    for item in ${list//,/ }; do
        [[ " $* " == *" $item "* ]] || usage_error "unknown name '$item' in --$opt (one of: $*)"
    done
}
check_list servers "$SERVERS" "${ALL_SERVERS[@]}"
check_list scenarios "$SCENARIOS" "${ALL_SCENARIOS[@]}"
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || usage_error "--rounds must be 1 to 99, not '$ROUNDS'"
[[ $SECS =~ ^([0-9]{1,4})(\.([0-9]{1,3}))?$ ]] || usage_error "--seconds must be like 2 or 0.5, not '$SECS'"
frac=${BASH_REMATCH[3]}000; SECS_MS=$(( 10#${BASH_REMATCH[1]} * 1000 + 10#${frac:0:3} ))
(( SECS_MS > 0 )) || usage_error "--seconds must be more than 0"
[[ $STREAM =~ ^([1-9][0-9]{0,11})([KMG]?)$ ]] || usage_error "--stream-bytes must be like 1G, 256M or 1000000, not '$STREAM'"
case ${BASH_REMATCH[2]} in K) bits=10 ;; M) bits=20 ;; G) bits=30 ;; *) bits=0 ;; esac
STREAM_BYTES=$(( BASH_REMATCH[1] << bits )); SIZE[stream]=$STREAM_BYTES
[[ $PIN =~ ^(split|same|none)$ ]] || usage_error "--pin must be split, same or none, not '$PIN'"
[[ -n $OUT ]] || usage_error "--out needs a directory"
[[ $OUT == /* ]] || OUT=$PWD/$OUT     # relative to where we were started
mkdir -p "$OUT" || { say "bench/run.sh: cannot create --out directory $OUT"; exit 1; }
cd "$ROOT"

for b in fork_server thread_server select_server echo_bench; do
    [[ -x bin/$b ]] || { say "bench/run.sh: bin/$b is missing: run make first"; exit 1; }
done
WARNING=''
if grep -qa -e __asan_init -e __tsan_init -e __ubsan_handle bin/select_server; then
    WARNING="bin/ is a sanitizer build, the figures are not representative (make clean all)"
    say "bench/run.sh: warning: $WARNING"
fi

# --- pinning: the first two CPUs of our affinity list ("0-1", "2,5-7") ---------
cpus=() allowed=0
while read -r key val; do [[ $key != Cpus_allowed_list: ]] || allowed=$val; done < /proc/self/status
for r in ${allowed//,/ }; do
    for (( c = ${r%-*}; c <= ${r#*-} && ${#cpus[@]} < 2; c++ )); do cpus+=("$c"); done
done
if [[ $PIN == split && ${#cpus[@]} -lt 2 ]]; then say "bench/run.sh: one CPU: --pin same"; PIN=same; fi
case $PIN in
    split) PIN_SRV_CPU=${cpus[0]} PIN_BENCH=(-t 1 --cpu "${cpus[1]}")
           PIN_TEXT="split (server on CPU ${cpus[0]}, echo_bench on CPU ${cpus[1]} with one thread)" ;;
    same)  PIN_SRV_CPU=${cpus[0]} PIN_BENCH=(-t 1 --cpu "${cpus[0]}")
           PIN_TEXT="same (server and echo_bench, one thread, both on CPU ${cpus[0]})" ;;
    none)  PIN_SRV_CPU='' PIN_BENCH=() PIN_TEXT="none (the scheduler places server and echo_bench)" ;;
esac
PIN_TEXT+="; *-1cpu: both on CPU ${cpus[0]}"

# --- helpers --------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/echo-bench.XXXXXX")
mkfifo "$TMP/nap" "$TMP/wake"
exec {NAP}<>"$TMP/nap" {WAKE}<>"$TMP/wake"   # nothing is ever written to NAP
SPID='' SRV_FD='' SAMPLER=''
nap() { read -r -t "$1" -u "${2:-$NAP}" _ || :; }   # sleep without a fork
ms_now() { local t=${EPOCHREALTIME/./}; printf -v "$1" '%s' "${t:0:-3}"; }
kids_of() { KIDS=''; { read -r KIDS < "/proc/$1/task/$1/children" || :; } 2>/dev/null; }
fmt_dur() {   # MS: DUR, "42s" or "3m1s" (no subshell: this runs every round)
    local s=$(( ($1 + 999) / 1000 ))
    if (( s < 60 )); then DUR=${s}s; else DUR=$(( s / 60 ))m$(( s % 60 ))s; fi
}

kill_server() {   # SIGKILL to the server and its children
    # shellcheck disable=SC2086  # KIDS: a list of pids
    if [[ -n $SPID ]]; then kids_of "$SPID"; kill -KILL "$SPID" $KIDS 2>/dev/null || :; wait "$SPID" 2>/dev/null || :; fi
    if [[ -n $SRV_FD ]]; then exec {SRV_FD}<&-; fi
    SPID='' SRV_FD=''
}
cleanup() {
    if [[ -n $SAMPLER ]]; then kill "$SAMPLER" 2>/dev/null || :; fi
    kill_server; rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# sample PID KIND: S_MEM in KiB (VmHWM, or with KIND pss the PSS summed over
# PID and its children) and S_COUNT (PID's threads + its children)
sample() {
    local key val _ k threads=1 mem=0 n=0 L
    kids_of "$1"
    { while read -r key val _; do
        case $key in VmHWM:) mem=$val ;; Threads:) threads=$val ;; esac
      done < "/proc/$1/status"; } 2>/dev/null || :
    for k in $KIDS; do n=$(( n + 1 )); done
    if [[ $2 == pss ]]; then
        mem=0
        for k in "$1" $KIDS; do
            { mapfile -t -n 3 L < "/proc/$k/smaps_rollup"; } 2>/dev/null || continue
            if [[ ${L[2]-} =~ ^Pss:\ +([0-9]+) ]]; then mem=$(( mem + BASH_REMATCH[1] )); fi
        done
    fi
    S_MEM=$mem S_COUNT=$(( threads + n ))
}
# sampler PID KIND, in the background: the peaks until $TMP/stop appears,
# then "KiB count" to $TMP/peak.  100 ms between samples, or 4 times what a
# sample took if more (PSS of 1000 fork_server children takes ~0.1 s)
sampler() {
    local peak_mem=0 peak_count=0 t0 t1 pause secs
    while :; do
        ms_now t0; sample "$1" "$2"; ms_now t1
        peak_mem=$(( S_MEM > peak_mem ? S_MEM : peak_mem ))
        peak_count=$(( S_COUNT > peak_count ? S_COUNT : peak_count ))
        [[ ! -e $TMP/stop ]] || break
        pause=$(( (t1 - t0) * 4 > 100 ? (t1 - t0) * 4 : 100 ))
        printf -v secs %d.%03d $(( pause / 1000 )) $(( pause % 1000 ))
        nap "$secs" "$WAKE"
    done
    echo "$peak_mem $peak_count" > "$TMP/peak"
}
start_sampler() { rm -f "$TMP/stop" "$TMP/peak"; sampler "$@" < /dev/null & SAMPLER=$!; }
stop_sampler() {  # PEAK_MEM, PEAK_COUNT
    : > "$TMP/stop"; echo >&"$WAKE"
    wait "$SAMPLER" || :; SAMPLER=''
    nap 0.001 "$WAKE"     # a wake-up the sampler did not need
    PEAK_MEM='' PEAK_COUNT=''
    if [[ -s $TMP/peak ]]; then read -r PEAK_MEM PEAK_COUNT < "$TMP/peak"; fi
}

# start_server NAME SCENARIO MAX_CLIENTS: SPID and PORT; else 1 and NOTE,
# with SKIP=1 when this build lacks the variant (its option is unknown:
# exit 2 at start; or it says the feature is not built, not available or
# not supported) or the kernel lacks io_uring
start_server() {
    local -a cmd; local line='' rc=0 why
    read -ra cmd <<< "${COMMAND[$1]//POOL/${POOL[$2]}}"
    cmd=("bin/${cmd[0]}" "${cmd[@]:1}" -q -p 0 --drain 1 -c "$3")
    [[ -z $SRV_CPU ]] || cmd=(taskset -c "$SRV_CPU" "${cmd[@]}")
    SKIP=0
    coproc SERVER { exec "${cmd[@]}" 2> "$TMP/server.err"; }
    SPID=$SERVER_PID
    exec {SRV_FD}<&"${SERVER[0]}"
    read -r -t 10 -u "$SRV_FD" line || :   # printed once the server is ready
    if [[ $line =~ listening\ on\ .*:([0-9]+)\  ]]; then PORT=${BASH_REMATCH[1]}; return 0; fi
    why=$(head -n 1 "$TMP/server.err" | head -c 160 | tr ',' ';')
    if ! kill -0 "$SPID" 2>/dev/null; then wait "$SPID" || rc=$?; fi
    if (( rc == 2 )); then SKIP=1 NOTE="not supported by this build: not run"
    elif grep -qiE 'uring|not (built|available|supported)' "$TMP/server.err"; then
        SKIP=1 NOTE="not run: ${why#*: }"     # the server's reason, without its name
    else NOTE="server did not start: $why"
    fi
    kill_server; return 1
}
# stop_server: SIGTERM, and it must exit 0 within 5 s; else 1 and NOTE
stop_server() {
    local i rc=0
    kill -TERM "$SPID" 2>/dev/null || :
    for (( i = 0; i < 250; i++ )); do kill -0 "$SPID" 2>/dev/null || break; nap 0.02; done
    if kill -0 "$SPID" 2>/dev/null; then
        : "${NOTE:=server still running 5 s after SIGTERM}"; kill_server; return 1
    fi
    wait "$SPID" || rc=$?
    SPID=''; kill_server
    (( rc == 0 )) || { : "${NOTE:=server exited with status $rc after SIGTERM}"; return 1; }
}

# read_csv: F[NAME] for each field of ROW named in HEAD (echo_bench's
# two CSV lines; its header says what the mode measured)
declare -A F
read_csv() {
    local -a h r; local i
    F=(); IFS=, read -ra h <<< "$HEAD"; IFS=, read -ra r <<< "$ROW"
    for i in "${!h[@]}"; do F[${h[$i]}]=${r[$i]-}; done
}
# run_round SCENARIO: one echo_bench run; its figures as one line of
# $TMP/rounds ("rate mb p50 p99 max user_us sys_us per_unit errors");
# 1 and NOTE if it failed or the server died
run_round() {
    local rc=0 limit=$(( SECS_MS / 1000 + 30 )) args per
    case $1 in
        # the stream stops at --stream-bytes or after --seconds, whichever is first
        stream) args=(--stream "$STREAM" -c 1 -d "$SECS") per=mb ;;
        churn)  args=(--churn -c "${CONNS[$1]}" -s "${SIZE[$1]}" -d "$SECS") per=conn ;;
        *)      args=(-c "${CONNS[$1]}" -s "${SIZE[$1]}" -d "$SECS") per=msg ;;
    esac
    HEAD='' ROW=''
    # --timeout 20: a loaded machine may be slow, a stuck server is still caught
    timeout --foreground -k 5 "$limit" bin/echo_bench --csv -q "${BENCH_PIN[@]}" "${args[@]}" \
        --timeout 20 --server-pid "$SPID" 127.0.0.1 "$PORT" > "$TMP/round.csv" 2> "$TMP/round.err" || rc=$?
    { read -r HEAD; read -r ROW; } < "$TMP/round.csv" || :
    read_csv; ERRORS=${F[errors]-}
    if (( rc == 124 || rc == 137 )); then NOTE="echo_bench timed out after $limit s"
    elif (( rc != 0 )); then
        NOTE="echo_bench exit $rc${ERRORS:+ (errors $ERRORS)}: $(head -n 1 "$TMP/round.err" | tr , ';')"
    elif ! kill -0 "$SPID" 2>/dev/null; then NOTE="server exited during the run"
    elif [[ -z $ERRORS || $ERRORS != 0 ]]; then NOTE="echo_bench printed no CSV row"
    else
        local rate=''
        case $per in msg) rate=${F[msgs_per_s]-} ;; conn) rate=${F[conns_per_s]-} ;; esac
        FIG="$rate,${F[mb_per_s]-},${F[p50_us]-},${F[p99_us]-},${F[max_us]-}"
        FIG+=",${F[server_user_us]-},${F[server_sys_us]-},${F[server_cpu_us_per_$per]-}"
        FIG+=",${F[seconds]-},$ERRORS"
        echo "$FIG" >> "$TMP/rounds"; return 0
    fi
    return 1
}

# skip_reason SERVER SCENARIO: NOTE and 0 if the cell is not run
skip_reason() {
    if [[ -n ${FD_LIMIT[$1]-} ]] && (( CONNS[$2] + 16 >= FD_LIMIT[$1] )); then
        NOTE="FD_SETSIZE ${FD_LIMIT[$1]}: not run"; return 0
    fi
    if [[ ${POOLED[$1]} == pool ]] && (( CONNS[$2] > POOL[$2] )); then
        NOTE="pool of ${POOL[$2]} < ${CONNS[$2]} connections: not run"; return 0
    fi
    return 1
}
plan_ms() {   # SCENARIO: the expected length of one round, for "time left"
    case $1 in 500x64*) PLAN=$(( SECS_MS + 500 )) ;; *) PLAN=$(( SECS_MS + 200 )) ;; esac
}
progress() {  # SERVER SCENARIO ROUND
    local now left=$PLAN_LEFT; ms_now now
    (( PLAN_DONE == 0 )) || left=$(( PLAN_LEFT * (now - START) / PLAN_DONE ))
    fmt_dur "$left"; say "[$CELL/$NCELLS] ${LABEL[$1]} $2 round $3/$N (about $DUR left)"
}
rounds_of() { N=$(( ROUNDS - FEWER[$1] )); (( N >= 1 )) || N=1; }   # SERVER: N
# pin_for SCENARIO: SRV_CPU and BENCH_PIN (*-1cpu: both on one CPU)
pin_for() {
    SRV_CPU=$PIN_SRV_CPU BENCH_PIN=("${PIN_BENCH[@]}")
    if [[ $1 == *-1cpu ]]; then SRV_CPU=${cpus[0]} BENCH_PIN=(-t 1 --cpu "${cpus[0]}"); fi
}

# run_cell SERVER SCENARIO: start a server, run the rounds while sampling,
# stop it; append a row (the median round) to $TMP/results.csv
run_cell() {
    local s=$1 sc=$2 conns=${CONNS[$2]} status=ok r=1 fig='' sorted per=msg key=1
    local rate='' mbs='' p50='' p99='' max='' user='' sys='' cpu='' secs errs cu='' cs=''
    NOTE='' ERRORS='' PEAK_MEM='' PEAK_COUNT=''; : > "$TMP/rounds"; plan_ms "$sc"; pin_for "$sc"
    rounds_of "$s"
    [[ $sc != churn ]] || per=conn; [[ $sc != stream ]] || per=MB
    [[ -z ${KEY[$sc]-} ]] || key=2
    if skip_reason "$s" "$sc"; then
        status=skipped; say "[$CELL/$NCELLS] ${LABEL[$s]} $sc: $NOTE"
    elif start_server "$s" "$sc" $(( conns * 2 > 1024 ? conns * 2 : 1024 )); then
        start_sampler "$SPID" "${MEMORY[$s]}"
        for (( r = 1; r <= N; r++ )); do
            progress "$s" "$sc" "$r"
            run_round "$sc" || { status=failed; break; }
            echo "$s,$sc,$r,$FIG" >> "$TMP/rounds.csv"
            PLAN_DONE=$(( PLAN_DONE + PLAN )) PLAN_LEFT=$(( PLAN_LEFT - PLAN ))
        done
        stop_sampler
        stop_server || status=failed
    elif (( SKIP )); then status=skipped; say "[$CELL/$NCELLS] ${LABEL[$s]} $sc skipped: $NOTE"
    else status=failed
    fi
    if [[ $status != skipped ]]; then   # the rest of this cell's share of the plan
        PLAN=$(( 200 + (N - r + 1) * PLAN )); PLAN_DONE=$(( PLAN_DONE + PLAN )) PLAN_LEFT=$(( PLAN_LEFT - PLAN ))
    fi
    errs=$ERRORS
    if [[ $status == ok ]]; then
        mapfile -t sorted < <(sort -t, -g -k"$key,$key" "$TMP/rounds")
        fig=${sorted[(${#sorted[@]} - 1) / 2]}
        IFS=, read -r rate mbs p50 p99 max user sys cpu secs errs <<< "$fig"
        [[ $sc != stream ]] || rate='' p50='' p99='' max=''     # no latencies in stream mode
        # user and system per unit, in the same proportion as the total
        if [[ -n $cpu && -n $user ]] && (( user + sys > 0 )); then
            local c100=$(( 10#${cpu/./} )) u100        # cpu has two decimals
            u100=$(( c100 * user / (user + sys) ))
            printf -v cu '%d.%02d' $(( u100 / 100 )) $(( u100 % 100 ))
            printf -v cs '%d.%02d' $(( (c100 - u100) / 100 )) $(( (c100 - u100) % 100 ))
        elif [[ -n $cpu ]]; then cu=0.00 cs=0.00
        fi
    elif [[ $status == failed ]]; then
        FAILED=$(( FAILED + 1 )); say "[$CELL/$NCELLS] FAILED: ${LABEL[$s]} $sc: $NOTE"
    fi
    mapfile -t sorted < "$TMP/rounds"
    echo "$s,$sc,$conns,${SIZE[$sc]},${#sorted[@]},$per,$rate,$mbs,$p50,$p99,$max,$cpu,$cu,$cs,$PEAK_MEM,$PEAK_COUNT,$errs,$status,${NOTE//,/;}" >> "$TMP/results.csv"
}

# --- main -------------------------------------------------------------------------
read -ra servers <<< "${SERVERS//,/ }"
read -ra scenarios <<< "${SCENARIOS//,/ }"
NCELLS=$(( ${#servers[@]} * ${#scenarios[@]} )) CELL=0 FAILED=0 PLAN_DONE=0 PLAN_LEFT=0
for sc in "${scenarios[@]}"; do for s in "${servers[@]}"; do
    plan_ms "$sc"; rounds_of "$s"; skip_reason "$s" "$sc" || PLAN_LEFT=$(( PLAN_LEFT + 200 + N * PLAN ))
done; done
LABELS=''; for s in "${ALL_SERVERS[@]}"; do LABELS+="${LABELS:+,}$s:${LABEL[$s]}"; done
CPU_MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MACHINE="$(uname -srm), ${CPU_MODEL:-unknown CPU}, $(nproc) CPUs"
DATE=$(date '+%Y-%m-%d %H:%M %Z')
read -r LOAD _ < /proc/loadavg
fmt_dur "$PLAN_LEFT"; say "bench: $NCELLS cells, $ROUNDS round(s) of $SECS s, stream $STREAM, pin $PIN: about $DUR"
# rate_per_s: messages or (churn) connections per second, as per says;
# cpu_us: the server's CPU time (user + system) per message, connection
# or MB, split into cpu_user_us and cpu_sys_us
echo "server,scenario,conns,bytes,rounds,per,rate_per_s,mb_per_s,p50_us,p99_us,max_us,cpu_us,cpu_user_us,cpu_sys_us,peak_rss_kib,procs_threads,errors,status,note" > "$TMP/results.csv"
echo "server,scenario,round,rate_per_s,mb_per_s,p50_us,p99_us,max_us,server_user_us,server_sys_us,cpu_us,seconds,errors" > "$TMP/rounds.csv"
ms_now START
for sc in "${scenarios[@]}"; do for s in "${servers[@]}"; do
    CELL=$(( CELL + 1 )); run_cell "$s" "$sc"
done; done
ms_now END; read -r LOAD_END _ < /proc/loadavg; fmt_dur $(( END - START ))

cp "$TMP/results.csv" "$OUT/latest.csv"; cp "$TMP/rounds.csv" "$OUT/latest-rounds.csv"
{
    echo "## echo servers side by side ($DATE)"
    echo
    echo "- machine: $MACHINE; load average $LOAD at the start, $LOAD_END at the end"
    echo "- pinning: $PIN_TEXT"
    echo "- a cell is the median of $ROUNDS round(s) of $SECS s (variant rows: one round fewer; stream: $STREAM or $SECS s); the run took $DUR"
    [[ -z $WARNING ]] || echo "- WARNING: $WARNING"
    echo
    awk -v labels="$LABELS" -f bench/lib.awk -f bench/table.awk "$OUT/latest.csv"
} | tee "$OUT/latest.md"
for chart in throughput cpu memory latency; do
    awk -v what="$chart" -v labels="$LABELS" -v subtitle="$MACHINE; $DATE; pin $PIN; median of $ROUNDS x $SECS s" \
        -f bench/lib.awk -f bench/chart.awk "$OUT/latest.csv" > "$OUT/$chart.svg"
done
say "bench: $DUR; wrote $OUT/latest.csv, latest-rounds.csv, latest.md, throughput.svg, cpu.svg, memory.svg, latency.svg"
(( FAILED == 0 )) || { say "bench: $FAILED cell(s) FAILED"; exit 1; }
