/* test-dlopen.c -- the dynamic loader on the drop-in malloc, in the spirit of
   glibc's tst-malloc-tcache-leak and the dlopen TLS tests: a module with
   64 KiB of thread-local storage is opened and closed over and over by
   several threads, each touching its TLS (ld.so allocates those blocks with
   malloc and frees them at thread exit and dlclose); dlerror's messages are
   malloc'd too.  Nothing leaks, nothing is freed twice, the heap is whole.
   run.sh builds the module as libmtest-tls.so beside this program.  */
#include "mtest.h"

#include <dlfcn.h>
#include <libgen.h>

static char module[4096];

static void
find_module (void)
{
  char exe[4096];
  ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
  assert_true (n > 0);
  exe[n] = 0;
  snprintf (module, sizeof module, "%s/libmtest-tls.so", dirname (exe));
}

static void *
open_touch_close (void *arg)
{
  uintptr_t k = (uintptr_t) arg;
  for (int i = 0; i < 40; i++)
    {
      void *h = dlopen (module, RTLD_NOW | RTLD_LOCAL);
      if (!h)
	return (void *) 1;
      int (*touch) (int) = (int (*) (int)) dlsym (h, "tls_touch");
      if (!touch)
	return (void *) 2;
      int seed = (int) (k * 40 + (uintptr_t) i) % 200 + 1;
      if (touch (seed) != seed * 16)
	return (void *) 3;
      void *m = malloc (100 + (size_t) i);
      free (m);
      if (dlsym (h, "no_such_symbol") || !dlerror ())
	return (void *) 4;
      if (dlclose (h))
	return (void *) 5;
    }
  return NULL;
}

static void
dlopen_tls_in_threads (void **state)
{
  (void) state;
  find_module ();
  /* Once on this thread first: what ld.so keeps for good is made now.  */
  assert_null (open_touch_close ((void *) 99));
  for (int round = 0; round < 3; round++)
    {
      pthread_t t[8];
      for (uintptr_t i = 0; i < 8; i++)
	assert_int_equal (pthread_create (&t[i], NULL, open_touch_close, (void *) i), 0);
      for (int i = 0; i < 8; i++)
	{
	  void *r = (void *) 9;
	  assert_int_equal (pthread_join (t[i], &r), 0);
	  if (r)
	    print_message ("thread %d: step %d failed: %s\n", i, (int) (uintptr_t) r,
			   dlerror () ? "dlerror" : "");
	  assert_null (r);
	}
    }
  assert_heap_ok (NULL);
}

/* The module stays open while threads come and go: each thread's TLS block
   of it is freed when the thread exits, and the heap does not grow.

   Under MMALLOC_OPTIONS=check a freed block is not reused at once: it stays
   allocated in the heap's quarantine, which holds the most recent frees up
   to 4 MiB (the manual, Checked Heaps).  Until the quarantine is full of
   these threads' blocks, each thread's block takes new memory, and how much
   the quarantine held before depends on the frees of the test before this
   one (the mix of small and 64 KiB blocks its threads freed last): measured
   from there, the heap grew by up to 1.3 MiB in 1 run of 50 to 100.  So the
   heap is measured after WARM_THREADS threads, whose blocks (64 KiB and
   more) fill a quarantine of 4 MiB twice over: from then on each block
   that enters it pushes out one of the same kind, whose memory the next
   thread gets.  A leak of each thread's block would grow the heap by
   64 KiB a thread, 19 MiB over the measured ones.  */
#define QUARANTINE_BYTES ((size_t) 4 << 20)
#define WARM_THREADS ((int) (2 * QUARANTINE_BYTES / 65536))
#define MEASURED_THREADS 300

static void *
touch_only (void *arg)
{
  int (*touch) (int) = (int (*) (int)) arg;
  return touch (7) == 7 * 16 ? NULL : (void *) 1;
}

static void
touch_in_threads (void *touch, int n)
{
  for (int i = 0; i < n; i++)
    {
      pthread_t t;
      void *r = (void *) 1;
      assert_int_equal (pthread_create (&t, NULL, touch_only, touch), 0);
      assert_int_equal (pthread_join (t, &r), 0);
      assert_null (r);
      if (getenv ("MTEST_DEBUG"))
	{
	  struct mstats s = mmstats (NULL);
	  print_message ("%d: %zu used, %zu bytes total\n", i, s.chunks_used,
			 s.bytes_total);
	}
    }
}

static void
tls_blocks_freed_at_thread_exit (void **state)
{
  (void) state;
  find_module ();
  void *h = dlopen (module, RTLD_NOW);
  assert_non_null (h);
  void *touch = dlsym (h, "tls_touch");
  assert_non_null (touch);
  touch_in_threads (touch, WARM_THREADS);
  struct mstats a = mmstats (NULL);
  touch_in_threads (touch, MEASURED_THREADS);
  struct mstats b = mmstats (NULL);
  if (b.bytes_total > a.bytes_total + ((size_t) 1 << 20))
    print_message ("heap grew from %zu to %zu bytes\n", a.bytes_total, b.bytes_total);
  assert_int_equal (b.chunks_used, a.chunks_used);
  assert_int_equal (b.bytes_used, a.bytes_used);
  assert_true (b.bytes_total <= a.bytes_total + ((size_t) 1 << 20));
  assert_int_equal (dlclose (h), 0);
  assert_heap_ok (NULL);
}

int
main (void)
{
  mt_require_preload ();
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (dlopen_tls_in_threads),
    cmocka_unit_test (tls_blocks_freed_at_thread_exit),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
