/* fuzz-struct.c -- libFuzzer harness: structure-aware mutations of small heaps.

   At start-up the harness makes a few small heap files (a few dozen pages)
   and records every block it left allocated in them, each filled with a
   pattern of its own:
     0  small:    slabs of three classes (one of several pages), large
                  blocks, free runs, keys; clean
     1  image 0 marked dirty: the attach runs recovery
     2  checked:  the same under mmcheck (check headers before the blocks)
     3  shrunk:   a heap that grew past its first 16 MiB window and shrank
                  back, so that the directory names a leaf for a window
                  beyond `top'; clean
     4  image 3 marked dirty
     5  wide:     a heap whose top lies in its second window (a large block
                  spans both); sparse; clean
   Each input names an image and up to 8 mutations, each aimed at one field
   of the heap's metadata: directory entries, page-map entries (made of a
   kind, head and end bits and a length that often reaches another page of
   interest), free-run headers, slab headers, slab bitmap words, the
   header's top, bins, list heads, counters, keys and flags, check headers,
   or a byte of a metadata page.  The values written are taken from the
   heap itself: pages that hold blocks, leaves, runs and slabs, the pages
   around `top'.  The checksums of the header and the directory are made
   right again (but for 1 input in 4, where the directory's sum is left), so
   that mutations get past them, and the clean/dirty mark may be flipped.

   Input layout: byte 0 image; byte 1 flags (bits 0-1: 0 leaves the
   directory's sum as it is, bit 2 flips the state mark); byte 2: how many
   mutations (mod 9); then 4 bytes per mutation (kind, a, b, v); the rest
   codes the operations of fz_ops.

   Oracle: the heap is attached (a misuse report on a checked heap returns:
   see fz_misuse_reported), exercised (fz_exercise: allocations, frees,
   resizes, checks) and detached; then every recorded block whose own
   metadata no mutation touched (its pages' page-map entries, its slab's
   header and bitmaps, its bytes and check header, the directory entry of
   its window; nor cut off by a lower `top') must still hold its pattern,
   read back from the file, and no allocation may overlap it meanwhile.  Or
   the attach refuses the file with a documented error.  */

#include "fuzz-common.h"

#define NIMAGES 6
#define MAXBLK 160
#define MAXPG 256
#define MAXMUT 8

struct blk
{
  uint64_t off, size;		/* the user's bytes (and the check header
				   before them when checked) */
  uint64_t pg, npg;		/* the pages whose marks say it is allocated */
  uint64_t slab;		/* its slab's offset, or 0 for a large block */
  uint64_t word[2];		/* the offsets of its bits and rbits words */
  uint8_t pat;
  uint8_t checked;
};

struct image
{
  struct fz_image im;		/* the file */
  struct mm_header h;
  struct blk b[MAXBLK];
  int nb;
  uint64_t pgs[MAXPG];		/* pages of interest */
  int npgs;
  uint64_t runs[32], slabs[32];	/* heads of free runs, first pages of slabs */
  int nruns, nslabs;
  uint8_t cls_used[8];
  int ncls;
};

static struct image images[NIMAGES];

/* --- building the images ------------------------------------------------- */

struct live
{
  char *p;
  size_t size;
  int checked;
};

static struct live lv[MAXBLK];
static int nlv;

static void *
keep (void *md, size_t size, int checked)
{
  char *p = fz_must (mmalloc (md, size), "mmalloc");
  if (nlv < MAXBLK)
    {
      lv[nlv].p = p;
      lv[nlv].size = size;
      lv[nlv].checked = checked;
      nlv++;
    }
  return p;
}

static void
drop (void *md, void *p)
{
  for (int i = 0; i < nlv; i++)
    if (lv[i].p == p)
      {
	lv[i] = lv[--nlv];
	break;
      }
  mfree (md, p);
}

/* Small heap: three small classes, a few large blocks, free runs.  */
static void
fill_small (void *md, int checked)
{
  void *s[24];
  for (int i = 0; i < 24; i++)
    s[i] = keep (md, i < 10 ? 16 : i < 18 ? 100 : 3000, checked);
  for (int i = 1; i < 24; i += 3)
    drop (md, s[i]);
  void *l1 = keep (md, 5000, checked);
  void *l2 = keep (md, 9000, checked);
  keep (md, 17000, checked);
  void *l4 = keep (md, 6000, checked);
  drop (md, l2);
  drop (md, l4);		/* merges with the free run at the top */
  mmalloc_setkey (md, 0, s[0]);
  mmalloc_setkey (md, 1, l1);
}

static void
fill_shrunk (void *md)
{
  fill_small (md, 0);
  void *big = fz_must (mmalloc (md, (size_t) 20 << 20), "big");
  mfree (md, big);		/* at the top: the heap shrinks back */
  keep (md, 700, 0);
}

static void
fill_wide (void *md)
{
  fill_small (md, 0);
  keep (md, (size_t) 17 << 20, 0);	/* from window 0 into window 1 */
  keep (md, 40, 0);
  keep (md, 12000, 0);
}

/* Byte offset in IMG of the page-map entry of page PG, or 0.  */
static size_t
pm_off (const struct image *img, uint64_t pg)
{
  const uint32_t *dir = (const uint32_t *) (img->im.data + MM_PAGE);
  uint64_t w = pg >> MM_WIN_SHIFT;
  if (w >= MM_DIR_ENTRIES || !dir[w])
    return 0;
  size_t off = ((size_t) dir[w] << MM_PAGE_SHIFT) + (size_t) (pg & (MM_WIN_PAGES - 1)) * 4;
  return off + 4 <= img->im.size ? off : 0;
}

static uint32_t
pm_get (const struct image *img, uint64_t pg)
{
  size_t off = pm_off (img, pg);
  uint32_t e = 0;
  if (off)
    memcpy (&e, img->im.data + off, 4);
  return e;
}

static void
add_pg (struct image *img, uint64_t pg)
{
  if (img->npgs < MAXPG)
    img->pgs[img->npgs++] = pg;
}

/* Record the blocks of lv[] (BASE: the heap's base), the pages of interest
   and the runs and slabs of IMG.  */
static void
index_image (struct image *img, uint64_t base)
{
  uint64_t top = img->h.top;
  const uint32_t *dir = (const uint32_t *) (img->im.data + MM_PAGE);
  img->nb = 0;
  for (int i = 0; i < nlv; i++)
    {
      struct blk *b = &img->b[img->nb];
      uint64_t off = (uint64_t) (uintptr_t) lv[i].p - base;
      b->checked = (uint8_t) lv[i].checked;
      b->off = off - (b->checked ? sizeof (struct mm_chk) : 0);
      b->size = lv[i].size + (b->checked ? sizeof (struct mm_chk) : 0);
      b->pat = (uint8_t) (0x40 + i);
      uint64_t page = off >> MM_PAGE_SHIFT;
      uint32_t e = pm_get (img, page);
      if (PM_KIND (e) == PM_SLAB)
	{
	  const struct mm_class *c = &mm_classes[PM_SLAB_CLS (e)];
	  b->pg = page - PM_SLAB_OFF (e);
	  b->npg = c->pages;
	  b->slab = b->pg << MM_PAGE_SHIFT;
	  uint64_t idx = (b->off - b->slab - c->objoff) / c->size;
	  b->word[0] = b->slab + offsetof (struct mm_slab, bits) + idx / 64 * 8;
	  b->word[1] = b->word[0] + c->words * 8;
	}
      else
	{
	  b->pg = b->off >> MM_PAGE_SHIFT;
	  b->npg = e & PM_NMASK;
	  b->slab = 0;
	}
      img->nb++;
    }
  img->npgs = 0;
  for (uint64_t pg = 0; pg < 3; pg++)
    add_pg (img, pg);
  add_pg (img, MM_HDR_PAGES - 1);
  for (uint64_t w = 0; w < 4; w++)
    if (dir[w])
      for (uint64_t i = 0; i < MM_LEAF_PAGES; i++)
	add_pg (img, dir[w] + i);
  for (uint64_t d = 0; d < 5; d++)
    add_pg (img, top + 2 - d);
  add_pg (img, MM_WIN_PAGES);
  add_pg (img, MM_WIN_PAGES - 1);
  img->nruns = img->nslabs = img->ncls = 0;
  for (uint64_t pg = MM_HDR_PAGES; pg < top; pg++)
    {
      uint32_t e = pm_get (img, pg);
      if (!e || PM_KIND (e) == PM_META)
	continue;
      add_pg (img, pg);
      if (PM_KIND (e) == PM_FREE && (e & PM_HEAD) && img->nruns < 32)
	img->runs[img->nruns++] = pg;
      if (PM_KIND (e) == PM_SLAB && !PM_SLAB_OFF (e) && img->nslabs < 32)
	{
	  img->slabs[img->nslabs++] = pg;
	  int seen = 0;
	  for (int k = 0; k < img->ncls; k++)
	    seen |= img->cls_used[k] == PM_SLAB_CLS (e);
	  if (!seen && img->ncls < 8)
	    img->cls_used[img->ncls++] = (uint8_t) PM_SLAB_CLS (e);
	}
    }
  if (!img->nruns)
    img->runs[img->nruns++] = MM_HDR_PAGES;
  if (!img->nslabs)
    img->slabs[img->nslabs++] = MM_HDR_PAGES;
  if (!img->ncls)
    img->cls_used[img->ncls++] = 0;
}

static void
build (struct image *img, int kind)
{
  int fd = fz_fd_from ((const uint8_t *) "", 0);
  if (fd < 0)
    fz_die ("memfd");
  void *md = fz_must (mmalloc_attach (fd, NULL), "mmalloc_attach");
  nlv = 0;
  if (kind == 2 && !mmcheck (md, NULL))
    fz_die ("mmcheck");
  if (kind == 3)
    fill_shrunk (md);
  else if (kind == 5)
    fill_wide (md);
  else
    fill_small (md, kind == 2);
  /* The patterns; a block of more than 64 KiB gets one on its first and
     last 64 KiB and every 64th page, the rest stays holes (a small file).  */
  for (int i = 0; i < nlv; i++)
    {
      size_t n = lv[i].size, big = 64 << 10;
      if (n <= 2 * big)
	memset (lv[i].p, 0x40 + i, n);
      else
	{
	  memset (lv[i].p, 0x40 + i, big);
	  memset (lv[i].p + n - big, 0x40 + i, big);
	  for (size_t o = big; o + MM_PAGE < n - big; o += 64 * MM_PAGE)
	    memset (lv[i].p + o, 0x40 + i, MM_PAGE);
	}
    }
  if (mmalloc_check (md))
    fz_die ("the seed heap fails mmalloc_check");
  if (mmalloc_detach (md))
    fz_die ("mmalloc_detach");
  fz_take_image (fd, &img->im);
  memcpy (&img->h, img->im.data, sizeof img->h);
  close (fd);
  index_image (img, img->h.base);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc;
  (void) argv;
  fz_init_common ();
  fz_name = "fuzz-struct";
  fz_small = 1;
  mm_classes_init ();
  build (&images[0], 0);
  build (&images[2], 2);
  build (&images[3], 3);
  build (&images[5], 5);
  for (int i = 1; i <= 4; i += 3)
    {
      images[i] = images[i - 1];
      images[i].im.data = fz_must (malloc (images[i - 1].im.size), "malloc");
      memcpy (images[i].im.data, images[i - 1].im.data, images[i - 1].im.size);
      ((struct mm_header *) images[i].im.data)->state = MM_DIRTY;
      images[i].h.state = MM_DIRTY;
    }
  return 0;
}

/* --- one input ----------------------------------------------------------- */

struct mut
{
  uint64_t off;
  uint32_t len;
};

static struct mut muts[MAXMUT * 2];
static int nmuts;
static int fd_cur;

/* Write LEN bytes of VAL at OFF of the file being made (within SIZE).  */
static void
poke (const struct image *img, uint64_t off, const void *val, uint32_t len)
{
  if (off >= img->im.size || len > img->im.size - off || nmuts >= MAXMUT * 2)
    return;
  if (fz_pwrite_all (fd_cur, val, len, (off_t) off) < 0)
    return;
  muts[nmuts].off = off;
  muts[nmuts].len = len;
  nmuts++;
}

static uint64_t
peek (uint64_t off, uint32_t len)
{
  uint64_t v = 0;
  if (pread (fd_cur, &v, len, (off_t) off) != (ssize_t) len)
    return 0;
  return v;
}

static void
poke_val (const struct image *img, uint64_t off, uint64_t v, uint32_t len)
{
  poke (img, off, &v, len);
}

static uint64_t
pick_pg (const struct image *img, uint8_t i)
{
  return img->pgs[i % img->npgs];
}

/* A page-map entry for page PG made of A, B, V.  */
static uint32_t
make_entry (const struct image *img, uint64_t pg, uint8_t a, uint8_t b, uint8_t v)
{
  uint32_t kind = v & 7;
  if ((v & 0xf8) == 0xf8)
    return pm_get (img, pick_pg (img, b));
  if (kind == PM_SLAB)
    return PM_MAKE (PM_SLAB, (uint32_t) (b & 7) << 8 | img->cls_used[(v >> 3) % img->ncls]);
  if (kind == PM_META || kind > PM_META)
    return PM_MAKE (kind, (v & 0x80) ? a : 0);
  uint64_t len = b & 31, to = pick_pg (img, b);
  if (v & 0x20)
    len = to >= pg ? to - pg + 1 : pg - to + 1;
  uint32_t hd = (v >> 3) & 3;
  return PM_MAKE (kind, (uint32_t) (len & PM_NMASK) | (hd & 1 ? PM_HEAD : 0)
		  | (hd & 2 ? PM_END : 0) | (v & 0x40 ? PM_CHECKED : 0));
}

static void
mutate (const struct image *img, const uint8_t *m)
{
  uint8_t kind = m[0], a = m[1], b = m[2], v = m[3];
  uint64_t top = img->h.top;
  switch (kind % 8)
    {
    case 0:			/* a directory entry */
      {
	uint64_t w = a % 4, pg = pick_pg (img, b) + (v % 5) - 2;
	poke_val (img, MM_PAGE + w * 4, (v & 0x80) ? 0 : pg, 4);
      }
      break;
    case 1:			/* a page-map entry */
      {
	uint64_t pg = pick_pg (img, a) + (uint64_t) (b >> 5) - 3;
	size_t off = pm_off (img, pg);
	if (off)
	  poke_val (img, off, make_entry (img, pg, a, b, v), 4);
      }
      break;
    case 2:			/* a field of a free run's header */
      {
	uint64_t off = img->runs[a % img->nruns] << MM_PAGE_SHIFT;
	unsigned f = b % 4;
	uint64_t val = f == 0 ? peek (off, 8) ^ (1ULL << (v & 63))
	  : f == 3 ? (uint64_t) (v & 1) : (v & 0x80) ? 0 : pick_pg (img, v) << MM_PAGE_SHIFT;
	poke_val (img, off + f * 8, val, 8);
      }
      break;
    case 3:			/* a field of a slab's header */
      {
	uint64_t off = img->slabs[a % img->nslabs] << MM_PAGE_SHIFT;
	static const uint8_t fo[] = { 0, 4, 6, 8, 12, 16, 20, 24, 28, 32, 40 };
	static const uint8_t fl[] = { 4, 2, 2, 4, 4, 4, 4, 4, 4, 8, 8 };
	unsigned f = b % 11;
	uint64_t cur = peek (off + fo[f], fl[f]), val;
	if (f >= 9)
	  val = (v & 0x80) ? 0 : pick_pg (img, v) << MM_PAGE_SHIFT;
	else if (v < 0x40)
	  val = cur ^ (1ULL << (v % (fl[f] * 8)));
	else if (v < 0x80)
	  val = cur + (v & 1 ? 1 : (uint64_t) -1);
	else
	  val = v & 0x7f;
	poke_val (img, off + fo[f], val, fl[f]);
      }
      break;
    case 4:			/* a word of a slab's bitmaps */
      {
	uint64_t off = img->slabs[a % img->nslabs] << MM_PAGE_SHIFT;
	uint32_t cls = PM_SLAB_CLS (pm_get (img, off >> MM_PAGE_SHIFT));
	uint32_t words = mm_classes[cls].words ? mm_classes[cls].words : 1;
	uint64_t w = off + offsetof (struct mm_slab, bits) + (b % (2 * words)) * 8;
	uint64_t cur = peek (w, 8);
	uint64_t val = (v >> 6) == 0 ? cur ^ (1ULL << (v & 63))
	  : (v >> 6) == 1 ? 0 : (v >> 6) == 2 ? ~0ULL : peek (w ^ (words * 8), 8);
	poke_val (img, w, val, 8);
      }
      break;
    case 5:			/* a field of the header */
      {
	const struct mm_header *h = &img->h;
	uint64_t at, val = (v & 0x80) ? 0 : pick_pg (img, v) << MM_PAGE_SHIFT;
	uint32_t len = 8;
	switch (a % 8)
	  {
	  case 0:
	    at = offsetof (struct mm_header, top);
	    val = top + (uint64_t) (int64_t) (int8_t) v;
	    break;
	  case 1:
	    at = offsetof (struct mm_header, bin_head) + (b % MM_NBINS) * 8;
	    break;
	  case 2:
	    at = offsetof (struct mm_header, bin_mask) + (b & 1) * 8;
	    val = h->bin_mask[b & 1] ^ (1ULL << (v & 63));
	    break;
	  case 3:
	    at = offsetof (struct mm_header, cls) + (b % MM_NCLASSES) * sizeof (struct mm_class_state)
	      + (v & 1) * 8;
	    break;
	  case 4:
	    at = offsetof (struct mm_header, nlarge) + (b % 4) * 8;
	    val = v;
	    break;
	  case 5:
	    at = offsetof (struct mm_header, cls) + (b % MM_NCLASSES) * sizeof (struct mm_class_state)
	      + 16 + (v & 1) * 8;
	    val = v >> 1;
	    break;
	  case 6:
	    at = offsetof (struct mm_header, flags);
	    val = h->flags ^ (v & 3);
	    len = 4;
	    break;
	  default:
	    at = offsetof (struct mm_header, keys) + (b % MMALLOC_KEYS) * 8;
	    val += h->base;
	    break;
	  }
	poke_val (img, at, val, len);
      }
      break;
    case 6:			/* a check header, or a plain block's last bytes */
      {
	const struct blk *bk = &img->b[a % img->nb];
	uint64_t at = bk->off + (bk->checked || bk->size < 16 ? 0 : bk->size - 16) + (b % 4) * 4;
	poke_val (img, at, peek (at, 4) ^ ((uint64_t) v << (8 * (b >> 6))), 4);
      }
      break;
    default:			/* a byte of metadata in a page of interest */
      {
	/* Not the bytes of free slots and runs: under mmcheck they hold a
	   poison whose change is reported as a write after free (misuse).  */
	uint64_t pg = pick_pg (img, a), room = MM_PAGE;
	uint32_t e = pg < top ? pm_get (img, pg) : 0;
	if (PM_KIND (e) == PM_SLAB)
	  room = PM_SLAB_OFF (e) ? 0 : mm_classes[PM_SLAB_CLS (e)].objoff;
	else if (PM_KIND (e) == PM_FREE)
	  room = (e & PM_HEAD) ? sizeof (struct mm_run) : 0;
	else if (PM_KIND (e) == PM_LARGE || (pg >= MM_HDR_PAGES && PM_KIND (e) != PM_META))
	  room = 0;
	if (!room)
	  break;
	uint64_t at = (pg << MM_PAGE_SHIFT) + ((uint64_t) b * 16 + (v & 15)) % room;
	uint8_t x = (uint8_t) (peek (at, 1) ^ ((v >> 4) | 1));
	poke (img, at, &x, 1);
      }
      break;
    }
}

static int
hit (uint64_t lo, uint64_t hi)
{
  for (int i = 0; i < nmuts; i++)
    if (muts[i].off < hi && lo < muts[i].off + muts[i].len)
      return 1;
  return 0;
}

/* Did the mutations touch what makes block B allocated: the authoritative
   state (its large block's head and end marks; every mark of its slab, the
   slab's magic, class, flags and slot count, and its bits and rbits words),
   its window's directory entry (the leaf moved), its own bytes and check
   header; or does a lower `top' cut it off?  What is derived (counts, links,
   owners, hints, bins, lists) does not count: those must never cost a block.  */
static int
touched (const struct image *img, const struct blk *b, uint64_t newtop)
{
  if (b->pg + b->npg > newtop || hit (b->off, b->off + b->size))
    return 1;
  if (b->slab && (hit (b->slab, b->slab + 12) || hit (b->word[0], b->word[0] + 8)
		  || hit (b->word[1], b->word[1] + 8)))
    return 1;
  for (uint64_t pg = b->pg, end = b->pg + b->npg; pg < end;)
    {
      uint64_t w = pg >> MM_WIN_SHIFT, wend = (w + 1) << MM_WIN_SHIFT;
      uint64_t n = (end < wend ? end : wend) - pg;
      size_t off = pm_off (img, pg);
      if (hit (MM_PAGE + w * 4, MM_PAGE + w * 4 + 4))
	return 1;
      if (off && (b->slab ? hit (off, off + 4 * n)
		  : hit (off, off + 4) || hit (off + 4 * (n - 1), off + 4 * n)))
	return 1;
      pg += n;
    }
  return 0;
}

static struct fz_guard guards[MAXBLK];

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 3)
    return 0;
  const struct image *img = &images[data[0] % NIMAGES];
  uint8_t flags = data[1];
  size_t nm = data[2] % (MAXMUT + 1);
  if (nm > (size - 3) / 4)
    nm = (size - 3) / 4;
  const uint8_t *ops = data + 3 + nm * 4;
  size_t nops = size - 3 - nm * 4;

  int low = fz_lowest_fd ();
  int fd = fz_image_fd (&img->im);
  if (fd < 0)
    return 0;
  fd_cur = fd;
  nmuts = 0;
  for (size_t i = 0; i < nm; i++)
    mutate (img, data + 3 + i * 4);
  if (flags & 4)
    poke_val (img, offsetof (struct mm_header, state),
	      img->h.state == MM_CLEAN ? MM_DIRTY : MM_CLEAN, 4);

  /* The sums made right again, so that the mutations reach the checks
     behind them.  */
  static uint32_t dir[MM_DIR_ENTRIES];
  struct mm_header hc;
  if (pread (fd, &hc, sizeof hc, 0) != (ssize_t) sizeof hc
      || pread (fd, dir, sizeof dir, MM_PAGE) != (ssize_t) sizeof dir)
    {
      close (fd);
      return 0;
    }
  if (flags & 3)
    hc.dir_sum = mm_fmt_dir_sum (dir);
  hc.hdr_sum = mm_fmt_header_sum (&hc);
  (void) fz_pwrite_all (fd, &hc, sizeof hc, 0);

  /* The blocks no mutation touched must come out as they went in.  */
  int ng = 0;
  for (int i = 0; i < img->nb; i++)
    if (!touched (img, &img->b[i], hc.top))
      {
	guards[ng].p = (char *) (uintptr_t) (img->h.base + img->b[i].off);
	guards[ng].size = img->b[i].size;
	guards[ng].tag = i;
	ng++;
      }
  fz_guards = guards;
  fz_nguards = ng;
  int keep_fd = dup (fd);
  fz_attach_exercise (fd, hc.base, hc.span, ops, nops);
  fz_nguards = 0;
  if (keep_fd >= 0)
    {
      uint8_t buf[MM_PAGE];
      for (int g = 0; g < ng; g++)
	{
	  const struct blk *b = &img->b[guards[g].tag];
	  /* Pages still holes read as the zeros they were (the image keeps
	     the big block sparse): only data is compared.  */
	  for (uint64_t o = 0; o < b->size;)
	    {
	      off_t dpos = lseek (keep_fd, (off_t) (b->off + o), SEEK_DATA);
	      if (dpos < 0 || (uint64_t) dpos >= b->off + b->size)
		break;
	      o = (uint64_t) dpos - b->off;
	      size_t n = b->size - o < sizeof buf ? (size_t) (b->size - o) : sizeof buf;
	      if (pread (keep_fd, buf, n, (off_t) (b->off + o)) != (ssize_t) n)
		FZ_FAIL ("a live block can no longer be read from the file");
	      if (memcmp (buf, img->im.data + b->off + o, n))
		for (size_t k = 0; k < n; k++)
		  if (buf[k] != img->im.data[b->off + o + k])
		  {
		    char msg[160];
		    snprintf (msg, sizeof msg, "fuzz oracle: block %d at offset %#llx (%llu bytes)"
			      " changed at byte %llu\n", guards[g].tag,
			      (unsigned long long) b->off, (unsigned long long) b->size,
			      (unsigned long long) (o + k));
		    fz_say (msg);
		    __builtin_trap ();
		  }
	      o += n;
	    }
	}
      close (keep_fd);
    }
  if (fz_lowest_fd () != low)
    FZ_FAIL ("a descriptor was left open");
  return 0;
}
