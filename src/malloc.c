/* malloc.c -- the process-wide malloc of libmmalloc-malloc.so: the C library's
   allocation interface on mmalloc's default heap (the NULL descriptor).

   Linked only into libmmalloc-malloc (the Makefile leaves malloc.o out of
   libmmalloc); libmmalloc.so exports the m* API alone.  Nothing here may allocate, print or call dlsym:
   it runs before and inside everything else, including ld.so's callers and
   pthread start-up.  Errors follow C and POSIX: NULL with errno ENOMEM, and
   posix_memalign's return codes.  fork: see fork.c.  */

#include "mmprivate.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__ ((visibility ("default")))

void cfree (void *ptr);		/* old glibc: gone from its headers */

/* The caller of malloc and the others is made the allocation site
   (MM_SITE_CALL) only when something keeps sites (mm_sites_want): checked
   blocks (MMALLOC_OPTIONS=check) or a trace; else the calls stay tail
   calls.  */
#define SITE_CALL(expr)							\
  (MM_UNLIKELY (__atomic_load_n (&mm_sites_want, __ATOMIC_RELAXED))	\
   ? MM_SITE_CALL (expr) : (expr))

EXPORT void *
malloc (size_t size)
{
  return SITE_CALL (mmalloc (NULL, size));
}

EXPORT void
free (void *ptr)
{
  mfree (NULL, ptr);
}

EXPORT void
cfree (void *ptr)
{
  mfree (NULL, ptr);
}

EXPORT void *
calloc (size_t nmemb, size_t size)
{
  return SITE_CALL (mcalloc (NULL, nmemb, size));
}

/* realloc (p, 0) frees P and returns NULL, as the C library's does (mrealloc
   keeps a minimal block instead); realloc (NULL, 0) is malloc (0).  */
EXPORT void *
realloc (void *ptr, size_t size)
{
  if (ptr && !size)
    {
      mfree (NULL, ptr);
      return NULL;
    }
  return SITE_CALL (mrealloc (NULL, ptr, size));
}

EXPORT void *
reallocarray (void *ptr, size_t nmemb, size_t size)
{
  size_t total;
  if (__builtin_mul_overflow (nmemb, size, &total))
    {
      errno = ENOMEM;
      return NULL;
    }
  return SITE_CALL (realloc (ptr, total));
}

/* memalign and aligned_alloc take any alignment, as the C library's do: one
   that is not a power of two is rounded up to the next (0 and 1 mean the
   usual 16 bytes); only one that cannot be rounded (above SIZE_MAX / 2 + 1)
   fails, with EINVAL.  mmemalign itself refuses what is not a power of two.  */
static void *
aligned (size_t alignment, size_t size)
{
  if (alignment > SIZE_MAX / 2 + 1)
    {
      errno = EINVAL;
      return NULL;
    }
  size_t a = 1;
  while (a < alignment)
    a <<= 1;
  return mmemalign (NULL, a, size);
}

EXPORT void *
memalign (size_t alignment, size_t size)
{
  return SITE_CALL (aligned (alignment, size));
}

EXPORT void *
aligned_alloc (size_t alignment, size_t size)
{
  return SITE_CALL (aligned (alignment, size));
}

/* EINVAL leaves errno alone; ENOMEM is in errno too, as the C library's
   failing allocation leaves it.  */
EXPORT int
posix_memalign (void **out, size_t alignment, size_t size)
{
  if (alignment < sizeof (void *) || (alignment & (alignment - 1)))
    return EINVAL;
  void *p = SITE_CALL (mmemalign (NULL, alignment, size));
  if (!p)
    {
      errno = ENOMEM;
      return ENOMEM;
    }
  *out = p;
  return 0;
}

EXPORT void *
valloc (size_t size)
{
  return SITE_CALL (mvalloc (NULL, size));
}

EXPORT void *
pvalloc (size_t size)
{
  size_t page = mm_os_pagesize ();
  if (size > SIZE_MAX - page)
    {
      errno = ENOMEM;
      return NULL;
    }
  size = (size + page - 1) & ~(page - 1);
  return SITE_CALL (mvalloc (NULL, size ? size : page));
}

EXPORT size_t
malloc_usable_size (void *ptr)
{
  return mmalloc_usable_size (NULL, ptr);
}

/* --- Statistics, trimming, options ------------------------------------------

   The C library's mallinfo, mallinfo2, malloc_stats, malloc_info,
   malloc_trim and mallopt, on the default heap: the memory that malloc
   hands out (a heap that the program attaches itself has mmstats).  Its
   figures map onto the C library's this way: the arena (glibc's memory from
   sbrk) is the heap but its large blocks, whose runs of whole pages are
   what glibc would map on their own (hblks, hblkhd); uordblks is the bytes
   of the small blocks, at their size class; fordblks the free slots and
   free runs of pages (ordblks of them); keepcost the free run at the top,
   which malloc_trim gives back.  There are no fast bins (smblks, fsmblks)
   and no high-water mark (usmblks): 0, as glibc's usmblks is.  The figures
   are taken under every lock of the heap and printed after, with none
   held.  */

static void
heapinfo (struct mm_heapinfo *hi)
{
  struct mm_desc *d = mm_desc_of (NULL);
  if (d)
    mm_heapinfo (d, hi);
  else
    memset (hi, 0, sizeof *hi);
}

static struct mallinfo2
info2 (const struct mm_heapinfo *hi)
{
  struct mallinfo2 m;
  memset (&m, 0, sizeof m);
  m.arena = hi->st.bytes_total - hi->large_bytes;
  m.ordblks = hi->st.chunks_free;
  m.hblks = hi->large;
  m.hblkhd = hi->large_bytes;
  m.uordblks = hi->st.bytes_used - hi->large_bytes;
  m.fordblks = hi->st.bytes_free;
  m.keepcost = hi->top_run_bytes;
  return m;
}

EXPORT struct mallinfo2
mallinfo2 (void)
{
  struct mm_heapinfo hi;
  heapinfo (&hi);
  return info2 (&hi);
}

/* mallinfo's fields are int: a figure too large saturates at INT_MAX (the
   GNU C Library's wraps around, which can read as small or negative).  */
static int
saturate (size_t v)
{
  return v > INT_MAX ? INT_MAX : (int) v;
}

EXPORT struct mallinfo
mallinfo (void)
{
  struct mallinfo2 m2 = mallinfo2 ();
  struct mallinfo m;
  m.arena = saturate (m2.arena);
  m.ordblks = saturate (m2.ordblks);
  m.smblks = saturate (m2.smblks);
  m.hblks = saturate (m2.hblks);
  m.hblkhd = saturate (m2.hblkhd);
  m.usmblks = saturate (m2.usmblks);
  m.fsmblks = saturate (m2.fsmblks);
  m.uordblks = saturate (m2.uordblks);
  m.fordblks = saturate (m2.fordblks);
  m.keepcost = saturate (m2.keepcost);
  return m;
}

/* On stderr, in the C library's layout: the heap as its arena 0, then the
   totals with the large blocks; then the large blocks and the address space
   reserved, where glibc prints its high-water marks of mapped memory.  Not
   a cancellation point (glibc's is not either).  */
EXPORT void
malloc_stats (void)
{
  struct mm_heapinfo hi;
  heapinfo (&hi);
  struct mallinfo2 m = info2 (&hi);
  int old;
  pthread_setcancelstate (PTHREAD_CANCEL_DISABLE, &old);
  fprintf (stderr, "Arena 0:\n"
	   "system bytes     = %10zu\n"
	   "in use bytes     = %10zu\n"
	   "Total (incl. mmap):\n"
	   "system bytes     = %10zu\n"
	   "in use bytes     = %10zu\n"
	   "large blocks     = %10zu\n"
	   "large bytes      = %10zu\n"
	   "reserved bytes   = %10zu\n",
	   m.arena, m.uordblks, m.arena + m.hblkhd, m.uordblks + m.hblkhd,
	   m.hblks, m.hblkhd, (size_t) hi.reserved);
  pthread_setcancelstate (old, NULL);
}

/* XML on FP, in the C library's layout: the free blocks by size (the free
   slots of each size class, then the free runs of pages by length), the
   totals, the memory in use by the heap (system, aspace mprotect) and the
   address space it reserved (aspace total).  OPTIONS must be 0, else
   EINVAL, returned with errno left alone, as glibc does.  */
EXPORT int
malloc_info (int options, FILE *fp)
{
  if (options != 0)
    return EINVAL;		/* glibc's answer; it leaves errno alone */
  struct mm_heapinfo hi;
  heapinfo (&hi);
  struct mallinfo2 m = info2 (&hi);
  fputs ("<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n", fp);
  for (unsigned c = 0; c < MM_NCLASSES; c++)
    if (hi.cls_free[c])
      fprintf (fp, "  <size from=\"%u\" to=\"%u\" total=\"%llu\" count=\"%llu\"/>\n",
	       c ? mm_classes[c - 1].size + 1 : 1, mm_classes[c].size,
	       (unsigned long long) hi.cls_free[c] * mm_classes[c].size,
	       (unsigned long long) hi.cls_free[c]);
  for (unsigned b = 0; b < MM_NBINS; b++)
    if (hi.bin_runs[b])
      {
	uint64_t lo, up;
	mm_bin_bounds (b, &lo, &up);
	fprintf (fp, "  <size from=\"%llu\" to=\"%llu\" total=\"%llu\" count=\"%llu\"/>\n",
		 (unsigned long long) lo << MM_PAGE_SHIFT,
		 (unsigned long long) up << MM_PAGE_SHIFT,
		 (unsigned long long) hi.bin_pages[b] << MM_PAGE_SHIFT,
		 (unsigned long long) hi.bin_runs[b]);
      }
  fprintf (fp, "</sizes>\n"
	   "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
	   "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
	   "<system type=\"current\" size=\"%zu\"/>\n"
	   "<aspace type=\"total\" size=\"%zu\"/>\n"
	   "<aspace type=\"mprotect\" size=\"%zu\"/>\n"
	   "</heap>\n"
	   "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
	   "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
	   "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n"
	   "<system type=\"current\" size=\"%zu\"/>\n"
	   "<aspace type=\"total\" size=\"%zu\"/>\n"
	   "<aspace type=\"mprotect\" size=\"%zu\"/>\n"
	   "</malloc>\n",
	   m.ordblks, m.fordblks, m.arena, m.arena, m.arena,
	   m.ordblks, m.fordblks, m.hblks, m.hblkhd, hi.st.bytes_total,
	   (size_t) hi.reserved, hi.st.bytes_total);
  return 0;
}

/* Pages as many as BYTES need; none for 0.  */
static uint64_t
pages_for (size_t bytes)
{
  return bytes / MM_PAGE + (bytes % MM_PAGE != 0);
}

/* Give back to the OS the free pages of the default heap that can be given:
   all of the free run at the top but PAD bytes (at least one page), and
   every free run below (but its first page).  Under mmcheck the quarantine
   is emptied first (its blocks are verified as they leave it), since it
   holds freed memory too.  1 if memory was given back.  */
EXPORT int
malloc_trim (size_t pad)
{
  struct mm_desc *d = mm_desc_of (NULL);
  if (!d || !mm_writable (d))
    return 0;
  mm_quar_flush (d);
  mm_lock (&d->page_lock);
  uint64_t given = mm_pages_trim (d, pages_for (pad));
  mm_unlock (&d->page_lock);
  return given != 0;
}

/* The C library's tuning parameters.  M_TRIM_THRESHOLD and M_TOP_PAD set,
   on the default heap, the size of the free run at the top from which a
   free shrinks the heap and how much of it stays (either negative: never;
   both in whole pages, the first page of the run always stays).
   The others tune machinery mmalloc does not have (fast bins, blocks
   mapped on their own, arenas, its checks and perturbation): accepted for
   valid values, as glibc does, without effect.  M_MXFAST beyond glibc's
   bound is refused: 0.  An unknown parameter is accepted and ignored: 1,
   as glibc's mallopt answers (measured on glibc 2.36).  */
EXPORT int
mallopt (int param, int value)
{
  struct mm_desc *d;
  switch (param)
    {
    case M_MXFAST:
      return value >= 0 && (size_t) value <= 80 * sizeof (size_t) / 4;
    case M_TRIM_THRESHOLD:
    case M_TOP_PAD:
      d = mm_desc_of (NULL);
      if (!d)
	return 0;
      {				/* pages, at least 1 (0 means the default) */
	uint64_t n = value < 0 ? UINT64_MAX : pages_for ((size_t) value);
	mm_lock (&d->page_lock);
	*(param == M_TOP_PAD ? &d->trim_keep : &d->trim_min) = n ? n : 1;
	mm_unlock (&d->page_lock);
	return 1;
      }
    case M_MMAP_THRESHOLD:
    case M_MMAP_MAX:
    case M_CHECK_ACTION:
    case M_PERTURB:
    case M_ARENA_TEST:
    case M_ARENA_MAX:
    default:
      return 1;
    }
}

/* Options from MMALLOC_OPTIONS, a comma-separated list: "check" (mmcheck on
   the default heap), "trace" (mmtrace: MMALLOC_TRACE names the file),
   "decay=MS" (how long freed pages are kept before they go back to the
   system, in milliseconds: 0 gives them back at once; for the default heap
   and every heap attached after), "leaks" (the leak report at exit:
   leaks.c).  Read with secure_getenv, so ignored in
   set-user-ID programs.  */
static void
read_options (void)
{
  const char *o = secure_getenv ("MMALLOC_OPTIONS");
  if (!o)
    return;
  while (*o)
    {
      size_t n = strcspn (o, ",");
      if (n == 5 && !strncmp (o, "check", 5))
	{
	  __atomic_store_n (&mm_sites_want, 1, __ATOMIC_RELAXED);
	  mmcheck (NULL, NULL);
	}
      else if (n == 5 && !strncmp (o, "trace", 5))
	mmtrace ();
      else if (n == 5 && !strncmp (o, "leaks", 5))
	mm_leaks_at_exit ();
      else if (n > 6 && !strncmp (o, "decay=", 6) && o[6] >= '0' && o[6] <= '9')
	{
	  unsigned long ms = 0;
	  for (size_t i = 6; i < n && o[i] >= '0' && o[i] <= '9' && ms < 1000000000; i++)
	    ms = ms * 10 + (unsigned long) (o[i] - '0');
	  __atomic_store_n (&mm_decay_default, (uint64_t) ms, __ATOMIC_RELAXED);
	  (void) mmalloc_setdecay (NULL, (long) ms);
	}
      o += n + (o[n] == ',');
    }
}

__attribute__ ((constructor)) static void
malloc_init (void)
{
  mm_fork_init ();
  read_options ();
}
