/* mrealloc.c -- resizing blocks.

   A block stays where it is when the new size fits its slot without wasting
   more than half of it, or when its pages can shrink or grow into free pages
   that follow it (the heap grows under a block that ends at its top, or
   that free pages up to the top follow).  Otherwise a large block of an
   anonymous heap moves its pages to new ones (mremap, no copy); any other
   block's contents are copied to a new block and the old one is freed.  On
   failure the old block is untouched.  */

#include "mmprivate.h"

#include <errno.h>
#include <string.h>

/* Moves of pages this process made, in every heap (MM_MOVE_MAX).  */
static uint64_t moves_made;

/* Move the large block B at PTR to N pages by moving its pages (an
   anonymous heap, the page lock held): the new address of PTR, or NULL
   when it must be copied.  */
static void *
move_pages (struct mm_desc *d, void *ptr, const struct mm_block *b, uint64_t n)
{
  uint64_t old = b->room >> MM_PAGE_SHIFT;
  if ((d->mode & MM_MODE_FILE) || b->checked || old < MM_MOVE_MIN
      || __atomic_add_fetch (&moves_made, 1, __ATOMIC_RELAXED) > MM_MOVE_MAX)
    return NULL;
  uint64_t pg = mm_pages_move (d, b->pg, n);
  if (!pg)
    {
      __atomic_sub_fetch (&moves_made, 1, __ATOMIC_RELAXED);
      return NULL;
    }
  __atomic_add_fetch (&d->moves[2], 1, __ATOMIC_RELAXED);
  return d->base + (pg << MM_PAGE_SHIFT) + ((char *) ptr - (d->base + (b->pg << MM_PAGE_SHIFT)));
}

/* *OLD: the size of the annotated block at PTR (what was handed out of it).
   0, or -1 after reporting a bad pointer.  */
static int
old_size (struct mm_desc *d, void *ptr, size_t *old)
{
  struct mm_block b;
  unsigned lockno = mm_block_acquire (d, ptr, &b, MM_CHK_RESIZING);
  if (lockno == MM_BLOCK_BAD)
    return -1;
  *old = mm_usable (d, ptr, &b);
  if (!b.checked)
    *old = mm_an_size (ptr, *old);
  mm_block_unlock (d, lockno);
  return 0;
}

/* Try to resize the block at PTR in place, or to move a large one without
   copying it.  1 if done (*TO: where it is now), 0 if it must be copied,
   -1 after reporting a bad pointer.  *OLD receives the usable size.  */
static int
resize_in_place (struct mm_desc *d, void *ptr, size_t size, size_t *old, void **to)
{
  struct mm_block b;
  unsigned lockno = mm_block_acquire (d, ptr, &b, MM_CHK_RESIZING);
  if (lockno == MM_BLOCK_BAD)
    return -1;
  *old = mm_usable (d, ptr, &b);
  int done = 0;
  size_t over = b.checked ? sizeof (struct mm_chk) + 1 : 0;
  if (size <= SIZE_MAX - over - MM_PAGE)
    {
      size_t need = size + over;
      if (b.slab)
	done = need <= b.room && (need > b.room / 2 || b.cls == 0);
      else if (need > MM_SMALL_MAX)
	{			/* PRE: an aligned checked block's lead */
	  size_t pre = (size_t) (b.start - (d->base + (b.pg << MM_PAGE_SHIFT)));
	  uint64_t n = ((uint64_t) need + pre + MM_PAGE - 1) >> MM_PAGE_SHIFT;
	  /* The old size may not fit the new pages: the header says it is
	     changing until it is armed again, resized or not (guard.c).  */
	  if (b.checked)
	    mm_chk_begin (b.start);
	  done = n <= PM_NMASK && mm_pages_resize (d, b.pg, n) == 0;
	  if (!done && n <= PM_NMASK && (*to = move_pages (d, ptr, &b, n)))
	    {
	      mm_block_unlock (d, lockno);
	      return 1;
	    }
	  if (done)
	    b.room = ((size_t) n << MM_PAGE_SHIFT) - pre;
	  else if (b.checked)
	    mm_chk_arm (b.start, b.room, sizeof (struct mm_chk), *old, NULL);
	}
      if (done && b.checked)
	mm_chk_arm (b.start, b.room, sizeof (struct mm_chk), size, NULL);
    }
  mm_block_unlock (d, lockno);
  return done;
}

/* The size class of PTR, plus 1, when it is an allocated slot of a plain
   slab that this thread owns in the heap MD of its current cache entry,
   found without a lock as mfree's fast path finds it (we alone write that
   slab's bits); else 0.  Never while tracing.  */
static unsigned
owned_slot (void *md, const void *ptr)
{
  struct mm_tc *tc = mm_tc_self;
  if (!tc || mm_tracing ())
    return 0;
  struct mm_tce *ce = tc->cur;
  struct mm_desc *d = ce->d;
  uint64_t bound = __atomic_load_n (&d->free_bound, __ATOMIC_ACQUIRE);
  uint64_t off = (uint64_t) ((uintptr_t) ptr - (bound ? (uintptr_t) d->base : 0));
  if (ce->md != md || off >= bound)
    return 0;
  uint32_t ent = mm_pm_get (d, off >> MM_PAGE_SHIFT);
  const struct mm_class *c = &mm_classes[PM_SLAB_CLS (ent)];
  uint64_t soff = mm_fmt_slab_of (off, ent);
  struct mm_slab *s = (struct mm_slab *) (d->base + soff);
  uint64_t rel = mm_fmt_slot_rel (c, off - soff);	/* huge if below slot 0 */
  if (PM_KIND (ent) != PM_SLAB || rel >= c->span || mm_slab_owner (s) != tc->id
      || (mm_slab_flags (s) & MM_SLAB_CHECKED))
    return 0;
  uint64_t idx = mm_fmt_slot_idx (c, rel), bit = 1ULL << (idx % 64);
  if (idx * c->size != rel || !(s->bits[idx / 64] & bit)
      || (__atomic_load_n (&s->bits[c->words + idx / 64], __ATOMIC_RELAXED) & bit))
    return 0;
  return PM_SLAB_CLS (ent) + 1;
}

static void *
realloc_body (void *md, void *ptr, size_t size)
{
  if (!ptr)
    return mmalloc (md, size);
  unsigned cls = owned_slot (md, ptr);
  if (cls--)
    {				/* a slot of ours: no lock, as resize_in_place */
      size_t room = mm_classes[cls].size;
      if (size <= room && (size > room / 2 || cls == 0))
	return ptr;
      void *p = mmalloc (md, size);
      if (p)
	{
	  memcpy (p, ptr, size < room ? size : room);
	  mfree (md, ptr);
	}
      return p;
    }
  struct mm_desc *d = mm_desc_of (md);
  if (!d)
    return NULL;
  if (!mm_writable (d))
    {
      mm_fail (d, EROFS);
      return NULL;
    }
  size_t old = 0;
  void *p = ptr;
  /* Annotated blocks always move, as valgrind's and ASan's realloc move
     them: the new one is handed out, the old one freed, each annotated.  */
  int annotating = mm_annotating ();
  int r = annotating ? old_size (d, ptr, &old) : resize_in_place (d, ptr, size, &old, &p);
  if (r < 0)
    {				/* reported: a bad pointer, or damage found */
      mm_fail (d, mm_damaged (d) ? MMALLOC_ECORRUPT : EINVAL);
      return NULL;
    }
  /* Not traced: through the entry points, whose fast paths serve small
     blocks from the thread's slabs without a lock.  */
  int direct = !mm_tracing ();
  if (!r)
    {
      p = direct ? mmalloc (md, size) : mm_alloc (d, size, NULL);
      if (!p)
	{
	  mm_fail (d, errno);
	  return NULL;
	}
      if (annotating)
	mm_alloc_annotate (d, p, size);
      size_t copy = old < size ? old : size;
      memcpy (p, ptr, copy);
      if (copy > MM_SMALL_MAX)
	{
	  __atomic_add_fetch (&d->moves[0], 1, __ATOMIC_RELAXED);
	  __atomic_add_fetch (&d->moves[1], copy, __ATOMIC_RELAXED);
	}
    }
  /* Traced before the old block is freed: once it is, another thread may
     be given its address and trace that first.  */
  if (MM_UNLIKELY (mm_tracing () & MM_SLOW_TRACE))
    {
      mm_trace ('<', ptr, 0);
      mm_trace ('>', p, size);
    }
  if (r)
    ;
  else if (direct)
    mfree (md, ptr);
  else
    mm_free (d, ptr);
  return p;
}

void
mm_move_counts (void *md, uint64_t out[3])
{
  struct mm_desc *d = mm_desc_of (md);
  for (int i = 0; i < 3; i++)
    out[i] = d ? __atomic_load_n (&d->moves[i], __ATOMIC_RELAXED) : 0;
}

size_t
mmalloc_usable_size (void *md, void *ptr)
{
  if (!ptr)
    return 0;
  struct mm_desc *d = mm_desc_of (md);
  if (!d || mm_fork_refuse (d, "mmalloc_usable_size: a heap file of the parent process"))
    return 0;
  struct mm_block b;
  unsigned lockno = mm_block_acquire (d, ptr, &b, MM_CHK_PEEK);
  if (lockno == MM_BLOCK_BAD)
    return 0;
  size_t n = mm_usable (d, ptr, &b);
  if (MM_UNLIKELY (mm_annotating ()) && !b.checked)
    n = mm_an_size (ptr, n);	/* what the tools let the caller use */
  mm_block_unlock (d, lockno);
  return n;
}

void *
mrealloc (void *md, void *ptr, size_t size)
{
  return MM_SITE_CALL (realloc_body (md, ptr, size));
}
