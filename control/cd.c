/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cd.c - what moat-controld's modules call back into the daemon for: the
 * one struct cd, the event loop's fd registration (cd_watch & co, over
 * cd->epfd), fast-path counters, reload and detach.  Kept apart from
 * controld.c (start-up, the loop itself, signals, privilege drop, main) so
 * the fuzz targets (tests/fuzz/fuzz_ctlsrv.c, fuzz_persist.c) link the
 * same code the daemon runs, with an epoll of their own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "controld.h"
#include "fleet.h"
#include "livelk.h"
#include "log.h"

struct cd *cd;

/* cd_watch - add an fd to the loop; the tag comes back in events */
int cd_watch(struct cd_tag *t, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = t };

	return epoll_ctl(cd->epfd, EPOLL_CTL_ADD, t->fd, &ev) < 0 ? -errno : 0;
}

/* cd_watch_mod - change the events of a watched fd */
int cd_watch_mod(struct cd_tag *t, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = t };

	return epoll_ctl(cd->epfd, EPOLL_CTL_MOD, t->fd, &ev) < 0 ? -errno : 0;
}

/* cd_unwatch - remove an fd (closed fds are gone already: errors ignored) */
void cd_unwatch(struct cd_tag *t)
{
	if (t->fd >= 0)
		epoll_ctl(cd->epfd, EPOLL_CTL_DEL, t->fd, NULL);
}

/* cd_read_stats - fast-path counters; -ENODEV without one */
int cd_read_stats(struct cd *d, uint64_t out[MOAT_STAT__MAX])
{
	if (!d->fp.read_stats)
		return -ENODEV;
	return d->fp.read_stats(d->fp.ctx, out);
}

/* cd_reload - re-read the configuration; the old one stays on any error */
int cd_reload(struct cd *d, char *err, size_t errsz)
{
	struct moat_config *c = malloc(sizeof(*c));
	char cerr[CFG_ERRLEN];

	d->reloads++;
	if (!c) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	if (cfg_load(c, d->cfg_path, cerr) < 0) {
		snprintf(err, errsz, "%s", cerr);
		goto fail;
	}
	/* what needs a restart is refused, not half applied */
	if (strcmp(c->socket_path, d->cfg.socket_path) || strcmp(c->pin_dir, d->cfg.pin_dir) ||
	    strcmp(c->state_dir, d->cfg.state_dir) || c->nifaces != d->cfg.nifaces ||
	    memcmp(c->ifaces, d->cfg.ifaces, sizeof(c->ifaces)) ||
	    c->nports != d->cfg.nports || memcmp(c->ports, d->cfg.ports, sizeof(c->ports)) ||
	    c->event_sample != d->cfg.event_sample || c->groups_max != d->cfg.groups_max ||
	    c->tarpit_src_pps != d->cfg.tarpit_src_pps ||
	    c->tarpit_src_burst != d->cfg.tarpit_src_burst ||
	    c->tarpit_global_pps != d->cfg.tarpit_global_pps ||
	    c->tarpit_global_burst != d->cfg.tarpit_global_burst ||
	    c->syn_cookies != d->cfg.syn_cookies || c->cookie_threshold != d->cfg.cookie_threshold ||
	    c->cookie_mss != d->cfg.cookie_mss ||
	    strcmp(c->xdp_mode, d->cfg.xdp_mode) ||
	    memcmp(&c->metrics, &d->cfg.metrics, sizeof(c->metrics)) ||
	    memcmp(c->notify_listen, d->cfg.notify_listen, sizeof(c->notify_listen)) ||
	    strcmp(c->user, d->cfg.user)) {
		snprintf(err, errsz, "%s: socket, state_dir, user, notify_listen, [xdp] and [metrics] "
			 "changes need a restart", d->cfg_path);
		goto fail;
	}
	if (zm_apply_config(d, c, err, errsz) < 0)
		goto fail;
	d->cfg = *c;
	free(c);
	if (livelk_open(d, err, errsz) < 0)
		log_err("event=reload live lookups unavailable: %s", err);
	if (fleet_reload(d, err, errsz) < 0)
		log_err("event=reload fleet publishing off: %s", err);
	enum log_level l;

	if (log_parse_level(d->cfg.log_level, &l) == 0)
		log_set_level(l);
	d->last_reload_error[0] = 0;
	zm_publish(d, "reload");
	log_info("event=reload result=ok zones=%d", d->nzones);
	return 0;
fail:
	free(c);
	d->reload_errors++;
	snprintf(d->last_reload_error, sizeof(d->last_reload_error), "%s", err);
	log_err("event=reload result=error error=\"%s\" (old configuration kept)", err);
	return -1;
}

/* cd_detach - moatctl detach: stop filtering, then exit */
int cd_detach(struct cd *d, char *err, size_t errsz)
{
	if (fp_detach(d, err, errsz) < 0)
		return -1;
	d->detached = 1;
	d->quit = 1;
	return 0;
}
