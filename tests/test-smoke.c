/* test-smoke.c -- the shortest proof that a heap allocates, frees and checks.  */
#include "testutil.h"

static void
anonymous_heap_allocates_and_frees (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  char *p = mmalloc (md, 100);
  assert_non_null (p);
  memset (p, 0x5a, 100);
  assert_heap_ok (md);
  mfree (md, p);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (anonymous_heap_allocates_and_frees),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
