/* region.c -- a heap's address space: where it goes and what it holds.

   A heap reserves the start of its span before anything is mapped, only
   where the kernel's answer to a hint shows the range free, so it never
   maps over memory that it does not own and never moves.  */

#include "mmprivate.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

/* --- Address space ------------------------------------------------------

   A heap's span is the range it may grow into; only its first `held' bytes
   are reserved (PROT_NONE where not in use), about twice what the heap uses
   (resv_want), so that RLIMIT_AS counts what heaps hold and a process can
   lower its limit after making them.  The rest of the span is kept free by
   placing heaps where nothing else goes, checked free when attaching where
   the system lets us map that much, and reserved when growth reaches it
   (mm_region_extend), which fails with ENOMEM when the limit says so or
   something else was mapped there in the meantime: never over it.  A heap
   that shrank, and holds more than twice what it would reserve at its new
   size, gives back all beyond that (mm_region_trim).  */

/* Round N up to a multiple of the system's page size.  */
static uint64_t
sys_round (uint64_t n)
{
  uint64_t sys = mm_os_pagesize ();
  return (n + sys - 1) / sys * sys;
}

/* The bytes to hold for a heap of SPAN that uses USED.  */
static uint64_t
resv_want (uint64_t used, uint64_t span)
{
  uint64_t more = used < MM_RESV_INIT ? MM_RESV_INIT : used;
  if (more > MM_RESV_STEP)
    more = MM_RESV_STEP;
  uint64_t want = sys_round (used + more);
  return want < span ? want : span;
}

/* Hold [*AT, *AT + LEN) (*AT NULL: wherever the kernel puts it), having
   checked that all SPAN bytes from there are free.  Where the system
   refuses that much address space (ENOMEM under RLIMIT_AS, EINVAL from
   tools such as valgrind that limit it), hold LEN bytes unchecked beyond,
   or if that is refused too, MIN.  MIN <= LEN <= SPAN.  Sets *AT and
   *HELD; 0, EEXIST when the range is taken, or an errno value.  */
static int
hold (char **at, uint64_t span, uint64_t len, uint64_t min, uint64_t *held)
{
  uint64_t tries[3] = { span, len, min };
  int err = ENOMEM;
  for (int i = 0; i < 3; i++)
    {
      if (i && tries[i] >= tries[i - 1])
	continue;
      void *p;
      err = mm_os_reserve (*at, (size_t) tries[i], *at != NULL, &p);
      if (err == ENOMEM || err == EINVAL)
	continue;
      if (err)
	return err;
      *at = p;
      if (tries[i] > len)
	mm_os_unmap ((char *) p + len, (size_t) (tries[i] - len));
      *held = tries[i] < len ? tries[i] : len;
      return 0;
    }
  return err;
}

/* Reserve the address space of the heap in D at WANT, whose span is SPAN and
   which uses USED bytes now.  */
int
mm_region_hold (struct mm_desc *d, char *want, uint64_t span, uint64_t used)
{
  int err = hold (&want, span, resv_want (used, span), sys_round (used), &d->held);
  if (err)
    return err == EEXIST ? MMALLOC_EADDRINUSE : err;
  d->base = want;
  d->hdr = (struct mm_header *) (void *) want;
  d->span = span;
  return 0;
}

int
mm_region_extend (struct mm_desc *d, uint64_t end)
{
  if (end <= d->held)
    return 0;
  if (end > d->span)
    return ENOMEM;
  uint64_t want = resv_want (end, d->span), got;
  char *at = d->base + d->held;
  int err = hold (&at, want - d->held, want - d->held, sys_round (end) - d->held, &got);
  if (err)
    return err == EEXIST ? ENOMEM : err;	/* something else lives above */
  d->held += got;
  return 0;
}

void
mm_region_trim (struct mm_desc *d, uint64_t end)
{
  uint64_t want = resv_want (end, d->span);
  if (d->held / 2 > want && mm_os_unmap (d->base + want, (size_t) (d->held - want)) == 0)
    d->held = want;
}

/* A pseudo-random number, different in each call and each process.  */
static uint64_t
entropy (void)
{
  static uint64_t counter;
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  uint64_t x = (uint64_t) ts.tv_nsec ^ ((uint64_t) ts.tv_sec << 30)
    ^ ((uint64_t) getpid () << 40) ^ (uint64_t) (uintptr_t) &ts
    ^ __atomic_add_fetch (&counter, 0x9e3779b97f4a7c15ULL, __ATOMIC_RELAXED);
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

/* Zones where heaps without a base go on 64-bit machines, tried in order, at
   a random slot (a multiple of the span from the zone's start), so that a
   later process finds a heap file's range free too.  Linux leaves both
   alone: it maps top-down from below the stack (near 128 TiB on x86-64, 256
   TiB on aarch64 with 48-bit addresses), puts position-independent programs
   at two thirds of the address space, and non-PIE programs and their brk
   heap near 4 MiB.
   - 17 to 80 TiB: above AddressSanitizer's shadow on x86-64 (which ends
     near 16 TiB).  ThreadSanitizer and MemorySanitizer keep shadow or
     metadata there on x86-64, and ASan on aarch64 up to about 32 TiB: their
     mmap interceptors drop a hint there, so those slots look taken.
   - 64 to 512 GiB: inside the low application range of TSan (below 512 GiB
     in the older layout, 2 TiB in the newer) and of MSan (below 1 TiB).
   Then wherever the kernel puts the heap.  */
static const struct
{
  uint64_t lo, hi;
} zones[] = {
  { 0x110000000000ULL, 0x500000000000ULL },
  { 0x1000000000ULL, 0x8000000000ULL },
};
#define ZONE_TRIES 16		/* slots tried per zone */

/* Find room for a new heap of SPAN bytes and hold it as mm_region_hold does.  */
int
mm_region_place (struct mm_desc *d, uint64_t span)
{
  uint64_t used = MM_HDR_PAGES << MM_PAGE_SHIFT;
  for (size_t z = 0; sizeof (void *) >= 8 && z < sizeof zones / sizeof zones[0]; z++)
    {
      uint64_t slots = (zones[z].hi - zones[z].lo) / span;
      for (int i = 0; slots && i < ZONE_TRIES; i++)
	{
	  uint64_t at = zones[z].lo + (entropy () % slots) * span;
	  int err = mm_region_hold (d, (char *) (uintptr_t) at, span, used);
	  if (err != MMALLOC_EADDRINUSE)
	    return err;
	}
    }
  return mm_region_hold (d, NULL, span, used);
}
