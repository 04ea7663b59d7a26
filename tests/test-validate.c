/* test-validate.c -- a heap file's metadata is proven before it is written
   through.

   Each test makes a heap file holding a live block full of a known pattern,
   forges one structure of the file the way a damaged or hostile file could
   (directory entries, page-map marks, links of free runs, list heads; the
   checksums made right again where the file is clean), attaches it, and
   works the heap: grows it across page-map windows, frees and allocates.
   The outcome must be one of two: attach refuses the file (MMALLOC_ECORRUPT),
   or the block still holds its pattern, nothing handed out overlaps it, and
   mmalloc_check reports the damage.  A heap left by a crash in the middle of
   a growth (a leaf above `top') is no damage: it recovers.  */

#include "testutil.h"
#include "mmprivate.h"

#define PAT 0x3c
#define BLOCK (40 << 10)	/* 10 pages: a large block */

struct file
{
  struct mm_header h;
  uint32_t dir[MM_DIR_ENTRIES];
  uint64_t block;		/* the pattern block's offset from the base */
  uint64_t other;		/* a second large block's offset */
};

static void
rd (int fd, void *buf, size_t len, uint64_t off)
{
  assert_int_equal (pread (fd, buf, len, (off_t) off), (ssize_t) len);
}

static void
wr (int fd, const void *buf, size_t len, uint64_t off)
{
  assert_int_equal (pwrite (fd, buf, len, (off_t) off), (ssize_t) len);
}

/* A new heap file NAME: the pattern block (key 0), a second large block
   (key 1) and a free run after them; detached cleanly.  Its header and
   directory in *F.  */
static void
make_heap (const char *name, struct file *f)
{
  int fd = tu_newfile (name);
  void *md = mmalloc_attach (fd, NULL);
  assert_non_null (md);
  char *p = mmalloc (md, BLOCK), *q = mmalloc (md, BLOCK);
  assert_non_null (p);
  assert_non_null (q);
  memset (p, PAT, BLOCK);
  memset (q, 0x11, BLOCK);
  mmalloc_setkey (md, 0, p);
  mmalloc_setkey (md, 1, q);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  rd (fd, &f->h, sizeof f->h, 0);
  rd (fd, f->dir, sizeof f->dir, MM_PAGE);
  close (fd);
  assert_int_equal (f->h.state, MM_CLEAN);
  f->block = (uint64_t) (uintptr_t) p - f->h.base;
  f->other = (uint64_t) (uintptr_t) q - f->h.base;
  assert_true (f->block % MM_PAGE == 0 && f->other == f->block + BLOCK);
}

/* The byte offset in the file of the page-map entry of page PG (window 0).  */
static uint64_t
pm_at (const struct file *f, uint64_t pg)
{
  assert_true (pg < MM_WIN_PAGES);
  return ((uint64_t) f->dir[0] << MM_PAGE_SHIFT) + pg * 4;
}

/* Write F's header and directory back to NAME; CLEAN: with the sum of the
   directory made right (as a forger would), else marked dirty.  */
static void
put_heap (const char *name, struct file *f, int clean)
{
  int fd = open (tu_path (name), O_RDWR);
  assert_true (fd >= 0);
  wr (fd, f->dir, sizeof f->dir, MM_PAGE);
  if (clean)
    f->h.dir_sum = mm_fmt_dir_sum (f->dir);
  else
    f->h.state = MM_DIRTY;
  wr (fd, &f->h, sizeof f->h, 0);
  close (fd);
}

static void
put_u32 (const char *name, uint64_t off, uint32_t v)
{
  int fd = open (tu_path (name), O_RDWR);
  assert_true (fd >= 0);
  wr (fd, &v, sizeof v, off);
  close (fd);
}

static void
put_u64 (const char *name, uint64_t off, uint64_t v)
{
  int fd = open (tu_path (name), O_RDWR);
  assert_true (fd >= 0);
  wr (fd, &v, sizeof v, off);
  close (fd);
}

static int
intact (const char *p)
{
  for (size_t i = 0; i < BLOCK; i++)
    if ((unsigned char) p[i] != PAT)
      return 0;
  return 1;
}

/* Attach NAME and work it: free the second block, allocate a few blocks
   (each must stay clear of the pattern block), grow the heap across the
   next windows.  Then: refused with MMALLOC_ECORRUPT (returns 1), or the
   pattern is intact and mmalloc_check reports the damage (returns 0), or,
   where recovery may rebuild what was forged, the pattern is intact and the
   heap consistent (returns 2).  */
static int
attach_and_work (const char *name)
{
  int fd = open (tu_path (name), O_RDWR);
  assert_true (fd >= 0);
  errno = 0;
  void *md = mmalloc_attach (fd, NULL);
  int e = errno;
  close (fd);
  if (!md)
    {
      assert_int_equal (e, MMALLOC_ECORRUPT);
      return 1;
    }
  char *p = mmalloc_getkey (md, 0);
  mfree (md, mmalloc_getkey (md, 1));
  static const size_t sizes[] = { 4 * MM_PAGE, 100, 3 * MM_PAGE, (size_t) 40 << 20 };
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    {
      char *q = mmalloc (md, sizes[i]);
      if (q)
	{
	  assert_false (q < p + BLOCK && p < q + sizes[i]);
	  memset (q, 0x77, sizes[i] < 8192 ? sizes[i] : 8192);
	}
    }
  int ok = intact (p);
  int problems = mmalloc_check (md);
  mmalloc_detach (md);
  assert_true (ok);
  return problems > 0 ? 0 : 2;
}

/* --- the directory ----------------------------------------------------------- */

/* The entry of the first window beyond `top' names pages inside the block:
   growth would take them for that window's leaf.  */
static void
forge_dir_beyond_top (int clean)
{
  struct file f;
  make_heap ("dir.heap", &f);
  uint64_t w = ((f.h.top - 1) >> MM_WIN_SHIFT) + 1;
  assert_int_equal (f.dir[w], 0);
  f.dir[w] = (uint32_t) ((f.block >> MM_PAGE_SHIFT) + 2);
  put_heap ("dir.heap", &f, clean);
  assert_int_equal (attach_and_work ("dir.heap"), 1);
}

static void
dir_entry_beyond_top_into_a_block_clean (void **state)
{
  (void) state;
  forge_dir_beyond_top (1);
}

static void
dir_entry_beyond_top_into_a_block_dirty (void **state)
{
  (void) state;
  forge_dir_beyond_top (0);
}

/* The same, with the pages it names marked META in the page map, as a
   leaf's are: they are still inside the block.  */
static void
dir_entry_into_a_block_marked_meta (void **state)
{
  (void) state;
  for (int clean = 1; clean >= 0; clean--)
    {
      struct file f;
      make_heap ("meta.heap", &f);
      uint64_t w = ((f.h.top - 1) >> MM_WIN_SHIFT) + 1, pg = (f.block >> MM_PAGE_SHIFT) + 2;
      f.dir[w] = (uint32_t) pg;
      for (uint64_t i = 0; i < MM_LEAF_PAGES; i++)
	put_u32 ("meta.heap", pm_at (&f, pg + i), PM_MAKE (PM_META, 0));
      put_heap ("meta.heap", &f, clean);
      assert_int_equal (attach_and_work ("meta.heap"), 1);
    }
}

/* Window 0's entry moved onto the block: the page map would be read from,
   and written into, the user's data.  */
static void
dir_entry_of_window_0_moved_into_a_block (void **state)
{
  (void) state;
  for (int clean = 1; clean >= 0; clean--)
    {
      struct file f;
      make_heap ("dir0.heap", &f);
      f.dir[0] = (uint32_t) (f.block >> MM_PAGE_SHIFT);
      put_heap ("dir0.heap", &f, clean);
      assert_int_equal (attach_and_work ("dir0.heap"), 1);
    }
}

/* Two entries naming one leaf, or leaves out of order.  */
static void
dir_entries_sharing_a_leaf (void **state)
{
  (void) state;
  for (int clean = 1; clean >= 0; clean--)
    {
      struct file f;
      make_heap ("twice.heap", &f);
      uint64_t w = ((f.h.top - 1) >> MM_WIN_SHIFT) + 1;
      f.dir[w] = f.dir[0];
      put_heap ("twice.heap", &f, clean);
      assert_int_equal (attach_and_work ("twice.heap"), 1);
    }
}

/* A growth that died after making the leaf of a new window and before
   moving `top' leaves the window's entry naming pages above `top': the
   next attach recovers it, keeps the block, and the heap grows again
   across that window.  */
static void
leaf_above_top_after_a_killed_growth_recovers (void **state)
{
  (void) state;
  struct file f;
  make_heap ("grow.heap", &f);
  uint64_t w = ((f.h.top - 1) >> MM_WIN_SHIFT) + 1;
  f.dir[w] = (uint32_t) f.h.top;
  put_heap ("grow.heap", &f, 0);
  int fd = open (tu_path ("grow.heap"), O_RDWR);
  assert_true (fd >= 0);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  assert_heap_ok (md);
  char *p = mmalloc_getkey (md, 0);
  assert_true (intact (p));
  char *g = mmalloc (md, (size_t) 40 << 20);
  assert_non_null (g);
  memset (g, 0x55, (size_t) 40 << 20);
  assert_true (intact (p));
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

/* --- the page map -------------------------------------------------------------- */

/* A free run marked inside the block, and a bin that names it: an
   allocation would hand out the block's pages.  */
static void
free_run_marked_inside_a_block (void **state)
{
  (void) state;
  for (int clean = 1; clean >= 0; clean--)
    {
      struct file f;
      make_heap ("inner.heap", &f);
      uint64_t pg = (f.block >> MM_PAGE_SHIFT) + 2;
      put_u32 ("inner.heap", pm_at (&f, pg), PM_MAKE (PM_FREE, PM_HEAD | 4));
      put_u32 ("inner.heap", pm_at (&f, pg + 3), PM_MAKE (PM_FREE, PM_END | 4));
      f.h.bin_head[mm_bin_of (4)] = pg << MM_PAGE_SHIFT;
      f.h.bin_mask[0] |= 1ULL << mm_bin_of (4);
      put_heap ("inner.heap", &f, clean);
      /* Recovery wipes marks inside a block, as after a resize in place.  */
      assert_int_equal (attach_and_work ("inner.heap"), clean ? 1 : 2);
    }
}

/* --- links of free runs and lists ---------------------------------------------- */

/* Every bin's head names the block: putting a run in a bin would write its
   link into the block.  */
static void
bin_heads_name_a_block (void **state)
{
  (void) state;
  struct file f;
  make_heap ("bins.heap", &f);
  for (unsigned b = 0; b < MM_NBINS; b++)
    f.h.bin_head[b] = f.block;
  f.h.bin_mask[0] = f.h.bin_mask[1] = ~0ULL;
  put_heap ("bins.heap", &f, 1);
  assert_int_equal (attach_and_work ("bins.heap"), 0);
}

/* A bin's head names a page of the directory: refused at attach, as every
   list head must be 0 or a page after the header (mm_fmt_header_links).  */
static void
bin_head_names_the_directory (void **state)
{
  (void) state;
  struct file f;
  make_heap ("bindir.heap", &f);
  f.h.bin_head[3] = MM_PAGE;
  f.h.bin_mask[0] |= 1u << 3;
  put_heap ("bindir.heap", &f, 1);
  assert_int_equal (attach_and_work ("bindir.heap"), 1);
}

/* The free run after the two blocks links to the block: taking the run out
   of its bin would write into the block.  */
static void
free_run_links_to_a_block (void **state)
{
  (void) state;
  for (int prev = 0; prev < 2; prev++)
    {
      struct file f;
      make_heap ("link.heap", &f);
      uint64_t run = f.other + BLOCK;
      put_u64 ("link.heap", run + offsetof (struct mm_run, next) + (prev ? 8 : 0), f.block);
      put_heap ("link.heap", &f, 1);
      assert_int_equal (attach_and_work ("link.heap"), 0);
    }
}

/* A partial-slab list head names the block.  */
static void
partial_list_names_a_block (void **state)
{
  (void) state;
  struct file f;
  make_heap ("partial.heap", &f);
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    f.h.cls[c].partial[0] = f.h.cls[c].partial[1] = f.block;
  put_heap ("partial.heap", &f, 1);
  assert_int_equal (attach_and_work ("partial.heap"), 0);
}

/* A slab of plain blocks on its class's list, its header saying it holds
   checked ones (a flag flipped): taking a slot from it would hand out a
   block that mfree and mmalloc_usable_size then call a bad pointer.  */
static void
use_mislabelled_slab (void *arg)
{
  (void) arg;
  int fd = open (tu_path ("label.heap"), O_RDWR);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  if (!md)
    _exit (3);
  for (int i = 0; i < 8; i++)
    {
      char *p = mmalloc (md, 100);
      if (p && mmalloc_usable_size (md, p) < 100)
	_exit (4);
      mfree (md, p);
    }
  mmalloc_detach (md);
}

static void
slab_on_the_list_of_the_other_kind (void **state)
{
  (void) state;
  int fd = tu_newfile ("label.heap");
  void *md = mmalloc_attach (fd, NULL);
  assert_non_null (md);
  void *p[3];
  for (int i = 0; i < 3; i++)
    assert_non_null (p[i] = mmalloc (md, 100));
  mfree (md, p[1]);
  assert_null (mmalloc_detach (md));
  struct mm_header h;
  rd (fd, &h, sizeof h, 0);
  close (fd);
  uint64_t slab = h.cls[mm_size_class (100)].partial[0];
  assert_true (slab != 0);
  uint16_t flags;
  fd = open (tu_path ("label.heap"), O_RDWR);
  rd (fd, &flags, sizeof flags, slab + offsetof (struct mm_slab, flags));
  flags |= MM_SLAB_CHECKED;
  wr (fd, &flags, sizeof flags, slab + offsetof (struct mm_slab, flags));
  close (fd);
  char err[512];
  int st = tu_child (use_mislabelled_slab, NULL, err, sizeof err);
  assert_true (WIFEXITED (st));
  assert_int_equal (WEXITSTATUS (st), 0);
}

/* A full slab whose header names this thread as its owner (a token a file
   can hold by chance or by design) and links to the pattern block: the
   thread's free of one of its slots follows the link of its list of full
   slabs.  */
static void
free_into_forged_owned_slab (void *arg)
{
  void *victim = arg;
  int fd = open (tu_path ("owner.heap"), O_RDWR);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  if (!md)
    _exit (3);
  mfree (md, mmalloc (md, 16));	/* this thread's cache now serves the heap */
  mfree (md, victim);
  if (!intact (mmalloc_getkey (md, 0)))
    _exit (5);
  mmalloc_detach (md);
}

static void
slab_owned_by_this_thread_in_a_file (void **state)
{
  (void) state;
  struct file f;
  make_heap ("owner.heap", &f);
  int fd = open (tu_path ("owner.heap"), O_RDWR);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  unsigned cls = mm_size_class (100);
  char *first = NULL;
  for (uint32_t i = 0; i < mm_classes[cls].nobj; i++)
    {
      char *p = mmalloc (md, 100);
      assert_non_null (p);
      if (!first)
	first = p;
    }
  assert_null (mmalloc_detach (md));
  uint64_t slab = (uint64_t) (uintptr_t) first - f.h.base - mm_classes[cls].objoff;
  assert_int_equal (slab % MM_PAGE, 0);
  uint32_t owner = mm_tc_self->id;
  uint16_t flags;
  fd = open (tu_path ("owner.heap"), O_RDWR);
  rd (fd, &flags, sizeof flags, slab + offsetof (struct mm_slab, flags));
  flags |= MM_SLAB_FULL;
  wr (fd, &flags, sizeof flags, slab + offsetof (struct mm_slab, flags));
  wr (fd, &owner, sizeof owner, slab + offsetof (struct mm_slab, owner));
  wr (fd, &f.block, sizeof f.block, slab + offsetof (struct mm_slab, prev));
  close (fd);
  char err[512];
  int st = tu_child (free_into_forged_owned_slab, first, err, sizeof err);
  assert_true (WIFEXITED (st));
  assert_int_equal (WEXITSTATUS (st), 0);
}

static int
cleanup (void **state)
{
  (void) state;
  tu_rm_tree (tu_dir ());
  return 0;
}

int
main (void)
{
  mm_classes_init ();
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (dir_entry_beyond_top_into_a_block_clean),
    cmocka_unit_test (dir_entry_beyond_top_into_a_block_dirty),
    cmocka_unit_test (dir_entry_into_a_block_marked_meta),
    cmocka_unit_test (dir_entry_of_window_0_moved_into_a_block),
    cmocka_unit_test (dir_entries_sharing_a_leaf),
    cmocka_unit_test (leaf_above_top_after_a_killed_growth_recovers),
    cmocka_unit_test (free_run_marked_inside_a_block),
    cmocka_unit_test (bin_heads_name_a_block),
    cmocka_unit_test (bin_head_names_the_directory),
    cmocka_unit_test (free_run_links_to_a_block),
    cmocka_unit_test (partial_list_names_a_block),
    cmocka_unit_test (slab_on_the_list_of_the_other_kind),
    cmocka_unit_test (slab_owned_by_this_thread_in_a_file),
  };
  return cmocka_run_group_tests (tests, NULL, cleanup);
}
