/* test-default.c -- the NULL descriptor: the default heap, made on first use,
   never detached, never growing the program break.  */
#include "testutil.h"

#include <stdbool.h>
#include <stdint.h>

/* First in this program, so that creating the default heap is part of it.
   Nothing between the two sbrk (0) calls uses the C library's malloc.  */
static void
default_heap_never_moves_the_program_break (void **state)
{
  (void) state;
  enum { N = 20000 };
  static void *p[N];
  void *brk0 = sbrk (0);
  assert_true (brk0 != (void *) -1);
  uint64_t r = 88172645463325252ULL;
  for (int round = 0; round < 3; round++)
    {
      for (int i = 0; i < N; i++)
	{
	  r ^= r << 13;
	  r ^= r >> 7;
	  r ^= r << 17;
	  size_t n = (size_t) (r % 16 == 0 ? r % 70000 : r % 500);
	  p[i] = mmalloc (NULL, n);
	  assert_non_null (p[i]);
	  memset (p[i], 0x33, n);
	}
      void *big = mmalloc (NULL, (size_t) 64 << 20);
      assert_non_null (big);
      void *grown = mrealloc (NULL, big, (size_t) 100 << 20);
      assert_non_null (grown);
      void *z = mcalloc (NULL, 1000, 1000);
      assert_non_null (z);
      mfree (NULL, z);
      mfree (NULL, grown);
      for (int i = 0; i < N; i++)
	mfree (NULL, p[i]);
    }
  void *brk1 = sbrk (0);
  assert_ptr_equal (brk0, brk1);
  assert_int_equal (mmstats (NULL).chunks_used, 0);
  assert_heap_ok (NULL);
}

static void
null_descriptor_serves_every_call (void **state)
{
  (void) state;
  struct mstats before = mmstats (NULL);
  char *a = mmalloc (NULL, 100);
  assert_non_null (a);
  assert_int_equal ((uintptr_t) a % 16, 0);
  memset (a, 'a', 100);
  char *dirty = mmalloc (NULL, 2000);	/* (a fresh page reads zero anyway) */
  assert_non_null (dirty);
  memset (dirty, 'd', 2000);
  mfree (NULL, dirty);
  unsigned char *c = mcalloc (NULL, 50, 40);
  assert_ptr_equal (c, dirty);
  assert_true (tu_all_bytes (c, 2000, 0));
  char *m = mmemalign (NULL, 1 << 16, 300);
  assert_non_null (m);
  assert_int_equal ((uintptr_t) m % (1 << 16), 0);
  char *v = mvalloc (NULL, 10);
  assert_non_null (v);
  assert_int_equal ((uintptr_t) v % (uintptr_t) sysconf (_SC_PAGESIZE), 0);
  assert_true (mmalloc_usable_size (NULL, a) >= 100);
  assert_true (mmalloc_usable_size (NULL, c) >= 2000);
  assert_true (mmalloc_usable_size (NULL, m) >= 300);
  assert_int_equal (mmalloc_usable_size (NULL, NULL), 0);
  a = mrealloc (NULL, a, 50000);
  assert_non_null (a);
  assert_true (tu_all_bytes (a, 100, 'a'));
  assert_int_equal (mmstats (NULL).chunks_used, before.chunks_used + 4);
  assert_heap_ok (NULL);
  mfree (NULL, a);
  mfree (NULL, c);
  mfree (NULL, m);
  mfree (NULL, v);
  mfree (NULL, NULL);
  struct mstats after = mmstats (NULL);
  assert_int_equal (after.chunks_used, before.chunks_used);
  assert_int_equal (after.bytes_used, before.bytes_used);
  assert_heap_ok (NULL);
}

static void
null_descriptor_remembers_errors (void **state)
{
  (void) state;
  errno = 0;
  assert_null (mmemalign (NULL, tu_hidden_size (24), 10));
  assert_int_equal (errno, EINVAL);
  assert_int_equal (mmalloc_errno (NULL), EINVAL);
  errno = 0;
  assert_null (mmalloc (NULL, tu_hidden_size (SIZE_MAX)));
  assert_int_equal (errno, ENOMEM);
  assert_int_equal (mmalloc_errno (NULL), ENOMEM);
  errno = 0;
  assert_null (mcalloc (NULL, tu_hidden_size (SIZE_MAX / 2 + 1), 2));
  assert_int_equal (errno, ENOMEM);
  assert_heap_ok (NULL);
}

static void
detaching_null_does_nothing (void **state)
{
  (void) state;
  char *keep = mmalloc (NULL, 1000);
  assert_non_null (keep);
  memset (keep, 'k', 1000);
  struct mstats before = mmstats (NULL);
  assert_null (mmalloc_detach (NULL));
  assert_null (mmalloc_detach (NULL));
  /* Same heap, same contents, still serving.  */
  struct mstats after = mmstats (NULL);
  assert_int_equal (after.chunks_used, before.chunks_used);
  assert_int_equal (after.bytes_used, before.bytes_used);
  assert_int_equal (after.bytes_total, before.bytes_total);
  assert_true (tu_all_bytes (keep, 1000, 'k'));
  assert_true (mmalloc_usable_size (NULL, keep) >= 1000);
  void *p = mmalloc (NULL, 5000);
  assert_non_null (p);
  memset (p, 1, 5000);
  assert_int_equal (mmstats (NULL).chunks_used, before.chunks_used + 1);
  mfree (NULL, p);
  mfree (NULL, keep);
  assert_int_equal (mmstats (NULL).chunks_used, before.chunks_used - 1);
  assert_heap_ok (NULL);
}

static void
null_descriptor_is_not_another_heap (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  struct mstats d0 = mmstats (NULL), h0 = mmstats (md);
  void *p = mmalloc (md, 100);
  assert_non_null (p);
  assert_int_equal (mmstats (md).chunks_used, h0.chunks_used + 1);
  assert_int_equal (mmstats (NULL).chunks_used, d0.chunks_used);
  void *q = mmalloc (NULL, 100);
  assert_non_null (q);
  assert_int_equal (mmstats (NULL).chunks_used, d0.chunks_used + 1);
  assert_int_equal (mmstats (md).chunks_used, h0.chunks_used + 1);
  mfree (md, p);
  mfree (NULL, q);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  assert_heap_ok (NULL);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (default_heap_never_moves_the_program_break),
    cmocka_unit_test (null_descriptor_serves_every_call),
    cmocka_unit_test (null_descriptor_remembers_errors),
    cmocka_unit_test (detaching_null_does_nothing),
    cmocka_unit_test (null_descriptor_is_not_another_heap),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
