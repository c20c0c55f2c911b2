/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * config.c - load and validate moat-controld's INI file.
 *
 * libinih does the tokenising; we feed it through our own line reader so
 * every error carries FILE:LINE, and so over-long lines are refused instead
 * of being split by inih's fixed buffer.  Each key is a row of keys[] with
 * its section, its parser and where it lands; unknown sections and keys,
 * duplicate scalar keys and bad values are all errors (Postfix refuses to
 * start on a bad parameter: so do we).  Cross-key checks run after the
 * whole file is read and point at the section header's line.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfgerr.h"
#include "config.h"
#include "log.h"
#include "moat_xdp.h"

enum key_type {
	K_STR,      /* char[size] */
	K_PATH,     /* char[size], absolute path */
	K_BOOL,     /* int */
	K_INT,      /* int, min..max */
	K_U32,      /* uint32_t, min..max */
	K_U64,      /* uint64_t, min..max */
	K_DUR,      /* uint32_t seconds, min..max */
	K_MODE,     /* mode_t, octal */
	K_LEVEL,    /* char[16], a log level */
	K_SPECIAL,  /* parsed by key_special() */
};

struct key {
	const char *section; /* "daemon", "xdp", ..., "zone" for [zone NAME] */
	const char *name;
	enum key_type type;
	size_t off;          /* in struct moat_config, or struct cfg_zone for zones */
	size_t size;
	int64_t min, max;
	int repeat;          /* may appear more than once (lists) */
};

#define C(f) offsetof(struct moat_config, f), sizeof(((struct moat_config *)0)->f)
#define Z(f) offsetof(struct cfg_zone, f), sizeof(((struct cfg_zone *)0)->f)

static const struct key keys[] = {
	{ "daemon", "socket", K_PATH, C(socket_path), 0, 0, 0 },
	{ "daemon", "socket_mode", K_MODE, C(socket_mode), 0, 0777, 0 },
	{ "daemon", "socket_owner", K_STR, C(socket_owner), 0, 0, 0 },
	{ "daemon", "user", K_STR, C(user), 0, 0, 0 },
	{ "daemon", "state_dir", K_PATH, C(state_dir), 0, 0, 0 },
	{ "daemon", "log_level", K_LEVEL, C(log_level), 0, 0, 0 },
	{ "daemon", "syslog", K_BOOL, C(use_syslog), 0, 1, 0 },
	{ "daemon", "notify_listen", K_SPECIAL, 0, 0, 0, 0, 1 },
	{ "daemon", "resolver", K_SPECIAL, 0, 0, 0, 0, 0 },
	{ "fastpath", "backend", K_SPECIAL, 0, 0, 0, 0, 0 },
	{ "dpdk", "socket", K_PATH, C(dpdk_socket), 0, 0, 0 },
	{ "xdp", "interfaces", K_SPECIAL, 0, 0, 0, 0, 1 },
	{ "xdp", "pin_dir", K_PATH, C(pin_dir), 0, 0, 0 },
	{ "xdp", "mode", K_SPECIAL, 0, 0, 0, 0, 0 },
	{ "xdp", "ports", K_SPECIAL, 0, 0, 0, 0, 0 },
	{ "xdp", "event_sample", K_SPECIAL, 0, 0, 0, 0, 0 },
	{ "xdp", "groups_max", K_U32, C(groups_max), 1024, (1u << 24) - 1, 0 }, /* MOAT_XDP_GROUPS_MAX */
	{ "xdp", "tarpit_source_rate", K_U32, C(tarpit_src_pps), 0, CFG_TARPIT_MAX, 0 },
	{ "xdp", "tarpit_source_burst", K_U32, C(tarpit_src_burst), 1, CFG_TARPIT_MAX, 0 },
	{ "xdp", "tarpit_global_rate", K_U32, C(tarpit_global_pps), 0, CFG_TARPIT_MAX, 0 },
	{ "xdp", "tarpit_global_burst", K_U32, C(tarpit_global_burst), 1, CFG_TARPIT_MAX, 0 },
	{ "xdp", "syn_cookies", K_SPECIAL, 0, 0, 0, 0, 0 },
	{ "xdp", "syn_cookie_threshold", K_U32, C(cookie_threshold), 1, 100000000, 0 },
	{ "xdp", "syn_cookie_mss", K_U32, C(cookie_mss), 536, 65495, 0 },
	{ "metrics", "listen", K_SPECIAL, 0, 0, 0, 0, 0 },
	{ "policy", "tarpit_threshold", K_INT, C(tarpit_threshold), 0, 1000, 0 },
	{ "policy", "drop_threshold", K_INT, C(drop_threshold), 0, 1000, 0 },
	{ "operator", "max_ttl", K_DUR, C(operator_max_ttl), 0, UINT32_MAX, 0 },
	{ "operator", "report_ttl", K_DUR, C(report_ttl), 1, 365 * 86400, 0 },
	{ "operator", "accept_reports", K_BOOL, C(accept_reports), 0, 1, 0 },
	{ "fleet", "id", K_SPECIAL, 0, 0, 0, 0, 0 },
	{ "fleet", "zone", K_STR, C(fleet.zone), 0, 0, 0 },
	{ "fleet", "primary", K_SPECIAL, 0, 0, 0, 0, 0 },
	{ "fleet", "tsig", K_SPECIAL, 0, 0, 0, 0, 0 },
	{ "fleet", "share", K_BOOL, C(fleet.share), 0, 1, 0 },
	{ "fleet", "lifetime", K_DUR, C(fleet.lifetime), 60, 365 * 86400, 0 },
	{ "fleet", "record_ttl", K_DUR, C(fleet.record_ttl), 0, 86400, 0 },
	{ "fleet", "learn_dnsbl", K_BOOL, C(fleet.learn[0]), 0, 1, 0 },
	{ "fleet", "learn_dnsbl_ttl", K_DUR, C(fleet.learn_ttl[0]), 60, 30 * 86400, 0 },
	{ "fleet", "learn_pregreet", K_BOOL, C(fleet.learn[1]), 0, 1, 0 },
	{ "fleet", "learn_pregreet_ttl", K_DUR, C(fleet.learn_ttl[1]), 60, 30 * 86400, 0 },
	{ "fleet", "learn_protocol", K_BOOL, C(fleet.learn[2]), 0, 1, 0 },
	{ "fleet", "learn_protocol_ttl", K_DUR, C(fleet.learn_ttl[2]), 60, 30 * 86400, 0 },
	{ "fleet", "learn_content", K_BOOL, C(fleet.learn[3]), 0, 1, 0 },
	{ "fleet", "learn_content_ttl", K_DUR, C(fleet.learn_ttl[3]), 60, 30 * 86400, 0 },
	{ "fleet", "per24_max", K_U32, C(fleet.per24_max), 0, 256, 0 },
	{ "fleet", "queue_max", K_U32, C(fleet.queue_max), 16, 10000000, 0 },
	{ "fleet", "batch", K_U32, C(fleet.batch), 1, 1000, 0 },
	{ "fleet", "timeout", K_DUR, C(fleet.timeout), 1, 600, 0 },
	{ "zone", "type", K_SPECIAL, 0, 0, 0, 0, 0 },
	{ "zone", "primary", K_SPECIAL, 0, 0, 0, 0, 1 },
	{ "zone", "tsig", K_SPECIAL, 0, 0, 0, 0, 0 },
	{ "zone", "file", K_PATH, Z(file), 0, 0, 0 },
	{ "zone", "format", K_SPECIAL, 0, 0, 0, 0, 0 },
	{ "zone", "ixfr", K_BOOL, Z(ixfr), 0, 1, 0 },
	{ "zone", "weight", K_INT, Z(weight), -1000, 1000, 0 },
	{ "zone", "codes", K_SPECIAL, 0, 0, 0, 0, 1 },
	{ "zone", "error_codes", K_SPECIAL, 0, 0, 0, 0, 1 },
	{ "zone", "on_expire", K_SPECIAL, 0, 0, 0, 0, 0 },
	{ "zone", "stale_max", K_DUR, Z(stale_max), 0, 366 * 86400, 0 },
	{ "zone", "refresh_min", K_DUR, Z(refresh_min), 1, 86400 * 7, 0 },
	{ "zone", "refresh_max", K_DUR, Z(refresh_max), 1, 86400 * 30, 0 },
	{ "zone", "retry", K_DUR, Z(retry), 0, 86400, 0 },
	{ "zone", "timeout", K_DUR, Z(timeout), 1, 3600, 0 },
	{ "zone", "max_entries", K_U64, Z(max_entries), 1, 1000000000, 0 },
	{ "zone", "sanity", K_BOOL, Z(sanity), 0, 1, 0 },
	{ "zone", "max_prefix_v4", K_U32, Z(max_prefix_v4), 0, 32, 0 },
	{ "zone", "max_prefix_v6", K_U32, Z(max_prefix_v6), 0, 128, 0 },
	{ "zone", "fleet", K_BOOL, Z(fleet), 0, 1, 0 },
};

/* Parse state handed through inih. */
struct pstate {
	struct moat_config *c;
	const char *file;
	int line;            /* line the reader returned last */
	char *err;
	int failed;
	struct cfg_zone *zone;      /* current [zone NAME], NULL otherwise */
	char section[300];
	unsigned char seen[CFG_MAX_ZONES + 1][sizeof(keys) / sizeof(keys[0])];
	/* the reader's source: a FILE or a string */
	FILE *fp;
	const char *text;
	int hdr_pending;     /* a [section] line was read, no key of it yet */
	int hdr_line;
};

/* perr - record the first error as FILE:LINE: reason (lib/cfgerr.h) */
#define perr(p, line, ...) \
	moat_cfg_error((p)->err, CFG_ERRLEN, &(p)->failed, (p)->file, (line), __VA_ARGS__)

/* cfg_src_type_name - "axfr", "rbldnsd" or "live" */
const char *cfg_src_type_name(enum cfg_src_type t)
{
	switch (t) {
	case CFG_SRC_AXFR: return "axfr";
	case CFG_SRC_RBLDNSD: return "rbldnsd";
	case CFG_SRC_LIVE: return "live";
	}
	return "?";
}

/* zone_defaults - defaults of every [zone] key */
static void zone_defaults(struct cfg_zone *z)
{
	memset(z, 0, sizeof(*z));
	z->type = CFG_SRC_AXFR;
	snprintf(z->format, sizeof(z->format), "ip4trie");
	z->ixfr = 1;
	z->weight = 1;
	/* error codes never listings: 127.255.255.0/24 and 127.0.0.1 */
	z->errcode[0] = (struct cfg_cidr){ 0x7fffff00u, 0xffffff00u };
	z->errcode[1] = (struct cfg_cidr){ 0x7f000001u, 0xffffffffu };
	z->nerrcode = 2;
	z->on_expire = CFG_EXPIRE_KEEP;
	z->stale_max = 7 * 86400;
	z->refresh_min = 30;
	z->refresh_max = 86400;
	z->retry = 0;
	z->timeout = 120;
	z->max_entries = 50000000;
	z->sanity = 1;
	z->max_prefix_v4 = 8;
	z->max_prefix_v6 = 16;
}

/* cfg_fleet_defaults - [fleet]'s documented defaults (off: no id) */
static void cfg_fleet_defaults(struct cfg_fleet *f)
{
	f->lifetime = 86400;
	f->record_ttl = 60;
	for (int i = 0; i < 4; i++)
		f->learn_ttl[i] = 3600;
	f->per24_max = 16;
	f->queue_max = 100000;
	f->batch = 200;
	f->timeout = 10;
}

/* cfg_defaults - every documented default */
void cfg_defaults(struct moat_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->socket_path, sizeof(c->socket_path), "/run/moat/control.sock");
	c->socket_mode = 0660;
	snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/moat");
	snprintf(c->log_level, sizeof(c->log_level), "info");
	/* pin_dir: set by validate, only where something is pinned */
	snprintf(c->xdp_mode, sizeof(c->xdp_mode), "auto");
	snprintf(c->fp_backend, sizeof(c->fp_backend), "xdp");
	snprintf(c->dpdk_socket, sizeof(c->dpdk_socket), "/run/moat/dpdk.sock");
	/* the fast path's knobs: bpf/moat_xdp.h's defaults, as both backends */
	c->ports[0] = MOAT_XDP_DEF_PORT;
	c->nports = 1;
	c->event_sample = MOAT_XDP_DEF_EVENT_SAMPLE;
	c->groups_max = MOAT_XDP_DEF_GROUPS_MAX;
	c->tarpit_src_pps = MOAT_XDP_DEF_SRC_PPS;
	c->tarpit_src_burst = MOAT_XDP_DEF_SRC_BURST;
	c->tarpit_global_pps = MOAT_XDP_DEF_GLOBAL_PPS;
	c->tarpit_global_burst = MOAT_XDP_DEF_GLOBAL_BURST;
	c->syn_cookies = MOAT_SYN_COOKIES_OFF;
	c->cookie_threshold = MOAT_XDP_DEF_COOKIE_THRESHOLD;
	c->cookie_mss = MOAT_XDP_DEF_COOKIE_MSS;
	cfg_parse_addr("127.0.0.1:9464", 9464, &c->metrics);
	c->tarpit_threshold = 0;
	c->drop_threshold = 1;
	c->operator_max_ttl = 0;
	c->report_ttl = 3600;
	c->accept_reports = 1;
	cfg_fleet_defaults(&c->fleet);
}

/* cfg_parse_duration - seconds with an optional unit */
int cfg_parse_duration(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v, mul = 1;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (*end) {
		switch (*end) {
		case 's': mul = 1; break;
		case 'm': mul = 60; break;
		case 'h': mul = 3600; break;
		case 'd': mul = 86400; break;
		case 'w': mul = 7 * 86400; break;
		default: return -1;
		}
		if (end[1])
			return -1;
	}
	if (v > UINT32_MAX / mul)
		return -1;
	*out = (uint32_t)(v * mul);
	return 0;
}

/* parse_int - whole-string signed integer */
static int parse_int(const char *s, int64_t *out)
{
	char *end;

	if (!*s)
		return -1;
	errno = 0;
	long long v = strtoll(s, &end, 0);

	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

/* cfg_parse_addr - an address and optional port */
int cfg_parse_addr(const char *s, uint16_t default_port, struct cfg_addr *a)
{
	char host[64];
	const char *port = NULL;
	size_t hl;

	memset(a, 0, sizeof(*a));
	if (strlen(s) >= sizeof(a->text))
		return -1;
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb)
			return -1;
		hl = (size_t)(rb - s - 1);
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hl);
		host[hl] = 0;
		if (rb[1] == ':' || rb[1] == '@')
			port = rb + 2;
		else if (rb[1])
			return -1;
	} else {
		const char *at = strchr(s, '@');
		const char *colon = strchr(s, ':');

		if (!at && colon && !strchr(colon + 1, ':'))
			at = colon; /* IPv4:port */
		hl = at ? (size_t)(at - s) : strlen(s);
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, s, hl);
		host[hl] = 0;
		if (at)
			port = at + 1;
	}
	uint32_t p = default_port;

	if (port) {
		int64_t v;

		if (parse_int(port, &v) < 0 || v < 1 || v > 65535)
			return -1;
		p = (uint32_t)v;
	}
	struct sockaddr_in *in4 = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;

	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)p);
		a->len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)p);
		a->len = sizeof(*in6);
	} else {
		return -1;
	}
	snprintf(a->text, sizeof(a->text), "%s", s);
	return 0;
}

/* parse_ipv4_host - dotted quad to host order */
static int parse_ipv4_host(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*out = ntohl(a.s_addr);
	return 0;
}

/* parse_code - "A", "A-B", "A/LEN", each optionally "=WEIGHT" */
static int parse_code(const char *tok, struct cfg_code *c, int default_weight)
{
	char buf[80];
	char *eq, *dash, *slash;
	int64_t w = default_weight;

	if (strlen(tok) >= sizeof(buf))
		return -1;
	strcpy(buf, tok);
	eq = strchr(buf, '=');
	if (eq) {
		*eq = 0;
		if (parse_int(eq + 1, &w) < 0 || w < -1000 || w > 1000)
			return -1;
	}
	c->weight = (int)w;
	dash = strchr(buf, '-');
	slash = strchr(buf, '/');
	if (dash) {
		*dash = 0;
		if (parse_ipv4_host(buf, &c->first) < 0 || parse_ipv4_host(dash + 1, &c->last) < 0 ||
		    c->last < c->first)
			return -1;
	} else if (slash) {
		int64_t l;

		*slash = 0;
		if (parse_ipv4_host(buf, &c->first) < 0 || parse_int(slash + 1, &l) < 0 ||
		    l < 0 || l > 32)
			return -1;
		uint32_t mask = l ? ~0u << (32 - l) : 0;

		if (c->first & ~mask)
			return -1;
		c->last = c->first | ~mask;
	} else {
		if (parse_ipv4_host(buf, &c->first) < 0)
			return -1;
		c->last = c->first;
	}
	if ((c->first >> 24) != 127 || (c->last >> 24) != 127)
		return -2; /* DNSBL answers live in 127/8 */
	return 0;
}

/* for_each_token - split a list on spaces and commas */
static char *next_token(char **save)
{
	char *s = *save, *t;

	while (*s == ' ' || *s == '\t' || *s == ',')
		s++;
	if (!*s)
		return NULL;
	t = s;
	while (*s && *s != ' ' && *s != '\t' && *s != ',')
		s++;
	if (*s)
		*s++ = 0;
	*save = s;
	return t;
}

/* valid_zone_name - a DNS name we can send in a query */
static int valid_zone_name(const char *n)
{
	size_t len = strlen(n), lab = 0;

	if (len == 0 || len > 253)
		return 0;
	for (const char *p = n; *p; p++) {
		if (*p == '.') {
			if (lab == 0 && p[1])
				return 0;
			lab = 0;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return 0;
		if (++lab > 63)
			return 0;
	}
	return 1;
}

/* valid_tsig - "ALG:NAME:BASE64" with a known algorithm */
static int valid_tsig(const char *v)
{
	static const char *const algs[] = {
		"hmac-md5", "hmac-sha1", "hmac-sha224", "hmac-sha256",
		"hmac-sha384", "hmac-sha512",
	};
	const char *c1 = strchr(v, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

	if (!c1 || !c2 || c2 == c1 + 1 || !c2[1])
		return 0;
	int ok = 0;

	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strlen(algs[i]) == (size_t)(c1 - v) && strncasecmp(v, algs[i], (size_t)(c1 - v)) == 0)
			ok = 1;
	for (const char *p = c2 + 1; *p && ok; p++)
		if (!isalnum((unsigned char)*p) && *p != '+' && *p != '/' && *p != '=')
			ok = 0;
	return ok;
}

/* key_special - keys with their own syntax */
/* valid_fleet_id - 1..32 of letters, digits, '-' and '_' (the TXT's
 * "moat:<id>", sources/fleet.h) */
static int valid_fleet_id(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > 32)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && v[i] != '-' && v[i] != '_')
			return 0;
	return 1;
}

/* fleet_special - [fleet] id, primary, tsig */
static int fleet_special(struct pstate *p, const struct key *k, const char *value)
{
	struct cfg_fleet *f = &p->c->fleet;

	if (strcmp(k->name, "id") == 0) {
		if (!valid_fleet_id(value))
			return perr(p, p->line, "id: '%s' is not 1..32 of letters, digits, - and _",
				    value);
		snprintf(f->id, sizeof(f->id), "%.32s", value);
		return 1;
	}
	if (strcmp(k->name, "primary") == 0) {
		if (cfg_parse_addr(value, 53, &f->primary) < 0)
			return perr(p, p->line, "primary: '%s' is not IP[@PORT]", value);
		return 1;
	}
	if (!valid_tsig(value))
		return perr(p, p->line, "tsig: want ALGORITHM:KEYNAME:BASE64SECRET "
			    "with ALGORITHM hmac-md5|sha1|sha224|sha256|sha384|sha512");
	snprintf(f->tsig, sizeof(f->tsig), "%.511s", value);
	return 1;
}

static int key_special(struct pstate *p, const struct key *k, const char *value)
{
	struct moat_config *c = p->c;
	struct cfg_zone *z = p->zone;
	char buf[1024], *save, *tok;

	if (strlen(value) >= sizeof(buf))
		return perr(p, p->line, "%s: value too long", k->name);
	strcpy(buf, value);
	save = buf;
	if (strcmp(k->section, "fleet") == 0)
		return fleet_special(p, k, value);
	if (strcmp(k->name, "notify_listen") == 0) {
		while ((tok = next_token(&save))) {
			if (c->nnotify >= (int)(sizeof(c->notify_listen) / sizeof(c->notify_listen[0])))
				return perr(p, p->line, "notify_listen: at most 4 addresses");
			if (cfg_parse_addr(tok, 53, &c->notify_listen[c->nnotify]) < 0)
				return perr(p, p->line, "notify_listen: '%s' is not IP[@PORT]", tok);
			c->nnotify++;
		}
		return 1;
	}
	if (strcmp(k->name, "resolver") == 0) {
		size_t o = 0;

		while ((tok = next_token(&save))) {
			struct cfg_addr a;

			if (cfg_parse_addr(tok, 53, &a) < 0)
				return perr(p, p->line, "resolver: '%s' is not IP[@PORT]", tok);
			/* kept as live.h wants it: ADDR[@PORT] comma-separated */
			int n = snprintf(c->resolver + o, sizeof(c->resolver) - o, "%s%s", o ? "," : "", tok);

			if (n < 0 || (size_t)n >= sizeof(c->resolver) - o)
				return perr(p, p->line, "resolver: too many servers");
			o += (size_t)n;
		}
		return 1;
	}
	if (strcmp(k->name, "interfaces") == 0) {
		while ((tok = next_token(&save))) {
			if (c->nifaces >= CFG_MAX_IFACES)
				return perr(p, p->line, "interfaces: at most %d", CFG_MAX_IFACES);
			if (strlen(tok) >= 16)
				return perr(p, p->line, "interfaces: '%s' is longer than IFNAMSIZ", tok);
			for (int i = 0; i < c->nifaces; i++)
				if (strcmp(c->ifaces[i], tok) == 0)
					return perr(p, p->line, "interfaces: '%s' listed twice", tok);
			snprintf(c->ifaces[c->nifaces++], sizeof(c->ifaces[0]), "%s", tok);
		}
		return 1;
	}
	if (strcmp(k->name, "backend") == 0) {
		if (strcmp(value, "xdp") && strcmp(value, "dpdk"))
			return perr(p, p->line, "backend: '%s' is not xdp or dpdk", value);
		snprintf(c->fp_backend, sizeof(c->fp_backend), "%.15s", value);
		return 1;
	}
	if (strcmp(k->name, "mode") == 0) {
		if (strcmp(value, "native") && strcmp(value, "skb") && strcmp(value, "auto"))
			return perr(p, p->line, "mode: '%s' is not native, skb or auto", value);
		snprintf(c->xdp_mode, sizeof(c->xdp_mode), "%.15s", value);
		return 1;
	}
	if (strcmp(k->name, "ports") == 0) {
		c->nports = 0;
		while ((tok = next_token(&save))) {
			int64_t v;

			if (c->nports >= 8)
				return perr(p, p->line, "ports: at most 8");
			if (parse_int(tok, &v) < 0 || v < 1 || v > 65535)
				return perr(p, p->line, "ports: '%s' is not a port number", tok);
			c->ports[c->nports++] = (uint16_t)v;
		}
		if (!c->nports)
			return perr(p, p->line, "ports: at least one port");
		return 1;
	}
	if (strcmp(k->name, "syn_cookies") == 0) {
		if (!strcmp(value, "off"))
			c->syn_cookies = MOAT_SYN_COOKIES_OFF;
		else if (!strcmp(value, "on"))
			c->syn_cookies = MOAT_SYN_COOKIES_ON;
		else if (!strcmp(value, "auto"))
			c->syn_cookies = MOAT_SYN_COOKIES_AUTO;
		else
			return perr(p, p->line, "syn_cookies: '%s' is not off, on or auto", value);
		return 1;
	}
	if (strcmp(k->name, "event_sample") == 0) {
		int64_t v;

		if (parse_int(value, &v) < 0 || v < 0 || v > 65536 || (v & (v - 1)))
			return perr(p, p->line, "event_sample: '%s' is not 0 or a power of two up to 65536",
				    value);
		c->event_sample = (uint32_t)v;
		return 1;
	}
	if (strcmp(k->name, "listen") == 0) {
		if (!*value || strcmp(value, "off") == 0) {
			memset(&c->metrics, 0, sizeof(c->metrics));
			return 1;
		}
		if (cfg_parse_addr(value, 9464, &c->metrics) < 0)
			return perr(p, p->line, "listen: '%s' is not IP[:PORT] or off", value);
		return 1;
	}
	if (strcmp(k->name, "type") == 0) {
		if (strcmp(value, "axfr") == 0)
			z->type = CFG_SRC_AXFR;
		else if (strcmp(value, "rbldnsd") == 0)
			z->type = CFG_SRC_RBLDNSD;
		else if (strcmp(value, "live") == 0)
			z->type = CFG_SRC_LIVE;
		else
			return perr(p, p->line, "type: '%s' is not axfr, rbldnsd or live", value);
		return 1;
	}
	if (strcmp(k->name, "primary") == 0) {
		while ((tok = next_token(&save))) {
			if (z->nprimary >= CFG_MAX_PRIMARIES)
				return perr(p, p->line, "primary: at most %d", CFG_MAX_PRIMARIES);
			if (cfg_parse_addr(tok, 53, &z->primary[z->nprimary]) < 0)
				return perr(p, p->line, "primary: '%s' is not IP[@PORT]", tok);
			z->nprimary++;
		}
		return 1;
	}
	if (strcmp(k->name, "tsig") == 0) {
		if (!valid_tsig(value))
			return perr(p, p->line, "tsig: want ALGORITHM:KEYNAME:BASE64SECRET "
				    "with ALGORITHM hmac-md5|sha1|sha224|sha256|sha384|sha512");
		snprintf(z->tsig, sizeof(z->tsig), "%.511s", value);
		return 1;
	}
	if (strcmp(k->name, "codes") == 0) {
		while ((tok = next_token(&save))) {
			if (z->ncode >= CFG_MAX_CODES)
				return perr(p, p->line, "codes: at most %d entries", CFG_MAX_CODES);
			int r = parse_code(tok, &z->code[z->ncode], z->weight);

			if (r == -2)
				return perr(p, p->line, "codes: '%s' is outside 127.0.0.0/8", tok);
			if (r < 0)
				return perr(p, p->line, "codes: '%s' is not CODE, CODE-CODE or CODE/LEN "
					    "with an optional =WEIGHT", tok);
			z->ncode++;
		}
		return 1;
	}
	if (strcmp(k->name, "error_codes") == 0) {
		if (!p->seen[z - c->zone][k - keys])
			z->nerrcode = 0; /* the first occurrence replaces the default */
		while ((tok = next_token(&save))) {
			struct cfg_code cc;

			if (z->nerrcode >= CFG_MAX_ERRCODES)
				return perr(p, p->line, "error_codes: at most %d entries", CFG_MAX_ERRCODES);
			if (strchr(tok, '=') || strchr(tok, '-') || parse_code(tok, &cc, 0) < 0)
				return perr(p, p->line, "error_codes: '%s' is not CODE or CODE/LEN in 127/8", tok);
			z->errcode[z->nerrcode].addr = cc.first;
			z->errcode[z->nerrcode].mask = ~(cc.last - cc.first);
			z->nerrcode++;
		}
		return 1;
	}
	if (strcmp(k->name, "format") == 0) {
		if (strcmp(value, "ip4set") && strcmp(value, "ip4trie") && strcmp(value, "ip6trie"))
			return perr(p, p->line, "format: '%s' is not ip4set, ip4trie or ip6trie", value);
		snprintf(z->format, sizeof(z->format), "%.15s", value);
		return 1;
	}
	if (strcmp(k->name, "on_expire") == 0) {
		if (strcmp(value, "keep") == 0)
			z->on_expire = CFG_EXPIRE_KEEP;
		else if (strcmp(value, "drop") == 0)
			z->on_expire = CFG_EXPIRE_DROP;
		else
			return perr(p, p->line, "on_expire: '%s' is not keep or drop", value);
		return 1;
	}
	return perr(p, p->line, "internal: no parser for %s", k->name);
}

/* key_value - one key = value of a known key */
static int key_value(struct pstate *p, const struct key *k, const char *value)
{
	void *base = strcmp(k->section, "zone") == 0 ? (void *)p->zone : (void *)p->c;
	char *dst = (char *)base + k->off;
	int64_t v;
	uint32_t d;

	switch (k->type) {
	case K_PATH:
		if (value[0] != '/')
			return perr(p, p->line, "%s: '%s' is not an absolute path", k->name, value);
		/* fall through */
	case K_STR:
		if (strlen(value) >= k->size)
			return perr(p, p->line, "%s: longer than %zu characters", k->name, k->size - 1);
		memcpy(dst, value, strlen(value) + 1);
		return 1;
	case K_BOOL:
		if (moat_cfg_bool(value, (int *)(void *)dst) < 0)
			return perr(p, p->line, "%s: '%s' is not yes or no", k->name, value);
		return 1;
	case K_INT:
	case K_U32:
	case K_U64:
		if (parse_int(value, &v) < 0)
			return perr(p, p->line, "%s: '%s' is not an integer", k->name, value);
		if (v < k->min || v > k->max)
			return perr(p, p->line, "%s: %lld is outside %lld..%lld", k->name,
				    (long long)v, (long long)k->min, (long long)k->max);
		if (k->type == K_INT)
			*(int *)(void *)dst = (int)v;
		else if (k->type == K_U32)
			*(uint32_t *)(void *)dst = (uint32_t)v;
		else
			*(uint64_t *)(void *)dst = (uint64_t)v;
		return 1;
	case K_DUR:
		if (cfg_parse_duration(value, &d) < 0)
			return perr(p, p->line, "%s: '%s' is not a duration (N, Ns, Nm, Nh, Nd, Nw)",
				    k->name, value);
		if (d < k->min || d > k->max)
			return perr(p, p->line, "%s: %u s is outside %lld..%lld s", k->name, d,
				    (long long)k->min, (long long)k->max);
		*(uint32_t *)(void *)dst = d;
		return 1;
	case K_MODE: {
		char *end;
		unsigned long m = strtoul(value, &end, 8);

		if (!*value || *end || m > 0777)
			return perr(p, p->line, "%s: '%s' is not an octal mode like 0660", k->name, value);
		*(mode_t *)(void *)dst = (mode_t)m;
		return 1;
	}
	case K_LEVEL: {
		enum log_level l;

		if (log_parse_level(value, &l) < 0)
			return perr(p, p->line, "%s: '%s' is not error, warning, info or debug",
				    k->name, value);
		snprintf(dst, k->size, "%s", value);
		return 1;
	}
	case K_SPECIAL:
		return key_special(p, k, value);
	}
	return 0;
}

/* handler - inih callback: one key in one section */
static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct pstate *p = user;
	struct moat_config *c = p->c;
	const char *sec = section;

	if (p->failed)
		return 1; /* the first error is the one we report */
	if (strcmp(section, p->section) != 0) {
		/* a new section: inih tells us at its first key */
		snprintf(p->section, sizeof(p->section), "%s", section);
		p->zone = NULL;
		p->hdr_pending = 0;
		if (strncmp(section, "zone ", 5) == 0) {
			const char *zn = section + 5;

			while (*zn == ' ')
				zn++;
			if (!valid_zone_name(zn))
				return perr(p, p->line, "[%s]: '%s' is not a valid DNS name", section, zn);
			for (int i = 0; i < c->nzones; i++)
				if (strcasecmp(c->zone[i].name, zn) == 0)
					return perr(p, p->line, "[%s]: zone defined twice (first at line %d)",
						    section, c->zone[i].line);
			if (c->nzones >= CFG_MAX_ZONES)
				return perr(p, p->line, "[%s]: more than %d zones", section, CFG_MAX_ZONES);
			p->zone = &c->zone[c->nzones++];
			zone_defaults(p->zone);
			snprintf(p->zone->name, sizeof(p->zone->name), "%s", zn);
			/* strip a trailing dot: names are kept without it */
			size_t l = strlen(p->zone->name);

			if (l > 1 && p->zone->name[l - 1] == '.')
				p->zone->name[l - 1] = 0;
			p->zone->line = p->hdr_line ? p->hdr_line : p->line;
		}
	}
	if (p->zone)
		sec = "zone";
	else if (strcmp(section, "zone") == 0)
		/* the zone keys would land in no zone (a NULL write before
		 * the fuzzer found it) */
		return perr(p, p->line, "[zone]: a zone section needs a name ([zone NAME])");
	int sect_known = 0;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key *k = &keys[i];

		if (strcmp(k->section, sec) != 0)
			continue;
		sect_known = 1;
		if (strcmp(k->name, name) != 0)
			continue;
		int slot = p->zone ? (int)(p->zone - c->zone) : CFG_MAX_ZONES;

		if (p->seen[slot][i] && !k->repeat)
			return perr(p, p->line, "%s: set twice in [%s]", name, section);
		int r = key_value(p, k, value);

		p->seen[slot][i] = 1;
		return r;
	}
	if (!sect_known)
		return perr(p, p->line, "unknown section [%s] (want daemon, fastpath, xdp, dpdk, "
			    "metrics, policy, operator, fleet or zone NAME)", section);
	return perr(p, p->line, "unknown key '%s' in [%s]", name, section);
}

/* reader - inih line reader that counts lines and refuses long ones */
static char *reader(char *str, int num, void *stream)
{
	struct pstate *p = stream;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (p->fp) {
		n = getline(&line, &cap, p->fp);
		if (n < 0) {
			free(line);
			return NULL;
		}
	} else {
		if (!*p->text)
			return NULL;
		const char *nl = strchr(p->text, '\n');

		n = nl ? nl - p->text + 1 : (ssize_t)strlen(p->text);
		line = strndup(p->text, (size_t)n);
		p->text += n;
		if (!line)
			return NULL;
	}
	p->line++;
	const char *t = line;

	while (*t == ' ' || *t == '\t')
		t++;
	if (*t == '[') {
		/* inih only calls us back at a section's first key: an empty
		 * section would vanish silently, so catch it here */
		if (p->hdr_pending)
			perr(p, p->hdr_line, "section has no keys");
		p->hdr_pending = 1;
		p->hdr_line = p->line;
	}
	if (n >= num - 1 && !(n == num - 1 && line[n - 1] == '\n')) {
		perr(p, p->line, "line longer than %d characters", num - 2);
		str[0] = '\n';
		str[1] = 0;
	} else {
		memcpy(str, line, (size_t)n + 1);
	}
	free(line);
	return str;
}

/* validate - checks across keys, after the whole file is read */
static int validate(struct pstate *p)
{
	struct moat_config *c = p->c;

	/* pins exist only with interfaces: without, a default pin_dir would
	 * name the shared /sys/fs/bpf/moat of another instance (that `moatctl
	 * detach` could unpin); empty = none, whatever the file said */
	if (!c->nifaces)
		c->pin_dir[0] = 0;
	else if (!c->pin_dir[0])
		snprintf(c->pin_dir, sizeof(c->pin_dir), "%s", CFG_PIN_DIR);
	if (!strcmp(c->fp_backend, "dpdk") && c->nifaces)
		return perr(p, p->line, "[xdp] interfaces with [fastpath] backend = dpdk: moat-dpdk "
			    "owns its ports (its own configuration names them)");
	if (!strcmp(c->fp_backend, "dpdk") && c->syn_cookies != MOAT_SYN_COOKIES_OFF)
		return perr(p, p->line, "[xdp] syn_cookies with [fastpath] backend = dpdk: only the "
			    "XDP backend answers with SYN cookies");
	if (c->tarpit_threshold && c->drop_threshold && c->tarpit_threshold >= c->drop_threshold)
		return perr(p, p->line, "[policy]: tarpit_threshold (%d) must be below "
			    "drop_threshold (%d), or 0", c->tarpit_threshold, c->drop_threshold);
	if (!c->tarpit_threshold && !c->drop_threshold)
		return perr(p, p->line, "[policy]: tarpit_threshold and drop_threshold are both 0: "
			    "nothing would ever be filtered");
	if (c->fleet.id[0] && (!c->fleet.zone[0] || !c->fleet.primary.len))
		return perr(p, p->line, "[fleet]: id needs zone and primary");
	if (!c->fleet.id[0] && (c->fleet.zone[0] || c->fleet.primary.len))
		return perr(p, p->line, "[fleet]: zone and primary need id");
	for (int i = 0; i < c->nzones; i++) {
		struct cfg_zone *z = &c->zone[i];

		if (z->fleet && z->type != CFG_SRC_AXFR)
			return perr(p, z->line, "[zone %s]: fleet is only for type axfr", z->name);
		if (z->type == CFG_SRC_AXFR && z->nprimary == 0)
			return perr(p, z->line, "[zone %s]: type axfr needs at least one primary", z->name);
		if (z->type == CFG_SRC_RBLDNSD && !z->file[0])
			return perr(p, z->line, "[zone %s]: type rbldnsd needs file", z->name);
		if (z->type != CFG_SRC_RBLDNSD && z->file[0])
			return perr(p, z->line, "[zone %s]: file is only for type rbldnsd", z->name);
		if (z->type != CFG_SRC_AXFR && (z->nprimary || z->tsig[0]))
			return perr(p, z->line, "[zone %s]: primary/tsig are only for type axfr", z->name);
		if (z->refresh_min > z->refresh_max)
			return perr(p, z->line, "[zone %s]: refresh_min (%u) > refresh_max (%u)",
				    z->name, z->refresh_min, z->refresh_max);
	}
	return 1;
}

/* cfg_parse - shared body of cfg_load and cfg_load_string */
static int cfg_parse(struct moat_config *c, struct pstate *p)
{
	int r = ini_parse_stream(reader, p, handler, p);

	if (!p->failed && r > 0)
		perr(p, r, "syntax error: want [section], key = value, or a ; comment");
	if (!p->failed && r < 0)
		perr(p, 0, "cannot read (error %d)", r);
	if (!p->failed && p->hdr_pending)
		perr(p, p->hdr_line, "section has no keys");
	if (!p->failed)
		validate(p);
	(void)c;
	return p->failed ? -1 : 0;
}

/* cfg_load - read and validate a file */
int cfg_load(struct moat_config *c, const char *path, char *err)
{
	struct pstate *p = calloc(1, sizeof(*p));

	if (!p) {
		snprintf(err, CFG_ERRLEN, "%s: out of memory", path);
		return -1;
	}
	cfg_defaults(c);
	snprintf(c->path, sizeof(c->path), "%s", path);
	p->c = c;
	p->file = path;
	p->err = err;
	p->fp = fopen(path, "r");
	if (!p->fp) {
		snprintf(err, CFG_ERRLEN, "%s: %s", path, strerror(errno));
		free(p);
		return -1;
	}
	int r = cfg_parse(c, p);

	fclose(p->fp);
	free(p);
	return r;
}

/* cfg_load_string - the same from memory */
int cfg_load_string(struct moat_config *c, const char *name, const char *text, char *err)
{
	struct pstate *p = calloc(1, sizeof(*p));

	if (!p) {
		snprintf(err, CFG_ERRLEN, "%s: out of memory", name);
		return -1;
	}
	cfg_defaults(c);
	snprintf(c->path, sizeof(c->path), "%s", name);
	p->c = c;
	p->file = name;
	p->err = err;
	p->text = text;
	int r = cfg_parse(c, p);

	free(p);
	return r;
}

/* cfg_key - the i-th row of keys[] */
const char *cfg_key(size_t i, const char **section)
{
	if (i >= sizeof(keys) / sizeof(keys[0]))
		return NULL;
	*section = keys[i].section;
	return keys[i].name;
}

/* cfg_zone_find - zone by name (case-insensitive, trailing dot ignored) */
const struct cfg_zone *cfg_zone_find(const struct moat_config *c, const char *name)
{
	size_t l = strlen(name);

	if (l > 1 && name[l - 1] == '.')
		l--;
	for (int i = 0; i < c->nzones; i++)
		if (strlen(c->zone[i].name) == l && strncasecmp(c->zone[i].name, name, l) == 0)
			return &c->zone[i];
	return NULL;
}

/* cfg_code_weight - weight of a return code under zone z's policy */
int cfg_code_weight(const struct cfg_zone *z, uint32_t code, int *w)
{
	if ((code >> 24) != 127)
		return -1;
	for (int i = 0; i < z->nerrcode; i++)
		if ((code & z->errcode[i].mask) == z->errcode[i].addr)
			return -1;
	if (z->ncode == 0) {
		*w = z->weight;
		return 0;
	}
	for (int i = 0; i < z->ncode; i++) {
		if (code >= z->code[i].first && code <= z->code[i].last) {
			*w = z->code[i].weight;
			return 0;
		}
	}
	return -1; /* codes given and this one not among them: not a listing */
}
