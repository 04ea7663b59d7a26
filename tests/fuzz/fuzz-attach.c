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
  /* Which of the recorded range's probe pages are free before the attach:
     those must be free again after it, whatever happened.  */
  int free_before = fz_page_free (h.base) && h.span >= MM_PAGE
    && h.span <= MM_SPAN_MAX && fz_page_free (h.base + h.span - MM_PAGE);

  int fd = fz_fd_from (data, size);
  if (fd < 0)
    return 0;
  errno = 0;
  void *md = mmalloc_attach (fd, NULL);
  int e = errno;
  close (fd);
  if (!md)
    {
      if (!fz_attach_errno_ok (e))
	{
	  char msg[96];
	  snprintf (msg, sizeof msg, "mmalloc_attach failed with undocumented errno %d (%s)\n",
		    e, mmalloc_strerror (e));
	  fz_say (msg);
	  __builtin_trap ();
	}
      if (free_before)
	fz_range_free (h.base, h.span, 0);
    }
  else
    {
      struct mm_desc *d = md;
      uint64_t base = (uint64_t) (uintptr_t) d->base, span = d->span;
      size_t nops = size < 32 ? size : 32;
      fz_exercise (md, data + size - nops, nops);
      uint64_t top = d->hdr->top;
      if (mmalloc_detach (md) != NULL)
	FZ_FAIL ("mmalloc_detach failed");
      fz_range_free (base, span, top);
    }
  if (fz_lowest_fd () != low)
    FZ_FAIL ("a descriptor was left open");
  return 0;
}
