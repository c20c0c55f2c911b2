/*
 * xdp_loader.c - a small loader for tests and benchmarks, standing in for
 * moat-controld until it exists: it drives libmoatxdp (xdp_backend.h) the
 * way the control plane will - open (adopting pinned maps), attach or adopt
 * the pinned links, publish a verdict table given on the command line,
 * print sampled events - and can detach and read pinned counters.
 *
 * The table compiler here is deliberately minimal (CIDR rules applied in
 * order into tbl24 entries and groups, IPv6 rules per prefix length); the
 * real one lives in lib/ (verdict-table branch).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "prefix.h"
#include "xdp_backend.h"

#define MAX_RULES 256
#define MAX_GROUPS 256

struct rule {
	struct moat_prefix pfx;
	unsigned act;
};

static struct rule rules[MAX_RULES];
static unsigned nrules;
static volatile sig_atomic_t stop;

/* usage - the --help text */
static void usage(FILE *f)
{
	fprintf(f,
		"usage: xdp_loader [OPTIONS] run IFACE...   attach/adopt, publish, "
		"stay until SIGTERM\n"
		"       xdp_loader [OPTIONS] once IFACE...  attach/adopt, publish, exit\n"
		"       xdp_loader [--pin DIR] detach IFACE...\n"
		"       xdp_loader [--pin DIR] stats\n"
		"options:\n"
		"  --pin DIR          bpffs pin directory (default %s)\n"
		"  --generic          attach in generic (skb) mode\n"
		"  --port N           SMTP port (repeatable; default 25)\n"
		"  --drop CIDR        rule: DROP (repeatable; also --tarpit, --allow, --pass)\n"
		"  --src-pps N --src-burst N --global-pps N --global-burst N\n"
		"                     tarpit reply limits\n"
		"  --groups N         groups map size (default 2^20)\n"
		"  --events           print sampled events while running\n"
		"  --event-sample N   under a flood report 1 in N refused SYNs (power of two; default 1024)\n"
		"  --syn-cookies off|on|auto  SYN cookies for unlisted SYNs (default off)\n"
		"  --cookie-threshold N  auto: SYNs a second per CPU and port (default 1000)\n"
		"  --help, --version\n", MOAT_XDP_PIN_DIR);
}

/* add_rule - parse "ADDR[/PLEN]" into a rule with action act (bits past
 * PLEN are the network's) */
static int add_rule(const char *s, unsigned act)
{
	struct rule *r;
	int err;

	if (nrules == MAX_RULES)
		return -1;
	r = &rules[nrules];
	memset(r, 0, sizeof(*r));
	err = moat_prefix_parse(s, &r->pfx);
	if (err != 0 && err != -EDOM)
		return -1;
	r->act = act;
	nrules++;
	return 0;
}

/* compile - rules into a publish sequence (groups, tbl24, plens, puts) */
static size_t compile(struct moat_update *u, size_t cap)
{
	static struct { uint32_t idx24; struct moat_group g; } grp[MAX_GROUPS];
	static uint32_t t24[MAX_RULES * 4], t24v[MAX_RULES * 4];
	unsigned ngrp = 0, nt = 0;
	struct moat_v6_plens pl = { 0 };
	size_t n = 0;

	for (unsigned i = 0; i < nrules; i++) {
		struct rule *r = &rules[i];
		uint32_t a, mask, lo, hi;

		if (r->pfx.family != 4)
			continue;
		a = (uint32_t)r->pfx.addr[0] << 24 | r->pfx.addr[1] << 16 |
		    r->pfx.addr[2] << 8 | r->pfx.addr[3];
		mask = r->pfx.plen ? ~0u << (32 - r->pfx.plen) : 0;
		lo = a & mask;
		hi = lo | ~mask;
		if (r->pfx.plen <= 24) {
			for (uint32_t x = lo >> 8; x <= hi >> 8 && nt < MAX_RULES * 4; x++) {
				t24[nt] = x;
				t24v[nt++] = r->act;
				for (unsigned g = 0; g < ngrp; g++)   /* a group under it dies */
					if (grp[g].idx24 == x)
						for (unsigned h = 0; h < 256; h++)
							moat_group_set(&grp[g].g, (uint8_t)h, r->act);
			}
			continue;
		}
		unsigned g;
		for (g = 0; g < ngrp && grp[g].idx24 != lo >> 8; g++)
			;
		if (g == ngrp) {
			if (ngrp == MAX_GROUPS)
				continue;
			grp[g].idx24 = lo >> 8;
			memset(&grp[g].g, 0, sizeof(grp[g].g));
			/* start from what a shorter rule gave the /24 */
			for (unsigned k = 0; k < nt; k++)
				if (t24[k] == lo >> 8)
					for (unsigned h = 0; h < 256; h++)
						moat_group_set(&grp[g].g, (uint8_t)h, t24v[k]);
			ngrp++;
		}
		for (uint32_t h = lo & 0xff; h <= (hi & 0xff); h++)
			moat_group_set(&grp[g].g, (uint8_t)h, r->act);
	}
	/* groups first, then the tbl24 entries pointing at them */
	for (unsigned g = 0; g < ngrp && n < cap; g++, n++) {
		memset(&u[n], 0, sizeof(u[n]));
		u[n].kind = MOAT_UPD_GROUP;
		u[n].index = g;
		u[n].u.group = grp[g].g;
	}
	for (unsigned k = 0; k < nt && n < cap; k++, n++) {
		memset(&u[n], 0, sizeof(u[n]));
		u[n].kind = MOAT_UPD_TBL24;
		u[n].index = t24[k];
		u[n].value = t24v[k];
		for (unsigned g = 0; g < ngrp; g++)
			if (grp[g].idx24 == t24[k])
				u[n].value = moat_tbl24_make_group(g);
	}
	for (unsigned g = 0; g < ngrp && n < cap; g++, n++) {
		memset(&u[n], 0, sizeof(u[n]));
		u[n].kind = MOAT_UPD_TBL24;
		u[n].index = grp[g].idx24;
		u[n].value = moat_tbl24_make_group(g);
	}
	/* IPv6: prefix lengths longest first, then the puts */
	for (unsigned i = 0; i < nrules; i++) {
		unsigned j, p = rules[i].pfx.plen;

		if (rules[i].pfx.family != 6)
			continue;
		for (j = 0; j < pl.n && pl.len[j] != p; j++)
			;
		if (j < pl.n || pl.n == MOAT_V6_MAX_PLENS)
			continue;
		for (j = pl.n++; j > 0 && pl.len[j - 1] < p; j--)
			pl.len[j] = pl.len[j - 1];
		pl.len[j] = (uint8_t)p;
	}
	if (pl.n && n < cap) {
		memset(&u[n], 0, sizeof(u[n]));
		u[n].kind = MOAT_UPD_V6_PLENS;
		u[n].u.plens = pl;
		n++;
	}
	for (unsigned i = 0; i < nrules && n < cap; i++) {
		struct rule *r = &rules[i];

		if (r->pfx.family != 6)
			continue;
		memset(&u[n], 0, sizeof(u[n]));
		u[n].kind = MOAT_UPD_V6_PUT;
		u[n].u.key.plen = r->pfx.plen;
		memcpy(u[n].u.key.addr, r->pfx.addr, 16); /* host bits are clear */
		u[n].value = r->act;
		n++;
	}
	return n;
}

/* on_event - print one sampled event */
static void on_event(void *ud, const struct moat_event *e)
{
	char a[INET6_ADDRSTRLEN];

	(void)ud;
	inet_ntop(e->family == 4 ? AF_INET : AF_INET6, e->saddr, a, sizeof(a));
	printf("event %s src=%s sport=%u dport=%u ifindex=%u\n",
	       moat_xdp_stat_name(e->stat), a, e->sport, e->dport, e->ifindex);
	fflush(stdout);
}

/* on_signal - stop the run loop */
static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* cmd_stats - print pinned counters as "name value" */
static int cmd_stats(const char *pin)
{
	uint64_t st[MOAT_STAT__MAX];
	int err = moat_xdp_read_pinned_stats(pin, st);

	if (err) {
		log_err("stats: %s", strerror(-err));
		return 1;
	}
	for (unsigned s = 0; s < MOAT_STAT__MAX; s++)
		printf("%s %llu\n", moat_xdp_stat_name(s), (unsigned long long)st[s]);
	return 0;
}

int main(int argc, char **argv)
{
	enum { O_PIN = 256, O_GENERIC, O_PORT, O_DROP, O_TARPIT, O_ALLOW, O_PASS,
	       O_SPPS, O_SBURST, O_GPPS, O_GBURST, O_GROUPS, O_EVENTS, O_HELP,
	       O_VERSION, O_SAMPLE, O_COOKIES, O_CTHR };
	static const struct option lo[] = {
		{ "pin", required_argument, 0, O_PIN },
		{ "generic", no_argument, 0, O_GENERIC },
		{ "port", required_argument, 0, O_PORT },
		{ "drop", required_argument, 0, O_DROP },
		{ "tarpit", required_argument, 0, O_TARPIT },
		{ "allow", required_argument, 0, O_ALLOW },
		{ "pass", required_argument, 0, O_PASS },
		{ "src-pps", required_argument, 0, O_SPPS },
		{ "src-burst", required_argument, 0, O_SBURST },
		{ "global-pps", required_argument, 0, O_GPPS },
		{ "global-burst", required_argument, 0, O_GBURST },
		{ "groups", required_argument, 0, O_GROUPS },
		{ "events", no_argument, 0, O_EVENTS },
		{ "event-sample", required_argument, 0, O_SAMPLE },
		{ "syn-cookies", required_argument, 0, O_COOKIES },
		{ "cookie-threshold", required_argument, 0, O_CTHR },
		{ "help", no_argument, 0, O_HELP },
		{ "version", no_argument, 0, O_VERSION },
		{ 0, 0, 0, 0 },
	};
	struct moat_xdp_opts o;
	struct moat_xdp *x = NULL;
	static struct moat_update u[MAX_GROUPS * 2 + MAX_RULES * 4 + MAX_RULES + 1];
	int c, events = 0, rc = 1, err, nports = 0;
	const char *cmd;

	log_init("xdp_loader", 0);
	moat_xdp_opts_default(&o);
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case O_PIN: o.pin_dir = optarg; break;
		case O_GENERIC: o.generic = true; break;
		case O_PORT:
			if (nports == MOAT_PORTS_MAX) {
				log_err("too many ports");
				return 2;
			}
			o.ports[nports++] = (uint16_t)atoi(optarg);
			o.n_ports = (unsigned)nports;
			break;
		case O_DROP: case O_TARPIT: case O_ALLOW: case O_PASS:
			if (add_rule(optarg, c == O_DROP ? MOAT_ACT_DROP :
					     c == O_TARPIT ? MOAT_ACT_TARPIT :
					     c == O_ALLOW ? MOAT_ACT_ALLOW : MOAT_ACT_PASS)) {
				log_err("bad rule '%s'", optarg);
				return 2;
			}
			break;
		case O_SPPS: o.tarpit_src_pps = (uint32_t)atoi(optarg); break;
		case O_SBURST: o.tarpit_src_burst = (uint32_t)atoi(optarg); break;
		case O_GPPS: o.tarpit_global_pps = (uint32_t)atoi(optarg); break;
		case O_GBURST: o.tarpit_global_burst = (uint32_t)atoi(optarg); break;
		case O_GROUPS: o.groups_max = (uint32_t)atoi(optarg); break;
		case O_EVENTS: events = 1; break;
		case O_SAMPLE: o.event_sample = (uint32_t)atoi(optarg); break;
		case O_COOKIES:
			o.syn_cookies = !strcmp(optarg, "on") ? MOAT_SYN_COOKIES_ON :
					!strcmp(optarg, "auto") ? MOAT_SYN_COOKIES_AUTO :
					!strcmp(optarg, "off") ? MOAT_SYN_COOKIES_OFF : 99;
			break;
		case O_CTHR: o.cookie_threshold = (uint32_t)atoi(optarg); break;
		case O_HELP: usage(stdout); return 0;
		case O_VERSION: printf("xdp_loader %s\n", MOAT_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	if (!strcmp(cmd, "stats"))
		return cmd_stats(o.pin_dir);
	if (!strcmp(cmd, "detach")) {
		rc = 0;
		for (; optind < argc; optind++) {
			err = moat_xdp_detach_pinned(o.pin_dir, argv[optind]);
			if (err) {
				log_err("detach %s: %s", argv[optind], strerror(-err));
				rc = 1;
			}
		}
		return rc;
	}
	if ((strcmp(cmd, "run") && strcmp(cmd, "once")) || optind >= argc) {
		usage(stderr);
		return 2;
	}
	err = moat_xdp_open(&o, &x);
	if (err)
		return 1;
	/* publish before attaching a new link, so no SYN sees an empty table */
	err = moat_xdp_publish(x, u, compile(u, sizeof(u) / sizeof(u[0])));
	if (err)
		goto out;
	for (int i = optind; i < argc; i++) {
		err = moat_xdp_attach(x, argv[i]);
		if (err)
			goto out;
	}
	printf("ready adopted=%u syn_cookies=%s\n", moat_xdp_adopted(x),
	       moat_xdp_syn_cookies_name(moat_xdp_syn_cookies(x)));
	fflush(stdout);
	rc = 0;
	if (!strcmp(cmd, "once"))
		goto out;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	while (!stop) {
		if (events)
			moat_xdp_poll_events(x, 200, on_event, NULL);
		else
			moat_xdp_poll_events(x, 200, NULL, NULL);
	}
out:
	moat_xdp_close(x);
	return rc;
}
