/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fp_dpdk.c - the DPDK backend as a struct moat_fastpath (lib/fastpath.h):
 * what moat-controld drives, a client of moat-dpdk's publish channel
 * (dp_chan.c, wire format dp_proto.h) over its unix socket.  No DPDK
 * header: moat-controld links this file, moat-dpdk owns the table.
 *
 * Two connections: commands (publish in chunks of DP_PROTO_MAX_UPDATES,
 * commit, read_image, lookup, read_stats; each answered in order) and
 * events (moat-dpdk pushes sampled verdicts).  events_fd is an epoll fd of
 * this backend holding the events connection, so it stays the same fd
 * across reconnections.
 *
 * moat-dpdk gone (killed, restarting): every op returns -ENOTCONN and
 * events_drain reports it once (moat-controld logs and counts it and marks
 * the fast path dirty).  Only read_image reconnects, and publish refuses
 * until a read_image succeeded on the new connection: the first publish
 * to a restarted moat-dpdk is a diff from what it really holds (its table
 * restored from disk, or empty), never from what the previous one had.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dp_proto.h"
#include "fastpath.h"
#include "log.h"

#define REPLY_TIMEOUT_S 30   /* a publish chunk waits for readers' grace */

struct fpd {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int cfd, efd, epfd;
	int lostfd;            /* eventfd in epfd: a loss to report */
	bool need_resync;      /* publish refused until a read_image */
	bool lost_pending;     /* events_drain reports -ENOTCONN once */
	uint64_t groups_max;
	uint8_t *buf;          /* DP_PROTO_MAX_MSG */
};

/* fpd_lost - moat-dpdk went away: drop both connections */
static void fpd_lost(struct fpd *f, const char *why)
{
	if (f->cfd < 0 && f->efd < 0)
		return;
	log_err("dpdk: event=fastpath_lost path=%s error=\"%s\" (publishes refused "
		"until moat-dpdk answers again)", f->path, why);
	if (f->cfd >= 0)
		close(f->cfd);
	if (f->efd >= 0)
		close(f->efd);   /* leaves the epoll set */
	f->cfd = f->efd = -1;
	f->need_resync = true;
	f->lost_pending = true;
	/* a loss seen by a command: make events_fd readable so the daemon
	 * drains and hears of it */
	if (eventfd_write(f->lostfd, 1) < 0)
		log_warn("dpdk: lost event: %s", strerror(errno));
}

/* recv_msg - one datagram of type want into f->buf, checked; its length
 * or -errno (-EPROTO: not a message of this protocol) */
static ssize_t recv_msg(struct fpd *f, int fd, int want, int flags)
{
	const struct dp_msg *m = (const struct dp_msg *)f->buf;
	ssize_t r;

	do
		r = recv(fd, f->buf, DP_PROTO_MAX_MSG, MSG_TRUNC | flags);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ECONNRESET;
	if ((size_t)r < sizeof(*m) || (size_t)r > DP_PROTO_MAX_MSG ||
	    m->magic != DP_PROTO_MAGIC || m->version != DP_PROTO_VERSION ||
	    m->len != (size_t)r || m->type != want)
		return -EPROTO;
	return r;
}

/* connect_role - a connection to moat-dpdk in role; fd or -errno */
static int connect_role(struct fpd *f, enum dp_role role)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { REPLY_TIMEOUT_S, 0 };
	struct dp_msg m = { .type = DP_MSG_HELLO, .flags = role };
	const struct dp_msg *rep = (const struct dp_msg *)f->buf;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return -errno;
	strcpy(sa.sun_path, f->path);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		goto fail;
	}
	if ((r = dp_msg_send(fd, &m, NULL, 0, 0)) < 0 ||
	    (r = (int)recv_msg(f, fd, DP_MSG_REPLY, 0)) < 0)
		goto fail;
	if (rep->err) {
		r = rep->err;
		goto fail;
	}
	f->groups_max = rep->value;
	return fd;
fail:
	close(fd);
	return r;
}

/* fpd_connect - both connections (no-op when up); with wait_busy a role
 * still taken is retried for a second (open and read_image: a killed
 * moat-controld's connections may not be noticed gone yet; never on the
 * periodic ops, which must not stall the daemon's loop); 0 or -errno */
static int fpd_connect(struct fpd *f, bool wait_busy)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int tries = wait_busy ? 10 : 0;
	int r;

	if (f->cfd >= 0)
		return 0;
	for (int i = 0; (r = connect_role(f, DP_ROLE_COMMAND)) == -EBUSY && i < tries; i++)
		usleep(100 * 1000);
	if (r < 0)
		return r;
	f->cfd = r;
	for (int i = 0; (r = connect_role(f, DP_ROLE_EVENTS)) == -EBUSY && i < tries; i++)
		usleep(100 * 1000);
	if (r < 0) {
		close(f->cfd);
		f->cfd = -1;
		return r;
	}
	f->efd = r;
	ev.data.fd = f->efd;
	if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->efd, &ev) < 0)
		log_warn("dpdk: events connection not watched: %s", strerror(errno));
	log_info("dpdk: event=fastpath_connected path=%s groups_max=%llu", f->path,
		 (unsigned long long)f->groups_max);
	return 0;
}

/* not_connected - the errno for "moat-dpdk is not there" */
static int not_connected(int r)
{
	switch (r) {
	case -ENOENT: case -ECONNREFUSED: case -ECONNRESET: case -EPIPE:
	case -ENOTCONN:
		return -ENOTCONN;
	}
	return r;
}

/* request - one request, its reply in f->buf; 0, the reply's err, or
 * -ENOTCONN when moat-dpdk went away (the connection is dropped) */
static int request(struct fpd *f, struct dp_msg *m, const void *pl, size_t plen,
		   int want)
{
	ssize_t r;

	if (f->cfd < 0)
		return -ENOTCONN;
	r = dp_msg_send(f->cfd, m, pl, plen, 0);
	if (r == 0)
		r = recv_msg(f, f->cfd, want, 0);
	if (r < 0) {
		fpd_lost(f, strerror((int)-r));
		return -ENOTCONN;
	}
	return ((const struct dp_msg *)f->buf)->err;
}

/* fpd_publish - the updates in chunks, each applied before the next */
static int fpd_publish(void *ctx, const struct moat_update *u, size_t n)
{
	struct fpd *f = ctx;

	if (f->need_resync || f->cfd < 0)
		return -ENOTCONN;
	for (size_t off = 0; off < n; off += DP_PROTO_MAX_UPDATES) {
		size_t k = n - off < DP_PROTO_MAX_UPDATES ? n - off : DP_PROTO_MAX_UPDATES;
		struct dp_msg m = { .type = DP_MSG_PUBLISH, .count = (uint32_t)k };
		int r = request(f, &m, u + off, k * sizeof(*u), DP_MSG_REPLY);

		if (r < 0)
			return r;
	}
	return 0;
}

/* fpd_publish_done - a table version is complete: moat-dpdk may forward
 * with it and saves it */
static int fpd_publish_done(void *ctx)
{
	struct fpd *f = ctx;
	struct dp_msg m = { .type = DP_MSG_COMMIT };

	if (f->need_resync || f->cfd < 0)
		return -ENOTCONN;
	return request(f, &m, NULL, 0, DP_MSG_REPLY);
}

/* fpd_read_image - (re)connect, then the image moat-dpdk holds */
static int fpd_read_image(void *ctx, struct moat_update **ups, size_t *nups)
{
	struct fpd *f = ctx;
	const struct dp_msg *rep = (const struct dp_msg *)f->buf;
	struct dp_msg m = { .type = DP_MSG_READ_IMAGE };
	struct moat_update *u = NULL;
	size_t n = 0, cap = 0;
	int r;

	*ups = NULL;
	*nups = 0;
	if ((r = fpd_connect(f, true)) < 0)
		return not_connected(r);
	if ((r = dp_msg_send(f->cfd, &m, NULL, 0, 0)) < 0)
		goto lost;
	for (;;) {
		ssize_t len = recv_msg(f, f->cfd, DP_MSG_IMAGE, 0);
		size_t k;

		if (len < 0) {
			r = (int)len;
			goto lost;
		}
		k = rep->count;
		if (k > DP_PROTO_MAX_UPDATES || (size_t)len != sizeof(*rep) + k * sizeof(*u)) {
			r = -EPROTO;
			goto lost;
		}
		if (n + k > cap) {
			size_t c = cap ? cap * 2 : 4096;
			struct moat_update *nu = realloc(u, c * sizeof(*u));

			if (!nu) {
				r = -ENOMEM;
				goto lost;
			}
			u = nu;
			cap = c;
		}
		if (k)
			memcpy(u + n, f->buf + sizeof(*rep), k * sizeof(*u));
		n += k;
		if (!(rep->flags & DP_F_END))
			continue;
		if (rep->err) {
			free(u);
			return rep->err;
		}
		break;
	}
	f->need_resync = false;
	*ups = u;
	*nups = n;
	return 0;
lost:
	free(u);
	fpd_lost(f, strerror(-r));
	return r == -ENOMEM ? r : -ENOTCONN;
}

/* fpd_lookup - the action moat-dpdk's table gives addr now */
static int fpd_lookup(void *ctx, const struct moat_prefix *addr, uint32_t *action)
{
	struct fpd *f = ctx;
	struct dp_msg m = { .type = DP_MSG_LOOKUP, .count = 1 };
	int r;

	if ((r = fpd_connect(f, false)) < 0)
		return not_connected(r);
	r = request(f, &m, addr, sizeof(*addr), DP_MSG_REPLY);
	if (r == 0)
		*action = (uint32_t)((const struct dp_msg *)f->buf)->value;
	return r;
}

/* fpd_read_stats - moat-dpdk's counters summed over lcores and ports */
static int fpd_read_stats(void *ctx, uint64_t out[MOAT_STAT__MAX])
{
	struct fpd *f = ctx;
	const struct dp_msg *rep = (const struct dp_msg *)f->buf;
	struct dp_msg m = { .type = DP_MSG_READ_STATS };
	int r;

	if ((r = fpd_connect(f, false)) < 0)
		return not_connected(r);
	r = request(f, &m, NULL, 0, DP_MSG_REPLY);
	if (r < 0)
		return r;
	if (rep->count != MOAT_STAT__MAX ||
	    rep->len != sizeof(*rep) + MOAT_STAT__MAX * sizeof(uint64_t))
		return -EINVAL;
	memcpy(out, f->buf + sizeof(*rep), MOAT_STAT__MAX * sizeof(uint64_t));
	return 0;
}

/* fpd_events_fd - the backend's epoll fd (stable across reconnects) */
static int fpd_events_fd(void *ctx)
{
	return ((struct fpd *)ctx)->epfd;
}

/* fpd_events_drain - every waiting event to cb; -ENOTCONN once when
 * moat-dpdk went away since the last call */
static int fpd_events_drain(void *ctx, moat_fastpath_event_cb cb, void *ud)
{
	struct fpd *f = ctx;
	const struct dp_msg *m = (const struct dp_msg *)f->buf;
	int delivered = 0;

	while (f->efd >= 0) {
		ssize_t r = recv_msg(f, f->efd, DP_MSG_EVENTS, MSG_DONTWAIT);

		if (r == -EAGAIN || r == -EWOULDBLOCK)
			break;
		if (r < 0) {
			fpd_lost(f, r == -ECONNRESET ? "moat-dpdk closed the connection" :
				 strerror((int)-r));
			break;
		}
		if ((size_t)r != sizeof(*m) + (size_t)m->count * sizeof(struct moat_event))
			continue;
		for (uint32_t i = 0; i < m->count; i++) {
			struct moat_event e;

			memcpy(&e, f->buf + sizeof(*m) + i * sizeof(e), sizeof(e));
			cb(ud, &e);
			delivered++;
		}
	}
	if (f->lost_pending) {
		eventfd_t v;

		f->lost_pending = false;
		(void)eventfd_read(f->lostfd, &v);
		return -ENOTCONN;
	}
	return delivered;
}

/* fpd_close - release the daemon's handles: moat-dpdk filters on */
static void fpd_close(void *ctx)
{
	struct fpd *f = ctx;

	if (f->cfd >= 0)
		close(f->cfd);
	if (f->efd >= 0)
		close(f->efd);
	close(f->epfd);
	close(f->lostfd);
	free(f->buf);
	free(f);
}

/* fpd_detach - moat-dpdk owns its ports: stopping it is how DPDK stops
 * filtering; the handle is released */
static int fpd_detach(void *ctx, char *err, size_t errsz)
{
	fpd_close(ctx);
	snprintf(err, errsz, "moat-dpdk owns its ports: stop moat-dpdk to stop filtering");
	return -EOPNOTSUPP;
}

static const struct moat_fastpath fpd_ops = {
	.name = "dpdk",
	.publish = fpd_publish,
	.publish_done = fpd_publish_done,
	.read_image = fpd_read_image,
	.lookup = fpd_lookup,
	.events_fd = fpd_events_fd,
	.events_drain = fpd_events_drain,
	.read_stats = fpd_read_stats,
	.detach = fpd_detach,
	.close = fpd_close,
};

/* fpd_open - a handle on moat-dpdk's channel at c->pin_dir (the socket);
 * moat-dpdk not answering yet is not an error: every op says -ENOTCONN
 * until it does, and the daemon's resync connects */
static int fpd_open(const struct moat_fastpath_config *c, struct moat_fastpath *fp,
		    char *err, size_t errsz)
{
	const char *path = c->pin_dir && c->pin_dir[0] ? c->pin_dir : DP_CHAN_SOCKET_DEFAULT;
	struct fpd *f;
	int r;

	if (strlen(path) >= sizeof(f->path)) {
		snprintf(err, errsz, "dpdk socket path too long: %s", path);
		return -EINVAL;
	}
	f = calloc(1, sizeof(*f));
	if (!f || !(f->buf = malloc(DP_PROTO_MAX_MSG))) {
		free(f);
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	strcpy(f->path, path);
	f->cfd = f->efd = -1;
	f->need_resync = true;
	f->epfd = epoll_create1(EPOLL_CLOEXEC);
	f->lostfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	{
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = f->lostfd };

		if (f->epfd < 0 || f->lostfd < 0 ||
		    epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->lostfd, &ev) < 0) {
			r = -errno;
			snprintf(err, errsz, "epoll: %s", strerror(-r));
			if (f->epfd >= 0)
				close(f->epfd);
			if (f->lostfd >= 0)
				close(f->lostfd);
			free(f->buf);
			free(f);
			return r;
		}
	}
	r = fpd_connect(f, true);
	if (r < 0)
		log_warn("dpdk: event=fastpath_wait path=%s error=\"%s\" (moat-dpdk not answering: "
			 "connecting on resync)", path, strerror(-r));
	*fp = fpd_ops;
	fp->ctx = f;
	return 0;
}

/* fpd_unpin - nothing is pinned: moat-dpdk owns its ports */
static int fpd_unpin(const struct moat_fastpath_config *c, char *err, size_t errsz)
{
	(void)c;
	snprintf(err, errsz, "moat-dpdk owns its ports: stop moat-dpdk to stop filtering");
	return -EOPNOTSUPP;
}

const struct moat_fastpath_backend moat_fastpath_dpdk = {
	.name = "dpdk",
	.open = fpd_open,
	.unpin = fpd_unpin,
};
