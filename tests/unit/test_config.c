/* test_config.c - moat-controld configuration: every bad line is refused
 * with FILE:LINE and a reason, good files give the documented defaults. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "moat_abi.h"

#define ZONE_OK "[zone bl.example]\nprimary = 192.0.2.1\n"

struct bad_case {
	const char *name;
	const char *text;
	const char *want; /* substring of the error, starting with "t.conf:LINE:" */
};

static const struct bad_case bad_cases[] = {
	{ "unknown section", "[daemon]\nuser = moat\n[frobnicate]\nx = 1\n",
	  "t.conf:4: unknown section [frobnicate]" },
	{ "unknown key", "[daemon]\nsocket_mod = 0660\n", "t.conf:2: unknown key 'socket_mod' in [daemon]" },
	{ "bad mode", "[daemon]\nsocket_mode = 0998\n", "t.conf:2: socket_mode: '0998' is not an octal" },
	{ "relative state_dir", "[daemon]\nstate_dir = var/lib\n", "t.conf:2: state_dir: 'var/lib' is not an absolute path" },
	{ "bad log level", "\n\n[daemon]\nlog_level = loud\n", "t.conf:4: log_level: 'loud'" },
	{ "bad bool", "[daemon]\nsyslog = maybe\n", "t.conf:2: syslog: 'maybe' is not yes or no" },
	{ "dup scalar", "[daemon]\nuser = a\nuser = b\n", "t.conf:3: user: set twice in [daemon]" },
	{ "syntax", "[daemon]\nthis is not a key\n", "t.conf:2: syntax error" },
	{ "fleet id alone", "[fleet]\nid = a\n", "[fleet]: id needs zone and primary" },
	{ "fleet zone without id", "[fleet]\nzone = a.fleet.test\nprimary = 192.0.2.1\n",
	  "[fleet]: zone and primary need id" },
	{ "fleet bad id", "[fleet]\nid = a:b\n", "t.conf:2: id: 'a:b' is not 1..32" },
	{ "fleet bad tsig", "[fleet]\ntsig = x\n", "t.conf:2: tsig: want ALGORITHM" },
	{ "fleet zone on a file", "[zone f]\ntype = rbldnsd\nfile = /x\nfleet = yes\n",
	  "[zone f]: fleet is only for type axfr" },
	{ "bad xdp mode", "[xdp]\nmode = turbo\n", "t.conf:2: mode: 'turbo' is not native, skb or auto" },
	{ "iface twice", "[xdp]\ninterfaces = eth0 eth0\n", "t.conf:2: interfaces: 'eth0' listed twice" },
	{ "bad backend", "[fastpath]\nbackend = netmap\n", "t.conf:2: backend: 'netmap' is not xdp or dpdk" },
	{ "dpdk with xdp interfaces", "[fastpath]\nbackend = dpdk\n[xdp]\ninterfaces = eth0\n",
	  "[xdp] interfaces with [fastpath] backend = dpdk" },
	{ "relative dpdk socket", "[dpdk]\nsocket = dpdk.sock\n", "t.conf:2: socket: 'dpdk.sock' is not an absolute path" },
	{ "iface too long", "[xdp]\ninterfaces = abcdefghijklmnopq\n", "t.conf:2: interfaces: 'abcdefghijklmnopq' is longer than IFNAMSIZ" },
	{ "metrics addr", "[metrics]\nlisten = localhost:80\n", "t.conf:2: listen: 'localhost:80' is not IP[:PORT]" },
	{ "metrics port", "[metrics]\nlisten = 127.0.0.1:70000\n", "t.conf:2: listen:" },
	{ "threshold range", "[policy]\ndrop_threshold = 5000\n", "t.conf:2: drop_threshold: 5000 is outside 0..1000" },
	{ "threshold order", "[policy]\ntarpit_threshold = 3\ndrop_threshold = 2\n", "tarpit_threshold (3) must be below drop_threshold (2)" },
	{ "thresholds off", "[policy]\ndrop_threshold = 0\n", "nothing would ever be filtered" },
	{ "zone without a name", "[zone]\nprimary = 192.0.2.1\n", "t.conf:2: [zone]: a zone section needs a name ([zone NAME])" },
	{ "bad zone name", "[zone bad..name]\nprimary = 192.0.2.1\n", "t.conf:2: [zone bad..name]: 'bad..name' is not a valid DNS name" },
	{ "zone twice", ZONE_OK "[zone BL.example]\nprimary = 192.0.2.2\n", "t.conf:4: [zone BL.example]: zone defined twice (first at line 1)" },
	{ "axfr no primary", "[daemon]\nuser = x\n\n[zone bl.example]\nweight = 2\n", "t.conf:4: [zone bl.example]: type axfr needs at least one primary" },
	{ "bad primary", "[zone bl.example]\nprimary = ns.example\n", "t.conf:2: primary: 'ns.example' is not IP[@PORT]" },
	{ "bad primary port", "[zone bl.example]\nprimary = 192.0.2.1@0\n", "t.conf:2: primary: '192.0.2.1@0'" },
	{ "bad type", "[zone bl.example]\ntype = ldap\n", "t.conf:2: type: 'ldap' is not axfr, rbldnsd or live" },
	{ "rbldnsd no file", "[zone bl.example]\ntype = rbldnsd\n", "t.conf:1: [zone bl.example]: type rbldnsd needs file" },
	{ "file on axfr", ZONE_OK "file = /tmp/x\n", "t.conf:1: [zone bl.example]: file is only for type rbldnsd" },
	{ "bad tsig alg", ZONE_OK "tsig = hmac-foo:key:c2VjcmV0\n", "t.conf:3: tsig: want ALGORITHM:KEYNAME:BASE64SECRET" },
	{ "bad tsig secret", ZONE_OK "tsig = hmac-sha256:key:not base64!\n", "t.conf:3: tsig:" },
	{ "code outside 127", ZONE_OK "codes = 10.0.0.2\n", "t.conf:3: codes: '10.0.0.2' is outside 127.0.0.0/8" },
	{ "code range backwards", ZONE_OK "codes = 127.0.0.9-127.0.0.2\n", "t.conf:3: codes: '127.0.0.9-127.0.0.2' is not CODE" },
	{ "code bad weight", ZONE_OK "codes = 127.0.0.2=x\n", "t.conf:3: codes: '127.0.0.2=x'" },
	{ "code host bits", ZONE_OK "codes = 127.0.0.1/24\n", "t.conf:3: codes: '127.0.0.1/24'" },
	{ "error code weight", ZONE_OK "error_codes = 127.0.0.1=3\n", "t.conf:3: error_codes: '127.0.0.1=3'" },
	{ "on_expire", ZONE_OK "on_expire = sometimes\n", "t.conf:3: on_expire: 'sometimes' is not keep or drop" },
	{ "bad duration", ZONE_OK "stale_max = 7days\n", "t.conf:3: stale_max: '7days' is not a duration" },
	{ "duration range", ZONE_OK "stale_max = 400d\n", "t.conf:3: stale_max: 34560000 s is outside" },
	{ "refresh order", ZONE_OK "refresh_min = 2h\nrefresh_max = 1h\n", "t.conf:1: [zone bl.example]: refresh_min (7200) > refresh_max (3600)" },
	{ "timeout zero", ZONE_OK "timeout = 0\n", "t.conf:3: timeout: 0 s is outside 1..3600 s" },
	{ "prefix v4 range", ZONE_OK "max_prefix_v4 = 33\n", "t.conf:3: max_prefix_v4: 33 is outside 0..32" },
	{ "empty section", "[daemon]\n[xdp]\ninterfaces = eth0\n", "t.conf:1: section has no keys" },
	{ "empty last section", ZONE_OK "[zone other.example]\n", "t.conf:3: section has no keys" },
	{ "weight not int", ZONE_OK "weight = 1.5\n", "t.conf:3: weight: '1.5' is not an integer" },
	{ "notify addr", "[daemon]\nnotify_listen = 198.18.2.1@53 nowhere\n", "t.conf:2: notify_listen: 'nowhere'" },
	{ "first error wins", "[daemon]\nuser = a\nbogus = 1\nlog_level = x\n", "t.conf:3: unknown key 'bogus'" },
	{ "bad resolver", "[daemon]\nresolver = 192.0.2.53 dns.example\n", "t.conf:2: resolver: 'dns.example' is not IP[@PORT]" },
	{ "bad port", "[xdp]\nports = 25 0\n", "t.conf:2: ports: '0' is not a port number" },
	{ "event_sample not 2^k", "[xdp]\nevent_sample = 3\n", "t.conf:2: event_sample: '3' is not 0 or a power of two" },
	{ "groups_max small", "[xdp]\ngroups_max = 10\n", "t.conf:2: groups_max: 10 is outside 1024..16777215" },
	{ "tarpit burst 0", "[xdp]\ntarpit_source_burst = 0\n", "t.conf:2: tarpit_source_burst: 0 is outside 1..10000000" },
	{ "tarpit rate big", "[xdp]\ntarpit_global_rate = 20000000\n", "t.conf:2: tarpit_global_rate: 20000000 is outside 0..10000000" },
	{ "tarpit rate text", "[xdp]\ntarpit_source_rate = fast\n", "t.conf:2: tarpit_source_rate: 'fast'" },
	{ "syn_cookies value", "[xdp]\nsyn_cookies = yes\n", "t.conf:2: syn_cookies: 'yes' is not off, on or auto" },
	{ "syn_cookie_threshold 0", "[xdp]\nsyn_cookie_threshold = 0\n", "t.conf:2: syn_cookie_threshold: 0 is outside 1..100000000" },
	{ "syn_cookie_mss small", "[xdp]\nsyn_cookie_mss = 500\n", "t.conf:2: syn_cookie_mss: 500 is outside 536..65495" },
	{ "syn_cookies on dpdk", "[fastpath]\nbackend = dpdk\n[xdp]\nsyn_cookies = on\n", "[xdp] syn_cookies with [fastpath] backend = dpdk" },
	{ "tarpit burst negative", "[xdp]\ntarpit_global_burst = -1\n", "t.conf:2: tarpit_global_burst: -1 is outside 1..10000000" },
	{ "bad rbldnsd format", "[zone l.rbl]\ntype = rbldnsd\nfile = /x\nformat = csv\n", "t.conf:4: format: 'csv' is not ip4set, ip4trie or ip6trie" },
	{ "primary on rbldnsd", "[zone bl.example]\ntype = rbldnsd\nfile = /x\nprimary = 192.0.2.1\n", "t.conf:1: [zone bl.example]: primary/tsig are only for type axfr" },
};

/* test_bad_line - one row of bad_cases (each row is its own TAP case) */
static void test_bad_line(void **state)
{
	{
		const struct bad_case *bc = *state;
		struct moat_config *c = calloc(1, sizeof(*c));
		char err[CFG_ERRLEN] = "";
		int r = cfg_load_string(c, "t.conf", bc->text, err);

		if (r == 0)
			fail_msg("case '%s': got success, want error '%s'", bc->name, bc->want);
		if (!strstr(err, bc->want))
			fail_msg("case '%s': got '%s', want it to contain '%s'", bc->name, err, bc->want);
		free(c);
	}
}

static void test_long_line(void **state)
{
	char text[600];
	struct moat_config *c = calloc(1, sizeof(*c));
	char err[CFG_ERRLEN];

	(void)state;
	snprintf(text, sizeof(text), "[daemon]\nuser = %0400d\n", 7);
	assert_int_equal(cfg_load_string(c, "t.conf", text, err), -1);
	if (!strstr(err, "t.conf:2: line longer than"))
		fail_msg("got '%s'", err);
	free(c);
}

static void test_defaults(void **state)
{
	struct moat_config *c = calloc(1, sizeof(*c));
	char err[CFG_ERRLEN];

	(void)state;
	assert_int_equal(cfg_load_string(c, "t.conf", "; nothing but a comment\n", err), 0);
	assert_string_equal(c->socket_path, "/run/moat/control.sock");
	assert_int_equal(c->socket_mode, 0660);
	assert_string_equal(c->state_dir, "/var/lib/moat");
	assert_string_equal(c->pin_dir, ""); /* no interfaces: nothing pinned */
	assert_string_equal(c->metrics.text, "127.0.0.1:9464");
	assert_int_equal(c->drop_threshold, 1);
	assert_int_equal(c->tarpit_threshold, 0);
	assert_int_equal(c->nzones, 0);
	assert_string_equal(c->fp_backend, "xdp");
	assert_string_equal(c->dpdk_socket, "/run/moat/dpdk.sock");
	assert_int_equal(c->tarpit_src_pps, 10);
	assert_int_equal(c->tarpit_src_burst, 20);
	assert_int_equal(c->tarpit_global_pps, 10000);
	assert_int_equal(c->tarpit_global_burst, 20000);
	assert_int_equal(c->syn_cookies, MOAT_SYN_COOKIES_OFF);
	assert_int_equal(c->cookie_threshold, 1000);
	assert_int_equal(c->cookie_mss, 1460);
	assert_int_equal(cfg_load_string(c, "t.conf", "[xdp]\nsyn_cookies = auto\n"
					 "syn_cookie_threshold = 5000\nsyn_cookie_mss = 8960\n", err), 0);
	assert_int_equal(c->syn_cookies, MOAT_SYN_COOKIES_AUTO);
	assert_int_equal(c->cookie_threshold, 5000);
	assert_int_equal(c->cookie_mss, 8960);
	assert_int_equal(cfg_load_string(c, "t.conf", "[xdp]\nsyn_cookies = on\n", err), 0);
	assert_int_equal(c->syn_cookies, MOAT_SYN_COOKIES_ON);
	assert_int_equal(cfg_load_string(c, "t.conf", "[xdp]\ntarpit_source_rate = 0\n"
					 "tarpit_source_burst = 1\ntarpit_global_rate = 10000000\n"
					 "tarpit_global_burst = 10000000\n", err), 0);
	assert_int_equal(c->tarpit_src_pps, 0);
	assert_int_equal(c->tarpit_src_burst, 1);
	assert_int_equal(c->tarpit_global_pps, 10000000);
	assert_int_equal(c->tarpit_global_burst, 10000000);
	assert_int_equal(cfg_load_string(c, "t.conf", "[fastpath]\nbackend = dpdk\n"
					 "[dpdk]\nsocket = /run/x/dpdk.sock\n", err), 0);
	assert_string_equal(c->fp_backend, "dpdk");
	assert_string_equal(c->dpdk_socket, "/run/x/dpdk.sock");
	free(c);
}

/* pin_dir names a directory only where something is pinned: a default
 * /sys/fs/bpf/moat without interfaces named another instance's pins */
static void test_pin_dir(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "[daemon]\nuser = moat\n", "" },
		{ "[xdp]\npin_dir = /sys/fs/bpf/x\n", "" },
		{ "[xdp]\ninterfaces = eth0\n", "/sys/fs/bpf/moat" },
		{ "[xdp]\ninterfaces = eth0\npin_dir = /sys/fs/bpf/x\n", "/sys/fs/bpf/x" },
	};
	struct moat_config *c = calloc(1, sizeof(*c));
	char err[CFG_ERRLEN];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cfg_load_string(c, "t.conf", cases[i].text, err) < 0)
			fail_msg("case %zu: refused: %s", i, err);
		if (strcmp(c->pin_dir, cases[i].want))
			fail_msg("case %zu: pin_dir '%s', want '%s'", i, c->pin_dir, cases[i].want);
	}
	free(c);
}

static void test_full(void **state)
{
	static const char text[] =
		"[daemon]\n"
		"socket = /run/x.sock\n"
		"socket_mode = 0600\n"
		"notify_listen = 198.18.2.1@5353, [2001:db8::1]:53\n"
		"[xdp]\n"
		"interfaces = eth0, eth1\n"
		"interfaces = eth2\n"
		"mode = skb\n"
		"[metrics]\n"
		"listen = off\n"
		"[policy]\n"
		"tarpit_threshold = 1\n"
		"drop_threshold = 3\n"
		"[zone bl.example.]\n"
		"primary = 192.0.2.1 192.0.2.2@5300\n"
		"tsig = hmac-sha256:xfr-key:c2VjcmV0c2VjcmV0\n"
		"codes = 127.0.0.2=3 127.0.0.3-127.0.0.9=1 127.0.1.0/24=-2\n"
		"on_expire = drop\n"
		"stale_max = 2d\n"
		"[zone local.example]\n"
		"type = rbldnsd\n"
		"file = /etc/moat/local.rbl\n"
		"error_codes = 127.0.0.0/30\n";
	struct moat_config *c = calloc(1, sizeof(*c));
	char err[CFG_ERRLEN] = "";
	int w;

	(void)state;
	if (cfg_load_string(c, "t.conf", text, err) != 0)
		fail_msg("got error '%s'", err);
	assert_string_equal(c->socket_path, "/run/x.sock");
	assert_int_equal(c->socket_mode, 0600);
	assert_int_equal(c->nnotify, 2);
	assert_int_equal(c->nifaces, 3);
	assert_string_equal(c->ifaces[2], "eth2");
	assert_string_equal(c->xdp_mode, "skb");
	assert_int_equal(c->metrics.len, 0);
	assert_int_equal(c->nzones, 2);
	const struct cfg_zone *z = cfg_zone_find(c, "BL.example.");

	assert_non_null(z);
	assert_string_equal(z->name, "bl.example");
	assert_int_equal(z->line, 14);
	assert_int_equal(z->nprimary, 2);
	assert_int_equal(z->on_expire, CFG_EXPIRE_DROP);
	assert_int_equal(z->stale_max, 2 * 86400);
	assert_int_equal(cfg_code_weight(z, 0x7f000002, &w), 0);
	assert_int_equal(w, 3);
	assert_int_equal(cfg_code_weight(z, 0x7f000005, &w), 0);
	assert_int_equal(w, 1);
	assert_int_equal(cfg_code_weight(z, 0x7f0001fe, &w), 0);
	assert_int_equal(w, -2);
	assert_int_equal(cfg_code_weight(z, 0x7f00000a, &w), -1);   /* not among codes */
	assert_int_equal(cfg_code_weight(z, 0x7fffff01, &w), -1);   /* error code */
	z = cfg_zone_find(c, "local.example");
	assert_non_null(z);
	assert_int_equal(z->type, CFG_SRC_RBLDNSD);
	assert_int_equal(cfg_code_weight(z, 0x7f000002, &w), -1);   /* in 127.0.0.0/30 */
	assert_int_equal(cfg_code_weight(z, 0x7f000004, &w), 0);
	assert_int_equal(cfg_code_weight(z, 0x0a000004, &w), -1);   /* outside 127/8 */
	assert_int_equal(cfg_code_weight(z, 0x7ffffffe, &w), 0);    /* default replaced */
	free(c);
}

struct dur_case {
	const char *in;
	int ok;
	uint32_t want;
};

static void test_durations(void **state)
{
	static const struct dur_case cases[] = {
		{ "90", 1, 90 }, { "90s", 1, 90 }, { "15m", 1, 900 }, { "2h", 1, 7200 },
		{ "7d", 1, 604800 }, { "1w", 1, 604800 }, { "", 0, 0 }, { "-1", 0, 0 },
		{ "5x", 0, 0 }, { "5mm", 0, 0 }, { "99999999999", 0, 0 }, { "50000d", 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t v = 0;
		int r = cfg_parse_duration(cases[i].in, &v);

		if ((r == 0) != cases[i].ok || (r == 0 && v != cases[i].want))
			fail_msg("duration '%s': got r=%d v=%u, want ok=%d v=%u", cases[i].in, r, v,
				 cases[i].ok, cases[i].want);
	}
}

/* test_keys_documented - every key the parser takes is in the reference,
 * in its section's table, with a default column */
static void test_keys_documented(void **state)
{
	const char *src = getenv("MOAT_SOURCE_ROOT");
	char path[4096], *doc = NULL;
	size_t cap = 0;
	const char *sec, *k;

	(void)state;
	if (!src)
		src = "..";
	snprintf(path, sizeof(path), "%s/docs/configuration.md", src);
	FILE *f = fopen(path, "r");

	if (!f)
		fail_msg("cannot read %s (set MOAT_SOURCE_ROOT)", path);
	ssize_t n = getdelim(&doc, &cap, '\0', f);

	fclose(f);
	assert_true(n > 0);
	for (size_t i = 0; (k = cfg_key(i, &sec)); i++) {
		char head[64], row[96];

		snprintf(head, sizeof(head), "## [%s", sec);
		snprintf(row, sizeof(row), "| `%s` | ", k);
		const char *h = strstr(doc, head);
		const char *next = h ? strstr(h + 4, "\n## ") : NULL;
		const char *r = h ? strstr(h, row) : NULL;

		if (!h || !r || (next && r > next))
			fail_msg("key %s in [%s] is not in docs/configuration.md's [%s] table", k, sec, sec);
	}
	free(doc);
}

static void test_file_missing(void **state)
{
	struct moat_config *c = calloc(1, sizeof(*c));
	char err[CFG_ERRLEN];

	(void)state;
	assert_int_equal(cfg_load(c, "/nonexistent/moat.conf", err), -1);
	assert_non_null(strstr(err, "/nonexistent/moat.conf: No such file"));
	free(c);
}

#define NBAD (sizeof(bad_cases) / sizeof(bad_cases[0]))

int main(void)
{
	struct CMUnitTest tests[NBAD + 6] = {
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_pin_dir),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_file_missing),
		cmocka_unit_test(test_keys_documented),
	};
	for (size_t i = 0; i < NBAD; i++)
		tests[6 + i] = (struct CMUnitTest){ bad_cases[i].name, test_bad_line, NULL, NULL,
						     (void *)&bad_cases[i] };
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
