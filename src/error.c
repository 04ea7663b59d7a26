/* error.c -- a heap's last error, the names of the error codes, the
   version.  Reports of misuse and damage are in diag.c.  */

#include "mmprivate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
