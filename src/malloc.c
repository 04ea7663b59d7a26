/* malloc.c -- the process-wide malloc of libmmalloc-malloc.so: the C library's
   allocation interface on mmalloc's default heap (the NULL descriptor).

   Built only into libmmalloc-malloc (with MM_MALLOC_REPLACE); libmmalloc.so
   exports the m* API alone.  Nothing here may allocate, print or call dlsym:
   it runs before and inside everything else, including ld.so's callers and
   pthread start-up.  Errors follow C and POSIX: NULL with errno ENOMEM, and
   posix_memalign's return codes.  fork: see fork.c.  */

#include "mmprivate.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__ ((visibility ("default")))

void cfree (void *ptr);		/* old glibc: gone from its headers */

EXPORT void *
malloc (size_t size)
{
  return mmalloc (NULL, size);
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
  return mcalloc (NULL, nmemb, size);
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
  return mrealloc (NULL, ptr, size);
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
  return realloc (ptr, total);
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
  return aligned (alignment, size);
}

EXPORT void *
aligned_alloc (size_t alignment, size_t size)
{
  return aligned (alignment, size);
}

/* EINVAL leaves errno alone; ENOMEM is in errno too, as the C library's
   failing allocation leaves it.  */
EXPORT int
posix_memalign (void **out, size_t alignment, size_t size)
{
  if (alignment < sizeof (void *) || (alignment & (alignment - 1)))
    return EINVAL;
  void *p = mmemalign (NULL, alignment, size);
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
  return mvalloc (NULL, size);
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
  return mvalloc (NULL, size ? size : page);
}

EXPORT size_t
malloc_usable_size (void *ptr)
{
  return mmalloc_usable_size (NULL, ptr);
}

/* Options from MMALLOC_OPTIONS, a comma-separated list: "check" (mmcheck on
   the default heap), "trace" (mmtrace: MMALLOC_TRACE names the file).  Read
   with secure_getenv, so ignored in set-user-ID programs.  */
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
	mmcheck (NULL, NULL);
      else if (n == 5 && !strncmp (o, "trace", 5))
	mmtrace ();
      o += n + (o[n] == ',');
    }
}

__attribute__ ((constructor)) static void
malloc_init (void)
{
  pthread_atfork (mm_fork_prepare, mm_fork_parent, mm_fork_child);
  read_options ();
}
