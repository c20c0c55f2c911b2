/*
 * fuzz_vtable.c - the verdict table under arbitrary listing changes:
 * malformed entries are refused without changing anything (the next
 * publish is empty), and after every publish the compiled table agrees
 * with the verdict evaluated from the listings (vt_db_explain) for the
 * addresses the input touched.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vtable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RING 64

static struct vt_db *db;
static unsigned inputs;
static struct moat_listing ring[RING]; /* recent adds, to delete later */
static unsigned ring_pos;

/* setup - a policy like the unit tests': weights, allowlist, operator. */
static struct vt_db *setup(void)
{
	static struct vt_policy p;
	struct vt_source s;
	char err[256];

	vt_policy_init(&p);
	p.tarpit_at = 3;
	p.drop_at = 6;
	vt_source_init(&s, 1, "zen", VT_SRC_DNSBL);
	s.nrules = 2;
	s.rules[0] = (struct vt_weight_rule){ 0x7f000002u, 0x7f000003u, 3 };
	s.rules[1] = (struct vt_weight_rule){ 0x7f000004u, 0x7f000007u, 5 };
	vt_policy_add_source(&p, &s, err, sizeof(err));
	vt_source_init(&s, 2, "bar", VT_SRC_DNSBL);
	vt_policy_add_source(&p, &s, err, sizeof(err));
	vt_source_init(&s, 3, "wl", VT_SRC_ALLOWLIST);
	s.nrules = 1;
	s.rules[0] = (struct vt_weight_rule){ 0x7f000000u, 0x7f00ffffu, -4 };
	vt_policy_add_source(&p, &s, err, sizeof(err));
	vt_source_init(&s, 4, "op", VT_SRC_STATIC);
	vt_policy_add_source(&p, &s, err, sizeof(err));
	return vt_db_new(&p, err, sizeof(err));
}

/* take - next byte of input, 0 past the end. */
static uint8_t take(const uint8_t **d, size_t *n)
{
	uint8_t b = 0;

	if (*n) {
		b = **d;
		(*d)++;
		(*n)--;
	}
	return b;
}

/* decode - one listing of source src; one in eight is malformed in one
 * of four ways (length, host bits, source, padding). */
static void decode(const uint8_t **d, size_t *n, uint16_t src,
		   struct moat_listing *l)
{
	uint8_t f = take(d, n), pl = take(d, n);
	static const uint32_t codes[] = { 0x7f000002u, 0x7f000004u, 0x7f000001u,
					  0x0a000001u, 0x7f000003u, 0x7f000005u,
					  0x7f000000u, 0x7fffff01u };
	int v6 = f & 1, bad = (f & 0xe0) == 0xe0;

	memset(l, 0, sizeof(*l));
	l->pfx.family = v6 ? MOAT_AF_INET6 : MOAT_AF_INET;
	/* lengths inside the small space the addresses live in (a /0 would
	 * recompile all 2^24 /24s on every publish: correct, slow here) */
	l->pfx.plen = (uint8_t)(v6 ? 32 + (pl % 7) * 16 : 14 + pl % 19);
	if (v6) {
		l->pfx.addr[0] = 0x20;
		l->pfx.addr[1] = 0x01;
		for (int i = 2; i < 16; i += 5)
			l->pfx.addr[i] = take(d, n) & 3;
	} else {
		l->pfx.addr[0] = 10;
		l->pfx.addr[1] = take(d, n) & 1;
		l->pfx.addr[2] = take(d, n) & 3;
		l->pfx.addr[3] = take(d, n);
	}
	for (unsigned b = l->pfx.plen; b < 128; b++)
		l->pfx.addr[b / 8] &= (uint8_t)~(0x80 >> (b % 8));
	l->source = src;
	l->code = src == 4 ? 1 + (uint32_t)((f >> 1) % 3) : codes[(f >> 1) & 7];
	l->exclude = (f & 0x10) && (pl & 0x80);
	l->ttl = pl & 0x40 ? 30 : 0;
	if (!bad)
		return;
	switch (pl & 3) {
	case 0:
		l->pfx.plen = (uint8_t)(v6 ? 129 : 33);
		break;
	case 1:
		l->pfx.addr[15] |= 1;
		break;
	case 2:
		l->source = (uint16_t)(src % 4 + 1);
		break;
	default:
		l->pfx.pad[1] = 1;
	}
}

/* check - compiled == evaluated for the addresses of the listings. */
static void check(const struct moat_listing *l, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct moat_prefix a = l[i].pfx;
		struct vt_explain ex;

		if (vt_prefix_check(&a, NULL, 0) < 0)
			continue;
		a.plen = a.family == MOAT_AF_INET ? 32 : 128;
		if (vt_db_explain(db, &a, &ex) < 0)
			abort();
		if (ex.action != ex.live_action) {
			fprintf(stderr, "compiled %u, evaluated %u\n",
				ex.live_action, ex.action);
			abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct moat_listing add[16], del[16];
	struct moat_update *u;
	size_t nu;
	char err[256];

	if (!db || ++inputs % 4096 == 0) {
		vt_db_free(db);
		memset(ring, 0, sizeof(ring));
		db = setup();
		if (!db)
			abort();
	}
	while (size) {
		uint8_t op = take(&data, &size);
		size_t na = op & 7, nd = 0;
		uint16_t src = (uint16_t)(1 + ((op >> 5) & 3));
		int rc;

		for (size_t i = 0; i < na; i++)
			decode(&data, &size, src, &add[i]);
		/* deletes: earlier adds of this source, or (rarely) anything */
		if (op & 0x08) {
			uint8_t k = take(&data, &size);

			for (unsigned i = 0; i < RING && nd < 4; i++) {
				const struct moat_listing *r = &ring[(k + i) % RING];

				if (r->source == src && r->pfx.family)
					del[nd++] = *r;
			}
			if (op & 0x10)
				decode(&data, &size, src, &del[nd++]);
		}
		if (vt_db_publish(db, &u, &nu) < 0)
			abort();
		free(u);
		vt_db_grace_done(db);
		err[0] = 0;
		rc = vt_db_source_apply(db, src, add, na, del, nd, err, sizeof(err));
		if (rc < 0) {
			/* refused: a message, and nothing to publish */
			if (!err[0] || vt_db_publish(db, &u, &nu) < 0)
				abort();
			free(u);
			if (nu != 0)
				abort();
			continue;
		}
		for (size_t i = 0; i < na; i++)
			ring[ring_pos++ % RING] = add[i];
		if (op & 0x80) /* everything with a ttl has expired */
			vt_db_expire(db, (uint64_t)time(NULL) + 31);
		if (vt_db_publish(db, &u, &nu) < 0)
			abort();
		free(u);
		vt_db_grace_done(db);
		check(add, na);
		check(del, nd);
	}
	return 0;
}
