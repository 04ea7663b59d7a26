#!/bin/sh
# valgrind's memcheck and AddressSanitizer see inside mmalloc heaps: a tiny
# program (prog.c) overruns a block, reads one after mfree and leaks one, in
# an anonymous heap and in a heap file; each must be reported, and a clean
# run and one using mcalloc, mrealloc and mmemalign must give no report.
# The ASan build of the program links the ordinary libmmalloc (not built
# with ASan).  Then the drop-in under valgrind with
# --soname-synonyms=somalloc=NONE: the overrun is reported on a block of
# libmmalloc-malloc's heap, not of valgrind's own malloc.
# Usage: run.sh BUILD-DIR (with libmmalloc.so and libmmalloc-malloc.so).
set -u
B=${1:-build}
B=$(cd "$B" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
out=$B/tests/vgasan
mkdir -p "$out"
CC=${CC:-cc}
tmp=${TMPDIR:-/tmp}/vgasan.$$
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
fail=0
pass=0

cflags="-std=c11 -D_GNU_SOURCE -g -O1 -I$here/../../include"
# A library built with ASan (make asan): only the ASan half.
if readelf -d "$B/libmmalloc.so" | grep -q 'NEEDED.*libasan'; then
  novalgrind=1
else
  novalgrind=
  $CC $cflags -o "$out/prog" "$here/prog.c" -L"$B" -lmmalloc -lpthread -Wl,-rpath,"$B" || exit 1
fi

ok () { pass=$((pass + 1)); }
bad () { echo "FAIL vgasan: $*"; fail=$((fail + 1)); }

# expect LOG PATTERN...: every pattern is in LOG.
expect ()
{
  log=$1; shift
  for pat in "$@"; do
    grep -q -- "$pat" "$log" || { bad "$(basename "$log"): no '$pat'"; sed 's/^/  | /' "$log" | head -20; return; }
  done
  ok
}

# absent LOG PATTERN: PATTERN is not in LOG.
absent ()
{
  if grep -q -- "$2" "$1"; then bad "$(basename "$1"): '$2'"; sed 's/^/  | /' "$1" | head -20; else ok; fi
}

if [ -n "$novalgrind" ]; then
  :
elif command -v valgrind >/dev/null 2>&1; then
  vg="valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99"
  for heap in anon file; do
    h=$heap; [ $heap = file ] && h=$tmp/heap
    for what in clean overrun uaf leak large calls checked reattach; do
      case $heap-$what in file-large|file-checked|anon-reattach) continue ;; esac
      log=$tmp/vg-$heap-$what.log
      $vg "$out/prog" "$h" $what >"$log" 2>&1
      rc=$?
      case $what in
	clean|calls|checked|reattach) expect "$log" "ERROR SUMMARY: 0 errors"
		     [ $rc = 0 ] || bad "valgrind $heap $what: exit $rc" ;;
	overrun) expect "$log" "Invalid write of size 1" "0 bytes after a block of size 20 alloc'd" ;;
	uaf) expect "$log" "Invalid read of size 1" "3 bytes inside a block of size 20 free'd" ;;
	leak) expect "$log" "100 bytes in 1 blocks are definitely lost" ;;
	large) expect "$log" "0 bytes after a block of size 100,000 alloc'd" \
		      "50,000 bytes inside a block of size 100,000 free'd" ;;
      esac
    done
  done
  # The drop-in: valgrind must leave its malloc alone (its soname is not
  # NONE), so the block is the heap's (above 16 TiB), not valgrind's.
  log=$tmp/vg-dropin.log
  LD_PRELOAD=$B/libmmalloc-malloc.so valgrind --soname-synonyms=somalloc=NONE \
    "$out/prog" anon malloc >"$log" 2>&1
  expect "$log" "Invalid write of size 1" "0 bytes after a block of size 20 alloc'd"
  addr=$(sed -n 's/^malloc: 0x//p' "$log")
  [ -n "$addr" ] && [ ${#addr} -ge 12 ] || bad "drop-in under valgrind: block at 0x$addr, not in an mmalloc heap"
  # Without it valgrind's own malloc replaces the drop-in's (why the
  # option is documented): the block is below 16 TiB.
  log=$tmp/vg-dropin-default.log
  LD_PRELOAD=$B/libmmalloc-malloc.so valgrind "$out/prog" anon malloc >"$log" 2>&1
  addr=$(sed -n 's/^malloc: 0x//p' "$log")
  if [ -n "$addr" ] && [ ${#addr} -lt 12 ]; then ok; else bad "drop-in under valgrind's defaults: block at 0x$addr"; fi
else
  echo "SKIP vgasan: valgrind not installed"
fi

asan=$out/prog-asan
if $CC $cflags -fsanitize=address -o "$asan" "$here/prog.c" -L"$B" -lmmalloc -lpthread -Wl,-rpath,"$B" 2>/dev/null; then
  for heap in anon file; do
    h=$heap; [ $heap = file ] && h=$tmp/heap
    for what in clean overrun uaf leak large calls checked reattach; do
      [ $heap-$what = anon-reattach ] && continue
      log=$tmp/asan-$heap-$what.log
      ASAN_OPTIONS=detect_leaks=1 "$asan" "$h" $what >"$log" 2>&1
      rc=$?
      case $what in
	clean|calls|checked|reattach) absent "$log" "ERROR: AddressSanitizer"
		     [ $rc = 0 ] || bad "asan $heap $what: exit $rc" ;;
	overrun|large) expect "$log" "ERROR: AddressSanitizer: use-after-poison" "WRITE of size 1" ;;
	uaf) expect "$log" "ERROR: AddressSanitizer: use-after-poison" "READ of size 1" ;;
	# LeakSanitizer knows only its own heap's blocks: not reported.
	leak) absent "$log" "ERROR: LeakSanitizer" ;;
      esac
    done
  done
  # MMALLOC_ANNOTATE=0: the overrun goes unseen.
  log=$tmp/asan-off.log
  MMALLOC_ANNOTATE=0 "$asan" anon overrun >"$log" 2>&1
  absent "$log" "ERROR: AddressSanitizer"
else
  echo "SKIP vgasan: no -fsanitize=address"
fi
echo "vgasan: $pass passed, $fail failed"
[ $fail = 0 ]
