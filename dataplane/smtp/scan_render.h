/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_render.h - message bodies as SpamAssassin's rules read them,
 * computed while the message streams through the MIME walker.
 *
 * SpamAssassin runs three kinds of rules over a body, each on its own text:
 *   body     the rendered text: the Subject first, then each text/plain and
 *            text/html part (HTML rendered to text), whitespace collapsed,
 *            one line per paragraph, lines of at most 2,048 bytes
 *            (Mail::SpamAssassin::Message get_rendered_body_text_array);
 *   rawbody  each text part decoded but not rendered, in chunks of 2,049 to
 *            4,096 bytes (get_decoded_body_text_array);
 *   uri      every URI found in the HTML (href, src...) and in the rendered
 *            text, raw and canonicalised (PerMsgStatus get_uri_list).
 * The renderer takes the decoded pieces of each part (scan_mime.c) and
 * hands complete units of each kind to its sink: a unit is what one
 * SpamAssassin rule evaluation sees, so `^` and `\z` anchor on it.  Memory
 * is fixed (struct render), whatever the message: SpamAssassin's own
 * bounds cut each part (body_part_scan_size 50,000 rendered bytes,
 * rawbody_part_scan_size 500,000 decoded bytes), and a unit is buffered
 * only up to its maximal length.
 */
#ifndef MOAT_SMTP_SCAN_RENDER_H
#define MOAT_SMTP_SCAN_RENDER_H

#include <stddef.h>
#include <stdint.h>

#define RENDER_LINE_MAX 2048       /* SpamAssassin MAX_BODY_LINE_LENGTH */
#define RENDER_BODY_SCAN 50000     /* body_part_scan_size */
#define RENDER_RAW_SCAN 500000     /* rawbody_part_scan_size */
#define RENDER_CUT_SLACK 1024      /* how far past a scan size a cut may go */
#define RENDER_URI_MAX 2048        /* longest URI kept (SA: 2,048 + scheme) */
#define RENDER_SUBJECT_MAX 1024    /* Subject bytes kept for the first line */

/* What a part is to the renderer (scan_mime.c decides from Content-Type). */
enum render_type {
	RT_PLAIN = 0, /* text/plain, or no Content-Type: body + rawbody */
	RT_HTML,      /* text/html: rendered for body, raw for rawbody */
	RT_TEXT,      /* other text/ *, message/ *: rawbody only */
	RT_SKIP,      /* text/calendar, and parts not decoded (attachments) */
};

#define RENDER_HTML_PARTS 8 /* text/html parts whose length is kept */

enum render_unit { RU_BODY = 0, RU_RAWBODY, RU_URI };

/* unit - one complete unit of a kind; p is valid only during the call */
typedef void (*render_unit_fn)(void *ctx, enum render_unit kind, const char *p,
			       size_t n);

/* Counters eval rules may read (HTML/text ratio, images...). */
struct render_stats {
	unsigned parts_plain;   /* text/plain parts rendered */
	unsigned parts_html;    /* text/html parts rendered */
	uint64_t html_bytes;    /* decoded HTML read (SA: text_len) */
	uint64_t html_rendered; /* text rendered from it (SA: html_length) */
	uint64_t html_nonspace; /* of which not whitespace (SA: non_space_len) */
	uint64_t plain_bytes;   /* decoded text/plain read */
	unsigned html_tags;     /* HTML tags seen */
	unsigned html_images;   /* <img> tags */
	unsigned html_comments; /* HTML comments */
	unsigned html_scripts;  /* <script> elements */
	unsigned uris;          /* URI units reported */
	unsigned body_units;    /* body units (lines) reported */
	unsigned rawbody_units; /* rawbody units reported */
	unsigned body_cut;      /* parts cut at body_part_scan_size */
	unsigned raw_cut;       /* parts cut at rawbody_part_scan_size */
	unsigned tags_seen;     /* 1 << i: start or end tag render_tag_names[i]
				 * seen (HTMLEval html_tag_exists) */
	/* per text/html part, the first RENDER_HTML_PARTS (SpamAssassin's
	 * html_all, one HTML::Parser per part): the characters given to the
	 * parser (HTML.pm's length: normalize_charset is on, so the decoded
	 * part as characters: UTF-8 when it is valid UTF-8, two-byte
	 * characters for a double-byte charset, else bytes; known at the
	 * part's end) and <img> start tags (inside{img}) */
	int comment_match;      /* an HTML comment with "<!" then ">" on one
				 * line (html_text_match('comment', '<!.*?>')) */
	int img_in_anchor;      /* an <img> inside an <a> (HTMLEval
				 * html_text_match('anchor', '<img>')) */
	unsigned html_nparts;
	struct {
		uint64_t len;
		unsigned imgs;
	} html_part[RENDER_HTML_PARTS];
};
/* the tag names tags_seen records, NULL-terminated */
extern const char *const render_tag_names[];

/* a part cut at a scan size, SpamAssassin's way: at the first of the cut
 * characters found within RENDER_CUT_SLACK bytes past the limit */
struct render_trunc {
	uint64_t seen;                        /* bytes of the part so far */
	size_t limit;
	const char *cuts;                     /* "\n ", "\n> " */
	size_t tlen;                          /* bytes held past the limit */
	int done;                             /* the cut is made */
	char tail[RENDER_CUT_SLACK + 1];
};

struct render {
	render_unit_fn unit;
	void *ctx;
	unsigned want;            /* 1 << RU_*: kinds the sink reads */
	struct render_stats st;

	/* the Subject, kept until the body starts */
	char subject[RENDER_SUBJECT_MAX];
	size_t subject_len;
	int subject_seen, subject_done;

	/* message level: whitespace handling and line splitting (body) */
	int any_text;             /* SA's $text ne '' */
	int ws_run, ws_pre, ws_nl, ws_post;
	size_t line_len;
	char line[RENDER_LINE_MAX + 2];

	/* part level */
	enum render_type type;
	int cr;                   /* a CR ended the last piece */
	struct render_trunc btr, rtr;
	size_t raw_len;
	char raw[2 * RENDER_LINE_MAX + 1];

	/* HTML tokenizer */
	int hs;                   /* enum html_state in scan_render.c */
	int h_end;                /* the tag is an end tag */
	int h_sp;                 /* a space owed before the next text */
	int h_wselem;             /* the last element was whitespace (<br>...) */
	int h_node;               /* inside a text node */
	int h_dash;               /* '-' seen in a row (comments) */
	int h_quote;              /* quote char of an attribute value, 0 none */
	int h_nbsp;               /* 0xc2 held: maybe an NBSP */
	int h_attr;               /* the attribute being read is a URI */
	size_t h_match;           /* bytes of "</script" matched */
	char h_raw[8];            /* "script" / "style": skipping until its end */
	size_t h_raw_len;         /* strlen(h_raw) */
	size_t h_tag_len, h_an_len, h_ent_len, h_av_len;
	char h_tag[16];
	char h_an[16];
	char h_ent[12];
	char h_av[RENDER_URI_MAX];
	/* the text/html part as characters (html_part[].len) */
	int h_dbcs;               /* its charset is double-byte (render_part_charset) */
	int h_8bit;               /* a byte over 0x7f seen */
	int h_u8bad;              /* not valid UTF-8 */
	unsigned h_u8need;        /* continuation bytes still expected */
	uint32_t h_u8cp, h_u8min; /* the code point so far, its smallest value */
	uint64_t h_u8cont;        /* continuation bytes (UTF-8 chars = bytes - these) */
	uint64_t h_dbtrail;       /* trailing bytes of two-byte characters */
	int h_dblead;             /* the last byte was a lead byte */
	int h_dbbad;              /* not valid as two-byte text */
	int h_cm_bang, h_cm_lt;   /* in a comment: "<!" on this line, '<' last */
	int h_cm_bogus;           /* the declaration is a bogus comment ("<!x") */
	unsigned h_in_a;          /* <a> start tags minus end tags (inside{a}) */
};

/* render_init - prepare for one message; want: 1 << RU_* the sink reads. */
void render_init(struct render *r, unsigned want, render_unit_fn unit, void *ctx);
/* render_subject - the Subject header value, in pieces; the first Subject
 * header counts (call render_subject_end after it). */
void render_subject(struct render *r, const char *p, size_t n);
void render_subject_end(struct render *r);
/* render_part_begin / render_data / render_part_end - one leaf part. */
void render_part_begin(struct render *r, enum render_type t);
/* render_part_charset - after render_part_begin: the part's charset is a
 * double-byte one (scan_mime.h leaf_dbcs) */
void render_part_charset(struct render *r, int dbcs);
void render_data(struct render *r, const char *p, size_t n);
void render_part_end(struct render *r);
/* render_finish - end of message: the last units. */
void render_finish(struct render *r);

/* render_uri - report one URI (raw and canonicalised, SA's basic rules) as
 * uri units; exported for tests. */
void render_uri(struct render *r, const char *p, size_t n);

#endif /* MOAT_SMTP_SCAN_RENDER_H */
