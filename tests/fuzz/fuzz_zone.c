/* fuzz_zone.c - owner decoding and zone record conversion: arbitrary bytes
 * as a presentation name for moat_owner_decode, then as a script of record
 * adds/deletes (wire names from a small label alphabet plus raw labels) in
 * IXFR-style batches.  Invariants: no crash or sanitizer report, and the
 * listings kept up to date by commit deltas (batches committed or rolled
 * back) always equal a full recompute. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libknot/libknot.h>

#include "codes.h"
#include "owner.h"
#include "sanity.h"
#include "zone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *labs[] = { "1", "2", "0", "*", "a", "255", "x", "01" };
	char name[256];
	struct moat_owner o;
	size_t n = size < sizeof(name) - 1 ? size : sizeof(name) - 1;

	memcpy(name, data, n);
	name[n] = 0;
	moat_owner_decode(name, &o);
	moat_owner_label(data, size > 63 ? 63 : size);

	struct moat_zone *z = moat_zone_new("bl.test.", 1);
	struct moat_lvec cur = { 0 };
	if (!z)
		abort();
	moat_zone_keep_txt(z, size && data[0] & 0x80);
	/* half the inputs with error codes (the script's codes 127.0.0.N hit
	 * 127.0.0.1), where listings and the raw DNS answer differ */
	struct moat_codes codes;
	bool filtered = size && data[0] & 0x40;
	moat_codes_default(&codes);
	if (filtered)
		moat_zone_error_codes(z, &codes);
	size_t i = 0;
	while (i + 3 <= size) {
		int rollback = (data[i] & 3) == 0;
		size_t nops = 1 + (data[i + 1] & 7);
		i += 2;
		if (moat_zone_begin(z))
			abort();
		for (size_t k = 0; k < nops && i + 3 <= size; k++) {
			uint8_t op = data[i], nl = data[i + 1] & 7, code = data[i + 2];
			i += 3;
			uint8_t wire[KNOT_DNAME_MAXLEN], *w = wire;
			for (size_t l = 0; l < nl && i < size; l++, i++) {
				const char *lab = labs[data[i] & 7];
				if ((data[i] & 0xf8) == 0xf8 && i + 1 < size) {
					/* a raw one-byte label */
					*w++ = 1;
					*w++ = data[++i];
					continue;
				}
				*w++ = (uint8_t)strlen(lab);
				memcpy(w, lab, strlen(lab));
				w += strlen(lab);
			}
			memcpy(w, "\2bl\4test", 8);
			w[8] = 0;
			uint8_t rd[4] = { 127, 0, 0, code };
			moat_zone_rr(z, op & 1 ? MOAT_ZONE_DEL : MOAT_ZONE_ADD, wire,
				     op & 2 ? KNOT_RRTYPE_TXT : KNOT_RRTYPE_A, op, rd,
				     op & 4 ? 3 : 4);
		}
		if (rollback) {
			moat_zone_rollback(z);
			continue;
		}
		struct moat_lvec add = { 0 }, del = { 0 };
		if (moat_zone_commit(z, &add, &del))
			abort();
		if (moat_lvec_apply(&cur, &add, &del))
			abort(); /* deletes a listing nobody had */
		moat_lvec_free(&add);
		moat_lvec_free(&del);
	}
	/* the deltas add up to the zone's listings */
	struct moat_lvec all = { 0 };
	moat_zone_listings(z, &all);
	/* the tree lookup agrees with the listings (addresses over the labels
	 * the script uses) */
	for (unsigned v = 0; v < 81; v++) {
		static const uint8_t oct[3] = { 0, 1, 2 };
		struct moat_prefix a = { .family = MOAT_AF_INET, .plen = 32,
					 .addr = { oct[v % 3], oct[v / 3 % 3], oct[v / 9 % 3],
						   oct[v / 27 % 3] } };
		struct moat_zone_answer ans;
		if (moat_zone_lookup(z, &a, &ans))
			abort();
		bool listed = false;
		for (size_t c = 0; c < ans.ncodes; c++)
			listed |= !filtered || !moat_code_is_error(&codes, ans.codes[c]);
		if (moat_sanity_verdict(all.v, all.n, &a, NULL) != listed)
			abort();
	}
	if (!moat_lvec_equal(&all, &cur))
		abort();
	moat_lvec_free(&all);
	moat_lvec_free(&cur);
	moat_zone_free(z);
	return 0;
}
