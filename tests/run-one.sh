#!/bin/sh
# run-one.sh PROGRAM -- one program of run-tests.sh (which sets LO_ROOT, the
# run's root of private directories, and TEST_TIMEOUT).  Runs PROGRAM from
# a private working directory with a private TMPDIR, under timeout; prints
# its verdict line and, if it failed, what failed; writes
#   $LO_ROOT/NAME.log     its whole output, stdout then stderr
#   $LO_ROOT/NAME.result  "PASSED FAILED BROKEN SECONDS" (BROKEN: 1 if it
#                         crashed, timed out, exited non-zero without a
#                         failed test, or left files behind)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/leftover.sh"
lo_attach "$LO_ROOT"
t=$1
n=$(basename "$t")
case $t in /*) prog=$t ;; *) prog=$(pwd)/$t ;; esac
tmo=
command -v timeout >/dev/null 2>&1 && tmo="timeout -k 10 ${TEST_TIMEOUT:-300}"
base=$lo_root/$n
work=$base.work
mkdir "$work" || exit 2
lo_begin "$n" "$work"
t0=$(date +%s.%N)
# timeout, not in the foreground, kills the program's whole process group.
# (The outer shell's own notice of a crash goes nowhere: the verdict says it.)
( (cd "$work" && TMPDIR=$lo_tmp exec $tmo "$prog") > "$base.out" 2> "$base.err"
  echo $? > "$base.rc" ) 2>/dev/null
rc=$(cat "$base.rc")
t1=$(date +%s.%N)
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
left=$(lo_end)
rmdir "$work" 2>/dev/null

# (cmocka writes its totals and messages on stderr, the test names on stdout)
p=$(cat "$base.out" "$base.err" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
f=$(cat "$base.out" "$base.err" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
p=${p:-0} f=${f:-0} broken=0 why=
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
  why="timed out after ${TEST_TIMEOUT:-300} s"
  broken=1
elif [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
  if [ $rc -gt 128 ]; then why="killed by signal $((rc - 128))"; else why="exited with status $rc"; fi
  broken=1
fi
[ -n "$left" ] && broken=1

{
  echo "=== $n (status $rc, $secs s)"
  cat "$base.out"
  [ -s "$base.err" ] && { echo "--- $n: stderr"; cat "$base.err"; }
  [ -n "$left" ] && echo "$left"
} > "$base.log"

{
  if [ "$f" -eq 0 ] && [ $broken -eq 0 ]; then
    printf 'PASS %-20s %3d passed %8s s\n' "$n" "$p" "$secs"
  else
    printf 'FAIL %-20s %3d passed, %d failed%s %8s s\n' "$n" "$p" "$f" "${why:+, $why}" "$secs"
    sed -n 's/^\[  FAILED  \] \([^0-9].*\)/    failed: \1/p' "$base.out" | sort -u
    # cmocka's messages: "file:line: error: ..." and the lines before them.
    grep -E '^\[  ERROR   \]|^\[   LINE   \]|^ERROR:|error: |Test failed|Sanitizer|^SUMMARY|runtime error' \
      "$base.err" | sed 's/^\[  ERROR   \] --- //; s/^\[   LINE   \] --- //; s/^/    /' | head -n 40
    if [ "$f" -eq 0 ]; then
      echo "    last lines of its output:"
      cat "$base.out" "$base.err" | tail -n 15 | sed 's/^/    | /'
    fi
    [ -n "$left" ] && printf '%s\n' "$left" | sed 's/^/    /'
  fi
} > "$base.verdict"
cat "$base.verdict"
echo "$p $f $broken $secs" > "$base.result"
