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
	/* the image is saved here after each committed publish (at most
	 * every save_ms) and at stop, and restored from here at start, so a
	 * restarted moat-dpdk filters with its last table before moat-controld
	 * is back; NULL = no state on disk */
	const char *state_path;
	unsigned save_ms;        /* 0 = DP_CHAN_SAVE_MS_DEFAULT */
};

#define DP_CHAN_SAVE_MS_DEFAULT 1000

/* What the channel counted (for telemetry and logs). */
struct dp_chan_counters {
	uint64_t clients;        /* connections accepted (both roles) */
	uint64_t busy;           /* connections refused: role taken */
	uint64_t requests;       /* well-formed requests served */
	uint64_t bad_requests;   /* malformed, oversized, unknown: error reply */
	uint64_t publishes;      /* PUBLISH messages applied whole */
	uint64_t publish_errors; /* PUBLISH messages dp_table_apply refused */
	uint64_t updates;        /* updates applied */
	uint64_t commits;
	uint64_t events_sent;
	uint64_t events_dropped; /* no events client, or its socket full */
	uint64_t saves, save_errors;
	uint64_t restored;       /* updates restored from state_path at start */
};

/* dp_chan_start - restore state_path into the table (a missing file is
 * an empty start; a bad one is logged and left, the table stays empty),
 * bind the socket (mode 0660) and start the control thread
 * (rte_ctrl_thread_create, off the worker lcores).
 * Errors: -EADDRINUSE another moat-dpdk serves path, -errno of bind etc. */
int dp_chan_start(const struct dp_chan_params *p, struct dp_chan **out);

/* dp_chan_wait_loaded - block until the table holds a full image (a
 * publish from moat-controld or a restore from disk) or timeout_ms
 * passes; the port forwards only after.  Returns 0, or -ETIMEDOUT. */
int dp_chan_wait_loaded(struct dp_chan *c, int timeout_ms);

/* dp_chan_counters - a snapshot of the channel's counters (relaxed
 * reads: each counter is exact, the set is not one instant). */
void dp_chan_counters(const struct dp_chan *c, struct dp_chan_counters *out);

/* dp_chan_stop - stop the thread, close the socket, unlink path; the
 * image is saved once more when state_path is set and it changed. */
void dp_chan_stop(struct dp_chan *c);

#endif /* MOAT_DP_CHAN_H */
