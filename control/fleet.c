/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fleet.c - publish this appliance's shared entries to its own fleet zone
 * (fleet.h, docs/fleet.md).
 *
 * Every shared address is a record here (struct rec, hashed by address):
 * its return code, its absolute expiry, and whether the zone has it as we
 * hold it.  A change queues the address (once: a queued address is sent
 * as it is when its turn comes); the queue is bounded, and when full its
 * oldest address is dropped and counted (the record is sent again at its
 * next refresh).  One UPDATE is in flight at a time with as many queued
 * addresses as fit one message ([fleet] batch); while it flies new changes
 * queue up, so a storm becomes few large UPDATEs.  No answer: the batch
 * goes back to the queue's head and the next try waits 1, 2, 4 .. 60 s.
 * An error RCODE (REFUSED, NOTAUTH, BADSIG...): logged with its name,
 * counted, and the next try waits 30 s doubling to 10 min: never a tight
 * loop, and fixing the key with a reload lets the queue drain.
 *
 * Records carry exp=; the tick deletes expired ones, and re-publishes
 * entries without an expiry of their own before their [fleet] lifetime
 * runs out.  The state file (STATE_DIR/fleet.state) remembers what was
 * published, so a restart deletes what expired or was removed meanwhile.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <json-c/json.h>

#include "clock.h"
#include "controld.h"
#include "fleet.h"
#include "log.h"
#include "outfile.h"
#include "prefix.h"
#include "promhttp.h"
#include "update.h"
#include "fleet_rec.h"

#define NBUCKET 65536
#define BACKOFF_MAX 60
#define REFUSED_BACKOFF 30
#define REFUSED_BACKOFF_MAX 600
#define CAPPED_MAX 32

enum rstate {
	R_SET = 0,  /* wanted in the zone */
	R_DEL,      /* to be deleted from the zone (freed once it is) */
	R_CAPPED,   /* kept out: its /24 (/64) has per24_max shared entries */
};

struct rec {
	struct moat_prefix addr;
	uint32_t code;             /* enum moat_fleet_code */
	time_t exp;                /* absolute, in the TXT */
	time_t refresh_at;         /* re-publish with a later exp (0: never) */
	uint16_t source;           /* CD_SRC_OPERATOR / CD_SRC_SMTP */
	uint8_t state;             /* enum rstate */
	uint8_t queued;            /* in the queue or in flight */
	uint8_t synced;            /* the zone holds what gen says */
	uint8_t counted;           /* in its net's count (R_SET) */
	uint32_t gen;              /* bumped by every change */
	struct rec *next;          /* hash chain */
};

/* shared records per /24 (/64), for the cap */
#define NNET 4096
struct netc {
	struct moat_prefix net;
	uint32_t n;
	struct netc *next;
};

struct inflight {
	struct moat_prefix addr;
	uint32_t gen;
	char txt[MOAT_FLEET_TXT_MAX];
};

struct fleet {
	struct cd_tag tag;
	int watched;
	struct moat_upd *u;
	struct rec *bucket[NBUCKET];
	size_t nrec, npublished;
	struct netc *nets[NNET];
	/* the queue: a ring of addresses */
	struct moat_prefix *q;
	size_t qcap, qhead, qn;
	struct inflight *fl;
	struct moat_upd_rr *rr;
	size_t nfl;
	time_t next_try;
	unsigned backoff;
	int dirty;
	time_t saved_at;
	/* counters (kept across a reload: fleet_reload) */
	struct fleet_ctr {
		uint64_t updates_sent, records_sent, bytes_sent, refused, failed, dropped,
			capped, not_shared_allow, expired;
		time_t last_success;
		char last_error[256];
		struct moat_prefix capped_net[CAPPED_MAX];
		size_t ncapped;
	} c;
	double started_ms;
};

static struct fleet *F;

/* fleet_kind_parse - learned kind by name */
int fleet_kind_parse(const char *s)
{
	static const char *const n[] = { "dnsbl", "pregreet", "protocol", "content" };

	if (!s)
		return FLEET_DNSBL;
	for (int i = 0; i < 4; i++)
		if (strcmp(s, n[i]) == 0)
			return i;
	return -1;
}

/* hash - FNV-1a over the address */
static size_t hash(const struct moat_prefix *p)
{
	uint32_t h = 2166136261u;
	size_t n = p->family == MOAT_AF_INET ? 4 : 16;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p->addr[i]) * 16777619u;
	return (h ^ p->family) % NBUCKET;
}

static struct rec *find(const struct moat_prefix *p)
{
	for (struct rec *r = F->bucket[hash(p)]; r; r = r->next)
		if (moat_prefix_cmp(&r->addr, p) == 0)
			return r;
	return NULL;
}

static struct rec *get(const struct moat_prefix *p)
{
	struct rec *r = find(p);
	size_t h;

	if (r)
		return r;
	if (!(r = calloc(1, sizeof(*r))))
		return NULL;
	r->addr = *p;
	h = hash(p);
	r->next = F->bucket[h];
	F->bucket[h] = r;
	F->nrec++;
	return r;
}

static void net_add(const struct moat_prefix *a, int delta);

static void drop(struct rec *r)
{
	if (r->counted)
		net_add(&r->addr, -1);
	for (struct rec **pp = &F->bucket[hash(&r->addr)]; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			F->nrec--;
			free(r);
			return;
		}
}

/* push - r's address to the queue's tail; a full queue drops its oldest */
static void push(struct rec *r)
{
	if (F->qn == F->qcap) {
		struct rec *old = find(&F->q[F->qhead]);
		char pb[MOAT_PREFIX_STRLEN];

		if (old) {
			old->queued = 0;
			if (old->state == R_DEL)
				drop(old); /* left in the zone: its exp still ends it */
		}
		if (F->c.dropped++ % 1000 == 0)
			log_warn("fleet: event=queue-full queue_max=%zu dropped=%" PRIu64
				 " oldest=%s (sent again at its next refresh)", F->qcap, F->c.dropped,
				 moat_prefix_str(&F->q[F->qhead], pb, sizeof(pb)));
		F->qhead = (F->qhead + 1) % F->qcap;
		F->qn--;
	}
	F->q[(F->qhead + F->qn) % F->qcap] = r->addr;
	F->qn++;
	r->queued = 1;
}

/* enqueue - r changed: queue its address once (an address in flight is
 * queued again when its answer comes, see done) */
static void enqueue(struct rec *r)
{
	r->synced = 0;
	r->gen++;
	F->dirty = 1;
	if (!r->queued)
		push(r);
}

/* net_of - the /24 (IPv4) or /64 (IPv6) an address counts against */
static struct moat_prefix net_of(const struct moat_prefix *a)
{
	struct moat_prefix n = *a;

	n.plen = a->family == MOAT_AF_INET ? 24 : 64;
	memset(n.addr + n.plen / 8, 0, sizeof(n.addr) - n.plen / 8);
	return n;
}

/* net_find - the count of net n (NULL: none shared there) */
static struct netc **net_find(const struct moat_prefix *n)
{
	uint32_t h = 2166136261u;
	struct netc **pp;

	for (size_t i = 0; i < 16; i++)
		h = (h ^ n->addr[i]) * 16777619u;
	for (pp = &F->nets[(h ^ n->family) % NNET]; *pp; pp = &(*pp)->next)
		if (moat_prefix_cmp(&(*pp)->net, n) == 0)
			break;
	return pp;
}

/* net_add - a shared record of a's net came (+1) or went (-1) */
static void net_add(const struct moat_prefix *a, int delta)
{
	struct moat_prefix n = net_of(a);
	struct netc **pp = net_find(&n), *c = *pp;

	if (!c) {
		if (delta < 0 || !(c = calloc(1, sizeof(*c))))
			return; /* out of memory: the cap under-counts */
		c->net = n;
		*pp = c;
	}
	if (delta < 0 && c->n)
		c->n--;
	else if (delta > 0)
		c->n++;
	if (!c->n) {
		*pp = c->next;
		free(c);
	}
}

/* net_count - shared (not capped, not deleted) records in a's net */
static uint32_t net_count(const struct moat_prefix *a)
{
	struct moat_prefix n = net_of(a);
	struct netc *c = *net_find(&n);

	return c ? c->n : 0;
}

/* set_state - r's state, and its net's count with it */
static void set_state(struct rec *r, uint8_t st)
{
	uint8_t in = st == R_SET;

	r->state = st;
	if (in != r->counted)
		net_add(&r->addr, in ? 1 : -1);
	r->counted = in;
}

/* capped_note - report a net at its cap (logged once, listed by moatctl) */
static void capped_note(const struct moat_prefix *a)
{
	struct moat_prefix n = net_of(a);
	char pb[MOAT_PREFIX_STRLEN];

	F->c.capped++;
	for (size_t i = 0; i < F->c.ncapped; i++)
		if (moat_prefix_cmp(&F->c.capped_net[i], &n) == 0)
			return;
	if (F->c.ncapped < CAPPED_MAX)
		F->c.capped_net[F->c.ncapped++] = n;
	log_warn("fleet: event=capped net=%s per24_max=%u: further entries of this network are "
		 "enforced here but not shared", moat_prefix_str(&n, pb, sizeof(pb)),
		 cd->cfg.fleet.per24_max);
}

/* withdraw - the address is no longer shared */
static void withdraw(struct rec *r)
{
	if (r->state == R_CAPPED) {
		if (!r->queued)
			drop(r);
		else
			set_state(r, R_DEL);
		return;
	}
	set_state(r, R_DEL);
	enqueue(r);
}

/* share - publish addr with code until exp */
static void share(struct cd *d, const struct moat_prefix *addr, uint32_t code, time_t exp,
		  time_t refresh_at, uint16_t source)
{
	struct rec *r = find(addr);
	uint32_t cap = d->cfg.fleet.per24_max;

	if (cap && (!r || r->state != R_SET) && net_count(addr) >= cap) {
		capped_note(addr);
		if (r && r->state == R_DEL)
			return; /* its delete goes on */
		if (!(r = get(addr)))
			return;
		set_state(r, R_CAPPED);
		r->exp = exp;
		r->source = source;
		return;
	}
	if (!r && !(r = get(addr))) {
		log_warn("fleet: out of memory: an entry is not shared");
		return;
	}
	set_state(r, R_SET);
	r->code = code;
	r->exp = exp;
	r->refresh_at = refresh_at;
	r->source = source;
	enqueue(r);
}

static void send_next(struct cd *d, time_t now);

/* fleet_entry_add - mirror a local add */
void fleet_entry_add(struct cd *d, const struct cd_entry *e, int want, int kind)
{
	const struct cfg_fleet *c = &d->cfg.fleet;
	time_t now = time(NULL), exp, refresh = 0;
	uint32_t code;
	int full = e->pfx.plen == (e->pfx.family == MOAT_AF_INET ? 32 : 128);
	struct rec *r;

	if (!F)
		return;
	if (e->source == CD_SRC_SMTP) {
		if (kind < 0 || kind > FLEET_CONTENT)
			kind = FLEET_DNSBL;
		if (want < 0)
			want = c->learn[kind];
		code = MOAT_FLEET_DNSBL + (uint32_t)kind;
		/* never longer than the learned kind's lifetime, nor than the
		 * entry's own ttl (a DNSBL answer's TTL) */
		exp = now + c->learn_ttl[kind];
		if (e->expires && e->expires < exp)
			exp = e->expires;
	} else {
		if (want < 0)
			want = c->share;
		code = e->action == MOAT_ACT_DROP ? MOAT_FLEET_OP_DROP : MOAT_FLEET_OP_TARPIT;
		exp = e->expires ? e->expires : now + c->lifetime;
		if (!e->expires)
			refresh = now + c->lifetime / 2;
	}
	if (want && e->action == MOAT_ACT_ALLOW) {
		want = 0; /* an allowlist is never shared */
		F->c.not_shared_allow++;
	}
	if (want && e->source == CD_SRC_SMTP) {
		struct vt_explain ex;

		/* allowed here (static allowlist, a DNSWL source): not shared */
		if (vt_db_explain(d->db, &e->pfx, &ex) == 0 && ex.action == MOAT_ACT_ALLOW) {
			want = 0;
			F->c.not_shared_allow++;
		}
	}
	if (want && !full) {
		char pb[MOAT_PREFIX_STRLEN];

		log_info("fleet: event=not-shared prefix=%s: only single addresses are shared",
			 moat_prefix_str(&e->pfx, pb, sizeof(pb)));
		want = 0;
	}
	r = full ? find(&e->pfx) : NULL;
	if (!want) {
		if (r && r->source == e->source && r->state != R_DEL) {
			withdraw(r);
			send_next(d, now);
		}
		return;
	}
	if (r && r->state != R_DEL && r->source != e->source && r->source == CD_SRC_OPERATOR)
		return; /* the operator's shared entry wins over a learned one */
	share(d, &e->pfx, code, exp, refresh, e->source);
	send_next(d, now); /* at once when idle; else it rides the next batch */
}

/* fleet_entry_del - mirror a local delete */
void fleet_entry_del(struct cd *d, const struct moat_prefix *p, unsigned source)
{
	struct rec *r;

	if (!F || !(r = find(p)) || r->source != source || r->state == R_DEL)
		return;
	withdraw(r);
	send_next(d, time(NULL));
}

/* watch - the UPDATE socket in the loop */
static void watch(void)
{
	int fd = moat_upd_fd(F->u);

	if (F->watched) {
		cd_unwatch(&F->tag);
		F->watched = 0;
	}
	if (fd < 0)
		return;
	F->tag.fd = fd;
	if (cd_watch(&F->tag, moat_upd_events(F->u)) == 0)
		F->watched = 1;
}

/* requeue_flight - an unanswered batch goes back to the queue's head */
static void requeue_flight(void)
{
	for (size_t i = F->nfl; i-- > 0;) {
		struct rec *r = find(&F->fl[i].addr);

		if (!r || !r->queued)
			continue;
		if (F->qn == F->qcap) { /* full: the batch's own oldest go */
			r->queued = 0;
			F->c.dropped++;
			continue;
		}
		F->qhead = (F->qhead + F->qcap - 1) % F->qcap;
		F->q[F->qhead] = r->addr;
		F->qn++;
	}
	F->nfl = 0;
}

/* send_next - start the next UPDATE when none flies and the queue holds
 * something */
static void send_next(struct cd *d, time_t now)
{
	size_t n = 0;
	int k;

	if (!F || moat_upd_fd(F->u) >= 0 || !F->qn || now < F->next_try)
		return;
	while (n < d->cfg.fleet.batch && F->qn) {
		struct moat_prefix a = F->q[F->qhead];
		struct rec *r = find(&a);

		F->qhead = (F->qhead + 1) % F->qcap;
		F->qn--;
		if (!r || !r->queued)
			continue;
		if (r->state == R_CAPPED) {
			r->queued = 0;
			continue;
		}
		struct inflight *f = &F->fl[n];

		f->addr = a;
		f->gen = r->gen;
		F->rr[n] = (struct moat_upd_rr){ .addr = a, .del = r->state == R_DEL,
						 .code = r->code, .ttl = d->cfg.fleet.record_ttl };
		if (!F->rr[n].del) {
			moat_fleet_txt(d->cfg.fleet.id, r->exp, r->code, f->txt, sizeof(f->txt));
			F->rr[n].txt = f->txt;
		}
		n++;
	}
	F->nfl = n;
	if (!n)
		return;
	k = moat_upd_start(F->u, F->rr, n, moat_clock_ms());
	if (k < 0) {
		snprintf(F->c.last_error, sizeof(F->c.last_error), "update: %s", strerror(-k));
		log_warn("fleet: event=update result=failed error=\"%s\"", F->c.last_error);
		requeue_flight();
		F->c.failed++;
		F->next_try = now + 1;
		return;
	}
	/* what did not fit one message goes back to the queue's head */
	if ((size_t)k < n) {
		size_t all = F->nfl;

		F->nfl = (size_t)k;
		for (size_t i = all; i-- > (size_t)k;) {
			F->qhead = (F->qhead + F->qcap - 1) % F->qcap;
			F->q[F->qhead] = F->fl[i].addr;
			F->qn++;
		}
	}
	F->started_ms = moat_clock_ms_f();
	watch();
}

/* done - the batch in flight ended with st */
static void done(struct cd *d, enum moat_upd_status st, time_t now)
{
	char esc[300];

	if (F->watched) {
		cd_unwatch(&F->tag);
		F->watched = 0;
	}
	if (st == MOAT_UPD_DONE) {
		F->c.updates_sent++;
		F->c.records_sent += F->nfl;
		F->c.bytes_sent += moat_upd_bytes(F->u);
		F->c.last_success = now;
		F->backoff = 0;
		F->next_try = 0;
		for (size_t i = 0; i < F->nfl; i++) {
			struct rec *r = find(&F->fl[i].addr);

			if (!r)
				continue;
			r->queued = 0;
			if (r->gen != F->fl[i].gen) {
				push(r); /* changed while in flight: send what it is now */
				continue;
			}
			r->synced = 1;
			if (r->state == R_DEL)
				drop(r);
		}
		log_debug("fleet: event=update result=ok records=%zu bytes=%zu ms=%.1f queued=%zu",
			  F->nfl, moat_upd_bytes(F->u), moat_clock_ms_f() - F->started_ms, F->qn);
		F->nfl = 0;
		F->dirty = 1;
		return;
	}
	snprintf(F->c.last_error, sizeof(F->c.last_error), "%s", moat_upd_error(F->u));
	log_escape(esc, sizeof(esc), F->c.last_error, strlen(F->c.last_error));
	if (st == MOAT_UPD_REFUSED) {
		F->c.refused++;
		F->backoff = F->backoff < REFUSED_BACKOFF ? REFUSED_BACKOFF : F->backoff * 2;
		if (F->backoff > REFUSED_BACKOFF_MAX)
			F->backoff = REFUSED_BACKOFF_MAX;
		log_warn("fleet: event=update result=refused zone=%s rcode=\"%s\" records=%zu "
			 "refused=%" PRIu64 " retry_in=%u", d->cfg.fleet.zone, esc, F->nfl, F->c.refused,
			 F->backoff);
	} else {
		F->c.failed++;
		F->backoff = F->backoff ? F->backoff * 2 : 1;
		if (F->backoff > BACKOFF_MAX)
			F->backoff = BACKOFF_MAX;
		log_warn("fleet: event=update result=failed zone=%s error=\"%s\" records=%zu "
			 "retry_in=%u", d->cfg.fleet.zone, esc, F->nfl, F->backoff);
	}
	F->next_try = now + F->backoff;
	requeue_flight();
}

/* fleet_io - the UPDATE connection moved */
void fleet_io(struct cd *d, struct cd_tag *t, unsigned events)
{
	(void)t;
	if (!F)
		return;
	if (F->watched) { /* the library may close the socket */
		cd_unwatch(&F->tag);
		F->watched = 0;
	}
	enum moat_upd_status st = moat_upd_io(F->u, events, moat_clock_ms());
	time_t now = time(NULL);

	if (st == MOAT_UPD_AGAIN) {
		watch();
		return;
	}
	done(d, st, now);
	send_next(d, now);
}

/* save - the state file: every record the zone holds or will hold */
static void save(struct cd *d, time_t now)
{
	char path[PATH_MAX + 16], pb[MOAT_PREFIX_STRLEN];
	struct moat_outfile o;
	FILE *f;

	snprintf(path, sizeof(path), "%s/fleet.state", d->cfg.state_dir);
	if (moat_outfile_open(&o, path, 0600, 0) < 0 || !(f = moat_outfile_fdopen(&o))) {
		log_warn("fleet: cannot write %s", path);
		return;
	}
	fprintf(f, "# moat fleet state: ADDR CODE EXP SOURCE SYNCED (id %s, zone %s)\n", d->cfg.fleet.id,
		d->cfg.fleet.zone);
	F->npublished = 0;
	for (size_t b = 0; b < NBUCKET; b++)
		for (struct rec *r = F->bucket[b]; r; r = r->next) {
			if (r->state == R_CAPPED)
				continue;
			/* a delete not yet sent is kept: the sweep at start ends it */
			fprintf(f, "%s %u %lld %u %u\n", moat_prefix_str(&r->addr, pb, sizeof(pb)),
				r->state == R_DEL ? 0 : r->code, (long long)r->exp, r->source, r->synced);
			F->npublished += r->state == R_SET && r->synced;
		}
	if (fclose(f) != 0 || moat_outfile_commit(&o, 0) < 0)
		log_warn("fleet: cannot write %s", path);
	F->dirty = 0;
	F->saved_at = now;
}

/* entry_exists - does the local entry (addr, source) still exist (the
 * entries' index: the restore and the refresh ask for every record) */
static int entry_exists(struct cd *d, const struct moat_prefix *a, uint16_t source)
{
	return zm_entries_find(d, a, source) >= 0;
}

/* load - the state file; records gone or expired since are deleted (the
 * sweep at start), the others are taken as published */
static void load(struct cd *d, time_t now)
{
	char path[PATH_MAX + 16], line[256], ab[64];
	unsigned code, source, synced;
	long long exp;
	size_t kept = 0, swept = 0, bad = 0, lineno = 0, first_bad = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/fleet.state", d->cfg.state_dir);
	if (!(f = fopen(path, "r")))
		return;
	while (fgets(line, sizeof(line), f)) {
		struct moat_prefix a;
		struct rec *r;

		lineno++;
		if (line[0] == '#')
			continue;
		/* damaged (a line that does not parse, or a piece of an
		 * over-long one): skipped and counted */
		if (sscanf(line, "%63s %u %lld %u %u", ab, &code, &exp, &source, &synced) != 5 ||
		    moat_prefix_parse(ab, &a) != 0 || !(r = get(&a))) {
			if (!bad++)
				first_bad = lineno;
			continue;
		}
		r->code = code;
		r->exp = (time_t)exp;
		r->source = (uint16_t)source;
		r->synced = 1;
		if (code == 0 || r->exp <= now || !entry_exists(d, &a, r->source)) {
			set_state(r, R_DEL);
			enqueue(r);
			swept++;
		} else {
			set_state(r, R_SET);
			if (!synced)
				enqueue(r); /* queued when the state was written */
			if (source == CD_SRC_OPERATOR && r->exp - now < (time_t)d->cfg.fleet.lifetime / 2)
				r->refresh_at = now; /* re-published now */
			kept++;
		}
	}
	fclose(f);
	if (bad)
		log_warn("fleet: event=restore path=%s bad_lines=%zu first=%zu (damaged lines skipped)",
			 path, bad, first_bad);
	log_info("fleet: event=restore kept=%zu sweep=%zu bad=%zu (from %s)", kept, swept, bad, path);
}

/* fleet_open - set up when [fleet] id is configured */
int fleet_open(struct cd *d, char *err, size_t errsz)
{
	const struct cfg_fleet *c = &d->cfg.fleet;
	struct moat_upd_cfg uc = { .zone = c->zone, .tsig = c->tsig[0] ? c->tsig : NULL,
				   .timeout_ms = c->timeout * 1000 };

	if (!c->id[0])
		return 0;
	if (!(F = calloc(1, sizeof(*F))))
		goto oom;
	memcpy(&uc.primary, &c->primary.ss, sizeof(uc.primary));
	F->u = moat_upd_new(&uc, err, errsz);
	if (!F->u) {
		free(F);
		F = NULL;
		return -1;
	}
	F->qcap = c->queue_max;
	F->q = calloc(F->qcap, sizeof(*F->q));
	F->fl = calloc(c->batch, sizeof(*F->fl));
	F->rr = calloc(c->batch, sizeof(*F->rr));
	if (!F->q || !F->fl || !F->rr)
		goto oom;
	F->tag = (struct cd_tag){ TAG_FLEET, NULL, -1 };
	load(d, time(NULL));
	log_info("fleet: event=open id=%s zone=%s primary=%s tsig=%s share=%s", c->id, c->zone,
		 c->primary.text, c->tsig[0] ? "yes" : "no", c->share ? "yes" : "no");
	return 0;
oom:
	snprintf(err, errsz, "out of memory");
	fleet_close(d);
	return -1;
}

/* fleet_close - write the state, free everything */
void fleet_close(struct cd *d)
{
	if (!F)
		return;
	if (F->u && F->dirty)
		save(d, time(NULL));
	if (F->watched)
		cd_unwatch(&F->tag);
	moat_upd_free(F->u);
	for (size_t b = 0; b < NBUCKET; b++)
		for (struct rec *r = F->bucket[b], *n; r; r = n) {
			n = r->next;
			free(r);
		}
	for (size_t b = 0; b < NNET; b++)
		for (struct netc *c = F->nets[b], *n; c; c = n) {
			n = c->next;
			free(c);
		}
	free(F->q);
	free(F->fl);
	free(F->rr);
	free(F);
	F = NULL;
}

/* fleet_reload - the configuration changed: the state goes through the
 * state file into a fresh set-up (new key, primary, zone or limits) */
int fleet_reload(struct cd *d, char *err, size_t errsz)
{
	struct fleet_ctr c = { 0 };
	int r;

	if (F) {
		save(d, time(NULL));
		c = F->c;
	}
	fleet_close(d);
	r = fleet_open(d, err, errsz);
	if (F)
		F->c = c;
	return r;
}

/* fleet_tick - sweep, refresh, time out, retry, save */
void fleet_tick(struct cd *d, time_t now)
{
	if (!F)
		return;
	if (moat_upd_fd(F->u) >= 0 && moat_upd_deadline_ms(F->u) <= moat_clock_ms()) {
		if (F->watched) {
			cd_unwatch(&F->tag);
			F->watched = 0;
		}
		done(d, moat_upd_io(F->u, 0, moat_clock_ms()), now);
	}
	for (size_t b = 0; b < NBUCKET; b++)
		for (struct rec *r = F->bucket[b], *n; r; r = n) {
			n = r->next;
			if (r->state == R_DEL)
				continue;
			if (r->exp <= now) {
				/* ends in the zone as its exp= said it would */
				F->c.expired++;
				if (r->state == R_CAPPED) {
					if (!r->queued)
						drop(r);
					else
						set_state(r, R_DEL);
				} else {
					withdraw(r);
				}
			} else if (r->state == R_SET && r->refresh_at && now >= r->refresh_at &&
				   entry_exists(d, &r->addr, r->source)) {
				r->exp = now + d->cfg.fleet.lifetime;
				r->refresh_at = now + d->cfg.fleet.lifetime / 2;
				enqueue(r);
			}
		}
	send_next(d, now);
	if (F->dirty && now - F->saved_at >= 2)
		save(d, now);
}

/* count - shared records the zone holds (contributed) and those still to
 * be sent (pending) */
static void count(size_t *contributed, size_t *pending)
{
	*contributed = *pending = 0;
	for (size_t b = 0; b < NBUCKET; b++)
		for (struct rec *r = F->bucket[b]; r; r = r->next)
			if (r->state == R_SET)
				++*(r->synced ? contributed : pending);
}

/* fleet_metrics - the publishing counters for /metrics, labelled with
 * this appliance's zone (nothing when [fleet] is off) */
void fleet_metrics(struct cd *d, struct moat_sbuf *b)
{
	static const struct {
		const char *name, *type, *help;
	} m[] = {
		{ "moat_fleet_queued", "gauge", "Shared-entry changes waiting for an UPDATE." },
		{ "moat_fleet_in_flight", "gauge", "Changes in the UPDATE awaiting the primary's answer." },
		{ "moat_fleet_pending", "gauge", "Shared entries not yet in the fleet zone." },
		{ "moat_fleet_contributed", "gauge", "Shared entries this appliance has in its fleet zone." },
		{ "moat_fleet_updates_sent_total", "counter", "UPDATE messages the primary accepted." },
		{ "moat_fleet_records_sent_total", "counter", "Record changes the primary accepted." },
		{ "moat_fleet_bytes_sent_total", "counter", "Bytes of accepted UPDATE messages." },
		{ "moat_fleet_refused_total", "counter",
		  "UPDATEs the primary refused (REFUSED, NOTAUTH, bad TSIG...)." },
		{ "moat_fleet_failed_total", "counter", "UPDATEs with no answer (primary down, timeout)." },
		{ "moat_fleet_dropped_total", "counter", "Changes dropped from a full queue (oldest first)." },
		{ "moat_fleet_capped_total", "counter", "Entries kept local by the per-/24 (/64) cap." },
		{ "moat_fleet_last_success_seconds", "gauge", "Unix time of the last accepted UPDATE." },
	};
	size_t contributed, pending;
	char zl[300];

	if (!F)
		return;
	count(&contributed, &pending);
	const uint64_t v[] = { F->qn, F->nfl, pending, contributed, F->c.updates_sent,
			       F->c.records_sent, F->c.bytes_sent, F->c.refused, F->c.failed, F->c.dropped,
			       F->c.capped, (uint64_t)F->c.last_success };

	moat_prom_label(zl, sizeof(zl), d->cfg.fleet.zone);
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		moat_prom_head(b, m[i].name, m[i].type, m[i].help);
		moat_sbuf_printf(b, "%s{zone=\"%s\"} %llu\n", m[i].name, zl,
				 (unsigned long long)v[i]);
	}
}

/* fleet_json - moatctl fleet */
struct json_object *fleet_json(struct cd *d, int list)
{
	const struct cfg_fleet *c = &d->cfg.fleet;
	struct json_object *o;
	size_t contributed, pending;

	if (!F)
		return NULL;
	o = json_object_new_object();
	struct json_object *e = json_object_new_array(), *cz = json_object_new_array(),
			   *zs = json_object_new_array();
	char pb[MOAT_PREFIX_STRLEN];

	count(&contributed, &pending);
	for (size_t b = 0; list && b < NBUCKET; b++)
		for (struct rec *r = F->bucket[b]; r; r = r->next) {
			if (r->state != R_SET || !r->synced)
				continue;
			if (json_object_array_length(e) < 1000) {
				struct json_object *x = json_object_new_object();

				json_object_object_add(x, "prefix", json_object_new_string(
					moat_prefix_str(&r->addr, pb, sizeof(pb))));
				json_object_object_add(x, "reason", json_object_new_string(
					moat_fleet_code_name(r->code)));
				json_object_object_add(x, "exp", json_object_new_int64(r->exp));
				json_object_array_add(e, x);
			}
		}
	for (size_t i = 0; i < F->c.ncapped; i++)
		json_object_array_add(cz, json_object_new_string(
			moat_prefix_str(&F->c.capped_net[i], pb, sizeof(pb))));
	for (int i = 0; i < d->nzones; i++)
		if (d->zones[i]->cfg.fleet)
			json_object_array_add(zs, json_object_new_string(d->zones[i]->cfg.name));
	json_object_object_add(o, "id", json_object_new_string(c->id));
	json_object_object_add(o, "zone", json_object_new_string(c->zone));
	json_object_object_add(o, "primary", json_object_new_string(c->primary.text));
	json_object_object_add(o, "fleet_zones", zs);
	json_object_object_add(o, "queued", json_object_new_int64((int64_t)F->qn));
	json_object_object_add(o, "in_flight", json_object_new_int64((int64_t)F->nfl));
	json_object_object_add(o, "pending", json_object_new_int64((int64_t)pending));
	json_object_object_add(o, "updates_sent", json_object_new_int64((int64_t)F->c.updates_sent));
	json_object_object_add(o, "records_sent", json_object_new_int64((int64_t)F->c.records_sent));
	json_object_object_add(o, "bytes_sent", json_object_new_int64((int64_t)F->c.bytes_sent));
	json_object_object_add(o, "refused", json_object_new_int64((int64_t)F->c.refused));
	json_object_object_add(o, "failed", json_object_new_int64((int64_t)F->c.failed));
	json_object_object_add(o, "dropped", json_object_new_int64((int64_t)F->c.dropped));
	json_object_object_add(o, "capped", json_object_new_int64((int64_t)F->c.capped));
	json_object_object_add(o, "capped_nets", cz);
	json_object_object_add(o, "not_shared_allow",
			       json_object_new_int64((int64_t)F->c.not_shared_allow));
	json_object_object_add(o, "expired", json_object_new_int64((int64_t)F->c.expired));
	json_object_object_add(o, "last_success", json_object_new_int64(F->c.last_success));
	json_object_object_add(o, "last_error", json_object_new_string(F->c.last_error));
	json_object_object_add(o, "next_try_in",
			       json_object_new_int64(F->next_try > time(NULL) ? F->next_try - time(NULL)
									      : 0));
	json_object_object_add(o, "contributed", json_object_new_int64((int64_t)contributed));
	if (list)
		json_object_object_add(o, "entries", e);
	else
		json_object_put(e);
	return o;
}
