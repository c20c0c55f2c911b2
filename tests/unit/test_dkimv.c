/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_dkimv.c - moat's DKIM verifier (dataplane/smtp/dkimv.c): the
 * canonicalisers against RFC 6376 3.4.6's example and fed in every
 * chunking, messages signed by dkimpy (dkimv_fixtures.h, made by
 * dkimv_fixtures.py) verified end to end and failing once altered, and
 * bad tag-lists, signatures and key records refused with their reason.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "dkimv.h"
#include "dkimv_fixtures.h"

/* body_hash - the body hash of body (whole lines) fed in pieces of `step`
 * lines (0: all at once), canonicalisation c, l= l */
static void body_hash(const char *body, enum dkv_canon c, int64_t l, int step, unsigned char out[32],
		      int64_t *total)
{
	struct dkv_body b;
	size_t n = strlen(body), o = 0;

	dkv_body_init(&b);
	assert_int_equal(dkv_body_add(&b, c, l), 0);
	assert_int_equal(dkv_body_add(&b, c, l), 0); /* shared */
	while (o < n) {
		size_t e = o;
		int lines = 0;
		while (e < n && (step == 0 || lines < step)) {
			const char *nl = memchr(body + e, '\n', n - e);
			e = nl ? (size_t)(nl - body) + 1 : n;
			lines++;
		}
		dkv_body_update(&b, body + o, e - o);
		o = e;
	}
	dkv_body_final(&b);
	memcpy(out, b.bh[0].out, 32);
	if (total)
		*total = b.bh[0].total;
	dkv_body_free(&b);
}

static void expect_body(const char *body, enum dkv_canon c, int64_t l, const char *want)
{
	unsigned char got[32], exp[32];
	size_t wl = strlen(want);

	SHA256((const unsigned char *)want, l >= 0 && (size_t)l < wl ? (size_t)l : wl, exp);
	for (int step = 0; step < 4; step++) {
		body_hash(body, c, l, step, got, NULL);
		if (memcmp(got, exp, 32))
			fail_msg("body %s canon %d l=%lld step %d: not the hash of the expected canonical form",
				 body, c, (long long)l, step);
	}
}

/* RFC 6376 3.4.6 and the empty-body rules */
static void test_body_canon(void **state)
{
	(void)state;
	static const char ex[] = " C \r\nD \t E\r\n\r\n\r\n";
	expect_body(ex, DKV_RELAXED, -1, " C\r\nD E\r\n");
	expect_body(ex, DKV_SIMPLE, -1, " C \r\nD \t E\r\n");
	expect_body("", DKV_SIMPLE, -1, "\r\n");
	expect_body("", DKV_RELAXED, -1, "");
	expect_body("\r\n\r\n", DKV_SIMPLE, -1, "\r\n");
	expect_body("\r\n \t\r\n", DKV_RELAXED, -1, "");
	expect_body("a\r\n\r\n \r\nb \r\n", DKV_RELAXED, -1, "a\r\n\r\n\r\nb\r\n");
	expect_body("a\r\n\r\n \r\nb \r\n", DKV_SIMPLE, -1, "a\r\n\r\n \r\nb \r\n");
	expect_body("x\ry \r\n", DKV_RELAXED, -1, "x\ry\r\n"); /* a CR alone is data */
	/* l=: the first l canonical bytes */
	expect_body(ex, DKV_RELAXED, 5, " C\r\nD E\r\n");
	expect_body(ex, DKV_SIMPLE, 0, "");
	/* a line longer than the relaxed copy buffer */
	char *big = malloc(40010), *bigc = malloc(40010);
	assert_non_null(big);
	assert_non_null(bigc);
	for (int i = 0; i < 40000; i++)
		big[i] = bigc[i] = (i % 1000 == 500) ? ' ' : 'x';
	memcpy(big + 40000, "  \r\n", 5);
	memcpy(bigc + 40000, "\r\n", 3);
	expect_body(big, DKV_RELAXED, -1, bigc);
	free(big);
	free(bigc);
	/* total counts the canonical body (l= beyond it is detected by the caller) */
	unsigned char h[32];
	int64_t total;
	body_hash(ex, DKV_RELAXED, 100, 0, h, &total);
	assert_int_equal(total, 9);
}

static void test_header_canon(void **state)
{
	char out[64];
	size_t l;

	(void)state;
	l = dkv_canon_header(DKV_RELAXED, "A: X", 4, out);
	assert_int_equal(l, 5);
	assert_memory_equal(out, "a:X\r\n", 5);
	l = dkv_canon_header(DKV_RELAXED, "B : Y\t\r\n\tZ  ", 12, out);
	assert_int_equal(l, 7);
	assert_memory_equal(out, "b:Y Z\r\n", 7);
	l = dkv_canon_header(DKV_SIMPLE, "B : Y\t\r\n\tZ  ", 12, out);
	assert_int_equal(l, 14);
	assert_memory_equal(out, "B : Y\t\r\n\tZ  \r\n", 14);
	l = dkv_canon_header(DKV_RELAXED, "Subject:", 8, out);
	assert_memory_equal(out, "subject:\r\n", l);
}

/* split - a message into its fields (no CRLF) and body */
static int split(const char *msg, const char **f, size_t *fl, int max, const char **body)
{
	const char *p = msg;
	int n = 0;

	while (strncmp(p, "\r\n", 2)) {
		const char *s = p;
		do {
			p = strstr(p, "\r\n") + 2;
		} while (*p == ' ' || *p == '\t');
		assert_true(n < max);
		f[n] = s;
		fl[n++] = (size_t)(p - s) - 2;
	}
	*body = p + 2;
	return n;
}

/* verify - the first DKIM-Signature of msg with its fixture key: "pass",
 * "body", "sig" or the parse error */
static const char *verify(const char *msg, int ed)
{
	const char *f[64], *body;
	size_t fl[64];
	int nf = split(msg, f, fl, 64, &body);
	struct dkv_sig sig;
	struct dkv_key key;
	struct dkv_body b;
	unsigned char hh[32];
	static char why[64];

	assert_int_equal(dkv_sig_parse(f[0], fl[0], &sig), 0);
	assert_int_equal(dkv_key_parse(ed ? fx_ed_rec : fx_rsa_rec, &key), 0);
	assert_int_equal(key.alg, sig.alg);
	assert_int_equal(dkv_header_hash(&sig, f[0], fl[0], f, fl, nf, hh), 0);
	dkv_body_init(&b);
	int i = dkv_body_add(&b, sig.bc, sig.l);
	assert_true(i >= 0);
	dkv_body_update(&b, body, strlen(body));
	dkv_body_final(&b);
	snprintf(why, sizeof(why), "%s", memcmp(b.bh[i].out, sig.bh, 32) ? "body" : !dkv_verify(&sig, &key, hh) ? "sig" : "pass");
	dkv_body_free(&b);
	dkv_key_clear(&key);
	dkv_sig_free(&sig);
	return why;
}

static void test_dkimpy_fixtures(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		const struct fixture *x = &fixtures[i];
		const char *r = verify(x->msg, x->ed);
		if (strcmp(r, "pass"))
			fail_msg("%s: %s, want pass", x->name, r);
		/* altered: a body byte, then a signed header byte */
		char *m = strdup(x->msg);
		assert_non_null(m);
		char *bd = strstr(m, "\r\n\r\n") + 4;
		if (*bd && strcmp(x->name, "l= and text appended")) {
			*bd = *bd == 'Q' ? 'R' : 'Q';
			r = verify(m, x->ed);
			if (strcmp(r, "body"))
				fail_msg("%s, body altered: %s, want body", x->name, r);
			*bd = x->msg[bd - m];
		}
		char *subj = strstr(m, "Hello");
		subj[0] = 'J';
		r = verify(m, x->ed);
		if (strcmp(r, "sig"))
			fail_msg("%s, Subject altered: %s, want sig", x->name, r);
		/* an unsigned header added: still passes; a third X-Dup below the
		 * others (h= oversigns x-dup): fails */
		free(m);
		const char *ins[] = { "From: ", "Date: " }, *add[] = { "X-Other: y\r\n", "X-Dup: 3!\r\n" };
		for (int k = 0; k < 2; k++) {
			size_t ml = strlen(x->msg), al = strlen(add[k]);
			size_t at = (size_t)(strstr(x->msg, ins[k]) - x->msg);
			m = malloc(ml + al + 1);
			assert_non_null(m);
			memcpy(m, x->msg, at);
			memcpy(m + at, add[k], al);
			memcpy(m + at + al, x->msg + at, ml - at + 1);
			r = verify(m, x->ed);
			if (strcmp(r, k ? "sig" : "pass"))
				fail_msg("%s, %s added: %s", x->name, add[k], r);
			free(m);
		}
	}
}

static void test_tags(void **state)
{
	struct dkv_tag t[DKV_MAX_TAGS];
	static const char *const bad[] = {
		"a", "a=b;;c=d", "=b", "1a=b", "a=b; a=c", "a b=c", "a=b\x7f", "a=\xc3\xa9", "a=b; ;",
	};

	(void)state;
	assert_int_equal(dkv_tags("", 0, t, DKV_MAX_TAGS), 0);
	assert_int_equal(dkv_tags(" a = b c ; d_1=;", 16, t, DKV_MAX_TAGS), 2);
	assert_int_equal(t[0].vlen, 3);
	assert_memory_equal(t[0].val, "b c", 3);
	assert_int_equal(t[1].nlen, 3);
	assert_int_equal(t[1].vlen, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (dkv_tags(bad[i], strlen(bad[i]), t, DKV_MAX_TAGS) >= 0)
			fail_msg("tag-list '%s' accepted", bad[i]);
	char many[400] = "";
	for (int i = 0; i < DKV_MAX_TAGS + 1; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "t%d=1;", i);
	assert_int_equal(dkv_tags(many, strlen(many), t, DKV_MAX_TAGS), -EINVAL);
}

static void test_b64(void **state)
{
	unsigned char o[16];

	(void)state;
	assert_int_equal(dkv_b64("Zm9v", 4, o, sizeof(o)), 3);
	assert_int_equal(dkv_b64("Zm8=", 4, o, sizeof(o)), 2);
	assert_int_equal(dkv_b64("Z g\r\n\t==", 8, o, sizeof(o)), 1);
	assert_int_equal(dkv_b64("Zm8", 3, o, sizeof(o)), 2); /* unpadded */
	assert_int_equal(dkv_b64("Zm9", 3, o, sizeof(o)), 2); /* leftover bits ignored */
	assert_int_equal(dkv_b64("Z", 1, o, sizeof(o)), -1);
	assert_int_equal(dkv_b64("Zg=a", 4, o, sizeof(o)), -1);
	assert_int_equal(dkv_b64("Zg===", 5, o, sizeof(o)), -1);
	assert_int_equal(dkv_b64("Zm9v!", 5, o, sizeof(o)), -1);
	assert_int_equal(dkv_b64("Zm9vZm9v", 8, o, 5), -1);
}

#define BH "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
#define GOOD "v=1; a=rsa-sha256; d=example.com; s=sel; h=from:to; bh=" BH "; b=dGVzdA=="

static void test_sig_parse(void **state)
{
	static const struct {
		const char *tags, *err;
	} t[] = {
		{ "a=rsa-sha256; d=example.com; s=sel; h=from; bh=" BH "; b=dGVzdA==", "missing v= tag" },
		{ "v=1; d=example.com; s=sel; h=from; bh=" BH "; b=dGVzdA==", "missing a= tag" },
		{ "v=1; a=rsa-sha256; d=example.com; h=from; bh=%%%; b=???", "missing s= tag" },
		{ GOOD "; x", "bad tag-list" },
		{ "v=2; a=rsa-sha256; d=example.com; s=sel; h=from; bh=" BH "; b=dGVzdA==", "unsupported version" },
		{ "v=1; a=rsa-sha1; d=example.com; s=sel; h=from; bh=" BH "; b=dGVzdA==", "unsupported signing algorithm" },
		{ "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=dGVzdA==; b=dGVzdA==", "bad bh= tag" },
		{ "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=" BH "; b=!!", "bad b= tag" },
		{ "v=1; a=rsa-sha256; d=example.com; s=sel; h=to:subject; bh=" BH "; b=dGVzdA==", "From field not signed" },
		{ "v=1; a=rsa-sha256; d=example.com; s=sel; h=from::to; bh=" BH "; b=dGVzdA==", "bad h= tag" },
		{ "v=1; a=rsa-sha256; d=exa mple.com; s=sel; h=from; bh=" BH "; b=dGVzdA==", "bad d= tag" },
		{ "v=1; a=rsa-sha256; d=example.com; s=..; h=from; bh=" BH "; b=dGVzdA==", "bad s= tag" },
		{ GOOD "; c=relaxed/loose", "bad c= tag" },
		{ GOOD "; l=-1", "bad l= tag" },
		{ GOOD "; l=1234567890123456789", "bad l= tag" },
		{ GOOD "; t=20; x=10", "x= before t=" },
		{ GOOD "; q=dns/other", "unsupported q= method" },
		{ GOOD "; i=a@example.org", "i= not within d=" },
		{ GOOD "; i=a@badexample.com", "i= not within d=" },
		{ GOOD "; i=nodomain", "bad i= tag" },
	};
	struct dkv_sig s;
	char f[600];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int n = snprintf(f, sizeof(f), "DKIM-Signature: %s", t[i].tags);
		if (dkv_sig_parse(f, (size_t)n, &s) != -EINVAL || !s.err || strcmp(s.err, t[i].err))
			fail_msg("'%s': err '%s', want '%s'", t[i].tags, s.err ? s.err : "(none)", t[i].err);
		dkv_sig_free(&s);
	}
	/* the malformed case keeps d= for the result */
	int n = snprintf(f, sizeof(f), "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; h=from; bh=%%%%%%; b=???");
	assert_int_equal(dkv_sig_parse(f, (size_t)n, &s), -EINVAL);
	assert_string_equal(s.d, "example.com");
	dkv_sig_free(&s);
	/* too many h= names */
	n = snprintf(f, sizeof(f), "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; bh=" BH "; b=dGVzdA==; h=from");
	for (int i = 0; i < DKV_MAX_H; i++)
		n += snprintf(f + n, sizeof(f) - (size_t)n, ":a");
	assert_int_equal(dkv_sig_parse(f, (size_t)n, &s), -EINVAL);
	assert_string_equal(s.err, "too many h= names");
	dkv_sig_free(&s);
	/* a good one: defaults and values */
	n = snprintf(f, sizeof(f), "DKIM-Signature: " GOOD "; c=relaxed; l=10; i=u@sub.Example.com; q=dns/txt; t=5; x=6");
	assert_int_equal(dkv_sig_parse(f, (size_t)n, &s), 0);
	assert_int_equal(s.hc, DKV_RELAXED);
	assert_int_equal(s.bc, DKV_SIMPLE);
	assert_int_equal(s.l, 10);
	assert_int_equal(s.nh, 2);
	assert_string_equal(s.h[1], "to");
	assert_string_equal(s.b8, "dGVzdA==");
	assert_int_equal(s.blen, 4);
	assert_int_equal(s.b_len, 8);
	assert_memory_equal(f + s.b_off, "dGVzdA==", 8);
	dkv_sig_free(&s);
}

static void test_key_parse(void **state)
{
	static const struct {
		const char *rec, *err;
	} t[] = {
		{ "v=DKIM1; k=rsa; p=", "key revoked" },
		{ "v=DKIM1; k=rsa", "no p= in key record" },
		{ "k=rsa; v=DKIM1; p=AAAA", "bad key record version" },
		{ "v=DKIM1; k=dsa; p=AAAA", "unknown key type" },
		{ "v=DKIM1; h=sha1; p=AAAA", "key does not allow sha256" },
		{ "v=DKIM1; s=other; p=AAAA", "key not for email" },
		{ "v=DKIM1; p=bm90IGEga2V5", "key could not be decoded" },
		{ "v=DKIM1; p=!!", "key could not be decoded" },
		{ "v=DKIM1; k=ed25519; p=AAAA", "key could not be decoded" },
		{ "v=DKIM1; p=a; p=b", "bad key record" },
		{ "", "bad key record" },
	};
	struct dkv_key k, c;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (dkv_key_parse(t[i].rec, &k) != -EINVAL || k.ok || !k.err || strcmp(k.err, t[i].err))
			fail_msg("'%s': err '%s', want '%s'", t[i].rec, k.err ? k.err : "(none)", t[i].err);
		dkv_key_clear(&k);
	}
	assert_int_equal(dkv_key_parse(fx_rsa_rec, &k), 0);
	assert_int_equal(k.bits, 1024);
	assert_true(dkv_key_b64_bits(fx_rsa_rec) >= 1024);
	dkv_key_copy(&c, &k);
	dkv_key_clear(&k);
	assert_non_null(c.pkey); /* the copy holds its own reference */
	dkv_key_clear(&c);
	assert_int_equal(dkv_key_parse("v=DKIM1; h=sha1:sha256; s=email; t=y:s; k=ed25519; p=gVhJB4z6M1aE8Z/sdcsS9VDl2rVKkZ4ip0KZsXciDSc=", &k), 0);
	assert_int_equal(k.alg, DKV_ED25519_SHA256);
	assert_int_equal(k.strict, 1);
	dkv_key_clear(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_body_canon),
		cmocka_unit_test(test_header_canon),
		cmocka_unit_test(test_dkimpy_fixtures),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_sig_parse),
		cmocka_unit_test(test_key_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
