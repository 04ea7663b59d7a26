#!/bin/sh
# bench/run.sh -- build and run mmalloc's benchmark suite; `make bench' runs it
# after building the library.  bench/README says what each workload measures.
#
# Environment:
#   BENCH_QUICK=1     a smoke test in under a minute: fewer rounds, smaller
#                     workloads, re-attach for 1 and 64 MiB only
#   BENCH_ROUNDS=N    rounds of churn, producer/consumer and server (default
#                     15; quick 3); the heap file has 7 (quick 2)
#   BENCH_HEAP_DIR    directory of the heap-file workload's files
#                     (default /dev/shm, else /tmp): memory, so that the
#                     disk's writeback does not time the allocators
#   BENCH_ATTACH_DIR  directory of the re-attach heaps, up to 5.3 GB of
#                     reserved (fallocated) blocks (default $TMPDIR or /tmp)
#   BENCH_NO_INSTALL=1  do not apt-get the peers
#
# Prints one table (also written, with the machine, to build/bench/results.md).
# Every figure is a median over rounds in which the contenders ran in turn,
# and every ratio compares runs of the same round.  A peer that is missing is
# reported and skipped.  Exit status 1 if a check of mmalloc's own results
# failed (a peer's failure is reported, not fatal).

set -u
cd "$(dirname "$0")/.." || exit 1
TOP=$(pwd)
OUT=$TOP/build/bench
mkdir -p "$OUT" || exit 1
RAW=$OUT/raw.txt
SPEC=$OUT/spec.txt
LOG=$OUT/log.txt
NOTES=$OUT/notes.txt
: >"$RAW"; : >"$SPEC"; : >"$LOG"; : >"$NOTES"
MMFAIL=0
START=$(date +%s)

say () { printf 'bench: %s\n' "$*" >&2; }
note () { printf '%s\n' "$*" >>"$NOTES"; say "$*"; }

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
  ROUNDS=${BENCH_ROUNDS:-3}
  BB_ROUNDS=3
  BB_SCALE=4
  BB_RSS_MIB=128
  PY_ROUNDS=2
  PY_N=1
  CHURN_OPS=300000
  PC_BLOCKS=200000
  LARSON_ROUNDS=20
  HF_N=100000
  HF_ROUNDS=2
  RA_SIZES="1 64"
  RA_ITERS=40
  RA_ROUNDS=3
  FP_N=100000
else
  ROUNDS=${BENCH_ROUNDS:-15}
  BB_ROUNDS=7
  BB_SCALE=1
  BB_RSS_MIB=512
  PY_ROUNDS=7
  PY_N=3
  CHURN_OPS=2000000
  PC_BLOCKS=1000000
  LARSON_ROUNDS=100
  HF_N=400000
  HF_ROUNDS=7
  RA_SIZES="1 64 1024 4096"
  RA_ITERS=100
  RA_ROUNDS=7
  FP_N=1000000
fi

# --- peers: install when missing and root ------------------------------------

PKGS="libjemalloc-dev libmimalloc-dev libgoogle-perftools-dev libboost-dev libpmemobj-dev valgrind"
missing=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "${BENCH_NO_INSTALL:-0}" != 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q $missing >>"$LOG" 2>&1; then
      apt-get update -q >>"$LOG" 2>&1
      if ! apt-get install -y -q $missing >>"$LOG" 2>&1; then
	# one at a time, so that one missing package does not keep the others out
	for p in $missing; do
	  apt-get install -y -q "$p" >>"$LOG" 2>&1 || note "could not install $p (see $LOG)"
	done
      fi
    fi
  else
    note "not installed:$missing (as root: apt-get install -y$missing)"
  fi
fi

# The shared object of a peer, as the dynamic linker knows it; empty if none.
solib () {
  ldconfig -p 2>/dev/null | awk -v n="$1" '$1 == n { print $NF; exit }'
}

# --- build ---------------------------------------------------------------------

CC=${CC:-cc}
CXX=${CXX:-c++}
CFLAGS="-std=c11 -O2 -g -D_GNU_SOURCE -Wall -Wextra -I$TOP/include"

# A snapshot of the library, so that a rebuild of build/ while we run cannot
# change mmalloc between rounds.
snap_lib () {
  for i in 1 2 3 4 5; do
    if [ -f build/libmmalloc.a ] && cp build/libmmalloc.a "$OUT/libmmalloc.a.tmp" \
       && ar t "$OUT/libmmalloc.a.tmp" >/dev/null 2>&1; then
      mv "$OUT/libmmalloc.a.tmp" "$OUT/libmmalloc.a"
      return 0
    fi
    sleep 2
  done
  return 1
}
snap_lib || { say "build/libmmalloc.a missing or unreadable: run make lib"; exit 1; }

# build NAME COMMAND...: try three times (the library may be rebuilt under us).
build () {
  name=$1; shift
  for i in 1 2 3; do
    if "$@" >>"$LOG" 2>&1; then
      return 0
    fi
    sleep 2
    snap_lib
  done
  return 1
}

say "building the programs"
for p in churn prodcons larson heapfile_mm reattach waste fastpath forkcost bigblocks garbage; do
  build $p $CC $CFLAGS -o "$OUT/$p" "bench/$p.c" "$OUT/libmmalloc.a" -lpthread -lm -ldl \
    || { say "cannot build bench/$p.c (see $LOG)"; tail -20 "$LOG" >&2; exit 1; }
done

# bigblocks reads the counts of moves that mrealloc keeps (mm_move_counts),
# an internal of the library: linked with the objects as they are.
if cp build/libmmalloc-internal.a "$OUT/libmmalloc-internal.a" 2>/dev/null; then
  build bigblocks $CC $CFLAGS -o "$OUT/bigblocks" bench/bigblocks.c "$OUT/libmmalloc-internal.a" \
    -lpthread -lm -ldl || note "bigblocks with build/libmmalloc-internal.a did not build: no copied_mib"
fi

HAVE_BOOST=0
if [ -f /usr/include/boost/interprocess/managed_mapped_file.hpp ] && command -v "$CXX" >/dev/null; then
  if build heapfile_boost $CXX -std=c++17 -O2 -g -D_GNU_SOURCE -Wall -Wextra -I"$TOP/include" \
       -o "$OUT/heapfile_boost" bench/heapfile_boost.cc -lpthread -lrt -lm -ldl; then
    HAVE_BOOST=1
  else
    note "Boost.Interprocess: the program did not build (see $LOG); skipped"
  fi
else
  note "Boost.Interprocess (libboost-dev) or a C++ compiler missing: skipped"
fi
HAVE_PMDK=0
if [ -f /usr/include/libpmemobj.h ]; then
  if build heapfile_pmdk $CC $CFLAGS -o "$OUT/heapfile_pmdk" bench/heapfile_pmdk.c \
       -lpmemobj -lm -ldl; then
    HAVE_PMDK=1
  else
    note "PMDK libpmemobj: the program did not build (see $LOG); skipped"
  fi
else
  note "PMDK (libpmemobj-dev) missing: skipped"
fi

# --- the process mallocs --------------------------------------------------------

MALLOCS="mmalloc glibc"
PRE_jemalloc=$(solib libjemalloc.so.2)
PRE_mimalloc=$(solib libmimalloc.so.2)
PRE_tcmalloc=$(solib libtcmalloc_minimal.so.4)
[ -n "$PRE_tcmalloc" ] || PRE_tcmalloc=$(solib libtcmalloc.so.4)
for p in jemalloc mimalloc tcmalloc; do
  eval "lib=\$PRE_$p"
  if [ -n "$lib" ] && LD_PRELOAD=$lib "$OUT/waste" "$p" >/dev/null 2>>"$LOG"; then
    MALLOCS="$MALLOCS $p"
  elif [ -n "$lib" ]; then
    note "$p: $lib did not work under LD_PRELOAD (see $LOG); skipped"
  else
    note "$p: no shared library found; skipped"
  fi
done
PRE_mmalloc=""
PRE_glibc=""
preload () { eval "printf '%s' \"\$PRE_$1\""; }

# The list "$@" rotated left by $1 places: each round starts with another.
rotated () {
  k=$1; shift
  n=$#
  k=$((k % n))
  i=0; head=""; tail=""
  for x in "$@"; do
    if [ $i -lt $k ]; then tail="$tail $x"; else head="$head $x"; fi
    i=$((i + 1))
  done
  echo $head $tail
}

# run_one GROUP ALLOC ROUND PRELOAD COMMAND...: run, keep its "R metric value"
# lines as "GROUP ALLOC ROUND metric value".
run_one () {
  grp=$1; al=$2; rnd=$3; pre=$4; shift 4
  if LD_PRELOAD=$pre "$@" >"$OUT/out.tmp" 2>>"$LOG"; then
    awk -v g="$grp" -v a="$al" -v r="$rnd" '$1 == "R" { print g, a, r, $2, $3 }' \
      "$OUT/out.tmp" >>"$RAW"
    return 0
  fi
  rc=$?
  echo "$grp $al round $rnd: exit $rc: $*" >>"$LOG"
  if [ "$al" = mmalloc ]; then
    MMFAIL=1
    note "FAILED: $grp, mmalloc, round $rnd (exit $rc; see $LOG)"
  else
    note "FAILED: $grp, $al, round $rnd (exit $rc; see $LOG)"
  fi
  return 1
}

spec () { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$SPEC"; }

# --- 1-3: churn, producer/consumer, server ----------------------------------------

say "churn, 1 and 2 threads: $ROUNDS rounds of $MALLOCS"
for r in $(seq 1 "$ROUNDS"); do
  for al in $(rotated "$r" $MALLOCS); do
    run_one churn1 "$al" "$r" "$(preload "$al")" "$OUT/churn" "$al" 1 "$CHURN_OPS"
    run_one churn2 "$al" "$r" "$(preload "$al")" "$OUT/churn" "$al" 2 "$CHURN_OPS"
  done
done
# peak RSS over live bytes: the baseline is the RSS of the mmalloc run of the
# same round just before its first allocation (no preloaded library there)
awk '$1 == "churn1" && $2 == "mmalloc" && $4 == "rss0_kb" { b[$3] = $5 }
     $1 == "churn1" && $4 == "hwm_kb" { h[$2 " " $3] = $5 }
     $1 == "churn1" && $4 == "live_kb" { l[$2 " " $3] = $5 }
     END { for (k in h) { split (k, x, " ")
	     if ((x[2] in b) && l[k] > 0)
	       printf "churn1 %s %s rss_ratio %.4f\n", x[1], x[2], (h[k] - b[x[2]]) / l[k] } }' \
  "$RAW" >"$OUT/rss.tmp" && cat "$OUT/rss.tmp" >>"$RAW"
rm -f "$OUT/rss.tmp"
spec churn1 time_ms "churn, 1 thread" ms 1 mm speed
spec churn2 time_ms "churn, 2 threads, one heap" ms 1 mm speed

say "producer/consumer and server: $ROUNDS rounds"
for r in $(seq 1 "$ROUNDS"); do
  for al in $(rotated "$r" $MALLOCS); do
    run_one prodcons "$al" "$r" "$(preload "$al")" "$OUT/prodcons" "$al" "$PC_BLOCKS" 1
    run_one larson "$al" "$r" "$(preload "$al")" "$OUT/larson" "$al" 2 "$LARSON_ROUNDS"
  done
done
spec prodcons time_ms "producer/consumer, 2 threads" ms 1 mm -
spec larson time_ms "server (larson-style), 2 threads" ms 1 mm -

# --- real program: python under each malloc (mmalloc: libmmalloc-malloc.so) ------

MSO=$TOP/build/libmmalloc-malloc.so.1
if command -v python3 >/dev/null 2>&1 && [ -f "$MSO" ]; then
  say "python3 (PYTHONMALLOC=malloc) under each malloc: $PY_ROUNDS rounds"
  PYWANT=$(PYTHONMALLOC=malloc python3 bench/alloc.py "$PY_N")
  for r in $(seq 1 "$PY_ROUNDS"); do
    for al in $(rotated "$r" $MALLOCS); do
      pre=$(preload "$al")
      [ "$al" = mmalloc ] && pre=$MSO
      t0=$(date +%s%N)
      got=$(LD_PRELOAD=$pre PYTHONMALLOC=malloc python3 bench/alloc.py "$PY_N" 2>>"$LOG")
      t1=$(date +%s%N)
      if [ "$got" = "$PYWANT" ]; then
	echo "python $al $r time_ms $(( (t1 - t0) / 1000000 ))" >>"$RAW"
      else
	note "FAILED: python under $al printed '$got', not '$PYWANT'"
	[ "$al" = mmalloc ] && MMFAIL=1
      fi
    done
  done
  spec python time_ms "python3 workload (LD_PRELOAD)" ms 1 mm speed
else
  note "python3 or build/libmmalloc-malloc.so.1 missing: python row skipped"
fi

# More real programs, the same way: each one's output must be the same under
# every malloc (compared as a checksum with glibc's), and its wall time is
# the figure.  prog_row NAME LABEL COMMAND: in $OUT/progs.
prog_row () {
  name=$1 label=$2; shift 2
  if ! command -v "$1" >/dev/null 2>&1 || [ ! -f "$MSO" ]; then
    note "$1 or build/libmmalloc-malloc.so.1 missing: $name row skipped"
    return
  fi
  want=$( (cd "$OUT/progs" && "$@" 2>/dev/null) | cksum)
  for r in $(seq 1 "$PY_ROUNDS"); do
    for al in $(rotated "$r" $MALLOCS); do
      pre=$(preload "$al")
      [ "$al" = mmalloc ] && pre=$MSO
      t0=$(date +%s%N)
      got=$( (cd "$OUT/progs" && LD_PRELOAD=$pre "$@" 2>>"$LOG") | cksum)
      t1=$(date +%s%N)
      if [ "$got" = "$want" ]; then
	echo "$name $al $r time_ms $(( (t1 - t0) / 1000000 ))" >>"$RAW"
      else
	note "FAILED: $name under $al gave other output"
	[ "$al" = mmalloc ] && MMFAIL=1
      fi
    done
  done
  spec "$name" time_ms "$label" ms 1 mm speed
}

mkdir -p "$OUT/progs"
awk -v n=$((PY_N * 150000)) 'BEGIN { srand (3); for (i = 0; i < n; i++)
       printf "%08d %s line %d\n", int (rand () * 1e8), substr ("abcdefghij", 1 + i % 7), i }' \
  >"$OUT/progs/text"
awk -v n=300 'BEGIN { for (i = 0; i < n; i++) {
       printf "int f%d (int *a, int n) { int s = %d; for (int i = 0; i < n; i++)", i, i
       printf " s += a[i] * %d - (s >> 3); return s; }\n", i % 13 + 1 } }' >"$OUT/progs/big.c"
say "real programs under each malloc: $PY_ROUNDS rounds"
prog_row sort "sort, $((PY_N * 150000)) lines (LD_PRELOAD)" sort text
prog_row xz "xz -T2, 4 MB of the text (LD_PRELOAD)" sh -c 'head -c 4000000 text | xz -T2 -c' 
prog_row gcc "gcc -O2 -c, 300 functions (LD_PRELOAD)" \
  sh -c 'gcc -O2 -c big.c -o big.o && cksum <big.o'
prog_row perl "perl hash and sort workload (LD_PRELOAD)" \
  perl -e 'my %h; for my $i (1 .. 300000) { $h{"k$i"} = [$i, "x" x ($i % 9)] }
	   my $s = 0; $s += length $h{$_}[1] for sort keys %h; print "$s\n"'

# --- 4: heap file ----------------------------------------------------------------

HDIR=${BENCH_HEAP_DIR:-}
if [ -z "$HDIR" ]; then
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then HDIR=/dev/shm; else HDIR=${TMPDIR:-/tmp}; fi
fi
need_kb=$(( (HF_N * 1280 + 64 * 1048576) / 1024 * 12 / 10 ))
avail_kb=$(df -Pk "$HDIR" 2>/dev/null | awk 'NR == 2 { print $4 }')
HEAPS="mmalloc"
[ $HAVE_BOOST = 1 ] && HEAPS="$HEAPS boost"
[ $HAVE_PMDK = 1 ] && HEAPS="$HEAPS pmdk"
if [ -z "$avail_kb" ] || [ "$avail_kb" -lt "$need_kb" ]; then
  note "heap file: $HDIR has ${avail_kb:-?} KiB free, needs $need_kb: skipped"
else
  say "heap file ($HF_N objects in $HDIR): $HF_ROUNDS rounds of $HEAPS"
  for r in $(seq 1 "$HF_ROUNDS"); do
    for h in $(rotated "$r" $HEAPS); do
      case $h in
	mmalloc) run_one heapfile mmalloc "$r" "" "$OUT/heapfile_mm" "$HDIR" "$HF_N" ;;
	boost) run_one heapfile boost "$r" "" "$OUT/heapfile_boost" "$HDIR" "$HF_N" ;;
	pmdk) run_one heapfile pmdk "$r" "" env PMEM_IS_PMEM_FORCE=1 PMEM_NO_FLUSH=1 \
		"$OUT/heapfile_pmdk" "$HDIR" "$HF_N" ;;
      esac
    done
  done
  spec heapfile time_ms "heap file, $HF_N objects: time" ms 1 mm boost
  spec heapfile file_ratio "heap file: file bytes / live bytes" x 3 mm le:1.15
  [ $HAVE_PMDK = 1 ] && note "PMDK ran with PMEM_IS_PMEM_FORCE=1 PMEM_NO_FLUSH=1 (no msync, no cache flushes: its fastest setting); its pool is fallocated whole."
fi

# --- 5: re-attach ------------------------------------------------------------------

ADIR=${BENCH_ATTACH_DIR:-${TMPDIR:-/tmp}}
avail_kb=$(df -Pk "$ADIR" 2>/dev/null | awk 'NR == 2 { print $4 }')
avail_kb=${avail_kb:-0}
RA_FILES=""
RA_DONE=""
cleanup () { for f in $RA_FILES; do rm -f "$f"; done; rm -f "$OUT/out.tmp"; }
trap cleanup EXIT
trap 'cleanup; exit 1' INT TERM HUP
used_kb=0
for m in $RA_SIZES; do
  # the heap's file is a little larger than its size; keep 1 GiB spare
  want_kb=$(( m * 1024 * 11 / 10 + 4096 ))
  if [ $((used_kb + want_kb + 1048576)) -gt "$avail_kb" ]; then
    note "re-attach: $m MiB skipped: $ADIR has $avail_kb KiB free (df)"
    continue
  fi
  f=$ADIR/bench-reattach-$m.$$
  RA_FILES="$RA_FILES $f"
  if run_one reattach-build mmalloc 1 "" "$OUT/reattach" build "$f" "$m"; then
    RA_DONE="$RA_DONE $m"
    used_kb=$((used_kb + want_kb))
  fi
done
if [ -n "$RA_DONE" ]; then
  say "re-attach of$RA_DONE MiB heaps in $ADIR: $RA_ROUNDS rounds of $RA_ITERS"
  files=""
  for m in $RA_DONE; do files="$files $ADIR/bench-reattach-$m.$$"; done
  for r in $(seq 1 "$RA_ROUNDS"); do
    run_one reattach mmalloc "$r" "" "$OUT/reattach" time "$RA_ITERS" $files
  done
  k=0
  for m in $RA_DONE; do
    if [ "$m" -ge 1024 ]; then lab="$((m / 1024)) GiB"; else lab="$m MiB"; fi
    spec reattach attach_us_$k "re-attach, $lab heap (ratio: to 1 MiB)" us 1 attach_us_0 lt:1000
    k=$((k + 1))
  done
fi
cleanup
RA_FILES=""

# --- fork: fork + exit + wait with a heap in use (drop-in against glibc) --------

if [ -f "$MSO" ]; then
  FK_SIZES=${BENCH_FORK_SIZES:-"32 1024"}
  [ "$QUICK" = 1 ] && FK_SIZES=32
  FK_ROUNDS=5
  [ "$QUICK" = 1 ] && FK_ROUNDS=2
  say "fork + exit + wait, $FK_SIZES MiB live: $FK_ROUNDS rounds of mmalloc and glibc"
  for r in $(seq 1 "$FK_ROUNDS"); do
    for al in $(rotated "$r" mmalloc glibc); do
      pre=""
      [ "$al" = mmalloc ] && pre=$MSO
      for m in $FK_SIZES; do
	run_one fork "$al" "$r" "$pre" "$OUT/forkcost" "$al" "$m" 20
      done
    done
  done
  for m in $FK_SIZES; do
    if [ "$m" -ge 1024 ]; then lab="$((m / 1024)) GiB"; else lab="$m MiB"; fi
    spec fork fork_ms_$m "fork + exit + wait, $lab live (LD_PRELOAD)" ms 2 mm -
  done
else
  note "build/libmmalloc-malloc.so.1 missing: fork rows skipped"
fi

# --- 6: memory ---------------------------------------------------------------------

say "size-class waste"
for al in $MALLOCS; do
  run_one waste "$al" 1 "$(preload "$al")" "$OUT/waste" "$al"
done
spec churn1 rss_ratio "peak RSS / live bytes, churn 1 thread" x 2 mm -
spec waste waste_pct_small "size-class waste, sizes 1..16384" % 2 mm lt:10
spec waste waste_pct_churn "size-class waste, churn-weighted" % 2 mm lt:10
spec waste waste_pct_large "size-class waste, 2000 sizes 16K..1M" % 2 mm -

# --- 7: instructions per pair --------------------------------------------------------

if command -v valgrind >/dev/null 2>&1; then
  say "instructions per pair under callgrind ($FP_N pairs)"
  # count AL N: the instructions callgrind counted for N pairs, or nothing
  count () {
    if LD_PRELOAD="$(preload "$1")" valgrind --tool=callgrind \
	 --callgrind-out-file=/dev/null "$OUT/fastpath" "$1" "$2" >"$OUT/vg.tmp" 2>&1 \
       && grep -q "^R pairs $2\$" "$OUT/vg.tmp"; then
      awk '/Collected :/ { print $NF }' "$OUT/vg.tmp"
    fi
    cat "$OUT/vg.tmp" >>"$LOG"
  }
  for al in $MALLOCS; do
    c0=$(count "$al" 0)
    c1=$(count "$al" "$FP_N")
    if [ -n "$c0" ] && [ -n "$c1" ]; then
      awk -v a="$al" -v c0="$c0" -v c1="$c1" -v n="$FP_N" \
	'BEGIN { printf "fastpath %s 1 instr_pair %d\n", a, (c1 - c0) / n + 0.5 }' >>"$RAW"
    else
      note "FAILED: fastpath, $al under callgrind (see $LOG)"
      [ "$al" = mmalloc ] && MMFAIL=1
    fi
  done
  rm -f "$OUT/vg.tmp"
  spec fastpath instr_pair "instructions per malloc+free pair, 64 B" instr 0 mm lt:60
else
  note "valgrind missing: instructions per pair skipped"
fi

# --- large blocks (issue 11): loops, sparse calloc, RSS after freeing ----------

# bigblocks: a block allocated, every page written, freed, in a loop; calloc
# of large blocks used sparsely; RSS of a working set freed (at once, after
# 400 ms and a call, after the explicit trim).  mmalloc/glibc of each round:
# min, median and max over the rounds, printed under the table.
say "large blocks: $BB_ROUNDS rounds of $MALLOCS"
for r in $(seq 1 "$BB_ROUNDS"); do
  for al in $(rotated "$r" $MALLOCS); do
    pre=$(preload "$al")
    run_one bb256 "$al" "$r" "$pre" "$OUT/bigblocks" "$al" loop 256 $((4000 / BB_SCALE))
    run_one bb1m "$al" "$r" "$pre" "$OUT/bigblocks" "$al" loop 1024 $((1000 / BB_SCALE))
    run_one bb4m "$al" "$r" "$pre" "$OUT/bigblocks" "$al" loop 4096 $((200 / BB_SCALE))
    run_one bbcalloc "$al" "$r" "$pre" "$OUT/bigblocks" "$al" calloc 64 $((16 / BB_SCALE))
    run_one bbcalloc16 "$al" "$r" "$pre" "$OUT/bigblocks" "$al" calloc 16 $((64 / BB_SCALE))
    run_one bbrss "$al" "$r" "$pre" "$OUT/bigblocks" "$al" rss "$BB_RSS_MIB" 400
  done
done
spec bb256 time_ms "malloc, touch, free 256 KiB, $((4000 / BB_SCALE)) times" ms 1 mm -
spec bb1m time_ms "malloc, touch, free 1 MiB, $((1000 / BB_SCALE)) times" ms 1 mm -
spec bb4m time_ms "malloc, touch, free 4 MiB, $((200 / BB_SCALE)) times" ms 1 mm -
spec bbcalloc time_ms "calloc 64 MiB, sparse use, $((16 / BB_SCALE)) times" ms 1 mm -
spec bbcalloc hwm_kb "calloc 64 MiB, sparse use: peak RSS" KiB 0 mm -
spec bbcalloc16 time_ms "calloc 16 MiB, sparse use, $((64 / BB_SCALE)) times" ms 1 mm -
spec bbrss peak_kb "$BB_RSS_MIB MiB working set: RSS live" KiB 0 mm -
spec bbrss freed_kb "$BB_RSS_MIB MiB working set: RSS just freed" KiB 0 mm -
spec bbrss decay_kb "$BB_RSS_MIB MiB working set: RSS 400 ms later" KiB 0 mm -
spec bbrss trim_kb "$BB_RSS_MIB MiB working set: RSS after trim" KiB 0 mm -

# realloc through the process malloc: mmalloc by its drop-in (LD_PRELOAD of
# libmmalloc-malloc.so), so that every contender runs the same calls.
# Growth x1.125 from 4 KiB to 64 MiB; +4 KiB steps to 32 MiB; small blocks
# reallocated 16 -> 4096 bytes.  Then, once, the moves of a growth to 200
# MiB (mmalloc also in a heap file, "mmfile"): how many, the MiB of the
# blocks that moved, and (mmalloc) the MiB copied and the moves by mremap.
if [ -f "$MSO" ]; then
  say "realloc: $BB_ROUNDS rounds of $MALLOCS (mmalloc: the drop-in)"
  for r in $(seq 1 "$BB_ROUNDS"); do
    for al in $(rotated "$r" $MALLOCS); do
      pre=$(preload "$al") arg=$al
      [ "$al" = mmalloc ] && pre=$MSO arg=dropin
      run_one bbrgrow "$al" "$r" "$pre" "$OUT/bigblocks" "$arg" grow 64 $((8 / BB_SCALE))
      run_one bbrstep "$al" "$r" "$pre" "$OUT/bigblocks" "$arg" step 32 1
      run_one bbrsmall "$al" "$r" "$pre" "$OUT/bigblocks" "$arg" small 1000 $((200 / BB_SCALE))
    done
  done
  spec bbrgrow time_ms "realloc growth x1.125 to 64 MiB, $((8 / BB_SCALE)) times (drop-in)" ms 1 mm -
  spec bbrstep time_ms "realloc growth +4 KiB to 32 MiB (drop-in)" ms 1 mm -
  spec bbrsmall time_ms "realloc 16 -> 4096 bytes, $((200 / BB_SCALE))k times (drop-in)" ms 1 mm -
  for al in $MALLOCS; do
    run_one bbmoves "$al" 1 "$(preload "$al")" "$OUT/bigblocks" "$al" moves 200 0
  done
  TMPDIR=$OUT run_one bbmoves mmfile 1 "" "$OUT/bigblocks" mmalloc moves 200 1
  spec bbmoves moves "realloc growth x1.125 to 200 MiB: moves (mmalloc: direct)" n 0 mm -
  spec bbmoves moved_mib "realloc growth x1.125 to 200 MiB: MiB of the blocks moved" MiB 1 mm -
  spec bbmoves copied_mib "realloc growth x1.125 to 200 MiB: MiB copied (mmalloc)" MiB 1 mm -
else
  note "build/libmmalloc-malloc.so.1 missing: realloc rows skipped"
fi

# mmalloc / glibc per round, its spread: "group metric min median max".
SPREAD=$OUT/spread.txt
awk '$1 ~ /^bb/ && ($2 == "mmalloc" || $2 == "glibc") { v[$1 " " $4 " " $3 " " $2] = $5; k[$1 " " $4] = 1; r[$3] = 1 }
     END {
       for (g in k) {
	 n = 0
	 for (i in r)
	   if ((g " " i " glibc") in v && (g " " i " mmalloc") in v && v[g " " i " glibc"] > 0)
	     x[++n] = v[g " " i " mmalloc"] / v[g " " i " glibc"]
	 for (i = 1; i <= n; i++)
	   for (j = i + 1; j <= n; j++)
	     if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
	 if (n)
	   printf "%-20s %8.3f %8.3f %8.3f\n", g, x[1], (n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2), x[n]
       } }' "$RAW" | sort >"$SPREAD"

# --- the garbage detector on a heap file (issue 12) -------------------------------
# A heap file of 10 million blocks (about 1 GiB; quick: 1 million) in the heap
# file directory; rounds alternate one pread of the whole file and
# mmalloc_garbage over the file attached read-only (both through the warm page
# cache), so the ratio compares runs made side by side.

GC_N=10000000
GC_ROUNDS=3
if [ "$QUICK" = 1 ]; then GC_N=1000000; GC_ROUNDS=2; fi
gc_need_kb=$((GC_N / 1000 * 115 + 1048576))
avail_kb=$(df -Pk "$HDIR" 2>/dev/null | awk 'NR == 2 { print $4 }')
GC_FILE=$HDIR/bench-garbage.$$
if [ "${avail_kb:-0}" -lt "$gc_need_kb" ]; then
  note "garbage detector: $HDIR has ${avail_kb:-?} KiB free, needs $gc_need_kb: skipped"
elif run_one garbage-build mmalloc 1 "" "$OUT/garbage" build "$GC_FILE" "$GC_N"; then
  say "garbage detector on a heap file of $GC_N blocks: $GC_ROUNDS rounds"
  for r in $(seq 1 "$GC_ROUNDS"); do
    run_one garbage mmalloc "$r" "" "$OUT/garbage" read "$GC_FILE"
    run_one garbage mmalloc "$r" "" "$OUT/garbage" gc "$GC_FILE"
  done
  spec garbage read_ms "heap file of $GC_N blocks: one read of the file" ms 0 - -
  spec garbage gc_ms "garbage detector, same file (ratio: to one read)" ms 0 read_ms -
  spec garbage walk_ms "mmalloc_walk, same file (ratio: to one read)" ms 0 read_ms -
  spec garbage table_pct "garbage detector's tables, % of the file" % 3 - le:5
fi
rm -f "$GC_FILE"

# The moves of mmalloc in a heap file, which the table (by allocator) leaves out.
MMFILE=$OUT/mmfile.txt
awk '$1 == "bbmoves" && $2 == "mmfile" { printf "%s %s\n", $4, $5 }' "$RAW" >"$MMFILE"

# --- the table -------------------------------------------------------------------------

TABLE=$OUT/table.md
awk -F '\t' -f bench/report.awk "$SPEC" "$RAW" >"$TABLE"
END=$(date +%s)

mode="full"
[ "$QUICK" = 1 ] && mode="quick (BENCH_QUICK=1)"
cpu=$(awk -F ': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
{
  echo "# mmalloc benchmark results"
  echo
  echo "- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
  echo "- kernel: $(uname -srm)"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- compiler: $($CC --version 2>/dev/null | head -1)"
  echo "- glibc: $(ldd --version 2>/dev/null | head -1 | awk '{ print $NF }')"
  for p in libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 libboost-dev libpmemobj1 valgrind; do
    v=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null) && echo "- $p: $v"
  done
  echo "- mode: $mode; $ROUNDS rounds (heap file $HF_ROUNDS, re-attach $RA_ROUNDS x $RA_ITERS); $((END - START)) s"
  echo
  echo "Medians over rounds in which the contenders ran in turn.  Ratio: the"
  echo "allocator's figure divided by mmalloc's of the same round (median over"
  echo "rounds); for times, above 1 means slower than mmalloc.  Re-attach rows"
  echo "are mmalloc only, their ratio is to the 1 MiB heap.  See bench/README."
  echo
  cat "$TABLE"
  if [ -s "$SPREAD" ]; then
    echo
    echo "Large blocks, mmalloc / glibc per round (min, median, max):"
    echo
    sed 's/^/    /' "$SPREAD"
  fi
  if [ -s "$MMFILE" ]; then
    echo
    echo "Realloc growth x1.125 to 200 MiB in a heap file (mmalloc):"
    echo
    sed 's/^/    /' "$MMFILE"
  fi
  if [ -s "$NOTES" ]; then
    echo
    echo "Notes:"
    echo
    sed 's/^/- /' "$NOTES"
  fi
} >"$OUT/results.md.tmp" && mv "$OUT/results.md.tmp" "$OUT/results.md"

echo
cat "$TABLE"
if [ -s "$NOTES" ]; then
  echo
  sed 's/^/note: /' "$NOTES"
fi
if [ -s "$SPREAD" ]; then
  echo
  echo "large blocks, mmalloc / glibc per round:  min  median  max"
  cat "$SPREAD"
fi
if [ -s "$MMFILE" ]; then
  echo
  echo "realloc growth x1.125 to 200 MiB in a heap file (mmalloc):"
  cat "$MMFILE"
fi
echo
echo "($mode, $((END - START)) s; with the machine: build/bench/results.md)"
if [ $MMFAIL = 1 ]; then
  echo "bench: a check of mmalloc's results FAILED (see $LOG)" >&2
  exit 1
fi
exit 0
