#!/bin/sh
# run.sh -- the drop-in malloc suite: build the tests of tests/malloc against
# an existing build (make lib), run them, run programs.sh, and print last
# "malloc-suite: N passed, M failed".  Exit status 1 if anything failed.
#
# Each tests/malloc/test-*.c (and test-cxx.cc) is built twice:
#   NAME          linked with $B/libmmalloc-malloc.a: the malloc family
#                 replaced at link time;
#   NAME-preload  linked with nothing of mmalloc's (-DMT_PRELOAD), run with
#                 LD_PRELOAD=$B/libmmalloc-malloc.so.1 (it checks that its
#                 malloc is the preloaded one), and again with
#                 MMALLOC_OPTIONS=check as well (but test-rlimit).
# A build failure, a failed cmocka test, a program that crashes or exits
# non-zero without a cmocka verdict, and a program that leaves files in its
# private TMPDIR or its working directory (../leftover.sh) all count as
# failures.
#
# Environment: B (build directory under the top, default build), CC, CXX,
# MALLOC_PROGRAMS_REQUIRE_ALL (passed on to programs.sh; with it a missing
# C++ compiler is a failure too), MALLOC_SUITE_SKIP_PROGRAMS=1.

set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
B=${B:-build}
case $B in /*) bdir=$B ;; *) bdir=$top/$B ;; esac
lib_a=$bdir/libmmalloc-malloc.a
lib_so=$bdir/libmmalloc-malloc.so.1
out=$bdir/tests/malloc
CC=${CC:-cc}
CXX=${CXX:-c++}
require_all=${MALLOC_PROGRAMS_REQUIRE_ALL:-0}

passed=0 failed=0
if [ ! -f "$lib_a" ] || [ ! -f "$lib_so" ]; then
  echo "$lib_a or $lib_so is missing: run make lib first"
  echo "malloc-suite: 0 passed, 1 failed"
  exit 1
fi
if ! sh "$top/tests/need-cmocka.sh"; then
  echo "malloc-suite: 0 passed, 1 failed"
  exit 1
fi
mkdir -p "$out"
. "$top/tests/leftover.sh"
lo_init "$out"

WARN="-Wall -Wextra -Werror"
CFLAGS_T="-std=c11 -D_GNU_SOURCE -I$top/include -I$top/tests -I$here $WARN -O2 -g -fno-builtin"
CXXFLAGS_T="-std=c++17 -D_GNU_SOURCE -I$top/include -I$top/tests -I$here $WARN -O2 -g"

tmo=
command -v timeout >/dev/null 2>&1 && tmo="timeout 240"

# build OUTPUT COMPILER FLAGS SOURCE LIBS...: compile unless up to date.
build() {
  o=$1 comp=$2 flags=$3 src=$4
  shift 4
  if [ -x "$o" ] && [ "$o" -nt "$src" ] && [ "$o" -nt "$here/mtest.h" ] \
     && [ "$o" -nt "$lib_a" ] && [ "$o" -nt "$0" ]; then
    return 0
  fi
  # shellcheck disable=SC2086
  if ! $comp $flags -o "$o" "$src" "$@" >"$o.build.log" 2>&1; then
    echo "FAIL build $(basename "$o"):"
    sed -n '1,30p' "$o.build.log" | sed 's/^/    | /'
    failed=$((failed + 1))
    rm -f "$o"
    return 1
  fi
}

# run PROGRAM LABEL [ENV...]: run a cmocka program, show its report without
# the RUN lines, add its counts.
run() {
  prog=$1 label=$2
  shift 2
  echo "== $label"
  lo_begin "$prog" "$out"
  log=$(cd "$out" && env TMPDIR="$lo_tmp" "$@" $tmo "$prog" 2>&1)
  rc=$?
  if ! lo_end; then
    failed=$((failed + 1))
  fi
  printf '%s\n' "$log" | grep -v '^\[ RUN      \]'
  p=$(printf '%s\n' "$log" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
  f=$(printf '%s\n' "$log" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  if [ $rc -ne 0 ] && [ -z "$f" ]; then
    echo "$label: exited with status $rc without a cmocka verdict"
    failed=$((failed + 1))
  fi
}

t_start=$(date +%s)
# The module test-dlopen opens.
build "$out/libmtest-tls.so" "$CC" "$CFLAGS_T -shared -fPIC" "$here/tls-module.c"

for src in "$here"/test-*.c "$here"/test-*.cc; do
  [ -f "$src" ] || continue
  name=$(basename "$src")
  name=${name%.*}
  case $src in
    *.cc)
      if ! command -v "$CXX" >/dev/null 2>&1; then
        if [ "$require_all" = 1 ]; then
          echo "FAIL $name: no C++ compiler ($CXX)"
          failed=$((failed + 1))
        else
          echo "skip $name: no C++ compiler ($CXX)"
        fi
        continue
      fi
      comp=$CXX flags=$CXXFLAGS_T ;;
    *) comp=$CC flags=$CFLAGS_T ;;
  esac
  if build "$out/$name" "$comp" "$flags" "$src" "$lib_a" -lcmocka -lpthread; then
    run "./$name" "$name (linked with libmmalloc-malloc.a)"
  fi
  if build "$out/$name-preload" "$comp" "$flags -DMT_PRELOAD" "$src" -lcmocka -lpthread -ldl; then
    # The long fork test runs in full once, shorter under LD_PRELOAD.
    run "./$name-preload" "$name (LD_PRELOAD=libmmalloc-malloc.so.1)" \
      LD_PRELOAD="$lib_so" MTEST_SIGFORKS=15 MTEST_PAGEFORKS=2
    # Once more with every block checked (the runtime option), except
    # rlimit's: its children must start without a heap, which the option
    # makes at once.
    case $name in
      test-rlimit) ;;
      *) run "./$name-preload" "$name (LD_PRELOAD, MMALLOC_OPTIONS=check)" \
	   LD_PRELOAD="$lib_so" MMALLOC_OPTIONS=check MTEST_SIGFORKS=15 MTEST_PAGEFORKS=2 ;;
    esac
  fi
done
t_tests=$(date +%s)

if [ "${MALLOC_SUITE_SKIP_PROGRAMS:-0}" != 1 ]; then
  echo "== programs.sh"
  lo_begin programs.sh "$out"
  plog=$(TMPDIR=$lo_tmp B=$B MMALLOC_MALLOC_LIB=$lib_so sh "$here/programs.sh" 2>&1)
  prc=$?
  printf '%s\n' "$plog"
  if ! lo_end; then
    failed=$((failed + 1))
  fi
  line=$(printf '%s\n' "$plog" | grep '^programs: [0-9]* passed, [0-9]* failed$' | tail -n 1)
  if [ -n "$line" ]; then
    p=$(printf '%s\n' "$line" | sed 's/^programs: \([0-9]*\) passed.*/\1/')
    f=$(printf '%s\n' "$line" | sed 's/.* \([0-9]*\) failed$/\1/')
    passed=$((passed + p))
    failed=$((failed + f))
  fi
  if [ $prc -ne 0 ] && { [ -z "$line" ] || [ "${f:-0}" -eq 0 ]; }; then
    echo "programs.sh: exited with status $prc"
    failed=$((failed + 1))
  fi
fi
t_end=$(date +%s)

echo "times: tests $((t_tests - t_start)) s, programs $((t_end - t_tests)) s"
echo "malloc-suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
