/* mkseed.c -- seed corpora for the fuzz harnesses.

   mkseed DIR [BODYDIR]

   DIR gets whole heap files for fuzz-attach:
     empty.heap      a new heap, detached at once
     mixed.heap      small blocks of many classes (full and partial slabs),
                     large and aligned blocks, free runs, keys; detached
     checked.heap    the same under mmcheck
     dirty.heap      a heap whose process _exit-ed while attached
     shrunk.heap     a heap that grew by a large block and shrank again
     small.heap      three small classes, three large blocks, one free run
     tiny.heap       an empty heap with no free page: top is the first leaf's end
     truncated.heap  the first two pages of mixed.heap
     base0.heap, basehigh.heap, spanmin.heap
                     mixed.heap with base or span changed and the header
                     checksum made right again: addresses that cannot be had
   mixed, checked, shrunk, dirty, small and tiny end at their last used page:
   the free run at the top is cut off (its page-map marks too) and, but for
   dirty, the file recovered, to keep seeds small.
   BODYDIR (optional) gets a few inputs for fuzz-body (see its layout): each
   image with no patch and some operations.  STRUCTDIR (optional) gets
   inputs for fuzz-struct: each image with no mutation, then with one
   mutation of each kind, and some operations.  */

#include "mmprivate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *dir;

static void
die (const char *what)
{
  fprintf (stderr, "mkseed: %s: %s\n", what, strerror (errno));
  exit (1);
}

static const char *
path (const char *d, const char *name)
{
  static char buf[4][1024];
  static int n;
  char *p = buf[n++ % 4];
  snprintf (p, 1024, "%s/%s", d, name);
  return p;
}

static int
newfile (const char *name)
{
  const char *p = path (dir, name);
  unlink (p);
  int fd = open (p, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    die (p);
  return fd;
}

static void *
must (void *p, const char *what)
{
  if (!p)
    die (what);
  return p;
}

static void
populate (void *md)
{
  static const size_t sizes[] = { 0, 1, 16, 24, 48, 100, 128, 200, 500, 1000, 3000, 8000, 16000 };
  void *keep[128];
  int nk = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    for (int j = 0; j < 5; j++)
      {
	void *p = must (mmalloc (md, sizes[i]), "mmalloc");
	memset (p, (int) (i + 1), sizes[i]);
	if (j % 3 == 1)
	  mfree (md, p);
	else if (nk < 128)
	  keep[nk++] = p;
      }
  for (unsigned j = 0; j < mm_classes[1].nobj; j++)	/* one full slab */
    must (mmalloc (md, 32), "mmalloc fill");
  void *l1 = must (mmalloc (md, 20000), "large");
  void *l2 = must (mmalloc (md, 70000), "large");
  void *l3 = must (mmalloc (md, 90000), "large");
  void *l4 = must (mmemalign (md, 32768, 3000), "mmemalign");
  void *l5 = must (mcalloc (md, 10, 3000), "mcalloc");
  memset (l1, 0x11, 20000);
  mfree (md, l2);
  mfree (md, l3);
  l5 = must (mrealloc (md, l5, 50000), "mrealloc");
  mmalloc_setkey (md, 0, keep[0]);
  mmalloc_setkey (md, 1, l1);
  mmalloc_setkey (md, 5, l4);
  mmalloc_setkey (md, 6, l5);
  mmalloc_setkey (md, 15, (void *) (uintptr_t) 0xdeadbeef);
  for (int i = 1; i < nk; i += 4)
    mfree (md, keep[i]);
}

static void
make (const char *name, int checked)
{
  int fd = newfile (name);
  void *md = must (mmalloc_attach (fd, NULL), "mmalloc_attach");
  close (fd);
  if (checked && !mmcheck (md, NULL))
    die ("mmcheck");
  populate (md);
  if (mmalloc_check (md))
    {
      fprintf (stderr, "mkseed: %s fails mmalloc_check\n", name);
      exit (1);
    }
  if (mmalloc_detach (md))
    die ("mmalloc_detach");
}

static void
make_empty (const char *name)
{
  int fd = newfile (name);
  void *md = must (mmalloc_attach (fd, NULL), "mmalloc_attach");
  close (fd);
  if (mmalloc_detach (md))
    die ("mmalloc_detach");
}

static void
make_shrunk (void)
{
  int fd = newfile ("shrunk.heap");
  void *md = must (mmalloc_attach (fd, NULL), "mmalloc_attach");
  close (fd);
  void *a = must (mmalloc (md, 100), "mmalloc");
  void *big = must (mmalloc (md, 3 << 20), "mmalloc big");
  mfree (md, big);		/* at the top: the heap shrinks */
  void *b = must (mmalloc (md, 5000), "mmalloc");
  mmalloc_setkey (md, 0, a);
  mmalloc_setkey (md, 1, b);
  if (mmalloc_detach (md))
    die ("mmalloc_detach");
}

/* A few blocks of three small classes, three large blocks, one free run.  */
static void
make_small (void)
{
  int fd = newfile ("small.heap");
  void *md = must (mmalloc_attach (fd, NULL), "mmalloc_attach");
  close (fd);
  void *s[6];
  for (int i = 0; i < 6; i++)
    s[i] = must (mmalloc (md, i < 3 ? 16 : i < 5 ? 100 : 3000), "mmalloc");
  mfree (md, s[1]);
  void *l1 = must (mmalloc (md, 5000), "mmalloc");
  void *l2 = must (mmalloc (md, 9000), "mmalloc");
  void *l3 = must (mmalloc (md, 17000), "mmalloc");
  mfree (md, l2);
  mmalloc_setkey (md, 0, s[0]);
  mmalloc_setkey (md, 1, l1);
  mmalloc_setkey (md, 2, l3);
  if (mmalloc_detach (md))
    die ("mmalloc_detach");
}

/* A child attaches, allocates and _exits attached: the file stays dirty.  */
static void
make_dirty (void)
{
  int fd = newfile ("dirty.heap");
  pid_t pid = fork ();
  if (pid < 0)
    die ("fork");
  if (pid == 0)
    {
      void *md = mmalloc_attach (fd, NULL);
      if (!md)
	_exit (3);
      populate (md);
      void *p = mmalloc (md, 12345);
      mmalloc_setkey (md, 2, p);
      _exit (0);
    }
  int st;
  if (waitpid (pid, &st, 0) < 0 || !WIFEXITED (st) || WEXITSTATUS (st))
    {
      fprintf (stderr, "mkseed: the dirty-heap child failed\n");
      exit (1);
    }
  close (fd);
}

static unsigned char *
slurp (const char *name, size_t *size)
{
  int fd = open (path (dir, name), O_RDONLY);
  if (fd < 0)
    die (name);
  struct stat st;
  if (fstat (fd, &st))
    die ("fstat");
  unsigned char *b = must (calloc (1, (size_t) st.st_size + 1), "calloc");
  size_t got = 0;
  while (got < (size_t) st.st_size)
    {
      ssize_t r = read (fd, b + got, (size_t) st.st_size - got);
      if (r <= 0)
	die ("read");
      got += (size_t) r;
    }
  close (fd);
  *size = got;
  return b;
}

static void
spit (const char *d, const char *name, const void *data, size_t size)
{
  const char *p = path (d, name);
  unlink (p);
  int fd = open (p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write (fd, data, size) != (ssize_t) size || close (fd))
    die (p);
}

/* mixed.heap with its base and span replaced, checksum right.  */
static void
crafted (const char *name, uint64_t base, uint64_t span)
{
  size_t size;
  unsigned char *b = slurp ("mixed.heap", &size);
  struct mm_header *h = (struct mm_header *) b;
  if (base != UINT64_MAX)
    h->base = base;
  if (span)
    h->span = span;
  h->hdr_sum = mm_fmt_header_sum (h);
  spit (dir, name, b, size);
  free (b);
}

/* Make heap file NAME as short as it can be: drop the free run that ends at
   its top (lowering top to the run's head), and let an attach rebuild the
   derived state (it recovers a dirty file), then detach it clean.  Small
   seeds make fast fuzzing.  */
static void
trim (const char *name, int keep_dirty)
{
  int fd = open (path (dir, name), O_RDWR);
  if (fd < 0)
    die (name);
  struct mm_header h;
  if (pread (fd, &h, sizeof h, 0) != (ssize_t) sizeof h)
    die ("pread");
  uint32_t leaf;
  if (pread (fd, &leaf, 4, MM_PAGE) != 4)
    die ("pread");
  uint64_t last = h.top - 1;
  uint32_t e;
  if (last >> MM_WIN_SHIFT)
    {				/* past window 0: leave it as it is */
      close (fd);
      return;
    }
  if (pread (fd, &e, 4, (off_t) (((uint64_t) leaf << MM_PAGE_SHIFT) + last * 4)) != 4)
    die ("pread");
  uint64_t n = e & PM_NMASK;
  if (PM_KIND (e) == PM_FREE && (e & PM_END) && n && h.top - n >= MM_HDR_PAGES + MM_LEAF_PAGES)
    {
      /* The dropped run's marks go too: beyond top the page map is zeros.  */
      uint32_t *zero = must (calloc (n, 4), "calloc");
      if (pwrite (fd, zero, n * 4, (off_t) (((uint64_t) leaf << MM_PAGE_SHIFT) + (h.top - n) * 4))
	  != (ssize_t) (n * 4))
	die ("pwrite");
      free (zero);
      h.top -= n;
      h.state = MM_DIRTY;
      memset (h.bin_head, 0, sizeof h.bin_head);	/* recovery makes them again */
      if (pwrite (fd, &h, sizeof h, 0) != (ssize_t) sizeof h
	  || ftruncate (fd, (off_t) (h.top << MM_PAGE_SHIFT)))
	die ("pwrite");
    }
  if (keep_dirty)
    {
      close (fd);
      return;
    }
  void *md = must (mmalloc_attach (fd, NULL), "mmalloc_attach (trim)");
  close (fd);
  if (mmalloc_check (md))
    {
      fprintf (stderr, "mkseed: trimmed %s fails mmalloc_check\n", name);
      exit (1);
    }
  if (mmalloc_detach (md))
    die ("mmalloc_detach");
}

int
main (int argc, char **argv)
{
  if (argc < 2)
    {
      fprintf (stderr, "usage: mkseed DIR [BODYDIR [STRUCTDIR]]\n");
      return 2;
    }
  dir = argv[1];
  mkdir (dir, 0755);
  mm_classes_init ();
  make_empty ("empty.heap");
  make ("mixed.heap", 0);
  make ("checked.heap", 1);
  make_dirty ();
  make_shrunk ();
  trim ("mixed.heap", 0);
  trim ("checked.heap", 0);
  trim ("shrunk.heap", 0);
  trim ("dirty.heap", 1);
  make_small ();
  trim ("small.heap", 0);
  make_empty ("tiny.heap");
  trim ("tiny.heap", 0);

  size_t size;
  unsigned char *b = slurp ("mixed.heap", &size);
  spit (dir, "truncated.heap", b, 2 * MM_PAGE);
  uint64_t top = ((struct mm_header *) b)->top;
  free (b);
  crafted ("base0.heap", 0, 0);
  crafted ("basehigh.heap", ((uint64_t) 1 << 47) - ((uint64_t) 1 << 36), (uint64_t) 1 << 36);
  crafted ("spanmin.heap", UINT64_MAX, top << MM_PAGE_SHIFT);

  if (argc > 2)
    {
      mkdir (argv[2], 0755);
      for (int img = 0; img < 4; img++)
	{
	  unsigned char in[2 + 4 + 2 + 32];
	  size_t n = 0;
	  in[n++] = (unsigned char) img;
	  in[n++] = 32;
	  /* one harmless patch: XOR 0 into the header's flags */
	  in[n++] = 0;
	  in[n++] = 0;
	  in[n++] = 4;
	  in[n++] = 0;
	  in[n++] = 0;
	  in[n++] = 0;
	  static const unsigned char ops[32] = {
	    0x00, 0x05, 0x08, 0x45, 0x10, 0x90, 0x18, 0xc3, 0x22, 0x20, 0x2b, 0x81,
	    0x34, 0x48, 0x0c, 0xc8, 0x16, 0x00, 0x3f, 0x10, 0x45, 0x50, 0x4d, 0xfe,
	    0x57, 0x01, 0x0e, 0x00, 0x5b, 0x99, 0x64, 0x07
	  };
	  memcpy (in + n, ops, sizeof ops);
	  n += sizeof ops;
	  char name[32];
	  snprintf (name, sizeof name, "image%d", img);
	  spit (argv[2], name, in, n);
	}
    }
  if (argc > 3)
    {
      mkdir (argv[3], 0755);
      static const unsigned char ops[16] = {
	0x00, 0x05, 0x08, 0x45, 0x10, 0x90, 0x18, 0xc3, 0x22, 0x20, 0x2b, 0x81,
	0x34, 0x48, 0x06, 0x00
      };
      for (int img = 0; img < 6; img++)
	for (int kind = -1; kind < 8; kind++)
	  {
	    unsigned char in[3 + 4 + sizeof ops];
	    size_t n = 0;
	    in[n++] = (unsigned char) img;
	    in[n++] = 1;		/* the directory's sum made right */
	    in[n++] = kind < 0 ? 0 : 1;
	    if (kind >= 0)
	      {
		in[n++] = (unsigned char) kind;
		in[n++] = (unsigned char) (7 * kind + img);
		in[n++] = (unsigned char) (13 * kind + 3);
		in[n++] = (unsigned char) (29 * kind + 1);
	      }
	    memcpy (in + n, ops, sizeof ops);
	    n += sizeof ops;
	    char name[32];
	    snprintf (name, sizeof name, "image%d-kind%d", img, kind);
	    spit (argv[3], name, in, n);
	  }
    }
  return 0;
}
