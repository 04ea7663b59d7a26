#!/bin/sh
# run.sh -- the library as a packager and a user build and use it.
#
#   flags     CPPFLAGS reach every compile, CFLAGS and LDFLAGS every link
#             (the shared libraries too): one build with a marker header
#             in CPPFLAGS, -fsanitize=address in CFLAGS, -z now in LDFLAGS
#   static    libmmalloc.a and libmmalloc-malloc.a define, as globals, the
#             exported API and nothing else; a program with its own mm_free,
#             mm_alloc and mm_report links against them and works
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
nomark=""
for f in "$fb"/obj/*.o "$fb/libmmalloc.so.1" "$fb/libmmalloc-malloc.so.1" "$fb/libmmalloc.a" \
         "$fb/libmmalloc-malloc.a" "$fb/mmtrace-report" "$fb/tests/test-smoke" \
         "$fb/examples/hello"; do
  grep -q "$mark" "$f" 2>/dev/null || nomark="$nomark ${f#$fb/}"
done
if [ -z "$nomark" ]; then
  ok "CPPFLAGS reached every compile (objects, libraries, tool, test, example)"
else
  notok "CPPFLAGS did not reach:$nomark"
fi
noasan=""
for f in "$fb/libmmalloc.so.1" "$fb/libmmalloc-malloc.so.1" "$fb/mmtrace-report" \
         "$fb/tests/test-smoke" "$fb/examples/hello"; do
  readelf -d "$f" 2>/dev/null | grep NEEDED | grep -q 'libasan\.so' || noasan="$noasan ${f#$fb/}"
done
if [ -z "$noasan" ]; then
  ok "CFLAGS=-fsanitize=address reached every link: the libraries and programs need libasan"
else
  notok "linked without CFLAGS (no libasan):$noasan"
fi
nonow=""
for f in "$fb/libmmalloc.so.1" "$fb/libmmalloc-malloc.so.1" "$fb/mmtrace-report" \
         "$fb/tests/test-smoke" "$fb/examples/hello"; do
  readelf -d "$f" 2>/dev/null | grep -Eq '\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW' \
    || nonow="$nonow ${f#$fb/}"
done
if [ -z "$nonow" ]; then
  ok "LDFLAGS=-Wl,-z,now reached every link: BIND_NOW in the libraries and programs"
else
  notok "linked without LDFLAGS (no BIND_NOW):$nonow"
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

# --- manual pages -------------------------------------------------------------------

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
