/* fuzz-attach.c -- libFuzzer harness: the input is a whole heap file.

   Each input is written to a memfd (a temp file if memfd_create fails) and
   attached.  A refused file must be refused with a documented error code; an
   accepted one is checked, counted, its keys read (never dereferenced), put
   through a few allocations, resizes and frees coded in the input's last 32
   bytes (fz_exercise), checked again and detached.  Every iteration must give
   back its descriptors and its address range.

   Inputs mutated from a seed heap keep the seed's recorded base address;
   since each iteration detaches, the next one can attach there again.  */

#include "fuzz-common.h"

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc;
  (void) argv;
  fz_init_common ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  int low = fz_lowest_fd ();
  struct mm_header h;
  memset (&h, 0, sizeof h);
  memcpy (&h, data, size < sizeof h ? size : sizeof h);
  int fd = fz_fd_from (data, size);
  if (fd < 0)
    return 0;
  size_t nops = size < 32 ? size : 32;
  fz_attach_exercise (fd, h.base, h.span, data + size - nops, nops);
  if (fz_lowest_fd () != low)
    FZ_FAIL ("a descriptor was left open");
  return 0;
}
