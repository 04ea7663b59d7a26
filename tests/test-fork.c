/* test-fork.c -- fork in a program linked with libmmalloc (not the drop-in
   malloc): the library itself makes its heaps usable in the child.

   - threads allocate and free in a heap while the main thread forks, again
     and again; each child uses that heap at once (every size, its blocks
     checked) and must finish within a watchdog's time; the parent's heap
     goes on as before;
   - the same with two hundred heaps, all of them in use by the threads;
   - the same on heaps under mmcheckf (every call takes the locked paths);
   - the full slabs of a thread gone in the child are the child's to use;
   - a heap file attached before the fork is read-only in the child: the
     child's allocation fails with EROFS and the parent's file is intact.

   Children report through their exit status; a hang is a SIGALRM.  */
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Mostly small sizes (the slabs' lock-free paths), some of the page
   allocator's.  */
static size_t
some_size (uint64_t *s)
{
  uint64_t r = tu_rnd (s);
  return (r & 15) == 0 ? (size_t) (r >> 8) % 200000 : (size_t) (r >> 8) % 600;
}

enum { MAXHEAPS = 200, WIN = 64, NLOAD = 3 };
static void *heaps[MAXHEAPS];
static int nheaps;
static int stop_load;		/* atomic */

/* Replace a random block of a window of live blocks, in a random heap.
   1 if a block lost its contents or an allocation failed, and then what
   happened in WHY (WHYLEN bytes), if not NULL.  */
static int
churn (void **win, int *where, uint64_t *s, char *why, size_t whylen)
{
  uint64_t r = tu_rnd (s);
  int i = (int) (r % WIN);
  if (win[i])
    {
      if (!tu_holds (win[i], 16, (uint64_t) (uintptr_t) win[i]))
	{
	  if (why)
	    snprintf (why, whylen, "block %p of heap %d lost its first bytes", win[i], where[i]);
	  return 1;
	}
      mfree (heaps[where[i]], win[i]);
    }
  where[i] = (int) ((r >> 16) % (uint64_t) nheaps);
  size_t n = some_size (s) + 16;
  errno = 0;
  win[i] = mmalloc (heaps[where[i]], n);
  if (!win[i])
    {
      if (why)
	snprintf (why, whylen, "mmalloc (heap %d, %zu bytes) failed: %s", where[i], n,
		  mmalloc_strerror (errno));
      return 1;
    }
  tu_fill (win[i], 16, (uint64_t) (uintptr_t) win[i]);
  return 0;
}

static void *
load_thread (void *arg)
{
  uint64_t s = (uint64_t) (uintptr_t) arg * 0x9e3779b97f4a7c15ULL + 1;
  void *win[WIN] = { 0 };
  int where[WIN];
  long bad = 0;
  while (!__atomic_load_n (&stop_load, __ATOMIC_RELAXED))
    bad += churn (win, where, &s, NULL, 0);
  for (int i = 0; i < WIN; i++)
    if (win[i])
      mfree (heaps[where[i]], win[i]);
  return (void *) bad;
}

/* The child: every heap serves and takes back blocks of every size at once,
   and checks clean.  0, or what failed in WHY.  */
static int
child_uses_heaps (uint64_t seed, char *why, size_t whylen)
{
  void *win[WIN] = { 0 };
  int where[WIN];
  for (int k = 0; k < 3000; k++)
    if (churn (win, where, &seed, why, whylen))
      return 2;
  for (int i = 0; i < WIN; i++)
    if (win[i])
      mfree (heaps[where[i]], win[i]);
  for (int h = 0; h < nheaps; h++)
    {
      errno = 0;
      void *p = mmalloc (heaps[h], 100), *q = mmalloc (heaps[h], 70000);
      if (!p || !q)
	{
	  snprintf (why, whylen, "heap %d: mmalloc of 100 or 70000 bytes failed: %s", h,
		    mmalloc_strerror (errno));
	  return 3;
	}
      mfree (heaps[h], p);
      mfree (heaps[h], q);
      int problems = mmalloc_check (heaps[h]);
      if (problems != 0)
	{
	  snprintf (why, whylen, "heap %d: mmalloc_check found %d problems", h, problems);
	  return 4;
	}
    }
  return 0;
}

/* In the forked child (stderr goes to the parent): its exit status is
   child_uses_heaps's, and it says what failed.  */
static void
child_main (void *arg)
{
  alarm (10);
  char why[256] = "";
  int rc = child_uses_heaps (*(uint64_t *) arg, why, sizeof why);
  if (rc)
    fprintf (stderr, "%s\n", why);
  _exit (rc);
}

/* Fork while NLOAD threads churn the heaps: up to FORKS times, for at most
   SECONDS (but three times at least; make check a third of that, make
   stress ten times as many forks and seconds).  Every child must exit 0
   within its watchdog.  */
static void
forks_under_load (int forks, double seconds, int checked)
{
  if (tu_stress ())
    forks *= 10, seconds *= 10;
  else
    seconds /= 3;
  for (int h = 0; h < nheaps; h++)
    {
      heaps[h] = tu_new_heap ();
      if (checked)
	assert_int_equal (mmcheckf (heaps[h], NULL, 1), 1);
    }
  pthread_t t[NLOAD];
  __atomic_store_n (&stop_load, 0, __ATOMIC_RELAXED);
  for (int i = 0; i < NLOAD; i++)
    assert_int_equal (pthread_create (&t[i], NULL, load_thread, (void *) (uintptr_t) (i + 1)), 0);
  int bad = 0, done = 0;
  char err[1024], first[1100] = "";
  double t0 = now ();
  for (; done < forks && (done < 3 || now () - t0 < seconds); done++)
    {
      usleep (500);
      uint64_t seed = (uint64_t) done * 7919 + 13;
      int st = tu_child (child_main, &seed, err, sizeof err);
      if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
	{
	  if (WIFSIGNALED (st))
	    print_message ("fork %d: child killed by signal %d; stderr: %s\n", done,
			   WTERMSIG (st), err);
	  else
	    print_message ("fork %d: child exit status %d; stderr: %s\n", done,
			   WEXITSTATUS (st), err);
	  if (!bad++)
	    snprintf (first, sizeof first, "fork %d: wait status 0x%x: %s", done, st, err);
	}
    }
  __atomic_store_n (&stop_load, 1, __ATOMIC_RELAXED);
  long errors = 0;
  for (int i = 0; i < NLOAD; i++)
    {
      void *r;
      assert_int_equal (pthread_join (t[i], &r), 0);
      errors += (long) r;
    }
  print_message ("%d forks with %d heap(s) in use, %d bad children\n", done, nheaps, bad);
  if (bad)
    fail_msg ("%d of %d children failed; the first: %s", bad, done, first);
  assert_int_equal (errors, 0);
  for (int h = 0; h < nheaps; h++)
    tu_end_heap (heaps[h]);
}

static void
fork_while_threads_use_a_heap (void **state)
{
  (void) state;
  nheaps = 1;
  forks_under_load (100, 1.5, 0);
}

static void
fork_while_threads_use_a_checked_heap (void **state)
{
  (void) state;
  nheaps = 1;
  forks_under_load (100, 1.5, 1);
}

static void
fork_with_200_heaps_in_use (void **state)
{
  (void) state;
  nheaps = MAXHEAPS;
  forks_under_load (20, 1.5, 0);
}

static void
fork_with_200_checked_heaps_in_use (void **state)
{
  (void) state;
  nheaps = MAXHEAPS;
  forks_under_load (20, 1.5, 1);
}

/* A thread fills slabs of a heap (they are full and its own) and waits
   while the main thread forks.  In the child that thread is gone: the
   child frees every block it made and allocates as many again, and the
   heap must not grow (the slabs of a thread gone are taken back by the
   first free that comes to one); the heap checks clean.  */
enum { FILLED = 20000 };
static void *filled[FILLED];
static void *fill_md;
static pthread_barrier_t fill_ready, fill_go;

static void *
filler_thread (void *arg)
{
  (void) arg;
  for (int i = 0; i < FILLED; i++)
    filled[i] = mmalloc (fill_md, 64);
  pthread_barrier_wait (&fill_ready);
  pthread_barrier_wait (&fill_go);
  return NULL;
}

static int
child_reuses_filled (void)
{
  alarm (10);
  size_t before = mmstats (fill_md).bytes_total;
  for (int i = 0; i < FILLED; i++)
    mfree (fill_md, filled[i]);
  if (mmalloc_check (fill_md) != 0)
    return 2;
  for (int i = 0; i < FILLED; i++)
    if (!(filled[i] = mmalloc (fill_md, 64)))
      return 3;
  size_t after = mmstats (fill_md).bytes_total;
  if (after > before + 64 * 1024)
    {
      fprintf (stderr, "heap grew from %zu to %zu bytes\n", before, after);
      return 4;
    }
  return mmalloc_check (fill_md) != 0 ? 5 : 0;
}

static void
child_reuses_full_slabs_of_threads_gone (void **state)
{
  (void) state;
  fill_md = tu_new_heap ();
  pthread_barrier_init (&fill_ready, NULL, 2);
  pthread_barrier_init (&fill_go, NULL, 2);
  pthread_t t;
  assert_int_equal (pthread_create (&t, NULL, filler_thread, NULL), 0);
  pthread_barrier_wait (&fill_ready);
  for (int i = 0; i < FILLED; i++)
    assert_non_null (filled[i]);
  pid_t pid = tu_fork ();
  if (pid == 0)
    _exit (child_reuses_filled ());
  int st;
  assert_int_equal (waitpid (pid, &st, 0), pid);
  pthread_barrier_wait (&fill_go);
  assert_int_equal (pthread_join (t, NULL), 0);
  if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
    fail_msg ("child: status 0x%x", st);
  for (int i = 0; i < FILLED; i++)
    mfree (fill_md, filled[i]);
  tu_end_heap (fill_md);
}

/* A heap file attached before the fork is the parent's: the child may not
   write it.  */
static void *file_md;

static void
child_allocates_in_file (void *arg)
{
  (void) arg;
  alarm (10);
  errno = 0;
  void *p = mmalloc (file_md, 64);
  _exit (p == NULL && errno == EROFS ? 0 : 1);
}

/* The parent's heap file is not walked in the child: the parent changes it
   (and may grow it past the child's mapping) without the child's locks.  */
static void
child_walks_no_parent_heap (void *arg)
{
  void *p = arg;
  alarm (10);
  errno = 0;
  int bad = mmalloc_check (file_md) == 0 || errno != MMALLOC_ELOCKED;
  errno = 0;
  struct mstats st = mmstats (file_md);
  bad |= st.bytes_total != 0 || errno != MMALLOC_ELOCKED;
  errno = 0;
  bad |= mmalloc_usable_size (file_md, p) != 0 || errno != MMALLOC_ELOCKED;
  bad |= *(volatile char *) p != 'x';		/* its blocks may still be read */
  _exit (bad);
}

static void
child_refuses_to_walk_a_parent_heap_file (void **state)
{
  (void) state;
  file_md = tu_new_file_heap ("walked.heap");
  char *p = mmalloc (file_md, 64);
  assert_non_null (p);
  *p = 'x';
  char err[512];
  int st = tu_child (child_walks_no_parent_heap, p, err, sizeof err);
  if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
    fail_msg ("child: status 0x%x, stderr: %s", st, err);
  assert_non_null (strstr (err, "heap file of the parent process"));
  assert_heap_ok (file_md);		/* the parent's own calls work */
  assert_int_equal (mmstats (file_md).chunks_used, 1);
  mfree (file_md, p);
  assert_null (mmalloc_detach (file_md));
}

static void
heap_file_is_read_only_in_the_child (void **state)
{
  (void) state;
  file_md = tu_new_file_heap ("forked.heap");
  void *p = mmalloc (file_md, 64);
  assert_non_null (p);
  char err[256];
  int st = tu_child (child_allocates_in_file, NULL, err, sizeof err);
  if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
    fail_msg ("child: status 0x%x, stderr: %s", st, err);
  assert_int_equal (mmstats (file_md).chunks_used, 1);
  assert_heap_ok (file_md);
  mfree (file_md, p);
  assert_null (mmalloc_detach (file_md));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (fork_while_threads_use_a_heap),
    cmocka_unit_test (fork_while_threads_use_a_checked_heap),
    cmocka_unit_test (fork_with_200_heaps_in_use),
    cmocka_unit_test (fork_with_200_checked_heaps_in_use),
    cmocka_unit_test (child_reuses_full_slabs_of_threads_gone),
    cmocka_unit_test (heap_file_is_read_only_in_the_child),
    cmocka_unit_test (child_refuses_to_walk_a_parent_heap_file),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
