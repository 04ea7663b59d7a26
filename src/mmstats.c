/* mmstats.c -- statistics of a heap.

   The figures come from counters kept in the header beside the state they
   count (page counters under the page lock, slot counters under their class
   lock); mmstats takes every lock, so one call sees one consistent state:
   bytes_used + bytes_free <= bytes_total, the rest being metadata (header,
   page map, slab headers and the unused tails of slabs).  */

#include "mmprivate.h"

#include <string.h>

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
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    {
      const struct mm_class_state *cs = &h->cls[c];
      st.chunks_used += (size_t) cs->nused;
      st.bytes_used += (size_t) cs->nused * mm_classes[c].size;
      st.chunks_free += (size_t) (cs->nslots - cs->nused);
      st.bytes_free += (size_t) (cs->nslots - cs->nused) * mm_classes[c].size;
    }
  mm_unlock_all (d);
  return st;
}
