/* test-recover.c -- a heap file survives kill -9 at random moments.

   A child mutates a file heap forever, publishing each block in a table (key 0)
   only after filling it, and unpublishing it before freeing it.  The parent
   kills it with SIGKILL after a random delay, re-attaches (which recovers the
   heap), and proves the crash model: the heap passes mmalloc_check and every
   published block is allocated with its contents intact.  The same again on
   a heap under mmcheck, mutated by two threads at once: a check header or
   guard caught half written must not read as damage, and at the end every
   published block frees without a report; while damage the program did
   before it died (writes past and before blocks) stays reported.  */
#include "testutil.h"

#include <pthread.h>
#include <time.h>

#define SLOTS 2048
/* Kills per run: MMALLOC_KILL_TRIALS, default 60 (make stress: 1000, or
   STRESS_KILLS); half as many on the checked heap, whose kills cost more to
   verify.  */
static int
trials (void)
{
  const char *e = getenv ("MMALLOC_KILL_TRIALS");
  int n = e ? atoi (e) : 0;
  return n > 0 ? n : tu_stress () ? 1000 : 60;
}

struct slot
{
  unsigned char *p;
  uint64_t size;
  uint64_t seed;
};

struct table
{
  struct slot slot[SLOTS];
};

static void
fill (unsigned char *p, uint64_t size, uint64_t seed)
{
  for (uint64_t i = 0; i < size; i++)
    p[i] = (unsigned char) (seed + i * 7);
}

static int
intact (const unsigned char *p, uint64_t size, uint64_t seed)
{
  for (uint64_t i = 0; i < size; i++)
    if (p[i] != (unsigned char) (seed + i * 7))
      return 0;
  return 1;
}

static uint64_t
pick_size (uint64_t *s)
{
  return tu_size_mix (s, 80, 300, 17, 40000, 300000);
}
struct mutator
{
  void *md;
  uint64_t seed;
  unsigned first, count;	/* the slots this thread works on */
};

static void *
mutate (void *arg)
{
  struct mutator *m = arg;
  void *md = m->md;
  uint64_t seed = m->seed;
  struct table *t = mmalloc_getkey (md, 0);
  for (;;)
    {
      struct slot *s = &t->slot[m->first + tu_rnd (&seed) % m->count];
      unsigned char *p = __atomic_load_n (&s->p, __ATOMIC_ACQUIRE);
      if (p)
	{
	  __atomic_store_n (&s->p, NULL, __ATOMIC_RELEASE);
	  if (tu_rnd (&seed) % 4 == 0)
	    {			/* a resize: republish the moved block */
	      uint64_t n = pick_size (&seed);
	      unsigned char *q = mrealloc (md, p, n);
	      if (!q)
		_exit (4);
	      fill (q, n, s->seed);
	      s->size = n;
	      __atomic_store_n (&s->p, q, __ATOMIC_RELEASE);
	    }
	  else
	    mfree (md, p);
	}
      else
	{
	  uint64_t n = pick_size (&seed);
	  p = mmalloc (md, n);
	  if (!p)
	    _exit (5);
	  s->size = n;
	  s->seed = tu_rnd (&seed);
	  fill (p, n, s->seed);
	  __atomic_store_n (&s->p, p, __ATOMIC_RELEASE);
	}
    }
  return NULL;
}

/* Mutate the heap at PATH with NTHREADS threads, each on its share of the
   slots, until killed.  */
static void
mutate_forever (const char *path, uint64_t seed, int nthreads)
{
  int fd = open (path, O_RDWR);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  if (!md)
    _exit (3);
  struct mutator m[2];
  pthread_t t;
  for (int k = 0; k < nthreads; k++)
    m[k] = (struct mutator) { md, seed + (uint64_t) k * 0x9e3779b97f4a7c15ULL,
      (unsigned) (k * SLOTS / nthreads), (unsigned) (SLOTS / nthreads) };
  if (nthreads > 1 && pthread_create (&t, NULL, mutate, &m[1]))
    _exit (6);
  mutate (&m[0]);
}

static int reports;

static void
count_report (void)
{
  reports++;
}

static void
kill_trials (int checked)
{
  const char *path = tu_path ("kill.heap");
  void *md = tu_new_file_heap ("kill.heap");
  if (checked)
    assert_int_equal (mmcheck (md, NULL), 1);
  struct table *t = mcalloc (md, 1, sizeof *t);
  assert_non_null (t);
  assert_int_equal (mmalloc_setkey (md, 0, t), 1);
  assert_null (mmalloc_detach (md));

  uint64_t seed = 0x9e3779b97f4a7c15ULL ^ (uint64_t) time (NULL);
  int checked_blocks = 0;
  int ntrials = checked ? (trials () + 1) / 2 : trials ();
  for (int trial = 0; trial < ntrials; trial++)
    {
      uint64_t child_seed = tu_rnd (&seed) | 1;
      pid_t pid = tu_fork ();
      if (pid == 0)
	mutate_forever (path, child_seed, checked ? 2 : 1);
      usleep ((useconds_t) (1000 + tu_rnd (&seed) % 20000));
      kill (pid, SIGKILL);
      tu_wait_killed (pid);

      md = tu_reattach (path);
      assert_heap_ok (md);
      t = mmalloc_getkey (md, 0);
      assert_non_null (t);
      for (int i = 0; i < SLOTS; i++)
	{
	  struct slot *s = &t->slot[i];
	  if (!s->p)
	    continue;
	  assert_true (mmalloc_usable_size (md, s->p) >= s->size);
	  assert_true (intact (s->p, s->size, s->seed));
	  checked_blocks++;
	}
      assert_null (mmalloc_detach (md));
    }
  print_message ("%s%d kills, %d published blocks verified\n", checked ? "checked: " : "",
		 ntrials, checked_blocks);
  assert_true (checked_blocks > 0);
  md = tu_reattach (path);
  reports = 0;
  assert_int_equal (mmcheck (md, count_report), checked);
  t = mmalloc_getkey (md, 0);
  for (int i = 0; i < SLOTS; i++)
    mfree (md, t->slot[i].p);
  mfree (md, t);
  assert_int_equal (reports, 0);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  unlink (path);
}

static void
heap_survives_kill9_at_random_moments (void **state)
{
  (void) state;
  kill_trials (0);
}

static void
checked_heap_survives_kill9_at_random_moments (void **state)
{
  (void) state;
  kill_trials (1);
}

/* Recovery repairs only what the library leaves half written: a program's
   write past a block or before it, in a heap whose process died, is still
   reported after the attach that recovers the heap, by mmalloc_check and by
   mfree.  */
static void
recovery_leaves_the_program_s_damage_reported (void **state)
{
  (void) state;
  static const size_t sizes[] = { 24, 100, 3000, 20000, 100000 };
  enum { N = sizeof sizes / sizeof sizes[0] };
  const char *path = tu_path ("misused.heap");
  int fd = tu_newfile ("misused.heap");
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  assert_int_equal (mmcheck (md, NULL), 1);
  char **t = mcalloc (md, 2 * N, sizeof *t);
  assert_non_null (t);
  assert_int_equal (mmalloc_setkey (md, 0, t), 1);
  for (int i = 0; i < 2 * N; i++)
    {
      size_t n = sizes[i % N];
      t[i] = mmalloc (md, n);
      assert_non_null (t[i]);
      memset (t[i], 0x42, n);
    }
  assert_null (mmalloc_detach (md));
  pid_t pid = tu_fork ();
  if (pid == 0)
    {				/* misuse, and die attached */
      fd = open (path, O_RDWR);
      md = mmalloc_attach (fd, NULL);
      if (!md)
	_exit (3);
      t = mmalloc_getkey (md, 0);
      for (int i = 0; i < N; i++)
	{
	  t[i][sizes[i]] = 'x';	/* one byte past the end */
	  t[N + i][-8] ^= 0x5a;	/* into the header's mark */
	}
      kill (getpid (), SIGKILL);
    }
  tu_wait_killed (pid);
  md = tu_reattach (path);
  assert_int_equal (mmalloc_check (md), 2 * N);
  reports = 0;
  assert_int_equal (mmcheck (md, count_report), 1);
  t = mmalloc_getkey (md, 0);
  for (int i = 0; i < 2 * N; i++)
    mfree (md, t[i]);
  assert_int_equal (reports, 2 * N);
  assert_null (mmalloc_detach (md));
  unlink (path);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (heap_survives_kill9_at_random_moments),
    cmocka_unit_test (checked_heap_survives_kill9_at_random_moments),
    cmocka_unit_test (recovery_leaves_the_program_s_damage_reported),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
