/* mmtool.c -- a heap file from the shell: info, stats, keys, walk, check,
   leaks, gc, recover and dump.

   The read-only commands attach a private view of the file
   (mmalloc_attach_flags with MMALLOC_INSPECT): the file is never written,
   not a byte, no lock is taken, and a writer may hold the file meanwhile;
   a file whose writer died is recovered in the view alone.  Only recover
   and gc attach for writing.  Exit status: 0 done and nothing found, 1
   problems found (damage, inconsistencies, unreachable blocks), 2 usage
   errors and files that cannot be opened or attached.  The tool links the
   library statically and reads the header and size-class tables through
   src/mmprivate.h, the format's one definition.  This file: the command
   line, errors, JSON output, opening the file and finding blocks; the
   commands are in mmtool-cmd.c.  */

#include "mmtool.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* --- Options and errors ------------------------------------------------- */

int opt_json;			/* --json: one JSON object on stdout */
int opt_free;		/* walk --free */
int opt_histogram;	/* walk --histogram */
int opt_dry_run;			/* gc --dry-run */
const char *file_name;	/* the FILE operand, for messages */

static const char usage_line[] = "Usage: " PROG " [--json] COMMAND FILE [ARGS]\n";

void
usage_error (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fputs (PROG ": ", stderr);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputs ("\n", stderr);
  fputs (usage_line, stderr);
  fputs ("Try '" PROG " --help' for more information.\n", stderr);
  exit (2);
}

/* The file can not be opened or attached: ERR names why.  */
void
file_error (int err)
{
  fprintf (stderr, "%s: %s: %s\n", PROG, file_name, mmalloc_strerror (err));
  exit (2);
}

static void
help (void)
{
  fputs (usage_line, stdout);
  fputs ("Look inside an mmalloc heap file.\n"
	 "\n"
	 "Commands (all but recover and gc never write the file):\n"
	 "  info FILE             format version, base, size, state, writer, keys set\n"
	 "  stats FILE            mmstats, and a table per size class\n"
	 "  keys FILE             each key, its block and size, its first bytes\n"
	 "  walk FILE             every allocated block (address, size)\n"
	 "    --free              the free runs of pages instead\n"
	 "    --histogram         the blocks counted by size\n"
	 "  check FILE            the whole-heap check; exit 1 if problems\n"
	 "  leaks FILE            blocks no key reaches; exit 1 if any\n"
	 "  gc FILE               free the blocks no key reaches (takes the writer's lock)\n"
	 "    --dry-run           only say what would be freed\n"
	 "  recover FILE          rebuild a file whose writer died (attach, detach)\n"
	 "  dump FILE ADDR [LEN]  a hex dump of the block at ADDR (from ADDR, LEN bytes)\n"
	 "\n"
	 "Options:\n"
	 "  -j, --json            one JSON object on standard output\n"
	 "  -h, --help            this help\n"
	 "  -V, --version         the version\n"
	 "\n"
	 "Exit status: 0 nothing found, 1 problems or unreachable blocks found,\n"
	 "2 usage error or a file that cannot be opened or attached.\n", stdout);
  exit (0);
}

/* A page of the view that a writer cut off the file: SIGBUS.  Nothing to
   undo (no file is written), so say it and leave.  */
static void
on_sigbus (int sig)
{
  (void) sig;
  static const char msg[] =
    PROG ": the heap file shrank while it was read (a writer is using it); try again\n";
  if (write (2, msg, sizeof msg - 1) < 0)
    _exit (2);
  _exit (2);
}

/* --- JSON ----------------------------------------------------------------

   Objects and arrays are written as they go; jsep () puts the comma before
   every member but the first of its container.  */

static int jfirst[32];
static int jdepth;

static void
jsep (void)
{
  if (jdepth && !jfirst[jdepth - 1])
    putchar (',');
  if (jdepth)
    jfirst[jdepth - 1] = 0;
}

static void
jstr_raw (const char *s)
{
  putchar ('"');
  for (; *s; s++)
    {
      unsigned char c = (unsigned char) *s;
      if (c == '"' || c == '\\')
	printf ("\\%c", c);
      else if (c < 0x20 || c >= 0x7f)
	printf ("\\u%04x", c);
      else
	putchar (c);
    }
  putchar ('"');
}

void
jkey (const char *k)
{
  jsep ();
  if (k)
    {
      jstr_raw (k);
      putchar (':');
    }
}

void
jopen (const char *k, char c)
{
  jkey (k);
  putchar (c);
  jfirst[jdepth++] = 1;
}

void
jclose (char c)
{
  jdepth--;
  putchar (c);
  if (!jdepth)
    putchar ('\n');
}

void
jnum (const char *k, uint64_t v)
{
  jkey (k);
  printf ("%" PRIu64, v);
}

void
jbool (const char *k, int v)
{
  jkey (k);
  fputs (v ? "true" : "false", stdout);
}

void
jnull (const char *k)
{
  jkey (k);
  fputs ("null", stdout);
}

void
jstr (const char *k, const char *s)
{
  jkey (k);
  jstr_raw (s);
}

/* --- Opening the file ----------------------------------------------------- */

int
open_file (int flags)
{
  int fd = open (file_name, flags | O_CLOEXEC);
  if (fd < 0)
    file_error (errno);
  return fd;
}

/* The file's header as it is on disk, validated: exit 2 if it is none.  */
void
read_header (int fd, struct mm_header *h, struct stat *st)
{
  if (fstat (fd, st))
    file_error (errno);
  if (!S_ISREG (st->st_mode))
    file_error (EINVAL);
  memset (h, 0, sizeof *h);
  mm_classes_init ();		/* the header names the class table's sum */
  ssize_t r = pread (fd, h, sizeof *h, 0);
  if (r < 0)
    file_error (errno);
  if (r < 8 || memcmp (h->magic, MM_MAGIC, 8))
    file_error (MMALLOC_ENOTHEAP);
  if ((size_t) r < sizeof *h)
    file_error (MMALLOC_ETRUNCATED);
  int e = mm_header_validate (h, (uint64_t) st->st_size);
  if (e)
    file_error (e);
}

/* A private, read-only view of the file: never written, no lock.  NULL
   with errno if it cannot be attached.  */
void *
try_view (void)
{
  int fd = open_file (O_RDONLY);
  void *md = mmalloc_attach_flags (fd, NULL, MMALLOC_INSPECT);
  int e = errno;
  close (fd);
  errno = e;
  return md;
}

void *
view (void)
{
  void *md = try_view ();
  if (!md)
    file_error (errno);
  return md;
}

struct mm_desc *
desc (void *md)
{
  return mm_desc_of (md);
}

/* Does another process hold the file's writer lock (flock, exclusive)?
   Read from /proc/locks, which shows it without taking it (taking even a
   shared lock for an instant could make a writer's attach fail).  1, 0,
   or -1 where it cannot be told.  */
int
writer_present (const struct stat *st)
{
  FILE *f = fopen ("/proc/locks", "re");
  if (!f)
    return -1;
  char line[256];
  int found = 0;
  while (fgets (line, sizeof line, f))
    {
      char kind[16], mode[16], access[16];
      unsigned maj, min;
      unsigned long long ino;
      long pid;
      if (strstr (line, "->"))
	continue;		/* waiting for the lock, not holding it */
      if (sscanf (line, "%*d: %15s %15s %15s %ld %x:%x:%llu", kind, mode, access, &pid,
		  &maj, &min, &ino) != 7)
	continue;
      if (!strcmp (kind, "FLOCK") && !strcmp (access, "WRITE")
	  && maj == major (st->st_dev) && min == minor (st->st_dev) && ino == st->st_ino)
	found = 1;
    }
  fclose (f);
  return found;
}

/* --- Finding blocks ----------------------------------------------------- */


static int
find_visit (void *ptr, size_t size, void *arg)
{
  struct find *f = arg;
  uintptr_t p = (uintptr_t) ptr;
  for (int i = 0; i < f->n; i++)
    if (f->addr[i] >= p && f->addr[i] - p < (size ? size : 1))
      {
	f->start[i] = p;
	f->size[i] = size;
      }
  return 0;
}

/* Fill F's blocks; the walk's result (0, or -1 with errno).  */
int
find_blocks (void *md, struct find *f)
{
  for (int i = 0; i < f->n; i++)
    f->start[i] = 0, f->size[i] = 0;
  return mmalloc_walk (md, find_visit, f);
}

/* A damaged heap met by a walk: said on stderr; the exit status is 1.  */
int
walk_failed (void)
{
  fprintf (stderr, "%s: %s: walk stopped: %s\n", PROG, file_name, mmalloc_strerror (errno));
  return 1;
}

/* --- Command line ------------------------------------------------------- */

struct command
{
  const char *name;
  int min_args, max_args;	/* operands after FILE */
  const char *options;		/* the long options it takes, space separated */
};

static const struct command commands[] = {
  { "info", 0, 0, "" },
  { "stats", 0, 0, "" },
  { "keys", 0, 0, "" },
  { "walk", 0, 0, " --free --histogram " },
  { "check", 0, 0, "" },
  { "leaks", 0, 0, "" },
  { "gc", 0, 0, " --dry-run " },
  { "recover", 0, 0, "" },
  { "dump", 1, 2, "" },
};

/* Set the option ARG (a long option, or a short one's long name) if the
   command C takes it; 0 if it is unknown.  */
static int
set_option (const struct command *c, const char *arg)
{
  static const struct
  {
    char s;
    const char *l;
    int *flag;
  } opts[] = {
    { 'j', "--json", &opt_json },
    { 0, "--free", &opt_free },
    { 0, "--histogram", &opt_histogram },
    { 'n', "--dry-run", &opt_dry_run },
  };
  for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
    if (!strcmp (arg, opts[i].l) || (opts[i].s && arg[1] == opts[i].s && !arg[2]))
      {
	if (i && (!c || !strstr (c->options, opts[i].l)))
	  usage_error ("%s takes no option '%s'", c ? c->name : "mmtool", arg);
	*opts[i].flag = 1;
	return 1;
      }
  return 0;
}

int
main (int argc, char **argv)
{
  const struct command *cmd = NULL;
  const char *operands[4];
  int nops = 0, dashdash = 0;
  for (int i = 1; i < argc; i++)
    {
      const char *a = argv[i];
      if (!dashdash && a[0] == '-' && a[1])
	{
	  if (!strcmp (a, "--"))
	    dashdash = 1;
	  else if (!strcmp (a, "--help") || !strcmp (a, "-h"))
	    help ();
	  else if (!strcmp (a, "--version") || !strcmp (a, "-V"))
	    {
	      printf ("%s (mmalloc) %s\nheap file format %d\n", PROG, mmalloc_version (),
		      MM_FORMAT_VERSION);
	      return 0;
	    }
	  else if (!set_option (cmd, a))
	    usage_error ("unknown option '%s'", a);
	  continue;
	}
      if (!cmd)
	{
	  for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++)
	    if (!strcmp (a, commands[c].name))
	      cmd = &commands[c];
	  if (!cmd)
	    usage_error ("unknown command '%s'", a);
	  continue;
	}
      if (nops == 4)
	usage_error ("too many operands");
      operands[nops++] = a;
    }
  if (!cmd)
    usage_error ("no command given");
  if (nops < 1)
    usage_error ("%s: no FILE given", cmd->name);
  if (nops - 1 < cmd->min_args)
    usage_error ("%s: too few operands", cmd->name);
  if (nops - 1 > cmd->max_args)
    usage_error ("%s: too many operands", cmd->name);
  if (opt_free && opt_histogram)
    usage_error ("walk: --free and --histogram do not go together");
  file_name = operands[0];
  signal (SIGBUS, on_sigbus);
  int r;
  if (!strcmp (cmd->name, "info"))
    r = cmd_info ();
  else if (!strcmp (cmd->name, "stats"))
    r = cmd_stats ();
  else if (!strcmp (cmd->name, "keys"))
    r = cmd_keys ();
  else if (!strcmp (cmd->name, "walk"))
    r = cmd_walk ();
  else if (!strcmp (cmd->name, "check"))
    r = cmd_check ();
  else if (!strcmp (cmd->name, "leaks"))
    r = cmd_leaks ();
  else if (!strcmp (cmd->name, "gc"))
    r = cmd_gc ();
  else if (!strcmp (cmd->name, "recover"))
    r = cmd_recover ();
  else
    r = cmd_dump (operands[1], nops > 2 ? operands[2] : NULL);
  if (fflush (stdout) || ferror (stdout))
    {
      fprintf (stderr, "%s: write error: %s\n", PROG, strerror (errno));
      return 2;
    }
  return r;
}
