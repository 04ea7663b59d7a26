/* hello.c -- the first run stores a string in a heap file, the second
   prints it.  cc hello.c -lmmalloc -o hello  */

#include <mmalloc.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
main (void)
{
  int fd = open ("hello.heap", O_RDWR | O_CREAT, 0644);
  /* A new heap in an empty file, or the heap of an earlier run.  */
  void *md = fd < 0 ? NULL : mmalloc_attach (fd, NULL);
  if (!md)
    {
      fprintf (stderr, "hello.heap: %s\n", mmalloc_strerror (errno));
      return 1;
    }
  close (fd);                   /* the library keeps its own */
  char *s = mmalloc_getkey (md, 0);
  if (s)
    printf ("found in hello.heap: %s\n", s);
  else if ((s = mmalloc (md, 32)))
    {
      strcpy (s, "hello from an earlier process");
      mmalloc_setkey (md, 0, s);
      printf ("stored a string in hello.heap; run me again\n");
    }
  else
    fprintf (stderr, "hello.heap: %s\n",
             mmalloc_strerror (mmalloc_errno (md)));
  mmalloc_detach (md);
  return s ? 0 : 1;
}
