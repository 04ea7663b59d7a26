/* core.c -- the library's process-wide state and its locks.

   Owns what every layer above reads and no layer owns alone: the thread's
   cache pointer (mm_tc_self), the owner tokens of threads gone in a fork
   child, the generation counter of attachments, the trace switch, the
   process-wide locks (default heap, trace; the registry's and the pool's
   are in handle.c) and the taking of every lock of one heap.  Nothing here
   calls above the OS layer.  */

#include "mmprivate.h"

#include <errno.h>

__thread struct mm_tc *mm_tc_self __attribute__ ((tls_model ("initial-exec")));
__thread const void *mm_site __attribute__ ((tls_model ("initial-exec")));
int mm_sites_want;
uint32_t mm_dead_max, mm_dead_self;
static uint64_t next_gen;
int mm_trace_on;
pthread_mutex_t mm_trace_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t mm_default_lock = PTHREAD_MUTEX_INITIALIZER;

uint64_t
mm_new_gen (void)
{
  return __atomic_add_fetch (&next_gen, 1, __ATOMIC_RELAXED);
}

/* Remember ERR as D's last error and set errno; returns -1 for tail calls.  */
int
mm_fail (struct mm_desc *d, int err)
{
  if (d)
    d->err = err;
  errno = err;
  return -1;
}

void
mm_lock_all (struct mm_desc *d)
{
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    mm_lock (&d->class_lock[c]);
  mm_lock (&d->page_lock);
}

void
mm_unlock_all (struct mm_desc *d)
{
  mm_unlock (&d->page_lock);
  for (unsigned c = MM_NCLASSES; c-- > 0;)
    mm_unlock (&d->class_lock[c]);
}
