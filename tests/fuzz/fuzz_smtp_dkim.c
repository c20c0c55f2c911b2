/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_smtp_dkim.c - moat-smtpd's DKIM and DMARC path (dataplane/smtp/dkim.c,
 * dmarc.c over moat's verifier dkimv.c and libopendmarc) driven by arbitrary bytes: the
 * input builds a message (DKIM-Signature fields from a tag dictionary with
 * values taken from the input, a From field, header and body lines), the
 * key record and the DMARC record the DNS would have answered; the message
 * is fed line by line as the session does, then auth_ready / auth_finish /
 * auth_items / auth_close.  No DNS: the answers are put where on_txt puts
 * them.  Invariants: every evaluated signature has an RFC 8601 result word,
 * at most dkim_max_signatures are evaluated, the A-R header stays one field.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "authres.h"
#include "smtpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct smtpd_config *g_cfg;
void stats_inc(const char *stage, const char *reason) { (void)stage; (void)reason; }
void stats_add(const char *name, uint64_t n) { (void)name; (void)n; }
void session_auth_done(struct session *s) { (void)s; }

/* a real 2048-bit key, so the crypto path runs (the signatures never match) */
static const char rsa_pub[] =
	"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAyiJ6cwOdNe4Z85W7K3CGpSWatuJx5Pq4ArvW"
	"mcI5a1cGVywjlbPAOwRWYCswIl67lmzF7iPFwJ0CX5QcGPyGdEMmhbUxDsDAXx+HXDOS4ItVnq4b3ekG"
	"h/5YA/+5LLpq1XL81DzVfgzX4STIYtZj9SPyldTn8lgz17uFaxrEvERocT3/fdcrDS58S8d+VN+ZUb3H"
	"e+IuzhanRruNlCE6eIsOtnIBtLLUEhAOcSBw0ewq2xFuKBf0Io+9HkvRU7Vwj1qGi2L9Z1ESRiInLknt"
	"8YsQIZYw656+enQudK6i4GvtvIRYraxAj9jyR4k+54fIi96wFfuLYYkCatXJE1tCjwIDAQAB";

/* about the size of an RSA-2048 signature, base64 */
#define B64_32 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g"
#define B256 B64_32 B64_32 B64_32 B64_32 B64_32 B64_32 B64_32 B64_32 "AA=="

static const char *const tag_names[] = { "v", "a", "c", "d", "s", "h", "l", "bh", "b", "t", "x", "q", "i", "z" };
static const char *const tag_vals[] = {
	"1", "rsa-sha256", "ed25519-sha256", "rsa-sha1", "relaxed/relaxed", "simple/simple", "relaxed",
	"example.com", "sel", "from:subject", "from", "0", "18446744073709551616", "-1",
	"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "dns/txt", "@example.com", "", "=?", ";;",
};

struct rd {
	const uint8_t *p;
	size_t n;
};

static unsigned byte(struct rd *r)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++;
}

/* text - up to max input bytes as a string without CR, LF or NUL */
static void text(struct rd *r, char *out, size_t max)
{
	size_t l = byte(r) % (max + 1), o = 0;
	for (size_t i = 0; i < l && r->n; i++) {
		char c = (char)byte(r);
		if (c != '\r' && c != '\n' && c)
			out[o++] = c;
	}
	out[o] = '\0';
}

static void feed(struct auth_msg *m, const char *line)
{
	char b[2100];
	size_t l = strlen(line);
	memcpy(b, line, l);
	memcpy(b + l, "\r\n", 2);
	auth_feed(m, b, l + 2);
}

static struct auth_q *answer(struct auth_msg *m, enum auth_qkind kind, const char *name, const char *txt)
{
	struct auth_q *q = calloc(1, sizeof(*q));
	if (!q)
		abort();
	q->m = m;
	q->kind = kind;
	snprintf(q->name, sizeof(q->name), "%s", name);
	q->status = txt ? AQS_OK : AQS_NOTFOUND;
	q->txt = txt ? strdup(txt) : NULL;
	m->q[m->nq++] = q;
	return q;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct smtpd_config cfg;
	static struct worker w;
	static struct session s;
	static int init;
	struct rd r = { data, size };
	char line[2048], v[600], key[800], dm[300];

	if (!init) {
		char err[256];
		config_defaults(&cfg);
		cfg.auth.dkim = cfg.auth.dmarc = 1;
		cfg.auth.key_cache = 0;
		g_cfg = &cfg;
		if (auth_init(&cfg, err, sizeof(err)) != 0 || auth_thread_init() != 0) {
			fprintf(stderr, "auth init: %s\n", err);
			abort();
		}
		s.w = &w; /* w.ares NULL: no question leaves */
		s.family = 4;
		s.addr[0] = 192, s.addr[1] = 0, s.addr[2] = 2, s.addr[3] = 55;
		strcpy(s.ip, "192.0.2.55");
		strcpy(s.sid, "0000000000000001");
		strcpy(s.helo, "client.example");
		init = 1;
	}
	unsigned flags = byte(&r);
	snprintf(s.spf_result, sizeof(s.spf_result), "%s",
		 (const char *[]){ "pass", "fail", "softfail", "temperror", "none", "" }[flags % 6]);
	snprintf(s.from.addr, sizeof(s.from.addr), "a@example.com");
	s.from.domain = s.from.addr + 2;

	struct auth_msg *m = auth_open(&s);
	if (!m)
		return 0;
	/* the DNS answers, as on_txt would have stored them */
	if (flags & 8)
		snprintf(key, sizeof(key), "v=DKIM1; k=rsa; p=%s", rsa_pub);
	else
		text(&r, key, 300);
	answer(m, AQ_KEY, "sel._domainkey.example.com", (flags & 16) ? NULL : key);
	text(&r, dm, 200);
	answer(m, AQ_DMARC_FROM, "_dmarc.example.com", (flags & 32) ? "v=DMARC1; p=reject" : dm);

	/* signatures: tags from the dictionary, values from it or the input */
	int nsig = (int)byte(&r) % 12;
	for (int i = 0; i < nsig; i++) {
		/* flag 128: a complete signature first, so the crypto path runs */
		size_t o = (size_t)snprintf(line, sizeof(line), "DKIM-Signature:%s",
					    (flags & 128) ? " v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel;"
							    " h=from:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;"
							    " b=" B256 ";" : "");
		int ntag = (int)byte(&r) % 14;
		for (int t = 0; t < ntag && o < sizeof(line) - 700; t++) {
			unsigned k = byte(&r), x = byte(&r);
			if (x & 1)
				text(&r, v, 120);
			else
				snprintf(v, sizeof(v), "%s", tag_vals[(x >> 1) % (sizeof(tag_vals) / sizeof(tag_vals[0]))]);
			o += (size_t)snprintf(line + o, sizeof(line) - o, " %s=%s;",
					      tag_names[k % (sizeof(tag_names) / sizeof(tag_names[0]))], v);
		}
		feed(m, line);
		if (byte(&r) & 1)
			feed(m, "\tb=dGVzdA==");  /* a folded continuation */
	}
	text(&r, v, 200);
	snprintf(line, sizeof(line), "From: %s", (flags & 64) ? "Someone <a@example.com>" : v);
	feed(m, line);
	feed(m, "Subject: fuzz");
	/* the rest: header lines, then (after an empty line) body lines */
	while (r.n) {
		text(&r, line, 400);
		feed(m, line);
	}
	if (!auth_ready(m, 0))
		abort(); /* every answer was already in */
	struct auth_verdict av;
	auth_finish(m, &av);
	if (m->nsig > cfg.auth.max_signatures)
		abort();
	for (int i = 0; i < m->nsig; i++)
		if (!strstr(" pass fail neutral policy temperror permerror ", m->sig[i].result) || !m->sig[i].result[0])
			abort();
	struct authres_item it[AUTH_MAX_SIGS + 3];
	int n = auth_items(m, it, AUTH_MAX_SIGS + 3);
	char hdr[8192];
	size_t hl = authres_build(hdr, sizeof(hdr), "mx.moat.test", it, n);
	for (size_t i = 0; i + 2 < hl; i++)
		if (hdr[i] == '\n' && hdr[i + 1] != '\t')
			abort(); /* every line after the first is a continuation */
	if (getenv("FUZZ_DEBUG")) /* what the inputs reached: sh fuzz | sort | uniq -c */
		fprintf(stderr, "sigfields=%d nsig=%d %s dmarc=%s\n", m->nsigf, m->nsig, m->nsig ? m->sig[0].result : m->dkim_none,
			m->dmarc_result);
	auth_close(m);
	return 0;
}
