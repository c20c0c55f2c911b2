/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vt_publish.c - making changes live: the dirty /24s are recompiled
 * (vt_compile.c) and compared with the live image, the changed IPv6 rules
 * (vt_compile6.c) diffed, and the updates handed to the fast path in
 * publishing order (a group before the tbl24 entry that references it,
 * bpf/moat_abi.h "PUBLISHING ORDER"), in chunks.  Each chunk the fast path
 * took is applied to the live image at once, so the live image is always
 * what the fast path holds; groups unlinked are reused only after the grace
 * period, when no reader can still be inside them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "vt_internal.h"

/* release_groups - groups whose grace period is over become reusable. */
static void release_groups(struct vt_db *db, uint64_t t, int all)
{
	size_t o = 0;
	uint32_t grace = db->pol.grace_ms ? db->pol.grace_ms : VT_GRACE_DEFAULT_MS;

	for (size_t i = 0; i < db->npend; i++) {
		if (all || db->pend[i].t_ms + grace <= t) {
			if (vt_vec_push(&db->ready, db->pend[i].g) == 0)
				continue;
		}
		db->pend[o++] = db->pend[i];
	}
	db->npend = o;
}

/* vt_db_grace_done - every reader moved on: freed groups are reusable. */
void vt_db_grace_done(struct vt_db *db)
{
	release_groups(db, 0, 1);
}

/* A publish in progress: updates go out in chunks through emit; each
 * chunk the fast path took is made live at once, so the live image is
 * always exactly what the fast path holds. */
struct pub {
	struct vt_db *db;
	vt_emit_fn emit;
	void *ctx;
	struct moat_update buf[VT_EMIT_CHUNK];
	size_t n;
	struct u32vec freed;     /* groups unlinked by buf */
	struct u32vec taken;     /* ready groups used by buf */
	uint32_t next_new;       /* next never-used group index */
	uint64_t t;
	size_t emitted;
};

/* pub_flush - hand buf to the fast path, then make it live: groups and
 * tbl24 entries, unlinked groups wait for the grace period. */
static int pub_flush(struct pub *pb)
{
	struct vt_db *db = pb->db;
	struct vt_image *live = db->live;
	int rc;

	if (!pb->n)
		return 0;
	if (pb->next_new > live->ghi &&
	    (rc = vt_image_grow_groups(live, pb->next_new)) < 0)
		return rc;
	rc = pb->emit(pb->ctx, pb->buf, pb->n);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < pb->n; i++) {
		const struct moat_update *u = &pb->buf[i];

		if (u->kind == MOAT_UPD_GROUP) {
			live->groups[u->index] = u->u.group;
			if (u->index >= live->ghi)
				live->ghi = u->index + 1;
		} else if (u->kind == MOAT_UPD_TBL24) {
			live->tbl24[u->index] = u->value;
		}
	}
	for (size_t i = 0; i < pb->freed.n; i++) {
		if (vt_grow((void **)&db->pend, &db->pendcap, db->npend + 1,
			    sizeof(*db->pend)) < 0)
			break; /* leaks the index: never reused early */
		db->pend[db->npend].g = pb->freed.v[i];
		db->pend[db->npend].t_ms = pb->t;
		db->npend++;
	}
	pb->emitted += pb->n;
	pb->n = 0;
	pb->freed.n = 0;
	pb->taken.n = 0;
	return 0;
}

/* pub_unwind - a failed publish gives back the groups of the unsent chunk. */
static void pub_unwind(struct pub *pb)
{
	for (size_t i = pb->taken.n; i > 0; i--)
		(void)vt_vec_push(&pb->db->ready, pb->taken.v[i - 1]);
	pb->taken.n = 0;
}

/* publish_one - compare /24 idx with the live image and queue updates;
 * new groups come from the ready list or above the high-water mark. */
static int publish_one(struct pub *pb, uint32_t idx)
{
	struct vt_db *db = pb->db;
	struct moat_group g;
	uint32_t act = 0, old = db->live->tbl24[idx], nv;
	struct moat_update *u;
	int rc;

	if (pb->n + 2 > VT_EMIT_CHUNK && (rc = pub_flush(pb)) < 0)
		return rc;
	rc = vt_compile24(db, idx, &g, &act);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		nv = act;
		if (old == nv)
			return 0;
	} else {
		uint32_t gi;

		if (moat_tbl24_is_group(old) &&
		    moat_tbl24_group(old) < db->live->ghi &&
		    memcmp(&db->live->groups[moat_tbl24_group(old)], &g,
			   sizeof(g)) == 0)
			return 0;
		if (db->ready.n) {
			gi = db->ready.v[--db->ready.n];
			if (vt_vec_push(&pb->taken, gi) < 0) {
				db->ready.n++;
				return -ENOMEM;
			}
		} else if (pb->next_new <= MOAT_GROUP_MAX) {
			gi = pb->next_new++;
		} else {
			return -ENOSPC;
		}
		u = &pb->buf[pb->n++];
		memset(u, 0, sizeof(*u));
		u->kind = MOAT_UPD_GROUP;
		u->index = gi;
		u->u.group = g;
		nv = moat_tbl24_make_group(gi);
	}
	if (moat_tbl24_is_group(old) &&
	    vt_vec_push(&pb->freed, moat_tbl24_group(old)) < 0)
		return -ENOMEM;
	u = &pb->buf[pb->n++];
	memset(u, 0, sizeof(*u));
	u->kind = MOAT_UPD_TBL24;
	u->index = idx;
	u->value = nv;
	return 0;
}

/* publish_v6 - the IPv6 part: the changed rules, diffed and emitted in
 * chunks; the live image takes exactly what went out. */
static int publish_v6(struct pub *pb)
{
	struct vt_db *db = pb->db;
	struct v6change ch;
	struct moat_update *ups = NULL;
	size_t nu = 0, cap = 0, sent = 0;
	struct moat_v6_plens pl;
	int rc;

	memset(&ch, 0, sizeof(ch));
	rc = vt_compile_v6(db, &ch);
	if (rc == 0) {
		vt_plens_from_counts(ch.cnt, &pl);
		rc = vt_v6_diff(ch.old.v, ch.old.n, vt_image_plens(db->live),
				ch.nw.v, ch.nw.n, &pl, &ups, &nu, &cap);
	}
	while (rc == 0 && sent < nu) {
		size_t k = nu - sent < VT_EMIT_CHUNK ? nu - sent : VT_EMIT_CHUNK;

		rc = pb->emit(pb->ctx, ups + sent, k);
		if (rc == 0) {
			sent += k;
			pb->emitted += k;
		}
	}
	/* the fast path holds what was sent: so does the live image */
	if (sent) {
		int arc = vt_image_apply(db->live, ups, sent);

		if (rc == 0)
			rc = arc;
	}
	free(ups);
	free(ch.old.v);
	free(ch.nw.v);
	return rc;
}

/* vt_db_publish_cb - recompile what changed, hand the updates over in
 * chunks, keep the live image equal to what was handed over. */
int vt_db_publish_cb(struct vt_db *db, vt_emit_fn emit, void *ctx,
		     size_t *count)
{
	struct pub *pb = malloc(sizeof(*pb)); /* buf needs no zeroing */
	int rc = 0;

	if (count)
		*count = 0;
	if (!pb)
		return -ENOMEM;
	memset(&pb->freed, 0, sizeof(pb->freed));
	memset(&pb->taken, 0, sizeof(pb->taken));
	pb->n = 0;
	pb->emitted = 0;
	pb->db = db;
	pb->emit = emit;
	pb->ctx = ctx;
	pb->t = (uint64_t)moat_clock_ms();
	pb->next_new = db->live->ghi;
	release_groups(db, pb->t, 0);
	if (db->dirty_all) {
		for (uint32_t i = 0; i < MOAT_TBL24_ENTRIES && rc == 0; i++)
			rc = publish_one(pb, i);
	} else {
		for (size_t i = 0; i < db->dirty.n && rc == 0; i++)
			rc = publish_one(pb, db->dirty.v[i]);
	}
	if (rc == 0)
		rc = pub_flush(pb);
	if (rc == 0 && (db->v6_dirty || db->dirty_all))
		rc = publish_v6(pb);
	if (rc < 0) {
		/* what went out is live; everything stays dirty */
		pub_unwind(pb);
		goto out;
	}
	if (db->dirty_all)
		memset(db->dirtybits, 0, (MOAT_TBL24_ENTRIES / 64) * 8);
	else
		for (size_t i = 0; i < db->dirty.n; i++)
			db->dirtybits[db->dirty.v[i] >> 6] = 0;
	db->dirty.n = 0;
	db->dirty_all = 0;
	db->v6_dirty = 0;
	db->v6d.n = 0;
	db->v6d_overflow = 0;
	db->publishes++;
out:
	if (count)
		*count = pb->emitted;
	free(pb->freed.v);
	free(pb->taken.v);
	free(pb);
	return rc;
}

/* vt_updates_collect - the array form of an emit: append a chunk. */
int vt_updates_collect(void *ctx, const struct moat_update *u, size_t n)
{
	struct vt_updates *c = ctx;

	if (vt_grow((void **)&c->u, &c->cap, c->n + n, sizeof(*u)) < 0)
		return -ENOMEM;
	memcpy(c->u + c->n, u, n * sizeof(*u));
	c->n += n;
	return 0;
}

/* vt_db_publish - the same, as one malloc'd array. */
int vt_db_publish(struct vt_db *db, struct moat_update **ups, size_t *n)
{
	struct vt_updates c = { NULL, 0, 0 };
	int rc = vt_db_publish_cb(db, vt_updates_collect, &c, NULL);

	*ups = c.u;
	*n = c.n;
	return rc;
}
