/* test-tcache.c -- thread caches: slabs owned per thread, freed by any.

   Each test targets one hand-over of slab ownership: cross-thread frees into
   owned and unowned slabs, slabs given back at thread exit, stale caches after
   a detach and re-attach at the same descriptor, and checking switched on
   while a cache owns slabs; and the fast free's refusal of heaps it may no
   longer write (detached, damaged; a parent's heap file in a fork child is
   tested with the drop-in library, which handles fork: malloc/test-fork.c).  */
#include "testutil.h"
#include "mmprivate.h"

#include <pthread.h>

#define RING 4096
#define THREADS 4
#define ROUNDS 200000

struct ring
{
  void *md;
  pthread_mutex_t lock;
  void *slot[RING];
  size_t size[RING];
};

static uint64_t
xs (uint64_t *s)
{
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Each thread allocates into random ring slots and frees what it finds
   there, so most frees are of another thread's blocks.  */
static void *
ring_worker (void *arg)
{
  struct ring *r = arg;
  uint64_t s = (uint64_t) (uintptr_t) &s | 1;
  for (int i = 0; i < ROUNDS; i++)
    {
      size_t k = xs (&s) % RING, n = 1 + xs (&s) % (xs (&s) % 8 ? 200 : 3000);
      unsigned char *p = mmalloc (r->md, n);
      if (!p)
	return (void *) 1;
      memset (p, (int) (n & 0xff), n);
      pthread_mutex_lock (&r->lock);
      unsigned char *old = r->slot[k];
      size_t on = r->size[k];
      r->slot[k] = p;
      r->size[k] = n;
      pthread_mutex_unlock (&r->lock);
      if (old)
	{
	  for (size_t j = 0; j < on; j++)
	    if (old[j] != (unsigned char) (on & 0xff))
	      return (void *) 2;
	  mfree (r->md, old);
	}
    }
  return NULL;
}

static void
blocks_freed_by_other_threads_keep_the_heap_whole (void **state)
{
  (void) state;
  static struct ring r;
  memset (&r, 0, sizeof r);
  r.md = mmalloc_attach (-1, NULL);
  assert_non_null (r.md);
  pthread_mutex_init (&r.lock, NULL);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    assert_int_equal (pthread_create (&t[i], NULL, ring_worker, &r), 0);
  for (int i = 0; i < THREADS; i++)
    {
      void *res;
      pthread_join (t[i], &res);
      assert_null (res);
    }
  assert_heap_ok (r.md);
  size_t live = 0;
  for (int k = 0; k < RING; k++)
    live += r.slot[k] != NULL;
  assert_int_equal (mmstats (r.md).chunks_used, live);
  for (int k = 0; k < RING; k++)
    mfree (r.md, r.slot[k]);
  assert_int_equal (mmstats (r.md).chunks_used, 0);
  assert_heap_ok (r.md);
  assert_null (mmalloc_detach (r.md));
}

static void *
alloc_and_exit (void *md)
{
  for (int i = 0; i < 1000; i++)
    mfree (md, mmalloc (md, (size_t) (i % 40) * 16 + 1));
  return mmalloc (md, 100);	/* one block outlives the thread */
}

static void
exiting_threads_give_their_slabs_back (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  void *keep[300];
  size_t total_after_warmup = 0;
  for (int round = 0; round < 300; round++)
    {
      pthread_t t;
      assert_int_equal (pthread_create (&t, NULL, alloc_and_exit, md), 0);
      assert_int_equal (pthread_join (t, &keep[round]), 0);
      assert_non_null (keep[round]);
      /* Every slab the thread owned came back when it exited.  */
      assert_int_equal (mm_desc_of (md)->nowned, 0);
      if (round == 20)
	total_after_warmup = mmstats (md).bytes_total;
    }
  /* Slabs of exited threads are reused: the heap does not grow per thread.  */
  assert_true (mmstats (md).bytes_total <= total_after_warmup + (1 << 20));
  assert_heap_ok (md);
  assert_int_equal (mmstats (md).chunks_used, 300);
  for (int i = 0; i < 300; i++)
    mfree (md, keep[i]);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

/* A heap detached and attached again gets the same descriptor (a new
   handle, a new generation): this thread's cache still holds an entry for
   that descriptor, owning a slab of the old attach, which must not be used
   for the new one.  */
static void
cache_of_a_detached_heap_is_never_used (void **state)
{
  (void) state;
  int fd = tu_newfile ("stale.heap");
  void *md = mmalloc_attach (fd, NULL);
  assert_non_null (md);
  struct mm_desc *d = mm_desc_of (md);
  unsigned cls = mm_size_class (64);
  void *a = mmalloc (md, 64);	/* this thread now owns a slab of md */
  assert_non_null (a);
  struct mm_tce *e = mm_tc_self->cur;
  assert_ptr_equal (e->d, d);
  assert_non_null (e->slab[cls]);
  mmalloc_setkey (md, 0, a);
  assert_null (mmalloc_detach (md));
  void *md2 = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md2);
  /* The premise: the descriptor came back, and the entry is stale.  */
  assert_ptr_equal (mm_desc_of (md2), d);
  assert_ptr_equal (e->d, d);
  assert_non_null (e->slab[cls]);
  assert_true (e->gen != d->gen);
  void *b = mmalloc (md2, 64);
  assert_non_null (b);
  assert_ptr_not_equal (mm_tc_self->cur, e);	/* a new entry serves md2 */
  assert_ptr_not_equal (b, a);	/* a is still allocated in the file */
  assert_ptr_equal (mmalloc_getkey (md2, 0), a);
  assert_heap_ok (md2);
  mfree (md2, b);
  mfree (md2, a);
  assert_heap_ok (md2);
  assert_null (mmalloc_detach (md2));
}

static void
overrun (void *md)
{
  char *p = mmalloc (md, 24);
  tu_hidden_ptr (p)[24] = 1;
  mfree (md, p);
}

static void
forced_checking_applies_to_the_cached_fast_path (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  void *p = mmalloc (md, 24);	/* the fast path is warm */
  assert_non_null (p);
  assert_int_equal (mmcheckf (md, tu_abort77, 1), 1);
  char err[256];
  int st = tu_child ((void (*) (void *)) overrun, md, err, sizeof err);
  assert_true (WIFEXITED (st) && WEXITSTATUS (st) == 77);
  assert_non_null (strstr (err, "past the end"));
  mfree (md, p);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

/* The fast free does not check the heap's generation: it relies on detach
   zeroing the descriptor's bound, so that a free through a detached
   descriptor reaches the slow path, which refuses it (abort, with a message),
   instead of reading the unmapped page map (SIGSEGV).  */
static void
free_after_detach (void *arg)
{
  (void) arg;
  void *md = mmalloc_attach (-1, NULL);
  void *p = mmalloc (md, 64);	/* the fast path is warm, a slab owned */
  if (!p || mmalloc_detach (md) != NULL)
    _exit (3);
  mfree (md, p);
  _exit (4);			/* refused without a report */
}

/* FN, run in a child, must end in a report of an invalid descriptor.  */
static void
assert_refused_descriptor (void (*fn) (void *))
{
  char err[512];
  int st = tu_child (fn, NULL, err, sizeof err);
  if (!WIFSIGNALED (st) || WTERMSIG (st) != SIGABRT)
    fail_msg ("status 0x%x, stderr: %s", st, err);
  assert_non_null (strstr (err, "invalid heap descriptor"));
}

static void
free_through_a_detached_descriptor_is_refused (void **state)
{
  (void) state;
  assert_refused_descriptor (free_after_detach);
}

/* The same after a failed attach reused the descriptor: the bound it set
   while validating must not outlive the failure.  */
static void
free_after_failed_attach (void *arg)
{
  (void) arg;
  int fd = tu_newfile ("bad-leaf.heap");
  void *m2 = mmalloc_attach (fd, NULL);
  if (!m2 || !mmalloc (m2, 100000))
    _exit (3);
  struct mm_header h;
  if (pread (fd, &h, sizeof h, 0) != (ssize_t) sizeof h || mmalloc_detach (m2))
    _exit (3);
  /* Damage the file's last page-map entry: its attach will fail late.  */
  uint32_t leaf, bad = PM_MAKE (PM_SLAB, 200);
  if (pread (fd, &leaf, 4, (off_t) (MM_PAGE + ((h.top - 1) >> MM_WIN_SHIFT) * 4)) != 4
      || pwrite (fd, &bad, 4, (off_t) ((uint64_t) leaf * MM_PAGE
				       + ((h.top - 1) & (MM_WIN_PAGES - 1)) * 4)) != 4)
    _exit (3);
  /* An anonymous heap at the file's address, with a warm cache, detached.  */
  void *md = mmalloc_attach (-1, (void *) (uintptr_t) h.base);
  void *p = md ? mmalloc (md, 64) : NULL;
  if (!p || mmalloc_detach (md))
    _exit (3);
  if (mmalloc_attach (fd, NULL) != NULL)	/* reuses md's descriptor, fails */
    _exit (4);
  mfree (md, p);
  _exit (5);			/* refused without a report */
}

static void
free_through_a_descriptor_reused_by_a_failed_attach_is_refused (void **state)
{
  (void) state;
  assert_refused_descriptor (free_after_failed_attach);
}

/* Once damage is found, frees are ignored: the fast path too, for blocks
   of slabs this thread owns.  */
static void
damaged_heap (void *arg)
{
  (void) arg;
  void *md = mmalloc_attach (-1, NULL);
  struct mm_desc *d = mm_desc_of (md);
  void *a = mmalloc (md, 64);	/* a slab of class 64 owned */
  if (!a)
    _exit (3);
  /* A partial list naming a page that is no slab: the next class with no
     slab of its own finds it and reports the damage.  */
  d->hdr->cls[mm_size_class (1000)].partial[0] = MM_PAGE;
  errno = 0;
  if (mmalloc (md, 1000) != NULL || errno != MMALLOC_ECORRUPT)
    _exit (4);
  struct mm_slab *s = (struct mm_slab *) ((uintptr_t) a & ~(uintptr_t) (MM_PAGE - 1));
  uint32_t used = s->used;
  mfree (md, a);		/* ignored */
  if (s->used != used || mmalloc (md, 64) != NULL)
    _exit (6);
  _exit (0);
}

static void
frees_into_a_damaged_heap_are_ignored (void **state)
{
  (void) state;
  char err[512];
  int st = tu_child (damaged_heap, NULL, err, sizeof err);
  if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
    fail_msg ("status 0x%x, stderr: %s", st, err);
  assert_non_null (strstr (err, "damaged"));
}

/* An entry that went stale (here: its heap's slabs taken back, as mmcheckf
   does, between the fast path's check and the refill) must not take a
   slab: the fast free trusts owners, and a slab owned through a stale entry
   would be freed into without the checks now due.  */
static void
stale_entry_takes_no_slab (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  struct mm_desc *d = mm_desc_of (md);
  mfree (md, mmalloc (md, 64));	/* the entry exists */
  struct mm_tce *e = mm_tc_self->cur;
  assert_ptr_equal (e->d, d);
  mm_lock_all (d);
  mm_tc_drop_heap (d);
  mm_unlock_all (d);
  assert_int_equal (d->nowned, 0);
  errno = 0;
  assert_null (mm_tc_refill (e, mm_size_class (3000)));
  assert_int_equal (errno, EAGAIN);
  assert_int_equal (d->nowned, 0);
  /* The public path notices and allocates by the locked path.  */
  void *p = mmalloc (md, 3000);
  assert_non_null (p);
  mfree (md, p);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

/* A thread using more heaps than its cache has entries (MM_TC_ENTRIES):
   entries are dropped, least recently used first, while they own slabs and
   hold recent slots, and made again; no block is lost, given twice or damaged.  */
#define NHEAPS 7
#define KEEP 600

static void
more_heaps_than_cache_entries (void **state)
{
  (void) state;
  void *md[NHEAPS];
  void *keep[NHEAPS][KEEP] = { { 0 } };
  size_t size[NHEAPS][KEEP] = { { 0 } };
  size_t live[NHEAPS] = { 0 };
  for (int h = 0; h < NHEAPS; h++)
    assert_non_null (md[h] = mmalloc_attach (-1, NULL));
  uint64_t seed = 42;
  for (int k = 0; k < 60000; k++)
    {
      /* Runs on one heap, then a jump: every entry is dropped often.  */
      int h = (int) ((k / 7 + (k / 50) * 3) % NHEAPS);
      int i = (int) (xs (&seed) % KEEP);
      if (keep[h][i])
	{
	  if (!tu_holds (keep[h][i], size[h][i], (uint64_t) h * KEEP + i))
	    fail_msg ("heap %d block %d changed", h, i);
	  mfree (md[h], keep[h][i]);
	  keep[h][i] = NULL;
	  live[h]--;
	}
      else
	{
	  size[h][i] = 1 + xs (&seed) % 700;
	  assert_non_null (keep[h][i] = mmalloc (md[h], size[h][i]));
	  tu_fill (keep[h][i], size[h][i], (uint64_t) h * KEEP + i);
	  live[h]++;
	}
    }
  for (int h = 0; h < NHEAPS; h++)
    {
      assert_int_equal (mmstats (md[h]).chunks_used, live[h]);
      assert_heap_ok (md[h]);
      for (int i = 0; i < KEEP; i++)
	if (keep[h][i])
	  {
	    assert_true (tu_holds (keep[h][i], size[h][i], (uint64_t) h * KEEP + i));
	    mfree (md[h], keep[h][i]);
	  }
      assert_int_equal (mmstats (md[h]).chunks_used, 0);
      assert_heap_ok (md[h]);
    }
  /* One allocation per heap in turn: the entries of the last ones remain,
     and the heaps whose entries were dropped have no owned slab left.  */
  for (int h = 0; h < NHEAPS; h++)
    mfree (md[h], mmalloc (md[h], 64));
  for (int h = 0; h < NHEAPS; h++)
    {
      size_t owned = mm_desc_of (md[h])->nowned;
      if (h < NHEAPS - 4 && owned != 0)
	fail_msg ("heap %d: its entry was dropped, yet %zu slabs are owned", h, owned);
      assert_null (mmalloc_detach (md[h]));
    }
}

/* The first page of the slab holding P in D.  */
static uint64_t
slab_off (struct mm_desc *d, const char *p)
{
  uint64_t off = (uint64_t) (p - d->base);
  uint32_t e = mm_pm_get (d, off >> MM_PAGE_SHIFT);
  assert_int_equal (PM_KIND (e), PM_SLAB);
  return ((off >> MM_PAGE_SHIFT) - PM_SLAB_OFF (e)) << MM_PAGE_SHIFT;
}

/* A slab's owner is derived state, which detach clears, but a file can say
   anything: here a clean file whose full slab names this very thread as
   owner, and the flag of its full list.  The fast free trusts the owner;
   what it then writes must still be bounded by what the page map says and
   by slabs this thread owns.  FORGE changes the header further: a class
   that the page map does not give the slab (it indexes this thread's
   lists), or a link to another full slab, which is nobody's.  Either is
   reported as damage, and nothing is written out of bounds or into a slab
   this thread does not own.  */
static void
free_into_forged_owner (void (*forge) (struct mm_slab *, uint64_t other))
{
  int fd = tu_newfile ("forged-owner");
  void *md = mmalloc_attach (fd, NULL);
  assert_non_null (md);
  struct mm_desc *d = mm_desc_of (md);
  char *p = mmalloc (md, 48), *x;
  assert_non_null (p);
  uint64_t soff = slab_off (d, p), other = 0;
  /* Fill P's slab and the next one: full slabs are on no partial list.  */
  while ((x = mmalloc (md, 48)) && (slab_off (d, x) == soff || !other || slab_off (d, x) == other))
    if (slab_off (d, x) != soff)
      other = slab_off (d, x);
  assert_non_null (x);
  assert_null (mmalloc_detach (md));
  struct mm_slab h;
  assert_int_equal (pread (fd, &h, sizeof h, (off_t) soff), (ssize_t) sizeof h);
  assert_int_equal (h.owner, 0);	/* detach cleared it */
  h.owner = mm_tc_self->id;
  h.flags |= MM_SLAB_FULL;
  forge (&h, other);
  assert_int_equal (pwrite (fd, &h, sizeof h, (off_t) soff), (ssize_t) sizeof h);
  md = mmalloc_attach (fd, NULL);
  if (!md)			/* refused at attach: also not trusted */
    {
      assert_int_equal (errno, MMALLOC_ECORRUPT);
      close (fd);
      return;
    }
  void *r = mmalloc (md, 48);	/* this heap's entry is the current one,
				   with a slab of the class of its own */
  assert_non_null (r);
  mfree (md, p);
  errno = 0;
  assert_null (mmalloc (md, 16));
  assert_int_equal (errno, MMALLOC_ECORRUPT);
  assert_null (mmalloc_detach (md));
  close (fd);
}

static void
forge_class (struct mm_slab *h, uint64_t other)
{
  (void) other;
  h->cls = 200;
}

static void
forge_link (struct mm_slab *h, uint64_t other)
{
  h->prev = 0;
  h->next = other;
}

static void
forged_slab_owner_with_a_wrong_class_is_not_trusted (void **state)
{
  (void) state;
  free_into_forged_owner (forge_class);
}

static void
forged_slab_owner_with_a_link_to_another_slab_is_not_trusted (void **state)
{
  (void) state;
  free_into_forged_owner (forge_link);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (blocks_freed_by_other_threads_keep_the_heap_whole),
    cmocka_unit_test (exiting_threads_give_their_slabs_back),
    cmocka_unit_test (cache_of_a_detached_heap_is_never_used),
    cmocka_unit_test (forced_checking_applies_to_the_cached_fast_path),
    cmocka_unit_test (free_through_a_detached_descriptor_is_refused),
    cmocka_unit_test (forged_slab_owner_with_a_wrong_class_is_not_trusted),
    cmocka_unit_test (forged_slab_owner_with_a_link_to_another_slab_is_not_trusted),
    cmocka_unit_test (free_through_a_descriptor_reused_by_a_failed_attach_is_refused),
    cmocka_unit_test (frees_into_a_damaged_heap_are_ignored),
    cmocka_unit_test (more_heaps_than_cache_entries),
    cmocka_unit_test (stale_entry_takes_no_slab),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
