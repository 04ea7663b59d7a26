#!/bin/sh
# run-demo.sh -- show that data built in an mmalloc heap file by one process is
# found, pointers and all, by another process.  Usage: run-demo.sh WORDINDEX
# (the built examples/wordindex program).  Exits 0 if every check passes.

prog=${1:-build/examples/wordindex}
if [ ! -x "$prog" ]; then
  echo "run-demo.sh: $prog: not built (run 'make demo')" >&2
  exit 2
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/mmalloc-demo.XXXXXX") || exit 2
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM
heap=$dir/words.heap
failed=0

echo "== 1. build: one process makes up 4000 lines of text and indexes them"
echo "==    in a new heap file (every node allocated with mmalloc in the file)"
if ! built=$("$prog" build "$heap" 2>&1); then
  printf '%s\n' "$built" | sed 's/^/   /'
  echo "FAIL: wordindex build failed"
  exit 1
fi
printf '%s\n' "$built" | sed 's/^/   /'

echo
echo "== 2. query: a second process attaches the same file and looks words up"
queried=$("$prog" query "$heap" river lantern the zebra 2>&1)
status=$?
printf '%s\n' "$queried" | sed 's/^/   /'
if [ $status -ne 0 ]; then
  echo "FAIL: wordindex query exited with status $status"
  failed=1
fi

echo
echo "== 3. what this proves"
root1=$(printf '%s\n' "$built" | sed -n 's/^root (key 0): //p')
root2=$(printf '%s\n' "$queried" | sed -n 's/^root (key 0): //p')
sum1=$(printf '%s\n' "$built" | sed -n 's/^checksum of the index: //p')
sum2=$(printf '%s\n' "$queried" | sed -n 's/^checksum of the index: //p')
if [ -n "$root1" ] && [ "$root1" = "$root2" ]; then
  echo "ok   root address $root1 in both processes: the heap is mapped again at"
  echo "     the same address, so the pointers stored in it are valid as they are"
else
  echo "FAIL root address differs: build '$root1', query '$root2'"
  failed=1
fi
if [ -n "$sum1" ] && [ "$sum1" = "$sum2" ]; then
  echo "ok   same checksum of the whole index: the second process read exactly"
  echo "     what the first one wrote"
else
  echo "FAIL checksum differs: build '$sum1', query '$sum2'"
  failed=1
fi
if printf '%s\n' "$queried" | grep -q '^mmalloc_check: 0 problems$'; then
  echo "ok   mmalloc_check found 0 problems: the heap's own bookkeeping survived too"
else
  echo "FAIL mmalloc_check did not report 0 problems"
  failed=1
fi

if [ $failed -ne 0 ]; then
  echo "demo FAILED"
  exit 1
fi
echo "demo passed"
