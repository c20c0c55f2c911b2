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
};

/* sa_relay_view_index - "X-Spam-Relays-Trusted" ... as an index, -1 */
int sa_relay_view_index(const char *name);

/* sa_relays_parse - parse_received_headers over the header block hb[0..n)
 * ("Name: value\n" per header): into r (sa_relays_free after); -ENOMEM */
int sa_relays_parse(const char *hb, size_t n, struct sa_relays *r);
void sa_relays_free(struct sa_relays *r);

/* sa_relays_of - the same, cached per thread for the last block parsed
 * (every relay eval of a message reads one parse); NULL on no memory */
const struct sa_relays *sa_relays_of(const char *hb, size_t n);

/* sa_received_line - parse_received_line on one Received value: 1 parsed
 * (the relay's as_string, intl=0, into out), 0 skipped, -1 unparseable */
int sa_received_line(const char *v, size_t n, char *out, size_t outsz);

#endif /* MOAT_SMTP_SCAN_RECEIVED_H */
