/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * report.c - optional, non-blocking reporting to moat-controld.
 *
 * Off unless controld_socket is set.  Workers queue newline-delimited JSON
 * messages; the main thread connects (unix stream socket, non-blocking,
 * retried every 5 s), writes what it can and drops what does not fit in a
 * bounded queue (counted as report.dropped).  moat-smtpd never waits for
 * moat-controld and works the same when it is absent.  Messages:
 *   {"type":"hello","program":"moat-smtpd","version":V,"pid":N}
 *   {"type":"listed","addr":IP,"zone":Z,"code":"127.0.0.x","ttl":S,"source":"moat-smtpd"}
 *   {"type":"counters","program":"moat-smtpd","counters":{"stage.reason":N,...}}
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "smtpd.h"

#define REPORT_QMAX 65536

static pthread_mutex_t r_lock = PTHREAD_MUTEX_INITIALIZER;
static char rq[REPORT_QMAX];
static size_t rq_len;
static int r_on, r_fd = -1;
static time_t r_next_try, r_next_counters;
static const struct smtpd_config *r_cfg;

/* enqueue - one message line; dropped (and counted) when the queue is full */
static void enqueue(const char *msg, size_t n)
{
	int dropped = 0;
	pthread_mutex_lock(&r_lock);
	if (rq_len + n <= sizeof(rq)) {
		memcpy(rq + rq_len, msg, n);
		rq_len += n;
	} else {
		dropped = 1;
	}
	pthread_mutex_unlock(&r_lock);
	if (dropped)
		stats_inc("report", "dropped");
}

/* report_init - remember the configuration; nothing happens when off */
void report_init(const struct smtpd_config *c)
{
	r_cfg = c;
	r_on = c->controld_socket[0] != '\0';
}

/* report_listed - a client refused for a DNSBL listing */
void report_listed(const char *ip, const char *zone, const char *code, int ttl)
{
	char m[600];
	if (!r_on)
		return;
	/* ip, zone and code come from our config and inet_ntop: no escaping needed */
	int n = snprintf(m, sizeof(m),
			 "{\"type\":\"listed\",\"addr\":\"%s\",\"zone\":\"%s\",\"code\":\"%s\",\"ttl\":%d,\"source\":\"moat-smtpd\"}\n",
			 ip, zone, code, ttl);
	if (n > 0 && (size_t)n < sizeof(m))
		enqueue(m, (size_t)n);
}

/* try_connect - non-blocking connect to controld_socket */
static void try_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", r_cfg->controld_socket);
	r_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r_fd < 0)
		return;
	if (connect(r_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
		close(r_fd);
		r_fd = -1;
		return;
	}
	char m[160];
	int n = snprintf(m, sizeof(m), "{\"type\":\"hello\",\"program\":\"moat-smtpd\",\"version\":\"%s\",\"pid\":%d}\n",
			 MOAT_VERSION, (int)getpid());
	/* the hello goes first */
	pthread_mutex_lock(&r_lock);
	if (rq_len + (size_t)n <= sizeof(rq)) {
		memmove(rq + n, rq, rq_len);
		memcpy(rq, m, (size_t)n);
		rq_len += (size_t)n;
	}
	pthread_mutex_unlock(&r_lock);
	log_info("controld: connected to %s", r_cfg->controld_socket);
}

/* report_tick - main thread, about once a second: connect, send, read */
void report_tick(void)
{
	time_t now = time(NULL);

	if (!r_on)
		return;
	if (r_fd < 0) {
		if (now < r_next_try)
			return;
		r_next_try = now + 5;
		try_connect();
		if (r_fd < 0)
			return;
	}
	if (now >= r_next_counters) {
		static char cbuf[16384];
		char body[16000];
		r_next_counters = now + r_cfg->controld_report_interval;
		stats_format(body, sizeof(body), 1);
		int n = snprintf(cbuf, sizeof(cbuf), "{\"type\":\"counters\",\"program\":\"moat-smtpd\",\"counters\":%s}\n", body);
		if (n > 0 && (size_t)n < sizeof(cbuf))
			enqueue(cbuf, (size_t)n);
	}
	char junk[4096];
	ssize_t g;
	while ((g = recv(r_fd, junk, sizeof(junk), MSG_DONTWAIT)) > 0)
		; /* replies are moat-controld's business; we only report */
	if (g == 0)
		goto broken;
	pthread_mutex_lock(&r_lock);
	ssize_t w = rq_len ? send(r_fd, rq, rq_len, MSG_DONTWAIT | MSG_NOSIGNAL) : 0;
	if (w > 0) {
		memmove(rq, rq + w, rq_len - (size_t)w);
		rq_len -= (size_t)w;
	}
	pthread_mutex_unlock(&r_lock);
	if (w < 0 && errno != EAGAIN && errno != ENOTCONN)
		goto broken;
	return;
broken:
	close(r_fd);
	r_fd = -1;
	r_next_try = now + 5;
}

/* report_fini - close the connection */
void report_fini(void)
{
	if (r_fd >= 0)
		close(r_fd);
	r_fd = -1;
}
