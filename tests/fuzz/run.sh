#!/usr/bin/env bash
# Build the libFuzzer harnesses for the framing decoders and run each for
# FUZZ_SECONDS (default 60).  Prints the executions per harness; exits
# non-zero if a harness crashes, fails an invariant, leaks or times out.
#
#   FUZZ_SECONDS=300 bash tests/fuzz/run.sh      # or: make fuzz FUZZ_SECONDS=300
#   bash tests/fuzz/run.sh line                  # only the named harness(es)
#
# Needs clang with libFuzzer (Debian: clang and libclang-rt-14-dev).  Every
# output goes under build/fuzz/: the binaries, the corpus libFuzzer grows
# (build/fuzz/corpus/NAME; the seeds in tests/fuzz/corpus/NAME are only
# read), logs, and crash artifacts (build/fuzz/artifacts/).  To replay a
# crash: build/fuzz/NAME_fuzz build/fuzz/artifacts/NAME-crash-...
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${FUZZ_SECONDS:-60}
cc=${FUZZ_CC:-clang}
out=build/fuzz
case $seconds in
    '' | *[!0-9]*) echo "run.sh: FUZZ_SECONDS must be a whole number" >&2; exit 2 ;;
esac
names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(frame line)

mkdir -p "$out/artifacts"
for name in "${names[@]}"; do
    [ -f "tests/fuzz/${name}_fuzz.c" ] || { echo "run.sh: no harness '$name'" >&2; exit 2; }
    # the harnesses are tiny: always rebuild, so a stale binary is never run.
    # -Drealloc=fuzz_realloc lets the input make a decoder allocation fail.
    "$cc" -std=c11 -D_GNU_SOURCE -Drealloc=fuzz_realloc -I. -g -O1 \
        -Wall -Wextra -Wconversion -Wshadow -Wmissing-prototypes \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        "tests/fuzz/${name}_fuzz.c" "framing/${name}.c" -o "$out/${name}_fuzz"
done

status=0
summary=()
for name in "${names[@]}"; do
    mkdir -p "$out/corpus/$name"
    log="$out/$name.log"
    printf '=== fuzz %s for %ss\n' "$name" "$seconds"
    rc=0
    # New inputs go to the first directory (build/), never to the seeds.
    # -max_len lets a payload or line outgrow the decoders' 4096-byte kept
    # buffer, so the path that frees a big buffer is exercised.
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    "$out/${name}_fuzz" "$out/corpus/$name" "tests/fuzz/corpus/$name" \
        -max_total_time="$seconds" -max_len=8192 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$out/artifacts/$name-" \
        >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ "$rc" -ne 0 ]; then
        status=1
        tail -n 60 "$log"
        summary+=("$name: FAILED (exit $rc) after ${execs:-?} executions; log $log")
    else
        summary+=("$name: ${execs:-?} executions in ${seconds}s, no crash")
    fi
done
printf '%s\n' "${summary[@]}"
exit "$status"
