/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * proto.h - the pure parts of SMTP as moat-smtpd speaks it: the line state
 * machine shared by commands and DATA (CRLF only: bare CR and bare LF are
 * errors, the defence against SMTP smuggling), command and path parsing,
 * MAIL parameters.  No I/O here, so unit tests and the fuzz target drive it
 * directly.
 */
#ifndef MOAT_SMTP_PROTO_H
#define MOAT_SMTP_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* Line state machine.  Bytes in, complete lines (without CRLF) out. */
enum line_res {
	LINE_NEED_MORE = 0, /* all input consumed, no complete line yet */
	LINE_DONE,          /* sm->buf[0..sm->len) is a line; sm->too_long if cut */
	LINE_BARE_LF,       /* <LF> not preceded by <CR> */
	LINE_BARE_CR,       /* <CR> not followed by <LF> */
};

struct line_sm {
	char *buf;       /* caller-owned, cap bytes */
	size_t cap;      /* longest line kept (bytes, without CRLF) */
	size_t len;      /* bytes kept of the current line */
	size_t total;    /* bytes seen of the current line (may exceed cap) */
	int saw_cr;      /* last byte was <CR> */
	int too_long;    /* the current line exceeded cap: its tail was dropped */
};

/* line_sm_init - empty state over a buffer of cap bytes */
void line_sm_init(struct line_sm *sm, char *buf, size_t cap);
/* line_sm_reset - forget the current partial line */
void line_sm_reset(struct line_sm *sm);
/* line_sm_feed - consume in[0..len) up to and including the next line end
 * or error; *used says how many bytes were consumed.  After LINE_DONE the
 * caller reads sm->buf/len/too_long and calls line_sm_reset(). */
enum line_res line_sm_feed(struct line_sm *sm, const char *in, size_t len, size_t *used);

/* DATA lines */
enum data_line_kind {
	DATA_CONTENT = 0,   /* a message line; content starts after *skip bytes */
	DATA_END,           /* the line "." : end of data */
};

/* smtp_data_line - classify a complete DATA line (without CRLF) and say
 * how many leading bytes dot-unstuffing removes (RFC 5321 4.5.2) */
enum data_line_kind smtp_data_line(const char *line, size_t len, size_t *skip);

/* smtp_stuff_line - the rebuilt, dot-stuffed wire form of one content line:
 * writes it plus CRLF to out (room for len + 3); returns bytes written */
size_t smtp_stuff_line(const char *content, size_t len, char *out);

/* Commands */
enum smtp_cmd {
	CMD_UNKNOWN = 0, CMD_HELO, CMD_EHLO, CMD_MAIL, CMD_RCPT, CMD_DATA,
	CMD_RSET, CMD_NOOP, CMD_QUIT, CMD_VRFY, CMD_HELP, CMD_STARTTLS,
	CMD_EXPN, CMD_BDAT, CMD_AUTH,
};

struct smtp_command {
	enum smtp_cmd cmd;
	const char *arg;  /* points into the line: text after the verb and spaces */
	size_t arglen;
};

/* smtp_parse_command - split a line into verb and argument; 0, or -1 for
 * an unknown verb (cmd = CMD_UNKNOWN) */
int smtp_parse_command(const char *line, size_t len, struct smtp_command *out);
/* smtp_cmd_name - "MAIL" etc. */
const char *smtp_cmd_name(enum smtp_cmd c);

#define SMTP_ADDR_MAX 256

enum path_err {
	PATH_OK = 0,
	PATH_SYNTAX,      /* 501 5.5.4 / 5.1.3 */
	PATH_TOO_LONG,    /* 501 5.1.3 */
	PATH_BAD_PARAM,   /* 555 5.5.4 */
};

struct smtp_path {
	char addr[SMTP_ADDR_MAX + 1]; /* "local@domain", "" for <> */
	size_t local_len;             /* local part length in addr */
	const char *domain;           /* into addr, "" when none */
	uint64_t size;                /* SIZE= (MAIL), 0 if absent */
	int body_8bit;                /* BODY=8BITMIME */
	int has_size;
};

/* smtp_parse_path - parse the argument of MAIL ("FROM:<a> params") or RCPT
 * ("TO:<a> params").  is_mail allows <> and SIZE/BODY parameters;
 * RCPT allows <postmaster> without a domain. */
enum path_err smtp_parse_path(const char *arg, size_t len, int is_mail, struct smtp_path *p);

/* smtp_domain_valid - dot-atom hostname or address literal, RFC 5321 4.1.2 */
int smtp_domain_valid(const char *d, size_t len);

#endif /* MOAT_SMTP_PROTO_H */
