/* test-leaks.c -- MMALLOC_OPTIONS=leaks in the drop-in malloc: a program
   that leaks exits with status 23 and a report on stderr; a clean one, and
   one whose blocks other threads hold, exit 0 and say nothing; a program
   that exits non-zero keeps its status.  Each is helper-leaks, run with
   the drop-in preloaded (skipped under sanitizers, which replace malloc).  */
#include "testutil.h"

#include <limits.h>

struct run
{
  int status;
  char out[1024], err[4096];
};

/* Run helper-leaks MODE with the drop-in preloaded and the leak check on.  */
static void
run_helper_with (struct run *r, const char *mode, const char *options)
{
  static char lib[PATH_MAX];
  if (!lib[0])
    assert_non_null (realpath (tu_beside ("../libmmalloc-malloc.so.1"), lib));
  const char *helper = tu_beside ("helper-leaks");
  int out[2], err[2];
  assert_int_equal (pipe (out), 0);
  assert_int_equal (pipe (err), 0);
  pid_t pid = tu_fork ();
  if (pid == 0)
    {
      dup2 (out[1], 1);
      dup2 (err[1], 2);
      close (out[0]);
      close (err[0]);
      setenv ("LD_PRELOAD", lib, 1);
      setenv ("MMALLOC_OPTIONS", options, 1);
      execl (helper, helper, mode, (char *) NULL);
      _exit (127);
    }
  close (out[1]);
  close (err[1]);
  tu_drain (out[0], r->out, sizeof r->out);
  tu_drain (err[0], r->err, sizeof r->err);
  assert_int_equal (waitpid (pid, &r->status, 0), pid);
}

static void
run_helper (struct run *r, const char *mode)
{
  run_helper_with (r, mode, "leaks");
}

static int
exit_status (const struct run *r)
{
  if (!WIFEXITED (r->status))
    fail_msg ("killed: status %#x, stderr: %s", r->status, r->err);
  return WEXITSTATUS (r->status);
}

static void
a_leaking_program_exits_23_with_a_report (void **state)
{
  (void) state;
  struct run r;
  run_helper (&r, "leak");
  if (exit_status (&r) != 23)
    fail_msg ("status %d, stderr: %s", exit_status (&r), r.err);
  assert_non_null (strstr (r.err, "mmalloc: leak check: 34 blocks lost, "));
  assert_non_null (strstr (r.err, "30 blocks of 48 bytes"));
  assert_non_null (strstr (r.err, "4 blocks of 20480 bytes"));
  assert_string_equal (r.out, "buffered output");
}

/* With check on too, the groups are by size and allocation site, named:
   the call of malloc in the helper's function that loses them.  */
static void
leak_report_names_allocation_sites_with_check (void **state)
{
  (void) state;
  struct run r;
  run_helper_with (&r, "leak", "leaks,check");
  if (exit_status (&r) != 23)
    fail_msg ("status %d, stderr: %s", exit_status (&r), r.err);
  assert_non_null (strstr (r.err, "mmalloc: leak check: 34 blocks lost, "));
  /* A sanitizer's runtime allocates before the drop-in reads its options:
     then the default heap cannot be checked, and records no sites.  */
  if (strstr (r.err, " blocks of 20480 bytes"))
    skip ();
  const char *g[] = { "30 blocks of 48 bytes allocated at 0x", "4 blocks of 20000 bytes allocated at 0x" };
  for (int i = 0; i < 2; i++)
    {
      const char *at = strstr (r.err, g[i]);
      if (!at)
	fail_msg ("no \"%s\" in: %s", g[i], r.err);
      const char *eol = strchr (at, '\n');
      assert_non_null (eol);
      const char *obj = strstr (at, "helper-leaks)");
      assert_true (obj && obj < eol);
    }
}

static void
a_clean_program_exits_0_and_says_nothing (void **state)
{
  (void) state;
  struct run r;
  run_helper (&r, "clean");
  assert_int_equal (exit_status (&r), 0);
  assert_string_equal (r.err, "");
}

static void
blocks_held_by_a_running_thread_are_no_leak (void **state)
{
  (void) state;
  struct run r;
  run_helper (&r, "threads");
  if (exit_status (&r) != 0)
    fail_msg ("status %d, stderr: %s", exit_status (&r), r.err);
  assert_string_equal (r.err, "");
}

static void
a_program_exiting_non_zero_keeps_its_status (void **state)
{
  (void) state;
  struct run r;
  run_helper (&r, "leak-fail");
  assert_int_equal (exit_status (&r), 3);
  assert_non_null (strstr (r.err, "mmalloc: leak check: 34 blocks lost"));
}

int
main (void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  puts ("test-leaks: skipped under a sanitizer (it replaces malloc)");
  return 0;
#endif
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (a_leaking_program_exits_23_with_a_report),
    cmocka_unit_test (leak_report_names_allocation_sites_with_check),
    cmocka_unit_test (a_clean_program_exits_0_and_says_nothing),
    cmocka_unit_test (blocks_held_by_a_running_thread_are_no_leak),
    cmocka_unit_test (a_program_exiting_non_zero_keeps_its_status),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
