/* guard.c -- the check headers and guard bytes of checked blocks.

   A heap under mmcheck gives every new block a 16-byte header (size asked for,
   a live/free mark, a sum of both with the address) and fills the bytes after
   the block's end with MM_CHK_BYTE; free, realloc and mmalloc_check verify
   both.  A block aligned beyond 16 bytes starts with a lead record (magic
   MM_CHK_LEAD, size: the offset of the user's pointer from the block's
   start); its header sits just before the aligned pointer, and guard bytes
   fill the space between the two.  A slot given back stays in its "free
   state" (a freed header at its start, poison after it), verified again when
   the slot is handed out and by mmalloc_check; slabs that keep free slots
   so are marked MM_SLAB_POISON (those of older files are not, until a slot
   of theirs is handed out: mm_chk_slab_init).  Large blocks lose their
   poison with their pages.

   Headers and guards are written under the block's lock (its class lock,
   or the page lock), which the walk of mmalloc_check holds too, in an order
   that a kill -9 at any instant leaves recognisable (mm_chk_recover):
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
   reported.  */

#include "mmprivate.h"

#include <errno.h>
#include <string.h>

#define CHK sizeof (struct mm_chk)

static uint32_t
chk_sum (uint64_t size, const void *c)
{
  return mm_fmt_chk_sum (size, (uint64_t) (uintptr_t) c);
}

/* Is C a whole record with MAGIC?  */
int
mm_chk_is (const struct mm_chk *c, uint32_t magic)
{
  return mm_fmt_chk_is (c, (uint64_t) (uintptr_t) c, magic);
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
  return mm_fmt_chk_lead ((const struct mm_chk *) (const void *) start,
			  (uint64_t) (uintptr_t) start, room);
}

/* Make START (ROOM bytes) a checked block of SIZE bytes whose user pointer is
   LEAD bytes in, allocated at SITE (a site record, LEAD 32) or at an unknown
   place (NULL); the user's pointer.  The header is written after the guard
   bytes, and the lead or site record last, so that an interrupted call leaves the
   block in the state it had (free, or live with its old size), or a record
   ARMING, which recovery arms again (mm_chk_recover).  */
void *
mm_chk_arm (void *start, size_t room, size_t lead, size_t size, const void *site)
{
  char *b = start;
  struct mm_chk *c = (struct mm_chk *) (void *) (b + lead) - 1;
  char *user = (char *) (c + 1);
  memset (user + size, MM_CHK_BYTE, room - lead - size);
  MM_KP ();
  if (lead > CHK)
    memset (b + CHK, MM_CHK_BYTE, lead - 2 * CHK);
  chk_set (c, size, MM_CHK_LIVE);
  if (site)
    chk_set ((struct mm_chk *) start, (uint64_t) (uintptr_t) site, MM_CHK_SITE);
  else if (lead > CHK)
    chk_set ((struct mm_chk *) start, lead, MM_CHK_LEAD);
  return user;
}

/* Is C, ROOM bytes up to the end of its block, a freed header followed by
   untouched poison?  */
enum mm_verdict
mm_chk_freed_intact (const struct mm_chk *c, size_t room)
{
  if (!mm_chk_is (c, MM_CHK_FREE) || !chk_all ((const unsigned char *) (c + 1), room - CHK,
					      MM_CHK_POISON))
    return MM_BAD_WRITE_AFTER_FREE;
  return MM_OK;
}

/* Is SLOT (ROOM bytes) in the free state: a freed header followed by
   untouched poison, after the site record of its last block if it had one?  */
enum mm_verdict
mm_chk_slot_intact (const char *slot, size_t room)
{
  const struct mm_chk *c = (const struct mm_chk *) (const void *) slot;
  if (mm_chk_is (c, MM_CHK_SITE) && room > 2 * CHK)
    return mm_chk_freed_intact (c + 1, room - CHK);
  return mm_chk_freed_intact (c, room);
}

/* The verdict on a pointer 32 bytes into the checked block at START, where
   the user's pointer of a block with a site record is, when START holds no
   such record: its header was overwritten if START holds no whole record
   at all, else the pointer is not the block's.  */
enum mm_verdict
mm_chk_first_bad (const char *start)
{
  const struct mm_chk *c = (const struct mm_chk *) (const void *) start;
  return c->sum == chk_sum (c->size, c) ? MM_BAD_NOT_START : MM_BAD_HEADER;
}

/* Put SLOT (ROOM bytes) in the free state: a freed header first (which ends
   any lead record), then the poison.  A site record stays, with the block's
   header after it freed, so that a later misuse of the block still names
   where it was allocated.  A whole record (a freed header, or a lead
   record) only changes its mark: one store, so an allocated slot never
   shows a half-written header here.  */
static void
slot_recycle (char *slot, size_t room)
{
  struct mm_chk *c = (struct mm_chk *) (void *) slot;
  if (mm_chk_is (c, MM_CHK_SITE) && room > 2 * CHK)
    c++;
  chk_set (c, c->sum == chk_sum (c->size, c) ? c->size : 0, MM_CHK_FREE);
  memset (c + 1, MM_CHK_POISON, room - (size_t) ((char *) (c + 1) - slot));
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
  arm->bad = MM_OK;
  if (s && (s->flags & MM_SLAB_POISON))
    {
      arm->bad = mm_chk_slot_intact (start, room);
      size_t lead = mm_chk_lead (start, room);
      arm->bad_ptr = start + (lead ? lead : CHK);
    }
  arm->user = mm_chk_arm (start, room, arm->lead, arm->size, arm->site);
}

/* The end of a checked allocation P (NULL if it failed): report what
   mm_chk_claim found, then hand the block out; the user's pointer.  */
void *
mm_chk_armed (struct mm_desc *d, void *p, struct mm_arm *arm)
{
  if (!p)
    return NULL;
  if (MM_UNLIKELY (arm->bad != MM_OK))
    mm_fault (d, mm_verdict_text (arm->bad), arm->bad_ptr);
  return arm->user;
}

/* The allocation site recorded by the checked block whose first byte is
   START; 0 if none.  */
uint64_t
mm_chk_site_of (const char *start)
{
  return mm_fmt_chk_site ((const struct mm_chk *) (const void *) start,
			  (uint64_t) (uintptr_t) start);
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
  if (mm_chk_is (c, MM_CHK_FREE))
    return 0;
  *user = (char *) (c + 1);
  *size = mm_chk_is (c, MM_CHK_LIVE) && c->size <= room - lead - 1 ? (size_t) c->size
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
      mm_chk_arm (start, room, lead, c->size < max ? (size_t) c->size : max,
		  (const void *) (uintptr_t) mm_chk_site_of (start));
      return 0;
    }
  return mm_chk_is (c, MM_CHK_FREE);
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
   asks (MM_CHK_PEEK, ...): MM_OK if nothing.  */
enum mm_verdict
mm_chk_verify (const void *ptr, const struct mm_block *b, int mode)
{
  const struct mm_chk *c = (const struct mm_chk *) ptr - 1;
  if (mm_chk_is (c, MM_CHK_FREE))
    return mode == MM_CHK_FREEING ? MM_BAD_DOUBLE_FREE
      : MM_BAD_USE_AFTER_FREE;
  if (!mm_chk_is (c, MM_CHK_LIVE) || c->size > b->room - CHK - 1)
    return MM_BAD_HEADER;
  if (mode == MM_CHK_PEEK)
    return MM_OK;
  /* Every guard byte: a write far past the end (or into an aligned block's
     lead) is as much an overrun as one at the end.  They are fewer than a
     page for a large block, and fewer than the slot for a small one, which
     free poisons whole anyway.  */
  size_t n = b->room - CHK - (size_t) c->size;
  if (!chk_all ((const unsigned char *) ptr + c->size, n, MM_CHK_BYTE))
    return MM_BAD_OVERRUN;
  n = b->lead > CHK ? b->lead - 2 * CHK : 0;
  if (!chk_all ((const unsigned char *) c - n, n, MM_CHK_BYTE))
    return MM_BAD_HEADER;
  return MM_OK;
}
