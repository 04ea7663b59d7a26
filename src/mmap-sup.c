/* mmap-sup.c -- the OS layer: the only file that calls mmap, munmap, mprotect,
   mremap, madvise, posix_fallocate, ftruncate, flock, msync, fsync and
   membarrier.

   Each wrapper returns 0 or an errno value and never touches errno's meaning for
   its caller.  The calls that reserve, map, move, commit, discard or allocate
   memory, grow, cut, punch or sync a file, or lock it, go through os_step ()
   first, so a test can make the Nth of them fail (mm_os_fail_at) and see
   that each caller copes.
   The others do not count as steps: mm_os_pagesize and mm_os_now_ms (which
   cannot fail), mm_os_unmap and mm_os_close (whose callers give back and
   cannot do anything about a failure), mm_os_write_stderr (reports), and the
   checks and reads of a file made before anything is mapped (mm_os_readable,
   mm_os_file_size, mm_os_dup, mm_os_read), whose failures tests make with
   real files instead.  */

#include "mmprivate.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/membarrier.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef MM_KILLPOINTS
#include <signal.h>
long mm_kp_left;
void (*mm_kp_hold) (void);

void
mm_kp_hit (void)
{
  if (mm_kp_hold)
    mm_kp_hold ();
  else
    kill (getpid (), SIGKILL);
}
#endif

static long fail_countdown;	/* > 0: calls left before the injected failure */
static int fail_err;

void
mm_os_fail_at (long n, int err)
{
  __atomic_store_n (&fail_err, err, __ATOMIC_RELAXED);
  __atomic_store_n (&fail_countdown, n, __ATOMIC_RELEASE);
}

/* 0, or the injected error when this is the armed call.  */
static int
os_step (void)
{
  if (MM_LIKELY (__atomic_load_n (&fail_countdown, __ATOMIC_ACQUIRE) <= 0))
    return 0;
  if (__atomic_sub_fetch (&fail_countdown, 1, __ATOMIC_ACQ_REL) == 0)
    return __atomic_load_n (&fail_err, __ATOMIC_RELAXED);
  return 0;
}

size_t
mm_os_pagesize (void)
{
  long p = sysconf (_SC_PAGESIZE);
  return p > 0 ? (size_t) p : MM_PAGE;
}

/* Reserve LEN bytes of address space, inaccessible and uncommitted.  With EXACT,
   only at WANT and never over an existing mapping (EEXIST if taken).

   An exact place is asked for as a hint, and what the kernel gives is
   checked: the kernel takes a hint whenever the whole range is free.
   MAP_FIXED_NOREPLACE would say the same on Linux 4.17 and later, but the
   mmap interceptors of ThreadSanitizer and MemorySanitizer drop a hint that
   lies outside their application ranges and keep the flag, which then maps
   at address 0 (or fails with EPERM); a plain hint they drop is merely not
   taken.  */
int
mm_os_reserve (void *want, size_t len, int exact, void **out)
{
  int err = os_step ();
  if (err)
    return err;
  void *p = mmap (want, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return errno;
  if (exact && p != want)
    {
      munmap (p, len);
      return EEXIST;
    }
  *out = p;
  return 0;
}

int
mm_os_unmap (void *addr, size_t len)
{
  return munmap (addr, len) ? errno : 0;
}

/* Make reserved anonymous memory usable.  */
int
mm_os_commit (void *addr, size_t len)
{
  int err = os_step ();
  if (err)
    return err;
  return mprotect (addr, len, PROT_READ | PROT_WRITE) ? errno : 0;
}

/* Return memory to the reservation: inaccessible, its pages dropped.  Only ever
   applied to a range the caller reserved.  */
int
mm_os_decommit (void *addr, size_t len)
{
  int err = os_step ();
  if (err)
    return err;
  void *p = mmap (addr, len, PROT_NONE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  return p == MAP_FAILED ? errno : 0;
}

/* Drop the pages of private anonymous memory; they read back as zeros.  */
int
mm_os_discard (void *addr, size_t len)
{
  int err = os_step ();
  if (err)
    return err;
  return madvise (addr, len, MADV_DONTNEED) ? errno : 0;
}

/* Move the pages of LEN bytes of private anonymous memory at FROM to TO
   (both inside a reservation the caller owns, not overlapping) without
   copying them: TO's pages are replaced, FROM stays mapped and reads zero.
   A kernel without MREMAP_DONTUNMAP (before 5.7) says EINVAL; the caller
   then copies.  */
int
mm_os_move (void *from, void *to, size_t len)
{
  int err = os_step ();
  if (err)
    return err;
#ifdef MREMAP_DONTUNMAP
  void *p = mremap (from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, to);
  if (p == MAP_FAILED)
    return errno;
  return p == to ? 0 : EINVAL;	/* FIXED: never elsewhere */
#else
  (void) from, (void) to, (void) len;
  return EINVAL;
#endif
}

/* Map LEN bytes of FD at OFF onto ADDR, inside a reservation the caller owns.  */
int
mm_os_map_file (void *addr, size_t len, int fd, uint64_t off, int rdonly)
{
  int err = os_step ();
  if (err)
    return err;
  int prot = rdonly ? PROT_READ : PROT_READ | PROT_WRITE;
  void *p = mmap (addr, len, prot, MAP_SHARED | MAP_FIXED, fd, (off_t) off);
  if (p == MAP_FAILED)
    return errno;
  /* No readahead: a fault reads one page, so the page cache never fills (and
     dirties) whole large folios around a page we write, which would give the
     file back blocks in runs we have punched.  Advice only.  */
  (void) madvise (addr, len, MADV_RANDOM);
  return 0;
}

/* 0 if FD is open for reading, else EACCES (or EBADF).  */
int
mm_os_readable (int fd)
{
  int fl = fcntl (fd, F_GETFL);
  if (fl < 0)
    return errno;
  return (fl & O_ACCMODE) == O_WRONLY ? EACCES : 0;
}

/* Map LEN bytes of FD at OFF onto ADDR copy-on-write, inside a reservation
   the caller owns: what the process writes there stays in its memory and
   never reaches the file.  */
int
mm_os_map_private (void *addr, size_t len, int fd, uint64_t off)
{
  int err = os_step ();
  if (err)
    return err;
  void *p = mmap (addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, (off_t) off);
  return p == MAP_FAILED ? errno : 0;
}

/* Extend FD from FROM to TO bytes with disk blocks reserved, so that writing the
   new pages can never fail for want of space (no SIGBUS on a full disk).  */
int
mm_os_file_grow (int fd, uint64_t from, uint64_t to)
{
  int err = os_step ();
  if (err)
    return err;
  if (to <= from)
    return 0;
  err = posix_fallocate (fd, (off_t) from, (off_t) (to - from));
  return err;
}

/* Set FD's size; growing this way reserves no disk blocks (a sparse tail).  */
int
mm_os_file_resize (int fd, uint64_t size)
{
  int err = os_step ();
  if (err)
    return err;
  return ftruncate (fd, (off_t) size) ? errno : 0;
}

/* Give the disk blocks of [OFF, OFF+LEN) back; the file keeps its size and
   the range reads as zeros.  */
int
mm_os_file_punch (int fd, uint64_t off, uint64_t len)
{
  int err = os_step ();
  if (err)
    return err;
  return fallocate (fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) off,
		    (off_t) len) ? errno : 0;
}

int
mm_os_file_size (int fd, uint64_t *size, dev_t *dev, ino_t *ino)
{
  struct stat st;
  if (fstat (fd, &st))
    return errno;
  if (!S_ISREG (st.st_mode))
    return EINVAL;
  *size = (uint64_t) st.st_size;
  *dev = st.st_dev;
  *ino = st.st_ino;
  return 0;
}

/* Write LEN bytes at ADDR back to the file and wait for the device.  */
int
mm_os_sync (void *addr, size_t len, int fd)
{
  int err = os_step ();
  if (err)
    return err;
  if (len && msync (addr, len, MS_SYNC))
    return errno;
  return fdatasync (fd) ? errno : 0;
}

/* Take the heap's lock without waiting: exclusive for a writer, shared for a
   reader.  The kernel drops it when the last descriptor closes (the holder
   died).  EWOULDBLOCK when held.  */
int
mm_os_lock (int fd, int exclusive)
{
  int err = os_step ();
  if (err)
    return err;
  while (flock (fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB))
    if (errno != EINTR)
      return errno;
  return 0;
}

/* A descriptor of FD's file with an open file description of its own (so
   that its lock is the library's alone and goes with mmalloc_detach), opened
   close-on-exec with FD's access mode; *RDONLY tells if it cannot write.
   Where /proc is missing, a plain duplicate serves.  */
int
mm_os_dup (int fd, int *out, int *rdonly)
{
  int fl = fcntl (fd, F_GETFL);
  if (fl < 0)
    return errno;
  int acc = fl & O_ACCMODE;
  if (acc == O_WRONLY)
    return EACCES;		/* a heap is read and written through a mapping */
  char path[40] = "/proc/self/fd/";
  char digits[12];
  int n = 0;
  unsigned v = (unsigned) fd;
  do
    digits[n++] = (char) ('0' + v % 10);
  while ((v /= 10) && n < 11);
  char *p = path + 14;
  while (n)
    *p++ = digits[--n];
  *p = 0;
  int nfd = open (path, (acc == O_RDONLY ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (nfd >= 0)
    {
      struct stat a, b;
      if (fstat (fd, &a) == 0 && fstat (nfd, &b) == 0
	  && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
	goto done;
      close (nfd);		/* not the same file: do not trust /proc */
    }
  nfd = fcntl (fd, F_DUPFD_CLOEXEC, 3);
  if (nfd < 0)
    return errno;
done:
  *out = nfd;
  *rdonly = acc == O_RDONLY;
  return 0;
}

void
mm_os_close (int fd)
{
  if (fd >= 0)
    close (fd);
}

/* Read exactly LEN bytes at OFF; EIO-like short reads give MMALLOC_ETRUNCATED.  */
int
mm_os_read (int fd, void *buf, size_t len, uint64_t off)
{
  size_t got = 0;
  while (got < len)
    {
      ssize_t r = pread (fd, (char *) buf + got, len - got, (off_t) (off + got));
      if (r < 0 && errno == EINTR)
	continue;
      if (r < 0)
	return errno;
      if (r == 0)
	return MMALLOC_ETRUNCATED;
      got += (size_t) r;
    }
  return 0;
}

void
mm_os_write_stderr (const char *s, size_t len)
{
  while (len)
    {
      ssize_t w = write (2, s, len);
      if (w < 0 && errno == EINTR)
	continue;
      if (w <= 0)
	return;
      s += w;
      len -= (size_t) w;
    }
}

/* The barrier is not counted by os_step: it never fails once registered,
   and a failed registration only makes the fast paths fence themselves.  */
int
mm_os_barrier_init (void)
{
#ifdef SYS_membarrier
  int saved = errno, e = 0;
  if (syscall (SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0)
    e = errno ? errno : ENOSYS;
  errno = saved;
  return e;
#else
  return ENOSYS;
#endif
}

int
mm_os_barrier (void)
{
#ifdef SYS_membarrier
  int saved = errno, e = 0;
  if (syscall (SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
    e = errno ? errno : ENOSYS;
  errno = saved;
  return e;
#else
  return ENOSYS;
#endif
}

/* Process memory for descriptors: never from malloc, which may be us.  */
int
mm_os_alloc (size_t len, void **out)
{
  int err = os_step ();
  if (err)
    return err;
  void *p = mmap (NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return errno;
  *out = p;
  return 0;
}

/* Milliseconds on a cheap monotonic clock (decay's: a coarse clock is
   enough, and costs no system call).  */
uint64_t
mm_os_now_ms (void)
{
  struct timespec t;
  if (clock_gettime (CLOCK_MONOTONIC_COARSE, &t))
    return 0;
  return (uint64_t) t.tv_sec * 1000 + (uint64_t) t.tv_nsec / 1000000;
}
