/* mmtrace.c -- tracing allocations to a file.

   mmtrace opens the file named by MMALLOC_TRACE and from then on every
   mmalloc, mfree and mrealloc of every heap writes one line: "+ ADDR SIZE",
   "- ADDR", or "< OLD" followed by "> NEW SIZE", numbers in hex.  A "+" or
   ">" ends with " @ SITE" when the allocation site is known: the address of
   the code that called the entry point, then, as far as the dynamic linker
   knows them, "(function+0xOFFSET, object)" (mm_site_name), so that the
   trace names sites after the process is gone.  Each line is one write(2)
   to a file opened with O_APPEND, so lines of several threads never mix;
   nothing here allocates.  tools/mmtrace-report reads the file.  */

#include "mmprivate.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int trace_fd = -1;

static char *
hex (char *p, uint64_t v)
{
  char tmp[16];
  int n = 0;
  do
    tmp[n++] = "0123456789abcdef"[v & 15];
  while ((v >>= 4) && n < 16);
  *p++ = '0';
  *p++ = 'x';
  while (n)
    *p++ = tmp[--n];
  return p;
}

/* The names of the sites met lately (dladdr searches symbol tables), by
   address; under mm_trace_lock.  */
#define SITE_NAMES 128
#define SITE_NAME_MAX 240
static struct
{
  const void *site;
  char name[SITE_NAME_MAX];
} site_names[SITE_NAMES];

/* SITE as mm_site_name names it, in NAME (SITE_NAME_MAX bytes).  dladdr
   runs without the lock: it takes the dynamic linker's, which a thread in
   dlopen holds while it allocates.  */
static void
site_text (const void *site, char *name)
{
  uint64_t h = (uint64_t) (uintptr_t) site * 0x9e3779b97f4a7c15ULL;
  unsigned i = (unsigned) (h >> 57) % SITE_NAMES;
  mm_lock (&mm_trace_lock);
  int hit = site_names[i].site == site;
  if (hit)
    memcpy (name, site_names[i].name, SITE_NAME_MAX);
  mm_unlock (&mm_trace_lock);
  if (hit)
    return;
  mm_site_name (site, name, SITE_NAME_MAX);
  mm_lock (&mm_trace_lock);
  site_names[i].site = site;
  memcpy (site_names[i].name, name, SITE_NAME_MAX);
  mm_unlock (&mm_trace_lock);
}

void
mm_trace (char op, const void *ptr, size_t size)
{
  char line[48 + SITE_NAME_MAX], *p = line;
  *p++ = op;
  *p++ = ' ';
  p = hex (p, (uint64_t) (uintptr_t) ptr);
  if (op == '+' || op == '>')
    {
      *p++ = ' ';
      p = hex (p, size);
      const void *site = mm_site;
      if (site)
	{
	  *p++ = ' ';
	  *p++ = '@';
	  *p++ = ' ';
	  site_text (site, p);
	  p += strlen (p);
	}
    }
  *p++ = '\n';
  int fd = __atomic_load_n (&trace_fd, __ATOMIC_ACQUIRE);
  if (fd >= 0 && write (fd, line, (size_t) (p - line)) < 0)
    return;			/* a trace that cannot be written is dropped */
}

int
mmtrace (void)
{
  mm_lock (&mm_trace_lock);
  if (trace_fd < 0)
    {
      const char *name = secure_getenv ("MMALLOC_TRACE");
      int fd = name && *name
	? open (name, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644) : -1;
      if (fd >= 0)
	{
	  static const char start[] = "= Start\n";
	  if (write (fd, start, sizeof start - 1) < 0)
	    {
	      close (fd);
	      fd = -1;
	    }
	}
      if (fd >= 0)
	{
	  __atomic_store_n (&trace_fd, fd, __ATOMIC_RELEASE);
	  __atomic_store_n (&mm_sites_want, 1, __ATOMIC_RELAXED);
	  __atomic_or_fetch (&mm_trace_on, MM_SLOW_TRACE, __ATOMIC_RELEASE);
	}
    }
  int on = trace_fd >= 0;
  mm_unlock (&mm_trace_lock);
  return on;
}
