/* recover.c -- rebuilding a heap's derived state after it was not detached.

   What is authoritative survives any interruption: the page map's HEAD/END
   marks of large blocks and slabs, and each slab's bitmap.  Everything else
   (free runs and their bins, partial lists, counters) is rebuilt here from
   them in one pass over the page map, so the cost is proportional to the
   metadata, never to the user data.  A large block counts only when its HEAD
   and END marks agree; a slab only when its header is whole and every page of
   it is marked; a META page only where the directory puts a leaf; any other
   page becomes free.  Allocated blocks are never touched, but on a checked
   heap one whose check header says freed (in quarantine, or being freed when
   the process died) is freed, and one whose header a call left ARMING is
   armed again (mm_chk_recover).  */

#include "mmprivate.h"

#include <errno.h>
#include <string.h>

/* Slab S has no owner any more; on its partial list if not full.  */
static void
slab_rebuild (struct mm_desc *d, struct mm_slab *s)
{
  const struct mm_class *c = &mm_classes[s->cls];
  struct mm_class_state *cs = &d->hdr->cls[s->cls];
  uint32_t words = (c->nobj + 63) / 64;
  uint64_t *rb = mm_rbits (s);
  for (uint32_t w = 0; w < words; w++)
    {				/* slots freed by other threads are free */
      s->bits[w] &= ~rb[w];
      rb[w] = 0;
    }
  if (s->flags & MM_SLAB_CHECKED)
    for (uint32_t w = 0; w < words; w++)
      for (uint64_t m = s->bits[w]; m; m &= m - 1)
	{
	  uint32_t idx = w * 64 + (uint32_t) __builtin_ctzll (m);
	  char *slot = (char *) s + mm_fmt_slot_off (c, idx);
	  if (idx < c->nobj && mm_chk_recover (slot, c->size))
	    {			/* in quarantine, or being freed: free */
	      mm_chk_recycle (s, slot, c->size);
	      s->bits[w] &= ~(1ULL << (idx % 64));
	    }
	}
  if (c->nobj % 64)
    s->bits[words - 1] |= ~0ULL << (c->nobj % 64);
  s->owner = 0;
  s->rfree = 0;
  s->ref = 0;
  s->used = mm_slab_used (s);
  s->hint = 0;
  s->flags &= MM_SLAB_CHECKED | MM_SLAB_POISON;
  s->next = s->prev = 0;
  cs->nslabs++;
  cs->nslots += c->nobj;
  if (!mm_slab_full (s))
    mm_partial_push (d, s);
}

/* Free the pages [FROM, TO) as one run, wiping any marks left inside.  */
static int
free_range (struct mm_desc *d, uint64_t from, uint64_t to)
{
  for (uint64_t i = from; i < to; i++)
    if (mm_pm_get (d, i))
      mm_pm_set (d, i, 0);
  return mm_pages_add_run (d, from, to - from);
}

/* Where the walk of the page map is: the free pages not yet made a run.  */
struct rebuild
{
  uint64_t free_from, free_to;
};

/* One thing found by mm_pages_walk: keep it, or gather free pages.  */
static int
rebuild_one (struct mm_desc *d, uint64_t pg, uint64_t n, uint32_t kind, void *arg)
{
  struct rebuild *r = arg;
  if (kind == PM_LARGE && (mm_pm_get (d, pg) & PM_CHECKED)
      && mm_chk_recover (d->base + (pg << MM_PAGE_SHIFT), (size_t) n << MM_PAGE_SHIFT))
    kind = PM_FREE;		/* in quarantine, or being freed: free */
  if (kind == PM_FREE)
    {
      if (r->free_to != pg)
	r->free_from = pg;
      r->free_to = pg + n;
      return 0;
    }
  if (r->free_to == pg && r->free_from < pg && free_range (d, r->free_from, pg) < 0)
    return errno;
  if (kind == PM_LARGE)
    {
      /* A resize in place may have died between writing the new END mark
         and wiping the old one.  */
      for (uint64_t i = pg + 1; i + 1 < pg + n; i++)
	if (mm_pm_get (d, i))
	  mm_pm_set (d, i, 0);
      d->hdr->nlarge++;
      d->hdr->large_pages += n;
    }
  else if (kind == PM_SLAB)
    slab_rebuild (d, (struct mm_slab *) (d->base + (pg << MM_PAGE_SHIFT)));
  return 0;
}

/* Rebuild; 0, or an errno value (ENOSPC: no disk block for a run header;
   MMALLOC_ECORRUPT: the directory names pages that are no leaf).  A file
   has been walked as this walk goes, writing nothing (region_validate): so
   every leaf lies outside every block before anything is written here.  */
int
mm_recover (struct mm_desc *d)
{
  struct mm_header *h = d->hdr;
  uint64_t top = h->top;
  /* A growth that died before moving `top' left leaves above it: their
     windows hold nothing yet, so they are simply forgotten, the last
     first (the entries that are not 0 stay a prefix).  */
  uint32_t *dir = (uint32_t *) (d->base + MM_PAGE);
  for (uint64_t w = MM_DIR_ENTRIES; w-- > 0;)
    if (dir[w] >= top)
      {
	dir[w] = 0;
	MM_KP ();
      }
  mm_pages_reset (d);
  mm_quar_reset (d);		/* its blocks are freed below */
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    memset (&h->cls[c], 0, sizeof h->cls[c]);
  struct rebuild r = { 0, 0 };
  int err = mm_pages_walk (d, 0, rebuild_one, &r);
  if (err)
    return err;
  if (r.free_to == top && r.free_from < top && free_range (d, r.free_from, top) < 0)
    return errno;
  h->dir_sum = mm_dir_sum (d);
  return 0;
}
