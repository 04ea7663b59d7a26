/* diag.c -- reports of misuse and of heap damage.

   Reports are one line on stderr written with write(2): no stdio, no
   allocation, safe in any state of the heap.  After a misuse report the heap's
   abort function runs (default abort); if it returns, the call is abandoned
   and the heap is left as it was.  Damage stops the heap's fast paths and
   refuses allocation from then on (mm_damage).  */

#include "mmprivate.h"

#include <dlfcn.h>
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

/* SITE, an allocation site, as reports name it, in BUF (LEN bytes, at least
   1): its address, then "(function+0xOFFSET, object)", or "(object)", as
   far as the dynamic linker knows them.  No allocation, no stdio.  */
void
mm_site_name (const void *site, char *buf, size_t len)
{
  char *p = buf, *end = buf + len - 1;
  put_hex (&p, end, (uint64_t) (uintptr_t) site);
  Dl_info info;
  if (dladdr (site, &info) && info.dli_fname)
    {
      put (&p, end, " (");
      if (info.dli_sname && info.dli_saddr)
	{
	  put (&p, end, info.dli_sname);
	  put (&p, end, "+");
	  put_hex (&p, end, (uint64_t) ((const char *) site - (const char *) info.dli_saddr));
	  put (&p, end, ", ");
	}
      put (&p, end, info.dli_fname);
      put (&p, end, ")");
    }
  *p = 0;
}

/* The site recorded before the user's pointer PTR of D (a checked block's,
   allocated or freed): NULL if none, or if PTR is no such pointer.  Reads
   only the heap's pages below its top.  */
static const void *
site_before (struct mm_desc *d, const void *ptr)
{
  const char *p = ptr;
  if (!d || ((uintptr_t) p & (MM_ALIGN - 1)) || p < d->base + MM_PAGE + 2 * sizeof (struct mm_chk)
      || (uint64_t) (p - d->base) >= mm_top (d) << MM_PAGE_SHIFT)
    return NULL;
  const struct mm_chk *c = (const struct mm_chk *) (const void *) p - 2;
  return (const void *) (uintptr_t) mm_fmt_chk_site (c, (uint64_t) (uintptr_t) c);
}

static void
say_site (struct mm_desc *d, const char *what, const char *label, uint64_t value,
	  const void *site)
{
  char line[640], *p = line, *end = line + sizeof line - 1;
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
  if (site)
    {
      char name[384];
      mm_site_name (site, name, sizeof name);
      put (&p, end, ", allocated at ");
      put (&p, end, name);
    }
  *p++ = '\n';
  mm_os_write_stderr (line, (size_t) (p - line));
}

static void
say (struct mm_desc *d, const char *what, const char *label, uint64_t value)
{
  say_site (d, what, label, value, NULL);
}

void
mm_fault (struct mm_desc *d, const char *what, const void *ptr)
{
  say_site (d, what, ": pointer ", (uint64_t) (uintptr_t) ptr, site_before (d, ptr));
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
      __atomic_store_n (&d->free_bound, 0, __ATOMIC_SEQ_CST);	/* no fast frees */
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

/* The words of the report of V.  */
const char *
mm_verdict_text (enum mm_verdict v)
{
  static const char *const text[MM_VERDICTS] = {
    [MM_OK] = "no problem",
    [MM_BAD_MISALIGNED] = "misaligned pointer",
    [MM_BAD_OUTSIDE] = "pointer outside the heap",
    [MM_BAD_FOREIGN] = "pointer was not handed out by this heap",
    [MM_BAD_NOT_START] = "pointer is not the start of a block",
    [MM_BAD_NOT_ALLOCATED] = "block is not allocated (freed twice?)",
    [MM_BAD_CHANGED] = "block changed under a concurrent call",
    [MM_BAD_HEADER] = "block header clobbered (write before the block?)",
    [MM_BAD_DOUBLE_FREE] = "double free (block freed twice)",
    [MM_BAD_USE_AFTER_FREE] = "use after free (the block was freed)",
    [MM_BAD_OVERRUN] = "write past the end of a block",
    [MM_BAD_WRITE_AFTER_FREE] = "write after free",
    [MM_DAMAGED_PAGE_MAP] = "damaged page map",
    [MM_DAMAGED_PAGE_MAP_PTR] = "damaged page map holds pointer",
    [MM_DAMAGED_SLAB] = "damaged slab holds pointer",
  };
  return (unsigned) v < MM_VERDICTS && text[v] ? text[v] : "bad pointer";
}

/* PTR, given back to D, is bad as V says: damage of the heap (reported
   once; the heap stops) or the caller's misuse (reported; the abort
   function runs).  */
void
mm_bad_block (struct mm_desc *d, enum mm_verdict v, const void *ptr)
{
  if (v >= MM_DAMAGED_FIRST)
    mm_damage (d, mm_verdict_text (v), (uint64_t) ((const char *) ptr - d->base));
  else
    mm_fault (d, mm_verdict_text (v), ptr);
}

#ifdef MM_ASSERTS
/* An internal invariant (MM_ASSERT) does not hold: a bug of the library.  */
void
mm_assert_fail (const char *file, int line, const char *cond)
{
  char num[12], *p = num + sizeof num;
  *--p = 0;
  do
    *--p = (char) ('0' + line % 10);
  while ((line /= 10) > 0 && p > num);
  char buf[256], *q = buf, *end = buf + sizeof buf - 1;
  put (&q, end, "mmalloc: internal assertion failed: ");
  put (&q, end, file);
  put (&q, end, ":");
  put (&q, end, p);
  put (&q, end, ": ");
  put (&q, end, cond);
  *q++ = '\n';
  mm_os_write_stderr (buf, (size_t) (q - buf));
  abort ();
}
#endif
