#!/bin/sh
# Run each cmocka test program; print every program's report and, last, one
# line with the totals.  Fails if any test failed, any program crashed, or
# any program left files behind (see leftover.sh: each runs with a private
# TMPDIR under the build tree, which is removed after it whatever happened).
. "$(dirname "$0")/leftover.sh"
passed=0 failed=0 broken=0
out=${B:-build}/tests/last-run.log
: > "$out"
lo_init "${B:-build}/tests"
for t in "$@"; do
  lo_begin "$t" "$(dirname "$t")"
  log=$(cd "$(dirname "$t")" && TMPDIR=$lo_tmp "./$(basename "$t")" 2>&1)
  rc=$?
  if ! left=$(lo_end); then
    printf '%s\n' "$left" | tee -a "$out"
    broken=$((broken + 1))
  fi
  printf '%s\n' "$log" | tee -a "$out" | grep -E '^\[ *(PASSED|FAILED|  OK|  ERROR|  SKIPPED) *\]|^\[==========\]' 
  p=$(printf '%s\n' "$log" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
  f=$(printf '%s\n' "$log" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  if [ $rc -ne 0 ] && [ -z "$f" ]; then
    echo "$t: exited with status $rc"
    printf '%s\n' "$log" | tail -n 20
    broken=$((broken + 1))
  fi
done
echo "tests: $passed passed, $((failed + broken)) failed"
[ $failed -eq 0 ] && [ $broken -eq 0 ]
