/* test_abi.c - the 2-bit group and tbl24 entry helpers of bpf/moat_abi.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "moat_abi.h"

static void test_group_roundtrip(void **state)
{
	struct moat_group g;

	(void)state;
	memset(&g, 0, sizeof(g));
	for (unsigned h = 0; h < 256; h++)
		moat_group_set(&g, (__u8)h, h % MOAT_ACT__MAX);
	for (unsigned h = 0; h < 256; h++)
		assert_int_equal(moat_group_get(&g, (__u8)h), h % MOAT_ACT__MAX);
	/* overwrite one address; neighbours keep theirs */
	moat_group_set(&g, 77, MOAT_ACT_ALLOW);
	assert_int_equal(moat_group_get(&g, 76), 76 % 4);
	assert_int_equal(moat_group_get(&g, 77), MOAT_ACT_ALLOW);
	assert_int_equal(moat_group_get(&g, 78), 78 % 4);
}

static void test_tbl24_entry(void **state)
{
	(void)state;
	assert_false(moat_tbl24_is_group(0));
	assert_int_equal(moat_tbl24_action(0), MOAT_ACT_PASS);
	assert_int_equal(moat_tbl24_action(MOAT_ACT_DROP), MOAT_ACT_DROP);
	__u32 e = moat_tbl24_make_group(MOAT_GROUP_MAX);
	assert_true(moat_tbl24_is_group(e));
	assert_int_equal(moat_tbl24_group(e), MOAT_GROUP_MAX);
	assert_int_equal(moat_tbl24_index(0xc0000201u), 0xc00002u);
	assert_int_equal(sizeof(struct moat_group), 64);
	assert_int_equal(sizeof(struct moat_v6_key), 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_group_roundtrip),
		cmocka_unit_test(test_tbl24_entry),
	};
	return cmocka_run_group_tests_name("abi", tests, NULL, NULL);
}
