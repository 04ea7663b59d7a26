/* test-inspect.c -- mmalloc_attach_flags with MMALLOC_INSPECT: a private,
   read-only view of a heap file that never writes the file, takes no lock,
   works while a writer holds the file, and recovers a file whose writer
   died in the view alone.  */
#include "testutil.h"
#include "mmprivate.h"

#include <time.h>

/* Fill MD with known blocks; key 0 names a table of 64 blocks, key 1 a string.  */
static void
fill (void *md)
{
  void **t = mcalloc (md, 64, sizeof *t);
  assert_non_null (t);
  for (int i = 0; i < 64; i++)
    {
      size_t n = i % 9 == 0 ? 40000 + (size_t) i : 24 + (size_t) i * 5;
      t[i] = mmalloc (md, n);
      assert_non_null (t[i]);
      tu_fill (t[i], n, (uint64_t) i);
    }
  char *s = mmalloc (md, 32);
  assert_non_null (s);
  strcpy (s, "inspect me");
  assert_int_equal (mmalloc_setkey (md, 0, t), 1);
  assert_int_equal (mmalloc_setkey (md, 1, s), 1);
}

static void
make_clean (const char *name)
{
  void *md = tu_new_file_heap (name);
  fill (md);
  tu_end_heap (md);
}

/* A file whose writer died with it attached (dirty); made in a child.  */
static void
die_attached (void *arg)
{
  int fd = open (tu_path (arg), O_RDWR);
  void *md = mmalloc_attach (fd, NULL);
  if (!md)
    _exit (3);
  fill (md);
  for (int i = 0; i < 200; i++)
    mfree (md, mmalloc (md, 100 + (size_t) i));
  _exit (0);
}

static void
make_dirty (const char *name)
{
  close (tu_newfile (name));
  char err[256];
  int st = tu_child (die_attached, (void *) name, err, sizeof err);
  assert_true (WIFEXITED (st) && WEXITSTATUS (st) == 0);
}

static void *
inspect (const char *name)
{
  int fd = open (tu_path (name), O_RDONLY);
  assert_true (fd >= 0);
  void *md = mmalloc_attach_flags (fd, NULL, MMALLOC_INSPECT);
  int e = errno;
  close (fd);
  errno = e;
  return md;
}

/* What the view shows of the heap fill () made.  */
static void
assert_filled (void *md)
{
  void **t = mmalloc_getkey (md, 0);
  assert_non_null (t);
  for (int i = 0; i < 64; i++)
    {
      size_t n = i % 9 == 0 ? 40000 + (size_t) i : 24 + (size_t) i * 5;
      assert_true (mmalloc_usable_size (md, t[i]) >= n);
      assert_true (tu_holds (t[i], n, (uint64_t) i));
    }
  assert_string_equal (mmalloc_getkey (md, 1), "inspect me");
}

static void
view_reads_a_clean_file_and_writes_nothing (void **state)
{
  (void) state;
  make_clean ("clean.heap");
  struct tu_snap s;
  tu_snap_take (tu_path ("clean.heap"), &s);
  struct timespec pause = { 0, 20 * 1000 * 1000 };
  nanosleep (&pause, NULL);	/* a write now would move the times */
  void *md = inspect ("clean.heap");
  assert_non_null (md);
  assert_filled (md);
  assert_heap_ok (md);
  struct mstats st = mmstats (md);
  assert_true (st.chunks_used >= 66);
  assert_null (mmalloc (md, 16));
  assert_int_equal (errno, EROFS);
  assert_int_equal (mmalloc_setkey (md, 2, NULL), 0);
  assert_int_equal (mmalloc_sync (md), 0);
  /* Stores into the view stay in this process.  */
  char *str = mmalloc_getkey (md, 1);
  str[0] = 'X';
  assert_null (mmalloc_detach (md));
  assert_true (tu_snap_same (tu_path ("clean.heap"), &s));
  free (s.bytes);
}

static void
view_works_while_a_writer_holds_the_file (void **state)
{
  (void) state;
  make_clean ("held.heap");
  struct tu_holder w = tu_hold_start (tu_path ("held.heap"), 0);
  struct tu_snap s;
  tu_snap_take (tu_path ("held.heap"), &s);
  /* A plain reader is refused; the view is not.  */
  int fd = open (tu_path ("held.heap"), O_RDONLY);
  errno = 0;
  assert_null (mmalloc_attach (fd, NULL));
  assert_int_equal (errno, MMALLOC_ELOCKED);
  close (fd);
  void *md = inspect ("held.heap");
  assert_non_null (md);
  assert_filled (md);
  assert_heap_ok (md);		/* recovered in the view: the file says dirty */
  assert_null (mmalloc_detach (md));
  assert_true (tu_snap_same (tu_path ("held.heap"), &s));
  free (s.bytes);
  tu_hold_stop (w);
}

static void
writer_may_attach_while_a_view_is_held (void **state)
{
  (void) state;
  make_clean ("viewed.heap");
  struct tu_holder v = tu_hold_start (tu_path ("viewed.heap"), MMALLOC_INSPECT);
  int fd = open (tu_path ("viewed.heap"), O_RDWR);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  void **t = mmalloc_getkey (md, 0);
  memset (t[1], 0, 24);
  assert_non_null (mmalloc (md, 5000));
  tu_end_heap (md);
  tu_hold_stop (v);
}

static void
view_recovers_a_dirty_file_in_memory_only (void **state)
{
  (void) state;
  make_dirty ("dirty.heap");
  struct tu_snap s;
  tu_snap_take (tu_path ("dirty.heap"), &s);
  const struct mm_header *h = (const struct mm_header *) (const void *) s.bytes;
  assert_int_equal (h->state, MM_DIRTY);
  void *md = inspect ("dirty.heap");
  assert_non_null (md);
  assert_filled (md);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  assert_true (tu_snap_same (tu_path ("dirty.heap"), &s));
  free (s.bytes);
  /* The file still needs its recovery, which a writer then makes.  */
  int fd = open (tu_path ("dirty.heap"), O_RDWR);
  md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  assert_filled (md);
  tu_end_heap (md);
}

static void
view_refuses_what_it_cannot_show (void **state)
{
  (void) state;
  make_clean ("ok.heap");
  int fd = open (tu_path ("ok.heap"), O_RDONLY);
  errno = 0;
  assert_null (mmalloc_attach_flags (fd, NULL, 2));
  assert_int_equal (errno, EINVAL);
  close (fd);
  errno = 0;
  assert_null (mmalloc_attach_flags (-1, NULL, MMALLOC_INSPECT));
  assert_int_equal (errno, EBADF);
  fd = open (tu_path ("ok.heap"), O_WRONLY);
  errno = 0;
  assert_null (mmalloc_attach_flags (fd, NULL, MMALLOC_INSPECT));
  assert_int_equal (errno, EACCES);
  close (fd);
  close (tu_newfile ("empty.heap"));
  errno = 0;
  assert_null (inspect ("empty.heap"));
  assert_int_equal (errno, MMALLOC_ENOTHEAP);
  /* Attached in this process: its range is taken.  */
  fd = open (tu_path ("ok.heap"), O_RDWR);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  errno = 0;
  assert_null (inspect ("ok.heap"));
  assert_int_equal (errno, MMALLOC_EADDRINUSE);
  tu_end_heap (md);
  /* A damaged header: refused with its code, the file untouched.  */
  fd = open (tu_path ("ok.heap"), O_RDWR);
  uint64_t top = 1;
  assert_int_equal (pwrite (fd, &top, sizeof top, offsetof (struct mm_header, top)),
		    (ssize_t) sizeof top);
  close (fd);
  struct tu_snap s;
  tu_snap_take (tu_path ("ok.heap"), &s);
  errno = 0;
  assert_null (inspect ("ok.heap"));
  assert_int_equal (errno, MMALLOC_ECORRUPT);
  assert_true (tu_snap_same (tu_path ("ok.heap"), &s));
  free (s.bytes);
}

/* Flag 0 is mmalloc_attach.  */
static void
no_flags_is_a_plain_attach (void **state)
{
  (void) state;
  make_clean ("plain.heap");
  int fd = open (tu_path ("plain.heap"), O_RDWR);
  void *md = mmalloc_attach_flags (fd, NULL, 0);
  close (fd);
  assert_non_null (md);
  void *p = mmalloc (md, 64);
  assert_non_null (p);
  mfree (md, p);
  assert_filled (md);
  tu_end_heap (md);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (view_reads_a_clean_file_and_writes_nothing),
    cmocka_unit_test (view_works_while_a_writer_holds_the_file),
    cmocka_unit_test (writer_may_attach_while_a_view_is_held),
    cmocka_unit_test (view_recovers_a_dirty_file_in_memory_only),
    cmocka_unit_test (view_refuses_what_it_cannot_show),
    cmocka_unit_test (no_flags_is_a_plain_attach),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
