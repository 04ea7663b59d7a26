/* diag.c -- reports of misuse and of heap damage.

   Reports are one line on stderr written with write(2): no stdio, no
   allocation, safe in any state of the heap.  After a misuse report the heap's
   abort function runs (default abort); if it returns, the call is abandoned
   and the heap is left as it was.  Damage stops the heap's fast paths and
   refuses allocation from then on (mm_damage).  */

#include "mmprivate.h"

#include <errno.h>
#include <stdlib.h>

/* Append S to the line at *P, bounded by END.  */
static void
put (char **p, char *end, const char *s)
{
  while (*s && *p < end)
    *(*p)++ = *s++;
}

static void
put_hex (char **p, char *end, uint64_t v)
{
  char tmp[19];
  int n = 0;
  do
    tmp[n++] = "0123456789abcdef"[v & 15];
  while ((v >>= 4) && n < 16);
  put (p, end, "0x");
  while (n > 0 && *p < end)
    *(*p)++ = tmp[--n];
}

static void
say (struct mm_desc *d, const char *what, const char *label, uint64_t value)
{
  char line[256], *p = line, *end = line + sizeof line - 1;
  put (&p, end, "mmalloc: ");
  put (&p, end, what);
  put (&p, end, label);
  put_hex (&p, end, value);
  if (d && (d->mode & MM_MODE_DEFAULT))
    put (&p, end, " in the default heap (NULL)");
  else if (d)
    {
      put (&p, end, " in heap ");	/* the handle the caller holds */
      put_hex (&p, end, (uint64_t) __atomic_load_n (&d->handle, __ATOMIC_RELAXED));
    }
  if (d)
    {
      put (&p, end, " at ");
      put_hex (&p, end, (uint64_t) (uintptr_t) d->base);
    }
  *p++ = '\n';
  mm_os_write_stderr (line, (size_t) (p - line));
}

void
mm_fault (struct mm_desc *d, const char *what, const void *ptr)
{
  say (d, what, ": pointer ", (uint64_t) (uintptr_t) ptr);
  if (d && d->abortfunc)
    d->abortfunc ();
  else
    abort ();
}

void
mm_report (struct mm_desc *d, const char *what, uint64_t value)
{
  say (d, what, ": offset ", value);
}

/* MD, passed as a heap descriptor, names no attached heap (WHAT says how):
   reported without a heap, so no abort function runs; errno
   MMALLOC_EBADDESC.  */
void
mm_bad_desc (const char *what, const void *md)
{
  say (NULL, what, ": pointer ", (uint64_t) (uintptr_t) md);
  errno = MMALLOC_EBADDESC;
}

/* D's metadata is inconsistent (a damaged file, or memory overwritten by
   the program): say so once, then refuse allocation (MMALLOC_ECORRUPT) and
   ignore frees, so nothing more is overwritten; the heap stays dirty and
   the next attach rebuilds what can be rebuilt.  */
void
mm_damage (struct mm_desc *d, const char *what, uint64_t off)
{
  if (!__atomic_exchange_n (&d->damaged, 1, __ATOMIC_SEQ_CST))
    {
      __atomic_store_n (&d->limit, 0, __ATOMIC_SEQ_CST);	/* no fast frees */
      say (d, what, ": heap metadata damaged at offset ", off);
      __atomic_store_n (&d->gen, mm_new_gen (), __ATOMIC_RELEASE);	/* no fast paths */
    }
  errno = MMALLOC_ECORRUPT;
}

/* Is D a heap file of the parent (MM_MODE_PARENT)?  Then WHAT, a call that
   would read its page map or walk it, is refused: the parent changes the
   heap under us, without our locks, and may grow it beyond what this
   process has mapped, so such a walk would report damage that is not
   there, or fault.  Reported, errno MMALLOC_ELOCKED (attached by another
   writer); 1.  */
int
mm_fork_refuse (struct mm_desc *d, const char *what)
{
  if (!(d->mode & MM_MODE_PARENT))
    return 0;
  mm_report (d, what, 0);
  errno = MMALLOC_ELOCKED;
  return 1;
}
