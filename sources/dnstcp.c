/* SPDX-License-Identifier: BSD-2-Clause */
/* dnstcp.c - non-blocking DNS-over-TCP message framing (see dnstcp.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dnstcp.h"

struct moat_dnstcp {
	int fd;
	size_t have, need; /* bytes in buf, bytes wanted: 2, then 2 + length */
	int done;          /* buf holds a message handed out last time */
	uint8_t buf[2 + 65535];
};

/* moat_dnstcp_new - reader for fd */
struct moat_dnstcp *moat_dnstcp_new(int fd)
{
	struct moat_dnstcp *c = malloc(sizeof(*c));

	if (!c)
		return NULL;
	c->fd = fd;
	c->have = 0;
	c->need = 2;
	c->done = 0;
	return c;
}

/* moat_dnstcp_fd - the fd */
int moat_dnstcp_fd(const struct moat_dnstcp *c)
{
	return c->fd;
}

/* moat_dnstcp_read - read until one message is complete */
int moat_dnstcp_read(struct moat_dnstcp *c, const uint8_t **msg, size_t *len)
{
	if (c->done) {
		c->have = 0;
		c->need = 2;
		c->done = 0;
	}
	for (;;) {
		ssize_t n = recv(c->fd, c->buf + c->have, c->need - c->have, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		c->have += (size_t)n;
		if (c->have < c->need)
			continue;
		if (c->need == 2) {
			c->need = 2 + ((size_t)c->buf[0] << 8 | c->buf[1]);
			if (c->need < 2 + 12)
				return -EPROTO;
			continue;
		}
		*msg = c->buf + 2;
		*len = c->need - 2;
		c->done = 1;
		return 1;
	}
}

/* moat_dnstcp_reply - length prefix + message in one send */
int moat_dnstcp_reply(struct moat_dnstcp *c, const uint8_t *msg, size_t len)
{
	uint8_t out[2 + 4096];

	if (len > sizeof(out) - 2)
		return -EMSGSIZE;
	out[0] = (uint8_t)(len >> 8);
	out[1] = (uint8_t)len;
	memcpy(out + 2, msg, len);
	ssize_t n = send(c->fd, out, len + 2, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	return (size_t)n == len + 2 ? 0 : -EAGAIN;
}

/* moat_dnstcp_free - close and release */
void moat_dnstcp_free(struct moat_dnstcp *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c);
}
