/*
 * fuzz_parse.c - the fast path's parser (bpf/moat_parse.h) on arbitrary
 * frames: it must never read outside the frame (ASan), and what it reports
 * must lie inside the frame; the fast case (moat_parse_fast4) must decide
 * every frame as the general walk does.  A frame it accepts as TCP is also turned into
 * a tarpit reply, which must fit the frame and parse back as TCP.
 * Inputs whose first byte is below 0x80 are structured: a frame of the
 * shared case table (tests/xdp_frames.h), cut to a length and XORed with
 * the rest of the input at chosen offsets, so the deep paths get reached.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moat_parse.h"
#include "xdp_frames.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LLVMFuzzerTestOneInput - one frame */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const __u64 key[2] = { 1, 2 };
	struct moat_pkt p, q;
	uint8_t *f;
	int r, n;

	uint8_t tmp[TF_MAX];

	if (size >= 3 && data[0] < 0x80) {
		size_t len = tf_build(&tcases[data[0] % N_TCASES].f, tmp);
		size_t cut = len - (data[1] % 16 == 0 ? data[2] % len : 0);

		for (size_t i = 3; i + 1 < size; i += 2)
			tmp[data[i] % cut] ^= data[i + 1];
		data = tmp;
		size = cut;
	}
	/* an exact-size heap copy so any overread is caught */
	f = malloc(size ? size : 1);
	if (!f)
		return 0;
	memcpy(f, data, size);
	memset(&p, 0, sizeof(p));
	r = moat_parse(f, f + size, &p);
	if (r < MOAT_PARSE_TCP || r > MOAT_PARSE_ERR_TCP)
		abort();
	memset(&q, 0, sizeof(q));
	if (moat_parse_general(f, f + size, &q) != r ||
	    (r == MOAT_PARSE_TCP &&
	     (q.l3_off != p.l3_off || q.l4_off != p.l4_off || q.nvlan != p.nvlan ||
	      q.family != p.family || q.sport != p.sport || q.dport != p.dport ||
	      q.seq != p.seq || q.tcp_flags != p.tcp_flags ||
	      (p.family == 4 && (q.saddr4 != p.saddr4 || q.daddr4 != p.daddr4)))))
		abort();
	if (r == MOAT_PARSE_TCP) {
		if (p.l3_off < MOAT_ETH_HLEN || p.l4_off < p.l3_off + 20 ||
		    (size_t)p.l4_off + 20 > size || p.nvlan > MOAT_VLAN_MAX)
			abort();
		n = moat_tarpit_build(f, f + size, &p, moat_tarpit_isn(key, &p));
		if (n < 0 || (size_t)n > size)
			abort();
		if (moat_parse(f, f + n, &q) != MOAT_PARSE_TCP ||
		    q.sport != p.dport || q.dport != p.sport || q.seq == 0xdeadbeef - 1)
			abort();
	}
	free(f);
	return 0;
}
