#!/usr/bin/env bash
# Static analysis: cppcheck and clang-tidy over the project's C sources,
# with the project's flags.  Exits non-zero on any finding (or a missing
# tool), 0 when both are clean.  Works from any directory.
#
#   bash tests/lint.sh                 # everything
#   bash tests/lint.sh common/net.c    # only these files (repo-relative)
#
# clang-tidy's checks live in .clang-tidy (each exclusion explained there);
# cppcheck's suppressions in tests/cppcheck.supp (a reason per line).
# Needs: cppcheck (2.10) and clang-tidy (14), Debian packages of those names.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob

if [ "$#" -gt 0 ]; then
    src=("$@")
else
    src=(common/*.c framing/*.c fork_server/*.c thread_server/*.c
         select_server/*.c client/*.c bench/*.c tests/*.c tests/shim/*.c tests/fuzz/*.c)
fi
# the project's flags, as the Makefile passes them (cppcheck takes the
# standard as --std=c11)
defs=(-D_GNU_SOURCE '-DVERSION="1.0.0"' -I.)
flags=(-std=c11 "${defs[@]}")
jobs=$(nproc 2>/dev/null || echo 2)

for tool in cppcheck clang-tidy; do
    command -v "$tool" >/dev/null 2>&1 ||
        { echo "lint: $tool not found (apt-get install $tool)" >&2; exit 2; }
done

status=0

# ---- cppcheck
# It reads no system headers, so it is told the configuration that is
# built: Linux (__linux__), POSIX and GNU library models, this machine's
# type sizes.  C11's _Noreturn is unknown to cppcheck 2.10, which then
# takes test_fail()/test_skip() (behind CHECK) for returning functions
# and reports "possible NULL dereference" after every CHECK(p != NULL):
# spelling it as the GNU attribute, which it does know, fixes that.
echo "=== cppcheck"
if ! cppcheck --quiet --std=c11 --language=c \
        --enable=warning,style,performance,portability \
        --library=posix --library=gnu --platform=native \
        -D__linux__ '-D_Noreturn=__attribute__((noreturn))' "${defs[@]}" \
        --inline-suppr --suppressions-list=tests/cppcheck.supp \
        --error-exitcode=1 -j "$jobs" \
        --template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
        "${src[@]}"; then
    status=1
fi

# ---- clang-tidy: one process per file, $jobs lanes in parallel
# tests/*.c parse /proc files and the servers' own log lines with sscanf
# and check the match count: cert-err34-c (no overflow detection) is for
# the programs only.
echo "=== clang-tidy"
tidy_lane() {
    local rc=0 f extra
    for f in "$@"; do
        extra=()
        case $f in tests/*) extra=(--checks=-cert-err34-c) ;; esac
        clang-tidy --quiet "${extra[@]}" "$f" -- "${flags[@]}" || rc=1
    done
    return "$rc"
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pids=()
for ((lane = 0; lane < jobs; lane++)); do
    files=()
    for ((i = lane; i < ${#src[@]}; i += jobs)); do
        files+=("${src[i]}")
    done
    [ "${#files[@]}" -gt 0 ] || continue
    tidy_lane "${files[@]}" >"$tmp/$lane" 2>&1 &
    pids+=("$!")
done
for pid in "${pids[@]}"; do
    wait "$pid" || status=1
done
# what is left after the per-file "N warnings generated." lines: findings
cat "$tmp"/* | grep -vE '^[0-9]+ (warning|error)s?( and [0-9]+ (warning|error)s?)? generated\.$' || true

if [ "$status" -eq 0 ]; then
    echo "lint: clean (${#src[@]} files)"
else
    echo "lint: findings above" >&2
fi
exit "$status"
