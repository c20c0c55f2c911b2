/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dp_config.c - moat-dpdk's [dpdk] section, read with inih as
 * moat-controld reads its own (control/config.c): a table of keys with
 * types and bounds, every value checked at start-up, the first error
 * reported as FILE:LINE: reason, unknown keys in [dpdk] refused.
 */
#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgerr.h"
#include "dp_config.h"
#include "moat_xdp.h"
#include "vt_trie6.h"

enum dk_type { DK_STR, DK_U32, DK_PORTS, DK_POW2 };

struct dkey {
	const char *name;
	enum dk_type type;
	size_t off, size;
	uint32_t min, max;
};

#define D(f) offsetof(struct dp_config, f), sizeof(((struct dp_config *)0)->f)

static const struct dkey dkeys[] = {
	{ "port", DK_STR, D(port), 0, 0 },
	{ "exception", DK_STR, D(exception), 0, 0 },
	{ "exception_port", DK_STR, D(exception_port), 0, 0 },
	{ "socket", DK_STR, D(socket), 0, 0 },
	{ "state_dir", DK_STR, D(state_dir), 0, 0 },
	{ "user", DK_STR, D(user), 0, 0 },
	{ "ports", DK_PORTS, 0, 0, 0, 0 },
	{ "event_sample", DK_POW2, D(event_sample), 0, 65536 },
	{ "groups_max", DK_U32, D(groups_max), 1024, MOAT_XDP_GROUPS_MAX },
	/* at most what the IPv6 trie's 23-bit indexes reach */
	{ "v6_max", DK_U32, D(v6_max), 16, VT_TRIE6_RULES_MAX },
	/* the same names and ranges as moat-controld's [xdp] (config.c) */
	{ "tarpit_source_rate", DK_U32, D(tarpit_src_pps), 0, DP_TARPIT_MAX },
	{ "tarpit_source_burst", DK_U32, D(tarpit_src_burst), 1, DP_TARPIT_MAX },
	{ "tarpit_global_rate", DK_U32, D(tarpit_global_pps), 0, DP_TARPIT_MAX },
	{ "tarpit_global_burst", DK_U32, D(tarpit_global_burst), 1, DP_TARPIT_MAX },
	{ "rx_desc", DK_U32, D(rx_desc), 64, 16384 },
	{ "tx_desc", DK_U32, D(tx_desc), 64, 16384 },
	{ "mbufs", DK_U32, D(mbufs), 0, 1u << 26 },
	{ "idle_sleep_us", DK_U32, D(idle_sleep_us), 0, 100000 },
	{ "load_wait", DK_U32, D(load_wait), 0, 86400 },
	{ "log_level", DK_STR, D(log_level), 0, 0 },
};

struct dstate {
	struct dp_config *c;
	const char *file;
	char *err;
	int failed;
	int dir_set;           /* [dpdk] state_dir given: [daemon]'s ignored */
	int user_set;          /* [dpdk] user given: [daemon]'s ignored */
	FILE *fp;
	int line;              /* the line the reader returned last */
};

/* reader - fgets for inih, counting lines for error messages */
static char *reader(char *str, int num, void *stream)
{
	struct dstate *s = stream;
	char *r = fgets(str, num, s->fp);

	if (r)
		s->line++;
	return r;
}

/* derr - record the first error as FILE:LINE: reason (lib/cfgerr.h) */
#define derr(s, line, ...) \
	moat_cfg_error((s)->err, DP_CFG_ERRLEN, &(s)->failed, (s)->file, (line), __VA_ARGS__)

/* parse_u32 - a whole decimal number in [min, max] */
static int parse_u32(const char *v, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long long x;

	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || end == v || *end || x < min || x > max || v[0] == '-')
		return -1;
	*out = (uint32_t)x;
	return 0;
}

/* parse_ports - "25 587" or "25,587": 1..MOAT_PORTS_MAX ports */
static int parse_ports(struct dstate *s, int line, const char *v)
{
	char buf[256], *tok, *save = NULL;
	unsigned n = 0;

	snprintf(buf, sizeof(buf), "%s", v);
	for (tok = strtok_r(buf, " ,\t", &save); tok; tok = strtok_r(NULL, " ,\t", &save)) {
		uint32_t p;

		if (parse_u32(tok, 1, 65535, &p))
			return derr(s, line, "ports: '%s' is not a port number", tok);
		if (n == MOAT_PORTS_MAX)
			return derr(s, line, "ports: more than %d ports", MOAT_PORTS_MAX);
		s->c->ports[n++] = (uint16_t)p;
	}
	if (!n)
		return derr(s, line, "ports: empty");
	s->c->n_ports = n;
	return 1;
}

/* handler - one key of the file (inih callback; 0 stops on error) */
static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct dstate *s = user;
	int line = s->line;
	const struct dkey *k = NULL;

	if (s->failed)
		return 0;
	if (strcmp(section, "daemon") == 0) {
		if (strcmp(name, "state_dir") == 0 && !s->dir_set)
			snprintf(s->c->state_dir, sizeof(s->c->state_dir), "%s", value);
		if (strcmp(name, "user") == 0 && !s->user_set)
			snprintf(s->c->user, sizeof(s->c->user), "%s", value);
		return 1;
	}
	if (strcmp(section, "dpdk") != 0)
		return 1;  /* moat-controld's sections */
	for (size_t i = 0; i < sizeof(dkeys) / sizeof(dkeys[0]); i++)
		if (strcmp(dkeys[i].name, name) == 0)
			k = &dkeys[i];
	if (!k)
		return derr(s, line, "[dpdk]: unknown key '%s'", name);
	switch (k->type) {
	case DK_STR:
		if (!*value || strlen(value) >= k->size)
			return derr(s, line, "%s: empty or longer than %zu bytes", name,
				    k->size - 1);
		memcpy((char *)s->c + k->off, value, strlen(value) + 1);
		if (strcmp(name, "state_dir") == 0)
			s->dir_set = 1;
		if (strcmp(name, "user") == 0)
			s->user_set = 1;
		return 1;
	case DK_U32: {
		uint32_t v;

		if (parse_u32(value, k->min, k->max, &v))
			return derr(s, line, "%s: '%s' is not a number in %u..%u", name, value,
				    k->min, k->max);
		memcpy((char *)s->c + k->off, &v, sizeof(v));
		return 1;
	}
	case DK_POW2: {
		uint32_t v;

		if (parse_u32(value, k->min, k->max, &v) || (v & (v - 1)))
			return derr(s, line, "%s: '%s' is not 0 or a power of two up to %u",
				    name, value, k->max);
		memcpy((char *)s->c + k->off, &v, sizeof(v));
		return 1;
	}
	case DK_PORTS:
		return parse_ports(s, line, value);
	}
	return 1;
}

int dp_config_load(const char *path, struct dp_config *c, char err[DP_CFG_ERRLEN])
{
	struct dstate s = { .c = c, .file = path, .err = err };
	int r;

	memset(c, 0, sizeof(*c));
	snprintf(c->exception, sizeof(c->exception), "moat0");
	snprintf(c->socket, sizeof(c->socket), "/run/moat/dpdk.sock");
	snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/moat");
	snprintf(c->log_level, sizeof(c->log_level), "info");
	MOAT_XDP_KNOBS_DEFAULT(c);
	c->rx_desc = 1024;
	c->tx_desc = 1024;
	c->idle_sleep_us = 1000;
	c->load_wait = 60;
	err[0] = 0;
	s.fp = fopen(path, "re");
	if (!s.fp) {
		snprintf(err, DP_CFG_ERRLEN, "%.200s: cannot read: %s", path, strerror(errno));
		return -1;
	}
	r = ini_parse_stream(reader, &s, handler, &s);
	fclose(s.fp);
	if (s.failed)
		return -1;
	if (r < 0) {
		snprintf(err, DP_CFG_ERRLEN, "%.200s: out of memory", path);
		return -1;
	}
	if (r > 0) {
		snprintf(err, DP_CFG_ERRLEN, "%.200s:%d: not a key = value line", path, r);
		return -1;
	}
	if (!c->port[0]) {
		snprintf(err, DP_CFG_ERRLEN, "%.200s: [dpdk] port is not set (the wire port, "
			 "as EAL names it: a PCI address or a --vdev name)", path);
		return -1;
	}
	return 0;
}
