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
   mmalloc_trim (md, 0)).  All relative to VmRSS before the first call.

   grow: COUNT times, grow a block by realloc from 4 KiB to MIB MiB, each
   step to 1.125 times the size before (rounded up to 16 bytes), writing one
   byte in each page of the new part and checking the marks written before;
   then free it.  Prints time_ms.

   step: the same in steps of 4 KiB.

   small: N x M times, a block of 16 bytes reallocated to 32, 64, ... 4096
   bytes (its first bytes checked each time), then freed.  Prints time_ms.

   moves: grow a block by realloc x1.125 from 4 KiB to MIB MiB once (COUNT
   1: in a heap file in $TMPDIR, mmalloc only).  Prints moves (the block's
   address changed), moved_mib (the sizes of the blocks that moved) and,
   for mmalloc, copied_mib (what was copied; the rest moved its pages by
   mremap) and remaps.  */

#include "common.h"

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#define PAGE 4096

static void *
bench_calloc (size_t n)
{
  void *p = bench_use_mm ? mcalloc (bench_md, 1, n) : calloc (1, n);
  if (!p)
    bench_fail ("calloc returned NULL");
  return p;
}

static void *
bench_realloc (void *p, size_t n)
{
  void *q = bench_use_mm ? mrealloc (bench_md, p, n) : realloc (p, n);
  if (!q)
    bench_fail ("realloc returned NULL");
  return q;
}

/* The counts of the heap's moves of large blocks (mrealloc.c): an
   internal figure of the static library, for this benchmark; weak, so
   that the program builds with a library that lacks it.  */
extern void mm_move_counts (void *md, uint64_t out[3]) __attribute__ ((weak));

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

/* Grow a block by realloc from 4 KiB to MAX bytes, each size the one before
   times NUM/8 (9/8: x1.125) or plus STEP bytes.  Each new page gets a mark
   (its index), and every mark is checked at the end.  Counts the moves and
   the bytes of the blocks that moved.  */
static void
grow_once (size_t max, unsigned num, size_t step, long *moves, double *moved)
{
  size_t size = PAGE;
  char *p = bench_alloc (size);
  p[0] = 0;
  while (size < max)
    {
      size_t n = step ? size + step : ((size * num / 8 + 15) & ~(size_t) 15);
      if (n > max)
	n = max;
      char *q = bench_realloc (p, n);
      if (q != p)
	{
	  ++*moves;
	  *moved += (double) size;
	}
      for (size_t o = (size + PAGE - 1) / PAGE * PAGE; o < n; o += PAGE)
	q[o] = (char) (o / PAGE);
      p = q;
      size = n;
    }
  for (size_t o = 0; o < size; o += PAGE)
    if (p[o] != (char) (o / PAGE))
      bench_fail ("realloc lost the contents of a block");
  bench_free (p);
}

static void
grow (size_t max, unsigned num, size_t step, long count)
{
  long moves = 0;
  double moved = 0;
  uint64_t t0 = bench_now ();
  for (long i = 0; i < count; i++)
    grow_once (max, num, step, &moves, &moved);
  printf ("R time_ms %.3f\n", (double) (bench_now () - t0) / 1e6);
}

static void
small (long count)
{
  uint64_t t0 = bench_now ();
  for (long i = 0; i < count; i++)
    {
      char *p = bench_alloc (16);
      memset (p, (int) (i & 0x7f), 16);
      for (size_t n = 32; n <= 4096; n *= 2)
	{
	  p = bench_realloc (p, n);
	  if (p[0] != (char) (i & 0x7f) || p[15] != (char) (i & 0x7f))
	    bench_fail ("realloc lost the contents of a block");
	}
      bench_free (p);
    }
  printf ("R time_ms %.3f\n", (double) (bench_now () - t0) / 1e6);
}

static void
moves (size_t max, long file)
{
  char path[4096] = "";
  int fd = -1;
  if (file)
    {
      const char *dir = getenv ("TMPDIR");
      if (!bench_use_mm)
	bench_fail ("moves in a heap file: mmalloc only");
      snprintf (path, sizeof path, "%s/bench-moves.%ld", dir ? dir : "/tmp", (long) getpid ());
      fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0600);
      if (fd < 0 || mmalloc_detach (bench_md) || !(bench_md = mmalloc_attach (fd, NULL)))
	bench_fail ("a heap file for the moves");
    }
  long n = 0;
  double moved = 0;
  grow_once (max, 9, 0, &n, &moved);
  printf ("R moves %ld\nR moved_mib %.1f\n", n, moved / 1048576);
  if (bench_use_mm && mm_move_counts)
    {
      uint64_t c[3];
      mm_move_counts (bench_md, c);
      printf ("R copied_mib %.1f\nR remaps %llu\n", (double) c[1] / 1048576,
	      (unsigned long long) c[2]);
    }
  if (file)
    {
      mmalloc_detach (bench_md);
      close (fd);
      unlink (path);
    }
}

int
main (int argc, char **argv)
{
  if (argc < 5)
    {
      fprintf (stderr, "usage: bigblocks ALLOC loop|calloc|rss|grow|step|small|moves N M\n");
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
  else if (!strcmp (argv[2], "grow"))
    grow ((size_t) a << 20, 9, 0, b);
  else if (!strcmp (argv[2], "step"))
    grow ((size_t) a << 20, 0, 4096, b);
  else if (!strcmp (argv[2], "small"))
    small (a * b);
  else if (!strcmp (argv[2], "moves"))
    moves ((size_t) a << 20, b);
  else
    {
      fprintf (stderr, "bigblocks: unknown workload %s\n", argv[2]);
      return 2;
    }
  return 0;
}
