/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * metrics.c - moat-smtpd's Prometheus metrics.  The main thread renders the
 * text once a second from the process counters (stats.c, the same ones
 * `moatctl smtp stats` and stats_file show) and a few gauges, and hands it
 * to the shared HTTP server (lib/promhttp.c).  Curated families first
 * (sessions, refusals by stage and reason, relay outcomes, content scan,
 * SPF results, antivirus), then every counter as
 * moat_smtpd_events_total{stage,reason} so nothing counted is missing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "promhttp.h"
#include "smtpd.h"

#define MAX_SNAP 256

static struct moat_prom *prom;
static time_t started;

struct snap {
	char name[64];
	uint64_t v;
};

struct snapv {
	struct snap s[MAX_SNAP];
	int n;
};

/* take - stats_foreach callback: copy one counter */
static void take(const char *name, uint64_t v, void *arg)
{
	struct snapv *sv = arg;
	if (sv->n < MAX_SNAP) {
		snprintf(sv->s[sv->n].name, sizeof(sv->s[sv->n].name), "%s", name);
		sv->s[sv->n++].v = v;
	}
}

/* get - a counter's value, 0 when never counted */
static uint64_t get(const struct snapv *sv, const char *name)
{
	for (int i = 0; i < sv->n; i++)
		if (!strcmp(sv->s[i].name, name))
			return sv->s[i].v;
	return 0;
}

/* family - every counter "PREFIX.REST" as name{label="REST"} (refusals
 * split REST once more into stage and reason); with only, just the RESTs
 * it lists (other counters share the prefix) */
static void family(struct moat_sbuf *b, const struct snapv *sv, const char *prefix, const char *name,
		   const char *type, const char *help, const char *label, int two, const char *const *only)
{
	size_t pl = strlen(prefix);
	char e1[80], e2[80];

	moat_prom_head(b, name, type, help);
	for (int i = 0; i < sv->n; i++) {
		const char *n = sv->s[i].name;
		if (strncmp(n, prefix, pl) || n[pl] != '.')
			continue;
		n += pl + 1;
		int listed = !only;
		for (int k = 0; only && only[k] && !listed; k++)
			listed = !strcmp(only[k], n);
		if (!listed)
			continue;
		const char *dot = two ? strchr(n, '.') : NULL;
		if (two && !dot)
			continue;
		if (two) {
			char st[64];
			snprintf(st, sizeof(st), "%.*s", (int)(dot - n), n);
			moat_sbuf_printf(b, "%s{stage=\"%s\",reason=\"%s\"} %llu\n", name,
					 moat_prom_label(e1, sizeof(e1), st), moat_prom_label(e2, sizeof(e2), dot + 1),
					 (unsigned long long)sv->s[i].v);
		} else {
			moat_sbuf_printf(b, "%s{%s=\"%s\"} %llu\n", name, label, moat_prom_label(e1, sizeof(e1), n),
					 (unsigned long long)sv->s[i].v);
		}
	}
}

/* smtpd_metrics_start - listen on the configured address; 0, or -1 with
 * the reason in err */
int smtpd_metrics_start(const struct smtpd_config *c, char *err, size_t errsz)
{
	started = time(NULL);
	if (!c->metrics_len)
		return 0;
	prom = moat_prom_start((const struct sockaddr *)&c->metrics, c->metrics_text, err, errsz);
	if (!prom)
		return -1;
	smtpd_metrics_update(); /* a first scrape sees every family */
	return 0;
}

/* smtpd_metrics_update - render the snapshot (main thread, once a second) */
void smtpd_metrics_update(void)
{
	static const struct {
		const char *counter, *outcome;
	} relay_outcomes[] = {
		{ "data.relayed", "delivered" },
		{ "data.downstream", "refused" },
		{ "data.downstream_unavailable", "unavailable" },
		{ "data.downstream_timeout", "timeout" },
		{ "data.recipient_now_refused", "recipient_refused_on_replay" },
		{ "relay.envelope_replayed", "envelope_replayed" },
		{ "relay.lost_idle", "lost_idle" },
	};
	static const char *const av_results[] = { "clean", "virus", "unavailable", "timeout", "error" };
	/* RFC 8601 result values: the stages also count other things (DKIM's
	 * DNS answers, cache hits ...) */
	static const char *const dkim_results[] = { "pass", "fail", "neutral", "policy", "temperror",
						    "permerror", "none", NULL };
	static const char *const dmarc_results[] = { "pass", "fail", "none", "temperror", "permerror", NULL };
	static const char *const spf_results[] = { "pass", "fail", "softfail", "neutral", "none", "temperror",
						   "permerror", NULL };
	struct moat_sbuf b = { 0 };
	struct snapv *sv;
	char k[64];

	if (!prom)
		return;
	sv = calloc(1, sizeof(*sv));
	if (!sv)
		return;
	stats_foreach(take, sv);

	moat_prom_metric(&b, "moat_smtpd_sessions_total", "counter", "SMTP sessions accepted (TCP).",
			 get(sv, "connect.accepted"));
	moat_prom_metric(&b, "moat_smtpd_sessions_active", "gauge", "SMTP sessions open now.",
			 (uint64_t)session_count());
	family(&b, sv, "refused", "moat_smtpd_refusals_total", "counter",
	       "Transactions or sessions refused, by stage and reason.", NULL, 1, NULL);
	moat_prom_head(&b, "moat_smtpd_relay_total", "counter",
		       "Before-queue relay outcomes at end of data (and envelope replays).");
	for (size_t i = 0; i < sizeof(relay_outcomes) / sizeof(relay_outcomes[0]); i++)
		moat_sbuf_printf(&b, "moat_smtpd_relay_total{outcome=\"%s\"} %llu\n", relay_outcomes[i].outcome,
				 (unsigned long long)get(sv, relay_outcomes[i].counter));
	moat_prom_metric(&b, "moat_smtpd_scan_messages_total", "counter",
			 "Messages through the content filters (verdict reached).", get(sv, "scan.messages"));
	moat_prom_metric(&b, "moat_smtpd_scan_bytes_total", "counter", "Message bytes through the content filters.",
			 get(sv, "scan.bytes"));
	moat_prom_head(&b, "moat_smtpd_scan_seconds_total", "counter",
		       "Time spent in the content filters (feed and verdict); / messages = mean latency.");
	moat_sbuf_printf(&b, "moat_smtpd_scan_seconds_total %.6f\n", (double)get(sv, "scan.ns") / 1e9);
	family(&b, sv, "spf", "moat_smtpd_spf_results_total", "counter", "SPF results at MAIL FROM.", "result", 0,
	       spf_results);
	/* counted as dkim.RESULT / dmarc.RESULT by the DKIM/DMARC check */
	family(&b, sv, "dkim", "moat_smtpd_dkim_results_total", "counter", "DKIM signature results.", "result", 0,
	       dkim_results);
	family(&b, sv, "dmarc", "moat_smtpd_dmarc_results_total", "counter", "DMARC results.", "result", 0, dmarc_results);
	moat_prom_head(&b, "moat_smtpd_av_scans_total", "counter", "clamd verdicts at end of data, by result.");
	for (size_t i = 0; i < sizeof(av_results) / sizeof(av_results[0]); i++) {
		snprintf(k, sizeof(k), "av.%s", av_results[i]);
		moat_sbuf_printf(&b, "moat_smtpd_av_scans_total{result=\"%s\"} %llu\n", av_results[i],
				 (unsigned long long)get(sv, k));
	}
	moat_prom_head(&b, "moat_smtpd_av_scan_seconds_total", "counter",
		       "Time waiting for clamd's verdicts; / scans = mean latency.");
	moat_sbuf_printf(&b, "moat_smtpd_av_scan_seconds_total %.3f\n", (double)get(sv, "av.scan_ms") / 1e3);
	moat_prom_metric(&b, "moat_smtpd_av_passed_unscanned_total", "counter",
			 "Messages relayed without a verdict (clamd_unavailable = pass).", get(sv, "av.passed_unscanned"));
	moat_prom_head(&b, "moat_smtpd_clamd_db_age_seconds", "gauge",
		       "Age of clamd's signature database at the last check (-1 unknown).");
	moat_sbuf_printf(&b, "moat_smtpd_clamd_db_age_seconds %lld\n", (long long)av_db_age_s());
	moat_prom_metric(&b, "moat_smtpd_clamd_db_stale", "gauge",
			 "1 while clamd's database is older than clamd_db_max_age_h.", (uint64_t)av_db_stale());
	moat_prom_head(&b, "moat_smtpd_events_total", "counter",
		       "Every moat-smtpd counter (stats_file, moatctl smtp stats) as stage and reason.");
	for (int i = 0; i < sv->n; i++) {
		const char *n = sv->s[i].name, *dot = strchr(n, '.');
		char e1[80], e2[80], st[64];
		if (!dot)
			continue;
		snprintf(st, sizeof(st), "%.*s", (int)(dot - n), n);
		moat_sbuf_printf(&b, "moat_smtpd_events_total{stage=\"%s\",reason=\"%s\"} %llu\n",
				 moat_prom_label(e1, sizeof(e1), st), moat_prom_label(e2, sizeof(e2), dot + 1),
				 (unsigned long long)sv->s[i].v);
	}
	moat_prom_head(&b, "moat_smtpd_start_time_seconds", "gauge", "Unix time moat-smtpd started.");
	moat_sbuf_printf(&b, "moat_smtpd_start_time_seconds %lld\n", (long long)started);
	free(sv);
	moat_prom_publish(prom, &b);
}

/* smtpd_metrics_stop - stop the HTTP thread */
void smtpd_metrics_stop(void)
{
	moat_prom_stop(prom);
	prom = NULL;
}
