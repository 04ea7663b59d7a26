/* forkcost.c -- the cost of fork with a heap in use.

   usage: forkcost ALLOC MIB FORKS [THREADS]

   Allocates MIB MiB of live blocks through the process malloc (sizes of the
   churn workload, each block written; with THREADS, by that many threads,
   which wait while the main thread forks, so that the blocks are theirs),
   then times FORKS rounds of fork, in
   the child one malloc and free and _exit (0), and waitpid in the parent.
   Prints fork_ms_MIB, the median round in milliseconds.  ALLOC "mmalloc"
   means mmalloc's drop-in malloc, which run.sh preloads (checked: its
   mmalloc_attach must be found); the others are checked by bench_select.
   The child's exit status is checked: a child that could not allocate is a
   failure.  */

#include "common.h"

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

struct part
{
  void **blocks;
  size_t want, n, cap;
  uint64_t seed;
};

static pthread_barrier_t ready, done;

static void
fill (struct part *pt)
{
  size_t live = 0;
  while (live < pt->want && pt->n < pt->cap)
    {
      uint32_t size = bench_churn_size (bench_rand (&pt->seed));
      void *p = malloc (size);
      if (!p)
	bench_fail ("malloc returned NULL");
      memset (p, (int) (pt->n & 0xff), size);
      pt->blocks[pt->n++] = p;
      live += size;
    }
}

static void *
filler (void *arg)
{
  fill (arg);
  pthread_barrier_wait (&ready);
  pthread_barrier_wait (&done);
  return NULL;
}

static int
cmp_u64 (const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
  return x < y ? -1 : x > y;
}

int
main (int argc, char **argv)
{
  if (argc < 4)
    {
      fprintf (stderr, "usage: forkcost ALLOC MIB FORKS\n");
      return 2;
    }
  if (strcmp (argv[1], "mmalloc") == 0)
    {
      if (!dlsym (RTLD_DEFAULT, "mmalloc_attach") || !dlsym (RTLD_DEFAULT, "malloc_usable_size"))
	bench_fail ("mmalloc: libmmalloc-malloc.so.1 is not preloaded");
    }
  else
    bench_select (argv[1]);
  long mib = bench_arg (argc, argv, 2, 32), forks = bench_arg (argc, argv, 3, 20);
  if (forks < 1)
    forks = 1;
  long nth = bench_arg (argc, argv, 4, 0);
  size_t want = (size_t) mib << 20, cap = want / 16 + 1;
  int parts = nth > 0 ? (int) nth : 1;
  struct part *pt = bench_map ((size_t) parts * sizeof *pt);
  pthread_t *tid = bench_map ((size_t) parts * sizeof *tid);
  for (int i = 0; i < parts; i++)
    {
      pt[i].blocks = bench_map (cap / (size_t) parts * sizeof (void *) + 64);
      pt[i].want = want / (size_t) parts;
      pt[i].cap = cap / (size_t) parts;
      pt[i].seed = 12345 + (uint64_t) i;
    }
  if (nth > 0)
    {
      pthread_barrier_init (&ready, NULL, (unsigned) nth + 1);
      pthread_barrier_init (&done, NULL, (unsigned) nth + 1);
      for (int i = 0; i < parts; i++)
	if (pthread_create (&tid[i], NULL, filler, &pt[i]))
	  bench_fail ("pthread_create");
      pthread_barrier_wait (&ready);
    }
  else
    fill (&pt[0]);
  uint64_t *t = bench_map ((size_t) forks * sizeof *t);
  for (long i = 0; i < forks; i++)
    {
      uint64_t t0 = bench_now ();
      pid_t pid = fork ();
      if (pid < 0)
	bench_fail ("fork");
      if (pid == 0)
	{
	  void *p = malloc (64);
	  free (p);
	  _exit (p ? 0 : 1);
	}
      int st;
      if (waitpid (pid, &st, 0) != pid || !WIFEXITED (st) || WEXITSTATUS (st))
	bench_fail ("the child could not allocate");
      t[i] = bench_now () - t0;
    }
  qsort (t, (size_t) forks, sizeof *t, cmp_u64);
  if (nth > 0)
    {
      printf ("R fork_ms_%ld_t%ld %.3f\n", mib, nth, (double) t[forks / 2] / 1e6);
      pthread_barrier_wait (&done);
      for (int i = 0; i < parts; i++)
	pthread_join (tid[i], NULL);
    }
  else
    printf ("R fork_ms_%ld %.3f\n", mib, (double) t[forks / 2] / 1e6);
  for (int i = 0; i < parts; i++)
    for (size_t k = 0; k < pt[i].n; k++)
      free (pt[i].blocks[k]);
  return 0;
}
