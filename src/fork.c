/* fork.c -- the library's locks and heaps in the child of a fork.

   No lock is taken before fork and none is held across it, so a fork never
   waits for the library (nor the library for stdio, whose lock the C
   library takes around fork: a thread inside getline that allocates holds a
   stream's lock and waits for ours, while fflush (NULL) holds the list lock
   and waits for that stream).  The child starts from the memory of the
   instant of the fork, each other thread stopped wherever it was: that is
   the state a kill -9 leaves, and the crash model already makes a heap whole
   again from any such instant (recover.c).  So the child, alone, does what
   is needed, and no more:

   - every lock of the library is made anew; a heap one of whose locks was
     held at the instant of the fork may be caught in a half-made change,
     and is rebuilt as recovery rebuilds it (mm_recover: from the page map
     and the slab bitmaps, which every change keeps authoritative);
   - a heap none of whose locks was held is whole but for the slabs that
     threads gone in the child own (their lock-free paths may have stopped
     anywhere in them): those with room, each thread's current and avail
     slabs, found through the caches of the threads (tcache.c), are taken
     back with their counts made anew from their bitmaps; the full ones
     when a free comes to one (their owners' tokens are marked dead).  So,
     but for a heap caught under one of its locks or a thread caught
     starting or ending (its cache is then not found: each heap where
     others own slabs is walked), the child's work grows with the number of
     heaps and of threads, not with the size of the heaps;
   - a heap file is still the parent's, shared with it: it becomes read-only
     in the child (no fast frees, allocation fails with EROFS);
   - the pool of descriptors and the registry of files are made anew if a
     thread was changing them.

   The handler runs with every signal blocked, so that a handler that
   allocates never finds the work half done.  It is registered by the
   library itself (mm_fork_init, before the first heap exists), whichever
   library the program linked, and only once.  */

#include "mmprivate.h"

#include <errno.h>
#include <signal.h>

/* Slabs of D that the forking thread owns, as its cache entries count them.  */
static uint64_t
owned_by_self (struct mm_desc *d)
{
  struct mm_tc *tc = mm_tc_self;
  uint64_t n = 0;
  for (int i = 0; tc && i < MM_TC_ENTRIES; i++)
    if (tc->entries[i].d == d && tc->entries[i].gen == d->gen)
      n += tc->entries[i].nowned;
  return n;
}

/* Take back every slab of D owned by another thread than SELF (the forking
   thread's token, 0 if it has no cache): one pass over the page map.  */
static void
take_back_others (struct mm_desc *d, uint32_t self)
{
  struct mm_fmt_heap h = mm_fmt_of (d);
  struct mm_fmt_iter it;
  struct mm_fmt_thing t;
  mm_fmt_iter_init (&it, &h, MM_HDR_PAGES, 0);
  while (mm_fmt_iter_next (&it, &t))
    {
      struct mm_slab *s = mm_at (d, t.pg << MM_PAGE_SHIFT);
      if (!t.flaw && t.kind == PM_SLAB && s->owner && s->owner != self
	  && mm_slab_ok (d, t.pg << MM_PAGE_SHIFT, PM_SLAB_CLS (t.mark)))
	mm_slab_adopt (d, s);
    }
}

/* D, whose locks were all free at the instant of the fork (HELD: 0) or not,
   made usable in the child.  */
static void
heap_after_fork (struct mm_desc *d, int held)
{
  if (d->magic != MM_DESC_MAGIC || d->damaged)
    return;
  if (d->mode & MM_MODE_FILE)
    {				/* its slabs keep our owner: no fast frees */
      d->mode |= MM_MODE_RDONLY | MM_MODE_PARENT;
      d->free_bound = 0;
      __atomic_store_n (&d->gen, mm_new_gen (), __ATOMIC_RELEASE);
    }
  else if (held)
    {				/* every thread cache of it becomes stale */
      __atomic_store_n (&d->gen, mm_new_gen (), __ATOMIC_RELEASE);
      if (mm_recover (d) == 0)
	d->nowned = 0;
    }
}

static void
fork_child (void)
{
  sigset_t all, old;
  sigfillset (&all);
  pthread_sigmask (SIG_SETMASK, &all, &old);
  mm_lock_reset (&mm_default_lock);
  mm_lock_reset (&mm_trace_lock);
  int registry = mm_lock_reset (&mm_registry_lock);
  int pool = mm_lock_reset (&mm_pool_lock);
  struct mm_desc *d;
  for (uint32_t i = 0; (d = mm_handle_nth (i)); i++)
    {
      int held = 0;
      for (unsigned c = 0; c < MM_NCLASSES; c++)
	held |= mm_lock_reset (&d->class_lock[c]);
      held |= mm_lock_reset (&d->page_lock);
      heap_after_fork (d, held);
    }
  if (pool || registry)
    mm_desc_lists_rebuild (pool, registry);
  /* The slabs of the threads gone, through their caches; if those were
     being changed, by a walk of each heap where others own slabs.  */
  if (mm_tc_after_fork () < 0)
    for (uint32_t i = 0; (d = mm_handle_nth (i)); i++)
      if (d->magic == MM_DESC_MAGIC && !d->damaged && mm_writable (d)
	  && d->nowned != owned_by_self (d))
	take_back_others (d, mm_dead_self);
  pthread_sigmask (SIG_SETMASK, &old, NULL);
}

/* Once per process, before the first heap; never under a lock of ours, since
   pthread_atfork may allocate, through us in the drop-in malloc (then the
   flag, already set, stops the recursion).  */
static int registered;

void
mm_fork_init (void)
{
  if (MM_LIKELY (__atomic_load_n (&registered, __ATOMIC_ACQUIRE)))
    return;
  if (!__atomic_exchange_n (&registered, 1, __ATOMIC_ACQ_REL)
      && pthread_atfork (NULL, NULL, fork_child) != 0)
    __atomic_store_n (&registered, 0, __ATOMIC_RELEASE);	/* next time */
}
