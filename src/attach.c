/* attach.c -- creating and attaching heaps: the region layer.

   Owns the header's validation, the choice of base addresses and the address
   reservation.  A heap reserves the start of its span before anything is
   mapped, only where the kernel's answer to a hint shows the range free, so
   it never maps over memory that it does not own and never moves.  A file
   is refused with a distinct error for each way it can be wrong, before any
   of it is mapped.  */

#include "mmprivate.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Files attached in this process; a second attach of one is refused.  */
pthread_mutex_t mm_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mm_desc *registry;

/* FNV-1a of the fixed fields of H, its version read as MM_FORMAT_V1 (the
   version rises in place: see mm_format_need).  */
uint64_t
mm_hdr_sum (const struct mm_header *h)
{
  unsigned char p[offsetof (struct mm_header, hdr_sum)];
  uint32_t v1 = MM_FORMAT_V1;
  memcpy (p, h, sizeof p);
  memcpy (p + offsetof (struct mm_header, version), &v1, sizeof v1);
  uint64_t s = 14695981039346656037ULL;
  for (size_t i = 0; i < offsetof (struct mm_header, hdr_sum); i++)
    s = (s ^ p[i]) * 1099511628211ULL;
  return s;
}

/* A fingerprint of the page-map directory DIR, kept in the header: on a
   clean file it stands for checking every leaf (which would cost a fault
   per leaf at each attach).  FNV-1a over every entry; the zeros after the
   last entry in use (nearly all of them) only multiply by the prime, so
   they are folded into one power of it.  */
uint64_t
mm_dir_sum_at (const uint32_t *dir)
{
  uint64_t n = mm_dir_used (dir), s = 14695981039346656037ULL, p = 1099511628211ULL;
  for (uint64_t w = 0; w < n; w++)
    s = (s ^ dir[w]) * p;
  for (uint64_t k = MM_DIR_ENTRIES - n; k; k >>= 1, p *= p)
    if (k & 1)
      s *= p;
  return s;
}

uint64_t
mm_dir_sum (const struct mm_desc *d)
{
  return mm_dir_sum_at ((const uint32_t *) (d->base + MM_PAGE));
}

/* 0 if H describes a heap this library can use whose file has FILE_SIZE bytes
   (0: unknown), else the MMALLOC_E* code naming what is wrong.  */
int
mm_header_validate (const struct mm_header *h, uint64_t file_size)
{
  if (memcmp (h->magic, MM_MAGIC, 8) != 0)
    return MMALLOC_ENOTHEAP;
  if (h->byte_order != MM_BYTE_ORDER)
    return h->byte_order == __builtin_bswap32 (MM_BYTE_ORDER)
      ? MMALLOC_EMACHINE : MMALLOC_ECORRUPT;
  if (h->version < MM_FORMAT_V1 || h->version > MM_FORMAT_VERSION)
    return MMALLOC_EVERSION;
  if (h->word_size != sizeof (void *) || h->page_size != MM_PAGE)
    return MMALLOC_EMACHINE;
  if (h->hdr_sum != mm_hdr_sum (h))
    return MMALLOC_ECORRUPT;
  if (h->hdr_size != sizeof (struct mm_header) || h->hdr_pages != MM_HDR_PAGES
      || h->nclasses != MM_NCLASSES || h->class_sum != mm_classes_sum ())
    return MMALLOC_EVERSION;
  if (h->base % MM_PAGE || h->span % MM_PAGE || h->span > MM_SPAN_MAX
      || h->base + h->span < h->base || (uintptr_t) h->base != h->base)
    return MMALLOC_ECORRUPT;
  if (h->top < MM_HDR_PAGES + MM_LEAF_PAGES || h->top > h->span >> MM_PAGE_SHIFT)
    return MMALLOC_ECORRUPT;
  if (file_size && h->top << MM_PAGE_SHIFT > file_size)
    return MMALLOC_ETRUNCATED;
  return 0;
}

/* Checks that need the mapped region, before anything is written there:
   the directory, the page map and the list heads.  */
static int
region_validate (struct mm_desc *d)
{
  struct mm_header *h = d->hdr;
  uint64_t top = h->top;
  for (unsigned b = 0; b < MM_NBINS; b++)
    if (h->bin_head[b] % MM_PAGE || h->bin_head[b] >= top << MM_PAGE_SHIFT)
      return MMALLOC_ECORRUPT;
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    for (int k = 0; k < 2; k++)
      if (h->cls[c].partial[k] % MM_PAGE || h->cls[c].partial[k] >= top << MM_PAGE_SHIFT)
	return MMALLOC_ECORRUPT;
  /* A file that was not detached may be caught in the middle of an update
     that recovery completes; the rest holds only for a clean one.  */
  int clean = h->state == MM_CLEAN;
  int e = mm_dir_validate (d, !clean);
  if (e)
    return e;
  if (clean && h->dir_sum != mm_dir_sum (d))
    return MMALLOC_ECORRUPT;
  /* Every leaf outside every block; on a clean file every page below `top'
     in exactly one block, slab, run or leaf: growth, recovery and the lists
     of free runs and slabs rely on it to write only where they may.  The
     walk reads the page map (a thousandth of the heap), no block.  A dirty
     file is walked as recovery will walk it.  */
  return mm_pages_walk (d, clean, NULL, NULL);
}

/* Descriptors are kept for reuse, never unmapped: a thread's cache may still
   name one after its heap is detached, and must be able to see that it is
   stale (its generation differs).  Their locks are initialized once.  The
   caller never holds a descriptor's address but a handle (handle.c), new
   at each attach, so reuse is invisible to it.  */
pthread_mutex_t mm_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mm_desc *pool;	/* detached descriptors */
struct mm_desc *mm_live;	/* attached ones (and attaching): handle.c */

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
static struct mm_desc *
desc_new (void)
{
  mm_lock (&mm_pool_lock);
  struct mm_desc *d = pool;
  if (d)
    pool = d->next;
  mm_unlock (&mm_pool_lock);
  if (!d)
    {
      void *p;
      int e = mm_os_alloc (sizeof (struct mm_desc), &p);
      if (e)
	{
	  errno = e;
	  return NULL;
	}
      d = p;
      pthread_mutex_init (&d->page_lock, NULL);
      for (unsigned c = 0; c < MM_NCLASSES; c++)
	pthread_mutex_init (&d->class_lock[c], NULL);
      mm_lock (&mm_pool_lock);
      e = mm_handle_slot (d);
      mm_unlock (&mm_pool_lock);
      if (e)
	{
	  mm_os_unmap (d, sizeof (struct mm_desc));
	  errno = e;
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
  __atomic_store_n (&d->limit, 0, __ATOMIC_RELEASE);
  d->nowned = 0;
  d->resv_lo = d->resv_hi = 0;
  d->trim_min = d->trim_keep = 0;
  d->decay_ms = __atomic_load_n (&mm_decay_default, __ATOMIC_RELAXED);
  d->decay_last = 0;		/* the first look counts the dirty pages */
  d->dirty = 0;
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
  __atomic_store_n (&d->limit, 0, __ATOMIC_RELEASE);	/* no fast frees */
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

/* Undo a failed attach: unmap, close, free; errno = ERR.  */
static void *
attach_fail (struct mm_desc *d, int err)
{
  if (d->base)
    mm_os_unmap (d->base, (size_t) d->held);
  mm_os_close (d->fd);
  mm_desc_free (d);
  errno = err;
  return NULL;
}

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
  int e = ENOMEM;
  for (int i = 0; i < 3; i++)
    {
      if (i && tries[i] >= tries[i - 1])
	continue;
      void *p;
      e = mm_os_reserve (*at, (size_t) tries[i], *at != NULL, &p);
      if (e == ENOMEM || e == EINVAL)
	continue;
      if (e)
	return e;
      *at = p;
      if (tries[i] > len)
	mm_os_unmap ((char *) p + len, (size_t) (tries[i] - len));
      *held = tries[i] < len ? tries[i] : len;
      return 0;
    }
  return e;
}

/* Reserve the address space of the heap in D at WANT, whose span is SPAN and
   which uses USED bytes now.  */
static int
hold_heap (struct mm_desc *d, char *want, uint64_t span, uint64_t used)
{
  int e = hold (&want, span, resv_want (used, span), sys_round (used), &d->held);
  if (e)
    return e == EEXIST ? MMALLOC_EADDRINUSE : e;
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
  int e = hold (&at, want - d->held, want - d->held, sys_round (end) - d->held, &got);
  if (e)
    return e == EEXIST ? ENOMEM : e;	/* something else lives above */
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

/* Find room for a new heap of SPAN bytes and hold it as hold_heap does.  */
static int
place (struct mm_desc *d, uint64_t span)
{
  uint64_t used = MM_HDR_PAGES << MM_PAGE_SHIFT;
  for (size_t z = 0; sizeof (void *) >= 8 && z < sizeof zones / sizeof zones[0]; z++)
    {
      uint64_t slots = (zones[z].hi - zones[z].lo) / span;
      for (int i = 0; slots && i < ZONE_TRIES; i++)
	{
	  uint64_t at = zones[z].lo + (entropy () % slots) * span;
	  int e = hold_heap (d, (char *) (uintptr_t) at, span, used);
	  if (e != MMALLOC_EADDRINUSE)
	    return e;
	}
    }
  return hold_heap (d, NULL, span, used);
}

void *
mmalloc_findbase (int size)
{
  if (size < 0)
    {
      errno = EINVAL;
      return NULL;
    }
  uint64_t len = MM_SPAN_MAX;
  if ((uint64_t) size > len)
    len = ((uint64_t) size + MM_PAGE - 1) & ~(uint64_t) (MM_PAGE - 1);
  struct mm_desc probe = { .held = 0 };
  int e = place (&probe, len);
  if (e)
    {
      errno = e == MMALLOC_EADDRINUSE ? ENOMEM : e;
      return NULL;
    }
  mm_os_unmap (probe.base, (size_t) probe.held);
  return probe.base;
}

/* Map the first PAGES pages of the region (and grow the file to hold them).  */
static int
map_head (struct mm_desc *d, uint64_t pages, int grow)
{
  size_t len = (size_t) (pages << MM_PAGE_SHIFT);
  if (d->mode & MM_MODE_VIEW)
    return mm_os_map_private (d->base, len, d->fd, 0);
  if (!(d->mode & MM_MODE_FILE))
    return mm_os_commit (d->base, len);
  int e = grow ? mm_os_file_grow (d->fd, 0, len) : 0;
  return e ? e : mm_os_map_file (d->base, len, d->fd, 0, d->mode & MM_MODE_RDONLY);
}

/* Lay out a new heap in D, whose span is reserved.  */
static int
create (struct mm_desc *d)
{
  int e = map_head (d, MM_HDR_PAGES, 1);
  if (e)
    return e;
  struct mm_header *h = d->hdr;
  memset (h, 0, MM_HDR_PAGES * MM_PAGE);
  memcpy (h->magic, MM_MAGIC, 8);
  h->byte_order = MM_BYTE_ORDER;
  h->version = MM_FORMAT_V1;	/* until it holds newer records */
  h->hdr_size = sizeof (struct mm_header);
  h->word_size = sizeof (void *);
  h->page_size = MM_PAGE;
  h->hdr_pages = MM_HDR_PAGES;
  h->nclasses = MM_NCLASSES;
  h->class_sum = mm_classes_sum ();
  h->base = (uint64_t) (uintptr_t) d->base;
  h->span = d->span;
  h->hdr_sum = mm_hdr_sum (h);
  /* Until the layout is complete the file does not look like a heap.  */
  h->magic[0] = 0;
  h->state = MM_DIRTY;
  mm_set_top (d, MM_HDR_PAGES);
  if (mm_pages_setup (d) < 0)
    return errno;
  h->dir_sum = mm_dir_sum (d);
  __atomic_store_n (&h->magic[0], MM_MAGIC[0], __ATOMIC_RELEASE);
  return 0;
}

/* Reserve the address space of a new heap: at BASEADDR, or where place ()
   finds room.  */
static int
new_span (struct mm_desc *d, void *baseaddr)
{
  if (!baseaddr)
    return place (d, MM_SPAN_MAX);
  return hold_heap (d, baseaddr, MM_SPAN_MAX, MM_HDR_PAGES << MM_PAGE_SHIFT);
}

static void *
attach_anon (void *baseaddr)
{
  struct mm_desc *d = desc_new ();
  if (!d)
    return NULL;
  int e = new_span (d, baseaddr);
  if (!e)
    e = create (d);
  if (e)
    return attach_fail (d, e);
  d->magic = MM_DESC_MAGIC;
  return d;
}

/* Map the existing heap file of D, whose descriptor and size are known.  */
static int
open_file (struct mm_desc *d, uint64_t size)
{
  union
  {
    struct mm_header h;
    char page[MM_PAGE];
  } buf;
  memset (&buf, 0, sizeof buf);
  size_t want = size < sizeof buf ? (size_t) size : sizeof buf;
  int e = mm_os_read (d->fd, &buf, want, 0);
  if (e)
    return e;
  if (want < 8 || memcmp (buf.h.magic, MM_MAGIC, 8))
    return MMALLOC_ENOTHEAP;
  if (want < sizeof (struct mm_header))
    return MMALLOC_ETRUNCATED;
  e = mm_header_validate (&buf.h, size);
  if (e)
    return e;
  e = hold_heap (d, (char *) (uintptr_t) buf.h.base, buf.h.span, buf.h.top << MM_PAGE_SHIFT);
  if (e)
    return e;
  e = map_head (d, buf.h.top, 0);
  if (e)
    return e;
  /* The file may have changed since we read it: validate the mapped copy.  */
  e = mm_header_validate (d->hdr, size);
  if (!e && d->hdr->top != buf.h.top)
    e = MMALLOC_ECORRUPT;
  if (!e)
    e = region_validate (d);
  return e;
}

static int
registry_add (struct mm_desc *d)
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

static void *
attach_file (int fd, void *baseaddr)
{
  struct mm_desc *d = desc_new ();
  if (!d)
    return NULL;
  d->mode = MM_MODE_FILE;
  int rdonly = 0;
  uint64_t size = 0;
  int e = mm_os_dup (fd, &d->fd, &rdonly);
  if (e)
    return attach_fail (d, e);
  if (rdonly)
    d->mode |= MM_MODE_RDONLY;
  e = mm_os_file_size (d->fd, &size, &d->dev, &d->ino);
  if (e)
    return attach_fail (d, e);
  e = mm_os_lock (d->fd, !rdonly);
  if (e)
    return attach_fail (d, e == EWOULDBLOCK ? MMALLOC_ELOCKED : e);
  e = registry_add (d);
  if (e)
    return attach_fail (d, e);
  if (size == 0 && rdonly)
    e = EROFS;
  else if (size == 0)
    {
      e = new_span (d, baseaddr);
      if (!e)
	e = create (d);
    }
  else
    {
      e = open_file (d, size);
      /* Not detached cleanly: a process died with it attached.  */
      if (!e && !rdonly && d->hdr->state != MM_CLEAN)
	e = mm_recover (d);
    }
  if (!e && !rdonly)
    {
      __atomic_store_n (&d->hdr->state, MM_DIRTY, __ATOMIC_RELEASE);
      MM_KP ();
    }
  if (e)
    {
      mm_registry_remove (d);
      return attach_fail (d, e);
    }
  /* Only now may the fast frees run (a thread's stale entry may name this
     descriptor): never on a heap we may not write, whose slabs may name
     owners, ours by chance, from a process that died.  */
  mm_set_limit (d, rdonly ? 0 : d->hdr->top << MM_PAGE_SHIFT);
  d->magic = MM_DESC_MAGIC;
  return d;
}

/* A private view of the heap file open on FD (MMALLOC_INSPECT): mapped
   copy-on-write, so that nothing this process does reaches the file; no
   lock, so that a writer neither stops it nor is stopped by it; FD is not
   kept.  A file that was not detached is recovered in the view alone.  */
static void *
attach_view (int fd)
{
  struct mm_desc *d = desc_new ();
  if (!d)
    return NULL;
  d->mode = MM_MODE_VIEW | MM_MODE_RDONLY;
  d->fd = fd;			/* the caller's: never closed here */
  uint64_t size = 0;
  int e = mm_os_readable (fd);
  if (!e)
    e = mm_os_file_size (fd, &size, &d->dev, &d->ino);
  if (!e)
    e = size ? open_file (d, size) : MMALLOC_ENOTHEAP;
  if (!e && d->hdr->state != MM_CLEAN)
    e = mm_recover (d);
  d->fd = -1;
  if (e)
    return attach_fail (d, e);
  d->magic = MM_DESC_MAGIC;	/* limit stays 0: no fast frees */
  return d;
}

/* mmalloc_attach, returning the descriptor (the default heap's is made so,
   and gets no handle).  */
struct mm_desc *
mm_attach (int fd, void *baseaddr)
{
  mm_fork_init ();
  mm_classes_init ();
  size_t sys = mm_os_pagesize ();
  if ((uintptr_t) baseaddr % (sys > MM_PAGE ? sys : MM_PAGE))
    {
      errno = EINVAL;
      return NULL;
    }
  return fd < 0 ? attach_anon (baseaddr) : attach_file (fd, baseaddr);
}

void *
mmalloc_attach (int fd, void *baseaddr)
{
  struct mm_desc *d = mm_attach (fd, baseaddr);
  return d ? mm_handle_issue (d) : NULL;
}

void *
mmalloc_attach_flags (int fd, void *baseaddr, int flags)
{
  if (flags & ~MMALLOC_INSPECT)
    {
      errno = EINVAL;
      return NULL;
    }
  if (!(flags & MMALLOC_INSPECT))
    return mmalloc_attach (fd, baseaddr);
  if (fd < 0)
    {
      errno = EBADF;
      return NULL;
    }
  mm_fork_init ();
  mm_classes_init ();
  struct mm_desc *d = attach_view (fd);
  return d ? mm_handle_issue (d) : NULL;
}
