/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * metrics.c - Prometheus text exposition over HTTP (libmicrohttpd).
 *
 * libmicrohttpd answers from its own thread; the daemon's state belongs to
 * the event loop.  So the loop renders the whole text once a second
 * (metrics_update) and the HTTP thread only copies that snapshot under a
 * mutex: no request ever touches live state.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "controld.h"
#include "log.h"

struct metrics {
	struct MHD_Daemon *mhd;
	pthread_mutex_t lock;
	char *text;
	size_t len;
};

struct sbuf {
	char *p;
	size_t len, cap;
};

/* sb_printf - append formatted text */
static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;

	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);

		va_end(ap);
		if (n < 0)
			return;
		if (b->p && (size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 8192;

		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);

		if (!np)
			return;
		b->p = np;
		b->cap = cap;
	}
}

/* sb_metric - one unlabelled metric with its HELP and TYPE lines */
static void sb_metric(struct sbuf *b, const char *name, const char *type, const char *help,
		      uint64_t v)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
		  (unsigned long long)v);
}

/* answer - every GET gets the snapshot (the path is not checked) */
static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct metrics *m = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void)url;
	(void)version;
	(void)upload;
	(void)upload_size;
	(void)con_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return MHD_NO;
	pthread_mutex_lock(&m->lock);
	r = MHD_create_response_from_buffer(m->len, m->text ? m->text : (char *)"",
					    MHD_RESPMEM_MUST_COPY);
	pthread_mutex_unlock(&m->lock);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* metrics_start - listen on a */
struct metrics *metrics_start(const struct cfg_addr *a, char *err, size_t errsz)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&m->lock, NULL);
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	if (a->ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	m->mhd = MHD_start_daemon(flags, 0, NULL, NULL, answer, m,
				  MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&a->ss,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)32,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
				  MHD_OPTION_END);
	if (!m->mhd) {
		snprintf(err, errsz, "cannot listen on %s: %s", a->text, strerror(errno));
		pthread_mutex_destroy(&m->lock);
		free(m);
		return NULL;
	}
	log_info("event=metrics listen=%s", a->text);
	return m;
}

/* Per-zone series: one row each (name, help, counter or gauge, value). */
static long long zm_serial(const struct cd_zone *z) { return z->serial; }
static long long zm_entries(const struct cd_zone *z) { return (long long)z->n; }
static long long zm_success(const struct cd_zone *z) { return (long long)z->last_success; }
static long long zm_failures(const struct cd_zone *z) { return (long long)z->failures; }
static long long zm_stale(const struct cd_zone *z) { return z->state == ZS_STALE; }
static long long zm_quar(const struct cd_zone *z) { return z->state == ZS_QUARANTINED; }
static long long zm_ok(const struct cd_zone *z) { return z->state == ZS_OK; }
static long long zm_undec(const struct cd_zone *z) { return (long long)z->undecodable; }

static const struct zone_metric {
	const char *name, *help;
	int counter;
	long long (*get)(const struct cd_zone *z);
} zone_metrics[] = {
	{ "moat_zone_serial", "SOA serial of the data a zone serves.", 0, zm_serial },
	{ "moat_zone_entries", "Listings a zone contributes to the table.", 0, zm_entries },
	{ "moat_zone_last_success_seconds", "Unix time of the last successful load.", 0, zm_success },
	{ "moat_zone_failures_total", "Failed loads (transfer, table, sanity).", 1, zm_failures },
	{ "moat_zone_stale", "1 while a zone serves expired data (on_expire=keep).", 0, zm_stale },
	{ "moat_zone_quarantined", "1 while a zone's last load is quarantined.", 0, zm_quar },
	{ "moat_zone_ok", "1 when a zone's last load succeeded.", 0, zm_ok },
	{ "moat_zone_undecodable_records",
	  "Records of the serving data whose owner is not an address name (not listed).", 0,
	  zm_undec },
};

/* metrics_update - render the snapshot (event loop, once a second) */
void metrics_update(struct metrics *m, struct cd *d)
{
	static const char *const names[] = MOAT_STAT_NAMES;
	struct sbuf b = { 0 };
	time_t now = time(NULL);
	uint64_t c[MOAT_STAT__MAX];

	for (size_t k = 0; k < sizeof(zone_metrics) / sizeof(zone_metrics[0]); k++) {
		const struct zone_metric *zm = &zone_metrics[k];

		sb_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", zm->name, zm->help, zm->name,
			  zm->counter ? "counter" : "gauge");
		for (int i = 0; i < d->nzones; i++)
			sb_printf(&b, "%s{zone=\"%s\"} %lld\n", zm->name, d->zones[i]->cfg.name,
				  zm->get(d->zones[i]));
	}
	sb_metric(&b, "moat_operator_entries", "gauge", "Operator and moat-smtpd entries.",
		  d->nentries);
	sb_metric(&b, "moat_publishes_total", "counter", "Table publishes to the fast path.",
		  d->publishes);
	sb_metric(&b, "moat_publish_errors_total", "counter", "Publishes that failed.",
		  d->publish_errors);
	sb_metric(&b, "moat_fastpath_dirty", "gauge",
		  "1 while the maps may not hold the table (a publish failed; resync pending).",
		  (uint64_t)d->fp_dirty);
	sb_metric(&b, "moat_fastpath_resyncs_total", "counter",
		  "Resyncs that repaired the fast path after a failed publish.", d->fp_resyncs);
	sb_metric(&b, "moat_fastpath_resync_errors_total", "counter", "Resync attempts that failed.",
		  d->fp_resync_errors);
	sb_metric(&b, "moat_fastpath_lost_total", "counter",
		  "Times the fast path's own process (moat-dpdk) went away.", d->fp_lost);
	sb_metric(&b, "moat_reload_errors_total", "counter", "Configuration reloads refused.",
		  d->reload_errors);
	if (cd_read_stats(d, c) == 0) {
		sb_printf(&b, "# HELP moat_fastpath_packets_total Fast-path counters by verdict/reason.\n"
			      "# TYPE moat_fastpath_packets_total counter\n");
		for (int i = 0; i < MOAT_STAT__MAX; i++)
			sb_printf(&b, "moat_fastpath_packets_total{counter=\"%s\"} %llu\n", names[i],
				  (unsigned long long)c[i]);
	}
	sb_printf(&b, "# HELP moat_controld_start_time_seconds Unix time moat-controld started.\n"
		      "# TYPE moat_controld_start_time_seconds gauge\nmoat_controld_start_time_seconds %lld\n",
		  (long long)d->started);
	(void)now;
	pthread_mutex_lock(&m->lock);
	free(m->text);
	m->text = b.p;
	m->len = b.len;
	pthread_mutex_unlock(&m->lock);
}

/* metrics_stop - stop the HTTP thread */
void metrics_stop(struct metrics *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->mhd);
	pthread_mutex_destroy(&m->lock);
	free(m->text);
	free(m);
}
