/* A program that misuses blocks of an mmalloc heap, for valgrind and
   AddressSanitizer to catch: prog HEAP WHAT, HEAP "anon" or a heap file's
   name, WHAT one of
     clean    every block freed, nothing misused (no report expected)
     overrun  one byte written past a 20-byte block
     uaf      a freed block read
     leak     a block's only pointer dropped (the heap stays attached)
     large    an overrun past a large block, then a read of it once freed
     calls    mcalloc, mrealloc (grow, shrink), mmemalign, used in bounds;
              mmalloc_garbage
     checked  a checked heap (mmcheck) used in bounds, and a clean thread
              freeing blocks of another (no report expected)
     reattach (a heap file) a block kept under a key across a detach and a
              new attach, then used and freed (no report expected)
     malloc   an overrun past a 20-byte block of malloc (the drop-in's,
              when libmmalloc-malloc is preloaded); prints its address
   A clean run exits 0 with no report; the tools report the others.  */

#include <mmalloc.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Through a volatile pointer: the compiler must not drop or fold accesses.  */
static char *volatile sink;
static char *volatile leaked;

static void *
frees (void *arg)
{
  void **v = arg;
  for (int i = 1; i < 16; i++)
    mfree (v[0], v[i]);
  return NULL;
}

/* Blocks of a checked heap, used in bounds and freed; blocks of MD freed by
   another thread.  Nonzero on failure.  */
static int
checked_and_threads (void *md)
{
  void *c = mmalloc_attach (-1, NULL);
  if (!c || mmcheck (c, NULL) != 1)
    return 1;
  for (int i = 0; i < 40; i++)
    {
      char *q = mmalloc (c, 10 + (size_t) i * 300);
      memset (q, 1, 10 + (size_t) i * 300);
      q = mrealloc (c, q, 20 + (size_t) i * 400);
      q[19] = 2;
      mfree (c, q);
    }
  mmalloc_detach (c);
  void *v[16] = { md };
  for (int i = 1; i < 16; i++)
    memset (v[i] = mmalloc (md, (size_t) i * 40), 3, (size_t) i * 40);
  pthread_t t;
  if (pthread_create (&t, NULL, frees, v) != 0)
    return 1;
  pthread_join (t, NULL);
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc != 3)
    {
      fprintf (stderr, "usage: %s anon|FILE clean|overrun|uaf|leak|large|calls|checked|reattach|malloc\n", argv[0]);
      return 2;
    }
  int fd = -1;
  if (strcmp (argv[1], "anon") != 0)
    {
      fd = open (argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
      if (fd < 0)
	{
	  perror (argv[1]);
	  return 2;
	}
    }
  void *md = mmalloc_attach (fd, NULL);
  if (!md)
    {
      fprintf (stderr, "attach: %s\n", mmalloc_strerror (mmalloc_errno (NULL)));
      return 2;
    }
  const char *what = argv[2];
  int rc = 0;
  char *p = mmalloc (md, 20);
  if (!p)
    return 2;
  memset (p, 'a', 20);
  if (!strcmp (what, "overrun"))
    p[20] = 'x';
  else if (!strcmp (what, "uaf"))
    {
      mfree (md, p);
      rc = p[3] == 'a';
      p = NULL;
    }
  else if (!strcmp (what, "leak"))
    {
      leaked = mmalloc (md, 100);
      leaked[0] = 1;
      leaked = NULL;	/* the only pointer to it */
    }
  else if (!strcmp (what, "large"))
    {
      char *l = mmalloc (md, 100000);
      l[100000] = 'x';
      mfree (md, l);
      sink = l;
      rc = sink[50000] == 'x';
    }
  else if (!strcmp (what, "calls"))
    {
      char *z = mcalloc (md, 10, 10);
      for (int i = 0; i < 100; i++)
	rc |= z[i];
      z = mrealloc (md, z, 5000);
      for (int i = 0; i < 100; i++)
	rc |= z[i];
      memset (z + 100, 1, 4900);
      z = mrealloc (md, z, 50);
      for (int i = 0; i < 50; i++)
	rc |= z[i];
      /* The garbage detector reads every word of the blocks it reaches,
	 slack included: no report for that.  */
      if (mmalloc_setkey (md, 0, z) != 1 || mmalloc_garbage (md, 0, NULL, NULL) == (size_t) -1)
	rc = 1;
      mmalloc_setkey (md, 0, NULL);
      char *a = mmemalign (md, 256, 300);
      if (((unsigned long) a & 255) != 0)
	rc = 1;
      memset (a, 2, 300);
      mfree (md, a);
      mfree (md, z);
      char *big = mmalloc (md, 300000);
      memset (big, 3, 300000);
      big = mrealloc (md, big, 600000);
      rc |= big[299999] != 3;
      memset (big, 4, 600000);
      mfree (md, big);
    }
  else if (!strcmp (what, "reattach") && fd >= 0)
    {
      char *k = mmalloc (md, 40);
      memset (k, 5, 40);
      mmalloc_setkey (md, 1, k);
      mfree (md, p);
      mmalloc_detach (md);
      if (!(md = mmalloc_attach (fd, NULL)) || !(k = mmalloc_getkey (md, 1)))
	return 2;
      rc = k[39] != 5;
      p = mmalloc (md, 20);	/* freed below, as in every mode */
      mmalloc_setkey (md, 1, NULL);
      mfree (md, k);
    }
  else if (!strcmp (what, "checked"))
    rc = checked_and_threads (md);
  else if (!strcmp (what, "malloc"))
    {
      sink = malloc (20);
      printf ("malloc: %p\n", (void *) sink);
      fflush (stdout);
      memset (sink, 0, 20);
      sink[20] = 'x';
      free (sink);
    }
  else if (strcmp (what, "clean") != 0)
    {
      fprintf (stderr, "unknown: %s\n", what);
      return 2;
    }
  mfree (md, p);
  sink = NULL;
  /* A detached heap's blocks leave the tools' view: a leak is a block no
     pointer reaches while its heap is attached, at exit here.  */
  if (strcmp (what, "leak") != 0)
    mmalloc_detach (md);
  if (fd >= 0)
    {
      close (fd);
      unlink (argv[1]);
    }
  return rc;
}
