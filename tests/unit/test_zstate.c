/* test_zstate.c - a zone's state on disk as base + journal (sources/zstate.c):
 * IXFR deltas appended and replayed without touching the base; a torn
 * tail, a bad checksum, a serial gap and a journal of another base each
 * stop the replay at the last good record (and are cut off so later
 * appends continue the chain); the compaction rule; random delta
 * sequences replayed equal the same deltas applied in memory. */
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
#include <unistd.h>

#include "lvec.h"
#include "zstate.h"

static char dir[64], base[128], journal[128];
static const char *zname = "bl.example";

/* L - the /32 listing 10.0.0.x with code c */
static struct moat_listing L(uint8_t x, uint32_t c)
{
	struct moat_listing l = { .pfx = { .family = MOAT_AF_INET, .plen = 32,
					   .addr = { 10, 0, 0, x } },
				  .code = c, .source = 7 };
	return l;
}

/* fmt - "x:code" of each listing, joined by ' ' */
static const char *fmt(const struct moat_listing *l, size_t n)
{
	static char buf[4096];
	size_t o = 0;

	buf[0] = 0;
	for (size_t i = 0; i < n && o < sizeof(buf) - 16; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%u:%u", i ? " " : "",
				      l[i].pfx.addr[3], l[i].code);
	return buf;
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/moat-zstate-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(base, sizeof(base), "%s/zone-%s.state", dir, zname);
	snprintf(journal, sizeof(journal), "%s/zone-%s.journal", dir, zname);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(base);
	unlink(journal);
	rmdir(dir);
	return 0;
}

static struct zstate_meta meta(uint32_t serial)
{
	return (struct zstate_meta){ .serial = serial, .state = 1, .last_success = 1000 + serial,
				     .expires_at = 9000 + serial, .soa_refresh = 60,
				     .soa_retry = 30, .soa_expire = 600 };
}

static off_t fsize(const char *p)
{
	struct stat st;

	return stat(p, &st) < 0 ? -1 : st.st_size;
}

/* three_steps - base {1,2,3} at serial 1; 1->2 adds 4 deletes 1; 2->3
 * adds 5 deletes 2.  Returns the journal size after the first append. */
static off_t three_steps(struct zstate_info *info)
{
	struct moat_listing b[] = { L(1, 2), L(2, 2), L(3, 2) };
	struct moat_listing a1 = L(4, 2), d1 = L(1, 2), a2 = L(5, 3), d2 = L(2, 2);
	struct zstate_meta m;

	m = meta(1);
	assert_int_equal(zstate_save_base(base, journal, zname, &m, b, 3, info), 0);
	m = meta(2);
	assert_int_equal(zstate_append(journal, 1, &m, &a1, 1, &d1, 1, info), 0);
	off_t one = fsize(journal);

	m = meta(3);
	assert_int_equal(zstate_append(journal, 2, &m, &a2, 1, &d2, 1, info), 0);
	return one;
}

static void load_expect(const char *want, uint32_t serial, uint64_t applied, const char *stop)
{
	struct zstate_meta m;
	struct zstate_info info;
	struct zstate_replay rep;
	struct moat_listing *l = NULL;
	size_t n = 0;

	assert_int_equal(zstate_load(base, journal, zname, 9, &m, &l, &n, &info, &rep), 0);
	if (strcmp(fmt(l, n), want) || m.serial != serial || rep.applied != applied ||
	    (stop == NULL) != (rep.stop == NULL) || (stop && !strstr(rep.stop, stop)))
		fail_msg("got '%s' serial %u applied %llu stop '%s', want '%s' serial %u applied "
			 "%llu stop '%s'", fmt(l, n), m.serial, (unsigned long long)rep.applied,
			 rep.stop ? rep.stop : "-", want, serial, (unsigned long long)applied,
			 stop ? stop : "-");
	for (size_t i = 0; i < n; i++)
		assert_int_equal(l[i].source, 9);
	assert_int_equal(info.serial, serial);
	if (fsize(journal) >= 0)
		assert_int_equal(info.journal_bytes, (uint64_t)fsize(journal));
	free(l);
}

/* deltas go to the journal, the base stays as written; load replays them */
static void test_append_replay(void **state)
{
	struct zstate_info info = { 0 };
	struct stat b0, b1;
	struct zstate_meta m;
	struct moat_listing *l;
	size_t n;

	(void)state;
	three_steps(&info);
	assert_int_equal(stat(base, &b0), 0);
	struct moat_listing a = L(6, 2);

	m = meta(4);
	assert_int_equal(zstate_append(journal, 3, &m, &a, 1, NULL, 0, &info), 0);
	assert_int_equal(stat(base, &b1), 0);
	assert_int_equal(b0.st_ino, b1.st_ino);
	assert_int_equal(b0.st_size, b1.st_size);
	assert_int_equal(info.journal_records, 3);
	assert_int_equal(info.journal_bytes, (uint64_t)fsize(journal));
	/* a delta that does not continue the files' chain is refused */
	assert_int_equal(zstate_append(journal, 7, &m, &a, 1, NULL, 0, &info), -ESTALE);
	load_expect("3:2 4:2 5:3 6:2", 4, 3, NULL);
	/* meta comes from the last record */
	struct zstate_info i2;

	assert_int_equal(zstate_load(base, journal, zname, 9, &m, &l, &n, &i2, NULL), 0);
	assert_int_equal(m.last_success, 1004);
	assert_int_equal(m.expires_at, 9004);
	assert_int_equal(i2.journal_records, 3);
	free(l);
	/* a new base empties the journal */
	m = meta(5);
	assert_int_equal(zstate_save_base(base, journal, zname, &m, &a, 1, &info), 0);
	assert_int_equal(fsize(journal), 0);
	load_expect("6:2", 5, 0, NULL);
}

/* a crash mid-append: the torn record is dropped and cut off; appending
 * after the load continues the chain */
static void test_torn_tail(void **state)
{
	struct zstate_info info = { 0 };
	struct zstate_meta m;
	struct moat_listing *l;
	size_t n;

	(void)state;
	off_t one = three_steps(&info);
	off_t all = fsize(journal);

	for (off_t cut = one + 1; cut < all; cut += (all - one) / 5 + 1) {
		three_steps(&info);
		assert_int_equal(truncate(journal, cut), 0);
		load_expect("2:2 3:2 4:2", 2, 1, "torn");
		assert_int_equal(fsize(journal), one);
	}
	/* continue from the loaded state */
	assert_int_equal(zstate_load(base, journal, zname, 7, &m, &l, &n, &info, NULL), 0);
	free(l);
	struct moat_listing a = L(9, 2);

	m = meta(3);
	assert_int_equal(zstate_append(journal, 2, &m, &a, 1, NULL, 0, &info), 0);
	load_expect("2:2 3:2 4:2 9:2", 3, 2, NULL);
}

/* a flipped bit in a record: replay stops before it */
static void test_bad_checksum(void **state)
{
	struct zstate_info info = { 0 };

	(void)state;
	off_t one = three_steps(&info);
	int fd = open(journal, O_RDWR);
	unsigned char c;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, one + 80), 1);
	c ^= 0x10;
	assert_int_equal(pwrite(fd, &c, 1, one + 80), 1);
	close(fd);
	load_expect("2:2 3:2 4:2", 2, 1, "checksum");
	assert_int_equal(fsize(journal), one);
	/* the first record damaged: the base alone */
	three_steps(&info);
	fd = open(journal, O_RDWR);
	assert_int_equal(pwrite(fd, "X", 1, 20), 1);
	close(fd);
	load_expect("1:2 2:2 3:2", 1, 0, "checksum");
	assert_int_equal(fsize(journal), 0);
}

/* a record whose serial_from is not where the chain is: replay stops */
static void test_serial_gap(void **state)
{
	struct zstate_info info = { 0 };
	struct zstate_meta m = meta(9);
	struct moat_listing a = L(8, 2);

	(void)state;
	three_steps(&info);
	off_t good = fsize(journal);

	info.serial = 7; /* as if an IXFR 3->7 had been lost */
	assert_int_equal(zstate_append(journal, 7, &m, &a, 1, NULL, 0, &info), 0);
	load_expect("3:2 4:2 5:3", 3, 2, "serial chain");
	assert_int_equal(fsize(journal), good);
}

/* a journal left from an older base (crash between the base's rename and
 * the journal's truncation) is ignored, the new base serves */
static void test_other_base(void **state)
{
	struct zstate_info info = { 0 };
	struct zstate_meta m = meta(2);
	struct moat_listing b[] = { L(1, 2), L(2, 2), L(3, 2) };
	char old[160], cmd[400];

	(void)state;
	three_steps(&info);
	snprintf(old, sizeof(old), "%s.old", journal);
	snprintf(cmd, sizeof(cmd), "cp %s %s", journal, old);
	assert_int_equal(system(cmd), 0);
	/* the same serial as the first record continues from: only the base
	 * checksum tells them apart */
	m = meta(1);
	b[0].code = 5;
	assert_int_equal(zstate_save_base(base, journal, zname, &m, b, 3, &info), 0);
	assert_int_equal(rename(old, journal), 0);
	load_expect("1:5 2:2 3:2", 1, 0, "another base");
	assert_int_equal(fsize(journal), 0);
}

/* a damaged base is refused whatever the journal holds; no base: ENOENT */
static void test_bad_base(void **state)
{
	struct zstate_info info = { 0 };
	struct zstate_meta m;
	struct moat_listing *l = NULL;
	size_t n;

	(void)state;
	three_steps(&info);
	int fd = open(base, O_RDWR);

	assert_int_equal(pwrite(fd, "Z", 1, 300), 1);
	close(fd);
	assert_int_equal(zstate_load(base, journal, zname, 9, &m, &l, &n, &info, NULL), -EBADMSG);
	unlink(base);
	assert_int_equal(zstate_load(base, journal, zname, 9, &m, &l, &n, &info, NULL), -ENOENT);
	/* another zone's base */
	three_steps(&info);
	assert_int_equal(zstate_load(base, journal, "other.example", 9, &m, &l, &n, &info, NULL),
			 -EBADMSG);
}

/* the same listing changed several times: the last change wins; within a
 * record a listing both added and deleted ends deleted */
static void test_net_effect(void **state)
{
	struct zstate_info info = { 0 };
	struct zstate_meta m = meta(1);
	struct moat_listing b[] = { L(1, 2), L(2, 2) };
	struct moat_listing x = L(3, 2), one = L(1, 2), two = L(2, 2);

	(void)state;
	assert_int_equal(zstate_save_base(base, journal, zname, &m, b, 2, &info), 0);
	m = meta(2); /* add 3, delete 1 */
	assert_int_equal(zstate_append(journal, 1, &m, &x, 1, &one, 1, &info), 0);
	m = meta(3); /* delete 3, add 1 back */
	assert_int_equal(zstate_append(journal, 2, &m, &one, 1, &x, 1, &info), 0);
	m = meta(4); /* 2 added (already there) and deleted in one record */
	assert_int_equal(zstate_append(journal, 3, &m, &two, 1, &two, 1, &info), 0);
	m = meta(5); /* 3 again */
	assert_int_equal(zstate_append(journal, 4, &m, &x, 1, NULL, 0, &info), 0);
	load_expect("1:2 3:2", 5, 4, NULL);
}

/* the compaction rule of zstate.h */
static void test_compact_rule(void **state)
{
	static const struct {
		const char *name;
		struct zstate_info info;
		int want;
	} cases[] = {
		{ "empty journal", { .valid = 1, .base_bytes = 1000 }, 0 },
		{ "small zone, journal under the floor",
		  { .valid = 1, .base_bytes = 1000, .journal_bytes = ZSTATE_JOURNAL_MIN,
		    .journal_records = 10 }, 0 },
		{ "small zone, journal over the floor",
		  { .valid = 1, .base_bytes = 1000, .journal_bytes = ZSTATE_JOURNAL_MIN + 1,
		    .journal_records = 10 }, 1 },
		{ "big zone, journal under a quarter",
		  { .valid = 1, .base_bytes = 240u << 20, .journal_bytes = 50u << 20,
		    .journal_records = 100 }, 0 },
		{ "big zone, journal over a quarter",
		  { .valid = 1, .base_bytes = 240u << 20, .journal_bytes = 61u << 20,
		    .journal_records = 100 }, 1 },
		{ "too many records",
		  { .valid = 1, .base_bytes = 240u << 20, .journal_bytes = 1u << 20,
		    .journal_records = ZSTATE_JOURNAL_MAX_RECORDS }, 1 },
		{ "files not known good", { .valid = 0, .base_bytes = 1000 }, 1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (zstate_compact_due(&cases[i].info) != cases[i].want)
			fail_msg("%s: got %d want %d", cases[i].name, !cases[i].want, cases[i].want);
}

/* random delta chains: the replayed state equals the deltas applied in
 * memory one after the other */
static void test_random_chains(void **state)
{
	(void)state;
	srand(12345);
	for (int round = 0; round < 20; round++) {
		int in[256] = { 0 }; /* in[x] = code + 1 when 10.0.0.x is listed */
		struct moat_listing cur[256], add[64], del[64];
		size_t nc = 0;
		struct zstate_info info = { 0 };
		struct zstate_meta m = meta(100);
		uint32_t serial = 100;

		for (int x = 0; x < 256; x++)
			if (rand() % 3 == 0) {
				in[x] = 1 + rand() % 3;
				cur[nc++] = L((uint8_t)x, (uint32_t)in[x]);
			}
		assert_int_equal(zstate_save_base(base, journal, zname, &m, cur, nc, &info), 0);
		int steps = 1 + rand() % 12;

		for (int s = 0; s < steps; s++) {
			size_t na = 0, nd = 0;

			for (int k = 0; k < 20; k++) {
				int x = rand() % 256;
				int seen = 0;

				for (size_t q = 0; q < na; q++)
					seen |= add[q].pfx.addr[3] == x;
				for (size_t q = 0; q < nd; q++)
					seen |= del[q].pfx.addr[3] == x;
				if (seen)
					continue;
				if (in[x]) {
					del[nd++] = L((uint8_t)x, (uint32_t)in[x]);
					if (rand() % 2) /* a changed code: delete + add */
						add[na++] = L((uint8_t)x, (uint32_t)(in[x] % 3 + 1));
				} else {
					add[na++] = L((uint8_t)x, (uint32_t)(1 + rand() % 3));
				}
			}
			for (size_t q = 0; q < nd; q++)
				in[del[q].pfx.addr[3]] = 0;
			for (size_t q = 0; q < na; q++)
				in[add[q].pfx.addr[3]] = (int)add[q].code;
			m = meta(serial + 1);
			assert_int_equal(zstate_append(journal, serial, &m, add, na, del, nd, &info), 0);
			serial++;
		}
		nc = 0;
		for (int x = 0; x < 256; x++)
			if (in[x])
				cur[nc++] = L((uint8_t)x, (uint32_t)in[x]);
		char want[4096];

		snprintf(want, sizeof(want), "%s", fmt(cur, nc));
		load_expect(want, serial, (uint64_t)steps, NULL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_checksum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_serial_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_base, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_base, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net_effect, setup, teardown),
		cmocka_unit_test(test_compact_rule),
		cmocka_unit_test_setup_teardown(test_random_chains, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
