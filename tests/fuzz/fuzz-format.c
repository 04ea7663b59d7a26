/* fuzz-format.c -- libFuzzer harness: the format layer's validators and the
   walk of the page map on any bytes, read through a read function.

   The input is a heap image as a tool would find it in a file or a core: it
   is never mapped at its base and never attached.  The header and the
   directory are checked; the page map is walked below `top' (bounded by the
   image, as a tool bounds it by the file's size) with every check; each slab
   found has its header and bitmaps validated and a few bytes decoded to
   slots; each checked large block has its lead record decoded.  Oracles
   (beyond ASan and UBSan: no read outside the input, no undefined
   behaviour): the walk covers every page below `top' once, in order; a thing
   without a flaw is whole by the single-object validators too.  */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static struct mm_class tab[256];
static uint32_t dir[MM_DIR_ENTRIES];

struct input
{
  const uint8_t *p;
  uint64_t len, base;
};

static int
input_read (void *ctx, uint64_t addr, void *dst, size_t len)
{
  const struct input *in = ctx;
  uint64_t off = addr - in->base;
  if (addr < in->base || off > in->len || len > in->len - off)
    return -1;
  memcpy (dst, in->p + off, len);
  return 0;
}

#define FAIL(what) (fputs ("fuzz oracle: " what "\n", stderr), __builtin_trap ())

static void
slab_thing (const struct mm_fmt_heap *h, const struct mm_fmt_thing *t)
{
  unsigned cls = PM_SLAB_CLS (t->mark);
  const struct mm_class *c = &h->cls[cls];
  uint64_t buf[MM_PAGE / 8];
  if (cls >= MM_NCLASSES || c->objoff > sizeof buf)
    FAIL ("a slab of no class");
  if (mm_fmt_read (h, t->pg << MM_PAGE_SHIFT, buf, c->objoff) < 0)
    return;
  const struct mm_slab *s = (const struct mm_slab *) (void *) buf;
  if (!mm_fmt_slab_ident (s, cls, c))
    FAIL ("a slab walked with its headers checked has a bad header");
  if (!mm_fmt_slab_bits (s, c, 1))
    (void) mm_fmt_slab_counts (s, c);
  uint64_t base = t->pg << MM_PAGE_SHIFT;
  for (uint64_t rel = 0; rel < (uint64_t) c->pages << MM_PAGE_SHIFT; rel += 4093)
    {
      uint64_t into = 0, idx = mm_fmt_slot (c, rel, &into);
      if (idx > c->nobj || (idx < c->nobj && (into >= c->size
					      || c->objoff + idx * c->size + into != rel)))
	FAIL ("a slot decoded wrong");
      if (mm_fmt_slab_of (base + rel, mm_fmt_slab_mark (cls, (uint32_t) (rel >> MM_PAGE_SHIFT)))
	  != base)
	FAIL ("a slab page decoded to another slab");
    }
}

static void
large_thing (const struct mm_fmt_heap *h, const struct mm_fmt_thing *t)
{
  struct mm_chk c;
  if (!(t->mark & PM_CHECKED) || mm_fmt_read (h, t->pg << MM_PAGE_SHIFT, &c, sizeof c) < 0)
    return;
  size_t room = (size_t) t->n << MM_PAGE_SHIFT;
  size_t lead = mm_fmt_chk_lead (&c, h->base + (t->pg << MM_PAGE_SHIFT), room);
  if (lead && (lead % MM_ALIGN || lead > room - sizeof c))
    FAIL ("a lead record out of its block");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (!tab[0].size)
    mm_fmt_classes (tab);
  struct mm_header hd;
  memset (&hd, 0, sizeof hd);
  memcpy (&hd, data, size < sizeof hd ? size : sizeof hd);
  (void) mm_fmt_header_check (&hd, tab, size);
  memset (dir, 0, sizeof dir);
  if (size > MM_PAGE)
    memcpy (dir, data + MM_PAGE, size - MM_PAGE < sizeof dir ? size - MM_PAGE : sizeof dir);
  /* The walk stops at what the image can hold, as a tool stops at a
     file's end; a few pages more are read as missing.  */
  uint64_t pages = (size >> MM_PAGE_SHIFT) + 4, top = hd.top < pages ? hd.top : pages;
  int dirty = hd.state != MM_CLEAN;
  if (top)
    (void) mm_fmt_dir_check (dir, top, hd.span, dirty);
  (void) mm_fmt_dir_sum (dir);

  struct input in = { data, size, hd.base };
  struct mm_fmt_heap h = { .base = hd.base, .span = hd.span, .top = top, .cls = tab,
    .read = input_read, .ctx = &in };
  struct mm_fmt_iter it;
  struct mm_fmt_thing t;
  uint64_t next = 0;
  mm_fmt_iter_init (&it, &h, 0, MM_FMT_HEADERS | MM_FMT_INTERIOR);
  while (mm_fmt_iter_next (&it, &t))
    {
      if (t.pg != next || t.n == 0 || t.n > top - t.pg)
	FAIL ("the walk skipped or overran a page");
      next += t.n;
      if (t.flaw && t.flaw != MM_FMT_INSIDE && t.n != 1)
	FAIL ("a flawed thing longer than a page");
      if (t.flaw)
	continue;
      if (t.kind == PM_SLAB)
	slab_thing (&h, &t);
      else if (t.kind == PM_LARGE)
	large_thing (&h, &t);
      else if (t.kind == PM_FREE)
	{
	  struct mm_run r;
	  if (mm_fmt_read (&h, t.pg << MM_PAGE_SHIFT, &r, sizeof r) == 0)
	    (void) mm_fmt_run_ok (&r, top);
	}
      uint32_t e;
      if (mm_fmt_pm_read (&h, t.pg, &e) < 0 || e != t.mark)
	FAIL ("a mark reads otherwise one at a time");
    }
  if (next != top)
    FAIL ("the walk ended before top");
  return 0;
}
