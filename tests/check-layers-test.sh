#!/bin/sh
# The layer check fails where it must: an upward call, a cycle, a file in no
# layer (on small objects made here), and an upward call injected into the
# real table of src/README (on the library's objects in OBJDIR); it passes a
# graph that keeps its table.  usage: check-layers-test.sh OBJDIR
set -u
obj=$1
tool=tools/check-layers.py
CC=${CC:-cc}
t=$(mktemp -d "${TMPDIR:-/tmp}/check-layers.XXXXXX") || exit 1
trap 'rm -rf "$t"' EXIT INT TERM
fails=0

mk () {				# mk NAME CODE: compile NAME.c into $t/obj
  mkdir -p "$t/obj"
  printf '%s\n' "$2" > "$t/$1.c"
  $CC -c -o "$t/obj/$1.o" "$t/$1.c" || exit 1
}

table () {			# table FILE ROW...: a README holding the table
  f=$1
  shift
  { echo "Some text."; echo; echo "  layer  name  files"; printf '  %s\n' "$@"; echo; } > "$f"
}

expect () {			# expect STATUS PATTERN README OBJDIR [SRCDIR]: run the check
  out=$(python3 "$tool" "$3" "$4" ${5:+"$5"} 2>&1)
  st=$?
  if [ "$st" != "$1" ] || ! printf '%s\n' "$out" | grep -q -- "$2"; then
    echo "FAIL: expected status $1 and '$2' from $3, got $st:"
    printf '%s\n' "$out"
    fails=$((fails + 1))
  else
    echo "ok: $2"
  fi
}

mk low 'int low (void) { return 1; }'
mk high 'int low (void); int high (void) { return low (); }'
table "$t/good" '1 base low.c' '2 top high.c'
expect 0 'no cycle, no upward call' "$t/good" "$t/obj"
table "$t/upward" '1 base high.c' '2 top low.c'
expect 1 'upward call: high.c (layer 1 base) -> low.c (layer 2 top): low' "$t/upward" "$t/obj"
table "$t/missing" '1 base low.c'
expect 1 'high.c: in no layer' "$t/missing" "$t/obj"
expect 1 'no object of a file of' "$t/good" "$t/obj" src
mk ping 'int pong (void); int ping (void) { return pong (); }'
mk pong 'int ping (void); int pong (void) { return ping (); }'
table "$t/cycle" '1 base low.c ping.c pong.c' '2 top high.c'
expect 1 'cycle among ping.c pong.c' "$t/cycle" "$t/obj"

# The real table and objects pass; with the OS layer moved to the top,
# every call into it is upward.
expect 0 'no cycle, no upward call' src/README "$obj"
awk '/^ *[0-9]+ +[a-z]+ +mmap-sup\.c *$/ { sub(/[0-9]+/, "99") } { print }' src/README > "$t/README"
expect 1 'upward call: pages.c (layer 4 pages) -> mmap-sup.c (layer 99 os)' "$t/README" "$obj" src

[ "$fails" = 0 ] && echo "check-layers self-test: all passed"
exit "$fails"
