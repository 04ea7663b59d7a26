/* test-fork.c -- fork and the drop-in malloc, in the spirit of glibc's
   tst-mallocfork, tst-mallocfork2 and tst-mallocfork3.

   - fork from a signal handler while every thread, the interrupted one
     included, is allocating: the child allocates and frees at once and
     exits 0, fifty times over; and a few times with the handler
     interrupting large allocations, inside the page lock: the fork must
     complete all the same;
   - fork from a thread while others allocate: the child's heap passes the
     whole-heap check, serves every kind of request, frees blocks the
     parent made, starts threads of its own, and forks again;
   - the room in slabs of threads that do not exist in the child is the
     child's to use;
   - the parent's heap goes on as before after each fork.  */
#include "mtest.h"

#include <sys/mman.h>
#include <sys/time.h>

/* --- the load: threads that allocate and free until told to stop -------- */

static volatile int stop_load;

struct load
{
  uint64_t seed;
  unsigned long ops;
  int small;
};

/* Sizes of the load: mostly small, some large (page work, under the page
   lock, with system calls).  A SMALL load keeps to slots of slabs, whose
   common paths take no lock.  Never 0: a byte of each block is written
   (with MMALLOC_OPTIONS=check, a write into a block of 0 bytes is an
   overrun).  */
static size_t
load_size (uint64_t *s, int small)
{
  uint64_t r = mt_next (s);
  if (small)
    return (size_t) (r >> 8) % 2048 + 1;
  switch (r % 16)
    {
    case 0:
      return (size_t) (r >> 8) % 300000 + 1;
    case 1:
    case 2:
      return (size_t) (r >> 8) % 16384 + 1;
    default:
      return (size_t) (r >> 8) % 512 + 1;
    }
}

/* One step of the load: replace a random block of a window of live ones.  */
static void
load_step (void **win, size_t nwin, uint64_t *s, int small)
{
  uint64_t r = mt_next (s);
  size_t i = (size_t) (r % nwin);
  void *p = win[i];
  switch ((r >> 32) % 8)
    {
    case 0:
      {
	size_t n = load_size (s, small);
	win[i] = realloc (p, n);
	if (!win[i] && n)	/* realloc (p, 0) frees P */
	  free (p);
	return;
      }
    case 1:
      /* Aligned blocks: page runs (aligned slots of small classes have a
	 test of their own in test-threads).  */
      free (p);
      win[i] = small ? malloc (load_size (s, small))
	: memalign ((size_t) 128 << ((r >> 40) % 6), load_size (s, small));
      break;
    case 2:
      free (p);
      win[i] = calloc (1, load_size (s, small) % 4096 + 1);
      break;
    default:
      free (p);
      win[i] = malloc (load_size (s, small));
    }
  if (win[i])
    *(volatile char *) win[i] = 1;
}

static void *
load_thread (void *arg)
{
  struct load *l = arg;
  void *win[64] = { 0 };
  while (!stop_load)
    {
      load_step (win, 64, &l->seed, l->small);
      l->ops++;
    }
  for (int i = 0; i < 64; i++)
    free (win[i]);
  return NULL;
}

enum { NLOAD = 3 };
static pthread_t load_tid[NLOAD];
static struct load loads[NLOAD];

static void
load_start (int small)
{
  stop_load = 0;
  for (int i = 0; i < NLOAD; i++)
    {
      loads[i].seed = 0x1234567ULL * (uint64_t) (i + 1);
      loads[i].ops = 0;
      loads[i].small = small;
      assert_int_equal (pthread_create (&load_tid[i], NULL, load_thread, &loads[i]), 0);
    }
}

static void
load_stop (void)
{
  stop_load = 1;
  for (int i = 0; i < NLOAD; i++)
    assert_int_equal (pthread_join (load_tid[i], NULL), 0);
}

/* --- fork from a signal handler ---------------------------------------- */

static volatile sig_atomic_t handled;
static volatile pid_t handler_child;
static volatile double fork_seconds;

/* The child: allocation of each kind must work at once, in the handler.  */
static void
child_in_handler (void)
{
  struct sigaction sa;
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigaction (SIGALRM, &sa, NULL);
  alarm (20);			/* a hang is a failure, not a stuck suite */
  char *a = malloc (100);
  char *b = malloc (50000);
  char *c = calloc (10, 10);
  char *d = memalign (4096, 100);
  char *e = realloc (NULL, 3000);
  if (!a || !b || !c || !d || !e)
    _exit (3);
  memset (a, 1, 100);
  memset (b, 2, 50000);
  memset (d, 4, 100);
  e = realloc (e, 9000);
  if (!e)
    _exit (4);
  free (a);
  free (b);
  free (c);
  free (d);
  free (e);
  _exit (0);
}

static void
on_alarm (int sig)
{
  (void) sig;
  int saved = errno;
  double t0 = mt_now ();
  pid_t pid = fork ();
  if (pid == 0)
    child_in_handler ();
  fork_seconds = mt_now () - t0;
  handler_child = pid;
  handled++;
  errno = saved;
}

static int
wait_child (pid_t pid, int seconds)
{
  int st = 0;
  for (int i = 0; i < seconds * 100; i++)
    {
      pid_t w = waitpid (pid, &st, WNOHANG);
      if (w == pid)
	return st;
      if (w < 0 && errno != EINTR)
	fail_msg ("waitpid: %s", strerror (errno));
      usleep (10000);
    }
  kill (pid, SIGKILL);
  waitpid (pid, &st, 0);
  fail_msg ("child %d did not exit within %d s", (int) pid, seconds);
  return st;
}

/* FORKS times, or until SECONDS have passed (a fork that finds a lock
   taken waits for it a while: the suite must end in time): arm a one-shot
   timer, allocate in the main thread (SMALL: slots only) until its handler
   has forked, and wait for that child.  Returns the number of children that
   did not exit 0; *DONE is the number of forks, *SLOWEST the longest, as
   the handler measured it.  */
static int
forks_from_handler (int forks, double seconds, int small, int *done, double *slowest)
{
  struct sigaction sa, old;
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigemptyset (&sa.sa_mask);
  assert_int_equal (sigaction (SIGALRM, &sa, &old), 0);
  handled = 0;
  *slowest = 0;
  load_start (small);
  uint64_t seed = 42;
  void *win[64] = { 0 };
  int bad = 0;
  double t0 = mt_now ();
  *done = 0;
  for (int i = 0; i < forks && mt_now () - t0 < seconds; i++)
    {
      struct itimerval it = { { 0, 0 }, { 0, 300 + 277 * (i % 7) } };
      int before = handled;
      assert_int_equal (setitimer (ITIMER_REAL, &it, NULL), 0);
      /* The main thread allocates too, so the signal interrupts malloc.  */
      while (handled == before)
	load_step (win, 64, &seed, small);
      if (fork_seconds > *slowest)
	*slowest = fork_seconds;
      pid_t pid = handler_child;
      if (pid < 0)
	fail_msg ("fork in the handler failed");
      int st = wait_child (pid, 30);
      if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
	{
	  mt_print_status ("child forked in a signal handler", st);
	  bad++;
	}
      ++*done;
    }
  load_stop ();
  for (int i = 0; i < 64; i++)
    free (win[i]);
  sigaction (SIGALRM, &old, NULL);
  return bad;
}

static int
env_count (const char *name, int dflt)
{
  const char *v = getenv (name);
  return v && atoi (v) > 0 ? atoi (v) : dflt;
}

/* Fifty forks (MTEST_SIGFORKS; at most 45 s of them) from a signal handler
   while three threads and the interrupted main thread allocate and free
   small blocks, of the slabs' lock-free paths mostly.  */
static void
fork_from_signal_handler_under_load (void **state)
{
  (void) state;
  int n = env_count ("MTEST_SIGFORKS", 50), done;
  double slowest, t0 = mt_now ();
  int bad = forks_from_handler (n, 45, 1, &done, &slowest);
  print_message ("%d forks from a signal handler in %.1f s (slowest %.2f s)\n",
		 done, mt_now () - t0, slowest);
  assert_int_equal (bad, 0);
  assert_heap_ok (NULL);
}

/* The handler interrupts the main thread in large allocations, that is
   mostly inside the page lock: the fork must still complete (mmalloc's
   prepare handler gives up on a lock it cannot have, after a bounded wait:
   no deadlock), and the child must be able to allocate.  */
static void
fork_from_signal_handler_inside_page_work (void **state)
{
  (void) state;
  int n = env_count ("MTEST_PAGEFORKS", 4), done;
  double slowest, t0 = mt_now ();
  int bad = forks_from_handler (n, 20, 0, &done, &slowest);
  print_message ("%d forks interrupting page work in %.1f s (slowest %.2f s)\n",
		 done, mt_now () - t0, slowest);
  assert_int_equal (bad, 0);
  assert_true (slowest < 30.0);
  assert_heap_ok (NULL);
}

/* --- fork from a thread while others allocate ---------------------------- */

static void *
child_thread (void *arg)
{
  uint64_t s = (uint64_t) (uintptr_t) arg;
  void *win[32] = { 0 };
  for (int i = 0; i < 20000; i++)
    load_step (win, 32, &s, 0);
  for (int i = 0; i < 32; i++)
    free (win[i]);
  return NULL;
}

static void *parent_blocks[256];

/* MMALLOC_OPTIONS=check: every block checked, no thread owns a slab.  */
static int
checking (void)
{
  const char *o = getenv ("MMALLOC_OPTIONS");
  return o && strstr (o, "check");
}

static int
child_after_fork (int depth)
{
  alarm (30);
  /* The heap as the fork left it is consistent.  */
  if (mmalloc_check (NULL) != 0)
    return 10;
  /* Blocks the parent made (from the main thread) can be freed here.  */
  for (int i = 0; i < 256; i += 2)
    {
      free (parent_blocks[i]);
      parent_blocks[i] = NULL;
    }
  uint64_t s = 99 + (uint64_t) depth;
  void *win[64] = { 0 };
  for (int i = 0; i < 20000; i++)
    load_step (win, 64, &s, 0);
  pthread_t t[3];
  for (int i = 0; i < 3; i++)
    if (pthread_create (&t[i], NULL, child_thread, (void *) (uintptr_t) (i + 7)))
      return 11;
  for (int i = 0; i < 3; i++)
    pthread_join (t[i], NULL);
  for (int i = 0; i < 64; i++)
    free (win[i]);
  if (depth < 2)
    {
      fflush (NULL);
      pid_t pid = fork ();
      if (pid < 0)
	return 12;
      if (pid == 0)
	_exit (child_after_fork (depth + 1));
      int st;
      if (waitpid (pid, &st, 0) != pid || !WIFEXITED (st))
	return 13;
      if (WEXITSTATUS (st))
	return WEXITSTATUS (st);
    }
  for (int i = 1; i < 256; i += 2)
    {
      free (parent_blocks[i]);
      parent_blocks[i] = NULL;
    }
  if (mmalloc_check (NULL) != 0)
    return 14;
  return 0;
}

static void
fork_while_threads_allocate (void **state)
{
  (void) state;
  for (int i = 0; i < 256; i++)
    {
      parent_blocks[i] = malloc ((size_t) (i * 131 % 20000));
      assert_non_null (parent_blocks[i]);
    }
  load_start (0);
  int bad = 0;
  for (int i = 0; i < 30; i++)
    {
      usleep (2000);
      fflush (NULL);
      pid_t pid = fork ();
      assert_true (pid >= 0);
      if (pid == 0)
	_exit (child_after_fork (i % 3 == 0 ? 0 : 2));
      int st = wait_child (pid, 60);
      if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
	{
	  mt_print_status ("forked child", st);
	  bad++;
	}
    }
  load_stop ();
  for (int i = 0; i < 256; i++)
    free (parent_blocks[i]);
  assert_int_equal (bad, 0);
  assert_heap_ok (NULL);
}

/* Threads alive at the fork own slabs with free slots; in the child they do
   not exist, and the child's allocations must still be able to use that
   room (the C library's malloc hands the other threads' arenas to the
   child).  The child allocates as much as the threads left free: the heap
   must not grow by more than a fraction of it.  In a new process (this
   program again, with --owned-room), so that no other room exists.  */
enum { OWNERS = 8, PER_OWNER = 4000 };
static pthread_barrier_t owners_ready, owners_go;

static void *
owner_thread (void *arg)
{
  (void) arg;
  static __thread void *p[PER_OWNER];
  for (int i = 0; i < PER_OWNER; i++)
    p[i] = malloc (64);
  for (int i = 0; i < PER_OWNER; i++)
    if (i % 64)
      free (p[i]);		/* one in 64 stays: the slabs stay owned */
  pthread_barrier_wait (&owners_ready);
  pthread_barrier_wait (&owners_go);
  for (int i = 0; i < PER_OWNER; i += 64)
    free (p[i]);
  return NULL;
}

static void
child_fills_owned_room (void *arg)
{
  (void) arg;
  size_t n = (size_t) OWNERS * PER_OWNER;
  void **q = mmap (NULL, n * sizeof *q, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (q == MAP_FAILED)
    _exit (2);
  struct mstats a = mmstats (NULL);
  for (size_t i = 0; i < n; i++)
    if (!(q[i] = malloc (64)))
      _exit (3);
  struct mstats b = mmstats (NULL);
  size_t grew = b.bytes_total - a.bytes_total, asked = n * 64;
  fprintf (stderr, "  child: %zu KiB of 64-byte blocks made the heap grow by %zu KiB"
	   " (%zu KiB were free in slabs of the parent's threads)\n",
	   asked >> 10, grew >> 10, a.bytes_free >> 10);
  _exit (grew <= asked / 4 ? 0 : 4);
}

static int
owned_room_main (void)
{
  pthread_t t[OWNERS];
  pthread_barrier_init (&owners_ready, NULL, OWNERS + 1);
  pthread_barrier_init (&owners_go, NULL, OWNERS + 1);
  for (int i = 0; i < OWNERS; i++)
    if (pthread_create (&t[i], NULL, owner_thread, NULL))
      return 5;
  pthread_barrier_wait (&owners_ready);
  fflush (NULL);
  pid_t pid = fork ();
  if (pid < 0)
    return 6;
  if (pid == 0)
    {
      alarm (60);
      child_fills_owned_room (NULL);
    }
  int st;
  if (waitpid (pid, &st, 0) != pid)
    return 7;
  pthread_barrier_wait (&owners_go);
  for (int i = 0; i < OWNERS; i++)
    pthread_join (t[i], NULL);
  return WIFEXITED (st) ? WEXITSTATUS (st) : 8;
}

/* This program run anew with ARG (an option of main), under a watchdog of
   SECONDS (an alarm survives exec): a process that never had a thread.  */
static void
exec_self (void *arg)
{
  char self[4096];
  ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0)
    _exit (126);
  self[n] = 0;
  execl (self, self, (const char *) arg, (char *) NULL);
  _exit (127);
}

static int
run_self (const char *arg, unsigned seconds)
{
  return mt_run_child (exec_self, (void *) arg, seconds);
}

static void
child_uses_room_of_parent_threads (void **state)
{
  (void) state;
  if (checking ())
    skip ();			/* no slab is owned: nothing to hand over */
  assert_child_ok (run_self ("--owned-room", 60));
}

/* The parent is unaffected by its children: figures back to where they were
   once the load is gone.  */
static void
parent_heap_unchanged_by_children (void **state)
{
  (void) state;
  struct mstats a = mmstats (NULL);
  for (int i = 0; i < 20; i++)
    {
      void *p = malloc (1000);
      pid_t pid = fork ();
      assert_true (pid >= 0);
      if (pid == 0)
	{
	  free (p);
	  for (int k = 0; k < 1000; k++)
	    free (malloc ((size_t) k * 10));
	  _exit (mmalloc_check (NULL) == 0 && mmstats (NULL).chunks_used == a.chunks_used ? 0 : 1);
	}
      int st;
      assert_int_equal (waitpid (pid, &st, 0), pid);
      assert_child_ok (st);
      free (p);
    }
  struct mstats b = mmstats (NULL);
  assert_int_equal (b.chunks_used, a.chunks_used);
  assert_int_equal (b.bytes_used, a.bytes_used);
}

/* A heap file attached before the fork is still the parent's: in the child
   it is read-only, though the slabs the forking thread owns still carry its
   owner token.  A free there is refused (reported: abort), never a bit
   cleared in the file the parent goes on using.  */
static void *file_md;

static void
free_in_child (void *p)
{
  mfree (file_md, p);
  _exit (5);
}

static void
heap_file_is_read_only_in_the_child (void **state)
{
  (void) state;
  int fd = tu_newfile ("forked.heap");
  file_md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (file_md);
  void *p = mmalloc (file_md, 64);	/* this thread owns its slab */
  assert_non_null (p);
  assert_int_equal (mmstats (file_md).chunks_used, 1);
  char err[512];
  int st = tu_child (free_in_child, p, err, sizeof err);
  if (!WIFSIGNALED (st) || WTERMSIG (st) != SIGABRT)
    fail_msg ("status 0x%x, stderr: %s", st, err);
  assert_non_null (strstr (err, "read-only"));
  assert_int_equal (mmstats (file_md).chunks_used, 1);	/* still allocated */
  assert_int_equal (mmalloc_check (file_md), 0);
  mfree (file_md, p);
  assert_int_equal (mmstats (file_md).chunks_used, 0);
  assert_null (mmalloc_detach (file_md));
}

/* --- forks the prepare handler once could not survive --------------------

   Each scenario runs in a child of its own (mt_run_child) under a watchdog:
   a hang is a SIGALRM, a failure.  */

static void
expect_child_ok (const char *what, int st)
{
  if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
    {
      mt_print_status (what, st);
      fail_msg ("%s failed", what);
    }
}

/* fork, then the child runs FN and exits with its result; waits for it
   (through EINTR).  The wait status.  */
static int
fork_and_wait (int (*fn) (void))
{
  pid_t pid = fork ();
  if (pid == 0)
    _exit (fn ());
  if (pid < 0)
    return -1;
  int st;
  while (waitpid (pid, &st, 0) < 0)
    if (errno != EINTR)
      return -1;
  return st;
}

static int
child_mallocs (void)
{
  void *p = malloc (100), *q = malloc (100000);
  free (p);
  free (q);
  return p && q ? 0 : 1;
}

/* Two hundred heaps (each with 45 locks), all in use: the parent and the
   child both allocate in every one of them after the fork.  */
enum { MANY_HEAPS = 200 };

static void
many_heaps_scenario (void *arg)
{
  (void) arg;
  static void *md[MANY_HEAPS];
  for (int h = 0; h < MANY_HEAPS; h++)
    if (!(md[h] = mmalloc_attach (-1, NULL)) || !mmalloc (md[h], 100))
      _exit (2);
  for (int round = 0; round < 3; round++)
    {
      pid_t pid = fork ();
      if (pid < 0)
	_exit (3);
      if (pid == 0)
	{
	  for (int h = 0; h < MANY_HEAPS; h++)
	    if (!mmalloc (md[h], 200) || !mmalloc (md[h], 50000))
	      _exit (4);
	  _exit (child_mallocs ());
	}
      int st;
      if (waitpid (pid, &st, 0) != pid || !WIFEXITED (st) || WEXITSTATUS (st))
	_exit (5);
      for (int h = 0; h < MANY_HEAPS; h++)
	if (!mmalloc (md[h], 300) || !mmalloc (md[h], 60000))
	  _exit (6);
      if (child_mallocs ())
	_exit (7);
    }
  for (int h = 0; h < MANY_HEAPS; h++)
    if (mmalloc_detach (md[h]))
      _exit (8);
}

static void
fork_with_200_heaps (void **state)
{
  (void) state;
  expect_child_ok ("fork with 200 heaps", mt_run_child (many_heaps_scenario, NULL, 30));
}

/* A profiling timer (CPU time, the fork's included) interrupts the process
   again and again; its handler either forks or allocates.  The main thread,
   alone, forks in a loop, so the signal often arrives inside fork, between
   the C library's calls of the fork handlers.  It allocates too, with the
   signal blocked (a handler that allocates must not interrupt malloc).  */
static volatile sig_atomic_t prof_hits, prof_bad;
static volatile int prof_mode;	/* 0: the handler forks; 1: it allocates */

static void
on_prof (int sig)
{
  (void) sig;
  int saved = errno;
  prof_hits++;
  if (prof_mode == 0)
    {
      int st = fork_and_wait (child_mallocs);
      if (st == -1 || !WIFEXITED (st) || WEXITSTATUS (st))
	prof_bad++;
    }
  else
    {
      void *p = malloc (40 + (size_t) prof_hits % 500);
      void *q = malloc (40000 + (size_t) prof_hits % 70000);
      void *r = calloc (3, 1000);
      if (!p || !q || !r)
	prof_bad++;
      free (p);
      free (q);
      free (r);
    }
  errno = saved;
}

static void
forks_under_prof_timer (void *arg)
{
  prof_mode = (int) (intptr_t) arg;
  prof_hits = prof_bad = 0;
  struct sigaction sa;
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_prof;
  sa.sa_flags = SA_RESTART;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGPROF, &sa, NULL);
  struct itimerval it = { { 0, 150 }, { 0, 150 } };
  setitimer (ITIMER_PROF, &it, NULL);
  void *keep[16] = { 0 };
  double t0 = mt_now ();
  int forks = 0;
  sigset_t prof, old;
  sigemptyset (&prof);
  sigaddset (&prof, SIGPROF);
  for (; forks < 2000 && mt_now () - t0 < 2.0; forks++)
    {
      int k = forks % 16;
      sigprocmask (SIG_BLOCK, &prof, &old);
      free (keep[k]);
      keep[k] = malloc ((size_t) (forks * 37 % 70000));
      sigprocmask (SIG_SETMASK, &old, NULL);
      int st = fork_and_wait (child_mallocs);
      if (st == -1 || !WIFEXITED (st) || WEXITSTATUS (st))
	_exit (2);
    }
  memset (&it, 0, sizeof it);
  setitimer (ITIMER_PROF, &it, NULL);
  for (int k = 0; k < 16; k++)
    free (keep[k]);
  fprintf (stderr, "  %d forks, %d signals, %d bad\n", forks, (int) prof_hits,
	   (int) prof_bad);
  if (prof_bad || !prof_hits)
    _exit (3);
}

/* Both in a process that never had a thread (run_self): once a process
   has had one, the C library takes a lock of its own around the fork
   handlers, and a fork from a signal handler inside fork waits for it, with
   any malloc.  */
static void
fork_in_handler_interrupting_fork (void **state)
{
  (void) state;
  expect_child_ok ("forks from a handler that interrupts fork",
		   run_self ("--fork-in-fork", 20));
}

static void
handler_allocates_while_main_forks (void **state)
{
  (void) state;
  expect_child_ok ("allocation in a handler that interrupts fork",
		   run_self ("--alloc-in-fork", 20));
}

/* stdio's list lock against the allocator's locks: one thread forks, one
   flushes every stream (the list lock, then each stream's lock), one reads
   lines with getline (a stream's lock, then malloc inside it).  */
static volatile int stdio_stop;
static FILE *stdio_in;

static void *
stdio_flusher (void *arg)
{
  (void) arg;
  while (!stdio_stop)
    fflush (NULL);
  return NULL;
}

static void *
stdio_reader (void *arg)
{
  (void) arg;
  while (!stdio_stop)
    {
      char *line = NULL;	/* a new buffer each time: malloc under the lock */
      size_t cap = 0;
      if (getline (&line, &cap, stdio_in) < 0)
	rewind (stdio_in);
      free (line);
    }
  return NULL;
}

static int
child_exits (void)
{
  return 0;
}

static void
stdio_scenario (void *arg)
{
  (void) arg;
  stdio_in = tmpfile ();
  if (!stdio_in)
    _exit (2);
  for (int i = 0; i < 2000; i++)
    fprintf (stdio_in, "%0*d\n", 50 + i % 300, i);
  rewind (stdio_in);
  pthread_t t[2];
  if (pthread_create (&t[0], NULL, stdio_flusher, NULL)
      || pthread_create (&t[1], NULL, stdio_reader, NULL))
    _exit (3);
  double t0 = mt_now ();
  for (int i = 0; i < 300 && mt_now () - t0 < 2.0; i++)
    {
      int st = fork_and_wait (child_exits);
      if (st == -1 || !WIFEXITED (st) || WEXITSTATUS (st))
	_exit (4);
    }
  stdio_stop = 1;
  pthread_join (t[0], NULL);
  pthread_join (t[1], NULL);
  fclose (stdio_in);
}

static void
fork_against_stdio_threads (void **state)
{
  (void) state;
  expect_child_ok ("fork beside fflush (NULL) and getline",
		   mt_run_child (stdio_scenario, NULL, 20));
}

int
main (int argc, char **argv)
{
  mt_require_preload ();
  if (argc > 1 && !strcmp (argv[1], "--owned-room"))
    return owned_room_main ();
  if (argc > 1 && !strcmp (argv[1], "--fork-in-fork"))
    forks_under_prof_timer ((void *) 0);
  if (argc > 1 && !strcmp (argv[1], "--alloc-in-fork"))
    forks_under_prof_timer ((void *) 1);
  if (argc > 1 && argv[1][0] == '-')
    return 0;
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (fork_from_signal_handler_under_load),
    cmocka_unit_test (fork_from_signal_handler_inside_page_work),
    cmocka_unit_test (fork_while_threads_allocate),
    cmocka_unit_test (child_uses_room_of_parent_threads),
    cmocka_unit_test (parent_heap_unchanged_by_children),
    cmocka_unit_test (heap_file_is_read_only_in_the_child),
    cmocka_unit_test (fork_with_200_heaps),
    cmocka_unit_test (fork_in_handler_interrupting_fork),
    cmocka_unit_test (handler_allocates_while_main_forks),
    cmocka_unit_test (fork_against_stdio_threads),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
