/* test-libc.c -- where the drop-in must do what the C library's malloc does,
   not what the m* interface does: realloc (p, 0) frees P and returns NULL
   (mrealloc keeps a minimal block), realloc (NULL, 0) and reallocarray with
   a zero count or size follow from it.  */
#include "mtest.h"

/* Blocks of the process now (mmstats counts every block of the default
   heap, from its bitmaps and page map: a free shows at once).  */
static size_t
live_blocks (void)
{
  return mmstats (NULL).chunks_used;
}

static void
realloc_to_zero_frees (void **state)
{
  (void) state;
  static const size_t sizes[] = { 1, 16, 100, 1000, 5000, 40000, 300000, (size_t) 3 << 20 };
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
    {
      void *p = malloc (sizes[k]);
      assert_non_null (p);
      mt_fill (p, sizes[k], k);
      size_t before = live_blocks ();
      errno = 4321;
      void *q = realloc (mt_ptr (p), mt_size (0));
      assert_null (q);
      assert_int_equal (errno, 4321);	/* no failure: errno untouched */
      assert_int_equal (live_blocks (), before - 1);
    }
  /* Aligned blocks too.  */
  void *p = memalign (4096, 100);
  assert_non_null (p);
  size_t before = live_blocks ();
  assert_null (realloc (mt_ptr (p), mt_size (0)));
  assert_int_equal (live_blocks (), before - 1);
  assert_heap_ok (NULL);
}

static void
realloc_of_null_to_zero_allocates (void **state)
{
  (void) state;
  size_t before = live_blocks ();
  void *p = realloc (NULL, mt_size (0));
  void *q = realloc (NULL, mt_size (0));
  assert_non_null (p);
  assert_non_null (q);
  assert_ptr_not_equal (p, q);
  assert_int_equal (live_blocks (), before + 2);
  free (p);
  free (q);
  assert_int_equal (live_blocks (), before);
}

static void
reallocarray_to_zero_frees (void **state)
{
  (void) state;
  for (int k = 0; k < 2; k++)
    {
      void *p = malloc (200);
      assert_non_null (p);
      size_t before = live_blocks ();
      errno = 99;
      void *q = k ? reallocarray (mt_ptr (p), mt_size (0), mt_size (7))
	: reallocarray (mt_ptr (p), mt_size (7), mt_size (0));
      assert_null (q);
      assert_int_equal (errno, 99);
      assert_int_equal (live_blocks (), before - 1);
    }
  size_t before = live_blocks ();
  void *p = reallocarray (NULL, mt_size (0), mt_size (0));
  assert_non_null (p);
  assert_int_equal (live_blocks (), before + 1);
  free (p);
  assert_heap_ok (NULL);
}

int
main (void)
{
  mt_require_preload ();
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (realloc_to_zero_frees),
    cmocka_unit_test (realloc_of_null_to_zero_allocates),
    cmocka_unit_test (reallocarray_to_zero_frees),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
