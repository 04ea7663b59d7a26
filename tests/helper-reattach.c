/* helper-reattach.c -- attach a heap file in a fresh process and check it.
   Usage: helper-reattach PATH.  Exit 0 when key 0 holds the string
   "reattach me" and the heap checks clean; else the reason's errno or 1.  */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include "mmalloc.h"

int
main (int argc, char **argv)
{
  if (argc != 2)
    return 2;
  int fd = open (argv[1], O_RDWR);
  if (fd < 0)
    return 3;
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  if (!md)
    {
      fprintf (stderr, "helper-reattach: %s\n", mmalloc_strerror (errno));
      return 4;
    }
  const char *s = mmalloc_getkey (md, 0);
  int ok = s && strcmp (s, "reattach me") == 0 && mmalloc_check (md) == 0;
  mmalloc_detach (md);
  return ok ? 0 : 1;
}
