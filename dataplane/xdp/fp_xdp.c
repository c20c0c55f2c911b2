/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fp_xdp.c - the XDP backend as a struct moat_fastpath (lib/fastpath.h):
 * what moat-controld drives, built on libmoatxdp (xdp_backend.h).
 *
 * open loads the program reusing the pinned maps, attaches it to every
 * configured interface (an existing pinned link gets the new program
 * atomically: no gap; "auto" mode falls back to generic XDP where the
 * driver has no native mode); read_image reads the verdict image the
 * pinned maps hold back as an update sequence, so the daemon's first
 * publish is a safe diff against what the fast path really has; lookup
 * runs the shared lookup (bpf/moat_lookup.h) over the maps as they are;
 * events come from the ring buffer; detach removes links and pins.
 *
 * Why read back instead of pushing a full image: the table's diff assumes
 * the fast path holds the db's live image.  Pushing a full image over maps
 * a previous daemon filled would rewrite groups that live tbl24 entries
 * still point at (a reader could see another /24's bits).  Reading the
 * maps back (tbl24 and groups are mmapable arrays) and adopting them keeps
 * the PUBLISHING ORDER guarantees of moat_abi.h across restarts.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "fastpath.h"
#include "log.h"
#include "xdp_backend.h"

/* the daemon's handle: the backend's, and the configuration it came from */
struct fpx {
	struct moat_xdp *x;
	unsigned n_ifaces;
	char ifaces[MOAT_FASTPATH_IFACES_MAX][32];
	char pin_dir[PATH_MAX];
};

static const struct moat_fastpath fpx_ops;

/* fpx_publish - apply updates in order (xdp_backend.c: groups and tbl24
 * through the mappings, IPv6 by batched syscalls) */
static int fpx_publish(void *ctx, const struct moat_update *u, size_t n)
{
	struct fpx *f = ctx;

	return moat_xdp_publish(f->x, u, n);
}

/* push - append an update to a growing array */
static int push(struct moat_update **u, size_t *n, size_t *cap, const struct moat_update *x)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 4096;
		struct moat_update *nu = realloc(*u, c * sizeof(*nu));

		if (!nu)
			return -ENOMEM;
		*u = nu;
		*cap = c;
	}
	(*u)[(*n)++] = *x;
	return 0;
}

/* fpx_read_image - the image held by the maps, as an update sequence */
static int fpx_read_image(void *ctx, struct moat_update **ups, size_t *nups)
{
	struct fpx *f = ctx;
	int pfd = moat_xdp_map_fd(f->x, "v6_plens"), vfd = moat_xdp_map_fd(f->x, "v6_rules");
	const __u32 *tbl = moat_xdp_tbl24(f->x);
	__u32 gmax = moat_xdp_groups_max(f->x), ghi = 0;
	struct moat_update *u = NULL, t;
	struct moat_group *grp = NULL;
	size_t n = 0, cap = 0;
	int r;

	*ups = NULL;
	*nups = 0;
	if (!tbl || pfd < 0 || vfd < 0)
		return -ENOENT;
	/* only the groups up to the highest one tbl24 references: mapping a
	 * BPF array makes every page of the range resident in our RSS */
	for (__u32 i = 0; i < MOAT_TBL24_ENTRIES; i++)
		if (moat_tbl24_is_group(tbl[i]) && moat_tbl24_group(tbl[i]) < gmax &&
		    moat_tbl24_group(tbl[i]) >= ghi)
			ghi = moat_tbl24_group(tbl[i]) + 1;
	if ((r = moat_xdp_groups(f->x, ghi ? ghi : 1, &grp, NULL)) < 0)
		return r;
	for (__u32 i = 0; i < MOAT_TBL24_ENTRIES; i++) {
		__u32 e = tbl[i];

		if (!e)
			continue;
		if (moat_tbl24_is_group(e)) {
			__u32 g = moat_tbl24_group(e);

			if (g >= ghi)
				continue; /* a reader passes it: so does our image */
			memset(&t, 0, sizeof(t));
			t.kind = MOAT_UPD_GROUP;
			t.index = g;
			t.u.group = grp[g];
			if ((r = push(&u, &n, &cap, &t)) < 0)
				goto out;
		}
		memset(&t, 0, sizeof(t));
		t.kind = MOAT_UPD_TBL24;
		t.index = i;
		t.value = e;
		if ((r = push(&u, &n, &cap, &t)) < 0)
			goto out;
	}
	__u32 zero = 0;
	struct moat_v6_plens_buf plb;

	memset(&plb, 0, sizeof(plb));
	if (bpf_map_lookup_elem(pfd, &zero, &plb) == 0 && moat_v6_plens_live(&plb)->n) {
		memset(&t, 0, sizeof(t));
		t.kind = MOAT_UPD_V6_PLENS;
		t.u.plens = *moat_v6_plens_live(&plb);
		if ((r = push(&u, &n, &cap, &t)) < 0)
			goto out;
	}
	struct moat_v6_key k, nk;
	void *prev = NULL;

	while (bpf_map_get_next_key(vfd, prev, &nk) == 0) {
		__u32 act;

		if (bpf_map_lookup_elem(vfd, &nk, &act) == 0) {
			memset(&t, 0, sizeof(t));
			t.kind = MOAT_UPD_V6_PUT;
			t.value = act;
			t.u.key = nk;
			if ((r = push(&u, &n, &cap, &t)) < 0)
				goto out;
		}
		k = nk;
		prev = &k;
	}
	*ups = u;
	*nups = n;
	u = NULL;
	r = 0;
out:
	free(u);
	return r;
}

/* fpx_share - tbl24 and groups as mapped here: the db's live image keeps
 * its groups in the mapping itself, since a second copy of every group
 * would cost as much again (~480 MiB for a scattered 10M zone) */
static int fpx_share(void *ctx, uint32_t **tbl24, struct moat_group **groups,
		     uint32_t *groups_cap)
{
	struct fpx *f = ctx;
	int r = moat_xdp_groups(f->x, 0, groups, NULL);

	if (r < 0)
		return r;
	*tbl24 = moat_xdp_tbl24(f->x);
	*groups_cap = moat_xdp_groups_max(f->x);
	return 0;
}

/*
 * The lookup of bpf/moat_lookup.h over the maps as they are (tbl24 and
 * groups through the mappings, IPv6 through syscalls): what the next packet
 * from an address meets, for `moatctl lookup` and the tests.
 */
struct fplk {
	const __u32 *tbl;
	const struct moat_group *grp;  /* the mapping */
	__u32 gmax;                    /* groups in the mapping */
	__u32 gall;                    /* groups in the map */
	int gfd, pfd, vfd;
	struct moat_group g;
	struct moat_v6_plens_buf pl;  /* the map's value: selector + two slots */
	__u32 act;
};

/* fplk_group - groups[idx] through the mapping, or through a mapping of
 * its one page (groups are one map value: no per-group syscall, and the
 * window stays as publishing left it); NULL = absent */
static const struct moat_group *fplk_group(struct fplk *k, __u32 idx)
{
	size_t off = (size_t)idx * sizeof(struct moat_group), pg = off & ~(size_t)4095;
	void *p;

	if (k->grp && idx < k->gmax)
		return &k->grp[idx];
	if (idx >= k->gall)
		return NULL;
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, k->gfd, (off_t)pg);
	if (p == MAP_FAILED)
		return NULL;
	memcpy(&k->g, (const char *)p + (off - pg), sizeof(k->g));
	munmap(p, 4096);
	return &k->g;
}

/* fplk_plens - the IPv6 prefix-length double buffer as the map holds it */
static const struct moat_v6_plens_buf *fplk_plens(struct fplk *k)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(k->pfd, &zero, &k->pl) == 0 ? &k->pl : NULL;
}

/* fplk_v6 - one IPv6 rule */
static const __u32 *fplk_v6(struct fplk *k, const struct moat_v6_key *key)
{
	return bpf_map_lookup_elem(k->vfd, key, &k->act) == 0 ? &k->act : NULL;
}

#define MOAT_TBL24_GET(ctx, idx) (((struct fplk *)(ctx))->tbl[(idx)])
#define MOAT_GROUP_GET(ctx, idx) fplk_group((struct fplk *)(ctx), (idx))
#define MOAT_V6_PLENS_GET(ctx) fplk_plens((struct fplk *)(ctx))
#define MOAT_V6_GET(ctx, keyp) fplk_v6((struct fplk *)(ctx), (keyp))
#include "moat_lookup.h"

/* fpx_lookup - the action the maps give addr (a /32 or /128) */
static int fpx_lookup(void *ctx, const struct moat_prefix *addr, uint32_t *action)
{
	struct fpx *f = ctx;
	struct moat_group *grp = NULL;
	struct fplk k = { 0 };

	k.tbl = moat_xdp_tbl24(f->x);
	k.gfd = moat_xdp_map_fd(f->x, "groups");
	k.pfd = moat_xdp_map_fd(f->x, "v6_plens");
	k.vfd = moat_xdp_map_fd(f->x, "v6_rules");
	if (!k.tbl || k.gfd < 0 || k.pfd < 0 || k.vfd < 0)
		return -ENOENT;
	k.gall = moat_xdp_groups_max(f->x);
	if (moat_xdp_groups(f->x, 0, &grp, &k.gmax) == 0)
		k.grp = grp; /* beyond gmax: a page at a time */
	if (addr->family == MOAT_AF_INET)
		*action = moat_lookup_v4(&k, (uint32_t)addr->addr[0] << 24 | (uint32_t)addr->addr[1] << 16 |
						    (uint32_t)addr->addr[2] << 8 | addr->addr[3]);
	else
		*action = moat_lookup_v6(&k, addr->addr);
	return 0;
}

/* fpx_events_fd - the event ring's epoll fd */
static int fpx_events_fd(void *ctx)
{
	struct fpx *f = ctx;

	return moat_xdp_events_fd(f->x);
}

/* fpx_events_drain - what the ring holds, without waiting */
static int fpx_events_drain(void *ctx, moat_fastpath_event_cb cb, void *ud)
{
	struct fpx *f = ctx;

	return moat_xdp_poll_events(f->x, 0, cb, ud);
}

/* fpx_read_stats - counters from the stats map */
static int fpx_read_stats(void *ctx, uint64_t out[MOAT_STAT__MAX])
{
	struct fpx *f = ctx;

	return moat_xdp_read_stats(f->x, out);
}

/* fpx_syn_cookies_hold - suspend or resume the program's SYN cookies */
static int fpx_syn_cookies_hold(void *ctx, int hold)
{
	struct fpx *f = ctx;

	return moat_xdp_cookies_hold(f->x, hold);
}

/* fpx_close - userspace only; pinned state stays in force */
static void fpx_close(void *ctx)
{
	struct fpx *f = ctx;

	moat_xdp_close(f->x);
	free(f);
}

/* unpin_maps - remove the maps' pins and the pin directory: a later start
 * begins with an empty table (and the daemon's state on disk) */
static void unpin_maps(const char *pin_dir)
{
	static const char *const maps[] = { "tbl24", "groups", "v6_plens", "v6_rules", "stats",
					    "port_stats", "rl_src", "limits", "events",
					    "v6t_root", "v6t_nodes", "v6t_buckets" };
	char p[PATH_MAX];

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		snprintf(p, sizeof(p), "%.4000s/%s", pin_dir, maps[i]);
		unlink(p);
	}
	rmdir(pin_dir);
}

/* detach_all - every interface of the list off (through x, or through the
 * pinned links when x is NULL); -EIO when one could not be */
static int detach_all(struct moat_xdp *x, const char *pin_dir, const char *const *ifaces,
		      unsigned n, char *err, size_t errsz)
{
	int bad = 0;

	for (unsigned i = 0; i < n; i++) {
		int r = x ? moat_xdp_detach(x, ifaces[i]) : moat_xdp_detach_pinned(pin_dir, ifaces[i]);

		if (r < 0 && r != -ENOENT) {
			if (!bad)
				snprintf(err, errsz, "detach %s: %s", ifaces[i], strerror(-r));
			bad = 1;
		} else {
			log_warn("event=detach ifname=%s (filtering stopped by moatctl detach)",
				 ifaces[i]);
		}
	}
	return bad ? -EIO : 0;
}

/* fpx_detach - remove the program from every interface, and the pins */
static int fpx_detach(void *ctx, char *err, size_t errsz)
{
	struct fpx *f = ctx;
	const char *ifs[MOAT_FASTPATH_IFACES_MAX];
	int r;

	for (unsigned i = 0; i < f->n_ifaces; i++)
		ifs[i] = f->ifaces[i];
	r = detach_all(f->x, f->pin_dir, ifs, f->n_ifaces, err, errsz);
	moat_xdp_close(f->x);
	unpin_maps(f->pin_dir);
	free(f);
	return r;
}

/* fpx_unpin - detach what a previous loader left, without a handle */
static int fpx_unpin(const struct moat_fastpath_config *c, char *err, size_t errsz)
{
	int r = detach_all(NULL, c->pin_dir, c->ifaces, c->n_ifaces, err, errsz);

	unpin_maps(c->pin_dir);
	return r;
}

/* fpx_open - open the program, attach every interface (adopting pinned
 * links), in generic mode where "auto" finds no native driver support */
static int fpx_open(const struct moat_fastpath_config *c, struct moat_fastpath *fp, char *err,
		    size_t errsz)
{
	bool autom = c->mode && strcmp(c->mode, "auto") == 0;
	struct moat_xdp_opts o;
	struct moat_xdp *x = NULL;
	struct fpx *f;
	unsigned i;
	int r = 0;

	if (c->n_ifaces > MOAT_FASTPATH_IFACES_MAX || c->n_ports > MOAT_PORTS_MAX || !c->pin_dir) {
		snprintf(err, errsz, "XDP: bad configuration");
		return -EINVAL;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		snprintf(err, errsz, "XDP: out of memory");
		return -ENOMEM;
	}
	snprintf(f->pin_dir, sizeof(f->pin_dir), "%s", c->pin_dir);
	f->n_ifaces = c->n_ifaces;
	for (i = 0; i < c->n_ifaces; i++)
		snprintf(f->ifaces[i], sizeof(f->ifaces[i]), "%s", c->ifaces[i]);
	moat_xdp_opts_default(&o);
	o.pin_dir = f->pin_dir;
	o.generic = c->mode && strcmp(c->mode, "skb") == 0;
	memcpy(o.ports, c->ports, sizeof(o.ports));
	o.n_ports = c->n_ports;
	o.event_sample = c->event_sample;
	o.groups_max = c->groups_max;
	if (c->tarpit_src_burst) {
		o.tarpit_src_pps = c->tarpit_src_pps;
		o.tarpit_src_burst = c->tarpit_src_burst;
	}
	if (c->tarpit_global_burst) {
		o.tarpit_global_pps = c->tarpit_global_pps;
		o.tarpit_global_burst = c->tarpit_global_burst;
	}
	o.isn_key[0] = c->isn_key[0];
	o.isn_key[1] = c->isn_key[1];
	o.syn_cookies = c->syn_cookies;
	if (c->cookie_threshold)
		o.cookie_threshold = c->cookie_threshold;
	if (c->cookie_mss)
		o.cookie_mss = c->cookie_mss;
	r = moat_xdp_open(&o, &x);
	if (r < 0) {
		snprintf(err, errsz, "XDP: load with pins in %s: %s", c->pin_dir, strerror(-r));
		free(f);
		return r;
	}
	for (i = 0; i < c->n_ifaces; i++) {
		r = moat_xdp_attach(x, f->ifaces[i]);
		if (r < 0 && autom && r != -EBUSY && !o.generic) {
			/* native mode unsupported by the driver: generic */
			moat_xdp_close(x);
			x = NULL;
			o.generic = true;
			if ((r = moat_xdp_open(&o, &x)) < 0)
				break;
			r = moat_xdp_attach(x, f->ifaces[i]);
		}
		if (r < 0)
			break;
		log_info("event=attach ifname=%s mode=%s adopted=%u", f->ifaces[i],
			 o.generic ? "skb" : "native", moat_xdp_adopted(x));
	}
	if (r < 0) {
		snprintf(err, errsz, "XDP: attach to %s: %s", f->ifaces[i], strerror(-r));
		moat_xdp_close(x);
		free(f);
		return r;
	}
	f->x = x;
	*fp = fpx_ops;
	fp->ctx = f;
	return 0;
}

/* moat_xdp_fastpath - an open handle, without interfaces, as a fast path
 * (tests, tools) */
int moat_xdp_fastpath(struct moat_xdp *x, struct moat_fastpath *fp)
{
	struct fpx *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->x = x;
	*fp = fpx_ops;
	fp->ctx = f;
	return 0;
}

static const struct moat_fastpath fpx_ops = {
	.name = "xdp",
	.publish = fpx_publish,
	.read_image = fpx_read_image,
	.share = fpx_share,
	.lookup = fpx_lookup,
	.events_fd = fpx_events_fd,
	.events_drain = fpx_events_drain,
	.read_stats = fpx_read_stats,
	.syn_cookies_hold = fpx_syn_cookies_hold,
	.detach = fpx_detach,
	.close = fpx_close,
};

const struct moat_fastpath_backend moat_fastpath_xdp = {
	.name = "xdp",
	.open = fpx_open,
	.unpin = fpx_unpin,
};
