/* compat.c -- <mmalloc-compat.h> routes malloc, calloc, realloc, free, valloc
   and memalign written in this file to mmalloc's default heap (the NULL
   descriptor).  Checked through mmstats (NULL) and mmalloc_usable_size (NULL, p).
   Output: "ok N - ..." / "not ok N - ..." lines, then
   "compat: N passed, M failed"; exit status 0 only when M is 0.  */

#define _GNU_SOURCE 1

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <mmalloc-compat.h>

static int n_run, n_pass, n_fail;

static int
check (int cond, const char *fmt, ...)
{
  va_list ap;
  n_run++;
  if (cond)
    n_pass++;
  else
    n_fail++;
  printf ("%s %d - ", cond ? "ok" : "not ok", n_run);
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  putchar ('\n');
  fflush (stdout);
  return cond;
}

static int
aligned (const void *p, size_t a)
{
  return ((uintptr_t) p & (a - 1)) == 0;
}

static size_t
used (void)
{
  return mmstats (NULL).chunks_used;
}

int
main (void)
{
  size_t page = (size_t) sysconf (_SC_PAGESIZE);
  size_t c0, b0;
  void *brk0, *brk1;
  char *m, *z, *r;
  unsigned char *c;
  void *v, *a;
  int ok;

#if defined(malloc) && defined(realloc) && defined(calloc) && defined(free) && defined(valloc) \
    && defined(memalign)
  check (1, "mmalloc-compat.h defines malloc, realloc, calloc, free, valloc and memalign as macros");
#else
  check (0, "mmalloc-compat.h defines malloc, realloc, calloc, free, valloc and memalign as macros");
#endif

  /* Make sure stdio has its buffers before we watch the program break.  */
  printf ("# compat test: page size %zu\n", page);
  fflush (stdout);
  brk0 = sbrk (0);

  {
    /* Create the default heap so that the baseline counts are stable.  */
    void *warm = malloc (8);
    free (warm);
  }
  c0 = used ();
  b0 = mmstats (NULL).bytes_used;

  m = malloc (100);
  check (m != NULL, "malloc(100) returns a block");
  check (used () == c0 + 1, "malloc: mmstats(NULL).chunks_used rose by 1 (%zu -> %zu)", c0, used ());
  check (m && mmalloc_usable_size (NULL, m) >= 100, "malloc: mmalloc_usable_size(NULL, p) >= 100");
  check (aligned (m, _Alignof (max_align_t)), "malloc: the block is aligned to max_align_t");
  if (m)
    for (int i = 0; i < 100; i++)
      m[i] = (char) i;

  c = calloc (50, 20);
  check (c != NULL, "calloc(50, 20) returns a block");
  ok = c != NULL;
  for (int i = 0; c && i < 1000; i++)
    if (c[i] != 0)
      ok = 0;
  check (ok, "calloc: the block is zeroed");
  check (used () == c0 + 2, "calloc: chunks_used rose again (%zu)", used ());
  check (c && mmalloc_usable_size (NULL, c) >= 1000, "calloc: mmalloc_usable_size(NULL, p) >= 1000");

  r = realloc (m, 100000);
  check (r != NULL, "realloc(p, 100000) returns a block");
  ok = r != NULL;
  for (int i = 0; r && i < 100; i++)
    if (r[i] != (char) i)
      ok = 0;
  check (ok, "realloc: contents preserved");
  check (r && mmalloc_usable_size (NULL, r) >= 100000, "realloc: the new block is in the default heap");
  check (used () == c0 + 2, "realloc: chunks_used unchanged by moving a block (%zu)", used ());
  if (r)
    m = r;

  v = valloc (5000);
  check (v != NULL && aligned (v, page), "valloc(5000) returns a page-aligned block");
  check (v && mmalloc_usable_size (NULL, v) >= 5000, "valloc: mmalloc_usable_size(NULL, p) >= 5000");
  check (used () == c0 + 3, "valloc: chunks_used rose (%zu)", used ());

  a = memalign (4096, 300);
  check (a != NULL && aligned (a, 4096), "memalign(4096, 300) returns an aligned block");
  check (a && mmalloc_usable_size (NULL, a) >= 300, "memalign: mmalloc_usable_size(NULL, p) >= 300");
  check (used () == c0 + 4, "memalign: chunks_used rose (%zu)", used ());

  z = malloc (0);
  check (z != NULL && z != m, "malloc(0) returns a unique pointer");
  free (z);

  /* Volatile: the header's attributes let the compiler reject these
     arguments when it sees them as constants.  */
  volatile size_t half = (size_t) -1 / 2 + 1, three = 3;
  errno = 0;
  check (calloc (half, 2) == NULL && errno == ENOMEM, "calloc overflow returns NULL with ENOMEM");
  errno = 0;
  check (memalign (three, 10) == NULL && errno == EINVAL,
	 "memalign with a bad alignment: NULL, EINVAL");

  free (m);
  free (c);
  free (v);
  free (a);
  free (NULL);
  check (used () == c0, "free: chunks_used back to %zu (got %zu)", c0, used ());
  check (mmstats (NULL).bytes_used == b0, "free: bytes_used back to %zu (got %zu)", b0,
	 mmstats (NULL).bytes_used);
  check (mmalloc_check (NULL) == 0, "mmalloc_check(NULL) is 0");
  brk1 = sbrk (0);
  check (brk0 == brk1, "the routed calls never moved the program break (%p -> %p)", brk0, brk1);

  printf ("compat: %d passed, %d failed\n", n_pass, n_fail);
  return n_fail == 0 ? 0 : 1;
}
