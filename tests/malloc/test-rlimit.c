/* test-rlimit.c -- allocation when the address space runs out, in the spirit
   of glibc's tst-malloc-thread-fail (failures under RLIMIT_AS):

   - in a forked child whose heap already exists, RLIMIT_AS is set below
     what the process uses: blocks of every size are taken until malloc
     says NULL with ENOMEM (never a crash), new threads fail or allocate,
     then everything is freed and allocation works again;
   - a process that starts under RLIMIT_AS (the program runs itself again
     through /proc/self/exe) makes its heap within the limit, and fills it
     to NULL/ENOMEM the same way;
   - a process that starts with 2 MiB of address space left makes its heap
     and allocates, gets NULL/ENOMEM from every entry point once that room
     is used, and more once the limit is raised;
   - a process whose limit leaves no room at all gets NULL/ENOMEM from
     every entry point, and a heap once the limit is raised.  */
#include "mtest.h"

#include <sys/mman.h>
#include <sys/resource.h>

static int
set_as_limit (size_t bytes)
{
  struct rlimit rl;
  if (getrlimit (RLIMIT_AS, &rl))
    return -1;
  rl.rlim_cur = bytes;
  return setrlimit (RLIMIT_AS, &rl);
}

/* Exit codes of the children, so that the parent can say what went wrong.  */
enum
{ E_NOTNULL = 20, E_ERRNO, E_RETRY, E_CHECK, E_CONTENT, E_THREAD, E_LIMIT, E_NOROOM,
  E_OVER };

struct fill
{
  void **p;
  size_t n, cap, bytes, largest;	/* largest: the largest block had */
};

static void *
thread_allocates (void *arg)
{
  (void) arg;
  void *p = malloc (100);
  void *q = malloc (20000);
  int ok = p && q;
  free (p);
  free (q);
  return ok ? NULL : (void *) 1;
}

/* Allocate blocks of SIZE (through the entry point KIND) until NULL; the
   failure must be ENOMEM.  Every block gets a byte written at each end.  */
static int
fill_with (struct fill *f, size_t size, int kind)
{
  for (;;)
    {
      if (f->n == f->cap)
	return 0;		/* the array is full: enough */
      errno = 0;
      void *p;
      switch (kind)
	{
	case 0:
	  p = malloc (size);
	  break;
	case 1:
	  p = calloc (1, size);
	  break;
	case 2:
	  p = memalign (4096, size);
	  break;
	default:
	  p = realloc (NULL, size);
	}
      if (!p)
	return errno == ENOMEM ? 0 : E_ERRNO;
      ((char *) p)[0] = 1;
      ((char *) p)[size - 1] = 2;
      f->p[f->n++] = p;
      f->bytes += size;
      if (size > f->largest)
	f->largest = size;
    }
}

/* Fill the heap down to small blocks (at most ROOM bytes, what the limit
   leaves), check that the failures are clean, free everything, and
   allocate again.  */
enum { CAP = 1 << 20 };

/* Room for the blocks' addresses, mapped before the limit is set.  */
static void **
block_array (void)
{
  void *p = mmap (NULL, CAP * sizeof (void *), PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static int
exhaust_and_recover (size_t first, size_t room, void **array)
{
  struct fill f = { array, 0, CAP, 0, 0 };
  if (!array)
    return E_LIMIT;
  int r;
  size_t sizes[] = { first, first / 4, (size_t) 16 << 20, (size_t) 1 << 20, 65536, 16384,
    4096, 1024, 100, 16 };
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
    if (sizes[k] && (r = fill_with (&f, sizes[k], (int) (k % 4))))
      return r;
  if (f.n == f.cap)
    return E_NOROOM;		/* never reached the end */
  if (f.bytes > room)
    return E_OVER;		/* more than the limit leaves */
  fprintf (stderr, "  heap full after %zu blocks, %zu MiB\n", f.n, f.bytes >> 20);
  /* Out of memory now: every entry point says so.  */
  errno = 0;
  if (malloc ((size_t) 64 << 20))
    return E_NOTNULL;
  if (errno != ENOMEM)
    return E_ERRNO;
  void *out = (void *) 1;
  if (posix_memalign (&out, 4096, (size_t) 64 << 20) != ENOMEM || out != (void *) 1)
    return E_ERRNO;
  /* A new thread: may not be created (no stack), but must not crash.  */
  pthread_t t;
  if (pthread_create (&t, NULL, thread_allocates, NULL) == 0)
    {
      void *tr = NULL;
      pthread_join (t, &tr);	/* whatever it got, it returned */
    }
  /* The blocks are intact; free them all.  */
  for (size_t i = 0; i < f.n; i++)
    if (((char *) f.p[i])[0] != 1)
      return E_CONTENT;
  for (size_t i = 0; i < f.n; i++)
    free (f.p[i]);
  if (mmalloc_check (NULL) != 0)
    return E_CHECK;
  /* And the space is there again (as much as the limit allowed).  */
  void *again = malloc (f.largest);
  void *small = malloc (100);
  if (!again || !small)
    return E_RETRY;
  free (again);
  free (small);
  if (pthread_create (&t, NULL, thread_allocates, NULL) == 0)
    {
      void *tr = (void *) 1;
      pthread_join (t, &tr);
      if (tr)
	return E_THREAD;
    }
  return 0;
}

static const char *
child_error (int code)
{
  switch (code)
    {
    case E_NOTNULL:
      return "an allocation past the end succeeded";
    case E_ERRNO:
      return "a failure did not say ENOMEM";
    case E_RETRY:
      return "allocation failed after everything was freed";
    case E_CHECK:
      return "mmalloc_check found problems";
    case E_CONTENT:
      return "a block lost its contents";
    case E_THREAD:
      return "a new thread could not allocate after the limit";
    case E_LIMIT:
      return "setrlimit or the setup failed";
    case E_OVER:
      return "more was allocated than the limit leaves room for";
    case E_NOROOM:
      return "the heap never ran out";
    default:
      return "?";
    }
}

static void
expect_child (int st)
{
  if (WIFEXITED (st) && WEXITSTATUS (st) >= E_NOTNULL)
    print_message ("child: %s\n", child_error (WEXITSTATUS (st)));
  assert_child_ok (st);
}

/* --- the heap exists before the limit -------------------------------------- */

static void
limited_child (void *arg)
{
  (void) arg;
  free (malloc (100));		/* the heap exists */
  void **array = block_array ();
  if (set_as_limit (tu_vm_size () / 2))	/* below what is mapped: nothing new */
    _exit (E_LIMIT);
  /* Only what the heap had reserved before: a few MiB.  */
  _exit (exhaust_and_recover ((size_t) 1 << 30, (size_t) 64 << 20, array));
}

static void
exhausted_in_a_forked_child (void **state)
{
  (void) state;
  expect_child (mt_run_child (limited_child, NULL, 60));
}

/* --- the process starts under the limit ------------------------------------ */

static char self[4096];

/* Run this program again with MODE: it sets its own limit before it
   allocates anything.  */
static int
run_self (const char *mode)
{
  fflush (NULL);
  pid_t pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      alarm (60);
      char *argv[] = { self, (char *) mode, NULL };
      execv (self, argv);
      _exit (127);
    }
  int st;
  assert_int_equal (waitpid (pid, &st, 0), pid);
  return st;
}

/* In the new process, before its first allocation: the limit is what it
   uses plus ROOM.  */
static int
limit_before_any_heap (size_t room)
{
  size_t vm = tu_vm_size ();
  if (!vm || vm > ((size_t) 16 << 30))	/* a heap exists already */
    return E_LIMIT;
  return set_as_limit (vm + room) ? E_LIMIT : 0;
}

static int
child_fresh (void)
{
  /* Room for a heap of 128 MiB or so, made now within the limit: fill it.  */
  void **array = block_array ();
  int r = limit_before_any_heap ((size_t) 200 << 20);
  return r ? r : exhaust_and_recover ((size_t) 16 << 20, (size_t) 200 << 20, array);
}

/* Every entry point fails cleanly, with ENOMEM; free (NULL) keeps errno.  */
static int
all_fail (void)
{
  errno = 0;
  if (malloc ((size_t) 4 << 20) || errno != ENOMEM)
    return E_NOTNULL;
  if (calloc (1, (size_t) 4 << 20) || realloc (NULL, (size_t) 4 << 20)
      || memalign (64, (size_t) 4 << 20) || valloc ((size_t) 4 << 20)
      || aligned_alloc (16, (size_t) 4 << 20))
    return E_NOTNULL;
  void *out = (void *) 1;
  if (posix_memalign (&out, 64, (size_t) 4 << 20) != ENOMEM || out != (void *) 1)
    return E_ERRNO;
  errno = 1234;
  free (NULL);
  return errno == 1234 ? 0 : E_ERRNO;
}

/* Room again: the next call makes the heap, or grows it.  */
static int
room_again (void)
{
  if (set_as_limit (RLIM_INFINITY))
    return E_LIMIT;
  char *p = malloc ((size_t) 8 << 20);
  if (!p)
    return E_RETRY;
  memset (p, 1, 100);
  free (p);
  return mmalloc_check (NULL) ? E_CHECK : 0;
}

static int
child_little_room (void)
{
  /* 2 MiB left, as a program under a tight ulimit -v may have: the heap is
     made, a growing array doubles until the room is used up, then every
     entry point fails cleanly.  */
  int r = limit_before_any_heap ((size_t) 2 << 20);
  if (r)
    return r;
  char *a = NULL;
  size_t n = 0;
  for (size_t want = 16;; want *= 2)
    {
      errno = 0;
      char *b = realloc (a, want);
      if (!b)
	{
	  if (errno != ENOMEM || n < 64)
	    return E_ERRNO;	/* n < 64: not even a small array */
	  break;
	}
      memset (b + n, 7, want - n);
      a = b;
      n = want;
    }
  for (size_t i = 0; i < n; i++)
    if (a[i] != 7)
      return E_CONTENT;
  fprintf (stderr, "  array of %zu KiB with 2 MiB of room\n", n >> 10);
  if ((r = all_fail ()))
    return r;
  free (a);
  return room_again ();
}

static int
child_no_room (void)
{
  /* No room at all: not even a heap's descriptor.  */
  int r = limit_before_any_heap (0);
  if (r)
    return r;
  if ((r = all_fail ()) || malloc (10))
    return r ? r : E_NOTNULL;
  return room_again ();
}

static void
exhausted_from_the_start (void **state)
{
  (void) state;
  expect_child (run_self ("--fresh"));
}

static void
heap_made_with_two_mib_of_room (void **state)
{
  (void) state;
  expect_child (run_self ("--little-room"));
}

static void
no_room_for_a_heap (void **state)
{
  (void) state;
  expect_child (run_self ("--no-room"));
}

int
main (int argc, char **argv)
{
  mt_require_preload ();
  ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
  if (n > 0)
    self[n] = 0;
  if (argc > 1 && !strcmp (argv[1], "--fresh"))
    return child_fresh ();
  if (argc > 1 && !strcmp (argv[1], "--little-room"))
    return child_little_room ();
  if (argc > 1 && !strcmp (argv[1], "--no-room"))
    return child_no_room ();
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (exhausted_in_a_forked_child),
    cmocka_unit_test (exhausted_from_the_start),
    cmocka_unit_test (heap_made_with_two_mib_of_room),
    cmocka_unit_test (no_room_for_a_heap),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
