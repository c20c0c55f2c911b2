/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_meta.c - SpamAssassin metas evaluated over the hit bitmap (scan.h).
 *
 * scan_sa.c turns each meta into a boolean expression over rule tokens:
 * "T<rule>" (a leaf rule, nested metas inlined), "F" (false: an operand
 * SpamAssassin leaves undefined), "!", "&", "|" and parentheses, with
 * precedence ! over & over | (Hyperscan's logical combinations, which
 * evaluated them before).  Each is compiled once at load into a few words
 * of code for one register with short-circuit jumps, and every meta runs
 * once at the end of a message over the final hits: no token buffer, no
 * Hyperscan scan.  A leaf reads as 1 when it hit, so "!x" is "x never
 * matched", as the end-anchored tokens of the combination database made it.
 *
 * Code words: op << 28 | arg.  LD r: v = hit(r); LDC c: v = c; NOT:
 * v = !v; JF t / JT t: jump to word t of this meta when v is 0 / 1.  An
 * AND chain "a & b & c" is a; JF end; b; JF end; c; end: (OR with JT).
 */
#include "scan.h"
#include "scan_rules.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { OP_LD = 0, OP_LDC, OP_NOT, OP_JF, OP_JT };
#define ARG_MAX 0x0fffffffu
#define META_NEST_MAX 4096 /* parentheses and "!" deep; scan_sa.c stays far below */

struct mc {
	const struct scan_db *d;
	const char *p;
	uint32_t *code;   /* d->mcode, grown */
	size_t n, cap;    /* words in code */
	size_t base;      /* this meta's first word */
	int depth;
	int err;
};

/* emit - one word; returns its index (relative to the meta) */
static size_t emit(struct mc *c, unsigned op, size_t arg)
{
	if (!c->err && arg > ARG_MAX)
		c->err = -E2BIG;
	if (!c->err && scan_grow(&c->code, c->n, &c->cap, sizeof(uint32_t)) < 0)
		c->err = -ENOMEM;
	if (c->err)
		return 0;
	c->code[c->n] = (uint32_t)op << 28 | (uint32_t)arg;
	return c->n++ - c->base;
}

/* ws - skip blanks, the next character */
static char ws(struct mc *c)
{
	while (*c->p == ' ' || *c->p == '\t')
		c->p++;
	return *c->p;
}

static void or_chain(struct mc *c);

/* unary - "!" unary | "(" or ")" | "T" digits | "F" */
static void unary(struct mc *c)
{
	char ch = ws(c);

	if (c->err)
		return;
	if (++c->depth > META_NEST_MAX) {
		c->err = -EINVAL;
		return;
	}
	if (ch == '!') {
		c->p++;
		unary(c);
		emit(c, OP_NOT, 0);
	} else if (ch == '(') {
		c->p++;
		or_chain(c);
		if (ws(c) != ')')
			c->err = c->err ? c->err : -EINVAL;
		else
			c->p++;
	} else if (ch == 'T' && c->p[1] >= '0' && c->p[1] <= '9') {
		char *end;
		unsigned long r = strtoul(c->p + 1, &end, 10);

		c->p = end;
		if (r >= c->d->nrules || c->d->rules[r].scope == SCOPE_META)
			c->err = -EINVAL; /* a leaf is a rule, never a meta */
		else
			emit(c, OP_LD, r);
	} else if (ch == 'F') {
		c->p++;
		emit(c, OP_LDC, 0);
	} else {
		c->err = -EINVAL;
	}
	c->depth--;
}

/* chain - operand (OP operand)*: "&" over unary (and), "|" over "&" chains */
static void chain(struct mc *c, int and)
{
	size_t jumps[64], nj = 0;

	and ? unary(c) : chain(c, 1);
	while (!c->err && ws(c) == (and ? '&' : '|')) {
		c->p++;
		size_t j = emit(c, and ? OP_JF : OP_JT, 0); /* target patched below */

		if (nj == sizeof(jumps) / sizeof(jumps[0])) { /* patch what we have: jump to the next jump */
			for (size_t i = 0; i < nj; i++)
				c->code[c->base + jumps[i]] |= (uint32_t)j;
			nj = 0;
		}
		jumps[nj++] = j;
		and ? unary(c) : chain(c, 1);
	}
	size_t end = c->n - c->base; /* past the last operand */
	for (size_t i = 0; !c->err && i < nj; i++) {
		if (end > ARG_MAX)
			c->err = -E2BIG;
		else
			c->code[c->base + jumps[i]] |= (uint32_t)end;
	}
}

static void or_chain(struct mc *c)
{
	chain(c, 0);
}

/* meta_index - after the ncode words of code, in the same allocation:
 * mlo[nrules + 1] and mlist (the metas reading rule r, each once, are
 * mlist[mlo[r]..mlo[r + 1])), then mempty (bit k: meta k is true when no
 * rule hit).  A meta none of whose rules hit has that value, so a message
 * evaluates only the metas its hits touch (scan.c meta_eval) */
static int meta_index(struct scan_db *d, size_t ncode)
{
	size_t nr = d->nrules, nm = d->nmetas, nref = 0, ew = nm / 32 + 1;
	uint32_t *seen = malloc((nr + 1) * sizeof(uint32_t));
	uint32_t *cur = malloc((nr + 1) * sizeof(uint32_t));
	uint64_t *zero = calloc(nr / 64 + 1, sizeof(uint64_t));
	uint32_t *x, *lo, *list, *empty;
	int rc = -ENOMEM;

	if (!seen || !cur || !zero)
		goto out;
	for (int pass = 0; pass < 3; pass++) {
		for (size_t r = 0; r < nr; r++)
			seen[r] = UINT32_MAX;
		for (size_t k = 0; k < nm; k++)
			for (size_t pc = d->moff[k]; pc < d->moff[k + 1]; pc++) {
				uint32_t w = d->mcode[pc], r = w & ARG_MAX;

				if (w >> 28 != OP_LD || seen[r] == k)
					continue;
				seen[r] = (uint32_t)k;
				if (pass == 0)
					nref++;
				else if (pass == 1)
					lo[r + 1]++;
				else
					list[cur[r]++] = (uint32_t)k;
			}
		if (pass == 0) { /* room for the index after the code */
			if (ncode + nr + 1 + nref + ew > ARG_MAX) {
				rc = -E2BIG;
				goto out;
			}
			if (!(x = realloc(d->mcode, (ncode + nr + 1 + nref + ew) * sizeof(uint32_t))))
				goto out;
			d->mcode = x;
			lo = x + ncode;
			list = lo + nr + 1;
			empty = list + nref;
			memset(lo, 0, (nr + 1 + nref + ew) * sizeof(uint32_t));
		} else if (pass == 1) { /* counts to starts */
			for (size_t r = 1; r <= nr; r++)
				lo[r] += lo[r - 1];
			memcpy(cur, lo, (nr + 1) * sizeof(uint32_t));
		}
	}
	for (size_t k = 0; k < nm; k++)
		if (scan_meta_eval(d, k, zero))
			empty[k / 32] |= 1u << (k % 32);
	d->mlo = lo;
	d->mlist = list;
	d->mempty = empty;
	rc = 0;
out:
	free(seen);
	free(cur);
	free(zero);
	return rc;
}

/* scan_meta_build - compile every SCOPE_META rule of d (scan.h) */
int scan_meta_build(struct scan_db *d)
{
	struct mc c = { .d = d };
	size_t k = 0;

	for (size_t i = 0; i < d->nrules; i++)
		k += d->rules[i].scope == SCOPE_META;
	if (!k)
		return 0;
	if (!(d->metas = calloc(k, sizeof(*d->metas))) ||
	    !(d->moff = calloc(k + 1, sizeof(*d->moff))))
		return -ENOMEM;
	for (size_t i = 0; i < d->nrules; i++) {
		const struct scan_rule *r = &d->rules[i];

		if (r->scope != SCOPE_META || r->dead)
			continue;
		c.p = r->pattern ? r->pattern : "";
		c.base = c.n;
		or_chain(&c);
		if (!c.err && ws(&c) != 0)
			c.err = -EINVAL;
		if (c.err) {
			free(c.code);
			d->meta_bad = i;
			return c.err;
		}
		d->metas[d->nmetas] = (unsigned)i;
		d->moff[++d->nmetas] = c.n;
	}
	d->mcode = c.code;
	return meta_index(d, c.n);
}

/* scan_meta_eval - meta k of d over hits (scan.h) */
int scan_meta_eval(const struct scan_db *d, size_t k, const uint64_t *hits)
{
	const uint32_t *code = d->mcode + d->moff[k];
	size_t n = d->moff[k + 1] - d->moff[k];
	int v = 0;

	for (size_t pc = 0; pc < n;) {
		uint32_t w = code[pc], arg = w & ARG_MAX;

		switch (w >> 28) {
		case OP_LD:
			v = (int)(hits[arg / 64] >> (arg % 64) & 1);
			break;
		case OP_LDC:
			v = (int)arg;
			break;
		case OP_NOT:
			v = !v;
			break;
		case OP_JF:
			if (!v) {
				pc = arg;
				continue;
			}
			break;
		case OP_JT:
			if (v) {
				pc = arg;
				continue;
			}
			break;
		}
		pc++;
	}
	return v;
}
