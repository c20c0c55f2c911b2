/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * live.c - live DNSBL lookups over c-ares (API in live.h).  One c-ares
 * channel serves every zone; a lookup fans out one A query per zone and
 * reports once, when the last one completes.
 */
#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "codes.h"
#include "live.h"
#include "log.h"
#include "owner.h"

struct moat_live {
	ares_channel ch;
	struct moat_live_cfg cfg;
	char *zone[MOAT_LIVE_MAX_ZONES];
	unsigned pending;
	moat_live_sock_cb scb;
	void *sarg;
	struct moat_codes codes;
};

struct req {
	struct moat_live *lv;
	struct moat_prefix addr;
	struct moat_lvec out;
	unsigned left, failed;
	moat_live_done_cb cb;
	void *arg;
};

struct zq {
	struct req *r;
	uint16_t source;
};

/* sock_state - c-ares socket changes go to the daemon's epoll */
static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct moat_live *lv = data;

	if (lv->scb)
		lv->scb(lv->sarg, fd, readable != 0, writable != 0);
}

/* moat_live_new - channel set-up */
struct moat_live *moat_live_new(const struct moat_live_cfg *cfg, moat_live_sock_cb scb,
				void *sarg, char *err, size_t errlen)
{
	struct moat_live *lv = calloc(1, sizeof(*lv));
	struct ares_options o = { 0 };
	int r;

	if (!lv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	lv->cfg = *cfg;
	if (cfg->codes)
		lv->codes = *cfg->codes;
	else
		moat_codes_default(&lv->codes);
	lv->cfg.codes = NULL;
	lv->scb = scb;
	lv->sarg = sarg;
	if (cfg->nzones == 0 || cfg->nzones > MOAT_LIVE_MAX_ZONES) {
		snprintf(err, errlen, "live: 1..%d zones", MOAT_LIVE_MAX_ZONES);
		goto fail;
	}
	for (size_t i = 0; i < cfg->nzones; i++) {
		size_t n = strlen(cfg->zones[i].zone);
		lv->zone[i] = strdup(cfg->zones[i].zone);
		if (!lv->zone[i]) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		if (n && lv->zone[i][n - 1] == '.')
			lv->zone[i][n - 1] = 0;
	}
	r = ares_library_init(ARES_LIB_INIT_ALL);
	if (r != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(r));
		goto fail;
	}
	o.flags = ARES_FLAG_NOSEARCH;
	o.timeout = (int)(cfg->timeout_ms ? cfg->timeout_ms : 1000);
	o.tries = (int)(cfg->tries ? cfg->tries : 2);
	o.sock_state_cb = sock_state;
	o.sock_state_cb_data = lv;
	o.ndots = 0;
	r = ares_init_options(&lv->ch, &o,
			      ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
			      ARES_OPT_SOCK_STATE_CB | ARES_OPT_NDOTS);
	if (r != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(r));
		lv->ch = NULL;
		goto fail;
	}
	if (cfg->resolver) {
		/* "ADDR@PORT" -> c-ares' "ADDR:PORT" / "[ADDR]:PORT" */
		char csv[512] = "", one[128];
		const char *p = cfg->resolver;
		while (*p) {
			size_t n = strcspn(p, ",");
			if (n >= sizeof(one) - 8) {
				snprintf(err, errlen, "live: bad resolver %s", cfg->resolver);
				goto fail;
			}
			memcpy(one, p, n);
			one[n] = 0;
			char *at = strchr(one, '@');
			const char *port = at ? at + 1 : "53";
			if (at)
				*at = 0;
			size_t l = strlen(csv);
			if (strchr(one, ':'))
				snprintf(csv + l, sizeof(csv) - l, "%s[%s]:%s", l ? "," : "", one, port);
			else
				snprintf(csv + l, sizeof(csv) - l, "%s%s:%s", l ? "," : "", one, port);
			p += n;
			if (*p == ',')
				p++;
		}
		r = ares_set_servers_ports_csv(lv->ch, csv);
		if (r != ARES_SUCCESS) {
			snprintf(err, errlen, "live: bad resolver %s: %s", cfg->resolver,
				 ares_strerror(r));
			goto fail;
		}
	}
	return lv;
fail:
	moat_live_free(lv);
	return NULL;
}

/* moat_live_free - cancel and release */
void moat_live_free(struct moat_live *lv)
{
	if (!lv)
		return;
	if (lv->ch)
		ares_destroy(lv->ch); /* runs pending callbacks with ARES_EDESTRUCTION */
	for (size_t i = 0; i < MOAT_LIVE_MAX_ZONES; i++)
		free(lv->zone[i]);
	free(lv);
}

/* answered - one zone's answer */
static void answered(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct zq *q = arg;
	struct req *r = q->r;

	(void)timeouts;
	if (status == ARES_SUCCESS) {
		struct ares_addrttl at[32];
		int n = 32;
		if (ares_parse_a_reply(abuf, alen, NULL, at, &n) == ARES_SUCCESS) {
			bool err = false;
			for (int i = 0; i < n; i++) {
				struct moat_listing l = { .pfx = r->addr,
							  .code = ntohl(at[i].ipaddr.s_addr),
							  .ttl = (uint32_t)(at[i].ttl > 0 ? at[i].ttl : 0),
							  .source = q->source };
				if (moat_code_is_error(&r->lv->codes, l.code))
					err = true; /* the list says it did not answer */
				else
					moat_lvec_push(&r->out, &l);
			}
			if (err)
				r->failed++;
		} else {
			r->failed++;
		}
	} else if (status != ARES_ENOTFOUND && status != ARES_ENODATA) {
		r->failed++; /* timeout, SERVFAIL, REFUSED...: unknown, not "clean" */
	}
	free(q);
	if (--r->left == 0) {
		r->lv->pending--;
		r->cb(r->arg, &r->addr, &r->out, r->failed);
		moat_lvec_free(&r->out);
		free(r);
	}
}

/* moat_live_lookup - fan out one query per zone */
int moat_live_lookup(struct moat_live *lv, const struct moat_prefix *addr,
		     moat_live_done_cb cb, void *arg)
{
	char rev[80], name[400];
	struct req *r;

	if ((addr->family == MOAT_AF_INET && addr->plen != 32) ||
	    (addr->family == MOAT_AF_INET6 && addr->plen != 128) ||
	    moat_owner_encode(addr, rev, sizeof(rev)) < 0)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->lv = lv;
	r->addr = *addr;
	r->cb = cb;
	r->arg = arg;
	r->left = (unsigned)lv->cfg.nzones;
	lv->pending++;
	for (size_t i = 0; i < lv->cfg.nzones; i++) {
		struct zq *q = malloc(sizeof(*q));
		snprintf(name, sizeof(name), "%s.%s", rev, lv->zone[i]);
		if (!q) {
			/* count it as failed without a query */
			r->failed++;
			if (--r->left == 0) {
				lv->pending--;
				cb(arg, addr, &r->out, r->failed);
				moat_lvec_free(&r->out);
				free(r);
			}
			continue;
		}
		q->r = r;
		q->source = lv->cfg.zones[i].source;
		/* the callback may run synchronously (e.g. bad name): r stays
		 * valid until the last zone completes */
		ares_query(lv->ch, name, 1 /* C_IN */, 1 /* T_A */, answered, q);
	}
	return 0;
}

/* moat_live_process - readiness or timeouts */
void moat_live_process(struct moat_live *lv, int fd, uint32_t events)
{
	if (fd < 0) {
		ares_process_fd(lv->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
		return;
	}
	ares_process_fd(lv->ch, events & (EPOLLIN | EPOLLERR | EPOLLHUP) ? fd : ARES_SOCKET_BAD,
			events & EPOLLOUT ? fd : ARES_SOCKET_BAD);
}

/* moat_live_timeout_ms - next c-ares deadline */
int moat_live_timeout_ms(struct moat_live *lv)
{
	struct timeval tv, *t;

	if (!lv->pending)
		return -1;
	t = ares_timeout(lv->ch, NULL, &tv);
	if (!t)
		return -1;
	return (int)(t->tv_sec * 1000 + (t->tv_usec + 999) / 1000);
}

/* moat_live_pending - lookups in flight */
unsigned moat_live_pending(const struct moat_live *lv)
{
	return lv->pending;
}
