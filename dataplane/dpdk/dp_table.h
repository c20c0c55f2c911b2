/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dp_table.h - moat-dpdk's copy of the compiled verdict table (the layout
 * of bpf/moat_abi.h: tbl24, groups, IPv6 prefix lengths and rules), which
 * worker lcores read without a lock while moat-dpdk's control thread
 * applies update sequences to it in place.
 *
 * Readers: each worker registers with the table's QSBR variable
 * (dp_table_qsbr(), thread id = worker index) and reports a quiescent
 * state after every burst; between two quiescent states every pointer it
 * got from the view stays valid.  The writer applies struct moat_update
 * sequences in their (already safe) order and frees what it replaced only
 * after every reader has passed a quiescent state (rte_rcu_qsbr).
 *
 * The lookup workers run is bpf/moat_lookup.h expanded over a
 * struct dp_table_view (dp_lookup.h): one parser, one lookup, one verdict
 * for XDP and DPDK.
 *
 * Conventions: int functions return 0 (or a count where said) or a
 * negative errno.  Writer functions are called from one thread only.
 */
#ifndef MOAT_DP_TABLE_H
#define MOAT_DP_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "listing.h"
#include "moat_abi.h"

struct rte_rcu_qsbr;
struct dp_table;
struct vt_trie6_mem;

struct dp_table_params {
	uint32_t groups_max;     /* groups the table may hold (moat_abi.h) */
	uint32_t v6_rules_max;   /* IPv6 rules it may hold */
	unsigned n_readers;      /* worker lcores that will read it */
	int socket_id;           /* NUMA socket for its memory, or SOCKET_ID_ANY */
};

/* What a worker reads; valid between two quiescent states of that worker. */
struct dp_table_view {
	const uint32_t *tbl24;                    /* MOAT_TBL24_ENTRIES */
	const struct moat_group *groups;          /* groups_max */
	uint32_t groups_max;
	const struct moat_v6_plens_buf *v6_plens; /* double buffer */
	const void *v6;                           /* the writer's v6 rule store */
	const struct vt_trie6_mem *v6t;           /* the IPv6 trie workers read */
};

/* dp_table_create - an empty table (every address PASSes).
 * Errors: -EINVAL bad params, -ENOMEM. */
int dp_table_create(const struct dp_table_params *p, struct dp_table **out);
void dp_table_free(struct dp_table *t);

/* dp_table_qsbr - the QSBR variable readers register with. */
struct rte_rcu_qsbr *dp_table_qsbr(struct dp_table *t);

/* dp_table_view - the arrays workers read (stable for the table's life;
 * what changes is their content, in the publish order). */
const struct dp_table_view *dp_table_view(const struct dp_table *t);

/* dp_table_v6_get - MOAT_V6_GET over a view: the action of rule *key, or
 * NULL.  Lock-free for readers. */
const uint32_t *dp_table_v6_get(const struct dp_table_view *v,
				const struct moat_v6_key *key);

/* dp_table_apply - writer: apply n updates in order (moat_abi.h
 * PUBLISHING ORDER).  On error the prefix applied stays applied.
 * Errors: -ERANGE index past the table, -EINVAL unknown kind or bad
 * prefix length, -ENOSPC no room for another IPv6 rule, -ENOMEM. */
int dp_table_apply(struct dp_table *t, const struct moat_update *u, size_t n);

/* dp_table_sync - writer: return once every reader has passed a
 * quiescent state after everything applied so far (the groups a publish
 * stopped referencing are no longer read).  moat-dpdk's channel calls it
 * at each commit; with no reader online it returns at once. */
void dp_table_sync(struct dp_table *t);

/* dp_table_read_image - writer: the table as an update sequence that
 * rebuilds it (groups, tbl24, v6 plens, v6 rules); *u malloc'd, caller
 * frees.  Errors: -ENOMEM. */
int dp_table_read_image(struct dp_table *t, struct moat_update **u, size_t *n);

/* dp_table_walk_image - writer: the sequence dp_table_read_image returns,
 * in the same order, handed to emit in chunks of at most
 * DP_TABLE_WALK_CHUNK updates instead of one array (a 10M-entry table is
 * ~15M updates: 1.2 GB as one array).  emit returns 0 or -errno, which
 * stops the walk and is returned.  Errors: -ENOMEM, emit's. */
#define DP_TABLE_WALK_CHUNK 1024
typedef int (*dp_table_emit_fn)(void *ctx, const struct moat_update *u, size_t n);
int dp_table_walk_image(struct dp_table *t, dp_table_emit_fn emit, void *ctx);

/* dp_table_lookup - the action (enum moat_action) an address gets now;
 * addr is a /32 or /128. */
uint32_t dp_table_lookup(const struct dp_table *t, const struct moat_prefix *addr);

#endif /* MOAT_DP_TABLE_H */
