#!/bin/sh
# run.sh -- the library as a packager and a user build and use it.
#
#   flags     CPPFLAGS reach every compile, CFLAGS and LDFLAGS every link
#             (the shared libraries too): one build with a marker header
#             in CPPFLAGS, -fsanitize=address in CFLAGS, -z now in LDFLAGS;
#             and with clang, whose sanitizer runtimes stay out of shared
#             libraries
#   static    libmmalloc.a and libmmalloc-malloc.a define, as globals, the
#             exported API and nothing else; a program with its own mm_free,
#             mm_alloc and mm_report links against them and works
#   header    mmalloc.h compiles as C89 -pedantic and as C++; with gcc and
#             clang its attributes give mmalloc's blocks their size
#             (__builtin_object_size), -Warray-bounds and _FORTIFY_SOURCE
#             catch overruns of them, dropping mrealloc's result warns
#   readme    the README's first code block is examples/hello.c, which
#             works and reports errors with mmalloc_strerror
#   man       every page of man/ formats with groff -ww without a warning
#
# Usage: sh tests/package/run.sh   (POSIX sh; from anywhere; it builds in a
# temporary directory, which it removes)
# Environment: CC (default cc), MAKE (default make), KEEP=1 keeps the temp dir.
# Last line: "package-suite: N passed, M failed"; exit status 0 only if M is 0.

set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CC=${CC:-cc}
MAKE=${MAKE:-make}

pass=0 fail=0 n=0
ok () { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $*"; }
notok () { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $*"; }
note () { echo "# $*"; }
showlog () { [ -s "$1" ] && tail -n "${2:-25}" "$1" | sed 's/^/#   /'; }
# t DESCRIPTION COMMAND...: one check from a command's exit status.
t () {
  desc=$1; shift
  if "$@"; then ok "$desc"; else notok "$desc"; fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mmpkg.XXXXXX") || { echo "cannot make a temp dir"; exit 2; }
cleanup () {
  if [ "${KEEP:-}" = 1 ]; then echo "# kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup 0
trap 'exit 2' INT TERM HUP

note "repository $repo; temporary directory $tmp; CC=$CC"
build=$tmp/plain
if $MAKE -j2 -C "$repo" CC="$CC" B="$build" lib "$build/libmmalloc-internal.a" \
     >"$tmp/lib.log" 2>&1; then
  ok "make lib"
else
  notok "make lib"; showlog "$tmp/lib.log"
fi

# --- flags --------------------------------------------------------------------------

# A marker string that every object compiled with CPPFLAGS carries.
mark=mm-cppflags-mark-4f1c
printf 'static const char mm_cppflags_mark[] __attribute__ ((used)) = "%s";\n' "$mark" \
  >"$tmp/mark.h"
fb=$tmp/flags
if $MAKE -j2 -C "$repo" CC="$CC" B="$fb" CPPFLAGS="-include $tmp/mark.h" \
     CFLAGS="-O1 -g -fsanitize=address" LDFLAGS="-Wl,-z,now" \
     lib tools "$fb/tests/test-smoke" "$fb/examples/hello" >"$tmp/flags.log" 2>&1; then
  ok "make lib tools, a test and an example with CPPFLAGS, CFLAGS=-fsanitize=address, LDFLAGS"
else
  notok "make lib tools, a test and an example with CPPFLAGS, CFLAGS=-fsanitize=address, LDFLAGS"
  showlog "$tmp/flags.log"
fi
# The programs of tools/ (mmtrace-report, mmtool...): the executables at
# the top of the build directory but the libraries.
tools=$(find "$fb" -maxdepth 1 -type f -perm -u+x ! -name 'lib*' | sort | tr '\n' ' ')
note "tools built: $(echo "$tools" | sed "s|$fb/||g")"
t "make tools built mmtrace-report" test -x "$fb/mmtrace-report"
nomark=""
# shellcheck disable=SC2086
for f in "$fb"/obj/*.o "$fb/libmmalloc.so.1" "$fb/libmmalloc-malloc.so.1" "$fb/libmmalloc.a" \
         "$fb/libmmalloc-malloc.a" $tools "$fb/tests/test-smoke" "$fb/examples/hello"; do
  grep -q "$mark" "$f" 2>/dev/null || nomark="$nomark ${f#$fb/}"
done
if [ -z "$nomark" ]; then
  ok "CPPFLAGS reached every compile (objects, libraries, tools, test, example)"
else
  notok "CPPFLAGS did not reach:$nomark"
fi
noasan=""
# shellcheck disable=SC2086
for f in "$fb/libmmalloc.so.1" "$fb/libmmalloc-malloc.so.1" $tools "$fb/tests/test-smoke" \
         "$fb/examples/hello"; do
  readelf -d "$f" 2>/dev/null | grep NEEDED | grep -q 'libasan\.so' || noasan="$noasan ${f#$fb/}"
done
if [ -z "$noasan" ]; then
  ok "CFLAGS=-fsanitize=address reached every link: the libraries and programs need libasan"
else
  notok "linked without CFLAGS (no libasan):$noasan"
fi
nonow=""
# shellcheck disable=SC2086
for f in "$fb/libmmalloc.so.1" "$fb/libmmalloc-malloc.so.1" $tools "$fb/tests/test-smoke" \
         "$fb/examples/hello"; do
  readelf -d "$f" 2>/dev/null | grep -Eq '\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW' \
    || nonow="$nonow ${f#$fb/}"
done
if [ -z "$nonow" ]; then
  ok "LDFLAGS=-Wl,-z,now reached every link: BIND_NOW in the libraries and programs"
else
  notok "linked without LDFLAGS (no BIND_NOW):$nonow"
fi
if command -v clang >/dev/null 2>&1; then
  # clang does not put its sanitizer runtimes into shared libraries.
  if $MAKE -j2 -C "$repo" CC=clang B="$tmp/clang-asan" CFLAGS=-fsanitize=address lib \
       >"$tmp/clang-asan.log" 2>&1; then
    ok "make lib CC=clang CFLAGS=-fsanitize=address links the shared libraries"
  else
    notok "make lib CC=clang CFLAGS=-fsanitize=address links the shared libraries"
    showlog "$tmp/clang-asan.log"
  fi
fi
if [ -x "$fb/tests/test-smoke" ]; then
  mkdir "$tmp/smoke"
  if (cd "$fb/tests" && TMPDIR=$tmp/smoke ./test-smoke) >"$tmp/smoke.log" 2>&1; then
    ok "the test built with those flags passes under AddressSanitizer"
  else
    notok "the test built with those flags passes under AddressSanitizer"; showlog "$tmp/smoke.log"
  fi
fi

# --- static libraries ---------------------------------------------------------------

# The global names of a version script.
map_globals () {
  sed -e 's|/\*.*\*/||' "$1" | tr -s ' \t;{}' '\n' \
    | awk '/^global:$/ { on = 1; next } /^local:$/ { on = 0 } on && NF' | sort -u
}
# The global symbols an archive defines.
ar_globals () {
  nm -g --defined-only "$1" 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u
}
for pair in libmmalloc.a:libmmalloc.map libmmalloc-malloc.a:libmmalloc-malloc.map; do
  a=${pair%%:*} m=${pair#*:}
  map_globals "$repo/src/$m" >"$tmp/$m.want"
  ar_globals "$build/$a" >"$tmp/$a.have"
  if [ ! -s "$tmp/$m.want" ]; then
    notok "src/$m lists the exported names"
  elif cmp -s "$tmp/$m.want" "$tmp/$a.have"; then
    ok "$a defines as globals exactly the $(wc -l <"$tmp/$m.want") names of src/$m"
  else
    notok "$a defines as globals exactly the names of src/$m:"
    diff "$tmp/$m.want" "$tmp/$a.have" | grep '^[<>]' | sed 's/^</# missing:/; s/^>/# extra:/'
  fi
done

# A program whose own names are internal names of the library.
cat >"$tmp/ownnames.c" <<'EOF'
#include <mmalloc.h>
#include <stdio.h>
#include <string.h>

int mm_alloc = 3;
static int freed;
void mm_free (void *p);
void mm_report (const char *what);

void
mm_free (void *p)
{
  freed += p != NULL;
}

void
mm_report (const char *what)
{
  printf ("own report: %s\n", what);
}

int
main (void)
{
  char *s = mmalloc (NULL, 64);
  if (!s)
    return 1;
  strcpy (s, "kept");
  mm_free (s);
  mfree (NULL, s);
  mm_report (freed == 1 && mm_alloc == 3 ? "ok" : "wrong");
  return mmalloc_check (NULL) != 0;
}
EOF
internal=$(nm -g --defined-only "$build/libmmalloc-internal.a" 2>/dev/null \
  | awk '$3 == "mm_free" || $3 == "mm_alloc" || $3 == "mm_report" { print $3 }' | sort -u | wc -l)
t "mm_free, mm_alloc and mm_report are internal globals of the library's objects" \
  test "$internal" -eq 3
for a in libmmalloc.a libmmalloc-malloc.a; do
  if $CC -std=c11 -Wall -Wextra -Werror -O2 -I"$repo/include" -o "$tmp/own-$a" "$tmp/ownnames.c" \
       "$build/$a" -lpthread >"$tmp/own-$a.log" 2>&1; then
    ok "a program that defines mm_free, mm_alloc and mm_report links against $a"
    out=$("$tmp/own-$a" 2>&1); rc=$?
    if [ $rc -eq 0 ] && [ "$out" = "own report: ok" ]; then
      ok "that program runs and uses its own names and the library's API ($a)"
    else
      notok "that program runs (exit $rc, output: $out) ($a)"
    fi
  else
    notok "a program that defines mm_free, mm_alloc and mm_report links against $a"
    showlog "$tmp/own-$a.log"
  fi
done

# --- the public header ---------------------------------------------------------------

compilers=""
for c in gcc clang; do command -v $c >/dev/null 2>&1 && compilers="$compilers $c"; done
note "compilers for the header checks:$compilers"
printf '#include <mmalloc.h>\nint main (void) { void *p = mmalloc (0, 8); mfree (0, p); return 0; }\n' \
  >"$tmp/c89.c"
cp "$tmp/c89.c" "$tmp/cxx.cc"
for c in $compilers; do
  t "$c -std=c89 -pedantic -Wall -Wextra -Werror compiles mmalloc.h" \
    $c -std=c89 -pedantic -Wall -Wextra -Werror -I"$repo/include" -c -o "$tmp/c89.o" "$tmp/c89.c"
  case $c in gcc) cxx=g++ ;; *) cxx=clang++ ;; esac
  if command -v $cxx >/dev/null 2>&1; then
    t "$cxx -pedantic -Wall -Wextra -Werror compiles mmalloc.h" \
      $cxx -pedantic -Wall -Wextra -Werror -I"$repo/include" -c -o "$tmp/cxx.o" "$tmp/cxx.cc"
  else
    notok "$cxx is installed (to compile mmalloc.h as C++)"
  fi
done

# The size of each allocating function's block, as the compiler knows it.
cat >"$tmp/objsize.c" <<'EOF'
#include <mmalloc.h>
#include <stdio.h>
#define SZ(p) ((unsigned long) __builtin_object_size (p, 0))
int
main (void)
{
  char *a = mmalloc (NULL, 24), *b = mcalloc (NULL, 3, 8), *c = mvalloc (NULL, 50);
  char *d = mmemalign (NULL, 64, 100), *e = mrealloc (NULL, mmalloc (NULL, 1), 40);
  printf ("%lu %lu %lu %lu %lu\n", SZ (a), SZ (b), SZ (c), SZ (d), SZ (e));
  mfree (NULL, a); mfree (NULL, b); mfree (NULL, c); mfree (NULL, d); mfree (NULL, e);
  return 0;
}
EOF
# A constant write past the end of a block.
printf '%s\n' '#include <mmalloc.h>' 'int main (void) {' '  char *p = mmalloc (NULL, 8);' \
  '  if (p) p[10] = 1;' '  mfree (NULL, p);' '  return 0;' '}' >"$tmp/bounds.c"
# A copy whose length comes at run time: _FORTIFY_SOURCE checks it.
cat >"$tmp/fortify.c" <<'EOF'
#include <mmalloc.h>
#include <stdlib.h>
#include <string.h>
int
main (int argc, char **argv)
{
  static const char src[64];
  char *p = mmalloc (NULL, 8);
  if (!p || argc < 2)
    return 2;
  memcpy (p, src, (size_t) atoi (argv[1]));
  mfree (NULL, p);
  return 0;
}
EOF
printf '%s\n' '#include <mmalloc.h>' 'int main (void) {' '  char *p = mmalloc (NULL, 8);' \
  '  mrealloc (NULL, p, 16);' '  return 0;' '}' >"$tmp/wur.c"
lib="$build/libmmalloc.a -lpthread"
for c in $compilers; do
  # shellcheck disable=SC2086
  if $c -std=c11 -O2 -I"$repo/include" -o "$tmp/objsize-$c" "$tmp/objsize.c" $lib \
       >"$tmp/objsize-$c.log" 2>&1; then
    sizes=$("$tmp/objsize-$c")
    t "$c -O2: __builtin_object_size of mmalloc 24, mcalloc 3x8, mvalloc 50, mmemalign 100, mrealloc 40 ($sizes)" \
      test "$sizes" = "24 24 50 100 40"
  else
    notok "$c: build the object size program"; showlog "$tmp/objsize-$c.log"
  fi
  # shellcheck disable=SC2086
  if $c -std=c11 -O2 -D_FORTIFY_SOURCE=2 -I"$repo/include" -o "$tmp/fortify-$c" "$tmp/fortify.c" \
       $lib >"$tmp/fortify-$c.log" 2>&1; then
    "$tmp/fortify-$c" 8 >/dev/null 2>&1; rc8=$?
    "$tmp/fortify-$c" 16 >"$tmp/fortify-$c.out" 2>&1; rc16=$?
    if [ $rc8 -eq 0 ] && [ $rc16 -gt 128 ] && grep -q 'buffer overflow detected' "$tmp/fortify-$c.out"; then
      ok "$c -D_FORTIFY_SOURCE=2: a copy of 16 bytes into mmalloc (NULL, 8) is stopped, of 8 is not"
    else
      notok "$c -D_FORTIFY_SOURCE=2: a copy of 16 bytes into mmalloc (NULL, 8) is stopped (exit for 8: $rc8, for 16: $rc16)"
      showlog "$tmp/fortify-$c.out" 5
    fi
  else
    notok "$c: build the _FORTIFY_SOURCE program"; showlog "$tmp/fortify-$c.log"
  fi
  $c -std=c11 -Wall -Wextra -I"$repo/include" -c -o "$tmp/wur.o" "$tmp/wur.c" >"$tmp/wur-$c.log" 2>&1
  t "$c: dropping mrealloc's result warns (-Wunused-result)" grep -q 'unused-result' "$tmp/wur-$c.log"
done
if command -v gcc >/dev/null 2>&1; then
  gcc -std=c11 -O2 -Wall -Warray-bounds -I"$repo/include" -c -o "$tmp/bounds.o" "$tmp/bounds.c" \
    >"$tmp/bounds.log" 2>&1
  gcc -std=c11 -O2 -Wall -Warray-bounds -DMMALLOC_NO_ATTRIBUTES -I"$repo/include" -c \
    -o "$tmp/bounds.o" "$tmp/bounds.c" >"$tmp/bounds-no.log" 2>&1
  if grep -Eq 'array-bounds|stringop-overflow' "$tmp/bounds.log" \
     && ! grep -Eq 'array-bounds|stringop-overflow' "$tmp/bounds-no.log"; then
    ok "gcc -O2 -Warray-bounds: p[10] = 1 into mmalloc (NULL, 8) warns (not with MMALLOC_NO_ATTRIBUTES)"
  else
    notok "gcc -O2 -Warray-bounds: p[10] = 1 into mmalloc (NULL, 8) warns (not with MMALLOC_NO_ATTRIBUTES)"
    showlog "$tmp/bounds.log" 10; showlog "$tmp/bounds-no.log" 10
  fi
fi
if command -v clang >/dev/null 2>&1; then
  printf '%s\n' '#include <mmalloc.h>' 'void *f (void);' \
    'void *f (void) { return mmemalign (NULL, 3, 10); }' >"$tmp/align.c"
  clang -std=c11 -Wall -I"$repo/include" -c -o "$tmp/align.o" "$tmp/align.c" >"$tmp/align.log" 2>&1
  t "clang: mmemalign (NULL, 3, 10) warns (alloc_align: -Wnon-power-of-two-alignment)" \
    grep -q 'non-power-of-two-alignment' "$tmp/align.log"
fi

# --- the README's example -------------------------------------------------------------

# The README's first code block: lines indented by four spaces after a blank
# line, up to the first line indented less.
awk 'blk && /^$/ { held = held "\n"; next }
     blk && /^    / { printf "%s", held; held = ""; print substr($0, 5); next }
     blk { exit }
     prev == "" && /^    / { blk = 1; print substr($0, 5); next }
     { prev = $0 }' "$repo/README" >"$tmp/readme-first.c"
if cmp -s "$tmp/readme-first.c" "$repo/examples/hello.c"; then
  ok "the README's first code block is examples/hello.c ($(wc -l <"$repo/examples/hello.c") lines)"
else
  notok "the README's first code block is examples/hello.c:"
  diff "$tmp/readme-first.c" "$repo/examples/hello.c" | head -n 20 | sed 's/^/#   /'
fi
t "examples/hello.c reports errors with mmalloc_strerror, not perror" \
  sh -c '! grep -q "perror" "$1" && grep -q "mmalloc_strerror" "$1"' sh "$repo/examples/hello.c"
if $CC -std=c11 -Wall -Wextra -Werror -I"$repo/include" -o "$tmp/hello" "$repo/examples/hello.c" \
     "$build/libmmalloc.a" -lpthread >"$tmp/hello.log" 2>&1; then
  mkdir "$tmp/hellorun"
  one=$(cd "$tmp/hellorun" && "$tmp/hello" 2>&1); rc1=$?
  two=$(cd "$tmp/hellorun" && "$tmp/hello" 2>&1); rc2=$?
  if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ "$one" = "stored a string in hello.heap; run me again" ] \
     && [ "$two" = "found in hello.heap: hello from an earlier process" ]; then
    ok "hello stores its string in the first run and finds it in the second"
  else
    notok "hello: first run ($rc1) '$one', second ($rc2) '$two'"
  fi
  # A hello.heap that is no heap: the message names mmalloc's error.
  rm -f "$tmp/hellorun/hello.heap"
  head -c 8192 /dev/zero | tr '\0' 'x' >"$tmp/hellorun/hello.heap"
  bad=$(cd "$tmp/hellorun" && "$tmp/hello" 2>&1); rc=$?
  t "hello on a file that is no heap: exit 1, '$bad'" \
    test $rc -eq 1 -a "$bad" = "hello.heap: Not an mmalloc heap file"
else
  notok "examples/hello.c compiles with -Wall -Wextra -Werror"; showlog "$tmp/hello.log"
fi

# --- manual pages -------------------------------------------------------------------

# A page in man/man3 for each name libmmalloc.so.1 exports, and none for
# any other.
map_globals "$repo/src/libmmalloc.map" >"$tmp/exported"
(cd "$repo/man/man3" && ls -- *.3) | sed 's/\.3$//' | sort -u >"$tmp/pages"
nopage=$(comm -23 "$tmp/exported" "$tmp/pages" | tr '\n' ' ')
stale=$(comm -13 "$tmp/exported" "$tmp/pages" | tr '\n' ' ')
t "man/man3 has a page for every name of src/libmmalloc.map${nopage:+ (missing: $nopage)}" \
  test -z "$nopage"
t "man/man3 has no page for a name the library does not export${stale:+ ($stale)}" test -z "$stale"

if command -v groff >/dev/null 2>&1; then
  warned=""
  for f in "$repo"/man/man*/*.[0-9]; do
    rel=${f#$repo/man/}
    (cd "$repo/man" && groff -man -Tutf8 -ww -z "$rel") >"$tmp/groff.err" 2>&1
    if [ -s "$tmp/groff.err" ]; then warned="$warned $rel"; showlog "$tmp/groff.err" 5; fi
  done
  t "groff -man -ww formats every page of man/ without a warning" test -z "$warned"
else
  notok "groff is installed (to check the manual pages)"
fi

echo "package-suite: $pass passed, $fail failed"
[ $fail -eq 0 ]
