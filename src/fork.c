/* fork.c -- fork: the library's locks and heaps in the child.

   The handlers that pthread_atfork runs (registered by malloc.c), and what
   they need from the other modules: every lock of the library taken in lock
   order, released, made anew; the heaps repaired in the child.  */

#include "mmprivate.h"

#define FORK_HELD_MAX 4096
static pthread_mutex_t *fork_held[FORK_HELD_MAX];
static int fork_nheld;

static void
fork_take (int (*lock) (pthread_mutex_t *), pthread_mutex_t *m)
{
  if (lock (m) && fork_nheld < FORK_HELD_MAX)
    fork_held[fork_nheld++] = m;
}

/* Every lock, in the library's lock order: the process-wide ones, then per
   heap its class locks and its page lock.  */
static void
mm_fork_lock (int (*lock) (pthread_mutex_t *))
{
  fork_nheld = 0;
  fork_take (lock, &mm_default_lock);
  fork_take (lock, &mm_trace_lock);
  fork_take (lock, &mm_registry_lock);
  fork_take (lock, &mm_pool_lock);
  for (struct mm_desc *d = mm_live; d; d = d->live_next)
    {
      for (unsigned c = 0; c < MM_NCLASSES; c++)
	fork_take (lock, &d->class_lock[c]);
      fork_take (lock, &d->page_lock);
    }
}

static void
mm_fork_unlock (void)
{
  while (fork_nheld > 0)
    pthread_mutex_unlock (fork_held[--fork_nheld]);
}

/* In the child of a fork: the other threads are gone, with their thread
   caches and whatever they were doing.  An anonymous heap is the child's own
   copy: rebuild it as recovery does (owners cleared, counts from the bitmaps,
   lists anew) and make every thread cache of it stale.  A heap file is still
   the parent's, shared with it: the child gets it read-only.  */
static void
mm_fork_repair (void)
{
  for (struct mm_desc *d = mm_live; d; d = d->live_next)
    {
      if (d->magic != MM_DESC_MAGIC)
	continue;
      __atomic_store_n (&d->gen, mm_new_gen (), __ATOMIC_RELEASE);
      if (d->mode & MM_MODE_FILE)
	{			/* its slabs keep our owner: no fast frees */
	  d->mode |= MM_MODE_RDONLY;
	  d->limit = 0;
	}
      else if (!d->damaged && mm_recover (d) == 0)
	d->nowned = 0;
    }
}

/* In the child, which has one thread: every lock anew, taken or not.  */
static void
mm_fork_reinit (void)
{
  pthread_mutex_init (&mm_default_lock, NULL);
  pthread_mutex_init (&mm_trace_lock, NULL);
  pthread_mutex_init (&mm_registry_lock, NULL);
  pthread_mutex_init (&mm_pool_lock, NULL);
  for (struct mm_desc *d = mm_live; d; d = d->live_next)
    {
      for (unsigned c = 0; c < MM_NCLASSES; c++)
	pthread_mutex_init (&d->class_lock[c], NULL);
      pthread_mutex_init (&d->page_lock, NULL);
    }
  fork_nheld = 0;
}

/* Before fork every lock of every heap is taken, so that the child finds no
   half-made change, and the child makes them anew.  A fork from a signal
   handler that interrupted this thread inside the library must not wait for
   locks its own thread holds: then each lock is only tried, and the child
   repairs what may be half made.  The child repairs anyway what the other
   threads, gone in it, left: their owned slabs and counts (mm_fork_repair).  */

static int
lock_wait (pthread_mutex_t *m)
{
  pthread_mutex_lock (m);
  return 1;
}

static int
lock_try (pthread_mutex_t *m)
{
  return pthread_mutex_trylock (m) == 0;
}

void
mm_fork_prepare (void)
{
  mm_fork_lock (mm_locks_held ? lock_try : lock_wait);
}

void
mm_fork_parent (void)
{
  mm_fork_unlock ();
}

void
mm_fork_child (void)
{
  mm_fork_reinit ();
  mm_locks_held = 0;
  mm_fork_repair ();
}
