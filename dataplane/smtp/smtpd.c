/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * smtpd.c - moat-smtpd: start-up (config, TLS, listeners bound as root,
 * privilege drop), the worker threads (one epoll loop each over its own
 * SO_REUSEPORT listener, c-ares channel and sessions), and the main thread
 * (signals, stats file, the optional moat-controld connection, report.c).
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "auth.h"
#include "smtpd.h"

#define STOP_DRAIN_MAX 30 /* s a stop waits for downstream replies to a dot */

struct smtpd_config *g_cfg;
static struct smtpd_config cfg;
static struct worker *workers;

/* usage - --help text */
static void usage(FILE *f)
{
	fprintf(f,
		"usage: moat-smtpd [-c FILE] [-t] [--log-format text|json] [-h] [-V]\n"
		"SMTP engine of moat: refuses abuse at connect, MAIL, RCPT and end of DATA\n"
		"and relays accepted mail before queueing to the downstream MTA.\n\n"
		"  -c, --config FILE  configuration (default /etc/moat/smtpd.conf)\n"
		"  -t, --check        check the configuration and exit\n"
		"  --log-format F     text (default) or json: one JSON object a line\n"
		"  -h, --help         this help\n"
		"  -V, --version      print the version\n\n"
		"Signals: SIGUSR1 logs the counters (and rewrites stats_file); SIGHUP reloads\n"
		"the content filters' rules (as moatctl rules reload); SIGTERM/SIGINT stop.\n"
		"See moat-smtpd(8) and docs/smtpd.md for every configuration key.\n");
}

/* open_listener - one SO_REUSEPORT listening socket */
static int open_listener(const struct sockaddr_storage *ss, socklen_t len)
{
	int one = 1;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* for the accepted sockets, which inherit both (Linux copies the
	 * listener's options into each): replies are small writes, so no
	 * Nagle delay behind a delayed ACK; only replies go to a client, so a
	 * fixed send buffer (no autotuning up to tcp_wmem's 4 MB) caps what a
	 * client that never reads holds in kernel memory (past it, OBUF_HIGH
	 * stops its commands) */
	int sndbuf = CLIENT_SNDBUF;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    (ss->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
	    bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, 4096) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* drop_privileges - become `user` with no capabilities (root only) */
static int drop_privileges(const char *user)
{
	if (geteuid() != 0) {
		log_warn("not started as root: staying uid %d", (int)getuid());
		return 0;
	}
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		log_err("user '%s' does not exist (tools/setup creates 'moat')", user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		log_err("user '%s' is root: refusing to run privileged", user);
		return -1;
	}
	if (setgroups(0, NULL) != 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0) {
		log_err("cannot become %s: %s", user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		log_err("privilege drop did not stick");
		return -1;
	}
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	log_info("running as %s (uid %d, gid %d)", user, (int)pw->pw_uid, (int)pw->pw_gid);
	return 0;
}

/* worker_main - one event loop */
static void *worker_main(void *arg)
{
	struct worker *w = arg;

	if (filters_thread_init() != 0)
		log_fatal("worker %d: filter initialisation failed", w->id);
	if (auth_thread_init() != 0)
		log_fatal("worker %d: DKIM initialisation failed", w->id);
	int64_t drain_until = 0;

	w->now_ms = moat_clock_ms();
	for (;;) {
		if (w->stop) {
			/* stopping: no new sessions; a message at the
			 * downstream gets the downstream's answer (at most
			 * relay_data_timeout, capped at STOP_DRAIN_MAX s:
			 * a service manager kills a slow stop), everything
			 * else 421 */
			int waiting = session_shutdown_idle(w);
			int drain_s = cfg.relay_data_timeout;

			if (drain_s > STOP_DRAIN_MAX)
				drain_s = STOP_DRAIN_MAX;
			if (!drain_until) {
				drain_until = w->now_ms + (int64_t)drain_s * 1000 + 1000;
				for (int i = 0; i < w->n_listen; i++)
					epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listen_ev[i].fd, NULL);
				if (waiting)
					log_info("worker %d: stopping: %d message(s) at the downstream, "
						 "waiting up to %d s for the reply to the dot", w->id,
						 waiting, drain_s + 1);
			}
			if (!waiting || w->now_ms >= drain_until)
				break;
		}
		worker_pass(w, w->stop ? 20 : 100);
		if (w->now_ms - w->last_sweep >= 100) {
			w->last_sweep = w->now_ms;
			dnsbl_tick(w);
			session_sweep(w);
			session_accept_resume(w);
		}
	}
	session_shutdown_all(w);
	auth_thread_fini();
	return NULL;
}

/* worker_setup - epoll, wake eventfd, listeners, resolver */
static int worker_setup(struct worker *w, int id, int *lfds)
{
	w->id = id;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	pthread_mutex_init(&w->cq_lock, NULL);
	w->wake_ev.kind = EV_WAKE;
	w->wake_ev.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->epfd < 0 || w->wake_ev.fd < 0)
		return -1;
	struct epoll_event ee = { .events = EPOLLIN, .data.ptr = &w->wake_ev };
	epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake_ev.fd, &ee);
	for (int i = 0; i < cfg.n_listen; i++) {
		w->listen_ev[i].kind = EV_LISTEN;
		w->listen_ev[i].fd = lfds[i];
		ee.data.ptr = &w->listen_ev[i];
		epoll_ctl(w->epfd, EPOLL_CTL_ADD, lfds[i], &ee);
	}
	w->n_listen = cfg.n_listen;
	if ((cfg.n_zones || cfg.auth.dkim) && dnsbl_worker_init(w) != 0) /* DKIM/DMARC ask on it too */
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },         { "version", no_argument, NULL, 'V' },
		{ "log-format", required_argument, NULL, 'L' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = "/etc/moat/smtpd.conf";
	int check = 0, json = 0, c;
	char err[1024];

	/* the SPF worker process spf.c spawns (libspf2 out of the engine) */
	if (argc == 3 && strcmp(argv[1], "--spf-worker") == 0)
		return spf_worker_main(argc, argv);
	log_init(argv[0], 0);
	while ((c = getopt_long(argc, argv, "c:thV", lo, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 't': check = 1; break;
		case 'L':
			if (log_parse_format(optarg, &json) < 0) {
				fprintf(stderr, "moat-smtpd: --log-format: text or json\n");
				return 2;
			}
			log_set_json(json);
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("moat-smtpd %s\n", MOAT_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	config_defaults(&cfg);
	g_cfg = &cfg;
	if (config_load(&cfg, path, err, sizeof(err)) != 0) {
		fprintf(stderr, "moat-smtpd: %s\n", err);
		return 1;
	}
	if (filters_resolve(&cfg, err, sizeof(err)) != 0 || rcptmap_load(cfg.recipient_map, err, sizeof(err)) != 0) {
		fprintf(stderr, "moat-smtpd: %s: %s\n", path, err);
		return 1;
	}
	if (auth_init(&cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "moat-smtpd: %s: %s\n", path, err);
		return 1;
	}
	if (tls_init(&cfg) != 0) {
		fprintf(stderr, "moat-smtpd: %s: cannot load tls_cert/tls_key\n", path);
		return 1;
	}
	if (check) {
		printf("moat-smtpd: %s: ok\n", path);
		return 0;
	}
	enum log_level lvl;
	log_parse_level(cfg.log_level, &lvl);
	log_set_level(lvl);
	if (cfg.use_syslog)
		log_init(argv[0], 1);

	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* a relayed session holds two descriptors (client, downstream) */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)cfg.max_sessions * 2 + 256 > rl.rlim_cur)
		log_warn("open-file limit %llu is below 2 x max_sessions (%d) + 256: past it, connections wait in the listen queue (raise LimitNOFILE / ulimit -n, or lower max_sessions)",
			 (unsigned long long)rl.rlim_cur, cfg.max_sessions);
	signal(SIGPIPE, SIG_IGN);
	/* every thread inherits this mask: signals are read from a signalfd
	 * in the main thread only */
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGUSR1);
	sigaddset(&ss, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);

	/* bind as root, then drop */
	workers = calloc((size_t)cfg.workers, sizeof(*workers));
	if (!workers)
		log_fatal("out of memory");
	int lfds[CFG_MAX_LISTEN];
	for (int i = 0; i < cfg.workers; i++) {
		for (int l = 0; l < cfg.n_listen; l++) {
			lfds[l] = open_listener(&cfg.listen[l], cfg.listen_len[l]);
			if (lfds[l] < 0)
				log_fatal("cannot listen (listen key %d): %s", l + 1, strerror(-lfds[l]));
		}
		if (worker_setup(&workers[i], i, lfds) != 0)
			log_fatal("worker %d: set-up failed", i);
	}
	if (smtpd_metrics_start(&cfg, err, sizeof(err)) != 0) {
		/* the default listener is a convenience: mail goes on without it */
		if (cfg.metrics_explicit)
			log_fatal("metrics_listen: %s", err);
		log_err("event=metrics result=off reason=\"%s\" (default metrics_listen; set it or off)", err);
		stats_inc("metrics", "listen_failed");
	}
	if (drop_privileges(cfg.user) != 0)
		return 1;
	if (cfg.spf && spf_pool_start(cfg.spf_workers) != 0)
		log_fatal("cannot start the SPF pool");
	report_init(&cfg);
	report_tick(); /* connect now, not after the first poll timeout */

	int sfd = signalfd(-1, &ss, SFD_CLOEXEC);
	if (av_monitor_start(&cfg.av) != 0)
		log_fatal("cannot start the clamd database monitor");

	for (int i = 0; i < cfg.workers; i++)
		if (pthread_create(&workers[i].thr, NULL, worker_main, &workers[i]) != 0)
			log_fatal("cannot start worker %d", i);
	log_info("started: %d workers, relay to downstream, %d local domains, spf=%s, dnsbl zones=%d, tls=%s, filters=%d, controld=%s",
		 cfg.workers, cfg.n_local_domains, cfg.spf ? "on" : "off", cfg.n_zones, tls_ctx() ? "on" : "off",
		 g_n_filters, cfg.controld_socket[0] ? cfg.controld_socket : "off");

	int64_t last_sweep = moat_clock_ms(), last_stats = 0;
	for (;;) {
		/* poll, not select: the controld socket may be opened late,
		 * with an fd number above FD_SETSIZE */
		struct pollfd pf[3] = { { .fd = sfd, .events = POLLIN } };
		int npf = 1 + report_pollfds(pf + 1);
		int r = poll(pf, (nfds_t)npf, report_wait_ms(1000));
		int64_t now = moat_clock_ms();
		if (r > 0 && (pf[0].revents & POLLIN)) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
					break;
				if (si.ssi_signo == SIGHUP)
					filters_reload();
				if (si.ssi_signo == SIGUSR1) {
					char buf[16384];
					stats_format(buf, sizeof(buf), 1);
					log_info("counters %s", buf);
					if (cfg.stats_file[0])
						stats_write_file(cfg.stats_file);
				}
			}
		}
		report_tick();
		if (now - last_stats >= 1000) {
			last_stats = now;
			if (cfg.stats_file[0])
				stats_write_file(cfg.stats_file);
			smtpd_metrics_update();
		}
		if (now - last_sweep >= 60000) {
			last_sweep = now;
			iplimit_sweep(now);
		}
	}
	log_info("stopping");
	report_stop();
	for (int i = 0; i < cfg.workers; i++)
		workers[i].stop = 1;
	for (int i = 0; i < cfg.workers; i++)
		pthread_join(workers[i].thr, NULL);
	if (cfg.spf)
		spf_pool_stop();
	av_monitor_stop();
	smtpd_metrics_stop();
	if (cfg.stats_file[0])
		stats_write_file(cfg.stats_file);
	report_fini();
	return 0;
}
