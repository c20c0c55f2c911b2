/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dp_chan_host.c - moat-dpdk's table and publish channel in a real EAL,
 * without moat-dpdk's ports: for moat-controld's tests of the DPDK backend
 * (tests/e2e/test_controld_dpdk.sh).  A reader thread stands in for the
 * worker lcores: it looks the --probe addresses up continuously (QSBR
 * thread 0, a quiescent state per pass), counts verdicts into the
 * counters moat-controld reads (pass/tarpit/drop/allow) and puts one
 * event per pass for each refused probe on the events ring.
 *
 *   dp_chan_host [EAL options] -- --socket PATH [--state PATH]
 *                [--probe ADDR]...
 *
 * Logs event=ready when the channel listens, event=loaded when the table
 * holds a whole version (restored or committed); SIGTERM/SIGINT stop it
 * (the image is saved once more).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "clock.h"
#include "dp_chan.h"
#include "dp_table.h"
#include "log.h"

#define MAX_PROBES 16

static volatile sig_atomic_t stop;
static struct moat_prefix probes[MAX_PROBES];
static unsigned nprobes;
static struct dp_table *table;
static struct rte_ring *ring;
static uint64_t counts[MOAT_STAT__MAX];

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void read_stats(void *ud, uint64_t out[MOAT_STAT__MAX])
{
	(void)ud;
	for (int i = 0; i < MOAT_STAT__MAX; i++)
		out[i] = __atomic_load_n(&counts[i], __ATOMIC_RELAXED);
}

/* reader - the workers' stand-in */
static void *reader(void *arg)
{
	static const int stat_of[MOAT_ACT__MAX] = {
		MOAT_STAT_PASS, MOAT_STAT_TARPIT, MOAT_STAT_DROP, MOAT_STAT_ALLOW,
	};
	struct rte_rcu_qsbr *q = dp_table_qsbr(table);
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	(void)arg;
	rte_rcu_qsbr_thread_register(q, 0);
	while (!stop) {
		rte_rcu_qsbr_thread_online(q, 0);
		for (unsigned i = 0; i < nprobes; i++) {
			uint32_t a = dp_table_lookup(table, &probes[i]) & 3;
			struct moat_event e = { .ts_ns = moat_clock_ns(),
						.stat = (uint32_t)stat_of[a],
						.family = probes[i].family,
						.action = (uint8_t)a, .dport = 25 };

			__atomic_fetch_add(&counts[stat_of[a]], 1, __ATOMIC_RELAXED);
			if (a == MOAT_ACT_TARPIT || a == MOAT_ACT_DROP) {
				memcpy(e.saddr, probes[i].addr, 16);
				if (rte_ring_mp_enqueue_elem(ring, &e, sizeof(e)) != 0)
					__atomic_fetch_add(&counts[MOAT_STAT_EVENT_LOST], 1,
							   __ATOMIC_RELAXED);
			}
		}
		rte_rcu_qsbr_quiescent(q, 0);
		/* a sleeping worker is offline: publishes never wait for it */
		rte_rcu_qsbr_thread_offline(q, 0);
		nanosleep(&ts, NULL);
	}
	rte_rcu_qsbr_thread_unregister(q, 0);
	return NULL;
}

/* parse_probe - an address as a /32 or /128 moat_prefix */
static int parse_probe(const char *s, struct moat_prefix *p)
{
	memset(p, 0, sizeof(*p));
	if (inet_pton(AF_INET, s, p->addr) == 1) {
		p->family = MOAT_AF_INET;
		p->plen = 32;
		return 0;
	}
	if (inet_pton(AF_INET6, s, p->addr) == 1) {
		p->family = MOAT_AF_INET6;
		p->plen = 128;
		return 0;
	}
	return -EINVAL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "state", required_argument, NULL, 't' },
		{ "probe", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct dp_table_params tp = { .groups_max = 1u << 16, .v6_rules_max = 1u << 16,
				      .n_readers = 1, .socket_id = SOCKET_ID_ANY };
	struct dp_chan_params cp = { 0 };
	struct dp_chan *chan;
	pthread_t th;
	int n, o, r;

	log_init("dp_chan_host", 0);
	n = rte_eal_init(argc, argv);
	if (n < 0) {
		fprintf(stderr, "dp_chan_host: EAL init failed\n");
		return 1;
	}
	argc -= n;
	argv += n;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			cp.path = optarg;
			break;
		case 't':
			cp.state_path = optarg;
			break;
		case 'p':
			if (nprobes == MAX_PROBES || parse_probe(optarg, &probes[nprobes]) < 0) {
				fprintf(stderr, "dp_chan_host: bad probe %s\n", optarg);
				return 2;
			}
			nprobes++;
			break;
		default:
			return 2;
		}
	}
	if (!cp.path) {
		fprintf(stderr, "usage: dp_chan_host [EAL] -- --socket PATH [--state PATH] [--probe ADDR]...\n");
		return 2;
	}
	if ((r = dp_table_create(&tp, &table)) < 0) {
		log_err("table: %s", strerror(-r));
		return 1;
	}
	ring = rte_ring_create_elem("host_events", sizeof(struct moat_event), 4096,
				    SOCKET_ID_ANY, RING_F_SC_DEQ);
	if (!ring)
		return 1;
	cp.table = table;
	cp.read_stats = read_stats;
	cp.events = ring;
	if ((r = dp_chan_start(&cp, &chan)) < 0) {
		log_err("channel %s: %s", cp.path, strerror(-r));
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	log_info("event=ready socket=%s", cp.path);
	pthread_create(&th, NULL, reader, NULL);
	while (!stop && dp_chan_wait_loaded(chan, 100) < 0)
		;
	if (!stop)
		log_info("event=loaded");
	while (!stop) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	pthread_join(th, NULL);
	dp_chan_stop(chan);
	rte_ring_free(ring);
	dp_table_free(table);
	rte_eal_cleanup();
	log_info("event=stopped");
	return 0;
}
