/* larson.c -- a server pattern in the style of Larson and Krishnan's test.

   usage: larson ALLOC THREADS ROUNDS [SLOTS [OPS]]

   Each of THREADS threads owns an array of SLOTS blocks (default 1000) of
   16..1000 bytes.  In a round every thread does OPS (default 10000)
   replacements: free the block in a random slot, allocate a new one of a
   random size there.  At the end of the round the arrays move on: thread i
   takes the array thread i-1 had, so that each thread frees blocks that
   another thread allocated, as a server's worker frees the requests that
   another one built.  The slots and sizes are pre-generated per thread and
   round.  Blocks carry marks that are checked before they are freed.

   Prints time_ms: all rounds, wall clock.  */

#include "common.h"

#include <pthread.h>

struct arr
{
  void **ptr;
  uint32_t *size;
  uint64_t *tag;
};

struct op
{
  uint32_t slot;
  uint32_t size;
};

static int nthreads;
static long nrounds, nslots, nops;
static struct arr *arrays;	/* nthreads arrays */
static struct op *ops;		/* [thread][round][op] */
static pthread_barrier_t barrier;

static void *
worker (void *arg)
{
  long me = (long) (intptr_t) arg;
  pthread_barrier_wait (&barrier);
  for (long r = 0; r < nrounds; r++)
    {
      struct arr *a = &arrays[(me + r) % nthreads];
      const struct op *o = ops + ((size_t) me * nrounds + r) * nops;
      for (long i = 0; i < nops; i++)
	{
	  uint32_t slot = o[i].slot, size = o[i].size;
	  if (!bench_marked (a->ptr[slot], a->size[slot], a->tag[slot]))
	    bench_fail ("larson: a live block changed");
	  bench_free (a->ptr[slot]);
	  void *p = bench_alloc (size);
	  uint64_t tag = a->tag[slot] + 0x100000000ULL;
	  bench_mark (p, size, tag);
	  a->ptr[slot] = p;
	  a->size[slot] = size;
	  a->tag[slot] = tag;
	}
      pthread_barrier_wait (&barrier);	/* then the arrays move on */
    }
  return NULL;
}

int
main (int argc, char **argv)
{
  if (argc < 4)
    {
      fprintf (stderr, "usage: larson ALLOC THREADS ROUNDS [SLOTS [OPS]]\n");
      return 2;
    }
  bench_select (argv[1]);
  nthreads = (int) bench_arg (argc, argv, 2, 2);
  nrounds = bench_arg (argc, argv, 3, 50);
  nslots = bench_arg (argc, argv, 4, 1000);
  nops = bench_arg (argc, argv, 5, 10000);
  if (nthreads < 1 || nthreads > 64 || nslots < 1 || nrounds < 1)
    bench_fail ("bad arguments");

  uint64_t s = 0x1a450u;
  ops = bench_map ((size_t) nthreads * nrounds * nops * sizeof *ops);
  for (size_t i = 0; i < (size_t) nthreads * nrounds * nops; i++)
    {
      ops[i].slot = (uint32_t) (bench_rand (&s) % (uint64_t) nslots);
      ops[i].size = 16 + (uint32_t) (bench_rand (&s) % 985);
    }
  arrays = bench_map (nthreads * sizeof *arrays);
  for (int t = 0; t < nthreads; t++)
    {
      arrays[t].ptr = bench_map (nslots * sizeof (void *));
      arrays[t].size = bench_map (nslots * sizeof (uint32_t));
      arrays[t].tag = bench_map (nslots * sizeof (uint64_t));
    }

  bench_attach ();
  for (int t = 0; t < nthreads; t++)
    for (long i = 0; i < nslots; i++)
      {
	uint32_t size = 16 + (uint32_t) (bench_rand (&s) % 985);
	uint64_t tag = ((uint64_t) t << 24) ^ (uint64_t) i;
	arrays[t].ptr[i] = bench_alloc (size);
	arrays[t].size[i] = size;
	arrays[t].tag[i] = tag;
	bench_mark (arrays[t].ptr[i], size, tag);
      }

  if (pthread_barrier_init (&barrier, NULL, (unsigned) nthreads + 1))
    bench_fail ("pthread_barrier_init");
  pthread_t *tid = bench_map (nthreads * sizeof *tid);
  for (long t = 0; t < nthreads; t++)
    if (pthread_create (&tid[t], NULL, worker, (void *) (intptr_t) t))
      bench_fail ("pthread_create");
  uint64_t t0 = bench_now ();
  pthread_barrier_wait (&barrier);
  for (long r = 0; r < nrounds; r++)
    pthread_barrier_wait (&barrier);
  uint64_t t1 = bench_now ();
  for (int t = 0; t < nthreads; t++)
    pthread_join (tid[t], NULL);

  for (int t = 0; t < nthreads; t++)
    for (long i = 0; i < nslots; i++)
      {
	if (!bench_marked (arrays[t].ptr[i], arrays[t].size[i], arrays[t].tag[i]))
	  bench_fail ("larson: a live block changed");
	bench_free (arrays[t].ptr[i]);
      }
  if (bench_use_mm && mmstats (bench_md).chunks_used != 0)
    bench_fail ("larson: mmstats counts blocks after all were freed");
  printf ("R time_ms %.3f\n", (double) (t1 - t0) / 1e6);
  return 0;
}
