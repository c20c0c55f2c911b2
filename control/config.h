/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * config.h - moat-controld's configuration file (one INI file, libinih).
 *
 * Every key, its default and its meaning are in docs/configuration.md and
 * moat.conf(5).  cfg_load() validates everything and reports the first
 * problem as "FILE:LINE: reason"; a daemon that gets an error keeps its
 * old configuration (reload) or refuses to start.
 */
#ifndef MOAT_CONTROLD_CONFIG_H
#define MOAT_CONTROLD_CONFIG_H

#include <limits.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "listing.h"

#define CFG_MAX_ZONES 64
#define CFG_TARPIT_MAX 10000000 /* tarpit rate and burst limit */
#define CFG_MAX_PRIMARIES 8
#define CFG_MAX_IFACES 16
#define CFG_MAX_CODES 16  /* VT_MAX_RULES */
#define CFG_MAX_ERRCODES 8 /* VT_MAX_ERRCODES */
#define CFG_ERRLEN 512
#define CFG_PIN_DIR "/sys/fs/bpf/moat" /* pin_dir's default, with interfaces */

enum cfg_src_type {
	CFG_SRC_AXFR = 0,   /* DNS zone by AXFR/IXFR, NOTIFY */
	CFG_SRC_RBLDNSD,    /* rbldnsd data file, reloaded when replaced */
	CFG_SRC_LIVE,       /* c-ares lookups per address (moat-smtpd asks) */
};

enum cfg_on_expire { CFG_EXPIRE_KEEP = 0, CFG_EXPIRE_DROP };

/* A return-code range and its weight (postscreen dnsbl_sites style). */
struct cfg_code {
	uint32_t first, last; /* host byte order, inclusive */
	int weight;
};

/* An error-code prefix: answers in it are never listings. */
struct cfg_cidr {
	uint32_t addr, mask; /* host byte order */
};

struct cfg_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[64]; /* as written, for logs */
};

struct cfg_zone {
	char name[256];            /* "zone NAME" section: zone apex / source name */
	int line;                  /* line of the section header */
	enum cfg_src_type type;
	struct cfg_addr primary[CFG_MAX_PRIMARIES];
	int nprimary;
	char tsig[512];            /* "ALG:NAME:BASE64SECRET" or "" */
	char file[PATH_MAX];       /* rbldnsd */
	char format[16];           /* rbldnsd dataset: ip4set | ip4trie | ip6trie */
	int ixfr;                  /* ask for IXFR when we have a serial */
	int weight;                /* weight of a listing with no specific code */
	struct cfg_code code[CFG_MAX_CODES];
	int ncode;
	struct cfg_cidr errcode[CFG_MAX_ERRCODES];
	int nerrcode;
	enum cfg_on_expire on_expire;
	uint32_t stale_max;        /* seconds kept after expire (on_expire=keep) */
	uint32_t refresh_min;      /* clamp of the SOA refresh, seconds */
	uint32_t refresh_max;
	uint32_t retry;            /* 0 = SOA retry */
	uint32_t timeout;          /* one transfer attempt, seconds */
	uint64_t max_entries;      /* sanity: more listings = quarantine */
	int sanity;                /* run the test-point / world checks */
	uint32_t max_prefix_v4;    /* sanity: a listing shorter than /N = quarantine */
	uint32_t max_prefix_v6;
	int fleet;                 /* a fleet zone: honour exp= TXT, skip own records */
};

/* [fleet]: this appliance publishes shared entries (docs/fleet.md) */
struct cfg_fleet {
	char id[33];               /* "" = not publishing */
	char zone[256];            /* the zone this appliance's key may update */
	struct cfg_addr primary;
	char tsig[512];
	int share;                 /* operator entries shared unless --no-share */
	uint32_t lifetime;         /* exp of shared entries without a ttl */
	uint32_t record_ttl;       /* DNS TTL of the records */
	int learn[4];              /* dnsbl, pregreet, protocol, content */
	uint32_t learn_ttl[4];
	uint32_t per24_max;        /* shared entries per /24 (0 = no cap) */
	uint32_t queue_max;
	uint32_t batch;            /* records per UPDATE */
	uint32_t timeout;          /* seconds */
};

struct moat_config {
	char path[PATH_MAX];
	/* [daemon] */
	char socket_path[108];
	mode_t socket_mode;
	char socket_owner[64];     /* "user" or "user:group" or "" */
	char user[64];             /* drop privileges to this user ("" = stay) */
	char state_dir[PATH_MAX];
	char log_level[16];
	int use_syslog;
	struct cfg_addr notify_listen[4]; /* where NOTIFY is accepted (UDP) */
	int nnotify;
	char resolver[256];        /* live lookups: "IP[@PORT],..." ("" = /etc/resolv.conf) */
	/* [fastpath] */
	char fp_backend[16];       /* xdp | dpdk */
	/* [dpdk] */
	char dpdk_socket[108];     /* moat-dpdk's publish channel */
	/* [xdp] */
	char ifaces[CFG_MAX_IFACES][32];
	int nifaces;
	char pin_dir[PATH_MAX];    /* "" without interfaces: nothing is pinned */
	char xdp_mode[16];         /* native | skb | auto */
	uint16_t ports[8];         /* SMTP ports filtered */
	int nports;
	uint32_t event_sample;     /* under a flood 1 in N refused SYNs to `moatctl watch` (2^k, 0 = none) */
	uint32_t groups_max;       /* size of the groups map (fixed at creation) */
	/* tarpit SYN-ACK budget per source /24 or /48 and in total: replies
	 * per second (0 = none: tarpit becomes drop) and burst (>= 1) */
	uint32_t tarpit_src_pps, tarpit_src_burst;
	uint32_t tarpit_global_pps, tarpit_global_burst;
	/* SYN cookies for unlisted SYNs (enum moat_syn_cookies), the auto
	 * threshold (SYNs a second per CPU and port), the SYN-ACK's MSS */
	uint32_t syn_cookies, cookie_threshold, cookie_mss;
	/* [metrics] */
	struct cfg_addr metrics;   /* len 0 = off */
	/* [policy] */
	int tarpit_threshold;      /* score >= this: tarpit (0 = never) */
	int drop_threshold;        /* score >= this: drop (0 = never) */
	/* [operator] */
	uint32_t operator_max_ttl; /* 0 = unlimited */
	uint32_t report_ttl;       /* default ttl of moat-smtpd reports */
	int accept_reports;        /* take smtp.report entries */
	/* [fleet] */
	struct cfg_fleet fleet;
	/* [zone NAME] */
	struct cfg_zone zone[CFG_MAX_ZONES];
	int nzones;
};

/* cfg_defaults - fill every key with its documented default */
void cfg_defaults(struct moat_config *c);
/* cfg_load - defaults, then the file; 0 or -1 with "FILE:LINE: reason" in
 * err (size CFG_ERRLEN).  c is only meaningful on success. */
int cfg_load(struct moat_config *c, const char *path, char *err);
/* cfg_load_string - the same from a string (tests); name is used as FILE */
int cfg_load_string(struct moat_config *c, const char *name, const char *text, char *err);

/* cfg_parse_duration - "90", "90s", "15m", "2h", "7d", "1w"; 0 or -1 */
int cfg_parse_duration(const char *s, uint32_t *out);
/* cfg_parse_addr - "IP", "IP@PORT", "IP:PORT", "[IPv6]:PORT"; 0 or -1 */
int cfg_parse_addr(const char *s, uint16_t default_port, struct cfg_addr *a);
/* cfg_zone_find - zone by name, NULL if none */
const struct cfg_zone *cfg_zone_find(const struct moat_config *c, const char *name);
/* cfg_code_weight - weight policy of zone z gives return code (host order);
 * returns 0 and *w, or -1 if the code is an error code / outside 127/8 */
int cfg_code_weight(const struct cfg_zone *z, uint32_t code, int *w);
const char *cfg_src_type_name(enum cfg_src_type t);
/* cfg_key - the i-th key the parser knows (section "zone" = [zone NAME]);
 * NULL past the last (tests check every key is documented) */
const char *cfg_key(size_t i, const char **section);

#endif /* MOAT_CONTROLD_CONFIG_H */
