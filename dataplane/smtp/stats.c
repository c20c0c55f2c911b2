/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * stats.c - process-wide state shared by the workers: counters per stage
 * and reason, the per-IP connection table (concurrency and rate), and the
 * local recipient map.  Each behind one mutex: touched per connection or
 * per transaction, never per byte.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "outfile.h"
#include "smtpd.h"

#define MAX_COUNTERS 256

static pthread_mutex_t st_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char name[64];
	uint64_t v;
} counters[MAX_COUNTERS];
static int n_counters;

/* stats_add - add n to counter "name" */
void stats_add(const char *name, uint64_t n)
{
	pthread_mutex_lock(&st_lock);
	int i;
	for (i = 0; i < n_counters; i++)
		if (!strcmp(counters[i].name, name))
			break;
	if (i == n_counters && n_counters < MAX_COUNTERS) {
		snprintf(counters[i].name, sizeof(counters[i].name), "%s", name);
		n_counters++;
	}
	if (i < n_counters)
		counters[i].v += n;
	pthread_mutex_unlock(&st_lock);
}

/* stats_inc - one event at stage for reason ("rcpt.relay_denied") */
void stats_inc(const char *stage, const char *reason)
{
	char n[64];
	snprintf(n, sizeof(n), "%s.%s", stage, reason);
	stats_add(n, 1);
}

/* stats_format - "name value" lines, or one JSON object; returns length */
int stats_format(char *buf, size_t sz, int json)
{
	size_t o = 0;
	pthread_mutex_lock(&st_lock);
	if (json)
		o += (size_t)snprintf(buf + o, sz - o, "{");
	for (int i = 0; i < n_counters && o < sz; i++)
		o += (size_t)snprintf(buf + o, sz - o, json ? "%s\"%s\":%llu" : "%s%s %llu\n",
				      json && i ? "," : "", counters[i].name, (unsigned long long)counters[i].v);
	if (json && o < sz)
		o += (size_t)snprintf(buf + o, sz - o, "}");
	pthread_mutex_unlock(&st_lock);
	return o < sz ? (int)o : (int)sz - 1;
}

/* stats_foreach - call fn for every counter (under the lock: fn must not
 * count) */
void stats_foreach(void (*fn)(const char *name, uint64_t v, void *arg), void *arg)
{
	pthread_mutex_lock(&st_lock);
	for (int i = 0; i < n_counters; i++)
		fn(counters[i].name, counters[i].v, arg);
	pthread_mutex_unlock(&st_lock);
}

/* stats_write_file - write the counters to path atomically (rename); a FIFO
 * or device is written in place, never replaced (moat_outfile) */
int stats_write_file(const char *path)
{
	struct moat_outfile o;
	char buf[16384];
	size_t len;
	ssize_t w;
	int r;

	r = moat_outfile_open(&o, path, 0644, MOAT_OUT_STREAM);
	if (r)
		return r;
	len = (size_t)stats_format(buf, sizeof(buf), 0);
	w = write(o.fd, buf, len);
	if (w != (ssize_t)len) {
		r = w < 0 ? -errno : -EIO;
		moat_outfile_abort(&o);
		return r;
	}
	return moat_outfile_commit(&o, 0);
}

/* ---- per-IP limits ---- */

struct ipent {
	struct ipent *next;
	uint8_t addr[16];
	int family;
	int conns;
	int64_t win_start;  /* ms, start of the current one-minute window */
	int win_count;
};

#define IP_BUCKETS 8192
static struct ipent *ip_tab[IP_BUCKETS];
static pthread_mutex_t ip_lock = PTHREAD_MUTEX_INITIALIZER;

/* ip_hash - bucket of an address */
static unsigned ip_hash(int family, const uint8_t *a)
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < (family == 4 ? 4 : 16); i++)
		h = (h ^ a[i]) * 16777619u;
	return h % IP_BUCKETS;
}

/* ip_find - the entry for an address, created if asked */
static struct ipent *ip_find(int family, const uint8_t *a, int create)
{
	unsigned b = ip_hash(family, a);
	size_t l = family == 4 ? 4 : 16;
	for (struct ipent *e = ip_tab[b]; e; e = e->next)
		if (e->family == family && !memcmp(e->addr, a, l))
			return e;
	if (!create)
		return NULL;
	struct ipent *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->family = family;
	memcpy(e->addr, a, l);
	e->next = ip_tab[b];
	ip_tab[b] = e;
	return e;
}

/* iplimit_acquire - count a new connection: 0 ok, -1 too many at once, -2 too fast */
int iplimit_acquire(int family, const uint8_t *addr, int64_t now)
{
	int r = 0;
	pthread_mutex_lock(&ip_lock);
	struct ipent *e = ip_find(family, addr, 1);
	if (!e) {
		pthread_mutex_unlock(&ip_lock);
		return 0; /* out of memory: do not refuse for it */
	}
	if (g_cfg->max_conn_rate_per_ip) {
		if (now - e->win_start >= 60000) {
			e->win_start = now;
			e->win_count = 0;
		}
		if (++e->win_count > g_cfg->max_conn_rate_per_ip)
			r = -2;
	}
	if (!r && g_cfg->max_conn_per_ip && e->conns >= g_cfg->max_conn_per_ip)
		r = -1;
	if (!r)
		e->conns++;
	pthread_mutex_unlock(&ip_lock);
	return r;
}

/* iplimit_release - a counted connection closed */
void iplimit_release(int family, const uint8_t *addr)
{
	pthread_mutex_lock(&ip_lock);
	struct ipent *e = ip_find(family, addr, 0);
	if (e && e->conns > 0)
		e->conns--;
	pthread_mutex_unlock(&ip_lock);
}

/* iplimit_sweep - drop idle entries whose rate window is over */
void iplimit_sweep(int64_t now)
{
	pthread_mutex_lock(&ip_lock);
	for (int b = 0; b < IP_BUCKETS; b++) {
		struct ipent **pp = &ip_tab[b];
		while (*pp) {
			struct ipent *e = *pp;
			if (!e->conns && now - e->win_start >= 60000) {
				*pp = e->next;
				free(e);
			} else {
				pp = &e->next;
			}
		}
	}
	pthread_mutex_unlock(&ip_lock);
}

/* ---- recipient map ---- */

static char **rmap;
static size_t n_rmap;
static int have_rmap;

/* cmp_str - qsort/bsearch on char * */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* rcptmap_load - one address (or "@domain" for a whole domain) per line,
 * '#' comments; case-insensitive */
int rcptmap_load(const char *path, char *err, size_t errsz)
{
	char line[1024];
	int lineno = 0;

	if (!path[0])
		return 0;
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	have_rmap = 1;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		char *p = line, *e;
		while (isspace((unsigned char)*p))
			p++;
		for (e = p; *e && !isspace((unsigned char)*e) && *e != '#'; e++)
			*e = (char)tolower((unsigned char)*e);
		*e = '\0';
		if (!*p)
			continue;
		if (!strchr(p, '@')) {
			snprintf(err, errsz, "%s:%d: not an address or @domain", path, lineno);
			fclose(f);
			return -1;
		}
		char **n = realloc(rmap, sizeof(char *) * (n_rmap + 1));
		if (!n || !(n[n_rmap] = strdup(p))) {
			rmap = n ? n : rmap;
			fclose(f);
			snprintf(err, errsz, "out of memory");
			return -1;
		}
		rmap = n;
		n_rmap++;
	}
	fclose(f);
	qsort(rmap, n_rmap, sizeof(char *), cmp_str);
	return 0;
}

/* rcptmap_lookup - 1 known, 0 unknown, -1 no map configured */
int rcptmap_lookup(const char *addr)
{
	char k[SMTP_ADDR_MAX + 2];
	size_t i;

	if (!have_rmap)
		return -1;
	for (i = 0; addr[i] && i < sizeof(k) - 1; i++)
		k[i] = (char)tolower((unsigned char)addr[i]);
	k[i] = '\0';
	char *kp = k;
	if (bsearch(&kp, rmap, n_rmap, sizeof(char *), cmp_str))
		return 1;
	char *at = strrchr(k, '@');
	if (at) {
		kp = at;
		if (bsearch(&kp, rmap, n_rmap, sizeof(char *), cmp_str))
			return 1;
	}
	return 0;
}
