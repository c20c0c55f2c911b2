/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dkimv.h - moat's own DKIM verifier (RFC 6376, RFC 8463) on OpenSSL: the
 * DKIM-Signature and key record tag-lists, header and body
 * canonicalisation, the body hashes streamed as the message comes, the
 * header hash and the signature check.  No I/O and no session: dkim.c
 * feeds it and asks the keys; unit tests and the fuzz target drive it
 * directly.
 *
 * Why not libopendkim: per 10 KB message it spent about 170 us in its
 * byte-by-byte relaxed body canonicalisation and 150 us decoding the
 * public key again for every message (docs/smtpd.md).
 */
#ifndef MOAT_SMTP_DKIMV_H
#define MOAT_SMTP_DKIMV_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define DKV_MAX_TAGS 32         /* tags in one tag-list */
#define DKV_MAX_H 64            /* names in h= */
#define DKV_MAX_B 2048          /* decoded b= bytes (a 16 kbit RSA key) */
#define DKV_MAX_BH 50           /* body hashes per message (dkim_max_signatures <= 50) */

enum dkv_alg { DKV_RSA_SHA256 = 0, DKV_ED25519_SHA256 };
enum dkv_canon { DKV_SIMPLE = 0, DKV_RELAXED };

/* one tag of a tag-list: name and value (FWS around them left out) */
struct dkv_tag {
	const char *name, *val;
	size_t nlen, vlen;
	size_t raw_off, raw_len; /* everything between '=' and ';' (FWS included) */
};

/* dkv_tags - parse a tag-list (RFC 6376 3.2) of n bytes into t[max];
 * the number of tags, or -EINVAL (syntax, duplicate tag, more than max) */
int dkv_tags(const char *s, size_t n, struct dkv_tag *t, int max);

/* a parsed DKIM-Signature field */
struct dkv_sig {
	char d[256], s[64], a[16], b8[12]; /* b8: the first 8 characters of b= */
	char i_dom[256];        /* the domain of i= ("" without i=) */
	enum dkv_alg alg;
	enum dkv_canon hc, bc;
	unsigned char bh[32];
	unsigned char *b;       /* malloc'd, blen bytes */
	size_t blen;
	int64_t l, t, x;        /* -1 when absent */
	int nh;
	char h[DKV_MAX_H][64];  /* the h= names, lower case */
	size_t b_off, b_len;    /* the b= value inside the field (emptied for hashing) */
	const char *err;        /* NULL, or why the signature is a permerror */
};

/* dkv_sig_parse - the DKIM-Signature field (name included, folded lines
 * joined by CRLF, no final CRLF) into *sig; 0, or -EINVAL with sig->err
 * set (d, s, a and b8 are filled as far as they were read, for the
 * result's properties).  Release with dkv_sig_free. */
int dkv_sig_parse(const char *f, size_t n, struct dkv_sig *sig);
void dkv_sig_free(struct dkv_sig *sig);

/* a parsed key record */
struct dkv_key {
	int ok;                 /* 1: pkey usable; 0: err says why */
	const char *err;
	int revoked;            /* p= empty */
	int strict;             /* t=s: i= must be d= itself */
	enum dkv_alg alg;       /* k=rsa -> DKV_RSA_SHA256, k=ed25519 */
	int bits;
	EVP_PKEY *pkey;
};

/* dkv_key_parse - a key TXT record into *k (k->ok, or k->err); 0, or
 * -EINVAL (k->err says why), -ENOMEM.  Release with dkv_key_clear. */
int dkv_key_parse(const char *rec, struct dkv_key *k);
/* dkv_key_copy - *dst shares src's key (reference counted) */
void dkv_key_copy(struct dkv_key *dst, const struct dkv_key *src);
void dkv_key_clear(struct dkv_key *k);
/* dkv_key_b64_bits - an upper bound of the key size in bits from the length
 * of the record's p= (no decoding); 0 without p= */
size_t dkv_key_b64_bits(const char *rec);

/* body canonicaliser + hashes: one per distinct (canon, l) */
struct dkv_bh {
	enum dkv_canon c;
	int64_t l;              /* -1: whole body */
	int64_t done;           /* canonical bytes hashed */
	int64_t total;          /* canonical bytes seen */
	EVP_MD_CTX *md;
	unsigned char out[32];
};

struct dkv_body {
	struct dkv_bh bh[DKV_MAX_BH];
	int n;
	/* per canonicalisation state: pending CRLFs (empty lines) and, for
	 * relaxed, a pending whitespace run; any: something was emitted */
	uint64_t crlf[2];
	int sp, any[2];
	int used[2];
};

/* dkv_body_init - no body hash yet */
void dkv_body_init(struct dkv_body *b);
/* dkv_body_add - a body hash for (c, l), shared with an equal one; its
 * index, or -ENOSPC, -ENOMEM */
int dkv_body_add(struct dkv_body *b, enum dkv_canon c, int64_t l);
/* dkv_body_update - body bytes, whole CRLF-terminated lines */
void dkv_body_update(struct dkv_body *b, const char *p, size_t n);
/* dkv_body_final - the end of the body: every hash in bh[i].out */
void dkv_body_final(struct dkv_body *b);
void dkv_body_free(struct dkv_body *b);

/* dkv_header_hash - SHA-256 of the header fields sig->h selects from
 * f[0..nf) (each without its CRLF) bottom-up, then the signature field sig_f
 * with b= emptied; 0 or -ENOMEM */
int dkv_header_hash(const struct dkv_sig *sig, const char *sig_f, size_t sig_n, const char *const *f,
		    const size_t *fl, int nf, unsigned char out[32]);
/* dkv_canon_header - one field canonicalised into out (NUL-free bytes,
 * CRLF added); its length (at most n + 2) */
size_t dkv_canon_header(enum dkv_canon c, const char *f, size_t n, char *out);

/* dkv_verify - the signature over the header hash with the key; 1 good,
 * 0 bad */
int dkv_verify(const struct dkv_sig *sig, const struct dkv_key *k, const unsigned char hh[32]);

/* dkv_b64 - decode base64 with FWS ignored into out[max]; length, or -1 */
long dkv_b64(const char *s, size_t n, unsigned char *out, size_t max);

#endif /* MOAT_SMTP_DKIMV_H */
