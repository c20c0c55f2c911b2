/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dp_config.h - moat-dpdk's configuration: the [dpdk] section of its
 * --config file (moat.conf(5); other sections are moat-controld's and are
 * skipped), state_dir and user taken from [daemon] unless [dpdk] sets them.
 */
#ifndef MOAT_DP_CONFIG_H
#define MOAT_DP_CONFIG_H

#include <stdint.h>

#include "moat_abi.h"

#define DP_CFG_ERRLEN 512
#define DP_TARPIT_MAX 10000000 /* tarpit rate and burst limit (config.c's too) */

struct dp_config {
	char port[128];            /* the wire port as EAL names it (required) */
	char exception[16];        /* the exception path's TAP interface */
	char exception_port[128];  /* or an EAL port as the exception path */
	char socket[108];          /* the publish channel's socket */
	char state_dir[256];       /* isn.key */
	char user[64];             /* run as this user after init ("" = stay) */
	uint16_t ports[MOAT_PORTS_MAX]; /* SMTP ports filtered, host order */
	unsigned n_ports;
	uint32_t event_sample;     /* 0 or a power of two up to 65536 */
	uint32_t groups_max;       /* groups the table may hold */
	uint32_t v6_max;           /* IPv6 rules the table may hold */
	/* tarpit SYN-ACKs per second and burst, per source /24 or /48 and
	 * in total (rate 0: none, a tarpit entry drops) */
	uint32_t tarpit_src_pps, tarpit_src_burst;
	uint32_t tarpit_global_pps, tarpit_global_burst;
	uint32_t rx_desc, tx_desc; /* descriptors per queue */
	uint32_t mbufs;            /* mbuf pool size; 0 = from the queues */
	uint32_t idle_sleep_us;    /* an idle worker's longest sleep */
	uint32_t load_wait;        /* seconds to wait for a table; 0 = forever */
	char log_level[16];
};

/* dp_config_load - defaults, then path's [dpdk] (and [daemon] state_dir).
 * Returns 0, or -1 with err (FILE:LINE: reason) filled. */
int dp_config_load(const char *path, struct dp_config *c, char err[DP_CFG_ERRLEN]);

#endif /* MOAT_DP_CONFIG_H */
