#!/bin/sh
# Fuzz mmalloc's heap-file handling with libFuzzer (see tests/fuzz/*.c).
#
#   FUZZ_SECONDS=60 sh tests/fuzz/run.sh
#
# Builds fuzz-attach, fuzz-body, fuzz-struct and fuzz-format (ASan + UBSan +
# libFuzzer, the library's sources compiled in), makes the seed corpus with
# mkseed, and runs them in build/fuzz/: fuzz-struct (structure-aware
# mutations of small heaps, the fastest and the one that reaches deepest)
# for half of FUZZ_SECONDS, fuzz-attach and fuzz-body for a quarter each,
# and fuzz-format (the format layer alone, on heap images it never maps)
# for an eighth more.  The corpora grow across
# runs (build/fuzz/corpus-*); the reproducers in tests/fuzz/crashes/ are run
# first, one by one, and count as a failure of their fuzzer if they still
# crash.  Environment: FUZZ_SECONDS (default 60), FUZZ_STRICT=1 (stricter
# oracles, see fuzz-common.h), CC_FUZZ (default clang), FUZZ_ARGS (more
# libFuzzer options).  Exits non-zero if a fuzzer failed; the
# last line is "fuzz: N passed, M failed".
set -u

cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
OUT=$ROOT/build/fuzz
CC_FUZZ=${CC_FUZZ:-clang}
SECONDS_ALL=${FUZZ_SECONDS:-60}
QUARTER=$((SECONDS_ALL / 4))
[ "$QUARTER" -ge 1 ] || QUARTER=1

mkdir -p "$OUT" || exit 1

# --- the toolchain -------------------------------------------------------
have_libfuzzer () {
  command -v "$CC_FUZZ" >/dev/null 2>&1 || return 1
  printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput (const uint8_t *d, size_t n) { (void) d; (void) n; return 0; }' \
    > "$OUT/probe.c"
  "$CC_FUZZ" -fsanitize=fuzzer,address,undefined -o "$OUT/probe" "$OUT/probe.c" \
    >/dev/null 2>&1
}

if ! have_libfuzzer; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "fuzz: installing clang and libFuzzer (apt-get install clang libclang-rt-dev)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-dev >/dev/null
    CC_FUZZ=clang
  fi
  if ! have_libfuzzer; then
    echo "fuzz: clang with libFuzzer is missing: install it, e.g." \
      "'apt-get install clang libclang-rt-dev' (Debian/Ubuntu), then run again" >&2
    echo "fuzz: 0 passed, 4 failed"
    exit 1
  fi
fi

# --- build -----------------------------------------------------------------
CFLAGS_COMMON="-std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 -fno-omit-frame-pointer"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
# The library's sources: all of src/ but malloc.c, which replaces the process's
# malloc (libmmalloc-malloc) and would take the sanitizers' place.
LIBSRCS=
for src in src/*.c; do
  [ "$src" = src/malloc.c ] || LIBSRCS="$LIBSRCS $src"
done
echo "fuzz: building in $OUT"
rm -rf "$OUT/obj" "$OUT/obj-fast"
mkdir -p "$OUT/obj" "$OUT/obj-fast" || exit 1
# obj-fast, for fuzz-struct: the library without comparison tracing, which
# would cost most of an execution in its loops over the 8192 directory
# entries (the harness, which decodes the input, keeps it), and tuned for
# small heaps: growth, release, shrinking and disk reservations by a few
# pages, so that a heap of a few dozen pages goes through all of them.
SMALL="-DMM_RESERVE_AHEAD=4 -DMM_GROW_MIN=8 -DMM_RELEASE_MIN=8 -DMM_SHRINK_MIN=16"
for src in $LIBSRCS; do
  obj=$(basename "$src" .c).o
  "$CC_FUZZ" $CFLAGS_COMMON $SAN -fsanitize=fuzzer-no-link -c "$src" -o "$OUT/obj/$obj" &&
    "$CC_FUZZ" $CFLAGS_COMMON $SAN -fsanitize=fuzzer-no-link \
      -fno-sanitize-coverage=trace-cmp $SMALL -c "$src" -o "$OUT/obj-fast/$obj" || exit 1
done
for f in fuzz-attach fuzz-body fuzz-struct fuzz-format; do
  objs=obj
  [ $f = fuzz-struct ] && objs=obj-fast
  "$CC_FUZZ" $CFLAGS_COMMON $SAN -fsanitize=fuzzer -o "$OUT/$f" \
    "tests/fuzz/$f.c" "$OUT/$objs"/*.o -lpthread || exit 1
done
cc $CFLAGS_COMMON -o "$OUT/mkseed" tests/fuzz/mkseed.c $LIBSRCS -lpthread || exit 1

# --- seeds -----------------------------------------------------------------
mkdir -p "$OUT/seeds-attach" "$OUT/seeds-body" "$OUT/corpus-attach" "$OUT/corpus-body" \
  "$OUT/seeds-struct" "$OUT/corpus-struct" "$OUT/corpus-format" "$OUT/artifacts" || exit 1
"$OUT/mkseed" "$OUT/seeds-attach" "$OUT/seeds-body" "$OUT/seeds-struct" || exit 1

# --- run -------------------------------------------------------------------
passed=0
failed=0
# ASan: heap files are mapped at fixed addresses far above its shadow; an
# allocator that aborts is a crash like any other.
ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:allocator_may_return_null=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS

run_one () {
  name=$1 seeds=$2 corpus=$3 secs=$4
  bin=$OUT/$name
  log=$OUT/$name.log
  : > "$log"
  ok=1
  # Known reproducers first: each must now run clean (NAME-strict-* ones
  # under FUZZ_STRICT=2, see fuzz-common.h).
  for r in "$ROOT"/tests/fuzz/crashes/"$name"-*; do
    [ -f "$r" ] || continue
    case $(basename "$r") in
      "$name"-strict-*) strict=2 ;;
      *) strict=${FUZZ_STRICT:-0} ;;
    esac
    if ! (cd "$OUT" && FUZZ_STRICT=$strict "$bin" -rss_limit_mb=2048 -timeout=10 "$r") \
         >>"$log" 2>&1; then
      echo "fuzz: $name: reproducer $(basename "$r") still fails"
      ok=0
    fi
  done
  max_len=""
  [ "$name" = fuzz-body ] && max_len="-max_len=4096"
  [ "$name" = fuzz-struct ] && max_len="-max_len=128"
  (cd "$OUT" && "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
     -close_fd_mask=2 -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$name-" \
     $max_len ${FUZZ_ARGS:-} \
     "$corpus" "$seeds") >>"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  if [ $rc -ne 0 ]; then
    echo "fuzz: $name FAILED (exit $rc); log $log, artifacts in $OUT/artifacts/"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz oracle|mmalloc:.*pointer|artifact_prefix|Test unit written)' \
      "$log" | head -n 20
    ok=0
  else
    echo "fuzz: $name ran clean: ${execs:-?} executions, ${rate:-?} exec/s"
  fi
  if [ $ok = 1 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}

EIGHTH=$((QUARTER / 2))
[ "$EIGHTH" -ge 1 ] || EIGHTH=1
echo "fuzz: running fuzz-struct for $((2 * QUARTER))s, fuzz-attach and fuzz-body for" \
  "${QUARTER}s each, fuzz-format for ${EIGHTH}s"
run_one fuzz-struct "$OUT/seeds-struct" "$OUT/corpus-struct" $((2 * QUARTER))
run_one fuzz-attach "$OUT/seeds-attach" "$OUT/corpus-attach" "$QUARTER"
run_one fuzz-body "$OUT/seeds-body" "$OUT/corpus-body" "$QUARTER"
# The heap files of fuzz-attach's seeds are images for the format layer.
run_one fuzz-format "$OUT/seeds-attach" "$OUT/corpus-format" "$EIGHTH"

echo "fuzz: $passed passed, $failed failed"
[ $failed -eq 0 ]
