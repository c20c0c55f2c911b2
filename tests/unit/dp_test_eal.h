/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dp_test_eal.h - a real EAL for the unit tests of moat-dpdk's table and
 * channel: one lcore, no hugepages, no PCI, no shared files, no telemetry
 * socket; the (empty) runtime directory is removed at the end, so a run
 * leaves nothing behind.
 */
#ifndef MOAT_DP_TEST_EAL_H
#define MOAT_DP_TEST_EAL_H

#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include <rte_eal.h>

/* dp_test_eal_up - rte_eal_init for program name with mem MiB; 0 or -1 */
static inline int dp_test_eal_up(const char *name, const char *mem)
{
	char prefix[64];
	char *argv[] = {
		(char *)name, "-l", "0", "--no-huge", "-m", (char *)mem, "--no-pci",
		"--no-shconf", "--file-prefix", prefix,
		"--no-telemetry", "--log-level", "lib.eal:error", NULL,
	};

	snprintf(prefix, sizeof(prefix), "moat-unit-%s", name);
	if (rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])) - 1, argv) < 0) {
		fprintf(stderr, "# rte_eal_init failed\n");
		return -1;
	}
	return 0;
}

/* dp_test_eal_down - release the EAL and its runtime directory */
static inline void dp_test_eal_down(void)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", rte_eal_get_runtime_dir());
	rte_eal_cleanup();
	rmdir(dir);
}

#endif /* MOAT_DP_TEST_EAL_H */
