/* header.c -- the sums of the header and of the page-map directory, and the
   header's validation.

   The header's fixed fields are covered by hdr_sum, the directory by
   dir_sum (FNV-1a); a file whose header fails mm_header_validate is refused
   with a distinct error for each way it can be wrong, before any of it
   beyond the header is mapped.  Pure functions of the bytes given.  */

#include "mmprivate.h"

#include <string.h>

/* FNV-1a of the fixed fields of H, its version read as MM_FORMAT_V1 (the
   version rises in place: see mm_format_need).  */
uint64_t
mm_hdr_sum (const struct mm_header *h)
{
  unsigned char p[offsetof (struct mm_header, hdr_sum)];
  uint32_t v1 = MM_FORMAT_V1;
  memcpy (p, h, sizeof p);
  memcpy (p + offsetof (struct mm_header, version), &v1, sizeof v1);
  uint64_t s = 14695981039346656037ULL;
  for (size_t i = 0; i < offsetof (struct mm_header, hdr_sum); i++)
    s = (s ^ p[i]) * 1099511628211ULL;
  return s;
}

/* A fingerprint of the page-map directory DIR, kept in the header: on a
   clean file it stands for checking every leaf (which would cost a fault
   per leaf at each attach).  FNV-1a over every entry; the zeros after the
   last entry in use (nearly all of them) only multiply by the prime, so
   they are folded into one power of it.  */
uint64_t
mm_dir_sum_at (const uint32_t *dir)
{
  uint64_t n = mm_dir_used (dir), s = 14695981039346656037ULL, p = 1099511628211ULL;
  for (uint64_t w = 0; w < n; w++)
    s = (s ^ dir[w]) * p;
  for (uint64_t k = MM_DIR_ENTRIES - n; k; k >>= 1, p *= p)
    if (k & 1)
      s *= p;
  return s;
}

uint64_t
mm_dir_sum (const struct mm_desc *d)
{
  return mm_dir_sum_at ((const uint32_t *) (d->base + MM_PAGE));
}

/* 0 if H describes a heap this library can use whose file has FILE_SIZE bytes
   (0: unknown), else the MMALLOC_E* code naming what is wrong.  */
int
mm_header_validate (const struct mm_header *h, uint64_t file_size)
{
  if (memcmp (h->magic, MM_MAGIC, 8) != 0)
    return MMALLOC_ENOTHEAP;
  if (h->byte_order != MM_BYTE_ORDER)
    return h->byte_order == __builtin_bswap32 (MM_BYTE_ORDER)
      ? MMALLOC_EMACHINE : MMALLOC_ECORRUPT;
  if (h->version < MM_FORMAT_V1 || h->version > MM_FORMAT_VERSION)
    return MMALLOC_EVERSION;
  if (h->word_size != sizeof (void *) || h->page_size != MM_PAGE)
    return MMALLOC_EMACHINE;
  if (h->hdr_sum != mm_hdr_sum (h))
    return MMALLOC_ECORRUPT;
  if (h->hdr_size != sizeof (struct mm_header) || h->hdr_pages != MM_HDR_PAGES
      || h->nclasses != MM_NCLASSES || h->class_sum != mm_classes_sum ())
    return MMALLOC_EVERSION;
  if (h->base % MM_PAGE || h->span % MM_PAGE || h->span > MM_SPAN_MAX
      || h->base + h->span < h->base || (uintptr_t) h->base != h->base)
    return MMALLOC_ECORRUPT;
  if (h->top < MM_HDR_PAGES + MM_LEAF_PAGES || h->top > h->span >> MM_PAGE_SHIFT)
    return MMALLOC_ECORRUPT;
  if (file_size && h->top << MM_PAGE_SHIFT > file_size)
    return MMALLOC_ETRUNCATED;
  return 0;
}

/* The entries of directory DIR up to its last that is not 0, one by one.  */
static uint64_t
dir_used_slow (const uint32_t *dir)
{
  uint64_t n = MM_DIR_ENTRIES;
  while (n && !dir[n - 1])
    n--;
  return n;
}

/* The same, fast where the directory is one that growth makes: the entries
   in use come first and the rest (nearly all) are 0, compared a page at a
   time.  */
uint64_t
mm_dir_used (const uint32_t *dir)
{
  static const uint32_t zeros[MM_PAGE / 4];
  const uint64_t per = MM_PAGE / 4;
  uint64_t n = 0;
  while (n < MM_DIR_ENTRIES && dir[n])
    n++;
  uint64_t chunk = (n + per - 1) / per * per;	/* past N's page */
  for (uint64_t w = n; w < chunk && w < MM_DIR_ENTRIES; w++)
    if (dir[w])
      return dir_used_slow (dir);
  for (uint64_t w = chunk; w < MM_DIR_ENTRIES; w += per)
    if (memcmp (dir + w, zeros, sizeof zeros))
      return dir_used_slow (dir);
  return n;
}
