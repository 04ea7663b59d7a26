/* test-internal.c -- the library's own checks: the verdicts on bad pointers
   and the internal assertions (MM_ASSERT) of the library the tests link.  */
#include "testutil.h"
#include "mmprivate.h"

/* Every verdict has its own words, the ones the misuse tests expect.  */
static void
every_verdict_has_its_own_report (void **state)
{
  (void) state;
  for (int v = MM_OK + 1; v < MM_VERDICTS; v++)
    {
      const char *t = mm_verdict_text ((enum mm_verdict) v);
      assert_non_null (t);
      assert_string_not_equal (t, "bad pointer");
      for (int w = MM_OK + 1; w < v; w++)
	assert_string_not_equal (t, mm_verdict_text ((enum mm_verdict) w));
    }
  assert_string_equal (mm_verdict_text (MM_BAD_NOT_START), "pointer is not the start of a block");
  assert_string_equal (mm_verdict_text (MM_DAMAGED_SLAB), "damaged slab holds pointer");
  assert_string_equal (mm_verdict_text (MM_VERDICTS), "bad pointer");
}

static int aborted;

static void
note_abort (void)
{
  aborted++;
}

/* A misuse verdict runs the heap's abort function and leaves the heap
   working; a damage verdict does not, and stops the heap.  */
static void
misuse_aborts_the_call_and_damage_stops_the_heap (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  assert_int_equal (mmcheck (md, note_abort), 1);
  struct mm_desc *d = mm_desc_of (md);
  void *p = mmalloc (md, 100);
  assert_non_null (p);
  aborted = 0;
  fflush (NULL);
  int saved = dup (2), devnull = open ("/dev/null", O_WRONLY);
  dup2 (devnull, 2);
  mm_bad_block (d, MM_BAD_NOT_START, (char *) p + 16);
  int after_misuse = mm_damaged (d);
  errno = 0;
  mm_bad_block (d, MM_DAMAGED_SLAB, p);
  int err_damage = errno;
  dup2 (saved, 2);
  close (saved);
  close (devnull);
  assert_int_equal (aborted, 1);
  assert_int_equal (after_misuse, 0);
  assert_int_equal (err_damage, MMALLOC_ECORRUPT);
  assert_true (mm_damaged (d));
  assert_null (mmalloc (md, 10));
  assert_int_equal (mmalloc_detach (md), 0);
}

static void
break_an_invariant (void *arg)
{
  struct mm_desc *d = mm_desc_of (arg);
  mm_block_unlock (d, MM_NCLASSES + 1);	/* no such lock */
}

/* The library the tests link checks its invariants: a broken one aborts
   with its file, line and condition.  */
static void
a_broken_invariant_aborts_with_its_place (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  char err[512];
  int st = tu_child (break_an_invariant, md, err, sizeof err);
  assert_true (WIFSIGNALED (st));
  assert_int_equal (WTERMSIG (st), SIGABRT);
  assert_non_null (strstr (err, "mmalloc: internal assertion failed: src/block.c:"));
  assert_non_null (strstr (err, "lockno <= MM_NCLASSES"));
  assert_int_equal (mmalloc_detach (md), 0);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (every_verdict_has_its_own_report),
    cmocka_unit_test (misuse_aborts_the_call_and_damage_stops_the_heap),
    cmocka_unit_test (a_broken_invariant_aborts_with_its_place),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
