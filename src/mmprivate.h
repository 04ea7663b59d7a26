/* mmprivate.h -- the glossary of every object, the process-side structures,
   the declarations of every file and the small inline helpers.

   The order of the source files (which calls which) is the layer table of
   src/README.  This comment is the glossary: the one description of each
   object, its invariants, and for each field whether it is authoritative
   (the only record of a fact: what recovery rebuilds from) or derived
   (rebuilt from the authoritative state by recover.c), who writes it and
   under which lock.  Other comments, src/README and the manual refer here.
   The structures of the heap file themselves, and their decoders, are in
   format.h.

   Locks: per heap, one class lock per size class and one page lock, taken
   class lock first; the process-wide locks (default heap, trace, registry,
   pool) before any heap's; the lock of the list of thread caches alone.
   "Atomic" below means written with atomic stores or read-modify-writes,
   because other threads read it without the writer's lock.

   region      A heap's address range: its span (the most it may grow to),
               of which the process holds `held' bytes (region.c).  It
               holds no pointer of its own making: metadata names metadata
               by page index or byte offset from the base, checked against
               `top' before it is followed.
   header      struct mm_header, page 0.  Fixed fields (magic .. span,
               covered by hdr_sum): written once at creation.  version:
               rises only, atomic (mm_format_need).  state: CLEAN/DIRTY,
               written by attach and detach, alone.  Authoritative: flags
               (CHECKED, set by mmcheckf under every lock; USED, atomic, no
               lock), top (pages in use, page lock), keys (atomic, no
               lock).  dir_sum: page lock (growth), recovery.  bin_mask, bin_head, nlarge, large_pages, nruns,
               run_pages (derived): page lock.  cls[] (derived): class lock.
   page map    One 32-bit entry per page below `top', in leaves found
               through the directory (pages 1..MM_DIR_PAGES; authoritative):
               a directory entry is written once, under the page lock, when
               growth first reaches its window.
               Authoritative: LARGE runs' HEAD/END marks, SLAB marks (class
               and page offset in every page of a slab), META.  Derived:
               FREE runs' marks.  Written under the page lock with release
               stores (mm_pm_set), read without a lock (acquire).  Every
               page below `top' belongs to exactly one META page, slab,
               large block or free run; runs mark only their first and last
               pages; no two free runs touch.
   run         A free run (struct mm_run in its first page; derived, page
               lock): magic, bin links next/prev, released (HOLES: its pages
               after the first have no disk blocks; ZERO: they read zero),
               since (when it became free).  A LARGE run is one block.
   slab        struct mm_slab at the start of a run of pages of one class,
               then its slots.  bits and rbits (authoritative): slot i is
               allocated iff bits has it and rbits has not; rbits is a
               subset of bits.  bits are written by the slab's owner, or,
               with no owner, under the class lock (atomic stores); rbits
               by frees of other threads (atomic OR).  magic, cls, nobj and
               the CHECKED and POISON flags (authoritative): set before the
               slab is reachable (magic last), magic cleared when it is
               given back, class lock.  Derived: used (bits set,
               by the writer of bits), rfree (bits in rbits, counted before
               each is set: never fewer; atomic), hint
               (the word of bits to search first; writer of bits), owner
               (class lock; read atomic; 0 after detach and recovery),
               list flags (FULL, AVAIL: owner; LISTED: class lock, only with
               no owner), ref (pins of frees by non-owners, atomic: mfree.c),
               next/prev (the owner's lists, or the partial list under the
               class lock).  The full rule for each field: struct mm_slab
               (format.h).
   slot        One block of a slab: free or allocated only as bits/rbits
               say; a slot of a checked slab starts with a check header.
   class       struct mm_class: constant, computed once (mm_fmt_classes,
               kept in mm_classes by classes.c): size,
               slots and pages per slab, offset of slot 0, bitmap words,
               reciprocal.  mm_size_class maps a size to the least class
               that holds it.
   check header  struct mm_chk before a checked block's user pointer
               (authoritative for checked blocks: a freed header in an
               allocated slot or block means "in quarantine"); written
               under the block's lock in the order guard.c gives.
   descriptor  struct mm_desc: process memory, never in the region, never
               unmapped (reused through the pool, handle.c).  Fields below.
   handle      What callers hold instead of a descriptor's address: tag,
               slot of the table of descriptors, serial (handle.c).
   generation  d->gen: the attachment's number; a thread cache entry with
               another is stale.  Changed by attach and detach, by
               mm_tc_drop_heap under every class lock, by damage (atomic),
               and in a fork child (fork.c).
   thread cache  struct mm_tc: a thread's, reached through mm_tc_self; no
               lock but the list of all caches (all_next/prev, its lock).
   cache entry struct mm_tce: a thread's state for one heap (up to
               MM_TC_ENTRIES): the slabs it owns per class (current, avail,
               full lists) and its recent slots.  Written by its thread only
               (fork: by the child, alone).
   recent slot struct mm_recent: a slot this thread freed into a slab it
               owns, handed out first.  Only where to look: its bit is the
               record, and a recent slot whose bit was set meanwhile is
               skipped.  (Not to be confused with a slab's hint.)
   owner token mm_tc->id, written in the slabs a thread owns; tokens of
               threads gone in a fork child are dead (mm_owner_dead).
   quarantine  struct mm_quar (quarantine.c): process memory, page lock;
               freed checked blocks kept allocated, at most MM_QUAR_BLOCKS.

   Descriptor fields: magic, mode, base (== hdr), fd, dev, ino: set by
   attach before the heap is published.  free_bound: see its comment; set by
   mm_set_free_bound (growth: page lock), zeroed atomically by damage,
   detach and mm_tc_drop_heap.  span, held, resv_lo/hi, trim_*, decay_*,
   dirty, stale_above, quar, abortfunc: page lock.  nowned: class locks
   (atomic).  damaged: set once, atomic.  err: the calling thread's last
   error, no lock.  slot, serial, handle, next (pool), live_next/prev: pool
   lock; next (registry of files): registry lock.  */

#ifndef MMPRIVATE_H
#define MMPRIVATE_H 1

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>
/* The public API is exported; everything else is hidden (-fvisibility=hidden).  */
#pragma GCC visibility push(default)
#include "mmalloc.h"
#pragma GCC visibility pop

#define MM_HIDDEN __attribute__ ((visibility ("hidden")))
#define MM_LIKELY(x) __builtin_expect (!!(x), 1)
#define MM_UNLIKELY(x) __builtin_expect (!!(x), 0)

/* MM_ASSERT (COND): COND is an invariant of the library's own making (see
   the glossary below), never a check of what a file or a caller gave: those
   are validated and reported.  Built with -DMM_ASSERTS (the library the
   tests link, and the sanitizer and kill-point builds), a false COND is
   reported with its file and line (mm_assert_fail, diag.c) and the process
   aborts; in the release build COND is not evaluated.  */
#ifdef MM_ASSERTS
#define MM_ASSERT(cond)							\
  ((void) (MM_LIKELY (cond) || (mm_assert_fail (__FILE__, __LINE__, #cond), 0)))
#else
#define MM_ASSERT(cond) ((void) sizeof (!(cond)))
#endif

/* --- Compile-time options (each with its default) ------------------------ */

/* MM_SPAN_MAX, a heap's span (128 GiB), is the format's: see format.h.  */
/* MM_NO_VALGRIND (undefined): defined, annotate.c ignores valgrind's header
   even where the build finds it (no client requests in the library).  */
/* Address space reserved beyond what a heap uses, so that RLIMIT_AS counts
   about what the heap holds: the bytes in use, plus as many again but at
   least MM_RESV_INIT (4 MiB) and at most MM_RESV_STEP (1 GiB).  Where the
   system refuses that, exactly what is needed.  */
#ifndef MM_RESV_INIT
#define MM_RESV_INIT ((uint64_t) 4 << 20)
#endif
#ifndef MM_RESV_STEP
#define MM_RESV_STEP ((uint64_t) 1 << 30)
#endif
/* Pages a heap file reserves disk blocks for at once, ahead of need (1 MiB).  */
#ifndef MM_RESERVE_AHEAD
#define MM_RESERVE_AHEAD 256
#endif
/* Pages added at least by one growth of a heap (256 KiB).  */
#ifndef MM_GROW_MIN
#define MM_GROW_MIN 64
#endif
/* A free run of this many pages or more (after merging with its neighbours)
   gives its pages back to the OS, all but its first page.  */
#ifndef MM_RELEASE_MIN
#define MM_RELEASE_MIN 64
#endif
/* Decay (pages.c): the pages of a dirty free run go back to the OS once the
   run has stayed free MM_DECAY_MS milliseconds (0: at once, as it is freed),
   checked on the page lock's paths; and all of them at once when the dirty
   pages exceed a quarter of the heap and MM_DIRTY_MIN pages (32 MiB).  */
#ifndef MM_DECAY_MS
#define MM_DECAY_MS 250
#endif
#ifndef MM_DIRTY_MIN
#define MM_DIRTY_MIN 8192
#endif
/* A large block of an anonymous heap that mrealloc must move, this many
   pages long or more, moves its pages (mremap) instead of being copied.  */
#ifndef MM_MOVE_MIN
#define MM_MOVE_MIN 32
#endif
/* The most such moves a process makes: each leaves up to two mappings
   more that no free merges back (the moved pages keep their old place in
   the kernel's eyes), and a process may have only so many mappings
   (vm.max_map_count, 65530 by default); past it, blocks are copied.  */
#ifndef MM_MOVE_MAX
#define MM_MOVE_MAX 1024
#endif
/* A heap that grows into a window of the page map without a leaf makes the
   leaves of the windows up to this many times its size at once: a leaf
   made at the top stops a block there from growing in place.  */
#ifndef MM_LEAVES_AHEAD
#define MM_LEAVES_AHEAD 4
#endif
/* A free run at the top of MM_SHRINK_MIN + MM_GROW_MIN pages or more shrinks
   the heap, keeping MM_GROW_MIN pages (1 MiB + 256 KiB).  */
#ifndef MM_SHRINK_MIN
#define MM_SHRINK_MIN 256
#endif
/* The quarantine of a heap under mmcheck (quarantine.c): freed blocks kept
   allocated, poisoned, for this many frees or bytes at most before they are
   verified and given back.  Blocks larger than MM_QUAR_BLOCK_MAX bypass it.  */
#ifndef MM_QUAR_BLOCKS
#define MM_QUAR_BLOCKS 1024
#endif
#ifndef MM_QUAR_BYTES
#define MM_QUAR_BYTES ((size_t) 4 << 20)
#endif
#ifndef MM_QUAR_BLOCK_MAX
#define MM_QUAR_BLOCK_MAX ((size_t) 1 << 20)
#endif

/* --- The format ----------------------------------------------------------

   The structures that live in the region (header, page map, runs, slabs,
   check headers), the size classes' layout, and one decoder and validator
   of each: format.h and format.c, pure functions that every part of the
   library uses on its heap mapped here, and tools on heaps they read.  */
#include "format.h"

/* The fields of a slab header (struct mm_slab, format.h) in a live heap.
   Slot i is allocated iff bits has i and rbits has not: together the only
   record of it.  bits: written by the owner alone (or, with no owner, under
   the class lock); rbits: slots freed by other threads (atomic OR), merged
   into bits by whoever writes bits.
   LISTED (on a partial list) implies owner == 0.

   Who may touch which field, and how (threads meet in a slab without a
   lock: its owner, and other threads freeing its slots):
   - magic, cls, nobj: set before the slab is reachable (magic last,
     release) and cleared (magic) only when the slab is given back, under
     the class lock; anyone holding the class lock or a live slot of the
     slab (or a pin, ref) reads them plainly;
   - bits, used, hint: written by whoever may write bits (the owner, or the
     class lock's holder when there is none), with atomic stores, since
     other threads read them (atomic loads) without the writer's lock;
   - flags: FULL and AVAIL written by the owner, LISTED by the class lock's
     holder while there is no owner: one writer at a time, atomic stores,
     and atomic loads wherever another thread may be writing;
   - owner: changed under the class lock, read without it (atomic);
   - rbits, rfree, ref: atomic read-modify-writes only;
   - next, prev: the owner's lists (owner only) or the partial list (class
     lock).
   Recovery, alone in the heap, writes them all plainly.  */

static inline uint16_t
mm_slab_flags (const struct mm_slab *s)
{
  return __atomic_load_n (&s->flags, __ATOMIC_RELAXED);
}

static inline void
mm_slab_set_flags (struct mm_slab *s, uint16_t flags)
{
  __atomic_store_n (&s->flags, flags, __ATOMIC_RELAXED);
}

static inline uint32_t
mm_slab_owner (const struct mm_slab *s)
{
  return __atomic_load_n (&s->owner, __ATOMIC_RELAXED);
}

/* The writer of S's bits changes used by DELTA (other threads may read it).  */
static inline void
mm_slab_count (struct mm_slab *s, int32_t delta)
{
  __atomic_store_n (&s->used, s->used + (uint32_t) delta, __ATOMIC_RELAXED);
}

static inline void
mm_slab_set_hint (struct mm_slab *s, uint32_t w)
{
  __atomic_store_n (&s->hint, w, __ATOMIC_RELAXED);
}

static inline uint64_t *
mm_rbits (const struct mm_slab *s)
{
  return (uint64_t *) s->bits + (s->nobj + 63) / 64;
}

/* --- The process descriptor ---------------------------------------------- */

struct mm_desc
{
  /* Read by every fast path of every thread: one cache line that is
     written rarely (free_bound: growth, and the events below).  */
  uint32_t magic;		/* MM_DESC_MAGIC while attached */
  uint32_t mode;		/* MM_MODE_* */
  char *base;			/* region start, == (char *) hdr */
  struct mm_header *hdr;
  uint64_t free_bound;		/* top in bytes while the fast paths may free into
				   the heap; 0 while they may not (attaching,
				   detached, damaged, read-only, read-only in a
				   fork child, owners being taken back by
				   mm_tc_drop_heap): the fast free's only check
				   of the descriptor */
  uint64_t gen;			/* this attachment's number; 0 once detached.
				   Thread caches holding another are stale */
  uint64_t span;		/* bytes of address space it may grow into */
  uint64_t held;		/* bytes of those reserved in this process, from
				   base (region.c, page lock) */
  int fd;			/* the library's own descriptor, -1 if anonymous */
  int damaged;			/* metadata found inconsistent: see mm_damage */
  void (*abortfunc) (void);	/* after a reported misuse; NULL: abort */

  /* Written now and then: kept off the line above.  */
  _Alignas (64) uint64_t nowned;	/* slabs owned by thread caches (class locks) */
  uint64_t resv_lo, resv_hi;	/* pages known to have disk blocks reserved
				   by this process since (page lock) */
  uint64_t trim_min, trim_keep;	/* a free run of trim_min pages at the top
				   shrinks the heap, keeping trim_keep of
				   them; 0: the defaults (page lock) */
  uint64_t decay_ms;		/* how long dirty runs stay (page lock) */
  uint64_t decay_last;		/* when decay last looked at the runs, ms */
  uint64_t dirty;		/* pages of dirty runs of MM_RELEASE_MIN pages
				   or more, not counting their first pages;
				   counted again by each look (page lock) */
  uint64_t moves[3];		/* large blocks mrealloc moved: by copying,
				   the bytes copied, by moving their pages
				   (atomic adds; mm_move_counts) */
  int stale_above;		/* pages above top may hold old data (a failed
				   shrink, or a file not made by us) */
  int err;			/* last error code */
  uint32_t slot;		/* in the table of descriptors (handle.c) */
  uintptr_t serial;		/* attachments made in this slot so far */
  uintptr_t handle;		/* what mmalloc_attach returned for this
				   attachment; 0 when none is valid */
  dev_t dev;
  ino_t ino;
  struct mm_desc *next;		/* registry of attached files, or free list */
  struct mm_desc *live_next, *live_prev;	/* every attached heap (fork) */
  struct mm_quar *quar;		/* quarantine of a checked heap (page lock),
				   made at its first free; kept with the
				   descriptor when it is reused */
  _Alignas (64) pthread_mutex_t page_lock;	/* page map, bins, growth, header counters */
  pthread_mutex_t class_lock[MM_NCLASSES];	/* slabs of one class */
};
#define MM_DESC_MAGIC 0x6d6d6473u
#define MM_MODE_FILE 1u
#define MM_MODE_RDONLY 2u
#define MM_MODE_DEFAULT 4u
#define MM_MODE_PARENT 8u	/* in a fork child: a heap file the parent goes on
				   changing, whose walks would read a moving heap */
#define MM_MODE_VIEW 16u	/* a private view of a heap file (MMALLOC_INSPECT):
				   read-only, no descriptor, no lock, never
				   written to the file; not MM_MODE_FILE */

/* Lock order: a class lock, then the page lock; never the reverse.  */

/* Types that several layers share.  */

/* What is wrong with a pointer given back, or with a checked block: the
   caller's misuse (mm_fault: reported, then the heap's abort function), or,
   from MM_DAMAGED_FIRST on, damage to the heap's metadata (mm_damage: the
   heap stops).  mm_verdict_text gives the words of the report.  */
enum mm_verdict
{
  MM_OK = 0,
  /* The caller's misuse.  */
  MM_BAD_MISALIGNED,
  MM_BAD_OUTSIDE,
  MM_BAD_FOREIGN,
  MM_BAD_NOT_START,
  MM_BAD_NOT_ALLOCATED,
  MM_BAD_CHANGED,
  MM_BAD_HEADER,
  MM_BAD_DOUBLE_FREE,
  MM_BAD_USE_AFTER_FREE,
  MM_BAD_OVERRUN,
  MM_BAD_WRITE_AFTER_FREE,
  /* Damage to the heap's metadata.  */
  MM_DAMAGED_FIRST,
  MM_DAMAGED_PAGE_MAP = MM_DAMAGED_FIRST,
  MM_DAMAGED_PAGE_MAP_PTR,
  MM_DAMAGED_SLAB,
  MM_VERDICTS			/* their number */
};

/* A checked block to set up while its lock is held: the size asked for and
   the offset of the user's pointer from the block's start (16, or the
   alignment); receives the user's pointer and what was found wrong with the
   slot before (mm_chk_claim).  */
struct mm_arm
{
  size_t size, lead;
  void *user;
  enum mm_verdict bad;
  void *bad_ptr;
  const void *site;		/* a site record (lead 32), or NULL */
};

/* What a user pointer refers to, found and validated by mm_lookup.  */
struct mm_block
{
  char *start;			/* the slot or the large block's first byte; of a
				   checked block, its check header */
  size_t room;			/* bytes from start to the end of the slot or block */
  size_t lead;			/* checked: offset of the user's pointer from
				   the slot or first page (16, or an aligned
				   block's lead); else 0 */
  struct mm_slab *slab;		/* NULL for a large block */
  uint64_t pg;			/* first page of the large block or slab */
  uint32_t idx;			/* slot index in the slab */
  unsigned cls;			/* size class, or MM_NCLASSES for large */
  int checked;			/* carries a struct mm_chk before the user pointer */
};
#define MM_BLOCK_BAD (~0u)
/* What mm_block_acquire verifies of a checked block (mm_chk_verify).  */
enum
{
  MM_CHK_PEEK,			/* its header: live */
  MM_CHK_RESIZING,		/* its header and guard bytes */
  MM_CHK_FREEING		/* the same; a freed block is a double free */
};

/* --- Thread caches (tcache.c): thread cache, cache entry, recent slot in
   the glossary above ------------------------------------------------------ */

#define MM_TC_ENTRIES 4
#define MM_TC_RECENT 64		/* freed slots remembered per class */
struct mm_recent
{
  void *p;			/* a free slot (its bit clear; only we set bits) */
  uintptr_t v;			/* its slab, which this thread owns, | its index
				   (slabs are page-aligned, nobj < MM_PAGE) */
};
/* The slab and the slot index a recent slot's V packs.  */
static inline struct mm_slab *
mm_recent_slab (uintptr_t v)
{
  return (struct mm_slab *) (v & ~(uintptr_t) (MM_PAGE - 1));
}

static inline unsigned
mm_recent_idx (uintptr_t v)
{
  return (unsigned) (v & (MM_PAGE - 1));
}

struct mm_tce
{
  void *md;			/* the caller's descriptor (NULL: default heap) */
  struct mm_desc *d;
  uint64_t gen;			/* d->gen when the entry was made */
  uint64_t stamp;		/* when it was last made current: the least
				   recent entry is the one dropped */
  struct mm_slab *slab[MM_NCLASSES];	/* current slab: allocations come
					   from it; NULL if none */
  /* The other slabs this thread owns, linked through their next/prev:
     avail have had a slot freed by us since they were full; full are
     full as far as we know (other threads' frees pend in rbits).  */
  struct mm_slab *avail[MM_NCLASSES];
  struct mm_slab *full[MM_NCLASSES], *full_tail[MM_NCLASSES];
  uint64_t nowned;		/* slabs owned through this entry (fork.c) */
  /* Slots we freed lately, handed out again first (LIFO, like a free list,
     but the bitmap stays the only record: a recent slot is only where to look).  */
  uint8_t nrecent[MM_NCLASSES];
  struct mm_recent recent[MM_NCLASSES][MM_TC_RECENT];
};
struct mm_tc
{
  uint32_t id;			/* owner token written in owned slabs */
  uint32_t pad;
  struct mm_tce *cur;		/* the entry of the heap used last: the
				   only one the fast paths look at */
  struct mm_desc *busy;		/* the heap whose owned slabs this thread is
				   working on without a lock (mm_tc_enter),
				   or NULL */
  uint64_t clock;		/* stamps of the entries */
  struct mm_tc *all_next, *all_prev;	/* every thread's cache (fork) */
  struct mm_slab *remote;	/* a slab of cur's heap that a free of ours
				   has pinned (mfree.c), maybe with its rfree
				   counted and its rbits not marked yet (fork:
				   the count is made anew and the pin dropped
				   if we are gone in a child) */
  struct mm_tce entries[MM_TC_ENTRIES];	/* never moved (they are large) */
};

/* The figures of mmstats and their parts, for the drop-in's mallinfo,
   malloc_stats and malloc_info (mmstats.c).  */
struct mm_heapinfo
{
  struct mstats st;		/* what mmstats returns */
  uint64_t large, large_bytes;	/* large blocks (runs of whole pages) */
  uint64_t runs, run_bytes;	/* free runs of pages */
  uint64_t top_run_bytes;	/* the free run that ends at `top', or 0 */
  uint64_t reserved;		/* address space reserved for the heap */
  uint64_t cls_free[MM_NCLASSES];	/* free slots of each size class */
  uint64_t bin_runs[MM_NBINS];	/* free runs of each bin's lengths */
  uint64_t bin_pages[MM_NBINS];
};

/* Declarations, grouped by the file that defines them, in the order of the
   layers (src/README).  */

/* --- OS layer (mmap-sup.c): returns 0 or an errno value ------------------ */

MM_HIDDEN size_t mm_os_pagesize (void);
MM_HIDDEN int mm_os_reserve (void *want, size_t len, int exact, void **out);
MM_HIDDEN int mm_os_unmap (void *addr, size_t len);
MM_HIDDEN int mm_os_commit (void *addr, size_t len);
MM_HIDDEN int mm_os_decommit (void *addr, size_t len);
MM_HIDDEN int mm_os_discard (void *addr, size_t len);
MM_HIDDEN int mm_os_move (void *from, void *to, size_t len);
MM_HIDDEN int mm_os_map_file (void *addr, size_t len, int fd, uint64_t off, int rdonly);
MM_HIDDEN int mm_os_map_private (void *addr, size_t len, int fd, uint64_t off);
MM_HIDDEN int mm_os_readable (int fd);
MM_HIDDEN int mm_os_file_grow (int fd, uint64_t from, uint64_t to);
MM_HIDDEN int mm_os_file_resize (int fd, uint64_t size);
MM_HIDDEN int mm_os_file_punch (int fd, uint64_t off, uint64_t len);
MM_HIDDEN int mm_os_file_size (int fd, uint64_t *size, dev_t *dev, ino_t *ino);
MM_HIDDEN int mm_os_sync (void *addr, size_t len, int fd);
MM_HIDDEN uint64_t mm_os_now_ms (void);
MM_HIDDEN int mm_os_lock (int fd, int exclusive);
MM_HIDDEN int mm_os_dup (int fd, int *out, int *rdonly);
MM_HIDDEN void mm_os_close (int fd);
MM_HIDDEN int mm_os_read (int fd, void *buf, size_t len, uint64_t off);
MM_HIDDEN void mm_os_write_stderr (const char *s, size_t len);
/* A memory barrier run by every thread of the process (membarrier), so that
   the paths of mm_tc_enter need none: 0 once registered (mm_os_barrier_init),
   else an errno value and the caller must fence both sides.  */
MM_HIDDEN int mm_os_barrier_init (void);
MM_HIDDEN int mm_os_barrier (void);
MM_HIDDEN int mm_os_alloc (size_t len, void **out);
/* Test hook: the Nth OS call from now (1 = the next) fails with ERR; 0 disarms.  */
MM_HIDDEN void mm_os_fail_at (long n, int err);

/* --- Core state and locks (core.c) ----------------------------------------- */

extern MM_HIDDEN __thread struct mm_tc *mm_tc_self
  __attribute__ ((tls_model ("initial-exec")));

/* The allocation site of the outermost allocating call this thread is in
   (the caller of mmalloc, mcalloc, malloc...), for the site record of a
   checked block; NULL outside such calls.  An entry point sets it unless an
   outer one did (mm_site_push), and clears it on the way out if it set it
   (mm_site_pop), so that malloc's caller is recorded, not malloc.  */
extern MM_HIDDEN __thread const void *mm_site
  __attribute__ ((tls_model ("initial-exec")));

/* Nonzero when the drop-in's malloc family should record its callers as
   sites: checking was asked for, or a trace is on (malloc.c).  */
extern MM_HIDDEN int mm_sites_want;

static inline const void *
mm_site_push (const void *site)
{
  const void *outer = mm_site;
  if (!outer)
    mm_site = site;
  return outer;
}

static inline void
mm_site_pop (const void *outer)
{
  if (!outer)
    mm_site = NULL;
}

/* EXPR, an allocating call, with its caller's caller (the caller of the
   function using this) as the allocation site.  */
#define MM_SITE_CALL(expr)						\
  __extension__ ({ const void *mm_outer_ = mm_site_push (__builtin_return_address (0)); \
     __typeof__ (expr) mm_r_ = (expr);					\
     mm_site_pop (mm_outer_);						\
     mm_r_; })
/* In a fork child, the owner tokens of the threads that do not exist there:
   every token up to mm_dead_max but the forking thread's, mm_dead_self (set
   by mm_tc_after_fork; 0 in a process that never forked).  Their slabs are
   taken back (mm_slab_adopt) when a free comes to one.  */
extern MM_HIDDEN uint32_t mm_dead_max, mm_dead_self;

static inline int
mm_owner_dead (uint32_t owner)
{
  return owner && owner <= __atomic_load_n (&mm_dead_max, __ATOMIC_SEQ_CST)
    && owner != mm_dead_self;
}
MM_HIDDEN uint64_t mm_new_gen (void);
/* Nonzero: the lock-free paths are off, every allocation and free takes
   the locked paths, which trace (MM_SLOW_TRACE: mmtrace.c) and annotate
   blocks for valgrind and AddressSanitizer (MM_SLOW_ANNOTATE: annotate.c).  */
extern MM_HIDDEN int mm_trace_on;
#define MM_SLOW_TRACE 1
#define MM_SLOW_ANNOTATE 2
extern MM_HIDDEN pthread_mutex_t mm_default_lock, mm_trace_lock;
MM_HIDDEN void mm_lock_all (struct mm_desc *d);
MM_HIDDEN void mm_unlock_all (struct mm_desc *d);
MM_HIDDEN int mm_fail (struct mm_desc *d, int err);

/* --- Blocks seen by valgrind and AddressSanitizer (annotate.c) ------------ */

MM_HIDDEN void mm_an_init (void);
MM_HIDDEN void mm_an_alloc (void *p, size_t size, size_t room);
MM_HIDDEN void mm_an_free (void *p, size_t room);
MM_HIDDEN void mm_an_forget (void *p);
MM_HIDDEN void mm_an_meta (void *p, size_t n);
MM_HIDDEN void mm_an_unused (void *p, size_t n);
MM_HIDDEN void mm_an_gone (const void *base, size_t held);
MM_HIDDEN void mm_an_quiet (int on);
MM_HIDDEN size_t mm_an_size (const void *p, size_t room);

/* --- Reports (diag.c) ------------------------------------------------------ */

MM_HIDDEN void mm_fault (struct mm_desc *d, const char *what, const void *ptr);
MM_HIDDEN void mm_report (struct mm_desc *d, const char *what, uint64_t value);
MM_HIDDEN void mm_damage (struct mm_desc *d, const char *what, uint64_t off);
MM_HIDDEN void mm_bad_desc (const char *what, const void *md);
MM_HIDDEN const char *mm_verdict_text (enum mm_verdict v);
MM_HIDDEN void mm_bad_block (struct mm_desc *d, enum mm_verdict v, const void *ptr);
#ifdef MM_ASSERTS
MM_HIDDEN void mm_assert_fail (const char *file, int line, const char *cond)
  __attribute__ ((noreturn, cold));
#endif
MM_HIDDEN int mm_fork_refuse (struct mm_desc *d, const char *what);

/* --- Size classes (classes.c) ---------------------------------------------- */

/* Indexed by any 8-bit class field: entries past MM_NCLASSES are all zero
   (nobj 0), so a damaged page map can index it without a bounds check.  */
extern MM_HIDDEN struct mm_class mm_classes[256];
MM_HIDDEN void mm_classes_init (void);
extern MM_HIDDEN uint8_t mm_class_of16[1024 / 16 + 1];	/* by (size + 15) / 16 */

/* --- Address space (region.c) ---------------------------------------------- */

/* The heap in D will use END bytes: reserve up to there (0 or ENOMEM); or,
   after a shrink, if it holds more than twice what it would reserve for
   END, give back all beyond that.  Page lock held.  */
MM_HIDDEN int mm_region_extend (struct mm_desc *d, uint64_t end);
MM_HIDDEN void mm_region_trim (struct mm_desc *d, uint64_t end);
MM_HIDDEN int mm_region_hold (struct mm_desc *d, char *want, uint64_t span, uint64_t used);
MM_HIDDEN int mm_region_place (struct mm_desc *d, uint64_t span);

/* --- Check headers and guards (guard.c) ------------------------------------ */

MM_HIDDEN void *mm_chk_arm (void *start, size_t room, size_t lead, size_t size,
			     const void *site);
MM_HIDDEN uint64_t mm_chk_site_of (const char *start);
MM_HIDDEN enum mm_verdict mm_chk_slot_intact (const char *slot, size_t room);
MM_HIDDEN enum mm_verdict mm_chk_first_bad (const char *start);
/* Test hook: nonzero, checked blocks get no site record, as from a library
   of format 2 (alloc.c).  */
extern MM_HIDDEN int mm_sites_off;
MM_HIDDEN void mm_site_name (const void *site, char *buf, size_t len);
MM_HIDDEN void mm_chk_claim (struct mm_slab *s, char *slot, size_t room, struct mm_arm *arm);
MM_HIDDEN void *mm_chk_armed (struct mm_desc *d, void *p, struct mm_arm *arm);
MM_HIDDEN size_t mm_chk_lead (const char *start, size_t room);
MM_HIDDEN int mm_chk_recover (char *start, size_t room);
MM_HIDDEN void mm_chk_begin (char *start);
MM_HIDDEN void mm_chk_slab_init (struct mm_slab *s);
MM_HIDDEN void mm_chk_recycle (struct mm_slab *s, char *slot, size_t room);
MM_HIDDEN enum mm_verdict mm_chk_verify (const void *ptr, const struct mm_block *b,
					   int mode);
MM_HIDDEN size_t mm_chk_size (const void *ptr);
MM_HIDDEN int mm_chk_is (const struct mm_chk *c, uint32_t magic);
MM_HIDDEN enum mm_verdict mm_chk_freed_intact (const struct mm_chk *c, size_t room);
MM_HIDDEN int mm_chk_user (char *start, size_t room, char **user, size_t *size);

/* --- Page allocator (pages.c): page lock held by the caller -------------- */

MM_HIDDEN uint64_t mm_pages_alloc (struct mm_desc *d, uint64_t n, uint64_t align,
				   uint64_t skew, uint32_t kind, uint32_t bits);
MM_HIDDEN uint64_t mm_pages_take (struct mm_desc *d, uint64_t n, uint64_t align,
				  uint64_t skew, int *zero);
MM_HIDDEN void mm_pages_mark (struct mm_desc *d, uint64_t pg, uint64_t n, uint32_t kind,
			      uint32_t bits);
MM_HIDDEN void mm_pages_free (struct mm_desc *d, uint64_t pg);
MM_HIDDEN uint64_t mm_pages_trim (struct mm_desc *d, uint64_t keep);
MM_HIDDEN uint64_t mm_pages_purge (struct mm_desc *d, int all);
/* The delay of heaps attached from now on (MMALLOC_OPTIONS decay=).  */
extern MM_HIDDEN uint64_t mm_decay_default;
MM_HIDDEN int mm_pages_resize (struct mm_desc *d, uint64_t pg, uint64_t n);
MM_HIDDEN uint64_t mm_pages_move (struct mm_desc *d, uint64_t pg, uint64_t n);
MM_HIDDEN int mm_pages_grow (struct mm_desc *d, uint64_t n);
MM_HIDDEN int mm_pages_setup (struct mm_desc *d);
MM_HIDDEN unsigned mm_bin_of (uint64_t n);
MM_HIDDEN void mm_bin_bounds (unsigned b, uint64_t *lo, uint64_t *hi);
MM_HIDDEN void mm_pages_reset (struct mm_desc *d);
MM_HIDDEN int mm_pages_add_run (struct mm_desc *d, uint64_t pg, uint64_t n);
MM_HIDDEN uint64_t mm_free_run_at (const struct mm_desc *d, uint64_t pg);
MM_HIDDEN int mm_pages_walk (struct mm_desc *d, int strict,
			     int (*visit) (struct mm_desc *, uint64_t, uint64_t, uint32_t,
					   void *), void *arg);

/* --- Slabs and partial lists (slab.c) -------------------------------------- */

MM_HIDDEN struct mm_slab *mm_slab_new (struct mm_desc *d, unsigned cls, int checked,
				       uint32_t owner);
MM_HIDDEN uint32_t mm_slab_take (struct mm_slab *s);
MM_HIDDEN void mm_slab_merge (struct mm_slab *s);
MM_HIDDEN int mm_slab_full (const struct mm_slab *s);
MM_HIDDEN uint32_t mm_slab_used (const struct mm_slab *s);
MM_HIDDEN void mm_slab_unowned (struct mm_desc *d, struct mm_slab *s);
MM_HIDDEN void mm_slab_adopt (struct mm_desc *d, struct mm_slab *s);
MM_HIDDEN void mm_slab_after_free (struct mm_desc *d, struct mm_slab *s);
MM_HIDDEN int mm_slab_ok (struct mm_desc *d, uint64_t off, unsigned cls);
MM_HIDDEN int mm_partial_head_ok (struct mm_desc *d, uint64_t off, unsigned cls, int k);
MM_HIDDEN void mm_partial_push (struct mm_desc *d, struct mm_slab *s);
MM_HIDDEN void mm_partial_pull (struct mm_desc *d, struct mm_slab *s);

/* --- Thread caches (tcache.c) ---------------------------------------------- */

MM_HIDDEN struct mm_tce *mm_tc_entry (void *md, struct mm_desc *d);
MM_HIDDEN void *mm_tc_refill (struct mm_tce *ce, unsigned cls);
MM_HIDDEN int mm_tc_freed (struct mm_tce *ce, struct mm_slab *s, unsigned cls, int locked);
MM_HIDDEN struct mm_tce *mm_tc_find (struct mm_desc *d);
MM_HIDDEN void mm_tc_drop_heap (struct mm_desc *d);
MM_HIDDEN void mm_tc_quiesce (struct mm_desc *d);

/* The paths that work on a thread's own slabs without a lock (mmalloc's and
   mfree's fast paths, and what they call) run between mm_tc_enter and
   mm_tc_leave, and wait for no lock in between.  mm_tc_quiesce changes D's
   generation and bound, then waits until no thread is inside on D; only
   then are the owners taken out (mm_tc_drop_heap) or the heap unmapped
   (detach): a thread inside either entered before, and is waited for, or
   reads the new generation or bound after it entered, and leaves without
   touching a slab.  Each side stores and then loads what the other stored;
   the taker's process-wide barrier (mm_os_barrier: membarrier) orders
   both, so entering costs two plain stores, unless that barrier is missing
   and the enterer fences itself (mm_tc_fence).  A call nested in the window
   (a signal handler's) finds busy set and takes the locked paths, which
   leave the interrupted owner's bits alone.  */
extern MM_HIDDEN int mm_tc_fence;

#if defined __SANITIZE_THREAD__
#define MM_TSAN 1
#elif defined __has_feature
#if __has_feature (thread_sanitizer)
#define MM_TSAN 1
#endif
#endif

static inline void
mm_tc_enter (struct mm_tc *tc, struct mm_desc *d)
{
#ifdef MM_TSAN			/* which refuses fences: a locked exchange (x86) */
  if (MM_UNLIKELY (__atomic_load_n (&mm_tc_fence, __ATOMIC_RELAXED)))
    {
      (void) __atomic_exchange_n (&tc->busy, d, __ATOMIC_SEQ_CST);
      return;
    }
#endif
  __atomic_store_n (&tc->busy, d, __ATOMIC_RELAXED);
#ifndef MM_TSAN
  if (MM_UNLIKELY (__atomic_load_n (&mm_tc_fence, __ATOMIC_RELAXED)))
    __atomic_thread_fence (__ATOMIC_SEQ_CST);
  else
#endif
    __atomic_signal_fence (__ATOMIC_SEQ_CST);
}

static inline void
mm_tc_leave (struct mm_tc *tc)
{
  __atomic_store_n (&tc->busy, NULL, __ATOMIC_RELEASE);
}

/* Is this thread inside a window (so a nested call must take a lock)?  */
static inline int
mm_tc_busy (const struct mm_tc *tc)
{
  return __atomic_load_n (&tc->busy, __ATOMIC_RELAXED) != NULL;
}
MM_HIDDEN int mm_tc_after_fork (void);

/* --- Locked allocation (alloc.c) ------------------------------------------- */

MM_HIDDEN void *mm_alloc (struct mm_desc *d, size_t size, int *zero);
MM_HIDDEN void *mm_alloc_small (struct mm_desc *d, unsigned cls, struct mm_arm *arm);
MM_HIDDEN void *mm_alloc_large (struct mm_desc *d, uint64_t npages, uint64_t align,
				struct mm_arm *arm, int *zero);

/* --- Pointers and their blocks (block.c) ----------------------------------- */

/* MM_OK if PTR is a live block of D, described in *B; else what is wrong.
   The caller holds the lock the block's kind needs (see block.c).  */
MM_HIDDEN enum mm_verdict mm_lookup (struct mm_desc *d, const void *ptr,
				      struct mm_block *b);
MM_HIDDEN unsigned mm_block_acquire (struct mm_desc *d, const void *ptr,
				     struct mm_block *b, int verify);
MM_HIDDEN unsigned mm_block_lock (struct mm_desc *d, const void *ptr);
MM_HIDDEN void mm_block_unlock (struct mm_desc *d, unsigned lockno);
MM_HIDDEN void mm_block_release (struct mm_desc *d, struct mm_block *b);
MM_HIDDEN size_t mm_usable (struct mm_desc *d, void *ptr, const struct mm_block *b);

/* --- Quarantine (quarantine.c) --------------------------------------------- */

MM_HIDDEN void mm_chk_free (struct mm_desc *d, void *ptr, struct mm_block *b, unsigned lockno);
MM_HIDDEN void mm_quar_flush (struct mm_desc *d);
MM_HIDDEN void mm_quar_reset (struct mm_desc *d);
MM_HIDDEN void mm_quar_stats (struct mm_desc *d, struct mm_heapinfo *hi);

/* --- Recovery (recover.c) -------------------------------------------------- */

MM_HIDDEN int mm_recover (struct mm_desc *d);

/* --- Descriptors, handles and the registry (handle.c) ---------------------- */

/* Handles (handle.c): give a new descriptor its slot (pool lock held; 0 or
   an errno value); issue the handle of an attachment made; refuse it from
   now on; has the slot issued its last handle (never reuse D)?  A handle
   holds 4 tag bits, the slot, then the attachment's serial number.  */
#if UINTPTR_MAX > 0xffffffffu
#define MM_HANDLE_SLOT_BITS 20
#else
#define MM_HANDLE_SLOT_BITS 10
#endif
#define MM_HANDLE_SERIAL_MAX (UINTPTR_MAX >> (4 + MM_HANDLE_SLOT_BITS))
MM_HIDDEN int mm_handle_slot (struct mm_desc *d);
MM_HIDDEN void *mm_handle_issue (struct mm_desc *d);
MM_HIDDEN void mm_handle_revoke (struct mm_desc *d);
MM_HIDDEN int mm_handle_spent (const struct mm_desc *d);
/* The descriptor of slot I of the table, every descriptor ever made (never
   unmapped), or NULL past its end: it can be walked at any instant.  */
MM_HIDDEN struct mm_desc *mm_handle_nth (uint32_t i);
MM_HIDDEN struct mm_desc *mm_handle_desc (void *md);
MM_HIDDEN struct mm_desc *mm_desc_new (void);
MM_HIDDEN void mm_desc_free (struct mm_desc *d);
MM_HIDDEN int mm_registry_add (struct mm_desc *d);
MM_HIDDEN void mm_registry_remove (struct mm_desc *d);
extern MM_HIDDEN pthread_mutex_t mm_registry_lock, mm_pool_lock;
extern MM_HIDDEN struct mm_desc *mm_live;	/* attached (and attaching) heaps */
MM_HIDDEN void mm_desc_lists_rebuild (int remake_pool, int remake_registry);

/* --- fork (fork.c) --------------------------------------------------------- */

/* Registers the library's fork handler, once; called before any heap is
   made (it may allocate: it takes no lock of ours).  */
MM_HIDDEN void mm_fork_init (void);

/* --- Attaching (attach.c) and the default heap (sbrk-sup.c) ---------------- */

MM_HIDDEN struct mm_desc *mm_attach (int fd, void *baseaddr);
MM_HIDDEN struct mm_desc *mm_default (void);
MM_HIDDEN struct mm_desc *mm_desc_of (void *md);

/* --- The entry points' helpers (mmalloc.c, mfree.c, mmemalign.c, mmtrace.c,
   mmstats.c, mrealloc.c) ---------------------------------------------------- */

MM_HIDDEN void *mm_alloc_done (struct mm_desc *d, void *p, size_t size);
MM_HIDDEN void mm_alloc_annotate (struct mm_desc *d, void *p, size_t size);
MM_HIDDEN void mm_free (struct mm_desc *d, void *ptr);
MM_HIDDEN void *mm_alloc_aligned (struct mm_desc *d, size_t align, size_t size);
MM_HIDDEN void mm_trace (char op, const void *p, size_t size);
MM_HIDDEN void mm_heapinfo (struct mm_desc *d, struct mm_heapinfo *hi);
/* Large blocks mrealloc moved by copying, the bytes copied, and the blocks
   it moved by moving their pages (d->moves; mrealloc.c): for tests and the
   benchmark.  Zeros for a bad descriptor.  */
MM_HIDDEN void mm_move_counts (void *md, uint64_t out[3]);

/* --- Walks (walk.c) -------------------------------------------------------- */

/* Every allocated block in address order, resumable between lock holds.  A
   position is a page and, in a slab of class CLS, a slot.  */
struct mm_wpos
{
  uint64_t pg;
  uint32_t idx;
  unsigned cls;
  uint64_t vtop;		/* `top' when the directory was last proved */
};
/* One allocated block: what its user holds (pointer, size) and the slot or
   pages it occupies (start, room), which hold it whole.  */
struct mm_wblock
{
  char *user;
  size_t size;
  char *start;
  size_t room;
};
typedef int (*mm_wfn) (struct mm_desc *d, const struct mm_wblock *b, void *arg);
MM_HIDDEN int mm_walk_from (struct mm_desc *d, struct mm_wpos *pos, int resume, mm_wfn fn,
			    void *arg);

/* --- Roots of a process (roots.c) ----------------------------------------- */

/* The roots of a whole process (roots.c): stop every other thread (0, or an
   errno value; *LATE: threads that did not stop in time), start them again;
   call FN for every writable mapping's range outside the sorted ranges EX,
   stacks from their threads' stack pointers (SELF_SP: the caller's).  */
struct mm_range
{
  uintptr_t lo, hi;
};
MM_HIDDEN int mm_world_stop (unsigned *late);
MM_HIDDEN void mm_world_start (void);
MM_HIDDEN int mm_roots_each (const struct mm_range *ex, unsigned nex, uintptr_t self_sp,
			     void (*fn) (uintptr_t lo, uintptr_t hi, void *arg), void *arg);

/* --- The drop-in's leak report (leaks.c) ---------------------------------- */

/* The drop-in's leak report at exit (leaks.c, MMALLOC_OPTIONS=leaks).  */
MM_HIDDEN void mm_leaks_at_exit (void);

/* --- Kill points (tests only) ----------------------------------------------

   Built with -DMM_KILLPOINTS (the test library libmmalloc-kp.a), every update
   of metadata that lives in the region is followed by MM_KP (): when the
   countdown mm_kp_left reaches zero there, the process dies of SIGKILL, as if
   killed at that instant.  Tests run each operation with k = 1, 2, ... until it
   completes, and check that the heap recovers every time.  */
#ifdef MM_KILLPOINTS
extern MM_HIDDEN long mm_kp_left;
/* If set, the point calls it instead of dying: a test holds a thread there.  */
extern MM_HIDDEN void (*mm_kp_hold) (void);
MM_HIDDEN void mm_kp_hit (void);
#define MM_KP()								\
  do									\
    if (MM_UNLIKELY (mm_kp_left > 0) && --mm_kp_left == 0)		\
      mm_kp_hit ();							\
  while (0)
#else
#define MM_KP() ((void) 0)
#endif

/* --- Locks ----------------------------------------------------------------

   Every lock of the library is taken through mm_lock.  No lock is held
   across fork: the child finds each lock as the instant of the fork left it,
   and fork.c makes them anew (a heap whose lock was held is rebuilt).  */

static inline void
mm_lock (pthread_mutex_t *m)
{
  pthread_mutex_lock (m);
}

static inline void
mm_unlock (pthread_mutex_t *m)
{
  pthread_mutex_unlock (m);
}

/* In a fork child: make lock M anew; 1 if it was held at the fork.  */
static inline int
mm_lock_reset (pthread_mutex_t *m)
{
  int held = pthread_mutex_trylock (m) != 0;
  pthread_mutex_init (m, NULL);
  return held;
}

/* --- Inline helpers ------------------------------------------------------- */

static inline uint64_t
mm_off (const struct mm_desc *d, const void *p)
{
  return (uint64_t) ((const char *) p - d->base);
}

static inline void *
mm_at (const struct mm_desc *d, uint64_t off)
{
  return d->base + off;
}

/* The page-map entry of page PG; PG < top, so its leaf exists.  */
static inline uint32_t *
mm_pm (const struct mm_desc *d, uint64_t pg)
{
  const uint32_t *dir = (const uint32_t *) (d->base + MM_PAGE);
  uint32_t leaf = dir[pg >> MM_WIN_SHIFT];
  return (uint32_t *) (d->base + ((uint64_t) leaf << MM_PAGE_SHIFT))
    + (pg & (MM_WIN_PAGES - 1));
}

static inline uint32_t
mm_pm_get (const struct mm_desc *d, uint64_t pg)
{
  return __atomic_load_n (mm_pm (d, pg), __ATOMIC_ACQUIRE);
}

static inline void
mm_pm_set (const struct mm_desc *d, uint64_t pg, uint32_t e)
{
  MM_ASSERT (PM_KIND (e) <= PM_META && pg < d->span >> MM_PAGE_SHIFT);
  __atomic_store_n (mm_pm (d, pg), e, __ATOMIC_RELEASE);
  MM_KP ();
}

/* Let the fast frees run below BOUND bytes, unless damage has stopped them
   (mm_damage sets damaged, then zeroes the bound: one of us sees the other).  */
static inline void
mm_set_free_bound (struct mm_desc *d, uint64_t bound)
{
  MM_ASSERT (bound % MM_PAGE == 0 && bound <= d->held);
  __atomic_store_n (&d->free_bound, bound, __ATOMIC_SEQ_CST);
  if (MM_UNLIKELY (__atomic_load_n (&d->damaged, __ATOMIC_SEQ_CST)))
    __atomic_store_n (&d->free_bound, 0, __ATOMIC_SEQ_CST);
}

/* Move the heap's top (page lock held, or no other thread yet).  */
static inline void
mm_set_top (struct mm_desc *d, uint64_t top)
{
  MM_ASSERT (top >= MM_HDR_PAGES && top <= d->span >> MM_PAGE_SHIFT);
  __atomic_store_n (&d->hdr->top, top, __ATOMIC_RELEASE);
  mm_set_free_bound (d, top << MM_PAGE_SHIFT);
}

/* D's file is about to hold a record of format VERSION: raise its version
   first if it is older, so that a library that cannot read the record
   refuses the file.  Never lowers it (threads may race here).  */
static inline void
mm_format_need (struct mm_desc *d, uint32_t version)
{
  uint32_t v = __atomic_load_n (&d->hdr->version, __ATOMIC_RELAXED);
  while (MM_UNLIKELY (v < version)
	 && !__atomic_compare_exchange_n (&d->hdr->version, &v, version, 0,
					  __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
    ;
  /* The record is written after the version, also as a kill sees the file.  */
  __atomic_signal_fence (__ATOMIC_SEQ_CST);
}

static inline uint64_t
mm_top (const struct mm_desc *d)
{
  return __atomic_load_n (&d->hdr->top, __ATOMIC_ACQUIRE);
}

/* The size class of SIZE bytes (SIZE <= MM_SMALL_MAX); size 0 is class 0.  */
static inline unsigned
mm_size_class (size_t size)
{
  if (size <= 1024)
    return mm_class_of16[(size + 15) >> 4];
  size_t s = size - 1;
  if (s >= 16384)
    return MM_CLASS_16K + 1 + (unsigned) ((s - 16384) >> 11);
  unsigned b = 63 - (unsigned) __builtin_clzll (s);
  return 8 + (b - 7) * 4 + (unsigned) (s >> (b - 2)) - 4;
}

/* --- D's heap to the format's decoders (format.h) ------------------------ */

/* The length of the whole run (free or large) whose first page PG has the
   mark HEAD, by its marks (mm_fmt_run_len), or 0.  */
static inline uint64_t
mm_run_len (const struct mm_desc *d, uint64_t pg, uint32_t head)
{
  uint64_t top = mm_top (d), n = head & PM_NMASK;
  uint32_t tail = n > 1 && pg < top && n <= top - pg ? mm_pm_get (d, pg + n - 1) : head;
  return mm_fmt_run_len (head, tail, pg, top);
}

/* The bounds of D's heap, read in place.  */
static inline struct mm_fmt_heap
mm_fmt_of (const struct mm_desc *d)
{
  struct mm_fmt_heap h = { (uint64_t) (uintptr_t) d->base, d->hdr->span, mm_top (d),
    mm_classes, (const unsigned char *) d->base, NULL, NULL };
  return h;
}

static inline const uint32_t *
mm_dir (const struct mm_desc *d)
{
  return (const uint32_t *) (const void *) (d->base + MM_PAGE);
}

static inline uint64_t
mm_dir_sum (const struct mm_desc *d)
{
  return mm_fmt_dir_sum (mm_dir (d));
}

/* 0 if H describes a heap this library can use whose file has FILE_SIZE bytes
   (0: unknown), else the MMALLOC_E* code naming what is wrong.  */
static inline int
mm_header_validate (const struct mm_header *h, uint64_t file_size)
{
  return mm_fmt_header_check (h, mm_classes, file_size);
}

/* The directory of D as growth makes it (DIRTY: after a crash): 0 or
   MMALLOC_ECORRUPT.  */
static inline int
mm_dir_validate (const struct mm_desc *d, int dirty)
{
  return mm_fmt_dir_check (mm_dir (d), d->hdr->top, d->hdr->span, dirty);
}

/* Is OFF a usable metadata link: 0 (none), or a page of the heap's body?  */
static inline int
mm_link_ok (const struct mm_desc *d, uint64_t off)
{
  return mm_fmt_link_ok (off, mm_top (d));
}

/* Something was allocated in D once (mmcheck refuses to start later).  */
static inline void
mm_note_used (struct mm_desc *d)
{
  if (MM_UNLIKELY (!(__atomic_load_n (&d->hdr->flags, __ATOMIC_RELAXED) & MM_F_USED)))
    __atomic_or_fetch (&d->hdr->flags, MM_F_USED, __ATOMIC_RELAXED);
}

static inline int
mm_writable (struct mm_desc *d)
{
  return !(d->mode & MM_MODE_RDONLY);
}

/* Flags that one thread sets (atomically) while others run their paths:
   read atomically too.  Relaxed: each is rechecked where it matters (under
   a lock, or through d->free_bound and d->gen, which change after it).  */
static inline int
mm_damaged (const struct mm_desc *d)
{
  return __atomic_load_n (&d->damaged, __ATOMIC_RELAXED);
}

/* Nonzero when the lock-free paths are off (see mm_trace_on).  */
static inline int
mm_tracing (void)
{
  return __atomic_load_n (&mm_trace_on, __ATOMIC_RELAXED);
}

static inline int
mm_annotating (void)
{
  return __atomic_load_n (&mm_trace_on, __ATOMIC_RELAXED) & MM_SLOW_ANNOTATE;
}

static inline uint64_t
mm_gen (const struct mm_desc *d)
{
  return __atomic_load_n (&d->gen, __ATOMIC_RELAXED);
}

#endif /* MMPRIVATE_H */
