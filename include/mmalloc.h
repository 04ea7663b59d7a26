/* mmalloc.h -- the public interface of mmalloc, a mapped-memory allocator.

   A heap lives entirely inside one mapped region: private anonymous memory, or a
   file that a later process maps again at the same address.  Every function takes
   a heap descriptor MD as returned by mmalloc_attach; MD == NULL names the default
   heap, an anonymous heap created on first use.

   Errors: a failing call returns NULL (or -1, or 0 where so documented), sets
   errno, and remembers the code for mmalloc_errno (MD).  Codes are the usual
   errno values plus the MMALLOC_E* codes below; mmalloc_strerror names them all.
   Misuse (a bad or twice freed pointer, an overrun seen under mmcheck) writes one
   line to stderr and calls the heap's abort function (default: abort).

   Descriptors: MD is a handle, not an address (not the heap's base address,
   as in GNU mmalloc).  Every function checks it against the library's table
   before reading anything through it.  A value that is not the descriptor
   of an attached heap (never one, or its heap detached since: no attach
   returns the same descriptor twice) is refused: one line on stderr, and
   the call fails with errno MMALLOC_EBADDESC (mfree, which has no error to
   return, calls abort), touching no heap.  */

#ifndef MMALLOC_H
#define MMALLOC_H 1

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What the compiler may know of the allocating functions, where it supports
   it: that a block aliases nothing (malloc), how big it is (alloc_size) and
   how aligned (alloc_align), and that dropping the result is a bug.  So the
   bounds checks of -Warray-bounds, -Wstringop-overflow and _FORTIFY_SOURCE
   see mmalloc's blocks as they see malloc's.  No deallocator is named
   (malloc (mfree, 2)): with libmmalloc-malloc, free and mfree (NULL, ...)
   take each other's blocks.  Define MMALLOC_NO_ATTRIBUTES to leave them
   all out.  */
#if defined __has_attribute && !defined MMALLOC_NO_ATTRIBUTES
# if __has_attribute (__malloc__)
#  define MMALLOC_ATTR_MALLOC __attribute__ ((__malloc__))
# endif
# if __has_attribute (__alloc_size__)
#  define MMALLOC_ATTR_SIZE(args) __attribute__ ((__alloc_size__ args))
# endif
# if __has_attribute (__alloc_align__)
#  define MMALLOC_ATTR_ALIGN(arg) __attribute__ ((__alloc_align__ (arg)))
# endif
# if __has_attribute (__warn_unused_result__)
#  define MMALLOC_ATTR_WUR __attribute__ ((__warn_unused_result__))
# endif
#endif
#ifndef MMALLOC_ATTR_MALLOC
# define MMALLOC_ATTR_MALLOC
#endif
#ifndef MMALLOC_ATTR_SIZE
# define MMALLOC_ATTR_SIZE(args)
#endif
#ifndef MMALLOC_ATTR_ALIGN
# define MMALLOC_ATTR_ALIGN(arg)
#endif
#ifndef MMALLOC_ATTR_WUR
# define MMALLOC_ATTR_WUR
#endif

/* Library version (the heap file format has its own version, see the manual).  */
#define MMALLOC_VERSION_MAJOR 1
#define MMALLOC_VERSION_MINOR 0
#define MMALLOC_VERSION_PATCH 0
#define MMALLOC_VERSION_STRING "1.0.0"
#define MMALLOC_VERSION \
  (MMALLOC_VERSION_MAJOR * 10000 + MMALLOC_VERSION_MINOR * 100 + MMALLOC_VERSION_PATCH)

/* Number of root keys a heap keeps (0 .. MMALLOC_KEYS - 1).  */
#define MMALLOC_KEYS 16

/* Error codes of mmalloc's own, beyond the system's errno values.  */
#define MMALLOC_ENOTHEAP   0x4d4d01 /* the file is not an mmalloc heap */
#define MMALLOC_EVERSION   0x4d4d02 /* heap file of an unknown format version */
#define MMALLOC_EMACHINE   0x4d4d03 /* heap file from another kind of machine */
#define MMALLOC_ECORRUPT   0x4d4d04 /* heap file is damaged */
#define MMALLOC_ETRUNCATED 0x4d4d05 /* heap file is shorter than its header says */
#define MMALLOC_EADDRINUSE 0x4d4d06 /* the heap's address range is taken */
#define MMALLOC_ELOCKED    0x4d4d07 /* attached by another writer (or, for a
                                       writer, by readers), or already
                                       attached in this process */
#define MMALLOC_EBADDESC   0x4d4d08 /* not the descriptor of an attached heap
                                       (never one, or detached since) */

/* Statistics of one heap; see mmstats.  All figures in bytes or blocks.  */
struct mstats
{
  size_t bytes_total;		/* bytes of the region in use: data, free space, metadata */
  size_t chunks_used;		/* number of allocated blocks */
  size_t bytes_used;		/* bytes in allocated blocks, at their usable size */
  size_t chunks_free;		/* number of free blocks: free slots and free page runs */
  size_t bytes_free;		/* bytes in those free blocks */
};

/* --- Heaps ---------------------------------------------------------------- */

/* Attach a heap.  FD < 0: a new private anonymous heap.  FD an empty file: a new
   heap file, at BASEADDR if not NULL, else at an address chosen so that later
   processes can map it again.  FD an existing heap file: map it at its recorded
   address (BASEADDR is ignored).  A read-only FD attaches read-only.  The library
   opens its own descriptor of the file.  A heap file that was not detached
   (its process died) is repaired by a read-write attach.  Returns the
   descriptor, or NULL with errno: EBADF; EINVAL (BASEADDR not page aligned, or
   FD not a regular file); EACCES (FD write-only); EROFS (FD read-only and the
   file empty); ENOMEM, EINVAL (no address range could be reserved); ENOSPC,
   EDQUOT, EFBIG, EIO (the file could not be grown or repaired); EMFILE, ENFILE; MMALLOC_ENOTHEAP, MMALLOC_EVERSION, MMALLOC_EMACHINE,
   MMALLOC_ECORRUPT, MMALLOC_ETRUNCATED, MMALLOC_EADDRINUSE, MMALLOC_ELOCKED.  */
void *mmalloc_attach (int fd, void *baseaddr) MMALLOC_ATTR_WUR;

/* Flags of mmalloc_attach_flags.  */
#define MMALLOC_INSPECT 1	/* a private, read-only view of a heap file */

/* As mmalloc_attach when FLAGS is 0.  With MMALLOC_INSPECT, FD must be a heap
   file open for reading: the heap is attached read-only as a private view,
   and the file is never written, not a byte, whatever the process does: no
   lock is taken (a writer may hold the file meanwhile, and is not stopped by
   the view), the file's state is not changed, and a file that was not
   detached is recovered in the view alone.  FD is not kept.  Errors as for
   mmalloc_attach, and EINVAL for an unknown flag; MMALLOC_ENOTHEAP for an
   empty file; MMALLOC_EADDRINUSE if this process has the file attached.  */
void *mmalloc_attach_flags (int fd, void *baseaddr, int flags) MMALLOC_ATTR_WUR;

/* Detach MD: mark it clean, unmap it, close the library's descriptor.  Returns
   NULL on success, MD on failure (errno set: MMALLOC_EBADDESC when MD is not
   an attached heap's, as on a second detach).  MD is refused from then on.
   The default heap (NULL) cannot be detached: the call returns NULL and does
   nothing.  */
void *mmalloc_detach (void *md);

/* Suggest a base address for a new heap file: a range of the heap's whole
   span (128 GiB on 64-bit machines, or SIZE bytes if larger) that is free now.
   NULL (errno EINVAL or ENOMEM) if none.  */
void *mmalloc_findbase (int size);

/* Store KEY as root key KEYNUM of MD.  Returns 1, or 0 when KEYNUM is outside
   0 .. MMALLOC_KEYS - 1 (EINVAL) or the heap is read-only (EROFS).  */
int mmalloc_setkey (void *md, int keynum, void *key);

/* Root key KEYNUM of MD, or NULL (also for KEYNUM out of range).  */
void *mmalloc_getkey (void *md, int keynum);

/* The error code of the last failed call on MD, or 0 if none failed;
   MMALLOC_EBADDESC if MD is refused.  */
int mmalloc_errno (void *md);

/* Write the heap's changed pages to its file and wait for the disk.  Returns 0
   (also for anonymous heaps), or -1 with errno (EIO, ENOSPC...).  */
int mmalloc_sync (void *md);

/* Give the heap's free pages back to the system now (and a file's disk
   blocks): all but PAD bytes of the free run at the top, and every other free
   run but its first page.  1 if memory was given back, 0 if none could be;
   -1 (mmalloc_errno: MMALLOC_EBADDESC) if MD is refused.  */
int mmalloc_trim (void *md, size_t pad);

/* Keep the pages of freed memory for MS milliseconds before giving them back
   to the system (the default is 250; 0 gives them back as they are freed).
   0, or -1 with errno EINVAL for a negative MS, or a refused MD.  */
int mmalloc_setdecay (void *md, long ms);

/* --- Allocation ----------------------------------------------------------- */

/* SIZE bytes aligned to max_align_t; SIZE 0 gives a unique pointer.  NULL with
   ENOMEM when SIZE cannot be had; EROFS on a read-only heap; ENOSPC, EDQUOT or
   EIO when a heap file cannot get disk blocks; MMALLOC_ECORRUPT once damaged
   metadata was found in the heap.  */
void *mmalloc (void *md, size_t size)
  MMALLOC_ATTR_MALLOC MMALLOC_ATTR_SIZE ((2)) MMALLOC_ATTR_WUR;

/* Resize PTR to SIZE bytes, keeping min(old, new) bytes of contents.  PTR NULL
   acts as mmalloc; SIZE 0 leaves a minimal block, as mmalloc (MD, 0) gives.  On
   failure NULL with mmalloc's errors and PTR is untouched; EINVAL when PTR was
   reported as a bad pointer and the abort function returned, MMALLOC_ECORRUPT
   when looking it up found the heap damaged.  */
void *mrealloc (void *md, void *ptr, size_t size) MMALLOC_ATTR_SIZE ((3)) MMALLOC_ATTR_WUR;

/* NMEMB * SIZE zeroed bytes; NULL with ENOMEM when the product overflows.  */
void *mcalloc (void *md, size_t nmemb, size_t size)
  MMALLOC_ATTR_MALLOC MMALLOC_ATTR_SIZE ((2, 3)) MMALLOC_ATTR_WUR;

/* Free PTR; NULL does nothing.  A pointer MD did not hand out, or one already
   freed, is reported and the abort function runs; a refused MD is reported
   and abort runs.  */
void mfree (void *md, void *ptr);

/* SIZE bytes aligned to the system page size.  */
void *mvalloc (void *md, size_t size)
  MMALLOC_ATTR_MALLOC MMALLOC_ATTR_SIZE ((2)) MMALLOC_ATTR_WUR;

/* SIZE bytes aligned to ALIGNMENT, a power of two (any, up to at least 1 GiB).
   NULL with EINVAL for another ALIGNMENT, ENOMEM when it cannot be had.  */
void *mmemalign (void *md, size_t alignment, size_t size)
  MMALLOC_ATTR_MALLOC MMALLOC_ATTR_ALIGN (2) MMALLOC_ATTR_SIZE ((3)) MMALLOC_ATTR_WUR;

/* Bytes usable at PTR (0 for NULL).  For a checked block, exactly the size
   asked for (blocks aligned above 16 bytes, and blocks made before
   mmcheckf (force), are not checked).  */
size_t mmalloc_usable_size (void *md, void *ptr);

/* --- Checking, statistics, tracing ----------------------------------------- */

/* Turn on checking of MD: guard bytes after every block, headers, and free-time
   verification.  ABORTFUNC (NULL: abort) is called after a problem is reported.
   Returns 1 on success: before the heap's first allocation, or at any time on a
   heap already checked (then only ABORTFUNC changes).  Else 0 with EBUSY (the
   heap is in use), or EROFS.  */
int mmcheck (void *md, void (*abortfunc) (void));

/* As mmcheck; with FORCE non-zero also on a heap already in use (blocks that
   exist stay unchecked).  */
int mmcheckf (void *md, void (*abortfunc) (void), int force);

/* Walk the whole heap and verify its metadata and every checked block.  Returns
   0 when consistent, else the number of problems found (reported on stderr).  */
int mmalloc_check (void *md);

/* --- Walking the heap, finding lost blocks -------------------------------- */

/* Called with each block: its pointer (as mmalloc returned it) and usable
   size (mmalloc_usable_size's figure).  A nonzero return stops the walk.  */
typedef int (*mmalloc_visit_fn) (void *ptr, size_t size, void *arg);

/* Call VISIT (PTR, SIZE, ARG) for every allocated block of MD, small and
   large, in address order (blocks freed under mmcheck and kept in its
   quarantine are not allocated).  VISIT runs with no lock held and may
   allocate and free, in MD too.  While other threads allocate and free, a
   block allocated during the whole walk is visited exactly once; one
   allocated or freed during the walk may be visited or not, and never twice.
   Read-only heaps are walked too.  Returns 0 when every block was visited,
   VISIT's nonzero return if it stopped the walk, or -1 with errno (and
   mmalloc_errno): EINVAL (VISIT is NULL), MMALLOC_ECORRUPT (damaged metadata
   met: the walk stops there, after visiting the blocks before it; it is
   reported once on stderr), MMALLOC_ELOCKED (a fork child's view of its
   parent's heap file), MMALLOC_EBADDESC (MD refused, or detached during the
   walk).  */
int mmalloc_walk (void *md, mmalloc_visit_fn visit, void *arg);

/* Flags of mmalloc_garbage.  */
#define MMALLOC_GARBAGE_NEW      1  /* evolution: skip blocks reported by an
                                       earlier call on this attachment */
#define MMALLOC_GARBAGE_PROCESS  2  /* roots: the whole process, not only
                                       the keys */
#define MMALLOC_GARBAGE_RECLAIM  4  /* free the unreachable blocks after
                                       reporting them */

/* The blocks of MD that no root reaches, found by conservative marking: a
   word of a root or of a reached block that points to a block's start or
   inside it reaches it; unreachable cycles are garbage.  Roots: MD's 16
   keys; with MMALLOC_GARBAGE_PROCESS also every writable mapping of the
   process that is no heap (data, bss, stacks from their threads' stack
   pointers, TLS, other allocators' memory), the registers of every thread
   (the others are stopped by a signal, SIGPWR, during the marking), and the
   keys and reachable blocks of every other attached heap.  REPORT (NULL:
   count only) is called with each garbage block after the marking, with no
   lock of the heap held; it must not call mmalloc_garbage.  With
   MMALLOC_GARBAGE_RECLAIM each reported block is then freed (mfree).
   Returns the number of blocks reported, or (size_t) -1 with errno and
   mmalloc_errno: EINVAL (unknown flag), EROFS (RECLAIM on a read-only
   heap), ENOMEM (no memory for the mark tables: about 0.9% of each heap
   marked), EAGAIN (RECLAIM with PROCESS, and a thread did not stop:
   it blocks the signal), MMALLOC_ECORRUPT (damaged metadata in a heap
   marked; reported once on stderr), MMALLOC_ELOCKED, MMALLOC_EBADDESC.  */
size_t mmalloc_garbage (void *md, int flags, mmalloc_visit_fn report, void *arg);

/* Where the block PTR of MD was allocated: the address of the code that
   called mmalloc, mcalloc, mrealloc, mmemalign, mvalloc (or malloc, calloc,
   realloc... of the drop-in), or NULL if the block records none.  Blocks
   record their site when MD is under mmcheck (MMALLOC_OPTIONS=check for the
   drop-in), except blocks aligned beyond 16 bytes and those of files made
   by a library of format 2.  The address is one of the process that
   allocated the block (dladdr names it there).  Takes no lock: it may be
   called from the visit function of mmalloc_walk and the report function
   of mmalloc_garbage.  NULL too for a pointer that is not a block's.  */
void *mmalloc_block_site (void *md, const void *ptr);

/* Statistics of MD; see struct mstats and the manual for the exact meaning.  */
struct mstats mmstats (void *md);

/* If the environment variable MMALLOC_TRACE names a file, trace every
   allocation (mmalloc, mcalloc, mvalloc, mmemalign), mfree and mrealloc of
   every heap to it.  Returns 1 if tracing is on, else 0.  */
int mmtrace (void);

/* --- Versions and errors --------------------------------------------------- */

/* The library version as "MAJOR.MINOR.PATCH".  */
const char *mmalloc_version (void);

/* A constant string describing error code ERR (errno or MMALLOC_E*);
   "Unknown error" for a code nobody knows.  It stays valid and unchanged
   for the life of the process (strerror's text of an unknown code does not).  */
const char *mmalloc_strerror (int err);

#ifdef __cplusplus
}
#endif

#endif /* MMALLOC_H */
