/* fuzz_notify.c - NOTIFY handling (libknot parse, TSIG check, reply
 * building) on arbitrary bytes from an allowed primary: no crash, a reply
 * only when promised and never larger than the buffer. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xfr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct moat_xfr_zone *zs[2];
	static struct sockaddr_in prim = { .sin_family = AF_INET, .sin_port = 0x3500,
					   .sin_addr.s_addr = 0x0100007f };
	uint8_t rep[1024];
	size_t rl = 0, idx;

	if (!zs[0]) {
		struct moat_xfr_cfg c = { .zone = "bl.test", .nprimary = 1 };
		char err[100];
		memcpy(&c.primary[0], &prim, sizeof(prim));
		zs[0] = moat_xfr_zone_new(&c, err, sizeof(err));
		c.zone = "keyed.test";
		c.tsig = "hmac-sha256:k:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";
		zs[1] = moat_xfr_zone_new(&c, err, sizeof(err));
		if (!zs[0] || !zs[1])
			abort();
	}
	/* the raw bytes, then a valid NOTIFY mutated by (offset, value) pairs */
	static const uint8_t tmpl[] = { 0x42, 0x42, 0x24, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
					2, 'b', 'l', 4, 't', 'e', 's', 't', 0, 0, 6, 0, 1 };
	uint8_t m[sizeof(tmpl) + 64];
	size_t ml = sizeof(tmpl);
	memcpy(m, tmpl, sizeof(tmpl));
	for (size_t i = 0; i + 1 < size && i < 16; i += 2) {
		if (data[i] == 0xff && ml < sizeof(m))
			m[ml++] = data[i + 1]; /* append */
		else
			m[data[i] % ml] = data[i + 1];
	}
	for (int pass = 0; pass < 2; pass++) {
		const uint8_t *d = pass ? m : data;
		size_t len = pass ? ml : size;
		rl = 0;
		enum moat_notify_res r = moat_notify_handle(zs, 2, d, len, (struct sockaddr *)&prim,
							    rep, sizeof(rep), &rl, &idx);
		if (r == MOAT_NOTIFY_DROP ? rl != 0 : (rl < 12 || rl > sizeof(rep)))
			abort();
		if (r == MOAT_NOTIFY_ACCEPT && idx > 1)
			abort();
	}
	return 0;
}
