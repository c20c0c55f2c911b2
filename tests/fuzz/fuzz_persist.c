/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_persist.c - moat-controld's own state files (control/persist.c)
 * written by the daemon's functions, damaged, and read back as
 * moat-controld does at start, into its struct cd emptied as at a fresh
 * start (built once: a new table's first publish walks all 2^24 /24s,
 * seconds under the sanitizers).  data[0] % 3 picks the kind:
 *
 *   0  operator and moat-smtpd entries (entries.state + entries.journal):
 *      the input's adds, deletes, batches and base saves through
 *      zm_entry_add, zm_entry_del, zm_batch_commit and persist_save_entries,
 *      then zm_entries_restore;
 *   1  live answers (live-live.test.state): zm_live_answer and
 *      persist_save_live, then persist_load_live;
 *   2  the tarpit's ISN key (isn.key): persist_isn_key before and after.
 *
 * Damage: the input's (file, offset, byte) triples or (file, field,
 * record, value) ones setting a record's family, length, padding, a host
 * bit, action, source, expiry or reason, a cut, the checksums
 * recomputed (the base's trailing FNV-1a, each journal record's ej_sum) so
 * the damage passes them, or the file replaced by a FIFO or a directory.
 * Invariants (abort() after removing the input's files):
 *   - never a crash, a hang (libFuzzer's -timeout) or a sanitizer report;
 *   - untouched files restore exactly the unexpired entries / answers
 *     written (prefix, source, action, reason, expiry);
 *   - a journal damaged or cut at byte B restores the base plus the
 *     batches that end before B, exactly;
 *   - damage the checksum sees is refused: the file kept as NAME.bad, no
 *     entry of it restored (of an entries base: only entries its journal
 *     wrote come back);
 *   - after any start, a change and a restart restore exactly what the
 *     daemon held;
 *   - whatever is restored: every entry is where the index says
 *     (zm_entries_find), has a canonical prefix (moat_prefix_str and
 *     moat_prefix_parse give it back), an action drop/tarpit/allow, source
 *     operator or smtp, no expiry in the past, and the table holds exactly
 *     d->entries (vt_db_source_dump); live answers in the table are records
 *     of the file with time left;
 *   - the ISN key: kept when intact (0, same key), a new one saved 0600
 *     when damaged (1), -errno when the path is not a regular file, which
 *     is never replaced, removed or moved.
 * Everything lives in a mkdtemp directory under /dev/shm, removed per
 * input.  FUZZ_VERBOSE=1 shows the daemon's log lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "controld.h"
#include "fuzz_cd.h"
#include "log.h"
#include "lvec.h"
#include "persist.h"
#include "prefix.h"
#include "zstate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define MAX_OPS 24
#define MAX_ENT 256
#define LIVE_ZONE "live.test"

static char cur_dir[64];

/* fail - a broken invariant: the input's files removed (the host stays as
 * it was), then abort for libFuzzer to keep the input */
static void fail(const char *why)
{
	fprintf(stderr, "fuzz_persist: invariant broken: %s\n", why);
	fuzz_rm_tree(cur_dir);
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz_persist", 0);
	log_set_level(getenv("FUZZ_VERBOSE") ? LOG_LVL_DEBUG : LOG_LVL_ERR);
	return 0;
}

/* ------------------------------------------------------------ files */

/* slurp - a whole file (NULL when unreadable or not a regular file) */
static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	FILE *f;
	uint8_t *b = NULL;
	long n;

	*len = 0;
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) || !(f = fopen(path, "rb")))
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && (b = malloc((size_t)n + 1))) {
		rewind(f);
		*len = fread(b, 1, (size_t)n, f);
	}
	fclose(f);
	return b;
}

static off_t fsize(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISREG(st.st_mode) ? st.st_size : -1;
}

/* first_diff - first offset where the file differs from (b, n): n when the
 * same (a longer file is no concern here: damage never grows one) */
static size_t first_diff(const char *path, const uint8_t *b, size_t n)
{
	size_t m, i = 0;
	uint8_t *c = slurp(path, &m);

	if (!c)
		return 0;
	while (i < n && i < m && b[i] == c[i])
		i++;
	free(c);
	return i < n ? i : (m < n ? m : n);
}

/* fix_sum - recompute a whole file's trailing FNV-1a (zstate_write_file) */
static void fix_sum(const char *path)
{
	size_t n;
	uint8_t *b = slurp(path, &n);

	if (b && n >= 8) {
		uint64_t h = zstate_checksum(ZSTATE_CHECKSUM_INIT, b, n - 8);
		int fd = open(path, O_WRONLY);

		if (fd >= 0) {
			if (pwrite(fd, &h, 8, (off_t)(n - 8)) != 8)
				fail("pwrite");
			close(fd);
		}
	}
	free(b);
}

/* rec_at - offset of record k in a file's bytes: after the 16-byte header
 * (a base, live answers), or walking the journal's heads; -1 past the end */
static long rec_at(const uint8_t *b, size_t n, int journal, size_t recsz, size_t k)
{
	size_t off = 0;

	if (!journal)
		return 16 + (k + 1) * recsz + 8 <= n ? (long)(16 + k * recsz) : -1;
	while (off + sizeof(struct ej_head) <= n) {
		struct ej_head h;

		memcpy(&h, b + off, sizeof(h));
		if (h.n > (n - off - sizeof(h)) / recsz)
			return -1;
		if (k < h.n)
			return (long)(off + sizeof(h) + k * recsz);
		k -= (size_t)h.n;
		off += sizeof(h) + (size_t)h.n * recsz;
	}
	return -1;
}

/* set_field - field f of the record at r to something from v: what a file
 * moat-controld did not write may hold (entries: a pe_record, live: a
 * pl_record) */
static void set_field(uint8_t *r, int live, unsigned f, uint8_t v)
{
	size_t o_code = live ? offsetof(struct pl_record, code) : offsetof(struct pe_record, action);
	size_t o_exp = live ? offsetof(struct pl_record, expires) : offsetof(struct pe_record, expires);
	int64_t e = v & 1 ? 1 : INT64_MAX - v;  /* long past, or far ahead */
	uint32_t c = live ? (uint32_t)v << 24 | 2 : v % 5u;
	uint16_t src = (uint16_t)(v % 20u);     /* 16: the live zone's id */

	switch (f) {
	case 0: r[offsetof(struct moat_prefix, family)] = v; break;
	case 1: r[offsetof(struct moat_prefix, plen)] = v; break;
	case 2: r[offsetof(struct moat_prefix, pad) + (v & 1)] = v; break;
	case 3: r[offsetof(struct moat_prefix, addr) + v % 16] ^= (uint8_t)(1u << (v >> 5)); break;
	case 4: memcpy(r + o_code, &c, sizeof(c)); break;
	case 5:
		if (!live)
			memcpy(r + offsetof(struct pe_record, source), &src, sizeof(src));
		break;
	case 6: memcpy(r + o_exp, &e, sizeof(e)); break;
	default:
		if (!live)
			memset(r + offsetof(struct pe_record, reason), 'x',
			       sizeof(((struct pe_record *)0)->reason));
	}
}

/* damage - the input's triples on the files p0 and p1 (bit 0 of the first
 * byte picks one): with bit 7 clear (offset 14 bits, byte) a byte
 * written; with bit 7 set (field, record, value) a field of a record set
 * (live: p0 holds pl_records, else pe_records; p1 is the journal) */
static void damage(const char *p0, const char *p1, int live, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 3 <= n; i += 3) {
		const char *path = p[i] & 1 ? p1 : p0;
		size_t sz, recsz = live ? sizeof(struct pl_record) : sizeof(struct pe_record);
		uint8_t *b = path ? slurp(path, &sz) : NULL;
		long at;

		if (b && sz) {
			if (!(p[i] & 0x80))
				b[((size_t)(p[i] >> 1) << 8 | p[i + 1]) % sz] = p[i + 2];
			else if ((at = rec_at(b, sz, path == p1, recsz, p[i + 1])) >= 0)
				set_field(b + at, live, (p[i] >> 1) & 7, p[i + 2]);
			int fd = open(path, O_WRONLY);

			if (fd < 0 || pwrite(fd, b, sz, 0) != (ssize_t)sz)
				fail("rewriting a file");
			close(fd);
		}
		free(b);
	}
}

/* fix_journal - every record head that fits gets the sum of what follows
 * it (head with sum 0, then its records), so damage passes the check */
static void fix_journal(const char *path)
{
	size_t n, off = 0;
	uint8_t *b = slurp(path, &n);

	while (b && n - off >= sizeof(struct ej_head)) {
		struct ej_head h;

		memcpy(&h, b + off, sizeof(h));
		if (h.n > (n - off - sizeof(h)) / sizeof(struct pe_record))
			break;
		size_t rl = (size_t)h.n * sizeof(struct pe_record);

		h.sum = 0;
		h.sum = zstate_checksum(zstate_checksum(ZSTATE_CHECKSUM_INIT, &h, sizeof(h)),
					b + off + sizeof(h), rl);
		memcpy(b + off, &h, sizeof(h));
		off += sizeof(h) + rl;
	}
	if (b) {
		int fd = open(path, O_WRONLY);

		if (fd >= 0) {
			if (pwrite(fd, b, n, 0) != (ssize_t)n)
				fail("pwrite");
			close(fd);
		}
	}
	free(b);
}

/* special - path replaced by a FIFO (kind 1) or a directory (2); its inode
 * in *ino (0: nothing made) */
static void special(const char *path, int kind, ino_t *ino)
{
	struct stat st;

	*ino = 0;
	if (kind != 1 && kind != 2)
		return;
	unlink(path);
	if ((kind == 1 ? mkfifo(path, 0600) : mkdir(path, 0700)) < 0 || lstat(path, &st) < 0)
		fail("mkfifo/mkdir");
	*ino = st.st_ino;
}

/* special_kept - the FIFO or directory is still there, untouched */
static void special_kept(const char *path, int kind, ino_t ino)
{
	struct stat st;
	char bad[300];

	if (!ino)
		return;
	if (lstat(path, &st) < 0 || st.st_ino != ino ||
	    (kind == 1 ? !S_ISFIFO(st.st_mode) : !S_ISDIR(st.st_mode)))
		fail("a FIFO or directory at a state path was replaced, moved or removed");
	snprintf(bad, sizeof(bad), "%s.bad", path);
	if (lstat(bad, &st) == 0)
		fail("a FIFO or directory at a state path was kept as .bad");
}

/* ------------------------------------------------------- the daemon */

/* cd_make - a struct cd as moat-controld's main builds it (no fast path,
 * no listeners): made once, since a fresh table's policy and first
 * publish walk all 2^24 /24s (seconds under the sanitizers) */
static struct cd *cd_make(void)
{
	struct cd *d = calloc(1, sizeof(*d));
	struct moat_config *boot = malloc(sizeof(*boot));
	char err[CFG_ERRLEN];
	static const char text[] = "[daemon]\nstate_dir = /nonexistent\n"
				   "socket = /nonexistent/control.sock\n\n"
				   "[zone " LIVE_ZONE "]\ntype = live\n";

	if (!d || !boot)
		abort();
	if (cfg_load_string(&d->cfg, "fuzz_persist.conf", text, err) < 0) {
		fprintf(stderr, "fuzz_persist: %s\n", err);
		fail("configuration");
	}
	d->epfd = -1;
	d->started = time(NULL);
	cd = d;
	if (zm_init(d, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_persist: %s\n", err);
		fail("zm_init");
	}
	*boot = d->cfg;
	if (zm_apply_config(d, boot, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_persist: %s\n", err);
		fail("zm_apply_config");
	}
	free(boot);
	zm_publish(d, "start");
	return d;
}

/* drop_source - every listing of a source out of the table */
static void drop_source(struct cd *d, uint16_t src)
{
	struct moat_listing *l = NULL;
	size_t n = 0;
	char err[256];

	vt_db_source_dump(d->db, src, &l, &n);
	for (size_t i = 0; i < n; i++)
		l[i].ttl = 0;
	if (n && vt_db_source_apply(d->db, src, NULL, 0, l, n, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_persist: %s\n", err);
		fail("emptying the table");
	}
	free(l);
}

/* cd_new - the daemon as it starts on dir: the one struct cd with an
 * empty table, no entries, every counter of the entries' files at zero */
static struct cd *cd_new(const char *dir)
{
	static struct cd *d;

	if (!d)
		d = cd_make();
	drop_source(d, CD_SRC_OPERATOR);
	drop_source(d, CD_SRC_SMTP);
	for (int i = 0; i < d->nzones; i++)
		drop_source(d, d->zones[i]->id);
	free(d->entries);
	ent_index_free(&d->eidx);
	d->entries = NULL;
	d->nentries = d->capentries = 0;
	d->entries_base_bytes = d->entries_journal_bytes = 0;
	d->entries_journal_appends = d->entries_compactions = 0;
	d->entries_unsaved = 0;
	d->entries_retry_at = 0;
	d->persist_errors = 0;
	d->restoring = d->live_dirty = 0;
	d->live_saved_at = 0;
	snprintf(d->cfg.state_dir, sizeof(d->cfg.state_dir), "%s", dir);
	zm_publish(d, "reset");
	cd = d;
	return d;
}

/* make_prefix - family, length and address from 6 input bytes */
static void make_prefix(const uint8_t *b, struct moat_prefix *p)
{
	memset(p, 0, sizeof(*p));
	if (b[0] & 0x80) {
		p->family = MOAT_AF_INET6;
		p->plen = (uint8_t)(16 + (b[0] & 0x7f) % 113);
		for (int i = 0; i < 16; i++)
			p->addr[i] = (uint8_t)(b[1 + i % 4] ^ (i * 37));
	} else {
		p->family = MOAT_AF_INET;
		p->plen = (uint8_t)(16 + (b[0] & 0x7f) % 17); /* a publish per change: few /24s */
		memcpy(p->addr, b + 1, 4);
	}
	for (unsigned i = p->plen; i < 128; i++)
		p->addr[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
}

/* --------------------------------------------------------- entries */

/* a model of the entries: what the daemon holds after each change */
struct model {
	struct cd_entry e[MAX_ENT];
	size_t n;
};

static ssize_t model_find(const struct model *m, const struct moat_prefix *p, uint16_t src)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->e[i].source == src && !memcmp(&m->e[i].pfx, p, sizeof(*p)))
			return (ssize_t)i;
	return -1;
}

static void model_put(struct model *m, const struct cd_entry *e)
{
	ssize_t i = model_find(m, &e->pfx, e->source);

	if (i >= 0)
		m->e[i] = *e;
	else if (m->n < MAX_ENT)
		m->e[m->n++] = *e;
	else
		fail("model full");
}

static void model_del(struct model *m, const struct moat_prefix *p, uint16_t src)
{
	ssize_t i = model_find(m, p, src);

	if (i >= 0)
		m->e[i] = m->e[--m->n];
}

/* same_entry - the fields a restore must give back */
static int same_entry(const struct cd_entry *a, const struct cd_entry *b)
{
	return a->source == b->source && !memcmp(&a->pfx, &b->pfx, sizeof(a->pfx)) &&
	       a->action == b->action && a->expires == b->expires && a->added == b->added &&
	       !strcmp(a->reason, b->reason);
}

/* ever_put - every entry written at some time (a damaged base restores
 * some of them), each once */
static void ever_put(struct model *ever, const struct cd_entry *e)
{
	for (size_t i = 0; i < ever->n; i++)
		if (same_entry(&ever->e[i], e))
			return;
	if (ever->n < MAX_ENT)
		ever->e[ever->n++] = *e;
}

/* restored_is - d's entries are exactly m's unexpired ones */
static void restored_is(const struct cd *d, const struct model *m, time_t now, const char *what)
{
	size_t live = 0;

	for (size_t i = 0; i < m->n; i++) {
		const struct cd_entry *e = &m->e[i];

		if (e->expires && e->expires <= now)
			continue;
		live++;
		ssize_t k = zm_entries_find((struct cd *)d, &e->pfx, e->source);

		if (k < 0 || !same_entry(&d->entries[k], e))
			fail(what);
	}
	if (live != d->nentries)
		fail(what);
}

/* entries_sane - what any restore must give: the index, each entry's
 * fields, and the table holding exactly d's entries (restored: none
 * expired; the daemon running holds expired ones until its next tick) */
static void entries_sane(struct cd *d, time_t now, int restored)
{
	const char *bad = fuzz_entries_check(d);

	if (bad)
		fail(bad);
	for (size_t i = 0; restored && i < d->nentries; i++)
		if (d->entries[i].expires && d->entries[i].expires <= now)
			fail("an expired entry restored");
}

/* a snapshot: the model when the journal was this long */
struct snap {
	off_t jsize;
	struct model m;
};

/* entry_of - an entry from 8 input bytes */
static void entry_of(const uint8_t *b, time_t now, struct cd_entry *e)
{
	memset(e, 0, sizeof(*e));
	make_prefix(b + 1, &e->pfx);
	e->action = (uint32_t[]){ MOAT_ACT_DROP, MOAT_ACT_TARPIT, MOAT_ACT_ALLOW }[b[6] % 3];
	e->source = b[6] & 0x08 ? CD_SRC_SMTP : CD_SRC_OPERATOR;
	e->added = now - 10;
	switch ((b[6] >> 4) % 3) {
	case 1: e->expires = now - 1000 - b[7]; break;  /* already past */
	case 2: e->expires = now + 3600 + b[7]; break;
	default: e->expires = 0;
	}
	if (b[7] & 0x80)
		memset(e->reason, 'r', sizeof(e->reason) - 1);
	else
		snprintf(e->reason, sizeof(e->reason), "fuzz %u", b[7]);
}

static void fuzz_entries(const char *dir, const uint8_t *data, size_t size)
{
	char base[128], journal[128], bad[140], err[512];
	uint8_t fl = data[1];
	size_t nops = data[3] % (MAX_OPS + 1), off = 4;
	time_t now = time(NULL);
	struct snap *sn = calloc(MAX_OPS + 2, sizeof(*sn));
	size_t nsn = 0;
	struct model *m = calloc(1, sizeof(*m)), *ever = calloc(1, sizeof(*ever));
	struct cd *d;

	if (!sn || !m || !ever)
		abort();
	if (size < off + 8 * nops)
		nops = (size - off) / 8;
	snprintf(base, sizeof(base), "%s/entries.state", dir);
	snprintf(journal, sizeof(journal), "%s/entries.journal", dir);
	snprintf(bad, sizeof(bad), "%s.bad", base);
	d = cd_new(dir);
	/* a start on an empty directory: nothing to restore */
	if (zm_entries_restore(d) != -ENOENT)
		fail("a restore from an empty directory");
	if (data[2] & 1)
		persist_save_entries(d);
	sn[nsn++] = (struct snap){ fsize(journal) > 0 ? fsize(journal) : 0, *m };
	for (size_t k = 0; k < nops; k++, off += 8) {
		const uint8_t *b = data + off;
		uint64_t comp = d->entries_compactions;
		struct cd_entry e;
		int r = 0;

		entry_of(b, now, &e);
		switch (b[0] & 3) {
		case 0: /* moatctl add / a moat-smtpd report */
			if (zm_entry_add(d, &e, err, sizeof(err)) == 0) {
				model_put(m, &e);
				ever_put(ever, &e);
			}
			break;
		case 1: /* moatctl del: an entry held (or the prefix of the bytes) */
			if (m->n && (b[0] & 4)) {
				e.pfx = m->e[b[2] % m->n].pfx;
				e.source = m->e[b[2] % m->n].source;
			}
			if (zm_entry_del(d, &e.pfx, e.source, err, sizeof(err)) == 0)
				model_del(m, &e.pfx, e.source);
			break;
		case 2: { /* a batch (moatctl add/del FILE): one journal record */
			int del = !!(b[0] & 4);
			struct cd_batch *bt = zm_batch_new(del, e.source);
			struct zm_batch_result res;
			size_t cnt = 1 + (b[0] >> 3) % 6;

			if (!bt)
				abort();
			for (size_t i = 0; i < cnt; i++) {
				struct cd_entry x = e;

				if (del && m->n) {
					x = m->e[(b[2] + i) % m->n];
					if (x.source != e.source)
						continue;
				} else {
					uint8_t bb[8];

					memcpy(bb, b, sizeof(bb));
					bb[5] = (uint8_t)(bb[5] + i * 11); /* the prefix's next */
					entry_of(bb, now, &x);
				}
				zm_batch_stage(bt, &x, "fuzz");
			}
			r = zm_batch_commit(d, bt, &res, err, sizeof(err));
			for (size_t i = 0; r == 0 && i < zm_batch_size(bt); i++) {
				if (del)
					model_del(m, &zm_batch_entry(bt, i)->pfx, e.source);
				else {
					model_put(m, zm_batch_entry(bt, i));
					ever_put(ever, zm_batch_entry(bt, i));
				}
			}
			zm_batch_free(bt);
			break;
		}
		case 3: /* a compaction (as at start, or past the journal's bound) */
			persist_save_entries(d);
			break;
		}
		if (d->nentries != m->n)
			fail("the daemon and the model disagree after a change");
		if (d->entries_compactions != comp)
			nsn = 0; /* the base holds everything: journal empty */
		if (!nsn || fsize(journal) != sn[nsn - 1].jsize)
			sn[nsn++] = (struct snap){ fsize(journal) > 0 ? fsize(journal) : 0, *m };
	}
	entries_sane(d, now, 0);

	/* damage */
	size_t bl, jl;
	uint8_t *b0 = slurp(base, &bl), *j0 = slurp(journal, &jl);
	ino_t ino = 0;
	int node = (fl >> 4) & 7;
	const char *npath = node == 1 || node == 2 ? base : journal;

	damage(base, journal, 0, data + off, (size - off) / 3 * 3);
	if ((fl & 4) && jl)
		if (truncate(journal, (off_t)(data[2] * 61u % jl)) < 0)
			fail("truncate");
	if ((fl & 8) && bl)
		if (truncate(base, (off_t)(data[2] * 7u % bl)) < 0)
			fail("truncate");
	if (fl & 1)
		fix_sum(base);
	if (fl & 2)
		fix_journal(journal);
	special(npath, node >= 1 && node <= 4 ? 2 - (node & 1) : 0, &ino);

	size_t bdiff = b0 ? first_diff(base, b0, bl) : 0;
	size_t jdiff = j0 ? first_diff(journal, j0, jl) : 0;
	int bchanged = b0 && bdiff < bl, jchanged = j0 && jdiff < jl;

	/* the start */
	d = cd_new(dir);
	int r = zm_entries_restore(d);

	entries_sane(d, now, 1);
	special_kept(npath, node >= 1 && node <= 4 ? 2 - (node & 1) : 0, ino);
	if (bchanged && !(fl & 1) && !ino) {
		/* the checksum sees it: the base is refused and kept aside,
		 * its journal's batches replayed onto nothing: only entries
		 * written at some time come back (unless the journal's damage
		 * has its sums recomputed) */
		struct stat st;

		if (r < 0 && r != -ENOENT)
			fail("a start on a damaged base failed");
		if (lstat(bad, &st) < 0 || !S_ISREG(st.st_mode))
			fail("a damaged base not kept as .bad");
		for (size_t i = 0; !((fl & 2) && jchanged) && i < d->nentries; i++) {
			size_t k = 0;

			while (k < ever->n && !same_entry(&ever->e[k], &d->entries[i]))
				k++;
			if (k == ever->n)
				fail("a damaged base with its old checksum restored");
		}
	} else if (!bchanged && !ino && !((fl & 2) && jchanged)) {
		/* the base as written; the journal as written up to jdiff:
		 * exactly the batches that end there */
		size_t k = 0;

		while (k + 1 < nsn && (size_t)sn[k + 1].jsize <= jdiff)
			k++;
		if (!jchanged)
			k = nsn - 1;
		restored_is(d, &sn[k].m, now,
			    jchanged ? "a damaged or cut journal restored other than its first batches"
				     : "untouched files restored other than what was written");
		/* and what the start wrote back (its compaction) restores the same */
		d = cd_new(dir);
		zm_entries_restore(d);
		restored_is(d, &sn[k].m, now, "the start's compaction lost or added entries");
	}
	if (!ino && d->nentries < MAX_ENT) {
		/* the daemon goes on after any start: a change, then the next
		 * start restores exactly what it held */
		static const uint8_t nb[8] = { 0, 32, 198, 51, 100, 7, 0x28, 1 };
		struct cd_entry x;

		entry_of(nb, now, &x);
		if (zm_entry_add(d, &x, err, sizeof(err)) != 0)
			fail("an add after a start refused");
		m->n = d->nentries;
		memcpy(m->e, d->entries, d->nentries * sizeof(*d->entries));
		d = cd_new(dir);
		zm_entries_restore(d);
		entries_sane(d, now, 1);
		restored_is(d, m, now, "the next start restored other than what the daemon held");
	}
	free(b0);
	free(j0);
	free(sn);
	free(m);
	free(ever);
}

/* ------------------------------------------------------------ live */

/* live_set - the zone's answers in the table (prefix, code), sorted */
static struct moat_listing *live_set(struct cd *d, uint16_t zid, size_t *n)
{
	struct moat_listing *l = NULL;

	*n = 0;
	if (vt_db_source_dump(d->db, zid, &l, n) < 0 && *n)
		fail("vt_db_source_dump");
	for (size_t i = 0; i < *n; i++) {
		if (!fuzz_prefix_ok(&l[i].pfx) || l[i].exclude || l[i].source != zid)
			fail("a live answer in the table with a bad prefix or source");
		if (!l[i].ttl)
			fail("a live answer without its expiry");
		l[i].ttl = 0;
	}
	if (*n > 1)
		qsort(l, *n, sizeof(*l), moat_listing_cmp);
	return l;
}

static void fuzz_live(const char *dir, const uint8_t *data, size_t size)
{
	char path[128], bad[140];
	uint8_t fl = data[1];
	size_t nops = data[3] % (MAX_OPS + 1), off = 4, n0, n1;
	struct cd *d = cd_new(dir);
	struct cd_zone *z = zm_zone(d, LIVE_ZONE);
	time_t now = time(NULL);

	if (!z)
		fail("no live zone");
	if (size < off + 6 * nops)
		nops = (size - off) / 6;
	snprintf(path, sizeof(path), "%s/live-" LIVE_ZONE ".state", dir);
	snprintf(bad, sizeof(bad), "%s.bad", path);
	for (size_t k = 0; k < nops; k++, off += 6) {
		const uint8_t *b = data + off;
		/* a minute at least: none expires between the save and the load */
		struct moat_listing x = { .source = z->id, .ttl = 60 + b[5] * 60u };
		struct moat_lvec lv = { &x, 1, 1 };
		struct moat_prefix a;

		make_prefix(b, &a);
		a.plen = a.family == MOAT_AF_INET ? 32 : 128; /* an address */
		/* listed, not listed, an error code, outside 127/8 */
		x.code = b[4] < 200 ? 0x7f000000u | (b[4] & 15) :
			 b[4] < 230 ? 0x7fffff00u | b[4] : 0x0a000001u;
		lv.n = b[4] % 17 ? 1 : 0;
		zm_live_answer(d, &a, &lv, 0);
	}
	persist_save_live(d);
	struct moat_listing *w = live_set(d, z->id, &n0);

	size_t fl0;
	uint8_t *f0 = slurp(path, &fl0);
	ino_t ino = 0;
	int node = (fl >> 4) & 3;

	damage(path, NULL, 1, data + off, (size - off) / 3 * 3);
	if ((fl & 8) && fl0)
		if (truncate(path, (off_t)(data[2] * 7u % fl0)) < 0)
			fail("truncate");
	if (fl & 1)
		fix_sum(path);
	special(path, node, &ino);
	int changed = f0 && first_diff(path, f0, fl0) < fl0;

	/* the file as the restore will see it */
	size_t fn = 0;
	uint8_t *fb = slurp(path, &fn);

	d = cd_new(dir);
	z = zm_zone(d, LIVE_ZONE);
	persist_load_live(d);
	struct moat_listing *g = live_set(d, z->id, &n1);

	special_kept(path, node, ino);
	if (ino && n1)
		fail("live answers restored from a FIFO or directory");
	if (!ino && changed && !(fl & 1)) {
		struct stat st;

		if (n1)
			fail("a damaged live file with its old checksum restored");
		if (lstat(bad, &st) < 0 || !S_ISREG(st.st_mode))
			fail("a damaged live file not kept as .bad");
	}
	if (!ino && !changed && (n0 != n1 || (n0 && memcmp(w, g, n0 * sizeof(*w)))))
		fail("an untouched live file restored other than what was saved");
	/* anything restored is a record of the file with time left */
	for (size_t i = 0; i < n1; i++) {
		int found = 0;

		for (size_t o = 16; fb && o + sizeof(struct pl_record) + 8 <= fn && !found;
		     o += sizeof(struct pl_record)) {
			struct pl_record r;

			memcpy(&r, fb + o, sizeof(r));
			found = !memcmp(&r.pfx, &g[i].pfx, sizeof(r.pfx)) && r.code == g[i].code &&
				r.expires > now;
		}
		if (!found)
			fail("a live answer restored that the file does not hold, or expired");
	}
	free(w);
	free(g);
	free(f0);
	free(fb);
}

/* ------------------------------------------------------------- ISN */

static void fuzz_isn(const char *dir, const uint8_t *data, size_t size)
{
	char path[128];
	struct cd *d = calloc(1, sizeof(*d));
	uint64_t k1[2], k2[2], k3[2];
	uint8_t fl = data[1];
	int node = (fl >> 4) & 3, r;
	ino_t ino = 0;
	struct stat st;

	if (!d)
		abort();
	snprintf(d->cfg.state_dir, sizeof(d->cfg.state_dir), "%s", dir);
	snprintf(path, sizeof(path), "%s/isn.key", dir);
	if (node == 1 || node == 2) {
		/* not a regular file: never replaced, never read as a key */
		special(path, node, &ino);
		r = persist_isn_key(d, k1);
		if (r >= 0)
			fail("an ISN key from or to a FIFO or directory");
		special_kept(path, node, ino);
		free(d);
		return;
	}
	if (persist_isn_key(d, k1) != 1 || !(k1[0] | k1[1]))
		fail("no new ISN key in an empty directory");
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 07777) != 0600)
		fail("the ISN key file is not a regular file of mode 0600");
	if (persist_isn_key(d, k2) != 0 || memcmp(k1, k2, sizeof(k1)))
		fail("an intact ISN key not read back");
	size_t l0;
	uint8_t *f0 = slurp(path, &l0);

	damage(path, NULL, 2, data + 4, size > 4 ? (size - 4) / 3 * 3 : 0);
	if ((fl & 8) && l0)
		if (truncate(path, (off_t)(data[2] % l0)) < 0)
			fail("truncate");
	if (fl & 1)
		fix_sum(path);
	int changed = first_diff(path, f0, l0) < l0;
	size_t fn;
	uint8_t *fb = slurp(path, &fn);

	r = persist_isn_key(d, k3);
	if (!changed && (r != 0 || memcmp(k1, k3, sizeof(k1))))
		fail("an untouched ISN key not read back");
	if (changed && !(fl & 1) && r != 1)
		fail("a damaged ISN key with its old checksum taken");
	if (r == 0 && (fn < 32 || memcmp(fb + 16, k3, 16) || !(k3[0] | k3[1])))
		fail("an ISN key other than the file's");
	if (r == 1) {
		if (!(k3[0] | k3[1]) || lstat(path, &st) < 0 || (st.st_mode & 07777) != 0600)
			fail("a new ISN key zero or not saved 0600");
		if (persist_isn_key(d, k2) != 0 || memcmp(k2, k3, sizeof(k2)))
			fail("a new ISN key not read back");
	}
	if (r < 0)
		fail("an ISN key in a regular file neither read nor saved");
	free(f0);
	free(fb);
	free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char dir[] = "/dev/shm/moat-fuzz-persist-XXXXXX";

	if (size < 4)
		return 0;
	if (!mkdtemp(dir))
		abort();
	snprintf(cur_dir, sizeof(cur_dir), "%s", dir);
	switch (data[0] % 3) {
	case 0: fuzz_entries(dir, data, size); break;
	case 1: fuzz_live(dir, data, size); break;
	case 2: fuzz_isn(dir, data, size); break;
	}
	fuzz_rm_tree(dir);
	return 0;
}
