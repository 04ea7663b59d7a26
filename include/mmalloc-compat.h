/* mmalloc-compat.h -- route the C library's allocation calls to mmalloc's
   default heap (the NULL descriptor), as the original README describes.

   Include it after the system headers and before code that calls malloc and
   friends.  Only calls written in the including file are routed: libraries
   keep calling the C library's malloc, so never free here what a library
   allocated there, or the reverse.  For the whole process use a malloc
   replacement instead.  */

#ifndef MMALLOC_COMPAT_H
#define MMALLOC_COMPAT_H 1

/* Declare the originals first, so that these macros cannot mangle them.  */
#include <stdlib.h>
#if defined(__has_include)
#if __has_include(<malloc.h>)
#include <malloc.h>
#endif
#endif

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "mmalloc.h"

#undef malloc
#undef realloc
#undef calloc
#undef free
#undef valloc
#undef memalign
#undef aligned_alloc
#undef posix_memalign
#undef reallocarray
#undef pvalloc
#undef malloc_usable_size

#define malloc(size) mmalloc ((void *) 0, (size))
#define realloc(ptr, size) mrealloc ((void *) 0, (ptr), (size))
#define calloc(nmemb, size) mcalloc ((void *) 0, (nmemb), (size))
#define free(ptr) mfree ((void *) 0, (ptr))
#define valloc(size) mvalloc ((void *) 0, (size))
#define memalign(alignment, size) mmemalign ((void *) 0, (alignment), (size))
#define aligned_alloc(alignment, size) mmemalign ((void *) 0, (alignment), (size))
#define posix_memalign(out, alignment, size) \
  mmalloc_compat_posix_memalign ((out), (alignment), (size))
#define reallocarray(ptr, nmemb, size) mmalloc_compat_reallocarray ((ptr), (nmemb), (size))
#define pvalloc(size) mmalloc_compat_pvalloc (size)
#define malloc_usable_size(ptr) mmalloc_usable_size ((void *) 0, (ptr))

/* The routed functions that are more than one call.  Every function that
   hands out a block is routed, since free is: a block of the C library's
   malloc given to mfree is reported and aborts.  */

/* POSIX: EINVAL for an ALIGNMENT that is no power of two times
   sizeof (void *); *OUT set only on success.  */
static inline int
mmalloc_compat_posix_memalign (void **out, size_t alignment, size_t size)
{
  void *p;
  if (alignment < sizeof (void *) || (alignment & (alignment - 1)) != 0)
    return EINVAL;
  p = mmemalign ((void *) 0, alignment, size);
  if (!p)
    return errno;
  *out = p;
  return 0;
}

/* mrealloc of NMEMB * SIZE bytes; NULL with ENOMEM (PTR kept) when the
   product overflows.  */
static inline void *
mmalloc_compat_reallocarray (void *ptr, size_t nmemb, size_t size)
{
  if (size != 0 && nmemb > SIZE_MAX / size)
    {
      errno = ENOMEM;
      return (void *) 0;
    }
  return mrealloc ((void *) 0, ptr, nmemb * size);
}

/* SIZE rounded up to whole pages (one page for 0), page aligned.  */
static inline void *
mmalloc_compat_pvalloc (size_t size)
{
  size_t page = (size_t) sysconf (_SC_PAGESIZE);
  if (size > SIZE_MAX - page)
    {
      errno = ENOMEM;
      return (void *) 0;
    }
  size = size ? (size + page - 1) / page * page : page;
  return mvalloc ((void *) 0, size);
}

#endif /* MMALLOC_COMPAT_H */
