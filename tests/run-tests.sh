#!/bin/sh
# Run each cmocka test program; print every program's report and, last, one
# line with the totals.  Fails if any test failed or any program crashed.
passed=0 failed=0 broken=0
out=${B:-build}/tests/last-run.log
: > "$out"
for t in "$@"; do
  log=$(cd "$(dirname "$t")" && "./$(basename "$t")" 2>&1)
  rc=$?
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
