/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * filter.h - how moat-smtpd hands a message in flight to a content filter.
 *
 * The SMTP engine feeds the message to every configured filter as it
 * arrives, once: bytes after dot-unstuffing, lines ending in CRLF, headers
 * first, exactly what moat would relay (before moat's own added headers).
 * At the final dot it asks each filter for a verdict before replying.  The
 * Hyperscan content gate (scan.c) is one implementation; others (DKIM,
 * antivirus) plug in the same way.
 *
 * Threading: filter_ops functions are called from one worker thread at a
 * time per message; thread_init is called once in each worker thread before
 * any message (per-thread scratch space lives there).
 */
#ifndef MOAT_SMTP_FILTER_H
#define MOAT_SMTP_FILTER_H

#include <stddef.h>

struct filter_verdict {
	int reject;          /* 1: refuse the message (550 5.7.1) */
	char rule[64];       /* rule id that decided, for reply text and log */
	char reply[256];     /* reply text after "550 5.7.1 " (no CRLF) */
	double score;        /* summed score */
	char header[1024];   /* value of a header to add when accepted, or "" */
	char header_name[64];/* e.g. "X-Moat-Scan" */
};

struct filter_msg;       /* per-message state, owned by the filter */

struct filter_ops {
	const char *name;
	/* per worker thread, before any message; 0 or -errno */
	int (*thread_init)(void);
	/* a new message; NULL on failure (the engine tempfails the message) */
	struct filter_msg *(*open)(void);
	/* the next bytes of the message; 0, or -errno (engine tempfails) */
	int (*feed)(struct filter_msg *m, const char *data, size_t len);
	/* end of data: fill v; 0 or -errno */
	int (*finish)(struct filter_msg *m, struct filter_verdict *v);
	/* release; called exactly once per successful open, also on abort */
	void (*close)(struct filter_msg *m);
	/* size in bytes of the per-message state, for moatctl stats */
	size_t (*state_size)(void);
	/* optional ("moatctl rules reload"): re-read the filter's rules.  Called
	 * from the main thread while workers run: swap the rules atomically,
	 * messages in flight finish on the rules they started with, and a bad
	 * file keeps the old rules.  0, or -1 with a reason in err.  NULL when
	 * the filter has no rules to reload. */
	int (*reload)(char *err, size_t errsz);
};

#endif /* MOAT_SMTP_FILTER_H */
