/* test-misuse.c -- a catalogue of misuse kinds, each of which a heap under
   mmcheck must report, naming the kind, at or before the next operation on
   the block concerned.

   Every case runs in a forked child on a new checked heap whose abort
   function exits with status 77.  The child writes "ptr 0x<address>" on
   stderr, misuses that pointer, then makes the next operation on the block
   (free it, reuse its memory, check the heap); if it gets past that operation
   it writes "late" and goes on.  The parent asserts the exit status, one
   report naming the kind, and that "late" never came.  Cases that only
   mmalloc_check can see end with its count: exit status 76 when it found
   something.  */
#include "testutil.h"

#include <pthread.h>
#include <stdbool.h>

/* How the block is made.  */
enum make
{
  MK_MALLOC,			/* mmalloc (size) */
  MK_CALLOC,			/* mcalloc (size, 1) */
  MK_VALLOC,			/* mvalloc (size) */
  MK_ALIGN,			/* mmemalign (align, size) */
  MK_GROWN,			/* mmalloc (size / 3), then mrealloc to size */
  MK_SHRUNK,			/* mmalloc (size * 3), then mrealloc to size */
};

/* What is done wrong, and what comes next.  */
enum op
{
  OVERRUN,			/* p[size] changed, then free */
  OVERRUN_WORD,			/* the 8 bytes after p[size - 1] zeroed, then free */
  OVERRUN_FAR,			/* p[size + 300] changed (a guard byte far
				   from the end), then free */
  UNDERRUN,			/* p[-1] changed, then free */
  UNDERRUN_FAR,			/* p[-16] changed, then free */
  UNDERRUN_LEAD,		/* p[-1000] changed (in a page-aligned block's
				   lead), then free */
  DOUBLE,			/* free, free */
  DOUBLE_REUSED,		/* free, allocate the same size, free the old pointer */
  DOUBLE_CHURN,			/* free, 50 allocations and frees of the size, free */
  DOUBLE_FLUSHED,		/* free, then so many frees that p left the
				   quarantine, free p again */
  DOUBLE_MOVED,			/* mrealloc moves the block, then free the old pointer */
  DOUBLE_INTERIOR,		/* free, then free p + 16 */
  DOUBLE_OTHER_HEAP,		/* free, then free p again on another heap */
  WAF_START,			/* free, p[0] changed, then reuse the size */
  WAF_MIDDLE,			/* free, p[size / 2] changed, then reuse */
  WAF_END,			/* free, p[size - 1] changed, then reuse */
  WAF_FLUSHED,			/* free, flush the quarantine, p[size / 2]
				   changed, then reuse */
  WAF_MOVED,			/* mrealloc moves the block, p[0] changed
				   through the old pointer, then reuse */
  FREE_INTERIOR,		/* free p + 16 */
  FREE_PAGE_INTERIOR,		/* free p + 8192 */
  FREE_UNALIGNED,		/* free p + 1 */
  FREE_BEFORE,			/* free p - 16 (aligned blocks: inside the block) */
  REALLOC_FREED,		/* free, then mrealloc p */
  REALLOC_INTERIOR,		/* mrealloc p + 16 */
  REALLOC_OVERRUN,		/* p[size] changed, then mrealloc */
  USABLE_FREED,			/* free, then mmalloc_usable_size p */
  CHECK_OVERRUN,		/* p[size] changed, then mmalloc_check */
  CHECK_UNDERRUN,		/* p[-1] changed, then mmalloc_check */
  CHECK_OVERRUN_FAR,		/* p[size + 300] changed, then mmalloc_check */
  CHECK_WAF,			/* free, p[size / 2] changed, then mmalloc_check */
  FREE_STACK,			/* free the address of a local */
  FREE_GLOBAL,			/* free the address of a static object */
  FREE_WILD,			/* free 0x123450 */
  FREE_LIBC,			/* free a pointer of the C library's malloc */
  FREE_NEIGHBOUR_OVERRUN,	/* overrun p into the next block by 16
				   bytes, then free that block */
};

struct mcase
{
  enum op op;
  enum make make;
  size_t size, align;
  const char *phrase;		/* the kind, as the report must name it */
};

#define AFTER_FREE "write after free"
#define TWICE "double free"
#define PAST "write past the end"
#define BEFORE "write before the block"
#define NOT_START "not the start of a block"
#define FREED "use after free"

static const struct mcase cases[] = {
  /* Double frees.  */
  { DOUBLE, MK_MALLOC, 24, 0, TWICE },
  { DOUBLE, MK_MALLOC, 1000, 0, TWICE },
  { DOUBLE, MK_MALLOC, 20000, 0, TWICE },
  { DOUBLE, MK_MALLOC, 100000, 0, TWICE },
  { DOUBLE, MK_ALIGN, 100, 64, TWICE },
  { DOUBLE, MK_VALLOC, 100, 0, TWICE },
  { DOUBLE_REUSED, MK_MALLOC, 24, 0, TWICE },
  { DOUBLE_REUSED, MK_MALLOC, 5000, 0, TWICE },
  { DOUBLE_REUSED, MK_MALLOC, 100000, 0, TWICE },
  { DOUBLE_REUSED, MK_ALIGN, 100, 64, TWICE },
  { DOUBLE_REUSED, MK_VALLOC, 5000, 0, TWICE },
  { DOUBLE_CHURN, MK_MALLOC, 100, 0, TWICE },
  { DOUBLE_FLUSHED, MK_MALLOC, 100, 0, "freed twice" },
  { DOUBLE_MOVED, MK_MALLOC, 100, 0, TWICE },
  { DOUBLE_INTERIOR, MK_MALLOC, 100, 0, NOT_START },
  { DOUBLE_OTHER_HEAP, MK_MALLOC, 100, 0, "outside the heap" },
  /* Frees of pointers that were never blocks.  */
  { FREE_INTERIOR, MK_MALLOC, 100, 0, NOT_START },
  { FREE_INTERIOR, MK_MALLOC, 20000, 0, NOT_START },
  { FREE_INTERIOR, MK_MALLOC, 100000, 0, NOT_START },
  { FREE_INTERIOR, MK_ALIGN, 100, 64, NOT_START },
  { FREE_INTERIOR, MK_VALLOC, 100, 0, NOT_START },
  { FREE_BEFORE, MK_ALIGN, 100, 64, NOT_START },
  { FREE_BEFORE, MK_ALIGN, 100, 4096, NOT_START },
  { FREE_PAGE_INTERIOR, MK_MALLOC, 100000, 0, "not handed out" },
  { FREE_UNALIGNED, MK_MALLOC, 100, 0, "misaligned" },
  { FREE_STACK, MK_MALLOC, 100, 0, "outside the heap" },
  { FREE_GLOBAL, MK_MALLOC, 100, 0, "outside the heap" },
  { FREE_WILD, MK_MALLOC, 100, 0, "outside the heap" },
  { FREE_LIBC, MK_MALLOC, 100, 0, "outside the heap" },
  /* Overruns, of every kind of block.  */
  { OVERRUN, MK_MALLOC, 1, 0, PAST },
  { OVERRUN, MK_MALLOC, 24, 0, PAST },
  { OVERRUN, MK_MALLOC, 100, 0, PAST },
  { OVERRUN, MK_MALLOC, 1000, 0, PAST },
  { OVERRUN, MK_MALLOC, 20000, 0, PAST },
  { OVERRUN, MK_MALLOC, 100000, 0, PAST },
  { OVERRUN, MK_CALLOC, 100, 0, PAST },
  { OVERRUN, MK_GROWN, 3000, 0, PAST },
  { OVERRUN, MK_SHRUNK, 3000, 0, PAST },
  { OVERRUN, MK_VALLOC, 100, 0, PAST },
  { OVERRUN, MK_VALLOC, 4096, 0, PAST },
  { OVERRUN, MK_ALIGN, 100, 32, PAST },
  { OVERRUN, MK_ALIGN, 100, 64, PAST },
  { OVERRUN, MK_ALIGN, 5000, 64, PAST },
  { OVERRUN, MK_ALIGN, 100, 256, PAST },
  { OVERRUN, MK_ALIGN, 100, 4096, PAST },
  { OVERRUN, MK_ALIGN, 10000, 8192, PAST },
  { OVERRUN_WORD, MK_MALLOC, 15, 0, PAST },
  { OVERRUN_FAR, MK_MALLOC, 20000, 0, PAST },	/* slot of 20480 bytes */
  { OVERRUN_FAR, MK_MALLOC, 100000, 0, PAST },
  { OVERRUN_FAR, MK_ALIGN, 100, 4096, PAST },
  { OVERRUN_WORD, MK_ALIGN, 24, 64, PAST },
  { FREE_NEIGHBOUR_OVERRUN, MK_MALLOC, 100, 0, BEFORE },
  { REALLOC_OVERRUN, MK_MALLOC, 100, 0, PAST },
  { REALLOC_OVERRUN, MK_ALIGN, 100, 4096, PAST },
  /* Underruns.  */
  { UNDERRUN, MK_MALLOC, 100, 0, BEFORE },
  { UNDERRUN, MK_MALLOC, 100000, 0, BEFORE },
  { UNDERRUN, MK_CALLOC, 100, 0, BEFORE },
  { UNDERRUN, MK_VALLOC, 100, 0, BEFORE },
  { UNDERRUN, MK_ALIGN, 100, 64, BEFORE },
  { UNDERRUN_FAR, MK_ALIGN, 100, 4096, BEFORE },
  { UNDERRUN_LEAD, MK_ALIGN, 100, 4096, BEFORE },
  { UNDERRUN_LEAD, MK_VALLOC, 100, 0, BEFORE },
  { UNDERRUN, MK_ALIGN, 100, 32, BEFORE },
  { UNDERRUN, MK_ALIGN, 100, 4096, BEFORE },
  { UNDERRUN, MK_GROWN, 3000, 0, BEFORE },
  { UNDERRUN, MK_SHRUNK, 100000, 0, BEFORE },
  /* Writes after free, found before the memory is handed out again.  */
  { WAF_START, MK_MALLOC, 24, 0, AFTER_FREE },
  { WAF_MIDDLE, MK_MALLOC, 100, 0, AFTER_FREE },
  { WAF_END, MK_MALLOC, 1000, 0, AFTER_FREE },
  { WAF_MIDDLE, MK_MALLOC, 20000, 0, AFTER_FREE },
  { WAF_START, MK_MALLOC, 100000, 0, AFTER_FREE },
  { WAF_END, MK_MALLOC, 100000, 0, AFTER_FREE },
  { WAF_START, MK_ALIGN, 100, 64, AFTER_FREE },
  { WAF_MIDDLE, MK_VALLOC, 5000, 0, AFTER_FREE },
  { WAF_MIDDLE, MK_CALLOC, 300, 0, AFTER_FREE },
  { WAF_MOVED, MK_MALLOC, 100, 0, AFTER_FREE },
  { WAF_FLUSHED, MK_MALLOC, 100, 0, AFTER_FREE },
  { WAF_FLUSHED, MK_ALIGN, 100, 64, AFTER_FREE },
  /* Other calls on freed or bad pointers.  */
  { REALLOC_FREED, MK_MALLOC, 100, 0, FREED },
  { REALLOC_FREED, MK_MALLOC, 100000, 0, FREED },
  { REALLOC_INTERIOR, MK_MALLOC, 100, 0, NOT_START },
  { USABLE_FREED, MK_MALLOC, 100, 0, FREED },
  /* Found by the whole-heap check.  */
  { CHECK_OVERRUN, MK_MALLOC, 100, 0, PAST },
  { CHECK_OVERRUN, MK_ALIGN, 100, 64, PAST },
  { CHECK_OVERRUN, MK_VALLOC, 100, 0, PAST },
  { CHECK_UNDERRUN, MK_VALLOC, 100, 0, BEFORE },
  { CHECK_OVERRUN_FAR, MK_MALLOC, 100000, 0, PAST },
  { CHECK_OVERRUN_FAR, MK_ALIGN, 100, 4096, PAST },
  { CHECK_WAF, MK_MALLOC, 100, 0, AFTER_FREE },
  { CHECK_WAF, MK_MALLOC, 100000, 0, AFTER_FREE },
  { CHECK_WAF, MK_ALIGN, 100, 4096, AFTER_FREE },
};
#define NCASES (sizeof cases / sizeof cases[0])

static const char *const op_names[] = {
  [OVERRUN] = "overrun",
  [OVERRUN_WORD] = "overrun by a word",
  [UNDERRUN] = "underrun",
  [UNDERRUN_FAR] = "underrun far",
  [UNDERRUN_LEAD] = "underrun into an aligned block's lead",
  [OVERRUN_FAR] = "overrun far past the end",
  [DOUBLE] = "double free",
  [DOUBLE_REUSED] = "double free after reuse",
  [DOUBLE_CHURN] = "double free after churn",
  [DOUBLE_FLUSHED] = "double free after the quarantine",
  [DOUBLE_MOVED] = "double free after realloc moved it",
  [DOUBLE_INTERIOR] = "double free of an interior pointer",
  [DOUBLE_OTHER_HEAP] = "double free on another heap",
  [WAF_START] = "write after free at the start",
  [WAF_MIDDLE] = "write after free in the middle",
  [WAF_END] = "write after free at the end",
  [WAF_FLUSHED] = "write after free after the quarantine",
  [WAF_MOVED] = "write through the pointer realloc moved",
  [FREE_INTERIOR] = "free of an interior pointer",
  [FREE_PAGE_INTERIOR] = "free of a page inside a block",
  [FREE_UNALIGNED] = "free of an unaligned pointer",
  [FREE_BEFORE] = "free of a pointer before the block",
  [REALLOC_FREED] = "realloc of a freed block",
  [REALLOC_INTERIOR] = "realloc of an interior pointer",
  [REALLOC_OVERRUN] = "realloc of an overrun block",
  [USABLE_FREED] = "usable size of a freed block",
  [CHECK_OVERRUN] = "overrun found by mmalloc_check",
  [CHECK_UNDERRUN] = "underrun found by mmalloc_check",
  [CHECK_OVERRUN_FAR] = "far overrun found by mmalloc_check",
  [CHECK_WAF] = "write after free found by mmalloc_check",
  [FREE_STACK] = "free of a stack address",
  [FREE_GLOBAL] = "free of a static object",
  [FREE_WILD] = "free of a wild pointer",
  [FREE_LIBC] = "free of a C library pointer",
  [FREE_NEIGHBOUR_OVERRUN] = "overrun into the next block",
};

static const char *const make_names[] = {
  [MK_MALLOC] = "mmalloc",
  [MK_CALLOC] = "mcalloc",
  [MK_VALLOC] = "mvalloc",
  [MK_ALIGN] = "mmemalign",
  [MK_GROWN] = "grown by mrealloc",
  [MK_SHRUNK] = "shrunk by mrealloc",
};

static char global_object[64] __attribute__ ((aligned (16)));

static void
say_ptr (const void *p)
{
  dprintf (2, "ptr 0x%jx\n", (uintmax_t) (uintptr_t) p);
}

/* The misuse got past the operation that had to find it.  */
static void
late (void)
{
  dprintf (2, "late\n");
}

static char *
make_block (void *md, const struct mcase *c)
{
  char *p = NULL;
  switch (c->make)
    {
    case MK_MALLOC:
      p = mmalloc (md, c->size);
      break;
    case MK_CALLOC:
      p = mcalloc (md, c->size, 1);
      break;
    case MK_VALLOC:
      p = mvalloc (md, c->size);
      break;
    case MK_ALIGN:
      p = mmemalign (md, c->align, c->size);
      break;
    case MK_GROWN:
    case MK_SHRUNK:
      p = mmalloc (md, c->make == MK_GROWN ? c->size / 3 : c->size * 3);
      p = p ? mrealloc (md, p, c->size) : NULL;
      break;
    }
  if (!p || (c->align && (uintptr_t) p % c->align)
      || (c->make == MK_VALLOC && (uintptr_t) p % 4096))
    _exit (92);
  return p;
}

/* Does [Q, Q + QN) meet [P, P + PN)?  */
static bool
overlaps (const char *q, size_t qn, const char *p, size_t pn)
{
  return q < p + pn && p < q + qn;
}

/* Make blocks like C's, keeping every other one, until one reuses [P, P + N):
   handing P's memory out again is the operation that must find what was
   done to it.  */
static void
reuse (void *md, const struct mcase *c, const char *p, size_t n)
{
  for (int i = 0; i < 20000; i++)
    {
      char *q = make_block (md, c);
      if (overlaps (q, c->size, p, n))
	return;
      if (i % 2)
	mfree (md, q);
    }
  _exit (98);			/* never reused: the test is wrong */
}

/* Free many blocks, so that the one freed before them leaves any quarantine.  */
static void
flush (void *md, size_t size)
{
  enum { N = 3000 };
  static void *v[N];
  for (int i = 0; i < N; i++)
    if (!(v[i] = mmalloc (md, size)))
      _exit (93);
  for (int i = 0; i < N; i++)
    mfree (md, v[i]);
}

static void
misuse (void *arg)
{
  const struct mcase *c = arg;
  void *md = mmalloc_attach (-1, NULL);
  if (!md)
    _exit (90);
  if (mmcheck (md, tu_abort77) != 1)
    _exit (91);
  char *p = make_block (md, c);
  size_t n = c->size;
  memset (p, 0x11, n);
  char local[32] __attribute__ ((aligned (16)));
  switch (c->op)
    {
    case OVERRUN:
    case OVERRUN_FAR:
      say_ptr (p);
      p[c->op == OVERRUN ? n : n + 300] ^= 0x40;
      mfree (md, p);
      break;
    case OVERRUN_WORD:
      say_ptr (p);
      memset (p + n, 0, 8);
      mfree (md, p);
      break;
    case UNDERRUN:
    case UNDERRUN_FAR:
    case UNDERRUN_LEAD:
      say_ptr (p);
      p[c->op == UNDERRUN ? -1 : c->op == UNDERRUN_FAR ? -16 : -1000] ^= 0x40;
      mfree (md, p);
      break;
    case FREE_NEIGHBOUR_OVERRUN:
      {
	/* Two neighbours, the second right after the first.  */
	char *q = make_block (md, c);
	char *lo = p < q ? p : q, *hi = p < q ? q : p;
	if ((size_t) (hi - lo) > 4 * n)
	  _exit (94);
	memset (lo + n, 0x33, (size_t) (hi - lo) - n);	/* to the next block's start */
	say_ptr (hi);
	mfree (md, hi);
	break;
      }
    case DOUBLE:
      mfree (md, p);
      say_ptr (p);
      mfree (md, p);
      break;
    case DOUBLE_REUSED:
      {
	mfree (md, p);
	char *q = make_block (md, c);
	memset (q, 0x22, n);
	say_ptr (p);
	mfree (md, p);
	break;
      }
    case DOUBLE_CHURN:
      mfree (md, p);
      for (int i = 0; i < 50; i++)
	mfree (md, make_block (md, c));
      say_ptr (p);
      mfree (md, p);
      break;
    case DOUBLE_FLUSHED:
      mfree (md, p);
      flush (md, n);
      say_ptr (p);
      mfree (md, p);
      break;
    case DOUBLE_MOVED:
      {
	char *q = mrealloc (md, p, 50000);
	if (!q || q == p)
	  _exit (95);
	say_ptr (p);
	mfree (md, p);
	break;
      }
    case DOUBLE_INTERIOR:
      mfree (md, p);
      say_ptr (p + 16);
      mfree (md, p + 16);
      break;
    case DOUBLE_OTHER_HEAP:
      {
	void *md2 = mmalloc_attach (-1, NULL);
	if (!md2 || mmcheck (md2, tu_abort77) != 1)
	  _exit (96);
	mfree (md, p);
	say_ptr (p);
	mfree (md2, p);
	break;
      }
    case WAF_START:
    case WAF_MIDDLE:
    case WAF_END:
    case WAF_FLUSHED:
    case WAF_MOVED:
      {
	size_t at = c->op == WAF_START || c->op == WAF_MOVED ? 0 : c->op == WAF_END ? n - 1 : n / 2;
	if (c->op != WAF_MOVED)
	  mfree (md, p);
	else if (mrealloc (md, p, 50000) == p)
	  _exit (95);
	if (c->op == WAF_FLUSHED)
	  flush (md, n);
	say_ptr (p);
	p[at] = 0x5a;
	reuse (md, c, p, n);
	break;
      }
    case FREE_INTERIOR:
      say_ptr (p + 16);
      mfree (md, p + 16);
      break;
    case FREE_PAGE_INTERIOR:
      say_ptr (p + 8192);
      mfree (md, p + 8192);
      break;
    case FREE_UNALIGNED:
      say_ptr (p + 1);
      mfree (md, p + 1);
      break;
    case FREE_BEFORE:
      say_ptr (p - 16);
      mfree (md, p - 16);
      break;
    case REALLOC_FREED:
      mfree (md, p);
      say_ptr (p);
      if (mrealloc (md, p, n + 10) || errno != EINVAL)
	_exit (97);
      break;
    case REALLOC_INTERIOR:
      say_ptr (p + 16);
      if (mrealloc (md, p + 16, n + 10))
	_exit (97);
      break;
    case REALLOC_OVERRUN:
      say_ptr (p);
      p[n] ^= 0x40;
      if (mrealloc (md, p, n * 3))
	_exit (97);
      break;
    case USABLE_FREED:
      mfree (md, p);
      say_ptr (p);
      if (mmalloc_usable_size (md, p))
	_exit (97);
      break;
    case CHECK_OVERRUN:
    case CHECK_OVERRUN_FAR:
    case CHECK_UNDERRUN:
    case CHECK_WAF:
      say_ptr (p);
      if (c->op == CHECK_OVERRUN)
	p[n] ^= 0x40;
      else if (c->op == CHECK_OVERRUN_FAR)
	p[n + 300] ^= 0x40;
      else if (c->op == CHECK_UNDERRUN)
	p[-1] ^= 0x40;
      else
	{
	  mfree (md, p);
	  p[n / 2] ^= 0x40;
	}
      _exit (mmalloc_check (md) ? 76 : 0);
    case FREE_STACK:
      memset (local, 0, sizeof local);
      say_ptr (local);
      mfree (md, local);
      break;
    case FREE_GLOBAL:
      say_ptr (global_object);
      mfree (md, global_object);
      break;
    case FREE_WILD:
      say_ptr ((void *) 0x123450);
      mfree (md, (void *) 0x123450);
      break;
    case FREE_LIBC:
      {
	void *q = malloc (100);
	say_ptr (q);
	mfree (md, q);
	break;
      }
    }
  late ();
  _exit (mmalloc_check (md) ? 76 : 0);
}

/* Run case C; NULL if it was reported as it must be, else what went wrong.  */
static const char *
run (const struct mcase *c, char *err, size_t errlen)
{
  int st = tu_child (misuse, (void *) c, err, errlen);
  int check = c->op == CHECK_OVERRUN || c->op == CHECK_OVERRUN_FAR
    || c->op == CHECK_UNDERRUN || c->op == CHECK_WAF;
  uintmax_t ptr;
  int used = 0;
  if (sscanf (err, "ptr 0x%jx\n%n", &ptr, &used) != 1 || !used)
    return "the child did not get to the misuse";
  const char *report = err + used;
  if (!WIFEXITED (st) || WEXITSTATUS (st) != (check ? 76 : 77))
    return strstr (report, "late") ? "not reported before the next operation" : "not reported";
  if (strstr (report, "late"))
    return "not reported before the next operation";
  if (strncmp (report, "mmalloc: ", 9) || !strstr (report, c->phrase))
    return "the report does not name the kind";
  /* A write into a slot that left the quarantine is found when the slot is
     handed out again, and reported with the pointer a block of 16-byte
     alignment would have there.  */
  uintmax_t named, lo = c->op == WAF_FLUSHED ? ptr - c->align : ptr;
  const char *at = strstr (report, ": pointer 0x");
  if (!check && (!at || sscanf (at, ": pointer 0x%jx", &named) != 1 || named < lo || named > ptr
		 || strchr (report, '\n')[1]))
    return "not one report naming the pointer";
  return NULL;
}

static void
every_kind_of_misuse_is_reported (void **state)
{
  (void) state;
  char err[4096];
  unsigned missed = 0;
  for (size_t i = 0; i < NCASES; i++)
    {
      const struct mcase *c = &cases[i];
      const char *why = run (c, err, sizeof err);
      if (!why)
	continue;
      missed++;
      print_message ("case %zu: %s of %s (%zu bytes, alignment %zu): %s; stderr:\n%s", i,
		     op_names[c->op], make_names[c->make], c->size, c->align, why, err);
    }
  print_message ("%zu of %zu kinds of misuse reported\n", NCASES - missed, NCASES);
  assert_int_equal (missed, 0);
}

/* Correct use of the same blocks is never reported, and checks clean.  */
static void
correct_use_is_not_reported (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  assert_int_equal (mmcheck (md, tu_abort77), 1);
  for (size_t i = 0; i < NCASES; i++)
    {
      const struct mcase *c = &cases[i];
      char *p = make_block (md, c), *q = make_block (md, c);
      memset (p, 0x11, c->size);
      memset (q, 0x22, c->size);
      assert_int_equal (mmalloc_usable_size (md, p), c->size);
      mfree (md, p);
      q = mrealloc (md, q, c->size + 1);
      assert_non_null (q);
      q[c->size] = 1;
      mfree (md, q);
    }
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

/* --- the quarantine -------------------------------------------------------- */

/* The quarantine's bounds, as the manual gives them.  */
#define QUAR_BLOCKS 1024
#define QUAR_BYTES (4 << 20)
#define QUAR_BLOCK_MAX (1 << 20)

static size_t
used (void *md)
{
  return mmstats (md).chunks_used;
}

static void *
attach_file (const char *name)
{
  int fd = open (tu_path (name), O_RDWR);
  assert_true (fd >= 0);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  return md;
}

static int faults;

static void
count_fault (void)
{
  faults++;
}

/* Free P (a misuse, since every use here is one) with stderr going to ERR;
   the abort function must have run once.  */
static void
misfree (void *md, void *p, char *err, size_t n)
{
  int fd = tu_newfile ("stderr.out"), saved = dup (2);
  assert_true (saved >= 0);
  assert_int_equal (dup2 (fd, 2), 2);
  int before = faults;
  mfree (md, p);
  assert_int_equal (dup2 (saved, 2), 2);
  close (saved);
  ssize_t got = pread (fd, err, n - 1, 0);
  close (fd);
  err[got > 0 ? got : 0] = 0;
  assert_int_equal (faults, before + 1);
}

/* P is in quarantine (a second free says so), or not.  */
static bool
quarantined (void *md, void *p)
{
  char err[512];
  misfree (md, p, err, sizeof err);
  return strstr (err, "double free (") != NULL;
}

/* Freed blocks stay in quarantine up to the bounds in blocks and bytes, and
   are not counted as used; larger blocks bypass it; detach gives every
   quarantined block back.  */
static void
quarantine_is_bounded_and_emptied_by_detach (void **state)
{
  (void) state;
  int fd = tu_newfile ("bounds.heap");
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  assert_int_equal (mmcheck (md, count_fault), 1);
  enum { N = 3000 };
  static void *v[N];
  size_t live = used (md);
  for (int i = 0; i < N; i++)
    assert_non_null (v[i] = mmalloc (md, 100));
  for (int i = 0; i < N; i++)
    mfree (md, v[i]);
  assert_int_equal (used (md), live);
  assert_true (quarantined (md, v[N - QUAR_BLOCKS]));
  assert_false (quarantined (md, v[N - QUAR_BLOCKS - 1]));
  /* Blocks of 200000 bytes take 49 pages each: 20 of them fit in 4 MiB.  */
  for (int i = 0; i < 40; i++)
    assert_non_null (v[i] = mmalloc (md, 200000));
  for (int i = 0; i < 40; i++)
    mfree (md, v[i]);
  assert_int_equal (used (md), live);
  int keep = QUAR_BYTES / (49 * 4096);
  assert_true (quarantined (md, v[40 - keep]));
  assert_false (quarantined (md, v[40 - keep - 1]));
  /* A block above the largest quarantined size is given back at once.  */
  void *huge = mmalloc (md, QUAR_BLOCK_MAX + 1);
  assert_non_null (huge);
  mfree (md, huge);
  assert_false (quarantined (md, huge));
  assert_int_equal (used (md), live);
  assert_heap_ok (md);
  /* Nothing stays allocated once detached.  */
  assert_null (mmalloc_detach (md));
  md = attach_file ("bounds.heap");
  assert_int_equal (used (md), live);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  unlink (tu_path ("bounds.heap"));
  unlink (tu_path ("stderr.out"));
}

struct kept
{
  char *p[8];
};

/* A process dies with blocks in quarantine: the next attach frees each of
   them once; live blocks are untouched.  */
static void
quarantine_survives_kill9 (void **state)
{
  (void) state;
  int fd = tu_newfile ("kill.heap");
  pid_t pid = tu_fork ();
  if (pid == 0)
    {
      void *md = mmalloc_attach (fd, NULL);
      if (!md || mmcheck (md, tu_abort77) != 1)
	_exit (3);
      struct kept *k = mmalloc (md, sizeof *k);
      static const size_t sizes[8] = { 24, 100, 1000, 20000, 100000, 5000, 64, 300 };
      for (int i = 0; i < 8; i++)
	{
	  k->p[i] = i == 5 ? mvalloc (md, sizes[i]) : i == 6 ? mmemalign (md, 64, sizes[i])
	    : mmalloc (md, sizes[i]);
	  tu_fill (k->p[i], sizes[i], (uint64_t) i);
	}
      mmalloc_setkey (md, 0, k);
      for (int i = 0; i < 600; i++)
	{			/* quarantined: small, aligned, large */
	  mfree (md, mmalloc (md, (size_t) (i % 7) * 40));
	  if (i % 50 == 0)
	    mfree (md, mmemalign (md, i % 100 ? 64 : 4096, 200));
	  if (i % 100 == 0)
	    mfree (md, mmalloc (md, 150000));
	}
      raise (SIGKILL);
      _exit (4);
    }
  tu_wait_killed (pid);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  assert_heap_ok (md);
  assert_int_equal (used (md), 9);	/* the table and its eight blocks */
  struct kept *k = mmalloc_getkey (md, 0);
  static const size_t sizes[8] = { 24, 100, 1000, 20000, 100000, 5000, 64, 300 };
  for (int i = 0; i < 8; i++)
    {
      assert_int_equal (mmalloc_usable_size (md, k->p[i]), sizes[i]);
      assert_true (tu_holds (k->p[i], sizes[i], (uint64_t) i));
    }
  /* What was in quarantine is free memory in the free state: handed out
     again without a report.  */
  for (int i = 0; i < 2000; i++)
    {
      char *q = mmalloc (md, (size_t) (i % 7) * 40);
      assert_non_null (q);
      if (i % 2)
	mfree (md, q);
    }
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  unlink (tu_path ("kill.heap"));
}

/* Threads that allocate, free, and free each other's blocks on one checked
   heap: no report, and a clean heap.  */
#define NT 4
#define SLOTS 64

struct shared
{
  void *md;
  char *slot[SLOTS];
  pthread_mutex_t lock;
};

static void *
churn (void *arg)
{
  struct shared *sh = arg;
  uint64_t r = (uint64_t) (uintptr_t) &r;
  for (int i = 0; i < 20000; i++)
    {
      r = tu_mix (r + (uint64_t) i);
      size_t n = r % 16 ? r % 3000 : 40000 + r % 100000;
      char *p = r % 11 == 0 ? mmemalign (sh->md, 64, n) : mmalloc (sh->md, n);
      if (!p)
	return "allocation failed";
      memset (p, 0x5c, n);
      pthread_mutex_lock (&sh->lock);
      unsigned k = (unsigned) (r >> 20) % SLOTS;
      char *old = sh->slot[k];
      sh->slot[k] = p;
      pthread_mutex_unlock (&sh->lock);
      if (old)
	mfree (sh->md, old);
    }
  return NULL;
}

static void
threads_share_the_quarantine (void **state)
{
  (void) state;
  static struct shared sh;
  sh.md = mmalloc_attach (-1, NULL);
  assert_non_null (sh.md);
  assert_int_equal (mmcheck (sh.md, tu_abort77), 1);
  pthread_mutex_init (&sh.lock, NULL);
  pthread_t t[NT];
  for (int i = 0; i < NT; i++)
    assert_int_equal (pthread_create (&t[i], NULL, churn, &sh), 0);
  for (int i = 0; i < NT; i++)
    {
      void *res;
      assert_int_equal (pthread_join (t[i], &res), 0);
      assert_null (res);
    }
  assert_heap_ok (sh.md);
  for (int k = 0; k < SLOTS; k++)
    mfree (sh.md, sh.slot[k]);
  assert_heap_ok (sh.md);
  assert_null (mmalloc_detach (sh.md));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (correct_use_is_not_reported),
    cmocka_unit_test (every_kind_of_misuse_is_reported),
    cmocka_unit_test (quarantine_is_bounded_and_emptied_by_detach),
    cmocka_unit_test (quarantine_survives_kill9),
    cmocka_unit_test (threads_share_the_quarantine),
  };
  int r = cmocka_run_group_tests (tests, NULL, NULL);
  tu_rm_tree (tu_dir ());
  return r;
}
