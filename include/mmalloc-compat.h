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

#include "mmalloc.h"

#undef malloc
#undef realloc
#undef calloc
#undef free
#undef valloc
#undef memalign

#define malloc(size) mmalloc ((void *) 0, (size))
#define realloc(ptr, size) mrealloc ((void *) 0, (ptr), (size))
#define calloc(nmemb, size) mcalloc ((void *) 0, (nmemb), (size))
#define free(ptr) mfree ((void *) 0, (ptr))
#define valloc(size) mvalloc ((void *) 0, (size))
#define memalign(alignment, size) mmemalign ((void *) 0, (alignment), (size))

#endif /* MMALLOC_COMPAT_H */
