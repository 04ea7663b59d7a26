/* test-osfail.c -- every failing OS call gives a clean error.

   The OS layer can make its Nth call fail (mm_os_fail_at).  For each N, a
   sequence of attach, growth, sync and detach runs with that call failing
   with ENOMEM, ENOSPC or EIO: each step either succeeds or reports the
   injected error, the heap stays consistent, and it re-attaches with the
   data that was published before the failure.  make stress (MMALLOC_STRESS)
   fails each call with each error; make check each call with one of them,
   in turn.  */
#include "testutil.h"
#include "mmprivate.h"

#define BLOCKS 64

/* The scenario; returns how far it got.  Blocks that were allocated carry
   their index in their first byte and are listed under key 0.  */
static int
scenario (const char *path, int err)
{
  int fd = open (path, O_RDWR);
  assert_true (fd >= 0);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  if (!md)
    {
      assert_int_equal (errno, err);
      return 0;
    }
  unsigned char **list = mmalloc_getkey (md, 0);
  assert_non_null (list);
  int steps = 1;
  for (int i = 0; i < BLOCKS; i++)
    {
      if (list[i])
	continue;
      size_t size = (size_t) 4096 << (i % 10);	/* up to 2 MiB: growth */
      unsigned char *p = mmalloc (md, size);
      if (!p)
	{
	  assert_int_equal (errno, err);
	  assert_int_equal (mmalloc_errno (md), err);
	  break;
	}
      p[0] = (unsigned char) i;
      p[size - 1] = (unsigned char) i;
      list[i] = p;
      steps++;
    }
  if (mmalloc_sync (md) != 0)
    assert_int_equal (errno, err);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  return steps;
}

static void
every_failing_os_call_gives_a_clean_error (void **state)
{
  (void) state;
  static const int errs[] = { ENOMEM, ENOSPC, EIO };
  enum { NERR = sizeof errs / sizeof errs[0] };
  for (unsigned e = 0; e < NERR; e++)
    for (long n = 1; n <= 40; n++)
      {
	if (!tu_stress () && n % NERR != e)
	  continue;
	const char *path = tu_path ("osfail.heap");
	int fd = tu_newfile ("osfail.heap");
	void *md = mmalloc_attach (fd, NULL);
	close (fd);
	assert_non_null (md);
	unsigned char **list = mcalloc (md, BLOCKS, sizeof *list);
	assert_non_null (list);
	mmalloc_setkey (md, 0, list);
	assert_null (mmalloc_detach (md));

	mm_os_fail_at (n, errs[e]);
	scenario (path, errs[e]);
	mm_os_fail_at (0, 0);

	/* Whatever failed, the file re-attaches whole with what was kept.  */
	md = tu_reattach (path);
	assert_heap_ok (md);
	list = mmalloc_getkey (md, 0);
	for (int i = 0; i < BLOCKS; i++)
	  if (list[i])
	    {
	      size_t size = (size_t) 4096 << (i % 10);
	      assert_int_equal (list[i][0], i);
	      assert_int_equal (list[i][size - 1], i);
	      assert_true (mmalloc_usable_size (md, list[i]) >= size);
	    }
	assert_null (mmalloc_detach (md));
      }
}

static void
failing_anonymous_growth_gives_enomem_and_keeps_the_heap (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  void *keep = mmalloc (md, 100);
  assert_non_null (keep);
  /* Growth makes a few calls (a larger reservation first, then exactly
     what is needed, then the commit): each failing in turn gives ENOMEM or
     is worked around, and the commit's failure is not.  */
  int failed = 0;
  for (long n = 1; n <= 4; n++)
    {
      mm_os_fail_at (n, ENOMEM);
      errno = 0;
      void *big = mmalloc (md, 64 << 20);
      mm_os_fail_at (0, 0);
      if (big)
	mfree (md, big);
      else
	{
	  assert_int_equal (errno, ENOMEM);
	  failed++;
	}
      assert_heap_ok (md);
    }
  assert_true (failed > 0);
  void *big = mmalloc (md, 64 << 20);	/* and works once the OS agrees */
  assert_non_null (big);
  mfree (md, big);
  mfree (md, keep);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (every_failing_os_call_gives_a_clean_error),
    cmocka_unit_test (failing_anonymous_growth_gives_enomem_and_keeps_the_heap),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
