/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * moat-pktgen - the packet generator moat is tested under: TCP SYNs (IPv4
 * and IPv6, optionally VLAN-tagged) to the appliance's SMTP port from
 * source sets with shares, through an AF_XDP socket (libxdp, copy mode) or
 * an AF_PACKET TX ring with qdisc bypass (--tx; docs/pktgen.md says why
 * AF_XDP is the default);
 * the replies are read on the same interface through an AF_PACKET RX ring,
 * matched to their probe (ack = seq + 1, the probe id is the ISN, the
 * source port and address follow from it) and classified: SYN-ACK (passed
 * to the kernel), zero-window SYN-ACK of the tarpit's shape, RST, nothing
 * (dropped).  Expected verdicts come from a file of "prefix action" lines
 * or from moat-controld's "lookup" over the control socket; the result is
 * a confusion matrix, and any wrong verdict is exit status 1.
 *
 * The generator's kernel never handles the replies: a tc ingress program
 * (bpf/pktgen_rx.bpf.c) drops them after the packet socket taps saw them,
 * so no RST goes back to the appliance.  --no-rx (fire and forget, for
 * floods that measure something else): no RX ring and no judging, the
 * replies dropped already by the XDP program, before any of the
 * generator's kernel sees them, as a spoofing attacker never receives them.  docs/pktgen.md has the model (the
 * tarpit's rate limit, "passed, unanswered") and the TX measurement.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>

#ifdef MOAT_PKTGEN_XSK
#include <xdp/xsk.h>
#endif

#include "clock.h"
#include "ctlproto.h"
#include "moat_abi.h"
#include "moat_pktgen_rx.skel.h"
#include "prefix.h"
#include "vtable.h"

#define SETS_MAX 16
#define EXP_HOSTS_MAX 65536u    /* per-address expectations kept for a set */
#define PROBES_DEF (4u << 20)   /* probes tracked by default (16 B each) */
#define TX_FRAME 256
#define PACE_BATCH 64          /* probes a paced sender sleeps for (at >= 50 kpps) */
#define TX_FRAMES 4096
#define RX_BLOCK (1u << 20)
#define RX_BLOCKS 32
#define WRONG_SHOWN 5

enum exp { EXP_PASS, EXP_TARPIT, EXP_DROP, EXP_N };
enum obs { OBS_NONE, OBS_SYNACK, OBS_TARPIT, OBS_RST, OBS_N };
static const char *exp_names[EXP_N] = { "pass", "tarpit", "drop" };
/* a set's stored expectation: the first table's verdict in the low
 * nibble, the --expect-also table's in the high one */
#define EXP2(a, b) ((uint8_t)((a) | (b) << 4))
static const char *obs_names[OBS_N] = { "none", "syn-ack", "tarpit", "rst" };

/* one source set: a prefix and its share of the probes */
struct srcset {
	struct moat_prefix pfx;
	unsigned share;
	unsigned hostbits;   /* host bits used (at most 48) */
	uint64_t seq;        /* next host, sequential mode */
	uint16_t *sport;     /* per host: the last source port, when 2^hostbits <=
			      * EXP_HOSTS_MAX (a host's probes take the ports in turn) */
	uint8_t *exp;        /* per host, when 2^hostbits <= EXP_HOSTS_MAX */
	uint8_t exp_all;     /* the whole set's expectation otherwise */
	/* each an EXP2 pair: the --expect table's verdict and the
	 * --expect-also table's (the same without it) */
	bool smtp;           /* --smtp-src: real connections, not in the flood */
};

/* one probe; its id is the SYN's sequence number */
struct probe {
	uint64_t host : 48;
	uint64_t sport : 16;     /* its SYN's source port */
	uint32_t sent_us;
	uint8_t set;
	uint8_t obs;
	uint8_t exp;
	uint8_t dup;
};

struct expect_ent {
	struct moat_prefix pfx;
	uint8_t exp;
};

struct opts {
	const char *ifname;
	const char *expect_file;
	const char *expect_also;   /* a second table: either table's verdict is right */
	const char *socket;
	const char *stats_netns;
	uint8_t dst4[4], dst6[16];
	bool have4, have6;
	uint8_t dmac[6];
	bool have_dmac;
	uint16_t port;
	int vlan;                /* -1 none */
	bool sequential;
	double rate;             /* 0 = flat out */
	double duration;
	uint64_t count;
	uint64_t max_probes;
	unsigned timeout_ms;
	bool json, quiet;
	bool xsk;                /* --tx xsk: AF_XDP (copy mode) instead */
	bool find_rate;          /* --find-rate: flat out, then down to lossless */
	bool no_rx;              /* --no-rx: fire and forget (no RX ring, no verdicts) */
	bool no_rx_xdp;          /* --no-rx-xdp: and no XDP program on the interface */
	unsigned smtp_n;         /* SMTP mode: connections */
	unsigned smtp_timeout_ms;
	const char *smtp_rcpt;
	const char *smtp_from;
	uint16_t sport_lo, sport_hi;
	double tp_src_pps, tp_src_burst, tp_glob_pps, tp_glob_burst;
};

struct run {
	struct opts *o;
	struct srcset sets[SETS_MAX];
	unsigned nsets;
	uint8_t pick[1024];      /* set index per 1/1024 share */
	struct probe *probes;
	uint64_t nsent;
	uint32_t id_base;        /* wire id of probes[0]: ids go on across phases */
	uint8_t smac[6];
	int ifindex;
	int txfd, rxfd;
	uint8_t *txring, *rxring;
	unsigned txslot, rxblock;
	uint64_t rng;
	uint64_t start_ns, end_tx_ns, end_ns;
	uint64_t nrecv, nmatched, nstray, ndups, tx_errors;
	uint64_t wrong_live;
	uint64_t tx_dropped_dev;
	uint64_t rx_dropped;     /* replies the RX ring had no room for (tp_drops) */
	/* results */
	uint64_t cell[EXP_N][OBS_N];
	uint64_t tarpit_limited, tarpit_unanswered, passed_unanswered, pass_rst;
	uint64_t wrong;
	uint64_t kdrops;         /* appliance kernel's drop counters, delta */
	uint64_t smtp_cell[EXP_N][5];   /* SMTP mode: expected x enum smtp_out */
	uint64_t fits[2];  /* --expect-also, tables disagreeing: reply fit the first, the second */
	uint64_t smtp_wrong;
	bool kdrops_known;
	uint64_t xdp_seen;       /* the fast path's SYN counters, delta (--socket) */
	bool xdp_known;
	double flat_pps;         /* --find-rate: the flat-out phase's send rate */
	double found_rate;
#ifdef MOAT_PKTGEN_XSK
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	struct xsk_ring_prod xtx, xfq;
	struct xsk_ring_cons xcq;
	uint8_t *ubuf;
	uint64_t xnext, xout;    /* next UMEM frame, frames not completed */
#endif
	struct moat_pktgen_rx *skel;
	bool xdp_ours, tc_hook_ours, tc_ours;
	struct bpf_tc_hook hook;
	struct bpf_tc_opts tcopts;
};

/* SIGINT/SIGTERM: the first ends sending as the duration would (the
 * replies of what was sent are still awaited and judged), a second ends
 * the wait too */
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	if (stop < 2)
		stop++;
}

/* rnd - xorshift64*: fast, and good enough to spread probes */
static inline uint64_t rnd(struct run *r)
{
	r->rng ^= r->rng >> 12;
	r->rng ^= r->rng << 25;
	r->rng ^= r->rng >> 27;
	return r->rng * 0x2545F4914F6CDD1DULL;
}

/* set_addr - the address of host h of set s into out (16 bytes for v6,
 * 4 for v4), network order */
static void set_addr(const struct srcset *s, uint64_t h, uint8_t *out)
{
	unsigned alen = s->pfx.family == MOAT_AF_INET ? 4 : 16;

	memcpy(out, s->pfx.addr, alen);
	for (unsigned i = 0; i < s->hostbits && i < 64; i += 8) {
		unsigned byte = alen - 1 - i / 8;

		out[byte] |= (uint8_t)(h >> i);
	}
}

static uint16_t csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint32_t csum_add(uint32_t s, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)b[i] << 8 | b[i + 1];
	if (n & 1)
		s += (uint32_t)b[n - 1] << 8;
	return s;
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* probe_sport - a source port for the next probe of host h of set s (probe
 * id): each host of a small set takes the ports in turn, so a 4-tuple comes
 * again only after that host has sent a port range's worth of probes (the
 * appliance's kernel holds a half-open connection for each passed SYN, up
 * to a minute with SYN-ACK retransmissions: a SYN reusing its 4-tuple with
 * another ISN gets a RST or an ACK for the old one, not an answer); a big
 * set's hosts are random enough for the id to choose */
static uint16_t probe_sport(const struct opts *o, struct srcset *s, uint64_t h, uint64_t id)
{
	unsigned range = (unsigned)o->sport_hi - o->sport_lo + 1;

	if (s->sport) {
		unsigned next = (unsigned)(s->sport[h] - o->sport_lo + 1) % range;

		s->sport[h] = (uint16_t)(o->sport_lo + next);
		return s->sport[h];
	}
	return (uint16_t)(o->sport_lo + id % range);
}

/* build_syn - the SYN of probe id into buf; returns its length */
static unsigned build_syn(struct run *r, uint8_t *buf, uint64_t id, const struct probe *p)
{
	const struct opts *o = r->o;
	const struct srcset *s = &r->sets[p->set];
	unsigned off = 12, l4;
	uint8_t src[16];
	uint32_t sum;

	memcpy(buf, o->dmac, 6);
	memcpy(buf + 6, r->smac, 6);
	if (o->vlan >= 0) {
		wr16(buf + 12, 0x8100);
		wr16(buf + 14, (uint16_t)o->vlan);
		off += 4;
	}
	set_addr(s, p->host, src);
	if (s->pfx.family == MOAT_AF_INET) {
		uint8_t *ip = buf + off + 2;

		wr16(buf + off, 0x0800);
		memset(ip, 0, 20);
		ip[0] = 0x45;
		wr16(ip + 2, 20 + 24);
		wr16(ip + 4, (uint16_t)id);
		wr16(ip + 6, 0x4000);
		ip[8] = 64;
		ip[9] = 6;
		memcpy(ip + 12, src, 4);
		memcpy(ip + 16, o->dst4, 4);
		wr16(ip + 10, csum_fold(csum_add(0, ip, 20)));
		l4 = off + 2 + 20;
		sum = csum_add(0, ip + 12, 8) + 6 + 24;
	} else {
		uint8_t *ip = buf + off + 2;

		wr16(buf + off, 0x86dd);
		memset(ip, 0, 8);
		ip[0] = 0x60;
		wr16(ip + 4, 24);
		ip[6] = 6;
		ip[7] = 64;
		memcpy(ip + 8, src, 16);
		memcpy(ip + 24, o->dst6, 16);
		l4 = off + 2 + 40;
		sum = csum_add(0, ip + 8, 32) + 6 + 24;
	}
	uint8_t *t = buf + l4;

	wr16(t, (uint16_t)p->sport);
	wr16(t + 2, o->port);
	wr32(t + 4, (uint32_t)(r->id_base + id));
	wr32(t + 8, 0);
	t[12] = 6 << 4;        /* 24 bytes: MSS option */
	t[13] = 0x02;          /* SYN */
	wr16(t + 14, 64240);
	wr16(t + 16, 0);
	wr16(t + 18, 0);
	t[20] = 2;
	t[21] = 4;
	wr16(t + 22, 1460);
	wr16(t + 16, csum_fold(csum_add(sum, t, 24)));
	return l4 + 24;
}

/* ---- expectations ------------------------------------------------------ */

static int exp_of_action(const char *s, uint8_t *out)
{
	uint32_t act;

	if (vt_action_parse(s, &act) < 0)
		return -EINVAL;
	*out = act == MOAT_ACT_TARPIT ? EXP_TARPIT : act == MOAT_ACT_DROP ? EXP_DROP : EXP_PASS;
	return 0;
}

/* load_expect - read "prefix action" lines; returns entries or -errno */
static int load_expect(const char *path, struct expect_ent **out, size_t *n)
{
	FILE *f = fopen(path, "r");
	char line[256];
	size_t cap = 0, ln = 0;
	struct expect_ent *v = NULL;

	if (!f)
		return -errno;
	*n = 0;
	while (fgets(line, sizeof(line), f)) {
		char pfx[128], act[32];

		ln++;
		char *h = strchr(line, '#');

		if (h)
			*h = 0;
		int k = sscanf(line, "%127s %31s", pfx, act);

		if (k <= 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			struct expect_ent *nv = realloc(v, cap * sizeof(*v));

			if (!nv) {
				free(v);
				fclose(f);
				return -ENOMEM;
			}
			v = nv;
		}
		if (k != 2 || moat_prefix_parse(pfx, &v[*n].pfx) < 0 ||
		    exp_of_action(act, &v[*n].exp) < 0) {
			fprintf(stderr, "moat-pktgen: %s:%zu: want \"PREFIX pass|drop|tarpit|allow\"\n",
				path, ln);
			free(v);
			fclose(f);
			return -EINVAL;
		}
		(*n)++;
	}
	fclose(f);
	*out = v;
	return 0;
}

/* expect_lpm - the action of the longest entry holding addr (pass if none) */
static uint8_t expect_lpm(const struct expect_ent *v, size_t n, uint8_t fam, const uint8_t *addr)
{
	int best = -1;
	uint8_t e = EXP_PASS;

	for (size_t i = 0; i < n; i++)
		if (v[i].pfx.plen > best && moat_prefix_match(&v[i].pfx, fam, addr)) {
			best = v[i].pfx.plen;
			e = v[i].exp;
		}
	return e;
}

/* ctl_expect - moat-controld's table verdict for addr ("action" of lookup,
 * without live DNS lookups); 0 or -errno */
static int ctl_expect(int fd, struct ctl_buf *b, const char *addr, uint8_t *out)
{
	struct json_object *req = ctl_request_new(1, "lookup"), *rep = NULL, *res;
	int ok = 0, err;

	json_object_object_add(req, "addr", json_object_new_string(addr));
	json_object_object_add(req, "live", json_object_new_boolean(0));
	err = ctl_call(fd, b, req, &rep, 5000);
	json_object_put(req);
	if (err < 0)
		return err;
	err = -EPROTO;
	if (ctl_get_bool(rep, "ok", &ok) == 0 && ok &&
	    json_object_object_get_ex(rep, "result", &res) &&
	    ctl_get_str(res, "action") && exp_of_action(ctl_get_str(res, "action"), out) == 0)
		err = 0;
	else
		fprintf(stderr, "moat-pktgen: lookup %s: %s\n", addr,
			ctl_get_str(rep, "error") ? ctl_get_str(rep, "error") : "bad reply");
	json_object_put(rep);
	return err;
}

static void addr_str(uint8_t fam, const uint8_t *a, char *buf, size_t n)
{
	inet_ntop(fam == MOAT_AF_INET ? AF_INET : AF_INET6, a, buf, (socklen_t)n);
}

/* set_uniform - the verdict of every address of set s (number i) in a
 * table; *err = -EINVAL (message printed) when they differ */
static uint8_t set_uniform(const struct srcset *s, unsigned i, const struct expect_ent *v, size_t n,
			   const char *file, int *err)
{
	uint8_t e = expect_lpm(v, n, s->pfx.family, s->pfx.addr);

	for (size_t k = 0; k < n; k++)
		if (v[k].pfx.plen > s->pfx.plen && moat_prefix_contains(&s->pfx, &v[k].pfx) &&
		    v[k].exp != e) {
			fprintf(stderr, "moat-pktgen: set %u is larger than %u addresses and "
				"not uniform in %s\n", i, EXP_HOSTS_MAX, file);
			*err = -EINVAL;
			break;
		}
	return e;
}

/* build_expectations - every set's expected verdicts, before the first
 * probe (a change of the table during the run is what the run catches).
 * 0 or -errno (message printed). */
static int build_expectations(struct run *r)
{
	struct opts *o = r->o;
	struct expect_ent *ents = NULL, *ents2 = NULL;
	size_t nents = 0, nents2 = 0;
	struct ctl_buf b;
	int fd = -1, err = 0;

	if (o->expect_also) {
		err = load_expect(o->expect_also, &ents2, &nents2);
		if (err < 0) {
			if (err != -EINVAL)
				fprintf(stderr, "moat-pktgen: %s: %s\n", o->expect_also, strerror(-err));
			return err;
		}
	}
	if (o->expect_file) {
		err = load_expect(o->expect_file, &ents, &nents);
		if (err < 0) {
			if (err != -EINVAL)
				fprintf(stderr, "moat-pktgen: %s: %s\n", o->expect_file, strerror(-err));
			free(ents2);
			return err;
		}
	} else {
		fd = ctl_connect(o->socket);
		if (fd < 0) {
			fprintf(stderr, "moat-pktgen: control socket %s: %s\n", o->socket, strerror(-fd));
			free(ents2);
			return fd;
		}
		ctl_buf_init(&b, CTL_MAX_REPLY);
	}
	for (unsigned i = 0; i < r->nsets && !err; i++) {
		struct srcset *s = &r->sets[i];
		uint8_t a[16];
		char as[INET6_ADDRSTRLEN];

		if (s->hostbits <= 16) {
			uint64_t nh = 1ull << s->hostbits;

			s->exp = calloc(nh, 1);
			s->sport = calloc(nh, sizeof(*s->sport));
			if (!s->exp || !s->sport) {
				err = -ENOMEM;
				break;
			}
			/* each host starts at a random port: a run after another
			 * meets the other's half-open connections by chance only */
			for (uint64_t h = 0; h < nh; h++)
				s->sport[h] = (uint16_t)(o->sport_lo +
					rnd(r) % ((unsigned)o->sport_hi - o->sport_lo + 1));
			for (uint64_t h = 0; h < nh && !err; h++) {
				uint8_t e = EXP_PASS;

				set_addr(s, h, a);
				if (ents || o->expect_file) {
					e = expect_lpm(ents, nents, s->pfx.family, a);
				} else {
					addr_str(s->pfx.family, a, as, sizeof(as));
					err = ctl_expect(fd, &b, as, &e);
				}
				s->exp[h] = EXP2(e, o->expect_also ?
						    expect_lpm(ents2, nents2, s->pfx.family, a) : e);
			}
			continue;
		}
		/* a big set: one verdict for all of it, or refuse */
		if (!o->expect_file) {
			fprintf(stderr, "moat-pktgen: set %u has more than %u addresses: "
				"give expectations with --expect FILE\n", i, EXP_HOSTS_MAX);
			err = -E2BIG;
			break;
		}
		uint8_t e1 = set_uniform(s, i, ents, nents, o->expect_file, &err);
		uint8_t e2 = o->expect_also ? set_uniform(s, i, ents2, nents2, o->expect_also, &err) : e1;

		s->exp_all = EXP2(e1, e2);
	}
	free(ents);
	free(ents2);
	if (fd >= 0) {
		ctl_buf_free(&b);
		close(fd);
	}
	return err;
}

/* probe_expect2 - the probe's EXP2 pair */
static uint8_t probe_expect2(const struct run *r, const struct probe *p)
{
	const struct srcset *s = &r->sets[p->set];

	return s->exp ? s->exp[p->host] : s->exp_all;
}

/* probe_expect - the verdict the probe is judged against: the tables'
 * when they agree; otherwise the one of the two the observed reply fits
 * (tarpit reply: tarpit; none: drop, else tarpit, whose budget then
 * judges it; a SYN-ACK or RST: pass), else the first table's, wrong
 * either way */
static uint8_t probe_expect(const struct run *r, const struct probe *p)
{
	uint8_t x = probe_expect2(r, p), a = x & 15, b = x >> 4, want;

	if (a == b)
		return a;
	if (p->obs == OBS_NONE)
		return a == EXP_DROP || b == EXP_DROP ? EXP_DROP : EXP_TARPIT;
	want = p->obs == OBS_TARPIT ? EXP_TARPIT : EXP_PASS;
	return a == want || b == want ? want : a;
}

/* ---- rings and programs ------------------------------------------------ */

/* setup_tx - AF_PACKET TPACKET_V2 TX ring with qdisc bypass; 0 or -errno */
static int setup_tx(struct run *r)
{
	struct tpacket_req req = {
		.tp_block_size = TX_FRAME * 64,
		.tp_block_nr = TX_FRAMES / 64,
		.tp_frame_size = TX_FRAME,
		.tp_frame_nr = TX_FRAMES,
	};
	int v = TPACKET_V2, one = 1;
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_ifindex = r->ifindex };

	r->txfd = socket(AF_PACKET, SOCK_RAW, 0);
	if (r->txfd < 0)
		return -errno;
	if (setsockopt(r->txfd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0 ||
	    setsockopt(r->txfd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0 ||
	    setsockopt(r->txfd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) < 0 ||
	    bind(r->txfd, (struct sockaddr *)&ll, sizeof(ll)) < 0)
		return -errno;
	r->txring = mmap(NULL, (size_t)TX_FRAME * TX_FRAMES, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_POPULATE, r->txfd, 0);
	if (r->txring == MAP_FAILED)
		return -errno;
	return 0;
}

/* setup_rx - AF_PACKET TPACKET_V3 RX ring, our own frames ignored */
static int setup_rx(struct run *r)
{
	struct tpacket_req3 req = {
		.tp_block_size = RX_BLOCK,
		.tp_block_nr = RX_BLOCKS,
		.tp_frame_size = 2048,
		.tp_frame_nr = RX_BLOCK / 2048 * RX_BLOCKS,
		.tp_retire_blk_tov = 5,
	};
	int v = TPACKET_V3, one = 1;
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				  .sll_ifindex = r->ifindex };

	r->rxfd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (r->rxfd < 0)
		return -errno;
	if (setsockopt(r->rxfd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0 ||
	    setsockopt(r->rxfd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0 ||
	    setsockopt(r->rxfd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0 ||
	    bind(r->rxfd, (struct sockaddr *)&ll, sizeof(ll)) < 0)
		return -errno;
	r->rxring = mmap(NULL, (size_t)RX_BLOCK * RX_BLOCKS, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_POPULATE, r->rxfd, 0);
	if (r->rxring == MAP_FAILED)
		return -errno;
	return 0;
}

/* setup_progs - XDP_PASS on the interface (if it has no XDP program) and
 * the tc ingress drop of replies; 0 or -errno */
static int setup_progs(struct run *r)
{
	struct opts *o = r->o;
	uint32_t cur = 0;
	int err;

	r->skel = moat_pktgen_rx__open();
	if (!r->skel)
		return -errno;
	r->skel->rodata->target_port = o->port;
	r->skel->rodata->sport_lo = o->sport_lo;
	r->skel->rodata->sport_hi = o->sport_hi;
	r->skel->rodata->xdp_drop_replies = o->no_rx;
	err = moat_pktgen_rx__load(r->skel);
	if (err)
		return err;
	if (!o->no_rx_xdp && bpf_xdp_query_id(r->ifindex, 0, &cur) == 0 && cur == 0) {
		err = bpf_xdp_attach(r->ifindex, bpf_program__fd(r->skel->progs.moat_pktgen_xdp),
				     XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_DRV_MODE, NULL);
		if (err && err != -EEXIST && err != -EBUSY)
			return err;
		r->xdp_ours = err == 0;
	}
	if (o->no_rx && !r->xdp_ours && !o->no_rx_xdp)
		fprintf(stderr, "moat-pktgen: --no-rx: %s has an XDP program of its own: "
			"the replies are dropped at tc ingress instead (after the kernel "
			"made an skb of each)\n", o->ifname);
	memset(&r->hook, 0, sizeof(r->hook));
	r->hook.sz = sizeof(r->hook);
	r->hook.ifindex = r->ifindex;
	r->hook.attach_point = BPF_TC_INGRESS;
	err = bpf_tc_hook_create(&r->hook);
	if (err && err != -EEXIST)
		return err;
	r->tc_hook_ours = err == 0;
	memset(&r->tcopts, 0, sizeof(r->tcopts));
	r->tcopts.sz = sizeof(r->tcopts);
	r->tcopts.prog_fd = bpf_program__fd(r->skel->progs.moat_pktgen_tc);
	err = bpf_tc_attach(&r->hook, &r->tcopts);
	if (err)
		return err;
	r->tc_ours = true;
	return 0;
}

static void teardown_progs(struct run *r)
{
#ifdef MOAT_PKTGEN_XSK
	if (r->xsk)
		xsk_socket__delete(r->xsk);
	if (r->umem)
		xsk_umem__delete(r->umem);
#endif
	if (r->tc_ours) {
		r->tcopts.flags = r->tcopts.prog_fd = r->tcopts.prog_id = 0;
		bpf_tc_detach(&r->hook, &r->tcopts);
	}
	if (r->tc_hook_ours) {
		r->hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&r->hook);
	}
	if (r->xdp_ours)
		bpf_xdp_detach(r->ifindex, XDP_FLAGS_DRV_MODE, NULL);
	moat_pktgen_rx__destroy(r->skel);
}

/* ---- receive and classify ---------------------------------------------- */

static uint64_t judge_live(struct run *r, const struct probe *p);
static bool lossless(const struct run *r);

/* rx_frame - match one received frame to its probe */
static void rx_frame(struct run *r, const uint8_t *d, unsigned len)
{
	const struct opts *o = r->o;
	unsigned off = 12, l4;
	uint16_t et;
	uint8_t fam;
	const uint8_t *dst;

	r->nrecv++;
	if (len < 14)
		return;
	et = rd16(d + off);
	while ((et == 0x8100 || et == 0x88a8) && off + 6 <= len) {
		off += 4;
		et = rd16(d + off);
	}
	off += 2;
	if (et == 0x0800) {
		if (off + 20 > len || d[off + 9] != 6 || memcmp(d + off + 12, o->dst4, 4))
			return;
		fam = MOAT_AF_INET;
		dst = d + off + 16;
		l4 = off + (d[off] & 0xf) * 4u;
	} else if (et == 0x86dd) {
		if (off + 40 > len || d[off + 6] != 6 || memcmp(d + off + 8, o->dst6, 16))
			return;
		fam = MOAT_AF_INET6;
		dst = d + off + 24;
		l4 = off + 40;
	} else {
		return;
	}
	if (l4 + 20 > len || rd16(d + l4) != o->port)
		return;
	uint16_t dport = rd16(d + l4 + 2);
	uint8_t flags = d[l4 + 13];
	uint32_t wid = rd32(d + l4 + 8) - 1;
	uint64_t id = (uint32_t)(wid - r->id_base);

	if (!(flags & 0x10) || id >= r->nsent || dport != r->probes[id].sport) {
		r->nstray++;
		return;
	}
	struct probe *p = &r->probes[id];
	const struct srcset *s = &r->sets[p->set];
	uint8_t a[16];

	set_addr(s, p->host, a);
	if (s->pfx.family != fam || memcmp(a, dst, fam == MOAT_AF_INET ? 4 : 16)) {
		r->nstray++;
		return;
	}
	if (p->obs != OBS_NONE) {
		r->ndups++;
		return;
	}
	if (flags & 0x04)
		p->obs = OBS_RST;
	else if ((flags & 0x12) == 0x12 && rd16(d + l4 + 14) == 0 && (d[l4 + 12] >> 4) == 5)
		p->obs = OBS_TARPIT;
	else if ((flags & 0x12) == 0x12)
		p->obs = OBS_SYNACK;
	else {
		r->nstray++;
		return;
	}
	r->nmatched++;
	r->wrong_live += judge_live(r, p);
}

/* rx_poll - consume every ready block of the RX ring */
static void rx_poll(struct run *r)
{
	while (r->rxring) {
		struct tpacket_block_desc *bd =
			(void *)(r->rxring + (size_t)r->rxblock * RX_BLOCK);

		if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
			return;
		struct tpacket3_hdr *h = (void *)((uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt);

		for (uint32_t i = 0; i < bd->hdr.bh1.num_pkts; i++) {
			rx_frame(r, (uint8_t *)h + h->tp_mac, h->tp_snaplen);
			h = (void *)((uint8_t *)h + h->tp_next_offset);
		}
		__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		r->rxblock = (r->rxblock + 1) % RX_BLOCKS;
	}
}

/* judge_live - 1 when a reply alone makes the probe wrong */
static uint64_t judge_live(struct run *r, const struct probe *p)
{
	uint8_t e = probe_expect(r, p);

	(void)r;
	switch (e) {
	case EXP_PASS:
		return p->obs == OBS_TARPIT;
	case EXP_TARPIT:
		return p->obs != OBS_TARPIT;
	default:
		return 1;
	}
}

/* ---- send -------------------------------------------------------------- */

static void next_probe(struct run *r, struct probe *p)
{
	const struct opts *o = r->o;
	unsigned si = r->pick[o->sequential ? r->nsent % 1024 : rnd(r) % 1024];
	struct srcset *s = &r->sets[si];
	uint64_t mask = s->hostbits >= 64 ? ~0ull : (1ull << s->hostbits) - 1;

	p->set = (uint8_t)si;
	p->host = o->sequential ? s->seq++ & mask : rnd(r) & mask;
	p->sport = probe_sport(o, s, p->host, r->id_base + r->nsent);
	p->obs = OBS_NONE;
	p->dup = 0;
}

#ifdef MOAT_PKTGEN_XSK
#define XSK_FRAME 2048
#define XSK_FRAMES 4096
#define XSK_KICK 32 /* descriptors the kernel sends per sendto() in copy mode */

/* setup_xsk - AF_XDP TX-only socket on queue 0 in copy mode (no program:
 * nothing is received through it); 0 or -errno */
static int setup_xsk(struct run *r)
{
	struct xsk_umem_config uc = {
		.fill_size = XSK_RING_PROD__DEFAULT_NUM_DESCS,
		.comp_size = XSK_FRAMES,
		.frame_size = XSK_FRAME,
	};
	struct xsk_socket_config sc = {
		.rx_size = XSK_RING_CONS__DEFAULT_NUM_DESCS,
		.tx_size = 2048,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = XDP_COPY,
	};
	int err;

	r->ubuf = mmap(NULL, (size_t)XSK_FRAME * XSK_FRAMES, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (r->ubuf == MAP_FAILED)
		return -errno;
	err = xsk_umem__create(&r->umem, r->ubuf, (uint64_t)XSK_FRAME * XSK_FRAMES, &r->xfq,
			       &r->xcq, &uc);
	if (err)
		return err;
	return xsk_socket__create(&r->xsk, r->o->ifname, 0, r->umem, NULL, &r->xtx, &sc);
}

/* xsk_batch - reclaim completions, put up to max probes on the AF_XDP TX
 * ring and kick the kernel; returns how many were queued */
static unsigned xsk_batch(struct run *r, uint64_t max, uint64_t now)
{
	uint32_t idx;
	unsigned n = xsk_ring_cons__peek(&r->xcq, XSK_FRAMES, &idx);

	if (n) {
		xsk_ring_cons__release(&r->xcq, n);
		r->xout -= n;
	}
	if (max > XSK_FRAMES - r->xout)
		max = XSK_FRAMES - r->xout;
	if (max > 256)
		max = 256;
	n = max ? xsk_ring_prod__reserve(&r->xtx, (uint32_t)max, &idx) : 0;
	for (unsigned i = 0; i < n; i++) {
		struct xdp_desc *d = xsk_ring_prod__tx_desc(&r->xtx, idx + i);
		struct probe *p = &r->probes[r->o->no_rx ? 0 : r->nsent];

		d->addr = (r->xnext++ % XSK_FRAMES) * XSK_FRAME;
		next_probe(r, p);
		p->sent_us = (uint32_t)((now - r->start_ns) / 1000);
		d->len = build_syn(r, r->ubuf + d->addr, r->nsent, p);
		d->options = 0;
		r->nsent++;
	}
	if (n) {
		xsk_ring_prod__submit(&r->xtx, n);
		r->xout += n;
	}
	/* copy mode sends XSK_KICK descriptors per call */
	for (uint64_t k = 0; k < (r->xout + XSK_KICK - 1) / XSK_KICK && r->xout; k++)
		if (sendto(xsk_socket__fd(r->xsk), NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 &&
		    errno != EAGAIN && errno != ENOBUFS && errno != EBUSY)
			r->tx_errors++;
	return n;
}
#endif

static uint64_t read_u64_file(const char *path)
{
	FILE *f = fopen(path, "r");
	unsigned long long v = 0;

	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static uint64_t dev_tx_dropped(const char *ifname)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/tx_dropped", ifname);
	return read_u64_file(path);
}

/* kernel_drops - ListenOverflows + ListenDrops + TCPReqQFullDrop +
 * TCPBacklogDrop of the appliance's namespace; -errno when unreadable */
static int64_t kernel_drops(const char *netns)
{
	char path[256], hdr[4096], val[4096];
	int self, ns;
	FILE *f;
	int64_t total = 0;

	snprintf(path, sizeof(path), "/run/netns/%s", netns);
	ns = open(path, O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		return -errno;
	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0 || setns(ns, CLONE_NEWNET) < 0) {
		int e = -errno;

		close(ns);
		if (self >= 0)
			close(self);
		return e;
	}
	f = fopen("/proc/self/net/netstat", "r");
	if (setns(self, CLONE_NEWNET) < 0) {
		perror("moat-pktgen: setns back");
		exit(2);
	}
	close(ns);
	close(self);
	if (!f)
		return -errno;
	while (fgets(hdr, sizeof(hdr), f) && fgets(val, sizeof(val), f)) {
		char *sh, *sv, *kh = strtok_r(hdr, " \n", &sh), *kv = strtok_r(val, " \n", &sv);

		if (!kh || !kv || strcmp(kh, "TcpExt:"))
			continue;
		while ((kh = strtok_r(NULL, " \n", &sh)) && (kv = strtok_r(NULL, " \n", &sv)))
			if (!strcmp(kh, "ListenOverflows") || !strcmp(kh, "ListenDrops") ||
			    !strcmp(kh, "TCPReqQFullDrop") || !strcmp(kh, "TCPBacklogDrop"))
				total += strtoll(kv, NULL, 10);
	}
	fclose(f);
	return total;
}

static void progress(struct run *r, uint64_t now, uint64_t *last_sent, uint64_t *last_recv)
{
	double t = (double)(now - r->start_ns) / 1e9;

	fprintf(stderr, "\r%5.1fs  sent %" PRIu64 " (%.0f pps)  replies %" PRIu64
		" (%.0f pps)  wrong so far %" PRIu64 "   ",
		t, r->nsent, (double)(r->nsent - *last_sent), r->nmatched,
		(double)(r->nmatched - *last_recv), r->wrong_live);
	*last_sent = r->nsent;
	*last_recv = r->nmatched;
}

/* send_loop - put probes on the TX ring at the rate, poll RX between
 * batches, then wait for the replies until the timeout; 0 or -errno */
/* rx_ring_drops - replies the RX ring dropped since the last call (the
 * generator's own loss: it was too slow to empty the ring) */
static uint64_t rx_ring_drops(struct run *r)
{
	struct tpacket_stats_v3 st = { 0 };
	socklen_t len = sizeof(st);

	if (r->rxfd < 0 || getsockopt(r->rxfd, SOL_PACKET, PACKET_STATISTICS, &st, &len) < 0)
		return 0;
	return st.tp_drops;
}

static int send_loop(struct run *r)
{
	const struct opts *o = r->o;
	bool tty = isatty(2) && !o->quiet;
	uint64_t next_prog, last_sent = 0, last_recv = 0, limit = o->count;
	uint64_t dur_ns = (uint64_t)(o->duration * 1e9);

	if (!limit || (limit > o->max_probes && !o->no_rx))
		limit = o->no_rx && !o->count ? UINT64_MAX : o->max_probes;
	r->tx_dropped_dev = dev_tx_dropped(o->ifname);
	rx_ring_drops(r);  /* reading resets the socket's counters */
	r->start_ns = moat_clock_ns();
	next_prog = r->start_ns + 1000000000ull;
	while (!stop && r->nsent < limit) {
		uint64_t now = moat_clock_ns(), want;
		unsigned queued = 0;

		if (dur_ns && now - r->start_ns >= dur_ns)
			break;
		if (o->rate > 0) {
			want = (uint64_t)((double)(now - r->start_ns) * o->rate / 1e9) + 1;
			if (want > limit)
				want = limit;
		} else {
			want = limit;
		}
#ifdef MOAT_PKTGEN_XSK
		if (o->xsk)
			queued = xsk_batch(r, want - r->nsent, now);
#endif
		while (!o->xsk && r->nsent < want && queued < 256) {
			struct tpacket2_hdr *h = (void *)(r->txring + (size_t)r->txslot * TX_FRAME);

			if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE)
				break;
			struct probe *p = &r->probes[o->no_rx ? 0 : r->nsent];
			uint8_t *buf = (uint8_t *)h + TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);

			next_probe(r, p);
			p->sent_us = (uint32_t)((now - r->start_ns) / 1000);
			h->tp_len = build_syn(r, buf, r->nsent, p);
			__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
			r->txslot = (r->txslot + 1) % TX_FRAMES;
			r->nsent++;
			queued++;
		}
		if (queued && !o->xsk && send(r->txfd, NULL, 0, MSG_DONTWAIT) < 0 &&
		    errno != EAGAIN && errno != ENOBUFS && errno != EINTR)
			r->tx_errors++;
		rx_poll(r);
		if (tty && now >= next_prog) {
			progress(r, now, &last_sent, &last_recv);
			next_prog += 1000000000ull;
		}
		if (!queued && o->rate > 0) {
			/* ahead of the rate: sleep for a slice of the gap, or at
			 * a high rate until a batch of PACE_BATCH is due (the
			 * next turn sends it at once: want follows the clock).
			 * Spinning here took a whole core at any rate over
			 * 50 kpps, a core the flood's target then lacked */
			uint64_t gap = (uint64_t)(1e9 / o->rate);

			if (gap > 20000)
				usleep((useconds_t)(gap > 1000000 ? 1000 : gap / 2000));
			else
				usleep((useconds_t)(gap * PACE_BATCH / 1000 + 1));
		}
	}
	/* flush what is queued, then replies until the timeout */
	if (!o->xsk)
		send(r->txfd, NULL, 0, 0);
#ifdef MOAT_PKTGEN_XSK
	for (int i = 0; o->xsk && r->xout && i < 1000; i++) {
		xsk_batch(r, 0, moat_clock_ns());
		usleep(100);
	}
#endif
	r->end_tx_ns = moat_clock_ns();
	uint64_t deadline = r->end_tx_ns + (uint64_t)o->timeout_ms * 1000000ull;

	while (stop < 2 && !o->no_rx) {
		uint64_t now = moat_clock_ns();
		struct pollfd pfd = { .fd = r->rxfd, .events = POLLIN };

		rx_poll(r);
		if (now >= deadline || r->nmatched == r->nsent)
			break;
		if (tty && now >= next_prog) {
			progress(r, now, &last_sent, &last_recv);
			next_prog += 1000000000ull;
		}
		poll(&pfd, 1, 10);
	}
	rx_poll(r);
	r->end_ns = moat_clock_ns();
	r->tx_dropped_dev = dev_tx_dropped(o->ifname) - r->tx_dropped_dev;
	r->rx_dropped = rx_ring_drops(r);
	if (tty)
		fputc('\n', stderr);
	return 0;
}

/* ---- judge --------------------------------------------------------------- */

struct gcra_ent {
	uint64_t key;
	uint64_t tat;
};

/* gcra_slot - the state word of key in an open-addressing table */
static uint64_t *gcra_slot(struct gcra_ent *t, size_t cap, uint64_t key)
{
	size_t i = (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 20) & (cap - 1);

	for (size_t n = 0; n < cap; n++, i = (i + 1) & (cap - 1)) {
		if (t[i].key == key + 1)
			return &t[i].tat;
		if (t[i].key == 0) {
			t[i].key = key + 1;
			return &t[i].tat;
		}
	}
	return NULL;
}

/* src_key - the tarpit limiter's key: source /24 or /48 */
static uint64_t src_key(const struct run *r, const struct probe *p)
{
	const struct srcset *s = &r->sets[p->set];
	uint8_t a[16];
	uint64_t k = 0;

	set_addr(s, p->host, a);
	if (s->pfx.family == MOAT_AF_INET)
		return (uint64_t)1 << 63 | rd32(a) >> 8;
	for (int i = 0; i < 6; i++)
		k = k << 8 | a[i];
	return k;
}

/*
 * judge - fill the matrix.  A tarpit probe without a reply is "tarpit,
 * rate-limited" (right) unless the appliance's budgets surely had room at
 * its send time: they are simulated over the replies actually seen (GCRA
 * per source /24 or /48 and global, with the XDP defaults or --tarpit-*),
 * starting empty (what an earlier run left is unknown), so the simulation
 * is an upper bound of the appliance's debt; a probe unanswered while
 * even that bound leaves room (by more than a slack for clocks and late
 * frames) is wrong.  A pass probe without a reply is "passed, unanswered":
 * right only when the appliance kernel's own drop counters (--netns-stats)
 * account for all of them.  Returns 0 or -ENOMEM.
 */
static int judge(struct run *r, FILE *wrongf, unsigned *shown)
{
	const struct opts *o = r->o;
	double si = 1e9 / o->tp_src_pps, gi = 1e9 / o->tp_glob_pps;
	uint64_t s_int = (uint64_t)si, s_tau = (uint64_t)(si * (o->tp_src_burst - 1));
	uint64_t g_int = (uint64_t)gi, g_tau = (uint64_t)(gi * (o->tp_glob_burst - 1));
	/* slack: two cells, and 250 ms for frames that reach the appliance
	 * later than they were sent (a busy machine defers softirqs) */
	uint64_t slack = 2 * s_int + 250000000ull, gslack = 2 * g_int + 250000000ull;
	uint64_t gtat = 0;
	size_t cap = 1024;
	struct gcra_ent *tab;
	bool pass_none_ok;

	while (cap < 2 * r->nsent && cap < (1u << 22))
		cap <<= 1;
	tab = calloc(cap, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	/* unanswered passes: all right when the losses the run can see cover
	 * them: the appliance kernel's drops, the generator's own device and
	 * RX ring drops, and (--socket) SYNs the fast path never counted (the
	 * run is then not lossless, and says so) */
	for (uint64_t id = 0; id < r->nsent; id++)
		if (r->probes[id].obs == OBS_NONE && probe_expect(r, &r->probes[id]) == EXP_PASS)
			r->passed_unanswered++;
	pass_none_ok = (r->kdrops_known ? r->kdrops : 0) + r->tx_dropped_dev + r->rx_dropped +
		       (r->xdp_known && r->xdp_seen < r->nsent ? r->nsent - r->xdp_seen : 0) >=
		       r->passed_unanswered;
	for (uint64_t id = 0; id < r->nsent; id++) {
		struct probe *p = &r->probes[id];
		uint8_t e = probe_expect(r, p);
		int bad = 0;

		p->exp = e;
		r->cell[e][p->obs]++;
		if (o->expect_also) {
			uint8_t x = probe_expect2(r, p);

			/* the tables disagree: which one the reply fit */
			if ((x & 15) != x >> 4)
				r->fits[e == (x & 15) ? 0 : 1]++;
		}
		if (e == EXP_PASS) {
			if (p->obs == OBS_TARPIT)
				bad = 1;
			else if (p->obs == OBS_RST)
				r->pass_rst++;
			else if (p->obs == OBS_NONE)
				bad = !pass_none_ok;
		} else if (e == EXP_DROP) {
			bad = p->obs != OBS_NONE;
		} else {
			uint64_t now = (uint64_t)p->sent_us * 1000, *tat = gcra_slot(tab, cap, src_key(r, p));
			uint64_t t, g;

			/* the budgets' state before the run is unknown (an
			 * earlier run may have spent them): start from empty,
			 * an upper bound of what the appliance holds */
			if (tat && !*tat)
				*tat = now + s_tau + 1;
			if (!gtat)
				gtat = now + g_tau + 1;
			t = tat && *tat > now ? *tat : now;
			g = gtat > now ? gtat : now;

			if (p->obs == OBS_TARPIT) {
				if (tat)
					*tat = t + s_int;
				gtat = g + g_int;
			} else if (p->obs == OBS_NONE) {
				/* within both budgets by more than the slack: should
				 * have been answered */
				if (tat && t - now + slack < s_tau && g - now + gslack < g_tau) {
					r->tarpit_unanswered++;
					bad = 1;
				} else {
					r->tarpit_limited++;
				}
			} else {
				bad = 1;
			}
		}
		if (bad) {
			r->wrong++;
			if (*shown < WRONG_SHOWN) {
				uint8_t a[16];
				char as[INET6_ADDRSTRLEN];

				set_addr(&r->sets[p->set], p->host, a);
				addr_str(r->sets[p->set].pfx.family, a, as, sizeof(as));
				fprintf(wrongf, "wrong: probe %" PRIu64 " from %s port %u at %.3fs: "
					"expected %s, got %s\n", id, as,
					(unsigned)p->sport,
					p->sent_us / 1e6, exp_names[e], obs_names[p->obs]);
				(*shown)++;
			}
		}
	}
	free(tab);
	return 0;
}


/* ---- SMTP mode ------------------------------------------------------------ */

/* What a real connection from a --smtp-src address got. */
enum smtp_out {
	SO_DELIVERED,   /* 250 after the final dot */
	SO_REFUSED,     /* a 4xx/5xx reply at some step (the SMTP gate) */
	SO_SILENT,      /* connected, no greeting within the timeout (tarpit) */
	SO_NOCONN,      /* no connection within the timeout (dropped at the SYN) */
	SO_RESET,       /* connection refused or reset */
	SO_N
};
static const char *so_names[SO_N] = { "delivered", "refused", "silent", "no-conn", "reset" };

enum smtp_step { ST_CONNECT, ST_BANNER, ST_EHLO, ST_MAIL, ST_RCPT, ST_DATA, ST_BODY, ST_DONE };

struct smtp_conn {
	int fd;
	enum smtp_step step;
	uint8_t set;
	uint64_t host;
	uint64_t deadline;
	char buf[2048];
	size_t len;
	char last[160];      /* the last reply line (a refusal is shown) */
};

#define SMTP_PAR 32

/* smtp_say - write a command line (short, to a fresh socket: one write) */
static int smtp_say(struct smtp_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int smtp_say(struct smtp_conn *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -EINVAL;
	return write(c->fd, line, (size_t)n) == n ? 0 : -EIO;
}

/* smtp_reply - the code of the last line of a complete reply in c->buf,
 * 0 while incomplete; the reply is consumed */
static int smtp_reply(struct smtp_conn *c)
{
	char *line = c->buf, *nl;

	while ((nl = memchr(line, '\n', c->len - (size_t)(line - c->buf)))) {
		if (nl - line >= 3 && (nl - line == 3 || line[3] == ' ' || line[3] == '\r')) {
			int code = atoi(line);
			size_t n = (size_t)(nl - line);

			if (n && line[n - 1] == '\r')
				n--;
			if (n >= sizeof(c->last))
				n = sizeof(c->last) - 1;
			memcpy(c->last, line, n);
			c->last[n] = 0;

			c->len = 0;
			return code > 0 ? code : 999;
		}
		line = nl + 1;
	}
	return 0;
}

/* smtp_advance - act on a reply; returns an outcome when the connection ends,
 * -1 while it goes on */
static int smtp_advance(const struct opts *o, struct smtp_conn *c, int code, uint64_t id)
{
	if (code >= 400)
		return SO_REFUSED;
	switch (c->step) {
	case ST_BANNER:
		c->step = ST_EHLO;
		return smtp_say(c, "EHLO pktgen.moat.test\r\n") ? SO_RESET : -1;
	case ST_EHLO:
		c->step = ST_MAIL;
		return smtp_say(c, "MAIL FROM:<%s>\r\n", o->smtp_from) ? SO_RESET : -1;
	case ST_MAIL:
		c->step = ST_RCPT;
		return smtp_say(c, "RCPT TO:<%s>\r\n", o->smtp_rcpt) ? SO_RESET : -1;
	case ST_RCPT:
		c->step = ST_DATA;
		return smtp_say(c, "DATA\r\n") ? SO_RESET : -1;
	case ST_DATA:
		c->step = ST_BODY;
		return smtp_say(c, "Subject: moat-pktgen %" PRIu64 "\r\n\r\nmoat-pktgen "
				"SMTP mode, connection %" PRIu64 "\r\n.\r\n", id, id) ? SO_RESET : -1;
	case ST_BODY:
		c->step = ST_DONE;
		smtp_say(c, "QUIT\r\n");
		return SO_DELIVERED;
	default:
		return SO_RESET;
	}
}

/* smtp_open - a non-blocking connection from host h of set si; fd or -errno */
static int smtp_open(const struct run *r, unsigned si, uint64_t h)
{
	const struct srcset *s = &r->sets[si];
	struct sockaddr_storage src = { 0 }, dst = { 0 };
	socklen_t sl;
	int fd, one = 1;

	if (s->pfx.family == MOAT_AF_INET) {
		struct sockaddr_in *a = (void *)&src, *b = (void *)&dst;

		a->sin_family = b->sin_family = AF_INET;
		set_addr(s, h, (uint8_t *)&a->sin_addr);
		memcpy(&b->sin_addr, r->o->dst4, 4);
		b->sin_port = htons(r->o->port);
		sl = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (void *)&src, *b = (void *)&dst;

		a->sin6_family = b->sin6_family = AF_INET6;
		set_addr(s, h, a->sin6_addr.s6_addr);
		memcpy(&b->sin6_addr, r->o->dst6, 16);
		b->sin6_port = htons(r->o->port);
		sl = sizeof(*a);
	}
	fd = socket(src.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&src, sl) < 0 ||
	    (connect(fd, (struct sockaddr *)&dst, sl) < 0 && errno != EINPROGRESS)) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

/* bound_as_asked - did the connection leave from the address it was bound
 * to?  (A broadcast address binds, and the kernel then sends from another
 * one: a /28 on lo has one at .15.)  Says so when not. */
static bool bound_as_asked(const struct run *r, const struct smtp_conn *x)
{
	const struct srcset *s = &r->sets[x->set];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	uint8_t want[16];
	const void *got;
	char ws[INET6_ADDRSTRLEN], gs[INET6_ADDRSTRLEN];
	unsigned alen = s->pfx.family == MOAT_AF_INET ? 4 : 16;

	if (getsockname(x->fd, (struct sockaddr *)&ss, &sl) < 0)
		return true;
	got = ss.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr :
					(const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
	set_addr(s, x->host, want);
	if (!memcmp(want, got, alen))
		return true;
	addr_str(s->pfx.family, want, ws, sizeof(ws));
	addr_str(s->pfx.family, got, gs, sizeof(gs));
	fprintf(stderr, "moat-pktgen: SMTP from %s left from %s (a broadcast address? "
		"configure the set's addresses here)\n", ws, gs);
	return false;
}

/* smtp_judge - is outcome right for the fast path's expected verdict:
 * pass = a session (delivered, or refused by the SMTP gate); tarpit = a
 * handshake and silence, or no connection (over its rate limit); drop =
 * no connection */
static bool smtp_right(uint8_t e, int out)
{
	switch (e) {
	case EXP_PASS:
		return out == SO_DELIVERED || out == SO_REFUSED;
	case EXP_TARPIT:
		return out == SO_SILENT || out == SO_NOCONN;
	default:
		return out == SO_NOCONN;
	}
}

/* smtp_run - o->smtp_n connections spread over the --smtp-src sets (in
 * order of hosts, SMTP_PAR at a time), each a minimal transaction; fills
 * smtp_cell, prints wrong ones to wrongf; 0 or -errno (a source address
 * that is not configured here is an error) */
static int smtp_run(struct run *r, FILE *wrongf, unsigned *shown)
{
	struct smtp_conn c[SMTP_PAR];
	struct pollfd pfd[SMTP_PAR];
	unsigned nsm = 0, sm[SETS_MAX], started = 0, done = 0, active = 0, refused_shown = 0;
	uint64_t seq[SETS_MAX] = { 0 };

	for (unsigned i = 0; i < r->nsets; i++)
		if (r->sets[i].smtp)
			sm[nsm++] = i;
	for (unsigned k = 0; k < SMTP_PAR; k++)
		c[k].fd = -1;
	while (done < r->o->smtp_n && !stop) {
		uint64_t now = moat_clock_ns();

		for (unsigned k = 0; k < SMTP_PAR && started < r->o->smtp_n; k++) {
			if (c[k].fd >= 0)
				continue;
			unsigned si = sm[started % nsm];
			struct srcset *s = &r->sets[si];
			uint64_t mask = s->hostbits >= 64 ? ~0ull : (1ull << s->hostbits) - 1;
			uint64_t h = seq[started % nsm]++ & mask;
			int fd = smtp_open(r, si, h);

			if (fd < 0) {
				uint8_t a[16];
				char as[INET6_ADDRSTRLEN];

				set_addr(s, h, a);
				addr_str(s->pfx.family, a, as, sizeof(as));
				fprintf(stderr, "moat-pktgen: SMTP from %s: %s (is it configured here?)\n",
					as, strerror(-fd));
				for (unsigned j = 0; j < SMTP_PAR; j++)
					if (c[j].fd >= 0)
						close(c[j].fd);
				return fd;
			}
			c[k] = (struct smtp_conn){ .fd = fd, .step = ST_CONNECT, .set = (uint8_t)si,
						   .host = h,
						   .deadline = now + r->o->smtp_timeout_ms * 1000000ull };
			started++;
			active++;
		}
		for (unsigned k = 0; k < SMTP_PAR; k++) {
			pfd[k].fd = c[k].fd;
			pfd[k].events = c[k].step == ST_CONNECT ? POLLOUT : POLLIN;
			pfd[k].revents = 0;
		}
		poll(pfd, SMTP_PAR, 20);
		now = moat_clock_ns();
		for (unsigned k = 0; k < SMTP_PAR; k++) {
			struct smtp_conn *x = &c[k];
			int out = -1;

			if (x->fd < 0)
				continue;
			if (pfd[k].revents && x->step == ST_CONNECT) {
				int err = 0;
				socklen_t el = sizeof(err);

				getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err == ETIMEDOUT)
					out = SO_NOCONN;
				else if (err)
					out = SO_RESET;
				else
					x->step = ST_BANNER;
				x->deadline = now + r->o->smtp_timeout_ms * 1000000ull;
				if (!err && !bound_as_asked(r, x)) {
					for (unsigned j = 0; j < SMTP_PAR; j++)
						if (c[j].fd >= 0)
							close(c[j].fd);
					return -EADDRNOTAVAIL;
				}
			} else if (pfd[k].revents) {
				ssize_t n = read(x->fd, x->buf + x->len, sizeof(x->buf) - 1 - x->len);

				if (n <= 0) {
					out = x->step == ST_DONE ? SO_DELIVERED : SO_RESET;
				} else {
					int code;

					x->len += (size_t)n;
					if ((code = smtp_reply(x))) {
						out = smtp_advance(r->o, x, code, done);
						x->deadline = now + r->o->smtp_timeout_ms * 1000000ull;
					}
					else if (x->len >= sizeof(x->buf) - 1)
						out = SO_RESET;
				}
			}
			if (out < 0 && now >= x->deadline)
				out = x->step == ST_CONNECT ? SO_NOCONN :
				      x->step == ST_BANNER ? SO_SILENT : SO_RESET;
			if (out < 0)
				continue;
			struct probe pr = { .set = x->set, .host = x->host };
			uint8_t e = probe_expect2(r, &pr) & 15; /* the first table's */

			r->smtp_cell[e][out]++;
			if (out == SO_REFUSED && refused_shown < WRONG_SHOWN) {
				uint8_t a[16];
				char as[INET6_ADDRSTRLEN];

				set_addr(&r->sets[x->set], x->host, a);
				addr_str(r->sets[x->set].pfx.family, a, as, sizeof(as));
				fprintf(wrongf, "refused: SMTP from %s: %s\n", as, x->last);
				refused_shown++;
			}
			if (!smtp_right(e, out)) {
				r->smtp_wrong++;
				if (*shown < WRONG_SHOWN) {
					uint8_t a[16];
					char as[INET6_ADDRSTRLEN];

					set_addr(&r->sets[x->set], x->host, a);
					addr_str(r->sets[x->set].pfx.family, a, as, sizeof(as));
					fprintf(wrongf, "wrong: SMTP from %s: expected %s, got %s\n", as,
						exp_names[e], so_names[out]);
					(*shown)++;
				}
			}
			close(x->fd);
			x->fd = -1;
			active--;
			done++;
		}
	}
	for (unsigned k = 0; k < SMTP_PAR; k++)
		if (c[k].fd >= 0)
			close(c[k].fd);
	return 0;
}

static void smtp_report_text(const struct run *r)
{
	printf("\nSMTP mode: %u connections\n%-16s", r->o->smtp_n, "expected \\ got");
	for (int k = 0; k < SO_N; k++)
		printf(" %10s", so_names[k]);
	printf("\n");
	for (int e = 0; e < EXP_N; e++) {
		printf("%-16s", exp_names[e]);
		for (int k = 0; k < SO_N; k++)
			printf(" %10" PRIu64, r->smtp_cell[e][k]);
		printf("\n");
	}
	printf("SMTP wrong: %" PRIu64 "\n", r->smtp_wrong);
}

static void smtp_report_json(const struct run *r, struct json_object *j)
{
	struct json_object *m = json_object_new_object();

	for (int e = 0; e < EXP_N; e++) {
		struct json_object *row = json_object_new_object();

		for (int k = 0; k < SO_N; k++)
			json_object_object_add(row, so_names[k],
					       json_object_new_int64((int64_t)r->smtp_cell[e][k]));
		json_object_object_add(m, exp_names[e], row);
	}
	json_object_object_add(j, "smtp_matrix", m);
	json_object_object_add(j, "smtp_wrong", json_object_new_int64((int64_t)r->smtp_wrong));
}

/* ---- phases ---------------------------------------------------------------- */

/* xdp_syns - the fast path's SYN counters (pass, allow, drop, tarpit,
 * tarpit_limited) summed, from moat-controld's "stats"; -errno on failure */
static int64_t xdp_syns(const char *sock)
{
	static const char *keys[] = { "pass", "allow", "drop", "tarpit", "tarpit_limited" };
	struct json_object *req, *rep = NULL, *res, *cnt, *v;
	struct ctl_buf b;
	int64_t sum = 0;
	int fd = ctl_connect(sock), err, ok = 0;

	if (fd < 0)
		return fd;
	ctl_buf_init(&b, CTL_MAX_REPLY);
	req = ctl_request_new(1, "stats");
	err = ctl_call(fd, &b, req, &rep, 5000);
	json_object_put(req);
	if (!err && (ctl_get_bool(rep, "ok", &ok) || !ok ||
		     !json_object_object_get_ex(rep, "result", &res) ||
		     !json_object_object_get_ex(res, "counters", &cnt)))
		err = -EPROTO;
	for (size_t i = 0; !err && i < sizeof(keys) / sizeof(keys[0]); i++)
		if (json_object_object_get_ex(cnt, keys[i], &v))
			sum += json_object_get_int64(v);
	json_object_put(rep);
	ctl_buf_free(&b);
	close(fd);
	return err ? err : sum;
}

/* phase_reset - a fresh matrix; probe ids go on from where they were */
static void phase_reset(struct run *r)
{
	r->id_base += (uint32_t)r->nsent;
	r->nsent = r->nrecv = r->nmatched = r->nstray = r->ndups = r->tx_errors = 0;
	r->wrong_live = r->tarpit_limited = r->tarpit_unanswered = 0;
	r->passed_unanswered = r->pass_rst = r->wrong = r->kdrops = r->xdp_seen = 0;
	r->kdrops_known = r->xdp_known = false;
	memset(r->cell, 0, sizeof(r->cell));
	memset(r->fits, 0, sizeof(r->fits));
}

/* phase - send at rate (0 = flat out) for the run's duration or count,
 * then judge; the wrong probes go to wrongf (NULL: not shown).  0 or
 * -errno */
static int phase(struct run *r, double rate, FILE *wrongf, unsigned *shown)
{
	struct opts *o = r->o;
	int64_t k0 = -1, k1, x0 = -1, x1;
	unsigned none = WRONG_SHOWN;

	phase_reset(r);
	o->rate = rate;
	if (o->stats_netns && (k0 = kernel_drops(o->stats_netns)) < 0)
		fprintf(stderr, "moat-pktgen: kernel counters of %s: %s\n", o->stats_netns,
			strerror((int)-k0));
	if (o->socket)
		x0 = xdp_syns(o->socket);
	send_loop(r);
	if (o->no_rx)
		return 0;     /* nothing to judge */
	if (k0 >= 0 && (k1 = kernel_drops(o->stats_netns)) >= 0) {
		r->kdrops = (uint64_t)(k1 - k0);
		r->kdrops_known = true;
	}
	if (x0 >= 0 && (x1 = xdp_syns(o->socket)) >= 0) {
		r->xdp_seen = (uint64_t)(x1 - x0);
		r->xdp_known = true;
	}
	return judge(r, wrongf ? wrongf : stderr, wrongf ? shown : &none);
}

/* find_rate - flat out (the throughput), then 90, 70, 50, 30, 15, 5 % of
 * it until a phase is lossless; the last phase's matrix is the one judged.
 * 0 or -errno */
static int find_rate(struct run *r, FILE *wrongf, unsigned *shown)
{
	static const int pct[] = { 90, 70, 50, 30, 15, 5 };
	int err = phase(r, 0, NULL, NULL);

	if (err)
		return err;
	r->flat_pps = r->end_tx_ns > r->start_ns ?
		r->nsent / ((double)(r->end_tx_ns - r->start_ns) / 1e9) : 0;
	for (size_t i = 0; i < sizeof(pct) / sizeof(pct[0]) && !stop; i++) {
		double rate = r->flat_pps * pct[i] / 100;
		bool last = i + 1 == sizeof(pct) / sizeof(pct[0]);

		if (rate < 1)
			rate = 1;
		if (!r->o->quiet)
			fprintf(stderr, "moat-pktgen: trying %.0f pps (%d %% of %.0f flat out)\n",
				rate, pct[i], r->flat_pps);
		err = phase(r, rate, NULL, NULL);
		if (err)
			return err;
		if (lossless(r) || last) {
			r->found_rate = lossless(r) ? rate : 0;
			/* judge again for the report, now printing the wrong ones */
			r->wrong = r->tarpit_limited = r->tarpit_unanswered = 0;
			r->passed_unanswered = r->pass_rst = 0;
			memset(r->cell, 0, sizeof(r->cell));
			memset(r->fits, 0, sizeof(r->fits));
			return judge(r, wrongf, shown);
		}
	}
	return 0;
}

/* ---- report -------------------------------------------------------------- */

/* lossless - the run shows no loss of its own: nothing dropped by the
 * device, the fast path counted every SYN (with --socket), every pass
 * answered, every tarpit probe within its budget answered; wrong verdicts
 * are only meaningful at such a rate */
static bool lossless(const struct run *r)
{
	return !r->tx_dropped_dev && !r->rx_dropped && !r->passed_unanswered && !r->tarpit_unanswered && !r->tx_errors &&
	       (!r->xdp_known || r->xdp_seen >= r->nsent);
}

static void report_text(struct run *r)
{
	double tx_s = (double)(r->end_tx_ns - r->start_ns) / 1e9;
	double all_s = (double)(r->end_ns - r->start_ns) / 1e9;

	if (r->o->no_rx) {
		printf("sent %" PRIu64 " SYNs (%s) in %.2f s: %.0f pps%s; --no-rx: replies "
		       "dropped unseen, no verdicts\n", r->nsent, r->o->xsk ? "AF_XDP" : "AF_PACKET",
		       tx_s, tx_s > 0 ? r->nsent / tx_s : 0.0, r->o->rate > 0 ? "" : " (flat out)");
		if (r->tx_dropped_dev)
			printf("device tx_dropped during the run: %" PRIu64 "\n", r->tx_dropped_dev);
		return;
	}
	printf("sent %" PRIu64 " SYNs (%s) in %.2f s: %.0f pps%s; replies matched %" PRIu64
	       " (%.0f pps over %.2f s), stray %" PRIu64 ", duplicate %" PRIu64 "\n",
	       r->nsent, r->o->xsk ? "AF_XDP" : "AF_PACKET", tx_s, tx_s > 0 ? r->nsent / tx_s : 0.0,
	       r->o->rate > 0 ? "" : " (flat out)", r->nmatched,
	       all_s > 0 ? r->nmatched / all_s : 0.0, all_s, r->nstray, r->ndups);
	if (r->tx_dropped_dev)
		printf("device tx_dropped during the run: %" PRIu64 "\n", r->tx_dropped_dev);
	if (r->xdp_known)
		printf("the fast path counted %" PRIu64 " SYNs meanwhile\n", r->xdp_seen);
	if (r->o->find_rate)
		printf("flat out: %.0f pps; judged at %.0f pps%s\n", r->flat_pps, r->o->rate,
		       r->found_rate > 0 ? " (lossless)" : " (no lossless rate found)");
	printf("\n%-16s %10s %10s %10s %10s %10s\n", "expected \\ got", obs_names[1], obs_names[2],
	       obs_names[3], obs_names[0], "total");
	for (int e = 0; e < EXP_N; e++) {
		uint64_t tot = 0;

		for (int k = 0; k < OBS_N; k++)
			tot += r->cell[e][k];
		printf("%-16s", exp_names[e]);
		for (int k = 1; k <= OBS_N; k++) {
			uint64_t c = r->cell[e][k % OBS_N];

			printf(" %10" PRIu64, c);
		}
		printf(" %10" PRIu64 "\n", tot);
		if (tot) {
			printf("%-16s", "");
			for (int k = 1; k <= OBS_N; k++)
				printf(" %9.2f%%", 100.0 * r->cell[e][k % OBS_N] / tot);
			printf("\n");
		}
	}
	printf("\ntarpit, rate-limited (right): %" PRIu64 "; tarpit unanswered within its budget "
	       "(wrong): %" PRIu64 "\n", r->tarpit_limited, r->tarpit_unanswered);
	printf("passed, unanswered: %" PRIu64, r->passed_unanswered);
	if (r->kdrops_known)
		printf(" (appliance kernel drops: %" PRIu64 ")", r->kdrops);
	if (r->tx_dropped_dev || r->rx_dropped)
		printf(" (generator drops: device %" PRIu64 ", RX ring %" PRIu64 ")",
		       r->tx_dropped_dev, r->rx_dropped);
	printf("; passed, RST (no listener): %" PRIu64 "\n", r->pass_rst);
	printf("lossless at this rate: %s\n", lossless(r) ? "yes" :
	       "no (judge at a lower --rate)");
	if (r->o->expect_also)
		printf("tables disagreeing: the reply fit the first %" PRIu64 ", the second %" PRIu64 "\n",
		       r->fits[0], r->fits[1]);
	printf("wrong verdicts: %" PRIu64 "\n", r->wrong);
}

static void report_json(struct run *r)
{
	struct json_object *j = json_object_new_object(), *m = json_object_new_object();
	double tx_s = (double)(r->end_tx_ns - r->start_ns) / 1e9;
	double all_s = (double)(r->end_ns - r->start_ns) / 1e9;

	json_object_object_add(j, "sent", json_object_new_int64((int64_t)r->nsent));
	json_object_object_add(j, "matched", json_object_new_int64((int64_t)r->nmatched));
	json_object_object_add(j, "stray", json_object_new_int64((int64_t)r->nstray));
	json_object_object_add(j, "pps_sent", json_object_new_double(tx_s > 0 ? r->nsent / tx_s : 0));
	json_object_object_add(j, "pps_received",
			       json_object_new_double(all_s > 0 ? r->nmatched / all_s : 0));
	json_object_object_add(j, "rate", json_object_new_double(r->o->rate));
	json_object_object_add(j, "tx", json_object_new_string(r->o->xsk ? "xsk" : "packet"));
	if (r->o->no_rx) {
		json_object_object_add(j, "no_rx", json_object_new_boolean(1));
		json_object_object_add(j, "no_rx_xdp", json_object_new_boolean(r->o->no_rx_xdp));
		json_object_object_add(j, "tx_dropped_dev",
				       json_object_new_int64((int64_t)r->tx_dropped_dev));
		printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
		json_object_put(j);
		json_object_put(m);
		return;
	}
	if (r->xdp_known)
		json_object_object_add(j, "xdp_syns", json_object_new_int64((int64_t)r->xdp_seen));
	if (r->o->find_rate) {
		json_object_object_add(j, "pps_flat", json_object_new_double(r->flat_pps));
		json_object_object_add(j, "pps_lossless", json_object_new_double(r->found_rate));
	}
	json_object_object_add(j, "tx_dropped_dev", json_object_new_int64((int64_t)r->tx_dropped_dev));
	json_object_object_add(j, "rx_dropped", json_object_new_int64((int64_t)r->rx_dropped));
	for (int e = 0; e < EXP_N; e++) {
		struct json_object *row = json_object_new_object();

		for (int k = 0; k < OBS_N; k++)
			json_object_object_add(row, obs_names[k],
					       json_object_new_int64((int64_t)r->cell[e][k]));
		json_object_object_add(m, exp_names[e], row);
	}
	json_object_object_add(j, "matrix", m);
	json_object_object_add(j, "tarpit_rate_limited", json_object_new_int64((int64_t)r->tarpit_limited));
	json_object_object_add(j, "tarpit_unanswered", json_object_new_int64((int64_t)r->tarpit_unanswered));
	json_object_object_add(j, "passed_unanswered", json_object_new_int64((int64_t)r->passed_unanswered));
	json_object_object_add(j, "passed_rst", json_object_new_int64((int64_t)r->pass_rst));
	if (r->kdrops_known)
		json_object_object_add(j, "kernel_drops", json_object_new_int64((int64_t)r->kdrops));
	json_object_object_add(j, "wrong", json_object_new_int64((int64_t)r->wrong));
	if (r->o->expect_also) {
		json_object_object_add(j, "fit_first", json_object_new_int64((int64_t)r->fits[0]));
		json_object_object_add(j, "fit_second", json_object_new_int64((int64_t)r->fits[1]));
	}
	json_object_object_add(j, "lossless", json_object_new_boolean(lossless(r)));
	if (r->o->smtp_n)
		smtp_report_json(r, j);
	printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
	json_object_put(j);
}

/* ---- options ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: moat-pktgen -i IFACE --to ADDR [--to ADDR6] --src CIDR[:SHARE]... \n"
		"                   (--expect FILE and/or --socket PATH) [options]\n"
		"  -i, --iface IF          send and receive on IF (the generator's side)\n"
		"      --to ADDR           the appliance's address (one IPv4, one IPv6)\n"
		"  -p, --port N            its SMTP port (25)\n"
		"      --src CIDR[:SHARE]  a source set and its share (weight, default 1); up to %d\n"
		"      --sequential        hosts of a set in order (default random)\n"
		"  -r, --rate PPS          target rate (default 0 = flat out)\n"
		"      --find-rate         flat out, then 90..5 %% of that rate until a phase is\n"
		"                          lossless; that phase's matrix is judged\n"
		"  -d, --duration S        send for S seconds (default 1)\n"
		"  -n, --count N           send N probes (stops first of -d/-n)\n"
		"      --vlan ID           802.1Q tag\n"
		"      --dst-mac MAC       the appliance's MAC (default: ARP for the IPv4 --to)\n"
		"      --expect FILE       expected verdicts: \"PREFIX pass|drop|tarpit|allow\" lines\n"
		"      --socket PATH       expected verdicts from moat-controld's lookup (with\n"
		"                          --expect: only the fast path's SYN counters)\n"
		"      --expect-also FILE  a second table (the table changes during the run):\n"
		"                          a verdict either table gives is right\n"
		"      --netns-stats NS    read the appliance kernel's TCP drop counters in NS\n"
		"      --timeout MS        wait for replies after the last probe (1000)\n"
		"      --sports LO-HI      probe source ports (1024-32767)\n"
		"      --tarpit-src PPS/BURST     the appliance's tarpit budget per /24 or /48 (10/20)\n"
		"      --tarpit-global PPS/BURST  and its global one (10000/20000)\n"
		"      --max-probes N      probes tracked (%u)\n"
		"      --json              the result as one JSON object\n"
		"  -q, --quiet             no progress line\n"
		"      --smtp-src CIDR     SMTP mode: real connections from these addresses (they\n"
		"                          must be configured here), after the flood\n"
		"      --smtp N            connections (10); --smtp-rcpt ADDR (postmaster@localhost),\n"
		"                          --smtp-from ADDR (pktgen@example.org)\n"
		"      --smtp-timeout MS   per step of a connection (3000)\n"
		"      --no-rx             fire and forget (floods): no RX ring, no verdicts; the\n"
		"                          replies to the probes dropped by the XDP program\n"
		"                          (a spoofing attacker never receives them)\n"
		"      --no-rx-xdp         with --no-rx: no XDP program either (the tc drop\n"
		"                          only); on a veth, frames its peer sends with XDP_TX\n"
		"                          are then dropped at the peer's transmit\n"
		"      --tx xsk|packet     TX path: AF_XDP in copy mode (default when built with\n"
		"                          libxdp) or the AF_PACKET ring with qdisc bypass\n"
		"Exit: 0 every verdict right, 1 a wrong verdict, 2 usage or set-up error.\n"
		"See moat-pktgen(1).\n", SETS_MAX, PROBES_DEF);
}

static int parse_mac(const char *s, uint8_t *m)
{
	return sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &m[0], &m[1], &m[2], &m[3], &m[4],
		      &m[5]) == 6 ? 0 : -EINVAL;
}

static int parse_src(struct run *r, const char *arg)
{
	char buf[128], *colon;
	struct srcset *s;
	unsigned share = 1;

	if (r->nsets >= SETS_MAX || strlen(arg) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, arg);
	/* the share follows the last ':' after the '/' */
	colon = strrchr(buf, ':');
	if (colon && strchr(buf, '/') && colon > strchr(buf, '/')) {
		char *end;

		*colon = 0;
		share = (unsigned)strtoul(colon + 1, &end, 10);
		if (*end || share == 0)
			return -EINVAL;
	}
	s = &r->sets[r->nsets];
	if (moat_prefix_parse(buf, &s->pfx) < 0)
		return -EINVAL;
	s->share = share;
	s->hostbits = (s->pfx.family == MOAT_AF_INET ? 32u : 128u) - s->pfx.plen;
	if (s->hostbits > 48)
		s->hostbits = 48;
	r->nsets++;
	return 0;
}

static int parse_pair(const char *s, double *a, double *b)
{
	return sscanf(s, "%lf/%lf", a, b) == 2 && *a > 0 && *b >= 1 ? 0 : -EINVAL;
}

/* resolve_mac - the neighbour's MAC of the IPv4 target: a datagram makes
 * the kernel resolve it, then /proc/net/arp has it; 0 or -errno */
static int resolve_mac(struct run *r)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(9) };
	char line[256], ip[64], want[64], mac[64], dev[64];
	int fd;

	if (!r->o->have4)
		return -EDESTADDRREQ;
	memcpy(&sin.sin_addr, r->o->dst4, 4);
	inet_ntop(AF_INET, r->o->dst4, want, sizeof(want));
	for (int tries = 0; tries < 30; tries++) {
		FILE *f = fopen("/proc/net/arp", "r");

		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "%63s %*s %*s %63s %*s %63s", ip, mac, dev) == 3 &&
			    !strcmp(ip, want) && !strcmp(dev, r->o->ifname) &&
			    strcmp(mac, "00:00:00:00:00:00") && parse_mac(mac, r->o->dmac) == 0) {
				fclose(f);
				return 0;
			}
		if (f)
			fclose(f);
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd >= 0) {
			sendto(fd, "", 0, MSG_DONTWAIT, (struct sockaddr *)&sin, sizeof(sin));
			close(fd);
		}
		usleep(100000);
	}
	return -EHOSTUNREACH;
}

static int read_smac(struct run *r)
{
	char path[128];
	FILE *f;
	char mac[64];

	snprintf(path, sizeof(path), "/sys/class/net/%s/address", r->o->ifname);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	if (!fgets(mac, sizeof(mac), f) || parse_mac(mac, r->smac) < 0) {
		fclose(f);
		return -EINVAL;
	}
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "iface", required_argument, 0, 'i' }, { "to", required_argument, 0, 't' },
		{ "port", required_argument, 0, 'p' }, { "src", required_argument, 0, 's' },
		{ "sequential", no_argument, 0, 'S' }, { "rate", required_argument, 0, 'r' },
		{ "duration", required_argument, 0, 'd' }, { "count", required_argument, 0, 'n' },
		{ "vlan", required_argument, 0, 'V' }, { "dst-mac", required_argument, 0, 'M' },
		{ "expect", required_argument, 0, 'e' }, { "socket", required_argument, 0, 'c' },
		{ "expect-also", required_argument, 0, 'E' },
		{ "netns-stats", required_argument, 0, 'N' }, { "timeout", required_argument, 0, 'T' },
		{ "sports", required_argument, 0, 'P' }, { "tarpit-src", required_argument, 0, 'A' },
		{ "tarpit-global", required_argument, 0, 'G' },
		{ "max-probes", required_argument, 0, 'm' }, { "json", no_argument, 0, 'j' },
		{ "quiet", no_argument, 0, 'q' }, { "tx", required_argument, 0, 'X' },
		{ "find-rate", no_argument, 0, 'F' }, { "no-rx", no_argument, 0, 'Z' },
		{ "no-rx-xdp", no_argument, 0, 'z' },
		{ "smtp-src", required_argument, 0, 'U' }, { "smtp", required_argument, 0, 'C' },
		{ "smtp-rcpt", required_argument, 0, 'R' }, { "smtp-from", required_argument, 0, 'f' },
		{ "smtp-timeout", required_argument, 0, 'W' }, { "help", no_argument, 0, 'h' }, { 0 }
	};
	struct opts o = {
		.port = 25, .vlan = -1, .duration = 1, .timeout_ms = 1000,
		.max_probes = PROBES_DEF, .sport_lo = 1024, .sport_hi = 32767,
		.smtp_timeout_ms = 3000, .smtp_rcpt = "postmaster@localhost",
		.smtp_from = "pktgen@example.org",
		.tp_src_pps = 10, .tp_src_burst = 20, .tp_glob_pps = 10000, .tp_glob_burst = 20000,
#ifdef MOAT_PKTGEN_XSK
		.xsk = true, /* measured faster than the packet ring (docs/pktgen.md) */
#endif
	};
	struct run *r = calloc(1, sizeof(*r));
	int c, err, rc = 2;
	bool dur_set = false, tx_set = false;
	unsigned nsmtp = 0;
	unsigned shown = 0, total = 0;

	if (!r)
		return 2;
	r->o = &o;
	r->txfd = r->rxfd = -1;
	while ((c = getopt_long(argc, argv, "i:p:r:d:n:qh", lo, NULL)) != -1) {
		char *end = NULL;

		switch (c) {
		case 'i': o.ifname = optarg; break;
		case 't':
			if (inet_pton(AF_INET, optarg, o.dst4) == 1)
				o.have4 = true;
			else if (inet_pton(AF_INET6, optarg, o.dst6) == 1)
				o.have6 = true;
			else
				goto bad;
			break;
		case 'p': o.port = (uint16_t)strtoul(optarg, &end, 10); break;
		case 's':
			if (parse_src(r, optarg) < 0)
				goto bad;
			break;
		case 'S': o.sequential = true; break;
		case 'F': o.find_rate = true; break;
		case 'Z': o.no_rx = true; break;
		case 'z': o.no_rx_xdp = true; break;
		case 'U':
			if (parse_src(r, optarg) < 0)
				goto bad;
			r->sets[r->nsets - 1].smtp = true;
			nsmtp++;
			break;
		case 'C': o.smtp_n = (unsigned)strtoul(optarg, &end, 10); break;
		case 'R': o.smtp_rcpt = optarg; break;
		case 'f': o.smtp_from = optarg; break;
		case 'W': o.smtp_timeout_ms = (unsigned)strtoul(optarg, &end, 10); break;
		case 'r': o.rate = strtod(optarg, &end); break;
		case 'd': o.duration = strtod(optarg, &end); dur_set = true; break;
		case 'n': o.count = strtoull(optarg, &end, 10); break;
		case 'V': o.vlan = (int)strtol(optarg, &end, 10); break;
		case 'M':
			if (parse_mac(optarg, o.dmac) < 0)
				goto bad;
			o.have_dmac = true;
			break;
		case 'e': o.expect_file = optarg; break;
		case 'E': o.expect_also = optarg; break;
		case 'c': o.socket = optarg; break;
		case 'N': o.stats_netns = optarg; break;
		case 'T': o.timeout_ms = (unsigned)strtoul(optarg, &end, 10); break;
		case 'P':
			if (sscanf(optarg, "%hu-%hu", &o.sport_lo, &o.sport_hi) != 2 ||
			    o.sport_lo == 0 || o.sport_hi < o.sport_lo)
				goto bad;
			break;
		case 'A':
			if (parse_pair(optarg, &o.tp_src_pps, &o.tp_src_burst) < 0)
				goto bad;
			break;
		case 'G':
			if (parse_pair(optarg, &o.tp_glob_pps, &o.tp_glob_burst) < 0)
				goto bad;
			break;
		case 'm': o.max_probes = strtoull(optarg, &end, 10); break;
		case 'j': o.json = true; break;
		case 'q': o.quiet = true; break;
		case 'X':
			tx_set = true;
			if (!strcmp(optarg, "xsk")) {
#ifdef MOAT_PKTGEN_XSK
				o.xsk = true;
#else
				fprintf(stderr, "moat-pktgen: built without libxdp: no --tx xsk\n");
				goto out;
#endif
			} else if (!strcmp(optarg, "packet")) {
				o.xsk = false;
			} else {
				goto bad;
			}
			break;
		case 'h': usage(stdout); rc = 0; goto out;
		default: usage(stderr); goto out;
		}
		if (end && *end) {
bad:
			fprintf(stderr, "moat-pktgen: bad option value: %s\n", optarg);
			goto out;
		}
	}
	if (o.count && !dur_set)
		o.duration = 0;
	if (!o.ifname || !r->nsets || (!o.have4 && !o.have6) || (!o.expect_file && !o.socket) ||
	    o.max_probes == 0 || o.max_probes > (1ull << 32) || o.rate < 0 ||
	    (o.vlan < -1 || o.vlan > 4094) || optind != argc) {
		usage(stderr);
		goto out;
	}
	for (unsigned i = 0; i < r->nsets; i++) {
		if ((r->sets[i].pfx.family == MOAT_AF_INET && !o.have4) ||
		    (r->sets[i].pfx.family == MOAT_AF_INET6 && !o.have6)) {
			fprintf(stderr, "moat-pktgen: set %u: no --to address of its family\n", i);
			goto out;
		}
		if (!r->sets[i].smtp)
			total += r->sets[i].share;
	}
	if (nsmtp && !o.smtp_n)
		o.smtp_n = 10;
	if (o.smtp_n && !nsmtp) {
		fprintf(stderr, "moat-pktgen: --smtp needs --smtp-src\n");
		goto out;
	}
	/* the share table: set i takes share_i/total of 1024 slots */
	for (unsigned i = 0, at = 0, acc = 0; i < r->nsets && total; i++) {
		if (r->sets[i].smtp)
			continue;
		acc += r->sets[i].share;
		unsigned to = (unsigned)((uint64_t)acc * 1024 / total);

		while (at < to)
			r->pick[at++] = (uint8_t)i;
	}
	r->ifindex = (int)if_nametoindex(o.ifname);
	if (!r->ifindex) {
		fprintf(stderr, "moat-pktgen: no interface %s\n", o.ifname);
		goto out;
	}
	if (getrandom(&r->rng, sizeof(r->rng), 0) != sizeof(r->rng) || !r->rng)
		r->rng = 0x9E3779B97F4A7C15ULL;
	if (build_expectations(r) < 0)
		goto out;
	if (read_smac(r) < 0 || (!o.have_dmac && resolve_mac(r) < 0)) {
		fprintf(stderr, "moat-pktgen: cannot find the MAC addresses (give --dst-mac)\n");
		goto out;
	}
	if (o.no_rx_xdp && !o.no_rx) {
		fprintf(stderr, "moat-pktgen: --no-rx-xdp goes with --no-rx\n");
		goto out;
	}
	if (o.no_rx && (o.find_rate || o.smtp_n)) {
		fprintf(stderr, "moat-pktgen: --no-rx judges nothing: not with --find-rate or --smtp\n");
		goto out;
	}
	/* --no-rx tracks no probe: one slot, rewritten for each */
	r->probes = calloc(o.no_rx ? 1 : o.max_probes, sizeof(*r->probes));
	if (!r->probes) {
		fprintf(stderr, "moat-pktgen: no memory for %" PRIu64 " probes\n", o.max_probes);
		goto out;
	}
	libbpf_set_print(NULL);
	err = setup_progs(r);
	if (err) {
		fprintf(stderr, "moat-pktgen: attaching the reply filter to %s: %s\n", o.ifname,
			strerror(-err));
		goto out;
	}
	err = o.no_rx ? 0 : setup_rx(r);
	if (!err && !o.xsk)
		err = setup_tx(r);
#ifdef MOAT_PKTGEN_XSK
	if (!err && o.xsk && (err = setup_xsk(r)) && !tx_set) {
		/* the default path failed here: the packet ring works anywhere */
		fprintf(stderr, "moat-pktgen: AF_XDP on %s: %s; using the AF_PACKET ring\n",
			o.ifname, strerror(-err));
		o.xsk = false;
		err = setup_tx(r);
	}
#endif
	if (err) {
		fprintf(stderr, "moat-pktgen: packet rings on %s: %s\n", o.ifname, strerror(-err));
		goto out;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (o.find_rate)
		err = find_rate(r, o.json ? stderr : stdout, &shown);
	else if (total)
		err = phase(r, o.rate, o.json ? stderr : stdout, &shown);
	if (err < 0) {
		fprintf(stderr, "moat-pktgen: %s\n", strerror(-err));
		goto out;
	}
	if (o.smtp_n && smtp_run(r, o.json ? stderr : stdout, &shown) < 0)
		goto out;
	if (o.json) {
		report_json(r);
	} else {
		if (total)
			report_text(r);
		if (o.smtp_n)
			smtp_report_text(r);
	}
	rc = r->wrong || r->smtp_wrong ? 1 : 0;
out:
	teardown_progs(r);
	for (unsigned i = 0; i < r->nsets; i++) {
		free(r->sets[i].exp);
		free(r->sets[i].sport);
	}
	free(r->probes);
	free(r);
	return rc;
}
