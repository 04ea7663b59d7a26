/* churn.c -- random frees and allocations over a live set of blocks.

   usage: churn ALLOC THREADS OPS [LIVE]

   LIVE slots (default 10000) are shared out among THREADS threads.  Each
   thread first fills its slots, then runs OPS operations of its own
   pre-generated sequence: an operation names a slot, frees the block there
   and allocates a new one of the next size (bench_churn_size: 90% 8..256
   bytes, 10% up to 32 KiB).  The sequences come from fixed seeds, so every
   allocator sees the same requests in the same order.  With mmalloc all
   threads share one anonymous heap.  Each new block is marked, and the
   mark is checked when the block is freed.

   Prints: time_ms (the operations of all threads, wall clock), and for the
   memory figures rss0_kb (VmRSS just before the first allocation of the
   workload), hwm_kb (VmHWM at the end) and live_kb (the peak of the bytes
   requested and not yet freed; with several threads, the sum of the
   threads' peaks).  run.sh divides hwm_kb minus the rss0_kb of the mmalloc
   run of the same round (a process without a preloaded library: so a
   peer's start-up memory counts against it) by live_kb.  */

#include "common.h"

#include <pthread.h>

struct op
{
  uint32_t slot;
  uint32_t size;
};

struct thr
{
  pthread_t tid;
  uint32_t nslots;
  long nops;
  struct op *ops;		/* nops operations */
  uint32_t *init;		/* nslots first sizes */
  void **ptr;			/* nslots blocks */
  uint32_t *size;		/* their sizes */
  uint64_t *tag;		/* their marks */
  uint64_t live_peak;
};

static pthread_barrier_t start_barrier;

static void
generate (struct thr *t, uint64_t seed)
{
  uint64_t s = seed;
  uint32_t *cur = bench_map (t->nslots * sizeof *cur);
  uint64_t live = 0;
  for (uint32_t i = 0; i < t->nslots; i++)
    {
      t->init[i] = cur[i] = bench_churn_size (bench_rand (&s));
      live += cur[i];
    }
  t->live_peak = live;
  for (long i = 0; i < t->nops; i++)
    {
      uint32_t slot = (uint32_t) (bench_rand (&s) % t->nslots);
      uint32_t size = bench_churn_size (bench_rand (&s));
      t->ops[i].slot = slot;
      t->ops[i].size = size;
      live = live - cur[slot] + size;
      cur[slot] = size;
      if (live > t->live_peak)
	t->live_peak = live;
    }
  munmap (cur, t->nslots * sizeof *cur);
}

static void
fill (struct thr *t)
{
  for (uint32_t i = 0; i < t->nslots; i++)
    {
      uint64_t tag = ((uint64_t) (uintptr_t) t << 20) ^ i;
      t->ptr[i] = bench_alloc (t->init[i]);
      t->size[i] = t->init[i];
      t->tag[i] = tag;
      bench_mark (t->ptr[i], t->size[i], tag);
    }
}

static void *
run (void *arg)
{
  struct thr *t = arg;
  pthread_barrier_wait (&start_barrier);
  for (long i = 0; i < t->nops; i++)
    {
      uint32_t slot = t->ops[i].slot;
      uint32_t size = t->ops[i].size;
      if (!bench_marked (t->ptr[slot], t->size[slot], t->tag[slot]))
	bench_fail ("churn: a live block changed");
      bench_free (t->ptr[slot]);
      void *p = bench_alloc (size);
      uint64_t tag = t->tag[slot] + 0x100000000ULL;
      bench_mark (p, size, tag);
      t->ptr[slot] = p;
      t->size[slot] = size;
      t->tag[slot] = tag;
    }
  pthread_barrier_wait (&start_barrier);
  return NULL;
}

int
main (int argc, char **argv)
{
  if (argc < 4)
    {
      fprintf (stderr, "usage: churn ALLOC THREADS OPS [LIVE]\n");
      return 2;
    }
  bench_select (argv[1]);
  int nthreads = (int) bench_arg (argc, argv, 2, 1);
  long nops = bench_arg (argc, argv, 3, 1000000);
  long live = bench_arg (argc, argv, 4, 10000);
  if (nthreads < 1 || nthreads > 64 || live < nthreads)
    bench_fail ("bad arguments");

  struct thr *th = bench_map (nthreads * sizeof *th);
  uint64_t live_peak = 0;
  for (int i = 0; i < nthreads; i++)
    {
      struct thr *t = &th[i];
      t->nslots = (uint32_t) (live / nthreads);
      t->nops = nops;
      t->ops = bench_map (nops * sizeof *t->ops);
      t->init = bench_map (t->nslots * sizeof *t->init);
      t->ptr = bench_map (t->nslots * sizeof *t->ptr);
      t->size = bench_map (t->nslots * sizeof *t->size);
      t->tag = bench_map (t->nslots * sizeof *t->tag);
      generate (t, 0x5eed0000u + (uint64_t) i);
      live_peak += t->live_peak;	/* an upper bound over threads */
    }
  if (pthread_barrier_init (&start_barrier, NULL, (unsigned) nthreads + 1))
    bench_fail ("pthread_barrier_init");

  long rss0 = bench_status_kb ("VmRSS:");
  bench_attach ();
  for (int i = 0; i < nthreads; i++)
    fill (&th[i]);
  for (int i = 0; i < nthreads; i++)
    if (pthread_create (&th[i].tid, NULL, run, &th[i]))
      bench_fail ("pthread_create");
  uint64_t t0 = bench_now ();
  pthread_barrier_wait (&start_barrier);
  pthread_barrier_wait (&start_barrier);
  uint64_t t1 = bench_now ();
  for (int i = 0; i < nthreads; i++)
    pthread_join (th[i].tid, NULL);
  long hwm = bench_status_kb ("VmHWM:");

  for (int i = 0; i < nthreads; i++)
    for (uint32_t j = 0; j < th[i].nslots; j++)
      {
	if (!bench_marked (th[i].ptr[j], th[i].size[j], th[i].tag[j]))
	  bench_fail ("churn: a live block changed");
	bench_free (th[i].ptr[j]);
      }
  if (bench_use_mm)
    {
      struct mstats st = mmstats (bench_md);
      if (st.chunks_used != 0)
	bench_fail ("churn: mmstats counts blocks after all were freed");
    }

  printf ("R time_ms %.3f\n", (double) (t1 - t0) / 1e6);
  printf ("R rss0_kb %ld\n", rss0);
  printf ("R hwm_kb %ld\n", hwm);
  printf ("R live_kb %.1f\n", (double) live_peak / 1024.0);
  return 0;
}
