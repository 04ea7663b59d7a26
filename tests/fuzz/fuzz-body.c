/* fuzz-body.c -- libFuzzer harness: the input is a patch on a valid heap.

   At start-up (LLVMFuzzerInitialize) the harness makes a few valid heap files
   and keeps their images:
     0  mixed:   small blocks of many classes (full and partial slabs), large
                 blocks, aligned blocks, free runs (some released), keys; clean
     1  dirty:   image 0 marked dirty, as if its process died attached: the
                 attach runs recovery
     2  checked: a heap under mmcheck with live and freed blocks; clean
     3  big:     more than one 16 MiB window, so two page-map leaves; clean
   The fixed header fields stay valid (or have their checksum recomputed), so
   every input gets past the header check and reaches damaged metadata.

   Input layout:
     byte 0      image (mod 4)
     byte 1      N: the last N mod 65 bytes code the operations (fz_ops)
     then        patch records, applied in order:
                   tag, o1, o2, l, then the payload
                 v = o1 << 8 | o2; (l >> 4) & 3 chooses what is written:
                   0  XOR (l & 15) + 1 payload bytes in
                   1  overwrite with (l & 15) + 1 payload bytes
                   2  a metadata link: 8 bytes, the byte offset of page
                      (payload[0] | payload[1] << 8) (2 payload bytes)
                   3  a page-map entry: 4 bytes, payload[0] << 24 |
                      payload[1] << 8 | payload[2] (kind and flags, then
                      run length or slab page and class; 3 payload bytes)
                 tag & 7 chooses where:
                   0  the header's changing fields (state .. cls[]), v mod their size
                   1  the header's fixed fields (checksum recomputed afterwards)
                   2  the first 16 directory entries
                   3  the whole directory (pages 1..8)
                   4  the page-map leaf of window 0, byte v mod 16 KiB
                   5  byte o2 of page ((tag >> 3) << 8 | o1) mod top (slab and
                      run headers)
                   6  any byte: ((tag >> 3) << 18 | (l >> 6) << 16 | v) mod size
                   7  the page-map entry of page v mod top (any window)
   Then the patched image is attached and put through fz_exercise, as in
   fuzz-attach.c.  */

#include "fuzz-common.h"

#include <sys/wait.h>

#define NIMAGES 4

static struct fz_image images[NIMAGES];

/* Fill a heap with a mix of blocks, frees and keys.  */
static void
populate (void *md, int big)
{
  static const size_t small[] = { 0, 1, 16, 24, 48, 100, 128, 200, 500, 1000, 3000, 8000, 16000 };
  void *keep[256];
  int nk = 0;
  for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
    for (int j = 0; j < 6; j++)
      {
	void *p = fz_must (mmalloc (md, small[i]), "mmalloc small");
	memset (p, (int) i, small[i]);
	if (j % 3 == 1)
	  mfree (md, p);
	else if (nk < 256)
	  keep[nk++] = p;
      }
  /* One full slab of 16-byte slots, not on a partial list.  */
  size_t n16 = mm_classes[0].nobj;
  for (size_t j = 0; j < n16; j++)
    fz_must (mmalloc (md, 16), "mmalloc fill");
  void *l1 = fz_must (mmalloc (md, 20000), "large");
  void *l2 = fz_must (mmalloc (md, 70000), "large");
  void *l3 = fz_must (mmalloc (md, 300000), "large");	/* released when freed */
  void *l4 = fz_must (mmemalign (md, 65536, 5000), "aligned");
  void *l5 = fz_must (mmalloc (md, 40000), "large");
  void *v = fz_must (mvalloc (md, 100), "mvalloc");
  memset (l1, 1, 20000);
  memset (l3, 3, 4096);
  mfree (md, l2);
  mfree (md, l3);
  l5 = fz_must (mrealloc (md, l5, 60000), "mrealloc");
  mmalloc_setkey (md, 0, keep[0]);
  mmalloc_setkey (md, 3, l4);
  mmalloc_setkey (md, 7, v);
  mmalloc_setkey (md, 15, (void *) (uintptr_t) 0x1234567);
  if (big)
    {
      void *g = fz_must (mmalloc (md, (size_t) 17 << 20), "huge");
      mmalloc_setkey (md, 1, g);
      void *after = fz_must (mmalloc (md, 100000), "after huge");
      mmalloc_setkey (md, 2, after);
      void *s = fz_must (mmalloc (md, 30), "small after huge");
      (void) s;
    }
  for (int i = 2; i < nk; i += 5)
    mfree (md, keep[i]);
}

static void
build (struct fz_image *img, int checked, int big)
{
  int fd = fz_fd_from ((const uint8_t *) "", 0);
  if (fd < 0)
    fz_die ("memfd");
  void *md = fz_must (mmalloc_attach (fd, NULL), "mmalloc_attach");
  if (checked && !mmcheck (md, NULL))
    fz_die ("mmcheck");
  populate (md, big);
  if (mmalloc_check (md))
    fz_die ("the seed heap fails mmalloc_check");
  if (mmalloc_detach (md))
    fz_die ("mmalloc_detach");
  fz_take_image (fd, img);
  close (fd);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc;
  (void) argv;
  fz_init_common ();
  fz_name = "fuzz-body";
  build (&images[0], 0, 0);
  images[1].size = images[0].size;
  images[1].data = fz_must (malloc (images[0].size), "malloc");
  memcpy (images[1].data, images[0].data, images[0].size);
  ((struct mm_header *) images[1].data)->state = MM_DIRTY;
  fz_index_pages (&images[1]);
  build (&images[2], 1, 0);
  build (&images[3], 0, 1);
  return 0;
}

/* Page-map entry offset of page PG in image H, or 0 if its leaf is bad.  */
static size_t
pm_offset (const uint8_t *img, size_t size, uint64_t pg)
{
  const uint32_t *dir = (const uint32_t *) (img + MM_PAGE);
  uint64_t w = pg >> MM_WIN_SHIFT;
  if (w >= MM_DIR_ENTRIES || !dir[w])
    return 0;
  size_t off = ((size_t) dir[w] << MM_PAGE_SHIFT) + (size_t) (pg & (MM_WIN_PAGES - 1)) * 4;
  return off + 4 <= size ? off : 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 2)
    return 0;
  const struct fz_image *img = &images[data[0] % NIMAGES];
  size_t nops = data[1] % 65;
  if (nops > size - 2)
    nops = size - 2;
  const uint8_t *ops = data + size - nops;
  const uint8_t *p = data + 2, *end = ops;

  int low = fz_lowest_fd ();
  int fd = fz_image_fd (img);
  if (fd < 0)
    return 0;
  const struct mm_header *h0 = (const struct mm_header *) img->data;
  uint64_t top0 = h0->top;
  const size_t mut0 = offsetof (struct mm_header, state);
  const size_t mutn = sizeof (struct mm_header) - mut0;
  const size_t fixn = offsetof (struct mm_header, hdr_sum);
  int fix_sum = 0;

  while (end - p >= 4)
    {
      uint8_t tag = p[0], l = p[3];
      size_t v = (size_t) p[1] << 8 | p[2];
      int mode = (l >> 4) & 3;
      size_t len = mode == 2 ? 2 : mode == 3 ? 3 : (size_t) (l & 15) + 1;
      p += 4;
      if ((size_t) (end - p) < len)
	len = (size_t) (end - p);
      uint8_t val[16];		/* what is written */
      size_t n = len;
      if (mode == 2)
	{
	  uint64_t link = (uint64_t) ((len > 0 ? p[0] : 0) | (len > 1 ? p[1] << 8 : 0)) << MM_PAGE_SHIFT;
	  memcpy (val, &link, 8);
	  n = len ? 8 : 0;
	}
      else if (mode == 3)
	{
	  uint32_t e = (uint32_t) (len > 0 ? p[0] : 0) << 24 | (uint32_t) (len > 1 ? p[1] : 0) << 8
	    | (len > 2 ? p[2] : 0);
	  memcpy (val, &e, 4);
	  n = len ? 4 : 0;
	}
      else
	memcpy (val, p, len);
      size_t off = 0, lim = img->size;	/* patch [off, off+len) clipped to lim */
      switch (tag & 7)
	{
	case 0:
	  off = mut0 + v % mutn;
	  lim = sizeof (struct mm_header);
	  break;
	case 1:
	  off = v % fixn;
	  lim = fixn;
	  fix_sum = 1;
	  break;
	case 2:
	  off = MM_PAGE + v % 64;
	  lim = MM_PAGE + 64;
	  break;
	case 3:
	  off = MM_PAGE + v % (MM_DIR_PAGES * MM_PAGE);
	  lim = MM_HDR_PAGES * MM_PAGE;
	  break;
	case 4:
	  off = pm_offset (img->data, img->size, 0);
	  if (off)
	    off += v % (MM_LEAF_PAGES * MM_PAGE);
	  break;
	case 5:
	  off = (size_t) (((size_t) (tag >> 3) << 8 | p[-3]) % top0) << MM_PAGE_SHIFT | p[-2];
	  break;
	case 6:
	  off = ((size_t) (tag >> 3) << 18 | (size_t) (l >> 6) << 16 | v) % img->size;
	  break;
	default:
	  off = pm_offset (img->data, img->size, v % top0);
	  break;
	}
      if (off < lim && n)
	{
	  uint8_t cur[16];
	  if (n > lim - off)
	    n = lim - off;
	  if (pread (fd, cur, n, (off_t) off) == (ssize_t) n)
	    {
	      for (size_t i = 0; i < n; i++)
		cur[i] = mode ? val[i] : cur[i] ^ val[i];
	      (void) fz_pwrite_all (fd, cur, n, (off_t) off);
	    }
	}
      p += len;
    }
  struct mm_header hc;
  if (pread (fd, &hc, sizeof hc, 0) != (ssize_t) sizeof hc)
    {
      close (fd);
      return 0;
    }
  if (fix_sum)
    {
      hc.hdr_sum = mm_fmt_header_sum (&hc);
      (void) fz_pwrite_all (fd, &hc.hdr_sum, sizeof hc.hdr_sum,
			    (off_t) offsetof (struct mm_header, hdr_sum));
    }

  fz_attach_exercise (fd, hc.base, hc.span, ops, nops);
  if (fz_lowest_fd () != low)
    FZ_FAIL ("a descriptor was left open");
  return 0;
}
