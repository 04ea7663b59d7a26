/* test-walk.c -- mmalloc_walk: every allocated block once, in address order,
   with its usable size; beside threads that allocate and free; on read-only
   heaps; on damaged ones an error, never a crash.  */
#include "testutil.h"
#include "mmprivate.h"

#include <pthread.h>
#include <stdint.h>

/* What a walk saw.  */
struct seen
{
  size_t n, cap;
  void **ptr;
  size_t *size;
  int unordered;		/* a block at or below the one before */
};

static int
record (void *ptr, size_t size, void *arg)
{
  struct seen *s = arg;
  if (s->n && (char *) ptr <= (char *) s->ptr[s->n - 1])
    s->unordered = 1;
  if (s->n == s->cap)
    {
      s->cap = s->cap ? 2 * s->cap : 1024;
      s->ptr = realloc (s->ptr, s->cap * sizeof *s->ptr);
      s->size = realloc (s->size, s->cap * sizeof *s->size);
      assert_non_null (s->ptr);
      assert_non_null (s->size);
    }
  s->ptr[s->n] = ptr;
  s->size[s->n++] = size;
  return 0;
}

static void
seen_free (struct seen *s)
{
  free (s->ptr);
  free (s->size);
  memset (s, 0, sizeof *s);
}

/* Index of P in S (sorted), or -1.  */
static long
seen_find (const struct seen *s, const void *p)
{
  size_t lo = 0, hi = s->n;
  while (lo < hi)
    {
      size_t mid = (lo + hi) / 2;
      if ((const char *) s->ptr[mid] < (const char *) p)
	lo = mid + 1;
      else
	hi = mid;
    }
  return lo < s->n && s->ptr[lo] == p ? (long) lo : -1;
}

enum { NB = 3000 };

/* Blocks of many sizes, small and large, aligned and not; every third freed.  */
static void
make_blocks (void *md, void **p, int *live)
{
  for (int i = 0; i < NB; i++)
    {
      size_t size = (size_t) (tu_mix ((uint64_t) i) % 3000);
      if (i % 97 == 0)
	size = 20000 + (size_t) i * 64;
      p[i] = i % 53 == 0 ? mmemalign (md, 256, size) : mmalloc (md, size);
      assert_non_null (p[i]);
      live[i] = 1;
    }
  for (int i = 0; i < NB; i += 3)
    {
      mfree (md, p[i]);
      live[i] = 0;
    }
}

/* The walk saw exactly the live blocks of P, each once, in address order,
   with mmalloc_usable_size's figure.  */
static void
assert_saw_exactly (void *md, const struct seen *s, void **p, const int *live)
{
  assert_false (s->unordered);
  size_t nlive = 0;
  for (int i = 0; i < NB; i++)
    {
      long k = seen_find (s, p[i]);
      if (!live[i])
	{
	  assert_true (k < 0);
	  continue;
	}
      nlive++;
      if (k < 0)
	fail_msg ("block %d (%p) not visited", i, p[i]);
      assert_int_equal (s->size[k], mmalloc_usable_size (md, p[i]));
    }
  assert_int_equal (s->n, nlive);
}

static void
free_live (void *md, void **p, const int *live)
{
  for (int i = 0; i < NB; i++)
    if (live[i])
      mfree (md, p[i]);
}

/* Make the blocks in MD, walk it, check what was seen, free them and end MD.  */
static void
walk_made_blocks (void *md)
{
  static void *p[NB];
  static int live[NB];
  make_blocks (md, p, live);
  struct seen s = { 0 };
  assert_int_equal (mmalloc_walk (md, record, &s), 0);
  assert_saw_exactly (md, &s, p, live);
  seen_free (&s);
  free_live (md, p, live);
  tu_end_heap (md);
}

static void
walk_visits_every_allocated_block_once_in_address_order (void **state)
{
  (void) state;
  walk_made_blocks (tu_new_heap ());
}

static void
walk_of_an_empty_heap_visits_nothing (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  struct seen s = { 0 };
  assert_int_equal (mmalloc_walk (md, record, &s), 0);
  assert_int_equal (s.n, 0);
  void *q = mmalloc (md, 10);
  mfree (md, q);
  assert_int_equal (mmalloc_walk (md, record, &s), 0);
  assert_int_equal (s.n, 0);
  tu_end_heap (md);
}

static int
stop_at_third (void *ptr, size_t size, void *arg)
{
  (void) ptr;
  (void) size;
  return ++*(int *) arg == 3 ? 77 : 0;
}

static void
visitor_return_stops_the_walk_and_is_returned (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  void *q[10];
  for (int i = 0; i < 10; i++)
    q[i] = mmalloc (md, 40);
  int calls = 0;
  assert_int_equal (mmalloc_walk (md, stop_at_third, &calls), 77);
  assert_int_equal (calls, 3);
  for (int i = 0; i < 10; i++)
    mfree (md, q[i]);
  tu_end_heap (md);
}

static void
walk_refuses_a_null_visitor_and_a_bad_descriptor (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  assert_int_equal (mmalloc_walk (md, NULL, NULL), -1);
  assert_int_equal (mmalloc_errno (md), EINVAL);
  tu_end_heap (md);
  struct seen s = { 0 };
  assert_int_equal (mmalloc_walk (md, record, &s), -1);
  assert_int_equal (errno, MMALLOC_EBADDESC);
}

/* The visitor frees every block it is shown and allocates another: the
   walk holds no lock while it runs, and never shows a block twice.  */
struct churn_visit
{
  void *md;
  size_t visits;
  struct seen s;
};

static int
free_and_allocate (void *ptr, size_t size, void *arg)
{
  struct churn_visit *c = arg;
  record (ptr, size, &c->s);
  c->visits++;
  mfree (c->md, ptr);
  assert_non_null (mmalloc (c->md, 24));
  return 0;
}

static void
visitor_may_allocate_and_free_in_the_walked_heap (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  static void *p[NB];
  static int live[NB];
  make_blocks (md, p, live);
  size_t nlive = 0;
  for (int i = 0; i < NB; i++)
    nlive += (size_t) live[i];
  struct churn_visit c = { md, 0, { 0 } };
  assert_int_equal (mmalloc_walk (md, free_and_allocate, &c), 0);
  assert_false (c.s.unordered);
  for (int i = 0; i < NB; i++)
    if (live[i])
      assert_true (seen_find (&c.s, p[i]) >= 0);
  /* The blocks made during the walk may be shown, at most once each.  */
  assert_true (c.visits >= nlive && c.visits <= 2 * nlive);
  seen_free (&c.s);
  assert_heap_ok (md);
  tu_end_heap (md);
}

static void
checked_heap_walk_gives_asked_sizes_and_skips_the_quarantine (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  assert_int_equal (mmcheck (md, NULL), 1);
  walk_made_blocks (md);	/* the freed ones stay in quarantine */
}

static void
read_only_heap_file_walks_as_it_was_written (void **state)
{
  (void) state;
  void *md = tu_new_file_heap ("ro.heap");
  static void *p[NB];
  static int live[NB];
  make_blocks (md, p, live);
  struct seen before = { 0 }, after = { 0 };
  assert_int_equal (mmalloc_walk (md, record, &before), 0);
  assert_null (mmalloc_detach (md));
  int fd = open (tu_path ("ro.heap"), O_RDONLY);
  assert_true (fd >= 0);
  md = mmalloc_attach (fd, NULL);
  assert_non_null (md);
  close (fd);
  assert_int_equal (mmalloc_walk (md, record, &after), 0);
  assert_int_equal (after.n, before.n);
  assert_memory_equal (after.ptr, before.ptr, before.n * sizeof *before.ptr);
  /* Sizes as mmalloc_usable_size gives them in this attachment (under
     valgrind or ASan, the size asked for is known only to the process that
     asked).  */
  assert_saw_exactly (md, &after, p, live);
  seen_free (&before);
  seen_free (&after);
  assert_null (mmalloc_detach (md));
}

/* Threads allocate and free all the time; blocks allocated before the
   walks and kept through them are each seen exactly once by every walk.  */
struct churner
{
  void *md;
  int stop;
  unsigned seed;
};

static void *
churn (void *arg)
{
  struct churner *c = arg;
  void *slot[256] = { 0 };
  uint64_t x = c->seed;
  while (!__atomic_load_n (&c->stop, __ATOMIC_RELAXED))
    {
      x = tu_mix (x + 1);
      unsigned k = (unsigned) (x % 256);
      mfree (c->md, slot[k]);
      size_t size = (x >> 8) % 64 == 0 ? 9000 + (size_t) (x >> 16) % 70000 : (size_t) (x >> 16) % 700;
      slot[k] = mmalloc (c->md, size);
      assert_non_null (slot[k]);
    }
  for (int k = 0; k < 256; k++)
    mfree (c->md, slot[k]);
  return NULL;
}

static void
walk_beside_threads_that_allocate_and_free_sees_kept_blocks_exactly_once (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  static void *p[NB];
  static int live[NB];
  make_blocks (md, p, live);
  struct churner c[3];
  pthread_t t[3];
  for (int i = 0; i < 3; i++)
    {
      c[i] = (struct churner) { md, 0, (unsigned) i + 1 };
      assert_int_equal (pthread_create (&t[i], NULL, churn, &c[i]), 0);
    }
  for (int round = 0; round < 20; round++)
    {
      struct seen s = { 0 };
      assert_int_equal (mmalloc_walk (md, record, &s), 0);
      assert_false (s.unordered);
      for (int i = 0; i < NB; i++)
	if (live[i])
	  {
	    long k = seen_find (&s, p[i]);
	    if (k < 0)
	      fail_msg ("round %d: kept block %d not visited", round, i);
	    assert_int_equal (s.size[k], mmalloc_usable_size (md, p[i]));
	  }
      seen_free (&s);
    }
  for (int i = 0; i < 3; i++)
    {
      __atomic_store_n (&c[i].stop, 1, __ATOMIC_RELAXED);
      assert_int_equal (pthread_join (t[i], NULL), 0);
    }
  free_live (md, p, live);
  tu_end_heap (md);
}

/* The heap's base: the header page below a block of it (every page from
   the base to `top' is mapped).  */
static char *
heap_base_below (void *block)
{
  char *pg = (char *) ((uintptr_t) block & ~(uintptr_t) (MM_PAGE - 1));
  while (memcmp (pg, MM_MAGIC, 8))
    pg -= MM_PAGE;
  return pg;
}

struct damage
{
  int kind;
};

/* In a child: damage the page map or a slab header, then walk.  */
static void
walk_damaged (void *arg)
{
  const struct damage *dm = arg;
  void *md = mmalloc_attach (-1, NULL);
  void *small[100], *big = mmalloc (md, 100000);
  for (int i = 0; i < 100; i++)
    small[i] = mmalloc (md, 48);
  struct mm_desc fake = { .base = heap_base_below (big) };
  uint64_t pg_big = mm_off (&fake, big) >> MM_PAGE_SHIFT;
  uint64_t pg_small = mm_off (&fake, small[50]) >> MM_PAGE_SHIFT;
  uint32_t *e = mm_pm (&fake, pg_small);
  switch (dm->kind)
    {
    case 0:			/* a large block's length past the top */
      *mm_pm (&fake, pg_big) = PM_MAKE (PM_LARGE, PM_HEAD | PM_NMASK);
      break;
    case 1:			/* a slab's magic */
      ((struct mm_slab *) (fake.base + ((pg_small - PM_SLAB_OFF (*e)) << MM_PAGE_SHIFT)))->magic = 7;
      break;
    case 2:			/* a page that belongs to nothing */
      *mm_pm (&fake, pg_big) = PM_MAKE (7, 0);
      break;
    default:			/* the directory names a leaf past the top */
      ((uint32_t *) (fake.base + MM_PAGE))[0] = 0x7fffffff;
    }
  struct seen s = { 0 };
  int r = mmalloc_walk (md, record, &s);
  if (r != -1 || mmalloc_errno (md) != MMALLOC_ECORRUPT)
    _exit (3);
  _exit (0);
}

static void
damaged_heap_walk_reports_corruption_and_does_not_crash (void **state)
{
  (void) state;
  for (int kind = 0; kind < 4; kind++)
    {
      char err[512];
      struct damage dm = { kind };
      int st = tu_child (walk_damaged, &dm, err, sizeof err);
      if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
	fail_msg ("damage %d: status %#x, stderr: %s", kind, st, err);
      assert_non_null (strstr (err, "damaged"));
    }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (walk_visits_every_allocated_block_once_in_address_order),
    cmocka_unit_test (walk_of_an_empty_heap_visits_nothing),
    cmocka_unit_test (visitor_return_stops_the_walk_and_is_returned),
    cmocka_unit_test (walk_refuses_a_null_visitor_and_a_bad_descriptor),
    cmocka_unit_test (visitor_may_allocate_and_free_in_the_walked_heap),
    cmocka_unit_test (checked_heap_walk_gives_asked_sizes_and_skips_the_quarantine),
    cmocka_unit_test (read_only_heap_file_walks_as_it_was_written),
    cmocka_unit_test (walk_beside_threads_that_allocate_and_free_sees_kept_blocks_exactly_once),
    cmocka_unit_test (damaged_heap_walk_reports_corruption_and_does_not_crash),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
