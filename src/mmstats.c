/* mmstats.c -- statistics of a heap.

   Page figures come from counters kept in the header under the page lock;
   slot figures from the slabs' bitmaps, walked through the page map.  mmstats
   takes every lock, so while no thread allocates, one call sees one state:
   bytes_used + bytes_free <= bytes_total, the rest being metadata (header,
   page map, slab headers and the unused tails of slabs).  */

#include "mmprivate.h"

#include <string.h>

/* Slots of the slabs and the free runs, walked through the page map (the
   format's walk; slabs with a whole header): the slots are counted from
   the slabs' bitmaps, which owners change without a lock (the figures are
   exact whenever no thread allocates).  */
static void
count_pages (struct mm_desc *d, struct mm_heapinfo *hi)
{
  struct mstats *st = &hi->st;
  struct mm_fmt_heap h = mm_fmt_of (d);
  struct mm_fmt_iter it;
  struct mm_fmt_thing t;
  mm_fmt_iter_init (&it, &h, MM_HDR_PAGES, MM_FMT_HEADERS);
  while (mm_fmt_iter_next (&it, &t))
    if (!t.flaw && t.kind == PM_FREE)
      {
	hi->bin_runs[mm_bin_of (t.n)]++;
	hi->bin_pages[mm_bin_of (t.n)] += t.n;
	if (t.pg + t.n == h.top)
	  hi->top_run_bytes = t.n << MM_PAGE_SHIFT;
      }
    else if (!t.flaw && t.kind == PM_SLAB)
      {
	const struct mm_class *c = &mm_classes[PM_SLAB_CLS (t.mark)];
	size_t used = mm_slab_used (mm_at (d, t.pg << MM_PAGE_SHIFT));
	st->chunks_used += used;
	st->bytes_used += used * c->size;
	st->chunks_free += c->nobj - used;
	st->bytes_free += (c->nobj - used) * (size_t) c->size;
	hi->cls_free[PM_SLAB_CLS (t.mark)] += c->nobj - used;
      }
}

void
mm_heapinfo (struct mm_desc *d, struct mm_heapinfo *hi)
{
  memset (hi, 0, sizeof *hi);
  mm_lock_all (d);
  const struct mm_header *h = d->hdr;
  hi->st.bytes_total = (size_t) (h->top << MM_PAGE_SHIFT);
  hi->st.chunks_used = hi->large = (size_t) h->nlarge;
  hi->st.bytes_used = hi->large_bytes = (size_t) (h->large_pages << MM_PAGE_SHIFT);
  hi->st.chunks_free = hi->runs = (size_t) h->nruns;
  hi->st.bytes_free = hi->run_bytes = (size_t) (h->run_pages << MM_PAGE_SHIFT);
  hi->reserved = d->held;
  count_pages (d, hi);
  mm_quar_stats (d, hi);	/* freed, though still allocated */
  mm_unlock_all (d);
}

struct mstats
mmstats (void *md)
{
  struct mm_heapinfo hi;
  struct mm_desc *d = mm_desc_of (md);
  if (!d || mm_fork_refuse (d, "mmstats: a heap file of the parent process"))
    {
      memset (&hi.st, 0, sizeof hi.st);
      return hi.st;
    }
  mm_heapinfo (d, &hi);
  return hi.st;
}
