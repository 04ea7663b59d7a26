/* heapfile.h -- the heap-file workload, shared by its three programs
   (heapfile_mm.c, heapfile_boost.cc, heapfile_pmdk.c).

   usage: heapfile_X DIR N

   In a new file DIR/bench-heapfile-X.<pid>, with an index of N pointers
   (default 400000) kept where the heap's own root lookup finds it:

     1. create the heap and the index; allocate N objects of 16..1024 bytes
        (hf_size) and fill each one (hf_fill);
     2. free a random half (the first N/2 of a fixed permutation);
     3. allocate them again, with new sizes and contents;
     4. close (detach) the heap, open (re-attach) it and find the index.

   Steps 1-4 are timed (time_ms).  Then, untimed, every byte of every object
   is verified, and the file's allocated bytes (st_blocks * 512) are
   compared with the live bytes: the objects' sizes plus 8 bytes of index
   per object (file_ratio; also file_mb and live_mb).  */

#ifndef BENCH_HEAPFILE_H
#define BENCH_HEAPFILE_H 1

#include "common.h"

#include <sys/stat.h>
#include <unistd.h>

/* Size of object I in generation GEN (0: first fill, 1: refill).  */
static inline uint32_t
hf_size (uint32_t i, uint32_t gen)
{
  return 16 + (uint32_t) (bench_hash (((uint64_t) gen << 32) | i) % 1009);
}

static inline unsigned char
hf_byte (uint32_t i, uint32_t gen)
{
  return (unsigned char) (i * 131u + gen * 71u + 1u);
}

/* Contents of object I of generation GEN: its number and generation in the
   first 8 bytes, then a byte pattern.  */
static inline void
hf_fill (void *p, uint32_t i, uint32_t gen)
{
  uint32_t size = hf_size (i, gen);
  uint32_t head[2] = { i, gen };
  memcpy (p, head, 8);
  memset ((char *) p + 8, hf_byte (i, gen), size - 8);
}

static BENCH_UNUSED int
hf_check (const void *p, uint32_t i, uint32_t gen)
{
  uint32_t size = hf_size (i, gen);
  uint32_t head[2];
  memcpy (head, p, 8);
  if (head[0] != i || head[1] != gen)
    return 0;
  const unsigned char *c = (const unsigned char *) p + 8;
  unsigned char b = hf_byte (i, gen);
  for (uint32_t k = 0; k < size - 8; k++)
    if (c[k] != b)
      return 0;
  return 1;
}

struct hf_plan
{
  uint32_t n;
  uint32_t *perm;		/* the first n/2 entries are freed and refilled */
  unsigned char *gen;		/* generation of each object at the end */
  uint64_t live;		/* live bytes at the end (objects + 8 n) */
};

static BENCH_UNUSED void
hf_plan_make (struct hf_plan *pl, uint32_t n)
{
  pl->n = n;
  pl->perm = (uint32_t *) bench_map ((size_t) n * sizeof *pl->perm);
  pl->gen = (unsigned char *) bench_map (n);
  for (uint32_t i = 0; i < n; i++)
    pl->perm[i] = i;
  uint64_t s = 0x4ea9f11eu;
  for (uint32_t i = n - 1; i > 0; i--)
    {
      uint32_t j = (uint32_t) (bench_rand (&s) % (i + 1));
      uint32_t t = pl->perm[i];
      pl->perm[i] = pl->perm[j];
      pl->perm[j] = t;
    }
  for (uint32_t k = 0; k < n / 2; k++)
    pl->gen[pl->perm[k]] = 1;
  pl->live = 8 * (uint64_t) n;
  for (uint32_t i = 0; i < n; i++)
    pl->live += hf_size (i, pl->gen[i]);
}

/* Parse DIR and N; make the file name.  */
static BENCH_UNUSED void
hf_args (int argc, char **argv, const char *who, char *path, size_t len,
	 uint32_t *n)
{
  if (argc < 2)
    {
      fprintf (stderr, "usage: heapfile_%s DIR [N]\n", who);
      exit (2);
    }
  long v = bench_arg (argc, argv, 2, 400000);
  if (v < 2 || v > 100000000)
    bench_fail ("bad N");
  *n = (uint32_t) v;
  snprintf (path, len, "%s/bench-heapfile-%s.%ld", argv[1], who, (long) getpid ());
  unlink (path);
}

static BENCH_UNUSED void
hf_report (const char *path, const struct hf_plan *pl, uint64_t t0, uint64_t t1)
{
  struct stat st;
  if (stat (path, &st))
    bench_fail ("stat of the heap file");
  double file = (double) st.st_blocks * 512.0;
  printf ("R time_ms %.3f\n", (double) (t1 - t0) / 1e6);
  printf ("R file_ratio %.4f\n", file / (double) pl->live);
  printf ("R file_mb %.2f\n", file / 1048576.0);
  printf ("R live_mb %.2f\n", (double) pl->live / 1048576.0);
}

#endif /* BENCH_HEAPFILE_H */
