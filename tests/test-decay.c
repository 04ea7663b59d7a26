/* test-decay.c -- freed pages stay for reuse, then go back to the system:
   after the decay delay, at once with a delay of 0, on mmalloc_trim; a heap
   file's disk blocks the same way, and nothing is lost when a process dies
   with dirty runs.  mcalloc writes no page known to read zero, and zeroes
   every other.  Residency is read with mincore, disk blocks with fstat.
   No assertion depends on timing: a page that must stay is checked under a
   delay of a minute, and the delay is then shortened to a few ms.  */

#include "testutil.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define BLOCK ((size_t) 4 << 20)
#define LONG_MS 60000L

/* Pages of [P, P+LEN) resident, P page-aligned.  */
static size_t
resident (const void *p, size_t len)
{
  size_t ps = (size_t) sysconf (_SC_PAGESIZE), n = (len + ps - 1) / ps, r = 0;
  unsigned char *v = malloc (n);
  assert_non_null (v);
  assert_int_equal (mincore ((void *) p, len, v), 0);
  for (size_t i = 0; i < n; i++)
    r += v[i] & 1;
  free (v);
  return r;
}

static void
sleep_ms (long ms)
{
  struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
  while (nanosleep (&t, &t))
    ;
}

/* A block of BLOCK bytes with a block after it (so that it is not the top
   run), written, then freed: its address.  *TRIGGER, after both, is for the
   caller to free later: a call on the page lock that takes no pages from
   the freed run.  */
static char *
free_written_block (void *md, void **after, void **trigger)
{
  char *p = mmalloc (md, BLOCK);
  assert_non_null (p);
  *after = mmalloc (md, BLOCK);
  assert_non_null (*after);
  *trigger = mmalloc (md, 40000);
  assert_non_null (*trigger);
  memset (p, 7, BLOCK);
  mfree (md, p);
  return p;
}

/* The pages of a freed block, its first (the run's header) aside.  */
#define FREED(p) ((p) + 4096), (BLOCK - 4096)

static void
freed_pages_stay_until_the_delay_passes (void **state)
{
  (void) state;
  void *md = tu_new_heap (), *after, *t;
  assert_int_equal (mmalloc_setdecay (md, LONG_MS), 0);
  char *p = free_written_block (md, &after, &t);
  /* Other work on the page lock meanwhile does not give them back.  */
  for (int i = 0; i < 10; i++)
    mfree (md, mmalloc (md, 40000));
  assert_int_equal (resident (FREED (p)), (BLOCK - 4096) / 4096);
  /* A short delay, passed: the next call on the page lock gives them back.  */
  assert_int_equal (mmalloc_setdecay (md, 5), 0);
  sleep_ms (40);
  mfree (md, t);
  assert_int_equal (resident (FREED (p)), 0);
  /* The pages are reused as they are: zeros where they were given back.  */
  char *q = mmalloc (md, BLOCK);
  assert_ptr_equal (q, p);
  for (size_t i = 4096; i < BLOCK; i += 4096)
    assert_int_equal (q[i], 0);
  mfree (md, q);
  mfree (md, after);
  tu_end_heap (md);
}

/* Pages freed under a long delay stay resident; GIVE (MD) gives them back
   at once.  */
static void
waiting_pages_go_back_on (void (*give) (void *))
{
  void *md = tu_new_heap (), *after, *t;
  assert_int_equal (mmalloc_setdecay (md, LONG_MS), 0);
  char *p = free_written_block (md, &after, &t);
  assert_int_equal (resident (FREED (p)), (BLOCK - 4096) / 4096);
  give (md);
  assert_int_equal (resident (FREED (p)), 0);
  assert_heap_ok (md);
  mfree (md, after);
  mfree (md, t);
  tu_end_heap (md);
}

static void
trim_now (void *md)
{
  assert_int_equal (mmalloc_trim (md, 0), 1);
  assert_int_equal (mmalloc_trim (md, 0), 0);	/* nothing left to give */
}

static void
trim_gives_freed_pages_back_at_once (void **state)
{
  (void) state;
  waiting_pages_go_back_on (trim_now);
  assert_int_equal (mmalloc_trim ((void *) 1, 0), -1);
  assert_int_equal (mmalloc_setdecay (NULL, -1), -1);
  assert_int_equal (errno, EINVAL);
}

static void
no_delay (void *md)
{
  assert_int_equal (mmalloc_setdecay (md, 0), 0);
}

/* Setting a delay of 0 gives back what waited under the old delay, and
   then gives pages back as they are freed.  */
static void
a_delay_of_zero_gives_pages_back_as_they_are_freed (void **state)
{
  (void) state;
  waiting_pages_go_back_on (no_delay);
  void *md = tu_new_heap (), *after, *t;
  no_delay (md);
  char *p = free_written_block (md, &after, &t);
  assert_int_equal (resident (FREED (p)), 0);
  mfree (md, after);
  mfree (md, t);
  tu_end_heap (md);
}

/* Freeing far more than the dirty bound (a quarter of the heap, 32 MiB at
   least) gives pages back without waiting for the delay.  */
static void
dirty_pages_are_bounded (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  assert_int_equal (mmalloc_setdecay (md, LONG_MS), 0);
  enum { N = 64 };
  char *p[N];
  for (int i = 0; i < N; i++)
    {
      p[i] = mmalloc (md, BLOCK);	/* 256 MiB */
      assert_non_null (p[i]);
      memset (p[i], 1, BLOCK);
    }
  void *keep = mmalloc (md, 100);
  size_t before = 0, now = 0;
  for (int i = 0; i < N; i++)
    before += resident (p[i], BLOCK);
  for (int i = 0; i < N; i++)
    mfree (md, p[i]);
  for (int i = 0; i < N; i++)
    now += resident (p[i], BLOCK);
  print_message ("resident pages: %zu before freeing, %zu after\n", before, now);
  assert_true (now * 2 < before);
  mfree (md, keep);
  tu_end_heap (md);
}

static uint64_t
file_bytes (int fd)
{
  struct stat st;
  assert_int_equal (fstat (fd, &st), 0);
  return (uint64_t) st.st_blocks * 512;
}

static void
file_blocks_go_back_after_the_delay_and_on_trim (void **state)
{
  (void) state;
  int fd = tu_newfile ("decay.heap");
  void *md = mmalloc_attach (fd, NULL);
  assert_non_null (md);
  assert_int_equal (mmalloc_setdecay (md, LONG_MS), 0);
  void *after, *after2, *t;
  char *p = free_written_block (md, &after, &t);
  uint64_t full = file_bytes (fd);
  assert_true (full >= BLOCK * 2);
  mfree (md, mmalloc (md, 40000));
  assert_true (file_bytes (fd) >= full - 65536);	/* kept for reuse */
  assert_int_equal (mmalloc_trim (md, 0), 1);
  assert_true (file_bytes (fd) + BLOCK - 65536 <= full);
  /* By the delay.  */
  p = mmalloc (md, BLOCK);
  assert_ptr_not_equal (p, NULL);
  memset (p, 3, BLOCK);
  after2 = mmalloc (md, BLOCK);
  memset (after2, 3, BLOCK);
  mfree (md, t);
  t = mmalloc (md, 40000);
  mfree (md, p);
  full = file_bytes (fd);
  assert_int_equal (mmalloc_setdecay (md, 5), 0);
  sleep_ms (40);
  mfree (md, t);
  assert_true (file_bytes (fd) + BLOCK - 65536 <= full);
  mfree (md, after);
  mfree (md, after2);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  close (fd);
}

/* A process dies (kill -9) holding dirty free runs between live blocks: the
   next attach recovers, every live block is whole, the free space serves
   again without touching them, and it can be given back.  */
static void
kill_with_dirty_runs_loses_nothing (void **state)
{
  (void) state;
  int fd = tu_newfile ("dirty.heap");
  enum { N = 24 };
  pid_t pid = tu_fork ();
  if (pid == 0)
    {
      void *md = mmalloc_attach (fd, NULL);
      if (!md || mmalloc_setdecay (md, LONG_MS))
	_exit (1);
      void **root = mmalloc (md, N * sizeof *root);
      for (int i = 0; i < N; i++)
	{
	  size_t n = (size_t) (i + 1) * 100000;
	  root[i] = mmalloc (md, n);
	  if (!root[i])
	    _exit (1);
	  tu_fill (root[i], n, (uint64_t) i);
	}
      for (int i = 0; i < N; i += 2)
	{
	  mfree (md, root[i]);	/* dirty runs, between live blocks */
	  root[i] = NULL;
	}
      mmalloc_setkey (md, 0, root);
      raise (SIGKILL);
      _exit (1);
    }
  tu_wait_killed (pid);
  void *md = mmalloc_attach (fd, NULL);
  assert_non_null (md);
  assert_heap_ok (md);
  void **root = mmalloc_getkey (md, 0);
  assert_non_null (root);
  for (int i = 1; i < N; i += 2)
    assert_true (tu_holds (root[i], (size_t) (i + 1) * 100000, (uint64_t) i));
  /* The freed space is allocated again: the live blocks keep their data.  */
  void *q[N];
  for (int i = 0; i < N; i += 2)
    {
      q[i] = mmalloc (md, (size_t) (i + 1) * 100000);
      assert_non_null (q[i]);
      memset (q[i], 0x5a, (size_t) (i + 1) * 100000);
    }
  for (int i = 1; i < N; i += 2)
    assert_true (tu_holds (root[i], (size_t) (i + 1) * 100000, (uint64_t) i));
  assert_heap_ok (md);
  for (int i = 0; i < N; i += 2)
    mfree (md, q[i]);
  uint64_t full = file_bytes (fd);
  assert_int_equal (mmalloc_trim (md, 0), 1);
  assert_true (file_bytes (fd) < full);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  close (fd);
}

static void
calloc_of_fresh_pages_writes_none (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  size_t n = (size_t) 16 << 20;
  char *p = mcalloc (md, 1, n);
  assert_non_null (p);
  /* Its first page may be a run's header page, cleared.  */
  assert_true (resident (p + 4096, n - 4096) <= 1);
  assert_true (tu_all_bytes (p, n, 0));
  mfree (md, p);
  tu_end_heap (md);
}

static void
calloc_of_dirty_pages_zeroes_them (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  assert_int_equal (mmalloc_setdecay (md, LONG_MS), 0);
  char *p = mmalloc (md, BLOCK);
  void *after = mmalloc (md, 100000);
  memset (p, 0xff, BLOCK);
  mfree (md, p);
  char *q = mcalloc (md, BLOCK / 8, 8);
  assert_ptr_equal (q, p);	/* the dirty run is reused */
  assert_true (tu_all_bytes (q, BLOCK, 0));
  /* Given back, then allocated again: not written, and zeros.  */
  memset (q, 0xee, BLOCK);
  mfree (md, q);
  assert_int_equal (mmalloc_trim (md, 0), 1);
  q = mcalloc (md, 1, BLOCK);
  assert_ptr_equal (q, p);
  assert_int_equal (resident (q + 4096, BLOCK - 4096), 0);
  assert_true (tu_all_bytes (q, BLOCK, 0));	/* its first page too: it held the header */
  mfree (md, q);
  mfree (md, after);
  tu_end_heap (md);
}

/* After a crash no run is taken for zero: mcalloc zeroes what a dead
   process freed and wrote.  A heap detached cleanly keeps the knowledge.  */
static void
calloc_after_a_crash_zeroes_dirty_runs (void **state)
{
  (void) state;
  int fd = tu_newfile ("calloc.heap");
  pid_t pid = tu_fork ();
  if (pid == 0)
    {
      void *md = mmalloc_attach (fd, NULL);
      if (!md || mmalloc_setdecay (md, LONG_MS))
	_exit (1);
      char *p = mmalloc (md, BLOCK);
      mmalloc_setkey (md, 0, mmalloc (md, 100000));
      memset (p, 0xab, BLOCK);
      mfree (md, p);
      raise (SIGKILL);
      _exit (1);
    }
  tu_wait_killed (pid);
  void *md = mmalloc_attach (fd, NULL);
  assert_non_null (md);
  char *q = mcalloc (md, 1, BLOCK);
  assert_non_null (q);
  assert_true (tu_all_bytes (q, BLOCK, 0));
  memset (q, 0xcd, BLOCK);
  mfree (md, q);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));	/* gives the dirty run back */
  md = mmalloc_attach (fd, NULL);
  assert_non_null (md);
  q = mcalloc (md, 1, BLOCK);
  assert_non_null (q);
  assert_true (tu_all_bytes (q, BLOCK, 0));
  mfree (md, q);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  close (fd);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (freed_pages_stay_until_the_delay_passes),
    cmocka_unit_test (trim_gives_freed_pages_back_at_once),
    cmocka_unit_test (a_delay_of_zero_gives_pages_back_as_they_are_freed),
    cmocka_unit_test (dirty_pages_are_bounded),
    cmocka_unit_test (file_blocks_go_back_after_the_delay_and_on_trim),
    cmocka_unit_test (kill_with_dirty_runs_loses_nothing),
    cmocka_unit_test (calloc_of_fresh_pages_writes_none),
    cmocka_unit_test (calloc_of_dirty_pages_zeroes_them),
    cmocka_unit_test (calloc_after_a_crash_zeroes_dirty_runs),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
