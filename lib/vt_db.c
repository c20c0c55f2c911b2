/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vt_db.c - the verdict-table db as an object: creation with a validated
 * copy of the policy, freeing, policy changes, and the live image it holds
 * (adopting what a previous moat-controld pinned, sharing the fast path's
 * mapped tbl24 and groups instead of a copy).  The db's other parts are in
 * the files vt_internal.h lists: store, validate, commit, compile, publish,
 * query.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "vt_internal.h"

/* index_policy - source id map for a validated policy. */
static void index_policy(struct vt_db *db)
{
	memset(db->sidx, 0, sizeof(db->sidx));
	for (uint32_t i = 0; i < db->pol.nsources; i++)
		db->sidx[db->pol.sources[i].id] = (uint16_t)(i + 1);
}

/* vt_db_new - empty db with a validated copy of the policy. */
struct vt_db *vt_db_new(const struct vt_policy *p, char *err, size_t errsz)
{
	struct vt_db *db;

	if (vt_policy_validate(p, err, errsz) < 0)
		return NULL;
	db = calloc(1, sizeof(*db));
	if (!db)
		goto nomem;
	db->pol = *p;
	index_policy(db);
	db->now = (uint64_t)time(NULL);
	db->dir = calloc(MOAT_TBL24_ENTRIES, sizeof(uint32_t));
	db->dirtybits = calloc(MOAT_TBL24_ENTRIES / 64, sizeof(uint64_t));
	db->src24 = calloc(65536, sizeof(*db->src24));
	db->live = vt_image_new();
	db->pool_cap = 1024;
	db->pool = malloc(db->pool_cap * sizeof(*db->pool));
	if (!db->dir || !db->dirtybits || !db->src24 || !db->live || !db->pool)
		goto nomem;
	db->pool_n = 1; /* offset 0 means "no chunk" */
	return db;
nomem:
	VT_ERR(err, errsz, "out of memory");
	vt_db_free(db);
	return NULL;
}

/* vt_db_free - release everything. */
void vt_db_free(struct vt_db *db)
{
	if (!db)
		return;
	free(db->dir);
	free(db->pool);
	for (int i = 0; i < NCLS; i++)
		free(db->freel[i].v);
	free(db->s4.e);
	free(db->s6.e);
	free(db->dirtybits);
	if (db->src24)
		for (uint32_t i = 0; i < 65536; i++)
			free(db->src24[i].v);
	free(db->src24);
	free(db->dirty.v);
	free(db->v6d.v);
	free(db->exp24.v);
	vt_image_free(db->live);
	free(db->ready.v);
	free(db->pend);
	free(db->scr);
	free(db->codes);
	free(db->ctb);
	free(db);
}

/* pred_unknown - the entry's source left the policy. */
static int pred_unknown(const struct vt_db *db, uint16_t src, uint32_t ex)
{
	(void)ex;
	return db->sidx[src] == 0;
}

/* vt_db_set_policy - new policy; listings of vanished sources go. */
int vt_db_set_policy(struct vt_db *db, const struct vt_policy *p,
		     char *err, size_t errsz)
{
	struct vt_source_counters old[VT_MAX_SOURCES];
	uint16_t prev_ids[VT_MAX_SOURCES];
	uint32_t nprev = db->pol.nsources;
	int rc = vt_policy_validate(p, err, errsz);

	if (rc < 0)
		return rc;
	/* the same policy (a reload that changed none of it): nothing to
	 * drop and nothing to recompile - not 2^24 /24s for nothing */
	if (memcmp(&db->pol, p, sizeof(*p)) == 0)
		return 0;
	for (uint32_t j = 0; j < nprev; j++)
		prev_ids[j] = db->pol.sources[j].id;
	memcpy(old, db->cnt, sizeof(old));
	memset(db->cnt, 0, sizeof(db->cnt));
	for (uint32_t i = 0; i < p->nsources; i++)
		for (uint32_t j = 0; j < nprev; j++)
			if (prev_ids[j] == p->sources[i].id)
				db->cnt[i] = old[j];
	db->pol = *p;
	index_policy(db);
	vt_drop_where(db, pred_unknown, NULL, 0);
	db->dirty_all = 1;
	db->v6_dirty = 1;
	return 0;
}

/* vt_db_image - the live image. */
const struct vt_image *vt_db_image(const struct vt_db *db)
{
	return db->live;
}

/* vt_db_full_image - the live image as updates for an empty fast path. */
int vt_db_full_image(const struct vt_db *db, struct moat_update **ups,
		     size_t *n)
{
	return vt_image_full(db->live, ups, n);
}

/* image_share - img's groups become store[0..cap) when store already
 * holds every group img's tbl24 references (nothing is written to store:
 * a reader may be using it); -EINVAL when it does not. */
static int image_share(struct vt_image *img, struct moat_group *store,
		       uint32_t cap)
{
	if (img->ghi > cap)
		return -ENOSPC;
	for (uint32_t i = 0; i < MOAT_TBL24_ENTRIES; i++) {
		uint32_t e = img->tbl24[i], g = moat_tbl24_group(e);

		if (moat_tbl24_is_group(e) && g < img->ghi &&
		    memcmp(&store[g], &img->groups[g], sizeof(*store)) != 0)
			return -EINVAL;
	}
	if (!img->gext)
		free(img->groups);
	img->groups = store;
	img->gcap = cap;
	img->gext = 1;
	return 0;
}

/* vt_db_share_groups - keep the live image's groups in the fast path's
 * own (mapped) group array instead of a copy: publish writes each group
 * there through the fast path first, and the live image must equal it. */
int vt_db_share_groups(struct vt_db *db, struct moat_group *store,
		       uint32_t cap)
{
	if (db->live->gext)
		return -EALREADY;
	return image_share(db->live, store, cap);
}

/* image_share_tbl24 - img's tbl24 becomes tbl when tbl holds the same
 * entries (nothing is written to it); -EINVAL when not. */
static int image_share_tbl24(struct vt_image *img, uint32_t *tbl)
{
	if (memcmp(tbl, img->tbl24, MOAT_TBL24_ENTRIES * sizeof(*tbl)) != 0)
		return -EINVAL;
	if (!img->text)
		free(img->tbl24);
	img->tbl24 = tbl;
	img->text = 1;
	return 0;
}

/* vt_db_share_tbl24 - the same for tbl24 (the fast path's mmap'd one). */
int vt_db_share_tbl24(struct vt_db *db, uint32_t *tbl)
{
	if (db->live->text)
		return -EALREADY;
	return image_share_tbl24(db->live, tbl);
}

/* vt_db_unshare - back to private copies (before the stores go). */
int vt_db_unshare(struct vt_db *db)
{
	struct vt_image *live = db->live;

	if (live->gext) {
		struct moat_group *g = malloc((live->ghi ? live->ghi : 1) * sizeof(*g));

		if (!g)
			return -ENOMEM;
		memcpy(g, live->groups, (size_t)live->ghi * sizeof(*g));
		live->groups = g;
		live->gcap = live->ghi;
		live->gext = 0;
	}
	if (live->text) {
		uint32_t *t = malloc(MOAT_TBL24_ENTRIES * sizeof(*t));

		if (!t)
			return -ENOMEM;
		memcpy(t, live->tbl24, MOAT_TBL24_ENTRIES * sizeof(*t));
		live->tbl24 = t;
		live->text = 0;
	}
	return 0;
}

/* vt_db_adopt - diff the next publish against img. */
int vt_db_adopt(struct vt_db *db, const struct vt_image *img)
{
	struct vt_image *c = vt_image_clone(img);
	uint8_t *used;

	if (!c)
		return -ENOMEM;
	/* a shared live image stays shared when img is what the store holds
	 * (a resync reads img from it); otherwise c keeps its own copy */
	if (db->live->gext)
		(void)image_share(c, db->live->groups, db->live->gcap);
	if (db->live->text)
		(void)image_share_tbl24(c, db->live->tbl24);
	used = calloc(c->ghi ? c->ghi : 1, 1);
	if (!used) {
		vt_image_free(c);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < MOAT_TBL24_ENTRIES; i++)
		if (moat_tbl24_is_group(c->tbl24[i]) &&
		    moat_tbl24_group(c->tbl24[i]) < c->ghi)
			used[moat_tbl24_group(c->tbl24[i])] = 1;
	vt_image_free(db->live);
	db->live = c;
	db->thp = 0;
	db->ready.n = 0;
	db->npend = 0;
	/* unreferenced groups of the adopted image: reusable after grace */
	for (uint32_t g = 0; g < c->ghi; g++) {
		if (used[g])
			continue;
		if (vt_grow((void **)&db->pend, &db->pendcap, db->npend + 1,
			    sizeof(*db->pend)) < 0)
			break;
		db->pend[db->npend].g = g;
		db->pend[db->npend].t_ms = (uint64_t)moat_clock_ms();
		db->npend++;
	}
	free(used);
	db->dirty_all = 1;
	db->v6_dirty = 1;
	return 0;
}
