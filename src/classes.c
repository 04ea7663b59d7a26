/* classes.c -- the size classes: constant, computed once.

   Small requests (<= MM_SMALL_MAX) take a slot from a slab of their class: 16-byte
   steps to 128 (the alignment allows no finer ones), then four classes per
   doubling to 16 KiB and eight from 16 to 32 KiB, so from 64 bytes up
   neighbouring classes are at most 25% apart.  The table's fingerprint is
   recorded in every heap file (class_sum), which a build with other classes
   refuses.  */

#include "mmprivate.h"

#include <string.h>

struct mm_class mm_classes[256];
uint8_t mm_class_of16[1024 / 16 + 1];
static pthread_once_t classes_once = PTHREAD_ONCE_INIT;

static uint32_t
class_size (unsigned c)
{
  if (c < 8)
    return (c + 1) * 16;
  if (c > MM_CLASS_16K)		/* eight per doubling from 16 KiB to 32 KiB */
    return 16384 + (c - MM_CLASS_16K) * 2048;
  unsigned b = 7 + (c - 8) / 4, i = (c - 8) % 4;
  return (uint32_t) ((4 + i + 1) << (b - 2));
}

static size_t
slab_hdr_bytes (uint32_t nobj)
{
  size_t h = sizeof (struct mm_slab) + 16 * (((size_t) nobj + 63) / 64);
  return (h + 63) & ~(size_t) 63;
}

/* Pages per slab: the fewest that waste at most 1/16 of the slab, else the
   least wasteful of up to MM_SLAB_MAX_PAGES.  */
static void
classes_build (void)
{
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    {
      uint32_t size = class_size (c), best_pages = 0, best_nobj = 0;
      size_t best_waste = (size_t) -1;
      for (uint32_t n = 1; n <= MM_SLAB_MAX_PAGES; n++)
	{
	  size_t bytes = (size_t) n * MM_PAGE;
	  uint32_t nobj = (uint32_t) (bytes / size);
	  while (nobj && (slab_hdr_bytes (nobj) + (size_t) nobj * size > bytes
			  || nobj >= MM_PAGE))	/* a hint packs the index (tcache.c) */
	    nobj--;
	  if (!nobj)
	    continue;
	  size_t waste = bytes - slab_hdr_bytes (nobj) - (size_t) nobj * size;
	  if (waste * best_pages < best_waste * n || !best_pages)
	    {
	      best_waste = waste;
	      best_pages = n;
	      best_nobj = nobj;
	    }
	  if (waste * 16 <= bytes)
	    break;
	}
      mm_classes[c].size = size;
      mm_classes[c].pages = (uint16_t) best_pages;
      mm_classes[c].nobj = best_nobj;
      mm_classes[c].objoff = (uint16_t) slab_hdr_bytes (best_nobj);
      mm_classes[c].recip = ((uint64_t) 1 << 40) / size + 1;
      mm_classes[c].words = (best_nobj + 63) / 64;
      mm_classes[c].span = best_nobj * size;
    }
  for (unsigned i = 0; i <= 1024 / 16; i++)
    {
      size_t size = i * 16;
      unsigned c = 0;
      while (mm_classes[c].size < size)
	c++;
      mm_class_of16[i] = (uint8_t) c;
    }
}

void
mm_classes_init (void)
{
  pthread_once (&classes_once, classes_build);
}

/* A fingerprint of the class table, kept in the header: a file made with other
   classes must not be used.  */
uint32_t
mm_classes_sum (void)
{
  uint32_t h = 2166136261u;
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    {
      uint32_t v[4] = { mm_classes[c].size, mm_classes[c].nobj,
	mm_classes[c].pages, mm_classes[c].objoff };
      for (int i = 0; i < 4; i++)
	h = (h ^ v[i]) * 16777619u;
    }
  return h;
}
