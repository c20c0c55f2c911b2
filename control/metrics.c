/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * metrics.c - moat-controld's Prometheus metrics: the event loop renders
 * the whole text once a second (metrics_update) and hands it to the shared
 * HTTP server (lib/promhttp.c), whose thread only serves that snapshot.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controld.h"
#include "fleet.h"
#include "log.h"
#include "promhttp.h"

struct metrics {
	struct moat_prom *prom;
};

/* metrics_start - listen on a */
struct metrics *metrics_start(const struct cfg_addr *a, char *err, size_t errsz)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	m->prom = moat_prom_start((const struct sockaddr *)&a->ss, a->text, err, errsz);
	if (!m->prom) {
		free(m);
		return NULL;
	}
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

/*
 * kernel_syncookies - the kernel's SYN-cookie counters of this network
 * namespace (TcpExt SyncookiesSent, SyncookiesRecv, SyncookiesFailed of
 * /proc/self/net/netstat): with [xdp] syn_cookies, Recv counts the cookie
 * ACKs the listener took (moat's cookies and its own), Failed the wrong
 * ones.  0, or -1 when the file or a field is missing.
 */
static int kernel_syncookies(uint64_t v[3])
{
	static const char *const want[3] = { "SyncookiesSent", "SyncookiesRecv", "SyncookiesFailed" };
	char names[8192], vals[8192];
	FILE *f = fopen("/proc/self/net/netstat", "r");
	int found = 0;

	if (!f)
		return -1;
	while (fgets(names, sizeof(names), f) && fgets(vals, sizeof(vals), f)) {
		char *sn, *sv, *n, *x;

		if (strncmp(names, "TcpExt:", 7) || strncmp(vals, "TcpExt:", 7))
			continue;
		n = strtok_r(names + 7, " \n", &sn);
		x = strtok_r(vals + 7, " \n", &sv);
		for (; n && x; n = strtok_r(NULL, " \n", &sn), x = strtok_r(NULL, " \n", &sv))
			for (int i = 0; i < 3; i++)
				if (!strcmp(n, want[i])) {
					v[i] = strtoull(x, NULL, 10);
					found |= 1 << i;
				}
		break;
	}
	fclose(f);
	return found == 7 ? 0 : -1;
}

/* metrics_update - render the snapshot (event loop, once a second) */
void metrics_update(struct metrics *m, struct cd *d)
{
	static const char *const names[] = MOAT_STAT_NAMES;
	struct moat_sbuf b = { 0 };
	time_t now = time(NULL);
	uint64_t c[MOAT_STAT__MAX];

	for (size_t k = 0; k < sizeof(zone_metrics) / sizeof(zone_metrics[0]); k++) {
		const struct zone_metric *zm = &zone_metrics[k];

		moat_sbuf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", zm->name, zm->help, zm->name,
			  zm->counter ? "counter" : "gauge");
		for (int i = 0; i < d->nzones; i++)
			moat_sbuf_printf(&b, "%s{zone=\"%s\"} %lld\n", zm->name, d->zones[i]->cfg.name,
				  zm->get(d->zones[i]));
	}
	moat_prom_metric(&b, "moat_operator_entries", "gauge", "Operator and moat-smtpd entries.",
		  d->nentries);
	moat_prom_metric(&b, "moat_publishes_total", "counter", "Table publishes to the fast path.",
		  d->publishes);
	moat_prom_metric(&b, "moat_publish_errors_total", "counter", "Publishes that failed.",
		  d->publish_errors);
	moat_prom_metric(&b, "moat_fastpath_dirty", "gauge",
		  "1 while the maps may not hold the table (a publish failed; resync pending).",
		  (uint64_t)d->fp_dirty);
	moat_prom_metric(&b, "moat_fastpath_resyncs_total", "counter",
		  "Resyncs that repaired the fast path after a failed publish.", d->fp_resyncs);
	moat_prom_metric(&b, "moat_fastpath_resync_errors_total", "counter", "Resync attempts that failed.",
		  d->fp_resync_errors);
	moat_prom_metric(&b, "moat_fastpath_lost_total", "counter",
		  "Times the fast path's own process (moat-dpdk) went away.", d->fp_lost);
	moat_prom_metric(&b, "moat_reload_errors_total", "counter", "Configuration reloads refused.",
		  d->reload_errors);
	moat_prom_metric(&b, "moat_persist_errors_total", "counter",
		  "Operator entries saves that failed (disk full, I/O error).", d->persist_errors);
	moat_prom_metric(&b, "moat_entries_restore_refused_total", "counter",
		  "Records of the entries' files refused at start (bad prefix, action or source).",
		  d->entries_refused);
	moat_prom_metric(&b, "moat_entries_unsaved", "gauge",
		  "1 while operator entries live in memory only (the last save failed; retried).",
		  (uint64_t)d->entries_unsaved);
	if (d->fp_cookies) {
		moat_prom_metric(&b, "moat_syn_cookies_held", "gauge",
			  "1 while the fast path's SYN cookies are held (net.ipv4.tcp_syncookies "
			  "is not 2: every unlisted SYN goes to the kernel).",
			  (uint64_t)d->fp_cookies_held);
		moat_prom_metric(&b, "moat_syn_cookies_holds_total", "counter",
			  "Times the SYN cookies were held for net.ipv4.tcp_syncookies.",
			  d->fp_cookie_holds);
	}
	if (cd_read_stats(d, c) == 0) {
		moat_sbuf_printf(&b, "# HELP moat_fastpath_packets_total Fast-path counters by verdict/reason.\n"
			      "# TYPE moat_fastpath_packets_total counter\n");
		for (int i = 0; i < MOAT_STAT__MAX; i++)
			moat_sbuf_printf(&b, "moat_fastpath_packets_total{counter=\"%s\"} %llu\n", names[i],
				  (unsigned long long)c[i]);
	}
	{
		static const char *const kn[3] = { "sent", "recv", "failed" };
		uint64_t k[3];

		if (kernel_syncookies(k) == 0) {
			moat_sbuf_printf(&b, "# HELP moat_kernel_syncookies_total The kernel's SYN cookies in "
				      "this network namespace: sent by it, ACKs taken, ACKs refused.\n"
				      "# TYPE moat_kernel_syncookies_total counter\n");
			for (int i = 0; i < 3; i++)
				moat_sbuf_printf(&b, "moat_kernel_syncookies_total{counter=\"%s\"} %llu\n",
					      kn[i], (unsigned long long)k[i]);
		}
	}
	fleet_metrics(d, &b);
	moat_sbuf_printf(&b, "# HELP moat_controld_start_time_seconds Unix time moat-controld started.\n"
		      "# TYPE moat_controld_start_time_seconds gauge\nmoat_controld_start_time_seconds %lld\n",
		  (long long)d->started);
	(void)now;
	moat_prom_publish(m->prom, &b);
}

/* metrics_stop - stop the HTTP thread */
void metrics_stop(struct metrics *m)
{
	if (!m)
		return;
	moat_prom_stop(m->prom);
	free(m);
}
