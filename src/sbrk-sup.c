/* sbrk-sup.c -- the default heap of the NULL descriptor, and the heap of
   every other descriptor an entry point is given (mm_desc_of).

   The original grew the default heap from the current sbrk value; this one is
   an ordinary anonymous heap, made on first use by whichever thread gets there
   first, and never touches sbrk, which stays the application's.  If it cannot
   be made, the calls fail with ENOMEM and a later call tries again.  */

#include "mmprivate.h"

#include <errno.h>

static struct mm_desc *default_desc;

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

/* The default heap, or NULL with ENOMEM if it cannot be made.  */
static __attribute__ ((noinline)) struct mm_desc *
default_heap (void)
{
  struct mm_desc *d = mm_default ();
  if (!d)
    errno = ENOMEM;
  return d;
}

/* The descriptor MD names, for every entry point that takes one.  NULL
   names the default heap (NULL with ENOMEM if it cannot be made); anything
   else must be the handle of an attached heap (mm_handle_desc).  */
struct mm_desc *
mm_desc_of (void *md)
{
  if (!md)
    return default_heap ();
  return mm_handle_desc (md);
}
