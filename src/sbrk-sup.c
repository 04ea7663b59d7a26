/* sbrk-sup.c -- the default heap of the NULL descriptor.

   The original grew the default heap from the current sbrk value; this one is
   an ordinary anonymous heap, made on first use by whichever thread gets there
   first, and never touches sbrk, which stays the application's.  If it cannot
   be made, the calls fail with ENOMEM and a later call tries again.  */

#include "mmprivate.h"

#include <errno.h>

static struct mm_desc *default_desc;
pthread_mutex_t mm_default_lock = PTHREAD_MUTEX_INITIALIZER;

struct mm_desc *
mm_default (void)
{
  struct mm_desc *d = __atomic_load_n (&default_desc, __ATOMIC_ACQUIRE);
  if (MM_LIKELY (d))
    return d;
  mm_fork_init ();		/* before our lock: it may call malloc */
  mm_lock (&mm_default_lock);
  d = default_desc;
  if (!d && (d = mm_attach (-1, NULL)))
    {
      d->mode |= MM_MODE_DEFAULT;
      __atomic_store_n (&default_desc, d, __ATOMIC_RELEASE);
    }
  mm_unlock (&mm_default_lock);
  return d;
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
