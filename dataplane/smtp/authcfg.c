/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * authcfg.c - the dkim_* / dmarc_* keys: sender authentication at end of
 * data (dkim.c, dmarc.c).  Checked when read, like every key (config.c).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"

/* config_auth_defaults - every key's default (docs/smtpd.md) */
void config_auth_defaults(struct smtpd_auth_config *a)
{
	memset(a, 0, sizeof(*a));
	a->max_signatures = 5;
	a->dns_timeout_ms = 5000;
	a->min_key_bits = 1024;
	a->max_key_bits = 8192;
	a->key_cache = 1024;
	a->key_cache_max_ttl = 3600;
	a->dmarc_reject = AUTH_ACT_REJECT;
	a->dmarc_quarantine = AUTH_ACT_ACCEPT;
	a->temperror = AUTH_ACT_TEMPFAIL;
	a->multiple_from = AUTH_ACT_REJECT;
	snprintf(a->public_suffix_list, sizeof(a->public_suffix_list), "%s",
		 "/usr/share/publicsuffix/public_suffix_list.dat");
}

/* parse_action - accept | reject | tempfail (config.c's words for SPF); 0 or -1 */
static int parse_action(const char *v, enum auth_action *out)
{
	enum spf_action a;

	if (config_parse_action(v, &a) != 0)
		return -1;
	*out = a == SPF_ACT_REJECT ? AUTH_ACT_REJECT : a == SPF_ACT_TEMPFAIL ? AUTH_ACT_TEMPFAIL : AUTH_ACT_ACCEPT;
	return 0;
}

static const struct {
	const char *key;
	size_t off;
	long lo, hi;
} ints[] = {
	{ "dkim_max_signatures", offsetof(struct smtpd_auth_config, max_signatures), 1, 50 },
	{ "dkim_dns_timeout_ms", offsetof(struct smtpd_auth_config, dns_timeout_ms), 100, 60000 },
	{ "dkim_min_key_bits", offsetof(struct smtpd_auth_config, min_key_bits), 0, 16384 },
	{ "dkim_max_key_bits", offsetof(struct smtpd_auth_config, max_key_bits), 1024, 16384 },
	{ "dkim_key_cache", offsetof(struct smtpd_auth_config, key_cache), 0, 1000000 },
	{ "dkim_key_cache_max_ttl", offsetof(struct smtpd_auth_config, key_cache_max_ttl), 0, 86400 },
};

static const struct {
	const char *key;
	size_t off;
} actions[] = {
	{ "dmarc_reject_action", offsetof(struct smtpd_auth_config, dmarc_reject) },
	{ "dmarc_quarantine_action", offsetof(struct smtpd_auth_config, dmarc_quarantine) },
	{ "auth_temperror_action", offsetof(struct smtpd_auth_config, temperror) },
	{ "dmarc_multiple_from_action", offsetof(struct smtpd_auth_config, multiple_from) },
};

/* config_auth_set - one key of this module; 1 when the key is not one */
int config_auth_set(struct smtpd_auth_config *a, const char *key, const char *val, char *err, size_t errsz)
{
	if (!strcmp(key, "dkim") || !strcmp(key, "dmarc")) {
		if (config_parse_bool(val, !strcmp(key, "dkim") ? &a->dkim : &a->dmarc) != 0) {
			snprintf(err, errsz, "%s must be yes or no", key);
			return -1;
		}
		return 0;
	}
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		long x;
		if (strcmp(key, ints[i].key))
			continue;
		if (config_parse_int(val, ints[i].lo, ints[i].hi, &x) != 0) {
			snprintf(err, errsz, "%s must be an integer in %ld..%ld", key, ints[i].lo, ints[i].hi);
			return -1;
		}
		*(int *)((char *)a + ints[i].off) = (int)x;
		return 0;
	}
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		if (strcmp(key, actions[i].key))
			continue;
		if (parse_action(val, (enum auth_action *)((char *)a + actions[i].off)) != 0) {
			snprintf(err, errsz, "%s must be accept, reject or tempfail", key);
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "dmarc_public_suffix_list")) {
		if (strlen(val) >= sizeof(a->public_suffix_list)) {
			snprintf(err, errsz, "value too long");
			return -1;
		}
		strcpy(a->public_suffix_list, val);
		return 0;
	}
	if (!strcmp(key, "dmarc_trusted_forwarders")) {
		char tok[128];
		size_t l;
		a->n_forwarders = 0;
		for (const char *s = val; (l = config_next_item(&s, tok, sizeof(tok))) != 0;) {
			if (l == (size_t)-1 || a->n_forwarders >= AUTH_MAX_FORWARDERS ||
			    config_parse_net(tok, &a->forwarders[a->n_forwarders]) != 0) {
				snprintf(err, errsz, "dmarc_trusted_forwarders: bad prefix or more than %d",
					 AUTH_MAX_FORWARDERS);
				return -1;
			}
			a->n_forwarders++;
		}
		return 0;
	}
	return 1;
}

/* config_auth_check - dmarc needs dkim, and a readable public suffix list */
int config_auth_check(const struct smtpd_auth_config *a, char *err, size_t errsz)
{
	if (a->dmarc && !a->dkim) {
		snprintf(err, errsz, "dmarc = yes needs dkim = yes (DMARC uses the DKIM results)");
		return -1;
	}
	if (a->min_key_bits > a->max_key_bits) {
		snprintf(err, errsz, "dkim_min_key_bits is above dkim_max_key_bits");
		return -1;
	}
	if (a->dmarc && access(a->public_suffix_list, R_OK) != 0) {
		snprintf(err, errsz, "dmarc_public_suffix_list: %s: not readable (Debian package publicsuffix)",
			 a->public_suffix_list);
		return -1;
	}
	return 0;
}
