/*
 * test_xdp.c - the moat_xdp program in the running kernel through
 * libmoatxdp: every frame of the shared case table (tests/xdp_frames.h)
 * through BPF_PROG_TEST_RUN with its XDP verdict and the one counter it
 * must bump; every truncation from 14 bytes up; tarpit replies read back
 * from data_out and checked (checksums, swap, VLAN tags, ISN = keyed hash);
 * rate limits per source prefix and global; the port set; the event ring;
 * publish ordering and batching; the v6_plens double buffer (read only
 * through its selector, flipped by publish); pinned maps surviving a reopen.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "clock.h"
#include "log.h"
#include "moat_trie6.h"
#include "moat_xdp.h"
#include "vt_trie6.h"
#include "xdp_backend.h"
#include "xdp_frames.h"

static const __u64 test_key[2] = { 0x1111222233334444ull, 0x5555666677778888ull };

/* v6_max of the handles open_x makes: 64, or VT_TRIE6_WIDE_MIN for the
 * IPv6 trie's wide root (test_case_table_wide) */
static __u32 open_v6_max = 64;

/* open_x - a handle without pins, small maps, the test table published */
static struct moat_xdp *open_x(struct moat_xdp_opts *o)
{
	struct moat_update u[16];
	struct moat_xdp *x = NULL;
	size_t n = tests_table_updates(u);

	o->pin_dir = NULL;
	o->groups_max = 1024;
	o->v6_max = open_v6_max;
	o->rl_src_max = 64;
	o->isn_key[0] = test_key[0];
	o->isn_key[1] = test_key[1];
	assert_int_equal(moat_xdp_open(o, &x), 0);
	assert_int_equal(moat_xdp_publish(x, u, n), 0);
	return x;
}

/* default_opts - defaults with tarpit limits high enough for the cases */
static void default_opts(struct moat_xdp_opts *o)
{
	moat_xdp_opts_default(o);
	o->tarpit_src_burst = 1000;
}

/* run - one frame through BPF_PROG_TEST_RUN; returns the XDP action */
static int run(struct moat_xdp *x, const uint8_t *in, size_t len,
	       uint8_t *out, size_t *outlen)
{
	static uint8_t sink[TF_MAX];
	LIBBPF_OPTS(bpf_test_run_opts, o,
		.data_in = in,
		.data_size_in = (__u32)len,
		.data_out = out ? out : sink,
		.data_size_out = TF_MAX,
		.repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(moat_xdp_prog_fd(x), &o), 0);
	if (outlen)
		*outlen = o.data_size_out;
	return (int)o.retval;
}

/* stat_delta_ok - exactly `want` went up by one (events aside) */
static int stat_delta_ok(const uint64_t *a, const uint64_t *b, int want,
			 char *msg, size_t msgsz)
{
	int ok = 1;

	for (int s = 0; s < MOAT_STAT__MAX; s++) {
		uint64_t d = b[s] - a[s], w = s == want;

		if (s == MOAT_STAT_EVENT_LOST)
			continue;
		if (d != w) {
			snprintf(msg, msgsz, "counter %s moved by %llu, want %llu",
				 moat_xdp_stat_name((unsigned)s),
				 (unsigned long long)d, (unsigned long long)w);
			ok = 0;
		}
	}
	return ok;
}

/* run_counted - run() one frame; *ok says whether exactly counter want
 * moved (else msg says which did) */
static int run_counted(struct moat_xdp *x, const uint8_t *in, size_t len,
		       uint8_t *out, size_t *outlen, int want, char *msg,
		       size_t msgsz, int *ok)
{
	uint64_t a[MOAT_STAT__MAX], b[MOAT_STAT__MAX];
	int got;

	assert_int_equal(moat_xdp_read_stats(x, a), 0);
	got = run(x, in, len, out, outlen);
	assert_int_equal(moat_xdp_read_stats(x, b), 0);
	*ok = stat_delta_ok(a, b, want, msg, msgsz);
	return got;
}

static void test_case_table(void **state)
{
	struct moat_xdp_opts o;
	struct moat_xdp *x;
	uint8_t in[TF_MAX], out[TF_MAX];
	char msg[160];
	int failed = 0, tarpits = 0, ok;

	(void)state;
	default_opts(&o);
	x = open_x(&o);
	for (size_t i = 0; i < N_TCASES; i++) {
		const struct tcase *c = &tcases[i];
		size_t len = tf_build(&c->f, in), outlen = 0;
		int got;

		got = run_counted(x, in, len, out, &outlen, c->want_stat, msg,
				  sizeof(msg), &ok);
		if (got != c->want_verdict) {
			print_error("case '%s': XDP action got %d, want %d\n",
				    c->name, got, c->want_verdict);
			failed++;
		}
		if (!ok) {
			print_error("case '%s': %s\n", c->name, msg);
			failed++;
		}
		const char *err = tf_check_case_out(got, in, len, out, outlen, test_key);

		if (err) {
			print_error("case '%s': %s\n", c->name, err);
			failed++;
		}
		tarpits += got == MOAT_VERDICT_TX;
	}
	moat_xdp_close(x);
	assert_true(tarpits >= 5);
	assert_int_equal(failed, 0);
}

/* the same cases through a program whose IPv6 trie has the wide root
 * (2^21 + 2^16 entries: a v6_max of VT_TRIE6_WIDE_MIN) */
static void test_case_table_wide(void **state)
{
	open_v6_max = VT_TRIE6_WIDE_MIN;
	test_case_table(state);
	open_v6_max = 64;
}

static void test_truncation(void **state)
{
	struct moat_xdp_opts o;
	struct moat_xdp *x;
	uint8_t in[TF_MAX];
	char msg[160];
	int failed = 0, n = 0, ok;

	(void)state;
	default_opts(&o);
	x = open_x(&o);
	for (size_t f = 0; f < N_TCUT; f++) {
		size_t full = tf_build(&tcut_frames[f], in);

		for (size_t len = MOAT_ETH_HLEN; len < full; len++, n++) {
			int want = (int)moat_parse_res_stat(
				tcut_want(&tcut_frames[f], tf_l3off(&tcut_frames[f]), len));
			int got = run_counted(x, in, len, NULL, NULL, want, msg,
					      sizeof(msg), &ok);

			if (got != MOAT_VERDICT_PASS || !ok) {
				print_error("frame %zu cut to %zu: action %d, %s\n", f,
					    len, got, got == MOAT_VERDICT_PASS ? msg : "want PASS");
				failed++;
			}
		}
	}
	moat_xdp_close(x);
	assert_true(n > 100);
	assert_int_equal(failed, 0);
}

/* syn_from - build a SYN to port 25 from src into buf */
static size_t syn_from(uint8_t *buf, const char *src, uint16_t dport);
static size_t syn_to(uint8_t *buf, const char *src, const char *dst, uint16_t dport, int flags);

/* rd32be - a big-endian 32-bit field */
static uint32_t rd32be(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* write_file - write s to path; 0 or -1 */
static int write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");
	int r;

	if (!f)
		return -1;
	r = fputs(s, f) < 0 ? -1 : 0;
	return fclose(f) || r ? -1 : 0;
}

static size_t syn_to(uint8_t *buf, const char *src, const char *dst, uint16_t dport, int flags)
{
	struct tframe f = { .family = strchr(src, ':') ? 6 : 4, .src = src,
			    .sport = 40000, .dport = dport, .flags = flags,
			    .seq = 7 };

	f.dst = dst ? dst : f.family == 4 ? "198.18.1.1" : "2001:db8:1::1";
	return tf_build(&f, buf);
}

static size_t syn_from(uint8_t *buf, const char *src, uint16_t dport)
{
	return syn_to(buf, src, NULL, dport, TF_SYN);
}

/* ck_check_at - a SYN-cookie reply against the SYN it answers (family
 * fam, the IP header at l3 in both: the VLAN tags before it kept, the
 * SYN without IP options or extension headers): SYN|ACK, MACs, ports and
 * addresses swapped, ack = seq + 1, a 24-byte TCP header whose one option
 * is MSS mss, window 65535 rounded down to mss, both checksums right.
 * Returns the ISN (the cookie); fails the test otherwise. */
static uint32_t ck_check_at(const uint8_t *syn, const uint8_t *out, size_t outlen, int fam,
			    size_t l3, uint16_t mss)
{
	size_t ipl = fam == 4 ? 20 : 40;
	const uint8_t *ip = out + l3, *t = ip + ipl, *sip = syn + l3, *st = sip + ipl;
	uint32_t sum;

	assert_int_equal(outlen, l3 + ipl + 24);
	assert_memory_equal(out, syn + 6, 6);           /* MACs swapped */
	assert_memory_equal(out + 6, syn, 6);
	assert_memory_equal(out + 12, syn + 12, l3 - 12); /* tags, EtherType kept */
	if (fam == 4) {
		assert_int_equal(ip[0], 0x45);
		assert_int_equal(ip[2] << 8 | ip[3], 44);
		assert_int_equal(ip[9], 6);
		assert_memory_equal(ip + 12, sip + 16, 4);
		assert_memory_equal(ip + 16, sip + 12, 4);
		assert_int_equal(tf_fold(tf_sum(ip, 20)), 0);
		sum = tf_sum(ip + 12, 8) + 6 + 24;
	} else {
		assert_int_equal(ip[0] >> 4, 6);
		assert_int_equal(ip[4] << 8 | ip[5], 24);
		assert_int_equal(ip[6], 6);
		assert_memory_equal(ip + 8, sip + 24, 16);
		assert_memory_equal(ip + 24, sip + 8, 16);
		sum = tf_sum(ip + 8, 32) + 6 + 24;
	}
	assert_int_equal(tf_fold(sum + tf_sum(t, 24)), 0);
	assert_memory_equal(t, st + 2, 2);              /* ports swapped */
	assert_memory_equal(t + 2, st, 2);
	assert_int_equal(rd32be(t + 8), rd32be(st + 4) + 1);
	assert_int_equal(t[12], 6 << 4);
	assert_int_equal(t[13], 0x12);
	assert_int_equal(t[20], 2);
	assert_int_equal(t[21], 4);
	if ((t[22] << 8 | t[23]) != mss)
		fail_msg("MSS option %u, want %u", t[22] << 8 | t[23], mss);
	assert_int_equal(t[14] << 8 | t[15], 65535 / mss * mss);
	return rd32be(t + 4);
}

/* ck_check - ck_check_at for an untagged SYN */
static uint32_t ck_check(const uint8_t *syn, const uint8_t *out, size_t outlen, int fam,
			 uint16_t mss)
{
	return ck_check_at(syn, out, outlen, fam, 14, mss);
}

/* ck_syn - a SYN from src:40000 to dst (NULL: the listener's address of
 * its family) port 25 in the layout of lay (its nvlan, ip4_opts, ext,
 * frag), whose TCP options are an MSS option of mss, or 4 NOPs (mss 0) */
static size_t ck_syn(uint8_t *buf, const struct tframe *lay, const char *src, const char *dst,
		     uint16_t mss)
{
	struct tframe f = *lay;
	struct moat_pkt p;
	size_t len;

	f.family = strchr(src, ':') ? 6 : 4;
	f.src = src;
	f.dst = dst ? dst : f.family == 4 ? "198.18.1.1" : "2001:db8:1::1";
	f.sport = 40000;
	f.dport = 25;
	f.flags = TF_SYN;
	f.seq = 7;
	f.tcp_opts = 4;
	len = tf_build(&f, buf);
	assert_int_equal(moat_parse_general(buf, buf + len, &p), MOAT_PARSE_TCP);
	if (mss) {
		buf[p.l4_off + 20] = 2;
		buf[p.l4_off + 21] = 4;
		buf[p.l4_off + 22] = (uint8_t)(mss >> 8);
		buf[p.l4_off + 23] = (uint8_t)mss;
	}
	return len;
}

/* ck_prime - spend this second's keep SYN to dst (the family of src):
 * plain SYNs until one is answered with a cookie, so the next SYN to it
 * within the second is not the one the kernel must see */
static void ck_prime(struct moat_xdp *x, const char *src, const char *dst)
{
	static const struct tframe plain;
	uint8_t in[TF_MAX];
	size_t len = ck_syn(in, &plain, src, dst, 0);

	for (int i = 0; i < 3; i++)
		if (run(x, in, len, NULL, NULL) == MOAT_VERDICT_TX)
			return;
	fail_msg("no cookie for %s -> %s in 3 SYNs", src, dst ? dst : "-");
}

/* ck_layouts - the frame layouts a cookie answers and those it leaves to
 * the kernel (moat_cookie_layout): VLAN tags are answered with the tags
 * kept; IPv4 options, an IPv4 first fragment and IPv6 extension headers
 * pass untouched (counted pass, never keep or syn_cookie) */
static void ck_layouts(struct moat_xdp *x)
{
	static const struct {
		const char *name, *src;
		struct tframe lay;
		int want;
	} cases[] = {
		{ "802.1Q, IPv4", "192.0.2.13", { .nvlan = 1 }, MOAT_VERDICT_TX },
		{ "802.1ad + 802.1Q, IPv4", "192.0.2.13", { .nvlan = 2 }, MOAT_VERDICT_TX },
		{ "802.1Q, IPv6", "2001:db8:100:1::5", { .nvlan = 1 }, MOAT_VERDICT_TX },
		{ "802.1ad + 802.1Q, IPv6", "2001:db8:100:1::5", { .nvlan = 2 }, MOAT_VERDICT_TX },
		{ "IPv4 options", "192.0.2.13", { .ip4_opts = 4 }, MOAT_VERDICT_PASS },
		{ "802.1Q, IPv4 options", "192.0.2.13", { .nvlan = 1, .ip4_opts = 8 }, MOAT_VERDICT_PASS },
		{ "IPv4 first fragment (MF)", "192.0.2.13", { .frag = 0x2000 }, MOAT_VERDICT_PASS },
		{ "IPv6 hop-by-hop + destination options", "2001:db8:100:1::5",
		  { .ext = ext_hop_dst }, MOAT_VERDICT_PASS },
		{ "IPv6 routing header", "2001:db8:100:1::5", { .ext = ext_routing }, MOAT_VERDICT_PASS },
		{ "IPv6 atomic fragment", "2001:db8:100:1::5", { .ext = ext_frag0 }, MOAT_VERDICT_PASS },
		{ "802.1Q, IPv6 AH", "2001:db8:100:1::5", { .nvlan = 1, .ext = ext_ah },
		  MOAT_VERDICT_PASS },
	};
	uint8_t in[TF_MAX], out[TF_MAX];
	size_t len, outlen;
	char msg[128];
	int ok, got, fam;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fam = strchr(cases[i].src, ':') ? 6 : 4;
		len = ck_syn(in, &cases[i].lay, cases[i].src, NULL, fam == 4 ? 1460 : 1440);
		ck_prime(x, cases[i].src, NULL);
		got = run_counted(x, in, len, out, &outlen,
				  cases[i].want == MOAT_VERDICT_TX ? MOAT_STAT_SYN_COOKIE : MOAT_STAT_PASS,
				  msg, sizeof(msg), &ok);
		if (got != cases[i].want || !ok)
			fail_msg("%s: verdict %d (want %d), %s", cases[i].name, got, cases[i].want,
				 ok ? "counters right" : msg);
		if (got == MOAT_VERDICT_TX) {
			ck_check_at(in, out, outlen, fam, tf_l3off(&cases[i].lay),
				    fam == 4 ? 1460 : 1440);
		} else if (outlen != len || memcmp(in, out, len)) {
			fail_msg("%s: passed, but the frame was changed", cases[i].name);
		}
	}
}

/* ck_mss - the MSS a cookie SYN-ACK offers: syn_cookie_mss (IPv6 20 less),
 * never more than the class of the client's MSS the cookie encodes (the
 * kernel's tables: 536 1300 1440 1460 and 1220 1420 1440 8940; 536 and
 * 1220 without an option) */
static void ck_mss(struct moat_xdp *x, uint16_t cfg_mss)
{
	static const struct { const char *src; uint16_t mss, cls; } cases[] = {
		{ "192.0.2.13", 0, 536 },
		{ "192.0.2.13", 500, 536 },     /* below the table: its first class */
		{ "192.0.2.13", 536, 536 },
		{ "192.0.2.13", 1299, 536 },
		{ "192.0.2.13", 1300, 1300 },
		{ "192.0.2.13", 1400, 1300 },
		{ "192.0.2.13", 1452, 1440 },
		{ "192.0.2.13", 1460, 1460 },
		{ "192.0.2.13", 9000, 1460 },
		{ "2001:db8:100:1::5", 0, 1220 },
		{ "2001:db8:100:1::5", 1300, 1220 },
		{ "2001:db8:100:1::5", 1420, 1420 },
		{ "2001:db8:100:1::5", 1440, 1440 },
		{ "2001:db8:100:1::5", 8960, 8940 },
	};
	static const struct tframe plain;
	uint8_t in[TF_MAX], out[TF_MAX];
	size_t len, outlen;
	uint32_t isn_none = 0, isn;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fam = strchr(cases[i].src, ':') ? 6 : 4;
		uint16_t most = (uint16_t)(fam == 4 ? cfg_mss : cfg_mss - 20);
		uint16_t want = cases[i].cls < most ? cases[i].cls : most;

		len = ck_syn(in, &plain, cases[i].src, NULL, cases[i].mss);
		ck_prime(x, cases[i].src, NULL);
		if (run(x, in, len, out, &outlen) != MOAT_VERDICT_TX)
			fail_msg("%s MSS %u: no cookie", cases[i].src, cases[i].mss);
		isn = ck_check(in, out, outlen, fam, want);
		/* the class is in the cookie: another class, another ISN */
		if (i == 0)
			isn_none = isn;
		else if (fam == 4 && cases[i].cls == 1460 && isn == isn_none)
			fail_msg("MSS %u: the cookie of a SYN without MSS", cases[i].mss);
	}
}

/* ck_auto_windows - auto mode across windows of a second (threshold 3,
 * one CPU): below the threshold the kernel's; over it cookies, through
 * the next window too (the one before counted more); a window after a
 * quiet one the kernel's again; and after a gap of more than a window,
 * whatever the last window counted */
static void ck_auto_windows(void)
{
	static const struct { int sleep_ms, stat; } steps[] = {
		/* window 1: three to the kernel, then cookies */
		{ 0, MOAT_STAT_PASS }, { 0, MOAT_STAT_PASS }, { 0, MOAT_STAT_PASS },
		{ 0, MOAT_STAT_SYN_COOKIE }, { 0, MOAT_STAT_SYN_COOKIE },
		/* window 2: the one before had 5 > 3: cookies from the first
		 * SYN (which is this second's keep SYN), 2 SYNs in all */
		{ 1100, MOAT_STAT_SYN_COOKIE_KEEP }, { 0, MOAT_STAT_SYN_COOKIE },
		/* window 3: the one before had 2: the kernel's again, until
		 * this one counts 4 */
		{ 1100, MOAT_STAT_PASS }, { 0, MOAT_STAT_PASS }, { 0, MOAT_STAT_PASS },
		{ 0, MOAT_STAT_SYN_COOKIE },
		/* more than a window later: window 3's 4 SYNs are not the
		 * last window's */
		{ 2200, MOAT_STAT_PASS },
	};
	struct moat_xdp_opts o;
	struct moat_xdp *x;
	uint8_t in[TF_MAX];
	size_t len;
	char msg[128];
	int ok, got;

	default_opts(&o);
	o.syn_cookies = MOAT_SYN_COOKIES_AUTO;
	o.cookie_threshold = 3;
	x = open_x(&o);
	len = syn_from(in, "192.0.2.13", 25);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (steps[i].sleep_ms)
			usleep((useconds_t)steps[i].sleep_ms * 1000);
		if (steps[i].stat == MOAT_STAT_SYN_COOKIE_KEEP) {
			/* the keep SYN is counted keep and pass */
			uint64_t a[MOAT_STAT__MAX], b[MOAT_STAT__MAX];

			assert_int_equal(moat_xdp_read_stats(x, a), 0);
			got = run(x, in, len, NULL, NULL);
			assert_int_equal(moat_xdp_read_stats(x, b), 0);
			ok = b[MOAT_STAT_SYN_COOKIE_KEEP] - a[MOAT_STAT_SYN_COOKIE_KEEP] == 1;
			snprintf(msg, sizeof(msg), "keep +%llu",
				 (unsigned long long)(b[MOAT_STAT_SYN_COOKIE_KEEP] -
						      a[MOAT_STAT_SYN_COOKIE_KEEP]));
		} else {
			got = run_counted(x, in, len, NULL, NULL, steps[i].stat, msg, sizeof(msg), &ok);
		}
		if (!ok || got != (steps[i].stat == MOAT_STAT_SYN_COOKIE ? MOAT_VERDICT_TX
									 : MOAT_VERDICT_PASS))
			fail_msg("auto step %zu: verdict %d, %s", i, got, ok ? "counters right" : msg);
	}
	moat_xdp_close(x);
}

/* tcp_listen - a listening TCP socket on addr port 25 in this namespace
 * (the cookie path answers only where a listener would take the SYN) */
static int tcp_listen(const char *addr)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	int one = 1, fd;

	if (strchr(addr, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(25);
		assert_int_equal(inet_pton(AF_INET6, addr, &a->sin6_addr), 1);
		sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(25);
		assert_int_equal(inet_pton(AF_INET, addr, &a->sin_addr), 1);
		sl = sizeof(*a);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 16) != 0)
		fail_msg("listen on %s port 25: %s", addr, strerror(errno));
	return fd;
}

/* time_wait - a TIME_WAIT socket of 192.0.2.15:40000 -> 198.18.1.1:25 on
 * the listener's side (lfd): connect, the server closes first */
static void time_wait(int lfd)
{
	struct sockaddr_in c = { .sin_family = AF_INET, .sin_port = htons(40000) };
	struct sockaddr_in d = { .sin_family = AF_INET, .sin_port = htons(25) };
	char b[8];
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), afd;

	inet_pton(AF_INET, "192.0.2.15", &c.sin_addr);
	inet_pton(AF_INET, "198.18.1.1", &d.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&c, sizeof(c)) != 0 ||
	    connect(fd, (struct sockaddr *)&d, sizeof(d)) != 0)
		fail_msg("connect for TIME_WAIT: %s", strerror(errno));
	afd = accept(lfd, NULL, NULL);
	assert_true(afd >= 0);
	close(afd);                          /* the server's FIN first */
	assert_int_equal(read(fd, b, sizeof(b)), 0);
	close(fd);                           /* the client's: server TIME_WAIT */
	usleep(100000);
}

/* test_syn_cookies - [xdp] syn_cookies through BPF_PROG_TEST_RUN, in a
 * network namespace of its own (net.ipv4.tcp_syncookies is per namespace;
 * the host's is left alone; the last test, so the rest ran in the host's):
 * on: a keep SYN a second to the kernel, then cookies (IPv4 and IPv6);
 * ALLOW, DROP and TARPIT sources as without; non-SYN segments pass; the
 * same SYN gets the same cookie, another source another one; frame
 * layouts (ck_layouts), the MSS offered (ck_mss); held and resumed at run
 * time; auto across its windows (ck_auto_windows); tcp_syncookies = 1:
 * loaded without cookies */
static void test_syn_cookies(void **state)
{
	/* each destination address is a listener of its own to the kernel
	 * (its own overflow stamp): each gets its keep SYN, the IPv6 one
	 * beside the IPv4 one, a second IPv4 address beside the first */
	static const struct { const char *src, *dst; int flags, want, stat; } on_steps[] = {
		{ "192.0.2.13", NULL, TF_SYN, MOAT_VERDICT_PASS, MOAT_STAT_SYN_COOKIE_KEEP }, /* this second's keep SYN */
		{ "192.0.2.13", NULL, TF_SYN, MOAT_VERDICT_TX, MOAT_STAT_SYN_COOKIE },
		{ "2001:db8:100:1::5", NULL, TF_SYN, MOAT_VERDICT_PASS, MOAT_STAT_SYN_COOKIE_KEEP },
		{ "2001:db8:100:1::5", NULL, TF_SYN, MOAT_VERDICT_TX, MOAT_STAT_SYN_COOKIE },
		{ "192.0.2.13", "198.18.1.7", TF_SYN, MOAT_VERDICT_PASS, MOAT_STAT_SYN_COOKIE_KEEP },
		{ "192.0.2.13", "198.18.1.7", TF_SYN, MOAT_VERDICT_TX, MOAT_STAT_SYN_COOKIE },
		{ "192.0.2.14", NULL, TF_SYN, MOAT_VERDICT_TX, MOAT_STAT_SYN_COOKIE },
		/* SYN with FIN or RST: the kernel's (it discards them) */
		{ "192.0.2.13", NULL, TF_SYN | TF_FIN, MOAT_VERDICT_PASS, MOAT_STAT_PASS },
		{ "192.0.2.13", NULL, TF_SYN | TF_RST, MOAT_VERDICT_PASS, MOAT_STAT_PASS },
		{ "192.0.2.12", NULL, TF_SYN, MOAT_VERDICT_PASS, MOAT_STAT_ALLOW },
		{ "2001:db8:200::1", NULL, TF_SYN, MOAT_VERDICT_PASS, MOAT_STAT_ALLOW },
		{ "192.0.2.10", NULL, TF_SYN, MOAT_VERDICT_DROP, MOAT_STAT_DROP },
		{ "192.0.2.11", NULL, TF_SYN, MOAT_VERDICT_TX, MOAT_STAT_TARPIT },
	};
	struct moat_xdp_opts o;
	struct moat_xdp *x;
	uint8_t in[TF_MAX], out[TF_MAX];
	size_t len, outlen;
	uint64_t a[MOAT_STAT__MAX], b[MOAT_STAT__MAX];
	uint32_t isn1 = 0, isn2, isn3;
	cpu_set_t one;
	char msg[128];
	int ok, got, lfd[3];

	(void)state;
	if (unshare(CLONE_NEWNET) != 0)
		fail_msg("unshare(CLONE_NEWNET): %s", strerror(errno));
	/* the keep SYN is per CPU: every run on one CPU */
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	assert_int_equal(write_file("/proc/sys/net/ipv4/tcp_syncookies", "2\n"), 0);
	/* the listeners the cookies stand in front of (test runs see this
	 * namespace's loopback as the ingress device); the sources' addresses
	 * for the TIME_WAIT case */
	if (system("ip link set lo up && ip addr add 198.18.1.1/32 dev lo && "
		   "ip addr add 198.18.1.7/32 dev lo && ip addr add 192.0.2.15/32 dev lo && "
		   "ip addr add 2001:db8:1::1/128 dev lo nodad") != 0)
		fail_msg("addresses on lo");
	lfd[0] = tcp_listen("198.18.1.1");
	lfd[1] = tcp_listen("198.18.1.7");
	lfd[2] = tcp_listen("2001:db8:1::1");
	default_opts(&o);
	o.syn_cookies = MOAT_SYN_COOKIES_ON;
	x = open_x(&o);
	assert_int_equal(moat_xdp_syn_cookies(x), MOAT_SYN_COOKIES_ON);
	for (size_t i = 0; i < sizeof(on_steps) / sizeof(on_steps[0]); i++) {
		len = syn_to(in, on_steps[i].src, on_steps[i].dst, 25, on_steps[i].flags);
		assert_int_equal(moat_xdp_read_stats(x, a), 0);
		got = run(x, in, len, out, &outlen);
		assert_int_equal(moat_xdp_read_stats(x, b), 0);
		if (got != on_steps[i].want)
			fail_msg("step %zu (%s): got %d, want %d", i, on_steps[i].src, got,
				 on_steps[i].want);
		if (b[on_steps[i].stat] - a[on_steps[i].stat] != 1)
			fail_msg("step %zu (%s): counter %s did not move", i, on_steps[i].src,
				 moat_xdp_stat_name((unsigned)on_steps[i].stat));
		if (on_steps[i].stat == MOAT_STAT_SYN_COOKIE) {
			/* no MSS option: 536 / 1220 (ck_mss) */
			uint32_t isn = ck_check(in, out, outlen, strchr(on_steps[i].src, ':') ? 6 : 4,
						strchr(on_steps[i].src, ':') ? 1220 : 536);

			if (!isn1)
				isn1 = isn;
			if (b[MOAT_STAT_PASS] != a[MOAT_STAT_PASS])
				fail_msg("step %zu: a cookie counted as pass", i);
		}
	}
	/* the same SYN, the same cookie (within the kernel's minute); the
	 * cookie is the kernel's hash, not the tarpit's */
	len = syn_from(in, "192.0.2.13", 25);
	assert_int_equal(run(x, in, len, out, &outlen), MOAT_VERDICT_TX);
	isn2 = ck_check(in, out, outlen, 4, 536);
	len = syn_from(in, "192.0.2.14", 25);
	assert_int_equal(run(x, in, len, out, &outlen), MOAT_VERDICT_TX);
	isn3 = ck_check(in, out, outlen, 4, 536);
	assert_int_equal(isn1, isn2);
	assert_int_not_equal(isn1, isn3);
	/* the client's ACK (any non-SYN) passes to the kernel */
	{
		struct tframe f = { .family = 4, .src = "192.0.2.13", .dst = "198.18.1.1",
				    .sport = 40000, .dport = 25, .flags = TF_ACK, .seq = 8 };

		len = tf_build(&f, in);
		assert_int_equal(run_counted(x, in, len, NULL, NULL, MOAT_STAT_NON_SYN, msg,
					     sizeof(msg), &ok), MOAT_VERDICT_PASS);
		if (!ok)
			fail_msg("the ACK: %s", msg);
	}
	/* another port than the filtered ones: untouched */
	len = syn_from(in, "192.0.2.13", 26);
	assert_int_equal(run(x, in, len, NULL, NULL), MOAT_VERDICT_PASS);
	/* no listener on the address: the kernel's (its RST), no cookie (the
	 * second SYN: the first to a new destination is its keep SYN) */
	len = syn_to(in, "192.0.2.13", "198.18.1.9", 25, TF_SYN);
	assert_int_equal(run(x, in, len, NULL, NULL), MOAT_VERDICT_PASS);
	assert_int_equal(run_counted(x, in, len, NULL, NULL, MOAT_STAT_PASS, msg, sizeof(msg), &ok),
			 MOAT_VERDICT_PASS);
	if (!ok)
		fail_msg("no listener: %s", msg);
	/* a SYN of a 4-tuple the listener's side holds in TIME_WAIT: the
	 * kernel's (it takes such a SYN itself; a cookie's ACK would land
	 * on the TIME_WAIT socket and the session hang); the same SYN from
	 * another source gets its cookie (positive control) */
	time_wait(lfd[0]);
	len = syn_from(in, "192.0.2.15", 25);
	assert_int_equal(run(x, in, len, NULL, NULL), MOAT_VERDICT_PASS); /* or the second's keep */
	assert_int_equal(run_counted(x, in, len, NULL, NULL, MOAT_STAT_PASS, msg, sizeof(msg), &ok),
			 MOAT_VERDICT_PASS);
	if (!ok)
		fail_msg("TIME_WAIT 4-tuple: %s", msg);
	len = syn_from(in, "192.0.2.16", 25);
	assert_int_equal(run(x, in, len, out, &outlen), MOAT_VERDICT_TX);
	ck_layouts(x);
	ck_mss(x, 1460);
	/* held at run time (moat-controld, tcp_syncookies not 2): every
	 * unlisted SYN the kernel's, counted pass, never keep; resumed:
	 * cookies again */
	assert_int_equal(moat_xdp_cookies_held(x), 0);
	assert_int_equal(moat_xdp_cookies_hold(x, 1), 0);
	assert_int_equal(moat_xdp_cookies_held(x), 1);
	len = syn_from(in, "192.0.2.13", 25);
	for (int i = 0; i < 3; i++) {
		got = run_counted(x, in, len, NULL, NULL, MOAT_STAT_PASS, msg, sizeof(msg), &ok);
		if (got != MOAT_VERDICT_PASS || !ok)
			fail_msg("held, SYN %d: verdict %d, %s", i, got, ok ? "counters right" : msg);
	}
	assert_int_equal(moat_xdp_cookies_hold(x, 0), 0);
	assert_int_equal(moat_xdp_cookies_held(x), 0);
	ck_prime(x, "192.0.2.13", NULL);
	moat_xdp_close(x);

	/* syn_cookie_mss 1300: the most any SYN-ACK offers (IPv6 1280) */
	default_opts(&o);
	o.syn_cookies = MOAT_SYN_COOKIES_ON;
	o.cookie_mss = 1300;
	x = open_x(&o);
	ck_mss(x, 1300);
	moat_xdp_close(x);

	ck_auto_windows();

	/* tcp_syncookies = 1: the listener would refuse moat's cookies */
	assert_int_equal(write_file("/proc/sys/net/ipv4/tcp_syncookies", "1\n"), 0);
	default_opts(&o);
	o.syn_cookies = MOAT_SYN_COOKIES_ON;
	x = open_x(&o);
	assert_int_equal(moat_xdp_syn_cookies(x), MOAT_SYN_COOKIES_OFF);
	assert_int_equal(moat_xdp_cookies_hold(x, 1), -EOPNOTSUPP);
	for (int i = 0; i < 3; i++)
		assert_int_equal(run_counted(x, in, len, NULL, NULL, MOAT_STAT_PASS, msg, sizeof(msg),
					     &ok), MOAT_VERDICT_PASS);
	moat_xdp_close(x);
}

static void test_rate_limits(void **state)
{
	static const struct { const char *src; int want; } steps[] = {
		{ "198.51.100.1", MOAT_VERDICT_TX },        /* /24 budget: burst 2 */
		{ "198.51.100.1", MOAT_VERDICT_TX },
		{ "198.51.100.1", MOAT_VERDICT_DROP },      /* over the /24 limit */
		{ "198.51.100.200", MOAT_VERDICT_DROP },    /* same /24 */
		{ "192.0.2.11", MOAT_VERDICT_TX },          /* other /24: 3rd of global 4 */
		{ "2001:db8:100:2::1", MOAT_VERDICT_TX },   /* 4th of global burst */
		{ "2001:db8:100:3::1", MOAT_VERDICT_DROP }, /* global budget spent */
	};
	struct moat_xdp_opts o;
	struct moat_xdp *x;
	uint8_t in[TF_MAX];
	uint64_t st[MOAT_STAT__MAX];

	(void)state;
	moat_xdp_opts_default(&o);
	o.tarpit_src_pps = 1;
	o.tarpit_src_burst = 2;
	o.tarpit_global_pps = 1;
	o.tarpit_global_burst = 4;
	x = open_x(&o);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		size_t len = syn_from(in, steps[i].src, 25);
		int got = run(x, in, len, NULL, NULL);

		if (got != steps[i].want)
			fail_msg("step %zu (%s): got %d, want %d", i, steps[i].src,
				 got, steps[i].want);
	}
	assert_int_equal(moat_xdp_read_stats(x, st), 0);
	assert_int_equal(st[MOAT_STAT_TARPIT], 4);
	assert_int_equal(st[MOAT_STAT_TARPIT_LIMITED], 3);
	moat_xdp_close(x);

	/* rate 0: a tarpit source is only ever dropped */
	moat_xdp_opts_default(&o);
	o.tarpit_src_pps = 0;
	x = open_x(&o);
	assert_int_equal(run(x, in, syn_from(in, "198.51.100.1", 25), NULL, NULL), MOAT_VERDICT_DROP);
	moat_xdp_close(x);
}

static void test_port_set(void **state)
{
	struct moat_xdp_opts o;
	struct moat_xdp *x;
	uint8_t in[TF_MAX];
	uint64_t st[MOAT_STAT__MAX];

	(void)state;
	default_opts(&o);
	o.ports[0] = 25;
	o.ports[1] = 587;
	o.n_ports = 2;
	x = open_x(&o);
	assert_int_equal(run(x, in, syn_from(in, "192.0.2.10", 587), NULL, NULL), MOAT_VERDICT_DROP);
	assert_int_equal(run(x, in, syn_from(in, "192.0.2.10", 465), NULL, NULL), MOAT_VERDICT_PASS);
	assert_int_equal(run(x, in, syn_from(in, "192.0.2.10", 25), NULL, NULL), MOAT_VERDICT_DROP);
	assert_int_equal(run(x, in, syn_from(in, "192.0.2.10", 25), NULL, NULL), MOAT_VERDICT_DROP);
	assert_int_equal(moat_xdp_read_port_stats(x, 1, st), 0);
	assert_int_equal(st[MOAT_STAT_DROP], 1);
	assert_int_equal(moat_xdp_read_port_stats(x, 0, st), 0);
	assert_int_equal(st[MOAT_STAT_DROP], 2);
	assert_int_equal(moat_xdp_read_stats(x, st), 0);
	assert_int_equal(st[MOAT_STAT_DROP], 3);
	assert_int_equal(st[MOAT_STAT_NOT_SMTP], 1);
	assert_int_equal(moat_xdp_read_port_stats(x, 2, st), -EINVAL);
	moat_xdp_close(x);

	/* bad knobs are refused at start-up */
	default_opts(&o);
	o.n_ports = 0;
	assert_int_equal(moat_xdp_open(&o, &x), -EINVAL);
	default_opts(&o);
	o.ports[0] = 0;
	assert_int_equal(moat_xdp_open(&o, &x), -EINVAL);
}

struct ev_acc {
	int n;
	struct moat_event last;
};

static void on_ev(void *ud, const struct moat_event *e)
{
	struct ev_acc *a = ud;

	a->n++;
	a->last = *e;
}

static void test_events(void **state)
{
	static const uint8_t want4[4] = { 192, 0, 2, 10 };
	struct moat_xdp_opts o;
	struct moat_xdp *x;
	struct ev_acc acc = { 0 };
	uint8_t in[TF_MAX];
	uint64_t st[MOAT_STAT__MAX];

	(void)state;
	default_opts(&o);
	o.event_sample = 1;   /* every refused SYN ... */
	o.event_max_pps = 3;  /* ... burst 3, then limited */
	x = open_x(&o);
	assert_true(moat_xdp_events_fd(x) >= 0);
	/* an unlisted SYN is not reported */
	run(x, in, syn_from(in, "192.0.2.13", 25), NULL, NULL);
	assert_int_equal(moat_xdp_poll_events(x, 0, on_ev, &acc), 0);
	assert_int_equal(acc.n, 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(run(x, in, syn_from(in, "192.0.2.10", 25), NULL, NULL), MOAT_VERDICT_DROP);
	assert_true(moat_xdp_poll_events(x, 100, on_ev, &acc) >= 0);
	assert_int_equal(acc.n, 3);
	assert_int_equal(acc.last.family, 4);
	assert_int_equal(acc.last.stat, MOAT_STAT_DROP);
	assert_int_equal(acc.last.action, MOAT_ACT_DROP);
	assert_int_equal(acc.last.dport, 25);
	assert_memory_equal(acc.last.saddr, want4, 4);
	assert_int_equal(moat_xdp_read_stats(x, st), 0);
	assert_int_equal(st[MOAT_STAT_EVENT_LOST], 2);
	moat_xdp_close(x);

	/* sample 4: drops in quick succession double the row's gap up to
	 * 4: the 1st, 2nd, 4th and 8th of nine are reported (a run slowed
	 * past MOAT_XDP_EVENT_QUIET_NS resets the gap: more, never fewer).
	 * Counts are per CPU, so the runs stay on one. */
	cpu_set_t one, all;
	uint64_t t0, t1;
	assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	default_opts(&o);
	o.event_sample = 4;
	x = open_x(&o);
	acc.n = 0;
	t0 = moat_clock_ns();
	for (int i = 0; i < 9; i++)
		run(x, in, syn_from(in, "192.0.2.10", 25), NULL, NULL);
	t1 = moat_clock_ns();
	assert_true(moat_xdp_poll_events(x, 100, on_ev, &acc) >= 0);
	if (t1 - t0 < (uint64_t)MOAT_XDP_EVENT_QUIET_NS / 2)
		assert_int_equal(acc.n, 4);
	else
		assert_in_range(acc.n, 4, 9);
	moat_xdp_close(x);

	/* a low rate: drops further apart than MOAT_XDP_EVENT_QUIET_NS are
	 * each reported, whatever the flood cap */
	default_opts(&o);
	o.event_sample = 4096;
	x = open_x(&o);
	acc.n = 0;
	for (int i = 0; i < 3; i++) {
		struct timespec gap = { 0, 3 * (long)MOAT_XDP_EVENT_QUIET_NS };

		run(x, in, syn_from(in, "192.0.2.10", 25), NULL, NULL);
		nanosleep(&gap, NULL);
	}
	assert_true(moat_xdp_poll_events(x, 100, on_ev, &acc) >= 0);
	assert_int_equal(acc.n, 3);
	moat_xdp_close(x);
	assert_int_equal(sched_setaffinity(0, sizeof(all), &all), 0);
	o.event_sample = 3;   /* not a power of two */
	assert_int_equal(moat_xdp_open(&o, &x), -EINVAL);

	/* sample 0: nothing reported */
	default_opts(&o);
	o.event_sample = 0;
	x = open_x(&o);
	acc.n = 0;
	run(x, in, syn_from(in, "192.0.2.10", 25), NULL, NULL);
	assert_int_equal(moat_xdp_poll_events(x, 0, on_ev, &acc), 0);
	assert_int_equal(acc.n, 0);
	moat_xdp_close(x);
}

static void test_publish(void **state)
{
	enum { N = 10000 };
	struct moat_xdp_opts o;
	struct moat_xdp *x;
	struct moat_update *u = calloc(2 * N + 4, sizeof(*u));
	int fd_t, fd_g, fd_v6;
	size_t n = 0;
	__u32 v;
	struct moat_group g;
	uint8_t in[TF_MAX];

	(void)state;
	assert_non_null(u);
	default_opts(&o);
	x = open_x(&o);
	o.groups_max = 1024;
	/* more than one batch chunk of groups, then the tbl24 entries */
	for (__u32 i = 0; i < N; i++) {
		u[n].kind = MOAT_UPD_GROUP;
		u[n].index = i % 1000;
		memset(&u[n].u.group, 0, sizeof(u[n].u.group));
		moat_group_set(&u[n].u.group, (__u8)i, MOAT_ACT_DROP);
		n++;
	}
	for (__u32 i = 0; i < N; i++) {
		u[n].kind = MOAT_UPD_TBL24;
		u[n].index = 0x0a0000 + i;
		u[n].value = moat_tbl24_make_group(i % 1000);
		n++;
	}
	assert_int_equal(moat_xdp_publish(x, u, n), 0);
	fd_t = moat_xdp_map_fd(x, "tbl24");
	fd_g = moat_xdp_map_fd(x, "groups");
	fd_v6 = moat_xdp_map_fd(x, "v6_rules");
	assert_true(fd_t >= 0 && fd_g >= 0 && fd_v6 >= 0);
	/* tbl24 through the map (one value, all 2^24 entries) and through the
	 * mapping */
	struct moat_tbl24 *all = malloc(sizeof(*all));
	assert_non_null(all);
	v = 0;
	assert_int_equal(bpf_map_lookup_elem(fd_t, &v, all), 0);
	assert_int_equal(all->e[0x0a0000 + 4321], moat_tbl24_make_group(321));
	free(all);
	assert_int_equal(moat_xdp_tbl24(x)[0x0a0000 + 4321], moat_tbl24_make_group(321));
	/* groups: one value, read through a mapping of it */
	const struct moat_group *gm = mmap(NULL, 1000 * sizeof(g), PROT_READ,
					   MAP_SHARED, fd_g, 0);
	assert_true(gm != MAP_FAILED);
	g = gm[321];
	munmap((void *)gm, 1000 * sizeof(g));
	/* the last write to group 321 (i = 9321) wins, earlier ones are gone */
	assert_int_equal(moat_group_get(&g, (__u8)9321), MOAT_ACT_DROP);
	assert_int_equal(moat_group_get(&g, (__u8)321), MOAT_ACT_PASS);
	/* and the program sees it: 10.16.225.(9321 & 255) */
	assert_int_equal(run(x, in, syn_from(in, "10.16.225.105", 25), NULL, NULL), MOAT_VERDICT_DROP);
	assert_int_equal(run(x, in, syn_from(in, "10.16.225.106", 25), NULL, NULL), MOAT_VERDICT_PASS);

	/* IPv6 deletes, one of them of an absent key */
	n = 0;
	u[n].kind = MOAT_UPD_V6_DEL;
	u[n].u.key.plen = 64;
	inet_pton(AF_INET6, "2001:db8:100:1::", u[n].u.key.addr);
	n++;
	u[n].kind = MOAT_UPD_V6_DEL;
	u[n].u.key.plen = 96;
	inet_pton(AF_INET6, "2001:db8:999::", u[n].u.key.addr);
	n++;
	assert_int_equal(moat_xdp_publish(x, u, n), 0);
	assert_int_equal(run(x, in, syn_from(in, "2001:db8:100:1::9", 25), NULL, NULL), MOAT_VERDICT_TX);

	/* out of range updates are refused, the prefix stays applied */
	n = 0;
	u[n].kind = MOAT_UPD_TBL24;
	u[n].index = 0x0b0000;
	u[n].value = MOAT_ACT_DROP;
	n++;
	u[n].kind = MOAT_UPD_GROUP;
	u[n].index = 5000;
	n++;
	assert_int_equal(moat_xdp_publish(x, u, n), -ERANGE);
	assert_int_equal(run(x, in, syn_from(in, "11.0.0.1", 25), NULL, NULL), MOAT_VERDICT_DROP);
	u[0].kind = 99;
	assert_int_equal(moat_xdp_publish(x, u, 1), -EINVAL);
	u[0].kind = MOAT_UPD_TBL24;
	u[0].index = MOAT_TBL24_ENTRIES;
	assert_int_equal(moat_xdp_publish(x, u, 1), -ERANGE);
	u[0].index = 5;
	u[0].value = moat_tbl24_make_group(1024);   /* past groups_max */
	assert_int_equal(moat_xdp_publish(x, u, 1), -ERANGE);

	/* through the control plane's interface */
	struct moat_fastpath fp;
	uint64_t st[MOAT_STAT__MAX];

	assert_int_equal(moat_xdp_fastpath(x, &fp), 0);
	assert_string_equal(fp.name, "xdp");
	assert_int_equal(fp.read_stats(fp.ctx, st), 0);
	assert_true(st[MOAT_STAT_DROP] >= 2);
	fp.close(fp.ctx);
	free(u);
}

/* v6u - IPv6 update kind of addr/plen with action act */
static struct moat_update v6u(__u32 kind, const char *addr, __u8 plen, __u32 act)
{
	struct moat_update u;

	memset(&u, 0, sizeof(u));
	u.kind = kind;
	u.u.key.plen = plen;
	assert_int_equal(inet_pton(AF_INET6, addr, u.u.key.addr), 1);
	u.value = act;
	return u;
}

/*
 * A trie lookup reads the entries of shorter rules before longer ones, so
 * between two IPv6 changes of increasing length the publish waits for
 * the programs running (moat_trie6.h PUBLISHING).  Without it a lookup of
 * an address in the /56 below could read the /40's entry before its
 * delete and the /56's after its delete: DROP, which neither table gives
 * (old: the /56's ALLOW, new: the /32's ALLOW).  Puts come longest first
 * and wait for none.
 */
static void test_v6_length_graces(void **state)
{
	struct moat_xdp_opts o;
	struct moat_xdp *x;
	uint8_t in[TF_MAX];
	uint64_t g;
	struct moat_update old[2] = {
		v6u(MOAT_UPD_V6_PUT, "2001:db8:0:100::", 56, MOAT_ACT_ALLOW),
		v6u(MOAT_UPD_V6_PUT, "2001:db8::", 40, MOAT_ACT_DROP),
	};
	struct moat_update diff[3] = {
		v6u(MOAT_UPD_V6_PUT, "2001:db8::", 32, MOAT_ACT_ALLOW),
		v6u(MOAT_UPD_V6_DEL, "2001:db8::", 40, 0),
		v6u(MOAT_UPD_V6_DEL, "2001:db8:0:100::", 56, 0),
	};
	struct moat_update puts[3] = {
		v6u(MOAT_UPD_V6_PUT, "2001:db8:1:2::7", 128, MOAT_ACT_DROP),
		v6u(MOAT_UPD_V6_PUT, "2001:db8:1:3::", 64, MOAT_ACT_DROP),
		v6u(MOAT_UPD_V6_PUT, "2001:db8:1::", 48, MOAT_ACT_TARPIT),
	};

	(void)state;
	default_opts(&o);
	x = open_x(&o);
	/* open_x's table: its first IPv6 change waited once (a former loader
	 * may have died inside a publish), its puts, longest first, no more */
	g = moat_xdp_len_grace_count(x);
	assert_int_equal(g, 1);
	assert_int_equal(moat_xdp_publish(x, old, 2), 0);
	assert_int_equal(moat_xdp_len_grace_count(x), g);   /* 56, then 40 */
	assert_int_equal(run(x, in, syn_from(in, "2001:db8:0:100::7", 25), NULL, NULL), XDP_PASS);
	assert_int_equal(run(x, in, syn_from(in, "2001:db8:0:200::7", 25), NULL, NULL), XDP_DROP);
	/* 32, 40, 56: a grace period before the /40 and before the /56 */
	assert_int_equal(moat_xdp_publish(x, diff, 3), 0);
	assert_int_equal(moat_xdp_len_grace_count(x), g + 2);
	assert_int_equal(run(x, in, syn_from(in, "2001:db8:0:100::7", 25), NULL, NULL), XDP_PASS);
	assert_int_equal(run(x, in, syn_from(in, "2001:db8:0:200::7", 25), NULL, NULL), XDP_PASS);
	/* the same diff in three publishes: one sequence, the same waits */
	/* (a grace period at a publish's end, for storage freed, also
	 * separates two changes: either kind counts here) */
	assert_int_equal(moat_xdp_publish(x, old, 2), 0);
	g = moat_xdp_grace_count(x);
	for (int i = 0; i < 3; i++)
		assert_int_equal(moat_xdp_publish(x, &diff[i], 1), 0);
	assert_true(moat_xdp_grace_count(x) >= g + 2);
	/* longest first: none */
	g = moat_xdp_len_grace_count(x);
	assert_int_equal(moat_xdp_publish(x, puts, 3), 0);
	assert_int_equal(moat_xdp_len_grace_count(x), g);
	assert_int_equal(run(x, in, syn_from(in, "2001:db8:1:2::7", 25), NULL, NULL), XDP_DROP);
	assert_int_equal(run(x, in, syn_from(in, "2001:db8:1:3::9", 25), NULL, NULL), XDP_DROP);
	assert_int_equal(run(x, in, syn_from(in, "2001:db8:1:4::9", 25), NULL, NULL), XDP_TX);
	moat_xdp_close(x);
}

/* plens_write - store b as the v6_plens map's one element */
static void plens_write(int fd, const struct moat_v6_plens_buf *b)
{
	__u32 zero = 0;

	assert_int_equal(bpf_map_update_elem(fd, &zero, b, 0), 0);
}

/* test_plens_flip - the program reads IPv6 from the trie (moat_trie6.h),
 * not from the per-length rules: no plens set or flip, valid or garbage,
 * changes a verdict; moat_xdp_publish still keeps the double buffer (fills
 * the inactive slot, flips, and waits out the grace period before
 * refilling the slot a flip retired) for the rules by key. */
static void test_plens_flip(void **state)
{
	static const struct moat_v6_plens all = { 3, { 128, 64, 48 } };
	static const struct moat_v6_plens only48 = { 1, { 48 } };
	struct moat_xdp_opts o;
	struct moat_xdp *x;
	struct moat_v6_plens_buf b, b2;
	struct moat_update u[2];
	uint64_t g1;
	uint8_t in[TF_MAX];
	size_t len;
	__u32 zero = 0, sel;
	int fd;

	(void)state;
	default_opts(&o);
	x = open_x(&o);
	fd = moat_xdp_map_fd(x, "v6_plens");
	assert_true(fd >= 0);
	/* 2001:db8:100:1::9: the /64 says DROP, the /48 under it TARPIT */
	len = syn_from(in, "2001:db8:100:1::9", 25);
	assert_int_equal(bpf_map_lookup_elem(fd, &zero, &b), 0);
	sel = b.sel & 1;
	assert_memory_equal(&b.slot[sel], &all, sizeof(all));
	assert_int_equal(run(x, in, len, NULL, NULL), MOAT_VERDICT_DROP);

	/* a new set in the inactive slot: not read before the flip */
	b.slot[sel ^ 1] = only48;
	plens_write(fd, &b);
	assert_int_equal(run(x, in, len, NULL, NULL), MOAT_VERDICT_DROP);
	/* the flip: the trie still has the /64, which decides */
	b.sel = sel ^ 1;
	plens_write(fd, &b);
	assert_int_equal(run(x, in, len, NULL, NULL), MOAT_VERDICT_DROP);
	/* garbage in the plens is never read */
	memset(&b.slot[sel], 0xff, sizeof(b.slot[sel]));
	plens_write(fd, &b);
	assert_int_equal(run(x, in, len, NULL, NULL), MOAT_VERDICT_DROP);
	/* flip back onto a valid set */
	b.slot[sel] = all;
	b.sel = sel;
	plens_write(fd, &b);
	assert_int_equal(run(x, in, len, NULL, NULL), MOAT_VERDICT_DROP);

	/* moat_xdp_publish: two plens changes = two flips, the second one
	 * refills the slot the first retired without a grace period (no BPF
	 * program reads v6_plens: the XDP program reads the trie) */
	memset(u, 0, sizeof(u));
	u[0].kind = MOAT_UPD_V6_PLENS;
	u[0].u.plens = only48;
	u[1].kind = MOAT_UPD_V6_PLENS;
	u[1].u.plens = all;
	u[1].u.plens.n = 2; /* { 128, 64 }: the /64 decides again */
	assert_int_equal(moat_xdp_publish(x, u, 1), 0);
	assert_int_equal(bpf_map_lookup_elem(fd, &zero, &b2), 0);
	assert_int_equal(b2.sel & 1, sel ^ 1);
	assert_memory_equal(&b2.slot[sel ^ 1], &only48, sizeof(only48));
	assert_memory_equal(&b2.slot[sel], &all, sizeof(all)); /* untouched */
	assert_int_equal(run(x, in, len, NULL, NULL), MOAT_VERDICT_DROP);
	g1 = moat_xdp_grace_count(x);
	assert_int_equal(moat_xdp_publish(x, u + 1, 1), 0);
	/* the refill did not wait (before the trie it waited one grace
	 * period here) */
	assert_int_equal(moat_xdp_grace_count(x), g1);
	assert_int_equal(bpf_map_lookup_elem(fd, &zero, &b2), 0);
	assert_int_equal(b2.sel & 1, sel);
	assert_int_equal(b2.slot[sel].n, 2);
	assert_int_equal(run(x, in, len, NULL, NULL), MOAT_VERDICT_DROP);
	moat_xdp_close(x);
}

static char pin_base[64], pin_dir[80];

/* the wide root's two parts (moat_trie6.h: 2000::/3 at 24 bits, the rest
 * at 16) in the kernel: rules of /1 and /3 over both parts, /4, /16, /24
 * and /128 on either side of 2000::/3, SYNs from the addresses at its
 * boundaries; then the /1 deleted */
static struct moat_update v6u(__u32 kind, const char *addr, __u8 plen, __u32 act);

static void test_wide_root_parts(void **state)
{
	static const struct { const char *a; __u8 plen; __u32 act; } rules[] = {
		{ "::", 1, MOAT_ACT_DROP },
		{ "2000::", 3, MOAT_ACT_ALLOW },
		{ "3000::", 4, MOAT_ACT_DROP },
		{ "1fff::", 16, MOAT_ACT_ALLOW },
		{ "1fff:ff00::", 24, MOAT_ACT_DROP },
		{ "3fff:ff00::", 24, MOAT_ACT_ALLOW },
		{ "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128, MOAT_ACT_DROP },
		{ "4000::", 3, MOAT_ACT_DROP },
		{ "4000::", 128, MOAT_ACT_ALLOW },
		{ "e000::", 3, MOAT_ACT_DROP },
	};
	/* verdicts with the /1, then without it */
	static const struct { const char *src; int with, without; } at[] = {
		{ "1ffe::1", MOAT_VERDICT_DROP, MOAT_VERDICT_PASS },
		{ "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", MOAT_VERDICT_DROP, MOAT_VERDICT_DROP },
		{ "1fff:fe00::1", MOAT_VERDICT_PASS, MOAT_VERDICT_PASS },
		{ "2000::", MOAT_VERDICT_PASS, MOAT_VERDICT_PASS },
		{ "2fff:ffff::1", MOAT_VERDICT_PASS, MOAT_VERDICT_PASS },
		{ "3000::", MOAT_VERDICT_DROP, MOAT_VERDICT_DROP },
		{ "3fff:fe00::1", MOAT_VERDICT_DROP, MOAT_VERDICT_DROP },
		{ "3fff:ff00::1", MOAT_VERDICT_PASS, MOAT_VERDICT_PASS },
		{ "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", MOAT_VERDICT_DROP, MOAT_VERDICT_DROP },
		{ "3fff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", MOAT_VERDICT_PASS, MOAT_VERDICT_PASS },
		{ "4000::", MOAT_VERDICT_PASS, MOAT_VERDICT_PASS },
		{ "4000::1", MOAT_VERDICT_DROP, MOAT_VERDICT_DROP },
		{ "7fff:ffff::1", MOAT_VERDICT_DROP, MOAT_VERDICT_PASS },
		{ "8000::1", MOAT_VERDICT_PASS, MOAT_VERDICT_PASS },
		{ "e000::1", MOAT_VERDICT_DROP, MOAT_VERDICT_DROP },
	};
	struct moat_update u[16];
	struct moat_xdp_opts o;
	struct moat_xdp *x;
	uint8_t in[TF_MAX];
	size_t n = 0;

	(void)state;
	default_opts(&o);
	open_v6_max = VT_TRIE6_WIDE_MIN;
	x = open_x(&o);
	open_v6_max = 64;
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		u[n++] = v6u(MOAT_UPD_V6_PUT, rules[i].a, rules[i].plen, rules[i].act);
	assert_int_equal(moat_xdp_publish(x, u, n), 0);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
			int want = pass ? at[i].without : at[i].with;
			int got = run(x, in, syn_from(in, at[i].src, 25), NULL, NULL);

			if (got != want)
				fail_msg("%s (%s the /1): verdict %d, want %d", at[i].src,
					 pass ? "without" : "with", got, want);
		}
		u[0] = v6u(MOAT_UPD_V6_DEL, "::", 1, 0);
		assert_int_equal(moat_xdp_publish(x, u, 1), 0);
	}
	moat_xdp_close(x);
}

/* rm_pins - remove the test's pin directory, whatever is in it */
static void rm_pins(void)
{
	char cmd[128];

	if (!pin_base[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pin_base);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", pin_base);
}

/* pinned_info - the info of the map pinned at path (asserted there) */
static void pinned_info(const char *path, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);
	int fd = bpf_obj_get(path);

	assert_true(fd >= 0);
	memset(info, 0, sizeof(*info));
	assert_int_equal(bpf_obj_get_info_by_fd(fd, info, &len), 0);
	close(fd);
}

/* repin - replace the map pinned at path by a new one of this shape (a
 * pin an earlier version left) */
static void repin(const char *path, enum bpf_map_type type, const char *name, __u32 value_size,
		  const struct bpf_map_create_opts *mo)
{
	int fd;

	assert_int_equal(unlink(path), 0);
	fd = bpf_map_create(type, name, 4, value_size, 1, mo);
	assert_true(fd >= 0);
	assert_int_equal(bpf_obj_pin(fd, path), 0);
	close(fd);
}

/* pins_with_table - load with o (pins in o->pin_dir), publish the test
 * table, one DROP through it, close: the pins a loader leaves */
static void pins_with_table(struct moat_xdp_opts *o)
{
	struct moat_update u[16];
	size_t n = tests_table_updates(u);
	struct moat_xdp *x;
	uint8_t in[TF_MAX];

	o->groups_max = 1024;
	o->v6_max = 64;
	assert_int_equal(moat_xdp_open(o, &x), 0);
	assert_int_equal(moat_xdp_publish(x, u, n), 0);
	assert_int_equal(run(x, in, syn_from(in, "192.0.2.10", 25), NULL, NULL), MOAT_VERDICT_DROP);
	moat_xdp_close(x);
}

static void test_pinned_reopen(void **state)
{
	struct moat_xdp_opts o;
	struct moat_xdp *x;
	struct moat_update u[16];
	size_t n = tests_table_updates(u);
	uint8_t in[TF_MAX];
	uint64_t st[MOAT_STAT__MAX];

	(void)state;
	snprintf(pin_base, sizeof(pin_base), "/sys/fs/bpf/moat-test-%d", (int)getpid());
	snprintf(pin_dir, sizeof(pin_dir), "%s/pins", pin_base);
	atexit(rm_pins);
	default_opts(&o);
	o.pin_dir = pin_dir;
	pins_with_table(&o);

	/* a new loader finds table and counters in the pinned maps */
	assert_int_equal(moat_xdp_read_pinned_stats(pin_dir, st), 0);
	assert_int_equal(st[MOAT_STAT_DROP], 1);
	assert_int_equal(moat_xdp_open(&o, &x), 0);
	assert_int_equal(run(x, in, syn_from(in, "192.0.2.10", 25), NULL, NULL), MOAT_VERDICT_DROP);
	assert_int_equal(run(x, in, syn_from(in, "2001:db8:100:1::9", 25), NULL, NULL), MOAT_VERDICT_DROP);
	assert_int_equal(moat_xdp_read_stats(x, st), 0);
	assert_int_equal(st[MOAT_STAT_DROP], 3);
	assert_int_equal(moat_xdp_detach(x, "lo"), -ENOENT);
	moat_xdp_close(x);

	/* the IPv6 trie a loader left: emptied behind v6_rules's back (a
	 * loader that died mid-publish, or pins from before the trie), the
	 * next loader brings it back to v6_rules; its writer then works on
	 * (the /64 deleted: the /48 under it, TARPIT, decides) */
	{
		char rp[128];
		int rfd;
		void *root;

		snprintf(rp, sizeof(rp), "%s/v6t_root", pin_dir);
		rfd = bpf_obj_get(rp);
		assert_true(rfd >= 0);
		root = mmap(NULL, MOAT_V6T_ROOT_ENTRIES * 4, PROT_READ | PROT_WRITE,
			    MAP_SHARED, rfd, 0);
		assert_true(root != MAP_FAILED);
		memset(root, 0, MOAT_V6T_ROOT_ENTRIES * 4);
		munmap(root, MOAT_V6T_ROOT_ENTRIES * 4);
		close(rfd);
	}
	assert_int_equal(moat_xdp_open(&o, &x), 0);
	assert_int_equal(run(x, in, syn_from(in, "2001:db8:100:1::9", 25), NULL, NULL), MOAT_VERDICT_DROP);
	{
		struct moat_update d;

		memset(&d, 0, sizeof(d));
		d.kind = MOAT_UPD_V6_DEL;
		d.u.key.plen = 64;
		d.u.key.addr[0] = 0x20;
		d.u.key.addr[1] = 0x01;
		d.u.key.addr[2] = 0x0d;
		d.u.key.addr[3] = 0xb8;
		d.u.key.addr[4] = 0x01;
		d.u.key.addr[7] = 0x01;
		assert_int_equal(moat_xdp_publish(x, &d, 1), 0);
	}
	assert_int_equal(run(x, in, syn_from(in, "2001:db8:100:1::9", 25), NULL, NULL), MOAT_VERDICT_TX);
	moat_xdp_close(x);

	/* events off, then a loader with events on adopts the counters: the
	 * rows the first one dropped on still report (fresh pins: no gap
	 * left from the drops above; one CPU: rows are per CPU) */
	static char pin_dir2[80];
	cpu_set_t one, all;
	struct ev_acc acc = { 0 };

	snprintf(pin_dir2, sizeof(pin_dir2), "%s/pins2", pin_base);
	o.pin_dir = pin_dir2;
	assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	o.event_sample = 0;
	assert_int_equal(moat_xdp_open(&o, &x), 0);
	assert_int_equal(moat_xdp_publish(x, u, n), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(run(x, in, syn_from(in, "192.0.2.10", 25), NULL, NULL), MOAT_VERDICT_DROP);
	moat_xdp_close(x);
	o.event_sample = 1024;
	assert_int_equal(moat_xdp_open(&o, &x), 0);
	assert_int_equal(run(x, in, syn_from(in, "192.0.2.10", 25), NULL, NULL), MOAT_VERDICT_DROP);
	assert_true(moat_xdp_poll_events(x, 100, on_ev, &acc) >= 0);
	assert_int_equal(acc.n, 1);
	assert_int_equal(acc.last.stat, MOAT_STAT_DROP);
	moat_xdp_close(x);
	assert_int_equal(sched_setaffinity(0, sizeof(all), &all), 0);
	o.pin_dir = pin_dir;

	/* other map sizes cannot reuse the pins: refused, not silently reset */
	o.groups_max = 2048;
	assert_true(moat_xdp_open(&o, &x) < 0);

	/* upgrades: a pinned wide root of the 2^24 entries it had before the
	 * split, or a root of the right entries in the layout before the
	 * skip bits (no tail), beside pins of this version: never read as
	 * this layout; the loader unpins the three v6t_* maps (the old set
	 * stays whole for a program still attached), makes new ones and
	 * rebuilds them from v6_rules: verdicts right after the load */
	{
		static char pin_dir3[80];
		static const __u32 old_root[] = {
			4u << 24,                                   /* before the split */
			MOAT_V6T_ROOT_ENTRIES_WIDE * 4u,            /* layout 1 */
		};
		char rp[128], np[128];
		LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = BPF_F_MMAPABLE);
		struct bpf_map_info info;
		__u32 nodes_id;

		snprintf(pin_dir3, sizeof(pin_dir3), "%s/pins3", pin_base);
		o.pin_dir = pin_dir3;
		o.groups_max = 1024;
		o.v6_max = VT_TRIE6_WIDE_MIN;
		assert_int_equal(moat_xdp_open(&o, &x), 0);
		assert_int_equal(moat_xdp_publish(x, u, n), 0);
		moat_xdp_close(x);
		snprintf(rp, sizeof(rp), "%s/v6t_root", pin_dir3);
		snprintf(np, sizeof(np), "%s/v6t_nodes", pin_dir3);
		for (size_t i = 0; i < sizeof(old_root) / sizeof(old_root[0]); i++) {
			repin(rp, BPF_MAP_TYPE_ARRAY, "v6t_root", old_root[i], &mo);
			pinned_info(np, &info);
			nodes_id = info.id;
			assert_int_equal(moat_xdp_open(&o, &x), 0);
			assert_int_equal(run(x, in, syn_from(in, "2001:db8:100:1::9", 25), NULL, NULL),
					 MOAT_VERDICT_DROP);
			assert_int_equal(run(x, in, syn_from(in, "2001:db8:100:1::5", 25), NULL, NULL),
					 MOAT_VERDICT_PASS);
			assert_int_equal(run(x, in, syn_from(in, "192.0.2.10", 25), NULL, NULL),
					 MOAT_VERDICT_DROP);
			/* pinned anew: the new root's size, other nodes */
			pinned_info(rp, &info);
			assert_int_equal(info.value_size, MOAT_V6T_ROOT_ENTRIES_WIDE * 4u +
					 64u * MOAT_V6T_LAYOUT);
			pinned_info(np, &info);
			assert_true(info.id != nodes_id);
			moat_xdp_close(x);
		}
		/* and the next loader reuses those pins */
		assert_int_equal(moat_xdp_open(&o, &x), 0);
		assert_int_equal(run(x, in, syn_from(in, "2001:db8:100:1::9", 25), NULL, NULL),
				 MOAT_VERDICT_DROP);
		moat_xdp_close(x);
		o.pin_dir = pin_dir;
	}
	/* upgrades: a pinned stats of another row size (counters of another
	 * version) is unpinned and made anew at this program's size, its
	 * counters from 0; the other pins are reused (the table answers
	 * without a publish).  A pinned stats of another type is not ours
	 * to remove: the load refuses and the pin stays. */
	{
		static char pin_dir4[80];
		char sp[128];
		struct bpf_map_info info;
		uint64_t z[MOAT_STAT__MAX];
		__u32 want_size;

		snprintf(pin_dir4, sizeof(pin_dir4), "%s/pins4", pin_base);
		snprintf(sp, sizeof(sp), "%s/stats", pin_dir4);
		o.pin_dir = pin_dir4;
		pins_with_table(&o);
		pinned_info(sp, &info);
		want_size = info.value_size;
		repin(sp, BPF_MAP_TYPE_ARRAY, "stats", want_size - 64, NULL);
		assert_int_equal(moat_xdp_open(&o, &x), 0);
		pinned_info(sp, &info);
		assert_int_equal(info.value_size, want_size);
		assert_int_equal(moat_xdp_read_stats(x, z), 0);
		for (int i = 0; i < MOAT_STAT__MAX; i++)
			if (z[i])
				fail_msg("new stats: counter %s is %llu", moat_xdp_stat_name((unsigned)i),
					 (unsigned long long)z[i]);
		assert_int_equal(run(x, in, syn_from(in, "192.0.2.10", 25), NULL, NULL), MOAT_VERDICT_DROP);
		assert_int_equal(moat_xdp_read_stats(x, z), 0);
		assert_int_equal(z[MOAT_STAT_DROP], 1);
		moat_xdp_close(x);
		/* and the next loader reuses the new pin: the count goes on */
		assert_int_equal(moat_xdp_read_pinned_stats(pin_dir4, z), 0);
		assert_int_equal(z[MOAT_STAT_DROP], 1);
		repin(sp, BPF_MAP_TYPE_HASH, "stats", want_size, NULL);
		assert_true(moat_xdp_open(&o, &x) < 0);
		pinned_info(sp, &info);
		assert_int_equal(info.type, BPF_MAP_TYPE_HASH);
		o.pin_dir = pin_dir;
	}
	rm_pins();
	assert_true(access(pin_base, F_OK) != 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_case_table),
		cmocka_unit_test(test_case_table_wide),
		cmocka_unit_test(test_wide_root_parts),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_rate_limits),
		cmocka_unit_test(test_port_set),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_publish),
		cmocka_unit_test(test_v6_length_graces),
		cmocka_unit_test(test_plens_flip),
		cmocka_unit_test(test_pinned_reopen),
		cmocka_unit_test(test_syn_cookies),   /* last: moves to a netns of its own */
	};

	log_init("test_xdp", 0);
	log_set_level(LOG_LVL_ERR);
	return cmocka_run_group_tests_name("xdp", tests, NULL, NULL);
}
