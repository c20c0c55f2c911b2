/* SPDX-License-Identifier: BSD-2-Clause */
/* fuzz_scan_sa.c - fuzz_scan_rules.c on a SpamAssassin .cf file (scan_sa.c) */
#define FUZZ_SA 1
#include "fuzz_scan_rules.c"
