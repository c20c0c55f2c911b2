/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_eval.h - SpamAssassin eval: tests moat implements in C, beyond the
 * five header tests scan.c evaluates itself (enum scan_eval in scan.h).
 *
 * Each is the Perl of one Mail::SpamAssassin::Plugin function, computed
 * from what the stream gives: the header block ("Name: value\n" per
 * header, unfolded, SpamAssassin's ALL) once the header section is over,
 * and the MIME walker's per-part counters (struct mime_stats) at the end
 * of the message.  docs/content-gate.md lists them.
 */
#ifndef MOAT_SMTP_SCAN_EVAL_H
#define MOAT_SMTP_SCAN_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "scan_mime.h"
#include "scan_render.h"

struct scan_rule;

/* evals of this file; numbered after scan.h's enum scan_eval */
enum scan_eval_ext {
	EVAL_EXT_FIRST = 100,
	/* at the end of the header section */
	EVAL_SHIFTED_DATE = EVAL_EXT_FIRST, /* check_for_shifted_date(ea, eb) hours,
					     * NAN: 'undef' */
	EVAL_LIST_EMPTY,   /* check_*_in_{welcome,block}list, *_spam_to: no
			    * such list in the configuration, never true */
	EVAL_GATED_RCVD,   /* gated_through_received_hdr_remover() */
	EVAL_UNRESOLVED_TPL, /* check_unresolved_template() */
	EVAL_RATWARE_NAME_ID, /* check_ratware_name_id() */
	EVAL_FREEMAIL_HDR, /* check_freemail_header(hname[, regex]): the
			    * domains in pattern (its length in ten
			    * digits, then "\nDOMAIN\n..."), the
			    * regex in re (NULL: none) */
	EVAL_LOCALPART_SUBJ, /* check_for_to_in_subject('user') */
	EVAL_RELAYS_HDR,   /* header X-Spam-Relays-* or EnvelopeFrom =~ /re/:
			    * the pseudo-header (enum sa_relay_view, or
			    * SA_RELAYS_N for EnvelopeFrom) in ea, PCRE2 in re */
	EVAL_ALL_TRUSTED,  /* check_all_trusted() */
	EVAL_NO_RELAYS,    /* check_no_relays() */
	EVAL_RELAYS_UNPARSEABLE, /* check_relays_unparseable() */
	EVAL_FREEMAIL_FROM, /* check_freemail_from([regex]): the domains in
			     * pattern as EVAL_FREEMAIL_HDR, the regex in re */
	EVAL_FROM_IN_LIST, /* check_from_in_list(NAME): "\nglob\n..." of the
			    * enlist_addrlist (NAME) entries in pattern */
	EVAL_ENV_HDR_FROM, /* check_for_matching_env_and_hdr_from() */
	EVAL_HDR_LAST = EVAL_ENV_HDR_FROM,
	/* at the end of the message */
	EVAL_MIME_HTML_ONLY,  /* check_for_mime_html_only() */
	EVAL_MIME_MP_RATIO,   /* check_mime_multipart_ratio(ea, eb) */
	EVAL_MIME_QP_LONG,    /* check_for_mime('mime_qp_long_line') */
	EVAL_MIME_B64_TEXT,   /* check_for_mime('mime_base64_encoded_text') */
	EVAL_HTML_MESSAGE,    /* html_test('html') */
	EVAL_MIME_B64_COUNT,  /* check_for_mime('mime_base64_count') */
	EVAL_MIME_ATTACH,     /* check_for_mime('mime_attachment') */
	EVAL_MIME_HTML,       /* check_for_mime_html() */
	EVAL_TAG_EXISTS,      /* html_tag_exists(render_tag_names[ea]) */
	EVAL_BODY_LENGTH,     /* check_body_length(ea) */
	EVAL_MIME_QP_COUNT,   /* check_for_mime('mime_qp_count') */
	EVAL_HTML_IMAGE_ONLY, /* html_image_only(ea, eb) */
	EVAL_HTML_LENGTH,     /* html_range('length', ea, eb), eb INFINITY:
			       * 'inf'; html_eval('length', '< N') as a range */
	EVAL_LINK_IMAGE,      /* html_text_match('anchor', '<img>') */
	EVAL_COMMENT_EXISTS,  /* html_text_match('comment', '<!.*?>') */
	EVAL_MIMEHEADER,      /* a mimeheader rule: header enum mime_mh in ea,
			       * its PCRE2 in re, [if-unset:] in unset; hit
			       * per entity (scan_eval_entity), never at the end */
};

/* flags of scan_eval_lookup and scan_eval_relays */
enum {
	SCAN_EVAL_LISTS = 1,     /* welcomelist/blocklist entries are defined */
	SCAN_EVAL_TRUST_CFG = 2, /* trusted/internal/msa_networks, or
				  * originating_ip_headers other than
				  * Debian's, are configured: the relay
				  * parse (scan_received.c) does not apply */
};

/* scan_eval_lookup - the eval of a call "name(args)" (the text after
 * "eval:"), its arguments stored in r (ea, eb, hname, re); 1 when it is
 * one of this file, 0 when not, -1 when its arguments do not parse,
 * -ENOMEM.  flags: SCAN_EVAL_*.  freemail: the FreeMail plugin's freemail_domains words, blank
 * separated (NULL: the plugin is not loaded or has no domains, or a
 * freemail_welcomelist is configured: its evals are not implemented). */
int scan_eval_lookup(const char *call, int flags, const char *freemail, struct scan_rule *r);

/* scan_eval_mimeheader - a mimeheader rule "NAME =~ /re/flags" (the text
 * after the rule name) as EVAL_MIMEHEADER in r: 1 done, 0 not possible
 * (why says why), -ENOMEM */
int scan_eval_mimeheader(const char *def, struct scan_rule *r, char *why, size_t whysz);

/* scan_eval_from_in_list - check_from_in_list(NAME) as EVAL_FROM_IN_LIST
 * in r, over the entries of enlist_addrlist (NAME) (globs, lower-cased, one
 * a line in globs: "\nGLOB\nGLOB\n"): 1, 0 (flags say the relays do not
 * apply), -ENOMEM */
int scan_eval_from_in_list(const char *globs, int flags, struct scan_rule *r);

/* scan_eval_relays - a header rule "X-Spam-Relays-NAME =~ /re/flags" (or
 * "EnvelopeFrom =~ ...") as
 * EVAL_RELAYS_HDR in r (SpamAssassin's Received parser, scan_received.c):
 * 1 done, 0 not possible (why says why), -ENOMEM */
int scan_eval_relays(const char *def, int flags, struct scan_rule *r, char *why, size_t whysz);

/* scan_eval_entity - does mimeheader rule r match the entity whose headers
 * just ended (MIMEHeader's eval_hook_called for one part: get_header, the
 * last value plus "\n", or the if-unset value when absent) */
int scan_eval_entity(const struct scan_rule *r, const struct mime_walker *w);
/* scan_eval_entity_value - the string it matches, into buf; its length */
size_t scan_eval_entity_value(const struct scan_rule *r, const struct mime_walker *w,
			      char buf[MIME_HDRVAL_MAX + 1]);

/* scan_eval_is_header - r's value is known at the end of the headers */
int scan_eval_is_header(const struct scan_rule *r);

/* scan_eval_header - evaluate a header eval over the block hb[0..n) */
int scan_eval_header(const struct scan_rule *r, const char *hb, size_t n);

/* scan_eval_body - evaluate a message eval at the end of the message */
int scan_eval_body(const struct scan_rule *r, const char *hb, size_t n,
		   const struct mime_stats *ms, const struct render_stats *rs);

/* scan_eval_compile - compile the evals' fixed expressions now (at load),
 * not in the first message that needs them */
void scan_eval_compile(void);

/* sa_date_parse - Mail::SpamAssassin::Util::parse_rfc822_date: seconds
 * since the epoch, or -1 when the date does not parse */
int64_t sa_date_parse(const char *p, size_t n);

/* sa_date_diff - HeaderEval's date_diff: Date (or Resent-Date) minus the
 * Received time closest to it, seconds; 0 when either is missing */
int64_t sa_date_diff(const char *hb, size_t n);
/* scan_eval_date_in - EVAL_SHIFTED_DATE rule r (check_for_shifted_date)
 * over a message whose sa_date_diff is diff */
int scan_eval_date_in(const struct scan_rule *r, int64_t diff);

#endif /* MOAT_SMTP_SCAN_EVAL_H */
