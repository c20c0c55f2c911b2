/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_cd.c - see fuzz_cd.h.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_cd.h"
#include "prefix.h"

/* rm_one - nftw callback: a file, or a directory already emptied */
static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

void fuzz_rm_tree(const char *dir)
{
	if (dir && dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int fuzz_prefix_ok(const struct moat_prefix *p)
{
	char buf[MOAT_PREFIX_STRLEN];
	struct moat_prefix q;

	if ((p->family != MOAT_AF_INET && p->family != MOAT_AF_INET6) ||
	    p->plen > (p->family == MOAT_AF_INET ? 32 : 128) || p->pad[0] || p->pad[1])
		return 0;
	if (moat_prefix_parse(moat_prefix_str(p, buf, sizeof(buf)), &q) != 0)
		return 0; /* -EDOM: host bits set */
	return memcmp(p, &q, sizeof(q)) == 0;
}

const char *fuzz_entries_check(struct cd *d)
{
	size_t nsrc[3] = { 0 };

	for (size_t i = 0; i < d->nentries; i++) {
		const struct cd_entry *e = &d->entries[i];

		if (zm_entries_find(d, &e->pfx, e->source) != (ssize_t)i)
			return "an entry not found where the index says";
		if (!fuzz_prefix_ok(&e->pfx))
			return "an entry whose prefix is not canonical";
		if (e->action != MOAT_ACT_DROP && e->action != MOAT_ACT_TARPIT &&
		    e->action != MOAT_ACT_ALLOW)
			return "an entry with an action other than drop, tarpit or allow";
		if (e->source != CD_SRC_OPERATOR && e->source != CD_SRC_SMTP)
			return "an entry of a source other than operator or smtp";
		if (!memchr(e->reason, 0, sizeof(e->reason)))
			return "a reason without its end";
		nsrc[e->source]++;
	}
	for (uint16_t s = CD_SRC_OPERATOR; s <= CD_SRC_SMTP; s++) {
		struct moat_listing *l = NULL;
		size_t n = 0;
		int r = vt_db_source_dump(d->db, s, &l, &n);
		const char *bad = NULL;

		if (r == -ENOENT)
			n = 0;
		else if (r < 0)
			return "vt_db_source_dump failed";
		if (n != nsrc[s])
			bad = "the table holds another number of entries than the daemon";
		for (size_t k = 0; !bad && k < n; k++) {
			ssize_t i = zm_entries_find(d, &l[k].pfx, s);

			if (l[k].exclude || i < 0 || d->entries[i].action != l[k].code)
				bad = "the table holds an entry the daemon does not, or with another action";
		}
		free(l);
		if (bad)
			return bad;
	}
	return NULL;
}
