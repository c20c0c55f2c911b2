/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * zstate_diskfull.c - a zone's saved state when the disk fills up
 * (sources/zstate.c), run by test_diskfull.sh inside a private mount
 * namespace on a small tmpfs (DIR, the only argument).  Cases (TAP):
 *   a base of 100 listings and one journal record are written;
 *   the file system filled to the last byte: a base rewrite of 3,000
 *   listings fails with -ENOSPC, the old base and journal still load with
 *   the old content, and no temporary file is left in DIR;
 *   a journal append that does not fit fails and the journal is cut back to
 *   its previous end (the load gives the same state as before);
 *   space freed: the rewrite succeeds and loads 3,000 listings.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lvec.h"
#include "zstate.h"

static int n_case;

static void tap(int ok, const char *fmt, const char *detail)
{
	printf("%s %d - %s%s%s\n", ok ? "ok" : "not ok", ++n_case, fmt,
	       detail ? ": " : "", detail ? detail : "");
	fflush(stdout);
}

/* listings - n distinct /32s from 10.0.0.0 */
static struct moat_listing *listings(size_t n)
{
	struct moat_listing *l = calloc(n, sizeof(*l));

	for (size_t i = 0; l && i < n; i++) {
		l[i].pfx.family = 4;
		l[i].pfx.plen = 32;
		l[i].pfx.addr[0] = 10;
		l[i].pfx.addr[1] = (uint8_t)(i >> 16);
		l[i].pfx.addr[2] = (uint8_t)(i >> 8);
		l[i].pfx.addr[3] = (uint8_t)i;
		l[i].code = 0x7f000002;
	}
	return l;
}

/* load - zstate_load; the listing count, or -errno; *serial set */
static long load(const char *base, const char *journal, uint32_t *serial)
{
	struct zstate_meta m;
	struct zstate_info info;
	struct moat_listing *l = NULL;
	size_t n = 0;
	int r = zstate_load(base, journal, "bl.test", 1, &m, &l, &n, &info, NULL);

	if (r < 0)
		return r;
	free(l);
	*serial = m.serial;
	return (long)n;
}

/* stray - a file in dir other than the state files (a temporary left) */
static int stray(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' && strcmp(e->d_name, "zone-bl.test.state") &&
		    strcmp(e->d_name, "zone-bl.test.journal") && strcmp(e->d_name, "filler"))
			n++;
	if (d)
		closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	char base[512], journal[512], filler[512], msg[256];
	struct zstate_meta m = { .serial = 10 };
	struct zstate_info info = { 0 };
	struct moat_listing *small = listings(100), *big = listings(3000);
	uint32_t serial = 0;
	long n;
	int r, fd;

	if (argc != 2 || !small || !big)
		return 2;
	snprintf(base, sizeof(base), "%s/zone-bl.test.state", argv[1]);
	snprintf(journal, sizeof(journal), "%s/zone-bl.test.journal", argv[1]);
	snprintf(filler, sizeof(filler), "%s/filler", argv[1]);
	printf("TAP version 13\n1..5\n");

	/* 1: the state before the disk fills */
	r = zstate_save_base(base, journal, "bl.test", &m, small, 100, &info);
	m.serial = 11;
	if (!r)
		r = zstate_append(journal, 10, &m, &big[100], 1, &small[0], 1, &info);
	n = load(base, journal, &serial);
	snprintf(msg, sizeof(msg), "save=%d load=%ld serial=%u", r, n, serial);
	tap(r == 0 && n == 100 && serial == 11, "base of 100 listings + one IXFR record written", msg);

	/* fill the file system to its last byte */
	fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	{
		static char blk[4096];
		size_t chunk = sizeof(blk);

		while (fd >= 0 && chunk) {
			if (write(fd, blk, chunk) < 0)
				chunk /= 2; /* ENOSPC: the rest in smaller pieces */
		}
		if (fd >= 0)
			close(fd);
	}

	/* 2: a base rewrite that does not fit */
	m.serial = 12;
	r = zstate_save_base(base, journal, "bl.test", &m, big, 3000, &info);
	n = load(base, journal, &serial);
	snprintf(msg, sizeof(msg), "save=%s, then load=%ld serial=%u, stray files=%d",
		 strerror(-r), n, serial, stray(argv[1]));
	tap(r == -ENOSPC && n == 100 && serial == 11 && stray(argv[1]) == 0,
	    "disk full: base rewrite fails with ENOSPC, the old state still loads, no temporary left", msg);

	/* 3: a journal append that does not fit */
	struct stat st0, st1;

	stat(journal, &st0);
	m.serial = 12;
	info.valid = 1;
	r = zstate_append(journal, 11, &m, big, 3000, NULL, 0, &info);
	stat(journal, &st1);
	n = load(base, journal, &serial);
	snprintf(msg, sizeof(msg), "append=%s, journal %lld -> %lld bytes, load=%ld serial=%u",
		 strerror(-r), (long long)st0.st_size, (long long)st1.st_size, n, serial);
	tap(r < 0 && st1.st_size == st0.st_size && n == 100 && serial == 11,
	    "disk full: journal append fails and is cut back to its previous end", msg);

	/* 4: space freed: the same rewrite now succeeds */
	unlink(filler);
	m.serial = 12;
	r = zstate_save_base(base, journal, "bl.test", &m, big, 3000, &info);
	n = load(base, journal, &serial);
	snprintf(msg, sizeof(msg), "save=%d load=%ld serial=%u", r, n, serial);
	tap(r == 0 && n == 3000 && serial == 12, "space freed: the rewrite succeeds and loads", msg);

	/* 5: positive control for case 2: the filler really filled the disk */
	fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	{
		static char blk[4096];
		long long total = 0;
		ssize_t w;

		while (fd >= 0 && (w = write(fd, blk, sizeof(blk))) > 0)
			total += w;
		snprintf(msg, sizeof(msg), "a filler stopped at %lld bytes with %s", total,
			 strerror(errno));
		tap(fd >= 0 && errno == ENOSPC, "the tmpfs is small and really fills (ENOSPC)", msg);
		if (fd >= 0)
			close(fd);
		unlink(filler);
	}
	free(small);
	free(big);
	return 0;
}
