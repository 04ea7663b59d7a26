/* test-trace.c -- mmtrace's trace file, and the mmtrace-report tool.

   Tracing is process-wide and cannot be turned off, so every traced run is a
   forked child; it writes the pointers it got to a second file and the parent
   rebuilds the exact trace expected from them.  The tool is run as
   mmtrace-report of the build directory, beside tests/.  */
#include "testutil.h"

#include <dirent.h>

/* --- files ----------------------------------------------------------------- */

static char *
slurp_text (const char *path)
{
  FILE *f = fopen (path, "r");
  assert_non_null (f);
  size_t cap = 4096, len = 0;
  char *buf = malloc (cap);
  assert_non_null (buf);
  size_t r;
  while ((r = fread (buf + len, 1, cap - len - 1, f)) > 0)
    {
      len += r;
      if (cap - len < 2)
	{
	  cap *= 2;
	  buf = realloc (buf, cap);
	  assert_non_null (buf);
	}
    }
  fclose (f);
  buf[len] = 0;
  return buf;
}

static void
write_text (const char *path, const char *text)
{
  FILE *f = fopen (path, "w");
  assert_non_null (f);
  assert_int_equal (fputs (text, f) >= 0, 1);
  assert_int_equal (fclose (f), 0);
}


/* --- the trace --------------------------------------------------------------- */

/* In a traced child: write the N pointers of P to FILE (in the test
   directory) and exit 0; exit 6-8 if that fails or a pointer is NULL.  */
static void
exit_with_pointers (const char *file, void *const *p, int n)
{
  FILE *f = fopen (tu_path (file), "w");
  if (!f)
    _exit (6);
  for (int i = 0; i < n; i++)
    if (!p[i] || fprintf (f, "%jx\n", (uintmax_t) (uintptr_t) p[i]) < 0)
      _exit (7);
  if (fclose (f))
    _exit (8);
  _exit (0);
}

/* In the parent: run CHILD traced, fail unless it exits 0, and read the N
   pointers it wrote to FILE into P.  */
static void
traced_child_pointers (void (*child) (void *), const char *file, uintmax_t *p, int n)
{
  char err[1024];
  int st = tu_child (child, NULL, err, sizeof err);
  if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
    fail_msg ("traced child: status %#x; stderr:\n%s", st, err);
  FILE *f = fopen (tu_path (file), "r");
  assert_non_null (f);
  for (int i = 0; i < n; i++)
    assert_int_equal (fscanf (f, "%jx", &p[i]), 1);
  fclose (f);
}

enum
{ A, B, C, D, E, F, G, LEAK, NPTR };

/* The child: trace a known sequence of calls; the pointers go to "addrs".  */
static void
traced_run (void *arg)
{
  (void) arg;
  if (setenv ("MMALLOC_TRACE", tu_path ("run.trace"), 1))
    _exit (2);
  if (mmtrace () != 1)
    _exit (3);
  if (mmtrace () != 1)		/* a second call: still on, no second Start */
    _exit (4);
  void *md = mmalloc_attach (-1, NULL);
  if (!md)
    _exit (5);
  void *p[NPTR];
  p[A] = mmalloc (md, 100);
  p[B] = mrealloc (md, p[A], 50000);	/* moves to pages */
  p[C] = mrealloc (md, p[B], 40000);	/* shrinks, in place or not */
  p[D] = mcalloc (md, 3, 10);
  p[E] = mmemalign (md, 256, 10);
  p[F] = mrealloc (md, NULL, 7);
  p[G] = mmalloc (NULL, 0);	/* every heap is traced, the default one too */
  mfree (md, NULL);		/* not traced: nothing happened */
  mfree (md, p[C]);
  mfree (md, p[D]);
  mfree (md, p[E]);
  mfree (md, p[F]);
  mfree (NULL, p[G]);
  p[LEAK] = mmalloc (md, 33);
  exit_with_pointers ("run.addrs", p, NPTR);
}

/* Cut the sites off the lines of the trace GOT: every "+" and ">" must end
   with " @ SITE", a site in FN (a call of it to an entry point).  The
   number of sites cut.  */
static size_t
cut_sites (char *got, void (*fn) (void))
{
  size_t nsites = 0;
  for (char *s = got, *at; (at = strstr (s, " @ ")); s = at)
    {
      char *bol = at;
      while (bol > got && bol[-1] != '\n')
	bol--;
      assert_true (*bol == '+' || *bol == '>');
      uintptr_t site = (uintptr_t) strtoull (at + 3, NULL, 16);
      assert_true (site > (uintptr_t) fn && site < (uintptr_t) fn + 4096);
      char *eol = strchr (at, '\n');
      assert_non_null (eol);
      memmove (at, eol, strlen (eol) + 1);
      nsites++;
    }
  return nsites;
}

/* Run traced_run; the pointers it reported in P.  */
static void
run_traced (uintmax_t p[NPTR])
{
  /* A stale file is replaced, not appended to.  */
  write_text (tu_path ("run.trace"), "stale junk\n+ 0x1 0x1\n");
  traced_child_pointers (traced_run, "run.addrs", p, NPTR);
}

static void
trace_records_every_call_exactly (void **state)
{
  (void) state;
  uintmax_t p[NPTR];
  run_traced (p);
  assert_true (p[B] != p[A]);
  char want[2048];
  snprintf (want, sizeof want,
	    "= Start\n"
	    "+ 0x%jx 0x64\n"
	    "< 0x%jx\n> 0x%jx 0xc350\n"
	    "< 0x%jx\n> 0x%jx 0x9c40\n"
	    "+ 0x%jx 0x1e\n"
	    "+ 0x%jx 0xa\n"
	    "+ 0x%jx 0x7\n"
	    "+ 0x%jx 0x0\n"
	    "- 0x%jx\n- 0x%jx\n- 0x%jx\n- 0x%jx\n- 0x%jx\n"
	    "+ 0x%jx 0x21\n",
	    p[A], p[A], p[B], p[B], p[C], p[D], p[E], p[F], p[G],
	    p[C], p[D], p[E], p[F], p[G], p[LEAK]);
  char *got = slurp_text (tu_path ("run.trace"));
  assert_int_equal (cut_sites (got, (void (*) (void)) traced_run), 8);
  assert_string_equal (got, want);
  free (got);
}

/* Tracing turned on while the thread caches are warm (an owned slab, a
   recent slot, the default heap's too): the lock-free paths, which do not trace,
   must stop at once for every heap.  */
enum
{ WX, WP1, WP2, WQ, NW };

static void
traced_warm_run (void *arg)
{
  (void) arg;
  void *md = mmalloc_attach (-1, NULL);
  if (!md)
    _exit (5);
  void *w[NW];
  w[WX] = mmalloc (md, 64);
  mfree (md, mmalloc (md, 64));	/* leaves a recent slot */
  w[WQ] = mmalloc (NULL, 48);
  if (setenv ("MMALLOC_TRACE", tu_path ("warm.trace"), 1) || mmtrace () != 1)
    _exit (3);
  w[WP1] = mmalloc (md, 64);
  mfree (md, w[WX]);
  mfree (md, w[WP1]);
  w[WP2] = mmalloc (NULL, 48);
  mfree (NULL, w[WQ]);
  mfree (NULL, w[WP2]);
  exit_with_pointers ("warm.addrs", w, NW);
}

static void
trace_starts_at_once_on_warm_caches (void **state)
{
  (void) state;
  uintmax_t w[NW];
  traced_child_pointers (traced_warm_run, "warm.addrs", w, NW);
  char want[1024];
  snprintf (want, sizeof want,
	    "= Start\n+ 0x%jx 0x40\n- 0x%jx\n- 0x%jx\n+ 0x%jx 0x30\n- 0x%jx\n- 0x%jx\n",
	    w[WP1], w[WX], w[WP1], w[WP2], w[WQ], w[WP2]);
  char *got = slurp_text (tu_path ("warm.trace"));
  assert_int_equal (cut_sites (got, (void (*) (void)) traced_warm_run), 2);
  assert_string_equal (got, want);
  free (got);
}

/* The child: mmtrace with MMALLOC_TRACE as ARG says (NULL: unset) must return
   0, and the calls after it must leave no file behind.  */
static void
untraced_run (void *arg)
{
  const char *name = arg;
  if (name ? setenv ("MMALLOC_TRACE", name, 1) : unsetenv ("MMALLOC_TRACE"))
    _exit (2);
  if (mmtrace () != 0)
    _exit (3);
  void *p = mmalloc (NULL, 10);
  mfree (NULL, p);
  _exit (0);
}

static void
no_trace_without_mmalloc_trace (void **state)
{
  (void) state;
  const char *names[] = { NULL, "", "/nonexistent-dir-of-mmalloc/x.trace" };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    {
      char err[256];
      int st = tu_child (untraced_run, (void *) names[i], err, sizeof err);
      assert_true (WIFEXITED (st));
      assert_int_equal (WEXITSTATUS (st), 0);
      assert_string_equal (err, "");
    }
  assert_int_equal (access ("/nonexistent-dir-of-mmalloc", F_OK), -1);
}

/* --- mmtrace-report ------------------------------------------------------------ */

#define REPORT ((char *) tu_beside ("../mmtrace-report"))

/* Run the report tool on ARGC arguments ARGV (ARGV[0] is the tool); its
   stdout in OUT.  Returns the wait status.  */
static int
run_report (char *const argv[], char *out, size_t outlen)
{
  int pfd[2];
  assert_int_equal (pipe (pfd), 0);
  pid_t pid = tu_fork ();
  if (pid == 0)
    {
      close (pfd[0]);
      dup2 (pfd[1], 1);
      int null = open ("/dev/null", O_WRONLY);
      if (null >= 0)
	dup2 (null, 2);
      execv (argv[0], argv);
      _exit (127);
    }
  close (pfd[1]);
  tu_drain (pfd[0], out, outlen);
  int st;
  assert_int_equal (waitpid (pid, &st, 0), pid);
  return st;
}

static int
is_problem (const char *line)
{
  return !strncmp (line, "leak: ", 6) || !strncmp (line, "double free: ", 13)
    || !strncmp (line, "free of unknown pointer: ", 25);
}

/* LINE reports problem WANT: it is WANT, or WANT followed by a note in
   parentheses (the tool may add where in the trace it saw the problem).  */
static int
same_problem (const char *line, const char *want)
{
  size_t n = strlen (want), l = strlen (line);
  if (strncmp (line, want, n))
    return 0;
  return line[n] == 0 || (line[n] == ' ' && line[n + 1] == '(' && line[l - 1] == ')');
}

/* Run the tool on a file holding TRACE; assert exit status STATUS, and that its
   output is exactly the NPROB problem lines PROB (in any order) followed by
   one summary line.  */
static void
expect_report (const char *trace, int status, const char *const *prob, size_t nprob)
{
  const char *path = tu_path ("hand.trace");
  write_text (path, trace);
  char *argv[] = { REPORT, (char *) path, NULL };
  char out[8192];
  int st = run_report (argv, out, sizeof out);
  if (!WIFEXITED (st) || WEXITSTATUS (st) != status)
    fail_msg ("%s on\n%s: wait status %#x, expected exit %d; output:\n%s", REPORT, trace,
	      st, status, out);
  /* Split into lines.  */
  char *lines[64];
  size_t n = 0;
  for (char *s = out, *nl; *s && n < 64; s = nl + 1)
    {
      nl = strchr (s, '\n');
      if (!nl)
	fail_msg ("%s: last line not terminated: \"%s\"", REPORT, s);
      *nl = 0;
      lines[n++] = s;
    }
  /* The leaks grouped by site, when they have sites: not problems.  */
  for (size_t k = 0; k < n; k++)
    if (!strcmp (lines[k], "leaks by allocation site, most bytes first:"))
      {
	size_t end = k + 1;
	while (end < n && !strncmp (lines[end], "  ", 2))
	  end++;
	memmove (lines + k, lines + end, (n - end) * sizeof *lines);
	n -= end - k;
	break;
      }
  if (n != nprob + 1)
    fail_msg ("%s: %zu output lines, expected %zu problems and a summary", REPORT, n, nprob);
  assert_true (strlen (lines[n - 1]) > 0);
  assert_false (is_problem (lines[n - 1]));
  for (size_t i = 0; i < nprob; i++)
    {
      size_t hits = 0;
      for (size_t k = 0; k + 1 < n; k++)
	hits += same_problem (lines[k], prob[i]);
      if (hits != 1)
	fail_msg ("%s: line \"%s\" appears %zu times", REPORT, prob[i], hits);
    }
}

static void
report_finds_a_leak (void **state)
{
  (void) state;
  const char *prob[] = { "leak: 0x1000 0x10" };
  expect_report ("= Start\n+ 0x1000 0x10\n+ 0x2000 0x20\n- 0x2000\n", 1, prob, 1);
}

static void
report_finds_a_double_free (void **state)
{
  (void) state;
  const char *prob[] = { "double free: 0x2000" };
  expect_report ("= Start\n+ 0x2000 0x20\n- 0x2000\n- 0x2000\n", 1, prob, 1);
}

static void
report_finds_a_free_of_an_unknown_pointer (void **state)
{
  (void) state;
  const char *prob[] = { "free of unknown pointer: 0x3000" };
  expect_report ("= Start\n+ 0x1000 0x10\n- 0x1000\n- 0x3000\n", 1, prob, 1);
}

static void
report_of_a_clean_trace_is_only_a_summary (void **state)
{
  (void) state;
  /* A realloc frees its old address and allocates the new; an address can be
     handed out again once freed.  */
  expect_report ("= Start\n"
		 "+ 0x1000 0x10\n"
		 "< 0x1000\n> 0x5000 0x40\n"
		 "+ 0x1000 0x8\n"
		 "< 0x1000\n> 0x1000 0x18\n"
		 "- 0x5000\n- 0x1000\n", 0, NULL, 0);
  expect_report ("= Start\n", 0, NULL, 0);
}

static void
report_lists_every_problem (void **state)
{
  (void) state;
  const char *prob[] = {
    "leak: 0x7000 0x100",
    "leak: 0x8000 0x1",
    "double free: 0x1000",
    "free of unknown pointer: 0x9000",
  };
  expect_report ("= Start\n"
		 "+ 0x1000 0x10\n+ 0x7000 0x100\n+ 0x8000 0x1\n"
		 "- 0x1000\n- 0x9000\n- 0x1000\n", 1, prob, 4);
}

static void
report_of_a_real_trace (void **state)
{
  (void) state;
  uintmax_t p[NPTR];
  run_traced (p);
  char leak[64];
  snprintf (leak, sizeof leak, "leak: 0x%jx 0x21", p[LEAK]);
  const char *prob[] = { leak };
  char *trace = slurp_text (tu_path ("run.trace"));
  expect_report (trace, 1, prob, 1);
  free (trace);
}

/* Leaks grouped by the site their lines name, most bytes first; realloc's
   line gives the block its site.  */
static void
report_groups_leaks_by_site (void **state)
{
  (void) state;
  const char *path = tu_path ("sites.trace");
  write_text (path, "= Start\n"
	      "+ 0x1000 0x10 @ 0x400 (f+0x1, prog)\n"
	      "+ 0x2000 0x20 @ 0x400 (f+0x1, prog)\n"
	      "+ 0x3000 0x100 @ 0x500 (g+0x2, prog)\n"
	      "+ 0x4000 0x8\n"
	      "+ 0x5000 0x30 @ 0x500 (g+0x2, prog)\n"
	      "- 0x5000\n"
	      "+ 0x6000 0x10 @ 0x500 (g+0x2, prog)\n"
	      "< 0x6000\n> 0x7000 0x18 @ 0x400 (f+0x1, prog)\n");
  char *argv[] = { REPORT, (char *) path, NULL };
  char out[4096];
  int st = run_report (argv, out, sizeof out);
  assert_true (WIFEXITED (st) && WEXITSTATUS (st) == 1);
  assert_non_null (strstr (out, "leak: 0x3000 0x100 (line 4) @ 0x500 (g+0x2, prog)\n"));
  assert_non_null (strstr (out, "leak: 0x4000 0x8 (line 5)\n"));
  assert_non_null (strstr (out, "leaks by allocation site, most bytes first:\n"
			   "  1 leaks, 256 bytes: 0x500 (g+0x2, prog)\n"
			   "  3 leaks, 72 bytes: 0x400 (f+0x1, prog)\n"
			   "  1 leaks, 8 bytes: (no site)\n"
			   "7 allocations, 2 frees, 5 leaks (336 bytes)"));
}

static void
report_usage_and_read_errors_exit_2 (void **state)
{
  (void) state;
  write_text (tu_path ("clean.trace"), "= Start\n");
  char *const cases[][4] = {
    { REPORT, (char *) tu_path ("no-such.trace"), NULL },	/* cannot open */
    { REPORT, (char *) tu_dir (), NULL },	/* cannot read */
    { REPORT, "--no-such-option", NULL },	/* usage */
    { REPORT, (char *) tu_path ("clean.trace"), (char *) tu_path ("clean.trace"), NULL },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      char out[1024];
      int st = run_report (cases[i], out, sizeof out);
      assert_true (WIFEXITED (st));
      if (WEXITSTATUS (st) != 2)
	fail_msg ("%s %s: exit %d, expected 2", REPORT, cases[i][1], WEXITSTATUS (st));
    }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (trace_records_every_call_exactly),
    cmocka_unit_test (no_trace_without_mmalloc_trace),
    cmocka_unit_test (trace_starts_at_once_on_warm_caches),
    cmocka_unit_test (report_finds_a_leak),
    cmocka_unit_test (report_finds_a_double_free),
    cmocka_unit_test (report_finds_a_free_of_an_unknown_pointer),
    cmocka_unit_test (report_of_a_clean_trace_is_only_a_summary),
    cmocka_unit_test (report_lists_every_problem),
    cmocka_unit_test (report_of_a_real_trace),
    cmocka_unit_test (report_groups_leaks_by_site),
    cmocka_unit_test (report_usage_and_read_errors_exit_2),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
