/* test-handles.c -- descriptors as the caller holds them.  The descriptor of
   a heap that was detached, also once another heap uses what was its slot,
   and values that never were descriptors (small integers, stack and block
   addresses, a heap's base address, the library's own descriptor memory,
   misaligned values), are refused by every entry point with
   MMALLOC_EBADDESC and one report on stderr, without touching memory the
   library does not own; every other heap is left as it was.  mfree, which
   has no error to return, reports and aborts.  */
#include "testutil.h"
#include "mmprivate.h"

#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdint.h>

/* --- a thread held inside the library after its descriptor was checked ---

   This program is linked with --wrap=mm_desc_of (see the Makefile): every
   call of the library's entry points to mm_desc_of comes here.  Once armed
   for a thread, the first check of that thread that accepts its descriptor
   stops it until the test lets it go on, so that the test can act in
   between as another thread might.  */

struct mm_desc *__real_mm_desc_of (void *md);
struct mm_desc *__wrap_mm_desc_of (void *md);

static pthread_t hold_thread;
static int hold_armed;
static sem_t held, release;

struct mm_desc *
__wrap_mm_desc_of (void *md)
{
  struct mm_desc *d = __real_mm_desc_of (md);
  if (d && __atomic_load_n (&hold_armed, __ATOMIC_ACQUIRE)
      && pthread_equal (pthread_self (), hold_thread))
    {
      __atomic_store_n (&hold_armed, 0, __ATOMIC_RELEASE);
      sem_post (&held);
      while (sem_wait (&release))
	;
    }
  return d;
}

/* --- stderr captured to a file ---------------------------------------------- */

static int saved_stderr = -1;

static void
capture_begin (void)
{
  fflush (stderr);
  saved_stderr = dup (2);
  assert_true (saved_stderr >= 0);
  int fd = open (tu_path ("stderr.txt"), O_RDWR | O_CREAT | O_TRUNC, 0600);
  assert_true (fd >= 0);
  assert_int_equal (dup2 (fd, 2), 2);
  close (fd);
}

/* What was written since capture_begin, NUL-terminated.  */
static const char *
capture_end (void)
{
  static char buf[1 << 16];
  fflush (stderr);
  assert_int_equal (dup2 (saved_stderr, 2), 2);
  close (saved_stderr);
  int fd = open (tu_path ("stderr.txt"), O_RDONLY);
  assert_true (fd >= 0);
  ssize_t n = read (fd, buf, sizeof buf - 1);
  close (fd);
  assert_true (n >= 0);
  buf[n] = 0;
  return buf;
}

static int
count_lines_with (const char *text, const char *what)
{
  int n = 0;
  for (const char *p = text; (p = strstr (p, what)); p += strlen (what))
    n++;
  return n;
}

/* --- the victim: a heap that must not be touched ----------------------------- */

struct victim
{
  void *md;
  char *block;			/* 1000 bytes of tu_fill (.., 7) */
  struct mstats st;
};

static void
victim_make (struct victim *v, void *md)
{
  v->md = md;
  v->block = mmalloc (md, 1000);
  assert_non_null (v->block);
  tu_fill (v->block, 1000, 7);
  assert_int_equal (mmalloc_setkey (md, 3, v->block), 1);
  v->st = mmstats (md);
}

/* V's heap is as victim_make (or the last victim_intact) left it, and
   still works.  */
static void
victim_intact (struct victim *v)
{
  struct mstats st = mmstats (v->md);
  assert_memory_equal (&st, &v->st, sizeof st);
  assert_true (tu_holds (v->block, 1000, 7));
  assert_ptr_equal (mmalloc_getkey (v->md, 3), v->block);
  assert_null (mmalloc_getkey (v->md, 0));
  assert_int_equal (mmalloc_usable_size (v->md, v->block) >= 1000, 1);
  assert_heap_ok (v->md);
  void *p = mmalloc (v->md, 100);
  assert_non_null (p);
  mfree (v->md, p);
  v->st = mmstats (v->md);	/* as that left it */
}

static void
victim_end (struct victim *v)
{
  victim_intact (v);
  mfree (v->md, v->block);
  assert_heap_ok (v->md);
  assert_null (mmalloc_detach (v->md));
}

/* --- every entry point refuses MD ------------------------------------------ */

#define REFUSED(call, bad)						\
  do									\
    {									\
      errno = 0;							\
      if ((call) != (bad) || errno != MMALLOC_EBADDESC)			\
	{								\
	  capture_end ();						\
	  fail_msg ("%s: not refused (errno %#x)", #call, errno);	\
	}								\
      calls++;								\
    }									\
  while (0)

/* MD is refused by every entry point that takes a descriptor and has an
   error to return, each time with one report naming WHY; V, another heap,
   is left alone (its block is passed where a pointer goes).  */
static void
assert_refused (void *md, const char *why, struct victim *v)
{
  int calls = 0;
  capture_begin ();
  REFUSED (mmalloc (md, 64), NULL);
  REFUSED (mmalloc (md, 1 << 20), NULL);
  REFUSED (mcalloc (md, 4, 16), NULL);
  REFUSED (mcalloc (md, tu_hidden_size (SIZE_MAX), 2), NULL);
  REFUSED (mrealloc (md, NULL, 32), NULL);
  REFUSED (mrealloc (md, v->block, 32), NULL);
  REFUSED (mvalloc (md, 100), NULL);
  REFUSED (mmemalign (md, 64, 100), NULL);
  REFUSED (mmalloc_usable_size (md, v->block), (size_t) 0);
  REFUSED (mmalloc_setkey (md, 0, v->block), 0);
  REFUSED (mmalloc_getkey (md, 3), NULL);
  REFUSED (mmalloc_sync (md), -1);
  REFUSED (mmcheck (md, NULL), 0);
  REFUSED (mmcheckf (md, NULL, 1), 0);
  REFUSED (mmalloc_check (md), 1);
  REFUSED (mmstats (md).bytes_total, (size_t) 0);
  REFUSED (mmalloc_detach (md), md);
  errno = 0;
  int code = mmalloc_errno (md);
  calls++;
  mfree (md, NULL);		/* a free of NULL does nothing */
  const char *err = capture_end ();
  assert_int_equal (code, MMALLOC_EBADDESC);
  assert_int_equal (count_lines_with (err, "mmalloc: invalid heap descriptor"), calls);
  assert_int_equal (count_lines_with (err, why), calls);
  victim_intact (v);
}

/* --- a detached heap's descriptor -------------------------------------------- */

/* Detach A, attach B (the library reuses A's descriptor for it): A's
   descriptor is refused, detaching it again does not detach B, and B
   works on.  */
static void
stale_descriptor_after_reuse_is_refused (void **state)
{
  (void) state;
  void *a = tu_new_heap ();
  struct mm_desc *da = mm_desc_of (a);
  char *pa = mmalloc (a, 64);
  assert_non_null (pa);
  assert_null (mmalloc_detach (a));
  struct victim b;
  victim_make (&b, tu_new_heap ());
  assert_ptr_equal (mm_desc_of (b.md), da);	/* the case in point: reused */
  assert_refused (a, "(its heap was detached)", &b);
  assert_ptr_not_equal (b.md, a);
  /* Nor is the descriptor's memory, which B uses now, a descriptor.  */
  assert_refused (da, "invalid heap descriptor: pointer", &b);
  victim_end (&b);
}

/* A heap file detached and attached again: the same file at the same
   address, but the old descriptor does not name the new attachment.  */
static void
stale_descriptor_of_a_reattached_file_is_refused (void **state)
{
  (void) state;
  int fd = tu_newfile ("again.heap");
  void *a = mmalloc_attach (fd, NULL);
  assert_non_null (a);
  assert_non_null (mmalloc (a, 64));
  assert_null (mmalloc_detach (a));
  struct victim b;
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  victim_make (&b, md);
  assert_refused (a, "(its heap was detached)", &b);
  assert_ptr_not_equal (md, a);
  victim_end (&b);
}

/* Many attaches into one slot: no descriptor is issued twice, and each old
   one stays refused.  */
static void
descriptors_are_never_issued_twice (void **state)
{
  (void) state;
  enum { N = 200 };
  static void *old[N];
  for (int i = 0; i < N; i++)
    {
      old[i] = tu_new_heap ();
      for (int j = 0; j < i; j++)
	assert_ptr_not_equal (old[i], old[j]);
      assert_null (mmalloc_detach (old[i]));
    }
  capture_begin ();
  int refused = 0;
  for (int i = 0; i < N; i++)
    refused += mmalloc (old[i], 16) == NULL && errno == MMALLOC_EBADDESC;
  const char *err = capture_end ();
  assert_int_equal (refused, N);
  assert_int_equal (count_lines_with (err, "(its heap was detached)"), N);
}

/* A slot that has issued its last serial number is not used again: the
   next attach gets another descriptor, and the slot's descriptors stay
   refused.  (Reaching the end by attaching would take 2^40 attaches: the
   test moves the slot's count there.)  */
static void
a_slot_whose_serials_run_out_is_retired (void **state)
{
  (void) state;
  void *x = tu_new_heap ();
  struct mm_desc *dx = mm_desc_of (x);
  dx->serial = MM_HANDLE_SERIAL_MAX - 1;	/* as if attached that often */
  assert_null (mmalloc_detach (x));
  void *y = tu_new_heap ();	/* the last serial number of the slot */
  assert_ptr_equal (mm_desc_of (y), dx);
  assert_true (dx->serial == MM_HANDLE_SERIAL_MAX);
  struct victim v;
  victim_make (&v, y);
  assert_refused (x, "(its heap was detached)", &v);
  victim_intact (&v);
  mfree (y, v.block);
  assert_null (mmalloc_detach (y));
  struct victim w;
  victim_make (&w, tu_new_heap ());
  assert_ptr_not_equal (mm_desc_of (w.md), dx);	/* retired */
  assert_refused (y, "(its heap was detached)", &w);
  assert_refused (x, "(its heap was detached)", &w);
  victim_end (&w);
}

/* Freeing through a detached heap's descriptor, whose slot another heap
   uses now: reported and abort (free has no error to return); the block,
   of the other heap, is not freed.  */
static void
free_through_stale (void *arg)
{
  (void) arg;
  void *a = mmalloc_attach (-1, NULL);
  if (!a || mmalloc_detach (a))
    _exit (3);
  void *b = mmalloc_attach (-1, NULL);
  void *p = b ? mmalloc (b, 64) : NULL;
  if (!p)
    _exit (3);
  mfree (a, p);
  _exit (4);			/* freed, or ignored, without a report */
}

static void
free_through_wild (void *arg)
{
  void *p = mmalloc (NULL, 64);
  mfree (arg, p);
  _exit (4);
}

static void
assert_free_aborts (void (*fn) (void *), void *arg, const char *why)
{
  char err[512];
  int st = tu_child (fn, arg, err, sizeof err);
  if (!WIFSIGNALED (st) || WTERMSIG (st) != SIGABRT)
    fail_msg ("status 0x%x, stderr: %s", st, err);
  assert_non_null (strstr (err, why));
}

static void
free_through_a_stale_descriptor_aborts (void **state)
{
  (void) state;
  assert_free_aborts (free_through_stale, NULL, "invalid heap descriptor (its heap was detached)");
}

/* Threads attach, use and detach heaps at once, each keeping the
   descriptors of its detached heaps: each descriptor names its own heap
   while it is attached (the table grows under the lookups of the others),
   and every old one is refused at the end.  */
enum { RACERS = 4, ROUNDS = 150 };
static void *racer_old[RACERS][ROUNDS];

static void *
racer (void *arg)
{
  long t = (long) (intptr_t) arg;
  for (int i = 0; i < ROUNDS; i++)
    {
      void *md = mmalloc_attach (-1, NULL);
      char *p = md ? mmalloc (md, 300) : NULL;
      if (!p)
	return (void *) "attach or mmalloc failed";
      tu_fill (p, 300, (uint64_t) (t * ROUNDS + i));
      if (mmalloc_setkey (md, 1, p) != 1)
	return (void *) "setkey failed";
      sched_yield ();
      if (mmalloc_getkey (md, 1) != p || !tu_holds (p, 300, (uint64_t) (t * ROUNDS + i))
	  || mmstats (md).chunks_used != 1)
	return (void *) "another heap answered";
      if (mmalloc_detach (md))
	return (void *) "detach failed";
      racer_old[t][i] = md;
    }
  return NULL;
}

static void
concurrent_attaches_keep_descriptors_apart (void **state)
{
  (void) state;
  pthread_t th[RACERS];
  for (long t = 0; t < RACERS; t++)
    assert_int_equal (pthread_create (&th[t], NULL, racer, (void *) (intptr_t) t), 0);
  for (int t = 0; t < RACERS; t++)
    {
      void *r;
      assert_int_equal (pthread_join (th[t], &r), 0);
      if (r)
	fail_msg ("%s", (const char *) r);
    }
  capture_begin ();
  int refused = 0;
  for (int t = 0; t < RACERS; t++)
    for (int i = 0; i < ROUNDS; i++)
      refused += mmalloc_getkey (racer_old[t][i], 1) == NULL && errno == MMALLOC_EBADDESC;
  const char *err = capture_end ();
  assert_int_equal (refused, RACERS * ROUNDS);
  assert_int_equal (count_lines_with (err, "(its heap was detached)"), RACERS * ROUNDS);
}

/* Two threads detach one heap at once, the first checked but stopped before
   it acts: the second detaches it, and another heap is attached in the
   descriptor the library got back.  When the first goes on, it is refused
   (the heap it named is gone) and neither detaches the new heap nor gives
   its descriptor back to the pool a second time.  */
struct detacher
{
  void *md, *ret;
  int err;
};

static void *
detach_held (void *arg)
{
  struct detacher *t = arg;
  hold_thread = pthread_self ();
  __atomic_store_n (&hold_armed, 1, __ATOMIC_RELEASE);
  t->ret = mmalloc_detach (t->md);
  t->err = errno;
  return NULL;
}

static void
racing_detaches_of_one_heap_detach_it_once (void **state)
{
  (void) state;
  void *a = tu_new_heap ();
  struct mm_desc *da = mm_desc_of (a);
  assert_non_null (mmalloc (a, 64));
  struct detacher t = { .md = a };
  assert_int_equal (sem_init (&held, 0, 0), 0);
  assert_int_equal (sem_init (&release, 0, 0), 0);
  pthread_t th;
  assert_int_equal (pthread_create (&th, NULL, detach_held, &t), 0);
  struct timespec limit;	/* a T that never gets there fails, not hangs */
  clock_gettime (CLOCK_REALTIME, &limit);
  limit.tv_sec += 30;
  int r;
  while ((r = sem_timedwait (&held, &limit)) && errno == EINTR)
    ;
  assert_int_equal (r, 0);	/* T has checked A's descriptor */
  assert_null (mmalloc_detach (a));
  struct victim b;
  victim_make (&b, tu_new_heap ());
  assert_ptr_equal (mm_desc_of (b.md), da);	/* the case in point: reused */
  capture_begin ();
  sem_post (&release);
  assert_int_equal (pthread_join (th, NULL), 0);
  const char *err = capture_end ();
  assert_ptr_equal (t.ret, a);
  assert_int_equal (t.err, MMALLOC_EBADDESC);
  assert_int_equal (count_lines_with (err, "invalid heap descriptor (its heap was detached)"), 1);
  victim_intact (&b);
  /* The descriptor went back to the pool once: the next heap has another.  */
  struct victim c;
  victim_make (&c, tu_new_heap ());
  assert_ptr_not_equal (mm_desc_of (c.md), da);
  victim_intact (&b);
  victim_end (&c);
  victim_end (&b);
  sem_destroy (&held);
  sem_destroy (&release);
}

/* --- values that never were descriptors ----------------------------------- */

static void
wild_descriptors_are_refused (void **state)
{
  (void) state;
  struct victim v;
  victim_make (&v, tu_new_heap ());
  uintptr_t h = (uintptr_t) v.md;
  int on_stack = 0;
  /* Readable memory that starts as the old descriptors did.  */
  uint32_t *fake = mmalloc (NULL, 4096);
  assert_non_null (fake);
  memset (fake, 0x5a, 4096);
  fake[0] = MM_DESC_MAGIC;
  void *wild[] = {
    (void *) 1, (void *) 0xb, (void *) 0x10, (void *) 0x1234, (void *) 0x1000,
    &on_stack, fake, v.block, (void *) (v.block + 1),
    (void *) mm_desc_of (v.md),	/* the library's descriptor: not a handle */
    (void *) (h + 1), (void *) (h - 1), (void *) (h ^ 0x10), (void *) (h + 0x100),
    (void *) (uintptr_t) - 1, (void *) (uintptr_t) - 16,
#if UINTPTR_MAX > 0xffffffffu
    (void *) (h + ((uintptr_t) 1 << 40)),	/* a serial never issued */
    (void *) (uintptr_t) 0xdead00000000000bULL,
#endif
  };
  for (size_t i = 0; i < sizeof wild / sizeof wild[0]; i++)
    assert_refused (wild[i], "invalid heap descriptor", &v);
  assert_true (((uint32_t *) fake)[0] == MM_DESC_MAGIC);
  mfree (NULL, fake);
  victim_end (&v);
}

/* GNU mmalloc kept the descriptor at the heap's base, so old code may pass
   the base for the descriptor: refused, and the report says so.  */
static void
heap_base_is_not_a_descriptor (void **state)
{
  (void) state;
  void *base = mmalloc_findbase (0);
  assert_non_null (base);
  struct victim v;
  void *md = mmalloc_attach (-1, base);
  assert_non_null (md);
  assert_ptr_not_equal (md, base);
  victim_make (&v, md);
  assert_refused (base, "(a heap's base address, not its descriptor)", &v);
  victim_end (&v);
}

static void
free_through_a_wild_descriptor_aborts (void **state)
{
  (void) state;
  int on_stack;
  assert_free_aborts (free_through_wild, (void *) 0x1234, "invalid heap descriptor: pointer 0x1234");
  assert_free_aborts (free_through_wild, &on_stack, "invalid heap descriptor: pointer");
}

/* The NULL descriptor is unchanged: the default heap.  */
static void
null_is_still_the_default_heap (void **state)
{
  (void) state;
  void *p = mmalloc (NULL, 100);
  assert_non_null (p);
  assert_int_equal (mmalloc_errno (NULL), 0);
  assert_null (mmalloc_detach (NULL));
  mfree (NULL, p);
  assert_heap_ok (NULL);
}

int
main (int argc, char **argv)
{
  if (argc > 1)
    cmocka_set_test_filter (argv[1]);	/* one test, by name */
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (stale_descriptor_after_reuse_is_refused),
    cmocka_unit_test (stale_descriptor_of_a_reattached_file_is_refused),
    cmocka_unit_test (descriptors_are_never_issued_twice),
    cmocka_unit_test (a_slot_whose_serials_run_out_is_retired),
    cmocka_unit_test (free_through_a_stale_descriptor_aborts),
    cmocka_unit_test (concurrent_attaches_keep_descriptors_apart),
    cmocka_unit_test (racing_detaches_of_one_heap_detach_it_once),
    cmocka_unit_test (wild_descriptors_are_refused),
    cmocka_unit_test (heap_base_is_not_a_descriptor),
    cmocka_unit_test (free_through_a_wild_descriptor_aborts),
    cmocka_unit_test (null_is_still_the_default_heap),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
