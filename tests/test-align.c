/* test-align.c -- mmemalign and mvalloc: alignment, bad alignments, resizing
   and measuring aligned blocks.  */
#include "testutil.h"

#include <stdbool.h>
#include <stdint.h>

static void
fill (void *p, size_t n, unsigned seed)
{
  unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    c[i] = (unsigned char) (seed * 131u + i * 7u + (i >> 8));
}

static bool
holds (const void *p, size_t n, unsigned seed)
{
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    if (c[i] != (unsigned char) (seed * 131u + i * 7u + (i >> 8)))
      return false;
  return true;
}

static const size_t align_sizes[] = { 0, 1, 100, 5000, 70000 };
#define NSIZES (sizeof align_sizes / sizeof align_sizes[0])

/* Every power of two from 1 to 1 GiB, each with a few sizes: aligned, usable
   over its requested size, freeable.  A small block stays live across the
   calls so that the heap is not always empty.  */
static void
mmemalign_every_power_of_two_up_to_1_gib (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  void *other = mmalloc (md, 24);
  assert_non_null (other);
  for (unsigned shift = 0; shift <= 30; shift++)
    {
      size_t align = (size_t) 1 << shift;
      void *p[NSIZES];
      for (size_t s = 0; s < NSIZES; s++)
	{
	  p[s] = mmemalign (md, align, align_sizes[s]);
	  if (!p[s])
	    fail_msg ("mmemalign (%zu, %zu): %s", align, align_sizes[s], strerror (errno));
	  if ((uintptr_t) p[s] % align || (uintptr_t) p[s] % 16)
	    fail_msg ("mmemalign (%zu, %zu) gave %p", align, align_sizes[s], p[s]);
	  assert_true (mmalloc_usable_size (md, p[s]) >= align_sizes[s]);
	  fill (p[s], align_sizes[s], shift * 8 + (unsigned) s);
	}
      for (size_t s = 0; s < NSIZES; s++)
	assert_true (holds (p[s], align_sizes[s], shift * 8 + (unsigned) s));
      assert_int_equal (mmstats (md).chunks_used, 1 + NSIZES);
      assert_heap_ok (md);
      for (size_t s = 0; s < NSIZES; s++)
	mfree (md, p[s]);
      assert_int_equal (mmstats (md).chunks_used, 1);
    }
  mfree (md, other);
  tu_end_heap (md);
}

/* Aligned blocks of many sizes kept live together: none overlaps another.  */
static void
mmemalign_blocks_do_not_overlap (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  enum { N = 600 };
  static unsigned char *p[N];
  static size_t len[N];
  for (int i = 0; i < N; i++)
    {
      size_t align = (size_t) 1 << (i % 17);
      len[i] = (size_t) (i * 37) % 9000;
      p[i] = mmemalign (md, align, len[i]);
      assert_non_null (p[i]);
      assert_int_equal ((uintptr_t) p[i] % align, 0);
      fill (p[i], len[i], (unsigned) i);
    }
  for (int i = 0; i < N; i++)
    if (!holds (p[i], len[i], (unsigned) i))
      fail_msg ("aligned block %d (%zu bytes) was overwritten", i, len[i]);
  assert_heap_ok (md);
  for (int i = 0; i < N; i++)
    mfree (md, p[i]);
  assert_int_equal (mmstats (md).chunks_used, 0);
  tu_end_heap (md);
}

static void
mmemalign_rejects_non_powers_of_two_with_einval (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  static const size_t bad[] = {
    0, 3, 24, 48, 1000, 4097, 3 << 20, ((size_t) 1 << 30) + 1, SIZE_MAX
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    for (size_t s = 0; s < NSIZES; s++)
      {
	errno = 0;
	void *p = mmemalign (md, bad[i], align_sizes[s]);
	int e = errno;
	if (p)
	  fail_msg ("mmemalign (%zu, %zu) succeeded", bad[i], align_sizes[s]);
	assert_int_equal (e, EINVAL);
	assert_int_equal (mmalloc_errno (md), EINVAL);
      }
  assert_int_equal (mmstats (md).chunks_used, 0);
  tu_end_heap (md);
}

static void
mvalloc_gives_page_aligned_blocks (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  long page = sysconf (_SC_PAGESIZE);
  assert_true (page > 0);
  static const size_t sizes[] = { 0, 1, 16, 100, 4095, 4096, 4097, 16384, 70000, 1 << 20 };
  enum { N = sizeof sizes / sizeof sizes[0] };
  void *p[N];
  for (size_t i = 0; i < N; i++)
    {
      void *small = mmalloc (md, 40);	/* disturb the layout between calls */
      assert_non_null (small);
      p[i] = mvalloc (md, sizes[i]);
      assert_non_null (p[i]);
      assert_int_equal ((uintptr_t) p[i] % (uintptr_t) page, 0);
      assert_true (mmalloc_usable_size (md, p[i]) >= sizes[i]);
      fill (p[i], sizes[i], (unsigned) i);
      mfree (md, small);
    }
  for (size_t i = 0; i < N; i++)
    {
      assert_true (holds (p[i], sizes[i], (unsigned) i));
      mfree (md, p[i]);
    }
  assert_int_equal (mmstats (md).chunks_used, 0);
  tu_end_heap (md);
}

/* mrealloc on an aligned block keeps its contents, growing and shrinking.  */
static void
mrealloc_keeps_contents_of_aligned_blocks (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  static const size_t aligns[] = { 32, 64, 256, 4096, 65536, 1 << 21 };
  static const size_t from[] = { 1, 100, 5000, 70000 };
  static const size_t to[] = { 0, 10, 200, 3000, 20000, 200000 };
  unsigned seed = 0;
  for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++)
    for (size_t f = 0; f < sizeof from / sizeof from[0]; f++)
      for (size_t t = 0; t < sizeof to / sizeof to[0]; t++)
	{
	  seed++;
	  char *p = mmemalign (md, aligns[a], from[f]);
	  assert_non_null (p);
	  fill (p, from[f], seed);
	  char *q = mrealloc (md, p, to[t]);
	  if (!q)
	    fail_msg ("mrealloc of a %zu-aligned block %zu -> %zu failed", aligns[a],
		      from[f], to[t]);
	  size_t keep = from[f] < to[t] ? from[f] : to[t];
	  if (!holds (q, keep, seed))
	    fail_msg ("mrealloc of a %zu-aligned block %zu -> %zu lost contents",
		      aligns[a], from[f], to[t]);
	  assert_true (mmalloc_usable_size (md, q) >= to[t]);
	  /* ... and back: the common prefix survives a second resize.  */
	  fill (q, to[t], seed + 1000);
	  char *r = mrealloc (md, q, from[f]);
	  assert_non_null (r);
	  keep = from[f] < to[t] ? from[f] : to[t];
	  if (!holds (r, keep, seed + 1000))
	    fail_msg ("mrealloc back %zu -> %zu lost contents", to[t], from[f]);
	  mfree (md, r);
	}
  assert_int_equal (mmstats (md).chunks_used, 0);
  tu_end_heap (md);
}

/* mmalloc_usable_size of an aligned block: at least the size asked for, and
   every usable byte can be written without touching the neighbours.  */
static void
usable_size_of_aligned_blocks_is_all_writable (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  static const size_t aligns[] = { 1, 16, 32, 64, 128, 4096, 8192, 1 << 20 };
  static const size_t sizes[] = { 0, 1, 48, 100, 5000, 16384, 70000 };
  enum { K = 4 };
  for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++)
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
      {
	unsigned char *p[K];
	size_t u[K];
	for (int k = 0; k < K; k++)
	  {
	    p[k] = mmemalign (md, aligns[a], sizes[s]);
	    assert_non_null (p[k]);
	    u[k] = mmalloc_usable_size (md, p[k]);
	    assert_true (u[k] >= sizes[s]);
	    assert_true (u[k] > 0);
	    memset (p[k], 0x40 + k, u[k]);
	  }
	struct mstats st = mmstats (md);
	assert_int_equal (st.chunks_used, K);
	assert_int_equal (st.bytes_used, u[0] + u[1] + u[2] + u[3]);
	for (int k = 0; k < K; k++)
	  for (size_t i = 0; i < u[k]; i++)
	    if (p[k][i] != 0x40 + k)
	      fail_msg ("align %zu size %zu: block %d byte %zu overwritten", aligns[a],
			sizes[s], k, i);
	for (int k = 0; k < K; k++)
	  mfree (md, p[k]);
      }
  tu_end_heap (md);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (mmemalign_every_power_of_two_up_to_1_gib),
    cmocka_unit_test (mmemalign_blocks_do_not_overlap),
    cmocka_unit_test (mmemalign_rejects_non_powers_of_two_with_einval),
    cmocka_unit_test (mvalloc_gives_page_aligned_blocks),
    cmocka_unit_test (mrealloc_keeps_contents_of_aligned_blocks),
    cmocka_unit_test (usable_size_of_aligned_blocks_is_all_writable),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
