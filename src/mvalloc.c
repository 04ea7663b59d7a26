/* mvalloc.c -- page-aligned blocks: the system's page size, at least 4096.  */

#include "mmprivate.h"

void *
mvalloc (void *md, size_t size)
{
  size_t page = mm_os_pagesize ();
  return MM_SITE_CALL (mmemalign (md, page > MM_PAGE ? page : MM_PAGE, size));
}
