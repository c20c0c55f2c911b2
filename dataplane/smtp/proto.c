/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * proto.c - SMTP line state machine, command and path parsing.
 *
 * One byte-level machine serves commands and DATA so both refuse the same
 * things: a line ends only at <CR><LF>; a bare <LF> or a <CR> followed by
 * anything but <LF> is reported to the caller, which refuses it (SMTP
 * smuggling, CVE-2023-51764/5/6).  The DATA terminator is then simply the
 * line ".", which can only be <CR><LF>.<CR><LF>.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "proto.h"

/* line_sm_init - empty state over a buffer of cap bytes */
void line_sm_init(struct line_sm *sm, char *buf, size_t cap)
{
	memset(sm, 0, sizeof(*sm));
	sm->buf = buf;
	sm->cap = cap;
}

/* line_sm_reset - forget the current partial line */
void line_sm_reset(struct line_sm *sm)
{
	sm->len = 0;
	sm->total = 0;
	sm->saw_cr = 0;
	sm->too_long = 0;
}

/* line_sm_feed - consume bytes up to the next line end or framing error */
enum line_res line_sm_feed(struct line_sm *sm, const char *in, size_t len, size_t *used)
{
	size_t i = 0;

	while (i < len) {
		char c = in[i++];

		if (sm->saw_cr) {
			sm->saw_cr = 0;
			if (c == '\n') {
				*used = i;
				return LINE_DONE;
			}
			*used = i;
			return LINE_BARE_CR;
		}
		if (c == '\r') {
			sm->saw_cr = 1;
			continue;
		}
		if (c == '\n') {
			*used = i;
			return LINE_BARE_LF;
		}
		/* fast path: copy a run of ordinary bytes */
		const char *s = in + i - 1;
		size_t run = 1;
		while (i < len && in[i] != '\r' && in[i] != '\n') {
			i++;
			run++;
		}
		sm->total += run;
		if (sm->len < sm->cap) {
			size_t room = sm->cap - sm->len;
			size_t n = run < room ? run : room;
			memcpy(sm->buf + sm->len, s, n);
			sm->len += n;
		}
		if (sm->total > sm->cap)
			sm->too_long = 1;
	}
	*used = i;
	return LINE_NEED_MORE;
}

/* smtp_data_line - end of data or content, and the unstuffing skip */
enum data_line_kind smtp_data_line(const char *line, size_t len, size_t *skip)
{
	*skip = 0;
	if (len == 1 && line[0] == '.')
		return DATA_END;
	if (len && line[0] == '.')
		*skip = 1;
	return DATA_CONTENT;
}

/* smtp_stuff_line - moat's own dot-stuffing of a content line */
size_t smtp_stuff_line(const char *content, size_t len, char *out)
{
	size_t o = 0;
	if (len && content[0] == '.')
		out[o++] = '.';
	memcpy(out + o, content, len);
	o += len;
	out[o++] = '\r';
	out[o++] = '\n';
	return o;
}

static const struct {
	const char *name;
	enum smtp_cmd cmd;
} cmd_table[] = {
	{ "HELO", CMD_HELO }, { "EHLO", CMD_EHLO }, { "MAIL", CMD_MAIL },
	{ "RCPT", CMD_RCPT }, { "DATA", CMD_DATA }, { "RSET", CMD_RSET },
	{ "NOOP", CMD_NOOP }, { "QUIT", CMD_QUIT }, { "VRFY", CMD_VRFY },
	{ "HELP", CMD_HELP }, { "STARTTLS", CMD_STARTTLS }, { "EXPN", CMD_EXPN },
	{ "BDAT", CMD_BDAT }, { "AUTH", CMD_AUTH },
};

/* smtp_cmd_name - the verb of a command */
const char *smtp_cmd_name(enum smtp_cmd c)
{
	for (size_t i = 0; i < sizeof(cmd_table) / sizeof(cmd_table[0]); i++)
		if (cmd_table[i].cmd == c)
			return cmd_table[i].name;
	return "UNKNOWN";
}

/* smtp_parse_command - split a line into verb and argument */
int smtp_parse_command(const char *line, size_t len, struct smtp_command *out)
{
	size_t v = 0;

	out->cmd = CMD_UNKNOWN;
	out->arg = line + len;
	out->arglen = 0;
	while (v < len && line[v] != ' ')
		v++;
	for (size_t i = 0; i < sizeof(cmd_table) / sizeof(cmd_table[0]); i++) {
		if (strlen(cmd_table[i].name) == v &&
		    strncasecmp(line, cmd_table[i].name, v) == 0) {
			out->cmd = cmd_table[i].cmd;
			break;
		}
	}
	size_t a = v;
	while (a < len && line[a] == ' ')
		a++;
	size_t e = len;
	while (e > a && line[e - 1] == ' ')
		e--;
	out->arg = line + a;
	out->arglen = e - a;
	return out->cmd == CMD_UNKNOWN ? -1 : 0;
}

/* is_atext - RFC 5322 atext */
static int is_atext(unsigned char c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* smtp_domain_valid - dot-atom hostname or address literal */
int smtp_domain_valid(const char *d, size_t len)
{
	if (len == 0 || len > 255)
		return 0;
	if (d[0] == '[') {
		if (len < 3 || d[len - 1] != ']')
			return 0;
		for (size_t i = 1; i < len - 1; i++) {
			unsigned char c = (unsigned char)d[i];
			if (!(isalnum(c) || c == '.' || c == ':' || c == '-'))
				return 0;
		}
		return 1;
	}
	size_t lab = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c == '.') {
			if (lab == 0 || d[i - 1] == '-')
				return 0;
			lab = 0;
			continue;
		}
		if (!(isalnum(c) || c == '-' || c == '_'))
			return 0;
		if (lab == 0 && c == '-')
			return 0;
		if (++lab > 63)
			return 0;
	}
	return d[len - 1] != '.' && d[len - 1] != '-';
}

/* parse_local - dot-string or quoted-string local part; returns its length or 0 */
static size_t parse_local(const char *s, size_t len)
{
	size_t i = 0;

	if (len && s[0] == '"') {
		for (i = 1; i < len; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '\\') {
				if (++i >= len || (unsigned char)s[i] < 32)
					return 0;
				continue;
			}
			if (c == '"')
				return i + 1;
			if (c < 32 || c == 127)
				return 0;
		}
		return 0;
	}
	int prev_dot = 1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (prev_dot)
				return 0;
			prev_dot = 1;
			continue;
		}
		if (!is_atext(c) && c < 0x80)
			break;
		prev_dot = 0;
	}
	if (prev_dot)
		return 0;
	return i;
}

/* parse_params - MAIL/RCPT ESMTP parameters */
static enum path_err parse_params(const char *s, size_t len, int is_mail, struct smtp_path *p)
{
	size_t i = 0;

	while (i < len) {
		while (i < len && s[i] == ' ')
			i++;
		if (i >= len)
			break;
		size_t b = i;
		while (i < len && s[i] != ' ')
			i++;
		const char *kw = s + b;
		size_t kl = i - b;
		if (!is_mail)
			return PATH_BAD_PARAM;
		if (kl > 5 && strncasecmp(kw, "SIZE=", 5) == 0) {
			uint64_t v = 0;
			for (size_t k = 5; k < kl; k++) {
				if (!isdigit((unsigned char)kw[k]) || v > UINT64_MAX / 10 - 10)
					return PATH_BAD_PARAM;
				v = v * 10 + (uint64_t)(kw[k] - '0');
			}
			p->size = v;
			p->has_size = 1;
		} else if (kl == 9 && strncasecmp(kw, "BODY=7BIT", 9) == 0) {
			p->body_8bit = 0;
		} else if (kl == 13 && strncasecmp(kw, "BODY=8BITMIME", 13) == 0) {
			p->body_8bit = 1;
		} else {
			return PATH_BAD_PARAM;
		}
	}
	return PATH_OK;
}

/* smtp_parse_path - MAIL FROM:<...> / RCPT TO:<...> with parameters */
enum path_err smtp_parse_path(const char *arg, size_t len, int is_mail, struct smtp_path *p)
{
	const char *kw = is_mail ? "FROM:" : "TO:";
	size_t kl = strlen(kw), i;

	memset(p, 0, sizeof(*p));
	p->domain = p->addr;
	if (len < kl || strncasecmp(arg, kw, kl) != 0)
		return PATH_SYNTAX;
	i = kl;
	while (i < len && arg[i] == ' ') /* tolerated: "FROM: <a>" */
		i++;
	if (i >= len || arg[i] != '<')
		return PATH_SYNTAX;
	i++;
	/* source route <@a,@b:user@dom>: accepted and ignored (RFC 5321 C) */
	if (i < len && arg[i] == '@') {
		while (i < len && arg[i] != ':' && arg[i] != '>')
			i++;
		if (i >= len || arg[i] != ':')
			return PATH_SYNTAX;
		i++;
	}
	const char *a = arg + i;
	size_t rest = len - i;
	if (rest && a[0] == '>') {
		if (!is_mail)
			return PATH_SYNTAX;
		p->addr[0] = '\0';
		return parse_params(a + 1, rest - 1, is_mail, p);
	}
	size_t ll = parse_local(a, rest);
	if (ll == 0 || ll > 64)
		return ll > 64 ? PATH_TOO_LONG : PATH_SYNTAX;
	size_t j = ll;
	size_t dl = 0;
	if (j < rest && a[j] == '@') {
		j++;
		size_t d0 = j;
		if (j < rest && a[j] == '[') {
			while (j < rest && a[j] != ']')
				j++;
			if (j < rest)
				j++;
		} else {
			while (j < rest && a[j] != '>' && a[j] != ' ')
				j++;
		}
		dl = j - d0;
		if (!smtp_domain_valid(a + d0, dl))
			return dl > 255 ? PATH_TOO_LONG : PATH_SYNTAX;
	} else if (is_mail || ll != 10 || strncasecmp(a, "postmaster", 10) != 0) {
		return PATH_SYNTAX;
	}
	if (j >= rest || a[j] != '>')
		return PATH_SYNTAX;
	if (j > SMTP_ADDR_MAX)
		return PATH_TOO_LONG;
	memcpy(p->addr, a, j);
	p->addr[j] = '\0';
	p->local_len = ll;
	p->domain = dl ? p->addr + ll + 1 : p->addr + j;
	if (j + 1 < rest && a[j + 1] != ' ')
		return PATH_SYNTAX;
	return parse_params(a + j + 1, rest - j - 1, is_mail, p);
}
