/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_ctlsrv.c - moat-controld's control socket (control/ctlsrv.c) as a
 * client meets it: the input is the bytes a client sends, one line at a
 * time, over a real Unix socket to a real daemon state (struct cd built as
 * moat-controld's main() builds it: configuration file, table, an rbldnsd
 * zone loaded, entries restored from disk, ctlsrv_open) in a directory of
 * its own under /dev/shm, with an epoll loop of its own dispatching to
 * ctlsrv_io.  Every command handler runs: add, del, batch (staged,
 * committed, abandoned), lookup, list, status, zones, zone.refresh, stats,
 * watch, reload, detach, fleet, smtp.hello / smtp.report / relayed
 * rules.reload and smtp.stats and their replies, the one-way "type"
 * dialect.
 *
 * Invariants (abort, after removing this input's files):
 *   - every line the daemon writes is one JSON object: a reply ({"id",
 *     "ok"}: a failure with an integer code and a non-empty error) or a
 *     request relayed to this connection after smtp.hello;
 *   - each line sent gets what the protocol promises: a request exactly one
 *     reply with its id (or, relayed, one request whose reply comes back
 *     with the client's id), a line that is not a JSON object one
 *     CTL_E_PROTO error, a blank line, a reply nobody waits for or a
 *     one-way message nothing; a one-way client is never written to;
 *   - after the client hung up: the entries' index finds every entry where
 *     it is, each entry is a canonical prefix with a real action and
 *     source, the table holds exactly the entries (vt_db_source_dump per
 *     source), and the files on disk restore exactly them
 *     (persist_load_entries), unless a save failed and said so.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "controld.h"
#include "ctlproto.h"
#include "fleet.h"
#include "fuzz_cd.h"
#include "livelk.h"
#include "log.h"
#include "prefix.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

/* fail - a broken invariant: remove this input's directory (the host stays
 * as it was), then abort for libFuzzer to save the input */
static void fail(const char *why)
{
	fprintf(stderr, "fuzz_ctlsrv: %s\n", why);
	fuzz_rm_tree(dir);
	abort();
}

/* write_file - a whole small file */
static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		fail("cannot write the daemon's files");
}

/* pump - run the daemon's loop until it has nothing to do */
static void pump(void)
{
	struct epoll_event ev[16];

	for (int round = 0; round < 1000; round++) {
		int n = epoll_wait(cd->epfd, ev, 16, 0);

		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			struct cd_tag *t = ev[i].data.ptr;

			if (t->kind == TAG_CTL)
				ctlsrv_io(cd->ctl, t, ev[i].events);
		}
	}
	fail("the daemon's loop does not settle");
}

/* The client's view: bytes read, the one-way dialect said, smtp.hello
 * said, relayed requests waiting for this client's reply. */
struct client {
	int fd;
	char *in;
	size_t inlen, incap;
	int one_way, hello;
	int64_t relay_id[64], relay_client[64];
	int nrelay;
};

/* drain - everything the daemon wrote so far, the loop run between reads */
static void drain(struct client *cl)
{
	for (;;) {
		pump();
		if (cl->incap - cl->inlen < 65536) {
			cl->incap = cl->incap * 2 + 65536;
			cl->in = realloc(cl->in, cl->incap);
			if (!cl->in)
				fail("out of memory");
		}
		ssize_t r = recv(cl->fd, cl->in + cl->inlen, cl->incap - cl->inlen, MSG_DONTWAIT);

		if (r <= 0)
			return;
		cl->inlen += (size_t)r;
	}
}

/* next_out - the next whole line the daemon wrote, parsed; NULL when none.
 * A line that is not one JSON object breaks the protocol. */
static struct json_object *next_out(struct client *cl)
{
	char *nl = cl->inlen ? memchr(cl->in, '\n', cl->inlen) : NULL;

	if (!nl)
		return NULL;
	size_t len = (size_t)(nl - cl->in);
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = json_tokener_parse_ex(tok, cl->in, (int)len);

	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    tok->char_offset != (int)len || !json_object_is_type(o, json_type_object))
		fail("the daemon wrote a line that is not one JSON object");
	json_tokener_free(tok);
	if (getenv("FUZZ_CTLSRV_DEBUG"))
		fprintf(stderr, "fuzz_ctlsrv: < %.*s\n", (int)len, cl->in);
	memmove(cl->in, nl + 1, cl->inlen - len - 1);
	cl->inlen -= len + 1;
	return o;
}

/* check_reply - o is a well-formed reply with id */
static void check_reply(struct json_object *o, int64_t id)
{
	struct json_object *ok;
	int64_t code;
	const char *err;

	if (!json_object_object_get_ex(o, "ok", &ok) || !json_object_is_type(ok, json_type_boolean))
		fail("a reply without a boolean \"ok\"");
	if (ctl_msg_id(o) != id)
		fail("a reply with another request's id");
	if (json_object_get_boolean(ok))
		return;
	if (ctl_get_int(o, "code", &code) < 0 || code < CTL_E_PROTO || code > CTL_E_BUSY)
		fail("a failure without a known code");
	if (!(err = ctl_get_str(o, "error")) || !*err)
		fail("a failure without an error text");
}

/* expect - what one line sent must have produced (see the head comment);
 * 1 when the daemon was told to detach (it exits: the input ends) */
static int expect(struct client *cl, const char *line, size_t len)
{
	struct ctl_buf b;
	struct json_object *msg = NULL, *o;
	int r, detach = 0;

	ctl_buf_init(&b, CTL_MAX_LINE);
	if (ctl_buf_append(&b, line, len) < 0 || ctl_buf_append(&b, "\n", 1) < 0)
		fail("out of memory");
	r = ctl_buf_next(&b, &msg);
	ctl_buf_free(&b);
	if (cl->one_way) {
		/* a one-way client is never answered, whatever it sends */
		if (cl->inlen)
			fail("the daemon wrote to a one-way client");
		json_object_put(msg);
		return 0;
	}
	if (r < 0) {
		o = next_out(cl);
		if (!o)
			fail("a line that is not a JSON object got no error");
		check_reply(o, -1);
		int64_t code = 0;

		ctl_get_int(o, "code", &code);
		if (code != CTL_E_PROTO)
			fail("a line that is not a JSON object got another error than CTL_E_PROTO");
		json_object_put(o);
	} else if (r == 1) {
		const char *type = ctl_get_str(msg, "type"), *cmd = ctl_get_str(msg, "cmd");
		int64_t id = ctl_msg_id(msg);

		if (type && !cmd) {
			cl->one_way = 1;
		} else if (ctl_msg_is_reply(msg)) {
			int k;

			for (k = 0; k < cl->nrelay && cl->relay_id[k] != id; k++)
				;
			if (k < cl->nrelay) {
				/* the answer to a relayed request, back to
				 * the client that asked (here the same) */
				if (!(o = next_out(cl)))
					fail("a relayed request's reply was not passed on");
				if (ctl_msg_id(o) != cl->relay_client[k])
					fail("a relayed reply passed on with the wrong id");
				json_object_put(o);
				cl->relay_id[k] = cl->relay_id[--cl->nrelay];
				cl->relay_client[k] = cl->relay_client[cl->nrelay];
			}
		} else {
			if (!(o = next_out(cl)))
				fail("a request got no reply");
			const char *fwd = ctl_get_str(o, "cmd");

			if (fwd) {
				/* relayed to the moat-smtpd of this connection */
				if (!cl->hello || !cmd ||
				    (strcmp(cmd, "rules.reload") && strcmp(cmd, "smtp.stats")) ||
				    strcmp(fwd, cmd))
					fail("a request the daemon should have answered was relayed");
				if (cl->nrelay == 64)
					fail("more than 64 relays pending");
				cl->relay_id[cl->nrelay] = ctl_msg_id(o);
				cl->relay_client[cl->nrelay++] = id;
			} else {
				check_reply(o, id);
				struct json_object *ok;

				json_object_object_get_ex(o, "ok", &ok);
				if (cmd && strcmp(cmd, "smtp.hello") == 0)
					cl->hello = 1;
				if (cmd && strcmp(cmd, "detach") == 0 && json_object_get_boolean(ok))
					detach = 1;
			}
			json_object_put(o);
		}
	}
	json_object_put(msg);
	if ((o = next_out(cl))) {
		json_object_put(o);
		fail("the daemon wrote more than one line for one line sent");
	}
	return detach;
}

/* relay_reply - a reply line whose "id" is k (1..pending relays) answers
 * the k-th relayed request: its id becomes that request's (the daemon
 * numbers relays for its whole life, an input cannot know the numbers).
 * The line to send instead (malloc'd, *len its length), or NULL. */
static char *relay_reply(struct client *cl, const char *line, size_t *len)
{
	struct ctl_buf b;
	struct json_object *msg = NULL;
	char *alt = NULL;
	int64_t k;

	ctl_buf_init(&b, CTL_MAX_LINE);
	if (ctl_buf_append(&b, line, *len) == 0 && ctl_buf_append(&b, "\n", 1) == 0 &&
	    ctl_buf_next(&b, &msg) == 1 && ctl_msg_is_reply(msg) &&
	    ctl_get_int(msg, "id", &k) == 0 && k >= 1 && k <= cl->nrelay) {
		json_object_object_add(msg, "id", json_object_new_int64(cl->relay_id[k - 1]));
		if ((alt = ctl_format(msg, len)))
			(*len)--; /* without its newline */
	}
	json_object_put(msg);
	ctl_buf_free(&b);
	return alt;
}

/* same_entry - e as the table or the disk gives it back */
static int entry_cmp(const void *a, const void *b)
{
	const struct cd_entry *x = a, *y = b;
	int c = moat_prefix_cmp(&x->pfx, &y->pfx);

	return c ? c : (int)x->source - (int)y->source;
}

/* check_state - the entries, their index, the table and the disk agree */
static void check_state(void)
{
	struct cd *d = cd;
	const char *bad = fuzz_entries_check(d);

	if (bad)
		fail(bad);
	/* the disk: a restart restores exactly these */
	if (!d->entries_unsaved) {
		struct cd_entry *got = NULL, *have;
		size_t n = 0;
		char path[PATH_MAX];
		int r = persist_load_entries(d, &got, &n, path, sizeof(path));

		if (r == -ENOENT)
			n = 0;
		else if (r < 0)
			fail("the entries' files do not load");
		if (n != d->nentries)
			fail("the entries' files restore another number of entries");
		have = malloc((d->nentries ? d->nentries : 1) * sizeof(*have));
		if (!have)
			fail("out of memory");
		if (n) {
			memcpy(have, d->entries, n * sizeof(*have));
			qsort(have, n, sizeof(*have), entry_cmp);
			qsort(got, n, sizeof(*got), entry_cmp);
		}
		for (size_t i = 0; i < n; i++)
			if (entry_cmp(&have[i], &got[i]) || have[i].action != got[i].action ||
			    have[i].expires != got[i].expires ||
			    strcmp(have[i].reason, got[i].reason))
				fail("the entries' files restore other entries than the daemon holds");
		free(have);
		free(got);
	}
}

/* daemon_down - moat-controld's stop; the directory removed (atexit) */
static void daemon_down(void)
{
	if (!cd)
		return;
	livelk_close();
	fleet_close(cd);
	ctlsrv_close(cd->ctl);
	zm_free(cd);
	close(cd->epfd);
	free(cd);
	cd = NULL;
	fuzz_rm_tree(dir);
	dir[0] = 0;
}

/* daemon_up - moat-controld's start-up (controld.c main) without the fast
 * path, NOTIFY, metrics or privilege drop: configuration, table, sources,
 * restored entries, control socket.  Once per process (the first publish
 * of an empty table costs ~100 ms); every input leaves it as it found it
 * (reset). */
static void daemon_up(void)
{
	static char conf[PATH_MAX];
	char path[PATH_MAX], text[1024], err[CFG_ERRLEN];
	char tmpl[] = "/dev/shm/moat-fuzz-ctlsrv-XXXXXX";
	struct timespec old[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };
	struct moat_config *boot;

	if (!mkdtemp(tmpl))
		abort();
	snprintf(dir, sizeof(dir), "%s", tmpl);
	atexit(daemon_down);
	snprintf(conf, sizeof(conf), "%s/moat.conf", dir);
	snprintf(text, sizeof(text),
		 "[daemon]\nsocket = %s/ctl.sock\nstate_dir = %s/state\nlog_level = error\n"
		 "[policy]\ndrop_threshold = 2\n"
		 "[zone local.rbl]\ntype = rbldnsd\nfile = %s/local.rbl\nformat = ip4set\nweight = 1\n",
		 dir, dir, dir);
	write_file(conf, text);
	snprintf(path, sizeof(path), "%s/local.rbl", dir);
	write_file(path, ":127.0.0.2:listed\n192.0.2.0/24\n198.51.100.7\n!192.0.2.9\n");
	/* a file modified this second may be mid-write: not read until the next */
	utimensat(AT_FDCWD, path, old, 0);
	snprintf(path, sizeof(path), "%s/state", dir);
	if (mkdir(path, 0750) < 0)
		fail("mkdir state");
	cd = calloc(1, sizeof(*cd));
	if (!cd)
		fail("out of memory");
	cd->cfg_path = conf;
	cd->started = time(NULL);
	cd->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (cd->epfd < 0 || cfg_load(&cd->cfg, conf, err) < 0)
		fail(err);
	if (zm_init(cd, err, sizeof(err)) < 0)
		fail(err);
	if (!(boot = malloc(sizeof(*boot))))
		fail("out of memory");
	*boot = cd->cfg;
	if (zm_apply_config(cd, boot, err, sizeof(err)) < 0)
		fail(err);
	free(boot);
	zm_entries_restore(cd);
	zm_publish(cd, "restore");
	zm_tick(cd, time(NULL)); /* the rbldnsd file loads */
	if (cd->nzones != 1 || cd->zones[0]->state != ZS_OK)
		fail("the rbldnsd zone did not load");
	cd->ctl = ctlsrv_open(cd, err, sizeof(err));
	if (!cd->ctl)
		fail(err);
}

/* reset - the daemon as daemon_up left it: no entries (each removed as
 * moatctl del removes it: table, journal), not detached */
static void reset(void)
{
	char err[256];

	while (cd->nentries) {
		const struct cd_entry *e = &cd->entries[cd->nentries - 1];

		if (zm_entry_del(cd, &e->pfx, e->source, err, sizeof(err)) < 0)
			fail("an entry cannot be removed");
	}
	cd->quit = 0;
	cd->detached = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct client cl = { .fd = -1 };
	size_t off = 0;

	log_set_level(getenv("FUZZ_CTLSRV_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_ERR);
	if (!cd)
		daemon_up();
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.64s/ctl.sock", dir);
	cl.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cl.fd < 0 || connect(cl.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fail("cannot connect to the control socket");
	pump(); /* accepted */
	while (off < size) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t len = nl ? (size_t)(nl - (data + off)) : size - off;

		const char *line = (const char *)data + off;
		char *alt = nl ? relay_reply(&cl, line, &len) : NULL;

		if (alt)
			line = alt;
		/* one line at a time, so each line's answer is known */
		if (send(cl.fd, line, len, MSG_NOSIGNAL) != (ssize_t)len ||
		    (nl && send(cl.fd, "\n", 1, MSG_NOSIGNAL) != 1))
			fail("cannot send to the control socket");
		drain(&cl);
		if (!nl) {
			/* a line without its newline is held, never answered */
			if (cl.inlen)
				fail("the daemon answered a line before its newline");
			break;
		}
		int detached = expect(&cl, line, len);

		free(alt);
		if (detached)
			break; /* moat-controld would exit here */
		off = (size_t)((const uint8_t *)nl - data) + 1;
	}
	/* the client hangs up: a batch it staged is dropped, nothing else
	 * changes */
	size_t before = cd->nentries;

	close(cl.fd);
	pump();
	if (cd->nentries != before)
		fail("closing the connection changed the entries");
	check_state();
	free(cl.in);
	reset();
	return 0;
}
