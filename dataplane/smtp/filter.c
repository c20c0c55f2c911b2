/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * filter.c - the content-filter registry: filters by name (filter.h).
 *
 * "none" is built in.  Other filters are found through weak references, so
 * a filter module linked into moat-smtpd registers itself just by defining
 * its ops object (e.g. `const struct filter_ops scan_filter_ops`), and the
 * engine builds without it.  To add one: define the ops, add a weak extern
 * and a row to registry[] below.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "scan.h"
#include "smtpd.h"

static char none_state;

static int none_thread_init(void) { return 0; }
static struct filter_msg *none_open(void) { return (struct filter_msg *)&none_state; }
static int none_feed(struct filter_msg *m, const char *d, size_t l) { (void)m; (void)d; (void)l; return 0; }
static int none_finish(struct filter_msg *m, struct filter_verdict *v) { (void)m; memset(v, 0, sizeof(*v)); return 0; }
static void none_close(struct filter_msg *m) { (void)m; }
static size_t none_state_size(void) { return 0; }

/* none_filter_ops - accepts everything, adds nothing */
const struct filter_ops none_filter_ops = {
	.name = "none",
	.thread_init = none_thread_init,
	.open = none_open,
	.feed = none_feed,
	.finish = none_finish,
	.close = none_close,
	.state_size = none_state_size,
};

extern const struct filter_ops scan_filter_ops __attribute__((weak));
extern const struct filter_ops test_filter_ops __attribute__((weak)); /* tests/e2e only */
extern int scan_init(const struct scan_config *cfg, char *err, size_t errsz) __attribute__((weak));
extern int scan_reload(const char *path, char *err, size_t errsz) __attribute__((weak));

static int scan_active;

/* scan_start - load the content gate's rules from the scan_* keys */
static int scan_start(const struct smtpd_config *c, char *err, size_t errsz)
{
	struct scan_config sc = {
		.rules_path = c->scan_rules,
		.sa_dir = c->scan_sa_dir[0] ? c->scan_sa_dir : NULL,
		.cache_dir = c->scan_cache_dir[0] ? c->scan_cache_dir : NULL,
		.threshold = c->scan_threshold,
		.limits = { .max_depth = (unsigned)c->scan_max_depth,
			    .max_parts = (unsigned)c->scan_max_parts },
	};
	char e[400] = "";

	if (!c->scan_rules[0]) {
		snprintf(err, errsz, "filters: scan needs scan_rules (a rules file)");
		return -1;
	}
	if (!scan_init || scan_init(&sc, e, sizeof(e)) != 0) {
		snprintf(err, errsz, "scan: %s", e[0] ? e : "module not linked");
		return -1;
	}
	scan_active = 1;
	return 0;
}

/* filters_reload - SIGHUP: new rules for new messages; messages in flight
 * finish on the rules they started with; a bad file keeps the old rules.
 * The same path as "moatctl rules reload" (filters_reload_rules logs). */
void filters_reload(void)
{
	char e[400] = "";
	int reloaded, no_hook;

	filters_reload_rules(&reloaded, &no_hook, e, sizeof(e));
}

static const struct filter_ops *registry_get(size_t i)
{
	switch (i) {
	case 0: return &none_filter_ops;
	case 1: return &scan_filter_ops; /* NULL when the scan module is not linked */
	case 2: return &test_filter_ops;
	default: return NULL;
	}
}
#define REGISTRY_N 3

const struct filter_ops *g_filters[CFG_MAX_FILTERS];
int g_n_filters;

/* filter_find - the ops registered under name, or NULL */
const struct filter_ops *filter_find(const char *name)
{
	for (size_t i = 0; i < REGISTRY_N; i++) {
		const struct filter_ops *o = registry_get(i);
		if (o && o->name && !strcmp(o->name, name))
			return o;
	}
	return NULL;
}

/* filters_resolve - turn the configured names into ops ("none" drops out) */
int filters_resolve(const struct smtpd_config *c, char *err, size_t errsz)
{
	g_n_filters = 0;
	for (int i = 0; i < c->n_filters; i++) {
		const struct filter_ops *o = filter_find(c->filters[i]);
		if (!o) {
			snprintf(err, errsz, "filters: unknown filter '%s' (known: none%s)", c->filters[i],
				 &scan_filter_ops ? ", scan" : "");
			return -1;
		}
		if (o == &none_filter_ops)
			continue;
		if (o == &scan_filter_ops && !scan_active && scan_start(c, err, errsz) != 0)
			return -1;
		g_filters[g_n_filters++] = o;
	}
	return 0;
}

/* filters_thread_init - per worker thread, before any message */
int filters_thread_init(void)
{
	for (int i = 0; i < g_n_filters; i++) {
		int r = g_filters[i]->thread_init ? g_filters[i]->thread_init() : 0;
		if (r != 0) {
			log_err("filter %s: thread_init failed (%d)", g_filters[i]->name, r);
			return r;
		}
	}
	return 0;
}

/* filter_reload - one filter's rules: 1 reloaded, 0 no rules, -1 failed.
 * scan_filter_ops has no reload hook: the content gate reloads through
 * scan_reload (weak) with its configured rules file. */
static int filter_reload(const struct filter_ops *o, char *e, size_t esz)
{
	if (o->reload)
		return o->reload(e, esz) == 0 ? 1 : -1;
	if (o == &scan_filter_ops && scan_reload)
		return scan_reload(NULL, e, esz) == 0 ? 1 : -1;
	return 0;
}

/* filters_reload_rules - "rules reload": every configured filter with a
 * reload hook re-reads its rules.  Counts in *reloaded and *no_hook; on the
 * first failure returns -1 with "filter NAME: reason" in err (the filters
 * after it are still reloaded: each keeps its old rules on its own error). */
int filters_reload_rules(int *reloaded, int *no_hook, char *err, size_t errsz)
{
	int failed = 0;

	*reloaded = *no_hook = 0;
	for (int i = 0; i < g_n_filters; i++) {
		const struct filter_ops *o = g_filters[i];
		char e[256] = "";

		int r = filter_reload(o, e, sizeof(e));

		if (r == 0) {
			(*no_hook)++;
			continue;
		}
		if (r == 1) {
			(*reloaded)++;
			log_info("filter %s: rules reloaded", o->name);
			continue;
		}
		log_err("filter %s: reload failed, old rules stay: %s", o->name, e);
		if (!failed)
			snprintf(err, errsz, "filter %s: %s (old rules kept)", o->name, e[0] ? e : "reload failed");
		failed = 1;
	}
	return failed ? -1 : 0;
}
