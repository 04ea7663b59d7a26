/* garbage.c -- the garbage detector on a large heap file, against reading
   the file once.

     garbage build FILE N   a new heap file of N blocks of 16 to 192 bytes
                            (about 105 bytes each: 10 million make about
                            1 GiB), in 16 lists hung from the keys; every
                            hundredth block is left out of the lists
     garbage read FILE      read the whole file once with pread (1 MiB at a
                            time): R read_ms
     garbage gc FILE        attach the file read-only and run
                            mmalloc_garbage (md, 0, NULL, NULL), the keys as
                            roots: R gc_ms, R garbage (blocks found),
                            R table_kb (the detector's own memory: mark
                            bits, page table, mark stack, computed from the
                            heap's size), R anon_kb (anonymous memory the
                            process holds while the report runs, measured),
                            R file_mb, R table_pct (table_kb over the file
                            size, in %), R walk_ms (mmalloc_walk, for
                            comparison), R maxrss_kb

   The file is read through the page cache in both, warm: the build wrote
   it just before.  */

#include "common.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

struct blk
{
  struct blk *next;
};

static uint64_t
file_size (const char *path)
{
  struct stat st;
  if (stat (path, &st))
    bench_fail ("stat");
  return (uint64_t) st.st_size;
}

static void
build (const char *path, uint64_t n)
{
  int fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0)
    bench_fail ("open");
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  if (!md)
    bench_fail ("attach");
  struct blk *head[16] = { 0 };
  uint64_t t0 = bench_now (), lost = 0;
  for (uint64_t i = 0; i < n; i++)
    {
      size_t size = 16 + (size_t) ((i * 37) % 12) * 16;
      struct blk *b = mmalloc (md, size);
      if (!b)
	bench_fail ("mmalloc");
      b->next = NULL;
      if (i % 100 == 99)
	{
	  lost++;
	  continue;
	}
      b->next = head[i % 16];
      head[i % 16] = b;
    }
  for (int k = 0; k < 16; k++)
    mmalloc_setkey (md, k, head[k]);
  printf ("R build_ms %.1f\nR lost %llu\n", (double) (bench_now () - t0) / 1e6,
	  (unsigned long long) lost);
  if (mmalloc_detach (md))
    bench_fail ("detach");
}

static void
read_once (const char *path)
{
  size_t len = (size_t) 1 << 20;
  char *buf = mmap (NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  int fd = open (path, O_RDONLY);
  if (fd < 0 || buf == MAP_FAILED)
    bench_fail ("open");
  uint64_t t0 = bench_now (), sum = 0, off = 0;
  ssize_t got;
  while ((got = pread (fd, buf, len, (off_t) off)) > 0)
    {
      sum += (unsigned char) buf[got - 1];
      off += (uint64_t) got;
    }
  printf ("R read_ms %.1f\n", (double) (bench_now () - t0) / 1e6);
  if (off != file_size (path))
    bench_fail ("short read");
  close (fd);
  (void) sum;
}

static long
anon_kb (void)
{
  FILE *f = fopen ("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets (line, sizeof line, f))
    if (!strncmp (line, "RssAnon:", 8))
      kb = strtol (line + 8, NULL, 10);
  if (f)
    fclose (f);
  return kb;
}

static long anon_during = -1;

static int
first_report (void *ptr, size_t size, void *arg)
{
  (void) ptr;
  (void) size;
  (void) arg;
  if (anon_during < 0)
    anon_during = anon_kb ();
  return 0;
}

static int
count_block (void *ptr, size_t size, void *arg)
{
  (void) ptr;
  (void) size;
  ++*(uint64_t *) arg;
  return 0;
}

static void
gc (const char *path)
{
  int fd = open (path, O_RDONLY);
  if (fd < 0)
    bench_fail ("open");
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  if (!md)
    bench_fail ("attach read-only");
  long anon0 = anon_kb ();
  uint64_t t0 = bench_now ();
  size_t n = mmalloc_garbage (md, 0, first_report, NULL);
  uint64_t t1 = bench_now ();
  if (n == (size_t) -1)
    bench_fail ("mmalloc_garbage");
  uint64_t blocks = 0;
  uint64_t t2 = bench_now ();
  if (mmalloc_walk (md, count_block, &blocks))
    bench_fail ("mmalloc_walk");
  uint64_t t3 = bench_now ();
  struct mstats st = mmstats (md);
  uint64_t pages = st.bytes_total / 4096;
  double table_kb = (double) (pages * (4096 / 16 / 8) + pages * 4 + (1 << 20)) / 1024;
  double fmb = (double) file_size (path) / (1 << 20);
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  printf ("R gc_ms %.1f\nR garbage %zu\nR blocks %llu\nR walk_ms %.1f\n",
	  (double) (t1 - t0) / 1e6, n, (unsigned long long) blocks, (double) (t3 - t2) / 1e6);
  printf ("R table_kb %.0f\nR anon_kb %ld\nR file_mb %.1f\nR table_pct %.3f\nR maxrss_kb %ld\n",
	  table_kb, anon_during - anon0, fmb, table_kb / 1024 / fmb * 100, ru.ru_maxrss);
  mmalloc_detach (md);
}

int
main (int argc, char **argv)
{
  if (argc == 4 && !strcmp (argv[1], "build"))
    build (argv[2], strtoull (argv[3], NULL, 10));
  else if (argc == 3 && !strcmp (argv[1], "read"))
    read_once (argv[2]);
  else if (argc == 3 && !strcmp (argv[1], "gc"))
    gc (argv[2]);
  else
    {
      fprintf (stderr, "usage: garbage build FILE N | read FILE | gc FILE\n");
      return 2;
    }
  return 0;
}
