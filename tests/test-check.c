/* test-check.c -- mmcheck, misuse reports and the whole-heap check.

   Each misuse runs in a forked child (tu_child).  The child first writes
   "ptr 0x<address>" on stderr, then misuses that pointer; the parent asserts
   the exact wait status and that the library's one-line report names both the
   problem and the pointer.  */
#include "testutil.h"
#define MM_KILLPOINTS 1		/* the test library has them: mm_kp_hold */
#include "mmprivate.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

enum misuse
{
  OVERRUN,			/* write one byte past the end, then free */
  CLOBBER_HEADER,		/* write at p[-8], then free */
  DOUBLE_FREE,
  FREE_MIDDLE,			/* free p + 16 */
  FREE_PAGE_MIDDLE,		/* free p + 4096 (large blocks) */
  FREE_MISALIGNED,		/* free p + 1 */
  FREE_STACK,			/* free the address of a local */
  FREE_OTHER_HEAP,		/* free a block of another heap */
  REALLOC_SHRINK_OVERRUN,	/* mrealloc to size / 2, overrun, free */
  REALLOC_GROW_OVERRUN,		/* mrealloc to size * 2 + 5000, overrun, free */
  CHECK_OVERRUN,		/* overrun a live block; exit with mmalloc_check */
  CHECK_CLOBBER,		/* clobber a live header; exit with mmalloc_check */
};

struct job
{
  enum misuse what;
  size_t size;
  int checked;			/* under mmcheck with tu_abort77 */
};

static void
say_ptr (const void *p)
{
  dprintf (2, "ptr 0x%jx\n", (uintmax_t) (uintptr_t) p);
}

/* The child: do JOB's misuse.  Returning means nothing was detected.  */
static void
misuse (void *arg)
{
  const struct job *j = arg;
  void *md = mmalloc_attach (-1, NULL);
  if (!md)
    _exit (90);
  if (j->checked && mmcheck (md, tu_abort77) != 1)
    _exit (91);
  char *p = mmalloc (md, j->size);
  if (!p)
    _exit (92);
  memset (p, 0x11, j->size);
  char local[32];
  switch (j->what)
    {
    case OVERRUN:
      p[j->size] = 'x';
      say_ptr (p);
      mfree (md, p);
      break;
    case CLOBBER_HEADER:
      tu_hidden_ptr (p)[-8] ^= 0x5a;
      say_ptr (p);
      mfree (md, p);
      break;
    case DOUBLE_FREE:
      mfree (md, p);
      say_ptr (p);
      mfree (md, p);
      break;
    case FREE_MIDDLE:
      say_ptr (p + 16);
      mfree (md, p + 16);
      break;
    case FREE_PAGE_MIDDLE:
      say_ptr (p + 4096);
      mfree (md, p + 4096);
      break;
    case FREE_MISALIGNED:
      say_ptr (p + 1);
      mfree (md, p + 1);
      break;
    case FREE_STACK:
      memset (local, 0, sizeof local);
      say_ptr (local);
      mfree (md, local);
      break;
    case FREE_OTHER_HEAP:
      {
	void *md2 = mmalloc_attach (-1, NULL);
	char *q = md2 ? mmalloc (md2, j->size) : NULL;
	if (!q)
	  _exit (93);
	say_ptr (q);
	mfree (md, q);
	break;
      }
    case REALLOC_SHRINK_OVERRUN:
    case REALLOC_GROW_OVERRUN:
      {
	size_t n = j->what == REALLOC_SHRINK_OVERRUN ? j->size / 2 : j->size * 2 + 5000;
	char *q = mrealloc (md, p, n);
	if (!q || mmalloc_usable_size (md, q) != n)
	  _exit (94);
	q[n] = 'x';
	say_ptr (q);
	mfree (md, q);
	break;
      }
    case CHECK_OVERRUN:
    case CHECK_CLOBBER:
      {
	/* Two live blocks, one damaged: the walk counts exactly one problem and
	   frees nothing.  */
	char *other = mmalloc (md, j->size);
	if (!other)
	  _exit (95);
	if (j->what == CHECK_OVERRUN)
	  p[j->size] = 0;
	else
	  tu_hidden_ptr (p)[-8] ^= 0x5a;
	say_ptr (p);
	_exit (mmalloc_check (md));
      }
    }
  _exit (0);
}

/* Run JOB; assert that the child ended with STATUS (an exit status, or with
   SIG != 0 that signal) and that its report contains PHRASE and the pointer.  */
static void
expect (struct job j, int status, int sig, const char *phrase)
{
  char err[4096];
  int st = tu_child (misuse, &j, err, sizeof err);
  if (sig)
    {
      if (!WIFSIGNALED (st) || WTERMSIG (st) != sig)
	fail_msg ("misuse %d size %zu: wait status %#x, expected signal %d; stderr:\n%s",
		  j.what, j.size, st, sig, err);
    }
  else if (!WIFEXITED (st) || WEXITSTATUS (st) != status)
    fail_msg ("misuse %d size %zu: wait status %#x, expected exit %d; stderr:\n%s",
	      j.what, j.size, st, status, err);
  uintmax_t ptr;
  int used = 0;
  if (sscanf (err, "ptr 0x%jx\n%n", &ptr, &used) != 1 || !used)
    fail_msg ("misuse %d size %zu: the child did not get to the misuse; stderr:\n%s",
	      j.what, j.size, err);
  const char *report = err + used;
  char want[64];
  snprintf (want, sizeof want, "pointer 0x%jx", ptr);
  if (strncmp (report, "mmalloc: ", 9) || !strstr (report, phrase)
      || (j.what != CHECK_OVERRUN && j.what != CHECK_CLOBBER && !strstr (report, want)))
    fail_msg ("misuse %d size %zu: report lacks \"%s\" or \"%s\":\n%s", j.what, j.size,
	      phrase, want, report);
  /* One line per problem: the report ends at its first newline (for a walk,
     the count of lines is the count of problems).  */
  const char *nl = strchr (report, '\n');
  assert_non_null (nl);
  if (j.what != CHECK_OVERRUN && j.what != CHECK_CLOBBER)
    assert_int_equal (nl[1], 0);
}

static const size_t sizes[] = { 1, 24, 100, 5000, 20000 };
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* --- mmcheck ----------------------------------------------------------------- */

static void
mmcheck_before_first_allocation_succeeds (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  assert_int_equal (mmcheck (md, NULL), 1);
  char *p = mmalloc (md, 10);
  assert_non_null (p);
  assert_int_equal (mmalloc_usable_size (md, p), 10);
  mfree (md, p);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

static void
mmcheck_after_an_allocation_needs_force (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  char *old = mmalloc (md, 10);
  assert_non_null (old);
  assert_int_equal (mmcheck (md, NULL), 0);
  /* Refused: new blocks are still unchecked.  */
  char *p = mmalloc (md, 10);
  assert_non_null (p);
  assert_int_equal (mmalloc_usable_size (md, p), 16);
  assert_int_equal (mmcheckf (md, NULL, 0), 0);
  assert_int_equal (mmcheckf (md, NULL, 1), 1);
  /* Forced: new blocks are checked, those that existed are not.  */
  char *q = mmalloc (md, 10);
  assert_non_null (q);
  assert_int_equal (mmalloc_usable_size (md, q), 10);
  assert_int_equal (mmalloc_usable_size (md, old), 16);
  mfree (md, old);
  mfree (md, p);
  mfree (md, q);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

static void
mmcheck_on_a_checked_heap_succeeds (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  assert_int_equal (mmcheck (md, NULL), 1);
  char *p = mmalloc (md, 100);
  assert_non_null (p);
  assert_int_equal (mmcheck (md, NULL), 1);
  assert_int_equal (mmcheck (md, tu_abort77), 1);
  mfree (md, p);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

/* --- misuse under mmcheck ------------------------------------------------------ */

static void
overrun_by_one_byte_is_reported_at_free (void **state)
{
  (void) state;
  for (size_t i = 0; i < NSIZES; i++)
    expect ((struct job) { OVERRUN, sizes[i], 1 }, 77, 0, "past the end");
}

static void
clobbered_header_is_reported (void **state)
{
  (void) state;
  for (size_t i = 0; i < NSIZES; i++)
    expect ((struct job) { CLOBBER_HEADER, sizes[i], 1 }, 77, 0, "header");
}

static void
double_free_is_reported_when_checked (void **state)
{
  (void) state;
  for (size_t i = 0; i < NSIZES; i++)
    expect ((struct job) { DOUBLE_FREE, sizes[i], 1 }, 77, 0, "twice");
}

static void
free_of_a_bad_pointer_is_reported_when_checked (void **state)
{
  (void) state;
  expect ((struct job) { FREE_MIDDLE, 100, 1 }, 77, 0, "not the start of a block");
  expect ((struct job) { FREE_MIDDLE, 20000, 1 }, 77, 0, "not the start of a block");
  expect ((struct job) { FREE_PAGE_MIDDLE, 20000, 1 }, 77, 0, "not the start of a block");
  expect ((struct job) { FREE_MISALIGNED, 100, 1 }, 77, 0, "misaligned");
  expect ((struct job) { FREE_STACK, 100, 1 }, 77, 0, "pointer outside the heap");
  expect ((struct job) { FREE_OTHER_HEAP, 100, 1 }, 77, 0, "pointer outside the heap");
  expect ((struct job) { FREE_OTHER_HEAP, 20000, 1 }, 77, 0, "pointer outside the heap");
}

/* --- misuse without mmcheck: the default abort function ------------------------- */

static void
double_free_aborts_without_mmcheck (void **state)
{
  (void) state;
  for (size_t i = 0; i < NSIZES; i++)
    expect ((struct job) { DOUBLE_FREE, sizes[i], 0 }, 0, SIGABRT, "twice");
}

static void
bad_pointer_aborts_without_mmcheck (void **state)
{
  (void) state;
  expect ((struct job) { FREE_MIDDLE, 100, 0 }, 0, SIGABRT, "not the start of a block");
  expect ((struct job) { FREE_MIDDLE, 20000, 0 }, 0, SIGABRT, "not the start of a block");
  expect ((struct job) { FREE_PAGE_MIDDLE, 20000, 0 }, 0, SIGABRT, "not the start of a block");
  expect ((struct job) { FREE_MISALIGNED, 24, 0 }, 0, SIGABRT, "misaligned");
  expect ((struct job) { FREE_STACK, 100, 0 }, 0, SIGABRT, "pointer outside the heap");
  expect ((struct job) { FREE_OTHER_HEAP, 100, 0 }, 0, SIGABRT, "pointer outside the heap");
}

/* --- the whole-heap check -------------------------------------------------------- */

static void
check_counts_damage_in_live_blocks (void **state)
{
  (void) state;
  for (size_t i = 0; i < NSIZES; i++)
    {
      expect ((struct job) { CHECK_OVERRUN, sizes[i], 1 }, 1, 0, "past the end");
      expect ((struct job) { CHECK_CLOBBER, sizes[i], 1 }, 1, 0, "header");
    }
}

static void
check_is_clean_on_a_clean_checked_heap (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  assert_int_equal (mmcheck (md, tu_abort77), 1);
  assert_heap_ok (md);
  char *p[200];
  for (int i = 0; i < 200; i++)
    {
      size_t n = (size_t) (i * 397) % 30000;
      p[i] = mmalloc (md, n);
      assert_non_null (p[i]);
      memset (p[i], 0xee, n);	/* every byte the caller owns, and no more */
    }
  assert_heap_ok (md);
  for (int i = 0; i < 200; i += 2)
    mfree (md, p[i]);
  assert_heap_ok (md);
  for (int i = 1; i < 200; i += 2)
    mfree (md, p[i]);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

static void
usable_size_under_mmcheck_is_the_size_asked (void **state)
{
  (void) state;
  static const size_t n[] = { 0, 1, 15, 16, 17, 24, 100, 127, 128, 1000, 4096, 5000,
    16367, 16368, 16384, 20000, 65536, 100000 };
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  assert_int_equal (mmcheck (md, tu_abort77), 1);
  for (size_t i = 0; i < sizeof n / sizeof n[0]; i++)
    {
      char *p = mmalloc (md, n[i]);
      assert_non_null (p);
      assert_int_equal ((uintptr_t) p % 16, 0);
      assert_int_equal (mmalloc_usable_size (md, p), n[i]);
      char *c = mcalloc (md, 1, n[i]);
      assert_non_null (c);
      assert_int_equal (mmalloc_usable_size (md, c), n[i]);
      mfree (md, c);
      mfree (md, p);
    }
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

static void
realloc_under_mmcheck_keeps_contents_and_sizes (void **state)
{
  (void) state;
  static const size_t steps[] = { 10, 50, 100, 60, 5000, 3000, 20000, 30000, 12000, 40, 0, 7 };
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  assert_int_equal (mmcheck (md, tu_abort77), 1);
  unsigned char *p = NULL;
  size_t have = 0;
  for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++)
    {
      size_t n = steps[s];
      p = mrealloc (md, p, n);
      assert_non_null (p);
      assert_int_equal (mmalloc_usable_size (md, p), n);
      for (size_t i = 0; i < (have < n ? have : n); i++)
	if (p[i] != (unsigned char) (i * 13))
	  fail_msg ("step %zu: byte %zu lost", s, i);
      for (size_t i = 0; i < n; i++)
	p[i] = (unsigned char) (i * 13);
      have = n;
      assert_heap_ok (md);
    }
  mfree (md, p);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

static void
overrun_after_realloc_is_reported (void **state)
{
  (void) state;
  for (size_t i = 0; i < NSIZES; i++)
    {
      expect ((struct job) { REALLOC_SHRINK_OVERRUN, sizes[i], 1 }, 77, 0, "past the end");
      expect ((struct job) { REALLOC_GROW_OVERRUN, sizes[i], 1 }, 77, 0, "past the end");
    }
}

/* --- the whole-heap check beside working threads ------------------------------ */

#define BUSY_THREADS 3
#define BUSY_SLOTS 64

struct busy
{
  void *md;
  uint64_t seed;
  const int *stop;
  char **mailbox;		/* blocks handed to whichever thread comes next */
  long ops;
};

/* Sizes of every kind: slots of many classes, and blocks of whole pages.  */
static size_t
busy_size (uint64_t *s)
{
  return tu_size_mix (s, 60, 600, 25, 33000, 200000);
}

#define BUSY_BATCH 256

struct batch
{
  void *md;
  char *p[BUSY_BATCH];
};

/* A short-lived thread: small blocks, left to its parent when it exits (its
   slabs, full, lose their owner).  */
static void *
batch_run (void *arg)
{
  struct batch *t = arg;
  for (int i = 0; i < BUSY_BATCH; i++)
    {
      t->p[i] = mmalloc (t->md, 48);
      assert_non_null (t->p[i]);
    }
  return NULL;
}

/* Allocate (plain or aligned), fill, realloc and free blocks of every size
   until told to stop, writing every byte each block owns and no other.  Half
   the frees go through the mailbox: another thread frees them; now and then
   a short-lived thread's blocks are freed here.  */
static void *
busy_run (void *arg)
{
  struct busy *b = arg;
  char *p[BUSY_SLOTS] = { 0 };
  size_t n[BUSY_SLOTS] = { 0 };
  while (!__atomic_load_n (b->stop, __ATOMIC_RELAXED))
    {
      if (b->ops % 2048 == 0)
	{
	  struct batch t = { b->md, { 0 } };
	  pthread_t id;
	  assert_int_equal (pthread_create (&id, NULL, batch_run, &t), 0);
	  assert_int_equal (pthread_join (id, NULL), 0);
	  for (int i = 0; i < BUSY_BATCH; i++)
	    mfree (b->md, t.p[i]);
	}
      unsigned i = (unsigned) (tu_rnd (&b->seed) % BUSY_SLOTS);
      uint64_t r = tu_rnd (&b->seed) % 12;
      if (!p[i])
	{
	  n[i] = busy_size (&b->seed);
	  p[i] = r ? mmalloc (b->md, n[i])
	    : mmemalign (b->md, tu_rnd (&b->seed) % 2 ? 64 : 4096, n[i]);
	  assert_non_null (p[i]);
	  memset (p[i], 0x5c, n[i]);
	}
      else if (r < 6)
	{
	  n[i] = busy_size (&b->seed);
	  p[i] = mrealloc (b->md, p[i], n[i]);
	  assert_non_null (p[i]);
	  memset (p[i], 0x3a, n[i]);
	}
      else
	{
	  unsigned m = (unsigned) (tu_rnd (&b->seed) % (BUSY_SLOTS * 2));
	  if (m < BUSY_SLOTS)
	    p[i] = __atomic_exchange_n (&b->mailbox[m], p[i], __ATOMIC_ACQ_REL);
	  mfree (b->md, p[i]);
	  p[i] = NULL;
	}
      __atomic_add_fetch (&b->ops, 1, __ATOMIC_RELAXED);
    }
  for (unsigned i = 0; i < BUSY_SLOTS; i++)
    mfree (b->md, p[i]);
  return NULL;
}

static long
busy_ops (const struct busy *b)
{
  long n = 0;
  for (int k = 0; k < BUSY_THREADS; k++)
    n += __atomic_load_n (&b[k].ops, __ATOMIC_RELAXED);
  return n;
}

/* Run mmalloc_check in a loop while threads work on the heap, for
   MMALLOC_CHECK_SECONDS (default 1; make stress: more) and until both have
   done a fair number of rounds (at most 5 seconds more: a sanitizer slows
   the walk down); no report may be false, since nobody misuses a block.  */
static void
check_beside_threads (int checked)
{
  void *md = tu_new_heap ();
  if (checked)
    assert_int_equal (mmcheck (md, NULL), 1);
  static int stop;
  static char *mailbox[BUSY_SLOTS];
  stop = 0;
  struct busy b[BUSY_THREADS];
  pthread_t t[BUSY_THREADS];
  for (int k = 0; k < BUSY_THREADS; k++)
    {
      b[k] = (struct busy) { md, 0x9e3779b97f4a7c15ULL * (uint64_t) (k + 1), &stop, mailbox, 0 };
      assert_int_equal (pthread_create (&t[k], NULL, busy_run, &b[k]), 0);
    }
  const char *env = getenv ("MMALLOC_CHECK_SECONDS");
  long want = env && atol (env) > 0 ? atol (env) * 1000 : 1000, ms;
  struct timespec t0, now;
  clock_gettime (CLOCK_MONOTONIC, &t0);
  long walks = 0, problems = 0;
  do
    {
      problems += mmalloc_check (md);
      walks++;
      clock_gettime (CLOCK_MONOTONIC, &now);
      ms = (now.tv_sec - t0.tv_sec) * 1000L + (now.tv_nsec - t0.tv_nsec) / 1000000L;
    }
  while (ms < want || (ms < want + 4000 && (walks < 20 || busy_ops (b) < 2000)));
  __atomic_store_n (&stop, 1, __ATOMIC_RELAXED);
  for (int k = 0; k < BUSY_THREADS; k++)
    assert_int_equal (pthread_join (t[k], NULL), 0);
  long ops = busy_ops (b);
  for (unsigned i = 0; i < BUSY_SLOTS; i++)
    {
      mfree (md, mailbox[i]);
      mailbox[i] = NULL;
    }
  print_message ("%s heap: %ld walks beside %ld operations, %ld problems reported\n",
		 checked ? "checked" : "plain", walks, ops, problems);
  assert_int_equal (problems, 0);
  assert_true (walks >= 2 && ops >= 100);	/* they did run side by side */
  tu_end_heap (md);
}

static void
check_beside_working_threads_reports_nothing_false_when_checked (void **state)
{
  (void) state;
  check_beside_threads (1);
}

static void
check_beside_working_threads_reports_nothing_false (void **state)
{
  (void) state;
  check_beside_threads (0);
}

/* --- the whole-heap check beside an unlocked path held at each of its steps ---

   A thread frees (or allocates and frees) a slot without a lock and is held
   at its k-th kill point (mm_kp_hold), for k = 1, 2, ... until the path
   completes.  Meanwhile the check runs, a thread with no cache frees another
   slot of the same slab through the locked path (which folds the slab's
   remote frees into its bits), and the check runs again: no report may come,
   at any step.  The scenario keeps every held step outside a lock (the
   slabs have room, and none empties), so the check can run there.  */

#define HELD_BLOCKS 16

static int held_state;		/* 1: a thread is held; 2: it may go on */
static int held_count;

static void
hold_here (void)
{
  held_count++;
  __atomic_store_n (&held_state, 1, __ATOMIC_RELEASE);
  while (__atomic_load_n (&held_state, __ATOMIC_ACQUIRE) != 2)
    sched_yield ();
  __atomic_store_n (&held_state, 0, __ATOMIC_RELAXED);
}

struct held
{
  void *md;
  char *target;			/* remote: the slot to free, in a slab nobody owns */
  char *own[HELD_BLOCKS];	/* else: slots of the thread's own slab */
  long k;
  int done;
};

static void *
held_run (void *arg)
{
  struct held *h = arg;
  /* This thread's cache entry for the heap (its own slab of 16-byte slots,
     or of the target's class), made before the held path.  */
  void *warm = mmalloc (h->md, 16);
  assert_non_null (warm);
  for (int i = 0; !h->target && i < HELD_BLOCKS; i++)
    assert_non_null (h->own[i] = mmalloc (h->md, 48));
  mm_kp_left = h->k;
  if (h->target)
    mfree (h->md, h->target);
  else
    mfree (h->md, mmalloc (h->md, 48));
  mm_kp_left = 0;
  mfree (h->md, warm);
  __atomic_store_n (&h->done, 1, __ATOMIC_RELEASE);
  return NULL;
}

static void *
free_run (void *arg)
{
  void **a = arg;
  mfree (a[0], a[1]);		/* no cache: the locked path */
  return NULL;
}

static void *
fill_run (void *arg)
{
  struct held *h = arg;
  for (int i = 0; i < HELD_BLOCKS; i++)
    assert_non_null (h->own[i] = mmalloc (h->md, 48));
  return NULL;
}

/* REMOTE: the held thread frees a slot of a slab whose owner is gone (its
   slot marked in rbits, the count of such frees kept beside); else it
   allocates and frees in its own slab, whose slots others free meanwhile.  */
static void
check_beside_held_path (int remote)
{
  void *md = tu_new_heap ();
  struct held fill = { md, NULL, { 0 }, 0, 0 };
  pthread_t t;
  if (remote)
    {				/* a slab of 48-byte slots, listed, nobody's */
      assert_int_equal (pthread_create (&t, NULL, fill_run, &fill), 0);
      assert_int_equal (pthread_join (t, NULL), 0);
    }
  mm_kp_hold = hold_here;	/* before the threads start */
  held_count = 0;
  long problems = 0, k, spare = HELD_BLOCKS / 2;
  for (k = 1; k < HELD_BLOCKS / 2; k++)
    {
      struct held h = { md, remote ? fill.own[k - 1] : NULL, { 0 }, k, 0 };
      int before = held_count;
      assert_int_equal (pthread_create (&t, NULL, held_run, &h), 0);
      while (!__atomic_load_n (&h.done, __ATOMIC_ACQUIRE)
	     && __atomic_load_n (&held_state, __ATOMIC_ACQUIRE) != 1)
	sched_yield ();
      int held = __atomic_load_n (&held_state, __ATOMIC_ACQUIRE) == 1;
      if (held)
	{
	  problems += mmalloc_check (md);
	  /* Another slot of the held path's slab, freed under the class
	     lock by a thread with no cache.  */
	  char **slot = remote ? &fill.own[spare++] : &h.own[HELD_BLOCKS - 1];
	  void *a[2] = { md, *slot };
	  pthread_t f;
	  assert_int_equal (pthread_create (&f, NULL, free_run, a), 0);
	  assert_int_equal (pthread_join (f, NULL), 0);
	  *slot = NULL;
	  problems += mmalloc_check (md);
	  __atomic_store_n (&held_state, 2, __ATOMIC_RELEASE);
	}
      assert_int_equal (pthread_join (t, NULL), 0);
      problems += mmalloc_check (md);
      for (int i = 0; i < HELD_BLOCKS; i++)
	mfree (md, h.own[i]);
      if (!held)
	{
	  assert_int_equal (held_count, before);
	  break;
	}
    }
  mm_kp_hold = NULL;		/* after they are joined */
  print_message ("%s: held at %ld steps, %ld problems reported\n",
		 remote ? "remote free" : "own slab", k - 1, problems);
  assert_int_equal (problems, 0);
  assert_true (k > 1 && k < HELD_BLOCKS / 2);	/* held at least once; completed */
  for (int i = k; i < HELD_BLOCKS; i++)	/* the targets freed are 0 .. k - 1 */
    mfree (md, fill.own[i]);
  tu_end_heap (md);
}

static void
check_beside_a_remote_free_held_at_each_step_reports_nothing (void **state)
{
  (void) state;
  check_beside_held_path (1);
}

static void
check_beside_an_owner_held_at_each_step_reports_nothing (void **state)
{
  (void) state;
  check_beside_held_path (0);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (mmcheck_before_first_allocation_succeeds),
    cmocka_unit_test (mmcheck_after_an_allocation_needs_force),
    cmocka_unit_test (mmcheck_on_a_checked_heap_succeeds),
    cmocka_unit_test (overrun_by_one_byte_is_reported_at_free),
    cmocka_unit_test (clobbered_header_is_reported),
    cmocka_unit_test (double_free_is_reported_when_checked),
    cmocka_unit_test (free_of_a_bad_pointer_is_reported_when_checked),
    cmocka_unit_test (double_free_aborts_without_mmcheck),
    cmocka_unit_test (bad_pointer_aborts_without_mmcheck),
    cmocka_unit_test (check_counts_damage_in_live_blocks),
    cmocka_unit_test (check_is_clean_on_a_clean_checked_heap),
    cmocka_unit_test (usable_size_under_mmcheck_is_the_size_asked),
    cmocka_unit_test (realloc_under_mmcheck_keeps_contents_and_sizes),
    cmocka_unit_test (overrun_after_realloc_is_reported),
    cmocka_unit_test (check_beside_working_threads_reports_nothing_false_when_checked),
    cmocka_unit_test (check_beside_working_threads_reports_nothing_false),
    cmocka_unit_test (check_beside_a_remote_free_held_at_each_step_reports_nothing),
    cmocka_unit_test (check_beside_an_owner_held_at_each_step_reports_nothing),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
