/* mmcheck.c -- mmcheck and mmcheckf (checking turned on), and
   mmalloc_check, the whole-heap walk.

   The check headers and guards of checked blocks are guard.c's, the
   quarantine of freed ones quarantine.c's.

   The walk (mmalloc_check) visits every page below `top' once and every list
   with a bound, so a damaged heap can neither crash nor hang it; it reports
   each problem on stderr and counts them.  */

#include "mmprivate.h"

#include <errno.h>
#include <string.h>

#define CHK sizeof (struct mm_chk)

int
mmcheckf (void *md, void (*abortfunc) (void), int force)
{
  struct mm_desc *d = mm_desc_of (md);
  if (!d)
    return 0;
  if (!mm_writable (d))
    {
      mm_fail (d, EROFS);
      return 0;
    }
  int ok = 1;
  mm_lock (&d->page_lock);
  uint32_t fl = __atomic_load_n (&d->hdr->flags, __ATOMIC_RELAXED);	/* mm_note_used: no lock */
  if (!(fl & MM_F_CHECKED) && (fl & MM_F_USED) && !force)
    ok = 0;
  else
    {
      d->abortfunc = abortfunc;
      if (!(fl & MM_F_CHECKED))
	{			/* new blocks take the checked paths from now */
	  mm_unlock (&d->page_lock);
	  mm_lock_all (d);
	  __atomic_or_fetch (&d->hdr->flags, MM_F_CHECKED, __ATOMIC_RELEASE);
	  mm_tc_drop_heap (d);
	  mm_unlock_all (d);
	  return 1;
	}
    }
  mm_unlock (&d->page_lock);
  if (!ok)
    mm_fail (d, EBUSY);
  return ok;
}

int
mmcheck (void *md, void (*abortfunc) (void))
{
  return mmcheckf (md, abortfunc, 0);
}

/* --- the whole-heap walk -------------------------------------------------- */

struct walk
{
  struct mm_desc *d;
  int problems;
  uint64_t nlarge, large_pages, nruns, run_pages;
  uint64_t nslabs[MM_NCLASSES], nslots[MM_NCLASSES];
  uint64_t listed[MM_NCLASSES][2];	/* non-full slabs found by the page walk */
};

static void
problem (struct walk *w, const char *what, uint64_t pg)
{
  w->problems++;
  mm_report (w->d, what, pg << MM_PAGE_SHIFT);
}

/* A run of KIND at PG: its END mark and empty interior.  Returns its length,
   or 0 after reporting.  */
static uint64_t
walk_run (struct walk *w, uint64_t pg, uint32_t e, uint64_t top)
{
  uint64_t n = e & PM_NMASK;
  if (!(e & PM_HEAD) || n == 0 || n > top - pg)
    {
      problem (w, "page map: bad run", pg);
      return 0;
    }
  uint32_t want = (e & ~PM_HEAD) | PM_END;
  if (n == 1 ? !(e & PM_END) : mm_pm_get (w->d, pg + n - 1) != want)
    problem (w, "page map: run without its end mark", pg);
  for (uint64_t i = pg + 1; i + 1 < pg + n; i++)
    if (mm_pm_get (w->d, i))
      {
	problem (w, "page map: mark inside a run", i);
	break;
      }
  return n;
}

/* What is wrong with the allocated checked block at START (ROOM bytes): 0 if
   nothing.  A block in quarantine must hold its poison.  */
static const char *
walk_block (char *start, size_t room)
{
  struct mm_block b;
  b.lead = mm_chk_lead (start, room);
  if (!b.lead)
    return "block header clobbered (write before the block?)";
  b.start = start + b.lead - CHK;
  b.room = room - b.lead + CHK;
  const struct mm_chk *c = (const struct mm_chk *) (void *) b.start;
  if (mm_chk_is (c, MM_CHK_FREE))
    return mm_chk_freed_intact (c, b.room);
  return mm_chk_verify (c + 1, &b, MM_CHK_RESIZING);
}

static void
walk_large (struct walk *w, uint64_t pg, uint64_t n, uint32_t e)
{
  w->nlarge++;
  w->large_pages += n;
  if (e & PM_CHECKED)
    {
      const char *bad = walk_block (w->d->base + (pg << MM_PAGE_SHIFT), (size_t) n << MM_PAGE_SHIFT);
      if (bad)
	problem (w, bad, pg);
    }
}

static uint64_t
walk_slab (struct walk *w, uint64_t pg, uint32_t e, uint64_t top)
{
  unsigned cls = PM_SLAB_CLS (e);
  if (cls >= MM_NCLASSES || e != PM_MAKE (PM_SLAB, cls))
    {
      problem (w, "page map: bad slab mark", pg);
      return 1;
    }
  const struct mm_class *c = &mm_classes[cls];
  if (c->pages > top - pg)
    {
      problem (w, "slab runs past the top", pg);
      return top - pg;
    }
  for (uint64_t i = 1; i < c->pages; i++)
    if (mm_pm_get (w->d, pg + i) != PM_MAKE (PM_SLAB, (uint32_t) (i << 8) | cls))
      problem (w, "page map: slab page marked wrong", pg + i);
  struct mm_slab *s = (struct mm_slab *) (w->d->base + (pg << MM_PAGE_SHIFT));
  if (s->magic != MM_SLAB_MAGIC || s->cls != cls || s->nobj != c->nobj)
    {
      problem (w, "slab header damaged", pg);
      return c->pages;
    }
  /* The walk holds the class lock, so a slab without an owner keeps its
     owner, its bits, used, its list marks and its slots' headers; only other
     threads' frees still set rbits (atomic OR, then rfree counted).  An
     owner writes its slab's bits, used and flags without a lock: of an owned
     slab only what holds at every instant is checked, one word at a time.  */
  uint32_t owner = __atomic_load_n (&s->owner, __ATOMIC_ACQUIRE);
  uint16_t flags = __atomic_load_n (&s->flags, __ATOMIC_ACQUIRE);
  uint32_t rfree = __atomic_load_n (&s->rfree, __ATOMIC_ACQUIRE);	/* before rbits */
  uint32_t words = (c->nobj + 63) / 64, used = 0, pending = 0;
  const uint64_t *rb = mm_rbits (s);
  for (uint32_t i = 0; i < words; i++)
    {
      uint64_t bits = __atomic_load_n (&s->bits[i], __ATOMIC_ACQUIRE);
      uint64_t r = __atomic_load_n (&rb[i], __ATOMIC_ACQUIRE);
      uint64_t tail = (i == words - 1 && c->nobj % 64) ? ~0ULL << (c->nobj % 64) : 0;
      if (r & tail)
	problem (w, "slab: slot past the end marked freed", pg);
      if ((bits & tail) != tail)
	problem (w, "slab bitmap: slot past the end marked free", pg);
      if (owner)
	continue;
      if (r & ~bits)
	problem (w, "slab: slot freed by another thread was not allocated", pg);
      bits &= ~tail;
      pending += (uint32_t) __builtin_popcountll (r & bits);
      bits &= ~r;
      used += (uint32_t) __builtin_popcountll (bits);
      if (!(flags & MM_SLAB_CHECKED))
	continue;
      uint64_t avail = (flags & MM_SLAB_POISON) ? ~bits & ~tail : 0;	/* in the free state */
      for (uint64_t all = bits | avail; all; all &= all - 1)
	{
	  uint32_t bit = (uint32_t) __builtin_ctzll (all);
	  char *slot = (char *) s + c->objoff + (size_t) (i * 64 + bit) * c->size;
	  const char *bad = (bits >> bit) & 1 ? walk_block (slot, c->size)
	    : mm_chk_freed_intact ((const struct mm_chk *) (void *) slot, c->size);
	  if (bad)
	    problem (w, bad, pg);
	}
    }
  int listed = (flags & MM_SLAB_LISTED) != 0;
  if (owner && listed)
    problem (w, "slab both owned and on a partial list", pg);
  if (owner && (flags & MM_SLAB_CHECKED))
    problem (w, "checked slab owned by a thread", pg);
  if (!owner)
    {
      /* rfree may lag rbits (a free between its OR and its count), never
	 lead it.  A slab off the lists is full but for such frees, which
	 list it once counted; a listed one has a free slot.  */
      if (s->used != used + pending || rfree > pending)
	problem (w, "slab counts differ from its bitmaps", pg);
      if (listed ? used == c->nobj : used + pending < c->nobj)
	problem (w, "slab partial-list mark wrong", pg);
    }
  if (listed)
    w->listed[cls][flags & MM_SLAB_CHECKED]++;
  w->nslabs[cls]++;
  w->nslots[cls] += c->nobj;
  return c->pages;
}

static void
walk_pages (struct walk *w)
{
  struct mm_desc *d = w->d;
  uint64_t top = d->hdr->top, prev_free = 0;
  for (uint64_t pg = 0; pg < top;)
    {
      uint32_t e = mm_pm_get (d, pg);
      uint64_t n = 1;
      switch (PM_KIND (e))
	{
	case PM_META:
	  break;
	case PM_FREE:
	  if (!(n = walk_run (w, pg, e, top)))
	    n = 1;
	  else
	    {
	      if (prev_free)
		problem (w, "page map: free runs not merged", pg);
	      if (((struct mm_run *) (d->base + (pg << MM_PAGE_SHIFT)))->magic != MM_RUN_MAGIC)
		problem (w, "free run header damaged", pg);
	      w->nruns++;
	      w->run_pages += n;
	    }
	  break;
	case PM_LARGE:
	  if (!(n = walk_run (w, pg, e, top)))
	    n = 1;
	  else
	    walk_large (w, pg, n, e);
	  break;
	case PM_SLAB:
	  n = walk_slab (w, pg, e, top);
	  break;
	default:
	  problem (w, "page map: page belongs to nothing", pg);
	}
      prev_free = PM_KIND (e) == PM_FREE;
      pg += n;
    }
  if (top < MM_HDR_PAGES)
    return;
  for (uint64_t pg = 0; pg < MM_HDR_PAGES; pg++)
    if (PM_KIND (mm_pm_get (d, pg)) != PM_META)
      problem (w, "page map: header page not marked", pg);
}

static void
walk_bins (struct walk *w)
{
  struct mm_desc *d = w->d;
  struct mm_header *h = d->hdr;
  uint64_t top = h->top, seen = 0;
  for (unsigned b = 0; b < MM_NBINS; b++)
    {
      uint64_t prev = 0, off = h->bin_head[b];
      if (off && !(h->bin_mask[b >> 6] & (1ULL << (b & 63))))
	problem (w, "bin mask misses a bin", b);
      for (uint64_t n = 0; off; n++)
	{
	  uint64_t pg = off >> MM_PAGE_SHIFT;
	  uint32_t e = pg < top && !(off % MM_PAGE) ? mm_pm_get (d, pg) : 0;
	  if (PM_KIND (e) != PM_FREE || !(e & PM_HEAD) || n > w->nruns)
	    {
	      problem (w, "bin list: entry is not a free run", pg);
	      break;
	    }
	  struct mm_run *r = (struct mm_run *) (d->base + off);
	  if (mm_bin_of (e & PM_NMASK) != b || r->prev != prev)
	    problem (w, "bin list: run in the wrong bin or badly linked", pg);
	  seen++;
	  prev = off;
	  off = r->next;
	}
    }
  if (seen != w->nruns)
    problem (w, "bins do not hold every free run", seen);
}

static void
walk_partials (struct walk *w)
{
  struct mm_desc *d = w->d;
  uint64_t top = d->hdr->top;
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    for (int k = 0; k < 2; k++)
      {
	uint64_t n = 0, prev = 0;
	for (uint64_t off = d->hdr->cls[c].partial[k]; off; n++)
	  {
	    uint64_t pg = off >> MM_PAGE_SHIFT;
	    uint32_t e = pg < top && !(off % MM_PAGE) ? mm_pm_get (d, pg) : 0;
	    struct mm_slab *s = (struct mm_slab *) (d->base + off);
	    if (PM_KIND (e) != PM_SLAB || PM_SLAB_CLS (e) != c || PM_SLAB_OFF (e)
		|| n > w->nslabs[c] || s->magic != MM_SLAB_MAGIC
		|| (int) (s->flags & MM_SLAB_CHECKED) != k || s->prev != prev)
	      {
		problem (w, "partial list: bad entry", pg);
		break;
	      }
	    prev = off;
	    off = s->next;
	  }
	if (n != w->listed[c][k])
	  problem (w, "partial list does not hold every slab with free slots", c);
      }
}

static void
walk_counters (struct walk *w)
{
  struct mm_header *h = w->d->hdr;
  if (h->nlarge != w->nlarge || h->large_pages != w->large_pages)
    problem (w, "large-block counters wrong", h->nlarge);
  if (h->nruns != w->nruns || h->run_pages != w->run_pages)
    problem (w, "free-run counters wrong", h->nruns);
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    if (h->cls[c].nslabs != w->nslabs[c] || h->cls[c].nslots != w->nslots[c])
      problem (w, "size-class counters wrong", c);
}

int
mmalloc_check (void *md)
{
  struct mm_desc *d = mm_desc_of (md);
  if (!d || mm_fork_refuse (d, "mmalloc_check: a heap file of the parent process"))
    return 1;
  struct walk w;
  memset (&w, 0, sizeof w);
  w.d = d;
  mm_lock_all (d);
  int e = mm_header_validate (d->hdr, 0);
  if (e)
    problem (&w, mmalloc_strerror (e), 0);
  else
    {
      if (d->hdr->dir_sum != mm_dir_sum (d))
	problem (&w, "page-map directory differs from its sum", MM_PAGE);
      walk_pages (&w);
      walk_bins (&w);
      walk_partials (&w);
      walk_counters (&w);
      /* The leaves: where the directory says, in order, outside every block
         (the walks above take any META page for one).  */
      if (mm_dir_validate (d, 0))
	problem (&w, "page-map directory: a leaf out of order or beyond the top", 1);
      else if (!w.problems && mm_pages_walk (d, 1, NULL, NULL))
	problem (&w, "page map: a leaf that is not marked, or a page marked as one", 1);
    }
  mm_unlock_all (d);
  return w.problems;
}
