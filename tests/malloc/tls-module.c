/* tls-module.c -- a module for test-dlopen: its thread-local storage is
   dynamic (it is loaded with dlopen), so ld.so allocates a block of it for
   each thread that touches it, with the process's malloc.  */
#include <stddef.h>
#include <string.h>

static __thread unsigned char big[65536] __attribute__ ((aligned (64)));
static __thread long counter;

int tls_touch (int seed);
const char *tls_name (void);

int
tls_touch (int seed)
{
  if (((size_t) big) % 64)
    return -1;
  memset (big, seed & 0xff, sizeof big);
  counter += seed;
  int sum = 0;
  for (size_t i = 0; i < sizeof big; i += 4096)
    sum += big[i];
  return counter >= seed ? sum : -2;
}

const char *
tls_name (void)
{
  return "tls-module";
}
