/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * moat-zonecheck - transfer a DNSBL zone with libmoatsrc and print its
 * listings; optionally stay up, refresh on NOTIFY (UDP and TCP) or SIGUSR1,
 * and answer address lookups from the listings.  It drives the same
 * non-blocking API moat-controld uses (epoll over moat_xfr_fd/events), so
 * the netns tests exercise that path; it is also an operator's check tool.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "dnstcp.h"
#include "live.h"
#include "log.h"
#include "lvec.h"
#include "outfile.h"
#include "owner.h"
#include "sanity.h"
#include "xfr.h"
#include "zone.h"

#define MAX_TCP 8 /* NOTIFY connections at once */

static void usage(FILE *f)
{
	fprintf(f,
"usage: moat-zonecheck --server ADDR[@PORT] --zone NAME [options]\n"
"Transfer a DNSBL zone (AXFR, then IXFR) and print its listings.\n"
"  -s, --server ADDR[@PORT]  primary (repeatable), default port 53\n"
"  -z, --zone NAME           zone apex\n"
"  -k, --tsig ALG:NAME:B64   TSIG key (e.g. hmac-sha256:xfr:...)\n"
"  -n, --count N             exit after N transfer attempts (default 1)\n"
"  -N, --notify ADDR@PORT    listen for NOTIFY on UDP and TCP\n"
"  -A, --notify-allow ADDR   accept NOTIFY from ADDR too\n"
"  -o, --out FILE            write the listings after each attempt to FILE\n"
"                            (default stdout, after successes only); one line:\n"
"                            PREFIX CODE TTL, or PREFIX - TTL exclude\n"
"  -l, --lookup FILE         after the last transfer, print for each address\n"
"                            in FILE (one a line) its verdict: ADDR CODES or ADDR -\n"
"  -t, --timeout MS          idle timeout per transfer (default 30000)\n"
"  -x, --axfr                never IXFR\n"
"  -T, --txt                 keep TXT records; --lookup adds each address's\n"
"                            answer as DNS gives it: CODES [wildcard] \"TXT\"\n"
"  -r, --repeat-now          start the next attempt at once (not at SOA refresh)\n"
"  -q, --quiet               no listings output (summary lines only)\n"
"  -R, --resolver ADDR[@PORT] live mode: no transfer; look up each address of\n"
"                            --lookup FILE in every --zone (repeatable) with\n"
"                            c-ares through this resolver; same output format\n"
"  -v, --verbose             debug logging\n"
"  -h, --help, -V, --version\n"
"Each attempt prints one line to stderr: 'result kind=full|ixfr|uptodate\n"
"serial=S add=A del=D records=R' or 'failed: REASON'.  SIGUSR1 refreshes now.\n"
"Exit: 0 when the last attempt succeeded, 1 when it failed, 2 usage.\n");
}

/* parse_addr - "ADDR[@PORT]" into ss */
static int parse_addr(const char *s, struct sockaddr_storage *ss, uint16_t defport)
{
	char buf[128];
	const char *at = strchr(s, '@');
	size_t n = at ? (size_t)(at - s) : strlen(s);
	unsigned long port = defport;

	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = 0;
	if (at) {
		char *e;
		port = strtoul(at + 1, &e, 10);
		if (*e || port == 0 || port > 65535)
			return -1;
	}
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, buf, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, buf, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
	} else {
		return -1;
	}
	return 0;
}

/* add_addr - append one ADDR[@PORT] option value to an address list */
static int add_addr(struct sockaddr_storage *list, size_t *n, const char *arg, const char *opt)
{
	if (*n == MOAT_XFR_MAX_PRIMARIES || parse_addr(arg, &list[*n], 53)) {
		fprintf(stderr, "moat-zonecheck: bad %s %s\n", opt, arg);
		return -1;
	}
	(*n)++;
	return 0;
}

/* print_listings - one line per listing */
static void print_listings(FILE *f, const struct moat_lvec *lv)
{
	char p[80];

	for (size_t i = 0; i < lv->n; i++) {
		const struct moat_listing *l = &lv->v[i];
		moat_prefix_str(&l->pfx, p, sizeof(p));
		if (l->exclude)
			fprintf(f, "%s - %u exclude\n", p, l->ttl);
		else
			fprintf(f, "%s %u.%u.%u.%u %u\n", p, l->code >> 24, (l->code >> 16) & 255,
				(l->code >> 8) & 255, l->code & 255, l->ttl);
	}
}

/* lookup_file - verdict of each address in path under listings lv */
static int lookup_file(const char *path, const struct moat_lvec *lv,
		       const struct moat_xfr_zone *z)
{
	FILE *f = fopen(path, "r");
	char line[256];

	if (!f) {
		perror(path);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		struct moat_prefix a;
		line[strcspn(line, " \t\r\n")] = 0;
		if (!*line || moat_prefix_parse(line, &a)) {
			if (*line)
				printf("%s bad\n", line);
			continue;
		}
		uint32_t codes[64];
		size_t nc = 0;
		int best = -1;
		bool excl = false;
		for (size_t i = 0; i < lv->n; i++) {
			const struct moat_listing *l = &lv->v[i];
			if (!moat_prefix_contains(&l->pfx, &a) || l->pfx.plen < best)
				continue;
			if (l->pfx.plen > best) {
				best = l->pfx.plen;
				nc = 0;
				excl = false;
			}
			if (l->exclude)
				excl = true;
			else if (nc < 64)
				codes[nc++] = l->code;
		}
		printf("%s", line);
		if (z) {
			/* the zone tree's own answer, with its reason */
			struct moat_zone_answer ans;
			char esc[600];
			if (moat_xfr_lookup(z, &a, &ans) == 0)
				printf(" [%s%s \"%s\"]", ans.status == MOAT_ZONE_LISTED ? "listed"
						      : ans.status == MOAT_ZONE_NODATA ? "nodata" : "nxdomain",
				       ans.wildcard ? " wildcard" : "",
				       log_escape(esc, sizeof(esc), ans.txt, strlen(ans.txt)));
		}
		if (best < 0 || excl || nc == 0) {
			printf(" -\n");
			continue;
		}
		/* sorted, like the kdig side of the differential test */
		for (size_t i = 1; i < nc; i++)
			for (size_t j = i; j > 0 && codes[j - 1] > codes[j]; j--) {
				uint32_t t = codes[j];
				codes[j] = codes[j - 1];
				codes[j - 1] = t;
			}
		for (size_t i = 0; i < nc; i++)
			printf("%c%u.%u.%u.%u", i ? ',' : ' ', codes[i] >> 24,
			       (codes[i] >> 16) & 255, (codes[i] >> 8) & 255, codes[i] & 255);
		printf("\n");
	}
	fclose(f);
	return 0;
}

/* dump - the zone's current listings, sorted, to path (NULL: stdout).  A
 * file is replaced atomically (readers see old or new); a device or FIFO
 * such as /dev/null is written in place, never replaced (moat_outfile). */
static int dump(struct moat_xfr_zone *z, const char *path)
{
	struct moat_lvec all = { 0 };
	struct moat_outfile o;
	FILE *f = stdout;
	int r;

	if (path) {
		r = moat_outfile_open(&o, path, 0644, MOAT_OUT_STREAM);
		if (!r && !(f = moat_outfile_fdopen(&o)))
			r = -errno;
		if (r) {
			fprintf(stderr, "moat-zonecheck: %s: %s\n", path, strerror(-r));
			return r;
		}
	}
	moat_xfr_listings(z, &all);
	moat_lvec_sort(&all);
	print_listings(f, &all);
	if (path) {
		r = fclose(f) ? -errno : 0;
		if (r)
			moat_outfile_abort(&o);
		else
			r = moat_outfile_commit(&o, 0);
		if (r)
			fprintf(stderr, "moat-zonecheck: %s: %s\n", path, strerror(-r));
	} else {
		r = fflush(f) ? -errno : 0;
	}
	moat_lvec_free(&all);
	return r;
}

/* notify_msg - check one NOTIFY (UDP or TCP), build the reply, and
 * schedule the refresh when it is accepted */
static int notify_msg(struct moat_xfr_zone *z, const uint8_t *m, size_t len,
		      const struct sockaddr *from, uint8_t *rep, size_t *rlen, const char *via)
{
	size_t idx;
	struct moat_xfr_zone *zs[1] = { z };
	enum moat_notify_res r = moat_notify_handle(zs, 1, m, len, from, rep, 65535, rlen, &idx);

	fprintf(stderr, "notify %s via %s\n", r == MOAT_NOTIFY_ACCEPT ? "accepted" :
			r == MOAT_NOTIFY_REFUSE ? "refused" : "dropped", via);
	if (r == MOAT_NOTIFY_ACCEPT)
		moat_xfr_notify(z, moat_clock_ms());
	return r;
}

struct live_ctx {
	int ep;
	size_t done;
	char (*res)[160];
};

/* live_sock - c-ares socket state into our epoll */
static void live_sock(void *arg, int fd, bool r, bool w)
{
	struct live_ctx *c = arg;
	struct epoll_event ev = { .events = (r ? EPOLLIN : 0) | (w ? EPOLLOUT : 0), .data.fd = fd };

	if (!r && !w) {
		epoll_ctl(c->ep, EPOLL_CTL_DEL, fd, NULL);
		return;
	}
	if (epoll_ctl(c->ep, EPOLL_CTL_MOD, fd, &ev) < 0)
		epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev);
}

struct live_one {
	struct live_ctx *c;
	size_t idx;
	char addr[64];
};

/* live_done - format one lookup's result like lookup_file does */
static void live_done(void *arg, const struct moat_prefix *a, const struct moat_lvec *l,
		      unsigned nfailed)
{
	struct live_one *o = arg;
	uint32_t codes[64];
	size_t nc = 0;
	char *p = o->c->res[o->idx];

	(void)a;
	for (size_t i = 0; i < l->n && nc < 64; i++)
		codes[nc++] = l->v[i].code;
	for (size_t i = 1; i < nc; i++)
		for (size_t j = i; j > 0 && codes[j - 1] > codes[j]; j--) {
			uint32_t t = codes[j];
			codes[j] = codes[j - 1];
			codes[j - 1] = t;
		}
	int n = snprintf(p, 160, "%s", o->addr);
	if (nfailed)
		snprintf(p + n, 160 - (size_t)n, " failed");
	else if (!nc)
		snprintf(p + n, 160 - (size_t)n, " -");
	for (size_t i = 0; i < nc && !nfailed && n < 140; i++)
		n += snprintf(p + n, 160 - (size_t)n, "%c%u.%u.%u.%u", i ? ',' : ' ',
			      codes[i] >> 24, (codes[i] >> 16) & 255, (codes[i] >> 8) & 255,
			      codes[i] & 255);
	o->c->done++;
	free(o);
}

/* live_wait - run the c-ares event loop until at most max lookups are left */
static void live_wait(struct moat_live *lv, int ep, unsigned max)
{
	while (moat_live_pending(lv) > max) {
		struct epoll_event evs[16];
		int k = epoll_wait(ep, evs, 16, moat_live_timeout_ms(lv));
		if (k == 0)
			moat_live_process(lv, -1, 0);
		for (int i = 0; i < k; i++)
			moat_live_process(lv, evs[i].data.fd, evs[i].events);
	}
}

/* run_live - live mode: every address of path in every zone via c-ares */
static int run_live(const char *resolver, const char **zones, size_t nz,
		    const char *path, uint32_t timeout_ms)
{
	struct moat_live_cfg lc = { .resolver = resolver, .timeout_ms = timeout_ms ? timeout_ms : 1000,
				    .nzones = nz };
	struct live_ctx c = { .ep = epoll_create1(EPOLL_CLOEXEC) };
	char err[200], line[256];
	size_t n = 0, cap = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		perror(path);
		return 2;
	}
	for (size_t i = 0; i < nz; i++) {
		lc.zones[i].zone = zones[i];
		lc.zones[i].source = (uint16_t)(i + 1);
	}
	struct moat_live *lv = moat_live_new(&lc, live_sock, &c, err, sizeof(err));
	if (!lv) {
		fprintf(stderr, "moat-zonecheck: %s\n", err);
		return 2;
	}
	while (fgets(line, sizeof(line), f)) {
		struct moat_prefix a;
		line[strcspn(line, " \t\r\n")] = 0;
		if (!*line || moat_prefix_parse(line, &a))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			c.res = realloc(c.res, cap * sizeof(*c.res));
		}
		struct live_one *o = calloc(1, sizeof(*o));
		o->c = &c;
		o->idx = n++;
		snprintf(o->addr, sizeof(o->addr), "%.63s", line);
		moat_live_lookup(lv, &a, live_done, o);
		live_wait(lv, c.ep, 63); /* keep a bounded number in flight */
	}
	fclose(f);
	live_wait(lv, c.ep, 0);
	for (size_t i = 0; i < n; i++)
		printf("%s\n", c.res[i]);
	moat_live_free(lv);
	free(c.res);
	close(c.ep);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "server", 1, 0, 's' }, { "zone", 1, 0, 'z' }, { "tsig", 1, 0, 'k' },
		{ "count", 1, 0, 'n' }, { "notify", 1, 0, 'N' }, { "notify-allow", 1, 0, 'A' },
		{ "out", 1, 0, 'o' }, { "lookup", 1, 0, 'l' }, { "timeout", 1, 0, 't' },
		{ "axfr", 0, 0, 'x' }, { "txt", 0, 0, 'T' }, { "repeat-now", 0, 0, 'r' }, { "quiet", 0, 0, 'q' }, { "verbose", 0, 0, 'v' },
		{ "resolver", 1, 0, 'R' }, { "help", 0, 0, 'h' }, { "version", 0, 0, 'V' }, { 0 } };
	struct moat_xfr_cfg cfg = { .source = 1 };
	const char *notify = NULL, *out = NULL, *lookup = NULL;
	int write_failed = 0;
	long count = 1;
	bool quiet = false, repeat = false;
	const char *resolver = NULL, *lz[MOAT_LIVE_MAX_ZONES];
	size_t nlz = 0;
	int c;

	log_init("moat-zonecheck", 0);
	while ((c = getopt_long(argc, argv, "s:z:k:n:N:A:o:l:t:xTrR:qvhV", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			if (add_addr(cfg.primary, &cfg.nprimary, optarg, "--server"))
				return 2;
			break;
		case 'A':
			if (add_addr(cfg.notify_allow, &cfg.nnotify_allow, optarg, "--notify-allow"))
				return 2;
			break;
		case 'z':
			cfg.zone = optarg;
			if (nlz < MOAT_LIVE_MAX_ZONES)
				lz[nlz++] = optarg;
			break;
		case 'R': resolver = optarg; break;
		case 'k': cfg.tsig = optarg; break;
		case 'n': count = atol(optarg); break;
		case 'N': notify = optarg; break;
		case 'o': out = optarg; break;
		case 'l': lookup = optarg; break;
		case 't': cfg.timeout_ms = (uint32_t)atol(optarg); break;
		case 'x': cfg.no_ixfr = true; break;
		case 'T': cfg.keep_txt = true; break;
		case 'r': repeat = true; break;
		case 'q': quiet = true; break;
		case 'v': log_set_level(LOG_LVL_DEBUG); break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("moat-zonecheck %s\n", MOAT_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (resolver && lookup && nlz)
		return run_live(resolver, lz, nlz, lookup, cfg.timeout_ms);
	if (!cfg.zone || cfg.nprimary == 0 || count < 1) {
		usage(stderr);
		return 2;
	}
	char err[200];
	struct moat_xfr_zone *z = moat_xfr_zone_new(&cfg, err, sizeof(err));
	if (!z) {
		fprintf(stderr, "moat-zonecheck: %s\n", err);
		return 2;
	}

	int ep = epoll_create1(EPOLL_CLOEXEC);
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGUSR1);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	int sfd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 1 };
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	int nudp = -1, ntcp = -1;
	if (notify) {
		struct sockaddr_storage na;
		int one = 1;
		if (parse_addr(notify, &na, 53)) {
			fprintf(stderr, "moat-zonecheck: bad --notify %s\n", notify);
			return 2;
		}
		socklen_t nl = na.ss_family == AF_INET ? sizeof(struct sockaddr_in)
						       : sizeof(struct sockaddr_in6);
		nudp = socket(na.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		ntcp = socket(na.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(ntcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(nudp, (struct sockaddr *)&na, nl) || bind(ntcp, (struct sockaddr *)&na, nl) ||
		    listen(ntcp, 8)) {
			perror("moat-zonecheck: notify listener");
			return 2;
		}
		ev.data.u32 = 2;
		epoll_ctl(ep, EPOLL_CTL_ADD, nudp, &ev);
		ev.data.u32 = 3;
		epoll_ctl(ep, EPOLL_CTL_ADD, ntcp, &ev);
		fprintf(stderr, "listening for NOTIFY on %s\n", notify);
	}

	long attempts = 0;
	int last_ok = 0, cur_fd = -1;
	uint32_t cur_gen = 0;
	bool refresh_now = true;
	static uint8_t mbuf[65538], rep[65538];
	struct moat_dnstcp *tcp[MAX_TCP] = { 0 };
	while (attempts < count) {
		int64_t now = moat_clock_ms();
		if (moat_xfr_fd(z) < 0 && (refresh_now || moat_xfr_next_ms(z, now) <= now)) {
			refresh_now = false;
			if (moat_xfr_start(z, now) < 0) {
				struct moat_xfr_state st;
				moat_xfr_get_state(z, now, &st);
				fprintf(stderr, "failed: %s\n", st.last_error);
				attempts++;
				refresh_now = repeat;
				last_ok = 0;
				continue;
			}
		}
		int fd = moat_xfr_fd(z);
		if (fd >= 0 && (fd != cur_fd || moat_xfr_conn_gen(z) != cur_gen)) {
			/* a new socket (maybe with the old number): register it */
			ev.events = moat_xfr_events(z);
			ev.data.u32 = 4;
			epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
			cur_fd = fd;
			cur_gen = moat_xfr_conn_gen(z);
		} else if (fd >= 0) {
			ev.events = moat_xfr_events(z);
			ev.data.u32 = 4;
			epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
		}
		int64_t wake = fd >= 0 ? moat_xfr_deadline_ms(z) : moat_xfr_next_ms(z, now);
		int64_t wait = wake - now;
		if (wait < 0)
			wait = 0;
		if (wait > 1000)
			wait = 1000;
		struct epoll_event evs[8];
		int n = epoll_wait(ep, evs, 8, (int)wait);
		uint32_t xev = 0;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u32 == 1) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof(si)) == sizeof(si))
					refresh_now = true;
			} else if (evs[i].data.u32 == 2) {
				struct sockaddr_storage from;
				socklen_t fl = sizeof(from);
				ssize_t m = recvfrom(nudp, mbuf, sizeof(mbuf), 0,
						     (struct sockaddr *)&from, &fl);
				size_t rl;
				if (m > 0 && notify_msg(z, mbuf, (size_t)m, (struct sockaddr *)&from,
							rep, &rl, "udp") != MOAT_NOTIFY_DROP)
					sendto(nudp, rep, rl, 0, (struct sockaddr *)&from, fl);
			} else if (evs[i].data.u32 == 3) {
				/* a NOTIFY connection: read it from the event loop */
				int cfd = accept4(ntcp, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				size_t k = 0;
				if (cfd < 0)
					continue;
				while (k < MAX_TCP && tcp[k])
					k++;
				if (k == MAX_TCP || !(tcp[k] = moat_dnstcp_new(cfd))) {
					close(cfd);
					continue;
				}
				struct epoll_event cev = { .events = EPOLLIN, .data.u32 = 100 + (uint32_t)k };
				epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
			} else if (evs[i].data.u32 >= 100) {
				struct moat_dnstcp *tc = tcp[evs[i].data.u32 - 100];
				struct sockaddr_storage from;
				socklen_t fl = sizeof(from);
				const uint8_t *m;
				size_t ml, rl;
				int r;
				getpeername(moat_dnstcp_fd(tc), (struct sockaddr *)&from, &fl);
				while ((r = moat_dnstcp_read(tc, &m, &ml)) == 1) {
					if (notify_msg(z, m, ml, (struct sockaddr *)&from, rep, &rl, "tcp") ==
						    MOAT_NOTIFY_DROP ||
					    moat_dnstcp_reply(tc, rep, rl) < 0) {
						r = -1;
						break;
					}
				}
				if (r < 0) {
					moat_dnstcp_free(tc); /* closing drops it from epoll */
					tcp[evs[i].data.u32 - 100] = NULL;
				}
			} else {
				xev = evs[i].events;
			}
		}
		if (moat_xfr_fd(z) < 0)
			continue;
		if (!xev && moat_clock_ms() < moat_xfr_deadline_ms(z))
			continue;
		enum moat_xfr_status st = moat_xfr_io(z, xev, moat_clock_ms());
		if (st == MOAT_XFR_AGAIN)
			continue;
		cur_fd = -1; /* the library closed it: epoll dropped it */
		attempts++;
		refresh_now = repeat;
		if (st == MOAT_XFR_FAILED) {
			struct moat_xfr_state s;
			moat_xfr_get_state(z, moat_clock_ms(), &s);
			/* what the library holds now (must be the previous data),
			 * written before the line that tells the tests to look */
			if (out && s.have_data)
				dump(z, out);
			fprintf(stderr, "failed: %s\n", s.last_error);
			last_ok = 0;
			continue;
		}
		struct moat_xfr_result res;
		moat_xfr_take_result(z, &res);
		if (!quiet && out && dump(z, out) < 0)
			write_failed = 1;
		fprintf(stderr, "result kind=%s serial=%u add=%zu del=%zu records=%llu\n",
			res.kind == MOAT_XFR_FULL ? "full" : res.kind == MOAT_XFR_DELTA ? "ixfr"
											: "uptodate",
			res.serial, res.add.n, res.del.n, (unsigned long long)res.records);
		if (res.kind == MOAT_XFR_DELTA && !quiet) {
			FILE *f = stderr;
			for (size_t i = 0; i < res.del.n; i++) {
				char p[80];
				fprintf(f, "delta -%s%s\n", moat_prefix_str(&res.del.v[i].pfx, p, sizeof(p)),
					res.del.v[i].exclude ? " exclude" : "");
			}
			for (size_t i = 0; i < res.add.n; i++) {
				char p[80];
				fprintf(f, "delta +%s%s\n", moat_prefix_str(&res.add.v[i].pfx, p, sizeof(p)),
					res.add.v[i].exclude ? " exclude" : "");
			}
		}
		moat_lvec_free(&res.add);
		moat_lvec_free(&res.del);
		last_ok = 1;
		if (!quiet) {
			struct moat_lvec all = { 0 };
			if (!out)
				dump(z, NULL);
			moat_xfr_listings(z, &all);
			struct moat_sanity_cfg sc = { 0 };
			struct moat_sanity_result sr;
			moat_sanity_check(&sc, all.v, all.n, &sr);
			fprintf(stderr, "sanity %s%s%s\n", sr.quarantine ? "quarantine" : "ok",
				sr.quarantine ? ": " : "", sr.reason);
			moat_lvec_free(&all);
		}
	}
	if (lookup) {
		struct moat_lvec all = { 0 };
		moat_xfr_listings(z, &all);
		lookup_file(lookup, &all, cfg.keep_txt ? z : NULL);
		moat_lvec_free(&all);
	}
	for (size_t k = 0; k < MAX_TCP; k++)
		moat_dnstcp_free(tcp[k]);
	moat_xfr_zone_free(z);
	close(ep);
	close(sfd);
	return last_ok && !write_failed ? 0 : 1;
}
