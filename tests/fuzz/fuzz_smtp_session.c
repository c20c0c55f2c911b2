/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_smtp_session.c - the SMTP command/DATA state machine of moat-smtpd
 * (proto.c) driven by arbitrary bytes, split at an input-chosen point:
 * commands are cut by the CRLF-only line machine and parsed (verbs, MAIL/RCPT
 * paths and parameters), DATA switches to message lines, which are unstuffed
 * and re-stuffed.  Invariants checked: lines never exceed the buffer, every
 * unstuffed+restuffed line reads back as the same content and never as the
 * end-of-data line, and a bare CR/LF ends the session as the engine does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char lbuf[1003], wire[1008];
	struct line_sm sm;
	int in_data = 0;
	size_t cut = size ? data[0] % (size + 1) : 0;
	const char *in = (const char *)data;
	size_t off = 0;

	line_sm_init(&sm, lbuf, 1000);
	while (off < size) {
		size_t lim = off < cut ? cut : size; /* two reads, split at cut */
		size_t used = 0;
		enum line_res r = line_sm_feed(&sm, in + off, lim - off, &used);
		off += used;
		if (r == LINE_NEED_MORE)
			continue;
		if (r != LINE_DONE)
			return 0; /* bare CR/LF: the engine answers 521 and closes */
		if (sm.len > sm.cap)
			abort();
		if (in_data) {
			size_t skip;
			if (smtp_data_line(sm.buf, sm.len, &skip) == DATA_END) {
				in_data = 0;
			} else {
				size_t n = smtp_stuff_line(sm.buf + skip, sm.len - skip, wire);
				size_t s2;
				if (n < 2 || wire[n - 2] != '\r' || wire[n - 1] != '\n')
					abort();
				if (smtp_data_line(wire, n - 2, &s2) == DATA_END)
					abort(); /* content must never become the terminator */
				if (n - 2 - s2 != sm.len - skip || memcmp(wire + s2, sm.buf + skip, n - 2 - s2))
					abort();
			}
		} else {
			struct smtp_command c;
			struct smtp_path p;
			smtp_parse_command(sm.buf, sm.len, &c);
			if (c.arg < sm.buf || c.arg + c.arglen > sm.buf + sm.len)
				abort();
			if (c.cmd == CMD_MAIL || c.cmd == CMD_RCPT) {
				if (smtp_parse_path(c.arg, c.arglen, c.cmd == CMD_MAIL, &p) == PATH_OK) {
					if (strlen(p.addr) > SMTP_ADDR_MAX)
						abort();
					if (p.domain[0] && !smtp_domain_valid(p.domain, strlen(p.domain)))
						abort();
				}
			} else if (c.cmd == CMD_DATA) {
				in_data = 1;
			}
		}
		line_sm_reset(&sm);
	}
	return 0;
}
