/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * relay.c - the before-queue relay: a non-blocking SMTP client to the
 * downstream MTA, one per client session, on the session's worker loop.
 *
 * The envelope passes through live: the client's MAIL opens (or reuses) the
 * downstream session and sends MAIL, each RCPT is answered with the
 * downstream's own RCPT reply.  The message is sent only after moat's
 * verdict, as the stream moat rebuilt (held by the session).  If the
 * downstream connection was lost while the client was still sending, the
 * envelope is replayed on a new connection before DATA; a recipient refused
 * now turns into a tempfail.  The one window moat cannot close (downstream
 * took the message but its reply did not arrive before relay_data_timeout)
 * is reported as code -1 and counted (RFC 1047).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "smtpd.h"

enum relay_op { OP_NONE = 0, OP_CONNECT, OP_BANNER, OP_EHLO, OP_MAIL, OP_RCPT, OP_DATA, OP_BODY, OP_RSET };

struct relay {
	struct ev ev;
	struct session *s;
	int dead;
	int connected;          /* banner and EHLO done */
	int tx_open;            /* downstream MAIL accepted, transaction open */
	enum relay_op op;
	enum relay_goal goal;
	enum relay_goal queued; /* goal asked for while an RSET was in flight */
	int replay, replay_idx;
	char rcpt[SMTP_ADDR_MAX + 1];
	char rbuf[2048];
	size_t rlen;
	char last_text[512];
	char *wbuf;
	size_t wlen, wcap;
	int body_phase;         /* 0 none, 1 sending message, 2 dot queued, 3 all sent */
	uint64_t body_off;
	int64_t deadline;
	char *pending_hdr;      /* moat's added headers, sent after the 354 */
	size_t pending_hlen;
};

static void relay_fail(struct relay *r, int code);
static void relay_flush(struct relay *r);

/* relay_new - a relay for session s (not connected yet) */
struct relay *relay_new(struct session *s)
{
	struct relay *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->s = s;
	r->ev.kind = EV_RELAY;
	r->ev.fd = -1;
	r->ev.ptr = r;
	return r;
}

/* relay_disconnect - drop the connection (state back to unconnected) */
static void relay_disconnect(struct relay *r)
{
	if (r->ev.fd >= 0) {
		epoll_ctl(r->s->w->epfd, EPOLL_CTL_DEL, r->ev.fd, NULL);
		close(r->ev.fd);
	}
	r->ev.fd = -1;
	r->ev.events = 0;
	r->connected = 0;
	r->tx_open = 0;
	r->rlen = 0;
	r->wlen = 0;
	r->body_phase = 0;
}

/* relay_close - the client session is gone: say QUIT if idle, drop the connection */
void relay_close(struct relay *r)
{
	if (r->ev.fd >= 0 && r->connected && r->op == OP_NONE && !r->wlen)
		(void)!send(r->ev.fd, "QUIT\r\n", 6, MSG_NOSIGNAL | MSG_DONTWAIT);
	relay_disconnect(r);
	r->dead = 1;
}

/* relay_free - release (session_free, after the event batch) */
void relay_free(struct relay *r)
{
	if (!r->dead)
		relay_close(r);
	free(r->wbuf);
	free(r->pending_hdr);
	free(r);
}

/* relay_busy - is a command outstanding? */
int relay_busy(const struct relay *r)
{
	return r->op != OP_NONE;
}

/* set_interest - EPOLLIN always, EPOLLOUT while output waits or connecting */
static void set_interest(struct relay *r)
{
	uint32_t want = EPOLLIN;
	if (r->ev.fd < 0)
		return;
	if (r->wlen || r->op == OP_CONNECT || r->body_phase == 1 || r->body_phase == 2)
		want |= EPOLLOUT;
	if (want != r->ev.events) {
		struct epoll_event ee = { .events = want, .data.ptr = &r->ev };
		epoll_ctl(r->s->w->epfd, EPOLL_CTL_MOD, r->ev.fd, &ee);
		r->ev.events = want;
	}
}

/* wappend - queue bytes for the downstream */
static int wappend(struct relay *r, const char *p, size_t n)
{
	if (r->wlen + n > r->wcap) {
		size_t nc = r->wcap ? r->wcap : 1024;
		while (nc < r->wlen + n)
			nc *= 2;
		char *nb = realloc(r->wbuf, nc);
		if (!nb)
			return -ENOMEM;
		r->wbuf = nb;
		r->wcap = nc;
	}
	memcpy(r->wbuf + r->wlen, p, n);
	r->wlen += n;
	return 0;
}

/* send_cmd - one command line; its reply goes to op */
static void __attribute__((format(printf, 3, 4))) send_cmd(struct relay *r, enum relay_op op, const char *fmt, ...)
{
	char line[600];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2) {
		relay_fail(r, 0);
		return;
	}
	line[n++] = '\r';
	line[n++] = '\n';
	r->op = op;
	r->deadline = r->s->w->now_ms + (int64_t)g_cfg->relay_command_timeout * 1000;
	if (wappend(r, line, (size_t)n) != 0) {
		relay_fail(r, 0);
		return;
	}
	relay_flush(r);
}

/* done - the goal is reached (or failed): tell the session */
static void done(struct relay *r, int code, const char *text)
{
	r->op = OP_NONE;
	r->goal = RG_NONE;
	r->replay = 0;
	set_interest(r);
	session_relay_reply(r->s, code, text);
}

/* relay_fail - connection unusable: drop it, fail the goal if any */
static void relay_fail(struct relay *r, int code)
{
	enum relay_goal g = r->goal;
	enum relay_op op = r->op;

	relay_disconnect(r);
	r->op = OP_NONE;
	if (g == RG_MAIL || g == RG_RCPT || g == RG_EOD) {
		log_info("%s relay=failed op=%d code=%d", r->s->sid, (int)op, code);
		done(r, code, "");
	} else {
		r->goal = RG_NONE;
	}
}

/* relay_connect - non-blocking connect to the configured downstream */
static void relay_connect(struct relay *r)
{
	int fd = socket(g_cfg->relay.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		relay_fail(r, 0);
		return;
	}
	r->ev.fd = fd;
	/* commands and the final dot are small writes: no Nagle delay */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&g_cfg->relay, g_cfg->relay_len) != 0 && errno != EINPROGRESS) {
		relay_fail(r, 0);
		return;
	}
	struct epoll_event ee = { .events = EPOLLIN | EPOLLOUT, .data.ptr = &r->ev };
	epoll_ctl(r->s->w->epfd, EPOLL_CTL_ADD, fd, &ee);
	r->ev.events = ee.events;
	r->op = OP_CONNECT;
	r->deadline = r->s->w->now_ms + (int64_t)g_cfg->relay_connect_timeout * 1000;
}

/* send_mail - MAIL FROM for the session's envelope */
static void send_mail(struct relay *r)
{
	send_cmd(r, OP_MAIL, "MAIL FROM:<%s>%s", r->s->from.addr, r->s->from.body_8bit ? " BODY=8BITMIME" : "");
}

/* start_goal - with a usable connection, do what the session asked */
static void start_goal(struct relay *r)
{
	if (!r->connected) {
		r->replay = r->goal != RG_MAIL;
		relay_connect(r);
		return;
	}
	switch (r->goal) {
	case RG_MAIL:
		send_mail(r);
		break;
	case RG_RCPT:
		send_cmd(r, OP_RCPT, "RCPT TO:<%s>", r->rcpt);
		break;
	case RG_EOD:
		send_cmd(r, OP_DATA, "DATA");
		break;
	default:
		break;
	}
}

/* replay_next - after a reconnect: the next accepted recipient, then the goal */
static void replay_next(struct relay *r)
{
	if (r->replay_idx < r->s->nrcpt) {
		send_cmd(r, OP_RCPT, "RCPT TO:<%s>", r->s->rcpts[r->replay_idx++]);
		return;
	}
	r->replay = 0;
	stats_inc("relay", "envelope_replayed");
	start_goal(r);
}

/* on_reply - a complete downstream reply */
static void on_reply(struct relay *r, int code, const char *text)
{
	int ok = code >= 200 && code < 300;

	switch (r->op) {
	case OP_NONE:
		/* unsolicited (421 idle timeout, shutdown): the connection is gone */
		log_debug("%s relay unsolicited code=%d", r->s->sid, code);
		relay_disconnect(r);
		return;
	case OP_BANNER:
		if (code != 220) {
			relay_fail(r, 0);
			return;
		}
		send_cmd(r, OP_EHLO, "EHLO %s", g_cfg->relay_helo);
		return;
	case OP_EHLO:
		if (!ok) {
			relay_fail(r, 0);
			return;
		}
		r->connected = 1;
		r->op = OP_NONE;
		if (r->replay) {
			r->replay_idx = 0;
			send_mail(r);
		} else {
			start_goal(r);
		}
		return;
	case OP_MAIL:
		if (r->replay) {
			if (!ok) {
				done(r, -2, text);
				return;
			}
			r->tx_open = 1;
			replay_next(r);
			return;
		}
		r->tx_open = ok;
		done(r, code, text);
		return;
	case OP_RCPT:
		if (r->replay) {
			if (!ok) {
				done(r, -2, text);
				return;
			}
			replay_next(r);
			return;
		}
		done(r, code, text);
		return;
	case OP_DATA:
		if (code != 354) {
			r->tx_open = 0;
			done(r, code, text);
			return;
		}
		r->op = OP_BODY;
		r->body_phase = 1;
		r->body_off = 0;
		r->deadline = r->s->w->now_ms + (int64_t)g_cfg->relay_command_timeout * 1000;
		if (r->pending_hdr && wappend(r, r->pending_hdr, r->pending_hlen) != 0) {
			relay_fail(r, 0);
			return;
		}
		relay_flush(r);
		return;
	case OP_BODY:
		r->tx_open = 0;
		r->body_phase = 0;
		done(r, code, text);
		return;
	case OP_RSET:
		r->op = OP_NONE;
		r->tx_open = 0;
		if (!ok) {
			relay_disconnect(r);
		}
		if (r->queued) {
			r->goal = r->queued;
			r->queued = RG_NONE;
			start_goal(r);
		}
		return;
	case OP_CONNECT:
		return;
	}
}

/* parse_replies - cut complete replies out of rbuf */
static void parse_replies(struct relay *r)
{
	size_t start = 0;

	for (;;) {
		char *nl = memchr(r->rbuf + start, '\n', r->rlen - start);
		if (!nl)
			break;
		size_t ll = (size_t)(nl - (r->rbuf + start));
		char *line = r->rbuf + start;
		start += ll + 1;
		if (ll && line[ll - 1] == '\r')
			ll--;
		/* RFC 5321 4.2: Reply-code = %x32-35 %x30-35 %x30-39, then SP,
		 * "-" or the end; anything else is no reply (a code like "55f"
		 * went to the client as "604": found by fuzz_smtpd_session) */
		if (ll < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
		    line[2] < '0' || line[2] > '9' || (ll > 3 && line[3] != ' ' && line[3] != '-')) {
			relay_fail(r, 0);
			return;
		}
		int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		size_t tl = ll > 4 ? ll - 4 : 0;
		if (tl >= sizeof(r->last_text))
			tl = sizeof(r->last_text) - 1;
		/* keep printable text only: it goes back to the client */
		for (size_t i = 0; i < tl; i++) {
			unsigned char c = (unsigned char)line[4 + i];
			r->last_text[i] = c >= 32 && c < 127 ? (char)c : '?';
		}
		r->last_text[tl] = '\0';
		if (ll > 3 && line[3] == '-')
			continue;
		size_t rest = r->rlen - start;
		memmove(r->rbuf, r->rbuf + start, rest);
		r->rlen = rest;
		start = 0;
		on_reply(r, code, r->last_text);
		if (r->dead || r->ev.fd < 0)
			return;
	}
	if (start) {
		memmove(r->rbuf, r->rbuf + start, r->rlen - start);
		r->rlen -= start;
	}
	if (r->rlen == sizeof(r->rbuf))
		relay_fail(r, 0); /* a reply line longer than any sane server sends */
}

/* next_chunk - move the next piece of the held message into wbuf */
static int next_chunk(struct relay *r)
{
	struct hold *h = &r->s->hold;
	uint64_t left = h->total - r->body_off;
	size_t n = left > 65536 ? 65536 : (size_t)left;

	if (!n)
		return 0;
	if (h->fd < 0) {
		if (wappend(r, h->mem + r->body_off, n) != 0)
			return -1;
	} else {
		if (r->wlen + n > r->wcap) {
			char *nb = realloc(r->wbuf, r->wlen + n);
			if (!nb)
				return -1;
			r->wbuf = nb;
			r->wcap = r->wlen + n;
		}
		ssize_t got = pread(h->fd, r->wbuf + r->wlen, n, (off_t)r->body_off);
		if (got <= 0)
			return -1;
		n = (size_t)got;
		r->wlen += n;
	}
	r->body_off += n;
	return 0;
}

/* relay_flush - write what is queued; stream the message in BODY */
static void relay_flush(struct relay *r)
{
	for (;;) {
		if (!r->wlen && r->body_phase == 1) {
			if (r->body_off >= r->s->hold.total) {
				r->body_phase = 2;
				if (wappend(r, ".\r\n", 3) != 0) {
					relay_fail(r, 0);
					return;
				}
			} else if (next_chunk(r) != 0) {
				relay_fail(r, 0);
				return;
			}
		}
		if (!r->wlen)
			break;
		ssize_t n = send(r->ev.fd, r->wbuf, r->wlen, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			relay_fail(r, 0);
			return;
		}
		memmove(r->wbuf, r->wbuf + n, r->wlen - (size_t)n);
		r->wlen -= (size_t)n;
		if (r->op == OP_BODY)
			r->deadline = r->s->w->now_ms + (int64_t)g_cfg->relay_command_timeout * 1000;
	}
	if (!r->wlen && r->body_phase == 2) {
		/* all sent: now the final reply, up to relay_data_timeout */
		r->body_phase = 3;
		r->deadline = r->s->w->now_ms + (int64_t)g_cfg->relay_data_timeout * 1000;
	}
	if (!r->wlen && r->wcap > 65536) {
		free(r->wbuf);
		r->wbuf = NULL;
		r->wcap = 0;
	}
	set_interest(r);
}

/* relay_on_event - readiness on the downstream socket */
void relay_on_event(struct relay *r, uint32_t events)
{
	if (r->dead || r->ev.fd < 0)
		return;
	if (r->op == OP_CONNECT) {
		int err = 0;
		socklen_t l = sizeof(err);
		getsockopt(r->ev.fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err || (events & (EPOLLERR | EPOLLHUP))) {
			relay_fail(r, 0);
			return;
		}
		if (!(events & (EPOLLOUT | EPOLLIN)))
			return;
		r->op = OP_BANNER;
		r->deadline = r->s->w->now_ms + (int64_t)g_cfg->relay_command_timeout * 1000;
		set_interest(r);
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		for (;;) {
			if (r->rlen >= sizeof(r->rbuf))
				break;
			ssize_t n = recv(r->ev.fd, r->rbuf + r->rlen, sizeof(r->rbuf) - r->rlen, 0);
			if (n > 0) {
				r->rlen += (size_t)n;
				parse_replies(r);
				if (r->dead || r->ev.fd < 0)
					return;
				continue;
			}
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			/* EOF or error: lost; the transaction replays at the next step */
			if (r->op != OP_NONE) {
				relay_fail(r, 0);
			} else {
				if (r->tx_open)
					stats_inc("relay", "lost_idle");
				relay_disconnect(r);
			}
			return;
		}
	}
	if ((events & EPOLLOUT) && r->ev.fd >= 0)
		relay_flush(r);
}

/* relay_check_timeout - command, connect and final-reply deadlines */
void relay_check_timeout(struct relay *r, int64_t now)
{
	if (r->dead || r->op == OP_NONE || now < r->deadline)
		return;
	if (r->op == OP_BODY && r->body_phase == 3) {
		/* RFC 1047: downstream may have the message; we cannot know */
		log_warn("%s relay=timeout stage=final_reply window=rfc1047", r->s->sid);
		relay_fail(r, -1);
		return;
	}
	if (r->op == OP_RSET) {
		relay_disconnect(r);
		r->op = OP_NONE;
		if (r->queued) {
			r->goal = r->queued;
			r->queued = RG_NONE;
			start_goal(r);
		}
		return;
	}
	log_info("%s relay=timeout op=%d", r->s->sid, (int)r->op);
	relay_fail(r, 0);
}

/* relay_mail - MAIL FROM downstream (connecting first if needed) */
void relay_mail(struct relay *r)
{
	r->goal = RG_MAIL;
	r->replay = 0;
	if (r->op == OP_RSET) {
		r->queued = RG_MAIL;
		r->goal = RG_NONE;
		return;
	}
	start_goal(r);
}

/* relay_rcpt - RCPT TO downstream; replays the envelope if the link was lost */
void relay_rcpt(struct relay *r, const char *rcpt)
{
	snprintf(r->rcpt, sizeof(r->rcpt), "%s", rcpt);
	r->goal = RG_RCPT;
	start_goal(r);
}

/* relay_eod - the verdict is accept: DATA, moat's headers, the held stream */
void relay_eod(struct relay *r, const char *headers, size_t hlen)
{
	r->goal = RG_EOD;
	/* headers go out right after the 354, ahead of the held stream */
	r->body_phase = 0;
	free(r->pending_hdr);
	r->pending_hdr = NULL;
	r->pending_hlen = 0;
	if (hlen) {
		r->pending_hdr = malloc(hlen);
		if (!r->pending_hdr) {
			done(r, 0, "");
			return;
		}
		memcpy(r->pending_hdr, headers, hlen);
		r->pending_hlen = hlen;
	}
	start_goal(r);
}

/* relay_rset - abandon the downstream transaction */
void relay_rset(struct relay *r)
{
	r->goal = RG_NONE;
	if (!r->connected || r->op != OP_NONE || !r->tx_open) {
		r->tx_open = 0;
		return;
	}
	send_cmd(r, OP_RSET, "RSET");
}
