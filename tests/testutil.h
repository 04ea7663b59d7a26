/* testutil.h -- helpers shared by the cmocka test programs.

   - tu_dir (): a fresh private directory for this test program's files,
     made under $TMPDIR (the runner points that into the build tree) and
     removed with everything in it when the program exits, pass or fail;
   - tu_path (name): a path inside it;  tu_newfile (name): an empty heap file;
   - assert_heap_ok (md): the whole-heap check finds no problem;
   - tu_reattach (path): attach a heap file again;  tu_fork (): fork with
     stdio flushed;  tu_wait_killed (pid): a child killed by SIGKILL;  tu_all_bytes (p, n, v): every byte is V;
   - tu_child (fn, arg, err, errlen): run FN in a forked child, collect what it
     writes on stderr, and return its wait status, so misuse that aborts can be
     asserted from the parent;  tu_drain (fd, buf, len): read a pipe to its end;
   - tu_vm_size (): the address space this process holds (VmSize);
   - tu_beside (name): a path relative to the directory of this program
     (the runner starts each program in an empty directory of its own);
   - tu_stress (): true under make stress (MMALLOC_STRESS set, not 0): long
     loops run in full then, and make check runs a sample of them;
   - tu_snap_take (path, s), tu_snap_same (path, s): a file's bytes and
     times, and whether it still has them (what read-only access promises);
   - tu_hold_start (path, flags), tu_hold_stop (h): a child that holds a
     heap file attached (read-write, or with FLAGS for mmalloc_attach_flags)
     until told to let go.  */

#ifndef TESTUTIL_H
#define TESTUTIL_H 1

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <ftw.h>
#include <unistd.h>

#include "mmalloc.h"

#define assert_heap_ok(md) assert_int_equal (mmalloc_check (md), 0)

static char tu_dirbuf[256];
static pid_t tu_dir_owner;

static inline void tu_rm_tree (const char *dir);

/* At exit: remove the directory, but only in the process that made it (a
   forked child that calls exit must not take it from its parent).  A program
   killed by a signal leaves it to the runner, which removes it too.  */
static inline void
tu_dir_remove (void)
{
  if (tu_dirbuf[0] && getpid () == tu_dir_owner)
    tu_rm_tree (tu_dirbuf);
}

static inline const char *
tu_dir (void)
{
  if (!tu_dirbuf[0])
    {
      const char *t = getenv ("TMPDIR");
      snprintf (tu_dirbuf, sizeof tu_dirbuf, "%s/mmtest.XXXXXX", t && *t ? t : "/tmp");
      if (!mkdtemp (tu_dirbuf))
	{
	  perror ("mkdtemp");
	  exit (2);
	}
      tu_dir_owner = getpid ();
      atexit (tu_dir_remove);
    }
  return tu_dirbuf;
}

static inline const char *
tu_path (const char *name)
{
  static char buf[8][512];
  static int n;
  char *p = buf[n++ % 8];
  snprintf (p, 512, "%s/%s", tu_dir (), name);
  return p;
}

/* A new empty file NAME, opened read-write; the descriptor.  */
static inline int
tu_newfile (const char *name)
{
  const char *p = tu_path (name);
  unlink (p);
  int fd = open (p, O_RDWR | O_CREAT | O_TRUNC, 0600);
  assert_true (fd >= 0);
  return fd;
}

/* Read FD to its end into BUF (LEN bytes, NUL-terminated; what does not
   fit is read and dropped), and close it.  */
static inline void
tu_drain (int fd, char *buf, size_t len)
{
  size_t got = 0;
  ssize_t r;
  while (got + 1 < len && (r = read (fd, buf + got, len - 1 - got)) > 0)
    got += (size_t) r;
  if (len)
    buf[got] = 0;
  char sink[256];
  while (read (fd, sink, sizeof sink) > 0)
    ;
  close (fd);
}

/* Run FN (ARG) in a child; its stderr goes to ERR (NUL-terminated).  Returns
   the wait status.  The child exits 0 if FN returns.  */
static inline int
tu_child (void (*fn) (void *), void *arg, char *err, size_t errlen)
{
  int pfd[2];
  assert_int_equal (pipe (pfd), 0);
  fflush (NULL);
  pid_t pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      close (pfd[0]);
      dup2 (pfd[1], 2);
      fn (arg);
      _exit (0);
    }
  close (pfd[1]);
  tu_drain (pfd[0], err, errlen);
  int st;
  assert_int_equal (waitpid (pid, &st, 0), pid);
  return st;
}

/* A new anonymous heap; and its end: checked clean, then detached.  */
static inline void *
tu_new_heap (void)
{
  void *md = mmalloc_attach (-1, NULL);
  assert_non_null (md);
  return md;
}

/* A new heap in the new file NAME of the test directory.  */
static inline void *
tu_new_file_heap (const char *name)
{
  int fd = tu_newfile (name);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  return md;
}

/* Attach the heap file at PATH again, read-write (which recovers it if its
   last writer died).  */
static inline void *
tu_reattach (const char *path)
{
  int fd = open (path, O_RDWR);
  if (fd < 0)
    fail_msg ("open %s: %s", path, strerror (errno));
  void *md = mmalloc_attach (fd, NULL);
  int e = errno;
  close (fd);
  if (!md)
    fail_msg ("attach %s: %s", path, mmalloc_strerror (e));
  return md;
}

/* fork, with stdio flushed first (so that the child's exit writes nothing
   twice); the child gets 0.  */
static inline pid_t
tu_fork (void)
{
  fflush (NULL);
  pid_t pid = fork ();
  assert_true (pid >= 0);
  return pid;
}

/* Wait for the child PID, which must have been killed by SIGKILL.  */
static inline void
tu_wait_killed (pid_t pid)
{
  int st;
  assert_int_equal (waitpid (pid, &st, 0), pid);
  if (!WIFSIGNALED (st) || WTERMSIG (st) != SIGKILL)
    fail_msg ("child %d: wait status 0x%x, expected a kill by SIGKILL", (int) pid, st);
}

/* True if the N bytes at P all hold V.  */
static inline int
tu_all_bytes (const void *p, size_t n, unsigned char v)
{
  const unsigned char *c = (const unsigned char *) p;
  for (size_t i = 0; i < n; i++)
    if (c[i] != v)
      return 0;
  return 1;
}

static inline void
tu_end_heap (void *md)
{
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
}

/* A 64-bit mixing function, for patterns and seeds.  */
static inline uint64_t
tu_mix (uint64_t x)
{
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

/* Fill N bytes at P with a stream of 64-bit words derived from TAG.  */
static inline void
tu_fill (void *p, size_t n, uint64_t tag)
{
  unsigned char *c = (unsigned char *) p;
  uint64_t w = tu_mix (tag + 1);
  size_t i = 0;
  for (; i + 8 <= n; i += 8, w += 0x9e3779b97f4a7c15ULL)
    memcpy (c + i, &w, 8);
  for (unsigned k = 0; i < n; i++, k++)
    c[i] = (unsigned char) (w >> (8 * k));
}

/* True if N bytes at P hold what tu_fill (P, N, TAG) wrote.  */
static inline int
tu_holds (const void *p, size_t n, uint64_t tag)
{
  const unsigned char *c = (const unsigned char *) p;
  uint64_t w = tu_mix (tag + 1), v;
  size_t i = 0;
  for (; i + 8 <= n; i += 8, w += 0x9e3779b97f4a7c15ULL)
    {
      memcpy (&v, c + i, 8);
      if (v != w)
	return 0;
    }
  for (unsigned k = 0; i < n; i++, k++)
    if (c[i] != (unsigned char) (w >> (8 * k)))
      return 0;
  return 1;
}

/* Remove DIR and everything under it; symbolic links are removed, not
   followed.  */
static inline int
tu_rm_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) st;
  (void) ftw;
  if (flag == FTW_DP)
    rmdir (path);
  else
    unlink (path);
  return 0;
}

static inline void
tu_rm_tree (const char *dir)
{
  nftw (dir, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* VmSize of this process, read without allocating (the default heap may
   not exist yet, and must not be made by this); 0 if unknown.  */
static inline size_t
tu_vm_size (void)
{
  char buf[8192];
  int fd = open ("/proc/self/status", O_RDONLY);
  if (fd < 0)
    return 0;
  ssize_t n = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (n <= 0)
    return 0;
  buf[n] = 0;
  const char *v = strstr (buf, "VmSize:");
  return v ? (size_t) strtoull (v + 7, NULL, 10) << 10 : 0;
}

/* NAME relative to the directory that holds this program.  */
static inline const char *
tu_beside (const char *name)
{
  static char buf[8][1024];
  static int n;
  char *p = buf[n++ % 8];
  ssize_t len = readlink ("/proc/self/exe", p, 1023);
  if (len <= 0)
    len = 0;
  p[len] = 0;
  char *slash = strrchr (p, '/');
  if (slash)
    slash[1] = 0;
  else
    p[0] = 0;
  strncat (p, name, 1023 - strlen (p));
  return p;
}

/* True under make stress: the full loops, not a sample.  */
static inline int
tu_stress (void)
{
  const char *e = getenv ("MMALLOC_STRESS");
  return e && *e && strcmp (e, "0") != 0;
}

/* An abort function for misuse tests: leaves the child with status 77.  */
static inline void
tu_abort77 (void)
{
  _exit (77);
}

/* The next number of the xorshift sequence in *S (S never 0).  */
static inline uint64_t
tu_rnd (uint64_t *s)
{
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* A random size: below SMALL PS times in a hundred, else below MID PM times
   in a hundred, else below LARGE.  */
static inline size_t
tu_size_mix (uint64_t *s, unsigned ps, size_t small, unsigned pm, size_t mid, size_t large)
{
  uint64_t r = tu_rnd (s) % 100;
  size_t bound = r < ps ? small : r < ps + pm ? mid : large;
  return (size_t) (tu_rnd (s) % bound);
}

/* The whole content of a file and its times, to compare after.  */
struct tu_snap
{
  char *bytes;
  size_t len;
  struct timespec mtime, ctime;
};

static inline void
tu_snap_take (const char *path, struct tu_snap *s)
{
  struct stat st;
  assert_int_equal (stat (path, &st), 0);
  s->len = (size_t) st.st_size;
  s->mtime = st.st_mtim;
  s->ctime = st.st_ctim;
  s->bytes = (char *) malloc (s->len + 1);	/* (testutil.h compiles as C++ too) */
  assert_non_null (s->bytes);
  int fd = open (path, O_RDONLY);
  assert_true (fd >= 0);
  size_t got = 0;
  ssize_t r;
  while (got < s->len && (r = pread (fd, s->bytes + got, s->len - got, (off_t) got)) > 0)
    got += (size_t) r;
  close (fd);
  assert_int_equal (got, s->len);
}

/* 1 if the file at PATH holds the bytes of S, with its times; else 0, and
   what differs is printed.  */
static inline int
tu_snap_same (const char *path, const struct tu_snap *s)
{
  struct tu_snap now;
  tu_snap_take (path, &now);
  size_t i = 0;
  while (i < s->len && i < now.len && now.bytes[i] == s->bytes[i])
    i++;
  int same = now.len == s->len && i == s->len
    && now.mtime.tv_sec == s->mtime.tv_sec && now.mtime.tv_nsec == s->mtime.tv_nsec
    && now.ctime.tv_sec == s->ctime.tv_sec && now.ctime.tv_nsec == s->ctime.tv_nsec;
  if (!same)
    print_message ("%s: %zu bytes, was %zu; first difference at %zu; mtime %ld.%09ld,"
		   " was %ld.%09ld\n", path, now.len, s->len, i, (long) now.mtime.tv_sec,
		   now.mtime.tv_nsec, (long) s->mtime.tv_sec, s->mtime.tv_nsec);
  free (now.bytes);
  return same;
}

/* A child holding a heap file attached; it lets go when GO is written.  */
struct tu_holder
{
  pid_t pid;
  int go;
};

/* Attach PATH in a child (read-write for FLAGS 0, else read-only with
   FLAGS) and return once it is attached.  When told to let go, a writer
   allocates (nothing stopped it meanwhile) and both detach; the child exits
   0 if all went well.  */
static inline struct tu_holder
tu_hold_start (const char *path, int flags)
{
  int ready[2], go[2];
  assert_int_equal (pipe (ready), 0);
  assert_int_equal (pipe (go), 0);
  fflush (NULL);
  pid_t pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      close (ready[0]);
      close (go[1]);
      int fd = open (path, flags ? O_RDONLY : O_RDWR);
      void *md = mmalloc_attach_flags (fd, NULL, flags);
      char c = md ? 'y' : 'n';
      if (write (ready[1], &c, 1) != 1 || read (go[0], &c, 1) < 0)
	_exit (4);
      if (!flags && !mmalloc (md, 1000))
	_exit (5);
      _exit (md && mmalloc_detach (md) == NULL ? 0 : 6);
    }
  close (ready[1]);
  close (go[0]);
  char c = 0;
  assert_int_equal (read (ready[0], &c, 1), 1);
  close (ready[0]);
  assert_int_equal (c, 'y');
  return (struct tu_holder) { pid, go[1] };
}

static inline void
tu_hold_stop (struct tu_holder h)
{
  assert_int_equal (write (h.go, "g", 1), 1);
  close (h.go);
  int st;
  assert_int_equal (waitpid (h.pid, &st, 0), h.pid);
  assert_true (WIFEXITED (st));
  assert_int_equal (WEXITSTATUS (st), 0);
}

/* N and P, hidden from the optimiser, for the calls and writes that
   mmalloc.h's attributes (alloc_size, alloc_align) let the compiler reject:
   sizes no block can have, bad alignments, writes out of a block.  */
static inline size_t
tu_hidden_size (size_t n)
{
  __asm__ ("" : "+r" (n));
  return n;
}

static inline char *
tu_hidden_ptr (char *p)
{
  __asm__ ("" : "+r" (p));
  return p;
}

#endif /* TESTUTIL_H */
