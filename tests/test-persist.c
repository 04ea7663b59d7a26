/* test-persist.c -- a heap file outlives the processes that use it.

   Every turn is a fresh program (fork + exec of ./helper-persist), so each
   attach happens in a new address space laid out anew by ASLR; the heap must
   come back at its recorded address with every pointer inside it valid.  */
#include "testutil.h"

#include <dirent.h>

#define HELPER tu_beside ("helper-persist")

struct run
{
  int status;			/* wait status */
  char out[4096];		/* stdout */
  char err[4096];		/* stderr */
};

/* Run ./helper-persist MODE PATH [ARG]; its status and output in R.  */
static void
helper (struct run *r, const char *mode, const char *path, const char *arg)
{
  int out[2], err[2];
  assert_int_equal (pipe (out), 0);
  assert_int_equal (pipe (err), 0);
  pid_t pid = tu_fork ();
  if (pid == 0)
    {
      dup2 (out[1], 1);
      dup2 (err[1], 2);
      close (out[0]);
      close (out[1]);
      close (err[0]);
      close (err[1]);
      execl (HELPER, HELPER, mode, path, arg, (char *) NULL);
      _exit (127);
    }
  close (out[1]);
  close (err[1]);
  /* The outputs are short: stdout first cannot block the child on stderr.  */
  tu_drain (out[0], r->out, sizeof r->out);
  tu_drain (err[0], r->err, sizeof r->err);
  assert_int_equal (waitpid (pid, &r->status, 0), pid);
}

/* Run the helper and assert that it exited 0 without a word on stderr.  */
static struct run *
helper_ok (const char *mode, const char *path, const char *arg)
{
  static struct run r;
  helper (&r, mode, path, arg);
  if (!WIFEXITED (r.status) || WEXITSTATUS (r.status) != 0 || r.err[0])
    fail_msg ("%s %s %s: wait status %#x; stderr:\n%s", HELPER, mode, arg ? arg : "",
	      r.status, r.err);
  return &r;
}


/* Attach PATH here too: it is consistent, and key 1 (node 500) is or is not
   set as WANT_NODE500 says.  */
static void
look_from_here (const char *path, int want_node500)
{
  int fd = open (path, O_RDONLY);
  assert_true (fd >= 0);
  void *md = mmalloc_attach (fd, NULL);
  assert_non_null (md);
  assert_int_equal (close (fd), 0);
  assert_non_null (mmalloc_getkey (md, 0));
  assert_non_null (mmalloc_getkey (md, 2));
  assert_non_null (mmalloc_getkey (md, 3));
  if (want_node500)
    assert_non_null (mmalloc_getkey (md, 1));
  else
    assert_null (mmalloc_getkey (md, 1));
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

static void
structure_survives_three_processes (void **state)
{
  (void) state;
  const char *path = tu_path ("list.heap");
  struct run *r = helper_ok ("build", path, NULL);
  assert_string_equal (r->out, "");
  look_from_here (path, 1);
  /* Each verify checks one generation and leaves the next.  */
  r = helper_ok ("verify", path, "0");
  assert_string_equal (r->out, "");
  look_from_here (path, 1);	/* node 500 is even: it survives generation 1 */
  r = helper_ok ("verify", path, "1");
  assert_string_equal (r->out, "");
  look_from_here (path, 0);	/* ...and is freed on the way to generation 2 */
  r = helper_ok ("verify", path, "2");
  assert_string_equal (r->out, "");
}

static void
helper_notices_a_wrong_generation (void **state)
{
  (void) state;
  /* The helper can fail: a heap of generation 0 is not generation 1.  */
  const char *path = tu_path ("wrong.heap");
  helper_ok ("build", path, NULL);
  struct run r;
  helper (&r, "verify", path, "1");
  assert_true (WIFEXITED (r.status));
  assert_int_equal (WEXITSTATUS (r.status), 1);
  assert_non_null (strstr (r.err, "generation 0, expected 1"));
  /* And the refused check changed nothing.  */
  helper_ok ("verify", path, "0");
}

static int
aslr_on (void)
{
  FILE *f = fopen ("/proc/sys/kernel/randomize_va_space", "r");
  int v = 0;
  if (f)
    {
      if (fscanf (f, "%d", &v) != 1)
	v = 0;
      fclose (f);
    }
  return v != 0;
}

static void
twenty_reattaches_in_fresh_processes (void **state)
{
  (void) state;
  const char *path = tu_path ("twenty.heap");
  helper_ok ("build", path, NULL);
  char stacks[20][32];
  int distinct = 0;
  for (int k = 0; k < 20; k++)
    {
      char arg[16];
      snprintf (arg, sizeof arg, "%d", k);
      struct run *r = helper_ok ("reattach", path, arg);
      assert_true (strlen (r->out) > 3 && strlen (r->out) < sizeof stacks[k]);
      strcpy (stacks[k], r->out);
      int seen = 0;
      for (int j = 0; j < k; j++)
	seen |= !strcmp (stacks[j], stacks[k]);
      distinct += !seen;
    }
  /* The processes really had different layouts, when the system randomizes.  */
  if (aslr_on ())
    assert_true (distinct > 1);
  /* Twenty attaches later the structure is whole, and still mutable.  */
  helper_ok ("verify", path, "0");
  helper_ok ("verify", path, NULL);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (structure_survives_three_processes),
    cmocka_unit_test (helper_notices_a_wrong_generation),
    cmocka_unit_test (twenty_reattaches_in_fresh_processes),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
