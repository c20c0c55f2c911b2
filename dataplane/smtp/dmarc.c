/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dmarc.c - DMARC (RFC 7489) at the final dot with Debian's libopendmarc:
 * the RFC 5322 From domain, the SPF result of MAIL FROM (spf.c) and the DKIM
 * results (dkim.c) against the domain's record.  The record is not looked
 * up by the library (its lookup blocks): dkim.c asked _dmarc.<From domain>
 * and _dmarc.<organizational domain> on the worker's c-ares channel when
 * the header block ended, and the answer is handed over with
 * opendmarc_policy_store_dmarc.  The organizational domain comes from the
 * public suffix list (Debian's publicsuffix), loaded once at start-up.
 *
 * The verdict: a failure under p=reject is refused (dmarc_reject_action)
 * unless the client is a trusted forwarder; p=quarantine follows
 * dmarc_quarantine_action; a DNS temporary error that leaves DMARC
 * undecided follows auth_temperror_action.  Everything else passes.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <opendmarc/dmarc.h>

#include "auth.h"
#include "clock.h"
#include "log.h"
#include "smtpd.h"

extern int opendmarc_get_tld(u_char *domain, u_char *tld, size_t tld_len);

static OPENDMARC_LIB_T dmlib;

/* dmarc_init - the public suffix list, once for every worker */
int dmarc_init(const struct smtpd_config *c, char *err, size_t errsz)
{
	memset(&dmlib, 0, sizeof(dmlib));
	dmlib.tld_type = OPENDMARC_TLD_TYPE_MOZILLA;
	snprintf((char *)dmlib.tld_source_file, sizeof(dmlib.tld_source_file), "%s", c->auth.public_suffix_list);
	if (opendmarc_policy_library_init(&dmlib) != DMARC_PARSE_OKAY) {
		snprintf(err, errsz, "dmarc: cannot load the public suffix list %s", c->auth.public_suffix_list);
		return -1;
	}
	return 0;
}

/* dmarc_org_domain - the registered domain under its public suffix */
void dmarc_org_domain(const char *domain, char *out, size_t outsz)
{
	out[0] = '\0';
	if (opendmarc_get_tld((u_char *)domain, (u_char *)out, outsz) != 0)
		out[0] = '\0';
}

/* spf_outcome - moat's SPF result word as libopendmarc's outcome */
static int spf_outcome(const char *r)
{
	if (!strcmp(r, "pass"))
		return DMARC_POLICY_SPF_OUTCOME_PASS;
	if (!strcmp(r, "fail") || !strcmp(r, "softfail"))
		return DMARC_POLICY_SPF_OUTCOME_FAIL;
	if (!strcmp(r, "temperror"))
		return DMARC_POLICY_SPF_OUTCOME_TMPFAIL;
	return DMARC_POLICY_SPF_OUTCOME_NONE;
}

/* forwarder - is the client one of dmarc_trusted_forwarders? */
static int forwarder(const struct session *s)
{
	const struct smtpd_auth_config *a = &g_cfg->auth;

	for (int i = 0; i < a->n_forwarders; i++)
		if (moat_prefix_match(&a->forwarders[i], s->family == 4 ? MOAT_AF_INET : MOAT_AF_INET6, s->addr))
			return 1;
	return 0;
}

/* under - is d the domain p or below it? */
static int under(const char *d, const char *p)
{
	size_t dl = strlen(d), pl = strlen(p);

	if (!pl || dl < pl)
		return 0;
	return !strcasecmp(d + dl - pl, p) && (dl == pl || d[dl - pl - 1] == '.');
}

/* may_align - could a signature of d= align with the From domain (relaxed)?
 * Only such a signature's missing key can change the DMARC result. */
static int may_align(const struct auth_msg *m, const char *d)
{
	return under(d, m->from_domain) || under(m->from_domain, d) ||
	       (m->org_domain[0] && under(d, m->org_domain));
}

/* set - the dmarc item of the A-R header */
static void set(struct auth_msg *m, const char *result, const char *reason)
{
	snprintf(m->dmarc_result, sizeof(m->dmarc_result), "%s", result);
	snprintf(m->dmarc_reason, sizeof(m->dmarc_reason), "%s", reason ? reason : "");
	if (m->from_domain[0])
		snprintf(m->dmarc_props, sizeof(m->dmarc_props), "header.from=%s", m->from_domain);
	stats_inc("dmarc", result);
}

/* record - the record that applies: the From domain's, else the
 * organizational domain's; AQS_OK with *org set when it came from there */
static enum auth_qstat record(struct auth_msg *m, const char **rec, const char **org)
{
	const struct auth_q *f = NULL, *o = NULL;

	for (int i = 0; i < m->nq; i++) {
		if (m->q[i]->kind == AQ_DMARC_FROM)
			f = m->q[i];
		else if (m->q[i]->kind == AQ_DMARC_ORG)
			o = m->q[i];
	}
	*rec = *org = NULL;
	if (!f || f->status == AQS_PENDING || f->status == AQS_TEMP)
		return AQS_TEMP;
	if (f->status == AQS_OK) {
		*rec = f->txt;
		return AQS_OK;
	}
	if (!o)
		return AQS_NOTFOUND;
	if (o->status == AQS_PENDING || o->status == AQS_TEMP)
		return AQS_TEMP;
	if (o->status != AQS_OK)
		return AQS_NOTFOUND;
	*rec = o->txt;
	*org = m->org_domain;
	return AQS_OK;
}

/* pct_draw - 0..99, uniform enough for pct= sampling */
static unsigned pct_draw(void)
{
	uint32_t x;

	if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x))
		x = (uint32_t)moat_clock_ns(); /* never blocks a worker */
	return x % 100;
}

/* dmarc_eval - the DMARC result and what it makes of the message */
void dmarc_eval(struct auth_msg *m, struct auth_verdict *v)
{
	struct session *s = m->s;
	const char *rec, *org;
	char why[96];
	int pol, pct = 100, sampled_out = -1, dkim_temp = 0;

	snprintf(v->domain, sizeof(v->domain), "%s", m->from_domain);
	if (m->n_from_fields > 1) {
		/* RFC 5322 3.6: exactly one From field.  Two are how a forged
		 * author hides from DMARC behind an aligned one. */
		set(m, "permerror", "more than one From field");
		v->action = g_cfg->auth.multiple_from;
		snprintf(v->reason, sizeof(v->reason), "dmarc_multiple_from");
		return;
	}
	if (m->n_from != 1 || !m->from_domain[0]) {
		set(m, m->n_from > 1 ? "permerror" : "none",
		    m->n_from > 1 ? "From addresses of several domains" : "no From domain");
		return;
	}
	enum auth_qstat rs = record(m, &rec, &org);
	if (rs == AQS_TEMP) {
		set(m, "temperror", "DMARC record not retrieved");
		v->action = g_cfg->auth.temperror;
		snprintf(v->reason, sizeof(v->reason), "auth_temperror");
		return;
	}
	if (rs != AQS_OK) {
		set(m, "none", NULL);
		return;
	}
	DMARC_POLICY_T *pc = opendmarc_policy_connect_init((u_char *)s->ip, s->family == 6);
	if (!pc) {
		set(m, "temperror", "out of memory");
		v->action = g_cfg->auth.temperror;
		snprintf(v->reason, sizeof(v->reason), "auth_temperror");
		return;
	}
	if (opendmarc_policy_store_from_domain(pc, (u_char *)m->from_domain) != DMARC_PARSE_OKAY ||
	    opendmarc_policy_store_dmarc(pc, (u_char *)rec, (u_char *)m->from_domain, (u_char *)org) !=
		    DMARC_PARSE_OKAY) {
		set(m, "permerror", "bad DMARC record");
		opendmarc_policy_connect_shutdown(pc);
		return;
	}
	if (s->spf_result[0]) {
		const char *sd = s->from.addr[0] ? s->from.domain : s->helo;
		(void)opendmarc_policy_store_spf(pc, (u_char *)sd, spf_outcome(s->spf_result),
						 s->from.addr[0] ? DMARC_POLICY_SPF_ORIGIN_MAILFROM :
								   DMARC_POLICY_SPF_ORIGIN_HELO, NULL);
	}
	for (int i = 0; i < m->nsig; i++) {
		const char *r = m->sig[i].result;
		int out = !strcmp(r, "pass") ? DMARC_POLICY_DKIM_OUTCOME_PASS :
			  !strcmp(r, "fail") ? DMARC_POLICY_DKIM_OUTCOME_FAIL :
			  !strcmp(r, "temperror") ? DMARC_POLICY_DKIM_OUTCOME_TMPFAIL : DMARC_POLICY_DKIM_OUTCOME_NONE;
		if (out == DMARC_POLICY_DKIM_OUTCOME_TMPFAIL && may_align(m, m->sig[i].d))
			dkim_temp = 1;
		if (m->sig[i].d[0])
			(void)opendmarc_policy_store_dkim(pc, (u_char *)m->sig[i].d, (u_char *)m->sig[i].s, out, NULL);
	}
	pol = opendmarc_get_policy_to_enforce(pc);
	if (opendmarc_policy_fetch_pct(pc, &pct) != DMARC_PARSE_OKAY)
		pct = 100;
	opendmarc_policy_connect_shutdown(pc);
	/* RFC 7489 6.6.4: pct= applies the policy to that share of failing
	 * messages; the others get the next policy down */
	if ((pol == DMARC_POLICY_REJECT || pol == DMARC_POLICY_QUARANTINE) && pct >= 0 && pct < 100 &&
	    (int)pct_draw() >= pct) {
		pol = pol == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
		sampled_out = pct;
		stats_inc("dmarc", "pct_sampled_out");
	}

	const char *pn = pol == DMARC_POLICY_REJECT ? "reject" : pol == DMARC_POLICY_QUARANTINE ? "quarantine" : "none";
	switch (pol) {
	case DMARC_POLICY_PASS:
		set(m, "pass", NULL);
		return;
	case DMARC_POLICY_ABSENT:
		set(m, "none", NULL);
		return;
	case DMARC_POLICY_REJECT:
	case DMARC_POLICY_QUARANTINE:
	case DMARC_POLICY_NONE:
		break;
	default:
		set(m, "permerror", "DMARC evaluation failed");
		return;
	}
	/* not aligned: a key that did not come may be the one that passes */
	if (dkim_temp && pol != DMARC_POLICY_NONE) {
		set(m, "temperror", "DKIM key not retrieved");
		v->action = g_cfg->auth.temperror;
		snprintf(v->reason, sizeof(v->reason), "auth_temperror");
		return;
	}
	if (pol == DMARC_POLICY_NONE) {
		if (sampled_out >= 0)
			snprintf(why, sizeof(why), "p=quarantine, pct=%d: not sampled, p=none applied", sampled_out);
		set(m, "fail", sampled_out >= 0 ? why : "p=none");
		return;
	}
	if (forwarder(s)) {
		snprintf(why, sizeof(why), "p=%s, not applied: trusted forwarder", pn);
		set(m, "fail", why);
		stats_inc("dmarc", "forwarder_exempt");
		return;
	}
	enum auth_action act = pol == DMARC_POLICY_REJECT ? g_cfg->auth.dmarc_reject : g_cfg->auth.dmarc_quarantine;
	if (sampled_out >= 0)
		snprintf(why, sizeof(why), "p=reject, pct=%d: not sampled, p=quarantine applied%s", sampled_out,
			 act == AUTH_ACT_ACCEPT ? ", accepted" : "");
	else
		snprintf(why, sizeof(why), "p=%s%s", pn, act == AUTH_ACT_ACCEPT ? ", accepted" : "");
	set(m, "fail", why);
	v->action = act;
	snprintf(v->reason, sizeof(v->reason), "dmarc_%s", pn);
}
