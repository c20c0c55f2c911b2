/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dnsbl.c - live DNSBL check at connect: one c-ares channel per worker,
 * driven by the worker's epoll loop (socket-state callback), all configured
 * zones queried in parallel, answers weighed as postscreen's dnsbl_sites:
 * answers outside 127.0.0.0/8 and the configured error codes
 * (dnsbl_ignore, default 127.255.255.0/24 and 127.0.0.1) never list.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "log.h"
#include "smtpd.h"

struct dq {
	struct session *s;
	int zone;
};

/* sock_cb - c-ares opened/closed a socket or changed interest */
static void sock_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct worker *w = data;
	struct ev *slot = NULL, *free_slot = NULL;

	for (size_t i = 0; i < sizeof(w->ares_ev) / sizeof(w->ares_ev[0]); i++) {
		if (w->ares_ev[i].kind == EV_ARES && w->ares_ev[i].fd == fd)
			slot = &w->ares_ev[i];
		else if (!w->ares_ev[i].kind && !free_slot)
			free_slot = &w->ares_ev[i];
	}
	if (!readable && !writable) {
		if (slot) {
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
			memset(slot, 0, sizeof(*slot));
		}
		return;
	}
	struct epoll_event ee = { .events = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0) };
	if (!slot) {
		if (!free_slot)
			return; /* c-ares times the query out */
		slot = free_slot;
		slot->kind = EV_ARES;
		slot->fd = fd;
		ee.data.ptr = slot;
		epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ee);
	} else {
		ee.data.ptr = slot;
		epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ee);
	}
}

/* dns_set_server - make a channel ask dns_server only; 0 or -1 */
int dns_set_server(ares_channel ch)
{
	struct ares_addr_port_node srv;
	memset(&srv, 0, sizeof(srv));
	if (g_cfg->dns_server.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&g_cfg->dns_server;
		srv.family = AF_INET;
		memcpy(&srv.addr.addr4, &a->sin_addr, 4);
		srv.udp_port = srv.tcp_port = ntohs(a->sin_port);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&g_cfg->dns_server;
		srv.family = AF_INET6;
		memcpy(&srv.addr.addr6, &a->sin6_addr, 16);
		srv.udp_port = srv.tcp_port = ntohs(a->sin6_port);
	}
	return ares_set_servers_ports(ch, &srv) == ARES_SUCCESS ? 0 : -1;
}

/* dnsbl_worker_init - the worker's resolver, asking dns_server only */
int dnsbl_worker_init(struct worker *w)
{
	struct ares_options o;
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = sock_cb;
	o.sock_state_cb_data = w;
	o.timeout = g_cfg->dnsbl_timeout_ms;
	o.tries = 1;
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	int r = ares_init_options(&w->ares, &o,
				  ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS);
	if (r != ARES_SUCCESS)
		return -1;
	return dns_set_server(w->ares);
}

/* dnsbl_worker_fini - cancel queries, free the channel */
void dnsbl_worker_fini(struct worker *w)
{
	if (w->ares)
		ares_destroy(w->ares);
	w->ares = NULL;
}

/* dnsbl_reverse - reversed address labels for a DNSBL query */
int dnsbl_reverse(int family, const uint8_t *a, char *out, size_t outsz)
{
	if (family == 4)
		return snprintf(out, outsz, "%u.%u.%u.%u", a[3], a[2], a[1], a[0]) < (int)outsz ? 0 : -1;
	static const char hx[] = "0123456789abcdef";
	if (outsz < 64)
		return -1;
	size_t o = 0;
	for (int i = 15; i >= 0; i--) {
		out[o++] = hx[a[i] & 15];
		out[o++] = '.';
		out[o++] = hx[a[i] >> 4];
		out[o++] = '.';
	}
	out[o - 1] = '\0';
	return 0;
}

/* dnsbl_answer_counts - is this A answer a listing for zone z? */
int dnsbl_answer_counts(const struct smtpd_config *c, const struct smtpd_dnsbl_zone *z, const uint8_t a[4])
{
	if (a[0] != 127)
		return 0;
	for (int i = 0; i < c->n_dnsbl_ignore; i++)
		if (moat_prefix_match(&c->dnsbl_ignore[i], MOAT_AF_INET, a))
			return 0;
	if (z->have_filter && !moat_prefix_match(&z->filter, MOAT_AF_INET, a))
		return 0;
	return 1;
}

/* on_answer - one zone answered (or failed: not listed) */
static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dq *q = arg;
	struct session *s = q->s;
	const struct smtpd_dnsbl_zone *z = &g_cfg->zones[q->zone];

	(void)timeouts;
	if (status == ARES_SUCCESS && !s->dead) {
		struct ares_addrttl at[32];
		int n = 32;
		if (ares_parse_a_reply(abuf, alen, NULL, at, &n) == ARES_SUCCESS) {
			for (int i = 0; i < n; i++) {
				uint8_t a[4];
				memcpy(a, &at[i].ipaddr, 4);
				if (!dnsbl_answer_counts(g_cfg, z, a))
					continue;
				if (!s->dnsbl_zone[0] || z->weight > 0) {
					snprintf(s->dnsbl_zone, sizeof(s->dnsbl_zone), "%s", z->name);
					inet_ntop(AF_INET, a, s->dnsbl_code, sizeof(s->dnsbl_code));
				}
				s->dnsbl_score += z->weight;
				break; /* a zone counts once */
			}
		}
	} else if (status != ARES_SUCCESS && status != ARES_ENOTFOUND && status != ARES_ENODATA &&
		   status != ARES_EDESTRUCTION) {
		stats_inc("connect", "dnsbl_error");
	}
	free(q);
	s->refs--;
	if (--s->dnsbl_pending == 0 && !s->dead)
		session_dnsbl_done(s);
	session_release(s);
}

/* dnsbl_start - query every zone for the session's client */
int dnsbl_start(struct session *s)
{
	char rev[80], name[400];

	if (!g_cfg->n_zones || !s->w->ares)
		return 1;
	if (dnsbl_reverse(s->family, s->addr, rev, sizeof(rev)) != 0)
		return 1;
	for (int i = 0; i < g_cfg->n_zones; i++) {
		struct dq *q = malloc(sizeof(*q));
		if (!q)
			break;
		q->s = s;
		q->zone = i;
		snprintf(name, sizeof(name), "%s.%s", rev, g_cfg->zones[i].name);
		s->refs++;
		s->dnsbl_pending++;
		ares_query(s->w->ares, name, ns_c_in, ns_t_a, on_answer, q);
	}
	return s->dnsbl_pending ? 0 : 1;
}

/* dnsbl_on_event - readiness on a c-ares socket */
void dnsbl_on_event(struct worker *w, struct ev *e, uint32_t events)
{
	ares_socket_t fd = e->fd;
	ares_process_fd(w->ares, (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? fd : ARES_SOCKET_BAD,
			(events & EPOLLOUT) ? fd : ARES_SOCKET_BAD);
}

/* dnsbl_tick - let c-ares expire timed-out queries */
void dnsbl_tick(struct worker *w)
{
	if (w->ares)
		ares_process_fd(w->ares, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}
