/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * authcfg.h - the dkim_* / dmarc_* keys of moat-smtpd (authcfg.c): sender
 * authentication at end of data (docs/smtpd.md "DKIM and DMARC").
 */
#ifndef MOAT_SMTP_AUTHCFG_H
#define MOAT_SMTP_AUTHCFG_H

#include "prefix.h"

#define AUTH_MAX_FORWARDERS 32

/* what to do with a message whose authentication came out a given way */
enum auth_action { AUTH_ACT_ACCEPT = 0, AUTH_ACT_REJECT, AUTH_ACT_TEMPFAIL };

struct smtpd_auth_config {
	int dkim;                   /* verify DKIM signatures (no) */
	int dmarc;                  /* evaluate DMARC (no; needs dkim) */
	int max_signatures;         /* signatures evaluated per message (5) */
	int dns_timeout_ms;         /* wait for keys/records after the final dot (5000) */
	int min_key_bits;           /* smaller RSA keys: permerror (1024) */
	int max_key_bits;           /* larger keys are not used: permerror (8192) */
	int key_cache;              /* cached TXT answers per worker (1024) */
	int key_cache_max_ttl;      /* s, cap on a record's TTL in the cache (3600) */
	enum auth_action dmarc_reject;      /* p=reject failure (reject) */
	enum auth_action dmarc_quarantine;  /* p=quarantine failure (accept) */
	enum auth_action multiple_from;     /* more than one From field (reject) */
	enum auth_action temperror;         /* DNS temporary error deciding DMARC (tempfail) */
	char public_suffix_list[4096];
	struct moat_prefix forwarders[AUTH_MAX_FORWARDERS]; /* exempt from a DMARC refusal */
	int n_forwarders;
};

struct smtpd_config;
/* config_auth_defaults - every dkim_* and dmarc_* default */
void config_auth_defaults(struct smtpd_auth_config *a);
/* config_auth_set - one key: 0 taken, -1 bad value (reason in err),
 * 1 not a key of this module */
int config_auth_set(struct smtpd_auth_config *a, const char *key, const char *val, char *err, size_t errsz);
/* config_auth_check - the keys together, after loading; 0 or -1 with reason */
int config_auth_check(const struct smtpd_auth_config *a, char *err, size_t errsz);

#endif /* MOAT_SMTP_AUTHCFG_H */
