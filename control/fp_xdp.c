/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fp_xdp.c - moat-controld's use of the XDP backend (dataplane/xdp/):
 * open (reusing pinned maps), attach to the configured interfaces (an
 * existing pinned link gets the new program atomically: no gap), rebuild
 * the verdict image the pinned maps hold so the first publish is a safe
 * diff against what the fast path really has, and feed sampled events to
 * `moatctl watch`.
 *
 * Why rebuild instead of pushing a full image: the table's diff assumes the
 * fast path holds the db's live image.  Pushing a full image over maps a
 * previous daemon filled would rewrite groups that live tbl24 entries still
 * point at (a reader could see another /24's bits).  Reading the maps back
 * (tbl24 and groups are mmapable arrays) and adopting them keeps the
 * PUBLISHING ORDER guarantees of moat_abi.h across restarts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <json-c/json.h>

#include "controld.h"
#include "fp_xdp.h"
#include "log.h"
#include "xdp_backend.h"

static struct cd_tag ring_tag;

/* tbl24 is mapped by the backend as a dense u32[2^24] (moat_xdp_tbl24);
 * groups (one value of gmax 64-byte groups, bpf/moat_xdp.h) are mapped
 * here */

/*
 * Publishing through mmap.  tbl24 and groups are BPF_F_MMAPABLE arrays:
 * writing them through a shared mapping costs a store instead of a syscall
 * per element (1M groups: ~2.5 s through bpf_map_update_batch, well under
 * 0.1 s this way), which is most of the AXFR-to-live budget.  The order of
 * the sequence is kept: a group's 64 bytes are written before the tbl24
 * entry that points at it, and that entry is a release store, so a reader
 * that sees the pointer sees the whole group (x86 TSO; on weaker CPUs the
 * reader's dependent load through the pointer orders it).  IPv6 updates
 * and anything the mapping cannot take go through moat_xdp_publish().
 */
struct fpx {
	struct moat_fastpath orig;  /* the backend's own interface */
	struct moat_xdp *x;
	__u32 *tbl;
	struct moat_group *grp;     /* address range reserved for all gmax */
	size_t glen;                /* its length */
	__u32 gmax;                 /* groups in the map */
	__u32 gmap;                 /* groups [0, gmap) mapped so far */
	int gfd;
};

/*
 * The groups map is mapped a window at a time, as publishing reaches it.
 * An mmap of a BPF array inserts every page of the range at once, and
 * those pages count in the daemon's RSS: mapping a 2^23-group map whole
 * is 512 MiB of RSS from the start, used or not.  The range is reserved
 * up front (PROT_NONE, nothing resident) so the address, which the table
 * shares (vt_db_share_groups), never moves.
 */
#define FPX_WINDOW (1u << 18) /* groups: 16 MiB */

/* fpx_grow - map the groups [0, want) (in FPX_WINDOW steps) */
static int fpx_grow(struct fpx *f, __u32 want)
{
	size_t off, end;
	__u32 to;

	if (want <= f->gmap)
		return 0;
	if (want > f->gmax)
		return -ERANGE;
	uint64_t w = ((uint64_t)want + FPX_WINDOW - 1) / FPX_WINDOW * FPX_WINDOW;

	to = w > f->gmax ? f->gmax : (__u32)w;
	off = (size_t)f->gmap * sizeof(struct moat_group); /* page aligned */
	end = ((size_t)to * sizeof(struct moat_group) + 4095) & ~(size_t)4095;
	if (end > f->glen)
		end = f->glen;
	if (mmap((char *)f->grp + off, end - off, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 f->gfd, (off_t)off) == MAP_FAILED)
		return -errno;
	f->gmap = to;
	return 0;
}
static struct fpx fpx;

/* fpx_publish - apply updates in order, tbl24/groups through the mapping */
static int fpx_publish(void *ctx, const struct moat_update *u, size_t n)
{
	struct fpx *f = ctx;
	size_t i = 0;

	while (i < n) {
		size_t j = i;

		/* a run the backend applies (IPv6) */
		while (j < n && u[j].kind != MOAT_UPD_GROUP && u[j].kind != MOAT_UPD_TBL24)
			j++;
		if (j > i) {
			int r = f->orig.publish(f->orig.ctx, u + i, j - i);

			if (r < 0)
				return r;
			i = j;
			continue;
		}
		const struct moat_update *x = &u[i];

		if (x->kind == MOAT_UPD_GROUP) {
			int r = fpx_grow(f, x->index + 1);

			if (r < 0)
				return r;
			memcpy(&f->grp[x->index], &x->u.group, sizeof(struct moat_group));
		} else {
			if (x->index >= MOAT_TBL24_ENTRIES ||
			    (moat_tbl24_is_group(x->value) && moat_tbl24_group(x->value) >= f->gmax))
				return -ERANGE;
			__atomic_store_n(&f->tbl[x->index], x->value, __ATOMIC_RELEASE);
		}
		i++;
	}
	return 0;
}

/* fpx_read_stats - counters from the backend */
static int fpx_read_stats(void *ctx, uint64_t out[MOAT_STAT__MAX])
{
	struct fpx *f = ctx;

	return f->orig.read_stats(f->orig.ctx, out);
}

/* fpx_unmap - drop the groups mapping (tbl24's belongs to the backend);
 * the db's live image first takes its groups back from it (if that copy
 * fails the mapping stays: the image must not point at nothing) */
static void fpx_unmap(struct cd *d, struct fpx *f)
{
	if (f->grp && d->db && vt_db_unshare(d->db) < 0) {
		log_err("event=fastpath error=\"out of memory copying tbl24/groups: mapping kept\"");
		f->grp = NULL;
	}
	if (f->grp)
		munmap(f->grp, f->glen);
	f->tbl = NULL;
	f->grp = NULL;
}

/* fpx_close - unmap, then close the backend */
static void fpx_close(void *ctx)
{
	struct fpx *f = ctx;

	if (f->grp)
		munmap(f->grp, f->glen); /* not reached with a shared image:
					  * fp_close/fp_detach unmap first */
	f->tbl = NULL;
	f->grp = NULL;
	f->orig.close(f->orig.ctx);
}

/* fpx_setup - wrap the backend's fast path with the mmap writer (groups
 * [0, ghi) mapped at once: the adopted image's); on any problem the
 * backend's own publish is used as is */
static void fpx_setup(struct moat_xdp *x, struct moat_fastpath *fp, __u32 ghi)
{
	int gfd = moat_xdp_map_fd(x, "groups");
	struct bpf_map_info gi = { 0 };
	__u32 gil = sizeof(gi);

	memset(&fpx, 0, sizeof(fpx));
	moat_xdp_fastpath(x, &fpx.orig);
	*fp = fpx.orig;
	fpx.tbl = moat_xdp_tbl24(x);
	if (!fpx.tbl || gfd < 0 || bpf_obj_get_info_by_fd(gfd, &gi, &gil) < 0 ||
	    gi.max_entries != 1 || gi.value_size % sizeof(struct moat_group) ||
	    !(gi.map_flags & BPF_F_MMAPABLE))
		return; /* not the layout this writer knows: use the backend */
	fpx.x = x;
	fpx.gfd = gfd;
	fpx.gmax = gi.value_size / sizeof(struct moat_group);
	fpx.glen = ((size_t)gi.value_size + 4095) & ~(size_t)4095;
	fpx.grp = mmap(NULL, fpx.glen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	int r = fpx.grp == MAP_FAILED ? -errno : fpx_grow(&fpx, ghi ? ghi : 1);

	if (r < 0) {
		if (fpx.grp != MAP_FAILED)
			munmap(fpx.grp, fpx.glen);
		fpx.grp = NULL;
		log_warn("event=fastpath mmap of groups failed (%s): publishing groups by syscalls",
			 strerror(-r));
		return;
	}
	fp->name = "xdp";
	fp->ctx = &fpx;
	fp->publish = fpx_publish;
	fp->read_stats = fpx_read_stats;
	fp->close = fpx_close;
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

/* fp_read_image - the image held by the maps, as an update sequence */
static int fp_read_image(struct moat_xdp *x, struct moat_update **ups, size_t *nups)
{
	int gfd = moat_xdp_map_fd(x, "groups");
	int pfd = moat_xdp_map_fd(x, "v6_plens"), vfd = moat_xdp_map_fd(x, "v6_rules");
	struct bpf_map_info gi = { 0 };
	__u32 gil = sizeof(gi);
	struct moat_update *u = NULL, t;
	size_t n = 0, cap = 0;
	int r = -EINVAL;

	const __u32 *tbl = moat_xdp_tbl24(x);

	if (!tbl || gfd < 0 || pfd < 0 || vfd < 0)
		return -ENOENT;
	if (bpf_obj_get_info_by_fd(gfd, &gi, &gil) < 0)
		return -errno;
	if (gi.max_entries != 1 || gi.value_size % sizeof(struct moat_group))
		return -EPROTO;
	__u32 gmax = gi.value_size / sizeof(struct moat_group);
	/* only the groups up to the highest one tbl24 references: mapping a
	 * BPF array makes every page of the range resident in our RSS */
	__u32 ghi = 0;

	for (__u32 i = 0; i < MOAT_TBL24_ENTRIES; i++)
		if (moat_tbl24_is_group(tbl[i]) && moat_tbl24_group(tbl[i]) < gmax &&
		    moat_tbl24_group(tbl[i]) >= ghi)
			ghi = moat_tbl24_group(tbl[i]) + 1;
	size_t glen = ((size_t)ghi * sizeof(struct moat_group) + 4095) & ~(size_t)4095;
	const struct moat_group *grp = glen ? mmap(NULL, glen, PROT_READ, MAP_SHARED, gfd, 0) : NULL;

	if (grp == MAP_FAILED) {
		r = -errno;
		goto out;
	}
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
	if (bpf_map_lookup_elem(pfd, &zero, &plb) == 0 &&
	    moat_v6_plens_live(&plb)->n) {
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
	if (grp != MAP_FAILED && grp)
		munmap((void *)grp, glen);
	free(u);
	return r;
}

/* fp_adopt - make the db's live image what the maps hold */
static int fp_adopt(struct cd *d, struct moat_xdp *x)
{
	struct moat_update *u = NULL;
	size_t n = 0;
	int r = fp_read_image(x, &u, &n);

	if (r < 0)
		return r;
	struct vt_image *img = vt_image_new();

	if (!img) {
		free(u);
		return -ENOMEM;
	}
	r = vt_image_apply(img, u, n);
	if (r == 0)
		r = vt_db_adopt(d->db, img);
	vt_image_free(img);
	free(u);
	if (r == 0 && n)
		log_info("event=adopt updates=%zu (the maps hold a table: the next publish diffs against it)", n);
	return r;
}

/* fp_resync - after a publish failed midway: make the db's live image what
 * the maps really hold, so the next publish is a diff from there (every
 * /24 and IPv6 prefix is recomputed: vt_db_adopt marks all dirty) */
int fp_resync(struct cd *d)
{
	if (!d->xdp)
		return -ENODEV;
	return fp_adopt(d, d->xdp);
}

/*
 * The lookup of bpf/moat_lookup.h over the maps as they are (tbl24 and
 * groups through the mappings, IPv6 through syscalls): what the next packet
 * from an address meets, for `moatctl lookup` and the tests.
 */
struct fplk {
	const __u32 *tbl;
	const struct moat_group *grp;  /* the mapping, or NULL */
	__u32 gmax;                    /* groups in the mapping */
	__u32 gall;                    /* groups in the map */
	int gfd, pfd, vfd;
	struct moat_group g;
	struct moat_v6_plens_buf pl;  /* the map's value: selector + two slots */
	__u32 act;
};

/* fplk_group - groups[idx] through the mapping, or through a mapping of
 * its one page (groups are one map value: no per-group syscall); NULL =
 * absent */
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

/* fp_lookup - the action the XDP maps give addr (a /32 or /128);
 * -ENODEV without an attached fast path */
int fp_lookup(struct cd *d, const struct moat_prefix *addr, uint32_t *action)
{
	struct fplk k = { 0 };

	if (!d->xdp || d->detached)
		return -ENODEV;
	k.tbl = moat_xdp_tbl24(d->xdp);
	k.gfd = moat_xdp_map_fd(d->xdp, "groups");
	k.pfd = moat_xdp_map_fd(d->xdp, "v6_plens");
	k.vfd = moat_xdp_map_fd(d->xdp, "v6_rules");
	if (!k.tbl || k.gfd < 0 || k.pfd < 0 || k.vfd < 0)
		return -ENOENT;
	struct bpf_map_info gi = { 0 };
	__u32 gil = sizeof(gi);

	if (bpf_obj_get_info_by_fd(k.gfd, &gi, &gil) < 0)
		return -errno;
	k.gall = gi.value_size / sizeof(struct moat_group);
	if (fpx.grp && fpx.x == d->xdp) {
		k.grp = fpx.grp;
		k.gmax = fpx.gmap; /* beyond: by syscall */
	}
	if (addr->family == MOAT_AF_INET)
		*action = moat_lookup_v4(&k, (uint32_t)addr->addr[0] << 24 | (uint32_t)addr->addr[1] << 16 |
						    (uint32_t)addr->addr[2] << 8 | addr->addr[3]);
	else
		*action = moat_lookup_v6(&k, addr->addr);
	return 0;
}

/* fp_open - open the backend, attach every interface, adopt pinned state */
int fp_open(struct cd *d, char *err, size_t errsz)
{
	struct moat_xdp_opts o;
	struct moat_xdp *x = NULL;
	int r;

	if (d->cfg.nifaces == 0) {
		log_warn("event=fastpath name=none (no [xdp] interfaces: the table is kept and "
			 "answers lookups, nothing is filtered)");
		return 0;
	}
	moat_xdp_opts_default(&o);
	o.pin_dir = d->cfg.pin_dir;
	o.generic = strcmp(d->cfg.xdp_mode, "skb") == 0;
	for (int i = 0; i < d->cfg.nports; i++)
		o.ports[i] = d->cfg.ports[i];
	o.n_ports = (unsigned)d->cfg.nports;
	o.event_sample = d->cfg.event_sample;
	o.groups_max = d->cfg.groups_max;
	/* the tarpit's ISN key survives restarts: same SYN, same answer */
	r = persist_isn_key(d, o.isn_key);
	if (r >= 0)
		log_info("event=isn_key source=%s", r == 0 ? "state" : "new");
	r = moat_xdp_open(&o, &x);
	if (r < 0) {
		snprintf(err, errsz, "XDP: load with pins in %s: %s", d->cfg.pin_dir, strerror(-r));
		return -1;
	}
	r = fp_adopt(d, x);
	if (r < 0) {
		snprintf(err, errsz, "XDP: reading the pinned table: %s", strerror(-r));
		moat_xdp_close(x);
		return -1;
	}
	for (int i = 0; i < d->cfg.nifaces; i++) {
		r = moat_xdp_attach(x, d->cfg.ifaces[i]);
		if (r < 0 && strcmp(d->cfg.xdp_mode, "auto") == 0 && r != -EBUSY && !o.generic) {
			/* native mode unsupported by the driver: generic */
			moat_xdp_close(x);
			o.generic = true;
			if ((r = moat_xdp_open(&o, &x)) < 0 || (r = fp_adopt(d, x)) < 0)
				break;
			r = moat_xdp_attach(x, d->cfg.ifaces[i]);
		}
		if (r < 0) {
			snprintf(err, errsz, "XDP: attach to %s: %s", d->cfg.ifaces[i], strerror(-r));
			moat_xdp_close(x);
			return -1;
		}
		log_info("event=attach ifname=%s mode=%s adopted=%u", d->cfg.ifaces[i],
			 o.generic ? "skb" : "native", moat_xdp_adopted(x));
	}
	d->xdp = x;
	struct vt_image_stats st;

	vt_image_stats(vt_db_image(d->db), &st);
	fpx_setup(x, &d->fp, st.groups_hiwater);
	/* the db's live image keeps its groups in the mapping itself: a
	 * second copy of every group would cost as much again (~480 MiB for
	 * a scattered 10M zone); fpx_publish writes each group there first */
	if (fpx.grp && (r = vt_db_share_groups(d->db, fpx.grp, fpx.gmax)) < 0)
		log_warn("event=fastpath groups_shared=no error=\"%s\" (the table keeps its own copy)",
			 strerror(-r));
	if (fpx.grp && (r = vt_db_share_tbl24(d->db, fpx.tbl)) < 0)
		log_warn("event=fastpath tbl24_shared=no error=\"%s\" (the table keeps its own copy)",
			 strerror(-r));
	int efd = moat_xdp_events_fd(x);

	if (efd >= 0) {
		ring_tag = (struct cd_tag){ TAG_RING, x, efd };
		cd_watch(&ring_tag, EPOLLIN);
	}
	return 0;
}

/* on_event - one sampled verdict to `moatctl watch` clients */
static void on_event(void *ud, const struct moat_event *e)
{
	struct cd *d = ud;
	char a[INET6_ADDRSTRLEN];
	struct json_object *o = json_object_new_object();

	inet_ntop(e->family == 4 ? AF_INET : AF_INET6, e->saddr, a, sizeof(a));
	json_object_object_add(o, "event", json_object_new_string("verdict"));
	json_object_object_add(o, "ts_ns", json_object_new_int64((int64_t)e->ts_ns));
	json_object_object_add(o, "src", json_object_new_string(a));
	json_object_object_add(o, "sport", json_object_new_int(e->sport));
	json_object_object_add(o, "dport", json_object_new_int(e->dport));
	json_object_object_add(o, "action", json_object_new_string(vt_action_name(e->action)));
	json_object_object_add(o, "stat", json_object_new_string(moat_xdp_stat_name(e->stat)));
	json_object_object_add(o, "ifindex", json_object_new_int((int)e->ifindex));
	ctlsrv_sample(d->ctl, o);
	json_object_put(o);
}

/* fp_ring_io - the event ring is readable */
void fp_ring_io(struct cd *d)
{
	if (d->xdp)
		moat_xdp_poll_events(d->xdp, 0, on_event, d);
}

/* fp_detach - remove the program from every interface, and the pins */
int fp_detach(struct cd *d, char *err, size_t errsz)
{
	int bad = 0;

	for (int i = 0; i < d->cfg.nifaces; i++) {
		int r = d->xdp ? moat_xdp_detach(d->xdp, d->cfg.ifaces[i]) :
				 moat_xdp_detach_pinned(d->cfg.pin_dir, d->cfg.ifaces[i]);

		if (r < 0 && r != -ENOENT) {
			snprintf(err, errsz, "detach %s: %s", d->cfg.ifaces[i], strerror(-r));
			bad = 1;
		} else {
			log_warn("event=detach ifname=%s (filtering stopped by moatctl detach)",
				 d->cfg.ifaces[i]);
		}
	}
	if (d->xdp) {
		cd_unwatch(&ring_tag);
		fpx_unmap(d, &fpx);
		moat_xdp_close(d->xdp);
		d->xdp = NULL;
	}
	/* the maps' pins: a later start begins with an empty table + disk state */
	static const char *const maps[] = { "tbl24", "groups", "v6_plens", "v6_rules", "stats",
					    "port_stats", "rl_src", "limits", "events" };
	char p[PATH_MAX];

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		snprintf(p, sizeof(p), "%.4000s/%s", d->cfg.pin_dir, maps[i]);
		unlink(p);
	}
	rmdir(d->cfg.pin_dir);
	memset(&d->fp, 0, sizeof(d->fp));
	return bad ? -1 : 0;
}

/* fp_close - userspace only; pinned state stays in force */
void fp_close(struct cd *d)
{
	if (d->xdp) {
		cd_unwatch(&ring_tag);
		fpx_unmap(d, &fpx);
		moat_xdp_close(d->xdp);
		d->xdp = NULL;
	}
	memset(&d->fp, 0, sizeof(d->fp));
}
