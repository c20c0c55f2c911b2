/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * rbldnsd.c - rbldnsd ip4set/ip4trie/ip6trie data files to listings, and
 * safe reloading of files that rsync replaces (syntax in rbldnsd.h).
 *
 * A file is read through one open() + fstat(): rsync's default
 * write-to-temp-then-rename means the inode we opened is complete; for
 * --inplace writers we compare size and mtime before and after reading and
 * refuse files modified within the settle time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codes.h"
#include "log.h"
#include "rbldnsd.h"

/* moat_rbl_type_parse - dataset type by name */
enum moat_rbl_type moat_rbl_type_parse(const char *s)
{
	if (!strcmp(s, "ip4set"))
		return MOAT_RBL_IP4SET;
	if (!strcmp(s, "ip4trie"))
		return MOAT_RBL_IP4TRIE;
	if (!strcmp(s, "ip6trie"))
		return MOAT_RBL_IP6TRIE;
	return 0;
}

struct pctx {
	enum moat_rbl_type type;
	uint16_t source;
	uint32_t ttl, def_a;
	unsigned line;
	const struct moat_codes *codes;
	struct moat_lvec *out;
	struct moat_rbl_stats *st;
};

/* bad - count an error on the current line */
static void bad(struct pctx *c, const char *msg)
{
	struct moat_rbl_stats *st = c->st;

	if (st->errors < MOAT_RBL_MAX_ERRS) {
		st->err[st->errors].line = c->line;
		snprintf(st->err[st->errors].msg, sizeof(st->err[0].msg), "%s", msg);
	}
	st->errors++;
}

/* octets - up to 4 dotted decimal octets at *p; returns how many, 0 on error */
static int octets(const char **p, const char *e, uint32_t *v)
{
	int k = 0;

	*v = 0;
	while (k < 4) {
		const char *s = *p;
		unsigned o = 0;
		while (*p < e && **p >= '0' && **p <= '9' && *p - s < 4)
			o = o * 10 + (unsigned)(*(*p)++ - '0');
		if (*p == s || *p - s > 3 || o > 255)
			return 0;
		*v |= o << (24 - 8 * k);
		k++;
		if (*p < e && **p == '.' && *p + 1 < e && (*p)[1] >= '0' && (*p)[1] <= '9')
			(*p)++;
		else
			break;
	}
	return k;
}

/* push4 - one IPv4 listing */
static int push4(struct pctx *c, uint32_t a, unsigned plen, bool excl, uint32_t code)
{
	struct moat_listing l = { .pfx = { .family = MOAT_AF_INET, .plen = (uint8_t)plen },
				  .code = excl ? 0 : code, .ttl = c->ttl,
				  .source = c->source, .exclude = excl };

	l.pfx.addr[0] = (uint8_t)(a >> 24);
	l.pfx.addr[1] = (uint8_t)(a >> 16);
	l.pfx.addr[2] = (uint8_t)(a >> 8);
	l.pfx.addr[3] = (uint8_t)a;
	if (excl)
		c->st->excludes++;
	else
		c->st->entries++;
	return moat_lvec_push(c->out, &l);
}

/* range4 - [lo, hi] as the minimal CIDR set */
static int range4(struct pctx *c, uint32_t lo, uint32_t hi, bool excl, uint32_t code)
{
	uint64_t cur = lo;

	while (cur <= hi) {
		unsigned bits = 0;
		while (bits < 32) {
			uint64_t size = 1ull << (bits + 1);
			if ((cur & (size - 1)) != 0 || cur + size - 1 > hi)
				break;
			bits++;
		}
		if (push4(c, (uint32_t)cur, 32 - bits, excl, code))
			return -ENOMEM;
		cur += 1ull << bits;
	}
	return 0;
}

/* value - parse ":A:TXT" / ":A" / "TXT" at p; sets *code. -1 on a bad A */
static int value(struct pctx *c, const char *p, const char *e, uint32_t *code)
{
	*code = c->def_a;
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	if (p == e || *p != ':')
		return 0; /* nothing, or TXT only */
	p++;
	const char *q = memchr(p, ':', (size_t)(e - p));
	const char *ae = q ? q : e;
	while (ae > p && (ae[-1] == ' ' || ae[-1] == '\t'))
		ae--;
	if (ae == p)
		return 0; /* "::TXT" keeps the default A */
	char buf[20];
	if ((size_t)(ae - p) >= sizeof(buf))
		return -1;
	memcpy(buf, p, (size_t)(ae - p));
	buf[ae - p] = 0;
	struct in_addr ia;
	if (inet_pton(AF_INET, buf, &ia) == 1) {
		*code = ntohl(ia.s_addr);
		return 0;
	}
	char *end;
	unsigned long n = strtoul(buf, &end, 10);
	if (*end || n > 255 || buf[0] < '0' || buf[0] > '9')
		return -1;
	*code = 0x7f000000u | (uint32_t)n;
	return 0;
}

/* line4 - one ip4set/ip4trie entry line (after '!') */
static int line4(struct pctx *c, const char *p, const char *e, bool excl)
{
	uint32_t lo, hi, code;
	int k = octets(&p, e, &lo);
	unsigned plen;

	if (k == 0) {
		bad(c, "not an IPv4 address");
		return 0;
	}
	plen = (unsigned)k * 8;
	hi = lo | (plen == 32 ? 0 : 0xffffffffu >> plen);
	bool range = false;
	if (p < e && *p == '/') {
		const char *s = ++p;
		unsigned n = 0;
		while (p < e && *p >= '0' && *p <= '9' && p - s < 3)
			n = n * 10 + (unsigned)(*p++ - '0');
		if (p == s || n > 32 || (p < e && *p >= '0' && *p <= '9')) {
			bad(c, "bad prefix length");
			return 0;
		}
		uint32_t mask = n ? 0xffffffffu << (32 - n) : 0;
		if (lo & ~mask) {
			bad(c, "host bits set after the prefix length");
			return 0;
		}
		plen = n;
	} else if (p < e && *p == '-') {
		uint32_t end;
		p++;
		int k2 = octets(&p, e, &end);
		if (k2 == 1 && k > 1) {
			/* a.b.c.d-h: the number replaces the last given octet */
			unsigned sh = 32 - 8 * (unsigned)k;
			hi = (lo & ~(0xffu << sh)) | ((end >> 24) << sh);
			hi |= sh ? 0xffffffffu >> (32 - sh) : 0;
		} else if (k2 == 4 || k2 == k) {
			hi = end | (k2 == 4 ? 0 : 0xffffffffu >> (8 * k2));
		} else {
			bad(c, "bad range end");
			return 0;
		}
		if (hi < lo) {
			bad(c, "range end before its start");
			return 0;
		}
		range = true;
	}
	if (p < e && *p != ' ' && *p != '\t' && *p != ':') {
		bad(c, "junk after the address");
		return 0;
	}
	if (value(c, p, e, &code)) {
		bad(c, "bad A value");
		return 0;
	}
	if (c->codes && moat_code_is_error(c->codes, code))
		excl = true; /* an error answer is "not listed" */
	if (range)
		return range4(c, lo, hi, excl, code);
	return push4(c, lo, plen, excl, code);
}

/* line6 - one ip6trie entry line */
static int line6(struct pctx *c, const char *p, const char *e, bool excl)
{
	const char *t = p;
	char buf[64];
	uint32_t code;
	unsigned plen = 128;

	while (t < e && *t != ' ' && *t != '\t')
		t++;
	if ((size_t)(t - p) >= sizeof(buf)) {
		bad(c, "not an IPv6 address");
		return 0;
	}
	memcpy(buf, p, (size_t)(t - p));
	buf[t - p] = 0;
	char *sl = strchr(buf, '/');
	if (sl) {
		char *end;
		*sl = 0;
		unsigned long n = strtoul(sl + 1, &end, 10);
		if (*end || end == sl + 1 || n > 128) {
			bad(c, "bad prefix length");
			return 0;
		}
		plen = (unsigned)n;
	}
	struct moat_listing l = { .pfx = { .family = MOAT_AF_INET6, .plen = (uint8_t)plen },
				  .ttl = c->ttl, .source = c->source, .exclude = excl };
	if (inet_pton(AF_INET6, buf, l.pfx.addr) != 1) {
		bad(c, "not an IPv6 address");
		return 0;
	}
	for (unsigned b = plen; b < 128; b++)
		if (l.pfx.addr[b / 8] & (0x80 >> (b % 8))) {
			bad(c, "host bits set after the prefix length");
			return 0;
		}
	if (value(c, t, e, &code)) {
		bad(c, "bad A value");
		return 0;
	}
	if (c->codes && moat_code_is_error(c->codes, code))
		excl = true; /* an error answer is "not listed" */
	l.exclude = excl;
	l.code = excl ? 0 : code;
	if (excl)
		c->st->excludes++;
	else
		c->st->entries++;
	return moat_lvec_push(c->out, &l);
}

/* looks_v6 - does the line start with an IPv6 address ("::1", "::/0")
 * rather than a default value (":127.0.0.2:text")? */
static bool looks_v6(const char *p, const char *e)
{
	char buf[64];
	struct in6_addr a;
	size_t n = 0;

	while (p + n < e && p[n] != ' ' && p[n] != '\t' && p[n] != '/' && n < sizeof(buf) - 1) {
		buf[n] = p[n];
		n++;
	}
	buf[n] = 0;
	return inet_pton(AF_INET6, buf, &a) == 1;
}

/* moat_rbl_parse - whole buffer */
int moat_rbl_parse(enum moat_rbl_type type, const char *buf, size_t len,
		   uint16_t source, uint32_t default_ttl, const struct moat_codes *codes,
		   struct moat_lvec *out, struct moat_rbl_stats *st)
{
	struct pctx c = { .type = type, .source = source, .ttl = default_ttl,
			  .def_a = 0x7f000002u, .out = out, .st = st, .codes = codes };
	const char *p = buf, *end = buf + len;

	memset(st, 0, sizeof(*st));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		const char *next = nl ? nl + 1 : end;
		c.line++;
		st->lines++;
		while (e > p && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
			e--;
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		if (p == e || *p == '#' || *p == ';') {
			p = next;
			continue;
		}
		if (*p == '$') {
			if (e - p > 4 && !strncmp(p, "$TTL", 4) && (p[4] == ' ' || p[4] == '\t')) {
				char tb[16] = "";
				const char *s = p + 4;
				while (s < e && (*s == ' ' || *s == '\t'))
					s++;
				size_t n = (size_t)(e - s);
				char *te;
				if (n == 0 || n >= sizeof(tb)) {
					bad(&c, "bad $TTL");
				} else {
					memcpy(tb, s, n);
					unsigned long t = strtoul(tb, &te, 10);
					if (*te || t > 0x7fffffff)
						bad(&c, "bad $TTL");
					else
						c.ttl = (uint32_t)t;
				}
			}
			p = next; /* $SOA, $NS, $n substitutions: not listings */
			continue;
		}
		if (*p == ':' && !(type == MOAT_RBL_IP6TRIE && looks_v6(p, e))) {
			uint32_t code;
			if (value(&c, p, e, &code))
				bad(&c, "bad default A value");
			else
				c.def_a = code;
			p = next;
			continue;
		}
		bool excl = *p == '!';
		if (excl)
			p++;
		int r = type == MOAT_RBL_IP6TRIE ? line6(&c, p, e, excl) : line4(&c, p, e, excl);
		if (r)
			return -ENOMEM;
		p = next;
	}
	return 0;
}

struct moat_rbl_file {
	struct moat_rbl_cfg cfg;
	struct moat_codes codes;
	char *path;
	bool loaded;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

/* moat_rbl_file_new - watch state with defaults applied */
struct moat_rbl_file *moat_rbl_file_new(const struct moat_rbl_cfg *cfg)
{
	struct moat_rbl_file *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->cfg = *cfg;
	f->path = strdup(cfg->path);
	if (!f->path) {
		free(f);
		return NULL;
	}
	f->cfg.path = f->path;
	if (cfg->codes)
		f->codes = *cfg->codes;
	else
		moat_codes_default(&f->codes);
	f->cfg.codes = &f->codes;
	if (!f->cfg.settle_ms)
		f->cfg.settle_ms = 2000;
	if (!f->cfg.max_bytes)
		f->cfg.max_bytes = (size_t)1 << 30;
	return f;
}

/* moat_rbl_file_free - release */
void moat_rbl_file_free(struct moat_rbl_file *f)
{
	if (!f)
		return;
	free(f->path);
	free(f);
}

/* same_id - file identity equal to the last load */
static bool same_id(const struct moat_rbl_file *f, const struct stat *sb)
{
	return f->loaded && sb->st_dev == f->dev && sb->st_ino == f->ino &&
	       sb->st_size == f->size && sb->st_mtim.tv_sec == f->mtime.tv_sec &&
	       sb->st_mtim.tv_nsec == f->mtime.tv_nsec;
}

/* moat_rbl_file_changed - stat and compare */
bool moat_rbl_file_changed(struct moat_rbl_file *f)
{
	struct stat sb;

	if (stat(f->path, &sb) < 0)
		return false; /* gone: keep the data we have */
	return !same_id(f, &sb);
}

/* moat_rbl_file_load - read whole, verify it did not change, parse */
int moat_rbl_file_load(struct moat_rbl_file *f, struct moat_lvec *out,
		       struct moat_rbl_stats *st)
{
	struct stat a, b;
	struct timespec now;
	char *buf = NULL;
	size_t got = 0;
	int fd, ret;

	memset(st, 0, sizeof(*st));
	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &a) < 0) {
		ret = -errno;
		goto out;
	}
	if ((size_t)a.st_size > f->cfg.max_bytes) {
		ret = -EFBIG;
		goto out;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t age_ms = ((int64_t)now.tv_sec - a.st_mtim.tv_sec) * 1000 +
			 (now.tv_nsec - a.st_mtim.tv_nsec) / 1000000;
	if (age_ms >= 0 && age_ms < (int64_t)f->cfg.settle_ms) {
		ret = -EAGAIN; /* just written: maybe still being written */
		goto out;
	}
	buf = malloc((size_t)a.st_size + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	while (got < (size_t)a.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)a.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (fstat(fd, &b) < 0) {
		ret = -errno;
		goto out;
	}
	if (got != (size_t)a.st_size || b.st_size != a.st_size ||
	    b.st_mtim.tv_sec != a.st_mtim.tv_sec || b.st_mtim.tv_nsec != a.st_mtim.tv_nsec) {
		ret = -EAGAIN; /* written while we read */
		goto out;
	}
	size_t before = out->n;
	ret = moat_rbl_parse(f->cfg.type, buf, got, f->cfg.source, f->cfg.ttl, &f->codes,
			     out, st);
	if (ret) {
		out->n = before;
		goto out;
	}
	for (size_t i = 0; i < st->errors && i < MOAT_RBL_MAX_ERRS; i++)
		log_warn("rbldnsd: %s:%u: %s", f->path, st->err[i].line, st->err[i].msg);
	if (st->errors > MOAT_RBL_MAX_ERRS)
		log_warn("rbldnsd: %s: %zu more bad lines", f->path,
			 st->errors - MOAT_RBL_MAX_ERRS);
	f->loaded = true;
	f->dev = a.st_dev;
	f->ino = a.st_ino;
	f->size = a.st_size;
	f->mtime = a.st_mtim;
out:
	free(buf);
	close(fd);
	return ret;
}
