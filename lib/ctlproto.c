/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ctlproto.c - framing, builders and a small blocking client for the
 * control-socket protocol (newline-delimited JSON, see ctlproto.h and
 * docs/control-protocol.md).  The framing is written for hostile input: a
 * peer that sends garbage or an endless line gets an error, the stream goes
 * on, nothing aborts.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ctlproto.h"

/* ctl_err_name - short name of an error code */
const char *ctl_err_name(int code)
{
	static const char *const names[] = {
		"ok", "protocol", "argument", "unknown-command", "not-found",
		"failed", "unavailable", "busy",
	};

	if (code < 0 || (size_t)code >= sizeof(names) / sizeof(names[0]))
		return "error";
	return names[code];
}

/* ctl_buf_init - empty buffer accepting lines up to max_line bytes */
void ctl_buf_init(struct ctl_buf *b, size_t max_line)
{
	memset(b, 0, sizeof(*b));
	b->max = max_line;
}

/* ctl_buf_free - release the buffer */
void ctl_buf_free(struct ctl_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* ctl_buf_reserve - make room for n more bytes */
static int ctl_buf_reserve(struct ctl_buf *b, size_t n)
{
	if (b->len + n <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;

	while (cap < b->len + n)
		cap *= 2;
	char *d = realloc(b->data, cap);

	if (!d)
		return -ENOMEM;
	b->data = d;
	b->cap = cap;
	return 0;
}

/* ctl_buf_append - add bytes */
int ctl_buf_append(struct ctl_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0; /* b->data may still be NULL: no pointer arithmetic on it */
	if (ctl_buf_reserve(b, n) < 0)
		return -ENOMEM;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

/* ctl_buf_fill - one read() into the buffer */
ssize_t ctl_buf_fill(struct ctl_buf *b, int fd)
{
	if (ctl_buf_reserve(b, 65536) < 0)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, b->data + b->len, b->cap - b->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		b->len += (size_t)n;
		return n;
	}
}

/* ctl_buf_consume - drop the first n bytes */
static void ctl_buf_consume(struct ctl_buf *b, size_t n)
{
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->scan = 0;
}

/* ctl_buf_next - split off one line and parse it */
int ctl_buf_next(struct ctl_buf *b, struct json_object **out)
{
	*out = NULL;
	for (;;) {
		char *nl = b->len > b->scan ?
			memchr(b->data + b->scan, '\n', b->len - b->scan) : NULL;

		if (!nl) {
			b->scan = b->len;
			if (b->len > b->max) {
				/* the line is bad whatever follows: drop what
				 * we hold and the rest up to its newline */
				b->len = 0;
				b->scan = 0;
				if (!b->skipping) {
					b->skipping = 1;
					return -EMSGSIZE;
				}
			}
			return 0;
		}
		size_t linelen = (size_t)(nl - b->data);

		if (b->skipping) {
			b->skipping = 0;
			ctl_buf_consume(b, linelen + 1);
			continue;
		}
		if (linelen > b->max) {
			ctl_buf_consume(b, linelen + 1);
			return -EMSGSIZE;
		}
		if (linelen == 0 || (linelen == 1 && b->data[0] == '\r')) {
			ctl_buf_consume(b, linelen + 1);
			continue; /* blank lines are keep-alives */
		}
		struct json_tokener *tok = json_tokener_new();
		struct json_object *o = NULL;

		if (tok) {
			o = json_tokener_parse_ex(tok, b->data, (int)linelen);
			if (json_tokener_get_error(tok) != json_tokener_success ||
			    tok->char_offset < (int)linelen) {
				/* trailing bytes after the object other than
				 * white space are a protocol error too */
				int off = tok->char_offset;
				int junk = 0;

				for (size_t i = (size_t)off; i < linelen; i++)
					if (b->data[i] != ' ' && b->data[i] != '\r' &&
					    b->data[i] != '\t')
						junk = 1;
				if (json_tokener_get_error(tok) != json_tokener_success || junk) {
					json_object_put(o);
					o = NULL;
				}
			}
			json_tokener_free(tok);
		}
		ctl_buf_consume(b, linelen + 1);
		if (!o || !json_object_is_type(o, json_type_object)) {
			json_object_put(o);
			return -EPROTO;
		}
		*out = o;
		return 1;
	}
}

/* ctl_format - one line of JSON, malloc'd */
char *ctl_format(struct json_object *obj, size_t *len)
{
	size_t n;
	const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);

	if (!s)
		return NULL;
	char *out = malloc(n + 2);

	if (!out)
		return NULL;
	memcpy(out, s, n);
	out[n] = '\n';
	out[n + 1] = '\0';
	*len = n + 1;
	return out;
}

/* ctl_write_all - write every byte, blocking */
static int ctl_write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == ENOTSOCK)
			w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pfd = { .fd = fd, .events = POLLOUT };

				poll(&pfd, 1, 1000);
				continue;
			}
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* ctl_write_msg - write obj as one line */
int ctl_write_msg(int fd, struct json_object *obj)
{
	size_t n;
	char *s = ctl_format(obj, &n);

	if (!s)
		return -ENOMEM;
	int r = ctl_write_all(fd, s, n);

	free(s);
	return r;
}

/* ctl_request_new - {"id":id,"cmd":cmd} */
struct json_object *ctl_request_new(int64_t id, const char *cmd)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_int64(id));
	json_object_object_add(o, "cmd", json_object_new_string(cmd));
	return o;
}

/* ctl_reply_ok - {"id":id,"ok":true,"result":result}; takes result's reference */
struct json_object *ctl_reply_ok(int64_t id, struct json_object *result)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_int64(id));
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "result", result ? result : json_object_new_object());
	return o;
}

/* ctl_reply_err - {"id":id,"ok":false,"code":code,"error":text} */
struct json_object *ctl_reply_err(int64_t id, int code, const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "id", json_object_new_int64(id));
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "code", json_object_new_int(code));
	json_object_object_add(o, "error", json_object_new_string(msg));
	return o;
}

/* ctl_get_str - string member or NULL */
const char *ctl_get_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* ctl_get_int - integer member; 0 or -ENOENT / -EINVAL */
int ctl_get_int(struct json_object *o, const char *key, int64_t *out)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !v)
		return -ENOENT;
	if (!json_object_is_type(v, json_type_int))
		return -EINVAL;
	*out = json_object_get_int64(v);
	return 0;
}

/* ctl_get_bool - boolean member; 0 or -ENOENT / -EINVAL */
int ctl_get_bool(struct json_object *o, const char *key, int *out)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !v)
		return -ENOENT;
	if (!json_object_is_type(v, json_type_boolean))
		return -EINVAL;
	*out = json_object_get_boolean(v);
	return 0;
}

/* ctl_msg_id - the "id" of a message, -1 if none */
int64_t ctl_msg_id(struct json_object *msg)
{
	int64_t id;

	return ctl_get_int(msg, "id", &id) == 0 ? id : -1;
}

/* ctl_msg_is_reply - 1 when msg has "ok" (a reply), 0 otherwise */
int ctl_msg_is_reply(struct json_object *msg)
{
	struct json_object *v;

	return json_object_object_get_ex(msg, "ok", &v) ? 1 : 0;
}

/* ctl_connect - connect to the control socket */
int ctl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

/* ctl_recv - next message from fd, waiting up to timeout_ms */
int ctl_recv(int fd, struct ctl_buf *b, struct json_object **msg, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : moat_clock_ms() + timeout_ms;

	for (;;) {
		int r = ctl_buf_next(b, msg);

		if (r != 0)
			return r;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int wait = -1;

		if (deadline >= 0) {
			int64_t left = deadline - moat_clock_ms();

			if (left <= 0)
				return -ETIMEDOUT;
			wait = (int)left;
		}
		r = poll(&pfd, 1, wait);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		ssize_t n = ctl_buf_fill(b, fd);

		if (n == -EAGAIN || n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		if (n == 0)
			return 0;
	}
}

/* ctl_call - request/reply round trip */
int ctl_call(int fd, struct ctl_buf *b, struct json_object *req,
	     struct json_object **reply, int timeout_ms)
{
	int64_t id = ctl_msg_id(req);
	int r = ctl_write_msg(fd, req);

	*reply = NULL;
	if (r < 0)
		return r;
	for (;;) {
		struct json_object *m;

		r = ctl_recv(fd, b, &m, timeout_ms);
		if (r == 0)
			return -ECONNRESET;
		if (r < 0)
			return r;
		if (ctl_msg_is_reply(m) && ctl_msg_id(m) == id) {
			*reply = m;
			return 0;
		}
		json_object_put(m);
	}
}
