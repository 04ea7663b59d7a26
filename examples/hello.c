/* hello.c -- the first run stores a string in a heap file, the second prints it.
   cc -Iinclude examples/hello.c build/libmmalloc.a -lpthread -o hello  */

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
  void *md = fd < 0 ? NULL : mmalloc_attach (fd, NULL);
  if (!md)
    {
      fprintf (stderr, "hello.heap: %s\n", mmalloc_strerror (errno));
      return 1;
    }
  close (fd);
  char *s = mmalloc_getkey (md, 0);
  if (s)
    printf ("found in hello.heap: %s\n", s);
  else if ((s = mmalloc (md, 32)))
    {
      strcpy (s, "hello from an earlier process");
      mmalloc_setkey (md, 0, s);
      printf ("stored a string in hello.heap; run me again\n");
    }
  mmalloc_detach (md);
  return 0;
}
