/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * persist.h - the records of moat-controld's own state files (persist.c),
 * as the files hold them (host byte order: they never leave the machine).
 * Also read by tests/fuzz/fuzz_persist.c, which damages them field by field.
 */
#ifndef MOAT_PERSIST_H
#define MOAT_PERSIST_H

#include <stdint.h>

#include "listing.h"

/* One operator or moat-smtpd entry (STATE_DIR/entries.state after a
 * {magic, n} header; the journal's records after their ej_head). */
struct pe_record {
	struct moat_prefix pfx;
	uint32_t action;
	uint16_t source;
	uint16_t pad;
	int64_t added, expires;
	char reason[128];
};

/* The head of one entries journal record (a batch): op add or del, n
 * pe_records after it; sum is FNV-1a of the head (with sum 0) and them. */
struct ej_head {
	uint32_t magic;
	uint32_t op;
	uint64_t n;
	uint64_t sum;
};

/* One listed live-lookup answer (STATE_DIR/live-ZONE.state: one file per
 * live zone, since source ids are per run). */
struct pl_record {
	struct moat_prefix pfx;
	uint32_t code;
	int64_t expires;          /* absolute, seconds since the epoch */
};

#endif /* MOAT_PERSIST_H */
