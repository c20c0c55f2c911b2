/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xdp_backend.h - the XDP fast path's user side (libmoatxdp): load the
 * moat_xdp program, attach it to interfaces through pinned bpf_links,
 * adopt what a previous loader left pinned, publish verdict-table updates,
 * read counters and sampled events.
 *
 * Lifecycle (one cleanup path, see STYLE.md "skeleton lifecycle"):
 *
 *   struct moat_xdp_opts o;
 *   moat_xdp_opts_default(&o);          // then change knobs
 *   moat_xdp_open(&o, &x);              // load; reuse pinned maps if present
 *   moat_xdp_attach(x, "eth0");         // pinned link: adopt (atomic program
 *                                       // replace) or create + pin
 *   moat_xdp_publish(x, upd, n);        // table updates, in order
 *   moat_xdp_read_stats(x, counters);
 *   moat_xdp_close(x);                  // userspace only: filtering goes on
 *
 * Pins (under opts.pin_dir, default /sys/fs/bpf/moat):
 *   maps  tbl24 groups v6_plens v6_rules stats rl_src limits events
 *         v6t_root v6t_nodes v6t_buckets (the IPv6 trie the program reads)
 *   links link_<ifname>
 * A pinned link keeps the program attached after the loader dies; the maps
 * keep the table and counters.  A new loader opening the same pin_dir reuses
 * those maps (so sizes must match: changing groups_max or v6_max needs a
 * detach and the pins removed) and moat_xdp_attach() swaps the program in
 * the existing link with bpf_link_update(): the interface is never without
 * a program.
 *
 * Every function returns 0 or a negative errno unless said otherwise.
 */
#ifndef MOAT_XDP_BACKEND_H
#define MOAT_XDP_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fastpath.h"
#include "moat_abi.h"

#define MOAT_XDP_PIN_DIR "/sys/fs/bpf/moat"

struct moat_xdp_opts {
	/* bpffs directory for maps and links; NULL = nothing pinned (tests,
	 * benchmarks: the program lives as long as the handle). */
	const char *pin_dir;
	/* SMTP ports filtered (default {25}); at most MOAT_PORTS_MAX. */
	uint16_t ports[MOAT_PORTS_MAX];
	unsigned n_ports;
	/* Tarpit reply budget per source /24 (IPv4) or /48 (IPv6) and in
	 * total, replies per second and burst (defaults 10/20 and
	 * 10000/20000); a rate of 0 answers nothing (tarpit = drop). */
	uint32_t tarpit_src_pps, tarpit_src_burst;
	uint32_t tarpit_global_pps, tarpit_global_burst;
	/* Events: refused SYNs are reported per CPU and port with a gap
	 * that doubles while reports come within 10 ms of each other, up
	 * to event_sample (a power of two; 0 = none), and is back to 1
	 * after a quiet 10 ms: every one at a low rate, 1 in event_sample
	 * under a flood; at most event_max_pps per second in total
	 * (defaults 1024 and 1000). */
	uint32_t event_sample, event_max_pps;
	/* SipHash key of the tarpit ISN; all zero = a random key. */
	uint64_t isn_key[2];
	/* Map sizes, fixed at creation (default 2^20 groups, 2^16 IPv6
	 * rules, 2^16 rate-limited sources). */
	uint32_t groups_max, v6_max, rl_src_max;
	/* Attach in generic (skb) mode instead of native (driver) mode. */
	bool generic;
	/* SYN cookies for unlisted SYNs (enum moat_syn_cookies, default
	 * off; moat_xdp.h, docs/xdp.md): auto answers with cookies while a
	 * CPU sees more than cookie_threshold SYNs a second to a port
	 * (default 1000); cookie_mss is the MSS the SYN-ACK offers over
	 * IPv4 (IPv6: 20 less; default 1460, 536..65495).  Asked for on a
	 * kernel without the helpers (< 6.0) or with net.ipv4.tcp_syncookies
	 * not 2 in this network namespace: logged, and the program loads
	 * without them (moat_xdp_syn_cookies() says which). */
	uint32_t syn_cookies, cookie_threshold, cookie_mss;
};

struct moat_xdp;

/* moat_xdp_sec_register - teach libbpf the SEC(MOAT_XDP_SEC) of programs
 * that read tbl24 directly (bpf/moat_maps.bpf.h); moat_xdp_open() calls
 * it, another loader of such a program (the lookup benchmark) must call
 * it before opening.  0 or -errno. */
int moat_xdp_sec_register(void);

/* moat_xdp_opts_default - fill o with the defaults above */
void moat_xdp_opts_default(struct moat_xdp_opts *o);

/* moat_xdp_open - open and load the program with o's knobs, creating the
 * maps or reusing the pinned ones in o->pin_dir.  -EINVAL on a bad knob,
 * -EEXIST style errors from libbpf when pinned maps do not match. */
int moat_xdp_open(const struct moat_xdp_opts *o, struct moat_xdp **out);

/* moat_xdp_attach - make this program the one on ifname.  With a pinned
 * link for ifname, replace its program atomically (adopt); otherwise
 * create a link (native mode unless opts.generic) and pin it; then pin the
 * program as pin_dir/prog (replacing a former loader's pin).  -EBUSY when
 * another (non-link) XDP program is attached. */
int moat_xdp_attach(struct moat_xdp *x, const char *ifname);

/* moat_xdp_adopted - how many attach calls replaced an existing link */
unsigned moat_xdp_adopted(const struct moat_xdp *x);

/* moat_xdp_detach - detach from ifname and remove its pinned link (and
 * pin_dir/prog when no link is left).  -ENOENT when moat has no link there. */
int moat_xdp_detach(struct moat_xdp *x, const char *ifname);

/* moat_xdp_detach_pinned - the same without a loaded program (moatctl
 * detach): pin_dir NULL = the default. */
int moat_xdp_detach_pinned(const char *pin_dir, const char *ifname);

/* moat_xdp_publish - apply n updates in order, consecutive IPv6 updates
 * of one kind and one prefix length batched (bpf_map_update_batch), with a
 * kernel RCU grace period where the IPv6 length changes and around plens
 * flips (moat_abi.h PUBLISHING ORDER 4; the length run carries over to the
 * next call), groups and tbl24 entries stored into the mmap'd maps.  On
 * error the applied prefix stays (every prefix of a well-ordered sequence
 * is safe, moat_abi.h): -ERANGE for an index past a map, -EINVAL for an
 * unknown kind or a bad prefix length. */
int moat_xdp_publish(struct moat_xdp *x, const struct moat_update *u,
		     size_t n);

/* moat_xdp_grace_count - grace periods publishes have waited for */
uint64_t moat_xdp_grace_count(const struct moat_xdp *x);
/* moat_xdp_len_grace_count - of them, those taken before an IPv6 change
 * longer than the one before it (moat_trie6.h PUBLISHING) */
uint64_t moat_xdp_len_grace_count(const struct moat_xdp *x);

/* moat_xdp_read_stats - per-CPU counters summed, MOAT_STAT__MAX entries */
int moat_xdp_read_stats(struct moat_xdp *x, uint64_t out[MOAT_STAT__MAX]);

/* moat_xdp_read_port_stats - counters of port slot (0..n_ports-1) */
int moat_xdp_read_port_stats(struct moat_xdp *x, unsigned slot,
			     uint64_t out[MOAT_STAT__MAX]);

/* moat_xdp_read_pinned_stats - counters from pin_dir's stats map, with no
 * program loaded (moatctl, tests) */
int moat_xdp_read_pinned_stats(const char *pin_dir,
			       uint64_t out[MOAT_STAT__MAX]);

typedef void (*moat_xdp_event_cb)(void *ud, const struct moat_event *e);

/* moat_xdp_poll_events - wait up to timeout_ms for sampled events and call
 * cb for each; returns the number handled or -errno. */
int moat_xdp_poll_events(struct moat_xdp *x, int timeout_ms,
			 moat_xdp_event_cb cb, void *ud);

/* moat_xdp_events_fd - epoll-able fd of the event ring (for a main loop);
 * call moat_xdp_poll_events(x, 0, ...) when it is readable. */
int moat_xdp_events_fd(struct moat_xdp *x);

/* moat_xdp_prog_fd - the loaded program (BPF_PROG_TEST_RUN in tests) */
int moat_xdp_prog_fd(const struct moat_xdp *x);

/* moat_xdp_tbl24 - the tbl24 map mapped into memory: the dense
 * u32[MOAT_TBL24_ENTRIES] of moat_abi.h.  For bulk loading a fresh table
 * (benchmarks) and reading it back; write entries with single aligned
 * stores, and only after the groups they point at. */
__u32 *moat_xdp_tbl24(struct moat_xdp *x);

/* moat_xdp_groups - the groups value mapped into memory: the dense
 * groups[groups_max] of moat_abi.h, mapped a window at a time so only
 * what is used becomes resident; groups [0, want) are mapped on return
 * (*mapped: how many are, may be more).  The address never moves while
 * the handle lives.  -ERANGE when want > groups_max. */
int moat_xdp_groups(struct moat_xdp *x, uint32_t want, struct moat_group **grp,
		    uint32_t *mapped);

/* moat_xdp_groups_max - groups the groups value holds */
uint32_t moat_xdp_groups_max(const struct moat_xdp *x);

/* moat_xdp_map_fd - fd of a map by name ("tbl24", "groups", ...) or -ENOENT */
int moat_xdp_map_fd(const struct moat_xdp *x, const char *name);

/* moat_xdp_fastpath - wrap an open handle as the control plane's struct
 * moat_fastpath (lib/fastpath.h, implemented in fp_xdp.c); its close
 * calls moat_xdp_close.  0 or -ENOMEM. */
int moat_xdp_fastpath(struct moat_xdp *x, struct moat_fastpath *fp);

/* moat_xdp_close - free userspace resources; pinned links and maps stay in
 * force (without pins the program is detached).  NULL is fine. */
void moat_xdp_close(struct moat_xdp *x);

/* moat_xdp_syn_cookies - the SYN-cookie mode the loaded program runs
 * (enum moat_syn_cookies): off when asked for but unavailable */
unsigned moat_xdp_syn_cookies(const struct moat_xdp *x);

/* moat_xdp_cookies_hold - suspend (hold nonzero) or resume the loaded
 * program's SYN cookies at run time: while held every unlisted SYN goes
 * to the kernel (moat-controld holds them while net.ipv4.tcp_syncookies
 * is not 2).  -EOPNOTSUPP when the program runs without cookies. */
int moat_xdp_cookies_hold(struct moat_xdp *x, int hold);

/* moat_xdp_cookies_held - 1 while held, 0 otherwise */
int moat_xdp_cookies_held(const struct moat_xdp *x);

/* moat_xdp_syn_cookies_name - "off", "on", "auto" */
const char *moat_xdp_syn_cookies_name(unsigned mode);

/* moat_xdp_stat_name - "pass", "tarpit", ... for an enum moat_stat */
const char *moat_xdp_stat_name(unsigned stat);

#endif /* MOAT_XDP_BACKEND_H */
