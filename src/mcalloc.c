/* mcalloc.c -- zeroed arrays, refusing a product that overflows size_t.  A
   large block whose pages are known to read zero (fresh from the kernel, or
   given back since they were last written: pages.c) is not written.  */

#include "mmprivate.h"

#include <errno.h>
#include <string.h>

static void *
calloc_body (void *md, size_t nmemb, size_t size)
{
  size_t total;
  if (__builtin_mul_overflow (nmemb, size, &total))
    {
      struct mm_desc *d = mm_desc_of (md);	/* else errno is set */
      if (d)
	mm_fail (d, ENOMEM);
      return NULL;
    }
  if (total <= MM_SMALL_MAX)
    {
      void *p = mmalloc (md, total);
      if (p)
	memset (p, 0, total);
      return p;
    }
  struct mm_desc *d = mm_desc_of (md);
  if (!d)
    return NULL;
  int zero;
  void *p = mm_alloc_done (d, mm_alloc (d, total, &zero), total);
  if (p && !zero)
    memset (p, 0, total);
  return p;
}

void *
mcalloc (void *md, size_t nmemb, size_t size)
{
  return MM_SITE_CALL (calloc_body (md, nmemb, size));
}
