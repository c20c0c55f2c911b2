/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * spf.c - SPF (RFC 7208) with libspf2, in a worker process of its own.
 *
 * libspf2 has open CVEs (CVE-2021-33912/33913, CVE-2023-42118): a crafted
 * SPF record may crash or corrupt the process evaluating it, so that
 * process is not the engine.  spf_pool_start() spawns moat-smtpd again as
 * "moat-smtpd --spf-worker FD" (fork + exec of /proc/self/exe: a fresh
 * image, not a copy of a threaded one), after the privilege drop, so it runs
 * as the same unprivileged user with no capabilities.  The two talk over a
 * SOCK_SEQPACKET socketpair: a boot message (hostname, dns_server, timeout,
 * threads), then one request per evaluation and one reply per request,
 * matched by id.
 *
 * In the engine, a client thread reads the replies and hands each job to
 * its worker's completion queue (the worker's eventfd wakes its loop).
 * When the worker dies (EOF on the socket) every evaluation in flight is
 * answered temperror (the session says 451 4.7.24) and a new worker is
 * spawned; one that hangs with work in flight for 2 * spf_timeout_ms + 2 s
 * is killed and replaced the same way.  Until the new one is up, MAIL gets
 * the same 451.
 *
 * In the worker, each pool thread gives libspf2 a DNS layer of its own
 * (SPF_dns_server_t whose lookup asks the configured dns_server through a
 * private c-ares channel, waiting with poll()): libspf2's own resolver
 * reads /etc/resolv.conf and blocks.  Blocking is fine there: these threads
 * do nothing else.
 *
 * Once its threads have their resolver and libspf2 server, the worker puts
 * itself (every thread, TSYNC) under a seccomp filter (classic BPF, no
 * libseccomp): an allowlist of what an evaluation needs (memory, futexes,
 * UDP/TCP DNS through c-ares, the engine's socket, the log, time); anything
 * else (open, exec, fork, ptrace, ...) kills the process with SIGSYS, which
 * the engine sees as any other death.  /proc/PID/status shows "Seccomp: 2".
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <stddef.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "clock.h"
#include "log.h"
#include "smtpd.h"

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static struct spf_job *q_head, *q_tail;
static int q_stop;
static int pool_ready;          /* worker: pool threads set up (under q_lock) */
static void test_forbidden(const struct spf_job *j);

struct qres {
	int done;
	int status;
	unsigned char *abuf;
	int alen;
};

/* qcb - c-ares answer for a blocking query */
static void qcb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct qres *q = arg;
	(void)timeouts;
	q->done = 1;
	q->status = status;
	if (status == ARES_SUCCESS && abuf && alen > 0) {
		q->abuf = malloc((size_t)alen);
		if (q->abuf) {
			memcpy(q->abuf, abuf, (size_t)alen);
			q->alen = alen;
		} else {
			q->status = ARES_ENOMEM;
		}
	}
}

/* blocking_query - one query, waiting in poll() (pool threads only) */
static void blocking_query(ares_channel ch, const char *name, int type, struct qres *q)
{
	ares_query(ch, name, ns_c_in, type, qcb, q);
	while (!q->done) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		int bm = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM), n = 0;
		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short ev = 0;
			/* ARES_GETSOCK_WRITABLE shifts a signed 1 into bit 31 (UB) */
			if ((unsigned)bm & (1u << i))
				ev |= POLLIN;
			if ((unsigned)bm & (1u << (i + ARES_GETSOCK_MAXNUM)))
				ev |= POLLOUT;
			if (!ev)
				continue;
			pfd[n].fd = socks[i];
			pfd[n].events = ev;
			pfd[n].revents = 0;
			n++;
		}
		struct timeval tv, *tvp = ares_timeout(ch, NULL, &tv);
		int ms = tvp ? (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) + 1 : 100;
		int r = poll(pfd, (nfds_t)n, ms);
		if (r <= 0) {
			ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (int i = 0; i < n; i++)
			ares_process_fd(ch, (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) ? pfd[i].fd : ARES_SOCKET_BAD,
					(pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD);
	}
}

/* rr_add_str - append a string RR (TXT, MX, PTR) */
static int rr_add_str(SPF_dns_rr_t *rr, const char *s)
{
	size_t l = strlen(s) + 1;
	if (SPF_dns_rr_buf_realloc(rr, rr->num_rr, l) != SPF_E_SUCCESS)
		return -1;
	memcpy(rr->rr[rr->num_rr]->txt, s, l);
	rr->num_rr++;
	return 0;
}

/* moat_dns_lookup - libspf2's lookup hook: ask dns_server via c-ares */
static SPF_dns_rr_t *moat_dns_lookup(SPF_dns_server_t *d, const char *domain, ns_type type, int should_cache)
{
	ares_channel ch = d->hook;
	struct qres q = { 0 };
	SPF_dns_rr_t *rr;

	(void)should_cache;
	if (type == ns_t_spf) /* RR type 99 is obsolete (RFC 7208 3.1) */
		return SPF_dns_rr_new_init(d, domain, type, 0, NO_DATA);
	blocking_query(ch, domain, type, &q);
	if (q.status == ARES_ENOTFOUND)
		return SPF_dns_rr_new_nxdomain(d, domain);
	if (q.status == ARES_ENODATA)
		return SPF_dns_rr_new_init(d, domain, type, 0, NO_DATA);
	if (q.status != ARES_SUCCESS) {
		free(q.abuf);
		return SPF_dns_rr_new_init(d, domain, type, 0, TRY_AGAIN);
	}
	rr = SPF_dns_rr_new_init(d, domain, type, 0, NETDB_SUCCESS);
	if (!rr)
		goto out;
	switch (type) {
	case ns_t_a: {
		struct ares_addrttl at[64];
		int n = 64;
		if (ares_parse_a_reply(q.abuf, q.alen, NULL, at, &n) != ARES_SUCCESS)
			n = 0;
		for (int i = 0; i < n; i++) {
			if (SPF_dns_rr_buf_realloc(rr, rr->num_rr, sizeof(struct in_addr)) != SPF_E_SUCCESS)
				break;
			rr->rr[rr->num_rr++]->a = at[i].ipaddr;
		}
		break;
	}
	case ns_t_aaaa: {
		struct ares_addr6ttl at[64];
		int n = 64;
		if (ares_parse_aaaa_reply(q.abuf, q.alen, NULL, at, &n) != ARES_SUCCESS)
			n = 0;
		for (int i = 0; i < n; i++) {
			if (SPF_dns_rr_buf_realloc(rr, rr->num_rr, sizeof(struct in6_addr)) != SPF_E_SUCCESS)
				break;
			memcpy(&rr->rr[rr->num_rr++]->aaaa, &at[i].ip6addr, 16);
		}
		break;
	}
	case ns_t_mx: {
		struct ares_mx_reply *mx = NULL;
		if (ares_parse_mx_reply(q.abuf, q.alen, &mx) == ARES_SUCCESS) {
			for (struct ares_mx_reply *m = mx; m; m = m->next)
				if (rr_add_str(rr, m->host) != 0)
					break;
			ares_free_data(mx);
		}
		break;
	}
	case ns_t_txt: {
		struct ares_txt_ext *tx = NULL;
		if (ares_parse_txt_reply_ext(q.abuf, q.alen, &tx) == ARES_SUCCESS) {
			/* one RR may hold several character-strings: join them */
			char buf[4096];
			size_t bl = 0;
			int have = 0;
			for (struct ares_txt_ext *t = tx; t; t = t->next) {
				if (t->record_start && have) {
					buf[bl] = '\0';
					rr_add_str(rr, buf);
					bl = 0;
				}
				have = 1;
				size_t l = t->length;
				if (bl + l >= sizeof(buf))
					l = sizeof(buf) - 1 - bl;
				memcpy(buf + bl, t->txt, l);
				bl += l;
			}
			if (have) {
				buf[bl] = '\0';
				rr_add_str(rr, buf);
			}
			ares_free_data(tx);
		}
		break;
	}
	case ns_t_ptr: {
		struct hostent *h = NULL;
		uint8_t dummy[16] = { 0 };
		if (ares_parse_ptr_reply(q.abuf, q.alen, dummy, 4, AF_INET, &h) == ARES_SUCCESS && h) {
			if (h->h_name)
				rr_add_str(rr, h->h_name);
			for (char **a = h->h_aliases; a && *a; a++)
				rr_add_str(rr, *a);
			ares_free_hostent(h);
		}
		break;
	}
	default:
		break;
	}
	if (rr->num_rr == 0)
		rr->herrno = NO_DATA;
out:
	free(q.abuf);
	return rr;
}

/* new_channel - a blocking-use c-ares channel asking dns_server */
static ares_channel new_channel(void)
{
	ares_channel ch;
	struct ares_options o;
	memset(&o, 0, sizeof(o));
	o.timeout = g_cfg->spf_timeout_ms / 2 > 100 ? g_cfg->spf_timeout_ms / 2 : 100;
	o.tries = 1;
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	if (ares_init_options(&ch, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS) != ARES_SUCCESS)
		return NULL;
	if (dns_set_server(ch) != 0) {
		ares_destroy(ch);
		return NULL;
	}
	return ch;
}

/* sanitize - printable ASCII only (the comment reaches the client) */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 32 || (unsigned char)*s > 126)
			*s = '?';
}

/* spf_run - evaluate one job with this thread's server */
static void spf_run(SPF_server_t *srv, struct spf_job *j)
{
	SPF_request_t *req = SPF_request_new(srv);
	SPF_response_t *resp = NULL;

	j->result = SPF_RESULT_TEMPERROR;
	if (!req)
		goto out;
	if (j->family == 4) {
		struct in_addr a;
		memcpy(&a, j->addr, 4);
		SPF_request_set_ipv4(req, a);
	} else {
		struct in6_addr a;
		memcpy(&a, j->addr, 16);
		SPF_request_set_ipv6(req, a);
	}
	SPF_request_set_helo_dom(req, j->helo);
	SPF_request_set_env_from(req, j->from);
	SPF_request_query_mailfrom(req, &resp);
	if (resp) {
		j->result = SPF_response_result(resp);
		const char *c = SPF_response_get_smtp_comment(resp);
		if (c)
			snprintf(j->comment, sizeof(j->comment), "%s", c);
	}
out:
	if (j->result == SPF_RESULT_INVALID)
		j->result = SPF_RESULT_PERMERROR;
	snprintf(j->result_str, sizeof(j->result_str), "%s", SPF_strresult(j->result));
	sanitize(j->comment);
	if (!j->comment[0])
		snprintf(j->comment, sizeof(j->comment), "%s", j->result_str);
	if (resp)
		SPF_response_free(resp);
	if (req)
		SPF_request_free(req);
}

/* Messages between the engine and the worker (same binary on both ends:
 * host layout). */
struct spf_boot {
	char hostname[256];
	struct sockaddr_storage dns_server;
	int timeout_ms;
	int threads;
	int log_level;
	int use_syslog;
};

struct spf_req {
	uint64_t id;
	int32_t family;
	uint8_t addr[16];
	char helo[256];
	char from[SMTP_ADDR_MAX + 1];
};

struct spf_rep {
	uint64_t id;
	int32_t result;
	char result_str[16];
	char comment[256];
};

/* worker side: the socket to the engine and the lock its replies take */
static int child_fd = -1;
static pthread_mutex_t child_send_lock = PTHREAD_MUTEX_INITIALIZER;

/* job_reply - worker side: send a finished job's verdict to the engine */
static void job_reply(struct spf_job *j)
{
	struct spf_rep r = { .id = j->id, .result = j->result };

	snprintf(r.result_str, sizeof(r.result_str), "%s", j->result_str);
	snprintf(r.comment, sizeof(r.comment), "%s", j->comment);
	pthread_mutex_lock(&child_send_lock);
	if (send(child_fd, &r, sizeof(r), MSG_NOSIGNAL) != (ssize_t)sizeof(r))
		_exit(0); /* the engine is gone */
	pthread_mutex_unlock(&child_send_lock);
	free(j);
}

/* pool_main - a pool thread of the worker: own resolver, own libspf2 server */
static void *pool_main(void *arg)
{
	SPF_dns_server_t dns;
	SPF_server_t *srv;

	(void)arg;
	memset(&dns, 0, sizeof(dns));
	dns.lookup = moat_dns_lookup;
	dns.name = "moat";
	dns.hook = new_channel();
	srv = dns.hook ? SPF_server_new_dns(&dns, 0) : NULL;
	if (srv)
		SPF_server_set_rec_dom(srv, g_cfg->hostname);
	pthread_mutex_lock(&q_lock);
	pool_ready++;
	pthread_cond_broadcast(&q_cond);
	pthread_mutex_unlock(&q_lock);
	for (;;) {
		pthread_mutex_lock(&q_lock);
		while (!q_head && !q_stop)
			pthread_cond_wait(&q_cond, &q_lock);
		if (q_stop) {
			pthread_mutex_unlock(&q_lock);
			break;
		}
		struct spf_job *j = q_head;
		q_head = j->next;
		if (!q_head)
			q_tail = NULL;
		pthread_mutex_unlock(&q_lock);

		test_forbidden(j);
		if (srv) {
			spf_run(srv, j);
		} else {
			j->result = SPF_RESULT_TEMPERROR;
			snprintf(j->result_str, sizeof(j->result_str), "temperror");
		}
		job_reply(j);
	}
	if (srv)
		SPF_server_free(srv);
	if (dns.hook)
		ares_destroy(dns.hook);
	return NULL;
}

#if defined(__x86_64__)
#define SPF_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SPF_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/* the worker's allowlist: what libspf2, c-ares (UDP and TCP to dns_server),
 * glibc's malloc and threads, the log (stderr or syslog's AF_UNIX socket)
 * and the engine's socket need once the pool is up */
static const int spf_allowed[] = {
	__NR_read, __NR_write, __NR_readv, __NR_writev, __NR_close, __NR_ppoll, __NR_pselect6,
	__NR_socket, __NR_connect, __NR_sendto, __NR_recvfrom, __NR_sendmsg, __NR_recvmsg,
	__NR_sendmmsg, __NR_recvmmsg, __NR_setsockopt, __NR_getsockopt, __NR_getsockname,
	__NR_getpeername, __NR_fcntl, __NR_ioctl, __NR_fstat, __NR_newfstatat, __NR_lseek,
	__NR_futex, __NR_mmap, __NR_munmap, __NR_mremap, __NR_mprotect, __NR_brk, __NR_madvise,
	__NR_clock_gettime, __NR_clock_nanosleep, __NR_nanosleep, __NR_gettimeofday,
	__NR_getrandom, __NR_getpid, __NR_gettid, __NR_sched_yield, __NR_rt_sigreturn,
	__NR_rt_sigprocmask, __NR_restart_syscall, __NR_exit, __NR_exit_group,
	__NR_set_robust_list, __NR_rseq, __NR_uname, __NR_sched_getaffinity,
#ifdef __NR_poll
	__NR_poll,
#endif
#ifdef __NR_select
	__NR_select,
#endif
#ifdef __NR_time
	__NR_time,
#endif
};

/* spf_sandbox - the seccomp filter on every thread of the worker; 0 or -errno */
static int spf_sandbox(void)
{
#ifdef SPF_AUDIT_ARCH
	enum { N = sizeof(spf_allowed) / sizeof(spf_allowed[0]) };
	struct sock_filter f[N + 6];
	unsigned k = 0;

	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SPF_AUDIT_ARCH, 1, 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	for (unsigned i = 0; i < N; i++) /* match: jump over the rest to ALLOW */
		f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)spf_allowed[i],
						      (unsigned char)(N - i), 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { .len = (unsigned short)k, .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0)
		return -errno;
	return 0;
#else
	return -ENOSYS;
#endif
}

/* test_forbidden - MOAT_TEST_SPF_FORBIDDEN=DOMAIN (tests only, inert unless
 * set): a MAIL FROM in DOMAIN makes the worker call openat(2), which the
 * filter forbids; e2e spf_worker shows the kill and what the session gets */
static void test_forbidden(const struct spf_job *j)
{
	static const char *dom;
	static int init;
	if (!init) {
		dom = getenv("MOAT_TEST_SPF_FORBIDDEN");
		init = 1;
	}
	const char *at = dom && *dom ? strrchr(j->from, '@') : NULL;
	if (at && !strcasecmp(at + 1, dom))
		syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY);
}

/* spf_worker_main - "moat-smtpd --spf-worker FD": the worker process.
 * Returns the process's exit status (0 when the engine closed the socket). */
int spf_worker_main(int argc, char **argv)
{
	static struct smtpd_config c;
	struct spf_boot b;
	struct spf_req rq;
	pthread_t thr;
	ssize_t n;

	if (argc != 3)
		return 2;
	child_fd = atoi(argv[2]);
	/* the engine's death ends the worker (also seen as EOF below) */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	prctl(PR_SET_NAME, "moat-spf", 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	if (recv(child_fd, &b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return 1;
	log_init("moat-smtpd-spf", b.use_syslog);
	log_set_level((enum log_level)b.log_level);
	config_defaults(&c);
	snprintf(c.hostname, sizeof(c.hostname), "%s", b.hostname);
	c.dns_server = b.dns_server;
	c.spf_timeout_ms = b.timeout_ms;
	g_cfg = &c;
	int nthr = b.threads > 0 ? b.threads : 1;
	for (int i = 0; i < nthr; i++)
		if (pthread_create(&thr, NULL, pool_main, NULL) != 0)
			return 1;
	pthread_mutex_lock(&q_lock);
	while (pool_ready < nthr)
		pthread_cond_wait(&q_cond, &q_lock);
	pthread_mutex_unlock(&q_lock);
	tzset(); /* libspf2 formats local time: /etc/localtime read now, not under the filter */
	int r = spf_sandbox();
	if (r != 0) {
		log_err("spf: worker: seccomp filter: %s", strerror(-r));
		return 1;
	}
	log_info("spf: worker pid=%d ready (%d threads, seccomp filter on)", (int)getpid(), nthr);
	while ((n = recv(child_fd, &rq, sizeof(rq), 0)) == (ssize_t)sizeof(rq)) {
		struct spf_job *j = calloc(1, sizeof(*j));

		if (!j)
			return 1;
		j->id = rq.id;
		j->family = rq.family;
		memcpy(j->addr, rq.addr, sizeof(j->addr));
		rq.helo[sizeof(rq.helo) - 1] = 0;
		rq.from[sizeof(rq.from) - 1] = 0;
		snprintf(j->helo, sizeof(j->helo), "%s", rq.helo);
		snprintf(j->from, sizeof(j->from), "%s", rq.from);
		j->next = NULL;
		pthread_mutex_lock(&q_lock);
		if (q_tail)
			q_tail->next = j;
		else
			q_head = j;
		q_tail = j;
		pthread_cond_signal(&q_cond);
		pthread_mutex_unlock(&q_lock);
	}
	return n == 0 ? 0 : 1;
}

/* engine side: the worker process and the evaluations it holds */
static int w_fd = -1;              /* under q_lock */
static pid_t w_pid = -1;
static int64_t w_started_ms;
static struct spf_job *inflight;   /* sent, not answered (under q_lock) */
static uint64_t next_id;
static int w_threads;
static pthread_t client_thr;
static int client_running;
static volatile int client_stop;

/* job_complete - engine side: hand a finished job to its session's worker */
static void job_complete(struct spf_job *j)
{
	struct worker *w = j->w;
	uint64_t one = 1;

	pthread_mutex_lock(&w->cq_lock);
	j->next = w->cq_head;
	w->cq_head = j;
	pthread_mutex_unlock(&w->cq_lock);
	(void)!write(w->wake_ev.fd, &one, sizeof(one));
}

/* spawn - start a worker process; 0 or -errno */
static int spawn(void)
{
	int sv[2];
	char fdarg[16];
	char *argv[] = { "moat-smtpd", "--spf-worker", fdarg, NULL };
	struct spf_boot b = { .timeout_ms = g_cfg->spf_timeout_ms, .threads = w_threads,
			      .log_level = (int)log_get_level(), .use_syslog = g_cfg->use_syslog };
	pid_t pid;

	snprintf(b.hostname, sizeof(b.hostname), "%s", g_cfg->hostname);
	b.dns_server = g_cfg->dns_server;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	snprintf(fdarg, sizeof(fdarg), "3");
	pid = fork();
	if (pid < 0) {
		int e = -errno;
		close(sv[0]);
		close(sv[1]);
		return e;
	}
	if (pid == 0) {
		/* async-signal-safe calls only until exec: the engine is threaded */
		if (dup2(sv[1], 3) < 0)
			_exit(127);
		syscall(SYS_close_range, 4, ~0U, 0);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(sv[1]);
	if (send(sv[0], &b, sizeof(b), MSG_NOSIGNAL) != (ssize_t)sizeof(b)) {
		int e = -errno;
		close(sv[0]);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return e ? e : -EIO;
	}
	pthread_mutex_lock(&q_lock);
	w_fd = sv[0];
	w_pid = pid;
	w_started_ms = moat_clock_ms();
	pthread_mutex_unlock(&q_lock);
	log_info("spf: worker pid=%d started", (int)pid);
	return 0;
}

/* worker_lost - the worker died or was killed: answer what it held, reap it */
static void worker_lost(const char *why)
{
	struct spf_job *l;
	int fd, st = 0, n = 0;
	char how[64];

	pthread_mutex_lock(&q_lock);
	l = inflight;
	inflight = NULL;
	fd = w_fd;
	w_fd = -1;
	pthread_mutex_unlock(&q_lock);
	close(fd);
	if (waitpid(w_pid, &st, 0) < 0)
		snprintf(how, sizeof(how), "unknown");
	else if (WIFSIGNALED(st))
		snprintf(how, sizeof(how), "signal %d", WTERMSIG(st));
	else
		snprintf(how, sizeof(how), "exit %d", WEXITSTATUS(st));
	while (l) {
		struct spf_job *next = l->next;

		l->result = SPF_RESULT_TEMPERROR;
		snprintf(l->result_str, sizeof(l->result_str), "temperror");
		snprintf(l->comment, sizeof(l->comment), "SPF worker died");
		job_complete(l);
		n++;
		l = next;
	}
	log_warn("spf: worker pid=%d lost (%s, %s) in_flight=%d: answered temperror; restarting",
		 (int)w_pid, why, how, n);
	w_pid = -1;
}

/* client_main - engine side: replies in, deaths handled, hangs killed */
static void *client_main(void *arg)
{
	(void)arg;
	while (!client_stop) {
		if (w_fd < 0) {
			/* a worker that dies at once is not respawned in a loop */
			if (moat_clock_ms() - w_started_ms < 1000)
				usleep(500000);
			int r = spawn();
			if (r < 0) {
				log_err("spf: cannot start a worker: %s", strerror(-r));
				sleep(1);
				continue;
			}
		}
		struct pollfd p = { .fd = w_fd, .events = POLLIN };
		int r = poll(&p, 1, 500);

		if (r == 0) {
			int64_t oldest = 0, now = moat_clock_ms();

			pthread_mutex_lock(&q_lock);
			for (struct spf_job *j = inflight; j; j = j->next)
				if (!oldest || j->sent_ms < oldest)
					oldest = j->sent_ms;
			pthread_mutex_unlock(&q_lock);
			if (oldest && now - oldest > 2 * (int64_t)g_cfg->spf_timeout_ms + 2000) {
				log_warn("spf: worker pid=%d has not answered for %lld ms: killing it",
					 (int)w_pid, (long long)(now - oldest));
				kill(w_pid, SIGKILL);
			}
			continue;
		}
		if (r < 0)
			continue;
		struct spf_rep rep;
		ssize_t n = recv(w_fd, &rep, sizeof(rep), MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n != (ssize_t)sizeof(rep)) {
			/* a worker killed with requests unread resets the socket */
			worker_lost(n == 0 ? "connection closed" : n < 0 ? strerror(errno) : "short reply");
			continue;
		}
		struct spf_job *j, **pp;

		pthread_mutex_lock(&q_lock);
		for (pp = &inflight; (j = *pp) && j->id != rep.id; pp = &j->next)
			;
		if (j)
			*pp = j->next;
		pthread_mutex_unlock(&q_lock);
		if (!j)
			continue; /* answered already (cannot happen: ids are unique) */
		j->result = rep.result;
		rep.result_str[sizeof(rep.result_str) - 1] = 0;
		rep.comment[sizeof(rep.comment) - 1] = 0;
		snprintf(j->result_str, sizeof(j->result_str), "%s", rep.result_str);
		snprintf(j->comment, sizeof(j->comment), "%s", rep.comment);
		sanitize(j->comment); /* the worker is not trusted either */
		job_complete(j);
	}
	return NULL;
}

/* spf_pool_start - spawn the SPF worker process (nthreads evaluations at
 * once) and the thread that talks to it; 0 or -errno */
int spf_pool_start(int nthreads)
{
	int r;

	w_threads = nthreads;
	r = spawn();
	if (r < 0)
		return r;
	if (pthread_create(&client_thr, NULL, client_main, NULL) != 0)
		return -errno;
	client_running = 1;
	return 0;
}

/* spf_pool_stop - stop the client thread and the worker (evaluations in
 * flight are dropped, as the engine is stopping) */
void spf_pool_stop(void)
{
	if (client_running) {
		client_stop = 1;
		pthread_join(client_thr, NULL);
		client_running = 0;
	}
	if (w_fd >= 0)
		close(w_fd);
	w_fd = -1;
	if (w_pid > 0) {
		kill(w_pid, SIGTERM);
		waitpid(w_pid, NULL, 0);
	}
	w_pid = -1;
}

/* spf_submit - send a job to the worker; 0, or -EAGAIN when no worker is
 * up or its socket is full (the session answers 451) */
int spf_submit(struct spf_job *j)
{
	struct spf_req rq = { .family = j->family };
	int r = 0;

	memcpy(rq.addr, j->addr, sizeof(rq.addr));
	snprintf(rq.helo, sizeof(rq.helo), "%s", j->helo);
	snprintf(rq.from, sizeof(rq.from), "%s", j->from);
	pthread_mutex_lock(&q_lock);
	if (w_fd < 0) {
		r = -EAGAIN;
	} else {
		j->id = rq.id = ++next_id;
		j->sent_ms = moat_clock_ms();
		if (send(w_fd, &rq, sizeof(rq), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(rq)) {
			r = -EAGAIN;
		} else {
			j->next = inflight;
			inflight = j;
			log_debug("spf: request id=%llu to worker pid=%d", (unsigned long long)j->id,
				  (int)w_pid);
		}
	}
	pthread_mutex_unlock(&q_lock);
	return r;
}

/* spf_worker_drain - hand finished jobs to their sessions (worker thread) */
void spf_worker_drain(struct worker *w)
{
	uint64_t v;
	(void)!read(w->wake_ev.fd, &v, sizeof(v));
	pthread_mutex_lock(&w->cq_lock);
	struct spf_job *j = w->cq_head;
	w->cq_head = NULL;
	pthread_mutex_unlock(&w->cq_lock);
	while (j) {
		struct spf_job *n = j->next;
		struct session *s = j->s;
		if (!j->orphan && !s->dead)
			session_spf_done(s, j);
		s->refs--;
		session_release(s);
		free(j);
		j = n;
	}
}
