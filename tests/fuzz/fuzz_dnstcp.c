/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_dnstcp.c - DNS-over-TCP framing of the NOTIFY listener
 * (sources/dnstcp.c) with every message handed to moat_notify_handle() and
 * its reply sent back, as moat-controld does: the bytes of the input arrive
 * over a real socket (a socketpair) in pieces whose sizes the input's first
 * byte chooses, then the peer closes.  Invariants: a message is never
 * shorter than a DNS header nor longer than the frame said, the reader
 * ends with -ECONNRESET or -EPROTO and nothing else, a reply promised is
 * sent.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dnstcp.h"
#include "xfr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct moat_xfr_zone *z;
	static struct sockaddr_in prim = { .sin_family = AF_INET, .sin_port = 0x3500,
					   .sin_addr.s_addr = 0x0100007f };
	int sv[2];
	size_t off = 0, step;
	int r = 0, closed = 0;

	if (!z) {
		struct moat_xfr_cfg c = { .zone = "bl.test", .nprimary = 1 };
		char err[100];

		memcpy(&c.primary[0], &prim, sizeof(prim));
		z = moat_xfr_zone_new(&c, err, sizeof(err));
		if (!z)
			abort();
	}
	if (size == 0)
		return 0;
	step = 1 + data[0] * 4u;
	data++;
	size--;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	struct moat_dnstcp *c = moat_dnstcp_new(sv[0]);

	if (!c)
		abort();
	for (;;) {
		if (off < size) {
			size_t n = size - off < step ? size - off : step;
			ssize_t w = send(sv[1], data + off, n, MSG_DONTWAIT);
			if (w > 0)
				off += (size_t)w;
		} else if (!closed) {
			shutdown(sv[1], SHUT_WR);
			closed = 1;
		}
		const uint8_t *msg;
		size_t len, idx;
		uint8_t rep[1024];
		size_t rl = 0;
		char sink[4096];

		while ((r = moat_dnstcp_read(c, &msg, &len)) == 1) {
			if (len < 12 || len > 65535 || !msg)
				abort();
			enum moat_notify_res nr = moat_notify_handle(&z, 1, msg, len,
								     (struct sockaddr *)&prim, rep,
								     sizeof(rep), &rl, &idx);
			if (nr != MOAT_NOTIFY_DROP && moat_dnstcp_reply(c, rep, rl) != 0)
				abort(); /* a small reply on an empty socket is sent whole */
			while (recv(sv[1], sink, sizeof(sink), MSG_DONTWAIT) > 0)
				;
		}
		if (r < 0)
			break;
	}
	if (r != -ECONNRESET && r != -EPROTO)
		abort();
	moat_dnstcp_free(c);
	close(sv[1]);
	return 0;
}
