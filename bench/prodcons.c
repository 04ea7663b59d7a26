/* prodcons.c -- blocks allocated in one thread and freed in another.

   usage: prodcons ALLOC BLOCKS [PAIRS]

   PAIRS (default 1) producer/consumer pairs.  Each producer allocates
   BLOCKS blocks of the churn sizes (a pre-generated sequence), marks them
   and hands them to its consumer in batches of 256, through a queue of 16
   batches; the consumer checks each mark and frees the block.  A thread
   that finds the queue full (or empty) sleeps on a condition variable
   rather than spinning, so that the figure stays meaningful when the two
   threads have to share a core of a busy machine.  With mmalloc every
   thread uses the one shared heap.

   Prints time_ms: wall clock from the start until every block is freed.  */

#include "common.h"

#include <pthread.h>

#define BATCH 256
#define QLEN 16

struct pair
{
  pthread_t prod, cons;
  long nblocks;
  uint32_t *sizes;
  void *(*buf)[BATCH];		/* QLEN batches */
  pthread_mutex_t lock;
  pthread_cond_t not_full, not_empty;
  long head, tail;		/* batches handed over, batches freed */
};

static pthread_barrier_t barrier;

static void *
producer (void *arg)
{
  struct pair *q = arg;
  pthread_barrier_wait (&barrier);
  for (long first = 0, s = 0; first < q->nblocks; first += BATCH, s++)
    {
      pthread_mutex_lock (&q->lock);
      while (q->head - q->tail >= QLEN)
	pthread_cond_wait (&q->not_full, &q->lock);
      pthread_mutex_unlock (&q->lock);
      void **b = q->buf[s % QLEN];
      for (long i = first; i < first + BATCH && i < q->nblocks; i++)
	{
	  uint32_t size = q->sizes[i];
	  void *p = bench_alloc (size);
	  bench_mark (p, size, (uint64_t) i);
	  b[i - first] = p;
	}
      pthread_mutex_lock (&q->lock);
      q->head++;
      pthread_cond_signal (&q->not_empty);
      pthread_mutex_unlock (&q->lock);
    }
  return NULL;
}

static void *
consumer (void *arg)
{
  struct pair *q = arg;
  pthread_barrier_wait (&barrier);
  for (long first = 0, s = 0; first < q->nblocks; first += BATCH, s++)
    {
      pthread_mutex_lock (&q->lock);
      while (q->head == q->tail)
	pthread_cond_wait (&q->not_empty, &q->lock);
      pthread_mutex_unlock (&q->lock);
      void **b = q->buf[s % QLEN];
      for (long i = first; i < first + BATCH && i < q->nblocks; i++)
	{
	  void *p = b[i - first];
	  if (!bench_marked (p, q->sizes[i], (uint64_t) i))
	    bench_fail ("prodcons: a block changed between its threads");
	  bench_free (p);
	}
      pthread_mutex_lock (&q->lock);
      q->tail++;
      pthread_cond_signal (&q->not_full);
      pthread_mutex_unlock (&q->lock);
    }
  return NULL;
}

int
main (int argc, char **argv)
{
  if (argc < 3)
    {
      fprintf (stderr, "usage: prodcons ALLOC BLOCKS [PAIRS]\n");
      return 2;
    }
  bench_select (argv[1]);
  long nblocks = bench_arg (argc, argv, 2, 1000000);
  int npairs = (int) bench_arg (argc, argv, 3, 1);
  if (npairs < 1 || npairs > 32 || nblocks < 1)
    bench_fail ("bad arguments");

  struct pair *q = bench_map (npairs * sizeof *q);
  for (int k = 0; k < npairs; k++)
    {
      uint64_t s = 0xc0ffee00u + (uint64_t) k;
      q[k].nblocks = nblocks;
      q[k].sizes = bench_map (nblocks * sizeof *q[k].sizes);
      for (long i = 0; i < nblocks; i++)
	q[k].sizes[i] = bench_churn_size (bench_rand (&s));
      q[k].buf = bench_map (QLEN * sizeof *q[k].buf);
      if (pthread_mutex_init (&q[k].lock, NULL)
	  || pthread_cond_init (&q[k].not_full, NULL)
	  || pthread_cond_init (&q[k].not_empty, NULL))
	bench_fail ("pthread_mutex_init");
    }
  bench_attach ();
  if (pthread_barrier_init (&barrier, NULL, 2 * (unsigned) npairs + 1))
    bench_fail ("pthread_barrier_init");
  for (int k = 0; k < npairs; k++)
    if (pthread_create (&q[k].prod, NULL, producer, &q[k])
	|| pthread_create (&q[k].cons, NULL, consumer, &q[k]))
      bench_fail ("pthread_create");
  uint64_t t0 = bench_now ();
  pthread_barrier_wait (&barrier);
  for (int k = 0; k < npairs; k++)
    {
      pthread_join (q[k].prod, NULL);
      pthread_join (q[k].cons, NULL);
    }
  uint64_t t1 = bench_now ();
  if (bench_use_mm && mmstats (bench_md).chunks_used != 0)
    bench_fail ("prodcons: mmstats counts blocks after all were freed");
  printf ("R time_ms %.3f\n", (double) (t1 - t0) / 1e6);
  return 0;
}
