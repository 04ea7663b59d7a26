/* roots.c -- the roots of a whole process, for the garbage detector: every
   other thread stopped, its registers saved, and every writable mapping.

   Threads are stopped by a signal (MM_STOP_SIG) sent to each with tgkill:
   the handler saves the thread's general registers and stack pointer in
   `stopped' (static, so in our own data, which is a root mapping like any
   other), says so, and waits on a futex until the world starts again.  The
   list of threads is read from /proc/self/task again until it shows no new
   thread, so a thread made by one not yet stopped is stopped too.  While
   the world is stopped, the stopper uses no lock and no allocator of the C
   library (a stopped thread may hold one): raw reads of /proc, mappings it
   made before, and write(2).

   The handler stays installed once set: a late signal (a thread that had
   the signal blocked, and unblocks it after the world started again) finds
   no stop under way and goes to the handler the program had, if any.  */

#include "mmprivate.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>

/* The signal that stops threads (as in several collectors: rarely used).  */
#ifndef MM_STOP_SIG
#define MM_STOP_SIG SIGPWR
#endif
/* Threads a stop can hold; a process with more makes mmalloc_garbage fail
   with EAGAIN.  */
#define STOP_MAX 1024
/* How long a thread may take to stop, in milliseconds: one that has the
   signal blocked never does.  */
#define STOP_WAIT_MS 2000
/* Bytes below a stopped thread's stack pointer that its code may still
   use (the x86-64 red zone).  */
#define RED_ZONE 128
/* Writable mappings larger than BIG_MIN are scanned where their pages are
   in memory, a RESIDENT_CHUNK at a time; those larger than BIG_MAX not at
   all (sanitizers' shadow memory).  */
#define BIG_MIN ((uintptr_t) 1 << 30)
#define BIG_MAX ((uintptr_t) 1 << 40)
#define RESIDENT_CHUNK ((uintptr_t) 1 << 28)
/* Bytes of a file's mapping copied at a time (on the stack).  */
#define COPY_CHUNK 16384

#if defined(__x86_64__)
#define NREGS NGREG
#elif defined(__aarch64__)
#define NREGS 32
#else
#define NREGS 0
#endif

struct stopped
{
  pid_t tid;
  int state;			/* 0 signalled, 1 stopped, 2 gone */
  uintptr_t sp;			/* 0: not known */
  uintptr_t regs[NREGS + 1];
};

static struct stopped stopped[STOP_MAX];
static unsigned nstopped;
static int stop_active;		/* a stop is under way */
static int stop_gen;		/* futex: changes when the world starts */
static struct sigaction prev_action;
static int installed;

static pid_t
tid_self (void)
{
  return (pid_t) syscall (SYS_gettid);
}

static void
save_regs (struct stopped *t, const ucontext_t *uc)
{
#if defined(__x86_64__)
  for (unsigned i = 0; i < NREGS; i++)
    t->regs[i] = (uintptr_t) uc->uc_mcontext.gregs[i];
  t->sp = (uintptr_t) uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
  for (unsigned i = 0; i < 31; i++)
    t->regs[i] = (uintptr_t) uc->uc_mcontext.regs[i];
  t->sp = (uintptr_t) uc->uc_mcontext.sp;
#else
  (void) uc;
  t->sp = 0;			/* its whole stack is scanned */
#endif
}

static void
stop_handler (int sig, siginfo_t *si, void *ctx)
{
  int saved = errno;
  if (!__atomic_load_n (&stop_active, __ATOMIC_ACQUIRE) || si->si_code != SI_TKILL
      || si->si_pid != getpid ())
    {				/* not ours: the program's handler, if any */
      if (prev_action.sa_flags & SA_SIGINFO)
	prev_action.sa_sigaction (sig, si, ctx);
      else if (prev_action.sa_handler != SIG_DFL && prev_action.sa_handler != SIG_IGN)
	prev_action.sa_handler (sig);
      errno = saved;
      return;
    }
  pid_t me = tid_self ();
  int gen = __atomic_load_n (&stop_gen, __ATOMIC_ACQUIRE);
  unsigned n = __atomic_load_n (&nstopped, __ATOMIC_ACQUIRE);
  for (unsigned i = 0; i < n; i++)
    if (stopped[i].tid == me && !stopped[i].state)
      {
	save_regs (&stopped[i], ctx);
	__atomic_store_n (&stopped[i].state, 1, __ATOMIC_RELEASE);
	while (__atomic_load_n (&stop_gen, __ATOMIC_ACQUIRE) == gen)
	  syscall (SYS_futex, &stop_gen, FUTEX_WAIT_PRIVATE, gen, NULL, NULL, 0);
	break;
      }
  errno = saved;
}

static int
install (void)
{
  if (installed)
    return 0;
  struct sigaction sa;
  memset (&sa, 0, sizeof sa);
  sa.sa_sigaction = stop_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset (&sa.sa_mask);
  if (sigaction (MM_STOP_SIG, &sa, &prev_action))
    return errno;
  installed = 1;
  return 0;
}

static void
sleep_ms (long ms)
{
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  nanosleep (&ts, NULL);
}

/* Signal every thread of /proc/self/task not signalled yet; how many were
   new, or -1 with errno.  */
static int
signal_new_threads (pid_t self)
{
  int fd = open ("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  char buf[4096];
  int fresh = 0;
  long got;
  while ((got = syscall (SYS_getdents64, fd, buf, sizeof buf)) > 0)
    for (long off = 0; off < got;)
      {
	const char *name = buf + off + 19;	/* d_name of struct linux_dirent64 */
	unsigned short reclen;
	memcpy (&reclen, buf + off + 16, sizeof reclen);
	off += reclen;
	pid_t tid = 0;
	for (const char *c = name; *c >= '0' && *c <= '9'; c++)
	  tid = tid * 10 + (*c - '0');
	if (!tid || tid == self)
	  continue;
	unsigned i = 0;
	while (i < nstopped && stopped[i].tid != tid)
	  i++;
	if (i < nstopped)
	  continue;
	if (nstopped == STOP_MAX)
	  {
	    close (fd);
	    errno = EAGAIN;
	    return -1;
	  }
	memset (&stopped[i], 0, sizeof stopped[i]);
	stopped[i].tid = tid;
	__atomic_store_n (&nstopped, i + 1, __ATOMIC_RELEASE);
	if (syscall (SYS_tgkill, getpid (), tid, MM_STOP_SIG))
	  stopped[i].state = 2;	/* exited meanwhile */
	fresh++;
      }
  close (fd);
  return fresh;
}

/* Wait until every thread signalled has stopped or is gone, STOP_WAIT_MS at
   most; the number that did neither.  */
static unsigned
wait_stopped (void)
{
  unsigned late = 0;
  for (long waited = 0;; waited++)
    {
      late = 0;
      for (unsigned i = 0; i < nstopped; i++)
	if (!__atomic_load_n (&stopped[i].state, __ATOMIC_ACQUIRE))
	  {
	    if (syscall (SYS_tgkill, getpid (), stopped[i].tid, 0))
	      stopped[i].state = 2;
	    else
	      late++;
	  }
      if (!late || waited >= STOP_WAIT_MS)
	return late;
      sleep_ms (1);
    }
}

int
mm_world_stop (unsigned *late)
{
  int e = install ();
  if (e)
    return e;
  nstopped = 0;
  __atomic_store_n (&stop_active, 1, __ATOMIC_RELEASE);
  pid_t self = tid_self ();
  int fresh;
  *late = 0;
  while ((fresh = signal_new_threads (self)) > 0)
    *late = wait_stopped ();
  if (fresh < 0)
    {
      e = errno;
      mm_world_start ();
      return e;
    }
  return 0;
}

void
mm_world_start (void)
{
  __atomic_store_n (&stop_active, 0, __ATOMIC_RELEASE);
  __atomic_add_fetch (&stop_gen, 1, __ATOMIC_ACQ_REL);
  syscall (SYS_futex, &stop_gen, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
  /* No stale copy of a register keeps a block alive in a later call.  */
  for (unsigned i = 0; i < nstopped; i++)
    memset (stopped[i].regs, 0, sizeof stopped[i].regs);
}

/* Parse a hexadecimal number at *S, moving *S past it.  */
static uintptr_t
hex (const char **s)
{
  uintptr_t v = 0;
  for (;; (*s)++)
    {
      char c = **s;
      if (c >= '0' && c <= '9')
	v = v * 16 + (uintptr_t) (c - '0');
      else if (c >= 'a' && c <= 'f')
	v = v * 16 + (uintptr_t) (c - 'a' + 10);
      else
	return v;
    }
}

/* The lowest stack pointer of a stopped thread (or SELF_SP) in [LO, HI),
   less the red zone; LO if none.  */
static uintptr_t
scan_from (uintptr_t lo, uintptr_t hi, uintptr_t self_sp)
{
  uintptr_t from = hi;
  if (self_sp >= lo && self_sp < hi)
    from = self_sp;
  for (unsigned i = 0; i < nstopped; i++)
    if (stopped[i].state == 1 && stopped[i].sp >= lo && stopped[i].sp < hi
	&& stopped[i].sp < from)
      from = stopped[i].sp > lo + RED_ZONE ? stopped[i].sp - RED_ZONE : lo;
  return from == hi ? lo : from;
}

/* Call FN for [LO, HI); of a mapping of a file (FILE), for copies of its
   pages read without touching them: a page past the file's end, which a
   mapping may have (mapped longer than its file, or the file cut since),
   would get the process SIGBUS, and is left out.  The copy is on this
   stack, below the part of it that is a root.  */
static void
visit (uintptr_t lo, uintptr_t hi, int file, void (*fn) (uintptr_t, uintptr_t, void *),
       void *arg)
{
  if (!file)
    {
      fn (lo, hi, arg);
      return;
    }
  uintptr_t buf[COPY_CHUNK / sizeof (uintptr_t)];
  while (lo < hi)
    {
      size_t want = hi - lo < COPY_CHUNK ? (size_t) (hi - lo) : COPY_CHUNK;
      struct iovec to = { buf, want }, from = { (void *) lo, want };
      ssize_t got = process_vm_readv (getpid (), &to, 1, &from, 1, 0);
      if (got < 0 && (errno == ENOSYS || errno == EPERM))
	{			/* not allowed here: read the mapping itself */
	  fn (lo, hi, arg);
	  return;
	}
      if (got > 0)
	fn ((uintptr_t) buf, (uintptr_t) buf + (size_t) got, arg);
      /* A short read stopped at a page that cannot be read: skip it.  */
      lo += got == (ssize_t) want ? want : (((lo + (got > 0 ? (size_t) got : 0)) | 4095) + 1) - lo;
    }
}

/* Call FN for [LO, HI), of a large range only the runs of pages in memory
   (mincore): a range that large is mostly never touched (a sanitizer's
   shadow, a reservation), and reading it would fault every page in.  Pages
   of it swapped out are not scanned.  */
static void
resident (uintptr_t lo, uintptr_t hi, int file,
	  void (*fn) (uintptr_t, uintptr_t, void *), void *arg)
{
  static unsigned char vec[RESIDENT_CHUNK / 4096];
  size_t page = (size_t) sysconf (_SC_PAGESIZE);
  if (hi - lo <= BIG_MIN || page != 4096)
    {
      visit (lo, hi, file, fn, arg);
      return;
    }
  uintptr_t run = 0;
  for (uintptr_t at = lo; at < hi; at += RESIDENT_CHUNK)
    {
      uintptr_t end = hi - at > RESIDENT_CHUNK ? at + RESIDENT_CHUNK : hi;
      if (mincore ((void *) at, end - at, vec))
	memset (vec, 1, sizeof vec);	/* scan what we cannot ask about */
      for (uintptr_t p = at; p < end; p += 4096)
	{
	  int in = vec[(p - at) / 4096] & 1;
	  if (in && !run)
	    run = p;
	  else if (!in && run)
	    {
	      visit (run, p, file, fn, arg);
	      run = 0;
	    }
	}
    }
  if (run)
    visit (run, hi, file, fn, arg);
}

/* One line of /proc/self/maps: call FN for its writable part outside the
   ranges of EX (sorted, NEX of them).  */
static void
one_mapping (const char *line, const struct mm_range *ex, unsigned nex, uintptr_t self_sp,
	     void (*fn) (uintptr_t, uintptr_t, void *), void *arg)
{
  const char *s = line;
  uintptr_t lo = hex (&s);
  if (*s++ != '-')
    return;
  uintptr_t hi = hex (&s);
  if (*s++ != ' ' || s[0] != 'r' || s[1] != 'w')
    return;
  const char *path = strchr (s, '/');
  const char *br = strchr (s, '[');
  if ((path && !strncmp (path, "/dev/", 5))
      || (br && (!strncmp (br, "[vvar", 5) || !strncmp (br, "[vsyscall", 9))))
    return;
  if (hi - lo > BIG_MAX)
    return;			/* a sanitizer's shadow, not data */
  int file = path != NULL;
  lo = scan_from (lo, hi, self_sp);
  for (unsigned i = 0; i < nex && lo < hi; i++)
    {
      if (ex[i].hi <= lo || ex[i].lo >= hi)
	continue;
      if (ex[i].lo > lo)
	resident (lo, ex[i].lo, file, fn, arg);
      lo = ex[i].hi;
    }
  if (lo < hi)
    resident (lo, hi, file, fn, arg);
}

int
mm_roots_each (const struct mm_range *ex, unsigned nex, uintptr_t self_sp,
	       void (*fn) (uintptr_t lo, uintptr_t hi, void *arg), void *arg)
{
  int fd = open ("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno;
  char buf[8192], line[1024];
  size_t len = 0;
  ssize_t got;
  while ((got = read (fd, buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < got; i++)
      {
	if (buf[i] != '\n')
	  {
	    if (len < sizeof line - 1)
	      line[len++] = buf[i];
	    continue;
	  }
	line[len] = 0;
	one_mapping (line, ex, nex, self_sp, fn, arg);
	len = 0;
      }
  int e = got < 0 ? errno : 0;
  close (fd);
  return e;
}
