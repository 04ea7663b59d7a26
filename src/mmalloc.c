/* mmalloc.c -- size classes, slabs and the allocation paths.

   Small requests (<= MM_SMALL_MAX) take a slot from a slab of their class: 16-byte
   steps to 128 (the alignment allows no finer ones), then four classes per
   doubling to 16 KiB and eight from 16 to 32 KiB, so from 64 bytes up
   neighbouring classes are at most 25% apart.  A slab's bitmap is the only authority on which slots are allocated; one
   word store claims or releases a slot.  Larger requests take whole pages.
   Slab work happens under the class lock, page work under the page lock.  */

#include "mmprivate.h"

#include <errno.h>
#include <string.h>

struct mm_class mm_classes[256];
uint8_t mm_class_of16[1024 / 16 + 1];
static pthread_once_t classes_once = PTHREAD_ONCE_INIT;

static uint32_t
class_size (unsigned c)
{
  if (c < 8)
    return (c + 1) * 16;
  if (c > MM_CLASS_16K)		/* eight per doubling from 16 KiB to 32 KiB */
    return 16384 + (c - MM_CLASS_16K) * 2048;
  unsigned b = 7 + (c - 8) / 4, i = (c - 8) % 4;
  return (uint32_t) ((4 + i + 1) << (b - 2));
}

static size_t
slab_hdr_bytes (uint32_t nobj)
{
  size_t h = sizeof (struct mm_slab) + 16 * (((size_t) nobj + 63) / 64);
  return (h + 63) & ~(size_t) 63;
}

/* Pages per slab: the fewest that waste at most 1/16 of the slab, else the
   least wasteful of up to MM_SLAB_MAX_PAGES.  */
static void
classes_build (void)
{
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    {
      uint32_t size = class_size (c), best_pages = 0, best_nobj = 0;
      size_t best_waste = (size_t) -1;
      for (uint32_t n = 1; n <= MM_SLAB_MAX_PAGES; n++)
	{
	  size_t bytes = (size_t) n * MM_PAGE;
	  uint32_t nobj = (uint32_t) (bytes / size);
	  while (nobj && (slab_hdr_bytes (nobj) + (size_t) nobj * size > bytes
			  || nobj >= MM_PAGE))	/* a hint packs the index (tcache.c) */
	    nobj--;
	  if (!nobj)
	    continue;
	  size_t waste = bytes - slab_hdr_bytes (nobj) - (size_t) nobj * size;
	  if (waste * best_pages < best_waste * n || !best_pages)
	    {
	      best_waste = waste;
	      best_pages = n;
	      best_nobj = nobj;
	    }
	  if (waste * 16 <= bytes)
	    break;
	}
      mm_classes[c].size = size;
      mm_classes[c].pages = (uint16_t) best_pages;
      mm_classes[c].nobj = best_nobj;
      mm_classes[c].objoff = (uint16_t) slab_hdr_bytes (best_nobj);
      mm_classes[c].recip = ((uint64_t) 1 << 40) / size + 1;
      mm_classes[c].words = (best_nobj + 63) / 64;
      mm_classes[c].span = best_nobj * size;
    }
  for (unsigned i = 0; i <= 1024 / 16; i++)
    {
      size_t size = i * 16;
      unsigned c = 0;
      while (mm_classes[c].size < size)
	c++;
      mm_class_of16[i] = (uint8_t) c;
    }
}

void
mm_classes_init (void)
{
  pthread_once (&classes_once, classes_build);
}

/* A fingerprint of the class table, kept in the header: a file made with other
   classes must not be used.  */
uint32_t
mm_classes_sum (void)
{
  uint32_t h = 2166136261u;
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    {
      uint32_t v[4] = { mm_classes[c].size, mm_classes[c].nobj,
	mm_classes[c].pages, mm_classes[c].objoff };
      for (int i = 0; i < 4; i++)
	h = (h ^ v[i]) * 16777619u;
    }
  return h;
}

/* --- partial lists: slabs with free slots, per class and kind ------------- */

/* Is OFF the first page of a whole slab of class CLS: header and page marks?  */
int
mm_slab_ok (struct mm_desc *d, uint64_t off, unsigned cls)
{
  if (!off || !mm_link_ok (d, off) || cls >= MM_NCLASSES)
    return 0;
  uint64_t pg = off >> MM_PAGE_SHIFT;
  const struct mm_class *c = &mm_classes[cls];
  const struct mm_slab *s = mm_at (d, off);
  if (pg + c->pages > mm_top (d) || s->magic != MM_SLAB_MAGIC || s->cls != cls
      || s->nobj != c->nobj || __atomic_load_n (&s->hint, __ATOMIC_RELAXED) >= c->words)
    return 0;
  for (uint32_t i = 0; i < c->pages; i++)
    if (mm_pm_get (d, pg + i) != PM_MAKE (PM_SLAB, (i << 8) | cls))
      return 0;
  const uint64_t *rb = mm_rbits (s);	/* slots freed elsewhere were allocated */
  for (uint32_t w = 0; w < c->words; w++)
    if (__atomic_load_n (&rb[w], __ATOMIC_RELAXED) & ~__atomic_load_n (&s->bits[w],
									__ATOMIC_RELAXED))
      return 0;
  return 1;
}

/* Is OFF, the head of CLS's partial list K (0 unchecked, 1 checked), a whole
   slab that belongs there: of that kind, owned by no thread, first on the
   list?  Both takers of a listed slab ask this before writing to it.  */
int
mm_partial_head_ok (struct mm_desc *d, uint64_t off, unsigned cls, int k)
{
  if (!mm_slab_ok (d, off, cls))
    return 0;
  const struct mm_slab *s = mm_at (d, off);
  return (int) (s->flags & MM_SLAB_CHECKED) == k && !s->owner && !s->prev;
}

void
mm_partial_push (struct mm_desc *d, struct mm_slab *s)
{
  struct mm_class_state *cs = &d->hdr->cls[s->cls];
  int k = s->flags & MM_SLAB_CHECKED;
  s->prev = 0;
  s->next = cs->partial[k];
  if (s->next && !mm_slab_ok (d, s->next, s->cls))
    {
      mm_damage (d, "partial slab list", s->next);
      s->next = 0;
    }
  if (s->next)
    ((struct mm_slab *) mm_at (d, s->next))->prev = mm_off (d, s);
  MM_KP ();
  cs->partial[k] = mm_off (d, s);
  MM_KP ();
  mm_slab_set_flags (s, (uint16_t) (s->flags | MM_SLAB_LISTED));
  MM_KP ();
}

void
mm_partial_pull (struct mm_desc *d, struct mm_slab *s)
{
  struct mm_class_state *cs = &d->hdr->cls[s->cls];
  int k = s->flags & MM_SLAB_CHECKED;
  if ((s->prev && !mm_slab_ok (d, s->prev, s->cls)) || (s->next && !mm_slab_ok (d, s->next, s->cls)))
    {
      mm_damage (d, "partial slab list", mm_off (d, s));
      return;
    }
  if (s->prev)
    ((struct mm_slab *) mm_at (d, s->prev))->next = s->next;
  else
    cs->partial[k] = s->next;
  if (s->next)
    ((struct mm_slab *) mm_at (d, s->next))->prev = s->prev;
  MM_KP ();
  s->next = s->prev = 0;
  mm_slab_set_flags (s, (uint16_t) (s->flags & ~MM_SLAB_LISTED));
  MM_KP ();
}

/* A new empty slab of class CLS, owned by OWNER, or put on its partial list
   when OWNER is 0.  NULL with errno set.  Class lock held.  */
struct mm_slab *
mm_slab_new (struct mm_desc *d, unsigned cls, int checked, uint32_t owner)
{
  const struct mm_class *c = &mm_classes[cls];
  mm_lock (&d->page_lock);
  uint64_t pg = mm_pages_alloc (d, c->pages, 1, 0, PM_SLAB, cls);
  mm_unlock (&d->page_lock);
  if (!pg)
    return NULL;
  struct mm_slab *s = (struct mm_slab *) (d->base + (pg << MM_PAGE_SHIFT));
  uint32_t words = (c->nobj + 63) / 64;
  memset (s, 0, sizeof *s + words * 16);
  if (c->nobj % 64)		/* slots past the end read as taken */
    s->bits[words - 1] = ~0ULL << (c->nobj % 64);
  s->cls = (uint16_t) cls;
  s->flags = checked ? MM_SLAB_CHECKED : 0;
  s->nobj = c->nobj;
  s->owner = owner;
  if (checked)
    mm_chk_slab_init (s);
  if (owner)
    __atomic_add_fetch (&d->nowned, 1, __ATOMIC_RELAXED);
  MM_KP ();
  __atomic_store_n (&s->magic, MM_SLAB_MAGIC, __ATOMIC_RELEASE);
  MM_KP ();
  d->hdr->cls[cls].nslabs++;
  d->hdr->cls[cls].nslots += c->nobj;
  MM_KP ();
  if (!owner)
    mm_partial_push (d, s);
  return s;
}

/* Fold the slots other threads freed into S's bits.  The caller is the one
   that may write bits: S's owner, or the class lock's holder if S has none.  */
void
mm_slab_merge (struct mm_slab *s)
{
  uint32_t words = (s->nobj + 63) / 64;
  uint64_t *rb = mm_rbits (s);
  for (uint32_t w = 0; w < words; w++)
    if (__atomic_load_n (&rb[w], __ATOMIC_RELAXED))
      {
	uint64_t r = __atomic_exchange_n (&rb[w], 0, __ATOMIC_SEQ_CST);
	uint32_t k = (uint32_t) __builtin_popcountll (r);
	__atomic_store_n (&s->bits[w], s->bits[w] & ~r, __ATOMIC_RELAXED);
	MM_KP ();
	mm_slab_count (s, -(int32_t) k);
	__atomic_sub_fetch (&s->rfree, k, __ATOMIC_RELAXED);
      }
}

/* Claim a free slot of S: its index, or UINT32_MAX if S is full.  The caller
   may write S's bits (see mm_slab_merge).  */
uint32_t
mm_slab_take (struct mm_slab *s)
{
  uint32_t words = (s->nobj + 63) / 64, w = s->hint < words ? s->hint : 0;
  for (int pass = 0; pass < 2; pass++)
    {
      for (uint32_t i = 0; i < words; i++, w = (w + 1 == words ? 0 : w + 1))
	{
	  uint64_t b = s->bits[w];
	  if (~b)
	    {
	      unsigned bit = (unsigned) __builtin_ctzll (~b);
	      __atomic_store_n (&s->bits[w], b | (1ULL << bit), __ATOMIC_RELAXED);
	      MM_KP ();
	      mm_slab_set_hint (s, w);
	      mm_slab_count (s, 1);
	      return w * 64 + bit;
	    }
	}
      /* rfree may lag rbits (it is counted after the OR): read rbits.  */
      mm_slab_merge (s);
    }
  return UINT32_MAX;
}

/* Allocated slots of S, counted from its bitmaps.  */
uint32_t
mm_slab_used (const struct mm_slab *s)
{
  uint32_t words = (s->nobj + 63) / 64, used = 0;
  const uint64_t *rb = mm_rbits (s);
  for (uint32_t i = 0; i < words; i++)
    used += (uint32_t) __builtin_popcountll (__atomic_load_n (&s->bits[i], __ATOMIC_SEQ_CST)
					     & ~__atomic_load_n (&rb[i], __ATOMIC_SEQ_CST));
  return used - (words * 64 - s->nobj);	/* the tail bits are always set */
}

int
mm_slab_full (const struct mm_slab *s)
{
  uint32_t words = (s->nobj + 63) / 64;
  const uint64_t *rb = mm_rbits (s);
  for (uint32_t i = 0; i < words; i++)
    if (~(__atomic_load_n (&s->bits[i], __ATOMIC_SEQ_CST)
	  & ~__atomic_load_n (&rb[i], __ATOMIC_SEQ_CST)))
      return 0;
  return 1;
}

/* S loses its owner (class lock held): back on the partial list if it has a
   free slot.  The owner is cleared before the bitmap is read, and a free
   clears its bit before reading the owner, so a slot freed meanwhile is seen
   by one of the two.  */
void
mm_slab_unowned (struct mm_desc *d, struct mm_slab *s)
{
  mm_slab_merge (s);
  if (s->owner)
    __atomic_sub_fetch (&d->nowned, 1, __ATOMIC_RELAXED);
  mm_slab_set_flags (s, (uint16_t) (s->flags & ~(MM_SLAB_FULL | MM_SLAB_AVAIL)));
  s->next = s->prev = 0;
  __atomic_store_n (&s->owner, 0, __ATOMIC_SEQ_CST);
  MM_KP ();
  if (!(s->flags & MM_SLAB_LISTED) && !mm_slab_full (s))
    mm_partial_push (d, s);
}

/* Take S from an owner that is gone (a thread of the parent, in a fork
   child; class lock held).  The owner may have stopped anywhere in its
   lock-free paths, between a bit and the count: the count is made anew from
   the bits (rbits are folded in by the merge, or will be by the next one).  */
void
mm_slab_adopt (struct mm_desc *d, struct mm_slab *s)
{
  mm_slab_merge (s);
  uint32_t words = (s->nobj + 63) / 64, used = 0;
  for (uint32_t w = 0; w < words; w++)
    used += (uint32_t) __builtin_popcountll (s->bits[w]);
  s->used = used - (words * 64 - s->nobj);	/* the tail bits are set */
  mm_slab_unowned (d, s);
}

/* A slot of the unowned slab S was freed (class lock held): list it, and
   give its pages back if it is empty and not its class's only partial slab.
   A checked slab that keeps its free slots poisoned keeps its pages, so that
   a write into any of them is found when it is handed out again.  */
void
mm_slab_after_free (struct mm_desc *d, struct mm_slab *s)
{
  if (__atomic_load_n (&s->owner, __ATOMIC_SEQ_CST))
    return;
  mm_slab_merge (s);
  /* The freed slot may be taken again already: between the free's atomic AND
     and this lock, an owner may have come, allocated it, and gone.  */
  if (!(s->flags & MM_SLAB_LISTED) && !mm_slab_full (s))
    mm_partial_push (d, s);
  if ((s->prev || s->next) && s->used == 0 && !(s->flags & MM_SLAB_POISON))
    {
      /* The count is derived: the pages go only if the bitmaps agree.  */
      if (mm_slab_used (s))
	{
	  mm_damage (d, "slab count", mm_off (d, s));
	  return;
	}
      /* Frees of other threads still reading the header (pinned): the last
         of them gives it back (mfree.c).  */
      if (__atomic_fetch_or (&s->ref, MM_SLAB_RETURN, __ATOMIC_SEQ_CST) & ~MM_SLAB_RETURN)
	return;
      struct mm_class_state *cs = &d->hdr->cls[s->cls];
      mm_partial_pull (d, s);
      cs->nslabs--;
      cs->nslots -= s->nobj;
      MM_KP ();
      s->magic = 0;
      MM_KP ();
      mm_lock (&d->page_lock);
      mm_pages_free (d, mm_off (d, s) >> MM_PAGE_SHIFT);
      mm_unlock (&d->page_lock);
    }
}

/* The locked path: a slot from the first unowned slab with room; with ARM,
   of a checked slab, and set up as ARM says (mm_chk_claim).  */
void *
mm_alloc_small (struct mm_desc *d, unsigned cls, struct mm_arm *arm)
{
  int checked = arm != NULL;
  struct mm_class_state *cs = &d->hdr->cls[cls];
  const struct mm_class *c = &mm_classes[cls];
  if (checked)			/* its slab is or becomes MM_SLAB_POISON */
    mm_format_need (d, MM_FORMAT_V2);
  mm_lock (&d->class_lock[cls]);
  struct mm_slab *s;
  uint64_t off = cs->partial[checked];
  if (off)
    {
      s = (struct mm_slab *) mm_at (d, off);
      if (!mm_partial_head_ok (d, off, cls, checked) || mm_damaged (d))
	{
	  mm_damage (d, "partial slab list", off);
	  s = NULL;
	}
    }
  else
    s = mm_slab_new (d, cls, checked, 0);
  if (s && arm && !(s->flags & MM_SLAB_POISON))
    mm_chk_slab_init (s);	/* of an older file: see mmcheck.c */
  uint32_t idx = s ? mm_slab_take (s) : UINT32_MAX;
  if (s && idx == UINT32_MAX)
    {
      mm_damage (d, "full slab on a partial list", off);
      s = NULL;
    }
  if (s && mm_slab_full (s))
    mm_partial_pull (d, s);
  char *p = s ? (char *) s + c->objoff + (size_t) idx * c->size : NULL;
  if (p && arm)
    mm_chk_claim (s, p, c->size, arm);
  mm_unlock (&d->class_lock[cls]);
  return p;
}

/* NPAGES pages aligned to ALIGN pages; with ARM, a checked block set up as
   ARM says, whose user pointer is aligned instead when its lead is a page.
   It is set up before the page map shows it (see mmcheck.c).  With ZERO
   (and no ARM), *ZERO tells whether the block is known to read zero.  */
void *
mm_alloc_large (struct mm_desc *d, uint64_t npages, uint64_t align, struct mm_arm *arm,
		int *zero)
{
  uint64_t skew = arm && arm->lead == MM_PAGE;
  if (arm && arm->lead > sizeof (struct mm_chk))	/* a lead record */
    mm_format_need (d, MM_FORMAT_V2);
  mm_lock (&d->page_lock);
  uint64_t pg = mm_pages_take (d, npages, align, skew, arm ? NULL : zero);
  char *p = pg ? d->base + (pg << MM_PAGE_SHIFT) : NULL;
  if (p && arm)
    mm_chk_claim (NULL, p, (size_t) npages << MM_PAGE_SHIFT, arm);
  if (p)
    mm_pages_mark (d, pg, npages, PM_LARGE, arm ? PM_CHECKED : 0);
  mm_unlock (&d->page_lock);
  return p;
}

/* Pages for SIZE bytes, or 0 when SIZE is beyond any heap.  */
static uint64_t
pages_for (size_t size)
{
  if (size > (size_t) PM_NMASK << MM_PAGE_SHIFT)
    return 0;
  return ((uint64_t) size + MM_PAGE - 1) >> MM_PAGE_SHIFT;
}

static void
note_used (struct mm_desc *d)
{
  if (MM_UNLIKELY (!(__atomic_load_n (&d->hdr->flags, __ATOMIC_RELAXED) & MM_F_USED)))
    __atomic_or_fetch (&d->hdr->flags, MM_F_USED, __ATOMIC_RELAXED);
}

/* Allocate SIZE bytes; NULL with errno set.  With ZERO, *ZERO tells
   whether the block is known to read zero (then it was not written).  */
void *
mm_alloc (struct mm_desc *d, size_t size, int *zero)
{
  if (zero)
    *zero = 0;
  if (MM_UNLIKELY (!mm_writable (d) || mm_damaged (d)))
    {
      errno = mm_damaged (d) ? MMALLOC_ECORRUPT : EROFS;
      return NULL;
    }
  note_used (d);
  int checked = (__atomic_load_n (&d->hdr->flags, __ATOMIC_RELAXED) & MM_F_CHECKED) != 0;
  size_t need = size;
  if (checked)
    {
      if (size > SIZE_MAX - sizeof (struct mm_chk) - 1)
	goto nomem;
      need = size + sizeof (struct mm_chk) + 1;
    }
  void *p;
  struct mm_arm arm = { size, sizeof (struct mm_chk), NULL, NULL, NULL };
  if (need <= MM_SMALL_MAX)
    p = mm_alloc_small (d, mm_size_class (need), checked ? &arm : NULL);
  else
    {
      uint64_t n = pages_for (need);
      if (!n)
	goto nomem;
      p = mm_alloc_large (d, n, 1, checked ? &arm : NULL, zero);
    }
  return checked ? mm_chk_armed (d, p, &arm) : p;
nomem:
  errno = ENOMEM;
  return NULL;
}

/* mmalloc when the fast path cannot serve: the first call of a thread on a
   heap, a class whose owned slab is full, large or checked blocks, tracing.  */
static __attribute__ ((noinline)) void *
mmalloc_slow (void *md, size_t size)
{
  struct mm_desc *d = mm_desc_of (md);
  if (!d)
    return NULL;
  if (size <= MM_SMALL_MAX)
    {
      struct mm_tce *e = mm_tc_entry (md, d);
      if (e)
	{
	  note_used (d);
	  void *p = mm_tc_refill (e, mm_size_class (size));
	  if (p || e->gen == __atomic_load_n (&d->gen, __ATOMIC_ACQUIRE))
	    return mm_alloc_done (d, p, size);
	  /* E went stale meanwhile (checking turned on, say): the locked path.  */
	}
    }
  return mm_alloc_done (d, mm_alloc (d, size, NULL), size);
}

/* mmalloc's fast path found no slot: refill through the entry E, which is
   good (no lookup), else the slow path.  */
static __attribute__ ((noinline)) void *
mmalloc_refill (void *md, size_t size, struct mm_tce *e, unsigned cls)
{
  void *p = mm_tc_refill (e, cls);
  return MM_LIKELY (p != NULL) ? p : mmalloc_slow (md, size);
}

/* The fast path: a slot this thread freed lately (a hint), else one of the
   slab it owns for the class, taken with one store to the slab's bitmap.  */
void *
mmalloc (void *md, size_t size)
{
  struct mm_tc *tc = mm_tc_self;
  if (MM_LIKELY (tc != NULL) && MM_LIKELY (size <= MM_SMALL_MAX))
    {
      struct mm_tce *e = tc->cur;
      if (MM_LIKELY (e->md == md && e->gen == mm_gen (e->d) && !mm_tracing ()))
	{
	  unsigned cls = mm_size_class (size), n = e->nhint[cls];
	  if (MM_LIKELY (n != 0))
	    {
	      struct mm_hint *h = &e->hint[cls][n - 1];
	      struct mm_slab *s = mm_hint_slab (h->v);
	      unsigned idx = mm_hint_idx (h->v);
	      uint64_t bit = 1ULL << (idx % 64), b = s->bits[idx / 64];
	      e->nhint[cls] = (uint8_t) (n - 1);
	      if (MM_LIKELY (!(b & bit)))	/* else the slab path took it: stale */
		{
		  __atomic_store_n (&s->bits[idx / 64], b | bit, __ATOMIC_RELAXED);
		  MM_KP ();
		  mm_slab_count (s, 1);
		  return h->p;
		}
	    }
	  struct mm_slab *s = e->slab[cls];
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
		      return (char *) s + c->objoff + (size_t) (w * 64 + bit) * c->size;
		    }
		}
	    }
	  return mmalloc_refill (md, size, e, cls);	/* tail calls: no frame here */
	}
    }
  return mmalloc_slow (md, size);
}

/* The end of every allocating entry point: remember a failure, trace.  */
void *
mm_alloc_done (struct mm_desc *d, void *p, size_t size)
{
  if (MM_UNLIKELY (!p))
    {
      mm_fail (d, errno);
      return NULL;
    }
  if (MM_UNLIKELY (mm_tracing ()))
    mm_trace ('+', p, size);
  return p;
}
