/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vt_trie6.h - the writer of the IPv6 verdict trie (layout and lookup in
 * bpf/moat_trie6.h).  It keeps the trie in memory the caller provides (a
 * userspace image's, a BPF map value's, moat-dpdk's), applies one rule put
 * or delete at a time copy-on-write (every change one entry store per
 * address: see PUBLISHING in moat_trie6.h) and keeps what it needs to do
 * so (the rules, each node's own prefix lengths) in its own heap.
 *
 * Freed nodes and buckets are not reused until vt_trie6_grace_done(): call
 * it when every lookup that began before the last change has ended (a
 * writer with no concurrent reader calls it after each change).
 */
#ifndef MOAT_VT_TRIE6_H
#define MOAT_VT_TRIE6_H

#include <stddef.h>
#include <stdint.h>

#include "moat_trie6.h"

/* The trie's storage: root (vt_trie6_root_entries(root_bits) entries:
 * root_bits 0 or 16 for the default root of MOAT_V6T_ROOT_ENTRIES, 24 for
 * the wide one of MOAT_V6T_ROOT_ENTRIES_WIDE), nodes_max nodes and
 * buckets_max buckets.  The caller zeroes the root; nodes and buckets
 * need no initialisation. */
struct vt_trie6_mem {
	uint32_t *root;
	struct moat_v6_node *nodes;
	uint32_t nodes_max;
	struct moat_v6_bucket *buckets;
	uint32_t buckets_max;
	uint32_t root_bits;
};

/* vt_trie6_root_entries - the root's entries for a root_bits setting. */
static inline size_t vt_trie6_root_entries(uint32_t root_bits)
{
	return moat_v6t_root_entries(root_bits);
}

/* VT_TRIE6_WIDE_MIN - from this many IPv6 rules on, a fast path sized for
 * them takes the wide root (vt_trie6_root_bits_for): 8.25 MiB, 8.7 bytes
 * a rule at 1M; below it the 256 KiB one. */
#define VT_TRIE6_WIDE_MIN (1u << 18)

/* VT_TRIE6_RULES_MAX - the most rules storage sized as the fast paths
 * size it (nodes v/32 + 16384, buckets v + v/2 + 1024) can index: node
 * and bucket indexes have 23 bits (moat_trie6.h) */
#define VT_TRIE6_RULES_MAX ((MOAT_V6T_INDEX_MAX + 1u - 1024u) / 3u * 2u)

/* vt_trie6_root_bits_for - the root_bits setting for storage sized for
 * rules_max rules. */
static inline uint32_t vt_trie6_root_bits_for(size_t rules_max)
{
	return rules_max >= VT_TRIE6_WIDE_MIN ? MOAT_V6T_ROOT_BITS_WIDE
					      : MOAT_V6T_ROOT_BITS;
}

struct vt_trie6;

/* vt_trie6_new - a writer over mem (an empty trie: the root must be zero).
 * NULL when out of memory. */
struct vt_trie6 *vt_trie6_new(const struct vt_trie6_mem *mem);

/* vt_trie6_new_owned - a writer over storage of its own: the node and
 * bucket arrays reserved (not committed) for nodes_max / buckets_max, the
 * default root; vt_trie6_new_owned_root the same with the root of
 * root_bits (0, 16 or 24: struct vt_trie6_mem). */
struct vt_trie6 *vt_trie6_new_owned(uint32_t nodes_max, uint32_t buckets_max);
struct vt_trie6 *vt_trie6_new_owned_root(uint32_t root_bits, uint32_t nodes_max,
					 uint32_t buckets_max);

void vt_trie6_free(struct vt_trie6 *t);

/* One rule for vt_trie6_adopt. */
struct vt_trie6_rule {
	uint8_t addr[16];
	unsigned plen;
	uint32_t act;
};

/*
 * vt_trie6_adopt - a writer over storage that already holds a trie (maps
 * pinned by a writer that has gone), which must come to hold rules[0, n)
 * (the authoritative rule set, e.g. the fast path's rule hash).  The
 * writer's side is rebuilt from the trie's structure and the rules; where
 * the trie says otherwise (a writer that died mid-publish) it is brought
 * to the rules by ordinary copy-on-write changes, so readers keep seeing
 * whole states.  *fixed (may be NULL) gets the number of rule changes
 * that took.  NULL and *err = -EINVAL (a damaged trie: an index past the
 * storage or reached twice), -ENOSPC or -ENOMEM.
 */
struct vt_trie6 *vt_trie6_adopt(const struct vt_trie6_mem *mem,
				const struct vt_trie6_rule *rules, size_t n,
				size_t *fixed, int *err);

/* vt_trie6_mem - the storage a lookup reads (moat_lookup_v6t over it). */
const struct vt_trie6_mem *vt_trie6_storage(const struct vt_trie6 *t);

/* vt_trie6_put - rule addr/plen (addr masked to plen here) := act.
 * 0; -EINVAL (plen > 128); -ENOSPC (nodes or buckets full: the trie is
 * unchanged and keeps serving); -ENOMEM. */
int vt_trie6_put(struct vt_trie6 *t, const uint8_t addr[16], unsigned plen,
		 uint32_t act);

/* vt_trie6_del - remove rule addr/plen; 0 also when it was absent. */
int vt_trie6_del(struct vt_trie6 *t, const uint8_t addr[16], unsigned plen);

/* vt_trie6_grace_done - nodes and buckets freed so far become reusable. */
void vt_trie6_grace_done(struct vt_trie6 *t);

/* vt_trie6_pending - nodes and buckets freed and not reusable yet (a
 * writer with readers waits for a grace period, then calls
 * vt_trie6_grace_done, when this is not 0). */
size_t vt_trie6_pending(const struct vt_trie6 *t);

struct vt_trie6_stats {
	size_t rules;
	uint32_t nodes, buckets;   /* in use (a freed one leaves the count at once; its memory is reused after the grace) */
	uint32_t nodes_hw, buckets_hw; /* high-water marks */
	size_t bytes;              /* root + nodes + buckets in use */
};
void vt_trie6_stats(const struct vt_trie6 *t, struct vt_trie6_stats *st);

/* vt_trie6_lookup - moat_lookup_v6t over the writer's storage (what
 * vt_trie6_storage() gives), a call; vt_trie6_lookup_inline the same
 * inline in the caller. */
uint32_t vt_trie6_lookup(const struct vt_trie6_mem *m, const uint8_t addr[16]);

#define MOAT_V6T_ROOT_GET(ctx, i) \
	(((const struct vt_trie6_mem *)(ctx))->root[(i)])
#define MOAT_V6T_ROOT_BITS_GET(ctx) \
	moat_v6t_root_bits(((const struct vt_trie6_mem *)(ctx))->root_bits)
#define MOAT_V6T_NODE_GET(ctx, i)                                        \
	((i) < ((const struct vt_trie6_mem *)(ctx))->nodes_max ?          \
	 &((const struct vt_trie6_mem *)(ctx))->nodes[(i)] : NULL)
#define MOAT_V6T_BUCKET_GET(ctx, i)                                      \
	((i) < ((const struct vt_trie6_mem *)(ctx))->buckets_max ?        \
	 &((const struct vt_trie6_mem *)(ctx))->buckets[(i)] : NULL)
#include "moat_trie6.h"
#undef MOAT_V6T_ROOT_GET
#undef MOAT_V6T_ROOT_BITS_GET
#undef MOAT_V6T_NODE_GET
#undef MOAT_V6T_BUCKET_GET

static inline __attribute__((always_inline)) uint32_t
vt_trie6_lookup_inline(const struct vt_trie6_mem *m, const uint8_t addr[16])
{
	return moat_lookup_v6t((void *)(uintptr_t)m, addr);
}

#endif /* MOAT_VT_TRIE6_H */
