/* leaks.c -- the leak report of the drop-in malloc (MMALLOC_OPTIONS=leaks):
   at exit, the garbage detector over the whole process finds the blocks of
   the default heap that nothing reaches, prints a summary on stderr (the
   count, the bytes, the largest groups of blocks of one size and one
   allocation site: sites are recorded with MMALLOC_OPTIONS=check, see
   mmalloc_block_site) and, when it found some, makes the process exit
   with status 23 unless it was exiting with another status already.

   It runs from an on_exit handler registered when the library starts, so
   after the program's own atexit handlers, and before the C library flushes
   its streams: they are flushed here before the status is changed.  The
   report is written with write(2) and fixed buffers, on a copy of the
   standard error made when the library started: programs that close their
   standard streams at exit (gnulib's close_stdout) still get it.  */

#include "mmprivate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEAK_STATUS 23
static int report_fd = 2;

static void
say (const char *s, size_t len)
{
  while (len)
    {
      ssize_t w = write (report_fd, s, len);
      if (w <= 0 && errno != EINTR)
	return;
      if (w > 0)
	{
	  s += w;
	  len -= (size_t) w;
	}
    }
}
#define GROUPS 256		/* sizes and sites told apart */
#define SHOWN 10		/* groups printed */

struct group
{
  size_t size, blocks;
  const void *site;		/* NULL: not recorded */
};

struct tally
{
  size_t blocks, bytes;
  struct group g[GROUPS];
  unsigned ng;
  size_t other;			/* blocks of sizes past the table */
};

static int
count_leak (void *ptr, size_t size, void *arg)
{
  struct tally *t = arg;
  const void *site = mmalloc_block_site (NULL, ptr);
  t->blocks++;
  t->bytes += size;
  unsigned i = 0;
  while (i < t->ng && (t->g[i].size != size || t->g[i].site != site))
    i++;
  if (i == t->ng && t->ng < GROUPS)
    t->g[t->ng++] = (struct group) { size, 0, site };
  if (i < t->ng)
    t->g[i].blocks++;
  else
    t->other++;
  return 0;
}

/* Append the decimal V to BUF at *AT (BUF holds 256 bytes).  */
static void
put_num (char *buf, size_t *at, size_t v)
{
  char d[24];
  int n = 0;
  do
    d[n++] = (char) ('0' + v % 10);
  while ((v /= 10) && n < 24);
  while (n && *at < 255)
    buf[(*at)++] = d[--n];
}

static void
put_str (char *buf, size_t *at, const char *s)
{
  while (*s && *at < 255)
    buf[(*at)++] = *s++;
}

/* "mmalloc: " A X B Y C, then " allocated at SITE" (named) if SITE, and
   the end of the line.  */
static void
say_site_line (const char *a, size_t x, const char *b, size_t y, const char *c,
	       const void *site)
{
  char buf[256];
  size_t at = 0;
  put_str (buf, &at, "mmalloc: ");
  put_str (buf, &at, a);
  put_num (buf, &at, x);
  put_str (buf, &at, b);
  put_num (buf, &at, y);
  put_str (buf, &at, c);
  say (buf, at);
  if (site)
    {
      char name[384];
      mm_site_name (site, name, sizeof name);
      say (" allocated at ", 14);
      say (name, strlen (name));
    }
  say ("\n", 1);
}

static void
say_line (const char *a, size_t x, const char *b, size_t y, const char *c)
{
  say_site_line (a, x, b, y, c, NULL);
}

static void
report (const struct tally *t)
{
  say_line ("leak check: ", t->blocks, " blocks lost, ", t->bytes,
	    " bytes, that nothing in the process reaches");
  struct group g[GROUPS];
  memcpy (g, t->g, t->ng * sizeof *g);
  for (unsigned i = 1; i < t->ng; i++)	/* by bytes, largest first */
    for (unsigned j = i; j && g[j - 1].size * g[j - 1].blocks < g[j].size * g[j].blocks; j--)
      {
	struct group x = g[j];
	g[j] = g[j - 1];
	g[j - 1] = x;
      }
  size_t shown = 0;
  for (unsigned i = 0; i < t->ng && i < SHOWN; i++)
    {
      say_site_line ("  ", g[i].blocks, " blocks of ", g[i].size, " bytes", g[i].site);
      shown += g[i].blocks;
    }
  if (shown < t->blocks)
    say_line ("  ", t->blocks - shown, " more blocks of ", t->ng - SHOWN + (t->other != 0),
	      " other sizes and sites or more");
}

static void
leaks_at_exit (int status, void *arg)
{
  (void) arg;
  static struct tally t;
  memset (&t, 0, sizeof t);
  size_t n = mmalloc_garbage (NULL, MMALLOC_GARBAGE_PROCESS, count_leak, &t);
  if (n == (size_t) -1)
    {
      const char *why = mmalloc_strerror (errno);
      say ("mmalloc: leak check failed: ", 28);
      say (why, strlen (why));
      say ("\n", 1);
      return;
    }
  if (!n)
    return;
  report (&t);
  if (status == 0)
    {
      fflush (NULL);
      _exit (LEAK_STATUS);
    }
}

void
mm_leaks_at_exit (void)
{
  static int done;
  if (done++)
    return;
  int fd = fcntl (2, F_DUPFD_CLOEXEC, 10);
  if (fd >= 0)
    report_fd = fd;
  on_exit (leaks_at_exit, NULL);
}
