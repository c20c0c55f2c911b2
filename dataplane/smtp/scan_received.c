/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_received.c - SpamAssassin's Received parser (scan_received.h).
 *
 * parse_received_line is a long chain of Perl regular expressions, each
 * recognising one MTA's format; it is followed here test by test, in the
 * same order, with the same expressions run through PCRE2 (Perl's own
 * IP_ADDRESS, IP_PRIVATE and LOCALHOST of Mail::SpamAssassin::Constants,
 * as Perl stringifies them), so which relay a line yields, or whether it
 * is skipped or unparseable, is SpamAssassin's answer.  A relay's fields
 * are Perl variables that keep what a failed branch set before it fell
 * through, as in the Perl.
 */
#include "scan_received.h"

#include "log.h"
#include "scan.h"
#include "scan_lits.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define SA_IP_ADDRESS \
	"(?^ix:(?:\\b(?<!:)(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]\\d|\\d)\\.(?:1\\d\\d|2[0-4]\\d|" \
	"25[0-5]|[1-9]\\d|\\d)\\.(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]\\d|\\d)\\.(?:1\\d\\d|2[0-" \
	"4]\\d|25[0-5]|[1-9]\\d|\\d)\\b|(?:IPv6:|(?<![a-f0-9:]))(?:(?:(?:[a-f0-9]{1,4}:){6}|:" \
	":(?:[a-f0-9]{1,4}:){0,5}|(?:[a-f0-9]{1,4}:){1,5}:|[a-f0-9]{1,4}::(?:[a-f0-9]{1,4}:){" \
	"1,4}|(?:[a-f0-9]{1,4}:){2}:(?:[a-f0-9]{1,4}:){1,3}|(?:[a-f0-9]{1,4}:){3}:(?:[a-f0-9]" \
	"{1,4}:){1,2}|(?:[a-f0-9]{1,4}:){4}:[a-f0-9]{1,4}:)(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]" \
	"\\d|\\d)\\.(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]\\d|\\d)\\.(?:1\\d\\d|2[0-4]\\d|25[0-5]" \
	"|[1-9]\\d|\\d)\\.(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]\\d|\\d)|(?:[a-f0-9]{1,4}:){7}[a-" \
	"f0-9]{1,4}|:(?::[a-f0-9]{1,4}){1,7}|(?:[a-f0-9]{1,4}:){1,7}:|[a-f0-9]{1,4}:(?::[a-f0" \
	"-9]{1,4}){1,6}|(?:[a-f0-9]{1,4}:){2}(?::[a-f0-9]{1,4}){1,5}|(?:[a-f0-9]{1,4}:){3}(?:" \
	":[a-f0-9]{1,4}){1,4}|(?:[a-f0-9]{1,4}:){4}(?::[a-f0-9]{1,4}){1,3}|(?:[a-f0-9]{1,4}:)" \
	"{5}(?::[a-f0-9]{1,4}){1,2}|(?:[a-f0-9]{1,4}:){6}:[a-f0-9]{1,4}|::)(?![a-f0-9:])))"
#define SA_IP_PRIVATE \
	"(?^ix:^(?:(?:10|127|169\\.254|172\\.(?:1[6-9]|2[0-9]|3[01])|192\\.168|100\\.(?:6[4-9" \
	"]|[7-9][0-9]|1[01][0-9]|12[0-7]))\\..*|(?:(?:IPv6:|(?<![a-f0-9:]))(?:(?:(?:0{1,4}:){" \
	"5}ffff:|::(?:0{1,4}:){0,4}ffff:|(?:0{1,4}:){1,4}:ffff:|0{1,4}::(?:0{1,4}:){1,3}ffff:" \
	"|(?:0{1,4}:){2}:0{1,2}:ffff:|(?:0{1,4}:){3}:0:ffff:|(?:0{1,4}:){4}:ffff:)(?:10|127|1" \
	"69\\.254|172\\.(?:1[6-9]|2[0-9]|3[01])|192\\.168|100\\.(?:6[4-9]|[7-9][0-9]|1[01][0-" \
	"9]|12[0-7]))\\..*|fe[89ab][0-9a-f]:.*|(?:0{1,4}:){7}0{0,3}1|:(?::0{1,4}){0,6}:0{0,3}" \
	"1|0{1,4}:(?::0{1,4}){0,5}:0{0,3}1|(?:0{1,4}:){2}(?::0{1,4}){0,4}:0{0,3}1|(?:0{1,4}:)" \
	"{3}(?::0{1,4}){0,3}:0{0,3}1|(?:0{1,4}:){4}(?::0{1,4}){0,2}:0{0,3}1|(?:0{1,4}:){5}(?:" \
	":0{1,4}){0,1}:0{0,3}1|(?:0{1,4}:){6}:0{0,3}1)(?![a-f0-9:]))))"
#define SA_LOCALHOST \
	"(?^ix:(?:localhost(?:\\.localdomain)?|\\b(?<!:)127\\.0\\.0\\.1\\b|(?:IPv6:|(?<![a-f0" \
	"-9:]))(?:(?:(?:0{1,4}:){5}ffff:|::(?:0{1,4}:){0,4}ffff:|(?:0{1,4}:){1,4}:ffff:|0{1,4" \
	"}::(?:0{1,4}:){1,3}ffff:|(?:0{1,4}:){2}:0{1,2}:ffff:|(?:0{1,4}:){3}:0:ffff:|(?:0{1,4" \
	"}:){4}:ffff:)127\\.0\\.0\\.1|(?:0{1,4}:){7}0{0,3}1|:(?::0{1,4}){0,6}:0{0,3}1|0{1,4}:" \
	"(?::0{1,4}){0,5}:0{0,3}1|(?:0{1,4}:){2}(?::0{1,4}){0,4}:0{0,3}1|(?:0{1,4}:){3}(?::0{" \
	"1,4}){0,3}:0{0,3}1|(?:0{1,4}:){4}(?::0{1,4}){0,2}:0{0,3}1|(?:0{1,4}:){5}(?::0{1,4}){" \
	"0,1}:0{0,3}1|(?:0{1,4}:){6}:0{0,3}1)(?![a-f0-9:])))"

#define GATE_LIT_MIN 3 /* bytes: the gate's literals, at least */
#define IPA SA_IP_ADDRESS
#define LH SA_LOCALHOST
#define FLD 512

/* one line's parse: the line (rewritten as the Perl rewrites $_) and the
 * relay's variables */
struct rp {
	char s[4096];
	size_t n;
	const char *subj; /* the subject of the last match */
	PCRE2_SIZE ov[20];
	char ip[FLD], helo[FLD], rdns[FLD], by[FLD], id[FLD], ident[FLD], envfrom[FLD], auth[FLD];
	int has_envfrom, dns;
	char qms_env_from[FLD]; /* qmail-scanner's envelope-from, for the next line */
	int has_qms, pop_sig;
	pcre2_match_data *md; /* for every match of the parse */
	/* the gate's answer for the line (gate_scan): bit k clear when site
	 * k's pattern cannot match it.  may_ok 1: valid; 0: not computed
	 * (line_changed); -1: no gate, every pattern runs */
	uint64_t may[(256 + 2 * 128) / 64];
	int may_ok;
};

enum { RC_MAX = 256 + 2 * 128 }; /* RX() call sites, then steps[] */

/* every RX()/RXS() call site's pattern, kept by the linker in section
 * moat_rx (__start_/__stop_moat_rx) so that sa_relays_compile() finds them
 * all without running the parse; line: RX (on the line itself) */
struct rx_site {
	int k, line;
	const char *pat;
};
extern const struct rx_site __start_moat_rx[], __stop_moat_rx[];
_Static_assert(sizeof(((struct rp *)0)->may) * 8 == RC_MAX, "rp.may: a bit per site");
static pcre2_code *rc_code[RC_MAX];
/* a site whose pattern is a plain string (" by ", " \\(Postfix\\) with"):
 * that string, found with memmem rather than a PCRE2 call (a call costs
 * some 300 cycles, most of them before the search starts) */
static char *rc_lit[RC_MAX];
static size_t rc_litlen[RC_MAX];
static int rc_failed[RC_MAX];
static pthread_mutex_t rc_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t mctx_once = PTHREAD_ONCE_INIT;
static pcre2_match_context *mctx;

static void mctx_init(void)
{
	mctx = pcre2_match_context_create(NULL);
	if (mctx)
		pcre2_set_match_limit(mctx, SA_MATCH_LIMIT);
}

pcre2_match_context *sa_match_ctx(void)
{
	pthread_once(&mctx_once, mctx_init);
	return mctx;
}

/* lit_of - the string pattern pat matches when it is one (no
 * metacharacter; a backslash before punctuation quotes it), else NULL */
static char *lit_of(const char *pat, size_t *len)
{
	size_t n = strlen(pat), k = 0;
	char *o = malloc(n + 1);

	for (size_t i = 0; o && i < n; i++) {
		unsigned char c = (unsigned char)pat[i];

		if (c == '\\' && i + 1 < n && !isalnum((unsigned char)pat[i + 1]) &&
		    (unsigned char)pat[i + 1] < 0x80) {
			o[k++] = pat[++i];
		} else if (strchr("\\^$.|?*+()[]{}", c) || c >= 0x80) {
			free(o);
			return NULL;
		} else {
			o[k++] = (char)c;
		}
	}
	if (o && !k) {
		free(o);
		return NULL;
	}
	*len = k;
	return o;
}

/* rc_compile - call site k's pattern, compiled once by the first thread
 * to need it (sa_relays_compile: all of them at load), with its string
 * when it is one (rc_lit); NULL when PCRE2 refuses it */
static pcre2_code *rc_compile(int k, const char *pat)
{
	pcre2_code *c = __atomic_load_n(&rc_code[k], __ATOMIC_ACQUIRE);

	if (c)
		return c;
	pthread_mutex_lock(&rc_mu);
	if (!(c = rc_code[k]) && !rc_failed[k]) {
		int ec;
		PCRE2_SIZE eo;

		c = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
		if (c)
			pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);
		else
			rc_failed[k] = 1;
		if (c)
			rc_lit[k] = lit_of(pat, &rc_litlen[k]);
		__atomic_store_n(&rc_code[k], c, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&rc_mu);
	return c;
}

/* ---- the gate: most patterns of the parse do not match most lines (a
 * line runs some forty, each PCRE2 call 200 to 1,700 cycles, most of it
 * before the search starts).  Every pattern that the parse runs on the
 * line itself (RX, steps[]) and that requires one of a set of literals
 * (scan_lits: every match contains one of them) has that set in one
 * Hyperscan database of literals, reported once by its site number.  One
 * scan of the line gives the sites whose literals it holds; rx() skips
 * PCRE2 for the others, whose answer is "no match" for certain.
 *
 * The answer holds for the line it was computed on and for every part of
 * it: the parse only ever cuts the line down (the date cut, the "from "
 * stripped), which removes text and makes none, except where it inserts
 * a blank (")by "): line_changed there and where the whitespace is
 * folded, and the next RX scans again.  The scan costs some 1,300
 * cycles a line (a database of the patterns themselves in prefilter mode
 * cost 17,800 cycles a scan: their automata run over the whole line). */
static hs_database_t *gate_db;
static uint8_t gate_in[RC_MAX]; /* site k's pattern is in gate_db */
static unsigned gate_n;
static pthread_once_t gate_once = PTHREAD_ONCE_INIT;
static pthread_key_t gate_key;
static __thread hs_scratch_t *gate_scratch;

static void gate_scratch_free(void *p)
{
	hs_free_scratch(p);
}

static void gate_init(void);

static int on_may(unsigned int id, unsigned long long from, unsigned long long to,
		  unsigned int flags, void *ctx)
{
	uint64_t *may = ctx;

	(void)from, (void)to, (void)flags;
	may[id / 64] |= 1ull << (id % 64);
	return 0;
}

/* gate_scan - P->may for the line as it stands */
static void gate_scan(struct rp *P)
{
	pthread_once(&gate_once, gate_init);
	P->may_ok = -1;
	if (!gate_db || P->n > UINT32_MAX)
		return;
	if (!gate_scratch) {
		if (hs_alloc_scratch(gate_db, &gate_scratch) != HS_SUCCESS)
			return;
		pthread_setspecific(gate_key, gate_scratch);
	}
	memset(P->may, 0, sizeof(P->may));
	if (hs_scan(gate_db, P->s, (unsigned int)P->n, 0, gate_scratch, on_may, P->may) ==
	    HS_SUCCESS)
		P->may_ok = 1;
}

/* line_changed - the line has text it did not have: the gate's answer is
 * gone (not needed where the line is only cut down) */
static void line_changed(struct rp *P)
{
	P->may_ok = 0;
}

/* may_match - 0 when site k's pattern cannot match the line */
static int may_match(struct rp *P, int k)
{
	if (!P->may_ok)
		gate_scan(P);
	return P->may_ok < 0 || !gate_in[k] || (P->may[k / 64] >> (k % 64) & 1);
}

/* rx - match pattern pat (call site k) in s[0..n): 1 with P->ov, or 0 */
static int rx(struct rp *P, int k, const char *pat, const char *s, size_t n)
{
	pcre2_code *c = rc_compile(k, pat);
	int rc;

	if (s == P->s && !may_match(P, k))
		return 0;
	if (c && rc_lit[k]) { /* set with rc_code[k], before its release */
		const char *f = memmem(s, n, rc_lit[k], rc_litlen[k]);

		if (!f)
			return 0;
		for (int j = 0; j < 20; j++)
			P->ov[j] = PCRE2_UNSET;
		P->ov[0] = (PCRE2_SIZE)(f - s);
		P->ov[1] = P->ov[0] + rc_litlen[k];
		P->subj = s;
		return 1;
	}
	if (!c || (!P->md && !(P->md = pcre2_match_data_create(10, NULL))))
		return 0;
	rc = pcre2_match(c, (PCRE2_SPTR)s, n, 0, 0, P->md, sa_match_ctx());
	if (rc > 0) {
		PCRE2_SIZE *v = pcre2_get_ovector_pointer(P->md);

		for (int j = 0; j < 20; j++)
			P->ov[j] = j < 2 * rc ? v[j] : PCRE2_UNSET;
		P->subj = s;
	}
	return rc > 0;
}

#define RX_SITE(pat, line)                                                                   \
	({                                                                                   \
		static const struct rx_site rx_site_                                          \
			__attribute__((section("moat_rx"), used)) = { __COUNTER__, line, pat }; \
		rx_site_.k;                                                                  \
	})
#define RX(pat) rx(P, RX_SITE(pat, 1), pat, P->s, P->n)
#define RXS(str, pat) rx(P, RX_SITE(pat, 0), pat, str, strlen(str))
#define GOT(i) (P->ov[2 * (i)] != PCRE2_UNSET)

/* G - $i into dst ('' when unset) */
static void cap(const struct rp *P, int i, char *dst)
{
	size_t l = 0;

	if (P->ov[2 * i] != PCRE2_UNSET) {
		l = P->ov[2 * i + 1] - P->ov[2 * i];
		if (l > FLD - 1)
			l = FLD - 1;
		memmove(dst, P->subj + P->ov[2 * i], l);
	}
	dst[l] = 0;
}
#define G(i, f) cap(P, i, P->f)

/* cut - $str =~ s/MATCH// for the last match on str */
static void cut(struct rp *P, char *str)
{
	size_t l = strlen(str);

	memmove(str + P->ov[0], str + P->ov[1], l - P->ov[1] + 1);
}

/* sub_helo_ident - $sub =~ s/helo=(\S+)// and $helo = $1;
 *                  $sub =~ s/ident=(\S*)// and $ident = $1; */
static void sub_helo_ident(struct rp *P, char *sub)
{
	if (RXS(sub, "helo=(\\S+)")) {
		G(1, helo);
		cut(P, sub);
	}
	if (RXS(sub, "ident=(\\S*)")) {
		G(1, ident);
		cut(P, sub);
	}
}

/* strip - s/[\s\000\#\[\]\(\)\<\>\|]/!/gs */
static void strip(char *f)
{
	for (; *f; f++)
		if (strchr(" \t\n\r\f\v#[]()<>|", *f))
			*f = '!';
}

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* the formats of parse_received_line that only pick fields out of one
 * match (each "if (/re/) { $helo = $1; ...; goto enough; }"), in the
 * Perl's order: a run of them ends at an entry with no re.  pre: a quick
 * test the Perl makes first (NULL: none).  map: the field of each group:
 * h helo, r rdns, R both, i ip, b by, d ident, D ident less a trailing "@",
 * - none.  dns: $mta_looked_up_dns set to it (-1: left) */
struct step {
	const char *pre, *re, *map;
	int dns;
};
static const struct step steps[] = {
	{ "\\bwith HTTP\\b", "^(" IPA ") \\(\\[" IPA "\\]\\) by (\\S+)",
	  "ib", -1 },
	{ NULL, NULL, NULL, 0 },
	{ NULL, "^(\\S+) \\((\\S+) \\[(" IPA ")\\]\\) by (\\S+) with \\S+ \\(",
	  "hrib", 1 },
	{ NULL, "^(\\S+) \\(\\[(" IPA ")\\] helo=(\\S+)\\) by (\\S+) with ",
	  "rihb", -1 },
	{ NULL, "^(\\S+) \\(<unknown\\S*>\\[(" IPA ")\\]\\) by (\\S+) ",
	  "hib", -1 },
	{ NULL, "^(\\S+) \\((\\S+\\.\\S+)\\[(" IPA ")\\]\\) by (\\S+) ",
	  "hrib", 1 },
	{ NULL, "^(\\S+) \\((\\S*)\\@\\[(" IPA ")\\].*\\) by (\\S+) \\(",
	  "hdib", 1 },
	{ NULL, NULL, NULL, 0 },
	{ NULL, "^(\\S+) \\(\\[(" IPA ")\\]\\) by (\\S+) via smtpd \\(for \\S+\\) with SMTP\\(",
	  "hib", -1 },
	{ NULL, NULL, NULL, 0 },
	{ " via HTTP$", "^\\[(" IPA ")\\] by (\\S+) via HTTP$",
	  "ib", -1 },
	{ NULL, "^(\\S+) \\( \\[(" IPA ")\\]\\).*? by (\\S+) ",
	  "-ib", -1 },
	{ NULL, "^\\((\\S+) \\[(" IPA ")\\]\\) by (\\S+) ",
	  "hib", -1 },
	{ NULL, "^\\[(" IPA ")\\] by (\\S+) ",
	  "ib", -1 },
	{ NULL, "^\\(\\[?(" IPA ")\\]?\\) by (\\S+) ",
	  "ib", -1 },
	{ NULL, "^(\\S+) \\[(" IPA ")\\] by (\\S+) \\[" IPA "\\] with ",
	  "hib", 1 },
	{ NULL, "^(\\S+) \\[\\((" IPA ")\\)\\] by (\\S+) \\(" IPA "\\) ",
	  "hib", -1 },
	{ NULL, "^(\\S+) \\(\\[(" IPA ")\\]\\) by (\\S+) \\(",
	  "hib", 1 },
	{ NULL, NULL, NULL, 0 },
	{ NULL, "^(\\S+) \\(\\[(" IPA ")(?:[.:]\\d+)?\\]\\).*? by (\\S+) ",
	  "hib", 1 },
	{ NULL, "^(\\S+) \\((\\S+) \\[(" IPA ")\\]\\)(?: \\(authenticated bits=\\d+\\))? by (\\S+) \\(",
	  "hrib", 1 },
	{ NULL, NULL, NULL, 0 },
	{ NULL, "^(\\S+) \\((?:HELO|EHLO) ([^\\)]*)\\) \\((\\S*@)?\\[?(" IPA ")\\]?\\).* by (\\S+) ",
	  "rhDib", 1 },
	{ NULL, "^(\\S+) \\((\\S*@)?\\[?(" IPA ")\\]?\\).* by (\\S+) ",
	  "RDib", 1 },
	{ " with http for ", "^\\[(" IPA ")\\] by (\\S+) with http for ",
	  "ib", -1 },
	{ " via smap ", "^(\\S+)\\((" IPA ")\\) by (\\S+) via smap ",
	  "rib", 1 },
	{ NULL, "^(\\S+)\\((" IPA "), (?:HELO|EHLO) (\\S*)\\) by (\\S+) via smap ",
	  "rihb", 1 },
	{ NULL, NULL, NULL, 0 },
	{ NULL, "^(\\S+) \\((\\S+) \\[(" IPA ")\\]\\) by (\\S+) with ",
	  "hrib", 1 },
	{ NULL, "^(\\S+) \\((?:HELO|EHLO) (\\S*)\\) \\((?:(\\S+)\\@)?(" IPA ").*?\\) by (\\S+) with ",
	  "rhdib", 1 },
	{ NULL, "^\\[(" IPA ")\\] \\((?:account \\S+ )?(?:HELO|EHLO) (\\S*)\\) by (\\S+) \\(",
	  "ihb", -1 },
	{ " \\(CommuniGate Pro", "^(\\S+) \\(\\[(" IPA ")\\] verified\\) by (\\S+) \\(",
	  "Rib", 1 },
	{ NULL, "^\\(\\[(" IPA ")\\]\\) by (\\S+) with ",
	  "ib", -1 },
	{ NULL, "^([^\\d]\\S+) \\((" IPA ")\\) by (\\S+) ",
	  "hib", -1 },
	{ NULL, NULL, NULL, 0 },
	{ NULL, "^(\\S+) \\(\\[(" IPA ")\\] \\[(\\S+)\\]\\) by (\\S+) with ",
	  "hi-b", -1 },
	{ NULL, "^(" IPA ") by (\\S+) with ",
	  "ib", -1 },
	{ NULL, "^(\\S+) \\((\\S+)\\[(" IPA ")\\]\\) by (\\S+) ",
	  "hrib", 1 },
	{ NULL, NULL, NULL, 0 },
	{ NULL, "^(\\S+) \\[(" IPA ")\\] by (\\S+) ",
	  "hib", -1 },
	{ NULL, "^(\\S+)\\((" IPA ")\\) by (\\S+) ",
	  "rib", -1 },
	{ NULL, "^\\[(" IPA ")\\] by (\\S+) \\(MailGate ",
	  "ib", -1 },
	{ NULL, "^(\\S+) \\(unverified \\[(" IPA ")\\]\\) by (\\S+) ",
	  "hib", -1 },
	{ NULL, "^(" IPA ") \\([A-Za-z][^\\)]+\\) by (\\S+) with ",
	  "ib", -1 },
	{ NULL, NULL, NULL, 0 },
	{ NULL, "^(\\S+) \\((?:\\S+\\@)?(" IPA ")\\) by (\\S+) with ",
	  "rib", -1 },
	{ NULL, NULL, NULL, 0 },
	{ NULL, "^(\\S+) \\((\\S+)@(" IPA ") with login\\) by (\\S+\\.yahoo\\.com) with SMTP",
	  "h-ib", -1 },
	{ NULL, NULL, NULL, 0 },
};

/* run - the next run of steps from *t: 1 when one matched (its fields
 * set), *t past the run either way */
static int run(struct rp *P, const struct step **t)
{
	const struct step *s = *t;

	for (; s->re; s++) {
		int k = 256 + 2 * (int)(s - steps);

		if ((s->pre && !rx(P, k, s->pre, P->s, P->n)) || !rx(P, k + 1, s->re, P->s, P->n))
			continue;
		for (int g = 0; s->map[g]; g++) {
			static const char f[] = "hrRibdD";
			char *dst[] = { P->helo, P->rdns, P->rdns, P->ip, P->by, P->ident, P->ident };
			const char *c = strchr(f, s->map[g]);

			if (c)
				cap(P, g + 1, dst[c - f]);
			if (s->map[g] == 'R')
				cap(P, g + 1, P->helo);
			if (s->map[g] == 'D' && P->ident[0] && P->ident[strlen(P->ident) - 1] == '@')
				P->ident[strlen(P->ident) - 1] = 0;
		}
		if (s->dns >= 0)
			P->dns = s->dns;
		while (s->re)
			s++;
		*t = s + 1;
		return 1;
	}
	*t = s + 1;
	return 0;
}

/* clean_envfrom - the Perl's s/^\s*<+// and s/>+\s*$// (both optional), then strip */
static void clean_envfrom(char *e)
{
	char *b = e;
	size_t l;

	while (is_ws(*b))
		b++;
	while (*b == '<')
		b++;
	memmove(e, b, strlen(b) + 1);
	l = strlen(e);
	while (l && is_ws(e[l - 1]))
		l--;
	while (l && e[l - 1] == '>')
		l--;
	e[l] = 0;
	strip(e);
}

/* parse - parse_received_line: 1 parsed (fields in P), 0 skipped,
 * -1 unparseable */
static int parse(struct rp *P)
{
	char sub[FLD];
	char *s = P->s;
	const struct step *t = steps;

	P->ip[0] = P->helo[0] = P->rdns[0] = P->by[0] = P->id[0] = P->ident[0] = 0;
	P->envfrom[0] = P->auth[0] = 0;
	P->has_envfrom = P->dns = 0;

	/* s/\s+/ /g; s/^ //; s/ $//; 1 while s/\s?;$//; */
	{
		size_t o = 0;

		for (size_t i = 0; i < P->n; i++) {
			if (is_ws(s[i])) {
				while (i + 1 < P->n && is_ws(s[i + 1]))
					i++;
				s[o++] = ' ';
			} else {
				s[o++] = s[i];
			}
		}
		P->n = o;
		if (P->n && s[0] == ' ')
			memmove(s, s + 1, --P->n);
		if (P->n && s[P->n - 1] == ' ')
			P->n--;
		while (P->n && s[P->n - 1] == ';') {
			P->n--;
			if (P->n && s[P->n - 1] == ' ')
				P->n--;
		}
		s[P->n] = 0;
		line_changed(P);
	}
	if (!RX("(?i)^\\(?from "))
		return 0;
	if (RX("\\bwith local for\\b"))
		return 0;
	if (RX("(?i)^from (\\S+) by [^\\s;]+ ?;")) {
		G(1, by); /* $1 !~ /^\[[\d.]+\]$/ */
		if (!RXS(P->by, "^\\[[\\d.]+\\]$"))
			return 0;
		P->by[0] = 0;
	}
	if (RX("[\\s;]+(?:(?:Mon|T(?:ue|hu)|Wed|Fri|S(?:at|un)), )?\\d+ "
	       "(?:J(?:an|u[nl])|Feb|Ma[ry]|A(?:pr|ug)|Sep|Oct|Nov|Dec) \\d+ \\d+:\\d+(?::\\d+)? \\S+$")) {
		P->n = P->ov[0];
		s[P->n] = 0;
	}
	if (RX("\\)by ") && P->n + 1 < sizeof(P->s)) { /* room for the space */
		memmove(s + P->ov[0] + 2, s + P->ov[0] + 1, P->n - P->ov[0]);
		s[P->ov[0] + 1] = ' ';
		s[++P->n] = 0;
		line_changed(P);
	}
	if (RX(" id <?([^\\s<>;]{3,})"))
		G(1, id);
	if (RX("\\bhelo=([-A-Za-z0-9\\.\\^+_&:=?!@%*\\$\\\\\\/]+)(?:[^-A-Za-z0-9\\.\\^+_&:=?!@%*\\$\\\\\\/]|$)"))
		G(1, helo);
	else if (RX("\\b(?:HELO|EHLO) ([-A-Za-z0-9\\.\\^+_&:=?!@%*\\$\\\\\\/]+)(?:[^-A-Za-z0-9\\.\\^+_&:=?!@%*\\$\\\\\\/]|$)"))
		G(1, helo);
	if (RX(" by (\\S+)(?:[^-A-Za-z0-9\\;\\.]|$)"))
		G(1, by);

	if (RX(" by ") && RX("(?i) with ((?:ES|L|UTF8S|UTF8L)MTPS?A|ASMTP|HTTP[SU]?)(?: |;|$)")) {
		G(1, auth);
	} else if (RX(" by mx\\.google\\.com with ESMTPS id [a-z0-9]{1,4}sm[0-9]{2,9}[a-z]{3}\\.[0-9]{1,3}\\.[0-9]{4}\\.(?:[0-6][0-9]\\.){4}[0-6][0-9]") &&
		   RX("\\(version=([^ ]+) cipher=([^\\)]+)\\)")) {
		char a[FLD], b[FLD];

		cap(P, 1, a);
		cap(P, 2, b);
		snprintf(P->auth, FLD, "GMail - transport=%.200s cipher=%.200s", a, b);
	} else if (memmem(P->s, P->n, " (AUTH: ", 8) && /* a string it needs */
		   RX("^from .*?(?:\\]\\)|\\)\\]) \\(AUTH: (LOGIN|PLAIN|DIGEST-MD5|CRAM-MD5) \\S+(?:, .*?)?\\) by ")) {
		G(1, auth);
	} else if (RX("authenticated") &&
		   RX("^from .*?(?:\\](?: \\([^)]*\\))?\\)|\\)\\]) .*?\\(.*?authenticated.*?\\).*? by")) {
		strcpy(P->auth, "Sendmail");
	} else if (memmem(P->s, P->n, "mail.gmx.", 9) && /* a string it needs */
		   RX("from \\S* \\((?:HELO|EHLO) (\\S*)\\) \\[(" IPA ")\\] by (mail\\.gmx\\.(?:net|com)) \\([^\\)]+\\) with ((?:ESMTP|SMTP))")) {
		char a[FLD], b[FLD];

		cap(P, 4, a);
		cap(P, 3, b);
		snprintf(P->auth, FLD, "GMX (%.200s / %.200s)", a, b);
	} else if (RX(" \\(authenticated as ") &&
		   RX("\\) by .+ \\(\\d{1,2}\\.\\d\\.\\d{3}(?:\\.\\d{1,3})?\\) \\(authenticated as .+\\) id ")) {
		strcpy(P->auth, "CriticalPath");
	} else if (RX("\\) \\(Authenticated sender: \\S+\\) by \\S+ \\(([^\\)]+)\\) with ")) {
		char a[FLD];

		cap(P, 1, a);
		if (strcmp(a, "Postfix") == 0)
			strcpy(P->auth, a);
		else
			snprintf(P->auth, FLD, "Postfix (%.400s)", a);
	} else if (RX("CommuniGate Pro (HTTP|SMTP|XIMSS|IMAP)") && RX(" \\(account ")) {
		strcpy(P->auth, "Communigate");
	} else if (RX(" with Microsoft Exchange Server HTTP-DAV\\b")) {
		strcpy(P->auth, "HTTP-DAV");
	} else if (RX(" by ") && RX("(?i) \\(via (HTTP.?)\\)(?: |;|$)")) {
		G(1, auth);
	}

	if (strncmp(s, "from ", 5) == 0) {
		memmove(s, s + 5, P->n - 4);
		P->n -= 5;
		if (RX("(?i)(?:return-path:? |envelope-(?:sender|from)[ =])(\\S+)\\b")) {
			G(1, envfrom);
			P->has_envfrom = 1;
		}
		if (RX(" \\((?:SquirrelMail|NaSMail) authenticated user ") &&
		    RX("(" IPA ")\\b(?![.-]).{10,80}by (\\S+) with HTTP")) {
			G(1, ip), G(2, by);
			goto enough;
		}
		if (RX("aol\\.com") && RX("with HTTP \\(WebMailUI\\)") &&
		    RX("(" IPA ") by (\\S+) \\(" IPA "\\) with HTTP \\(WebMailUI\\)")) {
			G(1, ip), G(2, by);
			goto enough;
		}
		if (RX(" SMTPSVC")) {
			if (RX("^(\\S*) \\(\\[(" IPA ")\\][^\\)]{0,40}\\) by (\\S+) with Microsoft SMTPSVC")) {
				G(1, helo), G(2, ip), G(3, by);
				goto enough;
			}
			if (RX("^mail pickup service by (\\S+) with Microsoft SMTPSVC$"))
				return 0;
		} else if (RX(" with (?:Microsoft SMTP Server|mapi id) (?:\\([^\\)]+\\) )?\\d+\\.\\d+\\.\\d+\\.\\d+(?:$| )")) {
			if (RX("^(\\S+) \\(\\[?(" IPA ")(?:%[A-Z0-9._~-]*)?\\]?\\) by (\\S+) ")) {
				G(1, helo), G(2, ip), G(3, by);
				P->id[0] = 0;
				goto enough;
			}
		} else if (RX("\\[XMail ")) {
			if (RX("^(\\S+) \\((\\[?" IPA "\\]?)(?::\\d+)\\) by (\\S+)(?: \\(\\S+\\))? with \\[XMail")) {
				G(1, helo), G(2, ip), G(3, by);
				if (RX(" id <(\\S+)>"))
					G(1, id);
				if (RX(" from <(\\S+)>")) {
					G(1, envfrom);
					P->has_envfrom = 1;
				}
				goto enough;
			}
		} else if (RX("\\(ecelerity\\b")) {
			if (RX("^\\(\\[(" IPA "):\\d+\\] helo=(\\S+)\\) by (\\S+) ")) {
				G(1, ip), G(2, helo), G(3, by);
				goto enough;
			}
			if (RX("^\\S+ \\(\\[(" IPA "):\\d+\\]\\) by (\\S+) ")) {
				G(1, ip), G(2, by);
				goto enough;
			}
		} else if (RX("Exim")) {
			if (RX("\\bwith local(?:-\\S+)? "))
				return 0;
			if (RX("^\\[(" IPA ")\\] \\((.*?)\\) by (\\S+) ")) {
				G(1, ip), cap(P, 2, sub), G(3, by);
				sub_helo_ident(P, sub);
				goto enough;
			}
			if (RX("^(\\S+) \\(\\[(" IPA ")\\](.*?)\\) by (\\S+) ")) {
				G(1, rdns), G(2, ip), cap(P, 3, sub), G(4, by);
				strcpy(P->helo, P->rdns);
				sub_helo_ident(P, sub);
				goto enough;
			}
			if (RX("^(\\S+) \\[(" IPA ")\\](:\\d+)? by (\\S+) ")) {
				G(1, rdns), G(2, ip), G(1, helo), G(4, by);
				goto enough;
			}
			if (RX("^(\\S+) "))
				G(1, rdns);
			if (RX(" \\((\\S+)\\) "))
				G(1, helo);
			if (RX(" \\[(" IPA ")(?:\\.\\d+)?\\] "))
				G(1, ip);
			if (RX("by (\\S+) ")) {
				G(1, by);
				if (P->ip[0])
					goto enough;
			}
		} else if (RX(" \\(Postfix\\) with")) {
			if (RX("^(\\S+) \\((\\S+) \\[(" IPA ")\\]\\) by (\\S+) ") ||
			    RX("^(\\S+) \\((\\S+)\\[(" IPA ")\\]\\) by (\\S+) ")) {
				P->dns = 1;
				G(1, helo), G(2, rdns), G(3, ip), G(4, by);
				if (strcmp(P->rdns, "unknown") == 0)
					P->rdns[0] = 0;
				goto enough;
			}
		} else if (RX("\\(Scalix SMTP Relay")) {
			if (RX("^(\\S+) \\( ?(" IPA ")\\) by (\\S+)")) {
				G(1, helo), G(2, ip), G(3, by);
				goto enough;
			}
		} else if (RX(" \\(Lotus Domino ")) {
			if (RX("^(\\S+) \\(\\[(" IPA ")\\]\\) by (\\S+) \\(Lotus")) {
				P->dns = 0;
				G(1, helo), G(2, ip), G(3, by);
				goto enough;
			}
		}
		if (run(P, &t))
			goto enough;
		if (!RX(" by \\S+ \\(qmail-\\S+\\) with ")) {
			if (RX("^(\\S+) \\((\\S+) \\[(" IPA ")\\].*\\) by (\\S+) \\(")) {
				P->dns = 1;
				G(1, helo), G(2, rdns), G(3, ip), G(4, by);
				if (RXS(P->rdns, "^IDENT:([^\\@]*)\\@")) {
					G(1, ident);
					cut(P, P->rdns);
				}
				if (RXS(P->rdns, "^([^\\@]*)\\@")) {
					G(1, ident);
					cut(P, P->rdns);
				}
				goto enough;
			}
		}
		if (run(P, &t))
			goto enough;
		if (RX("by (\\S+\\.hotmail\\.msn\\.com) ")) {
			G(1, by);
			if (RX("^(" IPA ") "))
				G(1, ip);
			goto enough;
		}
		if (RX("^(\\S+) \\((?:HELO|EHLO) (\\S*)\\) \\((" IPA ")\\) by (\\S+) \\(qpsmtpd\\/\\S+\\) with (?:ESMTP|SMTP)") ||
		    RX("^(\\S+) \\(LHLO (\\S*)\\) \\((" IPA ")\\) by (\\S+) with LMTP") ||
		    RX("^(\\S+) \\((?:HELO|EHLO) (\\S*)\\) \\[(" IPA ")\\] by (\\S+) \\([^\\)]+\\) with (?:ESMTP|SMTP)")) {
			G(1, rdns), G(2, helo), G(3, ip), G(4, by);
			goto enough;
		}
		if (run(P, &t))
			goto enough;
		if (RX("^\\S+( \\((?:HELO|EHLO) \\S*\\))? \\((\\S+\\@)?\\[?" IPA "\\]?\\)( \\(envelope-sender <\\S+>\\))? by \\S+( \\(.+\\))* with (.* )?(SMTP|QMQP)(?! id )")) {
			if (RX("^(\\S+) \\((?:HELO|EHLO) ([^ \\(\\)]*)\\) \\((\\S*)\\@\\[?(" IPA ")\\]?\\)( \\(envelope-sender <\\S+>\\))? by (\\S+)")) {
				G(1, rdns), G(2, helo), G(3, ident), G(4, ip), G(6, by);
			} else if (RX("^(\\S+) \\((?:HELO|EHLO) ([^ \\(\\)]*)\\) \\(\\[?(" IPA ")\\]?\\)( \\(envelope-sender <\\S+>\\))? by (\\S+)")) {
				G(1, rdns), G(2, helo), G(3, ip), G(5, by);
			} else if (RX("^(\\S+) \\((\\S*)\\@\\[?(" IPA ")\\]?\\)( \\(envelope-sender <\\S+>\\))? by (\\S+)")) {
				G(1, helo), G(1, rdns), G(2, ident), G(3, ip), G(5, by);
			} else if (RX("^(\\S+) \\(\\[?(" IPA ")\\]?\\)( \\(envelope-sender <\\S+>\\))? by (\\S+)")) {
				G(1, helo), G(1, rdns), G(2, ip), G(4, by);
			}
			if (strcmp(P->rdns, "unknown") != 0)
				P->dns = 1;
			else
				P->rdns[0] = 0;
			goto enough;
		}
		if (run(P, &t))
			goto enough;
		if (RX("^(\\S+) \\((\\S+) \\[(" IPA ")\\]\\).*? by (\\S+)\\b")) {
			char r2[FLD];

			cap(P, 2, r2);
			if (strcmp(r2, "softdnserr") == 0) {
				P->dns = 0;
			} else {
				P->dns = 1;
				strcpy(P->rdns, r2);
			}
			G(1, helo), G(3, ip), G(4, by);
			goto enough;
		}
		if (run(P, &t))
			goto enough;
		if (RX("with (?:POP3|IMAP)")) {
			P->pop_sig = 1;
			return 0;
		}
		if (run(P, &t))
			goto enough;
		if ((RX(" \\(Post") && RX("^\\[(" IPA ")\\] by (\\S+) \\(Post")) ||
		    (RX(" \\(ArGoSoft") && RX("^\\[(" IPA ")\\] by (\\S+) \\(ArGoSoft")) ||
		    RX("^(" IPA ") by (\\S+) \\((?:SMTPL|InterScan)\\b")) {
			G(1, ip), G(2, by);
			goto enough;
		}
		if (RX(" with BSMTP") && RX("^\\S+ by \\S+ with BSMTP"))
			return 0;
		if (run(P, &t))
			goto enough;
		if (RX("^\\S+ \\(\\S+\\) by \\S+ \\(Content Technologies "))
			return 0;
		if (run(P, &t))
			goto enough;
		if (RX("^\\[(" IPA ")\\]\\S+ \\((?:HELO|EHLO) (\\S*)\\) by (\\S+) ") ||
		    RX("^(" IPA ") \\((?:HELO|EHLO) (\\S*)\\) by (\\S+) ")) {
			G(1, ip), G(2, helo), G(3, by);
			goto enough;
		}
		if (run(P, &t))
			goto enough;
		if (RX("^\\[(" IPA ")\\] \\(([^\\)]+)\\) by (\\S+) ")) {
			G(1, ip), cap(P, 2, sub), G(3, by);
			sub_helo_ident(P, sub);
			goto enough;
		}
		if (run(P, &t))
			goto enough;
		if (RX("^(\\S+)\\((" IPA ")\\)(?:, claiming to be \"(\\S+)\")? via \\S+ by (\\S+),")) {
			G(1, rdns), G(2, ip), G(3, helo), G(4, by);
			if (strcmp(P->rdns, "UNKNOWN") != 0)
				P->dns = 1;
			goto enough;
		}
		if (run(P, &t))
			goto enough;
		if (RX("^X-Originating-IP: (" IPA ")$")) {
			G(1, ip);
			P->by[0] = 0;
			goto enough;
		}
		if (RX("^\\S+ \\([^\\s\\@]+\\@" LH "\\) by \\S+ \\(") ||
		    RX("^\\S+ \\S+ by \\S+ with local-e?smtp ") ||
		    RX("^127\\.0\\.0\\.1 \\(AVG SMTP \\S+ \\[\\S+\\]\\)") ||
		    RX("^\\S+\\@\\S+ by \\S+ by uid \\S+ ") || RX("^\\S+\\@\\S+ by \\S+ ") ||
		    RX("^Unknown\\/Local \\(") || RX("^" LH " \\((?:\\S+\\@)?" LH "[\\)\\[]") ||
		    RX("^\\S+ \\((?:\\S+\\@)?" LH "\\) ") || RX("^\\S+ \\(\\S+\\@\\S+ \\[" LH "\\]\\) ") ||
		    RX("^\\(AUTH: \\S+\\) by \\S+ with ") ||
		    RX("^localhost \\(localhost \\[\\[UNIX: localhost\\]\\]\\) by ") ||
		    RX("^\\S+\\.amazon\\.com by \\S+\\.amazon\\.com with ESMTP \\(peer crosscheck: ") ||
		    RX("^[^\\.]+ by \\S+ with Novell_GroupWise") ||
		    RX("^no\\.name\\.available by \\S+ via smtpd \\(for "))
			return 0;
		if (RX("^\\S+ by \\S+ \\(.{0,100}\\) with qmail-scanner")) {
			if (P->has_envfrom) {
				clean_envfrom(P->envfrom);
				strcpy(P->qms_env_from, P->envfrom);
				P->has_qms = 1;
			} else {
				P->has_qms = 0;
			}
			return 0;
		}
		if (RX("^\\S+ by \\S+ with local") ||
		    RX("^\\S+ \\(\\[unix socket\\]\\) by \\S+ \\(Cyrus v[0-9]*?\\.[0-9]*?\\.[0-9]*?\\) with LMTPA") ||
		    RX("^\\S+ by \\S+ (?:with|via|for|\\()") ||
		    RX("^\\S+ (?:(?:with|via|for) \\S+|\\(unverified\\)) by\\b") ||
		    RX("^\\S+ \\(unknown\\) by \\S+ \\(SG\\) with \\b") ||
		    RX("^\\S+ \\(\\S+ \\[local\\]\\) by \\S+ \\(OpenSMTPD\\) with \\b") ||
		    RX("\\(LSMTP for") || RX("^\\(\\[" LH "\\]\\) with MailEnable ") ||
		    RX("^facebook\\.com \\([^\\)]+\\) by facebook\\.com with Thrift id \\S+$") ||
		    RX("^\\S+ named \\S+ by gmailapi\\.google\\.com with HTTPREST$") ||
		    RX("^\\S+ id \\S+$") || RX("^\\[<.*? \\(Jetsend"))
			return 0;
		if (!P->helo[0] && RX("^(\\S+)[^-A-Za-z0-9\\.]"))
			G(1, helo);
	} else if (strncmp(s, "FROM ", 5) == 0) {
		memmove(s, s + 5, P->n - 4);
		P->n -= 5;
		if (RX("^(\\S+) \\((\\S+) \\[(" IPA ")\\]\\) BY (\\S+) (?:\\([^\\)]+\\) WITH SMTP )?ID <?(\\S+?)>?(?: FOR <[^>]+>)?$")) {
			P->dns = 1;
			G(1, helo), G(2, rdns), G(3, ip), G(4, by), G(5, id);
			if (strcmp(P->rdns, "unverified") == 0)
				P->rdns[0] = 0;
			goto enough;
		}
	} else if (strncmp(s, "(from ", 6) == 0) {
		memmove(s, s + 6, P->n - 5);
		P->n -= 6;
		if (RX("^(\\S*) \\[(" IPA ")\\]\\) by (\\S+) \\(NAVGW .*?\\) with ")) {
			G(1, helo), G(2, ip), G(3, by);
			goto enough;
		}
		if (RX("^\\S+\\@localhost\\) by \\S+ ") ||
		    RX("^[^\\s\\@]+\\@[^)]+\\) by \\S+\\(jqueuemail\\) id [^\\s;]+"))
			return 0;
	}
	if (!P->ip[0] && RX("\\[(" IPA ")\\]"))
		G(1, ip);
	if (P->ip[0] && P->by[0])
		goto enough;
	return -1;

enough:
	{
		size_t l = strlen(P->rdns);
		char *ip = P->ip;

		while (l && P->rdns[l - 1] == '.')
			P->rdns[--l] = 0;
		if (strcasecmp(P->rdns, "unknown") == 0 || P->rdns[0] == '[')
			P->rdns[0] = 0;
		if (strncasecmp(ip, "ipv6:", 5) == 0)
			memmove(ip, ip + 5, strlen(ip + 5) + 1);
		if (ip[0] == '[')
			memmove(ip, ip + 1, strlen(ip));
		if ((l = strlen(ip)) && ip[l - 1] == ']')
			ip[--l] = 0;
		if (RXS(ip, "(?i)%[A-Z0-9._~-]*\\z"))
			ip[P->ov[0]] = 0;
		if (RXS(ip, "(?i)^0*:0*:(?:0*:)*ffff:(\\d+\\.\\d+\\.\\d+\\.\\d+)$")) {
			char v4[FLD];

			cap(P, 1, v4);
			strcpy(ip, v4);
		}
		if ((l = strlen(P->by)) && P->by[l - 1] == ';')
			P->by[l - 1] = 0;
		strip(ip), strip(P->rdns), strip(P->helo), strip(P->by), strip(P->ident);
		if (P->has_envfrom)
			clean_envfrom(P->envfrom);
	}
	return 1;
}

/* as_string - make_relay_as_string, intl and msa set */
static size_t as_string(const struct rp *P, int intl, char *out, size_t sz)
{
	int k = snprintf(out, sz,
			 "[ ip=%s rdns=%s helo=%s by=%s ident=%s envfrom=%s intl=%d id=%s auth=%s msa=0 ]",
			 P->ip, P->rdns, P->helo, P->by, P->ident, P->has_envfrom ? P->envfrom : "",
			 intl, P->id, P->auth);

	return k < 0 ? 0 : (size_t)k >= sz ? sz - 1 : (size_t)k;
}

static int rp_line(struct rp *P, const char *v, size_t n)
{
	if (n > sizeof(P->s) - 1)
		n = sizeof(P->s) - 1;
	memcpy(P->s, v, n);
	P->s[n] = 0;
	P->n = n;
	line_changed(P);
	return parse(P);
}

int sa_received_line(const char *v, size_t n, char *out, size_t outsz)
{
	struct rp *P = calloc(1, sizeof(*P));
	int rc;

	if (!P)
		return -1;
	rc = rp_line(P, v, n);
	if (rc == 1 && out && outsz)
		as_string(P, 0, out, outsz);
	pcre2_match_data_free(P->md);
	free(P);
	return rc;
}

int sa_relay_view_index(const char *name)
{
	static const char *const v[SA_RELAYS_N] = {
		"X-Spam-Relays-Trusted", "X-Spam-Relays-Untrusted",
		"X-Spam-Relays-Internal", "X-Spam-Relays-External",
	};
	for (int i = 0; i < SA_RELAYS_N; i++)
		if (strcasecmp(name, v[i]) == 0)
			return i;
	return -1;
}

/* the block pinned by sa_relays_pin, and its headers once listed: the
 * relay parse and the header evals walk it some twenty times a message */
static __thread struct {
	const char *hb;
	size_t n;
	int ok;
	struct sa_relays r;
	int listed;                 /* 1: hdrs below; -1: no memory, walk the block */
	struct hdr_at { uint32_t h, nl, v, vl; } *hdrs;
	size_t nhdrs, cap;
} pin;

/* pin_list - the pinned block's headers as sa_hdr_each yields them */
static void pin_list(void)
{
	size_t off = 0;

	pin.nhdrs = 0;
	pin.listed = -1;
	if (pin.n > UINT32_MAX)
		return;
	while (off < pin.n) {
		const char *l = pin.hb + off, *e = memchr(l, '\n', pin.n - off);
		size_t len = e ? (size_t)(e - l) : pin.n - off;
		const char *c = memchr(l, ':', len);

		off += len + 1;
		if (!c)
			continue;
		if (pin.nhdrs == pin.cap) {
			size_t cap = pin.cap ? 2 * pin.cap : 64;
			struct hdr_at *x = realloc(pin.hdrs, cap * sizeof(*x));

			if (!x)
				return;
			pin.hdrs = x, pin.cap = cap;
		}
		pin.hdrs[pin.nhdrs++] = (struct hdr_at){
			(uint32_t)(l - pin.hb), (uint32_t)(c - l), (uint32_t)(c + 1 - pin.hb),
			(uint32_t)(l + len - (c + 1)) };
	}
	pin.listed = 1;
}

const char *sa_hdr_each(const char *hb, size_t n, size_t *off, size_t *nl, const char **v,
			    size_t *vl)
{
	if (hb == pin.hb && n == pin.n && hb) { /* *off counts headers */
		if (!pin.listed)
			pin_list();
		if (pin.listed > 0) {
			if (*off >= pin.nhdrs)
				return NULL;
			const struct hdr_at *a = &pin.hdrs[(*off)++];

			*nl = a->nl;
			*v = hb + a->v;
			*vl = a->vl;
			return hb + a->h;
		}
	}
	while (*off < n) {
		const char *l = hb + *off, *e = memchr(l, '\n', n - *off);
		size_t len = e ? (size_t)(e - l) : n - *off;
		const char *c = memchr(l, ':', len);

		*off += len + 1;
		if (!c)
			continue;
		*nl = (size_t)(c - l);
		*v = c + 1;
		*vl = (size_t)(l + len - *v);
		return l;
	}
	return NULL;
}

/* one list of relays as it grows: the joined as_strings */
struct rlist {
	char *s;
	size_t n, cap;
	unsigned count;
};

static int rl_add(struct rlist *l, const char *a, size_t an)
{
	if (l->n + an + 2 > l->cap) {
		size_t c = (l->cap ? l->cap * 2 : 512) + an;
		char *p = realloc(l->s, c);

		if (!p)
			return -ENOMEM;
		l->s = p, l->cap = c;
	}
	if (l->count++)
		l->s[l->n++] = ' ';
	memcpy(l->s + l->n, a, an);
	l->n += an;
	l->s[l->n] = 0;
	return 0;
}

static void rl_reset(struct rlist *l)
{
	l->n = 0;
	l->count = 0;
	if (l->s)
		l->s[0] = 0;
}

/* Debian's 10_default_prefs.cf originating_ip_headers */
static const char *const orig_ip_hdrs[] = {
	"X-Yahoo-Post-IP", "X-Originating-IP", "X-Apparently-From", "X-SenderIP", "X-AOL-IP",
	"X-MS-Exchange-CrossTenant-OriginalAttributedTenantConnectingIp",
};

/* the state of parse_received_headers over the lines */
struct rstate {
	struct rp *P;
	struct rlist L[SA_RELAYS_N];
	int in_trusted, in_internal, allow_markers, rc;
	unsigned unparseable;
	int env_u, env_t; /* envfrom defined: first untrusted, last trusted */
	char envfrom_u[FLD], envfrom_t[FLD];
	char as[8 * FLD + 128]; /* the eight fields of as_string, whole */
};

/* one_line - one Received value (or a synthetic one) through the loop of
 * parse_received_headers */
static void one_line(struct rstate *st, const char *line, size_t ln)
{
	struct rp *P = st->P;
	int qms = P->has_qms, pr;
	char qenv[FLD];

	strcpy(qenv, P->qms_env_from);
	P->has_qms = 0;
	P->pop_sig = 0;
	pr = rp_line(P, line, ln);
	if (P->pop_sig && st->allow_markers) { /* found_pop_fetcher_sig */
		rl_reset(&st->L[SA_RELAYS_TRUSTED]);
		rl_reset(&st->L[SA_RELAYS_INTERNAL]);
		rl_reset(&st->L[SA_RELAYS_EXTERNAL]);
		st->env_t = 0;
	}
	if (pr < 0)
		st->unparseable++;
	if (pr <= 0)
		return;
	if (qms) {
		strcpy(P->envfrom, qenv);
		P->has_envfrom = 1;
	}
	/* no trust configured: infer the handover (private IP or auth) */
	if (st->in_trusted && !P->auth[0] && !RXS(P->ip, SA_IP_PRIVATE))
		st->in_trusted = st->in_internal = 0;
	size_t an = as_string(P, st->in_internal, st->as, sizeof(st->as));

	if (st->in_trusted) {
		st->rc |= rl_add(&st->L[SA_RELAYS_TRUSTED], st->as, an);
		st->allow_markers = 1;
		st->env_t = P->has_envfrom;
		strcpy(st->envfrom_t, P->envfrom);
	} else {
		if (!st->L[SA_RELAYS_UNTRUSTED].count) {
			st->env_u = P->has_envfrom;
			strcpy(st->envfrom_u, P->envfrom);
		}
		st->rc |= rl_add(&st->L[SA_RELAYS_UNTRUSTED], st->as, an);
		st->allow_markers = 0;
	}
	st->rc |= rl_add(&st->L[st->in_internal ? SA_RELAYS_INTERNAL : SA_RELAYS_EXTERNAL], st->as,
			 an);
}

static void senders(const char *hb, size_t n, struct sa_relays *r);

int sa_relays_parse(const char *hb, size_t n, struct sa_relays *r)
{
	enum { NO = sizeof(orig_ip_hdrs) / sizeof(orig_ip_hdrs[0]) };
	struct rstate *st = calloc(1, sizeof(*st));
	char syn[NO][80];
	size_t nsyn = 0, off = 0, nl, vl;
	const char *v, *h;
	struct rp *P;
	int rc;

	memset(r, 0, sizeof(*r));
	if (!st || !(P = st->P = calloc(1, sizeof(*st->P)))) {
		free(st);
		return -ENOMEM;
	}
	st->in_trusted = st->in_internal = st->allow_markers = 1;
	/* originating_ip_headers: get_header($h) in scalar context is the
	 * last value; its first IP becomes "from X-Originating-IP: IP" */
	for (size_t k = 0; k < NO; k++) {
		const char *last = NULL;
		size_t lastn = 0, hl = strlen(orig_ip_hdrs[k]);

		off = 0;
		while ((h = sa_hdr_each(hb, n, &off, &nl, &v, &vl)))
			if (nl == hl && strncasecmp(h, orig_ip_hdrs[k], hl) == 0)
				last = v, lastn = vl;
		if (!last || !lastn)
			continue;
		char tmp[512];
		size_t tl = lastn < sizeof(tmp) - 1 ? lastn : sizeof(tmp) - 1;

		memcpy(tmp, last, tl);
		tmp[tl] = 0;
		if (RXS(tmp, "(" IPA ")")) {
			char ip[FLD];

			cap(P, 1, ip);
			snprintf(syn[nsyn++], sizeof(syn[0]), "from X-Originating-IP: %.50s\n", ip);
		}
	}
	off = 0;
	while ((h = sa_hdr_each(hb, n, &off, &nl, &v, &vl)))
		if (nl == 8 && strncasecmp(h, "Received", 8) == 0)
			one_line(st, v, vl);
	for (size_t k = 0; k < nsyn; k++)
		one_line(st, syn[k], strlen(syn[k]));
	rc = st->rc;
	for (int i = 0; i < SA_RELAYS_N; i++) {
		if (!st->L[i].s && !(st->L[i].s = calloc(1, 1)))
			rc = -ENOMEM;
		r->str[i] = st->L[i].s;
		r->len[i] = st->L[i].n;
	}
	r->trusted = st->L[SA_RELAYS_TRUSTED].count;
	r->untrusted = st->L[SA_RELAYS_UNTRUSTED].count;
	r->unparseable = st->unparseable;
	pcre2_match_data_free(P->md);
	/* get_envelope_from's last hop: the last untrusted relay, or the
	 * first trusted one when all are trusted */
	if (r->untrusted) {
		r->lasthop_env = st->env_u;
		strcpy(r->lasthop_envfrom, st->envfrom_u);
	} else if (r->trusted) {
		r->lasthop_env = st->env_t;
		strcpy(r->lasthop_envfrom, st->envfrom_t);
	}
	free(P);
	free(st);
	if (rc) {
		sa_relays_free(r);
		return -ENOMEM;
	}
	senders(hb, n, r);
	return 0;
}

void sa_relays_free(struct sa_relays *r)
{
	for (int i = 0; i < SA_RELAYS_N; i++)
		free(r->str[i]);
	memset(r, 0, sizeof(*r));
}

/* the last parse of this thread, with a copy of the block it came from */
static __thread struct {
	char *hb;
	size_t n, cap;
	int ok;
	struct sa_relays r;
} cache;

/* the parse of the block pinned by sa_relays_pin (pin, above): no copy,
 * no compare */
void sa_relays_pin(const char *hb, size_t n)
{
	sa_relays_unpin();
	pin.hb = hb;
	pin.n = n;
}

void sa_relays_unpin(void)
{
	if (pin.ok)
		sa_relays_free(&pin.r);
	pin.ok = 0;
	pin.hb = NULL;
	pin.n = 0;
	pin.listed = 0;
}

const struct sa_relays *sa_relays_of(const char *hb, size_t n)
{
	if (pin.hb && hb == pin.hb && n == pin.n) {
		if (!pin.ok && sa_relays_parse(hb, n, &pin.r) == 0)
			pin.ok = 1;
		return pin.ok ? &pin.r : NULL;
	}
	if (cache.ok && cache.n == n && memcmp(cache.hb, hb, n) == 0)
		return &cache.r;
	if (cache.ok)
		sa_relays_free(&cache.r);
	cache.ok = 0;
	if (n + 1 > cache.cap) {
		char *p = realloc(cache.hb, n + 1);

		if (!p)
			return NULL;
		cache.hb = p, cache.cap = n + 1;
	}
	if (sa_relays_parse(hb, n, &cache.r) < 0)
		return NULL;
	memcpy(cache.hb, hb, n);
	cache.n = n;
	cache.ok = 1;
	return &cache.r;
}

/* ---- EnvelopeFrom and all_from_addrs (PerMsgStatus) */

/* first_of - keep the first address scan_addrs gives */
static void first_of(void *ctx, const char *p, size_t n, int name)
{
	char *a = ctx;

	(void)name;
	if (!a[0] && n) {
		if (n > SA_ADDR_MAX - 1)
			n = SA_ADDR_MAX - 1;
		memcpy(a, p, n);
		a[n] = 0;
	}
}

/* first_addr - get("NAME:first:addr"))[0]: the first address of the first
 * instance; 0 when there is none */
static int first_addr(const char *hb, size_t n, const char *name, char out[SA_ADDR_MAX])
{
	size_t off = 0, nl, vl, hl = strlen(name);
	const char *v, *h;

	out[0] = 0;
	while ((h = sa_hdr_each(hb, n, &off, &nl, &v, &vl)))
		if (nl == hl && strncasecmp(h, name, hl) == 0) {
			scan_addrs(v, vl, 0, first_of, out);
			return out[0] != 0;
		}
	return 0;
}

/* after_received - get("ALL") =~ /^Received:.*?^NAME:/smi */
static int after_received(const char *hb, size_t n, const char *name)
{
	size_t off = 0, nl, vl, hl = strlen(name);
	const char *v, *h;
	int rcvd = 0;

	while ((h = sa_hdr_each(hb, n, &off, &nl, &v, &vl))) {
		if (rcvd && nl == hl && strncasecmp(h, name, hl) == 0)
			return 1;
		rcvd |= nl == 8 && strncasecmp(h, "Received", 8) == 0;
	}
	return 0;
}

/* envelope_from - get_envelope_from over the relays r of block hb */
static int envelope_from(const char *hb, size_t n, const struct sa_relays *r,
			 char out[SA_ADDR_MAX])
{
	char a[SA_ADDR_MAX];
	size_t off = 0, nl, vl;
	const char *v, *h;

	out[0] = 0;
	if ((r->untrusted || r->trusted) && r->lasthop_env) {
		const char *at = strchr(r->lasthop_envfrom, '@');

		if ((at && at > r->lasthop_envfrom) || !r->lasthop_envfrom[0]) {
			snprintf(out, SA_ADDR_MAX, "%s", r->lasthop_envfrom);
			return 1;
		}
	}
	/* X-Sender and a fetchmail signature: the envelope-from is a guess */
	if (first_addr(hb, n, "X-Sender", a) && strchr(a, '@'))
		while ((h = sa_hdr_each(hb, n, &off, &nl, &v, &vl)))
			if (nl == 8 && strncasecmp(h, "Received", 8) == 0 && vl >= 10 &&
			    memmem(v, vl, "(fetchmail", 10))
				return 0;
	if (first_addr(hb, n, "X-Envelope-From", a)) {
		if (after_received(hb, n, "X-Envelope-From"))
			return 0;
		memcpy(out, a, SA_ADDR_MAX);
		return 1;
	}
	if (first_addr(hb, n, "Envelope-Sender", a) && !after_received(hb, n, "Envelope-Sender")) {
		memcpy(out, a, SA_ADDR_MAX);
		return 1;
	}
	if (first_addr(hb, n, "Return-Path", a) && !after_received(hb, n, "Return-Path")) {
		memcpy(out, a, SA_ADDR_MAX);
		return 1;
	}
	return 0;
}

int sa_envelope_from(const char *hb, size_t n, char out[SA_ADDR_MAX])
{
	const struct sa_relays *r = sa_relays_of(hb, n);

	out[0] = 0;
	if (!r || !r->env_def)
		return 0;
	memcpy(out, r->env, SA_ADDR_MAX);
	return 1;
}

int sa_envelope_from_addr(const char *hb, size_t n, char out[SA_ADDR_MAX])
{
	const struct sa_relays *r = sa_relays_of(hb, n);

	out[0] = 0;
	if (r)
		memcpy(out, r->env_addr, SA_ADDR_MAX);
	return out[0] != 0;
}

/* from_one - all_from_addrs: tr/././s, the empty one and duplicates
 * dropped, into r->from */
static void from_one(void *ctx, const char *p, size_t n, int name)
{
	struct sa_relays *r = ctx;
	char a[SA_ADDR_MAX];
	size_t k = 0;

	(void)name;
	for (size_t i = 0; i < n && k < SA_ADDR_MAX - 1; i++)
		if (!(p[i] == '.' && k && a[k - 1] == '.'))
			a[k++] = p[i];
	a[k] = 0;
	if (!k || r->nfrom == SA_FROM_MAX)
		return;
	for (unsigned i = 0; i < r->nfrom; i++)
		if (strcmp(r->from[i], a) == 0)
			return;
	memcpy(r->from[r->nfrom++], a, k + 1);
}

/* each_addr - the addresses of every instance of header name */
static void each_addr(const char *hb, size_t n, const char *name, struct sa_relays *r)
{
	size_t off = 0, nl, vl, hl = strlen(name);
	const char *v, *h;

	while ((h = sa_hdr_each(hb, n, &off, &nl, &v, &vl)))
		if (nl == hl && strncasecmp(h, name, hl) == 0)
			scan_addrs(v, vl, 0, from_one, r);
}

/* senders - EnvelopeFrom, its first address and all_from_addrs into r */
static void senders(const char *hb, size_t n, struct sa_relays *r)
{
	size_t off = 0, nl, vl;
	const char *v, *h;

	if ((r->env_def = envelope_from(hb, n, r, r->env)))
		scan_addrs(r->env, strlen(r->env), 0, first_of, r->env_addr);
	/* Resent-From:first:addr takes priority */
	while ((h = sa_hdr_each(hb, n, &off, &nl, &v, &vl)))
		if (nl == 11 && strncasecmp(h, "Resent-From", 11) == 0) {
			scan_addrs(v, vl, 0, from_one, r);
			break;
		}
	if (r->nfrom)
		return;
	each_addr(hb, n, "From", r);
	each_addr(hb, n, "Envelope-Sender", r);
	each_addr(hb, n, "Resent-Sender", r);
	each_addr(hb, n, "X-Envelope-From", r);
	if (r->env_def)
		scan_addrs(r->env, strlen(r->env), 0, from_one, r);
}

void sa_all_from_addrs(const char *hb, size_t n, sa_addr_fn *fn, void *ctx)
{
	const struct sa_relays *r = sa_relays_of(hb, n);

	for (unsigned i = 0; r && i < r->nfrom; i++)
		fn(ctx, r->from[i], strlen(r->from[i]));
}

/* every RX() call site has a slot below 256, every step two above it */
enum { RX_SITES = __COUNTER__ };
_Static_assert(RX_SITES < 256, "more RX() call sites than rc_code slots");
_Static_assert(256 + 2 * sizeof(steps) / sizeof(steps[0]) <= RC_MAX, "steps[] past rc_code");

/* line_pat - the pattern of site k when the parse runs it on the line
 * itself (RX, steps[]), else NULL */
static const char *line_pat(int k)
{
	size_t i = (size_t)(k - 256) / 2;

	if (k < 256) {
		for (const struct rx_site *x = __start_moat_rx; x < __stop_moat_rx; x++)
			if (x->k == k)
				return x->line ? x->pat : NULL;
		return NULL;
	}
	if (i >= sizeof(steps) / sizeof(steps[0]) || !steps[i].re)
		return NULL;
	return k % 2 ? steps[i].re : steps[i].pre;
}

/* gate_lits - the literals one of which every match of pat contains, as
 * a Hyperscan expression (scan_lits; *caseless: for HS_FLAG_CASELESS), or
 * NULL: none known, or no memory.  Perl's IP_ADDRESS and LOCALHOST read as
 * any string (their look-arounds and inline options are past scan_lits),
 * a leading (?i) as caseless */
static char *gate_lits(const char *pat, int *caseless)
{
	static const char *const any[] = { SA_IP_ADDRESS, SA_LOCALHOST };
	char *o = malloc(strlen(pat) + 1), *w = o, *l;

	if ((*caseless = strncmp(pat, "(?i)", 4) == 0))
		pat += 4;
	for (const char *p = pat; o && *p;) {
		size_t i = 0;

		while (i < 2 && strncmp(p, any[i], strlen(any[i])) != 0)
			i++;
		if (i < 2) {
			memcpy(w, ".+", 2); /* shorter than what it stands for */
			w += 2, p += strlen(any[i]);
		} else {
			*w++ = *p++;
		}
	}
	if (!o)
		return NULL;
	*w = 0;
	l = scan_lits(o, *caseless, GATE_LIT_MIN);
	free(o);
	return l;
}

/* common_set - set (scan_lits' "(?:a|b)", non-alphanumerics as \xNN: a
 * literal sits between ':' or '|' and '|' or ')') has
 * a literal nearly every Received line holds: it would gate nothing and
 * cost the scan a match on every line (" by " alone on 99% of them) */
static int common_set(const char *set)
{
	static const char *const w[] = { "from\\x20", "\\x20by\\x20", "by\\x20",
					 "\\x20with\\x20", "with\\x20" };

	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		for (const char *p = set; (p = strstr(p, w[i])); p++)
			if ((p[-1] == ':' || p[-1] == '|') &&
			    (p[strlen(w[i])] == '|' || p[strlen(w[i])] == ')'))
				return 1;
	return 0;
}

/* gate_init - the database of the literals of every pattern of the line
 * (once); no gate when Hyperscan refuses it */
static void gate_init(void)
{
	char *e[RC_MAX];
	unsigned fl[RC_MAX], id[RC_MAX], n = 0;
	hs_compile_error_t *ce = NULL;
	int ci;

	pthread_key_create(&gate_key, gate_scratch_free);
	for (int k = 0; k < RC_MAX; k++) {
		const char *pat = line_pat(k);

		if (pat && (e[n] = gate_lits(pat, &ci))) {
			if (common_set(e[n])) {
				free(e[n]);
				continue;
			}
			id[n] = (unsigned)k;
			fl[n++] = HS_FLAG_SINGLEMATCH | (ci ? HS_FLAG_CASELESS : 0);
		}
	}
	if (n && hs_compile_multi((const char *const *)e, fl, id, n, HS_MODE_BLOCK, NULL, &gate_db,
				  &ce) != HS_SUCCESS) {
		/* not an error: every expression of the parse runs, as before */
		log_warn("scan: Received parse gate: %s; no gate",
			 ce && ce->message ? ce->message : "compile failed");
		gate_db = NULL;
	}
	hs_free_compile_error(ce);
	for (unsigned i = 0; gate_db && i < n; i++)
		gate_in[id[i]] = 1;
	gate_n = gate_db ? n : 0;
	for (unsigned i = 0; i < n; i++)
		free(e[i]);
}

/* sa_relays_compile - every expression of the parse (scan_received.h) */
int sa_relays_compile(void)
{
	int bad = __stop_moat_rx - __start_moat_rx != RX_SITES;

	for (const struct rx_site *x = __start_moat_rx; x < __stop_moat_rx; x++)
		bad |= !rc_compile(x->k, x->pat);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		const struct step *t = &steps[i];
		int k = 256 + 2 * (int)i;

		bad |= t->re && ((t->pre && !rc_compile(k, t->pre)) || !rc_compile(k + 1, t->re));
	}
	pthread_once(&gate_once, gate_init);
	return bad ? -1 : 0;
}

int sa_relays_gate_check(const char *s, size_t n, unsigned *gated)
{
	struct rp *P = calloc(1, sizeof(*P));
	int wrong = 0;

	if (!P || n > sizeof(P->s) - 1) {
		free(P);
		return -1;
	}
	memcpy(P->s, s, n);
	P->n = n;
	gate_scan(P);
	*gated = gate_n;
	for (int k = 0; k < RC_MAX; k++) {
		const char *pat = line_pat(k);
		pcre2_code *c = pat ? rc_compile(k, pat) : NULL;

		if (!c || !gate_in[k] || P->may_ok <= 0 || (P->may[k / 64] >> (k % 64) & 1))
			continue; /* not skipped */
		if (!P->md && !(P->md = pcre2_match_data_create(10, NULL))) {
			wrong = -1;
			break;
		}
		/* a limit reached is no match in the parse as well */
		wrong += pcre2_match(c, (PCRE2_SPTR)P->s, n, 0, 0, P->md, sa_match_ctx()) > 0;
	}
	pcre2_match_data_free(P->md);
	free(P);
	return wrong;
}
