/* quarantine.c -- freed checked blocks kept back before they are reused.

   A freed block is marked freed, filled with MM_CHK_POISON and kept in the
   quarantine: it stays allocated in its slab or page map, so its memory is
   not handed out again at once, and a second free or a realloc of it is
   recognised.  The quarantine holds a heap's last frees, MM_QUAR_BLOCKS
   blocks and MM_QUAR_BYTES bytes at most; the block that leaves it is
   verified (any write into it since its free is reported) and given back.

   The quarantine's list is process memory (under the page lock); what it
   means lives in the heap: an allocated block whose header says freed is in
   quarantine, or was being freed, and recovery gives it back (mm_recover).
   After a kill no quarantined block is lost, and none is freed twice: the
   list dies with the process, and recovery starts a new one.  */

#include "mmprivate.h"

#include <errno.h>
#include <string.h>

#define CHK sizeof (struct mm_chk)

struct mm_quar
{
  uint32_t head, n;		/* the oldest entry; entries */
  size_t bytes;			/* the bytes of their slots and page runs */
  struct
  {
    void *p;
    size_t bytes;
    unsigned cls;		/* of its slot, or MM_NCLASSES: a large block */
  } entries[MM_QUAR_BLOCKS];
};

void
mm_quar_reset (struct mm_desc *d)
{
  if (d->quar)
    {
      d->quar->head = d->quar->n = 0;
      d->quar->bytes = 0;
    }
}

/* The oldest entry of D's quarantine if it holds more than LIMIT bytes (or,
   with LIMIT 0, anything), taken out; else NULL.  Page lock held.  */
static void *
quar_pop (struct mm_desc *d, size_t limit)
{
  struct mm_quar *q = d->quar;
  if (!q || !q->n || q->bytes <= limit)
    return NULL;
  void *p = q->entries[q->head].p;
  q->bytes -= q->entries[q->head].bytes;
  q->head = (q->head + 1) % MM_QUAR_BLOCKS;
  q->n--;
  return p;
}

/* Give back P, a block that leaves the quarantine: verify that nothing wrote
   into it since it was freed, and free it.  */
static void
quar_release (struct mm_desc *d, void *p)
{
  struct mm_block b;
  unsigned lockno = mm_block_lock (d, p);
  if (mm_damaged (d))
    {				/* left allocated */
      mm_block_unlock (d, lockno);
      return;
    }
  enum mm_verdict bad = mm_lookup (d, p, &b);
  if (bad == MM_OK && (b.cls != lockno || !b.checked))
    bad = MM_DAMAGED_PAGE_MAP_PTR;
  if (bad != MM_OK)
    {				/* left allocated */
      mm_block_unlock (d, lockno);	/* a misuse here: its lead record was
				   overwritten after the free */
      mm_bad_block (d, bad >= MM_DAMAGED_FIRST ? bad : MM_BAD_WRITE_AFTER_FREE, p);
      return;
    }
  bad = mm_chk_freed_intact ((const struct mm_chk *) p - 1, b.room);
  if (b.slab && (bad != MM_OK || b.lead > CHK))
    mm_chk_recycle (b.slab, b.start + CHK - b.lead, b.room + b.lead - CHK);
  mm_block_release (d, &b);
  mm_block_unlock (d, lockno);
  if (bad != MM_OK)
    mm_fault (d, mm_verdict_text (bad), p);
}

/* Release quarantined blocks of D until it holds LIMIT bytes at most.  */
static void
quar_drain (struct mm_desc *d, size_t limit)
{
  for (;;)
    {
      mm_lock (&d->page_lock);
      void *p = quar_pop (d, limit);
      mm_unlock (&d->page_lock);
      if (!p)
	return;
      quar_release (d, p);
    }
}

/* The blocks in D's quarantine are free to the program: count them in HI as
   free slots and free runs, not as used blocks.  Every lock of D held.  */
void
mm_quar_stats (struct mm_desc *d, struct mm_heapinfo *hi)
{
  struct mm_quar *q = d->quar;
  for (uint32_t k = 0; q && k < q->n; k++)
    {
      uint32_t i = (q->head + k) % MM_QUAR_BLOCKS;
      size_t bytes = q->entries[i].bytes;
      hi->st.chunks_used--;
      hi->st.bytes_used -= bytes;
      hi->st.chunks_free++;
      hi->st.bytes_free += bytes;
      if (q->entries[i].cls < MM_NCLASSES)
	hi->cls_free[q->entries[i].cls]++;
      else
	{
	  unsigned bin = mm_bin_of (bytes >> MM_PAGE_SHIFT);
	  hi->large--;
	  hi->large_bytes -= bytes;
	  hi->runs++;
	  hi->run_bytes += bytes;
	  hi->bin_runs[bin]++;
	  hi->bin_pages[bin] += bytes >> MM_PAGE_SHIFT;
	}
    }
}

/* Before a heap is detached: its blocks in quarantine go back.  */
void
mm_quar_flush (struct mm_desc *d)
{
  quar_drain (d, 0);
}

/* Free the checked block B of PTR: B's lock LOCKNO is held, and dropped here.  The
   block is marked freed first (see mm_recover), then poisoned and put in
   quarantine; a slot for which there is no room there is given back now, in
   the free state.  */
void
mm_chk_free (struct mm_desc *d, void *ptr, struct mm_block *b, unsigned lockno)
{
  struct mm_chk *c = (struct mm_chk *) ptr - 1;
  int keep = b->room <= MM_QUAR_BLOCK_MAX;
  if (keep)			/* a freed block that stays allocated */
    mm_format_need (d, MM_FORMAT_V2);
  __atomic_store_n (&c->magic, MM_CHK_FREE, __ATOMIC_RELEASE);
  MM_KP ();
  if (keep)
    memset (ptr, MM_CHK_POISON, b->room - CHK);
  void *spill = NULL;
  if (lockno < MM_NCLASSES)
    mm_lock (&d->page_lock);	/* class lock, then page lock */
  if (keep && !d->quar)
    {
      void *q;
      if (mm_os_alloc (sizeof (struct mm_quar), &q) == 0)
	d->quar = q;		/* zeroed: empty */
    }
  if (keep && d->quar)
    {
      struct mm_quar *q = d->quar;
      if (q->n == MM_QUAR_BLOCKS)
	spill = quar_pop (d, 0);
      uint32_t i = (q->head + q->n) % MM_QUAR_BLOCKS;
      q->entries[i].p = ptr;
      q->entries[i].bytes = b->room + b->lead - CHK;	/* the whole slot or run */
      q->entries[i].cls = b->cls;
      q->n++;
      MM_ASSERT (q->n <= MM_QUAR_BLOCKS);
      q->bytes += q->entries[i].bytes;
    }
  else
    keep = 0;
  if (lockno < MM_NCLASSES)
    mm_unlock (&d->page_lock);
  if (!keep)
    {
      if (b->slab)
	mm_chk_recycle (b->slab, b->start + CHK - b->lead, b->room + b->lead - CHK);
      mm_block_release (d, b);
    }
  mm_block_unlock (d, lockno);
  if (spill)
    quar_release (d, spill);
  quar_drain (d, MM_QUAR_BYTES);
}
