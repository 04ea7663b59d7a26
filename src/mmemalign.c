/* mmemalign.c -- blocks aligned beyond max_align_t.

   Up to 64 bytes, a size class whose slot size is a multiple of the alignment
   serves (slots start 64-aligned in their slab).  Beyond that the block is a
   run of pages placed so that its first byte is aligned; the pages skipped go
   back to the free runs.  An aligned block is always a block's start, so
   mfree and mrealloc treat it like any other.  On a heap under mmcheck,
   blocks aligned beyond 16 bytes carry no guard (their header would break the
   alignment).  */

#include "mmprivate.h"

#include <errno.h>

void *
mm_alloc_aligned (struct mm_desc *d, size_t align, size_t size)
{
  if (align <= MM_ALIGN)
    return mm_alloc (d, size);
  if (!mm_writable (d))
    {
      errno = EROFS;
      return NULL;
    }
  int checked = (__atomic_load_n (&d->hdr->flags, __ATOMIC_RELAXED) & MM_F_CHECKED) != 0;
  __atomic_or_fetch (&d->hdr->flags, MM_F_USED, __ATOMIC_RELAXED);
  if (align <= 64 && size <= MM_SMALL_MAX && !checked)
    for (unsigned c = mm_size_class (size); c < MM_NCLASSES; c++)
      if (mm_classes[c].size % align == 0)
	return mm_alloc_small (d, c, 0);
  if (size > (size_t) PM_NMASK << MM_PAGE_SHIFT)
    {
      errno = ENOMEM;
      return NULL;
    }
  uint64_t n = ((uint64_t) size + MM_PAGE - 1) >> MM_PAGE_SHIFT;
  if (!n)
    n = 1;
  uint64_t ap = align > MM_PAGE ? align >> MM_PAGE_SHIFT : 1;
  return mm_alloc_large (d, n, ap, 0);
}

void *
mmemalign (void *md, size_t alignment, size_t size)
{
  struct mm_desc *d = mm_desc_of (md);
  if (!d)
    return NULL;
  if (!alignment || (alignment & (alignment - 1)))
    {
      mm_fail (d, EINVAL);
      return NULL;
    }
  return mm_alloc_done (d, mm_alloc_aligned (d, alignment, size), size);
}
