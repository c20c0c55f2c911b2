/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * config.h - moat-smtpd configuration: every key, its default, and the
 * validated values (docs/smtpd.md lists the same keys).
 */
#ifndef MOAT_SMTP_CONFIG_H
#define MOAT_SMTP_CONFIG_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "authcfg.h"
#include "av.h"
#include "prefix.h"

#define CFG_MAX_LISTEN 4
#define CFG_MAX_DOMAINS 64
#define CFG_MAX_ZONES 16
#define CFG_MAX_IGNORE 16
#define CFG_MAX_FILTERS 8

enum spf_action { SPF_ACT_ACCEPT = 0, SPF_ACT_REJECT, SPF_ACT_TEMPFAIL };

/* one dnsbl_zones entry: a DNSBL moat-smtpd asks itself at connect
 * (moat-controld's zones are its own struct cfg_zone, control/config.h) */
struct smtpd_dnsbl_zone {
	char name[256];
	double weight;
	int have_filter;
	struct moat_prefix filter;  /* only answers inside count (e.g. 127.0.0.2/32) */
};

struct smtpd_config {
	const char *path;
	struct sockaddr_storage listen[CFG_MAX_LISTEN];
	socklen_t listen_len[CFG_MAX_LISTEN];
	int n_listen;
	int workers;
	char hostname[256];
	char authserv_id[256];
	char user[64];
	char log_level[16];
	int use_syslog;

	struct sockaddr_storage relay;
	socklen_t relay_len;
	char relay_helo[256];
	int relay_connect_timeout;  /* s */
	int relay_command_timeout;  /* s */
	int relay_data_timeout;     /* s, final reply after "." */

	char local_domains[CFG_MAX_DOMAINS][256];
	int n_local_domains;
	char recipient_map[4096];

	int max_line_length;
	int max_data_line;
	uint64_t max_message_size;
	int max_recipients;
	int max_errors;
	int max_conn_per_ip;
	int max_conn_rate_per_ip;  /* new connections per minute per IP, 0 = off */
	int max_sessions;
	int timeout_command;       /* s */
	int timeout_data;          /* s */
	int timeout_unread;        /* s a session may leave OBUF_HIGH of replies unread */
	int greet_delay_ms;
	size_t spill_threshold;
	char spool_dir[4096];

	struct sockaddr_storage dns_server;
	socklen_t dns_server_len;
	struct smtpd_dnsbl_zone zones[CFG_MAX_ZONES];
	int n_zones;
	double dnsbl_threshold;
	int dnsbl_timeout_ms;
	struct moat_prefix dnsbl_ignore[CFG_MAX_IGNORE];
	int n_dnsbl_ignore;

	int spf;
	enum spf_action spf_softfail, spf_neutral, spf_none;
	int spf_workers;
	int spf_timeout_ms;

	char tls_cert[4096];
	char tls_key[4096];

	char filters[CFG_MAX_FILTERS][64];
	int n_filters;

	/* the "scan" content filter (docs/content-gate.md) */
	char scan_rules[4096];      /* native rules file, required with scan */
	char scan_sa_dir[4096];     /* SpamAssassin .cf directory, "" = none */
	char scan_cache_dir[4096];  /* compiled database cache, "" = none */
	double scan_threshold;
	int scan_max_depth;
	int scan_max_parts;

	char controld_socket[108];
	int report_ttl;               /* s sent with smtp.report, 0 = controld's default */
	char report_action[8];        /* drop | tarpit */
	int report_pregreet;          /* report pregreet refusals (kind pregreet) */
	int report_protocol;          /* report too_many_errors closes (kind protocol) */
	int report_content;           /* report content refusals (kind content) */
	struct moat_prefix report_exempt[CFG_MAX_IGNORE]; /* never reported */
	int n_report_exempt;
	int controld_lookup;          /* ask moat-controld's verdict at connect */
	int controld_lookup_timeout_ms;

	char stats_file[4096];

	struct smtpd_auth_config auth; /* dkim_* / dmarc_* (authcfg.h) */
	struct smtpd_av_config av;   /* clamd_* keys (av_proto.c) */

	struct sockaddr_storage metrics;  /* Prometheus listener, len 0 = off */
	socklen_t metrics_len;
	char metrics_text[64];
	int metrics_explicit;             /* set in the file: a bind failure is fatal */
};

/* config_defaults - fill every key's default */
void config_defaults(struct smtpd_config *c);
/* config_load - parse path over the defaults and validate; 0, or -1 with
 * "file:line: reason" in err */
int config_load(struct smtpd_config *c, const char *path, char *err, size_t errsz);
/* config_load_string - config_load from memory; name stands for the file */
int config_load_string(struct smtpd_config *c, const char *name, const char *text,
		       char *err, size_t errsz);
/* config_set - one key (used by the loader and tests); 0 or -1 with reason */
int config_set(struct smtpd_config *c, const char *key, const char *val, char *err, size_t errsz);
/* sockaddr_parse - "host:port", "[v6]:port", or host alone with defport */
int sockaddr_parse(const char *s, int defport, struct sockaddr_storage *ss, socklen_t *len);

/* config_parse_int / _bool / _net / _action, config_next_item - config.c's value
 * parsers for keys other files own; 0 or -1 (next_item: token length,
 * 0 at the end, (size_t)-1 when too long) */
int config_parse_int(const char *v, long lo, long hi, long *out);
int config_parse_bool(const char *v, int *out);
size_t config_next_item(const char **s, char *tok, size_t toksz);
int config_parse_net(const char *s, struct moat_prefix *p);
/* config_parse_action - accept | reject | tempfail */
int config_parse_action(const char *v, enum spf_action *a);

#endif /* MOAT_SMTP_CONFIG_H */
