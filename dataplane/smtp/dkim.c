/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dkim.c - DKIM verification (RFC 6376, rsa-sha256 and ed25519-sha256) as
 * the message streams in, with moat's own verifier on OpenSSL (dkimv.c).
 *
 * Header fields are kept as each one completes; at the end of the header
 * block the first dkim_max_signatures DKIM-Signature fields are parsed,
 * their header hashes computed and every key asked on the worker's own
 * c-ares channel together with the DMARC records (dmarc.c), so the answers
 * arrive while the body is canonicalised and hashed (one body hash per
 * distinct canonicalisation and l=).  At the final dot the signatures are
 * checked with the keys already here.  A per-worker cache keeps TXT answers
 * for their TTL, and the key decoded from them: a repeat sender costs no
 * key decoding.
 *
 * Bounded cost on hostile input: at most dkim_max_signatures signatures
 * are evaluated (the rest are counted), the header block read is capped
 * (AUTH_MAX_HEADER, AUTH_MAX_FIELDS), keys above dkim_max_key_bits are
 * refused by their length, never decoded.  Each such case ends as a
 * permerror or neutral result and a counter, never as a refusal of its own.
 */
#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libknot/libknot.h>

#include "auth.h"
#include "authres.h"
#include "clock.h"
#include "log.h"
#include "smtpd.h"

/* the per-worker TXT cache: direct-mapped, an entry replaced on collision */
struct kc_ent {
	char name[320];
	enum auth_qstat status;
	char *txt;
	int key_done;           /* key holds txt decoded */
	struct dkv_key key;
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
	dkv_key_clear(&e->key);
	e->key_done = 0;
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
		if (e->key_done && q->txt) {
			dkv_key_copy(&q->key, &e->key);
			q->key_done = 1;
		}
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

/* q_free - a question and its key */
static void q_free(struct auth_q *q)
{
	dkv_key_clear(&q->key);
	free(q->txt);
	free(q);
}

/* key_for - the key a question's answer holds, decoded once: here, or
 * taken from the cache, where it goes when decoded here.  A record whose
 * p= is longer than a dkim_max_key_bits key (plus its DER framing) is not
 * decoded: AQS_TOOBIG */
static const struct dkv_key *key_for(struct auth_msg *m, struct auth_q *q)
{
	if (q->key_done)
		return &q->key;
	if (dkv_key_b64_bits(q->txt) > (size_t)g_cfg->auth.max_key_bits + 64 * 8) {
		q->status = AQS_TOOBIG;
		return NULL;
	}
	(void)dkv_key_parse(q->txt, &q->key);
	q->key_done = 1;
	stats_inc("dkim", "key_decoded");
	struct kc_ent *e = kc_slot(q->name);
	if (e && e->name[0] && !e->key_done && !strcmp(e->name, q->name) && e->txt && !strcmp(e->txt, q->txt) &&
	    m->s->w->now_ms < e->expires) {
		dkv_key_copy(&e->key, &q->key);
		e->key_done = 1;
	}
	return &q->key;
}

/* auth_thread_init - this worker's TXT and key cache */
int auth_thread_init(void)
{
	const struct smtpd_auth_config *a = &g_cfg->auth;

	if (!a->dkim)
		return 0;
	kc_n = (size_t)a->key_cache;
	if (kc_n && !(kc = calloc(kc_n, sizeof(*kc))))
		return -1;
	return 0;
}

/* auth_thread_fini - the worker stops: its cache */
void auth_thread_fini(void)
{
	for (size_t i = 0; i < kc_n; i++) {
		free(kc[i].txt);
		dkv_key_clear(&kc[i].key);
	}
	free(kc);
	kc = NULL;
	kc_n = 0;
}

/* auth_init - main thread: what every worker shares */
int auth_init(const struct smtpd_config *c, char *err, size_t errsz)
{
	if (!c->auth.dkim)
		return 0;
	return c->auth.dmarc ? dmarc_init(c, err, errsz) : 0;
}

/* auth_open - a new message */
struct auth_msg *auth_open(struct session *s)
{
	struct auth_msg *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->s = s;
	dkv_body_init(&m->body);
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

/* next_mailbox - the end of the mailbox that starts at p in a From value
 * (a ',' outside quotes, comments and angle brackets, or the end) */
static const char *next_mailbox(const char *p)
{
	int q = 0, c = 0, a = 0;

	for (; *p; p++) {
		if (q) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"')
				q = 0;
		} else if (*p == '"') {
			q = 1;
		} else if (*p == '(') {
			c++;
		} else if (*p == ')' && c) {
			c--;
		} else if (*p == '<' && !c) {
			a = 1;
		} else if (*p == '>' && !c) {
			a = 0;
		} else if (*p == ',' && !c && !a) {
			break;
		}
	}
	return p;
}

/* from_domain - the domain of the From field.  A second From field, or
 * mailboxes of different domains in one (RFC 5322 allows a list), leave
 * DMARC without a single domain: n_from 2. */
static void from_domain(struct auth_msg *m, const char *h, size_t len)
{
	char v[1024], box[1024], d[256];
	size_t l = len - 5 < sizeof(v) - 1 ? len - 5 : sizeof(v) - 1;
	extern u_char *opendmarc_util_finddomain(u_char *, u_char *, size_t);

	if (++m->n_from_fields > 1) {
		m->n_from = 2;
		return;
	}
	memcpy(v, h + 5, l);
	v[l] = '\0';
	m->from_domain[0] = '\0';
	for (const char *p = v, *e; *p; p = *e ? e + 1 : e) {
		e = next_mailbox(p);
		snprintf(box, sizeof(box), "%.*s", (int)(e - p), p);
		if (!strchr(box, '@'))
			continue; /* an empty list element, or a group's display name */
		if (!opendmarc_util_finddomain((u_char *)box, (u_char *)d, sizeof(d)) || !name_ok(d, 253)) {
			m->from_domain[0] = '\0';
			m->n_from = 1;
			return;
		}
		for (char *c = d; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		if (!m->from_domain[0]) {
			snprintf(m->from_domain, sizeof(m->from_domain), "%s", d);
		} else if (strcmp(m->from_domain, d) != 0) {
			m->n_from = 2; /* several authors of different domains */
			return;
		}
	}
	m->n_from = 1;
}

/* flush_field - the field being collected is complete: index it */
static void flush_field(struct auth_msg *m)
{
	size_t n = m->hl - m->fs;
	const char *f = m->hb ? m->hb + m->fs : NULL;

	if (!n)
		return;
	if (n >= 5 && !strncasecmp(f, "From:", 5))
		from_domain(m, f, n);
	if (m->dkim_dead) {
		m->hl = m->fs = 0;
		return;
	}
	if (m->nf == m->fcap) {
		int nc = m->fcap ? m->fcap * 2 : 64;
		size_t *no = nc <= AUTH_MAX_FIELDS ? realloc(m->foff, (size_t)nc * sizeof(*no)) : NULL;
		if (no)
			m->foff = no;
		size_t *nl = no ? realloc(m->flen, (size_t)nc * sizeof(*nl)) : NULL;
		if (nl)
			m->flen = nl;
		if (!no || !nl) {
			give_up(m, "header too large");
			return;
		}
		m->fcap = nc;
	}
	if (n >= 15 && !strncasecmp(f, "DKIM-Signature:", 15)) {
		if (m->nsigf >= g_cfg->auth.max_signatures) {
			m->n_ignored++;
		} else {
			if (!m->sigf && !(m->sigf = calloc((size_t)g_cfg->auth.max_signatures, sizeof(*m->sigf)))) {
				give_up(m, "out of memory");
				return;
			}
			m->sigf[m->nsigf++] = m->nf;
		}
	}
	m->foff[m->nf] = m->fs;
	m->flen[m->nf++] = n;
	m->fs = m->hl;
}

/* hb_add - append to the current field; -1 past the header cap */
static int hb_add(struct auth_msg *m, const char *p, size_t n)
{
	m->htotal += n;
	if (m->htotal > AUTH_MAX_HEADER)
		return -1;
	if (m->hl + n + 1 > m->hc) {
		size_t nc = m->hc ? m->hc * 2 : 4096;
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

/* start_sigs - parse the signatures, hash their headers, set up their
 * body hashes and ask their keys */
static void start_sigs(struct auth_msg *m)
{
	const char **f;
	char name[400];

	if (!m->nsigf)
		return;
	if (!(m->ds = calloc((size_t)m->nsigf, sizeof(*m->ds))) || !(f = malloc((size_t)m->nf * sizeof(*f)))) {
		give_up(m, "out of memory");
		return;
	}
	for (int i = 0; i < m->nf; i++)
		f[i] = m->hb + m->foff[i];
	for (int i = 0; i < m->nsigf; i++) {
		struct auth_dsig *d = &m->ds[m->nds++];
		int fi = m->sigf[i];
		d->bhi = -1;
		if (dkv_sig_parse(f[fi], m->flen[fi], &d->p) != 0)
			continue;
		d->hh_ok = dkv_header_hash(&d->p, f[fi], m->flen[fi], f, m->flen, m->nf, d->hh) == 0;
		d->bhi = dkv_body_add(&m->body, d->p.bc, d->p.l);
		snprintf(name, sizeof(name), "%s._domainkey.%s", d->p.s, d->p.d);
		ask(m, AQ_KEY, name);
	}
	free(f);
}

/* end_of_header - the signatures, then ask every key and the DMARC records */
static void end_of_header(struct auth_msg *m)
{
	char name[400];

	flush_field(m);
	m->in_body = 1;
	if (!m->dkim_dead)
		start_sigs(m);
	free(m->hb);
	m->hb = NULL;
	m->hc = m->hl = m->fs = 0;
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

/* body_flush - the collected body lines to the canonicalisers at once */
static void body_flush(struct auth_msg *m)
{
	if (m->bl && !m->dkim_dead)
		dkv_body_update(&m->body, m->bb, m->bl);
	m->bl = 0;
}

/* auth_feed - one content line (CRLF included) */
void auth_feed(struct auth_msg *m, const char *p, size_t len)
{
	if (m->in_body) {
		if (m->dkim_dead || !m->body.n)
			return;
		if (!m->bb && !(m->bb = malloc(AUTH_BODY_BUF))) {
			dkv_body_update(&m->body, p, len);
			return;
		}
		if (m->bl + len > AUTH_BODY_BUF)
			body_flush(m);
		if (len > AUTH_BODY_BUF) {
			dkv_body_update(&m->body, p, len);
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
		if (m->hl > m->fs && (hb_add(m, "\r\n", 2) != 0 || hb_add(m, p, len) != 0))
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

/* sig_check - one signature with its key: result word and reason */
static void sig_check(struct auth_msg *m, struct auth_dsig *d, const char **res, const char **why)
{
	const struct dkv_sig *p = &d->p;
	char name[400];
	struct auth_q *q = NULL;
	int64_t now = (int64_t)time(NULL);

	if (p->err) {
		*res = "permerror", *why = p->err;
		return;
	}
	snprintf(name, sizeof(name), "%s._domainkey.%s", p->s, p->d);
	for (int i = 0; i < m->nq && !q; i++)
		if (m->q[i]->kind == AQ_KEY && !strcasecmp(m->q[i]->name, name))
			q = m->q[i];
	const struct dkv_key *k = q && q->status == AQS_OK ? key_for(m, q) : NULL;
	enum auth_qstat qs = q ? q->status : AQS_PENDING;
	*res = "permerror";
	if (!q) /* the name does not fit a question, or AUTH_MAX_Q were asked */
		*why = "key not asked";
	else if (qs == AQS_TOOBIG)
		*why = "key too large";
	else if (qs == AQS_TEMP || qs == AQS_PENDING)
		*res = "temperror", *why = "key not retrieved";
	else if (qs == AQS_NOTFOUND)
		*why = "no key";
	else if (qs == AQS_BAD || !k)
		*why = "bad key record";
	else if (!k->ok)
		*why = k->err;
	else if (k->alg != p->alg)
		*why = "key type does not match a=";
	else if (k->strict && p->i_dom[0] && strcasecmp(p->i_dom, p->d))
		*why = "i= is not d= (key t=s)";
	else if (p->alg == DKV_RSA_SHA256 && k->bits < g_cfg->auth.min_key_bits)
		*res = "policy", *why = "key too small";
	else if (p->x >= 0 && p->x < now)
		*res = "neutral", *why = "signature expired";
	else if (p->t >= 0 && p->t > now + 300)
		*res = "neutral", *why = "signature timestamp in the future";
	else if (d->bhi < 0 || !d->hh_ok)
		*res = "temperror", *why = "out of memory";
	else if (p->l >= 0 && m->body.bh[d->bhi].total < p->l)
		*why = "l= exceeds the body";
	else if (memcmp(m->body.bh[d->bhi].out, p->bh, sizeof(p->bh)))
		*res = "fail", *why = "body hash did not verify";
	else if (!dkv_verify(p, k, d->hh))
		*res = "fail", *why = "signature did not verify";
	else
		*res = "pass", *why = "";
}

/* sig_result - one signature as RFC 8601 names it */
static void sig_result(struct auth_msg *m, struct auth_dsig *d, struct auth_sig *r)
{
	const char *res, *why;

	sig_check(m, d, &res, &why);
	authres_value(r->d, sizeof(r->d), d->p.d);
	authres_value(r->s, sizeof(r->s), d->p.s);
	authres_value(r->b, sizeof(r->b), d->p.b8);
	authres_value(r->a, sizeof(r->a), d->p.a);
	snprintf(r->result, sizeof(r->result), "%s", res);
	snprintf(r->reason, sizeof(r->reason), "%s", why ? why : "");
	char props[sizeof(r->props)];
	snprintf(props, sizeof(props), "header.d=%s header.s=%s%s%s header.b=%.8s", r->d, r->s,
		 r->a[0] ? " header.a=" : "", r->a, r->b);
	memcpy(r->props, props, sizeof(props));
}

/* auth_finish - the signatures checked with the keys in hand, then DMARC
 * and the verdict */
void auth_finish(struct auth_msg *m, struct auth_verdict *v)
{
	memset(v, 0, sizeof(*v));
	m->nsig = 0;
	if (!m->dkim_dead) {
		dkv_body_final(&m->body);
		for (int i = 0; i < m->nds && m->nsig < AUTH_MAX_SIGS; i++) {
			sig_result(m, &m->ds[i], &m->sig[m->nsig]);
			stats_inc("dkim", m->sig[m->nsig].result);
			m->nsig++;
		}
	}
	if (m->dkim_dead) {
		snprintf(m->dkim_none, sizeof(m->dkim_none), "permerror");
		stats_inc("dkim", "permerror");
	} else if (!m->nsig) {
		snprintf(m->dkim_none, sizeof(m->dkim_none), "none");
		m->dead_reason = NULL;
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
		q_free(q);
	}
	for (int i = 0; i < m->nds; i++)
		dkv_sig_free(&m->ds[i].p);
	free(m->ds);
	dkv_body_free(&m->body);
	free(m->sigf);
	free(m->foff);
	free(m->flen);
	free(m->hb);
	free(m->bb);
	free(m);
}
