/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_xdp_v6race.c - IPv6 lookups of the real XDP program racing a
 * publish: a reader thread runs moat_xdp over IPv6 SYNs from fixed
 * addresses through BPF_PROG_TEST_RUN, again and again, while the writer
 * publishes table A -> B -> A ... diffs (lib's vt_image_diff, the order of
 * bpf/moat_abi.h) through moat_xdp_publish in small chunks.  Every XDP
 * action the reader gets must be the one table A or table B gives that
 * address: the lookup probes one rule per prefix length at different
 * moments, so a writer that changed rules at two lengths inside one
 * lookup could hand it a verdict of neither (moat_abi.h PUBLISHING ORDER).
 * Positive control: the reader did see A-only and B-only verdicts.
 * Without the grace periods of moat_xdp_publish about one A -> B publish
 * in 30-60 gives a wrong lookup here (11-13 in 4 s, ~700 publishes); with
 * them the default 4 s makes 100-300 publishes: XDP_RACE_MS=N runs N ms.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "clock.h"
#include "log.h"
#include "vtable.h"
#include "xdp_backend.h"
#include "xdp_frames.h"

#define NLEN 30        /* filler prefix lengths strictly between 33 and 64 */

/*
 * The two tables.  Both hold one filler listing at every length 33..64
 * (in 3fff::/16, far from the probes), so the prefix-length set (32
 * lengths, the most a table may have) never changes and a lookup probes
 * 30 empty lengths between /64 and /33:
 *   A: 2001:db8::/33 DROP
 *   B: 2001:db8:1:2::/64 DROP (the /33 gone)
 * The diff A -> B puts the /64, then deletes the /33.  An address in the
 * /64 is DROP in both; a lookup that probed /64 before the put and /33
 * after the delete would PASS it.  The control address, in the /33 but
 * not in the /64, is DROP in A and PASS in B: the reader sees both.
 */
#define Q_ADDR "2001:db8:1:2::7"     /* DROP in A and B */
#define C_ADDR "2001:db8:1:3::7"     /* DROP in A, PASS in B */

/* listing - an operator listing of addr/plen */
static struct moat_listing listing(const char *addr, unsigned plen, uint32_t act)
{
	struct moat_listing l;

	memset(&l, 0, sizeof(l));
	l.pfx.family = MOAT_AF_INET6;
	l.pfx.plen = (uint8_t)plen;
	assert_int_equal(inet_pton(AF_INET6, addr, l.pfx.addr), 1);
	for (unsigned b = plen; b < 128; b++)
		l.pfx.addr[b / 8] &= (uint8_t)~(0x80u >> (b % 8));
	l.source = 1;
	l.code = act;
	return l;
}

/* table - table A (b = 0) or B (b = 1) */
static struct vt_db *table(const struct vt_policy *pol, int b)
{
	struct moat_listing l[NLEN + 3];
	size_t n = 0;
	char err[256];
	struct vt_db *db = vt_db_new(pol, err, sizeof(err));

	assert_non_null(db);
	for (unsigned len = 33; len <= 64; len++)
		l[n++] = listing("3fff:1:2:3:4::", len, MOAT_ACT_TARPIT);
	/* the fillers nest (3fff:1:2:3:4::/33 .. /64): a prefix is a rule
	 * only where its action differs from its parent's, so alternate */
	for (size_t i = 0; i < n; i++)
		l[i].code = i & 1 ? MOAT_ACT_DROP : MOAT_ACT_TARPIT;
	l[n++] = b ? listing("2001:db8:1:2::", 64, MOAT_ACT_DROP)
		   : listing("2001:db8::", 33, MOAT_ACT_DROP);
	assert_int_equal(vt_db_source_apply(db, 1, l, n, NULL, 0, err, sizeof(err)), 0);
	return db;
}

struct reader {
	int prog_fd;
	uint8_t q[TF_MAX], c[TF_MAX];
	size_t qlen, clen;
	volatile int stop;
	uint64_t lookups, bad, c_drop, c_pass, err;
};

/* run1 - one frame through the program: its XDP action, -1 on error */
static int run1(int fd, const uint8_t *f, size_t len)
{
	static __thread uint8_t sink[TF_MAX];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f, .data_size_in = (__u32)len,
		    .data_out = sink, .data_size_out = TF_MAX, .repeat = 1);

	return bpf_prog_test_run_opts(fd, &o) ? -1 : (int)o.retval;
}

/* reader_main - the /64 address again and again, the control every 16th */
static void *reader_main(void *arg)
{
	struct reader *r = arg;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		for (int i = 0; i < 15; i++) {
			int v = run1(r->prog_fd, r->q, r->qlen);

			if (v < 0)
				r->err++;
			else if (v != XDP_DROP)
				r->bad++;
		}
		switch (run1(r->prog_fd, r->c, r->clen)) {
		case XDP_DROP:
			r->c_drop++;
			break;
		case XDP_PASS:
			r->c_pass++;
			break;
		default:
			r->err++;
		}
		__atomic_add_fetch(&r->lookups, 16, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* diff - the update sequence from one image to another (lib's order) */
static size_t diff(const struct vt_image *from, const struct vt_image *to,
		   struct moat_update **u)
{
	size_t n = 0;

	assert_int_equal(vt_image_diff(from, to, u, &n), 0);
	return n;
}

/* publish - u[0..n) through moat_xdp_publish, one update a call (the
 * widest window between two updates) */
static void publish(struct moat_xdp *x, const struct moat_update *u, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(moat_xdp_publish(x, u + i, 1), 0);
}

static size_t frame(const char *src, uint8_t *buf)
{
	struct tframe f = { .family = 6, .src = src, .dst = "2001:db8:ffff::1",
			    .sport = 40000, .dport = 25, .flags = TF_SYN, .seq = 7 };

	return tf_build(&f, buf);
}

static void test_v6_race(void **state)
{
	struct vt_policy *pol = malloc(sizeof(*pol));
	struct vt_image *empty = vt_image_new();
	const struct vt_image *img[2];
	struct moat_xdp_opts o;
	struct moat_xdp *x = NULL;
	struct vt_db *db[2];
	struct reader *r = calloc(1, sizeof(*r));
	struct vt_source s;
	pthread_t th;
	char err[256];
	uint8_t qa[16], ca[16];
	struct moat_update *d[2];
	size_t nd[2];
	uint64_t t0, g0, flips = 0, pubs, budget_ms;
	const char *e = getenv("XDP_RACE_MS");

	(void)state;
	assert_non_null(pol);
	assert_non_null(empty);
	assert_non_null(r);
	budget_ms = e ? strtoull(e, NULL, 10) : 4000;
	vt_policy_init(pol);
	vt_source_init(&s, 1, "operator", VT_SRC_STATIC);
	assert_int_equal(vt_policy_add_source(pol, &s, err, sizeof(err)), 0);
	for (int i = 0; i < 2; i++) {
		struct moat_update *u = NULL;
		size_t n = 0;

		db[i] = table(pol, i);
		assert_int_equal(vt_db_publish(db[i], &u, &n), 0);
		free(u);
		img[i] = vt_db_image(db[i]);
	}
	/* the premise, from lib's reference lookup */
	assert_int_equal(inet_pton(AF_INET6, Q_ADDR, qa), 1);
	assert_int_equal(inet_pton(AF_INET6, C_ADDR, ca), 1);
	assert_int_equal(vt_image_lookup_v6(img[0], qa), MOAT_ACT_DROP);
	assert_int_equal(vt_image_lookup_v6(img[1], qa), MOAT_ACT_DROP);
	assert_int_equal(vt_image_lookup_v6(img[0], ca), MOAT_ACT_DROP);
	assert_int_equal(vt_image_lookup_v6(img[1], ca), MOAT_ACT_PASS);

	moat_xdp_opts_default(&o);
	o.pin_dir = NULL;
	o.groups_max = 64;
	o.v6_max = 256;
	o.rl_src_max = 64;
	o.event_sample = 0;
	assert_int_equal(moat_xdp_open(&o, &x), 0);
	{
		struct moat_update *u = NULL;
		size_t n = diff(empty, img[0], &u);

		publish(x, u, n);
		free(u);
	}
	nd[0] = diff(img[0], img[1], &d[0]);
	nd[1] = diff(img[1], img[0], &d[1]);
	/* the premise: the /64 goes in before the /33 goes out, at one call
	 * apart; the prefix-length set does not change */
	assert_int_equal(nd[0], 2);
	assert_int_equal(d[0][0].kind, MOAT_UPD_V6_PUT);
	assert_int_equal(d[0][0].u.key.plen, 64);
	assert_int_equal(d[0][1].kind, MOAT_UPD_V6_DEL);
	assert_int_equal(d[0][1].u.key.plen, 33);

	r->prog_fd = moat_xdp_prog_fd(x);
	r->qlen = frame(Q_ADDR, r->q);
	r->clen = frame(C_ADDR, r->c);
	assert_int_equal(pthread_create(&th, NULL, reader_main, r), 0);
	g0 = moat_xdp_grace_count(x);
	t0 = moat_clock_ms();
	while (moat_clock_ms() - t0 < budget_ms || flips < 20) {
		uint64_t l0;

		publish(x, d[flips & 1], nd[flips & 1]);
		flips++;
		l0 = __atomic_load_n(&r->lookups, __ATOMIC_ACQUIRE);
		/* the reader meets each table whole: one full round of its
		 * lookups (the control among them) after the publish */
		while (__atomic_load_n(&r->lookups, __ATOMIC_ACQUIRE) < l0 + 32)
			sched_yield();
	}
	/* end on A and let the reader see it: a lookup after the last flip */
	if (flips & 1)
		publish(x, d[1], nd[1]);
	pubs = flips + (flips & 1);
	{
		uint64_t l0 = __atomic_load_n(&r->lookups, __ATOMIC_ACQUIRE);

		for (int i = 0; i < 20000 &&
		     __atomic_load_n(&r->lookups, __ATOMIC_ACQUIRE) < l0 + 32; i++)
			usleep(1000);
	}
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	print_message("# %llu publishes A<->B in %llu ms; reader: %llu lookups, "
		      "%llu not DROP; control %llu DROP, %llu PASS\n",
		      (unsigned long long)flips, (unsigned long long)budget_ms,
		      (unsigned long long)r->lookups, (unsigned long long)r->bad,
		      (unsigned long long)r->c_drop, (unsigned long long)r->c_pass);
	assert_int_equal(r->err, 0);
	if (r->bad)
		fail_msg("%llu lookups of %s (DROP in both tables) got another "
			 "XDP action", (unsigned long long)r->bad, Q_ADDR);
	/* positive control: the reader saw both tables */
	assert_true(r->c_drop > 0);
	assert_true(r->c_pass > 0);
	/* a publish call waits at its end when the trie freed storage (a
	 * replaced bucket), which resets the length rule, so the next call
	 * starts without a wait before a longer change: at most once per
	 * call, two calls per flip (the last flip back to A counted), and
	 * once more before the first flip's /64, which follows the initial
	 * fill's /33 with no wait between them; with the per-length waits
	 * of session 6 it was up to twice per call */
	print_message("# %llu grace periods in %llu flips\n",
		      (unsigned long long)(moat_xdp_grace_count(x) - g0),
		      (unsigned long long)pubs);
	assert_true(moat_xdp_grace_count(x) - g0 <= 2 * pubs + 1);
	moat_xdp_close(x);
	vt_image_free(empty);
	free(d[0]);
	free(d[1]);
	vt_db_free(db[0]);
	vt_db_free(db[1]);
	free(r);
	free(pol);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v6_race),
	};
	log_init("test_xdp_v6race", 0);
	log_set_level(LOG_LVL_ERR);
	return cmocka_run_group_tests_name("xdp_v6race", tests, NULL, NULL);
}
