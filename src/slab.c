/* slab.c -- slabs: making, taking, giving back, and the partial lists.

   A slab's bitmap is the only authority on which slots are allocated; one
   word store claims or releases a slot.  An unowned slab with free slots is
   on its class's partial list; slab work happens under the class lock, the
   pages of a slab come from and go back to the page allocator under the
   page lock (class lock first).  */

#include "mmprivate.h"

#include <errno.h>
#include <string.h>

/* --- partial lists: slabs with free slots, per class and kind ------------- */

/* Is OFF the first page of a whole slab of class CLS: page marks, header and
   bitmaps (mm_fmt_slab_bits), before a link to it is written through?  */
int
mm_slab_ok (struct mm_desc *d, uint64_t off, unsigned cls)
{
  if (!off || !mm_link_ok (d, off) || cls >= MM_NCLASSES)
    return 0;
  uint64_t pg = off >> MM_PAGE_SHIFT;
  const struct mm_class *c = &mm_classes[cls];
  const struct mm_slab *s = mm_at (d, off);
  if (pg + c->pages > mm_top (d) || !mm_fmt_slab_ident (s, cls, c))
    return 0;
  for (uint32_t i = 0; i < c->pages; i++)
    if (mm_pm_get (d, pg + i) != mm_fmt_slab_mark (cls, i))
      return 0;
  return mm_fmt_slab_bits (s, c, 1) == 0;
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
  MM_ASSERT (mm_slab_owner (s) == 0);	/* LISTED implies no owner */
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
  /* A thread makes slabs it owns, never another's (owner token).  */
  MM_ASSERT (cls < MM_NCLASSES && (!owner || (mm_tc_self && owner == mm_tc_self->id)));
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
  else
    mm_an_unused ((char *) s + c->objoff, (size_t) c->nobj * c->size);
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
      /* rfree may lead rbits (it is counted before the OR): read rbits.  */
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
