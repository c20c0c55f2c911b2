/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * moat_dpdk.c - moat-dpdk, gate 1 on DPDK: owns the wire port (any PMD),
 * classifies every received burst on its worker lcores (dp_classify.c:
 * the XDP program's parser, lookup and verdict), frees refused SYNs,
 * answers tarpitted ones on the port they came from, and hands everything
 * else to the kernel through the exception path, a TAP port (net_tap)
 * carrying the wire port's MAC and the appliance's addresses; what the
 * kernel sends on the TAP goes out of the wire port.
 *
 *   moat-dpdk [EAL options] -- --config FILE
 *
 * Threads: the main lcore starts everything, waits for a signal, stops;
 * one worker per further lcore, each owning RX/TX queue pair i of both
 * ports; the publish channel's control thread (dp_chan.c) applies
 * moat-controld's updates to the table workers read (QSBR: a worker
 * reports a quiescent state after every burst and goes offline while it
 * sleeps).  An idle worker spins briefly with rte_pause(), then sleeps
 * for a time that doubles up to idle_sleep_us (the back-off of DPDK's
 * l3fwd-power), so an idle appliance leaves its cores to the daemons.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <rte_telemetry.h>

#include "dp_chan.h"
#include "dp_classify.h"
#include "dp_config.h"
#include "dp_table.h"
#include "log.h"
#include "zstate.h"

#define TAP_VDEV "net_tap_moat"
#define IDLE_SPIN 512             /* empty polls before the first sleep */
#define EVENTS_RING 4096

/* Per-worker state, on the worker's socket. */
struct worker {
	struct dp_lcore lc;       /* classifier state and XDP counters */
	struct dp_burst b[2];     /* the wire's bursts: one being decided, the
				   * next one parsed meanwhile */
	unsigned id;              /* queue pair and QSBR thread id */
	unsigned lcore;
	uint64_t rx, to_kernel, from_kernel, tx_reply; /* frames */
	uint64_t tx_fail;         /* frames a full TX queue refused (freed) */
	uint64_t sleeps;
} __rte_cache_aligned;

static struct {
	struct dp_config cfg;
	uint16_t wire, tap;
	unsigned nq;
	struct worker *w[RTE_MAX_LCORE];
	struct dp_table *table;
	struct rte_rcu_qsbr *qsbr;
	struct dp_shared sh;
	struct rte_mempool *pool;
	struct dp_chan *chan;
	uint64_t mono0, tsc0, ns_mult; /* clock: mono0 + (tsc - tsc0) * ns_mult >> 32 */
	int overlap;              /* worker_overlap, else worker_plain */
	volatile int stop;
} g;

/* now_ns - CLOCK_MONOTONIC from the TSC (the events' timestamps match
 * the XDP program's clock) */
static inline uint64_t now_ns(void)
{
	return g.mono0 + (uint64_t)(((unsigned __int128)(rte_rdtsc() - g.tsc0) * g.ns_mult) >> 32);
}

/* send_all - transmit n frames on queue q of port; free what the queue
 * refuses; returns how many were refused */
static inline uint16_t send_all(uint16_t port, uint16_t q, struct rte_mbuf **m, uint16_t n)
{
	uint16_t sent = n ? rte_eth_tx_burst(port, q, m, n) : 0;

	if (sent < n)
		rte_pktmbuf_free_bulk(&m[sent], n - sent);
	return (uint16_t)(n - sent);
}

/* free_frames - free n refused frames: the plain ones (one segment, a
 * reference of their own, no attached or external buffer, from g.pool:
 * what the wire port's RX hands out) straight back into the pool's
 * lcore cache in one call, as a PMD's MBUF_FAST_FREE does; any other
 * through rte_pktmbuf_free() */
static inline void free_frames(struct rte_mbuf **m, uint16_t n)
{
	struct rte_mbuf *plain[DP_BURST];
	uint16_t np = 0;

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *x = m[i];

		if (likely(x->pool == g.pool && x->nb_segs == 1 && RTE_MBUF_DIRECT(x) &&
			   rte_mbuf_refcnt_read(x) == 1))
			plain[np++] = x;
		else
			rte_pktmbuf_free(x);
	}
	if (np)
		rte_mempool_put_bulk(g.pool, (void **)plain, np);
}

/* wire_act - act on the verdicts of burst b (sorted by
 * dp_classify_decide): refused frames freed, tarpit replies out of the
 * wire port, the rest to the kernel */
static inline void wire_act(struct worker *w, struct dp_burst *b)
{
	uint16_t q = (uint16_t)w->id, nk = b->nout[DP_OUT_KERNEL], nr = b->nout[DP_OUT_WIRE];

	w->rx += b->n;
	w->to_kernel += nk;
	w->tx_reply += nr;
	if (b->nout[DP_OUT_FREE])
		free_frames(b->out[DP_OUT_FREE], b->nout[DP_OUT_FREE]);
	w->tx_fail += send_all(g.tap, q, b->out[DP_OUT_KERNEL], nk);
	w->tx_fail += send_all(g.wire, q, b->out[DP_OUT_WIRE], nr);
	b->n = 0;
}

/* wire_finish - the tail of burst b's classification and its verdicts
 * carried out (b parsed already) */
static inline void wire_finish(struct worker *w, const struct dp_table_view *v,
			       struct dp_burst *b)
{
	dp_classify_lookup(v, b);
	dp_classify_decide(&w->lc, v, b, 0);
	wire_act(w, b);
}

/* worker idle state: empty polls and the current sleep */
struct idle {
	unsigned polls, sleep_us, loops;
};

/* worker_tail - the end of one round of a worker that received n frames
 * from the wire: the TAP polled (its RX is a read() per poll: while the
 * wire fills whole bursts, every 8th round is often enough), a quiescent
 * state reported, and when both were empty the back-off: spin IDLE_SPIN
 * polls, then sleep 1, 2, 4 ... idle_sleep_us µs, offline for QSBR so a
 * publish never waits for a sleeper (the caller has nothing pending) */
static inline void worker_tail(struct worker *w, uint16_t n, struct idle *id)
{
	struct rte_mbuf *rx[DP_BURST];
	uint16_t q = (uint16_t)w->id, k = 0;

	if (n < DP_BURST || (++id->loops & 7) == 0)
		k = rte_eth_rx_burst(g.tap, q, rx, DP_BURST);
	if (k) {
		w->from_kernel += k;
		w->tx_fail += send_all(g.wire, q, rx, k);
	}
	rte_rcu_qsbr_quiescent(g.qsbr, w->id);
	if (n || k) {
		id->polls = 0;
		id->sleep_us = 0;
		return;
	}
	if (++id->polls < IDLE_SPIN || !g.cfg.idle_sleep_us) {
		rte_pause();
		return;
	}
	id->sleep_us = id->sleep_us ? id->sleep_us * 2 : 1;
	if (id->sleep_us > g.cfg.idle_sleep_us)
		id->sleep_us = g.cfg.idle_sleep_us;
	rte_rcu_qsbr_thread_offline(g.qsbr, w->id);
	rte_delay_us_sleep(id->sleep_us);
	rte_rcu_qsbr_thread_online(g.qsbr, w->id);
	w->sleeps++;
}

/* worker_plain - the wire's bursts one at a time: receive, classify
 * (parse, lookup, decide), act */
static void worker_plain(struct worker *w, const struct dp_table_view *v)
{
	struct dp_burst *b = &w->b[0];
	struct idle id = { 0 };

	while (!g.stop) {
		uint16_t n = b->n = rte_eth_rx_burst(g.wire, (uint16_t)w->id, b->m, DP_BURST);

		if (n) {
			dp_classify_parse(v, b);
			wire_finish(w, v, b);
		}
		worker_tail(w, n, &id);
	}
}

/* worker_overlap - the wire's bursts overlapped by one pass: a burst is
 * parsed (its tbl24 lines prefetched) in one round; in the next its
 * entries are read and its groups prefetched, the new burst is parsed
 * while those arrive, and then it is decided.  The table's two dependent
 * reads per frame then wait behind a burst's worth of work each, not on
 * memory; the cost is one more poll of latency (an empty poll decides the
 * pending burst at once).  A burst's lookup and decision sit between the
 * same two quiescent states (dp_classify.h). */
static void worker_overlap(struct worker *w, const struct dp_table_view *v)
{
	struct dp_burst *cur = &w->b[0], *next = &w->b[1], *t;
	struct idle id = { 0 };

	while (!g.stop) {
		uint16_t n;

		if (cur->n)
			dp_classify_lookup(v, cur);
		n = next->n = rte_eth_rx_burst(g.wire, (uint16_t)w->id, next->m, DP_BURST);
		if (n)
			dp_classify_parse(v, next);
		if (cur->n) {
			dp_classify_decide(&w->lc, v, cur, 0);
			wire_act(w, cur);
		}
		t = cur;
		cur = next;
		next = t;
		worker_tail(w, n, &id);
	}
	/* the burst parsed last */
	if (cur->n)
		wire_finish(w, v, cur);
}

/* worker_main - one worker lcore: wire RX -> classify, TAP RX -> wire,
 * in the loop g.overlap picks */
static int worker_main(void *arg)
{
	struct worker *w = arg;
	const struct dp_table_view *v = dp_table_view(g.table);

	w->b[0].n = 0;
	w->b[1].n = 0;
	rte_rcu_qsbr_thread_register(g.qsbr, w->id);
	rte_rcu_qsbr_thread_online(g.qsbr, w->id);
	if (g.overlap)
		worker_overlap(w, v);
	else
		worker_plain(w, v);
	rte_rcu_qsbr_thread_offline(g.qsbr, w->id);
	rte_rcu_qsbr_thread_unregister(g.qsbr, w->id);
	return 0;
}

/* stats_sum - every counter of the XDP path summed over workers (the
 * channel's read_stats) */
static void stats_sum(void *ud, uint64_t out[MOAT_STAT__MAX])
{
	(void)ud;
	memset(out, 0, MOAT_STAT__MAX * sizeof(out[0]));
	for (unsigned i = 0; i < g.nq; i++)
		if (g.w[i])
			dp_stats_add(&g.w[i]->lc, out);
}

/* tel_stats - /moat/stats: the XDP counters summed over workers;
 * /moat/stats,N: worker N's alone */
static int tel_stats(const char *cmd, const char *params, struct rte_tel_data *d)
{
	static const char *const names[] = MOAT_STAT_NAMES;
	uint64_t c[MOAT_STAT__MAX] = { 0 };

	(void)cmd;
	if (params && *params) {
		char *end;
		unsigned long i = strtoul(params, &end, 10);

		if (*end || i >= g.nq || !g.w[i])
			return -EINVAL;
		dp_stats_add(&g.w[i]->lc, c);
	} else {
		stats_sum(NULL, c);
	}
	rte_tel_data_start_dict(d);
	for (int s = 0; s < MOAT_STAT__MAX; s++)
		rte_tel_data_add_dict_u64(d, names[s], c[s]);
	return 0;
}

/* tel_workers - /moat/workers: frames moved per worker (not XDP counters:
 * the exception path's own) */
static int tel_workers(const char *cmd, const char *params, struct rte_tel_data *d)
{
	uint64_t rx = 0, tk = 0, fk = 0, tr = 0, tf = 0, sl = 0;

	(void)cmd;
	(void)params;
	for (unsigned i = 0; i < g.nq; i++) {
		rx += g.w[i]->rx;
		tk += g.w[i]->to_kernel;
		fk += g.w[i]->from_kernel;
		tr += g.w[i]->tx_reply;
		tf += g.w[i]->tx_fail;
		sl += g.w[i]->sleeps;
	}
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "workers", g.nq);
	rte_tel_data_add_dict_u64(d, "rx", rx);
	rte_tel_data_add_dict_u64(d, "to_kernel", tk);
	rte_tel_data_add_dict_u64(d, "from_kernel", fk);
	rte_tel_data_add_dict_u64(d, "tx_reply", tr);
	rte_tel_data_add_dict_u64(d, "tx_fail", tf);
	rte_tel_data_add_dict_u64(d, "idle_sleeps", sl);
	return 0;
}

/* tel_channel - /moat/channel: the publish channel's counters */
static int tel_channel(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct dp_chan_counters n;

	(void)cmd;
	(void)params;
	if (!g.chan)
		return -ENOENT;
	dp_chan_counters(g.chan, &n);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "clients", n.clients);
	rte_tel_data_add_dict_u64(d, "busy", n.busy);
	rte_tel_data_add_dict_u64(d, "requests", n.requests);
	rte_tel_data_add_dict_u64(d, "bad_requests", n.bad_requests);
	rte_tel_data_add_dict_u64(d, "publishes", n.publishes);
	rte_tel_data_add_dict_u64(d, "publish_errors", n.publish_errors);
	rte_tel_data_add_dict_u64(d, "updates", n.updates);
	rte_tel_data_add_dict_u64(d, "commits", n.commits);
	rte_tel_data_add_dict_u64(d, "events_sent", n.events_sent);
	rte_tel_data_add_dict_u64(d, "events_dropped", n.events_dropped);
	rte_tel_data_add_dict_u64(d, "saves", n.saves);
	rte_tel_data_add_dict_u64(d, "save_errors", n.save_errors);
	rte_tel_data_add_dict_u64(d, "restored", n.restored);
	return 0;
}

/* isn_key - the tarpit's SipHash key from STATE_DIR/isn.key, written by
 * moat-controld (control/persist.c: a 16-byte header, the key, a
 * checksum), so XDP and DPDK answer a SYN with the same ISN; absent or
 * damaged: a random key for this run, said once */
static void isn_key(const char *dir, __u64 key[2])
{
	struct { uint64_t magic; uint32_t version, pad; } h;
	char path[512];
	void *data = NULL;
	size_t len = 0;
	int r;

	snprintf(path, sizeof(path), "%s/isn.key", dir);
	r = zstate_read_file(path, &data, &len, NULL);
	if (r == 0 && len == sizeof(h) + 16) {
		memcpy(&h, data, sizeof(h));
		memcpy(key, (char *)data + sizeof(h), 16);
		free(data);
		if (h.magic == 0x3159454b4e5349ULL && h.version == 1 && (key[0] | key[1])) {
			log_info("event=isn_key path=%s source=state", path);
			return;
		}
		r = -EBADMSG;
	} else if (r == 0) {
		free(data);
		r = -EBADMSG;
	}
	while (getrandom(key, 16, 0) != 16 || !(key[0] | key[1]))
		;
	log_warn("event=isn_key path=%s error=\"%s\" (a random key for this run: tarpit "
		 "ISNs differ from moat-controld's XDP path)", path, strerror(-r));
}

/* refuse - the one line saying why moat-dpdk does not start; exit 1 */
static void refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void refuse(const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_err("event=refused reason=\"%s\"", msg);
	exit(1);
}

/* port_setup - configure nq queue pairs of port (with rss: RSS when the
 * PMD has it), start it.  Returns 0 or -errno (what failed in what). */
static int port_setup(uint16_t port, unsigned nq, int rss, const char *what, char *why,
		      size_t whysz)
{
	struct rte_eth_conf conf = { 0 };
	struct rte_eth_dev_info info;
	uint16_t rxd = (uint16_t)g.cfg.rx_desc, txd = (uint16_t)g.cfg.tx_desc;
	int sock = rte_eth_dev_socket_id(port), r;

	if (sock < 0)
		sock = (int)rte_socket_id();
	r = rte_eth_dev_info_get(port, &info);
	if (r)
		goto fail_info;
	if (nq > info.max_rx_queues || nq > info.max_tx_queues) {
		snprintf(why, whysz, "%s has %u RX / %u TX queues, %u workers need as many",
			 what, info.max_rx_queues, info.max_tx_queues, nq);
		return -EINVAL;
	}
	if (rss && nq > 1 && info.flow_type_rss_offloads) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP) &
						   info.flow_type_rss_offloads;
	}
	r = rte_eth_dev_configure(port, (uint16_t)nq, (uint16_t)nq, &conf);
	if (r == 0)
		r = rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd);
	for (unsigned q = 0; r == 0 && q < nq; q++) {
		r = rte_eth_rx_queue_setup(port, (uint16_t)q, rxd, (unsigned)sock, NULL, g.pool);
		if (r == 0)
			r = rte_eth_tx_queue_setup(port, (uint16_t)q, txd, (unsigned)sock, NULL);
	}
	if (r == 0)
		r = rte_eth_dev_start(port);
	if (r) {
		snprintf(why, whysz, "%s does not start: %s", what, strerror(-r));
		return r;
	}
	return 0;
fail_info:
	snprintf(why, whysz, "%s: no device info: %s", what, strerror(-r));
	return r;
}

/* tap_create - the exception path: a net_tap port named cfg.exception
 * with the wire port's MAC (the kernel then takes the frames addressed
 * to the wire port as its own, and answers from that MAC) */
static void tap_create(void)
{
	struct rte_ether_addr mac;
	char args[128];
	int r;

	if (g.cfg.exception_port[0]) {
		/* an EAL port instead (net_null in benchmarks, a second NIC) */
		if (rte_eth_dev_get_port_by_name(g.cfg.exception_port, &g.tap))
			refuse("exception_port %s not found", g.cfg.exception_port);
		if (g.tap == g.wire)
			refuse("exception_port %s is the wire port", g.cfg.exception_port);
		snprintf(g.cfg.exception, sizeof(g.cfg.exception), "%.15s", g.cfg.exception_port);
		return;
	}
	r = rte_eth_macaddr_get(g.wire, &mac);
	if (r)
		refuse("port %s has no MAC address: %s", g.cfg.port, strerror(-r));
	snprintf(args, sizeof(args), "iface=%s,mac=" RTE_ETHER_ADDR_PRT_FMT, g.cfg.exception,
		 RTE_ETHER_ADDR_BYTES(&mac));
	r = rte_eal_hotplug_add("vdev", TAP_VDEV, args);
	if (r)
		refuse("exception path %s (net_tap %s) cannot be created: %s", g.cfg.exception,
		       args, strerror(r < 0 ? -r : r));
	if (rte_eth_dev_get_port_by_name(TAP_VDEV, &g.tap))
		refuse("exception path %s: net_tap port not found", g.cfg.exception);
}

/* give - chown path to the user moat-dpdk becomes, so it can still use
 * it after the drop; a failure is said, not fatal (the drop still runs) */
static void give(const char *what, const char *path, const struct passwd *pw)
{
	if (path && path[0] && chown(path, pw->pw_uid, pw->pw_gid) < 0)
		log_warn("event=privileges %s=%s error=\"chown: %s\"", what, path, strerror(errno));
}

/* drop_privileges - once the ports, the TAP, the table and the channel
 * are up: become cfg.user with no capability at all (every thread: glibc
 * applies setresuid to all of them, and leaving uid 0 clears their
 * capability sets).  Forwarding, the channel, telemetry and the state
 * file need only descriptors and memory already held; the channel's
 * socket and the state directory are handed to the user first, so
 * moat-controld (same user or group) can connect and the table is saved.
 * (EAL's runtime directory stays root's: EAL leaves it at exit anyway, the
 * unit that starts moat-dpdk removes it.)  Refuses the start when the
 * user is unknown, is root, or the drop does not stick. */
static void drop_privileges(void)
{
	struct passwd *pw;

	if (!g.cfg.user[0])
		return;
	pw = getpwnam(g.cfg.user);
	if (!pw)
		refuse("user %s: no such user", g.cfg.user);
	if (pw->pw_uid == 0)
		refuse("user %s is root: give an unprivileged user", g.cfg.user);
	give("socket", g.cfg.socket, pw);
	give("state_dir", g.cfg.state_dir, pw);
	if (setgroups(0, NULL) || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid))
		refuse("cannot become %s: %s", g.cfg.user, strerror(errno));
	if (setuid(0) == 0)
		refuse("the privilege drop to %s did not stick", g.cfg.user);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	log_info("event=privileges user=%s uid=%u gid=%u caps=none", g.cfg.user,
		 (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: moat-dpdk [EAL options] -- --config FILE\n"
		   "  EAL options: -l CORES (main + one worker per queue pair), -m MB or\n"
		   "  --socket-mem, --no-huge, -a PCI or --vdev net_af_packet0,iface=...\n"
		   "  See moat-dpdk(8) and docs/dpdk.md.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf_path = NULL;
	char err[DP_CFG_ERRLEN], why[256], state_path[300];
	struct dp_table_params tp = { 0 };
	struct dp_chan_params cp = { 0 };
	struct dp_src_slot *src;
	struct timespec ts;
	enum log_level lvl;
	sigset_t sigs;
	unsigned lcore, i, nmbuf;
	__u64 key[2];
	int r, sig, o;

	log_init("moat-dpdk", 0);
	/* every thread EAL starts inherits the mask: the main thread alone
	 * takes SIGINT/SIGTERM, with sigwait */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	r = rte_eal_init(argc, argv);
	if (r < 0)
		refuse("EAL does not start: %s (see its lines above; memory: -m or "
		       "--socket-mem, --no-huge without hugepages; --file-prefix: one "
		       "per running instance)", rte_errno ? rte_strerror(rte_errno) :
		       "bad arguments or state");
	argc -= r;
	argv += r;
	optind = 1;
	while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			conf_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!conf_path || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (dp_config_load(conf_path, &g.cfg, err))
		refuse("%s", err);
	if (log_parse_level(g.cfg.log_level, &lvl) == 0)
		log_set_level(lvl);

	/* the wire port and the workers */
	if (rte_eth_dev_get_port_by_name(g.cfg.port, &g.wire)) {
		char names[300] = "";
		uint16_t pid;

		RTE_ETH_FOREACH_DEV(pid) {
			char n[RTE_ETH_NAME_MAX_LEN];

			if (rte_eth_dev_get_name_by_port(pid, n) == 0 &&
			    strlen(names) + strlen(n) + 2 < sizeof(names))
				snprintf(names + strlen(names), sizeof(names) - strlen(names),
					 "%s%s", names[0] ? " " : "", n);
		}
		refuse("port %s not found (EAL has: %s)", g.cfg.port, names[0] ? names : "none");
	}
	g.nq = rte_lcore_count() - 1;
	if (g.nq == 0)
		refuse("no worker lcore: give EAL at least two (-l 0-1: the main lcore, and one "
		       "worker per queue pair)");
	nmbuf = g.nq * (2 * g.cfg.rx_desc + 2 * g.cfg.tx_desc + 4 * DP_BURST) + 1024;
	if (g.cfg.mbufs)
		nmbuf = g.cfg.mbufs;
	g.pool = rte_pktmbuf_pool_create("moat_mbufs", nmbuf, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					 (int)rte_socket_id());
	if (!g.pool)
		refuse("no memory for %u mbufs (%s): give EAL more (-m, --socket-mem, "
		       "hugepages)", nmbuf, rte_strerror(rte_errno));
	tap_create();
	/* RSS spreads the wire's flows over the workers; the kernel picks
	 * the TAP's queue itself */
	if (port_setup(g.wire, g.nq, 1, g.cfg.port, why, sizeof(why)) ||
	    port_setup(g.tap, g.nq, 0, g.cfg.exception, why, sizeof(why)))
		refuse("%s", why);
	rte_eth_allmulticast_enable(g.wire);   /* IPv6 ND to the kernel */

	/* the table, the classifier's shared state, the channel */
	tp.groups_max = g.cfg.groups_max;
	tp.v6_rules_max = g.cfg.v6_max;
	tp.n_readers = g.nq;
	tp.socket_id = (int)rte_socket_id();
	r = dp_table_create(&tp, &g.table);
	if (r)
		refuse("no memory for the table (%u groups, %u IPv6 rules: %s): give EAL "
		       "more (-m, --socket-mem) or lower groups_max", tp.groups_max,
		       tp.v6_rules_max, strerror(-r));
	g.qsbr = dp_table_qsbr(g.table);
	isn_key(g.cfg.state_dir, key);
	src = rte_zmalloc("moat_rl_src", MOAT_XDP_DEF_RL_SRC_MAX * sizeof(*src), 64);
	g.sh.events = rte_ring_create_elem("moat_events", sizeof(struct moat_event), EVENTS_RING,
					   (int)rte_socket_id(), RING_F_SC_DEQ);
	if (!src || !g.sh.events)
		refuse("no memory for the tarpit limiter and the event ring");
	if (dp_shared_init(&g.sh, g.cfg.ports, g.cfg.n_ports, g.cfg.event_sample, key, src,
			   MOAT_XDP_DEF_RL_SRC_MAX))
		refuse("bad classifier configuration");
	dp_set_tarpit_budget(g.cfg.tarpit_src_pps, g.cfg.tarpit_src_burst);
	dp_set_tarpit_global_budget(g.cfg.tarpit_global_pps, g.cfg.tarpit_global_burst);
	for (i = 0; i < g.nq; i++) {
		g.w[i] = rte_zmalloc("moat_worker", sizeof(struct worker), 64);
		if (!g.w[i])
			refuse("no memory for worker state");
		g.w[i]->id = i;
		g.w[i]->lc.sh = &g.sh;
		g.w[i]->lc.ifindex = g.wire;
		g.w[i]->lc.clock = now_ns;
	}
	rte_telemetry_register_cmd("/moat/stats", tel_stats,
				   "gate 1's counters (moat_abi.h names), summed; ,N: worker N's");
	rte_telemetry_register_cmd("/moat/workers", tel_workers,
				   "frames moved by the workers and the exception path");
	rte_telemetry_register_cmd("/moat/channel", tel_channel,
				   "the publish channel's counters");
	/* the last table moat-dpdk had, restored before the port forwards */
	snprintf(state_path, sizeof(state_path), "%s/dpdk-table.state", g.cfg.state_dir);
	cp.path = g.cfg.socket;
	cp.table = g.table;
	cp.read_stats = stats_sum;
	cp.events = g.sh.events;
	cp.state_path = state_path;
	r = dp_chan_start(&cp, &g.chan);
	if (r)
		refuse("publish channel %s: %s", g.cfg.socket, strerror(-r));
	drop_privileges();

	/* the clock, then the table before the port forwards */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	g.tsc0 = rte_rdtsc();
	g.mono0 = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	g.ns_mult = (uint64_t)(((unsigned __int128)1000000000ull << 32) / rte_get_tsc_hz());
	log_info("event=waiting socket=%s load_wait=%u", g.cfg.socket, g.cfg.load_wait);
	r = dp_chan_wait_loaded(g.chan, g.cfg.load_wait ? (int)g.cfg.load_wait * 1000 : -1);
	if (r)
		log_warn("event=no_table after=%us (forwarding with an empty table: every "
			 "source passes until moat-controld publishes)", g.cfg.load_wait);
	/* the worker loop: plain (at 1k entries it forwarded 2-4% more than
	 * the overlapped one in tools/bench dpdk A/Bs, and 10M still met its
	 * target); MOAT_DPDK_OVERLAP=1 for the overlapped one (measurements) */
	g.overlap = getenv("MOAT_DPDK_OVERLAP") ? atoi(getenv("MOAT_DPDK_OVERLAP")) != 0 : 0;
	i = 0;
	RTE_LCORE_FOREACH_WORKER(lcore) {
		g.w[i]->lcore = lcore;
		rte_eal_remote_launch(worker_main, g.w[i], lcore);
		i++;
	}
	log_info("event=started port=%s exception=%s workers=%u ports=%u idle_sleep_us=%u "
		 "overlap=%d", g.cfg.port, g.cfg.exception, g.nq, g.cfg.n_ports,
		 g.cfg.idle_sleep_us, g.overlap);

	/* until a signal: then stop RX, let the workers finish their
	 * burst, release the ports */
	do
		r = sigwait(&sigs, &sig);
	while (r);
	log_info("event=stopping signal=%s", sig == SIGINT ? "INT" : "TERM");
	g.stop = 1;
	rte_eal_mp_wait_lcore();
	for (i = 0; i < g.nq; i++) {
		rte_eth_tx_done_cleanup(g.wire, (uint16_t)i, 0);
		rte_eth_tx_done_cleanup(g.tap, (uint16_t)i, 0);
	}
	dp_chan_stop(g.chan);
	g.chan = NULL;
	rte_eth_dev_stop(g.wire);
	rte_eth_dev_stop(g.tap);
	rte_eth_dev_close(g.tap);
	rte_eth_dev_close(g.wire);
	{
		uint64_t c[MOAT_STAT__MAX];

		stats_sum(NULL, c);
		log_info("event=stopped pass=%" PRIu64 " tarpit=%" PRIu64 " drop=%" PRIu64,
			 c[MOAT_STAT_PASS], c[MOAT_STAT_TARPIT], c[MOAT_STAT_DROP]);
	}
	dp_table_free(g.table);
	rte_eal_cleanup();
	return 0;
}
