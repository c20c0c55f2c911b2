/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tls.c - the OpenSSL server context for STARTTLS (RFC 3207), loaded once
 * at start (before the privilege drop, so the key may be root-only).
 */
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "log.h"
#include "smtpd.h"

static SSL_CTX *ctx;

/* tls_init - load tls_cert/tls_key; 0 (also when TLS is not configured) or -1 */
int tls_init(const struct smtpd_config *c)
{
	if (!c->tls_cert[0])
		return 0;
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return -1;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		char e[256];
		ERR_error_string_n(ERR_get_error(), e, sizeof(e));
		log_err("tls: cannot load %s / %s: %s", c->tls_cert, c->tls_key, e);
		SSL_CTX_free(ctx);
		ctx = NULL;
		return -1;
	}
	return 0;
}

/* tls_ctx - the server context, NULL when STARTTLS is off */
SSL_CTX *tls_ctx(void)
{
	return ctx;
}
