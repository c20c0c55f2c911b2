/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * controld.c - moat-controld: start-up, the event loop, signals, reload and
 * the privilege drop.
 *
 * Start-up order is what makes a cold start filter at once:
 *   1. read and validate the configuration (a bad value stops here with
 *      FILE:LINE);
 *   2. build the table, attach XDP (adopting pinned links and maps, so a
 *      restart never leaves the interface without a program), read back the
 *      image the pinned maps hold;
 *   3. load every source's last good state from disk and operator entries,
 *      publish (now the maps hold the persisted state);
 *   4. bind the control socket, NOTIFY and metrics listeners, then drop
 *      privileges ([daemon] user) - map fds opened before keep working;
 *   5. only then start transfers.
 * SIGHUP and `moatctl reload` re-read the configuration; a bad one is
 * reported and the old one stays.  SIGTERM/SIGINT exit and leave the XDP
 * program and its maps pinned (filtering goes on); `moatctl detach` is the
 * only way to stop filtering.  Without [xdp] interfaces nothing is attached
 * or pinned (pin_dir is unused) and nothing filters, running or not.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "controld.h"
#include "fleet.h"
#include "livelk.h"
#include "log.h"
#include "sources.h"

static struct cd_tag sig_tag;

/* keep_caps - after setuid: permitted = effective = CAP_BPF + CAP_NET_ADMIN
 * and nothing else.  Why not none: with kernel.unprivileged_bpf_disabled
 * (Debian's default is 2) every bpf() syscall fails without CAP_BPF, even
 * on a map fd opened before - so publishing IPv6 rules, reading counters
 * and detaching need CAP_BPF; the link detach and XDP queries need
 * CAP_NET_ADMIN.  (tbl24 and groups are written through mmap and would
 * work without.) */
static int keep_caps(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct c[2];

	memset(c, 0, sizeof(c));
	c[CAP_TO_INDEX(CAP_BPF)].permitted |= CAP_TO_MASK(CAP_BPF);
	c[CAP_TO_INDEX(CAP_NET_ADMIN)].permitted |= CAP_TO_MASK(CAP_NET_ADMIN);
	c[0].effective = c[0].permitted;
	c[1].effective = c[1].permitted;
	return (int)syscall(SYS_capset, &h, c);
}

/* drop_privileges - become [daemon] user, keeping CAP_BPF and CAP_NET_ADMIN */
static int drop_privileges(struct cd *d, char *err, size_t errsz)
{
	struct passwd *pw;

	if (!d->cfg.user[0])
		return 0;
	pw = getpwnam(d->cfg.user);
	if (!pw) {
		snprintf(err, errsz, "user: no user '%s'", d->cfg.user);
		return -1;
	}
	/* the state directory and the pins must stay writable after the drop */
	if (chown(d->cfg.state_dir, pw->pw_uid, pw->pw_gid) < 0)
		log_warn("chown %s: %s", d->cfg.state_dir, strerror(errno));
	if (d->cfg.nifaces) {
		DIR *dir = opendir(d->cfg.pin_dir);
		struct dirent *de;
		char p[PATH_MAX];

		if (chown(d->cfg.pin_dir, pw->pw_uid, pw->pw_gid) < 0)
			log_warn("chown %s: %s", d->cfg.pin_dir, strerror(errno));
		while (dir && (de = readdir(dir))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%.3800s/%s", d->cfg.pin_dir, de->d_name);
			if (chown(p, pw->pw_uid, pw->pw_gid) < 0)
				log_warn("chown %s: %s", p, strerror(errno));
		}
		if (dir)
			closedir(dir);
	}
	if (prctl(PR_SET_KEEPCAPS, 1) < 0 || setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0 || keep_caps() < 0) {
		snprintf(err, errsz, "dropping privileges to %s: %s", d->cfg.user, strerror(errno));
		return -1;
	}
	prctl(PR_SET_KEEPCAPS, 0);
	log_info("event=privileges user=%s uid=%u caps=bpf,net_admin (everything else dropped)",
		 d->cfg.user, (unsigned)pw->pw_uid);
	return 0;
}

/* sample_stats - counters once a second, for rates */
static void sample_stats(struct cd *d)
{
	uint64_t c[MOAT_STAT__MAX];

	if (cd_read_stats(d, c) < 0)
		return;
	d->prev = d->cur;
	memcpy(d->cur.c, c, sizeof(c));
	d->cur.at_ns = moat_clock_ns();
	d->cur.valid = 1;
}

/* handle_signals - SIGHUP reload, SIGTERM/SIGINT exit */
static void handle_signals(struct cd *d)
{
	struct signalfd_siginfo si;
	char err[CFG_ERRLEN];

	while (read(sig_tag.fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			cd_reload(d, err, sizeof(err));
		else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			d->quit = 1;
	}
}

/* loop - the event loop: one thread, epoll, a 1-second tick */
static void loop(struct cd *d)
{
	time_t last_tick = 0;

	while (!d->quit) {
		struct epoll_event ev[64];
		int n = epoll_wait(d->epfd, ev, 64, 250);

		if (n < 0 && errno != EINTR) {
			log_err("epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n && !d->quit; i++) {
			struct cd_tag *t = ev[i].data.ptr;

			switch (t->kind) {
			case TAG_CTL:
				ctlsrv_io(d->ctl, t, ev[i].events);
				break;
			case TAG_ZONE:
				zm_io(d, t->ptr, ev[i].events);
				break;
			case TAG_NOTIFY:
			case TAG_NOTIFY_TCP:
				zm_notify_io(d, t);
				break;
			case TAG_SIGNAL:
				handle_signals(d);
				break;
			case TAG_RING:
				fp_ring_io(d);
				break;
			case TAG_LIVE:
				livelk_io(t, ev[i].events);
				break;
			case TAG_FLEET:
				fleet_io(d, t, ev[i].events);
				break;
			case TAG_TIMER:
				break;
			}
		}
		time_t now = time(NULL);

		livelk_tick();
		if (now != last_tick) {
			last_tick = now;
			zm_tick(d, now);
			fleet_tick(d, now);
			src_notify_tick(now);
			sample_stats(d);
			fp_cookies_tick(d);
			ctlsrv_tick(d->ctl);
			if (d->metrics)
				metrics_update(d->metrics, d);
		}
	}
}

/* usage - the --help text */
static void usage(FILE *f)
{
	fprintf(f,
		"usage: moat-controld [-c FILE] [--check] [-d] [--log-format text|json]\n"
		"\n"
		"moat's control plane: keeps DNSBL zones (AXFR/IXFR/NOTIFY), rbldnsd files\n"
		"and operator entries merged into the XDP fast path's verdict table.\n"
		"\n"
		"  -c, --config FILE   configuration (default /etc/moat/moat.conf)\n"
		"      --check         validate the configuration and exit (0 = good)\n"
		"  -d, --debug         log at debug level\n"
		"      --log-format F  text (default) or json: one JSON object a line\n"
		"  -h, --help          this text\n"
		"  -V, --version       print the version\n"
		"\n"
		"Runs in the foreground (systemd Type=simple).  See moat-controld(8),\n"
		"moat.conf(5) and moatctl(8).\n");
}

/* log_restored - what start-up put in the table from disk, counted: zones
 * and their entries from their state files, operator and moat-smtpd entries
 * (each its own count: one "entries" read as the zones' read 0 for 35) */
static void log_restored(const struct cd *d)
{
	size_t zones = 0, zone_entries = 0;

	for (int i = 0; i < d->nzones; i++) {
		if (!d->zones[i]->from_disk)
			continue;
		zones++;
		zone_entries += d->zones[i]->n;
	}
	log_info("event=restored zones=%zu zone_entries=%zu operator_entries=%zu "
		 "(%s before any transfer)", zones, zone_entries, d->nentries,
		 d->fp.name ? "live in the fast path" : "in the table; no fast path");
}

/* log_stop - the exit line: whether filtering goes on depends on the case
 * (a stop line must not claim a filter that never ran) */
static void log_stop(const struct cd *d)
{
	if (!d->cfg.nifaces)
		log_info("event=stop fastpath=none (no [xdp] interfaces: nothing was filtering)");
	else if (d->detached)
		log_info("event=stop fastpath=detached (detached: filtering stopped)");
	else if (d->fp.name)
		log_info("event=stop fastpath=%s pin_dir=%s (the program and maps stay pinned: "
			 "filtering goes on)", d->fp.name, d->cfg.pin_dir);
	else
		log_info("event=stop fastpath=none (no fast path open: nothing was filtering)");
}

/* main - start-up in the order above, then the loop */
int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'C' },
		{ "debug", no_argument, NULL, 'd' },
		{ "log-format", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *path = "/etc/moat/moat.conf";
	int check = 0, debug = 0, json = 0, c;
	char err[CFG_ERRLEN];
	sigset_t ss;

	log_init(argv[0], 0);
	while ((c = getopt_long(argc, argv, "c:dhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'C': check = 1; break;
		case 'd': debug = 1; break;
		case 'L':
			if (log_parse_format(optarg, &json) < 0) {
				fprintf(stderr, "moat-controld: --log-format: text or json\n");
				return 2;
			}
			log_set_json(json);
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("moat-controld %s\n", MOAT_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	cd = calloc(1, sizeof(*cd));
	if (!cd)
		log_fatal("out of memory");
	cd->cfg_path = path;
	cd->started = time(NULL);
	cd->epfd = -1;
	if (cfg_load(&cd->cfg, path, err) < 0) {
		fprintf(stderr, "moat-controld: %s\n", err);
		return 1;
	}
	if (check) {
		printf("%s: ok (%d zones)\n", path, cd->cfg.nzones);
		return 0;
	}
	if (cd->cfg.use_syslog)
		log_init(argv[0], 1);
	enum log_level lvl;

	if (log_parse_level(cd->cfg.log_level, &lvl) == 0)
		log_set_level(lvl);
	if (debug)
		log_set_level(LOG_LVL_DEBUG);
	log_info("event=start version=%s config=%s zones=%d", MOAT_VERSION, path, cd->cfg.nzones);

	cd->epfd = epoll_create1(EPOLL_CLOEXEC);
	sigemptyset(&ss);
	sigaddset(&ss, SIGHUP);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);
	sig_tag = (struct cd_tag){ TAG_SIGNAL, NULL, signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC) };
	if (cd->epfd < 0 || sig_tag.fd < 0 || cd_watch(&sig_tag, EPOLLIN) < 0)
		log_fatal("epoll/signalfd: %s", strerror(errno));
	if (mkdir(cd->cfg.state_dir, 0750) < 0 && errno != EEXIST)
		log_fatal("state_dir %s: %s", cd->cfg.state_dir, strerror(errno));

	/* 2. table and fast path */
	if (zm_init(cd, err, sizeof(err)) < 0)
		log_fatal("%s: policy: %s", path, err);
	if (fp_open(cd, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	/* 3. last good state, before any transfer */
	struct moat_config *boot = malloc(sizeof(*boot));

	if (!boot)
		log_fatal("out of memory");
	*boot = cd->cfg;
	if (zm_apply_config(cd, boot, err, sizeof(err)) < 0)
		log_fatal("%s: %s", path, err);
	free(boot);
	zm_entries_restore(cd);
	persist_load_live(cd);
	if (zm_publish(cd, "restore") < 0)
		log_err("event=start the restored table could not be published");
	log_restored(cd);
	if (fleet_open(cd, err, sizeof(err)) < 0)
		log_fatal("%s: [fleet]: %s", path, err);
	/* 4. listeners, then the privilege drop */
	cd->ctl = ctlsrv_open(cd, err, sizeof(err));
	if (!cd->ctl)
		log_fatal("control socket: %s", err);
	if (src_notify_open(cd, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	if (livelk_open(cd, err, sizeof(err)) < 0)
		log_fatal("%s: live lookups: %s", path, err);
	if (cd->cfg.metrics.len) {
		cd->metrics = metrics_start(&cd->cfg.metrics, err, sizeof(err));
		if (!cd->metrics)
			log_fatal("metrics: %s", err);
	}
	if (drop_privileges(cd, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	log_mem("-", "ready");
	log_info("event=ready socket=%s fastpath=%s", cd->cfg.socket_path,
		 cd->fp.name ? cd->fp.name : "none");
	/* 5. transfers start from the first tick */
	loop(cd);

	log_stop(cd);
	livelk_close(); /* before ctlsrv: cancelled lookups still answer */
	if (cd->live_dirty)
		persist_save_live(cd);
	fleet_close(cd);
	ctlsrv_close(cd->ctl);
	src_notify_close(cd);
	metrics_stop(cd->metrics);
	fp_close(cd);
	zm_free(cd);
	close(sig_tag.fd);
	close(cd->epfd);
	free(cd);
	return 0;
}
