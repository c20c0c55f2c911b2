/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * spf.c - SPF (RFC 7208) with libspf2, off the event loop.
 *
 * libspf2's own resolver reads /etc/resolv.conf and blocks, so each pool
 * thread gives libspf2 a DNS layer of its own (SPF_dns_server_t whose
 * lookup asks the configured dns_server through a private c-ares channel,
 * waiting with poll()).  Blocking is fine there: these threads do nothing
 * else.  A finished job goes back to its worker's completion queue and the
 * worker's eventfd wakes the loop.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "log.h"
#include "smtpd.h"

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static struct spf_job *q_head, *q_tail;
static int q_stop;
static pthread_t *threads;
static int n_threads;

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

/* pool_main - a pool thread: own resolver, own libspf2 server */
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

		if (srv) {
			spf_run(srv, j);
		} else {
			j->result = SPF_RESULT_TEMPERROR;
			snprintf(j->result_str, sizeof(j->result_str), "temperror");
		}
		struct worker *w = j->w;
		pthread_mutex_lock(&w->cq_lock);
		j->next = w->cq_head;
		w->cq_head = j;
		pthread_mutex_unlock(&w->cq_lock);
		uint64_t one = 1;
		(void)!write(w->wake_ev.fd, &one, sizeof(one));
	}
	if (srv)
		SPF_server_free(srv);
	if (dns.hook)
		ares_destroy(dns.hook);
	return NULL;
}

/* spf_pool_start - start nthreads SPF threads */
int spf_pool_start(int nthreads)
{
	threads = calloc((size_t)nthreads, sizeof(*threads));
	if (!threads)
		return -ENOMEM;
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&threads[i], NULL, pool_main, NULL) != 0)
			return -errno;
		n_threads++;
	}
	return 0;
}

/* spf_pool_stop - stop and join the pool (queued jobs are dropped) */
void spf_pool_stop(void)
{
	pthread_mutex_lock(&q_lock);
	q_stop = 1;
	pthread_cond_broadcast(&q_cond);
	pthread_mutex_unlock(&q_lock);
	for (int i = 0; i < n_threads; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	threads = NULL;
	n_threads = 0;
}

/* spf_submit - queue a job; 0 or -errno */
int spf_submit(struct spf_job *j)
{
	if (!n_threads)
		return -ENOSYS;
	j->next = NULL;
	pthread_mutex_lock(&q_lock);
	if (q_tail)
		q_tail->next = j;
	else
		q_head = j;
	q_tail = j;
	pthread_cond_signal(&q_cond);
	pthread_mutex_unlock(&q_lock);
	return 0;
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
