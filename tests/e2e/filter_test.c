/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * filter_test.c - a content filter for the e2e suite only, linked into
 * moat-smtpd-testfilter (never into moat-smtpd): it exercises the
 * filter_ops contract from the engine's side.  It counts the lines and
 * bytes it is fed, checks every feed ends in CRLF, refuses a message that
 * has a line "REJECTME", and otherwise adds "X-Moat-Test: lines=N bytes=M".
 * Its reload hook ("moatctl rules reload") bumps a generation shown as
 * "gen=N" in that header; it fails while the file named by the environment
 * variable MOAT_TEST_RELOAD_FAIL exists.
 */
#include <stdatomic.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

struct filter_msg {
	size_t lines, bytes;
	int reject, bad_framing;
};

static __thread int inited;
static atomic_int gen;

static int t_thread_init(void) { inited = 1; return 0; }

static struct filter_msg *t_open(void)
{
	return inited ? calloc(1, sizeof(struct filter_msg)) : NULL;
}

static int t_feed(struct filter_msg *m, const char *d, size_t l)
{
	if (l < 2 || d[l - 2] != '\r' || d[l - 1] != '\n')
		m->bad_framing = 1;
	if (l == 10 && !memcmp(d, "REJECTME\r\n", 10))
		m->reject = 1;
	m->lines++;
	m->bytes += l;
	return 0;
}

static int t_finish(struct filter_msg *m, struct filter_verdict *v)
{
	memset(v, 0, sizeof(*v));
	if (m->reject) {
		v->reject = 1;
		snprintf(v->rule, sizeof(v->rule), "test-reject");
		snprintf(v->reply, sizeof(v->reply), "Message refused by the test filter");
		return 0;
	}
	snprintf(v->header_name, sizeof(v->header_name), "X-Moat-Test");
	snprintf(v->header, sizeof(v->header), "lines=%zu bytes=%zu framing=%s", m->lines, m->bytes,
		 m->bad_framing ? "bad" : "crlf");
	if (atomic_load(&gen))
		snprintf(v->header + strlen(v->header), sizeof(v->header) - strlen(v->header),
			 " gen=%d", atomic_load(&gen));
	return 0;
}

static void t_close(struct filter_msg *m) { free(m); }
static size_t t_state_size(void) { return sizeof(struct filter_msg); }

static int t_reload(char *err, size_t errsz)
{
	const char *f = getenv("MOAT_TEST_RELOAD_FAIL");

	if (f && access(f, F_OK) == 0) {
		snprintf(err, errsz, "test filter: %s exists", f);
		return -1;
	}
	atomic_fetch_add(&gen, 1);
	return 0;
}

const struct filter_ops test_filter_ops = {
	.name = "test",
	.thread_init = t_thread_init,
	.open = t_open,
	.feed = t_feed,
	.finish = t_finish,
	.close = t_close,
	.state_size = t_state_size,
	.reload = t_reload,
};
