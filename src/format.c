/* format.c -- decoding and validating the objects of a heap (format.h).

   Pure functions of their arguments: they keep no state and take no lock,
   and read a heap only through struct mm_fmt_heap, each read checked against
   its `top' first, so they work the same on a heap mapped here and on one
   read from a file, another process or a core file.  What the fast paths
   need is inline in format.h; this file holds the sums, the checks of the
   header and the directory, the slab bitmaps' checks and the walk of the
   page map.  */

#include "format.h"

#include <stddef.h>

#include <string.h>

#define CHK sizeof (struct mm_chk)

int
mm_fmt_read (const struct mm_fmt_heap *h, uint64_t off, void *dst, size_t len)
{
  uint64_t end = h->top << MM_PAGE_SHIFT;
  if (off > end || len > end - off)
    return -1;
  if (h->mem)
    {
      memcpy (dst, h->mem + off, len);
      return 0;
    }
  return h->read && h->read (h->ctx, h->base + off, dst, len) == 0 ? 0 : -1;
}

/* --- size classes ----------------------------------------------------------- */

static uint32_t
class_size (unsigned c)
{
  if (c < 8)
    return (c + 1) * 16;
  if (c > MM_CLASS_16K)		/* eight per doubling from 16 KiB to 32 KiB */
    return 16384 + (c - MM_CLASS_16K) * 2048;
  unsigned b = 7 + (c - 8) / 4, i = (c - 8) % 4;
  return (uint32_t) ((4 + i + 1) << (b - 2));
}

/* The bytes before slot 0 of a slab of NOBJ slots: header and two bitmaps.  */
static size_t
slab_hdr_bytes (uint32_t nobj)
{
  size_t h = sizeof (struct mm_slab) + 16 * (((size_t) nobj + 63) / 64);
  return (h + 63) & ~(size_t) 63;
}

/* Pages per slab: the fewest that waste at most 1/16 of the slab, else the
   least wasteful of up to MM_SLAB_MAX_PAGES.  */
void
mm_fmt_classes (struct mm_class tab[256])
{
  memset (tab, 0, 256 * sizeof *tab);
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    {
      uint32_t size = class_size (c), best_pages = 0, best_nobj = 0;
      size_t best_waste = (size_t) -1;
      for (uint32_t n = 1; n <= MM_SLAB_MAX_PAGES; n++)
	{
	  size_t bytes = (size_t) n * MM_PAGE;
	  uint32_t nobj = (uint32_t) (bytes / size);
	  while (nobj && (slab_hdr_bytes (nobj) + (size_t) nobj * size > bytes
			  || nobj >= MM_PAGE))	/* a recent slot packs the index (tcache.c) */
	    nobj--;
	  if (!nobj)
	    continue;
	  size_t waste = bytes - slab_hdr_bytes (nobj) - (size_t) nobj * size;
	  if (waste * best_pages < best_waste * n || !best_pages)
	    {
	      best_waste = waste;
	      best_pages = n;
	      best_nobj = nobj;
	    }
	  if (waste * 16 <= bytes)
	    break;
	}
      tab[c].size = size;
      tab[c].pages = (uint16_t) best_pages;
      tab[c].nobj = best_nobj;
      tab[c].objoff = (uint16_t) slab_hdr_bytes (best_nobj);
      tab[c].recip = ((uint64_t) 1 << 40) / size + 1;
      tab[c].words = (best_nobj + 63) / 64;
      tab[c].span = best_nobj * size;
    }
}

uint32_t
mm_fmt_classes_sum (const struct mm_class *tab)
{
  uint32_t h = MM_FNV32_BASIS;
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    {
      uint32_t v[4] = { tab[c].size, tab[c].nobj, tab[c].pages, tab[c].objoff };
      for (int i = 0; i < 4; i++)
	h = mm_fnv32 (h, v[i]);
    }
  return h;
}

/* --- header and directory ----------------------------------------------------- */

uint64_t
mm_fmt_header_sum (const struct mm_header *h)
{
  unsigned char p[offsetof (struct mm_header, hdr_sum)];
  uint32_t v1 = MM_FORMAT_V1;
  memcpy (p, h, sizeof p);
  memcpy (p + offsetof (struct mm_header, version), &v1, sizeof v1);
  uint64_t s = MM_FNV64_BASIS;
  for (size_t i = 0; i < sizeof p; i++)
    s = mm_fnv64 (s, p[i]);
  return s;
}

int
mm_fmt_header_check (const struct mm_header *h, const struct mm_class *tab,
		     uint64_t file_size)
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
  if (h->hdr_sum != mm_fmt_header_sum (h))
    return MMALLOC_ECORRUPT;
  if (h->hdr_size != sizeof (struct mm_header) || h->hdr_pages != MM_HDR_PAGES
      || h->nclasses != MM_NCLASSES || h->class_sum != mm_fmt_classes_sum (tab))
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

int
mm_fmt_header_links (const struct mm_header *h)
{
  for (unsigned b = 0; b < MM_NBINS; b++)
    if (!mm_fmt_link_ok (h->bin_head[b], h->top))
      return 0;
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    for (int k = 0; k < 2; k++)
      if (!mm_fmt_link_ok (h->cls[c].partial[k], h->top))
	return 0;
  return 1;
}

/* The entries of DIR up to its last that is not 0, one by one.  */
static uint64_t
dir_used_slow (const uint32_t *dir)
{
  uint64_t n = MM_DIR_ENTRIES;
  while (n && !dir[n - 1])
    n--;
  return n;
}

/* Fast where the directory is one that growth makes: the entries in use come
   first and the rest (nearly all) are 0, compared a page at a time.  */
uint64_t
mm_fmt_dir_used (const uint32_t *dir)
{
  static const uint32_t zeros[MM_PAGE / 4];
  const uint64_t per = MM_PAGE / 4;
  uint64_t n = 0;
  while (n < MM_DIR_ENTRIES && dir[n])
    n++;
  uint64_t chunk = (n + per - 1) / per * per;	/* past N's page */
  for (uint64_t w = n; w < chunk && w < MM_DIR_ENTRIES; w++)
    if (dir[w])
      return dir_used_slow (dir);
  for (uint64_t w = chunk; w < MM_DIR_ENTRIES; w += per)
    if (memcmp (dir + w, zeros, sizeof zeros))
      return dir_used_slow (dir);
  return n;
}

/* On a clean file the sum stands for checking every leaf (which would cost a
   fault per leaf at each attach).  FNV-1a over every entry; the zeros after
   the last entry in use (nearly all of them) only multiply by the prime, so
   they are folded into one power of it.  */
uint64_t
mm_fmt_dir_sum (const uint32_t *dir)
{
  uint64_t n = mm_fmt_dir_used (dir), s = MM_FNV64_BASIS, p = MM_FNV64_PRIME;
  for (uint64_t w = 0; w < n; w++)
    s = mm_fnv64 (s, dir[w]);
  for (uint64_t k = MM_DIR_ENTRIES - n; k; k >>= 1, p *= p)
    if (k & 1)
      s *= p;
  return s;
}

/* A leaf is made at the start of the growth that first reaches its window
   and is never freed; its pages are marked META before `top' covers them.  */
int
mm_fmt_dir_check (const uint32_t *dir, uint64_t top, uint64_t span, int dirty)
{
  uint64_t wins = ((top - 1) >> MM_WIN_SHIFT) + 1, next = MM_HDR_PAGES;
  uint64_t used = mm_fmt_dir_used (dir), spanpg = span >> MM_PAGE_SHIFT;
  int ended = 0;
  if (top == 0 || used < wins)
    return MMALLOC_ECORRUPT;
  for (uint64_t w = 0; w < used; w++)
    {
      uint64_t leaf = dir[w], first = w << MM_WIN_SHIFT;
      if (!leaf)
	{
	  if (w < wins)
	    return MMALLOC_ECORRUPT;
	  ended = 1;
	  continue;
	}
      if (ended || leaf < next || leaf > (first > MM_HDR_PAGES ? first : MM_HDR_PAGES))
	return MMALLOC_ECORRUPT;
      if (leaf + MM_LEAF_PAGES > top
	  && (!dirty || w < wins || leaf < top || leaf + MM_LEAF_PAGES > spanpg))
	return MMALLOC_ECORRUPT;
      next = leaf + MM_LEAF_PAGES;
    }
  return 0;
}

/* --- slabs ---------------------------------------------------------------------- */

/* Slots past the end of a slab of C, in its last bitmap word.  */
static uint64_t
slab_tail (const struct mm_class *c)
{
  return c->nobj % 64 ? ~0ULL << (c->nobj % 64) : 0;
}

const char *
mm_fmt_slab_bits (const struct mm_slab *s, const struct mm_class *c, int still)
{
  if (__atomic_load_n (&s->flags, __ATOMIC_RELAXED) & ~MM_SLAB_FLAGS)
    return "slab header: unknown flags";
  if (__atomic_load_n (&s->hint, __ATOMIC_RELAXED) >= c->words)
    return "slab header: hint past the bitmap";
  const uint64_t *rb = s->bits + c->words;
  for (uint32_t w = 0; w < c->words; w++)
    {
      uint64_t r = __atomic_load_n (&rb[w], __ATOMIC_RELAXED);
      uint64_t b = __atomic_load_n (&s->bits[w], __ATOMIC_RELAXED);
      uint64_t tail = w + 1 == c->words ? slab_tail (c) : 0;
      if (r & tail)
	return "slab: slot past the end marked freed";
      if ((b & tail) != tail)
	return "slab bitmap: slot past the end marked free";
      if (still && (r & ~b))
	return "slab: slot freed by another thread was not allocated";
    }
  return 0;
}

const char *
mm_fmt_slab_counts (const struct mm_slab *s, const struct mm_class *c)
{
  uint16_t flags = __atomic_load_n (&s->flags, __ATOMIC_RELAXED);
  uint32_t used = 0, pending = 0;
  const uint64_t *rb = s->bits + c->words;
  for (uint32_t w = 0; w < c->words; w++)
    {
      uint64_t tail = w + 1 == c->words ? slab_tail (c) : 0;
      uint64_t r = __atomic_load_n (&rb[w], __ATOMIC_ACQUIRE);
      uint64_t b = __atomic_load_n (&s->bits[w], __ATOMIC_ACQUIRE) & ~tail;
      pending += (uint32_t) __builtin_popcountll (r & b);
      used += (uint32_t) __builtin_popcountll (b & ~r);
    }
  /* A free counts itself in rfree before it marks rbits, and a merge takes
     both: read after rbits, rfree may lead them (frees counted, not marked
     yet), never lag.  A slab off the lists is full but for such frees,
     which list it once marked; a listed one has a free slot.  */
  uint32_t rfree = __atomic_load_n (&s->rfree, __ATOMIC_ACQUIRE);
  if (__atomic_load_n (&s->used, __ATOMIC_RELAXED) != used + pending || rfree < pending)
    return "slab counts differ from its bitmaps";
  if ((flags & MM_SLAB_LISTED) ? used == c->nobj : used + pending < c->nobj)
    return "slab partial-list mark wrong";
  return 0;
}

/* --- the page map ------------------------------------------------------------- */

/* The page that holds the mark of page PG by directory entry LEAF.  */
static uint64_t
mark_off (uint64_t leaf, uint64_t pg)
{
  return (leaf << MM_PAGE_SHIFT) + (pg & (MM_WIN_PAGES - 1)) * 4;
}

/* The leaf of PG's window: 0 if none below `top' (a leaf of a directory
   that was not checked may be anywhere).  */
static uint64_t
leaf_of (const struct mm_fmt_heap *h, uint64_t pg)
{
  uint64_t w = pg >> MM_WIN_SHIFT;
  uint32_t leaf;
  if (w >= MM_DIR_ENTRIES || mm_fmt_read (h, MM_PAGE + w * 4, &leaf, 4) < 0)
    return 0;
  if (leaf < MM_HDR_PAGES || leaf > h->top || MM_LEAF_PAGES > h->top - leaf)
    return 0;
  return leaf;
}

int
mm_fmt_pm_read (const struct mm_fmt_heap *h, uint64_t pg, uint32_t *e)
{
  uint64_t leaf = pg < h->top ? leaf_of (h, pg) : 0;
  if (!leaf)
    return -1;
  if (h->mem)
    {
      *e = __atomic_load_n ((const uint32_t *) (const void *) (h->mem + mark_off (leaf, pg)),
			    __ATOMIC_ACQUIRE);
      return 0;
    }
  return mm_fmt_read (h, mark_off (leaf, pg), e, 4);
}

void
mm_fmt_iter_init (struct mm_fmt_iter *it, const struct mm_fmt_heap *h, uint64_t from,
		  int check)
{
  it->h = h;
  it->check = check;
  it->pg = from;
  it->w = 0;
  it->wleaf = ~(uint64_t) 0;
  it->clo = it->chi = 0;
  it->marks = it->cache;
}

/* The mark of page PG for the walk: the marks of its window are found once
   (in place in the heap mapped here, else read into a cache).  0 or -1.  */
static int
iter_mark (struct mm_fmt_iter *it, uint64_t pg, uint32_t *e)
{
  const struct mm_fmt_heap *h = it->h;
  if (pg < it->clo || pg >= it->chi)
    {
      uint64_t leaf = pg < h->top ? leaf_of (h, pg) : 0;
      uint64_t lo = h->mem ? pg & ~(MM_WIN_PAGES - 1) : pg;
      uint64_t hi = (pg | (MM_WIN_PAGES - 1)) + 1;
      if (hi > h->top)
	hi = h->top;
      if (!h->mem && hi - lo > sizeof it->cache / 4)
	hi = lo + sizeof it->cache / 4;
      it->clo = it->chi = 0;
      if (!leaf)
	return -1;
      /* Where the marks cannot all be read (a truncated file or core), the
         walk reads them one at a time.  */
      if (h->mem)
	it->marks = (const uint32_t *) (const void *) (h->mem + mark_off (leaf, lo));
      else if (mm_fmt_read (h, mark_off (leaf, lo), it->cache, (size_t) (hi - lo) * 4) == 0)
	it->marks = it->cache;
      else if (mm_fmt_read (h, mark_off (leaf, pg), it->cache, 4) == 0)
	{
	  it->marks = it->cache;
	  lo = pg;
	  hi = pg + 1;
	}
      else
	return -1;
      it->clo = lo;
      it->chi = hi;
    }
  *e = __atomic_load_n (&it->marks[pg - it->clo], __ATOMIC_ACQUIRE);
  return 0;
}

/* Are the marks of pages [FROM, TO) all 0?  */
static int
iter_zero (struct mm_fmt_iter *it, uint64_t from, uint64_t to)
{
  uint32_t e;
  for (uint64_t pg = from; pg < to; pg++)
    if (iter_mark (it, pg, &e) < 0 || e)
      return 0;
  return 1;
}

/* The thing that starts at PG with the mark E (not a header or leaf page),
   below LIMIT (the next leaf, or `top'): its pages and kind in T, or a flaw.  */
static int
iter_thing (struct mm_fmt_iter *it, uint64_t pg, uint32_t e, uint64_t limit,
	    struct mm_fmt_thing *t)
{
  const struct mm_fmt_heap *h = it->h;
  uint32_t kind = PM_KIND (e), tail = e;
  if (kind == PM_FREE || kind == PM_LARGE)
    {
      uint64_t n = e & PM_NMASK;
      if (!(e & PM_HEAD))
	return MM_FMT_NOTHING;
      if (n > 1 && (n > h->top - pg || iter_mark (it, pg + n - 1, &tail) < 0))
	return MM_FMT_BAD_RUN;
      if (!(n = mm_fmt_run_len (e, tail, pg, h->top)))
	return MM_FMT_BAD_RUN;
      if (pg + n > limit)
	return MM_FMT_LEAF;
      t->n = n;
      t->kind = kind;
      if ((it->check & MM_FMT_INTERIOR) && n > 2 && !iter_zero (it, pg + 1, pg + n - 1))
	return MM_FMT_INSIDE;
      return 0;
    }
  if (kind == PM_META)
    return MM_FMT_STRAY_META;
  unsigned cls = PM_SLAB_CLS (e);
  if (kind != PM_SLAB || e != mm_fmt_slab_mark (cls, 0))
    return MM_FMT_NOTHING;
  const struct mm_class *c = &h->cls[cls];
  if (cls >= MM_NCLASSES || c->pages > h->top - pg)
    return MM_FMT_BAD_SLAB;
  for (uint32_t i = 1; i < c->pages; i++)
    if (iter_mark (it, pg + i, &tail) < 0 || tail != mm_fmt_slab_mark (cls, i))
      return MM_FMT_BAD_SLAB;
  if (pg + c->pages > limit)
    return MM_FMT_LEAF;
  if (it->check & MM_FMT_HEADERS)
    {
      /* Only the fields of its identity: owners and freeing threads write
	 the others (flags, used, rfree...) while a walk reads.  */
      struct mm_slab s;
      uint64_t at = pg << MM_PAGE_SHIFT;
      if (mm_fmt_read (h, at, &s, offsetof (struct mm_slab, flags)) < 0
	  || mm_fmt_read (h, at + offsetof (struct mm_slab, nobj), &s.nobj, sizeof s.nobj) < 0
	  || !mm_fmt_slab_ident (&s, cls, c))
	return MM_FMT_BAD_HEADER;
    }
  t->n = c->pages;
  t->kind = PM_SLAB;
  return 0;
}

int
mm_fmt_iter_next (struct mm_fmt_iter *it, struct mm_fmt_thing *t)
{
  const struct mm_fmt_heap *h = it->h;
  uint64_t pg = it->pg;
  uint32_t e;
  if (pg >= h->top)
    return 0;
  /* The next leaf that ends after PG (a checked directory has them in
     page order; one that was not checked gives flaws, not faults).  */
  for (;; it->w++, it->wleaf = ~(uint64_t) 0)
    {
      uint32_t leaf = 0;
      if (it->wleaf == ~(uint64_t) 0)
	it->wleaf = it->w < MM_DIR_ENTRIES && mm_fmt_read (h, MM_PAGE + it->w * 4, &leaf, 4) == 0
	  ? leaf : 0;
      if (!it->wleaf || it->wleaf + MM_LEAF_PAGES > pg)
	break;
    }
  uint64_t limit = it->wleaf && it->wleaf < h->top ? it->wleaf : h->top;
  t->pg = pg;
  t->n = 1;
  t->kind = PM_NONE;
  t->flaw = 0;
  if (iter_mark (it, pg, &e) < 0)
    {
      t->mark = 0;
      t->flaw = MM_FMT_UNREADABLE;
    }
  else if ((t->mark = e), pg < MM_HDR_PAGES || pg >= limit)
    {
      t->kind = PM_META;
      if (e != PM_MAKE (PM_META, 0))
	t->flaw = MM_FMT_META;
    }
  else if ((t->flaw = iter_thing (it, pg, e, limit, t)) && t->flaw != MM_FMT_INSIDE)
    {
      t->n = 1;
      t->kind = PM_NONE;
    }
  it->pg = pg + t->n;
  return 1;
}

const char *
mm_fmt_flaw_name (int flaw)
{
  switch (flaw)
    {
    case MM_FMT_OK:
      return "no flaw";
    case MM_FMT_NOTHING:
      return "page map: page belongs to nothing";
    case MM_FMT_BAD_RUN:
      return "page map: bad run";
    case MM_FMT_BAD_SLAB:
      return "page map: bad slab marks";
    case MM_FMT_BAD_HEADER:
      return "slab header damaged";
    case MM_FMT_META:
      return "page map: a header or leaf page not marked";
    case MM_FMT_STRAY_META:
      return "page map: a page marked as a leaf outside the leaves";
    case MM_FMT_LEAF:
      return "page map: a block over a leaf";
    case MM_FMT_INSIDE:
      return "page map: mark inside a run";
    default:
      return "page map: unreadable";
    }
}
