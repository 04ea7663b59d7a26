/* mmalloc.c -- size classes, slabs and the allocation paths.

   Small requests (<= MM_SMALL_MAX) take a slot from a slab of their class: 16-byte
   steps to 128, then four classes per doubling, so a slot wastes under 25% of its
   size.  A slab's bitmap is the only authority on which slots are allocated; one
   word store claims or releases a slot.  Larger requests take whole pages.
   Slab work happens under the class lock, page work under the page lock.  */

#include "mmprivate.h"

#include <errno.h>
#include <string.h>

struct mm_class mm_classes[MM_NCLASSES];
static pthread_once_t classes_once = PTHREAD_ONCE_INIT;

static uint32_t
class_size (unsigned c)
{
  if (c < 8)
    return (c + 1) * 16;
  unsigned b = 7 + (c - 8) / 4, i = (c - 8) % 4;
  return (uint32_t) ((4 + i + 1) << (b - 2));
}

static size_t
slab_hdr_bytes (uint32_t nobj)
{
  size_t h = sizeof (struct mm_slab) + 8 * (((size_t) nobj + 63) / 64);
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
	  while (nobj && slab_hdr_bytes (nobj) + (size_t) nobj * size > bytes)
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

/* --- partial lists: slabs with free slots, per class and kind ------------- */

/* Is OFF the first page of a whole slab of class CLS?  */
static int
slab_ok (struct mm_desc *d, uint64_t off, unsigned cls)
{
  if (!off || !mm_link_ok (d, off))
    return 0;
  uint32_t e = mm_pm_get (d, off >> MM_PAGE_SHIFT);
  const struct mm_slab *s = mm_at (d, off);
  return e == PM_MAKE (PM_SLAB, cls) && s->magic == MM_SLAB_MAGIC && s->cls == cls
    && s->nobj == mm_classes[cls].nobj && s->hint < (s->nobj + 63) / 64;
}

void
mm_partial_push (struct mm_desc *d, struct mm_slab *s)
{
  struct mm_class_state *cs = &d->hdr->cls[s->cls];
  int k = s->flags & MM_SLAB_CHECKED;
  s->prev = 0;
  s->next = cs->partial[k];
  if (s->next && !slab_ok (d, s->next, s->cls))
    {
      mm_damage (d, "partial slab list", s->next);
      s->next = 0;
    }
  if (s->next)
    ((struct mm_slab *) mm_at (d, s->next))->prev = mm_off (d, s);
  MM_KP ();
  cs->partial[k] = mm_off (d, s);
  MM_KP ();
  s->flags |= MM_SLAB_LISTED;
  MM_KP ();
}

void
mm_partial_pull (struct mm_desc *d, struct mm_slab *s)
{
  struct mm_class_state *cs = &d->hdr->cls[s->cls];
  int k = s->flags & MM_SLAB_CHECKED;
  if ((s->prev && !slab_ok (d, s->prev, s->cls)) || (s->next && !slab_ok (d, s->next, s->cls)))
    {
      mm_damage (d, "partial slab list", mm_off (d, s));
      return;
    }
  if (s->prev)
    ((struct mm_slab *) mm_at (d, s->prev))->next = s->next;
  else
    cs->partial[k] = s->next;
  if (s->next)
    ((struct mm_slab *) mm_at (d, s->next))->prev = s->prev;
  MM_KP ();
  s->next = s->prev = 0;
  s->flags &= (uint16_t) ~MM_SLAB_LISTED;
  MM_KP ();
}

/* A new empty slab of class CLS, put on its partial list; NULL, errno set.  */
static struct mm_slab *
slab_new (struct mm_desc *d, unsigned cls, int checked)
{
  const struct mm_class *c = &mm_classes[cls];
  pthread_mutex_lock (&d->page_lock);
  uint64_t pg = mm_pages_alloc (d, c->pages, 1, PM_SLAB, cls);
  pthread_mutex_unlock (&d->page_lock);
  if (!pg)
    return NULL;
  struct mm_slab *s = (struct mm_slab *) (d->base + (pg << MM_PAGE_SHIFT));
  uint32_t words = (c->nobj + 63) / 64;
  memset (s, 0, sizeof *s + words * 8);
  if (c->nobj % 64)		/* slots past the end read as taken */
    s->bits[words - 1] = ~0ULL << (c->nobj % 64);
  s->cls = (uint16_t) cls;
  s->flags = checked ? MM_SLAB_CHECKED : 0;
  s->nobj = c->nobj;
  MM_KP ();
  __atomic_store_n (&s->magic, MM_SLAB_MAGIC, __ATOMIC_RELEASE);
  MM_KP ();
  d->hdr->cls[cls].nslabs++;
  d->hdr->cls[cls].nslots += c->nobj;
  MM_KP ();
  mm_partial_push (d, s);
  return s;
}

/* Claim a free slot of S, which has one.  */
static uint32_t
slab_take (struct mm_slab *s)
{
  uint32_t words = (s->nobj + 63) / 64;
  for (uint32_t i = 0, w = s->hint; i < words; i++, w = (w + 1 == words ? 0 : w + 1))
    {
      uint64_t free = ~s->bits[w];
      if (free)
	{
	  unsigned bit = (unsigned) __builtin_ctzll (free);
	  __atomic_store_n (&s->bits[w], s->bits[w] | (1ULL << bit), __ATOMIC_RELEASE);
	  MM_KP ();
	  s->hint = w;
	  return w * 64 + bit;
	}
    }
  return UINT32_MAX;		/* unreachable while nused < nobj */
}

void *
mm_alloc_small (struct mm_desc *d, unsigned cls, int checked)
{
  struct mm_class_state *cs = &d->hdr->cls[cls];
  const struct mm_class *c = &mm_classes[cls];
  pthread_mutex_lock (&d->class_lock[cls]);
  struct mm_slab *s;
  uint64_t off = cs->partial[checked];
  if (off)
    {
      s = (struct mm_slab *) mm_at (d, off);
      if (!slab_ok (d, off, cls) || s->nused >= s->nobj || d->damaged)
	{
	  mm_damage (d, "partial slab list", off);
	  s = NULL;
	}
    }
  else
    s = slab_new (d, cls, checked);
  if (!s)
    {
      pthread_mutex_unlock (&d->class_lock[cls]);
      return NULL;
    }
  uint32_t idx = slab_take (s);
  s->nused++;
  MM_KP ();
  cs->nused++;
  MM_KP ();
  if (s->nused == s->nobj)
    mm_partial_pull (d, s);
  pthread_mutex_unlock (&d->class_lock[cls]);
  return (char *) s + c->objoff + (size_t) idx * c->size;
}

void *
mm_alloc_large (struct mm_desc *d, uint64_t npages, uint64_t align, int checked)
{
  pthread_mutex_lock (&d->page_lock);
  uint64_t pg = mm_pages_alloc (d, npages, align, PM_LARGE, checked ? PM_CHECKED : 0);
  pthread_mutex_unlock (&d->page_lock);
  return pg ? d->base + (pg << MM_PAGE_SHIFT) : NULL;
}

/* Pages for SIZE bytes, or 0 when SIZE is beyond any heap.  */
static uint64_t
pages_for (size_t size)
{
  if (size > (size_t) PM_NMASK << MM_PAGE_SHIFT)
    return 0;
  return ((uint64_t) size + MM_PAGE - 1) >> MM_PAGE_SHIFT;
}

static void
note_used (struct mm_desc *d)
{
  if (MM_UNLIKELY (!(__atomic_load_n (&d->hdr->flags, __ATOMIC_RELAXED) & MM_F_USED)))
    __atomic_or_fetch (&d->hdr->flags, MM_F_USED, __ATOMIC_RELAXED);
}

/* Allocate SIZE bytes; NULL with errno set.  */
void *
mm_alloc (struct mm_desc *d, size_t size)
{
  if (MM_UNLIKELY (!mm_writable (d) || d->damaged))
    {
      errno = d->damaged ? MMALLOC_ECORRUPT : EROFS;
      return NULL;
    }
  note_used (d);
  int checked = (__atomic_load_n (&d->hdr->flags, __ATOMIC_RELAXED) & MM_F_CHECKED) != 0;
  size_t need = size;
  if (checked)
    {
      if (size > SIZE_MAX - sizeof (struct mm_chk) - 1)
	goto nomem;
      need = size + sizeof (struct mm_chk) + 1;
    }
  void *p;
  size_t room;
  if (need <= MM_SMALL_MAX)
    {
      unsigned cls = mm_size_class (need);
      p = mm_alloc_small (d, cls, checked);
      room = mm_classes[cls].size;
    }
  else
    {
      uint64_t n = pages_for (need);
      if (!n)
	goto nomem;
      p = mm_alloc_large (d, n, 1, checked);
      room = (size_t) n << MM_PAGE_SHIFT;
    }
  if (p && checked)
    p = mm_chk_arm (p, room, size);
  return p;
nomem:
  errno = ENOMEM;
  return NULL;
}

void *
mmalloc (void *md, size_t size)
{
  struct mm_desc *d = mm_desc_of (md);
  if (!d)
    return NULL;
  return mm_alloc_done (d, mm_alloc (d, size), size);
}

/* The end of every allocating entry point: remember a failure, trace.  */
void *
mm_alloc_done (struct mm_desc *d, void *p, size_t size)
{
  if (MM_UNLIKELY (!p))
    {
      mm_fail (d, errno);
      return NULL;
    }
  if (MM_UNLIKELY (mm_trace_on))
    mm_trace ('+', p, size);
  return p;
}
