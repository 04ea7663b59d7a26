/* test-addrspace.c -- where heaps go in the address space, and how much of
   it they hold.

   - a heap without a base never asks for a fixed mapping where a
     sanitizer's mmap interceptor would drop the hint (ThreadSanitizer and
     MemorySanitizer then map at address 0): emulated here by an mmap of our
     own that drops hints outside an application range, as they do;
   - a file heap without a base attaches, and re-attaches in this process
     and in another one (the same test, under a TSan build, is the real
     thing);
   - under RLIMIT_AS (set in a forked child): a new file heap without a base
     attaches and re-attaches later; a default heap is made with 2 MiB of
     room; growth past the limit fails with ENOMEM and leaves the heap
     usable; a limit lowered after heaps exist still lets threads start and
     mmap work;
   - a heap that shrank gives the address space it no longer needs back.  */

#include "testutil.h"
#include "mmprivate.h"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#if defined __SANITIZE_ADDRESS__ || defined __SANITIZE_THREAD__
#define SANITIZED 1
#elif defined __has_feature
#if __has_feature (address_sanitizer) || __has_feature (thread_sanitizer) \
  || __has_feature (memory_sanitizer)
#define SANITIZED 1
#endif
#endif

/* --- a sanitizer's mmap, emulated ------------------------------------------

   The application ranges of ThreadSanitizer's older x86-64 layout, in
   short: below 512 GiB, and from 85 TiB up.  A hint elsewhere is dropped
   (as TSan and MSan do); a fixed mapping there is refused; a result there
   would be fatal ("mmap at bad address").  The library is linked in
   statically, so its mmap calls come here.  */

#ifndef SANITIZED
static int emulating;
static int forced_hints, bad_results;

#define APP_LO_END 0x8000000000ULL
#define APP_HI_BEG 0x550000000000ULL

static int
outside_app (uintptr_t a, size_t len)
{
  return (a >= APP_LO_END && a < APP_HI_BEG)
    || (a + len - 1 >= APP_LO_END && a + len - 1 < APP_HI_BEG);
}

void *
mmap (void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
  if (emulating && addr && outside_app ((uintptr_t) addr, len))
    {
      if (flags & MAP_FIXED)
	{
	  errno = EINVAL;
	  return MAP_FAILED;
	}
      if (flags & MAP_FIXED_NOREPLACE)
	{			/* the hint dropped, the flag kept: address 0 */
	  forced_hints++;
	  errno = EPERM;
	  return MAP_FAILED;
	}
      addr = NULL;
    }
  long r = syscall (SYS_mmap, addr, len, prot, flags, fd, off);
  if (r == -1)
    return MAP_FAILED;
  if (emulating && outside_app ((uintptr_t) r, len))
    bad_results++;
  return (void *) r;
}
#endif

static void
attach_store_detach (const char *name, void *base, const char *text)
{
  int fd = tu_newfile (name);
  void *md = mmalloc_attach (fd, base);
  assert_non_null (md);
  char *p = mmalloc (md, 1 << 20);
  assert_non_null (p);
  strcpy (p, text);
  assert_int_equal (mmalloc_setkey (md, 0, p), 1);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  assert_int_equal (close (fd), 0);
}

/* Attach NAME again (at its recorded base), find TEXT at key 0, and grow
   the heap by GROW bytes.  */
static void
reattach_and_find (const char *name, const char *text, size_t grow)
{
  int fd = open (tu_path (name), O_RDWR);
  assert_true (fd >= 0);
  void *md = mmalloc_attach (fd, NULL);
  assert_non_null (md);
  char *p = mmalloc_getkey (md, 0);
  assert_non_null (p);
  assert_string_equal (p, text);
  if (grow)
    {
      void *q = mmalloc (md, grow);
      assert_non_null (q);
      mfree (md, q);
    }
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  assert_int_equal (close (fd), 0);
}

static void
base_outside_the_application_range_is_never_forced (void **state)
{
  (void) state;
#ifdef SANITIZED
  skip ();
#else
  emulating = 1;
  char *base = mmalloc_findbase (0);
  void *anon = mmalloc_attach (-1, NULL);
  int fd = tu_newfile ("emulated.heap");
  void *md = mmalloc_attach (fd, NULL);
  emulating = 0;
  assert_int_equal (forced_hints, 0);
  assert_int_equal (bad_results, 0);
  assert_non_null (base);
  assert_false (outside_app ((uintptr_t) base, MM_SPAN_MAX));
  assert_non_null (anon);
  assert_non_null (md);
  assert_false (outside_app ((uintptr_t) mm_desc_of (md)->base, MM_SPAN_MAX));
  void *p = mmalloc (md, 100);
  assert_non_null (p);
  strcpy (p, "inside the application range");
  assert_int_equal (mmalloc_setkey (md, 0, p), 1);
  assert_null (mmalloc_detach (md));
  assert_int_equal (close (fd), 0);
  tu_end_heap (anon);
  emulating = 1;
  reattach_and_find ("emulated.heap", "inside the application range", 0);
  emulating = 0;
  assert_int_equal (forced_hints + bad_results, 0);
#endif
}

static void
reattach_in_a_child (void *arg)
{
  reattach_and_find (arg, "found again", 0);
}

/* The heap file's base is chosen by the library; it comes back here and in
   another process.  */
static void
file_heap_without_base_reattaches (void **state)
{
  (void) state;
  attach_store_detach ("nobase.heap", NULL, "found again");
  reattach_and_find ("nobase.heap", "found again", 4 << 20);
  char err[512];
  int st = tu_child (reattach_in_a_child, "nobase.heap", err, sizeof err);
  if (!WIFEXITED (st) || WEXITSTATUS (st))
    fail_msg ("child: %s", err);
}

/* --- RLIMIT_AS ----------------------------------------------------------- */

enum
{ SKIPPED = 3 };

/* In a child: limit the address space to LIMIT bytes.  Not under a
   sanitizer, whose shadow takes terabytes.  */
static void
limit_as (uint64_t limit)
{
#ifdef SANITIZED
  (void) limit;
  _exit (SKIPPED);
#endif
  struct rlimit rl;
  if (getrlimit (RLIMIT_AS, &rl))
    _exit (2);
  rl.rlim_cur = limit;
  if (setrlimit (RLIMIT_AS, &rl))
    _exit (2);
}

static void
run_limited (void (*fn) (void *), void *arg)
{
  char err[1024];
  int st = tu_child (fn, arg, err, sizeof err);
  if (WIFEXITED (st) && WEXITSTATUS (st) == SKIPPED)
    skip ();
  if (!WIFEXITED (st) || WEXITSTATUS (st))
    fail_msg ("child (status %#x): %s", st, err);
}

/* A failed check in a child: say what, and exit 1.  */
#define CHILD_CHECK(cond) \
  do { if (!(cond)) { fprintf (stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
                      _exit (1); } } while (0)

static void
new_file_heap_under_limit (void *arg)
{
  (void) arg;
  limit_as (tu_vm_size () + ((uint64_t) 2 << 30));
  int fd = tu_newfile ("limited.heap");
  void *md = mmalloc_attach (fd, NULL);
  CHILD_CHECK (md != NULL);
  char *p = mmalloc (md, 100);
  CHILD_CHECK (p != NULL);
  strcpy (p, "made under RLIMIT_AS");
  CHILD_CHECK (mmalloc_setkey (md, 0, p) == 1);
  CHILD_CHECK (mmalloc_detach (md) == NULL);
  /* Again in this run, under the limit.  */
  md = mmalloc_attach (fd, NULL);
  CHILD_CHECK (md != NULL);
  CHILD_CHECK (mmalloc_getkey (md, 0) == p);
  CHILD_CHECK (mmalloc (md, 8 << 20) != NULL);
  CHILD_CHECK (mmalloc_check (md) == 0);
  CHILD_CHECK (mmalloc_detach (md) == NULL);
  close (fd);
}

/* A new file heap without a base under a limit of a few GiB, re-attached
   there and in a later process without the limit, where it grows past
   what the limit allowed.  */
static void
file_heap_without_base_under_rlimit_as (void **state)
{
  (void) state;
  run_limited (new_file_heap_under_limit, NULL);
  reattach_and_find ("limited.heap", "made under RLIMIT_AS", (size_t) 64 << 20);
  unlink (tu_path ("limited.heap"));
}

/* Take blocks of SIZE from MD until NULL (at most CAP bytes): the failure
   is ENOMEM; the heap checks clean and serves again after a free.  Returns
   the bytes had.  */
static uint64_t
fill_to_enomem (void *md, size_t size, uint64_t cap)
{
  static void *blocks[4096];
  size_t n = 0;
  uint64_t had = 0;
  for (;;)
    {
      CHILD_CHECK (n < 4096 && had <= cap);	/* the limit was not applied */
      errno = 0;
      void *p = mmalloc (md, size);
      if (!p)
	break;
      ((char *) p)[0] = 1;
      blocks[n++] = p;
      had += size;
    }
  CHILD_CHECK (errno == ENOMEM);
  CHILD_CHECK (mmalloc_check (md) == 0);
  CHILD_CHECK (n > 0);
  mfree (md, blocks[--n]);
  void *again = mmalloc (md, size);
  CHILD_CHECK (again != NULL);
  CHILD_CHECK (mmalloc (md, 100) != NULL);
  blocks[n++] = again;
  while (n)
    mfree (md, blocks[--n]);
  CHILD_CHECK (mmalloc_check (md) == 0);
  return had;
}

static void
growth_under_limit (void *arg)
{
  int file = arg != NULL;
  int fd = file ? tu_newfile ("grow.heap") : -1;
  void *md = mmalloc_attach (fd, NULL);
  CHILD_CHECK (md != NULL);
  CHILD_CHECK (mmalloc (md, 100) != NULL);
  limit_as (tu_vm_size () + (32 << 20));
  uint64_t had = fill_to_enomem (md, 2 << 20, (uint64_t) 256 << 20);
  CHILD_CHECK (had >= (8 << 20));	/* but what the limit allows works */
  CHILD_CHECK (mmalloc_detach (md) == NULL);
}

/* Once the heap exists, growth past RLIMIT_AS fails with ENOMEM.  */
static void
anonymous_growth_past_rlimit_as_is_enomem (void **state)
{
  (void) state;
  run_limited (growth_under_limit, NULL);
}

static void
file_growth_past_rlimit_as_is_enomem (void **state)
{
  (void) state;
  run_limited (growth_under_limit, "file");
  unlink (tu_path ("grow.heap"));
}

static void
default_heap_with_little_room (void *arg)
{
  (void) arg;
  limit_as (tu_vm_size () + (2 << 20));
  CHILD_CHECK (mmalloc (NULL, 100) != NULL);
  fill_to_enomem (NULL, 64 << 10, (uint64_t) 64 << 20);
}

/* The default heap is made with 2 MiB of address space left.  */
static void
default_heap_made_with_two_mib_of_room (void **state)
{
  (void) state;
  run_limited (default_heap_with_little_room, NULL);
}

static void *
thread_allocates (void *md)
{
  void *p = mmalloc (md, 1000);
  if (p)
    mfree (md, p);
  return p;
}

static void
lowered_limit (void *arg)
{
  (void) arg;
  uint64_t before = tu_vm_size ();
  void *keep = mmalloc (NULL, 1 << 20);
  void *anon = mmalloc_attach (-1, NULL);
  int fd = tu_newfile ("lowered.heap");
  void *file = mmalloc_attach (fd, NULL);
  CHILD_CHECK (keep && anon && file);
  CHILD_CHECK (mmalloc (anon, 16 << 20) && mmalloc (file, 1 << 20));
  limit_as (before + ((uint64_t) 4 << 30));
  pthread_t t;
  void *got = NULL;
  CHILD_CHECK (pthread_create (&t, NULL, thread_allocates, anon) == 0);
  CHILD_CHECK (pthread_join (t, &got) == 0 && got != NULL);
  void *m = mmap (NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHILD_CHECK (m != MAP_FAILED);
  CHILD_CHECK (mmalloc (NULL, 64 << 20) != NULL);
  CHILD_CHECK (mmalloc_check (anon) == 0 && mmalloc_check (file) == 0);
  CHILD_CHECK (mmalloc_detach (file) == NULL);
}

/* A process that made heaps can lower RLIMIT_AS to what it really uses
   (4 GiB more than before the heaps, here) and still start threads and map
   memory.  */
static void
limit_lowered_after_heaps_exist (void **state)
{
  (void) state;
  run_limited (lowered_limit, NULL);
  unlink (tu_path ("lowered.heap"));
}

/* The address space the heap says it reserved (malloc_info's aspace).  */
static uint64_t
reserved (void *md)
{
  struct mm_heapinfo hi;
  mm_heapinfo (mm_desc_of (md), &hi);
  return hi.reserved;
}

/* A heap that grew and shrank gives the address space back, and reports
   what it holds.  */
static void
shrunk_heap_gives_address_space_back (void **state)
{
  (void) state;
  void *md = tu_new_heap ();
  size_t before = tu_vm_size ();
  assert_true (reserved (md) < ((uint64_t) 64 << 20));
  void *big = mmalloc (md, (size_t) 1 << 30);
  assert_non_null (big);
  assert_true (tu_vm_size () >= before + ((size_t) 1 << 30));
  assert_true (reserved (md) >= ((uint64_t) 1 << 30));
  mfree (md, big);
  assert_true (tu_vm_size () < before + ((size_t) 64 << 20));
  assert_true (reserved (md) < ((uint64_t) 64 << 20));
  big = mmalloc (md, (size_t) 1 << 30);	/* and takes it again */
  assert_non_null (big);
  mfree (md, big);
  tu_end_heap (md);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (base_outside_the_application_range_is_never_forced),
    cmocka_unit_test (file_heap_without_base_reattaches),
    cmocka_unit_test (file_heap_without_base_under_rlimit_as),
    cmocka_unit_test (anonymous_growth_past_rlimit_as_is_enomem),
    cmocka_unit_test (file_growth_past_rlimit_as_is_enomem),
    cmocka_unit_test (default_heap_made_with_two_mib_of_room),
    cmocka_unit_test (limit_lowered_after_heaps_exist),
    cmocka_unit_test (shrunk_heap_gives_address_space_back),
  };
  int r = cmocka_run_group_tests (tests, NULL, NULL);
  tu_rm_tree (tu_dir ());
  return r;
}
