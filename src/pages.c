/* pages.c -- the page allocator: page map, free runs, growth and shrinking.

   Owns the page map (a directory in the header pointing to 16 KiB leaves, one
   leaf per 16 MiB window) and the free runs.  Invariants, checked by
   mmalloc_check: every page below `top' belongs to exactly one META page, slab,
   large block or free run; runs mark only their first (HEAD) and last (END)
   page; no two free runs touch; every free run is in the bin of its length.
   The caller holds the page lock.  On failure functions set errno.  */

#include "mmprivate.h"

#include <errno.h>
#include <string.h>

uint64_t mm_decay_default = MM_DECAY_MS;

unsigned
mm_bin_of (uint64_t n)
{
  if (n <= 64)
    return (unsigned) n - 1;
  unsigned b = 63 - (unsigned) __builtin_clzll (n);
  return 64 + b - 6;
}

/* The run lengths of bin B: from *LO to *HI pages.  */
void
mm_bin_bounds (unsigned b, uint64_t *lo, uint64_t *hi)
{
  if (b < 64)
    *lo = *hi = b + 1;
  else
    {
      *lo = b == 64 ? 65 : (uint64_t) 1 << (b - 58);
      *hi = ((uint64_t) 2 << (b - 58)) - 1;
    }
}

static struct mm_run *
run_at (struct mm_desc *d, uint64_t pg)
{
  return (struct mm_run *) (d->base + (pg << MM_PAGE_SHIFT));
}

static void
mark_run (struct mm_desc *d, uint64_t pg, uint64_t n, uint32_t kind, uint32_t extra)
{
  uint32_t e = PM_MAKE (kind, (uint32_t) n | extra);
  if (n == 1)
    mm_pm_set (d, pg, e | PM_HEAD | PM_END);
  else
    {
      mm_pm_set (d, pg + n - 1, e | PM_END);
      mm_pm_set (d, pg, e | PM_HEAD);
    }
}

static void
clear_run (struct mm_desc *d, uint64_t pg, uint64_t n)
{
  mm_pm_set (d, pg, 0);
  if (n > 1)
    mm_pm_set (d, pg + n - 1, 0);
}

/* The length of the whole free run whose first page is PG (its HEAD and END
   marks agree, mm_fmt_run_len, and it ends by `top'), or 0.  */
uint64_t
mm_free_run_at (const struct mm_desc *d, uint64_t pg)
{
  uint32_t head = pg < d->hdr->top ? mm_pm_get (d, pg) : 0;
  return PM_KIND (head) == PM_FREE ? mm_run_len (d, pg, head) : 0;
}

/* The first page of the whole free run whose last page is PG, or 0.  */
static uint64_t
free_run_ending (const struct mm_desc *d, uint64_t pg)
{
  uint64_t first = pg < d->hdr->top ? mm_fmt_run_first (mm_pm_get (d, pg), pg) : 0;
  return first && mm_free_run_at (d, first) == pg + 1 - first ? first : 0;
}

/* May the run header at OFF, a link read from a bin or a run of bin B, be
   written?  It must be 0, or the first page of a free run of that bin by the
   page map (which attach proved to describe every page: so not a block), with
   its header, whose link back (next if PREV, else prev) is BACK.  */
static int
run_link_ok (struct mm_desc *d, uint64_t off, unsigned b, int prev, uint64_t back)
{
  if (!off)
    return 1;
  if (!mm_link_ok (d, off))
    return 0;
  uint64_t pg = off >> MM_PAGE_SHIFT, n = mm_free_run_at (d, pg);
  const struct mm_run *r = run_at (d, pg);
  return n && mm_bin_of (n) == b && mm_fmt_run_ok (r, d->hdr->top)
    && (prev ? r->next : r->prev) == back;
}

/* Pages of the run that decay may give back: those after the first of a
   dirty run of MM_RELEASE_MIN pages or more.  */
static uint64_t
dirty_pages (uint64_t n, uint64_t released)
{
  return !(released & MM_RUN_ZERO) && n >= MM_RELEASE_MIN ? n - 1 : 0;
}

/* A run of N pages marked RELEASED is no longer dirty.  */
static void
undirty (struct mm_desc *d, uint64_t n, uint64_t released)
{
  uint64_t dp = dirty_pages (n, released);
  d->dirty -= dp < d->dirty ? dp : d->dirty;	/* counted anew by each look */
}

static void
bin_insert (struct mm_desc *d, uint64_t pg, uint64_t n, uint64_t released, uint64_t since)
{
  struct mm_header *h = d->hdr;
  unsigned b = mm_bin_of (n);
  struct mm_run *r = run_at (d, pg);
  mm_an_meta (r, sizeof *r);	/* it may have been a block's */
  r->magic = MM_RUN_MAGIC;
  r->released = released;
  r->since = since;
  d->dirty += dirty_pages (n, released);
  r->prev = 0;
  r->next = h->bin_head[b];
  if (!run_link_ok (d, r->next, b, 0, 0))
    {
      mm_damage (d, "bin head", r->next);
      r->next = 0;
    }
  if (r->next)
    ((struct mm_run *) mm_at (d, r->next))->prev = pg << MM_PAGE_SHIFT;
  MM_KP ();
  h->bin_head[b] = pg << MM_PAGE_SHIFT;
  MM_KP ();
  h->bin_mask[b >> 6] |= 1ULL << (b & 63);
  h->nruns++;
  h->run_pages += n;
}

/* Take the run at PG out of its bin; returns its `released' mark, and in
   *SINCE (if not NULL) its `since'.  A damaged run counts as having holes
   and dirty pages.  */
static uint64_t
bin_remove (struct mm_desc *d, uint64_t pg, uint64_t n, uint64_t *since)
{
  struct mm_header *h = d->hdr;
  unsigned b = mm_bin_of (n);
  struct mm_run *r = run_at (d, pg);
  uint64_t off = pg << MM_PAGE_SHIFT;
  if (!mm_fmt_run_ok (r, h->top) || (r->prev ? !run_link_ok (d, r->prev, b, 1, off)
				   : h->bin_head[b] != off)
      || !run_link_ok (d, r->next, b, 0, off))
    {
      mm_damage (d, "free run links", pg << MM_PAGE_SHIFT);
      if (since)
	*since = mm_os_now_ms ();
      return MM_RUN_HOLES;
    }
  if (r->prev)
    ((struct mm_run *) mm_at (d, r->prev))->next = r->next;
  else
    h->bin_head[b] = r->next;
  MM_KP ();
  if (r->next)
    ((struct mm_run *) mm_at (d, r->next))->prev = r->prev;
  if (!h->bin_head[b])
    h->bin_mask[b >> 6] &= ~(1ULL << (b & 63));
  MM_KP ();
  r->magic = 0;
  h->nruns--;
  h->run_pages -= n;
  MM_KP ();
  undirty (d, n, r->released);
  if (since)
    *since = r->since;
  return r->released;
}

/* Give the pages [PG, PG+N) back to the OS: dropped from anonymous memory,
   punched out of a file.  A failure only costs memory.  Returns the bytes
   given back: N pages when all of them now read zero.  */
static uint64_t
release (struct mm_desc *d, uint64_t pg, uint64_t n)
{
  size_t sys = mm_os_pagesize ();
  uintptr_t a = (uintptr_t) (d->base + (pg << MM_PAGE_SHIFT));
  uintptr_t z = a + (n << MM_PAGE_SHIFT);
  a = (a + sys - 1) & ~(uintptr_t) (sys - 1);
  z &= ~(uintptr_t) (sys - 1);
  if (z <= a)
    return 0;
  if (pg < d->resv_hi && pg + n > d->resv_lo)
    d->resv_lo = d->resv_hi = 0;
  int err;
  if (d->mode & MM_MODE_FILE)
    err = mm_os_file_punch (d->fd, (uint64_t) (a - (uintptr_t) d->base), z - a);
  else
    err = mm_os_discard ((void *) a, z - a);
  return err ? 0 : z - a;
}

/* Reserve disk blocks again for [PG, PG+N) of a released run of a file heap,
   so that writing there cannot fail (SIGBUS) on a full disk.  Reserves up to
   MM_RESERVE_AHEAD pages ahead, within the run (which ends before END), and
   remembers it, so that carving a run piece by piece costs one call per
   piece of that size.  0 or -1.  */
static int
unrelease (struct mm_desc *d, uint64_t pg, uint64_t n, uint64_t end)
{
  if (!(d->mode & MM_MODE_FILE) || (pg >= d->resv_lo && pg + n <= d->resv_hi))
    return 0;
  uint64_t to = pg + (n > MM_RESERVE_AHEAD ? n : MM_RESERVE_AHEAD);
  if (to > end)
    to = end > pg + n ? end : pg + n;
  int err = mm_os_file_grow (d->fd, pg << MM_PAGE_SHIFT, to << MM_PAGE_SHIFT);
  if (err && to > pg + n)		/* a nearly full disk: just what is needed */
    err = mm_os_file_grow (d->fd, pg << MM_PAGE_SHIFT, (to = pg + n) << MM_PAGE_SHIFT);
  if (err)
    {
      errno = err;
      return -1;
    }
  d->resv_lo = pg;
  d->resv_hi = to;
  return 0;
}

/* Give back the pages of the dirty run at PG, N pages long, all but its
   first, which holds its links; it is then known to read zero where every
   page went.  Returns the bytes given back.  */
static uint64_t
release_run (struct mm_desc *d, uint64_t pg, uint64_t n)
{
  struct mm_run *r = run_at (d, pg);
  uint64_t given = release (d, pg + 1, n - 1);
  undirty (d, n, r->released);
  r->released |= MM_RUN_HOLES;
  if (given == (n - 1) << MM_PAGE_SHIFT)
    r->released |= MM_RUN_ZERO;
  MM_KP ();
  return given;
}

/* Add the free run [PG, PG+N), merging with the runs on either side.  FRESH
   pages (just grown) read zero and need blocks reserved in a file, unless
   pages above `top' may hold old data.  Other pages are dirty: the merged
   run is dirty then, free since the time its oldest part was freed, and
   decay gives its pages back later (with a delay of 0, now).  Returns the
   first page of the merged run.  */
static uint64_t
run_add (struct mm_desc *d, uint64_t pg, uint64_t n, int fresh)
{
  uint64_t top = d->hdr->top, lpg = pg, ln = 0, rn = 0, lrel = 0, rrel = 0;
  uint64_t now = mm_os_now_ms (), since = now, t;
  if (pg > 0)
    {
      uint32_t l = mm_pm_get (d, pg - 1);
      if (PM_KIND (l) == PM_FREE && (l & PM_END) && !free_run_ending (d, pg - 1))
	{
	  mm_damage (d, "free run marks", (pg - 1) << MM_PAGE_SHIFT);
	  l = 0;
	}
      if (PM_KIND (l) == PM_FREE && (l & PM_END))
	{
	  lpg = free_run_ending (d, pg - 1);
	  ln = pg - lpg;
	  lrel = bin_remove (d, lpg, ln, &t);
	  since = t < since ? t : since;
	  clear_run (d, lpg, ln);
	}
      else
	ln = 0;
    }
  if (pg + n < top)
    {
      uint32_t r = mm_pm_get (d, pg + n);
      rn = mm_free_run_at (d, pg + n);
      if (PM_KIND (r) == PM_FREE && (r & PM_HEAD) && !rn)
	{
	  mm_damage (d, "free run marks", (pg + n) << MM_PAGE_SHIFT);
	  r = 0;
	}
      if (PM_KIND (r) == PM_FREE && (r & PM_HEAD))
	{
	  rrel = bin_remove (d, pg + n, rn, &t);
	  since = t < since ? t : since;
	  clear_run (d, pg + n, rn);
	}
      else
	rn = 0;
    }
  uint64_t total = ln + n + rn;
  /* Zero where every part is: the right run's header page is not.  */
  uint64_t zero = fresh && !d->stale_above && (!ln || (lrel & MM_RUN_ZERO)) && !rn;
  uint64_t released = ((lrel | rrel) & MM_RUN_HOLES) | (fresh ? MM_RUN_HOLES : 0)
    | (zero ? MM_RUN_ZERO : 0);
  mark_run (d, lpg, total, PM_FREE, 0);
  bin_insert (d, lpg, total, released, since);
  if (!d->decay_ms && !zero && total >= MM_RELEASE_MIN)
    release_run (d, lpg, total);
  return lpg;
}

static void decay (struct mm_desc *d);

/* A heap file found its disk full (errno): punch out the dirty runs that
   decay would give back later, so that their blocks can serve.  1 if
   something was given back (then try again), else 0 with errno kept.  */
static int
reclaim (struct mm_desc *d)
{
  int err = errno;
  if (!(d->mode & MM_MODE_FILE) || (err != ENOSPC && err != EDQUOT) || mm_damaged (d))
    return 0;
  uint64_t given = mm_pages_purge (d, 1);
  errno = err;
  return given != 0;
}

/* First page S >= PG with S + BASEPG a multiple of ALIGN (pages).  */
static uint64_t
align_up (uint64_t pg, uint64_t basepg, uint64_t align)
{
  if (align <= 1)
    return pg;
  uint64_t a = pg + basepg;
  a = (a + align - 1) & ~(align - 1);
  return a - basepg;
}

/* The first bin at or after B that may hold runs, or MM_NBINS.  */
static unsigned
bin_next (const struct mm_header *h, unsigned b)
{
  while (b < MM_NBINS)
    {
      uint64_t m = h->bin_mask[b >> 6] >> (b & 63);
      if (m)
	return b + (unsigned) __builtin_ctzll (m);
      b = (b | 63) + 1;
    }
  return MM_NBINS;
}

/* Find a run that holds N pages whose page SKEW is aligned to ALIGN: its head
   in *RUN, the first page of the block in *START.  */
static int
run_find (struct mm_desc *d, uint64_t n, uint64_t align, uint64_t skew, uint64_t *run,
	  uint64_t *start)
{
  struct mm_header *h = d->hdr;
  uint64_t basepg = (uint64_t) (uintptr_t) d->base >> MM_PAGE_SHIFT;
  for (unsigned b = bin_next (h, mm_bin_of (n)); b < MM_NBINS; b = bin_next (h, b + 1))
    {
      /* A list longer than the runs there can be is a cycle: damage.  */
      uint64_t walk = 0, bound = (h->nruns < h->top ? h->nruns : h->top) + 1;
      for (uint64_t off = h->bin_head[b]; off; walk++)
	{
	  if (walk > bound)
	    {
	      mm_damage (d, "bin list loops", off);
	      return 0;
	    }
	  uint64_t pg = off >> MM_PAGE_SHIFT;
	  uint64_t len = mm_link_ok (d, off) ? mm_free_run_at (d, pg) : 0;
	  if (!len)
	    {
	      mm_damage (d, "bin list", off);
	      return 0;
	    }
	  uint64_t s = align_up (pg + skew, basepg, align) - skew;
	  if (s + n <= pg + len)
	    {
	      *run = pg;
	      *start = s;
	      return 1;
	    }
	  off = run_at (d, pg)->next;
	}
    }
  return 0;
}

/* Take [S, S+N) out of the free run at RUN, unmarked; what is left of the
   run before and after stays free.  Returns the run's `released' mark.  */
static uint64_t
carve (struct mm_desc *d, uint64_t run, uint64_t s, uint64_t n)
{
  uint64_t len = mm_pm_get (d, run) & PM_NMASK;
  uint64_t since, rel = bin_remove (d, run, len, &since);
  clear_run (d, run, len);
  mm_an_meta (d->base + (s << MM_PAGE_SHIFT), (size_t) n << MM_PAGE_SHIFT);
  if (s > run)
    {
      mark_run (d, run, s - run, PM_FREE, 0);
      bin_insert (d, run, s - run, rel, since);
    }
  if (s + n < run + len)
    {
      mark_run (d, s + n, run + len - (s + n), PM_FREE, 0);
      bin_insert (d, s + n, run + len - (s + n), rel, since);
    }
  return rel;
}

/* Take N pages (placed so that the address of their page SKEW, below N, is a
   multiple of ALIGN pages) out of the free runs, unmarked: mm_pages_mark
   gives them their kind before the page lock is dropped, and until then
   recovery takes them for free pages.  With ZERO, *ZERO tells whether the
   pages are known to read zero: those of a run whose pages were never
   written since the kernel gave them (the run's header page aside, which is
   then cleared here).  Returns the first page, or 0 with errno set.  */
uint64_t
mm_pages_take (struct mm_desc *d, uint64_t n, uint64_t align, uint64_t skew, int *zero)
{
  uint64_t run, s;
  if (mm_damaged (d))
    {
      errno = MMALLOC_ECORRUPT;
      return 0;
    }
  if (n == 0 || n > PM_NMASK || align > PM_NMASK || skew >= n)
    {
      errno = ENOMEM;
      return 0;
    }
  decay (d);
  for (int again = 0;; again = 1)
    {
      if (!run_find (d, n, align, skew, &run, &s))
	{
	  if (mm_damaged (d))
	    return 0;
	  if (mm_pages_grow (d, n + (align > 1 ? align - 1 : 0)) < 0)
	    {
	      if (!again && reclaim (d))
		continue;
	      return 0;
	    }
	  if (!run_find (d, n, align, skew, &run, &s))
	    {
	      errno = ENOMEM;
	      return 0;
	    }
	}
      uint64_t len = mm_pm_get (d, run) & PM_NMASK;
      uint64_t end = s + n < run + len ? s + n + 1 : s + n;	/* and the trail's head */
      if (!(run_at (d, run)->released & MM_RUN_HOLES) || unrelease (d, s, end - s, run + len) == 0)
	break;
      if (again || !reclaim (d))
	return 0;
    }
  uint64_t rel = carve (d, run, s, n);
  if (zero && (*zero = (rel & MM_RUN_ZERO) != 0) && s == run)
    memset (run_at (d, run), 0, MM_PAGE);
  return s;
}

/* Mark the N pages taken at PG as KIND: a LARGE block with BITS among its
   flags, or a SLAB whose class is BITS.  */
void
mm_pages_mark (struct mm_desc *d, uint64_t pg, uint64_t n, uint32_t kind, uint32_t bits)
{
  if (kind == PM_SLAB)
    for (uint64_t i = 0; i < n; i++)
      mm_pm_set (d, pg + i, PM_MAKE (PM_SLAB, (uint32_t) (i << 8) | bits));
  else
    {
      mark_run (d, pg, n, kind, bits);
      d->hdr->nlarge++;
      d->hdr->large_pages += n;
    }
}

/* mm_pages_take and mm_pages_mark in one.  */
uint64_t
mm_pages_alloc (struct mm_desc *d, uint64_t n, uint64_t align, uint64_t skew, uint32_t kind,
		uint32_t bits)
{
  uint64_t pg = mm_pages_take (d, n, align, skew, NULL);
  if (pg)
    mm_pages_mark (d, pg, n, kind, bits);
  return pg;
}

/* Lower `top' when a free run of MIN pages or more ends there, keeping KEEP
   (at least 1) of its pages: the others go back to the OS and a heap file
   gets shorter.  Returns the bytes given back.  */
static uint64_t
shrink_to (struct mm_desc *d, uint64_t min, uint64_t keep)
{
  struct mm_header *h = d->hdr;
  uint64_t top = h->top;
  uint32_t e = mm_pm_get (d, top - 1);
  if (PM_KIND (e) != PM_FREE)
    return 0;
  uint64_t n = e & PM_NMASK;
  if (n < min || n <= keep || mm_damaged (d))
    return 0;
  if (free_run_ending (d, top - 1) != top - n || !mm_fmt_run_ok (run_at (d, top - n), top))
    {
      mm_damage (d, "free run marks at the top", (top - 1) << MM_PAGE_SHIFT);
      return 0;
    }
  uint64_t head = top - n, newtop = head + keep;
  uint64_t since, rel = bin_remove (d, head, n, &since);
  clear_run (d, head, n);
  mark_run (d, head, keep, PM_FREE, 0);
  bin_insert (d, head, keep, rel, since);
  mm_set_top (d, newtop);
  MM_KP ();
  char *a = d->base + (newtop << MM_PAGE_SHIFT);
  size_t len = (size_t) ((top - newtop) << MM_PAGE_SHIFT);
  if (d->resv_hi > newtop)
    d->resv_lo = d->resv_hi = 0;
  /* Failures leave memory mapped beyond top, which growth maps again: its
     pages may then hold old data.  */
  if (mm_os_decommit (a, len))
    {
      d->stale_above = 1;
      return 0;
    }
  if (d->mode & MM_MODE_FILE)
    d->stale_above = mm_os_file_resize (d->fd, newtop << MM_PAGE_SHIFT) != 0;
  mm_region_trim (d, newtop << MM_PAGE_SHIFT);
  return len;
}

/* The shrink of the heap at its top: a run of MM_SHRINK_MIN + MM_GROW_MIN
   pages at the top goes back but for MM_GROW_MIN pages, so that a heap that
   frees and allocates around the same size does not shrink and grow each
   time (the drop-in's mallopt may set other figures: trim_min, trim_keep).
   Decay does it once the run has stayed free for the delay.  */
static uint64_t
shrink (struct mm_desc *d)
{
  return shrink_to (d, d->trim_min ? d->trim_min : MM_SHRINK_MIN + MM_GROW_MIN,
		    d->trim_keep ? d->trim_keep : MM_GROW_MIN);
}

/* Give back the pages of the dirty free runs of MM_RELEASE_MIN pages or
   more that have stayed free for the delay (ALL: every one), and shrink the
   heap at its top if its run has stayed free that long too.  The runs are
   found in their bins, whose lists are checked as run_find checks them.
   Counts the dirty pages left anew.  Returns the bytes given back.  */
uint64_t
mm_pages_purge (struct mm_desc *d, int all)
{
  struct mm_header *h = d->hdr;
  uint64_t now = mm_os_now_ms (), given = 0, dirty = 0;
  d->decay_last = now;
  if (mm_damaged (d))
    return 0;
  uint64_t head = free_run_ending (d, h->top - 1), n;
  if (head && mm_fmt_run_ok (run_at (d, head), h->top))
    {
      uint64_t since = run_at (d, head)->since;
      if (all || since > now || now - since >= d->decay_ms)
	given += shrink (d);
    }
  for (unsigned b = bin_next (h, mm_bin_of (MM_RELEASE_MIN)); b < MM_NBINS && !mm_damaged (d);
       b = bin_next (h, b + 1))
    {
      uint64_t walk = 0, bound = (h->nruns < h->top ? h->nruns : h->top) + 1;
      for (uint64_t off = h->bin_head[b]; off; walk++)
	{
	  uint64_t pg = off >> MM_PAGE_SHIFT;
	  n = mm_link_ok (d, off) ? mm_free_run_at (d, pg) : 0;
	  if (walk > bound || !n || !mm_fmt_run_ok (run_at (d, pg), h->top))
	    {
	      mm_damage (d, "bin list", off);
	      break;
	    }
	  struct mm_run *r = run_at (d, pg);
	  if (r->since > now)
	    r->since = now;	/* a time of another process */
	  if (dirty_pages (n, r->released) && (all || now - r->since >= d->decay_ms))
	    given += release_run (d, pg, n);
	  dirty += dirty_pages (n, r->released);
	  off = r->next;
	}
    }
  d->dirty = dirty;
  return given;
}

/* Decay, on the page lock's paths: with a delay, give back what stayed
   dirty that long (looked for every quarter of the delay), and everything
   when the dirty pages exceed their bound; without one, or with a trim
   threshold set by the drop-in's mallopt (as the C library's free trims),
   shrink the top at once.  */
static void
decay (struct mm_desc *d)
{
  if (!d->decay_ms || d->trim_min)
    (void) shrink (d);		/* mallopt's threshold asks for it at once */
  if (!d->decay_ms)
    return;
  uint64_t bound = d->hdr->top / 4 > MM_DIRTY_MIN ? d->hdr->top / 4 : MM_DIRTY_MIN;
  if (d->dirty > bound)
    (void) mm_pages_purge (d, 1);
  else if (mm_os_now_ms () - d->decay_last >= d->decay_ms / 4 + 1)
    (void) mm_pages_purge (d, 0);
}

/* Give back to the OS what free memory can be given (the drop-in's
   malloc_trim, mmalloc_trim): the top's free run but for KEEP pages (at
   least 1), and the pages of every free run below that were not given back
   yet, all but each run's first page, which holds its links.  The runs are
   found by the format's walk of the page map, which stops at the first run
   whose marks make no sense.  Returns the bytes given back.  */
uint64_t
mm_pages_trim (struct mm_desc *d, uint64_t keep)
{
  if (mm_damaged (d))
    return 0;
  uint64_t given = shrink_to (d, 0, keep ? keep : 1);
  struct mm_fmt_heap h = mm_fmt_of (d);
  struct mm_fmt_iter it;
  struct mm_fmt_thing t;
  mm_fmt_iter_init (&it, &h, MM_HDR_PAGES, 0);
  while (!mm_damaged (d) && mm_fmt_iter_next (&it, &t))
    {
      struct mm_run *r = run_at (d, t.pg);
      if (t.flaw == MM_FMT_BAD_RUN)
	mm_damage (d, "run marks", t.pg << MM_PAGE_SHIFT);
      else if (t.flaw || t.kind != PM_FREE || t.n < 2 || (r->released & MM_RUN_ZERO))
	continue;
      else if (!mm_fmt_run_ok (r, h.top))
	mm_damage (d, "free run", t.pg << MM_PAGE_SHIFT);
      else
	given += release_run (d, t.pg, t.n);
    }
  d->decay_last = mm_os_now_ms ();
  return given;
}

/* Free the large block or slab whose first page is PG.  */
void
mm_pages_free (struct mm_desc *d, uint64_t pg)
{
  struct mm_header *h = d->hdr;
  uint32_t e = mm_pm_get (d, pg);
  uint64_t n;
  if (mm_damaged (d))
    return;			/* leak rather than write through bad metadata */
  if (PM_KIND (e) == PM_SLAB)
    {
      n = mm_classes[PM_SLAB_CLS (e)].pages;
      for (uint64_t i = n; i-- > 0;)
	mm_pm_set (d, pg + i, 0);
    }
  else
    {
      n = e & PM_NMASK;
      clear_run (d, pg, n);
      h->nlarge--;
      h->large_pages -= n;
    }
  run_add (d, pg, n, 0);
  decay (d);
}

/* Set the marks of the large block at PG to N pages, from OLD pages.  The new
   END goes first and the HEAD (one store) second, so that at every instant the
   page map describes either the old block or the new one.  */
static void
remark_large (struct mm_desc *d, uint64_t pg, uint64_t old, uint64_t n, uint32_t flags)
{
  uint32_t e = PM_MAKE (PM_LARGE, (uint32_t) n | flags);
  if (n > 1)
    mm_pm_set (d, pg + n - 1, e | PM_END);
  mm_pm_set (d, pg, e | PM_HEAD | (n == 1 ? PM_END : 0));
  if (old > 1 && old != n)
    mm_pm_set (d, pg + old - 1, 0);
}

static int grow (struct mm_desc *d, uint64_t n, uint64_t avoid);

/* Resize the large block at PG to N pages in place.  0, or -1 (errno ENOMEM)
   when the pages after it are not free.  */
int
mm_pages_resize (struct mm_desc *d, uint64_t pg, uint64_t n)
{
  struct mm_header *h = d->hdr;
  uint32_t e = mm_pm_get (d, pg);
  uint64_t old = e & PM_NMASK;
  uint32_t flags = e & PM_CHECKED;
  if (n == old)
    return 0;
  if (mm_damaged (d))
    {
      errno = MMALLOC_ECORRUPT;
      return -1;
    }
  if (n < old)
    {
      remark_large (d, pg, old, n, flags);
      h->large_pages -= old - n;
      run_add (d, pg + n, old - n, 0);
      decay (d);
      return 0;
    }
  uint64_t need = n - old, next = pg + old, rn = mm_free_run_at (d, next);
  /* Free space after the block up to the top: the heap grows under it
     (its new leaves, if any, elsewhere).  */
  if (rn < need && next + rn == h->top)
    {
      if (grow (d, need - rn, next) < 0)
	return -1;
      rn = mm_free_run_at (d, next);
    }
  if (rn < need)
    goto no;
  if (run_at (d, next)->released
      && unrelease (d, next, rn > need ? need + 1 : need, next + rn) < 0)
    return -1;
  uint64_t since, rel = bin_remove (d, next, rn, &since);
  clear_run (d, next, rn);
  remark_large (d, pg, old, n, flags);
  if (rn > need)
    {
      mark_run (d, next + need, rn - need, PM_FREE, 0);
      bin_insert (d, next + need, rn - need, rel, since);
    }
  h->large_pages += need;
  return 0;
no:
  errno = ENOMEM;
  return -1;
}

/* Move the large block at PG to new pages, N of them (N at least its
   length), by moving its pages, not copying them: for an anonymous heap.
   Its old pages become a free run that reads zero.  Returns the new first
   page, or 0 with errno set and the block where it was.  */
uint64_t
mm_pages_move (struct mm_desc *d, uint64_t pg, uint64_t n)
{
  struct mm_header *h = d->hdr;
  uint32_t e = mm_pm_get (d, pg);
  uint64_t old = e & PM_NMASK;
  if ((d->mode & MM_MODE_FILE) || n < old || mm_os_pagesize () != MM_PAGE)
    {
      errno = EINVAL;
      return 0;
    }
  uint64_t s = mm_pages_take (d, n, 1, 0, NULL);
  if (!s)
    return 0;
  int err = mm_os_move (d->base + (pg << MM_PAGE_SHIFT), d->base + (s << MM_PAGE_SHIFT),
			(size_t) old << MM_PAGE_SHIFT);
  if (err)
    {
      run_add (d, s, n, 0);
      errno = err;
      return 0;
    }
  mm_pages_mark (d, s, n, PM_LARGE, e & PM_CHECKED);
  clear_run (d, pg, old);
  h->nlarge--;
  h->large_pages -= old;
  run_add (d, pg, old, 1);
  decay (d);
  return s;
}

/* The leaves of the K windows from W0 (which have none yet), placed
   together in a free run, after the last leaf and below page AVOID, so
   that they do not stand in the way of a block that grows at the top.  1
   if done, else 0 (no run fits, or its disk blocks could not be had).
   Written so that a kill leaves their pages free or the leaves whole: the
   pages are marked META before the directory names them.  */
static int
leaves_below (struct mm_desc *d, uint64_t w0, uint64_t k, uint64_t avoid)
{
  struct mm_header *h = d->hdr;
  uint32_t *dir = (uint32_t *) (d->base + MM_PAGE);
  uint64_t lo = w0 ? dir[w0 - 1] + MM_LEAF_PAGES : MM_HDR_PAGES;
  uint64_t need = k * MM_LEAF_PAGES, best = 0, run = 0;
  if (!w0 || !k)
    return 0;
  for (unsigned b = bin_next (h, mm_bin_of (need)); b < MM_NBINS; b = bin_next (h, b + 1))
    {
      uint64_t walk = 0, bound = (h->nruns < h->top ? h->nruns : h->top) + 1;
      for (uint64_t off = h->bin_head[b]; off; walk++)
	{
	  uint64_t pg = off >> MM_PAGE_SHIFT;
	  uint64_t len = mm_link_ok (d, off) ? mm_free_run_at (d, pg) : 0;
	  if (walk > bound || !len)
	    {
	      mm_damage (d, "bin list", off);
	      return 0;
	    }
	  uint64_t st = pg > lo ? pg : lo;
	  if (st + need <= pg + len && st + need <= avoid && (!best || st < best))
	    {
	      best = st;
	      run = pg;
	    }
	  off = run_at (d, pg)->next;
	}
    }
  if (!best)
    return 0;
  uint64_t len = mm_pm_get (d, run) & PM_NMASK;
  uint64_t end = best + need < run + len ? best + need + 1 : best + need;
  if ((run_at (d, run)->released & MM_RUN_HOLES) && unrelease (d, best, end - best, run + len))
    return 0;
  carve (d, run, best, need);
  memset (d->base + (best << MM_PAGE_SHIFT), 0, (size_t) need << MM_PAGE_SHIFT);
  for (uint64_t i = 0; i < need; i++)
    mm_pm_set (d, best + i, PM_MAKE (PM_META, 0));
  for (uint64_t j = 0; j < k; j++)
    {
      __atomic_store_n (&dir[w0 + j], (uint32_t) (best + j * MM_LEAF_PAGES),
			__ATOMIC_RELEASE);
      MM_KP ();
    }
  h->dir_sum = mm_dir_sum (d);
  MM_KP ();
  return 1;
}

/* Make room for a run of at least N free pages at the top of the heap.
   When it reaches a window of the page map that has no leaf, the leaves of
   the windows up to MM_LEAVES_AHEAD times the heap's new size are made at
   once (so that leaves are rarely made): in a free run below page AVOID if one fits,
   else at the start of the new space.  */
static int
grow (struct mm_desc *d, uint64_t n, uint64_t avoid)
{
  struct mm_header *h = d->hdr;
  uint32_t *dir = (uint32_t *) (d->base + MM_PAGE);
  uint64_t old = h->top, limit = d->span >> MM_PAGE_SHIFT;
  uint64_t want = n, extra = old / 8;
  if (extra > (32u << 20) >> MM_PAGE_SHIFT)
    extra = (32u << 20) >> MM_PAGE_SHIFT;
  if (want < MM_GROW_MIN)
    want = MM_GROW_MIN;
  if (want < n + extra)
    want = n + extra;
  for (int attempt = 0; attempt < 2; attempt++)
    {
      uint64_t w0 = old >> MM_WIN_SHIFT, ahead = 0;
      while (w0 < MM_DIR_ENTRIES && dir[w0])
	w0++;
      if (w0 <= (old + want - 1) >> MM_WIN_SHIFT && w0 < MM_DIR_ENTRIES)
	{			/* new windows: their leaves, and some ahead */
	  ahead = (MM_LEAVES_AHEAD * (old + want) - 1) >> MM_WIN_SHIFT;
	  if (ahead >= MM_DIR_ENTRIES)
	    ahead = MM_DIR_ENTRIES - 1;
	  if (limit && ahead > (limit - 1) >> MM_WIN_SHIFT)
	    ahead = (limit - 1) >> MM_WIN_SHIFT;
	  if (ahead >= w0 && leaves_below (d, w0, ahead - w0 + 1, avoid))
	    ahead = 0;
	  if (mm_damaged (d))
	    {
	      errno = MMALLOC_ECORRUPT;
	      return -1;
	    }
	}
      uint64_t leaves = 0, add = want, wlast;
      for (;;)
	{			/* the leaves need pages, which may need a leaf */
	  uint64_t need = 0;
	  wlast = (old + add - 1) >> MM_WIN_SHIFT;
	  if (wlast < ahead)
	    wlast = ahead;
	  for (uint64_t w = old >> MM_WIN_SHIFT; w <= wlast; w++)
	    need += w < MM_DIR_ENTRIES && !dir[w];
	  if (need == leaves)
	    break;
	  leaves = need;
	  add = want + leaves * MM_LEAF_PAGES;
	}
      uint64_t newtop = old + add;
      /* The address space: within the span, and reserved (RLIMIT_AS).  */
      int err = newtop > limit || ((newtop - 1) >> MM_WIN_SHIFT) >= MM_DIR_ENTRIES
	? ENOMEM : mm_region_extend (d, newtop << MM_PAGE_SHIFT);
      if (err)
	{
	  want = n;		/* try once more for exactly what is needed */
	  if (attempt == 0 && n + extra > n)
	    continue;
	  errno = err;
	  return -1;
	}
      char *a = d->base + (old << MM_PAGE_SHIFT);
      size_t len = (size_t) (add << MM_PAGE_SHIFT);
      if (d->mode & MM_MODE_FILE)
	{
	  /* Disk blocks now for what is written now (the leaves and the new
	     run's first page); the rest is reserved when it is handed out.  */
	  uint64_t now = old + leaves * MM_LEAF_PAGES + 1;
	  err = mm_os_file_grow (d->fd, old << MM_PAGE_SHIFT, now << MM_PAGE_SHIFT);
	  if (!err)
	    err = mm_os_file_resize (d->fd, newtop << MM_PAGE_SHIFT);
	  if (!err)
	    err = mm_os_map_file (a, len, d->fd, old << MM_PAGE_SHIFT, 0);
	}
      else
	err = mm_os_commit (a, len);
      if (err)
	{
	  errno = err;
	  return -1;
	}
      /* Marks left above the old top (by a shrink, or in a damaged file)
         must not be taken for runs: wipe them in the leaves that exist.  */
      for (uint64_t i = old; i < newtop; i++)
	if (dir[i >> MM_WIN_SHIFT] && mm_pm_get (d, i))
	  mm_pm_set (d, i, 0);
      uint64_t p = old;
      for (uint64_t w = old >> MM_WIN_SHIFT; w <= wlast && w < MM_DIR_ENTRIES; w++)
	if (!dir[w])
	  {
	    if (d->stale_above)	/* else fresh: zero, and not touched */
	      memset (d->base + (p << MM_PAGE_SHIFT), 0, MM_LEAF_PAGES * MM_PAGE);
	    __atomic_store_n (&dir[w], (uint32_t) p, __ATOMIC_RELEASE);
	    MM_KP ();
	    p += MM_LEAF_PAGES;
	  }
      /* Leaves are marked before `top' covers them: recovery must never
         take a leaf for free space.  */
      for (uint64_t i = old; i < p; i++)
	mm_pm_set (d, i, PM_MAKE (PM_META, 0));
      if (p > old)
	{
	  h->dir_sum = mm_dir_sum (d);
	  MM_KP ();
	}
      mm_set_top (d, newtop);
      MM_KP ();
      run_add (d, p, newtop - p, 1);
      return 0;
    }
  errno = ENOMEM;
  return -1;
}

/* Make room for a run of at least N free pages at the top of the heap.  */
int
mm_pages_grow (struct mm_desc *d, uint64_t n)
{
  return grow (d, n, d->hdr->top);
}

/* --- validation: what attach and recovery prove before writing -------------

   Nothing read from a heap file is written through until it is shown to
   name metadata, never a block: the directory's leaves here, at attach
   (region_validate) and before recovery; links of free runs and slabs where
   they are followed (bin_insert, bin_remove, mm_slab_ok).  */

/* May recovery take the page of the flawed thing T for a free page?  Not a
   header or leaf page that is not marked META, nor a block or slab over a
   leaf (the directory would make the page map write into it).  */
static int
flaw_recoverable (const struct mm_fmt_thing *t)
{
  return t->flaw != MM_FMT_META && t->flaw != MM_FMT_UNREADABLE
    && !(t->flaw == MM_FMT_LEAF && PM_KIND (t->mark) != PM_FREE);
}

/* Walk the page map below `top' in page order with the format's walk
   (mm_fmt_iter_next), the directory checked (mm_dir_validate), and call
   VISIT (D, PG, N, KIND, ARG) for each thing found: a header page or a page
   of a leaf (META, one page at a time), a whole large block, a whole slab,
   or free pages.  STRICT (a heap detached cleanly): every page must belong
   to exactly one of them, by marks that agree, nothing marked inside a run,
   or the heap is damaged.  Else (recovery): a block or slab counts when it
   is whole (marks that agree, a slab's header too), and every other page is
   FREE.  Either way every page of every leaf below `top' must be marked
   META and lie outside every block and slab.  Returns 0, MMALLOC_ECORRUPT,
   or what VISIT returned if not 0.  */
int
mm_pages_walk (struct mm_desc *d, int strict,
	       int (*visit) (struct mm_desc *, uint64_t, uint64_t, uint32_t, void *),
	       void *arg)
{
  struct mm_fmt_heap h = mm_fmt_of (d);
  struct mm_fmt_iter it;
  struct mm_fmt_thing t;
  mm_fmt_iter_init (&it, &h, 0, strict ? MM_FMT_INTERIOR : MM_FMT_HEADERS);
  while (mm_fmt_iter_next (&it, &t))
    {
      if (t.flaw && (strict || !flaw_recoverable (&t)))
	return MMALLOC_ECORRUPT;
      int r = visit ? visit (d, t.pg, t.n, t.flaw ? PM_FREE : t.kind, arg) : 0;
      if (r)
	return r;
    }
  return 0;
}

/* Lay out a new region whose header pages are mapped and `top' is the header.  */
int
mm_pages_setup (struct mm_desc *d)
{
  d->stale_above = 0;		/* a new region: nothing is above */
  if (mm_pages_grow (d, 1) < 0)
    return -1;
  for (uint64_t i = 0; i < MM_HDR_PAGES; i++)
    mm_pm_set (d, i, PM_MAKE (PM_META, 0));
  return 0;
}

/* Forget every bin; recovery then adds each free run again.  */
void
mm_pages_reset (struct mm_desc *d)
{
  struct mm_header *h = d->hdr;
  for (unsigned b = 0; b < MM_NBINS; b++)
    h->bin_head[b] = 0;
  h->bin_mask[0] = h->bin_mask[1] = 0;
  h->nruns = h->run_pages = h->nlarge = h->large_pages = 0;
}

/* Make [PG, PG+N) one free run in its bin, with no merging.  Whether its
   pages are backed is not known: in a file, its first page is reserved
   (it is written now) and the rest marked released.  0, or -1 with errno.  */
int
mm_pages_add_run (struct mm_desc *d, uint64_t pg, uint64_t n)
{
  if (unrelease (d, pg, 1, pg + 1) < 0)
    return -1;
  mark_run (d, pg, n, PM_FREE, 0);
  bin_insert (d, pg, n, (d->mode & MM_MODE_FILE) ? MM_RUN_HOLES : 0, mm_os_now_ms ());
  return 0;
}
