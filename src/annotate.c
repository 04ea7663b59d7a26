/* annotate.c -- blocks made visible to valgrind's memcheck and to
   AddressSanitizer.

   Under memcheck a block is malloc-like from the moment it is handed out to
   the moment it is freed (or its heap detached), and the rest of its slot
   or pages is inaccessible, so memcheck reports reads and writes outside
   the requested size, uses after a free, and leaks, as for malloc.
   The client requests come from valgrind's own header when the build finds
   it (__has_include) and MM_NO_VALGRIND is not defined; without it the
   hooks below do nothing for memcheck.
   A client request is a short sequence of instructions that does nothing
   outside valgrind.

   Under AddressSanitizer (the process has its runtime, whether or not the
   library was built with it: weak references, NULL without the runtime) the
   bytes of a slot or of a large block's pages that are not the requested
   size are poisoned, and the whole block once freed: an overrun and a use
   after free are reported as "use-after-poison".  The runtime does not see
   the blocks as heap blocks, so LeakSanitizer does not report them
   (mmalloc_garbage does).

   Both tools need the library's own metadata accessible: pages taken out of
   free runs (carve, pages.c) and run headers (bin_insert) are made so
   before the library writes them, whatever was there before.  Blocks of
   checked heaps are left alone: mmcheck's own guards and poison cover them,
   and the library reads them after they are freed.

   MMALLOC_ANNOTATE=0 in the environment turns all this off (the library's
   own tests, built with ASan, see its ordinary paths).

   When neither tool is present the hooks are never called: mm_an_init sets
   MM_SLOW_ANNOTATE in mm_trace_on, which sends every allocation and free to
   the locked paths, as tracing does, and the lock-free paths cost nothing
   more.  */

#include "mmprivate.h"

#include <stdlib.h>
#include <string.h>

#if defined __has_include && !defined MM_NO_VALGRIND
# if __has_include(<valgrind/memcheck.h>)
#  include <valgrind/memcheck.h>
#  define MM_HAVE_MEMCHECK 1
# endif
#endif

#ifndef MM_HAVE_MEMCHECK
/* No valgrind header: each request does nothing and answers 0.  */
static inline long
no_request (const volatile void *p, size_t n)
{
  (void) p;
  (void) n;
  return 0;
}
# define RUNNING_ON_VALGRIND 0
# define VALGRIND_MALLOCLIKE_BLOCK(p, n, rz, zeroed) \
  no_request (p, (size_t) (n) + (size_t) (rz) + (size_t) (zeroed))
# define VALGRIND_FREELIKE_BLOCK(p, rz) no_request (p, (size_t) (rz))
# define VALGRIND_MAKE_MEM_NOACCESS(p, n) no_request (p, n)
# define VALGRIND_MAKE_MEM_DEFINED(p, n) no_request (p, n)
# define VALGRIND_CHECK_MEM_IS_ADDRESSABLE(p, n) no_request (p, n)
# define VALGRIND_DISABLE_ERROR_REPORTING ((void) 0)
# define VALGRIND_ENABLE_ERROR_REPORTING ((void) 0)
#endif

/* AddressSanitizer's interface, present when its runtime is loaded.  */
extern void __asan_poison_memory_region (void const volatile *, size_t)
  __attribute__ ((weak));
extern void __asan_unpoison_memory_region (void const volatile *, size_t)
  __attribute__ ((weak));
extern void *__asan_region_is_poisoned (void *, size_t) __attribute__ ((weak));

static int memcheck, asan;

/* Decide once, before the first heap exists, whether blocks are annotated.  */
void
mm_an_init (void)
{
  static int done;
  if (__atomic_load_n (&done, __ATOMIC_ACQUIRE))
    return;
  const char *off = secure_getenv ("MMALLOC_ANNOTATE");
  if (!off || strcmp (off, "0") != 0)
    {
      /* Memcheck answers its requests with -1, valgrind's other tools
	 (callgrind counting the fast paths, say) with 0: not annotated.  */
      char probe = 0;
      memcheck = RUNNING_ON_VALGRIND != 0
	&& (long) VALGRIND_MAKE_MEM_DEFINED (&probe, 1) == -1;
      asan = __asan_poison_memory_region != NULL && __asan_unpoison_memory_region != NULL;
    }
  if (memcheck || asan)
    __atomic_or_fetch (&mm_trace_on, MM_SLOW_ANNOTATE, __ATOMIC_SEQ_CST);
  __atomic_store_n (&done, 1, __ATOMIC_RELEASE);
}

static void
poison (const void *p, size_t n, int on)
{
  if (!asan || !n)
    return;
  if (on)
    __asan_poison_memory_region (p, n);
  else
    __asan_unpoison_memory_region (p, n);
}

/* SIZE bytes at P handed out, of a slot or block of ROOM bytes.  */
void
mm_an_alloc (void *p, size_t size, size_t room)
{
  if (memcheck)
    {
      VALGRIND_MAKE_MEM_NOACCESS ((char *) p + size, room - size);
      VALGRIND_MALLOCLIKE_BLOCK (p, size, 0, 0);
    }
  poison (p, size, 0);
  poison ((char *) p + size, room - size, 1);
}

/* The block at P, of ROOM bytes, freed.  A block handed out before the heap
   was attached this time (a heap file's) is unknown to memcheck: it is kept
   from reporting its free, and the block is made inaccessible.  */
void
mm_an_free (void *p, size_t room)
{
  if (memcheck)
    {
      VALGRIND_DISABLE_ERROR_REPORTING;
      VALGRIND_FREELIKE_BLOCK (p, 0);
      VALGRIND_ENABLE_ERROR_REPORTING;
      VALGRIND_MAKE_MEM_NOACCESS (p, room);
    }
  poison (p, room, 1);
}

/* The block at P leaves memcheck's view without being freed: its heap is
   detached, the block stays in the heap file.  */
void
mm_an_forget (void *p)
{
  if (memcheck)
    {
      VALGRIND_DISABLE_ERROR_REPORTING;
      VALGRIND_FREELIKE_BLOCK (p, 0);
      VALGRIND_ENABLE_ERROR_REPORTING;
    }
}

/* N bytes at P become the library's: a slab, a run's header, a page-map
   leaf, pages about to be handed out.  */
void
mm_an_meta (void *p, size_t n)
{
  if (memcheck)
    VALGRIND_MAKE_MEM_DEFINED (p, n);
  poison (p, n, 0);
}

/* N bytes at P hold no block (the slots of a new slab).  */
void
mm_an_unused (void *p, size_t n)
{
  if (memcheck)
    VALGRIND_MAKE_MEM_NOACCESS (p, n);
  poison (p, n, 1);
}

/* The HELD bytes mapped at BASE, a heap's, are unmapped.  */
void
mm_an_gone (const void *base, size_t held)
{
  poison (base, held, 0);
}

/* The library reads blocks' contents (the garbage detector's scan): ON,
   memcheck is told not to report it; off again after.  */
void
mm_an_quiet (int on)
{
  if (!memcheck)
    return;
  if (on)
    VALGRIND_DISABLE_ERROR_REPORTING;
  else
    VALGRIND_ENABLE_ERROR_REPORTING;
}

/* How many of the ROOM bytes at P were handed out (up to the first byte the
   tools keep from the program): what realloc copies.  ROOM without tools.  */
size_t
mm_an_size (const void *p, size_t room)
{
  if (memcheck)
    {
      VALGRIND_DISABLE_ERROR_REPORTING;
      uintptr_t bad = (uintptr_t) VALGRIND_CHECK_MEM_IS_ADDRESSABLE (p, room);
      VALGRIND_ENABLE_ERROR_REPORTING;
      if (bad)
	return (size_t) (bad - (uintptr_t) p);
    }
  if (asan && __asan_region_is_poisoned)
    {
      void *bad = __asan_region_is_poisoned ((void *) (uintptr_t) p, room);
      if (bad)
	return (size_t) ((char *) bad - (const char *) p);
    }
  return room;
}
