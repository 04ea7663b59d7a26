/* test-libc.c -- where the drop-in must do what the C library's malloc does,
   not what the m* interface does: realloc (p, 0) frees P and returns NULL
   (mrealloc keeps a minimal block), realloc (NULL, 0) and reallocarray with
   a zero count or size follow from it.  And the C library's statistics,
   trimming and tuning calls, which must describe and act on mmalloc's
   default heap, not the C library's own idle one: mallinfo and mallinfo2
   (their figures against mmstats; mallinfo's int fields saturate),
   malloc_stats, malloc_info, malloc_trim (freed pages leave memory: mincore)
   and mallopt (unknown parameters accepted and ignored, M_TRIM_THRESHOLD and
   M_TOP_PAD obeyed), each leaving errno alone where glibc does.  */
#include "mtest.h"

#include <limits.h>
#include <sys/mman.h>

/* Blocks of the process now (mmstats counts every block of the default
   heap, from its bitmaps and page map).  */
static size_t
live_blocks (void)
{
  return mmstats (NULL).chunks_used;
}

/* P was freed: freeing it again is reported as misuse (a double free, or a
   pointer the heap did not hand out once its pages went back to the free
   runs), with or without MMALLOC_OPTIONS=check (whose quarantine keeps
   freed blocks allocated for a while, so that mmstats still counts them),
   and the child that tries it is aborted.  Nothing allocates between the
   free and the child's.  */
static void
expect_freed (void *p)
{
  char err[512];
  int st = tu_child (free, p, err, sizeof err);
  if (!WIFSIGNALED (st) || !strstr (err, "mmalloc: "))
    print_message ("second free of %p: status %#x, %s\n", p, st, err);
  assert_true (WIFSIGNALED (st) && WTERMSIG (st) == SIGABRT);
  assert_true (strstr (err, "freed twice") || strstr (err, "not handed out"));
}

static void
realloc_to_zero_frees (void **state)
{
  (void) state;
  static const size_t sizes[] = { 1, 16, 100, 1000, 5000, 40000, 300000, (size_t) 3 << 20 };
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
    {
      void *p = malloc (sizes[k]);
      assert_non_null (p);
      mt_fill (p, sizes[k], k);
      errno = 4321;
      void *q = realloc (mt_ptr (p), mt_size (0));
      assert_null (q);
      assert_int_equal (errno, 4321);	/* no failure: errno untouched */
      expect_freed (p);
    }
  /* Aligned blocks too.  */
  void *p = memalign (4096, 100);
  assert_non_null (p);
  assert_null (realloc (mt_ptr (p), mt_size (0)));
  expect_freed (p);
  assert_heap_ok (NULL);
}

static void
realloc_of_null_to_zero_allocates (void **state)
{
  (void) state;
  size_t before = live_blocks ();
  void *p = realloc (NULL, mt_size (0));
  void *q = realloc (NULL, mt_size (0));
  assert_non_null (p);
  assert_non_null (q);
  assert_ptr_not_equal (p, q);
  assert_int_equal (live_blocks (), before + 2);
  free (p);
  free (q);
}

static void
reallocarray_to_zero_frees (void **state)
{
  (void) state;
  for (int k = 0; k < 2; k++)
    {
      void *p = malloc (200);
      assert_non_null (p);
      errno = 99;
      void *q = k ? reallocarray (mt_ptr (p), mt_size (0), mt_size (7))
	: reallocarray (mt_ptr (p), mt_size (7), mt_size (0));
      assert_null (q);
      assert_int_equal (errno, 99);
      expect_freed (p);
    }
  size_t before = live_blocks ();
  void *p = reallocarray (NULL, mt_size (0), mt_size (0));
  assert_non_null (p);
  assert_int_equal (live_blocks (), before + 1);
  free (p);
  assert_heap_ok (NULL);
}

/* mallinfo2's figures are mmstats's, split: the large blocks (runs of
   pages) are hblks and hblkhd, the rest of the heap the arena.  */
static void
expect_mallinfo2_is_mmstats (void)
{
  struct mstats st = mmstats (NULL);	/* first: under LD_PRELOAD its lookup
					   may allocate */
  struct mallinfo2 m = mallinfo2 ();
  assert_int_equal (m.arena + m.hblkhd, st.bytes_total);
  assert_int_equal (m.uordblks + m.hblkhd, st.bytes_used);
  assert_int_equal (m.fordblks, st.bytes_free);
  assert_int_equal (m.ordblks, st.chunks_free);
  assert_true (m.uordblks + m.fordblks <= m.arena);
  assert_true (m.keepcost <= m.fordblks);
  assert_int_equal (m.smblks, 0);
  assert_int_equal (m.usmblks, 0);
  assert_int_equal (m.fsmblks, 0);
}

static void
mallinfo2_describes_the_heap (void)
{
  expect_mallinfo2_is_mmstats ();
  struct mallinfo2 m0 = mallinfo2 ();
  enum { N = 1000, LARGE = 4 };
  void *p[N], *q[LARGE];
  for (int i = 0; i < N; i++)
    assert_non_null (p[i] = malloc (100));
  for (int i = 0; i < LARGE; i++)
    assert_non_null (q[i] = malloc ((size_t) 1 << 20));
  expect_mallinfo2_is_mmstats ();
  struct mallinfo2 m1 = mallinfo2 ();
  assert_true (m1.uordblks - m0.uordblks >= N * 100);
  assert_true (m1.uordblks - m0.uordblks <= N * 256);
  assert_int_equal (m1.hblks - m0.hblks, LARGE);
  assert_true (m1.hblkhd - m0.hblkhd >= LARGE << 20);
  assert_true (m1.hblkhd - m0.hblkhd <= LARGE * ((1 << 20) + 3 * mt_page ()));
  for (int i = 0; i < N; i++)
    free (p[i]);
  for (int i = 0; i < LARGE; i++)
    free (q[i]);
  expect_mallinfo2_is_mmstats ();
}

static void
mallinfo_and_mallinfo2_agree (void **state)
{
  (void) state;
  mallinfo2_describes_the_heap ();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  struct mallinfo m = mallinfo ();
#pragma GCC diagnostic pop
  struct mallinfo2 m2 = mallinfo2 ();
  assert_int_equal (m.arena, m2.arena);
  assert_int_equal (m.ordblks, m2.ordblks);
  assert_int_equal (m.hblks, m2.hblks);
  assert_int_equal (m.hblkhd, m2.hblkhd);
  assert_int_equal (m.uordblks, m2.uordblks);
  assert_int_equal (m.fordblks, m2.fordblks);
  assert_int_equal (m.keepcost, m2.keepcost);
}

/* A block of 2.5 GiB (mapped, never touched): mallinfo2 counts it, and
   mallinfo's int fields saturate at INT_MAX rather than wrap around.  */
static void
mallinfo_saturates (void **state)
{
  (void) state;
  size_t n = (size_t) 5 << 29;
  void *p = malloc (n);
  assert_non_null (p);
  struct mallinfo2 m2 = mallinfo2 ();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  struct mallinfo m = mallinfo ();
#pragma GCC diagnostic pop
  assert_true (m2.hblkhd >= n);
  assert_int_equal (m.hblkhd, INT_MAX);
  assert_true (m.arena > 0 && m.uordblks >= 0 && m.fordblks >= 0);
  free (p);
}

/* Run FN with its stderr in BUF (NUL-terminated).  */
static void
capture_stderr (void (*fn) (void), char *buf, size_t len)
{
  int pfd[2];
  assert_int_equal (pipe (pfd), 0);
  fflush (stderr);
  int saved = dup (2);
  assert_true (saved >= 0);
  assert_int_equal (dup2 (pfd[1], 2), 2);
  close (pfd[1]);
  fn ();
  fflush (stderr);
  assert_int_equal (dup2 (saved, 2), 2);
  close (saved);
  size_t got = 0;
  ssize_t r;
  while (got + 1 < len && (r = read (pfd[0], buf + got, len - 1 - got)) > 0)
    got += (size_t) r;
  buf[got] = 0;
  close (pfd[0]);
}

/* The figure after the Nth (from 1) line that starts with LABEL.  */
static size_t
figure (const char *text, const char *label, int nth)
{
  const char *s = text;
  size_t v = 0;
  for (int k = 0; k < nth; k++)
    {
      s = strstr (s, label);
      assert_non_null (s);
      s += strlen (label);
      assert_int_equal (sscanf (s, " = %zu", &v), 1);
    }
  return v;
}

static void
malloc_stats_prints_the_heap (void **state)
{
  (void) state;
  void *p = malloc (300000), *q = malloc (3000);
  assert_non_null (p);
  assert_non_null (q);
  char out[4096];
  struct mstats st = mmstats (NULL);
  capture_stderr (malloc_stats, out, sizeof out);
  assert_non_null (strstr (out, "Arena 0:\n"));
  assert_non_null (strstr (out, "Total (incl. mmap):\n"));
  /* The total's figures are the whole heap's.  */
  assert_int_equal (figure (out, "system bytes", 2), st.bytes_total);
  assert_int_equal (figure (out, "in use bytes", 2), st.bytes_used);
  assert_true (figure (out, "system bytes", 1) < st.bytes_total);
  free (p);
  free (q);
}

/* The attribute VALUE="..." of the first element of TYPE after AFTER.  */
static size_t
xml_attr (const char *xml, const char *element, const char *attr)
{
  const char *s = strstr (xml, element);
  assert_non_null (s);
  char key[32];
  snprintf (key, sizeof key, " %s=\"", attr);
  const char *a = strstr (s, key);
  assert_non_null (a);
  return strtoull (a + strlen (key), NULL, 10);
}

static void
malloc_info_writes_the_heap_as_xml (void **state)
{
  (void) state;
  void *p = malloc (200000);
  assert_non_null (p);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  assert_non_null (f);
  assert_int_equal (fputc (' ', f), ' ');	/* its buffer now */
  struct mstats st = mmstats (NULL);
  /* errno stays as it was, as with glibc's: on success, and with options
     other than 0, which return EINVAL (without setting errno) and write
     nothing.  */
  errno = 1234;
  assert_int_equal (malloc_info (0, f), 0);
  assert_int_equal (errno, 1234);
  assert_int_equal (malloc_info (1, f), EINVAL);
  assert_int_equal (errno, 1234);
  assert_int_equal (fclose (f), 0);
  assert_non_null (buf);
  assert_memory_equal (buf, " <malloc version=\"1\">\n<heap nr=\"0\">\n", 36);
  assert_string_equal (buf + len - 10, "</malloc>\n");
  /* The heap's totals, then the process's (after </heap>).  */
  assert_int_equal (xml_attr (buf, "<total type=\"rest\"", "size"), st.bytes_free);
  assert_int_equal (xml_attr (buf, "<total type=\"rest\"", "count"), st.chunks_free);
  const char *all = strstr (buf, "</heap>");
  assert_non_null (all);
  size_t mmap_size = xml_attr (all, "<total type=\"mmap\"", "size");
  assert_true (mmap_size >= 200000);
  assert_int_equal (xml_attr (all, "<system type=\"current\"", "size"), st.bytes_total);
  assert_int_equal (xml_attr (buf, "<system type=\"current\"", "size") + mmap_size,
		    st.bytes_total);
  /* The free blocks listed by size add up to the free bytes.  */
  size_t sum = 0, count = 0;
  for (const char *s = buf; (s = strstr (s, "<size ")); s++)
    {
      sum += xml_attr (s, "<size ", "total");
      count += xml_attr (s, "<size ", "count");
    }
  assert_int_equal (sum, st.bytes_free);
  assert_int_equal (count, st.chunks_free);
  free (buf);
  free (p);
}

/* How many of the pages [P + page, P + N) are resident.  */
static size_t
resident (void *p, size_t n)
{
  size_t page = mt_page ();
  uintptr_t a = ((uintptr_t) p + page) & ~(uintptr_t) (page - 1);
  uintptr_t z = ((uintptr_t) p + n) & ~(uintptr_t) (page - 1);
  unsigned char v[256];
  assert_true ((z - a) / page <= sizeof v);
  assert_int_equal (mincore ((void *) a, z - a, v), 0);
  size_t r = 0;
  for (size_t i = 0; i < (z - a) / page; i++)
    r += v[i] & 1;
  return r;
}

/* Free blocks of 10 to 50 pages stay in memory (runs that short are not
   given back at once); malloc_trim gives them back, and says so.  */
static void
malloc_trim_gives_free_pages_back (void **state)
{
  (void) state;
  enum { K = 5 };
  size_t page = mt_page (), n[K];
  unsigned char *p[K], *sep[K];
  for (int k = 0; k < K; k++)
    {
      n[k] = (size_t) (10 + 10 * k) * page;
      p[k] = malloc (n[k]);
      sep[k] = malloc (5000);	/* keeps the runs apart */
      assert_non_null (p[k]);
      assert_non_null (sep[k]);
      memset (p[k], 0x77, n[k]);
    }
  size_t before = 0;
  for (int k = 0; k < K; k++)
    {
      free (p[k]);
      before += resident (p[k], n[k]);
    }
  assert_true (before > 0);
  assert_int_equal (malloc_trim (0), 1);
  for (int k = 0; k < K; k++)
    assert_int_equal (resident (p[k], n[k]), 0);
  assert_true (mallinfo2 ().keepcost <= page);
  /* Nothing is left to give back.  */
  assert_int_equal (malloc_trim (0), 0);
  for (int k = 0; k < K; k++)
    free (sep[k]);
  expect_mallinfo2_is_mmstats ();
  assert_heap_ok (NULL);
}

/* Free a block larger than all the free memory, so that it is carved from
   new pages at the top, and return the free run left at the top then.  */
static size_t
top_after_free_of_a_large_block (void)
{
  void *p = malloc (mallinfo2 ().fordblks + ((size_t) 4 << 20));
  assert_non_null (p);
  free (p);
  return mallinfo2 ().keepcost;
}

static void
mallopt_sets_the_trim_threshold_and_pad (void **state)
{
  (void) state;
  size_t page = mt_page ();
  /* By default the top keeps some pages (or even all, under 1 MiB or so).  */
  size_t dflt = top_after_free_of_a_large_block ();
  assert_true (dflt > page);
  assert_int_equal (mallopt (M_TOP_PAD, 0), 1);
  assert_int_equal (mallopt (M_TRIM_THRESHOLD, 128 * 1024), 1);
  assert_true (top_after_free_of_a_large_block () <= page);
  assert_int_equal (mallopt (M_TOP_PAD, 64 * 1024), 1);
  assert_int_equal (top_after_free_of_a_large_block (), 64 * 1024);
  /* A negative threshold: the top is never given back by a free (but
     malloc_trim does).  */
  assert_int_equal (mallopt (M_TRIM_THRESHOLD, -1), 1);
  assert_true (top_after_free_of_a_large_block () >= (size_t) 4 << 20);
  assert_int_equal (malloc_trim (0), 1);
  assert_true (mallinfo2 ().keepcost <= page);
  /* The default figures, 1.25 MiB and 256 KiB, set: a free shrinks the top
     at once, as the C library's does, rather than after the decay delay.  */
  assert_int_equal (mallopt (M_TRIM_THRESHOLD, 1280 * 1024), 1);
  assert_int_equal (mallopt (M_TOP_PAD, 256 * 1024), 1);
  assert_int_equal (top_after_free_of_a_large_block (), 256 * 1024);
  assert_heap_ok (NULL);
}

/* Known parameters are accepted with valid values; M_MXFAST beyond
   80 * sizeof (size_t) / 4 is refused.  Unknown ones are accepted and
   ignored (1), as glibc 2.36's mallopt does: its result starts at 1 and
   only a known parameter's bad value lowers it.  */
static void
mallopt_accepts_unknown_parameters (void **state)
{
  (void) state;
  const int known[] = { M_MMAP_THRESHOLD, M_MMAP_MAX, M_CHECK_ACTION, M_PERTURB,
    M_ARENA_TEST, M_ARENA_MAX };
  for (size_t i = 0; i < sizeof known / sizeof *known; i++)
    assert_int_equal (mallopt (known[i], 1), 1);
  const int unknown[] = { 0, 2, 3, 4, 5, 100, -9, -10, -100, INT_MAX, INT_MIN };
  for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++)
    assert_int_equal (mallopt (unknown[i], 1), 1);
  assert_int_equal (mallopt (M_MXFAST, 0), 1);
  assert_int_equal (mallopt (M_MXFAST, 80 * sizeof (size_t) / 4), 1);
  assert_int_equal (mallopt (M_MXFAST, 80 * sizeof (size_t) / 4 + 1), 0);
  assert_int_equal (mallopt (M_MXFAST, -1), 0);
}

int
main (void)
{
  mt_require_preload ();
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (realloc_to_zero_frees),
    cmocka_unit_test (realloc_of_null_to_zero_allocates),
    cmocka_unit_test (reallocarray_to_zero_frees),
    cmocka_unit_test (mallinfo_and_mallinfo2_agree),
    cmocka_unit_test (mallinfo_saturates),
    cmocka_unit_test (malloc_stats_prints_the_heap),
    cmocka_unit_test (malloc_info_writes_the_heap_as_xml),
    cmocka_unit_test (malloc_trim_gives_free_pages_back),
    cmocka_unit_test (mallopt_sets_the_trim_threshold_and_pad),
    cmocka_unit_test (mallopt_accepts_unknown_parameters),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
