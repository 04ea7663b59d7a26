/* mmalloc.c -- mmalloc: the allocation fast path and the end of every
   allocating entry point.

   A small request takes a slot this thread freed lately, else one of the
   slab it owns for the class, with one store to the slab's bitmap and no
   lock (tcache.c).  Everything else goes the slow way: the thread cache's
   refill, or the locked paths (alloc.c).  */

#include "mmprivate.h"

#include <errno.h>
#include <string.h>

static void *mmalloc_locked (void *md, size_t size);

/* mmalloc when the fast path cannot serve, called from SITE.  */
static __attribute__ ((noinline)) void *
mmalloc_slow (void *md, size_t size, const void *site)
{
  const void *outer = mm_site_push (site);
  void *p = mmalloc_locked (md, size);
  mm_site_pop (outer);
  return p;
}

/* mmalloc when the fast path cannot serve: the first call of a thread on a
   heap, a class whose owned slab is full, large or checked blocks, tracing.  */
static void *
mmalloc_locked (void *md, size_t size)
{
  struct mm_desc *d = mm_desc_of (md);
  if (!d)
    return NULL;
  if (size <= MM_SMALL_MAX)
    {
      struct mm_tce *ce = mm_tc_entry (md, d);
      if (ce)
	{
	  mm_note_used (d);
	  struct mm_tc *tc = mm_tc_self;
	  mm_tc_enter (tc, d);
	  void *p = ce->gen == mm_gen (d) ? mm_tc_refill (ce, mm_size_class (size)) : NULL;
	  mm_tc_leave (tc);
	  if (p || ce->gen == __atomic_load_n (&d->gen, __ATOMIC_ACQUIRE))
	    return mm_alloc_done (d, p, size);
	  /* CE went stale meanwhile (checking turned on, say): the locked path.  */
	}
    }
  return mm_alloc_done (d, mm_alloc (d, size, NULL), size);
}

/* mmalloc's fast path found no slot: refill through the entry CE, which is
   good (no lookup), else the slow path.  Called inside the window of TC.  */
static __attribute__ ((noinline)) void *
mmalloc_refill (void *md, size_t size, struct mm_tc *tc, struct mm_tce *ce, unsigned cls,
		const void *site)
{
  void *p = mm_tc_refill (ce, cls);
  mm_tc_leave (tc);
  return MM_LIKELY (p != NULL) ? p : mmalloc_slow (md, size, site);
}

/* The fast path: a slot this thread freed lately (a recent slot), else one
   of the slab it owns for the class, taken with one store to the slab's
   bitmap; inside the thread's window on the heap (mm_tc_enter), entered
   before the generation is compared.  */
void *
mmalloc (void *md, size_t size)
{
  struct mm_tc *tc = mm_tc_self;
  if (MM_LIKELY (tc != NULL) && MM_LIKELY (size <= MM_SMALL_MAX) && MM_LIKELY (!mm_tc_busy (tc)))
    {
      struct mm_tce *ce = tc->cur;
      mm_tc_enter (tc, ce->d);
      if (MM_LIKELY (ce->md == md && ce->gen == mm_gen (ce->d) && !mm_tracing ()))
	{
	  unsigned cls = mm_size_class (size), n = ce->nrecent[cls];
	  if (MM_LIKELY (n != 0))
	    {
	      struct mm_recent *h = &ce->recent[cls][n - 1];
	      struct mm_slab *s = mm_recent_slab (h->v);
	      unsigned idx = mm_recent_idx (h->v);
	      uint64_t bit = 1ULL << (idx % 64), b = s->bits[idx / 64];
	      ce->nrecent[cls] = (uint8_t) (n - 1);
	      if (MM_LIKELY (!(b & bit)))	/* else the slab path took it: stale */
		{
		  __atomic_store_n (&s->bits[idx / 64], b | bit, __ATOMIC_RELAXED);
		  MM_KP ();
		  mm_slab_count (s, 1);
		  mm_tc_leave (tc);
		  return h->p;
		}
	    }
	  struct mm_slab *s = ce->slab[cls];
	  if (MM_LIKELY (s != NULL))
	    {
	      /* We own it: nobody else writes its bits.  Words before the hint
		 are full, or were when we passed them.  */
	      const struct mm_class *c = &mm_classes[cls];
	      for (uint32_t w = s->hint; w < c->words; w++)
		{
		  uint64_t b = s->bits[w];
		  if (MM_LIKELY (~b != 0))
		    {
		      unsigned bit = (unsigned) __builtin_ctzll (~b);
		      __atomic_store_n (&s->bits[w], b | (1ULL << bit), __ATOMIC_RELAXED);
		      MM_KP ();
		      mm_slab_count (s, 1);
		      mm_slab_set_hint (s, w);
		      mm_tc_leave (tc);
		      return (char *) s + mm_fmt_slot_off (c, w * 64 + bit);
		    }
		}
	    }
	  return mmalloc_refill (md, size, tc, ce, cls, __builtin_return_address (0));
	  /* tail calls: no frame here */
	}
      mm_tc_leave (tc);
    }
  return mmalloc_slow (md, size, __builtin_return_address (0));
}

/* SIZE bytes at P, just allocated in D, handed out to valgrind and ASan
   (annotate.c); a checked block is left to mmcheck.  */
void
mm_alloc_annotate (struct mm_desc *d, void *p, size_t size)
{
  struct mm_block b;
  unsigned lockno = mm_block_acquire (d, p, &b, MM_CHK_PEEK);
  if (lockno == MM_BLOCK_BAD)
    return;
  if (!b.checked)
    mm_an_alloc (p, size, b.room - (size_t) ((char *) p - b.start));
  mm_block_unlock (d, lockno);
}

/* The end of every allocating entry point: remember a failure, trace,
   annotate.  */
void *
mm_alloc_done (struct mm_desc *d, void *p, size_t size)
{
  if (MM_UNLIKELY (!p))
    {
      mm_fail (d, errno);
      return NULL;
    }
  if (MM_UNLIKELY (mm_tracing ()))
    {
      if (mm_tracing () & MM_SLOW_TRACE)
	mm_trace ('+', p, size);
      if (mm_annotating ())
	mm_alloc_annotate (d, p, size);
    }
  return p;
}
