/* test-garbage.c -- mmalloc_garbage: exactly the blocks no root reaches;
   only new ones in evolution mode; the roots of a whole process; reclaim
   that keeps every reachable block, across a re-attach; damage reported.  */
#include "testutil.h"
#include "mmprivate.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>
#include <sched.h>
#include <stdint.h>

struct node
{
  struct node *next;
  char *data;			/* maybe inside another block */
  uint64_t value;
};

/* What a call reported.  */
struct got
{
  size_t n;
  void *ptr[4096];
  size_t size[4096];
};

static int
collect (void *ptr, size_t size, void *arg)
{
  struct got *g = arg;
  if (g->n < 4096)
    {
      g->ptr[g->n] = ptr;
      g->size[g->n] = size;
    }
  g->n++;
  return 0;
}

static int
got_has (const struct got *g, const void *p)
{
  for (size_t i = 0; i < g->n && i < 4096; i++)
    if (g->ptr[i] == p)
      return 1;
  return 0;
}

/* The report was exactly the N blocks of WANT.  */
static void
assert_got_exactly (const struct got *g, void **want, size_t n)
{
  assert_int_equal (g->n, n);
  for (size_t i = 0; i < n; i++)
    if (!got_has (g, want[i]))
      fail_msg ("block %zu (%p) not reported", i, want[i]);
}

enum { NLIST = 300, NDROP = 40, NCYCLE = 12 };

/* A list from key 0 (with a large node, and data blocks reached by pointers
   into their middle), blocks dropped, and an unreachable cycle; the
   unreachable ones in WANT (NDROP + NCYCLE).  */
static struct node *
build (void *md, void **want)
{
  struct node *head = NULL;
  for (int i = 0; i < NLIST; i++)
    {
      struct node *n = mmalloc (md, i == NLIST / 2 ? 70000 : sizeof *n);
      char *data = mmalloc (md, i % 50 == 0 ? 9000 : 64);
      assert_non_null (n);
      assert_non_null (data);
      memset (data, 'a' + i % 26, 64);
      n->data = data + 40;	/* interior pointer */
      n->value = (uint64_t) i * 7;
      n->next = head;
      head = n;
    }
  assert_int_equal (mmalloc_setkey (md, 0, head), 1);
  for (int i = 0; i < NDROP; i++)
    {
      want[i] = mmalloc (md, i % 10 == 0 ? 20000 : (size_t) 16 + (size_t) i * 8);
      assert_non_null (want[i]);
      memset (want[i], 0, 16);
    }
  struct node *cyc[NCYCLE];
  for (int i = 0; i < NCYCLE; i++)
    {
      cyc[i] = mmalloc (md, sizeof (struct node));
      want[NDROP + i] = cyc[i];
    }
  for (int i = 0; i < NCYCLE; i++)
    {
      cyc[i]->next = cyc[(i + 1) % NCYCLE];
      cyc[i]->data = (char *) head;	/* garbage may point to live blocks */
    }
  return head;
}

static void
list_is_intact (struct node *head)
{
  int i = NLIST;
  for (struct node *n = head; n; n = n->next)
    {
      i--;
      assert_int_equal (n->value, (uint64_t) i * 7);
      assert_int_equal (n->data[-40], 'a' + i % 26);
    }
  assert_int_equal (i, 0);
}

static void
keys_reach_a_list_and_the_dropped_blocks_and_a_cycle_are_garbage (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  void *want[NDROP + NCYCLE];
  build (md, want);
  static struct got g;
  g.n = 0;
  assert_int_equal (mmalloc_garbage (md, 0, collect, &g), NDROP + NCYCLE);
  assert_got_exactly (&g, want, NDROP + NCYCLE);
  for (size_t i = 0; i < g.n; i++)
    assert_int_equal (g.size[i], mmalloc_usable_size (md, g.ptr[i]));
  /* Nothing was freed: the same again; count only with no function.  */
  assert_int_equal (mmalloc_garbage (md, 0, NULL, NULL), NDROP + NCYCLE);
  assert_int_equal (mmalloc_setkey (md, 0, NULL), 1);
  assert_int_equal (mmalloc_garbage (md, 0, NULL, NULL), NDROP + NCYCLE + 2 * NLIST);
  tu_end_heap (md);
}

static void
checked_heap_reports_the_same_and_not_the_quarantine (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  assert_int_equal (mmcheck (md, NULL), 1);
  void *want[NDROP + NCYCLE];
  build (md, want);
  void *freed = mmalloc (md, 100);
  mfree (md, freed);		/* in quarantine: not garbage */
  static struct got g;
  g.n = 0;
  assert_int_equal (mmalloc_garbage (md, 0, collect, &g), NDROP + NCYCLE);
  assert_got_exactly (&g, want, NDROP + NCYCLE);
  for (size_t i = 0; i < g.n; i++)
    assert_int_equal (g.size[i], mmalloc_usable_size (md, g.ptr[i]));
  tu_end_heap (md);
}

static void
evolution_mode_reports_only_blocks_not_reported_before (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  void *want[NDROP + NCYCLE];
  struct node *head = build (md, want);
  static struct got g;
  g.n = 0;
  assert_int_equal (mmalloc_garbage (md, MMALLOC_GARBAGE_NEW, collect, &g), NDROP + NCYCLE);
  assert_int_equal (mmalloc_garbage (md, MMALLOC_GARBAGE_NEW, NULL, NULL), 0);
  /* Unlink three nodes of the list: they, and their data, are new.  */
  void *fresh[6];
  struct node *a = head->next->next;
  for (int i = 0; i < 3; i++)
    {
      struct node *x = a->next;
      a->next = x->next;
      fresh[2 * i] = x;
      fresh[2 * i + 1] = x->data - 40;
    }
  g.n = 0;
  assert_int_equal (mmalloc_garbage (md, MMALLOC_GARBAGE_NEW, collect, &g), 6);
  assert_got_exactly (&g, fresh, 6);
  assert_int_equal (mmalloc_garbage (md, MMALLOC_GARBAGE_NEW, NULL, NULL), 0);
  /* Without the flag every one is reported again.  */
  assert_int_equal (mmalloc_garbage (md, 0, NULL, NULL), NDROP + NCYCLE + 6);
  tu_end_heap (md);
}

static void
reclaim_frees_exactly_the_garbage_and_the_list_survives_a_reattach (void **state)
{
  (void) state;
  void *md = tu_new_file_heap ("gc.heap");
  void *want[NDROP + NCYCLE];
  build (md, want);
  struct mstats before = mmstats (md);
  assert_int_equal (mmalloc_garbage (md, MMALLOC_GARBAGE_RECLAIM, NULL, NULL), NDROP + NCYCLE);
  struct mstats after = mmstats (md);
  assert_int_equal (after.chunks_used, before.chunks_used - (NDROP + NCYCLE));
  assert_int_equal (mmalloc_garbage (md, 0, NULL, NULL), 0);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  md = tu_reattach (tu_path ("gc.heap"));
  assert_int_equal (mmstats (md).chunks_used, after.chunks_used);
  assert_int_equal (after.chunks_used, 2 * NLIST);
  list_is_intact (mmalloc_getkey (md, 0));
  assert_int_equal (mmalloc_garbage (md, 0, NULL, NULL), 0);
  tu_end_heap (md);
}

static void
reclaim_is_refused_on_a_read_only_heap (void **state)
{
  (void) state;
  void *md = tu_new_file_heap ("ro.heap");
  void *want[NDROP + NCYCLE];
  build (md, want);
  assert_null (mmalloc_detach (md));
  int fd = open (tu_path ("ro.heap"), O_RDONLY);
  md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  assert_int_equal (mmalloc_garbage (md, MMALLOC_GARBAGE_RECLAIM, NULL, NULL), (size_t) -1);
  assert_int_equal (mmalloc_errno (md), EROFS);
  /* Reading it is fine, and the tables are not in the file.  */
  assert_int_equal (mmalloc_garbage (md, 0, NULL, NULL), NDROP + NCYCLE);
  assert_null (mmalloc_detach (md));
  assert_int_equal (mmalloc_garbage (md, 0, NULL, NULL), (size_t) -1);
  assert_int_equal (errno, MMALLOC_EBADDESC);
}

/* What mmtool does: the file held by a writer, inspected through a private
   view; the garbage and the walk are the writer's, and the file is not
   changed by a byte.  */
static int
count_walk (void *ptr, size_t size, void *arg)
{
  (void) ptr;
  (void) size;
  ++*(size_t *) arg;
  return 0;
}

static void
inspect_view_of_a_held_file_finds_the_garbage_and_writes_nothing (void **state)
{
  (void) state;
  void *md = tu_new_file_heap ("view.heap");
  void *want[NDROP + NCYCLE];
  build (md, want);
  size_t nblocks = mmstats (md).chunks_used;
  assert_null (mmalloc_detach (md));
  const char *path = tu_path ("view.heap");
  struct tu_holder h = tu_hold_start (path, 0);
  struct tu_snap before;
  tu_snap_take (path, &before);
  int fd = open (path, O_RDONLY);
  assert_true (fd >= 0);
  md = mmalloc_attach_flags (fd, NULL, MMALLOC_INSPECT);
  close (fd);
  assert_non_null (md);
  assert_int_equal (mmalloc_garbage (md, 0, NULL, NULL), NDROP + NCYCLE);
  assert_int_equal (mmalloc_garbage (md, MMALLOC_GARBAGE_RECLAIM, NULL, NULL), (size_t) -1);
  size_t walked = 0;
  assert_int_equal (mmalloc_walk (md, count_walk, &walked), 0);
  assert_int_equal (walked, nblocks);
  assert_null (mmalloc_detach (md));
  assert_true (tu_snap_same (path, &before));
  free (before.bytes);
  tu_hold_stop (h);
}

static void
unknown_flags_are_refused (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  assert_int_equal (mmalloc_garbage (md, 8, NULL, NULL), (size_t) -1);
  assert_int_equal (mmalloc_errno (md), EINVAL);
  tu_end_heap (md);
}

/* A key holds a block of pointers wider than the mark stack: the rescan
   after an overflow still reaches every block.  */
static void
marking_survives_a_mark_stack_overflow (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  enum { WIDE = 100000 };
  void **fan = mmalloc (md, WIDE * sizeof *fan);
  assert_non_null (fan);
  for (int i = 0; i < WIDE; i++)
    {
      void **leaf = mmalloc (md, 32);
      assert_non_null (leaf);
      leaf[0] = mmalloc (md, 16);	/* one level more */
      fan[i] = leaf;
    }
  assert_int_equal (mmalloc_setkey (md, 3, fan), 1);
  void *lost = mmalloc (md, 48);
  static struct got g;
  g.n = 0;
  assert_int_equal (mmalloc_garbage (md, 0, collect, &g), 1);
  assert_ptr_equal (g.ptr[0], lost);
  tu_end_heap (md);
}

/* --- The whole process ---------------------------------------------------- */

static void *held_by_global;

struct holder
{
  void *md;
  pthread_barrier_t *ready, *done;
  void *block;			/* encoded: ~pointer */
  int in_register;
};

/* Allocate a block and hold it on this thread's stack only.  */
static void *
hold_on_stack (void *arg)
{
  struct holder *h = arg;
  void *volatile local = mmalloc (h->md, 200);
  h->block = (void *) ~(uintptr_t) local;
  pthread_barrier_wait (h->ready);
  pthread_barrier_wait (h->done);
  mfree (h->md, local);
  return NULL;
}

#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
static int spin_stop, spinning;

/* Allocate a block and hold it in a register only, spinning in asm; say
   so (SPINNING) once the pointer is decoded into the register.  */
static void *
hold_in_register (void *arg)
{
  struct holder *h = arg;
  uintptr_t enc = ~(uintptr_t) mmalloc (h->md, 300);
  h->block = (void *) enc;
  __asm__ volatile ("notq %0\n"
		    "movl $1, %2\n"
		    "1: pause\n"
		    "cmpl $0, %1\n"
		    "je 1b\n"
		    "notq %0\n":"+r" (enc):"m" (spin_stop), "m" (spinning):"memory", "cc");
  h->block = (void *) enc;
  return NULL;
}
#define HAVE_REGISTER_TEST 1
#endif

/* Blocks made and dropped in a frame that is gone when the detector runs.  */
__attribute__ ((noinline)) static void
drop_some (void *md, uintptr_t *enc, int n)
{
  for (int i = 0; i < n; i++)
    enc[i] = ~(uintptr_t) mmalloc (md, 88);
}

static void
process_roots_hold_globals_stacks_registers_and_other_heaps (void **state)
{
  (void) state;
  void *md = tu_new_heap (), *other = tu_new_heap ();
  held_by_global = mmalloc (md, 100);
  void **in_other = mmalloc (other, 64);
  in_other[0] = mmalloc (md, 120);	/* only another heap's block holds it */
  assert_int_equal (mmalloc_setkey (other, 0, in_other), 1);
  in_other = NULL;

  pthread_barrier_t ready, done;
  pthread_barrier_init (&ready, NULL, 2);
  pthread_barrier_init (&done, NULL, 2);
  struct holder hs = { md, &ready, &done, NULL, 0 };
  pthread_t ts;
  assert_int_equal (pthread_create (&ts, NULL, hold_on_stack, &hs), 0);
  pthread_barrier_wait (&ready);
#ifdef HAVE_REGISTER_TEST
  struct holder hr = { md, NULL, NULL, NULL, 1 };
  pthread_t tr;
  assert_int_equal (pthread_create (&tr, NULL, hold_in_register, &hr), 0);
  while (!__atomic_load_n (&spinning, __ATOMIC_ACQUIRE))
    sched_yield ();
#endif
  enum { NDROPPED = 20 };
  uintptr_t dropped[NDROPPED];
  drop_some (md, dropped, NDROPPED);

  static struct got g;
  g.n = 0;
  size_t n = mmalloc_garbage (md, MMALLOC_GARBAGE_PROCESS, collect, &g);
  assert_int_not_equal (n, (size_t) -1);
  assert_false (got_has (&g, held_by_global));
  assert_false (got_has (&g, (void *) ~(uintptr_t) hs.block));
  assert_false (got_has (&g, ((void **) mmalloc_getkey (other, 0))[0]));
#ifdef HAVE_REGISTER_TEST
  assert_false (got_has (&g, (void *) ~(uintptr_t) hr.block));
#endif
  /* The blocks that only encoded values name are garbage; as for any
     conservative collector, the last one or two may still be named by a
     dead register or stack slot (seen under ThreadSanitizer).  */
  int found = 0;
  for (int i = 0; i < NDROPPED; i++)
    found += got_has (&g, (void *) ~dropped[i]);
  if (found < NDROPPED - 2)
    fail_msg ("only %d of %d dropped blocks reported", found, NDROPPED);

  /* With the keys alone, every one of them is garbage.  */
  g.n = 0;
  mmalloc_garbage (md, 0, collect, &g);
  assert_true (got_has (&g, held_by_global));
  assert_true (got_has (&g, (void *) ~(uintptr_t) hs.block));

#ifdef HAVE_REGISTER_TEST
  __atomic_store_n (&spin_stop, 1, __ATOMIC_RELEASE);
  assert_int_equal (pthread_join (tr, NULL), 0);
  void *reg_block = (void *) ~(uintptr_t) hr.block;
  assert_non_null (reg_block);
  mfree (md, reg_block);
#endif
  pthread_barrier_wait (&done);
  assert_int_equal (pthread_join (ts, NULL), 0);
  pthread_barrier_destroy (&ready);
  pthread_barrier_destroy (&done);
  mfree (md, held_by_global);
  held_by_global = NULL;
  tu_end_heap (other);
  tu_end_heap (md);
}

static void
process_reclaim_frees_only_what_nothing_holds (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  held_by_global = mmalloc (md, 100);
  uintptr_t dropped[10];
  drop_some (md, dropped, 10);
  struct mstats before = mmstats (md);
  size_t n = mmalloc_garbage (md, MMALLOC_GARBAGE_PROCESS | MMALLOC_GARBAGE_RECLAIM, NULL, NULL);
#ifdef __SANITIZE_THREAD__
  /* ThreadSanitizer's own thread never takes the stop signal: its registers
     are not seen, so nothing may be freed.  */
  assert_int_equal (n, (size_t) -1);
  assert_int_equal (mmalloc_errno (md), EAGAIN);
  n = 0;
#else
  assert_true (n >= 8 && n != (size_t) -1);	/* see above: 8 of 10 at least */
#endif
  assert_int_equal (mmstats (md).chunks_used, before.chunks_used - n);
  memset (held_by_global, 1, 100);
  mfree (md, held_by_global);	/* still allocated: not freed twice */
  held_by_global = NULL;
  tu_end_heap (md);
}

/* In a child: damage the page map, then look for garbage.  */
static void
garbage_damaged (void *arg)
{
  (void) arg;
  void *md = mmalloc_attach (-1, NULL);
  void *big = mmalloc (md, 100000);
  mmalloc_setkey (md, 0, big);
  char *pg = (char *) ((uintptr_t) big & ~(uintptr_t) (MM_PAGE - 1));
  while (memcmp (pg, MM_MAGIC, 8))
    pg -= MM_PAGE;
  struct mm_desc fake = { .base = pg };
  *mm_pm (&fake, mm_off (&fake, big) >> MM_PAGE_SHIFT) = PM_MAKE (PM_LARGE, PM_HEAD | PM_NMASK);
  if (mmalloc_garbage (md, 0, NULL, NULL) != (size_t) -1 || mmalloc_errno (md) != MMALLOC_ECORRUPT)
    _exit (3);
  if (mmalloc_garbage (md, MMALLOC_GARBAGE_PROCESS, NULL, NULL) != (size_t) -1)
    _exit (4);
  _exit (0);
}

static void
damaged_heap_gives_an_error_not_a_crash (void **state)
{
  (void) state;
  char err[512];
  int st = tu_child (garbage_damaged, NULL, err, sizeof err);
  if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
    fail_msg ("status %#x, stderr: %s", st, err);
  assert_non_null (strstr (err, "damaged"));
}

/* A writable mapping of a file may be longer than its file (or the file cut
   since): its pages past the end get SIGBUS when read, so the process
   roots are read around them; its other pages are still roots.  */
static void
process_roots_skip_file_pages_past_the_end (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  int fd = open (tu_path ("roots.map"), O_RDWR | O_CREAT | O_TRUNC, 0600);
  assert_true (fd >= 0);
  assert_int_equal (ftruncate (fd, 4096), 0);
  void **map = mmap (NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  assert_true (map != MAP_FAILED);
  map[0] = mmalloc (md, 100);	/* held only by the mapping's first page */
  assert_non_null (map[0]);
  uintptr_t held = ~(uintptr_t) map[0];

  static struct got g;
  g.n = 0;
  size_t n = mmalloc_garbage (md, MMALLOC_GARBAGE_PROCESS, collect, &g);
  assert_int_not_equal (n, (size_t) -1);
  assert_false (got_has (&g, (void *) ~held));
  assert_int_equal (munmap (map, 3 * 4096), 0);
  close (fd);
  unlink (tu_path ("roots.map"));
  tu_end_heap (md);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (keys_reach_a_list_and_the_dropped_blocks_and_a_cycle_are_garbage),
    cmocka_unit_test (checked_heap_reports_the_same_and_not_the_quarantine),
    cmocka_unit_test (evolution_mode_reports_only_blocks_not_reported_before),
    cmocka_unit_test (reclaim_frees_exactly_the_garbage_and_the_list_survives_a_reattach),
    cmocka_unit_test (reclaim_is_refused_on_a_read_only_heap),
    cmocka_unit_test (inspect_view_of_a_held_file_finds_the_garbage_and_writes_nothing),
    cmocka_unit_test (unknown_flags_are_refused),
    cmocka_unit_test (marking_survives_a_mark_stack_overflow),
    cmocka_unit_test (process_roots_hold_globals_stacks_registers_and_other_heaps),
    cmocka_unit_test (process_reclaim_frees_only_what_nothing_holds),
    cmocka_unit_test (process_roots_skip_file_pages_past_the_end),
    cmocka_unit_test (damaged_heap_gives_an_error_not_a_crash),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
