/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_xfr.c - the AXFR/IXFR client (sources/xfr.c, xfr_tcp.c, xfr_parse.c)
 * against a primary that answers with the input: a listening socket on
 * 127.0.0.1 in this process accepts the library's real TCP connection,
 * reads its query and sends the input's DNS-over-TCP stream back with the
 * query's id patched into every frame (so answers are not refused for the
 * id alone), then closes.  Input:
 *   byte 0      flags: bit 0 = two transfers, bit 1 = no IXFR
 *   two transfers: bytes 1-2 the length L of the first answer (big
 *               endian), the first answer (an AXFR: the zone has no data
 *               yet), then the second (an IXFR when the first succeeded)
 *   one transfer: the answer
 * A reconnect inside a transfer (IXFR refused or a lone newer SOA: AXFR)
 * is answered with the first answer again.  The corpus holds Knot's real
 * answers (tests/fuzz/corpus/xfr, tools/fuzz-seeds).  Invariants: every
 * transfer ends (done or failed) before its deadline; a result is a kind
 * the caller knows; a failure leaves the zone's previous data.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "xfr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int lfd = -1;
static struct sockaddr_in laddr;

/* listener - the fake primary's socket, once */
static void listener(void)
{
	socklen_t sl = sizeof(laddr);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	laddr.sin_family = AF_INET;
	laddr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&laddr, sizeof(laddr)) < 0 ||
	    listen(lfd, 8) < 0 || getsockname(lfd, (struct sockaddr *)&laddr, &sl) < 0)
		abort();
}

/* serve - accept the library's connection; -1 when none came */
static int serve(void)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	if (poll(&p, 1, 2000) != 1)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

/* transfer - one transfer answered with ans (reconnects with first);
 * returns the library's final status */
static enum moat_xfr_status transfer(struct moat_xfr_zone *z, const uint8_t *first,
				     size_t firstlen, const uint8_t *ans, size_t anslen)
{
	uint8_t *out = malloc(anslen > firstlen ? anslen : firstlen ? firstlen : 1);
	size_t outlen = 0, sent = 0, qhave = 0;
	uint8_t q[512];
	enum moat_xfr_status st = MOAT_XFR_AGAIN;
	int cfd = -1, conns = 0, shut = 0;
	uint32_t gen;

	if (!out || moat_xfr_start(z, moat_clock_ms()) != 0) {
		free(out);
		return MOAT_XFR_FAILED;
	}
	gen = moat_xfr_conn_gen(z) - 1;
	for (int round = 0; round < 100000 && st == MOAT_XFR_AGAIN; round++) {
		if (gen != moat_xfr_conn_gen(z)) {
			/* a (new) connection: the answer again from its start */
			gen = moat_xfr_conn_gen(z);
			if (cfd >= 0)
				close(cfd);
			if (++conns > 3 || (cfd = serve()) < 0) {
				moat_xfr_abort(z, moat_clock_ms());
				st = MOAT_XFR_FAILED;
				break;
			}
			const uint8_t *a = conns > 1 && firstlen ? first : ans;
			outlen = conns > 1 && firstlen ? firstlen : anslen;
			memcpy(out, a, outlen);
			sent = qhave = 0;
			shut = 0;
		}
		ssize_t n = recv(cfd, q + (qhave < 4 ? qhave : 0),
				 qhave < 4 ? 4 - qhave : sizeof(q), MSG_DONTWAIT);
		if (n > 0 && qhave < 4 && (qhave += (size_t)n) >= 4) {
			/* the query's id into every frame of the answer */
			for (size_t off = 0; off + 4 <= outlen;
			     off += 2 + ((size_t)out[off] << 8 | out[off + 1])) {
				out[off + 2] = q[2];
				out[off + 3] = q[3];
			}
		}
		if (qhave >= 4 && sent < outlen) {
			n = send(cfd, out + sent, outlen - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
		}
		if (qhave >= 4 && sent == outlen && !shut) {
			shutdown(cfd, SHUT_WR);
			shut = 1;
		}
		struct pollfd p = { .fd = moat_xfr_fd(z) };
		uint32_t ev = moat_xfr_events(z);
		p.events = (short)((ev & EPOLLIN ? POLLIN : 0) | (ev & EPOLLOUT ? POLLOUT : 0));
		if (p.fd >= 0)
			poll(&p, 1, 5);
		st = moat_xfr_io(z, ev, moat_clock_ms());
	}
	if (cfd >= 0)
		close(cfd);
	free(out);
	if (st == MOAT_XFR_AGAIN)
		abort(); /* a transfer that never ends */
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct moat_xfr_cfg c = { .zone = "bl.test", .nprimary = 1, .timeout_ms = 2000 };
	char err[100];
	const uint8_t *a = NULL, *b;
	size_t al = 0, bl;

	if (lfd < 0)
		listener();
	if (size < 1)
		return 0;
	memcpy(&c.primary[0], &laddr, sizeof(laddr));
	c.no_ixfr = data[0] & 2;
	if (data[0] & 1) {
		if (size < 3)
			return 0;
		al = (size_t)data[1] << 8 | data[2];
		if (al > size - 3)
			al = size - 3;
		a = data + 3;
		b = a + al;
		bl = size - 3 - al;
	} else {
		b = data + 1;
		bl = size - 1;
	}
	struct moat_xfr_zone *z = moat_xfr_zone_new(&c, err, sizeof(err));
	struct moat_xfr_result res;
	struct moat_xfr_state s1, s2;

	if (!z)
		abort();
	for (int t = a ? 0 : 1; t < 2; t++) {
		moat_xfr_get_state(z, moat_clock_ms(), &s1);
		enum moat_xfr_status st = transfer(z, a, al, t ? b : a, t ? bl : al);
		moat_xfr_get_state(z, moat_clock_ms(), &s2);
		if (st == MOAT_XFR_DONE) {
			if (moat_xfr_take_result(z, &res) != 0)
				abort();
			if (res.kind != MOAT_XFR_FULL && res.kind != MOAT_XFR_DELTA &&
			    res.kind != MOAT_XFR_UPTODATE)
				abort();
			moat_lvec_free(&res.add);
			moat_lvec_free(&res.del);
		} else if (s1.have_data && (!s2.have_data || s2.serial != s1.serial)) {
			abort(); /* a failed transfer changed the data */
		}
	}
	moat_xfr_zone_free(z);
	return 0;
}
