/* tcache.c -- per-thread slab ownership: the lock-free small-block paths.

   A thread owns, per heap it uses (up to MM_TC_ENTRIES) and per size class, at
   most one slab (slab->owner == its id).  Only the owner sets bits in an owned
   slab, so allocating is one atomic OR on the slab's bitmap, with no lock.  Any
   thread frees with one atomic AND; only a free into a slab without an owner
   takes the class lock, to put the slab back on its partial list.  The bitmap
   is the only record of a slot's state, so nothing here needs recovery.

   An owner gives its slab up (under the class lock) when it is full, when the
   thread exits, and when the entry is evicted; detach takes every slab back
   (mm_tc_drop_heap) and bumps the heap's generation, which makes the entries
   of every thread stale.  Descriptors are never unmapped (attach.c reuses
   them), so a stale entry can always be compared safely.  */

#include "mmprivate.h"

#include <errno.h>
#include <string.h>

__thread struct mm_tc *mm_tc_self __attribute__ ((tls_model ("initial-exec")));

static uint32_t next_id;
static uint64_t next_gen;
static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;

/* A descriptor no entry can match: empty entries point here.  */
static struct mm_desc no_desc = { .gen = UINT64_MAX };

uint64_t
mm_new_gen (void)
{
  return __atomic_add_fetch (&next_gen, 1, __ATOMIC_RELAXED);
}

static void
entry_clear (struct mm_tce *e)
{
  memset (e, 0, sizeof *e);
  e->md = (void *) &no_desc;
  e->d = &no_desc;
}

/* Give up the slabs of E, if its heap is still the one it was made for.  */
static void
entry_release (struct mm_tce *e)
{
  struct mm_desc *d = e->d;
  for (unsigned c = 0; d != &no_desc && c < MM_NCLASSES; c++)
    if (e->slab[c])
      {
	pthread_mutex_lock (&d->class_lock[c]);
	if (e->gen == __atomic_load_n (&d->gen, __ATOMIC_ACQUIRE))
	  mm_slab_unowned (d, e->slab[c]);
	pthread_mutex_unlock (&d->class_lock[c]);
      }
  entry_clear (e);
}

/* At thread exit: give every slab back, then the cache's memory.  */
static void
tc_destroy (void *arg)
{
  struct mm_tc *tc = arg;
  for (int i = 0; i < MM_TC_ENTRIES; i++)
    entry_release (&tc->e[i]);
  mm_tc_self = NULL;
  mm_os_unmap (tc, sizeof *tc);
}

static void
tc_init_key (void)
{
  pthread_key_create (&tc_key, tc_destroy);
}

static struct mm_tc *
tc_create (void)
{
  void *p;
  pthread_once (&tc_once, tc_init_key);
  if (mm_os_alloc (sizeof (struct mm_tc), &p))
    return NULL;
  struct mm_tc *tc = p;
  tc->id = __atomic_add_fetch (&next_id, 1, __ATOMIC_RELAXED);
  if (!tc->id)			/* 2^32 threads later */
    tc->id = __atomic_add_fetch (&next_id, 1, __ATOMIC_RELAXED);
  for (int i = 0; i < MM_TC_ENTRIES; i++)
    entry_clear (&tc->e[i]);
  if (pthread_setspecific (tc_key, tc))
    {
      mm_os_unmap (tc, sizeof *tc);
      return NULL;
    }
  mm_tc_self = tc;
  return tc;
}

/* The calling thread's entry for heap D (named MD by the caller), moved to the
   front; made if missing.  NULL if D must take the locked paths.  */
struct mm_tce *
mm_tc_entry (void *md, struct mm_desc *d)
{
  if (!mm_writable (d) || d->damaged || mm_trace_on
      || (__atomic_load_n (&d->hdr->flags, __ATOMIC_RELAXED) & MM_F_CHECKED))
    return NULL;
  struct mm_tc *tc = mm_tc_self;
  if (!tc && !(tc = tc_create ()))
    return NULL;
  uint64_t gen = __atomic_load_n (&d->gen, __ATOMIC_ACQUIRE);
  int i;
  for (i = 0; i < MM_TC_ENTRIES; i++)
    if (tc->e[i].md == md && tc->e[i].d == d && tc->e[i].gen == gen)
      break;
  if (i == MM_TC_ENTRIES)
    {
      i = MM_TC_ENTRIES - 1;
      entry_release (&tc->e[i]);
      tc->e[i].md = md;
      tc->e[i].d = d;
      tc->e[i].gen = gen;
    }
  if (i)
    {
      struct mm_tce t = tc->e[i];
      memmove (&tc->e[1], &tc->e[0], (size_t) i * sizeof t);
      tc->e[0] = t;
    }
  return &tc->e[0];
}

/* The owned slab of E for CLS has no free slot at its hint: search it, else
   give it up and own another.  A slot, or NULL with errno set.  */
void *
mm_tc_refill (struct mm_tce *e, unsigned cls)
{
  struct mm_desc *d = e->d;
  const struct mm_class *c = &mm_classes[cls];
  struct mm_slab *s = e->slab[cls];
  uint32_t idx = s ? mm_slab_take (s) : UINT32_MAX;
  if (idx == UINT32_MAX)
    {
      pthread_mutex_lock (&d->class_lock[cls]);
      if (s)
	mm_slab_unowned (d, s);
      e->slab[cls] = NULL;
      struct mm_class_state *cs = &d->hdr->cls[cls];
      uint64_t off = cs->partial[0];
      if (off)
	{
	  s = (struct mm_slab *) mm_at (d, off);
	  if (s->magic != MM_SLAB_MAGIC || s->cls != cls || s->owner)
	    {
	      mm_damage (d, "partial slab list", off);
	      s = NULL;
	    }
	  else
	    {
	      mm_partial_pull (d, s);
	      __atomic_store_n (&s->owner, mm_tc_self->id, __ATOMIC_SEQ_CST);
	      __atomic_add_fetch (&d->nowned, 1, __ATOMIC_RELAXED);
	      MM_KP ();
	    }
	}
      else
	s = mm_slab_new (d, cls, 0, mm_tc_self->id);
      pthread_mutex_unlock (&d->class_lock[cls]);
      if (!s)
	return NULL;
      e->slab[cls] = s;
      idx = mm_slab_take (s);
      if (idx == UINT32_MAX)
	{			/* a listed slab was full: damage */
	  mm_damage (d, "full slab on a partial list", mm_off (d, s));
	  return NULL;
	}
    }
  return (char *) s + c->objoff + (size_t) idx * c->size;
}

/* Detach (or a change that stops the fast paths): take back every owned slab
   of D, and make every thread's entry for D stale.  All of D's locks held.  */
void
mm_tc_drop_heap (struct mm_desc *d)
{
  uint64_t top = d->hdr->top;
  __atomic_store_n (&d->gen, mm_new_gen (), __ATOMIC_RELEASE);
  /* The walk touches every slab: skip it when no thread owns one.  */
  for (uint64_t pg = MM_HDR_PAGES; pg < top && __atomic_load_n (&d->nowned, __ATOMIC_RELAXED);)
    {
      uint32_t e = mm_pm_get (d, pg);
      uint64_t n = PM_KIND (e) == PM_LARGE || PM_KIND (e) == PM_FREE ? e & PM_NMASK : 1;
      if (PM_KIND (e) == PM_SLAB && PM_SLAB_OFF (e) == 0 && PM_SLAB_CLS (e) < MM_NCLASSES)
	{
	  struct mm_slab *s = (struct mm_slab *) (d->base + (pg << MM_PAGE_SHIFT));
	  n = mm_classes[PM_SLAB_CLS (e)].pages;
	  if (s->magic == MM_SLAB_MAGIC && s->owner)
	    mm_slab_unowned (d, s);
	}
      pg += n ? n : 1;
    }
}
