/* test-threads.c -- threads that come and go, in the spirit of glibc's
   tst-malloc-thread-exit and tst-malloc_info:

   - 2000 threads in batches: each allocates and frees, swaps blocks with its
     batch, and leaves some behind for the main thread, which frees them after
     the threads are gone; mmstats (NULL) then counts exactly what is live,
     its figures add up, the heap check passes and the heap did not grow with
     the number of threads (slabs of exited threads are reused);
   - a block freed after the thread that made it has exited, by the main
     thread and by a thread that never allocated;
   - malloc and free in thread-specific data destructors, which run after
     mmalloc's own thread cache was torn down;
   - detached threads exiting on their own;
   - threads allocating and freeing each other's small blocks at full speed,
     with and without memalign taking slots of the same classes.  */
#include "mtest.h"

static size_t
tsize (uint64_t *s)
{
  uint64_t r = mt_next (s);
  switch (r % 10)
    {
    case 0:
      return (size_t) (r >> 8) % 100000;
    case 1:
    case 2:
      return (size_t) (r >> 8) % 8192;
    default:
      return (size_t) (r >> 8) % 256;
    }
}

enum { BATCH = 50, LEFT = 3, SWAP = 8 };

struct worker
{
  int index;
  uint64_t seed;
  void *left[LEFT];		/* left behind for the main thread */
  void *swap[SWAP];		/* made here, freed by the next worker */
  size_t swap_size[SWAP];
  struct worker *prev;		/* whose swap blocks we free */
  pthread_barrier_t *barrier;
  int bad;
};

static void *
worker_main (void *arg)
{
  struct worker *w = arg;
  void *win[48] = { 0 };
  size_t len[48] = { 0 };
  for (int i = 0; i < 600; i++)
    {
      size_t k = (size_t) (mt_next (&w->seed) % 48);
      if (win[k] && mt_check (win[k], len[k] < 64 ? len[k] : 64, (uintptr_t) win[k]) !=
	  (len[k] < 64 ? len[k] : 64))
	w->bad = 1;
      free (win[k]);
      len[k] = tsize (&w->seed);
      win[k] = (i % 7 == 0) ? calloc (1, len[k]) : malloc (len[k]);
      if (!win[k])
	{
	  w->bad = 2;
	  break;
	}
      mt_fill (win[k], len[k] < 64 ? len[k] : 64, (uintptr_t) win[k]);
    }
  for (int k = 0; k < SWAP; k++)
    {
      w->swap_size[k] = tsize (&w->seed);
      w->swap[k] = malloc (w->swap_size[k]);
      if (!w->swap[k])
	w->bad = 3;
      else
	mt_fill (w->swap[k], w->swap_size[k], (uintptr_t) w->index);
    }
  pthread_barrier_wait (w->barrier);	/* everyone's swap blocks exist */
  if (w->prev)
    for (int k = 0; k < SWAP; k++)
      {
	if (mt_check (w->prev->swap[k], w->prev->swap_size[k], (uintptr_t) w->prev->index)
	    != w->prev->swap_size[k])
	  w->bad = 4;
	free (w->prev->swap[k]);
      }
  for (int k = 0; k < LEFT; k++)
    {
      w->left[k] = malloc ((size_t) (w->index * 37 + k * 100) % 1500);
      if (!w->left[k])
	w->bad = 5;
    }
  for (int k = 0; k < 48; k++)
    free (win[k]);
  return NULL;
}

static void
run_batch (struct worker *w, int first, pthread_attr_t *attr)
{
  pthread_t t[BATCH];
  pthread_barrier_t barrier;
  assert_int_equal (pthread_barrier_init (&barrier, NULL, BATCH), 0);
  for (int i = 0; i < BATCH; i++)
    {
      memset (&w[i], 0, sizeof w[i]);
      w[i].index = first + i;
      w[i].seed = 0x51ed27ULL * (uint64_t) (first + i + 1);
      w[i].prev = i ? &w[i - 1] : NULL;
      w[i].barrier = &barrier;
    }
  for (int i = 0; i < BATCH; i++)
    assert_int_equal (pthread_create (&t[i], attr, worker_main, &w[i]), 0);
  for (int i = 0; i < BATCH; i++)
    assert_int_equal (pthread_join (t[i], NULL), 0);
  pthread_barrier_destroy (&barrier);
  /* The first worker's swap blocks have nobody after it: free them here.  */
  for (int k = 0; k < SWAP; k++)
    free (w[BATCH - 1].swap[k]);
  for (int i = 0; i < BATCH; i++)
    assert_int_equal (w[i].bad, 0);
}

static void
check_figures (struct mstats st)
{
  assert_true (st.bytes_used + st.bytes_free <= st.bytes_total);
  assert_true (st.chunks_used == 0 || st.bytes_used >= st.chunks_used * 16);
}

static void
two_thousand_threads (void **state)
{
  (void) state;
  enum { BATCHES = 40 };
  static struct worker w[BATCHES][BATCH];
  pthread_attr_t attr;
  pthread_attr_init (&attr);
  pthread_attr_setstacksize (&attr, 256 * 1024);
  /* A first batch settles what the C library keeps for its threads (a stack
     cache, with their TLS vectors): measured after it.  */
  run_batch (w[0], 0, &attr);
  for (int i = 0; i < BATCH; i++)
    for (int k = 0; k < LEFT; k++)
      free (w[0][i].left[k]);
  struct mstats base = mmstats (NULL);
  check_figures (base);
  size_t total_early = 0;
  for (int b = 1; b < BATCHES; b++)
    {
      run_batch (w[b], b * BATCH, &attr);
      if (b == 4)
	total_early = mmstats (NULL).bytes_total;
    }
  pthread_attr_destroy (&attr);
  /* Everything the threads left is live, and nothing else of theirs.  */
  struct mstats live = mmstats (NULL);
  check_figures (live);
  size_t left = (size_t) (BATCHES - 1) * BATCH * LEFT;
  if (live.chunks_used != base.chunks_used + left)
    print_message ("chunks_used %zu, expected %zu + %zu\n", live.chunks_used,
		   base.chunks_used, left);
  assert_int_equal (live.chunks_used, base.chunks_used + left);
  assert_heap_ok (NULL);
  size_t left_bytes = 0;
  for (int b = 1; b < BATCHES; b++)
    for (int i = 0; i < BATCH; i++)
      for (int k = 0; k < LEFT; k++)
	{
	  left_bytes += malloc_usable_size (w[b][i].left[k]);
	  free (w[b][i].left[k]);
	}
  struct mstats end = mmstats (NULL);
  check_figures (end);
  assert_int_equal (end.chunks_used, base.chunks_used);
  assert_int_equal (end.bytes_used, base.bytes_used);
  /* Checked blocks (MMALLOC_OPTIONS=check) report the size asked for as
     their usable size, while mmstats counts their slots.  */
  const char *opt = getenv ("MMALLOC_OPTIONS");
  if (opt && strstr (opt, "check"))
    assert_true (live.bytes_used - end.bytes_used >= left_bytes);
  else
    assert_int_equal (live.bytes_used - end.bytes_used, left_bytes);
  /* 1950 more threads did not make the heap grow with their number: from
     batch 4 on it may grow by what the blocks left behind need, plus slack,
     not by a slab per class per thread.  */
  print_message ("heap: %zu KiB after 250 threads, %zu KiB after 2000\n",
		 total_early >> 10, live.bytes_total >> 10);
  assert_true (live.bytes_total <= total_early + 2 * left_bytes + ((size_t) 8 << 20));
  assert_heap_ok (NULL);
}

/* --- blocks that outlive their thread ------------------------------------ */

static void *detached_main (void *arg);

struct made
{
  void *p[2000];
  size_t n[2000];
};

static void *
make_blocks (void *arg)
{
  struct made *m = arg;
  for (int i = 0; i < 2000; i++)
    {
      /* Whole slabs of a few classes, so that the thread owned full ones.  */
      m->n[i] = i < 1500 ? (size_t) 32 + (size_t) (i % 3) * 48 : (size_t) (i * 71 % 40000);
      m->p[i] = malloc (m->n[i]);
      if (!m->p[i])
	return (void *) 1;
      mt_fill (m->p[i], m->n[i], (uintptr_t) i);
    }
  return NULL;
}

static void *
free_blocks_only (void *arg)
{
  struct made *m = arg;
  for (int i = 1; i < 2000; i += 2)
    {
      if (mt_check (m->p[i], m->n[i], (uintptr_t) i) != m->n[i])
	return (void *) 1;
      free (m->p[i]);		/* this thread never allocated */
    }
  return NULL;
}

static void
free_after_the_thread_exited (void **state)
{
  (void) state;
  static struct made m;
  size_t total_first = 0;
  /* A first thread of the default stack size: the C library keeps what it
     allocates for one in its stack cache.  */
  pthread_t t0;
  assert_int_equal (pthread_create (&t0, NULL, detached_main, NULL), 0);
  assert_int_equal (pthread_join (t0, NULL), 0);
  for (int round = 0; round < 20; round++)
    {
      struct mstats before = mmstats (NULL);
      pthread_t t;
      void *r = (void *) 9;
      assert_int_equal (pthread_create (&t, NULL, make_blocks, &m), 0);
      assert_int_equal (pthread_join (t, &r), 0);
      assert_null (r);
      /* The thread is gone; its blocks are intact.  */
      struct mstats mid = mmstats (NULL);
      assert_true (mid.chunks_used >= before.chunks_used + 2000);
      for (int i = 0; i < 2000; i += 2)
	{
	  assert_int_equal (mt_check (m.p[i], m.n[i], (uintptr_t) i), m.n[i]);
	  free (m.p[i]);
	}
      r = (void *) 9;
      assert_int_equal (pthread_create (&t, NULL, free_blocks_only, &m), 0);
      assert_int_equal (pthread_join (t, &r), 0);
      assert_null (r);
      struct mstats after = mmstats (NULL);
      check_figures (after);
      assert_int_equal (after.chunks_used, before.chunks_used);
      if (round == 1)
	total_first = after.bytes_total;
      if (round > 1)		/* slabs of exited threads are used again */
	assert_true (after.bytes_total <= total_first + ((size_t) 1 << 20));
    }
  assert_heap_ok (NULL);
}

/* --- malloc in thread-specific data destructors ---------------------------- */

static pthread_key_t key_early, key_late;
static void *dtor_left[400];

static void
dtor (void *arg)
{
  uintptr_t i = (uintptr_t) arg - 1;
  char *p = malloc (100 + i % 300);
  if (p)
    {
      memset (p, 1, 100);
      free (p);
    }
  free (malloc (20000));
  /* One block per thread survives it: the main thread frees it.  */
  dtor_left[i % 400] = malloc (64);
}

static void *
with_destructors (void *arg)
{
  pthread_setspecific (key_late, (void *) ((uintptr_t) arg + 1));	/* not NULL */
  void *p = malloc (500);
  free (p);
  pthread_setspecific (key_early, (void *) ((uintptr_t) arg + 2));
  return NULL;
}

static void
malloc_in_key_destructors (void **state)
{
  (void) state;
  /* Both keys are made after mmalloc's own (malloc ran before main), so
     their destructors run after the thread cache is torn down.  */
  assert_int_equal (pthread_key_create (&key_early, dtor), 0);
  assert_int_equal (pthread_key_create (&key_late, dtor), 0);
  size_t total_first = 0;
  for (int round = 0; round < 4; round++)
    {
      struct mstats before = mmstats (NULL);
      for (uintptr_t i = 0; i < 200; i++)
	{
	  pthread_t t;
	  assert_int_equal (pthread_create (&t, NULL, with_destructors, (void *) (i * 2)), 0);
	  assert_int_equal (pthread_join (t, NULL), 0);
	}
      struct mstats mid = mmstats (NULL);
      int ran = 0;
      for (int i = 0; i < 400; i++)
	ran += dtor_left[i] != NULL;
      if (ran != 400)
	print_message ("round %d: %d of 400 destructor blocks\n", round, ran);
      assert_int_equal (ran, 400);
      assert_true (mid.chunks_used >= before.chunks_used + 400);
      for (int i = 0; i < 400; i++)
	{
	  free (dtor_left[i]);
	  dtor_left[i] = NULL;
	}
      struct mstats after = mmstats (NULL);
      check_figures (after);
      assert_int_equal (after.chunks_used, before.chunks_used);
      if (round == 0)
	total_first = after.bytes_total;
      else			/* no slab stays with a dead thread */
	assert_true (after.bytes_total <= total_first + ((size_t) 1 << 20));
    }
  pthread_key_delete (key_early);
  pthread_key_delete (key_late);
  assert_heap_ok (NULL);
}

/* Detached threads that exit while others allocate: nothing to join.  */
static volatile int detached_done;

static void *
detached_main (void *arg)
{
  uint64_t s = (uint64_t) (uintptr_t) arg + 1;
  void *p[32];
  for (int i = 0; i < 32; i++)
    p[i] = malloc (tsize (&s));
  for (int i = 0; i < 32; i++)
    free (p[i]);
  __atomic_add_fetch (&detached_done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static void
detached_threads (void **state)
{
  (void) state;
  pthread_attr_t attr;
  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  detached_done = 0;
  for (uintptr_t i = 0; i < 300; i++)
    {
      pthread_t t;
      int r;
      while ((r = pthread_create (&t, &attr, detached_main, (void *) i)) == EAGAIN)
	usleep (1000);
      assert_int_equal (r, 0);
    }
  pthread_attr_destroy (&attr);
  double t0 = mt_now ();
  while (__atomic_load_n (&detached_done, __ATOMIC_SEQ_CST) < 300 && mt_now () - t0 < 30)
    usleep (1000);
  assert_int_equal (detached_done, 300);
  usleep (20000);		/* let the last ones finish exiting */
  assert_heap_ok (NULL);
}

/* --- threads sharing slabs at full speed ---------------------------------- */

/* Several threads replace blocks of a window as fast as they can, freeing
   each other's blocks (through a shared exchange), for a few seconds; with
   ALIGNED, a quarter of the blocks come from memalign (32 or 64), which
   takes slots of the same size classes through the locked path.  No call
   may fail, and the heap must be whole afterwards.  */
struct racer
{
  int aligned;
  uint64_t seed;
  unsigned long ops;
  int failed_errno;
};

static void *volatile exchange[256];
static int race_stop;		/* atomic: set by any thread, read by all */

static void *
racer_main (void *arg)
{
  struct racer *r = arg;
  void *win[64] = { 0 };
  while (!__atomic_load_n (&race_stop, __ATOMIC_RELAXED))
    {
      uint64_t x = mt_next (&r->seed);
      size_t i = (size_t) (x % 64), n = (size_t) (x >> 40) % 2048;
      free (win[i]);
      if (r->aligned && (x >> 20) % 4 == 0)
	win[i] = memalign ((size_t) 32 << ((x >> 24) % 2), n);
      else
	win[i] = malloc (n);
      if (!win[i])
	{
	  r->failed_errno = errno;
	  __atomic_store_n (&race_stop, 1, __ATOMIC_RELAXED);
	  break;
	}
      /* Swap with the exchange: the block is freed by whichever thread
	 takes it next.  */
      if ((x >> 30) % 4 == 0)
	win[i] = __atomic_exchange_n (&exchange[(x >> 32) % 256], win[i], __ATOMIC_ACQ_REL);
      r->ops++;
    }
  for (int i = 0; i < 64; i++)
    free (win[i]);
  return NULL;
}

static void
race (int aligned, double seconds)
{
  enum { N = 4 };
  struct racer r[N];
  pthread_t t[N];
  __atomic_store_n (&race_stop, 0, __ATOMIC_RELAXED);
  for (int i = 0; i < N; i++)
    {
      r[i] = (struct racer) { aligned, 0x2545f4914f6cdd1dULL * (uint64_t) (i + 1), 0, 0 };
      assert_int_equal (pthread_create (&t[i], NULL, racer_main, &r[i]), 0);
    }
  double t0 = mt_now ();
  while (!__atomic_load_n (&race_stop, __ATOMIC_RELAXED) && mt_now () - t0 < seconds)
    usleep (10000);
  __atomic_store_n (&race_stop, 1, __ATOMIC_RELAXED);
  unsigned long ops = 0;
  int err = 0;
  for (int i = 0; i < N; i++)
    {
      assert_int_equal (pthread_join (t[i], NULL), 0);
      ops += r[i].ops;
      if (r[i].failed_errno)
	err = r[i].failed_errno;
    }
  for (int i = 0; i < 256; i++)
    {
      free (exchange[i]);
      exchange[i] = NULL;
    }
  print_message ("%lu operations in %.1f s\n", ops, mt_now () - t0);
  if (err)
    print_message ("an allocation failed: %s (%d)\n", mmalloc_strerror (err), err);
  assert_int_equal (err, 0);
  assert_int_equal (mmalloc_errno (NULL), 0);
  assert_heap_ok (NULL);
}

static void
small_blocks_shared_by_threads (void **state)
{
  (void) state;
  race (0, 2.0);
}

static void
aligned_and_plain_small_blocks_shared_by_threads (void **state)
{
  (void) state;
  race (1, 3.0);
}

int
main (void)
{
  mt_require_preload ();
  free (malloc (1));		/* the thread cache key exists before the tests' keys */
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (two_thousand_threads),
    cmocka_unit_test (free_after_the_thread_exited),
    cmocka_unit_test (malloc_in_key_destructors),
    cmocka_unit_test (detached_threads),
    cmocka_unit_test (small_blocks_shared_by_threads),
    cmocka_unit_test (aligned_and_plain_small_blocks_shared_by_threads),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
