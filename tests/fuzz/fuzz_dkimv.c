/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_dkimv.c - moat's DKIM verifier's parsers and canonicalisers
 * (dataplane/smtp/dkimv.c) on arbitrary bytes.  The first byte picks the
 * target; the rest is used raw or, to reach deeper, as indexes into a token
 * dictionary (tag names, '=', ';', FWS, algorithm words, base64):
 *   0 dkv_tags: every tag lies inside the input, names non-empty
 *   1 dkv_sig_parse (+ dkv_header_hash): a parsed signature signs From,
 *     its b= lies inside the field
 *   2 dkv_key_parse: ok means a key; dkv_key_b64_bits
 *   3 body canonicalisation: the same lines fed at once, line by line and
 *     two by two give the same hashes (both canonicalisations, with l=)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkimv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const tok[] = {
	"v", "a", "b", "bh", "c", "d", "h", "i", "l", "q", "s", "t", "x", "k", "p", "z", "=", ";", " ", "\t",
	"\r\n ", ":", "1", "DKIM1", "rsa", "ed25519", "rsa-sha256", "ed25519-sha256", "rsa-sha1", "relaxed",
	"simple", "/", "example.com", "@", "from", "to", "dns/txt", "AAAA", "==", "=",
	"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "MCowBQYDK2VwAyEA", "gVhJB4z6M1aE8Z/sdcsS9VDl2rVKkZ4ip0KZsXciDSc=",
	"MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQ", "1234567890", ".", "_", "\x7f", "\xc3\xa9", "sub.", "y", "email", "*",
	"sha256", "-",
};

/* build - raw bytes, or tokens picked by the bytes; NUL-terminated */
static size_t build(const uint8_t *d, size_t n, int raw, char *out, size_t max)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 64 < max; i++) {
		if (raw) {
			out[o++] = (char)(d[i] ? d[i] : ' ');
			continue;
		}
		const char *t = tok[d[i] % (sizeof(tok) / sizeof(tok[0]))];
		size_t l = strlen(t);
		memcpy(out + o, t, l);
		o += l;
	}
	out[o] = '\0';
	return o;
}

/* body_hashes - lines fed `step` at a time (0: all at once) */
static void body_hashes(const char *b, size_t n, int step, unsigned char out[4][32], int64_t tot[4])
{
	struct dkv_body body;
	size_t o = 0;

	dkv_body_init(&body);
	if (dkv_body_add(&body, DKV_SIMPLE, -1) != 0 || dkv_body_add(&body, DKV_RELAXED, -1) != 1 ||
	    dkv_body_add(&body, DKV_SIMPLE, 7) != 2 || dkv_body_add(&body, DKV_RELAXED, 7) != 3)
		abort();
	while (o < n) {
		size_t e = o;
		for (int k = 0; e < n && (!step || k < step); k++) {
			const char *nl = memchr(b + e, '\n', n - e);
			e = nl ? (size_t)(nl - b) + 1 : n;
		}
		dkv_body_update(&body, b + o, e - o);
		o = e;
	}
	dkv_body_final(&body);
	for (int i = 0; i < 4; i++) {
		memcpy(out[i], body.bh[i].out, 32);
		tot[i] = body.bh[i].total;
	}
	dkv_body_free(&body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[64 * 1024];
	struct dkv_tag t[DKV_MAX_TAGS];

	if (size < 2)
		return 0;
	int mode = data[0] % 4, raw = data[1] & 1;
	data += 2, size -= 2;
	switch (mode) {
	case 0: {
		size_t n = build(data, size, raw, buf, sizeof(buf));
		int k = dkv_tags(buf, n, t, DKV_MAX_TAGS);
		for (int i = 0; i < k; i++)
			if (!t[i].nlen || t[i].name < buf || t[i].val + t[i].vlen > buf + n ||
			    t[i].raw_off + t[i].raw_len > n)
				abort();
		break;
	}
	case 1: {
		struct dkv_sig s;
		unsigned char hh[32];
		memcpy(buf, "DKIM-Signature:", 15);
		size_t n = 15 + build(data, size, raw, buf + 15, sizeof(buf) - 15);
		if (dkv_sig_parse(buf, n, &s) == 0) {
			int from = 0;
			for (int i = 0; i < s.nh; i++)
				from |= !strcmp(s.h[i], "from");
			if (!from || !s.d[0] || !s.s[0] || s.b_off + s.b_len > n || !s.blen || s.err)
				abort();
			const char *f[1] = { buf };
			size_t fl[1] = { n };
			if (dkv_header_hash(&s, buf, n, f, fl, 1, hh) != 0)
				abort();
		} else if (!s.err) {
			abort();
		}
		dkv_sig_free(&s);
		break;
	}
	case 2: {
		struct dkv_key k;
		build(data, size, raw, buf, sizeof(buf));
		(void)dkv_key_b64_bits(buf);
		int r = dkv_key_parse(buf, &k);
		if ((r == 0) != (k.ok && k.pkey != NULL) || (!k.ok && !k.err))
			abort();
		dkv_key_clear(&k);
		break;
	}
	default: {
		/* lines: the input split at 0x0a, each given a CRLF */
		size_t o = 0;
		for (size_t i = 0; i < size && o + 4 < sizeof(buf); i++) {
			if (data[i] == '\n') {
				buf[o++] = '\r';
				buf[o++] = '\n';
			} else {
				buf[o++] = raw ? (char)data[i] : " \t\rab\r"[data[i] % 6];
			}
		}
		buf[o++] = '\r';
		buf[o++] = '\n';
		unsigned char h[3][4][32];
		int64_t tot[3][4];
		for (int step = 0; step < 3; step++)
			body_hashes(buf, o, step, h[step], tot[step]);
		if (memcmp(h[0], h[1], sizeof(h[0])) || memcmp(h[0], h[2], sizeof(h[0])) ||
		    memcmp(tot[0], tot[1], sizeof(tot[0])))
			abort();
		break;
	}
	}
	return 0;
}
