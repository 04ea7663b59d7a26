/* test-files.c -- heap files that cannot be trusted, disks that fill up,
   space that must come back, and addresses that must stay valid.  */
#include "testutil.h"
#include "mmprivate.h"

#include <sys/mount.h>
#include <sys/resource.h>

/* A heap file with some of everything in it; returns its size.  */
static uint64_t
make_heap (const char *name)
{
  int fd = tu_newfile (name);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  void **keep = mcalloc (md, 512, sizeof *keep);
  assert_non_null (keep);
  for (int i = 0; i < 512; i++)
    {
      size_t n = i % 7 == 0 ? (size_t) 20000 + (size_t) i * 100 : (size_t) 16 + (size_t) i * 3;
      keep[i] = mmalloc (md, n);
      assert_non_null (keep[i]);
      memset (keep[i], i & 0xff, n);
    }
  for (int i = 0; i < 512; i += 3)
    {
      mfree (md, keep[i]);
      keep[i] = NULL;
    }
  char *s = mmalloc (md, 16);
  strcpy (s, "reattach me");
  mmalloc_setkey (md, 0, s);
  mmalloc_setkey (md, 1, keep);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  struct stat st;
  assert_int_equal (stat (tu_path (name), &st), 0);
  return (uint64_t) st.st_size;
}

/* Make TO the first LEN bytes of FROM.  (Written over and cut, not
   truncated to nothing first: the file system would write a file truncated
   to nothing and written again through to the disk when it is closed.)  */
static void
copy_file (const char *from, const char *to, uint64_t len)
{
  int in = open (tu_path (from), O_RDONLY);
  int out = open (tu_path (to), O_RDWR | O_CREAT, 0600);
  assert_true (in >= 0 && out >= 0);
  char buf[65536];
  uint64_t done = 0;
  while (done < len)
    {
      ssize_t r = read (in, buf, len - done < sizeof buf ? (size_t) (len - done) : sizeof buf);
      assert_true (r > 0);
      assert_int_equal (write (out, buf, (size_t) r), r);
      done += (uint64_t) r;
    }
  assert_int_equal (ftruncate (out, (off_t) len), 0);
  close (in);
  close (out);
}

static void
truncated_file_is_refused_at_every_page_boundary (void **state)
{
  (void) state;
  uint64_t size = make_heap ("whole.heap");
  assert_true (size > 8 * MM_PAGE);
  /* make check: the first 16 boundaries, every 8th, and the last 8.  */
  for (uint64_t len = MM_PAGE; len < size; len += MM_PAGE)
    {
      uint64_t k = len / MM_PAGE;
      if (!tu_stress () && k >= 16 && k % 8 != 0 && len + 8 * MM_PAGE < size)
	continue;
      copy_file ("whole.heap", "cut.heap", len);
      int fd = open (tu_path ("cut.heap"), O_RDWR);
      errno = 0;
      void *md = mmalloc_attach (fd, NULL);
      close (fd);
      assert_null (md);
      assert_int_equal (errno, MMALLOC_ETRUNCATED);
    }
  for (uint64_t len = 1; len < MM_PAGE; len = len * 3 + 1)
    {				/* a few cuts inside the header page too */
      copy_file ("whole.heap", "cut.heap", len);
      int fd = open (tu_path ("cut.heap"), O_RDWR);
      void *md = mmalloc_attach (fd, NULL);
      close (fd);
      assert_null (md);
      assert_true (errno == MMALLOC_ETRUNCATED || errno == MMALLOC_ENOTHEAP);
    }
}

/* In a child: attach PATH; if it works, check it, use it, detach it.
   Exit 0 unless something crashes or an error code is undocumented.  */
static void
use_damaged (void *arg)
{
  const char *path = arg;
  alarm (20);			/* a hang fails the test as a signal */
  int fd = open (path, O_RDWR);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  if (!md)
    {
      switch (errno)
	{
	case MMALLOC_ENOTHEAP: case MMALLOC_EVERSION: case MMALLOC_EMACHINE:
	case MMALLOC_ECORRUPT: case MMALLOC_ETRUNCATED: case MMALLOC_EADDRINUSE:
	case ENOMEM: case ENOSPC:
	  _exit (0);
	default:
	  _exit (10);
	}
    }
  (void) mmalloc_check (md);
  mmstats (md);
  void **keep = mmalloc_getkey (md, 1);
  (void) keep;
  void *p[64];
  for (int i = 0; i < 64; i++)
    p[i] = mmalloc (md, (size_t) (i * 97) % 30000);
  for (int i = 0; i < 64; i++)
    if (p[i])
      mfree (md, p[i]);
  (void) mmalloc_check (md);
  mmalloc_detach (md);
  _exit (0);
}

static void
flipped_header_bits_never_crash_the_library (void **state)
{
  (void) state;
  make_heap ("good.heap");
  int fd = open (tu_path ("good.heap"), O_RDONLY);
  struct stat st;
  fstat (fd, &st);
  size_t size = (size_t) st.st_size;
  unsigned char *orig = malloc (size);
  assert_int_equal (read (fd, orig, size), (ssize_t) size);
  close (fd);
  char err[512];
  int tried = 0, refused = 0;
  /* Every byte of the header struct, and every 61st of the directory and
     the first leaf, each with one bit flipped; make check every 7th of
     those (the bit flipped turns with the offset).  */
  size_t hstep = tu_stress () ? 1 : 7, step = tu_stress () ? 61 : 7 * 61;
  for (size_t off = 0; off < MM_HDR_PAGES * MM_PAGE + 4 * MM_PAGE; off++)
    {
      if (off < sizeof (struct mm_header) ? off % hstep != 0 : off % step != 0)
	continue;
      orig[off] ^= (unsigned char) (1u << (off % 8));
      /* (written over and cut: see copy_file) */
      fd = open (tu_path ("bad.heap"), O_RDWR | O_CREAT, 0600);
      assert_int_equal (pwrite (fd, orig, size, 0), (ssize_t) size);
      assert_int_equal (ftruncate (fd, (off_t) size), 0);
      close (fd);
      orig[off] ^= (unsigned char) (1u << (off % 8));
      int s = tu_child (use_damaged, (void *) tu_path ("bad.heap"), err, sizeof err);
      if (!WIFEXITED (s) || WEXITSTATUS (s) != 0)
	fail_msg ("flipping a bit at offset %zu: status 0x%x, stderr: %s", off, s, err);
      tried++;
      refused += strstr (err, "mmalloc") != NULL;
    }
  free (orig);
  assert_true (tried > (tu_stress () ? 2000 : 400));
  /* Some flips land in fields that only mmalloc_check can judge (derived
     counters): it must have reported those.  */
  print_message ("%d of %d flips reported\n", refused, tried);
  assert_true (refused > 0);
}

static void
damage_to_a_clean_file_is_found_by_mmalloc_check (void **state)
{
  (void) state;
  make_heap ("count.heap");
  int fd = open (tu_path ("count.heap"), O_RDWR);
  struct mm_header h;
  assert_int_equal (pread (fd, &h, sizeof h, 0), (ssize_t) sizeof h);
  h.nlarge += 3;		/* a derived counter: not covered by the checksum */
  assert_int_equal (pwrite (fd, &h, sizeof h, 0), (ssize_t) sizeof h);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  char err[256];
  (void) err;
  assert_true (mmalloc_check (md) > 0);
  assert_null (mmalloc_detach (md));
}

static void
file_space_is_given_back_after_freeing_everything (void **state)
{
  (void) state;
  int fd = tu_newfile ("space.heap");
  void *md = mmalloc_attach (fd, NULL);
  assert_non_null (md);
  enum { N = 40000 };
  /* 1 GiB under make stress, 128 MiB in make check.  */
  size_t goal = tu_stress () ? (size_t) 1 << 30 : (size_t) 128 << 20;
  void **p = calloc (N, sizeof *p);
  size_t total = 0;
  uint64_t seed = 12345;
  for (int i = 0; i < N && total < goal; i++)
    {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      size_t n = i % 2 ? 64 + (seed >> 33) % 4000 : 32768 + (seed >> 33) % (1 << 20);
      p[i] = mmalloc (md, n);
      assert_non_null (p[i]);
      memset (p[i], 1, n);
      total += n;
    }
  assert_true (total >= goal);
  struct stat st;
  fstat (fd, &st);
  uint64_t peak = (uint64_t) st.st_blocks * 512;
  for (int i = 0; i < N; i++)
    mfree (md, p[i]);
  assert_heap_ok (md);
  mmalloc_trim (md, 0);		/* not waiting for the decay delay */
  fstat (fd, &st);
  uint64_t after = (uint64_t) st.st_blocks * 512;
  print_message ("file blocks: peak %llu MiB, after freeing all %llu KiB (%.2f%%)\n",
		 (unsigned long long) (peak >> 20), (unsigned long long) (after >> 10),
		 100.0 * (double) after / (double) peak);
  assert_true (after * 20 < peak);
  /* The space can be used again.  */
  void *q = mmalloc (md, goal / 10);
  assert_non_null (q);
  memset (q, 2, goal / 10);
  mfree (md, q);
  assert_heap_ok (md);
  close (fd);
  free (p);
  assert_null (mmalloc_detach (md));
}

/* The small file system of the full-disk test, while it is mounted.  Its
   teardown detaches it even when the test failed with a heap on it still
   attached: else the test's directory could not be removed.  */
static char tmpfs_mounted[600];

static int
unmount_tmpfs (void **state)
{
  (void) state;
  if (tmpfs_mounted[0])
    umount2 (tmpfs_mounted, MNT_DETACH);
  tmpfs_mounted[0] = 0;
  return 0;
}

static void
full_disk_gives_enospc_and_no_sigbus (void **state)
{
  (void) state;
  const char *mnt = tu_path ("tmpfs");
  mkdir (mnt, 0700);
  if (mount ("tmpfs", mnt, "tmpfs", 0, "size=16m") != 0)
    {
      print_message ("cannot mount a tmpfs (%s): run as root to test a full disk\n",
		     strerror (errno));
      skip ();
    }
  snprintf (tmpfs_mounted, sizeof tmpfs_mounted, "%s", mnt);
  char path[600];
  snprintf (path, sizeof path, "%s/full.heap", mnt);
  int fd = open (path, O_RDWR | O_CREAT, 0600);
  void *md = mmalloc_attach (fd, NULL);
  close (fd);
  assert_non_null (md);
  void *p[4096];
  int n = 0;
  for (; n < 4096; n++)
    {
      p[n] = mmalloc (md, n % 2 ? 100 : 65536);
      if (!p[n])
	break;
      memset (p[n], 3, n % 2 ? 100 : 65536);
    }
  assert_true (n > 10 && n < 4096);
  assert_int_equal (errno, ENOSPC);
  assert_int_equal (mmalloc_errno (md), ENOSPC);
  assert_heap_ok (md);
  for (int i = 0; i < n; i += 2)
    mfree (md, p[i]);		/* frees the 64 KiB blocks: kept for reuse */
  assert_heap_ok (md);
  for (int i = 0; i < n; i += 2)
    {
      p[i] = mmalloc (md, 65536);	/* reuses them, or punches them out to reserve
					   blocks elsewhere */
      assert_non_null (p[i]);
      memset (p[i], 4, 65536);
    }
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  md = tu_reattach (path);
  assert_heap_ok (md);
  assert_null (mmalloc_detach (md));
  assert_int_equal (umount (mnt), 0);
  tmpfs_mounted[0] = 0;
}

static void
reattach_works_in_200_fresh_processes (void **state)
{
  (void) state;
  make_heap ("aslr.heap");
  for (int i = 0; i < 200; i++)
    {
      pid_t pid = tu_fork ();
      if (pid == 0)
	{
	  execl (tu_beside ("helper-reattach"), "helper-reattach", tu_path ("aslr.heap"), (char *) NULL);
	  _exit (127);
	}
      int st;
      assert_int_equal (waitpid (pid, &st, 0), pid);
      if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
	fail_msg ("re-attach %d failed: status 0x%x", i, st);
    }
}

static void
several_readers_attach_at_once (void **state)
{
  (void) state;
  make_heap ("readers.heap");
  int fds[3];
  void *md[3];
  pid_t kids[2];
  int go[2], hold[2];
  assert_int_equal (pipe (go), 0);
  assert_int_equal (pipe (hold), 0);
  for (int i = 0; i < 2; i++)
    {
      kids[i] = fork ();
      if (kids[i] == 0)
	{
	  close (hold[1]);
	  int fd = open (tu_path ("readers.heap"), O_RDONLY);
	  void *m = mmalloc_attach (fd, NULL);
	  char c = m && strcmp (mmalloc_getkey (m, 0), "reattach me") == 0 ? 'y' : 'n';
	  if (write (go[1], &c, 1) != 1)
	    _exit (2);
	  alarm (30);
	  if (read (hold[0], &c, 1) != 0)	/* hold it until the parent is done */
	    _exit (2);
	  _exit (m ? 0 : 1);
	}
    }
  close (hold[0]);
  for (int i = 0; i < 2; i++)
    {
      char c;
      assert_int_equal (read (go[0], &c, 1), 1);
      assert_int_equal (c, 'y');
    }
  fds[0] = open (tu_path ("readers.heap"), O_RDONLY);
  md[0] = mmalloc_attach (fds[0], NULL);
  assert_non_null (md[0]);
  assert_string_equal (mmalloc_getkey (md[0], 0), "reattach me");
  assert_null (mmalloc (md[0], 10));
  assert_int_equal (errno, EROFS);
  /* A writer is refused while readers hold it.  */
  fds[1] = open (tu_path ("readers.heap"), O_RDWR);
  errno = 0;
  md[1] = mmalloc_attach (fds[1], NULL);
  assert_null (md[1]);
  assert_int_equal (errno, MMALLOC_ELOCKED);
  close (hold[1]);		/* the readers may go */
  for (int i = 0; i < 2; i++)
    {
      int st;
      assert_int_equal (waitpid (kids[i], &st, 0), kids[i]);
      assert_true (WIFEXITED (st) && WEXITSTATUS (st) == 0);
    }
  assert_null (mmalloc_detach (md[0]));
  close (fds[0]);
  close (fds[1]);
  close (go[0]);
  close (go[1]);
  (void) fds[2];
  (void) md[2];
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (truncated_file_is_refused_at_every_page_boundary),
    cmocka_unit_test (flipped_header_bits_never_crash_the_library),
    cmocka_unit_test (damage_to_a_clean_file_is_found_by_mmalloc_check),
    cmocka_unit_test (file_space_is_given_back_after_freeing_everything),
    cmocka_unit_test_teardown (full_disk_gives_enospc_and_no_sigbus, unmount_tmpfs),
    cmocka_unit_test (reattach_works_in_200_fresh_processes),
    cmocka_unit_test (several_readers_attach_at_once),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
