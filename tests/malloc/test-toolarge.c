/* test-toolarge.c -- requests no heap can satisfy, on every entry point.

   In the spirit of glibc's tst-malloc-too-large, tst-calloc,
   tst-reallocarray, tst-memalign, tst-posix_memalign, tst-valloc and
   tst-pvalloc: sizes near SIZE_MAX and PTRDIFF_MAX (and every size past what
   any heap can hold) fail with NULL and ENOMEM, never wrap around to a small
   block; posix_memalign returns ENOMEM (and sets errno to it, as the C
   library does) or EINVAL (errno untouched) and leaves its output alone;
   a failed realloc leaves the old block as it was.  */
#include "mtest.h"

/* Every size here fails: a heap spans at most 128 GiB, and past 2^38 bytes
   no run of its page map could describe the block anyway.  */
static size_t sizes[128];
static int nsizes;

static void
add (size_t n)
{
  sizes[nsizes++] = n;
}

static void
make_sizes (void)
{
  if (nsizes)
    return;
  size_t page = mt_page ();
  for (size_t i = 0; i <= 8; i++)
    add (SIZE_MAX - i);
  add (SIZE_MAX - 15);
  add (SIZE_MAX - 16);
  add (SIZE_MAX - 63);
  add (SIZE_MAX - page + 1);
  add (SIZE_MAX - page);
  add (SIZE_MAX - 2 * page);
  add (SIZE_MAX - 16384);
  add (SIZE_MAX - (1u << 20));
  add (SIZE_MAX / 2);
  add (SIZE_MAX / 2 + 1);
  add (SIZE_MAX / 2 + 2);
  add ((size_t) PTRDIFF_MAX);
  add ((size_t) PTRDIFF_MAX + 1);
  add ((size_t) PTRDIFF_MAX - 1);
  add ((size_t) PTRDIFF_MAX - 16);
  add ((size_t) PTRDIFF_MAX - page);
  add ((size_t) PTRDIFF_MAX - page + 1);
  add ((size_t) PTRDIFF_MAX - (1u << 20));
  add ((size_t) 1 << 62);
  add ((size_t) 1 << 56);
  add ((size_t) 1 << 48);
  add ((size_t) 1 << 44);
  add ((size_t) 1 << 40);
  add (((size_t) 1 << 40) + 1);
  add ((size_t) 1 << 39);
  add (((size_t) 1 << 39) - page);
  /* Within a page-map run's reach but beyond a heap's 128 GiB span.  */
  add ((size_t) 255 << 30);
  add ((size_t) 200 << 30);
  add (((size_t) 128 << 30) + 1);
}

#define expect_enomem(call) \
  do { errno = 0; void *r_ = (call); \
    if (r_) print_message ("%s returned %p\n", #call, r_); \
    assert_null (r_); assert_int_equal (errno, ENOMEM); } while (0)

static void
malloc_fails_with_enomem (void **state)
{
  (void) state;
  make_sizes ();
  for (int i = 0; i < nsizes; i++)
    expect_enomem (malloc (mt_size (sizes[i])));
  /* Still usable afterwards.  */
  void *p = malloc (100);
  assert_non_null (p);
  free (p);
  assert_heap_ok (NULL);
}

static void
calloc_fails_with_enomem (void **state)
{
  (void) state;
  make_sizes ();
  for (int i = 0; i < nsizes; i++)
    {
      size_t n = sizes[i];
      expect_enomem (calloc (mt_size (1), mt_size (n)));
      expect_enomem (calloc (mt_size (n), mt_size (1)));
      /* Products that overflow size_t: must not wrap to a small block.  */
      expect_enomem (calloc (mt_size (n), mt_size (n)));
      expect_enomem (calloc (mt_size (2), mt_size (n)));
      expect_enomem (calloc (mt_size (n), mt_size (16)));
    }
  /* Overflow to exactly zero and to small values.  */
  expect_enomem (calloc (mt_size ((size_t) 1 << 32), mt_size ((size_t) 1 << 32)));
  expect_enomem (calloc (mt_size (((size_t) 1 << 32) + 1), mt_size ((size_t) 1 << 32)));
  expect_enomem (calloc (mt_size (SIZE_MAX / 2 + 1), mt_size (2)));
  expect_enomem (calloc (mt_size (SIZE_MAX / 3 + 1), mt_size (3)));
  expect_enomem (calloc (mt_size (SIZE_MAX / 16 + 1), mt_size (16)));
  expect_enomem (calloc (mt_size ((size_t) PTRDIFF_MAX), mt_size (2)));
  expect_enomem (calloc (mt_size (65537), mt_size (SIZE_MAX / 65536)));
  /* Large but not overflowing products past every heap.  */
  expect_enomem (calloc (mt_size ((size_t) 1 << 20), mt_size ((size_t) 1 << 20)));
  expect_enomem (calloc (mt_size (SIZE_MAX / 2), mt_size (2)));
  void *p = calloc (3, 5);
  assert_non_null (p);
  assert_true (mt_all (p, 15, 0));
  free (p);
}

/* realloc of a live block to an impossible size: NULL, ENOMEM, and the block
   is intact (contents, usable size) and can still be resized and freed.  */
static void
realloc_fails_and_keeps_the_block (void **state)
{
  (void) state;
  make_sizes ();
  static const size_t start[] = { 1, 24, 100, 5000, 70000, (size_t) 3 << 20 };
  for (size_t k = 0; k < sizeof start / sizeof *start; k++)
    {
      size_t n = start[k];
      unsigned char *p = malloc (n);
      assert_non_null (p);
      mt_fill (p, n, k + 1);
      size_t usable = malloc_usable_size (p);
      for (int i = 0; i < nsizes; i++)
	{
	  expect_enomem (realloc (mt_ptr (p), mt_size (sizes[i])));
	  assert_int_equal (mt_check (p, n, k + 1), n);
	  assert_int_equal (malloc_usable_size (p), usable);
	}
      unsigned char *q = realloc (p, n + 1000);
      assert_non_null (q);
      assert_int_equal (mt_check (q, n, k + 1), n);
      free (q);
    }
  for (int i = 0; i < nsizes; i++)
    expect_enomem (realloc (NULL, mt_size (sizes[i])));
}

static void
reallocarray_fails_and_keeps_the_block (void **state)
{
  (void) state;
  make_sizes ();
  unsigned char *p = malloc (256);
  assert_non_null (p);
  mt_fill (p, 256, 77);
  for (int i = 0; i < nsizes; i++)
    {
      size_t n = sizes[i];
      expect_enomem (reallocarray (mt_ptr (p), mt_size (n), mt_size (1)));
      expect_enomem (reallocarray (mt_ptr (p), mt_size (1), mt_size (n)));
      expect_enomem (reallocarray (mt_ptr (p), mt_size (n), mt_size (n)));	/* overflow */
      expect_enomem (reallocarray (mt_ptr (p), mt_size (2), mt_size (n)));
      expect_enomem (reallocarray (mt_ptr (p), mt_size (n), mt_size (8)));
      expect_enomem (reallocarray (NULL, mt_size (n), mt_size (3)));
      assert_int_equal (mt_check (p, 256, 77), 256);
    }
  /* Products that wrap to 0 or to a small value must not succeed.  */
  expect_enomem (reallocarray (mt_ptr (p), mt_size ((size_t) 1 << 32),
				mt_size ((size_t) 1 << 32)));
  expect_enomem (reallocarray (mt_ptr (p), mt_size (SIZE_MAX / 2 + 2), mt_size (2)));
  expect_enomem (reallocarray (NULL, mt_size (SIZE_MAX / 2 + 1), mt_size (2)));
  assert_int_equal (mt_check (p, 256, 77), 256);
  /* The working cases.  */
  unsigned char *q = reallocarray (mt_ptr (p), 100, 10);
  assert_non_null (q);
  assert_int_equal (mt_check (q, 256, 77), 256);
  assert_true (malloc_usable_size (q) >= 1000);
  q = reallocarray (q, 10, 10);
  assert_non_null (q);
  assert_int_equal (mt_check (q, 100, 77), 100);
  free (q);
  q = reallocarray (NULL, 7, 9);
  assert_non_null (q);
  assert_true (malloc_usable_size (q) >= 63);
  free (q);
}

static const size_t aligns[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 4096, 8192, 1 << 16,
  1 << 20, 1 << 24, 1 << 30 };
#define NALIGNS (sizeof aligns / sizeof *aligns)

static void
memalign_fails_with_enomem (void **state)
{
  (void) state;
  make_sizes ();
  for (size_t a = 0; a < NALIGNS; a++)
    for (int i = 0; i < nsizes; i++)
      expect_enomem (memalign (mt_size (aligns[a]), mt_size (sizes[i])));
  /* Alignments themselves too large for any heap, with a small size.  */
  expect_enomem (memalign (mt_size (SIZE_MAX / 2 + 1), mt_size (1)));
  expect_enomem (memalign (mt_size ((size_t) 1 << 62), mt_size (1)));
  expect_enomem (memalign (mt_size ((size_t) 1 << 48), mt_size (100)));
  expect_enomem (memalign (mt_size ((size_t) 1 << 40), mt_size ((size_t) 1 << 40)));
}

static void
aligned_alloc_fails_with_enomem (void **state)
{
  (void) state;
  make_sizes ();
  for (size_t a = 0; a < NALIGNS; a++)
    for (int i = 0; i < nsizes; i++)
      expect_enomem (aligned_alloc (mt_size (aligns[a]), mt_size (sizes[i])));
  expect_enomem (aligned_alloc (mt_size (SIZE_MAX / 2 + 1), mt_size (1)));
  expect_enomem (aligned_alloc (mt_size ((size_t) 1 << 50), mt_size (4096)));
}

static void
valloc_and_pvalloc_fail_with_enomem (void **state)
{
  (void) state;
  make_sizes ();
  for (int i = 0; i < nsizes; i++)
    {
      expect_enomem (valloc (mt_size (sizes[i])));
      expect_enomem (pvalloc (mt_size (sizes[i])));
    }
  /* pvalloc rounds up to a page: that rounding must not wrap to 0.  */
  size_t page = mt_page ();
  for (size_t k = 0; k < page; k += page / 8)
    expect_enomem (pvalloc (mt_size (SIZE_MAX - k)));
  expect_enomem (pvalloc (mt_size (SIZE_MAX - page + 2)));
}

/* posix_memalign: ENOMEM for sizes too large, *out untouched; EINVAL for
   every alignment that is not a power of two multiple of sizeof (void *).  */
static void
posix_memalign_fails_and_leaves_output (void **state)
{
  (void) state;
  make_sizes ();
  void *const sentinel = (void *) (uintptr_t) 0x1234567;
  for (size_t a = 0; a < NALIGNS; a++)
    {
      if (aligns[a] < sizeof (void *))
	continue;
      for (int i = 0; i < nsizes; i++)
	{
	  void *out = sentinel;
	  errno = 0;
	  int r = posix_memalign (&out, mt_size (aligns[a]), mt_size (sizes[i]));
	  if (r != ENOMEM)
	    print_message ("posix_memalign (%zu, %#zx) = %d\n", aligns[a], sizes[i], r);
	  assert_int_equal (r, ENOMEM);
	  assert_int_equal (errno, ENOMEM);	/* as the C library leaves it */
	  assert_ptr_equal (out, sentinel);
	}
    }
  void *out = sentinel;
  errno = 0;
  assert_int_equal (posix_memalign (&out, mt_size (SIZE_MAX / 2 + 1), 1), ENOMEM);
  assert_int_equal (errno, ENOMEM);
  assert_ptr_equal (out, sentinel);
}

static void
posix_memalign_rejects_bad_alignments (void **state)
{
  (void) state;
  void *const sentinel = (void *) (uintptr_t) 0x7654321;
  const size_t bad[] = { 0, 1, 2, 3, sizeof (void *) / 2, sizeof (void *) - 1,
    sizeof (void *) + 1, 12, 24, 48, 96, 100, 4095, 4097, 3 << 20, SIZE_MAX,
    SIZE_MAX / 2, SIZE_MAX - 1, (SIZE_MAX / 2 + 1) | 1 };
  const size_t lens[] = { 0, 1, 16, 4096, SIZE_MAX };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++)
      {
	void *out = sentinel;
	int saved = errno = 4242;
	int r = posix_memalign (&out, mt_size (bad[i]), mt_size (lens[k]));
	if (r != EINVAL)
	  print_message ("posix_memalign (%#zx, %#zx) = %d\n", bad[i], lens[k], r);
	assert_int_equal (r, EINVAL);
	assert_ptr_equal (out, sentinel);
	assert_int_equal (errno, saved);
      }
  /* The valid ones from sizeof (void *) up.  */
  for (size_t a = sizeof (void *); a <= 8192; a *= 2)
    {
      void *out = sentinel;
      assert_int_equal (posix_memalign (&out, a, 40), 0);
      assert_ptr_not_equal (out, sentinel);
      assert_int_equal ((uintptr_t) out % a, 0);
      free (out);
    }
}

/* memalign and aligned_alloc with an alignment that is not a power of two:
   rounded up to the next one, as the C library does (0 and 1 give the usual
   alignment); only an alignment that cannot be rounded (above SIZE_MAX / 2
   + 1) fails, with EINVAL, and SIZE_MAX / 2 rounds to 2^63, which no heap
   has: ENOMEM.  */
static void
memalign_rounds_alignments_up (void **state)
{
  (void) state;
  typedef void *(*fn_t) (size_t, size_t);
  const fn_t fns[] = { memalign, aligned_alloc };
  const size_t odd[] = { 0, 1, 3, 6, 24, 48, 100, 4095, 4097, 3 << 20 };
  for (int f = 0; f < 2; f++)
    {
      for (size_t i = 0; i < sizeof odd / sizeof *odd; i++)
	{
	  size_t want = 16;
	  while (want < odd[i])
	    want *= 2;
	  errno = 0;
	  void *p = fns[f] (mt_size (odd[i]), 64);
	  if (!p)
	    print_message ("%s (%zu, 64): NULL, %s\n", f ? "aligned_alloc" : "memalign",
			   odd[i], strerror (errno));
	  assert_non_null (p);
	  assert_int_equal (errno, 0);
	  assert_int_equal ((uintptr_t) p % want, 0);
	  assert_true (malloc_usable_size (p) >= 64);
	  memset (p, 0x3c, 64);
	  free (p);
	}
      const size_t bad[] = { SIZE_MAX, SIZE_MAX - 1, SIZE_MAX / 2 + 2, (SIZE_MAX / 2 + 1) | 1 };
      for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
	{
	  errno = 0;
	  assert_null (fns[f] (mt_size (bad[i]), 64));
	  assert_int_equal (errno, EINVAL);
	}
      expect_enomem (fns[f] (mt_size (SIZE_MAX / 2), 64));
    }
}

/* After all the failures the heap is whole and its figures unchanged.  */
static void
failures_leave_no_trace (void **state)
{
  (void) state;
  make_sizes ();
  struct mstats before = mmstats (NULL);
  for (int i = 0; i < nsizes; i++)
    {
      free (malloc (mt_size (sizes[i])));
      free (calloc (mt_size (sizes[i]), 2));
      free (memalign (4096, mt_size (sizes[i])));
      free (valloc (mt_size (sizes[i])));
    }
  struct mstats after = mmstats (NULL);
  assert_int_equal (after.chunks_used, before.chunks_used);
  assert_int_equal (after.bytes_used, before.bytes_used);
  assert_heap_ok (NULL);
}

int
main (void)
{
  mt_require_preload ();
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (malloc_fails_with_enomem),
    cmocka_unit_test (calloc_fails_with_enomem),
    cmocka_unit_test (realloc_fails_and_keeps_the_block),
    cmocka_unit_test (reallocarray_fails_and_keeps_the_block),
    cmocka_unit_test (memalign_fails_with_enomem),
    cmocka_unit_test (aligned_alloc_fails_with_enomem),
    cmocka_unit_test (valloc_and_pvalloc_fail_with_enomem),
    cmocka_unit_test (posix_memalign_fails_and_leaves_output),
    cmocka_unit_test (posix_memalign_rejects_bad_alignments),
    cmocka_unit_test (memalign_rounds_alignments_up),
    cmocka_unit_test (failures_leave_no_trace),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
