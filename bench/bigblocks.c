/* bigblocks.c -- large blocks: reuse of freed pages, calloc, memory given back.

   usage: bigblocks ALLOC loop KIB ITERS
          bigblocks ALLOC calloc MIB COUNT
          bigblocks ALLOC rss MIB DECAY_MS

   loop: ITERS times, allocate a block of KIB KiB, write one byte in each of
   its pages, free it.  Prints time_ms.

   calloc: COUNT times, calloc a block of MIB MiB, read one byte in every
   1 MiB and write one in every 4 MiB of it (sparse use), free it.  Checks
   that what was read is zero.  Prints time_ms and hwm_kb (VmHWM at the end
   minus VmRSS before the first call: the peak RSS it cost).

   rss: allocate a working set of MIB MiB in 256 KiB blocks, writing every
   page, then free all of it.  Prints peak_kb (VmRSS with the set live),
   freed_kb (VmRSS just after the frees), decay_kb (after sleeping DECAY_MS
   ms, then one allocation and free of a 256 KiB block: the call on which a
   lazy allocator gives memory back), trim_kb (after malloc_trim (0), or
   mmalloc_trim (md, 0)).  All relative to VmRSS before the first call.  */

#include "common.h"

#include <malloc.h>

#define PAGE 4096

static void *
bench_calloc (size_t n)
{
  void *p = bench_use_mm ? mcalloc (bench_md, 1, n) : calloc (1, n);
  if (!p)
    bench_fail ("calloc returned NULL");
  return p;
}

static void
bench_trim (void)
{
  if (bench_use_mm)
    mmalloc_trim (bench_md, 0);
  else
    malloc_trim (0);
}

static void
sleep_ms (long ms)
{
  struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
  while (nanosleep (&t, &t))
    ;
}

static void
loop (size_t size, long iters)
{
  uint64_t t0 = bench_now ();
  for (long i = 0; i < iters; i++)
    {
      volatile char *p = bench_alloc (size);
      for (size_t o = 0; o < size; o += PAGE)
	p[o] = (char) i;
      bench_free ((void *) p);
    }
  printf ("R time_ms %.3f\n", (double) (bench_now () - t0) / 1e6);
}

static void
sparse_calloc (size_t size, long count)
{
  long rss0 = bench_status_kb ("VmRSS:");
  uint64_t t0 = bench_now ();
  for (long i = 0; i < count; i++)
    {
      volatile char *p = bench_calloc (size);
      for (size_t o = 0; o < size; o += (size_t) 1 << 20)
	if (p[o])
	  bench_fail ("calloc gave a byte that is not zero");
      for (size_t o = 0; o < size; o += (size_t) 4 << 20)
	p[o] = 1;
      bench_free ((void *) p);
    }
  printf ("R time_ms %.3f\n", (double) (bench_now () - t0) / 1e6);
  printf ("R hwm_kb %ld\n", bench_status_kb ("VmHWM:") - rss0);
}

static void
rss (size_t total, long decay_ms)
{
  size_t bs = (size_t) 256 << 10, n = total / bs;
  char **p = bench_map (n * sizeof *p);
  long rss0 = bench_status_kb ("VmRSS:");
  for (size_t i = 0; i < n; i++)
    {
      p[i] = bench_alloc (bs);
      for (size_t o = 0; o < bs; o += PAGE)
	p[i][o] = 1;
    }
  printf ("R peak_kb %ld\n", bench_status_kb ("VmRSS:") - rss0);
  for (size_t i = 0; i < n; i++)
    bench_free (p[i]);
  printf ("R freed_kb %ld\n", bench_status_kb ("VmRSS:") - rss0);
  sleep_ms (decay_ms);
  bench_free (bench_alloc (bs));
  printf ("R decay_kb %ld\n", bench_status_kb ("VmRSS:") - rss0);
  bench_trim ();
  printf ("R trim_kb %ld\n", bench_status_kb ("VmRSS:") - rss0);
}

int
main (int argc, char **argv)
{
  if (argc < 5)
    {
      fprintf (stderr, "usage: bigblocks ALLOC loop|calloc|rss N M\n");
      return 2;
    }
  bench_select (argv[1]);
  bench_attach ();
  long a = bench_arg (argc, argv, 3, 0), b = bench_arg (argc, argv, 4, 0);
  if (!strcmp (argv[2], "loop"))
    loop ((size_t) a << 10, b);
  else if (!strcmp (argv[2], "calloc"))
    sparse_calloc ((size_t) a << 20, b);
  else if (!strcmp (argv[2], "rss"))
    rss ((size_t) a << 20, b);
  else
    {
      fprintf (stderr, "bigblocks: unknown workload %s\n", argv[2]);
      return 2;
    }
  return 0;
}
