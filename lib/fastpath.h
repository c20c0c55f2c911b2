/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fastpath.h - the one interface the control plane sees a fast path
 * through.
 *
 * moat-controld opens a backend from a backend-neutral configuration,
 * publishes compiled-table diffs (sequences of struct moat_update, already
 * in a safe order, see bpf/moat_abi.h), reads the live image back (to adopt
 * it at start and to resync after a failed publish), looks single
 * addresses up in what the fast path really holds, drains sampled verdict
 * events, reads counters, and detaches or closes.  It includes no header of
 * any backend: no BPF and no DPDK type crosses this seam.
 *
 * A backend is one folder implementing struct moat_fastpath (the model is
 * OpenSMTPD's struct queue_backend): dataplane/xdp/ with BPF maps
 * (moat_fastpath_xdp); the DPDK backend over its channel to moat-dpdk.  A
 * new backend is one more struct moat_fastpath_backend listed below and a
 * line in moat-controld's table of backends (control/fastpath.c).
 *
 * Conventions (DPDK style): every function returning int returns 0 (or a
 * count where said) on success and a negative errno on failure; ctx is the
 * backend's own handle, passed back unchanged.  Ops marked optional may be
 * NULL: the caller then behaves as documented for that op.  All ops are
 * called from one thread (moat-controld's event loop).
 */
#ifndef MOAT_FASTPATH_H
#define MOAT_FASTPATH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "listing.h"
#include "moat_abi.h"

#define MOAT_FASTPATH_IFACES_MAX 16
#define MOAT_FASTPATH_PORTS_MAX MOAT_PORTS_MAX

/* What a backend is opened with; filled by the daemon from its
 * configuration.  A backend ignores what it has no use for. */
struct moat_fastpath_config {
	/* interfaces (XDP) or ports (DPDK) to filter, by name */
	const char *ifaces[MOAT_FASTPATH_IFACES_MAX];
	unsigned n_ifaces;
	/* where state that outlives the daemon is pinned (XDP: a bpffs
	 * directory) or found (DPDK: the channel to moat-dpdk) */
	const char *pin_dir;
	/* attach mode: "native", "skb" (generic) or "auto" (native, generic
	 * when the driver has none); backends without modes ignore it */
	const char *mode;
	/* SMTP ports filtered, host order, 1..MOAT_FASTPATH_PORTS_MAX */
	uint16_t ports[MOAT_FASTPATH_PORTS_MAX];
	unsigned n_ports;
	/* under a flood one in event_sample refused SYNs is reported
	 * (a power of two; 0 = no events) */
	uint32_t event_sample;
	/* groups the table may use, fixed when the fast path's state is
	 * created (moat_abi.h) */
	uint32_t groups_max;
	/* SipHash key of the tarpit ISN (the same key across restarts gives
	 * the same answer to the same SYN); all zero = a random key */
	uint64_t isn_key[2];
	/* tarpit reply budget per source /24 (IPv4) or /48 (IPv6) and in
	 * total: replies per second (0 = none, a tarpit entry then drops)
	 * and burst; a burst of 0 = the backend's default pair */
	uint32_t tarpit_src_pps, tarpit_src_burst;
	uint32_t tarpit_global_pps, tarpit_global_burst;
	/* SYN cookies for unlisted SYNs (enum moat_syn_cookies; only the
	 * XDP backend has them), the auto threshold (SYNs a second per CPU
	 * and port) and the MSS the SYN-ACK offers; 0 = the defaults */
	uint32_t syn_cookies, cookie_threshold, cookie_mss;
};

/* moat_fastpath_event_cb - one sampled verdict (struct moat_event of
 * moat_abi.h); e is valid only during the call */
typedef void (*moat_fastpath_event_cb)(void *ud, const struct moat_event *e);

/*
 * A fast path the daemon holds.  name is NULL while none is open.
 */
struct moat_fastpath {
	const char *name;   /* "xdp", ... */
	void *ctx;

	/*
	 * publish - apply n updates in order.
	 *   @u, @n: a well-ordered sequence (moat_abi.h PUBLISHING ORDER).
	 * On error the prefix already applied stays applied (every prefix of
	 * such a sequence is safe); the daemon then reads the image back
	 * (read_image) and diffs from there.
	 * Errors: -ERANGE an index past the fast path's tables, -EINVAL an
	 * unknown kind or a bad prefix length, -ENOMEM, -EIO; -ENOTCONN when
	 * the fast path runs in another process that is gone (DPDK).  After
	 * any error the daemon marks the fast path dirty and, backing off,
	 * resyncs: read_image, then a diff from what that returned (so a
	 * restarted fast path that came back empty gets the whole table).
	 */
	int (*publish)(void *ctx, const struct moat_update *u, size_t n);

	/*
	 * read_image - the verdict image the fast path holds now, as an
	 * update sequence that rebuilds it (groups before the tbl24 entries
	 * that use them, then IPv6 prefix lengths and rules).
	 *   @u: set to a malloc'd array the caller frees (NULL when empty).
	 *   @n: set to its length.
	 * Used at open (adopt what a previous daemon left: the next publish
	 * is then a safe diff) and after a failed publish (resync).
	 * Errors: -ENOENT the tables are not there, -EPROTO a layout this
	 * build does not know, -ENOMEM.
	 */
	int (*read_image)(void *ctx, struct moat_update **u, size_t *n);

	/*
	 * share - optional: memory the daemon's table may keep its live
	 * image in instead of its own copy (vt_db_share_groups/_tbl24).
	 *   @tbl24: set to MOAT_TBL24_ENTRIES entries, or NULL.
	 *   @groups, @groups_cap: set to an array of groups_cap groups, or
	 *   NULL; every group publish writes there before the tbl24 entry
	 *   that points at it.
	 * Valid until detach or close; the daemon takes private copies back
	 * (vt_db_unshare) before calling either.  NULL op or -EOPNOTSUPP:
	 * the table keeps its own copy.
	 */
	int (*share)(void *ctx, uint32_t **tbl24, struct moat_group **groups,
		     uint32_t *groups_cap);

	/*
	 * lookup - the action the fast path's own tables give one address
	 * now (what the next packet from it meets).
	 *   @addr: a /32 or /128 (moat_prefix, network order).
	 *   @action: set to an enum moat_action.
	 * Errors: -ENOENT the tables are not there, -EIO.
	 */
	int (*lookup)(void *ctx, const struct moat_prefix *addr, uint32_t *action);

	/*
	 * events_fd - optional: an fd that becomes readable (poll/epoll
	 * EPOLLIN) when sampled events wait; the daemon then calls
	 * events_drain.  The fd belongs to the backend.
	 * Errors: -EOPNOTSUPP no event stream, or what opening it returned.
	 */
	int (*events_fd)(void *ctx);

	/*
	 * events_drain - optional with events_fd: hand every waiting event
	 * to cb, without blocking.  Returns the number delivered or -errno.
	 */
	int (*events_drain)(void *ctx, moat_fastpath_event_cb cb, void *ud);

	/*
	 * read_stats - counters summed over CPUs/lcores and ports.
	 *   @out: MOAT_STAT__MAX counters (enum moat_stat).
	 * Errors: -EINVAL a counter layout of another version, -ENOMEM, -EIO.
	 */
	int (*read_stats)(void *ctx, uint64_t out[MOAT_STAT__MAX]);

	/*
	 * syn_cookies_hold - optional: suspend (hold nonzero) or resume
	 * the SYN cookies the fast path answers unlisted SYNs with; while
	 * held every unlisted SYN goes to the kernel.  The daemon holds
	 * them while the kernel would refuse the cookie ACKs
	 * (net.ipv4.tcp_syncookies not 2).
	 * Errors: -EOPNOTSUPP the fast path runs without SYN cookies.
	 * NULL: as -EOPNOTSUPP.
	 */
	int (*syn_cookies_hold)(void *ctx, int hold);

	/*
	 * detach - stop filtering: take the fast path off every configured
	 * interface and remove what was pinned, then release ctx as close
	 * does (ctx is gone after the call, even on error).
	 *   @err, @errsz: the first failure, for the operator.
	 * Errors: -EIO when an interface could not be detached (the others
	 * were).
	 */
	int (*detach)(void *ctx, char *err, size_t errsz);

	/*
	 * close - release the daemon's handles; filtering goes on with the
	 * tables as they are (a restarted daemon adopts them).  ctx is gone.
	 */
	void (*close)(void *ctx);

	/*
	 * publish_done - optional: the publishes since the last call make
	 * one whole table version (vt_db_publish_cb returned 0).  A fast
	 * path in another process (DPDK) starts forwarding only once it holds
	 * a whole version, and saves that one to disk.
	 * Errors: as publish.  NULL: nothing to do.
	 */
	int (*publish_done)(void *ctx);
};

/*
 * A kind of fast path: how the daemon opens one.
 */
struct moat_fastpath_backend {
	const char *name;

	/*
	 * open - load (or find) the fast path, reuse the state a previous
	 * daemon left (pinned tables and counters), and start filtering on
	 * every interface of c; never leaves an interface without a filter
	 * that had one.
	 *   @c: the configuration; copied where kept.
	 *   @fp: filled in on success.
	 *   @err, @errsz: what failed, for the operator (on error).
	 * Errors: -EINVAL a bad knob, -ENODEV no such interface, -EBUSY
	 * another program is attached, or what loading returned.
	 */
	int (*open)(const struct moat_fastpath_config *c, struct moat_fastpath *fp,
		    char *err, size_t errsz);

	/*
	 * unpin - detach without an open handle: stop what a previous daemon
	 * left filtering on c's interfaces and remove its pins.  Errors as
	 * detach.
	 */
	int (*unpin)(const struct moat_fastpath_config *c, char *err, size_t errsz);
};

/* moat_tcp_syncookies - net.ipv4.tcp_syncookies of this network namespace,
 * or -1 when it cannot be read.  A fast path's SYN cookies need it at 2
 * (the kernel's listener refuses their ACKs otherwise): the XDP backend
 * checks it at load, moat-controld once a second after (readable after
 * the privilege drop). */
static inline int moat_tcp_syncookies(void)
{
	char b[16];
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_syncookies", "r");
	int v = -1;

	if (!f)
		return -1;
	if (fgets(b, sizeof(b), f) && b[0] >= '0' && b[0] <= '9')
		v = atoi(b);
	fclose(f);
	return v;
}

/* The backends built into this tree (one folder each under dataplane/). */
extern const struct moat_fastpath_backend moat_fastpath_xdp;  /* dataplane/xdp/fp_xdp.c */
extern const struct moat_fastpath_backend moat_fastpath_dpdk; /* dataplane/dpdk/fp_dpdk.c */

#endif /* MOAT_FASTPATH_H */
