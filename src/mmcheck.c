/* mmcheck.c -- checked blocks, the quarantine, and the whole-heap walk.

   A heap under mmcheck gives every new block a 16-byte header (size asked for,
   a live/free mark, a sum of both with the address) and fills the bytes after
   the block's end with MM_CHK_BYTE; free, realloc and mmalloc_check verify
   both.  A block aligned beyond 16 bytes starts with a lead record (magic
   MM_CHK_LEAD, size: the offset of the user's pointer from the block's
   start); its header sits just before the aligned pointer, and guard bytes
   fill the space between the two.

   A freed block is marked freed, filled with MM_CHK_POISON and kept in the
   quarantine: it stays allocated in its slab or page map, so its memory is
   not handed out again at once, and a second free or a realloc of it is
   recognised.  The quarantine holds a heap's last frees, MM_QUAR_BLOCKS
   blocks and MM_QUAR_BYTES bytes at most; the block that leaves it is
   verified (any write into it since its free is reported) and given back.  A
   slot given back stays in its "free state" (a freed header at its start,
   poison after it), which is verified again when the slot is handed out and
   by mmalloc_check; slabs that keep free slots so are marked MM_SLAB_POISON
   (those of older files are not, until a slot of theirs is handed out:
   mm_chk_slab_init).  Large blocks lose their poison with their pages.

   The quarantine's list is process memory (under the page lock); what it
   means lives in the heap: an allocated block whose header says freed is in
   quarantine, or was being freed, and recovery gives it back (mm_recover).
   After a kill no quarantined block is lost, and none is freed twice: the
   list dies with the process, and recovery starts a new one.

   Headers and guards are written under the block's lock (its class lock, or
   the page lock), which the walk holds too, in an order that a kill -9 at any
   instant leaves recognisable (mm_chk_recover):
   - a record whose size and sum change is marked ARMING first and gets its
     final mark last (chk_set); guard bytes are written before the header;
   - a new large block is armed before the page map shows it; a new slot is
     taken from the free state (a freed header), which recovery frees again;
   - a resize in place of a large block marks its header ARMING before the
     pages change, since the old size may not fit the new pages;
   - free marks the header freed before anything else.
   An allocated block whose header is ARMING was being armed: recovery arms
   it again for the size it records (or the largest that fits), keeping its
   contents.  Any other bad header or guard is the program's doing, and stays
   reported.

   The walk (mmalloc_check) visits every page below `top' once and every list
   with a bound, so a damaged heap can neither crash nor hang it; it reports
   each problem on stderr and counts them.  */

#include "mmprivate.h"

#include <errno.h>
#include <string.h>

#define CHK sizeof (struct mm_chk)

static uint32_t
chk_sum (uint64_t size, const void *c)
{
  uint64_t x = size ^ (uint64_t) (uintptr_t) c ^ 0x6d6d636b9e3779b9ULL;
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9ULL;
  return (uint32_t) (x ^ (x >> 32));
}

/* Is C a whole record with MAGIC?  */
static int
chk_is (const struct mm_chk *c, uint32_t magic)
{
  return c->magic == magic && c->sum == chk_sum (c->size, c);
}

/* Make C a record of SIZE with MAGIC.  Size and sum are two stores: between
   them the record says ARMING, which recovery recognises (mm_chk_recover).  */
static void
chk_set (struct mm_chk *c, uint64_t size, uint32_t magic)
{
  if (c->size != size || c->sum != chk_sum (size, c))
    {
      __atomic_store_n (&c->magic, MM_CHK_ARMING, __ATOMIC_RELEASE);
      MM_KP ();
      c->size = size;
      MM_KP ();
      c->sum = chk_sum (size, c);
      MM_KP ();
    }
  __atomic_store_n (&c->magic, magic, __ATOMIC_RELEASE);	/* last: see mm_recover */
  MM_KP ();
}

/* Do the N bytes at P all hold V?  */
static int
chk_all (const unsigned char *p, size_t n, unsigned char v)
{
  uint64_t w = 0x0101010101010101ULL * v;
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    {
      uint64_t x;
      memcpy (&x, p + i, 8);
      if (x != w)
	return 0;
    }
  for (; i < n; i++)
    if (p[i] != v)
      return 0;
  return 1;
}

/* The offset of the user's pointer from START, the first byte of a checked
   block of ROOM bytes: 16, or what its lead record says; 0 if that record is
   damaged.  */
size_t
mm_chk_lead (const char *start, size_t room)
{
  const struct mm_chk *c = (const struct mm_chk *) (const void *) start;
  if (c->magic != MM_CHK_LEAD)
    return CHK;
  if (!chk_is (c, MM_CHK_LEAD) || c->size % MM_ALIGN || c->size < 2 * CHK
      || c->size > room - CHK - 1)
    return 0;
  return (size_t) c->size;
}

/* Make START (ROOM bytes) a checked block of SIZE bytes whose user pointer is
   LEAD bytes in; the user's pointer.  The header is written after the guard
   bytes, and the lead record last, so that an interrupted call leaves the
   block in the state it had (free, or live with its old size), or a record
   ARMING, which recovery arms again (mm_chk_recover).  */
void *
mm_chk_arm (void *start, size_t room, size_t lead, size_t size)
{
  char *b = start;
  struct mm_chk *c = (struct mm_chk *) (void *) (b + lead) - 1;
  char *user = (char *) (c + 1);
  memset (user + size, MM_CHK_BYTE, room - lead - size);
  MM_KP ();
  if (lead > CHK)
    memset (b + CHK, MM_CHK_BYTE, lead - 2 * CHK);
  chk_set (c, size, MM_CHK_LIVE);
  if (lead > CHK)
    chk_set ((struct mm_chk *) start, lead, MM_CHK_LEAD);
  return user;
}

/* Is C, ROOM bytes up to the end of its block, a freed header followed by
   untouched poison?  */
static const char *
chk_freed_intact (const struct mm_chk *c, size_t room)
{
  if (!chk_is (c, MM_CHK_FREE) || !chk_all ((const unsigned char *) (c + 1), room - CHK,
					      MM_CHK_POISON))
    return "write after free";
  return 0;
}

/* Put SLOT (ROOM bytes) in the free state: a freed header first (which ends
   any lead record), then the poison.  A whole record (a freed header, or a
   lead record) only changes its mark: one store, so an allocated slot never
   shows a half-written header here.  */
static void
slot_recycle (char *slot, size_t room)
{
  struct mm_chk *c = (struct mm_chk *) (void *) slot;
  chk_set (c, c->sum == chk_sum (c->size, c) ? c->size : 0, MM_CHK_FREE);
  memset (slot + CHK, MM_CHK_POISON, room - CHK);
  MM_KP ();
}

/* SLOT (ROOM bytes) of S in the free state, if S keeps its free slots so.  */
void
mm_chk_recycle (struct mm_slab *s, char *slot, size_t room)
{
  if (s->flags & MM_SLAB_POISON)
    slot_recycle (slot, room);
}

/* Every free slot of the checked slab S in the free state, then S marked
   MM_SLAB_POISON: a new slab, or one of an older file (whose free slots may
   hold anything: a slot taken from it and killed before its header was
   written would read as clobbered) before a slot of it is handed out.  If
   this is interrupted, S stays unmarked and is done again.  Class lock held
   (or S not yet published).  */
void
mm_chk_slab_init (struct mm_slab *s)
{
  const struct mm_class *c = &mm_classes[s->cls];
  char *slot = (char *) s + c->objoff;
  for (uint32_t i = 0; i < c->nobj; i++, slot += c->size)
    if (!(s->bits[i / 64] & (1ULL << (i % 64))))
      slot_recycle (slot, c->size);
  __atomic_store_n (&s->flags, (uint16_t) (s->flags | MM_SLAB_POISON), __ATOMIC_RELAXED);
  MM_KP ();
}

/* Set up the checked block at START (ROOM bytes) as ARM says, under the lock
   of the block: slot of S, or large block if S is NULL.  A slot must be in
   the free state; if it is not, ARM->bad says so (reported by mm_chk_armed,
   once the lock is dropped).  */
void
mm_chk_claim (struct mm_slab *s, char *start, size_t room, struct mm_arm *arm)
{
  arm->bad = 0;
  if (s && (s->flags & MM_SLAB_POISON))
    {
      arm->bad = chk_freed_intact ((const struct mm_chk *) (void *) start, room);
      arm->bad_ptr = start + CHK;
    }
  arm->user = mm_chk_arm (start, room, arm->lead, arm->size);
}

/* The end of a checked allocation P (NULL if it failed): report what
   mm_chk_claim found, then hand the block out; the user's pointer.  */
void *
mm_chk_armed (struct mm_desc *d, void *p, struct mm_arm *arm)
{
  if (!p)
    return NULL;
  if (MM_UNLIKELY (arm->bad != 0))
    mm_fault (d, arm->bad, arm->bad_ptr);
  return arm->user;
}

size_t
mm_chk_size (const void *ptr)
{
  return (size_t) ((const struct mm_chk *) ptr - 1)->size;
}

/* The checked block START (ROOM bytes) as its user sees it, for walks: 0 if
   it is freed (in quarantine), else 1 with the user's pointer and size.  A
   header that is no record (the program wrote over it) gives the room after
   a plain header: the block is still allocated, only its size is lost.  */
int
mm_chk_user (char *start, size_t room, char **user, size_t *size)
{
  size_t lead = mm_chk_lead (start, room);
  const struct mm_chk *c = (const struct mm_chk *) (void *) (start + (lead ? lead : CHK)) - 1;
  if (chk_is (c, MM_CHK_FREE))
    return 0;
  *user = (char *) (c + 1);
  *size = chk_is (c, MM_CHK_LIVE) && c->size <= room - lead - 1 ? (size_t) c->size
    : room - (size_t) (*user - start);
  return 1;
}

/* Recovery: START (ROOM bytes) is a checked block that the slab or the page
   map holds.  1 if it was freed (in quarantine, or being freed when the
   process died): the caller frees it.  A header left ARMING by a call that
   died is armed again, for the size it records or the largest that fits
   (a resize in place may have been shrinking the block), and the block
   keeps its contents.  */
int
mm_chk_recover (char *start, size_t room)
{
  size_t lead = mm_chk_lead (start, room);
  if (!lead)
    return 0;
  struct mm_chk *c = (struct mm_chk *) (void *) (start + lead) - 1;
  if (c->magic == MM_CHK_ARMING)
    {
      size_t max = room - lead - 1;
      mm_chk_arm (start, room, lead, c->size < max ? (size_t) c->size : max);
      return 0;
    }
  return chk_is (c, MM_CHK_FREE);
}

/* The header before the user's pointer at START + 16 (a block's or an
   aligned block's) is about to change with the block's pages: recovery must
   find it ARMING (mm_chk_recover) until mm_chk_arm is done.  */
void
mm_chk_begin (char *start)
{
  __atomic_store_n (&((struct mm_chk *) (void *) start)->magic, MM_CHK_ARMING,
		    __ATOMIC_RELEASE);
  MM_KP ();
}

/* What is wrong with the checked block B, of the user pointer PTR, as MODE
   asks (MM_CHK_PEEK, ...): 0 if nothing.  */
const char *
mm_chk_verify (const void *ptr, const struct mm_block *b, int mode)
{
  const struct mm_chk *c = (const struct mm_chk *) ptr - 1;
  if (chk_is (c, MM_CHK_FREE))
    return mode == MM_CHK_FREEING ? "double free (block freed twice)"
      : "use after free (the block was freed)";
  if (!chk_is (c, MM_CHK_LIVE) || c->size > b->room - CHK - 1)
    return "block header clobbered (write before the block?)";
  if (mode == MM_CHK_PEEK)
    return 0;
  /* Every guard byte: a write far past the end (or into an aligned block's
     lead) is as much an overrun as one at the end.  They are fewer than a
     page for a large block, and fewer than the slot for a small one, which
     free poisons whole anyway.  */
  size_t n = b->room - CHK - (size_t) c->size;
  if (!chk_all ((const unsigned char *) ptr + c->size, n, MM_CHK_BYTE))
    return "write past the end of a block";
  n = b->lead > CHK ? b->lead - 2 * CHK : 0;
  if (!chk_all ((const unsigned char *) c - n, n, MM_CHK_BYTE))
    return "block header clobbered (write before the block?)";
  return 0;
}

/* --- the quarantine ------------------------------------------------------- */

struct mm_quar
{
  uint32_t head, n;		/* the oldest entry; entries */
  size_t bytes;			/* the bytes of their slots and page runs */
  struct
  {
    void *p;
    size_t bytes;
    unsigned cls;		/* of its slot, or MM_NCLASSES: a large block */
  } e[MM_QUAR_BLOCKS];
};

void
mm_quar_reset (struct mm_desc *d)
{
  if (d->quar)
    {
      d->quar->head = d->quar->n = 0;
      d->quar->bytes = 0;
    }
}

/* The oldest entry of D's quarantine if it holds more than LIMIT bytes (or,
   with LIMIT 0, anything), taken out; else NULL.  Page lock held.  */
static void *
quar_pop (struct mm_desc *d, size_t limit)
{
  struct mm_quar *q = d->quar;
  if (!q || !q->n || q->bytes <= limit)
    return NULL;
  void *p = q->e[q->head].p;
  q->bytes -= q->e[q->head].bytes;
  q->head = (q->head + 1) % MM_QUAR_BLOCKS;
  q->n--;
  return p;
}

/* Give back P, a block that leaves the quarantine: verify that nothing wrote
   into it since it was freed, and free it.  */
static void
quar_release (struct mm_desc *d, void *p)
{
  struct mm_block b;
  unsigned li = mm_block_lock (d, p);
  const char *bad = mm_damaged (d) ? "" : mm_lookup (d, p, &b);
  if (!bad && (b.cls != li || !b.checked))
    bad = "damaged page map holds pointer";
  if (bad)
    {				/* left allocated */
      mm_block_unlock (d, li);
      if (!bad[0])
	;
      else if (bad[0] == 'd' && bad[1] == 'a')
	mm_damage (d, bad, (uint64_t) ((char *) p - d->base));
      else			/* its lead record was overwritten */
	mm_fault (d, "write after free", p);
      return;
    }
  bad = chk_freed_intact ((const struct mm_chk *) p - 1, b.room);
  if (b.slab && (bad || b.lead > CHK))
    mm_chk_recycle (b.slab, b.start + CHK - b.lead, b.room + b.lead - CHK);
  mm_block_release (d, &b);
  mm_block_unlock (d, li);
  if (bad)
    mm_fault (d, bad, p);
}

/* Release quarantined blocks of D until it holds LIMIT bytes at most.  */
static void
quar_drain (struct mm_desc *d, size_t limit)
{
  for (;;)
    {
      mm_lock (&d->page_lock);
      void *p = quar_pop (d, limit);
      mm_unlock (&d->page_lock);
      if (!p)
	return;
      quar_release (d, p);
    }
}

/* The blocks in D's quarantine are free to the program: count them in HI as
   free slots and free runs, not as used blocks.  Every lock of D held.  */
void
mm_quar_stats (struct mm_desc *d, struct mm_heapinfo *hi)
{
  struct mm_quar *q = d->quar;
  for (uint32_t k = 0; q && k < q->n; k++)
    {
      uint32_t i = (q->head + k) % MM_QUAR_BLOCKS;
      size_t bytes = q->e[i].bytes;
      hi->st.chunks_used--;
      hi->st.bytes_used -= bytes;
      hi->st.chunks_free++;
      hi->st.bytes_free += bytes;
      if (q->e[i].cls < MM_NCLASSES)
	hi->cls_free[q->e[i].cls]++;
      else
	{
	  unsigned bin = mm_bin_of (bytes >> MM_PAGE_SHIFT);
	  hi->large--;
	  hi->large_bytes -= bytes;
	  hi->runs++;
	  hi->run_bytes += bytes;
	  hi->bin_runs[bin]++;
	  hi->bin_pages[bin] += bytes >> MM_PAGE_SHIFT;
	}
    }
}

/* Before a heap is detached: its blocks in quarantine go back.  */
void
mm_quar_flush (struct mm_desc *d)
{
  quar_drain (d, 0);
}

/* Free the checked block B of PTR: B's lock LI is held, and dropped here.  The
   block is marked freed first (see mm_recover), then poisoned and put in
   quarantine; a slot for which there is no room there is given back now, in
   the free state.  */
void
mm_chk_free (struct mm_desc *d, void *ptr, struct mm_block *b, unsigned li)
{
  struct mm_chk *c = (struct mm_chk *) ptr - 1;
  int keep = b->room <= MM_QUAR_BLOCK_MAX;
  if (keep)			/* a freed block that stays allocated */
    mm_format_need (d, MM_FORMAT_V2);
  __atomic_store_n (&c->magic, MM_CHK_FREE, __ATOMIC_RELEASE);
  MM_KP ();
  if (keep)
    memset (ptr, MM_CHK_POISON, b->room - CHK);
  void *spill = NULL;
  if (li < MM_NCLASSES)
    mm_lock (&d->page_lock);	/* class lock, then page lock */
  if (keep && !d->quar)
    {
      void *q;
      if (mm_os_alloc (sizeof (struct mm_quar), &q) == 0)
	d->quar = q;		/* zeroed: empty */
    }
  if (keep && d->quar)
    {
      struct mm_quar *q = d->quar;
      if (q->n == MM_QUAR_BLOCKS)
	spill = quar_pop (d, 0);
      uint32_t i = (q->head + q->n) % MM_QUAR_BLOCKS;
      q->e[i].p = ptr;
      q->e[i].bytes = b->room + b->lead - CHK;	/* the whole slot or run */
      q->e[i].cls = b->cls;
      q->n++;
      q->bytes += q->e[i].bytes;
    }
  else
    keep = 0;
  if (li < MM_NCLASSES)
    mm_unlock (&d->page_lock);
  if (!keep)
    {
      if (b->slab)
	mm_chk_recycle (b->slab, b->start + CHK - b->lead, b->room + b->lead - CHK);
      mm_block_release (d, b);
    }
  mm_block_unlock (d, li);
  if (spill)
    quar_release (d, spill);
  quar_drain (d, MM_QUAR_BYTES);
}

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
  uint32_t fl = __atomic_load_n (&d->hdr->flags, __ATOMIC_RELAXED);	/* note_used: no lock */
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
  if (chk_is (c, MM_CHK_FREE))
    return chk_freed_intact (c, b.room);
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
	    : chk_freed_intact ((const struct mm_chk *) (void *) slot, c->size);
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
