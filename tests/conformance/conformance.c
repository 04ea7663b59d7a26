/* conformance.c -- an independent, black-box conformance test of mmalloc.

   Written only from the original GNU mmalloc README, the project's
   specification and the installed public header <mmalloc.h>.  It does not
   look at the library's sources.  Output is TAP-like:

       ok N - description
       not ok N - description
       # diagnostics

   and ends with the line "conformance: N passed, M failed".  The exit status
   is 0 only when M is 0.

   The program re-executes itself (argv[1] = "--child-...") for the checks
   that need a separate process: re-attaching a heap file at its recorded
   address, the default heap's first use, and tracing.  Misuse checks run in
   forked children whose abort function _exit()s with a marker code.  */

#define _GNU_SOURCE 1

#include <mmalloc.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXALIGN (_Alignof (max_align_t))
#define KiB ((size_t) 1 << 10)
#define MiB ((size_t) 1 << 20)
#define GiB ((size_t) 1 << 30)
#define ABORT_MARKER 42	/* exit code of our abort function */
#define CHECK_MARKER 43	/* mmalloc_check reported a problem */

/* ------------------------------------------------------------------------- */
/* Reporting.                                                                 */

static int n_run, n_pass, n_fail;
static char tmpdir[1024];
static char self_exe[PATH_MAX];

static void
diag (const char *fmt, ...)
{
  va_list ap;
  fputs ("# ", stdout);
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  fputc ('\n', stdout);
  fflush (stdout);
}

static int
check (int cond, const char *fmt, ...)
{
  va_list ap;
  n_run++;
  if (cond)
    {
      n_pass++;
      printf ("ok %d - ", n_run);
    }
  else
    {
      n_fail++;
      printf ("not ok %d - ", n_run);
    }
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  fputc ('\n', stdout);
  fflush (stdout);
  return cond;
}

static int
finish (const char *name)
{
  printf ("%s: %d passed, %d failed\n", name, n_pass, n_fail);
  fflush (stdout);
  return n_fail == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------------- */
/* Helpers.                                                                   */

static int
aligned (const void *p, size_t a)
{
  return ((uintptr_t) p & (a - 1)) == 0;
}

static unsigned char
pat (size_t i, unsigned seed)
{
  return (unsigned char) (seed * 73u + i * 131u + (i >> 9) + 7u);
}

static void
fill (void *p, size_t n, unsigned seed)
{
  unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    c[i] = pat (i, seed);
}

static int
verify (const void *p, size_t n, unsigned seed)
{
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    if (c[i] != pat (i, seed))
      return 0;
  return 1;
}

static int
all_zero (const void *p, size_t n)
{
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    if (c[i] != 0)
      return 0;
  return 1;
}

static int
stats_sane (struct mstats s)
{
  return s.bytes_used <= s.bytes_total && s.bytes_free <= s.bytes_total
	 && s.bytes_used + s.bytes_free <= s.bytes_total;
}

static void
tmppath (char *buf, size_t len, const char *name)
{
  snprintf (buf, len, "%s/%s", tmpdir, name);
}

static char *
read_whole (const char *path, size_t *lenp)
{
  int fd = open (path, O_RDONLY);
  size_t cap = 4096, len = 0;
  char *buf = malloc (cap + 1);
  if (lenp)
    *lenp = 0;
  if (!buf)
    return NULL;
  buf[0] = 0;
  if (fd < 0)
    return buf;
  for (;;)
    {
      ssize_t n;
      if (len == cap)
	{
	  char *nb = realloc (buf, cap * 2 + 1);
	  if (!nb)
	    break;
	  buf = nb;
	  cap *= 2;
	}
      n = read (fd, buf + len, cap - len);
      if (n <= 0)
	break;
      len += (size_t) n;
    }
  close (fd);
  buf[len] = 0;
  if (lenp)
    *lenp = len;
  return buf;
}

static int
write_file (const char *path, const void *data, size_t len)
{
  int fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  const char *c = data;
  if (fd < 0)
    return -1;
  while (len > 0)
    {
      ssize_t n = write (fd, c, len);
      if (n <= 0)
	{
	  close (fd);
	  return -1;
	}
      c += n;
      len -= (size_t) n;
    }
  return close (fd);
}

static off_t
file_size (const char *path)
{
  struct stat st;
  if (stat (path, &st) != 0)
    return -1;
  return st.st_size;
}

static int
count_lines (const char *s)
{
  int n = 0;
  for (; *s; s++)
    if (*s == '\n')
      n++;
  return n;
}

/* Does S contain the address P written in hex (any case, with or without 0x)?  */
static int
names_addr (const char *s, const void *p)
{
  char hex[32];
  size_t hl;
  snprintf (hex, sizeof hex, "%lx", (unsigned long) (uintptr_t) p);
  hl = strlen (hex);
  for (const char *q = s; *q; q++)
    if (strncasecmp (q, hex, hl) == 0
	&& !(q > s && isxdigit ((unsigned char) q[-1]) && q[-1] != 'x' && q[-1] != 'X')
	&& !isxdigit ((unsigned char) q[hl]))
      return 1;
  return 0;
}

/* Copy S with hex numbers replaced by "#", so that messages about different
   pointers but the same problem compare equal.  */
static void
normalize_msg (const char *s, char *out, size_t outlen)
{
  size_t o = 0;
  while (*s && o + 2 < outlen)
    {
      if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
	{
	  s += 2;
	  while (isxdigit ((unsigned char) *s))
	    s++;
	  out[o++] = '#';
	}
      else if (isxdigit ((unsigned char) *s))
	{
	  const char *t = s;
	  while (isxdigit ((unsigned char) *t))
	    t++;
	  if (t - s >= 6)
	    {
	      out[o++] = '#';
	      s = t;
	    }
	  else
	    while (s < t && o + 2 < outlen)
	      out[o++] = *s++;
	}
      else
	out[o++] = *s++;
    }
  out[o] = 0;
}

/* S with newlines shown as \n, for quoting in a one-line description.  */
static const char *
quoted (const char *s)
{
  static char buf[4][400];
  static int k;
  char *b = buf[k++ & 3];
  size_t o = 0;
  for (; s && *s && o + 3 < sizeof buf[0]; s++)
    if (*s == '\n')
      {
	b[o++] = '\\';
	b[o++] = 'n';
      }
    else
      b[o++] = *s;
  b[o] = 0;
  return b;
}

static void
describe_status (int status, char *buf, size_t len)
{
  if (WIFEXITED (status))
    snprintf (buf, len, "exit %d", WEXITSTATUS (status));
  else if (WIFSIGNALED (status))
    snprintf (buf, len, "signal %d (%s)", WTERMSIG (status), strsignal (WTERMSIG (status)));
  else
    snprintf (buf, len, "status 0x%x", status);
}

/* ------------------------------------------------------------------------- */
/* Child processes.                                                           */

struct child
{
  int status;
  char *out;
  char *err;
};

static void
child_free (struct child *c)
{
  free (c->out);
  free (c->err);
  c->out = c->err = NULL;
}

static void
child_redirect (const char *outp, const char *errp)
{
  int o = open (outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int e = open (errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (o < 0 || e < 0)
    _exit (126);
  dup2 (o, 1);
  dup2 (e, 2);
  close (o);
  close (e);
}

static void
child_collect (pid_t pid, const char *outp, const char *errp, struct child *c)
{
  int st = 0;
  if (pid < 0)
    st = 127 << 8;
  else
    while (waitpid (pid, &st, 0) < 0 && errno == EINTR)
      ;
  c->status = st;
  c->out = read_whole (outp, NULL);
  c->err = read_whole (errp, NULL);
}

/* Run this program again with ARGV (argv[0] included); ENVK set to ENVV (or
   unset when ENVV is NULL) if ENVK is not NULL.  */
static void
spawn_self (char *const argv[], const char *envk, const char *envv, struct child *c)
{
  char outp[PATH_MAX], errp[PATH_MAX];
  pid_t pid;
  tmppath (outp, sizeof outp, "child.out");
  tmppath (errp, sizeof errp, "child.err");
  fflush (stdout);
  fflush (stderr);
  pid = fork ();
  if (pid == 0)
    {
      child_redirect (outp, errp);
      if (envk)
	{
	  if (envv)
	    setenv (envk, envv, 1);
	  else
	    unsetenv (envk);
	}
      alarm (300);
      execv (self_exe, argv);
      _exit (127);
    }
  child_collect (pid, outp, errp, c);
}

/* Run FN (ARG) in a forked child; the child _exit(0)s if FN returns.  */
static void
fork_run (void (*fn) (void *), void *arg, struct child *c)
{
  char outp[PATH_MAX], errp[PATH_MAX];
  pid_t pid;
  tmppath (outp, sizeof outp, "fork.out");
  tmppath (errp, sizeof errp, "fork.err");
  fflush (stdout);
  fflush (stderr);
  pid = fork ();
  if (pid == 0)
    {
      child_redirect (outp, errp);
      alarm (120);
      fn (arg);
      _exit (0);
    }
  child_collect (pid, outp, errp, c);
}

/* Re-emit a child's "ok"/"not ok" lines as our own checks.  */
static void
relay (const char *label, const struct child *c)
{
  const char *s = c->out;
  char line[1024];
  while (s && *s)
    {
      const char *nl = strchr (s, '\n');
      size_t len = nl ? (size_t) (nl - s) : strlen (s);
      if (len >= sizeof line)
	len = sizeof line - 1;
      memcpy (line, s, len);
      line[len] = 0;
      if (strncmp (line, "ok ", 3) == 0 || strncmp (line, "not ok ", 7) == 0)
	{
	  const char *d = strstr (line, " - ");
	  check (line[0] == 'o', "[%s] %s", label, d ? d + 3 : line);
	}
      else if (line[0])
	diag ("[%s] %s", label, line);
      s = nl ? nl + 1 : s + len;
    }
  if (c->err && c->err[0])
    diag ("[%s stderr] %s", label, quoted (c->err));
}

/* ------------------------------------------------------------------------- */
/* Versions, error strings, constants.                                        */

static void
test_version (void)
{
  char buf[64];
  const char *v = mmalloc_version ();
  check (v != NULL && strcmp (v, MMALLOC_VERSION_STRING) == 0,
	 "mmalloc_version() \"%s\" equals MMALLOC_VERSION_STRING \"%s\"",
	 v ? v : "(null)", MMALLOC_VERSION_STRING);
  snprintf (buf, sizeof buf, "%d.%d.%d", MMALLOC_VERSION_MAJOR, MMALLOC_VERSION_MINOR,
	    MMALLOC_VERSION_PATCH);
  check (strcmp (buf, MMALLOC_VERSION_STRING) == 0,
	 "MMALLOC_VERSION_MAJOR/MINOR/PATCH agree with MMALLOC_VERSION_STRING");
  check (MMALLOC_VERSION == MMALLOC_VERSION_MAJOR * 10000 + MMALLOC_VERSION_MINOR * 100
			    + MMALLOC_VERSION_PATCH, "MMALLOC_VERSION is consistent");
  check (MMALLOC_KEYS == 16, "MMALLOC_KEYS is 16");
}

static void
test_strerror (void)
{
  static const int own[] = { MMALLOC_ENOTHEAP, MMALLOC_EVERSION, MMALLOC_EMACHINE,
			     MMALLOC_ECORRUPT, MMALLOC_ETRUNCATED, MMALLOC_EADDRINUSE,
			     MMALLOC_ELOCKED };
  static const int sys[] = { 0, ENOMEM, EINVAL, EBADF, EROFS, ENOSPC, EACCES, 0x7ffffff0, -3 };
  int ok = 1, distinct = 1;
  const size_t nown = sizeof own / sizeof own[0];
  for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++)
    {
      const char *s = mmalloc_strerror (sys[i]);
      if (!s || !s[0])
	{
	  ok = 0;
	  diag ("mmalloc_strerror(%d) is %s", sys[i], s ? "empty" : "NULL");
	}
    }
  for (size_t i = 0; i < nown; i++)
    {
      const char *s = mmalloc_strerror (own[i]);
      if (!s || !s[0])
	{
	  ok = 0;
	  diag ("mmalloc_strerror(0x%x) is %s", own[i], s ? "empty" : "NULL");
	  continue;
	}
      for (size_t j = 0; j < i; j++)
	{
	  const char *t = mmalloc_strerror (own[j]);
	  if (t && strcmp (s, t) == 0)
	    distinct = 0;
	}
    }
  check (ok, "mmalloc_strerror returns a non-empty string for errno values, MMALLOC_E* codes and unknown codes");
  check (distinct, "mmalloc_strerror gives distinct texts for the MMALLOC_E* codes");
  {
    const char *s = mmalloc_strerror (ENOMEM);
    diag ("mmalloc_strerror(ENOMEM) = \"%s\"; mmalloc_strerror(MMALLOC_ETRUNCATED) = \"%s\"",
	  s ? s : "(null)", mmalloc_strerror (MMALLOC_ETRUNCATED) ? mmalloc_strerror (MMALLOC_ETRUNCATED) : "(null)");
  }
}

/* ------------------------------------------------------------------------- */
/* Allocation basics.                                                         */

/* Allocate every size 0..2048 at once, then larger sizes one by one.  */
static void
test_alloc_sweep (void *md, const char *label, size_t maxbig)
{
  enum { NS = 2049 };
  void **ptr = calloc (NS, sizeof *ptr);
  int nnull = 0, nalign = 0, nusable = 0, ncontent = 0;
  size_t s;
  for (s = 0; s < NS; s++)
    {
      void *p = mmalloc (md, s);
      ptr[s] = p;
      if (!p)
	{
	  if (nnull++ == 0)
	    diag ("%s: mmalloc(%zu) returned NULL (errno %d)", label, s, errno);
	  continue;
	}
      if (!aligned (p, MAXALIGN) && nalign++ == 0)
	diag ("%s: mmalloc(%zu) = %p not aligned to %zu", label, s, p, (size_t) MAXALIGN);
      if (mmalloc_usable_size (md, p) < s && nusable++ == 0)
	diag ("%s: mmalloc_usable_size after mmalloc(%zu) is %zu", label, s,
	      mmalloc_usable_size (md, p));
      fill (p, s, (unsigned) s);
    }
  for (s = 0; s < NS; s++)
    if (ptr[s] && !verify (ptr[s], s, (unsigned) s) && ncontent++ == 0)
      diag ("%s: block of size %zu at %p was overwritten (blocks overlap?)", label, s, ptr[s]);
  for (s = 0; s < NS; s++)
    mfree (md, ptr[s]);

  /* Larger sizes: around every power of two from 4 KiB to MAXBIG.  */
  for (size_t k = 12; ((size_t) 1 << k) <= maxbig; k++)
    for (int d = -1; d <= 1; d++)
      {
	size_t sz = ((size_t) 1 << k) + (size_t) d;
	unsigned char *p = mmalloc (md, sz);
	if (!p)
	  {
	    if (nnull++ == 0)
	      diag ("%s: mmalloc(%zu) returned NULL (errno %d)", label, sz, errno);
	    continue;
	  }
	if (!aligned (p, MAXALIGN) && nalign++ == 0)
	  diag ("%s: mmalloc(%zu) = %p not aligned", label, sz, (void *) p);
	if (mmalloc_usable_size (md, p) < sz && nusable++ == 0)
	  diag ("%s: usable size of a %zu block is %zu", label, sz, mmalloc_usable_size (md, p));
	p[0] = 1;
	p[sz / 2] = 2;
	p[sz - 1] = 3;
	if ((p[0] != 1 || p[sz / 2] != 2 || p[sz - 1] != 3) && ncontent++ == 0)
	  diag ("%s: block of size %zu does not hold its bytes", label, sz);
	mfree (md, p);
      }
  /* mcalloc and mrealloc results too.  */
  for (s = 1; s < 5000; s += 97)
    {
      void *p = mcalloc (md, s, 3);
      void *q;
      if (!p)
	{
	  nnull++;
	  continue;
	}
      if (!aligned (p, MAXALIGN) && nalign++ == 0)
	diag ("%s: mcalloc(%zu, 3) = %p not aligned", label, s, p);
      q = mrealloc (md, p, s * 7 + 1);
      if (!q)
	{
	  nnull++;
	  mfree (md, p);
	  continue;
	}
      if (!aligned (q, MAXALIGN) && nalign++ == 0)
	diag ("%s: mrealloc(.., %zu) = %p not aligned", label, s * 7 + 1, q);
      mfree (md, q);
    }
  free (ptr);
  check (nnull == 0, "%s: allocations of sizes 0..2048 and 4 KiB..%zu MiB (+-1) succeed", label,
	 maxbig / MiB);
  check (nalign == 0, "%s: every mmalloc/mcalloc/mrealloc pointer is aligned to max_align_t (%zu)",
	 label, (size_t) MAXALIGN);
  check (nusable == 0, "%s: mmalloc_usable_size is at least the size asked for", label);
  check (ncontent == 0, "%s: 2049 live blocks of different sizes keep their contents (no overlap)",
	 label);
}

static void
test_zero_size (void *md, const char *label)
{
  enum { NZ = 64 };
  void *z[NZ];
  void *one = mmalloc (md, 1);
  int nnull = 0, dup = 0, nalign = 0;
  for (int i = 0; i < NZ; i++)
    {
      z[i] = mmalloc (md, 0);
      if (!z[i])
	nnull++;
      else if (!aligned (z[i], MAXALIGN))
	nalign++;
    }
  for (int i = 0; i < NZ; i++)
    {
      if (!z[i])
	continue;
      if (z[i] == one)
	dup++;
      for (int j = 0; j < i; j++)
	if (z[i] == z[j])
	  dup++;
    }
  check (nnull == 0, "%s: mmalloc(md, 0) returns a non-NULL pointer (64 times)", label);
  check (dup == 0, "%s: pointers from mmalloc(md, 0) are unique among live blocks", label);
  check (nalign == 0, "%s: mmalloc(md, 0) pointers are aligned", label);
  for (int i = 0; i < NZ; i++)
    mfree (md, z[i]);
  mfree (md, one);
  mfree (md, NULL);
  check (1, "%s: zero-size blocks can be freed; mfree(md, NULL) does nothing", label);
}

static void
test_huge (void *md, const char *label)
{
  static const size_t sizes[] = {
    SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4095, SIZE_MAX / 2 + 1, SIZE_MAX / 2,
    (size_t) 1 << 62, (size_t) 1 << 50, (size_t) 1 << 48,
  };
  static const size_t cal[][2] = {
    { SIZE_MAX, 2 }, { 2, SIZE_MAX }, { SIZE_MAX / 2 + 1, 2 }, { (size_t) 1 << 33, (size_t) 1 << 33 },
    { SIZE_MAX, SIZE_MAX }, { (SIZE_MAX / 3) + 1, 3 }, { 65537, (SIZE_MAX / 65536) },
  };
  int bad = 0, baderrno = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    {
      void *p;
      errno = 0;
      p = mmalloc (md, sizes[i]);
      if (p)
	{
	  bad++;
	  diag ("%s: mmalloc(%zu) did not fail", label, sizes[i]);
	  mfree (md, p);
	}
      else if (errno != ENOMEM)
	{
	  baderrno++;
	  diag ("%s: mmalloc(%zu): errno %d, not ENOMEM", label, sizes[i], errno);
	}
    }
  check (bad == 0 && baderrno == 0, "%s: mmalloc of sizes that cannot be had returns NULL with errno ENOMEM",
	 label);
  if (md)
    check (mmalloc_errno (md) == ENOMEM, "%s: mmalloc_errno(md) is ENOMEM after a failed mmalloc (got %d)",
	   label, mmalloc_errno (md));

  bad = baderrno = 0;
  for (size_t i = 0; i < sizeof cal / sizeof cal[0]; i++)
    {
      void *p;
      errno = 0;
      p = mcalloc (md, cal[i][0], cal[i][1]);
      if (p)
	{
	  bad++;
	  diag ("%s: mcalloc(%zu, %zu) did not fail", label, cal[i][0], cal[i][1]);
	  mfree (md, p);
	}
      else if (errno != ENOMEM)
	{
	  baderrno++;
	  diag ("%s: mcalloc(%zu, %zu): errno %d, not ENOMEM", label, cal[i][0], cal[i][1], errno);
	}
    }
  check (bad == 0 && baderrno == 0, "%s: mcalloc whose product overflows returns NULL with errno ENOMEM",
	 label);

  {
    void *p;
    int ok = 1;
    errno = 0;
    volatile size_t max = SIZE_MAX;	/* not a constant the compiler rejects */
    p = mvalloc (md, max - 10);
    if (p || errno != ENOMEM)
      {
	ok = 0;
	diag ("%s: mvalloc(SIZE_MAX-10) = %p errno %d", label, p, errno);
      }
    errno = 0;
    p = mmemalign (md, 4096, max - 100);
    if (p || errno != ENOMEM)
      {
	ok = 0;
	diag ("%s: mmemalign(4096, SIZE_MAX-100) = %p errno %d", label, p, errno);
      }
    errno = 0;
    p = mmemalign (md, GiB, max - GiB / 2);
    if (p || errno != ENOMEM)
      {
	ok = 0;
	diag ("%s: mmemalign(1 GiB, SIZE_MAX-512 MiB) = %p errno %d", label, p, errno);
      }
    check (ok, "%s: huge mvalloc and mmemalign return NULL with errno ENOMEM", label);
  }

  {
    char *p = mmalloc (md, 100), *q;
    int ok = p != NULL;
    if (p)
      {
	fill (p, 100, 9);
	errno = 0;
	volatile size_t max = SIZE_MAX;
	q = mrealloc (md, p, max - 64);
	ok = q == NULL && errno == ENOMEM && verify (p, 100, 9);
	if (!ok)
	  diag ("%s: mrealloc(p, SIZE_MAX-64) = %p errno %d", label, (void *) q, errno);
	mfree (md, q ? q : p);
      }
    check (ok, "%s: mrealloc to a huge size returns NULL, ENOMEM, and leaves the block intact", label);
  }
  {
    void *p = mmalloc (md, 1000);
    check (p != NULL, "%s: the heap still works after the failed huge requests", label);
    mfree (md, p);
  }
}

static void
test_memalign (void *md, const char *label, int maxlog)
{
  static const size_t badal[] = { 0, 3, 5, 6, 7, 12, 24, 100, 1000, 4097, 4096 + 2048,
				  ((size_t) 1 << 20) + 4096, ((size_t) 1 << 30) + 1, SIZE_MAX,
				  SIZE_MAX - 1 };
  int nfail = 0;
  for (int k = 0; k <= maxlog; k++)
    {
      size_t a = (size_t) 1 << k;
      unsigned char *p;
      errno = 0;
      p = mmemalign (md, a, 100);
      if (!p || !aligned (p, a) || !aligned (p, MAXALIGN))
	{
	  if (nfail++ < 5)
	    diag ("%s: mmemalign(%zu, 100) = %p (errno %d)", label, a, (void *) p, errno);
	}
      else
	{
	  fill (p, 100, (unsigned) k);
	  if (!verify (p, 100, (unsigned) k))
	    nfail++;
	}
      mfree (md, p);
    }
  check (nfail == 0, "%s: mmemalign accepts every power-of-two alignment 1 .. 2^%d and aligns", label,
	 maxlog);

  nfail = 0;
  {
    static const size_t combos[][2] = { { 4096, 1 << 20 }, { 64, 100000 }, { 1 << 16, 3 << 16 },
					{ 1 << 20, 5 << 20 }, { 256, 0 }, { 8192, 8192 } };
    void *ps[6];
    for (int i = 0; i < 6; i++)
      {
	ps[i] = mmemalign (md, combos[i][0], combos[i][1]);
	if (!ps[i] || !aligned (ps[i], combos[i][0])
	    || mmalloc_usable_size (md, ps[i]) < combos[i][1])
	  {
	    nfail++;
	    diag ("%s: mmemalign(%zu, %zu) = %p", label, combos[i][0], combos[i][1], ps[i]);
	  }
	else
	  fill (ps[i], combos[i][1], (unsigned) i);
      }
    for (int i = 0; i < 6; i++)
      if (ps[i] && !verify (ps[i], combos[i][1], (unsigned) i))
	nfail++;
    for (int i = 0; i < 6; i++)
      mfree (md, ps[i]);
  }
  check (nfail == 0, "%s: mmemalign with larger sizes (several live at once) aligns and holds contents",
	 label);

  nfail = 0;
  for (size_t i = 0; i < sizeof badal / sizeof badal[0]; i++)
    {
      void *p;
      errno = 0;
      p = mmemalign (md, badal[i], 64);
      if (p || errno != EINVAL)
	{
	  nfail++;
	  diag ("%s: mmemalign(%zu, 64) = %p errno %d (want NULL, EINVAL)", label, badal[i], p, errno);
	  mfree (md, p);
	}
    }
  check (nfail == 0, "%s: mmemalign with an alignment that is not a power of two gives NULL and EINVAL",
	 label);
  if (md)
    check (mmalloc_errno (md) == EINVAL, "%s: mmalloc_errno(md) is EINVAL after a bad alignment (got %d)",
	   label, mmalloc_errno (md));
}

static void
test_valloc (void *md, const char *label)
{
  static const size_t sizes[] = { 0, 1, 100, 4095, 4096, 4097, 10000, 65536, 1 << 20, (3 << 20) + 5 };
  enum { NV = sizeof sizes / sizeof sizes[0] };
  size_t page = (size_t) sysconf (_SC_PAGESIZE);
  void *p[NV];
  int bad = 0;
  for (size_t i = 0; i < NV; i++)
    {
      p[i] = mvalloc (md, sizes[i]);
      if (!p[i] || !aligned (p[i], page) || mmalloc_usable_size (md, p[i]) < sizes[i])
	{
	  bad++;
	  diag ("%s: mvalloc(%zu) = %p (page %zu)", label, sizes[i], p[i], page);
	}
      else
	fill (p[i], sizes[i], (unsigned) i);
    }
  for (size_t i = 0; i < NV; i++)
    if (p[i] && !verify (p[i], sizes[i], (unsigned) i))
      bad++;
  for (size_t i = 0; i < NV; i++)
    mfree (md, p[i]);
  check (bad == 0, "%s: mvalloc returns page-aligned (%zu) blocks of sizes 0 .. 3 MiB", label, page);
}

static void
test_calloc (void *md, const char *label)
{
  static const size_t sizes[] = { 1, 8, 24, 100, 1000, 4096, 5000, 70000, 1 << 20, 3 << 20 };
  enum { NC = sizeof sizes / sizeof sizes[0] };
  void *p[NC];
  int bad = 0;
  /* Dirty memory first so that reuse would show.  */
  for (size_t i = 0; i < NC; i++)
    {
      p[i] = mmalloc (md, sizes[i]);
      if (p[i])
	memset (p[i], 0xff, sizes[i]);
    }
  for (size_t i = 0; i < NC; i++)
    mfree (md, p[i]);
  for (size_t i = 0; i < NC; i++)
    {
      p[i] = mcalloc (md, sizes[i], 1);
      if (!p[i] || !all_zero (p[i], sizes[i]))
	{
	  bad++;
	  diag ("%s: mcalloc(%zu, 1) = %p not zeroed", label, sizes[i], p[i]);
	}
      else
	memset (p[i], 0xee, sizes[i]);
    }
  for (size_t i = 0; i < NC; i++)
    mfree (md, p[i]);
  for (size_t i = 0; i < NC; i++)
    {
      p[i] = mcalloc (md, 4, sizes[i]);
      if (!p[i] || !all_zero (p[i], 4 * sizes[i]))
	{
	  bad++;
	  diag ("%s: mcalloc(4, %zu) = %p not zeroed", label, sizes[i], p[i]);
	}
    }
  for (size_t i = 0; i < NC; i++)
    mfree (md, p[i]);
  check (bad == 0, "%s: mcalloc returns zeroed memory, also when reusing dirty blocks", label);
}

static void
test_realloc (void *md, const char *label)
{
  static const size_t ladder[] = { 1, 2, 3, 8, 15, 16, 17, 31, 64, 100, 255, 256, 1000, 4095, 4096,
				   4097, 10000, 65536, 100000, 1 << 20, 3 << 20, 5000000, 100000,
				   4097, 4096, 1000, 100, 17, 3, 1, 200000, 7 };
  unsigned char *p;
  size_t cur;
  int bad = 0, nalign = 0;

  p = mrealloc (md, NULL, 1);
  check (p != NULL, "%s: mrealloc(md, NULL, n) acts as mmalloc", label);
  cur = 1;
  if (p)
    fill (p, 1, 0);
  for (size_t i = 1; p && i < sizeof ladder / sizeof ladder[0]; i++)
    {
      size_t n = ladder[i], keep = cur < n ? cur : n;
      unsigned char *q = mrealloc (md, p, n);
      if (!q)
	{
	  bad++;
	  diag ("%s: mrealloc(%zu -> %zu) failed, errno %d", label, cur, n, errno);
	  break;
	}
      if (!aligned (q, MAXALIGN))
	nalign++;
      if (!verify (q, keep, (unsigned) (i - 1)))
	{
	  bad++;
	  diag ("%s: mrealloc(%zu -> %zu) lost contents", label, cur, n);
	}
      if (mmalloc_usable_size (md, q) < n)
	{
	  bad++;
	  diag ("%s: after mrealloc to %zu usable size is %zu", label, n, mmalloc_usable_size (md, q));
	}
      fill (q, n, (unsigned) i);
      p = q;
      cur = n;
    }
  mfree (md, p);
  check (bad == 0, "%s: mrealloc preserves contents growing and shrinking (1 B .. 5 MB)", label);
  check (nalign == 0, "%s: mrealloc results are aligned", label);

  bad = 0;
  {
    static const size_t als[] = { 16, 64, 256, 4096, 65536, 1 << 20 };
    for (size_t i = 0; i < sizeof als / sizeof als[0]; i++)
      {
	unsigned char *a = mmemalign (md, als[i], 100), *b, *c;
	if (!a)
	  {
	    bad++;
	    continue;
	  }
	fill (a, 100, 50 + (unsigned) i);
	b = mrealloc (md, a, 200000);
	if (!b || !verify (b, 100, 50 + (unsigned) i))
	  {
	    bad++;
	    diag ("%s: mrealloc(mmemalign(%zu, 100), 200000) = %p lost contents", label, als[i], (void *) b);
	    mfree (md, b ? b : a);
	    continue;
	  }
	fill (b, 200000, 60);
	c = mrealloc (md, b, 50);
	if (!c || !verify (c, 50, 60))
	  {
	    bad++;
	    diag ("%s: shrinking a realloc'ed memaligned block lost contents", label);
	    mfree (md, c ? c : b);
	    continue;
	  }
	mfree (md, c);
	/* Shrink and grow a memaligned block directly.  */
	a = mmemalign (md, als[i], 10000);
	if (!a)
	  {
	    bad++;
	    continue;
	  }
	fill (a, 10000, 70);
	b = mrealloc (md, a, 10);
	if (!b || !verify (b, 10, 70))
	  {
	    bad++;
	    diag ("%s: mrealloc(mmemalign(%zu, 10000), 10) lost contents", label, als[i]);
	    mfree (md, b ? b : a);
	    continue;
	  }
	c = mrealloc (md, b, 20000);
	if (!c || !verify (c, 10, 70))
	  {
	    bad++;
	    mfree (md, c ? c : b);
	    continue;
	  }
	mfree (md, c);
      }
  }
  check (bad == 0, "%s: mrealloc works on mmemalign'ed pointers (alignments 16 .. 1 MiB)", label);

  {
    void *z = mmalloc (md, 100), *r;
    r = z ? mrealloc (md, z, 0) : NULL;
    check (r != NULL, "%s: mrealloc(md, p, 0) leaves a minimal block that can be freed", label);
    mfree (md, r ? r : z);
  }
  {
    /* A mvalloc'ed block too.  */
    unsigned char *v = mvalloc (md, 3000), *w;
    int ok = v != NULL;
    if (v)
      {
	fill (v, 3000, 80);
	w = mrealloc (md, v, 300000);
	ok = w && verify (w, 3000, 80);
	mfree (md, w ? w : v);
      }
    check (ok, "%s: mrealloc works on mvalloc'ed pointers", label);
  }
}

static void
test_keys (void *md, const char *label)
{
  static int anchors[MMALLOC_KEYS];
  int fresh_null = 1, set_ok = 1, get_ok = 1, out_ok = 1;
  static const int outs[] = { -1, -100, MMALLOC_KEYS, MMALLOC_KEYS + 1, 1000, INT_MIN, INT_MAX };
  for (int k = 0; k < MMALLOC_KEYS; k++)
    if (mmalloc_getkey (md, k) != NULL)
      fresh_null = 0;
  check (fresh_null, "%s: a new heap has all keys NULL", label);
  for (int k = 0; k < MMALLOC_KEYS; k++)
    if (mmalloc_setkey (md, k, &anchors[k]) != 1)
      set_ok = 0;
  for (int k = 0; k < MMALLOC_KEYS; k++)
    if (mmalloc_getkey (md, k) != &anchors[k])
      get_ok = 0;
  check (set_ok, "%s: mmalloc_setkey returns 1 for keys 0..15", label);
  check (get_ok, "%s: mmalloc_getkey returns what was set for keys 0..15", label);
  for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++)
    {
      int r;
      void *g;
      errno = 0;
      r = mmalloc_setkey (md, outs[i], &anchors[0]);
      if (r != 0)
	{
	  out_ok = 0;
	  diag ("%s: mmalloc_setkey(md, %d, ..) returned %d", label, outs[i], r);
	}
      g = mmalloc_getkey (md, outs[i]);
      if (g != NULL)
	{
	  out_ok = 0;
	  diag ("%s: mmalloc_getkey(md, %d) returned %p", label, outs[i], g);
	}
    }
  check (out_ok, "%s: keys outside 0..15: setkey returns 0, getkey NULL", label);
  errno = 0;
  mmalloc_setkey (md, 16, &anchors[0]);
  check (errno == EINVAL, "%s: mmalloc_setkey with keynum 16 sets errno EINVAL (got %d)", label, errno);
  {
    int same = 1;
    for (int k = 0; k < MMALLOC_KEYS; k++)
      if (mmalloc_getkey (md, k) != &anchors[k])
	same = 0;
    check (same, "%s: out-of-range setkey calls left keys 0..15 unchanged", label);
  }
  for (int k = 0; k < MMALLOC_KEYS; k++)
    mmalloc_setkey (md, k, NULL);
  check (mmalloc_getkey (md, 7) == NULL, "%s: a key can be reset to NULL", label);
}

/* ------------------------------------------------------------------------- */
/* Statistics.                                                                */

static void
test_stats (void *md, const char *label)
{
  enum { N = 120 };
  void *p[N];
  struct mstats s0, s1, s2;
  size_t usable = 0;
  int ok;

  s0 = mmstats (md);
  check (stats_sane (s0), "%s: mmstats is sane before the test (total %zu used %zu free %zu)", label,
	 s0.bytes_total, s0.bytes_used, s0.bytes_free);
  for (int i = 0; i < N; i++)
    {
      size_t sz = (i % 10 == 9) ? (size_t) (i + 1) * 3000 : (size_t) ((i * 37) % 600 + 1);
      p[i] = mmalloc (md, sz);
      usable += p[i] ? mmalloc_usable_size (md, p[i]) : 0;
    }
  s1 = mmstats (md);
  check (s1.chunks_used == s0.chunks_used + N,
	 "%s: chunks_used rises by %d after %d mmalloc calls (%zu -> %zu)", label, N, N, s0.chunks_used,
	 s1.chunks_used);
  check (s1.bytes_used == s0.bytes_used + usable,
	 "%s: bytes_used rises by the sum of usable sizes (%zu -> %zu, want +%zu)", label, s0.bytes_used,
	 s1.bytes_used, usable);
  check (stats_sane (s1), "%s: bytes_used + bytes_free <= bytes_total with blocks live", label);
  check (s1.bytes_total >= s1.bytes_used, "%s: bytes_total covers bytes_used", label);
  for (int i = 0; i < N; i += 2)
    mfree (md, p[i]);
  s2 = mmstats (md);
  check (s2.chunks_used == s0.chunks_used + N / 2, "%s: chunks_used drops by %d after %d mfree calls",
	 label, N / 2, N / 2);
  for (int i = 1; i < N; i += 2)
    mfree (md, p[i]);
  s2 = mmstats (md);
  check (s2.chunks_used == s0.chunks_used && s2.bytes_used == s0.bytes_used,
	 "%s: chunks_used and bytes_used come back after freeing them all (%zu/%zu, want %zu/%zu)", label,
	 s2.chunks_used, s2.bytes_used, s0.chunks_used, s0.bytes_used);
  check (stats_sane (s2), "%s: mmstats sane after freeing", label);

  /* A long mixed sequence of every kind of call.  */
  {
    enum { SLOTS = 200, OPS = 6000 };
    void *slot[SLOTS] = { 0 };
    size_t live = 0;
    unsigned r = 12345;
    int chunk_bad = 0, byte_bad = 0, sane_bad = 0, fail = 0;
    ok = 1;
    for (int op = 0; op < OPS; op++)
      {
	int i;
	r = r * 1103515245u + 12345u;
	i = (int) ((r >> 8) % SLOTS);
	if (slot[i] && (r & 3) != 0)
	  {
	    if ((r >> 20) % 3 == 0)
	      {
		size_t n = (r >> 4) % 9000;
		void *q = mrealloc (md, slot[i], n);
		if (q)
		  slot[i] = q;
		else
		  fail++;
	      }
	    else
	      {
		mfree (md, slot[i]);
		slot[i] = NULL;
		live--;
	      }
	  }
	else if (!slot[i])
	  {
	    size_t n = (r >> 3) % ((r & 64) ? 200000 : 700);
	    void *q;
	    switch ((r >> 24) % 6)
	      {
	      case 0: q = mcalloc (md, n / 8 + 1, 8); break;
	      case 1: q = mmemalign (md, (size_t) 1 << ((r >> 12) % 14), n); break;
	      case 2: q = mvalloc (md, n); break;
	      case 3: q = mrealloc (md, NULL, n); break;
	      case 4: q = mmalloc (md, 0); break;
	      default: q = mmalloc (md, n); break;
	      }
	    if (q)
	      {
		slot[i] = q;
		live++;
	      }
	    else
	      fail++;
	  }
	if (op % 250 == 249)
	  {
	    struct mstats s = mmstats (md);
	    size_t u = 0;
	    for (int j = 0; j < SLOTS; j++)
	      if (slot[j])
		u += mmalloc_usable_size (md, slot[j]);
	    if (s.chunks_used != s0.chunks_used + live && chunk_bad++ == 0)
	      diag ("%s: after %d mixed calls chunks_used %zu, want %zu", label, op + 1, s.chunks_used,
		    s0.chunks_used + live);
	    if (s.bytes_used != s0.bytes_used + u && byte_bad++ == 0)
	      diag ("%s: after %d mixed calls bytes_used %zu, want %zu", label, op + 1, s.bytes_used,
		    s0.bytes_used + u);
	    if (!stats_sane (s))
	      sane_bad++;
	  }
      }
    check (fail == 0, "%s: 6000 mixed mmalloc/mcalloc/mmemalign/mvalloc/mrealloc/mfree calls succeed",
	   label);
    check (chunk_bad == 0, "%s: chunks_used equals the number of live blocks throughout a mixed sequence",
	   label);
    check (byte_bad == 0, "%s: bytes_used equals the sum of usable sizes throughout a mixed sequence",
	   label);
    check (sane_bad == 0, "%s: bytes_used + bytes_free <= bytes_total throughout", label);
    for (int j = 0; j < SLOTS; j++)
      mfree (md, slot[j]);
    s2 = mmstats (md);
    check (s2.chunks_used == s0.chunks_used && s2.bytes_used == s0.bytes_used,
	   "%s: after freeing everything chunks_used/bytes_used are back to %zu/%zu (got %zu/%zu)", label,
	   s0.chunks_used, s0.bytes_used, s2.chunks_used, s2.bytes_used);
    (void) ok;
  }
  check (mmalloc_check (md) == 0, "%s: mmalloc_check is 0 after the statistics workload", label);
}

/* ------------------------------------------------------------------------- */
/* Several heaps at once.                                                     */

static void
test_many_heaps (void)
{
  enum { NH = 8, NB = 150 };
  void *md[NH];
  char path[NH][PATH_MAX];
  void *blk[NH][NB];
  size_t bsz[NH][NB];
  struct mstats base[NH];
  int attached = 1, contents = 1, overlap = 0, stats_ok = 1, detach_ok = 1;

  for (int h = 0; h < NH; h++)
    {
      path[h][0] = 0;
      if (h >= NH - 3)
	{
	  char name[64];
	  int fd;
	  snprintf (name, sizeof name, "many-%d.mm", h);
	  tmppath (path[h], sizeof path[h], name);
	  fd = open (path[h], O_RDWR | O_CREAT | O_TRUNC, 0600);
	  md[h] = fd >= 0 ? mmalloc_attach (fd, NULL) : NULL;
	  if (fd >= 0)
	    close (fd);
	}
      else
	md[h] = mmalloc_attach (-1, NULL);
      if (!md[h])
	{
	  attached = 0;
	  diag ("many heaps: attach #%d failed, errno %d", h, errno);
	}
      else
	base[h] = mmstats (md[h]);
    }
  check (attached, "several heaps: %d heaps (5 anonymous, 3 file-backed) attached at once", NH);
  if (!attached)
    return;
  for (int h = 0; h < NH; h++)
    for (int h2 = 0; h2 < h; h2++)
      if (md[h] == md[h2])
	attached = 0;
  check (attached, "several heaps: descriptors are distinct");

  /* Interleave allocations across the heaps.  */
  for (int b = 0; b < NB; b++)
    for (int h = 0; h < NH; h++)
      {
	bsz[h][b] = (size_t) ((b * 53 + h * 17) % 900) + ((b % 25 == 0) ? 70000 : 1);
	blk[h][b] = mmalloc (md[h], bsz[h][b]);
	if (blk[h][b])
	  fill (blk[h][b], bsz[h][b], (unsigned) (h * 1000 + b));
      }
  for (int h = 0; h < NH; h++)
    {
      struct mstats s = mmstats (md[h]);
      if (s.chunks_used != base[h].chunks_used + NB)
	{
	  stats_ok = 0;
	  diag ("several heaps: heap %d chunks_used %zu, want %zu", h, s.chunks_used,
		base[h].chunks_used + NB);
	}
    }
  for (int h = 0; h < NH; h++)
    for (int b = 0; b < NB; b++)
      if (!blk[h][b] || !verify (blk[h][b], bsz[h][b], (unsigned) (h * 1000 + b)))
	contents = 0;
  /* No block of one heap overlaps a block of another.  */
  for (int h = 0; h < NH && !overlap; h++)
    for (int b = 0; b < NB && !overlap; b++)
      for (int h2 = h + 1; h2 < NH && !overlap; h2++)
	for (int b2 = 0; b2 < NB; b2++)
	  {
	    uintptr_t a0 = (uintptr_t) blk[h][b], a1 = a0 + bsz[h][b];
	    uintptr_t c0 = (uintptr_t) blk[h2][b2], c1 = c0 + bsz[h2][b2];
	    if (a0 && c0 && a0 < c1 && c0 < a1)
	      {
		overlap = 1;
		break;
	      }
	  }
  check (contents, "several heaps: interleaved blocks in all heaps keep their contents");
  check (!overlap, "several heaps: no block of one heap overlaps a block of another");
  check (stats_ok, "several heaps: each heap's chunks_used counts only its own blocks");

  /* Free and detach heap 0 and 5; the others are unaffected.  */
  for (int b = 0; b < NB; b++)
    {
      mfree (md[0], blk[0][b]);
      mfree (md[NH - 3], blk[NH - 3][b]);
    }
  if (mmalloc_detach (md[0]) != NULL)
    detach_ok = 0;
  if (mmalloc_detach (md[NH - 3]) != NULL)
    detach_ok = 0;
  md[0] = md[NH - 3] = NULL;
  contents = 1;
  for (int h = 1; h < NH; h++)
    if (md[h])
      for (int b = 0; b < NB; b++)
	if (!verify (blk[h][b], bsz[h][b], (unsigned) (h * 1000 + b)))
	  contents = 0;
  check (contents, "several heaps: detaching two heaps leaves the others' blocks intact");
  {
    int cks = 1;
    for (int h = 1; h < NH; h++)
      if (md[h] && mmalloc_check (md[h]) != 0)
	cks = 0;
    check (cks, "several heaps: mmalloc_check is 0 on every remaining heap");
  }
  for (int h = 1; h < NH; h++)
    if (md[h])
      {
	for (int b = NB - 1; b >= 0; b--)
	  mfree (md[h], blk[h][b]);
	if (mmalloc_detach (md[h]) != NULL)
	  detach_ok = 0;
      }
  check (detach_ok, "several heaps: mmalloc_detach returns NULL for each heap");
  for (int h = 0; h < NH; h++)
    if (path[h][0])
      unlink (path[h]);
}

/* ------------------------------------------------------------------------- */
/* File-backed heaps and re-attaching them in another process.                */

struct node
{
  struct node *next;
  size_t idx;
  char *str;
};

#define NNODES 2000
#define BIGSZ ((size_t) 3 << 20)
#define ALIGNED_AL ((size_t) 1 << 16)
#define ALIGNED_SZ 1000
#define ARR_N 100
#define MAGIC_PREFIX "MMCONF-MAGIC-"

static int
verify_list (struct node *head)
{
  size_t i = 0;
  char buf[64];
  for (struct node *n = head; n; n = n->next, i++)
    {
      if (i >= NNODES || n->idx != i || !n->str)
	return 0;
      snprintf (buf, sizeof buf, "node %zu %.*s", i, (int) (i % 23), "abcdefghijklmnopqrstuvwxyz");
      if (strcmp (n->str, buf) != 0)
	return 0;
    }
  return i == NNODES;
}

static uintptr_t
parse_addr (const char *s)
{
  return (uintptr_t) strtoull (s, NULL, 16);
}

/* --child-reattach PATH K0 K1 K2 K15 K5: open and attach the heap file in this
   fresh process and check everything the parent stored.  */
static int
child_reattach (int argc, char **argv)
{
  void *md;
  int fd;
  uintptr_t k0, k1, k2, k15, k5;
  if (argc < 8)
    return 2;
  k0 = parse_addr (argv[3]);
  k1 = parse_addr (argv[4]);
  k2 = parse_addr (argv[5]);
  k15 = parse_addr (argv[6]);
  k5 = parse_addr (argv[7]);
  fd = open (argv[2], O_RDWR);
  if (!check (fd >= 0, "open the heap file"))
    return finish ("child");
  errno = 0;
  md = mmalloc_attach (fd, NULL);
  if (!check (md != NULL, "mmalloc_attach of the existing heap file in a new process (errno %d)", errno))
    return finish ("child");
  check (close (fd) == 0, "close the caller's descriptor right after attach");
  check ((uintptr_t) mmalloc_getkey (md, 0) == k0 && (uintptr_t) mmalloc_getkey (md, 1) == k1
	   && (uintptr_t) mmalloc_getkey (md, 2) == k2 && (uintptr_t) mmalloc_getkey (md, 15) == k15
	   && (uintptr_t) mmalloc_getkey (md, 5) == k5,
	 "keys hold the same addresses as in the creating process (mapped at its recorded address)");
  check (verify_list ((struct node *) k0), "a %d-node linked list with strings is intact", NNODES);
  check (verify ((void *) k1, BIGSZ, 77), "a 3 MiB block is intact");
  check (aligned ((void *) k2, ALIGNED_AL) && verify ((void *) k2, ALIGNED_SZ, 78),
	 "a 64 KiB-aligned block is intact");
  {
    size_t *arr = (size_t *) k15;
    int ok = 1;
    for (size_t i = 0; i < ARR_N; i++)
      if (arr[i] != i * i)
	ok = 0;
    check (ok, "an mcalloc'ed array is intact");
  }
  check (strncmp ((char *) k5, MAGIC_PREFIX, strlen (MAGIC_PREFIX)) == 0, "a string is intact");
  check (mmalloc_check (md) == 0, "mmalloc_check is 0 after re-attach");
  {
    struct mstats s = mmstats (md);
    check (s.chunks_used >= NNODES * 2 && stats_sane (s),
	   "mmstats after re-attach counts the stored blocks (chunks_used %zu)", s.chunks_used);
  }
  {
    /* The allocator state came back too: allocate, free, reallocate.  */
    void *tmp[1000];
    int ok = 1;
    for (int i = 0; i < 1000; i++)
      {
	tmp[i] = mmalloc (md, (size_t) (i % 300) + 1);
	if (!tmp[i])
	  ok = 0;
	else
	  memset (tmp[i], 0x3c, (size_t) (i % 300) + 1);
      }
    if (!verify_list ((struct node *) k0) || !verify ((void *) k1, BIGSZ, 77))
      ok = 0;
    for (int i = 0; i < 1000; i++)
      mfree (md, tmp[i]);
    check (ok, "new allocations in the re-attached heap do not disturb stored data");
  }
  {
    char *s = mmalloc (md, 32);
    if (s)
      strcpy (s, "child was here");
    check (s && mmalloc_setkey (md, 3, s) == 1, "store a new string under key 3");
  }
  mfree (md, (void *) k1);
  check (mmalloc_setkey (md, 1, NULL) == 1, "free the 3 MiB block and clear key 1");
  check (mmalloc_check (md) == 0, "mmalloc_check is 0 after the child's changes");
  check (mmalloc_sync (md) == 0, "mmalloc_sync returns 0");
  check (mmalloc_detach (md) == NULL, "mmalloc_detach returns NULL");
  return finish ("child");
}

/* --child-simple PATH ADDR BASE: key 0 is ADDR, holds "based heap", ADDR >= BASE.  */
static int
child_simple (int argc, char **argv)
{
  void *md;
  int fd;
  uintptr_t a, base;
  if (argc < 5)
    return 2;
  a = parse_addr (argv[3]);
  base = parse_addr (argv[4]);
  fd = open (argv[2], O_RDWR);
  md = fd >= 0 ? mmalloc_attach (fd, NULL) : NULL;
  if (fd >= 0)
    close (fd);
  if (!check (md != NULL, "attach the heap that was created at a given base (errno %d)", errno))
    return finish ("child");
  check ((uintptr_t) mmalloc_getkey (md, 0) == a && a >= base,
	 "key 0 has the same address, inside the region at the given base");
  check (a && strcmp ((char *) a, "based heap") == 0, "its string is intact");
  check (mmalloc_detach (md) == NULL, "detach");
  return finish ("child");
}

static void
test_file_heap (void)
{
  char path[PATH_MAX], junk[PATH_MAX];
  void *md;
  int fd, jfd;
  struct node *head = NULL, **tail = &head;
  void *big, *al;
  size_t *arr;
  char *magic;
  char magicbuf[64];
  uintptr_t k0, k1, k2, k15, k5;

  tmppath (path, sizeof path, "main-heap.mm");
  tmppath (junk, sizeof junk, "junk.txt");
  fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  errno = 0;
  md = fd >= 0 ? mmalloc_attach (fd, NULL) : NULL;
  if (!check (md != NULL, "file heap: mmalloc_attach on an empty file creates a heap (errno %d)", errno))
    return;
  check (close (fd) == 0, "file heap: the caller closes its descriptor right after attach");
  /* The freed descriptor number is likely reused for an unrelated file.  */
  jfd = open (junk, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (jfd >= 0)
    {
      if (write (jfd, "0123456789", 10) != 10)
	diag ("short write to junk file");
    }
  check (mmalloc_errno (md) == 0, "file heap: mmalloc_errno is 0 on a new heap");

  for (size_t i = 0; i < NNODES; i++)
    {
      struct node *n = mmalloc (md, sizeof *n);
      char buf[64];
      if (!n)
	break;
      snprintf (buf, sizeof buf, "node %zu %.*s", i, (int) (i % 23), "abcdefghijklmnopqrstuvwxyz");
      n->str = mmalloc (md, strlen (buf) + 1);
      if (n->str)
	strcpy (n->str, buf);
      n->idx = i;
      n->next = NULL;
      *tail = n;
      tail = &n->next;
    }
  big = mmalloc (md, BIGSZ);
  if (big)
    fill (big, BIGSZ, 77);
  al = mmemalign (md, ALIGNED_AL, ALIGNED_SZ);
  if (al)
    fill (al, ALIGNED_SZ, 78);
  arr = mcalloc (md, ARR_N, sizeof (size_t));
  if (arr)
    for (size_t i = 0; i < ARR_N; i++)
      arr[i] = i * i;
  magic = mmalloc (md, 64);
  snprintf (magicbuf, sizeof magicbuf, MAGIC_PREFIX "%ld-%lx", (long) getpid (), (unsigned long) time (NULL));
  if (magic)
    strcpy (magic, magicbuf);
  check (verify_list (head) && big && al && aligned (al, ALIGNED_AL) && arr && magic,
	 "file heap: build a linked list, a 3 MiB block, an aligned block, an array and a string");
  check (mmalloc_setkey (md, 0, head) == 1 && mmalloc_setkey (md, 1, big) == 1
	   && mmalloc_setkey (md, 2, al) == 1 && mmalloc_setkey (md, 15, arr) == 1
	   && mmalloc_setkey (md, 5, magic) == 1,
	 "file heap: setkey 0, 1, 2, 5, 15");

  /* Growth after the caller's descriptor was closed (the library uses its own).  */
  {
    unsigned char *g = mmalloc (md, 32 * MiB);
    int ok = g != NULL;
    if (g)
      {
	for (size_t i = 0; i < 32 * MiB; i += 4096)
	  g[i] = (unsigned char) (i >> 12);
	for (size_t i = 0; i < 32 * MiB; i += 4096)
	  if (g[i] != (unsigned char) (i >> 12))
	    ok = 0;
      }
    check (ok, "file heap: a 32 MiB block can be had after the caller closed its descriptor");
    check (mmalloc_sync (md) == 0, "file heap: mmalloc_sync returns 0");
    check (file_size (path) >= (off_t) (32 * MiB),
	   "file heap: the heap file grew with the heap (size %lld)", (long long) file_size (path));
    if (jfd >= 0)
      {
	char jb[32] = { 0 };
	ssize_t n = pread (jfd, jb, sizeof jb - 1, 0);
	check (file_size (junk) == 10 && n == 10 && strcmp (jb, "0123456789") == 0,
	       "file heap: an unrelated file that reuses the closed descriptor number is untouched");
	close (jfd);
      }
    mfree (md, g);
  }
  {
    size_t len;
    char *data = read_whole (path, &len);
    check (data && memmem (data, len, magicbuf, strlen (magicbuf)) != NULL,
	   "file heap: after mmalloc_sync the file holds the data written into the heap");
    free (data);
  }
  test_alloc_sweep (md, "file heap", 8 * MiB);
  test_memalign (md, "file heap", 20);
  test_realloc (md, "file heap");
  test_valloc (md, "file heap");
  test_calloc (md, "file heap");
  check (verify_list (head) && verify (big, BIGSZ, 77) && verify (al, ALIGNED_SZ, 78),
	 "file heap: stored data survive the allocation workload");
  check (mmalloc_check (md) == 0, "file heap: mmalloc_check is 0");
  check (stats_sane (mmstats (md)), "file heap: mmstats sane");

  k0 = (uintptr_t) head;
  k1 = (uintptr_t) big;
  k2 = (uintptr_t) al;
  k15 = (uintptr_t) arr;
  k5 = (uintptr_t) magic;
  check (mmalloc_detach (md) == NULL, "file heap: mmalloc_detach returns NULL");

  {
    char a0[32], a1[32], a2[32], a15[32], a5[32];
    char *args[9];
    struct child c;
    char st[64];
    snprintf (a0, sizeof a0, "%lx", (unsigned long) k0);
    snprintf (a1, sizeof a1, "%lx", (unsigned long) k1);
    snprintf (a2, sizeof a2, "%lx", (unsigned long) k2);
    snprintf (a15, sizeof a15, "%lx", (unsigned long) k15);
    snprintf (a5, sizeof a5, "%lx", (unsigned long) k5);
    args[0] = self_exe;
    args[1] = (char *) "--child-reattach";
    args[2] = path;
    args[3] = a0;
    args[4] = a1;
    args[5] = a2;
    args[6] = a15;
    args[7] = a5;
    args[8] = NULL;
    spawn_self (args, NULL, NULL, &c);
    relay ("separate process", &c);
    describe_status (c.status, st, sizeof st);
    check (WIFEXITED (c.status) && WEXITSTATUS (c.status) == 0,
	   "file heap: a separate process (fork+exec) re-attached it and found everything (%s)", st);
    child_free (&c);
  }

  /* Back in this process: the child's changes are there.  */
  fd = open (path, O_RDWR);
  errno = 0;
  md = fd >= 0 ? mmalloc_attach (fd, NULL) : NULL;
  if (fd >= 0)
    close (fd);
  if (check (md != NULL, "file heap: re-attach in the first process after the child (errno %d)", errno))
    {
      char *s = mmalloc_getkey (md, 3);
      check ((uintptr_t) mmalloc_getkey (md, 0) == k0 && verify_list (mmalloc_getkey (md, 0)),
	     "file heap: the list is still at the same address and intact");
      check (s && strcmp (s, "child was here") == 0, "file heap: the child's new string is there");
      check (mmalloc_getkey (md, 1) == NULL, "file heap: the child's cleared key is NULL");
      check (mmalloc_check (md) == 0, "file heap: mmalloc_check 0 after the child's changes");
      check (mmalloc_detach (md) == NULL, "file heap: detach again");
    }
  unlink (path);
  unlink (junk);

  /* A heap file created at a given base address.  */
  {
    void *base = mmalloc_findbase (64 << 20), *bad;
    size_t page = (size_t) sysconf (_SC_PAGESIZE);
    char bpath[PATH_MAX];
    char *p = NULL;
    check (base != NULL && aligned (base, page), "mmalloc_findbase(64 MiB) suggests a page-aligned address (%p)",
	   base);
    tmppath (bpath, sizeof bpath, "based-heap.mm");
    fd = open (bpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (base && fd >= 0)
      {
	errno = 0;
	bad = mmalloc_attach (fd, (char *) base + 1);
	check (bad == NULL && errno == EINVAL,
	       "mmalloc_attach with a base that is not page aligned: NULL, EINVAL (errno %d)", errno);
	if (bad)
	  mmalloc_detach (bad);
	errno = 0;
	md = mmalloc_attach (fd, base);
	close (fd);
	if (check (md != NULL, "mmalloc_attach of an empty file at a given base (errno %d)", errno))
	  {
	    p = mmalloc (md, 100);
	    check (p && (uintptr_t) p >= (uintptr_t) base
		     && (uintptr_t) p < (uintptr_t) base + (64 << 20),
		   "a block of a heap at base %p lies in the region at that base (%p)", base, (void *) p);
	    if (p)
	      strcpy (p, "based heap");
	    mmalloc_setkey (md, 0, p);
	    check (mmalloc_detach (md) == NULL, "detach the heap at a given base");
	    if (p)
	      {
		char a[32], b[32];
		char *args[6];
		struct child c;
		char st[64];
		snprintf (a, sizeof a, "%lx", (unsigned long) (uintptr_t) p);
		snprintf (b, sizeof b, "%lx", (unsigned long) (uintptr_t) base);
		args[0] = self_exe;
		args[1] = (char *) "--child-simple";
		args[2] = bpath;
		args[3] = a;
		args[4] = b;
		args[5] = NULL;
		spawn_self (args, NULL, NULL, &c);
		relay ("based heap, separate process", &c);
		describe_status (c.status, st, sizeof st);
		check (WIFEXITED (c.status) && WEXITSTATUS (c.status) == 0,
		       "a heap created at a given base is re-attached by another process (%s)", st);
		child_free (&c);
	      }
	  }
      }
    else if (fd >= 0)
      close (fd);
    unlink (bpath);
  }

  /* A descriptor that is not open.  */
  {
    void *m;
    int nfd = dup (0);
    if (nfd >= 0)
      close (nfd);
    else
      nfd = 1000;
    errno = 0;
    m = mmalloc_attach (nfd, NULL);
    check (m == NULL && errno == EBADF, "mmalloc_attach of a closed descriptor: NULL, EBADF (errno %d)",
	   errno);
    if (m)
      mmalloc_detach (m);
  }
}

/* ------------------------------------------------------------------------- */
/* Files that are not heaps, truncated heaps, damaged headers.                */

struct attach_result
{
  int is_null;
  int err;
};

static const char *attach_child_path;

static void
attach_child (void *arg)
{
  int pfd = *(int *) arg;
  int fd = open (attach_child_path, O_RDWR);
  struct attach_result r;
  void *md;
  errno = 0;
  md = fd >= 0 ? mmalloc_attach (fd, NULL) : NULL;
  r.is_null = md == NULL;
  r.err = errno;
  if (fd >= 0)
    close (fd);
  if (write (pfd, &r, sizeof r) != (ssize_t) sizeof r)
    _exit (5);
  if (md)
    {
      (void) mmalloc_getkey (md, 0);
      mmalloc_detach (md);
    }
  _exit (0);
}

/* Attach PATH in a forked child; returns 0 if the child crashed or hung.  */
static int
attach_in_child (const char *path, struct attach_result *res, int *status)
{
  int pfd[2];
  struct child c;
  ssize_t n;
  if (pipe (pfd) != 0)
    return 0;
  attach_child_path = path;
  fork_run (attach_child, &pfd[1], &c);
  close (pfd[1]);
  n = read (pfd[0], res, sizeof *res);
  close (pfd[0]);
  *status = c.status;
  child_free (&c);
  return n == (ssize_t) sizeof *res && WIFEXITED (c.status) && WEXITSTATUS (c.status) == 0;
}

static void
test_bad_files (void)
{
  char path[PATH_MAX], hpath[PATH_MAX];
  struct attach_result r;
  int st, garbage_err = 0;
  char sts[64];
  unsigned char *buf = malloc (64 * KiB);

  tmppath (path, sizeof path, "garbage.bin");
  {
    unsigned x = 2463534242u;
    for (size_t i = 0; i < 64 * KiB; i++)
      {
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	buf[i] = (unsigned char) x;
      }
  }
  write_file (path, buf, 64 * KiB);
  {
    int ok = attach_in_child (path, &r, &st);
    describe_status (st, sts, sizeof sts);
    check (ok && r.is_null && r.err != 0,
	   "a 64 KiB file of random bytes is refused: NULL with errno set, no crash (%s, errno 0x%x)", sts,
	   r.err);
    garbage_err = r.err;
    check (ok && r.err == MMALLOC_ENOTHEAP, "  ... and errno is MMALLOC_ENOTHEAP (got 0x%x: %s)", r.err,
	   mmalloc_strerror (r.err) ? mmalloc_strerror (r.err) : "(null)");
  }
  {
    static const struct
    {
      const char *name;
      size_t len;
      int kind;
    } cases[] = { { "one byte", 1, 0 }, { "text", 4096, 1 }, { "64 KiB of zeros", 64 * KiB, 2 },
		  { "100 bytes of random", 100, 3 }, { "1 MiB of 0xff", MiB, 4 } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
      {
	unsigned char *d = malloc (cases[i].len);
	int ok;
	for (size_t j = 0; j < cases[i].len; j++)
	  d[j] = cases[i].kind == 0 ? 'x'
		 : cases[i].kind == 1 ? (unsigned char) "This is not a heap file.\n"[j % 25]
		 : cases[i].kind == 2 ? 0
		 : cases[i].kind == 3 ? buf[j]
		 : 0xff;
	write_file (path, d, cases[i].len);
	free (d);
	ok = attach_in_child (path, &r, &st);
	describe_status (st, sts, sizeof sts);
	check (ok && r.is_null && r.err != 0, "a file of %s is refused: NULL with errno set, no crash (%s, errno 0x%x)",
	       cases[i].name, sts, r.err);
      }
  }
  unlink (path);

  /* A real heap file, truncated.  */
  tmppath (hpath, sizeof hpath, "trunc-heap.mm");
  {
    int fd = open (hpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    void *md = fd >= 0 ? mmalloc_attach (fd, NULL) : NULL;
    size_t total = 0;
    if (fd >= 0)
      close (fd);
    if (check (md != NULL, "truncation: build a heap file with a 3 MiB block"))
      {
	void *b = mmalloc (md, BIGSZ);
	if (b)
	  fill (b, BIGSZ, 1);
	mmalloc_setkey (md, 0, b);
	total = mmstats (md).bytes_total;
	mmalloc_detach (md);
      }
    if (md)
      {
	off_t sz = file_size (hpath);
	off_t cut = (off_t) total < sz ? (off_t) total / 2 : sz / 2;
	int ok;
	/* The intact file attaches (control).  */
	ok = attach_in_child (hpath, &r, &st);
	check (ok && !r.is_null, "truncation: the intact heap file attaches (control)");
	if (truncate (hpath, cut) != 0)
	  diag ("truncate failed: %s", strerror (errno));
	ok = attach_in_child (hpath, &r, &st);
	describe_status (st, sts, sizeof sts);
	check (ok && r.is_null && r.err != 0,
	       "a heap file truncated to half its size (%lld of %lld bytes) is refused: NULL, errno set, no crash (%s, errno 0x%x)",
	       (long long) cut, (long long) sz, sts, r.err);
	check (ok && r.is_null && r.err != garbage_err && r.err != 0,
	       "  ... with an errno distinct from the not-a-heap case (0x%x vs 0x%x)", r.err, garbage_err);
	check (ok && r.err == MMALLOC_ETRUNCATED, "  ... namely MMALLOC_ETRUNCATED (got 0x%x: %s)", r.err,
	       mmalloc_strerror (r.err) ? mmalloc_strerror (r.err) : "(null)");
	if (truncate (hpath, 4096) == 0)
	  {
	    ok = attach_in_child (hpath, &r, &st);
	    describe_status (st, sts, sizeof sts);
	    check (ok && r.is_null && r.err != 0,
		   "a heap file truncated to 4096 bytes is refused: NULL, errno set, no crash (%s, errno 0x%x)",
		   sts, r.err);
	  }
	if (truncate (hpath, 20) == 0)
	  {
	    ok = attach_in_child (hpath, &r, &st);
	    describe_status (st, sts, sizeof sts);
	    check (ok && r.is_null && r.err != 0,
		   "a heap file truncated to 20 bytes is refused: NULL, errno set, no crash (%s, errno 0x%x)",
		   sts, r.err);
	  }
      }
  }

  /* Damaged headers: flip bytes of the first page of a small heap file.  */
  {
    int fd = open (hpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    void *md = fd >= 0 ? mmalloc_attach (fd, NULL) : NULL;
    int crashes = 0, silent = 0, tries = 0, refused = 0;
    if (fd >= 0)
      close (fd);
    if (md)
      {
	for (int i = 0; i < 50; i++)
	  if (!mmalloc (md, (size_t) i * 10 + 1))
	    break;
	mmalloc_setkey (md, 0, mmalloc (md, 10));
	mmalloc_detach (md);
	fd = open (hpath, O_RDWR);
	for (int off = 0; off < 4096 && fd >= 0; off += (off < 256 ? 1 : 37))
	  {
	    unsigned char orig, flip;
	    if (pread (fd, &orig, 1, off) != 1)
	      break;
	    flip = (unsigned char) (orig ^ (off < 256 ? 0xff : 0x01));
	    if (pwrite (fd, &flip, 1, off) != 1)
	      break;
	    tries++;
	    if (!attach_in_child (hpath, &r, &st))
	      {
		if (crashes++ < 5)
		  {
		    describe_status (st, sts, sizeof sts);
		    diag ("header flip at offset %d: attach crashed (%s)", off, sts);
		  }
	      }
	    else if (r.is_null && r.err == 0)
	      silent++;
	    else if (r.is_null)
	      refused++;
	    if (pwrite (fd, &orig, 1, off) != 1)
	      break;
	  }
	if (fd >= 0)
	  close (fd);
      }
    check (md && tries > 300 && crashes == 0,
	   "%d single-byte header corruptions: attach never crashes (%d crashed, %d refused)", tries, crashes,
	   refused);
    check (md && silent == 0, "refused damaged heap files always come with an errno (%d without)", silent);
  }
  unlink (hpath);
  free (buf);
}

/* ------------------------------------------------------------------------- */
/* Threads on one descriptor.                                                 */

struct blkhdr
{
  size_t size;
  unsigned tag;
};

#define XSLOTS 64
static _Atomic (uintptr_t) xchg[XSLOTS];

struct thr
{
  void *md;
  int id;
  int ops;
  int errors;
  int nulls;
  pthread_barrier_t *bar;
};

static void *
thr_new (void *md, size_t size, unsigned tag, unsigned kind)
{
  struct blkhdr *h;
  switch (kind % 5)
    {
    case 0: h = mmalloc (md, size); break;
    case 1: h = mcalloc (md, 1, size); break;
    case 2: h = mmemalign (md, 64, size); break;
    case 3: h = mrealloc (md, NULL, size); break;
    default: h = mvalloc (md, size); break;
    }
  if (!h)
    return NULL;
  h->size = size;
  h->tag = tag;
  memset ((char *) h + sizeof *h, (int) (tag & 0xff), size - sizeof *h);
  return h;
}

static int
thr_ok (void *md, void *p)
{
  struct blkhdr *h = p;
  const unsigned char *c = p;
  if (!aligned (p, MAXALIGN) || h->size < sizeof *h || mmalloc_usable_size (md, p) < h->size)
    return 0;
  for (size_t i = sizeof *h; i < h->size; i++)
    if (c[i] != (h->tag & 0xff))
      return 0;
  return 1;
}

static void *
thr_main (void *arg)
{
  struct thr *t = arg;
  enum { LS = 32 };
  void *slot[LS] = { 0 };
  unsigned r = 0x9e3779b9u * (unsigned) (t->id + 1);
  if (t->bar)
    pthread_barrier_wait (t->bar);
  for (int op = 0; op < t->ops; op++)
    {
      unsigned k, s;
      size_t size;
      r ^= r << 13;
      r ^= r >> 17;
      r ^= r << 5;
      s = r % LS;
      k = (r >> 8) % 100;
      size = k < 70 ? 16 + (r >> 16) % 240 : k < 95 ? 256 + (r >> 12) % 8000 : 8192 + (r >> 10) % 300000;
      if (!slot[s])
	{
	  slot[s] = thr_new (t->md, size, (unsigned) (t->id * 131 + op), r >> 20);
	  if (!slot[s])
	    t->nulls++;
	}
      else if (k < 45)
	{
	  if (!thr_ok (t->md, slot[s]))
	    t->errors++;
	  mfree (t->md, slot[s]);
	  slot[s] = NULL;
	}
      else if (k < 70)
	{
	  struct blkhdr *h = slot[s];
	  size_t old = h->size, keep;
	  unsigned tag = h->tag;
	  struct blkhdr *q;
	  if (!thr_ok (t->md, h))
	    t->errors++;
	  q = mrealloc (t->md, h, size);
	  if (!q)
	    {
	      t->nulls++;
	      continue;
	    }
	  keep = old < size ? old : size;
	  for (size_t i = sizeof *q; i < keep; i++)
	    if (((unsigned char *) q)[i] != (tag & 0xff))
	      {
		t->errors++;
		break;
	      }
	  q->size = size;
	  q->tag = (unsigned) (t->id * 7 + op);
	  memset ((char *) q + sizeof *q, (int) (q->tag & 0xff), size - sizeof *q);
	  slot[s] = q;
	}
      else
	{
	  /* Hand the block to whichever thread comes next; free what we get.  */
	  uintptr_t got = atomic_exchange (&xchg[(r >> 4) % XSLOTS], (uintptr_t) slot[s]);
	  slot[s] = NULL;
	  if (got)
	    {
	      if (!thr_ok (t->md, (void *) got))
		t->errors++;
	      mfree (t->md, (void *) got);
	    }
	}
    }
  for (int s = 0; s < LS; s++)
    if (slot[s])
      {
	if (!thr_ok (t->md, slot[s]))
	  t->errors++;
	mfree (t->md, slot[s]);
      }
  return NULL;
}

static void
test_threads (void *md, const char *label, int nthreads, int ops)
{
  pthread_t tid[32];
  struct thr t[32];
  pthread_barrier_t bar;
  struct mstats s0 = mmstats (md), s1;
  int errors = 0, nulls = 0, created = 0;
  pthread_barrier_init (&bar, NULL, (unsigned) nthreads);
  for (int i = 0; i < XSLOTS; i++)
    atomic_store (&xchg[i], 0);
  for (int i = 0; i < nthreads; i++)
    {
      t[i].md = md;
      t[i].id = i;
      t[i].ops = ops;
      t[i].errors = t[i].nulls = 0;
      t[i].bar = &bar;
      if (pthread_create (&tid[i], NULL, thr_main, &t[i]) == 0)
	created++;
      else
	{
	  diag ("pthread_create failed");
	  break;
	}
    }
  if (created != nthreads)
    {
      /* Release the barrier so that created threads do not wait forever.  */
      check (0, "%s: create %d threads", label, nthreads);
      return;
    }
  for (int i = 0; i < nthreads; i++)
    {
      pthread_join (tid[i], NULL);
      errors += t[i].errors;
      nulls += t[i].nulls;
    }
  pthread_barrier_destroy (&bar);
  for (int i = 0; i < XSLOTS; i++)
    {
      uintptr_t p = atomic_exchange (&xchg[i], 0);
      if (p)
	{
	  if (!thr_ok (md, (void *) p))
	    errors++;
	  mfree (md, (void *) p);
	}
    }
  check (nulls == 0, "%s: %d threads x %d mixed calls on one descriptor: no allocation failed", label,
	 nthreads, ops);
  check (errors == 0, "%s: threads: every block kept its contents and alignment (also freed by another thread)",
	 label);
  s1 = mmstats (md);
  check (s1.chunks_used == s0.chunks_used && s1.bytes_used == s0.bytes_used && stats_sane (s1),
	 "%s: threads: mmstats back to the starting chunks_used/bytes_used (%zu/%zu, got %zu/%zu)", label,
	 s0.chunks_used, s0.bytes_used, s1.chunks_used, s1.bytes_used);
  check (mmalloc_check (md) == 0, "%s: threads: mmalloc_check is 0 afterwards", label);
}

/* ------------------------------------------------------------------------- */
/* The default heap.                                                          */

/* --child-sbrk: the default heap never moves the program break.  */
static int
child_sbrk (void)
{
  void *b0, *b1;
  void *p[200];
  int nnull = 0;
  size_t page = (size_t) sysconf (_SC_PAGESIZE);
  /* Prime stdio so that printing later cannot be confused with our calls.  */
  printf ("# sbrk child\n");
  fflush (stdout);
  b0 = sbrk (0);
  for (int i = 0; i < 200; i++)
    {
      size_t sz = (i % 20 == 0) ? (size_t) (i + 1) * 100000 : (size_t) (i * 61 % 3000);
      switch (i % 4)
	{
	case 0: p[i] = mmalloc (NULL, sz); break;
	case 1: p[i] = mcalloc (NULL, sz, 1); break;
	case 2: p[i] = mmemalign (NULL, 256, sz); break;
	default: p[i] = mvalloc (NULL, sz); break;
	}
      if (!p[i])
	nnull++;
      else if (sz)
	((char *) p[i])[sz - 1] = 1;
    }
  for (int i = 0; i < 200; i += 2)
    {
      void *q = mrealloc (NULL, p[i], 50000);
      if (q)
	p[i] = q;
    }
  {
    void *bigp = mmalloc (NULL, 64 * MiB);
    if (!bigp)
      nnull++;
    mfree (NULL, bigp);
  }
  for (int i = 0; i < 200; i++)
    mfree (NULL, p[i]);
  b1 = sbrk (0);
  check (nnull == 0, "default heap: allocations on the NULL descriptor in a fresh process succeed");
  check (b0 == b1, "default heap: sbrk(0) is unchanged by its creation and use (%p -> %p)", b0, b1);
  (void) page;
  check (mmalloc_check (NULL) == 0, "default heap: mmalloc_check(NULL) is 0");
  return finish ("child");
}

static void *race_ptrs[16][100];
static pthread_barrier_t race_bar;

static void *
race_main (void *arg)
{
  int id = (int) (intptr_t) arg;
  pthread_barrier_wait (&race_bar);
  for (int i = 0; i < 100; i++)
    {
      race_ptrs[id][i] = mmalloc (NULL, 64);
      if (race_ptrs[id][i])
	memset (race_ptrs[id][i], id, 64);
    }
  return NULL;
}

static int
cmp_ptr (const void *a, const void *b)
{
  uintptr_t x = *(const uintptr_t *) a, y = *(const uintptr_t *) b;
  return x < y ? -1 : x > y;
}

/* --child-race: 16 threads make the first calls on the default heap at once.  */
static int
child_race (void)
{
  pthread_t t[16];
  uintptr_t all[1600];
  int nnull = 0, dup = 0, bad = 0;
  struct mstats s1, s2;
  pthread_barrier_init (&race_bar, NULL, 16);
  for (int i = 0; i < 16; i++)
    pthread_create (&t[i], NULL, race_main, (void *) (intptr_t) i);
  for (int i = 0; i < 16; i++)
    pthread_join (t[i], NULL);
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 100; j++)
      {
	unsigned char *p = race_ptrs[i][j];
	all[i * 100 + j] = (uintptr_t) p;
	if (!p)
	  nnull++;
	else
	  for (int k = 0; k < 64; k++)
	    if (p[k] != i)
	      {
		bad++;
		break;
	      }
      }
  qsort (all, 1600, sizeof all[0], cmp_ptr);
  for (int i = 1; i < 1600; i++)
    if (all[i] && all[i] == all[i - 1])
      dup++;
  check (nnull == 0, "default heap first use from 16 threads at once: every mmalloc(NULL) succeeded");
  check (dup == 0 && bad == 0, "default heap first use from 16 threads: 1600 distinct blocks, contents intact");
  s1 = mmstats (NULL);
  check (s1.chunks_used >= 1600, "mmstats(NULL) counts the 1600 blocks (chunks_used %zu)", s1.chunks_used);
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 100; j++)
      mfree (NULL, race_ptrs[i][j]);
  s2 = mmstats (NULL);
  check (s1.chunks_used - s2.chunks_used == 1600, "freeing them lowers chunks_used by 1600 (%zu -> %zu)",
	 s1.chunks_used, s2.chunks_used);
  check (mmalloc_check (NULL) == 0, "mmalloc_check(NULL) is 0");
  return finish ("child");
}

static void
test_default_heap (void)
{
  void *p;
  struct mstats s0, s1;
  s0 = mmstats (NULL);
  p = mmalloc (NULL, 100);
  check (p != NULL && aligned (p, MAXALIGN), "default heap: mmalloc(NULL, 100) works and is aligned");
  s1 = mmstats (NULL);
  check (s1.chunks_used == s0.chunks_used + 1 || (s0.chunks_used == 0 && s1.chunks_used >= 1),
	 "default heap: mmstats(NULL) counts the block");
  check (mmalloc_usable_size (NULL, p) >= 100, "default heap: mmalloc_usable_size(NULL, p) >= 100");
  check (mmalloc_usable_size (NULL, NULL) == 0, "mmalloc_usable_size(md, NULL) is 0");
  check (mmalloc_detach (NULL) == NULL, "mmalloc_detach(NULL) returns NULL");
  if (p)
    {
      memset (p, 0x42, 100);
      check (((unsigned char *) p)[99] == 0x42, "default heap: still usable after mmalloc_detach(NULL)");
    }
  mfree (NULL, p);
  mfree (NULL, NULL);
  test_zero_size (NULL, "default heap");
  test_alloc_sweep (NULL, "default heap", 16 * MiB);
  test_huge (NULL, "default heap");
  test_memalign (NULL, "default heap", 22);
  test_valloc (NULL, "default heap");
  test_calloc (NULL, "default heap");
  test_realloc (NULL, "default heap");
  test_stats (NULL, "default heap");
  check (mmalloc_sync (NULL) == 0, "mmalloc_sync(NULL) returns 0");

  {
    char *args[3] = { self_exe, (char *) "--child-sbrk", NULL };
    struct child c;
    char st[64];
    spawn_self (args, NULL, NULL, &c);
    relay ("fresh process", &c);
    describe_status (c.status, st, sizeof st);
    check (WIFEXITED (c.status) && WEXITSTATUS (c.status) == 0, "default heap sbrk child finished (%s)", st);
    child_free (&c);
    args[1] = (char *) "--child-race";
    spawn_self (args, NULL, NULL, &c);
    relay ("fresh process", &c);
    describe_status (c.status, st, sizeof st);
    check (WIFEXITED (c.status) && WEXITSTATUS (c.status) == 0, "default heap race child finished (%s)", st);
    child_free (&c);
  }
}

/* ------------------------------------------------------------------------- */
/* mmcheck and misuse.                                                        */

static void
marker_abort (void)
{
  _exit (ABORT_MARKER);
}

static void
test_mmcheck_basic (void)
{
  void *md = mmalloc_attach (-1, NULL), *md2 = mmalloc_attach (-1, NULL);
  if (!check (md && md2, "mmcheck: attach two anonymous heaps"))
    return;
  check (mmcheck (md, NULL) == 1, "mmcheck returns 1 on a heap before its first allocation");
  {
    static const size_t sizes[] = { 0, 1, 7, 13, 100, 1000, 4095, 4096, 5000, 100000, 1 << 20 };
    void *p[11];
    int ok = 1, exact = 1;
    for (int i = 0; i < 11; i++)
      {
	p[i] = mmalloc (md, sizes[i]);
	if (!p[i] || !aligned (p[i], MAXALIGN))
	  ok = 0;
	else
	  {
	    fill (p[i], sizes[i], (unsigned) i);
	    if (mmalloc_usable_size (md, p[i]) != sizes[i])
	      {
		if (exact)
		  diag ("under mmcheck mmalloc_usable_size of a %zu block is %zu", sizes[i],
			mmalloc_usable_size (md, p[i]));
		exact = 0;
	      }
	  }
      }
    for (int i = 0; i < 11; i++)
      if (p[i] && !verify (p[i], sizes[i], (unsigned) i))
	ok = 0;
    check (ok, "under mmcheck, blocks are aligned and hold their full size");
    check (exact, "under mmcheck, mmalloc_usable_size is exactly the size asked for");
    check (mmalloc_check (md) == 0, "under mmcheck, mmalloc_check is 0 for a correct program");
    for (int i = 0; i < 11; i++)
      mfree (md, p[i]);
  }
  test_realloc (md, "checked heap");
  test_memalign (md, "checked heap", 20);
  test_calloc (md, "checked heap");
  check (mmalloc_check (md) == 0, "checked heap: mmalloc_check is 0 after the workloads");

  {
    void *old = mmalloc (md2, 100);
    fill (old, 100, 3);
    check (mmcheck (md2, NULL) == 0, "mmcheck returns 0 after the heap's first allocation");
    check (mmcheckf (md2, NULL, 0) == 0, "mmcheckf(force 0) returns 0 after the first allocation");
    check (mmcheckf (md2, NULL, 1) == 1, "mmcheckf(force 1) returns 1 on a heap in use");
    {
      void *n = mmalloc (md2, 33);
      check (n && mmalloc_usable_size (md2, n) == 33,
	     "after mmcheckf, new blocks are checked (usable size exactly 33, got %zu)",
	     n ? mmalloc_usable_size (md2, n) : 0);
      mfree (md2, n);
    }
    check (verify (old, 100, 3), "after mmcheckf, a block from before is intact");
    {
      void *o2 = mrealloc (md2, old, 5000);
      check (o2 && verify (o2, 100, 3), "after mmcheckf, a block from before can be reallocated");
      mfree (md2, o2);
    }
    check (mmalloc_check (md2) == 0, "after mmcheckf, mmalloc_check is 0");
  }
  check (mmalloc_detach (md) == NULL && mmalloc_detach (md2) == NULL, "mmcheck: detach both heaps");
}

enum misuse_kind
{
  MU_CONTROL, MU_OVERRUN, MU_CLOBBER, MU_DOUBLE, MU_BAD_STACK, MU_BAD_INTERIOR, MU_BAD_OTHER_HEAP,
  MU_BAD_LIBC, MU_DOUBLE_DEFAULT_ABORT, MU_CHECK_OVERRUN
};

struct misuse
{
  enum misuse_kind kind;
  size_t size;
  size_t offset;
  const char *name;
  const char *group;
};

static void
report_ptrs (const void *p, const void *md)
{
  char b[80];
  int n = snprintf (b, sizeof b, "%lx %lx\n", (unsigned long) (uintptr_t) p,
		    (unsigned long) (uintptr_t) md);
  if (write (1, b, (size_t) n) != n)
    _exit (6);
}

static void
misuse_child (void *arg)
{
  const struct misuse *m = arg;
  void *md = mmalloc_attach (-1, NULL);
  unsigned char *p, *filler;
  if (!md)
    _exit (3);
  if (mmcheck (md, m->kind == MU_DOUBLE_DEFAULT_ABORT ? NULL : marker_abort) != 1)
    _exit (4);
  filler = mmalloc (md, m->size);	/* a neighbour before the victim */
  p = mmalloc (md, m->size);
  if (!p || !filler)
    _exit (5);
  memset (p, 0x11, m->size);
  memset (filler, 0x22, m->size);
  switch (m->kind)
    {
    case MU_CONTROL:
      report_ptrs (p, md);
      mfree (md, p);
      mfree (md, filler);
      if (mmalloc_check (md) != 0)
	_exit (CHECK_MARKER);
      _exit (0);
    case MU_OVERRUN:
      report_ptrs (p, md);
      p[m->size] ^= 0xff;	/* one byte past the end */
      mfree (md, p);
      _exit (0);
    case MU_CHECK_OVERRUN:
      report_ptrs (p, md);
      p[m->size] ^= 0xff;
      if (mmalloc_check (md) > 0)
	_exit (CHECK_MARKER);
      _exit (0);
    case MU_CLOBBER:
      report_ptrs (p, md);
      /* i is volatile: with the header's alloc_size, the compiler rejects
	 writes before the block that it can see.  */
      for (volatile size_t i = 1; i <= 16; i++)
	p[-(ptrdiff_t) i] ^= 0x5a;
      mfree (md, p);
      _exit (0);
    case MU_DOUBLE:
    case MU_DOUBLE_DEFAULT_ABORT:
      report_ptrs (p, md);
      mfree (md, p);
      mfree (md, p);
      _exit (0);
    case MU_BAD_STACK:
      {
	_Alignas (64) unsigned char stackbuf[128];
	memset (stackbuf, 0, sizeof stackbuf);
	report_ptrs (stackbuf, md);
	mfree (md, stackbuf);
	_exit (0);
      }
    case MU_BAD_INTERIOR:
      report_ptrs (p + m->offset, md);
      mfree (md, p + m->offset);
      _exit (0);
    case MU_BAD_OTHER_HEAP:
      {
	void *md2 = mmalloc_attach (-1, NULL);
	void *q = md2 ? mmalloc (md2, m->size) : NULL;
	if (!q)
	  _exit (5);
	report_ptrs (q, md);
	mfree (md, q);
	_exit (0);
      }
    case MU_BAD_LIBC:
      {
	void *q = malloc (m->size);
	report_ptrs (q, md);
	mfree (md, q);
	_exit (0);
      }
    }
  _exit (0);
}

static void
test_misuse (void)
{
  static const struct misuse cases[] = {
    { MU_CONTROL, 40, 0, "correct use (control)", NULL },
    { MU_OVERRUN, 10, 0, "write one byte past a 10-byte block", "overrun" },
    { MU_OVERRUN, 64, 0, "write one byte past a 64-byte block", "overrun" },
    { MU_OVERRUN, 4096, 0, "write one byte past a 4096-byte block", "overrun" },
    { MU_OVERRUN, 100000, 0, "write one byte past a 100000-byte block", "overrun" },
    { MU_CLOBBER, 64, 0, "clobber the 16 bytes before a 64-byte block (its header)", "clobber" },
    { MU_CLOBBER, 50000, 0, "clobber the 16 bytes before a 50000-byte block (its header)", "clobber" },
    { MU_DOUBLE, 32, 0, "free a 32-byte block twice", "double" },
    { MU_DOUBLE, 1 << 20, 0, "free a 1 MiB block twice", "double" },
    { MU_BAD_STACK, 32, 0, "free a stack address", "bad" },
    { MU_BAD_INTERIOR, 64, 16, "free a pointer 16 bytes into a block", "bad" },
    { MU_BAD_INTERIOR, 1 << 20, 8192, "free a pointer 8 KiB into a 1 MiB block", "bad" },
    { MU_BAD_OTHER_HEAP, 64, 0, "free a block of another heap", "bad" },
    { MU_BAD_LIBC, 64, 0, "free a pointer from the C library's malloc", "bad" },
  };
  char first_msg[4][512] = { { 0 } };
  const char *groups[4] = { "overrun", "clobber", "double", "bad" };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      const struct misuse *m = &cases[i];
      struct child c;
      char st[64];
      unsigned long pv = 0, mv = 0;
      fork_run (misuse_child, (void *) m, &c);
      describe_status (c.status, st, sizeof st);
      sscanf (c.out, "%lx %lx", &pv, &mv);
      if (m->kind == MU_CONTROL)
	{
	  check (WIFEXITED (c.status) && WEXITSTATUS (c.status) == 0 && c.err[0] == 0,
		 "mmcheck: %s runs without a report (%s, stderr \"%s\")", m->name, st, quoted (c.err));
	  child_free (&c);
	  continue;
	}
      check (WIFEXITED (c.status) && WEXITSTATUS (c.status) == ABORT_MARKER,
	     "mmcheck: %s -> the abort function runs (%s)", m->name, st);
      check (count_lines (c.err) == 1 && c.err[0] != '\n',
	     "mmcheck: %s -> exactly one line on stderr: \"%s\"", m->name, quoted (c.err));
      check (pv && names_addr (c.err, (void *) (uintptr_t) pv),
	     "mmcheck: %s -> the line names the pointer %#lx", m->name, pv);
      check (mv && names_addr (c.err, (void *) (uintptr_t) mv),
	     "mmcheck: %s -> the line names the heap (its descriptor md %#lx)", m->name, mv);
      for (int g = 0; g < 4; g++)
	if (m->group && strcmp (m->group, groups[g]) == 0 && !first_msg[g][0] && c.err[0])
	  normalize_msg (c.err, first_msg[g], sizeof first_msg[g]);
      child_free (&c);
    }
  {
    int distinct = 1;
    for (int g = 0; g < 4; g++)
      for (int h = 0; h < g; h++)
	if (first_msg[g][0] && strcmp (first_msg[g], first_msg[h]) == 0)
	  distinct = 0;
    check (distinct && first_msg[0][0] && first_msg[2][0] && first_msg[3][0],
	   "mmcheck: overrun, clobbered header, double free and bad pointer are named differently");
  }
  {
    static const struct misuse d = { MU_DOUBLE_DEFAULT_ABORT, 32, 0, "", NULL };
    struct child c;
    char st[64];
    fork_run (misuse_child, (void *) &d, &c);
    describe_status (c.status, st, sizeof st);
    check (WIFSIGNALED (c.status) && WTERMSIG (c.status) == SIGABRT,
	   "mmcheck with abortfunc NULL: a double free calls abort() (%s)", st);
    check (count_lines (c.err) == 1, "  ... after one line on stderr: \"%s\"", quoted (c.err));
    child_free (&c);
  }
  {
    static const struct misuse d = { MU_CHECK_OVERRUN, 24, 0, "", NULL };
    struct child c;
    char st[64];
    fork_run (misuse_child, (void *) &d, &c);
    describe_status (c.status, st, sizeof st);
    check (WIFEXITED (c.status)
	     && (WEXITSTATUS (c.status) == CHECK_MARKER || WEXITSTATUS (c.status) == ABORT_MARKER)
	     && c.err[0] != 0,
	   "mmalloc_check finds a one-byte overrun on a checked heap and reports it (%s, \"%s\")", st,
	   quoted (c.err));
    child_free (&c);
  }
}

/* ------------------------------------------------------------------------- */
/* Tracing.                                                                   */

/* A size in a trace line: decimal, or hex with or without 0x.  Returns the
   value that matches one of the sizes this test uses, else the decimal value.  */
static size_t
size_token (const char *tok)
{
  char *end;
  unsigned long long d = strtoull (tok, &end, 10);
  unsigned long long h = strtoull (tok, NULL, 16);
  if (*end == 0 && (d == 123 || d == 4567 || d == 77))
    return (size_t) d;
  if (h == 123 || h == 4567 || h == 77)
    return (size_t) h;
  return (size_t) d;
}

/* --child-trace: turn tracing on and make a few calls; print the pointers.  */
static int
child_trace (void)
{
  int on = mmtrace ();
  void *md = mmalloc_attach (-1, NULL);
  void *p, *q, *a;
  if (!md)
    return 3;
  p = mmalloc (md, 123);
  if (p)
    memset (p, 1, 123);
  q = mrealloc (md, p, 4567);
  mfree (md, q);
  a = mmalloc (NULL, 77);
  mfree (NULL, a);
  printf ("%d %lx %lx %lx\n", on, (unsigned long) (uintptr_t) p, (unsigned long) (uintptr_t) q,
	  (unsigned long) (uintptr_t) a);
  mmalloc_detach (md);
  return 0;
}

static void
trace_off_child (void *arg)
{
  (void) arg;
  unsetenv ("MMALLOC_TRACE");
  _exit (mmtrace () == 0 ? 0 : 1);
}

static void
trace_badpath_child (void *arg)
{
  (void) arg;
  setenv ("MMALLOC_TRACE", "/nonexistent-dir-mmconf/trace.log", 1);
  if (mmtrace () != 0)
    _exit (1);
  {
    void *p = mmalloc (NULL, 10);
    mfree (NULL, p);
  }
  _exit (0);
}

static void
test_trace (void)
{
  char tpath[PATH_MAX];
  char *args[3] = { self_exe, (char *) "--child-trace", NULL };
  struct child c;
  char st[64];
  int on = -1;
  unsigned long p = 0, q = 0, a = 0;
  tmppath (tpath, sizeof tpath, "trace.log");
  unlink (tpath);
  spawn_self (args, "MMALLOC_TRACE", tpath, &c);
  describe_status (c.status, st, sizeof st);
  check (WIFEXITED (c.status) && WEXITSTATUS (c.status) == 0, "mmtrace: the traced child ran (%s)", st);
  sscanf (c.out, "%d %lx %lx %lx", &on, &p, &q, &a);
  check (on == 1, "mmtrace() returns 1 when MMALLOC_TRACE names a file");
  child_free (&c);
  {
    size_t len;
    char *t = read_whole (tpath, &len);
    int plus_p = 0, lt_p = 0, gt_q = 0, minus_q = 0, plus_a = 0, minus_a = 0, pair = 0, other = 0;
    char prev_kind = 0;
    unsigned long prev_addr = 0;
    char *save = NULL;
    char *copy = strdup (t);
    check (len > 0, "mmtrace: the trace file was written (%zu bytes)", len);
    for (char *line = strtok_r (t, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
      {
	char k = line[0];
	unsigned long addr = 0;
	size_t size = 0;
	char stok[64] = "";
	int n = (k && line[1] == ' ') ? sscanf (line + 2, "%lx %63s", &addr, stok) : 0;
	if (n == 2)
	  size = size_token (stok);
	if (k == '+' && n == 2)
	  {
	    if (addr == p && size == 123)
	      plus_p = 1;
	    if (addr == a && size == 77)
	      plus_a = 1;
	  }
	else if (k == '-' && n >= 1)
	  {
	    if (addr == q)
	      minus_q = 1;
	    if (addr == a)
	      minus_a = 1;
	  }
	else if (k == '<' && n >= 1)
	  {
	    if (addr == p)
	      lt_p = 1;
	  }
	else if (k == '>' && n == 2)
	  {
	    if (addr == q && size == 4567)
	      {
		gt_q = 1;
		if (prev_kind == '<' && prev_addr == p)
		  pair = 1;
	      }
	  }
	else if (other++ < 3)
	  diag ("trace line not of the three kinds: \"%.100s\"", line);
	prev_kind = k;
	prev_addr = addr;
      }
    check (plus_p, "mmtrace: \"+ %#lx 123\" for mmalloc(md, 123)", p);
    check (lt_p && gt_q && pair, "mmtrace: \"< %#lx\" then \"> %#lx 4567\" for mrealloc", p, q);
    check (minus_q, "mmtrace: \"- %#lx\" for mfree", q);
    check (plus_a && minus_a, "mmtrace: calls on the default heap are traced too");
    if (!(plus_p && lt_p && gt_q && minus_q))
      diag ("trace file:\n%.1500s", copy);
    free (copy);
    free (t);
  }
  unlink (tpath);
  fork_run (trace_off_child, NULL, &c);
  describe_status (c.status, st, sizeof st);
  check (WIFEXITED (c.status) && WEXITSTATUS (c.status) == 0,
	 "mmtrace() returns 0 when MMALLOC_TRACE is not set (%s)", st);
  child_free (&c);
  fork_run (trace_badpath_child, NULL, &c);
  describe_status (c.status, st, sizeof st);
  check (WIFEXITED (c.status) && WEXITSTATUS (c.status) == 0,
	 "mmtrace() returns 0 when MMALLOC_TRACE cannot be opened, and allocation still works (%s)", st);
  child_free (&c);
}

/* ------------------------------------------------------------------------- */
/* Heaps past 4 GiB.                                                          */

static void
test_big (void *md, const char *label, const char *path)
{
  enum { NB = 6 };
  unsigned char *small = mmalloc (md, 100), *blk[NB];
  struct mstats s0 = mmstats (md), s;
  int ok = 1;
  if (small)
    fill (small, 100, 99);
  for (int i = 0; i < NB; i++)
    {
      blk[i] = mmalloc (md, GiB);
      if (!blk[i])
	{
	  ok = 0;
	  diag ("%s: 1 GiB block #%d failed, errno %d", label, i, errno);
	}
      else
	{
	  blk[i][0] = (unsigned char) i;
	  blk[i][GiB - 1] = (unsigned char) (i + 100);
	}
    }
  check (ok, "%s: six 1 GiB blocks (6 GiB) without any configuration", label);
  s = mmstats (md);
  check (s.bytes_total > 4 * GiB && stats_sane (s), "%s: bytes_total passed 4 GiB (%zu)", label,
	 s.bytes_total);
  check (small && verify (small, 100, 99), "%s: a block from before the growth is intact at the same address",
	 label);
  ok = 1;
  for (int i = 0; i < NB; i++)
    if (blk[i] && (blk[i][0] != (unsigned char) i || blk[i][GiB - 1] != (unsigned char) (i + 100)))
      ok = 0;
  check (ok, "%s: the 1 GiB blocks hold their first and last bytes", label);
  {
    /* Many page-sized blocks past the 4 GiB mark, then small ones.  */
    enum { NM = 1200 };
    static void *m[NM];
    int mok = 1;
    for (int i = 0; i < NM; i++)
      {
	m[i] = mmalloc (md, MiB + 1);
	if (!m[i])
	  mok = 0;
	else
	  *(int *) m[i] = i;
      }
    for (int i = 0; i < NM; i++)
      if (m[i] && *(int *) m[i] != i)
	mok = 0;
    for (int i = 0; i < NM; i++)
      {
	void *sm = mmalloc (md, 48);
	if (!sm)
	  mok = 0;
	mfree (md, m[i]);
	m[i] = sm;
      }
    for (int i = 0; i < NM; i++)
      mfree (md, m[i]);
    check (mok, "%s: 1200 more 1 MiB blocks and small blocks beyond 4 GiB", label);
  }
  if (path)
    {
      check (mmalloc_sync (md) == 0, "%s: mmalloc_sync of a heap past 4 GiB returns 0", label);
      mmalloc_setkey (md, 0, blk[NB - 1]);
      mmalloc_setkey (md, 1, small);
    }
  else
    {
      for (int i = 0; i < NB; i++)
	mfree (md, blk[i]);
      s = mmstats (md);
      check (s.chunks_used == s0.chunks_used && stats_sane (s),
	     "%s: mmstats consistent after freeing the big blocks (chunks_used %zu, want %zu)", label,
	     s.chunks_used, s0.chunks_used);
    }
  check (mmalloc_check (md) == 0, "%s: mmalloc_check is 0", label);
}

static void
test_big_heaps (void)
{
  void *md = mmalloc_attach (-1, NULL);
  char path[PATH_MAX];
  int fd;
  if (check (md != NULL, "big anonymous heap: attach"))
    {
      test_big (md, "big anonymous heap", NULL);
      check (mmalloc_detach (md) == NULL, "big anonymous heap: detach");
    }
  tmppath (path, sizeof path, "big-heap.mm");
  fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  md = fd >= 0 ? mmalloc_attach (fd, NULL) : NULL;
  if (fd >= 0)
    close (fd);
  if (check (md != NULL, "big file heap: attach"))
    {
      test_big (md, "big file heap", path);
      check (mmalloc_detach (md) == NULL, "big file heap: detach");
      check (file_size (path) > (off_t) (4 * GiB), "big file heap: the file is larger than 4 GiB (%lld)",
	     (long long) file_size (path));
      fd = open (path, O_RDWR);
      errno = 0;
      md = fd >= 0 ? mmalloc_attach (fd, NULL) : NULL;
      if (fd >= 0)
	close (fd);
      if (check (md != NULL, "big file heap: re-attach (errno %d)", errno))
	{
	  unsigned char *last = mmalloc_getkey (md, 0);
	  unsigned char *small = mmalloc_getkey (md, 1);
	  check (last && last[0] == 5 && last[GiB - 1] == 105 && small && verify (small, 100, 99),
		 "big file heap: data past 4 GiB and before it are intact after re-attach");
	  check (mmalloc_check (md) == 0, "big file heap: mmalloc_check is 0 after re-attach");
	  check (mmalloc_detach (md) == NULL, "big file heap: detach again");
	}
    }
  unlink (path);
}

/* ------------------------------------------------------------------------- */

/* Remove the private directory and its files; at exit, so that an early
   return leaves nothing either, and only in the process that made it (a
   forked child that exits must not take it from the parent).  */
static pid_t tmpdir_owner;

static void
cleanup_tmpdir (void)
{
  if (getpid () != tmpdir_owner)
    return;
  DIR *d = opendir (tmpdir);
  struct dirent *e;
  char p[PATH_MAX];
  if (!d)
    return;
  while ((e = readdir (d)) != NULL)
    {
      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
	continue;
      snprintf (p, sizeof p, "%s/%s", tmpdir, e->d_name);
      unlink (p);
    }
  closedir (d);
  rmdir (tmpdir);
}

static void
setup (const char *argv0)
{
  const char *t = getenv ("TMPDIR");
  ssize_t n = readlink ("/proc/self/exe", self_exe, sizeof self_exe - 1);
  if (n > 0)
    self_exe[n] = 0;
  else
    snprintf (self_exe, sizeof self_exe, "%s", argv0);
  snprintf (tmpdir, sizeof tmpdir, "%s/mmconf.XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp (tmpdir))
    {
      perror ("mkdtemp");
      exit (2);
    }
  tmpdir_owner = getpid ();
  atexit (cleanup_tmpdir);
}

int
main (int argc, char **argv)
{
  void *md;

  if (argc >= 2 && strncmp (argv[1], "--child-", 8) == 0)
    {
      alarm (300);
      if (strcmp (argv[1], "--child-reattach") == 0)
	return child_reattach (argc, argv);
      if (strcmp (argv[1], "--child-simple") == 0)
	return child_simple (argc, argv);
      if (strcmp (argv[1], "--child-sbrk") == 0)
	return child_sbrk ();
      if (strcmp (argv[1], "--child-race") == 0)
	return child_race ();
      if (strcmp (argv[1], "--child-trace") == 0)
	return child_trace ();
      return 2;
    }

  alarm (1200);	/* a hang is a failure too */
  setup (argv[0]);
  diag ("mmalloc conformance test; library %s, header %s; max_align_t alignment %zu", mmalloc_version (),
	MMALLOC_VERSION_STRING, (size_t) MAXALIGN);

  test_version ();
  test_strerror ();

  errno = 0;
  md = mmalloc_attach (-1, NULL);
  if (!check (md != NULL, "mmalloc_attach(-1, NULL) gives a private anonymous heap (errno %d)", errno))
    return finish ("conformance");
  check (mmalloc_errno (md) == 0, "mmalloc_errno is 0 on a new heap");
  check (mmalloc_sync (md) == 0, "mmalloc_sync on an anonymous heap returns 0");
  test_keys (md, "anonymous heap");
  test_zero_size (md, "anonymous heap");
  test_alloc_sweep (md, "anonymous heap", 64 * MiB);
  test_huge (md, "anonymous heap");
  test_memalign (md, "anonymous heap", 30);
  test_valloc (md, "anonymous heap");
  test_calloc (md, "anonymous heap");
  test_realloc (md, "anonymous heap");
  test_stats (md, "anonymous heap");

  test_many_heaps ();
  test_file_heap ();
  test_bad_files ();

  test_threads (md, "anonymous heap", 8, 20000);
  {
    char path[PATH_MAX];
    int fd;
    void *fmd;
    tmppath (path, sizeof path, "thread-heap.mm");
    fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    fmd = fd >= 0 ? mmalloc_attach (fd, NULL) : NULL;
    if (fd >= 0)
      close (fd);
    if (check (fmd != NULL, "file heap for threads: attach"))
      {
	test_threads (fmd, "file heap", 6, 10000);
	check (mmalloc_detach (fmd) == NULL, "file heap for threads: detach");
      }
    unlink (path);
  }
  test_threads (NULL, "default heap", 8, 10000);

  test_default_heap ();
  test_mmcheck_basic ();
  test_misuse ();
  test_trace ();
  test_big_heaps ();

  check (mmalloc_check (md) == 0, "anonymous heap: mmalloc_check is 0 after all workloads");
  check (mmalloc_check (NULL) == 0, "default heap: mmalloc_check is 0 after all workloads");
  check (stats_sane (mmstats (md)) && stats_sane (mmstats (NULL)), "mmstats sane at the end");
  check (mmalloc_detach (md) == NULL, "anonymous heap: mmalloc_detach returns NULL");

  return finish ("conformance");
}
