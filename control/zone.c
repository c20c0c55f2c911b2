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
	uint32_t node, code, ttl;
	uint8_t op, kind, undecodable_a;
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
};

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

/* exists - a node exists when it has records or existing children */
static bool exists(const struct znode *n)
{
	return n->nrr > 0 || n->nkids > 0;
}

/* adjust - change a node's record count and propagate existence upward */
static void adjust(struct moat_zone *z, uint32_t idx, int delta)
{
	struct znode *n = &z->nodes[idx];
	bool was = exists(n);

	n->nrr = (uint32_t)((int64_t)n->nrr + delta);
	bool now = exists(n);
	while (was != now && idx != ROOT) {
		idx = n->parent;
		n = &z->nodes[idx];
		was = exists(n);
		n->nkids = now ? n->nkids + 1 : n->nkids - 1;
		now = exists(n);
	}
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
		if (!exists(cn) || !(cn->flags & flag))
			continue; /* absent, or not reachable by an address query */
		if (lists_own(z, c, fam))
			continue;
		node_prefix(z, c, fam, &cp);
		struct moat_listing l = { .pfx = cp, .source = z->source, .exclude = 1 };
		if (moat_lvec_push(out, &l))
			return -ENOMEM;
	}
	return 0;
}

/* emit - listings owned by node idx, both families */
static int emit(const struct moat_zone *z, uint32_t idx, struct moat_lvec *out)
{
	if (emit_fam(z, idx, MOAT_AF_INET, out))
		return -ENOMEM;
	return emit_fam(z, idx, MOAT_AF_INET6, out);
}

/* moat_zone_listings - every listing of the zone, in node order */
int moat_zone_listings(struct moat_zone *z, struct moat_lvec *out)
{
	for (uint32_t i = ROOT; i < z->nnodes; i++)
		if (emit(z, i, out))
			return -ENOMEM;
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
	for (size_t i = 0; i < n; i++) {
		idx = child(z, idx, codes[i], op == MOAT_ZONE_ADD);
		if (!idx)
			return op == MOAT_ZONE_ADD ? -ENOMEM : -ENOENT;
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
	z->nul = z->naff = 0;
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
	z->naff = z->nul = 0;
	z->old.n = 0;
	z->batch = false;
}

/* moat_zone_rollback - undo the batch in reverse order */
void moat_zone_rollback(struct moat_zone *z)
{
	uint32_t t;

	for (size_t i = z->nul; i > 0; i--) {
		const struct undo *u = &z->ul[i - 1];
		if (u->op == UNDO_TTL) {
			a_add(z, u->node, u->code, u->ttl, &t);
			continue;
		}
		apply(z, u->node, u->op == MOAT_ZONE_ADD ? MOAT_ZONE_DEL : MOAT_ZONE_ADD,
		      (enum kind)u->kind, u->code, u->ttl, u->rd, u->rdlen, u->undecodable_a, &t);
	}
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
	if (z->nnodes > 2)
		return -EBUSY; /* listings were computed with the old set */
	z->filter = c != NULL;
	if (c)
		z->codes = *c;
	return 0;
}

/* moat_zone_keep_txt - keep TXT records of address names from now on */
int moat_zone_keep_txt(struct moat_zone *z, bool on)
{
	if (z->nnodes > 2)
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
		if (!c || !exists(&z->nodes[c]))
			break;
		ce = c;
		if (i == n - 1) {
			answer_from(z, c, ans);
			return 0;
		}
	}
	uint32_t w = z->nodes[ce].star;
	if (w && exists(&z->nodes[w])) {
		answer_from(z, w, ans);
		ans->wildcard = true;
		return 0;
	}
	ans->status = MOAT_ZONE_NXDOMAIN;
	return 0;
}
