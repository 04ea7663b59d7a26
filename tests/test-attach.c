/* test-attach.c -- creating, attaching and refusing heaps.

   A heap file is attached at its recorded address with its keys and data, or
   refused with the one errno that names what is wrong, without a crash and
   without a byte of the file changed.  The header is patched through struct
   mm_header (src/mmprivate.h), the documented on-disk format.  */
#include "testutil.h"
#include "mmprivate.h"

#include <dirent.h>
#include <sys/mman.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define GREETING "hello, heap file"
#define BIG 200000

/* --- files ----------------------------------------------------------------- */

/* The whole file at PATH, in malloc'd memory; its length in *LEN.  */
static unsigned char *
slurp (const char *path, size_t *len)
{
  int fd = open (path, O_RDONLY);
  assert_true (fd >= 0);
  struct stat st;
  assert_int_equal (fstat (fd, &st), 0);
  unsigned char *buf = malloc ((size_t) st.st_size + 1);
  assert_non_null (buf);
  size_t got = 0;
  while (got < (size_t) st.st_size)
    {
      ssize_t r = read (fd, buf + got, (size_t) st.st_size - got);
      assert_true (r > 0);
      got += (size_t) r;
    }
  close (fd);
  *len = got;
  return buf;
}

/* Replace the contents of PATH by LEN bytes at BUF.  */
static void
spit (const char *path, const void *buf, size_t len)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true (fd >= 0);
  assert_int_equal (write (fd, buf, len), (ssize_t) len);
  close (fd);
}


/* The header as stored at the start of the file at PATH.  */
static struct mm_header
file_header (const char *path)
{
  struct mm_header h;
  int fd = open (path, O_RDONLY);
  assert_true (fd >= 0);
  assert_int_equal (pread (fd, &h, sizeof h, 0), (ssize_t) sizeof h);
  close (fd);
  return h;
}

/* FNV-1a over the fixed fields, as the format defines hdr_sum: the version
   read as 1 (a file's version rises in place).  */
static uint64_t
fnv_header (const struct mm_header *h)
{
  struct mm_header v1 = *h;
  v1.version = 1;
  const unsigned char *p = (const unsigned char *) &v1;
  uint64_t s = 14695981039346656037ULL;
  for (size_t i = 0; i < offsetof (struct mm_header, hdr_sum); i++)
    s = (s ^ p[i]) * 1099511628211ULL;
  return s;
}

/* Write LEN bytes at BYTES over offset OFF of the file at PATH.  */
static void
patch (const char *path, size_t off, const void *bytes, size_t len)
{
  int fd = open (path, O_WRONLY);
  assert_true (fd >= 0);
  assert_int_equal (pwrite (fd, bytes, len, (off_t) off), (ssize_t) len);
  close (fd);
}

static void
patch32 (const char *path, size_t off, uint32_t v)
{
  patch (path, off, &v, sizeof v);
}

/* Make the header of PATH's hdr_sum right again after a patch.  */
static void
reseal (const char *path)
{
  struct mm_header h = file_header (path);
  uint64_t s = fnv_header (&h);
  patch (path, offsetof (struct mm_header, hdr_sum), &s, sizeof s);
}

/* mmalloc_attach (FD, BASE), which must succeed; a failure names its errno.  */
#define attach_ok(fd, base) attach_ok_at (fd, base, __LINE__)
static void *
attach_ok_at (int fd, void *base, int line)
{
  errno = 0;
  void *md = mmalloc_attach (fd, base);
  if (!md)
    fail_msg ("line %d: attach failed: errno %#x (%s)", line, errno, mmalloc_strerror (errno));
  return md;
}

/* --- heaps ----------------------------------------------------------------- */

/* A heap file NAME holding a string (key 0) and a BIG-byte block (key 1),
   detached.  Returns its path.  */
static const char *
make_heap (const char *name)
{
  int fd = tu_newfile (name);
  void *md = attach_ok (fd, NULL);
  assert_int_equal (close (fd), 0);
  char *s = mmalloc (md, sizeof GREETING);
  assert_non_null (s);
  strcpy (s, GREETING);
  unsigned char *big = mmalloc (md, BIG);
  assert_non_null (big);
  for (size_t i = 0; i < BIG; i++)
    big[i] = (unsigned char) (i * 31 + 7);
  assert_int_equal (mmalloc_setkey (md, 0, s), 1);
  assert_int_equal (mmalloc_setkey (md, 1, big), 1);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  return tu_path (name);
}

/* MD holds what make_heap put there.  */
static void
assert_heap_contents (void *md)
{
  const char *s = mmalloc_getkey (md, 0);
  assert_non_null (s);
  assert_string_equal (s, GREETING);
  const unsigned char *big = mmalloc_getkey (md, 1);
  assert_non_null (big);
  for (size_t i = 0; i < BIG; i++)
    if (big[i] != (unsigned char) (i * 31 + 7))
      fail_msg ("byte %zu of the big block changed", i);
  assert_heap_ok (md);
}

/* Attach PATH opened with OFLAGS, check what make_heap stored, detach.  */
static void
attach_and_verify (const char *path, int oflags)
{
  int fd = open (path, oflags);
  assert_true (fd >= 0);
  void *md = attach_ok (fd, NULL);
  assert_int_equal (close (fd), 0);
  assert_heap_contents (md);
  assert_null (mmalloc_detach (md));
}

/* Attaching PATH (opened with OFLAGS) fails with errno CODE and leaves every
   byte of the file as it was.  */
static void
assert_refused (const char *path, int oflags, int code)
{
  size_t n0, n1;
  unsigned char *before = slurp (path, &n0);
  int fd = open (path, oflags);
  assert_true (fd >= 0);
  errno = 0;
  void *md = mmalloc_attach (fd, NULL);
  int e = errno;
  assert_null (md);
  if (e != code)
    fail_msg ("attach of %s: errno %#x (%s), expected %#x (%s)", path, e,
	      mmalloc_strerror (e), code, mmalloc_strerror (code));
  assert_int_equal (close (fd), 0);
  unsigned char *after = slurp (path, &n1);
  assert_int_equal (n1, n0);
  assert_memory_equal (after, before, n0);
  free (before);
  free (after);
}

/* Make a heap NAME, apply a 32-bit patch at OFF, assert the refusal CODE, then
   restore the file and prove it attaches again (the failure left nothing
   locked, reserved or registered behind).  */
static void
assert_patch32_refused (const char *name, size_t off, uint32_t v, int code)
{
  const char *path = make_heap (name);
  size_t n;
  unsigned char *orig = slurp (path, &n);
  patch32 (path, off, v);
  assert_refused (path, O_RDWR, code);
  spit (path, orig, n);
  free (orig);
  attach_and_verify (path, O_RDWR);
}

/* --- new heaps ------------------------------------------------------------- */

static void
anonymous_heap_allocates_keys_and_detaches (void **state)
{
  (void) state;
  void *md = attach_ok (-1, NULL);
  char *p = mmalloc (md, 1000);
  assert_non_null (p);
  memset (p, 0x3c, 1000);
  assert_int_equal (mmalloc_setkey (md, 5, p), 1);
  assert_ptr_equal (mmalloc_getkey (md, 5), p);
  assert_int_equal (mmalloc_sync (md), 0);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

static void
anonymous_heap_at_a_chosen_base (void **state)
{
  (void) state;
  char *base = mmalloc_findbase (0);
  assert_non_null (base);
  void *md = attach_ok (-1, base);
  char *p = mmalloc (md, 64);
  assert_non_null (p);
  assert_true (p > base && p < base + MM_SPAN_MAX);
  assert_null (mmalloc_detach (md));
}

static void
findbase_refuses_a_negative_size (void **state)
{
  (void) state;
  errno = 0;
  assert_null (mmalloc_findbase (-1));
  assert_int_equal (errno, EINVAL);
}

static void
new_file_at_a_chosen_base (void **state)
{
  (void) state;
  char *base = mmalloc_findbase (0);
  assert_non_null (base);
  assert_int_equal ((uintptr_t) base % (uintptr_t) sysconf (_SC_PAGESIZE), 0);
  int fd = tu_newfile ("chosen.heap");
  void *md = attach_ok (fd, base);
  char *p = mmalloc (md, 100);
  assert_non_null (p);
  assert_true (p > base && p < base + MM_SPAN_MAX);
  strcpy (p, "at the chosen base");
  assert_int_equal (mmalloc_setkey (md, 0, p), 1);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  assert_int_equal (close (fd), 0);

  struct mm_header h = file_header (tu_path ("chosen.heap"));
  assert_memory_equal (h.magic, "MMALLOC\x1a", 8);
  assert_int_equal (h.base, (uint64_t) (uintptr_t) base);
  assert_int_equal (h.state, MM_CLEAN);
  assert_int_equal (h.hdr_sum, fnv_header (&h));

  fd = open (tu_path ("chosen.heap"), O_RDWR);
  assert_true (fd >= 0);
  md = attach_ok (fd, NULL);
  assert_ptr_equal (mmalloc_getkey (md, 0), p);
  assert_string_equal (p, "at the chosen base");
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  assert_int_equal (close (fd), 0);
}

static void
new_file_at_a_library_chosen_base (void **state)
{
  (void) state;
  const char *path = make_heap ("libbase.heap");
  struct mm_header h = file_header (path);
  assert_int_equal (h.byte_order, MM_BYTE_ORDER);
  assert_int_equal (h.version, 1);	/* nothing of format 2 in it */
  assert_int_equal (h.word_size, sizeof (void *));
  assert_int_equal (h.page_size, MM_PAGE);
  assert_int_equal (h.hdr_size, sizeof (struct mm_header));
  assert_int_not_equal (h.base, 0);
  assert_int_equal (h.base % MM_PAGE, 0);
  assert_int_equal (h.span, MM_SPAN_MAX);
  assert_int_equal (h.hdr_sum, fnv_header (&h));
  assert_int_equal (h.state, MM_CLEAN);
  /* The keys hold absolute addresses inside the recorded range.  */
  assert_true (h.keys[0] > h.base && h.keys[0] < h.base + h.span);
  assert_true (h.keys[1] > h.base && h.keys[1] < h.base + h.span);
  struct stat st;
  assert_int_equal (stat (path, &st), 0);
  assert_true ((uint64_t) st.st_size >= h.top << MM_PAGE_SHIFT);
  attach_and_verify (path, O_RDWR);
}

static void
caller_may_close_its_descriptor_after_attach (void **state)
{
  (void) state;
  int fd = tu_newfile ("closed.heap");
  void *md = attach_ok (fd, NULL);
  assert_int_equal (close (fd), 0);
  /* Growth after the close goes through the library's own descriptor.  */
  char *blocks[64];
  for (int i = 0; i < 64; i++)
    {
      blocks[i] = mmalloc (md, 50000);
      assert_non_null (blocks[i]);
      memset (blocks[i], i, 50000);
    }
  assert_int_equal (mmalloc_setkey (md, 3, blocks[63]), 1);
  assert_int_equal (mmalloc_sync (md), 0);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));

  fd = open (tu_path ("closed.heap"), O_RDWR);
  assert_true (fd >= 0);
  md = attach_ok (fd, NULL);
  assert_int_equal (close (fd), 0);
  unsigned char *last = mmalloc_getkey (md, 3);
  assert_ptr_equal (last, blocks[63]);
  for (int i = 0; i < 64; i++)
    for (size_t j = 0; j < 50000; j += 997)
      assert_int_equal (blocks[i][j], i);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

static void
detach_returns_null (void **state)
{
  (void) state;
  void *md = attach_ok (-1, NULL);
  assert_null (mmalloc_detach (md));
  /* The default heap cannot be detached and keeps working.  */
  void *p = mmalloc (NULL, 10);
  assert_non_null (p);
  assert_null (mmalloc_detach (NULL));
  mfree (NULL, p);
  assert_heap_ok (NULL);
}

static void
reattach_in_the_same_process_maps_at_the_same_address (void **state)
{
  (void) state;
  int fd = tu_newfile ("again.heap");
  void *md = attach_ok (fd, NULL);
  long *arr = mmalloc (md, 1000 * sizeof (long));
  assert_non_null (arr);
  for (int i = 0; i < 1000; i++)
    arr[i] = (long) i * i;
  char *s = mmalloc (md, 20);
  assert_non_null (s);
  strcpy (s, "still here");
  assert_int_equal (mmalloc_setkey (md, 0, arr), 1);
  assert_int_equal (mmalloc_setkey (md, 15, s), 1);
  assert_null (mmalloc_detach (md));
  uint64_t base = file_header (tu_path ("again.heap")).base;

  for (int round = 0; round < 3; round++)
    {
      md = attach_ok (fd, NULL);
      assert_int_equal (file_header (tu_path ("again.heap")).base, base);
      assert_ptr_equal (mmalloc_getkey (md, 0), arr);
      assert_ptr_equal (mmalloc_getkey (md, 15), s);
      for (int i = 0; i < 1000; i++)
	assert_int_equal (arr[i], (long) i * i);
      assert_string_equal (s, "still here");
      /* A dirty heap is marked so in the file while attached.  */
      assert_int_equal (file_header (tu_path ("again.heap")).state, MM_DIRTY);
      assert_heap_ok (md);
      assert_null (mmalloc_detach (md));
      assert_int_equal (file_header (tu_path ("again.heap")).state, MM_CLEAN);
    }
  assert_int_equal (close (fd), 0);
}

static void
misaligned_base_is_einval (void **state)
{
  (void) state;
  char *base = mmalloc_findbase (0);
  assert_non_null (base);
  void *bad[] = { base + 1, base + 8, base + 2048 };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      errno = 0;
      assert_null (mmalloc_attach (-1, bad[i]));
      assert_int_equal (errno, EINVAL);
      int fd = tu_newfile ("misaligned.heap");
      errno = 0;
      assert_null (mmalloc_attach (fd, bad[i]));
      assert_int_equal (errno, EINVAL);
      struct stat st;
      assert_int_equal (fstat (fd, &st), 0);
      assert_int_equal (st.st_size, 0);	/* the file was not touched */
      /* Nothing was locked: the same file attaches at a good base.  */
      void *md = attach_ok (fd, base);
      assert_null (mmalloc_detach (md));
      assert_int_equal (close (fd), 0);
    }
}

static void
bad_descriptor_is_ebadf (void **state)
{
  (void) state;
  int fd = open ("/dev/null", O_RDONLY);
  assert_true (fd >= 0);
  assert_int_equal (close (fd), 0);	/* FD is now surely closed */
  errno = 0;
  assert_null (mmalloc_attach (fd, NULL));
  assert_int_equal (errno, EBADF);
}

/* --- refused files --------------------------------------------------------- */

static void
random_bytes_are_not_a_heap (void **state)
{
  (void) state;
  static unsigned char junk[65536];
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (size_t i = 0; i < sizeof junk; i++)
    {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      junk[i] = (unsigned char) x;
    }
  junk[0] = 'm';		/* surely not the magic */
  spit (tu_path ("random.heap"), junk, sizeof junk);
  assert_refused (tu_path ("random.heap"), O_RDWR, MMALLOC_ENOTHEAP);
  assert_refused (tu_path ("random.heap"), O_RDONLY, MMALLOC_ENOTHEAP);
  /* Seven bytes of the magic are not the magic either.  */
  spit (tu_path ("seven.heap"), "MMALLOC", 7);
  assert_refused (tu_path ("seven.heap"), O_RDWR, MMALLOC_ENOTHEAP);
}

static void
changed_version_is_eversion (void **state)
{
  (void) state;
  /* version is checked before hdr_sum, so the stale sum does not matter.  */
  assert_patch32_refused ("version.heap", offsetof (struct mm_header, version),
			  MM_FORMAT_VERSION + 1, MMALLOC_EVERSION);
  assert_patch32_refused ("version0.heap", offsetof (struct mm_header, version),
			  0, MMALLOC_EVERSION);
}

static void
swapped_byte_order_is_emachine (void **state)
{
  (void) state;
  assert_patch32_refused ("order.heap", offsetof (struct mm_header, byte_order),
			  __builtin_bswap32 (MM_BYTE_ORDER), MMALLOC_EMACHINE);
  /* A byte order that is neither ours nor reversed is damage.  */
  assert_patch32_refused ("order2.heap", offsetof (struct mm_header, byte_order),
			  0xdeadbeefu, MMALLOC_ECORRUPT);
}

static void
other_word_or_page_size_is_emachine (void **state)
{
  (void) state;
  /* mm_header_validate checks word_size and page_size before hdr_sum, so a
     file from another machine says so even though its sum does not match.  */
  assert_patch32_refused ("word.heap", offsetof (struct mm_header, word_size),
			  sizeof (void *) == 8 ? 4 : 8, MMALLOC_EMACHINE);
  assert_patch32_refused ("page.heap", offsetof (struct mm_header, page_size),
			  (uint32_t) MM_PAGE * 4, MMALLOC_EMACHINE);
}

static void
layout_fields_are_checked_after_the_sum (void **state)
{
  (void) state;
  /* hdr_size with the old sum: the sum comes first, ECORRUPT.  */
  assert_patch32_refused ("hsize.heap", offsetof (struct mm_header, hdr_size),
			  sizeof (struct mm_header) + 8, MMALLOC_ECORRUPT);
  /* The same change resealed: a layout this library does not know.  */
  const char *path = make_heap ("hsize2.heap");
  size_t n;
  unsigned char *orig = slurp (path, &n);
  patch32 (path, offsetof (struct mm_header, hdr_size), sizeof (struct mm_header) + 8);
  reseal (path);
  assert_refused (path, O_RDWR, MMALLOC_EVERSION);
  spit (path, orig, n);
  free (orig);
  attach_and_verify (path, O_RDWR);
}

static void
flipped_bit_in_base_or_span_is_ecorrupt (void **state)
{
  (void) state;
  static const struct
  {
    size_t off;
    unsigned char bit;
  } flips[] = {
    { offsetof (struct mm_header, base) + 1, 0x10 },	/* base, bit 12 */
    { offsetof (struct mm_header, base) + 4, 0x01 },	/* base, bit 32 */
    { offsetof (struct mm_header, base), 0x01 },	/* base, bit 0 */
    { offsetof (struct mm_header, span) + 2, 0x40 },	/* span, bit 22 */
    { offsetof (struct mm_header, span) + 7, 0x80 },	/* span, bit 63 */
  };
  const char *path = make_heap ("flip.heap");
  size_t n;
  unsigned char *orig = slurp (path, &n);
  for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++)
    {
      unsigned char b = orig[flips[i].off] ^ flips[i].bit;
      patch (path, flips[i].off, &b, 1);
      assert_refused (path, O_RDWR, MMALLOC_ECORRUPT);
      spit (path, orig, n);
    }
  /* A misaligned base with a correct sum is damage too.  */
  unsigned char b = orig[offsetof (struct mm_header, base)] ^ 0x08;
  patch (path, offsetof (struct mm_header, base), &b, 1);
  reseal (path);
  assert_refused (path, O_RDWR, MMALLOC_ECORRUPT);
  spit (path, orig, n);
  free (orig);
  attach_and_verify (path, O_RDWR);
}

static void
half_a_file_is_etruncated (void **state)
{
  (void) state;
  const char *path = make_heap ("half.heap");
  size_t n;
  unsigned char *orig = slurp (path, &n);
  struct mm_header h = file_header (path);
  /* The precondition of the test: half the file lacks pages below top.  */
  assert_true ((h.top << MM_PAGE_SHIFT) > n / 2);
  assert_int_equal (truncate (path, (off_t) (n / 2)), 0);
  assert_refused (path, O_RDWR, MMALLOC_ETRUNCATED);
  assert_refused (path, O_RDONLY, MMALLOC_ETRUNCATED);
  /* One page short is as truncated as half.  */
  spit (path, orig, n);
  assert_int_equal (truncate (path, (off_t) ((h.top << MM_PAGE_SHIFT) - MM_PAGE)), 0);
  assert_refused (path, O_RDWR, MMALLOC_ETRUNCATED);
  spit (path, orig, n);
  free (orig);
  attach_and_verify (path, O_RDWR);
}

static void
magic_and_100_bytes_is_etruncated (void **state)
{
  (void) state;
  unsigned char buf[100];
  memset (buf, 0, sizeof buf);
  memcpy (buf, "MMALLOC\x1a", 8);
  spit (tu_path ("short.heap"), buf, sizeof buf);
  assert_refused (tu_path ("short.heap"), O_RDWR, MMALLOC_ETRUNCATED);
  /* The first 100 bytes of a real heap file are just as short.  */
  const char *path = make_heap ("short2.heap");
  assert_int_equal (truncate (path, 100), 0);
  assert_refused (path, O_RDWR, MMALLOC_ETRUNCATED);
}

/* Map one page at ADDR with MAP_FIXED_NOREPLACE and fill it with a pattern.  */
static unsigned char *
occupy (uint64_t addr)
{
  void *want = (void *) (uintptr_t) addr;
  void *p = mmap (want, MM_PAGE, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  assert_true (p != MAP_FAILED);
  assert_ptr_equal (p, want);
  for (size_t i = 0; i < MM_PAGE; i++)
    ((unsigned char *) p)[i] = (unsigned char) (i ^ 0xa5);
  return p;
}

static void
assert_occupied_intact (const unsigned char *p)
{
  for (size_t i = 0; i < MM_PAGE; i++)
    if (p[i] != (unsigned char) (i ^ 0xa5))
      fail_msg ("byte %zu of our own mapping was changed", i);
}

static void
taken_address_range_is_eaddrinuse (void **state)
{
  (void) state;
  const char *path = make_heap ("taken.heap");
  struct mm_header h = file_header (path);
  /* At the base itself, and at the last page of the recorded span.  */
  uint64_t at[] = { h.base, h.base + h.span - MM_PAGE };
  for (size_t i = 0; i < 2; i++)
    {
      unsigned char *mine = occupy (at[i]);
      assert_refused (path, O_RDWR, MMALLOC_EADDRINUSE);
      assert_refused (path, O_RDONLY, MMALLOC_EADDRINUSE);
      assert_occupied_intact (mine);
      assert_int_equal (munmap (mine, MM_PAGE), 0);
    }
  attach_and_verify (path, O_RDWR);
}

static void
second_writer_in_this_process_is_elocked (void **state)
{
  (void) state;
  const char *path = make_heap ("twice.heap");
  int fd = open (path, O_RDWR);
  assert_true (fd >= 0);
  void *md = attach_ok (fd, NULL);

  /* The same descriptor again.  */
  errno = 0;
  assert_null (mmalloc_attach (fd, NULL));
  assert_int_equal (errno, MMALLOC_ELOCKED);
  /* A new open of the path.  */
  int fd2 = open (path, O_RDWR);
  assert_true (fd2 >= 0);
  errno = 0;
  assert_null (mmalloc_attach (fd2, NULL));
  assert_int_equal (errno, MMALLOC_ELOCKED);
  /* A reader while a writer holds it.  */
  int fd3 = open (path, O_RDONLY);
  assert_true (fd3 >= 0);
  errno = 0;
  assert_null (mmalloc_attach (fd3, NULL));
  assert_int_equal (errno, MMALLOC_ELOCKED);
  assert_int_equal (close (fd3), 0);

  /* The refused attaches did not disturb the first one.  */
  assert_heap_contents (md);
  char *p = mmalloc (md, 10);
  assert_non_null (p);
  mfree (md, p);
  assert_null (mmalloc_detach (md));

  /* Detached, the heap goes to the next writer, though the first caller still
     has its descriptor open.  */
  void *md2 = attach_ok (fd2, NULL);
  assert_heap_contents (md2);
  assert_null (mmalloc_detach (md2));
  md = attach_ok (fd, NULL);
  assert_null (mmalloc_detach (md));
  assert_int_equal (close (fd2), 0);
  assert_int_equal (close (fd), 0);
}

/* Fork a child that opens PATH read-write, attaches it and exits 0 if that
   fails with ELOCKED, 1 if it succeeds, 2 on another errno.  */
static int
child_attach_status (const char *path)
{
  pid_t pid = tu_fork ();
  if (pid == 0)
    {
      int fd = open (path, O_RDWR);
      if (fd < 0)
	_exit (3);
      errno = 0;
      void *md = mmalloc_attach (fd, NULL);
      _exit (md ? 1 : errno == MMALLOC_ELOCKED ? 0 : 2);
    }
  int st;
  assert_int_equal (waitpid (pid, &st, 0), pid);
  assert_true (WIFEXITED (st));
  return WEXITSTATUS (st);
}

static void
second_writer_in_another_process_is_elocked (void **state)
{
  (void) state;
  const char *path = make_heap ("other.heap");
  int fd = open (path, O_RDWR);
  assert_true (fd >= 0);
  void *md = attach_ok (fd, NULL);
  assert_int_equal (close (fd), 0);
  assert_int_equal (child_attach_status (path), 0);
  assert_heap_contents (md);
  assert_null (mmalloc_detach (md));
  /* Once the holder detaches, another process gets it.  */
  assert_int_equal (child_attach_status (path), 1);
}

static void
writer_killed_with_sigkill_releases_the_heap (void **state)
{
  (void) state;
  const char *path = make_heap ("killed.heap");
  int ready[2];
  assert_int_equal (pipe (ready), 0);
  pid_t pid = tu_fork ();
  if (pid == 0)
    {
      close (ready[0]);
      int fd = open (path, O_RDWR);
      void *md = fd >= 0 ? mmalloc_attach (fd, NULL) : NULL;
      char *s = md ? mmalloc (md, 32) : NULL;
      if (!s)
	_exit (1);
      strcpy (s, "written by the dead");
      mmalloc_setkey (md, 2, s);
      if (write (ready[1], "k", 1) != 1)
	_exit (2);
      for (;;)
	pause ();
    }
  close (ready[1]);
  char c = 0;
  assert_int_equal (read (ready[0], &c, 1), 1);
  assert_int_equal (c, 'k');
  close (ready[0]);

  int fd = open (path, O_RDWR);
  assert_true (fd >= 0);
  errno = 0;
  assert_null (mmalloc_attach (fd, NULL));
  assert_int_equal (errno, MMALLOC_ELOCKED);

  assert_int_equal (kill (pid, SIGKILL), 0);
  int st;
  assert_int_equal (waitpid (pid, &st, 0), pid);
  assert_true (WIFSIGNALED (st));
  assert_int_equal (WTERMSIG (st), SIGKILL);

  void *md = attach_ok (fd, NULL);
  assert_int_equal (close (fd), 0);
  const char *s = mmalloc_getkey (md, 2);
  assert_non_null (s);
  assert_string_equal (s, "written by the dead");
  assert_heap_contents (md);
  assert_null (mmalloc_detach (md));
}

static void
read_only_descriptor_attaches_read_only (void **state)
{
  (void) state;
  const char *path = make_heap ("ro.heap");
  size_t n0, n1;
  unsigned char *before = slurp (path, &n0);
  int fd = open (path, O_RDONLY);
  assert_true (fd >= 0);
  void *md = attach_ok (fd, NULL);
  assert_heap_contents (md);
  char *s = mmalloc_getkey (md, 0);

  errno = 0;
  assert_null (mmalloc (md, 10));
  assert_int_equal (errno, EROFS);
  assert_int_equal (mmalloc_errno (md), EROFS);
  errno = 0;
  assert_null (mcalloc (md, 4, 10));
  assert_int_equal (errno, EROFS);
  errno = 0;
  assert_null (mrealloc (md, s, 1000));
  assert_int_equal (errno, EROFS);
  assert_string_equal (s, GREETING);
  errno = 0;
  assert_null (mrealloc (md, NULL, 10));
  assert_int_equal (errno, EROFS);
  errno = 0;
  assert_null (mmemalign (md, 64, 10));
  assert_int_equal (errno, EROFS);
  errno = 0;
  assert_null (mmemalign (md, 8192, 10));
  assert_int_equal (errno, EROFS);
  errno = 0;
  assert_null (mvalloc (md, 10));
  assert_int_equal (errno, EROFS);
  errno = 0;
  assert_int_equal (mmalloc_setkey (md, 0, NULL), 0);
  assert_int_equal (errno, EROFS);
  assert_ptr_equal (mmalloc_getkey (md, 0), s);
  assert_int_equal (mmcheck (md, NULL), 0);
  assert_int_equal (mmalloc_sync (md), 0);
  assert_heap_contents (md);
  assert_null (mmalloc_detach (md));
  assert_int_equal (close (fd), 0);

  unsigned char *after = slurp (path, &n1);
  assert_int_equal (n1, n0);
  assert_memory_equal (after, before, n0);
  free (before);
  free (after);
  attach_and_verify (path, O_RDWR);
}

static void
reader_keeps_writers_out (void **state)
{
  (void) state;
  const char *path = make_heap ("reader.heap");
  int fd = open (path, O_RDONLY);
  assert_true (fd >= 0);
  void *md = attach_ok (fd, NULL);
  assert_int_equal (close (fd), 0);
  /* A reader takes the shared lock: a writer elsewhere would change what the
     reader sees under it.  */
  assert_int_equal (child_attach_status (path), 0);
  assert_heap_contents (md);
  assert_null (mmalloc_detach (md));
  assert_int_equal (child_attach_status (path), 1);
}

/* The new empty file NAME opened with FLAGS: the attach is refused with
   ERR and leaves the file empty.  The descriptor, still open.  */
static int
refused_on_empty (const char *name, int flags, int err)
{
  int wfd = tu_newfile (name);
  assert_int_equal (close (wfd), 0);
  int fd = open (tu_path (name), flags);
  assert_true (fd >= 0);
  errno = 0;
  assert_null (mmalloc_attach (fd, NULL));
  assert_int_equal (errno, err);
  struct stat st;
  assert_int_equal (fstat (fd, &st), 0);
  assert_int_equal (st.st_size, 0);
  return fd;
}

static void
empty_read_only_file_is_erofs (void **state)
{
  (void) state;
  int fd = refused_on_empty ("empty-ro.heap", O_RDONLY, EROFS);
  /* The refused reader left no lock: a writer may create the heap while the
     reader's descriptor is still open.  */
  int wfd = open (tu_path ("empty-ro.heap"), O_RDWR);
  assert_true (wfd >= 0);
  void *md = attach_ok (wfd, NULL);
  assert_null (mmalloc_detach (md));
  assert_int_equal (close (wfd), 0);
  assert_int_equal (close (fd), 0);
}

static void
write_only_descriptor_is_eacces (void **state)
{
  (void) state;
  int fd = refused_on_empty ("wronly.heap", O_WRONLY, EACCES);
  assert_int_equal (close (fd), 0);
  /* An existing heap opened write-only is refused the same way, untouched.  */
  const char *path = make_heap ("wronly2.heap");
  assert_refused (path, O_WRONLY, EACCES);
}

/* --- errors and versions --------------------------------------------------- */

static void
strerror_names_every_code (void **state)
{
  (void) state;
  static const int codes[] = {
    MMALLOC_ENOTHEAP, MMALLOC_EVERSION, MMALLOC_EMACHINE, MMALLOC_ECORRUPT,
    MMALLOC_ETRUNCATED, MMALLOC_EADDRINUSE, MMALLOC_ELOCKED, MMALLOC_EBADDESC,
  };
  const size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++)
    {
      const char *s = mmalloc_strerror (codes[i]);
      assert_non_null (s);
      assert_true (strlen (s) > 0);
      assert_string_not_equal (s, strerror (codes[i]));
      for (size_t j = 0; j < i; j++)
	assert_string_not_equal (s, mmalloc_strerror (codes[j]));
      /* Constant: the same string each time.  */
      assert_ptr_equal (s, mmalloc_strerror (codes[i]));
    }
  assert_string_equal (mmalloc_strerror (ENOMEM), strerror (ENOMEM));
  assert_string_equal (mmalloc_strerror (EROFS), strerror (EROFS));
}

/* A code that no table knows: its string stays valid and unchanged after
   later calls, of mmalloc_strerror and of the C library's strerror, with
   other unknown codes.  */
static void
strerror_of_an_unknown_code_stays_valid (void **state)
{
  (void) state;
  const char *s = mmalloc_strerror (0x7a7a7a);
  assert_non_null (s);
  char copy[128];
  snprintf (copy, sizeof copy, "%s", s);
  assert_true (strlen (copy) > 0);
  assert_string_not_equal (copy, mmalloc_strerror (0));
  assert_non_null (mmalloc_strerror (-5));
  assert_non_null (strerror (123456));
  assert_non_null (mmalloc_strerror (ENOMEM));
  assert_string_equal (s, copy);
  assert_string_equal (mmalloc_strerror (-5), copy);
}

/* The format version that PATH's header says, its sum checked (while the
   heap is attached too: the file is mapped shared).  */
static uint32_t
file_version (const char *path)
{
  struct mm_header h = file_header (path);
  assert_int_equal (h.hdr_sum, fnv_header (&h));
  return h.version;
}

/* Attach the heap file NAME of the private directory: a new one if NEW.  */
static void *
attach_name (const char *name, int new)
{
  int fd = new ? tu_newfile (name) : open (tu_path (name), O_RDWR);
  assert_true (fd >= 0);
  void *md = attach_ok (fd, NULL);
  assert_int_equal (close (fd), 0);
  return md;
}

/* A file says format 1 until it holds a record of format 2: unchecked heaps
   never do, whatever they allocate; a checked one does at its first small
   block (poisoned slab), aligned block (lead record) or block in quarantine.
   Libraries of format 1 refuse every other version, so they never read one
   of those records as damage.  (Blocks without site records, as a library
   of format 2 makes them.)  */
static void
new_files_rise_to_format_2_at_its_first_record (void **state)
{
  (void) state;
  mm_sites_off = 1;
  void *md = attach_name ("plain.heap", 1);
  void *keep[8];
  keep[0] = mmalloc (md, 10);
  keep[1] = mmalloc (md, 100000);
  keep[2] = mmemalign (md, 64, 100);
  keep[3] = mmemalign (md, 4096, 50000);
  keep[4] = mvalloc (md, 3000);
  keep[5] = mcalloc (md, 10, 10);
  keep[6] = mrealloc (md, mmalloc (md, 20), 5000);
  keep[7] = mmemalign (md, 65536, 10);
  for (int i = 0; i < 8; i++)
    assert_non_null (keep[i]);
  for (int i = 0; i < 8; i += 2)
    mfree (md, keep[i]);
  assert_int_equal (file_version (tu_path ("plain.heap")), 1);
  assert_null (mmalloc_detach (md));
  assert_int_equal (file_version (tu_path ("plain.heap")), 1);

  /* A checked large block of 16-byte alignment is of format 1; its free
     puts it in quarantine, a record of format 2.  */
  md = attach_name ("large.heap", 1);
  assert_int_equal (mmcheck (md, NULL), 1);
  char *p = mmalloc (md, 100000);
  assert_non_null (p);
  assert_int_equal (file_version (tu_path ("large.heap")), 1);
  mfree (md, p);
  assert_int_equal (file_version (tu_path ("large.heap")), MM_FORMAT_V2);
  assert_null (mmalloc_detach (md));

  static const struct { const char *name; size_t align, size; } first[] = {
    { "small.heap", 0, 10 }, { "aligned.heap", 64, 40000 },
    { "page.heap", 4096, 100000 }, { "valloc.heap", 1, 5000 },
  };
  for (unsigned i = 0; i < sizeof first / sizeof first[0]; i++)
    {
      md = attach_name (first[i].name, 1);
      assert_int_equal (mmcheck (md, NULL), 1);
      assert_int_equal (file_version (tu_path (first[i].name)), 1);
      p = first[i].align == 0 ? mmalloc (md, first[i].size)
	: first[i].align == 1 ? mvalloc (md, first[i].size)
	: mmemalign (md, first[i].align, first[i].size);
      assert_non_null (p);
      memset (p, 'v', first[i].size);
      assert_int_equal (mmalloc_setkey (md, 0, p), 1);
      assert_int_equal (file_version (tu_path (first[i].name)), MM_FORMAT_V2);
      assert_null (mmalloc_detach (md));
      /* This library reads it back.  */
      md = attach_name (first[i].name, 0);
      p = mmalloc_getkey (md, 0);
      for (size_t k = 0; k < first[i].size; k++)
	assert_int_equal (p[k], 'v');
      assert_heap_ok (md);
      mfree (md, p);
      assert_heap_ok (md);
      assert_null (mmalloc_detach (md));
      assert_int_equal (file_version (tu_path (first[i].name)), MM_FORMAT_V2);
    }
  mm_sites_off = 0;
}

/* A file of format 1 with checked blocks, as a library of format 1 left it,
   attaches; reading it and freeing nothing keeps it at format 1, and it
   rises when it first holds a record of format 2.  */
static void
a_format_1_file_attaches_and_rises_only_when_it_must (void **state)
{
  (void) state;
  mm_sites_off = 1;
  void *md = attach_name ("v1.heap", 1);
  assert_int_equal (mmcheck (md, NULL), 1);
  char *p = mmalloc (md, 70000);
  assert_non_null (p);
  memset (p, 'o', 70000);
  assert_int_equal (mmalloc_setkey (md, 0, p), 1);
  assert_null (mmalloc_detach (md));
  assert_int_equal (file_version (tu_path ("v1.heap")), 1);

  md = attach_name ("v1.heap", 0);
  p = mmalloc_getkey (md, 0);
  for (size_t k = 0; k < 70000; k += 7)
    assert_int_equal (p[k], 'o');
  assert_heap_ok (md);
  p = mrealloc (md, p, 90000);	/* a checked block resized: format 1 */
  assert_non_null (p);
  assert_int_equal (mmalloc_setkey (md, 0, p), 1);
  assert_null (mmalloc_detach (md));
  assert_int_equal (file_version (tu_path ("v1.heap")), 1);

  md = attach_name ("v1.heap", 0);
  mfree (md, mmalloc_getkey (md, 0));
  assert_int_equal (file_version (tu_path ("v1.heap")), MM_FORMAT_V2);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  mm_sites_off = 0;
}

/* Where a block of a checked file was allocated, small or large. */
static __attribute__ ((noinline)) void *
alloc_here (void *md, size_t size)
{
  void *p = mmalloc (md, size);
  __asm__ volatile ("" ::: "memory");	/* not a tail call: the site is here */
  return p;
}

/* Is SITE in alloc_here (the return address of its call of mmalloc)?  */
static int
site_in_alloc_here (const void *site)
{
  uintptr_t f = (uintptr_t) alloc_here, s = (uintptr_t) site;
  return s > f && s < f + 256;
}

/* A checked block records its site in a site record, a record of format 3;
   a checked file of format 2, made without them, attaches, its blocks have
   no site, and its new blocks have one.  */
static void
checked_blocks_record_their_site_from_format_3 (void **state)
{
  (void) state;
  mm_sites_off = 1;
  void *md = attach_name ("v2.heap", 1);
  assert_int_equal (mmcheck (md, NULL), 1);
  char *old[2] = { mmalloc (md, 100), mmalloc (md, 70000) };
  assert_int_equal (mmalloc_setkey (md, 0, old[0]), 1);
  assert_int_equal (mmalloc_setkey (md, 1, old[1]), 1);
  memset (old[0], 'a', 100);
  memset (old[1], 'b', 70000);
  assert_null (mmalloc_block_site (md, old[0]));
  assert_null (mmalloc_detach (md));
  assert_int_equal (file_version (tu_path ("v2.heap")), MM_FORMAT_V2);
  mm_sites_off = 0;

  md = attach_name ("v2.heap", 0);
  for (int k = 0; k < 2; k++)
    {
      old[k] = mmalloc_getkey (md, k);
      assert_null (mmalloc_block_site (md, old[k]));
      assert_int_equal (mmalloc_usable_size (md, old[k]), k ? 70000 : 100);
    }
  assert_heap_ok (md);
  assert_int_equal (file_version (tu_path ("v2.heap")), MM_FORMAT_V2);
  char *p[2] = { alloc_here (md, 100), alloc_here (md, 70000) };
  assert_int_equal (file_version (tu_path ("v2.heap")), MM_FORMAT_V3);
  for (int k = 0; k < 2; k++)
    {
      assert_non_null (p[k]);
      assert_true (site_in_alloc_here (mmalloc_block_site (md, p[k])));
      assert_int_equal (mmalloc_usable_size (md, p[k]), k ? 70000 : 100);
      memset (p[k], 'n', k ? 70000 : 100);
      assert_int_equal (mmalloc_setkey (md, 2 + k, p[k]), 1);
    }
  /* Grown in place or moved, a block keeps a site; a new one is the caller's.  */
  char *q = mrealloc (md, p[1], 90000);
  assert_non_null (q);
  assert_non_null (mmalloc_block_site (md, q));
  assert_int_equal (mmalloc_setkey (md, 3, q), 1);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));

  md = attach_name ("v2.heap", 0);
  assert_true (site_in_alloc_here (mmalloc_block_site (md, mmalloc_getkey (md, 2))));
  assert_null (mmalloc_block_site (md, mmalloc_getkey (md, 0)));
  assert_null (mmalloc_block_site (md, (char *) mmalloc_getkey (md, 2) + 16));
  assert_heap_ok (md);
  for (int k = 0; k < 4; k++)
    mfree (md, mmalloc_getkey (md, k));
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

static void
version_string_matches_the_header (void **state)
{
  (void) state;
  assert_string_equal (mmalloc_version (), MMALLOC_VERSION_STRING);
  char buf[32];
  snprintf (buf, sizeof buf, "%d.%d.%d", MMALLOC_VERSION_MAJOR, MMALLOC_VERSION_MINOR,
	    MMALLOC_VERSION_PATCH);
  assert_string_equal (mmalloc_version (), buf);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (anonymous_heap_allocates_keys_and_detaches),
    cmocka_unit_test (anonymous_heap_at_a_chosen_base),
    cmocka_unit_test (findbase_refuses_a_negative_size),
    cmocka_unit_test (new_file_at_a_chosen_base),
    cmocka_unit_test (new_file_at_a_library_chosen_base),
    cmocka_unit_test (caller_may_close_its_descriptor_after_attach),
    cmocka_unit_test (detach_returns_null),
    cmocka_unit_test (reattach_in_the_same_process_maps_at_the_same_address),
    cmocka_unit_test (misaligned_base_is_einval),
    cmocka_unit_test (bad_descriptor_is_ebadf),
    cmocka_unit_test (random_bytes_are_not_a_heap),
    cmocka_unit_test (changed_version_is_eversion),
    cmocka_unit_test (new_files_rise_to_format_2_at_its_first_record),
    cmocka_unit_test (a_format_1_file_attaches_and_rises_only_when_it_must),
    cmocka_unit_test (checked_blocks_record_their_site_from_format_3),
    cmocka_unit_test (swapped_byte_order_is_emachine),
    cmocka_unit_test (other_word_or_page_size_is_emachine),
    cmocka_unit_test (layout_fields_are_checked_after_the_sum),
    cmocka_unit_test (flipped_bit_in_base_or_span_is_ecorrupt),
    cmocka_unit_test (half_a_file_is_etruncated),
    cmocka_unit_test (magic_and_100_bytes_is_etruncated),
    cmocka_unit_test (taken_address_range_is_eaddrinuse),
    cmocka_unit_test (second_writer_in_this_process_is_elocked),
    cmocka_unit_test (second_writer_in_another_process_is_elocked),
    cmocka_unit_test (writer_killed_with_sigkill_releases_the_heap),
    cmocka_unit_test (read_only_descriptor_attaches_read_only),
    cmocka_unit_test (reader_keeps_writers_out),
    cmocka_unit_test (empty_read_only_file_is_erofs),
    cmocka_unit_test (write_only_descriptor_is_eacces),
    cmocka_unit_test (strerror_names_every_code),
    cmocka_unit_test (strerror_of_an_unknown_code_stays_valid),
    cmocka_unit_test (version_string_matches_the_header),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
