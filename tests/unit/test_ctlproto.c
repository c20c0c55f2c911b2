/* test_ctlproto.c - control-socket framing: whole, split, joined, bad and
 * over-long lines; builders; a request/reply round trip over a socketpair. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctlproto.h"

struct frame_case {
	const char *name;
	const char *chunks[4]; /* appended one by one, NULL-terminated */
	int want[6];           /* results of successive ctl_buf_next, ended by 0 */
};

#define E_PROTO (-EPROTO)
#define E_SIZE (-EMSGSIZE)

static const struct frame_case frame_cases[] = {
	{ "one line", { "{\"id\":1,\"cmd\":\"status\"}\n" }, { 1, 0 } },
	{ "split in two", { "{\"id\":1,\"cm", "d\":\"status\"}\n" }, { 1, 0 } },
	{ "two in one read", { "{\"id\":1}\n{\"id\":2}\n" }, { 1, 1, 0 } },
	{ "no newline yet", { "{\"id\":1}" }, { 0 } },
	{ "blank lines skipped", { "\n\r\n{\"id\":1}\n" }, { 1, 0 } },
	{ "crlf", { "{\"id\":1}\r\n" }, { 1, 0 } },
	{ "not json", { "hello\n{\"id\":2}\n" }, { E_PROTO, 1, 0 } },
	{ "array not object", { "[1,2]\n" }, { E_PROTO, 0 } },
	{ "trailing junk", { "{\"id\":1} x\n" }, { E_PROTO, 0 } },
	{ "two objects one line", { "{\"id\":1}{\"id\":2}\n" }, { E_PROTO, 0 } },
	{ "too long then ok", { "{\"x\":\"0123456789012345678901234567890123456789\"}\n{\"id\":3}\n" },
	  { E_SIZE, 1, 0 } },
	{ "too long across reads", { "{\"x\":\"01234567890123456789", "0123456789012345678901234567890\"}\n",
	  "{\"id\":4}\n" }, { E_SIZE, 1, 0 } },
};

/* test_frame - one row of frame_cases, max line 40 bytes */
static void test_frame(void **state)
{
	const struct frame_case *fc = *state;
	struct ctl_buf b;
	int k = 0;

	ctl_buf_init(&b, 40);
	for (int i = 0; i < 4 && fc->chunks[i]; i++) {
		assert_int_equal(ctl_buf_append(&b, fc->chunks[i], strlen(fc->chunks[i])), 0);
		/* drain what is complete after every chunk, as a reader would */
		for (;;) {
			struct json_object *o = NULL;
			int r = ctl_buf_next(&b, &o);

			if (r == 0)
				break;
			if (fc->want[k] != r)
				fail_msg("case %s: result %d got %d want %d", fc->name, k, r, fc->want[k]);
			if (r == 1)
				assert_non_null(o);
			json_object_put(o);
			k++;
		}
	}
	if (fc->want[k] != 0)
		fail_msg("case %s: got %d results, want more (next %d)", fc->name, k, fc->want[k]);
	ctl_buf_free(&b);
}

static void test_builders(void **state)
{
	(void)state;
	struct json_object *r = ctl_reply_err(9, CTL_E_ARG, "bad %s", "prefix");
	int64_t code;

	assert_int_equal(ctl_msg_id(r), 9);
	assert_true(ctl_msg_is_reply(r));
	assert_int_equal(ctl_get_int(r, "code", &code), 0);
	assert_int_equal(code, CTL_E_ARG);
	assert_string_equal(ctl_get_str(r, "error"), "bad prefix");
	size_t n;
	char *s = ctl_format(r, &n);

	assert_non_null(s);
	assert_int_equal(s[n - 1], '\n');
	assert_null(memchr(s, '\n', n - 1)); /* one line whatever the text */
	free(s);
	json_object_put(r);

	struct json_object *q = ctl_request_new(3, "zones");

	assert_false(ctl_msg_is_reply(q));
	assert_string_equal(ctl_get_str(q, "cmd"), "zones");
	assert_null(ctl_get_str(q, "nope"));
	assert_int_equal(ctl_get_int(q, "cmd", &code), -EINVAL);
	json_object_put(q);
	assert_string_equal(ctl_err_name(CTL_E_UNAVAIL), "unavailable");
	assert_string_equal(ctl_err_name(99), "error");
}

static void test_roundtrip(void **state)
{
	int sv[2];
	struct ctl_buf cb, sb;
	struct json_object *req, *got, *reply;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ctl_buf_init(&cb, CTL_MAX_REPLY);
	ctl_buf_init(&sb, CTL_MAX_LINE);
	/* the server answers an unrelated id first and sends an event: the
	 * client must skip both and return the matching reply */
	struct json_object *other = ctl_reply_ok(99, NULL);
	struct json_object *ev = json_object_new_object();

	json_object_object_add(ev, "event", json_object_new_string("sample"));
	assert_int_equal(ctl_write_msg(sv[1], other), 0);
	assert_int_equal(ctl_write_msg(sv[1], ev), 0);
	struct json_object *res = json_object_new_object();

	json_object_object_add(res, "x", json_object_new_int(42));
	reply = ctl_reply_ok(5, res);
	assert_int_equal(ctl_write_msg(sv[1], reply), 0);
	req = ctl_request_new(5, "status");
	assert_int_equal(ctl_call(sv[0], &cb, req, &got, 1000), 0);
	struct json_object *r2;

	assert_true(json_object_object_get_ex(got, "result", &r2));
	int64_t x;

	assert_int_equal(ctl_get_int(r2, "x", &x), 0);
	assert_int_equal(x, 42);
	/* the server side sees the request */
	struct json_object *sreq;

	assert_int_equal(ctl_recv(sv[1], &sb, &sreq, 1000), 1);
	assert_string_equal(ctl_get_str(sreq, "cmd"), "status");
	/* a timeout when nothing comes, EOF when the peer closes */
	json_object_put(got);
	assert_int_equal(ctl_recv(sv[0], &cb, &got, 50), -ETIMEDOUT);
	close(sv[1]);
	assert_int_equal(ctl_recv(sv[0], &cb, &got, 1000), 0);
	close(sv[0]);
	json_object_put(sreq);
	json_object_put(req);
	json_object_put(reply);
	json_object_put(other);
	json_object_put(ev);
	ctl_buf_free(&cb);
	ctl_buf_free(&sb);
}

#define NFRAME (sizeof(frame_cases) / sizeof(frame_cases[0]))

int main(void)
{
	struct CMUnitTest tests[NFRAME + 2] = {
		cmocka_unit_test(test_builders),
		cmocka_unit_test(test_roundtrip),
	};
	for (size_t i = 0; i < NFRAME; i++)
		tests[2 + i] = (struct CMUnitTest){ frame_cases[i].name, test_frame, NULL, NULL,
						     (void *)&frame_cases[i] };
	return cmocka_run_group_tests_name("ctlproto", tests, NULL, NULL);
}
