/* wordindex.c -- a word index kept in an mmalloc heap file.

   `wordindex build HEAPFILE' makes up a text (the same one every time), then
   builds in a new heap file a hash table that maps each word to the lines it
   appears on.  Every node -- the table, the words, their posting lists and the
   lines of text -- is allocated with mmalloc in the heap, and the nodes point
   to each other with plain C pointers.  The table's root is root key 0.

   `wordindex query HEAPFILE WORD...' is another process: it attaches the file
   read-only, finds the root with mmalloc_getkey and follows the same pointers.
   That works because the heap is mapped at the address it was built at.

   `wordindex stats HEAPFILE' prints the heap's statistics and the most
   frequent words.  With MMALLOC_TRACE=FILE in the environment, every
   allocation is traced to FILE for mmtrace-report (which lists the blocks of
   the index as not freed: they are meant to stay in the file).  */

#include <mmalloc.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define NLINES 4000		/* lines of generated text */
#define NBUCKETS 512		/* hash table size (a power of two) */
#define SEED 20240611u		/* the text depends on nothing else */
#define ROOT_MAGIC 0x315844494452574fULL /* "OWRDIDX1" */

/* --- the data structure, all of it inside the heap --------------------------- */

struct word
{
  struct word *next;		/* next word in the same bucket */
  uint64_t count;		/* occurrences in the text */
  uint64_t nlines;		/* entries used in LINES */
  uint64_t cap;			/* entries allocated in LINES */
  uint32_t *lines;		/* line numbers (1-based), ascending, no repeats */
  char text[];			/* the word, lower case */
};

struct root
{
  uint64_t magic;
  uint64_t nbuckets;
  struct word **buckets;
  uint64_t nwords;		/* distinct words */
  uint64_t npostings;		/* (word, line) pairs */
  uint64_t noccur;		/* words in the text */
  uint64_t nlines;
  char **lines;			/* lines[i]: the text of line i + 1 */
};

/* --- helpers ------------------------------------------------------------------ */

static const char *prog = "wordindex";

static void
die (const char *what, int err)
{
  fprintf (stderr, "%s: %s: %s\n", prog, what, mmalloc_strerror (err));
  exit (1);
}

static uint32_t
hash_word (const char *s)
{
  uint32_t h = 2166136261u;	/* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char) *s) * 16777619u;
  return h;
}

static uint64_t
mix (uint64_t h, const void *p, size_t n)
{
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}

/* A checksum of everything reachable from ROOT: built and queried alike.  */
static uint64_t
checksum (const struct root *r)
{
  uint64_t h = 14695981039346656037ULL;
  for (uint64_t b = 0; b < r->nbuckets; b++)
    for (const struct word *w = r->buckets[b]; w; w = w->next)
      {
	h = mix (h, w->text, strlen (w->text) + 1);
	h = mix (h, &w->count, sizeof w->count);
	h = mix (h, w->lines, w->nlines * sizeof *w->lines);
      }
  for (uint64_t i = 0; i < r->nlines; i++)
    h = mix (h, r->lines[i], strlen (r->lines[i]) + 1);
  return h;
}

/* The address at which the file open as FD is mapped, from /proc/self/maps
   (the API has no call for it), or NULL.  */
static void *
mapped_base (struct stat *st)
{
  FILE *f = fopen ("/proc/self/maps", "r");
  if (!f)
    return NULL;
  char line[512];
  void *base = NULL;
  while (!base && fgets (line, sizeof line, f))
    {
      unsigned long start, end, off, ino;
      unsigned maj, mnr;
      char perms[8];
      if (sscanf (line, "%lx-%lx %7s %lx %x:%x %lu", &start, &end, perms, &off,
		  &maj, &mnr, &ino) == 7
	  && off == 0 && ino == (unsigned long) st->st_ino
	  && maj == major (st->st_dev) && mnr == minor (st->st_dev))
	base = (void *) start;
    }
  fclose (f);
  return base;
}

static void
print_stats (void *md)
{
  struct mstats s = mmstats (md);
  printf ("mmstats: bytes_total %zu, chunks_used %zu, bytes_used %zu,\n"
	  "         chunks_free %zu, bytes_free %zu\n",
	  s.bytes_total, s.chunks_used, s.bytes_used, s.chunks_free, s.bytes_free);
}

static struct word *
lookup (const struct root *r, const char *text)
{
  struct word *w = r->buckets[hash_word (text) & (r->nbuckets - 1)];
  while (w && strcmp (w->text, text))
    w = w->next;
  return w;
}

/* --- the text ----------------------------------------------------------------- */

static uint64_t rng = SEED;

static uint32_t
rnd (uint32_t n)
{
  rng ^= rng << 13;		/* xorshift64 */
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t) ((rng >> 11) % n);
}

/* An element of LIST, the first ones more often than the last.  */
static const char *
pick (const char *const *list, uint32_t n)
{
  uint32_t a = rnd (n), b = rnd (n);
  return list[a < b ? a : b];
}

#define PICK(list) pick (list, sizeof list / sizeof list[0])

static const char *const nouns[] = {
  "river", "lantern", "miller", "fox", "garden", "ship", "clock", "window",
  "baker", "storm", "bridge", "owl", "letter", "road", "harbor", "candle",
  "meadow", "tower", "kettle", "sailor", "orchard", "bell", "wagon", "mountain",
  "library", "cat", "forest", "map", "island", "teacher", "well", "ferry",
};
static const char *const adjectives[] = {
  "old", "quiet", "bright", "small", "hidden", "patient", "broken", "golden",
  "narrow", "cold", "gentle", "distant", "crooked", "silver", "busy", "empty",
};
static const char *const verbs[] = {
  "watched", "followed", "found", "carried", "remembered", "crossed", "lit",
  "painted", "counted", "mended", "passed", "guarded", "opened", "answered",
};
static const char *const places[] = {
  "near", "behind", "under", "beyond", "beside", "across", "above", "inside",
};
static const char *const times[] = {
  "slowly", "again", "at dawn", "all night", "in the rain", "once more",
  "without a sound", "before winter",
};

/* The next line of the text, into BUF.  */
static void
make_line (char *buf, size_t size)
{
  switch (rnd (4))
    {
    case 0:
      snprintf (buf, size, "The %s %s %s the %s %s the %s.", PICK (adjectives),
		PICK (nouns), PICK (verbs), PICK (nouns), PICK (places), PICK (nouns));
      break;
    case 1:
      snprintf (buf, size, "A %s %s the %s %s %s.", PICK (nouns), PICK (verbs),
		PICK (adjectives), PICK (nouns), PICK (times));
      break;
    case 2:
      snprintf (buf, size, "%s, the %s %s a %s %s the %s.", PICK (times),
		PICK (nouns), PICK (verbs), PICK (nouns), PICK (places), PICK (nouns));
      break;
    default:
      snprintf (buf, size, "The %s and the %s %s the %s %s.", PICK (nouns),
		PICK (nouns), PICK (verbs), PICK (adjectives), PICK (nouns));
      break;
    }
  buf[0] = (char) toupper ((unsigned char) buf[0]);
}

/* --- build -------------------------------------------------------------------- */

static void *
xmmalloc (void *md, size_t n)
{
  void *p = mmalloc (md, n);
  if (!p)
    die ("mmalloc", mmalloc_errno (md));
  return p;
}

static void
add_posting (void *md, struct root *r, const char *text, uint32_t line)
{
  struct word **head = &r->buckets[hash_word (text) & (r->nbuckets - 1)];
  struct word *w = *head;
  while (w && strcmp (w->text, text))
    w = w->next;
  if (!w)
    {
      size_t len = strlen (text);
      w = xmmalloc (md, sizeof *w + len + 1);
      memcpy (w->text, text, len + 1);
      w->count = w->nlines = w->cap = 0;
      w->lines = NULL;
      w->next = *head;
      *head = w;
      r->nwords++;
    }
  w->count++;
  r->noccur++;
  if (w->nlines && w->lines[w->nlines - 1] == line)
    return;			/* already listed for this line */
  if (w->nlines == w->cap)
    {
      uint64_t cap = w->cap ? w->cap * 2 : 4;
      uint32_t *p = mrealloc (md, w->lines, cap * sizeof *p);
      if (!p)
	die ("mrealloc", mmalloc_errno (md));
      w->lines = p;
      w->cap = cap;
    }
  w->lines[w->nlines++] = line;
  r->npostings++;
}

static int
cmd_build (const char *file)
{
  /* A new file every time; a process still using an old one keeps it.  */
  if (unlink (file) && errno != ENOENT)
    die (file, errno);
  int fd = open (file, O_RDWR | O_CREAT | O_EXCL, 0644);
  if (fd < 0)
    die (file, errno);
  struct stat st;
  if (fstat (fd, &st))
    die (file, errno);
  void *md = mmalloc_attach (fd, NULL);
  if (!md)
    die ("mmalloc_attach", errno);
  close (fd);			/* the library keeps its own descriptor */

  struct root *r = mcalloc (md, 1, sizeof *r);
  if (!r)
    die ("mcalloc", mmalloc_errno (md));
  r->magic = ROOT_MAGIC;
  r->nbuckets = NBUCKETS;
  r->buckets = mcalloc (md, NBUCKETS, sizeof *r->buckets);
  if (!r->buckets)
    die ("mcalloc", mmalloc_errno (md));

  uint64_t cap = 0;
  for (uint32_t n = 1; n <= NLINES; n++)
    {
      char buf[256];
      make_line (buf, sizeof buf);
      if (r->nlines == cap)
	{
	  cap = cap ? cap * 2 : 64;
	  char **p = mrealloc (md, r->lines, cap * sizeof *p);
	  if (!p)
	    die ("mrealloc", mmalloc_errno (md));
	  r->lines = p;
	}
      size_t len = strlen (buf);
      r->lines[r->nlines] = memcpy (xmmalloc (md, len + 1), buf, len + 1);
      r->nlines++;
      for (char *s = buf; *s;)
	{
	  if (!isalpha ((unsigned char) *s))
	    {
	      s++;
	      continue;
	    }
	  char w[64];
	  size_t k = 0;
	  for (; isalpha ((unsigned char) *s); s++)
	    if (k < sizeof w - 1)
	      w[k++] = (char) tolower ((unsigned char) *s);
	  w[k] = '\0';
	  add_posting (md, r, w, n);
	}
    }
  if (!mmalloc_setkey (md, 0, r))
    die ("mmalloc_setkey", mmalloc_errno (md));

  printf ("process %ld built the index in %s:\n", (long) getpid (), file);
  printf ("  %" PRIu64 " lines, %" PRIu64 " words, %" PRIu64 " distinct words, %"
	  PRIu64 " postings\n", r->nlines, r->noccur, r->nwords, r->npostings);
  void *base = mapped_base (&st);
  if (base)
    printf ("heap base: %p\n", base);
  printf ("root (key 0): %p\n", (void *) r);
  printf ("checksum of the index: %016" PRIx64 "\n", checksum (r));
  print_stats (md);
  if (mmalloc_detach (md))
    die ("mmalloc_detach", mmalloc_errno (md));
  return 0;
}

/* --- query and stats ------------------------------------------------------------ */

/* Attach FILE read-only and find the root; *BASE is where it is mapped.  */
static void *
open_index (const char *file, struct root **rootp, void **base)
{
  int fd = open (file, O_RDONLY);
  if (fd < 0)
    die (file, errno);
  struct stat st;
  if (fstat (fd, &st))
    die (file, errno);
  void *md = mmalloc_attach (fd, NULL);
  if (!md)
    die ("mmalloc_attach", errno);
  close (fd);
  struct root *r = mmalloc_getkey (md, 0);
  if (!r || r->magic != ROOT_MAGIC)
    {
      fprintf (stderr, "%s: %s: no word index under key 0\n", prog, file);
      exit (1);
    }
  *rootp = r;
  *base = mapped_base (&st);
  return md;
}

static int
finish (void *md)
{
  print_stats (md);
  int problems = mmalloc_check (md);
  printf ("mmalloc_check: %d problem%s\n", problems, problems == 1 ? "" : "s");
  if (mmalloc_detach (md))
    die ("mmalloc_detach", mmalloc_errno (md));
  return problems ? 1 : 0;
}

static int
cmd_query (const char *file, char **words, int nwords)
{
  struct root *r;
  void *base;
  void *md = open_index (file, &r, &base);
  printf ("process %ld attached %s read-only:\n", (long) getpid (), file);
  if (base)
    printf ("heap base: %p\n", base);
  printf ("root (key 0): %p\n", (void *) r);
  printf ("checksum of the index: %016" PRIx64 "\n", checksum (r));
  for (int i = 0; i < nwords; i++)
    {
      char w[64];
      size_t k = 0;
      for (const char *s = words[i]; *s && k < sizeof w - 1; s++)
	w[k++] = (char) tolower ((unsigned char) *s);
      w[k] = '\0';
      const struct word *e = lookup (r, w);
      if (!e)
	{
	  printf ("  %-8s not in the text\n", w);
	  continue;
	}
      printf ("  %-8s %" PRIu64 " times on %" PRIu64 " lines; lines", w, e->count,
	      e->nlines);
      for (uint64_t j = 0; j < e->nlines && j < 5; j++)
	printf (" %" PRIu32, e->lines[j]);
      printf ("%s\n", e->nlines > 5 ? " ..." : "");
      printf ("           line %" PRIu32 ": %s\n", e->lines[0], r->lines[e->lines[0] - 1]);
    }
  return finish (md);
}

static int
by_count (const void *a, const void *b)
{
  const struct word *x = *(const struct word *const *) a;
  const struct word *y = *(const struct word *const *) b;
  if (x->count != y->count)
    return x->count < y->count ? 1 : -1;
  return strcmp (x->text, y->text);
}

static int
cmd_stats (const char *file)
{
  struct root *r;
  void *base;
  void *md = open_index (file, &r, &base);
  printf ("%s: %" PRIu64 " lines, %" PRIu64 " words, %" PRIu64 " distinct words, %"
	  PRIu64 " postings\n", file, r->nlines, r->noccur, r->nwords, r->npostings);
  if (base)
    printf ("heap base: %p\n", base);
  printf ("root (key 0): %p\n", (void *) r);
  const struct word **all = malloc (r->nwords * sizeof *all);
  if (!all)
    die ("malloc", ENOMEM);
  size_t n = 0;
  for (uint64_t b = 0; b < r->nbuckets; b++)
    for (const struct word *w = r->buckets[b]; w && n < r->nwords; w = w->next)
      all[n++] = w;
  qsort (all, n, sizeof *all, by_count);
  printf ("most frequent:");
  for (size_t i = 0; i < n && i < 8; i++)
    printf (" %s (%" PRIu64 ")", all[i]->text, all[i]->count);
  printf ("\n");
  free (all);
  return finish (md);
}

static void
usage (FILE *f)
{
  fprintf (f, "Usage: %s build HEAPFILE       make up a text and index it in a new heap file\n"
	   "       %s query HEAPFILE WORD...  look words up in another process\n"
	   "       %s stats HEAPFILE          statistics and the most frequent words\n",
	   prog, prog, prog);
}

int
main (int argc, char **argv)
{
  mmtrace ();			/* MMALLOC_TRACE=FILE: trace for tools/mmtrace-report */
  if (argc >= 2 && (!strcmp (argv[1], "--help") || !strcmp (argv[1], "-h")))
    {
      usage (stdout);
      return 0;
    }
  if (argc == 3 && !strcmp (argv[1], "build"))
    return cmd_build (argv[2]);
  if (argc >= 4 && !strcmp (argv[1], "query"))
    return cmd_query (argv[2], argv + 3, argc - 3);
  if (argc == 3 && !strcmp (argv[1], "stats"))
    return cmd_stats (argv[2]);
  usage (stderr);
  return 2;
}
