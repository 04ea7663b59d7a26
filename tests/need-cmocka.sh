#!/bin/sh
# Make sure cmocka can be compiled against; install it when we are root with
# apt-get, else say exactly what to run.
probe() {
  printf '#include <stdarg.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <setjmp.h>\n#include <cmocka.h>\nint main(void){return 0;}\n' |
    ${CC:-cc} -x c - -lcmocka -o /dev/null >/dev/null 2>&1
}
probe && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "cmocka is missing: installing libcmocka-dev with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq libcmocka-dev >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq libcmocka-dev >/dev/null 2>&1; }
  probe && exit 0
fi
echo "cmocka is missing. Install it with:"
echo "    sudo apt-get install libcmocka-dev"
exit 1
