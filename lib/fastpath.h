/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fastpath.h - the one interface the control plane sees a fast path through.
 *
 * moat-controld publishes compiled-table diffs (sequences of struct
 * moat_update, already in a safe order, see bpf/moat_abi.h) and reads
 * counters.  The XDP backend (dataplane/xdp/) implements it with BPF maps;
 * the DPDK backend will implement it over its own channel.  A third backend
 * is one more implementation of this struct.
 */
#ifndef MOAT_FASTPATH_H
#define MOAT_FASTPATH_H

#include <stddef.h>
#include <stdint.h>

#include "moat_abi.h"

struct moat_fastpath {
	const char *name;
	void *ctx;
	/* Apply n updates in order; returns 0 or -errno.  On error the
	 * prefix already applied stays applied (every prefix is safe). */
	int (*publish)(void *ctx, const struct moat_update *u, size_t n);
	/* Sum of per-CPU counters, MOAT_STAT__MAX entries; 0 or -errno. */
	int (*read_stats)(void *ctx, uint64_t out[MOAT_STAT__MAX]);
	/* Release userspace resources; pinned state stays in force. */
	void (*close)(void *ctx);
};

#endif /* MOAT_FASTPATH_H */
