/* mmstats.c -- statistics of a heap.

   Page figures come from counters kept in the header under the page lock;
   slot figures from the slabs' bitmaps, walked through the page map.  mmstats
   takes every lock, so while no thread allocates, one call sees one state:
   bytes_used + bytes_free <= bytes_total, the rest being metadata (header,
   page map, slab headers and the unused tails of slabs).  */

#include "mmprivate.h"

#include <string.h>

/* Slots of the slabs: counted from their bitmaps, which owners change
   without a lock (the figures are exact whenever no thread allocates).  */
static void
count_slabs (struct mm_desc *d, struct mstats *st)
{
  uint64_t top = d->hdr->top;
  for (uint64_t pg = MM_HDR_PAGES; pg < top;)
    {
      uint32_t e = mm_pm_get (d, pg);
      uint64_t n = 1;
      if (PM_KIND (e) == PM_LARGE || PM_KIND (e) == PM_FREE)
	n = (e & PM_NMASK) ? e & PM_NMASK : 1;
      else if (PM_KIND (e) == PM_SLAB && PM_SLAB_CLS (e) < MM_NCLASSES && !PM_SLAB_OFF (e))
	{
	  const struct mm_class *c = &mm_classes[PM_SLAB_CLS (e)];
	  const struct mm_slab *s = (const struct mm_slab *) (d->base + (pg << MM_PAGE_SHIFT));
	  n = c->pages;
	  if (s->magic == MM_SLAB_MAGIC && s->nobj == c->nobj)
	    {
	      size_t used = mm_slab_used (s);
	      st->chunks_used += used;
	      st->bytes_used += used * c->size;
	      st->chunks_free += c->nobj - used;
	      st->bytes_free += (c->nobj - used) * (size_t) c->size;
	    }
	}
      pg += n;
    }
}

struct mstats
mmstats (void *md)
{
  struct mstats st;
  memset (&st, 0, sizeof st);
  struct mm_desc *d = mm_desc_of (md);
  if (!d)
    return st;
  mm_lock_all (d);
  const struct mm_header *h = d->hdr;
  st.bytes_total = (size_t) (h->top << MM_PAGE_SHIFT);
  st.chunks_used = (size_t) h->nlarge;
  st.bytes_used = (size_t) (h->large_pages << MM_PAGE_SHIFT);
  st.chunks_free = (size_t) h->nruns;
  st.bytes_free = (size_t) (h->run_pages << MM_PAGE_SHIFT);
  count_slabs (d, &st);
  mm_unlock_all (d);
  return st;
}
