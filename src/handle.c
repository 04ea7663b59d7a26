/* handle.c -- descriptors: the table of every descriptor made, the handles
   that name them, the pool of detached ones, the list of attached heaps and
   the registry of attached files.

   mmalloc_attach does not return the address of the heap's descriptor but
   a handle: an integer, carried in a pointer, that names a slot of the
   table of descriptors and the serial number of the attachment in that
   slot.  Every entry point that takes a descriptor decodes and checks it in
   one place, mm_handle_desc (through mm_desc_of), against the table, before anything is read
   through it.  So a value that is no handle (a small integer, a pointer
   into any memory, a heap's base address, a misaligned value) and the
   handle of a heap that was detached are refused, also when the slot holds
   another heap now, and no memory but the library's own is read.

   Descriptors are never unmapped (thread caches may name them, tcache.c),
   so the table only grows: a slot keeps its descriptor for the life of the
   process, and reusing the descriptor reuses the slot with the next serial
   number.  A slot that has issued its last serial number is retired (its
   descriptor is never reused), so that no handle is issued twice.

   A handle's 4 low bits are HANDLE_TAG, odd, so that no pointer to an
   aligned object is a handle; then the slot; then the serial number, 40
   bits on 64-bit machines (18 on 32-bit ones).  The default heap has no
   handle: only NULL names it.  */

#include "mmprivate.h"

#include <errno.h>

#define HANDLE_TAG ((uintptr_t) 0xb)
#define HANDLE_TAG_MASK ((uintptr_t) 0xf)
#define SLOT_SHIFT 4
#define SLOT_BITS MM_HANDLE_SLOT_BITS
#define SLOTS_MAX ((uint32_t) 1 << SLOT_BITS)
#define SERIAL_SHIFT (SLOT_SHIFT + SLOT_BITS)
#define SERIAL_MAX MM_HANDLE_SERIAL_MAX
_Static_assert (SERIAL_MAX == UINTPTR_MAX >> SERIAL_SHIFT, "the layout of mmprivate.h");

/* The table, in chunks made when first needed and never freed.  A slot's
   entry is written once, before nslots covers it (release), so a reader
   that loads nslots (acquire) may read the entries below it.  */
#define CHUNK_SLOTS ((uint32_t) 1024)
static struct mm_desc **chunks[SLOTS_MAX / CHUNK_SLOTS];
static uint32_t nslots;

int
mm_handle_slot (struct mm_desc *d)
{
  uint32_t n = nslots;
  if (n == SLOTS_MAX)
    return ENOMEM;
  struct mm_desc **c = chunks[n / CHUNK_SLOTS];
  if (!c)
    {
      void *p;
      int err = mm_os_alloc (CHUNK_SLOTS * sizeof *c, &p);
      if (err)
	return err;
      chunks[n / CHUNK_SLOTS] = c = p;
    }
  c[n % CHUNK_SLOTS] = d;
  d->slot = n;
  __atomic_store_n (&nslots, n + 1, __ATOMIC_RELEASE);
  return 0;
}

struct mm_desc *
mm_handle_nth (uint32_t i)
{
  if (i >= __atomic_load_n (&nslots, __ATOMIC_ACQUIRE))
    return NULL;
  return chunks[i / CHUNK_SLOTS][i % CHUNK_SLOTS];
}

void *
mm_handle_issue (struct mm_desc *d)
{
  uintptr_t serial = d->serial + 1;	/* a spent slot is not reused */
  __atomic_store_n (&d->serial, serial, __ATOMIC_RELAXED);
  uintptr_t h = serial << SERIAL_SHIFT | (uintptr_t) d->slot << SLOT_SHIFT | HANDLE_TAG;
  __atomic_store_n (&d->handle, h, __ATOMIC_RELEASE);
  return (void *) h;
}

void
mm_handle_revoke (struct mm_desc *d)
{
  __atomic_store_n (&d->handle, 0, __ATOMIC_RELEASE);
}

int
mm_handle_spent (const struct mm_desc *d)
{
  return d->serial == SERIAL_MAX;
}

/* Is MD the base address of an attached heap?  GNU mmalloc kept its
   descriptor at the heap's base, so old code may pass one for the other.  */
static int
is_heap_base (const void *md)
{
  int found = 0;
  mm_lock (&mm_pool_lock);
  for (struct mm_desc *d = mm_live; d && !found; d = d->live_next)
    found = __atomic_load_n (&d->handle, __ATOMIC_ACQUIRE) && d->base == md;
  mm_unlock (&mm_pool_lock);
  return found;
}

/* MD, not NULL, is no attached heap's handle: say what it is, if we can.  */
static __attribute__ ((noinline, cold)) struct mm_desc *
refuse (void *md)
{
  uintptr_t h = (uintptr_t) md, serial = h >> SERIAL_SHIFT;
  uint32_t slot = (uint32_t) (h >> SLOT_SHIFT) & (SLOTS_MAX - 1);
  const char *why = "invalid heap descriptor";
  if ((h & HANDLE_TAG_MASK) == HANDLE_TAG
      && slot < __atomic_load_n (&nslots, __ATOMIC_ACQUIRE))
    {
      if (serial && serial <= __atomic_load_n (&chunks[slot / CHUNK_SLOTS][slot % CHUNK_SLOTS]->serial,
					       __ATOMIC_RELAXED))
	why = "invalid heap descriptor (its heap was detached)";
    }
  else if (is_heap_base (md))
    why = "invalid heap descriptor (a heap's base address, not its descriptor)";
  mm_bad_desc (why, md);
  return NULL;
}

/* Files attached in this process; a second attach of one is refused.  */
pthread_mutex_t mm_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mm_desc *registry;

/* Descriptors are kept for reuse, never unmapped: a thread's cache may still
   name one after its heap is detached, and must be able to see that it is
   stale (its generation differs).  Their locks are initialized once.  The
   caller never holds a descriptor's address but a handle (handle.c), new
   at each attach, so reuse is invisible to it.  */
pthread_mutex_t mm_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mm_desc *pool;	/* detached descriptors */
struct mm_desc *mm_live;	/* attached ones (and attaching) */

/* Put D on the list of attached heaps (pool lock held).  */
static void
live_push (struct mm_desc *d)
{
  d->live_prev = NULL;
  d->live_next = mm_live;
  if (mm_live)
    mm_live->live_prev = d;
  mm_live = d;
}

/* A new process descriptor, or NULL with errno set.  */
struct mm_desc *
mm_desc_new (void)
{
  mm_an_init ();		/* before the first block is handed out */
  mm_lock (&mm_pool_lock);
  struct mm_desc *d = pool;
  if (d)
    pool = d->next;
  mm_unlock (&mm_pool_lock);
  if (!d)
    {
      void *p;
      int rc = mm_os_alloc (sizeof (struct mm_desc), &p);
      if (rc)
	{
	  errno = rc;
	  return NULL;
	}
      d = p;
      pthread_mutex_init (&d->page_lock, NULL);
      for (unsigned c = 0; c < MM_NCLASSES; c++)
	pthread_mutex_init (&d->class_lock[c], NULL);
      mm_lock (&mm_pool_lock);
      rc = mm_handle_slot (d);
      mm_unlock (&mm_pool_lock);
      if (rc)
	{
	  mm_os_unmap (d, sizeof (struct mm_desc));
	  errno = rc;
	  return NULL;
	}
    }
  d->magic = 0;
  d->mode = 0;
  d->base = NULL;
  d->hdr = NULL;
  d->span = 0;
  d->held = 0;
  /* limit and damaged atomically: stale thread caches of an earlier heap
     on this descriptor may read them (mfree's fast path, mm_tc_entry).  */
  __atomic_store_n (&d->free_bound, 0, __ATOMIC_RELEASE);
  d->nowned = 0;
  d->resv_lo = d->resv_hi = 0;
  d->trim_min = d->trim_keep = 0;
  d->decay_ms = __atomic_load_n (&mm_decay_default, __ATOMIC_RELAXED);
  d->decay_last = 0;		/* the first look counts the dirty pages */
  d->dirty = 0;
  d->moves[0] = d->moves[1] = d->moves[2] = 0;
  d->stale_above = 1;		/* until mm_pages_setup makes a new region */
  d->fd = -1;
  d->err = 0;
  __atomic_store_n (&d->damaged, 0, __ATOMIC_RELAXED);
  d->abortfunc = NULL;
  d->next = NULL;
  mm_quar_reset (d);
  __atomic_store_n (&d->gen, mm_new_gen (), __ATOMIC_RELEASE);
  mm_lock (&mm_pool_lock);
  live_push (d);
  mm_unlock (&mm_pool_lock);
  return d;
}

void
mm_desc_free (struct mm_desc *d)
{
  mm_handle_revoke (d);
  d->magic = 0;
  __atomic_store_n (&d->free_bound, 0, __ATOMIC_RELEASE);	/* no fast frees */
  __atomic_store_n (&d->gen, 0, __ATOMIC_RELEASE);
  mm_lock (&mm_pool_lock);
  if (d->live_prev)
    d->live_prev->live_next = d->live_next;
  else
    mm_live = d->live_next;
  if (d->live_next)
    d->live_next->live_prev = d->live_prev;
  if (!mm_handle_spent (d))
    {
      d->next = pool;
      pool = d;
    }
  mm_unlock (&mm_pool_lock);
}

/* In a fork child whose pool (with the list of attached heaps) or registry
   was being changed at the instant of the fork, by a thread gone in the
   child: make them anew from the table of every descriptor made (handle.c).
   The pool is every descriptor not attached (one that was being attached or
   detached is lost with its thread's call); the registry, every attached
   file.  */
void
mm_desc_lists_rebuild (int remake_pool, int remake_registry)
{
  if (remake_pool)
    pool = mm_live = NULL;
  if (remake_registry)
    registry = NULL;
  struct mm_desc *d;
  for (uint32_t i = 0; (d = mm_handle_nth (i)); i++)
    if (d->magic != MM_DESC_MAGIC && remake_pool && !mm_handle_spent (d))
      {
	d->next = pool;
	pool = d;
      }
    else if (d->magic == MM_DESC_MAGIC)
      {
	if (remake_pool)
	  live_push (d);
	if ((d->mode & MM_MODE_FILE) && remake_registry)
	  {
	    d->next = registry;
	    registry = d;
	  }
      }
}

int
mm_registry_add (struct mm_desc *d)
{
  mm_lock (&mm_registry_lock);
  for (struct mm_desc *r = registry; r; r = r->next)
    if (r->dev == d->dev && r->ino == d->ino)
      {
	mm_unlock (&mm_registry_lock);
	return MMALLOC_ELOCKED;
      }
  d->next = registry;
  registry = d;
  mm_unlock (&mm_registry_lock);
  return 0;
}

void
mm_registry_remove (struct mm_desc *d)
{
  mm_lock (&mm_registry_lock);
  for (struct mm_desc **p = &registry; *p; p = &(*p)->next)
    if (*p == d)
      {
	*p = d->next;
	break;
      }
  mm_unlock (&mm_registry_lock);
}

/* The descriptor MD, not NULL, names: the one place where a caller's handle
   is decoded and checked against the table.  If MD is no attached heap's
   handle, it is reported (no heap is known, so no abort function runs) and
   the result is NULL with errno MMALLOC_EBADDESC.  */
struct mm_desc *
mm_handle_desc (void *md)
{
  uintptr_t h = (uintptr_t) md;
  uint32_t slot = (uint32_t) (h >> SLOT_SHIFT) & (SLOTS_MAX - 1);
  if (MM_LIKELY ((h & HANDLE_TAG_MASK) == HANDLE_TAG
		 && slot < __atomic_load_n (&nslots, __ATOMIC_ACQUIRE)))
    {
      struct mm_desc *d = chunks[slot / CHUNK_SLOTS][slot % CHUNK_SLOTS];
      if (MM_LIKELY (__atomic_load_n (&d->handle, __ATOMIC_ACQUIRE) == h))
	return d;
    }
  return refuse (md);
}
