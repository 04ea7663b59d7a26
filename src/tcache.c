/* tcache.c -- per-thread slab ownership: the lock-free small-block paths.

   The objects (thread cache, cache entry, recent slot, slab, owner token)
   and who writes which of their fields: the glossary of mmprivate.h.  An
   owned slab's bits are written by its owner alone, with relaxed stores, so
   its allocations and its own frees take no lock and no atomic
   read-modify-write; other threads' frees go to rbits, which the owner folds
   in when it needs slots.  Frees into a slab with no owner lock only to list
   it, or when it may be empty.

   Nothing here needs recovery: recovery folds rbits and clears owners.  An
   owner gives a slab up
   (under the class lock) when its own frees empty it, when the thread exits,
   and when the entry is evicted; detach and mmcheckf take every slab back
   (mm_tc_drop_heap) and bump the heap's generation, which makes every
   thread's entry for it stale (damage bumps it too, and zeroes d->free_bound).
   The take-back first waits until no owner is inside its lock-free window
   on the heap (mm_tc_enter in mmprivate.h): an owner past its check of the
   generation finishes its store before the slab stops being its own.
   Descriptors are never unmapped (handle.c reuses them), so a stale entry
   can always be compared safely.  */

#include "mmprivate.h"

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>

static uint32_t next_id;
static pthread_key_t tc_key;
/* tc_init's state: 0, then 1 once the key exists, 2 once the barrier is
   known too.  Not a pthread_once: a fork child whose parent was inside it
   must be able to finish it (mm_tc_after_fork makes the lock anew).  */
static int tc_ready;
static pthread_mutex_t tc_init_lock = PTHREAD_MUTEX_INITIALIZER;
/* Every thread's cache, for a fork child (mm_tc_after_fork).  */
static pthread_mutex_t tc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mm_tc *tc_all;
int mm_tc_fence;

/* A descriptor no entry can match: empty entries point here.  */
static struct mm_desc no_desc = { .gen = UINT64_MAX };

/* The recent slots are left as they are (nrecent is 0): they are most of an entry,
   and pages of them never used stay untouched.  */
static void
entry_clear (struct mm_tce *ce)
{
  memset (ce, 0, offsetof (struct mm_tce, recent));
  ce->md = (void *) &no_desc;
  ce->d = &no_desc;
}

/* --- the owner's lists, linked through the slabs' next/prev offsets ------ */

/* The slab a list link OFF of class C names, or NULL.  The link was read
   from a slab's header, which a damaged file may have made, with its owner
   ours by chance: it is followed, and written through, only to a whole
   slab of the class that we own too (another's, or a listed one, would get
   two writers).  */
static struct mm_slab *
link_at (struct mm_desc *d, uint64_t off, unsigned c)
{
  if (!off)
    return NULL;
  if (!mm_slab_ok (d, off, c)
      || mm_slab_owner ((struct mm_slab *) mm_at (d, off)) != mm_tc_self->id)
    {
      mm_damage (d, "thread's slab list", off);
      return NULL;
    }
  return (struct mm_slab *) mm_at (d, off);
}

static void
set_flag (struct mm_slab *s, uint16_t set, uint16_t clear)
{
  mm_slab_set_flags (s, (uint16_t) ((s->flags & ~clear) | set));
}

static void
avail_push (struct mm_desc *d, struct mm_tce *ce, unsigned c, struct mm_slab *s)
{
  s->prev = 0;
  s->next = ce->avail[c] ? mm_off (d, ce->avail[c]) : 0;
  if (ce->avail[c])
    ce->avail[c]->prev = mm_off (d, s);
  ce->avail[c] = s;
  set_flag (s, MM_SLAB_AVAIL, 0);
}

static void
avail_unlink (struct mm_desc *d, struct mm_tce *ce, unsigned c, struct mm_slab *s)
{
  struct mm_slab *p = link_at (d, s->prev, c), *n = link_at (d, s->next, c);
  if (p)
    p->next = s->next;
  else
    ce->avail[c] = n;
  if (n)
    n->prev = s->prev;
  s->next = s->prev = 0;
  set_flag (s, 0, MM_SLAB_AVAIL);
}

/* Full slabs: pushed at the tail, looked at from the head.  */
static void
full_push (struct mm_desc *d, struct mm_tce *ce, unsigned c, struct mm_slab *s)
{
  struct mm_slab *t = ce->full_tail[c];
  s->next = 0;
  s->prev = t ? mm_off (d, t) : 0;
  if (t)
    t->next = mm_off (d, s);
  else
    ce->full[c] = s;
  ce->full_tail[c] = s;
  set_flag (s, MM_SLAB_FULL, 0);
}

static void
full_unlink (struct mm_desc *d, struct mm_tce *ce, unsigned c, struct mm_slab *s)
{
  struct mm_slab *p = link_at (d, s->prev, c), *n = link_at (d, s->next, c);
  if (p)
    p->next = s->next;
  else
    ce->full[c] = n;
  if (n)
    n->prev = s->prev;
  else
    ce->full_tail[c] = p;
  s->next = s->prev = 0;
  set_flag (s, 0, MM_SLAB_FULL);
}

/* Give S up (class lock held): nobody's, then listed or given back.  */
static void
give_up (struct mm_desc *d, struct mm_slab *s)
{
  mm_slab_unowned (d, s);
  if (s->used == 0)
    mm_slab_after_free (d, s);	/* empty: back to the pages unless alone */
}

/* Give up the slabs of CE, if its heap is still the one it was made for.  */
static void
entry_release (struct mm_tce *ce)
{
  struct mm_desc *d = ce->d;
  for (unsigned c = 0; d != &no_desc && c < MM_NCLASSES; c++)
    if (ce->slab[c] || ce->avail[c] || ce->full[c])
      {
	mm_lock (&d->class_lock[c]);
	if (ce->gen == __atomic_load_n (&d->gen, __ATOMIC_ACQUIRE))
	  {
	    struct mm_slab *s;
	    while ((s = ce->avail[c]))
	      {
		avail_unlink (d, ce, c, s);
		give_up (d, s);
	      }
	    while ((s = ce->full[c]))
	      {
		full_unlink (d, ce, c, s);
		give_up (d, s);
	      }
	    if (ce->slab[c])
	      give_up (d, ce->slab[c]);
	  }
	mm_unlock (&d->class_lock[c]);
      }
  entry_clear (ce);
}

/* This thread's entry for D, wherever it is in the cache; NULL if none.  */
struct mm_tce *
mm_tc_find (struct mm_desc *d)
{
  struct mm_tc *tc = mm_tc_self;
  for (int i = 0; tc && i < MM_TC_ENTRIES; i++)
    if (tc->entries[i].d == d && tc->entries[i].gen == __atomic_load_n (&d->gen, __ATOMIC_ACQUIRE))
      return &tc->entries[i];
  return NULL;
}

/* We freed a slot of S, which we own, outside the fast path's common case:
   S was on the full list (it is available again), or S is now empty and not
   the current slab (give it up, so its pages can go back).  1 if we still
   own S, 0 if it was given up.  C is S's class as the page map says, which
   indexes E's lists: S's header, with an owner read from the file, is
   trusted no further than what it is checked against.  With LOCKED the
   class lock is held; else we are inside our window on the heap, and may
   leave it.  */
int
mm_tc_freed (struct mm_tce *ce, struct mm_slab *s, unsigned c, int locked)
{
  struct mm_desc *d = ce->d;
  if (MM_UNLIKELY (s->cls != c))
    {
      mm_damage (d, "slab header", mm_off (d, s));
      return 0;
    }
  if (s->flags & MM_SLAB_FULL)
    {
      full_unlink (d, ce, c, s);
      avail_push (d, ce, c, s);
    }
  if (s->used == 0 && s != ce->slab[c])
    {
      /* Keep one empty slab per class at hand (on avail), so that a thread
	 whose blocks come and go does not make and unmake slabs.  */
      struct mm_slab *o = ce->avail[c];
      int other_empty = 0;
      for (int k = 0; o && k < 4; k++, o = link_at (d, o->next, c))
	if (o != s && o->used == 0)
	  other_empty = 1;
      if (!other_empty)
	return 1;
      unsigned n = 0;		/* forget the recent slots in it */
      for (unsigned i = 0; i < ce->nrecent[c]; i++)
	if (mm_recent_slab (ce->recent[c][i].v) != s)
	  ce->recent[c][n++] = ce->recent[c][i];
      ce->nrecent[c] = (uint8_t) n;
      avail_unlink (d, ce, c, s);
      if (!locked)
	{
	  mm_tc_leave (mm_tc_self);
	  mm_lock (&d->class_lock[c]);
	}
      /* A take-back between our window and the lock made S nobody's.  */
      if (locked || ce->gen == __atomic_load_n (&d->gen, __ATOMIC_ACQUIRE))
	give_up (d, s);
      ce->nowned--;
      if (!locked)
	mm_unlock (&d->class_lock[c]);
      return 0;
    }
  return 1;
}

/* At thread exit: give every slab back, then the cache's memory.  */
static void
tc_destroy (void *arg)
{
  struct mm_tc *tc = arg;
  for (int i = 0; i < MM_TC_ENTRIES; i++)
    entry_release (&tc->entries[i]);
  mm_lock (&tc_lock);
  if (tc->all_prev)
    tc->all_prev->all_next = tc->all_next;
  else
    tc_all = tc->all_next;
  if (tc->all_next)
    tc->all_next->all_prev = tc->all_prev;
  mm_unlock (&tc_lock);
  mm_tc_self = NULL;
  mm_os_unmap (tc, sizeof *tc);
}

/* Once, before any cache exists (so before any thread is in a window).  */
static void
tc_init (void)
{
  if (MM_LIKELY (__atomic_load_n (&tc_ready, __ATOMIC_ACQUIRE) == 2))
    return;
  mm_lock (&tc_init_lock);
  if (tc_ready == 0 && pthread_key_create (&tc_key, tc_destroy) == 0)
    __atomic_store_n (&tc_ready, 1, __ATOMIC_RELEASE);
  if (tc_ready == 1)
    {
      if (mm_os_barrier_init ())
	__atomic_store_n (&mm_tc_fence, 1, __ATOMIC_SEQ_CST);
      __atomic_store_n (&tc_ready, 2, __ATOMIC_RELEASE);
    }
  mm_unlock (&tc_init_lock);
}

static struct mm_tc *
tc_create (void)
{
  void *p;
  tc_init ();
  if (__atomic_load_n (&tc_ready, __ATOMIC_ACQUIRE) != 2)
    return NULL;
  if (mm_os_alloc (sizeof (struct mm_tc), &p))
    return NULL;
  struct mm_tc *tc = p;
  tc->id = __atomic_add_fetch (&next_id, 1, __ATOMIC_RELAXED);
  if (!tc->id)			/* 2^32 threads later */
    tc->id = __atomic_add_fetch (&next_id, 1, __ATOMIC_RELAXED);
  /* Tokens wrapped round to those of threads gone at a fork: forget those
     (their slabs stay theirs) before this one owns anything.  */
  if (tc->id <= __atomic_load_n (&mm_dead_max, __ATOMIC_SEQ_CST))
    __atomic_store_n (&mm_dead_max, 0, __ATOMIC_SEQ_CST);
  for (int i = 0; i < MM_TC_ENTRIES; i++)
    entry_clear (&tc->entries[i]);
  tc->cur = &tc->entries[0];
  if (pthread_setspecific (tc_key, tc))
    {
      mm_os_unmap (tc, sizeof *tc);
      return NULL;
    }
  mm_lock (&tc_lock);
  tc->all_prev = NULL;
  tc->all_next = tc_all;
  if (tc_all)
    tc_all->all_prev = tc;
  tc_all = tc;
  mm_unlock (&tc_lock);
  mm_tc_self = tc;
  return tc;
}

/* The calling thread's entry for heap D (named MD by the caller), made its
   current entry; made if missing.  NULL if D must take the locked paths.  */
struct mm_tce *
mm_tc_entry (void *md, struct mm_desc *d)
{
  /* The generation first: checking is switched on before the generation
     changes, so an entry made with the new one sees it.  */
  uint64_t gen = __atomic_load_n (&d->gen, __ATOMIC_SEQ_CST);
  if (!mm_writable (d) || mm_damaged (d) || __atomic_load_n (&mm_trace_on, __ATOMIC_SEQ_CST)
      || (__atomic_load_n (&d->hdr->flags, __ATOMIC_SEQ_CST) & MM_F_CHECKED))
    return NULL;
  struct mm_tc *tc = mm_tc_self;
  if (!tc && !(tc = tc_create ()))
    return NULL;
  if (mm_tc_busy (tc))
    return NULL;		/* nested in a window: see mm_tc_enter */
  int i, old = 0;
  for (i = 0; i < MM_TC_ENTRIES; i++)
    {
      if (tc->entries[i].md == md && tc->entries[i].d == d && tc->entries[i].gen == gen)
	break;
      if (tc->entries[i].stamp < tc->entries[old].stamp)
	old = i;
    }
  if (i == MM_TC_ENTRIES)
    {
      i = old;			/* the least recently used goes */
      entry_release (&tc->entries[i]);
      tc->entries[i].md = md;
      tc->entries[i].d = d;
      tc->entries[i].gen = gen;
    }
  tc->entries[i].stamp = ++tc->clock;
  tc->cur = &tc->entries[i];
  return tc->cur;
}

/* A slab for CE's class CLS from the partial list or new, owned (class lock
   held).  NULL with errno set (EAGAIN: CE has gone stale).  */
static struct mm_slab *
acquire (struct mm_tce *ce, unsigned cls)
{
  struct mm_desc *d = ce->d;
  /* A stale entry must own nothing, since the fast free trusts a slab's
     owner instead of comparing generations.  The generation changes with
     every class lock held and every owner taken out (mm_tc_drop_heap), or
     with d->free_bound zeroed (damage, detach), or in a fork child (recovery
     clears the owners).  */
  if (ce->gen != __atomic_load_n (&d->gen, __ATOMIC_ACQUIRE))
    {
      errno = EAGAIN;
      return NULL;
    }
  uint64_t off = d->hdr->cls[cls].partial[0];
  struct mm_slab *s;
  if (!off)
    s = mm_slab_new (d, cls, 0, mm_tc_self->id);
  else
    {
      s = (struct mm_slab *) mm_at (d, off);
      if (!mm_partial_head_ok (d, off, cls, 0))
	{
	  mm_damage (d, "partial slab list", off);
	  return NULL;
	}
      mm_partial_pull (d, s);
      __atomic_store_n (&s->owner, mm_tc_self->id, __ATOMIC_SEQ_CST);
      __atomic_add_fetch (&d->nowned, 1, __ATOMIC_RELAXED);
      MM_KP ();
    }
  if (s)
    ce->nowned++;
  return s;
}

/* The current slab of CE for CLS has no free slot at its hint: search it,
   then the slabs we own (those we freed into, then a few full ones with
   frees of other threads pending), and only then take another slab under
   the class lock.  A slot, or NULL with errno set.  Called inside the
   thread's window on E's heap (mm_tc_enter); may leave it.  */
void *
mm_tc_refill (struct mm_tce *ce, unsigned cls)
{
  struct mm_desc *d = ce->d;
  const struct mm_class *c = &mm_classes[cls];
  struct mm_slab *s = ce->slab[cls];
  uint32_t idx;
  for (int looked = 0;; looked++)
    {
      /* used == nobj: every bit set, as recent slots often leave a slab of the
	 avail list; only frees of other threads (rfree) can make room.  */
      if (s && (s->used < c->nobj || __atomic_load_n (&s->rfree, __ATOMIC_RELAXED))
	  && (idx = mm_slab_take (s)) != UINT32_MAX)
	break;
      if (s)
	full_push (d, ce, cls, s);	/* full as far as we know */
      ce->slab[cls] = s = NULL;
      if ((s = ce->avail[cls]))
	avail_unlink (d, ce, cls, s);
      else if (looked < 4 && (s = ce->full[cls])
	       && __atomic_load_n (&s->rfree, __ATOMIC_RELAXED))
	full_unlink (d, ce, cls, s);	/* others freed into it */
      else
	{
	  if (s && s != ce->full_tail[cls])
	    {			/* nothing pending at the head: look elsewhere next time */
	      full_unlink (d, ce, cls, s);
	      full_push (d, ce, cls, s);
	    }
	  /* Out of the window before the lock (the take-back holds it while
	     it waits for the window to empty); the new slab's first slot is
	     taken under the lock, where acquire compared generations.  */
	  mm_tc_leave (mm_tc_self);
	  mm_lock (&d->class_lock[cls]);
	  s = acquire (ce, cls);
	  idx = s ? mm_slab_take (s) : UINT32_MAX;
	  mm_unlock (&d->class_lock[cls]);
	  if (!s)
	    return NULL;
	  ce->slab[cls] = s;
	  if (idx == UINT32_MAX)
	    {			/* a listed slab was full: damage */
	      mm_damage (d, "full slab on a partial list", mm_off (d, s));
	      return NULL;
	    }
	  break;
	}
      ce->slab[cls] = s;
    }
  return (char *) s + mm_fmt_slot_off (c, idx);
}

/* Make every thread's entry for D stale, with D's bound at 0 (which the
   caller restores, or not), and wait until no thread is inside its window
   on D: from then on no thread writes an owned slab of D without a lock
   until it has taken one through a new entry, under a class lock.  All of
   D's locks held (a window waits for none).  */
void
mm_tc_quiesce (struct mm_desc *d)
{
  __atomic_store_n (&d->free_bound, 0, __ATOMIC_SEQ_CST);
  __atomic_store_n (&d->gen, mm_new_gen (), __ATOMIC_SEQ_CST);
  tc_init ();
  if (!__atomic_load_n (&mm_tc_fence, __ATOMIC_RELAXED) && mm_os_barrier ())
    __atomic_store_n (&mm_tc_fence, 1, __ATOMIC_SEQ_CST);	/* never seen */
  struct mm_tc *self = mm_tc_self;
  mm_lock (&tc_lock);
  for (struct mm_tc *tc = tc_all; tc; tc = tc->all_next)
    while (tc != self && __atomic_load_n (&tc->busy, __ATOMIC_ACQUIRE) == d)
      sched_yield ();
  mm_unlock (&tc_lock);
}

/* Detach (or a change that stops the fast paths): take back every owned slab
   of D, and make every thread's entry for D stale.  All of D's locks held.  */
void
mm_tc_drop_heap (struct mm_desc *d)
{
  /* Stop the fast frees first (they do not compare generations; they test
     the owner, which the walk clears one slab at a time): with the bound at
     0 they take the slow path and wait for our locks.  */
  uint64_t bound = __atomic_load_n (&d->free_bound, __ATOMIC_SEQ_CST);
  mm_tc_quiesce (d);
  /* The walk touches every slab: skip it when no thread owns one.  */
  struct mm_fmt_heap h = mm_fmt_of (d);
  struct mm_fmt_iter it;
  struct mm_fmt_thing t;
  mm_fmt_iter_init (&it, &h, MM_HDR_PAGES, 0);
  while (__atomic_load_n (&d->nowned, __ATOMIC_RELAXED) && mm_fmt_iter_next (&it, &t))
    {
      struct mm_slab *s = mm_at (d, t.pg << MM_PAGE_SHIFT);
      if (!t.flaw && t.kind == PM_SLAB && s->owner
	  && mm_slab_ok (d, t.pg << MM_PAGE_SHIFT, PM_SLAB_CLS (t.mark)))
	{
	  if (mm_owner_dead (s->owner))
	    mm_slab_adopt (d, s);	/* its counts may be half made */
	  else
	    mm_slab_unowned (d, s);
	}
    }
  mm_set_free_bound (d, bound);
}

/* --- fork ------------------------------------------------------------------ */

/* Is S, which an entry of the thread with token ID names, a whole slab of
   D's class CLS still owned by that thread?  */
static int
owned_by_dead (struct mm_desc *d, uint32_t id, unsigned cls, struct mm_slab *s)
{
  return s && (char *) s > d->base && mm_slab_ok (d, mm_off (d, s), cls) && s->owner == id;
}

/* The slabs with room of CE, an entry of the thread with token ID that is
   gone: its current slabs and its avail lists.  The thread may have stopped
   in the middle of a change of its lists, whose links it writes without a
   lock: every slab is checked, and one that is missed stays the dead
   thread's until a free comes to it (mfree.c).  Its full lists wait for
   such frees too: following them would touch every full slab.  */
static void
entry_take_dead (struct mm_tce *ce, uint32_t id)
{
  struct mm_desc *d = ce->d;	/* NULL while entry_clear runs */
  if (!d || d == &no_desc || d->magic != MM_DESC_MAGIC || ce->gen != d->gen
      || !mm_writable (d) || d->damaged)
    return;
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    {
      if (owned_by_dead (d, id, c, ce->slab[c]))
	mm_slab_adopt (d, ce->slab[c]);
      /* Each slab taken loses its owner: a cycle ends at the first one
	 seen again.  */
      for (struct mm_slab *s = ce->avail[c]; owned_by_dead (d, id, c, s);)
	{
	  uint64_t next = s->next;
	  mm_slab_adopt (d, s);
	  s = next && mm_link_ok (d, next) ? (struct mm_slab *) mm_at (d, next) : NULL;
	}
    }
}

/* TC, of a thread that is gone, may have stopped in a free into a slab it
   had pinned (mfree.c), between the rfree and the rbits or after: count
   that slab's rfree anew, and drop the pins of threads that are gone.  */
static void
remote_count (struct mm_tc *tc)
{
  struct mm_slab *s = tc->remote;
  struct mm_desc *d = tc->cur ? tc->cur->d : NULL;
  if (!s || !d || d == &no_desc || d->magic != MM_DESC_MAGIC || !mm_writable (d)
      || (char *) s <= d->base || !mm_link_ok (d, mm_off (d, s)))
    return;
  uint32_t e = mm_pm_get (d, mm_off (d, s) >> MM_PAGE_SHIFT);
  if (!mm_slab_ok (d, mm_off (d, s), PM_SLAB_CLS (e)))
    return;
  uint32_t n = 0;
  const uint64_t *rb = mm_rbits (s);
  for (uint32_t w = 0; w < mm_classes[s->cls].words; w++)
    n += (uint32_t) __builtin_popcountll (rb[w]);
  s->rfree = n;
  s->ref = 0;
}

/* In a fork child, alone: the threads of the parent but the forking one are
   gone.  Their tokens are marked dead, their slabs with room taken back,
   their caches unmapped.  0; -1 if a thread was adding or removing its
   cache at the instant of the fork: the others' caches are then unknown,
   and the caller must find their slabs another way.  */
int
mm_tc_after_fork (void)
{
  struct mm_tc *self = mm_tc_self;
  int held = mm_lock_reset (&tc_lock);
  (void) mm_lock_reset (&tc_init_lock);	/* tc_init resumes where it stopped */
  /* The child is a new address space: its barrier is registered anew, or
     every window fences itself from now on.  */
  if (__atomic_load_n (&tc_ready, __ATOMIC_ACQUIRE) == 2 && mm_os_barrier_init ())
    __atomic_store_n (&mm_tc_fence, 1, __ATOMIC_SEQ_CST);
  mm_dead_max = next_id;
  mm_dead_self = self ? self->id : 0;
  for (struct mm_tc *tc = held ? NULL : tc_all, *next; tc; tc = next)
    {
      next = tc->all_next;
      if (tc == self)
	continue;
      remote_count (tc);
      for (int i = 0; i < MM_TC_ENTRIES; i++)
	entry_take_dead (&tc->entries[i], tc->id);
      mm_os_unmap (tc, sizeof *tc);
    }
  tc_all = self;
  if (self)
    self->all_next = self->all_prev = NULL;
  return held ? -1 : 0;
}
