/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * report.c - moat-smtpd's connection to moat-controld, in controld's own
 * protocol (lib/ctlproto.h, docs/control-protocol.md).
 *
 * Off unless controld_socket is set.  The main thread owns the connection:
 * it says smtp.hello on every connect, sends smtp.report for refused
 * clients, asks `lookup` for each new client (so an operator's allow entry
 * or a table listing the fast path missed counts at the SMTP gate too), and
 * answers the requests moat-controld relays from moatctl (rules.reload,
 * smtp.stats, ping).  A lookup is answered to its worker exactly once:
 * with moat-controld's action, or "" on timeout or a lost connection.  Worker threads only append a report
 * line to a bounded queue and poke an eventfd: they never wait for
 * moat-controld, and a full queue drops the report (controld.report_dropped).
 * Everything is non-blocking; a lost connection is retried with a backoff
 * (1 s doubling to 30 s), and moat-smtpd serves mail the same without it.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ctlproto.h"
#include "log.h"
#include "smtpd.h"

#define REPORT_QMAX (64 * 1024)   /* reports waiting for the main thread */
#define OUT_MAX (1024 * 1024)     /* bytes queued for moat-controld */
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define LOOKUPS_MAX 4096          /* lookups in flight at moat-controld */

/* a lookup: worker -> main thread -> moat-controld -> worker */
struct ctl_lookup {
	struct ctl_lookup *next;
	struct session *s;           /* holds a reference (s->refs) */
	struct worker *w;
	int64_t id;
	int64_t deadline;            /* ms */
	char addr[64];
	char action[8];              /* the answer; "" = none */
	int live_only;               /* listed only by moat-controld's live zones */
};

/* worker -> main thread: whole lines, bounded */
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static char rq[REPORT_QMAX];
static size_t rq_len;
static atomic_llong next_id = 1;
static struct ctl_lookup *lq_head, *lq_tail;  /* asked, not sent (q_lock) */
static atomic_int ctl_up;          /* registered: lookups are worth asking */

/* main thread only */
static const struct smtpd_config *r_cfg;
static int r_on;
static int wake_fd = -1;
static int c_fd = -1;
static int c_registered;           /* our smtp.hello was answered */
static int64_t c_hello_id;
static struct ctl_buf c_in;
static char *ob;                   /* output: whole lines */
static size_t ob_len, ob_off;      /* bytes held, bytes already sent */
static int64_t next_try_ms;
static int backoff_ms = BACKOFF_MIN_MS;
static int was_up;                 /* log the first failure after a loss only */
static time_t started;
static struct ctl_lookup *pending; /* sent, waiting for the answer */
static int n_pending;

/* report_init - remember the configuration; nothing happens when off */
void report_init(const struct smtpd_config *c)
{
	r_cfg = c;
	r_on = c->controld_socket[0] != '\0';
	started = time(NULL);
	if (!r_on)
		return;
	wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ctl_buf_init(&c_in, CTL_MAX_LINE);
}

/* report_listed - worker thread: a client refused for a DNSBL listing
 * (report_refused with kind dnsbl, reason "moat-smtpd: dnsbl ZONE CODE") */
void report_listed(const char *ip, const char *zone, const char *code)
{
	char reason[300];

	snprintf(reason, sizeof(reason), "moat-smtpd: dnsbl %s %s", zone, code);
	report_refused(ip, "dnsbl", reason);
}

/* report_refused - worker thread: a refused client.  The report asks
 * moat-controld to list the address (source smtp, kind dnsbl, pregreet,
 * protocol or content) with report_action for report_ttl seconds, so the
 * fast path stops its next SYN. */
void report_refused(const char *ip, const char *kind, const char *reason)
{
	size_t n;
	int dropped = 0;

	if (!r_on)
		return;
	struct json_object *m = ctl_request_new(atomic_fetch_add(&next_id, 1), "smtp.report");

	json_object_object_add(m, "prefix", json_object_new_string(ip));
	json_object_object_add(m, "action", json_object_new_string(r_cfg->report_action));
	if (r_cfg->report_ttl)
		json_object_object_add(m, "ttl", json_object_new_int(r_cfg->report_ttl));
	json_object_object_add(m, "reason", json_object_new_string(reason));
	json_object_object_add(m, "kind", json_object_new_string(kind));
	char *line = ctl_format(m, &n);

	json_object_put(m);
	if (!line) {
		stats_inc("controld", "report_dropped");
		return;
	}
	pthread_mutex_lock(&q_lock);
	if (rq_len + n <= sizeof(rq)) {
		memcpy(rq + rq_len, line, n);
		rq_len += n;
	} else {
		dropped = 1;
	}
	pthread_mutex_unlock(&q_lock);
	free(line);
	if (dropped) {
		stats_inc("controld", "report_dropped");
		return;
	}
	uint64_t one = 1;

	if (write(wake_fd, &one, sizeof(one)) < 0) {
		/* the counter is saturated or the fd is gone: the next tick sends */
	}
}

static int out_push(struct json_object *obj);

/* report_lookup - worker: queue a lookup of the session's client */
int report_lookup(struct session *s)
{
	if (!r_on || !r_cfg->controld_lookup || !atomic_load(&ctl_up))
		return 0;
	struct ctl_lookup *l = calloc(1, sizeof(*l));

	if (!l)
		return 0;
	l->s = s;
	l->w = s->w;
	snprintf(l->addr, sizeof(l->addr), "%s", s->ip);
	s->refs++;
	s->ctl_pending = 1;
	pthread_mutex_lock(&q_lock);
	if (lq_tail)
		lq_tail->next = l;
	else
		lq_head = l;
	lq_tail = l;
	pthread_mutex_unlock(&q_lock);
	uint64_t one = 1;

	if (write(wake_fd, &one, sizeof(one)) < 0) {
		/* saturated: the main thread is awake anyway */
	}
	return 1;
}

/* lookup_done - main thread: hand the answer to the session's worker */
static void lookup_done(struct ctl_lookup *l, const char *action, const char *counter)
{
	struct worker *w = l->w;
	uint64_t one = 1;

	snprintf(l->action, sizeof(l->action), "%s", action ? action : "");
	stats_inc("controld", counter);
	pthread_mutex_lock(&w->cq_lock);
	l->next = w->lk_head;
	w->lk_head = l;
	pthread_mutex_unlock(&w->cq_lock);
	if (write(w->wake_ev.fd, &one, sizeof(one)) < 0) {
		/* saturated: the worker wakes anyway */
	}
}

/* report_worker_drain - worker: deliver answered lookups to their sessions */
void report_worker_drain(struct worker *w)
{
	pthread_mutex_lock(&w->cq_lock);
	struct ctl_lookup *l = w->lk_head;

	w->lk_head = NULL;
	pthread_mutex_unlock(&w->cq_lock);
	while (l) {
		struct ctl_lookup *n = l->next;
		struct session *s = l->s;

		s->refs--;
		session_report_verdict(s, l->action);
		if (!s->dead)
			session_ctl_done(s, l->action, l->live_only);
		else
			s->ctl_pending = 0;
		session_release(s);
		free(l);
		l = n;
	}
}

/* lookups_send - main thread: send queued lookups, expire old ones */
static void lookups_send(int64_t now)
{
	pthread_mutex_lock(&q_lock);
	struct ctl_lookup *q = lq_head;

	lq_head = lq_tail = NULL;
	pthread_mutex_unlock(&q_lock);
	while (q) {
		struct ctl_lookup *n = q->next;

		q->next = NULL;
		if (!c_registered || n_pending >= LOOKUPS_MAX) {
			lookup_done(q, "", "lookup_unanswered");
		} else {
			struct json_object *m;

			q->id = atomic_fetch_add(&next_id, 1);
			m = ctl_request_new(q->id, "lookup");
			json_object_object_add(m, "addr", json_object_new_string(q->addr));
			if (out_push(m) != 0) {
				lookup_done(q, "", "lookup_unanswered");
			} else {
				q->deadline = now + r_cfg->controld_lookup_timeout_ms;
				q->next = pending;
				pending = q;
				n_pending++;
			}
		}
		q = n;
	}
	for (struct ctl_lookup **pp = &pending; *pp;) {
		struct ctl_lookup *l = *pp;

		if (now < l->deadline) {
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		n_pending--;
		lookup_done(l, "", "lookup_timeout");
	}
}

/* lookups_fail_all - no answer will come (connection lost, stopping):
 * every lookup, sent or queued, is answered "" */
static void lookups_fail_all(void)
{
	while (pending) {
		struct ctl_lookup *n = pending->next;

		lookup_done(pending, "", "lookup_unanswered");
		pending = n;
	}
	n_pending = 0;
	lookups_send(moat_clock_ms()); /* not registered: fails what is queued */
}

/* lookup_answer - a reply that answers a pending lookup; 1 if it was one */
static int lookup_answer(struct json_object *m, int64_t id)
{
	for (struct ctl_lookup **pp = &pending; *pp; pp = &(*pp)->next) {
		struct ctl_lookup *l = *pp;
		struct json_object *res = NULL;
		int ok = 0;

		if (l->id != id)
			continue;
		*pp = l->next;
		n_pending--;
		ctl_get_bool(m, "ok", &ok);
		json_object_object_get_ex(m, "result", &res);
		/* with type = live zones at moat-controld, their answers count
		 * too; a listing only they know is not in the fast path's table */
		const char *t = ctl_get_str(res, "action"), *a = ctl_get_str(res, "action_with_live");

		if (ok && a && t && strcmp(a, t) && (!strcmp(a, "drop") || !strcmp(a, "tarpit")))
			l->live_only = 1;
		lookup_done(l, ok ? (a ? a : t) : "", ok ? "lookup_answered" : "lookup_failed");
		return 1;
	}
	return 0;
}

/* out_push - queue one message for moat-controld (main thread); takes obj */
static int out_push(struct json_object *obj)
{
	size_t n;
	char *line = ctl_format(obj, &n);

	json_object_put(obj);
	if (!line)
		return -ENOMEM;
	if (ob_len + n > OUT_MAX) {
		/* moat-controld does not read: drop the line, count it */
		free(line);
		stats_inc("controld", "out_dropped");
		return -ENOBUFS;
	}
	char *nb = realloc(ob, ob_len + n);

	if (!nb) {
		free(line);
		return -ENOMEM;
	}
	ob = nb;
	memcpy(ob + ob_len, line, n);
	ob_len += n;
	free(line);
	return 0;
}

/* drain_reports - move whole report lines from the workers' queue to ob */
static void drain_reports(void)
{
	pthread_mutex_lock(&q_lock);
	size_t take = rq_len;

	if (ob_len + take > OUT_MAX) {
		/* take only whole lines that fit */
		take = 0;
		for (size_t i = 0; i < rq_len && ob_len + i + 1 <= OUT_MAX; i++)
			if (rq[i] == '\n')
				take = i + 1;
	}
	char *nb = take ? realloc(ob, ob_len + take) : ob;

	if (take && nb) {
		ob = nb;
		memcpy(ob + ob_len, rq, take);
		ob_len += take;
		memmove(rq, rq + take, rq_len - take);
		rq_len -= take;
	}
	pthread_mutex_unlock(&q_lock);
}

/* put_counter - one counter into the smtp.stats result */
static void put_counter(const char *name, uint64_t v, void *arg)
{
	json_object_object_add(arg, name, json_object_new_int64((int64_t)v));
}

/* answer_stats - smtp.stats: every counter, flat, plus uptime */
static struct json_object *answer_stats(int64_t id)
{
	struct json_object *o = json_object_new_object();

	stats_foreach(put_counter, o);
	json_object_object_add(o, "uptime", json_object_new_int64((int64_t)(time(NULL) - started)));
	json_object_object_add(o, "workers", json_object_new_int(r_cfg->workers));
	json_object_object_add(o, "filters", json_object_new_int(g_n_filters));
	return ctl_reply_ok(id, o);
}

/* answer_reload - rules.reload: the filters' reload hooks; an honest
 * answer when no filter has rules */
static struct json_object *answer_reload(int64_t id)
{
	int reloaded, no_hook;
	char err[400] = "";

	if (filters_reload_rules(&reloaded, &no_hook, err, sizeof(err)) != 0) {
		stats_inc("controld", "rules_reload_failed");
		return ctl_reply_err(id, CTL_E_FAILED, "%s", err);
	}
	stats_inc("controld", "rules_reloaded");
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "filters", json_object_new_int(g_n_filters));
	json_object_object_add(o, "reloaded", json_object_new_int(reloaded));
	json_object_object_add(o, "without_rules", json_object_new_int(no_hook));
	if (!reloaded)
		json_object_object_add(o, "detail", json_object_new_string(
			g_n_filters ? "no configured filter has rules to reload" :
				      "no content filter configured: nothing to reload"));
	return ctl_reply_ok(id, o);
}

/* handle_msg - one message from moat-controld */
static void handle_msg(struct json_object *m)
{
	int64_t id = ctl_msg_id(m);

	if (ctl_msg_is_reply(m)) {
		int ok = 0;

		if (lookup_answer(m, id))
			return;

		ctl_get_bool(m, "ok", &ok);
		if (id == c_hello_id) {
			int acc = 1;
			struct json_object *res = NULL;

			if (!ok) {
				log_warn("controld: smtp.hello refused: %s", ctl_get_str(m, "error") ?: "?");
				return;
			}
			json_object_object_get_ex(m, "result", &res);
			ctl_get_bool(res, "accept_reports", &acc);
			c_registered = 1;
			atomic_store(&ctl_up, 1);
			backoff_ms = BACKOFF_MIN_MS;
			log_info("controld: registered with moat-controld %s%s",
				 ctl_get_str(res, "version") ?: "?",
				 acc ? "" : " (it does not accept reports: accept_reports = no)");
			return;
		}
		/* the answer to a report */
		stats_inc("controld", ok ? "reported" : "report_refused");
		if (!ok)
			log_debug("controld: report refused: %s", ctl_get_str(m, "error") ?: "?");
		return;
	}
	const char *cmd = ctl_get_str(m, "cmd");

	if (!cmd || id < 0) {
		stats_inc("controld", "bad_message");
		return;
	}
	stats_inc("controld", "requests");
	if (!strcmp(cmd, "smtp.stats"))
		out_push(answer_stats(id));
	else if (!strcmp(cmd, "rules.reload"))
		out_push(answer_reload(id));
	else if (!strcmp(cmd, "ping"))
		out_push(ctl_reply_ok(id, NULL));
	else
		out_push(ctl_reply_err(id, CTL_E_UNKNOWN, "moat-smtpd has no command \"%.64s\"", cmd));
}

/* conn_close - drop the connection, keep unsent whole reports */
static void conn_close(int64_t now)
{
	if (c_fd >= 0) {
		close(c_fd);
		log_warn("controld: connection to %s lost; serving on, reconnecting", r_cfg->controld_socket);
		stats_inc("controld", "disconnects");
		was_up = 1;
	}
	c_fd = -1;
	c_registered = 0;
	atomic_store(&ctl_up, 0);
	lookups_fail_all();
	ctl_buf_free(&c_in);
	ctl_buf_init(&c_in, CTL_MAX_LINE);
	/* a half-sent line would corrupt the next connection: skip its rest */
	if (ob_off && ob_off < ob_len && ob[ob_off - 1] != '\n') {
		char *nl = memchr(ob + ob_off, '\n', ob_len - ob_off);

		ob_off = nl ? (size_t)(nl - ob) + 1 : ob_len;
	}
	memmove(ob, ob + ob_off, ob_len - ob_off);
	ob_len -= ob_off;
	ob_off = 0;
	next_try_ms = now + backoff_ms;
	backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2;
}

/* try_connect - non-blocking connect, then smtp.hello ahead of anything queued */
static void try_connect(int64_t now)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", r_cfg->controld_socket);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		/* a unix stream connect finishes at once or fails (EAGAIN:
		 * backlog full), it is never in progress */
		int e = errno;

		close(fd);
		fd = -1;
		if (was_up || next_try_ms == 0)
			log_warn("controld: cannot connect to %s: %s; serving on, retrying",
				 r_cfg->controld_socket, strerror(e));
		was_up = 0;
	}
	if (fd < 0) {
		next_try_ms = now + backoff_ms;
		backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2;
		return;
	}
	c_fd = fd;
	stats_inc("controld", "connects");
	/* the hello goes first: move what is queued behind it */
	char *held = ob;
	size_t held_len = ob_len;

	ob = NULL;
	ob_len = ob_off = 0;
	c_hello_id = atomic_fetch_add(&next_id, 1);
	struct json_object *h = ctl_request_new(c_hello_id, "smtp.hello");

	json_object_object_add(h, "name", json_object_new_string(r_cfg->hostname));
	json_object_object_add(h, "version", json_object_new_string(MOAT_VERSION));
	json_object_object_add(h, "pid", json_object_new_int((int)getpid()));
	out_push(h);
	if (held_len) {
		char *nb = realloc(ob, ob_len + held_len);

		if (nb) {
			ob = nb;
			memcpy(ob + ob_len, held, held_len);
			ob_len += held_len;
		}
	}
	free(held);
	log_info("controld: connected to %s", r_cfg->controld_socket);
}

/* report_pollfds - the eventfd and, when connected, the socket */
int report_pollfds(struct pollfd *p)
{
	int n = 0;

	if (!r_on)
		return 0;
	p[n++] = (struct pollfd){ .fd = wake_fd, .events = POLLIN };
	if (c_fd >= 0)
		p[n++] = (struct pollfd){ .fd = c_fd, .events = POLLIN | (ob_len > ob_off ? POLLOUT : 0) };
	return n;
}

/* report_wait_ms - how long the main loop may sleep: up to max, less when a
 * lookup expires sooner */
int report_wait_ms(int max)
{
	int64_t now = moat_clock_ms();

	for (struct ctl_lookup *l = pending; l; l = l->next)
		if (l->deadline - now < max)
			max = l->deadline > now ? (int)(l->deadline - now) : 0;
	return max;
}

/* report_tick - main thread, after every poll: connect, read, answer, send */
void report_tick(void)
{
	int64_t now = moat_clock_ms();
	uint64_t v;

	if (!r_on)
		return;
	if (read(wake_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing queued since the last tick */
	}
	if (c_fd < 0) {
		lookups_send(now); /* not registered: answers "" at once */
		if (now < next_try_ms)
			return;
		try_connect(now);
		if (c_fd < 0)
			return;
	}
	for (;;) {
		ssize_t n = ctl_buf_fill(&c_in, c_fd);

		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			conn_close(now);
			return;
		}
		for (;;) {
			struct json_object *m;
			int r = ctl_buf_next(&c_in, &m);

			if (r == 0)
				break;
			if (r < 0) {
				stats_inc("controld", "bad_message");
				continue;
			}
			handle_msg(m);
			json_object_put(m);
		}
	}
	drain_reports();
	lookups_send(now);
	while (ob_off < ob_len) {
		ssize_t w = send(c_fd, ob + ob_off, ob_len - ob_off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w <= 0) {
			conn_close(now);
			return;
		}
		ob_off += (size_t)w;
	}
	if (ob_off == ob_len)
		ob_off = ob_len = 0;
}

/* report_stop - moat-smtpd stops: close the connection at once, so that
 * moat-controld fails relays now instead of timing out while workers wind
 * down (workers may still queue reports: the queue stays until fini) */
void report_stop(void)
{
	if (c_fd >= 0)
		close(c_fd);
	c_fd = -1;
	c_registered = 0;
	atomic_store(&ctl_up, 0);
	lookups_fail_all();
}

/* report_fini - close the connection, free everything (workers stopped) */
void report_fini(void)
{
	if (c_fd >= 0)
		close(c_fd);
	c_fd = -1;
	if (wake_fd >= 0)
		close(wake_fd);
	wake_fd = -1;
	ctl_buf_free(&c_in);
	free(ob);
	ob = NULL;
	ob_len = ob_off = 0;
}
