/* fuzz_rbldnsd.c - the rbldnsd data file parser on arbitrary bytes, for
 * each dataset type: no crash, every listing well-formed (plen within the
 * family, host bits zero), counts consistent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codes.h"
#include "rbldnsd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* tokens - bytes below 0x80 pick a token so random input forms lines the
 * parser gets deep into; other bytes pass through raw */
static const char *const tokens[32] = {
	"1", "2", "25", "255", "256", ".", ".", "/", "/24", "-", ":", ":127.0.0.3:", "!",
	"\n", " ", "2001:db8::", "::", "f", "#", "$TTL 60", "\r\n", "0", "10.", "192.0.2",
	":4:txt", "-7", "/33", "/129", "::ffff:7f00:2", "\t", "$SOA x", "text$",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[8192];
	size_t n = 0;

	for (size_t i = 0; i < size && n + 16 < sizeof(buf); i++) {
		if (data[i] & 0x80) {
			buf[n++] = (char)data[i];
		} else {
			const char *t = tokens[data[i] & 31];
			memcpy(buf + n, t, strlen(t));
			n += strlen(t);
		}
	}
	for (int t = MOAT_RBL_IP4SET; t <= MOAT_RBL_IP6TRIE; t++) {
		struct moat_lvec lv = { 0 };
		struct moat_rbl_stats st;
		struct moat_codes codes;
		moat_codes_default(&codes);
		if (moat_rbl_parse(t, (const char *)data, size, 1, 0, NULL, &lv, &st))
			abort();
		moat_lvec_free(&lv);
		if (moat_rbl_parse(t, buf, n, 1, 0, &codes, &lv, &st))
			abort();
		if (st.errors > st.lines || lv.n < st.excludes)
			abort();
		for (size_t i = 0; i < lv.n; i++) {
			const struct moat_prefix *p = &lv.v[i].pfx;
			unsigned max = p->family == MOAT_AF_INET ? 32 : 128;
			if ((p->family != MOAT_AF_INET && p->family != MOAT_AF_INET6) || p->plen > max)
				abort();
			for (unsigned b = p->plen; b < max; b++)
				if (p->addr[b / 8] & (0x80 >> (b % 8)))
					abort();
		}
		moat_lvec_free(&lv);
	}
	return 0;
}
