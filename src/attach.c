/* attach.c -- creating and attaching heaps.

   A new heap's address space is reserved first (region.c), then its header
   and directory are laid out.  A file is refused with a distinct error for
   each way it can be wrong (mm_fmt_header_check, format.c), before any of it
   beyond the header is mapped, and its directory and page map are proven
   (region_validate) before anything is written through them.  */

#include "mmprivate.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Checks that need the mapped region, before anything is written there:
   the directory, the page map and the list heads.  */
static int
region_validate (struct mm_desc *d)
{
  struct mm_header *h = d->hdr;
  if (!mm_fmt_header_links (h))
    return MMALLOC_ECORRUPT;
  /* A file that was not detached may be caught in the middle of an update
     that recovery completes; the rest holds only for a clean one.  */
  int clean = h->state == MM_CLEAN;
  int err = mm_dir_validate (d, !clean);
  if (err)
    return err;
  if (clean && h->dir_sum != mm_dir_sum (d))
    return MMALLOC_ECORRUPT;
  /* Every leaf outside every block; on a clean file every page below `top'
     in exactly one block, slab, run or leaf: growth, recovery and the lists
     of free runs and slabs rely on it to write only where they may.  The
     walk reads the page map (a thousandth of the heap), no block.  A dirty
     file is walked as recovery will walk it.  */
  return mm_pages_walk (d, clean, NULL, NULL);
}

/* Undo a failed attach: unmap, close, free; errno = ERR.  */
static void *
attach_fail (struct mm_desc *d, int err)
{
  if (d->base)
    mm_os_unmap (d->base, (size_t) d->held);
  mm_os_close (d->fd);
  mm_desc_free (d);
  errno = err;
  return NULL;
}

void *
mmalloc_findbase (int size)
{
  if (size < 0)
    {
      errno = EINVAL;
      return NULL;
    }
  uint64_t len = MM_SPAN_MAX;
  if ((uint64_t) size > len)
    len = ((uint64_t) size + MM_PAGE - 1) & ~(uint64_t) (MM_PAGE - 1);
  struct mm_desc probe = { .held = 0 };
  int err = mm_region_place (&probe, len);
  if (err)
    {
      errno = err == MMALLOC_EADDRINUSE ? ENOMEM : err;
      return NULL;
    }
  mm_os_unmap (probe.base, (size_t) probe.held);
  return probe.base;
}

/* Map the first PAGES pages of the region (and grow the file to hold them).  */
static int
map_head (struct mm_desc *d, uint64_t pages, int grow)
{
  size_t len = (size_t) (pages << MM_PAGE_SHIFT);
  if (d->mode & MM_MODE_VIEW)
    return mm_os_map_private (d->base, len, d->fd, 0);
  if (!(d->mode & MM_MODE_FILE))
    return mm_os_commit (d->base, len);
  int err = grow ? mm_os_file_grow (d->fd, 0, len) : 0;
  return err ? err : mm_os_map_file (d->base, len, d->fd, 0, d->mode & MM_MODE_RDONLY);
}

/* Lay out a new heap in D, whose span is reserved.  */
static int
create (struct mm_desc *d)
{
  int err = map_head (d, MM_HDR_PAGES, 1);
  if (err)
    return err;
  struct mm_header *h = d->hdr;
  memset (h, 0, MM_HDR_PAGES * MM_PAGE);
  memcpy (h->magic, MM_MAGIC, 8);
  h->byte_order = MM_BYTE_ORDER;
  h->version = MM_FORMAT_V1;	/* until it holds newer records */
  h->hdr_size = sizeof (struct mm_header);
  h->word_size = sizeof (void *);
  h->page_size = MM_PAGE;
  h->hdr_pages = MM_HDR_PAGES;
  h->nclasses = MM_NCLASSES;
  h->class_sum = mm_fmt_classes_sum (mm_classes);
  h->base = (uint64_t) (uintptr_t) d->base;
  h->span = d->span;
  h->hdr_sum = mm_fmt_header_sum (h);
  /* Until the layout is complete the file does not look like a heap.  */
  h->magic[0] = 0;
  h->state = MM_DIRTY;
  mm_set_top (d, MM_HDR_PAGES);
  if (mm_pages_setup (d) < 0)
    return errno;
  h->dir_sum = mm_dir_sum (d);
  __atomic_store_n (&h->magic[0], MM_MAGIC[0], __ATOMIC_RELEASE);
  return 0;
}

/* Reserve the address space of a new heap: at BASEADDR, or where mm_region_place ()
   finds room.  */
static int
new_span (struct mm_desc *d, void *baseaddr)
{
  if (!baseaddr)
    return mm_region_place (d, MM_SPAN_MAX);
  return mm_region_hold (d, baseaddr, MM_SPAN_MAX, MM_HDR_PAGES << MM_PAGE_SHIFT);
}

static void *
attach_anon (void *baseaddr)
{
  struct mm_desc *d = mm_desc_new ();
  if (!d)
    return NULL;
  int err = new_span (d, baseaddr);
  if (!err)
    err = create (d);
  if (err)
    return attach_fail (d, err);
  d->magic = MM_DESC_MAGIC;
  return d;
}

/* Map the existing heap file of D, whose descriptor and size are known.  */
static int
open_file (struct mm_desc *d, uint64_t size)
{
  union
  {
    struct mm_header h;
    char page[MM_PAGE];
  } buf;
  memset (&buf, 0, sizeof buf);
  size_t want = size < sizeof buf ? (size_t) size : sizeof buf;
  int err = mm_os_read (d->fd, &buf, want, 0);
  if (err)
    return err;
  if (want < 8 || memcmp (buf.h.magic, MM_MAGIC, 8))
    return MMALLOC_ENOTHEAP;
  if (want < sizeof (struct mm_header))
    return MMALLOC_ETRUNCATED;
  err = mm_header_validate (&buf.h, size);
  if (err)
    return err;
  err = mm_region_hold (d, (char *) (uintptr_t) buf.h.base, buf.h.span, buf.h.top << MM_PAGE_SHIFT);
  if (err)
    return err;
  err = map_head (d, buf.h.top, 0);
  if (err)
    return err;
  /* The file may have changed since we read it: validate the mapped copy.  */
  err = mm_header_validate (d->hdr, size);
  if (!err && d->hdr->top != buf.h.top)
    err = MMALLOC_ECORRUPT;
  if (!err)
    err = region_validate (d);
  return err;
}

static void *
attach_file (int fd, void *baseaddr)
{
  struct mm_desc *d = mm_desc_new ();
  if (!d)
    return NULL;
  d->mode = MM_MODE_FILE;
  int rdonly = 0;
  uint64_t size = 0;
  int err = mm_os_dup (fd, &d->fd, &rdonly);
  if (err)
    return attach_fail (d, err);
  if (rdonly)
    d->mode |= MM_MODE_RDONLY;
  err = mm_os_file_size (d->fd, &size, &d->dev, &d->ino);
  if (err)
    return attach_fail (d, err);
  err = mm_os_lock (d->fd, !rdonly);
  if (err)
    return attach_fail (d, err == EWOULDBLOCK ? MMALLOC_ELOCKED : err);
  err = mm_registry_add (d);
  if (err)
    return attach_fail (d, err);
  if (size == 0 && rdonly)
    err = EROFS;
  else if (size == 0)
    {
      err = new_span (d, baseaddr);
      if (!err)
	err = create (d);
    }
  else
    {
      err = open_file (d, size);
      /* Not detached cleanly: a process died with it attached.  */
      if (!err && !rdonly && d->hdr->state != MM_CLEAN)
	err = mm_recover (d);
    }
  if (!err && !rdonly)
    {
      __atomic_store_n (&d->hdr->state, MM_DIRTY, __ATOMIC_RELEASE);
      MM_KP ();
    }
  if (err)
    {
      mm_registry_remove (d);
      return attach_fail (d, err);
    }
  /* Only now may the fast frees run (a thread's stale entry may name this
     descriptor): never on a heap we may not write, whose slabs may name
     owners, ours by chance, from a process that died.  */
  mm_set_free_bound (d, rdonly ? 0 : d->hdr->top << MM_PAGE_SHIFT);
  d->magic = MM_DESC_MAGIC;
  return d;
}

/* A private view of the heap file open on FD (MMALLOC_INSPECT): mapped
   copy-on-write, so that nothing this process does reaches the file; no
   lock, so that a writer neither stops it nor is stopped by it; FD is not
   kept.  A file that was not detached is recovered in the view alone.  */
static void *
attach_view (int fd)
{
  struct mm_desc *d = mm_desc_new ();
  if (!d)
    return NULL;
  d->mode = MM_MODE_VIEW | MM_MODE_RDONLY;
  d->fd = fd;			/* the caller's: never closed here */
  uint64_t size = 0;
  int err = mm_os_readable (fd);
  if (!err)
    err = mm_os_file_size (fd, &size, &d->dev, &d->ino);
  if (!err)
    err = size ? open_file (d, size) : MMALLOC_ENOTHEAP;
  if (!err && d->hdr->state != MM_CLEAN)
    err = mm_recover (d);
  d->fd = -1;
  if (err)
    return attach_fail (d, err);
  d->magic = MM_DESC_MAGIC;	/* limit stays 0: no fast frees */
  return d;
}

/* mmalloc_attach, returning the descriptor (the default heap's is made so,
   and gets no handle).  */
struct mm_desc *
mm_attach (int fd, void *baseaddr)
{
  mm_fork_init ();
  mm_classes_init ();
  size_t sys = mm_os_pagesize ();
  if ((uintptr_t) baseaddr % (sys > MM_PAGE ? sys : MM_PAGE))
    {
      errno = EINVAL;
      return NULL;
    }
  return fd < 0 ? attach_anon (baseaddr) : attach_file (fd, baseaddr);
}

void *
mmalloc_attach (int fd, void *baseaddr)
{
  struct mm_desc *d = mm_attach (fd, baseaddr);
  return d ? mm_handle_issue (d) : NULL;
}

void *
mmalloc_attach_flags (int fd, void *baseaddr, int flags)
{
  if (flags & ~MMALLOC_INSPECT)
    {
      errno = EINVAL;
      return NULL;
    }
  if (!(flags & MMALLOC_INSPECT))
    return mmalloc_attach (fd, baseaddr);
  if (fd < 0)
    {
      errno = EBADF;
      return NULL;
    }
  mm_fork_init ();
  mm_classes_init ();
  struct mm_desc *d = attach_view (fd);
  return d ? mm_handle_issue (d) : NULL;
}
