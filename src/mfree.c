/* mfree.c -- mfree: the free fast paths, and the free of a checked pointer.

   A slot of a slab this thread owns goes back with one store to its bitmap;
   a slot of another thread's slab is marked in its rbits, the slab pinned
   meanwhile (below).  Everything else is validated and freed under its lock
   (mm_free: block.c, and the quarantine of checked heaps).  Every pointer
   is checked before anything is written, on every path.  */

#include "mmprivate.h"

#include <errno.h>
#include <stdlib.h>

/* Free PTR of D; reports misuse.  */
void
mm_free (struct mm_desc *d, void *ptr)
{
  struct mm_block b;
  if (mm_damaged (d))
    return;			/* see mm_damage */
  unsigned lockno = mm_block_acquire (d, ptr, &b, MM_CHK_FREEING);
  if (lockno == MM_BLOCK_BAD)
    return;
  if (b.checked)
    {
      mm_chk_free (d, ptr, &b, lockno);	/* quarantine; drops the lock */
      return;
    }
  if (MM_UNLIKELY (mm_annotating ()))
    mm_an_free (ptr, b.room - (size_t) ((char *) ptr - b.start));
  mm_block_release (d, &b);
  mm_block_unlock (d, lockno);
}

/* Frees by threads that do not own the slab, and the slab's lifetime.

   Such a free counts itself in rfree, marks its slot in rbits, then reads
   the slab's header (owner, flags, used) to learn whether anyone must be
   told.  But once the bit is
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

/* Is D still the attachment it was when SERIAL was read, after a lock of
   D's was waited for outside the window?  (Freeing beside a detach of the
   same heap is the caller's error; it must not reach another heap.)  */
static inline int
same_heap (struct mm_desc *d, uintptr_t serial)
{
  return __atomic_load_n (&d->magic, __ATOMIC_RELAXED) == MM_DESC_MAGIC
    && __atomic_load_n (&d->serial, __ATOMIC_RELAXED) == serial;
}

/* Done with S's header after a free into it (pinned), inside the window of
   TC, which this leaves; D was the attachment SERIAL (see same_heap).  */
static void
slab_unpin (struct mm_tc *tc, struct mm_desc *d, struct mm_slab *s, unsigned cls,
	    uintptr_t serial)
{
  uint32_t r = __atomic_load_n (&s->ref, __ATOMIC_RELAXED);
  do
    if (r == (MM_SLAB_RETURN | 1))
      {				/* the last pin of a slab found empty */
	mm_tc_leave (tc);
	mm_lock (&d->class_lock[cls]);
	if (same_heap (d, serial))
	  {
	    slab_unpin_locked (tc, s);
	    mm_slab_after_free (d, s);
	  }
	mm_unlock (&d->class_lock[cls]);
	return;
      }
    else if (!(r & ~MM_SLAB_RETURN))
      break;			/* dropped by a fork child (fork.c) */
  while (!__atomic_compare_exchange_n (&s->ref, &r, r - 1, 1, __ATOMIC_SEQ_CST,
				       __ATOMIC_RELAXED));
  __atomic_store_n (&tc->remote, NULL, __ATOMIC_RELAXED);
  mm_tc_leave (tc);
}

/* Free PTR, a slot of a plain slab of heap D, without a lock, inside the
   window of TC (mm_tc_enter), which it leaves before it returns, reports,
   or waits for a lock.  0 if PTR is anything else (the slow path then
   deals with it).  */
static int
free_fast (struct mm_tc *tc, struct mm_desc *d, void *ptr)
{
  uintptr_t serial = __atomic_load_n (&d->serial, __ATOMIC_RELAXED);
  uint64_t off = (uint64_t) ((char *) ptr - d->base);
  if (off >= mm_top (d) << MM_PAGE_SHIFT)
    goto other;
  uint32_t e = mm_pm_get (d, off >> MM_PAGE_SHIFT);
  if (PM_KIND (e) != PM_SLAB || PM_SLAB_CLS (e) >= MM_NCLASSES)
    goto other;
  unsigned cls = PM_SLAB_CLS (e);
  const struct mm_class *c = &mm_classes[cls];
  uint64_t soff = mm_fmt_slab_of (off, e), into;
  struct mm_slab *s = (struct mm_slab *) (d->base + soff);
  uint64_t idx = mm_fmt_slot (c, off - soff, &into);
  if (!mm_fmt_slab_ident (s, cls, c) || (mm_slab_flags (s) & MM_SLAB_CHECKED)
      || idx >= c->nobj || into)
    goto other;
  uint64_t bit = 1ULL << (idx % 64), *rb = mm_rbits (s) + idx / 64, *bw = &s->bits[idx / 64];
  uint32_t owner = mm_slab_owner (s);
  uint64_t b = __atomic_load_n (bw, __ATOMIC_RELAXED);
  if (MM_UNLIKELY (!(b & bit) || (__atomic_load_n (rb, __ATOMIC_RELAXED) & bit)))
    {
      mm_tc_leave (tc);
      mm_fault (d, mm_verdict_text (MM_BAD_NOT_ALLOCATED), ptr);
      return 1;
    }
  if (owner && owner == tc->id)
    {				/* ours: we alone write bits */
      __atomic_store_n (bw, b & ~bit, __ATOMIC_RELAXED);
      MM_KP ();
      mm_slab_count (s, -1);
      if ((mm_slab_flags (s) & MM_SLAB_FULL) || !s->used)
	mm_tc_freed (tc->cur, s, cls, 0);
      mm_tc_leave (tc);
      return 1;
    }
  /* Another thread's slab, or nobody's: mark the slot in rbits for whoever
     writes bits next, pinned (see above).  While pinned, the slab is our
     remote one (fork.c: a child recounts its rfree and drops the pin).  */
  __atomic_store_n (&tc->remote, s, __ATOMIC_RELAXED);
  __atomic_add_fetch (&s->ref, 1, __ATOMIC_SEQ_CST);
  /* Counted before it is marked, so that rfree never lags rbits (see
     struct mm_slab): a merge that takes our bit takes our count.  */
  uint32_t pending = __atomic_add_fetch (&s->rfree, 1, __ATOMIC_SEQ_CST);
  MM_KP ();
  uint64_t old = __atomic_fetch_or (rb, bit, __ATOMIC_SEQ_CST);
  MM_KP ();
  if (MM_UNLIKELY (old & bit))
    {
      __atomic_sub_fetch (&s->rfree, 1, __ATOMIC_SEQ_CST);
      slab_unpin (tc, d, s, cls, serial);
      mm_fault (d, mm_verdict_text (MM_BAD_NOT_ALLOCATED), ptr);
      return 1;
    }
  /* Owned: the owner folds it in.  Nobody's (or, in a fork child, the slab
     of a thread that is gone): the lock is needed only to put it on its
     partial list, or to give it back once every slot is free.  */
  owner = __atomic_load_n (&s->owner, __ATOMIC_SEQ_CST);
  if ((MM_LIKELY (owner != 0) && MM_LIKELY (!mm_owner_dead (owner)))
      || (!owner && (mm_slab_flags (s) & MM_SLAB_LISTED)
	  && pending < __atomic_load_n (&s->used, __ATOMIC_RELAXED)))
    {
      slab_unpin (tc, d, s, cls, serial);
      return 1;
    }
  mm_tc_leave (tc);
  mm_lock (&d->class_lock[cls]);
  if (same_heap (d, serial))
    {
      slab_unpin_locked (tc, s);
      if (mm_owner_dead (__atomic_load_n (&s->owner, __ATOMIC_SEQ_CST)))
	mm_slab_adopt (d, s);
      mm_slab_after_free (d, s);
    }
  mm_unlock (&d->class_lock[cls]);
  return 1;
other:
  mm_tc_leave (tc);
  return 0;
}

/* Free PTR of D without a lock through TC's current entry, if that is D's
   (named MD) and good: 1 if done.  */
static int
free_unlocked (struct mm_tc *tc, void *md, struct mm_desc *d, void *ptr)
{
  if (!tc || mm_tc_busy (tc) || tc->cur->md != md || tc->cur->d != d)
    return 0;
  mm_tc_enter (tc, d);
  if (tc->cur->gen != mm_gen (d) || mm_tracing ())
    {
      mm_tc_leave (tc);
      return 0;
    }
  return free_fast (tc, d, ptr);
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
  else if (free_unlocked (tc, md, d, ptr))
    ;
  else if (MM_UNLIKELY (!mm_writable (d)))
    mm_fault (d, "free on a read-only heap", ptr);
  else
    {
      if (MM_UNLIKELY (mm_tracing () & MM_SLOW_TRACE))
	mm_trace ('-', ptr, 0);
      mm_free (d, ptr);
    }
  errno = saved;
}

/* Remember the slot at P (V: its slab | its index) for mmalloc's fast path.  */
static inline void
recent_push (struct mm_tce *ce, unsigned cls, void *p, uintptr_t v)
{
  MM_ASSERT (mm_recent_slab (v)->cls == cls && mm_recent_idx (v) < mm_recent_slab (v)->nobj);
  unsigned n = ce->nrecent[cls];
  if (MM_LIKELY (n < MM_TC_RECENT))
    {
      ce->recent[cls][n].p = p;
      ce->recent[cls][n].v = v;
      ce->nrecent[cls] = (uint8_t) (n + 1);
    }
}

/* mfree freed slot IDX (at P) of S, of class CLS, which we own, and S needs
   more than a recent slot: it was on the full list, or it is empty.  Inside
   the window of TC, which this leaves.  */
static __attribute__ ((noinline)) void
freed_rare (struct mm_tc *tc, struct mm_tce *ce, struct mm_slab *s, unsigned cls, void *p,
	    uint64_t idx)
{
  if (mm_tc_freed (ce, s, cls, 0))	/* else given up: no recent slot in it */
    recent_push (ce, cls, p, (uintptr_t) s | idx);
  mm_tc_leave (tc);
}

/* The fast path: a slot of a slab this thread owns, given back with one
   store to the slab's bitmap, inside the thread's window on the heap
   (mm_tc_enter), entered before the bound is read.  Everything else goes
   the slow way.

   CE, the entry of the heap this thread used last, is not checked against
   the heap's generation: every change that makes entries stale also takes
   the owners out of the heap's slabs (mm_tc_drop_heap, recovery in a fork
   child) or zeroes d->free_bound (detach, damage, a read-only child), and a
   stale entry takes no slab (acquire in tcache.c), so a slab owned by this
   thread below d->free_bound was taken through CE itself.  The
   pointer is checked as the slow path checks it: a slot boundary, its bit
   set, not freed already by another thread.  */
void
mfree (void *md, void *ptr)
{
  struct mm_tc *tc = mm_tc_self;
  if (MM_LIKELY (tc != NULL) && MM_LIKELY (!mm_tc_busy (tc)))
    {
      struct mm_tce *ce = tc->cur;
      struct mm_desc *d = ce->d;
      mm_tc_enter (tc, d);
      /* The bound first: while it is not 0, base is the attached heap's.  */
      uint64_t bound = __atomic_load_n (&d->free_bound, __ATOMIC_ACQUIRE);
      uint64_t off = (uint64_t) ((uintptr_t) ptr - (bound ? (uintptr_t) d->base : 0));
      if (MM_LIKELY (ce->md == md && off < bound && !mm_tracing ()))
	{
	  uint32_t ent = mm_pm_get (d, off >> MM_PAGE_SHIFT);
	  const struct mm_class *c = &mm_classes[PM_SLAB_CLS (ent)];
	  uint64_t soff = mm_fmt_slab_of (off, ent);
	  struct mm_slab *s = (struct mm_slab *) (d->base + soff);
	  uint64_t rel = mm_fmt_slot_rel (c, off - soff);	/* huge if below slot 0 */
	  if (MM_LIKELY (PM_KIND (ent) == PM_SLAB && rel < c->span
			 && mm_slab_owner (s) == tc->id))
	    {
	      uint64_t idx = mm_fmt_slot_idx (c, rel);
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
		  if (MM_UNLIKELY ((mm_slab_flags (s) & MM_SLAB_FULL) || (used == 0 && s != ce->slab[cls])))
		    {
		      freed_rare (tc, ce, s, cls, ptr, idx);	/* a tail call: no frame here */
		      return;
		    }
		  recent_push (ce, cls, ptr, (uintptr_t) s | idx);
		  mm_tc_leave (tc);
		  return;
		}
	    }
	}
      mm_tc_leave (tc);
    }
  mfree_slow (md, ptr);
}
