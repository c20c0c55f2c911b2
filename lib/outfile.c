/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * outfile.c - replace an output file atomically, and only when it is a
 * file: see outfile.h for why (a rename() over /dev/null once broke the
 * host's apt).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outfile.h"

/* sync_dir - make a rename in path's directory durable (best effort) */
static void sync_dir(const char *path)
{
	char d[PATH_MAX];
	int fd;

	snprintf(d, sizeof(d), "%s", path);
	fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/* moat_outfile_open - look at the target, then open it or a temporary */
int moat_outfile_open(struct moat_outfile *o, const char *path, mode_t mode, unsigned flags)
{
	struct stat st;
	int r;

	memset(o, 0, sizeof(*o));
	o->fd = -1;
	if (!path || !*path)
		return -EINVAL;
	if (snprintf(o->path, sizeof(o->path), "%s", path) >= (int)sizeof(o->path))
		return -ENAMETOOLONG;
	if (lstat(path, &st) < 0) {
		if (errno != ENOENT)
			return -errno;
		st.st_mode = S_IFREG;    /* absent: created by the rename */
	} else if (S_ISLNK(st.st_mode)) {
		/* replace what the link names, never the link itself */
		if (!realpath(path, o->path))
			return -errno;
		if (stat(o->path, &st) < 0)
			return -errno;
	}
	if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
		if (!(flags & MOAT_OUT_STREAM))
			return -EINVAL;
		o->fd = open(o->path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
		if (o->fd < 0)
			return -errno;
		o->in_place = 1;
		return 0;
	}
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (flags & MOAT_OUT_PID_TMP)
		r = snprintf(o->tmp, sizeof(o->tmp), "%s.%d.tmp", o->path, (int)getpid());
	else
		r = snprintf(o->tmp, sizeof(o->tmp), "%s.tmp", o->path);
	if (r < 0 || r >= (int)sizeof(o->tmp))
		return -ENAMETOOLONG;
	/* O_NOFOLLOW: a link planted at the temporary's name is not followed */
	o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (o->fd < 0)
		return -errno;
	if (fchmod(o->fd, mode) < 0) {
		r = -errno;
		moat_outfile_abort(o);
		return r;
	}
	return 0;
}

/* moat_outfile_fdopen - stdio over a duplicate; o->fd stays for commit */
FILE *moat_outfile_fdopen(struct moat_outfile *o)
{
	int fd = dup(o->fd), e;
	FILE *f = fd < 0 ? NULL : fdopen(fd, "w");

	if (!f) {
		e = errno;
		if (fd >= 0)
			close(fd);
		moat_outfile_abort(o);
		errno = e;
	}
	return f;
}

/* moat_outfile_commit - fsync, close, rename over the target */
int moat_outfile_commit(struct moat_outfile *o, int do_fsync)
{
	int r = 0;

	if (o->fd < 0)
		return -EBADF;
	if (o->in_place) {
		if (close(o->fd) < 0)
			r = -errno;
		o->fd = -1;
		return r;
	}
	if (do_fsync && fsync(o->fd) < 0)
		r = -errno;
	if (close(o->fd) < 0 && !r)
		r = -errno;
	o->fd = -1;
	if (!r && rename(o->tmp, o->path) < 0)
		r = -errno;
	if (r) {
		unlink(o->tmp);
		return r;
	}
	if (do_fsync)
		sync_dir(o->path);
	return 0;
}

/* moat_outfile_abort - close and remove the temporary */
void moat_outfile_abort(struct moat_outfile *o)
{
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
	if (!o->in_place && o->tmp[0])
		unlink(o->tmp);
}
