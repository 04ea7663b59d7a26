/* heapfile_pmdk.c -- the heap-file workload (heapfile.h) on PMDK's
   libpmemobj: a pool made by pmemobj_create, the index an array of PMEMoid
   in the root object, objects from pmemobj_alloc (which stores the new oid
   into the index entry atomically) and pmemobj_free (which sets it to
   OID_NULL); pmemobj_close, then pmemobj_open again.

   A pool has a fixed size given at creation: it is made large enough for
   the workload.  The index costs 16 bytes per object here (a PMEMoid),
   counted against PMDK since the live bytes count 8.  run.sh sets
   PMEM_IS_PMEM_FORCE=1 and PMEM_NO_FLUSH=1 so that PMDK makes no msync
   calls and no cache flushes: no more durability work than mmalloc and
   Boost do, i.e. PMDK's fastest setting.  */

#include "heapfile.h"

#include <libpmemobj.h>

#define LAYOUT "mmalloc-bench"

struct root
{
  uint64_t n;
  PMEMoid idx[];
};

int
main (int argc, char **argv)
{
  char path[4096];
  uint32_t n;
  hf_args (argc, argv, "pmdk", path, sizeof path, &n);
  struct hf_plan pl;
  hf_plan_make (&pl, n);
  size_t psize = (size_t) n * 1280 + ((size_t) 64 << 20);
  if (psize < PMEMOBJ_MIN_POOL)
    psize = PMEMOBJ_MIN_POOL;
  size_t rsize = sizeof (struct root) + (size_t) n * sizeof (PMEMoid);

  uint64_t t0 = bench_now ();
  PMEMobjpool *pop = pmemobj_create (path, LAYOUT, psize, 0644);
  if (!pop)
    {
      fprintf (stderr, "pmemobj_create: %s\n", pmemobj_errormsg ());
      bench_fail ("pmemobj_create");
    }
  PMEMoid roid = pmemobj_root (pop, rsize);
  struct root *r = pmemobj_direct (roid);
  if (!r)
    bench_fail ("pmemobj_root");
  r->n = n;
  pmemobj_persist (pop, &r->n, sizeof r->n);
  for (uint32_t i = 0; i < n; i++)
    {
      if (pmemobj_alloc (pop, &r->idx[i], hf_size (i, 0), 1, NULL, NULL))
	bench_fail ("pmemobj_alloc");
      hf_fill (pmemobj_direct (r->idx[i]), i, 0);
    }
  for (uint32_t k = 0; k < n / 2; k++)
    pmemobj_free (&r->idx[pl.perm[k]]);
  for (uint32_t k = 0; k < n / 2; k++)
    {
      uint32_t i = pl.perm[k];
      if (pmemobj_alloc (pop, &r->idx[i], hf_size (i, 1), 1, NULL, NULL))
	bench_fail ("pmemobj_alloc");
      hf_fill (pmemobj_direct (r->idx[i]), i, 1);
    }
  pmemobj_close (pop);
  pop = pmemobj_open (path, LAYOUT);
  if (!pop)
    {
      fprintf (stderr, "pmemobj_open: %s\n", pmemobj_errormsg ());
      bench_fail ("pmemobj_open");
    }
  r = pmemobj_direct (pmemobj_root (pop, rsize));
  if (!r || r->n != n)
    bench_fail ("root lost");
  uint64_t t1 = bench_now ();

  for (uint32_t i = 0; i < n; i++)
    {
      void *p = pmemobj_direct (r->idx[i]);
      if (!p || !hf_check (p, i, pl.gen[i]))
	bench_fail ("heapfile: an object's contents changed");
    }
  pmemobj_close (pop);
  if (pmemobj_check (path, LAYOUT) != 1)
    bench_fail ("heapfile: pmemobj_check found the pool inconsistent");
  hf_report (path, &pl, t0, t1);
  unlink (path);
  return 0;
}
