/* heapfile_mm.c -- the heap-file workload (heapfile.h) on mmalloc: a heap
   file made by mmalloc_attach on an empty file, the index in root key 0,
   objects from mmalloc/mfree, mmalloc_detach and mmalloc_attach again.  */

#include "heapfile.h"

#include <fcntl.h>

static void *
attach (const char *path)
{
  int fd = open (path, O_RDWR | O_CREAT, 0644);
  if (fd < 0)
    bench_fail ("open of the heap file");
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  if (!md)
    {
      perror ("mmalloc_attach");
      bench_fail ("mmalloc_attach of the heap file");
    }
  return md;
}

int
main (int argc, char **argv)
{
  char path[4096];
  uint32_t n;
  hf_args (argc, argv, "mm", path, sizeof path, &n);
  struct hf_plan pl;
  hf_plan_make (&pl, n);

  uint64_t t0 = bench_now ();
  void *md = attach (path);
  void **idx = mcalloc (md, n, sizeof *idx);
  if (!idx || !mmalloc_setkey (md, 0, idx))
    bench_fail ("index");
  for (uint32_t i = 0; i < n; i++)
    {
      void *p = mmalloc (md, hf_size (i, 0));
      if (!p)
	bench_fail ("mmalloc");
      hf_fill (p, i, 0);
      idx[i] = p;
    }
  for (uint32_t k = 0; k < n / 2; k++)
    {
      uint32_t i = pl.perm[k];
      mfree (md, idx[i]);
      idx[i] = NULL;
    }
  for (uint32_t k = 0; k < n / 2; k++)
    {
      uint32_t i = pl.perm[k];
      void *p = mmalloc (md, hf_size (i, 1));
      if (!p)
	bench_fail ("mmalloc");
      hf_fill (p, i, 1);
      idx[i] = p;
    }
  if (mmalloc_detach (md))
    bench_fail ("mmalloc_detach");
  md = attach (path);
  idx = mmalloc_getkey (md, 0);
  if (!idx)
    bench_fail ("key 0 lost");
  uint64_t t1 = bench_now ();

  for (uint32_t i = 0; i < n; i++)
    if (!idx[i] || !hf_check (idx[i], i, pl.gen[i]))
      bench_fail ("heapfile: an object's contents changed");
  struct mstats st = mmstats (md);
  if (st.chunks_used != (size_t) n + 1)
    bench_fail ("heapfile: mmstats counts the wrong number of blocks");
  if (mmalloc_check (md) != 0)
    bench_fail ("heapfile: mmalloc_check found problems");
  if (mmalloc_detach (md))
    bench_fail ("mmalloc_detach");
  hf_report (path, &pl, t0, t1);
  unlink (path);
  return 0;
}
