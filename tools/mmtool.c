/* mmtool.c -- a heap file from the shell: info, stats, keys, walk, check,
   leaks, gc, recover and dump.

   The read-only commands attach a private view of the file
   (mmalloc_attach_flags with MMALLOC_INSPECT): the file is never written,
   not a byte, no lock is taken, and a writer may hold the file meanwhile;
   a file whose writer died is recovered in the view alone.  Only recover
   and gc attach for writing.  Exit status: 0 done and nothing found, 1
   problems found (damage, inconsistencies, unreachable blocks), 2 usage
   errors and files that cannot be opened or attached.  The tool links the
   library statically and reads the header and size-class tables through
   src/mmprivate.h, the format's one definition.  */

#include "mmprivate.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define PROG "mmtool"

/* --- Options and errors ------------------------------------------------- */

static int opt_json;		/* --json: one JSON object on stdout */
static int opt_free;		/* walk --free */
static int opt_histogram;	/* walk --histogram */
static int opt_dry_run;		/* gc --dry-run */
static const char *file_name;	/* the FILE operand, for messages */

static const char usage_line[] = "Usage: " PROG " [--json] COMMAND FILE [ARGS]\n";

static void
usage_error (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fputs (PROG ": ", stderr);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputs ("\n", stderr);
  fputs (usage_line, stderr);
  fputs ("Try '" PROG " --help' for more information.\n", stderr);
  exit (2);
}

/* The file can not be opened or attached: ERR names why.  */
static void
file_error (int err)
{
  fprintf (stderr, "%s: %s: %s\n", PROG, file_name, mmalloc_strerror (err));
  exit (2);
}

static void
help (void)
{
  fputs (usage_line, stdout);
  fputs ("Look inside an mmalloc heap file.\n"
	 "\n"
	 "Commands (all but recover and gc never write the file):\n"
	 "  info FILE             format version, base, size, state, writer, keys set\n"
	 "  stats FILE            mmstats, and a table per size class\n"
	 "  keys FILE             each key, its block and size, its first bytes\n"
	 "  walk FILE             every allocated block (address, size)\n"
	 "    --free              the free runs of pages instead\n"
	 "    --histogram         the blocks counted by size\n"
	 "  check FILE            the whole-heap check; exit 1 if problems\n"
	 "  leaks FILE            blocks no key reaches; exit 1 if any\n"
	 "  gc FILE               free the blocks no key reaches (takes the writer's lock)\n"
	 "    --dry-run           only say what would be freed\n"
	 "  recover FILE          rebuild a file whose writer died (attach, detach)\n"
	 "  dump FILE ADDR [LEN]  a hex dump of the block at ADDR (from ADDR, LEN bytes)\n"
	 "\n"
	 "Options:\n"
	 "  -j, --json            one JSON object on standard output\n"
	 "  -h, --help            this help\n"
	 "  -V, --version         the version\n"
	 "\n"
	 "Exit status: 0 nothing found, 1 problems or unreachable blocks found,\n"
	 "2 usage error or a file that cannot be opened or attached.\n", stdout);
  exit (0);
}

/* A page of the view that a writer cut off the file: SIGBUS.  Nothing to
   undo (no file is written), so say it and leave.  */
static void
on_sigbus (int sig)
{
  (void) sig;
  static const char msg[] =
    PROG ": the heap file shrank while it was read (a writer is using it); try again\n";
  if (write (2, msg, sizeof msg - 1) < 0)
    _exit (2);
  _exit (2);
}

/* --- JSON ----------------------------------------------------------------

   Objects and arrays are written as they go; jsep () puts the comma before
   every member but the first of its container.  */

static int jfirst[32];
static int jdepth;

static void
jsep (void)
{
  if (jdepth && !jfirst[jdepth - 1])
    putchar (',');
  if (jdepth)
    jfirst[jdepth - 1] = 0;
}

static void
jstr_raw (const char *s)
{
  putchar ('"');
  for (; *s; s++)
    {
      unsigned char c = (unsigned char) *s;
      if (c == '"' || c == '\\')
	printf ("\\%c", c);
      else if (c < 0x20 || c >= 0x7f)
	printf ("\\u%04x", c);
      else
	putchar (c);
    }
  putchar ('"');
}

static void
jkey (const char *k)
{
  jsep ();
  if (k)
    {
      jstr_raw (k);
      putchar (':');
    }
}

static void
jopen (const char *k, char c)
{
  jkey (k);
  putchar (c);
  jfirst[jdepth++] = 1;
}

static void
jclose (char c)
{
  jdepth--;
  putchar (c);
  if (!jdepth)
    putchar ('\n');
}

static void
jnum (const char *k, uint64_t v)
{
  jkey (k);
  printf ("%" PRIu64, v);
}

static void
jbool (const char *k, int v)
{
  jkey (k);
  fputs (v ? "true" : "false", stdout);
}

static void
jnull (const char *k)
{
  jkey (k);
  fputs ("null", stdout);
}

static void
jstr (const char *k, const char *s)
{
  jkey (k);
  jstr_raw (s);
}

/* --- Opening the file ----------------------------------------------------- */

static int
open_file (int flags)
{
  int fd = open (file_name, flags | O_CLOEXEC);
  if (fd < 0)
    file_error (errno);
  return fd;
}

/* The file's header as it is on disk, validated: exit 2 if it is none.  */
static void
read_header (int fd, struct mm_header *h, struct stat *st)
{
  if (fstat (fd, st))
    file_error (errno);
  if (!S_ISREG (st->st_mode))
    file_error (EINVAL);
  memset (h, 0, sizeof *h);
  mm_classes_init ();		/* the header names the class table's sum */
  ssize_t r = pread (fd, h, sizeof *h, 0);
  if (r < 0)
    file_error (errno);
  if (r < 8 || memcmp (h->magic, MM_MAGIC, 8))
    file_error (MMALLOC_ENOTHEAP);
  if ((size_t) r < sizeof *h)
    file_error (MMALLOC_ETRUNCATED);
  int e = mm_header_validate (h, (uint64_t) st->st_size);
  if (e)
    file_error (e);
}

/* A private, read-only view of the file: never written, no lock.  NULL
   with errno if it cannot be attached.  */
static void *
try_view (void)
{
  int fd = open_file (O_RDONLY);
  void *md = mmalloc_attach_flags (fd, NULL, MMALLOC_INSPECT);
  int e = errno;
  close (fd);
  errno = e;
  return md;
}

static void *
view (void)
{
  void *md = try_view ();
  if (!md)
    file_error (errno);
  return md;
}

static struct mm_desc *
desc (void *md)
{
  return mm_desc_of (md);
}

/* Does another process hold the file's writer lock (flock, exclusive)?
   Read from /proc/locks, which shows it without taking it (taking even a
   shared lock for an instant could make a writer's attach fail).  1, 0,
   or -1 where it cannot be told.  */
static int
writer_present (const struct stat *st)
{
  FILE *f = fopen ("/proc/locks", "re");
  if (!f)
    return -1;
  char line[256];
  int found = 0;
  while (fgets (line, sizeof line, f))
    {
      char kind[16], mode[16], access[16];
      unsigned maj, min;
      unsigned long long ino;
      long pid;
      if (strstr (line, "->"))
	continue;		/* waiting for the lock, not holding it */
      if (sscanf (line, "%*d: %15s %15s %15s %ld %x:%x:%llu", kind, mode, access, &pid,
		  &maj, &min, &ino) != 7)
	continue;
      if (!strcmp (kind, "FLOCK") && !strcmp (access, "WRITE")
	  && maj == major (st->st_dev) && min == minor (st->st_dev) && ino == st->st_ino)
	found = 1;
    }
  fclose (f);
  return found;
}

/* --- Finding blocks ----------------------------------------------------- */

/* The blocks that contain the addresses of a query, found in one walk.  */
struct find
{
  int n;
  uintptr_t addr[MMALLOC_KEYS];
  uintptr_t start[MMALLOC_KEYS];	/* 0: in no block */
  size_t size[MMALLOC_KEYS];
};

static int
find_visit (void *ptr, size_t size, void *arg)
{
  struct find *f = arg;
  uintptr_t p = (uintptr_t) ptr;
  for (int i = 0; i < f->n; i++)
    if (f->addr[i] >= p && f->addr[i] - p < (size ? size : 1))
      {
	f->start[i] = p;
	f->size[i] = size;
      }
  return 0;
}

/* Fill F's blocks; the walk's result (0, or -1 with errno).  */
static int
find_blocks (void *md, struct find *f)
{
  for (int i = 0; i < f->n; i++)
    f->start[i] = 0, f->size[i] = 0;
  return mmalloc_walk (md, find_visit, f);
}

/* A damaged heap met by a walk: said on stderr; the exit status is 1.  */
static int
walk_failed (void)
{
  fprintf (stderr, "%s: %s: walk stopped: %s\n", PROG, file_name, mmalloc_strerror (errno));
  return 1;
}

/* --- info --------------------------------------------------------------- */

static const char *
state_name (const struct mm_header *h, int writer)
{
  if (h->state == MM_CLEAN)
    return "clean";
  return writer > 0 ? "attached by a writer" : "needs recovery";
}

static void info_text (const struct mm_header *h, const struct stat *st, int writer, int err);

static int
cmd_info (void)
{
  int fd = open_file (O_RDONLY);
  struct mm_header h;
  struct stat st;
  read_header (fd, &h, &st);
  close (fd);
  int writer = writer_present (&st);
  /* The whole region validated; if it is damaged, what the header says is
     shown all the same, with the reason, and the status is 2.  */
  void *md = try_view ();
  int err = md ? 0 : errno;
  if (md)
    mmalloc_detach (md);
  if (opt_json)
    {
      jopen (NULL, '{');
      jstr ("file", file_name);
      jnum ("version", h.version);
      jnum ("base", h.base);
      jnum ("size", h.top << MM_PAGE_SHIFT);
      jnum ("span", h.span);
      jnum ("file_size", (uint64_t) st.st_size);
      jbool ("clean", h.state == MM_CLEAN);
      jstr ("state", state_name (&h, writer));
      if (writer < 0)
	jnull ("writer");
      else
	jbool ("writer", writer);
      jbool ("checked", (h.flags & MM_F_CHECKED) != 0);
      jopen ("keys", '[');
      for (int k = 0; k < MMALLOC_KEYS; k++)
	if (h.keys[k])
	  jnum (NULL, (uint64_t) k);
      jclose (']');
      if (err)
	jstr ("error", mmalloc_strerror (err));
      jclose ('}');
    }
  else
    info_text (&h, &st, writer, err);
  if (err)
    file_error (err);
  return 0;
}

static void
info_text (const struct mm_header *h, const struct stat *st, int writer, int err)
{
  int nkeys = 0;
  for (int k = 0; k < MMALLOC_KEYS; k++)
    nkeys += h->keys[k] != 0;
  uint64_t size = h->top << MM_PAGE_SHIFT;
  printf ("file:        %s\n", file_name);
  printf ("format:      %" PRIu32 " (this build reads 1 to %d; library %s)\n", h->version,
	  MM_FORMAT_VERSION, mmalloc_version ());
  printf ("base:        0x%" PRIx64 "\n", h->base);
  printf ("size:        %" PRIu64 " bytes (%" PRIu64 " pages in use)\n", size, h->top);
  printf ("span:        %" PRIu64 " bytes\n", h->span);
  printf ("file size:   %jd bytes\n", (intmax_t) st->st_size);
  printf ("state:       %s\n", err ? mmalloc_strerror (err) : state_name (h, writer));
  printf ("writer:      %s\n", writer < 0 ? "unknown" : writer ? "present" : "none");
  printf ("checked:     %s\n", h->flags & MM_F_CHECKED ? "yes (mmcheck)" : "no");
  printf ("keys set:    %d", nkeys);
  for (int k = 0, first = 1; k < MMALLOC_KEYS; k++)
    if (h->keys[k])
      {
	printf ("%s%d", first ? " (" : " ", k);
	first = 0;
      }
  puts (nkeys ? ")" : "");
}

/* --- stats -------------------------------------------------------------- */

static int
cmd_stats (void)
{
  void *md = view ();
  struct mstats st = mmstats (md);
  struct mm_heapinfo hi;
  struct mm_desc *d = desc (md);
  mm_heapinfo (d, &hi);
  const struct mm_header *h = d->hdr;
  if (opt_json)
    {
      jopen (NULL, '{');
      jstr ("file", file_name);
      jnum ("bytes_total", st.bytes_total);
      jnum ("chunks_used", st.chunks_used);
      jnum ("bytes_used", st.bytes_used);
      jnum ("chunks_free", st.chunks_free);
      jnum ("bytes_free", st.bytes_free);
      jnum ("large_blocks", hi.large);
      jnum ("large_bytes", hi.large_bytes);
      jnum ("free_runs", hi.runs);
      jnum ("free_run_bytes", hi.run_bytes);
      jopen ("classes", '[');
      for (unsigned c = 0; c < MM_NCLASSES; c++)
	{
	  uint64_t slots = h->cls[c].nslots, fr = hi.cls_free[c];
	  if (!h->cls[c].nslabs)
	    continue;
	  jopen (NULL, '{');
	  jnum ("class", c);
	  jnum ("size", mm_classes[c].size);
	  jnum ("slabs", h->cls[c].nslabs);
	  jnum ("slots", slots);
	  jnum ("used", slots >= fr ? slots - fr : 0);
	  jnum ("free", fr);
	  jclose ('}');
	}
      jclose (']');
      jclose ('}');
    }
  else
    {
      printf ("bytes_total  %zu\nchunks_used  %zu\nbytes_used   %zu\n"
	      "chunks_free  %zu\nbytes_free   %zu\n\n",
	      st.bytes_total, st.chunks_used, st.bytes_used, st.chunks_free, st.bytes_free);
      printf ("large blocks %" PRIu64 " (%" PRIu64 " bytes)\n", hi.large, hi.large_bytes);
      printf ("free runs    %" PRIu64 " (%" PRIu64 " bytes)\n\n", hi.runs, hi.run_bytes);
      printf ("%5s %6s %6s %8s %8s %8s\n", "class", "size", "slabs", "slots", "used", "free");
      for (unsigned c = 0; c < MM_NCLASSES; c++)
	{
	  uint64_t slots = h->cls[c].nslots, fr = hi.cls_free[c];
	  if (h->cls[c].nslabs)
	    printf ("%5u %6" PRIu32 " %6" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 "\n",
		    c, mm_classes[c].size, h->cls[c].nslabs, slots,
		    slots >= fr ? slots - fr : 0, fr);
	}
    }
  mmalloc_detach (md);
  return 0;
}

/* --- keys --------------------------------------------------------------- */

#define KEY_BYTES 16		/* bytes of each key's block shown */

static void
hex_bytes (char *out, const unsigned char *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    sprintf (out + 2 * i, "%02x", p[i]);
  out[2 * n] = 0;
}

static int
cmd_keys (void)
{
  void *md = view ();
  struct find f = { .n = MMALLOC_KEYS };
  for (int k = 0; k < MMALLOC_KEYS; k++)
    f.addr[k] = (uintptr_t) mmalloc_getkey (md, k);
  int bad = find_blocks (md, &f) < 0;
  if (opt_json)
    jopen (NULL, '{'), jstr ("file", file_name), jopen ("keys", '[');
  for (int k = 0; k < MMALLOC_KEYS; k++)
    {
      if (!f.addr[k])
	continue;
      char hex[2 * KEY_BYTES + 1] = "";
      size_t off = f.addr[k] - f.start[k], n = 0;
      if (f.start[k])
	{
	  n = f.size[k] - off < KEY_BYTES ? f.size[k] - off : KEY_BYTES;
	  hex_bytes (hex, (const unsigned char *) f.addr[k], n);
	}
      if (opt_json)
	{
	  jopen (NULL, '{');
	  jnum ("key", (uint64_t) k);
	  jnum ("value", f.addr[k]);
	  if (f.start[k])
	    {
	      jnum ("block", f.start[k]);
	      jnum ("size", f.size[k]);
	      jnum ("offset", off);
	      jstr ("bytes", hex);
	    }
	  else
	    jnull ("block");
	  jclose ('}');
	}
      else if (f.start[k])
	{
	  printf ("key %2d: 0x%" PRIxPTR " ", k, f.addr[k]);
	  if (off)
	    printf ("(0x%" PRIxPTR " + %zu) ", f.start[k], off);
	  printf ("size %zu:", f.size[k]);
	  for (size_t i = 0; i < n; i++)
	    printf (" %.2s", hex + 2 * i);
	  fputs ("  |", stdout);
	  for (size_t i = 0; i < n; i++)
	    {
	      unsigned char c = ((const unsigned char *) f.addr[k])[i];
	      putchar (c >= 0x20 && c < 0x7f ? c : '.');
	    }
	  puts ("|");
	}
      else
	printf ("key %2d: 0x%" PRIxPTR " (in no allocated block)\n", k, f.addr[k]);
    }
  if (opt_json)
    jclose (']'), jbool ("complete", !bad), jclose ('}');
  int r = bad ? walk_failed () : 0;
  mmalloc_detach (md);
  return r;
}

/* --- walk --------------------------------------------------------------- */

#define HIST_BUCKETS 64		/* sizes 2^i .. 2^(i+1)-1 */

struct walk_out
{
  uint64_t count, bytes;
  uint64_t hcount[HIST_BUCKETS], hbytes[HIST_BUCKETS];
};

static int
walk_visit (void *ptr, size_t size, void *arg)
{
  struct walk_out *w = arg;
  w->count++;
  w->bytes += size;
  if (opt_histogram)
    {
      unsigned b = size ? 63 - (unsigned) __builtin_clzll (size) : 0;
      w->hcount[b]++;
      w->hbytes[b] += size;
    }
  else if (opt_json)
    {
      jopen (NULL, '{');
      jnum ("address", (uintptr_t) ptr);
      jnum ("size", size);
      jclose ('}');
    }
  else
    printf ("0x%" PRIxPTR " %zu\n", (uintptr_t) ptr, size);
  return 0;
}

/* A free run of pages, met by the walk of the page map.  */
static int
run_visit (struct mm_desc *d, uint64_t pg, uint64_t n, uint32_t kind, void *arg)
{
  struct walk_out *w = arg;
  if (kind != PM_FREE)
    return 0;
  uintptr_t a = (uintptr_t) (d->base + (pg << MM_PAGE_SHIFT));
  uint64_t bytes = n << MM_PAGE_SHIFT;
  w->count++;
  w->bytes += bytes;
  if (opt_json)
    {
      jopen (NULL, '{');
      jnum ("address", a);
      jnum ("size", bytes);
      jclose ('}');
    }
  else
    printf ("0x%" PRIxPTR " %" PRIu64 "\n", a, bytes);
  return 0;
}

static int
cmd_walk (void)
{
  void *md = view ();
  struct walk_out w;
  memset (&w, 0, sizeof w);
  if (opt_json)
    jopen (NULL, '{'), jstr ("file", file_name);
  int bad;
  if (opt_free)
    {
      if (opt_json)
	jopen ("runs", '[');
      struct mm_desc *d = desc (md);
      /* Free runs merge with their neighbours, so that every run of the
         page map is whole: walked strictly, as the check walks it.  */
      int e = mm_pages_walk (d, 1, run_visit, &w);
      bad = e != 0;
      errno = e;
    }
  else
    {
      if (opt_json && !opt_histogram)
	jopen ("blocks", '[');
      bad = mmalloc_walk (md, walk_visit, &w) < 0;
    }
  if (opt_json && !opt_histogram)
    jclose (']');
  if (opt_histogram)
    {
      if (opt_json)
	jopen ("histogram", '[');
      for (unsigned b = 0; b < HIST_BUCKETS; b++)
	if (w.hcount[b])
	  {
	    uint64_t lo = b ? (uint64_t) 1 << b : 0, hi = ((uint64_t) 2 << b) - 1;
	    if (opt_json)
	      {
		jopen (NULL, '{');
		jnum ("min", lo);
		jnum ("max", hi);
		jnum ("count", w.hcount[b]);
		jnum ("bytes", w.hbytes[b]);
		jclose ('}');
	      }
	    else
	      printf ("%10" PRIu64 " .. %-10" PRIu64 " %10" PRIu64 " blocks %14" PRIu64 " bytes\n",
		      lo, hi, w.hcount[b], w.hbytes[b]);
	  }
      if (opt_json)
	jclose (']');
    }
  if (opt_json)
    {
      jnum ("count", w.count);
      jnum ("bytes", w.bytes);
      jbool ("complete", !bad);
      jclose ('}');
    }
  else
    printf ("%" PRIu64 " %s, %" PRIu64 " bytes\n", w.count,
	    opt_free ? "free runs" : "blocks", w.bytes);
  int r = bad ? walk_failed () : 0;
  mmalloc_detach (md);
  return r;
}

/* --- check -------------------------------------------------------------- */

/* mmalloc_check writes its reports to stderr, one line each, with
   write(2): they are caught in a temporary file and listed.  */
static int
cmd_check (void)
{
  void *md = view ();
  struct mm_desc *d = desc (md);
  int dirty = d->hdr->state != MM_CLEAN;
  FILE *tmp = tmpfile ();
  if (!tmp)
    file_error (errno);
  fflush (stderr);
  int saved = dup (2);
  if (saved < 0 || dup2 (fileno (tmp), 2) < 0)
    file_error (errno);
  int problems = mmalloc_check (md);
  dup2 (saved, 2);
  close (saved);
  mmalloc_detach (md);
  rewind (tmp);
  char line[512];
  if (opt_json)
    {
      jopen (NULL, '{');
      jstr ("file", file_name);
      jnum ("problems", (uint64_t) problems);
      jbool ("clean", !dirty);
      jopen ("reports", '[');
    }
  while (fgets (line, sizeof line, tmp))
    {
      line[strcspn (line, "\n")] = 0;
      if (opt_json)
	jstr (NULL, line);
      else
	puts (line);
    }
  fclose (tmp);
  if (opt_json)
    jclose (']'), jclose ('}');
  else if (problems)
    printf ("%s: %d problem%s\n", file_name, problems, problems == 1 ? "" : "s");
  else
    printf ("%s: consistent%s\n", file_name,
	    dirty ? " (as recovery will make it: the file is not clean)" : "");
  return problems ? 1 : 0;
}

/* --- leaks and gc ------------------------------------------------------- */

#ifdef MMALLOC_GARBAGE_RECLAIM

struct leak_out
{
  uint64_t count, bytes;
};

static int
leak_visit (void *ptr, size_t size, void *arg)
{
  struct leak_out *l = arg;
  l->count++;
  l->bytes += size;
  if (opt_json)
    {
      jopen (NULL, '{');
      jnum ("address", (uintptr_t) ptr);
      jnum ("size", size);
      jclose ('}');
    }
  else
    printf ("unreachable: 0x%" PRIxPTR " %zu\n", (uintptr_t) ptr, size);
  return 0;
}

/* Report the blocks of MD no key reaches (and free them if RECLAIM).  */
static int
garbage (void *md, int reclaim)
{
  struct leak_out l = { 0, 0 };
  if (opt_json)
    jopen (NULL, '{'), jstr ("file", file_name), jopen ("blocks", '[');
  size_t n = mmalloc_garbage (md, reclaim ? MMALLOC_GARBAGE_RECLAIM : 0, leak_visit, &l);
  int e = errno;
  if (opt_json)
    {
      jclose (']');
      jnum ("count", l.count);
      jnum ("bytes", l.bytes);
      jbool ("freed", reclaim && n != (size_t) -1);
      jbool ("complete", n != (size_t) -1);
      jclose ('}');
    }
  else
    printf ("%" PRIu64 " unreachable block%s, %" PRIu64 " bytes%s\n", l.count,
	    l.count == 1 ? "" : "s", l.bytes, reclaim && l.count ? ", freed" : "");
  if (n == (size_t) -1)
    {
      errno = e;
      return walk_failed ();
    }
  return l.count ? 1 : 0;
}

#else
/* A library without the garbage detector: say so, find nothing.  */
static int
garbage (void *md, int reclaim)
{
  (void) md;
  (void) reclaim;
  fprintf (stderr, "%s: %s: leak detection is not available in this build\n", PROG, file_name);
  exit (2);
}
#endif

static int
cmd_leaks (void)
{
  void *md = view ();
  int r = garbage (md, 0);
  mmalloc_detach (md);
  return r;
}

static int
cmd_gc (void)
{
  if (opt_dry_run)
    return cmd_leaks ();
  int fd = open_file (O_RDWR);
  void *md = mmalloc_attach (fd, NULL);
  int e = errno;
  close (fd);
  if (!md)
    file_error (e);
  int r = garbage (md, 1);
  if (mmalloc_detach (md))
    file_error (errno);
  return r;
}

/* --- recover ------------------------------------------------------------ */

static int
cmd_recover (void)
{
  int fd = open_file (O_RDWR);
  struct mm_header h;
  struct stat st;
  read_header (fd, &h, &st);
  int dirty = h.state != MM_CLEAN;
  if (dirty)
    {				/* a read-write attach rebuilds it; detach marks it clean */
      void *md = mmalloc_attach (fd, NULL);
      if (!md)
	file_error (errno);
      if (mmalloc_detach (md))
	file_error (errno);
    }
  close (fd);
  if (opt_json)
    {
      jopen (NULL, '{');
      jstr ("file", file_name);
      jbool ("recovered", dirty);
      jbool ("clean", 1);
      jclose ('}');
    }
  else
    printf ("%s: %s\n", file_name, dirty ? "recovered" : "clean, nothing to recover");
  return 0;
}

/* --- dump --------------------------------------------------------------- */

/* A number: 0x... hexadecimal, else decimal; exit 2 if it is none.  */
static uint64_t
number (const char *what, const char *s)
{
  int base = 10;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
    base = 16, s += 2;
  char *end;
  errno = 0;
  unsigned long long v = strtoull (s, &end, base);
  if (!*s || *end || errno || *s == '-' || *s == '+')
    usage_error ("invalid %s: '%s'", what, s);
  return v;
}

static int
cmd_dump (const char *addr_s, const char *len_s)
{
  uint64_t addr = number ("address", addr_s);
  uint64_t len = len_s ? number ("length", len_s) : UINT64_MAX;
  void *md = view ();
  struct find f = { .n = 1 };
  f.addr[0] = (uintptr_t) addr;
  int bad = find_blocks (md, &f) < 0;
  if (!f.start[0])
    {
      if (bad)
	walk_failed ();
      fprintf (stderr, "%s: %s: 0x%" PRIx64 " is in no allocated block\n", PROG, file_name,
	       addr);
      mmalloc_detach (md);
      exit (2);
    }
  uint64_t room = f.start[0] + f.size[0] - addr;
  if (len > room)
    {
      if (len_s)
	fprintf (stderr, "%s: %s: the block ends %" PRIu64 " bytes after 0x%" PRIx64
		 ": %" PRIu64 " bytes shown\n", PROG, file_name, room, addr, room);
      len = room;
    }
  const unsigned char *p = (const unsigned char *) (uintptr_t) addr;
  if (opt_json)
    {
      jopen (NULL, '{');
      jstr ("file", file_name);
      jnum ("address", addr);
      jnum ("block", f.start[0]);
      jnum ("size", f.size[0]);
      jnum ("length", len);
      jkey ("hex");
      putchar ('"');
      for (uint64_t i = 0; i < len; i++)
	printf ("%02x", p[i]);
      putchar ('"');
      jclose ('}');
    }
  else
    {
      printf ("block 0x%" PRIxPTR ", %zu bytes\n", f.start[0], f.size[0]);
      for (uint64_t i = 0; i < len; i += 16)
	{
	  printf ("%016" PRIx64 " ", addr + i);
	  for (uint64_t j = i; j < i + 16; j++)
	    {
	      if (j == i + 8)
		putchar (' ');
	      if (j < len)
		printf (" %02x", p[j]);
	      else
		fputs ("   ", stdout);
	    }
	  fputs ("  |", stdout);
	  for (uint64_t j = i; j < i + 16 && j < len; j++)
	    putchar (p[j] >= 0x20 && p[j] < 0x7f ? p[j] : '.');
	  puts ("|");
	}
    }
  mmalloc_detach (md);
  return 0;
}

/* --- Command line ------------------------------------------------------- */

struct command
{
  const char *name;
  int min_args, max_args;	/* operands after FILE */
  const char *options;		/* the long options it takes, space separated */
};

static const struct command commands[] = {
  { "info", 0, 0, "" },
  { "stats", 0, 0, "" },
  { "keys", 0, 0, "" },
  { "walk", 0, 0, " --free --histogram " },
  { "check", 0, 0, "" },
  { "leaks", 0, 0, "" },
  { "gc", 0, 0, " --dry-run " },
  { "recover", 0, 0, "" },
  { "dump", 1, 2, "" },
};

/* Set the option ARG (a long option, or a short one's long name) if the
   command C takes it; 0 if it is unknown.  */
static int
set_option (const struct command *c, const char *arg)
{
  static const struct
  {
    char s;
    const char *l;
    int *flag;
  } opts[] = {
    { 'j', "--json", &opt_json },
    { 0, "--free", &opt_free },
    { 0, "--histogram", &opt_histogram },
    { 'n', "--dry-run", &opt_dry_run },
  };
  for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
    if (!strcmp (arg, opts[i].l) || (opts[i].s && arg[1] == opts[i].s && !arg[2]))
      {
	if (i && (!c || !strstr (c->options, opts[i].l)))
	  usage_error ("%s takes no option '%s'", c ? c->name : "mmtool", arg);
	*opts[i].flag = 1;
	return 1;
      }
  return 0;
}

int
main (int argc, char **argv)
{
  const struct command *cmd = NULL;
  const char *operands[4];
  int nops = 0, dashdash = 0;
  for (int i = 1; i < argc; i++)
    {
      const char *a = argv[i];
      if (!dashdash && a[0] == '-' && a[1])
	{
	  if (!strcmp (a, "--"))
	    dashdash = 1;
	  else if (!strcmp (a, "--help") || !strcmp (a, "-h"))
	    help ();
	  else if (!strcmp (a, "--version") || !strcmp (a, "-V"))
	    {
	      printf ("%s (mmalloc) %s\nheap file format %d\n", PROG, mmalloc_version (),
		      MM_FORMAT_VERSION);
	      return 0;
	    }
	  else if (!set_option (cmd, a))
	    usage_error ("unknown option '%s'", a);
	  continue;
	}
      if (!cmd)
	{
	  for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++)
	    if (!strcmp (a, commands[c].name))
	      cmd = &commands[c];
	  if (!cmd)
	    usage_error ("unknown command '%s'", a);
	  continue;
	}
      if (nops == 4)
	usage_error ("too many operands");
      operands[nops++] = a;
    }
  if (!cmd)
    usage_error ("no command given");
  if (nops < 1)
    usage_error ("%s: no FILE given", cmd->name);
  if (nops - 1 < cmd->min_args)
    usage_error ("%s: too few operands", cmd->name);
  if (nops - 1 > cmd->max_args)
    usage_error ("%s: too many operands", cmd->name);
  if (opt_free && opt_histogram)
    usage_error ("walk: --free and --histogram do not go together");
  file_name = operands[0];
  signal (SIGBUS, on_sigbus);
  int r;
  if (!strcmp (cmd->name, "info"))
    r = cmd_info ();
  else if (!strcmp (cmd->name, "stats"))
    r = cmd_stats ();
  else if (!strcmp (cmd->name, "keys"))
    r = cmd_keys ();
  else if (!strcmp (cmd->name, "walk"))
    r = cmd_walk ();
  else if (!strcmp (cmd->name, "check"))
    r = cmd_check ();
  else if (!strcmp (cmd->name, "leaks"))
    r = cmd_leaks ();
  else if (!strcmp (cmd->name, "gc"))
    r = cmd_gc ();
  else if (!strcmp (cmd->name, "recover"))
    r = cmd_recover ();
  else
    r = cmd_dump (operands[1], nops > 2 ? operands[2] : NULL);
  if (fflush (stdout) || ferror (stdout))
    {
      fprintf (stderr, "%s: write error: %s\n", PROG, strerror (errno));
      return 2;
    }
  return r;
}
