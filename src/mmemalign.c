/* mmemalign.c -- blocks aligned beyond max_align_t.

   Up to 64 bytes, a size class whose slot size is a multiple of the alignment
   serves (slots start 64-aligned in their slab).  Beyond that the block is a
   run of pages placed so that its first byte is aligned; the pages skipped go
   back to the free runs.  An unchecked aligned block is a block's start, so
   mfree and mrealloc treat it like any other.  On a heap under mmcheck, a
   lead record, guard bytes and the check header come before the user's
   pointer (guard.c): it is ALIGNMENT bytes into its block, or one page
   into a block placed so that its second page is aligned.  */

#include "mmprivate.h"

#include <errno.h>
#include <stdint.h>

void *
mm_alloc_aligned (struct mm_desc *d, size_t align, size_t size)
{
  if (align <= MM_ALIGN)
    return mm_alloc (d, size, NULL);
  if (!mm_writable (d))
    {
      errno = EROFS;
      return NULL;
    }
  int checked = (__atomic_load_n (&d->hdr->flags, __ATOMIC_RELAXED) & MM_F_CHECKED) != 0;
  __atomic_or_fetch (&d->hdr->flags, MM_F_USED, __ATOMIC_RELAXED);
  /* Checked: the lead is the alignment, or a page whose end is aligned.  */
  struct mm_arm arm = { size, align < MM_PAGE ? align : MM_PAGE, NULL, MM_OK, NULL, NULL };
  struct mm_arm *a = checked ? &arm : NULL;
  size_t need = size;
  if (checked && size > SIZE_MAX - arm.lead - 1)
    goto nomem;
  if (checked)
    need = size + arm.lead + 1;
  void *p = NULL;
  if (align <= 64 && need <= MM_SMALL_MAX)
    for (unsigned c = mm_size_class (need); c < MM_NCLASSES; c++)
      if (mm_classes[c].size % align == 0)
	{
	  p = mm_alloc_small (d, c, a);
	  goto done;
	}
  if (need > (size_t) PM_NMASK << MM_PAGE_SHIFT)
    goto nomem;
  uint64_t n = ((uint64_t) need + MM_PAGE - 1) >> MM_PAGE_SHIFT;
  if (!n)
    n = 1;
  uint64_t ap = align > MM_PAGE ? align >> MM_PAGE_SHIFT : 1;
  p = mm_alloc_large (d, n, ap, a, NULL);
done:
  return checked ? mm_chk_armed (d, p, &arm) : p;
nomem:
  errno = ENOMEM;
  return NULL;
}

static void *
memalign_body (void *md, size_t alignment, size_t size)
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

void *
mmemalign (void *md, size_t alignment, size_t size)
{
  return MM_SITE_CALL (memalign_body (md, alignment, size));
}
