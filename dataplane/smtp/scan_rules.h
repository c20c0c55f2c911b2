/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_rules.h - inside the content gate (libmoatscan) only: what the rules
 * compiler (scan_rules.c) lends the SpamAssassin importer (scan_sa.c), and
 * the importer's one entry.  The engine and the tools use scan.h.
 */
#ifndef MOAT_SMTP_SCAN_RULES_H
#define MOAT_SMTP_SCAN_RULES_H

#include <stddef.h>

#include "scan.h"

/* scan_errf - format an error message into err (NULL or 0 size: none) */
void scan_errf(char *err, size_t errsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* scan_strndup - the first n bytes of s, NUL-terminated; NULL on ENOMEM */
char *scan_strndup(const char *s, size_t n);
/* scan_srcloc - "file:line", malloc'd; NULL on ENOMEM */
char *scan_srcloc(const char *file, unsigned line);
/* scan_grow - room for one more element in the array *pv of n elements
 * (capacity *cap, doubling); 0 or -ENOMEM */
int scan_grow(void *pv, size_t n, size_t *cap, size_t size);
/* a growing NUL-terminated string; oom once an append could not grow it
 * (later appends are dropped, the text so far kept) */
struct scan_str {
	char *p;
	size_t len, cap;
	int oom;
};
/* scan_str_add - append n bytes of s (n 0: p becomes a valid empty
 * string); on ENOMEM sets oom instead of failing */
void scan_str_add(struct scan_str *b, const char *s, size_t n);
/* scan_rule_add - append a zeroed rule to d; NULL on ENOMEM */
struct scan_rule *scan_rule_add(struct scan_db *d);
/* scan_rule_free - release one rule's strings (not the rule) */
void scan_rule_free(struct scan_rule *r);
/* scan_find_rule - index of rule id in d, -1 if none (linear: load time) */
long scan_find_rule(const struct scan_db *d, const char *id);
/* scan_widen - a superset of expr for a prefilter (malloc'd, NULL on
 * ENOMEM): every bounded repeat {m,n} outside character classes and
 * lookarounds becomes {m,} (Hyperscan's bounded-repeat engines are what
 * the imported prefilter rules cost), and with drop_last a quantifier
 * {m}, {m,} or {m,n} (m >= 1) closing the whole expression is dropped
 * (one iteration: a match of X{3} starts with a match of X).  *exact is
 * set when expr has no lookaround, backreference, atomic group or verb,
 * i.e. when Hyperscan may compile the result exactly */
char *scan_widen(const char *expr, int drop_last, int *exact);
/* scan_reverse - expr read backwards (malloc'd): it matches the reversed
 * text of each match of expr, so a scan of the reversed unit finds where
 * matches of expr start.  NULL when expr holds what the rewrite does not
 * model (anchors, lookarounds, backreferences, atomic groups, verbs,
 * \Q..\E, \K, octal and control escapes, possessive quantifiers,
 * unscoped or extended-mode flags, nesting past 64) or on ENOMEM */
char *scan_reverse(const char *expr);
/* scan_aside - expr repeats a group SCAN_ASIDE_REPEAT times or more
 * ("(...){6}"): its ASCII body form goes to SDB_BODY_ASIDE (scan.h) */
#define SCAN_ASIDE_REPEAT 5

/* the shortest gate literal of a uri rule (scan_rule.gate, mark_gate):
 * shorter ones (".php", "cgi") are in too many URIs to gate by */
#define SCAN_GATE_MIN 5
int scan_aside(const char *expr);
/* scan_skel - expr (PCRE syntax; caseless: HS_FLAG_CASELESS) projected on
 * a line's skeleton, its bytes [A-Za-z0-9] in order (scan_skel.c): every
 * match of expr in a line that holds no byte of lack (256 flags, NULL:
 * any line) gives a match of the result in the line's skeleton.  Only for
 * an expr with a gap, an optional run of any byte but [A-Za-z0-9]
 * ("[_\W]{0,3}"); *minlen is then the result's least length, otherwise
 * SCAN_SKEL_NONE (no gap, syntax not read there, ENOMEM) or
 * SCAN_SKEL_NEVER (it cannot match such a line) with NULL (malloc'd). */
#define SCAN_SKEL_NONE (-2)
#define SCAN_SKEL_NEVER (-1)
char *scan_skel(const char *expr, int caseless, const unsigned char *lack, int *minlen);
/* scan_skel_bytes - add to set the bytes outside [A-Za-z0-9] of expr's
 * items that also match letters or digits, where they are few ("[i1!|l]":
 * '!', '|'): on a line without them such an item reads as its letters and
 * digits.  0, or -1 when the syntax is not read there */
int scan_skel_bytes(const char *expr, int caseless, unsigned char set[256]);

/* scan_validate - can Hyperscan compile expr with flags?  0, or -1 with
 * Hyperscan's message in msg */
int scan_validate(const char *expr, unsigned flags, char *msg, size_t msgsz);
/* scan_next_word - split off the next blank-separated word of *pp (NUL
 * written after it); NULL at the end */
char *scan_next_word(char **pp);

/* scan_sa_load - import every *.cf of dir into d (scan_sa.c); compile
 * verdicts are remembered under cache_dir when not NULL.  0 or -errno with
 * err set; rules it cannot express become d's skips, not errors. */
int scan_sa_load(struct scan_db *d, const char *dir, const char *cache_dir, char *err,
		 size_t errsz);

#endif /* MOAT_SMTP_SCAN_RULES_H */
