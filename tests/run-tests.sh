#!/bin/sh
# run-tests.sh PROGRAM... -- run cmocka test programs, several at a time,
# each under a time limit, and print one line per program as it ends (its
# name, verdict, counts and seconds), with the file:line and message of
# every failure, then one closing line with the totals:
#     tests: N passed, M failed
# Exit status 1 if any test failed, any program crashed, timed out, exited
# non-zero, or left files behind.
#
# Each program runs from its own empty working directory with its own
# private TMPDIR (leftover.sh), both under the build tree: whatever it
# leaves in either is reported as a failure, parallel runs cannot see each
# other's files, and both are removed however the program ended.  The full
# output of every program, in the order given, is kept in
# $B/tests/last-run.log.
#
# Environment:
#   B             build directory (default build)
#   TEST_JOBS     programs run at once (default: the number of CPUs)
#   TEST_TIMEOUT  seconds a program may take (default 300); it is then
#                 killed with its children and counted as failed
# Programs run longest first, by the times of the previous run
# ($B/tests/durations), so that a slow one does not start last.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/leftover.sh"
B=${B:-build}
jobs=${TEST_JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}
export TEST_TIMEOUT=${TEST_TIMEOUT:-300}
mkdir -p "$B/tests"
out=$B/tests/last-run.log
durations=$B/tests/durations
lo_init "$B/tests"
start=$(date +%s)

# Longest first: programs without a recorded time go first of all.
order() {
  for t in "$@"; do
    d=$(awk -v n="$(basename "$t")" '$1 == n { print $2 }' "$durations" 2>/dev/null)
    printf '%s %s\n' "${d:-999999}" "$t"
  done | sort -rn -k1,1 | cut -d' ' -f2-
}

order "$@" | LO_ROOT=$lo_root xargs -P "$jobs" -I '{}' sh "$here/run-one.sh" '{}'

passed=0 failed=0 broken=0
: > "$out"
: > "$lo_root/durations"
for t in "$@"; do
  n=$(basename "$t")
  r=$lo_root/$n.result
  cat "$lo_root/$n.log" >> "$out" 2>/dev/null
  if [ ! -f "$r" ]; then
    echo "$n: did not run" | tee -a "$out"
    broken=$((broken + 1))
    continue
  fi
  read -r p f b s < "$r"
  passed=$((passed + p))
  failed=$((failed + f))
  broken=$((broken + b))
  printf '%s %s\n' "$n" "$s" >> "$lo_root/durations"
  [ "$f" -eq 0 ] && [ "$b" -eq 0 ] || bad="${bad:-} $n"
done
# Keep the times of programs that this run did not run.
if [ -f "$durations" ]; then
  awk 'NR == FNR { seen[$1] = 1; print; next } !($1 in seen)' \
    "$lo_root/durations" "$durations" > "$lo_root/durations.all"
else
  cp "$lo_root/durations" "$lo_root/durations.all"
fi
mv "$lo_root/durations.all" "$durations"
[ -n "${bad:-}" ] && echo "failed programs:$bad (full output: $out)"
echo "$# programs in $(($(date +%s) - start)) s, $jobs at a time"
echo "tests: $passed passed, $((failed + broken)) failed"
[ $failed -eq 0 ] && [ $broken -eq 0 ]
