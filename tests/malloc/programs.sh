#!/bin/sh
# programs.sh -- real programs on libmmalloc-malloc.so.1 print exactly what
# they print on the C library's malloc.
#
# For each program the same command runs twice in the same fresh directory:
# once as it is, once with LD_PRELOAD=<abs path>/libmmalloc-malloc.so.1 (which
# every child process inherits).  Standard output and the exit status must be
# identical byte for byte, and the preloaded run must not report misuse
# ("mmalloc: ...") on stderr.  A third, small run with MMALLOC_OPTIONS=trace
# proves that the program's own allocations went through mmalloc.
#
# A program that is not installed is skipped with a line saying so; with
# MALLOC_PROGRAMS_REQUIRE_ALL=1 a skip is a failure (CI installs them all).
#
# Output: one line per program, "ok NAME" or "FAIL NAME: why", the list of
# skipped programs, and last "programs: N passed, M failed".  Exit status 1
# if anything failed.
#
# Environment: B (build directory, default build), MMALLOC_MALLOC_LIB (the
# library, default $B/libmmalloc-malloc.so.1), MALLOC_PROGRAMS (names to run,
# default all), MALLOC_PROGRAMS_REQUIRE_ALL, MALLOC_PROGRAMS_KEEP=1 (keep the
# work directory), TMPDIR.

set -u
LC_ALL=C
export LC_ALL
unset LD_PRELOAD MMALLOC_OPTIONS MMALLOC_TRACE

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
lib=${MMALLOC_MALLOC_LIB:-$top/${B:-build}/libmmalloc-malloc.so.1}
case $lib in /*) ;; *) lib=$(pwd)/$lib ;; esac
require_all=${MALLOC_PROGRAMS_REQUIRE_ALL:-0}
only=${MALLOC_PROGRAMS:-}

passed=0 failed=0 skipped= mm_options=
if [ ! -f "$lib" ]; then
  echo "FAIL setup: $lib is missing (run: make lib)"
  echo "programs: 0 passed, 1 failed"
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mmprograms.XXXXXX") || exit 1
[ "${MALLOC_PROGRAMS_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
trap 'exit 2' INT TERM
inputs=$work/inputs
mkdir "$inputs"

tmo=
command -v timeout >/dev/null 2>&1 && tmo="timeout 120"

ok() {
  echo "ok $1"
  passed=$((passed + 1))
}

fail() {
  echo "FAIL $1: $2"
  failed=$((failed + 1))
}

skip() {
  if [ "$require_all" = 1 ]; then
    fail "$1" "$2 is not installed (MALLOC_PROGRAMS_REQUIRE_ALL=1)"
  else
    echo "skip $1: $2 is not installed"
    skipped="$skipped $1"
  fi
}

wanted() {
  [ -z "$only" ] && return 0
  case " $only " in *" $1 "*) return 0 ;; esac
  return 1
}

# Print the last lines of a file, indented, for a failure report.
tail_of() {
  [ -s "$1" ] && tail -n "${2:-8}" "$1" | sed 's/^/    | /'
}

# run_in_dir MODE NAME SETUP CMD: run CMD with sh in a fresh $work/run, made
# by the shell function SETUP (which runs inside it); MODE is glibc or
# mmalloc (with MMALLOC_OPTIONS=$mm_options).  Leaves NAME.MODE.out, .err
# and .rc in $work.
run_in_dir() {
  rm -rf "$work/run"
  mkdir "$work/run"
  (cd "$work/run" && $3) >"$work/$2.setup" 2>&1 || return 1
  if [ "$1" = mmalloc ]; then
    (cd "$work/run" && LD_PRELOAD=$lib MMALLOC_OPTIONS=$mm_options $tmo sh -c "$4") \
      >"$work/$2.$1.out" 2>"$work/$2.$1.err"
  else
    (cd "$work/run" && $tmo sh -c "$4") >"$work/$2.$1.out" 2>"$work/$2.$1.err"
  fi
  echo $? >"$work/$2.$1.rc"
}

# compare NAME SETUP CMD: the two runs agree, and the preloaded one is clean.
compare() {
  name=$1
  t0=$(date +%s)
  if ! run_in_dir glibc "$name" "$2" "$3"; then
    fail "$name" "setting up the input failed"
    tail_of "$work/$name.setup"
    return 1
  fi
  t1=$(date +%s)
  run_in_dir mmalloc "$name" "$2" "$3"
  t2=$(date +%s)
  rc_g=$(cat "$work/$name.glibc.rc") rc_m=$(cat "$work/$name.mmalloc.rc")
  if [ "$rc_g" != 0 ]; then
    fail "$name" "the command fails even without mmalloc (status $rc_g)"
    tail_of "$work/$name.glibc.err"
    return 1
  fi
  if [ "$rc_m" != "$rc_g" ]; then
    fail "$name" "exit status $rc_m with mmalloc, $rc_g without"
    tail_of "$work/$name.mmalloc.err" 12
    return 1
  fi
  if ! cmp -s "$work/$name.glibc.out" "$work/$name.mmalloc.out"; then
    fail "$name" "standard output differs with mmalloc"
    diff "$work/$name.glibc.out" "$work/$name.mmalloc.out" 2>&1 | sed -n '1,12p' |
      sed 's/^/    | /'
    tail_of "$work/$name.mmalloc.err"
    return 1
  fi
  complaint='^mmalloc: |cannot be preloaded|ERROR: ld.so'
  if grep -Eq "$complaint" "$work/$name.mmalloc.err"; then
    fail "$name" "mmalloc or ld.so complained on stderr"
    grep -E "$complaint" "$work/$name.mmalloc.err" | sed -n '1,5p' | sed 's/^/    | /'
    return 1
  fi
  if [ ! -s "$work/$name.glibc.out" ]; then
    fail "$name" "the command printed nothing: nothing was compared"
    return 1
  fi
  bytes=$(wc -c <"$work/$name.glibc.out" | tr -d ' ')
  echo "  $name: $bytes bytes of output identical;" \
    "$((t1 - t0)) s without mmalloc, $((t2 - t1)) s with" >"$work/$name.note"
  return 0
}

# traced NAME PROGRAM ARGS...: a short run of PROGRAM (no shell, no timeout
# in between: env execs it) under mmalloc with tracing on, in the directory
# of the last comparison.  Each process opens the trace file anew, so what
# is left is what the program, or the last child it started, allocated
# through mmalloc: there must be some.
traced() {
  t=$1
  shift
  rm -f "$work/$t.trace"
  (cd "$work/run" && env LD_PRELOAD="$lib" MMALLOC_OPTIONS=trace \
    MMALLOC_TRACE="$work/$t.trace" "$@") >/dev/null 2>"$work/$t.trace.err"
  n=$(grep -c '^+ ' "$work/$t.trace" 2>/dev/null)
  if [ "${n:-0}" -gt 0 ]; then
    echo "  $t: $n allocations traced in: $*" >>"$work/$t.note"
    return 0
  fi
  fail "$t" "no allocation of the program went through mmalloc (MMALLOC_TRACE empty)"
  tail_of "$work/$t.trace.err"
  return 1
}

# program NAME COMMAND SETUP CMD TRACE...: skip NAME unless COMMAND exists;
# compare CMD's runs (in a directory SETUP made); trace TRACE...
program() {
  wanted "$1" || return 0
  if ! command -v "$2" >/dev/null 2>&1; then
    skip "$1" "$2"
    return 0
  fi
  p_name=$1 p_setup=$3 p_cmd=$4
  shift 4
  if compare "$p_name" "$p_setup" "$p_cmd" && traced "$p_name" "$@"; then
    ok "$p_name"
    cat "$work/$p_name.note"
  fi
}

# --- deterministic inputs ------------------------------------------------------

# LINES lines of words and numbers from a linear congruential generator.
make_text() {
  awk -v n="$1" 'BEGIN {
    x = 12345
    split("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu", w, " ")
    for (i = 0; i < n; i++) {
      x = (x * 1103515245 + 12345) % 2147483648
      y = (x * 69069 + 1) % 4294967296
      printf "%s%d,%d,%s-%x,%s\n", w[x % 12 + 1], x % 1000, y % 100000, w[y % 12 + 1], x, \
        substr("abcdefghijklmnopqrstuvwxyz0123456789", x % 26 + 1, 1 + y % 10)
    }
  }'
}

make_text 600000 >"$inputs/text" || { echo "FAIL setup: awk could not make the input"; exit 1; }
head -n 250000 "$inputs/text" >"$inputs/text-small"

# --- the preload itself ----------------------------------------------------------

check_preload() {
  wanted preload || return 0
  if ! LD_PRELOAD=$lib cat /proc/self/maps 2>"$work/maps.err" | grep -q 'libmmalloc-malloc'; then
    fail preload "/proc/self/maps of a preloaded process does not show libmmalloc-malloc"
    tail_of "$work/maps.err"
    return
  fi
  cc=${CC:-cc}
  if ! command -v "$cc" >/dev/null 2>&1; then
    if [ "$require_all" = 1 ]; then
      fail preload "no C compiler ($cc) for the mmstats check"
    else
      echo "ok preload (maps only: no C compiler for the mmstats check)"
      passed=$((passed + 1))
    fi
    return
  fi
  cat >"$work/chunks.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
struct mstats { size_t bytes_total, chunks_used, bytes_used, chunks_free, bytes_free; };
int main (void)
{
  struct mstats (*st) (void *) = (struct mstats (*) (void *)) dlsym (RTLD_DEFAULT, "mmstats");
  if (!st) { printf ("no mmstats\n"); return 1; }
  void *p = malloc (1000), *q = malloc (100000);
  size_t n = st (NULL).chunks_used;
  free (p);
  free (q);
  size_t m = st (NULL).chunks_used;
  printf ("from %zu to %zu\n", n, m);
  return !(n >= 2 && m == n - 2);
}
EOF
  if ! "$cc" -o "$work/chunks" "$work/chunks.c" -ldl >"$work/chunks.err" 2>&1; then
    fail preload "could not compile the mmstats check"
    tail_of "$work/chunks.err"
    return
  fi
  out=$(LD_PRELOAD=$lib "$work/chunks" 2>&1)
  if [ $? -ne 0 ]; then
    fail preload "mmstats (NULL) does not count the process's blocks: $out"
    return
  fi
  ok preload
  echo "  preload: mapped, and mmstats (NULL).chunks_used went $out with two frees"
}

check_preload

# --- the programs ------------------------------------------------------------------

# python3 with PYTHONMALLOC=malloc (every object through malloc): threads
# building dictionaries, JSON, zlib, hashes, and sqlite3 in memory and in a
# file shared by threads.
python_setup() {
  cat >prog.py <<'EOF'
import collections, hashlib, json, random, sqlite3, sys, threading, zlib

def work(k, out):
    rnd = random.Random(k)
    d = collections.defaultdict(list)
    for i in range(30000):
        d["k%d-%d" % (k, rnd.randrange(60000))].append(rnd.random())
    s = sorted((key, len(v), round(sum(v), 6)) for key, v in d.items())
    blob = json.dumps(s).encode()
    out[k] = (len(d), hashlib.sha256(blob).hexdigest(), len(zlib.compress(blob, 6)))

out = {}
ts = [threading.Thread(target=work, args=(k, out)) for k in range(8)]
for t in ts: t.start()
for t in ts: t.join()
for k in sorted(out): print(k, *out[k])

con = sqlite3.connect(":memory:")
con.execute("create table t (id integer primary key, name text, v real, grp int)")
con.executemany("insert into t (name, v, grp) values (?, ?, ?)",
                (("n%07d" % (i * 7919 % 100003) * (1 + i % 4), (i * 37 % 1000) / 7.0, i % 97)
                 for i in range(60000)))
con.execute("create index ti on t (name)")
for row in con.execute("select grp, count(*), round(sum(v), 3), max(length(name)) "
                       "from t group by grp order by grp limit 12"):
    print(*row)
print(*con.execute("select count(distinct name), sum(length(name)) from t").fetchone())

def writer(k):
    c = sqlite3.connect("shared.db", timeout=60)
    with c:
        c.executemany("insert into s values (?, ?)",
                      ((k, "row %d of %d " % (i, k) * 3) for i in range(3000)))
    c.close()

c = sqlite3.connect("shared.db")
c.execute("create table s (k int, txt text)")
c.commit()
ws = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
for t in ws: t.start()
for t in ws: t.join()
print(*c.execute("select count(*), sum(length(txt)), sum(k) from s").fetchone())
print(hashlib.md5("".join(r[0] for r in c.execute("select txt from s order by k, txt")).encode()).hexdigest())
EOF
}
program python3 python3 python_setup \
  'PYTHONMALLOC=malloc PYTHONHASHSEED=0 python3 prog.py' \
  python3 -c 'import sqlite3; sqlite3.connect(":memory:").execute("select 1")'

# perl: hashes, sorting, regular expressions, sprintf, closures, Digest::MD5.
perl_setup() {
  cat >prog.pl <<'EOF'
use strict; use warnings; use Digest::MD5 qw(md5_hex);
my (%h, @a);
for my $i (1 .. 150000) {
  my $k = sprintf "%x", ($i * 2654435761) % 1000003;
  $h{$k} .= chr(65 + $i % 26);
  push @a, $k x (1 + $i % 3);
}
my @s = sort { length($a) <=> length($b) or $a cmp $b } @a;
print scalar(keys %h), " $s[0] $s[-1]\n";
my $str = join ",", map { "$_=$h{$_}" } sort keys %h;
(my $t = $str) =~ s/([A-Z])\1+/$1/g;
my @words = split /[=,]/, $t;
my %count; $count{length $_}++ for @words;
print join(" ", map { "$_:$count{$_}" } sort { $a <=> $b } keys %count), "\n";
print length($t), " ", md5_hex($t), "\n";
my @subs = map { my $n = $_; sub { $n * $_[0] } } 1 .. 1000;
my $sum = 0; $sum += $_->(3) for @subs;
print "$sum\n";
open my $fh, "<", "text" or die; my %first;
while (<$fh>) { my @f = split /,/; $first{$f[0]} //= $.; }
print join(" ", map { "$_=$first{$_}" } sort keys %first), "\n";
EOF
  cp "$inputs/text-small" text
}
program perl perl perl_setup \
  'PERL_HASH_SEED=0 PERL_PERTURB_KEYS=0 perl prog.pl' \
  perl -e 'my %h = map { $_ => [$_] } 1 .. 1000; print scalar keys %h'

# The same two under MMALLOC_OPTIONS=check: every block guarded and verified
# when freed (mmalloc's locked paths, not the thread caches).
mm_options=check
program python3+check python3 python_setup \
  'PYTHONMALLOC=malloc PYTHONHASHSEED=0 python3 prog.py' \
  python3 -c 'import json; print(len(json.dumps(list(range(1000)))))'
program perl+check perl perl_setup \
  'PERL_HASH_SEED=0 PERL_PERTURB_KEYS=0 perl prog.pl' \
  perl -e 'my %h = map { $_ => [$_] } 1 .. 1000; print scalar keys %h'
mm_options=

# sort: a 600 000-line file, with a small buffer so that it merges temporary
# files, two threads, and a second sort on numeric keys.
sort_setup() { cp "$inputs/text" text; }
program sort sort sort_setup \
  'sort -S 4M -T . --parallel=2 text && sort -t, -k2,2n -k3,3nr -k1,1 -S 16M text | cksum && sort -u -t, -k4,4 text | wc -l' \
  sort -o sorted text

# gcc: compile a generated program of a few thousand lines at -O2, link it,
# run it; the object file must come out the same.
gcc_setup() {
  awk 'BEGIN {
    print "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>"
    print "struct rec { int k; double v; char name[24]; struct rec *next; };"
    for (f = 0; f < 150; f++) {
      printf "static int f%d (int x, struct rec *r)\n{\n  int acc = %d;\n", f, f
      printf "  for (int i = 0; i < x %% 17 + 3; i++)\n    switch ((x + i) %% 7)\n      {\n"
      for (c = 0; c < 7; c++)
        printf "      case %d: acc = acc * %d + (r ? r->k : %d) + i; break;\n", c, c + 3, f
      printf "      }\n  if (r) { r->v += acc * 0.5; snprintf (r->name, sizeof r->name, \"f%d-%%d\", acc %% 1000); }\n", f
      printf "  return acc %% 100003;\n}\n\n"
    }
    print "int main (void)\n{\n  struct rec *head = NULL;\n  long total = 0;"
    print "  for (int i = 0; i < 2000; i++)\n    {\n      struct rec *r = calloc (1, sizeof *r);"
    print "      r->k = i; r->next = head; head = r;\n      switch (i % 150)\n        {"
    for (f = 0; f < 150; f++)
      printf "        case %d: total += f%d (i, r); break;\n", f, f
    print "        }\n    }\n  double v = 0;\n  for (struct rec *r = head; r; r = r->next) v += r->v + strlen (r->name);"
    print "  printf (\"%ld %.1f\\n\", total, v);\n  while (head) { struct rec *n = head->next; free (head); head = n; }\n  return 0;\n}"
  }' >prog.c
}
program gcc gcc gcc_setup \
  'gcc -std=c11 -O2 -Wall -c prog.c -o prog.o && gcc prog.o -o prog && ./prog && cksum <prog.o' \
  gcc -c prog.c -o traced.o

# xz with two threads and 1 MiB blocks (so both threads work), then a test
# and a decompression of what it made.
xz_setup() { cp "$inputs/text" text; }
program xz xz xz_setup \
  'xz -T2 -3 --block-size=1MiB -c text >text.xz && cksum <text.xz && xz -T2 -t text.xz && xz -T2 -dc text.xz | cksum && xz -T2 -l text.xz | tail -n 1' \
  xz -T2 -k -f text

# git: a repository of 80 files made, committed to five times, logged with
# patches, searched, packed by gc and checked by fsck; fixed identities and
# dates make every hash the same.
git_setup() {
  mkdir home
  awk 'BEGIN { for (f = 0; f < 80; f++) printf "files/f%03d.txt\n", f }' >list
}
git_cmd='export HOME=$PWD/home GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=A GIT_AUTHOR_EMAIL=a@example.org
GIT_COMMITTER_NAME=C GIT_COMMITTER_EMAIL=c@example.org
export GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL
git -c init.defaultBranch=main init -q repo && cd repo &&
git config gc.autoDetach false && git config pack.threads 2 && git config core.fsync none &&
for c in 1 2 3 4 5; do
  mkdir -p files
  awk -v c=$c "{ for (i = 0; i < 60; i++) if ((i + NR * c) % 5 != 0) print \$0, c, i, i * c >\$0 }" ../list
  GIT_AUTHOR_DATE="2020-01-0$c 12:00:00 +0000" GIT_COMMITTER_DATE="2020-01-0$c 12:00:00 +0000" \
    git add -A &&
  GIT_AUTHOR_DATE="2020-01-0$c 12:00:00 +0000" GIT_COMMITTER_DATE="2020-01-0$c 12:00:00 +0000" \
    git commit -q -m "commit $c" || exit 1
done &&
git log --format="%H %an %s" --stat | tail -n 20 &&
git log -p | cksum &&
git grep -c " 3 " HEAD~2 | tail -n 3 &&
git diff --stat HEAD~4 HEAD | tail -n 1 &&
git gc -q 2>/dev/null &&
git fsck --no-progress --full &&
git count-objects -v | grep -E "^(count|in-pack|packs):" &&
git rev-parse HEAD HEAD^{tree}'
program git git git_setup "$git_cmd" git init -q traced-repo

# bash: recursion through command substitution, subshells, pipelines,
# background jobs, process substitution, arrays and string work.
bash_setup() {
  cat >prog.sh <<'EOF'
fib() { local n=$1; if (( n < 2 )); then echo "$n"; else echo $(( $(fib $((n - 1))) + $(fib $((n - 2))) )); fi; }
echo "fib $(fib 13)"
declare -A seen
words=()
while IFS=, read -r a b c d e; do
  seen[$d]=$(( ${seen[$d]:-0} + 1 ))
  words+=("${a}_${e}")
done < <(head -n 4000 text)
echo "${#seen[@]} keys, ${#words[@]} words"
for k in $(printf '%s\n' "${!seen[@]}" | sort | head -n 5); do echo "$k ${seen[$k]}"; done
big=$(printf '%s,' "${words[@]}")
echo "${#big} ${big//alpha/A}" | cksum
( for i in $(seq 1 300); do echo $((i * i % 97)); done ) | sort -n | uniq -c | sort -rn | head -n 3
for i in 1 2 3 4 5 6 7 8; do ( x=$(echo "$i" | tr 0-9 a-j); echo "job $i $x" >"out.$i" ) & done
wait
cat out.* | sort
total=0
for i in $(seq 1 200); do total=$(( total + $(echo "$i" | wc -c) )); done
echo "total $total"
printf -v line '%s|' {1..500}
IFS='|' read -r -a parts <<< "$line"
echo "${#parts[@]} parts, last ${parts[-1]}"
mapfile -t lines < <(grep -c beta text; grep -c gamma text)
echo "${lines[*]}"
EOF
  head -n 20000 "$inputs/text" >text
}
program bash bash bash_setup 'bash prog.sh && sh -c "for i in 1 2 3; do (echo sh \$i) | cat; done"' \
  bash -c 'x=$(echo hi); echo "$x"'

# node: Maps and objects, sorting, JSON, Buffers, zlib, crypto, worker
# threads and a child process.
node_setup() {
  cat >prog.js <<'EOF'
const zlib = require('zlib');
const crypto = require('crypto');
const { Worker } = require('worker_threads');
const { execFileSync } = require('child_process');
const m = new Map();
for (let i = 0; i < 200000; i++) m.set('k' + (i * 7919 % 100003), i);
const arr = [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
const json = JSON.stringify(arr);
const buf = Buffer.from(json);
const z = zlib.deflateSync(buf, { level: 6 });
console.log(m.size, arr[0][0], arr[arr.length - 1][0], json.length, z.length);
console.log(crypto.createHash('sha256').update(buf).digest('hex'));
console.log(zlib.inflateSync(z).equals(buf));
const bufs = [];
for (let i = 0; i < 2000; i++) bufs.push(Buffer.alloc(1000 + i * 37, i % 251));
console.log(Buffer.concat(bufs).reduce((a, b) => (a + b) % 1000003, 0));
const src = `const { parentPort, workerData } = require('worker_threads');
  const crypto = require('crypto');
  let h = crypto.createHash('sha1');
  for (let i = 0; i < 20000; i++) h.update('w' + workerData + ':' + i);
  parentPort.postMessage(h.digest('hex'));`;
const runs = [1, 2, 3].map((k) => new Promise((res, rej) => {
  const w = new Worker(src, { eval: true, workerData: k });
  w.on('message', res); w.on('error', rej);
}));
Promise.all(runs).then((hs) => {
  console.log(hs.join(' '));
  console.log(execFileSync(process.execPath, ['-e', 'console.log(Object.keys(process.versions).length > 0)']).toString().trim());
});
EOF
}
node=node
if ! command -v node >/dev/null 2>&1 && command -v nodejs >/dev/null 2>&1; then
  node=nodejs
fi
program node "$node" node_setup "$node prog.js" "$node" -e 'console.log(JSON.stringify({a: [1, 2, 3]}))'

if [ -n "$skipped" ]; then
  echo "skipped (not installed):$skipped"
fi
echo "programs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
