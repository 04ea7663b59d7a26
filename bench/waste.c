/* waste.c -- internal waste of the size classes.

   usage: waste ALLOC

   For every request size 1..16384, and for 2000 larger sizes drawn
   log-uniformly from 16 KiB..1 MiB, allocate one block, read its usable
   size (mmalloc_usable_size, or the process malloc's malloc_usable_size)
   and compute the waste (usable - size) / usable.  Prints waste_pct_small
   (the mean over 1..16384, every size weighted alike), waste_pct_large
   (the mean over the larger sample) and waste_pct_churn (the mean weighted
   by the churn workload's size distribution: 1,000,000 draws of
   bench_churn_size).  Checks that no usable size is below the request.  */

#include "common.h"

#include <malloc.h>

#define SMALL_MAX 16384
#define CHURN_MAX 32768
#define NLARGE 2000

static size_t
usable (void *p)
{
  return bench_use_mm ? mmalloc_usable_size (bench_md, p) : malloc_usable_size (p);
}

static double
waste_of (size_t size)
{
  void *p = bench_alloc (size);
  size_t u = usable (p);
  if (u < size)
    bench_fail ("waste: usable size below the request");
  memset (p, 1, size);
  bench_free (p);
  return (double) (u - size) / (double) u;
}

int
main (int argc, char **argv)
{
  if (argc < 2)
    {
      fprintf (stderr, "usage: waste ALLOC\n");
      return 2;
    }
  bench_select (argv[1]);
  bench_attach ();

  double *w = bench_map ((CHURN_MAX + 1) * sizeof *w);
  double sum = 0;
  for (size_t s = 1; s <= CHURN_MAX; s++)
    {
      w[s] = waste_of (s);
      if (s <= SMALL_MAX)
	sum += w[s];
    }
  printf ("R waste_pct_small %.3f\n", 100.0 * sum / SMALL_MAX);

  uint64_t r = 0x3a57e;
  sum = 0;
  for (int i = 0; i < NLARGE; i++)
    {
      double u = (double) (bench_rand (&r) >> 11) / 9007199254740992.0;
      size_t s = (size_t) exp2 (14.0 + 6.0 * u) + 1;
      sum += waste_of (s);
    }
  printf ("R waste_pct_large %.3f\n", 100.0 * sum / NLARGE);

  r = 0x5eed0000u;
  sum = 0;
  for (int i = 0; i < 1000000; i++)
    sum += w[bench_churn_size (bench_rand (&r))];
  printf ("R waste_pct_churn %.3f\n", 100.0 * sum / 1000000);
  return 0;
}
