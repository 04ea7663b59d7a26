# leftover.sh -- sourced by the test runners (run-tests.sh, run-one.sh,
# malloc/run.sh): every test program runs with its own private TMPDIR under
# the build tree, and whatever it leaves there, or adds to its working
# directory, is reported, counted as a failure and removed.  A program that
# crashed or was killed before its own clean-up ran loses nothing but its
# files, and no run can touch another run's files (runs in the same
# directory at the same time each have their own root, mmrun.*, which the
# others leave alone).  Programs of one run may run at once if each has its
# own working directory (run-tests.sh gives each an empty one).
#
#   lo_init DIR          make the run's root of private directories under DIR
#                        (removed when the runner exits, however it exits)
#   lo_attach ROOT       in a process the runner started: use its root
#   lo_begin NAME WORK   before a program: make $lo_tmp (to pass as TMPDIR),
#                        list the working directory WORK
#   lo_end               after it: print what it left behind (lines that
#                        start with NAME), remove it; status 1 if it left
#                        anything

lo_init() {
  mkdir -p "$1" || exit 2
  lo_root=$(mktemp -d "$(cd "$1" && pwd)/mmrun.XXXXXX") || exit 2
  # shellcheck disable=SC2064
  trap "rm -rf '$lo_root'" EXIT
  trap 'exit 2' INT TERM HUP
}

lo_attach() {
  lo_root=$1
  [ -d "$lo_root" ] || exit 2
}

lo_begin() {
  lo_name=$1
  lo_work=$2
  lo_tmp=$lo_root/$(basename "$1")
  rm -rf "$lo_tmp"
  mkdir "$lo_tmp" || exit 2
  ls -A "$lo_work" | sort > "$lo_tmp.before"
}

lo_end() {
  lo_status=0
  # A file system the program mounted there and left mounted (it crashed,
  # or failed before it unmounted it) is detached first: else nothing
  # under it could be removed.
  awk -v t="$lo_tmp/" 'index($2, t) == 1 { print $2 }' /proc/mounts 2>/dev/null |
    sort -r | while read -r m; do
      echo "$lo_name: left a file system mounted at $m"
      umount -l "$m" 2>/dev/null
    done
  ls -A "$lo_work" | sort > "$lo_tmp.after"
  # (another run's root may appear meanwhile: it is not this program's)
  lo_new=$(comm -13 "$lo_tmp.before" "$lo_tmp.after" | grep -v '^mmrun\.')
  lo_left=$(ls -A "$lo_tmp")
  if [ -n "$lo_left" ]; then
    echo "$lo_name: left behind in its TMPDIR:" $lo_left
    lo_status=1
  fi
  if [ -n "$lo_new" ]; then
    echo "$lo_name: left behind in $lo_work:" $lo_new
    for f in $lo_new; do rm -rf "${lo_work:?}/$f"; done
    lo_status=1
  fi
  rm -rf "$lo_tmp" "$lo_tmp.before" "$lo_tmp.after"
  return $lo_status
}
