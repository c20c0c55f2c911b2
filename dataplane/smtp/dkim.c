/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dkim.c - DKIM verification (RFC 6376, rsa-sha256 and ed25519-sha256) as
 * the message streams in, with Debian's libopendkim.
 *
 * Header fields go to dkim_header as each one completes; at the end of the
 * header block dkim_eoh parses the signatures (DKIM_LIBFLAGS_DELAYSIGPROC:
 * no key work yet), the prescreen callback keeps the first
 * dkim_max_signatures, and every selected key is asked on the worker's own
 * c-ares channel together with the DMARC records (dmarc.c), so the answers
 * arrive while the body is hashed by dkim_body.  At the final dot dkim_eom
 * runs; its key-lookup callback hands over the answers already here.  A
 * per-worker cache keeps TXT answers for their TTL.
 *
 * Bounded cost on hostile input: at most 2 x dkim_max_signatures
 * DKIM-Signature fields reach the library (each one adds a body hash), the
 * header block read is capped (AUTH_MAX_HEADER), keys above
 * dkim_max_key_bits are not used.  Each such case ends as a permerror or
 * neutral result and a counter, never as a refusal of its own.
 */
#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libknot/libknot.h>

#include "auth.h"
#include "authres.h"
#include "clock.h"
#include "log.h"
#include "smtpd.h"

static __thread DKIM_LIB *lib;

/* the per-worker TXT cache: direct-mapped, an entry replaced on collision */
struct kc_ent {
	char name[320];
	enum auth_qstat status;
	char *txt;
	int64_t expires;
};
static __thread struct kc_ent *kc;
static __thread size_t kc_n;

/* kc_slot - the entry a name maps to (FNV-1a) */
static struct kc_ent *kc_slot(const char *name)
{
	uint64_t h = 1469598103934665603ULL;

	if (!kc_n)
		return NULL;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return &kc[h % kc_n];
}

/* kc_get - a live cached answer for name, or NULL */
static const struct kc_ent *kc_get(const char *name, int64_t now)
{
	struct kc_ent *e = kc_slot(name);

	if (!e || !e->name[0] || now >= e->expires || strcmp(e->name, name))
		return NULL;
	return e;
}

/* kc_put - remember an answer for ttl seconds (capped); temporary errors
 * are never cached */
static void kc_put(const char *name, enum auth_qstat st, const char *txt, uint32_t ttl)
{
	struct kc_ent *e = kc_slot(name);
	uint32_t cap = (uint32_t)g_cfg->auth.key_cache_max_ttl;

	if (!e || st == AQS_TEMP || st == AQS_PENDING || !ttl)
		return;
	char *t = txt ? strdup(txt) : NULL;
	if (txt && !t)
		return;
	free(e->txt);
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->status = st;
	e->txt = t;
	e->expires = moat_clock_ms() + (int64_t)(ttl < cap ? ttl : cap) * 1000;
}

/* auth_txt_parse - pick the TXT record out of a DNS answer (libknot) */
enum auth_qstat auth_txt_parse(const unsigned char *abuf, int alen, enum auth_qkind kind, char **txt,
			       uint32_t *ttl)
{
	enum auth_qstat st = AQS_NOTFOUND;
	int n_dmarc = 0;

	*txt = NULL;
	*ttl = 0;
	if (alen <= 0 || alen > 65535)
		return AQS_BAD;
	knot_pkt_t *pkt = knot_pkt_new((void *)abuf, (uint16_t)alen, NULL);
	if (!pkt)
		return AQS_TEMP;
	if (knot_pkt_parse(pkt, 0) != KNOT_EOK) {
		knot_pkt_free(pkt);
		return AQS_BAD;
	}
	const knot_pktsection_t *an = knot_pkt_section(pkt, KNOT_ANSWER);
	for (uint16_t i = 0; i < an->count; i++) {
		const knot_rrset_t *rr = knot_pkt_rr(an, i);
		if (rr->type != KNOT_RRTYPE_TXT)
			continue;
		knot_rdata_t *rd = rr->rrs.rdata;
		for (uint16_t j = 0; j < rr->rrs.count; j++, rd = knot_rdataset_next(rd)) {
			/* one record: its character-strings joined (RFC 6376 3.6.2.2) */
			char *t = malloc((size_t)rd->len + 1);
			size_t o = 0;
			if (!t)
				goto out;
			for (size_t k = 0; k < rd->len;) {
				size_t l = rd->data[k++];
				if (k + l > rd->len)
					l = rd->len - k;
				memcpy(t + o, rd->data + k, l);
				o += l;
				k += l;
			}
			t[o] = '\0';
			if (strlen(t) != o) { /* a NUL inside: not a record we use */
				free(t);
				continue;
			}
			if (kind != AQ_KEY) {
				if (strncmp(t, "v=DMARC1", 8) || (t[8] && t[8] != ';' && t[8] != ' ' && t[8] != '\t')) {
					free(t);
					continue;
				}
				n_dmarc++;
			}
			if (*txt) {
				free(t);
				continue;
			}
			*txt = t;
			*ttl = rr->ttl;
			st = AQS_OK;
		}
	}
	if (kind != AQ_KEY && n_dmarc > 1) { /* RFC 7489 6.6.3: several records, none applies */
		free(*txt);
		*txt = NULL;
		st = AQS_NOTFOUND;
	}
out:
	knot_pkt_free(pkt);
	return st;
}

/* q_done - a question is answered: the message goes on when it was the last */
static void q_done(struct auth_q *q)
{
	struct auth_msg *m = q->m;

	if (--m->pending == 0 && m->waiting) {
		m->waiting = 0;
		session_auth_done(m->s);
	}
}

/* on_txt - c-ares answered (or gave up on) a question */
static void on_txt(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct auth_q *q = arg;
	uint32_t ttl = 0;
	char *txt = NULL;
	enum auth_qstat st;

	(void)timeouts;
	if (status == ARES_SUCCESS)
		st = auth_txt_parse(abuf, alen, q->kind, &txt, &ttl);
	else if (status == ARES_ENOTFOUND || status == ARES_ENODATA)
		st = AQS_NOTFOUND, ttl = 60;
	else
		st = AQS_TEMP;
	if (status == ARES_EDESTRUCTION) {
		st = AQS_TEMP; /* the worker stops */
	} else {
		kc_put(q->name, st, txt, ttl);
		stats_inc(q->kind == AQ_KEY ? "dkim" : "dmarc", st == AQS_OK ? "dns_answer" :
				  st == AQS_NOTFOUND ? "dns_nxdomain" : st == AQS_TEMP ? "dns_temperror" : "dns_bad");
	}
	if (!q->m) { /* the message went away meanwhile (its deadline passed) */
		free(txt);
		free(q);
		return;
	}
	q->status = st;
	q->txt = txt;
	q_done(q);
}

/* ask - one TXT question (deduplicated, cache first); 0 or -1 */
static int ask(struct auth_msg *m, enum auth_qkind kind, const char *name)
{
	const struct kc_ent *e;

	for (int i = 0; i < m->nq; i++)
		if (!strcasecmp(m->q[i]->name, name))
			return 0;
	if (m->nq >= AUTH_MAX_Q || strlen(name) >= sizeof(m->q[0]->name) || !m->s->w->ares)
		return -1;
	struct auth_q *q = calloc(1, sizeof(*q));
	if (!q)
		return -1;
	q->m = m;
	q->kind = kind;
	for (size_t i = 0; name[i]; i++)
		q->name[i] = (char)tolower((unsigned char)name[i]);
	m->q[m->nq++] = q;
	if ((e = kc_get(q->name, m->s->w->now_ms)) != NULL) {
		q->status = e->status;
		q->txt = e->txt ? strdup(e->txt) : NULL;
		if (e->txt && !q->txt)
			q->status = AQS_TEMP;
		stats_inc("dkim", "cache_hit");
		return 0;
	}
	m->pending++;
	ares_query(m->s->w->ares, q->name, ns_c_in, ns_t_txt, on_txt, q);
	return 0;
}

/* name_ok - a DNS name we are willing to ask (LDH, underscores, dots) */
static int name_ok(const char *n, size_t max)
{
	size_t l = n ? strlen(n) : 0;

	if (!l || l > max || n[0] == '.' || n[l - 1] == '.')
		return 0;
	for (size_t i = 0; i < l; i++)
		if (!isalnum((unsigned char)n[i]) && n[i] != '-' && n[i] != '.' && n[i] != '_')
			return 0;
	return !strstr(n, "..");
}

/* key_bits_ok - is the p= of a key record within dkim_max_key_bits?  The
 * key is not decoded: its base64 length bounds its size (an RSA key's DER
 * is its modulus plus under 40 bytes of framing) */
static int key_bits_ok(const char *rec)
{
	const char *p = rec;
	size_t b64 = 0;

	while ((p = strstr(p, "p=")) != NULL) {
		if (p == rec || p[-1] == ';' || p[-1] == ' ' || p[-1] == '\t')
			break;
		p += 2;
	}
	if (!p)
		return 1; /* no key: the library says so */
	for (p += 2; *p && *p != ';'; p++)
		if (isalnum((unsigned char)*p) || *p == '+' || *p == '/')
			b64++;
	return b64 * 6 <= (size_t)g_cfg->auth.max_key_bits + 64 * 8;
}

/* key_lookup - libopendkim asks for a key in dkim_eom: the answer that
 * came while the body streamed */
static DKIM_CBSTAT key_lookup(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
	struct auth_msg *m = dkim_get_user_context(dkim);
	const char *d = (const char *)dkim_sig_getdomain(sig), *s = (const char *)dkim_sig_getselector(sig);
	char name[320];

	if (!m || !d || !s)
		return DKIM_CBSTAT_NOTFOUND;
	snprintf(name, sizeof(name), "%s._domainkey.%s", s, d);
	for (int i = 0; i < m->nq; i++) {
		struct auth_q *q = m->q[i];
		if (q->kind != AQ_KEY || strcasecmp(q->name, name))
			continue;
		switch (q->status) {
		case AQS_OK:
			if (!key_bits_ok(q->txt)) {
				q->status = AQS_TOOBIG;
				return DKIM_CBSTAT_NOTFOUND;
			}
			if (strlen(q->txt) >= buflen)
				return DKIM_CBSTAT_ERROR;
			memcpy(buf, q->txt, strlen(q->txt) + 1);
			return DKIM_CBSTAT_CONTINUE;
		case AQS_NOTFOUND:
		case AQS_TOOBIG:
			return DKIM_CBSTAT_NOTFOUND;
		case AQS_BAD:
			return DKIM_CBSTAT_ERROR;
		default:
			return DKIM_CBSTAT_TRYAGAIN;
		}
	}
	return DKIM_CBSTAT_NOTFOUND;
}

/* prescreen - dkim_eoh found the signatures: evaluate the first
 * dkim_max_signatures, ignore (and count) the rest */
static DKIM_CBSTAT prescreen(DKIM *dkim, DKIM_SIGINFO **sigs, int nsigs)
{
	struct auth_msg *m = dkim_get_user_context(dkim);

	for (int i = g_cfg->auth.max_signatures; i < nsigs; i++) {
		dkim_sig_ignore(sigs[i]);
		if (m)
			m->n_ignored++;
	}
	return DKIM_CBSTAT_CONTINUE;
}

/* auth_thread_init - this worker's libopendkim handle and TXT cache */
int auth_thread_init(void)
{
	const struct smtpd_auth_config *a = &g_cfg->auth;
	unsigned int flags = DKIM_LIBFLAGS_DELAYSIGPROC | DKIM_LIBFLAGS_BADSIGHANDLES | DKIM_LIBFLAGS_FIXCRLF;
	unsigned int minbits = (unsigned int)a->min_key_bits;

	if (!a->dkim)
		return 0;
	lib = dkim_init(NULL, NULL);
	if (!lib)
		return -1;
	if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof(flags)) != DKIM_STAT_OK ||
	    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &minbits, sizeof(minbits)) != DKIM_STAT_OK ||
	    dkim_set_key_lookup(lib, key_lookup) != DKIM_STAT_OK ||
	    dkim_set_prescreen(lib, prescreen) != DKIM_STAT_OK)
		return -1;
	kc_n = (size_t)a->key_cache;
	if (kc_n && !(kc = calloc(kc_n, sizeof(*kc))))
		return -1;
	return 0;
}

/* auth_thread_fini - the worker stops: its handle and cache */
void auth_thread_fini(void)
{
	for (size_t i = 0; i < kc_n; i++)
		free(kc[i].txt);
	free(kc);
	kc = NULL;
	kc_n = 0;
	if (lib)
		dkim_close(lib);
	lib = NULL;
}

/* auth_init - main thread: what every worker shares */
int auth_init(const struct smtpd_config *c, char *err, size_t errsz)
{
	if (!c->auth.dkim)
		return 0;
	DKIM_LIB *l = dkim_init(NULL, NULL);
	if (!l) {
		snprintf(err, errsz, "dkim: libopendkim did not initialise");
		return -1;
	}
	if (!dkim_libfeature(l, DKIM_FEATURE_SHA256) || !dkim_libfeature(l, DKIM_FEATURE_ED25519))
		log_warn("dkim: this libopendkim lacks %s: those signatures verify as permerror",
			 dkim_libfeature(l, DKIM_FEATURE_SHA256) ? "ed25519-sha256" : "sha256");
	dkim_close(l);
	return c->auth.dmarc ? dmarc_init(c, err, errsz) : 0;
}

/* auth_open - a new message */
struct auth_msg *auth_open(struct session *s)
{
	DKIM_STAT st;
	struct auth_msg *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->s = s;
	m->eoh = -1;
	m->dkim = lib ? dkim_verify(lib, (const unsigned char *)s->sid, NULL, &st) : NULL;
	if (!m->dkim) {
		free(m);
		return NULL;
	}
	dkim_set_user_context(m->dkim, m);
	return m;
}

/* give_up - DKIM cannot go on with this message (reason for the header) */
static void give_up(struct auth_msg *m, const char *why)
{
	if (!m->dkim_dead) {
		m->dkim_dead = 1;
		m->dead_reason = why;
		stats_inc("dkim", "given_up");
	}
}

/* from_domain - the domain of a From field (first address) */
static void from_domain(struct auth_msg *m, const char *h, size_t len)
{
	char v[1024];
	size_t l = len - 5 < sizeof(v) - 1 ? len - 5 : sizeof(v) - 1;
	extern u_char *opendmarc_util_finddomain(u_char *, u_char *, size_t);

	if (++m->n_from > 1)
		return;
	memcpy(v, h + 5, l);
	v[l] = '\0';
	/* RFC 5322 allows several mailboxes in From: DMARC has no single domain */
	if (strchr(v, ',') && strchr(v, '@') != strrchr(v, '@')) {
		m->n_from = 2;
		return;
	}
	if (!opendmarc_util_finddomain((u_char *)v, (u_char *)m->from_domain, sizeof(m->from_domain)) ||
	    !name_ok(m->from_domain, 253))
		m->from_domain[0] = '\0';
	for (char *p = m->from_domain; *p; p++)
		*p = (char)tolower((unsigned char)*p);
}

/* flush_field - one complete header field to libopendkim */
static void flush_field(struct auth_msg *m)
{
	if (!m->hl)
		return;
	if (m->hl >= 15 && !strncasecmp(m->hb, "DKIM-Signature:", 15) &&
	    ++m->n_sighdr > 2 * g_cfg->auth.max_signatures) {
		m->n_ignored++; /* not even parsed: each one would cost a body hash */
		m->hl = 0;
		return;
	}
	if (m->hl >= 5 && !strncasecmp(m->hb, "From:", 5))
		from_domain(m, m->hb, m->hl);
	if (!m->dkim_dead)
		(void)dkim_header(m->dkim, (u_char *)m->hb, m->hl); /* a bad field: its signature fails */
	m->hl = 0;
}

/* hb_add - append to the current field; -1 past the header cap */
static int hb_add(struct auth_msg *m, const char *p, size_t n)
{
	m->htotal += n;
	if (m->htotal > AUTH_MAX_HEADER)
		return -1;
	if (m->hl + n + 1 > m->hc) {
		size_t nc = m->hc ? m->hc * 2 : 1024;
		while (nc < m->hl + n + 1)
			nc *= 2;
		char *nb = realloc(m->hb, nc);
		if (!nb)
			return -1;
		m->hb = nb;
		m->hc = nc;
	}
	memcpy(m->hb + m->hl, p, n);
	m->hl += n;
	m->hb[m->hl] = '\0';
	return 0;
}

/* end_of_header - dkim_eoh, then ask every key and the DMARC records */
static void end_of_header(struct auth_msg *m)
{
	DKIM_SIGINFO **sigs;
	int n = 0;
	char name[400];

	flush_field(m);
	m->in_body = 1;
	free(m->hb);
	m->hb = NULL;
	m->hc = 0;
	if (!m->dkim_dead) {
		m->eoh = dkim_eoh(m->dkim);
		if (m->eoh == DKIM_STAT_OK && dkim_getsiglist(m->dkim, &sigs, &n) == DKIM_STAT_OK) {
			for (int i = 0; i < n; i++) {
				const char *d = (const char *)dkim_sig_getdomain(sigs[i]);
				const char *s = (const char *)dkim_sig_getselector(sigs[i]);
				if ((dkim_sig_getflags(sigs[i]) & DKIM_SIGFLAG_IGNORE) || !name_ok(d, 253) ||
				    !name_ok(s, 63))
					continue;
				snprintf(name, sizeof(name), "%s._domainkey.%s", s, d);
				ask(m, AQ_KEY, name);
			}
		}
	}
	if (m->n_ignored)
		stats_add("dkim.signatures_ignored", (uint64_t)m->n_ignored);
	if (g_cfg->auth.dmarc && m->n_from == 1 && m->from_domain[0]) {
		snprintf(name, sizeof(name), "_dmarc.%s", m->from_domain);
		ask(m, AQ_DMARC_FROM, name);
		dmarc_org_domain(m->from_domain, m->org_domain, sizeof(m->org_domain));
		if (m->org_domain[0] && strcmp(m->org_domain, m->from_domain)) {
			snprintf(name, sizeof(name), "_dmarc.%s", m->org_domain);
			ask(m, AQ_DMARC_ORG, name);
		}
	}
}

/* body_flush - the collected body lines to libopendkim in one call (its
 * per-call cost is about that of 200 body bytes) */
static void body_flush(struct auth_msg *m)
{
	if (m->bl && !m->dkim_dead && m->eoh == DKIM_STAT_OK)
		(void)dkim_body(m->dkim, (u_char *)m->bb, m->bl);
	m->bl = 0;
}

/* auth_feed - one content line (CRLF included) */
void auth_feed(struct auth_msg *m, const char *p, size_t len)
{
	if (m->in_body) {
		if (m->dkim_dead || m->eoh != DKIM_STAT_OK)
			return;
		if (!m->bb && !(m->bb = malloc(AUTH_BODY_BUF))) {
			(void)dkim_body(m->dkim, (u_char *)p, len);
			return;
		}
		if (m->bl + len > AUTH_BODY_BUF)
			body_flush(m);
		if (len > AUTH_BODY_BUF) {
			(void)dkim_body(m->dkim, (u_char *)p, len);
			return;
		}
		memcpy(m->bb + m->bl, p, len);
		m->bl += len;
		return;
	}
	len -= 2;
	if (len == 0) {
		end_of_header(m);
		return;
	}
	if (p[0] == ' ' || p[0] == '\t') {
		if (m->hl && (hb_add(m, "\r\n", 2) != 0 || hb_add(m, p, len) != 0))
			give_up(m, "header too large");
		return;
	}
	flush_field(m);
	if (hb_add(m, p, len) != 0)
		give_up(m, "header too large");
}

/* auth_ready - the final dot */
int auth_ready(struct auth_msg *m, int64_t now)
{
	if (!m->in_body)
		end_of_header(m); /* a message without a body */
	body_flush(m);
	if (!m->pending)
		return 1;
	m->waiting = 1;
	m->deadline = now + g_cfg->auth.dns_timeout_ms;
	return 0;
}

int64_t auth_deadline(const struct auth_msg *m)
{
	return m->deadline;
}

/* sig_result - one signature after dkim_eom as RFC 8601 names it */
static void sig_result(struct auth_msg *m, DKIM_SIGINFO *sig, struct auth_sig *r)
{
	int err = dkim_sig_geterror(sig);
	unsigned int flags = dkim_sig_getflags(sig);
	const char *d = (const char *)dkim_sig_getdomain(sig), *s = (const char *)dkim_sig_getselector(sig);
	const char *b = (const char *)dkim_sig_gettagvalue(sig, 0, (u_char *)"b");
	const char *a = (const char *)dkim_sig_gettagvalue(sig, 0, (u_char *)"a");
	char name[400];
	enum auth_qstat qs = AQS_PENDING;

	authres_value(r->d, sizeof(r->d), d ? d : "");
	authres_value(r->s, sizeof(r->s), s ? s : "");
	authres_value(r->b, sizeof(r->b), b ? b : "");
	authres_value(r->a, sizeof(r->a), a ? a : "");
	snprintf(name, sizeof(name), "%s._domainkey.%s", s ? s : "", d ? d : "");
	for (int i = 0; i < m->nq; i++)
		if (m->q[i]->kind == AQ_KEY && !strcasecmp(m->q[i]->name, name))
			qs = m->q[i]->status;
	const char *res, *why = "";
	if ((flags & DKIM_SIGFLAG_PASSED) && dkim_sig_getbh(sig) == DKIM_SIGBH_MATCH) {
		res = "pass";
	} else if (qs == AQS_TOOBIG) {
		res = "permerror", why = "key too large";
	} else if (qs == AQS_TEMP || (qs == AQS_PENDING && name_ok(d, 253) && name_ok(s, 63))) {
		res = "temperror", why = "key not retrieved";
	} else if ((err == DKIM_SIGERROR_OK || err == DKIM_SIGERROR_BADSIG) &&
		   dkim_sig_getbh(sig) == DKIM_SIGBH_MISMATCH) {
		res = "fail", why = "body hash did not verify";
	} else if (err == DKIM_SIGERROR_BADSIG) {
		res = "fail", why = "signature did not verify";
	} else if (err == DKIM_SIGERROR_KEYFAIL) {
		res = "temperror", why = "key not retrieved";
	} else if (err == DKIM_SIGERROR_EXPIRED || err == DKIM_SIGERROR_FUTURE) {
		res = "neutral", why = dkim_sig_geterrorstr(err);
	} else if (err == DKIM_SIGERROR_KEYTOOSMALL) {
		res = "policy", why = "key too small";
	} else {
		res = "permerror";
		why = err > 0 ? dkim_sig_geterrorstr(err) : (flags & DKIM_SIGFLAG_PROCESSED) ? "not verified" : "not evaluated";
	}
	snprintf(r->result, sizeof(r->result), "%s", res);
	snprintf(r->reason, sizeof(r->reason), "%s", why ? why : "");
	snprintf(r->props, sizeof(r->props), "header.d=%s header.s=%s%s%s header.b=%.8s", r->d, r->s,
		 r->a[0] ? " header.a=" : "", r->a, r->b);
}

/* auth_finish - dkim_eom with the keys in hand, then DMARC and the verdict */
void auth_finish(struct auth_msg *m, struct auth_verdict *v)
{
	DKIM_SIGINFO **sigs = NULL;
	int n = 0;

	memset(v, 0, sizeof(*v));
	m->nsig = 0;
	if (!m->dkim_dead && m->eoh == DKIM_STAT_OK) {
		(void)dkim_eom(m->dkim, NULL);
		if (dkim_getsiglist(m->dkim, &sigs, &n) != DKIM_STAT_OK)
			n = 0;
		for (int i = 0; i < n && m->nsig < AUTH_MAX_SIGS; i++) {
			if (dkim_sig_getflags(sigs[i]) & DKIM_SIGFLAG_IGNORE)
				continue;
			sig_result(m, sigs[i], &m->sig[m->nsig]);
			stats_inc("dkim", m->sig[m->nsig].result);
			m->nsig++;
		}
	}
	if (m->dkim_dead) {
		snprintf(m->dkim_none, sizeof(m->dkim_none), "permerror");
		stats_inc("dkim", "permerror");
	} else if (!m->nsig) {
		int none = m->eoh == DKIM_STAT_NOSIG || m->eoh == -1;
		snprintf(m->dkim_none, sizeof(m->dkim_none), "%s", none ? "none" : "permerror");
		m->dead_reason = none ? NULL : "malformed signature";
		stats_inc("dkim", m->dkim_none);
	}
	size_t o = (size_t)snprintf(v->log, sizeof(v->log), "dkim=");
	for (int i = 0; i < m->nsig && o < sizeof(v->log); i++)
		o += (size_t)snprintf(v->log + o, sizeof(v->log) - o, "%s%s:%s", i ? "," : "", m->sig[i].d,
				      m->sig[i].result);
	if (!m->nsig && o < sizeof(v->log))
		o += (size_t)snprintf(v->log + o, sizeof(v->log) - o, "%s", m->dkim_dead ? "permerror" : "none");
	if (m->n_ignored && o < sizeof(v->log))
		o += (size_t)snprintf(v->log + o, sizeof(v->log) - o, " dkim_ignored=%d", m->n_ignored);
	v->action = AUTH_ACT_ACCEPT;
	if (g_cfg->auth.dmarc)
		dmarc_eval(m, v);
}

/* auth_items - the dkim and dmarc results of the A-R header, into it[max] */
int auth_items(const struct auth_msg *m, struct authres_item *it, int max)
{
	int n = 0;

	if (!m->nsig && n < max)
		it[n++] = (struct authres_item){ "dkim", m->dkim_none, m->dead_reason, NULL };
	for (int i = 0; i < m->nsig && n < max; i++)
		it[n++] = (struct authres_item){ "dkim", m->sig[i].result, m->sig[i].reason, m->sig[i].props };
	if (m->dmarc_result[0] && n < max)
		it[n++] = (struct authres_item){ "dmarc", m->dmarc_result, m->dmarc_reason, m->dmarc_props };
	return n;
}

/* auth_close - the message is done (or abandoned) */
void auth_close(struct auth_msg *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->nq; i++) {
		struct auth_q *q = m->q[i];
		if (q->status == AQS_PENDING) {
			q->m = NULL; /* c-ares still holds it: on_txt frees it */
			continue;
		}
		free(q->txt);
		free(q);
	}
	if (m->dkim)
		dkim_free(m->dkim);
	free(m->hb);
	free(m->bb);
	free(m);
}
