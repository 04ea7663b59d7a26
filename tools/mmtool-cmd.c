/* mmtool-cmd.c -- mmtool's commands: each reads the file through a view
   (or, recover and gc, attaches it for writing), writes text or JSON on
   stdout, and returns the exit status (see mmtool.c).  */

#include "mmtool.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- info --------------------------------------------------------------- */

static const char *
state_name (const struct mm_header *h, int writer)
{
  if (h->state == MM_CLEAN)
    return "clean";
  return writer > 0 ? "attached by a writer" : "needs recovery";
}

static void info_text (const struct mm_header *h, const struct stat *st, int writer, int err);

int
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

int
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

int
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

/* One block or run: a JSON object in the array being written, or a line
   of text, PREFIX first; SITE, the block's allocation site (the address of
   the code that allocated it, in the process that did), when it records
   one (not 0).  */
static void
put_block (const char *prefix, uint64_t addr, uint64_t size, uint64_t site)
{
  if (opt_json)
    {
      jopen (NULL, '{');
      jnum ("address", addr);
      jnum ("size", size);
      if (site)
	jnum ("site", site);
      jclose ('}');
    }
  else if (site)
    printf ("%s0x%" PRIx64 " %" PRIu64 " site 0x%" PRIx64 "\n", prefix, addr, size, site);
  else
    printf ("%s0x%" PRIx64 " %" PRIu64 "\n", prefix, addr, size);
}

/* The allocation site that the block PTR of MD records, 0 if none.  */
static uint64_t
site_of (void *md, const void *ptr)
{
  return (uint64_t) (uintptr_t) mmalloc_block_site (md, ptr);
}

/* --- walk --------------------------------------------------------------- */

#define HIST_BUCKETS 64		/* sizes 2^i .. 2^(i+1)-1 */

struct walk_out
{
  void *md;
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
  else
    put_block ("", (uintptr_t) ptr, size, site_of (w->md, ptr));
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
  put_block ("", a, bytes, 0);
  return 0;
}

int
cmd_walk (void)
{
  void *md = view ();
  struct walk_out w;
  memset (&w, 0, sizeof w);
  w.md = md;
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
int
cmd_check (void)
{
  void *md = view ();
  struct mm_desc *d = desc (md);
  int dirty = d->hdr->state != MM_CLEAN;
  struct stat st;
  int writer = dirty && stat (file_name, &st) == 0 ? writer_present (&st) : 0;
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
      jbool ("writer", writer > 0);
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
  else
    printf ("%s: %d problem%s%s\n", file_name, problems, problems == 1 ? "" : "s",
	    writer > 0 ? " (a writer has the file attached: what changes meanwhile"
	    " may look wrong)" : dirty ? " (as recovery will make it: the file is not"
	    " clean)" : "");
  return problems ? 1 : 0;
}

/* --- leaks and gc ------------------------------------------------------- */


struct leak_out
{
  void *md;
  uint64_t count, bytes;
};

static int
leak_visit (void *ptr, size_t size, void *arg)
{
  struct leak_out *l = arg;
  l->count++;
  l->bytes += size;
  put_block ("unreachable: ", (uintptr_t) ptr, size, site_of (l->md, ptr));
  return 0;
}

/* Report the blocks of MD no key reaches (and free them if RECLAIM).  */
static int
garbage (void *md, int reclaim)
{
  struct leak_out l = { md, 0, 0 };
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


int
cmd_leaks (void)
{
  void *md = view ();
  int r = garbage (md, 0);
  mmalloc_detach (md);
  return r;
}

int
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

int
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

int
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
