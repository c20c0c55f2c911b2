/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xdp_backend.c - user side of the XDP fast path (see xdp_backend.h).
 *
 * Loads moat_xdp.bpf.o through its skeleton with the knobs in .rodata,
 * pins every map under the pin directory (or reuses the pinned ones, which
 * is how a restarted loader keeps table and counters), attaches through
 * bpf_links pinned next to the maps, and applies verdict-table update
 * sequences with batched map writes that keep the sequence's order.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "clock.h"
#include "log.h"
#include "moat_xdp.h"
#include "moat_xdp_bpf.skel.h"
#include "xdp_backend.h"
#include "vt_trie6.h"

#define MOAT_XDP_MAX_IFS 16
#define PUBLISH_CHUNK 4096 /* updates per batch syscall */
#define TBL24_BYTES ((size_t)MOAT_TBL24_ENTRIES * sizeof(__u32))
#define PLB_MAP_BYTES 4096 /* one page holds the one v6_plens element */
#define GRP_WINDOW (1u << 18) /* groups mapped at a time: 16 MiB */

struct pub_buf;

struct moat_xdp_link {
	char ifname[IF_NAMESIZE];
	int fd;
};

struct moat_xdp {
	struct moat_xdp_opts o;
	char pin_dir[PATH_MAX];
	struct moat_xdp_bpf *skel;
	__u32 *tbl24;              /* the mmap'd tbl24 map: dense u32[2^24] */
	struct moat_v6_plens_buf *plb; /* the mmap'd v6_plens map */
	struct moat_group *grp;    /* the groups value's address range (on first use) */
	size_t grp_len;            /* its length */
	__u32 grp_mapped;          /* groups [0, grp_mapped) mapped so far */
	struct pub_buf *pub;       /* IPv6 batches of publish (on first use) */
	struct vt_trie6 *t6;       /* writer of the IPv6 trie the program reads */
	struct vt_trie6_mem t6m;   /* the mmap'd v6t_* values */
	size_t t6_len[3];          /* their mapped lengths: root, nodes, buckets */
	int gp_outer, gp_inner;    /* grace-period maps (see xdp_grace), or -1 */
	uint64_t graces;           /* grace periods waited for */
	uint64_t len_graces;       /* of them, before a longer IPv6 change */
	int t6_last_plen;          /* length of the last IPv6 change since the
				    * last grace period, -1: none (publish) */
	struct moat_xdp_link links[MOAT_XDP_MAX_IFS];
	unsigned nlinks, adopted;
	int prog_pinned;           /* dir/prog is this program */
	struct ring_buffer *rb;
	moat_xdp_event_cb cb;
	void *cb_ud;
	int ncpus;
	unsigned syn_cookies;     /* the mode loaded (enum moat_syn_cookies) */
};

static const char *const stat_names[] = MOAT_STAT_NAMES;
_Static_assert(sizeof(stat_names) / sizeof(stat_names[0]) == MOAT_STAT__MAX,
	       "MOAT_STAT_NAMES out of sync with enum moat_stat");

/* map_rw - map an mmapable BPF map read-write into *out (NULL on error) */
static int map_rw(const struct bpf_map *m, size_t len, void **out)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
		       bpf_map__fd(m), 0);

	if (p == MAP_FAILED) {
		int err = -errno;

		*out = NULL;
		log_err("xdp: mmap %s: %s", bpf_map__name(m), strerror(-err));
		return err;
	}
	*out = p;
	return 0;
}

/* moat_xdp_stat_name - counter name for an enum moat_stat */
const char *moat_xdp_stat_name(unsigned stat)
{
	return stat < MOAT_STAT__MAX ? stat_names[stat] : "?";
}

/* libbpf_log - route libbpf's messages through lib/log.h */
static int libbpf_log(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	if (lvl == LIBBPF_DEBUG && log_get_level() < LOG_LVL_DEBUG)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	log_msg(lvl == LIBBPF_WARN ? LOG_LVL_WARN : LOG_LVL_DEBUG,
		"libbpf: %s", buf);
	return 0;
}

/* moat_xdp_opts_default - the documented defaults */
void moat_xdp_opts_default(struct moat_xdp_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->pin_dir = MOAT_XDP_PIN_DIR;
	MOAT_XDP_KNOBS_DEFAULT(o);
	o->event_max_pps = MOAT_XDP_DEF_EVENT_PPS;
	o->rl_src_max = MOAT_XDP_DEF_RL_SRC_MAX;
	o->syn_cookies = MOAT_SYN_COOKIES_OFF;
	o->cookie_threshold = MOAT_XDP_DEF_COOKIE_THRESHOLD;
	o->cookie_mss = MOAT_XDP_DEF_COOKIE_MSS;
}

/* check_opts - refuse knobs the program cannot honour, at start-up */
static int check_opts(const struct moat_xdp_opts *o)
{
	if (o->n_ports == 0 || o->n_ports > MOAT_PORTS_MAX) {
		log_err("xdp: %u SMTP ports, want 1..%d", o->n_ports, MOAT_PORTS_MAX);
		return -EINVAL;
	}
	for (unsigned i = 0; i < o->n_ports; i++) {
		if (o->ports[i] == 0) {
			log_err("xdp: port 0 in the SMTP port set");
			return -EINVAL;
		}
	}
	if (o->groups_max == 0 || o->groups_max > MOAT_XDP_GROUPS_MAX ||
	    o->v6_max == 0 || o->rl_src_max == 0) {
		log_err("xdp: map sizes groups=%u v6=%u rl_src=%u: each must be > 0",
			o->groups_max, o->v6_max, o->rl_src_max);
		return -EINVAL;
	}
	if (o->v6_max > VT_TRIE6_RULES_MAX) {
		log_err("xdp: v6_max %u: the IPv6 trie indexes at most %u rules",
			o->v6_max, VT_TRIE6_RULES_MAX);
		return -EINVAL;
	}
	if (o->event_sample & (o->event_sample - 1)) {
		log_err("xdp: event_sample %u is not a power of two", o->event_sample);
		return -EINVAL;
	}
	if (o->syn_cookies > MOAT_SYN_COOKIES_AUTO) {
		log_err("xdp: syn_cookies %u: want off, on or auto", o->syn_cookies);
		return -EINVAL;
	}
	if (o->cookie_mss < 536 || o->cookie_mss > 65495) {
		log_err("xdp: syn_cookie_mss %u: want 536..65495", o->cookie_mss);
		return -EINVAL;
	}
	if (o->pin_dir && strlen(o->pin_dir) + IF_NAMESIZE + 16 >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* moat_xdp_syn_cookies_name - "off", "on", "auto" */
const char *moat_xdp_syn_cookies_name(unsigned mode)
{
	static const char *const n[] = { "off", "on", "auto" };

	return mode < 3 ? n[mode] : "?";
}

/*
 * cookies_usable - can the kernel here take SYN cookies made in XDP?  The
 * helpers (bpf_tcp_raw_gen_syncookie_ipv4/6, Linux 6.0) must exist for XDP
 * programs, and net.ipv4.tcp_syncookies must be 2 in this network
 * namespace: the listener accepts a cookie ACK only within 2 minutes of a
 * cookie of its own, and only with 2 does the kernel answer the SYN the
 * program leaves it every second with one (docs/xdp.md "SYN cookies").
 * 1 or 0: logged, the caller loads without cookies.
 */
static int cookies_usable(void)
{
	int v;

	if (libbpf_probe_bpf_helper(BPF_PROG_TYPE_XDP,
				    BPF_FUNC_tcp_raw_gen_syncookie_ipv4, NULL) != 1 ||
	    libbpf_probe_bpf_helper(BPF_PROG_TYPE_XDP,
				    BPF_FUNC_tcp_raw_gen_syncookie_ipv6, NULL) != 1) {
		log_err("xdp: syn_cookies: this kernel has no "
			"bpf_tcp_raw_gen_syncookie helpers for XDP (Linux 6.0 on): "
			"loaded without SYN cookies");
		return 0;
	}
	v = moat_tcp_syncookies();
	if (v != 2) {
		log_err("xdp: syn_cookies: net.ipv4.tcp_syncookies is %d in this "
			"network namespace, must be 2 (the kernel's listener refuses "
			"cookie ACKs otherwise, docs/xdp.md): loaded without SYN cookies", v);
		return 0;
	}
	return 1;
}

/* mkdir_p - create dir and its parents (bpffs allows plain directories) */
static int mkdir_p(const char *dir)
{
	char tmp[PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, dir, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* set_pins - give every non-internal map a pin path under dir */
static int set_pins(struct bpf_object *obj, const char *dir)
{
	char path[PATH_MAX];
	struct bpf_map *m;
	int err;

	bpf_object__for_each_map(m, obj) {
		if (bpf_map__is_internal(m))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(m));
		err = bpf_map__set_pin_path(m, path);
		if (err)
			return err;
	}
	return 0;
}

/* the maps of the IPv6 trie: derived from v6_rules, so rebuilt when a pin
 * of theirs cannot be reused */
static const char *const trie_maps[] = { "v6t_root", "v6t_nodes", "v6t_buckets" };

/* V6T_ROOT_TAIL - bytes past the root in the v6t_root value, never read:
 * the layout's version (MOAT_V6T_LAYOUT) in the map's shape, so pins of
 * another layout (the same root size, other entry bits) differ in size
 * and are rebuilt by trie_pins_check, never read as this one */
#define V6T_ROOT_TAIL (64u * MOAT_V6T_LAYOUT)

/* pin_differs - is a map pinned at path that libbpf would refuse to reuse
 * for m (another type, key or value size, entries or flags)?  *info gets
 * the pinned map's.  0 when nothing is pinned there. */
static int pin_differs(const char *path, const struct bpf_map *m,
		       struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);
	int fd = bpf_obj_get(path), rc;

	memset(info, 0, sizeof(*info));
	if (fd < 0)
		return 0;
	rc = bpf_obj_get_info_by_fd(fd, info, &len);
	close(fd);
	if (rc)
		return 0;     /* libbpf's reuse reports it */
	return info->type != bpf_map__type(m) ||
	       info->key_size != bpf_map__key_size(m) ||
	       info->value_size != bpf_map__value_size(m) ||
	       info->max_entries != bpf_map__max_entries(m) ||
	       info->map_flags != bpf_map__map_flags(m);
}

/* stats_pin_check - before the load: a pinned "stats" array of one value
 * of another size (counter rows of another version: more counters, more
 * state per row) is unpinned, so the load makes a new one; the counters
 * start again at 0 (logged).  A program still attached keeps its own map
 * until moat_xdp_attach swaps it out.  Another type is left to the load
 * to refuse.  0 or -errno. */
static int stats_pin_check(struct moat_xdp *x)
{
	char path[PATH_MAX];
	struct bpf_map_info info;

	snprintf(path, sizeof(path), "%s/stats", x->o.pin_dir);
	if (!pin_differs(path, x->skel->maps.stats, &info) ||
	    info.type != BPF_MAP_TYPE_ARRAY || info.max_entries != 1)
		return 0;
	log_warn("xdp: pinned stats in %s has %u-byte counter rows for all CPUs, "
		 "this program %u (another version): unpinned, the counters start "
		 "again at 0", x->o.pin_dir, info.value_size,
		 bpf_map__value_size(x->skel->maps.stats));
	if (unlink(path) && errno != ENOENT) {
		int err = -errno;

		log_err("xdp: cannot unpin %s: %s", path, strerror(-err));
		return err;
	}
	return 0;
}

/* trie_pins_check - before the load: when a pinned v6t_* map has another
 * shape than this program's (another layout, the 2^24-entry wide root of
 * before the split, another root size) but v6_rules can be reused, unpin
 * the three, so the load makes new ones and trie_adopt fills them from
 * v6_rules.  All three: a program still attached keeps reading its own
 * set, whole and untouched by this writer, until moat_xdp_attach switches
 * its links to this program, which by then has its trie built.  Returns
 * 0 or -errno (a pin that cannot be removed). */
static int trie_pins_check(struct moat_xdp *x)
{
	char path[PATH_MAX];
	struct bpf_map_info info;
	struct bpf_map *m;
	const char *bad = NULL;
	__u32 had = 0, want = 0;

	snprintf(path, sizeof(path), "%s/v6_rules", x->o.pin_dir);
	if (pin_differs(path, x->skel->maps.v6_rules, &info))
		return 0;     /* the load refuses: not ours to reset */
	for (unsigned i = 0; i < sizeof(trie_maps) / sizeof(trie_maps[0]) && !bad; i++) {
		m = bpf_object__find_map_by_name(x->skel->obj, trie_maps[i]);
		snprintf(path, sizeof(path), "%s/%s", x->o.pin_dir, trie_maps[i]);
		if (m && pin_differs(path, m, &info)) {
			bad = trie_maps[i];
			had = info.value_size;
			want = bpf_map__value_size(m);
		}
	}
	if (!bad)
		return 0;
	log_warn("xdp: pinned %s in %s is of another layout or size (%u-byte "
		 "value, this program's %u): the IPv6 trie maps are unpinned "
		 "and rebuilt from v6_rules", bad, x->o.pin_dir, had, want);
	for (unsigned i = 0; i < sizeof(trie_maps) / sizeof(trie_maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", x->o.pin_dir, trie_maps[i]);
		if (unlink(path) && errno != ENOENT) {
			int err = -errno;

			log_err("xdp: cannot unpin %s: %s", path, strerror(-err));
			return err;
		}
	}
	return 0;
}

/* is_direct_map - is fd a map whose one value MOAT_XDP_SEC programs
 * address directly: "tbl24", "groups" or "stats", arrays of one element
 * (moat_maps.bpf.h, moat_xdp.h) */
static int is_direct_map(int fd)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.type == BPF_MAP_TYPE_ARRAY && info.max_entries == 1 &&
	       (strcmp(info.name, "tbl24") == 0 || strcmp(info.name, "groups") == 0 ||
		strcmp(info.name, "stats") == 0);
}

/*
 * direct_maps - libbpf's prog_prepare_load_fn for MOAT_XDP_SEC, called
 * after relocation: every reference to tbl24 (a 64-bit immediate load of
 * the map, BPF_PSEUDO_MAP_FD) becomes the address of its value
 * (BPF_PSEUDO_MAP_VALUE at offset 0), as libbpf does for global data.
 * The kernel checks it (an array of one element, offset in the value).
 */
static int direct_maps(struct bpf_program *prog, struct bpf_prog_load_opts *opts,
		       long cookie)
{
	size_t n = bpf_program__insn_cnt(prog);
	struct bpf_insn *in;
	int err;

	(void)opts;
	(void)cookie;
	in = malloc(n * sizeof(*in));
	if (!in)
		return -ENOMEM;
	memcpy(in, bpf_program__insns(prog), n * sizeof(*in));
	for (size_t i = 0; i + 1 < n; i++) {
		if (in[i].code != (BPF_LD | BPF_IMM | BPF_DW))
			continue;
		if (in[i].src_reg == BPF_PSEUDO_MAP_FD && is_direct_map(in[i].imm)) {
			in[i].src_reg = BPF_PSEUDO_MAP_VALUE;
			in[i + 1].imm = 0;
		}
		i++;    /* the second half of the 16-byte instruction */
	}
	err = bpf_program__set_insns(prog, in, n);
	free(in);
	return err;
}

/* moat_xdp_sec_register - make libbpf load SEC(MOAT_XDP_SEC) programs as
 * XDP with direct_maps(); once per process, before opening them */
int moat_xdp_sec_register(void)
{
	static int done;
	LIBBPF_OPTS(libbpf_prog_handler_opts, ho,
		    .prog_prepare_load_fn = direct_maps);
	int id;

	if (done)
		return done < 0 ? done : 0;
	id = libbpf_register_prog_handler(MOAT_XDP_SEC, BPF_PROG_TYPE_XDP,
					  BPF_XDP, &ho);
	done = id < 0 ? id : 1;
	return id < 0 ? id : 0;
}

/* moat_xdp_open - open, configure and load the program */
/*
 * Grace periods.  The XDP program runs inside an RCU read-side section
 * (NAPI with bottom halves off; BPF_PROG_TEST_RUN under rcu_read_lock),
 * and the kernel's BPF syscall waits for every running non-sleepable
 * program to finish (synchronize_rcu, kernel/bpf/syscall.c
 * maybe_wait_bpf_programs) after an update of a map-of-maps element,
 * "so that userspace, when we return to it, knows that all programs that
 * could be running use the new map value".  The handle keeps a private
 * one-slot array of maps for nothing else: storing its inner map in it
 * is a wait until every program run that began before has ended.
 */

/* grace_maps - create the grace-period maps; without them (an old kernel,
 * no permission) grace periods fall back to MOAT_V6_PLENS_GRACE_US sleeps */
static void grace_maps(struct moat_xdp *x)
{
	LIBBPF_OPTS(bpf_map_create_opts, oo);

	x->gp_inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "moat_gp_in", 4, 4, 1, NULL);
	if (x->gp_inner < 0)
		goto fail;
	oo.inner_map_fd = x->gp_inner;
	x->gp_outer = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "moat_gp", 4, 4, 1, &oo);
	if (x->gp_outer >= 0)
		return;
fail:
	log_warn("xdp: no grace-period map (%s): IPv6 publishes wait %u us "
		 "per step instead of an RCU grace period", strerror(errno),
		 MOAT_V6_PLENS_GRACE_US);
	if (x->gp_inner >= 0)
		close(x->gp_inner);
	x->gp_inner = -1;
}

/* xdp_grace - return when no program run that began before the call is
 * still running (or, without the maps, after MOAT_V6_PLENS_GRACE_US) */
static void xdp_grace(struct moat_xdp *x)
{
	__u32 zero = 0;

	if (x->gp_outer >= 0 &&
	    bpf_map_update_elem(x->gp_outer, &zero, &x->gp_inner, BPF_ANY)) {
		log_warn("xdp: grace-period map update: %s: IPv6 publishes "
			 "wait %u us per step from now on", strerror(errno),
			 MOAT_V6_PLENS_GRACE_US);
		close(x->gp_outer);
		x->gp_outer = -1;
	}
	if (x->gp_outer < 0) {
		struct timespec ts = { 0, (long)MOAT_V6_PLENS_GRACE_US * 1000 };

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
	x->graces++;
	x->t6_last_plen = -1;
}

/* moat_xdp_grace_count - grace periods publishes waited for so far */
uint64_t moat_xdp_grace_count(const struct moat_xdp *x)
{
	return x->graces;
}

/* moat_xdp_len_grace_count - of them, those before an IPv6 change longer
 * than the one before it */
uint64_t moat_xdp_len_grace_count(const struct moat_xdp *x)
{
	return x->len_graces;
}

/* trie_adopt - the writer of the IPv6 trie over the mapped v6t_* values:
 * empty maps give an empty trie; maps pinned by a loader that has gone
 * hold a trie, which is adopted and brought to the rules of v6_rules (the
 * rules by key, written after the trie by every publish) */
static int trie_adopt(struct moat_xdp *x)
{
	int fd = bpf_map__fd(x->skel->maps.v6_rules), err = 0;
	struct vt_trie6_rule *r = NULL;
	struct moat_v6_key k, *prev = NULL;
	size_t n = 0, cap = 0, fixed = 0;
	__u32 act;

	while (bpf_map_get_next_key(fd, prev, &k) == 0) {
		prev = &k;
		if (bpf_map_lookup_elem(fd, &k, &act))
			continue;   /* deleted meanwhile: there is no writer */
		if (n == cap) {
			struct vt_trie6_rule *q;

			cap = cap ? cap * 2 : 1024;
			if (!(q = realloc(r, cap * sizeof(*r)))) {
				free(r);
				return -ENOMEM;
			}
			r = q;
		}
		memcpy(r[n].addr, k.addr, 16);
		r[n].plen = k.plen;
		r[n].act = act;
		n++;
	}
	x->t6 = vt_trie6_adopt(&x->t6m, r, n, &fixed, &err);
	free(r);
	if (!x->t6) {
		log_err("xdp: IPv6 trie: %s (the pinned v6t_* maps are damaged: "
			"detach and remove the pins)", strerror(-err));
		return err;
	}
	if (fixed)
		log_warn("xdp: IPv6 trie: %zu rules brought back to v6_rules "
			 "(a former loader stopped inside a publish)", fixed);
	return 0;
}

/* trie_change - one IPv6 rule put (put != 0) or deleted in the trie; full
 * storage: wait for a grace period, reuse what earlier changes freed, try
 * once more */
static int trie_change(struct moat_xdp *x, const struct moat_v6_key *k,
		       __u32 act, int put)
{
	int err = -ENOSPC;

	for (int try = 0; try < 2 && err == -ENOSPC; try++) {
		if (try) {
			if (!vt_trie6_pending(x->t6))
				break;
			xdp_grace(x);
			vt_trie6_grace_done(x->t6);
		}
		err = put ? vt_trie6_put(x->t6, k->addr, k->plen, act)
			  : vt_trie6_del(x->t6, k->addr, k->plen);
	}
	if (err == -ENOSPC)
		log_err("xdp: IPv6 trie full (%u nodes, %u buckets for v6_max "
			"%u): raise v6_max", x->t6m.nodes_max, x->t6m.buckets_max,
			x->o.v6_max);
	return err;
}

int moat_xdp_open(const struct moat_xdp_opts *o, struct moat_xdp **out)
{
	struct moat_xdp *x;
	struct moat_xdp_config *cfg;
	int err;

	*out = NULL;
	err = check_opts(o);
	if (err)
		return err;
	libbpf_set_print(libbpf_log);
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->gp_outer = x->gp_inner = -1;
	/* a loader that died may have been inside a publish: the first IPv6
	 * change waits as if a /0 one of ours came just before */
	x->t6_last_plen = 0;
	x->o = *o;
	if (o->pin_dir) {
		snprintf(x->pin_dir, sizeof(x->pin_dir), "%s", o->pin_dir);
		x->o.pin_dir = x->pin_dir;
	}
	x->ncpus = libbpf_num_possible_cpus();
	if (x->ncpus <= 0) {
		err = x->ncpus ? x->ncpus : -EINVAL;
		goto fail;
	}
	err = moat_xdp_sec_register();
	if (err) {
		log_err("xdp: cannot register the %s section: %s", MOAT_XDP_SEC,
			strerror(-err));
		goto fail;
	}
	x->skel = moat_xdp_bpf__open();
	if (!x->skel) {
		err = -errno;
		log_err("xdp: cannot open the BPF object: %s", strerror(-err));
		goto fail;
	}
	cfg = (struct moat_xdp_config *)&x->skel->rodata->moat_cfg;
	memset(cfg, 0, sizeof(*cfg));
	memcpy(cfg->ports, o->ports, sizeof(cfg->ports));
	cfg->n_ports = o->n_ports;
	for (unsigned i = 0; i < MOAT_PORTS_MAX; i++)
		cfg->ports_net[i] = htons(cfg->ports[i]);
	cfg->tarpit_src = moat_xdp_budget(o->tarpit_src_pps, o->tarpit_src_burst);
	cfg->tarpit_global = moat_xdp_budget(o->tarpit_global_pps,
					     o->tarpit_global_burst);
	cfg->events = moat_xdp_budget(o->event_max_pps, o->event_max_pps);
	cfg->events_on = o->event_sample != 0;
	cfg->event_gap_max = o->event_sample;
	cfg->isn_key[0] = o->isn_key[0];
	cfg->isn_key[1] = o->isn_key[1];
	if (!cfg->isn_key[0] && !cfg->isn_key[1] &&
	    getrandom(cfg->isn_key, sizeof(cfg->isn_key), 0) !=
		    sizeof(cfg->isn_key)) {
		err = -EIO;
		goto fail;
	}
	cfg->ncpus = (__u32)x->ncpus;
	if (o->syn_cookies != MOAT_SYN_COOKIES_OFF && cookies_usable()) {
		cfg->syn_cookies = o->syn_cookies;
		cfg->cookie_threshold = o->cookie_threshold;
		cfg->cookie_mss4 = (__u16)o->cookie_mss;
		cfg->cookie_mss6 = (__u16)(o->cookie_mss - 20);
		log_info("xdp: SYN cookies %s (threshold %u SYNs/s per CPU and "
			 "port, MSS %u)", moat_xdp_syn_cookies_name(cfg->syn_cookies),
			 cfg->cookie_threshold, cfg->cookie_mss4);
	}
	x->syn_cookies = cfg->syn_cookies;
	x->skel->rodata->moat_groups_max = o->groups_max;
	/* the IPv6 trie's storage for v6_max rules (moat_xdp.h) */
	x->t6m.nodes_max = o->v6_max / 32 + 16384;
	x->t6m.buckets_max = o->v6_max + o->v6_max / 2 + 1024;
	/* the wide root (8.25 MiB) from VT_TRIE6_WIDE_MIN rules on */
	x->t6m.root_bits = vt_trie6_root_bits_for(o->v6_max);
	x->t6_len[0] = vt_trie6_root_entries(x->t6m.root_bits) * sizeof(__u32) +
		       V6T_ROOT_TAIL;
	x->t6_len[1] = (size_t)x->t6m.nodes_max * sizeof(struct moat_v6_node);
	x->t6_len[2] = (size_t)x->t6m.buckets_max * sizeof(struct moat_v6_bucket);
	x->skel->rodata->moat_v6t_rootbits = x->t6m.root_bits;
	x->skel->rodata->moat_v6t_nodes_max = x->t6m.nodes_max;
	x->skel->rodata->moat_v6t_buckets_max = x->t6m.buckets_max;
	if ((err = bpf_map__set_value_size(x->skel->maps.stats, (__u32)x->ncpus *
					   sizeof(struct moat_xdp_stat_cpu))) ||
	    (err = bpf_map__set_value_size(x->skel->maps.groups, o->groups_max *
					   (__u32)sizeof(struct moat_group))) ||
	    (err = bpf_map__set_max_entries(x->skel->maps.v6_rules, o->v6_max)) ||
	    (err = bpf_map__set_value_size(x->skel->maps.v6t_root, (__u32)x->t6_len[0])) ||
	    (err = bpf_map__set_value_size(x->skel->maps.v6t_nodes, (__u32)x->t6_len[1])) ||
	    (err = bpf_map__set_value_size(x->skel->maps.v6t_buckets, (__u32)x->t6_len[2])) ||
	    (err = bpf_map__set_max_entries(x->skel->maps.rl_src, o->rl_src_max)))
		goto fail;
	if (o->pin_dir) {
		err = mkdir_p(o->pin_dir);
		if (err) {
			log_err("xdp: pin dir %s: %s", o->pin_dir, strerror(-err));
			goto fail;
		}
		err = set_pins(x->skel->obj, o->pin_dir);
		if (err == 0)
			err = trie_pins_check(x);
		if (err == 0)
			err = stats_pin_check(x);
		if (err)
			goto fail;
	}
	err = moat_xdp_bpf__load(x->skel);
	if (err) {
		log_err("xdp: load failed: %s (pinned maps in %s from another "
			"version or size?)", strerror(-err),
			o->pin_dir ? o->pin_dir : "-");
		goto fail;
	}
	err = map_rw(x->skel->maps.tbl24, TBL24_BYTES, (void **)&x->tbl24);
	if (err == 0)
		err = map_rw(x->skel->maps.v6_plens, PLB_MAP_BYTES, (void **)&x->plb);
	if (err == 0)
		err = map_rw(x->skel->maps.v6t_root, x->t6_len[0], (void **)&x->t6m.root);
	if (err == 0)
		err = map_rw(x->skel->maps.v6t_nodes, x->t6_len[1], (void **)&x->t6m.nodes);
	if (err == 0)
		err = map_rw(x->skel->maps.v6t_buckets, x->t6_len[2], (void **)&x->t6m.buckets);
	if (err == 0)
		err = trie_adopt(x);
	if (err)
		goto fail;
	grace_maps(x);
	*out = x;
	return 0;
fail:
	moat_xdp_close(x);
	return err;
}

/* link_path - the pin of ifname's link */
static void link_path(char *buf, size_t n, const char *dir, const char *ifname)
{
	snprintf(buf, n, "%s/link_%s", dir, ifname);
}

/* prog_path - the pin of the program (beside the maps and links) */
static void prog_path(char *buf, size_t n, const char *dir)
{
	snprintf(buf, n, "%s/prog", dir);
}

/* pin_prog - pin this program at dir/prog, replacing the pin of a former
 * loader's program (bpffs cannot rename: unlink, then pin; only the
 * bpftool handle is missing in between, the links keep the program
 * attached), so `bpftool prog show pinned` names the program the links
 * run.  Returns 0 or -errno. */
static int pin_prog(struct moat_xdp *x)
{
	char path[PATH_MAX];

	if (!x->o.pin_dir || x->prog_pinned)
		return 0;
	prog_path(path, sizeof(path), x->o.pin_dir);
	if (unlink(path) && errno != ENOENT)
		return -errno;
	if (bpf_obj_pin(bpf_program__fd(x->skel->progs.moat_xdp), path))
		return -errno;
	x->prog_pinned = 1;
	return 0;
}

/* unpin_prog_if_unused - remove dir/prog once no link_* pin is left */
static void unpin_prog_if_unused(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "link_", 5)) {
			closedir(d);
			return;
		}
	closedir(d);
	prog_path(path, sizeof(path), dir);
	unlink(path);
}

/* link_ifindex - the interface an XDP link is attached to (0: gone) */
static int link_ifindex(int fd)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (info.type != BPF_LINK_TYPE_XDP)
		return -EINVAL;
	return (int)info.xdp.ifindex;
}

/* adopt_link - put our program into the pinned link at path (atomic) */
static int adopt_link(struct moat_xdp *x, const char *path, int ifindex,
		      int *fdp)
{
	int fd = bpf_obj_get(path), idx, err;

	if (fd < 0)
		return -errno;
	idx = link_ifindex(fd);
	if (idx != ifindex) {
		/* stale pin: the interface went away (or was recreated) */
		log_warn("xdp: pinned link %s is on ifindex %d, not %d: replacing",
			 path, idx, ifindex);
		close(fd);
		unlink(path);
		return -ENOENT;
	}
	if (bpf_link_update(fd, bpf_program__fd(x->skel->progs.moat_xdp), NULL)) {
		err = -errno;
		close(fd);
		return err;
	}
	*fdp = fd;
	return 0;
}

/* cookie_mtu_check - warn when the MSS the cookie SYN-ACKs offer does not
 * fit ifname's MTU: clients would send segments the link drops, and a
 * message's DATA would stall. syn_cookie_mss is fixed at load (a SYN-ACK
 * offers less only to a client whose own MSS is less) */
static void cookie_mtu_check(const struct moat_xdp *x, const char *ifname)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFMTU, &ifr) == 0 && (unsigned)ifr.ifr_mtu < x->o.cookie_mss + 40u)
		log_warn("xdp: syn_cookie_mss %u does not fit %s's MTU %d (at most %d): "
			 "cookie connections would stall on full-size segments; lower syn_cookie_mss",
			 x->o.cookie_mss, ifname, ifr.ifr_mtu, ifr.ifr_mtu - 40);
	close(fd);
}

/* moat_xdp_attach - adopt ifname's pinned link or create and pin one */
int moat_xdp_attach(struct moat_xdp *x, const char *ifname)
{
	LIBBPF_OPTS(bpf_link_create_opts, lo);
	char path[PATH_MAX];
	int ifindex, fd = -1, err;

	if (strlen(ifname) >= IF_NAMESIZE)
		return -EINVAL;
	for (unsigned i = 0; i < x->nlinks; i++)
		if (!strcmp(x->links[i].ifname, ifname))
			return 0;
	if (x->nlinks == MOAT_XDP_MAX_IFS)
		return -ENOSPC;
	ifindex = (int)if_nametoindex(ifname);
	if (ifindex == 0)
		return -ENODEV;
	if (x->syn_cookies)
		cookie_mtu_check(x, ifname);
	if (x->o.pin_dir) {
		link_path(path, sizeof(path), x->o.pin_dir, ifname);
		if (access(path, F_OK) == 0) {
			err = adopt_link(x, path, ifindex, &fd);
			if (err == 0) {
				x->adopted++;
				log_info("xdp: adopted pinned link on %s", ifname);
				goto done;
			}
			if (err != -ENOENT) {
				log_err("xdp: cannot update pinned link %s: %s",
					path, strerror(-err));
				return err;
			}
		}
	}
	lo.flags = x->o.generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
	fd = bpf_link_create(bpf_program__fd(x->skel->progs.moat_xdp), ifindex,
			     BPF_XDP, &lo);
	if (fd < 0) {
		err = -errno;
		log_err("xdp: attach to %s (%s mode): %s", ifname,
			x->o.generic ? "generic" : "native", strerror(-err));
		return err;
	}
	if (x->o.pin_dir && bpf_obj_pin(fd, path)) {
		err = -errno;
		log_err("xdp: pin %s: %s", path, strerror(-err));
		close(fd);	/* unpinned link: closing detaches */
		return err;
	}
	log_info("xdp: attached to %s (%s mode)", ifname,
		 x->o.generic ? "generic" : "native");
done:
	err = pin_prog(x);
	if (err)	/* the link runs it; only the bpftool handle is missing */
		log_warn("xdp: pin %s/prog: %s", x->o.pin_dir, strerror(-err));
	snprintf(x->links[x->nlinks].ifname, IF_NAMESIZE, "%s", ifname);
	x->links[x->nlinks++].fd = fd;
	return 0;
}

/* moat_xdp_adopted - attach calls that replaced a live link's program */
unsigned moat_xdp_adopted(const struct moat_xdp *x)
{
	return x->adopted;
}

/* moat_xdp_detach_pinned - detach the pinned link of ifname, remove the pin */
int moat_xdp_detach_pinned(const char *pin_dir, const char *ifname)
{
	char path[PATH_MAX];
	int fd, err = 0;

	link_path(path, sizeof(path), pin_dir ? pin_dir : MOAT_XDP_PIN_DIR, ifname);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	if (bpf_link_detach(fd))
		err = -errno;
	close(fd);
	if (unlink(path) && !err)
		err = -errno;
	unpin_prog_if_unused(pin_dir ? pin_dir : MOAT_XDP_PIN_DIR);
	return err;
}

/* moat_xdp_detach - detach from one interface */
int moat_xdp_detach(struct moat_xdp *x, const char *ifname)
{
	for (unsigned i = 0; i < x->nlinks; i++) {
		if (strcmp(x->links[i].ifname, ifname))
			continue;
		int err = bpf_link_detach(x->links[i].fd) ? -errno : 0;

		close(x->links[i].fd);
		x->links[i] = x->links[--x->nlinks];
		if (x->o.pin_dir) {
			char path[PATH_MAX];

			link_path(path, sizeof(path), x->o.pin_dir, ifname);
			unlink(path);
			unpin_prog_if_unused(x->o.pin_dir);
			x->prog_pinned = 0;
		}
		return err;
	}
	if (x->o.pin_dir)
		return moat_xdp_detach_pinned(x->o.pin_dir, ifname);
	return -ENOENT;
}

/* publish buffers: keys and values of one run of same-kind updates */
struct pub_buf {
	struct moat_v6_key v6keys[PUBLISH_CHUNK];
	union {
		__u32 u32[PUBLISH_CHUNK];
	} vals;
};

/*
 * The groups value is mapped a window at a time, as publishing (or a
 * read-back) reaches it.  An mmap of a BPF array inserts every page of the
 * range at once, and those pages count in the process's RSS: mapping a
 * 2^23-group map whole is 512 MiB of RSS from the start, used or not.  The
 * range is reserved up front (PROT_NONE, nothing resident) so the address,
 * which moat-controld's table shares (vt_db_share_groups), never moves.
 */

/* groups_reserve - reserve the address range of the whole groups value */
static int groups_reserve(struct moat_xdp *x)
{
	size_t len = ((size_t)x->o.groups_max * sizeof(struct moat_group) + 4095) &
		     ~(size_t)4095;
	void *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	x->grp = p;
	x->grp_len = len;
	x->grp_mapped = 0;
	return 0;
}

/* moat_xdp_groups - map groups [0, want) (in GRP_WINDOW steps) */
int moat_xdp_groups(struct moat_xdp *x, uint32_t want, struct moat_group **grp,
		    uint32_t *mapped)
{
	int fd = bpf_map__fd(x->skel->maps.groups), err;
	size_t off, end;
	__u32 to;

	if (want > x->o.groups_max)
		return -ERANGE;
	if (!x->grp && (err = groups_reserve(x)) < 0)
		return err;
	if (want > x->grp_mapped) {
		uint64_t w = ((uint64_t)want + GRP_WINDOW - 1) / GRP_WINDOW * GRP_WINDOW;

		to = w > x->o.groups_max ? x->o.groups_max : (__u32)w;
		off = (size_t)x->grp_mapped * sizeof(struct moat_group); /* page aligned */
		end = ((size_t)to * sizeof(struct moat_group) + 4095) & ~(size_t)4095;
		if (end > x->grp_len)
			end = x->grp_len;
		if (mmap((char *)x->grp + off, end - off, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, fd, (off_t)off) == MAP_FAILED) {
			err = -errno;
			log_err("xdp: mmap groups: %s", strerror(-err));
			return err;
		}
		x->grp_mapped = to;
	}
	if (grp)
		*grp = x->grp;
	if (mapped)
		*mapped = x->grp_mapped;
	return 0;
}

/* publish_plens - make pl the live IPv6 prefix-length set: fill the
 * inactive slot of the v6_plens double buffer, then flip the selector with
 * one aligned store (moat_abi.h).  No grace period: the XDP program reads
 * the trie (v6t_*), not v6_plens; v6_plens and v6_rules are the rules by
 * key for userspace readers (read_image, adoption), each of which copies
 * the value in one syscall. */
static void publish_plens(struct moat_xdp *x, const struct moat_v6_plens *pl)
{
	__u32 next = (__atomic_load_n(&x->plb->sel, __ATOMIC_RELAXED) & 1) ^ 1;

	memcpy(&x->plb->slot[next], pl, sizeof(*pl));
	__atomic_store_n(&x->plb->sel, next, __ATOMIC_RELEASE);
}

/* flush_array - batch-write n key/value pairs to an array map */
static int flush_batch(int fd, void *keys, void *vals, __u32 n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	__u32 count = n;

	if (n == 0)
		return 0;
	if (bpf_map_update_batch(fd, keys, vals, &count, &bo))
		return -errno;
	return count == n ? 0 : -EIO;
}

/* flush_v6_del - delete n IPv6 keys; a key already absent is not an error */
static int flush_v6_del(int fd, struct moat_v6_key *keys, __u32 n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	__u32 count = n;

	if (n == 0)
		return 0;
	if (bpf_map_delete_batch(fd, keys, &count, &bo) == 0 && count == n)
		return 0;
	/* the batch stops at a missing key: finish one by one, in order */
	for (__u32 i = count; i < n; i++)
		if (bpf_map_delete_elem(fd, &keys[i]) && errno != ENOENT)
			return -errno;
	return 0;
}

/*
 * moat_xdp_publish - apply updates in order: IPv6 puts and deletes one
 * batch syscall per run of one kind and one prefix length (the trie
 * first), a grace period before a run longer than the IPv6 change before
 * it and before storage the trie freed is reused,
 * groups and tbl24 entries as stores into the mapped maps (a syscall per
 * 4-byte entry would be the slow part of a large publish, and a batch
 * copy could tear an entry).
 */
int moat_xdp_publish(struct moat_xdp *x, const struct moat_update *u, size_t n)
{
	int fd_v6 = bpf_map__fd(x->skel->maps.v6_rules);
	struct pub_buf *b = x->pub;
	size_t i = 0;
	int err = 0;

	while (i < n && !err) {
		__u32 kind = u[i].kind, k = 0;

		/* one run: consecutive updates of this kind (IPv6: and of
		 * this prefix length), up to a chunk */
		for (; i < n && u[i].kind == kind && k < PUBLISH_CHUNK &&
		       (k == 0 || (kind != MOAT_UPD_V6_PUT && kind != MOAT_UPD_V6_DEL) ||
			u[i].u.key.plen == b->v6keys[0].plen);
		     i++, k++) {
			switch (kind) {
			case MOAT_UPD_GROUP:
				if (u[i].index >= x->grp_mapped &&
				    (err = moat_xdp_groups(x, u[i].index + 1, NULL, NULL)) < 0)
					goto out;
				/* 64 bytes in place: each address's two bits
				 * are in one byte, written whole */
				memcpy(&x->grp[u[i].index], &u[i].u.group,
				       sizeof(struct moat_group));
				break;
			case MOAT_UPD_TBL24:
				if (u[i].index >= MOAT_TBL24_ENTRIES ||
				    (moat_tbl24_is_group(u[i].value) &&
				     moat_tbl24_group(u[i].value) >= x->o.groups_max)) {
					err = -ERANGE;
					goto out;
				}
				/* one aligned 32-bit store (release): readers
				 * see the old entry or the new one, and the
				 * groups it may point at were written before */
				__atomic_store_n(&x->tbl24[u[i].index], u[i].value,
						 __ATOMIC_RELEASE);
				break;
			case MOAT_UPD_V6_PUT:
			case MOAT_UPD_V6_DEL:
				if (!b && !(b = x->pub = malloc(sizeof(*b)))) {
					err = -ENOMEM;
					goto out;
				}
				if (u[i].u.key.plen > 128) {
					err = -EINVAL;
					goto out;
				}
				b->v6keys[k] = u[i].u.key;
				b->vals.u32[k] = u[i].value;
				break;
			case MOAT_UPD_V6_PLENS:
				if (u[i].u.plens.n > MOAT_V6_MAX_PLENS) {
					err = -EINVAL;
					goto out;
				}
				publish_plens(x, &u[i].u.plens);
				break;
			default:
				err = -EINVAL;
				goto out;
			}
		}
		switch (kind) {
		case MOAT_UPD_V6_PUT:
		case MOAT_UPD_V6_DEL:
			/* the trie the program reads, then the rules by key;
			 * a grace period before a change longer than the last
			 * one: a lookup reads shorter rules' entries first, so
			 * it could take a shorter change's old entry and a
			 * later, longer change's new one, a state no prefix of
			 * the sequence had (moat_trie6.h PUBLISHING).  Puts
			 * come longest first and wait for none; deletes come
			 * shortest first and wait once per longer length. */
			if (x->t6_last_plen >= 0 &&
			    (int)b->v6keys[0].plen > x->t6_last_plen) {
				xdp_grace(x);
				vt_trie6_grace_done(x->t6);
				x->len_graces++;
			}
			for (__u32 j = 0; j < k && !err; j++)
				err = trie_change(x, &b->v6keys[j], b->vals.u32[j],
						  kind == MOAT_UPD_V6_PUT);
			x->t6_last_plen = b->v6keys[0].plen;
			if (err)
				break;
			err = kind == MOAT_UPD_V6_PUT ?
			      flush_batch(fd_v6, b->v6keys, b->vals.u32, k) :
			      flush_v6_del(fd_v6, b->v6keys, k);
			break;
		}
	}
out:
	/* what the trie replaced is reused after the programs running now */
	if (x->t6 && vt_trie6_pending(x->t6)) {
		xdp_grace(x);
		vt_trie6_grace_done(x->t6);
	}
	if (err)
		log_err("xdp: publish stopped at update %zu of %zu: %s", i, n,
			strerror(-err));
	return err;
}

/* read_rows - counters summed over rows [r0, r1) of every CPU's part of
 * the stats value (struct moat_xdp_stat_cpu each; their number is the
 * value's size) */
static int read_rows(int fd, __u32 r0, __u32 r1, uint64_t *out)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info), zero = 0, ncpus;
	struct moat_xdp_stat_cpu *v;
	int err = 0;

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (info.type != BPF_MAP_TYPE_ARRAY || info.max_entries != 1 ||
	    info.value_size % sizeof(*v) != 0)
		return -EINVAL;   /* a stats map of another version */
	ncpus = info.value_size / sizeof(*v);
	v = calloc(ncpus ? ncpus : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	memset(out, 0, MOAT_STAT__MAX * sizeof(*out));
	if (bpf_map_lookup_elem(fd, &zero, v)) {
		err = -errno;
		goto out;
	}
	for (__u32 c = 0; c < ncpus; c++)
		for (__u32 r = r0; r < r1; r++)
			for (__u32 s = 0; s < MOAT_STAT__MAX; s++)
				out[s] += v[c].row[r].c[s];
out:
	free(v);
	return err;
}

/* moat_xdp_cookies_hold - suspend (hold nonzero) or resume the SYN
 * cookies of the loaded program: one store into its .bss, which the next
 * SYN reads (moat_xdp.h struct moat_xdp_live) */
int moat_xdp_cookies_hold(struct moat_xdp *x, int hold)
{
	if (!x->syn_cookies)
		return -EOPNOTSUPP;
	__atomic_store_n(&x->skel->bss->moat_live.cookies_held, hold ? 1u : 0u, __ATOMIC_RELAXED);
	return 0;
}

/* moat_xdp_cookies_held - 1 while the cookies are held */
int moat_xdp_cookies_held(const struct moat_xdp *x)
{
	return x->syn_cookies && __atomic_load_n(&x->skel->bss->moat_live.cookies_held,
						 __ATOMIC_RELAXED) != 0;
}

/* moat_xdp_syn_cookies - the SYN-cookie mode loaded */
unsigned moat_xdp_syn_cookies(const struct moat_xdp *x)
{
	return x->syn_cookies;
}

/* moat_xdp_read_stats - global counters (all rows) */
int moat_xdp_read_stats(struct moat_xdp *x, uint64_t out[MOAT_STAT__MAX])
{
	return read_rows(bpf_map__fd(x->skel->maps.stats), 0, MOAT_XDP_STAT_ROWS,
			 out);
}

/* moat_xdp_read_port_stats - one port slot's counters (its row) */
int moat_xdp_read_port_stats(struct moat_xdp *x, unsigned slot,
			     uint64_t out[MOAT_STAT__MAX])
{
	if (slot >= x->o.n_ports)
		return -EINVAL;
	return read_rows(bpf_map__fd(x->skel->maps.stats), slot + 1, slot + 2, out);
}

/* moat_xdp_read_pinned_stats - global counters straight from the pin */
int moat_xdp_read_pinned_stats(const char *pin_dir, uint64_t out[MOAT_STAT__MAX])
{
	char path[PATH_MAX];
	int fd, err;

	snprintf(path, sizeof(path), "%s/stats", pin_dir ? pin_dir : MOAT_XDP_PIN_DIR);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	err = read_rows(fd, 0, MOAT_XDP_STAT_ROWS, out);
	close(fd);
	return err;
}

/* on_event - ring buffer callback: hand one event to the caller */
static int on_event(void *ctx, void *data, size_t size)
{
	struct moat_xdp *x = ctx;

	if (size >= sizeof(struct moat_event) && x->cb)
		x->cb(x->cb_ud, data);
	return 0;
}

/* events_open - create the ring buffer reader on first use */
static int events_open(struct moat_xdp *x)
{
	if (x->rb)
		return 0;
	x->rb = ring_buffer__new(bpf_map__fd(x->skel->maps.events), on_event, x,
				 NULL);
	return x->rb ? 0 : -errno;
}

/* moat_xdp_poll_events - deliver sampled events to cb */
int moat_xdp_poll_events(struct moat_xdp *x, int timeout_ms,
			 moat_xdp_event_cb cb, void *ud)
{
	int err = events_open(x);

	if (err)
		return err;
	x->cb = cb;
	x->cb_ud = ud;
	return ring_buffer__poll(x->rb, timeout_ms);
}

/* moat_xdp_events_fd - epoll fd of the event ring */
int moat_xdp_events_fd(struct moat_xdp *x)
{
	int err = events_open(x);

	return err ? err : ring_buffer__epoll_fd(x->rb);
}

/* moat_xdp_prog_fd - the program's fd */
int moat_xdp_prog_fd(const struct moat_xdp *x)
{
	return bpf_program__fd(x->skel->progs.moat_xdp);
}

/* moat_xdp_tbl24 - the mapped tbl24 (bulk loading, tests) */
__u32 *moat_xdp_tbl24(struct moat_xdp *x)
{
	return x->tbl24;
}

/* moat_xdp_groups_max - the groups value's size in groups */
uint32_t moat_xdp_groups_max(const struct moat_xdp *x)
{
	return x->o.groups_max;
}

/* moat_xdp_map_fd - a map's fd by name */
int moat_xdp_map_fd(const struct moat_xdp *x, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(x->skel->obj, name);

	return m ? bpf_map__fd(m) : -ENOENT;
}

/* moat_xdp_close - free userspace state; pinned links and maps remain */
void moat_xdp_close(struct moat_xdp *x)
{
	if (!x)
		return;
	ring_buffer__free(x->rb);
	if (x->tbl24)
		munmap(x->tbl24, TBL24_BYTES);
	if (x->plb)
		munmap(x->plb, PLB_MAP_BYTES);
	if (x->grp)
		munmap(x->grp, x->grp_len);
	free(x->pub);
	vt_trie6_free(x->t6);
	if (x->t6m.root)
		munmap(x->t6m.root, x->t6_len[0]);
	if (x->t6m.nodes)
		munmap(x->t6m.nodes, x->t6_len[1]);
	if (x->t6m.buckets)
		munmap(x->t6m.buckets, x->t6_len[2]);
	if (x->gp_outer >= 0)
		close(x->gp_outer);
	if (x->gp_inner >= 0)
		close(x->gp_inner);
	for (unsigned i = 0; i < x->nlinks; i++)
		close(x->links[i].fd);
	moat_xdp_bpf__destroy(x->skel);
	free(x);
}
