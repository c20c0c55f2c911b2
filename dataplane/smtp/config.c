/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * config.c - load and validate moat-smtpd's INI file (libinih).  Every key
 * is checked when read; a bad value stops start-up with file:line and the
 * reason, like Postfix refusing a bad parameter (STYLE.md 11).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cfgerr.h"
#include "config.h"
#include "proto.h"

/* smtp_domain_ok - NUL-terminated domain check */
static int smtp_domain_ok(const char *d)
{
	return smtp_domain_valid(d, strlen(d));
}

/* config_defaults - fill every key's default */
void config_defaults(struct smtpd_config *c)
{
	memset(c, 0, sizeof(*c));
	sockaddr_parse("0.0.0.0:25", 25, &c->listen[0], &c->listen_len[0]);
	c->n_listen = 1;
	c->workers = 2;
	if (gethostname(c->hostname, sizeof(c->hostname) - 1) != 0 || !c->hostname[0])
		strcpy(c->hostname, "localhost");
	strcpy(c->user, "moat");
	strcpy(c->log_level, "info");
	sockaddr_parse("127.0.0.1:10025", 25, &c->relay, &c->relay_len);
	c->relay_connect_timeout = 10;
	c->relay_command_timeout = 60;
	c->relay_data_timeout = 300;
	c->max_line_length = 512;
	c->max_data_line = 4096;
	c->max_message_size = 26214400;
	c->max_recipients = 100;
	c->max_errors = 10;
	c->max_conn_per_ip = 20;
	c->max_conn_rate_per_ip = 0;
	c->max_sessions = 20000;
	c->timeout_command = 300;
	c->timeout_data = 300;
	c->timeout_unread = 10;
	c->greet_delay_ms = 0;
	c->spill_threshold = 1048576;
	strcpy(c->spool_dir, "/var/tmp");
	sockaddr_parse("127.0.0.1:53", 53, &c->dns_server, &c->dns_server_len);
	c->dnsbl_threshold = 1;
	c->dnsbl_timeout_ms = 2000;
	moat_prefix_parse("127.255.255.0/24", &c->dnsbl_ignore[0]);
	moat_prefix_parse("127.0.0.1/32", &c->dnsbl_ignore[1]);
	c->n_dnsbl_ignore = 2;
	c->spf = 1;
	c->spf_softfail = SPF_ACT_ACCEPT;
	c->spf_neutral = SPF_ACT_ACCEPT;
	c->spf_none = SPF_ACT_ACCEPT;
	c->spf_workers = 4;
	c->spf_timeout_ms = 5000;
	strcpy(c->filters[0], "none");
	c->n_filters = 1;
	c->scan_threshold = 5.0;
	c->scan_max_depth = 8;
	c->scan_max_parts = 256;
	c->report_ttl = 3600;
	strcpy(c->report_action, "drop");
	c->report_pregreet = 1;
	c->report_protocol = 1;
	c->report_content = 0; /* one hit from a large provider must not cut it off */
	moat_prefix_parse("127.0.0.0/8", &c->report_exempt[0]);
	moat_prefix_parse("::1/128", &c->report_exempt[1]);
	c->n_report_exempt = 2;
	c->controld_lookup = 1;
	c->controld_lookup_timeout_ms = 2000;
	config_auth_defaults(&c->auth);
	av_config_defaults(&c->av);
	strcpy(c->metrics_text, "127.0.0.1:9465");
	sockaddr_parse(c->metrics_text, 9465, &c->metrics, &c->metrics_len);
}

/* parse_net - a prefix as this file has always read one: bits set past the
 * length name the network they are in ("127.0.0.5/24" is 127.0.0.0/24), so
 * moat_prefix_parse's -EDOM is no error here; 0 or -1 */
static int parse_net(const char *s, struct moat_prefix *p)
{
	int r = moat_prefix_parse(s, p);

	return r == 0 || r == -EDOM ? 0 : -1;
}

/* sockaddr_parse - "host:port", "[v6]:port", "host" */
int sockaddr_parse(const char *s, int defport, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128];
	const char *p = NULL;
	long port = defport;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *e = strchr(s, ']');
		if (!e || (size_t)(e - s - 1) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, (size_t)(e - s - 1));
		host[e - s - 1] = '\0';
		if (e[1] == ':')
			p = e + 2;
		else if (e[1])
			return -1;
	} else {
		const char *c = strrchr(s, ':');
		if (c && strchr(s, ':') != c)
			c = NULL; /* bare IPv6 without port */
		size_t l = c ? (size_t)(c - s) : strlen(s);
		if (l >= sizeof(host))
			return -1;
		memcpy(host, s, l);
		host[l] = '\0';
		if (c)
			p = c + 1;
	}
	if (p) {
		char *end;
		port = strtol(p, &end, 10);
		if (*end || end == p || port < 1 || port > 65535)
			return -1;
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

/* parse_int - bounded decimal integer */
static int parse_int(const char *v, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || *end || end == v || x < lo || x > hi)
		return -1;
	*out = x;
	return 0;
}

/* parse_spf_action - accept/reject/tempfail */
static int parse_spf_action(const char *v, enum spf_action *a)
{
	if (!strcasecmp(v, "accept"))
		*a = SPF_ACT_ACCEPT;
	else if (!strcasecmp(v, "reject"))
		*a = SPF_ACT_REJECT;
	else if (!strcasecmp(v, "tempfail"))
		*a = SPF_ACT_TEMPFAIL;
	else
		return -1;
	return 0;
}

/* next_item - comma/space separated list iterator; returns token length */
static size_t next_item(const char **s, char *tok, size_t toksz)
{
	const char *p = *s;
	while (*p == ',' || *p == ' ' || *p == '\t')
		p++;
	size_t l = 0;
	while (p[l] && p[l] != ',' && p[l] != ' ' && p[l] != '\t')
		l++;
	*s = p + l;
	if (l >= toksz)
		return (size_t)-1;
	memcpy(tok, p, l);
	tok[l] = '\0';
	return l;
}

/* set_nets - a list of up to CFG_MAX_IGNORE prefixes into nets/n (replacing
 * the default); -1 with err on a bad prefix or too many, the list unchanged */
static int set_nets(const char *val, const char *key, struct moat_prefix *nets, int *n,
		    char *err, size_t errsz)
{
	struct moat_prefix tmp[CFG_MAX_IGNORE];
	char tok[128];
	const char *s;
	size_t l;
	int k = 0;

	for (s = val; (l = next_item(&s, tok, sizeof(tok))) != 0;) {
		if (l == (size_t)-1 || k >= CFG_MAX_IGNORE || parse_net(tok, &tmp[k])) {
			snprintf(err, errsz, "%s: bad prefix or more than %d", key, CFG_MAX_IGNORE);
			return -1;
		}
		k++;
	}
	memcpy(nets, tmp, (size_t)k * sizeof(*nets));
	*n = k;
	return 0;
}

/* parse_zone - "zone[=127.0.0.2[/n]][*weight]" (postscreen dnsbl_sites style) */
static int parse_zone(const char *tok, struct smtpd_dnsbl_zone *z)
{
	char buf[320];
	snprintf(buf, sizeof(buf), "%s", tok);
	memset(z, 0, sizeof(*z));
	z->weight = 1;
	char *star = strchr(buf, '*');
	if (star) {
		*star = '\0';
		char *end;
		z->weight = strtod(star + 1, &end);
		if (*end || end == star + 1)
			return -1;
	}
	char *eq = strchr(buf, '=');
	if (eq) {
		*eq = '\0';
		if (parse_net(eq + 1, &z->filter) != 0 || z->filter.family != MOAT_AF_INET)
			return -1;
		z->have_filter = 1;
	}
	if (!buf[0] || strlen(buf) >= sizeof(z->name))
		return -1;
	strcpy(z->name, buf);
	return 0;
}

#define SETSTR(field)                                                   \
	do {                                                            \
		if (strlen(val) >= sizeof(c->field)) {                  \
			snprintf(err, errsz, "value too long");          \
			return -1;                                      \
		}                                                       \
		strcpy(c->field, val);                                  \
		return 0;                                               \
	} while (0)

#define SETINT(field, lo, hi)                                           \
	do {                                                            \
		long x_;                                                \
		if (parse_int(val, lo, hi, &x_) != 0) {                 \
			snprintf(err, errsz, "%s must be an integer in %ld..%ld", key, (long)(lo), (long)(hi)); \
			return -1;                                      \
		}                                                       \
		c->field = x_;                                          \
		return 0;                                               \
	} while (0)

#define SETBOOL(field)                                                  \
	do {                                                            \
		if (moat_cfg_bool(val, &c->field) != 0) {               \
			snprintf(err, errsz, "%s must be yes or no", key); \
			return -1;                                      \
		}                                                       \
		return 0;                                               \
	} while (0)

/* config_set - apply one key */
int config_set(struct smtpd_config *c, const char *key, const char *val, char *err, size_t errsz)
{
	char tok[320];
	const char *s;
	size_t l;

	if (!strcmp(key, "listen")) {
		c->n_listen = 0;
		for (s = val; (l = next_item(&s, tok, sizeof(tok))) != 0;) {
			if (l == (size_t)-1 || c->n_listen >= CFG_MAX_LISTEN ||
			    sockaddr_parse(tok, 25, &c->listen[c->n_listen], &c->listen_len[c->n_listen])) {
				snprintf(err, errsz, "listen: bad address '%s' (want ip:port, [ip6]:port; at most %d)",
					 l == (size_t)-1 ? "" : tok, CFG_MAX_LISTEN);
				return -1;
			}
			c->n_listen++;
		}
		if (!c->n_listen) {
			snprintf(err, errsz, "listen: empty");
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "workers")) SETINT(workers, 1, 64);
	if (!strcmp(key, "hostname")) {
		if (!smtp_domain_ok(val)) {
			snprintf(err, errsz, "hostname: not a valid host name");
			return -1;
		}
		SETSTR(hostname);
	}
	if (!strcmp(key, "authserv_id")) SETSTR(authserv_id);
	if (!strcmp(key, "user")) SETSTR(user);
	if (!strcmp(key, "log_level")) {
		if (strcmp(val, "error") && strcmp(val, "warning") && strcmp(val, "info") && strcmp(val, "debug")) {
			snprintf(err, errsz, "log_level must be error, warning, info or debug");
			return -1;
		}
		SETSTR(log_level);
	}
	if (!strcmp(key, "syslog")) SETBOOL(use_syslog);
	if (!strcmp(key, "relay")) {
		if (sockaddr_parse(val, 25, &c->relay, &c->relay_len)) {
			snprintf(err, errsz, "relay: bad address (want ip:port)");
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "relay_helo")) SETSTR(relay_helo);
	if (!strcmp(key, "relay_connect_timeout")) SETINT(relay_connect_timeout, 1, 300);
	if (!strcmp(key, "relay_command_timeout")) SETINT(relay_command_timeout, 1, 600);
	if (!strcmp(key, "relay_data_timeout")) SETINT(relay_data_timeout, 1, 540);
	if (!strcmp(key, "local_domains")) {
		c->n_local_domains = 0;
		for (s = val; (l = next_item(&s, tok, sizeof(tok))) != 0;) {
			if (l == (size_t)-1 || l > 255 || c->n_local_domains >= CFG_MAX_DOMAINS ||
			    !smtp_domain_ok(tok)) {
				snprintf(err, errsz, "local_domains: bad domain or more than %d", CFG_MAX_DOMAINS);
				return -1;
			}
			strcpy(c->local_domains[c->n_local_domains++], tok);
		}
		return 0;
	}
	if (!strcmp(key, "recipient_map")) {
		if (val[0] && access(val, R_OK) != 0) {
			snprintf(err, errsz, "recipient_map: %s: %s", val, strerror(errno));
			return -1;
		}
		SETSTR(recipient_map);
	}
	if (!strcmp(key, "max_line_length")) SETINT(max_line_length, 512, 65536);
	if (!strcmp(key, "max_data_line")) SETINT(max_data_line, 1000, 1 << 20);
	if (!strcmp(key, "max_message_size")) SETINT(max_message_size, 1024, 1L << 31);
	if (!strcmp(key, "max_recipients")) SETINT(max_recipients, 1, 100000);
	if (!strcmp(key, "max_errors")) SETINT(max_errors, 1, 1000);
	if (!strcmp(key, "max_conn_per_ip")) SETINT(max_conn_per_ip, 0, 1000000);
	if (!strcmp(key, "max_conn_rate_per_ip")) SETINT(max_conn_rate_per_ip, 0, 1000000);
	if (!strcmp(key, "max_sessions")) SETINT(max_sessions, 1, 1000000);
	if (!strcmp(key, "timeout_command")) SETINT(timeout_command, 1, 3600);
	if (!strcmp(key, "timeout_data")) SETINT(timeout_data, 1, 3600);
	if (!strcmp(key, "timeout_unread")) SETINT(timeout_unread, 1, 3600);
	if (!strcmp(key, "greet_delay_ms")) SETINT(greet_delay_ms, 0, 60000);
	if (!strcmp(key, "spill_threshold")) SETINT(spill_threshold, 4096, 1L << 30);
	if (!strcmp(key, "spool_dir")) {
		if (access(val, W_OK | X_OK) != 0) {
			snprintf(err, errsz, "spool_dir: %s: %s", val, strerror(errno));
			return -1;
		}
		SETSTR(spool_dir);
	}
	if (!strcmp(key, "dns_server")) {
		if (sockaddr_parse(val, 53, &c->dns_server, &c->dns_server_len)) {
			snprintf(err, errsz, "dns_server: bad address (want ip[:port])");
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "dnsbl_zones")) {
		c->n_zones = 0;
		for (s = val; (l = next_item(&s, tok, sizeof(tok))) != 0;) {
			if (l == (size_t)-1 || c->n_zones >= CFG_MAX_ZONES ||
			    parse_zone(tok, &c->zones[c->n_zones])) {
				snprintf(err, errsz, "dnsbl_zones: bad entry '%s' (want zone[=127.0.0.x[/n]][*weight], at most %d)",
					 l == (size_t)-1 ? "" : tok, CFG_MAX_ZONES);
				return -1;
			}
			c->n_zones++;
		}
		return 0;
	}
	if (!strcmp(key, "dnsbl_threshold")) {
		char *end;
		c->dnsbl_threshold = strtod(val, &end);
		if (*end || end == val) {
			snprintf(err, errsz, "dnsbl_threshold: not a number");
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "dnsbl_timeout_ms")) SETINT(dnsbl_timeout_ms, 10, 60000);
	if (!strcmp(key, "dnsbl_ignore"))
		return set_nets(val, "dnsbl_ignore", c->dnsbl_ignore, &c->n_dnsbl_ignore, err, errsz);
	if (!strcmp(key, "report_exempt"))
		return set_nets(val, "report_exempt", c->report_exempt, &c->n_report_exempt, err, errsz);
	if (!strcmp(key, "spf")) SETBOOL(spf);
	if (!strcmp(key, "spf_softfail") || !strcmp(key, "spf_neutral") || !strcmp(key, "spf_none")) {
		enum spf_action *a = !strcmp(key, "spf_softfail") ? &c->spf_softfail :
				     !strcmp(key, "spf_neutral") ? &c->spf_neutral : &c->spf_none;
		if (parse_spf_action(val, a)) {
			snprintf(err, errsz, "%s must be accept, reject or tempfail", key);
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "spf_workers")) SETINT(spf_workers, 1, 256);
	if (!strcmp(key, "spf_timeout_ms")) SETINT(spf_timeout_ms, 100, 60000);
	if (!strcmp(key, "tls_cert") || !strcmp(key, "tls_key")) {
		if (val[0] && access(val, R_OK) != 0) {
			snprintf(err, errsz, "%s: %s: %s", key, val, strerror(errno));
			return -1;
		}
		if (!strcmp(key, "tls_cert"))
			SETSTR(tls_cert);
		SETSTR(tls_key);
	}
	if (!strcmp(key, "filters")) {
		c->n_filters = 0;
		for (s = val; (l = next_item(&s, tok, sizeof(tok))) != 0;) {
			if (l == (size_t)-1 || l >= 64 || c->n_filters >= CFG_MAX_FILTERS) {
				snprintf(err, errsz, "filters: bad name or more than %d", CFG_MAX_FILTERS);
				return -1;
			}
			strcpy(c->filters[c->n_filters++], tok);
		}
		return 0;
	}
	if (!strcmp(key, "scan_rules")) SETSTR(scan_rules);
	if (!strcmp(key, "scan_sa_dir")) SETSTR(scan_sa_dir);
	if (!strcmp(key, "scan_cache_dir")) SETSTR(scan_cache_dir);
	if (!strcmp(key, "scan_threshold")) {
		char *end;
		c->scan_threshold = strtod(val, &end);
		if (*end || end == val || !(c->scan_threshold > 0)) {
			snprintf(err, errsz, "scan_threshold: want a positive number");
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "scan_max_depth")) SETINT(scan_max_depth, 1, 16);
	if (!strcmp(key, "scan_max_parts")) SETINT(scan_max_parts, 1, 100000);
	if (!strcmp(key, "controld_socket")) SETSTR(controld_socket);
	/* controld_report_ttl: the key's name before report_action existed */
	if (!strcmp(key, "report_ttl") || !strcmp(key, "controld_report_ttl")) SETINT(report_ttl, 0, 30 * 86400);
	if (!strcmp(key, "controld_lookup")) SETBOOL(controld_lookup);
	if (!strcmp(key, "controld_lookup_timeout_ms")) SETINT(controld_lookup_timeout_ms, 10, 5000);
	if (!strcmp(key, "report_pregreet")) SETBOOL(report_pregreet);
	if (!strcmp(key, "report_protocol")) SETBOOL(report_protocol);
	if (!strcmp(key, "report_content")) SETBOOL(report_content);
	if (!strcmp(key, "report_action")) {
		if (strcmp(val, "drop") && strcmp(val, "tarpit")) {
			snprintf(err, errsz, "report_action must be drop or tarpit");
			return -1;
		}
		SETSTR(report_action);
	}
	if (!strcmp(key, "stats_file")) SETSTR(stats_file);
	int ar = config_auth_set(&c->auth, key, val, err, errsz); /* dkim_* dmarc_* (authcfg.c) */
	if (ar <= 0)
		return ar;
	if (!strcmp(key, "metrics_listen")) {
		c->metrics_explicit = 1;
		c->metrics_len = 0;
		c->metrics_text[0] = '\0';
		if (!strcmp(val, "off") || !val[0])
			return 0;
		if (strlen(val) >= sizeof(c->metrics_text) || sockaddr_parse(val, 9465, &c->metrics, &c->metrics_len)) {
			snprintf(err, errsz, "metrics_listen: want ip:port or off");
			return -1;
		}
		strcpy(c->metrics_text, val);
		return 0;
	}
	int avr = av_config_set(&c->av, key, val, err, errsz);
	if (avr <= 0)
		return avr;
	snprintf(err, errsz, "unknown key '%s'", key);
	return -1;
}

struct load_ctx {
	struct smtpd_config *c;
	char err[512];
	int errline;            /* an error was recorded */
};

/* on_key - one key from libinih; records the first error */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *lc = user;
	char err[400];

	if (lc->errline)
		return 1;
	if (section[0]) {
		snprintf(lc->err, sizeof(lc->err), "sections are not used ([%s])", section);
		lc->errline = 1;
		return 0;
	}
	if (config_set(lc->c, name, value, err, sizeof(err)) != 0) {
		snprintf(lc->err, sizeof(lc->err), "%s", err);
		lc->errline = 1;
		return 0;
	}
	return 1;
}

/* config_check - what libinih returned (r) plus the checks across keys;
 * path is the file's name in messages.  0 or -1 with err. */
static int config_check(struct smtpd_config *c, const char *path, int r,
			const struct load_ctx *lc, char *err, size_t errsz)
{
	if (lc->errline) {
		snprintf(err, errsz, "%s:%d: %s", path, r, lc->err);
		return -1;
	}
	if (r != 0) {
		snprintf(err, errsz, "%s:%d: syntax error", path, r);
		return -1;
	}
	if (c->n_local_domains == 0) {
		snprintf(err, errsz, "%s: local_domains is required (moat is never an open relay)", path);
		return -1;
	}
	if (!!c->tls_cert[0] != !!c->tls_key[0]) {
		snprintf(err, errsz, "%s: tls_cert and tls_key go together", path);
		return -1;
	}
	char aerr[300];
	if (config_auth_check(&c->auth, aerr, sizeof(aerr)) != 0) {
		snprintf(err, errsz, "%s: %s", path, aerr);
		return -1;
	}
	if (!c->authserv_id[0])
		snprintf(c->authserv_id, sizeof(c->authserv_id), "%s", c->hostname);
	if (!c->relay_helo[0])
		snprintf(c->relay_helo, sizeof(c->relay_helo), "%s", c->hostname);
	return 0;
}

/* config_parse_int, _bool, _net, _action, config_next_item -
 * the value parsers above, for the keys other modules own (authcfg.c) */
int config_parse_int(const char *v, long lo, long hi, long *out) { return parse_int(v, lo, hi, out); }
int config_parse_bool(const char *v, int *out) { return moat_cfg_bool(v, out); }
size_t config_next_item(const char **s, char *tok, size_t toksz) { return next_item(s, tok, toksz); }
int config_parse_net(const char *s, struct moat_prefix *p) { return parse_net(s, p); }
int config_parse_action(const char *v, enum spf_action *a) { return parse_spf_action(v, a); }

/* config_load - parse and validate */
int config_load(struct smtpd_config *c, const char *path, char *err, size_t errsz)
{
	struct load_ctx lc = { .c = c };
	FILE *f = fopen(path, "r");

	c->path = path;
	if (!f) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* ini_parse_file returns the line of the first error */
	int r = ini_parse_file(f, on_key, &lc);
	fclose(f);
	return config_check(c, path, r, &lc, err, errsz);
}

/* config_load_string - the same from memory (the fuzz target); name is
 * used as the file's name in messages and c->path */
int config_load_string(struct smtpd_config *c, const char *name, const char *text,
		       char *err, size_t errsz)
{
	struct load_ctx lc = { .c = c };

	c->path = name;
	return config_check(c, name, ini_parse_string(text, on_key, &lc), &lc, err, errsz);
}
