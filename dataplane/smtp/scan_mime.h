/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_mime.h - streaming MIME walker for the content gate.
 *
 * The walker takes the message in arbitrary pieces (exactly as the SMTP
 * engine feeds it: unstuffed, CRLF lines, headers first) and reports, with
 * O(1) memory whatever the message size:
 *   - each top-level header, unfolded, as name + value pieces;
 *   - the decoded body of every leaf text part (base64 and quoted-printable
 *     decoded, CRLF line ends turned into LF), as pieces; attachments that
 *     are not text are not decoded (raw scope only).
 * Nothing is buffered beyond one line prefix (MIME_LINE_MAX) and the decode
 * buffer; limits bound nesting, part count and boundary length so hostile
 * structure costs no more than plain text.
 */
#ifndef MOAT_SMTP_SCAN_MIME_H
#define MOAT_SMTP_SCAN_MIME_H

#include <stddef.h>
#include <stdint.h>

#define MIME_LINE_MAX 1024    /* bytes of a line kept to classify it */
#define MIME_BOUNDARY_MAX 200 /* RFC 2046 says 70; longer is not trusted */
#define MIME_HDRVAL_MAX 1024  /* Content-Type / -Transfer-Encoding kept */
#define MIME_NAME_MAX 64      /* header name kept for scoping */
#define MIME_OUT_MAX 8192     /* decode buffer, flushed when full */
#define MIME_DEPTH_HARD 16    /* compile-time ceiling for max_depth */
#define MIME_BODY_LEN_MAX 65536
#define MIME_MH_MAX 256       /* Content-ID / -Location kept (mimeheader) */ /* body length counted up to (check_body_length) */

/* Limits; zero fields take the defaults below. */
struct mime_limits {
	unsigned max_depth;   /* nested multiparts followed (default 8) */
	unsigned max_parts;   /* leaf parts decoded (default 256) */
};
#define MIME_DEFAULT_DEPTH 8
#define MIME_DEFAULT_PARTS 256

/* What the walker reports.  Any callback may be NULL. */
struct mime_sink {
	/* a top-level header starts; name is NUL-terminated, truncated */
	void (*header_begin)(void *ctx, const char *name);
	/* the next piece of its value (unfolded, leading blanks dropped) */
	void (*header_data)(void *ctx, const char *p, size_t n);
	void (*header_end)(void *ctx);
	/* the top-level header section is over (also at the end of a
	 * message that has no body) */
	void (*headers_done)(void *ctx);
	/* a leaf body starts (type: enum mime_ptype) / its next decoded
	 * piece / it ends */
	void (*part_begin)(void *ctx, int type);
	void (*body_data)(void *ctx, const char *p, size_t n);
	void (*part_end)(void *ctx);
	/* a leaf part that is not decoded (attachment, over max_parts) */
	void (*part_skip)(void *ctx);
	/* an entity's header section is over (the message's own, then each
	 * part's, in document order): mime_entity_header() reads its
	 * headers until the next call */
	void (*entity_headers)(void *ctx);
};

/* the part headers SpamAssassin's mimeheader rules read that the walker
 * keeps per entity */
enum mime_mh { MH_CTYPE, MH_CTE, MH_CD, MH_CID, MH_CLOC, MH_N };

/* What a decoded leaf part is, from its Content-Type (values match
 * scan_render.h enum render_type). */
enum mime_ptype {
	MPT_PLAIN = 0, /* text/plain, or no Content-Type */
	MPT_HTML,      /* text/html */
	MPT_TEXT,      /* other text/ *, message/ *, a multipart not followed */
	MPT_CALENDAR,  /* text/calendar: SpamAssassin reads no rule on it */
};

enum mime_enc { ENC_IDENTITY = 0, ENC_BASE64, ENC_QP };

struct mime_level {
	uint8_t blen;                         /* boundary length */
	char boundary[MIME_BOUNDARY_MAX];     /* without the leading "--" */
};

/* Counters a test or log line can read. */
struct mime_stats {
	unsigned parts;        /* leaf parts seen */
	unsigned max_depth;    /* deepest multipart level reached */
	unsigned depth_capped; /* multiparts not followed (too deep) */
	unsigned parts_capped; /* parts not decoded (too many) */
	unsigned parts_binary; /* non-text parts, left to the raw scope */
	unsigned bad_boundary; /* boundary parameters refused */
	/* what SpamAssassin's MIMEEval reads (_check_attachments), over
	 * every entity in document order (scan_eval.c) */
	unsigned html_count;   /* entities of type text/html */
	unsigned text_count;   /* of another text/ type */
	int alt;               /* a multipart/alternative seen so far */
	int last_text_set, last_html_set; /* a non-attachment text/plain,
					   * text/html leaf seen */
	uint64_t last_text_bytes, last_html_bytes; /* raw bytes of the last
				* ones, counted once alt was set */
	int qp_long_line;      /* a quoted-printable line over 78 chars */
	int b64_text;          /* base64 text in an ASCII charset, inline */
	unsigned b64_count;    /* entities whose encoding names base64 */
	unsigned qp_entities;  /* entities whose encoding names QP (not base64) */
	uint64_t qp_bytes;     /* raw bytes of QP leaf lines */
	uint64_t qp_chars;     /* encoded characters in them (mime_qp_count) */
	unsigned attach_count; /* entities whose disposition names attachment */
	uint64_t body_len;     /* bytes after the header section, CRLF counted
				* as LF, counted up to MIME_BODY_LEN_MAX */
};

struct mime_walker {
	const struct mime_sink *sink;
	void *ctx;
	struct mime_limits lim;
	struct mime_stats st;

	int state;             /* enum mime_state in scan_mime.c */
	int top;               /* 1 while in the message's own headers */
	int in_header;         /* a top-level header is open */
	int hdr_skipws;        /* dropping blanks after the colon */
	int cur_hdr;           /* which captured header is open (0 none) */
	int part_open;         /* a leaf part is open */
	int pending_eol;       /* an LF owed before the next body line */
	int decode;            /* current part is decoded (not capped) */
	enum mime_enc enc;     /* current leaf's transfer encoding */

	unsigned ent_hdrs;     /* 1 << enum mime_mh: present in the entity */
	/* captured headers of the entity whose headers are being read */
	char ctype[MIME_HDRVAL_MAX];
	size_t ctype_len;
	char cte[64];
	size_t cte_len;
	char cd[MIME_HDRVAL_MAX]; /* Content-Disposition, bounded */
	size_t cd_len;
	char cid[MIME_MH_MAX];    /* Content-ID, the last one */
	size_t cid_len;
	char cloc[MIME_MH_MAX];   /* Content-Location, the last one */
	size_t cloc_len;
	/* the leaf being walked, for the MIMEEval counters */
	int leaf_count;        /* 1: text/plain, 2: text/html bytes counted */
	int leaf_qp;           /* its Content-Transfer-Encoding is QP */
	int leaf_dbcs;         /* its charset is a double-byte one (Big5, GBK,
				* EUC-KR...): set when part_begin is called */
	uint64_t ll;           /* raw bytes of the current line so far */
	int ll_spam;           /* the line starts with "SPAM: " */
	const char *line_end;  /* in the piece being fed: after the line just
				* classified (the body starts there) */
	const char *body_from; /* the body starts in this piece, here */
	int body_cr;           /* the last body byte counted was a CR */

	/* the current line when it spans pieces */
	char line[MIME_LINE_MAX];
	size_t line_len;
	int long_line;         /* past MIME_LINE_MAX: pass the rest through */

	/* boundaries of the open multiparts, innermost last */
	unsigned depth;
	struct mime_level lv[MIME_DEPTH_HARD];

	/* decoder state */
	uint32_t b64_acc;
	int b64_n;

	char out[MIME_OUT_MAX];
	size_t out_len;
};

/* mime_init - prepare w to walk one message; lim may be NULL. */
void mime_init(struct mime_walker *w, const struct mime_limits *lim,
	       const struct mime_sink *sink, void *ctx);
/* mime_feed - walk the next len bytes of the message. */
void mime_feed(struct mime_walker *w, const char *p, size_t len);
/* mime_finish - end of message: close what is open, flush. */
void mime_finish(struct mime_walker *w);

/* mime_mh_index - the enum mime_mh of a header name, -1 when the walker
 * does not keep it */
int mime_mh_index(const char *name);
/* mime_entity_header - header mh of the entity whose headers just ended
 * (inside entity_headers): its value, trailing blanks dropped, or NULL
 * when the entity has none.  Content-Type, -Transfer-Encoding and
 * -Disposition hold every instance appended (MIME_HDRVAL_MAX bytes);
 * Content-ID and -Location the last (MIME_MH_MAX). */
const char *mime_entity_header(const struct mime_walker *w, enum mime_mh mh, size_t *len);

/* mime_parse_boundary - boundary parameter of a Content-Type value.
 * Returns its length (1..MIME_BOUNDARY_MAX) copied into out, 0 when the
 * type is not multipart or has no boundary, -1 when it is refused. */
int mime_parse_boundary(const char *ctype, size_t len, char *out);

#endif /* MOAT_SMTP_SCAN_MIME_H */
