/* common.h -- shared by the benchmark programs of mmalloc (bench/).

   Every program takes the allocator to use as its first argument:

     mmalloc    mmalloc (md, n) / mfree (md, p) on one anonymous heap
                (mmalloc_attach (-1, NULL)), shared by all threads;
     glibc, jemalloc, mimalloc, tcmalloc
                the process malloc/free.  run.sh selects the peer with
                LD_PRELOAD; the program checks that the malloc it got is the
                one it was told (bench_detect), so a preload that did not
                take cannot pass for a result.

   Results are printed as lines "R <metric> <value>" on stdout; run.sh
   collects them.  A wrong result (a block whose contents changed, a
   failed allocation) prints a message and exits 1.

   Bookkeeping memory (operation sequences, slot arrays) comes from mmap,
   never from the allocator under test, so that it neither costs nor helps
   any contender and stays out of their peak RSS.  */

#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H 1

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <mmalloc.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BENCH_NORETURN __attribute__ ((noreturn))
#define BENCH_UNUSED __attribute__ ((unused))

static BENCH_NORETURN BENCH_UNUSED void
bench_fail (const char *what)
{
  fprintf (stderr, "bench: FAILED: %s\n", what);
  fflush (stderr);
  exit (1);
}

/* Monotonic time in nanoseconds.  */
static inline uint64_t
bench_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* splitmix64: a small, fast, good enough generator with a 64-bit state.  */
static inline uint64_t
bench_rand (uint64_t *s)
{
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* A stateless hash of X (the same mixer), for values derived from an index.  */
static inline uint64_t
bench_hash (uint64_t x)
{
  uint64_t s = x * 0xd1342543de82ef95ULL + 1;
  return bench_rand (&s);
}

/* The churn size distribution: 90% uniform in 8..256 bytes, 10% a tail
   log-uniform in 256..32768 bytes.  R is a 64-bit random number.  */
static inline uint32_t
bench_churn_size (uint64_t r)
{
  uint32_t lo = (uint32_t) r;
  uint32_t hi = (uint32_t) (r >> 32);
  if (lo % 10 != 0)
    return 8 + hi % 249;
  /* log-uniform: 2^(8 + 7u), u uniform in [0, 1) */
  double u = (double) hi / 4294967296.0;
  uint32_t s = (uint32_t) exp2 (8.0 + 7.0 * u);
  return s < 256 ? 256 : (s > 32768 ? 32768 : s);
}

/* Bookkeeping memory straight from the kernel, zeroed and touched.  */
static BENCH_UNUSED void *
bench_map (size_t n)
{
  if (n == 0)
    n = 1;
  void *p = mmap (NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		  -1, 0);
  if (p == MAP_FAILED)
    bench_fail ("mmap of bookkeeping memory");
  memset (p, 0, n);
  return p;
}

/* Which process malloc is in use: the peers export symbols of their own.  */
static BENCH_UNUSED const char *
bench_detect (void)
{
  if (dlsym (RTLD_DEFAULT, "mallctl"))
    return "jemalloc";
  if (dlsym (RTLD_DEFAULT, "mi_malloc"))
    return "mimalloc";
  if (dlsym (RTLD_DEFAULT, "tc_malloc"))
    return "tcmalloc";
  return "glibc";
}

/* --- the allocator under test --------------------------------------------- */

static int bench_use_mm;	/* 1: mmalloc direct API; 0: process malloc */
static void *bench_md;		/* the shared anonymous heap */

/* Parse the allocator name ARG and check it is the one we really have.
   Does not attach the heap: bench_attach does, when the program wants.  */
static BENCH_UNUSED void
bench_select (const char *arg)
{
  const char *have = bench_detect ();
  if (strcmp (arg, "mmalloc") == 0)
    bench_use_mm = 1;
  else if (strcmp (arg, "dropin") == 0)
    {				/* mmalloc's process malloc, preloaded */
      Dl_info info;
      if (!dladdr ((void *) malloc, &info) || !info.dli_fname
	  || !strstr (info.dli_fname, "libmmalloc-malloc"))
	{
	  fprintf (stderr, "bench: asked for dropin but malloc is not "
		   "libmmalloc-malloc's (LD_PRELOAD did not take?)\n");
	  exit (1);
	}
    }
  else if (strcmp (arg, have) != 0)
    {
      fprintf (stderr, "bench: asked for %s but the process malloc is %s "
	       "(LD_PRELOAD did not take?)\n", arg, have);
      exit (1);
    }
}

static BENCH_UNUSED void
bench_attach (void)
{
  if (bench_use_mm)
    {
      bench_md = mmalloc_attach (-1, NULL);
      if (!bench_md)
	bench_fail ("mmalloc_attach (-1, NULL)");
    }
}

static inline void *
bench_alloc (size_t n)
{
  void *p = bench_use_mm ? mmalloc (bench_md, n) : malloc (n);
  if (__builtin_expect (p == NULL, 0))
    bench_fail ("allocation returned NULL");
  return p;
}

static inline void
bench_free (void *p)
{
  if (bench_use_mm)
    mfree (bench_md, p);
  else
    free (p);
}

/* Mark a block with TAG: its first 8 bytes and its last byte.  */
static inline void
bench_mark (void *p, uint32_t size, uint64_t tag)
{
  unsigned char *c = (unsigned char *) p;
  if (size > 8)
    memcpy (c, &tag, 8);
  c[size - 1] = (unsigned char) (tag ^ size);
}

static inline int
bench_marked (const void *p, uint32_t size, uint64_t tag)
{
  const unsigned char *c = (const unsigned char *) p;
  if (size > 8 && memcmp (c, &tag, 8) != 0)
    return 0;
  return c[size - 1] == (unsigned char) (tag ^ size);
}

/* A figure from /proc/self/status ("VmRSS:", "VmHWM:") in KiB, or -1.  */
static BENCH_UNUSED long
bench_status_kb (const char *field)
{
  FILE *f = fopen ("/proc/self/status", "r");
  if (!f)
    return -1;
  char line[256];
  long v = -1;
  size_t n = strlen (field);
  while (fgets (line, sizeof line, f))
    if (strncmp (line, field, n) == 0)
      {
	v = strtol (line + n, NULL, 10);
	break;
      }
  fclose (f);
  return v;
}

static BENCH_UNUSED long
bench_arg (int argc, char **argv, int i, long dflt)
{
  if (i < argc)
    {
      char *end;
      long v = strtol (argv[i], &end, 10);
      if (*end || v < 0)
	{
	  fprintf (stderr, "bench: bad number %s\n", argv[i]);
	  exit (2);
	}
      return v;
    }
  return dflt;
}

#ifdef __cplusplus
}
#endif

#endif /* BENCH_COMMON_H */
