/* walk.c -- mmalloc_walk: every allocated block of a heap, in address order.

   The walk reads the page map and the slabs' bitmaps, which are the only
   record of what is allocated (see src/README), a batch of blocks at a time
   with every lock of the heap held, and calls the user's function between
   batches with no lock held: it may allocate and free, in this heap too.
   The position is kept as a page and a slot, so a walk that resumes after
   other threads changed the heap never goes back: a block allocated from
   before the walk began until after it ended is visited exactly once; one
   allocated or freed meanwhile may be visited or not.  Each batch proves
   what it reads with the format's walk of the page map (whole runs and
   slabs, slab headers, the directory), so a damaged heap is reported
   (mm_damage, MMALLOC_ECORRUPT) and never followed outside the region.  */

#include "mmprivate.h"

#include <errno.h>

/* Blocks handed to the user per lock hold: short holds, few of them.  */
#define WALK_BATCH 256

/* Call FN for the allocated slots of slab S (class C, first page PG) from
   POS->idx on.  FN's nonzero return stops: POS is then the next slot.  */
static int
walk_slots (struct mm_desc *d, struct mm_slab *s, const struct mm_class *c,
	    struct mm_wpos *pos, mm_wfn fn, void *arg)
{
  int checked = (mm_slab_flags (s) & MM_SLAB_CHECKED) != 0;
  const uint64_t *rb = mm_rbits (s);
  for (uint32_t i = pos->idx; i < c->nobj;)
    {
      uint32_t w = i / 64;
      uint64_t live = __atomic_load_n (&s->bits[w], __ATOMIC_ACQUIRE)
	& ~__atomic_load_n (&rb[w], __ATOMIC_ACQUIRE) & (~0ULL << (i % 64));
      if (!live)
	{
	  i = (w + 1) * 64;
	  continue;
	}
      i = w * 64 + (uint32_t) __builtin_ctzll (live);
      if (i >= c->nobj)
	break;
      struct mm_wblock b;
      b.start = (char *) s + mm_fmt_slot_off (c, i);
      b.room = c->size;
      b.user = b.start;
      b.size = b.room;
      i++;
      if (checked && !mm_chk_user (b.start, b.room, &b.user, &b.size))
	continue;
      int r = fn (d, &b, arg);
      if (r)
	{
	  pos->idx = i;
	  return r;
	}
    }
  pos->idx = 0;
  return 0;
}

int
mm_walk_from (struct mm_desc *d, struct mm_wpos *pos, int resume, mm_wfn fn, void *arg)
{
  uint64_t top = mm_top (d), pg = pos->pg;
  int r;
  /* The directory changes only as the heap grows: proved again then.  */
  if (top > d->held >> MM_PAGE_SHIFT || (top != pos->vtop && mm_dir_validate (d, 0)))
    {
      mm_damage (d, "walk: page-map directory", MM_PAGE);
      return MMALLOC_ECORRUPT;
    }
  pos->vtop = top;
  struct mm_fmt_heap h = mm_fmt_of (d);
  struct mm_fmt_iter it;
  struct mm_fmt_thing t;
  mm_fmt_iter_init (&it, &h, pos->pg, MM_FMT_HEADERS);
  while (mm_fmt_iter_next (&it, &t))
    {
      pg = t.pg;
      if (t.flaw && !(t.flaw == MM_FMT_NOTHING && resume))
	goto damaged;		/* else resumed inside a run or slab made meanwhile */
      if (!t.flaw)
	resume = 0;
      if (!t.flaw && t.kind == PM_SLAB)
	{
	  if (pos->cls != PM_SLAB_CLS (t.mark))
	    pos->idx = 0;	/* not the slab the position was in */
	  pos->cls = PM_SLAB_CLS (t.mark);
	  r = walk_slots (d, (struct mm_slab *) mm_at (d, pg << MM_PAGE_SHIFT),
			  &mm_classes[pos->cls], pos, fn, arg);
	  if (r)
	    return r;
	}
      else if (!t.flaw && t.kind == PM_LARGE)
	{
	  struct mm_wblock b;
	  b.start = b.user = mm_at (d, pg << MM_PAGE_SHIFT);
	  b.room = b.size = (size_t) t.n << MM_PAGE_SHIFT;
	  pos->pg = pg + t.n;
	  pos->idx = 0;
	  if ((!(t.mark & PM_CHECKED) || mm_chk_user (b.start, b.room, &b.user, &b.size))
	      && (r = fn (d, &b, arg)))
	    return r;
	}
      pos->pg = pg + t.n;
      pos->idx = 0;
    }
  return 0;
damaged:
  mm_damage (d, "walk: page map", pg << MM_PAGE_SHIFT);
  return MMALLOC_ECORRUPT;
}

struct batch
{
  unsigned n;
  void *ptr[WALK_BATCH];
  size_t size[WALK_BATCH];
};

static int
collect (struct mm_desc *d, const struct mm_wblock *b, void *arg)
{
  (void) d;
  struct batch *bt = arg;
  bt->ptr[bt->n] = b->user;
  bt->size[bt->n] = b->size;
  if (MM_UNLIKELY (mm_annotating ()))	/* as mmalloc_usable_size says */
    bt->size[bt->n] = mm_an_size (b->user, b->size);
  return ++bt->n == WALK_BATCH;
}

int
mmalloc_walk (void *md, mmalloc_visit_fn visit, void *arg)
{
  struct mm_desc *d = mm_desc_of (md);
  if (!d)
    return -1;
  if (mm_fork_refuse (d, "mmalloc_walk: a heap file of the parent process"))
    return mm_fail (d, MMALLOC_ELOCKED);
  if (!visit)
    return mm_fail (d, EINVAL);
  struct mm_wpos pos = { MM_HDR_PAGES, 0, MM_NCLASSES, 0 };
  struct batch bt;
  for (int resume = 0;; resume = 1)
    {
      bt.n = 0;
      mm_lock_all (d);
      int r = mm_walk_from (d, &pos, resume, collect, &bt);
      mm_unlock_all (d);
      for (unsigned i = 0; i < bt.n; i++)
	{
	  int v = visit (bt.ptr[i], bt.size[i], arg);
	  if (v)
	    return v;
	}
      if (r == MMALLOC_ECORRUPT)
	return mm_fail (d, r);
      if (!r)
	return 0;
      /* Detached meanwhile (by the visitor, or another thread): stop.  */
      if (__atomic_load_n (&d->magic, __ATOMIC_ACQUIRE) != MM_DESC_MAGIC
	  || mm_desc_of (md) != d)
	return mm_fail (NULL, MMALLOC_EBADDESC);
    }
}
