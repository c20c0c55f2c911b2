/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * entries.c - operator and moat-smtpd entries in bulk: the (prefix, source)
 * index over an array of entries (d->entries, a batch, a journal replay),
 * and batches applied as one.
 *
 * A batch (moatctl add/del with many entries) is staged on its control
 * connection and committed at once: checked whole first (a delete of an
 * absent entry, or one named twice, refuses the batch and names its line),
 * then one vt_db_source_apply (all or nothing: the table is exactly as
 * before on any error), one publish, and one record appended to the
 * entries journal (persist.c).  An add of a prefix the batch names twice
 * keeps the last one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "controld.h"
#include "log.h"
#include "prefix.h"
#include "zstate.h"

/* ent_hash - the key's hash (prefix and source) */
static uint64_t ent_hash(const struct moat_prefix *p, uint16_t source)
{
	return zstate_checksum(zstate_checksum(ZSTATE_CHECKSUM_INIT, p, sizeof(*p)), &source,
			       sizeof(source));
}

static int ent_same(const struct cd_entry *e, const struct moat_prefix *p, uint16_t source)
{
	return e->source == source && memcmp(&e->pfx, p, sizeof(*p)) == 0;
}

/* ent_index_find - index in arr of (p, source), or -1 */
ssize_t ent_index_find(const struct ent_index *x, const struct cd_entry *arr,
		       const struct moat_prefix *p, uint16_t source)
{
	if (!x->nslot)
		return -1;
	for (size_t s = ent_hash(p, source) & (x->nslot - 1);; s = (s + 1) & (x->nslot - 1)) {
		uint32_t v = x->slot[s];

		if (!v)
			return -1;
		if (ent_same(&arr[v - 1], p, source))
			return (ssize_t)(v - 1);
	}
}

/* place - slot value v (entry v - 1 of arr) into the table, no growth */
static void place(struct ent_index *x, const struct cd_entry *arr, uint32_t v)
{
	size_t s = ent_hash(&arr[v - 1].pfx, arr[v - 1].source) & (x->nslot - 1);

	while (x->slot[s])
		s = (s + 1) & (x->nslot - 1);
	x->slot[s] = v;
}

/* ent_index_reserve - room for n keys without growing; 0 or -ENOMEM */
int ent_index_reserve(struct ent_index *x, const struct cd_entry *arr, size_t n)
{
	size_t want = 64;

	while (want < 2 * n)
		want *= 2;
	if (want <= x->nslot)
		return 0;
	if (n >= UINT32_MAX)
		return -ENOMEM;
	uint32_t *old = x->slot, *ns = calloc(want, sizeof(*ns));
	size_t oldn = x->nslot;

	if (!ns)
		return -ENOMEM;
	x->slot = ns;
	x->nslot = want;
	for (size_t i = 0; i < oldn; i++)
		if (old[i])
			place(x, arr, old[i]);
	free(old);
	return 0;
}

/* ent_index_insert - arr[i] (not in the index) added; 0 or -ENOMEM */
int ent_index_insert(struct ent_index *x, const struct cd_entry *arr, size_t i)
{
	int r = ent_index_reserve(x, arr, x->used + 1);

	if (r < 0)
		return r;
	place(x, arr, (uint32_t)(i + 1));
	x->used++;
	return 0;
}

/* slot_of - the slot holding value v (present) */
static size_t slot_of(const struct ent_index *x, const struct cd_entry *key, uint32_t v)
{
	size_t s = ent_hash(&key->pfx, key->source) & (x->nslot - 1);

	while (x->slot[s] != v)
		s = (s + 1) & (x->nslot - 1);
	return s;
}

/* ent_index_remove - arr[i] (in the index) taken out (backward shift) */
void ent_index_remove(struct ent_index *x, const struct cd_entry *arr, size_t i)
{
	size_t mask = x->nslot - 1, hole = slot_of(x, &arr[i], (uint32_t)(i + 1));

	x->slot[hole] = 0;
	x->used--;
	for (size_t s = (hole + 1) & mask; x->slot[s]; s = (s + 1) & mask) {
		uint32_t v = x->slot[s];
		size_t home = ent_hash(&arr[v - 1].pfx, arr[v - 1].source) & mask;

		/* v may move back to the hole when its home is not in (hole, s] */
		if (((s - home) & mask) >= ((s - hole) & mask)) {
			x->slot[hole] = v;
			x->slot[s] = 0;
			hole = s;
		}
	}
}

/* ent_index_moved - the entry at arr[from] is now (also) at arr[to] */
void ent_index_moved(struct ent_index *x, const struct cd_entry *arr, size_t from, size_t to)
{
	x->slot[slot_of(x, &arr[to], (uint32_t)(from + 1))] = (uint32_t)(to + 1);
}

void ent_index_free(struct ent_index *x)
{
	free(x->slot);
	*x = (struct ent_index){ 0 };
}

/* ent_set_put - add e, or replace the entry with its key; the index of
 * it, or -ENOMEM (the set unchanged) */
ssize_t ent_set_put(struct ent_set *s, const struct cd_entry *e)
{
	ssize_t i = ent_index_find(&s->x, s->e, &e->pfx, e->source);

	if (i >= 0) {
		s->e[i] = *e;
		return i;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct cd_entry *ne = realloc(s->e, cap * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		s->e = ne;
		s->cap = cap;
	}
	s->e[s->n] = *e;
	if (ent_index_insert(&s->x, s->e, s->n) < 0)
		return -ENOMEM;
	return (ssize_t)s->n++;
}

/* ent_set_remove - entry i out; the last one takes its place */
void ent_set_remove(struct ent_set *s, size_t i)
{
	size_t last = s->n - 1;

	ent_index_remove(&s->x, s->e, i);
	if (i != last) {
		s->e[i] = s->e[last];
		ent_index_moved(&s->x, s->e, last, i);
	}
	s->n--;
}

void ent_set_free(struct ent_set *s)
{
	free(s->e);
	ent_index_free(&s->x);
	*s = (struct ent_set){ 0 };
}

/* d's entries as a set (and back): the fields stay in struct cd, where
 * the rest of moat-controld reads them */
static struct ent_set d_set(struct cd *d)
{
	return (struct ent_set){ d->entries, d->nentries, d->capentries, d->eidx };
}

static void d_set_back(struct cd *d, const struct ent_set *s)
{
	d->entries = s->e;
	d->nentries = s->n;
	d->capentries = s->cap;
	d->eidx = s->x;
}

ssize_t zm_entries_find(struct cd *d, const struct moat_prefix *p, uint16_t source)
{
	return ent_index_find(&d->eidx, d->entries, p, source);
}

ssize_t zm_entries_put(struct cd *d, const struct cd_entry *e)
{
	struct ent_set s = d_set(d);
	ssize_t r = ent_set_put(&s, e);

	d_set_back(d, &s);
	return r;
}

void zm_entries_remove(struct cd *d, size_t i)
{
	struct ent_set s = d_set(d);

	ent_set_remove(&s, i);
	d_set_back(d, &s);
}

/* A staged batch: its entries and the line each came from. */
struct cd_batch {
	int del;
	uint16_t source;
	struct cd_entry *e;
	char (*line)[CD_BATCH_LINE];
	size_t n, cap;
};

struct cd_batch *zm_batch_new(int del, uint16_t source)
{
	struct cd_batch *b = calloc(1, sizeof(*b));

	if (b) {
		b->del = del;
		b->source = source;
	}
	return b;
}

int zm_batch_op(const struct cd_batch *b) { return b->del; }
uint16_t zm_batch_source(const struct cd_batch *b) { return b->source; }
size_t zm_batch_size(const struct cd_batch *b) { return b->n; }
const struct cd_entry *zm_batch_entry(const struct cd_batch *b, size_t i) { return &b->e[i]; }

/* zm_batch_stage - one more entry (line: where it came from, for errors);
 * 0, -E2BIG past CD_BATCH_MAX, -ENOMEM */
int zm_batch_stage(struct cd_batch *b, const struct cd_entry *e, const char *line)
{
	if (b->n >= CD_BATCH_MAX)
		return -E2BIG;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		struct cd_entry *ne = realloc(b->e, cap * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		b->e = ne;
		char (*nl)[CD_BATCH_LINE] = realloc(b->line, cap * sizeof(*nl));

		if (!nl)
			return -ENOMEM;
		b->line = nl;
		b->cap = cap;
	}
	b->e[b->n] = *e;
	snprintf(b->line[b->n], CD_BATCH_LINE, "%s", line ? line : "");
	b->n++;
	return 0;
}

void zm_batch_free(struct cd_batch *b)
{
	if (!b)
		return;
	free(b->e);
	free(b->line);
	free(b);
}

/* where - "LINE: " of staged entry i, or "" */
static const char *where(const struct cd_batch *b, size_t i, char *buf, size_t sz)
{
	if (b->line[i][0])
		snprintf(buf, sz, "%s: ", b->line[i]);
	else
		snprintf(buf, sz, "entry %zu: ", i + 1);
	return buf;
}

static struct moat_listing as_listing(const struct cd_entry *e)
{
	return (struct moat_listing){ .pfx = e->pfx, .code = e->action, .source = e->source };
}

/* commit_add - the batch's unique entries u applied to d */
static int commit_add(struct cd *d, const struct ent_set *u, struct zm_batch_result *res,
		      char *err, size_t errsz)
{
	struct moat_listing *add = malloc((u->n ? u->n : 1) * sizeof(*add));
	struct moat_listing *del = malloc((u->n ? u->n : 1) * sizeof(*del));
	size_t nadd = 0, ndel = 0;
	int r = -ENOMEM;

	if (!add || !del)
		goto out;
	for (size_t i = 0; i < u->n; i++) {
		ssize_t old = zm_entries_find(d, &u->e[i].pfx, u->e[i].source);

		if (old >= 0)
			del[ndel++] = as_listing(&d->entries[old]);
		add[nadd++] = as_listing(&u->e[i]);
	}
	/* room first: once the table took the change, d must follow it */
	size_t want = d->nentries + (nadd - ndel);

	if (want > d->capentries) {
		struct cd_entry *ne = realloc(d->entries, want * sizeof(*ne));

		if (!ne)
			goto out;
		d->entries = ne;
		d->capentries = want;
	}
	if (ent_index_reserve(&d->eidx, d->entries, want) < 0)
		goto out;
	r = vt_db_source_apply(d->db, u->n ? u->e[0].source : CD_SRC_OPERATOR, add, nadd, del, ndel,
			       err, errsz);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < u->n; i++)
		zm_entries_put(d, &u->e[i]); /* cannot fail: reserved */
	res->added = nadd - ndel;
	res->replaced = ndel;
out:
	if (r == -ENOMEM)
		snprintf(err, errsz, "out of memory");
	free(add);
	free(del);
	return r;
}

/* commit_del - every entry of u (each present) removed from d */
static int commit_del(struct cd *d, const struct ent_set *u, struct zm_batch_result *res,
		      char *err, size_t errsz)
{
	struct moat_listing *del = malloc((u->n ? u->n : 1) * sizeof(*del));
	int r;

	if (!del) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < u->n; i++)
		del[i] = as_listing(&d->entries[zm_entries_find(d, &u->e[i].pfx, u->e[i].source)]);
	r = vt_db_source_apply(d->db, u->n ? u->e[0].source : CD_SRC_OPERATOR, NULL, 0, del, u->n,
			       err, errsz);
	free(del);
	if (r < 0)
		return r;
	for (size_t i = 0; i < u->n; i++)
		zm_entries_remove(d, (size_t)zm_entries_find(d, &u->e[i].pfx, u->e[i].source));
	res->removed = u->n;
	return 0;
}

/*
 * zm_batch_commit - apply a staged batch as one: checked, applied to the
 * table, published once, appended to the journal once.  0, or -errno with
 * a message naming the line in err and nothing changed (-ENOENT: a delete
 * of an absent entry, -EEXIST: a delete named twice).
 */
int zm_batch_commit(struct cd *d, struct cd_batch *b, struct zm_batch_result *res,
		    char *err, size_t errsz)
{
	double t0 = moat_clock_ms();
	struct ent_set u = { 0 };
	char wb[CD_BATCH_LINE + 16], pb[64];
	int r = 0;

	*res = (struct zm_batch_result){ .staged = b->n };
	for (size_t i = 0; i < b->n && r == 0; i++) {
		const struct cd_entry *e = &b->e[i];

		if (b->del && zm_entries_find(d, &e->pfx, e->source) < 0) {
			snprintf(err, errsz, "%sno %s entry for %s", where(b, i, wb, sizeof(wb)),
				 zm_source_name(d, e->source), moat_prefix_str(&e->pfx, pb, sizeof(pb)));
			r = -ENOENT;
		} else if (b->del && ent_index_find(&u.x, u.e, &e->pfx, e->source) >= 0) {
			snprintf(err, errsz, "%s%s is named twice in the batch",
				 where(b, i, wb, sizeof(wb)), moat_prefix_str(&e->pfx, pb, sizeof(pb)));
			r = -EEXIST;
		} else if (ent_set_put(&u, e) < 0) {
			snprintf(err, errsz, "out of memory");
			r = -ENOMEM;
		}
	}
	if (r == 0)
		r = b->del ? commit_del(d, &u, res, err, errsz) : commit_add(d, &u, res, err, errsz);
	if (r == 0 && u.n) {
		zm_publish(d, "operator");
		persist_entries_append(d, b->del, u.e, u.n);
	}
	res->ms = moat_clock_ms() - t0;
	if (r == 0)
		log_info("event=entry-batch op=%s source=%s staged=%zu added=%zu replaced=%zu "
			 "removed=%zu ms=%.1f", b->del ? "del" : "add", zm_source_name(d, b->source),
			 b->n, res->added, res->replaced, res->removed, res->ms);
	else {
		char esc[512]; /* err names the client's line */

		log_escape(esc, sizeof(esc), err, strlen(err));
		log_warn("event=entry-batch op=%s source=%s staged=%zu result=refused error=\"%s\" "
			 "(nothing of the batch applied)", b->del ? "del" : "add",
			 zm_source_name(d, b->source), b->n, esc);
	}
	ent_set_free(&u);
	return r;
}
