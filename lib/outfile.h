/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * outfile.h - write an output file so readers see the old or the new
 * contents, and never replace a path that is not a regular file.
 *
 * Every file moat writes whole (saved zone state, the Hyperscan cache,
 * counters, zone dumps) goes through a temporary beside the target and a
 * rename().  rename() replaces whatever the name points at: handed
 * /dev/null it turned the host's null device into a regular file.  So the
 * target is looked at first:
 *   - absent or a regular file: temporary + (fsync) + rename, as before;
 *   - a symbolic link: resolved, and the file it names is replaced (the
 *     link stays a link);
 *   - a character device or a FIFO (/dev/null, /dev/stdout, a pipe): written
 *     in place when the caller allows a stream (MOAT_OUT_STREAM), refused
 *     with -EINVAL otherwise;
 *   - anything else (a directory, a socket, a block device): -EINVAL/-EISDIR.
 */
#ifndef MOAT_OUTFILE_H
#define MOAT_OUTFILE_H

#include <limits.h>
#include <stdio.h>
#include <sys/types.h>

/* the target may be a character device or a FIFO, written in place */
#define MOAT_OUT_STREAM 0x1u
/* several processes may write the target at once: the temporary's name
 * carries the pid (PATH.PID.tmp instead of PATH.tmp) */
#define MOAT_OUT_PID_TMP 0x2u

struct moat_outfile {
	int fd;                      /* write here */
	int in_place;                /* 1: fd is the target itself */
	char path[PATH_MAX];         /* the file that will be replaced */
	char tmp[PATH_MAX + 16];     /* the temporary beside it */
};

/* moat_outfile_open - open path for writing as described above; mode is the
 * new file's mode (applied with fchmod: a leftover temporary keeps none of
 * its old mode).  Returns 0, or -errno (-EINVAL: not a file moat may
 * replace); on error nothing is created. */
int moat_outfile_open(struct moat_outfile *o, const char *path, mode_t mode, unsigned flags);

/* moat_outfile_fdopen - a stdio stream over a duplicate of o->fd, for
 * callers that write with stdio: fclose() it before moat_outfile_commit().
 * Returns NULL with errno set, after moat_outfile_abort(o). */
FILE *moat_outfile_fdopen(struct moat_outfile *o);

/* moat_outfile_commit - finish: fsync when do_fsync, close, rename the
 * temporary over the target (and fsync its directory when do_fsync).
 * Returns 0 or -errno; on error the target is untouched and the temporary
 * removed. */
int moat_outfile_commit(struct moat_outfile *o, int do_fsync);

/* moat_outfile_abort - give up: close, remove the temporary; the target is
 * untouched. */
void moat_outfile_abort(struct moat_outfile *o);

#endif /* MOAT_OUTFILE_H */
