/* test-takeback.c -- taking owned slabs back (mmcheckf with force, detach)
   while their owners are inside their lock-free paths.

   An owner's mmalloc or mfree checks the heap's generation (or bound), then
   stores into its slab's bitmap without a lock.  A take-back that ran
   between the check and the store would make the slab nobody's (or unmap
   the heap) under that store.  Here a thread is held at the kill point
   right after such a store (mm_kp_hold), with the rest of its path still to
   run, and the take-back must wait for it.  Then threads that allocate and
   free across each other while checking is switched on, heap after heap:
   ThreadSanitizer (make tsan) sees the owners' stores and the take-back's,
   and the heap must check clean with every block intact.
   MMALLOC_TAKEBACK_ROUNDS sets the heaps of that loop; MMALLOC_STRESS
   (make stress) makes them 1000.  */
#include "testutil.h"
#define MM_KILLPOINTS 1
#include "mmprivate.h"

#include <pthread.h>
#include <semaphore.h>
#include <time.h>

static sem_t held, release;

/* The kill point's hook: the thread stays there until released.  */
static void
hold_here (void)
{
  sem_post (&held);
  while (sem_wait (&release) != 0)
    ;
}

struct owner
{
  void *md;
  int op;			/* 'a': mmalloc is held; 'f': mfree is held */
  void *p;
};

static void *
owner_run (void *arg)
{
  struct owner *o = arg;
  void *warm = mmalloc (o->md, 48);	/* the cache entry and a slab */
  void *q = mmalloc (o->md, 48);
  if (!warm || !q)
    {
      sem_post (&held);
      return NULL;
    }
  mm_kp_hold = hold_here;
  if (o->op == 'a')
    {
      __atomic_store_n (&mm_kp_left, 1, __ATOMIC_SEQ_CST);
      o->p = mmalloc (o->md, 48);	/* held after its store to the bitmap */
    }
  else
    {
      __atomic_store_n (&mm_kp_left, 1, __ATOMIC_SEQ_CST);
      mfree (o->md, q);		/* held after its store to the bitmap */
      o->p = warm;
    }
  return NULL;
}

struct taker
{
  void *md;
  int op;			/* 'c': mmcheckf with force; 'd': detach */
  int done;
};

static void *
taker_run (void *arg)
{
  struct taker *t = arg;
  if (t->op == 'c')
    (void) mmcheckf (t->md, NULL, 1);
  else
    (void) mmalloc_detach (t->md);
  __atomic_store_n (&t->done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static void
sleep_ms (long ms)
{
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  while (nanosleep (&ts, &ts) != 0)
    ;
}

/* Hold an owner in OWNER_OP's lock-free path, start TAKER_OP on its heap:
   the taker must not finish while the owner is held.  */
static void
take_back_beside_held_owner (int owner_op, int taker_op)
{
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  assert_int_equal (sem_init (&held, 0, 0), 0);
  assert_int_equal (sem_init (&release, 0, 0), 0);
  struct owner o = { md, owner_op, NULL };
  struct taker t = { md, taker_op, 0 };
  pthread_t ot, tt;
  assert_int_equal (pthread_create (&ot, NULL, owner_run, &o), 0);
  while (sem_wait (&held) != 0)
    ;
  assert_int_equal (pthread_create (&tt, NULL, taker_run, &t), 0);
  sleep_ms (300);
  int early = __atomic_load_n (&t.done, __ATOMIC_SEQ_CST);
  if (early)
    print_message ("the take-back (%c) finished beside an owner inside its path (%c)\n",
		   taker_op, owner_op);
  sem_post (&release);
  assert_int_equal (pthread_join (ot, NULL), 0);
  assert_int_equal (pthread_join (tt, NULL), 0);
  mm_kp_hold = NULL;
  assert_false (early);
  assert_true (t.done);
  assert_non_null (o.p);
  if (taker_op == 'c')
    {
      assert_heap_ok (md);
      mfree (md, o.p);
      assert_heap_ok (md);
      assert_null (mmalloc_detach (md));
    }
  sem_destroy (&held);
  sem_destroy (&release);
}

static void
checking_on_waits_for_an_owner_amid_its_allocation (void **state)
{
  (void) state;
  take_back_beside_held_owner ('a', 'c');
}

static void
checking_on_waits_for_an_owner_amid_its_free (void **state)
{
  (void) state;
  take_back_beside_held_owner ('f', 'c');
}

/* Detach beside a thread that still uses the heap is the caller's error,
   but the heap is not unmapped under a path that is storing into it (nor
   given, by another attach, to a new heap that such a store would hit).  */
static void
detach_waits_for_an_owner_amid_its_allocation (void **state)
{
  (void) state;
  take_back_beside_held_owner ('a', 'd');
}

static void
detach_waits_for_an_owner_amid_its_free (void **state)
{
  (void) state;
  take_back_beside_held_owner ('f', 'd');
}

/* Where the system has no process-wide barrier (membarrier), each owner
   fences its own entry instead: the take-back waits all the same.  */
static void
fenced_owners_are_waited_for_too (void **state)
{
  (void) state;
  int was = mm_tc_fence;
  mm_tc_fence = 1;
  take_back_beside_held_owner ('a', 'c');
  take_back_beside_held_owner ('f', 'd');
  mm_tc_fence = was;
}

/* --- checking switched on beside working threads ---------------------------- */

enum { WORKERS = 3, SLOTS = 512 };

struct shared
{
  void *md;
  int stop;
  void *slot[SLOTS];		/* blocks passed between threads (atomic) */
  long bad;			/* blocks found overwritten, NULL results */
};

static uint64_t
xs (uint64_t *s)
{
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Each block holds its size and its own address, and is filled with a byte
   of that: what a block handed out twice or freed under its owner breaks.  */
static void *
block_make (void *md, size_t n)
{
  unsigned char *p = mmalloc (md, n);
  if (!p)
    return NULL;
  memcpy (p, &n, sizeof n);
  memcpy (p + sizeof n, &p, sizeof p);
  memset (p + 16, (int) ((uintptr_t) p >> 4 & 0xff), n - 16);
  return p;
}

static int
block_ok (const unsigned char *p)
{
  size_t n;
  const unsigned char *self;
  memcpy (&n, p, sizeof n);
  memcpy (&self, p + sizeof n, sizeof self);
  if (self != p || n < 16 || n > 4096)
    return 0;
  for (size_t i = 16; i < n; i++)
    if (p[i] != (unsigned char) ((uintptr_t) p >> 4 & 0xff))
      return 0;
  return 1;
}

static void *
worker_run (void *arg)
{
  struct shared *sh = arg;
  uint64_t r = (uint64_t) (uintptr_t) &r | 1;
  long bad = 0;
  while (!__atomic_load_n (&sh->stop, __ATOMIC_ACQUIRE))
    {
      uint64_t x = xs (&r);
      size_t n = 16 + (size_t) (x % 300);
      void *p = block_make (sh->md, n);
      if (!p)
	{
	  bad++;
	  continue;
	}
      void *old = __atomic_exchange_n (&sh->slot[(x >> 20) % SLOTS], p, __ATOMIC_ACQ_REL);
      if (old)
	{
	  bad += !block_ok (old);
	  mfree (sh->md, old);
	}
    }
  __atomic_add_fetch (&sh->bad, bad, __ATOMIC_RELAXED);
  return NULL;
}

static long
rounds (void)
{
  const char *s = getenv ("MMALLOC_TAKEBACK_ROUNDS");
  long n = s ? atol (s) : 0;
  return n > 0 ? n : getenv ("MMALLOC_STRESS") ? 1000 : 12;
}

static void
checking_on_beside_working_threads (void **state)
{
  (void) state;
  long n = rounds ();
  for (long k = 0; k < n; k++)
    {
      static struct shared sh;
      memset (&sh, 0, sizeof sh);
      sh.md = mmalloc_attach (-1, NULL);
      assert_non_null (sh.md);
      pthread_t t[WORKERS];
      for (int i = 0; i < WORKERS; i++)
	assert_int_equal (pthread_create (&t[i], NULL, worker_run, &sh), 0);
      sleep_ms (5 + k % 7);
      assert_int_equal (mmcheckf (sh.md, NULL, 1), 1);
      sleep_ms (5);
      __atomic_store_n (&sh.stop, 1, __ATOMIC_RELEASE);
      for (int i = 0; i < WORKERS; i++)
	assert_int_equal (pthread_join (t[i], NULL), 0);
      assert_int_equal (sh.bad, 0);
      assert_heap_ok (sh.md);
      for (int i = 0; i < SLOTS; i++)
	if (sh.slot[i])
	  {
	    assert_true (block_ok (sh.slot[i]));
	    mfree (sh.md, sh.slot[i]);
	  }
      assert_heap_ok (sh.md);
      assert_int_equal (mmalloc_trim (sh.md, 0) >= 0, 1);	/* empties the quarantine */
      assert_int_equal (mmstats (sh.md).chunks_used, 0);
      assert_null (mmalloc_detach (sh.md));
    }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (checking_on_waits_for_an_owner_amid_its_allocation),
    cmocka_unit_test (checking_on_waits_for_an_owner_amid_its_free),
    cmocka_unit_test (detach_waits_for_an_owner_amid_its_allocation),
    cmocka_unit_test (detach_waits_for_an_owner_amid_its_free),
    cmocka_unit_test (fenced_owners_are_waited_for_too),
    cmocka_unit_test (checking_on_beside_working_threads),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
