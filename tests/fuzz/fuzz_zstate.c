/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_zstate.c - a zone's saved state (sources/zstate.c: base file plus
 * journal of deltas) read back after damage: the input chooses listings,
 * the target writes a real base and journal with zstate_save_base() and
 * zstate_append(), then damages the files with the input's (file, offset,
 * byte) triples and an optional cut, optionally recomputes the base's
 * checksum (a damage the checksum cannot see), and loads them as
 * moat-controld does at start (in /dev/shm: fsync on tmpfs costs nothing).
 * Invariants: no crash; a damaged base with its old checksum is refused
 * (-EBADMSG); untouched files load everything
 * written; a load gives sorted listings and never more journal records
 * than were written; a cut journal is cut back to its last good record.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lvec.h"
#include "zstate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* listing - the i-th listing from 5 input bytes: an IPv4 /24../32 */
static void listing(const uint8_t *p, struct moat_listing *l)
{
	memset(l, 0, sizeof(*l));
	l->pfx.family = 4; /* MOAT_AF_INET */
	l->pfx.plen = (uint8_t)(24 + p[4] % 9);
	memcpy(l->pfx.addr, p, 4);
	for (unsigned b = l->pfx.plen; b < 32; b++)
		l->pfx.addr[b / 8] &= (uint8_t)~(0x80u >> (b % 8));
	l->code = 0x7f000002u + (p[4] >> 4);
}

/* slurp - a whole file (NULL when unreadable); *len its size */
static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b = NULL;
	long n;

	*len = 0;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && (b = malloc((size_t)n + 1))) {
		rewind(f);
		*len = fread(b, 1, (size_t)n, f);
	}
	fclose(f);
	return b;
}

/* differs - is path's content other than (b, n)? */
static int differs(const char *path, const uint8_t *b, size_t n)
{
	size_t m;
	uint8_t *c = slurp(path, &m);
	int d = !c || m != n || memcmp(b, c, n);

	free(c);
	return d;
}

/* damage - apply (file, offset, byte) triples; returns files changed
 * (bits: 1 base, 2 journal; a byte set back to what it was is no change) */
static int damage(const char *base, const char *journal, const uint8_t *p, size_t n)
{
	int changed = 0;
	size_t bl, jl;
	uint8_t *b0 = slurp(base, &bl), *j0 = slurp(journal, &jl);

	for (size_t i = 0; i + 3 <= n; i += 3) {
		const char *path = p[i] & 1 ? journal : base;
		int fd = open(path, O_RDWR);
		struct stat st;

		if (fd < 0)
			continue;
		if (fstat(fd, &st) == 0 && st.st_size > 0) {
			off_t off = (off_t)(((size_t)(p[i] >> 1) << 8 | p[i + 1]) % (size_t)st.st_size);
			if (pwrite(fd, &p[i + 2], 1, off) != 1)
				abort();
		}
		close(fd);
	}
	changed = (b0 && differs(base, b0, bl)) | (j0 && differs(journal, j0, jl)) << 1;
	free(b0);
	free(j0);
	return changed;
}

/* fix_sum - recompute the base's trailing FNV-1a (zstate.c's format) */
static void fix_sum(const char *base)
{
	FILE *f = fopen(base, "r+b");
	uint64_t h = 0xcbf29ce484222325ULL;
	long len;
	int c;

	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	for (long i = 0; i + 8 < len + 0 && (c = fgetc(f)) != EOF; i++) {
		h ^= (uint8_t)c;
		h *= 0x100000001b3ULL;
	}
	if (len >= 8) {
		fseek(f, len - 8, SEEK_SET);
		fwrite(&h, sizeof(h), 1, f);
	}
	fclose(f);
}

static char cur_dir[64], cur_base[64], cur_journal[64];

/* fail - a broken invariant: remove this input's files (the host stays as
 * it was), then abort for libFuzzer to save the input */
static void fail(void)
{
	unlink(cur_base);
	unlink(cur_journal);
	rmdir(cur_dir);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char dir[] = "/dev/shm/moat-fuzz-zstate-XXXXXX", base[64], journal[64];
	struct moat_listing l[16], *got = NULL;
	struct zstate_meta m = { .serial = 1, .soa_refresh = 60 }, gm;
	struct zstate_info info = { 0 }, ginfo;
	struct zstate_replay rep;
	size_t nb, nrec, got_n = 0, off = 3;
	int r, changed;

	if (size < 3)
		return 0;
	nb = data[0] & 15;
	nrec = (data[0] >> 4) & 3;
	if (size < off + 5 * (nb + nrec * 2))
		return 0;
	if (!mkdtemp(dir))
		abort();
	snprintf(base, sizeof(base), "%s/zone-bl.test.state", dir);
	snprintf(journal, sizeof(journal), "%s/zone-bl.test.journal", dir);
	snprintf(cur_dir, sizeof(cur_dir), "%s", dir);
	snprintf(cur_base, sizeof(cur_base), "%s", base);
	snprintf(cur_journal, sizeof(cur_journal), "%s", journal);
	for (size_t i = 0; i < nb; i++, off += 5)
		listing(data + off, &l[i]);
	/* the base wants sorted listings, as a zone's walk gives them */
	for (size_t i = 1; i < nb; i++)
		for (size_t j = i; j > 0 && moat_listing_cmp(&l[j - 1], &l[j]) > 0; j--) {
			struct moat_listing t = l[j];
			l[j] = l[j - 1];
			l[j - 1] = t;
		}
	if (zstate_save_base(base, journal, "bl.test", &m, l, nb, &info) != 0)
		fail();
	for (size_t k = 0; k < nrec; k++, off += 10) {
		struct moat_listing add, del;
		uint32_t from = m.serial;

		listing(data + off, &add);
		listing(data + off + 5, &del);
		m.serial++;
		if (zstate_append(journal, from, &m, &add, 1, &del, 1, &info) != 0)
			fail();
	}
	changed = damage(base, journal, data + off, (size - off) / 3 * 3);
	if (data[1] & 1)
		fix_sum(base); /* damage the checksum cannot see */
	if (data[1] & 2) {
		struct stat st;
		if (stat(journal, &st) == 0 && st.st_size && truncate(journal, data[2] % st.st_size) == 0)
			changed |= 2;
	}
	r = zstate_load(base, journal, "bl.test", 7, &gm, &got, &got_n, &ginfo, &rep);
	if ((changed & 1) && !(data[1] & 1) && r != -EBADMSG)
		fail(); /* damage the checksum sees must be refused */
	if (r == 0) {
		for (size_t i = 1; i < got_n; i++)
			if (moat_listing_cmp(&got[i - 1], &got[i]) > 0)
				fail();
		if (rep.applied > nrec)
			fail();
		if (!changed && (rep.applied != nrec || gm.serial != m.serial || rep.stop))
			fail();
		free(got);
	} else if (r != -EBADMSG && r != -ENOMEM) {
		fail();
	}
	unlink(base);
	unlink(journal);
	rmdir(dir);
	return 0;
}
