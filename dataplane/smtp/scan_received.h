/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_received.h - SpamAssassin's Received parser
 * (Mail::SpamAssassin::Message::Metadata::Received, 4.0.1) over the header
 * block, for the relay evals and the X-Spam-Relays-* pseudo-headers.
 *
 * Only the default trust path is implemented: no trusted_networks,
 * internal_networks or msa_networks configured (moat's import refuses the
 * rules otherwise), so a relay is trusted (and internal) while every relay
 * above it had a private IP or an authentication token, and the
 * originating_ip_headers are Debian's defaults.
 */
#ifndef MOAT_SMTP_SCAN_RECEIVED_H
#define MOAT_SMTP_SCAN_RECEIVED_H

#include <stddef.h>

/* the pseudo-headers, in the order of enum sa_relay_view */
enum sa_relay_view {
	SA_RELAYS_TRUSTED,
	SA_RELAYS_UNTRUSTED,
	SA_RELAYS_INTERNAL,
	SA_RELAYS_EXTERNAL,
	SA_RELAYS_N
};

struct sa_relays {
	unsigned trusted, untrusted, unparseable; /* num_relays_* */
	char *str[SA_RELAYS_N];                   /* relays_*_str, never NULL */
	size_t len[SA_RELAYS_N];
	int lasthop_env;        /* the last untrusted relay (or, with none,
				 * the first trusted one) has an envfrom */
	char lasthop_envfrom[512];
	int env_def;            /* EnvelopeFrom is defined: */
	char env[512];          /* its value */
	char env_addr[512];     /* get('EnvelopeFrom:addr'), '' when none */
	unsigned nfrom;         /* all_from_addrs (at most SA_FROM_MAX) */
	char from[16][512];
};

enum { SA_ADDR_MAX = 512, SA_FROM_MAX = 16 };

/* sa_match_ctx - the PCRE2 match budget of the relay parse and of the
 * rules over its strings (a hostile Received header costs at most
 * SA_MATCH_LIMIT steps a match, as scan.c's confirmations); NULL (PCRE2's
 * default) only when it could not be made */
enum { SA_MATCH_LIMIT = 1000000 };
struct pcre2_real_match_context_8 *sa_match_ctx(void);

/* sa_hdr_each - the next header of the block hb[0..n) at *off (advanced;
 * start at 0 and leave it to the walk: for the block sa_relays_pin pinned
 * it counts the headers of a list made once, otherwise bytes): its name
 * (the return value, *nl bytes) and value (*v, *vl bytes, from just after
 * the ":"); NULL at the end */
const char *sa_hdr_each(const char *hb, size_t n, size_t *off, size_t *nl, const char **v,
			size_t *vl);

/* sa_relay_view_index - "X-Spam-Relays-Trusted" ... as an index, -1 */
int sa_relay_view_index(const char *name);

/* sa_relays_compile - compile the parse's expressions now (at load), not
 * in the first messages that need them: 0, or -1 when one did not compile
 * or a call site is missing from section moat_rx (a bug: tests check it;
 * the parse then compiles what it reaches, and skips what fails) */
int sa_relays_compile(void);

/* sa_relays_gate_check - the parse's gate (scan_received.c) over the line
 * s[0..n) as the parse would hold it: how many of its patterns match s
 * although the gate skips them (0 unless the gate is wrong), -1 on no
 * memory or a line longer than the parse keeps; *gated: how many
 * patterns the gate holds (0: no gate, every pattern runs) */
int sa_relays_gate_check(const char *s, size_t n, unsigned *gated);

/* sa_relays_parse - parse_received_headers over the header block hb[0..n)
 * ("Name: value\n" per header): into r (sa_relays_free after); -ENOMEM */
int sa_relays_parse(const char *hb, size_t n, struct sa_relays *r);
void sa_relays_free(struct sa_relays *r);

/* sa_relays_of - the same, cached per thread for the last block parsed
 * (every relay eval of a message reads one parse); NULL on no memory */
const struct sa_relays *sa_relays_of(const char *hb, size_t n);
/* sa_relays_pin - until sa_relays_unpin, sa_relays_of(hb, n) with this very
 * block (the same pointer and length) parses it once on the first call and
 * answers every later call from that parse, without comparing or copying
 * the block (the cache above compares the whole block on every call and
 * copies it on a miss); the caller keeps hb[0..n) unchanged meanwhile.
 * Other blocks still go through the cache.  Per thread. */
void sa_relays_pin(const char *hb, size_t n);
/* sa_relays_unpin - forget the pinned block and its parse */
void sa_relays_unpin(void);

/* sa_received_line - parse_received_line on one Received value: 1 parsed
 * (the relay's as_string, intl=0, into out), 0 skipped, -1 unparseable */
int sa_received_line(const char *v, size_t n, char *out, size_t outsz);

/* sa_envelope_from - PerMsgStatus::get_envelope_from with no
 * envelope_sender_header: the last hop's envelope-from, else X-Envelope-From,
 * Envelope-Sender, Return-Path (each unless it comes after a Received
 * header; none when X-Sender and a fetchmail Received are there): 1 and
 * the value in out, 0 when undefined */
int sa_envelope_from(const char *hb, size_t n, char out[SA_ADDR_MAX]);
/* sa_envelope_from_addr - get('EnvelopeFrom:addr'): its first address
 * (out '' when none); 1 when there is one */
int sa_envelope_from_addr(const char *hb, size_t n, char out[SA_ADDR_MAX]);

/* sa_all_from_addrs - PerMsgStatus::all_from_addrs: the addresses of the
 * first Resent-From, or else of From, Envelope-Sender, Resent-Sender,
 * X-Envelope-From and EnvelopeFrom, runs of dots squeezed, each once */
typedef void sa_addr_fn(void *ctx, const char *a, size_t n);
void sa_all_from_addrs(const char *hb, size_t n, sa_addr_fn *fn, void *ctx);

#endif /* MOAT_SMTP_SCAN_RECEIVED_H */
