/* test-align.c -- aligned allocation through the C library's names, in the
   spirit of glibc's tst-memalign, tst-posix_memalign, tst-aligned-alloc,
   tst-valloc, tst-pvalloc and tst-realloc: every power of two up to 1 GiB on
   memalign, aligned_alloc and posix_memalign, the usable size of aligned
   blocks (all writable), realloc of aligned blocks keeping their contents,
   page alignment and page rounding of valloc and pvalloc.  */
#include "mtest.h"

typedef void *(*alloc_fn) (size_t align, size_t size);

static void *
via_posix_memalign (size_t align, size_t size)
{
  void *p = (void *) (uintptr_t) 0x55;
  int r = posix_memalign (&p, align < sizeof (void *) ? sizeof (void *) : align, size);
  if (r)
    {
      assert_ptr_equal (p, (void *) (uintptr_t) 0x55);
      errno = r;
      return NULL;
    }
  return p;
}

static void *
via_memalign (size_t align, size_t size)
{
  return memalign (align, size);
}

static void *
via_aligned_alloc (size_t align, size_t size)
{
  return aligned_alloc (align, size);
}

static void
check_aligned (void *p, size_t align, size_t size)
{
  assert_non_null (p);
  if ((uintptr_t) p % align)
    print_message ("%p is not aligned to %zu (size %zu)\n", p, align, size);
  assert_int_equal ((uintptr_t) p % align, 0);
  assert_int_equal ((uintptr_t) p % 16, 0);
  size_t u = malloc_usable_size (p);
  assert_true (u >= size);
  /* The usable bytes are writable: the first and last two pages fully, one
     byte in each page between (every 1 MiB in blocks past 4 MiB, so that
     blocks of 1 GiB stay cheap).  */
  unsigned char *c = p;
  size_t head = u < 8192 ? u : 8192;
  size_t stride = u > ((size_t) 4 << 20) ? (size_t) 1 << 20 : 4096;
  memset (c, 0x5a, head);
  for (size_t i = head; i + 8192 < u; i += stride)
    c[i] = 0x5a;
  size_t tail = u - head < 8192 ? u - head : 8192;
  memset (c + u - tail, 0x5a, tail);
}

static void
each_alignment_up_to_1gib (alloc_fn fn, const char *name)
{
  for (unsigned sh = 0; sh <= 30; sh++)
    {
      size_t a = (size_t) 1 << sh;
      const size_t sizes[] = { 1, a / 2 + 1, a, a + 1, 3 * a / 2 + 17, 100 };
      void *p[6];
      for (int k = 0; k < 6; k++)
	{
	  errno = 0;
	  p[k] = fn (a, sizes[k]);
	  if (!p[k])
	    print_message ("%s (%zu, %zu): NULL, %s\n", name, a, sizes[k], strerror (errno));
	  check_aligned (p[k], a, sizes[k]);
	}
      for (int k = 0; k < 6; k++)
	for (int j = k + 1; j < 6; j++)
	  assert_ptr_not_equal (p[k], p[j]);
      for (int k = 0; k < 6; k++)
	free (p[k]);
    }
  assert_heap_ok (NULL);
}

static void
memalign_up_to_1gib (void **state)
{
  (void) state;
  each_alignment_up_to_1gib (via_memalign, "memalign");
}

static void
aligned_alloc_up_to_1gib (void **state)
{
  (void) state;
  each_alignment_up_to_1gib (via_aligned_alloc, "aligned_alloc");
}

static void
posix_memalign_up_to_1gib (void **state)
{
  (void) state;
  each_alignment_up_to_1gib (via_posix_memalign, "posix_memalign");
}

/* Many live aligned blocks of mixed alignments at once: all aligned, none
   overlapping (each filled with its own pattern, then checked).  */
static void
many_live_aligned_blocks (void **state)
{
  (void) state;
  enum { N = 1500 };
  static unsigned char *p[N];
  static size_t use[N];
  for (int i = 0; i < N; i++)
    {
      size_t a = (size_t) 1 << (mt_rand () % 17);
      size_t n = (size_t) (mt_rand () % (i % 10 ? 600 : 70000));
      p[i] = (i % 3 == 0) ? memalign (a, n)
	: (i % 3 == 1) ? aligned_alloc (a, n) : via_posix_memalign (a, n);
      assert_non_null (p[i]);
      assert_int_equal ((uintptr_t) p[i] % a, 0);
      use[i] = malloc_usable_size (p[i]);
      assert_true (use[i] >= n);
      mt_fill (p[i], use[i], (uintptr_t) i);
    }
  for (int i = 0; i < N; i++)
    assert_int_equal (mt_check (p[i], use[i], (uintptr_t) i), use[i]);
  for (int i = 0; i < N; i++)
    free (p[(i * 11) % N]);
  assert_heap_ok (NULL);
}

/* realloc of aligned blocks: the contents survive growing, shrinking and
   moving; the result is an ordinary block (16-aligned) with enough room.  */
static void
realloc_of_aligned_blocks (void **state)
{
  (void) state;
  const size_t aligns[] = { 32, 64, 128, 256, 4096, 65536, 1 << 20, 1 << 24 };
  const size_t sizes[] = { 1, 40, 300, 5000, 20000, 300000, (size_t) 3 << 20 };
  for (size_t ai = 0; ai < sizeof aligns / sizeof *aligns; ai++)
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
      {
	size_t a = aligns[ai], n = sizes[si];
	unsigned char *p = memalign (a, n);
	check_aligned (p, a, n);
	size_t u = malloc_usable_size (p);
	mt_fill (p, u, a + n);
	/* Grow: the usable bytes move with it (as many as fit).  */
	size_t m = n * 3 + 1000, keep = u < m ? u : m;
	unsigned char *q = realloc (p, m);
	assert_non_null (q);
	assert_int_equal (mt_check (q, keep, a + n), keep);
	assert_true (malloc_usable_size (q) >= m);
	mt_fill (q, m, a + n + 1);
	/* Shrink below the original size.  */
	size_t s = n / 3 + 1;
	unsigned char *r = realloc (q, s);
	assert_non_null (r);
	assert_int_equal (mt_check (r, s, a + n + 1), s);
	assert_true (malloc_usable_size (r) >= s);
	free (r);
	/* Shrink an aligned block directly, and realloc to the same size.  */
	p = aligned_alloc (a, n);
	check_aligned (p, a, n);
	mt_fill (p, n, 9);
	q = realloc (p, n);
	assert_non_null (q);
	assert_int_equal (mt_check (q, n, 9), n);
	r = realloc (q, 1);
	assert_non_null (r);
	assert_int_equal (mt_check (r, 1, 9), 1);
	free (r);
      }
  assert_heap_ok (NULL);
}

static void
valloc_and_pvalloc_are_page_aligned (void **state)
{
  (void) state;
  size_t page = mt_page ();
  const size_t sizes[] = { 0, 1, 100, page - 1, page, page + 1, 3 * page, 100000, 1 << 20 };
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
    {
      size_t n = sizes[k];
      void *v = valloc (n);
      check_aligned (v, page, n);
      void *pv = pvalloc (n);
      size_t rounded = n ? (n + page - 1) / page * page : page;
      check_aligned (pv, page, rounded);	/* the whole rounded size is usable */
      assert_true (malloc_usable_size (pv) >= rounded);
      void *v2 = realloc (v, n + 5000);
      assert_non_null (v2);
      free (v2);
      free (pv);
    }
}

/* Aligned blocks freed by another thread than the one that made them.  */
static void *
free_them (void *arg)
{
  void **p = arg;
  for (int i = 0; i < 200; i++)
    {
      free (p[i]);
      p[i] = NULL;
    }
  return NULL;
}

static void
aligned_blocks_freed_by_another_thread (void **state)
{
  (void) state;
  static void *p[200];
  /* A first thread: the C library keeps what it allocated for it (its
     stack cache) after it exits.  */
  pthread_t t;
  assert_int_equal (pthread_create (&t, NULL, free_them, p), 0);
  assert_int_equal (pthread_join (t, NULL), 0);
  struct mstats before = mmstats (NULL);
  for (int i = 0; i < 200; i++)
    {
      size_t a = (size_t) 16 << (i % 15);
      p[i] = memalign (a, (size_t) (i * 37 % 5000));
      assert_non_null (p[i]);
      assert_int_equal ((uintptr_t) p[i] % a, 0);
    }
  assert_int_equal (pthread_create (&t, NULL, free_them, p), 0);
  assert_int_equal (pthread_join (t, NULL), 0);
  struct mstats after = mmstats (NULL);
  assert_int_equal (after.chunks_used, before.chunks_used);
  assert_heap_ok (NULL);
}

int
main (void)
{
  mt_require_preload ();
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (memalign_up_to_1gib),
    cmocka_unit_test (aligned_alloc_up_to_1gib),
    cmocka_unit_test (posix_memalign_up_to_1gib),
    cmocka_unit_test (many_live_aligned_blocks),
    cmocka_unit_test (realloc_of_aligned_blocks),
    cmocka_unit_test (valloc_and_pvalloc_are_page_aligned),
    cmocka_unit_test (aligned_blocks_freed_by_another_thread),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
