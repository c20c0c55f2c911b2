/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * livelk.c - live DNSBL lookups ([zone] type = live) for the `lookup`
 * command: moat-smtpd (and moatctl) ask about an address, moat-controld
 * answers with the table's verdict and what the live zones say right now.
 *
 * libmoatsrc's c-ares wrapper (sources/live.h) is non-blocking; its sockets
 * go into the daemon's epoll through sock_cb and its timeouts are driven
 * from the loop.  Live answers are reported, not installed in the table:
 * moat-smtpd acts on them in its session and reports the clients it
 * refuses (smtp.report), which is what reaches the fast path.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

#include "controld.h"
#include "live.h"
#include "livelk.h"
#include "log.h"

#define LIVE_FDS 32

static struct moat_live *live;
static struct cd_tag fdtags[LIVE_FDS];
static int fdused[LIVE_FDS];

/* sock_cb - c-ares opened, changed or closed a socket */
static void sock_cb(void *arg, int fd, bool readable, bool writable)
{
	uint32_t ev = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
	int slot = -1, free_slot = -1;

	(void)arg;
	for (int i = 0; i < LIVE_FDS; i++) {
		if (fdused[i] && fdtags[i].fd == fd)
			slot = i;
		else if (!fdused[i] && free_slot < 0)
			free_slot = i;
	}
	if (!ev) {
		if (slot >= 0) {
			cd_unwatch(&fdtags[slot]);
			fdused[slot] = 0;
		}
		return;
	}
	if (slot >= 0) {
		cd_watch_mod(&fdtags[slot], ev);
		return;
	}
	if (free_slot < 0) {
		log_warn("event=live more than %d resolver sockets: lookups will time out", LIVE_FDS);
		return;
	}
	fdtags[free_slot] = (struct cd_tag){ TAG_LIVE, NULL, fd };
	if (cd_watch(&fdtags[free_slot], ev) == 0)
		fdused[free_slot] = 1;
}

/* livelk_close - cancel lookups in flight and free the channel */
void livelk_close(void)
{
	moat_live_free(live);
	live = NULL;
	for (int i = 0; i < LIVE_FDS; i++) {
		if (fdused[i])
			cd_unwatch(&fdtags[i]);
		fdused[i] = 0;
	}
}

/* livelk_open - (re)create the channel for the configured live zones */
int livelk_open(struct cd *d, char *err, size_t errsz)
{
	struct moat_live_cfg c;

	livelk_close();
	memset(&c, 0, sizeof(c));
	c.resolver = d->cfg.resolver[0] ? d->cfg.resolver : NULL;
	for (int i = 0; i < d->nzones; i++) {
		struct cd_zone *z = d->zones[i];

		if (z->cfg.type != CFG_SRC_LIVE || c.nzones >= MOAT_LIVE_MAX_ZONES)
			continue;
		c.zones[c.nzones].zone = z->cfg.name;
		c.zones[c.nzones].source = z->id;
		c.nzones++;
	}
	if (!c.nzones)
		return 0;
	live = moat_live_new(&c, sock_cb, NULL, err, errsz);
	if (!live)
		return -1;
	log_info("event=live zones=%zu resolver=%s", c.nzones, c.resolver ? c.resolver : "system");
	return 0;
}

/* livelk_active - live zones are configured */
int livelk_active(void)
{
	return live != NULL;
}

/* livelk_lookup - start a lookup of addr in every live zone */
int livelk_lookup(const struct moat_prefix *addr, moat_live_done_cb cb, void *arg)
{
	if (!live)
		return -ENOENT;
	return moat_live_lookup(live, addr, cb, arg);
}

/* livelk_io - a resolver socket is ready */
void livelk_io(struct cd_tag *t, uint32_t events)
{
	if (live)
		moat_live_process(live, t->fd, events);
}

/* livelk_tick - resolver timeouts (called every loop turn) */
void livelk_tick(void)
{
	if (live && moat_live_pending(live))
		moat_live_process(live, -1, 0);
}
