/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * smtp_replay - the realistic SMTP load of `tools/bench smtpreal` (issue
 * 14): real messages replayed from a corpus, one message per connection
 * mostly (a share of connections carries 2-5), each connection from the
 * next address of a source set (--src: configured on the client's side,
 * e.g. "ip route add local 198.19.0.0/16 dev lo"), STARTTLS on a share of
 * them (OpenSSL, no certificate check: the lab's self-signed key).
 * Blocking sockets, one thread per concurrent session (--conc).
 *
 *   smtp_replay --to HOST:PORT --src CIDR --list FILE [--count M]
 *               [--conc N] [--tls PCT] [--multi PCT] [--from ADDR]
 *               [--rcpt ADDR] [--timeout S]
 *   smtp_replay --to HOST:PORT --src CIDR --idle N [--tls PCT]
 *
 * FILE names one message a line, each already in wire form (CRLF line
 * ends, dot-stuffed, ending with "\r\n.\r\n"); message i of the run is
 * line i modulo their number. The result is one JSON object on stdout:
 * sent, accepted (250 after the data), rejected (5xx after the data),
 * tempfailed (4xx after the data), sessions_failed (any other reply or
 * error: counted, the first few said on stderr), tls_sessions, seconds,
 * msgs_s (accepted + rejected a second), eod_p50_ms / eod_p99_ms (final dot
 * sent -> reply). Exit 0 when every session ran to its QUIT and every
 * message got a final reply, else 1; 2 usage or set-up error.
 *
 * --idle N: N sessions opened one after the other (greeting, EHLO, with
 * --tls PCT that share upgraded by STARTTLS and EHLO again), then
 * "held N tls T" on stdout; held until stdin reaches EOF, then closed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct msg {
	char *data;
	size_t len;
};

static struct {
	struct sockaddr_in to;
	uint32_t src_base, src_n;
	unsigned conc, tls_pct, multi_pct, idle, timeout;
	unsigned long count;
	const char *from, *rcpt, *list;
} o = { .conc = 50, .timeout = 60, .from = "bench@example.org", .rcpt = "rcpt@moat.test" };

static struct msg *msgs;
static size_t nmsgs;
static SSL_CTX *ctx;
static atomic_ulong next_msg, next_conn;
static atomic_ulong n_sent, n_acc, n_rej, n_temp, n_fail, n_tls;
static pthread_mutex_t lat_mu = PTHREAD_MUTEX_INITIALIZER;
static double *lat;
static size_t nlat, caplat;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* a session's connection: the socket, TLS once started, a read buffer */
struct io {
	int fd;
	SSL *ssl;
	size_t len, off;
	char buf[4096];
	char last[256]; /* the last reply line, for error messages */
};

static int io_write(struct io *c, const char *p, size_t n)
{
	while (n) {
		ssize_t w = c->ssl ? SSL_write(c->ssl, p, (int)(n > (1 << 30) ? (1 << 30) : n))
				   : send(c->fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int io_fill(struct io *c)
{
	ssize_t r;

	if (c->off == c->len)
		c->off = c->len = 0;
	if (c->len == sizeof(c->buf))
		return -1;
	r = c->ssl ? SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len))
		   : recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (r <= 0)
		return -1;
	c->len += (size_t)r;
	return 0;
}

/* reply - read one SMTP reply (its continuation lines too); its code, or
 * -1 on a closed or silent connection */
static int reply(struct io *c)
{
	for (;;) {
		char *nl = memchr(c->buf + c->off, '\n', c->len - c->off);

		if (!nl) {
			if (c->off) {
				memmove(c->buf, c->buf + c->off, c->len - c->off);
				c->len -= c->off;
				c->off = 0;
			}
			if (io_fill(c) < 0)
				return -1;
			continue;
		}
		size_t ll = (size_t)(nl - (c->buf + c->off)) + 1;
		char *l = c->buf + c->off;

		snprintf(c->last, sizeof(c->last), "%.*s", (int)(ll > 2 ? ll - 2 : 0), l);
		c->off += ll;
		if (ll >= 4 && l[3] == '-')
			continue;
		if (ll < 4 || l[0] < '1' || l[0] > '5')
			return -1;
		return (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	}
}

static int cmd(struct io *c, const char *line)
{
	if (io_write(c, line, strlen(line)) < 0)
		return -1;
	return reply(c);
}

static bool chance(unsigned long id, unsigned salt, unsigned pct)
{
	uint64_t h = (id + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t)salt << 32);

	h ^= h >> 29;
	h *= 0xBF58476D1CE4E5B9ull;
	h ^= h >> 32;
	return h % 100 < pct;
}

static atomic_uint nerr_said;
static void say_error(unsigned long id, const char *what, struct io *c)
{
	if (atomic_fetch_add(&nerr_said, 1) < 5)
		fprintf(stderr, "smtp_replay: session %lu: %s (last reply: %s)\n", id, what,
			c->last[0] ? c->last : "none");
}

/* open_session - connect from the source set, greeting, EHLO, STARTTLS
 * when asked; 0, or -1 (said) */
static int open_session(unsigned long id, struct io *c, bool tls)
{
	struct sockaddr_in src = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = o.timeout };
	int one = 1;

	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	src.sin_addr.s_addr = htonl(o.src_base + (uint32_t)(id % o.src_n));
	if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
	    connect(c->fd, (struct sockaddr *)&o.to, sizeof(o.to)) < 0) {
		snprintf(c->last, sizeof(c->last), "%s", strerror(errno));
		say_error(id, "connect failed", c);
		return -1;
	}
	if (reply(c) != 220) {
		say_error(id, "no 220 greeting", c);
		return -1;
	}
	if (cmd(c, "EHLO client.example.org\r\n") != 250) {
		say_error(id, "EHLO refused", c);
		return -1;
	}
	if (!tls)
		return 0;
	if (cmd(c, "STARTTLS\r\n") != 220) {
		say_error(id, "STARTTLS refused", c);
		return -1;
	}
	c->ssl = SSL_new(ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) || SSL_connect(c->ssl) != 1) {
		snprintf(c->last, sizeof(c->last), "TLS handshake failed");
		say_error(id, "TLS handshake failed", c);
		return -1;
	}
	c->off = c->len = 0;
	if (cmd(c, "EHLO client.example.org\r\n") != 250) {
		say_error(id, "EHLO after STARTTLS refused", c);
		return -1;
	}
	atomic_fetch_add(&n_tls, 1);
	return 0;
}

static void close_session(struct io *c)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	c->ssl = NULL;
	c->fd = -1;
}

static void add_lat(double *l, size_t n)
{
	pthread_mutex_lock(&lat_mu);
	if (nlat + n > caplat) {
		size_t nc = (nlat + n) * 2;
		double *p = realloc(lat, nc * sizeof(*lat));

		if (!p) {
			pthread_mutex_unlock(&lat_mu);
			return;
		}
		lat = p;
		caplat = nc;
	}
	memcpy(lat + nlat, l, n * sizeof(*l));
	nlat += n;
	pthread_mutex_unlock(&lat_mu);
}

/* one message: MAIL, RCPT, DATA, the body; 0 when it got a final reply
 * (counted), -1 when the session broke */
static int one_message(unsigned long id, struct io *c, size_t mi, double *l)
{
	const struct msg *m = &msgs[mi];
	char line[320];

	snprintf(line, sizeof(line), "MAIL FROM:<%s>\r\n", o.from);
	if (cmd(c, line) != 250) {
		say_error(id, "MAIL refused", c);
		return -1;
	}
	snprintf(line, sizeof(line), "RCPT TO:<%s>\r\n", o.rcpt);
	if (cmd(c, line) != 250) {
		say_error(id, "RCPT refused", c);
		return -1;
	}
	if (cmd(c, "DATA\r\n") != 354) {
		say_error(id, "DATA refused", c);
		return -1;
	}
	atomic_fetch_add(&n_sent, 1);
	if (io_write(c, m->data, m->len) < 0) {
		say_error(id, "writing the message failed", c);
		return -1;
	}
	double t = now_ms();
	int code = reply(c);

	*l = now_ms() - t;
	if (code == 250)
		atomic_fetch_add(&n_acc, 1);
	else if (code >= 500)
		atomic_fetch_add(&n_rej, 1);
	else if (code >= 400)
		atomic_fetch_add(&n_temp, 1);
	else {
		char what[96];

		snprintf(what, sizeof(what), "no reply to the end of data of message %zu (%zu bytes)", mi + 1,
			 m->len);
		say_error(id, what, c);
		return -1;
	}
	/* a refused message may end the session (moat closes after a 5xx
	 * content verdict only on request): the next step says */
	return 0;
}

static void *worker(void *arg)
{
	double l[8];

	(void)arg;
	for (;;) {
		unsigned long id = atomic_fetch_add(&next_conn, 1);
		unsigned want = chance(id, 1, o.multi_pct) ? 2 + (unsigned)(id % 4) : 1;
		unsigned long first = atomic_fetch_add(&next_msg, want);
		struct io c;
		size_t nl = 0;
		bool ok;

		if (first >= o.count)
			break;
		if (first + want > o.count)
			want = (unsigned)(o.count - first);
		ok = open_session(id, &c, chance(id, 2, o.tls_pct)) == 0;
		for (unsigned k = 0; ok && k < want; k++) {
			ok = one_message(id, &c, (first + k) % nmsgs, &l[nl]) == 0;
			if (ok)
				nl++;
			if (ok && k + 1 < want && cmd(&c, "RSET\r\n") != 250) {
				say_error(id, "RSET refused", &c);
				ok = false;
			}
		}
		if (ok && cmd(&c, "QUIT\r\n") != 221) {
			say_error(id, "QUIT not answered 221", &c);
			ok = false;
		}
		if (!ok)
			atomic_fetch_add(&n_fail, 1);
		close_session(&c);
		add_lat(l, nl);
	}
	return NULL;
}

static int load_list(const char *path)
{
	FILE *f = fopen(path, "r");
	char name[4096];
	size_t cap = 0;

	if (!f) {
		fprintf(stderr, "smtp_replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(name, sizeof(name), f)) {
		name[strcspn(name, "\n")] = 0;
		if (!name[0])
			continue;
		FILE *m = fopen(name, "rb");
		struct stat st;

		if (!m || fstat(fileno(m), &st) < 0) {
			fprintf(stderr, "smtp_replay: %s: %s\n", name, strerror(errno));
			fclose(f);
			return -1;
		}
		if (nmsgs == cap) {
			cap = cap ? cap * 2 : 1024;
			msgs = realloc(msgs, cap * sizeof(*msgs));
			if (!msgs)
				return -1;
		}
		msgs[nmsgs].len = (size_t)st.st_size;
		msgs[nmsgs].data = malloc(msgs[nmsgs].len + 1);
		if (!msgs[nmsgs].data || fread(msgs[nmsgs].data, 1, msgs[nmsgs].len, m) != msgs[nmsgs].len) {
			fprintf(stderr, "smtp_replay: %s: short read\n", name);
			fclose(m);
			fclose(f);
			return -1;
		}
		if (msgs[nmsgs].len < 5 || memcmp(msgs[nmsgs].data + msgs[nmsgs].len - 5, "\r\n.\r\n", 5)) {
			fprintf(stderr, "smtp_replay: %s: not in wire form (no CRLF.CRLF end)\n", name);
			fclose(m);
			fclose(f);
			return -1;
		}
		fclose(m);
		nmsgs++;
	}
	fclose(f);
	if (!nmsgs) {
		fprintf(stderr, "smtp_replay: %s: no messages\n", path);
		return -1;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double p)
{
	if (!nlat)
		return 0;
	size_t i = (size_t)(p / 100.0 * (double)(nlat - 1) + 0.5);

	return lat[i];
}

static int run_idle(void)
{
	struct io *c = calloc(o.idle, sizeof(*c));
	char b[64];

	if (!c)
		return 2;
	for (unsigned i = 0; i < o.idle; i++) {
		if (open_session(i, &c[i], chance(i, 2, o.tls_pct)) < 0) {
			fprintf(stderr, "smtp_replay: idle session %u of %u failed\n", i + 1, o.idle);
			return 1;
		}
	}
	printf("held %u tls %lu\n", o.idle, atomic_load(&n_tls));
	fflush(stdout);
	while (read(0, b, sizeof(b)) > 0)
		;
	for (unsigned i = 0; i < o.idle; i++)
		close_session(&c[i]);
	free(c);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: smtp_replay --to HOST:PORT --src CIDR (--list FILE [--count M] [--conc N]\n"
			"         [--multi PCT] [--from ADDR] [--rcpt ADDR] | --idle N) [--tls PCT] [--timeout S]\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "to", 1, 0, 't' },   { "src", 1, 0, 's' },   { "list", 1, 0, 'l' },
		{ "count", 1, 0, 'n' }, { "conc", 1, 0, 'c' },  { "tls", 1, 0, 'T' },
		{ "multi", 1, 0, 'm' }, { "from", 1, 0, 'f' },  { "rcpt", 1, 0, 'r' },
		{ "idle", 1, 0, 'i' },  { "timeout", 1, 0, 'w' }, { 0, 0, 0, 0 },
	};
	char host[64];
	int ch, plen;
	unsigned port;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 't':
			if (sscanf(optarg, "%63[^:]:%u", host, &port) != 2 || port > 65535 ||
			    inet_pton(AF_INET, host, &o.to.sin_addr) != 1) {
				fprintf(stderr, "smtp_replay: --to %s: want IPv4:PORT\n", optarg);
				return 2;
			}
			o.to.sin_family = AF_INET;
			o.to.sin_port = htons((uint16_t)port);
			break;
		case 's': {
			struct in_addr a;

			if (sscanf(optarg, "%63[^/]/%d", host, &plen) != 2 || plen < 8 || plen > 32 ||
			    inet_pton(AF_INET, host, &a) != 1) {
				fprintf(stderr, "smtp_replay: --src %s: want an IPv4 CIDR, /8../32\n", optarg);
				return 2;
			}
			o.src_n = plen == 32 ? 1 : (1u << (32 - plen)) - 2;
			o.src_base = ntohl(a.s_addr) + (plen == 32 ? 0 : 1);
			break;
		}
		case 'l': o.list = optarg; break;
		case 'n': o.count = strtoul(optarg, NULL, 10); break;
		case 'c': o.conc = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'T': o.tls_pct = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'm': o.multi_pct = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'f': o.from = optarg; break;
		case 'r': o.rcpt = optarg; break;
		case 'i': o.idle = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'w': o.timeout = (unsigned)strtoul(optarg, NULL, 10); break;
		default: usage(); return 2;
		}
	}
	if (!o.to.sin_family || !o.src_n || (!o.list && !o.idle) || !o.conc || o.conc > 4096 ||
	    o.tls_pct > 100 || o.multi_pct > 100 || !o.timeout) {
		usage();
		return 2;
	}
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		fprintf(stderr, "smtp_replay: SSL_CTX_new failed\n");
		return 2;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (o.idle)
		return run_idle();
	if (load_list(o.list) < 0)
		return 2;
	if (!o.count)
		o.count = nmsgs;

	pthread_t *th = calloc(o.conc, sizeof(*th));
	double t0 = now_ms();

	if (!th)
		return 2;
	for (unsigned i = 0; i < o.conc; i++)
		if (pthread_create(&th[i], NULL, worker, NULL)) {
			fprintf(stderr, "smtp_replay: pthread_create failed\n");
			return 2;
		}
	for (unsigned i = 0; i < o.conc; i++)
		pthread_join(th[i], NULL);
	double secs = (now_ms() - t0) / 1e3;

	qsort(lat, nlat, sizeof(*lat), cmp_double);
	unsigned long sent = atomic_load(&n_sent), acc = atomic_load(&n_acc), rej = atomic_load(&n_rej),
		      tmp = atomic_load(&n_temp), fail = atomic_load(&n_fail);
	unsigned long conns = atomic_load(&next_conn) - o.conc; /* each thread's last draw ran dry */
	printf("{\"sent\": %lu, \"accepted\": %lu, \"rejected\": %lu, \"tempfailed\": %lu, "
	       "\"sessions\": %lu, \"sessions_failed\": %lu, \"tls_sessions\": %lu, \"seconds\": %.3f, "
	       "\"msgs_s\": %.1f, \"eod_p50_ms\": %.2f, \"eod_p99_ms\": %.2f}\n",
	       sent, acc, rej, tmp, conns, fail, atomic_load(&n_tls), secs,
	       secs > 0 ? (double)(acc + rej) / secs : 0, pct(50), pct(99));
	return fail || acc + rej + tmp != sent || sent != o.count ? 1 : 0;
}
