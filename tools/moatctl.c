/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * moatctl - the operator's command line for moat.  It talks only to
 * moat-controld's control socket (lib/ctlproto.h); SMTP subcommands are
 * relayed by moat-controld to moat-smtpd.  Each subcommand is a row of
 * cmds[] (name, usage, help, handler), as in xdp-filter.
 *
 * Exit codes (moatctl(8)):
 *   0 success, 1 moat-controld answered with an error, 2 usage error,
 *   3 moat-controld unreachable (no socket, timeout), 4 no such zone/entry.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "ctlproto.h"
#include "listing.h"
#include "prefix.h"
#include "vtable.h"

#define EXIT_REPLY 1
#define EXIT_USAGE 2
#define EXIT_CONN 3
#define EXIT_NOTFOUND 4

static const char *sock_path = "/run/moat/control.sock";
static int opt_json;
static int opt_timeout_ms = 10000;

struct cmd {
	const char *name;     /* "zone refresh" style: words matched in order */
	const char *args;
	const char *help;
	int (*fn)(const struct cmd *c, int argc, char **argv);
	const char *req;      /* do_simple: the request's "cmd" */
	int (*human)(struct json_object *res); /* do_simple: table output */
};

/* connect_ctl - the control socket, or -1 with the error printed */
static int connect_ctl(void)
{
	int fd = ctl_connect(sock_path);

	if (fd < 0)
		fprintf(stderr, "moatctl: cannot connect to moat-controld at %s: %s\n", sock_path,
			strerror(-fd));
	return fd < 0 ? -1 : fd;
}

/* call_on - one request on an open connection (req consumed); prints
 * errors; returns exit code and the result object (a new reference) in
 * *res on success */
static int call_on(int fd, struct ctl_buf *b, struct json_object *req, struct json_object **res)
{
	struct json_object *reply = NULL;
	int r = ctl_call(fd, b, req, &reply, opt_timeout_ms);

	*res = NULL;
	json_object_put(req);
	if (r < 0) {
		fprintf(stderr, "moatctl: %s: %s\n", sock_path,
			r == -ETIMEDOUT ? "no answer (timeout)" : strerror(-r));
		return EXIT_CONN;
	}
	int ok = 0;

	ctl_get_bool(reply, "ok", &ok);
	if (!ok) {
		int64_t code = CTL_E_FAILED;
		const char *e = ctl_get_str(reply, "error");

		ctl_get_int(reply, "code", &code);
		if (opt_json)
			printf("%s\n", json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		fprintf(stderr, "moatctl: %s\n", e ? e : "error");
		json_object_put(reply);
		return code == CTL_E_NOTFOUND ? EXIT_NOTFOUND :
		       code == CTL_E_ARG || code == CTL_E_UNKNOWN ? EXIT_USAGE : EXIT_REPLY;
	}
	struct json_object *result;

	if (json_object_object_get_ex(reply, "result", &result))
		*res = json_object_get(result);
	else
		*res = json_object_new_object();
	json_object_put(reply);
	return 0;
}

/* call - one request to moat-controld on a connection of its own */
static int call(struct json_object *req, struct json_object **res)
{
	struct ctl_buf b;
	int fd = connect_ctl();

	*res = NULL;
	if (fd < 0) {
		json_object_put(req);
		return EXIT_CONN;
	}
	ctl_buf_init(&b, CTL_MAX_REPLY);
	int rc = call_on(fd, &b, req, res);

	close(fd);
	ctl_buf_free(&b);
	return rc;
}

/* simple - send cmd with no arguments; print the result as JSON or as
 * key: value lines */
static int print_kv(struct json_object *o)
{
	json_object_object_foreach(o, k, v) {
		if (json_object_is_type(v, json_type_array) || json_object_is_type(v, json_type_object))
			printf("%-18s %s\n", k, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		else if (!v) /* a field with no value (pin_dir without a fast path) */
			printf("%-18s none\n", k);
		else
			printf("%-18s %s\n", k, json_object_get_string(v));
	}
	return 0;
}

/* finish - print res (JSON or via human()), release it */
static int finish(int rc, struct json_object *res, int (*human)(struct json_object *))
{
	if (rc == 0) {
		if (opt_json)
			printf("%s\n", json_object_to_json_string_ext(res, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		else
			human(res);
	}
	json_object_put(res);
	return rc;
}

/* run - call, then print the result with human() or as JSON */
static int run(struct json_object *req, int (*human)(struct json_object *))
{
	struct json_object *res;

	int rc = call(req, &res);

	return finish(rc, res, human);
}

/* do_simple - a subcommand with no arguments: one request, one answer */
static int do_simple(const struct cmd *c, int argc, char **argv)
{
	(void)argv;
	if (argc > 0) {
		fprintf(stderr, "moatctl: %s takes no arguments\n", c->name);
		return EXIT_USAGE;
	}
	return run(ctl_request_new(1, c->req), c->human);
}

/* fmt_age - "12s ago" style */
static const char *fmt_age(int64_t t, char *buf, size_t sz)
{
	if (t <= 0)
		return "never";
	int64_t a = (int64_t)time(NULL) - t;

	if (a < 120)
		snprintf(buf, sz, "%llds ago", (long long)a);
	else if (a < 7200)
		snprintf(buf, sz, "%lldm ago", (long long)(a / 60));
	else
		snprintf(buf, sz, "%lldh ago", (long long)(a / 3600));
	return buf;
}

/* human_zones - zones as a table */
static int human_zones(struct json_object *res)
{
	struct json_object *a;
	char age[32];

	if (!json_object_object_get_ex(res, "zones", &a))
		return 0;
	printf("%-28s %-8s %-12s %-11s %10s %11s %8s  %s\n", "ZONE", "TYPE", "STATE", "SERIAL",
	       "ENTRIES", "SUCCESS", "FAILURES", "LAST ERROR");
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *z = json_object_array_get_idx(a, i);
		int64_t serial = 0, n = 0, f = 0, ls = 0;

		ctl_get_int(z, "serial", &serial);
		ctl_get_int(z, "entries", &n);
		ctl_get_int(z, "failures", &f);
		ctl_get_int(z, "last_success", &ls);
		printf("%-28s %-8s %-12s %-11lld %10lld %11s %8lld  %s\n", ctl_get_str(z, "name"),
		       ctl_get_str(z, "type"), ctl_get_str(z, "state"), (long long)serial, (long long)n,
		       fmt_age(ls, age, sizeof(age)), (long long)f, ctl_get_str(z, "last_error"));
	}
	return 0;
}

/* do_zone_refresh - zone refresh NAME [--full] */
static int do_zone_refresh(const struct cmd *cmd, int argc, char **argv)
{
	int full = argc == 2 && strcmp(argv[1], "--full") == 0;

	(void)cmd;
	if (argc != 1 && !full) {
		fprintf(stderr, "usage: moatctl zone refresh NAME [--full]\n");
		return EXIT_USAGE;
	}
	struct json_object *req = ctl_request_new(1, "zone.refresh");

	json_object_object_add(req, "zone", json_object_new_string(argv[0]));
	if (full)
		json_object_object_add(req, "full", json_object_new_boolean(1));
	return run(req, print_kv);
}

/* human_lookup - verdict, then one line per contributing source */
static int human_lookup(struct json_object *res)
{
	struct json_object *a;
	int64_t score = 0;

	ctl_get_int(res, "score", &score);
	printf("%s: %s (score %lld", ctl_get_str(res, "addr"), ctl_get_str(res, "action"),
	       (long long)score);
	const char *fa = ctl_get_str(res, "fastpath_action");

	if (strcmp(ctl_get_str(res, "action"), ctl_get_str(res, "live_action")))
		printf(", fast path still says %s: publish pending", ctl_get_str(res, "live_action"));
	else if (fa && strcmp(ctl_get_str(res, "action"), fa))
		printf(", the XDP maps say %s: resync pending", fa);
	printf(")\n");
	if (json_object_object_get_ex(res, "sources", &a)) {
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			struct json_object *s = json_object_array_get_idx(a, i);
			const char *act = ctl_get_str(s, "action"), *why = ctl_get_str(s, "reason");
			int64_t w = 0, left = 0;
			int ex = 0;
			char what[64];

			ctl_get_int(s, "weight", &w);
			ctl_get_bool(s, "exclude", &ex);
			if (ex)
				snprintf(what, sizeof(what), "not listed here (a more specific entry)");
			else if (act)
				snprintf(what, sizeof(what), "%s", act);
			else
				snprintf(what, sizeof(what), "%-16s weight %lld", ctl_get_str(s, "code"),
					 (long long)w);
			printf("  %-24s %-22s %s", ctl_get_str(s, "source"), ctl_get_str(s, "prefix"), what);
			if (ctl_get_int(s, "expires_in", &left) == 0)
				printf(", expires in %llds", (long long)left);
			if (why)
				printf(", reason \"%s\"", why);
			printf("\n");
		}
	}
	if (json_object_object_get_ex(res, "live", &a)) {
		int64_t sc = 0, failed = 0;

		for (size_t i = 0; i < json_object_array_length(a); i++) {
			struct json_object *s = json_object_array_get_idx(a, i);
			int64_t w = 0, ttl = 0;
			int ign = 0;

			ctl_get_int(s, "weight", &w);
			ctl_get_int(s, "ttl", &ttl);
			ctl_get_bool(s, "ignored", &ign);
			printf("  %-24s %-22s %-16s weight %lld ttl %llds%s\n", ctl_get_str(s, "zone"),
			       "(live DNS)", ctl_get_str(s, "code"), (long long)w, (long long)ttl,
			       ign ? " (ignored code)" : "");
		}
		ctl_get_int(res, "score_with_live", &sc);
		ctl_get_int(res, "live_failed", &failed);
		printf("with live lookups: %s (score %lld)%s\n", ctl_get_str(res, "action_with_live"),
		       (long long)sc, failed ? ", some live zones did not answer" : "");
	}
	return 0;
}

/* do_lookup - lookup ADDR [--no-live] */
static int do_lookup(const struct cmd *cmd, int argc, char **argv)
{
	(void)cmd;
	struct json_object *req;
	int nolive = argc == 2 && strcmp(argv[1], "--no-live") == 0;

	if (argc != 1 && !nolive) {
		fprintf(stderr, "usage: moatctl lookup ADDR [--no-live]\n");
		return EXIT_USAGE;
	}
	req = ctl_request_new(1, "lookup");
	json_object_object_add(req, "addr", json_object_new_string(argv[0]));
	/* --no-live: the table and maps only, no live DNS lookup (which
	 * would install fresh answers) */
	if (nolive)
		json_object_object_add(req, "live", json_object_new_boolean(0));
	return run(req, human_lookup);
}

/* A batch being read: entries as the requests will carry them. */
struct batch {
	struct json_object **e;
	size_t n, cap;
};

/* batch_push - one entry; 0 or EXIT_REPLY (out of memory) */
static int batch_push(struct batch *b, struct json_object *o)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		struct json_object **ne = realloc(b->e, cap * sizeof(*ne));

		if (!ne) {
			json_object_put(o);
			fprintf(stderr, "moatctl: out of memory\n");
			return EXIT_REPLY;
		}
		b->e = ne;
		b->cap = cap;
	}
	b->e[b->n++] = o;
	return 0;
}

/*
 * batch_entry - one line of a batch (PREFIX [ACTION [TTL [REASON...]]] for
 * add, PREFIX for del) checked and pushed; where names it in errors
 * ("FILE:LINE", "argument N").  0, EXIT_USAGE (error printed), EXIT_REPLY.
 */
static int batch_entry(struct batch *b, int del, char *text, const char *where,
		       const char *action, long long ttl, const char *reason)
{
	char *save, *pfx = strtok_r(text, " \t\r\n", &save);
	char *act = pfx ? strtok_r(NULL, " \t\r\n", &save) : NULL;
	char *ttls = act ? strtok_r(NULL, " \t\r\n", &save) : NULL;
	char *why = ttls ? strtok_r(NULL, "\r\n", &save) : NULL;
	struct moat_prefix p;
	uint32_t a;
	int r = moat_prefix_parse(pfx, &p);

	if (r != 0) {
		fprintf(stderr, "moatctl: %s: '%s' is not ADDR or ADDR/LEN%s\n", where, pfx,
			r == -EDOM ? " with no host bits set" : "");
		return EXIT_USAGE;
	}
	if (del && act) {
		fprintf(stderr, "moatctl: %s: a delete line is a prefix alone ('%s' follows it)\n",
			where, act);
		return EXIT_USAGE;
	}
	if (act)
		action = act;
	if (!del && !action) {
		fprintf(stderr, "moatctl: %s: no action (a second field, or --action)\n", where);
		return EXIT_USAGE;
	}
	if (!del && (vt_action_parse(action, &a) < 0 || a == MOAT_ACT_PASS)) {
		fprintf(stderr, "moatctl: %s: '%s' is not an action (drop, tarpit, allow)\n", where,
			action);
		return EXIT_USAGE;
	}
	if (ttls) {
		char *end;

		ttl = strtoll(ttls, &end, 10);
		if (*end || ttl < 0) {
			fprintf(stderr, "moatctl: %s: '%s' is not a TTL in seconds\n", where, ttls);
			return EXIT_USAGE;
		}
	}
	if (why) {
		while (*why == ' ' || *why == '\t')
			why++;
		reason = why;
	}
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "prefix", json_object_new_string(pfx));
	if (!del) {
		json_object_object_add(o, "action", json_object_new_string(action));
		json_object_object_add(o, "ttl", json_object_new_int64(ttl));
		if (reason && *reason)
			json_object_object_add(o, "reason", json_object_new_string(reason));
	}
	json_object_object_add(o, "line", json_object_new_string(where));
	return batch_push(b, o);
}

/* batch_file - every line of path ("-": stdin); blank and # lines skipped */
static int batch_file(struct batch *b, int del, const char *path, const char *action,
		      long long ttl, const char *reason)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char *line = NULL, where[96];
	size_t cap = 0;
	unsigned long no = 0;
	int rc = 0;

	if (!f) {
		fprintf(stderr, "moatctl: %s: %s\n", path, strerror(errno));
		return EXIT_USAGE;
	}
	while (rc == 0 && getline(&line, &cap, f) >= 0) {
		const char *t = line;

		no++;
		while (*t == ' ' || *t == '\t')
			t++;
		if (!*t || *t == '\n' || *t == '\r' || *t == '#')
			continue;
		snprintf(where, sizeof(where), "%.80s:%lu", path, no);
		rc = batch_entry(b, del, line, where, action, ttl, reason);
	}
	if (rc == 0 && ferror(f)) {
		fprintf(stderr, "moatctl: %s: %s\n", path, strerror(errno));
		rc = EXIT_USAGE;
	}
	free(line);
	if (f != stdin)
		fclose(f);
	return rc;
}

/* batch_send - the entries in requests below the line limit on one
 * connection, the last one committing; prints the result */
static int batch_send(struct batch *b, int del, const char *source, int share)
{
	struct ctl_buf cb;
	struct json_object *res = NULL;
	int fd = connect_ctl(), rc = 0;
	size_t i = 0;

	if (fd < 0)
		return EXIT_CONN;
	ctl_buf_init(&cb, CTL_MAX_REPLY);
	do {
		struct json_object *req = ctl_request_new(1, "batch");
		struct json_object *a = json_object_new_array();
		size_t bytes = 200;

		json_object_object_add(req, "op", json_object_new_string(del ? "del" : "add"));
		if (source)
			json_object_object_add(req, "source", json_object_new_string(source));
		if (share >= 0) /* the committing request's decides */
			json_object_object_add(req, "share", json_object_new_boolean(share));
		/* a chunk stays well below CTL_MAX_LINE, however long its reasons */
		while (i < b->n && bytes < CTL_MAX_LINE / 2) {
			bytes += strlen(json_object_to_json_string_ext(b->e[i], JSON_C_TO_STRING_PLAIN)) + 1;
			json_object_array_add(a, b->e[i]);
			b->e[i++] = NULL;
		}
		json_object_object_add(req, "entries", a);
		json_object_object_add(req, "commit", json_object_new_boolean(i == b->n));
		json_object_put(res);
		rc = call_on(fd, &cb, req, &res);
	} while (rc == 0 && i < b->n);
	close(fd);
	ctl_buf_free(&cb);
	if (rc == 0 && !opt_json) {
		struct json_object *v;
		double ms = json_object_object_get_ex(res, "ms", &v) ? json_object_get_double(v) : 0;
		int64_t n = 0, added = 0, replaced = 0, removed = 0;

		ctl_get_int(res, "entries", &n);
		ctl_get_int(res, "added", &added);
		ctl_get_int(res, "replaced", &replaced);
		ctl_get_int(res, "removed", &removed);
		if (del)
			printf("removed %lld entries in %.1f ms\n", (long long)removed, ms);
		else
			printf("added %lld entries (%lld new, %lld replaced) in %.1f ms\n",
			       (long long)n, (long long)added, (long long)replaced, ms);
	} else if (rc == 0) {
		printf("%s\n", json_object_to_json_string_ext(res, JSON_C_TO_STRING_PLAIN));
	}
	json_object_put(res);
	return rc;
}

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		json_object_put(b->e[i]);
	free(b->e);
}

/*
 * add_del - moatctl add / del: one prefix as one request (as before), or
 * many (several prefixes, -f FILE, -f - for stdin) checked here line by
 * line, then sent as one batch that moat-controld applies whole or not at
 * all.
 */
static int add_del(int del, int argc, char **argv)
{
	static const struct option o[] = {
		{ "action", required_argument, NULL, 'a' },
		{ "ttl", required_argument, NULL, 't' },
		{ "reason", required_argument, NULL, 'r' },
		{ "file", required_argument, NULL, 'f' },
		{ "source", required_argument, NULL, 's' },
		{ "share", no_argument, NULL, 'H' },
		{ "no-share", no_argument, NULL, 'N' },
		{ 0 },
	};
	const char *action = NULL, *reason = NULL, *source = NULL, *files[16];
	long long ttl = 0;
	int c, nfiles = 0, rc = 0, share = -1;
	char *end;
	int nargc = argc + 1;
	char **nargv = argv - 1; /* the command word is argv[0] for getopt */
	const char *use = del ?
		"usage: moatctl del PREFIX... [-f FILE|-] [--source operator|smtp]\n" :
		"usage: moatctl add PREFIX... [-f FILE|-] --action drop|tarpit|allow [--ttl S] [--reason TEXT]\n"
		"                   [--share|--no-share]\n"
		"       FILE lines: PREFIX [ACTION [TTL [REASON...]]], # comments\n";

	optind = 0;
	while ((c = getopt_long(nargc, nargv, del ? "f:s:" : "a:t:r:f:", o, NULL)) != -1) {
		switch (c) {
		case 'a': action = optarg; break;
		case 'r': reason = optarg; break;
		case 's': source = optarg; break;
		case 'H': share = 1; break;
		case 'N': share = 0; break;
		case 'f':
			if (nfiles == 16) {
				fprintf(stderr, "moatctl: at most 16 -f files\n");
				return EXIT_USAGE;
			}
			files[nfiles++] = optarg;
			break;
		case 't':
			ttl = strtoll(optarg, &end, 10);
			if (*end || ttl < 0) {
				fprintf(stderr, "moatctl: --ttl wants seconds\n");
				return EXIT_USAGE;
			}
			break;
		default: fputs(use, stderr); return EXIT_USAGE;
		}
	}
	if ((nargc == optind && !nfiles) || (!del && !action && !nfiles) ||
	    (source && strcmp(source, "operator") && strcmp(source, "smtp"))) {
		fputs(use, stderr);
		return EXIT_USAGE;
	}
	if (nargc - optind == 1 && !nfiles) {
		struct json_object *req = ctl_request_new(1, del ? "del" : "add");

		json_object_object_add(req, "prefix", json_object_new_string(nargv[optind]));
		if (del && source)
			json_object_object_add(req, "source", json_object_new_string(source));
		if (!del) {
			json_object_object_add(req, "action", json_object_new_string(action));
			json_object_object_add(req, "ttl", json_object_new_int64(ttl));
			if (reason)
				json_object_object_add(req, "reason", json_object_new_string(reason));
			if (share >= 0)
				json_object_object_add(req, "share", json_object_new_boolean(share));
		}
		return run(req, print_kv);
	}
	struct batch b = { 0 };
	char where[32];

	for (int i = optind; i < nargc && rc == 0; i++) {
		snprintf(where, sizeof(where), "argument %d", i - optind + 1);
		rc = batch_entry(&b, del, nargv[i], where, action, ttl, reason);
	}
	for (int i = 0; i < nfiles && rc == 0; i++)
		rc = batch_file(&b, del, files[i], action, ttl, reason);
	if (rc == 0 && b.n == 0) {
		fprintf(stderr, "moatctl: no entries (the files hold only comments)\n");
		rc = EXIT_USAGE;
	}
	if (rc == 0)
		rc = batch_send(&b, del, source, share);
	else
		fprintf(stderr, "moatctl: nothing was sent: a batch is applied whole or not at all\n");
	batch_free(&b);
	return rc;
}

/* do_add - add PREFIX... [-f FILE] --action A [--ttl S] [--reason T] */
static int do_add(const struct cmd *cmd, int argc, char **argv)
{
	(void)cmd;
	return add_del(0, argc, argv);
}

/* do_del - del PREFIX... [-f FILE] [--source operator|smtp] */
static int do_del(const struct cmd *cmd, int argc, char **argv)
{
	(void)cmd;
	return add_del(1, argc, argv);
}

/* do_fleet - fleet [--entries]: what this appliance publishes to the fleet */
static int do_fleet(const struct cmd *cmd, int argc, char **argv)
{
	struct json_object *req;

	(void)cmd;
	if (argc > 1 || (argc == 1 && strcmp(argv[0], "--entries") != 0)) {
		fprintf(stderr, "usage: moatctl fleet [--entries]\n");
		return EXIT_USAGE;
	}
	req = ctl_request_new(1, "fleet");
	if (argc == 1)
		json_object_object_add(req, "entries", json_object_new_boolean(1));
	return run(req, print_kv);
}

/* human_list - entries as a table */
static int human_list(struct json_object *res)
{
	struct json_object *a;

	if (!json_object_object_get_ex(res, "entries", &a))
		return 0;
	printf("%-24s %-7s %-9s %10s  %s\n", "PREFIX", "ACTION", "SOURCE", "TTL LEFT", "REASON");
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *e = json_object_array_get_idx(a, i);
		int64_t t = 0;
		char tb[24];

		ctl_get_int(e, "ttl_left", &t);
		snprintf(tb, sizeof(tb), t ? "%llds" : "-", (long long)t);
		printf("%-24s %-7s %-9s %10s  %s\n", ctl_get_str(e, "prefix"), ctl_get_str(e, "action"),
		       ctl_get_str(e, "source"), tb, ctl_get_str(e, "reason"));
	}
	return 0;
}

/* human_stats - counters and rates as a table */
static int human_stats(struct json_object *res)
{
	struct json_object *cnt, *rate;

	if (!json_object_object_get_ex(res, "counters", &cnt) ||
	    !json_object_object_get_ex(res, "rates", &rate))
		return 0;
	printf("%-16s %16s %12s\n", "COUNTER", "TOTAL", "PER SECOND");
	json_object_object_foreach(cnt, k, v) {
		struct json_object *r;
		double rv = 0;

		if (json_object_object_get_ex(rate, k, &r))
			rv = json_object_get_double(r);
		printf("%-16s %16lld %12.1f\n", k, (long long)json_object_get_int64(v), rv);
	}
	return 0;
}

/* do_watch - print sampled verdicts until interrupted (or --count N) */
static int do_watch(const struct cmd *cmd, int argc, char **argv)
{
	(void)cmd;
	static const struct option o[] = { { "count", required_argument, NULL, 'n' }, { 0 } };
	long count = -1;
	int c;

	optind = 0;
	while ((c = getopt_long(argc + 1, argv - 1, "n:", o, NULL)) != -1) {
		if (c != 'n')
			return EXIT_USAGE;
		count = strtol(optarg, NULL, 10);
	}
	if (optind != argc + 1) {
		fprintf(stderr, "usage: moatctl watch [--count N]\n");
		return EXIT_USAGE;
	}
	int fd = ctl_connect(sock_path);

	if (fd < 0) {
		fprintf(stderr, "moatctl: cannot connect to moat-controld at %s: %s\n", sock_path,
			strerror(-fd));
		return EXIT_CONN;
	}
	struct ctl_buf b;
	struct json_object *req = ctl_request_new(1, "watch"), *reply, *m;

	ctl_buf_init(&b, CTL_MAX_REPLY);
	int r = ctl_call(fd, &b, req, &reply, opt_timeout_ms);

	json_object_put(req);
	if (r < 0) {
		fprintf(stderr, "moatctl: watch: %s\n", strerror(-r));
		close(fd);
		return EXIT_CONN;
	}
	json_object_put(reply);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (count != 0 && (r = ctl_recv(fd, &b, &m, -1)) == 1) {
		if (opt_json) {
			printf("%s\n", json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		} else {
			int64_t sp = 0, dp = 0;

			ctl_get_int(m, "sport", &sp);
			ctl_get_int(m, "dport", &dp);
			printf("%-7s %s:%lld -> :%lld (%s)\n", ctl_get_str(m, "action"), ctl_get_str(m, "src"),
			       (long long)sp, (long long)dp, ctl_get_str(m, "stat"));
		}
		json_object_put(m);
		if (count > 0)
			count--;
	}
	ctl_buf_free(&b);
	close(fd);
	return 0;
}

static const struct cmd cmds[] = {
	{ "status", "", "daemon overview: version, fast path, zones, entries", do_simple, "status", print_kv },
	{ "zones", "", "every zone: state, serial, entries, last success, failures, error", do_simple, "zones", human_zones },
	{ "zone refresh", "NAME [--full]", "refresh a zone now (--full: AXFR / re-read the file)", do_zone_refresh, NULL, NULL },
	{ "lookup", "ADDR [--no-live]", "action and score of an address, every source and code that contributed", do_lookup, NULL, NULL },
	{ "add", "PREFIX...|-f FILE|-f - --action A [--ttl S] [--reason T] [--share|--no-share]", "add operator entries (many: one batch, all or nothing; --share: publish to the fleet)", do_add, NULL, NULL },
	{ "del", "PREFIX...|-f FILE|-f - [--source operator|smtp]", "remove operator (or moat-smtpd) entries (many: one batch)", do_del, NULL, NULL },
	{ "list", "", "operator and moat-smtpd entries", do_simple, "list", human_list },
	{ "fleet", "[--entries]", "fleet sharing: zone, primary, queued/sent/refused updates, entries contributed", do_fleet, NULL, NULL },
	{ "stats", "", "fast-path counters per action, and rates", do_simple, "stats", human_stats },
	{ "watch", "[--count N]", "stream of sampled verdicts from the fast path", do_watch, NULL, NULL },
	{ "reload", "", "re-read the configuration (a bad one is refused, the old one stays)", do_simple, "reload", print_kv },
	{ "detach", "", "remove the XDP program: filtering STOPS; moat-controld exits", do_simple, "detach", print_kv },
	{ "rules reload", "", "moat-smtpd: reload content rules (relayed)", do_simple, "rules.reload", print_kv },
	{ "smtp stats", "", "moat-smtpd counters (relayed)", do_simple, "smtp.stats", print_kv },
};

/* usage - the --help text, from cmds[] */
static void usage(FILE *f)
{
	fprintf(f, "usage: moatctl [--socket PATH] [--json] [--timeout S] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char head[96];

		snprintf(head, sizeof(head), "%s %s", cmds[i].name, cmds[i].args);
		fprintf(f, "  %-44s %s\n", head, cmds[i].help);
	}
	fprintf(f, "\n--json (anywhere on the line) prints moat-controld's answer as JSON.\n"
		   "Socket: --socket, else $MOAT_SOCKET, else /run/moat/control.sock.\n"
		   "Exit: 0 ok, 1 error reply, 2 usage, 3 moat-controld unreachable, 4 not found.\n"
		   "See moatctl(8).\n");
}

/* main - global options anywhere, longest command match, dispatch */
int main(int argc, char **argv)
{
	char **args = calloc((size_t)argc + 1, sizeof(*args));
	int n = 0;

	if (!args)
		return 1;
	if (getenv("MOAT_SOCKET"))
		sock_path = getenv("MOAT_SOCKET");
	/* global options may stand anywhere: take them out first */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0) {
			opt_json = 1;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			free(args);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
			printf("moatctl %s\n", MOAT_VERSION);
			free(args);
			return 0;
		} else if ((strcmp(argv[i], "--socket") == 0 || strcmp(argv[i], "-s") == 0) && i + 1 < argc) {
			sock_path = argv[++i];
		} else if (strncmp(argv[i], "--socket=", 9) == 0) {
			sock_path = argv[i] + 9;
		} else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			opt_timeout_ms = atoi(argv[++i]) * 1000;
		} else {
			args[n++] = argv[i];
		}
	}
	if (n == 0) {
		usage(stderr);
		free(args);
		return EXIT_USAGE;
	}
	/* longest match of the command words */
	const struct cmd *best = NULL;
	int best_words = 0;

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char name[64], *save, *w;
		int k = 0, ok = 1;

		snprintf(name, sizeof(name), "%s", cmds[i].name);
		for (w = strtok_r(name, " ", &save); w; w = strtok_r(NULL, " ", &save), k++)
			if (k >= n || strcmp(args[k], w) != 0)
				ok = 0;
		if (ok && k > best_words) {
			best = &cmds[i];
			best_words = k;
		}
	}
	if (!best) {
		fprintf(stderr, "moatctl: unknown command '%s' (moatctl --help lists them)\n", args[0]);
		free(args);
		return EXIT_USAGE;
	}
	int rc = best->fn(best, n - best_words, args + best_words);

	free(args);
	return rc;
}
