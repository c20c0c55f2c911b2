/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vt_policy.c - the verdict-table policy: sources with weights per DNSBL
 * return-code range (Postfix postscreen dnsbl_sites), error codes that are
 * never listings, two thresholds, operator entries; and the pure functions
 * that turn one address's listings into an action.  The compiler, explain
 * and the tests' reference model all decide through vt_decide().
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "vt_internal.h"

/* Defaults for error codes: 127.255.255.0/24 (Spamhaus "query refused"
 * family) and 127.0.0.1 (an answer no list uses for a listing). */
static const struct vt_code_range default_err[] = {
	{ 0x7fffff00u, 0x7fffffffu },
	{ 0x7f000001u, 0x7f000001u },
};

/* vt_policy_init - empty policy with default thresholds and grace. */
void vt_policy_init(struct vt_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->tarpit_at = VT_TARPIT_AT_DEFAULT;
	p->drop_at = VT_DROP_AT_DEFAULT;
	p->grace_ms = VT_GRACE_DEFAULT_MS;
}

/* vt_source_init - a source with defaults for its kind. */
void vt_source_init(struct vt_source *s, uint16_t id, const char *name,
		    enum vt_source_kind kind)
{
	memset(s, 0, sizeof(*s));
	s->id = id;
	snprintf(s->name, sizeof(s->name), "%s", name ? name : "");
	s->kind = kind;
	s->expire_ttl = kind == VT_SRC_STATIC;
}

/* vt_policy_add_source - append a copy of s after checking its id. */
int vt_policy_add_source(struct vt_policy *p, const struct vt_source *s,
			 char *err, size_t errsz)
{
	for (uint32_t i = 0; i < p->nsources && i < VT_MAX_SOURCES; i++) {
		if (p->sources[i].id == s->id) {
			VT_ERR(err, errsz, "source id %u used twice (%s, %s)",
			       s->id, p->sources[i].name, s->name);
			return -EEXIST;
		}
	}
	if (p->nsources >= VT_MAX_SOURCES) {
		VT_ERR(err, errsz, "more than %d sources", VT_MAX_SOURCES);
		return -ENOSPC;
	}
	p->sources[p->nsources++] = *s;
	return 0;
}

/* vt_policy_validate - every constraint the compiler relies on. */
int vt_policy_validate(const struct vt_policy *p, char *err, size_t errsz)
{
	int64_t pos = 0, neg = 0;

	if (p->nsources > VT_MAX_SOURCES) {
		VT_ERR(err, errsz, "%u sources, at most %d", p->nsources,
		       VT_MAX_SOURCES);
		return -EINVAL;
	}
	if (p->tarpit_at < 1) {
		VT_ERR(err, errsz, "tarpit threshold %d must be >= 1",
		       p->tarpit_at);
		return -EINVAL;
	}
	if (p->drop_at < p->tarpit_at) {
		VT_ERR(err, errsz, "drop threshold %d below tarpit threshold %d",
		       p->drop_at, p->tarpit_at);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < p->nsources; i++) {
		const struct vt_source *s = &p->sources[i];

		if (memchr(s->name, 0, sizeof(s->name)) == NULL ||
		    s->name[0] == 0) {
			VT_ERR(err, errsz, "source %u: empty or unterminated name",
			       s->id);
			return -EINVAL;
		}
		for (uint32_t j = 0; j < i; j++) {
			if (p->sources[j].id == s->id) {
				VT_ERR(err, errsz, "source id %u used twice (%s, %s)",
				       s->id, p->sources[j].name, s->name);
				return -EINVAL;
			}
		}
		if (s->kind != VT_SRC_DNSBL && s->kind != VT_SRC_ALLOWLIST &&
		    s->kind != VT_SRC_STATIC) {
			VT_ERR(err, errsz, "source %s: unknown kind %d", s->name,
			       (int)s->kind);
			return -EINVAL;
		}
		if (s->kind == VT_SRC_STATIC)
			continue;
		if (s->nrules > VT_MAX_RULES) {
			VT_ERR(err, errsz, "source %s: %u weight rules, at most %d",
			       s->name, s->nrules, VT_MAX_RULES);
			return -EINVAL;
		}
		if (s->nerr > VT_MAX_ERRCODES) {
			VT_ERR(err, errsz, "source %s: %u error ranges, at most %d",
			       s->name, s->nerr, VT_MAX_ERRCODES);
			return -EINVAL;
		}
		if (s->nrules == 0) {
			if (s->kind == VT_SRC_DNSBL)
				pos += 1;
			else
				neg -= 1;
		}
		for (uint32_t r = 0; r < s->nrules; r++) {
			const struct vt_weight_rule *w = &s->rules[r];

			if (w->lo > w->hi) {
				VT_ERR(err, errsz, "source %s: rule %u range "
				       "0x%08x..0x%08x is empty", s->name, r,
				       w->lo, w->hi);
				return -EINVAL;
			}
			if (s->kind == VT_SRC_ALLOWLIST && w->weight > 0) {
				VT_ERR(err, errsz, "allowlist %s: weight %d must be <= 0",
				       s->name, w->weight);
				return -EINVAL;
			}
			if (w->weight > 0)
				pos += w->weight;
			else
				neg += w->weight;
		}
		for (uint32_t r = 0; r < s->nerr; r++) {
			if (s->err[r].lo > s->err[r].hi) {
				VT_ERR(err, errsz, "source %s: error range %u is empty",
				       s->name, r);
				return -EINVAL;
			}
		}
		/* Every rule of every source could match at once. */
		if (pos > INT32_MAX || neg < -(int64_t)INT32_MAX) {
			VT_ERR(err, errsz, "weights overflow: the sum of all "
			       "weights up to source %s exceeds 2^31-1", s->name);
			return -EINVAL;
		}
	}
	return 0;
}

/* vt_code_classify - listing, outside 127/8, or an error code. */
enum vt_code_class vt_code_classify(const struct vt_source *s, uint32_t code)
{
	const struct vt_code_range *r = s->err;
	uint32_t n = s->nerr;

	if ((code >> 24) != 127)
		return VT_CODE_OUTSIDE;
	if (!s->errcodes_set) {
		r = default_err;
		n = sizeof(default_err) / sizeof(default_err[0]);
	}
	for (uint32_t i = 0; i < n && i < VT_MAX_ERRCODES; i++)
		if (code >= r[i].lo && code <= r[i].hi)
			return VT_CODE_ERROR;
	return VT_CODE_LISTING;
}

/* rule_at - rule i of s, with the implicit default rule when none. */
static struct vt_weight_rule rule_at(const struct vt_source *s, uint32_t i)
{
	struct vt_weight_rule d = { 0x7f000000u, 0x7fffffffu, 1 };

	if (s->nrules == 0) {
		if (s->kind == VT_SRC_ALLOWLIST)
			d.weight = -1;
		return d;
	}
	return s->rules[i];
}

/* nrules_eff - rule count including the implicit default. */
static uint32_t nrules_eff(const struct vt_source *s)
{
	return s->nrules ? s->nrules : 1;
}

/* vt_source_contrib - add what source s says about its deciding prefix. */
void vt_source_contrib(const struct vt_source *s, const uint32_t *codes,
		       size_t ncodes, struct vt_acc *acc)
{
	if (s->kind == VT_SRC_STATIC) {
		int al = 0, dr = 0, ta = 0;

		for (size_t i = 0; i < ncodes; i++) {
			al |= codes[i] == MOAT_ACT_ALLOW;
			dr |= codes[i] == MOAT_ACT_DROP;
			ta |= codes[i] == MOAT_ACT_TARPIT;
		}
		acc->nallow += al;
		acc->ndrop += dr;
		acc->ntarpit += ta;
		return;
	}
	for (uint32_t r = 0; r < nrules_eff(s); r++) {
		struct vt_weight_rule w = rule_at(s, r);

		for (size_t i = 0; i < ncodes; i++) {
			if (codes[i] >= w.lo && codes[i] <= w.hi) {
				acc->score += w.weight;
				break;
			}
		}
	}
}

/* vt_code_weight - weight a code adds through rules no earlier code hit. */
int32_t vt_code_weight(const struct vt_source *s, uint32_t code,
		       const uint32_t *prev, size_t nprev)
{
	int32_t sum = 0;

	if (s->kind == VT_SRC_STATIC)
		return 0;
	for (uint32_t r = 0; r < nrules_eff(s); r++) {
		struct vt_weight_rule w = rule_at(s, r);
		int seen = 0;

		if (code < w.lo || code > w.hi)
			continue;
		for (size_t i = 0; i < nprev && !seen; i++)
			seen = prev[i] >= w.lo && prev[i] <= w.hi;
		if (!seen)
			sum += w.weight;
	}
	return sum;
}

/* vt_decide - ALLOW beats all; else the stronger of static and score. */
uint32_t vt_decide(const struct vt_policy *p, const struct vt_acc *acc)
{
	uint32_t a = MOAT_ACT_PASS;

	if (acc->nallow > 0)
		return MOAT_ACT_ALLOW;
	if (acc->score >= p->drop_at || acc->ndrop > 0)
		return MOAT_ACT_DROP;
	if (acc->score >= p->tarpit_at || acc->ntarpit > 0)
		a = MOAT_ACT_TARPIT;
	return a;
}

/* host_bits_clear - no bit set past plen in the 16 address bytes (for
 * IPv4, plen <= 32, this also covers the bytes past addr[3]): two 64-bit
 * masks instead of a loop, as a 10M load checks every prefix. */
static int host_bits_clear(const struct moat_prefix *p)
{
	uint64_t hi, lo, mhi, mlo;
	unsigned plen = p->plen;

	memcpy(&hi, p->addr, 8);
	memcpy(&lo, p->addr + 8, 8);
	hi = be64toh(hi);
	lo = be64toh(lo);
	mhi = plen >= 64 ? ~0ull : plen ? ~0ull << (64 - plen) : 0;
	mlo = plen >= 128 ? ~0ull : plen > 64 ? ~0ull << (128 - plen) : 0;
	return ((hi & ~mhi) | (lo & ~mlo)) == 0;
}

/* vt_prefix_check - family, plen range, host bits, padding. */
int vt_prefix_check(const struct moat_prefix *p, char *err, size_t errsz)
{
	unsigned maxlen, nbytes;

	if (p->family == MOAT_AF_INET) {
		maxlen = 32;
		nbytes = 4;
	} else if (p->family == MOAT_AF_INET6) {
		maxlen = 128;
		nbytes = 16;
	} else {
		VT_ERR(err, errsz, "unknown address family %u", p->family);
		return -EINVAL;
	}
	if (p->plen > maxlen) {
		VT_ERR(err, errsz, "prefix length %u out of range 0..%u",
		       p->plen, maxlen);
		return -EINVAL;
	}
	if (p->pad[0] || p->pad[1]) {
		VT_ERR(err, errsz, "prefix padding not zero");
		return -EINVAL;
	}
	if (host_bits_clear(p))
		return 0; /* the common case; else find what to report */
	for (unsigned i = 0; i < 16; i++) {
		int bits = (int)p->plen - (int)i * 8;
		uint8_t keep;

		if (i >= nbytes) {
			if (p->addr[i]) {
				VT_ERR(err, errsz, "IPv4 prefix with bytes past "
				       "addr[3] set");
				return -EINVAL;
			}
			continue;
		}
		keep = bits >= 8 ? 0xff : bits <= 0 ? 0 :
			(uint8_t)(0xff << (8 - bits));
		if (p->addr[i] & (uint8_t)~keep) {
			VT_ERR(err, errsz, "host bits set past /%u", p->plen);
			return -EINVAL;
		}
	}
	return 0;
}

static const char *const action_names[] = { "pass", "tarpit", "drop", "allow" };
_Static_assert(sizeof(action_names) / sizeof(action_names[0]) == MOAT_ACT__MAX,
	       "action_names out of sync with enum moat_action");

/* vt_action_name - lower-case name of an action. */
const char *vt_action_name(uint32_t act)
{
	return act < MOAT_ACT__MAX ? action_names[act] : "?";
}

/* vt_action_parse - an action's name, any case, to the action. */
int vt_action_parse(const char *s, uint32_t *act)
{
	if (!s)
		return -EINVAL;
	for (uint32_t a = 0; a < MOAT_ACT__MAX; a++) {
		if (strcasecmp(s, action_names[a]) == 0) {
			*act = a;
			return 0;
		}
	}
	return -EINVAL;
}
