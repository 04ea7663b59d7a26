/* handle.c -- heap descriptors as the caller holds them: handles.

   mmalloc_attach does not return the address of the heap's descriptor but
   a handle: an integer, carried in a pointer, that names a slot of the
   table of descriptors and the serial number of the attachment in that
   slot.  Every entry point that takes a descriptor decodes and checks it in
   one place, mm_desc_of, against the table, before anything is read
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
      int e = mm_os_alloc (CHUNK_SLOTS * sizeof *c, &p);
      if (e)
	return e;
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

/* The default heap, or NULL with ENOMEM if it cannot be made.  */
static __attribute__ ((noinline)) struct mm_desc *
default_heap (void)
{
  struct mm_desc *d = mm_default ();
  if (!d)
    errno = ENOMEM;
  return d;
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

/* The descriptor MD names: the one place where a caller's descriptor is
   decoded and checked.  NULL names the default heap (NULL with ENOMEM if it
   cannot be made).  Anything else must be the handle of an attached heap;
   if it is not, it is reported (no heap is known, so no abort function
   runs) and the result is NULL with errno MMALLOC_EBADDESC.  */
struct mm_desc *
mm_desc_of (void *md)
{
  if (!md)
    return default_heap ();
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
