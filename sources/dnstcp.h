/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dnstcp.h - DNS over TCP framing (2-byte length prefix, RFC 1035 §4.2.2)
 * for the daemon's NOTIFY listener: Knot sends NOTIFY over TCP too.  A
 * non-blocking reader per accepted connection:
 *
 *   c = moat_dnstcp_new(accepted_fd)        (the fd must be O_NONBLOCK)
 *   on EPOLLIN: while ((r = moat_dnstcp_read(c, &msg, &len)) == 1) {
 *                   moat_notify_handle(..., msg, len, ...);
 *                   moat_dnstcp_reply(c, reply, replylen);
 *               }
 *               r < 0: moat_dnstcp_free(c) (closes the fd)
 * Replies are small (< 1 KiB): sent with MSG_DONTWAIT, and a reply the
 * socket cannot take at once ends the connection (a primary that does not
 * read its replies gets no more).
 */
#ifndef MOAT_DNSTCP_H
#define MOAT_DNSTCP_H

#include <stddef.h>
#include <stdint.h>

struct moat_dnstcp;

/* moat_dnstcp_new - reader state for fd (owned from now on). NULL: ENOMEM. */
struct moat_dnstcp *moat_dnstcp_new(int fd);
/* moat_dnstcp_fd - the connection's fd */
int moat_dnstcp_fd(const struct moat_dnstcp *c);
/* moat_dnstcp_read - 1 with *msg and *len set to the next complete message
 * (valid until the next call), 0 when more bytes are needed, -ECONNRESET
 * at EOF, -EPROTO for a message shorter than a DNS header, -errno. */
int moat_dnstcp_read(struct moat_dnstcp *c, const uint8_t **msg, size_t *len);
/* moat_dnstcp_reply - send one framed message; 0 or -errno. */
int moat_dnstcp_reply(struct moat_dnstcp *c, const uint8_t *msg, size_t len);
/* moat_dnstcp_free - close the fd and release. */
void moat_dnstcp_free(struct moat_dnstcp *c);

#endif /* MOAT_DNSTCP_H */
