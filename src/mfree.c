/* mfree.c -- validating a pointer and freeing its block.

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
  unsigned li = MM_NCLASSES;
  if ((const char *) ptr >= d->base && off < mm_top (d) << MM_PAGE_SHIFT)
    {
      uint32_t e = mm_pm_get (d, off >> MM_PAGE_SHIFT);
      if (PM_KIND (e) == PM_SLAB && PM_SLAB_CLS (e) < MM_NCLASSES)
	li = PM_SLAB_CLS (e);
    }
  mm_lock (li < MM_NCLASSES ? &d->class_lock[li] : &d->page_lock);
  return li;
}

void
mm_block_unlock (struct mm_desc *d, unsigned li)
{
  mm_unlock (li < MM_NCLASSES ? &d->class_lock[li] : &d->page_lock);
}

static const char *
lookup_slab (struct mm_desc *d, uint64_t off, uint32_t e, struct mm_block *b)
{
  unsigned cls = PM_SLAB_CLS (e);
  const struct mm_class *c = &mm_classes[cls];
  uint64_t page = off >> MM_PAGE_SHIFT, pg = page - PM_SLAB_OFF (e);
  if (PM_SLAB_OFF (e) >= c->pages || pg < MM_HDR_PAGES || pg + c->pages > mm_top (d))
    return "damaged page map holds pointer";
  struct mm_slab *s = (struct mm_slab *) (d->base + (pg << MM_PAGE_SHIFT));
  if (s->magic != MM_SLAB_MAGIC || s->cls != cls || s->nobj != c->nobj)
    return "damaged slab holds pointer";
  int checked = mm_slab_flags (s) & MM_SLAB_CHECKED;
  uint64_t rel = off - (pg << MM_PAGE_SHIFT);
  size_t lead = 0;
  if (checked)
    {				/* the slot holding the header; its lead */
      if (rel < c->objoff + sizeof (struct mm_chk))
	return "pointer is not the start of a block";
      uint64_t at = (rel - sizeof (struct mm_chk) - c->objoff) / c->size;
      if (at >= c->nobj)
	return "pointer is not the start of a block";
      rel = c->objoff + at * c->size;
      lead = mm_chk_lead ((char *) s + rel, c->size);
      if (!lead)
	return "block header clobbered (write before the block?)";
      if (off != (pg << MM_PAGE_SHIFT) + rel + lead)
	return "pointer is not the start of a block";
    }
  if (rel < c->objoff || (rel - c->objoff) % c->size)
    return "pointer is not the start of a block";
  uint64_t idx = (rel - c->objoff) / c->size;
  if (idx >= c->nobj)
    return "pointer is not the start of a block";
  uint64_t live = __atomic_load_n (&s->bits[idx / 64], __ATOMIC_RELAXED)
    & ~__atomic_load_n (&mm_rbits (s)[idx / 64], __ATOMIC_RELAXED);
  if (!(live & (1ULL << (idx % 64))))
    return "block is not allocated (freed twice?)";
  b->start = (char *) s + rel + (lead ? lead - sizeof (struct mm_chk) : 0);
  b->room = c->size - (lead ? lead - sizeof (struct mm_chk) : 0);
  b->lead = lead;
  b->slab = s;
  b->pg = pg;
  b->idx = (uint32_t) idx;
  b->cls = cls;
  b->checked = checked;
  return 0;
}

const char *
mm_lookup (struct mm_desc *d, const void *ptr, struct mm_block *b)
{
  if ((uintptr_t) ptr & (MM_ALIGN - 1))
    return "misaligned pointer";
  uint64_t off = (uint64_t) ((const char *) ptr - d->base);
  if ((const char *) ptr < d->base || off >= mm_top (d) << MM_PAGE_SHIFT)
    return "pointer outside the heap";
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
	return "damaged page map";
      return lookup_slab (d, off, e, b);
    case PM_LARGE:
      {
	int checked = (e & PM_CHECKED) != 0;
	uint64_t start = pg << MM_PAGE_SHIFT, n = e & PM_NMASK;
	if (!(e & PM_HEAD) || off < start + (checked ? sizeof (struct mm_chk) : 0))
	  return "pointer is not the start of a block";
	if (!n || n > mm_top (d) - pg
	    || (n > 1 && mm_pm_get (d, pg + n - 1) != ((e & ~PM_HEAD) | PM_END)))
	  return "damaged page map holds pointer";
	size_t lead = checked ? mm_chk_lead (d->base + start, (size_t) n << MM_PAGE_SHIFT) : 0;
	if (checked && !lead)
	  return "block header clobbered (write before the block?)";
	if (off != start + lead)
	  return "pointer is not the start of a block";
	size_t pre = lead ? lead - sizeof (struct mm_chk) : 0;
	b->start = d->base + start + pre;
	b->room = ((size_t) n << MM_PAGE_SHIFT) - pre;
	b->lead = lead;
	b->slab = NULL;
	b->pg = pg;
	b->idx = 0;
	b->cls = MM_NCLASSES;
	b->checked = checked;
	return 0;
      }
    case PM_FREE:
      return "block is not allocated (freed twice?)";
    default:
      return "pointer was not handed out by this heap";
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

/* Is the caller the owner of S?  */
static inline int
owned_by_me (uint32_t owner)
{
  struct mm_tc *tc = mm_tc_self;
  return tc && owner == tc->id;
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
      struct mm_tce *e = owner ? mm_tc_find (d) : NULL;
      if (e)
	mm_tc_freed (e, s, 1);
      else
	mm_slab_after_free (d, s);
      return;
    }
  __atomic_fetch_or (&mm_rbits (s)[w], bit, __ATOMIC_SEQ_CST);	/* checked by mm_lookup */
  MM_KP ();
  __atomic_add_fetch (&s->rfree, 1, __ATOMIC_SEQ_CST);
}

/* Lock PTR's block and describe it in *B: the lock index for
   mm_block_unlock.  A bad pointer (or a checked block that fails what VERIFY
   asks: MM_CHK_PEEK, ...) is reported, nothing stays locked, and the result
   is MM_BLOCK_BAD.  */
unsigned
mm_block_acquire (struct mm_desc *d, const void *ptr, struct mm_block *b, int verify)
{
  unsigned li = mm_block_lock (d, ptr);
  const char *bad = mm_lookup (d, ptr, b);
  if (!bad && b->cls != li)
    bad = "block changed under a concurrent call";
  if (!bad && b->checked)
    bad = mm_chk_verify (ptr, b, verify);
  if (!bad)
    return li;
  mm_block_unlock (d, li);
  if (bad[0] == 'd' && bad[1] == 'a')	/* "damaged ...": the heap, not the caller */
    mm_damage (d, bad, (uint64_t) ((const char *) ptr - d->base));
  else
    mm_fault (d, bad, ptr);
  return MM_BLOCK_BAD;
}

/* Free PTR of D; reports misuse.  */
void
mm_free (struct mm_desc *d, void *ptr)
{
  struct mm_block b;
  if (mm_damaged (d))
    return;			/* see mm_damage */
  unsigned li = mm_block_acquire (d, ptr, &b, MM_CHK_FREEING);
  if (li == MM_BLOCK_BAD)
    return;
  if (b.checked)
    {
      mm_chk_free (d, ptr, &b, li);	/* quarantine; drops the lock */
      return;
    }
  mm_block_release (d, &b);
  mm_block_unlock (d, li);
}

/* Give back the block B; its lock is held.  */
void
mm_block_release (struct mm_desc *d, struct mm_block *b)
{
  if (b->slab)
    free_slot (d, b);
  else
    mm_pages_free (d, b->pg);
}

/* Frees by threads that do not own the slab, and the slab's lifetime.

   Such a free marks its slot in rbits, then reads the slab's header (owner,
   flags, used) to learn whether anyone must be told.  But once the bit is
   in rbits, the owner or a holder of the class lock may fold it in, find
   the slab empty and give its pages back: the header would become a free
   run's, the pages another block, or inaccessible after a shrink
   (mm_os_decommit), under the reader.  So the freer pins the slab (ref)
   before it marks the bit, while its slot is still allocated and the slab
   cannot be empty, and unpins it after its last access.
   mm_slab_after_free, the only place that gives slabs back, gives back
   only a slab with no pin; else it sets MM_SLAB_RETURN in ref and leaves
   the slab to the last freer to unpin, which takes the class lock (pin
   still held) and calls it again.  Pinning, unpinning and setting the mark
   are read-modify-writes of the one word ref, so the giver and the last
   freer cannot miss each other: if the mark comes first, the freer sees it
   in its unpin; if the unpin comes first, the giver sees no pin and the
   freer touches the slab no more.  A pin after the giver's test would need
   a live slot in a slab the giver found empty under the class lock (its
   bit folded in from rbits after the pin, since the pin comes first).  */

/* Drop a pin of S, class lock held (which keeps S from now on), and clear
   the mark: the caller calls mm_slab_after_free next, which sets it again
   if S is still empty and pinned.  */
static void
slab_unpin_locked (struct mm_tc *tc, struct mm_slab *s)
{
  uint32_t r = __atomic_fetch_and (&s->ref, ~MM_SLAB_RETURN, __ATOMIC_RELAXED);
  if (r & ~MM_SLAB_RETURN)	/* else a fork child dropped it (fork.c) */
    __atomic_sub_fetch (&s->ref, 1, __ATOMIC_SEQ_CST);
  __atomic_store_n (&tc->remote, NULL, __ATOMIC_RELAXED);
}

/* Done with S's header after a free into it (pinned).  */
static void
slab_unpin (struct mm_tc *tc, struct mm_desc *d, struct mm_slab *s, unsigned cls)
{
  uint32_t r = __atomic_load_n (&s->ref, __ATOMIC_RELAXED);
  do
    if (r == (MM_SLAB_RETURN | 1))
      {				/* the last pin of a slab found empty */
	mm_lock (&d->class_lock[cls]);
	slab_unpin_locked (tc, s);
	mm_slab_after_free (d, s);
	mm_unlock (&d->class_lock[cls]);
	return;
      }
    else if (!(r & ~MM_SLAB_RETURN))
      break;			/* dropped by a fork child (fork.c) */
  while (!__atomic_compare_exchange_n (&s->ref, &r, r - 1, 1, __ATOMIC_SEQ_CST,
				       __ATOMIC_RELAXED));
  __atomic_store_n (&tc->remote, NULL, __ATOMIC_RELAXED);
}

/* Free PTR, a slot of a plain slab of heap D, without a lock.  0 if PTR is
   anything else (the slow path then deals with it).  */
static inline int
free_fast (struct mm_desc *d, void *ptr)
{
  uint64_t off = (uint64_t) ((char *) ptr - d->base);
  if (off >= mm_top (d) << MM_PAGE_SHIFT)
    return 0;
  uint32_t e = mm_pm_get (d, off >> MM_PAGE_SHIFT);
  if (PM_KIND (e) != PM_SLAB || PM_SLAB_CLS (e) >= MM_NCLASSES)
    return 0;
  unsigned cls = PM_SLAB_CLS (e);
  const struct mm_class *c = &mm_classes[cls];
  uint64_t soff = ((off >> MM_PAGE_SHIFT) - PM_SLAB_OFF (e)) << MM_PAGE_SHIFT;
  struct mm_slab *s = (struct mm_slab *) (d->base + soff);
  uint64_t rel = off - soff - c->objoff;
  if (s->magic != MM_SLAB_MAGIC || (mm_slab_flags (s) & MM_SLAB_CHECKED)
      || rel >= (uint64_t) c->nobj * c->size)
    return 0;
  uint64_t idx = (rel * c->recip) >> 40;
  if (idx * c->size != rel)
    return 0;
  uint64_t bit = 1ULL << (idx % 64), *rb = mm_rbits (s) + idx / 64, *bw = &s->bits[idx / 64];
  uint32_t owner = mm_slab_owner (s);
  uint64_t b = __atomic_load_n (bw, __ATOMIC_RELAXED);
  if (MM_UNLIKELY (!(b & bit) || (__atomic_load_n (rb, __ATOMIC_RELAXED) & bit)))
    {
      mm_fault (d, "block is not allocated (freed twice?)", ptr);
      return 1;
    }
  if (owner && owner == mm_tc_self->id)
    {				/* ours: we alone write bits */
      __atomic_store_n (bw, b & ~bit, __ATOMIC_RELAXED);
      MM_KP ();
      mm_slab_count (s, -1);
      if ((mm_slab_flags (s) & MM_SLAB_FULL) || !s->used)
	mm_tc_freed (mm_tc_self->cur, s, 0);
      return 1;
    }
  /* Another thread's slab, or nobody's: mark the slot in rbits for whoever
     writes bits next, pinned (see above).  While pinned, the slab is our
     remote one (fork.c: a child recounts its rfree and drops the pin).  */
  struct mm_tc *tc = mm_tc_self;
  __atomic_store_n (&tc->remote, s, __ATOMIC_RELAXED);
  __atomic_add_fetch (&s->ref, 1, __ATOMIC_SEQ_CST);
  uint64_t old = __atomic_fetch_or (rb, bit, __ATOMIC_SEQ_CST);
  MM_KP ();
  if (MM_UNLIKELY (old & bit))
    {
      slab_unpin (tc, d, s, cls);
      mm_fault (d, "block is not allocated (freed twice?)", ptr);
      return 1;
    }
  uint32_t pending = __atomic_add_fetch (&s->rfree, 1, __ATOMIC_SEQ_CST);
  /* Owned: the owner folds it in.  Nobody's (or, in a fork child, the slab
     of a thread that is gone): the lock is needed only to put it on its
     partial list, or to give it back once every slot is free.  */
  owner = __atomic_load_n (&s->owner, __ATOMIC_SEQ_CST);
  if ((MM_LIKELY (owner != 0) && MM_LIKELY (!mm_owner_dead (owner)))
      || (!owner && (mm_slab_flags (s) & MM_SLAB_LISTED)
	  && pending < __atomic_load_n (&s->used, __ATOMIC_RELAXED)))
    {
      slab_unpin (tc, d, s, cls);
      return 1;
    }
  mm_lock (&d->class_lock[cls]);
  slab_unpin_locked (tc, s);
  if (mm_owner_dead (__atomic_load_n (&s->owner, __ATOMIC_SEQ_CST)))
    mm_slab_adopt (d, s);
  mm_slab_after_free (d, s);
  mm_unlock (&d->class_lock[cls]);
  return 1;
}

static __attribute__ ((noinline)) void
mfree_slow (void *md, void *ptr)
{
  if (!ptr)
    return;
  int saved = errno;		/* free never changes errno */
  struct mm_desc *d = mm_desc_of (md);
  struct mm_tc *tc = mm_tc_self;
  if (!d)
    {
      if (md)			/* refused, reported: free has no error return */
	abort ();
    }
  else if (tc && tc->cur->md == md && tc->cur->d == d && tc->cur->gen == mm_gen (d)
	   && !mm_tracing () && free_fast (d, ptr))
    ;
  else if (MM_UNLIKELY (!mm_writable (d)))
    mm_fault (d, "free on a read-only heap", ptr);
  else
    {
      if (MM_UNLIKELY (mm_tracing ()))
	mm_trace ('-', ptr, 0);
      mm_free (d, ptr);
    }
  errno = saved;
}

/* Remember the slot at P (V: its slab | its index) for mmalloc's fast path.  */
static inline void
hint_push (struct mm_tce *e, unsigned cls, void *p, uintptr_t v)
{
  unsigned n = e->nhint[cls];
  if (MM_LIKELY (n < MM_TC_HINTS))
    {
      e->hint[cls][n].p = p;
      e->hint[cls][n].v = v;
      e->nhint[cls] = (uint8_t) (n + 1);
    }
}

/* mfree freed slot IDX (at P) of S, which we own, and S needs more than a
   hint: it was on the full list, or it is empty.  */
static __attribute__ ((noinline)) void
freed_rare (struct mm_tce *e, struct mm_slab *s, void *p, uint64_t idx)
{
  if (mm_tc_freed (e, s, 0))	/* else given up: no hint into it */
    hint_push (e, s->cls, p, (uintptr_t) s | idx);
}

/* The fast path: a slot of a slab this thread owns, given back with one
   store to the slab's bitmap.  Everything else goes the slow way.

   E, the entry of the heap this thread used last, is not checked against
   the heap's generation: every change that makes entries stale also takes
   the owners out of the heap's slabs (mm_tc_drop_heap, recovery in a fork
   child) or zeroes d->limit (detach, damage, a read-only child), and a
   stale entry takes no slab (acquire in tcache.c), so a slab owned by this
   thread below d->limit was taken through E itself.  The
   pointer is checked as the slow path checks it: a slot boundary, its bit
   set, not freed already by another thread.  */
void
mfree (void *md, void *ptr)
{
  struct mm_tc *tc = mm_tc_self;
  if (MM_LIKELY (tc != NULL))
    {
      struct mm_tce *e = tc->cur;
      struct mm_desc *d = e->d;
      /* The bound first: while it is not 0, base is the attached heap's.  */
      uint64_t limit = __atomic_load_n (&d->limit, __ATOMIC_ACQUIRE);
      uint64_t off = (uint64_t) ((uintptr_t) ptr - (limit ? (uintptr_t) d->base : 0));
      if (MM_LIKELY (e->md == md && off < limit && !mm_tracing ()))
	{
	  uint32_t ent = mm_pm_get (d, off >> MM_PAGE_SHIFT);
	  const struct mm_class *c = &mm_classes[PM_SLAB_CLS (ent)];
	  uint64_t soff = ((off >> MM_PAGE_SHIFT) - PM_SLAB_OFF (ent)) << MM_PAGE_SHIFT;
	  struct mm_slab *s = (struct mm_slab *) (d->base + soff);
	  uint64_t rel = off - soff - c->objoff;	/* huge if below slot 0 */
	  if (MM_LIKELY (PM_KIND (ent) == PM_SLAB && rel < c->span
			 && mm_slab_owner (s) == tc->id))
	    {
	      uint64_t idx = (rel * c->recip) >> 40;
	      uint64_t bit = 1ULL << (idx % 64), b = s->bits[idx / 64];
	      if (MM_LIKELY (idx * c->size == rel && (b & bit)
			     && !(__atomic_load_n (&s->bits[c->words + idx / 64], __ATOMIC_RELAXED)
				  & bit)))
		{
		  __atomic_store_n (&s->bits[idx / 64], b & ~bit, __ATOMIC_RELAXED);
		  MM_KP ();
		  mm_slab_count (s, -1);
		  uint32_t used = s->used;
		  unsigned cls = PM_SLAB_CLS (ent);
		  if (MM_UNLIKELY ((mm_slab_flags (s) & MM_SLAB_FULL) || (used == 0 && s != e->slab[cls])))
		    {
		      freed_rare (e, s, ptr, idx);	/* a tail call: no frame here */
		      return;
		    }
		  hint_push (e, cls, ptr, (uintptr_t) s | idx);
		  return;
		}
	    }
	}
    }
  mfree_slow (md, ptr);
}
