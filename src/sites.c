/* sites.c -- allocation sites of checked blocks: where a block was
   allocated, and its name for reports.

   A checked block allocated through a public entry point starts with a site
   record (format.h): the address of the code that called the entry point
   (mmalloc, mcalloc, malloc..., set by the outermost one: mm_site).  A
   site is an address in the process that allocated the block; in another
   process it names nothing unless the same program is loaded at the same
   place, so a tool prints it as a number.  Reports name a site with
   mm_site_name (diag.c).  */

#include "mmprivate.h"

void *
mmalloc_block_site (void *md, const void *ptr)
{
  struct mm_desc *d = mm_desc_of (md);
  if (!d || !ptr)
    return NULL;
  struct mm_block b;
  if (mm_lookup (d, ptr, &b) != MM_OK || !b.checked || b.lead <= sizeof (struct mm_chk))
    return NULL;
  return (void *) (uintptr_t) mm_chk_site_of (b.start + sizeof (struct mm_chk) - b.lead);
}
