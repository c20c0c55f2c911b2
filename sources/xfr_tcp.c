/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xfr_tcp.c - a zone transfer's connection: the AXFR/IXFR query (TSIG-
 * signed when the zone has a key), a non-blocking connect to the current
 * primary, TCP framing (2-byte length prefix) and the I/O loop the daemon
 * drives from epoll (moat_xfr_io) or tools from poll (moat_xfr_run_blocking).
 * Each complete message goes to xfr_message (xfr_parse.c).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "xfr_int.h"

/* xfr_conn_reset - close the socket and drop per-transfer buffers */
void xfr_conn_reset(struct moat_xfr_zone *z)
{
	if (z->fd >= 0)
		close(z->fd);
	z->fd = -1;
	z->cs = C_IDLE;
	free(z->qwire);
	z->qwire = NULL;
	free(z->buf);
	z->buf = NULL;
}

/* moat_xfr_fd - the running transfer's socket or -1 */
int moat_xfr_fd(const struct moat_xfr_zone *z)
{
	return z->fd;
}

/* moat_xfr_conn_gen - sockets opened so far (a change means re-register) */
uint32_t moat_xfr_conn_gen(const struct moat_xfr_zone *z)
{
	return z->conn_gen;
}

/* moat_xfr_events - what the state machine waits for */
uint32_t moat_xfr_events(const struct moat_xfr_zone *z)
{
	switch (z->cs) {
	case C_CONNECT:
	case C_SEND:
		return EPOLLOUT;
	case C_READ:
		return EPOLLIN;
	default:
		return 0;
	}
}

/* moat_xfr_deadline_ms - when the running transfer times out */
int64_t moat_xfr_deadline_ms(const struct moat_xfr_zone *z)
{
	return z->cs == C_IDLE ? INT64_MAX : z->deadline_ms;
}

/* build_query - the AXFR/IXFR query (TSIG-signed when keyed), framed */
static int build_query(struct moat_xfr_zone *z)
{
	knot_pkt_t *pkt = knot_pkt_new(NULL, 1024, NULL);
	knot_rrset_t *soa = NULL;
	int ret = -ENOMEM;

	if (!pkt)
		return -ENOMEM;
	z->id = (uint16_t)(random() & 0xffff);
	knot_wire_set_id(pkt->wire, z->id);
	if (z->has_key && knot_pkt_reserve(pkt, (uint16_t)knot_tsig_wire_size(&z->key)))
		goto out;
	if (knot_pkt_put_question(pkt, z->apex, KNOT_CLASS_IN,
				  z->ixfr ? KNOT_RRTYPE_IXFR : KNOT_RRTYPE_AXFR))
		goto out;
	if (z->ixfr) {
		/* authority: our SOA (only the serial matters, RFC 1995 §3) */
		uint8_t rd[22] = { 0 };
		soa = knot_rrset_new(z->apex, KNOT_RRTYPE_SOA, KNOT_CLASS_IN, 0, NULL);
		if (!soa)
			goto out;
		knot_wire_write_u32(rd + 2, z->serial);
		if (knot_rrset_add_rdata(soa, rd, sizeof(rd), NULL) ||
		    knot_pkt_begin(pkt, KNOT_AUTHORITY) || knot_pkt_put(pkt, 0, soa, 0))
			goto out;
	}
	if (z->has_key) {
		z->digestlen = sizeof(z->digest);
		if (knot_tsig_sign(pkt->wire, &pkt->size, pkt->max_size, NULL, 0,
				   z->digest, &z->digestlen, &z->key, 0, 0) != KNOT_EOK)
			goto out;
	}
	z->qlen = pkt->size + 2;
	z->qwire = malloc(z->qlen);
	if (!z->qwire)
		goto out;
	z->qwire[0] = (uint8_t)(pkt->size >> 8);
	z->qwire[1] = (uint8_t)pkt->size;
	memcpy(z->qwire + 2, pkt->wire, pkt->size);
	z->qoff = 0;
	ret = 0;
out:
	knot_pkt_free(pkt);
	knot_rrset_free(soa, NULL); /* put() copied it to the wire */
	return ret;
}

/* xfr_open - socket + non-blocking connect to the current primary */
int xfr_open(struct moat_xfr_zone *z)
{
	const struct sockaddr_storage *ss = &z->cfg.primary[z->next_primary % z->cfg.nprimary];
	socklen_t sl = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in);
	int one = 1, r;

	xfr_conn_reset(z);
	z->buf = malloc(2 + 65535);
	if (!z->buf)
		return -ENOMEM;
	r = build_query(z);
	if (r)
		return r;
	z->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (z->fd < 0)
		return -errno;
	z->conn_gen++;
	setsockopt(z->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(z->fd, (const struct sockaddr *)ss, sl) < 0 && errno != EINPROGRESS)
		return -errno;
	z->cs = C_CONNECT;
	z->boff = 0;
	z->need = 2;
	z->nmsg = 0;
	z->prev_time_signed = 0;
	z->ps = P_FIRST;
	z->nrec = z->nbytes = 0;
	z->deadline_ms = z->now_ms + z->cfg.timeout_ms;
	return 0;
}

/* moat_xfr_io - drive the connection; events is a hint only: every step
 * tries its syscall and treats EAGAIN as "wait" */
enum moat_xfr_status moat_xfr_io(struct moat_xfr_zone *z, uint32_t events,
				 int64_t now_ms)
{
	(void)events;
	z->now_ms = now_ms;
	if (z->cs == C_IDLE)
		return MOAT_XFR_FAILED;
	if (now_ms >= z->deadline_ms)
		return xfr_fail(z, "timeout (%u ms without progress)", z->cfg.timeout_ms);
	if (z->cs == C_CONNECT) {
		int e = 0;
		socklen_t el = sizeof(e);
		if (getsockopt(z->fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
			e = errno;
		if (e == EINPROGRESS || e == EALREADY)
			return MOAT_XFR_AGAIN;
		if (e)
			return xfr_fail(z, "connect: %s", strerror(e));
		z->cs = C_SEND;
	}
	if (z->cs == C_SEND) {
		while (z->qoff < z->qlen) {
			ssize_t n = send(z->fd, z->qwire + z->qoff, z->qlen - z->qoff,
					 MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return MOAT_XFR_AGAIN;
				if (errno == ENOTCONN)
					return MOAT_XFR_AGAIN; /* connect still pending */
				return xfr_fail(z, "send: %s", strerror(errno));
			}
			z->qoff += (size_t)n;
			z->deadline_ms = now_ms + z->cfg.timeout_ms;
		}
		z->cs = C_READ;
	}
	/* C_READ: as many messages as the socket has */
	for (int rounds = 0; rounds < 64; rounds++) {
		ssize_t n = recv(z->fd, z->buf + z->boff, z->need - z->boff, 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return MOAT_XFR_AGAIN;
			return xfr_fail(z, "recv: %s", strerror(errno));
		}
		if (n == 0) {
			if (z->ixfr && z->ps == P_SECOND && z->nmsg == 1) {
				z->ixfr = false;
				int r = xfr_open(z);
				return r ? xfr_fail(z, "reconnect: %s", strerror(-r)) : MOAT_XFR_AGAIN;
			}
			return xfr_fail(z, "connection closed by the primary after %llu records",
				    (unsigned long long)z->nrec);
		}
		z->deadline_ms = now_ms + z->cfg.timeout_ms;
		z->boff += (size_t)n;
		if (z->boff < z->need)
			continue;
		if (z->need == 2) {
			size_t len = (size_t)z->buf[0] << 8 | z->buf[1];
			if (len < 12)
				return xfr_fail(z, "message of %zu bytes", len);
			z->need = 2 + len;
			continue;
		}
		enum moat_xfr_status st = xfr_message(z, z->need - 2);
		if (st != MOAT_XFR_AGAIN || z->cs != C_READ)
			return st;
		z->boff = 0;
		z->need = 2;
	}
	return MOAT_XFR_AGAIN;
}

/* moat_xfr_run_blocking - one transfer, poll()-driven */
enum moat_xfr_status moat_xfr_run_blocking(struct moat_xfr_zone *z)
{
	enum moat_xfr_status st;

	if (moat_xfr_start(z, moat_clock_ms()))
		return MOAT_XFR_FAILED;
	do {
		struct pollfd pfd = { .fd = moat_xfr_fd(z) };
		uint32_t ev = moat_xfr_events(z);
		int64_t wait = moat_xfr_deadline_ms(z) - moat_clock_ms();
		pfd.events = (short)((ev & EPOLLIN ? POLLIN : 0) | (ev & EPOLLOUT ? POLLOUT : 0));
		if (wait < 0)
			wait = 0;
		int n = poll(&pfd, 1, (int)(wait > 60000 ? 60000 : wait));
		if (n < 0 && errno != EINTR) {
			moat_xfr_abort(z, moat_clock_ms());
			return MOAT_XFR_FAILED;
		}
		st = moat_xfr_io(z, n > 0 ? ev : 0, moat_clock_ms());
	} while (st == MOAT_XFR_AGAIN);
	return st;
}
