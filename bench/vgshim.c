/* vgshim.c -- LD_PRELOAD shim for the callgrind runs only (fastpath).

   An mmalloc heap reserves 128 GiB of address space; under valgrind a
   reservation that large fails with EINVAL (valgrind's address-space
   manager gives a client less than that), while mmalloc halves its
   reservation only on ENOMEM.  This shim turns EINVAL from a large
   PROT_NONE reservation into ENOMEM, so that the heap attaches with a
   smaller span, as it would under RLIMIT_AS.  It is called only when a
   heap is attached, never in the counted loop, and the count of the 0-pair
   run cancels it out.  */

#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/types.h>

typedef void *(*mmap_fn) (void *, size_t, int, int, int, off_t);

void *mmap (void *addr, size_t len, int prot, int flags, int fd, off_t off);

void *
mmap (void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
  static mmap_fn real;
  if (!real)
    real = (mmap_fn) dlsym (RTLD_NEXT, "mmap");
  void *p = real (addr, len, prot, flags, fd, off);
  if (p == MAP_FAILED && errno == EINVAL && prot == PROT_NONE
      && len >= ((size_t) 1 << 30))
    errno = ENOMEM;
  return p;
}
