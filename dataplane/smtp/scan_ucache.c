/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_ucache.c - the per-thread table of units' hits (scan_ucache.h).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "scan_seen.h"
#include "scan_ucache.h"

struct ent {
	uint64_t gen;
	uint32_t h;
	uint16_t n;     /* unit bytes, after the ids */
	uint8_t kind;
	uint8_t nids;
	unsigned ids[]; /* then the unit's bytes */
};

static atomic_int enabled = 1;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t key;
static _Thread_local struct ent **tab;
static _Thread_local uint64_t st_hits, st_lookups;
static _Thread_local size_t tab_bytes; /* the entries' sizes */

static void tab_free(void *p)
{
	struct ent **t = p;

	for (size_t i = 0; t && i < SCAN_UCACHE_SLOTS; i++)
		free(t[i]);
	free(t);
	tab = NULL; /* this thread's, at its exit: a later use starts anew */
	tab_bytes = 0;
}

static int key_ok;

static void key_init(void)
{
	key_ok = pthread_key_create(&key, tab_free) == 0;
}

/* ent_size - the bytes of entry e */
static size_t ent_size(const struct ent *e)
{
	return sizeof(*e) + e->nids * sizeof(unsigned) + e->n;
}

const unsigned *scan_ucache_get(uint64_t gen, int kind, const char *p, size_t n, uint32_t h,
				size_t *nids)
{
	struct ent *e;

	if (!tab || n > SCAN_UCACHE_UNIT_MAX || !atomic_load_explicit(&enabled, memory_order_relaxed))
		return NULL;
	st_lookups++;
	e = tab[h & (SCAN_UCACHE_SLOTS - 1)];
	if (e && e->gen != gen) { /* an older rule set's: no use any more */
		tab_bytes -= ent_size(e);
		free(e);
		tab[h & (SCAN_UCACHE_SLOTS - 1)] = e = NULL;
	}
	if (!e || e->h != h || e->n != n || e->kind != (unsigned)kind ||
	    memcmp((const char *)(e->ids + e->nids), p, n) != 0)
		return NULL;
	st_hits++;
	*nids = e->nids;
	return e->ids;
}

void scan_ucache_put(uint64_t gen, int kind, const char *p, size_t n, uint32_t h,
		     const unsigned *ids, size_t nids)
{
	struct ent *e, **slot;

	if (n > SCAN_UCACHE_UNIT_MAX || nids > SCAN_UCACHE_IDS_MAX ||
	    !atomic_load_explicit(&enabled, memory_order_relaxed))
		return;
	if (!tab) {
		pthread_once(&key_once, key_init);
		if (!key_ok || !(tab = calloc(SCAN_UCACHE_SLOTS, sizeof(*tab))))
			return; /* without the key the table would outlive its thread */
		pthread_setspecific(key, tab);
	}
	slot = &tab[h & (SCAN_UCACHE_SLOTS - 1)];
	size_t sz = sizeof(*e) + nids * sizeof(unsigned) + n, old = *slot ? ent_size(*slot) : 0;

	if (tab_bytes - old + sz > SCAN_UCACHE_BYTES)
		return; /* full: the slot keeps what it has */
	if (!(e = realloc(*slot, sz))) {
		free(*slot);
		*slot = NULL;
		tab_bytes -= old;
		return;
	}
	tab_bytes += sz - old;
	e->gen = gen;
	e->h = h;
	e->n = (uint16_t)n;
	e->kind = (uint8_t)kind;
	e->nids = (uint8_t)nids;
	if (nids)
		memcpy(e->ids, ids, nids * sizeof(unsigned));
	memcpy((char *)(e->ids + nids), p, n);
	*slot = e;
}

void scan_ucache_enable(int on)
{
	atomic_store(&enabled, on != 0);
}

int scan_ucache_enabled(void)
{
	return atomic_load(&enabled);
}

void scan_ucache_stats(uint64_t *hits, uint64_t *lookups)
{
	*hits = st_hits;
	*lookups = st_lookups;
}
