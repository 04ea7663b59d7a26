/* test-usable.c -- the ordinary contract of the malloc family on the default
   heap: every call lands in mmalloc, malloc_usable_size covers the request
   and every byte it reports is writable without touching a neighbour,
   malloc (0) gives unique pointers, calloc zeroes (also reused memory),
   realloc keeps contents, free and cfree keep errno (as glibc's
   tst-free-errno asks, also at the system's limit of mappings), the C
   library's own allocations are mmalloc's blocks.  */
#include "mtest.h"

#include <sys/mman.h>

static int
int_cmp (const void *a, const void *b)
{
  int x = *(const int *) a, y = *(const int *) b;
  return (x > y) - (x < y);
}

/* The C library names reach mmalloc: the figures of mmstats (NULL) move with
   malloc and free, and both usable sizes agree.  */
static void
malloc_family_is_mmalloc (void **state)
{
  (void) state;
  struct mstats a = mmstats (NULL);
  void *p[8];
  p[0] = malloc (10);
  p[1] = calloc (3, 100);
  p[2] = realloc (NULL, 1000);
  p[3] = memalign (64, 64);
  p[4] = aligned_alloc (4096, 4096);
  assert_int_equal (posix_memalign (&p[5], 128, 200), 0);
  p[6] = valloc (1);
  p[7] = pvalloc (1);
  for (int i = 0; i < 8; i++)
    {
      assert_non_null (p[i]);
      assert_int_equal (malloc_usable_size (p[i]), mmalloc_usable_size (NULL, p[i]));
    }
  struct mstats b = mmstats (NULL);
  assert_int_equal (b.chunks_used, a.chunks_used + 8);
  assert_true (b.bytes_used >= a.bytes_used + 10 + 300 + 1000 + 64 + 4096 + 200 + 2);
  free (p[0]);
  cfree (p[1]);
  for (int i = 2; i < 8; i++)
    free (p[i]);
  struct mstats c = mmstats (NULL);
  assert_int_equal (c.chunks_used, a.chunks_used);
  assert_int_equal (c.bytes_used, a.bytes_used);
  assert_int_equal (malloc_usable_size (NULL), 0);
}

/* What the C library allocates for its callers comes from mmalloc too, and
   free takes it back (a block of another allocator would be reported as a
   bad pointer and abort).  */
static void
libc_allocations_are_mmalloc_blocks (void **state)
{
  (void) state;
  struct mstats a = mmstats (NULL);
  char *s = strdup ("a string the C library copies");
  char *n = strndup ("0123456789", 4);
  char *f = NULL;
  assert_true (asprintf (&f, "%d %s %f", 42, "formatted", 2.5) > 0);
  assert_non_null (s);
  assert_non_null (n);
  assert_int_equal (mmstats (NULL).chunks_used, a.chunks_used + 3);
  assert_true (malloc_usable_size (s) >= strlen (s) + 1);
  free (s);
  free (n);
  free (f);
  char *buf = NULL;
  size_t len = 0;
  FILE *ms = open_memstream (&buf, &len);
  assert_non_null (ms);
  for (int i = 0; i < 5000; i++)
    fprintf (ms, "line %d of a memory stream\n", i);
  fclose (ms);
  assert_true (len > 100000);
  FILE *rd = fmemopen (buf, len, "r");
  assert_non_null (rd);
  char *line = NULL;
  size_t cap = 0;
  int lines = 0;
  while (getline (&line, &cap, rd) > 0)
    lines++;
  assert_int_equal (lines, 5000);
  fclose (rd);
  free (line);
  free (buf);
  char *rp = realpath (".", NULL);
  assert_non_null (rp);
  free (rp);
  char *cwd = getcwd (NULL, 0);
  assert_non_null (cwd);
  free (cwd);
  /* qsort of a large array takes a temporary buffer from malloc.  */
  enum { Q = 200000 };
  int *q = malloc (Q * sizeof *q);
  assert_non_null (q);
  for (int i = 0; i < Q; i++)
    q[i] = (int) (mt_rand () % 1000000);
  qsort (q, Q, sizeof *q, int_cmp);
  for (int i = 1; i < Q; i++)
    assert_true (q[i - 1] <= q[i]);
  free (q);
  struct mstats b = mmstats (NULL);
  assert_int_equal (b.chunks_used, a.chunks_used);
  assert_heap_ok (NULL);
}

static size_t
pick_size (void)
{
  uint64_t r = mt_rand ();
  switch (r % 8)
    {
    case 0:
      return (size_t) (r >> 8) % 17;
    case 1:
    case 2:
      return (size_t) (r >> 8) % 256;
    case 3:
    case 4:
      return (size_t) (r >> 8) % 4096;
    case 5:
      return (size_t) (r >> 8) % 20000;	/* across the small/large border */
    case 6:
      return (size_t) (r >> 8) % 300000;
    default:
      {
	static const size_t edge[] = { 16, 17, 48, 64, 65, 127, 128, 129, 1024, 4095,
	  4096, 4097, 8191, 8192, 16383, 16384, 16385, 65536, 1 << 20 };
	return edge[(r >> 8) % (sizeof edge / sizeof *edge)];
      }
    }
}

/* Fill every reported byte of many live blocks with their own pattern; no
   block may see another's bytes, and each covers its request.  */
static void
usable_size_is_all_writable (void **state)
{
  (void) state;
  enum { N = 3000, ROUNDS = 4 };
  static unsigned char *p[N];
  static size_t req[N], use[N];
  for (int round = 0; round < ROUNDS; round++)
    {
      for (int i = 0; i < N; i++)
	{
	  req[i] = pick_size ();
	  switch (mt_rand () % 6)
	    {
	    case 0:
	      p[i] = calloc (1, req[i]);
	      break;
	    case 1:
	      p[i] = memalign ((size_t) 1 << (mt_rand () % 13), req[i]);
	      break;
	    case 2:		/* (realloc (q, 0) would free Q) */
	      p[i] = req[i] ? realloc (malloc (req[i] / 2 + 1), req[i]) : malloc (0);
	      break;
	    default:
	      p[i] = malloc (req[i]);
	    }
	  assert_non_null (p[i]);
	  assert_int_equal ((uintptr_t) p[i] % 16, 0);
	  use[i] = malloc_usable_size (p[i]);
	  if (use[i] < req[i])
	    print_message ("size %zu: usable %zu\n", req[i], use[i]);
	  assert_true (use[i] >= req[i]);
	  mt_fill (p[i], use[i], (uintptr_t) i + 1000 * (uintptr_t) round);
	}
      for (int i = 0; i < N; i++)
	{
	  size_t bad = mt_check (p[i], use[i], (uintptr_t) i + 1000 * (uintptr_t) round);
	  if (bad != use[i])
	    print_message ("block %d (%zu bytes, usable %zu): byte %zu overwritten\n",
			   i, req[i], use[i], bad);
	  assert_int_equal (bad, use[i]);
	  assert_int_equal (malloc_usable_size (p[i]), use[i]);
	}
      /* Free half, in a scattered order, and check the rest again.  */
      for (int i = 0; i < N; i += 2)
	free (p[(i * 7) % N]);
      for (int i = 1; i < N; i += 2)
	{
	  int j = (i * 7) % N;
	  assert_int_equal (mt_check (p[j], use[j], (uintptr_t) j + 1000 * (uintptr_t) round),
			    use[j]);
	}
      for (int i = 1; i < N; i += 2)
	free (p[(i * 7) % N]);
    }
  assert_heap_ok (NULL);
}

/* Sizes on both sides of every class boundary: usable size is monotonic in
   the request and never below it.  */
static void
usable_size_follows_requests (void **state)
{
  (void) state;
  size_t last = 0;
  for (size_t n = 0; n <= 70000; n += (n < 2048 ? 1 : n < 20000 ? 7 : 61))
    {
      void *p = malloc (n);
      assert_non_null (p);
      size_t u = malloc_usable_size (p);
      assert_true (u >= n);
      assert_true (u >= last || n == 0);
      /* The slack is bounded: at most a quarter plus the 16-byte step, or
         a page for page-sized blocks.  */
      assert_true (u <= n + n / 4 + 16 || u <= n + 4096);
      last = u;
      memset (p, 0xa5, u);
      free (p);
    }
}

static void
malloc_zero_gives_unique_pointers (void **state)
{
  (void) state;
  enum { N = 2000 };
  static void *p[N];
  for (int i = 0; i < N; i++)
    {
      switch (i % 5)
	{
	case 0:
	  p[i] = malloc (0);
	  break;
	case 1:
	  p[i] = calloc (0, 0);
	  break;
	case 2:
	  p[i] = calloc (0, 16);
	  break;
	case 3:
	  p[i] = realloc (NULL, 0);
	  break;
	default:
	  p[i] = calloc (16, 0);
	}
      assert_non_null (p[i]);
      assert_int_equal ((uintptr_t) p[i] % 16, 0);
    }
  /* All distinct: sort and compare neighbours.  */
  for (int i = 1; i < N; i++)
    for (int j = i; j > 0 && (uintptr_t) p[j - 1] > (uintptr_t) p[j]; j--)
      {
	void *t = p[j];
	p[j] = p[j - 1];
	p[j - 1] = t;
      }
  for (int i = 1; i < N; i++)
    assert_ptr_not_equal (p[i - 1], p[i]);
  for (int i = 0; i < N; i++)
    free (p[i]);
  void *a = memalign (64, 0), *b = aligned_alloc (256, 0), *c = NULL;
  assert_int_equal (posix_memalign (&c, 1024, 0), 0);
  void *v = valloc (0), *pv = pvalloc (0);
  assert_non_null (a);
  assert_non_null (b);
  assert_non_null (c);
  assert_non_null (v);
  assert_non_null (pv);
  assert_int_equal ((uintptr_t) a % 64, 0);
  assert_int_equal ((uintptr_t) b % 256, 0);
  assert_int_equal ((uintptr_t) c % 1024, 0);
  assert_int_equal ((uintptr_t) v % mt_page (), 0);
  assert_int_equal ((uintptr_t) pv % mt_page (), 0);
  assert_true (malloc_usable_size (pv) >= mt_page ());	/* pvalloc (0): one page */
  free (a);
  free (b);
  free (c);
  free (v);
  free (pv);
}

static void
calloc_zeroes_reused_memory (void **state)
{
  (void) state;
  static const size_t sizes[] = { 1, 16, 100, 1000, 4000, 16384, 20000, 100000, 1 << 20,
    (size_t) 5 << 20 };
  for (int round = 0; round < 3; round++)
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
      {
	size_t n = sizes[k];
	/* Dirty blocks of that size, free them, then calloc.  */
	void *d[8];
	for (int i = 0; i < 8; i++)
	  {
	    d[i] = malloc (n);
	    assert_non_null (d[i]);
	    memset (d[i], 0xee, malloc_usable_size (d[i]));
	  }
	for (int i = 0; i < 8; i++)
	  free (d[i]);
	for (int i = 0; i < 8; i++)
	  {
	    d[i] = calloc (n, 1);
	    assert_non_null (d[i]);
	    assert_true (mt_all (d[i], n, 0));
	    memset (d[i], 0xdd, n);
	  }
	for (int i = 0; i < 8; i++)
	  free (d[i]);
	unsigned char *z = calloc (4, n / 4 + 1);
	assert_non_null (z);
	assert_true (mt_all (z, 4 * (n / 4 + 1), 0));
	free (z);
      }
}

static void
realloc_keeps_contents (void **state)
{
  (void) state;
  for (int round = 0; round < 300; round++)
    {
      size_t n = pick_size () + 1;
      unsigned char *p = malloc (n);
      assert_non_null (p);
      mt_fill (p, n, (uintptr_t) round);
      for (int step = 0; step < 12; step++)
	{
	  size_t m = pick_size ();
	  unsigned char *q = realloc (p, m);
	  if (m == 0 && q == NULL)
	    {			/* realloc (p, 0) may free and return NULL */
	      p = NULL;
	      break;
	    }
	  assert_non_null (q);
	  size_t keep = n < m ? n : m;
	  assert_int_equal (mt_check (q, keep, (uintptr_t) round), keep);
	  assert_true (malloc_usable_size (q) >= m);
	  mt_fill (q, m, (uintptr_t) round);
	  p = q;
	  n = m;
	}
      free (p);
    }
  /* Growing one byte at a time, as naive string builders do.  */
  char *s = NULL;
  for (size_t n = 1; n <= 30000; n++)
    {
      s = realloc (s, n);
      assert_non_null (s);
      s[n - 1] = (char) ('a' + n % 26);
    }
  for (size_t n = 1; n <= 30000; n++)
    assert_int_equal (s[n - 1], (char) ('a' + n % 26));
  free (s);
}

/* free and cfree keep errno: small, large, aligned blocks, NULL, and blocks
   whose free gives pages or whole slabs back.  */
static void
free_preserves_errno (void **state)
{
  (void) state;
  static const size_t sizes[] = { 0, 1, 16, 100, 1000, 16384, 16385, 100000, 1 << 20,
    (size_t) 64 << 20, (size_t) 300 << 20 };
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
    {
      void *p = malloc (sizes[k]);
      assert_non_null (p);
      errno = 12345;
      free (p);
      assert_int_equal (errno, 12345);
      p = calloc (1, sizes[k]);
      assert_non_null (p);
      errno = 12345;
      cfree (p);
      assert_int_equal (errno, 12345);
      for (size_t a = 32; a <= ((size_t) 1 << 22); a *= 8)
	{
	  p = memalign (a, sizes[k]);
	  assert_non_null (p);
	  errno = 12345;
	  free (p);
	  assert_int_equal (errno, 12345);
	}
    }
  errno = 12345;
  free (NULL);
  assert_int_equal (errno, 12345);
  cfree (NULL);
  assert_int_equal (errno, 12345);
  /* Many blocks of one class: frees that empty slabs give them back.  */
  enum { N = 20000 };
  static void *p[N];
  for (int round = 0; round < 2; round++)
    {
      for (int i = 0; i < N; i++)
	assert_non_null (p[i] = malloc (round ? 48 : 3000));
      for (int i = 0; i < N; i++)
	{
	  errno = 12345 + i;
	  free (p[i]);
	  assert_int_equal (errno, 12345 + i);
	}
    }
}

static void *
free_other_thread (void *arg)
{
  void **p = arg;
  for (int i = 0; i < 1000; i++)
    {
      errno = 777;
      free (p[i]);
      if (errno != 777)
	return (void *) 1;
    }
  return NULL;
}

/* Blocks freed by a thread that did not make them (the remote path).  */
static void
free_preserves_errno_in_other_threads (void **state)
{
  (void) state;
  static void *p[1000];
  for (int i = 0; i < 1000; i++)
    assert_non_null (p[i] = malloc ((size_t) (i % 50) * 40 + (i % 100 == 0 ? 70000 : 0)));
  pthread_t t;
  void *r = (void *) 2;
  assert_int_equal (pthread_create (&t, NULL, free_other_thread, p), 0);
  assert_int_equal (pthread_join (t, &r), 0);
  assert_null (r);
}

/* As glibc's tst-free-errno: the process is at vm.max_map_count, so that
   whatever page work of free would need a mapping of its own fails; free
   must still leave errno alone.  In a child: it leaves the address space in
   pieces.  */
static void
errno_at_map_count_child (void *arg)
{
  (void) arg;
  enum { BIG = 64 };
  void *big[BIG];
  for (int i = 0; i < BIG; i++)
    if (!(big[i] = malloc ((size_t) (4 + i % 5) << 20)))
      _exit (10);
  for (int i = 0; i < BIG; i++)
    memset (big[i], 1, 4096);
  /* Cut one region into single pages of alternating protections until the
     kernel refuses: each is a mapping of its own.  */
  size_t page = mt_page ();
  size_t len = (size_t) 1 << 30;
  char *r = mmap (NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED)
    _exit (11);
  int refused = 0;
  for (size_t off = 0; off + page <= len; off += 2 * page)
    if (mprotect (r + off, page, PROT_NONE) != 0)
      {
	refused = 1;
	break;
      }
  if (!refused)
    _exit (12);			/* vm.max_map_count is very large: proves nothing */
  for (int i = 0; i < BIG; i += 2)	/* every other block: holes that split mappings */
    {
      errno = 12345;
      free (big[i]);
      if (errno != 12345)
	_exit (13);
    }
  for (int i = 1; i < BIG; i += 2)
    {
      errno = 12345;
      free (big[i]);
      if (errno != 12345)
	_exit (14);
    }
  _exit (0);
}

static void
free_preserves_errno_when_the_system_refuses (void **state)
{
  (void) state;
  int st = mt_run_child (errno_at_map_count_child, NULL, 60);
  if (WIFEXITED (st) && WEXITSTATUS (st) == 12)
    {
      print_message ("vm.max_map_count too large to reach: skipped\n");
      skip ();
    }
  assert_child_ok (st);
}

int
main (void)
{
  mt_require_preload ();
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (malloc_family_is_mmalloc),
    cmocka_unit_test (libc_allocations_are_mmalloc_blocks),
    cmocka_unit_test (usable_size_is_all_writable),
    cmocka_unit_test (usable_size_follows_requests),
    cmocka_unit_test (malloc_zero_gives_unique_pointers),
    cmocka_unit_test (calloc_zeroes_reused_memory),
    cmocka_unit_test (realloc_keeps_contents),
    cmocka_unit_test (free_preserves_errno),
    cmocka_unit_test (free_preserves_errno_in_other_threads),
    cmocka_unit_test (free_preserves_errno_when_the_system_refuses),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
