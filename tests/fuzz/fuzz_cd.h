/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_cd.h - what the fuzz targets that drive moat-controld's own code
 * (fuzz_ctlsrv.c, fuzz_persist.c) share: the checks any daemon state must
 * pass, and removing a target's directory.
 */
#ifndef MOAT_FUZZ_CD_H
#define MOAT_FUZZ_CD_H

#include "controld.h"

/* fuzz_rm_tree - dir and everything under it (links not followed) */
void fuzz_rm_tree(const char *dir);

/* fuzz_prefix_ok - a canonical prefix: a family, a length within it, no
 * padding, and lib's text form parses back to it (no host bits) */
int fuzz_prefix_ok(const struct moat_prefix *p);

/* fuzz_entries_check - d's entries as any state must hold them: each
 * where its index says, a canonical prefix, drop/tarpit/allow, source
 * operator or smtp, a terminated reason; and the table holding exactly
 * them (vt_db_source_dump per source).  NULL, or what is broken. */
const char *fuzz_entries_check(struct cd *d);

#endif /* MOAT_FUZZ_CD_H */
