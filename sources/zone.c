/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * zone.c - a DNSBL zone as a tree of owner names, and the listings that
 * reproduce its DNS answers (rules in zone.h).
 *
 * Nodes live in one array and are found through an open-addressing hash on
 * (parent, label code); they are never freed while the zone lives (an
 * AXFR builds a fresh zone), so indexes stay valid for the undo log and the
 * affected-node list of an IXFR batch.  Names below a non-address label, or
 * deeper than 32 labels, collapse into one MOAT_LBL_OTHER child: nothing
 * below it can ever be an address name, only its existence matters.
 * The hash grows incrementally (a few old slots move per insert): a
 * rehash of millions of slots at once stops the reader long enough for a
 * primary to drop the transfer (Knot's tcp-io-timeout is 500 ms).
 *
 * Compact IPv4 leaves.  A tree node costs ~90 bytes with its hash slots,
 * and a DNSBL zone is mostly full-depth IPv4 names with one A record (a
 * 10M-record zone: 10M such names).  Such a name ("d.c.b.a", 4 octet
 * labels) holding at most one A record and at most one record of another
 * type (a TXT, unless kept) lives outside the tree, as a 4-byte slot
 * {c.d, value} in a small open-addressing table per /16 (struct ltab);
 * the value is the id of its (code, TTL) pair (interned: a zone uses a
 * handful) plus a bit for the other record.  Its /8 and /16 ancestors are
 * ordinary tree nodes; its /24 is a tree node only when something else
 * needs one (a wildcard, a record there, a promoted leaf): otherwise the
 * /24 exists through the per-/16 bitmap of /24s holding leaves (has24),
 * which exists() consults for depth-3 nodes and the /16 node counts in
 * nkids like a child.  Everything that enumerates children (wildcard
 * excludes, the closest encloser in moat_zone_lookup) looks at both.  A
 * leaf that is to hold more (a second A code, a kept TXT, a second other
 * record, a name below it) is promoted: it gets a tree node and its
 * records move there, for good (no demotion).  IPv6 names stay in the
 * tree.  The per-/16 tables are small (at most 64K entries), so they
 * simply rehash when full: no stall of the transfer.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libknot/libknot.h>

#include "codes.h"
#include "log.h"
#include "owner.h"
#include "zone.h"

struct znode {
	uint32_t parent, first_child, next_sibling;
	uint32_t nrr;   /* records of any type at this node (SOA excluded) */
	uint32_t nkids; /* children that exist */
	uint32_t a;     /* first A record (index into ar), 0 = none */
	uint32_t star;  /* the "*" child, 0 = none */
	struct txtrec *txt; /* kept TXT records (moat_zone_keep_txt) */
	uint32_t v4;    /* IPv4 octets of the path so far (when NF_V4) */
	uint16_t label; /* label code (owner.h) */
	uint8_t depth;
	uint8_t mark;   /* in the current batch's affected list */
	uint8_t flags;  /* NF_V4 / NF_V6: the path is an address prefix */
};

#define NF_V4 1 /* every label an octet, depth <= 4 */
#define NF_V6 2 /* every label a nibble, depth <= 32 */

/* hash slot: the key lives in the slot, so probing never touches nodes */
struct slot {
	uint32_t parent, idx, label;
};

struct arec {
	uint32_t code, ttl, next;
};

struct txtrec {
	struct txtrec *next;
	uint16_t len;
	uint8_t data[]; /* TXT rdata: <len><text>... */
};

/* what a record is to the zone */
enum kind {
	K_A,     /* A at an address name: a listing */
	K_TXT,   /* TXT at an address name, kept for reasons */
	K_OTHER, /* anything else: only makes its node exist */
};

#define UNDO_TTL 3 /* undo op: set an A record's TTL back */

struct undo {
	uint32_t node, code, ttl; /* node: the address when leaf is set */
	uint8_t op, kind, undecodable_a, leaf;
	uint16_t rdlen;
	uint8_t *rd; /* K_TXT: a copy of the rdata */
};

struct moat_zone {
	uint8_t apex[KNOT_DNAME_MAXLEN];
	size_t apex_labels;
	uint16_t source;
	struct znode *nodes;
	size_t nnodes, capnodes;
	struct slot *ht;
	size_t htcap;
	unsigned htbits;
	/* the previous table while its slots move over (ht_step) */
	struct slot *oldht;
	size_t oldcap, oldpos;
	unsigned oldbits;
	struct arec *ar;
	size_t nar, capar;
	uint32_t arfree;
	struct moat_zone_stats st;
	bool batch, keep_txt, filter;
	struct moat_codes codes; /* with filter: answers that are never listings */
	struct undo *ul;
	size_t nul, capul;
	uint32_t *aff;
	size_t naff, capaff;
	struct moat_lvec old;
	/* compact IPv4 leaves (header comment) */
	struct ltab **lt;     /* [65536] by /16, NULL: no leaf there */
	size_t nleaves;
	struct pair *pairs;   /* (code, TTL) by id; [0] unused */
	size_t npairs, cappairs;
	uint16_t *pht;        /* pair ids by hash of (code, TTL) */
	size_t phtcap;
	/* batch: the leaves touched (address + 1 in a set, and a list) */
	uint64_t *lset;
	size_t lsetcap, nlset;
	uint32_t *aff4;
	size_t naff4, capaff4;
};

/* a leaf's value: pair id of its A record (0: none) | LV_OTHER */
#define LV_PAIR 0x7fffu
#define LV_OTHER 0x8000u
#define MAX_PAIRS LV_PAIR

/* per-/16 table of leaves: slots lo16 << 16 | value, 0 = empty */
struct ltab {
	uint32_t n, cap;
	uint64_t has24[4]; /* the /24s (third octet) holding a leaf */
	uint32_t s[];
};

struct pair {
	uint32_t code, ttl;
};

/* leaf_rr results besides 0 and -errno */
#define LEAF_TREE 2 /* not (or no longer) a leaf: the tree takes the change */
#define LEAF_SAME 3 /* the record is there already: nothing changed */
#define LEAF_TTL 4  /* the A record is there with another TTL: TTL set */

#define ROOT 1u
#define MAX_PATH (MOAT_OWNER_V6_DEPTH + 1)

/* grow - make room for one more element in a dynamic array */
static int grow(void **v, size_t *cap, size_t n, size_t esz)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 1024;
	void *nv = realloc(*v, nc * esz);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = nc;
	return 0;
}

/* hash - slot of (parent, label) in a table of 2^bits: a 64-bit
 * finalizer, top bits */
static size_t hash(unsigned bits, uint32_t parent, uint32_t label)
{
	uint64_t h = (uint64_t)parent << 16 ^ label;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return (size_t)(h >> (64 - bits));
}

/* ht_put - store a slot in the current table (the key is not there) */
static void ht_put(struct moat_zone *z, const struct slot *e)
{
	size_t s = hash(z->htbits, e->parent, e->label);

	while (z->ht[s].idx)
		s = (s + 1) & (z->htcap - 1);
	z->ht[s] = *e;
}

/* HT_STEP - old slots moved per insert while the table grows: the move
 * ends after oldcap / HT_STEP inserts, long before the new table fills */
#define HT_STEP 16

/* ht_step - move the next few slots of the previous table over; free it
 * when all have moved.  Until then lookups look in both. */
static void ht_step(struct moat_zone *z, size_t nslots)
{
	for (; z->oldht && nslots; nslots--) {
		if (z->oldpos == z->oldcap) {
			free(z->oldht);
			z->oldht = NULL;
			break;
		}
		if (z->oldht[z->oldpos].idx)
			ht_put(z, &z->oldht[z->oldpos]);
		z->oldpos++;
	}
}

/* ht_rehash - double the hash table: a fresh table takes new keys, the
 * old one's slots move over HT_STEP per insert (ht_step) */
static int ht_rehash(struct moat_zone *z)
{
	unsigned nb = z->htbits ? z->htbits + 1 : 12;
	size_t nc = (size_t)1 << nb;
	struct slot *nh;

	ht_step(z, (size_t)-1); /* a previous move still running: finish it */
	nh = calloc(nc, sizeof(*nh));
	if (!nh)
		return -ENOMEM;
	z->oldht = z->ht;
	z->oldcap = z->htcap;
	z->oldbits = z->htbits;
	z->oldpos = 0;
	z->ht = nh;
	z->htcap = nc;
	z->htbits = nb;
	if (!z->oldht)
		z->oldcap = 0;
	return 0;
}

/* ht_find - node index of (parent, label) in a table, 0 if absent; *slot
 * is where the probe ended */
static uint32_t ht_find(const struct slot *t, size_t cap, unsigned bits, uint32_t parent,
			uint32_t label, size_t *slot)
{
	size_t s = hash(bits, parent, label);

	while (t[s].idx) {
		if (t[s].parent == parent && t[s].label == label)
			return t[s].idx;
		s = (s + 1) & (cap - 1);
	}
	*slot = s;
	return 0;
}

/* child - find (or with create, add) the child of parent with label */
static uint32_t child(struct moat_zone *z, uint32_t parent, uint16_t label, bool create)
{
	size_t s, os;
	uint32_t idx;

	if (create) {
		ht_step(z, HT_STEP);
		if ((z->nnodes + 1) * 2 > z->htcap && ht_rehash(z))
			return 0;
	}
	idx = ht_find(z->ht, z->htcap, z->htbits, parent, label, &s);
	if (idx)
		return idx;
	/* not moved yet? (a key is in one table only: new keys go to the
	 * new one, and only when absent from the old) */
	if (z->oldht && (idx = ht_find(z->oldht, z->oldcap, z->oldbits, parent, label, &os)))
		return idx;
	if (!create)
		return 0;
	if (grow((void **)&z->nodes, &z->capnodes, z->nnodes, sizeof(*z->nodes)))
		return 0;
	idx = (uint32_t)z->nnodes++;
	struct znode *n = &z->nodes[idx], *p = &z->nodes[parent];
	memset(n, 0, sizeof(*n));
	n->parent = parent;
	n->label = label;
	n->depth = (uint8_t)(p->depth + 1);
	n->next_sibling = p->first_child;
	p->first_child = idx;
	if (label == MOAT_LBL_STAR)
		p->star = idx;
	if ((p->flags & NF_V4) && n->depth <= MOAT_OWNER_V4_DEPTH && moat_lbl_octet(label) >= 0) {
		n->flags |= NF_V4;
		n->v4 = p->v4 | (uint32_t)label << (32 - 8 * n->depth);
	}
	if ((p->flags & NF_V6) && n->depth <= MOAT_OWNER_V6_DEPTH && moat_lbl_nibble(label) >= 0)
		n->flags |= NF_V6;
	z->ht[s] = (struct slot){ .parent = parent, .idx = idx, .label = label };
	return idx;
}

/* --- compact IPv4 leaves (header comment) --- */

/* lt_home - home slot of lo in t: a multiplicative 16-bit hash scaled to
 * the table (its size need not be a power of two) */
static uint32_t lt_home(const struct ltab *t, uint32_t lo)
{
	uint32_t h = (lo * 0x9e37u) & 0xffff;

	return (uint32_t)(((uint64_t)h * t->cap) >> 16);
}

/* lt_find - the slot holding lo in t, or the empty slot ending its probe */
static uint32_t lt_find(const struct ltab *t, uint32_t lo)
{
	uint32_t i = lt_home(t, lo);

	while (t->s[i] && t->s[i] >> 16 != lo)
		if (++i == t->cap)
			i = 0;
	return i;
}

/* leaf_get - the value of leaf addr, 0 if addr is no leaf */
static uint16_t leaf_get(const struct moat_zone *z, uint32_t addr)
{
	const struct ltab *t = z->lt ? z->lt[addr >> 16] : NULL;

	return t ? (uint16_t)t->s[lt_find(t, addr & 0xffff)] : 0;
}

/* has24 - does the /24 of addr hold a leaf? */
static bool has24(const struct moat_zone *z, uint32_t addr)
{
	const struct ltab *t = z->lt ? z->lt[addr >> 16] : NULL;
	unsigned c = (addr >> 8) & 255;

	return t && (t->has24[c >> 6] >> (c & 63) & 1);
}

/* lt_resize - a table of cap slots holding t's entries (t may be NULL) */
static struct ltab *lt_resize(const struct ltab *t, uint32_t cap)
{
	struct ltab *nt = calloc(1, sizeof(*nt) + (size_t)cap * sizeof(nt->s[0]));

	if (!nt)
		return NULL;
	nt->cap = cap;
	if (t) {
		nt->n = t->n;
		memcpy(nt->has24, t->has24, sizeof(nt->has24));
		for (uint32_t i = 0; i < t->cap; i++)
			if (t->s[i])
				nt->s[lt_find(nt, t->s[i] >> 16)] = t->s[i];
	}
	return nt;
}

/* lt_put - set leaf addr's value (not 0).  A table holds at most 64K
 * entries, so it simply rehashes when 13/16 full (well under a ms). */
static int lt_put(struct moat_zone *z, uint32_t addr, uint16_t val)
{
	uint32_t lo = addr & 0xffff, c = lo >> 8, i;
	struct ltab *t;

	if (!z->lt && !(z->lt = calloc(65536, sizeof(*z->lt))))
		return -ENOMEM;
	t = z->lt[addr >> 16];
	if (t && t->s[i = lt_find(t, lo)]) {
		t->s[i] = lo << 16 | val;
		return 0;
	}
	if (!t || (t->n + 1) * 16 > t->cap * 13) {
		struct ltab *nt = lt_resize(t, t ? (t->n + 1) * 8 / 5 + 1 : 8);

		if (!nt)
			return -ENOMEM;
		free(t);
		z->lt[addr >> 16] = t = nt;
	}
	t->s[lt_find(t, lo)] = lo << 16 | val;
	t->n++;
	t->has24[c >> 6] |= 1ull << (c & 63);
	z->nleaves++;
	return 0;
}

/* lt_del - remove leaf addr (it is there); backward-shift deletion keeps
 * every probe sequence whole without tombstones */
static void lt_del(struct moat_zone *z, uint32_t addr)
{
	struct ltab *t = z->lt[addr >> 16];
	uint32_t lo = addr & 0xffff, c = lo >> 8, i = lt_find(t, lo), j = i;

	t->s[i] = 0;
	for (;;) {
		if (++j == t->cap)
			j = 0;
		if (!t->s[j])
			break;
		uint32_t h = lt_home(t, t->s[j] >> 16);
		/* s[j] stays unless its home lies cyclically outside (i, j] */
		bool stay = i <= j ? h > i && h <= j : h > i || h <= j;
		if (!stay) {
			t->s[i] = t->s[j];
			t->s[j] = 0;
			i = j;
		}
	}
	t->n--;
	z->nleaves--;
	for (uint32_t d = 0; d < 256; d++)
		if (t->s[lt_find(t, c << 8 | d)])
			return;
	t->has24[c >> 6] &= ~(1ull << (c & 63));
}

/* pair_slot - home of (code, ttl) in the pair hash of cap slots */
static size_t pair_slot(size_t cap, uint32_t code, uint32_t ttl)
{
	uint64_t h = ((uint64_t)code << 32 | ttl) * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 32) & (cap - 1);
}

/* pair_id - the id of (code, ttl), interned on first use; 0 when the ids
 * are used up (the name then goes to the tree) or out of memory */
static uint16_t pair_id(struct moat_zone *z, uint32_t code, uint32_t ttl)
{
	size_t s = 0;

	if (z->phtcap)
		for (s = pair_slot(z->phtcap, code, ttl); z->pht[s]; s = (s + 1) & (z->phtcap - 1))
			if (z->pairs[z->pht[s]].code == code && z->pairs[z->pht[s]].ttl == ttl)
				return z->pht[s];
	if (!z->npairs)
		z->npairs = 1; /* id 0: no A record */
	if (z->npairs > MAX_PAIRS ||
	    grow((void **)&z->pairs, &z->cappairs, z->npairs, sizeof(*z->pairs)))
		return 0;
	if (z->npairs * 2 >= z->phtcap) {
		size_t nc = z->phtcap ? z->phtcap * 2 : 64;
		uint16_t *nh = calloc(nc, sizeof(*nh));

		if (!nh)
			return 0;
		for (size_t i = 1; i < z->npairs; i++) {
			size_t t = pair_slot(nc, z->pairs[i].code, z->pairs[i].ttl);
			while (nh[t])
				t = (t + 1) & (nc - 1);
			nh[t] = (uint16_t)i;
		}
		free(z->pht);
		z->pht = nh;
		z->phtcap = nc;
		for (s = pair_slot(nc, code, ttl); nh[s]; s = (s + 1) & (nc - 1))
			;
	}
	uint16_t id = (uint16_t)z->npairs++;
	z->pairs[id] = (struct pair){ .code = code, .ttl = ttl };
	z->pht[s] = id;
	return id;
}

/* node16 - the /16 tree node above addr (with create, made) or 0 */
static uint32_t node16(struct moat_zone *z, uint32_t addr, bool create)
{
	uint32_t a = child(z, ROOT, (uint16_t)(addr >> 24), create);

	return a ? child(z, a, (uint16_t)((addr >> 16) & 255), create) : 0;
}

/* v4_node - the tree node of the full IPv4 name of addr, 0 if none */
static uint32_t v4_node(struct moat_zone *z, uint32_t addr)
{
	uint32_t b = node16(z, addr, false);
	uint32_t x = b ? child(z, b, (uint16_t)((addr >> 8) & 255), false) : 0;

	return x ? child(z, x, (uint16_t)(addr & 255), false) : 0;
}

/* moat_zone_new - empty zone */
struct moat_zone *moat_zone_new(const char *apex, uint16_t source)
{
	struct moat_zone *z = calloc(1, sizeof(*z));

	if (!z)
		return NULL;
	if (!knot_dname_from_str(z->apex, apex, sizeof(z->apex)))
		goto fail;
	knot_dname_to_lower(z->apex);
	z->apex_labels = knot_dname_labels(z->apex, NULL);
	z->source = source;
	z->nnodes = 2; /* 0 = none, 1 = apex */
	z->capnodes = 1024;
	z->nodes = calloc(z->capnodes, sizeof(*z->nodes));
	if (!z->nodes || ht_rehash(z))
		goto fail;
	z->nodes[ROOT].flags = NF_V4 | NF_V6;
	z->nar = 1;
	return z;
fail:
	moat_zone_free(z);
	return NULL;
}

/* moat_zone_free - release everything */
void moat_zone_free(struct moat_zone *z)
{
	if (!z)
		return;
	for (size_t i = 0; z->nodes && i < z->nnodes; i++)
		for (struct txtrec *t = z->nodes[i].txt, *nx; t; t = nx) {
			nx = t->next;
			free(t);
		}
	for (size_t i = 0; i < z->nul; i++)
		free(z->ul[i].rd);
	free(z->nodes);
	free(z->ht);
	free(z->oldht);
	free(z->ar);
	free(z->ul);
	free(z->aff);
	for (size_t i = 0; z->lt && i < 65536; i++)
		free(z->lt[i]);
	free(z->lt);
	free(z->pairs);
	free(z->pht);
	free(z->lset);
	free(z->aff4);
	moat_lvec_free(&z->old);
	free(z);
}

/* moat_zone_apex - the apex, wire form, lower case */
const uint8_t *moat_zone_apex(const struct moat_zone *z)
{
	return z->apex;
}

/* moat_zone_get_stats - record counters */
void moat_zone_get_stats(const struct moat_zone *z, struct moat_zone_stats *st)
{
	*st = z->st;
	st->nodes = z->nnodes - 1;
}

/* owner_path - label codes of owner below the apex, apex first */
static int owner_path(const struct moat_zone *z, const uint8_t *owner,
		      uint16_t *codes, size_t *n)
{
	const uint8_t *lab[KNOT_DNAME_MAXLABELS];
	size_t nl = 0;
	const uint8_t *p = owner;

	while (*p) {
		if (nl == KNOT_DNAME_MAXLABELS || *p > 63)
			return -EINVAL;
		lab[nl++] = p;
		p += *p + 1;
	}
	if (nl < z->apex_labels)
		return -EINVAL;
	size_t k = nl - z->apex_labels;
	/* the rest must equal the apex, ignoring ASCII case */
	const uint8_t *q = k < nl ? lab[k] : p, *a = z->apex;
	while (*a) {
		if (*q != *a)
			return -EINVAL;
		for (unsigned i = 1; i <= *a; i++) {
			uint8_t c = q[i];
			if (c >= 'A' && c <= 'Z')
				c = (uint8_t)(c + 32);
			if (c != a[i])
				return -EINVAL;
		}
		q += *q + 1;
		a += *a + 1;
	}
	*n = 0;
	for (size_t i = 0; i < k; i++) {
		const uint8_t *l = lab[k - 1 - i];
		uint16_t c = moat_owner_label(l + 1, *l);
		if (c == MOAT_LBL_OTHER || i >= MOAT_OWNER_V6_DEPTH) {
			codes[(*n)++] = MOAT_LBL_OTHER;
			break;
		}
		codes[(*n)++] = c;
	}
	return 0;
}

/* exists - a node exists when it has records or existing children; a
 * /24 also when leaves are below it */
static bool exists(const struct moat_zone *z, uint32_t idx)
{
	const struct znode *n = &z->nodes[idx];

	return n->nrr > 0 || n->nkids > 0 ||
	       (n->depth == 3 && (n->flags & NF_V4) && has24(z, n->v4));
}

/* propagate - a child of idx came into (now) or went out of existence:
 * count it, and go up while that changes whether idx exists */
static void propagate(struct moat_zone *z, uint32_t idx, bool now)
{
	for (;;) {
		bool was = exists(z, idx);

		z->nodes[idx].nkids = now ? z->nodes[idx].nkids + 1 : z->nodes[idx].nkids - 1;
		now = exists(z, idx);
		if (was == now || idx == ROOT)
			return;
		idx = z->nodes[idx].parent;
	}
}

/* adjust - change a node's record count and propagate existence upward */
static void adjust(struct moat_zone *z, uint32_t idx, int delta)
{
	bool was = exists(z, idx);

	z->nodes[idx].nrr = (uint32_t)((int64_t)z->nodes[idx].nrr + delta);
	bool now = exists(z, idx);
	if (was != now && idx != ROOT)
		propagate(z, z->nodes[idx].parent, now);
}

/* leaf_set - give leaf addr the value val (0: remove it); b and x are its
 * /16 and /24 nodes (x 0: none), the /24's existence goes up the tree */
static int leaf_set(struct moat_zone *z, uint32_t b, uint32_t x, uint32_t addr, uint16_t val)
{
	bool was = x ? exists(z, x) : has24(z, addr), now;

	if (val) {
		int r = lt_put(z, addr, val);
		if (r)
			return r;
	} else if (leaf_get(z, addr)) {
		lt_del(z, addr);
	}
	now = x ? exists(z, x) : has24(z, addr);
	if (was != now)
		propagate(z, b, now);
	return 0;
}

/* node_path - label codes from the apex down to idx */
static size_t node_path(const struct moat_zone *z, uint32_t idx, uint16_t *codes)
{
	size_t d = z->nodes[idx].depth;

	for (size_t i = d; i > 0; i--) {
		codes[i - 1] = z->nodes[idx].label;
		idx = z->nodes[idx].parent;
	}
	return d;
}

/* lists_own - does node idx list its own prefix in family fam? */
static bool lists_own(const struct moat_zone *z, uint32_t idx, uint8_t fam)
{
	const struct znode *n = &z->nodes[idx];
	unsigned max = fam == MOAT_AF_INET ? MOAT_OWNER_V4_DEPTH : MOAT_OWNER_V6_DEPTH;

	if (n->depth == max)
		return n->a != 0;
	if (n->depth > max)
		return false;
	return n->star && z->nodes[n->star].a != 0;
}

/* push_a - one listing per A record in chain a; with error codes set,
 * only the codes that are listings, and an exclude when there is none */
static int push_a(const struct moat_zone *z, uint32_t a, const struct moat_prefix *p,
		  struct moat_lvec *out)
{
	if (z->filter) {
		bool any = false;
		uint32_t ttl = UINT32_MAX;
		for (uint32_t i = a; i; i = z->ar[i].next) {
			any |= !moat_code_is_error(&z->codes, z->ar[i].code);
			if (z->ar[i].ttl < ttl)
				ttl = z->ar[i].ttl; /* not the first: order may change */
		}
		if (!any) {
			struct moat_listing l = { .pfx = *p, .ttl = ttl, .source = z->source,
						  .exclude = 1 };
			return moat_lvec_push(out, &l);
		}
	}
	for (; a; a = z->ar[a].next) {
		if (z->filter && moat_code_is_error(&z->codes, z->ar[a].code))
			continue;
		struct moat_listing l = { .pfx = *p, .code = z->ar[a].code,
					  .ttl = z->ar[a].ttl, .source = z->source };
		if (moat_lvec_push(out, &l))
			return -ENOMEM;
	}
	return 0;
}

/* node_prefix - the prefix of node idx in family fam (its flag is set) */
static void node_prefix(const struct moat_zone *z, uint32_t idx, uint8_t fam,
			struct moat_prefix *p)
{
	const struct znode *n = &z->nodes[idx];

	memset(p, 0, sizeof(*p));
	p->family = fam;
	if (fam == MOAT_AF_INET) {
		p->plen = (uint8_t)(8 * n->depth);
		p->addr[0] = (uint8_t)(n->v4 >> 24);
		p->addr[1] = (uint8_t)(n->v4 >> 16);
		p->addr[2] = (uint8_t)(n->v4 >> 8);
		p->addr[3] = (uint8_t)n->v4;
		return;
	}
	uint16_t codes[MAX_PATH];
	size_t d = node_path(z, idx, codes);
	moat_owner_prefix(codes, d, fam, p);
}

/* v4_prefix - the IPv4 prefix of the first plen bits of addr */
static void v4_prefix(uint32_t addr, unsigned plen, struct moat_prefix *p)
{
	uint32_t m = plen ? addr & (~(uint32_t)0 << (32 - plen)) : 0;

	memset(p, 0, sizeof(*p));
	p->family = MOAT_AF_INET;
	p->plen = (uint8_t)plen;
	p->addr[0] = (uint8_t)(m >> 24);
	p->addr[1] = (uint8_t)(m >> 16);
	p->addr[2] = (uint8_t)(m >> 8);
	p->addr[3] = (uint8_t)m;
}

/* leaf_listing - the listing of leaf addr with value v, which has an A
 * record (with error codes set, an exclude for an error answer, as
 * push_a) */
static void leaf_listing(const struct moat_zone *z, uint32_t addr, uint16_t v,
			 struct moat_listing *l)
{
	const struct pair *p = &z->pairs[v & LV_PAIR];

	*l = (struct moat_listing){ .code = p->code, .ttl = p->ttl, .source = z->source };
	v4_prefix(addr, 32, &l->pfx);
	if (z->filter && moat_code_is_error(&z->codes, p->code)) {
		l->code = 0;
		l->exclude = 1;
	}
}

/* push_leaf - append the listing of leaf addr with value v (none without
 * an A record) */
static int push_leaf(const struct moat_zone *z, uint32_t addr, uint16_t v, struct moat_lvec *out)
{
	struct moat_listing l;

	if (!(v & LV_PAIR))
		return 0;
	leaf_listing(z, addr, v, &l);
	return moat_lvec_push(out, &l);
}

/* emit_leafkids - the excludes node idx's wildcard owes the children that
 * are no tree nodes: below a /16, the /24s that exist through leaves only;
 * below a /24, its leaves that do not list their own /32 (every leaf, for
 * the IPv6 reading of an all-digit name) */
static int emit_leafkids(const struct moat_zone *z, uint32_t idx, uint8_t fam,
			 struct moat_lvec *out)
{
	const struct znode *n = &z->nodes[idx];
	const struct ltab *t = z->lt && (n->flags & NF_V4) ? z->lt[n->v4 >> 16] : NULL;
	struct moat_listing l = { .source = z->source, .exclude = 1 };
	uint16_t codes[MAX_PATH];
	size_t d = 0;
	/* an IPv6 reading needs the child's label to be a nibble: 0..9 */
	unsigned lim = fam == MOAT_AF_INET ? 256 : 10;

	if (!t || (n->depth != 2 && n->depth != 3) || (n->depth == 3 && !has24(z, n->v4)))
		return 0;
	if (fam == MOAT_AF_INET6)
		d = node_path(z, idx, codes);
	for (uint32_t k = 0; k < lim; k++) {
		uint32_t a = n->v4 | (n->depth == 2 ? k << 8 : k);
		if (n->depth == 2) {
			/* a tree child was the caller's */
			if (!has24(z, a) || child((struct moat_zone *)z, idx, (uint16_t)k, false))
				continue;
		} else {
			uint16_t v = (uint16_t)t->s[lt_find(t, a & 0xffff)];
			if (!v || (fam == MOAT_AF_INET && (v & LV_PAIR)))
				continue; /* absent, or lists its own /32 */
		}
		if (fam == MOAT_AF_INET) {
			v4_prefix(a, 8 * (n->depth + 1u), &l.pfx);
		} else {
			codes[d] = (uint16_t)k;
			moat_owner_prefix(codes, d + 1, MOAT_AF_INET6, &l.pfx);
		}
		if (moat_lvec_push(out, &l))
			return -ENOMEM;
	}
	return 0;
}

/* emit_fam - the listings node idx owns in family fam (see zone.h) */
static int emit_fam(const struct moat_zone *z, uint32_t idx, uint8_t fam,
		    struct moat_lvec *out)
{
	const struct znode *n = &z->nodes[idx];
	unsigned max = fam == MOAT_AF_INET ? MOAT_OWNER_V4_DEPTH : MOAT_OWNER_V6_DEPTH;
	uint8_t flag = fam == MOAT_AF_INET ? NF_V4 : NF_V6;
	struct moat_prefix p;

	if (!(n->flags & flag))
		return 0;
	if (n->depth == max) {
		if (!n->a)
			return 0;
		node_prefix(z, idx, fam, &p);
		return push_a(z, n->a, &p, out);
	}
	if (!n->star || !z->nodes[n->star].a)
		return 0;
	node_prefix(z, idx, fam, &p);
	if (push_a(z, z->nodes[n->star].a, &p, out))
		return -ENOMEM;
	for (uint32_t c = n->first_child; c; c = z->nodes[c].next_sibling) {
		const struct znode *cn = &z->nodes[c];
		struct moat_prefix cp;
		if (!exists(z, c) || !(cn->flags & flag))
			continue; /* absent, or not reachable by an address query */
		if (lists_own(z, c, fam))
			continue;
		node_prefix(z, c, fam, &cp);
		struct moat_listing l = { .pfx = cp, .source = z->source, .exclude = 1 };
		if (moat_lvec_push(out, &l))
			return -ENOMEM;
	}
	return emit_leafkids(z, idx, fam, out);
}

/* emit - listings owned by node idx, both families */
static int emit(const struct moat_zone *z, uint32_t idx, struct moat_lvec *out)
{
	if (emit_fam(z, idx, MOAT_AF_INET, out))
		return -ENOMEM;
	return emit_fam(z, idx, MOAT_AF_INET6, out);
}

/* leaves16 - the slots of table t in address order (two radix passes
 * over the low 16 bits' bytes, buf and tmp of 64K); returns the array */
static const uint32_t *leaves16(const struct ltab *t, uint32_t *buf, uint32_t *tmp)
{
	size_t cnt[256], n = 0;

	for (uint32_t i = 0; i < t->cap; i++)
		if (t->s[i])
			tmp[n++] = t->s[i];
	for (int shift = 16; shift <= 24; shift += 8) {
		const uint32_t *from = shift == 16 ? tmp : buf;
		uint32_t *to = shift == 16 ? buf : tmp;
		size_t sum = 0;
		memset(cnt, 0, sizeof(cnt));
		for (size_t i = 0; i < n; i++)
			cnt[from[i] >> shift & 255]++;
		for (size_t k = 0; k < 256; k++) {
			size_t c = cnt[k];
			cnt[k] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			to[cnt[from[i] >> shift & 255]++] = from[i];
	}
	return tmp;
}

/* moat_zone_listings - every listing of the zone, sorted (moat_listing_cmp)
 * when out starts empty: the tree's listings sorted, merged with the
 * leaves' /32s taken /16 by /16 in address order (a 10M-entry array
 * sorted by the caller costs seconds and a copy of it) */
int moat_zone_listings(struct moat_zone *z, struct moat_lvec *out)
{
	struct moat_lvec tl = { 0 }, *tree = z->nleaves ? &tl : out;
	size_t from = out->n, ti = 0;
	uint32_t *buf = NULL;
	int r = -ENOMEM;

	for (uint32_t i = ROOT; i < z->nnodes; i++)
		if (emit(z, i, tree))
			goto out;
	if (!z->nleaves) {
		if (out->n > from + 1)
			qsort(out->v + from, out->n - from, sizeof(*out->v), moat_listing_cmp);
		return 0;
	}
	moat_lvec_sort(&tl);
	if (!(buf = malloc(2 * 65536 * sizeof(*buf))))
		goto out;
	for (uint32_t h = 0; h < 65536; h++) {
		const struct ltab *t = z->lt[h];
		if (!t || !t->n)
			continue;
		const uint32_t *s = leaves16(t, buf, buf + 65536);
		for (uint32_t i = 0; i < t->n; i++) {
			struct moat_listing l;
			if (!(s[i] & LV_PAIR))
				continue;
			/* the tree's listings that sort before the leaf's, then it */
			leaf_listing(z, h << 16 | s[i] >> 16, (uint16_t)s[i], &l);
			while (ti < tl.n && moat_listing_cmp(&tl.v[ti], &l) < 0)
				if (moat_lvec_push(out, &tl.v[ti++]))
					goto out;
			if (moat_lvec_push(out, &l))
				goto out;
		}
	}
	while (ti < tl.n)
		if (moat_lvec_push(out, &tl.v[ti++]))
			goto out;
	r = 0;
out:
	free(buf);
	moat_lvec_free(&tl);
	return r;
}

/* A sorted walk of the zone's listings in chunks (zone.h): the tree's
 * listings are collected and sorted once per walk (an IPv4 DNSBL zone's
 * are few: most of it is leaves), the leaves come /16 by /16 in address
 * order, merged in.  Range queries (the IXFR checks) navigate the tree
 * instead: they must not cost a pass over it. */
struct moat_zone_cursor {
	const struct moat_zone *z;
	struct moat_lvec tl;  /* the tree's listings, sorted */
	size_t ti;
	uint32_t h;           /* next /16 of leaves */
	uint32_t *buf;        /* leaves16 scratch, 2 x 64K */
	bool built;           /* tl and buf made (the first next) */
};

/* moat_zone_cursor_new - a walk over z's listings from the first one */
struct moat_zone_cursor *moat_zone_cursor_new(const struct moat_zone *z)
{
	struct moat_zone_cursor *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->z = z;
	return c;
}

/* cursor_tree - the tree's listings, sorted, for a walk (first use) */
static int cursor_tree(struct moat_zone_cursor *c)
{
	const struct moat_zone *z = c->z;

	if (c->built)
		return 0;
	for (uint32_t i = ROOT; i < z->nnodes; i++)
		if (emit(z, i, &c->tl))
			return -ENOMEM;
	moat_lvec_sort(&c->tl);
	if (z->nleaves && !(c->buf = malloc(2 * 65536 * sizeof(*c->buf))))
		return -ENOMEM;
	c->built = true;
	return 0;
}

/* moat_zone_cursor_free - release a walk */
void moat_zone_cursor_free(struct moat_zone_cursor *c)
{
	if (!c)
		return;
	moat_lvec_free(&c->tl);
	free(c->buf);
	free(c);
}

/* moat_zone_cursor_rewind - back to the first listing */
void moat_zone_cursor_rewind(struct moat_zone_cursor *c)
{
	c->ti = 0;
	c->h = 0;
}

/* moat_zone_cursor_next - append the next listings (about max: whole
 * /16s of leaves) to out, in order; none appended: the end */
int moat_zone_cursor_next(struct moat_zone_cursor *c, struct moat_lvec *out, size_t max)
{
	const struct moat_zone *z = c->z;
	size_t start = out->n;

	if (cursor_tree(c))
		return -ENOMEM;
	while (out->n - start < max) {
		if (!z->nleaves || !z->lt || c->h >= 65536) {
			while (c->ti < c->tl.n && out->n - start < max)
				if (moat_lvec_push(out, &c->tl.v[c->ti++]))
					return -ENOMEM;
			return 0;
		}
		const struct ltab *t = z->lt[c->h];
		uint32_t h = c->h++;

		if (!t || !t->n)
			continue;
		const uint32_t *s = leaves16(t, c->buf, c->buf + 65536);

		for (uint32_t i = 0; i < t->n; i++) {
			struct moat_listing l;

			if (!(s[i] & LV_PAIR))
				continue;
			leaf_listing(z, h << 16 | s[i] >> 16, (uint16_t)s[i], &l);
			while (c->ti < c->tl.n && moat_listing_cmp(&c->tl.v[c->ti], &l) < 0)
				if (moat_lvec_push(out, &c->tl.v[c->ti++]))
					return -ENOMEM;
			if (moat_lvec_push(out, &l))
				return -ENOMEM;
		}
	}
	return 0;
}

/* node_at - the tree node of the first depth labels of r's address
 * (octets for IPv4, nibbles for IPv6), 0 when there is none */
static uint32_t node_at(const struct moat_zone *z, const struct moat_prefix *r, unsigned depth)
{
	struct moat_zone *zz = (struct moat_zone *)z; /* child() without create */
	uint32_t idx = ROOT;

	for (unsigned i = 0; i < depth && idx; i++) {
		unsigned x = r->family == MOAT_AF_INET ? r->addr[i] :
			     i % 2 ? r->addr[i / 2] & 15 : r->addr[i / 2] >> 4;

		idx = child(zz, idx, (uint16_t)(r->family == MOAT_AF_INET || x < 10 ? x :
						  MOAT_LBL_HEX + x), false);
	}
	return idx;
}

/* emit_in - node idx's listings inside r (exact: of r itself) to out */
static int emit_in(const struct moat_zone *z, uint32_t idx, const struct moat_prefix *r,
		   bool exact, struct moat_lvec *tmp, struct moat_lvec *out)
{
	tmp->n = 0;
	if (emit(z, idx, tmp))
		return -ENOMEM;
	for (size_t i = 0; i < tmp->n; i++)
		if (moat_prefix_contains(r, &tmp->v[i].pfx) &&
		    (!exact || tmp->v[i].pfx.plen == r->plen) && moat_lvec_push(out, &tmp->v[i]))
			return -ENOMEM;
	return 0;
}

/* moat_zone_cursor_range - append the listings inside prefix r (exact:
 * only those of prefix r itself) to out, sorted; the walk's position is
 * not moved.  The node of r (or the one above when r is not a whole
 * number of labels) and its subtree own what is inside r, but for the
 * exclusion a wildcard at the parent owes r's node; then the leaves. */
int moat_zone_cursor_range(const struct moat_zone_cursor *c, const struct moat_prefix *r,
			   bool exact, struct moat_lvec *out)
{
	const struct moat_zone *z = c->z;
	size_t start = out->n;
	struct moat_lvec tmp = { 0 };
	unsigned w = r->family == MOAT_AF_INET ? 8 : 4;
	unsigned depth = r->plen / w, whole = r->plen % w == 0;
	uint32_t top = node_at(z, r, depth);
	int rc = 0;

	if (whole && depth > 0) { /* the parent's exclusion of r */
		uint32_t p = node_at(z, r, depth - 1);

		if (p)
			rc = emit_in(z, p, r, true, &tmp, out);
	}
	if (top && !rc && exact && whole) {
		rc = emit_in(z, top, r, true, &tmp, out);
	} else if (top && !rc && !exact) {
		/* the subtree, depth first */
		uint32_t stack[MAX_PATH + 1], sp = 0, idx = top;

		for (;;) {
			if ((rc = emit_in(z, idx, r, false, &tmp, out)))
				break;
			const struct znode *n = &z->nodes[idx];

			if (n->first_child && sp < MAX_PATH) {
				stack[sp++] = idx;
				idx = n->first_child;
				continue;
			}
			while (idx != top && !z->nodes[idx].next_sibling && sp)
				idx = stack[--sp];
			if (idx == top)
				break;
			idx = z->nodes[idx].next_sibling;
		}
	}
	moat_lvec_free(&tmp);
	if (rc)
		return rc;
	if (r->family != MOAT_AF_INET || !z->nleaves || !z->lt || (exact && r->plen != 32))
		goto sort;
	uint32_t a = (uint32_t)r->addr[0] << 24 | (uint32_t)r->addr[1] << 16 |
		     (uint32_t)r->addr[2] << 8 | r->addr[3];
	uint32_t span = r->plen ? (uint32_t)1 << (32 - r->plen) : 0; /* 0: all 2^32 */

	if (r->plen >= 24) {
		for (uint32_t k = 0; k < span; k++) {
			uint16_t v = leaf_get(z, a + k);
			struct moat_listing l;

			if (!(v & LV_PAIR))
				continue;
			leaf_listing(z, a + k, v, &l);
			if (moat_lvec_push(out, &l))
				return -ENOMEM;
		}
	} else {
		uint32_t h0 = a >> 16, h1 = r->plen <= 16 ? h0 + ((span - 1) >> 16) : h0;

		for (uint32_t h = h0; h <= h1; h++) {
			const struct ltab *t = z->lt[h];

			for (uint32_t i = 0; t && i < t->cap; i++) {
				uint32_t la = h << 16 | t->s[i] >> 16;
				struct moat_listing l;

				if (!t->s[i] || !((uint16_t)t->s[i] & LV_PAIR))
					continue;
				leaf_listing(z, la, (uint16_t)t->s[i], &l);
				if (moat_prefix_contains(r, &l.pfx) && moat_lvec_push(out, &l))
					return -ENOMEM;
			}
		}
	}
sort:
	if (out->n > start + 1)
		qsort(out->v + start, out->n - start, sizeof(*out->v), moat_listing_cmp);
	return 0;
}

/* touch - in a batch, record the listings of idx and its ancestors before
 * they change (each node once per batch) */
static int touch(struct moat_zone *z, uint32_t idx)
{
	if (!z->batch)
		return 0;
	for (; idx && !z->nodes[idx].mark; idx = z->nodes[idx].parent) {
		if (grow((void **)&z->aff, &z->capaff, z->naff, sizeof(*z->aff)))
			return -ENOMEM;
		if (emit(z, idx, &z->old))
			return -ENOMEM;
		z->nodes[idx].mark = 1;
		z->aff[z->naff++] = idx;
		if (idx == ROOT)
			break;
	}
	return 0;
}

/* a_add - add code/ttl to node; 1 if it was already there (then only its
 * TTL is set, the old one in *oldttl) */
static int a_add(struct moat_zone *z, uint32_t idx, uint32_t code, uint32_t ttl,
		 uint32_t *oldttl)
{
	for (uint32_t a = z->nodes[idx].a; a; a = z->ar[a].next)
		if (z->ar[a].code == code) {
			*oldttl = z->ar[a].ttl;
			z->ar[a].ttl = ttl;
			return 1;
		}
	uint32_t a = z->arfree;
	if (a) {
		z->arfree = z->ar[a].next;
	} else {
		if (grow((void **)&z->ar, &z->capar, z->nar, sizeof(*z->ar)))
			return -ENOMEM;
		a = (uint32_t)z->nar++;
	}
	z->ar[a].code = code;
	z->ar[a].ttl = ttl;
	z->ar[a].next = z->nodes[idx].a;
	z->nodes[idx].a = a;
	return 0;
}

/* a_del - remove code from node; -ENOENT if absent, *ttl gets its TTL */
static int a_del(struct moat_zone *z, uint32_t idx, uint32_t code, uint32_t *ttl)
{
	for (uint32_t *pp = &z->nodes[idx].a; *pp; pp = &z->ar[*pp].next) {
		uint32_t a = *pp;
		if (z->ar[a].code != code)
			continue;
		*ttl = z->ar[a].ttl;
		*pp = z->ar[a].next;
		z->ar[a].next = z->arfree;
		z->arfree = a;
		return 0;
	}
	return -ENOENT;
}

/* is_addr_name - is a node an address name of some family (so its A
 * records are listings, not undecodable)? */
static bool is_addr_name(const uint16_t *codes, size_t n)
{
	struct moat_prefix p;

	if (n == 0)
		return false;
	if (codes[n - 1] == MOAT_LBL_STAR) {
		n--;
		return (n < MOAT_OWNER_V4_DEPTH && !moat_owner_prefix(codes, n, MOAT_AF_INET, &p)) ||
		       (n < MOAT_OWNER_V6_DEPTH && !moat_owner_prefix(codes, n, MOAT_AF_INET6, &p));
	}
	return (n == MOAT_OWNER_V4_DEPTH && !moat_owner_prefix(codes, n, MOAT_AF_INET, &p)) ||
	       (n == MOAT_OWNER_V6_DEPTH && !moat_owner_prefix(codes, n, MOAT_AF_INET6, &p));
}

/* txt_find - the kept TXT record at idx with this rdata */
static struct txtrec **txt_find(struct moat_zone *z, uint32_t idx, const uint8_t *rd,
				uint16_t len)
{
	for (struct txtrec **pp = &z->nodes[idx].txt; *pp; pp = &(*pp)->next)
		if ((*pp)->len == len && !memcmp((*pp)->data, rd, len))
			return pp;
	return NULL;
}

/* kept - A and TXT records held at a node */
static uint32_t kept(const struct moat_zone *z, uint32_t idx)
{
	uint32_t n = 0;

	for (uint32_t a = z->nodes[idx].a; a; a = z->ar[a].next)
		n++;
	for (const struct txtrec *t = z->nodes[idx].txt; t; t = t->next)
		n++;
	return n;
}

/* apply - the change itself, after validation; no undo logging.  A
 * records are kept (code, TTL) only at address names, where they are
 * listings, and TXT records there when keep_txt is set; anywhere else a
 * record only makes its node exist (names below a non-address label share
 * one node, so they are counted).  Returns 0, 1 (an add of a record
 * already there: nothing changed) or -errno. */
static int apply(struct moat_zone *z, uint32_t idx, int op, enum kind kind, uint32_t code,
		 uint32_t ttl, const uint8_t *rd, uint16_t rdlen, bool is_a, uint32_t *oldttl)
{
	int r;

	if (op == MOAT_ZONE_ADD) {
		if (kind == K_A) {
			r = a_add(z, idx, code, ttl, oldttl);
			if (r < 0)
				return r;
			if (r == 1)
				return 1; /* same record again: TTL refreshed only */
			z->st.a_records++;
		} else if (kind == K_TXT) {
			if (txt_find(z, idx, rd, rdlen))
				return 1;
			struct txtrec *t = malloc(sizeof(*t) + rdlen);
			if (!t)
				return -ENOMEM;
			t->len = rdlen;
			memcpy(t->data, rd, rdlen);
			t->next = z->nodes[idx].txt;
			z->nodes[idx].txt = t;
			z->st.other_records++;
		} else if (is_a) {
			z->st.undecodable++;
		} else {
			z->st.other_records++;
		}
		adjust(z, idx, +1);
		return 0;
	}
	if (kind == K_A) {
		if (a_del(z, idx, code, oldttl))
			return -ENOENT;
		z->st.a_records--;
	} else if (kind == K_TXT) {
		struct txtrec **pp = txt_find(z, idx, rd, rdlen), *t;
		if (!pp)
			return -ENOENT;
		t = *pp;
		*pp = t->next;
		free(t);
		z->st.other_records--;
	} else {
		if (z->nodes[idx].nrr <= kept(z, idx))
			return -ENOENT;
		if (is_a && z->st.undecodable)
			z->st.undecodable--;
		else if (!is_a && z->st.other_records)
			z->st.other_records--;
	}
	adjust(z, idx, -1);
	return 0;
}

/* lset_add - put addr in the batch's set of touched leaves: 1 if it was
 * there already, 0, or -ENOMEM */
static int lset_add(struct moat_zone *z, uint32_t addr)
{
	size_t s;

	if ((z->nlset + 1) * 2 > z->lsetcap) {
		size_t nc = z->lsetcap ? z->lsetcap * 2 : 256;
		uint64_t *ns = calloc(nc, sizeof(*ns));

		if (!ns)
			return -ENOMEM;
		for (size_t i = 0; i < z->lsetcap; i++) {
			if (!z->lset[i])
				continue;
			for (s = (size_t)((z->lset[i] * 0x9e3779b97f4a7c15ull) >> 32) & (nc - 1); ns[s];
			     s = (s + 1) & (nc - 1))
				;
			ns[s] = z->lset[i];
		}
		free(z->lset);
		z->lset = ns;
		z->lsetcap = nc;
	}
	uint64_t key = (uint64_t)addr + 1; /* 0: empty slot */
	for (s = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (z->lsetcap - 1); z->lset[s];
	     s = (s + 1) & (z->lsetcap - 1))
		if (z->lset[s] == key)
			return 1;
	z->lset[s] = key;
	z->nlset++;
	return 0;
}

/* touch_leaf - in a batch, record the listing of leaf addr and of its
 * ancestors before they change (the leaf once per batch); b and x are its
 * /16 and /24 nodes (x 0: none) */
static int touch_leaf(struct moat_zone *z, uint32_t addr, uint32_t b, uint32_t x)
{
	int r;

	if (!z->batch)
		return 0;
	if ((r = touch(z, x ? x : b)) != 0)
		return r;
	if (grow((void **)&z->aff4, &z->capaff4, z->naff4, sizeof(*z->aff4)))
		return -ENOMEM;
	if ((r = lset_add(z, addr)) != 0)
		return r < 0 ? r : 0;
	z->aff4[z->naff4++] = addr;
	return push_leaf(z, addr, leaf_get(z, addr), &z->old);
}

/* promote - move leaf addr (value v) into the tree, before a change it
 * cannot hold; b is its /16 node.  Returns its new node, 0 when out of
 * memory (then nothing moved). */
static uint32_t promote(struct moat_zone *z, uint32_t addr, uint32_t b, uint16_t v)
{
	uint16_t c = (uint16_t)((addr >> 8) & 255);
	uint32_t x = child(z, b, c, false), l, t;

	if (touch_leaf(z, addr, b, x))
		return 0;
	if (!(x = child(z, b, c, true)) || !(l = child(z, x, (uint16_t)(addr & 255), true)))
		return 0;
	/* the leaf's listing is in the batch's old set (touch_leaf): the new
	 * node is touched while still empty, and lists it from now on */
	if (touch(z, l))
		return 0;
	if ((v & LV_PAIR) &&
	    a_add(z, l, z->pairs[v & LV_PAIR].code, z->pairs[v & LV_PAIR].ttl, &t) < 0)
		return 0;
	adjust(z, l, !!(v & LV_PAIR) + !!(v & LV_OTHER));
	leaf_set(z, b, x, addr, 0); /* a removal: cannot fail */
	return l;
}

/* leaf_plan - what a change (kind K_A or K_OTHER) does to a leaf of value
 * v: 0 or LEAF_TTL (A record there with another TTL, *oldttl set) with
 * the new value in *nv; LEAF_SAME; LEAF_TREE (a leaf cannot hold the
 * result); -ENOENT (a delete of a record it does not hold) */
static int leaf_plan(struct moat_zone *z, uint16_t v, int op, enum kind kind, uint32_t code,
		     uint32_t ttl, uint16_t *nv, uint32_t *oldttl)
{
	bool has_a = v & LV_PAIR;
	uint32_t pcode = has_a ? z->pairs[v & LV_PAIR].code : 0;
	uint32_t pttl = has_a ? z->pairs[v & LV_PAIR].ttl : 0;
	uint16_t id;

	if (op == MOAT_ZONE_DEL) {
		if (kind == K_A) {
			if (!has_a || pcode != code)
				return -ENOENT;
			*oldttl = pttl;
			*nv = v & LV_OTHER;
		} else {
			if (!(v & LV_OTHER))
				return -ENOENT;
			*nv = v & LV_PAIR;
		}
		return 0;
	}
	if (kind != K_A) {
		if (v & LV_OTHER)
			return LEAF_TREE; /* a second record of another type */
		*nv = v | LV_OTHER;
		return 0;
	}
	if (has_a && pcode != code)
		return LEAF_TREE; /* a second A record */
	if (has_a && pttl == ttl)
		return LEAF_SAME;
	if (!(id = pair_id(z, code, ttl)))
		return LEAF_TREE;
	*nv = (uint16_t)((v & LV_OTHER) | id);
	if (has_a) {
		*oldttl = pttl;
		return LEAF_TTL;
	}
	return 0;
}

/* leaf_count - the record counters after a leaf change */
static void leaf_count(struct moat_zone *z, int op, enum kind kind, int res)
{
	if (res == LEAF_TTL)
		return;
	if (kind == K_A)
		z->st.a_records += op == MOAT_ZONE_ADD ? 1 : (size_t)-1;
	else if (op == MOAT_ZONE_ADD)
		z->st.other_records++;
	else if (z->st.other_records)
		z->st.other_records--;
}

/* leaf_rr - a change at or below the IPv4 name of addr (n labels, a
 * record of kind): done on a leaf when the name is one or can become one
 * (0, LEAF_SAME, LEAF_TTL), else LEAF_TREE for the tree to do it, after
 * promoting the leaf when the change needs a node; or -errno */
static int leaf_rr(struct moat_zone *z, int op, uint32_t addr, size_t n, enum kind kind,
		   uint32_t code, uint32_t ttl, uint32_t *oldttl)
{
	uint32_t b = node16(z, addr, false), x;
	uint16_t v, nv = 0;
	int r;

	if (n > MOAT_OWNER_V4_DEPTH || kind == K_TXT) {
		/* a name below it, or a kept TXT: the name needs a node */
		if (op == MOAT_ZONE_ADD && b && (v = leaf_get(z, addr)) && !promote(z, addr, b, v))
			return -ENOMEM;
		return LEAF_TREE;
	}
	if (!b && op == MOAT_ZONE_ADD && !(b = node16(z, addr, true)))
		return -ENOMEM;
	if (!b)
		return -ENOENT;
	x = child(z, b, (uint16_t)((addr >> 8) & 255), false);
	if (x && child(z, x, (uint16_t)(addr & 255), false))
		return LEAF_TREE; /* promoted before, or made a node by a name below */
	v = leaf_get(z, addr);
	r = leaf_plan(z, v, op, kind, code, ttl, &nv, oldttl);
	if (r == LEAF_TREE && v && !promote(z, addr, b, v))
		return -ENOMEM;
	if (r < 0 || r == LEAF_TREE || r == LEAF_SAME)
		return r;
	int e = touch_leaf(z, addr, b, x);
	if (!e)
		e = leaf_set(z, b, x, addr, nv);
	if (e)
		return e;
	leaf_count(z, op, kind, r);
	return r;
}

/* leaf_undo - reverse a logged leaf change on the leaf (no node there) */
static void leaf_undo(struct moat_zone *z, const struct undo *u)
{
	uint32_t b = node16(z, u->node, false), t;
	uint32_t x = b ? child(z, b, (uint16_t)((u->node >> 8) & 255), false) : 0;
	int op = u->op == UNDO_TTL || u->op == MOAT_ZONE_DEL ? MOAT_ZONE_ADD : MOAT_ZONE_DEL;
	uint16_t nv;
	int r;

	if (!b)
		return;
	r = leaf_plan(z, leaf_get(z, u->node), op, (enum kind)u->kind, u->code, u->ttl, &nv, &t);
	/* the value shrinks, or takes back a pair id it had: no allocation */
	if ((r == 0 || r == LEAF_TTL) && !leaf_set(z, b, x, u->node, nv))
		leaf_count(z, op, (enum kind)u->kind, r);
}

/* undo_one - reverse one logged change; a leaf's, wherever its records
 * are now (a leaf promoted later in the batch keeps them in its node) */
static void undo_one(struct moat_zone *z, const struct undo *u)
{
	uint32_t idx = u->node, t;

	if (u->leaf && !(idx = v4_node(z, u->node))) {
		leaf_undo(z, u);
		return;
	}
	if (u->op == UNDO_TTL) {
		a_add(z, idx, u->code, u->ttl, &t);
		return;
	}
	apply(z, idx, u->op == MOAT_ZONE_ADD ? MOAT_ZONE_DEL : MOAT_ZONE_ADD, (enum kind)u->kind,
	      u->code, u->ttl, u->rd, u->rdlen, u->undecodable_a, &t);
}

/* leaf_log - in a batch, log a leaf change (leaf_rr's result r) for
 * rollback; when the log cannot hold it, undo it now: -ENOMEM */
static int leaf_log(struct moat_zone *z, int op, uint32_t addr, enum kind kind, uint32_t code,
		    uint32_t oldttl, int r)
{
	if (!z->batch || r == LEAF_SAME)
		return 0;
	struct undo u = { .node = addr, .code = code, .ttl = oldttl, .leaf = 1,
			  .op = (uint8_t)(r == LEAF_TTL ? UNDO_TTL : op), .kind = (uint8_t)kind };
	if (grow((void **)&z->ul, &z->capul, z->nul, sizeof(*z->ul))) {
		undo_one(z, &u);
		return -ENOMEM;
	}
	z->ul[z->nul++] = u;
	return 0;
}

/* moat_zone_rr - add or delete one record */
int moat_zone_rr(struct moat_zone *z, enum moat_zone_op op, const uint8_t *owner,
		 uint16_t type, uint32_t ttl, const uint8_t *rdata, uint16_t rdlen)
{
	uint16_t codes[MAX_PATH];
	size_t n;
	uint32_t idx = ROOT, code = 0, oldttl = ttl;
	bool is_a = type == KNOT_RRTYPE_A;
	int r;

	if (type == KNOT_RRTYPE_SOA)
		return 0;
	if (owner_path(z, owner, codes, &n))
		return -EINVAL;
	if (is_a) {
		if (rdlen != 4)
			return -EINVAL;
		code = (uint32_t)rdata[0] << 24 | (uint32_t)rdata[1] << 16 |
		       (uint32_t)rdata[2] << 8 | rdata[3];
	}
	bool addr = is_addr_name(codes, n);
	enum kind kind = is_a && addr ? K_A
			 : type == KNOT_RRTYPE_TXT && addr && z->keep_txt ? K_TXT : K_OTHER;
	if (is_a && !addr) {
		char buf[KNOT_DNAME_TXT_MAXLEN + 1];
		if (log_get_level() >= LOG_LVL_DEBUG && knot_dname_to_str(buf, owner, sizeof(buf))) {
			char esc[600];
			log_debug("zone: A record at %s is not an address name, ignored",
				  log_escape(esc, sizeof(esc), buf, strlen(buf)));
		}
	}
	if (n >= MOAT_OWNER_V4_DEPTH && codes[0] <= 255 && codes[1] <= 255 && codes[2] <= 255 &&
	    codes[3] <= 255) {
		/* at or below a full IPv4 name: a leaf's, unless it needs a node */
		uint32_t a4 = (uint32_t)codes[0] << 24 | (uint32_t)codes[1] << 16 |
			      (uint32_t)codes[2] << 8 | codes[3];
		r = leaf_rr(z, op, a4, n, kind, code, ttl, &oldttl);
		if (r < 0)
			return r;
		if (r != LEAF_TREE)
			return leaf_log(z, op, a4, kind, code, oldttl, r);
	}
	for (size_t i = 0; i < n; i++) {
		idx = child(z, idx, codes[i], op == MOAT_ZONE_ADD);
		if (!idx)
			return op == MOAT_ZONE_ADD ? -ENOMEM : -ENOENT;
	}
	if ((r = touch(z, idx)) != 0)
		return r;
	r = apply(z, idx, op, kind, code, ttl, rdata, rdlen, is_a, &oldttl);
	if (r < 0)
		return r;
	if (z->batch && r == 1 && kind == K_A && oldttl != ttl) {
		/* an A added again with another TTL: rollback must restore it */
		if (grow((void **)&z->ul, &z->capul, z->nul, sizeof(*z->ul))) {
			a_add(z, idx, code, oldttl, &oldttl);
			return -ENOMEM;
		}
		z->ul[z->nul++] = (struct undo){ .node = idx, .code = code, .ttl = oldttl,
						 .op = UNDO_TTL, .kind = K_A };
		return 0;
	}
	if (z->batch && r == 0) {
		uint8_t *copy = NULL;
		if (kind == K_TXT && (copy = malloc(rdlen ? rdlen : 1)) != NULL)
			memcpy(copy, rdata, rdlen);
		if ((kind == K_TXT && !copy) ||
		    grow((void **)&z->ul, &z->capul, z->nul, sizeof(*z->ul))) {
			/* undo this one change now: the log cannot hold it */
			apply(z, idx, op == MOAT_ZONE_ADD ? MOAT_ZONE_DEL : MOAT_ZONE_ADD, kind,
			      code, oldttl, rdata, rdlen, is_a, &oldttl);
			free(copy);
			return -ENOMEM;
		}
		z->ul[z->nul++] = (struct undo){ .node = idx, .code = code, .ttl = oldttl,
						 .op = (uint8_t)op, .kind = (uint8_t)kind,
						 .undecodable_a = is_a, .rd = copy,
						 .rdlen = rdlen };
	}
	return 0;
}

/* moat_zone_begin - start a batch */
int moat_zone_begin(struct moat_zone *z)
{
	if (z->batch)
		return -EBUSY;
	z->batch = true;
	z->nul = z->naff = z->naff4 = 0;
	z->old.n = 0;
	return 0;
}

/* end_batch - clear marks and logs */
static void end_batch(struct moat_zone *z)
{
	for (size_t i = 0; i < z->nul; i++)
		free(z->ul[i].rd);
	for (size_t i = 0; i < z->naff; i++)
		z->nodes[z->aff[i]].mark = 0;
	if (z->nlset)
		memset(z->lset, 0, z->lsetcap * sizeof(*z->lset));
	z->nlset = z->naff4 = 0;
	z->naff = z->nul = 0;
	z->old.n = 0;
	z->batch = false;
}

/* moat_zone_rollback - undo the batch in reverse order */
void moat_zone_rollback(struct moat_zone *z)
{
	for (size_t i = z->nul; i > 0; i--)
		undo_one(z, &z->ul[i - 1]);
	end_batch(z);
}

/* moat_zone_commit - diff old and new listings of the affected nodes */
int moat_zone_commit(struct moat_zone *z, struct moat_lvec *add, struct moat_lvec *del)
{
	struct moat_lvec now = { 0 };
	size_t i = 0, j = 0;

	for (size_t k = 0; k < z->naff; k++)
		if (emit(z, z->aff[k], &now))
			goto nomem;
	for (size_t k = 0; k < z->naff4; k++) /* a leaf promoted since: its node's */
		if (push_leaf(z, z->aff4[k], leaf_get(z, z->aff4[k]), &now))
			goto nomem;
	moat_lvec_sort(&now);
	moat_lvec_sort(&z->old);
	while (i < z->old.n || j < now.n) {
		int c = i == z->old.n ? 1 : j == now.n ? -1
			: moat_listing_cmp(&z->old.v[i], &now.v[j]);
		if (c < 0) {
			if (moat_lvec_push(del, &z->old.v[i++]))
				goto nomem;
		} else if (c > 0) {
			if (moat_lvec_push(add, &now.v[j++]))
				goto nomem;
		} else {
			i++;
			j++;
		}
	}
	moat_lvec_free(&now);
	end_batch(z);
	return 0;
nomem:
	moat_lvec_free(&now);
	moat_zone_rollback(z);
	return -ENOMEM;
}

/* moat_zone_error_codes - answers that are never listings (NULL: none) */
int moat_zone_error_codes(struct moat_zone *z, const struct moat_codes *c)
{
	if (z->nnodes > 2 || z->nleaves)
		return -EBUSY; /* listings were computed with the old set */
	z->filter = c != NULL;
	if (c)
		z->codes = *c;
	return 0;
}

/* moat_zone_keep_txt - keep TXT records of address names from now on */
int moat_zone_keep_txt(struct moat_zone *z, bool on)
{
	if (z->nnodes > 2 || z->nleaves)
		return -EBUSY; /* records added already: they were not kept */
	z->keep_txt = on;
	return 0;
}

/* answer_from - fill an answer from the records at node idx */
static void answer_from(const struct moat_zone *z, uint32_t idx, struct moat_zone_answer *ans)
{
	size_t n = 0;

	for (uint32_t a = z->nodes[idx].a; a; a = z->ar[a].next) {
		if (ans->ncodes < MOAT_ZONE_MAX_CODES)
			ans->codes[ans->ncodes++] = z->ar[a].code;
		ans->ttl = z->ar[a].ttl;
	}
	ans->status = ans->ncodes ? MOAT_ZONE_LISTED : MOAT_ZONE_NODATA;
	/* TXT character-strings, joined by a space */
	for (const struct txtrec *t = z->nodes[idx].txt; t; t = t->next) {
		for (size_t i = 0; i < t->len; i += 1 + (size_t)t->data[i]) {
			size_t l = t->data[i];
			if (i + 1 + l > t->len)
				break;
			if (n && n + 1 < sizeof(ans->txt))
				ans->txt[n++] = ' ';
			for (size_t j = 0; j < l && n + 1 < sizeof(ans->txt); j++)
				ans->txt[n++] = (char)t->data[i + 1 + j];
		}
	}
	ans->txt[n] = 0;
}

/* moat_zone_lookup - the DNS answer for an address, straight from the tree:
 * exact name, else the wildcard at the closest encloser (RFC 4592) */
int moat_zone_lookup(const struct moat_zone *z, const struct moat_prefix *addr,
		     struct moat_zone_answer *ans)
{
	struct moat_zone *zz = (struct moat_zone *)z; /* child() without create */
	uint16_t codes[MOAT_OWNER_V6_DEPTH];
	size_t n;

	memset(ans, 0, sizeof(*ans));
	if (addr->family == MOAT_AF_INET && addr->plen == 32) {
		n = MOAT_OWNER_V4_DEPTH;
		for (size_t i = 0; i < n; i++)
			codes[i] = addr->addr[i];
	} else if (addr->family == MOAT_AF_INET6 && addr->plen == 128) {
		n = MOAT_OWNER_V6_DEPTH;
		for (size_t i = 0; i < n; i++) {
			unsigned x = i % 2 ? addr->addr[i / 2] & 15 : addr->addr[i / 2] >> 4;
			codes[i] = (uint16_t)(x < 10 ? x : MOAT_LBL_HEX + x);
		}
	} else {
		return -EINVAL;
	}
	uint32_t ce = ROOT;
	for (size_t i = 0; i < n; i++) {
		uint32_t c = child(zz, ce, codes[i], false);
		if (c && exists(z, c)) {
			ce = c;
			if (i == n - 1) {
				answer_from(z, c, ans);
				return 0;
			}
			continue;
		}
		/* no node: a /24 of leaves only, or a leaf?  Either has no
		 * wildcard child and nothing below a leaf: the closest
		 * encloser is it, and the answer NXDOMAIN or the leaf's */
		const struct znode *p = &z->nodes[ce];
		if (!c && (i == 2 || i == 3) && p->depth == i && (p->flags & NF_V4) &&
		    codes[i] <= 255) {
			uint32_t a4 = p->v4 | (uint32_t)codes[2] << 8;
			if (i == 2 && !has24(z, a4))
				break;
			uint16_t v = codes[3] <= 255 ? leaf_get(z, a4 | codes[3]) : 0;
			if (v && n == MOAT_OWNER_V4_DEPTH) {
				if (v & LV_PAIR) {
					ans->codes[ans->ncodes++] = z->pairs[v & LV_PAIR].code;
					ans->ttl = z->pairs[v & LV_PAIR].ttl;
				}
				ans->status = ans->ncodes ? MOAT_ZONE_LISTED : MOAT_ZONE_NODATA;
				return 0;
			}
			if (v || i == 2) {
				ans->status = MOAT_ZONE_NXDOMAIN;
				return 0;
			}
		}
		break;
	}
	uint32_t w = z->nodes[ce].star;
	if (w && exists(z, w)) {
		answer_from(z, w, ans);
		ans->wildcard = true;
		return 0;
	}
	ans->status = MOAT_ZONE_NXDOMAIN;
	return 0;
}
