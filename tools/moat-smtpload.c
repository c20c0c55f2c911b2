/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * moat-smtpload - the SMTP load and abuse client moat is tested under.
 * One thread, one epoll set, non-blocking sockets, each bound to the next
 * address of an IPv4 source set (--src: configure it on the client side,
 * e.g. "ip route add local 198.19.0.0/16 dev lo"; one address runs out of
 * ephemeral ports within seconds at churn rates). Modes, run at once:
 *
 *   --idle N       N sessions held: connect, greeting, EHLO, then sit
 *   --slowloris N  N sessions dribbling "NOOP\r\n" one byte a second
 *   --noread N     N sessions that never read: pipelined NOOPs written until
 *                  the socket blocks (after the greeting, seen with MSG_PEEK)
 *   --churn RATE   connections opened and closed at RATE a second
 *   --legit N      N concurrent legitimate sessions: one message each (EHLO,
 *                  MAIL, RCPT, DATA, body, QUIT), then a new connection;
 *                  completions a second and end-of-data reply latency
 *
 * Held sessions (idle, slowloris, noread) are reopened when the server
 * closes them (counted). Legitimate sessions start once the held ones are
 * up (never-reading ones: each held once and all open, as a server resets
 * them) or --ramp-timeout passed, and are measured for -d seconds. Every
 * second a status line goes to stderr; the result is one JSON object on
 * stdout. Exit 0, or 1 when a legitimate session failed (with --strict) or
 * none completed (--legit N > 0), 2 usage or set-up error.
 *
 * Measure legitimate sessions in a process of their own (--legit only)
 * beside the abuse (--legit 0): in one process the abuse's events delay the
 * measured sessions' in the same loop (500 never-reading clients alone:
 * 430 msgs/s in one process, 1,650 in two, 1,690 without them).
 * docs/reliability.md has the lab set-up and what the tests assert.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "prefix.h"

enum mode { M_IDLE, M_SLOW, M_NOREAD, M_CHURN, M_LEGIT, M_N };
static const char *const mode_name[M_N] = { "idle", "slowloris", "noread", "churn", "legit" };

/* a connection's step: what it waits for */
enum step {
	S_FREE = 0,
	S_CONNECT,      /* connect in progress */
	S_GREET,        /* 220 */
	S_EHLO,         /* 250 to EHLO */
	S_MAIL,
	S_RCPT,
	S_DATA,         /* 354 */
	S_EOD,          /* 250 to the end of data */
	S_QUIT,         /* 221 */
	S_HELD,         /* idle / slowloris / noread: established */
};

struct conn {
	enum mode mode;
	enum step step;
	int64_t t0_ms;          /* connect (legit: timeout base) */
	double eod_ms;          /* end of data sent */
	size_t rlen;
	unsigned slow_pos;
};

/* reply bytes of a connection, beside conns[] (not in it): the periodic
 * scans of conns[] (timeouts 10 times a second, slowloris once) then read
 * 40 bytes an entry, not 560 (20,000 descriptors: 0.8 MB, not 11 MB) */
#define RBUF 512

struct opts {
	struct sockaddr_in to, abuse_to;
	uint32_t src_base, src_n;       /* host order */
	unsigned n[M_N];                /* held counts, legit concurrency */
	unsigned churn_rate, open_rate;
	double duration, ramp_timeout;
	unsigned size;
	const char *from, *rcpt;
	bool strict;
};

static struct opts o = {
	.open_rate = 2000, .duration = 10, .ramp_timeout = 30, .size = 2048,
	.from = "load@example.org", .rcpt = "postmaster@moat.test",
};
static struct conn *conns;      /* indexed by fd */
static char (*rbufs)[RBUF];     /* indexed by fd */
static int conns_max;
static int epfd;
static uint32_t src_next;
static char *body;
static size_t body_len;
static volatile sig_atomic_t stop;

/* counters */
static unsigned live[M_N], held[M_N];
static uint64_t opened[M_N], connect_fail[M_N], lost[M_N], bind_fail;
static uint64_t legit_done, legit_failed, legit_refused, measuring_done, measuring_failed;
static uint64_t churn_closed, churn_skipped, noread_held_ever;
static bool measuring;
static char first_refusal[128];  /* a legitimate session's first unexpected reply */
static char first_failure[96];   /* how the first failed legitimate session failed */
static unsigned legit_fail_by_step[S_HELD + 1]; /* failed legitimate sessions by step */

/* legit_fail_note - the first failed legitimate session's step and error
 * (err 0: the server closed) for the report */
static void legit_fail_note(const struct conn *c, const char *what, int err)
{
	static const char *const step_names[] = { "free", "connect", "greeting", "ehlo", "mail",
						   "rcpt", "data", "end-of-data", "quit", "held" };

	if (c->mode != M_LEGIT || first_failure[0])
		return;
	snprintf(first_failure, sizeof(first_failure), "%s at %s: %s", what,
		 step_names[c->step], err ? strerror(err) : "closed by the server");
}
static double *lat;
static size_t lat_n, lat_cap;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* open_conn - a non-blocking connect from the next source address;
 * returns the fd or -errno */
static int open_conn(enum mode m)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (fd >= conns_max) {
		close(fd);
		return -EMFILE;
	}
	int one = 1;
	if (m != M_CHURN) /* churn writes nothing */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (m == M_NOREAD) {
		int small = 4096;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	}
	if (o.src_n) {
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		struct sockaddr_in sa = { .sin_family = AF_INET };
		sa.sin_addr.s_addr = htonl(o.src_base + src_next);
		src_next = (src_next + 1) % o.src_n;
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			int e = errno;
			bind_fail++;
			close(fd);
			return -e;
		}
	}
	const struct sockaddr_in *to = m == M_LEGIT ? &o.to : &o.abuse_to;
	if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) != 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		connect_fail[m]++;
		return -e;
	}
	struct conn *c = &conns[fd];
	memset(c, 0, sizeof(*c));
	c->mode = m;
	c->step = S_CONNECT;
	c->t0_ms = moat_clock_ms();
	struct epoll_event ee = { .events = EPOLLOUT, .data.fd = fd };
	epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ee);
	live[m]++;
	opened[m]++;
	return fd;
}

/* close_conn - forget fd; a legitimate session that did not reach QUIT
 * counts as failed, a held one that was up as lost */
static void close_conn(int fd, bool failed)
{
	struct conn *c = &conns[fd];
	if (c->step == S_FREE)
		return;
	if (c->mode == M_LEGIT && failed) {
		legit_failed++;
		legit_fail_by_step[c->step]++;
		if (measuring)
			measuring_failed++;
	}
	if (c->step == S_HELD) {
		held[c->mode]--;
		if (!stop)
			lost[c->mode]++;
	} else if (c->step == S_CONNECT && failed && c->mode != M_LEGIT) {
		connect_fail[c->mode]++;
	}
	live[c->mode]--;
	c->step = S_FREE;
	close(fd);
}

static int say(int fd, const char *s)
{
	size_t n = strlen(s);
	return write(fd, s, n) == (ssize_t)n ? 0 : -1;
}

static void set_events(int fd, uint32_t ev)
{
	struct epoll_event ee = { .events = ev, .data.fd = fd };
	epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ee);
}

static void add_latency(double ms)
{
	if (lat_n == lat_cap) {
		lat_cap = lat_cap ? lat_cap * 2 : 4096;
		double *n = realloc(lat, lat_cap * sizeof(*lat));
		if (!n) {
			lat_cap = lat_n;
			return;
		}
		lat = n;
	}
	lat[lat_n++] = ms;
}

/* advance - act on a complete reply with code; returns false to close the
 * connection as failed */
static bool advance(int fd, struct conn *c, int code)
{
	char cmd[320];

	switch (c->step) {
	case S_GREET:
		if (code != 220)
			goto refused;
		c->step = S_EHLO;
		return say(fd, "EHLO load.example.org\r\n") == 0;
	case S_EHLO:
		if (code != 250)
			goto refused;
		if (c->mode != M_LEGIT) {
			c->step = S_HELD;
			held[c->mode]++;
			return true;
		}
		c->step = S_MAIL;
		snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>\r\n", o.from);
		return say(fd, cmd) == 0;
	case S_MAIL:
		if (code != 250)
			goto refused;
		c->step = S_RCPT;
		snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>\r\n", o.rcpt);
		return say(fd, cmd) == 0;
	case S_RCPT:
		if (code != 250)
			goto refused;
		c->step = S_DATA;
		return say(fd, "DATA\r\n") == 0;
	case S_DATA:
		if (code != 354)
			goto refused;
		c->step = S_EOD;
		c->eod_ms = moat_clock_ms_f();
		/* the body fits the send buffer of a fresh connection */
		return write(fd, body, body_len) == (ssize_t)body_len;
	case S_EOD:
		if (code != 250)
			goto refused;
		legit_done++;
		if (measuring) {
			measuring_done++;
			add_latency(moat_clock_ms_f() - c->eod_ms);
		}
		c->step = S_QUIT;
		return say(fd, "QUIT\r\n") == 0;
	case S_QUIT:
		close_conn(fd, false);
		return true;
	case S_HELD:
		return true; /* slowloris: NOOP replies */
	default:
		return false;
	}
refused:
	if (c->mode == M_LEGIT)
		legit_refused++;
	return false;
}

/* on_read - read replies; returns false to close as failed */
static bool on_read(int fd, struct conn *c)
{
	char *rbuf = rbufs[fd];

	for (;;) {
		ssize_t r = read(fd, rbuf + c->rlen, RBUF - 1 - c->rlen);
		if (r < 0) {
			if (errno != EAGAIN)
				legit_fail_note(c, "read", errno);
			return errno == EAGAIN;
		}
		if (r == 0) {
			if (c->step != S_QUIT)
				legit_fail_note(c, "read", 0);
			return c->step == S_QUIT && (close_conn(fd, false), true);
		}
		c->rlen += (size_t)r;
		rbuf[c->rlen] = 0;
		/* complete reply lines: "ddd-" continues, "ddd " ends */
		char *p = rbuf, *nl;
		while ((nl = memchr(p, '\n', c->rlen - (size_t)(p - rbuf)))) {
			char *line = p;
			p = nl + 1;
			if (nl - line < 3 || line[3] == '-')
				continue;
			int code = atoi(line);
			if (c->mode == M_LEGIT && !first_refusal[0] && code != 220 && code != 221 &&
			    code != 250 && code != 354) {
				size_t l = (size_t)(nl - line);
				if (l >= sizeof(first_refusal))
					l = sizeof(first_refusal) - 1;
				for (size_t i = 0; i < l; i++) /* JSON-safe */
					first_refusal[i] = line[i] >= ' ' && line[i] != '"' && line[i] != '\\' ? line[i] : ' ';
			}
			size_t rest = c->rlen - (size_t)(p - rbuf);
			memmove(rbuf, p, rest);
			c->rlen = rest;
			p = rbuf;
			if (!advance(fd, c, code))
				return false;
			if (c->step == S_FREE)
				return true;
		}
		if (p != rbuf) {
			size_t rest = c->rlen - (size_t)(p - rbuf);
			memmove(rbuf, p, rest);
			c->rlen = rest;
		}
		if (c->rlen >= RBUF - 1)
			c->rlen = 0; /* a line longer than any reply: drop it */
	}
}

/* noread_fill - pipelined NOOPs until the socket blocks */
static void noread_fill(int fd)
{
	static const char noops[] = "NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n";
	for (int i = 0; i < 64; i++)
		if (write(fd, noops, sizeof(noops) - 1) <= 0)
			return;
}

static void on_event(int fd, uint32_t ev)
{
	struct conn *c = &conns[fd];
	if (c->step == S_FREE)
		return;
	if (c->step == S_CONNECT) {
		int err = 0;
		socklen_t sl = sizeof(err);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl);
		if (err || (ev & (EPOLLERR | EPOLLHUP))) {
			legit_fail_note(c, "connect", err);
			close_conn(fd, true);
			return;
		}
		if (c->mode == M_CHURN) {
			/* read what came (the greeting, if the server was
			 * quick) so the close is a FIN: a close with unread
			 * data is a RST, and a RST the flood's backlog drops is
			 * never sent again (the server's socket then waits for
			 * its command timeout); a FIN is retransmitted */
			char drain[256];
			(void)!recv(fd, drain, sizeof(drain), MSG_DONTWAIT);
			churn_closed++;
			close_conn(fd, false);
			return;
		}
		c->step = S_GREET;
		set_events(fd, EPOLLIN);
		return;
	}
	if (c->mode == M_NOREAD) {
		if (c->step == S_GREET) {
			/* the greeting is there: leave it unread, start writing */
			char b;
			if (recv(fd, &b, 1, MSG_PEEK) <= 0) {
				close_conn(fd, true);
				return;
			}
			c->step = S_HELD;
			held[M_NOREAD]++;
			noread_held_ever++;
			set_events(fd, EPOLLOUT | EPOLLRDHUP);
		}
		if (ev & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
			close_conn(fd, true);
			return;
		}
		noread_fill(fd);
		return;
	}
	if ((ev & EPOLLIN) && !on_read(fd, c)) {
		close_conn(fd, true);
		return;
	}
	if (c->step != S_FREE && (ev & (EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t sl = sizeof(err);

		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl);
		legit_fail_note(c, "socket", err);
		close_conn(fd, true);
	}
}

/* slow_tick - each slowloris session sends its next byte */
static void slow_tick(void)
{
	static const char seq[] = "NOOP\r\n";
	for (int fd = 0; fd < conns_max; fd++) {
		struct conn *c = &conns[fd];
		if (c->step != S_HELD || c->mode != M_SLOW)
			continue;
		if (write(fd, &seq[c->slow_pos], 1) == 1)
			c->slow_pos = (c->slow_pos + 1) % (sizeof(seq) - 1);
	}
}

/* timeouts - a legitimate session stuck for 30 s fails; a churn connect
 * not done within a second is given up (a drop-all target never answers) */
static void timeouts(int64_t now)
{
	for (int fd = 0; fd < conns_max; fd++) {
		struct conn *c = &conns[fd];
		if (c->step == S_FREE)
			continue;
		if ((c->mode == M_LEGIT && now - c->t0_ms > 30000) ||
		    (c->mode == M_CHURN && now - c->t0_ms > 1000)) {
			legit_fail_note(c, "no progress in 30 s", ETIMEDOUT);
			close_conn(fd, true);
		}
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double p)
{
	if (!lat_n)
		return 0;
	size_t i = (size_t)(p * (double)(lat_n - 1) + 0.5);
	return lat[i];
}

static int parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 && sa->sin_port ? 0 : -1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: moat-smtpload --to ADDR:PORT [options]\n"
		"      --to ADDR:PORT        where legitimate sessions go\n"
		"      --abuse-to ADDR:PORT  where the abuse goes (default --to; a drop-all\n"
		"                            target makes the baseline)\n"
		"      --src CIDR            IPv4 source addresses, one per connection in turn\n"
		"      --idle N              sessions held after EHLO\n"
		"      --slowloris N         sessions sending a byte a second\n"
		"      --noread N            sessions that never read\n"
		"      --churn RATE          connections opened and closed a second\n"
		"      --legit N             concurrent legitimate sessions (one message each)\n"
		"      --open-rate RATE      held sessions opened a second (2000)\n"
		"      --ramp-timeout S      wait at most S for the held sessions (30)\n"
		"  -d, --duration S          measure legitimate sessions for S seconds (10)\n"
		"      --size BYTES          message body (2048)\n"
		"      --from ADDR, --rcpt ADDR  envelope (load@example.org, postmaster@moat.test)\n"
		"      --strict              exit 1 when a legitimate session failed\n"
		"Status lines on stderr each second; the result as JSON on stdout.\n"
		"Exit: 0 done, 1 no legitimate session completed with --legit N > 0 (or one\n"
		"failed, --strict),\n"
		"2 usage or set-up error.\n");
}

static int parse_opts(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "to", required_argument, NULL, 't' },     { "abuse-to", required_argument, NULL, 'a' },
		{ "src", required_argument, NULL, 's' },    { "idle", required_argument, NULL, 'I' },
		{ "slowloris", required_argument, NULL, 'S' }, { "noread", required_argument, NULL, 'N' },
		{ "churn", required_argument, NULL, 'C' },  { "legit", required_argument, NULL, 'L' },
		{ "open-rate", required_argument, NULL, 'O' }, { "ramp-timeout", required_argument, NULL, 'R' },
		{ "duration", required_argument, NULL, 'd' }, { "size", required_argument, NULL, 'z' },
		{ "from", required_argument, NULL, 'f' },   { "rcpt", required_argument, NULL, 'r' },
		{ "strict", no_argument, NULL, 'x' },       { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool abuse = false;
	int ch;
	while ((ch = getopt_long(argc, argv, "d:h", lo, NULL)) != -1) {
		switch (ch) {
		case 't':
			if (parse_addr(optarg, &o.to))
				return -1;
			break;
		case 'a':
			if (parse_addr(optarg, &o.abuse_to))
				return -1;
			abuse = true;
			break;
		case 's': {
			struct moat_prefix p;
			if (moat_prefix_parse(optarg, &p) != 0 || p.family != MOAT_AF_INET || p.plen < 8)
				return -1;
			uint32_t a;
			memcpy(&a, p.addr, 4);
			o.src_base = ntohl(a);
			o.src_n = p.plen == 32 ? 1 : (1u << (32 - p.plen));
			if (o.src_n > 2) { /* skip the network and broadcast addresses */
				o.src_base++;
				o.src_n -= 2;
			}
			break;
		}
		case 'I': o.n[M_IDLE] = (unsigned)atoi(optarg); break;
		case 'S': o.n[M_SLOW] = (unsigned)atoi(optarg); break;
		case 'N': o.n[M_NOREAD] = (unsigned)atoi(optarg); break;
		case 'C': o.churn_rate = (unsigned)atoi(optarg); break;
		case 'L': o.n[M_LEGIT] = (unsigned)atoi(optarg); break;
		case 'O': o.open_rate = (unsigned)atoi(optarg); break;
		case 'R': o.ramp_timeout = atof(optarg); break;
		case 'd': o.duration = atof(optarg); break;
		case 'z': o.size = (unsigned)atoi(optarg); break;
		case 'f': o.from = optarg; break;
		case 'r': o.rcpt = optarg; break;
		case 'x': o.strict = true; break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (!o.to.sin_port || optind != argc || !o.open_rate || o.duration <= 0 || o.size > 60000 ||
	    strlen(o.from) > 256 || strlen(o.rcpt) > 256)
		return -1;
	if (!abuse)
		o.abuse_to = o.to;
	return 0;
}

/* make_body - headers and size bytes of 76-column lines, end of data */
static int make_body(void)
{
	body = malloc(o.size + 256);
	if (!body)
		return -1;
	int n = snprintf(body, 256, "From: <%s>\r\nTo: <%s>\r\nSubject: moat-smtpload\r\n\r\n", o.from, o.rcpt);
	size_t len = (size_t)n;
	for (unsigned i = 0; i < o.size; i++) {
		size_t col = i % 78;
		body[len++] = col == 76 ? '\r' : col == 77 ? '\n' : (char)('a' + i % 26);
	}
	if (len > (size_t)n && body[len - 1] != '\n') {
		body[len++] = '\r';
		body[len++] = '\n';
	}
	memcpy(body + len, ".\r\n", 3);
	body_len = len + 3;
	return 0;
}

static void status_line(double t)
{
	fprintf(stderr,
		"t=%.1f held idle=%u slowloris=%u noread=%u (open %u) churn=%" PRIu64 " legit live=%u done=%" PRIu64
		" failed=%" PRIu64 " lost=%" PRIu64 " connect_fail=%" PRIu64 "\n",
		t, held[M_IDLE], held[M_SLOW], held[M_NOREAD], live[M_IDLE] + live[M_SLOW] + live[M_NOREAD],
		churn_closed, live[M_LEGIT], legit_done, legit_failed,
		lost[M_IDLE] + lost[M_SLOW] + lost[M_NOREAD],
		connect_fail[M_IDLE] + connect_fail[M_SLOW] + connect_fail[M_NOREAD] + connect_fail[M_CHURN]);
}

int main(int argc, char **argv)
{
	if (parse_opts(argc, argv) != 0) {
		usage(stderr);
		return 2;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	conns_max = rl.rlim_cur > 1048576 ? 1048576 : (int)rl.rlim_cur;
	unsigned need = o.n[M_IDLE] + o.n[M_SLOW] + o.n[M_NOREAD] + o.n[M_LEGIT] + o.churn_rate * 11 / 10 + 64;
	if (need > (unsigned)conns_max) {
		fprintf(stderr, "moat-smtpload: %u descriptors needed, the open-file limit is %d\n", need, conns_max);
		return 2;
	}
	conns = calloc((size_t)conns_max, sizeof(*conns));
	rbufs = calloc((size_t)conns_max, RBUF);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!conns || !rbufs || epfd < 0 || make_body() != 0) {
		fprintf(stderr, "moat-smtpload: set-up: %s\n", strerror(errno));
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	double start = moat_clock_ms_f(), meas_start = 0, last_status = start, last_slow = start, last_tick = start;
	uint64_t held_opens = 0, churn_opens = 0;
	struct epoll_event evs[512];
	while (!stop) {
		double now = moat_clock_ms_f(), t = (now - start) / 1000;
		/* held sessions: keep N of each, opened at open_rate */
		uint64_t budget = (uint64_t)(t * o.open_rate) + 1;
		for (enum mode m = M_IDLE; m <= M_NOREAD; m++)
			for (unsigned k = 0; live[m] < o.n[m] && held_opens < budget && k < o.open_rate / 2 + 1; k++) {
				held_opens++;
				if (open_conn(m) < 0)
					break;
			}
		if (o.churn_rate) {
			/* at most 1/10 s of churn per turn, never more than a
			 * second behind: a late loop opening thousands at once
			 * (each connect also runs the receiver's softirq here)
			 * would starve its own events and fall further behind */
			uint64_t due = (uint64_t)(t * o.churn_rate), step = o.churn_rate / 10 + 1;
			if (due > churn_opens + o.churn_rate) {
				churn_skipped += due - o.churn_rate - churn_opens;
				churn_opens = due - o.churn_rate;
			}
			for (uint64_t k = 0; churn_opens < due && k < step; k++) {
				churn_opens++;
				open_conn(M_CHURN);
			}
		}
		/* never-reading sessions: each held once and all open (the
		 * server resets them after its timeout_unread and they are
		 * reopened at once: all held at one instant may never come) */
		bool up = held[M_IDLE] >= o.n[M_IDLE] && held[M_SLOW] >= o.n[M_SLOW] &&
			  noread_held_ever >= o.n[M_NOREAD] && live[M_NOREAD] >= o.n[M_NOREAD];
		if (!measuring && !meas_start && (up || t >= o.ramp_timeout)) {
			measuring = true;
			meas_start = now;
			fprintf(stderr, "ready: held sessions %s after %.1f s; measuring legitimate sessions for %.1f s\n",
				up ? "up" : "NOT all up", t, o.duration);
			status_line(t);
		}
		if (measuring) {
			if (now - meas_start >= o.duration * 1000) {
				measuring = false;
				break;
			}
			while (live[M_LEGIT] < o.n[M_LEGIT])
				if (open_conn(M_LEGIT) < 0) {
					legit_failed++;
					measuring_failed++;
					break;
				}
		}
		if (now - last_slow >= 1000) {
			last_slow = now;
			slow_tick();
		}
		if (now - last_tick >= 100) {
			last_tick = now;
			timeouts((int64_t)now);
		}
		if (now - last_status >= 1000) {
			last_status = now;
			status_line(t);
		}
		/* every ready event before the next turn's opens */
		for (int round = 0; round < 64; round++) {
			int n = epoll_wait(epfd, evs, 512, round ? 0 : 1);
			for (int i = 0; i < n; i++)
				on_event(evs[i].data.fd, evs[i].events);
			if (n < 512)
				break;
		}
	}
	double meas_s = meas_start ? (moat_clock_ms_f() - meas_start) / 1000 : 0;
	status_line((moat_clock_ms_f() - start) / 1000);
	stop = 1;
	unsigned held_at_end[M_N], legit_stuck = 0;
	memcpy(held_at_end, held, sizeof(held));
	/* legitimate sessions still open at the end after 5 s: stuck (a
	 * handshake's last ACK lost, a reply never sent), not counted as
	 * failed (the 30 s timeout did not come) but each held one of the
	 * concurrency slots */
	int64_t end_ms = moat_clock_ms();
	for (int fd = 0; fd < conns_max; fd++)
		if (conns[fd].step != S_FREE && conns[fd].mode == M_LEGIT && end_ms - conns[fd].t0_ms > 5000)
			legit_stuck++;
	for (int fd = 0; fd < conns_max; fd++)
		if (conns[fd].step != S_FREE)
			close_conn(fd, false);

	qsort(lat, lat_n, sizeof(*lat), cmp_double);
	printf("{\"run_s\": %.2f, \"duration_s\": %.2f, \"legit_concurrency\": %u, \"legit_done\": %" PRIu64
	       ", \"legit_failed\": %" PRIu64 ", \"legit_refused\": %" PRIu64 ", \"legit_per_s\": %.1f"
	       ", \"eod_p50_ms\": %.2f, \"eod_p99_ms\": %.2f, \"eod_max_ms\": %.2f",
	       (moat_clock_ms_f() - start) / 1000, meas_s, o.n[M_LEGIT], measuring_done, measuring_failed, legit_refused,
	       meas_s > 0 ? (double)measuring_done / meas_s : 0, pct(0.5), pct(0.99), lat_n ? lat[lat_n - 1] : 0);
	for (enum mode m = M_IDLE; m <= M_NOREAD; m++)
		printf(", \"%s_target\": %u, \"%s_held\": %u, \"%s_opened\": %" PRIu64 ", \"%s_lost\": %" PRIu64
		       ", \"%s_connect_fail\": %" PRIu64,
		       mode_name[m], o.n[m], mode_name[m], held_at_end[m], mode_name[m], opened[m], mode_name[m],
		       lost[m], mode_name[m], connect_fail[m]);
	printf(", \"churn_rate\": %u, \"churn_opened\": %" PRIu64 ", \"churn_connected\": %" PRIu64
	       ", \"churn_connect_fail\": %" PRIu64 ", \"churn_skipped\": %" PRIu64 ", \"bind_fail\": %" PRIu64 ", \"legit_first_refusal\": \"%s\""
	       ", \"legit_first_failure\": \"%s\", \"legit_failed_at\": {\"connect\": %u, \"greeting\": %u,"
	       " \"ehlo\": %u, \"mail\": %u, \"rcpt\": %u, \"data\": %u, \"end_of_data\": %u, \"quit\": %u},"
	       " \"legit_stuck_at_end\": %u}\n",
	       o.churn_rate, opened[M_CHURN], churn_closed, connect_fail[M_CHURN], churn_skipped, bind_fail,
	       first_refusal, first_failure, legit_fail_by_step[S_CONNECT], legit_fail_by_step[S_GREET],
	       legit_fail_by_step[S_EHLO], legit_fail_by_step[S_MAIL], legit_fail_by_step[S_RCPT],
	       legit_fail_by_step[S_DATA], legit_fail_by_step[S_EOD], legit_fail_by_step[S_QUIT],
	       legit_stuck);
	if (o.n[M_LEGIT] && (!measuring_done || (o.strict && measuring_failed)))
		return 1;
	return 0;
}
