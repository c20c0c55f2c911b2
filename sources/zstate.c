/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * zstate.c - a zone's last good state on disk as a base file plus a journal
 * of IXFR deltas (zstate.h says why and how it is used).
 *
 * Base (STATE_DIR/zone-NAME.state, unchanged since the first format):
 *   struct zs_base, n struct moat_listing, uint64 FNV-1a of all before it.
 * Journal (STATE_DIR/zone-NAME.journal): records one after the other, each
 *   struct zs_rec, nadd + ndel struct moat_listing, uint64 FNV-1a of the
 *   record before it.  A record names the base it continues (base_sum, the
 *   base's checksum) and its serials, so a journal left over from an older
 *   base (a crash between the base's rename and the journal's truncation)
 *   is recognised and ignored.
 * Host byte order: the files never leave the machine.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "lvec.h"
#include "outfile.h"
#include "zstate.h"

#define ZS_BASE_MAGIC 0x31545354414f4dULL /* "MOATST1" */
#define ZS_REC_MAGIC 0x31524a54414f4dULL  /* "MOATJR1" */
#define FNV_INIT 0xcbf29ce484222325ULL

struct zs_base {
	uint64_t magic;
	uint32_t version;
	uint32_t serial;
	int64_t last_success;
	int64_t expires_at;
	uint32_t soa_refresh, soa_retry, soa_expire;
	uint32_t state;
	uint64_t n;
	char name[256];
};

struct zs_rec {
	uint64_t magic;
	uint64_t base_sum;
	uint32_t serial_from, pad;
	struct zstate_meta m;     /* the zone after the record (m.serial: to) */
	uint64_t nadd, ndel;
};

/* fnv - FNV-1a over a buffer, continuing h */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++) {
		h ^= c[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* zstate_checksum - the files' checksum (FNV-1a) over p[0..n), continuing h */
uint64_t zstate_checksum(uint64_t h, const void *p, size_t n)
{
	return fnv(h, p, n);
}

/* write_all - write every byte, folding them into *h when h is set */
static int write_all(int fd, const void *p, size_t n, uint64_t *h)
{
	const char *c = p;

	if (h)
		*h = fnv(*h, p, n);
	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* stream_body - the listings of a sorted source, chunk by chunk: exactly
 * n of them (-EIO otherwise) */
static int stream_body(int fd, zstate_next_fn next, void *ctx, size_t n, uint64_t *h)
{
	struct moat_lvec c = { 0 };
	size_t got = 0;
	int r = 0;

	for (;;) {
		c.n = 0;
		if ((r = next(ctx, &c, 1 << 16)) < 0 || !c.n)
			break;
		got += c.n;
		if (got > n) {
			r = -EIO;
			break;
		}
		if ((r = write_all(fd, c.v, c.n * sizeof(*c.v), h)) < 0)
			break;
	}
	moat_lvec_free(&c);
	return r < 0 ? r : got != n ? -EIO : 0;
}

/* write_file - header + body (a buffer, or a stream when next is set) +
 * checksum via a temporary + fsync + rename (moat_outfile: a path that is
 * not a regular file is refused, never replaced) */
static int write_file(const char *path, mode_t mode, const void *hdr, size_t hl,
		      const void *body, size_t bl, zstate_next_fn next, void *ctx, size_t n,
		      uint64_t *sum)
{
	struct moat_outfile o;
	uint64_t h = FNV_INIT;
	int r;

	r = moat_outfile_open(&o, path, mode, 0);
	if (r)
		return r;
	r = write_all(o.fd, hdr, hl, &h);
	if (!r && next)
		r = stream_body(o.fd, next, ctx, n, &h);
	else if (!r && bl)
		r = write_all(o.fd, body, bl, &h);
	if (!r)
		r = write_all(o.fd, &h, sizeof(h), NULL);
	if (r) {
		moat_outfile_abort(&o);
		return r;
	}
	r = moat_outfile_commit(&o, 1);
	if (r)
		return r;
	if (sum)
		*sum = h;
	return 0;
}

/* zstate_write_file - header + body + checksum via tmp + fsync + rename */
int zstate_write_file(const char *path, mode_t mode, const void *hdr, size_t hl,
		      const void *body, size_t bl, uint64_t *sum)
{
	return write_file(path, mode, hdr, hl, body, bl, NULL, NULL, 0, sum);
}

/* zstate_open - see zstate.h */
int zstate_open(const char *path, int flags, mode_t mode)
{
	int fd = open(path, flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, mode), r;
	struct stat st;

	if (fd < 0)
		return errno == ENXIO ? -ENODEV : -errno; /* a FIFO no one reads */
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -ENODEV;
	}
	return fd;
}

/* slurp - a whole file into a malloc'd buffer */
static int slurp(const char *path, char **data, size_t *len)
{
	int fd = zstate_open(path, O_RDONLY, 0);
	struct stat st;
	size_t got = 0;

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	char *buf = malloc(st.st_size ? (size_t)st.st_size : 1);

	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*data = buf;
	*len = got;
	return 0;
}

/* zstate_read_file - whole file, checksum verified */
int zstate_read_file(const char *path, void **data, size_t *len, uint64_t *sum)
{
	char *buf;
	size_t got;
	uint64_t h;
	int r = slurp(path, &buf, &got);

	if (r < 0)
		return r;
	if (got < sizeof(h)) {
		free(buf);
		return -EINVAL;
	}
	memcpy(&h, buf + got - sizeof(h), sizeof(h));
	if (fnv(FNV_INIT, buf, got - sizeof(h)) != h) {
		free(buf);
		return -EBADMSG;
	}
	*data = buf;
	*len = got - sizeof(h);
	if (sum)
		*sum = h;
	return 0;
}

/* zstate_array_next - zstate_next_fn of an array (struct zstate_array) */
int zstate_array_next(void *ctx, struct moat_lvec *out, size_t max)
{
	struct zstate_array *a = ctx;

	for (; a->pos < a->n && max; max--)
		if (moat_lvec_push(out, &a->l[a->pos++]))
			return -ENOMEM;
	return 0;
}

/* zstate_save_base - base rewritten, journal emptied */
int zstate_save_base(const char *base, const char *journal, const char *name,
		     const struct zstate_meta *m, const struct moat_listing *l, size_t n,
		     struct zstate_info *info)
{
	struct zstate_array a = { l, n, 0 };

	return zstate_save_base_stream(base, journal, name, m, n, zstate_array_next, &a, info);
}

/* zstate_save_base_stream - base rewritten from a sorted source, journal
 * emptied */
int zstate_save_base_stream(const char *base, const char *journal, const char *name,
			    const struct zstate_meta *m, size_t n, zstate_next_fn next,
			    void *ctx, struct zstate_info *info)
{
	struct zs_base h = {
		.magic = ZS_BASE_MAGIC, .version = 1, .serial = m->serial,
		.last_success = m->last_success, .expires_at = m->expires_at,
		.soa_refresh = m->soa_refresh, .soa_retry = m->soa_retry,
		.soa_expire = m->soa_expire, .state = m->state, .n = n,
	};
	uint64_t sum;
	int r;

	snprintf(h.name, sizeof(h.name), "%s", name);
	r = write_file(base, 0640, &h, sizeof(h), NULL, 0, next, ctx, n, &sum);
	if (r < 0)
		return r;
	info->base_sum = sum;
	info->base_bytes = sizeof(h) + n * sizeof(struct moat_listing) + sizeof(sum);
	info->serial = m->serial;
	info->journal_bytes = 0;
	info->journal_records = 0;
	/* the old records name the old base and would be ignored at load, but
	 * new ones must not land behind them */
	info->valid = truncate(journal, 0) == 0 || errno == ENOENT || unlink(journal) == 0;
	if (!info->valid)
		log_err("zone=%s event=journal path=%s error=\"%s\" (cannot empty it: every "
			"change rewrites the base until it can)", name, journal, strerror(errno));
	return 0;
}

/* zstate_compact_due - journal past its bound (zstate.h) */
int zstate_compact_due(const struct zstate_info *info)
{
	return !info->valid || info->journal_records >= ZSTATE_JOURNAL_MAX_RECORDS ||
	       (info->journal_bytes > ZSTATE_JOURNAL_MIN &&
		info->journal_bytes > info->base_bytes / 4);
}

/* zstate_append - one delta record, fsync'd */
int zstate_append(const char *journal, uint32_t serial_from, const struct zstate_meta *m,
		  const struct moat_listing *add, size_t nadd,
		  const struct moat_listing *del, size_t ndel, struct zstate_info *info)
{
	struct zs_rec h;
	size_t body = (nadd + ndel) * sizeof(struct moat_listing);
	size_t total = sizeof(h) + body + sizeof(uint64_t);
	uint64_t sum = FNV_INIT;
	struct stat st;
	int fd, r = 0;

	if (!info->valid || info->serial != serial_from)
		return -ESTALE;
	memset(&h, 0, sizeof(h)); /* no stray padding bytes in the file */
	h.magic = ZS_REC_MAGIC;
	h.base_sum = info->base_sum;
	h.serial_from = serial_from;
	h.m = *m;
	h.m.pad = 0;
	h.nadd = nadd;
	h.ndel = ndel;
	char *buf = malloc(total);

	if (!buf)
		return -ENOMEM;
	memcpy(buf, &h, sizeof(h));
	if (nadd)
		memcpy(buf + sizeof(h), add, nadd * sizeof(*add));
	if (ndel)
		memcpy(buf + sizeof(h) + nadd * sizeof(*add), del, ndel * sizeof(*del));
	sum = fnv(sum, buf, sizeof(h) + body);
	memcpy(buf + sizeof(h) + body, &sum, sizeof(sum));
	fd = zstate_open(journal, O_WRONLY | O_CREAT | O_APPEND, 0640);
	if (fd < 0) {
		r = fd;
		goto out;
	}
	/* anything past the good records (a torn append of a run that could
	 * not cut it back) goes first: the chain must stay contiguous */
	if (fstat(fd, &st) < 0 || ((uint64_t)st.st_size != info->journal_bytes &&
				   ftruncate(fd, (off_t)info->journal_bytes) < 0)) {
		r = -errno;
		goto out;
	}
	r = write_all(fd, buf, total, NULL);
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (r < 0 && ftruncate(fd, (off_t)info->journal_bytes) < 0)
		info->valid = 0; /* a torn tail we cannot cut: rewrite the base next */
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	if (r < 0)
		return r;
	info->journal_bytes += total;
	info->journal_records++;
	info->serial = m->serial;
	return 0;
}

/* One listing change of the journal, in replay order. */
struct zs_op {
	struct moat_listing l;
	uint64_t seq;
	int del;
};

/* op_cmp - by listing, then replay order */
static int op_cmp(const void *a, const void *b)
{
	const struct zs_op *x = a, *y = b;
	int c = moat_listing_cmp(&x->l, &y->l);

	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* apply_ops - the sorted base with the net effect of ops: per listing the
 * last change wins (added: present once, deleted: absent).  *l replaced. */
static int apply_ops(struct moat_listing **l, size_t *n, struct zs_op *ops, size_t nops)
{
	size_t i = 0, j = 0, o = 0, nadd = 0;

	qsort(ops, nops, sizeof(*ops), op_cmp);
	/* keep the last op of each listing: compact in place */
	size_t k = 0;

	for (size_t a = 0; a < nops; a++) {
		if (a + 1 < nops && moat_listing_cmp(&ops[a].l, &ops[a + 1].l) == 0)
			continue;
		ops[k++] = ops[a];
		nadd += !ops[a].del;
	}
	nops = k;
	struct moat_listing *out = malloc((*n + nadd + 1) * sizeof(*out));

	if (!out)
		return -ENOMEM;
	while (i < *n || j < nops) {
		int c = i >= *n ? 1 : j >= nops ? -1 : moat_listing_cmp(&(*l)[i], &ops[j].l);

		if (c < 0) {
			out[o++] = (*l)[i++];
		} else if (c > 0) {
			if (!ops[j].del)
				out[o++] = ops[j].l;
			j++;
		} else {
			if (!ops[j].del)
				out[o++] = (*l)[i];
			i++;
			j++;
		}
	}
	free(*l);
	*l = out;
	*n = o;
	return 0;
}

/* is_sorted - already in listing order? */
static int is_sorted(const struct moat_listing *l, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (moat_listing_cmp(&l[i - 1], &l[i]) > 0)
			return 0;
	return 1;
}

/* replay - the journal's good records on *l (sorted); the journal is cut
 * back to its last good record */
static int replay(const char *journal, const char *name, uint16_t source, struct zstate_meta *m,
		  struct moat_listing **l, size_t *n, struct zstate_info *info,
		  struct zstate_replay *rep)
{
	char *buf;
	size_t len, off = 0;
	struct zs_op *ops = NULL;
	size_t nops = 0, cap = 0;
	uint64_t seq = 0;
	int r = slurp(journal, &buf, &len);

	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		log_err("zone=%s event=journal path=%s error=\"%s\" (base state only)", name, journal,
			strerror(-r));
		info->valid = 0; /* cannot tell what is there: rewrite the base next */
		return 0;
	}
	while (off < len) {
		struct zs_rec h;
		uint64_t sum;

		if (len - off < sizeof(h) + sizeof(sum)) {
			rep->stop = "torn record at the end";
			break;
		}
		memcpy(&h, buf + off, sizeof(h));
		if (h.magic != ZS_REC_MAGIC) {
			rep->stop = "not a journal record";
			break;
		}
		uint64_t cnt = h.nadd + h.ndel;
		size_t body;

		if (h.nadd > len || h.ndel > len || cnt > (len - off) / sizeof(struct moat_listing)) {
			rep->stop = "torn record at the end";
			break;
		}
		body = (size_t)cnt * sizeof(struct moat_listing);
		if (len - off - sizeof(h) - sizeof(sum) < body) {
			rep->stop = "torn record at the end";
			break;
		}
		memcpy(&sum, buf + off + sizeof(h) + body, sizeof(sum));
		if (fnv(FNV_INIT, buf + off, sizeof(h) + body) != sum) {
			rep->stop = "bad checksum";
			break;
		}
		if (h.base_sum != info->base_sum) {
			rep->stop = "record of another base state";
			break;
		}
		if (h.serial_from != m->serial) {
			rep->stop = "serial chain broken";
			break;
		}
		if (nops + cnt > cap) {
			size_t nc = cap ? cap : 256;

			while (nc < nops + cnt)
				nc *= 2;
			struct zs_op *t = realloc(ops, nc * sizeof(*t));

			if (!t) {
				r = -ENOMEM;
				goto out;
			}
			ops = t;
			cap = nc;
		}
		/* within a record the adds come first, so a listing both added
		 * and deleted ends deleted, as zonemgr's merge has it */
		const char *p = buf + off + sizeof(h);

		for (uint64_t i = 0; i < cnt; i++) {
			struct zs_op *o = &ops[nops++];

			memcpy(&o->l, p + i * sizeof(o->l), sizeof(o->l));
			o->l.source = source;
			o->l.ttl = 0;
			o->seq = seq++;
			o->del = i >= h.nadd;
		}
		*m = h.m;
		off += sizeof(h) + body + sizeof(sum);
		rep->applied++;
	}
	if (nops && (r = apply_ops(l, n, ops, nops)) < 0)
		goto out;
	info->serial = m->serial;
	info->journal_bytes = off;
	info->journal_records = rep->applied;
	if (off < len) {
		rep->dropped_bytes = len - off;
		log_warn("zone=%s event=journal path=%s result=stopped reason=\"%s\" records=%llu "
			 "serial=%u dropped_bytes=%zu (the state up to the last good record serves)",
			 name, journal, rep->stop, (unsigned long long)rep->applied, m->serial,
			 len - off);
		if (truncate(journal, (off_t)off) < 0) {
			log_err("zone=%s event=journal path=%s error=\"%s\" (cannot cut it back: the "
				"next change rewrites the base)", name, journal, strerror(errno));
			info->valid = 0;
		}
	}
out:
	free(ops);
	free(buf);
	return r;
}

/* zstate_load - base, then the journal on it */
int zstate_load(const char *base, const char *journal, const char *name, uint16_t source,
		struct zstate_meta *m, struct moat_listing **l, size_t *n,
		struct zstate_info *info, struct zstate_replay *rep)
{
	struct zstate_replay dummy;
	struct zs_base h;
	void *data;
	size_t len;
	uint64_t sum;
	int r;

	if (!rep)
		rep = &dummy;
	memset(rep, 0, sizeof(*rep));
	memset(info, 0, sizeof(*info));
	r = zstate_read_file(base, &data, &len, &sum);
	if (r == -ENOENT || r == -ENOMEM)
		return r;
	if (r < 0 || len < sizeof(h))
		goto bad;
	memcpy(&h, data, sizeof(h));
	if (h.magic != ZS_BASE_MAGIC || h.version != 1 || strncmp(h.name, name, sizeof(h.name)) ||
	    (len - sizeof(h)) % sizeof(struct moat_listing) ||
	    h.n != (len - sizeof(h)) / sizeof(struct moat_listing))
		goto bad;
	/* the listings where the file was read (no second copy: a 10M-entry
	 * base is 305 MiB) */
	memmove(data, (char *)data + sizeof(h), h.n * sizeof(**l));
	*l = data;
	if (h.n) {
		void *t = realloc(data, h.n * sizeof(**l));

		if (t)
			*l = t;
	}
	*n = h.n;
	for (size_t i = 0; i < *n; i++) {
		(*l)[i].source = source;
		(*l)[i].ttl = 0;
	}
	if (!is_sorted(*l, *n))
		qsort(*l, *n, sizeof(**l), moat_listing_cmp);
	*m = (struct zstate_meta){
		.serial = h.serial, .state = h.state, .last_success = h.last_success,
		.expires_at = h.expires_at, .soa_refresh = h.soa_refresh,
		.soa_retry = h.soa_retry, .soa_expire = h.soa_expire,
	};
	info->valid = 1;
	info->base_sum = sum;
	info->base_bytes = len + sizeof(sum);
	info->serial = h.serial;
	r = replay(journal, name, source, m, l, n, info, rep);
	if (r < 0) {
		free(*l);
		*l = NULL;
	}
	return r;
bad:
	if (r != -EINVAL && r != -EBADMSG && r < 0)
		log_warn("zone=%s event=restore path=%s error=\"%s\"", name, base, strerror(-r));
	else
		log_warn("zone=%s event=restore path=%s result=ignored (not a valid state file)",
			 name, base);
	if (r >= 0)
		free(data);
	return r < 0 && r != -EINVAL ? r : -EBADMSG;
}
