/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ctlsrv.c - moat-controld's control socket: moatctl, moat-smtpd and tests
 * talk to it with lib/ctlproto.h (newline-delimited JSON).
 *
 * The socket is a Unix stream socket (mode and owner from the config).
 * Every connection is non-blocking with its own input buffer and output
 * queue; a client that sends garbage gets an error reply and a counter,
 * never a crash (STYLE.md trap 7).  Commands are rows of cmds[] (name,
 * handler); a handler returns its reply, or NULL when the reply comes
 * later (requests relayed to moat-smtpd).  A moat-smtpd connection says
 * smtp.hello once; from then on controld may send it requests
 * (rules.reload, smtp.stats) and match the replies by id.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "controld.h"
#include "fleet.h"
#include "ctlproto.h"
#include "livelk.h"
#include "log.h"
#include "prefix.h"
#include "sources.h"

#define OUT_MAX_WATCH (4u << 20)   /* a slow watcher loses samples past this */
#define OUT_MAX_CONN (512u << 20)  /* any client: closed past this much unread output */
#define RELAY_TIMEOUT 5            /* seconds moat-smtpd has to answer */
#define MAX_CONNS 256

struct conn {
	struct cd_tag tag;
	struct ctl_buf in;
	char *out;
	size_t outlen, outcap, outoff;
	int watching;
	int smtp;              /* said smtp.hello */
	int notify_only;       /* speaks the one-way "type" dialect: never answered */
	char smtp_name[64];
	struct json_object *smtp_counters; /* last {"type":"counters"} push */
	struct json_object *smtp_hello;
	uint64_t samples_dropped;
	int closing;
	struct cd_batch *batch; /* entries staged by "batch", applied at commit */
	struct conn *next;
};

struct relay {
	int64_t id;            /* id we sent to moat-smtpd */
	int64_t client_id;     /* id the client used */
	struct conn *client;
	time_t deadline;
	struct relay *next;
};

/* A lookup waiting for live DNSBL answers. */
struct lpend {
	struct ctlsrv *s;
	struct conn *client;   /* NULL once the client went away */
	int64_t id;
	struct json_object *res;
	struct lpend *next;
};

struct ctlsrv {
	struct lpend *lpends;
	struct cd *d;
	struct cd_tag ltag;
	struct conn *conns;
	int nconns;
	struct relay *relays;
	int64_t next_id;
	uint64_t requests, errors, proto_errors;
};

/* conn_queue - append a message to a connection's output */
static void conn_queue(struct ctlsrv *s, struct conn *c, struct json_object *msg)
{
	size_t n;
	char *line = ctl_format(msg, &n);

	(void)s;
	if (!line)
		return;
	if (c->notify_only) {
		free(line); /* a one-way client never reads: queue nothing */
		return;
	}
	if (c->outlen + n > OUT_MAX_CONN) {
		/* a client that does not read its replies: drop it rather
		 * than hold its output forever */
		free(line);
		c->closing = 1;
		return;
	}
	if (c->outlen + n > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 4096;

		while (cap < c->outlen + n)
			cap *= 2;
		char *o = realloc(c->out, cap);

		if (!o) {
			free(line);
			c->closing = 1;
			return;
		}
		c->out = o;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, line, n);
	c->outlen += n;
	free(line);
	cd_watch_mod(&c->tag, EPOLLIN | EPOLLOUT);
}

/* conn_free - close and unlink a connection, failing its relays */
static void conn_free(struct ctlsrv *s, struct conn *c)
{
	struct conn **pp;
	struct relay **rp;

	for (rp = &s->relays; *rp;) {
		struct relay *r = *rp;

		if (r->client == c) {
			*rp = r->next;
			free(r);
			continue;
		}
		rp = &r->next;
	}
	for (struct lpend *p = s->lpends; p; p = p->next)
		if (p->client == c)
			p->client = NULL;
	zm_batch_free(c->batch); /* a batch never committed is never applied */
	c->batch = NULL;
	if (c->smtp)
		log_info("event=smtp-disconnect name=%s", c->smtp_name);
	for (pp = &s->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	cd_unwatch(&c->tag);
	close(c->tag.fd);
	ctl_buf_free(&c->in);
	json_object_put(c->smtp_hello);
	json_object_put(c->smtp_counters);
	free(c->out);
	free(c);
	s->nconns--;
}

/* smtp_peer - the connected moat-smtpd, or NULL */
static struct conn *smtp_peer(struct ctlsrv *s)
{
	for (struct conn *c = s->conns; c; c = c->next)
		if (c->smtp && !c->closing)
			return c;
	return NULL;
}

/* ---------------------------------------------------------------- commands */

typedef struct json_object *(*cmd_fn)(struct ctlsrv *s, struct conn *c, int64_t id,
				       struct json_object *req);

/* cmd_status - daemon overview */
static struct json_object *cmd_status(struct ctlsrv *s, struct conn *c, int64_t id,
				      struct json_object *req)
{
	struct cd *d = s->d;
	struct json_object *o = json_object_new_object();
	struct json_object *ifs = json_object_new_array();
	time_t now = time(NULL);
	uint64_t total = 0;
	int bad = 0;
	struct vt_image_stats ist;

	(void)c;
	(void)req;
	for (int i = 0; i < d->cfg.nifaces; i++)
		json_object_array_add(ifs, json_object_new_string(d->cfg.ifaces[i]));
	for (int i = 0; i < d->nzones; i++) {
		total += d->zones[i]->n;
		if (d->zones[i]->state != ZS_OK)
			bad++;
	}
	vt_image_stats(vt_db_image(d->db), &ist);
	json_object_object_add(o, "version", json_object_new_string(MOAT_VERSION));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "uptime", json_object_new_int64(now - d->started));
	json_object_object_add(o, "config", json_object_new_string(d->cfg.path));
	json_object_object_add(o, "fastpath",
			       json_object_new_string(d->detached ? "detached" :
						      (d->fp.name ? d->fp.name : "none")));
	json_object_object_add(o, "interfaces", ifs);
	/* null without interfaces: nothing is pinned anywhere */
	json_object_object_add(o, "pin_dir", d->cfg.pin_dir[0] ?
			       json_object_new_string(d->cfg.pin_dir) : NULL);
	json_object_object_add(o, "zones", json_object_new_int(d->nzones));
	json_object_object_add(o, "zones_not_ok", json_object_new_int(bad));
	json_object_object_add(o, "zone_entries", json_object_new_int64((int64_t)total));
	json_object_object_add(o, "operator_entries", json_object_new_int64((int64_t)d->nentries));
	json_object_object_add(o, "table_bytes", json_object_new_int64((int64_t)ist.bytes));
	json_object_object_add(o, "table_groups", json_object_new_int64(ist.groups_used));
	json_object_object_add(o, "table_v6_rules", json_object_new_int64(ist.v6_rules));
	json_object_object_add(o, "publishes", json_object_new_int64((int64_t)d->publishes));
	json_object_object_add(o, "publish_errors", json_object_new_int64((int64_t)d->publish_errors));
	json_object_object_add(o, "last_publish_ms", json_object_new_double(d->last_publish_ms));
	json_object_object_add(o, "fastpath_dirty", json_object_new_boolean(d->fp_dirty));
	json_object_object_add(o, "fastpath_resyncs", json_object_new_int64((int64_t)d->fp_resyncs));
	json_object_object_add(o, "fastpath_resync_errors",
			       json_object_new_int64((int64_t)d->fp_resync_errors));
	json_object_object_add(o, "fastpath_lost", json_object_new_int64((int64_t)d->fp_lost));
	/* off, or on/auto as the program answers; held: suspended for
	 * net.ipv4.tcp_syncookies (fp_cookies_tick) */
	json_object_object_add(o, "syn_cookies",
			       json_object_new_string(!d->fp_cookies ? "off" :
						      d->fp_cookies_held ? "held" :
						      d->cfg.syn_cookies == MOAT_SYN_COOKIES_AUTO ? "auto" : "on"));
	json_object_object_add(o, "syn_cookie_holds",
			       json_object_new_int64((int64_t)d->fp_cookie_holds));
	json_object_object_add(o, "notifies", json_object_new_int64((int64_t)d->notifies));
	json_object_object_add(o, "notify_tcp_open", json_object_new_int64(src_notify_tcp_open()));
	json_object_object_add(o, "notify_tcp_refused",
			       json_object_new_int64((int64_t)d->notify_tcp_refused));
	json_object_object_add(o, "notify_tcp_evicted",
			       json_object_new_int64((int64_t)d->notify_tcp_evicted));
	json_object_object_add(o, "reloads", json_object_new_int64((int64_t)d->reloads));
	json_object_object_add(o, "reload_errors", json_object_new_int64((int64_t)d->reload_errors));
	json_object_object_add(o, "last_reload_error", json_object_new_string(d->last_reload_error));
	json_object_object_add(o, "smtp_connected", json_object_new_boolean(smtp_peer(s) != NULL));
	json_object_object_add(o, "control_clients", json_object_new_int(s->nconns));
	return ctl_reply_ok(id, o);
}

/* cmd_zones - every zone's state */
static struct json_object *cmd_zones(struct ctlsrv *s, struct conn *c, int64_t id,
				     struct json_object *req)
{
	struct json_object *a = json_object_new_array();
	time_t now = time(NULL);

	(void)c;
	(void)req;
	for (int i = 0; i < s->d->nzones; i++)
		json_object_array_add(a, zm_zone_json(s->d, s->d->zones[i], now));
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "zones", a);
	return ctl_reply_ok(id, o);
}

/* cmd_zone_refresh - start a refresh of one zone now */
static struct json_object *cmd_zone_refresh(struct ctlsrv *s, struct conn *c, int64_t id,
					    struct json_object *req)
{
	const char *name = ctl_get_str(req, "zone");
	int full = 0;

	(void)c;
	ctl_get_bool(req, "full", &full);
	if (!name)
		return ctl_reply_err(id, CTL_E_ARG, "zone refresh: missing \"zone\"");
	if (zm_refresh(s->d, name, full) < 0)
		return ctl_reply_err(id, CTL_E_NOTFOUND, "no zone %.200s", name);
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "zone", json_object_new_string(name));
	json_object_object_add(o, "scheduled", json_object_new_boolean(1));
	json_object_object_add(o, "full", json_object_new_boolean(full));
	return ctl_reply_ok(id, o);
}

static int explain_json(struct ctlsrv *s, const struct moat_prefix *p, struct json_object *o);

/* live_done - the live zones answered (or timed out): install the
 * listed answers with their TTL (zm_live_answer: table and fast path),
 * then complete the reply with the verdict that now includes them */
static void live_done(void *arg, const struct moat_prefix *addr, const struct moat_lvec *l,
		      unsigned nfailed)
{
	struct lpend *p = arg;
	struct ctlsrv *s = p->s;
	struct json_object *a = json_object_new_array();
	char code[INET_ADDRSTRLEN];

	for (int i = 0; i < s->d->nzones; i++) {
		const struct cd_zone *z = s->d->zones[i];

		if (z->cfg.type != CFG_SRC_LIVE)
			continue;
		for (size_t k = 0; k < l->n; k++) {
			int w;
			uint32_t cn = htonl(l->v[k].code);

			if (l->v[k].source != z->id)
				continue;
			int listed = cfg_code_weight(&z->cfg, l->v[k].code, &w) == 0;
			struct json_object *j = json_object_new_object();

			inet_ntop(AF_INET, &cn, code, sizeof(code));
			json_object_object_add(j, "zone", json_object_new_string(z->cfg.name));
			json_object_object_add(j, "code", json_object_new_string(code));
			json_object_object_add(j, "ttl", json_object_new_int64(l->v[k].ttl));
			json_object_object_add(j, "weight", json_object_new_int(listed ? w : 0));
			json_object_object_add(j, "ignored", json_object_new_boolean(!listed));
			json_object_array_add(a, j);
		}
	}
	json_object_object_add(p->res, "live", a);
	json_object_object_add(p->res, "live_failed", json_object_new_int((int)nfailed));
	zm_live_answer(s->d, addr, l, nfailed);
	explain_json(s, addr, p->res);
	/* the table holds the live answers now: "with live" is the verdict
	 * (kept as fields for moat-smtpd and older clients) */
	int64_t score = 0;
	const char *act = ctl_get_str(p->res, "action");

	ctl_get_int(p->res, "score", &score);
	json_object_object_add(p->res, "score_with_live", json_object_new_int64(score));
	json_object_object_add(p->res, "action_with_live", json_object_new_string(act ? act : "pass"));
	for (struct lpend **pp = &s->lpends; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	if (p->client) {
		struct json_object *r = ctl_reply_ok(p->id, p->res);

		conn_queue(s, p->client, r);
		json_object_put(r);
	} else {
		json_object_put(p->res);
	}
	free(p);
}

/* explain_json - the table's verdict for p into o: action, score, every
 * contributing source and code, and what the fast path's maps hold.
 * 0, or -1 when the table cannot explain. */
static int explain_json(struct ctlsrv *s, const struct moat_prefix *p, struct json_object *o)
{
	struct vt_explain *ex = calloc(1, sizeof(*ex));
	char pb[64], code[INET_ADDRSTRLEN];
	uint32_t fa;

	if (!ex || vt_db_explain(s->d->db, p, ex) < 0) {
		free(ex);
		return -1;
	}
	struct json_object *items = json_object_new_array();

	json_object_object_add(o, "action", json_object_new_string(vt_action_name(ex->action)));
	json_object_object_add(o, "live_action", json_object_new_string(vt_action_name(ex->live_action)));
	/* read from the maps themselves: what the next packet meets */
	if (fp_lookup(s->d, p, &fa) == 0)
		json_object_object_add(o, "fastpath_action", json_object_new_string(vt_action_name(fa)));
	json_object_object_add(o, "score", json_object_new_int64(ex->score));
	/* one meaning per field (docs/control-protocol.md "lookup"): code is
	 * a DNSBL answer or null, action an entry's own action or null,
	 * weight what the item adds to score or null */
	for (uint32_t i = 0; i < ex->n; i++) {
		struct vt_explain_item *it = &ex->items[i];
		struct json_object *j = json_object_new_object();
		uint32_t cn = htonl(it->code);
		int is_entry = it->source == CD_SRC_OPERATOR || it->source == CD_SRC_SMTP;
		ssize_t ei = is_entry ? zm_entries_find(s->d, &it->pfx, it->source) : -1;
		const struct cd_entry *e = ei >= 0 ? &s->d->entries[ei] : NULL;

		inet_ntop(AF_INET, &cn, code, sizeof(code));
		json_object_object_add(j, "source", json_object_new_string(zm_source_name(s->d, it->source)));
		json_object_object_add(j, "kind", json_object_new_string(
			it->source == CD_SRC_OPERATOR ? "operator" : it->source == CD_SRC_SMTP ? "smtp" : "zone"));
		json_object_object_add(j, "prefix", json_object_new_string(moat_prefix_str(&it->pfx, pb, sizeof(pb))));
		json_object_object_add(j, "exclude", json_object_new_boolean(it->exclude));
		json_object_object_add(j, "code", is_entry || it->exclude ? NULL : json_object_new_string(code));
		json_object_object_add(j, "action", is_entry && !it->exclude ?
				       json_object_new_string(vt_action_name(it->code)) : NULL);
		json_object_object_add(j, "weight", is_entry || it->exclude ? NULL :
				       json_object_new_int(it->weight));
		json_object_object_add(j, "reason", e && e->reason[0] ? json_object_new_string(e->reason) : NULL);
		json_object_object_add(j, "expires_in", e && e->expires ?
				       json_object_new_int64((int64_t)(e->expires - time(NULL))) : NULL);
		json_object_array_add(items, j);
	}
	json_object_object_add(o, "sources", items);
	json_object_object_add(o, "truncated", json_object_new_boolean(ex->truncated));
	free(ex);
	return 0;
}

/* cmd_lookup - action and score of an address, every contributing source;
 * with live zones, answered once they did (live_done) */
static struct json_object *cmd_lookup(struct ctlsrv *s, struct conn *c, int64_t id,
				      struct json_object *req)
{
	const char *a = ctl_get_str(req, "addr");
	struct moat_prefix p;

	if (moat_prefix_parse(a, &p) != 0 ||
	    p.plen != (p.family == MOAT_AF_INET ? 32 : 128))
		return ctl_reply_err(id, CTL_E_ARG, "lookup: \"addr\" must be one IPv4 or IPv6 address");
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "addr", json_object_new_string(a));
	if (explain_json(s, &p, o) < 0) {
		json_object_put(o);
		return ctl_reply_err(id, CTL_E_FAILED, "lookup failed");
	}
	int want_live = 1;

	ctl_get_bool(req, "live", &want_live);
	if (livelk_active() && want_live) {
		struct lpend *lp = calloc(1, sizeof(*lp));

		if (lp) {
			*lp = (struct lpend){ s, c, id, o, s->lpends };
			s->lpends = lp;
			if (livelk_lookup(&p, live_done, lp) == 0)
				return NULL; /* answered by live_done */
			s->lpends = lp->next;
			free(lp);
		}
	}
	return ctl_reply_ok(id, o);
}

/* parse_entry - prefix, action, ttl, reason of an add request (or one
 * entry of a batch) into *e; NULL, or the error reply's text in err */
static const char *parse_entry(struct ctlsrv *s, struct json_object *req, uint16_t source,
			       struct cd_entry *e, int64_t *ttlp, char *err, size_t errsz)
{
	const char *ps = ctl_get_str(req, "prefix");
	const char *as = ctl_get_str(req, "action");
	const char *why = ctl_get_str(req, "reason");
	int64_t ttl = source == CD_SRC_SMTP ? s->d->cfg.report_ttl : 0;
	int r;

	*e = (struct cd_entry){ .source = source };
	if ((r = moat_prefix_parse(ps, &e->pfx)) != 0) {
		snprintf(err, errsz, "\"prefix\" must be ADDR or ADDR/LEN%s",
			 r == -EDOM ? " with no host bits set" : "");
		return err;
	}
	if (vt_action_parse(as, &e->action) < 0 || e->action == MOAT_ACT_PASS)
		return "\"action\" must be drop, tarpit or allow";
	r = ctl_get_int(req, "ttl", &ttl);
	if (r == -EINVAL || ttl < 0 || ttl > 10LL * 365 * 86400)
		return "\"ttl\" must be seconds, 0..315360000";
	if (s->d->cfg.operator_max_ttl && (ttl == 0 || ttl > s->d->cfg.operator_max_ttl))
		ttl = s->d->cfg.operator_max_ttl;
	e->added = time(NULL);
	e->expires = ttl ? e->added + ttl : 0;
	if (why)
		snprintf(e->reason, sizeof(e->reason), "%s", why);
	*ttlp = ttl;
	return NULL;
}

/* share_refused - why e cannot be shared (--share), or NULL: a fleet zone
 * is a DNSBL zone, which lists single addresses (a prefix only as all its
 * addresses, or as a wildcard no consumer could tell from a listing of
 * the wider octet or nibble boundary), docs/fleet.md */
static const char *share_refused(const struct cd_entry *e)
{
	if (e->pfx.plen == (e->pfx.family == MOAT_AF_INET ? 32 : 128))
		return NULL;
	return "only single addresses are shared with the fleet (a DNSBL zone lists "
	       "addresses, not prefixes): add the prefix without --share, or share its "
	       "addresses";
}

/* add_entry - shared by add and smtp.report */
static struct json_object *add_entry(struct ctlsrv *s, int64_t id, struct json_object *req,
				     uint16_t source)
{
	struct cd_entry e;
	int64_t ttl;
	char err[256], pb[64];
	const char *bad = parse_entry(s, req, source, &e, &ttl, err, sizeof(err));
	int share = -1, kind = fleet_kind_parse(ctl_get_str(req, "kind"));

	if (bad)
		return ctl_reply_err(id, CTL_E_ARG, "%s", bad);
	if (ctl_get_bool(req, "share", &share) == -EINVAL || kind < 0)
		return ctl_reply_err(id, CTL_E_ARG, "\"share\" must be a boolean, \"kind\" dnsbl, "
				     "pregreet, protocol or content");
	if (share == 1 && (bad = share_refused(&e)))
		return ctl_reply_err(id, CTL_E_ARG, "%s (nothing added)", bad);
	if (zm_entry_add(s->d, &e, err, sizeof(err)) < 0)
		return ctl_reply_err(id, CTL_E_FAILED, "%s", err);
	fleet_entry_add(s->d, &e, share, kind);
	char esc[160];

	log_escape(esc, sizeof(esc), e.reason, strlen(e.reason));
	log_info("event=entry-add source=%s prefix=%s action=%s ttl=%lld reason=\"%s\"",
		 zm_source_name(s->d, source), moat_prefix_str(&e.pfx, pb, sizeof(pb)),
		 vt_action_name(e.action), (long long)ttl, esc);
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "prefix", json_object_new_string(pb));
	json_object_object_add(o, "action", json_object_new_string(vt_action_name(e.action)));
	json_object_object_add(o, "ttl", json_object_new_int64(ttl));
	return ctl_reply_ok(id, o);
}

/*
 * cmd_batch - moatctl add/del with many entries: {"op":"add"|"del",
 * "source":"operator"|"smtp" (del only), "entries":[{"prefix", "action",
 * "ttl", "reason", "line"}...], "commit":true|false}.  Entries are staged
 * on the connection (one request per chunk: a request line is at most
 * CTL_MAX_LINE); the one with "commit" applies them all as one, or none
 * (zm_batch_commit).  A bad entry refuses the whole batch, naming its
 * "line"; so does closing the connection before the commit.
 */
static struct json_object *cmd_batch(struct ctlsrv *s, struct conn *c, int64_t id,
				     struct json_object *req)
{
	const char *op = ctl_get_str(req, "op"), *src = ctl_get_str(req, "source");
	int del = op && strcmp(op, "del") == 0, commit = 0;
	uint16_t source = src && strcmp(src, "smtp") == 0 ? CD_SRC_SMTP : CD_SRC_OPERATOR;
	struct json_object *a = NULL;
	char err[256], wb[CD_BATCH_LINE + 8];
	int share = -1;

	if (!op || (strcmp(op, "add") && !del))
		return ctl_reply_err(id, CTL_E_ARG, "\"op\" must be add or del");
	if (!del && source != CD_SRC_OPERATOR)
		return ctl_reply_err(id, CTL_E_ARG, "a batch adds operator entries only");
	json_object_object_get_ex(req, "entries", &a);
	if (a && !json_object_is_type(a, json_type_array))
		return ctl_reply_err(id, CTL_E_ARG, "\"entries\" must be an array");
	ctl_get_bool(req, "commit", &commit);
	ctl_get_bool(req, "share", &share);
	if (c->batch && (zm_batch_op(c->batch) != del || zm_batch_source(c->batch) != source)) {
		zm_batch_free(c->batch);
		c->batch = NULL;
		return ctl_reply_err(id, CTL_E_ARG, "a batch is either adds or deletes of one source "
				     "(the batch staged so far is dropped)");
	}
	if (!c->batch && !(c->batch = zm_batch_new(del, source)))
		return ctl_reply_err(id, CTL_E_FAILED, "out of memory");
	for (size_t i = 0; a && i < json_object_array_length(a); i++) {
		struct json_object *j = json_object_array_get_idx(a, i);
		const char *line = ctl_get_str(j, "line");
		const char *bad = NULL;
		struct cd_entry e = { .source = source };
		int64_t ttl;

		if (!json_object_is_type(j, json_type_object))
			bad = "not an object";
		else if (del && moat_prefix_parse(ctl_get_str(j, "prefix"), &e.pfx) != 0)
			bad = "\"prefix\" must be ADDR or ADDR/LEN with no host bits set";
		else if (!del)
			bad = parse_entry(s, j, source, &e, &ttl, err, sizeof(err));
		if (!bad && !del && share == 1)
			bad = share_refused(&e);
		int r = bad ? 0 : zm_batch_stage(c->batch, &e, line);

		if (bad || r < 0) {
			size_t n = zm_batch_size(c->batch);

			if (line)
				snprintf(wb, sizeof(wb), "%s", line);
			else
				snprintf(wb, sizeof(wb), "entry %zu", n + 1);
			zm_batch_free(c->batch);
			c->batch = NULL;
			if (r == -E2BIG)
				return ctl_reply_err(id, CTL_E_ARG, "%s: a batch holds at most %u entries "
						     "(nothing of it applied)", wb, CD_BATCH_MAX);
			if (r < 0)
				return ctl_reply_err(id, CTL_E_FAILED, "out of memory");
			return ctl_reply_err(id, CTL_E_ARG, "%s: %s (nothing of the batch applied)", wb,
					     bad);
		}
	}
	struct json_object *o = json_object_new_object();

	if (!commit) {
		json_object_object_add(o, "staged", json_object_new_int64((int64_t)zm_batch_size(c->batch)));
		return ctl_reply_ok(id, o);
	}
	struct zm_batch_result res;
	const char *bad = NULL;
	size_t nbad = 0;

	share = -1;
	if (ctl_get_bool(req, "share", &share) == -EINVAL)
		bad = "\"share\" must be a boolean";
	/* entries staged by requests that did not say share */
	for (size_t i = 0; !bad && !del && share == 1 && i < zm_batch_size(c->batch); i++)
		if ((bad = share_refused(zm_batch_entry(c->batch, i))))
			nbad = i + 1;
	if (bad) {
		json_object_put(o);
		zm_batch_free(c->batch);
		c->batch = NULL;
		if (nbad)
			return ctl_reply_err(id, CTL_E_ARG, "entry %zu: %s (nothing of the batch "
					     "applied)", nbad, bad);
		return ctl_reply_err(id, CTL_E_ARG, "%s (nothing of the batch applied)", bad);
	}
	int r = zm_batch_commit(s->d, c->batch, &res, err, sizeof(err));

	/* what the fleet publishes follows what was applied, entry by entry */
	for (size_t i = 0; r >= 0 && i < zm_batch_size(c->batch); i++) {
		const struct cd_entry *e = zm_batch_entry(c->batch, i);

		if (del)
			fleet_entry_del(s->d, &e->pfx, source);
		else
			fleet_entry_add(s->d, e, share, fleet_kind_parse(NULL));
	}
	zm_batch_free(c->batch);
	c->batch = NULL;
	if (r < 0) {
		json_object_put(o);
		return ctl_reply_err(id, r == -ENOENT ? CTL_E_NOTFOUND : r == -EEXIST ? CTL_E_ARG :
				     CTL_E_FAILED, "%s (nothing of the batch applied)", err);
	}
	json_object_object_add(o, "op", json_object_new_string(del ? "del" : "add"));
	json_object_object_add(o, "entries", json_object_new_int64((int64_t)res.staged));
	json_object_object_add(o, "added", json_object_new_int64((int64_t)res.added));
	json_object_object_add(o, "replaced", json_object_new_int64((int64_t)res.replaced));
	json_object_object_add(o, "removed", json_object_new_int64((int64_t)res.removed));
	json_object_object_add(o, "ms", json_object_new_double(res.ms));
	return ctl_reply_ok(id, o);
}

/* cmd_add - moatctl add PREFIX --action A [--ttl S] */
static struct json_object *cmd_add(struct ctlsrv *s, struct conn *c, int64_t id,
				   struct json_object *req)
{
	(void)c;
	return add_entry(s, id, req, CD_SRC_OPERATOR);
}

/* cmd_del - moatctl del PREFIX */
static struct json_object *cmd_del(struct ctlsrv *s, struct conn *c, int64_t id,
				   struct json_object *req)
{
	const char *ps = ctl_get_str(req, "prefix");
	struct moat_prefix p;
	char err[256], pb[64];
	const char *src = ctl_get_str(req, "source");
	uint16_t source = src && strcmp(src, "smtp") == 0 ? CD_SRC_SMTP : CD_SRC_OPERATOR;

	(void)c;
	if (moat_prefix_parse(ps, &p) != 0)
		return ctl_reply_err(id, CTL_E_ARG, "\"prefix\" must be ADDR or ADDR/LEN");
	int r = zm_entry_del(s->d, &p, source, err, sizeof(err));

	if (r == -ENOENT)
		return ctl_reply_err(id, CTL_E_NOTFOUND, "no %s entry for %s", zm_source_name(s->d, source),
				     moat_prefix_str(&p, pb, sizeof(pb)));
	if (r < 0)
		return ctl_reply_err(id, CTL_E_FAILED, "%s", err);
	fleet_entry_del(s->d, &p, source);
	log_info("event=entry-del source=%s prefix=%s", zm_source_name(s->d, source),
		 moat_prefix_str(&p, pb, sizeof(pb)));
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "prefix", json_object_new_string(pb));
	return ctl_reply_ok(id, o);
}

/* cmd_fleet - moatctl fleet: what this appliance publishes */
static struct json_object *cmd_fleet(struct ctlsrv *s, struct conn *c, int64_t id,
				     struct json_object *req)
{
	int list = 0;
	struct json_object *o;

	(void)c;
	ctl_get_bool(req, "entries", &list);
	if (!(o = fleet_json(s->d, list)))
		return ctl_reply_err(id, CTL_E_UNAVAIL, "fleet publishing is off ([fleet] id)");
	return ctl_reply_ok(id, o);
}

/* cmd_list - operator and moat-smtpd entries */
static struct json_object *cmd_list(struct ctlsrv *s, struct conn *c, int64_t id,
				    struct json_object *req)
{
	struct json_object *a = json_object_new_array();
	time_t now = time(NULL);
	char pb[64];

	(void)c;
	(void)req;
	for (size_t i = 0; i < s->d->nentries; i++) {
		const struct cd_entry *e = &s->d->entries[i];
		struct json_object *j = json_object_new_object();

		json_object_object_add(j, "prefix", json_object_new_string(moat_prefix_str(&e->pfx, pb, sizeof(pb))));
		json_object_object_add(j, "action", json_object_new_string(vt_action_name(e->action)));
		json_object_object_add(j, "source", json_object_new_string(zm_source_name(s->d, e->source)));
		json_object_object_add(j, "added", json_object_new_int64(e->added));
		json_object_object_add(j, "ttl_left", json_object_new_int64(e->expires ? e->expires - now : 0));
		json_object_object_add(j, "reason", json_object_new_string(e->reason));
		json_object_array_add(a, j);
	}
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "entries", a);
	return ctl_reply_ok(id, o);
}

/* cmd_stats - fast-path counters and per-second rates */
static struct json_object *cmd_stats(struct ctlsrv *s, struct conn *c, int64_t id,
				     struct json_object *req)
{
	static const char *const names[] = MOAT_STAT_NAMES;
	struct cd *d = s->d;
	uint64_t now_c[MOAT_STAT__MAX];
	struct json_object *o, *cnt, *rate;

	(void)c;
	(void)req;
	if (cd_read_stats(d, now_c) < 0)
		return ctl_reply_err(id, CTL_E_UNAVAIL, "no fast path to read counters from");
	o = json_object_new_object();
	cnt = json_object_new_object();
	rate = json_object_new_object();
	double dt = 0;

	if (d->prev.valid && d->cur.valid)
		dt = (double)(d->cur.at_ns - d->prev.at_ns) / 1e9;
	for (int i = 0; i < MOAT_STAT__MAX; i++) {
		json_object_object_add(cnt, names[i], json_object_new_int64((int64_t)now_c[i]));
		double r = dt > 0 ? (double)(d->cur.c[i] - d->prev.c[i]) / dt : 0;

		json_object_object_add(rate, names[i], json_object_new_double(r));
	}
	json_object_object_add(o, "fastpath", json_object_new_string(d->fp.name ? d->fp.name : "none"));
	json_object_object_add(o, "counters", cnt);
	json_object_object_add(o, "rates", rate);
	json_object_object_add(o, "rate_interval", json_object_new_double(dt));
	return ctl_reply_ok(id, o);
}

/* cmd_watch - subscribe this connection to the sampled verdict stream */
static struct json_object *cmd_watch(struct ctlsrv *s, struct conn *c, int64_t id,
				     struct json_object *req)
{
	(void)req;
	c->watching = 1;
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "watching", json_object_new_boolean(1));
	json_object_object_add(o, "stream", json_object_new_boolean(fp_has_events(s->d)));
	return ctl_reply_ok(id, o);
}

/* cmd_reload - re-read the configuration (keeps the old one on error) */
static struct json_object *cmd_reload(struct ctlsrv *s, struct conn *c, int64_t id,
				      struct json_object *req)
{
	char err[CFG_ERRLEN];

	(void)c;
	(void)req;
	if (cd_reload(s->d, err, sizeof(err)) < 0)
		return ctl_reply_err(id, CTL_E_FAILED, "%s (old configuration kept)", err);
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "reloaded", json_object_new_boolean(1));
	json_object_object_add(o, "zones", json_object_new_int(s->d->nzones));
	return ctl_reply_ok(id, o);
}

/* cmd_detach - stop filtering: remove the XDP program and pins; exit */
static struct json_object *cmd_detach(struct ctlsrv *s, struct conn *c, int64_t id,
				      struct json_object *req)
{
	char err[256];

	(void)c;
	(void)req;
	if (cd_detach(s->d, err, sizeof(err)) < 0)
		return ctl_reply_err(id, CTL_E_FAILED, "%s", err);
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "detached", json_object_new_boolean(1));
	json_object_object_add(o, "exiting", json_object_new_boolean(1));
	return ctl_reply_ok(id, o);
}

/* cmd_smtp_hello - a moat-smtpd registers this connection */
static struct json_object *cmd_smtp_hello(struct ctlsrv *s, struct conn *c, int64_t id,
					  struct json_object *req)
{
	const char *name = ctl_get_str(req, "name");
	char esc[64];

	c->smtp = 1;
	snprintf(c->smtp_name, sizeof(c->smtp_name), "%s",
		 log_escape(esc, sizeof(esc), name ? name : "moat-smtpd", strlen(name ? name : "moat-smtpd")));
	json_object_put(c->smtp_hello);
	c->smtp_hello = json_object_get(req);
	log_info("event=smtp-hello name=%s", c->smtp_name);
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "version", json_object_new_string(MOAT_VERSION));
	json_object_object_add(o, "proto", json_object_new_int(CTL_PROTO_VERSION));
	json_object_object_add(o, "accept_reports", json_object_new_boolean(s->d->cfg.accept_reports));
	return ctl_reply_ok(id, o);
}

/* cmd_smtp_report - moat-smtpd refused a client: list it */
static struct json_object *cmd_smtp_report(struct ctlsrv *s, struct conn *c, int64_t id,
					   struct json_object *req)
{
	(void)c;
	if (!s->d->cfg.accept_reports)
		return ctl_reply_err(id, CTL_E_UNAVAIL, "reports are disabled ([operator] accept_reports = no)");
	return add_entry(s, id, req, CD_SRC_SMTP);
}

/* relay_to_smtp - send req to moat-smtpd, answer the client later */
static struct json_object *relay_to_smtp(struct ctlsrv *s, struct conn *c, int64_t id,
					 const char *cmd, struct json_object *req)
{
	struct conn *p = smtp_peer(s);

	if (!p)
		return ctl_reply_err(id, CTL_E_UNAVAIL, "moat-smtpd is not connected");
	if (p->notify_only)
		return ctl_reply_err(id, CTL_E_UNAVAIL, "the connected moat-smtpd only reports "
				     "(one-way); %s needs a moat-smtpd that answers requests", cmd);
	struct relay *r = calloc(1, sizeof(*r));

	if (!r)
		return ctl_reply_err(id, CTL_E_FAILED, "out of memory");
	r->id = ++s->next_id;
	r->client_id = id;
	r->client = c;
	r->deadline = time(NULL) + RELAY_TIMEOUT;
	r->next = s->relays;
	s->relays = r;
	struct json_object *fwd = ctl_request_new(r->id, cmd);
	struct json_object *args;

	if (json_object_object_get_ex(req, "args", &args))
		json_object_object_add(fwd, "args", json_object_get(args));
	conn_queue(s, p, fwd);
	json_object_put(fwd);
	return NULL;
}

/* cmd_rules_reload - moatctl rules reload, relayed to moat-smtpd */
static struct json_object *cmd_rules_reload(struct ctlsrv *s, struct conn *c, int64_t id,
					    struct json_object *req)
{
	return relay_to_smtp(s, c, id, "rules.reload", req);
}

/* cmd_smtp_stats - moatctl smtp stats, relayed to moat-smtpd (or, for a
 * moat-smtpd that pushes {"type":"counters"}, its last push) */
static struct json_object *cmd_smtp_stats(struct ctlsrv *s, struct conn *c, int64_t id,
					  struct json_object *req)
{
	struct conn *p = smtp_peer(s);

	if (p && p->notify_only) {
		if (!p->smtp_counters)
			return ctl_reply_err(id, CTL_E_UNAVAIL, "moat-smtpd has not sent counters yet");
		return ctl_reply_ok(id, json_object_get(p->smtp_counters));
	}
	return relay_to_smtp(s, c, id, "smtp.stats", req);
}

/* cmd_ping - liveness */
static struct json_object *cmd_ping(struct ctlsrv *s, struct conn *c, int64_t id,
				    struct json_object *req)
{
	(void)s;
	(void)c;
	(void)req;
	return ctl_reply_ok(id, NULL);
}

static const struct {
	const char *name;
	cmd_fn fn;
} cmds[] = {
	{ "status", cmd_status },
	{ "zones", cmd_zones },
	{ "zone.refresh", cmd_zone_refresh },
	{ "lookup", cmd_lookup },
	{ "add", cmd_add },
	{ "del", cmd_del },
	{ "batch", cmd_batch },
	{ "list", cmd_list },
	{ "fleet", cmd_fleet },
	{ "stats", cmd_stats },
	{ "watch", cmd_watch },
	{ "reload", cmd_reload },
	{ "detach", cmd_detach },
	{ "ping", cmd_ping },
	{ "smtp.hello", cmd_smtp_hello },
	{ "smtp.report", cmd_smtp_report },
	{ "smtp.stats", cmd_smtp_stats },
	{ "rules.reload", cmd_rules_reload },
};

/* handle_reply - a reply from moat-smtpd to a relayed request */
static void handle_reply(struct ctlsrv *s, struct conn *c, struct json_object *msg)
{
	int64_t id = ctl_msg_id(msg);
	struct relay **rp;

	(void)c;
	for (rp = &s->relays; *rp; rp = &(*rp)->next) {
		struct relay *r = *rp;

		if (r->id != id)
			continue;
		*rp = r->next;
		json_object_object_add(msg, "id", json_object_new_int64(r->client_id));
		conn_queue(s, r->client, msg);
		free(r);
		return;
	}
}

/* handle_typed - the one-way dialect moat-smtpd's reporter speaks:
 *   {"type":"hello","program":P,"version":V,"pid":N}
 *   {"type":"listed","addr":IP,"zone":Z,"code":C,"ttl":S,...}
 *   {"type":"counters","program":P,"counters":{...}}
 * processed like smtp.hello / smtp.report / a pushed smtp.stats, never
 * answered (the reporter does not read). */
static void handle_typed(struct ctlsrv *s, struct conn *c, struct json_object *msg, const char *type)
{
	c->notify_only = 1;
	if (strcmp(type, "hello") == 0) {
		const char *prog = ctl_get_str(msg, "program");
		char esc[64];

		c->smtp = 1;
		snprintf(c->smtp_name, sizeof(c->smtp_name), "%s",
			 log_escape(esc, sizeof(esc), prog ? prog : "moat-smtpd",
				    strlen(prog ? prog : "moat-smtpd")));
		log_info("event=smtp-hello name=%s dialect=one-way", c->smtp_name);
		return;
	}
	if (strcmp(type, "counters") == 0) {
		struct json_object *cnt;

		if (json_object_object_get_ex(msg, "counters", &cnt) &&
		    json_object_is_type(cnt, json_type_object)) {
			json_object_put(c->smtp_counters);
			c->smtp_counters = json_object_get(cnt);
		}
		return;
	}
	if (strcmp(type, "listed") == 0) {
		const char *addr = ctl_get_str(msg, "addr"), *zone = ctl_get_str(msg, "zone");
		const char *code = ctl_get_str(msg, "code");
		struct json_object *req = json_object_new_object(), *r;
		int64_t ttl = 0;
		char why[160];

		if (!s->d->cfg.accept_reports || !addr) {
			json_object_put(req);
			return;
		}
		snprintf(why, sizeof(why), "listed in %.80s (%.20s) at moat-smtpd",
			 zone ? zone : "?", code ? code : "?");
		json_object_object_add(req, "prefix", json_object_new_string(addr));
		json_object_object_add(req, "action", json_object_new_string("drop"));
		if (ctl_get_int(msg, "ttl", &ttl) == 0 && ttl > 0)
			json_object_object_add(req, "ttl", json_object_new_int64(ttl));
		json_object_object_add(req, "reason", json_object_new_string(why));
		r = add_entry(s, -1, req, CD_SRC_SMTP);
		json_object_put(r);
		json_object_put(req);
		return;
	}
	s->proto_errors++;
}

/* handle_msg - one parsed message from a connection */
static void handle_msg(struct ctlsrv *s, struct conn *c, struct json_object *msg)
{
	const char *type = ctl_get_str(msg, "type");

	if (type && !ctl_get_str(msg, "cmd")) {
		handle_typed(s, c, msg, type);
		return;
	}
	if (ctl_msg_is_reply(msg)) {
		handle_reply(s, c, msg);
		return;
	}
	int64_t id = ctl_msg_id(msg);
	const char *cmd = ctl_get_str(msg, "cmd");
	struct json_object *reply = NULL;

	s->requests++;
	if (!cmd) {
		reply = ctl_reply_err(id, CTL_E_PROTO, "missing \"cmd\"");
	} else {
		size_t i;

		for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
			if (strcmp(cmds[i].name, cmd) == 0)
				break;
		if (i == sizeof(cmds) / sizeof(cmds[0])) {
			char esc[80];

			reply = ctl_reply_err(id, CTL_E_UNKNOWN, "unknown command \"%s\"",
					      log_escape(esc, sizeof(esc), cmd, strlen(cmd)));
		} else {
			reply = cmds[i].fn(s, c, id, msg);
		}
	}
	if (reply) {
		struct json_object *ok;

		if (json_object_object_get_ex(reply, "ok", &ok) && !json_object_get_boolean(ok))
			s->errors++;
		conn_queue(s, c, reply);
		json_object_put(reply);
	}
}

/* conn_read - input ready */
static void conn_read(struct ctlsrv *s, struct conn *c)
{
	ssize_t n = ctl_buf_fill(&c->in, c->tag.fd);

	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		c->closing = 1;
		return;
	}
	for (;;) {
		struct json_object *msg;
		int r = ctl_buf_next(&c->in, &msg);

		if (r == 0)
			break;
		if (r < 0) {
			struct json_object *e = ctl_reply_err(-1, CTL_E_PROTO, "%s",
				r == -EMSGSIZE ? "message too long" : "not a JSON object on one line");

			s->proto_errors++;
			conn_queue(s, c, e);
			json_object_put(e);
			continue;
		}
		handle_msg(s, c, msg);
		json_object_put(msg);
		if (s->d->quit)
			break;
	}
}

/* conn_write - flush queued output */
static void conn_write(struct ctlsrv *s, struct conn *c)
{
	(void)s;
	while (c->outoff < c->outlen) {
		ssize_t w = send(c->tag.fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w < 0) {
			c->closing = 1;
			return;
		}
		c->outoff += (size_t)w;
	}
	c->outoff = c->outlen = 0;
	cd_watch_mod(&c->tag, EPOLLIN);
}

/* accept_conn - a new client */
static void accept_conn(struct ctlsrv *s)
{
	int fd = accept4(s->ltag.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (s->nconns >= MAX_CONNS) {
		close(fd);
		log_warn("event=control-refused reason=\"more than %d connections\"", MAX_CONNS);
		return;
	}
	struct conn *c = calloc(1, sizeof(*c));

	if (!c) {
		close(fd);
		return;
	}
	c->tag = (struct cd_tag){ TAG_CTL, s, fd };
	ctl_buf_init(&c->in, CTL_MAX_LINE);
	if (cd_watch(&c->tag, EPOLLIN) < 0) {
		close(fd);
		free(c);
		return;
	}
	c->next = s->conns;
	s->conns = c;
	s->nconns++;
}

/* ctlsrv_io - epoll event for the listener or a connection */
void ctlsrv_io(struct ctlsrv *s, void *tagp, uint32_t events)
{
	struct cd_tag *tag = tagp;

	if (tag == &s->ltag) {
		accept_conn(s);
		return;
	}
	struct conn *c = (struct conn *)tag; /* tag is the first member */

	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_read(s, c);
	if (!c->closing && (events & EPOLLOUT))
		conn_write(s, c);
	if (!c->closing && c->outlen)
		conn_write(s, c);
	if (c->closing)
		conn_free(s, c);
}

/* ctlsrv_tick - fail relays whose moat-smtpd did not answer in time */
void ctlsrv_tick(struct ctlsrv *s)
{
	time_t now = time(NULL);

	for (struct relay **rp = &s->relays; *rp;) {
		struct relay *r = *rp;

		if (r->deadline > now) {
			rp = &r->next;
			continue;
		}
		*rp = r->next;
		struct json_object *e = ctl_reply_err(r->client_id, CTL_E_UNAVAIL,
						      "moat-smtpd did not answer in %d s", RELAY_TIMEOUT);

		conn_queue(s, r->client, e);
		json_object_put(e);
		free(r);
	}
}

/* ctlsrv_sample - one verdict sample to every watcher */
void ctlsrv_sample(struct ctlsrv *s, struct json_object *ev)
{
	for (struct conn *c = s->conns; c; c = c->next) {
		if (!c->watching)
			continue;
		if (c->outlen > OUT_MAX_WATCH) {
			c->samples_dropped++;
			continue;
		}
		conn_queue(s, c, ev);
	}
}

/* ctlsrv_watchers - how many connections watch */
int ctlsrv_watchers(struct ctlsrv *s)
{
	int n = 0;

	for (struct conn *c = s->conns; c; c = c->next)
		n += c->watching;
	return n;
}

/* set_owner - chown the socket to "user[:group]" */
static int set_owner(const char *path, const char *spec, char *err, size_t errsz)
{
	char u[64], *g;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;

	snprintf(u, sizeof(u), "%s", spec);
	g = strchr(u, ':');
	if (g)
		*g++ = 0;
	if (*u) {
		struct passwd *pw = getpwnam(u);

		if (!pw) {
			snprintf(err, errsz, "socket_owner: no user '%s'", u);
			return -1;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	if (g && *g) {
		struct group *gr = getgrnam(g);

		if (!gr) {
			snprintf(err, errsz, "socket_owner: no group '%s'", g);
			return -1;
		}
		gid = gr->gr_gid;
	}
	if (chown(path, uid, gid) < 0) {
		snprintf(err, errsz, "chown %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* ctlsrv_open - bind and listen on the configured socket */
struct ctlsrv *ctlsrv_open(struct cd *d, char *err, size_t errsz)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = d->cfg.socket_path;
	struct ctlsrv *s = calloc(1, sizeof(*s));
	int fd = -1;

	if (!s) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	s->d = d;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errsz, "socket path too long: %s", path);
		goto fail;
	}
	strcpy(sa.sun_path, path);
	/* a socket nobody answers on is a leftover of a killed daemon */
	int probe = ctl_connect(path);

	if (probe >= 0) {
		close(probe);
		snprintf(err, errsz, "%s: another moat-controld is running", path);
		goto fail;
	}
	unlink(path);
	char dir[sizeof(sa.sun_path)];

	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');

	if (slash && slash != dir) {
		*slash = 0;
		mkdir(dir, 0755);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* bind() creates the socket file with 0777 & ~umask: with umask 0177
	 * it is born 0600 (owner only), never world-accessible even for the
	 * instant before the chmod/chown below widen it to socket_mode */
	mode_t um = umask(0177);
	int br = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int berr = errno;

	umask(um);
	errno = berr;
	if (fd < 0 || br < 0 || listen(fd, 64) < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		goto fail;
	}
	/* owner first, then the mode: the group bits open only once the
	 * group is the configured one */
	if (d->cfg.socket_owner[0] && set_owner(path, d->cfg.socket_owner, err, errsz) < 0)
		goto fail;
	if (chmod(path, d->cfg.socket_mode) < 0) {
		snprintf(err, errsz, "chmod %s: %s", path, strerror(errno));
		goto fail;
	}
	s->ltag = (struct cd_tag){ TAG_CTL, s, fd };
	if (cd_watch(&s->ltag, EPOLLIN) < 0) {
		snprintf(err, errsz, "epoll: %s", strerror(errno));
		goto fail;
	}
	return s;
fail:
	if (fd >= 0)
		close(fd);
	free(s);
	return NULL;
}

/* ctlsrv_close - close every connection and the socket */
void ctlsrv_close(struct ctlsrv *s)
{
	if (!s)
		return;
	/* flush what is queued (detach's reply) before closing */
	for (struct conn *c = s->conns; c; c = c->next) {
		int fl = 0;

		(void)fl;
		while (c->outoff < c->outlen) {
			ssize_t w = send(c->tag.fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);

			if (w <= 0)
				break;
			c->outoff += (size_t)w;
		}
	}
	while (s->conns)
		conn_free(s, s->conns);
	while (s->relays) {
		struct relay *r = s->relays;

		s->relays = r->next;
		free(r);
	}
	cd_unwatch(&s->ltag);
	close(s->ltag.fd);
	unlink(s->d->cfg.socket_path);
	free(s);
}
