/* test-stats.c -- mmstats: its counts follow the blocks handed out exactly.  */
#include "testutil.h"

#include <stdint.h>

static void
assert_total_covers (struct mstats st)
{
  if (st.bytes_used + st.bytes_free > st.bytes_total)
    fail_msg ("bytes_used %zu + bytes_free %zu > bytes_total %zu", st.bytes_used,
	      st.bytes_free, st.bytes_total);
}

static void
fresh_heap_has_nothing_used (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  struct mstats st = mmstats (md);
  assert_int_equal (st.chunks_used, 0);
  assert_int_equal (st.bytes_used, 0);
  assert_true (st.bytes_total > 0);
  assert_int_equal (st.bytes_total % 4096, 0);
  assert_total_covers (st);
  tu_end_heap (md);
}

static const size_t stat_sizes[] = {
  0, 1, 16, 17, 100, 129, 1000, 4096, 10000, 16384, 16385, 70000, 1 << 20
};

/* N blocks of one size: chunks_used rises by N, bytes_used by the sum of their
   usable sizes; freeing them puts both back.  */
static void
allocating_n_blocks_adds_n_chunks_and_their_usable_bytes (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  void *keep = mmalloc (md, 333);	/* the heap is not empty */
  assert_non_null (keep);
  enum { N = 50 };
  for (size_t s = 0; s < sizeof stat_sizes / sizeof stat_sizes[0]; s++)
    {
      struct mstats before = mmstats (md);
      void *p[N];
      size_t sum = 0;
      for (int i = 0; i < N; i++)
	{
	  p[i] = mmalloc (md, stat_sizes[s]);
	  assert_non_null (p[i]);
	  sum += mmalloc_usable_size (md, p[i]);
	}
      struct mstats mid = mmstats (md);
      assert_int_equal (mid.chunks_used, before.chunks_used + N);
      assert_int_equal (mid.bytes_used, before.bytes_used + sum);
      assert_total_covers (mid);
      for (int i = 0; i < N; i++)
	mfree (md, p[i]);
      struct mstats after = mmstats (md);
      assert_int_equal (after.chunks_used, before.chunks_used);
      assert_int_equal (after.bytes_used, before.bytes_used);
      assert_total_covers (after);
    }
  mfree (md, keep);
  struct mstats st = mmstats (md);
  assert_int_equal (st.chunks_used, 0);
  assert_int_equal (st.bytes_used, 0);
  tu_end_heap (md);
}

/* Free slots and free page runs are counted: after freeing, what was used is
   free (or given back to the system, which lowers bytes_total).  */
static void
freed_bytes_become_free_or_leave_the_heap (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  enum { N = 200 };
  void *p[N];
  for (int i = 0; i < N; i++)
    assert_non_null (p[i] = mmalloc (md, 64));
  struct mstats full = mmstats (md);
  for (int i = 0; i < N; i += 2)
    mfree (md, p[i]);
  struct mstats half = mmstats (md);
  /* The slabs stay (every other slot is still used): 100 slots became free.  */
  assert_int_equal (half.chunks_used, full.chunks_used - N / 2);
  assert_int_equal (half.bytes_used, full.bytes_used - N / 2 * 64);
  assert_int_equal (half.bytes_free, full.bytes_free + N / 2 * 64);
  assert_int_equal (half.chunks_free, full.chunks_free + N / 2);
  assert_int_equal (half.bytes_total, full.bytes_total);
  assert_total_covers (half);
  for (int i = 1; i < N; i += 2)
    mfree (md, p[i]);
  struct mstats none = mmstats (md);
  assert_int_equal (none.chunks_used, 0);
  assert_int_equal (none.bytes_used, 0);
  assert_total_covers (none);
  /* Every byte that was used or free is free now (a slot, or a page run
     that an empty slab became), or left the heap.  */
  assert_true (none.bytes_total <= full.bytes_total);
  size_t gone = full.bytes_total - none.bytes_total;
  if (none.bytes_free + gone < full.bytes_used + full.bytes_free)
    fail_msg ("of %zu bytes used and %zu free, %zu are free and %zu left the heap",
	      full.bytes_used, full.bytes_free, none.bytes_free, gone);
  tu_end_heap (md);
}

/* --- a random sequence, tracked on the side ------------------------------ */

static uint64_t rng_state;

static uint64_t
rng (void)
{
  return tu_rnd (&rng_state);
}

static size_t
rand_size (void)
{
  uint64_t r = rng ();
  switch (r % 10)
    {
    case 0:
      return (size_t) (r >> 8) % 100000;
    case 1:
    case 2:
      return (size_t) (r >> 8) % 20000;
    default:
      return (size_t) (r >> 8) % 600;
    }
}

static void
stats_agree_with_live_blocks_after_random_calls (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  enum { SLOTS = 1500, OPS = 30000 };
  static void *ptr[SLOTS];
  static size_t use[SLOTS];
  memset (ptr, 0, sizeof ptr);
  size_t live = 0, bytes = 0;
  rng_state = 0x9e3779b97f4a7c15ULL;
  for (int op = 0; op < OPS; op++)
    {
      size_t i = (size_t) (rng () % SLOTS);
      unsigned kind = (unsigned) (rng () % 6);
      if (ptr[i])
	{
	  bytes -= use[i];
	  if (kind < 3)
	    {
	      void *q = mrealloc (md, ptr[i], rand_size ());
	      assert_non_null (q);
	      ptr[i] = q;
	    }
	  else
	    {
	      mfree (md, ptr[i]);
	      ptr[i] = NULL;
	      live--;
	    }
	}
      else
	{
	  size_t n = rand_size ();
	  switch (kind)
	    {
	    case 0:
	    case 1:
	      ptr[i] = mmalloc (md, n);
	      break;
	    case 2:
	      ptr[i] = mcalloc (md, 1 + n % 7, n / 7);
	      break;
	    case 3:
	      ptr[i] = mmemalign (md, (size_t) 1 << (rng () % 17), n);
	      break;
	    case 4:
	      ptr[i] = mvalloc (md, n);
	      break;
	    default:
	      ptr[i] = mrealloc (md, NULL, n);
	      break;
	    }
	  assert_non_null (ptr[i]);
	  live++;
	}
      if (ptr[i])
	{
	  use[i] = mmalloc_usable_size (md, ptr[i]);
	  bytes += use[i];
	}
      struct mstats st = mmstats (md);
      if (st.chunks_used != live || st.bytes_used != bytes)
	fail_msg ("op %d: mmstats says %zu blocks, %zu bytes; live: %zu blocks, "
		  "%zu bytes", op, st.chunks_used, st.bytes_used, live, bytes);
      assert_total_covers (st);
    }
  assert_heap_ok (md);
  for (size_t i = 0; i < SLOTS; i++)
    mfree (md, ptr[i]);
  struct mstats st = mmstats (md);
  assert_int_equal (st.chunks_used, 0);
  assert_int_equal (st.bytes_used, 0);
  assert_total_covers (st);
  tu_end_heap (md);
}

/* This program uses the default heap in this test only.  */
static void
mmstats_null_reports_the_default_heap (void **state)
{
  (void) state;
  struct mstats before = mmstats (NULL);
  assert_true (before.bytes_total > 0);
  void *p = mmalloc (NULL, 5000);
  void *q = mmalloc (NULL, 50000);
  assert_non_null (p);
  assert_non_null (q);
  size_t u = mmalloc_usable_size (NULL, p) + mmalloc_usable_size (NULL, q);
  struct mstats mid = mmstats (NULL);
  assert_int_equal (mid.chunks_used, before.chunks_used + 2);
  assert_int_equal (mid.bytes_used, before.bytes_used + u);
  assert_total_covers (mid);
  mfree (NULL, p);
  mfree (NULL, q);
  struct mstats after = mmstats (NULL);
  assert_int_equal (after.chunks_used, before.chunks_used);
  assert_int_equal (after.bytes_used, before.bytes_used);
  assert_heap_ok (NULL);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (fresh_heap_has_nothing_used),
    cmocka_unit_test (allocating_n_blocks_adds_n_chunks_and_their_usable_bytes),
    cmocka_unit_test (freed_bytes_become_free_or_leave_the_heap),
    cmocka_unit_test (stats_agree_with_live_blocks_after_random_calls),
    cmocka_unit_test (mmstats_null_reports_the_default_heap),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
