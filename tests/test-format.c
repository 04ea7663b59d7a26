/* test-format.c -- the format layer's decoders and validators, on bytes that
   are not a mapped heap.

   Each validator is given a good object made here byte by byte, then the
   same object with one field out of range at a time, and must tell which.
   The walk of the page map runs through a read function over a buffer: a
   heap image laid out here, and a heap file that the library wrote, read
   into memory of this process at another address than the heap's (its
   mapping is gone: the heap was detached), so nothing can come from the
   original mapping.  */

#include "testutil.h"
#include "mmprivate.h"		/* format.h, and the heap's descriptor */

#include <pthread.h>

static struct mm_class tab[256];

static int
setup (void **state)
{
  (void) state;
  mm_fmt_classes (tab);
  return 0;
}

/* --- a heap image in a buffer, read through a read function -------------- */

struct image
{
  unsigned char *buf;
  uint64_t len;			/* bytes of buf */
  uint64_t base;		/* the heap's address in its process */
  uint64_t fail_from;		/* reads reaching this offset fail (0: none) */
  unsigned long reads;
};

static int
image_read (void *ctx, uint64_t addr, void *dst, size_t len)
{
  struct image *im = ctx;
  im->reads++;
  if (addr < im->base)
    return -1;
  uint64_t off = addr - im->base;
  if (off > im->len || len > im->len - off || (im->fail_from && off + len > im->fail_from))
    return -1;
  memcpy (dst, im->buf + off, len);
  return 0;
}

static struct mm_fmt_heap
image_heap (struct image *im, uint64_t top)
{
  struct mm_fmt_heap h = { .base = im->base, .span = MM_SPAN_MAX, .top = top, .cls = tab,
    .mem = NULL, .read = image_read, .ctx = im };
  return h;
}

/* A header of this format for a heap of TOP pages at BASE, its sum made.  */
static void
make_header (struct mm_header *h, uint64_t base, uint64_t top)
{
  memset (h, 0, sizeof *h);
  memcpy (h->magic, MM_MAGIC, 8);
  h->byte_order = MM_BYTE_ORDER;
  h->version = MM_FORMAT_V1;
  h->hdr_size = sizeof *h;
  h->word_size = sizeof (void *);
  h->page_size = MM_PAGE;
  h->hdr_pages = MM_HDR_PAGES;
  h->nclasses = MM_NCLASSES;
  h->class_sum = mm_fmt_classes_sum (tab);
  h->base = base;
  h->span = MM_SPAN_MAX;
  h->hdr_sum = mm_fmt_header_sum (h);
  h->state = MM_CLEAN;
  h->top = top;
}

/* Pages of the hand-made image: header, directory, one leaf, then
   LARGE (3 pages), a slab of class IM_CLS, FREE (5 pages), LARGE (1 page).  */
#define IM_CLS (MM_NCLASSES - 1)	/* a slab of several pages */
#define IM_LEAF MM_HDR_PAGES
#define IM_LARGE (IM_LEAF + MM_LEAF_PAGES)
#define IM_SLAB (IM_LARGE + 3)
#define IM_FREE(t) (IM_SLAB + (t)[IM_CLS].pages)
#define IM_ONE(t) (IM_FREE (t) + 5)
#define IM_TOP(t) (IM_ONE (t) + 1)
#define IM_BASE 0x7e0000000000ULL

static uint32_t *
im_mark (struct image *im, uint64_t pg)
{
  return (uint32_t *) (void *) (im->buf + ((uint64_t) IM_LEAF << MM_PAGE_SHIFT)) + pg;
}

static void
image_make (struct image *im)
{
  uint64_t top = IM_TOP (tab);
  im->len = top << MM_PAGE_SHIFT;
  im->buf = calloc (1, (size_t) im->len);
  assert_non_null (im->buf);
  im->base = IM_BASE;
  im->fail_from = 0;
  im->reads = 0;
  make_header ((struct mm_header *) (void *) im->buf, IM_BASE, top);
  uint32_t *dir = (uint32_t *) (void *) (im->buf + MM_PAGE);
  dir[0] = IM_LEAF;
  for (uint64_t pg = 0; pg < IM_LARGE; pg++)
    *im_mark (im, pg) = PM_MAKE (PM_META, 0);
  *im_mark (im, IM_LARGE) = PM_MAKE (PM_LARGE, 3 | PM_HEAD);
  *im_mark (im, IM_LARGE + 2) = PM_MAKE (PM_LARGE, 3 | PM_END);
  assert_true (tab[IM_CLS].pages >= 3);
  for (uint32_t i = 0; i < tab[IM_CLS].pages; i++)
    *im_mark (im, IM_SLAB + i) = mm_fmt_slab_mark (IM_CLS, i);
  struct mm_slab *s = (struct mm_slab *) (void *) (im->buf + ((uint64_t) IM_SLAB << MM_PAGE_SHIFT));
  s->magic = MM_SLAB_MAGIC;
  s->cls = IM_CLS;
  s->nobj = tab[IM_CLS].nobj;
  *im_mark (im, IM_FREE (tab)) = PM_MAKE (PM_FREE, 5 | PM_HEAD);
  *im_mark (im, IM_FREE (tab) + 4) = PM_MAKE (PM_FREE, 5 | PM_END);
  struct mm_run *r = (struct mm_run *) (void *) (im->buf + ((uint64_t) IM_FREE (tab) << MM_PAGE_SHIFT));
  r->magic = MM_RUN_MAGIC;
  *im_mark (im, IM_ONE (tab)) = PM_MAKE (PM_LARGE, 1 | PM_HEAD | PM_END);
}

/* Walk H with CHECK: the things found, at most MAX, in T; their number.  */
static int
walk (const struct mm_fmt_heap *h, int check, struct mm_fmt_thing *t, int max)
{
  struct mm_fmt_iter it;
  int n = 0;
  mm_fmt_iter_init (&it, h, 0, check);
  while (n < max && mm_fmt_iter_next (&it, &t[n]))
    n++;
  return n;
}

/* The things of a walk after the header and leaf pages: into T.  */
static int
walk_body (const struct mm_fmt_heap *h, int check, struct mm_fmt_thing *t, int max)
{
  struct mm_fmt_thing all[IM_LARGE + 64];
  int n = walk (h, check, all, IM_LARGE + 64), k = 0;
  for (int i = 0; i < n; i++)
    {
      if (all[i].pg < IM_LARGE)
	{
	  assert_int_equal (all[i].kind, PM_META);
	  assert_int_equal (all[i].flaw, 0);
	  continue;
	}
      if (k < max)
	t[k++] = all[i];
    }
  return k;
}

/* --- size classes ----------------------------------------------------------- */

static void
classes_fit_their_slabs (void **state)
{
  (void) state;
  assert_int_equal (tab[MM_NCLASSES - 1].size, MM_SMALL_MAX);
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    {
      const struct mm_class *k = &tab[c];
      assert_true (k->size % MM_ALIGN == 0 && (c == 0 || k->size > tab[c - 1].size));
      assert_true (k->nobj > 0 && k->nobj < MM_PAGE && k->pages <= MM_SLAB_MAX_PAGES);
      assert_true (k->objoff % 64 == 0
		   && k->objoff >= sizeof (struct mm_slab) + 16 * (size_t) k->words);
      assert_true ((size_t) k->objoff + k->span <= (size_t) k->pages * MM_PAGE);
      assert_int_equal (k->span, k->nobj * k->size);
      /* The reciprocal divides exactly every offset within the slab.  */
      for (uint64_t n = 0; n < (uint64_t) k->pages * MM_PAGE; n += 7)
	assert_int_equal ((n * k->recip) >> 40, n / k->size);
    }
  for (unsigned c = MM_NCLASSES; c < 256; c++)
    assert_int_equal (tab[c].nobj, 0);
}

static void
class_sum_is_the_files (void **state)
{
  (void) state;
  int fd = tu_newfile ("sum");
  void *md = mmalloc_attach (fd, NULL);
  assert_non_null (md);
  assert_null (mmalloc_detach (md));
  struct mm_header h;
  assert_int_equal (pread (fd, &h, sizeof h, 0), (ssize_t) sizeof h);
  close (fd);
  assert_int_equal (h.class_sum, mm_fmt_classes_sum (tab));
  assert_int_equal (h.hdr_sum, mm_fmt_header_sum (&h));
  struct mm_class other[256];
  memcpy (other, tab, sizeof other);
  other[3].nobj--;
  assert_int_not_equal (mm_fmt_classes_sum (other), mm_fmt_classes_sum (tab));
}

/* --- the header ----------------------------------------------------------- */

/* H with one field changed by EDIT, its sum made again when RESUM.  */
#define HDR_CASE(edit, resum, want)					\
  do									\
    {									\
      struct mm_header h;						\
      make_header (&h, IM_BASE, 4096);					\
      edit;								\
      if (resum)							\
	h.hdr_sum = mm_fmt_header_sum (&h);				\
      assert_int_equal (mm_fmt_header_check (&h, tab, 0), want);	\
    }									\
  while (0)

static void
header_each_field (void **state)
{
  (void) state;
  HDR_CASE ((void) 0, 0, 0);
  HDR_CASE (h.magic[3] ^= 1, 1, MMALLOC_ENOTHEAP);
  HDR_CASE (h.byte_order = __builtin_bswap32 (MM_BYTE_ORDER), 1, MMALLOC_EMACHINE);
  HDR_CASE (h.byte_order = 7, 1, MMALLOC_ECORRUPT);
  HDR_CASE (h.version = 0, 1, MMALLOC_EVERSION);
  HDR_CASE (h.version = MM_FORMAT_VERSION + 1, 1, MMALLOC_EVERSION);
  HDR_CASE (h.word_size = 2, 1, MMALLOC_EMACHINE);
  HDR_CASE (h.page_size = 8192, 1, MMALLOC_EMACHINE);
  HDR_CASE (h.hdr_size--, 0, MMALLOC_ECORRUPT);	/* the sum no longer holds */
  HDR_CASE (h.hdr_size--, 1, MMALLOC_EVERSION);
  HDR_CASE (h.hdr_pages++, 1, MMALLOC_EVERSION);
  HDR_CASE (h.nclasses--, 1, MMALLOC_EVERSION);
  HDR_CASE (h.class_sum++, 1, MMALLOC_EVERSION);
  HDR_CASE (h.base += 8, 1, MMALLOC_ECORRUPT);
  HDR_CASE (h.span = MM_SPAN_MAX + MM_PAGE, 1, MMALLOC_ECORRUPT);
  HDR_CASE (h.span -= 1, 1, MMALLOC_ECORRUPT);
  HDR_CASE (h.base = ~(uint64_t) 0 << 20, 1, MMALLOC_ECORRUPT);	/* wraps */
  HDR_CASE (h.top = MM_HDR_PAGES, 0, MMALLOC_ECORRUPT);
  HDR_CASE (h.top = (MM_SPAN_MAX >> MM_PAGE_SHIFT) + 1, 0, MMALLOC_ECORRUPT);
  /* The version rises in place: the sum reads it as the first.  */
  HDR_CASE (h.version = MM_FORMAT_V2, 0, 0);
  struct mm_header h;
  make_header (&h, IM_BASE, 4096);
  assert_int_equal (mm_fmt_header_check (&h, tab, 4096 * MM_PAGE), 0);
  assert_int_equal (mm_fmt_header_check (&h, tab, 4095 * MM_PAGE), MMALLOC_ETRUNCATED);
}

/* The heads of the bins and partial lists: 0, or a page of the body.  */
static void
header_list_heads (void **state)
{
  (void) state;
  struct mm_header h;
  make_header (&h, IM_BASE, 4096);
  uint64_t body = (uint64_t) MM_HDR_PAGES << MM_PAGE_SHIFT;
  h.bin_head[5] = body;
  h.cls[7].partial[1] = (uint64_t) 4095 << MM_PAGE_SHIFT;
  assert_true (mm_fmt_header_links (&h));
  h.bin_head[5] = MM_PAGE;	/* the directory */
  assert_false (mm_fmt_header_links (&h));
  h.bin_head[5] = body + 16;	/* not a page */
  assert_false (mm_fmt_header_links (&h));
  h.bin_head[5] = 0;
  h.cls[7].partial[1] = (uint64_t) 4096 << MM_PAGE_SHIFT;	/* at top */
  assert_false (mm_fmt_header_links (&h));
}

/* --- the directory -------------------------------------------------------- */

static uint32_t dir[MM_DIR_ENTRIES];

/* A directory of W windows whose leaves follow one another from the first
   page after the header; the top that just covers them.  */
static uint64_t
make_dir (unsigned w)
{
  memset (dir, 0, sizeof dir);
  uint64_t p = MM_HDR_PAGES;
  for (unsigned i = 0; i < w; i++)
    {
      dir[i] = (uint32_t) p;
      p = ((uint64_t) (i + 1) << MM_WIN_SHIFT) - 2 * MM_LEAF_PAGES;
    }
  return ((uint64_t) (w - 1) << MM_WIN_SHIFT) + 100;
}

static void
directory_checks (void **state)
{
  (void) state;
  uint64_t top = make_dir (3);
  assert_int_equal (mm_fmt_dir_used (dir), 3);
  assert_int_equal (mm_fmt_dir_check (dir, top, MM_SPAN_MAX, 0), 0);
  uint64_t sum = mm_fmt_dir_sum (dir);
  /* A window below top without its leaf.  */
  assert_int_equal (mm_fmt_dir_check (dir, top + MM_WIN_PAGES, MM_SPAN_MAX, 0),
		    MMALLOC_ECORRUPT);
  /* Leaves out of order, or above their window's first page.  */
  dir[2] = dir[1] - 1;
  assert_int_equal (mm_fmt_dir_check (dir, top, MM_SPAN_MAX, 0), MMALLOC_ECORRUPT);
  assert_int_not_equal (mm_fmt_dir_sum (dir), sum);
  top = make_dir (3);
  dir[1] = (1 << MM_WIN_SHIFT) + 1;
  assert_int_equal (mm_fmt_dir_check (dir, top, MM_SPAN_MAX, 0), MMALLOC_ECORRUPT);
  /* A leaf overlapping the header.  */
  top = make_dir (3);
  dir[0] = MM_HDR_PAGES - 1;
  assert_int_equal (mm_fmt_dir_check (dir, top, MM_SPAN_MAX, 0), MMALLOC_ECORRUPT);
  /* An entry after a hole.  */
  top = make_dir (3);
  dir[5] = (5 << MM_WIN_SHIFT);
  assert_int_equal (mm_fmt_dir_used (dir), 6);
  assert_int_equal (mm_fmt_dir_check (dir, top, MM_SPAN_MAX, 0), MMALLOC_ECORRUPT);
  /* A leaf past top: a growth that died; allowed only on a dirty heap.  */
  top = make_dir (3);
  dir[3] = (3 << MM_WIN_SHIFT);
  assert_int_equal (mm_fmt_dir_check (dir, top, MM_SPAN_MAX, 0), MMALLOC_ECORRUPT);
  assert_int_equal (mm_fmt_dir_check (dir, top, MM_SPAN_MAX, 1), 0);
  assert_int_equal (mm_fmt_dir_check (dir, top, (uint64_t) 3 << (MM_WIN_SHIFT + MM_PAGE_SHIFT),
				      1), MMALLOC_ECORRUPT);	/* past the span */
  /* Zeros after the last entry fold into the sum exactly.  */
  top = make_dir (2);
  uint64_t s = MM_FNV64_BASIS;
  for (uint64_t w = 0; w < MM_DIR_ENTRIES; w++)
    s = mm_fnv64 (s, dir[w]);
  assert_true (s == mm_fmt_dir_sum (dir));
}

/* --- runs ------------------------------------------------------------------- */

static void
run_marks (void **state)
{
  (void) state;
  uint32_t h = PM_MAKE (PM_FREE, 5 | PM_HEAD), t = PM_MAKE (PM_FREE, 5 | PM_END);
  assert_int_equal (mm_fmt_run_len (h, t, 100, 105), 5);
  assert_int_equal (mm_fmt_run_len (h, t, 100, 104), 0);	/* past top */
  assert_int_equal (mm_fmt_run_len (h, t, 105, 105), 0);
  assert_int_equal (mm_fmt_run_len (h, t ^ 1, 100, 200), 0);	/* lengths differ */
  assert_int_equal (mm_fmt_run_len (h, PM_MAKE (PM_LARGE, 5 | PM_END), 100, 200), 0);
  assert_int_equal (mm_fmt_run_len (h & ~PM_HEAD, t, 100, 200), 0);
  assert_int_equal (mm_fmt_run_len (h | PM_END, t, 100, 200), 0);
  assert_int_equal (mm_fmt_run_len (h | PM_CHECKED, t | PM_CHECKED, 100, 200), 0);
  assert_int_equal (mm_fmt_run_len (PM_MAKE (PM_FREE, PM_HEAD | PM_END), 0, 100, 200), 0);
  assert_int_equal (mm_fmt_run_len (PM_MAKE (PM_SLAB, 5 | PM_HEAD), t, 100, 200), 0);
  uint32_t l = PM_MAKE (PM_LARGE, 2 | PM_HEAD | PM_CHECKED);
  assert_int_equal (mm_fmt_run_len (l, (l & ~PM_HEAD) | PM_END, 100, 200), 2);
  uint32_t one = PM_MAKE (PM_LARGE, 1 | PM_HEAD | PM_END);
  assert_int_equal (mm_fmt_run_len (one, one, 100, 101), 1);
  assert_int_equal (mm_fmt_run_len (one & ~PM_END, one & ~PM_END, 100, 101), 0);
  /* From the END mark back to the HEAD.  */
  assert_int_equal (mm_fmt_run_first (t, 104), 100);
  assert_int_equal (mm_fmt_run_first (h, 104), 0);
  assert_int_equal (mm_fmt_run_first (t, MM_HDR_PAGES + 3), 0);	/* over the header */
  assert_int_equal (mm_fmt_run_first (PM_MAKE (PM_FREE, PM_END), 104), 0);
  /* A run header and its links.  */
  struct mm_run r = { MM_RUN_MAGIC, 0, (uint64_t) MM_HDR_PAGES << MM_PAGE_SHIFT, 0, 0 };
  assert_true (mm_fmt_run_ok (&r, MM_HDR_PAGES + 1));
  assert_false (mm_fmt_run_ok (&r, MM_HDR_PAGES));
  r.next = MM_PAGE;		/* the directory */
  assert_false (mm_fmt_run_ok (&r, 1000));
  r.next = ((uint64_t) MM_HDR_PAGES << MM_PAGE_SHIFT) + 8;
  assert_false (mm_fmt_run_ok (&r, 1000));
  r.next = 0;
  r.magic++;
  assert_false (mm_fmt_run_ok (&r, 1000));
}

/* --- slabs ------------------------------------------------------------------ */

/* A good header and bitmaps of an empty, listed slab of class C in BUF.  */
static struct mm_slab *
make_slab (uint64_t *buf, unsigned c)
{
  struct mm_slab *s = memset (buf, 0, tab[c].objoff);
  s->magic = MM_SLAB_MAGIC;
  s->cls = (uint16_t) c;
  s->nobj = tab[c].nobj;
  s->flags = MM_SLAB_LISTED;
  if (tab[c].nobj % 64)
    s->bits[tab[c].words - 1] = ~0ULL << (tab[c].nobj % 64);
  return s;
}

static void
slab_header_levels (void **state)
{
  (void) state;
  uint64_t buf[MM_PAGE / 8];
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    {
      struct mm_slab *s = make_slab (buf, c);
      const struct mm_class *k = &tab[c];
      assert_true (mm_fmt_slab_ident (s, c, k));
      assert_null (mm_fmt_slab_bits (s, k, 1));
      assert_null (mm_fmt_slab_counts (s, k));
      assert_false (mm_fmt_slab_ident (s, c + 1, &tab[c + 1]));
      s->nobj--;
      assert_false (mm_fmt_slab_ident (s, c, k));
      s->nobj++;
      s->magic ^= 0x100;
      assert_false (mm_fmt_slab_ident (s, c, k));
    }
  /* A class past the table's: its entry is all zeros, nobj 0.  */
  struct mm_slab *s = make_slab (buf, 3);
  s->cls = MM_NCLASSES;
  s->nobj = 0;
  assert_false (mm_fmt_slab_ident (s, MM_NCLASSES, &tab[MM_NCLASSES]));

  const struct mm_class *k = &tab[3];	/* 64 bytes: a tail in the last word */
  assert_true (k->nobj % 64 != 0);
  s = make_slab (buf, 3);
  s->flags |= 0x40;
  assert_string_equal (mm_fmt_slab_bits (s, k, 1), "slab header: unknown flags");
  s = make_slab (buf, 3);
  s->hint = k->words;
  assert_string_equal (mm_fmt_slab_bits (s, k, 1), "slab header: hint past the bitmap");
  s = make_slab (buf, 3);
  s->bits[k->words - 1] &= ~(1ULL << 63);
  assert_string_equal (mm_fmt_slab_bits (s, k, 1), "slab bitmap: slot past the end marked free");
  s = make_slab (buf, 3);
  s->bits[k->words + k->words - 1] = 1ULL << 63;
  assert_string_equal (mm_fmt_slab_bits (s, k, 1), "slab: slot past the end marked freed");
  s = make_slab (buf, 3);
  s->bits[k->words] = 1;	/* rbits: slot 0 freed, never allocated */
  assert_string_equal (mm_fmt_slab_bits (s, k, 1),
		       "slab: slot freed by another thread was not allocated");

  /* Counts: two slots allocated, one of them freed by another thread.  */
  s = make_slab (buf, 3);
  s->bits[0] = 3;
  s->bits[k->words] = 2;
  s->used = 2;
  s->rfree = 1;
  assert_null (mm_fmt_slab_counts (s, k));
  s->rfree = 2;			/* leading: a free counted, not marked yet */
  assert_null (mm_fmt_slab_counts (s, k));
  s->rfree = 0;			/* lagging: never */
  assert_string_equal (mm_fmt_slab_counts (s, k), "slab counts differ from its bitmaps");
  s->rfree = 1;
  s->used = 1;
  assert_string_equal (mm_fmt_slab_counts (s, k), "slab counts differ from its bitmaps");
  /* A full slab on the list, a slab with room off it.  */
  s = make_slab (buf, 3);
  for (uint32_t w = 0; w < k->words; w++)
    s->bits[w] = ~0ULL;
  s->used = k->nobj;
  assert_string_equal (mm_fmt_slab_counts (s, k), "slab partial-list mark wrong");
  s->flags = 0;
  assert_null (mm_fmt_slab_counts (s, k));
  s->bits[0] = ~1ULL;
  s->used = k->nobj - 1;
  assert_string_equal (mm_fmt_slab_counts (s, k), "slab partial-list mark wrong");
}

static void
slot_decoding (void **state)
{
  (void) state;
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    {
      const struct mm_class *k = &tab[c];
      uint64_t into = 99;
      assert_int_equal (mm_fmt_slot (k, 0, &into), k->nobj);	/* the header */
      assert_int_equal (mm_fmt_slot (k, k->objoff - 1u, &into), k->nobj);
      assert_int_equal (mm_fmt_slot (k, (uint64_t) k->objoff + k->span, &into), k->nobj);
      for (uint32_t i = 0; i < k->nobj; i++)
	{
	  uint64_t rel = k->objoff + (uint64_t) i * k->size;
	  assert_int_equal (mm_fmt_slot (k, rel, &into), i);
	  assert_int_equal (into, 0);
	  assert_int_equal (mm_fmt_slot (k, rel + k->size - 1, &into), i);
	  assert_int_equal (into, k->size - 1);
	}
      /* Where a slab mark places its slab: wholly after the header and
         below top, its page offset within the class's pages.  */
      uint64_t at = 0;
      uint64_t pg0 = MM_HDR_PAGES + 5, lastb = ((pg0 + k->pages) << MM_PAGE_SHIFT) - 1;
      uint32_t last = mm_fmt_slab_mark (c, k->pages - 1u);
      assert_true (mm_fmt_slab_place (last, lastb, pg0 + k->pages, k, &at));
      assert_int_equal (at, pg0 << MM_PAGE_SHIFT);
      assert_false (mm_fmt_slab_place (last, lastb, pg0 + k->pages - 1, k, &at));
      assert_false (mm_fmt_slab_place (mm_fmt_slab_mark (c, k->pages), lastb, 1 << 20, k, &at));
      assert_false (mm_fmt_slab_place (last, (uint64_t) (MM_HDR_PAGES - 1) << MM_PAGE_SHIFT,
				       1 << 20, k, &at));
      assert_false (mm_fmt_slab_place (PM_MAKE (PM_LARGE, 1 | PM_HEAD | PM_END), lastb,
				       1 << 20, k, &at));
      assert_false (mm_fmt_slab_place (mm_fmt_slab_mark (MM_NCLASSES, 0), lastb, 1 << 20,
				       &tab[MM_NCLASSES], &at));
      /* Any byte of a slab page, by its mark's page offset.  */
      uint64_t slab = (uint64_t) 77 << MM_PAGE_SHIFT;
      for (uint32_t p = 0; p < k->pages; p++)
	assert_int_equal (mm_fmt_slab_of (slab + p * MM_PAGE + 123, mm_fmt_slab_mark (c, p)),
			  slab);
    }
}

/* --- check headers -------------------------------------------------------- */

static void
check_headers (void **state)
{
  (void) state;
  uint64_t at = IM_BASE + 0x12340;
  struct mm_chk c = { 100, MM_CHK_LIVE, mm_fmt_chk_sum (100, at) };
  assert_true (mm_fmt_chk_is (&c, at, MM_CHK_LIVE));
  assert_false (mm_fmt_chk_is (&c, at, MM_CHK_FREE));
  assert_false (mm_fmt_chk_is (&c, at + 16, MM_CHK_LIVE));	/* moved */
  c.size++;
  assert_false (mm_fmt_chk_is (&c, at, MM_CHK_LIVE));
  assert_int_equal (mm_fmt_chk_lead (&c, at, 4096), 16);	/* no lead record */
  struct mm_chk l = { 64, MM_CHK_LEAD, mm_fmt_chk_sum (64, at) };
  assert_int_equal (mm_fmt_chk_lead (&l, at, 4096), 64);
  assert_int_equal (mm_fmt_chk_lead (&l, at, 64 + 16), 0);	/* no room for the block */
  assert_int_equal (mm_fmt_chk_lead (&l, at + 16, 4096), 0);	/* sum of another place */
  l.size = 24;
  l.sum = mm_fmt_chk_sum (24, at);
  assert_int_equal (mm_fmt_chk_lead (&l, at, 4096), 0);	/* misaligned */
  l.size = 16;
  l.sum = mm_fmt_chk_sum (16, at);
  assert_int_equal (mm_fmt_chk_lead (&l, at, 4096), 0);	/* no room for the header */
}

/* --- the walk of the page map --------------------------------------------- */

static void
walk_hand_made_image (void **state)
{
  (void) state;
  struct image im;
  image_make (&im);
  struct mm_fmt_heap h = image_heap (&im, IM_TOP (tab));
  struct mm_fmt_thing t[8];
  int n = walk_body (&h, MM_FMT_HEADERS | MM_FMT_INTERIOR, t, 8);
  assert_int_equal (n, 4);
  assert_true (t[0].pg == IM_LARGE && t[0].n == 3 && t[0].kind == PM_LARGE && !t[0].flaw);
  assert_true (t[1].pg == IM_SLAB && t[1].n == tab[IM_CLS].pages && t[1].kind == PM_SLAB
	       && !t[1].flaw);
  assert_true (t[2].pg == IM_FREE (tab) && t[2].n == 5 && t[2].kind == PM_FREE && !t[2].flaw);
  assert_true (t[3].pg == IM_ONE (tab) && t[3].n == 1 && t[3].kind == PM_LARGE && !t[3].flaw);
  assert_true (im.reads > 0);
  /* Each page's mark, one at a time, as the walk saw them.  */
  uint32_t e;
  assert_int_equal (mm_fmt_pm_read (&h, IM_FREE (tab) + 4, &e), 0);
  assert_int_equal (e, PM_MAKE (PM_FREE, 5 | PM_END));
  assert_int_equal (mm_fmt_pm_read (&h, IM_TOP (tab), &e), -1);
  free (im.buf);
}

/* The walk of the image with one mark or header changed by EDIT: the first
   body thing that has a flaw must be at PG with FLAW.  */
static void
flaw_case (void (*edit) (struct image *), int check, uint64_t pg, int flaw)
{
  struct image im;
  image_make (&im);
  edit (&im);
  struct mm_fmt_heap h = image_heap (&im, IM_TOP (tab));
  struct mm_fmt_thing t[IM_LARGE + 64];
  int n = walk (&h, check, t, IM_LARGE + 64), i = 0;
  while (i < n && !t[i].flaw)
    i++;
  assert_true (i < n);
  assert_int_equal (t[i].pg, pg);
  assert_int_equal (t[i].flaw, flaw);
  /* Every page below top is covered once, flaw or not.  */
  uint64_t next = 0;
  for (int j = 0; j < n; j++)
    {
      assert_int_equal (t[j].pg, next);
      next += t[j].n;
    }
  assert_int_equal (next, IM_TOP (tab));
  free (im.buf);
}

static void
e_end (struct image *im)
{
  *im_mark (im, IM_LARGE + 2) = PM_MAKE (PM_LARGE, 2 | PM_END);
}

static void
e_len (struct image *im)
{
  *im_mark (im, IM_ONE (tab)) = PM_MAKE (PM_LARGE, 9 | PM_HEAD | PM_END);
}

static void
e_inside (struct image *im)
{
  *im_mark (im, IM_FREE (tab) + 2) = mm_fmt_slab_mark (IM_CLS, 0);
}

static void
e_slab (struct image *im)
{
  *im_mark (im, IM_SLAB + 1) = mm_fmt_slab_mark (IM_CLS, 2);
}

static void
e_slab_hdr (struct image *im)
{
  ((struct mm_slab *) (void *) (im->buf + ((uint64_t) IM_SLAB << MM_PAGE_SHIFT)))->nobj++;
}

static void
e_leaf (struct image *im)
{
  *im_mark (im, IM_LEAF + 1) = 0;
}

static void
e_meta (struct image *im)
{
  *im_mark (im, IM_ONE (tab)) = PM_MAKE (PM_META, 0);
}

static void
e_nothing (struct image *im)
{
  *im_mark (im, IM_ONE (tab)) = 0;
}

static void
e_slab_cls (struct image *im)
{
  *im_mark (im, IM_SLAB) = mm_fmt_slab_mark (MM_NCLASSES + 3, 0);
}

static void
walk_flaws (void **state)
{
  (void) state;
  flaw_case (e_end, 0, IM_LARGE, MM_FMT_BAD_RUN);
  flaw_case (e_len, 0, IM_ONE (tab), MM_FMT_BAD_RUN);
  flaw_case (e_inside, MM_FMT_INTERIOR, IM_FREE (tab), MM_FMT_INSIDE);
  flaw_case (e_slab, 0, IM_SLAB, MM_FMT_BAD_SLAB);
  flaw_case (e_slab_hdr, MM_FMT_HEADERS, IM_SLAB, MM_FMT_BAD_HEADER);
  flaw_case (e_leaf, 0, IM_LEAF + 1, MM_FMT_META);
  flaw_case (e_meta, 0, IM_ONE (tab), MM_FMT_STRAY_META);
  flaw_case (e_nothing, 0, IM_ONE (tab), MM_FMT_NOTHING);
  flaw_case (e_slab_cls, 0, IM_SLAB, MM_FMT_BAD_SLAB);
}

static void
walk_without_the_checks_asked_skips_them (void **state)
{
  (void) state;
  struct image im;
  image_make (&im);
  e_inside (&im);
  e_slab_hdr (&im);
  struct mm_fmt_heap h = image_heap (&im, IM_TOP (tab));
  struct mm_fmt_thing t[8];
  assert_int_equal (walk_body (&h, 0, t, 8), 4);
  for (int i = 0; i < 4; i++)
    assert_int_equal (t[i].flaw, 0);
  free (im.buf);
}

/* A heap whose bytes end early, or a directory that names no leaf: flaws,
   never a read past what the heap holds.  */
static void
walk_truncated_and_lost (void **state)
{
  (void) state;
  struct image im;
  image_make (&im);
  struct mm_fmt_heap h = image_heap (&im, IM_TOP (tab));
  im.fail_from = (uint64_t) IM_LEAF << MM_PAGE_SHIFT;	/* the leaf is unreadable */
  struct mm_fmt_thing t[IM_LARGE + 64];
  int n = walk (&h, 0, t, IM_LARGE + 64);
  assert_int_equal (n, IM_TOP (tab));
  for (int i = 0; i < n; i++)
    assert_int_equal (t[i].flaw, MM_FMT_UNREADABLE);
  /* The leaf cut short at the mark of page IM_ONE: the marks before it are
     read one by one, the rest are not.  */
  im.fail_from = ((uint64_t) IM_LEAF << MM_PAGE_SHIFT) + IM_ONE (tab) * 4;
  n = walk (&h, 0, t, IM_LARGE + 64);
  assert_int_equal (t[n - 1].pg, IM_ONE (tab));
  assert_int_equal (n, IM_LARGE + 4);
  for (int i = 0; i < n; i++)
    assert_int_equal (t[i].flaw, t[i].pg == IM_ONE (tab) ? MM_FMT_UNREADABLE : 0);
  im.fail_from = 0;
  /* A directory entry out of the heap: nothing is read through it.  */
  h.top = IM_TOP (tab);
  ((uint32_t *) (void *) (im.buf + MM_PAGE))[0] = 0x7fffffff;
  n = walk (&h, 0, t, IM_LARGE + 64);
  assert_int_equal (n, IM_TOP (tab));
  assert_int_equal (t[0].flaw, MM_FMT_UNREADABLE);
  assert_int_equal (mm_fmt_read (&h, (IM_TOP (tab) << MM_PAGE_SHIFT) - 4, &n, 4), 0);
  assert_int_equal (mm_fmt_read (&h, (IM_TOP (tab) << MM_PAGE_SHIFT) - 3, &n, 4), -1);
  free (im.buf);
}

/* A heap file the library wrote, read whole into this process's memory (at
   another address than the heap's, whose mapping is gone): its header and
   directory hold, the walk finds every page in one thing, the blocks where
   they were handed out, and a small block decodes to its slot.  */
static void
walk_a_heap_file_read_into_memory (void **state)
{
  (void) state;
  int fd = tu_newfile ("walk");
  void *md = mmalloc_attach (fd, NULL);
  assert_non_null (md);
  char *big = mmalloc (md, 100000), *small[50];
  assert_non_null (big);
  for (int i = 0; i < 50; i++)
    assert_non_null (small[i] = mmalloc (md, 48));
  mfree (md, small[7]);
  assert_null (mmalloc_detach (md));

  struct stat st;
  assert_int_equal (fstat (fd, &st), 0);
  struct image im = { .len = (uint64_t) st.st_size };
  im.buf = malloc ((size_t) im.len);
  assert_non_null (im.buf);
  assert_int_equal (pread (fd, im.buf, (size_t) im.len, 0), (ssize_t) im.len);
  close (fd);
  const struct mm_header *hd = (const struct mm_header *) (void *) im.buf;
  assert_int_equal (mm_fmt_header_check (hd, tab, im.len), 0);
  im.base = hd->base;
  assert_true ((uint64_t) (uintptr_t) im.buf != im.base);
  const uint32_t *d = (const uint32_t *) (const void *) (im.buf + MM_PAGE);
  assert_int_equal (mm_fmt_dir_check (d, hd->top, hd->span, 0), 0);
  assert_true (mm_fmt_dir_sum (d) == hd->dir_sum);

  struct mm_fmt_heap h = { .base = hd->base, .span = hd->span, .top = hd->top, .cls = tab,
    .read = image_read, .ctx = &im };
  struct mm_fmt_iter it;
  struct mm_fmt_thing t;
  uint64_t next = 0, nlarge = 0, nslabs[MM_NCLASSES] = { 0 }, nruns = 0;
  uint64_t boff = (uint64_t) (uintptr_t) big - hd->base, found_big = 0;
  mm_fmt_iter_init (&it, &h, 0, MM_FMT_HEADERS | MM_FMT_INTERIOR);
  while (mm_fmt_iter_next (&it, &t))
    {
      assert_int_equal (t.flaw, 0);
      assert_int_equal (t.pg, next);
      next += t.n;
      if (t.kind == PM_LARGE)
	{
	  nlarge++;
	  found_big += boff >= t.pg << MM_PAGE_SHIFT && boff < (t.pg + t.n) << MM_PAGE_SHIFT;
	}
      else if (t.kind == PM_SLAB)
	nslabs[PM_SLAB_CLS (t.mark)]++;
      else if (t.kind == PM_FREE)
	nruns++;
    }
  assert_int_equal (next, hd->top);
  assert_int_equal (found_big, 1);
  assert_int_equal (nlarge, hd->nlarge);
  assert_int_equal (nruns, hd->nruns);
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    assert_int_equal (nslabs[c], hd->cls[c].nslabs);

  /* A small block: its slab by its page's mark, its slot by the decoder,
     its bit in the slab's bitmap; the freed one's bit is clear.  */
  for (int i = 0; i < 50; i++)
    {
      uint64_t off = (uint64_t) (uintptr_t) small[i] - hd->base, into = 1;
      uint32_t e;
      assert_int_equal (mm_fmt_pm_read (&h, off >> MM_PAGE_SHIFT, &e), 0);
      assert_int_equal (PM_KIND (e), PM_SLAB);
      const struct mm_class *k = &tab[PM_SLAB_CLS (e)];
      uint64_t soff = mm_fmt_slab_of (off, e);
      uint64_t sb[MM_PAGE / 8];
      assert_int_equal (mm_fmt_read (&h, soff, sb, k->objoff), 0);
      const struct mm_slab *s = (const struct mm_slab *) (void *) sb;
      assert_true (mm_fmt_slab_ident (s, PM_SLAB_CLS (e), k));
      assert_null (mm_fmt_slab_bits (s, k, 1));
      assert_null (mm_fmt_slab_counts (s, k));
      uint64_t idx = mm_fmt_slot (k, off - soff, &into);
      assert_true (idx < k->nobj);
      assert_int_equal (into, 0);
      assert_int_equal ((s->bits[idx / 64] >> (idx % 64)) & 1, i != 7);
    }
  free (im.buf);
}

/* Every free of a slot checks its slab's header as mm_lookup does: a slab
   whose slot count was changed (so its rbits would lie elsewhere) is damage,
   also on the path of a thread that frees into another thread's slab.  */
struct other_free
{
  void *md, *p;
};

static void *
free_from_other_thread (void *arg)
{
  struct other_free *o = arg;
  void *mine = mmalloc (o->md, 64);	/* this heap becomes the thread's own */
  assert_non_null (mine);
  mfree (o->md, o->p);
  return NULL;
}

static void
free_into_a_slab_of_another_size_is_damage (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  char *p = mmalloc (md, 64);
  assert_non_null (p);
  struct mm_desc *d = mm_desc_of (md);
  uint64_t off = (uint64_t) (p - d->base);
  uint32_t e = mm_pm_get (d, off >> MM_PAGE_SHIFT);
  struct mm_slab *s = mm_at (d, mm_fmt_slab_of (off, e));
  assert_true (mm_fmt_slab_ident (s, PM_SLAB_CLS (e), &mm_classes[PM_SLAB_CLS (e)]));
  s->nobj += 64;
  struct other_free o = { md, p };
  pthread_t t;
  assert_int_equal (pthread_create (&t, NULL, free_from_other_thread, &o), 0);
  assert_int_equal (pthread_join (t, NULL), 0);
  errno = 0;
  assert_null (mmalloc (md, 100000));
  assert_int_equal (errno, MMALLOC_ECORRUPT);
  s->nobj -= 64;
  mmalloc_detach (md);
}

/* A free that merges with the free run after its block checks that run's
   HEAD and END as every walk does: a run whose END mark was lost is damage,
   not a run to merge.  */
static void
free_next_to_a_run_without_its_end_is_damage (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  char *p = mmalloc (md, 64 << 10);
  assert_non_null (p);
  struct mm_desc *d = mm_desc_of (md);
  uint64_t pg = (uint64_t) (p - d->base) >> MM_PAGE_SHIFT;
  uint64_t n = mm_pm_get (d, pg) & PM_NMASK, next = pg + n;
  uint32_t e = mm_pm_get (d, next);
  uint64_t rn = e & PM_NMASK;
  assert_true (PM_KIND (e) == PM_FREE && (e & PM_HEAD) && rn > 2);
  uint32_t end = mm_pm_get (d, next + rn - 1);
  mm_pm_set (d, next + rn - 1, 0);
  mfree (md, p);
  errno = 0;
  assert_null (mmalloc (md, 100000));
  assert_int_equal (errno, MMALLOC_ECORRUPT);
  mm_pm_set (d, next + rn - 1, end);
  mmalloc_detach (md);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (classes_fit_their_slabs),
    cmocka_unit_test (class_sum_is_the_files),
    cmocka_unit_test (header_each_field),
    cmocka_unit_test (header_list_heads),
    cmocka_unit_test (directory_checks),
    cmocka_unit_test (run_marks),
    cmocka_unit_test (slab_header_levels),
    cmocka_unit_test (slot_decoding),
    cmocka_unit_test (check_headers),
    cmocka_unit_test (walk_hand_made_image),
    cmocka_unit_test (walk_flaws),
    cmocka_unit_test (walk_without_the_checks_asked_skips_them),
    cmocka_unit_test (walk_truncated_and_lost),
    cmocka_unit_test (walk_a_heap_file_read_into_memory),
    cmocka_unit_test (free_into_a_slab_of_another_size_is_damage),
    cmocka_unit_test (free_next_to_a_run_without_its_end_is_damage),
  };
  return cmocka_run_group_tests (tests, setup, NULL);
}
