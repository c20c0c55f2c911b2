/* test_rbldnsd.c - rbldnsd data file syntax (every form, bad lines with
 * their numbers) and reloading files replaced by rename or written in
 * place. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codes.h"
#include "owner.h"
#include "rbldnsd.h"

struct pcase {
	const char *name;
	enum moat_rbl_type type;
	const char *text;
	const char *want;   /* "prefix code|! ttl" joined by ';' */
	const char *errs;   /* "line:msg-prefix" joined by ';' */
};

static const struct pcase pcases[] = {
	{ "plain address, default A", MOAT_RBL_IP4SET, "192.0.2.10\n", "192.0.2.10/32 2 0", "" },
	{ "incomplete addresses", MOAT_RBL_IP4SET, "10.200\n10\n192.0.2\n",
	  "10.0.0.0/8 2 0;10.200.0.0/16 2 0;192.0.2.0/24 2 0", "" },
	{ "CIDR, also incomplete", MOAT_RBL_IP4SET, "198.51.100.0/24\n10.201/16\n",
	  "10.201.0.0/16 2 0;198.51.100.0/24 2 0", "" },
	{ "last-octet range", MOAT_RBL_IP4SET, "192.0.2.1-6\n",
	  "192.0.2.1/32 2 0;192.0.2.2/31 2 0;192.0.2.4/31 2 0;192.0.2.6/32 2 0", "" },
	{ "full range", MOAT_RBL_IP4SET, "10.0.0.0-10.0.1.255\n", "10.0.0.0/23 2 0", "" },
	{ "incomplete range", MOAT_RBL_IP4SET, "192.0.2-3\n", "192.0.2.0/23 2 0", "" },
	{ "values and defaults", MOAT_RBL_IP4SET,
	  "$TTL 600\n:127.0.0.4:Listed, see http://x/$\n192.0.2.1\n192.0.2.2 :3:text\n"
	  "192.0.2.3 :127.0.0.9\n192.0.2.4 just text\n192.0.2.5:127.0.0.5:attached\n"
	  "192.0.2.6 ::text keeps default\n",
	  "192.0.2.1/32 4 600;192.0.2.2/32 3 600;192.0.2.3/32 9 600;192.0.2.4/32 4 600;"
	  "192.0.2.5/32 5 600;192.0.2.6/32 4 600", "" },
	{ "exclusions", MOAT_RBL_IP4SET, "10.202/16\n!10.202.0.1\n!10.202.1.0/24\n",
	  "10.202.0.0/16 2 0;10.202.0.1/32 ! 0;10.202.1.0/24 ! 0", "" },
	{ "comments, blanks, CRLF, $ lines", MOAT_RBL_IP4SET,
	  "# comment\r\n; other comment\r\n\r\n$SOA 1800 a b 0 600 600 86400 600\r\n"
	  "$NS 86400 ns\r\n  192.0.2.7  \r\n", "192.0.2.7/32 2 0", "" },
	{ "ip4trie", MOAT_RBL_IP4TRIE, "192.0.2.0/24 :2:x\n!192.0.2.128/25\n0.0.0.0/0 :10\n",
	  "0.0.0.0/0 10 0;192.0.2.0/24 2 0;192.0.2.128/25 ! 0", "" },
	{ "ip6trie", MOAT_RBL_IP6TRIE,
	  "2001:db8::/32 :127.0.0.3:six\n!2001:db8:1::/48\n2001:db8:2::1\n::ffff:7f00:2\n",
	  "::ffff:127.0.0.2/128 2 0;2001:db8::/32 3 0;2001:db8:1::/48 ! 0;2001:db8:2::1/128 2 0", "" },
	{ "bad ip4 lines", MOAT_RBL_IP4SET,
	  "192.0.2.1\n300.1.1.1\n1.2.3.4/33\n1.2.3.4/24\n1.2.3.9-2\nfoo\n1.2.3.4x\n"
	  "1.2.3.4 :300:bad\n$TTL abc\n:bad:x\n192.0.2.2\n",
	  "192.0.2.1/32 2 0;192.0.2.2/32 2 0",
	  "2:not an IPv4;3:bad prefix;4:host bits;5:range end before;6:not an IPv4;"
	  "7:junk;8:bad A;9:bad $TTL;10:bad default" },
	{ "bad ip6 lines", MOAT_RBL_IP6TRIE, "2001:db8::1/64\n2001:db8::/129\nzz::1\n2001:db8::/32\n",
	  "2001:db8::/32 2 0", "1:host bits;2:bad prefix;3:not an IPv6" },
};

static void test_parse_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(pcases) / sizeof(pcases[0]); i++) {
		const struct pcase *c = &pcases[i];
		struct moat_lvec lv = { 0 };
		struct moat_rbl_stats st;
		char got[2048] = "", gerr[1024] = "";
		size_t n = 0, m = 0;

		assert_int_equal(moat_rbl_parse(c->type, c->text, strlen(c->text), 5, 0, NULL, &lv, &st),
				 0);
		moat_lvec_sort(&lv);
		for (size_t j = 0; j < lv.n; j++) {
			char p[80];
			const struct moat_listing *l = &lv.v[j];
			assert_int_equal(l->source, 5);
			moat_prefix_str(&l->pfx, p, sizeof(p));
			if (l->exclude)
				n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%s ! %u", n ? ";" : "", p, l->ttl);
			else
				n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%s %u %u", n ? ";" : "", p,
						      l->code - 0x7f000000u, l->ttl);
		}
		for (size_t j = 0; j < st.errors && j < MOAT_RBL_MAX_ERRS; j++)
			m += (size_t)snprintf(gerr + m, sizeof(gerr) - m, "%s%u:%s", m ? ";" : "",
					      st.err[j].line, st.err[j].msg);
		if (strcmp(got, c->want))
			fail_msg("case %s: listings\n got  %s\n want %s", c->name, got, c->want);
		/* each wanted error is "line:prefix of the message" */
		char want[512];
		snprintf(want, sizeof(want), "%s", c->errs);
		size_t nwant = 0;
		for (char *tok = strtok(want, ";"); tok; tok = strtok(NULL, ";"), nwant++) {
			unsigned line = (unsigned)atoi(tok);
			const char *msg = strchr(tok, ':') + 1;
			if (nwant >= st.errors ||
			    (nwant < MOAT_RBL_MAX_ERRS && (st.err[nwant].line != line ||
			     strncmp(st.err[nwant].msg, msg, strlen(msg)))))
				fail_msg("case %s: errors\n got  %s\n want %s", c->name, gerr, c->errs);
		}
		if (nwant != st.errors)
			fail_msg("case %s: %zu errors (%s), want %zu", c->name, st.errors, gerr, nwant);
		moat_lvec_free(&lv);
	}
}

static void test_error_codes(void **state)
{
	static const char text[] = "10.0.0.0/8\n10.1.2.3 :127.255.255.254:err\n10.1.2.4 :2\n"
				   "2001:db8::1 :127.0.0.1\n";
	struct moat_codes c;
	struct moat_lvec lv = { 0 };
	struct moat_rbl_stats st;

	(void)state;
	moat_codes_default(&c);
	assert_int_equal(moat_rbl_parse(MOAT_RBL_IP4SET, text, strlen(text) - 23, 1, 0, &c, &lv, &st), 0);
	moat_lvec_sort(&lv);
	assert_int_equal(lv.n, 3);
	assert_int_equal(lv.v[1].exclude, 1); /* 10.1.2.3: an error answer */
	assert_int_equal(lv.v[2].exclude, 0);
	assert_int_equal(st.excludes, 1);
	moat_lvec_free(&lv);
	assert_int_equal(moat_rbl_parse(MOAT_RBL_IP6TRIE, text + strlen(text) - 23, 23, 1, 0, &c,
					&lv, &st), 0);
	assert_int_equal(lv.n, 1);
	assert_int_equal(lv.v[0].exclude, 1);
	moat_lvec_free(&lv);
}

static void test_type_names(void **state)
{
	(void)state;
	assert_int_equal(moat_rbl_type_parse("ip4set"), MOAT_RBL_IP4SET);
	assert_int_equal(moat_rbl_type_parse("ip4trie"), MOAT_RBL_IP4TRIE);
	assert_int_equal(moat_rbl_type_parse("ip6trie"), MOAT_RBL_IP6TRIE);
	assert_int_equal(moat_rbl_type_parse("dnset"), 0);
}

/* write_file - create path with text and an mtime `age` seconds ago */
static void write_file(const char *path, const char *text, int age)
{
	FILE *f = fopen(path, "w");
	struct timespec ts[2];

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= age;
	ts[1] = ts[0];
	utimensat(AT_FDCWD, path, ts, 0);
}

static void test_reload(void **state)
{
	char dir[] = "/tmp/moat-rbl-XXXXXX", path[64], tmp[64];
	struct moat_rbl_stats st;
	struct moat_lvec lv = { 0 };

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/data", dir);
	snprintf(tmp, sizeof(tmp), "%s/.data.tmp", dir);
	struct moat_rbl_cfg cfg = { .type = MOAT_RBL_IP4SET, .path = path, .source = 2,
				    .ttl = 60, .settle_ms = 1000 };
	struct moat_rbl_file *f = moat_rbl_file_new(&cfg);
	assert_non_null(f);
	/* missing file: an error, nothing changes */
	assert_false(moat_rbl_file_changed(f));
	assert_int_equal(moat_rbl_file_load(f, &lv, &st), -ENOENT);

	write_file(path, "192.0.2.1\n", 10);
	assert_true(moat_rbl_file_changed(f));
	assert_int_equal(moat_rbl_file_load(f, &lv, &st), 0);
	assert_int_equal(lv.n, 1);
	assert_int_equal(lv.v[0].ttl, 60);
	assert_false(moat_rbl_file_changed(f));

	/* rsync: a new file renamed over the old one */
	write_file(tmp, "192.0.2.1\n192.0.2.2\n", 10);
	assert_int_equal(rename(tmp, path), 0);
	assert_true(moat_rbl_file_changed(f));
	lv.n = 0;
	assert_int_equal(moat_rbl_file_load(f, &lv, &st), 0);
	assert_int_equal(lv.n, 2);

	/* written in place just now: not read until it settles */
	write_file(path, "192.0.2.3\n", 0);
	assert_true(moat_rbl_file_changed(f));
	lv.n = 0;
	assert_int_equal(moat_rbl_file_load(f, &lv, &st), -EAGAIN);
	assert_int_equal(lv.n, 0);
	assert_true(moat_rbl_file_changed(f));
	write_file(path, "192.0.2.3\n", 5);
	assert_int_equal(moat_rbl_file_load(f, &lv, &st), 0);
	assert_int_equal(lv.n, 1);

	moat_rbl_file_free(f);
	moat_lvec_free(&lv);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_error_codes),
		cmocka_unit_test(test_reload),
	};
	return cmocka_run_group_tests_name("rbldnsd", tests, NULL, NULL);
}
