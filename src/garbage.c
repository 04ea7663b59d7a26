/* garbage.c -- mmalloc_garbage: the blocks of a heap that no root reaches
   (the garbage detector of Checker, for live heaps and heap files).

   Marking is conservative: every aligned word of a root or of a reached
   block whose value points into an allocated block (at its start or inside)
   reaches that block.  The mark bits live outside every heap, in anonymous
   memory of this process (one bit per 16 bytes of a heap, at each reached
   block's start, and a page table that finds the head of a large block from
   any of its pages): 0.9% of the heap, so a heap file attached read-only is
   never written.  Blocks to scan wait on an explicit stack of fixed size; when
   it is full, a reached block is marked without being pushed, and once the
   stack is empty every marked block is scanned again until no push failed
   (memory stays bounded; time stays linear in live bytes unless the stack
   overflows).

   Marking holds every lock of the heaps it marks, so no large block, slab
   or page-map entry changes; only the owners of slabs (tcache.c) still
   allocate and free slots without a lock.  The blocks found unreachable are
   kept as a bitmap; they are reported (and reclaimed) afterwards, a batch at
   a time with no lock held, each one checked again to be allocated.

   Evolution (MMALLOC_GARBAGE_NEW): the last call's garbage of each attached
   heap is kept in process memory (the bitmap itself), keyed by the heap's
   attachment (d, d->gen); it is not written to a heap file, so another
   process, or another attachment, starts with nothing reported.  */

#include "mmprivate.h"

#include <errno.h>
#include <setjmp.h>
#include <string.h>

/* Entries of the mark stack (16 bytes each: 1 MiB).  */
#ifndef MM_GC_STACK
#define MM_GC_STACK 65536
#endif
/* Words pointing into a heap whose memory is fetched before they are
   looked at.  */
#define PREFETCH 16
/* Blocks reported per lock hold.  */
#define REPORT_BATCH 256
/* Heaps whose last garbage is remembered for MMALLOC_GARBAGE_NEW.  */
#define EVOL_MAX 64

#if defined(__clang__) || __GNUC__ >= 8
#define NO_SANITIZE __attribute__ ((no_sanitize ("address", "thread")))
#else
#define NO_SANITIZE
#endif

struct gheap
{
  struct mm_desc *d;
  uintptr_t lo, hi;		/* base, and the end of its pages in use */
  uint64_t *mark;		/* bit per 16 bytes: a reached block starts here */
  uint32_t *head;		/* per page: 1 + the first page of the large
				   block that holds it, or 0 */
  size_t mark_len, head_len;
};

struct gentry
{
  uintptr_t p, n;
};

struct gc
{
  struct gheap *h;		/* sorted by address */
  unsigned nh;
  size_t h_len;
  uintptr_t lo, hi;		/* the heaps' whole range */
  struct gentry *stack;
  size_t sp;
  int overflow;
  uintptr_t q[PREFETCH];	/* words to look at, fetched meanwhile */
  unsigned qhead, qn;
};

static pthread_mutex_t gc_lock = PTHREAD_MUTEX_INITIALIZER;

/* The last garbage found in each heap (gc_lock).  */
static struct evol
{
  struct mm_desc *d;
  uint64_t gen;
  uint64_t *bits;
  size_t len;
} evol[EVOL_MAX];

static void *
side_alloc (size_t len)
{
  void *p = NULL;
  len = (len + MM_PAGE - 1) & ~(MM_PAGE - 1);
  return len && !mm_os_alloc (len, &p) ? p : NULL;
}

static void
side_free (void *p, size_t len)
{
  if (p)
    mm_os_unmap (p, (len + MM_PAGE - 1) & ~(MM_PAGE - 1));
}

static struct evol *
evol_of (struct mm_desc *d)
{
  for (unsigned i = 0; i < EVOL_MAX; i++)
    if (evol[i].d == d && evol[i].gen == mm_gen (d) && evol[i].bits)
      return &evol[i];
  return NULL;
}

static int
bit_get (const uint64_t *b, uint64_t i)
{
  return (b[i / 64] >> (i % 64)) & 1;
}

/* --- Blocks ------------------------------------------------------------ */

/* The allocated block of slab page PG (marked E) that holds offset OFF:
   its start and room, or 0.  Quarantined blocks are not allocated.  */
static int
slot_at (struct mm_desc *d, uint64_t off, uint32_t e, uintptr_t *start, size_t *room)
{
  unsigned cls = PM_SLAB_CLS (e);
  const struct mm_class *c = &mm_classes[cls];
  uint64_t soff, into;
  if (!mm_fmt_slab_place (e, off, mm_top (d), c, &soff))
    return 0;
  uint64_t idx = mm_fmt_slot (c, off - soff, &into);
  if (idx >= c->nobj)
    return 0;
  struct mm_slab *s = mm_at (d, soff);
  if (!mm_fmt_slab_ident (s, cls, c))
    return 0;
  uint64_t live = __atomic_load_n (&s->bits[idx / 64], __ATOMIC_ACQUIRE)
    & ~__atomic_load_n (&mm_rbits (s)[idx / 64], __ATOMIC_ACQUIRE);
  if (!((live >> (idx % 64)) & 1))
    return 0;
  char *slot = (char *) s + mm_fmt_slot_off (c, idx), *user;
  size_t size;
  if ((mm_slab_flags (s) & MM_SLAB_CHECKED) && !mm_chk_user (slot, c->size, &user, &size))
    return 0;
  *start = (uintptr_t) slot;
  *room = c->size;
  return 1;
}

/* The large block whose first page is HP (marked E), or 0 if quarantined.  */
static int
large_at (struct mm_desc *d, uint64_t hp, uint32_t e, uintptr_t *start, size_t *room)
{
  char *b = mm_at (d, hp << MM_PAGE_SHIFT), *user;
  size_t r = (size_t) (e & PM_NMASK) << MM_PAGE_SHIFT, size;
  if ((e & PM_CHECKED) && !mm_chk_user (b, r, &user, &size))
    return 0;
  *start = (uintptr_t) b;
  *room = r;
  return 1;
}

/* The allocated block of H that holds address A (below H->hi), by the
   tables made when marking began.  */
static int
block_holding (const struct gheap *h, uintptr_t a, uintptr_t *start, size_t *room)
{
  struct mm_desc *d = h->d;
  uint64_t off = a - h->lo, pg = off >> MM_PAGE_SHIFT;
  uint32_t e = mm_pm_get (d, pg);
  if (PM_KIND (e) == PM_SLAB)
    return slot_at (d, off, e, start, room);
  uint32_t hp = h->head[pg];
  return hp && large_at (d, hp - 1, mm_pm_get (d, hp - 1), start, room);
}

/* Is START the start of an allocated block of D now (its lock held)?  Its
   user's pointer and size.  */
static int
block_now (struct mm_desc *d, uintptr_t start, char **user, size_t *size)
{
  uint64_t off = start - (uintptr_t) d->base, top = mm_top (d), pg = off >> MM_PAGE_SHIFT;
  if (pg >= top)
    return 0;
  uint32_t e = mm_pm_get (d, pg);
  uintptr_t s;
  size_t room;
  if (PM_KIND (e) == PM_SLAB)
    {
      if (!slot_at (d, off, e, &s, &room) || s != start)
	return 0;
    }
  else
    {
      if (PM_KIND (e) != PM_LARGE || off % MM_PAGE || !mm_run_len (d, pg, e)
	  || !large_at (d, pg, e, &s, &room))
	return 0;
    }
  *user = (char *) start;
  *size = room;
  if (PM_KIND (e) == PM_SLAB
      ? (mm_slab_flags ((struct mm_slab *) mm_at (d, (pg - PM_SLAB_OFF (e)) << MM_PAGE_SHIFT))
	 & MM_SLAB_CHECKED) : (e & PM_CHECKED))
    mm_chk_user ((char *) start, room, user, size);
  return 1;
}

/* --- Marking ------------------------------------------------------------ */

static struct gheap *
heap_of (struct gc *g, uintptr_t a)
{
  unsigned lo = 0, hi = g->nh;
  while (lo < hi)
    {
      unsigned mid = (lo + hi) / 2;
      if (a < g->h[mid].lo)
	hi = mid;
      else if (a >= g->h[mid].hi)
	lo = mid + 1;
      else
	return &g->h[mid];
    }
  return NULL;
}

/* A word that points into a heap: its block, if it is allocated, is
   marked and pushed (or, the stack full, left to the rescan).  */
static void
mark_one (struct gc *g, uintptr_t a)
{
  struct gheap *h = heap_of (g, a);
  uintptr_t start;
  size_t room;
  if (!h || !block_holding (h, a, &start, &room))
    return;
  uint64_t i = (start - h->lo) >> 4;
  if (bit_get (h->mark, i))
    return;
  h->mark[i / 64] |= 1ULL << (i % 64);
  if (MM_UNLIKELY (mm_annotating ()))
    room = mm_an_size ((void *) start, room);	/* memcheck: no reads past it */
  if (g->sp == MM_GC_STACK)
    g->overflow = 1;		/* scanned by the rescan */
  else
    g->stack[g->sp++] = (struct gentry) { start, room };
}

/* A word that points into a heap: its line is fetched now, and the word
   looked at PREFETCH words later, so that the memory of several lists or
   branches is on its way at once rather than one block after another.  */
static void
reach (struct gc *g, uintptr_t a)
{
  __builtin_prefetch ((const void *) a);
  if (g->qn < PREFETCH)
    {
      g->q[(g->qhead + g->qn++) % PREFETCH] = a;
      return;
    }
  uintptr_t old = g->q[g->qhead];
  g->q[g->qhead] = a;
  g->qhead = (g->qhead + 1) % PREFETCH;
  mark_one (g, old);
}

/* Every aligned word of [LO, HI) that points into a heap.  Roots are read
   as memory, whatever a sanitizer says of them (redzones of globals and
   stacks).  */
NO_SANITIZE static void
scan (struct gc *g, uintptr_t lo, uintptr_t hi)
{
  uintptr_t glo = g->lo, span = g->hi - g->lo;
  for (uintptr_t p = (lo + 7) & ~(uintptr_t) 7; p + 8 <= hi; p += 8)
    {
      uintptr_t v = *(const volatile uintptr_t *) p;
      if (v - glo < span)
	reach (g, v);
    }
}

static void
drain (struct gc *g)
{
  for (;;)
    {
      while (g->sp)
	{
	  struct gentry e = g->stack[--g->sp];
	  scan (g, e.p, e.p + e.n);
	}
      if (!g->qn)
	return;
      uintptr_t a = g->q[g->qhead];
      g->qhead = (g->qhead + 1) % PREFETCH;
      g->qn--;
      mark_one (g, a);
    }
}

/* The stack overflowed: scan every marked block again, until none is
   reached that could not be pushed.  */
static void
rescan (struct gc *g)
{
  while (g->overflow)
    {
      g->overflow = 0;
      for (unsigned k = 0; k < g->nh; k++)
	{
	  struct gheap *h = &g->h[k];
	  for (size_t w = 0; w < h->mark_len / 8; w++)
	    for (uint64_t m = h->mark[w]; m; m &= m - 1)
	      {
		uintptr_t a = h->lo + ((w * 64 + (unsigned) __builtin_ctzll (m)) << 4), start;
		size_t room;
		if (block_holding (h, a, &start, &room))
		  {
		    scan (g, start, start + room);
		    drain (g);
		  }
	      }
	}
    }
}

static void
root_range (uintptr_t lo, uintptr_t hi, void *arg)
{
  scan (arg, lo, hi);
  drain (arg);
}

/* --- Heaps ----------------------------------------------------------------- */

/* Tables for D (every lock held): 0 or an error code.  */
static int
gheap_init (struct gheap *h, struct mm_desc *d)
{
  uint64_t top = mm_top (d);
  memset (h, 0, sizeof *h);
  h->d = d;
  h->lo = (uintptr_t) d->base;
  h->hi = h->lo + (top << MM_PAGE_SHIFT);
  if (top > d->held >> MM_PAGE_SHIFT || mm_dir_validate (d, 0))
    {
      mm_damage (d, "garbage: page-map directory", MM_PAGE);
      return MMALLOC_ECORRUPT;
    }
  h->mark_len = (size_t) top * (MM_PAGE / 16 / 8);
  h->head_len = (size_t) top * sizeof *h->head;
  h->mark = side_alloc (h->mark_len);
  h->head = side_alloc (h->head_len);
  if (!h->mark || !h->head)
    return ENOMEM;
  struct mm_fmt_heap fh = mm_fmt_of (d);
  struct mm_fmt_iter it;
  struct mm_fmt_thing t;
  mm_fmt_iter_init (&it, &fh, MM_HDR_PAGES, MM_FMT_HEADERS);
  while (mm_fmt_iter_next (&it, &t))
    {
      if (t.flaw)
	{
	  mm_damage (d, "garbage: page map", t.pg << MM_PAGE_SHIFT);
	  return MMALLOC_ECORRUPT;
	}
      if (t.kind == PM_LARGE)
	for (uint64_t i = 0; i < t.n; i++)
	  h->head[t.pg + i] = (uint32_t) t.pg + 1;
    }
  return 0;
}

static void
gheap_free (struct gheap *h, int keep_mark)
{
  if (!keep_mark)
    side_free (h->mark, h->mark_len);
  side_free (h->head, h->head_len);
  h->mark = NULL;
  h->head = NULL;
}

/* The heaps to mark: D alone, or (PROCESS) every attached heap but those of
   a fork's parent, sorted by address; every lock of each taken.  The pool
   lock is held meanwhile, so none is attached or detached.  */
static int
heaps_lock (struct gc *g, struct mm_desc *d, int process)
{
  unsigned n = 1;
  if (process)
    {
      mm_lock (&mm_pool_lock);
      n = 0;
      for (struct mm_desc *x = mm_live; x; x = x->live_next)
	n++;
    }
  g->h_len = (n ? n : 1) * sizeof *g->h;
  g->h = side_alloc (g->h_len);
  if (!g->h)
    return ENOMEM;
  g->nh = 0;
  for (struct mm_desc *x = process ? mm_live : d; x; x = process ? x->live_next : NULL)
    {
      if (x->magic != MM_DESC_MAGIC || (x->mode & MM_MODE_PARENT))
	continue;
      mm_lock_all (x);
      unsigned i = g->nh++;
      while (i && g->h[i - 1].lo > (uintptr_t) x->base)
	{
	  g->h[i] = g->h[i - 1];
	  i--;
	}
      int e = gheap_init (&g->h[i], x);
      if (e)
	return e;
    }
  g->lo = g->nh ? g->h[0].lo : 0;
  g->hi = g->nh ? g->h[g->nh - 1].hi : 0;
  return 0;
}

static void
heaps_unlock (struct gc *g, int process, const uint64_t *keep)
{
  for (unsigned k = 0; g->h && k < g->nh; k++)
    {
      gheap_free (&g->h[k], g->h[k].mark == keep);
      mm_unlock_all (g->h[k].d);
    }
  side_free (g->h, g->h_len);
  if (process)
    mm_unlock (&mm_pool_lock);
}

/* The ranges that are no roots: every heap's reservation, and our tables.  */
static struct mm_range *
exclusions (struct gc *g, unsigned *nex, size_t *len)
{
  unsigned n = 0, cap = 3;
  for (struct mm_desc *x = mm_live; x; x = x->live_next)
    cap++;
  cap += 2 * g->nh + EVOL_MAX;
  *len = cap * sizeof (struct mm_range);
  struct mm_range *ex = side_alloc (*len);
  if (!ex)
    return NULL;
#define EXCLUDE(p, l) \
  do if ((p) && n < cap) ex[n++] = (struct mm_range) { (uintptr_t) (p), (uintptr_t) (p) + (l) }; while (0)
  for (struct mm_desc *x = mm_live; x; x = x->live_next)
    EXCLUDE (x->base, x->held);
  for (unsigned k = 0; k < g->nh; k++)
    {
      EXCLUDE (g->h[k].mark, g->h[k].mark_len);
      EXCLUDE (g->h[k].head, g->h[k].head_len);
    }
  for (unsigned i = 0; i < EVOL_MAX; i++)
    EXCLUDE (evol[i].bits, evol[i].len);
  EXCLUDE (g->stack, MM_GC_STACK * sizeof *g->stack);
  EXCLUDE (g->h, g->h_len);
  EXCLUDE (ex, *len);
#undef EXCLUDE
  for (unsigned i = 1; i < n; i++)
    for (unsigned j = i; j && ex[j - 1].lo > ex[j].lo; j--)
      {
	struct mm_range t = ex[j];
	ex[j] = ex[j - 1];
	ex[j - 1] = t;
      }
  *nex = n;
  return ex;
}

/* Mark from the roots: the keys of every heap marked, and with PROCESS
   the process's memory and registers, every other thread stopped.  */
static int
mark (struct gc *g, int process, uintptr_t self_sp, int reclaim)
{
  unsigned nex = 0, late = 0;
  size_t len = 0;
  struct mm_range *ex = process ? exclusions (g, &nex, &len) : NULL;
  if (process && !ex)
    return ENOMEM;
  int e = process ? mm_world_stop (&late) : 0;
  if (!e && late && reclaim)
    e = EAGAIN;			/* a thread's registers were not seen */
  if (!e)
    {
      for (unsigned k = 0; k < g->nh; k++)
	for (unsigned i = 0; i < MMALLOC_KEYS; i++)
	  reach (g, (uintptr_t) g->h[k].d->hdr->keys[i]);
      drain (g);
      if (process)
	e = mm_roots_each (ex, nex, self_sp, root_range, g);
      rescan (g);
    }
  side_free (ex, len);
  return e;
}

/* --- Garbage --------------------------------------------------------------- */

struct flip
{
  struct gheap *h;
  size_t n;
};

/* An allocated block: its mark bit becomes its garbage bit.  */
static int
flip_one (struct mm_desc *d, const struct mm_wblock *b, void *arg)
{
  (void) d;
  struct flip *f = arg;
  uint64_t i = ((uintptr_t) b->start - f->h->lo) >> 4;
  f->h->mark[i / 64] ^= 1ULL << (i % 64);
  f->n += bit_get (f->h->mark, i);
  return 0;
}

/* Report (and free) the blocks of G's bitmap not in OLD, a batch at a time
   with D's locks held while each is checked again; the number reported.  */
static size_t
report_all (void *md, struct mm_desc *d, const uint64_t *bits, size_t len,
	    const struct evol *old, mmalloc_visit_fn report, void *arg, int reclaim)
{
  size_t count = 0, w = 0;
  uint64_t pending = len ? bits[0] : 0;
  char *user[REPORT_BATCH];
  size_t size[REPORT_BATCH];
  while (w < len / 8)
    {
      unsigned n = 0;
      mm_lock_all (d);
      while (n < REPORT_BATCH && w < len / 8)
	{
	  if (!pending)
	    {
	      if (++w < len / 8)
		pending = bits[w];
	      continue;
	    }
	  uint64_t i = w * 64 + (unsigned) __builtin_ctzll (pending);
	  pending &= pending - 1;
	  if (old && i < old->len * 8 && bit_get (old->bits, i))
	    continue;		/* reported by an earlier call */
	  if (block_now (d, (uintptr_t) d->base + (i << 4), &user[n], &size[n]))
	    {
	      if (MM_UNLIKELY (mm_annotating ()))	/* mmalloc_usable_size's */
		size[n] = mm_an_size (user[n], size[n]);
	      n++;
	    }
	}
      mm_unlock_all (d);
      for (unsigned k = 0; k < n; k++)
	{
	  count++;
	  if (report)
	    report (user[k], size[k], arg);
	  if (reclaim)
	    mfree (md, user[k]);
	}
    }
  return count;
}

/* Remember BITS as D's last garbage (taking it), in place of what was.  */
static void
evol_keep (struct mm_desc *d, uint64_t *bits, size_t len)
{
  struct evol *e = evol_of (d);
  for (unsigned i = 0; !e && i < EVOL_MAX; i++)
    if (!evol[i].bits || evol[i].gen != mm_gen (evol[i].d))
      e = &evol[i];		/* free, or its heap detached since */
  if (!e)
    e = &evol[(uintptr_t) d / 64 % EVOL_MAX];
  side_free (e->bits, e->len);
  *e = (struct evol) { d, mm_gen (d), bits, len };
}

size_t
mmalloc_garbage (void *md, int flags, mmalloc_visit_fn report, void *arg)
{
  struct mm_desc *d = mm_desc_of (md);
  if (!d)
    return (size_t) -1;
  if (mm_fork_refuse (d, "mmalloc_garbage: a heap file of the parent process"))
    return (size_t) mm_fail (d, MMALLOC_ELOCKED);
  if (flags & ~(MMALLOC_GARBAGE_NEW | MMALLOC_GARBAGE_PROCESS | MMALLOC_GARBAGE_RECLAIM))
    return (size_t) mm_fail (d, EINVAL);
  int process = (flags & MMALLOC_GARBAGE_PROCESS) != 0;
  int reclaim = (flags & MMALLOC_GARBAGE_RECLAIM) != 0;
  if (reclaim && (!mm_writable (d) || mm_damaged (d)))
    return (size_t) mm_fail (d, mm_damaged (d) ? MMALLOC_ECORRUPT : EROFS);
  /* The caller's callee-saved registers, and its stack from here up.  */
  jmp_buf regs;
  setjmp (regs);
  uintptr_t self_sp = (uintptr_t) &regs;

  struct gc g;
  memset (&g, 0, sizeof g);
  mm_lock (&gc_lock);
  g.stack = side_alloc (MM_GC_STACK * sizeof *g.stack);
  int e = g.stack ? heaps_lock (&g, d, process) : ENOMEM;
  struct gheap *h = e ? NULL : heap_of (&g, (uintptr_t) d->base);
  struct flip f = { h, 0 };
  if (!e && !h)
    e = MMALLOC_EBADDESC;	/* detached meanwhile */
  if (!e)
    {
      mm_an_quiet (1);		/* reads every word of reached blocks */
      e = mark (&g, process, self_sp, reclaim);
      mm_an_quiet (0);
      if (!e)
	{
	  struct mm_wpos pos = { MM_HDR_PAGES, 0, MM_NCLASSES, 0 };
	  e = mm_walk_from (d, &pos, 0, flip_one, &f);
	}
      if (process)
	mm_world_start ();
    }
  /* D's bitmap, now its garbage, outlives the tables.  */
  uint64_t *bits = e ? NULL : h->mark;
  size_t len = e ? 0 : h->mark_len;
  heaps_unlock (&g, process, bits);
  side_free (g.stack, MM_GC_STACK * sizeof *g.stack);
  size_t count = 0;
  if (!e)
    {
      const struct evol *old = (flags & MMALLOC_GARBAGE_NEW) ? evol_of (d) : NULL;
      count = report_all (md, d, bits, len, old, report, arg, reclaim);
      struct evol *ev = evol_of (d);
      if (f.n)
	evol_keep (d, bits, len);
      else
	{
	  side_free (bits, len);
	  if (ev)
	    {
	      side_free (ev->bits, ev->len);
	      ev->bits = NULL;
	    }
	}
    }
  mm_unlock (&gc_lock);
  if (e)
    return (size_t) mm_fail (d, e);
  return count;
}
