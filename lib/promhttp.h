/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * promhttp.h - Prometheus text exposition over HTTP (libmicrohttpd), shared
 * by moat-controld and moat-smtpd.  The daemon renders its whole text on
 * its own thread (once a second) into a moat_sbuf and publishes it; the
 * HTTP thread only copies the last snapshot under a mutex, so no request
 * ever touches a daemon's live state.
 */
#ifndef MOAT_PROMHTTP_H
#define MOAT_PROMHTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* a growing text buffer */
struct moat_sbuf {
	char *p;
	size_t len, cap;
};

/* moat_sbuf_printf - append formatted text (dropped when out of memory) */
void moat_sbuf_printf(struct moat_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* moat_prom_head - the HELP and TYPE lines of a metric family */
void moat_prom_head(struct moat_sbuf *b, const char *name, const char *type, const char *help);
/* moat_prom_metric - one unlabelled metric with its HELP and TYPE lines */
void moat_prom_metric(struct moat_sbuf *b, const char *name, const char *type, const char *help, uint64_t v);
/* moat_prom_label - copy a label value escaped for the exposition format
 * (backslash, double quote, newline) */
const char *moat_prom_label(char *dst, size_t sz, const char *src);

struct moat_prom;

/* moat_prom_start - serve GET (any path) on sa; text is the address as
 * written, for logs and errors.  NULL with the reason in err. */
struct moat_prom *moat_prom_start(const struct sockaddr *sa, const char *text, char *err, size_t errsz);
/* moat_prom_publish - replace the snapshot with b's text (b is emptied:
 * the buffer now belongs to m) */
void moat_prom_publish(struct moat_prom *m, struct moat_sbuf *b);
/* moat_prom_stop - stop the HTTP thread, free everything (NULL: nothing) */
void moat_prom_stop(struct moat_prom *m);

#endif /* MOAT_PROMHTTP_H */
