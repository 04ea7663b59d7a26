/* error.c -- error codes, their names, the version, and reports of misuse.

   Reports are one line on stderr written with write(2): no stdio, no
   allocation, safe in any state of the heap.  After a misuse report the heap's
   abort function runs (default abort); if it returns, the call is abandoned
   and the heap is left as it was.  */

#include "mmprivate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

/* Remember ERR as D's last error and set errno; returns -1 for tail calls.  */
int
mm_fail (struct mm_desc *d, int err)
{
  if (d)
    d->err = err;
  errno = err;
  return -1;
}

int
mmalloc_errno (void *md)
{
  struct mm_desc *d = mm_desc_of (md);
  return d ? d->err : errno;
}

const char *
mmalloc_version (void)
{
  return MMALLOC_VERSION_STRING;
}

/* The C library's text for ERR, or "Unknown error": always a string that
   stays valid.  strerror's texts of the codes it knows are constant in glibc
   and in musl, but glibc writes the text of any other code in a buffer that
   its next call overwrites; GNU strerror_r returns such a text in the buffer
   it is given, and only such a text.  */
static const char *
sys_text (int err)
{
#ifdef __GLIBC__
  char buf[1];
  const char *s = strerror_r (err, buf, sizeof buf);
  return s == buf ? "Unknown error" : s;
#else
  return strerror (err);
#endif
}

const char *
mmalloc_strerror (int err)
{
  switch (err)
    {
    case 0:
      return "Success";
    case MMALLOC_ENOTHEAP:
      return "Not an mmalloc heap file";
    case MMALLOC_EVERSION:
      return "Heap file has an unsupported format version";
    case MMALLOC_EMACHINE:
      return "Heap file was made on an incompatible machine";
    case MMALLOC_ECORRUPT:
      return "Heap file is damaged";
    case MMALLOC_ETRUNCATED:
      return "Heap file is truncated";
    case MMALLOC_EADDRINUSE:
      return "Heap address range is already in use";
    case MMALLOC_ELOCKED:
      return "Heap file is attached elsewhere (a writer, or readers, or this process)";
    case MMALLOC_EBADDESC:
      return "Invalid or stale heap descriptor";
    default:
      return sys_text (err);
    }
}
