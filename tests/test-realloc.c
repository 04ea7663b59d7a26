/* test-realloc.c -- large blocks that mrealloc grows: in place where the
   pages after them are free or the heap can grow under them, across new
   windows of the page map; by moving their pages (mremap) in an anonymous
   heap, by copying when that fails and in heap files; contents kept and
   the heap consistent, also after re-attaching a heap file.  */
#include "testutil.h"
#include "mmprivate.h"

#define KIB ((size_t) 1 << 10)
#define MIB ((size_t) 1 << 20)

static void
counts (void *md, uint64_t c[3])
{
  mm_move_counts (md, c);
}

/* Grow P (SIZE bytes, filled with TAG) by steps of x1.125 up to MAX; each
   step must leave it where it is.  The final size.  */
static size_t
grow_in_place (void *md, char *p, size_t size, size_t max, uint64_t tag)
{
  while (size < max)
    {
      size_t n = (size * 9 / 8 + 15) & ~(size_t) 15;
      if (n > max)
	n = max;
      char *q = mrealloc (md, p, n);
      assert_non_null (q);
      if (q != p)
	fail_msg ("mrealloc %zu -> %zu moved the block at the top", size, n);
      tu_fill (p + size, n - size, tag + size);
      size = n;
    }
  return size;
}

/* Do the SIZE bytes at P hold what a fill of FROM bytes with TAG, then
   grow_in_place from FROM with TAG, wrote?  */
static int
holds_grown (const char *p, size_t from, size_t size, uint64_t tag)
{
  if (!tu_holds (p, from, tag))
    return 0;
  for (size_t s = from; s < size;)
    {
      size_t n = (s * 9 / 8 + 15) & ~(size_t) 15;
      if (n > size)
	n = size;
      if (!tu_holds (p + s, n - s, tag + s))
	return 0;
      s = n;
    }
  return 1;
}

/* A block at the top with a free run below it (where the leaves of new
   windows can go) grows in place past 16 and 32 MiB: no window's leaf is
   made in its way.  */
static void
top_block_grows_in_place_across_new_windows_in (void *md)
{
  char *low = mmalloc (md, MIB);
  char *p = mmalloc (md, 64 * KIB);
  assert_non_null (low);
  assert_non_null (p);
  mfree (md, low);
  tu_fill (p, 64 * KIB, 7);
  size_t size = grow_in_place (md, p, 64 * KIB, 40 * MIB, 7);
  assert_true (holds_grown (p, 64 * KIB, size, 7));
  assert_heap_ok (md);
  mfree (md, p);
}

static void
anonymous_top_block_grows_in_place_across_new_windows (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  top_block_grows_in_place_across_new_windows_in (md);
  tu_end_heap (md);
}

static void
file_top_block_grows_in_place_across_new_windows (void **state)
{
  (void) state;
  void *md = tu_new_file_heap ("grow.heap");
  top_block_grows_in_place_across_new_windows_in (md);
  tu_end_heap (md);
}

/* Shrinking a block at the top leaves a free run there; growing it past
   its old size uses that run and grows the heap under it.  */
static void
growth_reuses_the_free_run_a_shrink_left_at_the_top (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  char *p = mmalloc (md, 4 * MIB);
  assert_non_null (p);
  tu_fill (p, MIB, 11);
  assert_ptr_equal (mrealloc (md, p, MIB), p);
  char *q = mrealloc (md, p, 6 * MIB);
  assert_ptr_equal (q, p);
  assert_true (tu_holds (p, MIB, 11));
  memset (q + MIB, 1, 5 * MIB);
  assert_heap_ok (md);
  tu_end_heap (md);
}

/* A block that cannot grow where it is (another block follows it) in an
   anonymous heap moves by mremap: contents kept, nothing copied.  */
static void
blocked_block_moves_its_pages_without_copying (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  char *p = mmalloc (md, 2 * MIB);
  char *wall = mmalloc (md, 64 * KIB);
  assert_non_null (p);
  assert_non_null (wall);
  tu_fill (p, 2 * MIB, 21);
  uint64_t c0[3], c1[3];
  counts (md, c0);
  char *q = mrealloc (md, p, 8 * MIB);
  assert_non_null (q);
  assert_ptr_not_equal (q, p);
  assert_true (tu_holds (q, 2 * MIB, 21));
  memset (q + 2 * MIB, 3, 6 * MIB);
  counts (md, c1);
  assert_int_equal (c1[2] - c0[2], 1);	/* moved its pages */
  assert_int_equal (c1[0] - c0[0], 0);	/* copied nothing */
  /* Its old pages are free and usable again.  */
  char *r = mmalloc (md, 2 * MIB);
  assert_non_null (r);
  memset (r, 5, 2 * MIB);
  assert_true (tu_holds (q, 2 * MIB, 21));
  assert_heap_ok (md);
  mfree (md, r);
  mfree (md, q);
  mfree (md, wall);
  tu_end_heap (md);
}

/* When the kernel refuses to move the pages, the block is copied.  */
static void
failed_mremap_falls_back_to_a_copy (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  assert_int_equal (mmalloc_setdecay (md, 600000), 0);	/* no OS call of decay */
  char *room = mmalloc (md, 16 * MIB);	/* free pages for the move */
  char *p = mmalloc (md, 2 * MIB);
  char *wall = mmalloc (md, 64 * KIB);
  assert_non_null (room);
  assert_non_null (p);
  assert_non_null (wall);
  mfree (md, room);
  tu_fill (p, 2 * MIB, 31);
  uint64_t c0[3], c1[3];
  counts (md, c0);
  mm_os_fail_at (1, ENOMEM);	/* the move's mremap */
  char *q = mrealloc (md, p, 8 * MIB);
  mm_os_fail_at (0, 0);
  assert_non_null (q);
  assert_ptr_not_equal (q, p);
  assert_true (tu_holds (q, 2 * MIB, 31));
  memset (q + 2 * MIB, 3, 6 * MIB);
  counts (md, c1);
  assert_int_equal (c1[2] - c0[2], 0);
  assert_int_equal (c1[0] - c0[0], 1);
  assert_int_equal (c1[1] - c0[1], 2 * MIB);
  assert_heap_ok (md);
  mfree (md, q);
  mfree (md, wall);
  tu_end_heap (md);
}

static unsigned
mappings (void)
{
  FILE *f = fopen ("/proc/self/maps", "r");
  assert_non_null (f);
  unsigned n = 0;
  for (int ch; (ch = fgetc (f)) != EOF;)
    n += ch == '\n';
  fclose (f);
  return n;
}

/* Each move of pages leaves up to two mappings more behind, which no free
   merges back, and a process may have only so many (vm.max_map_count):
   past MM_MOVE_MAX moves, blocks are copied, so that many blocks moved and
   kept cannot use up the process's mappings.  */
static void
moves_stop_before_the_process_runs_out_of_mappings (void **state)
{
  (void) state;
  enum
  { N = MM_MOVE_MAX + 512 };
  void *md = tu_new_heap ();
  char **kept = calloc (2 * N, sizeof *kept);
  assert_non_null (kept);
  unsigned before = mappings ();
  uint64_t c0[3], c1[3];
  counts (md, c0);
  for (unsigned i = 0; i < N; i++)
    {
      char *p = mmalloc (md, MM_MOVE_MIN * MM_PAGE);
      kept[2 * i + 1] = mmalloc (md, 32 * KIB);	/* a wall after it */
      assert_non_null (p);
      assert_non_null (kept[2 * i + 1]);
      p[0] = (char) i;
      kept[2 * i] = mrealloc (md, p, 2 * MM_MOVE_MIN * MM_PAGE);
      assert_non_null (kept[2 * i]);
      assert_int_equal (kept[2 * i][0], (char) i);
    }
  unsigned after = mappings ();
  counts (md, c1);
  assert_true (c1[2] - c0[2] <= MM_MOVE_MAX);
  assert_true (c1[0] - c0[0] >= N - MM_MOVE_MAX);	/* the rest copied */
  assert_true (after - before <= 2 * MM_MOVE_MAX + 64);
  assert_heap_ok (md);
  for (unsigned i = 0; i < 2 * N; i++)
    mfree (md, kept[i]);
  free (kept);
  tu_end_heap (md);
}

/* A heap file never moves pages: a blocked block is copied; the file
   re-attaches with every block whole, the leaves placed below the top
   included.  */
static void
heap_file_copies_and_reattaches_with_its_blocks (void **state)
{
  (void) state;
  void *md = tu_new_file_heap ("re.heap");
  char *low = mmalloc (md, MIB);
  char *p = mmalloc (md, 64 * KIB);
  assert_non_null (low);
  assert_non_null (p);
  mfree (md, low);
  tu_fill (p, 64 * KIB, 41);
  size_t size = grow_in_place (md, p, 64 * KIB, 24 * MIB, 41);
  char *wall = mmalloc (md, 2 * MIB);	/* too large for the run below */
  assert_non_null (wall);
  uint64_t c0[3], c1[3];
  counts (md, c0);
  char *q = mrealloc (md, p, size + 8 * MIB);
  assert_non_null (q);
  assert_ptr_not_equal (q, p);
  counts (md, c1);
  assert_int_equal (c1[2] - c0[2], 0);
  assert_int_equal (c1[0] - c0[0], 1);
  assert_true (holds_grown (q, 64 * KIB, size, 41));
  mmalloc_setkey (md, 0, q);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  int fd = open (tu_path ("re.heap"), O_RDWR);
  assert_true (fd >= 0);
  md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  q = mmalloc_getkey (md, 0);
  assert_true (holds_grown (q, 64 * KIB, size, 41));
  assert_heap_ok (md);
  mfree (md, q);
  tu_end_heap (md);
}

/* Small blocks reallocated through every size class and back, in the
   thread's own slabs (no lock) and in those of another thread (which it
   left behind): contents kept, a slot that fits stays.  */
static void
walk_sizes (void *md, char *p, uint64_t tag)
{
  size_t size = 16;
  tu_fill (p, size, tag);
  for (size_t n = 24; n <= 32768; n = n * 5 / 4 + 8)
    {
      char *q = mrealloc (md, p, n);
      assert_non_null (q);
      assert_true (tu_holds (q, size, tag));
      tu_fill (q, n, tag);
      p = q;
      size = n;
    }
  for (size_t n = size; n >= 16; n = n * 2 / 3)
    {
      char *q = mrealloc (md, p, n);
      assert_non_null (q);
      assert_true (tu_holds (q, n, tag));
      p = q;
      size_t room = mmalloc_usable_size (md, p);	/* its slot: stays */
      assert_ptr_equal (mrealloc (md, p, room), p);
      assert_ptr_equal (mrealloc (md, p, room / 2 + 1), p);
    }
  mfree (md, p);
}

static void *
alloc_small (void *md)
{
  return mmalloc (md, 16);
}

static void
small_blocks_keep_contents_through_every_class (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  walk_sizes (md, alloc_small (md), 51);
  pthread_t t;
  void *other;
  assert_int_equal (pthread_create (&t, NULL, alloc_small, md), 0);
  assert_int_equal (pthread_join (t, &other), 0);
  assert_non_null (other);
  walk_sizes (md, other, 52);	/* a slot of another thread's slab */
  walk_sizes (NULL, alloc_small (NULL), 53);	/* the default heap */
  assert_heap_ok (md);
  tu_end_heap (md);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (anonymous_top_block_grows_in_place_across_new_windows),
    cmocka_unit_test (file_top_block_grows_in_place_across_new_windows),
    cmocka_unit_test (growth_reuses_the_free_run_a_shrink_left_at_the_top),
    cmocka_unit_test (blocked_block_moves_its_pages_without_copying),
    cmocka_unit_test (failed_mremap_falls_back_to_a_copy),
    cmocka_unit_test (moves_stop_before_the_process_runs_out_of_mappings),
    cmocka_unit_test (heap_file_copies_and_reattaches_with_its_blocks),
    cmocka_unit_test (small_blocks_keep_contents_through_every_class),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
