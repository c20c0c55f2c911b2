/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dp_proto.h - the wire format of moat-dpdk's publish channel: what
 * moat-controld's DPDK backend (fp_dpdk.c) and moat-dpdk's control thread
 * (dp_chan.c) exchange over a local SOCK_SEQPACKET socket.  Plain C, no
 * DPDK type: controld includes it.
 *
 * Every message is one datagram: struct dp_msg (32 bytes) then count
 * elements of the type's payload; len is the whole datagram.  A message
 * longer than DP_PROTO_MAX_MSG, with a bad magic or version, an unknown
 * type or a len that does not match count gets a DP_MSG_REPLY with a
 * negative errno (-EMSGSIZE, -EPROTO, -EBADMSG) and is counted; the
 * connection stays.  Both ends are the same host: the payloads are the
 * moat_abi.h structs in host byte order.
 *
 * Connections: the first message is DP_MSG_HELLO with flags = the role.
 * One command connection (requests, each answered in order) and one
 * events connection (moat-dpdk pushes DP_MSG_EVENTS) at a time; a second
 * client of a role gets -EBUSY and is closed.
 */
#ifndef MOAT_DP_PROTO_H
#define MOAT_DP_PROTO_H

#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "listing.h"
#include "moat_abi.h"

#define DP_PROTO_MAGIC 0x6d6f6470u      /* "mdop" */
#define DP_PROTO_VERSION 1
#define DP_PROTO_MAX_UPDATES 1024       /* per PUBLISH / IMAGE message */
#define DP_PROTO_MAX_EVENTS 512         /* per EVENTS message */
#define DP_PROTO_MAX_MSG \
	(sizeof(struct dp_msg) + DP_PROTO_MAX_UPDATES * sizeof(struct moat_update))
#define DP_CHAN_SOCKET_DEFAULT "/run/moat/dpdk.sock"

enum dp_msg_type {
	/* client -> moat-dpdk; flags = enum dp_role.  Reply: value =
	 * groups_max the table has, err -EBUSY when the role is taken */
	DP_MSG_HELLO = 1,
	/* count struct moat_update, applied in order (dp_table_apply).
	 * Reply: err (the prefix before the failing update stays applied),
	 * value = updates applied */
	DP_MSG_PUBLISH = 2,
	/* the publishes since the last commit make a whole table version:
	 * moat-dpdk counts the table loaded (dp_chan_wait_loaded) and saves
	 * it to disk.  Reply: err */
	DP_MSG_COMMIT = 3,
	/* Reply: DP_MSG_IMAGE messages of at most DP_PROTO_MAX_UPDATES
	 * updates (the dp_table_read_image sequence, streamed), then one
	 * with DP_F_END (and err set when the walk failed) */
	DP_MSG_READ_IMAGE = 4,
	DP_MSG_IMAGE = 5,
	/* one struct moat_prefix (a /32 or /128).  Reply: value = action */
	DP_MSG_LOOKUP = 6,
	/* Reply: count uint64_t counters (enum moat_stat order) */
	DP_MSG_READ_STATS = 7,
	/* moat-dpdk -> events connection: count struct moat_event */
	DP_MSG_EVENTS = 8,
	/* the answer to a request: err, value; payload by request type */
	DP_MSG_REPLY = 9,
	DP_MSG__MAX,
};

enum dp_role {
	DP_ROLE_COMMAND = 1,
	DP_ROLE_EVENTS = 2,
};

#define DP_F_END 0x1u   /* DP_MSG_IMAGE: the last part */

struct dp_msg {
	uint32_t magic;     /* DP_PROTO_MAGIC */
	uint16_t version;   /* DP_PROTO_VERSION */
	uint16_t type;      /* enum dp_msg_type */
	uint32_t len;       /* whole message, header included */
	uint32_t count;     /* payload elements */
	uint32_t flags;
	int32_t err;        /* replies: 0 or -errno */
	uint64_t value;
};

_Static_assert(sizeof(struct dp_msg) == 32, "dp_msg is 32 bytes on the wire");
_Static_assert(sizeof(struct moat_update) == 80, "moat_update layout");

/* dp_msg_send - m (magic, version and len filled in here) and plen bytes
 * of payload as one datagram; flags for sendmsg (MSG_NOSIGNAL is added).
 * Returns 0 or -errno. */
static inline int dp_msg_send(int fd, struct dp_msg *m, const void *payload,
			      size_t plen, int flags)
{
	struct iovec iov[2] = { { m, sizeof(*m) }, { (void *)payload, plen } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = plen ? 2 : 1 };

	m->magic = DP_PROTO_MAGIC;
	m->version = DP_PROTO_VERSION;
	m->len = (uint32_t)(sizeof(*m) + plen);
	return sendmsg(fd, &mh, MSG_NOSIGNAL | flags) < 0 ? -errno : 0;
}

#endif /* MOAT_DP_PROTO_H */
