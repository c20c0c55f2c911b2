/*
 * test_progs.c - the build's BPF pipeline end to end: each skeleton opens
 * and loads into the running kernel, and BPF_PROG_TEST_RUN returns the
 * verdict the program is written to give.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "moat_bare_drop.skel.h"
#include "moat_xdp_pass.skel.h"

static unsigned char frame[64] = {
	0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00, /* eth, IPv4 */
};

static int run_prog(int fd, __u32 *retval)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = frame,
		.data_size_in = sizeof(frame),
		.repeat = 1);
	int err = bpf_prog_test_run_opts(fd, &opts);

	*retval = opts.retval;
	return err;
}

static void test_bare_drop(void **state)
{
	struct moat_bare_drop *skel = moat_bare_drop__open_and_load();
	__u32 ret = 0;

	(void)state;
	assert_non_null(skel);
	assert_int_equal(run_prog(bpf_program__fd(skel->progs.moat_bare_drop), &ret), 0);
	assert_int_equal(ret, XDP_DROP);
	moat_bare_drop__destroy(skel);
}

static void test_xdp_pass(void **state)
{
	struct moat_xdp_pass *skel = moat_xdp_pass__open_and_load();
	__u32 ret = 0;

	(void)state;
	assert_non_null(skel);
	assert_int_equal(run_prog(bpf_program__fd(skel->progs.moat_xdp_pass), &ret), 0);
	assert_int_equal(ret, XDP_PASS);
	moat_xdp_pass__destroy(skel);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bare_drop),
		cmocka_unit_test(test_xdp_pass),
	};
	return cmocka_run_group_tests_name("bpf_progs", tests, NULL, NULL);
}
