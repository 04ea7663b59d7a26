/* test-killpoints.c -- kill -9 at every metadata update of each operation.

   Linked with libmmalloc-internal.a (built with kill points), where the k-th
   update of region metadata kills the process.  For each operation below and k = 1, 2, ... until the operation
   completes, a child attaches a copy of a prepared heap file, arms the
   countdown and runs the operation; the parent then attaches the file (which
   recovers it) and checks the crash model: mmalloc_check finds nothing, every
   published block is allocated with its contents intact, at most the block
   of the interrupted call was leaked or lost its free, and every block the
   page map and the slab bitmaps hold can be freed without a report.  Every
   operation runs on a plain heap and on one under mmcheck, whose check
   headers and guard bytes must come through as well.

   make check kills at the first update of each operation and at every
   SAMPLE-th after it (a different residue for each operation, so that over
   the operations every position in the sequence is tried); make stress
   (MMALLOC_STRESS) at every one.  */
#include "testutil.h"
#define MM_KILLPOINTS 1
#include "mmprivate.h"

#define NB 64
#define KMAX 5000
#define SAMPLE 5

struct blk
{
  unsigned char *p;
  uint64_t size;
};

struct table
{
  struct blk b[NB];
};

static void
fill (struct blk *b, int i)
{
  for (uint64_t k = 0; k < b->size; k++)
    b->p[k] = (unsigned char) (i * 31 + k);
}

static int
intact (const struct blk *b, int i)
{
  for (uint64_t k = 0; k < b->size; k++)
    if (b->p[k] != (unsigned char) (i * 31 + k))
      return 0;
  return 1;
}

static void
put (void *md, struct table *t, int i, size_t size)
{
  t->b[i].p = mmalloc (md, size);
  assert_non_null (t->b[i].p);
  t->b[i].size = size;
  fill (&t->b[i], i);
}

static void
drop (void *md, struct table *t, int i)
{
  mfree (md, t->b[i].p);
  t->b[i].p = NULL;
}

static size_t template_used;
static int checked;		/* the heaps are under mmcheck */
static int older;		/* ... with slabs as an older version left them */

/* The prepared heap: small slots, large blocks with free runs on both sides,
   a block followed by free pages, two sparse slabs of one class.  */
static void
make_template (void)
{
  void *md = tu_new_file_heap ("tmpl.heap");
  if (checked)
    assert_int_equal (mmcheck (md, NULL), 1);
  struct table *t = mcalloc (md, 1, sizeof *t);
  assert_non_null (t);
  mmalloc_setkey (md, 0, t);
  for (int i = 0; i < 10; i++)
    put (md, t, i, 100);
  put (md, t, 12, 65536);
  put (md, t, 13, 65536);
  put (md, t, 14, 65536);
  put (md, t, 15, 262144);
  put (md, t, 16, 1 << 20);
  put (md, t, 17, 100);
  t->b[22].p = mmemalign (md, 64, 200);	/* an aligned slot */
  assert_non_null (t->b[22].p);
  t->b[22].size = 200;
  fill (&t->b[22], 22);
  void *fillers[200];
  for (int i = 0; i < 200; i++)
    fillers[i] = mmalloc (md, 2048);
  t->b[20].p = fillers[0];
  t->b[20].size = 2048;
  fill (&t->b[20], 20);
  t->b[21].p = fillers[199];
  t->b[21].size = 2048;
  fill (&t->b[21], 21);
  for (int i = 1; i < 199; i++)
    mfree (md, fillers[i]);
  drop (md, t, 12);
  drop (md, t, 14);
  drop (md, t, 16);		/* free pages after block 15 */
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  /* Counted as attached again: blocks in quarantine (checked) are freed by
     the detach.  */
  md = tu_reattach (tu_path ("tmpl.heap"));
  template_used = mmstats (md).chunks_used;
  assert_null (mmalloc_detach (md));
}

/* Copy FROM to TO, leaving holes where FROM reads as zeros: most of a heap
   file does, and each kill point copies one.  */
static void
copy (const char *from, const char *to)
{
  int in = open (tu_path (from), O_RDONLY), out = open (tu_path (to), O_RDWR | O_CREAT | O_TRUNC, 0600);
  assert_true (in >= 0 && out >= 0);
  static const char zero[4096];
  char buf[4096];
  ssize_t r;
  off_t size = 0;
  while ((r = read (in, buf, sizeof buf)) > 0)
    {
      if (r != (ssize_t) sizeof buf || memcmp (buf, zero, sizeof buf))
	assert_int_equal (pwrite (out, buf, (size_t) r, size), r);
      size += r;
    }
  assert_int_equal (ftruncate (out, size), 0);
  close (in);
  close (out);
}

enum when { DURING_OP, DURING_DETACH, DURING_ATTACH };

struct scenario
{
  const char *name;
  void (*op) (void *md, struct table *t);
  int target;			/* the block the operation frees or moves, -1 */
  int dmin, dmax;		/* allowed change of chunks_used */
  enum when when;
};

/* The operations' blocks stay in the heap; only the kill matters.  */
static void
keep (void *p)
{
  (void) p;
}

static void op_small_alloc (void *md, struct table *t) { (void) t; keep (mmalloc (md, 100)); }
static void op_small_new_slab (void *md, struct table *t) { (void) t; keep (mmalloc (md, 3000)); }
static void op_small_free (void *md, struct table *t) { mfree (md, t->b[1].p); }
static void op_slab_empties (void *md, struct table *t) { mfree (md, t->b[20].p); }
static void op_large_free_merge (void *md, struct table *t) { mfree (md, t->b[13].p); }
static void op_large_split (void *md, struct table *t) { (void) t; keep (mmalloc (md, 40000)); }
static void op_large_grow_heap (void *md, struct table *t) { (void) t; keep (mmalloc (md, 8 << 20)); }
static void op_large_new_window (void *md, struct table *t) { (void) t; keep (mmalloc (md, 20 << 20)); }
static void op_realloc_grow (void *md, struct table *t) { keep (mrealloc (md, t->b[15].p, 600000)); }
static void op_realloc_shrink (void *md, struct table *t) { keep (mrealloc (md, t->b[15].p, 100000)); }
static void op_realloc_move (void *md, struct table *t) { keep (mrealloc (md, t->b[3].p, 900)); }
/* A block at the top, free pages after it up to the top, grows past a new
   window: the heap grows under it and the leaves go to the free run below
   (block 16's).  */
static void op_realloc_top_window (void *md, struct table *t)
{
  (void) t;
  char *p = mmalloc (md, 8 << 20);
  if (p)
    keep (mrealloc (md, p, 17 << 20));
}
static void op_aligned (void *md, struct table *t) { (void) t; keep (mmemalign (md, 1 << 20, 5000)); }
static void op_aligned_small (void *md, struct table *t) { (void) t; keep (mmemalign (md, 64, 200)); }
static void op_realloc_slot (void *md, struct table *t) { keep (mrealloc (md, t->b[4].p, 110)); }
static void op_setkey (void *md, struct table *t) { (void) t; mmalloc_setkey (md, 5, md); }
static void op_none (void *md, struct table *t) { (void) md; (void) t; }
/* Checked: blocks into quarantine (a slot, an aligned slot, pages), which
   the detach empties.  */
static void op_free_four (void *md, struct table *t)
{
  drop (md, t, 5);
  drop (md, t, 22);
  drop (md, t, 6);
  drop (md, t, 15);
}

static const struct scenario scenarios[] = {
  { "small alloc from a partial slab", op_small_alloc, -1, 0, 1, DURING_OP },
  { "small alloc making a new slab", op_small_new_slab, -1, 0, 1, DURING_OP },
  { "small free", op_small_free, 1, -1, 0, DURING_OP },
  { "free that empties a slab", op_slab_empties, 20, -1, 0, DURING_OP },
  { "large free merging both sides", op_large_free_merge, 13, -1, 0, DURING_OP },
  { "large alloc splitting a run", op_large_split, -1, 0, 1, DURING_OP },
  { "large alloc growing the heap", op_large_grow_heap, -1, 0, 1, DURING_OP },
  { "large alloc reaching a new window", op_large_new_window, -1, 0, 1, DURING_OP },
  { "realloc growing in place", op_realloc_grow, 15, 0, 0, DURING_OP },
  { "realloc shrinking in place", op_realloc_shrink, 15, 0, 0, DURING_OP },
  { "realloc moving a block", op_realloc_move, 3, 0, 1, DURING_OP },
  { "realloc at the top, new windows", op_realloc_top_window, -1, 0, 1, DURING_OP },
  { "aligned alloc splitting a run", op_aligned, -1, 0, 1, DURING_OP },
  { "aligned alloc of a slot", op_aligned_small, -1, 0, 1, DURING_OP },
  { "realloc within its slot", op_realloc_slot, 4, 0, 0, DURING_OP },
  { "setkey", op_setkey, -1, 0, 0, DURING_OP },
  { "detach", op_none, -1, 0, 0, DURING_DETACH },
  { "detach after frees", op_free_four, -1, -4, -4, DURING_DETACH },
  { "attach that recovers a killed heap", op_none, -1, 0, 1, DURING_ATTACH },
};

static void
run_child (const struct scenario *sc, long k)
{
  int fd = open (tu_path ("work.heap"), O_RDWR);
  if (sc->when == DURING_ATTACH)
    mm_kp_left = k;
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  if (!md)
    _exit (3);
  struct table *t = mmalloc_getkey (md, 0);
  if (sc->when == DURING_OP)
    mm_kp_left = k;
  sc->op (md, t);
  if (sc->when == DURING_DETACH)
    mm_kp_left = k;
  mmalloc_detach (md);
  _exit (mm_kp_left > 0 ? 0 : 4);
}

static long reports;

static void
count_report (void)
{
  reports++;
}

/* Free every block the page map and the slab bitmaps say is allocated, the
   ones the killed call leaked too, as a program that kept their pointers
   would (on a checked heap, recovery has emptied the quarantine: none of
   them was freed already).  The number of frees that reported a problem.  */
static long
free_everything (void *md)
{
  struct mm_desc *d = mm_desc_of (md);
  static void *live[4096];
  size_t n = 0;
  for (uint64_t pg = MM_HDR_PAGES; pg < d->hdr->top;)
    {
      uint32_t e = mm_pm_get (d, pg);
      char *start = d->base + (pg << MM_PAGE_SHIFT);
      uint64_t len = 1;
      if (PM_KIND (e) == PM_LARGE || PM_KIND (e) == PM_FREE)
	{
	  assert_true (e & PM_HEAD);
	  len = e & PM_NMASK;
	  if (PM_KIND (e) == PM_LARGE && n < 4096)	/* past the header or lead */
	    live[n++] = start + (e & PM_CHECKED ? mm_chk_lead (start, len << MM_PAGE_SHIFT) : 0);
	}
      else if (PM_KIND (e) == PM_SLAB)
	{
	  const struct mm_class *c = &mm_classes[PM_SLAB_CLS (e)];
	  struct mm_slab *s = (struct mm_slab *) start;
	  for (uint32_t i = 0; i < c->nobj; i++)
	    if ((s->bits[i / 64] & ~mm_rbits (s)[i / 64]) & (1ULL << (i % 64)) && n < 4096)
	      {
		char *slot = start + c->objoff + (size_t) i * c->size;
		live[n++] = slot + (s->flags & MM_SLAB_CHECKED ? mm_chk_lead (slot, c->size) : 0);
	      }
	  len = c->pages;
	}
      pg += len;
    }
  assert_true (n < 4096);
  reports = 0;
  void (*was) (void) = d->abortfunc;
  d->abortfunc = count_report;	/* a report returns: the free is abandoned */
  for (size_t i = 0; i < n; i++)
    mfree (md, live[i]);
  d->abortfunc = was;
  return reports;
}

/* Attach the work file (recovering it) and check the crash model.  */
static void
verify (const struct scenario *sc, long k)
{
  int fd = open (tu_path ("work.heap"), O_RDWR);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  if (!md)
    fail_msg ("%s, k=%ld: re-attach failed: %s", sc->name, k, mmalloc_strerror (errno));
  int problems = mmalloc_check (md);
  if (problems)
    fail_msg ("%s, k=%ld: mmalloc_check found %d problems", sc->name, k, problems);
  struct table *t = mmalloc_getkey (md, 0);
  for (int i = 0; i < NB; i++)
    {
      if (!t->b[i].p || i == sc->target)
	continue;
      if (mmalloc_usable_size (md, t->b[i].p) < t->b[i].size || !intact (&t->b[i], i))
	fail_msg ("%s, k=%ld: block %d lost or damaged", sc->name, k, i);
    }
  long delta = (long) mmstats (md).chunks_used - (long) template_used;
  if (delta < sc->dmin || delta > sc->dmax)
    fail_msg ("%s, k=%ld: %ld blocks more than before (allowed %d..%d)", sc->name, k, delta,
	      sc->dmin, sc->dmax);
  long bad = free_everything (md);
  if (bad)
    fail_msg ("%s, k=%ld: %ld blocks of the heap could not be freed", sc->name, k, bad);
  assert_heap_ok (md);
  void *p = mmalloc (md, 5000);	/* and the heap works */
  assert_non_null (p);
  mfree (md, p);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

/* A heap killed in the middle of an allocation: the input of the recovery
   scenario.  */
static void
make_killed (void)
{
  copy ("tmpl.heap", "killed.heap");
  pid_t pid = fork ();
  if (pid == 0)
    {
      int fd = open (tu_path ("killed.heap"), O_RDWR);
      void *md = mmalloc_attach (fd, NULL);
      mm_kp_left = 9;
      keep (mmalloc (md, 40000));
      _exit (5);
    }
  tu_wait_killed (pid);
}

/* Make the checked template look as a version before the poisoning of
   freed blocks left it: a file of format 1, whose slabs are not marked
   MM_SLAB_POISON, free slots holding whatever was there (zeros, for slots
   never used).  */
static void
age_template (void)
{
  void *md = tu_reattach (tu_path ("tmpl.heap"));
  struct mm_desc *d = mm_desc_of (md);
  d->hdr->version = MM_FORMAT_V1;	/* hdr_sum reads it as that anyway */
  for (uint64_t pg = MM_HDR_PAGES; pg < d->hdr->top; pg++)
    {
      uint32_t e = mm_pm_get (d, pg);
      if (PM_KIND (e) != PM_SLAB || PM_SLAB_OFF (e))
	continue;
      const struct mm_class *c = &mm_classes[PM_SLAB_CLS (e)];
      struct mm_slab *s = (struct mm_slab *) (d->base + (pg << MM_PAGE_SHIFT));
      s->flags &= (uint16_t) ~MM_SLAB_POISON;
      for (uint32_t i = 0; i < c->nobj; i++)
	if (!(s->bits[i / 64] & (1ULL << (i % 64))))
	  memset ((char *) s + c->objoff + (size_t) i * c->size, 0, c->size);
    }
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

static void
every_kill_point (void)
{
  make_template ();
  if (older)
    age_template ();
  make_killed ();
  long total = 0;
  for (size_t s = 0; s < sizeof scenarios / sizeof scenarios[0]; s++)
    {
      const struct scenario *sc = &scenarios[s];
      if (older && sc->op != op_small_alloc && sc->op != op_aligned_small
	  && sc->op != op_realloc_slot)
	continue;		/* those that use slots of the older slabs */
      long k, last = 0, tried = 0;	/* the last kill point tried, how many */
      for (k = 1; k <= KMAX; k++)
	{
	  if (k > 1 && !tu_stress () && k % SAMPLE != (long) s % SAMPLE)
	    continue;
	  copy (sc->when == DURING_ATTACH ? "killed.heap" : "tmpl.heap", "work.heap");
	  pid_t pid = tu_fork ();
	  if (pid == 0)
	    run_child (sc, k);
	  int st;
	  assert_int_equal (waitpid (pid, &st, 0), pid);
	  if (WIFEXITED (st) && WEXITSTATUS (st) == 0)
	    break;		/* the operation finished before the k-th update */
	  if (!WIFSIGNALED (st) || WTERMSIG (st) != SIGKILL)
	    fail_msg ("%s, k=%ld: child status 0x%x", sc->name, k, st);
	  verify (sc, k);
	  last = k;
	  tried++;
	}
      if (k > KMAX)
	fail_msg ("%s: still not finished after %d kill points", sc->name, KMAX);
      if (k == 1)
	fail_msg ("%s: no kill point reached: the test proves nothing", sc->name);
      if (last == k - 1)
	print_message ("%s%-36s %4ld kill points, each recovered\n",
		       older ? "older: " : checked ? "checked: " : "", sc->name, tried);
      else
	print_message ("%s%-36s %4ld kill points (a sample of %ld to %ld), each recovered\n",
		       older ? "older: " : checked ? "checked: " : "", sc->name, tried, last, k - 1);
      total += tried;
    }
  assert_true (total > (older ? 10 : 100) / (tu_stress () ? 1 : SAMPLE));
}

static void
every_kill_point_of_every_operation_recovers (void **state)
{
  (void) state;
  checked = 0;
  every_kill_point ();
}

static void
every_kill_point_of_every_operation_recovers_when_checked (void **state)
{
  (void) state;
  checked = 1;
  every_kill_point ();
}

static void
every_kill_point_recovers_on_checked_slabs_of_an_older_file (void **state)
{
  (void) state;
  checked = older = 1;
  every_kill_point ();
  older = 0;
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (every_kill_point_of_every_operation_recovers),
    cmocka_unit_test (every_kill_point_of_every_operation_recovers_when_checked),
    cmocka_unit_test (every_kill_point_recovers_on_checked_slabs_of_an_older_file),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
