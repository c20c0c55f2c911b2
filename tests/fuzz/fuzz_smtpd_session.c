/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_smtpd_session.c - moat-smtpd's whole session engine (session.c with
 * relay.c, proto.c, filter.c: every state, DATA and RSET included) driven
 * over real loopback TCP from the input, with a downstream MX in this
 * process whose replies come from the input too (relay.c's reply parser).
 * The engine runs as in moat-smtpd: a worker's epoll loop (the dispatch of
 * smtpd.c's worker_main), a listener on 127.0.0.1, relay to a second
 * listener.  STARTTLS is on (a self-signed P-256 key made at set-up): when
 * the client has seen "220 2.0.0 Ready to start TLS" it does the TLS
 * handshake (OpenSSL client, non-blocking, the engine's loop turning) and
 * sends the rest of the input inside TLS.  SPF, DNSBL and moat-controld are
 * off (they need DNS; SPF has its own e2e test).  Input:
 *   bytes 0-1   length D of the downstream script (big endian, capped)
 *   D bytes     downstream replies: the greeting first, then one reply per
 *               command the relay sends, a reply being the bytes up to the
 *               first LF ending a line that is not "ddd-" (a continuation);
 *               past the script every reply is "250 ok" (354 after DATA)
 *   the rest    what the client sends, in pieces of (1 + first byte) * 4
 * Invariants: every line the engine sends the client, in plaintext or
 * inside TLS, is "ddd " or "ddd-" followed by text and CRLF; the session
 * ends (the client sees EOF after closing its side) and every session is
 * freed between inputs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "clock.h"
#include "log.h"
#include "smtpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct smtpd_config *g_cfg; /* smtpd.c's, which is not linked */
static struct smtpd_config cfg;
static struct worker w;
static int lfd, mxfd;
static SSL_CTX *cctx;       /* the client's side of STARTTLS */
#define READY_TLS "\r\n220 2.0.0 Ready to start TLS\r\n"

/* tls_setup - a throwaway self-signed P-256 certificate for the engine's
 * STARTTLS (PEM files in /dev/shm, removed once loaded), a client context */
static void tls_setup(struct smtpd_config *c)
{
	char crt[] = "/dev/shm/moat-fuzz-crt-XXXXXX", key[] = "/dev/shm/moat-fuzz-key-XXXXXX", err[256];
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	int cf = mkstemp(crt), kf = mkstemp(key);
	FILE *cfp = cf >= 0 ? fdopen(cf, "w") : NULL, *kfp = kf >= 0 ? fdopen(kf, "w") : NULL;

	if (!pk || !x || !cfp || !kfp)
		abort();
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"mx.moat.test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (X509_set_pubkey(x, pk) != 1 || X509_sign(x, pk, EVP_sha256()) <= 0 ||
	    PEM_write_X509(cfp, x) != 1 || PEM_write_PrivateKey(kfp, pk, NULL, NULL, 0, NULL, NULL) != 1)
		abort();
	fclose(cfp);
	fclose(kfp);
	if (config_set(c, "tls_cert", crt, err, sizeof(err)) != 0 ||
	    config_set(c, "tls_key", key, err, sizeof(err)) != 0 || tls_init(c) != 0 || !tls_ctx())
		abort();
	unlink(crt);
	unlink(key);
	X509_free(x);
	EVP_PKEY_free(pk);
	cctx = SSL_CTX_new(TLS_client_method());
	if (!cctx)
		abort();
	SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
}

/* tcp_listener - a listening socket on 127.0.0.1, its address in *a */
static int tcp_listener(struct sockaddr_in *a)
{
	socklen_t sl = sizeof(*a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)a, sizeof(*a)) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)a, &sl) < 0)
		abort();
	return fd;
}

/* setup - the configuration and one worker, once */
static void setup(void)
{
	struct sockaddr_in la, ma;
	char err[256], relay[64];
	struct epoll_event ee = { .events = EPOLLIN };

	/* FUZZ_VERBOSE=1: the engine's log lines (what a session did) */
	log_set_level(getenv("FUZZ_VERBOSE") ? LOG_LVL_DEBUG : LOG_LVL_ERR);
	lfd = tcp_listener(&la);
	mxfd = tcp_listener(&ma);
	snprintf(relay, sizeof(relay), "127.0.0.1:%u", ntohs(ma.sin_port));
	config_defaults(&cfg);
	static const char *const kv[][2] = {
		{ "local_domains", "example.org, moat.test" }, { "hostname", "mx.moat.test" },
		{ "relay_helo", "mx.moat.test" }, { "authserv_id", "mx.moat.test" },
		{ "spf", "no" }, { "dnsbl_zones", "" }, { "greet_delay_ms", "0" },
		{ "max_conn_per_ip", "0" }, { "max_conn_rate_per_ip", "0" },
		{ "max_message_size", "20000" }, { "max_recipients", "5" }, { "max_errors", "8" },
		{ "spill_threshold", "4096" }, { "spool_dir", "/dev/shm" },
	};
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		if (config_set(&cfg, kv[i][0], kv[i][1], err, sizeof(err)) != 0) {
			fprintf(stderr, "fuzz_smtpd_session: %s\n", err);
			abort();
		}
	if (config_set(&cfg, "relay", relay, err, sizeof(err)) != 0)
		abort();
	tls_setup(&cfg);
	g_cfg = &cfg;
	if (filters_resolve(&cfg, err, sizeof(err)) != 0 || filters_thread_init() != 0)
		abort();
	w.epfd = epoll_create1(EPOLL_CLOEXEC);
	pthread_mutex_init(&w.cq_lock, NULL);
	w.wake_ev.kind = EV_WAKE;
	w.wake_ev.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w.epfd < 0 || w.wake_ev.fd < 0)
		abort();
	ee.data.ptr = &w.wake_ev;
	epoll_ctl(w.epfd, EPOLL_CTL_ADD, w.wake_ev.fd, &ee);
}

/* run - one turn of moat-smtpd's worker loop (worker_pass, session.c);
 * the number of events handled */
static int run(int timeout_ms)
{
	return worker_pass(&w, timeout_ms);
}

/* The downstream MX: one connection at a time, replies from the script. */
struct mx {
	int fd;
	const uint8_t *script;
	size_t slen, spos;
	char line[1024];
	size_t llen;
	int in_data;
	char tail[5];       /* last bytes of the message: "\r\n.\r\n" ends it */
};

/* mx_reply - send the next scripted reply (or the default) */
static void mx_reply(struct mx *m, const char *dflt)
{
	size_t start = m->spos, end = m->spos;

	if (m->spos >= m->slen) {
		(void)!send(m->fd, dflt, strlen(dflt), MSG_NOSIGNAL | MSG_DONTWAIT);
		return;
	}
	/* up to the LF of a line that is not a continuation "ddd-" */
	for (size_t ls = start; end < m->slen; end++) {
		if (m->script[end] != '\n')
			continue;
		if (!(end - ls >= 4 && m->script[ls + 3] == '-')) {
			end++;
			break;
		}
		ls = end + 1;
	}
	m->spos = end;
	(void)!send(m->fd, m->script + start, end - start, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* mx_io - read what the relay sent, answer each command; bytes handled */
static int mx_io(struct mx *m)
{
	char buf[4096];
	ssize_t n;
	int did = 0;

	if (m->fd < 0) {
		int one = 1;

		m->fd = accept4(mxfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (m->fd < 0)
			return 0;
		setsockopt(m->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		did = 1;
		m->llen = 0;
		m->in_data = 0;
		mx_reply(m, "220 mx ready\r\n");
	}
	while ((n = recv(m->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		did += (int)n;
		for (ssize_t i = 0; i < n; i++) {
			char c = buf[i];

			if (m->in_data) {
				memmove(m->tail, m->tail + 1, 4);
				m->tail[4] = c;
				if (!memcmp(m->tail, "\r\n.\r\n", 5)) {
					m->in_data = 0;
					mx_reply(m, "250 2.0.0 queued\r\n");
				}
				continue;
			}
			if (m->llen < sizeof(m->line) - 1)
				m->line[m->llen++] = c;
			if (c != '\n')
				continue;
			m->line[m->llen] = 0;
			if (!strncasecmp(m->line, "DATA", 4)) {
				m->in_data = 1;
				memcpy(m->tail, "xx\r\n", 4); /* "." at once ends it */
				m->tail[4] = 0;
				mx_reply(m, "354 go ahead\r\n");
			} else if (!strncasecmp(m->line, "QUIT", 4)) {
				mx_reply(m, "221 bye\r\n");
			} else {
				mx_reply(m, "250 ok\r\n");
			}
			m->llen = 0;
		}
	}
	if (n == 0) {
		close(m->fd);
		m->fd = -1;
		did++;
	}
	return did;
}

/* settle - run engine and MX until neither has anything to do, as a client
 * that waits for replies would let them (bounded) */
static void settle(struct mx *m)
{
	for (int idle = 0, i = 0; idle < 2 && i < 200; i++)
		idle = run(0) + mx_io(m) ? 0 : idle + 1;
}

/* check_replies - every complete line the client got is "ddd[ -]...CRLF" */
static void check_replies(const char *b, size_t n)
{
	size_t ls = 0;

	for (size_t i = 0; i < n; i++) {
		if (b[i] != '\n')
			continue;
		if (i - ls < 5 || b[i - 1] != '\r' || b[ls] < '2' || b[ls] > '5' ||
		    b[ls + 1] < '0' || b[ls + 1] > '9' || b[ls + 2] < '0' || b[ls + 2] > '9' ||
		    (b[ls + 3] != ' ' && b[ls + 3] != '-'))
			abort();
		ls = i + 1;
	}
}

/* tls_client - the client's TLS handshake on cfd (made non-blocking), the
 * engine and MX turning meanwhile; NULL when it fails */
static SSL *tls_client(int cfd, struct mx *m)
{
	SSL *ssl = SSL_new(cctx);

	fcntl(cfd, F_SETFL, fcntl(cfd, F_GETFL) | O_NONBLOCK);
	if (!ssl || SSL_set_fd(ssl, cfd) != 1)
		abort();
	for (int i = 0; i < 400; i++) {
		ERR_clear_error();
		int r = SSL_connect(ssl);
		if (r == 1)
			return ssl;
		int e = SSL_get_error(ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			break;
		run(1);
		mx_io(m);
	}
	SSL_free(ssl);
	return NULL;
}

/* ssl_send, ssl_recv - like send/recv with MSG_DONTWAIT: -1 + EAGAIN when
 * TLS needs more, 0 at the end of the stream */
static ssize_t ssl_send(SSL *ssl, const uint8_t *b, size_t n)
{
	ERR_clear_error();
	int r = SSL_write(ssl, b, (int)n);
	if (r > 0)
		return r;
	int e = SSL_get_error(ssl, r);
	errno = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? EAGAIN : EPIPE;
	return -1;
}

static ssize_t ssl_recv(SSL *ssl, char *b, size_t n)
{
	ERR_clear_error();
	int r = SSL_read(ssl, b, (int)n);
	if (r > 0)
		return r;
	int e = SSL_get_error(ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL)
		return 0; /* close_notify, or the engine closed the TCP connection */
	errno = EPROTO;
	return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char got[65536];
	struct sockaddr_in la;
	socklen_t sl = sizeof(la);
	struct mx m = { .fd = -1 };
	size_t glen = 0, off, dl, step;
	int cfd, eof = 0, shut = 0, one = 1;
	SSL *ssl = NULL;
	int holds = -1; /* >= 0: a STARTTLS line went out last, rounds waited since */

	if (!g_cfg)
		setup();
	if (size < 3)
		return 0;
	dl = (size_t)data[0] << 8 | data[1];
	if (dl > size - 2)
		dl = size - 2;
	m.script = data + 2;
	m.slen = dl;
	off = 2 + dl;
	step = off < size ? (1 + (size_t)data[off++]) * 4 : 4;
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* every piece goes out at once (Nagle would hold it for the ACK) */
	if (cfd < 0 || setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 || getsockname(lfd, (struct sockaddr *)&la, &sl) < 0 ||
	    connect(cfd, (struct sockaddr *)&la, sizeof(la)) < 0)
		abort();
	w.now_ms = moat_clock_ms();
	session_accept(&w, lfd);
	for (int round = 0; round < 4000 && !eof; round++) {
		if (!ssl && memmem(got, glen, READY_TLS, sizeof(READY_TLS) - 1)) {
			/* the engine switched: the handshake, then the rest inside TLS */
			ssl = tls_client(cfd, &m);
			if (!ssl) { /* plaintext the engine took for a ClientHello: it closes */
				eof = 1;
				break;
			}
		}
		/* a client waits for the reply to STARTTLS before it goes on */
		if (holds >= 0 && (ssl || ++holds > 50))
			holds = -1;
		if (off < size && holds < 0) {
			size_t k = size - off < step ? size - off : step;
			ssize_t s = ssl ? ssl_send(ssl, data + off, k) : send(cfd, data + off, k, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (s > 0 && getenv("FUZZ_VERBOSE"))
				fprintf(stderr, "client sent %zd: %.*s\n", s, (int)s, (const char *)data + off);
			if (s > 0) {
				off += (size_t)s;
				if (!ssl && off >= 10 && !strncasecmp((const char *)data + off - 10, "STARTTLS\r\n", 10))
					holds = 0;
			}
			else if (s < 0 && errno != EAGAIN)
				off = size; /* the engine closed on us */
		} else if (!shut) {
			/* all sent: let the relay's round trips finish first */
			for (int idle = 0, i = 0; idle < 4 && i < 100; i++)
				idle = run(1) + mx_io(&m) ? 0 : idle + 1;
			if (ssl)
				SSL_shutdown(ssl); /* close_notify, then the TCP half-close */
			shutdown(cfd, SHUT_WR);
			shut = 1;
		}
		settle(&m);
		if (shut)
			run(1);
		ssize_t r;
		while ((r = ssl ? ssl_recv(ssl, got + glen, sizeof(got) - glen)
				: recv(cfd, got + glen, sizeof(got) - glen, MSG_DONTWAIT)) > 0) {
			glen += (size_t)r;
			if (glen == sizeof(got)) {
				check_replies(got, glen);
				glen = 0;
			}
		}
		if (r == 0 || (r < 0 && errno != EAGAIN))
			eof = 1;
	}
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "client got:\n%.*s", (int)glen, got);
	check_replies(got, glen);
	SSL_free(ssl);
	close(cfd);
	/* let the session see the close and be freed */
	for (int round = 0; round < 200 && w.sessions; round++) {
		run(1);
		mx_io(&m);
	}
	if (w.sessions) {
		session_shutdown_all(&w);
		run(0);
	}
	session_free_zombies(&w);
	if (m.fd >= 0)
		close(m.fd);
	/* a relay connection the engine opened and the MX never accepted */
	for (int fd; (fd = accept4(mxfd, NULL, NULL, SOCK_NONBLOCK)) >= 0;)
		close(fd);
	if (!eof)
		abort(); /* the engine never ended the session */
	return 0;
}
