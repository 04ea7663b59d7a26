/* recover.c -- rebuilding a heap's derived state after it was not detached.

   What is authoritative survives any interruption: the page map's HEAD/END
   marks of large blocks and slabs, and each slab's bitmap.  Everything else
   (free runs and their bins, partial lists, counters) is rebuilt here from
   them in one pass over the page map, so the cost is proportional to the
   metadata, never to the user data.  A large block counts only when its HEAD
   and END marks agree; a slab only when its header is whole and every page of
   it is marked; any other page becomes free.  Allocated blocks are never
   touched.  */

#include "mmprivate.h"

#include <errno.h>
#include <string.h>

/* Is there a whole large block at PG (below TOP)?  Its length, else 0.  */
static uint64_t
large_at (struct mm_desc *d, uint64_t pg, uint32_t e, uint64_t top)
{
  uint64_t n = e & PM_NMASK;
  if (!(e & PM_HEAD) || n == 0 || n > top - pg)
    return 0;
  if (n == 1)
    return (e & PM_END) ? 1 : 0;
  uint32_t want = (e & ~PM_HEAD) | PM_END;
  return mm_pm_get (d, pg + n - 1) == want ? n : 0;
}

/* Is there a whole slab at PG?  Its length in pages, else 0.  */
static uint64_t
slab_at (struct mm_desc *d, uint64_t pg, uint32_t e, uint64_t top)
{
  unsigned cls = PM_SLAB_CLS (e);
  if (cls >= MM_NCLASSES || PM_SLAB_OFF (e) != 0)
    return 0;
  const struct mm_class *c = &mm_classes[cls];
  if (c->pages > top - pg)
    return 0;
  for (uint64_t i = 1; i < c->pages; i++)
    if (mm_pm_get (d, pg + i) != PM_MAKE (PM_SLAB, (uint32_t) (i << 8) | cls))
      return 0;
  struct mm_slab *s = (struct mm_slab *) (d->base + (pg << MM_PAGE_SHIFT));
  if (s->magic != MM_SLAB_MAGIC || s->cls != cls || s->nobj != c->nobj)
    return 0;
  return c->pages;
}

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
  if (c->nobj % 64)
    s->bits[words - 1] |= ~0ULL << (c->nobj % 64);
  s->owner = 0;
  s->rfree = 0;
  s->used = mm_slab_used (s);
  s->hint = 0;
  s->flags &= MM_SLAB_CHECKED;
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

/* Rebuild; 0, or an errno value (ENOSPC: no disk block for a run header).  */
int
mm_recover (struct mm_desc *d)
{
  struct mm_header *h = d->hdr;
  uint64_t top = h->top, free_from = 0;
  int in_free = 0;
  mm_pages_reset (d);
  const uint32_t *dir = (const uint32_t *) (d->base + MM_PAGE);
  for (uint64_t w = 0; w < MM_DIR_ENTRIES; w++)	/* validated at attach */
    for (uint64_t i = 0; dir[w] && i < MM_LEAF_PAGES; i++)
      mm_pm_set (d, dir[w] + i, PM_MAKE (PM_META, 0));
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    memset (&h->cls[c], 0, sizeof h->cls[c]);
  for (uint64_t pg = 0; pg < top;)
    {
      uint32_t e = mm_pm_get (d, pg);
      uint64_t n = 0;
      if (pg < MM_HDR_PAGES || PM_KIND (e) == PM_META)
	n = 1;
      else if (PM_KIND (e) == PM_LARGE)
	n = large_at (d, pg, e, top);
      else if (PM_KIND (e) == PM_SLAB)
	n = slab_at (d, pg, e, top);
      if (!n)
	{			/* free, or the debris of an interrupted call */
	  if (!in_free)
	    free_from = pg;
	  in_free = 1;
	  pg++;
	  continue;
	}
      if (in_free && free_range (d, free_from, pg) < 0)
	return errno;
      in_free = 0;
      if (pg < MM_HDR_PAGES)
	mm_pm_set (d, pg, PM_MAKE (PM_META, 0));
      else if (PM_KIND (e) == PM_LARGE)
	{
	  /* A resize in place may have died between writing the new END mark
	     and wiping the old one.  */
	  for (uint64_t i = pg + 1; i + 1 < pg + n; i++)
	    if (mm_pm_get (d, i))
	      mm_pm_set (d, i, 0);
	  h->nlarge++;
	  h->large_pages += n;
	}
      else if (PM_KIND (e) == PM_SLAB)
	slab_rebuild (d, (struct mm_slab *) (d->base + (pg << MM_PAGE_SHIFT)));
      pg += n;
    }
  if (in_free && free_range (d, free_from, top) < 0)
    return errno;
  h->dir_sum = mm_dir_sum (d);
  return 0;
}
