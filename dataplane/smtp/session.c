/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * session.c - one SMTP server session as a state machine on its worker's
 * epoll loop (OpenSMTPD smtp_session.c shape: check / proceed / reply).
 *
 * Input is read into a per-session buffer and cut into lines by the CRLF-only
 * machine of proto.c.  Commands are handled one at a time; a command that
 * needs an asynchronous answer (DNSBL at connect, SPF at MAIL, the
 * downstream's answer at MAIL/RCPT/end of data) parks the session (s->wait)
 * and the rest of a pipelined group stays buffered until the answer comes.
 * DATA lines are checked, dot-unstuffed, fed to the filters and held,
 * re-stuffed, for the relay; nothing is sent downstream before the verdict.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <spf2/spf.h>

#include "auth.h"
#include "authres.h"
#include "clock.h"
#include "log.h"
#include "smtpd.h"

#define IBUF_CAP 8192
/* replies queued for a client that does not read them: past this, commands
 * are neither read nor processed until the client takes its replies (or the
 * command timeout ends the session). Without it a client that pipelines
 * commands and never reads makes the engine work and its buffer grow. */
#define OBUF_HIGH 4096

static uint64_t sid_counter;
static int n_sessions;      /* all workers: max_sessions */

static void session_close(struct session *s);
static void process(struct session *s);
static void update_interest(struct session *s);
static int flush(struct session *s);
static void settle(struct session *s);
static void data_verdict(struct session *s);

/* reply - queue one reply line (fmt without CRLF) */
static void __attribute__((format(printf, 2, 3))) reply(struct session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = sizeof(line) - 3;
	line[n++] = '\r';
	line[n++] = '\n';
	if (s->olen + (size_t)n > s->ocap) {
		size_t nc = s->ocap ? s->ocap * 2 : 1024;
		while (nc < s->olen + (size_t)n)
			nc *= 2;
		char *nb = realloc(s->obuf, nc);
		if (!nb) {
			s->state = S_CLOSING;
			return;
		}
		s->obuf = nb;
		s->ocap = nc;
	}
	memcpy(s->obuf + s->olen, line, (size_t)n);
	s->olen += (size_t)n;
}

/* esc - log-safe copy of client text into a static-per-call buffer */
static const char *esc(char *buf, size_t sz, const char *src)
{
	return log_escape(buf, sz, src, strlen(src));
}

/* log_tx - the one log line per refused or accepted transaction, + counter */
static void log_tx(struct session *s, const char *result, const char *stage,
		   const char *reason, int code, const char *to)
{
	char h[300], f[300], t[600], tos[512];

	if (!to) {
		size_t o = 0;
		tos[0] = '\0';
		for (int i = 0; i < s->nrcpt && o < sizeof(tos) - 2; i++)
			o += (size_t)snprintf(tos + o, sizeof(tos) - o, "%s%s", i ? "," : "", s->rcpts[i]);
		if (o >= sizeof(tos))
			o = sizeof(tos) - 1;
		to = tos;
	}
	log_info("%s result=%s stage=%s reason=%s code=%d client=%s helo=\"%s\" from=\"%s\" to=\"%s\"%s%s%s%s",
		 s->sid, result, stage, reason, code, s->ip, esc(h, sizeof(h), s->helo),
		 s->has_from || !strcmp(stage, "mail") ? esc(f, sizeof(f), s->from.addr) : "",
		 esc(t, sizeof(t), to), s->spf_result[0] ? " spf=" : "", s->spf_result,
		 s->dnsbl_zone[0] ? " dnsbl=" : "", s->dnsbl_zone);
	stats_inc(stage, reason);
	if (!strcmp(result, "reject")) {
		char k[64];
		snprintf(k, sizeof(k), "refused.%s", stage);
		stats_inc(k, reason); /* metrics: refusals by stage and reason */
	}
}

/* refuse - reply, log, count; close after it when fatal */
static void refuse(struct session *s, const char *stage, const char *reason, int fatal,
		   const char *to, int code, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static void refuse(struct session *s, const char *stage, const char *reason, int fatal,
		   const char *to, int code, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	reply(s, "%d %s", code, text);
	log_tx(s, "reject", stage, reason, code, to);
	if (fatal)
		s->state = S_CLOSING;
}

/* hold_reset - drop a held message */
static void hold_reset(struct hold *h)
{
	free(h->mem);
	if (h->fd >= 0)
		close(h->fd);
	memset(h, 0, sizeof(*h));
	h->fd = -1;
}

/* hold_append - keep bytes of the rebuilt message; spills to an unlinked
 * private file past spill_threshold.  0 or -errno */
static int hold_append(struct hold *h, const char *p, size_t n)
{
	if (h->fd < 0 && h->len + n > g_cfg->spill_threshold) {
		int fd = open(g_cfg->spool_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		if (h->len && write(fd, h->mem, h->len) != (ssize_t)h->len) {
			close(fd);
			return -EIO;
		}
		free(h->mem);
		h->mem = NULL;
		h->cap = 0;
		h->fd = fd;
		stats_inc("data", "spilled");
	}
	if (h->fd >= 0) {
		if (write(h->fd, p, n) != (ssize_t)n)
			return -EIO;
	} else {
		if (h->len + n > h->cap) {
			size_t nc = h->cap ? h->cap * 2 : 16384;
			while (nc < h->len + n)
				nc *= 2;
			char *nb = realloc(h->mem, nc);
			if (!nb)
				return -ENOMEM;
			h->mem = nb;
			h->cap = nc;
		}
		memcpy(h->mem + h->len, p, n);
		h->len += n;
	}
	h->total += n;
	return 0;
}

/* tx_reset - forget the transaction (envelope, held message, filters) */
static void tx_reset(struct session *s)
{
	for (int i = 0; i < s->nrcpt; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpt = 0;
	s->has_from = 0;
	memset(&s->from, 0, sizeof(s->from));
	s->spf_result[0] = '\0';
	s->spf_comment[0] = '\0';
	hold_reset(&s->hold);
	for (int i = 0; i < s->n_fm; i++)
		if (s->fm[i])
			g_filters[i]->close(s->fm[i]);
	s->n_fm = 0;
	auth_close(s->auth);
	s->auth = NULL;
	free(s->eod_hdr);
	s->eod_hdr = NULL;
	s->msg_size = 0;
	s->size_exceeded = s->line_too_long = s->hold_err = 0;
	s->in_headers = s->skip_header = 0;
	s->scan_ns = 0;
}

/* report_abuse - report the client to moat-controld as kind (pregreet,
 * protocol, content) when that kind's switch is on, never a client in
 * report_exempt nor one moat-controld answers allow for: while its lookup is
 * out the report waits for the answer (session_report_verdict) */
static void report_abuse(struct session *s, int on, const char *kind, const char *why)
{
	if (!on || !g_cfg->controld_socket[0] || s->report_kind)
		return;
	for (int i = 0; i < g_cfg->n_report_exempt; i++)
		if (moat_prefix_match(&g_cfg->report_exempt[i],
				      s->family == 4 ? MOAT_AF_INET : MOAT_AF_INET6, s->addr)) {
			stats_inc("controld", "report_exempt");
			return;
		}
	s->report_kind = kind;
	snprintf(s->report_why, sizeof(s->report_why), "moat-smtpd: %s %s", kind, why);
	if (!s->ctl_pending)
		session_report_verdict(s, s->ctl_verdict == 1 ? "allow" : "");
}

void session_report_verdict(struct session *s, const char *action)
{
	if (!s->report_kind)
		return;
	if (!strcmp(action, "allow")) {
		stats_inc("controld", "report_exempt");
		log_info("%s report=skipped kind=%s client=%s reason=controld_allow", s->sid,
			 s->report_kind, s->ip);
	} else {
		report_refused(s->ip, s->report_kind, s->report_why);
		log_info("%s report=sent kind=%s client=%s", s->sid, s->report_kind, s->ip);
	}
	s->report_kind = NULL;
}

/* count_error - one more bad command; 421 and close past max_errors */
static void count_error(struct session *s)
{
	if (++s->errors >= g_cfg->max_errors && s->state != S_CLOSING) {
		reply(s, "421 4.7.0 %s Too many errors, closing connection", g_cfg->hostname);
		log_tx(s, "reject", "session", "too_many_errors", 421, "");
		s->state = S_CLOSING;
		report_abuse(s, g_cfg->report_protocol, "protocol", "too_many_errors");
	}
}

/* line_buf - (re)size the line machine's buffer for commands or DATA */
static int line_buf(struct session *s, size_t cap)
{
	if (s->lbuf_cap != cap) {
		char *nb = realloc(s->lbuf, cap + 3);
		if (!nb)
			return -ENOMEM;
		s->lbuf = nb;
		s->lbuf_cap = cap;
	}
	line_sm_init(&s->lsm, s->lbuf, cap);
	return 0;
}

/* banner - the 220 greeting: the connect stage passed */
static void banner(struct session *s)
{
	s->state = S_CMD;
	s->deadline = s->w->now_ms + (int64_t)g_cfg->timeout_command * 1000;
	reply(s, "220 %s ESMTP moat-smtpd", g_cfg->hostname);
}

/* connect_check - greet delay over and DNSBL known: refuse or greet */
static void connect_check(struct session *s)
{
	if (s->state != S_CONNECT || s->w->now_ms < s->greet_at || !s->dnsbl_done || s->ctl_pending)
		return;
	s->wait = W_NONE;
	if (s->ctl_verdict == 2) {
		/* listed in moat-controld's table (its zones, operator or an
		 * earlier report) but the fast path let the SYN through */
		refuse(s, "connect", "controld", 1, "", 554,
		       "5.7.1 Service unavailable; client [%s] blocked by moat-controld", s->ip);
		/* a live-zone listing is not in the fast path's table: report
		 * it like our own DNSBL refusals so the next SYN stops there */
		if (s->ctl_live)
			report_listed(s->ip, "(moat-controld live zones)", "listed");
	} else if (s->ctl_verdict == 1 && g_cfg->n_zones && s->dnsbl_score >= g_cfg->dnsbl_threshold) {
		/* an ALLOW entry beats every listing (DESIGN.md "Verdicts") */
		stats_inc("connect", "controld_allow");
		log_info("%s result=allow stage=connect reason=controld_allow client=%s dnsbl=%s", s->sid, s->ip,
			 s->dnsbl_zone);
		banner(s);
	} else if (g_cfg->n_zones && s->dnsbl_score >= g_cfg->dnsbl_threshold) {
		refuse(s, "connect", "dnsbl", 1, "", 554,
		       "5.7.1 Service unavailable; client [%s] blocked using %s", s->ip, s->dnsbl_zone);
		report_listed(s->ip, s->dnsbl_zone, s->dnsbl_code);
	} else {
		banner(s);
	}
	update_interest(s);
}

/* session_ctl_done - moat-controld answered the lookup ("" = no answer) */
void session_ctl_done(struct session *s, const char *action, int live_only)
{
	s->ctl_pending = 0;
	s->ctl_live = live_only;
	s->ctl_verdict = !strcmp(action, "allow") ? 1 :
			 !strcmp(action, "drop") || !strcmp(action, "tarpit") ? 2 : 0;
	connect_check(s);
	settle(s);
}

/* session_dnsbl_done - all DNSBL answers in (or timed out) */
void session_dnsbl_done(struct session *s)
{
	s->dnsbl_done = 1;
	if (!s->dead)
		connect_check(s);
}

/* accept_pause - out of descriptors (or kernel memory): the connection
 * stays in the listen queue and the listening socket stays readable, so a
 * level-triggered epoll would wake this worker at once, forever. Take the
 * listeners out of this worker's epoll set for ACCEPT_PAUSE_MS instead;
 * session_accept_resume puts them back. Counted as connect.accept_<errno>,
 * logged once a pause. */
#define ACCEPT_PAUSE_MS 100
static void accept_pause(struct worker *w, int err)
{
	if (w->accept_paused_until)
		return;
	for (int i = 0; i < w->n_listen; i++)
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listen_ev[i].fd, NULL);
	w->accept_paused_until = w->now_ms + ACCEPT_PAUSE_MS;
	stats_inc("connect", err == EMFILE ? "accept_emfile" : err == ENFILE ? "accept_enfile" : "accept_nomem");
	log_warn("worker %d: accept: %s with %d sessions: not accepting for %d ms (raise LimitNOFILE / ulimit -n, or lower max_sessions)",
		 w->id, strerror(err), __atomic_load_n(&n_sessions, __ATOMIC_RELAXED), ACCEPT_PAUSE_MS);
}

/* session_accept_resume - after a pause, listen again (called every sweep) */
void session_accept_resume(struct worker *w)
{
	if (!w->accept_paused_until || w->now_ms < w->accept_paused_until)
		return;
	w->accept_paused_until = 0;
	for (int i = 0; i < w->n_listen; i++) {
		struct epoll_event ee = { .events = EPOLLIN, .data.ptr = &w->listen_ev[i] };
		epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->listen_ev[i].fd, &ee);
	}
}

/* session_accept - take new connections from a listening socket */
void session_accept(struct worker *w, int lfd)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				accept_pause(w, errno);
			return;
		}
		struct session *s = calloc(1, sizeof(*s));
		if (!s) {
			close(fd);
			continue;
		}
		/* TCP_NODELAY and the fixed SO_SNDBUF (CLIENT_SNDBUF) come from
		 * the listener: an accepted socket inherits its options (two
		 * system calls a connection fewer, at 5,000 connections/s) */
		s->w = w;
		s->ev.kind = EV_CLIENT;
		s->ev.fd = fd;
		s->ev.ptr = s;
		s->hold.fd = -1;
		s->id = ((uint64_t)moat_clock_ms() << 20) ^ ((uint64_t)w->id << 56) ^
			__atomic_add_fetch(&sid_counter, 1, __ATOMIC_RELAXED) ^ ((uint64_t)getpid() << 36);
		snprintf(s->sid, sizeof(s->sid), "%016llx", (unsigned long long)s->id);
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
			if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
				s->family = 4;
				memcpy(s->addr, &a6->sin6_addr.s6_addr[12], 4);
			} else {
				s->family = 6;
				memcpy(s->addr, &a6->sin6_addr, 16);
			}
		} else {
			s->family = 4;
			memcpy(s->addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
		}
		inet_ntop(s->family == 4 ? AF_INET : AF_INET6, s->addr, s->ip, sizeof(s->ip));
		s->next = w->sessions;
		if (w->sessions)
			w->sessions->prev = s;
		w->sessions = s;
		__atomic_add_fetch(&n_sessions, 1, __ATOMIC_RELAXED);
		s->refs = 0;
		if (line_buf(s, (size_t)g_cfg->max_line_length - 2) != 0) {
			s->state = S_CLOSING;
		}
		log_debug("%s connect client=%s", s->sid, s->ip);
		stats_inc("connect", "accepted");

		struct epoll_event ee = { .events = EPOLLIN, .data.ptr = &s->ev };
		s->ev.events = EPOLLIN;
		epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ee);

		if (__atomic_load_n(&n_sessions, __ATOMIC_RELAXED) > g_cfg->max_sessions) {
			refuse(s, "connect", "max_sessions", 1, "", 421, "4.3.2 %s Service busy, try again later",
			       g_cfg->hostname);
		} else if (g_cfg->max_conn_per_ip || g_cfg->max_conn_rate_per_ip) {
			int r = iplimit_acquire(s->family, s->addr, w->now_ms);
			if (r == 0) {
				s->ip_held = 1;
			} else if (r == -1) {
				refuse(s, "connect", "ip_concurrency", 1, "", 421,
				       "4.7.0 %s Too many connections from your address", g_cfg->hostname);
			} else {
				refuse(s, "connect", "ip_rate", 1, "", 421,
				       "4.7.0 %s Too many connections from your address, slow down", g_cfg->hostname);
			}
		}
		if (s->state != S_CLOSING) {
			s->greet_at = w->now_ms + g_cfg->greet_delay_ms;
			s->deadline = w->now_ms + (int64_t)g_cfg->timeout_command * 1000;
			s->wait = W_DNSBL;
			if (dnsbl_start(s) != 0)
				s->dnsbl_done = 1;
			report_lookup(s);
			connect_check(s);
		}
		/* the session counter goes down in session_free */
		settle(s);
	}
}

/* s_read - read from the client, plain or TLS; like read(2) */
static ssize_t s_read(struct session *s, char *buf, size_t n)
{
	if (!s->ssl)
		return read(s->ev.fd, buf, n);
	ERR_clear_error();
	int r = SSL_read(s->ssl, buf, (int)n);
	if (r > 0)
		return r;
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		s->ssl_want_write = 1;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		errno = EIO;
		return -1;
	}
}

/* s_write - write to the client, plain or TLS; like write(2) */
static ssize_t s_write(struct session *s, const char *buf, size_t n)
{
	if (!s->ssl)
		return send(s->ev.fd, buf, n, MSG_NOSIGNAL);
	ERR_clear_error();
	int r = SSL_write(s->ssl, buf, (int)n);
	if (r > 0)
		return r;
	int e = SSL_get_error(s->ssl, r);
	if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
		s->ssl_want_write = e == SSL_ERROR_WANT_WRITE;
		errno = EAGAIN;
		return -1;
	}
	errno = EIO;
	return -1;
}

/* flush - write queued replies; -1 when the client is gone */
static int flush(struct session *s)
{
	size_t off = 0;
	s->ssl_want_write = 0;
	while (off < s->olen) {
		ssize_t n = s_write(s, s->obuf + off, s->olen - off);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -1;
		}
		off += (size_t)n;
	}
	if (off) {
		memmove(s->obuf, s->obuf + off, s->olen - off);
		s->olen -= off;
	}
	if (!s->olen && s->ocap > 4096) {
		free(s->obuf);
		s->obuf = NULL;
		s->ocap = 0;
	}
	return 0;
}

/* rcvbuf_clamp - a session stopped reading for unread replies: shrink its
 * receive buffer (UNREAD_RCVBUF) so the client's window closes. Until now
 * the kernel went on taking its pipelined commands, in segments of a few
 * dozen bytes, into a receive buffer it grows towards tcp_rmem's maximum
 * for tiny segments (tcp_clamp_window; 470-500 KB a session after 26 s):
 * both ends' TCP work for every segment, on the appliance's cores, for a
 * session that will be reset. The setting also locks the size (no
 * autotuning), so rcvbuf_restore puts back the size it had once a client
 * reads its replies again before timeout_unread and none wait */
static void rcvbuf_clamp(struct session *s)
{
	int cur = 0, small = UNREAD_RCVBUF;
	socklen_t sl = sizeof(cur);
	if (s->rcvbuf_saved || getsockopt(s->ev.fd, SOL_SOCKET, SO_RCVBUF, &cur, &sl) != 0 || cur <= 0)
		return;
	if (setsockopt(s->ev.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) == 0) {
		s->rcvbuf_saved = cur;
		stats_inc("session", "unread_rcvbuf_clamped");
	}
}

static void rcvbuf_restore(struct session *s)
{
	/* getsockopt gave the doubled size, setsockopt doubles again */
	int v = s->rcvbuf_saved / 2;
	s->rcvbuf_saved = 0;
	setsockopt(s->ev.fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
}

/* update_interest - EPOLLIN while there is room, EPOLLOUT while output waits */
static void update_interest(struct session *s)
{
	uint32_t want = 0;
	if (s->dead)
		return;
	if (s->state != S_CLOSING && s->ilen < IBUF_CAP && s->olen < OBUF_HIGH)
		want |= EPOLLIN;
	if (s->olen || s->ssl_want_write)
		want |= EPOLLOUT;
	/* a full send buffer and OBUF_HIGH more: no SMTP client leaves that
	 * unread (a pipelined group's replies are a few KB); session_sweep
	 * aborts it after timeout_unread */
	if (s->olen < OBUF_HIGH) {
		s->unread_since = 0;
		/* not at the first dip below OBUF_HIGH (the client's kernel
		 * collapsing its queue of small replies opens its window a
		 * little, again and again, and the restored buffer would take
		 * another burst of commands each time): once all is out */
		if (s->rcvbuf_saved && !s->olen)
			rcvbuf_restore(s);
	} else if (!s->unread_since) {
		s->unread_since = s->w->now_ms;
		rcvbuf_clamp(s);
	}
	if (want != s->ev.events) {
		struct epoll_event ee = { .events = want, .data.ptr = &s->ev };
		epoll_ctl(s->w->epfd, EPOLL_CTL_MOD, s->ev.fd, &ee);
		s->ev.events = want;
	}
}

/* start_tls - after "220 Ready to start TLS" went out */
static void start_tls(struct session *s)
{
	s->ssl = SSL_new(tls_ctx());
	if (!s->ssl || SSL_set_fd(s->ssl, s->ev.fd) != 1) {
		s->state = S_CLOSING;
		return;
	}
	s->state = S_TLS;
}

/* tls_step - drive the server handshake */
static void tls_step(struct session *s)
{
	ERR_clear_error();
	int r = SSL_accept(s->ssl);
	if (r == 1) {
		s->tls = 1;
		s->state = S_CMD;
		s->deadline = s->w->now_ms + (int64_t)g_cfg->timeout_command * 1000;
		stats_inc("tls", "established");
		log_debug("%s tls=%s cipher=%s", s->sid, SSL_get_version(s->ssl), SSL_get_cipher(s->ssl));
		return;
	}
	int e = SSL_get_error(s->ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		return;
	if (e == SSL_ERROR_WANT_WRITE) {
		s->ssl_want_write = 1;
		return;
	}
	char ebuf[160];
	ERR_error_string_n(ERR_get_error(), ebuf, sizeof(ebuf));
	log_info("%s result=reject stage=tls reason=handshake_failed client=%s detail=\"%s\"", s->sid, s->ip, ebuf);
	stats_inc("tls", "handshake_failed");
	s->state = S_CLOSING;
	SSL_free(s->ssl);
	s->ssl = NULL;
}

/* settle - after handling input or an answer: flush replies, close, or
 * start TLS once the "220 Ready" is out; then the epoll interest */
static void settle(struct session *s)
{
	if (s->dead)
		return;
	for (;;) {
		if (flush(s) != 0 || (s->state == S_CLOSING && !s->olen)) {
			session_close(s);
			return;
		}
		/* process() stopped at OBUF_HIGH with commands still in ibuf
		 * and the flush made room: go on now. Input already read
		 * raises no EPOLLIN, and a pipelining client that sent its
		 * whole group waits for these replies (a stall until the
		 * command timeout) */
		if (s->in_process || !s->ilen || s->olen >= OBUF_HIGH || s->wait != W_NONE ||
		    (s->state != S_CMD && s->state != S_DATA))
			break;
		size_t before = s->ilen;
		process(s);
		if (s->dead)
			return;
		if (s->ilen == before)
			break;
	}
	if (s->state == S_TLS && !s->olen && !s->ssl) {
		start_tls(s);
		if (s->state == S_TLS)
			tls_step(s); /* the ClientHello may be here already */
		if (s->state == S_CLOSING) {
			session_close(s);
			return;
		}
		if (s->state == S_CMD) {
			/* handshake done: TLS may hold application data already */
			session_on_event(s, EPOLLIN);
			return;
		}
	}
	if (s->ibuf && !s->ilen) {
		free(s->ibuf);
		s->ibuf = NULL;
		s->icap = 0;
	}
	update_interest(s);
	/* TLS can hold input the socket will not signal again: a record of
	 * up to 16 KB is decrypted whole and read IBUF_CAP at a time, so the
	 * rest waits in the SSL object (a message's final dot with it, the
	 * client waiting for the reply: a stall until the data timeout). Read
	 * it now, as EPOLLIN would; each round fills ibuf or drains TLS. */
	if (s->ssl && s->state != S_TLS && (s->ev.events & EPOLLIN) && SSL_has_pending(s->ssl)) {
		session_on_event(s, EPOLLIN);
		return;
	}
}

/* session_on_event - readiness on the client socket */
void session_on_event(struct session *s, uint32_t events)
{
	if (s->dead)
		return;
	if (s->state == S_TLS) {
		if (!s->ssl) { /* the 220 to STARTTLS is still going out */
			settle(s);
			return;
		}
		tls_step(s);
		if (s->state == S_TLS) {
			update_interest(s);
			return;
		}
		if (s->state == S_CLOSING) {
			session_close(s);
			return;
		}
		events |= EPOLLIN; /* handshake done: read what TLS holds */
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		for (;;) {
			if (!s->ibuf) {
				s->ibuf = malloc(IBUF_CAP);
				if (!s->ibuf) {
					session_close(s);
					return;
				}
				s->icap = IBUF_CAP;
			}
			if (s->ilen >= s->icap)
				break;
			ssize_t n = s_read(s, s->ibuf + s->ilen, s->icap - s->ilen);
			if (n > 0) {
				s->ilen += (size_t)n;
				continue;
			}
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			/* EOF or error: the client is gone */
			if (s->state == S_DATA || s->has_from)
				log_tx(s, "abandon", s->state == S_DATA ? "data" : "envelope", "client_lost", 0, NULL);
			session_close(s);
			return;
		}
		if (s->state == S_CONNECT && s->ilen) {
			/* talked before the banner: a bot, not an SMTP client (postscreen PREGREET) */
			s->ilen = 0;
			refuse(s, "connect", "pregreet", 1, "", 554,
			       "5.5.1 %s Protocol error: talking before the greeting", g_cfg->hostname);
			report_abuse(s, g_cfg->report_pregreet, "pregreet", "talked before the greeting");
		}
		process(s);
	} else if ((events & EPOLLOUT) && s->ilen && s->olen >= OBUF_HIGH) {
		/* replies held back the commands already read: resume once they drain */
		if (flush(s) != 0) {
			session_close(s);
			return;
		}
		if (s->olen < OBUF_HIGH)
			process(s);
	}
	settle(s);
}

/* ---- check / proceed: commands ---- */

/* is_local_domain - is d one of local_domains (case-insensitive)? */
static int is_local_domain(const char *d)
{
	for (int i = 0; i < g_cfg->n_local_domains; i++)
		if (!strcasecmp(d, g_cfg->local_domains[i]))
			return 1;
	return 0;
}

/* smtp_ehlo - EHLO/HELO */
static void smtp_ehlo(struct session *s, const struct smtp_command *c)
{
	int printable = 1;
	for (size_t i = 0; i < c->arglen; i++)
		if ((unsigned char)c->arg[i] <= ' ' || (unsigned char)c->arg[i] >= 127)
			printable = 0; /* it goes into our Received: header */
	if (!c->arglen || c->arglen >= sizeof(s->helo) || !printable) {
		reply(s, "501 5.5.4 Syntax: %s hostname", c->cmd == CMD_EHLO ? "EHLO" : "HELO");
		count_error(s);
		return;
	}
	tx_reset(s);
	memcpy(s->helo, c->arg, c->arglen);
	s->helo[c->arglen] = '\0';
	s->helo_seen = 1;
	if (c->cmd == CMD_HELO) {
		s->esmtp = 0;
		reply(s, "250 %s", g_cfg->hostname);
		return;
	}
	s->esmtp = 1;
	reply(s, "250-%s", g_cfg->hostname);
	reply(s, "250-PIPELINING");
	reply(s, "250-SIZE %llu", (unsigned long long)g_cfg->max_message_size);
	if (tls_ctx() && !s->tls)
		reply(s, "250-STARTTLS");
	reply(s, "250-8BITMIME");
	reply(s, "250 ENHANCEDSTATUSCODES");
}

/* spf_start - SPF for the MAIL FROM identity, off the loop */
static int spf_start(struct session *s)
{
	struct spf_job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->s = s;
	j->w = s->w;
	j->family = s->family;
	memcpy(j->addr, s->addr, 16);
	snprintf(j->helo, sizeof(j->helo), "%s", s->helo);
	if (s->from.addr[0])
		snprintf(j->from, sizeof(j->from), "%s", s->from.addr);
	else
		snprintf(j->from, sizeof(j->from), "postmaster@%.*s", (int)sizeof(j->from) - 12, s->helo);
	s->refs++;
	s->spf_job = j;
	s->wait = W_SPF;
	s->spf_deadline = s->w->now_ms + g_cfg->spf_timeout_ms;
	if (spf_submit(j) != 0) {
		s->refs--;
		s->spf_job = NULL;
		s->wait = W_NONE;
		free(j);
		return -EAGAIN;
	}
	return 0;
}

/* mail_proceed - MAIL passed local checks and SPF: open the downstream tx */
static void mail_proceed(struct session *s)
{
	if (!s->relay)
		s->relay = relay_new(s);
	if (!s->relay) {
		refuse(s, "mail", "no_memory", 0, "", 451, "4.3.0 Try again later");
		return;
	}
	s->wait = W_RELAY_MAIL;
	relay_mail(s->relay);
}

/* spf_verdict - apply the SPF result: 0 go on, 1 refused */
static int spf_verdict(struct session *s, int res)
{
	enum spf_action a = SPF_ACT_ACCEPT;
	switch (res) {
	case SPF_RESULT_FAIL:
		refuse(s, "mail", "spf_fail", 0, "", 550, "5.7.23 SPF check failed: %s", s->spf_comment);
		return 1;
	case SPF_RESULT_PERMERROR:
		refuse(s, "mail", "spf_permerror", 0, "", 550, "5.7.24 SPF permanent error: %s", s->spf_comment);
		return 1;
	case SPF_RESULT_TEMPERROR:
		refuse(s, "mail", "spf_temperror", 0, "", 451, "4.7.24 SPF temporary error, try again later");
		return 1;
	case SPF_RESULT_SOFTFAIL:
		a = g_cfg->spf_softfail;
		break;
	case SPF_RESULT_NEUTRAL:
		a = g_cfg->spf_neutral;
		break;
	case SPF_RESULT_NONE:
		a = g_cfg->spf_none;
		break;
	default:
		break;
	}
	if (a == SPF_ACT_REJECT) {
		refuse(s, "mail", "spf_policy", 0, "", 550, "5.7.23 SPF result %s refused by policy", s->spf_result);
		return 1;
	}
	if (a == SPF_ACT_TEMPFAIL) {
		refuse(s, "mail", "spf_policy", 0, "", 451, "4.7.24 SPF result %s, try again later", s->spf_result);
		return 1;
	}
	return 0;
}

/* session_spf_done - SPF answer from the pool */
void session_spf_done(struct session *s, struct spf_job *j)
{
	s->spf_job = NULL;
	s->wait = W_NONE;
	snprintf(s->spf_result, sizeof(s->spf_result), "%s", j->result_str);
	stats_inc("spf", j->result_str[0] ? j->result_str : "unknown");
	snprintf(s->spf_comment, sizeof(s->spf_comment), "%s", j->comment);
	if (!spf_verdict(s, j->result))
		mail_proceed(s);
	if (s->wait == W_NONE)
		process(s);
	settle(s);
}

/* smtp_mail - MAIL FROM */
static void smtp_mail(struct session *s, const struct smtp_command *c)
{
	if (!s->helo_seen) {
		reply(s, "503 5.5.1 Send EHLO/HELO first");
		count_error(s);
		return;
	}
	if (s->has_from) {
		reply(s, "503 5.5.1 Nested MAIL command");
		count_error(s);
		return;
	}
	enum path_err e = smtp_parse_path(c->arg, c->arglen, 1, &s->from);
	if (e == PATH_BAD_PARAM) {
		reply(s, "555 5.5.4 Unsupported MAIL parameter");
		count_error(s);
		return;
	}
	if (e != PATH_OK) {
		reply(s, "501 5.1.7 Bad sender address syntax");
		count_error(s);
		return;
	}
	if (s->from.has_size && s->from.size > g_cfg->max_message_size) {
		refuse(s, "mail", "size", 0, "", 552, "5.3.4 Message size exceeds fixed limit");
		count_error(s);
		return;
	}
	if (g_cfg->spf) {
		if (spf_start(s) == 0)
			return;
		snprintf(s->spf_result, sizeof(s->spf_result), "temperror");
		refuse(s, "mail", "spf_temperror", 0, "", 451, "4.7.24 SPF temporary error, try again later");
		return;
	}
	mail_proceed(s);
}

/* smtp_rcpt - RCPT TO: local checks, then the downstream's own answer */
static void smtp_rcpt(struct session *s, const struct smtp_command *c)
{
	struct smtp_path p;

	if (!s->has_from) {
		reply(s, "503 5.5.1 Need MAIL command");
		count_error(s);
		return;
	}
	enum path_err e = smtp_parse_path(c->arg, c->arglen, 0, &p);
	if (e != PATH_OK) {
		reply(s, e == PATH_BAD_PARAM ? "555 5.5.4 Unsupported RCPT parameter"
					     : "501 5.1.3 Bad recipient address syntax");
		count_error(s);
		return;
	}
	if (s->nrcpt >= g_cfg->max_recipients) {
		refuse(s, "rcpt", "too_many_recipients", 0, p.addr, 452, "4.5.3 Too many recipients");
		return;
	}
	if (p.domain[0] && !is_local_domain(p.domain)) {
		refuse(s, "rcpt", "relay_denied", 0, p.addr, 554, "5.7.1 <%s>: Relay access denied", p.addr);
		count_error(s);
		return;
	}
	if (p.domain[0] && rcptmap_lookup(p.addr) == 0) {
		refuse(s, "rcpt", "unknown_user", 0, p.addr, 550,
		       "5.1.1 <%s>: Recipient address rejected: User unknown", p.addr);
		count_error(s);
		return;
	}
	snprintf(s->pending_rcpt, sizeof(s->pending_rcpt), "%s", p.addr);
	s->wait = W_RELAY_RCPT;
	relay_rcpt(s->relay, s->pending_rcpt);
}

/* data_begin - DATA accepted: 354 and set up the held message */
static void smtp_data(struct session *s, const struct smtp_command *c)
{
	if (c->arglen) {
		reply(s, "501 5.5.4 Syntax: DATA");
		count_error(s);
		return;
	}
	if (!s->has_from) {
		reply(s, "503 5.5.1 Need MAIL command");
		count_error(s);
		return;
	}
	if (!s->nrcpt) {
		reply(s, "554 5.5.1 No valid recipients");
		count_error(s);
		return;
	}
	if (line_buf(s, (size_t)g_cfg->max_data_line - 2) != 0) {
		refuse(s, "data", "no_memory", 0, NULL, 451, "4.3.0 Try again later");
		return;
	}
	s->n_fm = 0;
	for (int i = 0; i < g_n_filters; i++) {
		s->fm[i] = g_filters[i]->open();
		s->n_fm = i + 1;
		if (!s->fm[i]) {
			refuse(s, "data", "filter_error", 0, NULL, 451, "4.3.0 Content filter unavailable, try again later");
			line_buf(s, (size_t)g_cfg->max_line_length - 2);
			return;
		}
	}
	if (g_cfg->auth.dkim && !(s->auth = auth_open(s))) {
		refuse(s, "data", "no_memory", 0, NULL, 451, "4.3.0 Try again later");
		line_buf(s, (size_t)g_cfg->max_line_length - 2);
		return;
	}
	s->in_headers = 1;
	s->state = S_DATA;
	s->deadline = s->w->now_ms + (int64_t)g_cfg->timeout_data * 1000;
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/* handle_command - one complete command line */
static void handle_command(struct session *s, char *line, size_t len)
{
	struct smtp_command c;

	smtp_parse_command(line, len, &c);
	switch (c.cmd) {
	case CMD_HELO:
	case CMD_EHLO:
		smtp_ehlo(s, &c);
		break;
	case CMD_MAIL:
		smtp_mail(s, &c);
		break;
	case CMD_RCPT:
		smtp_rcpt(s, &c);
		break;
	case CMD_DATA:
		smtp_data(s, &c);
		break;
	case CMD_RSET:
		if (s->has_from && s->relay)
			relay_rset(s->relay);
		tx_reset(s);
		reply(s, "250 2.0.0 Ok");
		break;
	case CMD_NOOP:
		reply(s, "250 2.0.0 Ok");
		break;
	case CMD_QUIT:
		reply(s, "221 2.0.0 Bye");
		s->state = S_CLOSING;
		break;
	case CMD_VRFY:
		reply(s, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
		break;
	case CMD_HELP:
		reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS");
		break;
	case CMD_STARTTLS:
		if (!tls_ctx()) {
			reply(s, "454 4.7.0 TLS not available");
			count_error(s);
		} else if (s->tls) {
			reply(s, "503 5.5.1 TLS already active");
			count_error(s);
		} else if (c.arglen) {
			reply(s, "501 5.5.4 Syntax: STARTTLS");
			count_error(s);
		} else {
			reply(s, "220 2.0.0 Ready to start TLS");
			if (s->ilen > s->iconsumed) {
				/* CVE-2011-0411: plaintext pipelined after STARTTLS
				 * must not be read as if it came over TLS */
				log_info("%s result=discard stage=tls reason=starttls_injection client=%s bytes=%zu",
					 s->sid, s->ip, s->ilen - s->iconsumed);
				stats_inc("tls", "starttls_injection");
			}
			s->ilen = 0; /* the STARTTLS line itself and anything after it */
			tx_reset(s);
			s->helo_seen = 0;
			s->helo[0] = '\0';
			s->state = S_TLS;
		}
		break;
	case CMD_EXPN:
	case CMD_AUTH:
	case CMD_BDAT:
		reply(s, "502 5.5.1 Command not implemented");
		count_error(s);
		break;
	default:
		reply(s, "500 5.5.2 Command unrecognized");
		count_error(s);
		break;
	}
}

/* data_line - one message line (already unstuffed) */
static void data_line(struct session *s, char *p, size_t len, int too_long)
{
	if (too_long)
		s->line_too_long = 1;
	s->msg_size += len + 2;
	if (s->msg_size > g_cfg->max_message_size)
		s->size_exceeded = 1;
	if (s->size_exceeded || s->line_too_long || s->hold_err)
		return;
	if (s->in_headers) {
		if (len == 0) {
			s->in_headers = 0;
			s->skip_header = 0;
		} else if (p[0] == ' ' || p[0] == '\t') {
			if (s->skip_header)
				return;
		} else {
			s->skip_header = authres_is_ours(p, len, g_cfg->authserv_id);
			if (s->skip_header) {
				stats_inc("data", "foreign_ar_removed");
				return;
			}
		}
	}
	p[len] = '\r';
	p[len + 1] = '\n';
	uint64_t t0 = moat_clock_ns();
	for (int i = 0; i < s->n_fm; i++) {
		if (g_filters[i]->feed(s->fm[i], p, len + 2) != 0) {
			s->hold_err = 1;
			return;
		}
	}
	s->scan_ns += moat_clock_ns() - t0;
	if (s->auth)
		auth_feed(s->auth, p, len + 2);
	/* rebuilt stream: moat's own dot-stuffing */
	if (len && p[0] == '.' && hold_append(&s->hold, ".", 1) != 0)
		s->hold_err = 1;
	if (!s->hold_err && hold_append(&s->hold, p, len + 2) != 0)
		s->hold_err = 1;
}

/* fmt_date - RFC 5322 date */
static void fmt_date(char *buf, size_t sz)
{
	time_t t = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, sz, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* data_end - the final dot, in order: size and framing, the content
 * filters (Hyperscan), DKIM/DMARC (data_verdict, maybe after W_AUTH), the
 * antivirus hook, then relay; the first refusal is the reply */
static void data_end(struct session *s)
{
	struct filter_verdict v[CFG_MAX_FILTERS];
	char hdr[4096];
	size_t hl = 0;

	s->state = S_CMD;
	s->deadline = s->w->now_ms + (int64_t)g_cfg->timeout_command * 1000;
	line_buf(s, (size_t)g_cfg->max_line_length - 2);
	if (s->size_exceeded) {
		refuse(s, "data", "size", 0, NULL, 552, "5.3.4 Message size exceeds fixed limit");
		goto refused;
	}
	if (s->line_too_long) {
		refuse(s, "data", "line_too_long", 0, NULL, 554, "5.6.0 Message has a line longer than %d bytes",
		       g_cfg->max_data_line);
		goto refused;
	}
	if (s->hold_err) {
		refuse(s, "data", "local_error", 0, NULL, 451, "4.3.0 Local error holding the message, try again later");
		goto refused;
	}
	uint64_t t0 = moat_clock_ns();
	stats_inc("scan", "messages");
	stats_add("scan.bytes", s->msg_size);
	for (int i = 0; i < s->n_fm; i++) {
		memset(&v[i], 0, sizeof(v[i]));
		int fr = g_filters[i]->finish(s->fm[i], &v[i]);
		if (i == s->n_fm - 1 || fr != 0 || v[i].reject)
			stats_add("scan.ns", s->scan_ns + (moat_clock_ns() - t0));
		if (fr != 0) {
			refuse(s, "data", "filter_error", 0, NULL, 451, "4.3.0 Content filter error, try again later");
			goto refused;
		}
		if (v[i].reject) {
			char rb[300];
			log_escape(rb, sizeof(rb), v[i].rule, strnlen(v[i].rule, sizeof(v[i].rule)));
			refuse(s, "data", "filter", 0, NULL, 550, "5.7.1 %s",
			       v[i].reply[0] ? v[i].reply : "Message content rejected");
			log_info("%s filter=%s rule=\"%s\" score=%.2f", s->sid, g_filters[i]->name, rb, v[i].score);
			snprintf(rb, sizeof(rb), "filter %s", g_filters[i]->name);
			report_abuse(s, g_cfg->report_content, "content", rb);
			goto refused;
		}
	}
	/* the filters' headers wait with the message for the checks after them */
	for (int i = 0; i < s->n_fm && hl < sizeof(hdr); i++)
		if (v[i].header_name[0] && v[i].header[0])
			hl += (size_t)snprintf(hdr + hl, sizeof(hdr) - hl, "%.*s: %.*s\r\n",
					       (int)strnlen(v[i].header_name, sizeof(v[i].header_name)), v[i].header_name,
					       (int)strnlen(v[i].header, sizeof(v[i].header)), v[i].header);
	if (hl >= sizeof(hdr))
		hl = sizeof(hdr) - 1;
	if (!(s->eod_hdr = strndup(hdr, hl))) {
		refuse(s, "data", "no_memory", 0, NULL, 451, "4.3.0 Try again later");
		goto refused;
	}
	/* sender authentication, after the content gate: its DNS answers have
	 * had the body's transfer time to come in */
	if (s->auth && !auth_ready(s->auth, s->w->now_ms)) {
		s->wait = W_AUTH;
		return;
	}
	data_verdict(s);
	return;
refused:
	if (s->relay)
		relay_rset(s->relay);
	tx_reset(s);
}

/* data_verdict - end of data once DKIM/DMARC can be decided: their verdict,
 * moat's headers, then the antivirus scan (av_start: session_av_done
 * relays) or the relay */
static void data_verdict(struct session *s)
{
	struct auth_verdict av;
	struct authres_item it[AUTH_MAX_SIGS + 3];
	char hdr[8192], mf[300], date[64];
	size_t hl = 0;
	int n = 0;

	if (s->auth) {
		char fd[300];
		auth_finish(s->auth, &av);
		log_escape(fd, sizeof(fd), av.domain, strlen(av.domain));
		log_info("%s auth from_domain=\"%s\" %s dmarc=%s", s->sid, fd, av.log,
			 s->auth->dmarc_result[0] ? s->auth->dmarc_result : "off");
		if (av.action != AUTH_ACT_ACCEPT && !strcmp(av.reason, "dmarc_multiple_from")) {
			if (av.action == AUTH_ACT_REJECT)
				refuse(s, "data", av.reason, 0, NULL, 550, "5.7.1 Message has more than one From header field");
			else
				refuse(s, "data", av.reason, 0, NULL, 451, "4.7.1 Message has more than one From header field");
			goto refused;
		}
		if (av.action == AUTH_ACT_REJECT) {
			refuse(s, "data", av.reason, 0, NULL, 550, "5.7.1 Message rejected by the DMARC policy of %s", fd);
			goto refused;
		}
		if (av.action == AUTH_ACT_TEMPFAIL) {
			if (!strcmp(av.reason, "auth_temperror"))
				refuse(s, "data", av.reason, 0, NULL, 451,
				       "4.7.5 Temporary DNS error authenticating %s, try again later", fd);
			else
				refuse(s, "data", av.reason, 0, NULL, 451,
				       "4.7.1 DMARC policy of %s not met, try again later", fd);
			goto refused;
		}
	}
	/* moat's added headers, prepended to the rebuilt stream */
	fmt_date(date, sizeof(date));
	hl += (size_t)snprintf(hdr + hl, sizeof(hdr) - hl,
			       "Received: from %s ([%s])\r\n\tby %s (moat-smtpd) with %s id %s%s%s%s;\r\n\t%s\r\n",
			       s->helo, s->ip, g_cfg->hostname,
			       s->tls ? (s->esmtp ? "ESMTPS" : "SMTPS") : (s->esmtp ? "ESMTP" : "SMTP"),
			       s->sid, s->nrcpt == 1 ? "\r\n\tfor <" : "", s->nrcpt == 1 ? s->rcpts[0] : "",
			       s->nrcpt == 1 ? ">" : "", date);
	if (g_cfg->spf && s->spf_result[0]) {
		snprintf(mf, sizeof(mf), "%s=%s", s->from.addr[0] ? "smtp.mailfrom" : "smtp.helo",
			 s->from.addr[0] ? s->from.addr : s->helo);
		it[n++] = (struct authres_item){ "spf", s->spf_result, NULL, mf };
	}
	if (s->auth)
		n += auth_items(s->auth, it + n, AUTH_MAX_SIGS + 3 - n);
	if (n && hl < sizeof(hdr))
		hl += authres_build(hdr + hl, sizeof(hdr) - hl, g_cfg->authserv_id, it, n);
	if (s->eod_hdr && hl < sizeof(hdr))
		hl += (size_t)snprintf(hdr + hl, sizeof(hdr) - hl, "%s", s->eod_hdr);
	if (hl >= sizeof(hdr))
		hl = sizeof(hdr) - 1;
	if (av_start(s, hdr, hl) == 0)
		return; /* clamd last: session_av_done relays or refuses */
	s->wait = W_RELAY_EOD;
	relay_eod(s->relay, hdr, hl);
	return;
refused:
	if (s->relay)
		relay_rset(s->relay);
	tx_reset(s);
}

/* session_auth_done - the DKIM keys and DMARC records are in, or their
 * deadline passed (the sweep): end of data goes on */
void session_auth_done(struct session *s)
{
	if (s->wait != W_AUTH)
		return;
	s->wait = W_NONE;
	if (s->dead)
		return;
	data_verdict(s);
	if (s->in_process)
		return;
	process(s);
	settle(s);
}

/* session_av_done - clamd's verdict on the held message (av.c): a virus
 * is refused naming it; no verdict is a 451 or, with clamd_unavailable =
 * pass, relayed with a header saying it was not scanned */
void session_av_done(struct session *s, enum av_result r, const char *virus, const char *hdr, size_t hlen)
{
	char h[8192 + 128];

	s->wait = W_NONE;
	if (s->dead)
		return;
	if (r == AV_VIRUS) {
		refuse(s, "data", "virus", 0, NULL, 550, "5.7.1 Message rejected: virus found: %s", virus);
		log_info("%s av=virus signature=\"%s\"", s->sid, virus);
		report_abuse(s, g_cfg->report_content, "content", "virus");
	} else if (r != AV_CLEAN && !g_cfg->av.pass_unavailable) {
		refuse(s, "data", r == AV_TIMEOUT ? "av_timeout" : r == AV_UNAVAILABLE ? "av_unavailable" : "av_error", 0,
		       NULL, 451, "4.7.1 Virus scan unavailable, try again later");
	} else {
		if (r != AV_CLEAN) {
			stats_inc("av", "passed_unscanned");
			int n = snprintf(h, sizeof(h), "%.*sX-Moat-Virus-Scan: unavailable (%s)\r\n", (int)hlen, hdr,
					 av_result_name(r));
			hdr = h;
			hlen = n > 0 && (size_t)n < sizeof(h) ? (size_t)n : 0;
		}
		s->wait = W_RELAY_EOD;
		relay_eod(s->relay, hdr, hlen);
		goto out;
	}
	if (s->relay)
		relay_rset(s->relay);
	tx_reset(s);
out:
	if (s->in_process)
		return; /* answered from inside data_end: process() goes on */
	process(s);
	settle(s);
}

/* with_enh - the downstream's text, given an enhanced status code
 * (class.0.0) when the downstream did not send one (RFC 2034) */
static const char *with_enh(char *buf, size_t sz, int code, const char *text)
{
	if (text[0] >= '2' && text[0] <= '5' && text[1] == '.')
		return text;
	snprintf(buf, sz, "%d.0.0 %s", code / 100, text);
	return buf;
}

/* session_relay_reply - the downstream answered what the session waits for */
void session_relay_reply(struct session *s, int code, const char *text)
{
	enum sess_wait w = s->wait;
	char eb[600];

	s->wait = W_NONE;
	if (s->dead)
		return;
	s->deadline = s->w->now_ms + (int64_t)g_cfg->timeout_command * 1000;
	switch (w) {
	case W_RELAY_MAIL:
		if (code >= 200 && code < 300) {
			s->has_from = 1;
			reply(s, "250 2.1.0 Ok");
		} else if (code <= 0) {
			refuse(s, "mail", code < 0 ? "downstream_timeout" : "downstream_unavailable", 0, "", 451,
			       "4.4.1 Downstream server unavailable, try again later");
		} else {
			refuse(s, "mail", "downstream", 0, "", code, "%s", with_enh(eb, sizeof(eb), code, text));
		}
		break;
	case W_RELAY_RCPT:
		if (code >= 200 && code < 300) {
			char **nr = realloc(s->rcpts, sizeof(char *) * (size_t)(s->nrcpt + 1));
			char *r = strdup(s->pending_rcpt);
			if (!nr || !r) {
				free(r);
				if (nr)
					s->rcpts = nr;
				reply(s, "451 4.3.0 Try again later");
				break;
			}
			s->rcpts = nr;
			s->rcpts[s->nrcpt++] = r;
			reply(s, "%d %s", code, with_enh(eb, sizeof(eb), code, text));
		} else if (code <= 0) {
			refuse(s, "rcpt", code < 0 ? "downstream_timeout" : "downstream_unavailable", 0,
			       s->pending_rcpt, 451, "4.4.1 Downstream server unavailable, try again later");
		} else {
			refuse(s, "rcpt", code >= 500 ? "unknown_user" : "downstream_tempfail", 0, s->pending_rcpt,
			       code, "%s", with_enh(eb, sizeof(eb), code, text));
			if (code >= 500)
				count_error(s);
		}
		break;
	case W_RELAY_EOD:
		if (code >= 200 && code < 300) {
			reply(s, "%d %s", code, with_enh(eb, sizeof(eb), code, text));
			log_tx(s, "accept", "data", "relayed", code, NULL);
		} else if (code == -1) {
			refuse(s, "data", "downstream_timeout", 0, NULL, 451,
			       "4.4.2 Downstream did not answer in time, try again later");
			stats_inc("data", "rfc1047_window");
		} else if (code == 0) {
			refuse(s, "data", "downstream_unavailable", 0, NULL, 451,
			       "4.4.1 Downstream server unavailable, message not delivered, try again later");
		} else if (code == -2) {
			refuse(s, "data", "recipient_now_refused", 0, NULL, 451,
			       "4.4.1 Downstream refused a recipient on reconnect, try again later");
		} else {
			refuse(s, "data", "downstream", 0, NULL, code, "%s", with_enh(eb, sizeof(eb), code, text));
		}
		tx_reset(s);
		break;
	default:
		break;
	}
	if (s->in_process)
		return; /* answered synchronously from inside process(): it goes on */
	process(s);
	settle(s);
}

/* process - consume buffered input while nothing asynchronous is pending */
static void process(struct session *s)
{
	size_t off = 0;

	s->in_process = 1;
	while (!s->dead && s->wait == W_NONE && off < s->ilen && s->olen < OBUF_HIGH &&
	       (s->state == S_CMD || s->state == S_DATA)) {
		size_t used = 0;
		enum line_res r = line_sm_feed(&s->lsm, s->ibuf + off, s->ilen - off, &used);
		off += used;
		if (r == LINE_NEED_MORE)
			break;
		if (r == LINE_BARE_LF || r == LINE_BARE_CR) {
			/* smuggling defence (Postfix smtpd_forbid_bare_newline) */
			const char *what = r == LINE_BARE_LF ? "bare <LF>" : "bare <CR>";
			refuse(s, s->state == S_DATA ? "data" : "command",
			       r == LINE_BARE_LF ? "bare_lf" : "bare_cr", 1, s->state == S_DATA ? NULL : "", 521,
			       "5.5.2 %s Error: %s received", g_cfg->hostname, what);
			off = s->ilen;
			break;
		}
		char *line = s->lsm.buf;
		size_t len = s->lsm.len;
		int too_long = s->lsm.too_long;
		line_sm_reset(&s->lsm);
		if (s->state == S_DATA) {
			s->deadline = s->w->now_ms + (int64_t)g_cfg->timeout_data * 1000;
			size_t skip;
			if (smtp_data_line(line, len, &skip) == DATA_END && !too_long) {
				data_end(s);
				continue;
			}
			data_line(s, line + skip, len - skip, too_long);
			continue;
		}
		s->deadline = s->w->now_ms + (int64_t)g_cfg->timeout_command * 1000;
		if (too_long) {
			reply(s, "500 5.5.2 Line too long");
			count_error(s);
			continue;
		}
		s->iconsumed = off;
		handle_command(s, line, len);
		if (s->state == S_TLS) {
			off = 0; /* handle_command discarded the rest */
			break;
		}
	}
	if (off) {
		memmove(s->ibuf, s->ibuf + off, s->ilen - off);
		s->ilen -= off;
	}
	s->in_process = 0;
}

/* session_free - release everything (refs == 0) */
static void session_free(struct session *s)
{
	tx_reset(s);
	if (s->relay)
		relay_free(s->relay);
	if (s->ssl)
		SSL_free(s->ssl);
	free(s->ibuf);
	free(s->obuf);
	free(s->lbuf);
	free(s);
	__atomic_sub_fetch(&n_sessions, 1, __ATOMIC_RELAXED);
}

/* session_close - detach from the loop; freed once async work lets go */
static void session_close(struct session *s)
{
	struct worker *w = s->w;

	if (s->dead)
		return;
	s->dead = 1;
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, s->ev.fd, NULL);
	close(s->ev.fd);
	if (s->ip_held)
		iplimit_release(s->family, s->addr);
	if (s->spf_job) {
		s->spf_job->orphan = 1;
		s->spf_job = NULL;
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		w->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	if (s->relay)
		relay_close(s->relay);
	av_cancel(s);
	log_debug("%s disconnect client=%s", s->sid, s->ip);
	session_release(s);
}

/* session_count - sessions open in the process (all workers) */
int session_count(void)
{
	return __atomic_load_n(&n_sessions, __ATOMIC_RELAXED);
}

/* session_release - a reference went away: queue the free when it is the last */
void session_release(struct session *s)
{
	if (s->dead && s->refs == 0 && !s->prev) {
		s->prev = s; /* marks "queued" */
		s->next = s->w->zombies;
		s->w->zombies = s;
	}
}

/* session_free_zombies - free sessions closed during the last event batch */
void session_free_zombies(struct worker *w)
{
	while (w->zombies) {
		struct session *s = w->zombies;
		w->zombies = s->next;
		session_free(s);
	}
}

/* session_abort - close with a reset (SO_LINGER 0): what the kernel holds
 * for a client that does not read (its send and receive queues) is freed
 * at once, not kept while unsendable replies wait for a zero window */
static void session_abort(struct session *s, const char *reason, int report)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(s->ev.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (s->state != S_CLOSING)
		log_tx(s, "reject", "session", reason, 0, "");
	else
		stats_inc("session", reason);
	if (report)
		report_abuse(s, g_cfg->report_protocol, "protocol", reason);
	s->olen = 0;
	session_close(s);
}

int worker_pass(struct worker *w, int timeout_ms)
{
	struct epoll_event evs[256];
	int n = epoll_wait(w->epfd, evs, 256, timeout_ms);

	w->now_ms = moat_clock_ms();
	for (int i = 0; i < n; i++) {
		struct ev *e = evs[i].data.ptr;
		switch (e->kind) {
		case EV_LISTEN:
			session_accept(w, e->fd);
			break;
		case EV_CLIENT:
			session_on_event(e->ptr, evs[i].events);
			break;
		case EV_RELAY:
			relay_on_event(e->ptr, evs[i].events);
			break;
		case EV_WAKE:
			spf_worker_drain(w);
			report_worker_drain(w);
			break;
		case EV_ARES:
			dnsbl_on_event(w, e, evs[i].events);
			break;
		case EV_AV:
			av_on_event(e->ptr, evs[i].events);
			break;
		}
	}
	session_free_zombies(w);
	return n > 0 ? n : 0;
}

/* session_sweep - timeouts (command, data, greet delay, SPF, relay, unread
 * replies, a close whose last reply cannot go out) */
void session_sweep(struct worker *w)
{
	struct session *s, *n;
	int64_t now = w->now_ms;

	for (s = w->sessions; s; s = n) {
		n = s->next;
		if (s->relay)
			relay_check_timeout(s->relay, now);
		if (s->dead)
			continue;
		if (s->unread_since && now - s->unread_since >= (int64_t)g_cfg->timeout_unread * 1000) {
			session_abort(s, "unread_replies", 1);
			continue;
		}
		if (s->state == S_CLOSING && s->olen) {
			/* the last reply (421, 554 ...) waits for a client that
			 * does not read: give it timeout_unread, then reset */
			if (!s->close_by)
				s->close_by = now + (int64_t)g_cfg->timeout_unread * 1000;
			else if (now >= s->close_by) {
				session_abort(s, "close_unsent", 0);
				continue;
			}
		}
		if (s->state == S_CONNECT) {
			connect_check(s);
		} else if (s->wait == W_NONE && s->state != S_CLOSING && now < s->deadline && !s->relay &&
			   !s->olen) {
			/* the common case, an idle session in its time: nothing
			 * to settle (what waits for the socket has EPOLLOUT) */
			continue;
		} else if (s->wait == W_AV) {
			av_check_timeout(s, now);
		} else if (s->wait == W_SPF && now >= s->spf_deadline) {
			if (s->spf_job) {
				s->spf_job->orphan = 1;
				s->spf_job = NULL;
			}
			s->wait = W_NONE;
			snprintf(s->spf_result, sizeof(s->spf_result), "temperror");
			refuse(s, "mail", "spf_timeout", 0, "", 451, "4.7.24 SPF temporary error, try again later");
			process(s);
		} else if (s->wait == W_AUTH && now >= auth_deadline(s->auth)) {
			stats_inc("data", "auth_dns_timeout");
			s->auth->waiting = 0;
			session_auth_done(s);
		} else if (s->wait == W_NONE && s->state != S_CLOSING && now >= s->deadline) {
			refuse(s, s->state == S_DATA ? "data" : "session", "timeout", 1,
			       s->state == S_DATA ? NULL : "", 421, "4.4.2 %s Error: timeout exceeded", g_cfg->hostname);
		}
		settle(s);
	}
}

/* shutdown_one - 421 (plaintext) and close */
static void shutdown_one(struct session *s)
{
	if (s->state != S_CLOSING && !s->tls)
		reply(s, "421 4.3.2 %s Service shutting down", g_cfg->hostname);
	if (s->state == S_DATA || s->has_from)
		log_tx(s, "abandon", s->state == S_DATA ? "data" : "envelope", "shutdown", 421, NULL);
	(void)flush(s);
	session_close(s);
}

/* session_shutdown_idle - the process stops: 421 and close for every
 * session except those whose message is at the downstream, waiting for its
 * reply to the final dot (it may accept it: a 421 then would have the client
 * send the message again).  Returns how many still wait. */
int session_shutdown_idle(struct worker *w)
{
	int waiting = 0;

	for (struct session *s = w->sessions, *n; s; s = n) {
		n = s->next;
		if (s->wait == W_RELAY_EOD)
			waiting++;
		else
			shutdown_one(s);
	}
	return waiting;
}

/* session_shutdown_all - the process stops: 421 to every session, then close */
void session_shutdown_all(struct worker *w)
{
	while (w->sessions)
		shutdown_one(w->sessions);
	session_free_zombies(w);
}
