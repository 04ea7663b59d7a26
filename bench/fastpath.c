/* fastpath.c -- a tight loop of malloc+free pairs of 64 bytes, to count
   instructions per pair under valgrind --tool=callgrind.

   usage: fastpath ALLOC N

   1000 warm-up pairs, then N pairs.  run.sh runs it with N and with 0 and
   divides the difference of the instruction counts by N, so that start-up,
   attach and the warm-up cancel out.  The loops call the allocator
   directly (no bench_alloc wrapper), so a pair counts the allocator's
   instructions plus the loop's own three or four.  The pointer goes through
   an empty asm so that the compiler cannot drop the pair.  */

#include "common.h"

static __attribute__ ((noinline)) void
loop_mm (void *md, long n)
{
  for (long i = 0; i < n; i++)
    {
      void *p = mmalloc (md, 64);
      __asm__ volatile ("" : : "r" (p) : "memory");
      mfree (md, p);
    }
}

static __attribute__ ((noinline)) void
loop_malloc (long n)
{
  for (long i = 0; i < n; i++)
    {
      void *p = malloc (64);
      __asm__ volatile ("" : : "r" (p) : "memory");
      free (p);
    }
}

static void
pairs (long n)
{
  if (bench_use_mm)
    loop_mm (bench_md, n);
  else
    loop_malloc (n);
}

int
main (int argc, char **argv)
{
  if (argc < 3)
    {
      fprintf (stderr, "usage: fastpath ALLOC N\n");
      return 2;
    }
  bench_select (argv[1]);
  long n = bench_arg (argc, argv, 2, 1000000);
  bench_attach ();
  void *p = bench_alloc (64);	/* one check that allocation works */
  bench_free (p);
  pairs (1000);
  pairs (n);
  printf ("R pairs %ld\n", n);
  return 0;
}
