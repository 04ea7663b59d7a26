/* test-alloc.c -- mmalloc, mfree, mcalloc, mrealloc and mmalloc_usable_size:
   alignment, sizes, contents kept across resizing, failures, churn, and heaps
   far larger than 4 GiB.  */
#include "testutil.h"

#include <stdbool.h>
#include <stdint.h>

#define KiB ((size_t) 1 << 10)
#define MiB ((size_t) 1 << 20)
#define GiB ((size_t) 1 << 30)

/* --- helpers -------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t
rng (void)
{
  return tu_rnd (&rng_state);
}

static int
cmp_ptr (const void *a, const void *b)
{
  uintptr_t x = (uintptr_t) * (void *const *) a, y = (uintptr_t) * (void *const *) b;
  return x < y ? -1 : x > y;
}

/* --- alignment and sizes ---------------------------------------------------- */

static void
every_pointer_is_16_aligned_for_sizes_0_to_70000 (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  enum { MAXN = 4096 };
  static void *live[MAXN];
  size_t n = 0;
  for (size_t size = 0; size <= 70000; size += size < 2048 ? 1 : 97)
    {
      assert_true (n < MAXN);
      void *p = mmalloc (md, size);
      assert_non_null (p);
      assert_int_equal ((uintptr_t) p % 16, 0);
      live[n++] = p;
    }
  for (size_t i = n; i-- > 0;)
    mfree (md, live[i]);
  assert_int_equal (mmstats (md).chunks_used, 0);
  tu_end_heap (md);
}

static void
mmalloc_zero_gives_unique_freeable_pointers (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  enum { N = 2000 };
  static void *p[N], *sorted[N];
  for (int i = 0; i < N; i++)
    {
      p[i] = mmalloc (md, 0);
      assert_non_null (p[i]);
      assert_int_equal ((uintptr_t) p[i] % 16, 0);
      sorted[i] = p[i];
    }
  qsort (sorted, N, sizeof sorted[0], cmp_ptr);
  for (int i = 1; i < N; i++)
    assert_true (sorted[i - 1] != sorted[i]);
  assert_int_equal (mmstats (md).chunks_used, N);
  for (int i = 0; i < N; i++)
    mfree (md, p[i]);
  assert_int_equal (mmstats (md).chunks_used, 0);
  tu_end_heap (md);
}

static const size_t probe_sizes[] = {
  0, 1, 15, 16, 17, 31, 100, 127, 128, 129, 160, 161, 255, 256, 257, 1000, 4095,
  4096, 4097, 8000, 12289, 16383, 16384, 16385, 20000, 32768, 65535, 65536, 70000,
  100001, 1 << 20
};

/* Several blocks of each size in a row, each filled over its whole usable size
   with its own pattern: no block's usable bytes overlap another's.  */
static void
usable_size_covers_request_and_every_usable_byte_is_writable (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  enum { K = 9 };
  for (size_t s = 0; s < sizeof probe_sizes / sizeof probe_sizes[0]; s++)
    {
      size_t size = probe_sizes[s];
      void *p[K];
      size_t u[K];
      for (int i = 0; i < K; i++)
	{
	  p[i] = mmalloc (md, size);
	  assert_non_null (p[i]);
	  u[i] = mmalloc_usable_size (md, p[i]);
	  assert_true (u[i] >= size);
	  assert_true (u[i] > 0);
	  tu_fill (p[i], u[i], size * 100 + (size_t) i);
	}
      for (int i = 0; i < K; i++)
	assert_true (tu_holds (p[i], u[i], size * 100 + (size_t) i));
      assert_heap_ok (md);
      for (int i = 0; i < K; i++)
	mfree (md, p[i]);
    }
  tu_end_heap (md);
}

/* Size classes are at most 25% apart, large blocks are whole pages.  */
static void
usable_size_wastes_at_most_a_quarter_or_a_page (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  for (size_t size = 0; size <= 16384 + 3 * 4096; size++)
    {
      void *p = mmalloc (md, size);
      assert_non_null (p);
      size_t u = mmalloc_usable_size (md, p);
      assert_true (u >= size);
      if (size <= 16384)
	{
	  size_t slack = size / 4 > 16 ? size / 4 : 16;
	  if (u - size > slack)
	    fail_msg ("size %zu: usable %zu wastes more than %zu", size, u, slack);
	}
      else if (u - size >= 4096)
	fail_msg ("size %zu: usable %zu wastes a page or more", size, u);
      mfree (md, p);
    }
  tu_end_heap (md);
}

static void
usable_size_of_null_is_zero (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  assert_int_equal (mmalloc_usable_size (md, NULL), 0);
  tu_end_heap (md);
}

/* --- mrealloc keeps contents ---------------------------------------------- */

/* Resize a FROM-byte block to TO bytes; the first min(FROM, TO) bytes survive
   and the new block is usable up to TO.  With BLOCK, another block sits right
   after the first, so that a large block cannot grow in place.  */
static void
check_resize (void *md, size_t from, size_t to, bool block)
{
  uint64_t tag = from * 7919 + to;
  char *p = mmalloc (md, from);
  assert_non_null (p);
  void *blocker = block ? mmalloc (md, from) : NULL;
  if (block)
    assert_non_null (blocker);
  tu_fill (p, from, tag);
  char *q = mrealloc (md, p, to);
  if (!q)
    fail_msg ("mrealloc %zu -> %zu failed", from, to);
  assert_int_equal ((uintptr_t) q % 16, 0);
  size_t keep = from < to ? from : to;
  if (!tu_holds (q, keep, tag))
    fail_msg ("mrealloc %zu -> %zu lost contents", from, to);
  assert_true (mmalloc_usable_size (md, q) >= to);
  tu_fill (q, to, tag + 1);
  assert_heap_ok (md);
  if (blocker)
    mfree (md, blocker);
  mfree (md, q);
}

static void
mrealloc_keeps_contents_small_to_small (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  static const size_t s[] = { 0, 1, 16, 17, 100, 129, 1000, 4096, 9000, 16384 };
  size_t n = sizeof s / sizeof s[0];
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++)
      check_resize (md, s[i], s[j], false);
  assert_int_equal (mmstats (md).chunks_used, 0);
  tu_end_heap (md);
}

static void
mrealloc_keeps_contents_small_to_large (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  static const size_t from[] = { 0, 1, 100, 5000, 16384 };
  static const size_t to[] = { 16385, 20000, 70000, 1 << 20, 5 << 20 };
  for (size_t i = 0; i < sizeof from / sizeof from[0]; i++)
    for (size_t j = 0; j < sizeof to / sizeof to[0]; j++)
      check_resize (md, from[i], to[j], false);
  assert_int_equal (mmstats (md).chunks_used, 0);
  tu_end_heap (md);
}

static void
mrealloc_keeps_contents_large_to_large (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  static const size_t s[] = { 16385, 20000, 65536, 70000, 300000, 1 << 20, 3 << 20 };
  size_t n = sizeof s / sizeof s[0];
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++)
      {
	check_resize (md, s[i], s[j], false);	/* in place where it can */
	check_resize (md, s[i], s[j], true);	/* must move to grow */
      }
  assert_int_equal (mmstats (md).chunks_used, 0);
  tu_end_heap (md);
}

static void
mrealloc_keeps_contents_large_to_small (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  static const size_t from[] = { 16385, 20000, 70000, 1 << 20 };
  static const size_t to[] = { 0, 1, 100, 5000, 16384 };
  for (size_t i = 0; i < sizeof from / sizeof from[0]; i++)
    for (size_t j = 0; j < sizeof to / sizeof to[0]; j++)
      check_resize (md, from[i], to[j], false);
  assert_int_equal (mmstats (md).chunks_used, 0);
  tu_end_heap (md);
}

static void
mrealloc_null_acts_as_mmalloc (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  static const size_t s[] = { 0, 1, 100, 16384, 70000 };
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
    {
      struct mstats before = mmstats (md);
      void *p = mrealloc (md, NULL, s[i]);
      assert_non_null (p);
      assert_int_equal ((uintptr_t) p % 16, 0);
      size_t u = mmalloc_usable_size (md, p);
      assert_true (u >= s[i]);
      tu_fill (p, u, i);
      struct mstats after = mmstats (md);
      assert_int_equal (after.chunks_used, before.chunks_used + 1);
      assert_int_equal (after.bytes_used, before.bytes_used + u);
      mfree (md, p);
    }
  assert_int_equal (mmstats (md).chunks_used, 0);
  tu_end_heap (md);
}

static void
mrealloc_to_zero_leaves_a_minimal_block (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  void *z = mmalloc (md, 0);
  assert_non_null (z);
  size_t minimal = mmalloc_usable_size (md, z);
  mfree (md, z);
  static const size_t s[] = { 1, 100, 5000, 70000 };
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
    {
      void *p = mmalloc (md, s[i]);
      assert_non_null (p);
      void *q = mrealloc (md, p, 0);
      assert_non_null (q);
      assert_int_equal (mmalloc_usable_size (md, q), minimal);
      assert_int_equal (mmstats (md).chunks_used, 1);
      mfree (md, q);
    }
  tu_end_heap (md);
}

/* A size that cannot be had: the block stays as it was, readable and freeable.  */
static void
mrealloc_failure_leaves_block_intact (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  static const size_t from[] = { 100, 5000, 70000, 3 << 20 };
  static const size_t huge[] = {
    SIZE_MAX, SIZE_MAX - 4096, PTRDIFF_MAX, (size_t) 1 << 62,
    ((size_t) 128 << 30) + 1, ((size_t) 128 << 30) + 4096
  };
  for (size_t i = 0; i < sizeof from / sizeof from[0]; i++)
    for (int at_top = 0; at_top < 2; at_top++)
      for (size_t j = 0; j < sizeof huge / sizeof huge[0]; j++)
	{
	  char *p = mmalloc (md, from[i]);
	  assert_non_null (p);
	  void *after = at_top ? NULL : mmalloc (md, 100000);
	  size_t u = mmalloc_usable_size (md, p);
	  tu_fill (p, u, i * 10 + j);
	  struct mstats before = mmstats (md);
	  errno = 0;
	  void *q = mrealloc (md, p, huge[j]);
	  int e = errno;
	  if (q)
	    fail_msg ("mrealloc (%zu -> %zu) succeeded", from[i], huge[j]);
	  assert_int_equal (e, ENOMEM);
	  assert_int_equal (mmalloc_errno (md), ENOMEM);
	  assert_int_equal (mmalloc_usable_size (md, p), u);
	  assert_true (tu_holds (p, u, i * 10 + j));
	  struct mstats st = mmstats (md);
	  assert_int_equal (st.chunks_used, before.chunks_used);
	  assert_int_equal (st.bytes_used, before.bytes_used);
	  assert_heap_ok (md);
	  mfree (md, p);
	  mfree (md, after);
	}
  assert_int_equal (mmstats (md).chunks_used, 0);
  tu_end_heap (md);
}

/* --- mcalloc ----------------------------------------------------------------- */

static void
mcalloc_zeroes_memory_that_was_dirty (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  static const size_t sizes[] = { 1, 16, 100, 1000, 5000, 16384, 20000, 40000 };
  enum { N = 64 };
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
    {
      size_t size = sizes[s];
      void *old[N], *p[N];
      for (int i = 0; i < N; i++)
	{
	  old[i] = mmalloc (md, size);
	  assert_non_null (old[i]);
	  memset (old[i], 0xab, mmalloc_usable_size (md, old[i]));
	}
      for (int i = 0; i < N; i++)
	mfree (md, old[i]);
      int reused = 0;
      for (int i = 0; i < N; i++)
	{
	  p[i] = mcalloc (md, 1, size);
	  assert_non_null (p[i]);
	  if (!tu_all_bytes (p[i], size, 0))
	    fail_msg ("mcalloc (1, %zu) returned dirty memory", size);
	  for (int k = 0; k < N; k++)
	    reused += p[i] == old[k];
	}
      /* The test means something only if freed memory came back.  */
      assert_true (reused > 0);
      for (int i = 0; i < N; i++)
	mfree (md, p[i]);
    }
  tu_end_heap (md);
}

/* (On memory that was written: a fresh page reads zero anyway.)  */
static void
mcalloc_multiplies_count_by_size (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  unsigned char *dirty = mmalloc (md, 37000);
  assert_non_null (dirty);
  memset (dirty, 0xab, 37000);
  mfree (md, dirty);
  unsigned char *p = mcalloc (md, 1000, 37);
  assert_ptr_equal (p, dirty);
  assert_true (mmalloc_usable_size (md, p) >= 37000);
  assert_true (tu_all_bytes (p, 37000, 0));
  memset (p, 1, 37000);
  mfree (md, p);
  tu_end_heap (md);
}

static void
mcalloc_overflow_fails_with_enomem (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  static const size_t pairs[][2] = {
    { SIZE_MAX / 2 + 1, 2 }, { 2, SIZE_MAX / 2 + 1 }, { SIZE_MAX, SIZE_MAX },
    { (size_t) 1 << 32, (size_t) 1 << 32 }, { SIZE_MAX / 3 + 1, 3 },
    { 65537, SIZE_MAX / 65536 }, { SIZE_MAX, 2 },
  };
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
    {
      errno = 0;
      void *p = mcalloc (md, pairs[i][0], pairs[i][1]);
      int e = errno;
      if (p)
	fail_msg ("mcalloc (%zu, %zu) succeeded", pairs[i][0], pairs[i][1]);
      assert_int_equal (e, ENOMEM);
      assert_int_equal (mmalloc_errno (md), ENOMEM);
    }
  assert_int_equal (mmstats (md).chunks_used, 0);
  tu_end_heap (md);
}

/* --- sizes no heap can hold ---------------------------------------------------- */

static const size_t huge_sizes[] = {
  SIZE_MAX, SIZE_MAX - 4096, SIZE_MAX - 16, PTRDIFF_MAX, (size_t) 1 << 62,
  ((size_t) 128 << 30) + 1, ((size_t) 128 << 30) + 4096, (size_t) 256 << 30,
};
#define NHUGE (sizeof huge_sizes / sizeof huge_sizes[0])

/* Make the heap's remembered error something other than ENOMEM.  */
static void
set_einval (void *md)
{
  assert_null (mmemalign (md, tu_hidden_size (3), 10));
  assert_int_equal (mmalloc_errno (md), EINVAL);
}

static void
mmalloc_huge_size_fails_with_enomem (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  for (size_t i = 0; i < NHUGE; i++)
    {
      set_einval (md);
      errno = 0;
      void *p = mmalloc (md, huge_sizes[i]);
      int e = errno;
      if (p)
	fail_msg ("mmalloc (%zu) succeeded", huge_sizes[i]);
      assert_int_equal (e, ENOMEM);
      assert_int_equal (mmalloc_errno (md), ENOMEM);
    }
  /* The heap still works.  */
  void *p = mmalloc (md, 100);
  assert_non_null (p);
  mfree (md, p);
  assert_int_equal (mmstats (md).chunks_used, 0);
  tu_end_heap (md);
}

static void
mrealloc_huge_size_fails_with_enomem (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  for (size_t i = 0; i < NHUGE; i++)
    {
      /* NULL (acts as mmalloc), a small and a large block.  */
      void *blocks[3] = { NULL, mmalloc (md, 50), mmalloc (md, 50000) };
      for (int b = 0; b < 3; b++)
	{
	  set_einval (md);
	  errno = 0;
	  void *p = mrealloc (md, blocks[b], huge_sizes[i]);
	  int e = errno;
	  if (p)
	    fail_msg ("mrealloc (%p, %zu) succeeded", blocks[b], huge_sizes[i]);
	  assert_int_equal (e, ENOMEM);
	  assert_int_equal (mmalloc_errno (md), ENOMEM);
	}
      mfree (md, blocks[1]);
      mfree (md, blocks[2]);
    }
  assert_int_equal (mmstats (md).chunks_used, 0);
  tu_end_heap (md);
}

static void
mmemalign_huge_size_fails_with_enomem (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  static const size_t aligns[] = { 1, 16, 64, 4096, 1 << 20, 1 << 30 };
  for (size_t i = 0; i < NHUGE; i++)
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++)
      {
	set_einval (md);
	errno = 0;
	void *p = mmemalign (md, aligns[a], huge_sizes[i]);
	int e = errno;
	if (p)
	  fail_msg ("mmemalign (%zu, %zu) succeeded", aligns[a], huge_sizes[i]);
	assert_int_equal (e, ENOMEM);
	assert_int_equal (mmalloc_errno (md), ENOMEM);
      }
  assert_int_equal (mmstats (md).chunks_used, 0);
  tu_end_heap (md);
}

/* --- mfree ------------------------------------------------------------------ */

static void
mfree_null_does_nothing (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  void *keep = mmalloc (md, 100);
  assert_non_null (keep);
  set_einval (md);
  struct mstats before = mmstats (md);
  errno = 12345;
  mfree (md, NULL);
  assert_int_equal (errno, 12345);
  assert_int_equal (mmalloc_errno (md), EINVAL);
  struct mstats after = mmstats (md);
  assert_memory_equal (&before, &after, sizeof before);
  mfree (md, keep);
  tu_end_heap (md);
}

/* --- many blocks ---------------------------------------------------------------- */

static size_t
churn_size (void)
{
  uint64_t r = rng ();
  unsigned pick = (unsigned) (r % 100);
  r >>= 8;
  if (pick < 85)
    return (size_t) (r % 257);		/* mostly small */
  if (pick < 97)
    return (size_t) (r % 4097);
  return (size_t) (r % (64 * KiB + 1));	/* a tail to 64 KiB */
}

/* ~10,000 live blocks, ~200,000 operations with a fixed seed; every block holds
   a pattern derived from its index and generation, checked before it goes.  */
static void
random_churn_keeps_every_block_intact (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  enum { SLOTS = 10000, OPS = 200000 };
  static char *ptr[SLOTS];
  static size_t len[SLOTS];
  static uint32_t gen[SLOTS];
  memset (ptr, 0, sizeof ptr);
  rng_state = 0x2545f4914f6cdd1dULL;
  size_t live = 0, bad = 0;
  for (long op = 0; op < OPS; op++)
    {
      size_t i = (size_t) (rng () % SLOTS);
      uint64_t tag = ((uint64_t) i << 32) | gen[i];
      if (!ptr[i])
	{
	  len[i] = churn_size ();
	  ptr[i] = mmalloc (md, len[i]);
	  assert_non_null (ptr[i]);
	  assert_int_equal ((uintptr_t) ptr[i] % 16, 0);
	  tu_fill (ptr[i], len[i], tag);
	  live++;
	}
      else if (rng () % 8 == 0)
	{			/* resize: the common prefix survives */
	  size_t n = churn_size ();
	  char *q = mrealloc (md, ptr[i], n);
	  assert_non_null (q);
	  size_t keep = n < len[i] ? n : len[i];
	  bad += !tu_holds (q, keep, tag);
	  gen[i]++;
	  ptr[i] = q;
	  len[i] = n;
	  tu_fill (q, n, ((uint64_t) i << 32) | gen[i]);
	}
      else
	{
	  bad += !tu_holds (ptr[i], len[i], tag);
	  mfree (md, ptr[i]);
	  ptr[i] = NULL;
	  gen[i]++;
	  live--;
	}
      if (op % 50000 == 0)
	assert_heap_ok (md);
    }
  assert_int_equal (bad, 0);
  assert_true (live > SLOTS / 3);
  assert_int_equal (mmstats (md).chunks_used, live);
  assert_heap_ok (md);
  for (size_t i = 0; i < SLOTS; i++)
    if (ptr[i])
      {
	bad += !tu_holds (ptr[i], len[i], ((uint64_t) i << 32) | gen[i]);
	mfree (md, ptr[i]);
      }
  assert_int_equal (bad, 0);
  assert_int_equal (mmstats (md).chunks_used, 0);
  assert_int_equal (mmstats (md).bytes_used, 0);
  tu_end_heap (md);
}

/* --- big heaps ---------------------------------------------------------------- */

static void
heap_grows_past_4_gib (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  size_t size = 5 * GiB;
  char *p = mmalloc (md, size);
  assert_non_null (p);
  p[0] = 1;
  p[size - 1] = 2;
  assert_true (mmalloc_usable_size (md, p) >= size);
  assert_true (mmstats (md).bytes_total > size);
  /* Blocks beyond the first 4 GiB of the heap work as well.  */
  char *q = mmalloc (md, 1 * MiB);
  assert_non_null (q);
  assert_true (q > p + 4 * GiB);
  tu_fill (q, MiB, 42);
  assert_true (tu_holds (q, MiB, 42));
  assert_int_equal (mmalloc_usable_size (md, q), MiB);
  assert_heap_ok (md);
  assert_int_equal (p[0], 1);
  assert_int_equal (p[size - 1], 2);
  mfree (md, q);
  mfree (md, p);
  assert_int_equal (mmstats (md).chunks_used, 0);
  tu_end_heap (md);
}

/* 64 GiB of blocks, one byte touched in each, so that the test stays fast.
   Under AddressSanitizer the same total is used: the heap is plain mmap'ed
   memory ASan does not shadow-allocate, and the instrumented stores touch only
   a few shadow pages.  */
static void
heap_grows_to_64_gib (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  enum { N = 64 };
  static char *blk[N];
  size_t total = 0;
  for (int i = 0; i < N; i++)
    {
      blk[i] = mmalloc (md, GiB);
      if (!blk[i])
	fail_msg ("block %d of 1 GiB refused (%s) after %zu bytes", i,
		  strerror (errno), total);
      blk[i][(size_t) i * 4096 % GiB] = (char) i;
      total += GiB;
    }
  assert_true (total >= 64 * GiB);
  struct mstats st = mmstats (md);
  assert_true (st.bytes_total >= 64 * GiB);
  assert_int_equal (st.chunks_used, N);
  assert_int_equal (st.bytes_used, 64 * GiB);
  for (int i = 0; i < N; i++)
    assert_int_equal (blk[i][(size_t) i * 4096 % GiB], (char) i);
  assert_heap_ok (md);
  for (int i = 0; i < N; i++)
    mfree (md, blk[i]);
  assert_int_equal (mmstats (md).chunks_used, 0);
  tu_end_heap (md);
}

/* Freed space comes back: another round of the same large blocks does not make
   the heap much larger.  */
static void
freed_large_blocks_are_reused (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  enum { N = 16 };
  char *blk[N];
  for (int i = 0; i < N; i++)
    assert_non_null (blk[i] = mmalloc (md, GiB));
  size_t peak = mmstats (md).bytes_total;
  for (int i = 0; i < N; i++)
    mfree (md, blk[i]);
  for (int round = 0; round < 4; round++)
    {
      for (int i = 0; i < N; i++)
	{
	  blk[i] = mmalloc (md, GiB);
	  assert_non_null (blk[i]);
	  blk[i][0] = 1;
	}
      size_t now = mmstats (md).bytes_total;
      if (now > peak + GiB)
	fail_msg ("round %d: heap grew from %zu to %zu bytes", round, peak, now);
      for (int i = 0; i < N; i++)
	mfree (md, blk[i]);
    }
  tu_end_heap (md);
}

static void
freeing_a_large_block_at_the_top_shrinks_the_heap (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  void *small = mmalloc (md, 100);
  assert_non_null (small);
  size_t base = mmstats (md).bytes_total;
  char *p = mmalloc (md, 100 * MiB);
  assert_non_null (p);
  memset (p, 0x11, 100 * MiB);
  struct mstats grown = mmstats (md);
  assert_true (grown.bytes_total >= base + 100 * MiB);
  mfree (md, p);
  struct mstats shrunk = mmstats (md);
  if (shrunk.bytes_total > grown.bytes_total - 99 * MiB)
    fail_msg ("bytes_total only went from %zu to %zu", grown.bytes_total,
	      shrunk.bytes_total);
  assert_true (shrunk.bytes_total < base + 2 * MiB);
  assert_int_equal (shrunk.chunks_used, 1);
  mfree (md, small);
  tu_end_heap (md);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (every_pointer_is_16_aligned_for_sizes_0_to_70000),
    cmocka_unit_test (mmalloc_zero_gives_unique_freeable_pointers),
    cmocka_unit_test (usable_size_covers_request_and_every_usable_byte_is_writable),
    cmocka_unit_test (usable_size_wastes_at_most_a_quarter_or_a_page),
    cmocka_unit_test (usable_size_of_null_is_zero),
    cmocka_unit_test (mrealloc_keeps_contents_small_to_small),
    cmocka_unit_test (mrealloc_keeps_contents_small_to_large),
    cmocka_unit_test (mrealloc_keeps_contents_large_to_large),
    cmocka_unit_test (mrealloc_keeps_contents_large_to_small),
    cmocka_unit_test (mrealloc_null_acts_as_mmalloc),
    cmocka_unit_test (mrealloc_to_zero_leaves_a_minimal_block),
    cmocka_unit_test (mrealloc_failure_leaves_block_intact),
    cmocka_unit_test (mcalloc_zeroes_memory_that_was_dirty),
    cmocka_unit_test (mcalloc_multiplies_count_by_size),
    cmocka_unit_test (mcalloc_overflow_fails_with_enomem),
    cmocka_unit_test (mmalloc_huge_size_fails_with_enomem),
    cmocka_unit_test (mrealloc_huge_size_fails_with_enomem),
    cmocka_unit_test (mmemalign_huge_size_fails_with_enomem),
    cmocka_unit_test (mfree_null_does_nothing),
    cmocka_unit_test (random_churn_keeps_every_block_intact),
    cmocka_unit_test (heap_grows_past_4_gib),
    cmocka_unit_test (heap_grows_to_64_gib),
    cmocka_unit_test (freed_large_blocks_are_reused),
    cmocka_unit_test (freeing_a_large_block_at_the_top_shrinks_the_heap),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
