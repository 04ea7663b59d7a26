/* classes.c -- the size classes: constant, computed once.

   Small requests (<= MM_SMALL_MAX) take a slot from a slab of their class: 16-byte
   steps to 128 (the alignment allows no finer ones), then four classes per
   doubling to 16 KiB and eight from 16 to 32 KiB, so from 64 bytes up
   neighbouring classes are at most 25% apart.  The table's fingerprint is
   recorded in every heap file (class_sum), which a build with other classes
   refuses.  */

#include "mmprivate.h"

struct mm_class mm_classes[256];
uint8_t mm_class_of16[1024 / 16 + 1];
static pthread_once_t classes_once = PTHREAD_ONCE_INIT;

/* What struct mm_class promises of C (format.h): slots aligned, slot 0
   after the slab header and its two bitmaps, the slots within the slab, an
   index that fits a recent slot, and the reciprocal exact at every slot's
   start and end.  */
static void
class_check (const struct mm_class *c)
{
  MM_ASSERT (c->size % MM_ALIGN == 0 && c->nobj > 0 && c->nobj < MM_PAGE);
  MM_ASSERT (c->objoff % 64 == 0
	     && c->objoff >= sizeof (struct mm_slab) + 16 * (size_t) c->words);
  MM_ASSERT ((size_t) c->objoff + c->span <= (size_t) c->pages * MM_PAGE);
  MM_ASSERT (c->words == (c->nobj + 63) / 64 && c->span == c->nobj * c->size);
#ifdef MM_ASSERTS
  for (uint64_t i = 0; i < c->nobj; i++)
    {
      uint64_t at = i * c->size;
      MM_ASSERT ((at * c->recip) >> 40 == i && ((at + c->size - 1) * c->recip) >> 40 == i);
    }
#endif
}

/* The table as the format lays slabs out (format.c), and the class of each
   small size.  */
static void
classes_build (void)
{
  mm_fmt_classes (mm_classes);
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    class_check (&mm_classes[c]);
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
