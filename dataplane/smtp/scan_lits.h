/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_lits.h - required literals of a regular expression (scan_lits.c):
 * the cheap Hyperscan superset of a body, rawbody or uri rule that PCRE2
 * then confirms on the unit (scan_rules.c, docs/content-gate.md).
 */
#ifndef MOAT_SMTP_SCAN_LITS_H
#define MOAT_SMTP_SCAN_LITS_H

#include <stddef.h>

/* scan_lits - a Hyperscan expression "(?:l1|l2|...)" of literals, one of
 * which every match of expr (PCRE syntax) contains; with caseless the
 * literals are lower case and the result is meant for HS_FLAG_CASELESS.
 * NULL when no such set is known whose every literal has min_len bytes or
 * more, when expr uses syntax the walk does not understand, or on ENOMEM
 * (malloc'd). */
char *scan_lits(const char *expr, int caseless, size_t min_len);

/* scan_lits_avoid - scan_lits, choosing among the sets expr requires one
 * of whose literals none occurs (case-insensitively) in any string of
 * avoid (NULL-terminated; NULL: none), e.g. ordinary URIs for a set that
 * such URIs do not hold; NULL when there is none */
char *scan_lits_avoid(const char *expr, int caseless, size_t min_len, const char *const *avoid);

/* scan_ascii_only - expr (PCRE syntax) as it reads text without a byte
 * past 0x7f: class members and literals past \x7f removed, with the
 * branches that needed one (scan_ascii.c).  On such text it matches exactly
 * where expr does.  NULL when it cannot match such text at all, or (*oom
 * set) on ENOMEM (malloc'd). */
char *scan_ascii_only(const char *expr, int *oom);

#endif /* MOAT_SMTP_SCAN_LITS_H */
