/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fastpath.c - moat-controld's side of the fast-path seam (lib/fastpath.h),
 * the same for every backend: pick and open the configured backend, adopt
 * the image it holds into the table (so the first publish is a safe diff
 * against what the fast path really has), let the table share the
 * backend's memory, resync after a failed publish, look addresses up, turn
 * sampled verdict events into `moatctl watch` records, detach and close.
 * Nothing here knows how a backend stores its table (OpenSMTPD's
 * queue_backend.c is the model).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <json-c/json.h>

#include "controld.h"
#include "log.h"

/* The backends moat-controld can drive; the configuration picks one. */
static const struct moat_fastpath_backend *const backends[] = {
	&moat_fastpath_xdp,
	&moat_fastpath_dpdk,
};

static struct cd_tag ring_tag = { TAG_RING, NULL, -1 };

/* fp_is_dpdk - [fastpath] backend = dpdk: moat-dpdk owns the ports */
static int fp_is_dpdk(const struct cd *d)
{
	return strcmp(d->cfg.fp_backend, "dpdk") == 0;
}

/* fp_config - the backend-neutral configuration from ours */
static void fp_config(const struct cd *d, struct moat_fastpath_config *c)
{
	memset(c, 0, sizeof(*c));
	for (int i = 0; i < d->cfg.nifaces && i < MOAT_FASTPATH_IFACES_MAX; i++)
		c->ifaces[c->n_ifaces++] = d->cfg.ifaces[i];
	/* DPDK: where moat-dpdk's channel is found */
	c->pin_dir = fp_is_dpdk(d) ? d->cfg.dpdk_socket : d->cfg.pin_dir;
	c->mode = d->cfg.xdp_mode;
	for (int i = 0; i < d->cfg.nports && i < MOAT_FASTPATH_PORTS_MAX; i++)
		c->ports[c->n_ports++] = d->cfg.ports[i];
	c->event_sample = d->cfg.event_sample;
	c->groups_max = d->cfg.groups_max;
	c->tarpit_src_pps = d->cfg.tarpit_src_pps;
	c->tarpit_src_burst = d->cfg.tarpit_src_burst;
	c->tarpit_global_pps = d->cfg.tarpit_global_pps;
	c->tarpit_global_burst = d->cfg.tarpit_global_burst;
	c->syn_cookies = d->cfg.syn_cookies;
	c->cookie_threshold = d->cfg.cookie_threshold;
	c->cookie_mss = d->cfg.cookie_mss;
}

/* fp_backend - the configured backend ([fastpath] backend; config.c
 * accepts only names in backends[]) */
static const struct moat_fastpath_backend *fp_backend(const struct cd *d)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcmp(backends[i]->name, d->cfg.fp_backend) == 0)
			return backends[i];
	return backends[0];
}

/* fp_adopt - make the db's live image what the fast path holds */
static int fp_adopt(struct cd *d)
{
	struct moat_update *u = NULL;
	size_t n = 0;
	int r = d->fp.read_image(d->fp.ctx, &u, &n);

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
 * the fast path really holds, so the next publish is a diff from there
 * (every /24 and IPv6 prefix is recomputed: vt_db_adopt marks all dirty) */
int fp_resync(struct cd *d)
{
	if (!d->fp.name)
		return -ENODEV;
	return fp_adopt(d);
}

/* fp_share - the table keeps its live image in the backend's memory
 * where the backend offers it */
static void fp_share(struct cd *d)
{
	struct moat_group *grp = NULL;
	uint32_t *tbl = NULL, cap = 0;
	int r;

	if (!d->fp.share || d->fp.share(d->fp.ctx, &tbl, &grp, &cap) < 0)
		return;
	if (grp && (r = vt_db_share_groups(d->db, grp, cap)) < 0)
		log_warn("event=fastpath groups_shared=no error=\"%s\" (the table keeps its own copy)",
			 strerror(-r));
	if (grp && tbl && (r = vt_db_share_tbl24(d->db, tbl)) < 0)
		log_warn("event=fastpath tbl24_shared=no error=\"%s\" (the table keeps its own copy)",
			 strerror(-r));
}

/* fp_unshare - the db takes private copies back before the backend's
 * memory goes (if that copy fails the handle stays open: the image must
 * not point at nothing); 0, or -ENOMEM with the handle kept */
static int fp_unshare(struct cd *d)
{
	if (d->db && vt_db_unshare(d->db) < 0) {
		log_err("event=fastpath error=\"out of memory copying tbl24/groups: mapping kept\"");
		return -ENOMEM;
	}
	return 0;
}

/* fp_lookup - the action the fast path's own tables give addr (a /32 or
 * /128); -ENODEV without an attached fast path */
int fp_lookup(struct cd *d, const struct moat_prefix *addr, uint32_t *action)
{
	if (!d->fp.name || d->detached || !d->fp.lookup)
		return -ENODEV;
	return d->fp.lookup(d->fp.ctx, addr, action);
}

/* fp_open - open the configured backend, adopt what it holds */
int fp_open(struct cd *d, char *err, size_t errsz)
{
	const struct moat_fastpath_backend *be = fp_backend(d);
	struct moat_fastpath_config c;
	int r;

	if (d->cfg.nifaces == 0 && !fp_is_dpdk(d)) {
		log_warn("event=fastpath name=none pin_dir=none (no [xdp] interfaces: the table is "
			 "kept and answers lookups, nothing is filtered or pinned)");
		return 0;
	}
	fp_config(d, &c);
	/* the tarpit's ISN key survives restarts: same SYN, same answer */
	r = persist_isn_key(d, c.isn_key);
	if (r >= 0)
		log_info("event=isn_key source=%s", r == 0 ? "state" : "new");
	if (be->open(&c, &d->fp, err, errsz) < 0) {
		memset(&d->fp, 0, sizeof(d->fp));
		return -1;
	}
	r = fp_adopt(d);
	if (r == -ENOTCONN) {
		/* moat-dpdk not up yet: it keeps its own table (restored from
		 * disk); the resync tick adopts it once it answers */
		log_warn("event=fastpath name=%s result=waiting (not answering yet: adopt on resync)",
			 d->fp.name);
		d->fp_dirty = 1;
		d->fp_resync_backoff = 1;
		d->fp_resync_at = 0;
		r = 0;
	}
	if (r < 0) {
		snprintf(err, errsz, "%s: reading the pinned table: %s", d->fp.name, strerror(-r));
		d->fp.close(d->fp.ctx);
		memset(&d->fp, 0, sizeof(d->fp));
		return -1;
	}
	fp_share(d);
	/* loaded with SYN cookies? (without them: off, or the kernel could
	 * not take them at load, which the backend logged) */
	d->fp_cookies = d->cfg.syn_cookies != MOAT_SYN_COOKIES_OFF && d->fp.syn_cookies_hold &&
			d->fp.syn_cookies_hold(d->fp.ctx, 0) == 0;
	d->fp_cookies_held = 0;
	d->fp_cookies_sysctl = -1;
	int efd = d->fp.events_fd ? d->fp.events_fd(d->fp.ctx) : -EOPNOTSUPP;

	if (efd >= 0) {
		ring_tag = (struct cd_tag){ TAG_RING, NULL, efd };
		cd_watch(&ring_tag, EPOLLIN);
	}
	return 0;
}

/* on_event - one sampled verdict to `moatctl watch` clients */
static void on_event(void *ud, const struct moat_event *e)
{
	static const char *const stat_names[] = MOAT_STAT_NAMES;
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
	json_object_object_add(o, "stat", json_object_new_string(e->stat < MOAT_STAT__MAX ?
								 stat_names[e->stat] : "?"));
	json_object_object_add(o, "ifindex", json_object_new_int((int)e->ifindex));
	ctlsrv_sample(d->ctl, o);
	json_object_put(o);
}

/* fp_ring_io - sampled verdict events are waiting, or the fast path's
 * process went away (-ENOTCONN: counted, and the resync tick adopts what
 * it holds when it is back, then republishes) */
void fp_ring_io(struct cd *d)
{
	if (!d->fp.name || !d->fp.events_drain)
		return;
	if (d->fp.events_drain(d->fp.ctx, on_event, d) != -ENOTCONN)
		return;
	d->fp_lost++;
	log_err("event=fastpath_lost name=%s lost=%llu (resync when it is back)", d->fp.name,
		(unsigned long long)d->fp_lost);
	if (!d->fp_dirty) {
		d->fp_dirty = 1;
		d->fp_resync_backoff = 1;
		d->fp_resync_at = 0;
	}
}

/*
 * fp_cookies_tick - once a second with [xdp] syn_cookies: the kernel's
 * listener takes the ACK of a cookie made in XDP only while
 * net.ipv4.tcp_syncookies is 2 (0: never; 1: only within 2 minutes of a
 * cookie of its own), which the backend checks at load.  When an operator
 * changes it afterwards, every client answered with a cookie would get a
 * RST for its ACK: the cookies are held (every unlisted SYN goes to the
 * kernel, which answers by its own setting), logged and counted, and
 * resumed when it is 2 again.  A sysctl that cannot be read changes
 * nothing.  A program loaded without cookies cannot start them: a restart
 * can, and the log says so once the sysctl is 2.
 */
void fp_cookies_tick(struct cd *d)
{
	int v, prev, hold, r;

	if (!d->fp.name || d->detached || d->cfg.syn_cookies == MOAT_SYN_COOKIES_OFF)
		return;
	v = moat_tcp_syncookies();
	prev = d->fp_cookies_sysctl;
	if (v < 0 || v == prev)
		return;
	d->fp_cookies_sysctl = v;
	if (!d->fp_cookies) {
		/* set to 2 since the load refused cookies for it (not when
		 * it was 2 already: then the kernel lacks the helpers) */
		if (v == 2 && prev >= 0)
			log_warn("event=syn_cookies state=off tcp_syncookies=2 (the program was "
				 "loaded without SYN cookies: restart moat-controld to load them)");
		return;
	}
	hold = v != 2;
	if (hold == d->fp_cookies_held)
		return;
	r = d->fp.syn_cookies_hold(d->fp.ctx, hold);
	if (r < 0) {
		log_err("event=syn_cookies state=%s tcp_syncookies=%d error=\"%s\"",
			hold ? "hold_failed" : "resume_failed", v, strerror(-r));
		d->fp_cookies_sysctl = -1;       /* try again on the next tick */
		return;
	}
	d->fp_cookies_held = hold;
	if (hold) {
		d->fp_cookie_holds++;
		log_err("event=syn_cookies state=held tcp_syncookies=%d holds=%llu (the kernel "
			"would refuse the ACKs of cookies made in XDP: every unlisted SYN goes to the "
			"kernel until net.ipv4.tcp_syncookies is 2 again)", v,
			(unsigned long long)d->fp_cookie_holds);
	} else {
		log_info("event=syn_cookies state=resumed tcp_syncookies=2");
	}
}

/* fp_has_events - an event stream is open (`moatctl watch` streams) */
int fp_has_events(const struct cd *d)
{
	return d->fp.name && d->fp.events_drain;
}

/* fp_release - stop watching the events and hand the table's memory back
 * before the backend's handle goes; -ENOMEM keeps the handle */
static int fp_release(struct cd *d)
{
	if (fp_unshare(d) < 0)
		return -ENOMEM;
	cd_unwatch(&ring_tag);
	ring_tag.fd = -1;
	return 0;
}

/* fp_detach - stop filtering: detach from every interface, remove the pins
 * (a later start begins with an empty table and the state on disk) */
int fp_detach(struct cd *d, char *err, size_t errsz)
{
	struct moat_fastpath_config c;
	int r;

	if (fp_is_dpdk(d)) {
		/* nothing of moat-dpdk's is ours to take off: the daemon keeps
		 * publishing, moat-dpdk keeps filtering */
		snprintf(err, errsz, "moat-dpdk owns its ports: stop moat-dpdk to stop filtering");
		return -1;
	}
	if (!d->fp.name && !d->cfg.nifaces) {
		/* no fast path configured: nothing attached, nothing pinned
		 * (pin_dir is "": unpinning it would touch bpffs' root) */
		return 0;
	}
	if (d->fp.name) {
		if (fp_release(d) < 0) {
			snprintf(err, errsz, "out of memory");
			return -1;
		}
		r = d->fp.detach(d->fp.ctx, err, errsz);
	} else {
		fp_config(d, &c);
		r = fp_backend(d)->unpin(&c, err, errsz);
	}
	memset(&d->fp, 0, sizeof(d->fp));
	return r < 0 ? -1 : 0;
}

/* fp_close - release userspace handles; filtering goes on */
void fp_close(struct cd *d)
{
	if (d->fp.name && fp_release(d) == 0)
		d->fp.close(d->fp.ctx);
	memset(&d->fp, 0, sizeof(d->fp));
}
