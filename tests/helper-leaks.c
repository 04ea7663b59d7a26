/* helper-leaks.c -- small programs for test-leaks, run with the drop-in
   malloc preloaded and MMALLOC_OPTIONS=leaks: each either leaks or not.  */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read by nothing: volatile, so that the compiler keeps the stores.  */
void *volatile global_keep;

/* Blocks whose only pointers die with this frame.  */
__attribute__ ((noinline)) static uintptr_t
lose (int n, size_t size)
{
  uintptr_t sum = 0;
  for (int i = 0; i < n; i++)
    {
      char *p = malloc (size);
      memset (p, 0, size);
      sum += (uintptr_t) p % 7;	/* used, then dropped */
    }
  return sum;
}

static pthread_barrier_t started;

static void *
hold_forever (void *arg)
{
  (void) arg;
  void *volatile mine = malloc (777);
  pthread_barrier_wait (&started);
  for (;;)
    pause ();
  return mine;
}

int
main (int argc, char **argv)
{
  const char *mode = argc > 1 ? argv[1] : "";
  global_keep = malloc (1000);
  void **list = malloc (100 * sizeof *list);
  for (int i = 0; i < 100; i++)
    list[i] = malloc (32);
  ((void **) global_keep)[0] = list;	/* the list is reached through it */
  if (!strcmp (mode, "clean"))
    {
      void *p = malloc (5000);
      free (p);
      return 0;
    }
  if (!strcmp (mode, "threads"))
    {
      pthread_t t;
      pthread_barrier_init (&started, NULL, 2);
      pthread_create (&t, NULL, hold_forever, NULL);
      pthread_barrier_wait (&started);
      return 0;
    }
  if (lose (30, 48) + lose (4, 20000) == 12345)
    puts ("unlikely");
  if (!strcmp (mode, "leak-fail"))
    exit (3);
  fputs ("buffered output", stdout);	/* flushed before the status changes */
  return 0;
}
