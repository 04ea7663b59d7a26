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

/* What is wrong with the allocated checked block at START (ROOM bytes): MM_OK
   if nothing.  A block in quarantine must hold its poison.  */
static enum mm_verdict
walk_block (char *start, size_t room)
{
  struct mm_block b;
  b.lead = mm_chk_lead (start, room);
  if (!b.lead)
    return MM_BAD_HEADER;
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
      enum mm_verdict bad = walk_block (w->d->base + (pg << MM_PAGE_SHIFT),
					(size_t) n << MM_PAGE_SHIFT);
      if (bad != MM_OK)
	problem (w, mm_verdict_text (bad), pg);
    }
}

/* The checked blocks of the slab S (class C, first page PG) that no thread
   owns: each allocated slot's header and guards, and each free slot's
   poison if S keeps it.  */
static void
walk_checked_slots (struct walk *w, const struct mm_slab *s, const struct mm_class *c,
		    uint16_t flags, uint64_t pg)
{
  const uint64_t *rb = s->bits + c->words;
  for (uint32_t i = 0; i < c->words; i++)
    {
      uint64_t tail = (i == c->words - 1 && c->nobj % 64) ? ~0ULL << (c->nobj % 64) : 0;
      uint64_t bits = __atomic_load_n (&s->bits[i], __ATOMIC_ACQUIRE) & ~tail
	& ~__atomic_load_n (&rb[i], __ATOMIC_ACQUIRE);
      uint64_t avail = (flags & MM_SLAB_POISON) ? ~bits & ~tail : 0;	/* in the free state */
      for (uint64_t all = bits | avail; all; all &= all - 1)
	{
	  uint32_t bit = (uint32_t) __builtin_ctzll (all);
	  char *slot = (char *) s + mm_fmt_slot_off (c, i * 64 + bit);
	  enum mm_verdict bad = (bits >> bit) & 1 ? walk_block (slot, c->size)
	    : mm_chk_slot_intact (slot, c->size);
	  if (bad != MM_OK)
	    problem (w, mm_verdict_text (bad), pg);
	}
    }
}

/* The slab of class CLS at PG, whose page marks agree (the format's walk).
   The walk holds the class lock, so a slab without an owner keeps its
   owner, its bits, used, its list marks and its slots' headers; only other
   threads' frees still set rbits (rfree counted, then atomic OR).  An owner
   writes its slab's bits, used and flags without a lock: of an owned slab
   only what holds at every instant is checked (mm_fmt_slab_bits).  */
static void
walk_slab (struct walk *w, uint64_t pg, unsigned cls)
{
  const struct mm_class *c = &mm_classes[cls];
  struct mm_slab *s = mm_at (w->d, pg << MM_PAGE_SHIFT);
  if (!mm_fmt_slab_ident (s, cls, c))
    {
      problem (w, "slab header damaged", pg);
      return;
    }
  uint32_t owner = __atomic_load_n (&s->owner, __ATOMIC_ACQUIRE);
  uint16_t flags = __atomic_load_n (&s->flags, __ATOMIC_ACQUIRE);
  const char *bad = mm_fmt_slab_bits (s, c, !owner);
  if (!bad && !owner)
    bad = mm_fmt_slab_counts (s, c);
  if (bad)
    problem (w, bad, pg);
  if (!owner && (flags & MM_SLAB_CHECKED))
    walk_checked_slots (w, s, c, flags, pg);
  int listed = (flags & MM_SLAB_LISTED) != 0;
  if (owner && listed)
    problem (w, "slab both owned and on a partial list", pg);
  if (owner && (flags & MM_SLAB_CHECKED))
    problem (w, "checked slab owned by a thread", pg);
  if (listed)
    w->listed[cls][flags & MM_SLAB_CHECKED]++;
  w->nslabs[cls]++;
  w->nslots[cls] += c->nobj;
}

/* Every page below `top' by the format's walk (mm_fmt_iter_next, checking
   that runs are empty inside): each flaw it finds, and each thing.  */
static void
walk_pages (struct walk *w)
{
  struct mm_desc *d = w->d;
  struct mm_fmt_heap h = mm_fmt_of (d);
  struct mm_fmt_iter it;
  struct mm_fmt_thing t;
  int prev_free = 0;
  mm_fmt_iter_init (&it, &h, 0, MM_FMT_INTERIOR);
  while (mm_fmt_iter_next (&it, &t))
    {
      if (t.flaw)
	problem (w, mm_fmt_flaw_name (t.flaw), t.pg);
      if (t.flaw && t.flaw != MM_FMT_INSIDE)
	{
	  prev_free = 0;
	  continue;
	}
      if (t.kind == PM_FREE)
	{
	  if (prev_free)
	    problem (w, "page map: free runs not merged", t.pg);
	  if (!mm_fmt_run_ok (mm_at (d, t.pg << MM_PAGE_SHIFT), h.top))
	    problem (w, "free run header damaged", t.pg);
	  w->nruns++;
	  w->run_pages += t.n;
	}
      else if (t.kind == PM_LARGE)
	walk_large (w, t.pg, t.n, t.mark);
      else if (t.kind == PM_SLAB)
	walk_slab (w, t.pg, PM_SLAB_CLS (t.mark));
      prev_free = t.kind == PM_FREE;
    }
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
	  uint64_t len = pg < top && !(off % MM_PAGE) ? mm_free_run_at (d, pg) : 0;
	  if (!len || n > w->nruns)
	    {
	      problem (w, "bin list: entry is not a free run", pg);
	      break;
	    }
	  struct mm_run *r = (struct mm_run *) (d->base + off);
	  if (mm_bin_of (len) != b || r->prev != prev)
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
	    if (e != mm_fmt_slab_mark (c, 0) || n > w->nslabs[c]
		|| !mm_fmt_slab_ident (s, c, &mm_classes[c])
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
  int err = mm_header_validate (d->hdr, 0);
  if (err)
    problem (&w, mmalloc_strerror (err), 0);
  else
    {
      if (d->hdr->dir_sum != mm_dir_sum (d))
	problem (&w, "page-map directory differs from its sum", MM_PAGE);
      walk_pages (&w);
      walk_bins (&w);
      walk_partials (&w);
      walk_counters (&w);
      /* The leaves in order, each below the top (the walk of the pages
         found those not marked, and the blocks over them).  */
      if (mm_dir_validate (d, 0))
	problem (&w, "page-map directory: a leaf out of order or beyond the top", 1);
    }
  mm_unlock_all (d);
  return w.problems;
}
