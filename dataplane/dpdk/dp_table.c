/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dp_table.c - moat-dpdk's compiled verdict table (dp_table.h): the
 * bpf/moat_abi.h layout in DPDK memory, read by worker lcores without a
 * lock, changed in place by one writer (the publish channel's thread).
 *
 * tbl24 and groups are zeroed arrays (rte_zmalloc'd, or, without
 * hugepages, anonymous memory on transparent huge pages: lookup_alloc)
 * written with single aligned
 * stores in the publish order, exactly as the XDP backend writes its
 * mmapped maps.  The IPv6 rules live in an rte_hash created lock-free for
 * readers (RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF) with the table's QSBR
 * variable attached (rte_hash_rcu_qsbr_add): a deleted rule's key slot is
 * reused only after every worker reported a quiescent state.  The action
 * is the rule's data word itself, so a put on an existing key is one
 * atomic store and there is no per-rule memory to reclaim.
 *
 * Workers look IPv6 up in the trie of bpf/moat_trie6.h (dp_lookup.h),
 * written by lib/vt_trie6.c into rte_malloc'd storage copy-on-write: the
 * nodes and buckets a change replaced are reused after dp_table_sync (or
 * a synchronize when the storage runs out).  The rte_hash and the plens
 * keep the rules by key for dp_table_walk_image (the saved image) and the
 * per-length layout's order.
 *
 * The v6 prefix-length double buffer (moat_abi.h): the writer fills the
 * inactive slot and flips the selector; before it refills the slot a flip
 * retired it waits until every worker has been quiescent since that flip
 * (rte_rcu_qsbr_check on the flip's token), as the XDP backend waits for a
 * kernel RCU grace period.
 *
 * Grace periods inside a publish (see run_enter): an IPv6 lookup probes
 * one rule per prefix length at different moments, so the writer lets
 * readers drain where the length being changed changes and around a
 * plens flip; and dp_table_sync (the channel calls it at each commit)
 * waits until every reader has passed a quiescent state, so what the
 * publish stopped referencing (groups) is no longer read.  Workers that sleep when idle go offline
 * (rte_rcu_qsbr_thread_offline) so a publish never waits for a sleeper.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_hash.h>
#include <rte_jhash.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "dp_lookup.h"
#include "dp_table.h"
#include "vtable.h"
#include "vt_trie6.h"

#define RUN_NONE (-1)      /* dp_table.run: no IPv6 change yet */
#define RUN_PLENS 1000     /* a plens flip */

struct dp_table {
	struct dp_table_view view;     /* what readers get */
	uint32_t *tbl24;
	struct moat_group *groups;
	size_t tbl24_sz, groups_sz;    /* their mappings' sizes when mmapped
					* (lookup_alloc), else 0 */
	struct moat_v6_plens_buf *plb;
	struct rte_hash *v6;
	uint32_t v6_max, v6_n;         /* rules allowed / present */
	struct vt_trie6 *t6;           /* the same rules as the trie workers
					* read (bpf/moat_trie6.h) */
	struct vt_trie6_mem t6m;       /* its storage, rte_zmalloc'd */
	struct rte_rcu_qsbr *qsbr;
	uint64_t flip_token;           /* QSBR token of the last plens flip */
	bool flip_pending;             /* readers may still read the retired slot */
	int run;                       /* IPv6 rule length being changed, or RUN_* */
};

/* the action words dp_table_v6_get points at (a rule's action is its
 * rte_hash data word) */
static const uint32_t v6_actions[MOAT_ACT__MAX] = {
	MOAT_ACT_PASS, MOAT_ACT_TARPIT, MOAT_ACT_DROP, MOAT_ACT_ALLOW,
};

#define HUGE_2M ((size_t)2 << 20)

/*
 * lookup_alloc - sz zeroed bytes for an array workers look up at random
 * (tbl24: 64 MiB, groups: up to 64 MiB at 2^20 groups).  Where EAL runs
 * on hugepages its memory is on them already: rte_zmalloc_socket (*mapped
 * = 0).  Without (--no-huge: tests, VMs, boxes without hugepages) EAL's
 * memory is 4 KiB pages of a memfd, and every lookup over such an array
 * misses the TLB (a page walk for each of the two reads, a nested one in
 * a VM).  Only the CPU reads these arrays (no device DMA), so then they
 * come from anonymous memory, 2 MiB aligned, that the kernel backs with
 * transparent huge pages (MADV_HUGEPAGE: THP "madvise" or "always"),
 * touched here so no worker takes the page faults (*mapped = its size,
 * for lookup_free).  NULL when there is no memory.
 */
static void *lookup_alloc(const char *name, size_t sz, int socket, size_t *mapped)
{
	size_t len = RTE_ALIGN_CEIL(sz, HUGE_2M);
	uint8_t *p, *a;

	*mapped = 0;
	/* MOAT_DPDK_NO_THP=1: EAL's memory as with hugepages (tools/bench's A/B) */
	if (rte_eal_has_hugepages() || (getenv("MOAT_DPDK_NO_THP") && atoi(getenv("MOAT_DPDK_NO_THP"))))
		return rte_zmalloc_socket(name, sz, RTE_CACHE_LINE_SIZE, socket);
	p = mmap(NULL, len + HUGE_2M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* keep the 2 MiB aligned len bytes, give back the rest */
	a = (uint8_t *)RTE_ALIGN_CEIL((uintptr_t)p, HUGE_2M);
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (a + len < p + len + HUGE_2M)
		munmap(a + len, (size_t)(p + len + HUGE_2M - (a + len)));
	/* no THP (disabled, or an old kernel): 4 KiB pages, as before */
	(void)madvise(a, len, MADV_HUGEPAGE);
	memset(a, 0, len);
	*mapped = len;
	return a;
}

/* lookup_free - release what lookup_alloc returned */
static void lookup_free(void *p, size_t mapped)
{
	if (mapped)
		munmap(p, mapped);
	else
		rte_free(p);
}

/* dp_table_free - release everything; t may be NULL.  No reader may use
 * the table any more. */
void dp_table_free(struct dp_table *t)
{
	if (!t)
		return;
	rte_hash_free(t->v6);
	vt_trie6_free(t->t6);
	rte_free(t->t6m.root);
	rte_free(t->t6m.nodes);
	rte_free(t->t6m.buckets);
	rte_free(t->qsbr);
	rte_free(t->plb);
	if (t->groups)
		lookup_free(t->groups, t->groups_sz);
	if (t->tbl24)
		lookup_free(t->tbl24, t->tbl24_sz);
	rte_free(t);
}

/* dp_table_create - an empty table (everything PASSes) for p.
 * Errors: -EINVAL bad params, -ENOMEM. */
int dp_table_create(const struct dp_table_params *p, struct dp_table **out)
{
	static unsigned seq;
	struct rte_hash_parameters hp = { 0 };
	struct rte_hash_rcu_config rc = { 0 };
	char name[RTE_HASH_NAMESIZE];
	unsigned readers;
	struct dp_table *t;
	size_t sz;

	*out = NULL;
	if (!p || p->groups_max == 0 || p->groups_max > MOAT_GROUP_MAX ||
	    p->v6_rules_max == 0 || p->v6_rules_max > VT_TRIE6_RULES_MAX ||
	    p->n_readers > RTE_MAX_LCORE)
		return -EINVAL;
	t = rte_zmalloc_socket("moat_table", sizeof(*t), RTE_CACHE_LINE_SIZE,
			       p->socket_id);
	if (!t)
		return -ENOMEM;
	t->tbl24 = lookup_alloc("moat_tbl24", (size_t)MOAT_TBL24_ENTRIES * sizeof(uint32_t),
				p->socket_id, &t->tbl24_sz);
	t->groups = lookup_alloc("moat_groups",
				 (size_t)p->groups_max * sizeof(struct moat_group),
				 p->socket_id, &t->groups_sz);
	t->plb = rte_zmalloc_socket("moat_v6_plens", sizeof(*t->plb),
				    RTE_CACHE_LINE_SIZE, p->socket_id);
	/* a QSBR variable needs at least one thread slot */
	readers = p->n_readers ? p->n_readers : 1;
	sz = rte_rcu_qsbr_get_memsize(readers);
	t->qsbr = rte_zmalloc_socket("moat_qsbr", sz, RTE_CACHE_LINE_SIZE,
				     p->socket_id);
	if (!t->tbl24 || !t->groups || !t->plb || !t->qsbr ||
	    rte_rcu_qsbr_init(t->qsbr, readers) != 0)
		goto nomem;
	/* rte_hash names are global to the process */
	snprintf(name, sizeof(name), "moat_v6_%u",
		 __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
	hp.name = name;
	hp.entries = p->v6_rules_max < 8 ? 8 : p->v6_rules_max;
	hp.key_len = sizeof(struct moat_v6_key);
	hp.hash_func = rte_jhash;
	hp.socket_id = p->socket_id;
	/* lock-free readers; the extendable buckets make the table hold
	 * v6_rules_max keys whatever their hashes */
	hp.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF |
			RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
	t->v6 = rte_hash_create(&hp);
	if (!t->v6)
		goto nomem;
	rc.v = t->qsbr;
	rc.mode = RTE_HASH_QSBR_MODE_DQ;
	if (rte_hash_rcu_qsbr_add(t->v6, &rc) != 0)
		goto nomem;
	t->v6_max = p->v6_rules_max;
	/* the trie's storage for v6_rules_max rules, as the XDP backend sizes
	 * it (docs/verdict-table.md: the bench mix uses 11,300 nodes and
	 * 805,000 buckets at 1M rules, 8,200 nodes at 100k) */
	t->t6m.nodes_max = p->v6_rules_max / 32 + 16384;
	t->t6m.buckets_max = p->v6_rules_max + p->v6_rules_max / 2 + 1024;
	t->t6m.root = rte_zmalloc_socket("moat_v6t_root",
					 MOAT_V6T_ROOT_ENTRIES * sizeof(uint32_t),
					 RTE_CACHE_LINE_SIZE, p->socket_id);
	t->t6m.nodes = rte_malloc_socket("moat_v6t_nodes",
					 (size_t)t->t6m.nodes_max * sizeof(struct moat_v6_node),
					 RTE_CACHE_LINE_SIZE, p->socket_id);
	t->t6m.buckets = rte_malloc_socket("moat_v6t_buckets",
					   (size_t)t->t6m.buckets_max * sizeof(struct moat_v6_bucket),
					   RTE_CACHE_LINE_SIZE, p->socket_id);
	if (!t->t6m.root || !t->t6m.nodes || !t->t6m.buckets ||
	    !(t->t6 = vt_trie6_new(&t->t6m)))
		goto nomem;
	t->run = RUN_NONE;
	t->view.tbl24 = t->tbl24;
	t->view.groups = t->groups;
	t->view.groups_max = p->groups_max;
	t->view.v6_plens = t->plb;
	t->view.v6 = t->v6;
	t->view.v6t = &t->t6m;
	*out = t;
	return 0;
nomem:
	dp_table_free(t);
	return -ENOMEM;
}

/* dp_table_qsbr - the QSBR variable workers register with */
struct rte_rcu_qsbr *dp_table_qsbr(struct dp_table *t)
{
	return t->qsbr;
}

/* dp_table_view - what workers read */
const struct dp_table_view *dp_table_view(const struct dp_table *t)
{
	return &t->view;
}

/* dp_table_v6_get - the action word of rule *key, or NULL (lock-free) */
const uint32_t *dp_table_v6_get(const struct dp_table_view *v,
				const struct moat_v6_key *key)
{
	void *data;

	if (rte_hash_lookup_data((const struct rte_hash *)v->v6, key, &data) < 0)
		return NULL;
	return &v6_actions[(uintptr_t)data & MOAT_TBL24_ACT_MASK];
}

/* plens_valid - n in range, lengths <= 128, longest first, distinct */
static bool plens_valid(const struct moat_v6_plens *pl)
{
	if (pl->n > MOAT_V6_MAX_PLENS)
		return false;
	for (uint32_t i = 0; i < pl->n; i++)
		if (pl->len[i] > 128 || (i && pl->len[i] >= pl->len[i - 1]))
			return false;
	return true;
}

/* publish_plens - make pl live: wait until no reader can still be in the
 * slot the last flip retired, fill it, flip (moat_abi.h) */
static void publish_plens(struct dp_table *t, const struct moat_v6_plens *pl)
{
	uint32_t next = (__atomic_load_n(&t->plb->sel, __ATOMIC_RELAXED) & 1) ^ 1;

	if (t->flip_pending)
		rte_rcu_qsbr_check(t->qsbr, t->flip_token, true);
	memset(&t->plb->slot[next], 0, sizeof(t->plb->slot[next]));
	memcpy(&t->plb->slot[next], pl, sizeof(*pl));
	__atomic_store_n(&t->plb->sel, next, __ATOMIC_RELEASE);
	t->flip_token = rte_rcu_qsbr_start(t->qsbr);
	t->flip_pending = true;
}

/* t6_put - the rule into the trie; when its storage is full, reclaim what
 * earlier changes freed (every worker quiescent since) and retry once */
static int t6_put(struct dp_table *t, const struct moat_v6_key *key, uint32_t act)
{
	int r = vt_trie6_put(t->t6, key->addr, key->plen, act);

	if (r == -ENOSPC) {
		rte_rcu_qsbr_synchronize(t->qsbr, RTE_QSBR_THRID_INVALID);
		vt_trie6_grace_done(t->t6);
		r = vt_trie6_put(t->t6, key->addr, key->plen, act);
	}
	return r;
}

/* v6_put - add or change a rule: the trie workers read, then the hash
 * (the rules by key: dp_table_walk_image); the action is the data word */
static int v6_put(struct dp_table *t, const struct moat_v6_key *key, uint32_t act)
{
	void *data = (void *)(uintptr_t)(act & MOAT_TBL24_ACT_MASK);
	bool fresh = rte_hash_lookup(t->v6, key) < 0;
	int r;

	if (fresh && t->v6_n >= t->v6_max)
		return -ENOSPC;
	if ((r = t6_put(t, key, act & MOAT_TBL24_ACT_MASK)) < 0)
		return r;
	r = rte_hash_add_key_data(t->v6, key, data);
	if (r == -ENOSPC && fresh) {
		/* slots of deleted rules wait in the defer queue until
		 * every worker was quiescent: wait for that, then the add
		 * reclaims them */
		rte_rcu_qsbr_synchronize(t->qsbr, RTE_QSBR_THRID_INVALID);
		r = rte_hash_add_key_data(t->v6, key, data);
	}
	if (r < 0) {
		/* the hash refused it: the trie follows (no allocation) */
		if (fresh)
			vt_trie6_del(t->t6, key->addr, key->plen);
		return r == -EINVAL ? -EINVAL : r;
	}
	t->v6_n += fresh;
	return 0;
}

/* v6_del - delete a rule; an absent key is not an error (as in XDP) */
static int v6_del(struct dp_table *t, const struct moat_v6_key *key)
{
	int32_t r = rte_hash_del_key(t->v6, key);

	if (r >= 0)
		vt_trie6_del(t->t6, key->addr, key->plen);
	if (r >= 0)
		t->v6_n--;
	return r >= 0 || r == -ENOENT ? 0 : r;
}

/* apply_one - one update, checked before anything is written */
static int apply_one(struct dp_table *t, const struct moat_update *u)
{
	switch (u->kind) {
	case MOAT_UPD_GROUP:
		if (u->index >= t->view.groups_max)
			return -ERANGE;
		/* not referenced by tbl24 yet (PUBLISHING ORDER 1, 2) */
		memcpy(&t->groups[u->index], &u->u.group, sizeof(struct moat_group));
		return 0;
	case MOAT_UPD_TBL24:
		if (u->index >= MOAT_TBL24_ENTRIES ||
		    (moat_tbl24_is_group(u->value) &&
		     moat_tbl24_group(u->value) >= t->view.groups_max))
			return -ERANGE;
		/* one aligned store, after the group's contents */
		__atomic_store_n(&t->tbl24[u->index], u->value, __ATOMIC_RELEASE);
		return 0;
	case MOAT_UPD_V6_PLENS:
		if (!plens_valid(&u->u.plens))
			return -EINVAL;
		publish_plens(t, &u->u.plens);
		return 0;
	case MOAT_UPD_V6_PUT:
		if (u->u.key.plen > 128)
			return -EINVAL;
		return v6_put(t, &u->u.key, u->value);
	case MOAT_UPD_V6_DEL:
		if (u->u.key.plen > 128)
			return -EINVAL;
		return v6_del(t, &u->u.key);
	default:
		return -EINVAL;
	}
}

/* A v6 lookup probes one rule per prefix length, at different moments:
 * if it overlapped updates at two lengths it could combine a rule the old
 * table had with one only the new table has and give a verdict of
 * neither.  Updates at one length cannot tear a lookup (it probes one key
 * per length), so the writer waits for a grace period only where the run
 * of same-length IPv6 updates changes and around a plens flip: every
 * lookup then sees a state some prefix of the sequence had. */

/* run_enter - about to change IPv6 rules of length run (or flip plens:
 * RUN_NONE): wait for readers still in the previous run */
static void run_enter(struct dp_table *t, int run)
{
	if (t->run != RUN_NONE && t->run != run)
		rte_rcu_qsbr_synchronize(t->qsbr, RTE_QSBR_THRID_INVALID);
	t->run = run;
}

/* dp_table_apply - apply n updates in order; on error the prefix before
 * the failing update stays applied and the failing one changed nothing.
 * The run of IPv6 lengths carries over from the previous call: a sequence
 * sent in chunks is one sequence.
 * Errors: -ERANGE, -EINVAL, -ENOSPC, -ENOMEM (dp_table.h). */
int dp_table_apply(struct dp_table *t, const struct moat_update *u, size_t n)
{
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++) {
		switch (u[i].kind) {
		case MOAT_UPD_V6_PUT:
		case MOAT_UPD_V6_DEL:
			if (u[i].u.key.plen <= 128)
				run_enter(t, (int)u[i].u.key.plen);
			break;
		case MOAT_UPD_V6_PLENS:
			if (plens_valid(&u[i].u.plens))
				run_enter(t, RUN_PLENS);
			break;
		}
		r = apply_one(t, &u[i]);
	}
	return r;
}

/* dp_table_sync - wait until every reader passed a quiescent state after
 * everything applied so far: nothing a publish replaced is read any more */
void dp_table_sync(struct dp_table *t)
{
	rte_rcu_qsbr_synchronize(t->qsbr, RTE_QSBR_THRID_INVALID);
	vt_trie6_grace_done(t->t6);   /* what the trie replaced is not read */
	t->run = RUN_NONE;
}

/* a chunk of the image being walked */
struct walk {
	struct moat_update u[DP_TABLE_WALK_CHUNK];
	size_t n;
	dp_table_emit_fn emit;
	void *ctx;
};

/* walk_push - a zeroed slot, emitting the chunk first when it is full */
static int walk_push(struct walk *w, struct moat_update **x)
{
	int r;

	if (w->n == DP_TABLE_WALK_CHUNK) {
		if ((r = w->emit(w->ctx, w->u, w->n)) < 0)
			return r;
		w->n = 0;
	}
	*x = &w->u[w->n++];
	memset(*x, 0, sizeof(**x));
	return 0;
}

/* cmp_v6_put - IPv6 puts longest prefix first (the order a full image
 * uses) */
static int cmp_v6_put(const void *a, const void *b)
{
	const struct moat_update *x = a, *y = b;

	if (x->u.key.plen != y->u.key.plen)
		return x->u.key.plen > y->u.key.plen ? -1 : 1;
	return memcmp(x->u.key.addr, y->u.key.addr, 16);
}

/* dp_table_walk_image - the image as updates in chunks: referenced groups
 * (same indices), nonzero tbl24 entries, the live plens, IPv6 rules
 * longest first.  Errors: -ENOMEM, emit's. */
int dp_table_walk_image(struct dp_table *t, dp_table_emit_fn emit, void *ctx)
{
	struct walk *w = malloc(sizeof(*w));
	struct moat_update *x, *v6 = NULL;
	size_t nv6 = 0;
	uint32_t iter = 0;
	const void *key;
	void *data;
	int r = 0;

	if (!w)
		return -ENOMEM;
	w->n = 0;
	w->emit = emit;
	w->ctx = ctx;
	for (uint32_t i = 0; i < MOAT_TBL24_ENTRIES && r == 0; i++) {
		uint32_t e = t->tbl24[i];

		if (!moat_tbl24_is_group(e) || (r = walk_push(w, &x)) < 0)
			continue;
		x->kind = MOAT_UPD_GROUP;
		x->index = moat_tbl24_group(e);
		x->u.group = t->groups[x->index];
	}
	for (uint32_t i = 0; i < MOAT_TBL24_ENTRIES && r == 0; i++) {
		if (!t->tbl24[i] || (r = walk_push(w, &x)) < 0)
			continue;
		x->kind = MOAT_UPD_TBL24;
		x->index = i;
		x->value = t->tbl24[i];
	}
	if (r == 0 && moat_v6_plens_live(t->plb)->n && (r = walk_push(w, &x)) == 0) {
		x->kind = MOAT_UPD_V6_PLENS;
		x->u.plens = *moat_v6_plens_live(t->plb);
	}
	/* the rules are sorted, so collected first (at most v6_rules_max) */
	if (r == 0 && t->v6_n && !(v6 = calloc(t->v6_n, sizeof(*v6))))
		r = -ENOMEM;
	while (r == 0 && nv6 < t->v6_n && rte_hash_iterate(t->v6, &key, &data, &iter) >= 0) {
		v6[nv6].kind = MOAT_UPD_V6_PUT;
		v6[nv6].value = (uint32_t)(uintptr_t)data;
		memcpy(&v6[nv6++].u.key, key, sizeof(struct moat_v6_key));
	}
	if (nv6)
		qsort(v6, nv6, sizeof(*v6), cmp_v6_put);
	for (size_t i = 0; i < nv6 && r == 0; i++)
		if ((r = walk_push(w, &x)) == 0)
			*x = v6[i];
	if (r == 0 && w->n)
		r = emit(ctx, w->u, w->n);
	free(v6);
	free(w);
	return r;
}

/* dp_table_read_image - dp_table_walk_image into one malloc'd array.
 * Errors: -ENOMEM. */
int dp_table_read_image(struct dp_table *t, struct moat_update **out, size_t *nout)
{
	struct vt_updates a = { NULL, 0, 0 };
	int r = dp_table_walk_image(t, vt_updates_collect, &a);

	if (r < 0) {
		free(a.u);
		a.u = NULL;
		a.n = 0;
	}
	*out = a.u;
	*nout = a.n;
	return r;
}

/* dp_table_lookup - the action addr gets now (dp_lookup.h) */
uint32_t dp_table_lookup(const struct dp_table *t, const struct moat_prefix *addr)
{
	if (addr->family == MOAT_AF_INET)
		return dp_lookup_v4(&t->view, (uint32_t)addr->addr[0] << 24 |
					      (uint32_t)addr->addr[1] << 16 |
					      (uint32_t)addr->addr[2] << 8 |
					      addr->addr[3]);
	if (addr->family == MOAT_AF_INET6)
		return dp_lookup_v6(&t->view, addr->addr);
	return MOAT_ACT_PASS;
}
