/* test-threads.c -- one descriptor shared by several threads: random work,
   blocks freed by a thread other than their allocator, and the default heap
   made once when several threads make their first call at the same time.

   No cmocka assertion runs outside the main thread: workers count what went
   wrong and the main thread asserts on the counts.  */
#include "testutil.h"
#include "mmprivate.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

static size_t
rand_size (uint64_t *s)
{
  uint64_t r = tu_rnd (s);
  unsigned pick = (unsigned) (r % 100);
  r >>= 8;
  if (pick < 88)
    return (size_t) (r % 300);
  if (pick < 99)
    return (size_t) (r % 8192);
  return (size_t) (r % 40000);
}

/* --- random work on one descriptor ----------------------------------------- */

enum { NTHREADS = 4, SLOTS = 1024, OPS_PER_THREAD = 80000 };

struct worker
{
  void *md;
  int id;
  long errors;			/* NULL results and damaged blocks */
  long ops;
  char *ptr[SLOTS];
  size_t len[SLOTS];
  uint32_t gen[SLOTS];
};

static uint64_t
tag_of (const struct worker *w, size_t i)
{
  return ((uint64_t) w->id << 48) | ((uint64_t) i << 24) | w->gen[i];
}

static void *
worker_run (void *arg)
{
  struct worker *w = arg;
  uint64_t s = 0x1234567 + (uint64_t) w->id * 0x9e3779b97f4a7c15ULL;
  for (long op = 0; op < OPS_PER_THREAD; op++)
    {
      size_t i = (size_t) (tu_rnd (&s) % SLOTS);
      if (!w->ptr[i])
	{
	  w->len[i] = rand_size (&s);
	  w->ptr[i] = mmalloc (w->md, w->len[i]);
	  if (!w->ptr[i] || (uintptr_t) w->ptr[i] % 16)
	    {
	      w->errors++;
	      w->ptr[i] = NULL;
	      continue;
	    }
	  tu_fill (w->ptr[i], w->len[i], tag_of (w, i));
	}
      else if (tu_rnd (&s) % 10 == 0)
	{
	  size_t n = rand_size (&s);
	  char *q = mrealloc (w->md, w->ptr[i], n);
	  if (!q)
	    {
	      w->errors++;
	      continue;
	    }
	  size_t keep = n < w->len[i] ? n : w->len[i];
	  w->errors += !tu_holds (q, keep, tag_of (w, i));
	  w->gen[i]++;
	  w->ptr[i] = q;
	  w->len[i] = n;
	  tu_fill (q, n, tag_of (w, i));
	}
      else
	{
	  w->errors += !tu_holds (w->ptr[i], w->len[i], tag_of (w, i));
	  mfree (w->md, w->ptr[i]);
	  w->ptr[i] = NULL;
	  w->gen[i]++;
	}
      w->ops++;
    }
  return NULL;
}

static void
four_threads_share_one_heap_without_damage (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  static struct worker w[NTHREADS];
  pthread_t t[NTHREADS];
  memset (w, 0, sizeof w);
  for (int k = 0; k < NTHREADS; k++)
    {
      w[k].md = md;
      w[k].id = k + 1;
      assert_int_equal (pthread_create (&t[k], NULL, worker_run, &w[k]), 0);
    }
  for (int k = 0; k < NTHREADS; k++)
    assert_int_equal (pthread_join (t[k], NULL), 0);
  long ops = 0;
  size_t live = 0, bytes = 0;
  for (int k = 0; k < NTHREADS; k++)
    {
      assert_int_equal (w[k].errors, 0);
      ops += w[k].ops;
      for (size_t i = 0; i < SLOTS; i++)
	if (w[k].ptr[i])
	  {
	    assert_true (tu_holds (w[k].ptr[i], w[k].len[i], tag_of (&w[k], i)));
	    live++;
	    bytes += mmalloc_usable_size (md, w[k].ptr[i]);
	  }
    }
  assert_int_equal (ops, NTHREADS * OPS_PER_THREAD);
  struct mstats st = mmstats (md);
  assert_int_equal (st.chunks_used, live);
  assert_int_equal (st.bytes_used, bytes);
  assert_heap_ok (md);
  for (int k = 0; k < NTHREADS; k++)
    for (size_t i = 0; i < SLOTS; i++)
      mfree (md, w[k].ptr[i]);
  assert_int_equal (mmstats (md).chunks_used, 0);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

/* --- producers and consumers ---------------------------------------------- */

enum { QCAP = 256, PRODUCERS = 2, CONSUMERS = 2, ITEMS_PER_PRODUCER = 60000 };

struct item
{
  char *p;
  size_t len;
  uint64_t tag;
};

static struct
{
  pthread_mutex_t lock;
  pthread_cond_t nonempty, nonfull;
  struct item q[QCAP];
  size_t head, count;
  int producers_left;
  void *md;
  long produce_errors, consume_errors, consumed;
} pc = { .lock = PTHREAD_MUTEX_INITIALIZER, .nonempty = PTHREAD_COND_INITIALIZER,
	 .nonfull = PTHREAD_COND_INITIALIZER };

static void *
producer (void *arg)
{
  uint64_t id = (uint64_t) (uintptr_t) arg, s = 0xabcdef + id;
  for (long n = 0; n < ITEMS_PER_PRODUCER; n++)
    {
      struct item it;
      it.len = rand_size (&s);
      it.tag = (id << 40) | (uint64_t) n;
      it.p = mmalloc (pc.md, it.len);
      if (!it.p)
	{
	  __atomic_add_fetch (&pc.produce_errors, 1, __ATOMIC_RELAXED);
	  continue;
	}
      tu_fill (it.p, it.len, it.tag);
      pthread_mutex_lock (&pc.lock);
      while (pc.count == QCAP)
	pthread_cond_wait (&pc.nonfull, &pc.lock);
      pc.q[(pc.head + pc.count++) % QCAP] = it;
      pthread_cond_signal (&pc.nonempty);
      pthread_mutex_unlock (&pc.lock);
    }
  pthread_mutex_lock (&pc.lock);
  pc.producers_left--;
  pthread_cond_broadcast (&pc.nonempty);
  pthread_mutex_unlock (&pc.lock);
  return NULL;
}

static void *
consumer (void *arg)
{
  (void) arg;
  for (;;)
    {
      pthread_mutex_lock (&pc.lock);
      while (pc.count == 0 && pc.producers_left > 0)
	pthread_cond_wait (&pc.nonempty, &pc.lock);
      if (pc.count == 0)
	{
	  pthread_mutex_unlock (&pc.lock);
	  return NULL;
	}
      struct item it = pc.q[pc.head];
      pc.head = (pc.head + 1) % QCAP;
      pc.count--;
      pc.consumed++;
      pthread_cond_signal (&pc.nonfull);
      pthread_mutex_unlock (&pc.lock);
      if (!tu_holds (it.p, it.len, it.tag))
	__atomic_add_fetch (&pc.consume_errors, 1, __ATOMIC_RELAXED);
      mfree (pc.md, it.p);
    }
}

static void
blocks_freed_by_another_thread (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  pc.md = md;
  pc.head = pc.count = 0;
  pc.producers_left = PRODUCERS;
  pthread_t p[PRODUCERS], c[CONSUMERS];
  for (int k = 0; k < CONSUMERS; k++)
    assert_int_equal (pthread_create (&c[k], NULL, consumer, NULL), 0);
  for (int k = 0; k < PRODUCERS; k++)
    assert_int_equal (pthread_create (&p[k], NULL, producer, (void *) (uintptr_t) (k + 1)), 0);
  for (int k = 0; k < PRODUCERS; k++)
    assert_int_equal (pthread_join (p[k], NULL), 0);
  for (int k = 0; k < CONSUMERS; k++)
    assert_int_equal (pthread_join (c[k], NULL), 0);
  assert_int_equal (pc.produce_errors, 0);
  assert_int_equal (pc.consume_errors, 0);
  assert_int_equal (pc.consumed, PRODUCERS * ITEMS_PER_PRODUCER);
  struct mstats st = mmstats (md);
  assert_int_equal (st.chunks_used, 0);
  assert_int_equal (st.bytes_used, 0);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

/* --- the default heap is made once ------------------------------------------ */

enum { RACERS = 8, RACE_ROUNDS = 20 };

static pthread_barrier_t race_barrier;
static void *race_ptr[RACERS];

/* Each racer's first call on the NULL descriptor is a different entry point.  */
static void *
racer (void *arg)
{
  int k = (int) (uintptr_t) arg;
  pthread_barrier_wait (&race_barrier);
  switch (k % 6)
    {
    case 0:
      race_ptr[k] = mmalloc (NULL, 100);
      break;
    case 1:
      race_ptr[k] = mcalloc (NULL, 10, 10);
      break;
    case 2:
      race_ptr[k] = mrealloc (NULL, NULL, 5000);
      break;
    case 3:
      race_ptr[k] = mmemalign (NULL, 256, 100);
      break;
    case 4:
      race_ptr[k] = mvalloc (NULL, 100);
      break;
    default:
      race_ptr[k] = mmalloc (NULL, 70000);
      break;
    }
  return NULL;
}

/* RACERS threads make their first call on the NULL descriptor at once; every
   block must come from the one default heap.  NULL, or what went wrong.  */
static const char *
race_once (void)
{
  pthread_t t[RACERS];
  memset (race_ptr, 0, sizeof race_ptr);
  if (pthread_barrier_init (&race_barrier, NULL, RACERS))
    return "pthread_barrier_init failed";
  for (int k = 0; k < RACERS; k++)
    if (pthread_create (&t[k], NULL, racer, (void *) (uintptr_t) k))
      return "pthread_create failed";
  for (int k = 0; k < RACERS; k++)
    pthread_join (t[k], NULL);
  pthread_barrier_destroy (&race_barrier);
  for (int k = 0; k < RACERS; k++)
    if (!race_ptr[k])
      return "a first call on the default heap returned NULL";
  struct mstats st = mmstats (NULL);
  if (st.chunks_used != RACERS)
    return "the default heap does not hold every racer's block";
  if (mmalloc_check (NULL) != 0)
    return "mmalloc_check (NULL) found problems";
  /* A block of another heap would be reported here and abort the child.  */
  for (int k = 0; k < RACERS; k++)
    mfree (NULL, race_ptr[k]);
  if (mmstats (NULL).chunks_used != 0)
    return "blocks left in the default heap";
  if (mmalloc_check (NULL) != 0)
    return "mmalloc_check (NULL) found problems after freeing";
  return NULL;
}

/* In a fresh child, which has no default heap yet.  */
static void
race_in_child (void *arg)
{
  (void) arg;
  const char *bad = race_once ();
  if (bad)
    {
      if (write (2, bad, strlen (bad)) < 0)
	_exit (2);
      _exit (1);
    }
}

static void
first_calls_on_null_descriptor_make_one_default_heap (void **state)
{
  (void) state;
  /* The parent has not touched the default heap yet, so each child starts
     without one.  */
  for (int round = 0; round < RACE_ROUNDS; round++)
    {
      char err[1024];
      int st = tu_child (race_in_child, NULL, err, sizeof err);
      if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
	fail_msg ("round %d: child status 0x%x: %s", round, st, err);
    }
  /* Once more in this process.  */
  const char *bad = race_once ();
  if (bad)
    fail_msg ("%s", bad);
  assert_heap_ok (NULL);
}

/* --- a free into a slab that the next free empties ------------------------

   Thread A leaves two blocks in one slab and one in a second slab of the
   same class (so that the first is given back once empty, not kept as the
   class's only partial slab), then exits: both slabs lose their owner.
   B frees one of the two blocks, then C the other, which empties the slab
   and gives its pages back.  B, which does not own the slab, reads its
   header after marking its slot free; nothing but the allocator orders B's
   free before C's (C waits on a relaxed flag, which orders nothing, and B
   waits for C before it exits, since its exit takes locks C takes), so
   under ThreadSanitizer (make tsan) a read of B's that the allocator lets
   happen after the give-back is reported: that read could find the page a
   free run's, another block's, or unmapped by a shrink.  */

enum { EMPTY_SIZE = 1024 };

struct emptying
{
  void *md;
  void *two[2];			/* left by A in the first slab */
  void *one;			/* left by A in the second slab */
  int in_one_slab;		/* A's first slab held exactly its first blocks */
  int b_done, c_done;		/* relaxed: they order nothing */
  long errors;
};

static void *
emptying_owner (void *arg)
{
  struct emptying *x = arg;
  uint32_t nobj = mm_classes[mm_size_class (EMPTY_SIZE)].nobj;
  char **p = calloc (nobj + 1, sizeof *p);
  if (!p)
    return (void *) 1;
  for (uint32_t i = 0; i <= nobj; i++)
    if (!(p[i] = mmalloc (x->md, EMPTY_SIZE)))
      return (void *) 1;
  /* A fresh heap and a new owner: the slab is filled in address order.  */
  x->in_one_slab = p[nobj - 1] - p[0] == (ptrdiff_t) (nobj - 1) * EMPTY_SIZE;
  for (uint32_t i = 2; i < nobj; i++)
    mfree (x->md, p[i]);
  x->two[0] = p[0];
  x->two[1] = p[1];
  x->one = p[nobj];
  free (p);
  return NULL;
}

/* Give the calling thread a cache entry for the heap, so that its frees
   take the path of frees into other threads' slabs.  */
static void
make_cache_entry (struct emptying *x)
{
  void *mine = mmalloc (x->md, 16);
  if (!mine)
    __atomic_add_fetch (&x->errors, 1, __ATOMIC_RELAXED);
  mfree (x->md, mine);
}

static void
wait_for (int *flag)
{
  while (!__atomic_load_n (flag, __ATOMIC_RELAXED))
    sched_yield ();
}

static void *
emptying_first (void *arg)
{
  struct emptying *x = arg;
  make_cache_entry (x);
  mfree (x->md, x->two[0]);
  __atomic_store_n (&x->b_done, 1, __ATOMIC_RELAXED);
  wait_for (&x->c_done);
  return NULL;
}

static void *
emptying_second (void *arg)
{
  struct emptying *x = arg;
  make_cache_entry (x);
  wait_for (&x->b_done);
  mfree (x->md, x->two[1]);
  __atomic_store_n (&x->c_done, 1, __ATOMIC_RELAXED);
  return NULL;
}

static void
free_that_empties_a_slab_after_a_remote_free (void **state)
{
  (void) state;
  struct emptying x = { .md = mmalloc_attach (-1, NULL) };
  assert_non_null (x.md);
  struct mm_desc *d = mm_desc_of (x.md);
  assert_non_null (d);
  pthread_t a, b, c;
  void *ret;
  assert_int_equal (pthread_create (&a, NULL, emptying_owner, &x), 0);
  assert_int_equal (pthread_join (a, &ret), 0);
  assert_null (ret);
  assert_true (x.in_one_slab);
  uint64_t pg = (uint64_t) ((char *) x.two[0] - d->base) >> MM_PAGE_SHIFT;
  assert_int_equal (PM_KIND (mm_pm_get (d, pg)), PM_SLAB);
  assert_int_equal (pthread_create (&b, NULL, emptying_first, &x), 0);
  assert_int_equal (pthread_create (&c, NULL, emptying_second, &x), 0);
  assert_int_equal (pthread_join (b, NULL), 0);
  assert_int_equal (pthread_join (c, NULL), 0);
  assert_int_equal (x.errors, 0);
  /* C's free gave the emptied slab's pages back.  */
  assert_int_equal (PM_KIND (mm_pm_get (d, pg)), PM_FREE);
  mfree (x.md, x.one);
  assert_heap_ok (x.md);
  assert_null (mmalloc_detach (x.md));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    /* First: no default heap exists yet in this process.  */
    cmocka_unit_test (first_calls_on_null_descriptor_make_one_default_heap),
    cmocka_unit_test (four_threads_share_one_heap_without_damage),
    cmocka_unit_test (blocks_freed_by_another_thread),
    cmocka_unit_test (free_that_empties_a_slab_after_a_remote_free),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
