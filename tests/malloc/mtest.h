/* mtest.h -- helpers of the drop-in malloc tests (tests/malloc/test-*.c).

   These programs call the C library's names (malloc, free, ...) and are built
   twice by tests/malloc/run.sh: linked with libmmalloc-malloc.a, so that the
   malloc family is replaced at link time, and linked with the shared
   libmmalloc-malloc.so.1 and run under LD_PRELOAD.  Either way
   mmstats (NULL) describes every block of the process.

   - mt_size (n): N, hidden from the compiler (no folding of huge sizes);
   - mt_rand (): a deterministic xorshift generator;
   - mt_fill / mt_check: a pattern of bytes derived from a seed;
   - mt_run_child (fn, arg, seconds): FN in a forked child with an alarm;
     returns the wait status.  */

#ifndef MTEST_H
#define MTEST_H 1

#include "testutil.h"

#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" void cfree (void *ptr);
#else
void cfree (void *ptr);		/* exported by libmmalloc-malloc */
#endif

/* Built with MT_PRELOAD, the program is linked with nothing of mmalloc's:
   libmmalloc-malloc.so.1 comes from LD_PRELOAD alone, and the m* calls are
   found with dlsym.  mt_require_preload () checks that malloc is its.  */
#ifdef MT_PRELOAD
#include <dlfcn.h>

static inline void *
mt_sym (const char *name)
{
  void *f = dlsym (RTLD_DEFAULT, name);
  if (!f)
    {
      fprintf (stderr, "%s not found: is libmmalloc-malloc.so.1 preloaded?\n", name);
      exit (2);
    }
  return f;
}

#define MT_FN(type, name) ((type) mt_sym (#name))
#define mmstats(md) MT_FN (struct mstats (*) (void *), mmstats) (md)
#define mmalloc_check(md) MT_FN (int (*) (void *), mmalloc_check) (md)
#define mmalloc_usable_size(md, p) \
  MT_FN (size_t (*) (void *, void *), mmalloc_usable_size) (md, p)
#define mmalloc_errno(md) MT_FN (int (*) (void *), mmalloc_errno) (md)
#define mmalloc_attach(fd, base) MT_FN (void *(*) (int, void *), mmalloc_attach) (fd, base)
#define mmalloc_detach(md) MT_FN (void *(*) (void *), mmalloc_detach) (md)
#define mmalloc(md, n) MT_FN (void *(*) (void *, size_t), mmalloc) (md, n)
#define mfree(md, p) MT_FN (void (*) (void *, void *), mfree) (md, p)
#define mmalloc_strerror(e) MT_FN (const char *(*) (int), mmalloc_strerror) (e)
/* The C library keeps cfree only for old binaries: not linkable.  */
#define cfree(p) MT_FN (void (*) (void *), cfree) (p)

static inline void
mt_require_preload (void)
{
  Dl_info info;
  void *(*m) (size_t) = malloc;
  if (!dladdr ((void *) m, &info) || !info.dli_fname
      || !strstr (info.dli_fname, "libmmalloc-malloc"))
    {
      fprintf (stderr, "malloc comes from %s, not libmmalloc-malloc: run with "
	       "LD_PRELOAD=.../libmmalloc-malloc.so.1\n",
	       info.dli_fname ? info.dli_fname : "?");
      exit (2);
    }
}
#else
static inline void
mt_require_preload (void)
{
}
#endif

/* Built with MT_TSAN (make tsan), the program keeps the C library's malloc
   and calls the default heap through the m* API instead: ThreadSanitizer's
   runtime calls malloc while it starts, before instrumented code can run,
   so an instrumented replacement of malloc cannot be the process's.  The
   calls below are what malloc.c makes of each; every block of the program
   still comes from the default heap.  */
#ifdef MT_TSAN
#define malloc(n) mmalloc (NULL, n)
#define free(p) mfree (NULL, p)
#define calloc(n, size) mcalloc (NULL, n, size)
#define realloc(p, n) mrealloc (NULL, p, n)
#define memalign(align, n) mmemalign (NULL, align, n)
#define malloc_usable_size(p) mmalloc_usable_size (NULL, p)
#endif

/* Hidden from the optimiser, so that a call with a huge constant is made.  */
static inline size_t
mt_size (size_t n)
{
  volatile size_t v = n;
  return v;
}

static inline void *
mt_ptr (void *p)
{
  void *volatile v = p;
  return v;
}

static inline uint64_t
mt_next (uint64_t *s)
{
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

static uint64_t mt_seed = 0x9e3779b97f4a7c15ULL;

static inline uint64_t
mt_rand (void)
{
  return mt_next (&mt_seed);
}

static inline unsigned char
mt_byte (uintptr_t seed, size_t i)
{
  return (unsigned char) ((seed * 131 + i * 7 + (i >> 8)) ^ (seed >> 5));
}

static inline void
mt_fill (void *p, size_t n, uintptr_t seed)
{
  unsigned char *c = (unsigned char *) p;
  for (size_t i = 0; i < n; i++)
    c[i] = mt_byte (seed, i);
}

/* Index of the first byte that differs from the pattern, or N.  */
static inline size_t
mt_check (const void *p, size_t n, uintptr_t seed)
{
  const unsigned char *c = (const unsigned char *) p;
  for (size_t i = 0; i < n; i++)
    if (c[i] != mt_byte (seed, i))
      return i;
  return n;
}

static inline bool
mt_all (const void *p, size_t n, unsigned char v)
{
  const unsigned char *c = (const unsigned char *) p;
  for (size_t i = 0; i < n; i++)
    if (c[i] != v)
      return false;
  return true;
}

static inline size_t
mt_page (void)
{
  return (size_t) sysconf (_SC_PAGESIZE);
}

static inline double
mt_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* FN (ARG) in a child that is killed by SIGALRM after SECONDS; the child
   exits 0 when FN returns.  Returns the wait status.  */
static inline int
mt_run_child (void (*fn) (void *), void *arg, unsigned seconds)
{
  fflush (NULL);
  pid_t pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      signal (SIGALRM, SIG_DFL);
      alarm (seconds);
      fn (arg);
      _exit (0);
    }
  int st;
  pid_t w;
  while ((w = waitpid (pid, &st, 0)) < 0 && errno == EINTR)
    ;
  assert_int_equal (w, pid);
  return st;
}

static inline void
mt_print_status (const char *what, int st)
{
  if (WIFEXITED (st))
    print_message ("%s: exit status %d\n", what, WEXITSTATUS (st));
  else if (WIFSIGNALED (st))
    print_message ("%s: killed by signal %d (%s)\n", what, WTERMSIG (st),
		   strsignal (WTERMSIG (st)));
}

/* The child's wait status ST says it exited 0 (else it is described).  */
#define assert_child_ok(st) \
  do { \
    int st_ = (st); \
    if (!WIFEXITED (st_) || WEXITSTATUS (st_) != 0) \
      mt_print_status ("child", st_); \
    assert_true (WIFEXITED (st_)); \
    assert_int_equal (WEXITSTATUS (st_), 0); \
  } while (0)

#endif /* MTEST_H */
