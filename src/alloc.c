/* alloc.c -- the locked allocation paths: small slots and large blocks.

   What the thread caches cannot serve: checked blocks, large blocks, and
   heaps whose fast paths are off.  Slots come from a slab of their class
   under the class lock, large blocks from the page allocator under the page
   lock.  */

#include "mmprivate.h"

#include <errno.h>
#include <string.h>

/* The locked path: a slot from the first unowned slab with room; with ARM,
   of a checked slab, and set up as ARM says (mm_chk_claim).  */
void *
mm_alloc_small (struct mm_desc *d, unsigned cls, struct mm_arm *arm)
{
  int checked = arm != NULL;
  struct mm_class_state *cs = &d->hdr->cls[cls];
  const struct mm_class *c = &mm_classes[cls];
  if (checked)			/* its slab is or becomes MM_SLAB_POISON */
    mm_format_need (d, arm->site ? MM_FORMAT_V3 : MM_FORMAT_V2);
  mm_lock (&d->class_lock[cls]);
  struct mm_slab *s;
  uint64_t off = cs->partial[checked];
  if (off)
    {
      s = (struct mm_slab *) mm_at (d, off);
      if (!mm_partial_head_ok (d, off, cls, checked) || mm_damaged (d))
	{
	  mm_damage (d, "partial slab list", off);
	  s = NULL;
	}
    }
  else
    s = mm_slab_new (d, cls, checked, 0);
  if (s && arm && !(s->flags & MM_SLAB_POISON))
    mm_chk_slab_init (s);	/* of an older file: see guard.c */
  uint32_t idx = s ? mm_slab_take (s) : UINT32_MAX;
  if (s && idx == UINT32_MAX)
    {
      mm_damage (d, "full slab on a partial list", off);
      s = NULL;
    }
  if (s && mm_slab_full (s))
    mm_partial_pull (d, s);
  char *p = s ? (char *) s + mm_fmt_slot_off (c, idx) : NULL;
  if (p && arm)
    mm_chk_claim (s, p, c->size, arm);
  mm_unlock (&d->class_lock[cls]);
  return p;
}

/* NPAGES pages aligned to ALIGN pages; with ARM, a checked block set up as
   ARM says, whose user pointer is aligned instead when its lead is a page.
   It is set up before the page map shows it (see guard.c).  With ZERO
   (and no ARM), *ZERO tells whether the block is known to read zero.  */
void *
mm_alloc_large (struct mm_desc *d, uint64_t npages, uint64_t align, struct mm_arm *arm,
		int *zero)
{
  uint64_t skew = arm && arm->lead == MM_PAGE;
  if (arm && arm->lead > sizeof (struct mm_chk))	/* a lead or site record */
    mm_format_need (d, arm->site ? MM_FORMAT_V3 : MM_FORMAT_V2);
  mm_lock (&d->page_lock);
  uint64_t pg = mm_pages_take (d, npages, align, skew, arm ? NULL : zero);
  char *p = pg ? d->base + (pg << MM_PAGE_SHIFT) : NULL;
  if (p && arm)
    mm_chk_claim (NULL, p, (size_t) npages << MM_PAGE_SHIFT, arm);
  if (p)
    mm_pages_mark (d, pg, npages, PM_LARGE, arm ? PM_CHECKED : 0);
  mm_unlock (&d->page_lock);
  return p;
}

/* Pages for SIZE bytes, or 0 when SIZE is beyond any heap.  */
static uint64_t
pages_for (size_t size)
{
  if (size > (size_t) PM_NMASK << MM_PAGE_SHIFT)
    return 0;
  return ((uint64_t) size + MM_PAGE - 1) >> MM_PAGE_SHIFT;
}

int mm_sites_off;

/* Allocate SIZE bytes; NULL with errno set.  With ZERO, *ZERO tells
   whether the block is known to read zero (then it was not written).  */
void *
mm_alloc (struct mm_desc *d, size_t size, int *zero)
{
  if (zero)
    *zero = 0;
  if (MM_UNLIKELY (!mm_writable (d) || mm_damaged (d)))
    {
      errno = mm_damaged (d) ? MMALLOC_ECORRUPT : EROFS;
      return NULL;
    }
  mm_note_used (d);
  int checked = (__atomic_load_n (&d->hdr->flags, __ATOMIC_RELAXED) & MM_F_CHECKED) != 0;
  size_t need = size;
  /* Checked: a header, or a site record and a header, and a guard byte.  */
  struct mm_arm arm = { size, sizeof (struct mm_chk), NULL, MM_OK, NULL, NULL };
  if (checked && !mm_sites_off && (arm.site = mm_site) != NULL)
    arm.lead = 2 * sizeof (struct mm_chk);
  if (checked)
    {
      if (size > SIZE_MAX - arm.lead - 1)
	goto nomem;
      need = size + arm.lead + 1;
    }
  void *p;
  if (need <= MM_SMALL_MAX)
    {
      unsigned cls = mm_size_class (need);
      MM_ASSERT (cls < MM_NCLASSES && mm_classes[cls].size >= need);
      p = mm_alloc_small (d, cls, checked ? &arm : NULL);
    }
  else
    {
      uint64_t n = pages_for (need);
      if (!n)
	goto nomem;
      p = mm_alloc_large (d, n, 1, checked ? &arm : NULL, zero);
    }
  return checked ? mm_chk_armed (d, p, &arm) : p;
nomem:
  errno = ENOMEM;
  return NULL;
}
