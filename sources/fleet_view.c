/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fleet_view.c - the addresses a consumer keeps from a fleet zone and when
 * each one's exp= comes (fleet_view.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleet_view.h"

struct slot {
	struct moat_prefix p; /* family 0: empty */
	time_t exp;
};

struct due {
	time_t exp;
	struct moat_prefix p;
};

struct moat_fleet_view {
	struct slot *t;
	size_t cap, n;   /* cap: a power of two, n < cap * 3 / 4 */
	struct due *h;
	size_t hn, hcap;
};

/* hash - FNV-1a over family, length and address */
static size_t hash(const struct moat_prefix *p, size_t cap)
{
	uint32_t h = 2166136261u;

	h = (h ^ p->family) * 16777619u;
	h = (h ^ p->plen) * 16777619u;
	for (size_t i = 0; i < 16; i++)
		h = (h ^ p->addr[i]) * 16777619u;
	return h & (cap - 1);
}

static int same(const struct moat_prefix *a, const struct moat_prefix *b)
{
	return a->family == b->family && a->plen == b->plen && !memcmp(a->addr, b->addr, 16);
}

/* find - the slot of p, or the empty one where it would go */
static size_t find(const struct moat_fleet_view *v, const struct moat_prefix *p)
{
	size_t i = hash(p, v->cap);

	while (v->t[i].p.family && !same(&v->t[i].p, p))
		i = (i + 1) & (v->cap - 1);
	return i;
}

static int grow(struct moat_fleet_view *v)
{
	size_t cap = v->cap ? v->cap * 2 : 1024;
	struct slot *old = v->t, *t = calloc(cap, sizeof(*t));
	size_t ocap = v->cap;

	if (!t)
		return -ENOMEM;
	v->t = t;
	v->cap = cap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].p.family)
			v->t[find(v, &old[i].p)] = old[i];
	free(old);
	return 0;
}

struct moat_fleet_view *moat_fleet_view_new(void)
{
	struct moat_fleet_view *v = calloc(1, sizeof(*v));

	if (v && grow(v) < 0) {
		free(v);
		return NULL;
	}
	return v;
}

void moat_fleet_view_free(struct moat_fleet_view *v)
{
	if (!v)
		return;
	free(v->t);
	free(v->h);
	free(v);
}

void moat_fleet_view_clear(struct moat_fleet_view *v)
{
	memset(v->t, 0, v->cap * sizeof(*v->t));
	v->n = 0;
	v->hn = 0;
}

size_t moat_fleet_view_size(const struct moat_fleet_view *v)
{
	return v->n;
}

/* heap_up, heap_down - restore the min-heap order from i */
static void heap_up(struct due *h, size_t i)
{
	while (i) {
		size_t up = (i - 1) / 2;
		struct due x;

		if (h[up].exp <= h[i].exp)
			break;
		x = h[up];
		h[up] = h[i];
		h[i] = x;
		i = up;
	}
}

static void heap_down(struct due *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		struct due x;

		if (l < n && h[l].exp < h[m].exp)
			m = l;
		if (l + 1 < n && h[l + 1].exp < h[m].exp)
			m = l + 1;
		if (m == i)
			return;
		x = h[m];
		h[m] = h[i];
		h[i] = x;
		i = m;
	}
}

/* live - is heap entry d the address's current time? */
static int live(const struct moat_fleet_view *v, const struct due *d)
{
	time_t exp;

	return moat_fleet_view_get(v, &d->p, &exp) && exp == d->exp;
}

/* purge - drop stale heap entries (more of them than live addresses) */
static void purge(struct moat_fleet_view *v)
{
	size_t k = 0;

	for (size_t i = 0; i < v->hn; i++)
		if (live(v, &v->h[i]))
			v->h[k++] = v->h[i];
	v->hn = k;
	for (size_t i = k / 2; i-- > 0;)
		heap_down(v->h, v->hn, i);
}

int moat_fleet_view_set(struct moat_fleet_view *v, const struct moat_prefix *addr, time_t exp)
{
	size_t i;

	if ((v->n + 1) * 4 > v->cap * 3 && grow(v) < 0)
		return -ENOMEM;
	i = find(v, addr);
	if (v->t[i].p.family && v->t[i].exp == exp)
		return 0;
	if (!v->t[i].p.family) {
		v->t[i].p = *addr;
		v->n++;
	}
	v->t[i].exp = exp;
	if (!exp)
		return 0;
	if (v->hn > 2 * v->n + 1024)
		purge(v);
	if (v->hn == v->hcap) {
		size_t cap = v->hcap ? v->hcap * 2 : 1024;
		struct due *h = realloc(v->h, cap * sizeof(*h));

		if (!h) {
			/* kept without its time: a full filter must follow */
			moat_fleet_view_del(v, addr);
			return -ENOMEM;
		}
		v->h = h;
		v->hcap = cap;
	}
	v->h[v->hn] = (struct due){ exp, *addr };
	heap_up(v->h, v->hn++);
	return 0;
}

void moat_fleet_view_del(struct moat_fleet_view *v, const struct moat_prefix *addr)
{
	size_t i = find(v, addr), j = i;

	if (!v->t[i].p.family)
		return;
	v->t[i].p.family = 0;
	v->n--;
	/* backward shift: move later members of the run into the hole */
	for (;;) {
		j = (j + 1) & (v->cap - 1);
		if (!v->t[j].p.family)
			return;
		size_t home = hash(&v->t[j].p, v->cap);

		/* j stays when its home lies cyclically in (i, j] */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		v->t[i] = v->t[j];
		v->t[j].p.family = 0;
		i = j;
	}
}

int moat_fleet_view_get(const struct moat_fleet_view *v, const struct moat_prefix *addr,
			time_t *exp)
{
	size_t i = find(v, addr);

	if (!v->t[i].p.family)
		return 0;
	*exp = v->t[i].exp;
	return 1;
}

time_t moat_fleet_view_next(const struct moat_fleet_view *v)
{
	return v->hn ? v->h[0].exp : 0;
}

int moat_fleet_view_pop_due(struct moat_fleet_view *v, time_t now, struct moat_prefix *addr,
			    time_t *exp)
{
	while (v->hn && v->h[0].exp <= now) {
		struct due d = v->h[0];

		v->h[0] = v->h[--v->hn];
		heap_down(v->h, v->hn, 0);
		if (!live(v, &d))
			continue;
		*addr = d.p;
		*exp = d.exp;
		return 1;
	}
	return 0;
}
