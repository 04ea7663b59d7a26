#!/bin/sh
# run.sh -- the mmalloc conformance suite.
#
# Builds the library, installs it into a temporary prefix, compiles
# conformance.c and compat.c against the INSTALLED header and library (through
# pkg-config, dynamically, and statically against libmmalloc.a), runs them,
# checks the exported symbols and the SONAME of the installed shared library,
# checks DESTDIR/libdir/includedir, and uninstalls again.
#
# Usage: sh tests/conformance/run.sh        (from anywhere; POSIX sh)
# Environment: CC (default cc), MAKE (default make), KEEP=1 keeps the temp dir.
# Last line: "conformance-suite: N passed, M failed"; exit status 0 only if M is 0.

set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CC=${CC:-cc}
MAKE=${MAKE:-make}
CFLAGS_T="-std=c11 -O2 -g -Wall -Wextra"

pass=0
fail=0
n=0

ok () {
  n=$((n + 1)); pass=$((pass + 1))
  echo "ok $n - $*"
}

notok () {
  n=$((n + 1)); fail=$((fail + 1))
  echo "not ok $n - $*"
}

# t DESCRIPTION COMMAND...: one check from a command's exit status.
t () {
  desc=$1; shift
  if "$@"; then ok "$desc"; else notok "$desc"; fi
}

note () {
  echo "# $*"
}

# Show the tail of a log file as diagnostics.
showlog () {
  if [ -s "$1" ]; then
    tail -n "${2:-25}" "$1" | sed 's/^/#   /'
  fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mmsuite.XXXXXX") || { echo "cannot make a temp dir"; exit 2; }
cleanup () {
  if [ "${KEEP:-}" = 1 ]; then echo "# kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup 0
trap 'exit 2' INT TERM HUP

prefix=$tmp/prefix
libdir=$prefix/lib
incdir=$prefix/include
pcdir=$libdir/pkgconfig

note "repository $repo; temporary prefix $prefix; CC=$CC"

# --- build and install ------------------------------------------------------------

if $MAKE -C "$repo" >"$tmp/build.log" 2>&1; then
  ok "make -C <repo> builds the library"
else
  notok "make -C <repo> builds the library"; showlog "$tmp/build.log"
fi

if $MAKE -C "$repo" install PREFIX="$prefix" >"$tmp/install.log" 2>&1; then
  ok "make install PREFIX=<tmp> succeeds"
else
  notok "make install PREFIX=<tmp> succeeds"; showlog "$tmp/install.log"
fi

t "installed include/mmalloc.h" test -f "$incdir/mmalloc.h"
t "installed include/mmalloc-compat.h" test -f "$incdir/mmalloc-compat.h"
t "installed lib/libmmalloc.so.1" test -f "$libdir/libmmalloc.so.1"
t "installed lib/libmmalloc.so, a symlink that resolves" \
  sh -c 'test -h "$1" && test -f "$1"' sh "$libdir/libmmalloc.so"
t "lib/libmmalloc.so leads to the same file as libmmalloc.so.1" \
  sh -c 'cmp -s "$1" "$2"' sh "$libdir/libmmalloc.so" "$libdir/libmmalloc.so.1"
t "installed lib/libmmalloc.a" test -f "$libdir/libmmalloc.a"
t "installed lib/pkgconfig/mmalloc.pc" test -f "$pcdir/mmalloc.pc"
t "installed lib/pkgconfig/mmalloc-malloc.pc" test -f "$pcdir/mmalloc-malloc.pc"
t "the installed mmalloc.h is the repository's public header" \
  cmp -s "$incdir/mmalloc.h" "$repo/include/mmalloc.h"
t "the installed mmalloc-compat.h is the repository's compat header" \
  cmp -s "$incdir/mmalloc-compat.h" "$repo/include/mmalloc-compat.h"

# --- pkg-config -------------------------------------------------------------------

PKG_CONFIG_PATH=$pcdir
PKG_CONFIG_LIBDIR=$pcdir
export PKG_CONFIG_PATH PKG_CONFIG_LIBDIR

hdrver=$(sed -n 's/^#define MMALLOC_VERSION_STRING "\(.*\)".*/\1/p' "$incdir/mmalloc.h" 2>/dev/null)
pcver=$(pkg-config --modversion mmalloc 2>"$tmp/pc.err")
if [ -n "$pcver" ] && [ "$pcver" = "$hdrver" ]; then
  ok "pkg-config --modversion mmalloc is the header's version ($pcver)"
else
  notok "pkg-config --modversion mmalloc is the header's version (pkg-config '$pcver', header '$hdrver')"
  showlog "$tmp/pc.err"
fi
pcflags=$(pkg-config --cflags mmalloc 2>/dev/null)
pclibs=$(pkg-config --libs mmalloc 2>/dev/null)
note "pkg-config --cflags: $pcflags"
note "pkg-config --libs: $pclibs"
case " $pcflags " in
  *" -I$incdir "*) ok "pkg-config --cflags points at the installed include dir" ;;
  *) notok "pkg-config --cflags points at the installed include dir ($incdir); got '$pcflags'" ;;
esac
case " $pclibs " in
  *" -L$libdir "*)
    case " $pclibs " in
      *" -lmmalloc "*) ok "pkg-config --libs gives -L<installed lib dir> -lmmalloc" ;;
      *) notok "pkg-config --libs gives -lmmalloc; got '$pclibs'" ;;
    esac ;;
  *) notok "pkg-config --libs gives -L$libdir -lmmalloc; got '$pclibs'" ;;
esac
pcstatic=$(pkg-config --static --libs mmalloc 2>/dev/null)
case " $pcstatic " in
  *" -lpthread "*|*" -pthread "*) ok "pkg-config --static --libs adds the thread library" ;;
  *) notok "pkg-config --static --libs adds the thread library; got '$pcstatic'" ;;
esac
# The .pc files name their directories relative to ${prefix}, so that they
# can be moved with the tree (pkg-config --define-prefix, or a relocated
# prefix variable).
for pc in mmalloc mmalloc-malloc; do
  if grep -qx 'libdir=${exec_prefix}/lib' "$pcdir/$pc.pc" \
     && grep -qx 'includedir=${prefix}/include' "$pcdir/$pc.pc" \
     && grep -qx 'exec_prefix=${prefix}' "$pcdir/$pc.pc"; then
    ok "$pc.pc writes exec_prefix, libdir and includedir relative to \${prefix}"
  else
    notok "$pc.pc writes exec_prefix, libdir and includedir relative to \${prefix}:"
    sed 's/^/#   /' "$pcdir/$pc.pc"
  fi
  moved=$(pkg-config --define-variable=prefix=/moved --variable=libdir "$pc" 2>/dev/null)
  t "$pc.pc with prefix=/moved gives libdir /moved/lib ($moved)" test "$moved" = /moved/lib
done
mcflags=$(pkg-config --cflags mmalloc-malloc 2>/dev/null)
mlibs=$(pkg-config --libs mmalloc-malloc 2>/dev/null)
note "pkg-config --cflags --libs mmalloc-malloc: $mcflags $mlibs"
# The drop-in, linked through its .pc file: malloc gives blocks of the
# default heap, which mfree (NULL, ...) takes (it would abort on a block of
# the C library's malloc).
cat >"$tmp/dropin.c" <<'EOF2'
#include <mmalloc.h>
#include <stdlib.h>
#include <string.h>
int
main (void)
{
  char *p = malloc (100);
  if (!p)
    return 1;
  memset (p, 1, 100);
  mfree (NULL, p);
  return mmalloc_check (NULL) != 0;
}
EOF2
# shellcheck disable=SC2086
if $CC $CFLAGS_T -o "$tmp/dropin" "$tmp/dropin.c" $mcflags $mlibs -Wl,-rpath,"$libdir" \
     >"$tmp/dropin.log" 2>&1; then
  ok "a program builds with pkg-config --cflags --libs mmalloc-malloc"
  t "its malloc is mmalloc's: mfree (NULL, malloc (100)) works" "$tmp/dropin"
else
  notok "a program builds with pkg-config --cflags --libs mmalloc-malloc"; showlog "$tmp/dropin.log"
fi

# --- compile against the installed library -------------------------------------------

build () {
  # build NAME SOURCE KIND(dyn|static)
  out=$tmp/$1
  if [ "$3" = dyn ]; then
    # shellcheck disable=SC2086
    $CC $CFLAGS_T -o "$out" "$2" $pcflags $pclibs -lpthread -Wl,-rpath,"$libdir" \
      >"$tmp/$1.cc.log" 2>&1
  else
    $CC $CFLAGS_T -o "$out" "$2" -I"$incdir" "$libdir/libmmalloc.a" -lpthread \
      >"$tmp/$1.cc.log" 2>&1
  fi
  rc=$?
  if [ $rc -eq 0 ]; then
    ok "compile $(basename "$2") ($3) against the installed library"
    if [ -s "$tmp/$1.cc.log" ]; then note "compiler messages:"; showlog "$tmp/$1.cc.log" 40; fi
  else
    notok "compile $(basename "$2") ($3) against the installed library"
    showlog "$tmp/$1.cc.log" 40
    if [ "$3" = dyn ]; then
      # Still exercise the shared library, without pkg-config's flags; the failure
      # above stays counted.
      if $CC $CFLAGS_T -o "$out" "$2" -I"$incdir" -L"$libdir" -lmmalloc -lpthread \
           -Wl,-rpath,"$libdir" >"$tmp/$1.cc2.log" 2>&1; then
        ok "compile $(basename "$2") (dyn) with explicit -I/-L flags instead of pkg-config (fallback)"
        rc=0
      else
        notok "compile $(basename "$2") (dyn) with explicit -I/-L flags instead of pkg-config (fallback)"
        showlog "$tmp/$1.cc2.log" 40
      fi
    fi
  fi
  return $rc
}

needed () {
  readelf -d "$1" 2>/dev/null | grep 'NEEDED' | grep -q 'libmmalloc\.so\.1'
}

bins=""
if build conformance-dyn "$here/conformance.c" dyn; then
  bins="$bins conformance-dyn"
  t "conformance-dyn needs libmmalloc.so.1 (dynamic link)" needed "$tmp/conformance-dyn"
  if command -v ldd >/dev/null 2>&1; then
    t "conformance-dyn resolves libmmalloc.so.1 to the installed copy" \
      sh -c 'ldd "$1" | grep "libmmalloc\.so\.1" | grep -q "$2/"' sh "$tmp/conformance-dyn" "$libdir"
  fi
fi
if build conformance-static "$here/conformance.c" static; then
  bins="$bins conformance-static"
  if needed "$tmp/conformance-static"; then
    notok "conformance-static does not need libmmalloc.so (static link)"
  else
    ok "conformance-static does not need libmmalloc.so (static link)"
  fi
fi
if build compat-dyn "$here/compat.c" dyn; then
  bins="$bins compat-dyn"
fi
if build compat-static "$here/compat.c" static; then
  bins="$bins compat-static"
fi

# --- run them -------------------------------------------------------------------------

runtmp=$tmp/run
mkdir -p "$runtmp"
for b in $bins; do
  case $b in
    conformance*) tag=conformance ;;
    *) tag=compat ;;
  esac
  echo "# ----- $b -----"
  TMPDIR=$runtmp LD_LIBRARY_PATH=$libdir "$tmp/$b" >"$tmp/$b.out" 2>&1
  rc=$?
  left=$(ls -A "$runtmp")
  if [ -n "$left" ]; then
    notok "$b: removes its temporary files (left:" $left")"
    find "$runtmp" -mindepth 1 -delete
  else
    ok "$b: removes its temporary files"
  fi
  sed 's/^/    /' "$tmp/$b.out"
  last=$(tail -n 1 "$tmp/$b.out")
  if [ $rc -eq 0 ] && echo "$last" | grep -Eq "^$tag: [0-9]+ passed, 0 failed\$"; then
    ok "$b: $last"
  else
    if echo "$last" | grep -Eq "^$tag: [0-9]+ passed, [0-9]+ failed\$"; then
      notok "$b: $last (exit $rc)"
    else
      notok "$b: no summary line (exit $rc)"
    fi
  fi
done

# --- exported symbols and SONAME --------------------------------------------------------

so=$libdir/libmmalloc.so.1
if [ -f "$so" ]; then
  # Defined dynamic symbols; absolute (A) entries are symbol-version nodes, not code or data.
  nm -D --defined-only "$so" 2>"$tmp/nm.err" | awk '$2 != "A" { print $NF }' | sed 's/@.*//' \
    | sort -u >"$tmp/exports"
  note "exported: $(tr '\n' ' ' <"$tmp/exports")"
  if [ ! -s "$tmp/exports" ]; then
    notok "nm -D lists the exported symbols of libmmalloc.so.1"
    showlog "$tmp/nm.err"
  else
    bad=$(grep -Ev '^(mmalloc|mfree|mrealloc|mcalloc|mvalloc|mmemalign|mmcheck|mmstats|mmtrace)' \
      "$tmp/exports" | tr '\n' ' ')
    if [ -z "$bad" ]; then
      ok "libmmalloc.so.1 exports only mmalloc*/mfree/mrealloc/mcalloc/mvalloc/mmemalign/mmcheck*/mmstats/mmtrace"
    else
      notok "libmmalloc.so.1 exports only the public API; also exports: $bad"
    fi
    internal=$(grep -E '^_?mm_' "$tmp/exports" | tr '\n' ' ')
    if [ -z "$internal" ]; then
      ok "libmmalloc.so.1 exports no internal mm_ symbols"
    else
      notok "libmmalloc.so.1 exports internal symbols: $internal"
    fi
    missing=""
    for f in mmalloc_attach mmalloc_detach mmalloc_findbase mmalloc_setkey mmalloc_getkey \
             mmalloc_errno mmalloc_sync mmalloc mrealloc mcalloc mfree mvalloc mmemalign \
             mmalloc_usable_size mmcheck mmcheckf mmalloc_check mmstats mmtrace \
             mmalloc_version mmalloc_strerror; do
      grep -qx "$f" "$tmp/exports" || missing="$missing $f"
    done
    if [ -z "$missing" ]; then
      ok "libmmalloc.so.1 exports every function of the public header"
    else
      notok "libmmalloc.so.1 lacks public functions:$missing"
    fi
  fi
  soname=$(readelf -d "$so" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
  if [ "$soname" = libmmalloc.so.1 ]; then
    ok "SONAME of the installed library is libmmalloc.so.1"
  else
    notok "SONAME of the installed library is libmmalloc.so.1 (got '$soname')"
  fi
else
  notok "libmmalloc.so.1 is installed (needed for the symbol checks)"
fi

# --- manual pages ---------------------------------------------------------------------------

mandir=$prefix/share/man
t "installed share/man/man3/mmalloc.3" test -f "$mandir/man3/mmalloc.3"
t "installed share/man/man1/mmtrace-report.1" test -f "$mandir/man1/mmtrace-report.1"
if [ -s "$tmp/exports" ]; then
  nopage=""
  for f in $(cat "$tmp/exports"); do
    [ -f "$mandir/man3/$f.3" ] || nopage="$nopage $f"
  done
  if [ -z "$nopage" ]; then
    ok "every function libmmalloc.so.1 exports has its installed page in man3"
  else
    notok "exported functions without a page in man3:$nopage"
  fi
fi
# Each installed page renders without a warning (a link page renders
# mmalloc(3) through its .so request).
badpage=""
for f in "$mandir"/man1/*.1 "$mandir"/man3/*.3; do
  [ -f "$f" ] || continue
  rel=${f#$mandir/}
  out=$(cd "$mandir" && MANWIDTH=80 man -l "$rel" 2>"$tmp/man.err")
  if [ -s "$tmp/man.err" ] || [ -z "$out" ]; then
    badpage="$badpage $rel"; showlog "$tmp/man.err" 5
  fi
  case $rel in
    man3/*) printf '%s\n' "$out" | head -n 1 | grep -q '^MMALLOC(3)' || badpage="$badpage $rel" ;;
  esac
done
if [ -z "$badpage" ]; then
  ok "man -l renders every installed page without a warning (man3 pages as MMALLOC(3))"
else
  notok "man -l: pages with warnings or the wrong page:$badpage"
fi

# --- uninstall ----------------------------------------------------------------------------

# Without install-info on PATH: make uninstall must not report an error.
nobin=$tmp/nobin
mkdir -p "$nobin"
for c in rm grep; do ln -s "$(command -v $c)" "$nobin/$c"; done
if PATH=$nobin $(command -v "$MAKE") -C "$repo" uninstall PREFIX="$prefix" \
     >"$tmp/uninstall.log" 2>&1; then
  ok "make uninstall PREFIX=<tmp> succeeds (no install-info on PATH)"
else
  notok "make uninstall PREFIX=<tmp> succeeds (no install-info on PATH)"; showlog "$tmp/uninstall.log"
fi
if grep -Eq '\] Error [0-9]|ignored|not found' "$tmp/uninstall.log"; then
  notok "make uninstall reports no error without install-info"; showlog "$tmp/uninstall.log"
else
  ok "make uninstall reports no error without install-info"
fi
gone=1
for f in include/mmalloc.h include/mmalloc-compat.h lib/libmmalloc.so.1 lib/libmmalloc.so \
         lib/libmmalloc.a lib/pkgconfig/mmalloc.pc lib/pkgconfig/mmalloc-malloc.pc \
         share/man/man3/mmalloc.3 share/man/man3/mfree.3 share/man/man1/mmtrace-report.1; do
  if [ -e "$prefix/$f" ] || [ -h "$prefix/$f" ]; then
    gone=0; note "still there after uninstall: $f"
  fi
done
if [ $gone = 1 ]; then
  ok "make uninstall removed the headers, libraries, .pc files and manual pages"
else
  notok "make uninstall removed the headers, libraries, .pc files and manual pages"
fi
# Nothing else that install put there may stay behind.  The info directory
# index (share/info/dir) belongs to install-info and is shared, so it may stay.
left=$(cd "$prefix" 2>/dev/null && find . \( -type f -o -type l \) ! -path './share/info/dir' \
  | sed 's|^\./||' | tr '\n' ' ')
if [ -z "$left" ]; then
  ok "make uninstall left no installed file behind"
else
  notok "make uninstall left files behind: $left"
fi

# --- DESTDIR, libdir, includedir -------------------------------------------------------

dest=$tmp/dest
vprefix=/opt/mmconf-$$
vlib=$vprefix/lib64
vinc=$vprefix/inc
if $MAKE -C "$repo" install DESTDIR="$dest" PREFIX="$vprefix" libdir="$vlib" includedir="$vinc" \
     >"$tmp/install2.log" 2>&1; then
  ok "make install DESTDIR=<tmp> PREFIX=$vprefix libdir=.../lib64 includedir=.../inc succeeds"
else
  notok "make install with DESTDIR, PREFIX, libdir, includedir succeeds"; showlog "$tmp/install2.log"
fi
t "DESTDIR install: no files were written to the real $vprefix" test ! -e "$vprefix"
allthere=1
for f in "$vinc/mmalloc.h" "$vinc/mmalloc-compat.h" "$vlib/libmmalloc.so.1" "$vlib/libmmalloc.so" \
         "$vlib/libmmalloc.a"; do
  if [ ! -e "$dest$f" ]; then allthere=0; note "missing: \$DESTDIR$f"; fi
done
if [ $allthere = 1 ]; then
  ok "DESTDIR install: headers in includedir, libraries in libdir, under DESTDIR"
else
  notok "DESTDIR install: headers in includedir, libraries in libdir, under DESTDIR"
fi
pc2=$(find "$dest" -name mmalloc.pc 2>/dev/null | head -n 1)
if [ -n "$pc2" ]; then
  ok "DESTDIR install: mmalloc.pc installed (${pc2#$dest})"
  pcl=$(PKG_CONFIG_PATH=$(dirname "$pc2") PKG_CONFIG_LIBDIR=$(dirname "$pc2") \
    pkg-config --variable=libdir mmalloc 2>/dev/null)
  pci=$(PKG_CONFIG_PATH=$(dirname "$pc2") PKG_CONFIG_LIBDIR=$(dirname "$pc2") \
    pkg-config --variable=includedir mmalloc 2>/dev/null)
  if [ "$pcl" = "$vlib" ] && [ "$pci" = "$vinc" ]; then
    ok "DESTDIR install: mmalloc.pc names the final libdir and includedir (without DESTDIR)"
  else
    notok "DESTDIR install: mmalloc.pc names libdir=$vlib includedir=$vinc; it says libdir=$pcl includedir=$pci"
  fi
else
  notok "DESTDIR install: mmalloc.pc installed"
fi
if $MAKE -C "$repo" uninstall DESTDIR="$dest" PREFIX="$vprefix" libdir="$vlib" includedir="$vinc" \
     >"$tmp/uninstall2.log" 2>&1; then
  ok "make uninstall with the same DESTDIR, PREFIX, libdir, includedir succeeds"
else
  notok "make uninstall with the same DESTDIR, PREFIX, libdir, includedir succeeds"
  showlog "$tmp/uninstall2.log"
fi
left=$(cd "$dest" 2>/dev/null && find . \( -type f -o -type l \) ! -path '*/share/info/dir' \
  | sed 's|^\./|/|' | tr '\n' ' ')
if [ -z "$left" ]; then
  ok "DESTDIR uninstall left no installed file behind"
else
  notok "DESTDIR uninstall left files behind: $left"
fi

echo "conformance-suite: $pass passed, $fail failed"
[ $fail -eq 0 ]
