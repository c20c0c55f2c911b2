/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_sa.c - the SpamAssassin importer of the content gate: reads every
 * *.cf of a directory as SpamAssassin would (last definition wins, scores,
 * if/ifplugin, ReplaceTags), and turns each body/rawbody/full/header/uri/
 * meta rule it can express into a scan_rule of the db being loaded, metas
 * as Hyperscan logical combinations.  A rule it cannot express (Perl-only
 * regex, an eval, a pattern too large) is recorded as a scan_skip with the
 * reason, never guessed at.  scan_rules.c calls scan_sa_load between the
 * native rules file and compilation.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "scan.h"
#include "scan_eval.h"
#include "scan_rules.h"

#define META_EXPAND_MAX 65536
/* where SpamAssassin's site configuration (its .pre files) lives */
#ifndef SA_SITE_DIR
#define SA_SITE_DIR "/etc/spamassassin"
#endif
#define META_DEPTH_MAX 16
#define META_NEST_MAX 64 /* "(" and "!" deep in one expression: the parse recurses */

/* skip_add - record a rule not imported */
static int skip_add(struct scan_db *d, const char *id, const char *src,
		    int scored, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int skip_add(struct scan_db *d, const char *id, const char *src,
		    int scored, const char *fmt, ...)
{
	va_list ap;
	struct scan_skip *s;

	if (scan_grow(&d->skips, d->nskips, &d->skipcap, sizeof(d->skips[0])) < 0)
		return -ENOMEM;
	s = &d->skips[d->nskips];
	memset(s, 0, sizeof(*s));
	va_start(ap, fmt);
	if (vasprintf(&s->reason, fmt, ap) < 0)
		s->reason = NULL;
	va_end(ap);
	s->id = strdup(id);
	s->src = strdup(src ? src : "");
	s->scored = scored;
	if (!s->reason || !s->id || !s->src) {
		free(s->reason);
		free(s->id);
		free(s->src);
		return -ENOMEM;
	}
	d->nskips++;
	return 0;
}

/* compiles_alone - does expr compile as a streaming database by itself?
 * hs_expression_info does not check resource limits ("Pattern is too
 * large"), which the tag-expanded SpamAssassin patterns can reach */
static int compiles_alone(const char *expr, unsigned flags, char *msg, size_t msgsz)
{
	hs_database_t *db = NULL;
	hs_compile_error_t *ce = NULL;

	if (hs_compile(expr, flags, HS_MODE_STREAM, NULL, &db, &ce) != HS_SUCCESS) {
		snprintf(msg, msgsz, "%s", ce && ce->message ? ce->message : "invalid");
		hs_free_compile_error(ce);
		return -1;
	}
	hs_free_database(db);
	return 0;
}

/* One SA rule definition as read (last definition wins, as in SA). */
struct sa_def {
	char *name;
	char *kind;      /* body rawbody full header uri meta */
	char *arg;       /* everything after the name */
	char *src;
	double score;
	int has_score;
	int state;       /* 0 unresolved, 1 resolving, 2 imported, 3 skipped */
	long rule;       /* index in db when imported */
	char *why;       /* skip reason */
	int multiple;    /* tflags multiple: its value counts hits */
	int nice;        /* tflags nice: the default score is negative */
	int net;         /* tflags net or learn: never runs without network
			  * tests and Bayes (-L, score set 0) */
	int netv;        /* net, or a meta over one (0 unknown, 1 no, 2 yes) */
	int pf;          /* imported as prefilter + PCRE2 confirmation */
	int nonbin;      /* imported meta whose value may exceed 1 (a sum) */
	char **sum;      /* a meta that is a bare sum of 0/1 terms: the terms */
	size_t nsum;
};

/* ReplaceTags settings: replace_tag, replace_pre, replace_post,
 * replace_inter (name -> regex text; the last definition wins) */
enum { RT_TAG = 0, RT_PRE, RT_POST, RT_INTER, RT_N };

struct sa_kv {
	char *name;
	char *val;
};

struct sa_set {
	struct sa_def *v;
	size_t n, cap;
	char **replace;  /* names listed in replace_rules */
	size_t nreplace, replcap;
	struct sa_kv *rt[RT_N];
	size_t nrt[RT_N], rtcap[RT_N];
	const char *cache_dir; /* where compile verdicts are remembered */
	char *verdicts;        /* that file's content, read once */
	int verdicts_read;
	char **plugins;        /* loadplugin / tryplugin names */
	size_t nplugins, plugcap;
	int lists;             /* some welcomelist/blocklist entry is defined */
	char *freemail;        /* freemail_domains words, blank separated */
	size_t fmlen;
	int fm_welcome;        /* a freemail_welcomelist entry is defined */
	int trust_kw;          /* trusted_networks, internal_networks or
				* msa_networks is configured */
	char origip[512];      /* the originating_ip_headers, blank separated */
	char *addrlist;        /* enlist_addrlist entries: "NAME glob\n"... */
	size_t allen;
};

/* Debian's 10_default_prefs.cf originating_ip_headers: the ones
 * scan_received.c reads */
static const char sa_origip_default[] =
	" X-Yahoo-Post-IP X-Originating-IP X-Apparently-From X-SenderIP X-AOL-IP"
	" X-MS-Exchange-CrossTenant-OriginalAttributedTenantConnectingIp";

/* sa_eval_flags - SCAN_EVAL_* of the set */
static int sa_eval_flags(const struct sa_set *s)
{
	return (s->lists ? SCAN_EVAL_LISTS : 0) |
	       (s->trust_kw || strcmp(s->origip, sa_origip_default) != 0 ? SCAN_EVAL_TRUST_CFG : 0);
}

/* sa_list_kw - a configuration line that fills a list WLBLEval reads
 * (welcomelist_from, blocklist_to, enlist_uri_host (BLOCK) ...) */
static int sa_list_kw(const char *kw, const char *rest)
{
	static const char *const pre[] = { "welcomelist_", "whitelist_", "blocklist_",
					   "blacklist_", "unwelcomelist_", "unwhitelist_",
					   "unblocklist_", "unblacklist_" };

	if (strcmp(kw, "more_spam_to") == 0 || strcmp(kw, "all_spam_to") == 0)
		return 1;
	if (strcmp(kw, "enlist_uri_host") == 0 || strcmp(kw, "delist_uri_host") == 0)
		return strstr(rest, "(BLOCK)") || strstr(rest, "(WELCOME)");
	for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]); i++)
		if (strncmp(kw, pre[i], strlen(pre[i])) == 0)
			return 1;
	return 0;
}

/* sa_find - definition by name */
static struct sa_def *sa_find(struct sa_set *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->n; i++)
		if (strlen(s->v[i].name) == len && memcmp(s->v[i].name, name, len) == 0)
			return &s->v[i];
	return NULL;
}

/* sa_get - definition by name, created when absent */
static struct sa_def *sa_get(struct sa_set *s, const char *name)
{
	struct sa_def *e = sa_find(s, name, strlen(name));

	if (e)
		return e;
	if (scan_grow(&s->v, s->n, &s->cap, sizeof(s->v[0])) < 0)
		return NULL;
	e = &s->v[s->n];
	memset(e, 0, sizeof(*e));
	e->name = strdup(name);
	if (!e->name)
		return NULL;
	s->n++;
	return e;
}

/* sa_free - release the parse state */
static void sa_free(struct sa_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].name);
		free(s->v[i].kind);
		free(s->v[i].arg);
		free(s->v[i].src);
		free(s->v[i].why);
		for (size_t k = 0; k < s->v[i].nsum; k++)
			free(s->v[i].sum[k]);
		free(s->v[i].sum);
	}
	for (size_t i = 0; i < s->nreplace; i++)
		free(s->replace[i]);
	for (int k = 0; k < RT_N; k++) {
		for (size_t i = 0; i < s->nrt[k]; i++) {
			free(s->rt[k][i].name);
			free(s->rt[k][i].val);
		}
		free(s->rt[k]);
	}
	free(s->v);
	free(s->replace);
	free(s->verdicts);
	for (size_t i = 0; i < s->nplugins; i++)
		free(s->plugins[i]);
	free(s->plugins);
	free(s->freemail);
	free(s->addrlist);
}

/* sa_rt_get - a ReplaceTags value by name, NULL when undefined */
static const char *sa_rt_get(const struct sa_set *s, int k, const char *name, size_t len)
{
	for (size_t i = 0; i < s->nrt[k]; i++)
		if (strlen(s->rt[k][i].name) == len && memcmp(s->rt[k][i].name, name, len) == 0)
			return s->rt[k][i].val;
	return NULL;
}

/* sa_rt_set - define (or redefine) a ReplaceTags value; 0 or -ENOMEM */
static int sa_rt_set(struct sa_set *s, int k, const char *name, const char *val)
{
	char *v = strdup(val);

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < s->nrt[k]; i++)
		if (strcmp(s->rt[k][i].name, name) == 0) {
			free(s->rt[k][i].val);
			s->rt[k][i].val = v;
			return 0;
		}
	if (scan_grow(&s->rt[k], s->nrt[k], &s->rtcap[k], sizeof(s->rt[k][0])) < 0 ||
	    !(s->rt[k][s->nrt[k]].name = strdup(name))) {
		free(v);
		return -ENOMEM;
	}
	s->rt[k][s->nrt[k]++].val = v;
	return 0;
}

/* sa_strip_comment - cut at the first unescaped '#' */
static void sa_strip_comment(char *line)
{
	for (char *p = line; *p; p++) {
		if (*p == '\\' && p[1]) {
			p++;
			continue;
		}
		if (*p == '#') {
			*p = 0;
			break;
		}
	}
}

/* SpamAssassin's version (Debian 12's 4.0.1) for "if (version >= ...)" */
#define SA_VERSION 4.000001

/* Mail::SpamAssassin::Conf features and plugin methods of that version
 * that "if can(...)" asks for: Conf's own, or "Plugin::Name::method" (true
 * when the plugin is loaded too) */
static const char *const sa_can_list[] = {
	"Conf::feature_originating_ip_headers", "Conf::feature_dns_local_ports_permit_avoid",
	"Conf::feature_bayes_auto_learn_on_error", "Conf::feature_uri_host_listed",
	"Conf::feature_yesno_takes_args", "Conf::feature_bug6558_free", "Conf::feature_edns",
	"Conf::feature_dns_query_restriction", "Conf::feature_registryboundaries",
	"Conf::feature_geodb", "Conf::feature_dns_block_rule", "Conf::feature_compile_regexp",
	"Conf::feature_meta_rules_matching", "Conf::feature_subjprefix",
	"Conf::feature_bayes_stopwords", "Conf::feature_get_host",
	"Conf::feature_blocklist_welcomelist", "Conf::feature_welcomelist_blocklist",
	"Conf::feature_header_address_parser", "Conf::feature_local_tests_only",
	"Conf::feature_header_first_last", "Conf::feature_header_match_many",
	"Conf::feature_capture_rules", "Conf::has_tflags_nosubject", "Conf::has_tflags_nolog",
	"Conf::perl_min_version_5010000",
	"Plugin::ASN::has_asn_lookup_ipv6", "Plugin::ASN::has_asn_geodb",
	"Plugin::ASN::has_check_asn", "Plugin::ASN::has_check_asn_tag",
	"Plugin::AskDNS::has_tag_header", "Plugin::BodyEval::has_check_body_length",
	"Plugin::BodyEval::has_plaintext_body_sig_ratio", "Plugin::DKIM::has_arc",
	"Plugin::URIDNSBL::has_tflags_domains_only", "Plugin::URIDNSBL::has_tflags_ips_only",
	"Plugin::URIDNSBL::has_uridnsbl_for_a",
	"Plugin::MIMEEval::has_check_abundant_unicode_ratio",
	"Plugin::MIMEEval::has_check_for_ascii_text_illegal",
	"Plugin::SPF::has_check_for_spf_errors",
	"Plugin::DecodeShortURLs::has_short_url", "Plugin::DecodeShortURLs::has_get",
	"Plugin::DecodeShortURLs::has_short_url_redir",
	"Plugin::HashBL::has_hashbl_bodyre", "Plugin::HashBL::has_hashbl_emails",
	"Plugin::HashBL::has_hashbl_uris",
};

/* sa_plugin_loaded - was this plugin loaded (loadplugin/tryplugin)? */
static int sa_plugin_loaded(const struct sa_set *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->nplugins; i++)
		if (strlen(s->plugins[i]) == len && memcmp(s->plugins[i], name, len) == 0)
			return 1;
	return 0;
}

/* sa_can - SpamAssassin's can(Package::method) for the version above */
static int sa_can(const struct sa_set *s, const char *name, size_t len)
{
	static const char pfx[] = "Mail::SpamAssassin::";

	if (len <= sizeof(pfx) - 1 || strncmp(name, pfx, sizeof(pfx) - 1) != 0)
		return 0;
	name += sizeof(pfx) - 1;
	len -= sizeof(pfx) - 1;
	for (size_t i = 0; i < sizeof(sa_can_list) / sizeof(sa_can_list[0]); i++) {
		if (strlen(sa_can_list[i]) != len || memcmp(sa_can_list[i], name, len) != 0)
			continue;
		if (strncmp(name, "Plugin::", 8) != 0)
			return 1;
		const char *m = name + len;

		while (m > name && !(m[-1] == ':' && m[-2] == ':'))
			m--;
		return sa_plugin_loaded(s, name - (sizeof(pfx) - 1),
					(size_t)(m - 2 - name) + sizeof(pfx) - 1);
	}
	return 0;
}

struct cparse {
	const struct sa_set *s;
	const char *p;
	int bad;
};

static double cp_or(struct cparse *c);

/* cp_ws - skip blanks; the next character */
static char cp_ws(struct cparse *c)
{
	while (*c->p == ' ' || *c->p == '\t')
		c->p++;
	return *c->p;
}

/* cp_call - "plugin(Name)" / "can(Name)": the name's extent */
static int cp_call(struct cparse *c, const char **n, size_t *len)
{
	if (cp_ws(c) != '(')
		return c->bad = 1, -1;
	c->p++;
	cp_ws(c);
	*n = c->p;
	while (*c->p && *c->p != ')' && *c->p != ' ')
		c->p++;
	*len = (size_t)(c->p - *n);
	if (cp_ws(c) != ')')
		return c->bad = 1, -1;
	c->p++;
	return 0;
}

/* cp_atom - "!" atom, "(" expr ")", version, plugin(), can(), a number */
static double cp_atom(struct cparse *c)
{
	char ch = cp_ws(c);
	const char *n;
	size_t len;

	if (ch == '!') {
		c->p++;
		return !cp_atom(c);
	}
	if (ch == '(') {
		double v;

		c->p++;
		v = cp_or(c);
		if (cp_ws(c) != ')')
			c->bad = 1;
		else
			c->p++;
		return v;
	}
	if (strncmp(c->p, "version", 7) == 0) {
		c->p += 7;
		return SA_VERSION;
	}
	if (strncmp(c->p, "perl_version", 12) == 0) {
		c->p += 12;
		return 5.036000; /* Debian 12's perl */
	}
	if (strncmp(c->p, "local_tests_only", 16) == 0) {
		c->p += 16;
		return 1; /* moat runs no network test */
	}
	if (strncmp(c->p, "plugin", 6) == 0) {
		c->p += 6;
		return cp_call(c, &n, &len) < 0 ? 0 : sa_plugin_loaded(c->s, n, len);
	}
	if (strncmp(c->p, "can", 3) == 0) {
		c->p += 3;
		return cp_call(c, &n, &len) < 0 ? 0 : sa_can(c->s, n, len);
	}
	char *end;
	double v = strtod(c->p, &end);

	if (end == c->p)
		c->bad = 1;
	c->p = end;
	return v;
}

/* cp_cmp - atom [(>= <= > < == !=) atom] */
static double cp_cmp(struct cparse *c)
{
	double a = cp_atom(c), b;
	char ch = cp_ws(c);

	if ((ch == '>' || ch == '<' || ch == '=' || ch == '!') && c->p[1] == '=') {
		c->p += 2;
		b = cp_atom(c);
		return ch == '>' ? a >= b : ch == '<' ? a <= b : ch == '=' ? a == b : a != b;
	}
	if (ch == '>' || ch == '<') {
		c->p++;
		b = cp_atom(c);
		return ch == '>' ? a > b : a < b;
	}
	return a;
}

/* cp_chain - cmp ("&&" cmp)* for and=1, chain(1) ("||" chain(1))* else */
static double cp_chain(struct cparse *c, int and)
{
	char op = and ? '&' : '|';
	double v = and ? cp_cmp(c) : cp_chain(c, 1);

	while (cp_ws(c) == op && c->p[1] == op) {
		c->p += 2;
		double w = and ? cp_cmp(c) : cp_chain(c, 1);
		v = and ? v && w : v || w;
	}
	return v;
}

/* cp_or - the full condition */
static double cp_or(struct cparse *c)
{
	return cp_chain(c, 0);
}

/* sa_cond_true - an "if"/"ifplugin" condition as SpamAssassin 4.0.1
 * evaluates it with the plugins the configuration loads; one it cannot
 * read is false (SpamAssassin warns and skips the block too) */
static int sa_cond_true(const struct sa_set *s, const char *kw, const char *rest)
{
	struct cparse c = { .s = s, .p = rest };
	double v;

	if (strcmp(kw, "ifplugin") == 0) {
		size_t n = 0;

		while (rest[n] && rest[n] != ' ' && rest[n] != '\t')
			n++;
		return sa_plugin_loaded(s, rest, n);
	}
	v = cp_or(&c);
	return !c.bad && cp_ws(&c) == 0 && v != 0;
}

/* sa_read_plugins - the loadplugin/tryplugin lines of a file, whatever
 * block they are in (SpamAssassin reads .pre files first, where Debian
 * loads every plugin); 0 or -ENOMEM */
static int sa_read_plugins(struct sa_set *s, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;

	if (!f)
		return 0;
	while (rc == 0 && getline(&line, &cap, f) >= 0) {
		char *p = line, *kw, *name;

		sa_strip_comment(line);
		for (size_t n = strlen(line); n && isspace((unsigned char)line[n - 1]);)
			line[--n] = 0;
		kw = scan_next_word(&p);
		if (!kw || (strcmp(kw, "loadplugin") && strcmp(kw, "tryplugin")) ||
		    !(name = scan_next_word(&p)) || sa_plugin_loaded(s, name, strlen(name)))
			continue;
		if (scan_grow(&s->plugins, s->nplugins, &s->plugcap, sizeof(char *)) < 0 ||
		    !(s->plugins[s->nplugins] = strdup(name)))
			rc = -ENOMEM;
		else
			s->nplugins++;
	}
	free(line);
	fclose(f);
	return rc;
}

/* sa_parse_file - read one .cf file's rule, score and conditional lines */
static int sa_parse_file(struct sa_set *s, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	unsigned ln = 0;
	int cond[64], ncond = 0, active = 1, rc = 0;
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) >= 0) {
		char *p = line, *kw, *name;

		ln++;
		sa_strip_comment(line);
		for (size_t n = strlen(line); n && (line[n - 1] == '\n' ||
			line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t');)
			line[--n] = 0;
		kw = scan_next_word(&p);
		if (!kw)
			continue;
		if (strcmp(kw, "if") == 0 || strcmp(kw, "ifplugin") == 0) {
			if (ncond < 64)
				cond[ncond++] = sa_cond_true(s, kw, p);
			goto recompute;
		}
		if (strcmp(kw, "else") == 0) {
			if (ncond)
				cond[ncond - 1] = !cond[ncond - 1];
			goto recompute;
		}
		if (strcmp(kw, "endif") == 0) {
			if (ncond)
				ncond--;
			goto recompute;
		}
		if (!active)
			continue;
		if (strcmp(kw, "replace_rules") == 0) {
			while ((name = scan_next_word(&p))) {
				if (scan_grow(&s->replace, s->nreplace, &s->replcap, sizeof(char *)) < 0 ||
				    !(s->replace[s->nreplace] = strdup(name))) {
					rc = -ENOMEM;
					goto out;
				}
				s->nreplace++;
			}
			continue;
		}
		if (strncmp(kw, "replace_", 8) == 0) {
			static const char *const rtkw[RT_N] = {
				"replace_tag", "replace_pre", "replace_post", "replace_inter",
			};
			for (int k = 0; k < RT_N; k++) {
				if (strcmp(kw, rtkw[k]) != 0 || !(name = scan_next_word(&p)))
					continue;
				while (*p == ' ' || *p == '\t')
					p++;
				if (*p && sa_rt_set(s, k, name, p) < 0) {
					rc = -ENOMEM;
					goto out;
				}
			}
			continue;
		}
		if (sa_list_kw(kw, p)) {
			s->lists = 1;
			continue;
		}
		if (strcmp(kw, "trusted_networks") == 0 || strcmp(kw, "internal_networks") == 0 ||
		    strcmp(kw, "msa_networks") == 0) {
			s->trust_kw = 1;
			continue;
		}
		if (strcmp(kw, "enlist_addrlist") == 0) { /* (NAME) glob... */
			const char *e = strchr(p, ')');
			const char *w;

			while (*p == ' ' || *p == '\t')
				p++;
			if (*p != '(' || !e)
				continue;
			char list[64];

			snprintf(list, sizeof(list), "%.*s", (int)(e - p - 1), p + 1);
			p = (char *)e + 1;
			while ((w = scan_next_word(&p))) {
				size_t wl = strlen(w), ll = strlen(list);
				char *nb = realloc(s->addrlist, s->allen + ll + wl + 3);

				if (!nb) {
					rc = -ENOMEM;
					goto out;
				}
				s->addrlist = nb;
				s->allen += (size_t)sprintf(s->addrlist + s->allen, "%s ", list);
				for (size_t i = 0; i < wl; i++)
					s->addrlist[s->allen++] = (char)tolower((unsigned char)w[i]);
				s->addrlist[s->allen++] = '\n';
				s->addrlist[s->allen] = 0;
			}
			continue;
		}
		if (strcmp(kw, "clear_originating_ip_headers") == 0) {
			s->origip[0] = 0;
			continue;
		}
		if (strcmp(kw, "originating_ip_headers") == 0) {
			const char *w;

			while ((w = scan_next_word(&p))) {
				size_t l = strlen(s->origip);

				snprintf(s->origip + l, sizeof(s->origip) - l, " %s", w);
			}
			continue;
		}
		if (strcmp(kw, "freemail_welcomelist") == 0 || strcmp(kw, "freemail_whitelist") == 0) {
			s->fm_welcome = 1;
			continue;
		}
		if (strcmp(kw, "freemail_domains") == 0) {
			size_t n = strlen(p);
			char *nb = realloc(s->freemail, s->fmlen + n + 2);

			if (!nb) {
				rc = -ENOMEM;
				goto out;
			}
			s->freemail = nb;
			s->freemail[s->fmlen++] = ' ';
			memcpy(s->freemail + s->fmlen, p, n + 1);
			s->fmlen += n;
			continue;
		}
		if (strcmp(kw, "tflags") == 0) {
			struct sa_def *e;
			char *w;

			if (!(name = scan_next_word(&p)))
				continue;
			if (!(e = sa_get(s, name))) {
				rc = -ENOMEM;
				goto out;
			}
			e->multiple = e->nice = e->net = 0; /* the last tflags line counts, as in SA */
			while ((w = scan_next_word(&p))) {
				e->multiple |= strcmp(w, "multiple") == 0;
				e->nice |= strcmp(w, "nice") == 0;
				e->net |= strcmp(w, "net") == 0 || strcmp(w, "learn") == 0;
			}
			continue;
		}
		if (strcmp(kw, "score") == 0) {
			char *v, *end;
			struct sa_def *e;

			name = scan_next_word(&p);
			v = name ? scan_next_word(&p) : NULL;
			if (!v)
				continue;
			double sc = strtod(v, &end);
			if (*end)
				continue;
			if (!(e = sa_get(s, name))) {
				rc = -ENOMEM;
				goto out;
			}
			e->score = sc; /* score set 0: no Bayes, no network tests */
			e->has_score = 1;
			continue;
		}
		if (strcmp(kw, "body") && strcmp(kw, "rawbody") && strcmp(kw, "full") &&
		    strcmp(kw, "header") && strcmp(kw, "uri") && strcmp(kw, "meta") &&
		    strcmp(kw, "mimeheader"))
			continue;
		name = scan_next_word(&p);
		if (!name)
			continue;
		while (*p == ' ' || *p == '\t')
			p++;
		struct sa_def *e = sa_get(s, name);
		if (!e) {
			rc = -ENOMEM;
			goto out;
		}
		free(e->kind);
		free(e->arg);
		free(e->src);
		e->kind = strdup(kw);
		e->arg = strdup(p);
		e->src = scan_srcloc(base, ln);
		if (!e->kind || !e->arg || !e->src) {
			rc = -ENOMEM;
			goto out;
		}
		continue;
recompute:
		active = 1;
		for (int i = 0; i < ncond; i++)
			active &= cond[i];
	}
out:
	free(line);
	fclose(f);
	return rc;
}

/* sa_regex - split a Perl match "/re/flags" or "m{re}flags" into a
 * Hyperscan expression and flags; -1 if it is not one */
static int sa_regex(const char *a, char **expr, unsigned *flags, const char **rest)
{
	char open, close;
	const char *p = a, *q;

	/* Perl: "/re/", or "m" and any punctuation as the delimiter */
	if (*p == 'm' && ispunct((unsigned char)p[1]))
		p++;
	else if (*p != '/')
		return -1;
	open = *p;
	switch (open) {
	case '{': close = '}'; break;
	case '(': close = ')'; break;
	case '<': close = '>'; break;
	case '[': close = ']'; break;
	default: close = open;
	}
	/* the closing delimiter is the last one on the line followed only by
	 * flag letters (patterns contain escaped delimiters) */
	q = NULL;
	for (const char *c = p + 1; *c; c++) {
		if (*c == '\\' && c[1]) {
			c++;
			continue;
		}
		if (*c == close) {
			const char *f = c + 1;

			while (*f && strchr("imsxgo", *f))
				f++;
			if (!*f || *f == ' ' || *f == '\t') {
				q = c;
				break;
			}
		}
	}
	if (!q)
		return -1;
	*expr = scan_strndup(p + 1, (size_t)(q - p - 1));
	if (!*expr)
		return -1;
	*flags = 0;
	for (q++; *q && strchr("imsxgo", *q); q++) {
		if (*q == 'i')
			*flags |= HS_FLAG_CASELESS;
		else if (*q == 's')
			*flags |= HS_FLAG_DOTALL;
		else if (*q == 'm')
			*flags |= HS_FLAG_MULTILINE;
		else if (*q == 'x') { /* Hyperscan reads the inline form */
			char *x = NULL;

			if (asprintf(&x, "(?x)%s", *expr) < 0) {
				free(*expr);
				return -1;
			}
			free(*expr);
			*expr = x;
		}
	}
	*rest = q;
	return 0;
}

/* sa_is_pseudo - header names SpamAssassin synthesizes, which a message
 * on the wire does not carry */
static int sa_is_pseudo(const char *h)
{
	static const char *const names[] = {
		"ToCc", "EnvelopeFrom", "ALL-TRUSTED", "ALL-UNTRUSTED",
		"ALL-INTERNAL", "ALL-EXTERNAL", "X-Spam-Relays-", "X-Spam-DCC",
		"X-Spam-Status", "X-Spam-Level", "X-Spam-Checker-Version",
		"X-Spam-Flag", "X-Spam-Report", "X-Spam-Score", "X-Spam-",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strncasecmp(h, names[i], strlen(names[i])) == 0)
			return 1;
	return 0;
}

/* sa_scored - SA's effective score set 0 is non-zero (rules without a score
 * line score 1, T_ test rules 0.01; __ rules never score) */
static int sa_scored(const struct sa_def *e, double *score)
{
	double s;

	if (strncmp(e->name, "__", 2) == 0)
		return *score = 0, 0;
	/* Conf::Parser: the default is 1 (T_ 0.01), negated for tflags nice */
	s = e->has_score ? e->score : (strncmp(e->name, "T_", 2) == 0 ? 0.01 : 1.0) * (e->nice ? -1 : 1);
	*score = s;
	return s != 0;
}

static int sa_resolve(struct scan_db *d, struct sa_set *s, struct sa_def *e, int depth);

/* sa_is_net - e needs the network or Bayes: tflags net/learn, or a meta
 * over such a rule (SpamAssassin's Conf::Parser gives metas the net flag
 * of their dependencies); such rules never fire in score set 0 with -L */
static int sa_is_net(struct sa_set *s, struct sa_def *e, int depth)
{
	if (e->netv)
		return e->netv == 2;
	e->netv = e->net ? 2 : 1;
	if (!e->net && e->kind && strcmp(e->kind, "meta") == 0 && e->arg && depth < 64) {
		for (const char *p = e->arg; *p;) {
			size_t k = 0;

			while (*p && !(isalpha((unsigned char)*p) || *p == '_'))
				p++;
			while (isalnum((unsigned char)p[k]) || p[k] == '_')
				k++;
			if (!k)
				break;
			struct sa_def *x = sa_find(s, p, k);

			p += k;
			if (x && x != e && sa_is_net(s, x, depth + 1)) {
				e->netv = 2;
				break;
			}
		}
	}
	return e->netv == 2;
}

/* sa_why - set the skip reason of e (replacing an earlier one, which the
 * arguments may still point into: a meta that uses itself); returns 3 */
static int sa_why(struct sa_def *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int sa_why(struct sa_def *e, const char *fmt, ...)
{
	va_list ap;
	char *w;

	va_start(ap, fmt);
	if (vasprintf(&w, fmt, ap) < 0)
		w = NULL;
	va_end(ap);
	free(e->why);
	e->why = w;
	return 3;
}

/* ---- ReplaceTags: the plugin's substitution, step by step as
 * Mail::SpamAssassin::Plugin::ReplaceTags::finish_parsing_end does it
 * (replace_start "<", replace_end ">", SpamAssassin's defaults) */

/* rt_lazy - Perl's /<(.+?)>/ on s: the first '<' followed by at least one
 * character and then the nearest '>'; start and length, or NULL */
static const char *rt_lazy(const char *s, size_t *len)
{
	for (const char *lt = strchr(s, '<'); lt && lt[1]; lt = strchr(lt + 1, '<')) {
		const char *gt = strchr(lt + 2, '>');

		if (gt) {
			*len = (size_t)(gt - lt) + 1;
			return lt;
		}
	}
	return NULL;
}

/* rt_modifier - "$re =~ s/<KW (.+?)>//": take out the first "<KW name>",
 * copy name (bounded); 1 when found */
static int rt_modifier(char *re, const char *kw, char *name, size_t cap)
{
	size_t kl = strlen(kw);

	for (char *m = strstr(re, kw); m; m = strstr(m + 1, kw)) {
		char *gt = m[kl] ? strchr(m + kl + 1, '>') : NULL;
		size_t nl;

		if (!gt)
			continue;
		nl = (size_t)(gt - (m + kl));
		if (nl >= cap)
			nl = cap - 1;
		memcpy(name, m + kl, nl);
		name[nl] = 0;
		memmove(m, gt + 1, strlen(gt + 1) + 1);
		return name[0] && strcmp(name, "0") != 0; /* Perl truth */
	}
	return 0;
}

/* rt_truthy - a Perl-true setting value */
static const char *rt_truthy(const char *v)
{
	return v && *v && strcmp(v, "0") != 0 ? v : NULL;
}

/* sa_replace_tags - rewrite a replace_rules pattern as the ReplaceTags
 * plugin does; *out is the new pattern, or NULL with why set */
static int sa_replace_tags(const struct sa_set *s, const char *pattern, char **out,
			   const char **why)
{
	char *re = strdup(pattern);
	int passes = 0, again, rc = 0;

	*out = NULL;
	*why = NULL;
	if (!re)
		return -ENOMEM;
	do {
		char pre_n[128], post_n[128], inter_n[128];
		int has_pre = rt_modifier(re, "<pre ", pre_n, sizeof(pre_n));
		int has_post = rt_modifier(re, "<post ", post_n, sizeof(post_n));
		int has_inter = rt_modifier(re, "<inter ", inter_n, sizeof(inter_n));
		const char *pre = has_pre ? rt_truthy(sa_rt_get(s, RT_PRE, pre_n, strlen(pre_n))) : NULL;
		const char *post = has_post ? rt_truthy(sa_rt_get(s, RT_POST, post_n, strlen(post_n))) : NULL;
		const char *inter = has_inter ?
			rt_truthy(sa_rt_get(s, RT_INTER, inter_n, strlen(inter_n))) : NULL;
		struct scan_str el[512];
		size_t nel = 0;
		const char *t = re;

		again = 0;
		memset(el, 0, sizeof(el));
		/* split(/(<[^<>]+>)/, $re): text, tag, text, ... (a leading
		 * empty field kept, trailing empty fields dropped) */
		for (const char *q = re; *q;) {
			const char *e = q + 1;

			if (*q != '<') {
				q++;
				continue;
			}
			while (*e && *e != '<' && *e != '>')
				e++;
			if (*e != '>' || e == q + 1) {
				q++;
				continue;
			}
			if (nel + 2 >= sizeof(el) / sizeof(el[0])) {
				*why = "replace_tags: too many tags";
				goto done;
			}
			scan_str_add(&el[nel++], t, (size_t)(q - t));
			scan_str_add(&el[nel++], q, (size_t)(e + 1 - q));
			t = q = e + 1;
		}
		scan_str_add(&el[nel++], t, strlen(t));
		while (nel && el[nel - 1].len == 0) {
			free(el[nel - 1].p);
			memset(&el[--nel], 0, sizeof(el[0]));
		}
		for (size_t i = 0; i < nel; i++) {
			struct scan_str n = { 0 };
			const char *c = el[i].p ? el[i].p : "", *m;
			size_t ml;

			if (pre && (m = rt_lazy(c, &ml))) { /* s{(<.+?>)}{$pre$1} */
				scan_str_add(&n, c, (size_t)(m - c));
				scan_str_add(&n, pre, strlen(pre));
				scan_str_add(&n, m, strlen(m));
			} else {
				scan_str_add(&n, c, strlen(c));
			}
			if (post) { /* s{(<.+?>)}{$1$post}g */
				struct scan_str g = { 0 };
				const char *x = n.p;

				while ((m = rt_lazy(x, &ml))) {
					scan_str_add(&g, x, (size_t)(m - x) + ml);
					scan_str_add(&g, post, strlen(post));
					x = m + ml;
				}
				scan_str_add(&g, x, strlen(x));
				free(n.p);
				n = g;
			}
			if (inter && n.len == 0) /* s{^$}{$inter} */
				scan_str_add(&n, inter, strlen(inter));
			if ((m = rt_lazy(n.p, &ml))) { /* the element's tag */
				const char *val = rt_truthy(sa_rt_get(s, RT_TAG, m + 1, ml - 2));

				if (val) {
					/* s|<name>|$replacement|g, name read as a regex:
					 * only plain names are taken literally */
					for (size_t k = 1; k + 1 < ml; k++)
						if (strchr("\\^$.|?*+()[]{}", m[k])) {
							free(n.p);
							*why = "replace_tags: tag name with regex metacharacters";
							goto done;
						}
					struct scan_str g = { 0 };
					const char *x = n.p, *hit;
					char tag[160];

					if (ml >= sizeof(tag)) {
						free(n.p);
						*why = "replace_tags: tag name too long";
						goto done;
					}
					memcpy(tag, m, ml);
					tag[ml] = 0;
					while ((hit = strstr(x, tag))) {
						scan_str_add(&g, x, (size_t)(hit - x));
						scan_str_add(&g, val, strlen(val));
						x = hit + ml;
					}
					scan_str_add(&g, x, strlen(x));
					free(n.p);
					n = g;
					/* $doagain if $replacement =~ /<[^>]+>/ */
					for (const char *vm = strchr(val, '<'); vm; vm = strchr(vm + 1, '<'))
						if (vm[1] && vm[1] != '>' && strchr(vm + 1, '>'))
							again = 1;
				}
			}
			if (n.oom) {
				free(n.p);
				rc = -ENOMEM;
				goto done;
			}
			free(el[i].p);
			el[i] = n;
		}
		struct scan_str j = { 0 };
		for (size_t i = 0; i < nel; i++)
			scan_str_add(&j, el[i].p ? el[i].p : "", el[i].len);
		scan_str_add(&j, "", 0);
		if (j.oom) {
			free(j.p);
			rc = -ENOMEM;
			goto done;
		}
		free(re);
		re = j.p;
		passes++;
done:
		for (size_t i = 0; i < nel; i++)
			free(el[i].p);
		if (rc < 0 || *why) {
			free(re);
			return rc;
		}
	} while (again && passes <= 5);
	*out = re;
	return 0;
}

/* sa_compiles - compiles_alone, remembered in <cache_dir>/scan-verdicts
 * under a SHA-256 of the Hyperscan version, platform, flags and pattern:
 * a tag-expanded pattern Hyperscan refuses as too large can take seconds
 * to refuse, and a restart should not pay that again */
static int sa_compiles(struct sa_set *s, const char *expr, unsigned flags, char *msg,
		       size_t msgsz)
{
	unsigned char key[32];
	char hex[65], path[4096];
	EVP_MD_CTX *c;
	hs_platform_info_t plat;
	unsigned kl = 0;
	int ok, rc;

	if (!s->cache_dir || !(c = EVP_MD_CTX_new()))
		return compiles_alone(expr, flags, msg, msgsz);
	memset(&plat, 0, sizeof(plat));
	hs_populate_platform(&plat);
	ok = EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(c, "MOATVERDICT1", 12) &&
	     EVP_DigestUpdate(c, hs_version(), strlen(hs_version()) + 1) &&
	     EVP_DigestUpdate(c, &plat, sizeof(plat)) &&
	     EVP_DigestUpdate(c, &flags, sizeof(flags)) &&
	     EVP_DigestUpdate(c, expr, strlen(expr)) && EVP_DigestFinal_ex(c, key, &kl);
	EVP_MD_CTX_free(c);
	if (!ok || kl != 32)
		return compiles_alone(expr, flags, msg, msgsz);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	snprintf(path, sizeof(path), "%s/scan-verdicts", s->cache_dir);
	if (!s->verdicts_read) {
		FILE *f = fopen(path, "r");
		size_t cap = 0;

		s->verdicts_read = 1;
		if (f) { /* the whole file: a line per pattern ever checked */
			if (getdelim(&s->verdicts, &cap, 0, f) < 0) {
				free(s->verdicts);
				s->verdicts = NULL;
			}
			fclose(f);
		}
	}
	for (const char *v = s->verdicts; v && (v = strstr(v, hex)); v += 64) {
		if (v != s->verdicts && v[-1] != '\n')
			continue;
		if (v[64] == ' ' && v[65] == '1')
			return 0;
		if (v[64] == ' ' && v[65] == '0' && v[66] == ' ') {
			const char *e = strchr(v + 67, '\n');
			size_t n = e ? (size_t)(e - (v + 67)) : strlen(v + 67);

			snprintf(msg, msgsz, "%.*s", (int)n, v + 67);
			return -1;
		}
	}
	rc = compiles_alone(expr, flags, msg, msgsz);
	FILE *f = fopen(path, "a");
	if (f) { /* one short line per write: appends do not interleave */
		for (char *q = msg; *q; q++)
			if (*q == '\n' || *q == '\r')
				*q = ' ';
		fprintf(f, "%s %d%s%s\n", hex, rc == 0, rc == 0 ? "" : " ", rc == 0 ? "" : msg);
		fclose(f);
	}
	return rc;
}

/* sa_header_view - normalise a header rule's name with its modifiers into
 * the view the scanner computes ("From:addr", "ToCc", "ALL"); :raw is
 * dropped (moat's values are the raw unfolded ones).  -1 with *why for a
 * view moat cannot derive from the stream */
static int sa_header_view(char *h, size_t hsz, const char **why)
{
	char base[MIME_NAME_MAX], *c = strchr(h, ':');
	int addr = 0, name = 0, first = 0, last = 0;

	snprintf(base, sizeof(base), "%.*s", c ? (int)(c - h) : (int)strlen(h), h);
	for (; c; c = strchr(c + 1, ':')) {
		size_t n = strcspn(c + 1, ":");

		if (n == 3 && strncmp(c + 1, "raw", 3) == 0)
			continue;
		else if (n == 4 && strncmp(c + 1, "addr", 4) == 0)
			addr = 1;
		else if (n == 4 && strncmp(c + 1, "name", 4) == 0)
			name = 1;
		else if (n == 5 && strncmp(c + 1, "first", 5) == 0)
			first = 1;
		else if (n == 4 && strncmp(c + 1, "last", 4) == 0)
			last = 1;
		else
			return *why = "header modifier :host/:domain/:ip needs the registry of "
				      "domains", -1;
	}
	if (strcmp(base, "ALL") != 0 && strcasecmp(base, "ToCc") != 0 &&
	    strcmp(base, "MESSAGEID") != 0 && sa_is_pseudo(base))
		return *why = strcasecmp(base, "EnvelopeFrom") == 0 ?
			"SpamAssassin pseudo-header EnvelopeFrom (derived from relays)" :
			"SpamAssassin pseudo-header (relay and trust parsing)", -1;
	if (strcmp(base, "ALL") == 0 && (addr || name || first || last))
		return *why = "modifier on ALL", -1;
	snprintf(h, hsz, "%s%s%s%s", base, addr ? ":addr" : name ? ":name" : "",
		 first ? ":first" : "", last ? ":last" : "");
	return 0;
}

/* sa_if_unset - the "[if-unset: VALUE]" after a header rule's regex, as
 * SpamAssassin's parser reads it; *out NULL when absent; 0 or -ENOMEM */
static int sa_if_unset(const char *rest, char **out)
{
	const char *p = rest, *e;

	*out = NULL;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncmp(p, "[if-unset:", 10) != 0)
		return 0;
	p += 10;
	if (*p == ' ')
		p++;
	if (!(e = strrchr(p, ']')))
		return 0;
	*out = scan_strndup(p, (size_t)(e - p));
	return *out ? 0 : -ENOMEM;
}

/* A prefilter pattern longer than this is compiled alone at import to
 * catch "Pattern is too large" (remembered in scan-verdicts); shorter ones
 * are only validated: compiling each alone costs seconds per load */
#define SA_PREFILTER_CHECK_LEN 400

/* sa_drop_anchors - expr without its "^" anchors (outside classes, not
 * escaped): a superset Hyperscan accepts where it refuses an embedded
 * start anchor; malloc'd, NULL on ENOMEM */
static char *sa_drop_anchors(const char *expr)
{
	char *o = malloc(strlen(expr) + 1), *q = o;
	int cls = 0;

	if (!o)
		return NULL;
	for (const char *p = expr; *p; p++) {
		if (*p == '\\' && p[1]) {
			*q++ = *p++;
			*q++ = *p;
			continue;
		}
		if (cls) {
			cls = *p != ']' || p[-1] == '[' || (p[-1] == '^' && p[-2] == '[');
		} else if (*p == '[') {
			cls = 1;
		} else if (*p == '^') {
			continue;
		}
		*q++ = *p;
	}
	*q = 0;
	return o;
}

/* sa_widened - *hs (or expr) replaced by scan_widen's superset when
 * Hyperscan takes it: exactly, or with its final repeat cut to one
 * iteration exactly (*cut set), else as a prefilter.  Cheaper to scan,
 * and as tight or tighter than Hyperscan's own approximation on the
 * corpus; -ENOMEM */
static int sa_widened(struct sa_set *s, const char *expr, unsigned flags, char **hs, int *cut)
{
	const char *base = *hs ? *hs : expr;
	char m[200], *w1 = NULL;
	int exact, e1;
	char *w = scan_widen(base, 0, &exact);

	if (!w)
		return -ENOMEM;
	if (exact && sa_compiles(s, w, flags, m, sizeof(m)) < 0) {
		if (!(w1 = scan_widen(base, 1, &e1))) {
			free(w);
			return -ENOMEM;
		}
		if (strcmp(w1, w) != 0 && sa_compiles(s, w1, flags, m, sizeof(m)) == 0) {
			free(w);
			w = w1;
			*cut = 1;
		} else {
			free(w1);
		}
	}
	if (strcmp(w, base) == 0 || scan_validate(w, flags | HS_FLAG_PREFILTER, m, sizeof(m)) < 0 ||
	    (strlen(w) > SA_PREFILTER_CHECK_LEN &&
	     sa_compiles(s, w, flags | HS_FLAG_PREFILTER, m, sizeof(m)) < 0)) {
		free(w);
		*cut = 0;
		return 0;
	}
	free(*hs);
	*hs = w;
	return 0;
}

/* sa_starts - r's Hyperscan form hs is one iteration of its final
 * repeat: every match of expr starts where a match of hs starts, and
 * those starts are the ends of hs read backwards on the reversed unit
 * (scan_reverse, exact: every end reported).  When that compiles, r is
 * marked rstart, with expr compiled anchored at the start offset to
 * confirm from each start alone (scan.c).  Not marked when it does not
 * reverse or compile (or memory runs out): the whole unit is confirmed */
static void sa_starts(struct sa_set *s, struct scan_rule *r, const char *expr, const char *hs,
		     unsigned flags, uint32_t opt)
{
	char m[200], *rv = scan_reverse(hs);
	int ec;
	PCRE2_SIZE eo;

	if (!rv)
		return;
	if (sa_compiles(s, rv, flags, m, sizeof(m)) == 0 &&
	    (r->re_start = pcre2_compile((PCRE2_SPTR)expr, PCRE2_ZERO_TERMINATED,
					 opt | PCRE2_ANCHORED, &ec, &eo, NULL))) {
		pcre2_jit_compile(r->re_start, PCRE2_JIT_COMPLETE);
		r->rstart = 1;
	}
	free(rv);
}

/* sa_prefilter - make r a prefilter rule: Hyperscan in prefilter mode (a
 * superset; without "^" anchors when Hyperscan refuses them) and PCRE2 on
 * the original expression to confirm each candidate on its unit.  *hs is
 * the expression for Hyperscan when it differs (malloc'd).  0 done, 1 not
 * possible (msg says why), -ENOMEM */
static int sa_prefilter(struct sa_set *s, struct scan_rule *r, const char *expr,
			unsigned flags, char *msg, size_t msgsz, char **hs)
{
	uint32_t opt = (flags & HS_FLAG_CASELESS ? PCRE2_CASELESS : 0) |
		       (flags & HS_FLAG_DOTALL ? PCRE2_DOTALL : 0) |
		       (flags & HS_FLAG_MULTILINE ? PCRE2_MULTILINE : 0);
	int ec, cut = 0;
	PCRE2_SIZE eo;
	pcre2_code *re;

	msg[0] = 0;
	if (r->scope == SCOPE_RAW) {
		snprintf(msg, msgsz, "no prefilter: a full rule's unit is the whole message");
		return 1;
	}
	if (r->scope == SCOPE_BODY && !SCAN_BODY_UNITS) {
		snprintf(msg, msgsz, "no prefilter: body units are not confirmed yet");
		return 1;
	}
	*hs = NULL;
	if (scan_validate(expr, flags | HS_FLAG_PREFILTER, msg, msgsz) < 0 &&
	    strstr(msg, "start anchor") && !(*hs = sa_drop_anchors(expr)))
		return -ENOMEM;
	if ((*hs && scan_validate(*hs, flags | HS_FLAG_PREFILTER, msg, msgsz) < 0) ||
	    (!*hs && scan_validate(expr, flags | HS_FLAG_PREFILTER, msg, msgsz) < 0) ||
	    (strlen(*hs ? *hs : expr) > SA_PREFILTER_CHECK_LEN &&
	     sa_compiles(s, *hs ? *hs : expr, flags | HS_FLAG_PREFILTER, msg, msgsz) < 0)) {
		char m2[200];

		snprintf(m2, sizeof(m2), "%s", msg);
		snprintf(msg, msgsz, "prefilter: %s", m2);
		free(*hs);
		*hs = NULL;
		return 1;
	}
	if (sa_widened(s, expr, flags, hs, &cut) < 0) {
		free(*hs);
		*hs = NULL;
		return -ENOMEM;
	}
	re = pcre2_compile((PCRE2_SPTR)expr, PCRE2_ZERO_TERMINATED, opt, &ec, &eo, NULL);
	if (!re) {
		PCRE2_UCHAR m2[160];

		pcre2_get_error_message(ec, m2, sizeof(m2));
		snprintf(msg, msgsz, "pcre2: %s", (char *)m2);
		free(*hs);
		*hs = NULL;
		return ec == PCRE2_ERROR_NOMEMORY ? -ENOMEM : 1;
	}
	pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* interpreted when it fails */
	msg[0] = 0;
	r->re = re;
	r->prefilter = 1;
	if (cut && *hs)
		sa_starts(s, r, expr, *hs, flags, opt);
	return 0;
}

/* sa_is_regex - a regex rule of the kinds the coverage target counts
 * (body, rawbody, header, uri, full; not eval:, not exists:) */
static int sa_is_regex(const struct sa_def *e)
{
	static const char *const kinds[] = { "body", "rawbody", "header", "uri", "full" };

	if (!e->kind || !e->arg || strncmp(e->arg, "eval:", 5) == 0 ||
	    strncmp(e->arg, "exists:", 7) == 0)
		return 0;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(e->kind, kinds[i]) == 0)
			return 1;
	return 0;
}

/* sa_eval_args - the quoted arguments of "name('a','b')": up to 3, each
 * copied (bounded) into arg[]; the count, -1 when malformed */
static int sa_eval_args(const char *p, char arg[3][MIME_NAME_MAX])
{
	int n = 0;

	if (*p++ != '(')
		return -1;
	while (*p == ' ')
		p++;
	while (*p && *p != ')') {
		char q = *p;
		size_t k = 0;

		if ((q != '\'' && q != '"') || n == 3)
			return -1;
		for (p++; *p && *p != q; p++)
			if (k < MIME_NAME_MAX - 1)
				arg[n][k++] = *p;
		arg[n++][k] = 0;
		if (*p++ != q)
			return -1;
		while (*p == ' ' || *p == ',')
			p++;
	}
	return *p == ')' ? n : -1;
}

/* sa_freemail - the FreeMail plugin's domains when its evals run as
 * moat implements them: the plugin loaded, some domain, no welcomelist */
static const char *sa_freemail(const struct sa_set *s)
{
	static const char fm[] = "Mail::SpamAssassin::Plugin::FreeMail";

	if (!s->freemail || s->fm_welcome || !sa_plugin_loaded(s, fm, sizeof(fm) - 1))
		return NULL;
	return s->freemail;
}

/* sa_addrlist - the enlist_addrlist (NAME) globs as "\nGLOB\nGLOB\n"
 * ("\n" when none); NULL on no memory */
static char *sa_addrlist(const struct sa_set *s, const char *name)
{
	size_t nl = strlen(name), k = 1;
	char *g = malloc(s->allen + 2);

	if (!g)
		return NULL;
	g[0] = '\n';
	for (const char *l = s->addrlist; l && *l;) {
		const char *e = strchr(l, '\n');

		if ((size_t)(e - l) > nl + 1 && strncmp(l, name, nl) == 0 && l[nl] == ' ') {
			memcpy(g + k, l + nl + 1, (size_t)(e - l) - nl);
			k += (size_t)(e - l) - nl;
		}
		l = e + 1;
	}
	g[k] = 0;
	return g;
}

/* sa_eval_builtin - an eval test moat implements (enum scan_eval): r
 * filled, 1; 0 when it is not one; -ENOMEM */
static int sa_eval_builtin(const struct sa_set *s, const struct sa_def *e, const char *call,
			   struct scan_rule *r)
{
	char arg[3][MIME_NAME_MAX];
	size_t nl = strcspn(call, "( ");
	int n;

	(void)e;
	n = sa_eval_args(call + nl, arg);
#define IS(x) (nl == strlen(x) && strncmp(call, x, nl) == 0)
	if (IS("check_for_missing_to_header") && n == 0)
		r->eval = EVAL_MISSING_TO;
	else if (IS("subject_is_all_caps") && n == 0)
		r->eval = EVAL_SUBJ_ALL_CAPS;
	else if (IS("check_msg_parse_flags") && n == 1 && !strcmp(arg[0], "truncated_header"))
		r->eval = EVAL_TRUNCATED;
	else if (IS("check_header_count_range") && n == 3 && !strchr(arg[0], ':'))
		r->eval = EVAL_HDR_COUNT;
	else if (IS("check_illegal_chars") && n == 3 && !strchr(arg[0], ':'))
		r->eval = EVAL_ILLEGAL_CHARS;
	else if (IS("check_from_in_list") && n == 1) { /* WLBLEval, over all_from_addrs */
		char *globs = sa_addrlist(s, arg[0]);

		if (!globs)
			return -ENOMEM;
		n = globs[1] ? scan_eval_from_in_list(globs, sa_eval_flags(s), r) : 0;
		free(globs);
		if (n <= 0)
			return n;
	} else if ((n = scan_eval_lookup(call, sa_eval_flags(s), sa_freemail(s), r)) <= 0)
		return n == -ENOMEM ? n : 0;
#undef IS
	r->scope = SCOPE_EVAL;
	if (r->eval == EVAL_HDR_COUNT || r->eval == EVAL_ILLEGAL_CHARS) {
		r->ea = strtod(arg[1], NULL);
		r->eb = strtod(arg[2], NULL);
		if (!(r->hname = strdup(arg[0])))
			return -ENOMEM;
	}
	if (!r->pattern && !(r->pattern = strdup(""))) /* an eval's data stays */
		return -ENOMEM;
	return 1;
}

/* sa_import_leaf - turn a non-meta definition into a rule or a skip reason */
static int sa_import_leaf(struct scan_db *d, struct sa_set *s, struct sa_def *e)
{
	struct scan_rule r = { 0 };
	char *expr = NULL, msg[256];
	const char *a = e->arg, *rest;
	unsigned flags = 0;
	int neg = 0;

	if (strncmp(a, "eval:", 5) == 0) {
		int rc = sa_eval_builtin(s, e, a + 5, &r);

		if (rc < 0) {
			scan_rule_free(&r);
			return rc;
		}
		if (rc == 0)
			return sa_why(e, "eval: Perl code test");
		goto add;
	}
	if (strcmp(e->kind, "mimeheader") == 0 || /* PCRE2 on each entity's headers */
	    (strcmp(e->kind, "header") == 0 && /* or on a relay pseudo-header */
	     (strncasecmp(a + strspn(a, " \t"), "X-Spam-Relays-", 14) == 0 ||
	      strncmp(a + strspn(a, " \t"), "EnvelopeFrom ", 13) == 0))) {
		int rc = strcmp(e->kind, "header") == 0 ?
				 scan_eval_relays(a, sa_eval_flags(s), &r, msg, sizeof(msg)) :
				 scan_eval_mimeheader(a, &r, msg, sizeof(msg));

		if (rc <= 0)
			return rc < 0 ? rc : sa_why(e, "%s", msg);
		r.scope = SCOPE_EVAL; /* a relay rule's prefilter kept */
		if (!r.pattern && !(r.pattern = strdup(""))) {
			scan_rule_free(&r);
			return -ENOMEM;
		}
		goto add;
	}
	int replace = 0;
	for (size_t i = 0; i < s->nreplace; i++)
		replace |= strcmp(s->replace[i], e->name) == 0;
	if (strcmp(e->kind, "header") == 0) {
		char h[MIME_NAME_MAX + 16];
		size_t hl = 0;

		if (strncmp(a, "exists:", 7) == 0) {
			a += 7;
			while (*a && *a != ' ' && *a != '\t' && hl < MIME_NAME_MAX - 1)
				h[hl++] = *a++;
			h[hl] = 0;
			if (!hl || sa_is_pseudo(h))
				return sa_why(e, "exists: on a SpamAssassin pseudo-header");
			r.scope = SCOPE_EXISTS;
			r.hname = strdup(h);
			r.pattern = strdup("");
			goto add;
		}
		while (*a && *a != ' ' && *a != '\t' && *a != '=' && *a != '!') {
			if (hl >= MIME_NAME_MAX - 1)
				return sa_why(e, "header name too long");
			h[hl++] = *a++;
		}
		h[hl] = 0;
		while (*a == ' ' || *a == '\t')
			a++;
		neg = strncmp(a, "!~", 2) == 0;
		if (!neg && strncmp(a, "=~", 2) != 0)
			return sa_why(e, "unrecognised header test");
		a += 2;
		while (*a == ' ' || *a == '\t')
			a++;
		const char *vwhy = NULL;

		if (sa_header_view(h, sizeof(h), &vwhy) < 0)
			return sa_why(e, "%s", vwhy);
		r.scope = SCOPE_HEADER;
		if (!(r.hname = strdup(h)))
			return -ENOMEM;
	} else if (strcmp(e->kind, "full") == 0) {
		r.scope = SCOPE_RAW;
	} else if (strcmp(e->kind, "rawbody") == 0) {
		r.scope = SCOPE_RAWBODY;
	} else if (strcmp(e->kind, "uri") == 0) {
		r.scope = SCOPE_URI;
	} else {
		r.scope = SCOPE_BODY;
	}
	if (sa_regex(a, &expr, &flags, &rest) < 0) {
		free(r.hname);
		return sa_why(e, "not a /regex/");
	}
	if (replace) { /* a replace_rules template: its tags filled in */
		char *x = NULL;
		const char *why = NULL;
		int rc = sa_replace_tags(s, expr, &x, &why);

		free(expr);
		if (rc < 0 || !x) {
			free(r.hname);
			return rc < 0 ? rc : sa_why(e, "%s", why ? why : "replace_tags failed");
		}
		expr = x;
	}
	/* a header rule whose pattern matches "" fires on any present
	 * header (or its if-unset value), as in SpamAssassin */
	if (r.scope == SCOPE_HEADER)
		flags |= HS_FLAG_ALLOWEMPTY;
	if (r.scope == SCOPE_HEADER && sa_if_unset(rest, &r.unset) < 0) {
		free(expr);
		free(r.hname);
		return -ENOMEM;
	}
	if (scan_validate(expr, flags | HS_FLAG_SINGLEMATCH, msg, sizeof(msg)) < 0 ||
	    (replace && sa_compiles(s, expr, flags | HS_FLAG_SINGLEMATCH, msg, sizeof(msg)) < 0)) {
		/* not exact: a prefilter confirmed by PCRE2 on its unit */
		char pmsg[256], *hs = NULL;
		int why = sa_prefilter(s, &r, expr, flags, pmsg, sizeof(pmsg), &hs);

		if (why) {
			free(expr);
			scan_rule_free(&r);
			if (why < 0)
				return why;
			return sa_why(e, "%shyperscan: %s%s%s", replace ? "after replace_tags: " : "",
				      msg, pmsg[0] ? "; " : "", pmsg);
		}
		e->pf = 1;
		if (hs) {
			free(expr);
			expr = hs;
		}
	}
	r.pattern = expr;
	r.flags = flags;
add:
	/* "NAME Header !~ /re/": a quiet positive rule NAME:pos and NAME as
	 * the meta "!NAME:pos" (true also when the header is absent, as in
	 * SpamAssassin, where an absent header reads as "") */
	if (neg && asprintf(&r.id, "%s:pos", e->name) < 0)
		r.id = NULL;
	else if (!neg)
		r.id = strdup(e->name);
	r.src = strdup(e->src);
	if (!neg)
		sa_scored(e, &r.score);
	r.action = ACT_SCORE;
	struct scan_rule *nr = r.id && r.src && r.pattern ? scan_rule_add(d) : NULL;
	if (!nr) {
		scan_rule_free(&r);
		return -ENOMEM;
	}
	*nr = r;
	e->rule = (long)(nr - d->rules);
	if (neg) {
		long pos = e->rule;

		if (!(nr = scan_rule_add(d)))
			return -ENOMEM;
		nr->scope = SCOPE_META;
		nr->id = strdup(e->name);
		nr->src = strdup(e->src);
		if (asprintf(&nr->pattern, "!T%ld", pos) < 0)
			nr->pattern = NULL;
		sa_scored(e, &nr->score);
		if (!nr->id || !nr->src || !nr->pattern)
			return -ENOMEM;
		e->rule = (long)(nr - d->rules);
	}
	return 2;
}

/* Meta expressions.  SpamAssassin evaluates a meta as Perl over rule
 * values: 1 per hit (hit counts for tflags multiple), a meta's value is
 * its expression's value.  Boolean operators map onto Hyperscan logical
 * combinations directly; a comparison of a sum of 0/1-valued operands with
 * a constant ("A + B + C > 1") is the boolean "at least k of n", expanded
 * exactly.  Counting over hit counts (tflags multiple, or a meta that is
 * itself a bare sum) has no boolean form and is refused.  Precedence as in
 * Perl: ! over + over comparisons over && over ||.
 *
 * Output: "T<rule>" for a leaf rule token, "F" for false, nested metas
 * inlined in parentheses; meta_expr turns T/F into Hyperscan ids. */

struct mparse {
	struct scan_db *d;
	struct sa_set *s;
	struct sa_def *e;
	const char *p;
	int depth;
	int nest; /* "(" and "!" open in this expression (META_NEST_MAX) */
};

/* mterm - a parsed sub-expression: its combination text and whether its
 * SpamAssassin value is always 0 or 1; a bare sum of 0/1 terms also keeps
 * the terms, so "(A + B) > 1" or a meta over such a sum still counts */
struct mterm {
	struct scan_str x;
	int bin;
	struct mterm *sub;
	size_t nsub;
};

/* mterm_free - release a parsed sub-expression */
static void mterm_free(struct mterm *t)
{
	for (size_t i = 0; i < t->nsub; i++)
		mterm_free(&t->sub[i]);
	free(t->sub);
	free(t->x.p);
	memset(t, 0, sizeof(*t));
}

/* mterm_nosum - it is used as a whole: forget the terms */
static void mterm_nosum(struct mterm *t)
{
	for (size_t i = 0; i < t->nsub; i++)
		mterm_free(&t->sub[i]);
	free(t->sub);
	t->sub = NULL;
	t->nsub = 0;
}

static int mp_or(struct mparse *m, struct mterm *out);
static int mp_nested(struct mparse *m, struct mterm *out, char c);
static int mp_name(struct mparse *m, struct mterm *out, char c);

/* mp_ws - skip blanks, return the next character */
static char mp_ws(struct mparse *m)
{
	while (*m->p == ' ' || *m->p == '\t')
		m->p++;
	return *m->p;
}

/* mp_unary - "!" unary | "(" or ")" | NAME; 0, 3 (skip, why set), -errno */
static int mp_unary(struct mparse *m, struct mterm *out)
{
	char c = mp_ws(m);
	int rc;

	memset(out, 0, sizeof(*out));
	if ((c == '!' && m->p[1] != '=') || c == '(') {
		if (m->nest >= META_NEST_MAX)
			return sa_why(m->e, "meta nesting too deep");
		m->nest++;
		rc = mp_nested(m, out, c);
		m->nest--;
		return rc;
	}
	return mp_name(m, out, c);
}

/* mp_nested - "!" unary | "(" or ")" */
static int mp_nested(struct mparse *m, struct mterm *out, char c)
{
	int rc;

	if (c == '!') {
		struct mterm t;

		m->p++;
		if ((rc = mp_unary(m, &t)))
			return mterm_free(&t), rc;
		scan_str_add(&out->x, "!", 1);
		scan_str_add(&out->x, t.x.p, t.x.len);
		mterm_free(&t);
		out->bin = 1;
		return out->x.oom ? -ENOMEM : 0;
	}
	if (c == '(') {
		struct mterm t;

		m->p++;
		if ((rc = mp_or(m, &t)))
			return mterm_free(&t), rc;
		if (mp_ws(m) != ')') {
			mterm_free(&t);
			return sa_why(m->e, "meta syntax: missing ')'");
		}
		m->p++;
		scan_str_add(&out->x, "(", 1);
		scan_str_add(&out->x, t.x.p, t.x.len);
		scan_str_add(&out->x, ")", 1);
		out->bin = t.bin;
		out->sub = t.sub; /* grouping keeps a sum a sum */
		out->nsub = t.nsub;
		free(t.x.p);
		return out->x.oom ? -ENOMEM : 0;
	}
	return 0; /* not reached: mp_unary calls this for '!' and '(' only */
}

/* mp_name - NAME (a rule or meta) */
static int mp_name(struct mparse *m, struct mterm *out, char c)
{
	int rc;

	if (c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) {
		const char *n = m->p;
		struct sa_def *o;
		char buf[32];

		while (*m->p == '_' || (*m->p >= 'A' && *m->p <= 'Z') ||
		       (*m->p >= 'a' && *m->p <= 'z') || (*m->p >= '0' && *m->p <= '9'))
			m->p++;
		o = sa_find(m->s, n, (size_t)(m->p - n));
		out->bin = 1;
		if (!o || !o->kind) { /* undefined: false (0), as in SA */
			scan_str_add(&out->x, "F", 1);
			return out->x.oom ? -ENOMEM : 0;
		}
		rc = sa_resolve(m->d, m->s, o, m->depth + 1);
		if (rc < 0)
			return rc;
		if (rc == 3)
			return sa_why(m->e, "uses %s (%s)", o->name, o->why ? o->why : "not imported");
		if (o->rule >= 0 && m->d->rules[o->rule].scope != SCOPE_META) {
			snprintf(buf, sizeof(buf), "T%ld", o->rule);
			scan_str_add(&out->x, buf, strlen(buf));
			out->bin = !o->multiple;
		} else { /* nested meta: its expanded expression, inlined */
			const char *ox = m->d->rules[o->rule].pattern;

			scan_str_add(&out->x, "(", 1);
			scan_str_add(&out->x, ox, strlen(ox));
			scan_str_add(&out->x, ")", 1);
			out->bin = !o->nonbin;
			if (o->nsum && !(out->sub = calloc(o->nsum, sizeof(*out->sub))))
				return -ENOMEM;
			for (size_t i = 0; i < o->nsum; i++) {
				scan_str_add(&out->sub[i].x, o->sum[i], strlen(o->sum[i]));
				out->sub[i].bin = 1;
				out->nsub++;
			}
		}
		return out->x.oom ? -ENOMEM : 0;
	}
	if (c >= '0' && c <= '9')
		return sa_why(m->e, "constant in a meta expression");
	return sa_why(m->e, "arithmetic meta (operator '%c')", c ? c : ' ');
}

/* at_least - "at least k of the n terms t[]" as a boolean combination;
 * exact for 0/1-valued terms.  (t1 & AL(k-1, rest)) | AL(k, rest). */
static void at_least(struct scan_str *o, const struct mterm *t, size_t n, long k)
{
	if (k <= 0) {
		scan_str_add(o, "!F", 2);
	} else if ((size_t)k > n) {
		scan_str_add(o, "F", 1);
	} else if (k == 1 || (size_t)k == n) {
		scan_str_add(o, "(", 1);
		for (size_t i = 0; i < n; i++) {
			if (i)
				scan_str_add(o, k == 1 ? " | " : " & ", 3);
			scan_str_add(o, t[i].x.p, t[i].x.len);
		}
		scan_str_add(o, ")", 1);
	} else {
		scan_str_add(o, "((", 2);
		scan_str_add(o, t[0].x.p, t[0].x.len);
		scan_str_add(o, " & ", 3);
		at_least(o, t + 1, n - 1, k - 1);
		scan_str_add(o, ") | ", 4);
		at_least(o, t + 1, n - 1, k);
		scan_str_add(o, ")", 1);
		if (o->len > META_EXPAND_MAX)
			o->oom = 1; /* reported as too long by the caller */
	}
}

/* mp_cmp - unary ("+" unary)* [ (> >= < <= == !=) NUMBER ] */
static int mp_cmp(struct mparse *m, struct mterm *out)
{
	enum { TMAX = 256 };
	struct mterm *t = calloc(TMAX, sizeof(*t)); /* 14 KB: off the stack, the parse recurses */
	size_t n = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!t)
		return -ENOMEM;
	for (;;) {
		if (n == TMAX) {
			rc = sa_why(m->e, "meta sum of more than 256 rules");
			goto out;
		}
		if ((rc = mp_unary(m, &t[n]))) {
			mterm_free(&t[n]);
			goto out;
		}
		if (t[n].nsub) { /* a grouped or named sum: its terms count */
			struct mterm g = t[n];

			if (n + g.nsub > TMAX) {
				mterm_free(&g);
				rc = sa_why(m->e, "meta sum of more than 256 rules");
				goto out;
			}
			if (mp_ws(m) != '+' && !(*m->p && strchr("<>=!", *m->p)) && n == 0) {
				n = 1; /* used whole: keep it as it is */
			} else {
				for (size_t i = 0; i < g.nsub; i++)
					t[n++] = g.sub[i];
				free(g.sub);
				free(g.x.p);
			}
		} else {
			n++;
		}
		if (mp_ws(m) != '+')
			break;
		m->p++;
	}
	char c = mp_ws(m);
	const char *op = NULL;

	if ((c == '>' || c == '<' || c == '=' || c == '!') && m->p[1] == '=')
		op = c == '>' ? ">=" : c == '<' ? "<=" : c == '=' ? "==" : "!=", m->p += 2;
	else if (c == '>' || c == '<')
		op = c == '>' ? ">" : "<", m->p++;
	if (!op) {
		if (n == 1) { /* a plain operand */
			*out = t[0];
			free(t);
			return 0;
		}
		/* a bare sum is true when non-zero: any term; its value
		 * (used in another sum) is a count, so the terms are kept */
		at_least(&out->x, t, n, 1);
		out->bin = 0;
		int allbin = 1;
		for (size_t i = 0; i < n; i++)
			allbin &= t[i].bin && !t[i].nsub;
		if (allbin && (out->sub = calloc(n, sizeof(*out->sub)))) {
			memcpy(out->sub, t, n * sizeof(*t));
			out->nsub = n;
			n = 0; /* moved */
		}
		goto done;
	}
	mp_ws(m);
	char *end;
	double v = strtod(m->p, &end);

	if (end == m->p) {
		rc = sa_why(m->e, "arithmetic meta (comparison with a non-constant)");
		goto out;
	}
	m->p = end;
	for (size_t i = 0; i < n; i++)
		if (!t[i].bin) {
			rc = sa_why(m->e, "arithmetic meta over hit counts (tflags multiple or a sum)");
			goto out;
		}
	/* integer sum s: s > v <=> s >= floor(v) + 1; s >= v <=> s >= ceil(v) */
	long gt = (long)floor(v) + 1, ge = (long)ceil(v);
	struct scan_str *o = &out->x;

	if (strcmp(op, ">") == 0) {
		at_least(o, t, n, gt);
	} else if (strcmp(op, ">=") == 0) {
		at_least(o, t, n, ge);
	} else if (strcmp(op, "<") == 0) {
		scan_str_add(o, "!", 1);
		at_least(o, t, n, ge);
	} else if (strcmp(op, "<=") == 0) {
		scan_str_add(o, "!", 1);
		at_least(o, t, n, gt);
	} else if (v != floor(v)) { /* an integer sum never equals it */
		scan_str_add(o, strcmp(op, "==") == 0 ? "F" : "!F", strcmp(op, "==") == 0 ? 1 : 2);
	} else { /* == k: at least k and not at least k + 1 */
		scan_str_add(o, strcmp(op, "==") == 0 ? "(" : "!(", strcmp(op, "==") == 0 ? 1 : 2);
		at_least(o, t, n, (long)v);
		scan_str_add(o, " & !", 4);
		at_least(o, t, n, (long)v + 1);
		scan_str_add(o, ")", 1);
	}
	out->bin = 1;
	c = mp_ws(m);
	if ((c == '<' || c == '>') || ((c == '=' || c == '!') && m->p[1] == '=')) {
		rc = sa_why(m->e, "arithmetic meta (chained comparison)");
		goto out;
	}
done:
	if (out->x.oom)
		rc = out->x.len > META_EXPAND_MAX ? sa_why(m->e, "meta expression too long")
						  : -ENOMEM;
out:
	for (size_t i = 0; i < n; i++)
		mterm_free(&t[i]);
	free(t);
	return rc;
}

/* mp_chain - cmp (OP cmp)* for OP "&&" (and=1) or "||" */
static int mp_chain(struct mparse *m, struct mterm *out, int and)
{
	int rc = and ? mp_cmp(m, out) : mp_chain(m, out, 1);

	while (!rc) {
		struct mterm t;
		char c = mp_ws(m);

		if (!(c == (and ? '&' : '|') && m->p[1] == c))
			break;
		m->p += 2;
		mterm_nosum(out); /* combined: no longer a plain sum */
		rc = and ? mp_cmp(m, &t) : mp_chain(m, &t, 1);
		if (!rc) {
			scan_str_add(&out->x, and ? " & " : " | ", 3);
			scan_str_add(&out->x, t.x.p, t.x.len);
			out->bin = out->bin && t.bin;
			if (out->x.oom)
				rc = out->x.len > META_EXPAND_MAX ?
					sa_why(m->e, "meta expression too long") : -ENOMEM;
		}
		mterm_free(&t);
	}
	return rc;
}

/* mp_or - the full expression */
static int mp_or(struct mparse *m, struct mterm *out)
{
	if (m->depth > META_DEPTH_MAX)
		return memset(out, 0, sizeof(*out)), sa_why(m->e, "meta nesting too deep");
	return mp_chain(m, out, 0);
}

/* sa_meta_expand - a meta's SpamAssassin expression as a combination over
 * rule tokens; 0 with *out set, 3 (skipped, why set), -errno */
static int sa_meta_expand(struct scan_db *d, struct sa_set *s, struct sa_def *e, int depth,
			  char **out)
{
	struct mparse m = { .d = d, .s = s, .e = e, .p = e->arg, .depth = depth };
	struct mterm t;
	int rc = mp_or(&m, &t);

	*out = NULL;
	if (!rc && mp_ws(&m) != 0)
		rc = strchr("-*/%", *m.p) ? sa_why(e, "arithmetic meta (operator '%c')", *m.p)
					  : sa_why(e, "meta syntax: unexpected '%c'", *m.p);
	if (!rc && t.x.len > META_EXPAND_MAX)
		rc = sa_why(e, "meta expression too long");
	if (rc) {
		mterm_free(&t);
		return rc;
	}
	e->nonbin = !t.bin;
	if (t.nsub && (e->sum = calloc(t.nsub, sizeof(char *)))) {
		for (size_t i = 0; i < t.nsub; i++) /* ownership moves */
			e->sum[e->nsum++] = t.sub[i].x.p, t.sub[i].x.p = NULL;
	}
	mterm_nosum(&t);
	*out = t.x.p;
	return 0;
}

/* sa_resolve - import a definition (recursively for metas); returns 2
 * imported, 3 skipped, -errno */
static int sa_resolve(struct scan_db *d, struct sa_set *s, struct sa_def *e, int depth)
{
	if (e->state >= 2)
		return e->state;
	if (e->state == 1)
		return e->state = sa_why(e, "meta loop");
	e->state = 1;
	e->rule = -1;
	if (scan_find_rule(d, e->name) >= 0) {
		return e->state = sa_why(e, "shadowed by a native rule");
	}
	if (strcmp(e->kind, "meta") != 0) {
		int rc = sa_import_leaf(d, s, e);

		if (rc < 0)
			return rc;
		return e->state = rc;
	}
	char *out = NULL;
	int rc = sa_meta_expand(d, s, e, depth, &out);

	if (rc)
		return rc < 0 ? rc : (e->state = 3);
	struct scan_rule *r = scan_rule_add(d);
	if (!r) {
		free(out);
		return -ENOMEM;
	}
	r->id = strdup(e->name);
	r->src = strdup(e->src);
	r->pattern = out;
	r->scope = SCOPE_META;
	sa_scored(e, &r->score);
	if (!r->id || !r->src)
		return -ENOMEM;
	e->rule = (long)(r - d->rules);
	return e->state = 2;
}

/* sa_site_plugins - the plugins SpamAssassin's site directory loads
 * (the .pre files of SA_SITE_DIR, Debian's /etc/spamassassin), when the rules
 * directory carries no .pre of its own; 0 or -ENOMEM */
static int sa_site_plugins(struct sa_set *s)
{
	DIR *dh = opendir(SA_SITE_DIR);
	struct dirent *de;
	int rc = 0;

	if (!dh)
		return 0;
	while (rc == 0 && (de = readdir(dh))) {
		size_t l = strlen(de->d_name);
		char *path = NULL;

		if (l < 5 || strcmp(de->d_name + l - 4, ".pre") != 0)
			continue;
		if (asprintf(&path, "%s/%s", SA_SITE_DIR, de->d_name) < 0)
			rc = -ENOMEM;
		else
			rc = sa_read_plugins(s, path);
		free(path);
	}
	closedir(dh);
	return rc;
}

/* cf_cmp - qsort strings */
static int cf_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* scan_sa_load - import every *.cf of dir, in name order as SpamAssassin does */
int scan_sa_load(struct scan_db *d, const char *dir, const char *cache_dir, char *err,
		 size_t errsz)
{
	struct sa_set s = { .cache_dir = cache_dir };
	DIR *dh = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t nn = 0, nc = 0;
	int rc = 0;

	if (!dh) {
		rc = -errno;
		scan_errf(err, errsz, "%s: %s", dir, strerror(errno));
		return rc;
	}
	while ((de = readdir(dh))) {
		size_t l = strlen(de->d_name);

		if (l < 5 || (strcmp(de->d_name + l - 3, ".cf") != 0 &&
			      strcmp(de->d_name + l - 4, ".pre") != 0))
			continue;
		if (scan_grow(&names, nn, &nc, sizeof(char *)) < 0 ||
		    asprintf(&names[nn], "%s/%s", dir, de->d_name) < 0) {
			rc = -ENOMEM;
			goto out;
		}
		nn++;
	}
	qsort(names, nn, sizeof(*names), cf_cmp);
	/* the plugins first: .pre files (Debian keeps them in the site
	 * directory, read when dir has none), then loadplugin lines of .cf */
	int npre = 0;
	for (size_t i = 0; i < nn; i++)
		npre += strcmp(names[i] + strlen(names[i]) - 4, ".pre") == 0;
	if (!npre && (rc = sa_site_plugins(&s)) < 0)
		goto out;
	for (size_t i = 0; i < nn; i++)
		if ((rc = sa_read_plugins(&s, names[i])) < 0)
			goto out;
	size_t ncf = 0;
	for (size_t i = 0; i < nn; i++) {
		if (strcmp(names[i] + strlen(names[i]) - 4, ".pre") == 0)
			free(names[i]);
		else
			names[ncf++] = names[i];
	}
	nn = ncf;
	for (size_t i = 0; i < nn; i++) {
		rc = sa_parse_file(&s, names[i]);
		if (rc < 0) {
			scan_errf(err, errsz, "%s: %s", names[i], strerror(-rc));
			goto out;
		}
	}
	d->sa_files = (unsigned)nn;
	for (size_t i = 0; i < s.n; i++) {
		struct sa_def *e = &s.v[i];
		double sc;

		if (!e->kind)
			continue; /* a score for a rule defined nowhere here */
		int scored = sa_scored(e, &sc);
		rc = sa_resolve(d, &s, e, 0);
		if (rc < 0)
			goto out;
		rc = 0;
		d->sa_scored_total += (unsigned)scored;
		int local = scored && !sa_is_net(&s, e, 0);

		d->sa_local_total += (unsigned)local;
		int regex = sa_is_regex(e);
		d->sa_regex_scored_total += (unsigned)(scored && regex);
		if (e->state == 2) {
			d->sa_imported++;
			d->sa_scored_imported += (unsigned)scored;
			d->sa_local_imported += (unsigned)local;
			d->sa_regex_scored_imported += (unsigned)(scored && regex);
			if (scored)
				d->sa_kind[strcmp(e->kind, "meta") == 0 ? SA_KIND_META :
					   d->rules[e->rule].scope == SCOPE_EVAL ? SA_KIND_EVAL :
					   e->pf ? SA_KIND_PREFILTER : SA_KIND_EXACT]++;
		} else if ((rc = skip_add(d, e->name, e->src, scored, "%s",
					  e->why ? e->why : "not imported")) < 0)
			goto out;
	}
out:
	if (rc == -ENOMEM)
		scan_errf(err, errsz, "%s: out of memory", dir);
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	closedir(dh);
	sa_free(&s);
	return rc;
}
