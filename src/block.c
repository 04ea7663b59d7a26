/* block.c -- validating a pointer, and giving its block back.

   Every pointer given back is checked before anything is written: it must lie
   below `top', on a slot boundary of a slab whose bit is set, or at the start
   of a large block.  A bad pointer or a second free is reported (mm_fault) and
   nothing is changed, checked heap or not.  A slab that empties goes back to
   the page allocator unless it is the only slab with free slots of its class.  */

#include "mmprivate.h"

#include <errno.h>
#include <stdlib.h>

/* Lock the lock that guards PTR's block: its class lock for a slot, else the
   page lock.  Returns what mm_block_unlock needs: the class, or MM_NCLASSES.  */
unsigned
mm_block_lock (struct mm_desc *d, const void *ptr)
{
  uint64_t off = (uint64_t) ((const char *) ptr - d->base);
  unsigned lockno = MM_NCLASSES;
  if ((const char *) ptr >= d->base && off < mm_top (d) << MM_PAGE_SHIFT)
    {
      uint32_t e = mm_pm_get (d, off >> MM_PAGE_SHIFT);
      if (PM_KIND (e) == PM_SLAB && PM_SLAB_CLS (e) < MM_NCLASSES)
	lockno = PM_SLAB_CLS (e);
    }
  mm_lock (lockno < MM_NCLASSES ? &d->class_lock[lockno] : &d->page_lock);
  return lockno;
}

void
mm_block_unlock (struct mm_desc *d, unsigned lockno)
{
  MM_ASSERT (lockno <= MM_NCLASSES);
  mm_unlock (lockno < MM_NCLASSES ? &d->class_lock[lockno] : &d->page_lock);
}

static enum mm_verdict
lookup_slab (struct mm_desc *d, uint64_t off, uint32_t e, struct mm_block *b)
{
  unsigned cls = PM_SLAB_CLS (e);
  const struct mm_class *c = &mm_classes[cls];
  uint64_t soff;
  if (!mm_fmt_slab_place (e, off, mm_top (d), c, &soff))
    return MM_DAMAGED_PAGE_MAP_PTR;
  uint64_t pg = soff >> MM_PAGE_SHIFT;
  struct mm_slab *s = mm_at (d, soff);
  if (!mm_fmt_slab_ident (s, cls, c))
    return MM_DAMAGED_SLAB;
  int checked = mm_slab_flags (s) & MM_SLAB_CHECKED;
  size_t pre = checked ? sizeof (struct mm_chk) : 0, lead = 0;
  /* A checked block's user pointer follows its header in the slot.  */
  uint64_t into, idx = mm_fmt_slot (c, off - soff - pre, &into);
  if (idx >= c->nobj)
    return MM_BAD_NOT_START;
  char *slot = (char *) s + mm_fmt_slot_off (c, idx);
  if (checked && !(lead = mm_chk_lead (slot, c->size)))
    return MM_BAD_HEADER;
  if (into != (checked ? lead - pre : 0))
    return checked && into == pre ? mm_chk_first_bad (slot) : MM_BAD_NOT_START;
  uint64_t live = __atomic_load_n (&s->bits[idx / 64], __ATOMIC_RELAXED)
    & ~__atomic_load_n (&mm_rbits (s)[idx / 64], __ATOMIC_RELAXED);
  if (!(live & (1ULL << (idx % 64))))
    return MM_BAD_NOT_ALLOCATED;
  b->start = slot + (lead ? lead - pre : 0);
  b->room = c->size - (lead ? lead - pre : 0);
  b->lead = lead;
  b->slab = s;
  b->pg = pg;
  b->idx = (uint32_t) idx;
  b->cls = cls;
  b->checked = checked;
  return MM_OK;
}

enum mm_verdict
mm_lookup (struct mm_desc *d, const void *ptr, struct mm_block *b)
{
  if ((uintptr_t) ptr & (MM_ALIGN - 1))
    return MM_BAD_MISALIGNED;
  uint64_t off = (uint64_t) ((const char *) ptr - d->base);
  if ((const char *) ptr < d->base || off >= mm_top (d) << MM_PAGE_SHIFT)
    return MM_BAD_OUTSIDE;
  uint64_t pg = off >> MM_PAGE_SHIFT;
  uint32_t e = mm_pm_get (d, pg);
  if (!(off & (MM_PAGE - 1)) && pg && !(PM_KIND (e) == PM_LARGE && (e & PM_HEAD)))
    {				/* a checked block aligned to a page starts a page before */
      uint32_t h = mm_pm_get (d, pg - 1);
      if (PM_KIND (h) == PM_LARGE && (h & PM_HEAD) && (h & PM_CHECKED))
	e = h, pg--;
    }
  switch (PM_KIND (e))
    {
    case PM_SLAB:
      if (PM_SLAB_CLS (e) >= MM_NCLASSES)
	return MM_DAMAGED_PAGE_MAP;
      return lookup_slab (d, off, e, b);
    case PM_LARGE:
      {
	int checked = (e & PM_CHECKED) != 0;
	uint64_t start = pg << MM_PAGE_SHIFT, n = e & PM_NMASK;
	if (!(e & PM_HEAD) || off < start + (checked ? sizeof (struct mm_chk) : 0))
	  return MM_BAD_NOT_START;
	if (!(n = mm_run_len (d, pg, e)))
	  return MM_DAMAGED_PAGE_MAP_PTR;
	size_t lead = checked ? mm_chk_lead (d->base + start, (size_t) n << MM_PAGE_SHIFT) : 0;
	if (checked && !lead)
	  return MM_BAD_HEADER;
	if (off != start + lead)
	  return off == start + 2 * sizeof (struct mm_chk) ? mm_chk_first_bad (d->base + start)
	    : MM_BAD_NOT_START;
	size_t pre = lead ? lead - sizeof (struct mm_chk) : 0;
	b->start = d->base + start + pre;
	b->room = ((size_t) n << MM_PAGE_SHIFT) - pre;
	b->lead = lead;
	b->slab = NULL;
	b->pg = pg;
	b->idx = 0;
	b->cls = MM_NCLASSES;
	b->checked = checked;
	return MM_OK;
      }
    case PM_FREE:
      return MM_BAD_NOT_ALLOCATED;
    default:
      return MM_BAD_FOREIGN;
    }
}

size_t
mm_usable (struct mm_desc *d, void *ptr, const struct mm_block *b)
{
  (void) d;
  if (b->checked)
    return mm_chk_size (ptr);
  return b->room - (size_t) ((char *) ptr - b->start);
}

/* Is the caller the owner of S, free to write its bits?  Not in a call
   nested in our own window (a signal handler's, see mm_tc_enter): the
   interrupted path may be amid a store to them.  */
static inline int
owned_by_me (uint32_t owner)
{
  struct mm_tc *tc = mm_tc_self;
  return tc && owner == tc->id && !mm_tc_busy (tc);
}

/* Free the slot of B; the class lock is held, so the owner cannot change.
   Whoever may write the bits clears the slot there; any other thread marks
   it in rbits for the owner to fold in.  */
static void
free_slot (struct mm_desc *d, struct mm_block *b)
{
  struct mm_slab *s = b->slab;
  uint32_t w = b->idx / 64, owner = __atomic_load_n (&s->owner, __ATOMIC_SEQ_CST);
  uint64_t bit = 1ULL << (b->idx % 64);
  if (MM_UNLIKELY (mm_owner_dead (owner)))
    {				/* a fork child's: its owner is gone */
      mm_slab_adopt (d, s);
      owner = 0;
    }
  if (!owner || owned_by_me (owner))
    {
      __atomic_store_n (&s->bits[w], s->bits[w] & ~bit, __ATOMIC_RELAXED);
      MM_KP ();
      mm_slab_count (s, -1);
      struct mm_tce *ce = owner ? mm_tc_find (d) : NULL;
      if (ce)
	mm_tc_freed (ce, s, b->cls, 1);
      else
	mm_slab_after_free (d, s);
      return;
    }
  __atomic_add_fetch (&s->rfree, 1, __ATOMIC_SEQ_CST);	/* counted first, as free_fast */
  MM_KP ();
  __atomic_fetch_or (&mm_rbits (s)[w], bit, __ATOMIC_SEQ_CST);	/* checked by mm_lookup */
  MM_KP ();
}

/* Lock PTR's block and describe it in *B: the lock index for
   mm_block_unlock.  A bad pointer (or a checked block that fails what VERIFY
   asks: MM_CHK_PEEK, ...) is reported, nothing stays locked, and the result
   is MM_BLOCK_BAD.  */
unsigned
mm_block_acquire (struct mm_desc *d, const void *ptr, struct mm_block *b, int verify)
{
  unsigned lockno = mm_block_lock (d, ptr);
  enum mm_verdict bad = mm_lookup (d, ptr, b);
  if (bad == MM_OK && b->cls != lockno)
    bad = MM_BAD_CHANGED;
  if (bad == MM_OK && b->checked)
    bad = mm_chk_verify (ptr, b, verify);
  if (bad == MM_OK)
    return lockno;
  mm_block_unlock (d, lockno);
  mm_bad_block (d, bad, ptr);
  return MM_BLOCK_BAD;
}

/* Give back the block B; its lock is held.  */
void
mm_block_release (struct mm_desc *d, struct mm_block *b)
{
  MM_ASSERT (b->slab ? b->cls < MM_NCLASSES && b->idx < b->slab->nobj : b->cls == MM_NCLASSES);
  if (b->slab)
    free_slot (d, b);
  else
    mm_pages_free (d, b->pg);
}
