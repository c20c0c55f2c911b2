/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dkimv.c - moat's own DKIM verifier (dkimv.h): RFC 6376 tag-lists, key
 * records, canonicalisation and hashing, RFC 8463 ed25519-sha256; the
 * cryptography is OpenSSL's.
 *
 * The body is canonicalised in whole chunks: simple hands every chunk to
 * SHA-256 as it is, keeping back only its trailing CRLFs; relaxed copies
 * runs of ordinary bytes and keeps as state only a pending whitespace run
 * and the count of pending CRLFs (empty lines at the end are dropped).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "dkimv.h"

static int is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* tval - a byte allowed in a tag value (RFC 6376 3.2 tval, or FWS) */
static int tval_ok(unsigned char c)
{
	return (c >= 0x21 && c <= 0x7e && c != ';') || is_fws((char)c);
}

int dkv_tags(const char *s, size_t n, struct dkv_tag *t, int max)
{
	size_t i = 0;
	int k = 0;

	for (;;) {
		while (i < n && is_fws(s[i]))
			i++;
		if (i == n)
			return k;
		size_t ns = i;
		if (!isalpha((unsigned char)s[i]))
			return -EINVAL;
		while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '_'))
			i++;
		size_t nl = i - ns;
		while (i < n && is_fws(s[i]))
			i++;
		if (i == n || s[i] != '=')
			return -EINVAL;
		i++;
		size_t rs = i;
		while (i < n && s[i] != ';') {
			if (!tval_ok((unsigned char)s[i]))
				return -EINVAL;
			i++;
		}
		size_t re = i, vs = rs, ve = re;
		while (vs < ve && is_fws(s[vs]))
			vs++;
		while (ve > vs && is_fws(s[ve - 1]))
			ve--;
		for (int j = 0; j < k; j++)
			if (t[j].nlen == nl && !memcmp(t[j].name, s + ns, nl))
				return -EINVAL; /* a tag twice */
		if (k == max)
			return -EINVAL;
		t[k++] = (struct dkv_tag){ s + ns, s + vs, nl, ve - vs, rs, re - rs };
		if (i < n)
			i++; /* the ';' */
	}
}

/* tag_is - the tag's name is name */
static int tag_is(const struct dkv_tag *t, const char *name)
{
	return t->nlen == strlen(name) && !memcmp(t->name, name, t->nlen);
}

/* val_is - the value is v exactly (case-insensitive) */
static int val_is(const struct dkv_tag *t, const char *v)
{
	return t->vlen == strlen(v) && !strncasecmp(t->val, v, t->vlen);
}

/* list_has - a colon-separated value (FWS around items) holds item */
static int list_has(const char *v, size_t n, const char *item)
{
	size_t il = strlen(item);

	for (size_t i = 0; i <= n;) {
		size_t e = i;
		while (e < n && v[e] != ':')
			e++;
		size_t a = i, z = e;
		while (a < z && is_fws(v[a]))
			a++;
		while (z > a && is_fws(v[z - 1]))
			z--;
		if (z - a == il && !strncasecmp(v + a, item, il))
			return 1;
		i = e + 1;
	}
	return 0;
}

static const signed char b64v[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8, ['I'] = 9,
	['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17,
	['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25,
	['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33,
	['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41,
	['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49,
	['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57,
	['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};

long dkv_b64(const char *s, size_t n, unsigned char *out, size_t max)
{
	uint32_t acc = 0;
	size_t o = 0;
	int bits = 0, pad = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_fws((char)c))
			continue;
		if (c == '=') {
			if (++pad > 2)
				return -1;
			continue;
		}
		if (pad || !b64v[c])
			return -1; /* data after padding, or not base64 */
		acc = (acc << 6) | (uint32_t)(b64v[c] - 1);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == max)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	/* a lone character or wrong padding; leftover bits that are not zero
	 * are ignored, as other verifiers do */
	if (bits >= 6 || (pad && (bits / 2) != pad))
		return -1;
	return (long)o;
}

/* num - a decimal value of at most maxd digits; -1 if not one */
static int64_t num(const struct dkv_tag *t, size_t maxd)
{
	int64_t v = 0;

	if (!t->vlen || t->vlen > maxd)
		return -1;
	for (size_t i = 0; i < t->vlen; i++) {
		if (!isdigit((unsigned char)t->val[i]))
			return -1;
		v = v * 10 + (t->val[i] - '0');
	}
	return v;
}

/* copy - the value into out[sz] if it fits and is a DNS name (LDH, '_', '.'); 0 or -1 */
static int copy_name(const struct dkv_tag *t, char *out, size_t sz)
{
	size_t l = t->vlen < sz - 1 ? t->vlen : sz - 1;
	int ok = t->vlen && t->vlen < sz && t->val[0] != '.' && t->val[t->vlen - 1] != '.';

	memcpy(out, t->val, l);
	out[l] = '\0';
	for (size_t i = 0; i < l; i++)
		if (!isalnum((unsigned char)out[i]) && out[i] != '-' && out[i] != '.' && out[i] != '_')
			ok = 0;
	return ok && !strstr(out, "..") ? 0 : -1;
}

/* fail - record why and say -EINVAL */
static int fail(struct dkv_sig *sig, const char *why)
{
	if (!sig->err)
		sig->err = why;
	return -EINVAL;
}

/* parse_h - the h= list into sig->h; 0 or -EINVAL */
static int parse_h(struct dkv_sig *sig, const struct dkv_tag *t)
{
	int from = 0;

	for (size_t i = 0; i <= t->vlen;) {
		size_t e = i;
		while (e < t->vlen && t->val[e] != ':')
			e++;
		size_t a = i, z = e;
		while (a < z && is_fws(t->val[a]))
			a++;
		while (z > a && is_fws(t->val[z - 1]))
			z--;
		if (a == z || z - a >= sizeof(sig->h[0]))
			return fail(sig, "bad h= tag");
		if (sig->nh == DKV_MAX_H)
			return fail(sig, "too many h= names");
		char *h = sig->h[sig->nh++];
		for (size_t k = a; k < z; k++) {
			unsigned char c = (unsigned char)t->val[k];
			if (c <= 0x20 || c >= 0x7f || c == ':')
				return fail(sig, "bad h= tag");
			*h++ = (char)tolower(c);
		}
		*h = '\0';
		if (!strcmp(sig->h[sig->nh - 1], "from"))
			from = 1;
		i = e + 1;
	}
	return from ? 0 : fail(sig, "From field not signed");
}

int dkv_sig_parse(const char *f, size_t n, struct dkv_sig *sig)
{
	struct dkv_tag t[DKV_MAX_TAGS];
	const char *colon = memchr(f, ':', n);
	const struct dkv_tag *tv = NULL, *ta = NULL, *tb = NULL, *tbh = NULL, *td = NULL, *th = NULL, *ts = NULL;
	int nt;

	memset(sig, 0, sizeof(*sig));
	sig->l = sig->t = sig->x = -1;
	if (!colon)
		return fail(sig, "not a header field");
	size_t vo = (size_t)(colon + 1 - f);
	if ((nt = dkv_tags(colon + 1, n - vo, t, DKV_MAX_TAGS)) < 0)
		return fail(sig, "bad tag-list");
	for (int i = 0; i < nt; i++) {
		const struct dkv_tag *x = &t[i];
		if (tag_is(x, "v"))
			tv = x;
		else if (tag_is(x, "a"))
			ta = x;
		else if (tag_is(x, "b"))
			tb = x;
		else if (tag_is(x, "bh"))
			tbh = x;
		else if (tag_is(x, "d"))
			td = x;
		else if (tag_is(x, "h"))
			th = x;
		else if (tag_is(x, "s"))
			ts = x;
	}
	/* what the result names, as far as it is there */
	if (td && copy_name(td, sig->d, sizeof(sig->d)) != 0)
		fail(sig, "bad d= tag");
	if (ts && copy_name(ts, sig->s, sizeof(sig->s)) != 0)
		fail(sig, "bad s= tag");
	if (ta)
		snprintf(sig->a, sizeof(sig->a), "%.*s", (int)(ta->vlen < 15 ? ta->vlen : 15), ta->val);
	if (tb) {
		size_t o = 0;
		for (size_t i = 0; i < tb->vlen && o < 8; i++)
			if (!is_fws(tb->val[i]))
				sig->b8[o++] = tb->val[i];
		sig->b8[o] = '\0';
		sig->b_off = vo + tb->raw_off;
		sig->b_len = tb->raw_len;
	}
	if (sig->err)
		return -EINVAL;
	if (!tv || !ta || !tb || !tbh || !td || !th || !ts)
		return fail(sig, !tv ? "missing v= tag" : !ta ? "missing a= tag" : !tb ? "missing b= tag" :
				 !tbh ? "missing bh= tag" : !td ? "missing d= tag" : !th ? "missing h= tag" :
				 "missing s= tag");
	if (!val_is(tv, "1"))
		return fail(sig, "unsupported version");
	if (val_is(ta, "rsa-sha256"))
		sig->alg = DKV_RSA_SHA256;
	else if (val_is(ta, "ed25519-sha256"))
		sig->alg = DKV_ED25519_SHA256;
	else
		return fail(sig, "unsupported signing algorithm");
	if (dkv_b64(tbh->val, tbh->vlen, sig->bh, sizeof(sig->bh)) != 32)
		return fail(sig, "bad bh= tag");
	if (!(sig->b = malloc(DKV_MAX_B)))
		return fail(sig, "out of memory");
	long bl = dkv_b64(tb->val, tb->vlen, sig->b, DKV_MAX_B);
	if (bl <= 0)
		return fail(sig, "bad b= tag");
	sig->blen = (size_t)bl;
	if (parse_h(sig, th) != 0)
		return -EINVAL;
	for (int i = 0; i < nt; i++) {
		const struct dkv_tag *x = &t[i];
		if (tag_is(x, "c")) {
			const char *sl = memchr(x->val, '/', x->vlen);
			size_t hl = sl ? (size_t)(sl - x->val) : x->vlen;
			struct dkv_tag hc = { NULL, x->val, 0, hl, 0, 0 };
			struct dkv_tag bc = { NULL, sl ? sl + 1 : "simple", 0, sl ? x->vlen - hl - 1 : 6, 0, 0 };
			if ((!val_is(&hc, "simple") && !val_is(&hc, "relaxed")) ||
			    (!val_is(&bc, "simple") && !val_is(&bc, "relaxed")))
				return fail(sig, "bad c= tag");
			sig->hc = val_is(&hc, "relaxed") ? DKV_RELAXED : DKV_SIMPLE;
			sig->bc = val_is(&bc, "relaxed") ? DKV_RELAXED : DKV_SIMPLE;
		} else if (tag_is(x, "l")) {
			if ((sig->l = num(x, 18)) < 0)
				return fail(sig, "bad l= tag");
		} else if (tag_is(x, "t")) {
			if ((sig->t = num(x, 12)) < 0)
				return fail(sig, "bad t= tag");
		} else if (tag_is(x, "x")) {
			if ((sig->x = num(x, 12)) < 0)
				return fail(sig, "bad x= tag");
		} else if (tag_is(x, "q")) {
			if (!list_has(x->val, x->vlen, "dns/txt"))
				return fail(sig, "unsupported q= method");
		} else if (tag_is(x, "i")) {
			const char *at = memchr(x->val, '@', x->vlen);
			struct dkv_tag dom = { NULL, at ? at + 1 : "", 0, at ? x->vlen - (size_t)(at + 1 - x->val) : 0, 0, 0 };
			size_t dl = strlen(sig->d);
			if (!at || copy_name(&dom, sig->i_dom, sizeof(sig->i_dom)) != 0)
				return fail(sig, "bad i= tag");
			size_t il = strlen(sig->i_dom);
			if (il < dl || strcasecmp(sig->i_dom + il - dl, sig->d) || (il > dl && sig->i_dom[il - dl - 1] != '.'))
				return fail(sig, "i= not within d=");
		}
	}
	if (sig->t >= 0 && sig->x >= 0 && sig->x < sig->t)
		return fail(sig, "x= before t=");
	return 0;
}

void dkv_sig_free(struct dkv_sig *sig)
{
	free(sig->b);
	sig->b = NULL;
}

size_t dkv_key_b64_bits(const char *rec)
{
	struct dkv_tag t[DKV_MAX_TAGS];
	int nt = dkv_tags(rec, strlen(rec), t, DKV_MAX_TAGS);
	size_t b = 0;

	for (int i = 0; i < nt; i++) {
		if (!tag_is(&t[i], "p"))
			continue;
		for (size_t k = 0; k < t[i].vlen; k++)
			if (!is_fws(t[i].val[k]) && t[i].val[k] != '=')
				b++;
	}
	return b * 6;
}

/* key_fail - the record is not a usable key */
static int key_fail(struct dkv_key *k, const char *why)
{
	k->ok = 0;
	k->err = why;
	return -EINVAL;
}

int dkv_key_parse(const char *rec, struct dkv_key *k)
{
	struct dkv_tag t[DKV_MAX_TAGS];
	const struct dkv_tag *p = NULL;
	int nt = dkv_tags(rec, strlen(rec), t, DKV_MAX_TAGS);

	memset(k, 0, sizeof(*k));
	if (nt <= 0)
		return key_fail(k, "bad key record");
	for (int i = 0; i < nt; i++) {
		const struct dkv_tag *x = &t[i];
		if (tag_is(x, "v")) {
			if (i || !val_is(x, "DKIM1"))
				return key_fail(k, "bad key record version");
		} else if (tag_is(x, "k")) {
			if (val_is(x, "ed25519"))
				k->alg = DKV_ED25519_SHA256;
			else if (!val_is(x, "rsa"))
				return key_fail(k, "unknown key type");
		} else if (tag_is(x, "h")) {
			if (!list_has(x->val, x->vlen, "sha256"))
				return key_fail(k, "key does not allow sha256");
		} else if (tag_is(x, "s")) {
			if (!list_has(x->val, x->vlen, "*") && !list_has(x->val, x->vlen, "email"))
				return key_fail(k, "key not for email");
		} else if (tag_is(x, "t")) {
			k->strict = list_has(x->val, x->vlen, "s");
		} else if (tag_is(x, "p")) {
			p = x;
		}
	}
	if (!p)
		return key_fail(k, "no p= in key record");
	if (!p->vlen) {
		k->revoked = 1;
		return key_fail(k, "key revoked");
	}
	unsigned char *der = malloc(p->vlen);
	if (!der)
		return key_fail(k, "out of memory"), -ENOMEM;
	long dl = dkv_b64(p->val, p->vlen, der, p->vlen);
	if (dl <= 0) {
		free(der);
		return key_fail(k, "key could not be decoded");
	}
	if (k->alg == DKV_ED25519_SHA256) {
		if (dl == 32)
			k->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, 32);
	} else {
		const unsigned char *q = der;
		k->pkey = d2i_PUBKEY(NULL, &q, dl);
		if (k->pkey && EVP_PKEY_get_base_id(k->pkey) != EVP_PKEY_RSA) {
			EVP_PKEY_free(k->pkey);
			k->pkey = NULL;
		}
		if (!k->pkey) { /* an RSAPublicKey alone (some publish that) */
			q = der;
			k->pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, dl);
		}
	}
	free(der);
	if (!k->pkey)
		return key_fail(k, "key could not be decoded");
	k->bits = EVP_PKEY_get_bits(k->pkey);
	k->ok = 1;
	return 0;
}

void dkv_key_copy(struct dkv_key *dst, const struct dkv_key *src)
{
	*dst = *src;
	if (dst->pkey && EVP_PKEY_up_ref(dst->pkey) != 1) {
		dst->pkey = NULL;
		dst->ok = 0;
		dst->err = "out of memory";
	}
}

void dkv_key_clear(struct dkv_key *k)
{
	EVP_PKEY_free(k->pkey);
	memset(k, 0, sizeof(*k));
}

size_t dkv_canon_header(enum dkv_canon c, const char *f, size_t n, char *out)
{
	size_t o = 0, i = 0;
	int sp = 0, any = 0;

	if (c == DKV_SIMPLE) {
		memcpy(out, f, n);
		memcpy(out + n, "\r\n", 2);
		return n + 2;
	}
	const char *colon = memchr(f, ':', n);
	size_t nl = colon ? (size_t)(colon - f) : n;
	while (nl && (f[nl - 1] == ' ' || f[nl - 1] == '\t'))
		nl--;
	for (; i < nl; i++)
		out[o++] = (char)tolower((unsigned char)f[i]);
	out[o++] = ':';
	for (i = colon ? (size_t)(colon - f) + 1 : n; i < n; i++) {
		char ch = f[i];
		if (ch == '\r' || ch == '\n')
			continue; /* unfolded */
		if (ch == ' ' || ch == '\t') {
			sp = 1;
			continue;
		}
		if (sp && any)
			out[o++] = ' ';
		sp = 0;
		any = 1;
		out[o++] = ch;
	}
	memcpy(out + o, "\r\n", 2);
	return o + 2;
}

/* name_is - the field f is named name (lower case) */
static int name_is(const char *f, size_t n, const char *name)
{
	size_t l = strlen(name), i = l;

	if (n < l + 1 || strncasecmp(f, name, l))
		return 0;
	while (i < n && (f[i] == ' ' || f[i] == '\t'))
		i++;
	return i < n && f[i] == ':';
}

int dkv_header_hash(const struct dkv_sig *sig, const char *sig_f, size_t sig_n, const char *const *f,
		    const size_t *fl, int nf, unsigned char out[32])
{
	int pick[DKV_MAX_H];
	size_t cap = sig_n + 2;
	int rc = -ENOMEM;

	for (int j = 0; j < nf; j++)
		if (fl[j] + 2 > cap)
			cap = fl[j] + 2;
	char *buf = malloc(cap);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!buf || !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	for (int i = 0; i < sig->nh; i++) {
		int from = nf - 1;
		for (int j = i - 1; j >= 0; j--)
			if (!strcmp(sig->h[j], sig->h[i])) {
				from = pick[j] - 1; /* below the one that instance took */
				break;
			}
		pick[i] = -1;
		for (int j = from; j >= 0; j--)
			if (name_is(f[j], fl[j], sig->h[i])) {
				pick[i] = j;
				break;
			}
		if (pick[i] < 0) {
			pick[i] = 0; /* absent (oversigned): nothing, and nothing below either */
			continue;
		}
		size_t l = dkv_canon_header(sig->hc, f[pick[i]], fl[pick[i]], buf);
		if (EVP_DigestUpdate(md, buf, l) != 1)
			goto out;
	}
	/* the signature field, b= emptied, no CRLF */
	char *sf = malloc(sig_n + 2);
	if (!sf)
		goto out;
	size_t bo = sig->b_off <= sig_n ? sig->b_off : sig_n;
	size_t be = bo + sig->b_len <= sig_n ? bo + sig->b_len : sig_n;
	memcpy(sf, sig_f, bo);
	memcpy(sf + bo, sig_f + be, sig_n - be);
	size_t l = dkv_canon_header(sig->hc, sf, sig_n - (be - bo), buf);
	free(sf);
	if (EVP_DigestUpdate(md, buf, l - 2) == 1 && EVP_DigestFinal_ex(md, out, NULL) == 1)
		rc = 0;
out:
	free(buf);
	EVP_MD_CTX_free(md);
	return rc;
}

int dkv_verify(const struct dkv_sig *sig, const struct dkv_key *k, const unsigned char hh[32])
{
	int ok = 0;

	if (!k->ok || !k->pkey || !sig->b)
		return 0;
	if (sig->alg == DKV_ED25519_SHA256) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		ok = md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, k->pkey) == 1 &&
		     EVP_DigestVerify(md, sig->b, sig->blen, hh, 32) == 1;
		EVP_MD_CTX_free(md);
		return ok;
	}
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k->pkey, NULL);
	ok = ctx && EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
	     EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
	     EVP_PKEY_verify(ctx, sig->b, sig->blen, hh, 32) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

void dkv_body_init(struct dkv_body *b)
{
	memset(b, 0, sizeof(*b));
}

int dkv_body_add(struct dkv_body *b, enum dkv_canon c, int64_t l)
{
	for (int i = 0; i < b->n; i++)
		if (b->bh[i].c == c && b->bh[i].l == l)
			return i;
	if (b->n == (int)(sizeof(b->bh) / sizeof(b->bh[0])))
		return -ENOSPC;
	struct dkv_bh *h = &b->bh[b->n];
	memset(h, 0, sizeof(*h));
	h->c = c;
	h->l = l;
	if (!(h->md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(h->md);
		h->md = NULL;
		return -ENOMEM;
	}
	b->used[c] = 1;
	return b->n++;
}

/* emit - canonical bytes of canonicalisation c to its hashes (l= honoured) */
static void emit(struct dkv_body *b, enum dkv_canon c, const char *p, size_t n)
{
	for (int i = 0; i < b->n; i++) {
		struct dkv_bh *h = &b->bh[i];
		if (h->c != c)
			continue;
		size_t take = n;
		h->total += (int64_t)n;
		if (h->l >= 0 && (int64_t)take > h->l - h->done)
			take = (size_t)(h->l - h->done);
		if (take)
			(void)EVP_DigestUpdate(h->md, p, take);
		h->done += (int64_t)take;
	}
}

static const char crlfs[] = "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";

/* emit_crlf - the pending empty lines: content follows them */
static void emit_crlf(struct dkv_body *b, enum dkv_canon c)
{
	while (b->crlf[c]) {
		uint64_t k = b->crlf[c] < 16 ? b->crlf[c] : 16;
		emit(b, c, crlfs, (size_t)k * 2);
		b->crlf[c] -= k;
	}
}

/* body_simple - every byte as it is; trailing CRLFs kept back */
static void body_simple(struct dkv_body *b, const char *p, size_t n)
{
	size_t e = n;
	uint64_t t = 0;

	while (e >= 2 && p[e - 2] == '\r' && p[e - 1] == '\n')
		e -= 2, t++;
	if (!e) {
		b->crlf[DKV_SIMPLE] += t;
		return;
	}
	emit_crlf(b, DKV_SIMPLE);
	emit(b, DKV_SIMPLE, p, e);
	b->crlf[DKV_SIMPLE] = t;
	b->any[DKV_SIMPLE] = 1;
}

/* bytes relaxed body canonicalisation looks at: 1 WSP, 2 CR */
static const unsigned char rcls[256] = { [' '] = 1, ['\t'] = 1, ['\r'] = 2 };

#define RELAXED_OB 8192

/* relaxed_lead - ordinary bytes follow (need of them go to ob): out go
 * the pending empty lines, then the pending space */
static void relaxed_lead(struct dkv_body *b, char *ob, size_t *o, size_t need)
{
	if (b->crlf[DKV_RELAXED] || *o + need + 1 > RELAXED_OB) {
		emit(b, DKV_RELAXED, ob, *o);
		*o = 0;
		emit_crlf(b, DKV_RELAXED);
	}
	if (b->sp)
		ob[(*o)++] = ' ';
	b->sp = 0;
	b->any[DKV_RELAXED] = 1;
}

/* body_relaxed - WSP runs to one SP, none at a line's end, empty lines
 * at the end dropped */
static void body_relaxed(struct dkv_body *b, const char *p, size_t n)
{
	char ob[RELAXED_OB];
	size_t o = 0, i = 0;

	while (i < n) {
		size_t s = i;
		while (i < n && !rcls[(unsigned char)p[i]])
			i++;
		if (i > s) { /* a run of ordinary bytes */
			relaxed_lead(b, ob, &o, i - s);
			if (o + (i - s) > sizeof(ob)) {
				emit(b, DKV_RELAXED, ob, o);
				o = 0;
				emit(b, DKV_RELAXED, p + s, i - s);
			} else {
				memcpy(ob + o, p + s, i - s);
				o += i - s;
			}
			continue;
		}
		if (rcls[(unsigned char)p[i]] == 1) {
			b->sp = 1;
			i++;
		} else if (i + 1 < n && p[i + 1] == '\n') {
			b->sp = 0; /* no whitespace at a line's end */
			b->crlf[DKV_RELAXED]++;
			i += 2;
		} else { /* a CR alone: an ordinary byte */
			relaxed_lead(b, ob, &o, 1);
			ob[o++] = '\r';
			i++;
		}
	}
	emit(b, DKV_RELAXED, ob, o);
}

void dkv_body_update(struct dkv_body *b, const char *p, size_t n)
{
	if (b->used[DKV_SIMPLE])
		body_simple(b, p, n);
	if (b->used[DKV_RELAXED])
		body_relaxed(b, p, n);
}

void dkv_body_final(struct dkv_body *b)
{
	/* simple: one CRLF for the dropped ones (an empty body is CRLF);
	 * relaxed: one CRLF after content, nothing for an empty body */
	if (b->used[DKV_SIMPLE])
		emit(b, DKV_SIMPLE, "\r\n", 2);
	if (b->used[DKV_RELAXED] && b->any[DKV_RELAXED])
		emit(b, DKV_RELAXED, "\r\n", 2);
	for (int i = 0; i < b->n; i++)
		(void)EVP_DigestFinal_ex(b->bh[i].md, b->bh[i].out, NULL);
}

void dkv_body_free(struct dkv_body *b)
{
	for (int i = 0; i < b->n; i++)
		EVP_MD_CTX_free(b->bh[i].md);
	b->n = 0;
}
