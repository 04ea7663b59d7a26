/* test-compat.c -- mmalloc-compat.h routes this file's malloc, calloc,
   realloc, free, valloc, memalign, aligned_alloc, posix_memalign,
   reallocarray, pvalloc and malloc_usable_size to the default heap.  Every pointer is
   also measured with mmalloc_usable_size (NULL, ...), which reports and aborts
   for a pointer the default heap did not hand out.  */
#include "testutil.h"

#include <stdbool.h>
#include <stdint.h>

#include "mmalloc-compat.h"

static void
malloc_and_free_use_the_default_heap (void **state)
{
  (void) state;
  struct mstats s0 = mmstats (NULL);
  char *p = malloc (1000);
  assert_non_null (p);
  memset (p, 1, 1000);
  struct mstats s1 = mmstats (NULL);
  assert_int_equal (s1.chunks_used, s0.chunks_used + 1);
  size_t u = mmalloc_usable_size (NULL, p);
  assert_true (u >= 1000);
  assert_int_equal (s1.bytes_used, s0.bytes_used + u);
  free (p);
  struct mstats s2 = mmstats (NULL);
  assert_int_equal (s2.chunks_used, s0.chunks_used);
  assert_int_equal (s2.bytes_used, s0.bytes_used);
  free (NULL);
  assert_int_equal (mmstats (NULL).chunks_used, s0.chunks_used);
  assert_heap_ok (NULL);
}

static void
calloc_uses_the_default_heap_and_zeroes (void **state)
{
  (void) state;
  /* Dirty a block first, so that calloc has to clear reused memory.  */
  char *d = malloc (4000);
  assert_non_null (d);
  memset (d, 0xee, 4000);
  free (d);
  struct mstats s0 = mmstats (NULL);
  unsigned char *p = calloc (100, 40);
  assert_non_null (p);
  assert_true (tu_all_bytes (p, 4000, 0));
  assert_true (mmalloc_usable_size (NULL, p) >= 4000);
  assert_int_equal (mmstats (NULL).chunks_used, s0.chunks_used + 1);
  errno = 0;
  assert_null (calloc (tu_hidden_size (SIZE_MAX / 2 + 1), 2));
  assert_int_equal (errno, ENOMEM);
  free (p);
  assert_int_equal (mmstats (NULL).chunks_used, s0.chunks_used);
  assert_heap_ok (NULL);
}

static void
realloc_uses_the_default_heap_and_keeps_contents (void **state)
{
  (void) state;
  struct mstats s0 = mmstats (NULL);
  char *p = realloc (NULL, 100);	/* as malloc */
  assert_non_null (p);
  assert_int_equal (mmstats (NULL).chunks_used, s0.chunks_used + 1);
  memset (p, 'r', 100);
  p = realloc (p, 100000);
  assert_non_null (p);
  assert_true (tu_all_bytes (p, 100, 'r'));
  assert_true (mmalloc_usable_size (NULL, p) >= 100000);
  assert_int_equal (mmstats (NULL).chunks_used, s0.chunks_used + 1);
  p = realloc (p, 10);
  assert_non_null (p);
  assert_true (tu_all_bytes (p, 10, 'r'));
  assert_int_equal (mmstats (NULL).chunks_used, s0.chunks_used + 1);
  free (p);
  assert_int_equal (mmstats (NULL).chunks_used, s0.chunks_used);
  assert_heap_ok (NULL);
}

static void
valloc_and_memalign_use_the_default_heap (void **state)
{
  (void) state;
  struct mstats s0 = mmstats (NULL);
  long page = sysconf (_SC_PAGESIZE);
  char *v = valloc (300);
  assert_non_null (v);
  assert_int_equal ((uintptr_t) v % (uintptr_t) page, 0);
  assert_true (mmalloc_usable_size (NULL, v) >= 300);
  char *m = memalign (1024, 300);
  assert_non_null (m);
  assert_int_equal ((uintptr_t) m % 1024, 0);
  assert_true (mmalloc_usable_size (NULL, m) >= 300);
  memset (v, 1, 300);
  memset (m, 2, 300);
  assert_int_equal (mmstats (NULL).chunks_used, s0.chunks_used + 2);
  errno = 0;
  assert_null (memalign (tu_hidden_size (48), 10));
  assert_int_equal (errno, EINVAL);
  free (v);
  free (m);
  assert_int_equal (mmstats (NULL).chunks_used, s0.chunks_used);
  assert_heap_ok (NULL);
}

/* The other allocating functions of stdlib.h and malloc.h, written in this
   file, give blocks of the default heap too: free (mfree) takes them back,
   as it would abort for a block of the C library's malloc.  */
static void
aligned_alloc_posix_memalign_reallocarray_pvalloc_use_the_default_heap (void **state)
{
  (void) state;
  struct mstats s0 = mmstats (NULL);
  long page = sysconf (_SC_PAGESIZE);
  char *a = aligned_alloc (256, 512);
  assert_non_null (a);
  assert_int_equal ((uintptr_t) a % 256, 0);
  assert_true (mmalloc_usable_size (NULL, a) >= 512);
  void *pm = NULL;
  assert_int_equal (posix_memalign (&pm, 4096, 100), 0);
  assert_non_null (pm);
  assert_int_equal ((uintptr_t) pm % 4096, 0);
  assert_true (malloc_usable_size (pm) >= 100);
  void *untouched = &pm;
  assert_int_equal (posix_memalign (&untouched, 24, 100), EINVAL);
  assert_int_equal (posix_memalign (&untouched, 0, 100), EINVAL);
  assert_int_equal (posix_memalign (&untouched, 64, tu_hidden_size (SIZE_MAX - 4096)), ENOMEM);
  assert_ptr_equal (untouched, &pm);
  int *r = reallocarray (NULL, 10, sizeof (int));
  assert_non_null (r);
  for (int i = 0; i < 10; i++)
    r[i] = i;
  r = reallocarray (r, 1000, sizeof (int));
  assert_non_null (r);
  for (int i = 0; i < 10; i++)
    assert_int_equal (r[i], i);
  int *volatile kept = r;	/* the compiler need not see r reused */
  volatile size_t big = SIZE_MAX / 2;
  errno = 0;
  assert_null (reallocarray (r, big, 4));	/* r is kept */
  assert_int_equal (errno, ENOMEM);
  r = kept;
  assert_int_equal (r[9], 9);
  char *pv = pvalloc (10);
  assert_non_null (pv);
  assert_int_equal ((uintptr_t) pv % (uintptr_t) page, 0);
  assert_true (malloc_usable_size (pv) >= (size_t) page);
  assert_int_equal (malloc_usable_size (NULL), 0);
  assert_int_equal (mmstats (NULL).chunks_used, s0.chunks_used + 4);
  free (a);
  free (pm);
  free (r);
  free (pv);
  assert_int_equal (mmstats (NULL).chunks_used, s0.chunks_used);
  assert_heap_ok (NULL);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (malloc_and_free_use_the_default_heap),
    cmocka_unit_test (calloc_uses_the_default_heap_and_zeroes),
    cmocka_unit_test (realloc_uses_the_default_heap_and_keeps_contents),
    cmocka_unit_test (valloc_and_memalign_use_the_default_heap),
    cmocka_unit_test (aligned_alloc_posix_memalign_reallocarray_pvalloc_use_the_default_heap),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
