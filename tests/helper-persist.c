/* helper-persist.c -- one process's turn at a persistent heap, for test-persist.

   helper-persist build PATH        make a heap file holding a 1000-node list, a
                                    hash table of strings and a big block
   helper-persist verify PATH [GEN] check that the heap holds generation GEN
                                    (default: the one it says), then mutate it
                                    into the next generation and check again
   helper-persist reattach PATH K   check the heap, count one more attach (K
                                    before), print a stack address (for ASLR)

   Silent and exit 0 on success; on failure one line on stderr and exit 1.  The
   keys hold absolute addresses: 0 the root, 1 the node with idx 500 (or NULL
   once it is gone), 2 the list's tail, 3 the hash table's bucket array.  */

#include "mmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROOT_MAGIC 0x5045525349535431ULL	/* "PERSIST1" */
#define NODES 1000
#define ADDED 500		/* nodes appended by each mutation */
#define NBUCKETS 64
#define NENTRIES 200
#define BIG_BASE 100000
#define BIG_STEP 30000

struct node
{
  struct node *next;
  uint64_t idx;
  uint64_t sum;			/* node_sum (idx) */
  char *name;			/* name_of (idx) */
};

struct entry
{
  struct entry *next;
  uint64_t i;
  char *key;			/* "key-I" */
  char *val;			/* val_of (I, GEN) */
};

struct root
{
  uint64_t magic;
  uint64_t gen;			/* mutations so far */
  uint64_t reattaches;		/* reattach runs so far */
  struct node *head, *tail;
  uint64_t count;		/* nodes in the list */
  uint64_t next_idx;		/* idx of the next node appended */
  struct entry **buckets;	/* NBUCKETS chains */
  unsigned char *big;		/* big_size (GEN) bytes of big_byte (I, GEN) */
};

static const char *path;

static void
die (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fprintf (stderr, "helper-persist: %s: ", path);
  vfprintf (stderr, fmt, ap);
  fputc ('\n', stderr);
  va_end (ap);
  exit (1);
}

static uint64_t
node_sum (uint64_t idx)
{
  uint64_t x = idx * 0x9e3779b97f4a7c15ULL + 0x1234567;
  return x ^ (x >> 31);
}

/* The name of node IDX: its number, then letters, 8 to 57 bytes in all, so the
   names fall in several size classes.  */
static void
name_of (uint64_t idx, char *buf, size_t len)
{
  size_t n = 8 + (size_t) (idx % 50);
  if (n >= len)
    n = len - 1;
  int k = snprintf (buf, len, "node-%" PRIu64 "-", idx);
  for (size_t i = (size_t) k; i < n; i++)
    buf[i] = (char) ('a' + (idx + i) % 26);
  buf[n > (size_t) k ? n : (size_t) k] = 0;
}

static void
val_of (uint64_t i, uint64_t gen, char *buf, size_t len)
{
  int k = snprintf (buf, len, "value-%" PRIu64 "-gen-%" PRIu64 "-", i, gen);
  size_t n = (size_t) k + (size_t) (gen * 37 + i) % 300;
  if (n >= len)
    n = len - 1;
  for (size_t j = (size_t) k; j < n; j++)
    buf[j] = (char) ('A' + (i * 7 + j + gen) % 26);
  buf[n] = 0;
}

static size_t
big_size (uint64_t gen)
{
  return BIG_BASE + (size_t) gen * BIG_STEP;
}

static unsigned char
big_byte (size_t i, uint64_t gen)
{
  return (unsigned char) (i * 7 + gen * 13 + (i >> 12));
}

static unsigned
hash (const char *s)
{
  unsigned h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char) *s) * 16777619u;
  return h % NBUCKETS;
}

static char *
heap_strdup (void *md, const char *s)
{
  char *p = mmalloc (md, strlen (s) + 1);
  if (!p)
    die ("mmalloc: %s", strerror (errno));
  return strcpy (p, s);
}

static void *
xmalloc (void *md, size_t n)
{
  void *p = mmalloc (md, n);
  if (!p)
    die ("mmalloc (%zu): %s", n, strerror (errno));
  return p;
}

static void *
attach (int oflags)
{
  int fd = open (path, oflags, 0600);
  if (fd < 0)
    die ("open: %s", strerror (errno));
  void *md = mmalloc_attach (fd, NULL);
  if (!md)
    die ("attach: %s", mmalloc_strerror (errno));
  close (fd);			/* the library keeps its own */
  return md;
}

static void
detach (void *md)
{
  if (mmalloc_detach (md) != NULL)
    die ("detach failed: %s", mmalloc_strerror (errno));
}

static void
check_heap (void *md, const char *when)
{
  int n = mmalloc_check (md);
  if (n)
    die ("mmalloc_check %s: %d problems", when, n);
}

static void
append_node (void *md, struct root *r)
{
  char buf[64];
  struct node *n = xmalloc (md, sizeof *n);
  n->next = NULL;
  n->idx = r->next_idx++;
  n->sum = node_sum (n->idx);
  name_of (n->idx, buf, sizeof buf);
  n->name = heap_strdup (md, buf);
  if (r->tail)
    r->tail->next = n;
  else
    r->head = n;
  r->tail = n;
  r->count++;
}

static void
set_keys (void *md, struct root *r)
{
  struct node *n500 = NULL;
  for (struct node *n = r->head; n; n = n->next)
    if (n->idx == 500)
      n500 = n;
  if (!mmalloc_setkey (md, 0, r) || !mmalloc_setkey (md, 1, n500)
      || !mmalloc_setkey (md, 2, r->tail) || !mmalloc_setkey (md, 3, r->buckets))
    die ("setkey failed");
}

static int
build (void)
{
  unlink (path);
  void *md = attach (O_RDWR | O_CREAT | O_EXCL);
  struct root *r = xmalloc (md, sizeof *r);
  memset (r, 0, sizeof *r);
  r->magic = ROOT_MAGIC;
  for (int i = 0; i < NODES; i++)
    append_node (md, r);
  r->buckets = mcalloc (md, NBUCKETS, sizeof *r->buckets);
  if (!r->buckets)
    die ("mcalloc: %s", strerror (errno));
  for (uint64_t i = 0; i < NENTRIES; i++)
    {
      char buf[400];
      struct entry *e = xmalloc (md, sizeof *e);
      e->i = i;
      snprintf (buf, sizeof buf, "key-%" PRIu64, i);
      e->key = heap_strdup (md, buf);
      val_of (i, 0, buf, sizeof buf);
      e->val = heap_strdup (md, buf);
      unsigned h = hash (e->key);
      e->next = r->buckets[h];
      r->buckets[h] = e;
    }
  r->big = xmalloc (md, big_size (0));
  for (size_t i = 0; i < big_size (0); i++)
    r->big[i] = big_byte (i, 0);
  set_keys (md, r);
  check_heap (md, "after build");
  detach (md);
  return 0;
}

/* The idx of every node of generation GEN, in list order, in plain memory.  */
static uint64_t *
expected_nodes (uint64_t gen, size_t *count)
{
  size_t cap = NODES + ADDED * gen, n = NODES;
  uint64_t *v = malloc (cap * sizeof *v), next = NODES;
  if (!v)
    die ("out of memory");
  for (size_t i = 0; i < n; i++)
    v[i] = i;
  for (uint64_t g = 0; g < gen; g++)
    {
      size_t k = 0;
      for (size_t i = 0; i < n; i++)
	if ((v[i] + g) % 2 == 0)
	  v[k++] = v[i];
      n = k;
      for (int a = 0; a < ADDED; a++)
	v[n++] = next++;
    }
  *count = n;
  return v;
}

/* Everything generation GEN must hold, and the heap's own check.  */
static struct root *
verify_root (void *md, uint64_t gen, const char *when)
{
  struct root *r = mmalloc_getkey (md, 0);
  if (!r || r->magic != ROOT_MAGIC)
    die ("%s: key 0 is not the root (%p)", when, (void *) r);
  if (r->gen != gen)
    die ("%s: generation %" PRIu64 ", expected %" PRIu64, when, r->gen, gen);
  size_t want_n;
  uint64_t *want = expected_nodes (gen, &want_n);
  size_t k = 0;
  struct node *last = NULL, *n500 = NULL;
  char buf[64];
  for (struct node *n = r->head; n; n = n->next, k++)
    {
      if (k >= want_n)
	die ("%s: more than %zu nodes", when, want_n);
      if (n->idx != want[k])
	die ("%s: node %zu has idx %" PRIu64 ", expected %" PRIu64, when, k, n->idx, want[k]);
      if (n->sum != node_sum (n->idx))
	die ("%s: node %" PRIu64 ": sum damaged", when, n->idx);
      name_of (n->idx, buf, sizeof buf);
      if (!n->name || strcmp (n->name, buf))
	die ("%s: node %" PRIu64 ": name \"%s\", expected \"%s\"", when, n->idx,
	     n->name ? n->name : "(null)", buf);
      if (n->idx == 500)
	n500 = n;
      last = n;
    }
  if (k != want_n || r->count != want_n)
    die ("%s: %zu nodes, count %" PRIu64 ", expected %zu", when, k, r->count, want_n);
  if (r->tail != last || mmalloc_getkey (md, 2) != last)
    die ("%s: tail is not the last node", when);
  if (mmalloc_getkey (md, 1) != n500)
    die ("%s: key 1 is %p, node 500 is at %p", when, mmalloc_getkey (md, 1), (void *) n500);
  if (r->next_idx != NODES + ADDED * gen)
    die ("%s: next idx %" PRIu64, when, r->next_idx);
  free (want);

  if (mmalloc_getkey (md, 3) != r->buckets)
    die ("%s: key 3 is not the bucket array", when);
  size_t entries = 0;
  for (unsigned b = 0; b < NBUCKETS; b++)
    for (struct entry *e = r->buckets[b]; e; e = e->next, entries++)
      if (hash (e->key) != b)
	die ("%s: entry %s in bucket %u", when, e->key, b);
  if (entries != NENTRIES)
    die ("%s: %zu hash entries", when, entries);
  for (uint64_t i = 0; i < NENTRIES; i++)
    {
      char key[32], val[400];
      snprintf (key, sizeof key, "key-%" PRIu64, i);
      struct entry *e = r->buckets[hash (key)];
      while (e && strcmp (e->key, key))
	e = e->next;
      if (!e || e->i != i)
	die ("%s: %s not found", when, key);
      val_of (i, gen, val, sizeof val);
      if (strcmp (e->val, val))
	die ("%s: %s = \"%s\", expected \"%s\"", when, key, e->val, val);
    }

  for (size_t i = 0; i < big_size (gen); i++)
    if (r->big[i] != big_byte (i, gen))
      die ("%s: byte %zu of the big block", when, i);
  if (mmalloc_usable_size (md, r->big) < big_size (gen))
    die ("%s: big block too small", when);

  /* Exactly our blocks are allocated: root, buckets, big, 2 per node, 3 per
     entry.  */
  struct mstats st = mmstats (md);
  size_t blocks = 3 + 2 * want_n + 3 * NENTRIES;
  if (st.chunks_used != blocks)
    die ("%s: mmstats counts %zu blocks in use, expected %zu", when, st.chunks_used, blocks);
  check_heap (md, when);
  return r;
}

/* Generation GEN to GEN + 1: free half the nodes, append more, grow every
   value and the big block.  */
static void
mutate (void *md, struct root *r)
{
  uint64_t g = r->gen;
  struct node **link = &r->head, *last = NULL;
  while (*link)
    {
      struct node *n = *link;
      if ((n->idx + g) % 2)
	{
	  *link = n->next;
	  mfree (md, n->name);
	  mfree (md, n);
	  r->count--;
	}
      else
	{
	  last = n;
	  link = &n->next;
	}
    }
  r->tail = last;
  for (int a = 0; a < ADDED; a++)
    append_node (md, r);
  for (unsigned b = 0; b < NBUCKETS; b++)
    for (struct entry *e = r->buckets[b]; e; e = e->next)
      {
	char val[400];
	val_of (e->i, g + 1, val, sizeof val);
	char *v = mrealloc (md, e->val, strlen (val) + 1);
	if (!v)
	  die ("mrealloc: %s", strerror (errno));
	e->val = strcpy (v, val);
      }
  unsigned char *big = mrealloc (md, r->big, big_size (g + 1));
  if (!big)
    die ("mrealloc of the big block: %s", strerror (errno));
  r->big = big;
  for (size_t i = 0; i < big_size (g + 1); i++)
    r->big[i] = big_byte (i, g + 1);
  r->gen = g + 1;
  set_keys (md, r);
}

static uint64_t
number (const char *s)
{
  char *end;
  errno = 0;
  unsigned long long v = strtoull (s, &end, 10);
  if (errno || !*s || *end)
    die ("bad number \"%s\"", s);
  return v;
}

/* GEN UINT64_MAX: whatever generation the heap holds.  */
static int
verify (uint64_t gen)
{
  void *md = attach (O_RDWR);
  if (gen == UINT64_MAX)
    {
      struct root *r = mmalloc_getkey (md, 0);
      if (!r || r->magic != ROOT_MAGIC)
	die ("key 0 is not the root");
      gen = r->gen;
    }
  struct root *r = verify_root (md, gen, "before mutation");
  mutate (md, r);
  verify_root (md, gen + 1, "after mutation");
  detach (md);
  return 0;
}

static int
reattach (uint64_t k)
{
  void *md = attach (O_RDWR);
  struct root *r = mmalloc_getkey (md, 0);
  if (!r || r->magic != ROOT_MAGIC)
    die ("key 0 is not the root");
  if (r->reattaches != k)
    die ("%" PRIu64 " reattaches counted, expected %" PRIu64, r->reattaches, k);
  verify_root (md, r->gen, "reattach");
  r->reattaches = k + 1;
  detach (md);
  int local = 0;
  printf ("%p\n", (void *) &local);
  return fflush (stdout) ? 1 : 0;
}

int
main (int argc, char **argv)
{
  if (argc < 3)
    {
      fprintf (stderr, "usage: helper-persist build|verify|reattach PATH [N]\n");
      return 2;
    }
  path = argv[2];
  if (!strcmp (argv[1], "build") && argc == 3)
    return build ();
  if (!strcmp (argv[1], "verify") && argc == 4)
    return verify (number (argv[3]));
  if (!strcmp (argv[1], "verify") && argc == 3)
    return verify (UINT64_MAX);
  if (!strcmp (argv[1], "reattach") && argc == 4)
    return reattach (number (argv[3]));
  fprintf (stderr, "helper-persist: bad arguments\n");
  return 2;
}
