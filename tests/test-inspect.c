/* test-inspect.c -- mmalloc_attach_flags with MMALLOC_INSPECT: a private,
   read-only view of a heap file that never writes the file, takes no lock,
   works while a writer holds the file, and recovers a file whose writer
   died in the view alone.  */
#include "testutil.h"
#include "mmprivate.h"

#include <time.h>

/* The whole content of the file at PATH and its times, to compare.  */
struct snap
{
  char *bytes;
  size_t len;
  struct timespec mtime, ctime;
};

static void
snap_take (const char *path, struct snap *s)
{
  struct stat st;
  assert_int_equal (stat (path, &st), 0);
  s->len = (size_t) st.st_size;
  s->mtime = st.st_mtim;
  s->ctime = st.st_ctim;
  s->bytes = malloc (s->len + 1);
  assert_non_null (s->bytes);
  int fd = open (path, O_RDONLY);
  assert_true (fd >= 0);
  size_t got = 0;
  ssize_t r;
  while (got < s->len && (r = pread (fd, s->bytes + got, s->len - got, (off_t) got)) > 0)
    got += (size_t) r;
  close (fd);
  assert_int_equal (got, s->len);
}

/* The file at PATH is byte for byte as in S, with the same times.  */
static void
snap_same (const char *path, struct snap *s)
{
  struct snap now;
  snap_take (path, &now);
  assert_int_equal (now.len, s->len);
  assert_memory_equal (now.bytes, s->bytes, s->len);
  assert_true (now.mtime.tv_sec == s->mtime.tv_sec && now.mtime.tv_nsec == s->mtime.tv_nsec);
  assert_true (now.ctime.tv_sec == s->ctime.tv_sec && now.ctime.tv_nsec == s->ctime.tv_nsec);
  free (now.bytes);
  free (s->bytes);
}

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
  struct snap s;
  snap_take (tu_path ("clean.heap"), &s);
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
  snap_same (tu_path ("clean.heap"), &s);
}

/* A child holds the file attached until the parent writes to the pipe GO
   (read-write, or as a view if VIEW); it says it is ready on READY.  */
struct holder
{
  pid_t pid;
  int go;
};

static struct holder
hold_start (const char *name, int view)
{
  int ready[2], go[2];
  assert_int_equal (pipe (ready), 0);
  assert_int_equal (pipe (go), 0);
  fflush (NULL);
  pid_t pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      close (ready[0]);
      close (go[1]);
      int fd = open (tu_path (name), view ? O_RDONLY : O_RDWR);
      void *md = mmalloc_attach_flags (fd, NULL, view ? MMALLOC_INSPECT : 0);
      char c = md ? 'y' : 'n';
      if (write (ready[1], &c, 1) != 1)
	_exit (4);
      if (read (go[0], &c, 1) < 0)
	_exit (5);
      if (view)
	{			/* still readable after the writer's changes */
	  if (strcmp (mmalloc_getkey (md, 1), "inspect me"))
	    _exit (7);
	  _exit (mmalloc_detach (md) == NULL ? 0 : 6);
	}
      /* A view taken meanwhile did not stop this writer.  */
      void *p = md ? mmalloc (md, 1000) : NULL;
      _exit (p && mmalloc_detach (md) == NULL ? 0 : 6);
    }
  close (ready[1]);
  close (go[0]);
  char c = 0;
  assert_int_equal (read (ready[0], &c, 1), 1);
  close (ready[0]);
  assert_int_equal (c, 'y');
  return (struct holder) { pid, go[1] };
}

static void
hold_stop (struct holder w)
{
  char c = 'g';
  assert_int_equal (write (w.go, &c, 1), 1);
  close (w.go);
  int st;
  assert_int_equal (waitpid (w.pid, &st, 0), w.pid);
  assert_true (WIFEXITED (st));
  assert_int_equal (WEXITSTATUS (st), 0);
}

static void
view_works_while_a_writer_holds_the_file (void **state)
{
  (void) state;
  make_clean ("held.heap");
  struct holder w = hold_start ("held.heap", 0);
  struct snap s;
  snap_take (tu_path ("held.heap"), &s);
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
  snap_same (tu_path ("held.heap"), &s);
  hold_stop (w);
}

static void
writer_may_attach_while_a_view_is_held (void **state)
{
  (void) state;
  make_clean ("viewed.heap");
  struct holder v = hold_start ("viewed.heap", 1);
  int fd = open (tu_path ("viewed.heap"), O_RDWR);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  void **t = mmalloc_getkey (md, 0);
  memset (t[1], 0, 24);
  assert_non_null (mmalloc (md, 5000));
  tu_end_heap (md);
  hold_stop (v);
}

static void
view_recovers_a_dirty_file_in_memory_only (void **state)
{
  (void) state;
  make_dirty ("dirty.heap");
  struct snap s;
  snap_take (tu_path ("dirty.heap"), &s);
  const struct mm_header *h = (const struct mm_header *) (const void *) s.bytes;
  assert_int_equal (h->state, MM_DIRTY);
  void *md = inspect ("dirty.heap");
  assert_non_null (md);
  assert_filled (md);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  snap_same (tu_path ("dirty.heap"), &s);
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
  struct snap s;
  snap_take (tu_path ("ok.heap"), &s);
  errno = 0;
  assert_null (inspect ("ok.heap"));
  assert_int_equal (errno, MMALLOC_ECORRUPT);
  snap_same (tu_path ("ok.heap"), &s);
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
