/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_outfile.c - moat_outfile never replaces what is not a regular file
 * (regression: moat-zonecheck -o /dev/null turned the host's /dev/null into
 * a regular file), and replaces files atomically.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>

#include "outfile.h"

static char dir[] = "/tmp/moat-outfile-XXXXXX";

enum kind { K_ABSENT, K_REG, K_LINK, K_FIFO, K_CHR, K_DIR };

struct ocase {
	const char *name;
	enum kind kind;
	unsigned flags;
	int want;            /* moat_outfile_open's result */
	int want_in_place;
};

static const struct ocase cases[] = {
	{ "absent file is created",        K_ABSENT, 0,               0,       0 },
	{ "regular file is replaced",      K_REG,    0,               0,       0 },
	{ "regular file, pid temporary",   K_REG,    MOAT_OUT_PID_TMP, 0,      0 },
	{ "symlink: its target replaced",  K_LINK,   0,               0,       0 },
	{ "fifo refused without stream",   K_FIFO,   0,               -EINVAL, 0 },
	{ "fifo written in place",         K_FIFO,   MOAT_OUT_STREAM, 0,       1 },
	{ "directory refused",             K_DIR,    MOAT_OUT_STREAM, -EISDIR, 0 },
	/* last: without CAP_MKNOD the rest of the table is reported skipped */
	{ "char device refused",           K_CHR,    0,               -EINVAL, 0 },
	{ "char device written in place",  K_CHR,    MOAT_OUT_STREAM, 0,       1 },
};

static mode_t type_of(const char *p)
{
	struct stat st;

	assert_int_equal(lstat(p, &st), 0);
	return st.st_mode & S_IFMT;
}

static void slurp(const char *p, char *buf, size_t sz)
{
	FILE *f = fopen(p, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sz - 1, f);
	buf[n] = 0;
	fclose(f);
}

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct ocase *c = &cases[i];
		char path[256], real[256], buf[64];
		struct moat_outfile o;
		int rd = -1, r;
		mode_t before = 0;

		snprintf(path, sizeof(path), "%s/t%zu", dir, i);
		snprintf(real, sizeof(real), "%s/t%zu.real", dir, i);
		switch (c->kind) {
		case K_ABSENT:
			break;
		case K_REG:
			close(open(path, O_WRONLY | O_CREAT, 0600));
			break;
		case K_LINK:
			close(open(real, O_WRONLY | O_CREAT, 0600));
			assert_int_equal(symlink(real, path), 0);
			break;
		case K_FIFO:
			assert_int_equal(mkfifo(path, 0600), 0);
			rd = open(path, O_RDONLY | O_NONBLOCK);   /* a reader, so open for write does not block */
			assert_true(rd >= 0);
			break;
		case K_CHR:
			if (mknod(path, S_IFCHR | 0666, makedev(1, 3)) < 0) {
				print_message("# %s: mknod: %s\n", c->name, strerror(errno));
				skip();    /* reported as SKIP, never as a pass */
			}
			break;
		case K_DIR:
			assert_int_equal(mkdir(path, 0700), 0);
			break;
		}
		if (c->kind != K_ABSENT)
			before = type_of(path);
		r = moat_outfile_open(&o, path, 0640, c->flags);
		if (r != c->want)
			fail_msg("%s: open got %d, want %d", c->name, r, c->want);
		if (r == 0) {
			assert_int_equal(o.in_place, c->want_in_place);
			assert_int_equal(write(o.fd, "new\n", 4), 4);
			assert_int_equal(moat_outfile_commit(&o, 1), 0);
		}
		/* whatever happened, the path keeps its type (absent -> regular) */
		if (c->kind == K_ABSENT)
			assert_int_equal(type_of(path), S_IFREG);
		else if (type_of(path) != before)
			fail_msg("%s: path type changed %o -> %o", c->name, before, type_of(path));
		if (r == 0 && !c->want_in_place) {
			slurp(c->kind == K_LINK ? real : path, buf, sizeof(buf));
			if (strcmp(buf, "new\n"))
				fail_msg("%s: contents '%s'", c->name, buf);
			struct stat st;
			assert_int_equal(stat(path, &st), 0);
			assert_int_equal(st.st_mode & 0777, 0640);
		}
		if (r == 0 && c->kind == K_FIFO) {
			assert_int_equal(read(rd, buf, sizeof(buf)), 4);
		}
		if (rd >= 0)
			close(rd);
	}
}

/* abort leaves the target as it was and no temporary behind */
static void test_abort(void **state)
{
	char path[256], tmp[300], buf[64];
	struct moat_outfile o;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/abort", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_int_equal(write(fd, "old\n", 4), 4);
	close(fd);
	assert_int_equal(moat_outfile_open(&o, path, 0600, 0), 0);
	assert_int_equal(write(o.fd, "half", 4), 4);
	moat_outfile_abort(&o);
	slurp(path, buf, sizeof(buf));
	assert_string_equal(buf, "old\n");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(access(tmp, F_OK), -1);
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_abort),
	};

	if (!mkdtemp(dir))
		return 1;
	return cmocka_run_group_tests(tests, NULL, teardown);
}
