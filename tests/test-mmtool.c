/* test-mmtool.c -- mmtool, run as a program over heap files of known
   content: each command's output and exit status, its --json output read
   back by python3, files left byte for byte as they were by every
   read-only command (also while a writer holds the file), and no crash
   over a few hundred damaged files.  The tool is ../mmtool from the test
   program's directory, or $MMTOOL.  */
#include "testutil.h"
#include "mmprivate.h"

#include <inttypes.h>
#include <time.h>

/* --- Running the tool --------------------------------------------------- */

struct run
{
  int status;			/* exit status; the test fails on a signal */
  char out[1 << 16], err[4096];
};

static const char *
tool (void)
{
  const char *t = getenv ("MMTOOL");
  return t && *t ? t : tu_beside ("../mmtool");
}

static void
slurp (const char *path, char *buf, size_t len)
{
  int fd = open (path, O_RDONLY);
  assert_true (fd >= 0);
  size_t got = 0;
  ssize_t r;
  while (got + 1 < len && (r = read (fd, buf + got, len - 1 - got)) > 0)
    got += (size_t) r;
  buf[got] = 0;
  close (fd);
}

/* Run mmtool with ARGV (NULL-terminated, without the program); its output
   in R.  A run that takes 20 s is killed (SIGALRM), which fails.  */
static struct run *
mmtool_v (const char *const *argv)
{
  static struct run r;
  static char outp[512], errp[512];	/* not tu_path's: the caller's may be */
  snprintf (outp, sizeof outp, "%s/tool.out", tu_dir ());
  snprintf (errp, sizeof errp, "%s/tool.err", tu_dir ());
  fflush (NULL);
  pid_t pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      int o = open (outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int e = open (errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (o < 0 || e < 0 || dup2 (o, 1) < 0 || dup2 (e, 2) < 0)
	_exit (126);
      const char *args[16] = { "mmtool" };
      for (int i = 0; argv[i] && i < 14; i++)
	args[i + 1] = argv[i];
      alarm (20);
      execv (tool (), (char *const *) args);
      _exit (127);
    }
  int st;
  assert_int_equal (waitpid (pid, &st, 0), pid);
  if (WIFSIGNALED (st))
    fail_msg ("mmtool %s %s: killed by signal %d", argv[0], argv[1] ? argv[1] : "",
	      WTERMSIG (st));
  r.status = WEXITSTATUS (st);
  assert_int_not_equal (r.status, 127);
  slurp (outp, r.out, sizeof r.out);
  slurp (errp, r.err, sizeof r.err);
  return &r;
}

#define MMTOOL(...) mmtool_v ((const char *const[]) { __VA_ARGS__, NULL })

/* One python3 for the whole program (its start costs more than all the
   checks): it reads an expression and a line of JSON at a time and answers
   "ok", "false", or "error" and why.  */
static const char py_judge[] =
  "import json, sys\n"
  "while True:\n"
  "    expr = sys.stdin.readline()\n"
  "    if not expr:\n"
  "        break\n"
  "    text = sys.stdin.readline()\n"
  "    try:\n"
  "        d = json.loads(text)\n"
  "        print('ok' if eval(expr) else 'false', flush=True)\n"
  "    except Exception as e:\n"
  "        print('error', repr(e).replace('\\n', ' '), flush=True)\n";

static FILE *py_in, *py_out;

/* 0 once python3 runs, -1 if there is none.  */
static int
py_start (void)
{
  if (py_in)
    return 0;
  if (system ("command -v python3 >/dev/null 2>&1") != 0)
    return -1;
  int to[2], from[2];
  assert_int_equal (pipe2 (to, O_CLOEXEC), 0);
  assert_int_equal (pipe2 (from, O_CLOEXEC), 0);
  fflush (NULL);
  pid_t pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      dup2 (to[0], 0);
      dup2 (from[1], 1);
      execlp ("python3", "python3", "-c", py_judge, (char *) NULL);
      _exit (127);
    }
  close (to[0]);
  close (from[1]);
  py_in = fdopen (to[1], "w");
  py_out = fdopen (from[0], "r");
  assert_true (py_in && py_out);
  return 0;
}

/* The output of R is one line of JSON, which python3's json module reads,
   and EXPR (a Python expression over the object D) is true of it.  Skips
   the test if there is no python3.  */
static void
json_holds (const struct run *r, const char *expr)
{
  if (py_start () < 0)
    skip ();
  size_t len = strlen (r->out);
  if (len == 0 || strchr (r->out, '\n') != r->out + len - 1)
    fail_msg ("json: not one line: %s", r->out);
  fprintf (py_in, "%s\n%s", expr, r->out);
  fflush (py_in);
  char answer[512] = "";
  if (!fgets (answer, sizeof answer, py_out) || strcmp (answer, "ok\n"))
    fail_msg ("json: %s does not hold (%s) of: %s", expr, answer, r->out);
}

/* --- Heap files of known content ------------------------------------------ */

#define NLIST 20		/* nodes of the list that key 0 reaches */
#define NDROP 7			/* blocks dropped: reachable from nothing */
#define NCYCLE 3		/* an unreachable cycle */
#define BIG 40000		/* one large block, reached from key 2 */

struct node
{
  struct node *next;
  uint64_t tag;
  char pad[40];
};

/* What was made: the addresses of the known blocks.  */
static struct known
{
  uintptr_t base;
  uintptr_t list[NLIST], drop[NDROP], cycle[NCYCLE], str, big;
  size_t nblocks;		/* allocated blocks in all */
} K;

static void
build (void *md)
{
  memset (&K, 0, sizeof K);
  struct node *head = NULL;
  for (int i = NLIST - 1; i >= 0; i--)
    {
      struct node *n = mmalloc (md, sizeof *n);
      assert_non_null (n);
      memset (n, 0, sizeof *n);
      n->next = head;
      n->tag = 1000 + (uint64_t) i;
      head = n;
      K.list[i] = (uintptr_t) n;
    }
  for (int i = 0; i < NDROP; i++)
    {
      char *p = mmalloc (md, 100 + (size_t) i * 50);
      assert_non_null (p);
      memset (p, 0x5a, 100 + (size_t) i * 50);
      K.drop[i] = (uintptr_t) p;
    }
  struct node *c[NCYCLE];
  for (int i = 0; i < NCYCLE; i++)
    {
      c[i] = mmalloc (md, sizeof *c[i]);
      assert_non_null (c[i]);
      memset (c[i], 0, sizeof *c[i]);
      K.cycle[i] = (uintptr_t) c[i];
    }
  for (int i = 0; i < NCYCLE; i++)
    c[i]->next = c[(i + 1) % NCYCLE];
  char *s = mmalloc (md, 32);
  assert_non_null (s);
  strcpy (s, "mmtool was here");
  K.str = (uintptr_t) s;
  char *big = mmalloc (md, BIG);
  assert_non_null (big);
  tu_fill (big, BIG, 7);
  K.big = (uintptr_t) big;
  /* Freed blocks leave free slots and a free run.  */
  for (int i = 0; i < 10; i++)
    mfree (md, mmalloc (md, 3000));
  mfree (md, mmalloc (md, 300000));
  assert_int_equal (mmalloc_setkey (md, 0, head), 1);
  assert_int_equal (mmalloc_setkey (md, 1, s + 7), 1);	/* inside a block */
  assert_int_equal (mmalloc_setkey (md, 2, big), 1);
  K.nblocks = NLIST + NDROP + NCYCLE + 2;
}

static void
make_file (const char *name)
{
  void *md = tu_new_file_heap (name);
  build (md);
  struct mm_desc *d = mm_desc_of (md);
  K.base = (uintptr_t) d->base;
  tu_end_heap (md);
}

/* A file whose writer died with it attached; made in a child.  */
static void
die_attached (void *arg)
{
  int fd = open (tu_path (arg), O_RDWR);
  void *md = mmalloc_attach (fd, NULL);
  if (!md)
    _exit (3);
  build (md);
  /* The parent learns the addresses from a file.  */
  int k = open (tu_path ("known"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  K.base = (uintptr_t) mm_desc_of (md)->base;
  _exit (k >= 0 && write (k, &K, sizeof K) == (ssize_t) sizeof K ? 0 : 4);
}

static void
make_dirty (const char *name)
{
  close (tu_newfile (name));
  char err[256];
  int st = tu_child (die_attached, (void *) name, err, sizeof err);
  assert_true (WIFEXITED (st) && WEXITSTATUS (st) == 0);
  int k = open (tu_path ("known"), O_RDONLY);
  assert_int_equal (read (k, &K, sizeof K), (ssize_t) sizeof K);
  close (k);
}

/* --- Files unchanged ---------------------------------------------------- */

/* The read-only commands, and their extra operands.  */
static const char *const readonly[][4] = {
  { "info" }, { "stats" }, { "keys" }, { "walk" }, { "walk", "--free" },
  { "walk", "--histogram" }, { "check" }, { "leaks" }, { "gc", "--dry-run" },
  { "info", "--json" }, { "stats", "--json" }, { "keys", "--json" }, { "walk", "--json" },
  { "check", "--json" },
};
#define NREADONLY (sizeof readonly / sizeof readonly[0])

static struct run *
run_readonly (size_t i, const char *path)
{
  const char *a[6] = { readonly[i][0], readonly[i][1], readonly[i][2], NULL, NULL, NULL };
  int n = 0;
  while (a[n])
    n++;
  a[n] = path;
  return mmtool_v (a);
}

/* Every read-only command, and dump, leave the file at PATH as it was.  */
static void
readonly_commands_change_nothing (const char *path)
{
  struct tu_snap s;
  tu_snap_take (path, &s);
  struct timespec pause = { 0, 20 * 1000 * 1000 };
  nanosleep (&pause, NULL);	/* a write now would move the time */
  for (size_t i = 0; i < NREADONLY; i++)
    {
      struct run *r = run_readonly (i, path);
      if (strcmp (readonly[i][0], "leaks") && strcmp (readonly[i][0], "gc"))
	assert_int_equal (r->status, 0);	/* the others find what leaks are */
      assert_true (r->status <= 2);
      if (!tu_snap_same (path, &s))
	fail_msg ("mmtool %s %s changed the file", readonly[i][0],
		  readonly[i][1] ? readonly[i][1] : "");
    }
  char addr[32];
  snprintf (addr, sizeof addr, "0x%" PRIxPTR, K.str);
  assert_int_equal (MMTOOL ("dump", path, addr)->status, 0);
  assert_true (tu_snap_same (path, &s));
  free (s.bytes);
}

/* --- The commands ------------------------------------------------------- */

static void
info_says_what_the_header_says (void **state)
{
  (void) state;
  make_file ("a.heap");
  const char *p = tu_path ("a.heap");
  struct run *r = MMTOOL ("info", p);
  assert_int_equal (r->status, 0);
  assert_non_null (strstr (r->out, "state:       clean"));
  assert_non_null (strstr (r->out, "writer:      none"));
  assert_non_null (strstr (r->out, "keys set:    3 (0 1 2)"));
  char base[64];
  snprintf (base, sizeof base, "base:        0x%" PRIxPTR "\n", K.base);
  assert_non_null (strstr (r->out, base));
  r = MMTOOL ("--json", "info", p);
  assert_int_equal (r->status, 0);
  char expr[512];
  snprintf (expr, sizeof expr,
	    "d['version'] in (1, 2) and d['base'] == %" PRIuPTR " and d['size'] > 0"
	    " and d['size'] %% 4096 == 0 and d['clean'] is True and d['writer'] is False"
	    " and d['keys'] == [0, 1, 2]", K.base);
  json_holds (r, expr);
  /* A region that does not validate: the header's word all the same, with
     the reason, and status 2.  */
  int fd = open (p, O_RDWR);
  uint64_t sum;
  off_t at = (off_t) offsetof (struct mm_header, dir_sum);
  assert_int_equal (pread (fd, &sum, sizeof sum, at), (ssize_t) sizeof sum);
  sum ^= 1;
  assert_int_equal (pwrite (fd, &sum, sizeof sum, at), (ssize_t) sizeof sum);
  close (fd);
  const char *damaged = mmalloc_strerror (MMALLOC_ECORRUPT);
  r = MMTOOL ("info", p);
  assert_int_equal (r->status, 2);
  assert_non_null (strstr (r->out, base));
  assert_non_null (strstr (r->out, damaged));
  assert_non_null (strstr (r->err, damaged));
  r = MMTOOL ("info", "--json", p);
  assert_int_equal (r->status, 2);
  snprintf (expr, sizeof expr, "d['error'] == '%s' and d['base'] == %" PRIuPTR, damaged, K.base);
  json_holds (r, expr);
}

static void
stats_match_mmstats (void **state)
{
  (void) state;
  make_file ("a.heap");
  const char *p = tu_path ("a.heap");
  int fd = open (p, O_RDONLY);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  struct mstats st = mmstats (md);
  assert_null (mmalloc_detach (md));
  struct run *r = MMTOOL ("stats", p);
  assert_int_equal (r->status, 0);
  char line[128];
  snprintf (line, sizeof line, "chunks_used  %zu\nbytes_used   %zu\n", st.chunks_used,
	    st.bytes_used);
  assert_non_null (strstr (r->out, line));
  assert_non_null (strstr (r->out, "class   size  slabs"));
  r = MMTOOL ("stats", "--json", p);
  assert_int_equal (r->status, 0);
  char expr[768];
  snprintf (expr, sizeof expr,
	    "d['bytes_total'] == %zu and d['chunks_used'] == %zu and d['bytes_used'] == %zu"
	    " and d['chunks_free'] == %zu and d['bytes_free'] == %zu"
	    " and d['large_blocks'] == 1 and all(c['used'] + c['free'] == c['slots'] for c in"
	    " d['classes']) and sum(c['used'] for c in d['classes']) == %zu",
	    st.bytes_total, st.chunks_used, st.bytes_used, st.chunks_free, st.bytes_free,
	    K.nblocks - 1);
  json_holds (r, expr);
}

static void
keys_show_their_blocks (void **state)
{
  (void) state;
  make_file ("a.heap");
  const char *p = tu_path ("a.heap");
  struct run *r = MMTOOL ("keys", p);
  assert_int_equal (r->status, 0);
  /* Key 1 points 7 bytes into the string's block.  */
  char want[128];
  snprintf (want, sizeof want, "key  1: 0x%" PRIxPTR " (0x%" PRIxPTR " + 7) size 32:",
	    K.str + 7, K.str);
  assert_non_null (strstr (r->out, want));
  assert_non_null (strstr (r->out, "|was here........|"));
  r = MMTOOL ("keys", "--json", p);
  assert_int_equal (r->status, 0);
  char expr[512];
  snprintf (expr, sizeof expr,
	    "[k['key'] for k in d['keys']] == [0, 1, 2] and d['keys'][0]['block'] == %" PRIuPTR
	    " and d['keys'][1]['offset'] == 7 and d['keys'][1]['bytes'].startswith("
	    "'776173206865726500') and d['keys'][2]['size'] >= %d", K.list[0], BIG);
  json_holds (r, expr);
}

static void
walk_lists_every_block (void **state)
{
  (void) state;
  make_file ("a.heap");
  const char *p = tu_path ("a.heap");
  struct run *r = MMTOOL ("walk", p);
  assert_int_equal (r->status, 0);
  char want[64];
  for (int i = 0; i < NLIST; i++)
    {
      snprintf (want, sizeof want, "0x%" PRIxPTR " 64\n", K.list[i]);
      assert_non_null (strstr (r->out, want));
    }
  snprintf (want, sizeof want, "\n%zu blocks, ", K.nblocks);
  assert_non_null (strstr (r->out, want));
  r = MMTOOL ("walk", "--json", p);
  char expr[512];
  snprintf (expr, sizeof expr,
	    "d['count'] == %zu == len(d['blocks']) and d['complete'] and %" PRIuPTR
	    " in [b['address'] for b in d['blocks']] and d['bytes'] == sum(b['size'] for b in"
	    " d['blocks']) and [b['address'] for b in d['blocks']] == sorted(b['address'] for b"
	    " in d['blocks'])", K.nblocks, K.big);
  json_holds (r, expr);
  r = MMTOOL ("walk", "--histogram", "--json", p);
  assert_int_equal (r->status, 0);
  snprintf (expr, sizeof expr,
	    "sum(h['count'] for h in d['histogram']) == %zu and all(h['min'] <= h['max'] for h in"
	    " d['histogram'])", K.nblocks);
  json_holds (r, expr);
  r = MMTOOL ("walk", "--free", "--json", p);
  assert_int_equal (r->status, 0);
  json_holds (r, "d['count'] >= 1 and all(b['size'] % 4096 == 0 for b in d['runs'])");
}

/* A checked file's blocks show their allocation sites; those of an
   unchecked file show none.  */
static void
walk_shows_allocation_sites (void **state)
{
  (void) state;
  void *md = tu_new_file_heap ("sites.heap");
  assert_int_equal (mmcheck (md, NULL), 1);
  void *p = mmalloc (md, 100), *q = mmalloc (md, 50000);
  assert_int_equal (mmalloc_setkey (md, 0, p), 1);
  assert_int_equal (mmalloc_setkey (md, 1, q), 1);
  uintptr_t sp = (uintptr_t) mmalloc_block_site (md, p), sq = (uintptr_t) mmalloc_block_site (md, q);
  assert_true (sp && sq);
  assert_null (mmalloc_detach (md));
  const char *f = tu_path ("sites.heap");
  struct run *r = MMTOOL ("walk", f);
  assert_int_equal (r->status, 0);
  char want[96];
  snprintf (want, sizeof want, "0x%" PRIxPTR " 100 site 0x%" PRIxPTR "\n", (uintptr_t) p, sp);
  assert_non_null (strstr (r->out, want));
  snprintf (want, sizeof want, "0x%" PRIxPTR " 50000 site 0x%" PRIxPTR "\n", (uintptr_t) q, sq);
  assert_non_null (strstr (r->out, want));
  r = MMTOOL ("walk", "--json", f);
  char expr[256];
  snprintf (expr, sizeof expr, "sorted((b['address'], b['site']) for b in d['blocks']) =="
	    " sorted([(%" PRIuPTR ", %" PRIuPTR "), (%" PRIuPTR ", %" PRIuPTR ")])",
	    (uintptr_t) p, sp, (uintptr_t) q, sq);
  json_holds (r, expr);
  make_file ("plain.heap");
  r = MMTOOL ("walk", "--json", tu_path ("plain.heap"));
  json_holds (r, "len(d['blocks']) > 0 and all('site' not in b for b in d['blocks'])");
}

static void
check_exits_1_and_lists_problems (void **state)
{
  (void) state;
  make_file ("a.heap");
  const char *p = tu_path ("a.heap");
  struct run *r = MMTOOL ("check", p);
  assert_int_equal (r->status, 0);
  assert_non_null (strstr (r->out, ": 0 problems\n"));
  json_holds (MMTOOL ("check", "--json", p), "d['problems'] == 0 and d['reports'] == []");
  /* A derived counter off by one in a clean file: attach takes it, the
     check does not.  */
  int fd = open (p, O_RDWR);
  uint64_t n;
  off_t at = (off_t) offsetof (struct mm_header, nlarge);
  assert_int_equal (pread (fd, &n, sizeof n, at), (ssize_t) sizeof n);
  n++;
  assert_int_equal (pwrite (fd, &n, sizeof n, at), (ssize_t) sizeof n);
  close (fd);
  r = MMTOOL ("check", p);
  assert_int_equal (r->status, 1);
  assert_non_null (strstr (r->out, "mmalloc: "));
  assert_non_null (strstr (r->out, " problem"));
  r = MMTOOL ("check", "--json", p);
  assert_int_equal (r->status, 1);
  json_holds (r, "d['problems'] >= 1 and len(d['reports']) >= 1");
}

static void
dump_shows_a_block (void **state)
{
  (void) state;
  make_file ("a.heap");
  const char *p = tu_path ("a.heap");
  char addr[32];
  snprintf (addr, sizeof addr, "0x%" PRIxPTR, K.str);
  struct run *r = MMTOOL ("dump", p, addr);
  assert_int_equal (r->status, 0);
  assert_non_null (strstr (r->out, "6d 6d 74 6f 6f 6c 20 77  61 73 20 68 65 72 65 00"));
  assert_non_null (strstr (r->out, "|mmtool was here.|"));
  r = MMTOOL ("dump", "--json", p, addr, "6");
  assert_int_equal (r->status, 0);
  json_holds (r, "d['hex'] == '6d6d746f6f6c' and d['length'] == 6 and d['size'] == 32");
  /* Past the block's end: only the block.  */
  r = MMTOOL ("dump", "--json", p, addr, "1000");
  assert_int_equal (r->status, 0);
  json_holds (r, "d['length'] == 32");
  assert_non_null (strstr (r->err, "32 bytes shown"));
  /* Inside a block: from there.  */
  snprintf (addr, sizeof addr, "0x%" PRIxPTR, K.big + 100);
  r = MMTOOL ("dump", "--json", p, addr, "4");
  assert_int_equal (r->status, 0);
  unsigned char fill[BIG];
  tu_fill (fill, BIG, 7);
  char expr[128];
  snprintf (expr, sizeof expr, "d['hex'] == '%02x%02x%02x%02x' and d['block'] == %" PRIuPTR,
	    fill[100], fill[101], fill[102], fill[103], K.big);
  json_holds (r, expr);
  snprintf (addr, sizeof addr, "0x%" PRIxPTR, K.base);	/* the header */
  r = MMTOOL ("dump", p, addr);
  assert_int_equal (r->status, 2);
  assert_non_null (strstr (r->err, "in no allocated block"));
  assert_int_equal (MMTOOL ("dump", p, "0xzz")->status, 2);
  assert_int_equal (MMTOOL ("dump", p)->status, 2);
}

/* The blocks no key reaches: the dropped ones and the cycle, exactly.  */
static void
leaks_are_the_dropped_blocks_and_the_cycle (void **state)
{
  (void) state;
  make_file ("a.heap");
  const char *p = tu_path ("a.heap");
  struct run *r = MMTOOL ("leaks", "--json", p);
  assert_int_equal (r->status, 1);
  char expr[1024], *e = expr;
  e += sprintf (e, "sorted(b['address'] for b in d['blocks']) == sorted([");
  for (int i = 0; i < NDROP; i++)
    e += sprintf (e, "%" PRIuPTR ",", K.drop[i]);
  for (int i = 0; i < NCYCLE; i++)
    e += sprintf (e, "%" PRIuPTR ",", K.cycle[i]);
  sprintf (e, "]) and d['count'] == %d", NDROP + NCYCLE);
  json_holds (r, expr);
  struct tu_snap s;
  tu_snap_take (p, &s);
  r = MMTOOL ("gc", "--dry-run", p);
  assert_int_equal (r->status, 1);
  assert_true (tu_snap_same (p, &s));
  free (s.bytes);
  r = MMTOOL ("gc", p);
  assert_int_equal (r->status, 1);
  assert_int_equal (MMTOOL ("leaks", p)->status, 0);
  r = MMTOOL ("walk", "--json", p);
  snprintf (expr, sizeof expr, "d['count'] == %zu", K.nblocks - NDROP - NCYCLE);
  json_holds (r, expr);
  /* What the keys reach survived.  */
  int fd = open (p, O_RDONLY);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  struct node *n = mmalloc_getkey (md, 0);
  for (int i = 0; i < NLIST; i++, n = n->next)
    assert_int_equal (n->tag, 1000 + (uint64_t) i);
  assert_null (n);
  assert_true (tu_holds (mmalloc_getkey (md, 2), BIG, 7));
  tu_end_heap (md);
}

static void
recover_rebuilds_a_dirty_file (void **state)
{
  (void) state;
  make_dirty ("d.heap");
  const char *p = tu_path ("d.heap");
  struct run *r = MMTOOL ("info", p);
  assert_int_equal (r->status, 0);
  assert_non_null (strstr (r->out, "state:       needs recovery"));
  /* Read-only commands see it as recovery will make it.  */
  r = MMTOOL ("check", p);
  assert_int_equal (r->status, 0);
  r = MMTOOL ("walk", "--json", p);
  char expr[64];
  snprintf (expr, sizeof expr, "d['count'] == %zu", K.nblocks);
  json_holds (r, expr);
  readonly_commands_change_nothing (p);
  r = MMTOOL ("recover", "--json", p);
  assert_int_equal (r->status, 0);
  json_holds (r, "d['recovered'] is True");
  json_holds (MMTOOL ("info", "--json", p), "d['clean'] is True");
  r = MMTOOL ("recover", p);
  assert_int_equal (r->status, 0);
  assert_non_null (strstr (r->out, "nothing to recover"));
}

static void
readonly_commands_leave_files_unchanged (void **state)
{
  (void) state;
  make_file ("a.heap");
  readonly_commands_change_nothing (tu_path ("a.heap"));
}

static void
readonly_commands_beside_a_writer (void **state)
{
  (void) state;
  make_file ("w.heap");
  const char *p = tu_path ("w.heap");
  struct tu_holder w = tu_hold_start (p, 0);
  struct run *r = MMTOOL ("info", p);
  assert_int_equal (r->status, 0);
  assert_non_null (strstr (r->out, "state:       attached by a writer"));
  assert_non_null (strstr (r->out, "writer:      present"));
  readonly_commands_change_nothing (p);
  /* Writing needs the writer's lock.  */
  r = MMTOOL ("check", p);
  assert_int_equal (r->status, 0);
  assert_non_null (strstr (r->out, ": 0 problems (a writer has the file attached"));
  json_holds (MMTOOL ("check", "--json", p),
	      "d['problems'] == 0 and d['writer'] is True and d['clean'] is False");
  r = MMTOOL ("recover", p);
  assert_int_equal (r->status, 2);
  assert_non_null (strstr (r->err, mmalloc_strerror (MMALLOC_ELOCKED)));
  r = MMTOOL ("gc", p);
  assert_int_equal (r->status, 2);
  assert_non_null (strstr (r->err, mmalloc_strerror (MMALLOC_ELOCKED)));
  tu_hold_stop (w);
}

/* A file cut short while a command reads it (a writer shrinking it):
   the command's reads past the new end fault, and it says so and exits 2.
   The walk is held in the middle by its full output pipe while the file
   is cut.  */
static void
file_cut_under_a_walk_exits_2 (void **state)
{
  (void) state;
  void *md = tu_new_file_heap ("cut.heap");
  for (int i = 0; i < 8000; i++)
    assert_non_null (mmalloc (md, 16));
  tu_end_heap (md);
  const char *p = tu_path ("cut.heap");
  int out[2];
  assert_int_equal (pipe (out), 0);
  char errp[512];
  snprintf (errp, sizeof errp, "%s/tool.err", tu_dir ());
  fflush (NULL);
  pid_t pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      int e = open (errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (e < 0 || dup2 (out[1], 1) < 0 || dup2 (e, 2) < 0)
	_exit (126);
      close (out[0]);
      alarm (20);
      execl (tool (), "mmtool", "walk", p, (char *) NULL);
      _exit (127);
    }
  close (out[1]);
  /* Wait for the first full pipe's worth: the walk is under way.  */
  char buf[4096];
  size_t got = 0;
  ssize_t r;
  while (got < 4096 && (r = read (out[0], buf, sizeof buf - got)) > 0)
    got += (size_t) r;
  assert_int_equal (truncate (p, (off_t) (MM_HDR_PAGES + MM_LEAF_PAGES + 1) * MM_PAGE), 0);
  while (read (out[0], buf, sizeof buf) > 0)
    ;
  close (out[0]);
  int st;
  assert_int_equal (waitpid (pid, &st, 0), pid);
  assert_true (WIFEXITED (st));
  assert_int_equal (WEXITSTATUS (st), 2);
  char err[4096];
  slurp (errp, err, sizeof err);
  assert_non_null (strstr (err, "mmtool: the heap file shrank while it was read"));
}

static void
usage_errors_exit_2 (void **state)
{
  (void) state;
  make_file ("a.heap");
  const char *p = tu_path ("a.heap");
  struct run *r = MMTOOL ("--help");
  assert_int_equal (r->status, 0);
  assert_non_null (strstr (r->out, "Usage: mmtool"));
  r = MMTOOL ("--version");
  assert_int_equal (r->status, 0);
  assert_non_null (strstr (r->out, mmalloc_version ()));
  const char *const *bad[] = {
    (const char *const[]) { NULL },
    (const char *const[]) { "frob", p, NULL },
    (const char *const[]) { "info", NULL },
    (const char *const[]) { "info", p, "extra", NULL },
    (const char *const[]) { "walk", "--dry-run", p, NULL },
    (const char *const[]) { "walk", "--free", "--histogram", p, NULL },
    (const char *const[]) { "info", "--bogus", p, NULL },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      r = mmtool_v (bad[i]);
      assert_int_equal (r->status, 2);
      assert_true (!strncmp (r->err, "mmtool: ", 8));
      assert_non_null (strstr (r->err, "Usage: mmtool"));
      assert_string_equal (r->out, "");
    }
  /* Files that cannot be opened or attached: the reason, status 2.  */
  r = MMTOOL ("info", tu_path ("missing.heap"));
  assert_int_equal (r->status, 2);
  assert_non_null (strstr (r->err, strerror (ENOENT)));
  int fd = open (tu_path ("text"), O_RDWR | O_CREAT | O_TRUNC, 0600);
  assert_int_equal (write (fd, "not a heap at all\n", 18), 18);
  close (fd);
  for (size_t i = 0; i < NREADONLY; i++)
    {
      r = run_readonly (i, tu_path ("text"));
      assert_int_equal (r->status, 2);
      assert_non_null (strstr (r->err, mmalloc_strerror (MMALLOC_ENOTHEAP)));
    }
}

/* --- Damaged files ------------------------------------------------------ */

/* A small heap file of some of everything.  */
static void
make_small (const char *name)
{
  void *md = tu_new_file_heap (name);
  void *keep[40];
  for (int i = 0; i < 40; i++)
    {
      keep[i] = mmalloc (md, i % 8 == 0 ? 9000 + (size_t) i : 16 + (size_t) i * 24);
      assert_non_null (keep[i]);
    }
  for (int i = 0; i < 40; i += 3)
    mfree (md, keep[i]);
  mmalloc_setkey (md, 0, keep[1]);
  mmalloc_setkey (md, 5, keep[2]);
  tu_end_heap (md);
}

/* Damage IMG (LEN bytes, a heap of TOP pages) with a few mutations aimed
   at metadata: the header, the directory, the page map, the first bytes of
   pages (slab and run headers).  Three times in four the header's sums
   are made right again so that attach goes on to the rest; half of the
   time the file is marked dirty, so that the view recovers it.  Returns
   the new length (shorter: a truncated file).  */
static size_t
mutate (unsigned char *img, size_t len, uint64_t top, uint64_t *rnd)
{
  struct mm_header *h = (struct mm_header *) (void *) img;
  const uint32_t *dir = (const uint32_t *) (void *) (img + MM_PAGE);
  uint64_t leaf = dir[0];
  int n = 1 + (int) (tu_rnd (rnd) % 4);
  for (int i = 0; i < n; i++)
    {
      uint64_t r = tu_rnd (rnd), at;
      switch (r % 10)
	{
	case 0:
	  at = 8 + tu_rnd (rnd) % (sizeof *h - 8);
	  break;
	case 1:
	  at = MM_PAGE + tu_rnd (rnd) % 64;
	  break;
	case 2:
	case 3:
	case 4:
	case 5:
	  at = (leaf << MM_PAGE_SHIFT) + 4 * (tu_rnd (rnd) % top);
	  break;
	default:
	  at = (MM_HDR_PAGES + MM_LEAF_PAGES + tu_rnd (rnd) % (top - MM_HDR_PAGES - MM_LEAF_PAGES))
	    * MM_PAGE + tu_rnd (rnd) % 96;
	  break;
	}
      at &= ~(uint64_t) 3;
      if (at + 4 > len)
	continue;
      static const uint32_t pick[] = { 0, 1, 2, 0xffffffffu, 0x80000000u, 0x7fffffffu, 4096 };
      uint32_t v;
      memcpy (&v, img + at, 4);
      switch ((r >> 8) % 4)
	{
	case 0:
	  v ^= 1u << (tu_rnd (rnd) % 32);
	  break;
	case 1:
	  v = pick[tu_rnd (rnd) % (sizeof pick / sizeof pick[0])];
	  break;
	case 2:
	  v += (uint32_t) (tu_rnd (rnd) % 16) - 8;
	  break;
	default:
	  v = (uint32_t) tu_rnd (rnd);
	  break;
	}
      memcpy (img + at, &v, 4);
    }
  uint64_t r = tu_rnd (rnd);
  if (r % 4)
    {
      h->hdr_sum = mm_fmt_header_sum (h);
      h->dir_sum = mm_fmt_dir_sum (dir);
    }
  if ((r >> 4) % 2 == 0)
    h->state = MM_DIRTY;
  if ((r >> 8) % 16 == 0)
    len = (size_t) (tu_rnd (rnd) % len);
  return len;
}

static void
write_file (const char *path, const unsigned char *img, size_t len)
{
  int fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  assert_true (fd >= 0);
  assert_int_equal (write (fd, img, len), (ssize_t) len);
  close (fd);
}

/* Damaged files made and read: in make check, and under make stress.  */
#define NMUTANTS 300
#define NMUTANTS_STRESS 3000

/* Every read-only command, over damaged files: exit 0, 1 or 2, never a
   signal, and the file unchanged.  Each file gets one of the commands, in
   turn.  */
static void
damaged_files_never_crash_the_tool (void **state)
{
  (void) state;
  make_small ("small.heap");
  struct tu_snap orig;
  tu_snap_take (tu_path ("small.heap"), &orig);
  uint64_t top = ((const struct mm_header *) (const void *) orig.bytes)->top;
  unsigned char *img = malloc (orig.len);
  assert_non_null (img);
  const char *p = tu_path ("mutant.heap");
  uint64_t rnd = 0x6d6d746f6f6cULL;
  int status_seen[3] = { 0, 0, 0 };
  int nmutants = tu_stress () ? NMUTANTS_STRESS : NMUTANTS;
  for (int m = 0; m < nmutants; m++)
    {
      memcpy (img, orig.bytes, orig.len);
      size_t len = mutate ((unsigned char *) img, orig.len, top, &rnd);
      write_file (p, img, len);
      struct tu_snap s;
      tu_snap_take (p, &s);
      size_t c = (size_t) m % NREADONLY;
      struct run *r = run_readonly (c, p);
      if (r->status > 2)
	fail_msg ("mutant %d: mmtool %s: status %d: %s", m, readonly[c][0], r->status, r->err);
      status_seen[r->status]++;
      if (getenv ("MMTOOL_TEST_VERBOSE"))
	print_message ("mutant %d: %s: %d %s", m, readonly[c][0], r->status, r->err);
      if (!tu_snap_same (p, &s))
	fail_msg ("mutant %d: mmtool %s changed the file", m, readonly[c][0]);
      free (s.bytes);
    }
  /* The mutants reached past attach, and some were refused.  */
  assert_true (status_seen[0] > 0);
  assert_true (status_seen[2] > 0);
  free (img);
  free (orig.bytes);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (info_says_what_the_header_says),
    cmocka_unit_test (stats_match_mmstats),
    cmocka_unit_test (keys_show_their_blocks),
    cmocka_unit_test (walk_lists_every_block),
    cmocka_unit_test (walk_shows_allocation_sites),
    cmocka_unit_test (check_exits_1_and_lists_problems),
    cmocka_unit_test (dump_shows_a_block),
    cmocka_unit_test (leaks_are_the_dropped_blocks_and_the_cycle),
    cmocka_unit_test (recover_rebuilds_a_dirty_file),
    cmocka_unit_test (readonly_commands_leave_files_unchanged),
    cmocka_unit_test (readonly_commands_beside_a_writer),
    cmocka_unit_test (file_cut_under_a_walk_exits_2),
    cmocka_unit_test (usage_errors_exit_2),
    cmocka_unit_test (damaged_files_never_crash_the_tool),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
