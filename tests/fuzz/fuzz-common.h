/* fuzz-common.h -- what the libFuzzer harnesses share.

   - fz_fd_from (): a memfd (a temp file where memfd_create fails) holding
     a given image, written sparsely: pages of zeros are left as holes;
   - struct fz_image, fz_take_image (), fz_image_fd (): a heap file kept in
     memory, and a new file made of it;  fz_die (), fz_must (): the seed
     heaps cannot be built;
   - fz_attach_errno_ok (): is E one of the codes mmalloc_attach documents;
   - fz_exercise (): the attached-heap workout: check, stats, keys, a short
     deterministic sequence of allocations, resizes and frees driven by the
     input, check again; every pointer it frees is one mmalloc handed out in
     this same call, so any abort (a reported misuse) is a bug;
   - fz_range_free (): leak checks: the heap's reservation must be gone after
     detach (or after a failed attach), and no descriptor may stay open;
   - fz_guards, fz_nguards: blocks of the heap file that the program still
     holds (fuzz-struct): no allocation may overlap one;  fz_small: large
     sizes stay small (fuzz-struct's small heaps).

   Oracles that stop the run (__builtin_trap, after one line on the saved
   stderr; a misuse reported on a checked heap returns, see
   fz_misuse_reported): a failed attach with an undocumented errno; an allocation that
   returns NULL with errno 0, or a pointer that is misaligned, outside the
   heap's body or overlapping another live block; a block whose usable size is
   below what was asked; a live block that can no longer be read and written
   (touched after every allocation); a leaked descriptor or reservation.  With
   FUZZ_STRICT=1 in the environment also: a heap that mmalloc_check found
   consistent which the allocator then finds damaged (MMALLOC_ECORRUPT) or
   leaves inconsistent, or whose live blocks change under the program (=2:
   without the one known-gap exemption, see fz_stale_beyond_top).
   FUZZ_TRACE=1 prints each operation.  */

#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H 1

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmprivate.h"		/* struct mm_header, MM_* layout constants */

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 1u
#endif

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int LLVMFuzzerInitialize (int *argc, char ***argv);
int memfd_create (const char *name, unsigned int flags);

/* stderr as it was before libFuzzer's -close_fd_mask closed it.  */
static int fz_err = 2;
static int fz_strict;
static int fz_trace;		/* FUZZ_TRACE=1: one line per operation */

static void
fz_init_common (void)
{
  int e = dup (2);
  if (e >= 0)
    {
      fz_err = e;
      (void) fcntl (e, F_SETFD, FD_CLOEXEC);
    }
  /* The library is built with ASan here to find its own memory errors;
     its annotations for the program's ASan (freed blocks poisoned) stay
     off, as in make asan: a damaged file's link may lead into a block
     this process freed, and the validator's read that refuses it would be
     reported as a use of poisoned memory.  */
  setenv ("MMALLOC_ANNOTATE", "0", 1);
  const char *s = getenv ("FUZZ_STRICT");
  fz_strict = s && *s ? atoi (s) : 0;
  s = getenv ("FUZZ_TRACE");
  fz_trace = s && *s && *s != '0';
}

static void fz_say (const char *msg);

static void
fz_log (const char *op, int slot, size_t a, size_t b, const void *ret, int err)
{
  if (!fz_trace)
    return;
  char line[160];
  snprintf (line, sizeof line, "fuzz op: %s slot %d (%zu, %zu) -> %p errno %d\n",
	    op, slot, a, b, ret, ret ? 0 : err);
  fz_say (line);
}

static void
fz_say (const char *msg)
{
  if (write (fz_err, msg, strlen (msg)) < 0)
    return;
}

#define FZ_FAIL(msg) do { fz_say ("fuzz oracle: " msg "\n"); __builtin_trap (); } while (0)

/* Write LEN bytes of BUF at OFF.  0 or -1.  */
static int
fz_pwrite_all (int fd, const void *buf, size_t len, off_t off)
{
  const char *p = buf;
  while (len)
    {
      ssize_t w = pwrite (fd, p, len, off);
      if (w < 0 && errno == EINTR)
	continue;
      if (w <= 0)
	return -1;
      p += w;
      len -= (size_t) w;
      off += w;
    }
  return 0;
}

static int
fz_zero (const uint8_t *p, size_t n)
{
  static const uint8_t zeros[MM_PAGE];
  return n <= MM_PAGE ? memcmp (p, zeros, n) == 0 : 0;
}

/* A regular file holding DATA[0..SIZE): a memfd, else an unlinked temp file.
   Pages of zeros are holes.  The descriptor, or -1.  */
static int
fz_fd_from (const uint8_t *data, size_t size)
{
  int fd = memfd_create ("mmfuzz", MFD_CLOEXEC);
  if (fd < 0)
    {
      const char *t = getenv ("TMPDIR");
      char path[512];
      snprintf (path, sizeof path, "%s/mmfuzz.XXXXXX", t && *t ? t : "/tmp");
      fd = mkstemp (path);
      if (fd < 0)
	return -1;
      unlink (path);
    }
  if (ftruncate (fd, (off_t) size) != 0)
    {
      close (fd);
      return -1;
    }
  for (size_t off = 0; off < size; off += MM_PAGE)
    {
      size_t n = size - off < MM_PAGE ? size - off : MM_PAGE;
      if (!fz_zero (data + off, n) && fz_pwrite_all (fd, data + off, n, (off_t) off) < 0)
	{
	  close (fd);
	  return -1;
	}
    }
  return fd;
}

/* The seed heaps of a harness cannot be built (fuzz-body, fuzz-struct):
   say why, as FZ_NAME, and stop.  */
static const char *fz_name = "fuzz";

static void
fz_die (const char *what)
{
  fprintf (stderr, "%s: cannot build the seed heaps: %s: %s\n", fz_name, what, strerror (errno));
  exit (2);
}

static void *
fz_must (void *p, const char *what)
{
  if (!p)
    fz_die (what);
  return p;
}

/* A heap file kept in memory (fuzz-body, fuzz-struct): its bytes, and the
   pages that are not all zeros, the only ones written to make it again.  */
struct fz_image
{
  uint8_t *data;
  size_t size;
  uint32_t *pages;
  size_t npages;
};

static void
fz_index_pages (struct fz_image *img)
{
  size_t n = (img->size + MM_PAGE - 1) / MM_PAGE;
  img->pages = fz_must (malloc (n * sizeof *img->pages + 1), "malloc");
  img->npages = 0;
  for (size_t i = 0; i < n; i++)
    {
      size_t off = i * MM_PAGE, len = img->size - off < MM_PAGE ? img->size - off : MM_PAGE;
      if (!fz_zero (img->data + off, len))
	img->pages[img->npages++] = (uint32_t) i;
    }
}

/* Read the heap file FD into IMG; only its data is read (a heap that spans
   windows is mostly holes).  */
static void
fz_take_image (int fd, struct fz_image *img)
{
  struct stat st;
  if (fstat (fd, &st))
    fz_die ("fstat");
  img->size = (size_t) st.st_size;
  img->data = fz_must (calloc (1, img->size + 1), "calloc");
  for (off_t off = 0; (size_t) off < img->size;)
    {
      off = lseek (fd, off, SEEK_DATA);
      if (off < 0)
	break;
      off_t end = lseek (fd, off, SEEK_HOLE);
      if (end < 0 || (size_t) end > img->size)
	end = (off_t) img->size;
      for (off_t o = off; o < end;)
	{
	  ssize_t r = pread (fd, img->data + o, (size_t) (end - o), o);
	  if (r <= 0)
	    fz_die ("pread");
	  o += r;
	}
      off = end;
    }
  fz_index_pages (img);
}

/* A new file holding IMG.  The descriptor, or -1.  */
static int
fz_image_fd (const struct fz_image *img)
{
  int fd = fz_fd_from ((const uint8_t *) "", 0);
  if (fd < 0)
    return -1;
  if (ftruncate (fd, (off_t) img->size) != 0)
    {
      close (fd);
      return -1;
    }
  for (size_t i = 0; i < img->npages; i++)
    {
      size_t off = (size_t) img->pages[i] * MM_PAGE;
      size_t len = img->size - off < MM_PAGE ? img->size - off : MM_PAGE;
      if (fz_pwrite_all (fd, img->data + off, len, (off_t) off) < 0)
	{
	  close (fd);
	  return -1;
	}
    }
  return fd;
}

static int
fz_attach_errno_ok (int e)
{
  switch (e)
    {
    case MMALLOC_ENOTHEAP:
    case MMALLOC_EVERSION:
    case MMALLOC_EMACHINE:
    case MMALLOC_ECORRUPT:
    case MMALLOC_ETRUNCATED:
    case MMALLOC_EADDRINUSE:
    case MMALLOC_ELOCKED:
    case ENOMEM:
    case ENOSPC:
    case EINVAL:
      return 1;
    default:
      return 0;
    }
}

/* Is the page at ADDR unmapped?  (Checks a heap reservation is gone.)  */
static int
fz_page_free (uint64_t addr)
{
  if (addr % MM_PAGE || addr == 0 || addr >= (1ULL << 47) - MM_PAGE)
    return 1;
  void *p = mmap ((void *) (uintptr_t) addr, MM_PAGE, PROT_NONE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED)
    return errno != EEXIST;
  munmap (p, MM_PAGE);
  return p == (void *) (uintptr_t) addr;
}

/* The reservation of a heap at BASE of SPAN bytes is gone: its first and
   last pages, and the page after `top', are free.  */
static void
fz_range_free (uint64_t base, uint64_t span, uint64_t top)
{
  if (!span || base % MM_PAGE || span % MM_PAGE || span > MM_SPAN_MAX
      || base + span < base || base + span > (1ULL << 47))
    return;
  if (!fz_page_free (base) || !fz_page_free (base + span - MM_PAGE)
      || (top && top < span >> MM_PAGE_SHIFT && !fz_page_free (base + (top << MM_PAGE_SHIFT))))
    FZ_FAIL ("the heap's address range is still mapped (leaked reservation)");
}

/* The lowest free descriptor number.  */
static int
fz_lowest_fd (void)
{
  int fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0)
    close (fd);
  return fd;
}

/* --- the workout of an attached heap -------------------------------------- */

#define FZ_SLOTS 16

struct fz_block
{
  char *p;
  size_t size;
};

struct fz_run
{
  void *md;
  struct mm_desc *d;
  struct fz_block b[FZ_SLOTS];
  int corrupt;			/* an operation failed with MMALLOC_ECORRUPT */
  int consistent;		/* mmalloc_check found nothing at attach */
};

/* Small heaps (fuzz-struct): large sizes stay below 90 KiB.  */
static int fz_small;

/* Size for argument byte A: tiny, small, around the small limit, large.  */
static size_t
fz_size (uint8_t a)
{
  size_t v = a & 63;
  switch (a >> 6)
    {
    case 0:
      return v;
    case 1:
      return v * 64 + 1;
    case 2:
      return v * 512 + 100;
    default:
      return fz_small ? v * 1024 + 20000 : v * 16384 + 20000;
    }
}

static void
fz_note_fail (struct fz_run *r, int e)
{
  if (e == 0)
    FZ_FAIL ("allocation failed with errno 0");
  if (e == MMALLOC_ECORRUPT)
    r->corrupt = 1;
}

/* Read and write the block of SLOT at both ends, as its owner may at any
   time (a crash here: the heap unmapped or moved memory it had handed out).
   Strict: its contents must be what fz_took wrote there.  */
static void
fz_touch (struct fz_run *r, int slot)
{
  volatile char *p = r->b[slot].p;
  size_t size = r->b[slot].size;
  if (!p || !size)
    return;
  size_t head = size < 256 ? size : 256, tail = size > 256 ? size - 256 : size;
  int bad = 0;
  for (size_t i = 0; i < size; i = i + 1 == head && tail > head ? tail : i + 1)
    {
      unsigned char want = i >= tail ? 0x5a : 0xa5, got = (unsigned char) p[i];
      bad |= got != want;
      p[i] = (char) want;
    }
  if (bad && fz_strict && r->consistent && !r->d->damaged)
    FZ_FAIL ("strict: the contents of a live block changed");
}

/* Blocks of the heap file that the program still holds (fuzz-struct): no
   allocation may overlap them.  */
struct fz_guard
{
  char *p;
  uint64_t size;
  int tag;
};
static const struct fz_guard *fz_guards;
static int fz_nguards;

/* P was just returned for SIZE bytes aligned to ALIGN: check it, write it.  */
static void
fz_took (struct fz_run *r, int slot, void *ptr, size_t size, size_t align)
{
  struct mm_desc *d = r->d;
  char *p = ptr;
  uint64_t top = __atomic_load_n (&d->hdr->top, __ATOMIC_ACQUIRE);
  char *lo = d->base + (uint64_t) MM_HDR_PAGES * MM_PAGE;
  char *hi = d->base + (top << MM_PAGE_SHIFT);
  if ((uintptr_t) p % align)
    FZ_FAIL ("allocation returned a misaligned pointer");
  if (p < lo || p >= hi || size > (size_t) (hi - p))
    FZ_FAIL ("allocation returned a block outside the heap's body");
  for (int i = 0; i < FZ_SLOTS; i++)
    if (i != slot && r->b[i].p)
      {
	char *q = r->b[i].p;
	size_t qs = r->b[i].size ? r->b[i].size : 1, ps = size ? size : 1;
	if (p < q + qs && q < p + ps)
	  FZ_FAIL ("allocation returned a block overlapping a live block");
      }
  for (int i = 0; i < fz_nguards; i++)
    if (p < fz_guards[i].p + fz_guards[i].size && fz_guards[i].p < p + (size ? size : 1))
      FZ_FAIL ("allocation returned a block overlapping a live block of the file");
  size_t u = mmalloc_usable_size (r->md, p);
  if (u < size && !d->damaged)
    FZ_FAIL ("usable size below the size asked for");
  /* Write the block's two ends, as a program would.  */
  size_t n = size < 256 ? size : 256;
  memset (p, 0xa5, n);
  if (size > 256)
    memset (p + size - 256, 0x5a, 256);
  r->b[slot].p = p;
  r->b[slot].size = size;
  /* Every live block is touched after each allocation: growth, shrinking
     and damage handling must leave them all mapped and intact.  */
  for (int i = 0; i < FZ_SLOTS; i++)
    fz_touch (r, i);
}

/* Free the block of SLOT, if any.  */
static void
fz_drop (struct fz_run *r, int slot)
{
  if (!r->b[slot].p)
    return;
  fz_touch (r, slot);
  fz_log ("mfree", slot, 0, 0, r->b[slot].p, 0);
  mfree (r->md, r->b[slot].p);
  r->b[slot].p = NULL;
}

/* The end of an allocating operation into SLOT: register P, or note the
   failure (errno).  */
static void
fz_result (struct fz_run *r, int slot, void *p, size_t size, size_t align)
{
  if (p)
    fz_took (r, slot, p, size, align);
  else
    fz_note_fail (r, errno);
}

/* Run the operations coded in OPS[0..N): two bytes each.  */
static void
fz_ops (struct fz_run *r, const uint8_t *ops, size_t n)
{
  void *md = r->md;
  for (size_t i = 0; i + 1 < n && i < 64; i += 2)
    {
      uint8_t op = ops[i], a = ops[i + 1];
      int slot = (op >> 3) % FZ_SLOTS;
      size_t size = fz_size (a);
      struct fz_block *b = &r->b[slot];
      void *p;
      errno = 0;
      switch (op & 7)
	{
	case 0:
	case 1:
	  fz_drop (r, slot);
	  p = mmalloc (md, size);
	  fz_log ("mmalloc", slot, size, 0, p, errno);
	  fz_result (r, slot, p, size, MM_ALIGN);
	  break;
	case 2:
	  fz_drop (r, slot);
	  {
	    size_t nm = (size_t) (op >> 7) + 1 + (a & 3);
	    p = mcalloc (md, nm, size / nm + 1);
	    fz_log ("mcalloc", slot, nm, size / nm + 1, p, errno);
	    if (p)
	      {
		for (size_t k = 0; k < nm * (size / nm + 1); k += 97)
		  if (((char *) p)[k])
		    FZ_FAIL ("mcalloc returned memory that is not zeroed");
		fz_took (r, slot, p, nm * (size / nm + 1), MM_ALIGN);
	      }
	    else
	      fz_note_fail (r, errno);
	  }
	  break;
	case 3:
	  fz_drop (r, slot);
	  {
	    size_t align = (size_t) 1 << (4 + (size_t) (op >> 3) % 15);
	    p = mmemalign (md, align, size);
	    fz_log ("mmemalign", slot, align, size, p, errno);
	    fz_result (r, slot, p, size, align);
	  }
	  break;
	case 4:
	case 5:
	  fz_touch (r, slot);
	  p = mrealloc (md, b->p, size);
	  fz_log ("mrealloc", slot, (size_t) (uintptr_t) b->p, size, p, errno);
	  if (p)
	    b->p = NULL;	/* moved (the old block is freed) or resized
				   in place: registered again below */
	  fz_result (r, slot, p, size, MM_ALIGN);
	  break;
	case 6:
	  fz_drop (r, slot);
	  break;
	default:
	  if (b->p)
	    {
	      if (mmalloc_usable_size (md, b->p) < b->size && !r->d->damaged)
		FZ_FAIL ("live block's usable size is below the size asked for");
	    }
	  else
	    {
	      p = mvalloc (md, size);
	      fz_log ("mvalloc", slot, size, 0, p, errno);
	      fz_result (r, slot, p, size, MM_PAGE);
	    }
	  break;
	}
    }
}

/* Does the page map hold marks beyond `top' (where it should be zeros)?  */
static int
fz_stale_beyond_top (struct mm_desc *d)
{
  const uint32_t *dir = (const uint32_t *) (d->base + MM_PAGE);
  uint64_t top = d->hdr->top;
  for (uint64_t w = top >> MM_WIN_SHIFT; w < MM_DIR_ENTRIES; w++)
    {
      if (!dir[w] || dir[w] + MM_LEAF_PAGES > top)
	continue;
      const uint32_t *leaf = (const uint32_t *) (d->base + ((uint64_t) dir[w] << MM_PAGE_SHIFT));
      uint64_t i = w == top >> MM_WIN_SHIFT ? top & (MM_WIN_PAGES - 1) : 0;
      for (; i < MM_WIN_PAGES; i++)
	if (leaf[i])
	  return 1;
    }
  return 0;
}

/* Everything the harnesses do with an attached heap MD.  */
static void
fz_exercise (void *md, const uint8_t *ops, size_t nops)
{
  struct fz_run r;
  memset (&r, 0, sizeof r);
  r.md = md;
  r.d = mm_desc_of (md);
  int c0 = mmalloc_check (md);
  if (fz_trace)
    {
      char line[96];
      snprintf (line, sizeof line, "fuzz: attached at %p, top %llu pages, check: %d problems\n",
		(void *) r.d->base, (unsigned long long) r.d->hdr->top, c0);
      fz_say (line);
    }
  /* Known gap, reported: mmalloc_check does not look at the page map beyond
     `top', and growth takes what it finds there.  FUZZ_STRICT=1 does not hold
     it against the heap (so that fuzzing finds other things); 2 does.  */
  if (fz_strict == 1 && c0 == 0 && fz_stale_beyond_top (r.d))
    c0 = -1;
  r.consistent = c0 == 0;
  struct mstats st = mmstats (md);
  (void) st;
  volatile uintptr_t keysum = 0;
  for (int k = -1; k <= MMALLOC_KEYS; k++)
    keysum += (uintptr_t) mmalloc_getkey (md, k);
  (void) mmalloc_errno (md);
  fz_ops (&r, ops, nops);
  for (int i = 0; i < FZ_SLOTS; i++)
    fz_touch (&r, i);
  int c1 = mmalloc_check (md);
  for (int i = 0; i < FZ_SLOTS; i++)
    fz_drop (&r, i);
  int c2 = mmalloc_check (md);
  st = mmstats (md);
  if (fz_strict && c0 == 0)
    {
      if (r.corrupt || r.d->damaged)
	FZ_FAIL ("strict: mmalloc_check found no problem, the allocator found damage");
      if (c1 || c2)
	FZ_FAIL ("strict: a consistent heap became inconsistent");
    }
}

/* Under mmcheck, a free slot's poison that the input changed, or a live
   slot whose bit it cleared, is reported as a write after free when the
   slot is handed out again: damage that looks like misuse, and is
   reported so.  On a checked heap such a report returns here instead of
   aborting (the call is abandoned); the other oracles still hold.  */
static void
fz_misuse_reported (void)
{
}

/* Attach FD, a file whose header names the range BASE, SPAN, and close FD.
   A refusal must come with a documented errno and leave the range as free
   as it was; a heap that attaches is exercised with OPS and detached, and
   must leave its range free.  */
static void
fz_attach_exercise (int fd, uint64_t base, uint64_t span, const uint8_t *ops, size_t nops)
{
  int free_before = fz_page_free (base) && span >= MM_PAGE
    && span <= MM_SPAN_MAX && fz_page_free (base + span - MM_PAGE);
  errno = 0;
  void *md = mmalloc_attach (fd, NULL);
  int e = errno;
  close (fd);
  if (!md)
    {
      if (!fz_attach_errno_ok (e))
	{
	  char msg[96];
	  snprintf (msg, sizeof msg, "mmalloc_attach failed with undocumented errno %d (%s)\n",
		    e, mmalloc_strerror (e));
	  fz_say (msg);
	  __builtin_trap ();
	}
      if (free_before)
	fz_range_free (base, span, 0);
      return;
    }
  struct mm_desc *d = mm_desc_of (md);
  if (d->hdr->flags & MM_F_CHECKED)
    (void) mmcheck (md, fz_misuse_reported);	/* the function only */
  uint64_t dbase = (uint64_t) (uintptr_t) d->base, dspan = d->span;
  fz_exercise (md, ops, nops);
  uint64_t top = d->hdr->top;
  if (mmalloc_detach (md) != NULL)
    FZ_FAIL ("mmalloc_detach failed");
  fz_range_free (dbase, dspan, top);
}

#endif /* FUZZ_COMMON_H */
