/* keys.c -- the heap's root keys.

   MMALLOC_KEYS slots in the header hold user pointers, so that a program finds
   its data again after re-attaching a heap file.  A key is one aligned 64-bit
   word: readers never see half of a store.  */

#include "mmprivate.h"

#include <errno.h>

int
mmalloc_setkey (void *md, int keynum, void *key)
{
  struct mm_desc *d = mm_desc_of (md);
  if (!d)
    return 0;
  if (keynum < 0 || keynum >= MMALLOC_KEYS)
    {
      mm_fail (d, EINVAL);
      return 0;
    }
  if (!mm_writable (d))
    {
      mm_fail (d, EROFS);
      return 0;
    }
  MM_KP ();
  __atomic_store_n (&d->hdr->keys[keynum], (uint64_t) (uintptr_t) key, __ATOMIC_RELEASE);
  MM_KP ();
  return 1;
}

void *
mmalloc_getkey (void *md, int keynum)
{
  struct mm_desc *d = mm_desc_of (md);
  if (!d || keynum < 0 || keynum >= MMALLOC_KEYS)
    return NULL;
  return (void *) (uintptr_t) __atomic_load_n (&d->hdr->keys[keynum], __ATOMIC_ACQUIRE);
}
