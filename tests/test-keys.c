/* test-keys.c -- the 16 root keys: storage, range, persistence, default heap.  */
#include "testutil.h"

#include <limits.h>

static void
new_heap_has_every_key_null (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  for (int k = 0; k < MMALLOC_KEYS; k++)
    assert_null (mmalloc_getkey (md, k));
  assert_null (mmalloc_detach (md));
}

static void
sixteen_keys_round_trip (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  char *blocks[MMALLOC_KEYS];
  for (int k = 0; k < MMALLOC_KEYS; k++)
    {
      blocks[k] = mmalloc (md, 16 + (size_t) k * 100);
      assert_non_null (blocks[k]);
      assert_int_equal (mmalloc_setkey (md, k, blocks[k]), 1);
    }
  for (int k = 0; k < MMALLOC_KEYS; k++)
    assert_ptr_equal (mmalloc_getkey (md, k), blocks[k]);
  /* Keys hold any value, not only blocks of the heap; overwrite and clear.  */
  assert_int_equal (mmalloc_setkey (md, 7, (void *) (uintptr_t) 0x1234), 1);
  assert_ptr_equal (mmalloc_getkey (md, 7), (void *) (uintptr_t) 0x1234);
  assert_int_equal (mmalloc_setkey (md, 7, NULL), 1);
  assert_null (mmalloc_getkey (md, 7));
  assert_int_equal (mmalloc_setkey (md, 15, (void *) UINTPTR_MAX), 1);
  assert_ptr_equal (mmalloc_getkey (md, 15), (void *) UINTPTR_MAX);
  /* The others did not move.  */
  for (int k = 0; k < 7; k++)
    assert_ptr_equal (mmalloc_getkey (md, k), blocks[k]);
  for (int k = 8; k < 15; k++)
    assert_ptr_equal (mmalloc_getkey (md, k), blocks[k]);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

static const int bad_keys[] = { -1, MMALLOC_KEYS, 16, 17, 1000, INT_MIN, INT_MAX };

static void
keys_out_of_range_are_refused (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  char *p = mmalloc (md, 8);
  assert_non_null (p);
  for (int k = 0; k < MMALLOC_KEYS; k++)
    assert_int_equal (mmalloc_setkey (md, k, p + k), 1);
  for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++)
    {
      errno = 0;
      assert_int_equal (mmalloc_setkey (md, bad_keys[i], p), 0);
      assert_int_equal (errno, EINVAL);
      assert_int_equal (mmalloc_errno (md), EINVAL);
      assert_null (mmalloc_getkey (md, bad_keys[i]));
    }
  /* No refused store landed in a real key.  */
  for (int k = 0; k < MMALLOC_KEYS; k++)
    assert_ptr_equal (mmalloc_getkey (md, k), p + k);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

static void
keys_persist_across_detach_and_attach (void **state)
{
  (void) state;
  int fd = tu_newfile ("keys.heap");
  void *md = mmalloc_attach (fd, NULL);
  assert_non_null (md);
  char *s[MMALLOC_KEYS];
  for (int k = 0; k < MMALLOC_KEYS; k++)
    {
      s[k] = mmalloc (md, 32);
      assert_non_null (s[k]);
      snprintf (s[k], 32, "key number %d", k);
      assert_int_equal (mmalloc_setkey (md, k, s[k]), 1);
    }
  assert_null (mmalloc_detach (md));
  assert_int_equal (close (fd), 0);

  for (int round = 0; round < 2; round++)
    {
      fd = open (tu_path ("keys.heap"), round ? O_RDONLY : O_RDWR);
      assert_true (fd >= 0);
      md = mmalloc_attach (fd, NULL);
      assert_non_null (md);
      assert_int_equal (close (fd), 0);
      for (int k = 0; k < MMALLOC_KEYS; k++)
	{
	  char want[32];
	  snprintf (want, sizeof want, "key number %d", k);
	  assert_ptr_equal (mmalloc_getkey (md, k), s[k]);
	  assert_string_equal (mmalloc_getkey (md, k), want);
	}
      for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++)
	assert_null (mmalloc_getkey (md, bad_keys[i]));
      if (!round)		/* change one; the read-only round sees it */
	{
	  assert_int_equal (mmalloc_setkey (md, 9, s[3]), 1);
	  s[9] = s[3];
	  snprintf (s[3], 32, "key number %d", 9);
	  char *n3 = mmalloc (md, 32);
	  assert_non_null (n3);
	  snprintf (n3, 32, "key number %d", 3);
	  assert_int_equal (mmalloc_setkey (md, 3, n3), 1);
	  s[3] = n3;
	}
      assert_heap_ok (md);
      assert_null (mmalloc_detach (md));
    }
  unlink (tu_path ("keys.heap"));
}

static void
keys_of_the_default_heap (void **state)
{
  (void) state;
  char *p = mmalloc (NULL, 40);
  assert_non_null (p);
  assert_int_equal (mmalloc_setkey (NULL, 0, p), 1);
  assert_int_equal (mmalloc_setkey (NULL, 15, p + 8), 1);
  assert_ptr_equal (mmalloc_getkey (NULL, 0), p);
  assert_ptr_equal (mmalloc_getkey (NULL, 15), p + 8);
  for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++)
    {
      errno = 0;
      assert_int_equal (mmalloc_setkey (NULL, bad_keys[i], p), 0);
      assert_int_equal (errno, EINVAL);
      assert_int_equal (mmalloc_errno (NULL), EINVAL);
      assert_null (mmalloc_getkey (NULL, bad_keys[i]));
    }
  /* The default heap's keys are its own, not another heap's.  */
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  assert_null (mmalloc_getkey (md, 0));
  assert_int_equal (mmalloc_setkey (md, 0, md), 1);
  assert_ptr_equal (mmalloc_getkey (NULL, 0), p);
  assert_null (mmalloc_detach (md));
  assert_ptr_equal (mmalloc_getkey (NULL, 0), p);
  assert_int_equal (mmalloc_setkey (NULL, 0, NULL), 1);
  assert_int_equal (mmalloc_setkey (NULL, 15, NULL), 1);
  mfree (NULL, p);
  assert_heap_ok (NULL);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (new_heap_has_every_key_null),
    cmocka_unit_test (sixteen_keys_round_trip),
    cmocka_unit_test (keys_out_of_range_are_refused),
    cmocka_unit_test (keys_persist_across_detach_and_attach),
    cmocka_unit_test (keys_of_the_default_heap),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
