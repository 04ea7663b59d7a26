#!/bin/sh
# bench/versus.sh -- two builds of mmalloc side by side: is the new one slower?
#
# usage: sh bench/versus.sh OLD_TREE NEW_TREE
#
# OLD_TREE and NEW_TREE are source trees where `make lib' has run (for
# instance a clone checked out at an earlier commit, and this tree).  The
# workloads of make bench that measure mmalloc alone run with each build in
# turn, in rotating order, VS_ROUNDS times (default 5): churn with 1 and 2
# threads through the m* API (the program linked with each build's
# libmmalloc.a), and through each build's drop-in malloc (LD_PRELOAD) churn,
# producer/consumer, larson, the large-block loops, calloc, and the three
# realloc workloads.  For each workload it prints the ratio new/old of the
# times of each round, as min / median / max: above 1 is slower.  The
# machine is shared and noisy; only these ratios of one run mean anything.

set -u
[ $# -eq 2 ] || { echo "usage: sh bench/versus.sh OLD_TREE NEW_TREE" >&2; exit 2; }
OLD=$(cd "$1" && pwd) && NEW=$(cd "$2" && pwd) || exit 2
for t in "$OLD" "$NEW"; do
  for f in build/libmmalloc.a build/libmmalloc-malloc.so.1; do
    [ -f "$t/$f" ] || { echo "versus: $t/$f missing: run make lib there" >&2; exit 2; }
  done
done
cd "$(dirname "$0")/.." || exit 2
OUT=$(pwd)/build/versus
mkdir -p "$OUT" || exit 2
RAW=$OUT/raw.txt
: >"$RAW"
ROUNDS=${VS_ROUNDS:-5}
CC=${CC:-cc}
CF="-std=c11 -D_GNU_SOURCE -O2 -Iinclude"

# Programs: churn linked with each build (the m* API); the others once, run
# through each build's drop-in.
for v in old new; do
  eval "t=\$$(echo $v | tr a-z A-Z)"
  $CC $CF -o "$OUT/churn-$v" bench/churn.c "$t/build/libmmalloc.a" -lpthread -lm -ldl || exit 1
done
for p in churn prodcons larson bigblocks; do
  $CC $CF -o "$OUT/$p" "bench/$p.c" "$NEW/build/libmmalloc.a" -lpthread -lm -ldl || exit 1
done

# run NAME VERSION ROUND PRELOAD COMMAND...: the R lines of the command's
# output, as "NAME VERSION ROUND KEY VALUE".
run () {
  n=$1 v=$2 r=$3 pre=$4; shift 4
  if LD_PRELOAD=$pre "$@" >"$OUT/out.tmp" 2>>"$OUT/log.txt"; then
    awk -v n="$n" -v v="$v" -v r="$r" '$1 == "R" { print n, v, r, $2, $3 }' "$OUT/out.tmp" >>"$RAW"
  else
    echo "versus: $n with the $v build failed in round $r (see $OUT/log.txt)" >&2
  fi
}

one () {
  v=$1 r=$2
  eval "t=\$$(echo $v | tr a-z A-Z)"
  so=$t/build/libmmalloc-malloc.so.1
  run api-churn1 "$v" "$r" "" "$OUT/churn-$v" mmalloc 1 1000000
  run api-churn2 "$v" "$r" "" "$OUT/churn-$v" mmalloc 2 1000000
  run churn1 "$v" "$r" "$so" "$OUT/churn" dropin 1 1000000
  run prodcons "$v" "$r" "$so" "$OUT/prodcons" dropin 200000 1
  run larson "$v" "$r" "$so" "$OUT/larson" dropin 2 50
  run loop256k "$v" "$r" "$so" "$OUT/bigblocks" dropin loop 256 2000
  run loop4m "$v" "$r" "$so" "$OUT/bigblocks" dropin loop 4096 100
  run calloc64m "$v" "$r" "$so" "$OUT/bigblocks" dropin calloc 64 8
  run grow "$v" "$r" "$so" "$OUT/bigblocks" dropin grow 64 4
  run step "$v" "$r" "$so" "$OUT/bigblocks" dropin step 32 1
  run small "$v" "$r" "$so" "$OUT/bigblocks" dropin small 1000 100
}

for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then one old "$r"; one new "$r"; else one new "$r"; one old "$r"; fi
done

echo "new/old time per round ($ROUNDS rounds; above 1: the new build is slower)"
printf '%-12s %8s %8s %8s\n' workload min median max
awk '$4 == "time_ms" { t[$1 " " $2 " " $3] = $5; w[$1] = 1; if ($3 > n) n = $3 }
     END {
       for (x in w) {
         k = 0
         for (r = 1; r <= n; r++)
           if ((x " old " r) in t && (x " new " r) in t && t[x " old " r] > 0)
             q[++k] = t[x " new " r] / t[x " old " r]
         for (i = 2; i <= k; i++)
           for (j = i; j > 1 && q[j - 1] > q[j]; j--) { s = q[j]; q[j] = q[j - 1]; q[j - 1] = s }
         if (k)
           printf "%-12s %8.2f %8.2f %8.2f\n", x, q[1], (k % 2 ? q[(k + 1) / 2] : (q[k / 2] + q[k / 2 + 1]) / 2), q[k]
       }
     }' "$RAW" | sort
