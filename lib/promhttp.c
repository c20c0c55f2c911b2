/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * promhttp.c - Prometheus text exposition over HTTP (libmicrohttpd), for
 * every moat daemon (promhttp.h).  libmicrohttpd answers from its own
 * thread; the daemon's state belongs to its own loop, so the daemon renders
 * a snapshot and this file only serves a copy of it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "log.h"
#include "promhttp.h"

struct moat_prom {
	struct MHD_Daemon *mhd;
	pthread_mutex_t lock;
	char *text;
	size_t len;
};

/* moat_sbuf_printf - append formatted text */
void moat_sbuf_printf(struct moat_sbuf *b, const char *fmt, ...)
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

/* moat_prom_head - HELP and TYPE of a family */
void moat_prom_head(struct moat_sbuf *b, const char *name, const char *type, const char *help)
{
	moat_sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* moat_prom_metric - one unlabelled metric with its HELP and TYPE lines */
void moat_prom_metric(struct moat_sbuf *b, const char *name, const char *type, const char *help, uint64_t v)
{
	moat_prom_head(b, name, type, help);
	moat_sbuf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

/* moat_prom_label - a label value escaped (\\, \", \n) */
const char *moat_prom_label(char *dst, size_t sz, const char *src)
{
	size_t o = 0;

	for (; *src && o + 3 < sz; src++) {
		if (*src == '\\' || *src == '"' || *src == '\n') {
			dst[o++] = '\\';
			dst[o++] = *src == '\n' ? 'n' : *src;
		} else {
			dst[o++] = *src;
		}
	}
	dst[o] = '\0';
	return dst;
}

/* answer - every GET gets the snapshot (the path is not checked) */
static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct moat_prom *m = cls;
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
	r = MHD_create_response_from_buffer(m->len, m->text ? m->text : (char *)"", MHD_RESPMEM_MUST_COPY);
	pthread_mutex_unlock(&m->lock);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* moat_prom_start - listen on sa */
struct moat_prom *moat_prom_start(const struct sockaddr *sa, const char *text, char *err, size_t errsz)
{
	struct moat_prom *m = calloc(1, sizeof(*m));

	if (!m) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&m->lock, NULL);
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	if (sa->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	m->mhd = MHD_start_daemon(flags, 0, NULL, NULL, answer, m, MHD_OPTION_SOCK_ADDR, sa,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)32, MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned)10, MHD_OPTION_END);
	if (!m->mhd) {
		snprintf(err, errsz, "cannot listen on %s: %s", text, strerror(errno));
		pthread_mutex_destroy(&m->lock);
		free(m);
		return NULL;
	}
	log_info("event=metrics listen=%s", text);
	return m;
}

/* moat_prom_publish - swap in b's text */
void moat_prom_publish(struct moat_prom *m, struct moat_sbuf *b)
{
	pthread_mutex_lock(&m->lock);
	free(m->text);
	m->text = b->p;
	m->len = b->len;
	pthread_mutex_unlock(&m->lock);
	memset(b, 0, sizeof(*b));
}

/* moat_prom_stop - stop the HTTP thread */
void moat_prom_stop(struct moat_prom *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->mhd);
	pthread_mutex_destroy(&m->lock);
	free(m->text);
	free(m);
}
