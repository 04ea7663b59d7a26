/* mmtrace-report.c -- find leaks, double frees and frees of unknown pointers
   in a trace written by mmtrace (see src/mmtrace.c for the format).

   The trace is read once, line by line.  Every address ever seen has one entry
   in an open-addressing hash table (linear probing, power-of-two size) that
   says whether the block there is live, freed, or in the middle of a realloc.
   Entries are never removed: a freed address must stay known so that a second
   free of it is told apart from a free of an address never allocated.

   A realloc is two lines, "< OLD" then "> NEW SIZE".  mmtrace writes each line
   with its own write(2), so in a program with several threads other lines may
   come between the two; pending reallocs are kept in a small list and a ">"
   goes with the pending "<" of the same address (a resize in place) or else
   with the oldest one.  */

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "mmtrace-report"

/* What the trace says about an address.  */
enum state
{
  ST_EMPTY = 0,			/* table slot not in use */
  ST_LIVE,			/* allocated and not freed */
  ST_FREED,			/* freed and not allocated again */
  ST_MOVING			/* live, named by a "<" whose ">" has not come yet */
};

/* One table entry: 32 bytes.  META holds the line number of the allocation
   (or of the realloc that gave the block its size) shifted left by two, and
   the state in the low two bits; SITE the allocation site's number (see
   sites below), 0 if the line named none.  */
struct entry
{
  uint64_t addr;
  uint64_t size;
  uint64_t meta;
  uint64_t site;
};

/* --- allocation sites --------------------------------------------------------

   The text after " @ " of a "+" or ">" line, each distinct one kept once:
   site N (from 1) is site_text[N].  Programs have few call sites that
   allocate, so a list searched through a small hash table will do.  */

static char **site_text;
static size_t nsites, site_cap;
static uint32_t *site_hash;	/* site numbers, open addressing */
static size_t site_hash_cap;	/* a power of two, or 0 */

static size_t
hash_text (const char *s)
{
  size_t h = 14695981039346656037ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char) *s) * 1099511628211ULL;
  return h;
}

static void out_of_memory (void);

static void
site_hash_put (uint32_t n)
{
  size_t j = hash_text (site_text[n]) & (site_hash_cap - 1);
  while (site_hash[j])
    j = (j + 1) & (site_hash_cap - 1);
  site_hash[j] = n;
}

/* The number of site S, a new one if S was not seen before.  */
static uint64_t
site_intern (const char *s)
{
  if (site_hash_cap)
    for (size_t j = hash_text (s) & (site_hash_cap - 1); site_hash[j];
	 j = (j + 1) & (site_hash_cap - 1))
      if (!strcmp (site_text[site_hash[j]], s))
	return site_hash[j];
  if (nsites + 1 >= site_cap)
    {
      size_t cap = site_cap ? site_cap * 2 : 64;
      char **t = realloc (site_text, cap * sizeof *t);
      if (!t)
	out_of_memory ();
      site_text = t;
      site_cap = cap;
    }
  if ((nsites + 2) * 2 > site_hash_cap)
    {
      free (site_hash);
      site_hash_cap = site_hash_cap ? site_hash_cap * 2 : 128;
      site_hash = calloc (site_hash_cap, sizeof *site_hash);
      if (!site_hash)
	out_of_memory ();
      for (uint32_t n = 1; n <= nsites; n++)
	site_hash_put (n);
    }
  char *copy = strdup (s);
  if (!copy)
    out_of_memory ();
  site_text[++nsites] = copy;
  site_hash_put ((uint32_t) nsites);
  return nsites;
}

static uint64_t cur_site;	/* the site of the line being handled */

static struct entry *table;
static size_t table_cap;	/* a power of two */
static size_t table_used;

static inline enum state
entry_state (const struct entry *e)
{
  return (enum state) (e->meta & 3);
}

static inline uint64_t
entry_line (const struct entry *e)
{
  return e->meta >> 2;
}

static inline void
entry_set (struct entry *e, enum state st, uint64_t line)
{
  e->meta = line << 2 | (uint64_t) st;
}

/* Block addresses are multiples of 16 or more: mix all bits into the low ones.  */
static inline size_t
hash_addr (uint64_t a)
{
  a ^= a >> 33;
  a *= 0xff51afd7ed558ccdULL;
  a ^= a >> 33;
  a *= 0xc4ceb9fe1a85ec53ULL;
  a ^= a >> 33;
  return (size_t) a;
}

static void
out_of_memory (void)
{
  fprintf (stderr, PROG ": out of memory\n");
  exit (2);
}

static void
table_init (size_t cap)
{
  table = calloc (cap, sizeof *table);
  if (!table)
    out_of_memory ();
  table_cap = cap;
  table_used = 0;
}

static void
table_grow (void)
{
  struct entry *old = table;
  size_t old_cap = table_cap;
  if (old_cap > SIZE_MAX / 2 / sizeof *table)
    out_of_memory ();
  table_init (old_cap * 2);
  for (size_t i = 0; i < old_cap; i++)
    if (entry_state (&old[i]) != ST_EMPTY)
      {
	size_t j = hash_addr (old[i].addr) & (table_cap - 1);
	while (entry_state (&table[j]) != ST_EMPTY)
	  j = (j + 1) & (table_cap - 1);
	table[j] = old[i];
	table_used++;
      }
  free (old);
}

/* The entry of ADDR; a new one in state ST_EMPTY if the address is new (the
   caller must then give it another state).  */
static struct entry *
table_find (uint64_t addr)
{
  if ((table_used + 1) * 4 > table_cap * 3)
    table_grow ();
  size_t j = hash_addr (addr) & (table_cap - 1);
  for (;;)
    {
      struct entry *e = &table[j];
      if (entry_state (e) == ST_EMPTY)
	{
	  e->addr = addr;
	  e->size = 0;
	  table_used++;
	  return e;
	}
      if (e->addr == addr)
	return e;
      j = (j + 1) & (table_cap - 1);
    }
}

/* --- pending reallocs ------------------------------------------------------ */

enum pend_kind
{
  P_HELD,			/* OLD was live: its entry is ST_MOVING */
  P_RELEASED,			/* OLD was live, and has been allocated again since */
  P_BAD				/* OLD was not live: already reported */
};

struct pending
{
  uint64_t old;
  uint64_t line;
  enum pend_kind kind;
};

static struct pending *pend;
static size_t npend, pend_cap;

static void
pend_push (uint64_t old, uint64_t line, enum pend_kind kind)
{
  if (npend == pend_cap)
    {
      size_t cap = pend_cap ? pend_cap * 2 : 16;
      struct pending *p = realloc (pend, cap * sizeof *p);
      if (!p)
	out_of_memory ();
      pend = p;
      pend_cap = cap;
    }
  pend[npend++] = (struct pending) { old, line, kind };
}

static void
pend_remove (size_t i)
{
  memmove (&pend[i], &pend[i + 1], (npend - i - 1) * sizeof *pend);
  npend--;
}

/* Index of the pending realloc still holding ADDR, or npend.  */
static size_t
pend_find_held (uint64_t addr)
{
  for (size_t i = 0; i < npend; i++)
    if (pend[i].old == addr && pend[i].kind == P_HELD)
      return i;
  return npend;
}

/* --- the report ------------------------------------------------------------ */

static uint64_t n_allocs, n_frees, n_double, n_unknown, n_dup;

static void
report_bad_free (const struct entry *e, uint64_t addr, uint64_t line)
{
  if (entry_state (e) == ST_EMPTY)
    {
      printf ("free of unknown pointer: 0x%" PRIx64 " (line %" PRIu64 ")\n", addr, line);
      n_unknown++;
    }
  else
    {
      printf ("double free: 0x%" PRIx64 " (line %" PRIu64 ")\n", addr, line);
      n_double++;
    }
}

/* A block of SIZE bytes is allocated at ADDR on LINE.  */
static void
do_alloc (uint64_t addr, uint64_t size, uint64_t line)
{
  struct entry *e = table_find (addr);
  switch (entry_state (e))
    {
    case ST_LIVE:
      /* The trace lost a free: report it, and let the new block replace the
         old one.  */
      printf ("allocation of live block: 0x%" PRIx64 " (line %" PRIu64
	      ", allocated at line %" PRIu64 ")\n", addr, line, entry_line (e));
      n_dup++;
      break;
    case ST_MOVING:
      {
	/* Another thread's realloc moved the block away and this thread got
	   the address before that realloc wrote its ">" line.  */
	size_t i = pend_find_held (addr);
	if (i < npend)
	  pend[i].kind = P_RELEASED;
	n_frees++;
	break;
      }
    case ST_EMPTY:
    case ST_FREED:
      break;
    }
  e->size = size;
  e->site = cur_site;
  entry_set (e, ST_LIVE, line);
  n_allocs++;
}

static void
do_free (uint64_t addr, uint64_t line)
{
  struct entry *e = table_find (addr);
  if (entry_state (e) == ST_LIVE)
    {
      entry_set (e, ST_FREED, entry_line (e));
      n_frees++;
      return;
    }
  report_bad_free (e, addr, line);
  if (entry_state (e) == ST_EMPTY)
    entry_set (e, ST_FREED, line);
}

/* "< OLD" on LINE.  */
static void
do_realloc_old (uint64_t old, uint64_t line)
{
  struct entry *e = table_find (old);
  if (entry_state (e) == ST_LIVE)
    {
      entry_set (e, ST_MOVING, entry_line (e));
      pend_push (old, line, P_HELD);
      return;
    }
  report_bad_free (e, old, line);
  if (entry_state (e) == ST_EMPTY)
    entry_set (e, ST_FREED, line);
  pend_push (old, line, P_BAD);
}

/* "> NEW SIZE" on LINE.  0, or -1 if no "<" is waiting for it.  */
static int
do_realloc_new (uint64_t addr, uint64_t size, uint64_t line)
{
  if (!npend)
    return -1;
  size_t i = pend_find_held (addr);
  if (i < npend)
    {
      /* Resized in place: the same block, with a new size.  */
      struct entry *e = table_find (addr);
      e->size = size;
      e->site = cur_site;
      entry_set (e, ST_LIVE, line);
      pend_remove (i);
      return 0;
    }
  struct pending p = pend[0];
  pend_remove (0);
  if (p.kind == P_HELD)
    {
      struct entry *e = table_find (p.old);
      entry_set (e, ST_FREED, entry_line (e));
      n_frees++;
    }
  do_alloc (addr, size, line);
  return 0;
}

/* --- parsing ----------------------------------------------------------------- */

/* Skip blanks at *P.  Returns the number skipped.  */
static size_t
skip_blanks (const char **p)
{
  size_t n = 0;
  while (**p == ' ' || **p == '\t')
    (*p)++, n++;
  return n;
}

/* Parse "0x" and hex digits at *P into *V.  0 on success, -1 if malformed.  */
static int
parse_hex (const char **p, uint64_t *v)
{
  const char *s = *p;
  if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
    return -1;
  s += 2;
  uint64_t x = 0;
  const char *digits = s;
  for (;; s++)
    {
      unsigned d;
      if (*s >= '0' && *s <= '9')
	d = (unsigned) (*s - '0');
      else if (*s >= 'a' && *s <= 'f')
	d = (unsigned) (*s - 'a' + 10);
      else if (*s >= 'A' && *s <= 'F')
	d = (unsigned) (*s - 'A' + 10);
      else
	break;
      if (x >> 60)
	return -1;		/* more than 64 bits */
      x = x << 4 | d;
    }
  if (s == digits)
    return -1;
  *p = s;
  *v = x;
  return 0;
}

/* Handle one line, LEN bytes at BUF without the newline; BUF has room for
   one more byte.  0, or -1 with *WHY set if the line is malformed.  */
static int
handle_line (char *buf, size_t len, uint64_t line, const char **why)
{
  while (len && (buf[len - 1] == '\r' || buf[len - 1] == ' ' || buf[len - 1] == '\t'))
    len--;
  if (len == 0)
    return 0;			/* blank lines are allowed */
  if (memchr (buf, '\0', len))
    {
      *why = "NUL byte in line";
      return -1;
    }
  char op = buf[0];
  if (op == '=')
    return 0;			/* "= Start" and other markers */
  if (op != '+' && op != '-' && op != '<' && op != '>')
    {
      *why = "unknown operation";
      return -1;
    }
  int want_size = op == '+' || op == '>';
  buf[len] = '\0';
  const char *p = buf + 1;
  uint64_t addr, size = 0;
  if (!skip_blanks (&p) || parse_hex (&p, &addr))
    {
      *why = "bad address";
      return -1;
    }
  if (want_size && (!skip_blanks (&p) || parse_hex (&p, &size)))
    {
      *why = "bad size";
      return -1;
    }
  cur_site = 0;
  if (want_size && p[0] == ' ' && p[1] == '@' && p[2] == ' ' && p[3])
    {
      cur_site = site_intern (p + 3);
      p += strlen (p);
    }
  if (*p)
    {
      *why = "unexpected text at end";
      return -1;
    }
  switch (op)
    {
    case '+':
      do_alloc (addr, size, line);
      break;
    case '-':
      do_free (addr, line);
      break;
    case '<':
      do_realloc_old (addr, line);
      break;
    case '>':
      if (do_realloc_new (addr, size, line))
	{
	  *why = "'>' without a '<' before it";
	  return -1;
	}
      break;
    }
  return 0;
}

/* --- leaks and main -------------------------------------------------------- */

struct group
{
  uint64_t site, count, bytes;
};

static int
by_bytes (const void *a, const void *b)
{
  const struct group *x = a, *y = b;
  if (x->bytes != y->bytes)
    return x->bytes < y->bytes ? 1 : -1;
  return (x->site > y->site) - (x->site < y->site);
}

/* The N leaks grouped by allocation site, most bytes first, when any leak
   has a site.  */
static void
print_sites (struct entry **leaks, size_t n)
{
  struct group *g = calloc (nsites + 1, sizeof *g);
  if (!g)
    out_of_memory ();
  size_t with = 0;
  for (size_t i = 0; i < n; i++)
    {
      struct group *s = &g[leaks[i]->site];
      s->site = leaks[i]->site;
      s->count++;
      s->bytes += leaks[i]->size;
      with += leaks[i]->site != 0;
    }
  if (with)
    {
      qsort (g, nsites + 1, sizeof *g, by_bytes);
      puts ("leaks by allocation site, most bytes first:");
      for (size_t i = 0; i <= nsites; i++)
	if (g[i].count)
	  printf ("  %" PRIu64 " leaks, %" PRIu64 " bytes: %s\n", g[i].count, g[i].bytes,
		  g[i].site ? site_text[g[i].site] : "(no site)");
    }
  free (g);
}

static int
by_line (const void *a, const void *b)
{
  uint64_t x = entry_line (*(const struct entry *const *) a);
  uint64_t y = entry_line (*(const struct entry *const *) b);
  return (x > y) - (x < y);
}

static void
usage (void)
{
  fputs (
	   "Usage: " PROG " [FILE]\n"
	   "Check a trace written by mmtrace (MMALLOC_TRACE=FILE) for leaks, double\n"
	   "frees and frees of unknown pointers.  Reads standard input if FILE is\n"
	   "missing or \"-\".\n"
	   "\n"
	   "Trace lines: \"= Start\", \"+ 0xADDR 0xSIZE\" (allocation), \"- 0xADDR\" (free),\n"
	   "\"< 0xOLD\" then \"> 0xNEW 0xSIZE\" (realloc; OLD == NEW: resized in place);\n"
	   "\"+\" and \">\" may end with \" @ SITE\", the allocation site.\n"
	   "\n"
	   "Output, one line per problem in the order found:\n"
	   "  double free: 0xADDR (line N)\n"
	   "  free of unknown pointer: 0xADDR (line N)\n"
	   "  allocation of live block: 0xADDR (line N, allocated at line M)\n"
	   "then the blocks never freed, by line of allocation (or of their last realloc):\n"
	   "  leak: 0xADDR 0xSIZE (line N)[ @ SITE]\n"
	   "then, when leaks have sites, the leaks grouped by site, most bytes first:\n"
	   "  N leaks, N bytes: SITE\n"
	   "and a summary:\n"
	   "  N allocations, N frees, N leaks (N bytes), N double frees, N unknown frees\n"
	   "(followed by \", N allocations of live blocks\" when there were any).\n"
	   "\n"
	   "Exit status: 0 no problem, 1 problems found, 2 usage error, unreadable\n"
	   "file or malformed line.\n", stdout);
}

static int
usage_error (void)
{
  fprintf (stderr, "Usage: " PROG " [FILE]   (" PROG " --help for more)\n");
  return 2;
}

int
main (int argc, char **argv)
{
  const char *name = NULL;
  int opts_done = 0;
  for (int i = 1; i < argc; i++)
    {
      const char *a = argv[i];
      if (!opts_done && (!strcmp (a, "--help") || !strcmp (a, "-h")))
	{
	  usage ();
	  return fflush (stdout) || ferror (stdout) ? 2 : 0;
	}
      if (!opts_done && !strcmp (a, "--"))
	{
	  opts_done = 1;
	  continue;
	}
      if (!opts_done && a[0] == '-' && a[1])
	{
	  fprintf (stderr, PROG ": unknown option '%s'\n", a);
	  return usage_error ();
	}
      if (name)
	{
	  fprintf (stderr, PROG ": more than one file given\n");
	  return usage_error ();
	}
      name = a;
    }

  FILE *in = stdin;
  const char *shown = "(standard input)";
  if (name && strcmp (name, "-"))
    {
      in = fopen (name, "r");
      if (!in)
	{
	  fprintf (stderr, PROG ": %s: %s\n", name, strerror (errno));
	  return 2;
	}
      shown = name;
    }
  static char inbuf[1 << 16];
  setvbuf (in, inbuf, _IOFBF, sizeof inbuf);

  table_init ((size_t) 1 << 16);
  char *buf = NULL;
  size_t bufsize = 0;
  uint64_t line = 0;
  ssize_t n;
  int bad = 0;
  while (!bad && (n = getline (&buf, &bufsize, in)) >= 0)
    {
      line++;
      size_t len = (size_t) n;
      if (len && buf[len - 1] == '\n')
	len--;
      const char *why = NULL;
      if (handle_line (buf, len, line, &why))
	{
	  fflush (stdout);
	  fprintf (stderr, PROG ": %s:%" PRIu64 ": malformed line (%s)\n", shown, line, why);
	  bad = 1;
	}
    }
  if (!bad && ferror (in))
    {
      int err = errno;
      fflush (stdout);
      fprintf (stderr, PROG ": %s: read error: %s\n", shown, strerror (err));
      bad = 1;
    }
  free (buf);
  if (in != stdin)
    fclose (in);
  if (bad)
    {
      free (table);
      free (pend);
      return 2;
    }

  /* A "<" whose ">" never came: the trace was cut short.  The block is taken
     to be still where it was.  */
  for (size_t i = 0; i < npend; i++)
    {
      if (pend[i].kind != P_HELD)
	continue;
      fprintf (stderr, PROG ": %s:%" PRIu64 ": warning: realloc of 0x%" PRIx64
	       " has no '>' line (trace cut short?)\n", shown, pend[i].line, pend[i].old);
      struct entry *e = table_find (pend[i].old);
      entry_set (e, ST_LIVE, entry_line (e));
    }

  /* Leaks, by line.  */
  size_t nleaks = 0;
  for (size_t i = 0; i < table_cap; i++)
    if (entry_state (&table[i]) == ST_LIVE)
      nleaks++;
  struct entry **leaks = malloc ((nleaks ? nleaks : 1) * sizeof *leaks);
  if (!leaks)
    out_of_memory ();
  size_t k = 0;
  uint64_t leaked_bytes = 0;
  for (size_t i = 0; i < table_cap; i++)
    if (entry_state (&table[i]) == ST_LIVE)
      {
	leaks[k++] = &table[i];
	leaked_bytes += table[i].size;
      }
  qsort (leaks, nleaks, sizeof *leaks, by_line);
  for (size_t i = 0; i < nleaks; i++)
    if (leaks[i]->site)
      printf ("leak: 0x%" PRIx64 " 0x%" PRIx64 " (line %" PRIu64 ") @ %s\n",
	      leaks[i]->addr, leaks[i]->size, entry_line (leaks[i]), site_text[leaks[i]->site]);
    else
      printf ("leak: 0x%" PRIx64 " 0x%" PRIx64 " (line %" PRIu64 ")\n",
	      leaks[i]->addr, leaks[i]->size, entry_line (leaks[i]));
  print_sites (leaks, nleaks);

  printf ("%" PRIu64 " allocations, %" PRIu64 " frees, %zu leaks (%" PRIu64
	  " bytes), %" PRIu64 " double frees, %" PRIu64 " unknown frees",
	  n_allocs, n_frees, nleaks, leaked_bytes, n_double, n_unknown);
  if (n_dup)
    printf (", %" PRIu64 " allocations of live blocks", n_dup);
  putchar ('\n');
  free (leaks);
  free (table);
  free (pend);
  for (size_t i = 1; i <= nsites; i++)
    free (site_text[i]);
  free (site_text);
  free (site_hash);

  if (fflush (stdout) || ferror (stdout))
    {
      fprintf (stderr, PROG ": write error: %s\n", strerror (errno));
      return 2;
    }
  return nleaks || n_double || n_unknown || n_dup ? 1 : 0;
}
