/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_ctlproto.c - the control socket's framing and request decoding
 * (lib/ctlproto.c) on arbitrary bytes, as moat-controld's ctlsrv.c and
 * moat-smtpd read them: the stream arrives in two reads split at an
 * input-chosen point into a buffer with a small line limit (so over-long
 * lines and their skipping are reached); every message taken is read with
 * the getters the daemons use ("cmd", "id", ints, bools) and answered.
 * Invariants: a message is always a JSON object; its reply (ok or error,
 * with request strings in it) formats as one line that reads back as an
 * object with the same id; the buffer never holds more than it was given.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctlproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* answer - what a server does with one request; aborts on a broken invariant */
static void answer(struct json_object *m)
{
	const char *cmd = ctl_get_str(m, "cmd");
	const char *zone = ctl_get_str(m, "zone");
	int64_t id = ctl_msg_id(m), v;
	int b;
	struct json_object *rep, *back;
	struct ctl_buf rb;
	size_t len;

	if (!json_object_is_type(m, json_type_object))
		abort();
	(void)ctl_msg_is_reply(m);
	(void)ctl_get_int(m, "ttl", &v);
	(void)ctl_get_bool(m, "force", &b);
	if (cmd && !strcmp(cmd, "ping"))
		rep = ctl_reply_ok(id, json_object_new_string(zone ? zone : "pong"));
	else
		rep = ctl_reply_err(id, CTL_E_UNKNOWN, "unknown command '%s' zone=%s",
				    cmd ? cmd : "(none)", zone ? zone : "-");
	char *line = ctl_format(rep, &len);
	if (!line || !len || line[len - 1] != '\n' || memchr(line, '\n', len - 1))
		abort(); /* one line, whatever the request's strings held */
	ctl_buf_init(&rb, CTL_MAX_REPLY);
	if (ctl_buf_append(&rb, line, len) != 0 || ctl_buf_next(&rb, &back) != 1 ||
	    ctl_msg_id(back) != id)
		abort();
	json_object_put(back);
	ctl_buf_free(&rb);
	free(line);
	json_object_put(rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_buf b;
	struct json_object *m;
	size_t cut = size ? data[0] % (size + 1) : 0;
	int r;

	/* a small limit so over-long lines are reached; the daemons use
	 * CTL_MAX_LINE with the same code */
	ctl_buf_init(&b, 256);
	for (int part = 0; part < 2; part++) {
		const uint8_t *p = part ? data + cut : data;
		size_t n = part ? size - cut : cut;

		if (ctl_buf_append(&b, p, n) != 0)
			abort();
		while ((r = ctl_buf_next(&b, &m)) != 0) {
			if (r == 1) {
				answer(m);
				json_object_put(m);
			} else if (r != -EPROTO && r != -EMSGSIZE) {
				abort();
			}
			if (b.len > size)
				abort();
		}
	}
	ctl_buf_free(&b);
	return 0;
}
