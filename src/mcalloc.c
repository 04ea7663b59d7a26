/* mcalloc.c -- zeroed arrays, refusing a product that overflows size_t.  */

#include "mmprivate.h"

#include <errno.h>
#include <string.h>

void *
mcalloc (void *md, size_t nmemb, size_t size)
{
  size_t total;
  if (__builtin_mul_overflow (nmemb, size, &total))
    {
      struct mm_desc *d = mm_desc_of (md);	/* else errno is set */
      if (d)
	mm_fail (d, ENOMEM);
      return NULL;
    }
  void *p = mmalloc (md, total);
  if (p)
    memset (p, 0, total);
  return p;
}
