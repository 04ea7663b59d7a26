/* mmtool.h -- what mmtool.c (the command line, errors, JSON output and
   opening the file) and mmtool-cmd.c (the commands) share.  */

#ifndef MMTOOL_H
#define MMTOOL_H 1

#include "mmprivate.h"

#include <stdint.h>
#include <sys/stat.h>

#define PROG "mmtool"

/* Options, and the FILE operand, for messages.  */
extern int opt_json, opt_free, opt_histogram, opt_dry_run;
extern const char *file_name;

/* Errors: a usage error, or a file that cannot be opened or attached (the
   reason ERR: errno or MMALLOC_E*): a message, then exit status 2.  A walk
   stopped by damage: a message, and the status to exit with (1).  */
void usage_error (const char *fmt, ...) __attribute__ ((noreturn, format (printf, 1, 2)));
void file_error (int err) __attribute__ ((noreturn));
int walk_failed (void);

/* JSON on stdout, written as it goes: K is the member's name, NULL inside
   an array; jopen and jclose take '{' '}' or '[' ']'.  */
void jkey (const char *k);
void jopen (const char *k, char c);
void jclose (char c);
void jnum (const char *k, uint64_t v);
void jbool (const char *k, int v);
void jnull (const char *k);
void jstr (const char *k, const char *s);

/* The file: opened (exit 2 if it cannot be), its header read and validated
   from disk, a view of it (MMALLOC_INSPECT; try_view: NULL with errno),
   the descriptor behind a handle, and whether a writer holds it (1, 0, -1
   unknown).  */
int open_file (int flags);
void read_header (int fd, struct mm_header *h, struct stat *st);
void *try_view (void);
void *view (void);
struct mm_desc *desc (void *md);
int writer_present (const struct stat *st);

/* The blocks that contain the addresses of a query, found in one walk.  */
struct find
{
  int n;
  uintptr_t addr[MMALLOC_KEYS];
  uintptr_t start[MMALLOC_KEYS];	/* 0: in no block */
  size_t size[MMALLOC_KEYS];
};
/* Fill F's blocks with one walk; its result (0, or -1 with errno).  */
int find_blocks (void *md, struct find *f);

/* The commands (mmtool-cmd.c): each returns the exit status.  */
int cmd_info (void);
int cmd_stats (void);
int cmd_keys (void);
int cmd_walk (void);
int cmd_check (void);
int cmd_leaks (void);
int cmd_gc (void);
int cmd_recover (void);
int cmd_dump (const char *addr_s, const char *len_s);

#endif /* MMTOOL_H */
