/* reattach.c -- the time to re-attach a heap file, by the heap's size.

   usage: reattach build FILE MIB
          reattach time ITERS FILE...

   build makes FILE a heap of at least MIB MiB: min (10000, 1000 * MIB)
   small blocks (16..1024 bytes, filled) and then 1 MiB blocks (not written: the file's blocks are
   reserved by mmalloc's fallocate, the data pages stay unwritten) until
   mmstats says the heap spans MIB MiB; root key 0 holds a record naming
   the small blocks.  It checks the heap (mmalloc_check) before detaching.

   time opens each FILE and, ITERS times, in turn over the files, times
   mmalloc_attach + mmalloc_getkey (0) + mmalloc_detach, checking the record
   and one of its blocks each time (outside the timed part).  It prints, for
   each file in order, "R attach_us_<k> <median microseconds>", k = 0, 1...  */

#include "common.h"

#include <fcntl.h>
#include <unistd.h>

#define NSMALL 10000
#define REC_MAGIC 0x7265617474616368ULL

struct rec
{
  uint64_t magic;
  uint64_t mib;
  uint64_t nsmall;
  unsigned char *small[NSMALL];
  uint32_t size[NSMALL];
};

static int
cmp_u64 (const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
  return x < y ? -1 : x > y;
}

static int
build (const char *path, long mib)
{
  unlink (path);
  int fd = open (path, O_RDWR | O_CREAT, 0644);
  if (fd < 0)
    bench_fail ("open");
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  if (!md)
    {
      perror ("mmalloc_attach");
      bench_fail ("mmalloc_attach of a new heap file");
    }
  struct rec *r = mmalloc (md, sizeof *r);
  if (!r)
    bench_fail ("mmalloc");
  r->magic = REC_MAGIC;
  r->mib = (uint64_t) mib;
  r->nsmall = mib >= NSMALL / 1000 ? NSMALL : (uint64_t) mib * 1000;
  uint64_t s = 0xa77ac4u;
  for (int i = 0; i < (int) r->nsmall; i++)
    {
      uint32_t size = 16 + (uint32_t) (bench_rand (&s) % 1009);
      r->small[i] = mmalloc (md, size);
      if (!r->small[i])
	bench_fail ("mmalloc");
      memset (r->small[i], (unsigned char) i, size);
      r->size[i] = size;
    }
  uint64_t want = (uint64_t) mib << 20;
  while (mmstats (md).bytes_total < want)
    if (!mmalloc (md, (size_t) 1 << 20))
      {
	perror ("mmalloc");
	bench_fail ("mmalloc of a 1 MiB block");
      }
  if (!mmalloc_setkey (md, 0, r))
    bench_fail ("mmalloc_setkey");
  if (mmalloc_check (md) != 0)
    bench_fail ("mmalloc_check of the built heap");
  if (mmalloc_detach (md))
    bench_fail ("mmalloc_detach");
  return 0;
}

static int
timeit (long iters, int nfiles, char **paths)
{
  int *fds = bench_map (nfiles * sizeof *fds);
  uint64_t *us = bench_map ((size_t) nfiles * iters * sizeof *us);
  for (int f = 0; f < nfiles; f++)
    if ((fds[f] = open (paths[f], O_RDWR)) < 0)
      bench_fail ("open of a heap file");
  uint64_t s = 0x71e5u;
  for (long k = 0; k < iters; k++)
    for (int f = 0; f < nfiles; f++)
      {
	uint64_t t0 = bench_now ();
	void *md = mmalloc_attach (fds[f], NULL);
	struct rec *r = md ? mmalloc_getkey (md, 0) : NULL;
	uint64_t t1 = bench_now ();
	if (!md)
	  {
	    perror ("mmalloc_attach");
	    bench_fail ("re-attach");
	  }
	if (!r || r->magic != REC_MAGIC || r->nsmall < 1 || r->nsmall > NSMALL)
	  bench_fail ("reattach: key 0 record lost");
	int i = (int) (bench_rand (&s) % r->nsmall);
	for (uint32_t b = 0; b < r->size[i]; b++)
	  if (r->small[i][b] != (unsigned char) i)
	    bench_fail ("reattach: a block's contents changed");
	uint64_t t2 = bench_now ();
	if (mmalloc_detach (md))
	  bench_fail ("mmalloc_detach");
	uint64_t t3 = bench_now ();
	us[(size_t) f * iters + k] = (t1 - t0) + (t3 - t2);
      }
  for (int f = 0; f < nfiles; f++)
    {
      uint64_t *v = us + (size_t) f * iters;
      qsort (v, (size_t) iters, sizeof *v, cmp_u64);
      printf ("R attach_us_%d %.1f\n", f, (double) v[iters / 2] / 1000.0);
      close (fds[f]);
    }
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc >= 4 && strcmp (argv[1], "build") == 0)
    return build (argv[2], bench_arg (argc, argv, 3, 1));
  if (argc >= 4 && strcmp (argv[1], "time") == 0)
    {
      long iters = bench_arg (argc, argv, 2, 100);
      if (iters < 1)
	bench_fail ("bad ITERS");
      return timeit (iters, argc - 3, argv + 3);
    }
  fprintf (stderr, "usage: reattach build FILE MIB | reattach time ITERS FILE...\n");
  return 2;
}
