/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * av.c - the antivirus verdict at end of data, from a ClamAV daemon.
 *
 * clamd spools INSTREAM data and scans only after the last chunk, so
 * nothing is gained by streaming while the client sends: the held message
 * goes to clamd once, at the final dot, last of the end-of-data checks.
 * Over a unix socket (clamd on this host) the message's descriptor is
 * passed (FILDES, SCM_RIGHTS): the spill file when the message spilled, a
 * memfd copy of the in-memory hold otherwise; clamd reads it with pread, so
 * the relay's own reads are not disturbed.  Over TCP the message is sent
 * as INSTREAM chunks (clamd's StreamMaxLength must be at least
 * max_message_size, or clamd answers an error).  The connection lives on
 * the session's worker loop (EV_AV), non-blocking, bounded by
 * clamd_timeout_ms; the session waits (W_AV) and session_av_done gets the
 * verdict exactly once.  The held stream is what moat relays: dot-stuffed,
 * without moat's added headers.
 *
 * A second, tiny part: a thread asking clamd's VERSION every
 * clamd_db_check_s ("ClamAV 1.4.6/27000/Thu Dec  3 09:12:00 2026") and
 * raising an alarm (log line, av.db_stale counter, gauge) when the
 * signature database is older than clamd_db_max_age_h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "smtpd.h"

#define AV_CHUNK 65536

enum av_phase { P_CONNECT = 0, P_SEND, P_READ };

struct av_scan {
	struct ev ev;           /* EV_AV, the clamd connection */
	struct session *s;
	enum av_phase phase;
	int fildes;             /* pass the descriptor; else INSTREAM */
	int passfd;             /* FILDES: the descriptor handed over */
	int own_passfd;         /* passfd is our memfd (closed with the scan) */
	int fd_sent;
	uint64_t off;           /* INSTREAM: message bytes queued */
	int eos;                /* INSTREAM: the zero-length chunk queued */
	char wbuf[AV_CHUNK + 4];
	size_t wlen, woff;
	char rbuf[512];
	size_t rlen;
	int64_t started, deadline;
	char *hdr;
	size_t hlen;
};

/* scan_free - close the connection and what the scan owns */
static void scan_free(struct av_scan *a)
{
	if (a->ev.fd >= 0) {
		epoll_ctl(a->s->w->epfd, EPOLL_CTL_DEL, a->ev.fd, NULL);
		close(a->ev.fd);
	}
	if (a->own_passfd && a->passfd >= 0)
		close(a->passfd);
	free(a->hdr);
	free(a);
}

/* finish - the verdict: count it, detach from the session, tell it */
static void finish(struct av_scan *a, enum av_result r, const char *virus, const char *detail)
{
	struct session *s = a->s;
	int64_t ms = moat_clock_ms() - a->started;

	stats_inc("av", av_result_name(r));
	stats_add("av.scan_ms", (uint64_t)(ms > 0 ? ms : 0));
	if (r != AV_CLEAN && r != AV_VIRUS)
		log_warn("%s event=av_scan result=%s clamd=%s mode=%s ms=%lld detail=\"%s\"", s->sid,
			 av_result_name(r), g_cfg->av.clamd, a->fildes ? "fildes" : "instream", (long long)ms,
			 detail ? detail : "");
	else
		log_debug("%s event=av_scan result=%s mode=%s ms=%lld", s->sid, av_result_name(r),
			  a->fildes ? "fildes" : "instream", (long long)ms);
	s->av = NULL;
	if (s->wait == W_AV)
		s->wait = W_NONE;
	/* the session may start the relay from here: the scan goes first */
	char *hdr = a->hdr;
	size_t hlen = a->hlen;
	a->hdr = NULL;
	scan_free(a);
	session_av_done(s, r, virus ? virus : "", hdr ? hdr : "", hlen);
	free(hdr);
}

/* set_interest - EPOLLIN always (an early error reply), EPOLLOUT while sending */
static void set_interest(struct av_scan *a)
{
	uint32_t want = EPOLLIN;
	if (a->phase == P_CONNECT || a->phase == P_SEND)
		want |= EPOLLOUT;
	if (want != a->ev.events) {
		struct epoll_event ee = { .events = want, .data.ptr = &a->ev };
		epoll_ctl(a->s->w->epfd, EPOLL_CTL_MOD, a->ev.fd, &ee);
		a->ev.events = want;
	}
}

/* fill - INSTREAM: queue the next chunk of the held message (or the end);
 * 0, or -errno reading the spill file */
static int fill(struct av_scan *a)
{
	const struct hold *h = &a->s->hold;
	uint64_t left = h->total - a->off;
	size_t n = left > AV_CHUNK ? AV_CHUNK : (size_t)left;

	a->woff = 0;
	if (n == 0) {
		memset(a->wbuf, 0, 4);
		a->wlen = 4;
		a->eos = 1;
		return 0;
	}
	if (h->fd >= 0) {
		ssize_t got = pread(h->fd, a->wbuf + 4, n, (off_t)a->off);
		if (got <= 0)
			return got < 0 ? -errno : -EIO;
		n = (size_t)got;
	} else {
		memcpy(a->wbuf + 4, h->mem + a->off, n);
	}
	uint32_t be = htonl((uint32_t)n);
	memcpy(a->wbuf, &be, 4);
	a->wlen = n + 4;
	a->off += n;
	return 0;
}

/* send_fd - FILDES: the descriptor in SCM_RIGHTS with one byte of data;
 * 0, 1 try again, -errno */
static int send_fd(struct av_scan *a)
{
	char byte = 0;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);

	memset(u.buf, 0, sizeof(u.buf));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &a->passfd, sizeof(int));
	if (sendmsg(a->ev.fd, &m, MSG_NOSIGNAL) == 1)
		return 0;
	return errno == EAGAIN || errno == EINTR ? 1 : -errno;
}

/* verdict - clamd's answer, complete in rbuf: finish with it */
static void verdict(struct av_scan *a)
{
	char name[128];
	enum av_result r = av_parse_reply(a->rbuf, a->rlen, name, sizeof(name));

	finish(a, r, r == AV_VIRUS ? name : NULL, r == AV_ERROR ? name : NULL);
}

/* do_read - take clamd's answer; 1 when the scan finished */
static int do_read(struct av_scan *a)
{
	for (;;) {
		if (a->rlen >= sizeof(a->rbuf) - 1) {
			a->rbuf[sizeof(a->rbuf) - 1] = '\0';
			verdict(a);
			return 1;
		}
		ssize_t n = recv(a->ev.fd, a->rbuf + a->rlen, sizeof(a->rbuf) - 1 - a->rlen, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0) {
			if (a->rlen) {
				a->rbuf[a->rlen] = '\0';
				verdict(a);
			} else {
				finish(a, AV_ERROR, NULL, n < 0 ? strerror(errno) : "clamd closed without an answer");
			}
			return 1;
		}
		a->rlen += (size_t)n;
		if (memchr(a->rbuf + a->rlen - (size_t)n, '\0', (size_t)n)) {
			a->rbuf[a->rlen] = '\0';
			verdict(a);
			return 1;
		}
	}
}

/* do_send - push the command, the descriptor or the chunks; 1 when the
 * scan finished (an error) */
static int do_send(struct av_scan *a)
{
	for (;;) {
		while (a->woff < a->wlen) {
			ssize_t n = send(a->ev.fd, a->wbuf + a->woff, a->wlen - a->woff, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return 0;
				/* clamd may have answered and closed (size limit) */
				a->phase = P_READ;
				return do_read(a);
			}
			a->woff += (size_t)n;
		}
		if (a->fildes) {
			if (!a->fd_sent) {
				int r = send_fd(a);
				if (r == 1)
					return 0;
				if (r < 0) {
					finish(a, AV_ERROR, NULL, strerror(-r));
					return 1;
				}
				a->fd_sent = 1;
			}
			a->phase = P_READ;
			return 0;
		}
		if (a->eos) {
			a->phase = P_READ;
			return 0;
		}
		int r = fill(a);
		if (r < 0) {
			finish(a, AV_ERROR, NULL, strerror(-r));
			return 1;
		}
	}
}

/* av_on_event - readiness on the clamd connection */
void av_on_event(struct av_scan *a, uint32_t events)
{
	if (a->phase == P_CONNECT) {
		int err = 0;
		socklen_t l = sizeof(err);
		if (getsockopt(a->ev.fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0)
			err = errno;
		if (err) {
			finish(a, AV_UNAVAILABLE, NULL, strerror(err));
			return;
		}
		if (!(events & (EPOLLOUT | EPOLLIN | EPOLLERR | EPOLLHUP)))
			return;
		a->phase = P_SEND;
	}
	if (a->phase == P_SEND && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && do_send(a))
		return;
	if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && do_read(a))
		return;
	set_interest(a);
}

/* pass_fd - FILDES: the descriptor clamd reads, the spill file or a memfd
 * copy of the in-memory hold; 0 or -errno */
static int pass_fd(struct av_scan *a)
{
	const struct hold *h = &a->s->hold;

	if (h->fd >= 0) {
		a->passfd = h->fd;
		return 0;
	}
	int fd = memfd_create("moat-av", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t off = 0;
	while (off < h->len) {
		ssize_t n = write(fd, h->mem + off, h->len - off);
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(fd);
			return -e;
		}
		off += (size_t)n;
	}
	a->passfd = fd;
	a->own_passfd = 1;
	return 0;
}

/* av_start - scan s's held message; 0 scan under way, 1 antivirus off */
int av_start(struct session *s, const char *hdr, size_t hlen)
{
	const struct smtpd_av_config *c = &g_cfg->av;
	struct av_scan *a;

	if (!c->clamd[0])
		return 1;
	s->wait = W_AV;
	a = calloc(1, sizeof(*a));
	if (!a) {
		/* session_av_done needs the headers: give them back as they are */
		stats_inc("av", "error");
		session_av_done(s, AV_ERROR, "", hdr, hlen);
		return 0;
	}
	a->s = s;
	a->ev.kind = EV_AV;
	a->ev.fd = -1;
	a->ev.ptr = a;
	a->passfd = -1;
	a->started = moat_clock_ms();
	a->deadline = s->w->now_ms + c->timeout_ms;
	a->fildes = c->is_unix && c->mode != AV_MODE_INSTREAM;
	a->hdr = malloc(hlen + 1);
	s->av = a;
	if (!a->hdr) {
		finish(a, AV_ERROR, NULL, "out of memory");
		return 0;
	}
	memcpy(a->hdr, hdr, hlen);
	a->hlen = hlen;
	if (a->fildes) {
		int r = pass_fd(a);
		if (r < 0) {
			finish(a, AV_ERROR, NULL, strerror(-r));
			return 0;
		}
		memcpy(a->wbuf, "zFILDES", 8);
		a->wlen = 8;
	} else {
		memcpy(a->wbuf, "zINSTREAM", 10);
		a->wlen = 10;
	}
	a->ev.fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->ev.fd < 0) {
		finish(a, AV_UNAVAILABLE, NULL, strerror(errno));
		return 0;
	}
	if (connect(a->ev.fd, (const struct sockaddr *)&c->addr, c->addr_len) != 0 && errno != EINPROGRESS) {
		/* a unix socket's full backlog (EAGAIN) counts as unavailable too */
		int e = errno;
		close(a->ev.fd);
		a->ev.fd = -1;
		finish(a, AV_UNAVAILABLE, NULL, strerror(e));
		return 0;
	}
	a->phase = P_CONNECT;
	struct epoll_event ee = { .events = EPOLLOUT | EPOLLIN, .data.ptr = &a->ev };
	a->ev.events = ee.events;
	if (epoll_ctl(s->w->epfd, EPOLL_CTL_ADD, a->ev.fd, &ee) != 0) {
		int e = errno;
		close(a->ev.fd);
		a->ev.fd = -1;
		finish(a, AV_ERROR, NULL, strerror(e));
	}
	return 0;
}

/* av_check_timeout - end a scan past its deadline */
void av_check_timeout(struct session *s, int64_t now)
{
	if (s->av && now >= s->av->deadline)
		finish(s->av, AV_TIMEOUT, NULL, "no verdict before clamd_timeout_ms");
}

/* av_cancel - the session closes: drop its scan without an answer */
void av_cancel(struct session *s)
{
	if (!s->av)
		return;
	stats_inc("av", "cancelled");
	scan_free(s->av);
	s->av = NULL;
}

/* ---- the signature database's age ---- */

static pthread_t mon_thr;
static int mon_running;
static pthread_mutex_t mon_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mon_cond = PTHREAD_COND_INITIALIZER;
static int mon_stop;
static int64_t db_age = -1;     /* s, atomics */
static int db_stale;
static struct smtpd_av_config mon_cfg;

/* av_db_age_s - the database's age at the last check, -1 unknown */
int64_t av_db_age_s(void)
{
	return __atomic_load_n(&db_age, __ATOMIC_RELAXED);
}

/* av_db_stale - 1 while the age alarm is raised */
int av_db_stale(void)
{
	return __atomic_load_n(&db_stale, __ATOMIC_RELAXED);
}

/* ask_version - clamd's VERSION, blocking with a deadline (this thread
 * only); 0 or -errno */
static int ask_version(char *out, size_t sz)
{
	/* at most 5 s: VERSION is cheap, and stopping moat-smtpd waits for it */
	int ms = mon_cfg.timeout_ms < 5000 ? mon_cfg.timeout_ms : 5000;
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	int fd = socket(mon_cfg.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	size_t len = 0;
	int r = 0;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)&mon_cfg.addr, mon_cfg.addr_len) != 0 ||
	    send(fd, "zVERSION", 9, MSG_NOSIGNAL) != 9) {
		r = -errno;
		goto out;
	}
	while (len < sz - 1) {
		ssize_t n = recv(fd, out + len, sz - 1 - len, 0);
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0 || memchr(out + len, '\0', (size_t)n)) {
			len += (size_t)n;
			break;
		}
		len += (size_t)n;
	}
	out[len] = '\0';
	if (!len)
		r = -EPROTO;
out:
	close(fd);
	return r;
}

/* check_db - one VERSION: update the age, raise or clear the alarm */
static void check_db(void)
{
	char v[256], e[256];
	int r = ask_version(v, sizeof(v));

	if (r < 0) {
		stats_inc("av", "db_check_failed");
		log_warn("event=av_db_check result=unavailable clamd=%s error=\"%s\"", mon_cfg.clamd, strerror(-r));
		return;
	}
	log_escape(e, sizeof(e), v, strlen(v));
	time_t built;
	if (av_parse_version(v, &built) != 0) {
		stats_inc("av", "db_check_failed");
		__atomic_store_n(&db_age, -1, __ATOMIC_RELAXED);
		log_warn("event=av_db_check result=unknown clamd=%s version=\"%s\"", mon_cfg.clamd, e);
		return;
	}
	int64_t age = (int64_t)(time(NULL) - built);
	if (age < 0)
		age = 0;
	__atomic_store_n(&db_age, age, __ATOMIC_RELAXED);
	int stale = mon_cfg.db_max_age_h && age > (int64_t)mon_cfg.db_max_age_h * 3600;
	__atomic_store_n(&db_stale, stale, __ATOMIC_RELAXED);
	stats_inc("av", stale ? "db_stale" : "db_check_ok");
	if (stale)
		log_warn("event=av_db_stale clamd=%s age_h=%lld max_age_h=%d version=\"%s\"", mon_cfg.clamd,
			 (long long)(age / 3600), mon_cfg.db_max_age_h, e);
	else
		log_info("event=av_db_check result=ok clamd=%s age_h=%lld max_age_h=%d version=\"%s\"", mon_cfg.clamd,
			 (long long)(age / 3600), mon_cfg.db_max_age_h, e);
}

/* monitor - the thread: a check now, then every db_check_s */
static void *monitor(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mon_lock);
	while (!mon_stop) {
		pthread_mutex_unlock(&mon_lock);
		check_db();
		pthread_mutex_lock(&mon_lock);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += mon_cfg.db_check_s;
		while (!mon_stop && pthread_cond_timedwait(&mon_cond, &mon_lock, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&mon_lock);
	return NULL;
}

/* av_monitor_start - start the database-age thread; 0 or -errno */
int av_monitor_start(const struct smtpd_av_config *c)
{
	if (!c->clamd[0])
		return 0;
	log_info("event=av clamd=%s mode=%s timeout_ms=%d unavailable=%s db_max_age_h=%d", c->clamd,
		 c->is_unix && c->mode != AV_MODE_INSTREAM ? "fildes" : "instream", c->timeout_ms,
		 c->pass_unavailable ? "pass" : "tempfail", c->db_max_age_h);
	mon_cfg = *c;
	int r = pthread_create(&mon_thr, NULL, monitor, NULL);
	if (r)
		return -r;
	mon_running = 1;
	return 0;
}

/* av_monitor_stop - stop and join it */
void av_monitor_stop(void)
{
	if (!mon_running)
		return;
	pthread_mutex_lock(&mon_lock);
	mon_stop = 1;
	pthread_cond_signal(&mon_cond);
	pthread_mutex_unlock(&mon_lock);
	pthread_join(mon_thr, NULL);
	mon_running = 0;
}
