/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ctlproto.h - the control-socket protocol of moat-controld, shared by
 * moat-controld, moatctl, moat-smtpd and the tests.
 *
 * Newline-delimited JSON (json-c) over a Unix stream socket: every message
 * is one JSON object on one line.  A message with "cmd" is a request, a
 * message with "ok" is the reply to the request with the same "id":
 *
 *   -> {"id":7,"cmd":"lookup","addr":"192.0.2.10"}
 *   <- {"id":7,"ok":true,"result":{...}}
 *   <- {"id":7,"ok":false,"error":"bad address","code":2}
 *
 * Either side may send requests (moat-controld relays rules.reload and
 * smtp.stats to a moat-smtpd that said smtp.hello).  Streams ("watch") send
 * {"event":...} lines after the reply until the client closes.  See
 * docs/control-protocol.md for every command.
 *
 * Limits: one message is at most CTL_MAX_LINE bytes (requests) or
 * CTL_MAX_REPLY bytes (replies read by clients); longer lines are an error,
 * never a crash (STYLE.md trap 7).
 */
#ifndef MOAT_CTLPROTO_H
#define MOAT_CTLPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#define CTL_MAX_LINE (64u * 1024u)           /* request line limit */
#define CTL_MAX_REPLY (256u * 1024u * 1024u) /* reply line limit (list can be big) */
#define CTL_PROTO_VERSION 1

/* Error codes carried in "code" of a failed reply. */
enum ctl_err {
	CTL_OK = 0,
	CTL_E_PROTO = 1,     /* not JSON, not an object, line too long */
	CTL_E_ARG = 2,       /* missing or invalid argument */
	CTL_E_UNKNOWN = 3,   /* unknown command */
	CTL_E_NOTFOUND = 4,  /* no such zone / entry */
	CTL_E_FAILED = 5,    /* the operation failed (see "error") */
	CTL_E_UNAVAIL = 6,   /* needed peer (moat-smtpd) not connected */
	CTL_E_BUSY = 7,      /* try again later */
};

const char *ctl_err_name(int code);

/* A receive buffer that splits a byte stream into lines. */
struct ctl_buf {
	char *data;
	size_t len;   /* bytes held */
	size_t cap;
	size_t max;   /* longest acceptable line */
	size_t scan;  /* bytes at the start known to hold no newline */
	int skipping; /* inside an over-long line: drop bytes up to its newline */
};

void ctl_buf_init(struct ctl_buf *b, size_t max_line);
void ctl_buf_free(struct ctl_buf *b);
/* ctl_buf_fill - read once from fd into b; returns bytes read, 0 on EOF,
 * -errno (-EAGAIN when non-blocking and empty). */
ssize_t ctl_buf_fill(struct ctl_buf *b, int fd);
/* ctl_buf_append - add n bytes (tests, fuzzers); 0 or -ENOMEM. */
int ctl_buf_append(struct ctl_buf *b, const void *p, size_t n);
/* ctl_buf_next - take the next complete message.  Returns 1 and *out (a new
 * reference) for a message, 0 when no full line is buffered yet, or -EPROTO
 * for a line that is not a JSON object and -EMSGSIZE for a line longer than
 * max (the line is discarded in both cases so the stream can go on; for
 * -EMSGSIZE the rest of the line up to its newline is skipped). */
int ctl_buf_next(struct ctl_buf *b, struct json_object **out);

/* ctl_write_msg - serialise obj as one line and write it all (blocking
 * fds; loops on EINTR/partial writes).  0 or -errno. */
int ctl_write_msg(int fd, struct json_object *obj);
/* ctl_format - obj as one line with trailing '\n' (malloc'd), length in
 * *len; for non-blocking writers that queue bytes. */
char *ctl_format(struct json_object *obj, size_t *len);

/* Message builders; each returns a new object. */
struct json_object *ctl_request_new(int64_t id, const char *cmd);
struct json_object *ctl_reply_ok(int64_t id, struct json_object *result);
struct json_object *ctl_reply_err(int64_t id, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Accessors: NULL / default when absent or of another type. */
const char *ctl_get_str(struct json_object *o, const char *key);
int ctl_get_int(struct json_object *o, const char *key, int64_t *out);
int ctl_get_bool(struct json_object *o, const char *key, int *out);
int64_t ctl_msg_id(struct json_object *msg);
int ctl_msg_is_reply(struct json_object *msg);

/* Client side (moatctl, moat-smtpd, tests). */
/* ctl_connect - connect to a Unix stream socket; fd or -errno. */
int ctl_connect(const char *path);
/* ctl_call - send req and wait for the reply with the same id (messages
 * with other ids, and events, are skipped), timeout_ms < 0 = forever.
 * *reply gets a new reference.  0, -ETIMEDOUT, -ECONNRESET, -EPROTO... */
int ctl_call(int fd, struct ctl_buf *b, struct json_object *req,
	     struct json_object **reply, int timeout_ms);
/* ctl_recv - wait for the next message; 1 with *msg, 0 on EOF, -errno. */
int ctl_recv(int fd, struct ctl_buf *b, struct json_object **msg, int timeout_ms);

#endif /* MOAT_CTLPROTO_H */
