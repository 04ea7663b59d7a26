/* test-recover.c -- a heap file survives kill -9 at random moments.

   A child mutates a file heap forever, publishing each block in a table (key 0)
   only after filling it, and unpublishing it before freeing it.  The parent
   kills it with SIGKILL after a random delay, re-attaches (which recovers the
   heap), and proves the crash model: the heap passes mmalloc_check and every
   published block is allocated with its contents intact.  */
#include "testutil.h"

#include <time.h>

#define SLOTS 2048
/* Kills per run: MMALLOC_KILL_TRIALS, default 200 (make stress: thousands).  */
static int
trials (void)
{
  const char *e = getenv ("MMALLOC_KILL_TRIALS");
  int n = e ? atoi (e) : 0;
  return n > 0 ? n : 200;
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

static uint64_t
rnd (uint64_t *s)
{
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

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
  uint64_t r = rnd (s) % 100;
  if (r < 80)
    return rnd (s) % 300;
  if (r < 97)
    return rnd (s) % 40000;
  return rnd (s) % 300000;
}

static void
mutate_forever (const char *path, uint64_t seed)
{
  int fd = open (path, O_RDWR);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  if (!md)
    _exit (3);
  struct table *t = mmalloc_getkey (md, 0);
  for (;;)
    {
      struct slot *s = &t->slot[rnd (&seed) % SLOTS];
      unsigned char *p = __atomic_load_n (&s->p, __ATOMIC_ACQUIRE);
      if (p)
	{
	  __atomic_store_n (&s->p, NULL, __ATOMIC_RELEASE);
	  if (rnd (&seed) % 4 == 0)
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
	  s->seed = rnd (&seed);
	  fill (p, n, s->seed);
	  __atomic_store_n (&s->p, p, __ATOMIC_RELEASE);
	}
    }
}

static void
heap_survives_kill9_at_random_moments (void **state)
{
  (void) state;
  const char *path = tu_path ("kill.heap");
  int fd = tu_newfile ("kill.heap");
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  struct table *t = mcalloc (md, 1, sizeof *t);
  assert_non_null (t);
  assert_int_equal (mmalloc_setkey (md, 0, t), 1);
  assert_null (mmalloc_detach (md));

  uint64_t seed = 0x9e3779b97f4a7c15ULL ^ (uint64_t) time (NULL);
  int checked_blocks = 0;
  int ntrials = trials ();
  for (int trial = 0; trial < ntrials; trial++)
    {
      uint64_t child_seed = rnd (&seed) | 1;
      pid_t pid = fork ();
      assert_true (pid >= 0);
      if (pid == 0)
	mutate_forever (path, child_seed);
      usleep ((useconds_t) (1000 + rnd (&seed) % 20000));
      kill (pid, SIGKILL);
      int st;
      assert_int_equal (waitpid (pid, &st, 0), pid);
      assert_true (WIFSIGNALED (st) && WTERMSIG (st) == SIGKILL);

      fd = open (path, O_RDWR);
      md = mmalloc_attach (fd, NULL);
      close (fd);
      assert_non_null (md);
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
  print_message ("%d kills, %d published blocks verified\n", ntrials, checked_blocks);
  assert_true (checked_blocks > 0);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (heap_survives_kill9_at_random_moments),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
