/* test-sites.c -- allocation sites: a checked block records the code that
   allocated it (the caller of the entry point), mmalloc_block_site returns
   it, and reports of misuse name it, symbolised.  Linked with
   --export-dynamic, so that dladdr knows this program's functions.  */

#include "testutil.h"
#include "mmprivate.h"

#include <dlfcn.h>

/* The function that allocates the blocks whose sites are looked for.  Not
   inlined, not a tail call: the call's return address is inside it.  */
__attribute__ ((noinline)) void *allocate_with_a_known_name (void *md, int how, size_t n);

__attribute__ ((noinline)) void *
allocate_with_a_known_name (void *md, int how, size_t n)
{
  void *p;
  switch (how)
    {
    case 0:
      p = mmalloc (md, n);
      break;
    case 1:
      p = mcalloc (md, 1, n);
      break;
    case 2:
      p = mrealloc (md, NULL, n);
      break;
    default:
      p = mmemalign (md, 16, n);
      break;
    }
  __asm__ volatile ("" ::: "memory");
  return p;
}

__attribute__ ((noinline)) void *reallocate_with_a_known_name (void *md, void *p, size_t n);

__attribute__ ((noinline)) void *
reallocate_with_a_known_name (void *md, void *p, size_t n)
{
  p = mrealloc (md, p, n);
  __asm__ volatile ("" ::: "memory");
  return p;
}

static int
named (const void *site, const char *fn)
{
  Dl_info info;
  return site && dladdr (site, &info) && info.dli_sname && strcmp (info.dli_sname, fn) == 0;
}

static void
every_entry_point_records_its_caller (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  assert_int_equal (mmcheck (md, NULL), 1);
  static const size_t sizes[] = { 1, 100, 5000, 40000, 300000 };
  for (int how = 0; how < 4; how++)
    for (unsigned k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
      {
	void *p = allocate_with_a_known_name (md, how, sizes[k]);
	assert_non_null (p);
	assert_true (named (mmalloc_block_site (md, p), "allocate_with_a_known_name"));
	assert_int_equal (mmalloc_usable_size (md, p), sizes[k]);
	mfree (md, p);
      }
  /* A block moved by mrealloc records mrealloc's caller.  */
  void *p = allocate_with_a_known_name (md, 0, 10);
  p = reallocate_with_a_known_name (md, p, 50000);
  assert_true (named (mmalloc_block_site (md, p), "reallocate_with_a_known_name"));
  /* Not a block's start, or no block: no site.  */
  assert_null (mmalloc_block_site (md, (char *) p + 16));
  assert_null (mmalloc_block_site (md, &p));
  mfree (md, p);
  assert_int_equal (mmalloc_check (md), 0);
  assert_null (mmalloc_detach (md));

  /* Unchecked blocks record nothing.  */
  md = mmalloc_attach (-1, NULL);
  p = allocate_with_a_known_name (md, 0, 100);
  assert_null (mmalloc_block_site (md, p));
  mfree (md, p);
  assert_null (mmalloc_detach (md));
}

static int
visit_site (void *ptr, size_t size, void *arg)
{
  void **md = arg;
  (void) size;
  if (named (mmalloc_block_site (md[0], ptr), "allocate_with_a_known_name"))
    md[1] = (char *) md[1] + 1;
  return 0;
}

/* The visit functions of the walk and of the garbage detector get the site.  */
static void
walk_and_garbage_reports_get_the_site (void **state)
{
  (void) state;
  void *md = mmalloc_attach (-1, NULL);
  assert_int_equal (mmcheck (md, NULL), 1);
  for (int i = 0; i < 3; i++)
    assert_non_null (allocate_with_a_known_name (md, 0, 64));	/* dropped */
  void *kept = mmalloc (md, 64);
  assert_int_equal (mmalloc_setkey (md, 0, kept), 1);
  void *arg[2] = { md, NULL };
  assert_int_equal (mmalloc_walk (md, visit_site, arg), 0);
  assert_ptr_equal (arg[1], (void *) 3);
  arg[1] = NULL;
  assert_int_equal (mmalloc_garbage (md, 0, visit_site, arg), 3);
  assert_ptr_equal (arg[1], (void *) 3);
  assert_null (mmalloc_detach (md));
}

static void
double_free_child (void *arg)
{
  (void) arg;
  void *md = mmalloc_attach (-1, NULL);
  mmcheck (md, NULL);
  void *p = allocate_with_a_known_name (md, 0, 100);
  mfree (md, p);
  mfree (md, p);
}

static void
overrun_child (void *arg)
{
  (void) arg;
  void *md = mmalloc_attach (-1, NULL);
  mmcheck (md, NULL);
  char *p = allocate_with_a_known_name (md, 1, 70000);
  p[70000] = 1;
  mfree (md, p);
}

/* The report of a misuse names the function that allocated the block.  */
static void
misuse_reports_name_the_allocating_function (void **state)
{
  (void) state;
  static void (*const child[]) (void *) = { double_free_child, overrun_child };
  static const char *const kind[] = { "double free", "write past the end" };
  for (int i = 0; i < 2; i++)
    {
      char err[2048];
      int st = tu_child (child[i], NULL, err, sizeof err);
      assert_true (WIFSIGNALED (st) && WTERMSIG (st) == SIGABRT);
      assert_non_null (strstr (err, kind[i]));
      assert_non_null (strstr (err, ", allocated at 0x"));
      assert_non_null (strstr (err, "(allocate_with_a_known_name+0x"));
      assert_null (strchr (err, '\n')[1] ? "" : NULL);	/* one line */
    }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (every_entry_point_records_its_caller),
    cmocka_unit_test (walk_and_garbage_reports_get_the_site),
    cmocka_unit_test (misuse_reports_name_the_allocating_function),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
