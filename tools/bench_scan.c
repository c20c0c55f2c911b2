/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench_scan.c - throughput of the content gate on one core (tools/bench scan).
 *
 * Generates a corpus of realistic messages (plain text, HTML alternatives
 * with quoted-printable, base64 attachments, and SpamAssassin's sample spam
 * and ham), then measures, over the same raw bytes:
 *   memcpy                      the cost of touching the bytes at all
 *   Hyperscan block mode        each message scanned in one call (the floor)
 *   the filter, streaming       scan_filter_ops open/feed/finish/close, fed
 *                               one CRLF line per call as moat-smtpd's
 *                               data_line() does (and 64 KiB slices): MIME
 *                               walk, decoding, streams
 * for 10, 1,000 and 10,000 generated literal-heavy rules and for the
 * imported SpamAssassin set.  Throughput counts raw message bytes (and, in
 * the *_scanned keys, the bytes the filter passed to Hyperscan: its rules
 * look at decoded text bodies, so it skips what block mode scans, e.g.
 * base64 attachments; the *_raw_scope keys have every rule in raw scope, so
 * both sides scan the same bytes); time is
 * the thread's CPU time (the machine is shared), median of --runs; each
 * repetition runs memcpy, block and stream back to back and the ratios are
 * medians of the per-repetition ratios, so load from other processes hits
 * both sides of a ratio alike.
 * Prints flat JSON on stdout.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "scan.h"

struct msg {
	char *p;
	size_t len;
	size_t *lines;  /* end offset of each CRLF line (the last may lack it) */
	size_t nlines;
};

static struct msg *corpus;
static size_t ncorpus, corpus_bytes;
static uint64_t rs = 0x9e3779b97f4a7c15ull;
static char words[4096][12];
static const size_t nwords = 4096;
static int runs = 5;
static const char *cache_dir = "build/bench/scan-cache";
static const char *sa_dir = "/usr/share/spamassassin";
static const char *examples = "/usr/share/doc/spamassassin/examples";

/* rnd - xorshift64* */
static uint64_t rnd(void)
{
	rs ^= rs >> 12;
	rs ^= rs << 25;
	rs ^= rs >> 27;
	return rs * 0x2545f4914f6cdd1dull;
}

/* zipf_word - a word, frequent ones more often */
static const char *zipf_word(void)
{
	uint64_t r = rnd();
	size_t i = (size_t)((r % nwords) * ((r >> 32) % nwords) / nwords);

	return words[i];
}

/* uni_word - any word, uniformly: rule phrases are not the commonest text */
static const char *uni_word(void)
{
	return words[rnd() % nwords];
}

/* long_word - a word of 5+ letters: a regex's literal part */
static const char *long_word(void)
{
	const char *w;

	do
		w = uni_word();
	while (strlen(w) < 5);
	return w;
}

/* make_words - a pseudo-English vocabulary */
static void make_words(void)
{
	static const char *cons = "bcdfghjklmnprstvwz", *vow = "aeiou";

	for (size_t i = 0; i < nwords; i++) {
		int syl = 1 + (int)(rnd() % 3), o = 0;

		for (int s = 0; s < syl; s++) {
			words[i][o++] = cons[rnd() % 18];
			words[i][o++] = vow[rnd() % 5];
			if (rnd() % 3 == 0)
				words[i][o++] = cons[rnd() % 18];
		}
		words[i][o] = 0;
	}
}

struct buf {
	char *p;
	size_t len, cap;
};

/* put - append to a growing buffer */
static void put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			log_fatal("bench: out of memory");
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* putf - formatted append */
static void putf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct buf *b, const char *fmt, ...)
{
	char tmp[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* text - n bytes of wrapped prose, CRLF lines */
static void text(struct buf *b, size_t n, int html)
{
	size_t start = b->len, col = 0;

	while (b->len - start < n) {
		const char *w = zipf_word();
		size_t l = strlen(w);

		if (col + l > 72) {
			put(b, html && rnd() % 4 == 0 ? "<br>\r\n" : "\r\n", html ? 6 : 2);
			col = 0;
		}
		if (html && rnd() % 40 == 0) {
			putf(b, "<a href=\"http://%s.example/%s\">%s</a> ", zipf_word(), w, w);
			col += 40;
			continue;
		}
		put(b, w, l);
		put(b, rnd() % 12 == 0 ? ". " : " ", rnd() % 12 == 0 ? 2 : 1);
		col += l + 1;
	}
	put(b, "\r\n", 2);
}

/* headers - a plausible header block */
static void headers(struct buf *b, const char *ctype)
{
	for (int i = 0; i < 3; i++)
		putf(b, "Received: from %s.example (%s.example [198.51.100.%d])\r\n"
			"\tby mx.example.org (moat) with ESMTPS id %08llx\r\n"
			"\tfor <user@example.org>; Fri, 27 Nov 2026 18:00:%02d +0000\r\n",
		     zipf_word(), zipf_word(), (int)(rnd() % 250), (unsigned long long)rnd(), i);
	putf(b, "From: %s <%s@%s.example>\r\nTo: user@example.org\r\n"
		"Subject: %s %s %s\r\nDate: Fri, 27 Nov 2026 18:00:00 +0000\r\n"
		"Message-ID: <%016llx@%s.example>\r\nMIME-Version: 1.0\r\n%s\r\n",
	     zipf_word(), zipf_word(), zipf_word(), zipf_word(), zipf_word(), zipf_word(),
	     (unsigned long long)rnd(), zipf_word(), ctype);
}

/* b64 - n random bytes base64-encoded, 76-column lines */
static void b64(struct buf *b, size_t n)
{
	static const char *al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char line[80];
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint64_t r = rnd();

		for (int k = 0; k < 4; k++)
			line[o++] = al[(r >> (6 * k)) & 63];
		if (o == 76) {
			put(b, line, o);
			put(b, "\r\n", 2);
			o = 0;
		}
	}
	if (o) {
		put(b, line, o);
		put(b, "\r\n", 2);
	}
}

/* qp_html - an HTML body, quoted-printable (soft breaks, =3D for '=') */
static void qp_html(struct buf *b, size_t n)
{
	struct buf h = { 0 };
	size_t col = 0;

	put(&h, "<html><body><p>", 15);
	text(&h, n, 1);
	put(&h, "</p></body></html>\r\n", 20);
	for (size_t i = 0; i < h.len; i++) {
		char c = h.p[i];

		if (c == '\r' || c == '\n') {
			put(b, &c, 1);
			col = 0;
			continue;
		}
		if (col >= 73) {
			put(b, "=\r\n", 3);
			col = 0;
		}
		if (c == '=') {
			put(b, "=3D", 3);
			col += 3;
		} else {
			put(b, &c, 1);
			col++;
		}
	}
	free(h.p);
}

/* add_msg - keep a finished message */
static void add_msg(struct buf *b)
{
	corpus = realloc(corpus, (ncorpus + 1) * sizeof(*corpus));
	if (!corpus)
		log_fatal("bench: out of memory");
	memset(&corpus[ncorpus], 0, sizeof(corpus[0]));
	corpus[ncorpus].p = b->p;
	corpus[ncorpus].len = b->len;
	corpus_bytes += b->len;
	ncorpus++;
}

/* add_file - a sample message from disk, LF turned into CRLF */
static int add_file(const char *path)
{
	FILE *f = fopen(path, "r");
	struct buf b = { 0 };
	int c;

	if (!f)
		return -errno;
	while ((c = getc(f)) != EOF) {
		if (c == '\n')
			put(&b, "\r", 1);
		char ch = (char)c;
		put(&b, &ch, 1);
	}
	fclose(f);
	add_msg(&b);
	return 0;
}

/* make_corpus - plain, HTML/QP, base64 attachments, SA samples */
static void make_corpus(size_t n)
{
	char path[512];

	for (size_t i = 0; i < n; i++) {
		struct buf b = { 0 };
		unsigned kind = (unsigned)(rnd() % 20);

		if (kind < 8) {
			headers(&b, "Content-Type: text/plain; charset=utf-8\r\n");
			text(&b, 1000 + rnd() % 8000, 0);
		} else if (kind < 14) {
			headers(&b, "Content-Type: multipart/alternative; boundary=\"=_alt\"\r\n");
			put(&b, "--=_alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", 52);
			text(&b, 2000 + rnd() % 6000, 0);
			put(&b, "--=_alt\r\nContent-Type: text/html; charset=utf-8\r\n"
				"Content-Transfer-Encoding: quoted-printable\r\n\r\n", 96);
			qp_html(&b, 4000 + rnd() % 12000);
			put(&b, "--=_alt--\r\n", 11);
		} else {
			headers(&b, "Content-Type: multipart/mixed; boundary=\"=_mix\"\r\n");
			put(&b, "--=_mix\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", 52);
			text(&b, 500 + rnd() % 3000, 0);
			put(&b, "--=_mix\r\nContent-Type: application/pdf; name=\"doc.pdf\"\r\n"
				"Content-Transfer-Encoding: base64\r\n\r\n", 93);
			b64(&b, 20000 + rnd() % 150000);
			put(&b, "--=_mix--\r\n", 11);
		}
		add_msg(&b);
		if (i % 50 == 0) {
			snprintf(path, sizeof(path), "%s/%s", examples,
				 i % 100 ? "sample-spam.txt" : "sample-nonspam.txt");
			if (add_file(path) < 0)
				log_fatal("bench: %s missing (apt-get install spamassassin)", path);
		}
	}
}

/* split_lines - precompute each message's line ends, so the timed loop
 * feeds lines without spending its time finding them (moat-smtpd's line
 * reader is not part of the filter) */
static void split_lines(void)
{
	for (size_t i = 0; i < ncorpus; i++) {
		struct msg *m = &corpus[i];
		size_t n = 0, cap = 0;

		for (size_t o = 0; o < m->len;) {
			const char *nl = memchr(m->p + o, '\n', m->len - o);
			size_t e = nl ? (size_t)(nl - m->p) + 1 : m->len;

			if (n == cap) {
				cap = cap ? cap * 2 : 256;
				m->lines = realloc(m->lines, cap * sizeof(size_t));
				if (!m->lines)
					log_fatal("bench: out of memory");
			}
			m->lines[n++] = e;
			o = e;
		}
		m->nlines = n;
	}
}

/* gen_rules - n rules: 70% caseless literal phrases of 8-30 bytes, 30%
 * simple regexes (classes, alternations, bounded repeats <= 10) */
static char *gen_rules(size_t n, const char *scope)
{
	struct buf b = { 0 };

	putf(&b, "threshold 1000000000\n");
	for (size_t i = 0; i < n; i++) {
		char ph[64];
		size_t o = 0;

		if (rnd() % 10 < 7) {
			size_t want = 8 + rnd() % 23;

			while (o < want) {
				const char *w = uni_word();
				int k = snprintf(ph + o, sizeof(ph) - o, "%s%s", o ? " " : "", w);
				o += (size_t)k;
			}
			if (o > 30)
				o = 30;
			ph[o] = 0;
			/* a literal: escape nothing (words are letters and spaces) */
			putf(&b, "G%zu %s score 0.01 /%s/i\n", i, scope, ph);
			continue;
		}
		switch (rnd() % 4) {
		case 0:
			putf(&b, "G%zu %s score 0.01 /\\b%s[\\s\\-]{1,3}%s\\b/i\n", i, scope,
			     long_word(), long_word());
			break;
		case 1:
			putf(&b, "G%zu %s score 0.01 /(?:%s|%s|%s)\\s+%s/\n", i, scope, long_word(),
			     long_word(), long_word(), long_word());
			break;
		case 2:
			putf(&b, "G%zu %s score 0.01 /%s[0-9]{2,6}/\n", i, scope, long_word());
			break;
		default:
			putf(&b, "G%zu %s score 0.01 /%s [a-z]{1,10} %s/i\n", i, scope, long_word(),
			     long_word());
			break;
		}
	}
	put(&b, "", 0);
	b.p[b.len] = 0;
	return b.p;
}

/* cpu_now - this thread's CPU seconds */
static double cpu_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* dcmp - qsort doubles */
static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* median - of n doubles (sorts them) */
static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), dcmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* gbit - Gbit/s of one pass over the corpus that took s CPU seconds */
static double gbit(double s)
{
	return (double)corpus_bytes * 8 / s / 1e9;
}

static char *sink_buf;
static volatile unsigned long long sink_sum;

/* run_memcpy - copy every message once */
static double run_memcpy(void)
{
	double t0 = cpu_now();

	for (size_t i = 0; i < ncorpus; i++) {
		memcpy(sink_buf, corpus[i].p, corpus[i].len);
		sink_sum += (unsigned char)sink_buf[corpus[i].len / 2];
	}
	return cpu_now() - t0;
}

/* count_cb - block-mode match callback: count */
static int count_cb(unsigned id, unsigned long long from, unsigned long long to,
		    unsigned flags, void *ctx)
{
	(void)id, (void)from, (void)to, (void)flags;
	++*(unsigned long long *)ctx;
	return 0;
}

struct block_arg {
	hs_database_t *db;
	hs_scratch_t *scratch;
};

/* run_block - Hyperscan block mode, one call per message */
static double run_block(const struct block_arg *a)
{
	unsigned long long hits = 0;
	double t0 = cpu_now();

	for (size_t i = 0; i < ncorpus; i++)
		hs_scan(a->db, corpus[i].p, (unsigned)corpus[i].len, 0, a->scratch, count_cb, &hits);
	sink_sum += hits;
	return cpu_now() - t0;
}

static size_t piece = 65536;
static size_t last_state;

/* run_stream - the filter as the engine drives it: one feed per CRLF line
 * (lines: what moat-smtpd's data_line() passes, after unstuffing), or in
 * piece-byte slices (lines == 0) */
static double run_stream(int lines)
{
	double t0 = cpu_now();

	for (size_t i = 0; i < ncorpus; i++) {
		struct filter_msg *m = scan_filter_ops.open();
		struct filter_verdict v;
		const char *p = corpus[i].p;
		size_t len = corpus[i].len;

		if (!m)
			log_fatal("bench: open failed");
		if (lines) {
			size_t o = 0;

			for (size_t k = 0; k < corpus[i].nlines; k++) {
				scan_filter_ops.feed(m, p + o, corpus[i].lines[k] - o);
				o = corpus[i].lines[k];
			}
		} else {
			for (size_t o = 0; o < len; o += piece)
				scan_filter_ops.feed(m, p + o, len - o < piece ? len - o : piece);
		}
		scan_filter_ops.finish(m, &v);
		sink_sum += (unsigned long long)v.score;
		scan_filter_ops.close(m);
	}
	return cpu_now() - t0;
}

/* block_db - the same scoped patterns compiled for block mode (the same
 * flags as the streaming databases, scan_rules.c build_exprs) */
static int block_db(const struct scan_db *d, struct block_arg *a)
{
	const char **ex = calloc(d->nrules + 1, sizeof(char *));
	unsigned *fl = calloc(d->nrules + 1, sizeof(unsigned));
	unsigned *ids = calloc(d->nrules + 1, sizeof(unsigned));
	unsigned n = 0;
	hs_compile_error_t *ce = NULL;
	int rc = -1;

	if (!ex || !fl || !ids)
		goto out;
	for (size_t i = 0; i < d->nrules; i++) {
		const struct scan_rule *r = &d->rules[i];

		if (r->scope != SCOPE_RAW && r->scope != SCOPE_HEADER && r->scope != SCOPE_BODY)
			continue;
		ex[n] = r->pattern;
		/* a rule Hyperscan cannot match exactly is a prefilter one,
		 * as in the streaming databases (its zero-width assertions
		 * are refused otherwise) */
		fl[n] = r->flags | (r->prefilter ? HS_FLAG_PREFILTER : HS_FLAG_SINGLEMATCH);
		ids[n++] = (unsigned)i;
	}
	if (hs_compile_multi(ex, fl, ids, n, HS_MODE_BLOCK, NULL, &a->db, &ce) != HS_SUCCESS) {
		fprintf(stderr, "bench: block compile: %s\n", ce ? ce->message : "?");
		hs_free_compile_error(ce);
		goto out;
	}
	a->scratch = NULL;
	rc = hs_alloc_scratch(a->db, &a->scratch) == HS_SUCCESS ? 0 : -1;
out:
	free(ex);
	free(fl);
	free(ids);
	return rc;
}

/* results of one rule set: medians over the repetitions */
struct result {
	double copy, block, lines, pieces;
	double scanned;      /* bytes the filter scanned in one pass */
	double lines_scanned; /* Gbit/s of those bytes, lines */
	double ratio_lines, ratio_pieces; /* median of per-repetition ratios */
};

static const char *only;
static int no_block; /* --no-block: the filter alone (for profiling) */

/* measure - load rules (text or SA); each repetition times, back to back,
 * memcpy, block mode and the filter (lines, then pieces), so the ratios
 * compare passes made under the same load on the shared machine */
static int measure(const char *label, const char *rules_text, int sa, int block,
		   struct result *res, struct scan_db **keep)
{
	char path[512], err[512] = "";
	struct scan_load_opts o = { .cache_dir = cache_dir, .threshold = 1e9 };
	struct scan_db *d;
	struct block_arg a = { 0 };
	double c[32], b[32], l[32], pc[32], rl[32], rp[32];
	int n = runs < 32 ? runs : 32;
	FILE *f;

	memset(res, 0, sizeof(*res));
	if (only && strcmp(only, label) != 0)
		return 0;
	snprintf(path, sizeof(path), "%s/%s.rules", cache_dir, label);
	if (rules_text) {
		if (!(f = fopen(path, "w")))
			return -errno;
		fputs(rules_text, f);
		fclose(f);
		o.rules_path = path;
	}
	if (sa)
		o.sa_dir = sa_dir;
	if (scan_db_load(&o, &d, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench: %s: %s\n", label, err);
		return -1;
	}
	fprintf(stderr, "bench: %s: %zu rules, cache %s\n", label, d->nrules,
		d->cache == CACHE_HIT ? "hit" : "miss");
	block = block && !no_block;
	if (block && block_db(d, &a) < 0)
		return -1;
	scan_db_install(scan_db_ref(d));
	last_state = scan_filter_ops.state_size();
	{
		uint64_t s0 = scan_scanned_bytes();

		run_stream(1); /* warm: scratch, caches; and the bytes scanned */
		res->scanned = (double)(scan_scanned_bytes() - s0);
	}
	for (int r = 0; r < n; r++) {
		c[r] = gbit(run_memcpy());
		b[r] = block ? gbit(run_block(&a)) : 0;
		l[r] = gbit(run_stream(1));
		pc[r] = gbit(run_stream(0));
		rl[r] = block ? l[r] / b[r] : 0;
		rp[r] = block ? pc[r] / b[r] : 0;
	}
	res->copy = median(c, n);
	res->block = median(b, n);
	res->lines = median(l, n);
	res->pieces = median(pc, n);
	res->ratio_lines = median(rl, n);
	res->ratio_pieces = median(rp, n);
	res->lines_scanned = res->lines * res->scanned / (double)corpus_bytes;
	if (block) {
		hs_free_scratch(a.scratch);
		hs_free_database(a.db);
	}
	if (keep)
		*keep = d;
	else
		scan_db_unref(d);
	scan_db_install(NULL);
	return 0;
}

/* usage - the --help text */
static void usage(FILE *o)
{
	fprintf(o, "usage: bench_scan [--messages N] [--runs N] [--cache DIR] [--sa-dir DIR]\n"
		   "                  [--piece BYTES] [--only none|gen10|gen1k|gen1kraw|gen10k|sa]\n"
		   "                  [--no-block]\n"
		   "       bench_scan --write-rules N    print N generated rules and exit\n"
		   "Measures the content gate's throughput on one core and prints JSON.\n"
		   "The stream numbers feed the filter one CRLF line per call, as moat-smtpd\n"
		   "does; *_pieces feed --piece byte slices (default 65536).\n");
}

/* main - build the corpus and rule sets, measure, print JSON */
int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "messages", required_argument, NULL, 'n' },
		{ "runs", required_argument, NULL, 'r' },
		{ "cache", required_argument, NULL, 'c' },
		{ "sa-dir", required_argument, NULL, 's' },
		{ "piece", required_argument, NULL, 'p' },
		{ "only", required_argument, NULL, 'o' },
		{ "no-block", no_argument, NULL, 'B' },
		{ "write-rules", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	size_t nmsg = 400;
	int c;
	struct result r0, r10, r1k, r1kraw, r10k, rsa;
	struct scan_db *sadb = NULL;
	size_t state1k = 0;

	log_init("bench_scan", 0);
	log_set_level(LOG_LVL_WARN);
	long write_n = -1;

	while ((c = getopt_long(argc, argv, "n:r:c:s:p:o:Bw:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'n': nmsg = strtoul(optarg, NULL, 10); break;
		case 'r': runs = atoi(optarg) > 0 ? atoi(optarg) : 1; break;
		case 'c': cache_dir = optarg; break;
		case 's': sa_dir = optarg; break;
		case 'p': piece = strtoul(optarg, NULL, 10) ? strtoul(optarg, NULL, 10) : 65536; break;
		case 'o': only = optarg; break;
		case 'B': no_block = 1; break;
		case 'w': write_n = atol(optarg); break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("bench_scan %s\n", MOAT_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	make_words();
	if (write_n >= 0) { /* the generated rules, for the SMTP benchmark */
		rs = 0x5eed5eed5eed5eedull;
		(void)gen_rules(10, "body");
		fputs(gen_rules((size_t)write_n, "body"), stdout);
		return 0;
	}
	mkdir(cache_dir, 0755);
	make_corpus(nmsg);
	split_lines();
	sink_buf = malloc(1 << 24);
	fprintf(stderr, "bench: corpus %zu messages, %zu bytes\n", ncorpus, corpus_bytes);

	/* rules do not depend on the corpus size: a fixed seed */
	uint64_t seed = rs = 0x5eed5eed5eed5eedull;
	char *t10 = gen_rules(10, "body"), *t1k = gen_rules(1000, "body"),
	     *t10k = gen_rules(10000, "body");
	rs = seed; /* the same 1,000 rules again, on the raw bytes */
	(void)gen_rules(10, "raw");
	char *t1kraw = gen_rules(1000, "raw");
	if (measure("none", "", 0, 0, &r0, NULL) < 0 ||
	    measure("gen10", t10, 0, 1, &r10, NULL) < 0 ||
	    measure("gen1k", t1k, 0, 1, &r1k, NULL) < 0 ||
	    !((state1k = last_state) || only) ||
	    measure("gen1kraw", t1kraw, 0, 1, &r1kraw, NULL) < 0 ||
	    measure("gen10k", t10k, 0, 1, &r10k, NULL) < 0 ||
	    measure("sa", NULL, 1, 1, &rsa, &sadb) < 0)
		return 1;
	printf("{\n"
	       "  \"messages\": %zu,\n  \"corpus_bytes\": %zu,\n  \"runs\": %d,\n"
	       "  \"piece_bytes\": %zu,\n  \"gbit_s_memcpy\": %.3f,\n"
	       "  \"gbit_s_stream_0\": %.3f,\n"
	       "  \"gbit_s_block_10\": %.3f,\n  \"gbit_s_stream_10\": %.3f,\n"
	       "  \"gbit_s_stream_10_pieces\": %.3f,\n"
	       "  \"gbit_s_block_1k\": %.3f,\n  \"gbit_s_stream_1k\": %.3f,\n"
	       "  \"gbit_s_stream_1k_pieces\": %.3f,\n"
	       "  \"gbit_s_block_raw_1k\": %.3f,\n  \"gbit_s_stream_raw_1k\": %.3f,\n"
	       "  \"gbit_s_block_10k\": %.3f,\n  \"gbit_s_stream_10k\": %.3f,\n"
	       "  \"gbit_s_block_sa\": %.3f,\n  \"gbit_s_stream_sa\": %.3f,\n"
	       "  \"ratio_stream_block_10\": %.3f,\n"
	       "  \"ratio_stream_block_1k\": %.3f,\n  \"ratio_stream_pieces_block_1k\": %.3f,\n"
	       "  \"ratio_stream_block_raw_1k\": %.3f,\n"
	       "  \"ratio_stream_block_10k\": %.3f,\n  \"ratio_stream_block_sa\": %.3f,\n"
	       "  \"ratio_stream_1k_memcpy\": %.4f,\n"
	       "  \"sa_scored_imported\": %u,\n  \"sa_scored_total\": %u,\n"
	       "  \"sa_rules_imported\": %u,\n  \"msg_state_bytes_1k\": %zu,\n"
	       "  \"msg_state_bytes_sa\": %zu,\n",
	       ncorpus, corpus_bytes, runs, piece,
	       r1k.copy ? r1k.copy : r10.copy ? r10.copy : rsa.copy, r0.lines, r10.block, r10.lines,
	       r10.pieces,
	       r1k.block, r1k.lines, r1k.pieces, r1kraw.block, r1kraw.lines, r10k.block,
	       r10k.lines, rsa.block, rsa.lines, r10.ratio_lines, r1k.ratio_lines,
	       r1k.ratio_pieces, r1kraw.ratio_lines, r10k.ratio_lines, rsa.ratio_lines,
	       r1k.copy ? r1k.lines / r1k.copy : 0,
	       sadb ? sadb->sa_scored_imported : 0, sadb ? sadb->sa_scored_total : 0,
	       sadb ? sadb->sa_imported : 0, state1k, sadb ? last_state : 0);
	/* Gbit/s of the bytes each side scanned: block mode scans every byte */
	const struct { const char *tag; const struct result *r; } sc[] = {
		{ "10", &r10 }, { "1k", &r1k }, { "10k", &r10k }, { "sa", &rsa },
	};
	for (size_t i = 0; i < sizeof(sc) / sizeof(sc[0]); i++) {
		const struct result *r = sc[i].r;

		printf("  \"bytes_scanned_stream_%s\": %.0f,\n"
		       "  \"gbit_s_stream_%s_scanned\": %.3f,\n"
		       "  \"ratio_stream_block_%s_scanned\": %.3f,\n",
		       sc[i].tag, r->scanned, sc[i].tag, r->lines_scanned, sc[i].tag,
		       r->block ? r->lines_scanned / r->block : 0);
	}
	/* every rule in raw scope: stream and block scan the same bytes */
	printf("  \"gbit_s_block_1k_raw_scope\": %.3f,\n  \"gbit_s_stream_1k_raw_scope\": %.3f,\n"
	       "  \"bytes_scanned_stream_1k_raw_scope\": %.0f,\n"
	       "  \"ratio_stream_block_1k_raw_scope\": %.3f\n}\n",
	       r1kraw.block, r1kraw.lines, r1kraw.scanned, r1kraw.ratio_lines);
	scan_db_unref(sadb);
	(void)sink_sum;
	return 0;
}
