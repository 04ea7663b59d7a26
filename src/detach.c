/* detach.c -- ending a heap's attachment, and flushing it to its file.

   Detach marks a writable heap file clean (its derived state is whole, so the
   next attach needs no recovery), then unmaps the whole reservation and closes
   the library's descriptor, which drops the writer's lock.  */

#include "mmprivate.h"

#include <errno.h>

/* mmalloc_walk's visitor: the block at PTR leaves memcheck's view.  */
static int
forget (void *ptr, size_t size, void *arg)
{
  (void) size;
  (void) arg;
  mm_an_forget (ptr);
  return 0;
}

void *
mmalloc_detach (void *md)
{
  if (!md)
    return NULL;			/* the default heap lives as long as the process */
  /* The blocks stay in the heap: not leaks, nor freed, to valgrind.  */
  if (MM_UNLIKELY (mm_annotating ()))
    (void) mmalloc_walk (md, forget, NULL);
  struct mm_desc *d = mm_desc_of (md);	/* no handle names the default heap */
  /* Revoke MD in one atomic step with proving that it still names D: of
     threads that detach one handle at once, exactly one goes on.  Another,
     checked before the first revoked, would detach D again after it was
     given to another heap, and put it back in the pool twice.  The others
     are refused (and reported) as for a heap already detached.  */
  uintptr_t h = (uintptr_t) md;
  if (d && !__atomic_compare_exchange_n (&d->handle, &h, 0, 0, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
    d = mm_desc_of (md);	/* MD is no handle now: NULL */
  if (!d)
    return md;
  if (mm_writable (d) && !mm_damaged (d))
    mm_quar_flush (d);		/* quarantined blocks are given back */
  mm_lock_all (d);
  /* No fast free from now on; and no thread is left inside a lock-free
     path on the heap (mm_tc_enter) when it is unmapped.  */
  __atomic_store_n (&d->free_bound, 0, __ATOMIC_SEQ_CST);
  if (mm_writable (d) && !mm_damaged (d))
    mm_tc_drop_heap (d);	/* no slab keeps an owner in the file */
  else
    mm_tc_quiesce (d);
  /* What decay would give back later goes back now: the file's blocks.  */
  if ((d->mode & MM_MODE_FILE) && mm_writable (d) && !mm_damaged (d))
    (void) mm_pages_purge (d, 1);
  __atomic_store_n (&d->gen, 0, __ATOMIC_RELEASE);
  __atomic_store_n (&d->free_bound, 0, __ATOMIC_RELEASE);	/* no fast frees */
  /* A damaged heap stays dirty: the next attach rebuilds its metadata.  */
  if ((d->mode & MM_MODE_FILE) && mm_writable (d) && !mm_damaged (d))
    {
      MM_KP ();
      __atomic_store_n (&d->hdr->state, MM_CLEAN, __ATOMIC_RELEASE);
      MM_KP ();
    }
  d->magic = 0;
  mm_unlock_all (d);
  if (d->mode & MM_MODE_FILE)
    mm_registry_remove (d);
  mm_an_gone (d->base, (size_t) d->held);
  /* munmap of a range we mapped cannot fail short of a kernel bug.  */
  mm_os_unmap (d->base, (size_t) d->held);
  mm_os_close (d->fd);
  mm_desc_free (d);
  return NULL;
}

int
mmalloc_sync (void *md)
{
  struct mm_desc *d = mm_desc_of (md);
  if (!d)
    return -1;
  if (!(d->mode & MM_MODE_FILE) || !mm_writable (d))
    return 0;
  mm_lock (&d->page_lock);
  int err = mm_os_sync (d->base, (size_t) (d->hdr->top << MM_PAGE_SHIFT), d->fd);
  mm_unlock (&d->page_lock);
  if (err)
    {
      errno = err;
      return mm_fail (d, err);
    }
  return 0;
}

int
mmalloc_trim (void *md, size_t pad)
{
  struct mm_desc *d = mm_desc_of (md);
  if (!d)
    return -1;
  if (!mm_writable (d))
    return 0;
  mm_quar_flush (d);
  mm_lock (&d->page_lock);
  uint64_t given = mm_pages_trim (d, pad / MM_PAGE + (pad % MM_PAGE != 0));
  mm_unlock (&d->page_lock);
  return given != 0;
}

int
mmalloc_setdecay (void *md, long ms)
{
  if (ms < 0)
    {
      errno = EINVAL;
      return -1;
    }
  struct mm_desc *d = mm_desc_of (md);
  if (!d)
    return -1;
  mm_lock (&d->page_lock);
  d->decay_ms = (uint64_t) ms;
  if (!ms && mm_writable (d))
    (void) mm_pages_purge (d, 1);	/* nothing waits from now on */
  mm_unlock (&d->page_lock);
  return 0;
}
