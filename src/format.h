/* format.h -- the format of a heap: its on-disk structures, and one decoder
   and validator per object.

   Everything here is a pure function of its arguments: no global state, no
   lock, and no pointer followed that was not checked against the bounds it
   was given.  The objects are decoded from bytes the caller holds (a local
   copy, or the heap mapped in this process), and what needs more of the heap
   reads it through struct mm_fmt_heap: the heap mapped here, or a read
   function over a file, another process or a core file.  So the library
   checks a heap in place with the same code that a tool uses on a heap it
   never maps.  The small checks of the fast paths are inline below.

   Objects (offsets are bytes from the heap's base; pages are MM_PAGE bytes):
   - header (page 0): identity, fixed at creation and covered by hdr_sum, then
     changing state;  mm_fmt_header_check;
   - page-map directory (pages 1..MM_DIR_PAGES): one leaf page index per
     window of MM_WIN_PAGES pages;  mm_fmt_dir_check;
   - page-map leaves: one 32-bit mark per page;  mm_fmt_iter walks them;
   - runs: a free run or a large block, marked HEAD on its first page and END
     on its last;  mm_fmt_run_len;  a free run's in-band header, mm_fmt_run_ok;
   - slabs: marked on every page; an in-band header and two bitmaps, then
     slots;  mm_fmt_slab_ident, mm_fmt_slab_bits, mm_fmt_slab_counts;
     a byte of a slab to its slot, mm_fmt_slot;
   - check headers of checked blocks;  mm_fmt_chk_is, mm_fmt_chk_lead.  */

#ifndef MM_FORMAT_H
#define MM_FORMAT_H 1

#include <stddef.h>
#include <stdint.h>

#include "mmalloc.h"		/* MMALLOC_E* codes, MMALLOC_KEYS */

/* --- Constants (changing one changes MM_FORMAT_VERSION) ------------------ */

/* A heap's span: the address range it may grow into.  Default 128 GiB (1 GiB
   where pointers have 32 bits).  It sizes the directory.  */
#ifndef MM_SPAN_MAX
#if UINTPTR_MAX > 0xffffffffu
#define MM_SPAN_MAX ((uint64_t) 1 << 37)
#else
#define MM_SPAN_MAX ((uint64_t) 1 << 30)
#endif
#endif

/* A file's version is the oldest format that says all it holds: readers of
   an older format refuse it (they accept only their own number), readers of
   a newer one read it.  A new file is MM_FORMAT_V1; it becomes MM_FORMAT_V2
   just before it first holds a record of that format, and never goes back.
   hdr_sum reads the version as MM_FORMAT_V1, so that the rise is one store,
   which a kill cannot separate from the sum.  */
#define MM_FORMAT_V1 1		/* the first format */
#define MM_FORMAT_V2 2		/* V1 and mmcheck's lead records (aligned
				   blocks), poisoned slabs (MM_SLAB_POISON)
				   and blocks in quarantine (freed headers in
				   allocated blocks) */
#define MM_FORMAT_V3 3		/* V2 and site records (MM_CHK_SITE) */
#define MM_FORMAT_VERSION MM_FORMAT_V3	/* the newest this build reads */
#define MM_MAGIC "MMALLOC\x1a"	/* 8 bytes, byte-order free: "not a heap" */
#define MM_BYTE_ORDER 0x01020304u	/* native order: foreign files read reversed */
#define MM_PAGE_SHIFT 12
#define MM_PAGE ((size_t) 1 << MM_PAGE_SHIFT)	/* the unit of the page map */
#define MM_WIN_SHIFT 12		/* pages covered by one page-map leaf: 4096 */
#define MM_WIN_PAGES ((uint64_t) 1 << MM_WIN_SHIFT)
#define MM_LEAF_PAGES (MM_WIN_PAGES * 4 / MM_PAGE)	/* a leaf: 16 KiB */
#define MM_WIN_BYTES ((uint64_t) 1 << (MM_PAGE_SHIFT + MM_WIN_SHIFT))
#define MM_DIR_ENTRIES ((MM_SPAN_MAX + MM_WIN_BYTES - 1) / MM_WIN_BYTES)
#define MM_DIR_PAGES ((MM_DIR_ENTRIES * 4 + MM_PAGE - 1) / MM_PAGE)
#define MM_HDR_PAGES (1 + MM_DIR_PAGES)	/* header page + directory pages */
#define MM_ALIGN 16		/* alignment of every block: max_align_t */
#define MM_NCLASSES 44		/* small size classes, 16 .. 32768 bytes */
#define MM_SMALL_MAX 32768
#define MM_CLASS_16K 35		/* the class of 16384 bytes: 2 KiB steps above */
#define MM_SLAB_MAX_PAGES 32
#define MM_NBINS 96		/* free-run bins: 64 exact, then one per doubling */

/* --- Page map -------------------------------------------------------------

   One 32-bit entry per page.  Kind in bits 31..29.  FREE and LARGE runs mark
   their first page HEAD and their last page END, both with the run's length;
   every other page inside a run is PM_NONE.  Every page of a slab carries its
   class and its page offset within the slab.  */

enum
{
  PM_NONE = 0,			/* not a run boundary, or beyond `top' */
  PM_FREE = 1,			/* free run */
  PM_LARGE = 2,			/* one large block */
  PM_SLAB = 3,			/* a slab of small slots */
  PM_META = 4			/* header, directory, page-map leaves */
};
#define PM_KIND(e) ((e) >> 29)
#define PM_HEAD (1u << 28)
#define PM_END (1u << 27)
#define PM_CHECKED (1u << 26)	/* LARGE: the block carries a check header */
#define PM_NMASK ((1u << 26) - 1)	/* run length in pages */
#define PM_MAKE(kind, bits) (((uint32_t) (kind) << 29) | (bits))
#define PM_SLAB_CLS(e) ((e) & 0xff)
#define PM_SLAB_OFF(e) (((e) >> 8) & 0xff)

/* --- The header (first page of the region) ------------------------------- */

struct mm_class_state		/* per size class; guarded by the class lock */
{
  uint64_t partial[2];		/* first unowned slab with free slots:
				   [0] plain, [1] checked */
  uint64_t nslabs;		/* slabs of this class */
  uint64_t nslots;		/* slots in those slabs */
};

struct mm_header
{
  /* Fixed at creation; covered by hdr_sum.  */
  char magic[8];
  uint32_t byte_order;
  uint32_t version;		/* MM_FORMAT_V1 .. MM_FORMAT_VERSION: the
				   oldest format that reads this file */
  uint32_t hdr_size;		/* sizeof (struct mm_header) */
  uint32_t word_size;		/* sizeof (void *) */
  uint32_t page_size;		/* MM_PAGE */
  uint32_t hdr_pages;		/* MM_HDR_PAGES */
  uint32_t nclasses;		/* MM_NCLASSES */
  uint32_t class_sum;		/* fingerprint of the class table */
  uint64_t base;		/* address the region is mapped at */
  uint64_t span;		/* bytes of address space the heap may use */
  uint64_t hdr_sum;		/* FNV-1a of the fields above */

  /* Changing state.  */
  uint32_t state;		/* MM_CLEAN or MM_DIRTY */
  uint32_t flags;		/* MM_F_* */
  uint64_t top;			/* pages in use; the file holds at least these */
  uint64_t dir_sum;		/* FNV-1a of the page-map directory */
  uint64_t keys[MMALLOC_KEYS];	/* user data: absolute addresses */

  /* Page allocator (page lock).  Derived from the page map.  */
  uint64_t bin_mask[2];		/* bit b set: bin b may be non-empty */
  uint64_t bin_head[MM_NBINS];	/* byte offset of the first run, 0 if none */
  uint64_t nlarge;		/* allocated large blocks */
  uint64_t large_pages;		/* pages in them */
  uint64_t nruns;		/* free runs */
  uint64_t run_pages;		/* pages in them */

  struct mm_class_state cls[MM_NCLASSES];
};

#define MM_CLEAN 0x434c4e31u	/* detached properly */
#define MM_DIRTY 0x44525431u	/* attached read-write, or died attached */
#define MM_F_CHECKED 1u		/* new blocks carry check headers */
#define MM_F_USED 2u		/* something was allocated once */

/* --- Runs ------------------------------------------------------------------ */

/* The in-band header of a free run, in its first page.  */
struct mm_run
{
  uint64_t magic;		/* MM_RUN_MAGIC */
  uint64_t next, prev;		/* byte offsets within the bin, 0 = none */
  uint64_t released;		/* MM_RUN_HOLES, MM_RUN_ZERO */
  uint64_t since;		/* when its oldest part became free: ms on the
				   clock of the process that freed it; a time
				   to come is taken for now */
};
/* Bits of a run's `released': pages after the first were given back (file
   holes), so a heap file reserves blocks for them again before use; pages
   after the first are known to read zero and hold no memory.  A run without
   MM_RUN_ZERO is dirty.  */
#define MM_RUN_HOLES 1u
#define MM_RUN_ZERO 2u
#define MM_RUN_MAGIC 0x6e75722d6d6dULL

/* --- Slabs ------------------------------------------------------------------ */

/* The in-band header of a slab, at its start; slots follow at objoff.  Who
   writes which field, and how, is told in mmprivate.h.  */
struct mm_slab
{
  uint32_t magic;		/* MM_SLAB_MAGIC */
  uint16_t cls;
  uint16_t flags;		/* MM_SLAB_* */
  uint32_t nobj;		/* slots in the slab */
  uint32_t owner;		/* thread cache that allocates from it, 0 = none;
				   cleared by detach and by recovery */
  uint32_t hint;		/* word of bits[] to search first */
  uint32_t used;		/* bits set in bits (slots past nobj aside) */
  uint32_t rfree;		/* frees by other threads: counted before their
				   bit is set in rbits, so never fewer than
				   rbits' bits (atomic; may lead) */
  uint32_t ref;			/* frees by non-owners reading this header
				   now, | MM_SLAB_RETURN */
  uint64_t next, prev;		/* partial list, byte offsets, 0 = none */
  uint64_t bits[];		/* [words] then rbits[words]: slot i is
				   allocated iff bits has i and rbits has not.
				   rbits is a subset of bits; slots past nobj
				   are set in bits, clear in rbits.  */
};
#define MM_SLAB_MAGIC 0x62616c73u
#define MM_SLAB_CHECKED 1u
#define MM_SLAB_LISTED 2u	/* on its class's partial list (no owner) */
#define MM_SLAB_FULL 4u		/* on its owner's full list */
#define MM_SLAB_AVAIL 8u	/* on its owner's avail list */
#define MM_SLAB_POISON 16u	/* checked, and every free slot is kept poisoned;
				   slabs of older files lack it until a slot of
				   theirs is handed out */
#define MM_SLAB_FLAGS 31u	/* every flag a slab may carry */
#define MM_SLAB_RETURN 0x80000000u	/* ref: found empty while pinned; the
					   last to unpin gives the slab back */

/* A size class: constant, computed by mm_fmt_classes.  */
struct mm_class
{
  uint32_t size;		/* slot size in bytes, a multiple of MM_ALIGN */
  uint32_t nobj;		/* slots per slab */
  uint16_t pages;		/* pages per slab */
  uint16_t objoff;		/* offset of slot 0, a multiple of 64: the
				   header and both bitmaps fit before it */
  uint32_t words;		/* 64-bit words of each bitmap */
  uint64_t recip;		/* 2^40 / size + 1: n / size == n * recip >> 40
				   for every n below a slab's size */
  uint32_t span;		/* nobj * size */
  uint32_t pad;
};

/* --- Check headers ------------------------------------------------------------ */

/* The header of a block under checking, just before the user's pointer.  A
   block aligned beyond 16 bytes starts with a lead record instead (magic
   MM_CHK_LEAD, size: the offset of the user's pointer from the block's
   start), and its header sits just before the aligned pointer.  A block
   whose allocation site is known starts with a site record instead (magic
   MM_CHK_SITE, size: the address of the code that allocated it, in the
   process that did): its header follows it, the user's pointer is 32 bytes
   in.  The sum mixes the record's address in the heap's process (base +
   offset).  */
struct mm_chk
{
  uint64_t size;		/* bytes asked for (a lead record: the offset) */
  uint32_t magic;		/* MM_CHK_LIVE, MM_CHK_FREE, MM_CHK_LEAD, or
				   MM_CHK_ARMING while size and sum change */
  uint32_t sum;			/* mm_fmt_chk_sum (size, address) */
};
#define MM_CHK_LIVE 0x4556494cu
#define MM_CHK_FREE 0x45455246u
#define MM_CHK_LEAD 0x4441454cu
#define MM_CHK_ARMING 0x4d524141u
#define MM_CHK_SITE 0x45544953u
#define MM_CHK_BYTE 0xd7	/* fills a checked block after its end */
#define MM_CHK_POISON 0xdf	/* fills a freed checked block */

/* --- The layout the file depends on ----------------------------------------- */

_Static_assert (sizeof (struct mm_header) <= MM_PAGE, "the header fits its page");
_Static_assert (MM_DIR_PAGES * MM_PAGE >= MM_DIR_ENTRIES * 4, "the directory fits");
_Static_assert (MM_LEAF_PAGES * MM_PAGE == MM_WIN_PAGES * 4, "a leaf maps its window");
_Static_assert (sizeof (struct mm_chk) == 16 && sizeof (struct mm_chk) == MM_ALIGN,
		"a check header keeps the user's pointer aligned");
_Static_assert (sizeof (struct mm_run) <= MM_PAGE, "a run header fits its first page");
_Static_assert (sizeof (struct mm_slab) == 48 && sizeof (struct mm_slab) % 8 == 0,
		"the slab header, then its bitmaps");
_Static_assert (MM_SMALL_MAX == 32768 && MM_NCLASSES == MM_CLASS_16K + 1 + 8,
		"the largest class: 16 KiB then eight steps of 2 KiB");
_Static_assert (MM_NCLASSES <= 0xff && MM_SLAB_MAX_PAGES <= 0xff,
		"a slab mark holds its class and page offset in a byte each");
_Static_assert (MM_SMALL_MAX < (MM_SLAB_MAX_PAGES << MM_PAGE_SHIFT),
		"the largest class fits a slab");
_Static_assert (offsetof (struct mm_header, hdr_sum) == 56
		&& offsetof (struct mm_header, top) == 72
		&& offsetof (struct mm_header, keys) == 88
		&& offsetof (struct mm_header, bin_head) == 232
		&& offsetof (struct mm_header, cls) == 1032,
		"header fields where files have them");
_Static_assert (offsetof (struct mm_slab, nobj) == 8 && offsetof (struct mm_slab, owner) == 12
		&& offsetof (struct mm_slab, next) == 32 && offsetof (struct mm_slab, bits) == 48,
		"slab header fields where files have them");
_Static_assert (offsetof (struct mm_run, next) == 8 && offsetof (struct mm_run, since) == 32,
		"run header fields where files have them");

/* --- FNV-1a ------------------------------------------------------------------- */

#define MM_FNV64_BASIS 14695981039346656037ULL
#define MM_FNV64_PRIME 1099511628211ULL
#define MM_FNV32_BASIS 2166136261u
#define MM_FNV32_PRIME 16777619u

/* One step of FNV-1a: the sum S with the unit X (a byte, or a word where
   the format sums words).  */
static inline uint64_t
mm_fnv64 (uint64_t s, uint64_t x)
{
  return (s ^ x) * MM_FNV64_PRIME;
}

static inline uint32_t
mm_fnv32 (uint32_t s, uint32_t x)
{
  return (s ^ x) * MM_FNV32_PRIME;
}

/* --- A heap as the format layer sees it ------------------------------------ */

/* Copy LEN bytes at ADDR, an address in the heap's own process, to DST:
   0, or -1 if they cannot be read.  */
typedef int (*mm_fmt_read_fn) (void *ctx, uint64_t addr, void *dst, size_t len);

struct mm_fmt_heap
{
  uint64_t base;		/* where the heap lives in its process (header) */
  uint64_t span;		/* bytes it may grow into (header) */
  uint64_t top;			/* pages in use (header); nothing is read past */
  const struct mm_class *cls;	/* the class table, 256 entries (mm_fmt_classes) */
  const unsigned char *mem;	/* the heap mapped in this process, or NULL */
  mm_fmt_read_fn read;		/* else: how to read it */
  void *ctx;
};

/* Copy LEN bytes at offset OFF of heap H to DST: 0, or -1 if they are not
   all below `top' or cannot be read.  */
int mm_fmt_read (const struct mm_fmt_heap *h, uint64_t off, void *dst, size_t len);

/* --- Size classes --------------------------------------------------------- */

/* Fill TAB (256 entries: those past MM_NCLASSES zero, so any 8-bit class
   field indexes it) with the class table of this format.  */
void mm_fmt_classes (struct mm_class tab[256]);
/* The fingerprint of TAB kept in the header.  */
uint32_t mm_fmt_classes_sum (const struct mm_class *tab);

/* --- Header and directory -------------------------------------------------- */

/* FNV-1a of the fixed fields of H, its version read as MM_FORMAT_V1.  */
uint64_t mm_fmt_header_sum (const struct mm_header *h);
/* 0 if H (a copy of the header) describes a heap of this format, with the
   class table TAB, whose file has FILE_SIZE bytes (0: unknown); else the
   MMALLOC_E* code of what is wrong.  */
int mm_fmt_header_check (const struct mm_header *h, const struct mm_class *tab,
			 uint64_t file_size);

/* Are the list heads of H (the bins' first runs, the partial lists' first
   slabs) links of its heap (mm_fmt_link_ok: 0, or a page after the header
   below top)?  */
int mm_fmt_header_links (const struct mm_header *h);

/* The entries of the directory DIR (MM_DIR_ENTRIES, a copy or the mapped
   one) up to its last that is not 0.  */
uint64_t mm_fmt_dir_used (const uint32_t *dir);
/* FNV-1a of the directory DIR (header's dir_sum).  */
uint64_t mm_fmt_dir_sum (const uint32_t *dir);
/* 0 or MMALLOC_ECORRUPT: is DIR a directory that growth makes for a heap of
   TOP pages and SPAN bytes?  The entries that are not 0 come first, one for
   every window below TOP at least, each leaf after the one before, none
   above its own window's first page (the header aside), each wholly below
   TOP; with DIRTY, windows past TOP may name leaves at or above it (a growth
   that died before moving `top': recovery clears them).  */
int mm_fmt_dir_check (const uint32_t *dir, uint64_t top, uint64_t span, int dirty);

/* --- Runs -------------------------------------------------------------------- */

/* The length of the run whose first page PG (below TOP) has the mark HEAD and
   whose last page has the mark TAIL (HEAD itself for a run of one page): its
   pages if they agree (a FREE or LARGE head, no stray bits, END with the same
   length and kind) and the run ends by TOP; else 0.  */
static inline uint64_t
mm_fmt_run_len (uint32_t head, uint32_t tail, uint64_t pg, uint64_t top)
{
  uint32_t kind = PM_KIND (head), extra = kind == PM_LARGE ? PM_CHECKED : 0;
  uint64_t n = head & PM_NMASK;
  if ((kind != PM_FREE && kind != PM_LARGE) || n == 0 || pg >= top || n > top - pg
      || (head & ~(PM_NMASK | PM_END | extra)) != PM_MAKE (kind, PM_HEAD))
    return 0;
  if (n == 1)
    return (head & PM_END) && tail == head ? 1 : 0;
  return !(head & PM_END) && tail == ((head & ~PM_HEAD) | PM_END) ? n : 0;
}

/* The first page of the run whose END mark TAIL is on page PG: where its
   HEAD must be, or 0 if TAIL is no END mark of a run after the header.  */
static inline uint64_t
mm_fmt_run_first (uint32_t tail, uint64_t pg)
{
  uint64_t n = tail & PM_NMASK;
  uint32_t kind = PM_KIND (tail);
  if ((kind != PM_FREE && kind != PM_LARGE) || !(tail & PM_END) || n == 0
      || pg + 1 < MM_HDR_PAGES || n > pg + 1 - MM_HDR_PAGES)
    return 0;
  return pg + 1 - n;
}

/* Is OFF a usable metadata link of a heap of TOP pages: 0 (none), or a
   page of the heap's body?  */
static inline int
mm_fmt_link_ok (uint64_t off, uint64_t top)
{
  return off == 0 || (off % MM_PAGE == 0 && off >= (uint64_t) MM_HDR_PAGES * MM_PAGE
		      && off < top << MM_PAGE_SHIFT);
}

/* Is R (a copy of the first bytes of a free run) a run header whose links
   are links of a heap of TOP pages?  */
static inline int
mm_fmt_run_ok (const struct mm_run *r, uint64_t top)
{
  return r->magic == MM_RUN_MAGIC && mm_fmt_link_ok (r->next, top)
    && mm_fmt_link_ok (r->prev, top);
}

/* --- Slabs ------------------------------------------------------------------- */

/* The marks of the pages of a slab of class CLS: page I of it.  */
static inline uint32_t
mm_fmt_slab_mark (unsigned cls, uint32_t i)
{
  return PM_MAKE (PM_SLAB, (i << 8) | cls);
}

/* Is the slab header S that of a slab of class CLS (its page marks' class),
   with C = the table's entry of CLS: magic, class and slot count.  Every
   reader of a slab header asks this first; the fast free asks it inline.  */
static inline int
mm_fmt_slab_ident (const struct mm_slab *s, unsigned cls, const struct mm_class *c)
{
  return __atomic_load_n (&s->magic, __ATOMIC_RELAXED) == MM_SLAB_MAGIC && s->cls == cls
    && cls < MM_NCLASSES && s->nobj == c->nobj;
}

/* What is wrong with a slab header whose identity holds, and its bitmaps
   (C->words of bits, then of rbits, right after S): 0, or a message.  What
   holds at every instant, also while threads use the slab: flags known,
   hint within the bitmap, slots past the end taken in bits and not in
   rbits.  With STILL (no thread writes its bits: the slab has no owner, or
   the caller is its owner), rbits is a subset of bits: what must hold
   before a link to the slab is followed and written through.  Words are
   read one at a time (relaxed atomic loads), rbits before bits.  */
const char *mm_fmt_slab_bits (const struct mm_slab *s, const struct mm_class *c, int still);

/* What is wrong with the counts of a slab that no thread owns (its owner 0)
   and whose bits hold still: used and rfree against the bitmaps, and its
   partial-list mark against its free slots; 0, or a message.  */
const char *mm_fmt_slab_counts (const struct mm_slab *s, const struct mm_class *c);

/* Byte REL of a slab of class C (REL from the slab's first byte), counted
   from slot 0: huge when REL is in the slab's header; the byte is in a slot
   when this is below C->span.  */
static inline uint64_t
mm_fmt_slot_rel (const struct mm_class *c, uint64_t rel)
{
  return rel - c->objoff;
}

/* The slot that holds byte R from slot 0 (R below C->span): R / size, by
   the class's reciprocal.  */
static inline uint64_t
mm_fmt_slot_idx (const struct mm_class *c, uint64_t r)
{
  return (r * c->recip) >> 40;
}

/* The slot of class C that holds byte REL of its slab: its index, with
   *INTO the byte's offset within it; or C->nobj (*INTO 0) when REL is in
   the slab's header or past its last slot.  A pointer to a block is the start of slot
   IDX when *INTO is 0.  The fast frees use the two steps above as this
   does, in the order their other checks want.  */
static inline uint64_t
mm_fmt_slot (const struct mm_class *c, uint64_t rel, uint64_t *into)
{
  uint64_t r = mm_fmt_slot_rel (c, rel);
  *into = 0;
  if (r >= c->span)
    return c->nobj;
  uint64_t idx = mm_fmt_slot_idx (c, r);
  *into = r - idx * c->size;
  return idx;
}

/* The offset of slot IDX of a slab of class C from the slab's start.  */
static inline uint64_t
mm_fmt_slot_off (const struct mm_class *c, uint64_t idx)
{
  return c->objoff + idx * c->size;
}

/* The offset of the slab that holds the byte OFF of a heap, whose page has
   the slab mark E.  */
static inline uint64_t
mm_fmt_slab_of (uint64_t off, uint32_t e)
{
  return ((off >> MM_PAGE_SHIFT) - PM_SLAB_OFF (e)) << MM_PAGE_SHIFT;
}

/* The slab that holds byte OFF of a heap of TOP pages, whose page has the
   mark E, with C the table's entry of E's class: its offset in *SLAB, if E
   is a slab mark that places a slab of its class wholly after the header
   and below TOP; else 0.  */
static inline int
mm_fmt_slab_place (uint32_t e, uint64_t off, uint64_t top, const struct mm_class *c,
		   uint64_t *slab)
{
  uint64_t page = off >> MM_PAGE_SHIFT, pg;
  if (PM_KIND (e) != PM_SLAB || PM_SLAB_CLS (e) >= MM_NCLASSES || PM_SLAB_OFF (e) >= c->pages
      || PM_SLAB_OFF (e) > page)
    return 0;
  pg = page - PM_SLAB_OFF (e);
  if (pg < MM_HDR_PAGES || pg > top || c->pages > top - pg)
    return 0;
  *slab = pg << MM_PAGE_SHIFT;
  return 1;
}

/* --- Check headers ----------------------------------------------------------- */

/* The sum of a check record of SIZE at ADDR (in the heap's process).  */
static inline uint32_t
mm_fmt_chk_sum (uint64_t size, uint64_t addr)
{
  uint64_t x = size ^ addr ^ 0x6d6d636b9e3779b9ULL;
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9ULL;
  return (uint32_t) (x ^ (x >> 32));
}

/* Is C (a copy of the record at ADDR) a whole record with MAGIC?  */
static inline int
mm_fmt_chk_is (const struct mm_chk *c, uint64_t addr, uint32_t magic)
{
  return c->magic == magic && c->sum == mm_fmt_chk_sum (c->size, addr);
}

/* The offset of the user's pointer from the first byte of a checked block of
   ROOM bytes at ADDR, whose first record is C: 16, 32 after a site record,
   or what its lead record says; 0 if that record is damaged.  */
static inline size_t
mm_fmt_chk_lead (const struct mm_chk *c, uint64_t addr, size_t room)
{
  if (c->magic == MM_CHK_SITE)
    return mm_fmt_chk_is (c, addr, MM_CHK_SITE) && room > 2 * sizeof (struct mm_chk)
      ? 2 * sizeof (struct mm_chk) : 0;
  if (c->magic != MM_CHK_LEAD)
    return sizeof (struct mm_chk);
  if (!mm_fmt_chk_is (c, addr, MM_CHK_LEAD) || c->size % MM_ALIGN
      || c->size < 2 * sizeof (struct mm_chk) || c->size > room - sizeof (struct mm_chk) - 1)
    return 0;
  return (size_t) c->size;
}

/* The allocation site that C (a copy of the first record of a checked block
   at ADDR) records; 0 if none.  */
static inline uint64_t
mm_fmt_chk_site (const struct mm_chk *c, uint64_t addr)
{
  return mm_fmt_chk_is (c, addr, MM_CHK_SITE) ? c->size : 0;
}

/* --- The page map -------------------------------------------------------------

   One walk of the page map below `top', in page order, with one rule for
   what each page starts:
   - a page of the header or of a leaf (by the directory): META, one page;
   - a FREE or LARGE HEAD mark whose END agrees, within TOP: the whole run;
   - the first page of a slab whose every page is marked so: the whole slab;
   - anything else: one page that starts nothing (a flaw).
   Each thing comes with a flaw, 0 if none; a thing with a flaw is one page.
   Nothing is read but the directory and the leaves (and slab headers with
   MM_FMT_HEADERS), each read checked against `top'.  */

enum
{
  MM_FMT_OK = 0,
  MM_FMT_NOTHING,		/* a page that starts nothing: an unmarked page,
				   a mark inside something, a stray END */
  MM_FMT_BAD_RUN,		/* a run's HEAD without its END, or too long */
  MM_FMT_BAD_SLAB,		/* a slab's first page whose pages are not all
				   marked, or that runs past `top' */
  MM_FMT_BAD_HEADER,		/* with MM_FMT_HEADERS: a slab whose header is
				   not one of its class */
  MM_FMT_META,			/* a header or leaf page not marked META */
  MM_FMT_STRAY_META,		/* a META mark outside the header and leaves */
  MM_FMT_LEAF,			/* a thing over a leaf of the page map */
  MM_FMT_INSIDE,		/* with MM_FMT_INTERIOR: a whole run with marks
				   inside (the thing is still the whole run) */
  MM_FMT_UNREADABLE		/* the page map could not be read here */
};
/* What the walk checks beyond the marks.  */
#define MM_FMT_HEADERS 1	/* each slab's header (mm_fmt_slab_ident) */
#define MM_FMT_INTERIOR 2	/* the pages inside each run are unmarked */

struct mm_fmt_thing
{
  uint64_t pg, n;		/* its first page, its pages */
  uint32_t kind;		/* PM_META, PM_FREE, PM_LARGE, PM_SLAB; PM_NONE
				   with a flaw other than MM_FMT_INSIDE */
  uint32_t mark;		/* its first page's mark */
  int flaw;			/* MM_FMT_* */
};

struct mm_fmt_iter
{
  const struct mm_fmt_heap *h;
  int check;			/* MM_FMT_HEADERS | MM_FMT_INTERIOR */
  uint64_t pg;			/* the next page */
  uint64_t w;			/* the directory entry of the next leaf */
  uint64_t wleaf;		/* its value (0: none), ~0 until read */
  uint64_t clo, chi;		/* pages of one window whose marks are at marks */
  const uint32_t *marks;	/* in the heap mapped here, or cache */
  uint32_t cache[256];		/* marks read through h->read */
};

/* Start a walk of H at page FROM, checking CHECK.  */
void mm_fmt_iter_init (struct mm_fmt_iter *it, const struct mm_fmt_heap *h, uint64_t from,
		       int check);
/* The next thing in *T: 1, or 0 at `top'.  */
int mm_fmt_iter_next (struct mm_fmt_iter *it, struct mm_fmt_thing *t);
/* The mark of page PG (below `top') of H in *E: 0, or -1 if the directory
   names no leaf for it below `top', or it cannot be read.  */
int mm_fmt_pm_read (const struct mm_fmt_heap *h, uint64_t pg, uint32_t *e);
/* What a flaw is, in words.  */
const char *mm_fmt_flaw_name (int flaw);

#endif /* MM_FORMAT_H */
