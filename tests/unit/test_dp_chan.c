/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_dp_chan.c - moat-dpdk's publish channel (dataplane/dpdk/dp_chan.c)
 * serving a real dp_table in a real EAL, driven by moat-controld's DPDK
 * backend (fp_dpdk.c, lib/fastpath.h) over a real unix socket: publish,
 * commit -> loaded, read_image, lookup, stats, events; malformed and
 * oversized requests get an error reply and a counter while the good
 * client goes on; a second controld is refused; moat-dpdk going away gives
 * -ENOTCONN (reported once by events_drain) and publishes are refused
 * until a read_image on the new instance, which restored the table from
 * its state file; a corrupt state file leaves the table empty.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include <rte_eal.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <rte_rcu_qsbr.h>
#include <pthread.h>

#include "clock.h"
#include "dp_chan.h"
#include "dp_proto.h"
#include "dp_test_eal.h"
#include "dp_table.h"
#include "fastpath.h"
#include "vtable.h"
#include "dp_lookup.h"

static char dir[64], sock[128], state[128];

struct srv {
	struct dp_table *t;
	struct dp_chan *c;
	struct rte_ring *ring;
};

/* fake_stats - what moat-dpdk's workers would have counted */
static void fake_stats(void *ud, uint64_t out[MOAT_STAT__MAX])
{
	(void)ud;
	for (int i = 0; i < MOAT_STAT__MAX; i++)
		out[i] = 1000 + (uint64_t)i;
}

static void srv_start(struct srv *s, int with_state)
{
	struct dp_table_params tp = { .groups_max = 1024, .v6_rules_max = 256,
				      .n_readers = 1, .socket_id = SOCKET_ID_ANY };
	static int seq;
	char name[32];
	struct dp_chan_params cp = { 0 };

	memset(s, 0, sizeof(*s));
	assert_int_equal(dp_table_create(&tp, &s->t), 0);
	snprintf(name, sizeof(name), "test_ev%d", seq++);
	s->ring = rte_ring_create_elem(name, sizeof(struct moat_event), 1024,
				       SOCKET_ID_ANY, RING_F_SC_DEQ);
	assert_non_null(s->ring);
	cp.path = sock;
	cp.table = s->t;
	cp.read_stats = fake_stats;
	cp.events = s->ring;
	cp.state_path = with_state ? state : NULL;
	cp.save_ms = 1;
	assert_int_equal(dp_chan_start(&cp, &s->c), 0);
}

static void srv_stop(struct srv *s)
{
	dp_chan_stop(s->c);
	rte_ring_free(s->ring);
	dp_table_free(s->t);
}

/* some_updates - a group, the /24 using it, a uniform /24, a v6 rule */
static size_t some_updates(struct moat_update *u, uint32_t act)
{
	memset(u, 0, 4 * sizeof(*u));
	u[0].kind = MOAT_UPD_GROUP;
	u[0].index = 7;
	moat_group_set(&u[0].u.group, 9, act);
	u[1].kind = MOAT_UPD_TBL24;
	u[1].index = (192u << 16) | (0u << 8) | 2;     /* 192.0.2.0/24 */
	u[1].value = moat_tbl24_make_group(7);
	u[2].kind = MOAT_UPD_V6_PLENS;
	u[2].u.plens.n = 1;
	u[2].u.plens.len[0] = 48;
	u[3].kind = MOAT_UPD_V6_PUT;
	u[3].u.key.plen = 48;
	u[3].u.key.addr[0] = 0x20;
	u[3].u.key.addr[1] = 0x01;
	u[3].u.key.addr[2] = 0x0d;
	u[3].u.key.addr[3] = 0xb8;
	u[3].value = act;
	return 4;
}

static struct moat_prefix P4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	struct moat_prefix p = { .family = MOAT_AF_INET, .plen = 32 };

	p.addr[0] = a;
	p.addr[1] = b;
	p.addr[2] = c;
	p.addr[3] = d;
	return p;
}

static struct moat_prefix P6(void)
{
	struct moat_prefix p = { .family = MOAT_AF_INET6, .plen = 128 };

	p.addr[0] = 0x20;
	p.addr[1] = 0x01;
	p.addr[2] = 0x0d;
	p.addr[3] = 0xb8;
	p.addr[15] = 1;
	return p;
}

static void open_fp(struct moat_fastpath *fp)
{
	struct moat_fastpath_config c = { 0 };
	char err[256] = "";

	c.pin_dir = sock;
	assert_int_equal(moat_fastpath_dpdk.open(&c, fp, err, sizeof(err)), 0);
	assert_string_equal(fp->name, "dpdk");
}

static void count_event(void *ud, const struct moat_event *e)
{
	int *n = ud;

	assert_int_equal(e->stat, MOAT_STAT_DROP);
	(*n)++;
}

/* wait_readable - poll an fd up to ms */
static int wait_readable(int fd, int ms)
{
	struct pollfd pf = { fd, POLLIN, 0 };

	return poll(&pf, 1, ms) == 1;
}

/* raw_conn - a bare client socket: connected, or -1 */
static int raw_conn(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	strcpy(sa.sun_path, sock);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* raw_req - send len bytes, return the reply's err (or 1: no reply) */
static int raw_req(int fd, const void *buf, size_t len)
{
	struct dp_msg r;

	assert_int_equal(send(fd, buf, len, 0), (ssize_t)len);
	if (!wait_readable(fd, 3000) || recv(fd, &r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return 1;
	assert_int_equal(r.type, DP_MSG_REPLY);
	return r.err;
}

/* test_publish_lookup - the whole round trip, events and stats */
static void test_publish_lookup(void **st)
{
	struct moat_update u[4], *img = NULL;
	struct moat_fastpath fp;
	struct moat_prefix p;
	uint64_t stats[MOAT_STAT__MAX];
	struct srv s;
	uint32_t act = 99;
	size_t n;
	int got = 0;

	(void)st;
	srv_start(&s, 0);
	/* the socket is not world-writable */
	{
		struct stat sb;

		assert_int_equal(stat(sock, &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0660);
	}
	open_fp(&fp);
	assert_int_equal(dp_chan_wait_loaded(s.c, 50), -ETIMEDOUT);
	/* a client must read the image before it may publish */
	assert_int_equal(fp.publish(fp.ctx, u, some_updates(u, MOAT_ACT_DROP)), -ENOTCONN);
	assert_int_equal(fp.read_image(fp.ctx, &img, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(fp.publish(fp.ctx, u, some_updates(u, MOAT_ACT_DROP)), 0);
	/* not loaded before the commit: a half version must not forward */
	assert_int_equal(dp_chan_wait_loaded(s.c, 50), -ETIMEDOUT);
	assert_int_equal(fp.publish_done(fp.ctx), 0);
	assert_int_equal(dp_chan_wait_loaded(s.c, 1000), 0);
	p = P4(192, 0, 2, 9);
	assert_int_equal(fp.lookup(fp.ctx, &p, &act), 0);
	assert_int_equal(act, MOAT_ACT_DROP);
	p = P4(192, 0, 2, 10);
	assert_int_equal(fp.lookup(fp.ctx, &p, &act), 0);
	assert_int_equal(act, MOAT_ACT_PASS);
	p = P6();
	assert_int_equal(fp.lookup(fp.ctx, &p, &act), 0);
	assert_int_equal(act, MOAT_ACT_DROP);
	assert_int_equal(fp.read_image(fp.ctx, &img, &n), 0);
	assert_int_equal(n, 4);
	free(img);
	assert_int_equal(fp.read_stats(fp.ctx, stats), 0);
	assert_int_equal(stats[MOAT_STAT_DROP], 1000 + MOAT_STAT_DROP);
	/* events: 700 enqueued by "workers", all delivered */
	for (int i = 0; i < 700; i++) {
		struct moat_event e = { .stat = MOAT_STAT_DROP, .family = 4 };

		assert_int_equal(rte_ring_mp_enqueue_elem(s.ring, &e, sizeof(e)), 0);
	}
	while (got < 700 && wait_readable(fp.events_fd(fp.ctx), 2000))
		assert_true(fp.events_drain(fp.ctx, count_event, &got) >= 0);
	assert_int_equal(got, 700);
	fp.close(fp.ctx);
	srv_stop(&s);
}

/* test_bad_requests - malformed input: error reply, counter, and the
 * channel goes on serving */
static void test_bad_requests(void **st)
{
	struct dp_chan_counters cn;
	struct moat_fastpath fp, fp2;
	struct moat_update *img = NULL, u[4];
	struct dp_msg m = { DP_PROTO_MAGIC, DP_PROTO_VERSION, DP_MSG_HELLO,
			    sizeof(m), 0, DP_ROLE_COMMAND, 0, 0 };
	size_t big = DP_PROTO_MAX_MSG + 4096, n;
	uint8_t *buf = calloc(1, big);
	struct moat_prefix p = P4(192, 0, 2, 9);
	uint32_t act;
	struct srv s;
	char err[256];
	int fd;

	(void)st;
	assert_non_null(buf);
	srv_start(&s, 0);
	open_fp(&fp);
	assert_int_equal(fp.read_image(fp.ctx, &img, &n), 0);
	/* a second moat-controld: refused, the first keeps its role */
	fd = raw_conn();
	assert_int_equal(raw_req(fd, &m, sizeof(m)), -EBUSY);
	close(fd);
	{
		struct moat_fastpath_config c = { .pin_dir = sock };

		assert_int_equal(moat_fastpath_dpdk.open(&c, &fp2, err, sizeof(err)), 0);
		assert_int_equal(fp2.read_image(fp2.ctx, &img, &n), -EBUSY);
		fp2.close(fp2.ctx);
	}
	/* bad hello: bad magic, then a non-hello first message */
	fd = raw_conn();
	memcpy(buf, &m, sizeof(m));
	((struct dp_msg *)buf)->magic = 0xdeadbeef;
	assert_int_equal(raw_req(fd, buf, sizeof(m)), -EPROTO);
	close(fd);
	fd = raw_conn();
	((struct dp_msg *)buf)->magic = DP_PROTO_MAGIC;
	((struct dp_msg *)buf)->type = DP_MSG_LOOKUP;
	assert_int_equal(raw_req(fd, buf, sizeof(m)), -EBADMSG);
	close(fd);
	dp_chan_counters(s.c, &cn);
	assert_true(cn.bad_requests >= 2);
	assert_true(cn.busy >= 2);
	/* the good client still publishes and looks up */
	assert_int_equal(fp.publish(fp.ctx, u, some_updates(u, MOAT_ACT_TARPIT)), 0);
	assert_int_equal(fp.lookup(fp.ctx, &p, &act), 0);
	assert_int_equal(act, MOAT_ACT_TARPIT);
	fp.close(fp.ctx);
	/* on a command connection: oversized, bad count, unknown type,
	 * a publish with a bad update: each an error reply, never a crash */
	fd = raw_conn();
	m.flags = DP_ROLE_COMMAND;
	for (int tries = 0; tries < 50 && raw_req(fd, &m, sizeof(m)) == -EBUSY; tries++) {
		close(fd);
		usleep(20000);
		fd = raw_conn();
	}
	{
		struct dp_msg *h = (struct dp_msg *)buf;
		int sndbuf = (int)big * 2;

		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		*h = (struct dp_msg){ DP_PROTO_MAGIC, DP_PROTO_VERSION, DP_MSG_PUBLISH,
				      (uint32_t)big, (uint32_t)((big - sizeof(*h)) / 80), 0, 0, 0 };
		assert_int_equal(raw_req(fd, buf, big), -EMSGSIZE);
		*h = (struct dp_msg){ DP_PROTO_MAGIC, DP_PROTO_VERSION, DP_MSG_PUBLISH,
				      sizeof(*h) + 80, 2, 0, 0, 0 };
		assert_int_equal(raw_req(fd, buf, sizeof(*h) + 80), -EBADMSG);
		*h = (struct dp_msg){ DP_PROTO_MAGIC, DP_PROTO_VERSION, 77, sizeof(*h), 0, 0, 0, 0 };
		assert_int_equal(raw_req(fd, buf, sizeof(*h)), -EBADMSG);
		*h = (struct dp_msg){ DP_PROTO_MAGIC, DP_PROTO_VERSION, DP_MSG_EVENTS, sizeof(*h), 0, 0, 0, 0 };
		assert_int_equal(raw_req(fd, buf, sizeof(*h)), -EBADMSG);
		assert_int_equal(raw_req(fd, buf, 7), -EPROTO);
		*h = (struct dp_msg){ DP_PROTO_MAGIC, DP_PROTO_VERSION, DP_MSG_PUBLISH,
				      sizeof(*h) + 80, 1, 0, 0, 0 };
		memset(buf + sizeof(*h), 0, 80);
		((struct moat_update *)(buf + sizeof(*h)))->kind = MOAT_UPD_TBL24;
		((struct moat_update *)(buf + sizeof(*h)))->index = MOAT_TBL24_ENTRIES;
		assert_int_equal(raw_req(fd, buf, sizeof(*h) + 80), -ERANGE);
		/* positive control on the same connection: a good lookup */
		*h = (struct dp_msg){ DP_PROTO_MAGIC, DP_PROTO_VERSION, DP_MSG_LOOKUP,
				      sizeof(*h) + sizeof(p), 1, 0, 0, 0 };
		memcpy(buf + sizeof(*h), &p, sizeof(p));
		assert_int_equal(raw_req(fd, buf, sizeof(*h) + sizeof(p)), 0);
	}
	close(fd);
	dp_chan_counters(s.c, &cn);
	assert_true(cn.bad_requests >= 7);
	assert_int_equal(cn.publish_errors, 1);
	free(buf);
	srv_stop(&s);
}

/* test_lost_and_restore - moat-dpdk goes away and comes back with the
 * table it saved */
static void test_lost_and_restore(void **st)
{
	struct moat_update u[4], *img = NULL;
	struct dp_chan_counters cn;
	struct moat_fastpath fp;
	struct moat_prefix p = P4(192, 0, 2, 9);
	uint32_t act;
	struct srv s;
	size_t n;
	int got = 0, efd;
	FILE *f;

	(void)st;
	unlink(state);
	srv_start(&s, 1);
	open_fp(&fp);
	efd = fp.events_fd(fp.ctx);
	assert_int_equal(fp.read_image(fp.ctx, &img, &n), 0);
	assert_int_equal(fp.publish(fp.ctx, u, some_updates(u, MOAT_ACT_DROP)), 0);
	assert_int_equal(fp.publish_done(fp.ctx), 0);
	/* saved (save_ms 1): wait for the counter */
	for (int i = 0; i < 300; i++) {
		dp_chan_counters(s.c, &cn);
		if (cn.saves)
			break;
		usleep(10000);
	}
	assert_int_equal(cn.saves, 1);
	srv_stop(&s);
	/* gone: the events fd says so, once */
	assert_true(wait_readable(efd, 2000));
	assert_int_equal(fp.events_drain(fp.ctx, count_event, &got), -ENOTCONN);
	assert_int_equal(fp.events_drain(fp.ctx, count_event, &got), 0);
	assert_int_equal(fp.publish(fp.ctx, u, 4), -ENOTCONN);
	assert_int_equal(fp.lookup(fp.ctx, &p, &act), -ENOTCONN);
	assert_int_equal(fp.read_image(fp.ctx, &img, &n), -ENOTCONN);
	/* back, restored from disk: loaded before any client */
	srv_start(&s, 1);
	assert_int_equal(dp_chan_wait_loaded(s.c, 0), 0);
	assert_int_equal(dp_table_lookup(s.t, &p), MOAT_ACT_DROP);
	/* publish still refused: the new instance was not read yet */
	assert_int_equal(fp.publish(fp.ctx, u, 4), -ENOTCONN);
	assert_int_equal(fp.read_image(fp.ctx, &img, &n), 0);
	assert_int_equal(n, 4);
	free(img);
	assert_int_equal(fp.lookup(fp.ctx, &p, &act), 0);
	assert_int_equal(act, MOAT_ACT_DROP);
	assert_int_equal(fp.publish(fp.ctx, u, some_updates(u, MOAT_ACT_TARPIT)), 0);
	assert_int_equal(fp.lookup(fp.ctx, &p, &act), 0);
	assert_int_equal(act, MOAT_ACT_TARPIT);
	/* gone again, seen first by a command: events_fd still says so, once */
	srv_stop(&s);
	assert_int_equal(fp.publish(fp.ctx, u, 4), -ENOTCONN);
	assert_true(wait_readable(efd, 2000));
	assert_int_equal(fp.events_drain(fp.ctx, count_event, &got), -ENOTCONN);
	assert_int_equal(fp.events_drain(fp.ctx, count_event, &got), 0);
	assert_false(wait_readable(efd, 0));
	fp.close(fp.ctx);
	/* a corrupt state file: not loaded, table empty, counted */
	f = fopen(state, "r+");
	assert_non_null(f);
	fseek(f, 40, SEEK_SET);
	fputc('X', f);
	fclose(f);
	srv_start(&s, 1);
	assert_int_equal(dp_chan_wait_loaded(s.c, 50), -ETIMEDOUT);
	assert_int_equal(dp_table_lookup(s.t, &p), MOAT_ACT_PASS);
	dp_chan_counters(s.c, &cn);
	assert_int_equal(cn.save_errors, 1);
	srv_stop(&s);
	unlink(state);
}

/* ------------------------------------------- 1M changes under lookups */

#define BIG_N24 (1u << 20)         /* /24s changed: 1M tbl24 updates */
#define BIG_BASE (16u << 16)       /* from 16.0.0.0 */
#define BIG_PROBES 65536

struct probe {
	struct moat_prefix p;
	uint8_t a, b;
};

struct reader {
	struct dp_table *t;
	const struct probe *pr;
	volatile int stop;
	uint64_t lookups, bad, a_only, b_only;
};

/* reader_main - a worker's loop: lookups, a quiescent state per pass */
static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct rte_rcu_qsbr *q = dp_table_qsbr(r->t);

	rte_rcu_qsbr_thread_register(q, 0);
	rte_rcu_qsbr_thread_online(q, 0);
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		for (size_t i = 0; i < 1024; i++) {
			const struct probe *p = &r->pr[(r->lookups + i * 7919) % BIG_PROBES];
			uint32_t v = dp_table_lookup(r->t, &p->p);

			if (v != p->a && v != p->b)
				r->bad++;
			else if (p->a != p->b)
				*(v == p->a ? &r->a_only : &r->b_only) += 1;
		}
		r->lookups += 1024;
		rte_rcu_qsbr_quiescent(q, 0);
	}
	rte_rcu_qsbr_thread_offline(q, 0);
	rte_rcu_qsbr_thread_unregister(q, 0);
	return NULL;
}

/* big_image - 1M /24s: uniform actions and mixed /24s (a group each),
 * plus IPv6 rules at three lengths; variant picks the actions */
static struct vt_image *big_image(unsigned variant)
{
	struct vt_image *img = vt_image_new();
	struct moat_update *u = calloc(4096, sizeof(*u));
	size_t n = 0;

	assert_non_null(img);
	assert_non_null(u);
	for (uint32_t i = 0; i < BIG_N24; i++) {
		uint32_t h = (i * 2654435761u) ^ (variant * 0x9e3779b9u);

		if (n + 2 > 4096) {
			assert_int_equal(vt_image_apply(img, u, n), 0);
			n = 0;
		}
		memset(&u[n], 0, 2 * sizeof(*u));
		if ((h >> 7) % 16 == 0) {       /* 1 in 16 /24s mixed */
			u[n].kind = MOAT_UPD_GROUP;
			u[n].index = i / 16;
			for (int k = 0; k < MOAT_GROUP_BYTES; k++)
				u[n].u.group.bits[k] = (uint8_t)(h >> (k % 24));
			n++;
			u[n].kind = MOAT_UPD_TBL24;
			u[n].index = BIG_BASE + i;
			u[n++].value = moat_tbl24_make_group(i / 16);
		} else {
			u[n].kind = MOAT_UPD_TBL24;
			u[n].index = BIG_BASE + i;
			u[n++].value = (h >> 11) & 3;
		}
	}
	assert_int_equal(vt_image_apply(img, u, n), 0);
	n = 0;
	memset(u, 0, 4096 * sizeof(*u));
	u[n].kind = MOAT_UPD_V6_PLENS;
	u[n].u.plens.n = 3;
	u[n].u.plens.len[0] = 64;
	u[n].u.plens.len[1] = 56;
	u[n++].u.plens.len[2] = 48;
	for (uint32_t i = 0; i < 3000; i++) {
		uint8_t a[16] = { 0x20, 0x01, 0x0d, 0xb8, (uint8_t)(i >> 4), 0,
				  (uint8_t)i, (uint8_t)(i * 3) };
		uint32_t h = (i * 2654435761u) ^ (variant * 0x9e3779b9u);

		if ((h >> 9) % 3 == 0)
			continue;
		u[n].kind = MOAT_UPD_V6_PUT;
		moat_v6_mask(&u[n].u.key, a, (uint32_t[]){ 64, 56, 48 }[(h >> 13) % 3]);
		u[n++].value = (h >> 17) & 3;
	}
	assert_int_equal(vt_image_apply(img, u, n), 0);
	free(u);
	return img;
}

/* test_publish_1m - a diff of more than 1M updates published through the
 * channel in controld's chunks while a reader looks up: every verdict is
 * the old table's or the new one's */
static void test_publish_1m(void **st)
{
	struct dp_table_params tp = { .groups_max = BIG_N24 / 8, .v6_rules_max = 8192,
				      .n_readers = 1, .socket_id = SOCKET_ID_ANY };
	struct dp_chan_params cp = { 0 };
	struct probe *pr = calloc(BIG_PROBES, sizeof(*pr));
	struct vt_image *a = big_image(1), *b = big_image(2);
	struct moat_update *u = NULL, *img = NULL;
	struct moat_fastpath fp;
	struct reader r = { 0 };
	struct srv s = { 0 };
	pthread_t th;
	size_t n, ni;

	(void)st;
	assert_non_null(pr);
	assert_int_equal(dp_table_create(&tp, &s.t), 0);
	cp.path = sock;
	cp.table = s.t;
	cp.state_path = state;
	cp.save_ms = 3600 * 1000;   /* saved at stop only */
	unlink(state);
	assert_int_equal(dp_chan_start(&cp, &s.c), 0);
	open_fp(&fp);
	assert_int_equal(fp.read_image(fp.ctx, &img, &ni), 0);
	/* A, then A -> B under lookups */
	assert_int_equal(vt_image_full(a, &u, &n), 0);
	for (size_t i = 0; i < n; i += 4096)
		assert_int_equal(fp.publish(fp.ctx, u + i, n - i < 4096 ? n - i : 4096), 0);
	free(u);
	for (uint32_t i = 0; i < BIG_PROBES; i++) {
		struct moat_prefix *p = &pr[i].p;
		uint32_t h = i * 2654435761u;

		memset(p, 0, sizeof(*p));
		if (i % 8) {
			uint32_t x = ((BIG_BASE + (h >> 12) % BIG_N24) << 8) | (h & 0xff);

			*p = P4((uint8_t)(x >> 24), (uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x);
			pr[i].a = (uint8_t)vt_image_lookup_v4(a, x);
			pr[i].b = (uint8_t)vt_image_lookup_v4(b, x);
		} else {
			uint32_t k = (h >> 8) % 3000;

			p->family = MOAT_AF_INET6;
			p->plen = 128;
			p->addr[0] = 0x20;
			p->addr[1] = 0x01;
			p->addr[2] = 0x0d;
			p->addr[3] = 0xb8;
			p->addr[4] = (uint8_t)(k >> 4);
			p->addr[6] = (uint8_t)k;
			p->addr[7] = (uint8_t)(k * 3);
			p->addr[15] = (uint8_t)h;
			pr[i].a = (uint8_t)vt_image_lookup_v6(a, p->addr);
			pr[i].b = (uint8_t)vt_image_lookup_v6(b, p->addr);
		}
	}
	assert_int_equal(vt_image_diff(a, b, &u, &n), 0);
	print_message("# diff A->B: %zu updates\n", n);
	assert_true(n >= 1000000);
	r.t = s.t;
	r.pr = pr;
	assert_int_equal(pthread_create(&th, NULL, reader_main, &r), 0);
	uint64_t t0 = moat_clock_ns();

	for (size_t i = 0; i < n; i += 4096)
		assert_int_equal(fp.publish(fp.ctx, u + i, n - i < 4096 ? n - i : 4096), 0);
	assert_int_equal(fp.publish_done(fp.ctx), 0);
	print_message("# publish: %zu updates in %.0f ms under lookups\n", n,
		      (double)(moat_clock_ns() - t0) / 1e6);
	free(u);
	/* a few passes over B alone, then stop */
	rte_rcu_qsbr_synchronize(dp_table_qsbr(s.t), RTE_QSBR_THRID_INVALID);
	rte_rcu_qsbr_synchronize(dp_table_qsbr(s.t), RTE_QSBR_THRID_INVALID);
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	print_message("# reader: %llu lookups, %llu old-only, %llu new-only, %llu neither\n",
		      (unsigned long long)r.lookups, (unsigned long long)r.a_only,
		      (unsigned long long)r.b_only, (unsigned long long)r.bad);
	assert_int_equal(r.bad, 0);
	assert_true(r.a_only > 0 && r.b_only > 0);
	/* and the table is B now */
	for (uint32_t i = 0; i < BIG_PROBES; i++)
		if (dp_table_lookup(s.t, &pr[i].p) != pr[i].b)
			fail_msg("probe %u: not B's verdict after the publish", i);
	/* read back over the channel (streamed in parts): B's verdicts */
	{
		struct vt_image *back = vt_image_new();

		assert_int_equal(fp.read_image(fp.ctx, &img, &ni), 0);
		print_message("# read_image: %zu updates\n", ni);
		assert_int_equal(vt_image_apply(back, img, ni), 0);
		assert_int_equal(vt_image_equal_verdicts(back, b), 1);
		vt_image_free(back);
		free(img);
	}
	fp.close(fp.ctx);
	/* saved at stop (streamed), restored whole by the next instance */
	dp_chan_stop(s.c);
	dp_table_free(s.t);
	assert_int_equal(dp_table_create(&tp, &s.t), 0);
	cp.table = s.t;
	assert_int_equal(dp_chan_start(&cp, &s.c), 0);
	assert_int_equal(dp_chan_wait_loaded(s.c, 0), 0);
	for (uint32_t i = 0; i < BIG_PROBES; i++)
		if (dp_table_lookup(s.t, &pr[i].p) != pr[i].b)
			fail_msg("probe %u: not B's verdict after the restore", i);
	dp_chan_stop(s.c);
	dp_table_free(s.t);
	unlink(state);
	vt_image_free(a);
	vt_image_free(b);
	free(pr);
}

static int setup(void **st)
{
	(void)st;
	snprintf(dir, sizeof(dir), "/tmp/test_dp_chan.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(sock, sizeof(sock), "%s/dpdk.sock", dir);
	snprintf(state, sizeof(state), "%s/dpdk.image", dir);
	return dp_test_eal_up("dp_chan", "512");
}

static int teardown(void **st)
{
	(void)st;
	dp_test_eal_down();
	unlink(sock);
	unlink(state);
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_publish_lookup),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_lost_and_restore),
		cmocka_unit_test(test_publish_1m),
	};

	return cmocka_run_group_tests_name("dp_chan", tests, setup, teardown);
}
