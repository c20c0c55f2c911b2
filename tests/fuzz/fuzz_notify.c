/* fuzz_notify.c - NOTIFY handling (libknot parse, TSIG check, reply
 * building) on arbitrary bytes from an allowed primary: no crash, a reply
 * only when promised and never larger than the buffer.  Besides the raw
 * bytes, an unsigned and a TSIG-signed NOTIFY are mutated, so the TSIG
 * error replies (BADSIG, BADKEY, BADTIME: RFC 8945 §5.3.2) are built too. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libknot/libknot.h>

#include "xfr.h"

#define KEY "hmac-sha256:k:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="

/* signed_notify - a NOTIFY for keyed.test signed with KEY */
static size_t signed_notify(uint8_t *buf, size_t cap)
{
	knot_tsig_key_t key;
	uint8_t mac[64];
	size_t ml = sizeof(mac), n;
	knot_pkt_t *q = knot_pkt_new(NULL, (uint16_t)cap, NULL);
	knot_dname_t *name = knot_dname_from_str_alloc("keyed.test.");

	if (!q || !name || knot_tsig_key_init_str(&key, KEY) != KNOT_EOK)
		abort();
	knot_wire_set_id(q->wire, 0x4242);
	knot_wire_set_opcode(q->wire, KNOT_OPCODE_NOTIFY);
	knot_pkt_reserve(q, (uint16_t)knot_tsig_wire_size(&key));
	if (knot_pkt_put_question(q, name, KNOT_CLASS_IN, KNOT_RRTYPE_SOA) != KNOT_EOK ||
	    knot_tsig_sign(q->wire, &q->size, q->max_size, NULL, 0, mac, &ml, &key, 0, 0) != KNOT_EOK)
		abort();
	n = q->size;
	memcpy(buf, q->wire, n);
	knot_dname_free(name, NULL);
	knot_tsig_key_deinit(&key);
	knot_pkt_free(q);
	return n;
}

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
		c.tsig = KEY;
		zs[1] = moat_xfr_zone_new(&c, err, sizeof(err));
		if (!zs[0] || !zs[1])
			abort();
	}
	/* the raw bytes, then a valid NOTIFY mutated by (offset, value) pairs */
	static const uint8_t tmpl[] = { 0x42, 0x42, 0x24, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
					2, 'b', 'l', 4, 't', 'e', 's', 't', 0, 0, 6, 0, 1 };
	static uint8_t stmpl[512];
	static size_t sl;
	uint8_t m[sizeof(tmpl) + 64], sm[sizeof(stmpl) + 64];
	size_t ml = sizeof(tmpl), sml;

	if (!sl)
		sl = signed_notify(stmpl, sizeof(stmpl));
	sml = sl;
	memcpy(m, tmpl, sizeof(tmpl));
	memcpy(sm, stmpl, sl);
	for (size_t i = 0; i + 1 < size && i < 16; i += 2) {
		if (data[i] == 0xff && ml < sizeof(m))
			m[ml++] = data[i + 1]; /* append */
		else
			m[data[i] % ml] = data[i + 1];
		/* the signed one: mostly its TSIG RR (the end) */
		if (data[i] == 0xff && sml < sizeof(sm))
			sm[sml++] = data[i + 1];
		else
			sm[sml - 1 - data[i] % sml] = data[i + 1];
	}
	for (int pass = 0; pass < 3; pass++) {
		const uint8_t *d = pass == 2 ? sm : pass ? m : data;
		size_t len = pass == 2 ? sml : pass ? ml : size;
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
