/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dp_chan.h - moat-dpdk's end of the publish channel: a control thread
 * (not a worker lcore) serving moat-controld's DPDK fast-path backend
 * (fp_dpdk.c) over a local SOCK_SEQPACKET/stream socket: publish (update
 * sequences applied with dp_table_apply), read_image, lookup, stats,
 * sampled events.  control/ never includes a DPDK header: the wire format
 * (dp_proto.h) is plain C.
 */
#ifndef MOAT_DP_CHAN_H
#define MOAT_DP_CHAN_H

#include <stdint.h>

#include "moat_abi.h"

struct dp_table;
struct rte_ring;
struct dp_chan;

struct dp_chan_params {
	const char *path;        /* socket path (mode 0660, owner root/moat) */
	struct dp_table *table;
	/* counters summed over worker lcores and ports, filled by moat-dpdk */
	void (*read_stats)(void *ud, uint64_t out[MOAT_STAT__MAX]);
	void *ud;
	/* sampled verdicts: workers enqueue struct moat_event elements
	 * (rte_ring_mp_enqueue_elem, esize sizeof(struct moat_event)); the
	 * channel drains it to the connected daemon; NULL = no events */
	struct rte_ring *events;
};

/* dp_chan_start - bind the socket and start the control thread.
 * Errors: -EADDRINUSE another moat-dpdk serves path, -errno of bind etc. */
int dp_chan_start(const struct dp_chan_params *p, struct dp_chan **out);

/* dp_chan_wait_loaded - block until the table holds a full image (a
 * publish from moat-controld or a restore from disk) or timeout_ms
 * passes; the port forwards only after.  Returns 0, or -ETIMEDOUT. */
int dp_chan_wait_loaded(struct dp_chan *c, int timeout_ms);

/* dp_chan_stop - stop the thread, close the socket, unlink path. */
void dp_chan_stop(struct dp_chan *c);

#endif /* MOAT_DP_CHAN_H */
